//! junheng-scheduler: turns obligations, notices, phase events and the digest schedule into
//! notifications, and delivers them durably.
//!
//! It owns the outbox tables (`services/store/migrations/0002_scheduler.sql`) and reads the
//! workflow's tables (campaigns, schools, obligations, notices, events, clock) without writing
//! them, only through `junheng-store` (`notifications`, `summaries`, `campaigns`, `audit`,
//! `clock`), so its own SQL names only its own tables (checked by `table_owners`); workflow actions (closing an ended notice) go through the workflow's gRPC API behind
//! the [`workflow::Workflow`] trait. It never re-derives campaign rules: obligations are data.
//!
//! A [`Scheduler::tick`] is *plan* ([`planning`]) then *dispatch* ([`dispatch`]), at an explicit
//! instant, so tests and season replays drive it without sleeping. [`Scheduler::run`], the
//! service, runs the two as separate tasks: planning on an interval and whenever the clock or
//! the event stream announces a change; the dispatcher ([`Dispatcher::run`]) continuously,
//! woken by NOTIFY from the transaction that enqueues rows and at the next due instant.
//!
//! Decisions are pure and kept apart from the I/O that acts on them: [`schedule`] says *when*
//! (reminder occasions, quiet hours, Feishu peaks, digests) for [`planning`] and the preview
//! in [`api`]; [`lifecycle`] says *what happens to a row* (claim, settle) for [`dispatch`].
//!
//! Guarantees (see `README.md`): each (source, occasion, recipient, endpoint) is one outbox
//! row (unique dedupe key); nothing is lost (claims are leases; an expired lease is claimed
//! again); a message is re-sent only if a worker dies between the vendor accepting it and
//! our commit, and every attempt carries the same id (the outbox id).

pub mod api;
pub mod chart;
pub mod config;
pub mod dispatch;
pub mod grpc;
pub mod kind;
pub mod lifecycle;
pub mod metrics;
pub mod outbox;
pub mod planning;
pub mod recipients;
pub mod schedule;
pub mod summary;
#[cfg(test)]
mod table_owners;
pub mod workflow;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use junheng_notify::Sender;
use sqlx::PgPool;

