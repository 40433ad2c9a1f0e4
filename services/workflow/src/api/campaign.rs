//! CampaignService: campaigns, phases, deadlines, the audit log, the event stream, obligations.
//! Parses, calls `app::campaign`, maps to proto.

use junheng_core::{CampaignId, SchoolId};
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use junheng_core::{CampaignDefinition, PhaseKind, PhaseStatus, Role};
use junheng_proto::v1 as pb;
use junheng_proto::v1::campaign_service_server::CampaignService;
use junheng_store::audit::{Cursor, EventRow};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Shared, begin, reply};
use crate::app::campaign::{self as app, CampaignView, ExtendDeadline};
use crate::app::policy::{self, Rpc};
use crate::convert::{self, Violations, phase_status_to_pb, phase_to_pb, role_to_pb, ts};
use crate::error::{AppError, AppResult};

/// How often a follower polls while LISTEN junheng_events is down.
const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// How often a follower polls while LISTEN is connected: only for events held back by an
/// older transaction that had not committed when the NOTIFY of a newer one arrived (its own
/// commit notifies too) and for a notification lost with a connection.
const FOLLOW_POLL_LISTENING: Duration = Duration::from_secs(5);

/// Waits for a wake-up of `campaign` (or a lagged receiver, which may have missed one).
async fn woken_for(wake: &mut tokio::sync::broadcast::Receiver<uuid::Uuid>, campaign: uuid::Uuid) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match wake.recv().await {
            Ok(c) if c == campaign => return,
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

pub struct CampaignApi(pub Shared);

/// A campaign definition is a few KiB (`deploy/campaigns/changle-2020.toml`); 256 KiB is far
/// above any county's.
const MAX_DEFINITION_BYTES: usize = 256 << 10;

pub fn campaign_to_pb(v: &CampaignView) -> pb::Campaign {
    let camp = &v.camp;
    let def: &CampaignDefinition = &camp.def;
    let phases = camp
        .phases
        .phases
        .iter()
        .map(|st| {
            let deadline = camp.phases.deadline(st.kind, def);
            pb::PhaseInfo {
                phase: phase_to_pb(st.kind) as i32,
                status: phase_status_to_pb(st.status) as i32,
                window_start: def.window(st.kind).start.to_string(),
                window_end: st.last_day.to_string(),
                deadline: Some(ts(deadline)),
                open_items: v
                    .open_items(st.kind)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                milestones: st
                    .milestones
                    .iter()
                    .map(|(name, day)| pb::Milestone {
                        name: name.clone(),
                        deadline: Some(ts(def.deadline_after(*day))),
                    })
                    .collect(),
                overdue: st.status == PhaseStatus::Open && v.now >= deadline,
            }
        })
        .collect();
    pb::Campaign {
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
    }
}

pub fn event_to_pb(e: &EventRow) -> pb::AuditEvent {
    pb::AuditEvent {
        id: e.id,
        campaign_id: e.campaign_id.to_string(),
        school_id: e.school_id.map(|s| s.to_string()).unwrap_or_default(),
        actor: e.actor.clone(),
        role: role_to_pb(e.role) as i32,
        action: e.action.clone(),
        before_json: e.before.to_string(),
        after_json: e.after.to_string(),
        reason: e.reason.clone().unwrap_or_default(),
        request_id: e.request_id.clone(),
        at: Some(ts(e.occurred_at)),
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
        reply(
            &call,
            async {
                call.require(&[Role::Office], "create a campaign")?;
                crate::state::validate_key(&req.idempotency_key)?;
                let mut v = Violations::default();
                if req.definition_toml.len() > MAX_DEFINITION_BYTES {
                    v.add(
                        "definition_toml",
                        format!("at most {MAX_DEFINITION_BYTES} bytes"),
                    );
                } else {
                    v.clean("definition_toml", &req.definition_toml);
                }
                v.finish()?;
                let def = CampaignDefinition::parse_with(&req.definition_toml, &self.0.calendars)
                    .map_err(|e| {
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
                let view = app::create(&self.0, &mut w, &call, &def).await?;
                let resp = campaign_to_pb(&view);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
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
                let id = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                v.finish()?;
                policy::read(&call, Rpc::GetCampaign, Some(id))?;
                Ok(campaign_to_pb(&app::campaign(&self.0, id).await?))
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
                policy::read(&call, Rpc::ListCampaigns, None)?;
                let campaigns = app::campaigns(&self.0)
                    .await?
                    .iter()
                    .filter(|c| call.scope.covers(c.camp.id()))
                    .map(campaign_to_pb)
                    .collect();
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
                let id = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                let phase = v.phase("phase", req.phase);
                v.finish()?;
                let mut w = begin!(self.0, call, "OpenPhase", req);
                let view = app::open_phase(&self.0, &mut w, &call, id, phase).await?;
                let resp = campaign_to_pb(&view);
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
                let id = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                let phase = v.phase("phase", req.phase);
                v.finish()?;
                let mut w = begin!(self.0, call, "CompletePhase", req);
                let view = app::complete_phase(&self.0, &mut w, &call, id, phase).await?;
                let resp = campaign_to_pb(&view);
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
                let id = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                let phase = v.phase("phase", req.phase);
                let day = v.date("new_last_day", &req.new_last_day);
                let reason = v.text("reason", &req.reason, 500);
                let milestone = v.optional_text("milestone", &req.milestone, 64);
                v.finish()?;
                let cmd = ExtendDeadline {
                    campaign: id,
                    phase,
                    milestone: (!milestone.is_empty()).then_some(milestone),
                    new_last_day: day,
                    reason,
                };
                let mut w = begin!(self.0, call, "ExtendDeadline", req);
                let view = app::extend_deadline(&self.0, &mut w, &call, cmd).await?;
                let resp = campaign_to_pb(&view);
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
                let id = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                let school = (!req.school_id.is_empty())
                    .then(|| v.id::<SchoolId>("school_id", &req.school_id));
                let size = match req.page_size {
                    0 => 100,
                    n @ 1..=1000 => n as i64,
                    _ => {
                        v.add("page_size", "at most 1000");
                        0
                    }
                };
                let after = v.id_page_token("page_token", &req.page_token);
                v.finish()?;
                let see = policy::read(&call, Rpc::ListAuditEvents, Some(id))?;
                let rows = app::audit_events(&self.0, id, school, after, size).await?;
                let next = if rows.len() as i64 == size {
                    rows.last().map(|r| r.id.to_string()).unwrap_or_default()
                } else {
                    String::new()
                };
                let published = app::results_published(&self.0, id).await?;
                let rows = policy::events(&call, see, published, rows);
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
        // At most `streams` open streams per caller (RESOURCE_EXHAUSTED past that), checked
        // before the token is looked up so a flood of streams costs no database round trip;
        // the slot is held by the stream's task and freed when it ends (at once when the call
        // is refused).
        let caller = junheng_edge::limits::caller_key(
            req.metadata().as_ref(),
            req.remote_addr().map(|a| a.ip()),
        );
        let slot = match self.0.limiter.open_stream(caller) {
            Ok(slot) => slot,
            Err(e) => return Err(e.into_status(&super::request_id(&req))),
        };
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        let start = async {
            let mut v = Violations::default();
            let id = v.id::<CampaignId>("campaign_id", &req.campaign_id);
            // `xid.id`, both unsigned decimals, exactly as a CampaignEvent carries it.
            let shaped = req.cursor.is_empty()
                || req.cursor.split_once('.').is_some_and(|(x, i)| {
                    [x, i]
                        .iter()
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                });
            let cursor = Cursor::parse(&req.cursor)
                .filter(|_| shaped)
                .unwrap_or_else(|| {
                    v.add("cursor", "not a cursor returned by this stream");
                    Cursor::default()
                });
            v.finish()?;
            let see = policy::read(&call, Rpc::FollowEvents, Some(id))?;
            app::exists(&self.0, id).await?;
            AppResult::Ok((id, cursor, see))
        }
        .await;
        let (id, mut cursor, see) = match start {
            Ok(x) => x,
            Err(e) => return Err(e.into_status(&call.request_id)),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let state = self.0.clone();
        let mut wake = state.events.subscribe();
        let stop = req.stop_when_caught_up;
        let request_id = call.request_id.clone();
        let caller = call.clone();
        tokio::spawn(async move {
            let _slot = slot;
            loop {
                // The token is checked again for every batch: a revoked or expired token ends
                // the stream at once.
                let batch = match app::still_live(&state, &caller).await {
                    Ok(()) => app::follow(&state, id, cursor, 500).await,
                    Err(e) => Err(e),
                };
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
                    // Only this campaign's NOTIFY wakes it; while LISTEN is connected the
                    // poll is a slow fallback.
                    let poll = if state.events_live.load(std::sync::atomic::Ordering::Relaxed) {
                        FOLLOW_POLL_LISTENING
                    } else {
                        FOLLOW_POLL
                    };
                    tokio::select! {
                        _ = woken_for(&mut wake, id.as_uuid()) => {}
                        _ = tokio::time::sleep(poll) => {}
                        _ = tx.closed() => return,
                    }
                    continue;
                }
                if let Some(last) = rows.last() {
                    cursor = last.cursor();
                }
                let published = match app::results_published(&state, id).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(e.into_status(&request_id))).await;
                        return;
                    }
                };
                for r in &policy::events(&caller, see, published, rows) {
                    let cursor = r.cursor();
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
                let id = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                let school = (!req.school_id.is_empty())
                    .then(|| v.id::<SchoolId>("school_id", &req.school_id));
                v.finish()?;
                let see = policy::read(&call, Rpc::ListObligations, Some(id))?;
                let rows = app::obligations(&self.0, id, school, req.include_closed).await?;
                let rows = policy::obligations(&call, see, rows);
                Ok(pb::ListObligationsResponse {
                    obligations: rows
                        .into_iter()
                        .map(|o| pb::Obligation {
                            id: o.id.to_string(),
                            kind: o.kind.code().into(),
                            school_id: o.school_id.map(|s| s.to_string()).unwrap_or_default(),
                            owner_role: role_to_pb(o.owner_role) as i32,
                            owner: o.owner_school.map(|s| s.to_string()).unwrap_or_default(),
                            due: Some(ts(o.due_at)),
                            status: o.status.code().into(),
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

    async fn verify_audit_chain(
        &self,
        req: Request<pb::VerifyAuditChainRequest>,
    ) -> Result<Response<pb::VerifyAuditChainResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "verify the audit chain")?;
                let mut v = Violations::default();
                let id = v.id::<CampaignId>("campaign_id", &req.campaign_id);
                v.finish()?;
                let r = app::verify_chain(&self.0, id).await?;
                Ok(pb::VerifyAuditChainResponse {
                    intact: r.broken.is_none(),
                    events_checked: r.checked,
                    last_hash: r.last_hash,
                    first_broken: r.broken.map(|b| pb::BrokenAuditLink {
                        event_id: b.event_id.unwrap_or_default(),
                        chain_seq: b.chain_seq,
                        problem: b.problem,
                    }),
                })
            }
            .await,
        )
    }
}
