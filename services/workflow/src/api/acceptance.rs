//! AcceptanceService: phase 4 — the panel, report and on-site scores with recusal, aggregated
//! results, the results notice.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use junheng_core::effects::{DeadlineRef, ObligationKind, Owner};
use junheng_core::notice::{self, NoticeKind};
use junheng_core::scoring::{self, AcceptanceResult, ScoreSheets};
use junheng_core::{CaseState, Effect, PhaseKind, Role};
use junheng_proto::v1 as pb;
use junheng_proto::v1::acceptance_service_server::AcceptanceService;
use junheng_store::PgConnection;
use junheng_store::campaigns::{self, Lock};
use junheng_store::phases::{self, PanelRow, ScoreRow};
use junheng_store::seed::{self, NoticeRow};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::pairing::{all_schools, indicator_scores};
use super::seed::notice_to_pb;
use super::{Shared, begin, reply};
use crate::convert::Violations;
use crate::error::{AppError, AppResult};
use crate::state::Loaded;

pub struct AcceptanceApi(pub Shared);

/// One potential school's standing: its mentor, its scorers, its aggregate (when complete).
pub struct Standing {
    pub school: junheng_store::schools::SchoolRow,
    pub mentor: Option<(Uuid, String)>,
    pub scorers: u32,
    pub result: Option<AcceptanceResult>,
    pub disputed: bool,
}

fn add_sheet(sheets: &mut ScoreSheets, s: &ScoreRow) {
    sheets.report.push(s.report);
    if let Some(o) = s.onsite.as_object() {
        for (k, v) in o {
            sheets
                .onsite
                .entry(k.clone())
                .or_default()
                .push(v.as_f64().unwrap_or(0.0));
        }
    }
}

/// One school's standing, reading only its own rows (the hot path of scoring).
async fn standing_of(
    conn: &mut PgConnection,
    camp: &Loaded,
    school: junheng_store::schools::SchoolRow,
) -> AppResult<Standing> {
    let mentor = match phases::mentor_of(conn, school.id).await? {
        Some(m) => Some((m, junheng_store::schools::get(conn, m).await?.name)),
        None => None,
    };
    let rows = phases::scores_of(conn, school.id).await?;
    let mut sheets = ScoreSheets::default();
    for r in &rows {
        add_sheet(&mut sheets, r);
    }
    Ok(Standing {
        mentor,
        scorers: rows.len() as u32,
        result: scoring::aggregate(&camp.def, &sheets),
        disputed: phases::disputed(conn, school.id).await?.unwrap_or(false),
        school,
    })
}

/// Aggregates the current score sheets of every paired school.
pub async fn standings(conn: &mut PgConnection, camp: &Loaded) -> AppResult<Vec<Standing>> {
    let all = all_schools(conn, camp.id()).await?;
    let names: HashMap<Uuid, String> = all.iter().map(|s| (s.id, s.name.clone())).collect();
    let mentors: HashMap<Uuid, Uuid> = phases::pairing(conn, camp.id())
        .await?
        .into_iter()
        .map(|(m, p)| (p, m))
        .collect();
    let mut sheets: HashMap<Uuid, ScoreSheets> = HashMap::new();
    let mut scorers: HashMap<Uuid, u32> = HashMap::new();
    for s in phases::scores(conn, camp.id()).await? {
        add_sheet(sheets.entry(s.school_id).or_default(), &s);
        *scorers.entry(s.school_id).or_default() += 1;
    }
    let disputed: HashMap<Uuid, bool> = phases::results(conn, camp.id())
        .await?
        .into_iter()
        .map(|(s, _, d)| (s, d))
        .collect();
    Ok(all
        .into_iter()
        .filter(|s| s.state == CaseState::Paired.code())
        .map(|s| {
            let result = sheets
                .get(&s.id)
                .and_then(|sh| scoring::aggregate(&camp.def, sh));
            Standing {
                mentor: mentors
                    .get(&s.id)
                    .map(|m| (*m, names.get(m).cloned().unwrap_or_default())),
                scorers: scorers.get(&s.id).copied().unwrap_or(0),
                disputed: disputed.get(&s.id).copied().unwrap_or(false),
                result,
                school: s,
            }
        })
        .collect())
}

