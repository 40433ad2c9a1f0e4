//! Campaigns and their phases: creating one, opening, completing (with the seed list's
//! finalisation and the results' finalisation) and extending phases; the facts the exit
//! criteria count; the campaign read model with each open phase's open items; the audit log,
//! the event stream's batches and the obligations.

use junheng_core::{CampaignId, SchoolId};
use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use junheng_core::notice::NoticeKind;
use junheng_core::phase::{self, OpenItem, PhaseFacts, RunningNotice};
use junheng_core::school::{self, SchoolCommand};
use junheng_core::{CampaignDefinition, CaseState, PhaseKind, PhaseStatus};
use junheng_store::audit::{self, Cursor, EventRow};
use junheng_store::campaigns::{self, CampaignRow, Lock};
use junheng_store::obligations::{self, ObligationRow};
use junheng_store::{PgConnection, schools};
use junheng_store::{notices, seed};
use uuid::Uuid;

use super::cases::case_of;
use super::{all_schools, ctx};
use crate::error::{AppError, AppResult};
use crate::state::{AppState, Call, Loaded, Work};

/// Facts for the exit criteria of `kind`, counted now.
pub async fn phase_facts(
    conn: &mut PgConnection,
    camp: &Loaded,
    kind: PhaseKind,
    now: DateTime<Utc>,
) -> AppResult<PhaseFacts> {
    let mut f = PhaseFacts {
        mentors_confirmed: camp.row.mentors_confirmed_at.is_some(),
        ..Default::default()
    };
    if kind == PhaseKind::SeedDesignation {
        let s = seed::facts(conn, camp.id(), now).await?;
        f.pending_applications = s.pending_applications as u64;
        f.approved_awaiting_notice = s.approved_awaiting_notice as u64;
        f.running_notices = notices::list_notices(conn, camp.id())
            .await?
            .into_iter()
            .filter(|n| n.kind != NoticeKind::Results && n.ends_at > now)
            .map(|n| RunningNotice {
                title: n.title,
                last_day: n.last_day,
            })
            .collect();
        f.open_objections = s.open_objections as u64;
        f.listed_schools = s.listed as u64;
    }
    match kind {
        PhaseKind::Pairing => {
            let all = all_schools(conn, camp.id()).await?;
            f.unpaired_potentials = all
                .iter()
                .filter(|s| s.state == CaseState::Potential)
                .count() as u64;
            let with_baseline: HashSet<SchoolId> =
                junheng_store::groups::baselines(conn, camp.id())
                    .await?
                    .into_iter()
                    .map(|b| b.0)
                    .collect();
            f.baselines_missing = all
                .iter()
                .filter(|s| s.state == CaseState::Paired && !with_baseline.contains(&s.id))
                .count() as u64;
        }
        PhaseKind::Acceptance => {
            f.results_notice = super::acceptance::exit_facts(conn, camp).await?
        }
        PhaseKind::Awards => f.awards_confirmed = super::awards::exit_facts(camp),
        _ => {}
    }
    Ok(f)
}

/// A campaign as shown at `now`: its row, definition and board, and what still blocks each
/// open phase.
pub struct CampaignView {
    pub camp: Loaded,
    /// For each open phase, its open items (empty: it may complete).
    pub open_items: Vec<(PhaseKind, Vec<OpenItem>)>,
    pub now: DateTime<Utc>,
}

impl CampaignView {
    pub fn open_items(&self, kind: PhaseKind) -> &[OpenItem] {
        self.open_items
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[], |(_, items)| items.as_slice())
    }
}

pub async fn view(
    conn: &mut PgConnection,
    camp: Loaded,
    now: DateTime<Utc>,
) -> AppResult<CampaignView> {
    let mut open_items = Vec::new();
    for st in &camp.phases.phases {
        if st.status == PhaseStatus::Open {
            let facts = phase_facts(conn, &camp, st.kind, now).await?;
            open_items.push((st.kind, phase::open_items(st.kind, &facts, now)));
        }
    }
    Ok(CampaignView {
        camp,
        open_items,
        now,
    })
}