pub use config::{ClockMode, Settings};
pub use dispatch::{DispatchReport, Dispatcher, SignClock};
pub use lifecycle::OutboxStatus;
pub use planning::{PlanReport, Planner};
pub use workflow::{GrpcWorkflow, NoWorkflow, Workflow, WorkflowError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] junheng_store::StoreError),
    #[error("campaign definition: {0}")]
    Definition(String),
    #[error(transparent)]
    Render(#[from] outbox::RenderError),
    #[error("notification channel setup: {0}")]
    Notify(#[from] junheng_notify::Error),
    #[error("the simulated clock has not been set yet")]
    NoSimulatedClock,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

#[derive(Debug, Default, Clone)]
pub struct TickReport {
    pub now: Option<DateTime<Utc>>,
    pub plan: PlanReport,
    pub dispatch: DispatchReport,
}

pub struct Scheduler {
    pool: PgPool,
    settings: Arc<Settings>,
    planner: Planner,
    dispatcher: Dispatcher,
}

impl Scheduler {
    pub fn new(
        pool: PgPool,
        settings: Arc<Settings>,
        workflow: Arc<dyn Workflow>,
    ) -> Result<Self, Error> {
        let sender = Arc::new(Sender::new()?);
        let worker = settings
            .worker_name
            .clone()
            .unwrap_or_else(default_worker_name);
        let dispatcher = Dispatcher::new(pool.clone(), settings.clone(), sender, worker);
        Ok(Self {
            planner: Planner::new(settings.clone(), workflow),
            dispatcher,
            pool,
            settings,
        })
    }

    pub fn with_sign_clock(mut self, c: SignClock) -> Self {
        self.dispatcher = self.dispatcher.with_sign_clock(c);
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// "Now" according to the configured clock.
    pub async fn now(&self) -> Result<DateTime<Utc>, Error> {
        now(&self.pool, self.settings.clock).await
    }

    /// One planning pass and one drain of the outbox, at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, Error> {
        let planning = std::time::Instant::now();
        let plan = self.planner.plan(&self.pool, now).await?;
        // Under the real clock planning took time: dispatch from the instant it starts at, so
        // rows claimed ahead leave at their instant and leases are not shortened.
        let dispatch_now = match self.settings.clock {
            ClockMode::Real => {
                now + chrono::Duration::from_std(planning.elapsed()).unwrap_or_default()
            }
            ClockMode::Simulated { .. } => now,
        };
        // Drain the backlog fully: each claim loop stops when nothing due is left (it used to
        // stop after 50 batches, 5,000 rows, and leave the rest to the next poll; issue #11).
        let dispatch = self.dispatcher.drain(dispatch_now, usize::MAX).await?;
        Ok(TickReport {
            now: Some(now),
            plan,
            dispatch,
        })
    }

    /// Runs until `shutdown` resolves. Planning and dispatch are separate tasks: the
    /// dispatcher ([`Dispatcher::run`]) claims whenever rows are due — woken by NOTIFY from
    /// the enqueuing transaction, the clock, or the next due instant — so rows committed by
    /// a planning pass go out while later campaigns are still being planned. Planning runs
    /// every `poll_interval_ms` and right away when the clock is advanced or events are
    /// recorded. Claimed rows are sent (and recorded) before returning.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([
                junheng_store::clock::CHANNEL,
                junheng_store::audit::EVENTS_CHANNEL,
                dispatch::OUTBOX_CHANNEL,
            ])
            .await?;
        let interval = Duration::from_millis(self.settings.dispatch.poll_interval_ms);
        tracing::info!(clock = ?self.settings.clock, worker = %self.dispatcher.worker(), "scheduler running");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let dispatcher = {
            let d = self.dispatcher.clone();
            let stop = stop_rx.clone();
            tokio::spawn(async move { d.run(stop).await })
        };
        // Notifications: the outbox and the clock wake the dispatcher at once; the clock and
        // events wake planning.
        let (plan_tx, mut plan_rx) = tokio::sync::watch::channel(0u64);
        let listening = {
            let d = self.dispatcher.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    let n = tokio::select! {
                        n = listener.try_recv() => n,
                        _ = stop.changed() => return,
                    };
                    match n {
                        Ok(Some(n)) => {
                            if n.channel() != junheng_store::audit::EVENTS_CHANNEL {
                                d.wake();
                            }
                            if n.channel() != dispatch::OUTBOX_CHANNEL {
                                plan_tx.send_modify(|x| *x = x.wrapping_add(1));
                            }
                        }
                        // The connection was lost and is re-established by the next call:
                        // anything missed meanwhile is found by polling.
                        Ok(None) => {
                            d.wake();
                            plan_tx.send_modify(|x| *x = x.wrapping_add(1));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "notification listener failed; polling only until it reconnects");
                            tokio::time::sleep(interval).await;
                        }
                    }
                }
            })
        };
        let planning = async {
            loop {
                plan_rx.mark_unchanged();
                match self.now().await {
                    Ok(now) => match self.planner.plan(&self.pool, now).await {
                        Ok(r) => {
                            if r.planned > 0 {
                                tracing::info!(%now, planned = r.planned, "planned");
                                self.dispatcher.wake();
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "planning failed"),
                    },
                    Err(Error::NoSimulatedClock) => {
                        tracing::warn!("simulated clock not set yet; waiting")
                    }
                    Err(e) => tracing::error!(error = %e, "reading the clock failed"),
                }
                tokio::select! {
                    _ = plan_rx.changed() => {
                        // The workflow notifies once per commit: let a burst gather, then
                        // take it as one planning pass instead of one per commit.
                        tokio::time::sleep(Duration::from_millis(100).min(interval)).await;
                    }
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = planning => {}
        }
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = listening.await;
        match dispatcher.await {
            Ok(r) => {
                tracing::info!(
                    sent = r.sent,
                    retried = r.retried,
                    dead = r.dead,
                    "dispatcher stopped"
                );
            }
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
        Ok(())
    }
}

/// "Now" for a clock mode: the system clock, or the workflow's simulated `clock` row.
pub async fn now(pool: &PgPool, clock: ClockMode) -> Result<DateTime<Utc>, Error> {
    let mut conn = pool.acquire().await?;
    Ok(junheng_edge::clock::now(&mut conn, clock).await?)
}

impl From<junheng_edge::clock::ClockError> for Error {
    fn from(e: junheng_edge::clock::ClockError) -> Self {
        match e {
            junheng_edge::clock::ClockError::NotSet => Error::NoSimulatedClock,
            junheng_edge::clock::ClockError::Store(e) => Error::Store(e),
        }
    }
}

fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "scheduler".into());
    format!("{host}-{}", std::process::id())
}
