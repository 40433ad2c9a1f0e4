//! junheng-scheduler: turns obligations, notices, phase events and the digest schedule into
//! notifications, and delivers them durably.
//!
//! It owns the outbox tables (`services/store/migrations/0002_scheduler.sql`) and reads the
//! workflow's tables (campaigns, schools, obligations, notices, events, clock) without writing
//! them; workflow actions (closing an ended notice) go through the workflow's gRPC API behind
//! the [`workflow::Workflow`] trait. It never re-derives campaign rules: obligations are data.
//!
//! A [`Scheduler::tick`] is *plan* ([`planning`]) then *dispatch* ([`dispatch`]), at an explicit
//! instant, so tests and season replays drive it without sleeping. [`Scheduler::run`] ticks on
//! an interval and whenever the clock or the event stream announces a change.
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
pub mod lifecycle;
pub mod metrics;
pub mod outbox;
pub mod planning;
pub mod recipients;
pub mod schedule;
pub mod summary;
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

    /// Runs until `shutdown` resolves: ticks every `poll_interval_ms`, and right away when the
    /// clock is advanced or events are recorded (NOTIFY wakes; polling is the safety net).
    /// A tick in progress finishes before returning, so no claimed row is abandoned.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        tokio::pin!(shutdown);
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([
                junheng_store::clock::CHANNEL,
                junheng_store::audit::EVENTS_CHANNEL,
            ])
            .await?;
        let interval = Duration::from_millis(self.settings.dispatch.poll_interval_ms);
        tracing::info!(clock = ?self.settings.clock, worker = %self.dispatcher.worker(), "scheduler running");
        loop {
            match self.now().await {
                Ok(now) => match self.tick(now).await {
                    Ok(r) => {
                        if r.plan.planned > 0 || r.dispatch.claimed > 0 || r.dispatch.cancelled > 0
                        {
                            tracing::info!(%now, planned = r.plan.planned, sent = r.dispatch.sent, retried = r.dispatch.retried, dead = r.dispatch.dead, cancelled = r.dispatch.cancelled, deferred = r.dispatch.deferred, "tick");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "tick failed"),
                },
                Err(Error::NoSimulatedClock) => {
                    tracing::warn!("simulated clock not set yet; waiting")
                }
                Err(e) => tracing::error!(error = %e, "reading the clock failed"),
            }
            tokio::select! {
                _ = &mut shutdown => {
                    tracing::info!("shutting down");
                    return Ok(());
                }
                n = listener.try_recv() => {
                    if let Err(e) = n {
                        tracing::warn!(error = %e, "notification listener failed; polling only until it reconnects");
                        tokio::time::sleep(interval).await;
                    } else {
                        // The workflow notifies once per commit: let a burst gather, then take
                        // it as one wake-up instead of one full tick per commit.
                        tokio::time::sleep(Duration::from_millis(100).min(interval)).await;
                        while listener.next_buffered().is_some() {}
                    }
                }
                _ = tokio::time::sleep(interval) => {}
            }
        }
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
