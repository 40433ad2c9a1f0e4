//! AcceptanceService: phase 4 — the panel, report and on-site scores with recusal, aggregated
//! results, the results notice. Parses, calls `app::acceptance`, maps to proto.

use junheng_core::{CampaignId, SchoolId};

use junheng_core::Role;
use junheng_core::acceptance::{Affiliation, PanelMember};
use junheng_proto::v1 as pb;
use junheng_proto::v1::acceptance_service_server::AcceptanceService;
use tonic::{Request, Response, Status};

use super::{Shared, begin, reply};
use crate::app::acceptance::{
    self as app, FormPanel, PublishResultsNotice, Standing, SubmitScores,
};
use crate::app::policy::{self, Rpc};
use crate::convert::{Violations, indicator_pairs, notice_to_pb};
use crate::error::AppError;

pub struct AcceptanceApi(pub Shared);

pub fn standing_to_pb(s: &Standing) -> pb::SchoolResult {
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
        failed_indicators: s.failed.clone(),
        disputed: s.disputed,
    }
}

fn affiliation_to_pb(a: Affiliation) -> pb::Affiliation {
    match a {
        Affiliation::Department => pb::Affiliation::Department,
        Affiliation::HighSchool => pb::Affiliation::HighSchool,
        Affiliation::MentorSchool(_) => pb::Affiliation::MentorSchool,
    }
}

fn panel_to_pb(members: &[PanelMember]) -> pb::Panel {
    pb::Panel {
        members: members
            .iter()
            .map(|m| pb::PanelMember {
                actor: m.actor.clone(),
                name: m.name.clone(),
                affiliation: affiliation_to_pb(m.affiliation) as i32,
                mentor_school_id: m
                    .affiliation
                    .mentor_school()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

impl TryFrom<&pb::FormPanelRequest> for FormPanel {
    type Error = AppError;

    fn try_from(req: &pb::FormPanelRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
        let members = v.panel_members(
            &req.members,
            |m| (m.actor.as_str(), m.name.as_str()),
            |v, i, m, actor, name| {
                let affiliation = match pb::Affiliation::try_from(m.affiliation) {
                    Ok(pb::Affiliation::MentorSchool) => Affiliation::MentorSchool(v.id::<SchoolId>(
                        &format!("members[{i}].mentor_school_id"),
                        &m.mentor_school_id,
                    )),
                    Ok(a @ (pb::Affiliation::Department | pb::Affiliation::HighSchool)) => {
                        if !m.mentor_school_id.is_empty() {
                            v.add(
                                format!("members[{i}].mentor_school_id"),
                                "only for AFFILIATION_MENTOR_SCHOOL",
                            );
                        }
                        if a == pb::Affiliation::Department {
                            Affiliation::Department
                        } else {
                            Affiliation::HighSchool
                        }
                    }
                    Ok(pb::Affiliation::Unspecified) | Err(_) => {
                        v.add(
                            format!("members[{i}].affiliation"),
                            "must be AFFILIATION_DEPARTMENT, AFFILIATION_HIGH_SCHOOL or AFFILIATION_MENTOR_SCHOOL",
                        );
                        Affiliation::Department
                    }
                };
                PanelMember {
                    actor,
                    name,
                    affiliation,
                }
            },
        );
        v.finish()?;
        Ok(FormPanel { campaign, members })
    }
}

impl TryFrom<&pb::SubmitScoresRequest> for SubmitScores {
    type Error = AppError;

    /// The shape only; the indicators are checked against the campaign's definition by the
    /// rule core.
    fn try_from(req: &pb::SubmitScoresRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let school = v.id::<SchoolId>("school_id", &req.school_id);
        if !(req.report_score.is_finite() && (0.0..=100.0).contains(&req.report_score)) {
            v.add("report_score", "must be between 0 and 100");
        }
        if req.onsite.is_empty() {
            v.add("onsite", "an on-site score for every indicator is required");
        }
        let onsite = indicator_pairs(&mut v, "onsite", &req.onsite);
        v.finish()?;
        Ok(SubmitScores {
            school,
            report: req.report_score,
            onsite,
        })
    }
}

impl TryFrom<&pb::PublishResultsNoticeRequest> for PublishResultsNotice {
    type Error = AppError;

    fn try_from(req: &pb::PublishResultsNoticeRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
        let title = v.optional_text("title", &req.title, 200);
        v.finish()?;
        Ok(PublishResultsNotice { campaign, title })
    }
}

fn campaign_id(id: &str) -> Result<junheng_core::CampaignId, AppError> {
    let mut v = Violations::default();
    let campaign = v.id("campaign_id", id);
    v.finish()?;
    Ok(campaign)
}

#[tonic::async_trait]
impl AcceptanceService for AcceptanceApi {
    async fn form_panel(
        &self,
        req: Request<pb::FormPanelRequest>,
    ) -> Result<Response<pb::Panel>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "form the acceptance panel")?;
                let cmd = FormPanel::try_from(&req)?;
                let mut w = begin!(self.0, call, "FormPanel", req);
                let members = app::form_panel(&self.0, &mut w, &call, cmd).await?;
                let resp = panel_to_pb(&members);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
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
                let campaign = campaign_id(&req.campaign_id)?;
                policy::read(&call, Rpc::GetPanel, Some(campaign))?;
                Ok(panel_to_pb(&app::panel(&self.0, campaign).await?))
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
        reply(
            &call,
            async {
                call.require(&[Role::Panel], "score a potential school")?;
                let cmd = SubmitScores::try_from(&req)?;
                let mut w = begin!(self.0, call, "SubmitScores", req);
                let standing = app::submit_scores(&self.0, &mut w, &call, cmd).await?;
                let resp = standing_to_pb(&standing);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
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
                let campaign = campaign_id(&req.campaign_id)?;
                let see = policy::read(&call, Rpc::GetResults, Some(campaign))?;
                let published = crate::app::campaign::results_published(&self.0, campaign).await?;
                policy::gate_results(&call, see, published)?;
                let r = app::results(&self.0, campaign).await?;
                Ok(pb::GetResultsResponse {
                    results: r.standings.iter().map(standing_to_pb).collect(),
                    r#final: r.r#final,
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
        reply(
            &call,
            async {
                call.require(&[Role::Office], "publish the results notice")?;
                let cmd = PublishResultsNotice::try_from(&req)?;
                let mut w = begin!(self.0, call, "PublishResultsNotice", req);
                let notice = app::publish_results_notice(&self.0, &mut w, &call, cmd).await?;
                let resp = notice_to_pb(&notice, w.now);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }
}
