//! MentorService: phase 2 — presentations and practices, panel ratings, the mentor rule, the
//! mentor list and the practice collection. Parses, calls `app::mentor`, maps to proto.

use junheng_core::{CampaignId, SchoolId};
use std::collections::BTreeMap;

use junheng_core::Role;
use junheng_core::acceptance::Affiliation;
use junheng_core::mentor::{MentorOverride, PracticeTally, Rating};
use junheng_core::mentor_panel::MentorPanelMember;
use junheng_proto::v1 as pb;
use junheng_proto::v1::mentor_service_server::MentorService;
use junheng_store::mentor::PracticeRow;
use tonic::{Request, Response, Status};

use super::{Shared, begin, reply};
use crate::app::mentor::{
    self as app, ConfirmMentors, FormMentorPanel, MentorList, MentorPanelView, PracticeCollection,
    PresentationView, RatePresentation, SubmitPresentation,
};
use crate::app::policy::{self, Rpc};
use crate::convert::{Violations, ts};
use crate::error::AppError;

pub struct MentorApi(pub Shared);

fn rating_from_pb(r: i32) -> Option<Rating> {
    match pb::Rating::try_from(r).ok()? {
        pb::Rating::Excellent => Some(Rating::Excellent),
        pb::Rating::Good => Some(Rating::Good),
        pb::Rating::Fair => Some(Rating::Fair),
        pb::Rating::Poor => Some(Rating::Poor),
        pb::Rating::Unspecified => None,
    }
}

fn practice_to_pb(p: &PracticeRow, t: &PracticeTally, accepted: bool) -> pb::Practice {
    pb::Practice {
        id: p.id.to_string(),
        school_id: p.school_id.to_string(),
        indicator: p.indicator.clone(),
        title: p.title.clone(),
        description: p.description.clone(),
        accepts: t.accepts,
        rejects: t.rejects,
        accepted,
    }
}

fn presentation_to_pb(p: &PresentationView) -> pb::Presentation {
    pb::Presentation {
        school_id: p.row.school_id.to_string(),
        document_ref: p.row.document_ref.clone(),
        document_sha256: p.row.document_sha256.clone(),
        practices: p
            .practices
            .iter()
            .map(|v| practice_to_pb(&v.row, &v.tally, v.accepted))
            .collect(),
        raters: p.raters,
        submitted_at: Some(ts(p.row.submitted_at)),
    }
}

fn mentor_panel_to_pb(p: &MentorPanelView) -> pb::MentorPanel {
    pb::MentorPanel {
        members: p
            .members
            .iter()
            .map(|m| pb::MentorPanelMember {
                actor: m.actor.clone(),
                name: m.name.clone(),
                affiliation: match m.affiliation {
                    Affiliation::Department => pb::Affiliation::Department,
                    Affiliation::HighSchool => pb::Affiliation::HighSchool,
                    Affiliation::MentorSchool(_) => pb::Affiliation::MentorSchool,
                } as i32,
                school_id: m.school.map(|s| s.to_string()).unwrap_or_default(),
            })
            .collect(),
        min_raters: p.min_raters,
        fixed: p.fixed,
    }
}

impl TryFrom<&pb::FormMentorPanelRequest> for FormMentorPanel {
    type Error = AppError;

    /// The shape only; the panel size, tokens and schools are checked by the rule core.
    fn try_from(req: &pb::FormMentorPanelRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
        let members = v.panel_members(
            &req.members,
            |m| (m.actor.as_str(), m.name.as_str()),
            |v, i, m, actor, name| {
                let affiliation = match pb::Affiliation::try_from(m.affiliation) {
                    Ok(pb::Affiliation::Department) => Affiliation::Department,
                    Ok(pb::Affiliation::HighSchool) => Affiliation::HighSchool,
                    _ => {
                        v.add(
                            format!("members[{i}].affiliation"),
                            "must be AFFILIATION_DEPARTMENT or AFFILIATION_HIGH_SCHOOL (mentor schools are chosen by this panel)",
                        );
                        Affiliation::Department
                    }
                };
                let school = (!m.school_id.trim().is_empty())
                    .then(|| v.id::<SchoolId>(&format!("members[{i}].school_id"), &m.school_id));
                MentorPanelMember {
                    actor,
                    name,
                    affiliation,
                    school,
                }
            },
        );
        v.finish()?;
        Ok(FormMentorPanel { campaign, members })
    }
}

