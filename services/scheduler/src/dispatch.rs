//! The dispatcher: claims due outbox rows, delivers them, records every attempt.
//!
//! Protocol (see the crate docs for the guarantees it gives):
//! 1. **Claim** in one transaction: `FOR UPDATE SKIP LOCKED` over due rows (and rows whose
//!    lease expired: crash recovery), re-check reminders against their obligation (done or
//!    moved → cancelled), take tokens from the shared per-endpoint budget (rows over budget are
//!    pushed to when the window frees), mark the rest `sending` with a lease, commit.
//! 2. **Send** outside any transaction, the message id being the outbox id.
//! 3. **Finish**: record the attempt and set `sent` / retry with backoff / `dead`, fenced by
//!    the attempt number so a worker whose lease was taken over cannot overwrite the new owner.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use junheng_notify::{Outcome, Sender};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::Error;
use crate::config::Settings;
use crate::outbox::Payload;
use crate::plan;

/// Which clock signs vendor requests (Standard Webhooks timestamp, DingTalk/Feishu signatures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignClock {
    /// The system clock: vendors compare signatures with their own clock.
    #[default]
    System,
    /// The tick's "now" (tests and simulated replays against local sinks).
    Tick,
}

#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub endpoint: String,
    pub kind: String,
    pub attempt: i32,
    pub payload: Payload,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DispatchReport {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
    /// Cancelled at claim: the obligation was done, or its deadline moved.
    pub cancelled: usize,
    /// Left for later by the rate limit.
    pub deferred: usize,
    /// Finished by another worker after our lease expired.
    pub lost_lease: usize,
}

impl DispatchReport {
    fn add(&mut self, o: &DispatchReport) {
        self.claimed += o.claimed;
        self.sent += o.sent;
        self.retried += o.retried;
        self.dead += o.dead;
        self.cancelled += o.cancelled;
        self.deferred += o.deferred;
        self.lost_lease += o.lost_lease;
    }
}

pub struct Dispatcher {
    pool: PgPool,
    settings: Arc<Settings>,
    sender: Arc<Sender>,
    worker: String,
    sign_clock: SignClock,
}

impl Dispatcher {
    pub fn new(pool: PgPool, settings: Arc<Settings>, sender: Arc<Sender>, worker: String) -> Self {
        Self {
            pool,
            settings,
            sender,
            worker,
            sign_clock: SignClock::System,
        }
    }

