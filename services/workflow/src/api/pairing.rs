//! PairingService: phase 3 — 1+X groups, baselines, assistance activities.

use std::collections::{BTreeMap, BTreeSet};

use junheng_core::effects::{DeadlineRef, ObligationKind, Owner};
use junheng_core::pairing::{self, Groups, SchoolInfo};
use junheng_core::{CaseState, Effect, PhaseKind, Role, SchoolCommand};
use junheng_proto::v1 as pb;
use junheng_proto::v1::pairing_service_server::PairingService;
use junheng_store::PgConnection;
use junheng_store::campaigns::Lock;
use junheng_store::phases::{self, ActivityRow};
use junheng_store::schools::{self, SchoolRow};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Shared, begin, reply};
use crate::app::{all_schools, cases};
use crate::convert::{Violations, indicator_scores};
use crate::error::{AppError, AppResult};

pub struct PairingApi(pub Shared);

fn info(s: &SchoolRow) -> SchoolInfo {
    SchoolInfo {
        id: s.id,
        level: s.level.clone(),
        town: s.town.clone(),
    }
}

fn groups_to_pb(campaign: Uuid, groups: &Groups, set: bool) -> pb::Pairing {
    pb::Pairing {
        campaign_id: campaign.to_string(),
        groups: groups
            .iter()
            .map(|(m, ps)| pb::PairingGroup {
                mentor_school_id: m.to_string(),
                potential_school_ids: ps.iter().map(Uuid::to_string).collect(),
            })
            .collect(),
        set,
    }
}

