//! The dispatcher: claims due outbox rows, delivers them, records every attempt. Only the SQL
//! and the concurrency live here; what happens to a row is decided by [`crate::lifecycle`].
//!
//! Protocol (see the crate docs for the guarantees it gives):
//! 1. **Claim** ([`claim`]) in one transaction: `FOR UPDATE SKIP LOCKED` over rows due by the
//!    look-ahead horizon (and rows whose lease expired: crash recovery), re-check reminders
//!    against their obligation (done or moved → cancelled), take tokens from the shared
//!    per-endpoint budget (rows over budget are pushed to when the window frees), mark the
//!    rest `sending` with a lease running from their send instant, commit.
//! 2. **Send** ([`send`]) outside any transaction, the message id being the outbox id. A row
//!    claimed ahead waits for its instant and is re-checked against its obligation just
//!    before.
//! 3. **Finish** ([`finish`]): record the attempt and set `sent` / retry with backoff /
//!    `dead` / `parked`, fenced by the attempt number so a worker whose lease was taken over
//!    cannot overwrite the new owner. Results are written by a finisher running beside the
//!    sends, so sends never wait for the database.
//!
//! This module runs the three side by side: `workers` claim loops, a task per claimed batch,
//! one finisher per drain.

mod claim;
mod finish;
mod send;

/// NOTIFY channel of the outbox trigger (migration 0009): rows were enqueued.
pub const OUTBOX_CHANNEL: &str = "junheng_outbox";

/// Run first in the dispatcher's transactions: plans that walk the outbox's indexes whatever
/// the statistics say. A backlog is usually enqueued faster than autovacuum analyzes it; with
/// statistics from when the table was small the planner sorted the whole backlog (spilling to
/// disk, ~0.1 s per claim at 30,000 rows, since `FOR UPDATE` above a sort cannot stop early)
/// and matched finished rows by sequential scans. Without sequential and bitmap scans the
/// claim reads its index in order and stops at the batch. No JIT: a disabled plan node's
/// penalty counts as cost, and compiling a claim took longer than running it.
/// Transaction-local: the pool's other users keep the planner's own choices.
pub const INDEX_PLANS: &str = "SELECT set_config('enable_seqscan', 'off', true), \
     set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)";

/// [`INDEX_PLANS`] for the transaction open on `conn`.
async fn index_plans(conn: &mut sqlx::PgConnection) -> Result<(), Error> {
    sqlx::query(INDEX_PLANS).execute(conn).await?;
    Ok(())
}

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use junheng_notify::{Outcome, Sender};
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::Error;
use crate::config::{ClockMode, Settings};
use crate::outbox::Payload;

/// Which clock signs vendor requests (Standard Webhooks timestamp, DingTalk/Feishu signatures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignClock {
    /// The system clock: vendors compare signatures with their own clock.
    #[default]
    System,
    /// The tick's "now" (tests and simulated replays against local sinks).
    Tick,
}

/// A tick's "now" and the moment it was read: later instants of the same tick are
/// `now + elapsed`, so times recorded for sends are the real ones even when a batch waited.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    now: DateTime<Utc>,
    read_at: Instant,
}

impl Anchor {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            read_at: Instant::now(),
        }
    }

    fn current(&self) -> DateTime<Utc> {
        self.now + chrono::Duration::from_std(self.read_at.elapsed()).unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub endpoint: String,
    pub kind: String,
    pub attempt: i32,
    pub payload: Payload,
    /// When it is due; later than the claim's "now" for a row claimed ahead.
    pub not_before: DateTime<Utc>,
    pub obligation_id: Option<Uuid>,
    pub planned_due_at: Option<DateTime<Utc>>,
    /// Claimed before it was due: re-checked against its obligation at its instant.
    pub ahead: bool,
    /// When another worker may take the row over: it is not sent after that.
    pub lease_until: DateTime<Utc>,
    pub urgent: bool,
    /// Sent to a Feishu bot (retries keep off its peak minutes).
    pub feishu: bool,
    /// The `traceparent` of the call that caused it: the delivery's span continues it.
    pub trace_context: Option<String>,
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
    /// Waiting for a disabled endpoint (the vendor said it is gone or misconfigured).
    pub parked: usize,
    /// Claimed but not sent this time, left to their lease (they waited too long for a send
    /// slot, a re-check failed, or results could not be recorded): claimed again, same id.
    pub requeued: usize,
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
        self.parked += o.parked;
        self.requeued += o.requeued;
    }
}

