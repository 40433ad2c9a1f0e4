//! SeedService: phase 1 — nominations, self-applications and their review, public notices,
//! objections.

use std::collections::{BTreeMap, BTreeSet};

use junheng_core::effects::{DeadlineRef, ObligationKind, Owner};
use junheng_core::notice::{self, NoticeKind};
use junheng_core::{Effect, PhaseKind, Role, SchoolCommand};
use junheng_proto::v1 as pb;
use junheng_proto::v1::seed_service_server::SeedService;
use junheng_store::campaigns::Lock;
use junheng_store::seed::{self, ApplicationRow, NoticeRow, ObjectionRow};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Shared, begin, reply};
use crate::app::{cases, notices};
use crate::convert::{
    Violations, notice_kind_from_pb, notice_to_pb, objection_to_pb, school_to_pb, ts,
};
use crate::error::{AppError, AppResult};
use crate::state::{Call, Work};

pub struct SeedApi(pub Shared);

fn application_to_pb(a: &ApplicationRow) -> pb::Application {
    let scores = a
        .self_assessment
        .as_array()
        .map(|arr| {
            arr.iter()
                .map(|s| pb::IndicatorScore {
                    indicator: s["indicator"].as_str().unwrap_or_default().into(),
                    score: s["score"].as_f64().unwrap_or_default(),
                    note: s["note"].as_str().unwrap_or_default().into(),
                })
                .collect()
        })
        .unwrap_or_default();
    pb::Application {
        id: a.id.to_string(),
        school_id: a.school_id.to_string(),
        self_assessment: scores,
        statement: a.statement.clone(),
        status: a.status.clone(),
        reason: a.reason.clone(),
        submitted_at: Some(ts(a.submitted_at)),
    }
}

impl SeedApi {
    /// The common shape of a one-school command.
    async fn school_command(
        &self,
        call: &Call,
        w: &mut Work,
        school: Uuid,
        version: i64,
        cmd: SchoolCommand,
    ) -> AppResult<pb::School> {
        let campaign = self.0.campaign_of(w.conn(), school).await?;
        let camp = self.0.load(w.conn(), campaign, Lock::Share).await?;
        let row = cases::apply(w, call, &camp, school, version, cmd, Vec::new()).await?;
        Ok(school_to_pb(&row))
    }
}

