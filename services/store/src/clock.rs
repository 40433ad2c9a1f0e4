//! The simulated instant, shared by every service and replica through the database.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::Result;

pub const CHANNEL: &str = "junheng_clock";

/// The simulated instant, if one has been set.
pub async fn read(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar!("SELECT simulated_now FROM clock WHERE singleton")
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The simulated instant, initialising it to `initial` the first time. A plain read on the
/// hot path: every command reads the clock, and a write here would serialise them all.
pub async fn simulated_now(
    conn: &mut PgConnection,
    initial: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    if let Some(now) = sqlx::query_scalar!("SELECT simulated_now FROM clock WHERE singleton")
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(now);
    }
    let row = sqlx::query_scalar!(
        r#"INSERT INTO clock (singleton, simulated_now) VALUES (true, $1)
           ON CONFLICT (singleton) DO UPDATE SET singleton = true
           RETURNING simulated_now"#,
        initial
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(row)
}

/// The simulated instant, locking its row until the transaction ends (the prior value an
/// audited change records).
pub async fn read_for_update(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar!("SELECT simulated_now FROM clock WHERE singleton FOR UPDATE")
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The year of the latest campaign, if any: the simulated clock stays within the campaign
/// years plus a margin.
pub async fn latest_campaign_year(conn: &mut PgConnection) -> Result<Option<i32>> {
    Ok(
        sqlx::query_scalar::<_, Option<i32>>("SELECT max(year) FROM campaigns")
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Moves the simulated clock forward (never back) and announces it.
pub async fn advance(conn: &mut PgConnection, to: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let now = sqlx::query_scalar!(
        r#"INSERT INTO clock (singleton, simulated_now) VALUES (true, $1)
           ON CONFLICT (singleton) DO UPDATE SET simulated_now = GREATEST(clock.simulated_now, EXCLUDED.simulated_now), updated_at = now()
           RETURNING simulated_now"#,
        to
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!("SELECT pg_notify($1, $2)", CHANNEL, now.to_rfc3339())
        .execute(&mut *conn)
        .await?;
    Ok(now)
}