pub async fn campaign(state: &AppState, id: CampaignId) -> AppResult<CampaignView> {
    let mut conn = state.pool.acquire().await?;
    let now = state.now(&mut conn).await?;
    let camp = state.load(&mut conn, id, Lock::None).await?;
    view(&mut conn, camp, now).await
}

pub async fn campaigns(state: &AppState) -> AppResult<Vec<CampaignView>> {
    let mut conn = state.pool.acquire().await?;
    let now = state.now(&mut conn).await?;
    let mut out = Vec::new();
    for row in campaigns::list(&mut conn).await? {
        let camp = state.load(&mut conn, row.campaign_id(), Lock::None).await?;
        out.push(view(&mut conn, camp, now).await?);
    }
    Ok(out)
}

/// Creates a campaign on a validated definition, stored canonically with its SHA-256.
pub async fn create(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    def: &CampaignDefinition,
) -> AppResult<CampaignView> {
    let (canonical, sha) = def.canonical();
    let (board, effects) = phase::create_campaign(def, &sha);
    let row = CampaignRow {
        id: Uuid::now_v7(),
        code: def.code.clone(),
        county: def.county.clone(),
        year: def.year,
        time_zone: def.time_zone.clone(),
        definition: canonical,
        definition_sha256: sha,
        phases: serde_json::to_value(&board).map_err(AppError::internal)?,
        mentors_confirmed_at: None,
        results_notice_id: None,
        results_final_at: None,
        awards_confirmed_at: None,
        created_at: w.now,
    };
    campaigns::insert(w.conn(), &row).await?;
    w.record(call, row.campaign_id(), &effects).await?;
    let camp = state.load(w.conn(), row.campaign_id(), Lock::None).await?;
    let now = w.now;
    view(w.conn(), camp, now).await
}

async fn save_board(w: &mut Work, camp: &Loaded) -> AppResult<()> {
    let phases = serde_json::to_value(&camp.phases).map_err(AppError::internal)?;
    campaigns::set_phases(w.conn(), camp.id(), &phases).await?;
    Ok(())
}

pub async fn open_phase(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    campaign: CampaignId,
    kind: PhaseKind,
) -> AppResult<CampaignView> {
    let mut camp = state.load(w.conn(), campaign, Lock::Update).await?;
    let effects = camp.phases.open(kind, &call.actor, w.now, &camp.def)?;
    save_board(w, &camp).await?;
    w.record(call, campaign, &effects).await?;
    let now = w.now;
    view(w.conn(), camp, now).await
}

pub struct ExtendDeadline {
    pub campaign: CampaignId,
    pub phase: PhaseKind,
    /// None: the phase's own deadline.
    pub milestone: Option<String>,
    pub new_last_day: NaiveDate,
    pub reason: String,
}

pub async fn extend_deadline(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: ExtendDeadline,
) -> AppResult<CampaignView> {
    let mut camp = state.load(w.conn(), cmd.campaign, Lock::Update).await?;
    let effects = camp.phases.extend(
        cmd.phase,
        cmd.milestone.as_deref(),
        cmd.new_last_day,
        &cmd.reason,
        &call.actor,
        &camp.def,
    )?;
    save_board(w, &camp).await?;
    w.record(call, cmd.campaign, &effects).await?;
    let now = w.now;
    view(w.conn(), camp, now).await
}

