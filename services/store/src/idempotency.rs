//! Idempotency keys, claimed in the same transaction as the effect they guard.
//!
//! `claim` inserts (actor, key, fingerprint) first thing in the transaction. A concurrent
//! request with the same key blocks on the unique index until the first commits, then sees its
//! row: same fingerprint → the stored response; different → refused. A failed command rolls
//! back its claim, so only successful responses are ever replayed.

use sqlx::PgConnection;

use crate::Result;

pub enum Claim {
    /// First use of the key: run the command, then `complete`.
    Fresh,
    /// Same key, same request: here is the stored response.
    Replay(Vec<u8>),
    /// Same key, different request (or a different method).
    Mismatch,
}

pub async fn claim(
    conn: &mut PgConnection,
    actor: &str,
    key: &str,
    method: &str,
    fingerprint: &[u8],
) -> Result<Claim> {
    let inserted = sqlx::query!(
        "INSERT INTO idempotency_keys (actor, key, method, fingerprint) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        actor,
        key,
        method,
        fingerprint
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let row = sqlx::query!(
        "SELECT method, fingerprint, response FROM idempotency_keys WHERE actor = $1 AND key = $2",
        actor,
        key
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(match row.response {
        Some(resp) if row.method == method && row.fingerprint == fingerprint => Claim::Replay(resp),
        _ => Claim::Mismatch,
    })
}

pub async fn complete(
    conn: &mut PgConnection,
    actor: &str,
    key: &str,
    response: &[u8],
) -> Result<()> {
    sqlx::query!(
        "UPDATE idempotency_keys SET response = $3 WHERE actor = $1 AND key = $2",
        actor,
        key,
        response
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes the records older than `retention` (by the database's clock, which stamped them),
/// in batches so no single statement holds many rows; returns how many went. A key used again
/// after its record expired runs as a new command.
pub async fn purge(pool: &sqlx::PgPool, retention: std::time::Duration) -> Result<u64> {
    let secs = retention.as_secs_f64();
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM idempotency_keys WHERE ctid IN (
                 SELECT ctid FROM idempotency_keys
                 WHERE created_at < now() - make_interval(secs => $1)
                 LIMIT 10000)",
        )
        .bind(secs)
        .execute(pool)
        .await?
        .rows_affected();
        total += n;
        if n < 10_000 {
            return Ok(total);
        }
    }
}
