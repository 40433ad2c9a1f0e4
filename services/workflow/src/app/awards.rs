//! Phase 5, awards: load the facts, let `junheng_core::awards` decide, persist (each school's
//! award is a school command); and the award lists other bureau systems read.

use junheng_core::{CampaignId, SchoolId};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use junheng_core::SchoolCommand;
use junheng_core::awards::{self, AwardClass, AwardFacts, Override};
use junheng_core::scoring::AcceptanceResult;
use junheng_store::PgConnection;
use junheng_store::actors::{self, ConsequenceFilter, ConsequenceListing, ConsequenceRow};
use junheng_store::awards::AwardListing;
use junheng_store::awards::AwardRow;
use junheng_store::campaigns::{self, Lock};
use junheng_store::schools::SchoolRow;
use junheng_store::{groups, scores};
use uuid::Uuid;

use super::{all_schools, cases, ctx};
use crate::error::AppResult;
use crate::state::{AppState, Call, Loaded, Work};

/// One school's award as shown.
pub struct Award {
    pub school: SchoolRow,
    pub class: AwardClass,
    pub reason: String,
    pub override_reason: String,
}

pub struct AwardList {
    pub campaign: CampaignId,
    pub county: String,
    pub year: i32,
    pub awards: Vec<Award>,
    pub confirmed: bool,
}

/// The campaign's schools and what the award rules read: final results, baselines, groups,
/// assistance logs.
async fn facts(conn: &mut PgConnection, camp: &Loaded) -> AppResult<(Vec<SchoolRow>, AwardFacts)> {
    let all = all_schools(conn, camp.id()).await?;
    let results: BTreeMap<SchoolId, AcceptanceResult> = scores::results(conn, camp.id())
        .await?
        .into_iter()
        .filter_map(|(s, r, _)| Some((s, r?)))
        .collect();
    let baselines: BTreeMap<SchoolId, BTreeMap<String, f64>> = groups::baselines(conn, camp.id())
        .await?
        .into_iter()
        .collect();
    let mut groups: BTreeMap<SchoolId, Vec<SchoolId>> = BTreeMap::new();
    for (m, p) in groups::pairing(conn, camp.id()).await? {
        groups.entry(m).or_default().push(p);
    }
    let mut activities: BTreeMap<SchoolId, u32> = BTreeMap::new();
    let mut coverage: BTreeMap<SchoolId, BTreeSet<String>> = BTreeMap::new();
    for a in groups::activities(conn, camp.id(), None).await? {
        *activities.entry(a.mentor_id).or_default() += 1;
        coverage
            .entry(a.mentor_id)
            .or_default()
            .extend(a.indicators);
    }
    let presented = actors::presented(conn, camp.id())
        .await?
        .into_iter()
        .collect();
    let principals = actors::current_principals(conn, camp.id())
        .await?
        .into_iter()
        .collect();
    // A school in an unknown state takes part in no award rule (as before the rules moved).
    let schools = all.iter().map(|s| (s.id, s.state)).collect();
    let f = AwardFacts {
        schools,
        results,
        baselines,
        groups,
        activities,
        coverage,
        presented,
        principals,
    };
    Ok((all, f))
}

fn list(camp: &Loaded, awards: Vec<Award>, confirmed: bool) -> AwardList {
    AwardList {
        campaign: camp.id(),
        county: camp.row.county.clone(),
        year: camp.row.year,
        awards,
        confirmed,
    }
}

/// The proposals with their reasoning (a read; nothing is stored).
pub async fn propose(state: &AppState, campaign: CampaignId) -> AppResult<AwardList> {
    let mut conn = state.pool.acquire().await?;
    let camp = state.load(&mut conn, campaign, Lock::None).await?;
    let (all, f) = facts(&mut conn, &camp).await?;
    let props = awards::propose_awards(camp.row.results_final_at.is_some(), &camp.def, &f)?;
    let by_id: HashMap<SchoolId, &SchoolRow> = all.iter().map(|s| (s.id, s)).collect();
    let out = props
        .into_iter()
        .map(|p| Award {
            school: by_id[&p.school].clone(),
            class: p.class,
            reason: p.reason,
            override_reason: String::new(),
        })
        .collect();
    Ok(list(&camp, out, camp.row.awards_confirmed_at.is_some()))
}