/// Cheap to clone: clones share the pool, the sender and this replica's in-flight limits.
#[derive(Clone)]
pub struct Dispatcher {
    pool: PgPool,
    settings: Arc<Settings>,
    sender: Arc<Sender>,
    worker: Arc<str>,
    sign_clock: SignClock,
    /// Rows claimed and not yet recorded, over all claim loops (`dispatch.max_in_flight`).
    /// A row's permit is released when its result is written (or it is left to its lease),
    /// so results held through a database outage keep the loops from claiming more.
    in_flight: Arc<Semaphore>,
    /// Sends in progress over all endpoints without a rate limit (`concurrency` × `workers`).
    sends: Arc<Semaphore>,
    /// Sends in progress per endpoint (`endpoint_concurrency`): a slow or hanging vendor
    /// holds only its own slots. Rate-limited endpoints take only these.
    endpoint_sends: Arc<HashMap<String, Arc<Semaphore>>>,
    /// Slots for rows naming an endpoint this replica does not know (settled at once).
    unknown_sends: Arc<Semaphore>,
    /// Endpoints with a rate limit: never claimed ahead (their budget is taken at claim time).
    limited: Arc<Vec<String>>,
    /// Set by the finisher while it holds results it could not write; the claim loops stop
    /// claiming until every held result is recorded (a claim of our own expired leases
    /// would send those messages again).
    stalled: Arc<AtomicBool>,
    /// Wakes the continuous claim loops ([`Self::run`]): new rows, a moved clock.
    wake: Arc<tokio::sync::watch::Sender<u64>>,
    /// Set when [`Self::run`] stops: sends still waiting for a slot are left to their lease.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Dispatcher {
    pub fn new(pool: PgPool, settings: Arc<Settings>, sender: Arc<Sender>, worker: String) -> Self {
        let d = &settings.dispatch;
        let limited = settings
            .endpoints
            .iter()
            .filter(|(_, e)| d.rate_limits_enabled && !e.limits(d.rate_limit_margin).is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        let endpoint_sends = settings
            .endpoints
            .keys()
            .map(|name| {
                (
                    name.clone(),
                    Arc::new(Semaphore::new(d.endpoint_concurrency.max(1))),
                )
            })
            .collect();
        Self {
            in_flight: Arc::new(Semaphore::new(d.max_in_flight.max(1))),
            sends: Arc::new(Semaphore::new(d.concurrency.max(1) * d.workers.max(1))),
            endpoint_sends: Arc::new(endpoint_sends),
            unknown_sends: Arc::new(Semaphore::new(d.endpoint_concurrency.max(1))),
            limited: Arc::new(limited),
            stalled: Arc::new(AtomicBool::new(false)),
            wake: Arc::new(tokio::sync::watch::channel(0).0),
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
            pool,
            settings,
            sender,
            worker: worker.into(),
            sign_clock: SignClock::System,
        }
    }

    /// Wakes the claim loops of [`Self::run`] (rows were enqueued, the clock moved).
    pub fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// How far ahead rows are claimed: none under a simulated clock, whose "now" jumps.
    fn lookahead(&self) -> chrono::Duration {
        match self.settings.clock {
            ClockMode::Simulated { .. } => chrono::Duration::zero(),
            ClockMode::Real => {
                chrono::Duration::milliseconds(self.settings.dispatch.lookahead_ms as i64)
            }
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

    /// Drains everything due by `now` plus the look-ahead (bounded by `max_rounds` batches
    /// per claim loop) and returns when all of it is finished.
    pub async fn drain(
        &self,
        now: DateTime<Utc>,
        max_rounds: usize,
    ) -> Result<DispatchReport, Error> {
        // `workers` claim loops side by side. A loop does not wait for a batch's sends: each
        // batch is sent by a task of its own while the loop claims the next, up to
        // `max_in_flight` rows. One finisher records every batch's results, in writes as
        // large as what arrived meanwhile. Each loop stops when it finds nothing left to
        // claim, or when the finisher stopped (a database error: claiming more would only
        // send what cannot be recorded).
        let batch = self.settings.dispatch.batch_size.max(1) as u32;
        let anchor = Anchor::new(now);
        // Under the real clock a claim late in a long drain uses the time it runs at; a
        // simulated tick claims at its own instant only.
        let claim_at = || match self.settings.clock {
            ClockMode::Real => anchor.current(),
            ClockMode::Simulated { .. } => now,
        };
        let (results, rx) = self.results_channel();
        let one_loop = |results: tokio::sync::mpsc::Sender<Done>| async move {
            let mut total = DispatchReport::default();
            let mut sends = Vec::new();
            let mut outcome = Ok(());
            for _ in 0..max_rounds {
                let permit = self
                    .in_flight
                    .clone()
                    .acquire_many_owned(batch)
                    .await
                    .expect("the in-flight semaphore is never closed");
                if results.is_closed() {
                    break;
                }
                let (claimed, r) = match self.claim(claim_at()).await {
                    Ok(c) => c,
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                };
                total.add(&r);
                if claimed.is_empty() {
                    if r.cancelled == 0 {
                        break;
                    }
                    continue;
                }
                let mut permit = permit;
                let permits = permit.split(claimed.len());
                drop(permit);
                let d = self.clone();
                let results = results.clone();
                sends.push(tokio::spawn(async move {
                    d.send_batch(claimed, anchor, results, permits).await
                }));
            }
            // Claimed rows are always sent (or left to their lease) before returning.
            for h in sends {
                match h.await {
                    Ok((cancelled, requeued)) => {
                        total.cancelled += cancelled;
                        total.requeued += requeued;
                    }
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }
            outcome.map(|()| total)
        };
        let claiming = async move {
            let loops =
                (0..self.settings.dispatch.workers.max(1)).map(|_| one_loop(results.clone()));
            // `results` is dropped here: the finisher ends once every batch has been sent.
            futures::future::join_all(loops).await
        };
        let (loops, finished) = tokio::join!(claiming, self.record(rx));
        let mut total = finished?;
        for r in loops {
            total.add(&r?);
        }
        Ok(total)
    }

    /// The service's dispatcher: `workers` claim loops that keep claiming while due rows
    /// exist (bounded by `max_in_flight` rows claimed and not yet recorded, never by a
    /// per-tick cap), one finisher for the life of the loop, until `stop` turns true.
    ///
    /// A loop that finds nothing to claim sleeps until the next row enters the look-ahead
    /// (or, for a rate-limited endpoint, falls due), an expired lease, a [`Self::wake`]
    /// (NOTIFY `junheng_outbox` from the enqueuing transaction, a clock move), or
    /// `poll_interval_ms` — whichever comes first. On stop the loops send what they claimed,
    /// and the finisher gets `shutdown_grace_secs` to record it.
    pub async fn run(&self, stop: tokio::sync::watch::Receiver<bool>) -> DispatchReport {
        self.stopping.send_replace(false);
        let (results, rx) = self.results_channel();
        let finisher = {
            let d = self.clone();
            tokio::spawn(async move { d.record(rx).await })
        };
        let loops: Vec<_> = (0..self.settings.dispatch.workers.max(1))
            .map(|_| self.claim_loop(results.clone(), stop.clone()))
            .collect();
        drop(results);
        let stopping = async {
            let mut stop = stop.clone();
            let _ = stop.wait_for(|s| *s).await;
            self.stopping.send_replace(true);
        };
        let (totals, ()) = tokio::join!(futures::future::join_all(loops), stopping);
        let grace = Duration::from_secs(self.settings.dispatch.shutdown_grace_secs);
        let mut total = match tokio::time::timeout(grace, finisher).await {
            Ok(Ok(Ok(r))) => r,
            Ok(Ok(Err(e))) => {
                tracing::error!(error = %e, "the finisher failed");
                DispatchReport::default()
            }
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {
                tracing::error!(
                    "stopping with results not recorded (database unreachable): those messages are sent again, same id, when their leases end"
                );
                DispatchReport::default()
            }
        };
        for t in totals {
            total.add(&t);
        }
        total
    }

    async fn claim_loop(
        &self,
        results: tokio::sync::mpsc::Sender<Done>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> DispatchReport {
        let batch = self.settings.dispatch.batch_size.max(1) as u32;
        let poll = Duration::from_millis(self.settings.dispatch.poll_interval_ms.max(1));
        let mut wake = self.wake.subscribe();
        let mut total = DispatchReport::default();
        let mut sends = tokio::task::JoinSet::new();
        let mut failures = 0u32;
        loop {
            if *stop.borrow() {
                break;
            }
            while let Some(r) = sends.try_join_next() {
                let (cancelled, requeued) = r.unwrap_or_else(|e: tokio::task::JoinError| {
                    std::panic::resume_unwind(e.into_panic())
                });
                total.cancelled += cancelled;
                total.requeued += requeued;
            }
            if self.stalled.load(Ordering::Acquire) {
                // Results are held through an outage: claim nothing until all of them are
                // written, so none of our own leases is claimed (and sent) again.
                let all = self.settings.dispatch.max_in_flight.max(1) as u32;
                tokio::select! {
                    p = self.in_flight.acquire_many(all) => drop(p),
                    _ = stop.changed() => break,
                }
                self.stalled.store(false, Ordering::Release);
                tracing::info!("every held result is recorded; claiming again");
            }
            let permit = tokio::select! {
                p = self.in_flight.clone().acquire_many_owned(batch) => {
                    p.expect("the in-flight semaphore is never closed")
                }
                _ = stop.changed() => break,
            };
            wake.mark_unchanged();
            let claimed = match crate::now(&self.pool, self.settings.clock).await {
                Ok(now) => self.claim(now).await.map(|c| (now, c)),
                Err(e) => Err(e),
            };
            let (now, (claimed, r)) = match claimed {
                Ok(c) => {
                    failures = 0;
                    c
                }
                Err(Error::NoSimulatedClock) => {
                    drop(permit);
                    tokio::select! {
                        _ = wake.changed() => {}
                        _ = tokio::time::sleep(poll) => {}
                        _ = stop.changed() => break,
                    }
                    continue;
                }
                Err(e) => {
                    drop(permit);
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(30) {
                        tracing::warn!(error = %e, failures, "claiming failed; retrying");
                    }
                    let backoff = Duration::from_millis(100 << failures.min(4)).min(poll);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => break,
                    }
                    continue;
                }
            };
            total.add(&r);
            if claimed.is_empty() {
                drop(permit);
                if r.cancelled > 0 || r.parked > 0 || r.deferred > 0 {
                    continue;
                }
                let wait = match self.next_wake(now).await {
                    Ok(Some(w)) => w.min(poll),
                    Ok(None) => poll,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the next due instant failed");
                        poll
                    }
                };
                tokio::select! {
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => break,
                }
                continue;
            }
            let mut permit = permit;
            let permits = permit.split(claimed.len());
            drop(permit);
            let d = self.clone();
            let results = results.clone();
            sends.spawn(async move {
                d.send_batch(claimed, Anchor::new(now), results, permits)
                    .await
            });
        }
        // Claimed rows are always sent (or left to their lease) before returning.
        while let Some(r) = sends.join_next().await {
            let (cancelled, requeued) =
                r.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            total.cancelled += cancelled;
            total.requeued += requeued;
        }
        total
    }

    /// How long an idle claim loop may sleep: until the next row enters the look-ahead
    /// (rate-limited endpoints: until it is due) or a lease ends. `None` when nothing waits.
    /// Under a simulated clock "now" moves only by a clock change, which wakes the loops.
    async fn next_wake(&self, now: DateTime<Utc>) -> Result<Option<Duration>, Error> {
        if matches!(self.settings.clock, ClockMode::Simulated { .. }) {
            return Ok(None);
        }
        type Instant3 = (
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        );
        let (free, limited, lease): Instant3 = sqlx::query_as(
            r#"SELECT (SELECT min(not_before) FROM outbox
                       WHERE status IN ('pending', 'held') AND NOT endpoint = ANY($1)),
                      (SELECT min(not_before) FROM outbox
                       WHERE status IN ('pending', 'held') AND endpoint = ANY($1)),
                      (SELECT min(lease_until) FROM outbox WHERE status = 'sending')"#,
        )
        .bind(self.limited.as_slice())
        .fetch_one(&self.pool)
        .await?;
        let next = [free.map(|t| t - self.lookahead()), limited, lease]
            .into_iter()
            .flatten()
            .min();
        // Never spin: rows locked by another replica are due but not claimable by us.
        Ok(next.map(|t| {
            (t - now)
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_millis(5))
        }))
    }

    fn results_channel(
        &self,
    ) -> (
        tokio::sync::mpsc::Sender<Done>,
        tokio::sync::mpsc::Receiver<Done>,
    ) {
        tokio::sync::mpsc::channel(self.settings.dispatch.finish_batch.max(1) * 2)
    }

    fn is_limited(&self, endpoint: &str) -> bool {
        self.limited.iter().any(|e| e == endpoint)
    }
}

/// One send attempt's result, waiting to be recorded.
struct Done {
    claimed: Claimed,
    outcome: Outcome,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    /// The row's share of `in_flight`: released once the result is written.
    _permit: Option<OwnedSemaphorePermit>,
}
