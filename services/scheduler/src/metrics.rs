//! The scheduler's Prometheus series, refreshed from its tables at each scrape (so every
//! replica reports the same shared outbox):
//! - `junheng_outbox_messages{endpoint,status}`: rows per status (`dead` are the dead letters,
//!   `parked` wait for a disabled endpoint, `held` for quiet hours or a rate-limit window);
//! - `junheng_outbox_oldest_due_seconds{endpoint}`: how long the oldest due, unsent row has
//!   waited (0 when none) — the alert for a backed-up outbox;
//! - `junheng_delivery_attempts_total{endpoint,outcome}`: attempts by outcome (`delivered`,
//!   `retry`, `permanent`, `disable_endpoint`, `cancelled`);
//! - `junheng_endpoint_disabled{endpoint}`: 1 while a vendor-disabled endpoint waits for the
//!   office;
//! - `junheng_rate_limit_waits_total{endpoint,source}` and
//!   `junheng_rate_limit_wait_seconds{endpoint,source}`: messages this replica had to put off
//!   because an endpoint's shared budget was spent (`source="budget"`) or the vendor asked for a
//!   pause (`source="vendor"`, its Retry-After), and how long the wait was; counted where it
//!   happens (per replica, not from the tables);
//! - the pool, and every gRPC call (from `junheng-edge`).

use junheng_edge::metrics::GaugeFamily;
use sqlx::PgPool;

use crate::ClockMode;

static MESSAGES: GaugeFamily = GaugeFamily::new("junheng_outbox_messages");
static OLDEST: GaugeFamily = GaugeFamily::new("junheng_outbox_oldest_due_seconds");
static DISABLED: GaugeFamily = GaugeFamily::new("junheng_endpoint_disabled");

/// Records that `messages` to `endpoint` wait `wait` for a rate limit (`source`: `budget`
/// or `vendor`).
pub fn rate_limit_wait(
    endpoint: &str,
    source: &'static str,
    messages: usize,
    wait: std::time::Duration,
) {
    metrics::counter!("junheng_rate_limit_waits_total", "endpoint" => endpoint.to_string(), "source" => source)
        .increment(messages as u64);
    metrics::histogram!("junheng_rate_limit_wait_seconds", "endpoint" => endpoint.to_string(), "source" => source)
        .record(wait.as_secs_f64());
}

pub async fn scrape(pool: &PgPool, clock: ClockMode) -> anyhow::Result<()> {
    junheng_edge::metrics::record_pool(pool);
    let now = crate::now(pool, clock).await?;
    let rows = junheng_store::metrics::outbox(pool, now).await?;
    MESSAGES.set_all(rows.iter().map(|(endpoint, status, n, _)| {
        (
            vec![("endpoint", endpoint.clone()), ("status", status.clone())],
            *n as f64,
        )
    }));
    let mut oldest = std::collections::BTreeMap::<&str, f64>::new();
    for (endpoint, _, _, age) in &rows {
        let e = oldest.entry(endpoint.as_str()).or_default();
        *e = e.max(*age);
    }
    OLDEST.set_all(
        oldest
            .into_iter()
            .map(|(endpoint, age)| (vec![("endpoint", endpoint.to_string())], age)),
    );
    for (endpoint, outcome, n) in junheng_store::metrics::attempts(pool).await? {
        metrics::counter!("junheng_delivery_attempts_total", "endpoint" => endpoint, "outcome" => outcome)
            .absolute(n as u64);
    }
    DISABLED.set_all(
        junheng_store::metrics::disabled_endpoints(pool)
            .await?
            .into_iter()
            .map(|e| (vec![("endpoint", e)], 1.0)),
    );
    Ok(())
}
