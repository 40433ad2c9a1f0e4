//! PairingService: phase 3 — 1+X groups, baselines, assistance activities. Parses, calls
//! `app::pairing`, maps to proto.

use junheng_core::{CampaignId, SchoolId};
use std::collections::BTreeMap;

use junheng_core::Role;
use junheng_core::pairing::Groups;
use junheng_proto::v1 as pb;
use junheng_proto::v1::pairing_service_server::PairingService;
use junheng_store::groups::ActivityRow;
use tonic::{Request, Response, Status};

use super::{Shared, begin, reply};
use crate::app::pairing::{self as app, LogActivity, RecordBaseline, SetPairing};
use crate::app::policy::{self, Rpc};
use crate::convert::{Violations, indicator_pairs};
use crate::error::AppError;

pub struct PairingApi(pub Shared);

fn groups_to_pb(campaign: CampaignId, groups: &Groups, set: bool) -> pb::Pairing {
    pb::Pairing {
        campaign_id: campaign.to_string(),
        groups: groups
            .iter()
            .map(|(m, ps)| pb::PairingGroup {
                mentor_school_id: m.to_string(),
                potential_school_ids: ps.iter().map(SchoolId::to_string).collect(),
            })
            .collect(),
        set,
        coverage: Vec::new(),
    }
}

/// The stored groups with the indicators their assistance covers.
fn covered_to_pb(
    campaign: CampaignId,
    groups: &Groups,
    covered: &BTreeMap<SchoolId, Vec<String>>,
    count: usize,
) -> pb::Pairing {
    let mut p = groups_to_pb(campaign, groups, !groups.is_empty());
    p.coverage = groups
        .keys()
        .map(|m| pb::GroupCoverage {
            mentor_school_id: m.to_string(),
            covered_indicators: covered.get(m).cloned().unwrap_or_default(),
            indicator_count: count as u32,
        })
        .collect();
    p
}

fn activity_to_pb(a: &ActivityRow) -> pb::AssistanceActivity {
    pb::AssistanceActivity {
        id: a.id.to_string(),
        mentor_school_id: a.mentor_id.to_string(),
        potential_school_id: a.potential_id.to_string(),
        date: a.activity_date.to_string(),
        indicators: a.indicators.clone(),
        description: a.description.clone(),
        evidence_ref: a.evidence_ref.clone(),
    }
}

impl TryFrom<&pb::SetPairingRequest> for SetPairing {
    type Error = AppError;

    fn try_from(req: &pb::SetPairingRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
        let mut groups = Groups::new();
        if req.groups.is_empty() {
            v.add("groups", "at least one group");
        }
        for (i, g) in req.groups.iter().enumerate() {
            let m = v.id::<SchoolId>(
                &format!("groups[{i}].mentor_school_id"),
                &g.mentor_school_id,
            );
            let members: Vec<SchoolId> = g
                .potential_school_ids
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    v.id::<SchoolId>(&format!("groups[{i}].potential_school_ids[{j}]"), p)
                })
                .collect();
            if groups.insert(m, members).is_some() {
                v.add(
                    format!("groups[{i}].mentor_school_id"),
                    "mentor listed twice",
                );
            }
        }
        v.finish()?;
        Ok(SetPairing { campaign, groups })
    }
}

impl TryFrom<&pb::RecordBaselineRequest> for RecordBaseline {
    type Error = AppError;

    /// The shape only; the indicators are checked against the campaign's definition by the
    /// rule core.
    fn try_from(req: &pb::RecordBaselineRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let school = v.id::<SchoolId>("school_id", &req.school_id);
        if req.scores.is_empty() {
            v.add("scores", "a score for every indicator is required");
        }
        let scores = indicator_pairs(&mut v, "scores", &req.scores);
        v.finish()?;
        Ok(RecordBaseline { school, scores })
    }
}

impl TryFrom<&pb::LogAssistanceRequest> for LogActivity {
    type Error = AppError;

