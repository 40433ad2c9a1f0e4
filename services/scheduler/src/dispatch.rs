//! The dispatcher: claims due outbox rows, delivers them, records every attempt.
//!
//! Protocol (see the crate docs for the guarantees it gives):
//! 1. **Claim** in one transaction: `FOR UPDATE SKIP LOCKED` over rows due by the look-ahead
//!    horizon (and rows whose lease expired: crash recovery), re-check reminders against their
//!    obligation (done or moved → cancelled), take tokens from the shared per-endpoint budget
//!    (rows over budget are pushed to when the window frees), mark the rest `sending` with a
//!    lease running from their send instant, commit.
//! 2. **Send** outside any transaction, the message id being the outbox id. A row claimed
//!    ahead waits for its instant and is re-checked against its obligation just before.
//! 3. **Finish**: record the attempt and set `sent` / retry with backoff / `dead`, fenced by
//!    the attempt number so a worker whose lease was taken over cannot overwrite the new owner.
//!    Results are written by a finisher running beside the sends, so sends never wait for the
//!    database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use junheng_notify::{Outcome, Sender};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::Error;
use crate::config::{ClockMode, Settings};
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
    /// Rows claimed and not yet finished, over all claim loops (`dispatch.max_in_flight`).
    in_flight: Arc<Semaphore>,
    /// Sends in progress over all batches (`concurrency` × `workers`).
    sends: Arc<Semaphore>,
    /// The same for rate-limited endpoints, so their rows never queue behind a burst.
    limited_sends: Arc<Semaphore>,
    /// Endpoints with a rate limit: never claimed ahead (their budget is taken at claim time).
    limited: Arc<Vec<String>>,
}

