//! CampaignService: campaigns, phases, deadlines, the audit log, the event stream, obligations.

use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::Stream;
use junheng_core::phase::{PhaseFacts, open_items};
use junheng_core::school::{self, Ctx, SchoolCommand};
use junheng_core::{
    CampaignDefinition, CaseState, Effect, PhaseBoard, PhaseKind, PhaseStatus, Role,
};
use junheng_proto::v1 as pb;
use junheng_proto::v1::campaign_service_server::CampaignService;
use junheng_store::audit::{self, Cursor, EventRow};
use junheng_store::campaigns::{self, CampaignRow, Lock};
use junheng_store::{PgConnection, obligations, schools, seed};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Shared, begin, reply};
use crate::app::{self, cases::case_of};
use crate::convert::{self, Violations, phase_status_to_pb, phase_to_pb, role_to_pb, ts};
use crate::error::{AppError, AppResult};
use crate::state::{Call, Loaded};

pub struct CampaignApi(pub Shared);

/// Facts for the exit criteria of `kind`, counted now.
pub async fn phase_facts(
    conn: &mut PgConnection,
    camp: &Loaded,
    kind: PhaseKind,
    now: DateTime<Utc>,
) -> AppResult<PhaseFacts> {
    let mut f = PhaseFacts {
        mentors_confirmed: camp.row.mentors_confirmed_at.is_some(),
        ..Default::default()
    };
    if kind == PhaseKind::SeedDesignation {
        let s = seed::facts(conn, camp.id(), now).await?;
        f.pending_applications = s.pending_applications as u64;
        f.approved_awaiting_notice = s.approved_awaiting_notice as u64;
        f.open_notices = s.open_notices as u64;
        f.open_objections = s.open_objections as u64;
        f.listed_schools = s.listed as u64;
    }
    match kind {
        PhaseKind::Pairing => {
            let all = app::all_schools(conn, camp.id()).await?;
            f.unpaired_potentials = all
                .iter()
                .filter(|s| s.state == CaseState::Potential.code())
                .count() as u64;
            let with_baseline: std::collections::HashSet<Uuid> =
                junheng_store::phases::baselines(conn, camp.id())
                    .await?
                    .into_iter()
                    .map(|b| b.0)
                    .collect();
            f.baselines_missing = all
                .iter()
                .filter(|s| s.state == CaseState::Paired.code() && !with_baseline.contains(&s.id))
                .count() as u64;
        }
        PhaseKind::Acceptance => f.results_notice = app::acceptance::exit_facts(conn, camp).await?,
        PhaseKind::Awards => f.awards_confirmed = app::awards::exit_facts(camp),
        _ => {}
    }
    Ok(f)
}

pub async fn campaign_to_pb(
    conn: &mut PgConnection,
    camp: &Loaded,
    now: DateTime<Utc>,
) -> AppResult<pb::Campaign> {
    let def: &CampaignDefinition = &camp.def;
    let mut phases = Vec::new();
    for st in &camp.phases.phases {
        let deadline = camp.phases.deadline(st.kind, def);
        let open = if st.status == PhaseStatus::Open {
            open_items(st.kind, &phase_facts(conn, camp, st.kind, now).await?, now)
                .iter()
                .map(ToString::to_string)
                .collect()
        } else {
            Vec::new()
        };
        phases.push(pb::PhaseInfo {
            phase: phase_to_pb(st.kind) as i32,
            status: phase_status_to_pb(st.status) as i32,
            window_start: def.window(st.kind).start.to_string(),
            window_end: st.last_day.to_string(),
            deadline: Some(ts(deadline)),
            open_items: open,
            milestones: st
                .milestones
                .iter()
                .map(|(name, day)| pb::Milestone {
                    name: name.clone(),
                    deadline: Some(ts(def.deadline_after(*day))),
                })
                .collect(),
            overdue: st.status == PhaseStatus::Open && now >= deadline,
        });
    }
    Ok(pb::Campaign {
        id: camp.row.id.to_string(),
        code: camp.row.code.clone(),
        county: camp.row.county.clone(),
        year: camp.row.year,
        time_zone: camp.row.time_zone.clone(),
        definition_sha256: camp.row.definition_sha256.clone(),
        phases,
        indicators: def
            .indicators
            .iter()
            .map(|i| pb::Indicator {
                code: i.code.clone(),
                name: i.name.clone(),
            })
            .collect(),
        notice_working_days: def.notice_working_days,
    })
}