pub async fn stored_groups(conn: &mut PgConnection, campaign: Uuid) -> AppResult<Groups> {
    let mut groups = Groups::new();
    for (m, p) in phases::pairing(conn, campaign).await? {
        groups.entry(m).or_default().push(p);
    }
    Ok(groups)
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
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                let camp = self.0.load(&mut conn, campaign, Lock::None).await?;
                let all = all_schools(&mut conn, campaign).await?;
                let mentors: Vec<SchoolInfo> = all
                    .iter()
                    .filter(|s| s.state == CaseState::Mentor.code())
                    .map(info)
                    .collect();
                let potentials: Vec<SchoolInfo> = all
                    .iter()
                    .filter(|s| {
                        s.state == CaseState::Potential.code()
                            || s.state == CaseState::Paired.code()
                    })
                    .map(info)
                    .collect();
                let groups = pairing::propose(
                    &mentors,
                    &potentials,
                    camp.def.group_min,
                    camp.def.group_max,
                )?;
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
        reply(&call, async {
            call.require(&[Role::Office], "form 1+X groups")?;
            let mut v = Violations::default();
            let campaign = v.uuid("campaign_id", &req.campaign_id);
            let mut groups = Groups::new();
            if req.groups.is_empty() {
                v.add("groups", "at least one group");
            }
            for (i, g) in req.groups.iter().enumerate() {
                let m = v.uuid(&format!("groups[{i}].mentor_school_id"), &g.mentor_school_id);
                let members: Vec<Uuid> = g.potential_school_ids.iter().enumerate().map(|(j, p)| v.uuid(&format!("groups[{i}].potential_school_ids[{j}]"), p)).collect();
                if groups.insert(m, members).is_some() {
                    v.add(format!("groups[{i}].mentor_school_id"), "mentor listed twice");
                }
            }
            v.finish()?;
            let mut w = begin!(self.0, call, "SetPairing", req);
            let camp = self.0.load(w.conn(), campaign, Lock::Share).await?;
            camp.phases.require_active(PhaseKind::Pairing, Some("pairing_deadline"), "form 1+X groups", w.now, &camp.def)?;
            let all = all_schools(w.conn(), campaign).await?;
            let mentors: BTreeSet<Uuid> = all.iter().filter(|s| s.state == CaseState::Mentor.code()).map(|s| s.id).collect();
            let potentials: BTreeSet<Uuid> =
                all.iter().filter(|s| s.state == CaseState::Potential.code() || s.state == CaseState::Paired.code()).map(|s| s.id).collect();
            pairing::validate(&groups, &mentors, &potentials, camp.def.group_min, camp.def.group_max)?;
            let names: BTreeMap<Uuid, String> = all.iter().map(|s| (s.id, s.name.clone())).collect();
            let due = camp.phases.deadline(PhaseKind::Pairing, &camp.def);
            let baselines: BTreeSet<Uuid> = phases::baselines(w.conn(), campaign).await?.into_iter().map(|b| b.0).collect();
            for (mentor, members) in &groups {
                for p in members {
                    let mut extra = Vec::new();
                    if !baselines.contains(p) {
                        extra.push(Effect::OpenObligation {
                            kind: ObligationKind::RecordBaseline,
                            school: Some(*p),
                            key: String::new(),
                            owner: Owner::Role(Role::Office),
                            deadline: DeadlineRef::Phase(PhaseKind::Pairing),
                            due,
                            subject: format!("录入{}的各项指标基线分", names[p]),
                        });
                    }
                    cases::apply(&mut w, &call, &camp, *p, 0, SchoolCommand::Pair { mentor: *mentor }, extra).await?;
                }
            }
            let pairs: Vec<(Uuid, Uuid)> = groups.iter().flat_map(|(m, ps)| ps.iter().map(move |p| (*m, *p))).collect();
            let now = w.now;
            phases::set_pairing(w.conn(), campaign, &pairs, now).await?;
            let ev = Effect::event(
                "pairing.set",
                None,
                serde_json::Value::Null,
                serde_json::json!({ "groups": groups.iter().map(|(m, ps)| serde_json::json!({ "mentor": m, "potentials": ps })).collect::<Vec<_>>() }),
                None,
            );
            w.record(&call, campaign, &[ev]).await?;
            let resp = groups_to_pb(campaign, &groups, true);
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
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
                let mut v = Violations::default();
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                junheng_store::campaigns::get(&mut conn, campaign, Lock::None).await?;
                let groups = stored_groups(&mut conn, campaign).await?;
                Ok(groups_to_pb(campaign, &groups, !groups.is_empty()))
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
                let mut v = Violations::default();
                let school = v.uuid("school_id", &req.school_id);
                if req.scores.is_empty() {
                    v.add("scores", "a score for every indicator is required");
                }
                v.finish()?;
                let mut w = begin!(self.0, call, "RecordBaseline", req);
                let campaign = self.0.campaign_of(w.conn(), school).await?;
                let camp = self.0.load(w.conn(), campaign, Lock::Share).await?;
                let mut v = Violations::default();
                let scores = indicator_scores(&mut v, "scores", &camp.def, &req.scores);
                v.finish()?;
                camp.phases.require_active(
                    PhaseKind::Pairing,
                    None,
                    "record a baseline",
                    w.now,
                    &camp.def,
                )?;
                let row = schools::get_for_update(w.conn(), school).await?;
                if row.state != CaseState::Paired.code() && row.state != CaseState::Potential.code()
                {
                    return Err(AppError::FailedPrecondition(format!(
                        "baselines are for potential schools; this school is {}",
                        row.state
                    )));
                }
                let json = serde_json::to_value(&scores).map_err(AppError::internal)?;
                let now = w.now;
                phases::upsert_baseline(w.conn(), campaign, school, &json, &call.actor.id, now)
                    .await?;
                let effects = [
                    Effect::event(
                        "baseline.recorded",
                        Some(school),
                        serde_json::Value::Null,
                        json,
                        None,
                    ),
                    Effect::CloseObligation {
                        kind: ObligationKind::RecordBaseline,
                        school: Some(school),
                        key: String::new(),
                    },
                ];
                w.record(&call, campaign, &effects).await?;
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
        reply(&call, async {
            let mut v = Violations::default();
            let mentor = v.uuid("mentor_school_id", &req.mentor_school_id);
            let potential = v.uuid("potential_school_id", &req.potential_school_id);
            let date = v.date("date", &req.date);
            let description = v.text("description", &req.description, 5000);
            let evidence = v.optional_text("evidence_ref", &req.evidence_ref, 500);
            if req.indicators.is_empty() {
                v.add("indicators", "name at least one indicator the activity served");
            }
            v.finish()?;
            if !call.actor.acts_for(mentor) && call.actor.role != Role::Office {
                return Err(AppError::PermissionDenied(format!("{} may not log assistance for this mentor school", call.actor.role)));
            }
            let mut w = begin!(self.0, call, "LogAssistance", req);
            let campaign = self.0.campaign_of(w.conn(), mentor).await?;
            let camp = self.0.load(w.conn(), campaign, Lock::Share).await?;
            let mut v = Violations::default();
            for (i, ind) in req.indicators.iter().enumerate() {
                if camp.def.indicator(ind).is_none() {
                    v.add(format!("indicators[{i}]"), format!("unknown indicator `{ind}`"));
                }
            }
            let tz = camp.def.tz();
            if date > junheng_core::time::local_date(w.now, tz) {
                v.add("date", format!("{date} is in the future"));
            }
            v.finish()?;
            camp.phases.require_active(PhaseKind::Pairing, None, "log an assistance activity", w.now, &camp.def)?;
            if phases::mentor_of(w.conn(), potential).await? != Some(mentor) {
                return Err(AppError::FailedPrecondition("the potential school is not in this mentor's 1+X group".into()));
            }
            let row = ActivityRow {
                id: Uuid::now_v7(),
                mentor_id: mentor,
                potential_id: potential,
                activity_date: date,
                indicators: req.indicators.clone(),
                description,
                evidence_ref: evidence,
            };
            let now = w.now;
            phases::insert_activity(w.conn(), campaign, &row, &call.actor.id, now).await?;
            let ev = Effect::event(
                "assistance.logged",
                Some(mentor),
                serde_json::Value::Null,
                serde_json::json!({ "activity_id": row.id, "potential_school_id": potential, "date": date, "indicators": row.indicators }),
                None,
            );
            w.record(&call, campaign, &[ev]).await?;
            let resp = activity_to_pb(&row);
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
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
                let campaign = v.uuid("campaign_id", &req.campaign_id);
                let mentor = (!req.mentor_school_id.is_empty())
                    .then(|| v.uuid("mentor_school_id", &req.mentor_school_id));
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                junheng_store::campaigns::get(&mut conn, campaign, Lock::None).await?;
                let rows = phases::activities(&mut conn, campaign, mentor).await?;
                Ok(pb::ListAssistanceResponse {
                    activities: rows.iter().map(activity_to_pb).collect(),
                })
            }
            .await,
        )
    }
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