impl Dispatcher {
    pub fn new(pool: PgPool, settings: Arc<Settings>, sender: Arc<Sender>, worker: String) -> Self {
        let d = &settings.dispatch;
        let limited = settings
            .endpoints
            .iter()
            .filter(|(_, e)| d.rate_limits_enabled && !e.limits().is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        Self {
            in_flight: Arc::new(Semaphore::new(d.max_in_flight.max(1))),
            sends: Arc::new(Semaphore::new(d.concurrency.max(1) * d.workers.max(1))),
            limited_sends: Arc::new(Semaphore::new(d.concurrency.max(1))),
            limited: Arc::new(limited),
            pool,
            settings,
            sender,
            worker: worker.into(),
            sign_clock: SignClock::System,
        }
    }

    /// How far ahead rows are claimed: none under a simulated clock, whose "now" jumps.
    fn lookahead(&self) -> chrono::Duration {
        match self.settings.clock {
            ClockMode::Simulated => chrono::Duration::zero(),
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
            ClockMode::Simulated => now,
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
                let d = self.clone();
                let results = results.clone();
                sends.push(tokio::spawn(async move {
                    let counts = d.send_batch(claimed, anchor, results).await;
                    drop(permit);
                    counts
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

    /// Step 1: claim a batch and commit the leases. Public so tests can simulate a crash
    /// between claim and send.
    pub async fn claim(&self, now: DateTime<Utc>) -> Result<(Vec<Claimed>, DispatchReport), Error> {
        let mut report = DispatchReport::default();
        let mut tx = self.pool.begin().await?;
        // Two index range scans, each stopping after `batch_size` rows: due rows in
        // (not_before, id) order (index `outbox_due_order`), and expired leases (crash
        // recovery). An OR of both in one scan made every claim sort the whole due set.
        let rows = sqlx::query!(
            r#"WITH due AS (
                   SELECT id, endpoint, kind, recipient, attempts, payload, obligation_id, planned_due_at, not_before
                   FROM outbox WHERE status IN ('pending', 'held') AND not_before <= $3
                        AND (not_before <= $1 OR NOT endpoint = ANY($4))
                   ORDER BY not_before, id LIMIT $2 FOR UPDATE SKIP LOCKED),
               leased AS (
                   SELECT id, endpoint, kind, recipient, attempts, payload, obligation_id, planned_due_at, not_before
                   FROM outbox WHERE status = 'sending' AND lease_until <= $1
                   ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED),
               c AS (SELECT * FROM due UNION ALL SELECT * FROM leased)
               SELECT c.id AS "id!", c.endpoint AS "endpoint!", c.kind AS "kind!", c.recipient AS "recipient!",
                      c.attempts AS "attempts!", c.payload::text AS "payload!", c.obligation_id, c.planned_due_at,
                      c.not_before AS "not_before!", ob.status AS "ob_status?", ob.due_at AS "ob_due?",
                      es.reason AS "disabled?"
               FROM c LEFT JOIN obligations ob ON ob.id = c.obligation_id
                      LEFT JOIN endpoint_states es ON es.endpoint = c.endpoint
               ORDER BY c.not_before, c.id"#,
            now,
            self.settings.dispatch.batch_size,
            now + self.lookahead(),
            self.limited.as_slice()
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
        let mut park: Vec<Uuid> = Vec::new();
        for r in &rows {
            if r.disabled.is_some() {
                park.push(r.id);
                continue;
            }
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

        if !park.is_empty() {
            // Not an attempt: the message waits for its endpoint to be enabled again.
            report.parked = park.len();
            sqlx::query!(
                "UPDATE outbox SET status = 'parked', lease_until = NULL, last_error = 'endpoint disabled; waiting for it to be enabled again' WHERE id = ANY($1)",
                &park
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
                r#"UPDATE outbox SET not_before = u.at, lease_until = NULL,
                          status = CASE WHEN status = 'sending' THEN 'pending' ELSE status END
                   FROM UNNEST($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE outbox.id = u.id"#,
                &ids,
                &at
            )
            .execute(&mut *tx)
            .await?;
        }

        let ids: Vec<Uuid> = live
            .iter()
            .zip(take)
            .filter(|(_, t)| *t)
            .map(|(r, _)| r.id)
            .collect();
        // The lease runs from the send instant: a row claimed ahead is not taken over while
        // it waits for its time. The database's lease is the one the sender honours.
        let leases: HashMap<Uuid, DateTime<Utc>> = sqlx::query!(
            r#"UPDATE outbox SET status = 'sending', lease_until = GREATEST(not_before, $2) + make_interval(secs => $3),
                    attempts = attempts + 1
             WHERE id = ANY($1)
             RETURNING id, lease_until AS "lease_until!""#,
            &ids,
            now,
            self.settings.dispatch.lease().as_secs_f64()
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.lease_until))
        .collect();
        tx.commit().await?;

        let out = rows
            .into_iter()
            .filter_map(|r| {
                let lease_until = *leases.get(&r.id)?;
                let payload: Payload =
                    serde_json::from_str(&r.payload).unwrap_or_else(|e| Payload {
                        title: "(unreadable payload)".into(),
                        text: e.to_string(),
                        ..Payload::default()
                    });
                Some(Claimed {
                    id: r.id,
                    urgent: payload.urgent,
                    payload,
                    feishu: matches!(
                        self.settings
                            .endpoints
                            .get(&r.endpoint)
                            .map(|e| &e.endpoint),
                        Some(junheng_notify::Endpoint::Feishu(_))
                    ),
                    endpoint: r.endpoint,
                    kind: r.kind,
                    attempt: r.attempts + 1,
                    ahead: r.not_before > now,
                    lease_until,
                    not_before: r.not_before,
                    obligation_id: r.obligation_id,
                    planned_due_at: r.planned_due_at,
                })
            })
            .collect::<Vec<_>>();
        report.claimed = out.len();
        Ok((out, report))
    }

    /// Steps 2 and 3 for a claimed batch: up to `concurrency` sends at a time, rows claimed
    /// ahead at their instant, results recorded beside the sends (see [`Self::record`]).
    pub async fn deliver(
        &self,
        claimed: Vec<Claimed>,
        now: DateTime<Utc>,
    ) -> Result<DispatchReport, Error> {
        let (results, rx) = self.results_channel();
        let ((cancelled, requeued), finished) = tokio::join!(
            self.send_batch(claimed, Anchor::new(now), results),
            self.record(rx)
        );
        let mut report = finished?;
        report.cancelled += cancelled;
        report.requeued += requeued;
        Ok(report)
    }

    fn results_channel(
        &self,
    ) -> (
        tokio::sync::mpsc::Sender<Done>,
        tokio::sync::mpsc::Receiver<Done>,
    ) {
        tokio::sync::mpsc::channel(self.settings.dispatch.finish_batch.max(1) * 2)
    }

    /// Sends a claimed batch, `concurrency` at a time (and at most `concurrency` × `workers`
    /// over all batches), rows claimed ahead at their instant, each result handed to the
    /// finisher. Times are measured from when the tick's "now" was read, so `sent_at`
    /// includes every wait (for a claim, a send slot, the row's instant). Returns how many
    /// rows the re-check at their instant cancelled.
    async fn send_batch(
        &self,
        claimed: Vec<Claimed>,
        anchor: Anchor,
        results: tokio::sync::mpsc::Sender<Done>,
    ) -> (usize, usize) {
        let cancelled = AtomicUsize::new(0);
        let requeued = AtomicUsize::new(0);
        let concurrency = self.settings.dispatch.concurrency.max(1);
        let mut sends = futures::stream::FuturesUnordered::new();
        let forward = |done: Result<Option<Done>, tokio::task::JoinError>| {
            let results = &results;
            let requeued = &requeued;
            async move {
                let done = done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                match done {
                    Some(done) => {
                        // The finisher is gone only after a database error it could not
                        // ride out: the row is left to its lease, sent again with its id.
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
            // Keep the sends in progress moving while waiting for the next run's instant.
            let ready = self.await_run(at, std::mem::take(&mut run), anchor, &cancelled, &requeued);
            tokio::pin!(ready);
            let mut run = loop {
                tokio::select! {
                    run = &mut ready => break run,
                    Some(done) = sends.next(), if !sends.is_empty() => forward(done).await,
                }
            };
            // Rate-limited rows took their budget at the claim: they go first, with send
            // slots of their own, so queueing cannot bunch them up at the vendor.
            run.sort_by_key(|c| !self.is_limited(&c.endpoint));
            let mut run = run.into_iter();
            while let Some(c) = run.next() {
                if results.is_closed() {
                    // Nothing could be recorded: stop sending, leave the rest to the lease.
                    requeued.fetch_add(1 + run.len(), Ordering::Relaxed);
                    break;
                }
                if sends.len() >= concurrency
                    && let Some(done) = sends.next().await
                {
                    forward(done).await;
                }
                // A task per send: its HTTP exchange (and the client's timeout clock) runs
                // even while this batch waits to hand a result to the finisher. Polled only
                // from here, a send that had already reached the vendor could time out on our
                // side and be retried: a duplicate (found by a 100,000-row burst).
                let d = self.clone();
                sends.push(tokio::spawn(async move { d.send_one(c, anchor).await }));
            }
        }
        while let Some(done) = sends.next().await {
            forward(done).await;
        }
        (cancelled.into_inner(), requeued.into_inner())
    }

    fn is_limited(&self, endpoint: &str) -> bool {
        self.limited.iter().any(|e| e == endpoint)
    }

    /// Step 3, the finisher: records results as they come in, several per transaction
    /// (whatever arrived while the previous write ran, at most `finish_batch`), so a message
    /// is never left unrecorded for longer than one such write after its send returned, and
    /// sends never wait for the database. Ends when every sender is gone.
    async fn record(
        &self,
        mut results: tokio::sync::mpsc::Receiver<Done>,
    ) -> Result<DispatchReport, Error> {
        let finish_batch = self.settings.dispatch.finish_batch.max(1);
        let mut report = DispatchReport::default();
        let mut done = Vec::with_capacity(finish_batch);
        while results.recv_many(&mut done, finish_batch).await > 0 {
            let mut tries = 0;
            let finished = loop {
                match self
                    .write_results(&mut results, &mut done, finish_batch)
                    .await
                {
                    Ok(f) => break f,
                    // Sent messages whose results are lost would all be sent again when their
                    // leases end: ride out a short outage (a failover, a full pool) first.
                    Err(e) if tries < 5 => {
                        tries += 1;
                        tracing::warn!(error = %e, rows = done.len(), tries, "recording results failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                    }
                    Err(e) => return Err(e),
                }
            };
            for f in finished {
                match f {
                    Finish::Sent => report.sent += 1,
                    Finish::Retry => report.retried += 1,
                    Finish::Dead => report.dead += 1,
                    Finish::Parked => report.parked += 1,
                    Finish::LostLease => report.lost_lease += 1,
                }
            }
            done.clear();
        }
        Ok(report)
    }

    /// One write of the finisher: `done` plus whatever arrived while waiting for a connection.
    async fn write_results(
        &self,
        results: &mut tokio::sync::mpsc::Receiver<Done>,
        done: &mut Vec<Done>,
        finish_batch: usize,
    ) -> Result<Vec<Finish>, Error> {
        let mut conn = self.pool.acquire().await?;
        while done.len() < finish_batch
            && let Ok(d) = results.try_recv()
        {
            done.push(d);
        }
        finish(&mut conn, &self.settings, &self.worker, done).await
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
        let stale = sqlx::query!(
            r#"SELECT u.id AS "id!", u.due FROM UNNEST($1::uuid[], $2::timestamptz[]) AS u(id, due)
               WHERE NOT EXISTS (SELECT 1 FROM obligations ob
                                 WHERE ob.id = u.id AND ob.status = 'open' AND ob.due_at = u.due)"#,
            &obligations,
            &dues as &[Option<DateTime<Utc>>]
        )
        .fetch_all(&self.pool)
        .await;
        let stale: HashSet<(Uuid, Option<DateTime<Utc>>)> = match stale {
            Ok(stale) if stale.is_empty() => return run,
            Ok(stale) => stale.into_iter().map(|r| (r.id, r.due)).collect(),
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
            r#"UPDATE outbox o SET status = 'cancelled', lease_until = NULL,
                      last_error = 'obligation done or deadline moved before the send instant'
               FROM UNNEST($1::uuid[], $2::int4[]) AS u(id, attempt)
               WHERE o.id = u.id AND o.attempts = u.attempt AND o.status = 'sending'"#,
            &ids,
            &attempts
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
    async fn send_one(&self, mut c: Claimed, anchor: Anchor) -> Option<Done> {
        let slots = if self.is_limited(&c.endpoint) {
            &self.limited_sends
        } else {
            &self.sends
        };
        let _turn = slots
            .acquire()
            .await
            .expect("the send semaphores are never closed");
        let started = anchor.current();
        let margin = (self.settings.dispatch.lease() / 2).min(Sender::DEFAULT_TIMEOUT * 4 / 3);
        if started + chrono::Duration::from_std(margin).unwrap_or_default() >= c.lease_until {
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

/// One send attempt's result, waiting to be recorded.
struct Done {
    claimed: Claimed,
    outcome: Outcome,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
}

enum Finish {
    Sent,
    Retry,
    Dead,
    /// The vendor said the endpoint is gone or misconfigured: the endpoint is disabled and
    /// the message waits for it.
    Parked,
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

/// Records a group of attempts in one transaction: one `delivery_attempts` row each, and the
/// outbox row set `sent` / back to `pending` with backoff / `dead`, fenced by the attempt
/// number so a worker whose lease was taken over cannot overwrite the new owner.
async fn finish(
    conn: &mut PgConnection,
    settings: &Settings,
    worker: &str,
    done: &[Done],
) -> Result<Vec<Finish>, Error> {
    let d = &settings.dispatch;
    let n = done.len();
    let mut ids = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut last_errors: Vec<Option<String>> = Vec::with_capacity(n);
    let mut not_befores: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut sent_ats = Vec::with_capacity(n);
    let mut codes = Vec::with_capacity(n);
    let mut details = Vec::with_capacity(n);
    let mut started = Vec::with_capacity(n);
    let mut results = Vec::with_capacity(n);
    for x in done {
        let c = &x.claimed;
        let (code, detail) = match &x.outcome {
            Outcome::Delivered { detail } => ("delivered", detail.clone()),
            Outcome::Retry { reason, .. } => ("retry", reason.clone()),
            Outcome::Permanent { reason } => ("permanent", reason.clone()),
            Outcome::DisableEndpoint { reason } => ("disable_endpoint", reason.clone()),
        };
        let (status, not_before, last_error, result) = match &x.outcome {
            Outcome::Delivered { .. } => ("sent", None, None, Finish::Sent),
            Outcome::Retry { after, .. } if c.attempt < d.max_attempts => {
                let delay = plan::backoff(
                    c.attempt,
                    Duration::from_secs(d.backoff_base_secs),
                    Duration::from_secs(d.backoff_max_secs),
                    *after,
                    rand::random::<f64>(),
                );
                let mut retry_at = x.started_at
                    + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
                if !c.urgent && c.feishu {
                    // Retries keep off Feishu's :00/:30 peaks too (error 11232 is a peak).
                    retry_at = plan::off_feishu_peak(retry_at, retry_at, None, None);
                }
                (
                    "pending",
                    Some(retry_at),
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
                "parked",
                None,
                Some(format!(
                    "endpoint `{}` disabled, needs an admin: {detail}",
                    c.endpoint
                )),
                Finish::Parked,
            ),
        };
        ids.push(c.id);
        attempts.push(c.attempt);
        statuses.push(status.to_owned());
        last_errors.push(last_error);
        not_befores.push(not_before);
        sent_ats.push(x.finished_at);
        codes.push(code.to_owned());
        details.push(detail);
        started.push(x.started_at);
        results.push(result);
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let updated: std::collections::HashSet<Uuid> = sqlx::query_scalar!(
        r#"UPDATE outbox o SET status = u.status, lease_until = NULL, last_error = COALESCE(u.last_error, o.last_error),
                  not_before = COALESCE(u.not_before, o.not_before),
                  sent_at = CASE WHEN u.status = 'sent' THEN u.sent_at ELSE o.sent_at END
           FROM UNNEST($1::uuid[], $2::int4[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])
                AS u(id, attempt, status, last_error, not_before, sent_at)
           WHERE o.id = u.id AND o.attempts = u.attempt AND o.status = 'sending'
           RETURNING o.id"#,
        &ids,
        &attempts,
        &statuses,
        &last_errors as &[Option<String>],
        &not_befores as &[Option<DateTime<Utc>>],
        &sent_ats
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    sqlx::query!(
        r#"INSERT INTO delivery_attempts (outbox_id, attempt, worker, started_at, finished_at, outcome, detail)
           SELECT id, attempt, $1, s, f, o, d
           FROM UNNEST($2::uuid[], $3::int4[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::text[])
                AS u(id, attempt, s, f, o, d)
           ON CONFLICT (outbox_id, attempt) DO NOTHING"#,
        worker,
        &ids,
        &attempts,
        &started,
        &sent_ats,
        &codes,
        &details
    )
    .execute(&mut *tx)
    .await?;
    // The first report of a dead endpoint disables it (and says why); later ones keep that.
    let mut disabled: (Vec<String>, Vec<DateTime<Utc>>, Vec<String>, Vec<Uuid>) =
        Default::default();
    for x in done {
        if let Outcome::DisableEndpoint { reason } = &x.outcome {
            disabled.0.push(x.claimed.endpoint.clone());
            disabled.1.push(x.finished_at);
            disabled.2.push(reason.clone());
            disabled.3.push(x.claimed.id);
        }
    }
    if !disabled.0.is_empty() {
        sqlx::query!(
            r#"INSERT INTO endpoint_states (endpoint, disabled_at, reason, outbox_id)
               SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::uuid[])
               ON CONFLICT (endpoint) DO NOTHING"#,
            &disabled.0,
            &disabled.1,
            &disabled.2,
            &disabled.3
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    for (i, (x, result)) in done.iter().zip(results.iter_mut()).enumerate() {
        let c = &x.claimed;
        if !updated.contains(&c.id) {
            tracing::warn!(outbox.id = %c.id, attempt = c.attempt, "lease was taken over by another worker before we finished");
            *result = Finish::LostLease;
            continue;
        }
        match result {
            Finish::Dead => {
                tracing::error!(outbox.id = %c.id, outbox.endpoint = %c.endpoint, outbox.kind = %c.kind, error = %last_errors[i].as_deref().unwrap_or_default(), "dead-lettered")
            }
            Finish::Parked => {
                tracing::error!(outbox.id = %c.id, outbox.endpoint = %c.endpoint, error = %last_errors[i].as_deref().unwrap_or_default(), "endpoint disabled: its messages wait until the office enables it again (EnableEndpoint)")
            }
            Finish::Retry => {
                tracing::warn!(outbox.id = %c.id, outbox.endpoint = %c.endpoint, attempt = c.attempt, "will retry")
            }
            _ => {}
        }
    }
    Ok(results)
}
