//! The server's own administration: its clock and the bearer tokens.

use chrono::{DateTime, Utc};
use junheng_core::Role;
use junheng_core::effects::{clock_advanced, token_issued};
use junheng_store::tokens::{self, TokenRow};
use rand::RngCore;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::state::{AppState, Call, ClockMode, Work};

/// A fresh bearer token: 32 random bytes, hex, with a recognisable prefix.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    format!("jh_{}", hex::encode(b))
}

/// The instant the server runs at (real or simulated).
pub async fn now(state: &AppState) -> AppResult<DateTime<Utc>> {
    let mut conn = state.pool.acquire().await?;
    state.now(&mut conn).await
}

/// Only a simulated clock moves.
pub fn require_simulated(state: &AppState) -> AppResult<()> {
    if state.clock == ClockMode::Real {
        return Err(AppError::FailedPrecondition(
            "the server runs on the real clock; start it with `--clock simulated` to replay a season".into(),
        ));
    }
    Ok(())
}

/// Moves the simulated clock forward to `to`; it never goes back. Audited in the system chain
/// with the instant it moved from.
pub async fn advance_clock(
    w: &mut Work,
    call: &Call,
    to: DateTime<Utc>,
) -> AppResult<DateTime<Utc>> {
    if to < w.now {
        return Err(AppError::invalid(
            "to",
            format!(
                "{to} is earlier than the simulated now {}; the clock never goes back",
                w.now
            ),
        ));
    }
    let before = junheng_store::clock::read_for_update(w.conn()).await?;
    let now = junheng_store::clock::advance(w.conn(), to).await?;
    w.record(
        call,
        junheng_store::audit::SYSTEM_CHAIN,
        &[clock_advanced(before, now)],
    )
    .await?;
    tracing::info!(clock.now = %now, "simulated clock advanced");
    Ok(now)
}

pub struct IssueToken {
    pub name: String,
    pub role: Role,
    /// Only for school tokens.
    pub school: Option<Uuid>,
}

pub struct Issued {
    pub token: String,
    pub actor: String,
}

/// Issues a token; one bound to a school is recorded in that school's campaign.
pub async fn issue_token(w: &mut Work, call: &Call, cmd: IssueToken) -> AppResult<Issued> {
    let campaign = match cmd.school {
        Some(s) => Some(junheng_store::schools::get(w.conn(), s).await?.campaign_id),
        None => None,
    };
    let token = new_token();
    let actor = format!("{}:{}", cmd.role.code(), Uuid::now_v7().simple());
    let row = TokenRow {
        actor: actor.clone(),
        name: cmd.name.clone(),
        role: cmd.role.code().into(),
        school_id: cmd.school,
    };
    tokens::insert(w.conn(), &token, &row).await?;
    if let Some(c) = campaign {
        let ev = token_issued(&actor, &cmd.name, cmd.role, cmd.school);
        w.record(call, c, &[ev]).await?;
    }
    Ok(Issued { token, actor })
}
