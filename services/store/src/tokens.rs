//! Bearer tokens, stored as SHA-256 digests only, with a scope and a life: the campaigns a
//! token acts in (`None` = county-wide), an optional expiry, who issued it, and revocation.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use junheng_core::role::Role;

use crate::{Result, StoreError, decode};

/// A token to insert.
#[derive(Debug, Clone, Default)]
pub struct TokenRow {
    pub actor: String,
    /// Who holds it (the label shown by ListTokens and in the audit log).
    pub name: String,
    pub role: String,
    pub school_id: Option<Uuid>,
    /// The campaigns it acts in; `None` = county-wide.
    pub campaigns: Option<Vec<Uuid>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The actor that issued it (`None` for the bootstrap token).
    pub issued_by: Option<String>,
    /// A demo token: refused when the server runs in production.
    pub demo: bool,
}

/// A stored token (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub id: Uuid,
    pub actor: String,
    pub name: String,
    pub role: Role,
    pub school_id: Option<Uuid>,
    pub campaigns: Option<Vec<Uuid>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub issued_by: Option<String>,
    pub demo: bool,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A `tokens` row as fetched, before its role is read.
struct TokenRec {
    id: Uuid,
    actor: String,
    name: String,
    role: String,
    school_id: Option<Uuid>,
    campaigns: Option<Vec<Uuid>>,
    expires_at: Option<DateTime<Utc>>,
    issued_by: Option<String>,
    demo: bool,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<TokenRec> for TokenInfo {
    type Error = StoreError;

    fn try_from(r: TokenRec) -> Result<Self> {
        Ok(TokenInfo {
            role: decode("tokens.role", &r.role, Role::from_code)?,
            id: r.id,
            actor: r.actor,
            name: r.name,
            school_id: r.school_id,
            campaigns: r.campaigns,
            expires_at: r.expires_at,
            issued_by: r.issued_by,
            demo: r.demo,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        })
    }
}

impl TokenInfo {
    /// Live at `now`: neither revoked nor expired.
    pub fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }

    /// What the audit log records of a token: never its secret; the id identifies it.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "token_id": self.id,
            "actor": self.actor,
            "name": self.name,
            "role": self.role.code(),
            "school_id": self.school_id,
            "campaigns": self.campaigns,
            "expires_at": self.expires_at,
            "issued_by": self.issued_by,
            "revoked_at": self.revoked_at,
        })
    }
}

pub fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Inserts a token and returns its id.
pub async fn insert(conn: &mut PgConnection, token: &str, row: &TokenRow) -> Result<Uuid> {
    let id = sqlx::query_scalar!(
        "INSERT INTO tokens (sha256, actor, name, role, school_id, campaigns, expires_at, issued_by, demo)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING id",
        digest(token),
        row.actor,
        row.name,
        row.role,
        row.school_id,
        row.campaigns.as_deref(),
        row.expires_at,
        row.issued_by,
        row.demo
    )
    .fetch_optional(&mut *conn)
    .await?;
    id.ok_or_else(|| {
        StoreError::Conflict(format!("token for actor `{}` already exists", row.actor))
    })
}

/// The token with this secret, live or not (the caller decides what revoked or expired means).
pub async fn find(conn: &mut PgConnection, token: &str) -> Result<Option<TokenInfo>> {
    sqlx::query_as!(
        TokenRec,
        "SELECT id, actor, name, role, school_id, campaigns, expires_at, issued_by, demo, created_at, revoked_at
         FROM tokens WHERE sha256 = $1",
        digest(token)
    )
    .fetch_optional(&mut *conn)
    .await?
    .map(TokenInfo::try_from)
    .transpose()
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<TokenInfo>> {
    sqlx::query_as!(
        TokenRec,
        "SELECT id, actor, name, role, school_id, campaigns, expires_at, issued_by, demo, created_at, revoked_at
         FROM tokens WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .map(TokenInfo::try_from)
    .transpose()
}

/// Every token, oldest first.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<TokenInfo>> {
    sqlx::query_as!(
        TokenRec,
        "SELECT id, actor, name, role, school_id, campaigns, expires_at, issued_by, demo, created_at, revoked_at
         FROM tokens ORDER BY created_at, actor"
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(TokenInfo::try_from)
    .collect()
}

/// Revokes a token at `at` (a second revocation keeps the first instant).
pub async fn revoke(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<()> {
    sqlx::query!(
        "UPDATE tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
        id,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives a token a new secret: the old one stops working at once; id, actor and scope stay.
pub async fn rotate(conn: &mut PgConnection, id: Uuid, token: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE tokens SET sha256 = $2 WHERE id = $1",
        id,
        digest(token)
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Live county-wide office tokens (the bootstrap creates one when there is none).
pub async fn count_office(conn: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM tokens
           WHERE role = 'office' AND campaigns IS NULL AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > now())"#
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// The role of an actor with an unrevoked token, if any.
pub async fn role_of(conn: &mut PgConnection, actor: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT role FROM tokens WHERE actor = $1 AND revoked_at IS NULL",
        actor
    )
    .fetch_optional(&mut *conn)
    .await?)
}
