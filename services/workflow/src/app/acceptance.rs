//! Phase 4, acceptance: load the facts, let `junheng_core::acceptance` decide, persist; and
//! the standings read model (also behind the results notice spreadsheet).

use junheng_core::{CampaignId, NoticeId, SchoolId};
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use junheng_core::acceptance::{
    self, Affiliation, PanelFacts, PanelMember, ScoreFacts, Scored, StoredResult,
};
use junheng_core::effects::set_before;
use junheng_core::notice::ObjectionStatus;
use junheng_core::phase::ResultsNoticeFacts;
use junheng_core::scoring::{self, AcceptanceResult, ScoreSheets};
use junheng_core::{CampaignDefinition, CaseState, Effect, Role};
use junheng_store::PgConnection;
use junheng_store::campaigns::{self, Lock};
use junheng_store::notices::NoticeRow;
use junheng_store::schools::{self, SchoolRow};
use junheng_store::scores::PanelRow;
use junheng_store::scores::ScoreRow;
use junheng_store::tokens;
use junheng_store::{groups, objections, scores};

use super::notices::{self, NoticeView};
use super::{all_schools, ctx};
use crate::error::{AppError, AppResult};
use crate::state::{AppState, Call, Loaded, Work};

/// One potential school's standing: its mentor, its scorers, its aggregate (when complete).
pub struct Standing {
    pub school: SchoolRow,
    pub mentor: Option<(SchoolId, String)>,
    pub scorers: u32,
    pub result: Option<AcceptanceResult>,
    /// Indicator codes below the pass line (empty while incomplete).
    pub failed: Vec<String>,
    pub disputed: bool,
}

impl Standing {
    fn set_result(&mut self, def: &CampaignDefinition, result: Option<AcceptanceResult>) {
        self.failed = result
            .as_ref()
            .map(|r| {
                def.indicators
                    .iter()
                    .filter(|i| !r.passes.get(&i.code).copied().unwrap_or(false))
                    .map(|i| i.code.clone())
                    .collect()
            })
            .unwrap_or_default();
        self.result = result;
    }

    fn scored(&self) -> Scored {
        Scored {
            school: self.school.id,
            name: self.school.name.clone(),
            result: self.result.clone(),
        }
    }
}

fn add_sheet(sheets: &mut ScoreSheets, s: &ScoreRow) {
    sheets.report.push(s.report);
    for (k, v) in &s.onsite {
        sheets.onsite.entry(k.clone()).or_default().push(*v);
    }
}

/// One school's standing, reading only its own rows (the hot path of scoring).
async fn standing_of(
    conn: &mut PgConnection,
    def: &CampaignDefinition,
    school: SchoolRow,
) -> AppResult<Standing> {
    let mentor = match groups::mentor_of(conn, school.id).await? {
        Some(m) => Some((m, schools::get(conn, m).await?.name)),
        None => None,
    };
    let rows = scores::scores_of(conn, school.id).await?;
    let mut sheets = ScoreSheets::default();
    for r in &rows {
        add_sheet(&mut sheets, r);
    }
    let mut s = Standing {
        mentor,
        scorers: rows.len() as u32,
        result: None,
        failed: Vec::new(),
        disputed: scores::disputed(conn, school.id).await?.unwrap_or(false),
        school,
    };
    s.set_result(def, scoring::aggregate(def, &sheets));
    Ok(s)
}

/// Aggregates the current score sheets of every paired school (and of every school with a
/// published result).
pub async fn standings(conn: &mut PgConnection, camp: &Loaded) -> AppResult<Vec<Standing>> {
    let all = all_schools(conn, camp.id()).await?;
    let names: HashMap<SchoolId, String> = all.iter().map(|s| (s.id, s.name.clone())).collect();
    let mentors: HashMap<SchoolId, SchoolId> = groups::pairing(conn, camp.id())
        .await?
        .into_iter()
        .map(|(m, p)| (p, m))
        .collect();
    let mut sheets: HashMap<SchoolId, ScoreSheets> = HashMap::new();
    let mut scorers: HashMap<SchoolId, u32> = HashMap::new();
    for s in scores::scores(conn, camp.id()).await? {
        add_sheet(sheets.entry(s.school_id).or_default(), &s);
        *scorers.entry(s.school_id).or_default() += 1;
    }
    let disputed: HashMap<SchoolId, bool> = scores::results(conn, camp.id())
        .await?
        .into_iter()
        .map(|(s, _, d)| (s, d))
        .collect();
    // The potential schools are those in a 1+X group: `Paired` until the awards, then each
    // in its award's state, and the standings (and GetResults) must not empty out then.
    Ok(all
        .into_iter()
        .filter(|s| mentors.contains_key(&s.id))
        .map(|s| {
            let result = sheets
                .get(&s.id)
                .and_then(|sh| scoring::aggregate(&camp.def, sh));
            let mut st = Standing {
                mentor: mentors
                    .get(&s.id)
                    .map(|m| (*m, names.get(m).cloned().unwrap_or_default())),
                scorers: scorers.get(&s.id).copied().unwrap_or(0),
                disputed: disputed.get(&s.id).copied().unwrap_or(false),
                result: None,
                failed: Vec::new(),
                school: s,
            };
            st.set_result(&camp.def, result);
            st
        })
        .collect())
}

