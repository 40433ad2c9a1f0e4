//! SeedService: phase 1 — nominations, self-applications and their review, public notices,
//! objections. Parses, calls `app::seed`, maps to proto.

use junheng_core::{ApplicationId, CampaignId, NoticeId, ObjectionId, SchoolId};
use std::collections::BTreeMap;

use junheng_core::notice::NoticeKind;
use junheng_core::seed::SelfScore;
use junheng_core::{Role, SchoolCommand};
use junheng_proto::v1 as pb;
use junheng_proto::v1::seed_service_server::SeedService;
use junheng_store::actors::OpinionRow;
use junheng_store::applications::ApplicationRow;
use tonic::{Request, Response, Status};

use super::{Shared, begin, reply};
use crate::app::policy::{self, Rpc};
use crate::app::seed::{
    self as app, FileObjection, PublishNotice, RecordOpinion, ResolveObjection, ReviewApplication,
    SubmitApplication,
};
use crate::convert::{
    Violations, notice_kind_from_pb, notice_to_pb, objection_to_pb, school_to_pb, ts,
};
use crate::error::AppError;

pub struct SeedApi(pub Shared);

fn opinion_to_pb(o: &OpinionRow) -> pb::DepartmentOpinion {
    pb::DepartmentOpinion {
        department: o.department.clone(),
        agree: o.agree,
        reason: o.reason.clone(),
        actor: o.actor.clone(),
        recorded_at: Some(ts(o.recorded_at)),
    }
}

fn application_to_pb(a: &ApplicationRow, opinions: &[OpinionRow]) -> pb::Application {
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
        status: a.status.code().into(),
        reason: a.reason.clone(),
        submitted_at: Some(ts(a.submitted_at)),
        department_opinions: opinions
            .iter()
            .filter(|o| o.application_id == a.id)
            .map(opinion_to_pb)
            .collect(),
    }
}

impl TryFrom<&pb::SubmitApplicationRequest> for SubmitApplication {
    type Error = AppError;

    /// The shape only; the indicators are checked against the campaign's definition by the
    /// rule core.
    fn try_from(req: &pb::SubmitApplicationRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let school = v.id::<SchoolId>("school_id", &req.school_id);
        let version = v.version("expected_version", req.expected_version);
        let statement = v.text("statement", &req.statement, 5000);
        if req.self_assessment.is_empty() {
            v.add("self_assessment", "a score for every indicator is required");
        }
        for (i, s) in req.self_assessment.iter().enumerate() {
            if !(s.score.is_finite() && (0.0..=100.0).contains(&s.score)) {
                v.add(
                    format!("self_assessment[{i}].score"),
                    "must be between 0 and 100",
                );
            }
            v.text(&format!("self_assessment[{i}].indicator"), &s.indicator, 64);
            v.optional_text(&format!("self_assessment[{i}].note"), &s.note, 2000);
        }
        v.finish()?;
        Ok(SubmitApplication {
            school,
            version,
            statement,
            self_assessment: req
                .self_assessment
                .iter()
                .map(|s| SelfScore {
                    indicator: s.indicator.clone(),
                    score: s.score,
                    note: s.note.clone(),
                })
                .collect(),
        })
    }
}

impl TryFrom<&pb::ReviewApplicationRequest> for ReviewApplication {
    type Error = AppError;

    fn try_from(req: &pb::ReviewApplicationRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let application = v.id::<ApplicationId>("application_id", &req.application_id);
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
        Ok(ReviewApplication {
            application,
            version,
            approve,
            reason,
        })
    }
}

impl TryFrom<&pb::PublishNoticeRequest> for PublishNotice {
    type Error = AppError;

    fn try_from(req: &pb::PublishNoticeRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
        let kind = pb::NoticeKind::try_from(req.kind)
            .ok()
            .and_then(notice_kind_from_pb);
        match kind {
            None => v.add(
                "kind",
                "must be NOTICE_KIND_SEED_CANDIDATES or NOTICE_KIND_SEED_SUPPLEMENTARY",
            ),
            Some(NoticeKind::Results) => v.add(
                "kind",
                "results notices are published by the acceptance phase, not here",
            ),
            _ => {}
        }
        let title = v.optional_text("title", &req.title, 200);
        if req.school_ids.is_empty() {
            v.add("school_ids", "a notice lists at least one school");
        }
        let mut ids = BTreeMap::new();
        let mut schools = Vec::new();
        for (i, s) in req.school_ids.iter().enumerate() {
            let id = v.id::<SchoolId>(&format!("school_ids[{i}]"), s);
            match ids.insert(id, i) {
                Some(first) => v.add(
                    format!("school_ids[{i}]"),
                    format!("duplicate of school_ids[{first}]"),
                ),
                None => schools.push(id),
            }
        }
        v.finish()?;
        Ok(PublishNotice {
            campaign,
            kind: kind.expect("checked"),
            title,
            schools,
        })
    }
}

impl TryFrom<&pb::FileObjectionRequest> for FileObjection {
    type Error = AppError;

    fn try_from(req: &pb::FileObjectionRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let notice = v.id::<NoticeId>("notice_id", &req.notice_id);
        let school = v.id::<SchoolId>("school_id", &req.school_id);
        let objector_name = v.text("objector_name", &req.objector_name, 100);
        let objector_contact = v.text("objector_contact", &req.objector_contact, 100);
        let grounds = v.text("grounds", &req.grounds, 5000);
        let evidence = v.text("evidence", &req.evidence, 1000);
        v.finish()?;
        Ok(FileObjection {
            notice,
            school,
            objector_name,
            objector_contact,
            grounds,
            evidence,
        })
    }
}

