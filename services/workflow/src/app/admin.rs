//! The server's own administration: its clock and the bearer tokens.

use chrono::{DateTime, Datelike, Utc};
use junheng_core::effects::clock_advanced;
use junheng_core::{CampaignId, SchoolId};
use junheng_core::{Effect, Role, Scope};
use junheng_store::campaigns::Lock;
use junheng_store::tokens::{self, TokenInfo, TokenRow};
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
    // The real clock needs no connection (unauthenticated GetServerInfo takes none).
    if state.clock == ClockMode::Real {
        return Ok(Utc::now());
    }
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
/// How many years past the latest campaign's year (or the simulated now's, if later) the
/// simulated clock may be moved: a campaign's phase 5 and its follow-up fit in two years.
pub const CLOCK_MARGIN_YEARS: i32 = 2;

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
    // Bounded: within the campaign years plus a margin, so a typo (10000-01-02) cannot date
    // every later message and deadline in another millennium.
    let latest = junheng_store::clock::latest_campaign_year(w.conn()).await?;
    let last_year = latest.unwrap_or(w.now.year()).max(w.now.year()) + CLOCK_MARGIN_YEARS;
    if to.year() > last_year {
        return Err(AppError::invalid(
            "to",
            format!(
                "{to} is after the end of {last_year}: the simulated clock stays within the campaign years plus {CLOCK_MARGIN_YEARS}"
            ),
        ));
    }
    let before = junheng_store::clock::read_for_update(w.conn()).await?;
    let now = junheng_store::clock::advance(w.conn(), to).await?;
    w.record(
        call,
        CampaignId::new(junheng_store::audit::SYSTEM_CHAIN),
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
    pub school: Option<SchoolId>,
    /// Empty: the issuer's own scope (a school token: its school's campaign).
    pub campaigns: Vec<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub struct Issued {
    pub token: String,
    pub actor: String,
    pub id: Uuid,
}

/// The campaigns whose audit logs record something about a token: those of its scope, or the
/// county log (the nil campaign id) for a county-wide token.
fn logs_of(scope: &Scope) -> Vec<Uuid> {
    match scope.campaigns() {
        Some(c) if !c.is_empty() => c.to_vec(),
        _ => vec![Uuid::nil()],
    }
}

async fn record_token(
    w: &mut Work,
    call: &Call,
    action: &'static str,
    info: &TokenInfo,
    before: serde_json::Value,
    after: serde_json::Value,
    reason: Option<String>,
) -> AppResult<()> {
    let scope = Scope::from_campaigns(info.campaigns.clone());
    for c in logs_of(&scope) {
        let ev = Effect::event(
            action,
            info.school_id.map(SchoolId::new),
            before.clone(),
            after.clone(),
            reason.clone(),
        );
        // The county log is outside every campaign scope; only county-wide callers write it.
        if c.is_nil() && call.scope != Scope::County {
            continue;
        }
        w.record(call, CampaignId::new(c), &[ev]).await?;
    }
    Ok(())
}

/// Issues a token within the issuer's scope; recorded in the audit log of every campaign it
/// acts in (a county-wide one in the county log).
pub async fn issue_token(w: &mut Work, call: &Call, cmd: IssueToken) -> AppResult<Issued> {
    let school_campaign = match cmd.school {
        Some(s) => Some(
            junheng_store::schools::get(w.conn(), s)
                .await?
                .campaign_id
                .as_uuid(),
        ),
        None => None,
    };
    for c in &cmd.campaigns {
        junheng_store::campaigns::get(w.conn(), *c, Lock::None).await?;
    }
    let scope = match (school_campaign, cmd.campaigns.is_empty()) {
        (Some(sc), true) => Scope::Campaigns(vec![sc]),
        (Some(sc), false) => {
            if cmd.campaigns != [sc] {
                return Err(AppError::invalid(
                    "campaign_ids",
                    "a school token acts only in its school's campaign; leave it empty",
                ));
            }
            Scope::Campaigns(vec![sc])
        }
        (None, true) => call.scope.clone(),
        (None, false) => Scope::Campaigns(cmd.campaigns.clone()),
    };
    if !call.scope.contains(&scope) {
        return Err(AppError::PermissionDenied(
            "a token may be issued only within the issuer's own scope".into(),
        ));
    }
    if let Some(e) = cmd.expires_at
        && e <= w.now
    {
        return Err(AppError::invalid(
            "expires_at",
            format!("{e} is not in the future (now {})", w.now),
        ));
    }
    let token = new_token();
    let actor = format!("{}:{}", cmd.role.code(), Uuid::now_v7().simple());
    let row = TokenRow {
        actor: actor.clone(),
        name: cmd.name.clone(),
        role: cmd.role.code().into(),
        school_id: cmd.school.map(SchoolId::as_uuid),
        campaigns: scope.campaigns().map(<[Uuid]>::to_vec),
        expires_at: cmd.expires_at,
        issued_by: Some(call.actor.id.clone()),
        demo: false,
    };
    let id = tokens::insert(w.conn(), &token, &row).await?;
    let info = tokens::get(w.conn(), id)
        .await?
        .ok_or_else(|| AppError::Internal("token vanished after insert".into()))?;
    record_token(
        w,
        call,
        "token.issued",
        &info,
        serde_json::Value::Null,
        info.summary(),
        None,
    )
    .await?;
    Ok(Issued { token, actor, id })
}

/// The tokens whose scope lies within the caller's, oldest first (`dead`: also revoked and
/// expired ones).
pub async fn list_tokens(
    state: &AppState,
    call: &Call,
    dead: bool,
) -> AppResult<(Vec<TokenInfo>, DateTime<Utc>)> {
    let mut conn = state.pool.acquire().await?;
    let now = state.now(&mut conn).await?;
    let rows = tokens::list(&mut conn)
        .await?
        .into_iter()
        .filter(|t| {
            call.scope
                .contains(&Scope::from_campaigns(t.campaigns.clone()))
        })
        .filter(|t| dead || t.live_at(now))
        .collect();
    Ok((rows, now))
}

/// A token the caller may manage: NOT_FOUND when unknown, PERMISSION_DENIED outside its scope.
async fn managed(w: &mut Work, call: &Call, id: Uuid) -> AppResult<TokenInfo> {
    let t = tokens::get(w.conn(), id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("token {id} not found")))?;
    if !call
        .scope
        .contains(&Scope::from_campaigns(t.campaigns.clone()))
    {
        return Err(AppError::PermissionDenied(format!(
            "token {id} is outside this token's scope"
        )));
    }
    Ok(t)
}

