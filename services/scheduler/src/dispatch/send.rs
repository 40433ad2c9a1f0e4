//! Step 2, the send: a claimed batch goes out `concurrency` at a time, a task per send, rows
//! claimed ahead at their instant (re-checked against their obligation just before), each
//! result handed to the finisher ([`super::finish`]). No transaction is open while a vendor
//! is called.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::Instrument;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use junheng_notify::{Outcome, Sender};
use junheng_store::notifications;
use junheng_store::obligations::ObligationStatus;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use super::{Anchor, Claimed, DispatchReport, Dispatcher, Done, SignClock};
use crate::Error;
use crate::lifecycle::{self, OutboxStatus};

impl Dispatcher {
    /// Steps 2 and 3 for a claimed batch: rows claimed ahead at their instant, results
    /// recorded beside the sends (see [`Self::record`]).
    pub async fn deliver(
        &self,
        claimed: Vec<Claimed>,
        now: DateTime<Utc>,
    ) -> Result<DispatchReport, Error> {
        let (results, rx) = self.results_channel();
        let ((cancelled, requeued), finished) = tokio::join!(
            self.send_batch(claimed, Anchor::new(now), results, None),
            self.record(rx)
        );
        let mut report = finished?;
        report.cancelled += cancelled;
        report.requeued += requeued;
        Ok(report)
    }

