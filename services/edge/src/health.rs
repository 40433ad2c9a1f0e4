//! Liveness and readiness as gRPC health services.
//!
//! `junheng.live` is SERVING while the process runs. `junheng.ready` is SERVING only while the
//! database answers a trivial query within a second, checked every [`CHECK_EVERY`]: a replica
//! that cannot reach PostgreSQL is taken out of rotation instead of answering every call with
//! an error, and comes back by itself.

use std::time::Duration;

use sqlx::PgPool;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

pub const LIVE: &str = "junheng.live";
pub const READY: &str = "junheng.ready";
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the database answers `SELECT 1` within a second.
pub async fn database_answers(pool: &PgPool) -> bool {
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool);
    matches!(tokio::time::timeout(CHECK_TIMEOUT, ping).await, Ok(Ok(1)))
}

/// Marks the process live and keeps `junheng.ready` in step with the database until the
/// runtime stops. Transitions are logged once each.
pub async fn spawn_readiness(reporter: HealthReporter, pool: PgPool) {
    reporter
        .set_service_status(LIVE, ServingStatus::Serving)
        .await;
    let first = database_answers(&pool).await;
    reporter.set_service_status(READY, status(first)).await;
    tokio::spawn(async move {
        let mut ready = first;
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let now = database_answers(&pool).await;
            if now != ready {
                if now {
                    tracing::info!("database answers again: ready");
                } else {
                    tracing::error!("database does not answer: not ready");
                }
                ready = now;
            }
            reporter.set_service_status(READY, status(now)).await;
        }
    });
}

fn status(ready: bool) -> ServingStatus {
    if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}