#[tonic::async_trait]
impl SeedService for SeedApi {
    async fn nominate(
        &self,
        req: Request<pb::NominateRequest>,
    ) -> Result<Response<pb::School>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let school = v.uuid("school_id", &req.school_id);
                let version = v.version("expected_version", req.expected_version);
                let basis = v.text("basis", &req.basis, 2000);
                v.finish()?;
                let mut w = begin!(self.0, call, "Nominate", req);
                let resp = self
                    .school_command(
                        &call,
                        &mut w,
                        school,
                        version,
                        SchoolCommand::Nominate { basis },
                    )
                    .await?;
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn withdraw_nomination(
        &self,
        req: Request<pb::WithdrawNominationRequest>,
    ) -> Result<Response<pb::School>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let school = v.uuid("school_id", &req.school_id);
                let version = v.version("expected_version", req.expected_version);
                let reason = v.text("reason", &req.reason, 2000);
                v.finish()?;
                let mut w = begin!(self.0, call, "WithdrawNomination", req);
                let resp = self
                    .school_command(
                        &call,
                        &mut w,
                        school,
                        version,
                        SchoolCommand::WithdrawNomination { reason },
                    )
                    .await?;
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn submit_application(
        &self,
        req: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(&call, async {
            let mut v = Violations::default();
            let school = v.uuid("school_id", &req.school_id);
            let version = v.version("expected_version", req.expected_version);
            let statement = v.text("statement", &req.statement, 5000);
            if req.self_assessment.is_empty() {
                v.add("self_assessment", "a score for every indicator is required");
            }
            for (i, s) in req.self_assessment.iter().enumerate() {
                if !(s.score.is_finite() && (0.0..=100.0).contains(&s.score)) {
                    v.add(format!("self_assessment[{i}].score"), "must be between 0 and 100");
                }
                if s.note.chars().count() > 2000 {
                    v.add(format!("self_assessment[{i}].note"), "at most 2000 characters");
                }
            }
            v.finish()?;
            if call.actor.role == Role::School && call.actor.school != Some(school) {
                return Err(AppError::PermissionDenied("a school may apply only for itself".into()));
            }
            let mut w = begin!(self.0, call, "SubmitApplication", req);
            let campaign = self.0.campaign_of(w.conn(), school).await?;
            let camp = self.0.load(w.conn(), campaign, Lock::Share).await?;
            // Every indicator exactly once, and nothing else.
            let mut v = Violations::default();
            let mut seen = BTreeSet::new();
            for (i, s) in req.self_assessment.iter().enumerate() {
                if camp.def.indicator(&s.indicator).is_none() {
                    v.add(format!("self_assessment[{i}].indicator"), format!("unknown indicator `{}`", s.indicator));
                } else if !seen.insert(s.indicator.as_str()) {
                    v.add(format!("self_assessment[{i}].indicator"), format!("indicator `{}` appears twice", s.indicator));
                }
            }
            for ind in &camp.def.indicators {
                if !seen.contains(ind.code.as_str()) {
                    v.add("self_assessment", format!("missing indicator `{}` ({})", ind.code, ind.name));
                }
            }
            v.finish()?;
            cases::apply(&mut w, &call, &camp, school, version, SchoolCommand::SubmitApplication, Vec::new()).await?;
            let row = ApplicationRow {
                id: Uuid::now_v7(),
                campaign_id: campaign,
                school_id: school,
                self_assessment: serde_json::Value::Array(
                    req.self_assessment
                        .iter()
                        .map(|s| serde_json::json!({ "indicator": s.indicator, "score": s.score, "note": s.note.trim() }))
                        .collect(),
                ),
                statement,
                status: "pending".into(),
                reason: String::new(),
                submitted_at: w.now,
            };
            seed::insert_application(w.conn(), &row).await?;
            let resp = application_to_pb(&row);
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
    }

    async fn review_application(
        &self,
        req: Request<pb::ReviewApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let id = v.uuid("application_id", &req.application_id);
                let version = v.version("expected_version", req.expected_version);
                let reason = v.text("reason", &req.reason, 2000);
                let approve = match pb::Decision::try_from(req.decision) {
                    Ok(pb::Decision::Approve) => true,
                    Ok(pb::Decision::Reject) => false,
                    _ => {
                        v.add("decision", "must be DECISION_APPROVE or DECISION_REJECT");
                        false
                    }
                };
                v.finish()?;
                let mut w = begin!(self.0, call, "ReviewApplication", req);
                let mut app = seed::get_application(w.conn(), id).await?;
                let camp = self.0.load(w.conn(), app.campaign_id, Lock::Share).await?;
                cases::apply(
                    &mut w,
                    &call,
                    &camp,
                    app.school_id,
                    version,
                    SchoolCommand::ReviewApplication {
                        approve,
                        reason: reason.clone(),
                    },
                    Vec::new(),
                )
                .await?;
                app.status = if approve { "approved" } else { "rejected" }.into();
                app.reason = reason;
                let now = w.now;
                seed::decide_application(w.conn(), id, &app.status, &app.reason, now).await?;
                let resp = application_to_pb(&app);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn list_applications(
        &self,
        req: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                junheng_store::campaigns::get(&mut conn, campaign, Lock::None).await?;
                let rows = seed::list_applications(&mut conn, campaign).await?;
                Ok(pb::ListApplicationsResponse {
                    applications: rows.iter().map(application_to_pb).collect(),
                })
            }
            .await,
        )
    }

    async fn publish_notice(
        &self,
        req: Request<pb::PublishNoticeRequest>,
    ) -> Result<Response<pb::Notice>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(&call, async {
            call.require(&[Role::Office], "publish a notice")?;
            let mut v = Violations::default();
            let campaign = v.uuid("campaign_id", &req.campaign_id);
            let kind = pb::NoticeKind::try_from(req.kind).ok().and_then(notice_kind_from_pb);
            match kind {
                None => v.add("kind", "must be NOTICE_KIND_SEED_CANDIDATES or NOTICE_KIND_SEED_SUPPLEMENTARY"),
                Some(NoticeKind::Results) => v.add("kind", "results notices are published by the acceptance phase, not here"),
                _ => {}
            }
            let title = v.optional_text("title", &req.title, 200);
            if req.school_ids.is_empty() {
                v.add("school_ids", "a notice lists at least one school");
            }
            let mut ids = BTreeMap::new();
            for (i, s) in req.school_ids.iter().enumerate() {
                let id = v.uuid(&format!("school_ids[{i}]"), s);
                if let Some(first) = ids.insert(id, i) {
                    v.add(format!("school_ids[{i}]"), format!("duplicate of school_ids[{first}]"));
                }
            }
            v.finish()?;
            let kind = kind.expect("checked");
            let mut w = begin!(self.0, call, "PublishNotice", req);
            let camp = self.0.load(w.conn(), campaign, Lock::Share).await?;
            if kind == NoticeKind::SeedSupplementary && !camp.def.supplementary_notice {
                return Err(AppError::FailedPrecondition(
                    "this campaign adds approved applicants to the list directly (notice.supplementary = false)".into(),
                ));
            }
            let window = notice::window(w.now, &camp.def)?;
            let notice_id = Uuid::now_v7();
            // Lock in id order so concurrent publications cannot deadlock.
            for school in ids.keys() {
                cases::apply(&mut w, &call, &camp, *school, 0, SchoolCommand::PutOnNotice { notice: notice_id, kind }, Vec::new()).await?;
            }
            let row = NoticeRow {
                id: notice_id,
                campaign_id: campaign,
                kind: kind.code().into(),
                title: if title.is_empty() { kind.default_title(&camp.def) } else { title },
                starts_at: window.starts_at,
                ends_at: window.ends_at,
                last_day: window.last_day,
                closed_at: None,
            };
            let mut listed: Vec<(usize, Uuid)> = ids.iter().map(|(id, i)| (*i, *id)).collect();
            listed.sort();
            let listed: Vec<Uuid> = listed.into_iter().map(|(_, id)| id).collect();
            let now = w.now;
            seed::insert_notice(w.conn(), &row, &listed, now).await?;
            let effects = [
                Effect::event(
                    "notice.published",
                    None,
                    serde_json::Value::Null,
                    serde_json::json!({ "notice_id": notice_id, "kind": kind.code(), "title": row.title, "ends_at": row.ends_at,
                                        "last_day": row.last_day, "schools": listed }),
                    None,
                ),
                Effect::OpenObligation {
                    kind: ObligationKind::CloseNotice,
                    school: None,
                    key: notice_id.to_string(),
                    owner: Owner::Role(Role::Office),
                    deadline: DeadlineRef::Fixed,
                    due: row.ends_at,
                    subject: junheng_core::notice::period_over_subject(&row.title),
                },
            ];
            w.record(&call, campaign, &effects).await?;
            let resp = notice_to_pb(&notices::view(w.conn(), row.clone()).await?, now);
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
    }

    async fn get_notice(
        &self,
        req: Request<pb::GetNoticeRequest>,
    ) -> Result<Response<pb::Notice>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let id = v.uuid("notice_id", &req.notice_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                let now = self.0.now(&mut conn).await?;
                let n = seed::get_notice(&mut conn, id).await?;
                Ok(notice_to_pb(&notices::view(&mut conn, n).await?, now))
            }
            .await,
        )
    }

