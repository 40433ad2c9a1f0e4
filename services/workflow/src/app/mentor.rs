//! Phase 2, mentor selection: presentations and their ratings, the mentor rule for every seed
//! school, the confirmed list; and the practice collection. Loads the facts, lets
//! `junheng_core::mentor` decide, persists.

use junheng_core::{CampaignId, SchoolId};
use std::collections::{BTreeMap, HashMap};

use junheng_core::acceptance::Affiliation;
use junheng_core::effects::set_before;
use junheng_core::mentor::{
    self, DeclaredPractice, MentorOverride, MentorVerdict, PracticeTally, Rating, RatingFacts,
};
use junheng_core::mentor_panel::{self, MentorPanelFacts, MentorPanelMember};
use junheng_core::{CaseState, Role};
use junheng_store::PgConnection;
use junheng_store::campaigns::{self, Lock};
use junheng_store::mentor::{
    self as store, MentorPanelRow, PracticeRow, PresentationRow, SheetRow,
};
use junheng_store::schools::{self, SchoolRow};
use junheng_store::tokens;
use uuid::Uuid;

use super::{all_schools, cases, ctx};
use crate::error::{AppError, AppResult};
use crate::state::{AppState, Call, Loaded, Work};

fn tally(practices: &[PracticeRow], sheets: &[SheetRow]) -> Vec<(PracticeRow, PracticeTally)> {
    practices
        .iter()
        .map(|p| {
            let votes: Vec<bool> = sheets
                .iter()
                .filter_map(|s| s.verdicts.get(&p.id).copied())
                .collect();
            let accepts = votes.iter().filter(|v| **v).count() as u32;
            (
                p.clone(),
                PracticeTally {
                    indicator: p.indicator.clone(),
                    accepts,
                    rejects: votes.len() as u32 - accepts,
                },
            )
        })
        .collect()
}

fn sheet_ratings(s: &SheetRow) -> BTreeMap<String, Rating> {
    s.ratings.clone()
}

/// A declared practice with the panel's verdicts on it.
pub struct PracticeView {
    pub row: PracticeRow,
    pub tally: PracticeTally,
    pub accepted: bool,
}

pub struct PresentationView {
    pub row: PresentationRow,
    pub practices: Vec<PracticeView>,
    pub raters: u32,
}

async fn presentation_view(
    conn: &mut PgConnection,
    camp: &Loaded,
    school: SchoolId,
) -> AppResult<PresentationView> {
    let row = store::get_presentation(conn, school).await?;
    let practices = store::practices_of(conn, school).await?;
    let sheets = store::sheets_of(conn, school).await?;
    Ok(PresentationView {
        row,
        practices: tally(&practices, &sheets)
            .into_iter()
            .map(|(row, tally)| PracticeView {
                accepted: mentor::practice_accepted(&tally, &camp.def),
                row,
                tally,
            })
            .collect(),
        raters: sheets.len() as u32,
    })
}

pub async fn presentation(state: &AppState, school: SchoolId) -> AppResult<PresentationView> {
    let mut conn = state.pool.acquire().await?;
    let campaign = state.campaign_of(&mut conn, school).await?;
    let camp = state.load(&mut conn, campaign, Lock::None).await?;
    presentation_view(&mut conn, &camp, school).await
}

/// A practice as declared: (indicator, title, description).
pub struct SubmitPresentation {
    pub school: SchoolId,
    pub version: i64,
    pub document_ref: String,
    /// Lower-case hex.
    pub document_sha256: String,
    pub practices: Vec<(String, String, String)>,
}

pub async fn submit_presentation(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: SubmitPresentation,
) -> AppResult<PresentationView> {
    let campaign = state.campaign_of(w.conn(), cmd.school).await?;
    let camp = state.load(w.conn(), campaign, Lock::Share).await?;
    let command = mentor::SubmitPresentation {
        school: cmd.school,
        practices: cmd
            .practices
            .into_iter()
            .map(|(indicator, title, description)| DeclaredPractice {
                id: Uuid::now_v7(),
                indicator,
                title,
                description,
            })
            .collect(),
    };
    let d = mentor::submit_presentation(command, &camp.def)?;
    cases::apply(
        w,
        call,
        &camp,
        cmd.school,
        cmd.version,
        d.command,
        Vec::new(),
    )
    .await?;
    let practices: Vec<PracticeRow> = d
        .practices
        .into_iter()
        .enumerate()
        .map(|(i, p)| PracticeRow {
            id: p.id,
            school_id: cmd.school,
            ordinal: i as i32,
            indicator: p.indicator,
            title: p.title,
            description: p.description,
        })
        .collect();
    let row = PresentationRow {
        school_id: cmd.school,
        campaign_id: campaign,
        document_ref: cmd.document_ref,
        document_sha256: cmd.document_sha256,
        submitted_at: w.now,
    };
    store::insert_presentation(w.conn(), &row, &practices).await?;
    presentation_view(w.conn(), &camp, cmd.school).await
}

