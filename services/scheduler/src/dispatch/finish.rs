//! Step 3, the finisher: records each attempt and settles its row as
//! [`lifecycle::settle`] says (sent, retry at, dead, parked with its endpoint disabled), in
//! few transactions (`UNNEST` arrays), fenced by the attempt number.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use junheng_notify::Outcome;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{DispatchReport, Dispatcher, Done};
use crate::Error;
use crate::config::Settings;
use crate::lifecycle::{self, Attempted, OutboxStatus, RetryPolicy, Settled, Settlement};

/// How one result was recorded.
enum Finish {
    Settled(Settlement),
    /// Another worker took the row over after our lease expired: our result was not written.
    LostLease,
}

type Results = std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Done>>>;

impl Dispatcher {
    /// Step 3, the finishers: `dispatch.finishers` of them side by side record results as
    /// they come in, several per statement (whatever arrived while the previous write ran, at
    /// most `finish_batch`), so a message is never left unrecorded for longer than one such
    /// write after its send returned, and sends never wait for the database. While one
    /// finisher waits for its write (a commit is a WAL flush), another collects the next
    /// group. Ends when every sender is gone.
    pub(super) async fn record(
        &self,
        results: tokio::sync::mpsc::Receiver<Done>,
    ) -> Result<DispatchReport, Error> {
        let results: Results = std::sync::Arc::new(tokio::sync::Mutex::new(results));
        let finishers =
            (0..self.settings.dispatch.finishers.max(1)).map(|_| self.record_from(results.clone()));
        let mut report = DispatchReport::default();
        for r in futures::future::join_all(finishers).await {
            report.add(&r?);
        }
        Ok(report)
    }

    async fn record_from(&self, results: Results) -> Result<DispatchReport, Error> {
        let finish_batch = self.settings.dispatch.finish_batch.max(1);
        let mut report = DispatchReport::default();
        let mut done = Vec::with_capacity(finish_batch);
        loop {
            // One finisher at a time waits for results; the others are writing theirs.
            if results
                .lock()
                .await
                .recv_many(&mut done, finish_batch)
                .await
                == 0
            {
                break;
            }
            let mut tries = 0u32;
            let finished = loop {
                match self.write_results(&results, &mut done, finish_batch).await {
                    Ok(f) => break f,
                    // These messages' deliveries are known: giving their results up would
                    // send them again when their leases end. Hold them (the claim loops stop
                    // claiming meanwhile, so memory stays bounded by `max_in_flight`) and
                    // write them when the database is back, however long that takes.
                    Err(e) => {
                        tries += 1;
                        self.stalled.store(true, Ordering::Release);
                        if tries == 1 || tries.is_multiple_of(20) {
                            tracing::warn!(error = %e, rows = done.len(), tries, "recording results failed; holding them and retrying");
                        }
                        tokio::time::sleep(Duration::from_millis(100 << tries.min(4))).await;
                    }
                }
            };
            if tries > 0 {
                tracing::info!(rows = done.len(), tries, "held results recorded");
            }
            if finished
                .iter()
                .any(|f| matches!(f, Finish::Settled(Settlement::Retry)))
            {
                // A retry is due later: the idle claim loops re-read when the next row is due.
                self.wake();
            }
            for f in finished {
                match f {
                    Finish::Settled(Settlement::Sent) => report.sent += 1,
                    Finish::Settled(Settlement::Retry) => report.retried += 1,
                    Finish::Settled(Settlement::Dead) => report.dead += 1,
                    Finish::Settled(Settlement::Parked) => report.parked += 1,
                    Finish::LostLease => report.lost_lease += 1,
                }
            }
            done.clear();
        }
        Ok(report)
    }

