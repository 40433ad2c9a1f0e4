//! Bearer tokens, stored as SHA-256 digests only.

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub actor: String,
    pub name: String,
    pub role: String,
    pub school_id: Option<Uuid>,
}

pub fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub async fn insert(conn: &mut PgConnection, token: &str, row: &TokenRow) -> Result<()> {
    let res = sqlx::query!(
        "INSERT INTO tokens (sha256, actor, name, role, school_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        digest(token),
        row.actor,
        row.name,
        row.role,
        row.school_id
    )
    .execute(&mut *conn)
    .await?;
    if res.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "token for actor `{}` already exists",
            row.actor
        )));
    }
    Ok(())
}

pub async fn find(conn: &mut PgConnection, token: &str) -> Result<Option<TokenRow>> {
    Ok(sqlx::query_as!(
        TokenRow,
        "SELECT actor, name, role, school_id FROM tokens WHERE sha256 = $1 AND revoked_at IS NULL",
        digest(token)
    )
    .fetch_optional(&mut *conn)
    .await?)
}

pub async fn count_office(conn: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM tokens WHERE role = 'office' AND revoked_at IS NULL"#
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// The role of an actor with a live token, if any.
pub async fn role_of(conn: &mut PgConnection, actor: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT role FROM tokens WHERE actor = $1 AND revoked_at IS NULL",
        actor
    )
    .fetch_optional(&mut *conn)
    .await?)
}
