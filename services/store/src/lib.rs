//! PostgreSQL persistence for junheng.
//!
//! Repository functions take `&mut PgConnection` (usually a transaction) so the caller decides
//! what commits together: a state change, its audit event and its obligations always share one
//! transaction. This crate stores what the rule core decided; it never decides anything itself,
//! and it never names a proto type.

pub mod actors;
pub mod applications;
pub mod audit;
pub mod awards;
pub mod campaigns;
pub mod clock;
pub mod groups;
pub mod idempotency;
pub mod mentor;
pub mod metrics;
pub mod notices;
pub mod notifications;
pub mod objections;
pub mod obligations;
pub mod schools;
pub mod scores;
pub mod seed;
pub mod summaries;
pub mod tokens;
pub mod web_sessions;

pub use sqlx::{PgConnection, PgPool, Postgres, Transaction};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("version conflict: expected {expected}, current {current}")]
    VersionConflict { expected: i64, current: i64 },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Reads a `text` column into the domain enum it stores (the core's `code()` names are the
/// one mapping); a value the core does not know is `Corrupt`, naming the column.
///
/// The core cannot implement sqlx's traits (it must not depend on sqlx) and the orphan rule
/// keeps this crate from implementing them for the core's types, so rows are fetched with
/// their columns as text (`*Rec`, the `query_as!` targets) and converted here once.
pub(crate) fn decode<T>(
    column: &'static str,
    value: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("{column} has unknown value `{value}`")))
}

/// Reads a `jsonb` column into the typed value it stores; a value that does not fit is
/// `Corrupt`, naming the column (never a silent default).
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(
    column: &'static str,
    value: serde_json::Value,
) -> Result<T> {
    serde_json::from_value(value)
        .map_err(|e| StoreError::Corrupt(format!("{column} is unreadable: {e}")))
}

/// Writes a typed value into a `jsonb` column.
pub(crate) fn encode_json<T: serde::Serialize>(
    column: &'static str,
    value: &T,
) -> Result<serde_json::Value> {
    serde_json::to_value(value)
        .map_err(|e| StoreError::Corrupt(format!("{column} cannot be written: {e}")))
}

/// How long a caller waits for a pool connection by default before the call fails with
/// `UNAVAILABLE`: long enough to ride out a busy pool, short enough that a caller learns of a
/// database outage quickly instead of being held (sqlx's own default is 30 s).
pub const DEFAULT_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How a service's pool comes to the current schema.
#[derive(Debug, Clone, Copy)]
pub enum Migrations<'a> {
    /// Apply pending migrations with the service's own URL: one role owns the schema and runs
    /// the service (development, tests, a single-role install).
    Apply,
    /// Apply them as the owner at this URL, then grant the role of the service's URL the
    /// runtime privileges (`grant_runtime`) and run as that role.
    ApplyAsOwner(&'a str),
    /// Apply nothing: the service runs as the runtime role and a migration step (the
    /// Kubernetes Job, `--migrate-only`) ran before it. Refuses to start on an older schema.
    Require,
}

/// Connects with a pool sized for this service and applies pending migrations. Acquiring a
/// connection gives up after `acquire_timeout` (see [`DEFAULT_ACQUIRE_TIMEOUT`]).
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> Result<PgPool> {
    connect_with(url, max_connections, acquire_timeout, Migrations::Apply).await
}

/// Connects with a pool sized for this service, bringing the schema up to date as `how` says.
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
    how: Migrations<'_>,
) -> Result<PgPool> {
    if let Migrations::ApplyAsOwner(owner_url) = how {
        let owner = pool_options(1, acquire_timeout.max(std::time::Duration::from_secs(10)))
            .connect(owner_url)
            .await?;
        migrate(&owner).await?;
        let pool = pool_options(max_connections, acquire_timeout)
            .connect(url)
            .await?;
        let runtime: String = sqlx::query_scalar!(r#"SELECT current_user AS "u!""#)
            .fetch_one(&pool)
            .await?;
        let owner_role: String = sqlx::query_scalar!(r#"SELECT current_user AS "u!""#)
            .fetch_one(&owner)
            .await?;
        if runtime != owner_role {
            grant_runtime(&owner, &runtime).await?;
        }
        owner.close().await;
        return Ok(pool);
    }
    let pool = pool_options(max_connections, acquire_timeout)
        .connect(url)
        .await?;
    match how {
        Migrations::Apply => migrate(&pool).await?,
        Migrations::Require => require_migrated(&pool).await?,
        Migrations::ApplyAsOwner(_) => unreachable!("handled above"),
    }
    Ok(pool)
}

/// The pool options both services use: `max_connections` and the acquire timeout (which also
/// bounds opening a new connection while the server is unreachable).
pub fn pool_options(
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> sqlx::postgres::PgPoolOptions {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
}

/// Whether an error means the database could not be reached (or dropped the connection), so
/// the same call is worth retrying later: a pool timeout, a refused or broken connection, or
/// the server shutting down or starting up (SQLSTATE class 08, 57P01–57P03). Such errors are
/// `UNAVAILABLE` to a caller, never `INTERNAL`.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

impl StoreError {
    /// [`is_unavailable`] for a store error.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Sqlx(e) if is_unavailable(e))
    }
}

async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| StoreError::Corrupt(format!("migration failed: {e}")))
}

/// Grants `role` what the services need and no more (migration 0008's
/// `junheng_grant_runtime`): the normal privileges on every table and sequence, but only
/// INSERT and SELECT on the audit log and SELECT on the chain heads and the migration history.
/// Run as the owner after every migration (new tables need their grants).
pub async fn grant_runtime(owner: &PgPool, role: &str) -> Result<()> {
    sqlx::query!("SELECT junheng_grant_runtime($1::text::name)", role)
        .execute(owner)
        .await?;
    Ok(())
}

/// Refuses a schema older than this binary: every migration it embeds must be applied.
async fn require_migrated(pool: &PgPool) -> Result<()> {
    let applied: Vec<i64> =
        sqlx::query_scalar!("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .map_err(|e| {
                StoreError::Corrupt(format!(
                    "the schema has no migration history ({e}); run the migration step (`--migrate-only` with the owner's URL) first"
                ))
            })?;
    let missing: Vec<String> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| m.version.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "the database lacks migrations {}; run the migration step (`--migrate-only` with the owner's URL) first",
            missing.join(", ")
        )));
    }
    Ok(())
}
