//! Web sessions (migration 0014): the pages' sign-in. Only the SHA-256 digest of a session id
//! is stored; the session names the token it was exchanged for, which the caller re-checks on
//! every request.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;

/// A stored session (never its id).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub token_id: Uuid,
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The token, sealed under a key only the session id opens (migration 0017).
    pub token_sealed: Option<Vec<u8>>,
}

pub async fn insert(
    conn: &mut PgConnection,
    id_digest: &[u8],
    token_id: Uuid,
    csrf: &str,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    token_sealed: Option<&[u8]>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO web_sessions (id_digest, token_id, csrf, created_at, expires_at, token_sealed)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id_digest,
        token_id,
        csrf,
        created_at,
        expires_at,
        token_sealed
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn find(conn: &mut PgConnection, id_digest: &[u8]) -> Result<Option<SessionRow>> {
    Ok(sqlx::query_as!(
        SessionRow,
        "SELECT token_id, csrf, created_at, expires_at, ended_at, token_sealed FROM web_sessions
         WHERE id_digest = $1",
        id_digest
    )
    .fetch_optional(conn)
    .await?)
}

/// Ends a session (sign-out); ending an ended one changes nothing.
pub async fn end(conn: &mut PgConnection, id_digest: &[u8], at: DateTime<Utc>) -> Result<()> {
    sqlx::query!(
        "UPDATE web_sessions SET ended_at = $2 WHERE id_digest = $1 AND ended_at IS NULL",
        id_digest,
        at
    )
    .execute(conn)
    .await?;
    Ok(())
}
