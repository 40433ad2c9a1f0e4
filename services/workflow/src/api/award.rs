//! AwardService: phase 5 — proposals with their reasoning, confirmation with audited
//! overrides, and the lists other bureau systems read.

use std::collections::{BTreeMap, HashMap};

use junheng_core::awards::{self, AwardClass, MentorFacts, PotentialFacts, Proposal};
use junheng_core::scoring::AcceptanceResult;
use junheng_core::{CaseState, Effect, PhaseKind, Role, SchoolCommand};
use junheng_proto::v1 as pb;
use junheng_proto::v1::award_service_server::AwardService;
use junheng_store::PgConnection;
use junheng_store::campaigns::{self, Lock};
use junheng_store::phases::{self, AwardListing, AwardRow};
use junheng_store::schools::SchoolRow;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::cases;
use super::pairing::all_schools;
use super::{Shared, begin, reply};
use crate::convert::Violations;
use crate::error::{AppError, AppResult};
use crate::state::Loaded;

pub struct AwardApi(pub Shared);

pub fn class_to_pb(c: AwardClass) -> pb::AwardClass {
    match c {
        AwardClass::Contribution => pb::AwardClass::Contribution,
        AwardClass::Model => pb::AwardClass::Model,
        AwardClass::Progress => pb::AwardClass::Progress,
        AwardClass::Compliance => pb::AwardClass::Compliance,
        AwardClass::Veto => pb::AwardClass::Veto,
    }
}

fn class_from_pb(c: i32) -> Option<AwardClass> {
    Some(match pb::AwardClass::try_from(c).ok()? {
        pb::AwardClass::Contribution => AwardClass::Contribution,
        pb::AwardClass::Model => AwardClass::Model,
        pb::AwardClass::Progress => AwardClass::Progress,
        pb::AwardClass::Compliance => AwardClass::Compliance,
        pb::AwardClass::Veto => AwardClass::Veto,
        pb::AwardClass::Unspecified => return None,
    })
}

/// The award rules applied to the campaign's final results, baselines and assistance logs.
pub async fn proposals(
    conn: &mut PgConnection,
    camp: &Loaded,
) -> AppResult<(Vec<SchoolRow>, Vec<Proposal>)> {
    let all = all_schools(conn, camp.id()).await?;
    let results: HashMap<Uuid, AcceptanceResult> = phases::results(conn, camp.id())
        .await?
        .into_iter()
        .filter_map(|(s, r, _)| Some((s, serde_json::from_value(r).ok()?)))
        .collect();
    let baselines: HashMap<Uuid, BTreeMap<String, f64>> = phases::baselines(conn, camp.id())
        .await?
        .into_iter()
        .map(|(s, v)| (s, serde_json::from_value(v).unwrap_or_default()))
        .collect();
    let mut groups: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (m, p) in phases::pairing(conn, camp.id()).await? {
        groups.entry(m).or_default().push(p);
    }
    let mut activity: HashMap<Uuid, u32> = HashMap::new();
    for a in phases::activities(conn, camp.id(), None).await? {
        *activity.entry(a.mentor_id).or_default() += 1;
    }
    let state = |s: &SchoolRow| CaseState::from_code(&s.state);
    let potentials: Vec<PotentialFacts> = all
        .iter()
        .filter(|s| {
            matches!(
                state(s),
                Some(
                    CaseState::Paired
                        | CaseState::ProgressAward
                        | CaseState::ComplianceAward
                        | CaseState::Vetoed
                )
            )
        })
        .map(|s| PotentialFacts {
            id: s.id,
            result: results.get(&s.id).cloned(),
            baseline: baselines.get(&s.id).cloned().unwrap_or_default(),
        })
        .collect();
    let mentors: Vec<MentorFacts> = all
        .iter()
        .filter(|s| {
            matches!(
                state(s),
                Some(CaseState::Mentor | CaseState::ContributionAward)
            ) || groups.contains_key(&s.id)
        })
        .map(|s| MentorFacts {
            id: s.id,
            activities: activity.get(&s.id).copied().unwrap_or(0),
            group: groups.get(&s.id).cloned().unwrap_or_default(),
        })
        .collect();
    let others: Vec<Uuid> = all
        .iter()
        .filter(|s| {
            state(s) == Some(CaseState::SeedNonMentor)
                || (state(s) == Some(CaseState::ModelAward) && !groups.contains_key(&s.id))
        })
        .map(|s| s.id)
        .collect();
    Ok((
        all,
        awards::propose(&camp.def, &potentials, &mentors, &others),
    ))
}