    pub fn with_sign_clock(mut self, c: SignClock) -> Self {
        self.sign_clock = c;
        self
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Claims one batch, delivers it, records the results.
    pub async fn dispatch_once(&self, now: DateTime<Utc>) -> Result<DispatchReport, Error> {
        let (claimed, mut report) = self.claim(now).await?;
        let r = self.deliver(claimed, now).await?;
        report.add(&r);
        Ok(report)
    }

    /// Drains everything due at `now` (bounded by `max_rounds` batches).
    pub async fn drain(
        &self,
        now: DateTime<Utc>,
        max_rounds: usize,
    ) -> Result<DispatchReport, Error> {
        let mut total = DispatchReport::default();
        for _ in 0..max_rounds {
            let r = self.dispatch_once(now).await?;
            total.add(&r);
            if r.claimed == 0 && r.cancelled == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// Step 1: claim a batch and commit the leases. Public so tests can simulate a crash
    /// between claim and send.
    pub async fn claim(&self, now: DateTime<Utc>) -> Result<(Vec<Claimed>, DispatchReport), Error> {
        let mut report = DispatchReport::default();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query!(
            r#"SELECT o.id, o.endpoint, o.kind, o.recipient, o.attempts, o.payload, o.obligation_id, o.planned_due_at, o.not_before,
                      ob.status AS "ob_status?", ob.due_at AS "ob_due?"
               FROM outbox o LEFT JOIN obligations ob ON ob.id = o.obligation_id
               WHERE (o.status IN ('pending', 'held') AND o.not_before <= $1)
                  OR (o.status = 'sending' AND o.lease_until <= $1)
               ORDER BY o.not_before, o.id
               LIMIT $2
               FOR UPDATE OF o SKIP LOCKED"#,
            now,
            self.settings.dispatch.batch_size
        )
        .fetch_all(&mut *tx)
        .await?;

        let mut cancel: Vec<(Uuid, String)> = Vec::new();
        let mut live = Vec::new();
        // Catch-up: of several due reminders for the same obligation, recipient and endpoint,
        // only the latest is worth sending.
        let mut latest: HashMap<(Uuid, &str, &str), DateTime<Utc>> = HashMap::new();
        for r in &rows {
            if let (Some(ob), "reminder") = (r.obligation_id, r.kind.as_str()) {
                let e = latest
                    .entry((ob, r.recipient.as_str(), r.endpoint.as_str()))
                    .or_insert(r.not_before);
                *e = (*e).max(r.not_before);
            }
        }
        for r in &rows {
            if let Some(ob) = r.obligation_id {
                if r.ob_status.as_deref() != Some("open") {
                    cancel.push((
                        r.id,
                        format!("obligation is {}", r.ob_status.as_deref().unwrap_or("gone")),
                    ));
                    continue;
                }
                if r.ob_due != r.planned_due_at {
                    cancel.push((r.id, "deadline moved; re-planned".into()));
                    continue;
                }
                if r.kind == "reminder"
                    && latest
                        .get(&(ob, r.recipient.as_str(), r.endpoint.as_str()))
                        .is_some_and(|t| *t > r.not_before)
                {
                    cancel.push((r.id, "superseded by a later reminder".into()));
                    continue;
                }
            }
            live.push(r);
        }
        if !cancel.is_empty() {
            let (ids, why): (Vec<Uuid>, Vec<String>) = cancel.into_iter().unzip();
            report.cancelled = ids.len();
            sqlx::query!(
                r#"UPDATE outbox SET status = 'cancelled', last_error = u.why, lease_until = NULL
                   FROM UNNEST($1::uuid[], $2::text[]) AS u(id, why) WHERE outbox.id = u.id"#,
                &ids,
                &why
            )
            .execute(&mut *tx)
            .await?;
        }

        // Shared rate limits: per endpoint, take as many as every window allows.
        let mut by_endpoint: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, r) in live.iter().enumerate() {
            by_endpoint.entry(r.endpoint.as_str()).or_default().push(i);
        }
        let mut endpoints: Vec<&str> = by_endpoint.keys().copied().collect();
        endpoints.sort_unstable(); // fixed lock order across replicas
        let mut take = vec![true; live.len()];
        let mut defer: Vec<(Uuid, DateTime<Utc>)> = Vec::new();
        if self.settings.dispatch.rate_limits_enabled {
            for ep in endpoints {
                let idx = &by_endpoint[ep];
                let limits = self
                    .settings
                    .endpoints
                    .get(ep)
                    .map(|e| e.limits())
                    .unwrap_or_default();
                if limits.is_empty() {
                    continue;
                }
                let (allowed, next_free) =
                    take_budget(&mut tx, ep, &limits, idx.len(), now).await?;
                for &i in &idx[allowed..] {
                    take[i] = false;
                    defer.push((live[i].id, next_free));
                }
            }
        }
        if !defer.is_empty() {
            report.deferred = defer.len();
            let (ids, at): (Vec<Uuid>, Vec<DateTime<Utc>>) = defer.into_iter().unzip();
            // A deferred expired lease goes back to pending: it was never sent by us.
            sqlx::query!(
                r#"UPDATE outbox SET not_before = u.at, status = CASE WHEN status = 'sending' THEN 'pending' ELSE status END
                   FROM UNNEST($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE outbox.id = u.id"#,
                &ids,
                &at
            )
            .execute(&mut *tx)
            .await?;
        }

        let claimed: Vec<_> = live
            .iter()
            .zip(take)
            .filter(|(_, t)| *t)
            .map(|(r, _)| *r)
            .collect();
        let ids: Vec<Uuid> = claimed.iter().map(|r| r.id).collect();
        let lease_until =
            now + chrono::Duration::from_std(self.settings.dispatch.lease()).expect("lease fits");
        sqlx::query!(
            "UPDATE outbox SET status = 'sending', lease_until = $2, attempts = attempts + 1 WHERE id = ANY($1)",
            &ids,
            lease_until
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;

        let out = claimed
            .into_iter()
            .map(|r| Claimed {
                id: r.id,
                endpoint: r.endpoint.clone(),
                kind: r.kind.clone(),
                attempt: r.attempts + 1,
                payload: serde_json::from_value(r.payload.clone()).unwrap_or_else(|e| Payload {
                    title: "(unreadable payload)".into(),
                    text: e.to_string(),
                    ..Payload::default()
                }),
            })
            .collect::<Vec<_>>();
        report.claimed = out.len();
        Ok((out, report))
    }

    /// Steps 2 and 3 for a claimed batch, `concurrency` sends at a time.
    pub async fn deliver(
        &self,
        claimed: Vec<Claimed>,
        now: DateTime<Utc>,
    ) -> Result<DispatchReport, Error> {
        let results: Vec<Result<Finish, Error>> = futures::stream::iter(claimed)
            .map(|c| self.deliver_one(c, now))
            .buffer_unordered(self.settings.dispatch.concurrency)
            .collect()
            .await;
        let mut report = DispatchReport::default();
        for r in results {
            match r? {
                Finish::Sent => report.sent += 1,
                Finish::Retry => report.retried += 1,
                Finish::Dead => report.dead += 1,
                Finish::LostLease => report.lost_lease += 1,
            }
        }
        Ok(report)
    }

    async fn deliver_one(&self, c: Claimed, now: DateTime<Utc>) -> Result<Finish, Error> {
        let started = Instant::now();
        let outcome = match self.settings.endpoints.get(&c.endpoint) {
            None => Outcome::DisableEndpoint {
                reason: format!(
                    "no endpoint named `{}` in this scheduler's configuration",
                    c.endpoint
                ),
            },
            Some(ep) => {
                let endpoint = c.payload.effective_endpoint(&ep.endpoint);
                let msg = c.payload.to_message(c.id);
                let sign_ms = match self.sign_clock {
                    SignClock::System => Utc::now().timestamp_millis(),
                    SignClock::Tick => now.timestamp_millis(),
                };
                self.sender.send(&endpoint, &msg, sign_ms).await
            }
        };
        let finished_at = now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
        let mut conn = self.pool.acquire().await?;
        finish(
            &mut conn,
            &self.settings,
            &self.worker,
            &c,
            &outcome,
            now,
            finished_at,
        )
        .await
    }
}

enum Finish {
    Sent,
    Retry,
    Dead,
    LostLease,
}

/// Sliding-window budgets: `recent` holds the claim instants of the last `max` claims. Returns
/// how many of `wanted` may be claimed now, and when the next slot frees otherwise.
async fn take_budget(
    tx: &mut PgConnection,
    endpoint: &str,
    limits: &[crate::config::RateLimit],
    wanted: usize,
    now: DateTime<Utc>,
) -> Result<(usize, DateTime<Utc>), Error> {
    let mut windows = Vec::new();
    for l in limits {
        let window_ms = (l.per_secs * 1000) as i64;
        sqlx::query!(
            "INSERT INTO endpoint_budgets (endpoint, window_ms, max_sends) VALUES ($1, $2, $3) ON CONFLICT (endpoint, window_ms) DO UPDATE SET max_sends = EXCLUDED.max_sends",
            endpoint,
            window_ms,
            l.max as i32
        )
        .execute(&mut *tx)
        .await?;
        let recent = sqlx::query_scalar!(
            "SELECT recent FROM endpoint_budgets WHERE endpoint = $1 AND window_ms = $2 FOR UPDATE",
            endpoint,
            window_ms
        )
        .fetch_one(&mut *tx)
        .await?;
        let window = chrono::Duration::milliseconds(window_ms);
        let mut recent: Vec<DateTime<Utc>> =
            recent.into_iter().filter(|t| *t > now - window).collect();
        recent.sort();
        windows.push((window_ms, l.max as usize, window, recent));
    }
    let allowed = windows
        .iter()
        .map(|(_, max, _, recent)| max.saturating_sub(recent.len()))
        .min()
        .unwrap_or(wanted)
        .min(wanted);
    let mut next_free = now + chrono::Duration::seconds(1);
    for (window_ms, max, window, mut recent) in windows {
        recent.extend(std::iter::repeat_n(now, allowed));
        if recent.len() >= max {
            // The slot frees when the oldest of the last `max` claims leaves the window.
            let oldest = recent[recent.len() - max];
            next_free = next_free.max(oldest + window);
        }
        let keep = recent.len().saturating_sub(max);
        let recent = recent.split_off(keep);
        sqlx::query!(
            "UPDATE endpoint_budgets SET recent = $3 WHERE endpoint = $1 AND window_ms = $2",
            endpoint,
            window_ms,
            &recent
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok((allowed, next_free))
}

async fn finish(
    conn: &mut PgConnection,
    settings: &Settings,
    worker: &str,
    c: &Claimed,
    outcome: &Outcome,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
) -> Result<Finish, Error> {
    let d = &settings.dispatch;
    let (code, detail) = match outcome {
        Outcome::Delivered { detail } => ("delivered", detail.clone()),
        Outcome::Retry { reason, .. } => ("retry", reason.clone()),
        Outcome::Permanent { reason } => ("permanent", reason.clone()),
        Outcome::DisableEndpoint { reason } => ("disable_endpoint", reason.clone()),
    };
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // Fenced by the attempt number: if our lease expired and another worker claimed the row,
    // its attempt number is higher and this update matches nothing.
    let (status, not_before, last_error, result) = match outcome {
        Outcome::Delivered { .. } => ("sent", None, None, Finish::Sent),
        Outcome::Retry { after, .. } if c.attempt < d.max_attempts => {
            let delay = plan::backoff(
                c.attempt,
                Duration::from_secs(d.backoff_base_secs),
                Duration::from_secs(d.backoff_max_secs),
                *after,
                rand::random::<f64>(),
            );
            (
                "pending",
                Some(
                    started_at
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1)),
                ),
                Some(format!("attempt {}: {detail}", c.attempt)),
                Finish::Retry,
            )
        }
        Outcome::Retry { .. } => (
            "dead",
            None,
            Some(format!("gave up after {} attempts: {detail}", c.attempt)),
            Finish::Dead,
        ),
        Outcome::Permanent { .. } => (
            "dead",
            None,
            Some(format!("permanent: {detail}")),
            Finish::Dead,
        ),
        Outcome::DisableEndpoint { .. } => (
            "dead",
            None,
            Some(format!(
                "endpoint `{}` needs an admin: {detail}",
                c.endpoint
            )),
            Finish::Dead,
        ),
    };
    let updated = sqlx::query!(
        r#"UPDATE outbox SET status = $3, lease_until = NULL, last_error = COALESCE($4, last_error),
                  not_before = COALESCE($5, not_before), sent_at = CASE WHEN $3 = 'sent' THEN $6 ELSE sent_at END
           WHERE id = $1 AND attempts = $2 AND status = 'sending'"#,
        c.id,
        c.attempt,
        status,
        last_error,
        not_before,
        finished_at
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query!(
        r#"INSERT INTO delivery_attempts (outbox_id, attempt, worker, started_at, finished_at, outcome, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (outbox_id, attempt) DO NOTHING"#,
        c.id,
        c.attempt,
        worker,
        started_at,
        finished_at,
        code,
        detail
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if updated == 0 {
        tracing::warn!(outbox.id = %c.id, attempt = c.attempt, "lease was taken over by another worker before we finished");
        return Ok(Finish::LostLease);
    }
    match result {
        Finish::Dead => {
            tracing::error!(outbox.id = %c.id, outbox.endpoint = %c.endpoint, outbox.kind = %c.kind, error = %last_error.unwrap_or_default(), "dead-lettered")
        }
        Finish::Retry => {
            tracing::warn!(outbox.id = %c.id, outbox.endpoint = %c.endpoint, attempt = c.attempt, "will retry")
        }
        _ => {}
    }
    Ok(result)
}