    fn try_from(req: &pb::LogAssistanceRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let mentor = v.id::<SchoolId>("mentor_school_id", &req.mentor_school_id);
        let potential = v.id::<SchoolId>("potential_school_id", &req.potential_school_id);
        let date = v.date("date", &req.date);
        let description = v.text("description", &req.description, 5000);
        let evidence_ref = v.optional_text("evidence_ref", &req.evidence_ref, 500);
        if req.indicators.is_empty() {
            v.add(
                "indicators",
                "name at least one indicator the activity served",
            );
        }
        let indicators = req
            .indicators
            .iter()
            .enumerate()
            .map(|(i, c)| v.text(&format!("indicators[{i}]"), c, 50))
            .collect();
        v.finish()?;
        Ok(LogActivity {
            mentor,
            potential,
            date,
            indicators,
            description,
            evidence_ref,
        })
    }
}

fn campaign_id(id: &str) -> Result<junheng_core::CampaignId, AppError> {
    let mut v = Violations::default();
    let campaign = v.id("campaign_id", id);
    v.finish()?;
    Ok(campaign)
}

#[tonic::async_trait]
impl PairingService for PairingApi {
    async fn propose_pairing(
        &self,
        req: Request<pb::ProposePairingRequest>,
    ) -> Result<Response<pb::Pairing>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let campaign = campaign_id(&req.campaign_id)?;
                policy::read(&call, Rpc::ProposePairing, Some(campaign))?;
                let groups = app::propose(&self.0, campaign).await?;
                Ok(groups_to_pb(campaign, &groups, false))
            }
            .await,
        )
    }

    async fn set_pairing(
        &self,
        req: Request<pb::SetPairingRequest>,
    ) -> Result<Response<pb::Pairing>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "form 1+X groups")?;
                let cmd = SetPairing::try_from(&req)?;
                let campaign = cmd.campaign;
                let mut w = begin!(self.0, call, "SetPairing", req);
                let groups = app::set_pairing(&self.0, &mut w, &call, cmd).await?;
                let resp = groups_to_pb(campaign, &groups, true);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn get_pairing(
        &self,
        req: Request<pb::GetPairingRequest>,
    ) -> Result<Response<pb::Pairing>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let campaign = campaign_id(&req.campaign_id)?;
                policy::read(&call, Rpc::GetPairing, Some(campaign))?;
                let groups = app::groups(&self.0, campaign).await?;
                let (covered, count) = app::coverage(&self.0, campaign).await?;
                Ok(covered_to_pb(campaign, &groups, &covered, count))
            }
            .await,
        )
    }

    async fn record_baseline(
        &self,
        req: Request<pb::RecordBaselineRequest>,
    ) -> Result<Response<pb::Baseline>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office, Role::Department], "record a baseline")?;
                let cmd = RecordBaseline::try_from(&req)?;
                let school = cmd.school;
                let mut w = begin!(self.0, call, "RecordBaseline", req);
                app::record_baseline(&self.0, &mut w, &call, cmd).await?;
                let resp = pb::Baseline {
                    school_id: school.to_string(),
                    scores: req.scores.clone(),
                };
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn log_assistance(
        &self,
        req: Request<pb::LogAssistanceRequest>,
    ) -> Result<Response<pb::AssistanceActivity>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let cmd = LogActivity::try_from(&req)?;
                if !call.actor.acts_for(cmd.mentor) && call.actor.role != Role::Office {
                    return Err(AppError::PermissionDenied(format!(
                        "{} may not log assistance for this mentor school",
                        call.actor.role
                    )));
                }
                let mut w = begin!(self.0, call, "LogAssistance", req);
                let row = app::log_assistance(&self.0, &mut w, &call, cmd).await?;
                let resp = activity_to_pb(&row);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn list_assistance(
        &self,
        req: Request<pb::ListAssistanceRequest>,
    ) -> Result<Response<pb::ListAssistanceResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                let mentor = (!req.mentor_school_id.is_empty())
                    .then(|| v.id::<SchoolId>("mentor_school_id", &req.mentor_school_id));
                v.finish()?;
                policy::read(&call, Rpc::ListAssistance, Some(campaign))?;
                let rows = app::activities(&self.0, campaign, mentor).await?;
                Ok(pb::ListAssistanceResponse {
                    activities: rows.iter().map(activity_to_pb).collect(),
                })
            }
            .await,
        )
    }
}
