//! Where "now" comes from, chosen at start-up and the same for every service and replica.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    Real,
    /// The instant lives in the `clock` table, shared by every service and replica, and moves
    /// only forward. With `start`, the first read sets it there (the workflow); without, it
    /// must already be set (the scheduler follows the workflow's clock).
    Simulated {
        start: Option<DateTime<Utc>>,
    },
}

impl ClockMode {
    /// `real` or `simulated`, as health and GetServerInfo report it.
    pub fn name(self) -> &'static str {
        match self {
            ClockMode::Real => "real",
            ClockMode::Simulated { .. } => "simulated",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("the simulated clock has not been set yet")]
    NotSet,
    #[error(transparent)]
    Store(#[from] junheng_store::StoreError),
}

/// "Now" under `mode`.
pub async fn now(conn: &mut PgConnection, mode: ClockMode) -> Result<DateTime<Utc>, ClockError> {
    match mode {
        ClockMode::Real => Ok(Utc::now()),
        ClockMode::Simulated { start: Some(start) } => {
            Ok(junheng_store::clock::simulated_now(conn, start).await?)
        }
        ClockMode::Simulated { start: None } => junheng_store::clock::read(conn)
            .await?
            .ok_or(ClockError::NotSet),
    }
}