/// Completes a phase once its exit criteria hold. Completing phase 1 turns listed schools into
/// seed schools and the rest into potential schools; completing phase 4 makes the results final.
pub async fn complete_phase(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    campaign: CampaignId,
    kind: PhaseKind,
) -> AppResult<CampaignView> {
    let mut camp = state.load(w.conn(), campaign, Lock::Update).await?;
    let now = w.now;
    let facts = phase_facts(w.conn(), &camp, kind, now).await?;
    // Decide the completion first (it checks role, status and exit criteria), then turn the
    // schools over against the board as it was while the phase was open.
    let mut board = camp.phases.clone();
    let mut effects = board.complete(kind, &call.actor, now, &facts)?;
    if kind == PhaseKind::SeedDesignation {
        let rows = schools::lock_all(w.conn(), campaign).await?;
        let ctx = ctx(&camp, now);
        let (mut ids, mut states) = (Vec::new(), Vec::new());
        for row in &rows {
            let t = school::decide(
                &case_of(row),
                &SchoolCommand::FinaliseSeedList,
                &call.actor,
                &ctx,
            )?;
            ids.push(row.id);
            states.push(t.to);
            effects.extend(t.effects);
        }
        schools::set_states(w.conn(), &ids, &states, now).await?;
    }
    if kind == PhaseKind::Acceptance {
        effects.extend(super::acceptance::finalise_results(w.conn(), &camp, now).await?);
    }
    camp.phases = board;
    save_board(w, &camp).await?;
    w.record(call, campaign, &effects).await?;
    view(w.conn(), camp, now).await
}

pub async fn audit_events(
    state: &AppState,
    campaign: CampaignId,
    school: Option<SchoolId>,
    after: i64,
    size: i64,
) -> AppResult<Vec<EventRow>> {
    let mut conn = state.pool.acquire().await?;
    campaigns::get(&mut conn, campaign, Lock::None).await?;
    Ok(audit::list(&mut conn, campaign, school, after, size).await?)
}

/// Verifies a campaign's audit hash chain (or the system chain) in one REPEATABLE READ
/// snapshot, so the events and the chain head it compares agree.
pub async fn verify_chain(state: &AppState, campaign: CampaignId) -> AppResult<audit::ChainReport> {
    let mut tx = state.pool.begin().await?;
    audit::snapshot(&mut tx).await?;
    if campaign.as_uuid() != audit::SYSTEM_CHAIN {
        campaigns::get(&mut tx, campaign, Lock::None).await?;
    }
    let report = audit::verify(&mut tx, campaign.as_uuid()).await?;
    tx.commit().await?;
    Ok(report)
}

/// Checks that the campaign exists before a stream on it starts.
pub async fn exists(state: &AppState, campaign: CampaignId) -> AppResult<()> {
    let mut conn = state.pool.acquire().await?;
    campaigns::get(&mut conn, campaign, Lock::None).await?;
    Ok(())
}

/// The next batch of finished events after `cursor` (empty: caught up).
pub async fn follow(
    state: &AppState,
    campaign: CampaignId,
    cursor: Cursor,
    limit: i64,
) -> AppResult<Vec<EventRow>> {
    let mut conn = state.pool.acquire().await?;
    Ok(audit::follow(&mut conn, campaign.as_uuid(), cursor, limit).await?)
}

pub async fn obligations(
    state: &AppState,
    campaign: CampaignId,
    school: Option<SchoolId>,
    include_closed: bool,
) -> AppResult<Vec<ObligationRow>> {
    let mut conn = state.pool.acquire().await?;
    campaigns::get(&mut conn, campaign, Lock::None).await?;
    Ok(obligations::list(&mut conn, campaign, school, include_closed).await?)
}

/// Whether the campaign's results notice is out (individual scores become visible).
pub async fn results_published(state: &AppState, campaign: CampaignId) -> AppResult<bool> {
    let mut conn = state.pool.acquire().await?;
    crate::app::policy::results_published(&mut conn, campaign).await
}

/// The caller's token is still neither revoked nor expired (long streams check per batch).
pub async fn still_live(state: &AppState, call: &Call) -> AppResult<()> {
    let Some(id) = call.token_id else {
        return Ok(());
    };
    let mut conn = state.pool.acquire().await?;
    let now = state.now(&mut conn).await?;
    match junheng_store::tokens::get(&mut conn, id).await? {
        Some(t) if t.live_at(now) => Ok(()),
        _ => Err(AppError::Unauthenticated("revoked or expired token".into())),
    }
}
