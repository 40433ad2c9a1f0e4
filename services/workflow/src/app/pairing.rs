//! Phase 3, pairing: the 1+X groups (each potential school's move is a school command),
//! baselines, assistance activities. Loads the facts, lets `junheng_core::pairing` decide,
//! persists.

use junheng_core::{CampaignId, SchoolId};
use std::collections::BTreeSet;

use chrono::NaiveDate;
use junheng_core::CaseState;
use junheng_core::effects::set_before;
use junheng_core::pairing::{self, Groups, LogAssistance, PairingFacts, SchoolInfo};
use junheng_store::PgConnection;
use junheng_store::campaigns::{self, Lock};
use junheng_store::groups;
use junheng_store::groups::ActivityRow;
use junheng_store::schools::{self, SchoolRow};
use uuid::Uuid;

use super::{all_schools, cases, ctx};
use crate::error::{AppError, AppResult};
use crate::state::{AppState, Call, Work};

fn info(s: &SchoolRow) -> SchoolInfo {
    SchoolInfo {
        id: s.id,
        level: s.level.clone(),
        town: s.town.clone(),
    }
}

fn is_potential(s: &SchoolRow) -> bool {
    s.state == CaseState::Potential || s.state == CaseState::Paired
}

/// The balanced proposal (a read; nothing is stored).
pub async fn propose(state: &AppState, campaign: CampaignId) -> AppResult<Groups> {
    let mut conn = state.pool.acquire().await?;
    let camp = state.load(&mut conn, campaign, Lock::None).await?;
    let all = all_schools(&mut conn, campaign).await?;
    let mentors: Vec<SchoolInfo> = all
        .iter()
        .filter(|s| s.state == CaseState::Mentor)
        .map(info)
        .collect();
    let potentials: Vec<SchoolInfo> = all.iter().filter(|s| is_potential(s)).map(info).collect();
    Ok(pairing::propose(
        &mentors,
        &potentials,
        camp.def.group_min,
        camp.def.group_max,
    )?)
}

pub async fn stored_groups(conn: &mut PgConnection, campaign: CampaignId) -> AppResult<Groups> {
    let mut groups = Groups::new();
    for (m, p) in groups::pairing(conn, campaign).await? {
        groups.entry(m).or_default().push(p);
    }
    Ok(groups)
}

pub async fn groups(state: &AppState, campaign: CampaignId) -> AppResult<Groups> {
    let mut conn = state.pool.acquire().await?;
    campaigns::get(&mut conn, campaign, Lock::None).await?;
    stored_groups(&mut conn, campaign).await
}

/// The indicators each group's logged assistance covers, and how many the definition has.
pub async fn coverage(
    state: &AppState,
    campaign: CampaignId,
) -> AppResult<(std::collections::BTreeMap<SchoolId, Vec<String>>, usize)> {
    let mut conn = state.pool.acquire().await?;
    let camp = state.load(&mut conn, campaign, Lock::None).await?;
    let acts = groups::activities(&mut conn, campaign, None).await?;
    let covered = pairing::coverage(
        &camp.def,
        acts.iter().map(|a| (a.mentor_id, a.indicators.as_slice())),
    );
    Ok((covered, camp.def.indicators.len()))
}

pub struct SetPairing {
    pub campaign: CampaignId,
    pub groups: Groups,
}

