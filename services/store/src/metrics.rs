//! The counts behind the services' Prometheus gauges, read at scrape time. Plain (unchecked)
//! queries on purpose: they are aggregates (over the whole outbox and attempt log for the
//! scheduler's), asserted by the metrics tests, and keep `.sqlx/` free of monitoring queries.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::Result;

/// Open obligations per campaign, phase and kind: (campaign code, phase, kind, open, overdue).
/// The phase is the one whose deadline the obligation follows (`notice` for a notice's own end).
pub async fn obligations(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<Vec<(String, String, String, i64, i64)>> {
    Ok(sqlx::query_as(
        r#"SELECT c.code,
                  CASE WHEN o.deadline_ref = 'fixed' THEN 'notice' ELSE split_part(o.deadline_ref, ':', 2) END,
                  o.kind,
                  count(*),
                  count(*) FILTER (WHERE o.due_at <= $1)
           FROM obligations o JOIN campaigns c ON c.id = o.campaign_id
           WHERE o.status = 'open'
           GROUP BY 1, 2, 3"#,
    )
    .bind(now)
    .fetch_all(pool)
    .await?)
}

/// Audit events (state transitions and other decisions) per campaign and action.
pub async fn events(pool: &PgPool) -> Result<Vec<(String, String, i64)>> {
    Ok(sqlx::query_as(
        r#"SELECT c.code, e.action, count(*)
           FROM events e JOIN campaigns c ON c.id = e.campaign_id
           GROUP BY 1, 2"#,
    )
    .fetch_all(pool)
    .await?)
}

/// Outbox rows per endpoint and status, with the age in seconds of the oldest row that is due
/// and not yet sent (pending, held or sending; 0 when none).
pub async fn outbox(pool: &PgPool, now: DateTime<Utc>) -> Result<Vec<(String, String, i64, f64)>> {
    Ok(sqlx::query_as(
        r#"SELECT endpoint, status, count(*),
                  coalesce(extract(epoch FROM $1 - min(not_before)
                           FILTER (WHERE status IN ('pending', 'held', 'sending') AND not_before <= $1)), 0)::float8
           FROM outbox GROUP BY 1, 2"#,
    )
    .bind(now)
    .fetch_all(pool)
    .await?)
}

/// Delivery attempts per endpoint and outcome (delivered, retry, permanent, disable_endpoint,
/// cancelled): the attempt rows, and the deliveries recorded on their outbox row (migration
/// 0023), counted as `delivery_log` lists them without joining the outbox to itself.
pub async fn attempts(pool: &PgPool) -> Result<Vec<(String, String, i64)>> {
    Ok(sqlx::query_as(
        r#"SELECT endpoint, outcome, sum(n)::int8 FROM (
               SELECT o.endpoint, a.outcome, count(*) AS n
               FROM delivery_attempts a JOIN outbox o ON o.id = a.outbox_id
               GROUP BY 1, 2
               UNION ALL
               SELECT o.endpoint, 'delivered', count(*)
               FROM outbox o
               WHERE o.sent_by IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM delivery_attempts a
                                 WHERE a.outbox_id = o.id AND a.attempt = o.attempts)
               GROUP BY 1) t
           GROUP BY 1, 2"#,
    )
    .fetch_all(pool)
    .await?)
}

/// Endpoints disabled after a vendor said they are gone.
pub async fn disabled_endpoints(pool: &PgPool) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT endpoint FROM endpoint_states WHERE disabled_at IS NOT NULL")
            .fetch_all(pool)
            .await?,
    )
}
