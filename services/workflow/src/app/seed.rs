//! Phase 1, seed designation: nominations and self-applications (school commands), and the
//! notices and objections of both kinds. Loads the facts, lets `junheng_core::seed` and
//! `junheng_core::notice` decide, persists.

use chrono::{DateTime, Utc};
use junheng_core::SchoolCommand;
use junheng_core::notice::{self, ListedSchool, NoticeFacts, NoticeKind};
use junheng_core::seed::{self as rules, SelfScore};
use junheng_core::{ApplicationId, CampaignId, NoticeId, ObjectionId, SchoolId};
use junheng_store::PgConnection;
use junheng_store::actors::{self, OpinionRow};
use junheng_store::campaigns::{self, Lock};
use junheng_store::{applications, objections, scores};

use junheng_store::applications::ApplicationRow;
use junheng_store::notices::NoticeRow;
use junheng_store::objections::ObjectionRow;
use junheng_store::schools::{self, SchoolRow};

use super::notices::{self, NoticeView};
use super::{cases, ctx};
use crate::error::AppResult;
use crate::state::{AppState, Call, Work};

async fn notice_facts(conn: &mut PgConnection, n: &NoticeRow) -> AppResult<NoticeFacts> {
    Ok(NoticeFacts {
        id: n.notice_id(),
        kind: n.kind,
        title: n.title.clone(),
        ends_at: n.ends_at,
        closed: n.closed_at.is_some(),
        schools: junheng_store::notices::notice_school_ids(conn, n.notice_id()).await?,
        objections_by_contact: objections::notice_objections(conn, n.notice_id())
            .await?
            .into_iter()
            .fold(Default::default(), |mut by, o| {
                *by.entry(o.objector_contact.trim().to_string()).or_insert(0) += 1;
                by
            }),
    })
}

/// A one-school command (nominate, withdraw a nomination).
pub async fn school_command(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    school: SchoolId,
    version: i64,
    cmd: SchoolCommand,
) -> AppResult<SchoolRow> {
    let campaign = state.campaign_of(w.conn(), school).await?;
    let camp = state.load(w.conn(), campaign, Lock::Share).await?;
    cases::apply(w, call, &camp, school, version, cmd, Vec::new()).await
}

pub struct SubmitApplication {
    pub school: SchoolId,
    pub version: i64,
    pub statement: String,
    pub self_assessment: Vec<SelfScore>,
}

pub async fn submit_application(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: SubmitApplication,
) -> AppResult<ApplicationRow> {
    let campaign = state.campaign_of(w.conn(), cmd.school).await?;
    let camp = state.load(w.conn(), campaign, Lock::Share).await?;
    let command = rules::SubmitApplication {
        application: ApplicationId::now_v7(),
        school: cmd.school,
        statement: cmd.statement,
        self_assessment: cmd.self_assessment,
    };
    let d = rules::submit_application(command, &camp.def, w.now)?;
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
    let a = d.application;
    let row = ApplicationRow {
        id: a.id,
        campaign_id: campaign,
        school_id: a.school,
        self_assessment: serde_json::Value::Array(
            a.self_assessment
                .iter()
                .map(|s| serde_json::json!({ "indicator": s.indicator, "score": s.score, "note": s.note }))
                .collect(),
        ),
        statement: a.statement,
        status: a.status,
        reason: a.reason,
        submitted_at: a.submitted_at,
    };
    applications::insert_application(w.conn(), &row).await?;
    Ok(row)
}

pub struct ReviewApplication {
    pub application: ApplicationId,
    pub version: i64,
    pub approve: bool,
    pub reason: String,
}

pub async fn review_application(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: ReviewApplication,
) -> AppResult<(ApplicationRow, Vec<OpinionRow>)> {
    let mut app = applications::get_application(w.conn(), cmd.application).await?;
    let camp = state.load(w.conn(), app.campaign_id, Lock::Share).await?;
    // The school row first (as every school command), so an opinion being recorded finishes
    // before the decision reads the opinions.
    schools::get_for_update(w.conn(), app.school_id).await?;
    let opinions = actors::opinions_of(w.conn(), app.id).await?;
    let d = rules::review_with_opinions(cmd.approve, cmd.reason, opinions.len(), &camp.def)?;
    cases::apply(
        w,
        call,
        &camp,
        app.school_id,
        cmd.version,
        d.command,
        Vec::new(),
    )
    .await?;
    app.status = d.status;
    app.reason = d.reason;
    let now = w.now;
    applications::decide_application(w.conn(), app.id, app.status, &app.reason, now).await?;
    Ok((app, opinions))
}