fn panel_member_of(row: MentorPanelRow) -> AppResult<MentorPanelMember> {
    let affiliation = Affiliation::from_code(&row.affiliation, None).ok_or_else(|| {
        AppError::Internal(
            format!(
                "phase-2 panel member `{}` has affiliation `{}`",
                row.actor, row.affiliation
            )
            .into(),
        )
    })?;
    Ok(MentorPanelMember {
        actor: row.actor,
        name: row.name,
        affiliation,
        school: row.school_id,
    })
}

async fn mentor_panel_of(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> AppResult<Vec<MentorPanelMember>> {
    store::mentor_panel(conn, campaign)
        .await?
        .into_iter()
        .map(panel_member_of)
        .collect()
}

/// The phase-2 panel as appointed, with the rule it serves.
pub struct MentorPanelView {
    pub members: Vec<MentorPanelMember>,
    pub min_raters: u32,
    /// A rating is recorded: the panel can no longer be re-formed.
    pub fixed: bool,
}

async fn mentor_panel_view(conn: &mut PgConnection, camp: &Loaded) -> AppResult<MentorPanelView> {
    Ok(MentorPanelView {
        members: mentor_panel_of(conn, camp.id()).await?,
        min_raters: camp.def.mentor.min_raters,
        fixed: store::count_sheets(conn, camp.id()).await? > 0,
    })
}

pub struct FormMentorPanel {
    pub campaign: CampaignId,
    pub members: Vec<MentorPanelMember>,
}

/// Appoints (or, before the first rating, re-appoints) the phase-2 panel.
pub async fn form_mentor_panel(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: FormMentorPanel,
) -> AppResult<MentorPanelView> {
    // FOR UPDATE: a rating (FOR SHARE) cannot slip in between the count and the new panel.
    let camp = state.load(w.conn(), cmd.campaign, Lock::Update).await?;
    let mut facts = MentorPanelFacts {
        ratings: store::count_sheets(w.conn(), cmd.campaign).await? as u32,
        ..Default::default()
    };
    for m in &cmd.members {
        if tokens::role_of(w.conn(), &m.actor).await?.as_deref() == Some(Role::Panel.code()) {
            facts.panel_actors.insert(m.actor.clone());
        }
        if let Some(s) = m.school
            && schools::get(w.conn(), s).await.ok().map(|r| r.campaign_id) == Some(cmd.campaign)
        {
            facts.campaign_schools.insert(s);
        }
    }
    let prior = store::mentor_panel(w.conn(), cmd.campaign).await?;
    let prior = (!prior.is_empty()).then(|| {
        serde_json::json!({ "members": prior.iter().map(|m| serde_json::json!({
            "actor": m.actor,
            "name": m.name,
            "affiliation": m.affiliation,
            "school_id": m.school_id,
        })).collect::<Vec<_>>() })
    });
    let mut d = mentor_panel::form_mentor_panel(cmd.members, &facts, &ctx(&camp, w.now))?;
    set_before(&mut d.effects, "mentor_panel.formed", prior);
    let rows: Vec<MentorPanelRow> = d
        .members
        .iter()
        .map(|m| MentorPanelRow {
            actor: m.actor.clone(),
            name: m.name.clone(),
            affiliation: m.affiliation.code().into(),
            school_id: m.school,
        })
        .collect();
    store::replace_mentor_panel(w.conn(), cmd.campaign, &rows).await?;
    w.record(call, cmd.campaign, &d.effects).await?;
    mentor_panel_view(w.conn(), &camp).await
}

pub async fn mentor_panel(state: &AppState, campaign: CampaignId) -> AppResult<MentorPanelView> {
    let mut conn = state.pool.acquire().await?;
    let camp = state.load(&mut conn, campaign, Lock::None).await?;
    mentor_panel_view(&mut conn, &camp).await
}

pub struct RatePresentation {
    pub school: SchoolId,
    pub ratings: BTreeMap<String, Rating>,
    pub verdicts: BTreeMap<Uuid, bool>,
}

pub async fn rate_presentation(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: RatePresentation,
) -> AppResult<PresentationView> {
    let campaign = state.campaign_of(w.conn(), cmd.school).await?;
    let camp = state.load(w.conn(), campaign, Lock::Share).await?;
    let row = schools::get_for_update(w.conn(), cmd.school).await?;
    let sheets = store::sheets_of(w.conn(), cmd.school).await?;
    let prior = sheets
        .iter()
        .find(|s| s.rater == call.actor.id)
        .map(|s| serde_json::to_value(&s.ratings).map_err(AppError::internal))
        .transpose()?;
    let facts = RatingFacts {
        state: row.state,
        practices: store::practices_of(w.conn(), cmd.school)
            .await?
            .into_iter()
            .map(|p| (p.id, p.title))
            .collect(),
        raters: sheets.into_iter().map(|s| s.rater).collect(),
        panel: mentor_panel_of(w.conn(), campaign).await?,
    };
    let command = mentor::RatePresentation {
        school: cmd.school,
        rater: call.actor.id.clone(),
        ratings: cmd.ratings,
        verdicts: cmd.verdicts,
    };
    let mut d = mentor::rate_presentation(command, &facts, &ctx(&camp, w.now))?;
    set_before(&mut d.effects, "presentation.rated", prior);
    let sheet = SheetRow {
        school_id: cmd.school,
        rater: d.sheet.rater.clone(),
        ratings: d.sheet.ratings.clone(),
        verdicts: d.sheet.verdicts.clone(),
    };
    let now = w.now;
    store::upsert_sheet(w.conn(), campaign, &sheet, now).await?;
    w.record(call, campaign, &d.effects).await?;
    presentation_view(w.conn(), &camp, cmd.school).await
}

/// The mentor rule for every seed school of a campaign.
pub async fn proposals(
    conn: &mut PgConnection,
    camp: &Loaded,
) -> AppResult<Vec<(SchoolRow, MentorVerdict)>> {
    let seeds: Vec<SchoolRow> = all_schools(conn, camp.id())
        .await?
        .into_iter()
        .filter(|s| s.state.is_seed())
        .collect();
    let mut practices: HashMap<SchoolId, Vec<PracticeRow>> = HashMap::new();
    for p in store::campaign_practices(conn, camp.id()).await? {
        practices.entry(p.school_id).or_default().push(p);
    }
    let mut sheets: HashMap<SchoolId, Vec<SheetRow>> = HashMap::new();
    for s in store::campaign_sheets(conn, camp.id()).await? {
        sheets.entry(s.school_id).or_default().push(s);
    }
    Ok(seeds
        .into_iter()
        .map(|s| {
            let sh = sheets.remove(&s.id).unwrap_or_default();
            let pr = practices.remove(&s.id).unwrap_or_default();
            let tallies: Vec<PracticeTally> = tally(&pr, &sh).into_iter().map(|(_, t)| t).collect();
            let presented = s.state != CaseState::Seed;
            let verdict = mentor::evaluate(
                &camp.def,
                presented,
                &sh.iter().map(sheet_ratings).collect::<Vec<_>>(),
                &tallies,
            );
            (s, verdict)
        })
        .collect())
}

/// One seed school on the mentor list.
pub struct MentorProposal {
    pub school: SchoolRow,
    pub verdict: MentorVerdict,
    pub mentor: bool,
    /// The office's reason, when it overrode the rule.
    pub note: Option<String>,
}

pub struct MentorList {
    pub proposals: Vec<MentorProposal>,
    pub confirmed: bool,
}

/// The rule's proposals; once confirmed, with each school's confirmed role.
pub async fn propose(state: &AppState, campaign: CampaignId) -> AppResult<MentorList> {
    let mut conn = state.pool.acquire().await?;
    let camp = state.load(&mut conn, campaign, Lock::None).await?;
    let confirmed = camp.row.mentors_confirmed_at.is_some();
    let proposals = proposals(&mut conn, &camp)
        .await?
        .into_iter()
        .map(|(school, verdict)| MentorProposal {
            mentor: if confirmed {
                school.state == CaseState::Mentor
            } else {
                verdict.mentor
            },
            school,
            verdict,
            note: None,
        })
        .collect();
    Ok(MentorList {
        proposals,
        confirmed,
    })
}

pub struct ConfirmMentors {
    pub campaign: CampaignId,
    pub overrides: BTreeMap<SchoolId, MentorOverride>,
}

/// Confirms the list: every seed school's role as a school command, then one
/// `mentors.confirmed` event.
pub async fn confirm(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: ConfirmMentors,
) -> AppResult<MentorList> {
    let camp = state.load(w.conn(), cmd.campaign, Lock::Update).await?;
    let list = if camp.row.mentors_confirmed_at.is_some() {
        Vec::new()
    } else {
        proposals(w.conn(), &camp).await?
    };
    let verdicts: Vec<(SchoolId, MentorVerdict)> =
        list.iter().map(|(s, v)| (s.id, v.clone())).collect();
    let d = mentor::confirm_mentors(
        &cmd.overrides,
        camp.row.mentors_confirmed_at.is_some(),
        &verdicts,
        &ctx(&camp, w.now),
    )?;
    let mut out = Vec::new();
    for (dec, (school, verdict)) in d.decisions.into_iter().zip(list) {
        cases::apply(w, call, &camp, school.id, 0, dec.command, Vec::new()).await?;
        out.push(MentorProposal {
            school,
            verdict,
            mentor: dec.mentor,
            note: dec.note,
        });
    }
    let now = w.now;
    campaigns::set_mentors_confirmed(w.conn(), cmd.campaign, now).await?;
    w.record(call, cmd.campaign, &d.effects).await?;
    Ok(MentorList {
        proposals: out,
        confirmed: true,
    })
}

/// Accepted practices of one indicator.
pub struct PracticeGroup {
    pub code: String,
    pub name: String,
    pub practices: Vec<(PracticeRow, PracticeTally)>,
}

/// The practice collection: accepted practices grouped by indicator, and the document the
/// bureau posts (whose Markdown rendering the API shares).
pub struct PracticeCollection {
    pub groups: Vec<PracticeGroup>,
    pub doc: junheng_sheets::PracticeCollection,
}

pub async fn practice_collection(
    conn: &mut PgConnection,
    camp: &Loaded,
) -> AppResult<PracticeCollection> {
    let practices = store::campaign_practices(conn, camp.id()).await?;
    let sheets = store::campaign_sheets(conn, camp.id()).await?;
    let names: HashMap<SchoolId, String> = all_schools(conn, camp.id())
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let mut groups = Vec::new();
    let mut doc = junheng_sheets::PracticeCollection {
        title: format!("{}{}年可复制性经验做法集锦", camp.def.county, camp.def.year),
        groups: Vec::new(),
    };
    for ind in &camp.def.indicators {
        let of_ind: Vec<PracticeRow> = practices
            .iter()
            .filter(|p| p.indicator == ind.code)
            .cloned()
            .collect();
        let mut accepted = Vec::new();
        let mut lines = Vec::new();
        for (p, t) in tally(&of_ind, &sheets) {
            if mentor::practice_accepted(&t, &camp.def) {
                lines.push(junheng_sheets::Practice {
                    school: names.get(&p.school_id).cloned().unwrap_or_default(),
                    name: p.title.clone(),
                    summary: p.description.clone(),
                });
                accepted.push((p, t));
            }
        }
        doc.groups.push(junheng_sheets::PracticeGroup {
            indicator: ind.name.clone(),
            practices: lines,
        });
        groups.push(PracticeGroup {
            code: ind.code.clone(),
            name: ind.name.clone(),
            practices: accepted,
        });
    }
    Ok(PracticeCollection { groups, doc })
}

pub async fn collection(state: &AppState, campaign: CampaignId) -> AppResult<PracticeCollection> {
    let mut conn = state.pool.acquire().await?;
    let camp = state.load(&mut conn, campaign, Lock::None).await?;
    practice_collection(&mut conn, &camp).await
}