    /// One write of a finisher: `done` plus whatever arrived while waiting for a connection
    /// (unless another finisher is collecting it).
    async fn write_results(
        &self,
        results: &Results,
        done: &mut Vec<Done>,
        finish_batch: usize,
    ) -> Result<Vec<Finish>, Error> {
        let mut tx = self.pool.begin().await?;
        if let Ok(mut results) = results.try_lock() {
            while done.len() < finish_batch
                && let Ok(d) = results.try_recv()
            {
                done.push(d);
            }
        }
        super::index_plans(&mut tx).await?;
        let finished = record_attempts(&mut tx, &self.settings, &self.worker, done).await?;
        tx.commit().await?;
        Ok(finished)
    }
}

/// Records a group of attempts in one statement: the outbox row settled with its lease
/// cleared, fenced by the attempt number (and `sending`) so a worker whose lease was taken
/// over cannot overwrite the new owner. The attempt that delivers is recorded on the settled
/// row itself (`sent_by`, `sent_started_at`, `sent_at`, `sent_detail`: two row writes per
/// message, lease and settlement); every other attempt, and a delivery whose row was not ours
/// any more, gets a `delivery_attempts` row (migration 0023; `delivery_log` reads both).
async fn record_attempts(
    conn: &mut PgConnection,
    settings: &Settings,
    worker: &str,
    done: &[Done],
) -> Result<Vec<Finish>, Error> {
    let d = &settings.dispatch;
    let policy = RetryPolicy {
        max_attempts: d.max_attempts,
        base: Duration::from_secs(d.backoff_base_secs),
        max: Duration::from_secs(d.backoff_max_secs),
    };
    let settled: Vec<Settled> = done
        .iter()
        .map(|x| {
            let c = &x.claimed;
            let attempted = Attempted {
                attempt: c.attempt,
                endpoint: &c.endpoint,
                started_at: x.started_at,
                answered_at: x.finished_at,
                urgent: c.urgent,
                feishu: c.feishu,
            };
            if let Outcome::Retry {
                after: Some(after), ..
            } = &x.outcome
            {
                crate::metrics::rate_limit_wait(&c.endpoint, "vendor", 1, *after);
            }
            lifecycle::settle(&x.outcome, &attempted, &policy, rand::random::<f64>())
        })
        .collect();
    let ids: Vec<Uuid> = done.iter().map(|x| x.claimed.id).collect();
    let attempts: Vec<i32> = done.iter().map(|x| x.claimed.attempt).collect();
    let statuses: Vec<OutboxStatus> = settled.iter().map(Settled::status).collect();
    let last_errors: Vec<Option<String>> = settled.iter().map(|s| s.last_error.clone()).collect();
    let not_befores: Vec<Option<DateTime<Utc>>> = settled.iter().map(|s| s.retry_at).collect();
    let sent_ats: Vec<DateTime<Utc>> = done.iter().map(|x| x.finished_at).collect();
    let codes: Vec<&str> = settled.iter().map(|s| s.attempt_outcome).collect();
    let details: Vec<&str> = settled.iter().map(|s| s.detail.as_str()).collect();
    let started: Vec<DateTime<Utc>> = done.iter().map(|x| x.started_at).collect();
    // The first report of a dead endpoint disables it (and says why); later ones keep that.
    // In endpoint order, so finishers running side by side take its key locks in one order.
    let mut disabling: Vec<(&Done, &str)> = done
        .iter()
        .zip(&settled)
        .filter_map(|(x, s)| Some((x, s.disables_endpoint()?)))
        .collect();
    disabling.sort_by(|a, b| a.0.claimed.endpoint.cmp(&b.0.claimed.endpoint));
    let dis_endpoints: Vec<&str> = disabling
        .iter()
        .map(|(x, _)| x.claimed.endpoint.as_str())
        .collect();
    let dis_at: Vec<DateTime<Utc>> = disabling.iter().map(|(x, _)| x.finished_at).collect();
    let dis_reasons: Vec<&str> = disabling.iter().map(|(_, why)| *why).collect();
    let dis_by: Vec<Uuid> = disabling.iter().map(|(x, _)| x.claimed.id).collect();
    // One statement per group: the settled outbox rows, the attempt rows of those not
    // delivered (or not ours any more) and any endpoint they disable, each array sent once.
    // (Data-modifying CTEs all run, read or not.)
    // Matched by (id, attempt): a stale attempt n of a row beside its attempt n + 1 in the
    // same group must not count as settled.
    let updated: HashSet<(Uuid, i32)> = sqlx::query!(
        r#"WITH u AS (
               SELECT * FROM UNNEST($1::uuid[], $2::int4[], $3::text[], $4::text[], $5::timestamptz[],
                                    $6::timestamptz[], $9::timestamptz[], $10::text[], $11::text[])
                    AS u(id, attempt, status, last_error, not_before, sent_at, started_at, outcome, detail)),
           settled AS (
               UPDATE outbox o SET status = u.status, lease_until = NULL, last_error = COALESCE(u.last_error, o.last_error),
                      not_before = COALESCE(u.not_before, o.not_before),
                      sent_at = CASE WHEN u.status = $7 THEN u.sent_at ELSE o.sent_at END,
                      sent_by = CASE WHEN u.status = $7 THEN $8 ELSE o.sent_by END,
                      sent_started_at = CASE WHEN u.status = $7 THEN u.started_at ELSE o.sent_started_at END,
                      sent_detail = CASE WHEN u.status = $7 THEN u.detail ELSE o.sent_detail END
               FROM u WHERE o.id = u.id AND o.attempts = u.attempt AND o.status = 'sending'
               RETURNING o.id, o.attempts, o.status),
           logged AS (
               INSERT INTO delivery_attempts (outbox_id, attempt, worker, started_at, finished_at, outcome, detail)
               SELECT u.id, u.attempt, $8, u.started_at, u.sent_at, u.outcome, u.detail
               FROM u LEFT JOIN settled s ON s.id = u.id AND s.attempts = u.attempt
               WHERE s.status IS DISTINCT FROM $7
               ON CONFLICT (outbox_id, attempt) DO NOTHING),
           disabled AS (
               INSERT INTO endpoint_states (endpoint, disabled_at, reason, outbox_id)
               SELECT * FROM UNNEST($12::text[], $13::timestamptz[], $14::text[], $15::uuid[])
               ON CONFLICT (endpoint) DO NOTHING)
           SELECT id AS "id!", attempts AS "attempts!" FROM settled"#,
        &ids,
        &attempts,
        &statuses as &[OutboxStatus],
        &last_errors as &[Option<String>],
        &not_befores as &[Option<DateTime<Utc>>],
        &sent_ats,
        OutboxStatus::Sent as OutboxStatus,
        worker,
        &started,
        &codes as &[&str],
        &details as &[&str],
        &dis_endpoints as &[&str],
        &dis_at,
        &dis_reasons as &[&str],
        &dis_by
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.id, r.attempts))
    .collect();
    let results = done
        .iter()
        .zip(&settled)
        .map(|(x, s)| {
            let c = &x.claimed;
            if !updated.contains(&(c.id, c.attempt)) {
                tracing::warn!(outbox.id = %c.id, attempt = c.attempt, "lease was taken over by another worker before we finished");
                return Finish::LostLease;
            }
            let error = s.last_error.as_deref().unwrap_or_default();
            match s.settlement {
                Settlement::Dead => {
                    tracing::error!(outbox.id = %c.id, outbox.endpoint = %c.endpoint, outbox.kind = %c.kind, error = %error, "dead-lettered")
                }
                Settlement::Parked => {
                    tracing::error!(outbox.id = %c.id, outbox.endpoint = %c.endpoint, error = %error, "endpoint disabled: its messages wait until the office enables it again (EnableEndpoint)")
                }
                Settlement::Retry => {
                    tracing::warn!(outbox.id = %c.id, outbox.endpoint = %c.endpoint, attempt = c.attempt, "will retry")
                }
                Settlement::Sent => {}
            }
            Finish::Settled(s.settlement)
        })
        .collect();
    Ok(results)
}