pub struct RecordOpinion {
    pub application: ApplicationId,
    pub opinion: rules::RecordOpinion,
}

/// A department's opinion on a pending self-application (replacing its earlier one, audited
/// with before and after); returns the application with every opinion.
pub async fn record_opinion(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: RecordOpinion,
) -> AppResult<(ApplicationRow, Vec<OpinionRow>)> {
    let app = applications::get_application(w.conn(), cmd.application).await?;
    let camp = state.load(w.conn(), app.campaign_id, Lock::Share).await?;
    schools::get_for_update(w.conn(), app.school_id).await?;
    // Re-read under the school's lock: a decision may have committed meanwhile.
    let app = applications::get_application(w.conn(), cmd.application).await?;
    let effect = rules::record_opinion(
        &cmd.opinion,
        app.status,
        app.school_id,
        &call.actor,
        &ctx(&camp, w.now),
    )?;
    let row = OpinionRow {
        application_id: app.id,
        department: cmd.opinion.department.trim().to_string(),
        campaign_id: app.campaign_id,
        school_id: app.school_id,
        agree: cmd.opinion.agree,
        reason: cmd.opinion.reason.trim().to_string(),
        actor: call.actor.id.clone(),
        recorded_at: w.now,
    };
    let before = actors::put_opinion(w.conn(), &row).await?.map(
        |b| serde_json::json!({ "department": b.department, "agree": b.agree, "reason": b.reason }),
    );
    let mut effects = [effect];
    junheng_core::effects::set_before(&mut effects, "application.opinion_recorded", before);
    w.record(call, app.campaign_id, &effects).await?;
    let opinions = actors::opinions_of(w.conn(), app.id).await?;
    Ok((app, opinions))
}

/// Every department opinion of a campaign's applications.
pub async fn opinions(state: &AppState, campaign: CampaignId) -> AppResult<Vec<OpinionRow>> {
    let mut conn = state.pool.acquire().await?;
    Ok(actors::opinions(&mut conn, campaign).await?)
}

/// The opinions of one application.
pub async fn opinions_of(
    state: &AppState,
    application: ApplicationId,
) -> AppResult<Vec<OpinionRow>> {
    let mut conn = state.pool.acquire().await?;
    Ok(actors::opinions_of(&mut conn, application).await?)
}

pub async fn applications(
    state: &AppState,
    campaign: CampaignId,
) -> AppResult<Vec<ApplicationRow>> {
    let mut conn = state.pool.acquire().await?;
    campaigns::get(&mut conn, campaign, Lock::None).await?;
    Ok(applications::list_applications(&mut conn, campaign).await?)
}

pub struct PublishNotice {
    pub campaign: CampaignId,
    pub kind: NoticeKind,
    /// Empty: the definition's default title.
    pub title: String,
    /// Distinct, in the order asked.
    pub schools: Vec<SchoolId>,
}

pub async fn publish_notice(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: PublishNotice,
) -> AppResult<NoticeView> {
    let camp = state.load(w.conn(), cmd.campaign, Lock::Share).await?;
    let command = notice::PublishNotice {
        notice: NoticeId::now_v7(),
        kind: cmd.kind,
        title: cmd.title,
        schools: cmd.schools,
    };
    let d = notice::publish_notice(command, &ctx(&camp, w.now))?;
    for (school, put) in d.put_on_notice {
        cases::apply(w, call, &camp, school, 0, put, Vec::new()).await?;
    }
    let row = NoticeRow {
        id: d.notice.as_uuid(),
        campaign_id: cmd.campaign,
        kind: d.kind,
        title: d.title,
        starts_at: d.window.starts_at,
        ends_at: d.window.ends_at,
        last_day: d.window.last_day,
        closed_at: None,
    };
    let now = w.now;
    let trace = junheng_edge::telemetry::traceparent();
    junheng_store::notices::insert_notice(w.conn(), &row, &d.schools, now, trace.as_deref())
        .await?;
    w.record(call, cmd.campaign, &d.effects).await?;
    notices::view(w.conn(), row).await
}

/// One notice as shown, with the instant it is shown at (the notice's state depends on it).
pub async fn notice(state: &AppState, id: NoticeId) -> AppResult<(NoticeView, DateTime<Utc>)> {
    let mut conn = state.pool.acquire().await?;
    let now = state.now(&mut conn).await?;
    let n = junheng_store::notices::get_notice(&mut conn, id).await?;
    Ok((notices::view(&mut conn, n).await?, now))
}