    async fn list_notices(
        &self,
        req: Request<pb::ListNoticesRequest>,
    ) -> Result<Response<pb::ListNoticesResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                let now = self.0.now(&mut conn).await?;
                junheng_store::campaigns::get(&mut conn, campaign, Lock::None).await?;
                let mut notices = Vec::new();
                for n in seed::list_notices(&mut conn, campaign).await? {
                    notices.push(notice_to_pb(&notices::view(&mut conn, n).await?, now));
                }
                Ok(pb::ListNoticesResponse { notices })
            }
            .await,
        )
    }

    async fn file_objection(
        &self,
        req: Request<pb::FileObjectionRequest>,
    ) -> Result<Response<pb::Objection>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(&call, async {
            call.require_writer("file an objection")?;
            let mut v = Violations::default();
            let notice_id = v.uuid("notice_id", &req.notice_id);
            let school = v.uuid("school_id", &req.school_id);
            let name = v.text("objector_name", &req.objector_name, 100);
            let contact = v.text("objector_contact", &req.objector_contact, 100);
            let grounds = v.text("grounds", &req.grounds, 5000);
            let evidence = v.text("evidence", &req.evidence, 1000);
            v.finish()?;
            let mut w = begin!(self.0, call, "FileObjection", req);
            let n = seed::get_notice(w.conn(), notice_id).await?;
            let camp = self.0.load(w.conn(), n.campaign_id, Lock::Share).await?;
            notice::check_objection(n.ends_at, w.now, &camp.def, &name, &contact, &grounds, &evidence)?;
            if !seed::notice_schools(w.conn(), notice_id).await?.contains(&school) {
                return Err(AppError::invalid("school_id", "this school is not listed on the notice"));
            }
            let results = n.kind == NoticeKind::Results.code();
            let (phase, listed_state) = if results {
                (PhaseKind::Acceptance, junheng_core::CaseState::Paired)
            } else {
                (PhaseKind::SeedDesignation, junheng_core::CaseState::Listed)
            };
            camp.phases.require_active(phase, None, "file an objection", w.now, &camp.def)?;
            let row = junheng_store::schools::get_for_update(w.conn(), school).await?;
            if row.state != listed_state.code() {
                return Err(AppError::FailedPrecondition(format!("the school is no longer on the list (state {})", row.state)));
            }
            let o = ObjectionRow {
                id: Uuid::now_v7(),
                campaign_id: n.campaign_id,
                notice_id,
                school_id: school,
                objector_name: name,
                objector_contact: contact,
                grounds,
                evidence,
                filed_by: call.actor.id.clone(),
                status: "open".into(),
                resolution: String::new(),
                filed_at: w.now,
            };
            seed::insert_objection(w.conn(), &o).await?;
            let effects = [
                Effect::event(
                    "objection.filed",
                    Some(school),
                    serde_json::Value::Null,
                    serde_json::json!({ "objection_id": o.id, "notice_id": notice_id, "objector_name": o.objector_name, "grounds": o.grounds, "evidence": o.evidence }),
                    None,
                ),
                Effect::OpenObligation {
                    kind: ObligationKind::ResolveObjection,
                    school: Some(school),
                    key: o.id.to_string(),
                    owner: Owner::Role(Role::Office),
                    deadline: DeadlineRef::Phase(phase),
                    due: camp.phases.deadline(phase, &camp.def),
                    subject: format!("处理对{}的异议", row.name),
                },
            ];
            w.record(&call, n.campaign_id, &effects).await?;
            let resp = objection_to_pb(&o);
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
    }

    async fn resolve_objection(
        &self,
        req: Request<pb::ResolveObjectionRequest>,
    ) -> Result<Response<pb::Objection>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "resolve an objection")?;
                let mut v = Violations::default();
                let id = v.uuid("objection_id", &req.objection_id);
                let reason = v.text("reason", &req.reason, 2000);
                v.finish()?;
                let mut w = begin!(self.0, call, "ResolveObjection", req);
                let mut o = seed::lock_objection(w.conn(), id).await?;
                if o.status != "open" {
                    return Err(AppError::FailedPrecondition(format!(
                        "the objection is already {}",
                        o.status
                    )));
                }
                let camp = self.0.load(w.conn(), o.campaign_id, Lock::Share).await?;
                let close = Effect::CloseObligation {
                    kind: ObligationKind::ResolveObjection,
                    school: Some(o.school_id),
                    key: o.id.to_string(),
                };
                let results = seed::get_notice(w.conn(), o.notice_id).await?.kind
                    == NoticeKind::Results.code();
                if results {
                    // An upheld objection to the results marks them disputed: the panel
                    // re-scores and the result is recomputed when acceptance completes.
                    camp.phases.require_active(
                        PhaseKind::Acceptance,
                        None,
                        "resolve an objection",
                        w.now,
                        &camp.def,
                    )?;
                    if req.upheld {
                        junheng_store::phases::mark_disputed(w.conn(), o.school_id).await?;
                    }
                    let action = if req.upheld {
                        "results.disputed"
                    } else {
                        "objection.dismissed"
                    };
                    let status = if req.upheld { "upheld" } else { "dismissed" };
                    let ev = Effect::event(
                        action,
                        Some(o.school_id),
                        serde_json::json!({ "objection_id": o.id, "status": "open" }),
                        serde_json::json!({ "objection_id": o.id, "status": status }),
                        Some(reason.clone()),
                    );
                    w.record(&call, o.campaign_id, &[ev, close]).await?;
                } else if req.upheld {
                    let cmd = SchoolCommand::UpholdObjection {
                        objection: o.id,
                        reason: reason.clone(),
                    };
                    cases::apply(&mut w, &call, &camp, o.school_id, 0, cmd, vec![close]).await?;
                } else {
                    camp.phases.require_active(
                        PhaseKind::SeedDesignation,
                        None,
                        "resolve an objection",
                        w.now,
                        &camp.def,
                    )?;
                    let ev = Effect::event(
                        "objection.dismissed",
                        Some(o.school_id),
                        serde_json::json!({ "objection_id": o.id, "status": "open" }),
                        serde_json::json!({ "objection_id": o.id, "status": "dismissed" }),
                        Some(reason.clone()),
                    );
                    w.record(&call, o.campaign_id, &[ev, close]).await?;
                }
                o.status = if req.upheld { "upheld" } else { "dismissed" }.into();
                o.resolution = reason;
                let now = w.now;
                seed::resolve_objection(w.conn(), id, &o.status, &o.resolution, now).await?;
                let resp = objection_to_pb(&o);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn close_notice(
        &self,
        req: Request<pb::CloseNoticeRequest>,
    ) -> Result<Response<pb::Notice>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(&call, async {
            call.require(&[Role::Office], "close a notice")?;
            let mut v = Violations::default();
            let id = v.uuid("notice_id", &req.notice_id);
            v.finish()?;
            let mut w = begin!(self.0, call, "CloseNotice", req);
            let mut n = seed::lock_notice(w.conn(), id).await?;
            let camp = self.0.load(w.conn(), n.campaign_id, Lock::Share).await?;
            if w.now < n.ends_at {
                return Err(AppError::FailedPrecondition(format!(
                    "the notice period runs until {}",
                    junheng_core::time::describe_deadline(n.ends_at, camp.def.tz())
                )));
            }
            let now = w.now;
            if seed::close_notice(w.conn(), id, now).await? {
                n.closed_at = Some(now);
                let schools = seed::notice_schools(w.conn(), id).await?;
                let effects = [
                    Effect::event(
                        "notice.closed",
                        None,
                        serde_json::json!({ "notice_id": id, "status": "open" }),
                        serde_json::json!({ "notice_id": id, "status": "ended", "title": n.title, "schools": schools }),
                        None,
                    ),
                    Effect::CloseObligation { kind: ObligationKind::CloseNotice, school: None, key: id.to_string() },
                ];
                w.record(&call, n.campaign_id, &effects).await?;
            }
            let resp = notice_to_pb(&notices::view(w.conn(), n.clone()).await?, now);
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
    }
}