fn list_to_pb(list: &MentorList) -> pb::ProposeMentorsResponse {
    pb::ProposeMentorsResponse {
        proposals: list
            .proposals
            .iter()
            .map(|p| pb::MentorProposal {
                school_id: p.school.id.to_string(),
                school_name: p.school.name.clone(),
                mentor: p.mentor,
                explanation: match &p.note {
                    Some(n) => format!("{}（督导室调整：{n}）", p.verdict.explanation),
                    None => p.verdict.explanation.clone(),
                },
                excellent_indicators: p.verdict.excellent.clone(),
                accepted_practice_indicators: p.verdict.practice_indicators.clone(),
            })
            .collect(),
        confirmed: list.confirmed,
    }
}

fn collection_to_pb(c: &PracticeCollection) -> pb::PracticeCollection {
    pb::PracticeCollection {
        groups: c
            .groups
            .iter()
            .map(|g| pb::PracticeGroup {
                indicator: Some(pb::Indicator {
                    code: g.code.clone(),
                    name: g.name.clone(),
                }),
                practices: g
                    .practices
                    .iter()
                    .map(|(p, t)| practice_to_pb(p, t, true))
                    .collect(),
            })
            .collect(),
        markdown: junheng_sheets::practice_collection_markdown(&c.doc),
    }
}

impl TryFrom<&pb::SubmitPresentationRequest> for SubmitPresentation {
    type Error = AppError;

    /// The shape only; the indicators are checked against the campaign's definition by the
    /// rule core.
    fn try_from(req: &pb::SubmitPresentationRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let school = v.id::<SchoolId>("school_id", &req.school_id);
        let version = v.version("expected_version", req.expected_version);
        let document_ref = v.text("document_ref", &req.document_ref, 500);
        let sha = req.document_sha256.trim().to_ascii_lowercase();
        if !(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
            v.add(
                "document_sha256",
                "must be the document's SHA-256 as 64 hex characters",
            );
        }
        if req.practices.is_empty() {
            v.add("practices", "declare at least one replicable practice");
        } else if req.practices.len() > 50 {
            v.add("practices", "at most 50 practices");
        }
        for (i, p) in req.practices.iter().enumerate() {
            v.text(&format!("practices[{i}].indicator"), &p.indicator, 64);
            v.text(&format!("practices[{i}].title"), &p.title, 200);
            v.text(&format!("practices[{i}].description"), &p.description, 5000);
        }
        v.finish()?;
        Ok(SubmitPresentation {
            school,
            version,
            document_ref,
            document_sha256: sha,
            practices: req
                .practices
                .iter()
                .map(|p| (p.indicator.clone(), p.title.clone(), p.description.clone()))
                .collect(),
        })
    }
}

impl TryFrom<&pb::RatePresentationRequest> for RatePresentation {
    type Error = AppError;

    fn try_from(req: &pb::RatePresentationRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let school = v.id::<SchoolId>("school_id", &req.school_id);
        let mut ratings = BTreeMap::new();
        for (i, r) in req.ratings.iter().enumerate() {
            v.text(&format!("ratings[{i}].indicator"), &r.indicator, 64);
            match rating_from_pb(r.rating) {
                Some(rt) => {
                    if ratings.insert(r.indicator.trim().to_string(), rt).is_some() {
                        v.add(
                            format!("ratings[{i}].indicator"),
                            format!(
                                "indicator `{}` rated twice",
                                junheng_edge::violations::echo(&r.indicator)
                            ),
                        );
                    }
                }
                None => v.add(
                    format!("ratings[{i}].rating"),
                    "must be RATING_EXCELLENT, RATING_GOOD, RATING_FAIR or RATING_POOR",
                ),
            }
        }
        let mut verdicts = BTreeMap::new();
        for (i, p) in req.verdicts.iter().enumerate() {
            let id = v.uuid(&format!("verdicts[{i}].practice_id"), &p.practice_id);
            if verdicts.insert(id, p.accepted).is_some() {
                v.add(
                    format!("verdicts[{i}].practice_id"),
                    "practice judged twice",
                );
            }
        }
        v.finish()?;
        Ok(RatePresentation {
            school,
            ratings,
            verdicts,
        })
    }
}

impl TryFrom<&pb::ConfirmMentorsRequest> for ConfirmMentors {
    type Error = AppError;