pub fn standing_to_pb(s: &Standing, camp: &Loaded) -> pb::SchoolResult {
    let r = s.result.as_ref();
    pb::SchoolResult {
        school_id: s.school.id.to_string(),
        school_name: s.school.name.clone(),
        mentor_school_id: s
            .mentor
            .as_ref()
            .map(|m| m.0.to_string())
            .unwrap_or_default(),
        mentor_school_name: s.mentor.as_ref().map(|m| m.1.clone()).unwrap_or_default(),
        scorers: s.scorers,
        complete: r.is_some(),
        report_score: r.map_or(0.0, |r| r.report),
        onsite_score: r.map_or(0.0, |r| r.onsite_mean),
        final_score: r.map_or(0.0, |r| r.final_score),
        onsite: r
            .map(|r| {
                r.onsite
                    .iter()
                    .map(|(k, v)| pb::IndicatorScore {
                        indicator: k.clone(),
                        score: *v,
                        note: String::new(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        failed_indicators: r
            .map(|r| {
                camp.def
                    .indicators
                    .iter()
                    .filter(|i| !r.passes.get(&i.code).copied().unwrap_or(false))
                    .map(|i| i.code.clone())
                    .collect()
            })
            .unwrap_or_default(),
        disputed: s.disputed,
    }
}

fn affiliation_code(a: i32) -> Option<&'static str> {
    match pb::Affiliation::try_from(a).ok()? {
        pb::Affiliation::Department => Some("department"),
        pb::Affiliation::HighSchool => Some("high_school"),
        pb::Affiliation::MentorSchool => Some("mentor_school"),
        pb::Affiliation::Unspecified => None,
    }
}

fn affiliation_to_pb(s: &str) -> pb::Affiliation {
    match s {
        "department" => pb::Affiliation::Department,
        "high_school" => pb::Affiliation::HighSchool,
        "mentor_school" => pb::Affiliation::MentorSchool,
        _ => pb::Affiliation::Unspecified,
    }
}

fn panel_to_pb(rows: &[PanelRow]) -> pb::Panel {
    pb::Panel {
        members: rows
            .iter()
            .map(|m| pb::PanelMember {
                actor: m.actor.clone(),
                name: m.name.clone(),
                affiliation: affiliation_to_pb(&m.affiliation) as i32,
                mentor_school_id: m
                    .mentor_school_id
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

/// Recomputes disputed results from the current sheets and makes results final.
pub async fn finalise_results(
    conn: &mut PgConnection,
    camp: &Loaded,
    now: DateTime<Utc>,
) -> AppResult<Vec<Effect>> {
    let mut rows = Vec::new();
    let mut effects = Vec::new();
    let stored: BTreeMap<Uuid, (serde_json::Value, bool)> = phases::results(conn, camp.id())
        .await?
        .into_iter()
        .map(|(s, r, d)| (s, (r, d)))
        .collect();
    for s in standings(conn, camp).await? {
        let (old, disputed) = stored
            .get(&s.school.id)
            .cloned()
            .unwrap_or((serde_json::Value::Null, false));
        let value = if disputed {
            let new = serde_json::to_value(&s.result).map_err(AppError::internal)?;
            effects.push(Effect::event(
                "results.recomputed",
                Some(s.school.id),
                old,
                new.clone(),
                None,
            ));
            new
        } else {
            old
        };
        rows.push((s.school.id, value));
    }
    phases::replace_results(conn, camp.id(), &rows, now).await?;
    campaigns::set_results_final(conn, camp.id(), now).await?;
    effects.push(Effect::event(
        "results.final",
        None,
        serde_json::Value::Null,
        serde_json::json!({ "schools": rows.len() }),
        None,
    ));
    Ok(effects)
}

/// What still blocks completing the acceptance phase.
pub async fn open_items(
    conn: &mut PgConnection,
    camp: &Loaded,
    now: DateTime<Utc>,
) -> AppResult<Vec<String>> {
    let Some(notice) = camp.row.results_notice_id else {
        return Ok(vec!["成绩公示未发布 (results notice not published)".into()]);
    };
    let mut items = Vec::new();
    let n = seed::get_notice(conn, notice).await?;
    if now < n.ends_at {
        items.push("成绩公示期未结束 (results notice still running)".into());
    }
    let open = seed::notice_objections(conn, notice)
        .await?
        .iter()
        .filter(|o| o.status == "open")
        .count();
    if open > 0 {
        items.push(format!("{open} 件成绩异议待处理 (objections unresolved)"));
    }
    Ok(items)
}

#[tonic::async_trait]
impl AcceptanceService for AcceptanceApi {
    async fn form_panel(
        &self,
        req: Request<pb::FormPanelRequest>,
    ) -> Result<Response<pb::Panel>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(&call, async {
            call.require(&[Role::Office], "form the acceptance panel")?;
            let mut v = Violations::default();
            let campaign = v.uuid("campaign_id", &req.campaign_id);
            if req.members.is_empty() {
                v.add("members", "at least one panel member");
            }
            let mut rows = Vec::new();
            let mut seen = BTreeMap::new();
            for (i, m) in req.members.iter().enumerate() {
                let actor = v.text(&format!("members[{i}].actor"), &m.actor, 100);
                let name = v.text(&format!("members[{i}].name"), &m.name, 100);
                let affiliation = affiliation_code(m.affiliation);
                let mentor_school_id = match affiliation {
                    None => {
                        v.add(format!("members[{i}].affiliation"), "must be AFFILIATION_DEPARTMENT, AFFILIATION_HIGH_SCHOOL or AFFILIATION_MENTOR_SCHOOL");
                        None
                    }
                    Some("mentor_school") => Some(v.uuid(&format!("members[{i}].mentor_school_id"), &m.mentor_school_id)),
                    Some(_) => {
                        if !m.mentor_school_id.is_empty() {
                            v.add(format!("members[{i}].mentor_school_id"), "only for AFFILIATION_MENTOR_SCHOOL");
                        }
                        None
                    }
                };
                if seen.insert(actor.clone(), i).is_some() {
                    v.add(format!("members[{i}].actor"), "listed twice");
                }
                rows.push(PanelRow { actor, name, affiliation: affiliation.unwrap_or_default().into(), mentor_school_id });
            }
            v.finish()?;
            let mut w = begin!(self.0, call, "FormPanel", req);
            let camp = self.0.load(w.conn(), campaign, Lock::Share).await?;
            camp.phases.require_active(PhaseKind::Acceptance, None, "form the acceptance panel", w.now, &camp.def)?;
            let mut v = Violations::default();
            for (i, m) in rows.iter().enumerate() {
                if junheng_store::tokens::role_of(w.conn(), &m.actor).await?.as_deref() != Some("panel") {
                    v.add(format!("members[{i}].actor"), format!("`{}` is not a panel-role actor (issue a ROLE_PANEL token first)", m.actor));
                }
                if let Some(ms) = m.mentor_school_id {
                    let state = junheng_store::schools::get(w.conn(), ms).await.map(|s| s.state).unwrap_or_default();
                    if state != CaseState::Mentor.code() {
                        v.add(format!("members[{i}].mentor_school_id"), "not a mentor school of this campaign");
                    }
                }
            }
            v.finish()?;
            phases::replace_panel(w.conn(), campaign, &rows).await?;
            let resp = panel_to_pb(&rows);
            let ev = Effect::event(
                "panel.formed",
                None,
                serde_json::Value::Null,
                serde_json::json!({ "members": rows.iter().map(|m| serde_json::json!({ "actor": m.actor, "name": m.name, "affiliation": m.affiliation, "mentor_school_id": m.mentor_school_id })).collect::<Vec<_>>() }),
                None,
            );
            let due = camp.phases.deadline(PhaseKind::Acceptance, &camp.def);
            let mut effects = vec![ev];
            for s in all_schools(w.conn(), campaign).await?.iter().filter(|s| s.state == CaseState::Paired.code()) {
                effects.push(Effect::OpenObligation {
                    kind: ObligationKind::SubmitScores,
                    school: Some(s.id),
                    key: String::new(),
                    owner: Owner::Role(Role::Panel),
                    deadline: DeadlineRef::Phase(PhaseKind::Acceptance),
                    due,
                    subject: format!("为{}评分（提升汇报与现场查验）", s.name),
                });
            }
            w.record(&call, campaign, &effects).await?;
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
    }

    async fn get_panel(
        &self,
        req: Request<pb::GetPanelRequest>,
    ) -> Result<Response<pb::Panel>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                campaigns::get(&mut conn, campaign, Lock::None).await?;
                Ok(panel_to_pb(&phases::panel(&mut conn, campaign).await?))
            }
            .await,
        )
    }

    async fn submit_scores(
        &self,
        req: Request<pb::SubmitScoresRequest>,
    ) -> Result<Response<pb::SchoolResult>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(&call, async {
            call.require(&[Role::Panel], "score a potential school")?;
            let mut v = Violations::default();
            let school = v.uuid("school_id", &req.school_id);
            if !(req.report_score.is_finite() && (0.0..=100.0).contains(&req.report_score)) {
                v.add("report_score", "must be between 0 and 100");
            }
            if req.onsite.is_empty() {
                v.add("onsite", "an on-site score for every indicator is required");
            }
            v.finish()?;
            let mut w = begin!(self.0, call, "SubmitScores", req);
            let campaign = self.0.campaign_of(w.conn(), school).await?;
            let camp = self.0.load(w.conn(), campaign, Lock::Share).await?;
            let mut v = Violations::default();
            let onsite = indicator_scores(&mut v, "onsite", &camp, &req.onsite);
            v.finish()?;
            camp.phases.require_active(PhaseKind::Acceptance, None, "score a potential school", w.now, &camp.def)?;
            let member = phases::panel(w.conn(), campaign).await?.into_iter().find(|m| m.actor == call.actor.id);
            let Some(member) = member else {
                return Err(AppError::PermissionDenied("you are not on this campaign's acceptance panel".into()));
            };
            let row = junheng_store::schools::get_for_update(w.conn(), school).await?;
            if row.state != CaseState::Paired.code() {
                return Err(AppError::FailedPrecondition(format!("only paired potential schools are scored; this school is {}", row.state)));
            }
            let mentor = phases::mentor_of(w.conn(), school).await?;
            if member.mentor_school_id.is_some() && member.mentor_school_id == mentor {
                return Err(AppError::PermissionDenied(format!(
                    "recused: {} is affiliated with this school's mentor school and may not score it (conflict of interest)",
                    member.name
                )));
            }
            let disputed = phases::disputed(w.conn(), school).await?.unwrap_or(false);
            if camp.row.results_notice_id.is_some() && !disputed {
                return Err(AppError::FailedPrecondition("the results notice is published; scores can change only after an upheld objection".into()));
            }
            let sheet = ScoreRow { school_id: school, member: call.actor.id.clone(), report: req.report_score, onsite: serde_json::to_value(&onsite).map_err(AppError::internal)? };
            let now = w.now;
            phases::upsert_scores(w.conn(), campaign, &sheet, now).await?;
            let ev = Effect::event("scores.submitted", Some(school), serde_json::Value::Null, serde_json::json!({ "report": sheet.report, "onsite": sheet.onsite }), None);
            w.record(&call, campaign, &[ev]).await?;
            let standing = standing_of(w.conn(), &camp, row).await?;
            let resp = standing_to_pb(&standing, &camp);
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
    }

    async fn get_results(
        &self,
        req: Request<pb::GetResultsRequest>,
    ) -> Result<Response<pb::GetResultsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                let camp = self.0.load(&mut conn, campaign, Lock::None).await?;
                let results = if camp.row.results_final_at.is_some() {
                    // Final results are the published (or recomputed) ones.
                    let stored: HashMap<Uuid, AcceptanceResult> =
                        phases::results(&mut conn, campaign)
                            .await?
                            .into_iter()
                            .filter_map(|(s, r, _)| Some((s, serde_json::from_value(r).ok()?)))
                            .collect();
                    standings(&mut conn, &camp)
                        .await?
                        .into_iter()
                        .map(|mut s| {
                            s.result = stored.get(&s.school.id).cloned();
                            standing_to_pb(&s, &camp)
                        })
                        .collect()
                } else {
                    standings(&mut conn, &camp)
                        .await?
                        .iter()
                        .map(|s| standing_to_pb(s, &camp))
                        .collect()
                };
                Ok(pb::GetResultsResponse {
                    results,
                    r#final: camp.row.results_final_at.is_some(),
                })
            }
            .await,
        )
    }

    async fn publish_results_notice(
        &self,
        req: Request<pb::PublishResultsNoticeRequest>,
    ) -> Result<Response<pb::Notice>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(&call, async {
            call.require(&[Role::Office], "publish the results notice")?;
            let mut v = Violations::default();
            let campaign = v.uuid("campaign_id", &req.campaign_id);
            let title = v.optional_text("title", &req.title, 200);
            v.finish()?;
            let mut w = begin!(self.0, call, "PublishResultsNotice", req);
            let camp = self.0.load(w.conn(), campaign, Lock::Update).await?;
            camp.phases.require_active(PhaseKind::Acceptance, None, "publish the results notice", w.now, &camp.def)?;
            if camp.row.results_notice_id.is_some() {
                return Err(AppError::FailedPrecondition("the results notice is already published".into()));
            }
            let standings = standings(w.conn(), &camp).await?;
            let incomplete: Vec<&str> = standings.iter().filter(|s| s.result.is_none()).map(|s| s.school.name.as_str()).collect();
            if !incomplete.is_empty() || standings.is_empty() {
                return Err(AppError::FailedPrecondition(format!("scores are incomplete for: {}", if incomplete.is_empty() { "every school (none is paired)".into() } else { incomplete.join("、") })));
            }
            let window = notice::window(w.now, &camp.def)?;
            let id = Uuid::now_v7();
            let row = NoticeRow {
                id,
                campaign_id: campaign,
                kind: NoticeKind::Results.code().into(),
                title: if title.is_empty() { NoticeKind::Results.default_title(&camp.def) } else { title },
                starts_at: window.starts_at,
                ends_at: window.ends_at,
                last_day: window.last_day,
                closed_at: None,
            };
            let mut sorted: Vec<&Standing> = standings.iter().collect();
            sorted.sort_by(|a, b| b.result.as_ref().map_or(0.0, |r| r.final_score).total_cmp(&a.result.as_ref().map_or(0.0, |r| r.final_score)));
            let ids: Vec<Uuid> = sorted.iter().map(|s| s.school.id).collect();
            let now = w.now;
            seed::insert_notice(w.conn(), &row, &ids, now).await?;
            let results: Vec<(Uuid, serde_json::Value)> =
                standings.iter().map(|s| Ok((s.school.id, serde_json::to_value(&s.result).map_err(AppError::internal)?))).collect::<AppResult<_>>()?;
            phases::replace_results(w.conn(), campaign, &results, now).await?;
            campaigns::set_results_notice(w.conn(), campaign, id).await?;
            let mut effects = vec![
                Effect::event(
                    "notice.published",
                    None,
                    serde_json::Value::Null,
                    serde_json::json!({ "notice_id": id, "kind": "results", "title": row.title, "ends_at": row.ends_at, "last_day": row.last_day, "schools": ids }),
                    None,
                ),
                Effect::OpenObligation {
                    kind: ObligationKind::CloseNotice,
                    school: None,
                    key: id.to_string(),
                    owner: Owner::Role(Role::Office),
                    deadline: DeadlineRef::Fixed,
                    due: row.ends_at,
                    subject: junheng_core::notice::period_over_subject(&row.title),
                },
            ];
            effects.extend(ids.iter().map(|s| Effect::CloseObligation { kind: ObligationKind::SubmitScores, school: Some(*s), key: String::new() }));
            w.record(&call, campaign, &effects).await?;
            let resp = notice_to_pb(w.conn(), &row, now).await?;
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
    }
}
