//! AwardService: phase 5 — proposals with their reasoning, confirmation with audited
//! overrides, and the lists other bureau systems read. Parses, calls `app::awards`, maps to
//! proto.

use junheng_core::{CampaignId, SchoolId};
use std::collections::BTreeMap;

use junheng_core::Role;
use junheng_core::awards::{AwardClass, Override};
use junheng_proto::v1 as pb;
use junheng_proto::v1::award_service_server::AwardService;
use junheng_store::actors::{ConsequenceFilter, ConsequenceListing};
use junheng_store::awards::AwardListing;
use tonic::{Request, Response, Status};

use super::{Shared, begin, reply};
use crate::app::awards::{self as app, AwardList, ConfirmAwards, ListAwards};
use crate::app::policy::{self, Rpc};
use crate::convert::{Violations, ts};
use crate::error::AppError;

pub struct AwardApi(pub Shared);

pub fn class_to_pb(c: AwardClass) -> pb::AwardClass {
    match c {
        AwardClass::Contribution => pb::AwardClass::Contribution,
        AwardClass::Model => pb::AwardClass::Model,
        AwardClass::Progress => pb::AwardClass::Progress,
        AwardClass::Compliance => pb::AwardClass::Compliance,
        AwardClass::Veto => pb::AwardClass::Veto,
        AwardClass::Withheld => pb::AwardClass::Withheld,
    }
}

fn class_from_pb(c: i32) -> Option<AwardClass> {
    Some(match pb::AwardClass::try_from(c).ok()? {
        pb::AwardClass::Contribution => AwardClass::Contribution,
        pb::AwardClass::Model => AwardClass::Model,
        pb::AwardClass::Progress => AwardClass::Progress,
        pb::AwardClass::Compliance => AwardClass::Compliance,
        pb::AwardClass::Veto => AwardClass::Veto,
        pb::AwardClass::Withheld => AwardClass::Withheld,
        pb::AwardClass::Unspecified => return None,
    })
}

fn list_to_pb(l: &AwardList) -> pb::AwardList {
    pb::AwardList {
        awards: l
            .awards
            .iter()
            .map(|a| pb::Award {
                school_id: a.school.id.to_string(),
                school_code: a.school.code.clone(),
                school_name: a.school.name.clone(),
                principal: a.school.principal.clone(),
                class: class_to_pb(a.class) as i32,
                class_label: a.class.label().into(),
                reason: a.reason.clone(),
                override_reason: a.override_reason.clone(),
                campaign_id: l.campaign.to_string(),
                county: l.county.clone(),
                year: l.year,
            })
            .collect(),
        confirmed: l.confirmed,
    }
}

fn listing_to_pb(a: &AwardListing) -> pb::Award {
    let class = AwardClass::from_code(&a.class).unwrap_or(AwardClass::Veto);
    pb::Award {
        school_id: a.school_id.to_string(),
        school_code: a.school_code.clone(),
        school_name: a.school_name.clone(),
        principal: a.principal.clone(),
        class: class_to_pb(class) as i32,
        class_label: class.label().into(),
        reason: a.reason.clone(),
        override_reason: a.override_reason.clone(),
        campaign_id: a.campaign_id.to_string(),
        county: a.county.clone(),
        year: a.year,
    }
}

impl TryFrom<&pb::ConfirmAwardsRequest> for ConfirmAwards {
    type Error = AppError;