    fn try_from(req: &pb::ConfirmMentorsRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
        let mut overrides = BTreeMap::new();
        for (i, o) in req.overrides.iter().enumerate() {
            let id = v.id::<SchoolId>(&format!("overrides[{i}].school_id"), &o.school_id);
            let reason = v.text(&format!("overrides[{i}].reason"), &o.reason, 2000);
            let o = MentorOverride {
                mentor: o.mentor,
                reason,
            };
            if overrides.insert(id, o).is_some() {
                v.add(
                    format!("overrides[{i}].school_id"),
                    "school overridden twice",
                );
            }
        }
        v.finish()?;
        Ok(ConfirmMentors {
            campaign,
            overrides,
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
impl MentorService for MentorApi {
    async fn submit_presentation(
        &self,
        req: Request<pb::SubmitPresentationRequest>,
    ) -> Result<Response<pb::Presentation>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let cmd = SubmitPresentation::try_from(&req)?;
                if call.actor.role == Role::School && call.actor.school != Some(cmd.school) {
                    return Err(AppError::PermissionDenied(
                        "a school may present only for itself".into(),
                    ));
                }
                let mut w = begin!(self.0, call, "SubmitPresentation", req);
                let p = app::submit_presentation(&self.0, &mut w, &call, cmd).await?;
                let resp = presentation_to_pb(&p);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn form_mentor_panel(
        &self,
        req: Request<pb::FormMentorPanelRequest>,
    ) -> Result<Response<pb::MentorPanel>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "form the phase-2 panel")?;
                let cmd = FormMentorPanel::try_from(&req)?;
                let mut w = begin!(self.0, call, "FormMentorPanel", req);
                let panel = app::form_mentor_panel(&self.0, &mut w, &call, cmd).await?;
                let resp = mentor_panel_to_pb(&panel);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn get_mentor_panel(
        &self,
        req: Request<pb::GetMentorPanelRequest>,
    ) -> Result<Response<pb::MentorPanel>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let campaign = one_id("campaign_id", &req.campaign_id)?;
                policy::read(&call, Rpc::GetMentorPanel, Some(campaign))?;
                Ok(mentor_panel_to_pb(
                    &app::mentor_panel(&self.0, campaign).await?,
                ))
            }
            .await,
        )
    }

    async fn rate_presentation(
        &self,
        req: Request<pb::RatePresentationRequest>,
    ) -> Result<Response<pb::Presentation>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Panel], "rate a presentation")?;
                let cmd = RatePresentation::try_from(&req)?;
                let mut w = begin!(self.0, call, "RatePresentation", req);
                let p = app::rate_presentation(&self.0, &mut w, &call, cmd).await?;
                let resp = presentation_to_pb(&p);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn get_presentation(
        &self,
        req: Request<pb::GetPresentationRequest>,
    ) -> Result<Response<pb::Presentation>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let school = one_id("school_id", &req.school_id)?;
                let campaign = crate::app::schools::campaign_of(&self.0, school).await?;
                let see = policy::read(&call, Rpc::GetPresentation, Some(campaign))?;
                policy::presentation(&call, see, school)?;
                Ok(presentation_to_pb(
                    &app::presentation(&self.0, school).await?,
                ))
            }
            .await,
        )
    }

    async fn propose_mentors(
        &self,
        req: Request<pb::ProposeMentorsRequest>,
    ) -> Result<Response<pb::ProposeMentorsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let campaign = one_id("campaign_id", &req.campaign_id)?;
                policy::read(&call, Rpc::ProposeMentors, Some(campaign))?;
                Ok(list_to_pb(&app::propose(&self.0, campaign).await?))
            }
            .await,
        )
    }

    async fn confirm_mentors(
        &self,
        req: Request<pb::ConfirmMentorsRequest>,
    ) -> Result<Response<pb::ProposeMentorsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "confirm the mentor list")?;
                let cmd = ConfirmMentors::try_from(&req)?;
                let mut w = begin!(self.0, call, "ConfirmMentors", req);
                let list = app::confirm(&self.0, &mut w, &call, cmd).await?;
                let resp = list_to_pb(&list);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn get_practice_collection(
        &self,
        req: Request<pb::GetPracticeCollectionRequest>,
    ) -> Result<Response<pb::PracticeCollection>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let campaign = one_id("campaign_id", &req.campaign_id)?;
                policy::read(&call, Rpc::GetPracticeCollection, Some(campaign))?;
                Ok(collection_to_pb(&app::collection(&self.0, campaign).await?))
            }
            .await,
        )
    }
}