pub fn event_to_pb(e: &EventRow) -> pb::AuditEvent {
    pb::AuditEvent {
        id: e.id,
        campaign_id: e.campaign_id.to_string(),
        school_id: e.school_id.map(|s| s.to_string()).unwrap_or_default(),
        actor: e.actor.clone(),
        role: Role::from_code(&e.role).map(role_to_pb).unwrap_or_default() as i32,
        action: e.action.clone(),
        before_json: e.before.to_string(),
        after_json: e.after.to_string(),
        reason: e.reason.clone().unwrap_or_default(),
        request_id: e.request_id.clone(),
        at: Some(ts(e.occurred_at)),
    }
}

impl CampaignApi {
    async fn read_campaign(&self, id: Uuid) -> AppResult<pb::Campaign> {
        let mut conn = self.0.pool.acquire().await?;
        let now = self.0.now(&mut conn).await?;
        let camp = self.0.load(&mut conn, id, Lock::None).await?;
        campaign_to_pb(&mut conn, &camp, now).await
    }

    async fn phase_change(
        &self,
        call: &Call,
        w: &mut crate::state::Work,
        campaign: Uuid,
        change: impl FnOnce(
            &mut PhaseBoard,
            &CampaignDefinition,
            DateTime<Utc>,
        ) -> Result<Vec<Effect>, junheng_core::RuleError>,
    ) -> AppResult<Loaded> {
        let mut camp = self.0.load(w.conn(), campaign, Lock::Update).await?;
        let effects = change(&mut camp.phases, &camp.def, w.now)?;
        let phases = serde_json::to_value(&camp.phases).map_err(AppError::internal)?;
        campaigns::set_phases(w.conn(), campaign, &phases).await?;
        w.record(call, campaign, &effects).await?;
        Ok(camp)
    }
}

#[tonic::async_trait]
impl CampaignService for CampaignApi {
    async fn create_campaign(
        &self,
        req: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(&call, async {
            call.require(&[Role::Office], "create a campaign")?;
            crate::state::validate_key(&req.idempotency_key)?;
            let def = CampaignDefinition::parse(&req.definition_toml).map_err(|e| {
                AppError::Invalid(
                    e.0.iter()
                        .map(|p| {
                            let field = format!("definition_toml.{}", p.field);
                            let reason = match p.line {
                                Some(l) => format!("line {l}: {}", p.reason),
                                None => p.reason.clone(),
                            };
                            (field, reason)
                        })
                        .collect(),
                )
            })?;
            let mut w = begin!(self.0, call, "CreateCampaign", req);
            let (canonical, sha) = def.canonical();
            let board = PhaseBoard::new(&def);
            let row = CampaignRow {
                id: Uuid::now_v7(),
                code: def.code.clone(),
                county: def.county.clone(),
                year: def.year,
                time_zone: def.time_zone.clone(),
                definition: canonical,
                definition_sha256: sha.clone(),
                phases: serde_json::to_value(&board).map_err(AppError::internal)?,
                mentors_confirmed_at: None,
                results_notice_id: None,
                results_final_at: None,
                awards_confirmed_at: None,
                created_at: w.now,
            };
            campaigns::insert(w.conn(), &row).await?;
            let effects = [Effect::event(
                "campaign.created",
                None,
                serde_json::Value::Null,
                serde_json::json!({ "code": def.code, "county": def.county, "year": def.year, "definition_sha256": sha }),
                None,
            )];
            w.record(&call, row.id, &effects).await?;
            let camp = self.0.load(w.conn(), row.id, Lock::None).await?;
            let now = w.now;
            let resp = campaign_to_pb(w.conn(), &camp, now).await?;
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
    }

    async fn get_campaign(
        &self,
        req: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let id = v.uuid("campaign_id", &req.campaign_id);
                v.finish()?;
                self.read_campaign(id).await
            }
            .await,
        )
    }