/// Revokes a token; it is refused from the next call on, on every replica.
pub async fn revoke_token(
    w: &mut Work,
    call: &Call,
    id: Uuid,
    reason: Option<String>,
) -> AppResult<TokenInfo> {
    let before = managed(w, call, id).await?;
    let now = w.now;
    tokens::revoke(w.conn(), id, now).await?;
    let after = tokens::get(w.conn(), id).await?.expect("still there");
    if before.revoked_at.is_none() {
        record_token(
            w,
            call,
            "token.revoked",
            &after,
            before.summary(),
            after.summary(),
            reason,
        )
        .await?;
    }
    Ok(after)
}

/// Gives a live token a new secret (returned once); the old secret is refused at once.
pub async fn rotate_token(w: &mut Work, call: &Call, id: Uuid) -> AppResult<(String, TokenInfo)> {
    let info = managed(w, call, id).await?;
    if !info.live_at(w.now) {
        return Err(AppError::FailedPrecondition(format!(
            "token {id} is revoked or expired; issue a new one"
        )));
    }
    let token = new_token();
    tokens::rotate(w.conn(), id, &token).await?;
    let mut after = info.summary();
    after["rotated_at"] = serde_json::json!(w.now);
    record_token(w, call, "token.rotated", &info, info.summary(), after, None).await?;
    Ok((token, info))
}
