//! Schools: enrolment (all or nothing, until the seed list is final) and the school reads.

use junheng_core::{CampaignId, SchoolId};
use junheng_core::{CaseState, Effect, school};
use junheng_store::actors;
use junheng_store::campaigns::{self, Lock};
use junheng_store::schools::{self, Filter, NewSchool, SchoolRow};
use uuid::Uuid;

use crate::error::AppResult;
use crate::state::{AppState, Call, Work};

/// Enrols a validated batch in a campaign, all or nothing, with one audit event per school.
pub async fn register(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    campaign: CampaignId,
    rows: &[NewSchool],
) -> AppResult<Vec<SchoolRow>> {
    let camp = state.load(w.conn(), campaign, Lock::Share).await?;
    school::enrol(&camp.phases)?;
    let now = w.now;
    let inserted = schools::insert_many(w.conn(), campaign, rows, CaseState::Enrolled, now).await?;
    let effects: Vec<Effect> = inserted
        .iter()
        .map(|r| school::registered(r.id, &r.code, &r.name, r.state, r.version))
        .collect();
    w.record(call, campaign, &effects).await?;
    Ok(inserted)
}

pub async fn school(state: &AppState, id: SchoolId) -> AppResult<SchoolRow> {
    let mut conn = state.pool.acquire().await?;
    Ok(schools::get(&mut conn, id).await?)
}

/// A page of a campaign's schools ordered by code, after `after_code`.
pub async fn list(
    state: &AppState,
    campaign: CampaignId,
    filter: &Filter,
    after_code: &str,
    size: i64,
) -> AppResult<Vec<SchoolRow>> {
    let mut conn = state.pool.acquire().await?;
    campaigns::get(&mut conn, campaign, Lock::None).await?;
    Ok(schools::list(&mut conn, campaign, filter, after_code, size).await?)
}

/// The campaign a school belongs to (NOT_FOUND for an unknown school).
pub async fn campaign_of(state: &AppState, school: SchoolId) -> AppResult<CampaignId> {
    let mut conn = state.pool.acquire().await?;
    state.campaign_of(&mut conn, school).await
}

/// A new principal for a school: a new person (new id), the old tenure closed, audited.
pub async fn change_principal(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    school_id: SchoolId,
    name: String,
    reason: String,
) -> AppResult<SchoolRow> {
    let campaign = state.campaign_of(w.conn(), school_id).await?;
    state.load(w.conn(), campaign, Lock::Share).await?;
    let before = schools::get(w.conn(), school_id).await?;
    let new_id = Uuid::now_v7();
    let effect = school::change_principal(
        school_id,
        (before.principal_id, &before.principal),
        (new_id, &name),
        &reason,
    )?;
    let now = w.now;
    actors::change_principal(w.conn(), school_id, new_id, name.trim(), reason.trim(), now).await?;
    w.record(call, campaign, &[effect]).await?;
    Ok(schools::get(w.conn(), school_id).await?)
}