    async fn list_campaigns(
        &self,
        req: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        let call = self.0.call(&req).await?;
        reply(
            &call,
            async {
                let mut conn = self.0.pool.acquire().await?;
                let now = self.0.now(&mut conn).await?;
                let mut campaigns = Vec::new();
                for row in campaigns::list(&mut conn).await? {
                    let camp = self.0.load(&mut conn, row.id, Lock::None).await?;
                    campaigns.push(campaign_to_pb(&mut conn, &camp, now).await?);
                }
                Ok(pb::ListCampaignsResponse { campaigns })
            }
            .await,
        )
    }

    async fn open_phase(
        &self,
        req: Request<pb::OpenPhaseRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let id = v.uuid("campaign_id", &req.campaign_id);
                let phase = v.phase("phase", req.phase);
                v.finish()?;
                let mut w = begin!(self.0, call, "OpenPhase", req);
                let camp = self
                    .phase_change(&call, &mut w, id, |b, def, now| {
                        b.open(phase, &call.actor, now, def)
                    })
                    .await?;
                let now = w.now;
                let resp = campaign_to_pb(w.conn(), &camp, now).await?;
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn complete_phase(
        &self,
        req: Request<pb::CompletePhaseRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let id = v.uuid("campaign_id", &req.campaign_id);
                let phase = v.phase("phase", req.phase);
                v.finish()?;
                let mut w = begin!(self.0, call, "CompletePhase", req);
                let mut camp = self.0.load(w.conn(), id, Lock::Update).await?;
                let now = w.now;
                let facts = phase_facts(w.conn(), &camp, phase, now).await?;
                // Decide the completion first (it checks role, status and exit criteria), then turn
                // the schools over against the board as it was while the phase was open.
                let mut board = camp.phases.clone();
                let mut effects = board.complete(phase, &call.actor, now, &facts)?;
                if phase == PhaseKind::SeedDesignation {
                    let rows = schools::lock_all(w.conn(), id).await?;
                    let ctx = Ctx {
                        now,
                        def: &camp.def,
                        phases: &camp.phases,
                    };
                    let (mut ids, mut states) = (Vec::new(), Vec::new());
                    for row in &rows {
                        let t = school::decide(
                            &case_of(row)?,
                            &SchoolCommand::FinaliseSeedList,
                            &call.actor,
                            &ctx,
                        )?;
                        ids.push(row.id);
                        states.push(t.to.code().to_string());
                        effects.extend(t.effects);
                    }
                    schools::set_states(w.conn(), &ids, &states, now).await?;
                }
                if phase == PhaseKind::Acceptance {
                    effects.extend(app::acceptance::finalise_results(w.conn(), &camp, now).await?);
                }
                camp.phases = board;
                let phases = serde_json::to_value(&camp.phases).map_err(AppError::internal)?;
                campaigns::set_phases(w.conn(), id, &phases).await?;
                w.record(&call, id, &effects).await?;
                let resp = campaign_to_pb(w.conn(), &camp, now).await?;
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn extend_deadline(
        &self,
        req: Request<pb::ExtendDeadlineRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let id = v.uuid("campaign_id", &req.campaign_id);
                let phase = v.phase("phase", req.phase);
                let day = v.date("new_last_day", &req.new_last_day);
                let reason = v.text("reason", &req.reason, 500);
                let milestone = v.optional_text("milestone", &req.milestone, 64);
                v.finish()?;
                let mut w = begin!(self.0, call, "ExtendDeadline", req);
                let m = (!milestone.is_empty()).then_some(milestone.as_str());
                let camp = self
                    .phase_change(&call, &mut w, id, |b, def, _| {
                        b.extend(phase, m, day, &reason, &call.actor, def)
                    })
                    .await?;
                let now = w.now;
                let resp = campaign_to_pb(w.conn(), &camp, now).await?;
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn list_audit_events(
        &self,
        req: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let id = v.uuid("campaign_id", &req.campaign_id);
                let school =
                    (!req.school_id.is_empty()).then(|| v.uuid("school_id", &req.school_id));
                let size = match req.page_size {
                    0 => 100,
                    n @ 1..=1000 => n as i64,
                    _ => {
                        v.add("page_size", "at most 1000");
                        0
                    }
                };
                let after: i64 = if req.page_token.is_empty() {
                    0
                } else {
                    req.page_token.parse().unwrap_or_else(|_| {
                        v.add("page_token", "not a token returned by this call");
                        0
                    })
                };
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                campaigns::get(&mut conn, id, Lock::None).await?;
                let rows = audit::list(&mut conn, id, school, after, size).await?;
                let next = if rows.len() as i64 == size {
                    rows.last().map(|r| r.id.to_string()).unwrap_or_default()
                } else {
                    String::new()
                };
                Ok(pb::ListAuditEventsResponse {
                    events: rows.iter().map(event_to_pb).collect(),
                    next_page_token: next,
                })
            }
            .await,
        )
    }

    type FollowEventsStream = Pin<Box<dyn Stream<Item = Result<pb::CampaignEvent, Status>> + Send>>;

    async fn follow_events(
        &self,
        req: Request<pb::FollowEventsRequest>,
    ) -> Result<Response<Self::FollowEventsStream>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        let start = async {
            let mut v = Violations::default();
            let id = v.uuid("campaign_id", &req.campaign_id);
            let cursor = Cursor::parse(&req.cursor).unwrap_or_else(|| {
                v.add("cursor", "not a cursor returned by this stream");
                Cursor::default()
            });
            v.finish()?;
            let mut conn = self.0.pool.acquire().await?;
            campaigns::get(&mut conn, id, Lock::None).await?;
            AppResult::Ok((id, cursor))
        }
        .await;
        let (id, mut cursor) = match start {
            Ok(x) => x,
            Err(e) => return Err(e.into_status(&call.request_id)),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let state = self.0.clone();
        let mut wake = state.events.subscribe();
        let stop = req.stop_when_caught_up;
        let request_id = call.request_id.clone();
        tokio::spawn(async move {
            loop {
                let batch = async {
                    let mut conn = state.pool.acquire().await?;
                    AppResult::Ok(audit::follow(&mut conn, id, cursor, 500).await?)
                }
                .await;
                let rows = match batch {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = tx.send(Err(e.into_status(&request_id))).await;
                        return;
                    }
                };
                if rows.is_empty() {
                    if stop {
                        return;
                    }
                    // NOTIFY wakes us early; the timeout covers a missed notification and
                    // events held back by an older transaction that was still running.
                    tokio::select! {
                        _ = wake.recv() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = tx.closed() => return,
                    }
                    continue;
                }
                for r in &rows {
                    cursor = r.cursor();
                    let ev = pb::CampaignEvent {
                        cursor: cursor.to_string(),
                        event: Some(event_to_pb(r)),
                    };
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
            }
        });
        let mut resp = Response::new(Box::pin(ReceiverStream::new(rx)) as Self::FollowEventsStream);
        if let Ok(v) = call.request_id.parse() {
            resp.metadata_mut().insert("x-request-id", v);
        }
        Ok(resp)
    }

    async fn list_obligations(
        &self,
        req: Request<pb::ListObligationsRequest>,
    ) -> Result<Response<pb::ListObligationsResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                let mut v = Violations::default();
                let id = v.uuid("campaign_id", &req.campaign_id);
                let school =
                    (!req.school_id.is_empty()).then(|| v.uuid("school_id", &req.school_id));
                v.finish()?;
                let mut conn = self.0.pool.acquire().await?;
                campaigns::get(&mut conn, id, Lock::None).await?;
                let rows = obligations::list(&mut conn, id, school, req.include_closed).await?;
                Ok(pb::ListObligationsResponse {
                    obligations: rows
                        .into_iter()
                        .map(|o| pb::Obligation {
                            id: o.id.to_string(),
                            kind: o.kind,
                            school_id: o.school_id.map(|s| s.to_string()).unwrap_or_default(),
                            owner_role: Role::from_code(&o.owner_role)
                                .map(role_to_pb)
                                .unwrap_or_default() as i32,
                            owner: o.owner_school.map(|s| s.to_string()).unwrap_or_default(),
                            due: Some(ts(o.due_at)),
                            status: o.status,
                            phase: o
                                .deadline_ref
                                .split(':')
                                .nth(1)
                                .and_then(PhaseKind::from_code)
                                .map(convert::phase_to_pb)
                                .unwrap_or_default() as i32,
                            subject: o.subject,
                        })
                        .collect(),
                })
            }
            .await,
        )
    }
}