    fn try_from(req: &pb::ConfirmAwardsRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
        let mut overrides = BTreeMap::new();
        for (i, o) in req.overrides.iter().enumerate() {
            let id = v.id::<SchoolId>(&format!("overrides[{i}].school_id"), &o.school_id);
            let class = class_from_pb(o.class);
            if class.is_none() {
                v.add(
                    format!("overrides[{i}].class"),
                    "must be one of AWARD_CLASS_CONTRIBUTION … AWARD_CLASS_WITHHELD",
                );
            }
            // Every change from the proposal needs its reason, a veto or a withheld award most.
            let reason = v.text(&format!("overrides[{i}].reason"), &o.reason, 2000);
            let o = Override {
                index: i,
                class: class.unwrap_or(AwardClass::Veto),
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
        Ok(ConfirmAwards {
            campaign,
            overrides,
        })
    }
}

impl TryFrom<&pb::ListAwardsRequest> for ListAwards {
    type Error = AppError;

    fn try_from(req: &pb::ListAwardsRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let campaign = (!req.campaign_id.is_empty())
            .then(|| v.id::<CampaignId>("campaign_id", &req.campaign_id));
        let year = (req.year != 0).then_some(req.year);
        if campaign.is_none() && year.is_none() {
            v.add("campaign_id", "give a campaign_id or a year");
        }
        if let Some(y) = year
            && !(2000..=2100).contains(&y)
        {
            v.add("year", "not a plausible campaign year");
        }
        let school =
            (!req.school_id.is_empty()).then(|| v.id::<SchoolId>("school_id", &req.school_id));
        let class = match pb::AwardClass::try_from(req.class) {
            Ok(pb::AwardClass::Unspecified) => None,
            Ok(_) => class_from_pb(req.class),
            Err(_) => {
                v.add("class", "unknown award class");
                None
            }
        };
        let principal = v.optional_text("principal", &req.principal, 50);
        let principal = (!principal.is_empty()).then_some(principal);
        v.finish()?;
        Ok(ListAwards {
            campaign,
            year,
            school,
            principal,
            class,
        })
    }
}

fn consequence_to_pb(c: &ConsequenceListing, title: &str) -> pb::Consequence {
    let class = AwardClass::from_code(&c.class).unwrap_or(AwardClass::Veto);
    pb::Consequence {
        id: c.id.to_string(),
        campaign_id: c.campaign_id.to_string(),
        year: c.year,
        school_id: c.school_id.to_string(),
        school_code: c.school_code.clone(),
        school_name: c.school_name.clone(),
        principal_id: c.principal_id.map(|p| p.to_string()).unwrap_or_default(),
        principal_name: c.principal_name.clone().unwrap_or_default(),
        class: class_to_pb(class) as i32,
        award_title: title.into(),
        subject: c.subject.clone(),
        kind: c.kind.clone(),
        label: c.label.clone(),
        valid_until: c.valid_until.map(|d| d.to_string()).unwrap_or_default(),
        recorded_at: Some(ts(c.recorded_at)),
    }
}

/// A parsed ListConsequences request: the filter, the page's start and size.
struct ConsequenceQuery {
    filter: ConsequenceFilter,
    after: Option<uuid::Uuid>,
    size: i64,
}

impl TryFrom<&pb::ListConsequencesRequest> for ConsequenceQuery {
    type Error = AppError;

    fn try_from(req: &pb::ListConsequencesRequest) -> Result<Self, AppError> {
        let mut v = Violations::default();
        let campaign = (!req.campaign_id.is_empty())
            .then(|| v.id::<CampaignId>("campaign_id", &req.campaign_id));
        let year = (req.year != 0).then_some(req.year);
        if campaign.is_none() && year.is_none() {
            v.add("campaign_id", "give a campaign_id or a year");
        }
        if let Some(y) = year
            && !(2000..=2100).contains(&y)
        {
            v.add("year", "not a plausible campaign year");
        }
        let school =
            (!req.school_id.is_empty()).then(|| v.id::<SchoolId>("school_id", &req.school_id));
        let principal =
            (!req.principal_id.is_empty()).then(|| v.uuid("principal_id", &req.principal_id));
        let kind = req.kind.trim();
        if kind.len() > 64
            || !kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            v.add(
                "kind",
                "a consequence kind is ASCII snake case, e.g. evaluation_barred",
            );
        }
        let size = match req.page_size {
            0 => 100,
            n @ 1..=1000 => n as i64,
            _ => {
                v.add("page_size", "at most 1000");
                0
            }
        };
        let after = (!req.page_token.is_empty()).then(|| {
            uuid::Uuid::parse_str(&req.page_token).unwrap_or_else(|_| {
                v.add("page_token", "not a token returned by this call");
                uuid::Uuid::nil()
            })
        });
        v.finish()?;
        Ok(ConsequenceQuery {
            filter: ConsequenceFilter {
                campaign,
                year,
                school,
                principal,
                kind: (!kind.is_empty()).then(|| kind.to_string()),
            },
            after,
            size,
        })
    }
}

#[tonic::async_trait]
impl AwardService for AwardApi {
    async fn list_consequences(
        &self,
        req: Request<pb::ListConsequencesRequest>,
    ) -> Result<Response<pb::ListConsequencesResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let q = ConsequenceQuery::try_from(&req)?;
                policy::read(&call, Rpc::ListConsequences, q.filter.campaign)?;
                let rows = app::list_consequences(&self.0, &q.filter, q.after, q.size).await?;
                let next = if rows.len() as i64 == q.size {
                    rows.last()
                        .map(|(r, _)| r.id.to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                Ok(pb::ListConsequencesResponse {
                    consequences: rows
                        .iter()
                        .filter(|(r, _)| call.scope.covers(r.campaign_id))
                        .map(|(r, t)| consequence_to_pb(r, t))
                        .collect(),
                    next_page_token: next,
                })
            }
            .await,
        )
    }

    async fn propose_awards(
        &self,
        req: Request<pb::ProposeAwardsRequest>,
    ) -> Result<Response<pb::AwardList>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let campaign = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                v.finish()?;
                policy::read(&call, Rpc::ProposeAwards, Some(campaign))?;
                Ok(list_to_pb(&app::propose(&self.0, campaign).await?))
            }
            .await,
        )
    }

    async fn confirm_awards(
        &self,
        req: Request<pb::ConfirmAwardsRequest>,
    ) -> Result<Response<pb::AwardList>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "confirm the award list")?;
                let cmd = ConfirmAwards::try_from(&req)?;
                let mut w = begin!(self.0, call, "ConfirmAwards", req);
                let list = app::confirm(&self.0, &mut w, &call, cmd).await?;
                let resp = list_to_pb(&list);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn list_awards(
        &self,
        req: Request<pb::ListAwardsRequest>,
    ) -> Result<Response<pb::AwardList>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let q = ListAwards::try_from(&req)?;
                policy::read(&call, Rpc::ListAwards, q.campaign)?;
                let rows = app::list_awards(&self.0, &q).await?;
                let rows: Vec<_> = rows
                    .into_iter()
                    .filter(|r| call.scope.covers(r.campaign_id))
                    .collect();
                Ok(pb::AwardList {
                    awards: rows.iter().map(listing_to_pb).collect(),
                    confirmed: true,
                })
            }
            .await,
        )
    }
}