    /// Sends a claimed batch, rows claimed ahead at their instant, a task per send that
    /// waits for a slot of its endpoint (`endpoint_concurrency`) and, without a rate limit,
    /// one of the replica's (`concurrency` × `workers`), so a hanging vendor holds only its
    /// own rows. Each result is handed to the finisher with the row's share of `permits`
    /// (`in_flight`). Times are measured from when the claim's "now" was read, so `sent_at`
    /// includes every wait. Returns how many rows the re-check at their instant cancelled,
    /// and how many were left to their lease.
    pub(super) async fn send_batch(
        &self,
        claimed: Vec<Claimed>,
        anchor: Anchor,
        results: tokio::sync::mpsc::Sender<Done>,
        mut permits: Option<OwnedSemaphorePermit>,
    ) -> (usize, usize) {
        let cancelled = AtomicUsize::new(0);
        let requeued = AtomicUsize::new(0);
        let mut sends = futures::stream::FuturesUnordered::new();
        let forward = |done: Result<Option<Done>, tokio::task::JoinError>| {
            let results = &results;
            let requeued = &requeued;
            async move {
                let done = done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                match done {
                    Some(done) => {
                        // The finisher is gone only when the loop stopped and could not
                        // record in time: the row is left to its lease, sent again with
                        // its id.
                        if results.send(done).await.is_err() {
                            requeued.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    None => {
                        requeued.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        };
        for (at, mut run) in runs(claimed, anchor.current()) {
            let mut permits_run = permits.as_mut().and_then(|p| p.split(run.len()));
            // Keep the sends in progress moving while waiting for the next run's instant.
            let ready = self.await_run(at, std::mem::take(&mut run), anchor, &cancelled, &requeued);
            tokio::pin!(ready);
            let run = loop {
                tokio::select! {
                    run = &mut ready => break run,
                    Some(done) = sends.next(), if !sends.is_empty() => forward(done).await,
                }
            };
            // Rate-limited rows took their budget at the claim: they go first, so queueing
            // cannot bunch them up at the vendor.
            let mut run = run;
            run.sort_by_key(|c| !self.is_limited(&c.endpoint));
            for c in run {
                let permit = permits_run.as_mut().and_then(|p| p.split(1));
                // A task per send: its HTTP exchange (and the client's timeout clock) runs
                // even while this batch waits to hand a result to the finisher. Polled only
                // from here, a send that had already reached the vendor could time out on our
                // side and be retried: a duplicate (found by a 100,000-row burst).
                let d = self.clone();
                // Debug, so the shipped log level does not format a span per message; the
                // trace exporter takes it at any level (`junheng_edge::telemetry`). Warnings
                // under it name the message themselves (`notify.message_id` = `outbox.id`).
                let span = tracing::debug_span!(
                    "deliver",
                    otel.kind = "client",
                    outbox.id = %c.id,
                    endpoint = %c.endpoint,
                    kind = %c.kind,
                    attempt = c.attempt,
                );
                junheng_edge::telemetry::continue_trace(&span, c.trace_context.as_deref());
                sends.push(tokio::spawn(
                    async move { d.send_one(c, anchor, permit).await }.instrument(span),
                ));
            }
            // Rows the re-check dropped give their permits back here.
            drop(permits_run);
        }
        drop(permits);
        while let Some(done) = sends.next().await {
            forward(done).await;
        }
        (cancelled.into_inner(), requeued.into_inner())
    }

    /// Waits until a run of rows claimed ahead is due. Just before (`RECHECK_LEAD`, so the
    /// query is not on the burst's critical path) it cancels those whose obligation was done
    /// or moved since the claim: the claim's re-check, repeated at the send instant.
    async fn await_run(
        &self,
        at: DateTime<Utc>,
        run: Vec<Claimed>,
        anchor: Anchor,
        cancelled: &AtomicUsize,
        requeued: &AtomicUsize,
    ) -> Vec<Claimed> {
        let until = |t: DateTime<Utc>| (t - anchor.current()).to_std().ok();
        if let Some(wait) = until(at - RECHECK_LEAD) {
            tokio::time::sleep(wait).await;
        }
        let run = self.recheck(run, cancelled, requeued).await;
        if let Some(wait) = until(at) {
            tokio::time::sleep(wait).await;
        }
        run
    }

    async fn recheck(
        &self,
        run: Vec<Claimed>,
        cancelled: &AtomicUsize,
        requeued: &AtomicUsize,
    ) -> Vec<Claimed> {
        let (obligations, dues): (Vec<Uuid>, Vec<Option<DateTime<Utc>>>) = run
            .iter()
            .filter(|c| c.ahead)
            .filter_map(|c| Some((c.obligation_id?, c.planned_due_at)))
            .unzip();
        if obligations.is_empty() {
            return run;
        }
        // Read-only and one lookup per obligation: it runs just before the burst's instant.
        let stale = async {
            let mut conn = self.pool.acquire().await?;
            let now = notifications::obligations_now(&mut conn, &obligations).await?;
            // Stale unless the obligation is still open with the deadline the row was planned
            // for.
            Ok::<_, junheng_store::StoreError>(
                obligations
                    .iter()
                    .zip(&dues)
                    .filter(|(id, due)| {
                        !now.get(id).is_some_and(|o| {
                            o.status == ObligationStatus::Open && Some(o.due_at) == **due
                        })
                    })
                    .map(|(id, due)| (*id, *due))
                    .collect::<Vec<_>>(),
            )
        }
        .await;
        let stale: HashSet<(Uuid, Option<DateTime<Utc>>)> = match stale {
            Ok(stale) if stale.is_empty() => return run,
            Ok(stale) => stale.into_iter().collect(),
            Err(e) => {
                // Those rows are not sent now: they keep their lease and are claimed (and
                // re-checked) again when it ends. The rest of the run goes out.
                let (unchecked, live): (Vec<Claimed>, Vec<Claimed>) = run
                    .into_iter()
                    .partition(|c| c.ahead && c.obligation_id.is_some());
                tracing::error!(error = %e, rows = unchecked.len(), "re-check before sending failed");
                requeued.fetch_add(unchecked.len(), Ordering::Relaxed);
                return live;
            }
        };
        let (gone, live): (Vec<Claimed>, Vec<Claimed>) = run.into_iter().partition(|c| {
            c.ahead
                && c.obligation_id
                    .is_some_and(|o| stale.contains(&(o, c.planned_due_at)))
        });
        let ids: Vec<Uuid> = gone.iter().map(|c| c.id).collect();
        let attempts: Vec<i32> = gone.iter().map(|c| c.attempt).collect();
        match sqlx::query!(
            r#"UPDATE outbox o SET status = $3, lease_until = NULL,
                      last_error = 'obligation done or deadline moved before the send instant'
               FROM UNNEST($1::uuid[], $2::int4[]) AS u(id, attempt)
               WHERE o.id = u.id AND o.attempts = u.attempt AND o.status = 'sending'"#,
            &ids,
            &attempts,
            OutboxStatus::Cancelled as OutboxStatus
        )
        .execute(&self.pool)
        .await
        {
            Ok(r) => {
                cancelled.fetch_add(r.rows_affected() as usize, Ordering::Relaxed);
                live
            }
            Err(e) => {
                // Not sent either way; the claim after their lease cancels them.
                tracing::error!(error = %e, rows = ids.len(), "cancelling stale reminders failed");
                requeued.fetch_add(ids.len(), Ordering::Relaxed);
                live
            }
        }
    }

    /// One attempt, or `None` when the row waited so long for a send slot that its lease
    /// could run out mid-send (another worker may take it over then): it is left to the
    /// lease and claimed again with its id.
    async fn send_one(
        &self,
        mut c: Claimed,
        anchor: Anchor,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Option<Done> {
        let own = self
            .endpoint_sends
            .get(&c.endpoint)
            .unwrap_or(&self.unknown_sends);
        let mut stopping = self.stopping.subscribe();
        // Stopping: a send not started yet is left to its lease (claimed again, same id).
        let _own_turn = tokio::select! {
            turn = own.acquire() => turn.expect("the send semaphores are never closed"),
            _ = stopping.wait_for(|s| *s) => return None,
        };
        let _turn = if self.is_limited(&c.endpoint) {
            None
        } else {
            Some(
                self.sends
                    .acquire()
                    .await
                    .expect("the send semaphores are never closed"),
            )
        };
        let started = anchor.current();
        let margin = (self.settings.dispatch.lease() / 2).min(Sender::DEFAULT_TIMEOUT * 4 / 3);
        if !lifecycle::lease_allows_send(started, c.lease_until, margin) {
            tracing::warn!(outbox.id = %c.id, lease_until = %c.lease_until, "not sent: its lease would run out; left for the next claim");
            return None;
        }
        let outcome = match self.settings.endpoints.get(&c.endpoint) {
            None => Outcome::DisableEndpoint {
                reason: format!(
                    "no endpoint named `{}` in this scheduler's configuration",
                    c.endpoint
                ),
            },
            Some(ep) => {
                let endpoint = c.payload.effective_endpoint(&ep.endpoint);
                let msg = std::mem::take(&mut c.payload).into_message(c.id);
                let sign_ms = match self.sign_clock {
                    SignClock::System => Utc::now().timestamp_millis(),
                    SignClock::Tick => anchor.now.timestamp_millis(),
                };
                self.sender.send(&endpoint, &msg, sign_ms).await
            }
        };
        let finished_at = anchor.current();
        Some(Done {
            claimed: c,
            outcome,
            started_at: started,
            finished_at,
            _permit: permit,
        })
    }
}

/// How long before a run of rows claimed ahead is due its obligations are re-checked.
const RECHECK_LEAD: chrono::Duration = chrono::Duration::milliseconds(250);

/// Splits a claimed batch (in due order) into runs sent together: rows already due form the
/// first run; rows claimed ahead are grouped by instant, a run waiting for its latest row
/// (at most 100 ms), so nothing is sent early.
fn runs(claimed: Vec<Claimed>, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, Vec<Claimed>)> {
    let slack = chrono::Duration::milliseconds(100);
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>, Vec<Claimed>)> = Vec::new();
    for c in claimed {
        let due = c.not_before.max(now);
        match out.last_mut() {
            Some((first, at, run)) if due <= *first + slack => {
                *at = (*at).max(due);
                run.push(c);
            }
            _ => out.push((due, due, vec![c])),
        }
    }
    out.into_iter().map(|(_, at, run)| (at, run)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Payload;
    use chrono::TimeZone;

    fn claimed(n: u128, not_before: DateTime<Utc>) -> Claimed {
        Claimed {
            id: Uuid::from_u128(n),
            endpoint: "hook".into(),
            kind: "reminder".into(),
            attempt: 1,
            payload: Payload::default(),
            not_before,
            obligation_id: None,
            planned_due_at: None,
            ahead: false,
            lease_until: not_before + chrono::Duration::seconds(60),
            urgent: false,
            feishu: false,
            trace_context: None,
        }
    }

    #[test]
    fn runs_leave_at_their_latest_row_and_never_early() {
        let now = Utc.with_ymd_and_hms(2020, 4, 9, 0, 30, 0).unwrap();
        let ms = chrono::Duration::milliseconds;
        let batch = vec![
            claimed(1, now - ms(5_000)),
            claimed(2, now),
            claimed(3, now + ms(80)),
            claimed(4, now + ms(1_000)),
            claimed(5, now + ms(1_050)),
            claimed(6, now + ms(1_200)),
        ];
        let runs = runs(batch, now);
        let shape: Vec<(DateTime<Utc>, Vec<u128>)> = runs
            .iter()
            .map(|(at, run)| (*at, run.iter().map(|c| c.id.as_u128()).collect()))
            .collect();
        assert_eq!(
            shape,
            vec![
                // Already due (or within 100 ms of now): together, at the latest of them.
                (now + ms(80), vec![1, 2, 3]),
                (now + ms(1_050), vec![4, 5]),
                (now + ms(1_200), vec![6]),
            ]
        );
        for (at, run) in &runs {
            assert!(
                run.iter().all(|c| c.not_before <= *at),
                "nothing leaves early"
            );
        }
    }
}