pub struct ConfirmAwards {
    pub campaign: CampaignId,
    pub overrides: BTreeMap<SchoolId, Override>,
}

/// Confirms the list: every school's award as a school command, the list stored for the lists
/// other systems read, one `awards.confirmed` event.
pub async fn confirm(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: ConfirmAwards,
) -> AppResult<AwardList> {
    let camp = state.load(w.conn(), cmd.campaign, Lock::Update).await?;
    let (all, f) = facts(w.conn(), &camp).await?;
    let d = awards::confirm_awards(
        &cmd.overrides,
        camp.row.awards_confirmed_at.is_some(),
        &f,
        &ctx(&camp, w.now),
    )?;
    let by_id: HashMap<SchoolId, &SchoolRow> = all.iter().map(|s| (s.id, s)).collect();
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for a in d.awards {
        let s = by_id[&a.school];
        let award = SchoolCommand::ConfirmAward {
            class: a.class,
            reason: a.case_reason(),
        };
        cases::apply(w, call, &camp, s.id, 0, award, Vec::new()).await?;
        rows.push(AwardRow {
            school_id: s.id,
            campaign_id: cmd.campaign,
            class: a.class.code().into(),
            proposed_class: a.proposed.code().into(),
            reason: a.reason.clone(),
            override_reason: a.override_reason.clone(),
            principal: s.principal.clone(),
        });
        out.push(Award {
            school: s.clone(),
            class: a.class,
            reason: a.reason,
            override_reason: a.override_reason,
        });
    }
    let now = w.now;
    junheng_store::awards::insert_awards(w.conn(), &rows, now).await?;
    let consequences: Vec<ConsequenceRow> = d
        .consequences
        .iter()
        .map(|c| ConsequenceRow {
            id: Uuid::now_v7(),
            campaign_id: cmd.campaign,
            school_id: c.school,
            principal_id: c.principal,
            year: c.year,
            class: c.class.code().into(),
            subject: c.subject.code().into(),
            kind: c.kind.clone(),
            label: c.label.clone(),
            valid_until: c.valid_until,
            recorded_at: now,
        })
        .collect();
    actors::insert_consequences(w.conn(), &consequences).await?;
    campaigns::set_awards_confirmed(w.conn(), cmd.campaign, now).await?;
    w.record(call, cmd.campaign, &d.effects).await?;
    Ok(list(&camp, out, true))
}

/// Which confirmed awards to list; at least a campaign or a year.
pub struct ListAwards {
    pub campaign: Option<CampaignId>,
    pub year: Option<i32>,
    pub school: Option<SchoolId>,
    pub principal: Option<String>,
    pub class: Option<AwardClass>,
}

pub async fn list_awards(state: &AppState, q: &ListAwards) -> AppResult<Vec<AwardListing>> {
    let mut conn = state.pool.acquire().await?;
    if let Some(c) = q.campaign {
        campaigns::get(&mut conn, c, Lock::None).await?;
    }
    Ok(junheng_store::awards::list_awards(
        &mut conn,
        q.campaign,
        q.year,
        q.school,
        q.principal.as_deref(),
        q.class.map(AwardClass::code),
    )
    .await?)
}

/// The awards exit criteria's fact.
pub fn exit_facts(camp: &Loaded) -> bool {
    camp.row.awards_confirmed_at.is_some()
}

/// 三、结果运用: one page of consequences (`after` = the last id of the previous page), each with
/// its award's title from its campaign's definition.
pub async fn list_consequences(
    state: &AppState,
    f: &ConsequenceFilter,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<(ConsequenceListing, String)>> {
    let mut conn = state.pool.acquire().await?;
    if let Some(c) = f.campaign {
        campaigns::get(&mut conn, c, Lock::None).await?;
    }
    let rows = actors::list_consequences(&mut conn, f, after, limit).await?;
    let mut titles: HashMap<(CampaignId, String), String> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let key = (r.campaign_id, r.class.clone());
        if !titles.contains_key(&key) {
            let camp = state.load(&mut conn, r.campaign_id, Lock::None).await?;
            let class = AwardClass::from_code(&r.class).unwrap_or(AwardClass::Veto);
            titles.insert(key.clone(), awards::title(&camp.def, class));
        }
        out.push((r, titles[&key].clone()));
    }
    Ok(out)
}