pub async fn set_pairing(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: SetPairing,
) -> AppResult<Groups> {
    let camp = state.load(w.conn(), cmd.campaign, Lock::Share).await?;
    let all = all_schools(w.conn(), cmd.campaign).await?;
    let facts = PairingFacts {
        mentors: all
            .iter()
            .filter(|s| s.state == CaseState::Mentor)
            .map(|s| s.id)
            .collect(),
        potentials: all
            .iter()
            .filter(|s| is_potential(s))
            .map(|s| s.id)
            .collect(),
        names: all.iter().map(|s| (s.id, s.name.clone())).collect(),
        baselines: groups::baselines(w.conn(), cmd.campaign)
            .await?
            .into_iter()
            .map(|b| b.0)
            .collect::<BTreeSet<_>>(),
    };
    let prior = groups::pairing(w.conn(), cmd.campaign).await?;
    let prior = (!prior.is_empty()).then(|| {
        let mut groups: std::collections::BTreeMap<SchoolId, Vec<SchoolId>> = Default::default();
        for (m, p) in prior {
            groups.entry(m).or_default().push(p);
        }
        serde_json::json!({ "groups": groups.into_iter().map(|(m, ps)| serde_json::json!({ "mentor": m, "potentials": ps })).collect::<Vec<_>>() })
    });
    let mut d = pairing::set_pairing(cmd.groups, &facts, &ctx(&camp, w.now))?;
    set_before(&mut d.effects, "pairing.set", prior);
    for mv in d.moves {
        cases::apply(w, call, &camp, mv.school, 0, mv.command, mv.extra).await?;
    }
    let now = w.now;
    groups::set_pairing(w.conn(), cmd.campaign, &d.pairs, now).await?;
    w.record(call, cmd.campaign, &d.effects).await?;
    Ok(d.groups)
}

pub struct RecordBaseline {
    pub school: SchoolId,
    pub scores: Vec<(String, f64)>,
}

pub async fn record_baseline(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: RecordBaseline,
) -> AppResult<()> {
    let campaign = state.campaign_of(w.conn(), cmd.school).await?;
    let camp = state.load(w.conn(), campaign, Lock::Share).await?;
    let row = schools::get_for_update(w.conn(), cmd.school).await?;
    let prior = groups::baselines(w.conn(), campaign)
        .await?
        .into_iter()
        .find(|(s, _)| *s == cmd.school)
        .map(|(_, scores)| serde_json::to_value(scores).map_err(AppError::internal))
        .transpose()?;
    let mut d = pairing::record_baseline(cmd.school, &cmd.scores, row.state, &ctx(&camp, w.now))?;
    set_before(&mut d.effects, "baseline.recorded", prior);
    let now = w.now;
    groups::upsert_baseline(
        w.conn(),
        campaign,
        cmd.school,
        &d.scores,
        &call.actor.id,
        now,
    )
    .await?;
    w.record(call, campaign, &d.effects).await?;
    Ok(())
}

pub struct LogActivity {
    pub mentor: SchoolId,
    pub potential: SchoolId,
    pub date: NaiveDate,
    pub indicators: Vec<String>,
    pub description: String,
    pub evidence_ref: String,
}

pub async fn log_assistance(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: LogActivity,
) -> AppResult<ActivityRow> {
    let campaign = state.campaign_of(w.conn(), cmd.mentor).await?;
    let camp = state.load(w.conn(), campaign, Lock::Share).await?;
    let mentor_of = groups::mentor_of(w.conn(), cmd.potential).await?;
    let command = LogAssistance {
        activity: Uuid::now_v7(),
        mentor: cmd.mentor,
        potential: cmd.potential,
        date: cmd.date,
        indicators: cmd.indicators,
        description: cmd.description,
        evidence_ref: cmd.evidence_ref,
    };
    let d = pairing::log_assistance(command, mentor_of, &ctx(&camp, w.now))?;
    let a = d.activity;
    let row = ActivityRow {
        id: a.activity,
        mentor_id: a.mentor,
        potential_id: a.potential,
        activity_date: a.date,
        indicators: a.indicators,
        description: a.description,
        evidence_ref: a.evidence_ref,
    };
    let now = w.now;
    groups::insert_activity(w.conn(), campaign, &row, &call.actor.id, now).await?;
    w.record(call, campaign, &d.effects).await?;
    Ok(row)
}

pub async fn activities(
    state: &AppState,
    campaign: CampaignId,
    mentor: Option<SchoolId>,
) -> AppResult<Vec<ActivityRow>> {
    let mut conn = state.pool.acquire().await?;
    campaigns::get(&mut conn, campaign, Lock::None).await?;
    Ok(groups::activities(&mut conn, campaign, mentor).await?)
}