impl TryFrom<&pb::ResolveObjectionRequest> for ResolveObjection {
    type Error = AppError;

    fn try_from(req: &pb::ResolveObjectionRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let objection = v.id::<ObjectionId>("objection_id", &req.objection_id);
        let reason = v.text("reason", &req.reason, 2000);
        v.finish()?;
        Ok(ResolveObjection {
            objection,
            upheld: req.upheld,
            reason,
        })
    }
}

fn one_id<T: From<uuid::Uuid>>(field: &str, id: &str) -> Result<T, AppError> {
    let mut v = Violations::default();
    let id = v.id(field, id);
    v.finish()?;
    Ok(id)
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
                let school = v.id::<SchoolId>("school_id", &req.school_id);
                let version = v.version("expected_version", req.expected_version);
                let basis = v.text("basis", &req.basis, 2000);
                v.finish()?;
                let mut w = begin!(self.0, call, "Nominate", req);
                let cmd = SchoolCommand::Nominate { basis };
                let row = app::school_command(&self.0, &mut w, &call, school, version, cmd).await?;
                let resp = school_to_pb(&row);
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
                let school = v.id::<SchoolId>("school_id", &req.school_id);
                let version = v.version("expected_version", req.expected_version);
                let reason = v.text("reason", &req.reason, 2000);
                v.finish()?;
                let mut w = begin!(self.0, call, "WithdrawNomination", req);
                let cmd = SchoolCommand::WithdrawNomination { reason };
                let row = app::school_command(&self.0, &mut w, &call, school, version, cmd).await?;
                let resp = school_to_pb(&row);
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
        reply(
            &call,
            async {
                let cmd = SubmitApplication::try_from(&req)?;
                if call.actor.role == Role::School && call.actor.school != Some(cmd.school) {
                    return Err(AppError::PermissionDenied(
                        "a school may apply only for itself".into(),
                    ));
                }
                let mut w = begin!(self.0, call, "SubmitApplication", req);
                let row = app::submit_application(&self.0, &mut w, &call, cmd).await?;
                let resp = application_to_pb(&row, &[]);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
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
                let cmd = ReviewApplication::try_from(&req)?;
                let mut w = begin!(self.0, call, "ReviewApplication", req);
                let (row, opinions) = app::review_application(&self.0, &mut w, &call, cmd).await?;
                let resp = application_to_pb(&row, &opinions);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn record_department_opinion(
        &self,
        req: Request<pb::RecordDepartmentOpinionRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(
                    &[Role::Department, Role::Office],
                    "record a department opinion",
                )?;
                let mut v = Violations::default();
                let application = v.id::<ApplicationId>("application_id", &req.application_id);
                let department = v.text("department", &req.department, 50);
                let reason = v.text("reason", &req.reason, 2000);
                v.finish()?;
                let cmd = RecordOpinion {
                    application,
                    opinion: junheng_core::seed::RecordOpinion {
                        department,
                        agree: req.agree,
                        reason,
                    },
                };
                let mut w = begin!(self.0, call, "RecordDepartmentOpinion", req);
                let (row, opinions) = app::record_opinion(&self.0, &mut w, &call, cmd).await?;
                let resp = application_to_pb(&row, &opinions);
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
                let campaign = one_id("campaign_id", &req.campaign_id)?;
                let see = policy::read(&call, Rpc::ListApplications, Some(campaign))?;
                let rows =
                    policy::applications(&call, see, app::applications(&self.0, campaign).await?);
                let opinions = app::opinions(&self.0, campaign).await?;
                Ok(pb::ListApplicationsResponse {
                    applications: rows
                        .iter()
                        .map(|a| application_to_pb(a, &opinions))
                        .collect(),
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
        reply(
            &call,
            async {
                call.require(&[Role::Office], "publish a notice")?;
                let cmd = PublishNotice::try_from(&req)?;
                let mut w = begin!(self.0, call, "PublishNotice", req);
                let notice = app::publish_notice(&self.0, &mut w, &call, cmd).await?;
                let resp = notice_to_pb(&notice, w.now);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
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
                let id = one_id("notice_id", &req.notice_id)?;
                let (notice, now) = app::notice(&self.0, id).await?;
                let see = policy::read(&call, Rpc::GetNotice, Some(notice.row.campaign_id))?;
                Ok(notice_to_pb(&policy::notice(see, notice), now))
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
                let campaign = one_id("campaign_id", &req.campaign_id)?;
                let see = policy::read(&call, Rpc::ListNotices, Some(campaign))?;
                let (notices, now) = app::notices(&self.0, campaign).await?;
                Ok(pb::ListNoticesResponse {
                    notices: notices
                        .into_iter()
                        .map(|n| notice_to_pb(&policy::notice(see, n), now))
                        .collect(),
                })
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
        reply(
            &call,
            async {
                call.require_writer("file an objection")?;
                let cmd = FileObjection::try_from(&req)?;
                let mut w = begin!(self.0, call, "FileObjection", req);
                let o = app::file_objection(&self.0, &mut w, &call, cmd).await?;
                let resp = objection_to_pb(&o);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
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
                let cmd = ResolveObjection::try_from(&req)?;
                let mut w = begin!(self.0, call, "ResolveObjection", req);
                let o = app::resolve_objection(&self.0, &mut w, &call, cmd).await?;
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
        reply(
            &call,
            async {
                call.require(&[Role::Office, Role::Scheduler], "close a notice")?;
                let id = one_id("notice_id", &req.notice_id)?;
                let mut w = begin!(self.0, call, "CloseNotice", req);
                let notice = app::close_notice(&self.0, &mut w, &call, id).await?;
                let resp = notice_to_pb(&notice, w.now);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }
}