pub async fn notices(
    state: &AppState,
    campaign: CampaignId,
) -> AppResult<(Vec<NoticeView>, DateTime<Utc>)> {
    let mut conn = state.pool.acquire().await?;
    let now = state.now(&mut conn).await?;
    campaigns::get(&mut conn, campaign, Lock::None).await?;
    let mut out = Vec::new();
    for n in junheng_store::notices::list_notices(&mut conn, campaign).await? {
        out.push(notices::view(&mut conn, n).await?);
    }
    Ok((out, now))
}

pub struct FileObjection {
    pub notice: NoticeId,
    pub school: SchoolId,
    pub objector_name: String,
    pub objector_contact: String,
    pub grounds: String,
    pub evidence: String,
}

pub async fn file_objection(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: FileObjection,
) -> AppResult<ObjectionRow> {
    let n = junheng_store::notices::get_notice(w.conn(), cmd.notice).await?;
    let camp = state.load(w.conn(), n.campaign_id, Lock::Share).await?;
    let facts = notice_facts(w.conn(), &n).await?;
    let listed = if facts.schools.contains(&cmd.school) {
        let row = schools::get_for_update(w.conn(), cmd.school).await?;
        Some(ListedSchool {
            state: row.state,
            name: row.name,
        })
    } else {
        None
    };
    let command = notice::FileObjection {
        objection: ObjectionId::now_v7(),
        school: cmd.school,
        objector_name: cmd.objector_name,
        objector_contact: cmd.objector_contact,
        grounds: cmd.grounds,
        evidence: cmd.evidence,
        filed_by: call.actor.id.clone(),
    };
    let d = notice::file_objection(command, &facts, listed.as_ref(), &ctx(&camp, w.now))?;
    let o = d.objection;
    let row = ObjectionRow {
        id: o.id,
        campaign_id: n.campaign_id,
        notice_id: o.notice,
        school_id: o.school,
        objector_name: o.objector_name,
        objector_contact: o.objector_contact,
        grounds: o.grounds,
        evidence: o.evidence,
        filed_by: o.filed_by,
        status: o.status,
        resolution: o.resolution,
        filed_at: o.filed_at,
    };
    objections::insert_objection(w.conn(), &row).await?;
    w.record(call, n.campaign_id, &d.effects).await?;
    Ok(row)
}

pub struct ResolveObjection {
    pub objection: ObjectionId,
    pub upheld: bool,
    pub reason: String,
}

pub async fn resolve_objection(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    cmd: ResolveObjection,
) -> AppResult<ObjectionRow> {
    let mut o = objections::lock_objection(w.conn(), cmd.objection).await?;
    let status = o.status;
    let camp = state.load(w.conn(), o.campaign_id, Lock::Share).await?;
    let kind = junheng_store::notices::get_notice(w.conn(), o.notice_id)
        .await?
        .kind;
    let command = notice::ResolveObjection {
        objection: o.id,
        school: o.school_id,
        upheld: cmd.upheld,
        reason: cmd.reason,
    };
    let resolution = command.reason.clone();
    let d = notice::resolve_objection(command, status, kind, &ctx(&camp, w.now))?;
    if d.mark_disputed {
        scores::mark_disputed(w.conn(), o.school_id).await?;
    }
    match d.school_command {
        Some(remove) => {
            cases::apply(w, call, &camp, o.school_id, 0, remove, d.effects).await?;
        }
        None => w.record(call, o.campaign_id, &d.effects).await?,
    }
    o.status = d.status;
    o.resolution = resolution;
    let now = w.now;
    objections::resolve_objection(w.conn(), o.id, o.status, &o.resolution, now).await?;
    Ok(o)
}

pub async fn close_notice(
    state: &AppState,
    w: &mut Work,
    call: &Call,
    notice: NoticeId,
) -> AppResult<NoticeView> {
    let mut n = junheng_store::notices::lock_notice(w.conn(), notice).await?;
    let camp = state.load(w.conn(), n.campaign_id, Lock::Share).await?;
    let facts = notice_facts(w.conn(), &n).await?;
    let d = notice::close_notice(&facts, w.now, &camp.def)?;
    let now = w.now;
    if d.closes && junheng_store::notices::close_notice(w.conn(), n.notice_id(), now).await? {
        n.closed_at = Some(now);
        w.record(call, n.campaign_id, &d.effects).await?;
    }
    notices::view(w.conn(), n).await
}