fn award_to_pb(
    camp: &Loaded,
    s: &SchoolRow,
    class: AwardClass,
    reason: &str,
    override_reason: &str,
) -> pb::Award {
    pb::Award {
        school_id: s.id.to_string(),
        school_code: s.code.clone(),
        school_name: s.name.clone(),
        principal: s.principal.clone(),
        class: class_to_pb(class) as i32,
        class_label: class.label().into(),
        reason: reason.into(),
        override_reason: override_reason.into(),
        campaign_id: camp.id().to_string(),
        county: camp.row.county.clone(),
        year: camp.row.year,
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

#[tonic::async_trait]
impl AwardService for AwardApi {
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
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                let camp = self.0.load(&mut conn, campaign, Lock::None).await?;
                if camp.row.results_final_at.is_none() {
                    return Err(AppError::FailedPrecondition(
                        "awards are proposed on final results; complete the acceptance phase first"
                            .into(),
                    ));
                }
                let (all, props) = proposals(&mut conn, &camp).await?;
                let by_id: HashMap<Uuid, &SchoolRow> = all.iter().map(|s| (s.id, s)).collect();
                Ok(pb::AwardList {
                    awards: props
                        .iter()
                        .map(|p| award_to_pb(&camp, by_id[&p.school], p.class, &p.reason, ""))
                        .collect(),
                    confirmed: camp.row.awards_confirmed_at.is_some(),
                })
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
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                let mut overrides = BTreeMap::new();
                for (i, o) in req.overrides.iter().enumerate() {
                    let id = v.uuid(&format!("overrides[{i}].school_id"), &o.school_id);
                    let class = class_from_pb(o.class);
                    if class.is_none() {
                        v.add(
                            format!("overrides[{i}].class"),
                            "must be one of AWARD_CLASS_CONTRIBUTION … AWARD_CLASS_VETO",
                        );
                    }
                    let reason = v.text(&format!("overrides[{i}].reason"), &o.reason, 2000);
                    if overrides
                        .insert(id, (class.unwrap_or(AwardClass::Veto), reason))
                        .is_some()
                    {
                        v.add(
                            format!("overrides[{i}].school_id"),
                            "school overridden twice",
                        );
                    }
                }
                v.finish()?;
                let mut w = begin!(self.0, call, "ConfirmAwards", req);
                let camp = self.0.load(w.conn(), campaign, Lock::Update).await?;
                camp.phases.require_active(
                    PhaseKind::Awards,
                    None,
                    "confirm the award list",
                    w.now,
                    &camp.def,
                )?;
                if camp.row.awards_confirmed_at.is_some() {
                    return Err(AppError::FailedPrecondition(
                        "the award list is already confirmed".into(),
                    ));
                }
                let (all, props) = proposals(w.conn(), &camp).await?;
                let by_id: HashMap<Uuid, &SchoolRow> = all.iter().map(|s| (s.id, s)).collect();
                let mut v = Violations::default();
                for (i, id) in overrides.keys().enumerate() {
                    if !props.iter().any(|p| p.school == *id) {
                        v.add(
                            format!("overrides[{i}].school_id"),
                            "not a school with an award proposal in this campaign",
                        );
                    }
                }
                v.finish()?;
                let mut rows = Vec::new();
                let mut out = Vec::new();
                let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
                for p in &props {
                    let s = by_id[&p.school];
                    let (class, override_reason) = match overrides.get(&p.school) {
                        Some((c, r)) if *c != p.class => (*c, r.clone()),
                        _ => (p.class, String::new()),
                    };
                    let reason = if override_reason.is_empty() {
                        p.reason.clone()
                    } else {
                        format!(
                            "督导室调整为{}：{override_reason}（原建议：{}，{}）",
                            class.label(),
                            p.class.label(),
                            p.reason
                        )
                    };
                    cases::apply(
                        &mut w,
                        &call,
                        &camp,
                        s.id,
                        0,
                        SchoolCommand::ConfirmAward {
                            class,
                            reason: reason.clone(),
                        },
                        Vec::new(),
                    )
                    .await?;
                    *counts.entry(class.code()).or_default() += 1;
                    rows.push(AwardRow {
                        school_id: s.id,
                        campaign_id: campaign,
                        class: class.code().into(),
                        proposed_class: p.class.code().into(),
                        reason: p.reason.clone(),
                        override_reason: override_reason.clone(),
                        principal: s.principal.clone(),
                    });
                    out.push(award_to_pb(&camp, s, class, &p.reason, &override_reason));
                }
                let now = w.now;
                phases::insert_awards(w.conn(), &rows, now).await?;
                campaigns::set_awards_confirmed(w.conn(), campaign, now).await?;
                let ev = Effect::event(
                    "awards.confirmed",
                    None,
                    serde_json::Value::Null,
                    serde_json::json!({ "counts": counts }),
                    None,
                );
                w.record(&call, campaign, &[ev]).await?;
                let resp = pb::AwardList {
                    awards: out,
                    confirmed: true,
                };
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
                let mut v = Violations::default();
                let campaign =
                    (!req.campaign_id.is_empty()).then(|| v.uuid("campaign_id", &req.campaign_id));
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
                    (!req.school_id.is_empty()).then(|| v.uuid("school_id", &req.school_id));
                let class = match pb::AwardClass::try_from(req.class) {
                    Ok(pb::AwardClass::Unspecified) => None,
                    Ok(_) => class_from_pb(req.class),
                    Err(_) => {
                        v.add("class", "unknown award class");
                        None
                    }
                };
                let principal =
                    (!req.principal.trim().is_empty()).then(|| req.principal.trim().to_string());
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                if let Some(c) = campaign {
                    campaigns::get(&mut conn, c, Lock::None).await?;
                }
                let rows = phases::list_awards(
                    &mut conn,
                    campaign,
                    year,
                    school,
                    principal.as_deref(),
                    class.map(AwardClass::code),
                )
                .await?;
                Ok(pb::AwardList {
                    awards: rows.iter().map(listing_to_pb).collect(),
                    confirmed: true,
                })
            }
            .await,
        )
    }
}