/// The results as stored with the notice (published, or recomputed at finalisation).
async fn stored_results(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> AppResult<BTreeMap<SchoolId, StoredResult>> {
    Ok(scores::results(conn, campaign)
        .await?
        .into_iter()
        .map(|(s, result, disputed)| (s, StoredResult { result, disputed }))
        .collect())
}

fn member_of(row: PanelRow) -> AppResult<PanelMember> {
    let affiliation =
        Affiliation::from_code(&row.affiliation, row.mentor_school_id).ok_or_else(|| {
            AppError::Internal(
                format!(
                    "panel member `{}` has affiliation `{}`",
                    row.actor, row.affiliation
                )
                .into(),
            )
        })?;
    Ok(PanelMember {
        actor: row.actor,
        name: row.name,
        affiliation,
    })
}

async fn panel_of(conn: &mut PgConnection, campaign: CampaignId) -> AppResult<Vec<PanelMember>> {
    scores::panel(conn, campaign)
        .await?
        .into_iter()
        .map(member_of)
        .collect()
}

pub struct FormPanel {
    pub campaign: CampaignId,
    pub members: Vec<PanelMember>,
}

pub async fn form_panel(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: FormPanel,
) -> AppResult<Vec<PanelMember>> {
    let camp = state.load(w.conn(), cmd.campaign, Lock::Share).await?;
    let mut facts = PanelFacts::default();
    for m in &cmd.members {
        if tokens::role_of(w.conn(), &m.actor).await?.as_deref() == Some(Role::Panel.code()) {
            facts.panel_actors.insert(m.actor.clone());
        }
        if let Some(ms) = m.affiliation.mentor_school()
            && schools::get(w.conn(), ms).await.ok().map(|s| s.state) == Some(CaseState::Mentor)
        {
            facts.mentor_schools.insert(ms);
        }
    }
    facts.paired = all_schools(w.conn(), cmd.campaign)
        .await?
        .into_iter()
        .filter(|s| s.state == CaseState::Paired)
        .map(|s| (s.id, s.name))
        .collect();
    let prior = scores::panel(w.conn(), cmd.campaign).await?;
    let prior = (!prior.is_empty()).then(|| {
        serde_json::json!({ "members": prior.iter().map(|m| serde_json::json!({
            "actor": m.actor,
            "name": m.name,
            "affiliation": m.affiliation,
            "mentor_school_id": m.mentor_school_id,
        })).collect::<Vec<_>>() })
    });
    let mut d = acceptance::form_panel(cmd.members, &facts, &ctx(&camp, w.now))?;
    set_before(&mut d.effects, "panel.formed", prior);
    let rows: Vec<PanelRow> = d
        .members
        .iter()
        .map(|m| PanelRow {
            actor: m.actor.clone(),
            name: m.name.clone(),
            affiliation: m.affiliation.code().into(),
            mentor_school_id: m.affiliation.mentor_school(),
        })
        .collect();
    scores::replace_panel(w.conn(), cmd.campaign, &rows).await?;
    w.record(call, cmd.campaign, &d.effects).await?;
    Ok(d.members)
}

pub async fn panel(state: &AppState, campaign: CampaignId) -> AppResult<Vec<PanelMember>> {
    let mut conn = state.pool.acquire().await?;
    campaigns::get(&mut conn, campaign, Lock::None).await?;
    panel_of(&mut conn, campaign).await
}

pub struct SubmitScores {
    pub school: SchoolId,
    pub report: f64,
    pub onsite: Vec<(String, f64)>,
}

/// Stores the caller's sheet for one school and returns the school's standing after it.
pub async fn submit_scores(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: SubmitScores,
) -> AppResult<Standing> {
    let campaign = state.campaign_of(w.conn(), cmd.school).await?;
    let camp = state.load(w.conn(), campaign, Lock::Share).await?;
    let panel = panel_of(w.conn(), campaign).await?;
    let row = schools::get_for_update(w.conn(), cmd.school).await?;
    let facts = ScoreFacts {
        panel,
        state: row.state,
        mentor: groups::mentor_of(w.conn(), cmd.school).await?,
        disputed: scores::disputed(w.conn(), cmd.school)
            .await?
            .unwrap_or(false),
        results_notice_published: camp.row.results_notice_id.is_some(),
    };
    let command = acceptance::SubmitScores {
        school: cmd.school,
        member: call.actor.id.clone(),
        report: cmd.report,
        onsite: cmd.onsite,
    };
    let prior = scores::scores_of(w.conn(), cmd.school)
        .await?
        .into_iter()
        .find(|s| s.member == call.actor.id)
        .map(|s| serde_json::json!({ "report": s.report, "onsite": s.onsite }));
    let mut d = acceptance::submit_scores(command, &facts, &ctx(&camp, w.now))?;
    set_before(&mut d.effects, "scores.submitted", prior);
    let sheet = ScoreRow {
        school_id: d.sheet.school,
        member: d.sheet.member,
        report: d.sheet.report,
        onsite: d.sheet.onsite,
    };
    let now = w.now;
    scores::upsert_scores(w.conn(), campaign, &sheet, now).await?;
    w.record(call, campaign, &d.effects).await?;
    standing_of(w.conn(), &camp.def, row).await
}

pub struct Results {
    pub standings: Vec<Standing>,
    pub r#final: bool,
}

/// The standings; once final, with the published (or recomputed) results.
pub async fn results(state: &AppState, campaign: CampaignId) -> AppResult<Results> {
    let mut conn = state.pool.acquire().await?;
    let camp = state.load(&mut conn, campaign, Lock::None).await?;
    let r#final = camp.row.results_final_at.is_some();
    let mut standings = standings(&mut conn, &camp).await?;
    if r#final {
        let stored = stored_results(&mut conn, campaign).await?;
        for s in &mut standings {
            let r = stored.get(&s.school.id).and_then(|r| r.result.clone());
            s.set_result(&camp.def, r);
        }
    }
    Ok(Results { standings, r#final })
}

pub struct PublishResultsNotice {
    pub campaign: CampaignId,
    /// Empty: the definition's default title.
    pub title: String,
}

pub async fn publish_results_notice(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: PublishResultsNotice,
) -> AppResult<NoticeView> {
    let camp = state.load(w.conn(), cmd.campaign, Lock::Update).await?;
    let scored: Vec<Scored> = standings(w.conn(), &camp)
        .await?
        .iter()
        .map(Standing::scored)
        .collect();
    let command = acceptance::PublishResultsNotice {
        notice: NoticeId::now_v7(),
        title: cmd.title,
    };
    let d = acceptance::publish_results_notice(
        command,
        camp.row.results_notice_id.is_some(),
        &scored,
        &ctx(&camp, w.now),
    )?;
    let row = NoticeRow {
        id: d.notice.as_uuid(),
        campaign_id: cmd.campaign,
        kind: junheng_core::notice::NoticeKind::Results,
        title: d.title,
        starts_at: d.window.starts_at,
        ends_at: d.window.ends_at,
        last_day: d.window.last_day,
        closed_at: None,
    };
    let now = w.now;
    let trace = junheng_edge::telemetry::traceparent();
    junheng_store::notices::insert_notice(w.conn(), &row, &d.ranking, now, trace.as_deref())
        .await?;
    scores::replace_results(w.conn(), cmd.campaign, &d.results, now).await?;
    campaigns::set_results_notice(w.conn(), cmd.campaign, d.notice).await?;
    w.record(call, cmd.campaign, &d.effects).await?;
    notices::view(w.conn(), row).await
}

/// Part of completing the acceptance phase: recomputes disputed results and makes them all
/// final. Returns the effects to record with the completion.
pub async fn finalise_results(
    conn: &mut PgConnection,
    camp: &Loaded,
    now: DateTime<Utc>,
) -> AppResult<Vec<Effect>> {
    let stored = stored_results(conn, camp.id()).await?;
    let current: Vec<Scored> = standings(conn, camp)
        .await?
        .iter()
        .map(Standing::scored)
        .collect();
    let d = acceptance::finalise_results(&current, &stored);
    scores::replace_results(conn, camp.id(), &d.results, now).await?;
    campaigns::set_results_final(conn, camp.id(), now).await?;
    Ok(d.effects)
}

/// The results notice as the acceptance exit criteria need it.
pub async fn exit_facts(
    conn: &mut PgConnection,
    camp: &Loaded,
) -> AppResult<Option<ResultsNoticeFacts>> {
    let Some(id) = camp.row.results_notice_id else {
        return Ok(None);
    };
    let id = NoticeId::new(id);
    let n = junheng_store::notices::get_notice(conn, id).await?;
    let open = objections::notice_objections(conn, id)
        .await?
        .iter()
        .filter(|o| o.status == ObjectionStatus::Open)
        .count();
    Ok(Some(ResultsNoticeFacts {
        ends_at: n.ends_at,
        last_day: n.last_day,
        open_objections: open as u64,
    }))
}
