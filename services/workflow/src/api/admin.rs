//! AdminService: server info (clock mode), the simulated clock, tokens. Parses, calls
//! `app::admin`, maps to proto.

use junheng_core::Role;
use junheng_core::SchoolId;
use junheng_proto::v1 as pb;
use junheng_proto::v1::admin_service_server::AdminService;
use junheng_store::tokens::TokenInfo;
use tonic::{Request, Response, Status};

use super::{Shared, begin, reply, request_id};
use crate::app::admin::{self as app, IssueToken};
use crate::app::policy::{self, Rpc};
use crate::convert::{Violations, from_ts, role_from_pb, role_to_pb, ts};
use crate::state::Call;

pub struct AdminApi(pub Shared);

#[tonic::async_trait]
impl AdminService for AdminApi {
    /// Unauthenticated on purpose: operators and health checks read the clock mode here.
    async fn get_server_info(
        &self,
        req: Request<pb::GetServerInfoRequest>,
    ) -> Result<Response<pb::ServerInfo>, Status> {
        let call = Call {
            actor: junheng_core::Actor {
                id: "anonymous".into(),
                role: Role::Leader,
                school: None,
            },
            scope: junheng_core::Scope::Campaigns(Vec::new()),
            token_id: None,
            request_id: request_id(&req),
        };
        reply(
            &call,
            async {
                let now = app::now(&self.0).await?;
                Ok(pb::ServerInfo {
                    version: env!("CARGO_PKG_VERSION").into(),
                    clock_mode: self.0.clock.name().into(),
                    now: Some(ts(now)),
                    demo: self.0.demo,
                })
            }
            .await,
        )
    }

    async fn advance_clock(
        &self,
        req: Request<pb::AdvanceClockRequest>,
    ) -> Result<Response<pb::ServerInfo>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "advance the clock")?;
                let mut v = Violations::default();
                let to = req.to.as_ref().and_then(from_ts);
                match (&req.to, to) {
                    (None, _) => {
                        v.add("to", "required: the instant to move the simulated clock to")
                    }
                    (Some(_), None) => v.add("to", "not a valid instant"),
                    _ => {}
                }
                v.finish()?;
                app::require_simulated(&self.0)?;
                let mut w = begin!(self.0, call, "AdvanceClock", req);
                let now = app::advance_clock(&mut w, &call, to.expect("checked")).await?;
                let resp = pb::ServerInfo {
                    version: env!("CARGO_PKG_VERSION").into(),
                    clock_mode: self.0.clock.name().into(),
                    now: Some(ts(now)),
                    demo: self.0.demo,
                };
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }

    async fn issue_token(
        &self,
        req: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(&call, async {
            call.require(&[Role::Office], "issue tokens")?;
            let mut v = Violations::default();
            let name = v.text("name", &req.name, 100);
            let role = pb::Role::try_from(req.role).ok().and_then(role_from_pb);
            if role.is_none() {
                v.add("role", "must be one of ROLE_OFFICE, ROLE_DEPARTMENT, ROLE_PANEL, ROLE_SCHOOL, ROLE_LEADER, ROLE_SCHEDULER");
            }
            let school = match (role, req.school_id.is_empty()) {
                (Some(Role::School), true) => {
                    v.add("school_id", "required for ROLE_SCHOOL");
                    None
                }
                (Some(Role::School), false) => Some(v.id::<SchoolId>("school_id", &req.school_id)),
                (_, false) => {
                    v.add("school_id", "only ROLE_SCHOOL tokens are bound to a school");
                    None
                }
                (_, true) => None,
            };
            let mut campaigns = Vec::new();
            for (i, c) in req.campaign_ids.iter().enumerate() {
                let id = v.uuid(&format!("campaign_ids[{i}]"), c);
                if campaigns.contains(&id) {
                    v.add(format!("campaign_ids[{i}]"), "listed twice");
                }
                campaigns.push(id);
            }
            let expires_at = match req.expires_at.as_ref() {
                None => None,
                Some(t) => {
                    let e = from_ts(t);
                    if e.is_none() {
                        v.add("expires_at", "not a valid instant");
                    }
                    e
                }
            };
            v.finish()?;
            let role = role.expect("checked");
            let mut w = begin!(self.0, call, "IssueToken", req);
            let cmd = IssueToken { name, role, school, campaigns, expires_at };
            let app::Issued { token, actor, id } = app::issue_token(&mut w, &call, cmd).await?;
            // The secret is shown once: a replay of this call returns the actor, not the token,
            // so no plaintext token is ever stored.
            let token_id = id.to_string();
            w.commit(&pb::IssueTokenResponse { token: String::new(), actor: actor.clone(), token_id: token_id.clone() }).await?;
            Ok(pb::IssueTokenResponse { token, actor, token_id })
        }
        .await)
    }

    async fn list_tokens(
        &self,
        req: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                policy::read(&call, Rpc::ListTokens, None)?;
                let (rows, now) = app::list_tokens(&self.0, &call, req.include_dead).await?;
                Ok(pb::ListTokensResponse {
                    tokens: rows.iter().map(|t| token_to_pb(t, now)).collect(),
                })
            }
            .await,
        )
    }

    async fn rotate_token(
        &self,
        req: Request<pb::RotateTokenRequest>,
    ) -> Result<Response<pb::RotateTokenResponse>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "rotate tokens")?;
                let mut v = Violations::default();
                let id = v.uuid("token_id", &req.token_id);
                v.finish()?;
                let mut w = begin!(self.0, call, "RotateToken", req);
                let (token, info) = app::rotate_token(&mut w, &call, id).await?;
                let info = Some(token_to_pb(&info, w.now));
                // As IssueToken: a replay never returns the secret.
                w.commit(&pb::RotateTokenResponse {
                    token: String::new(),
                    info: info.clone(),
                })
                .await?;
                Ok(pb::RotateTokenResponse { token, info })
            }
            .await,
        )
    }

    async fn revoke_token(
        &self,
        req: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::TokenInfo>, Status> {
        let call = self.0.call(&req).await?;
        let req = req.into_inner();
        reply(
            &call,
            async {
                call.require(&[Role::Office], "revoke tokens")?;
                let mut v = Violations::default();
                let id = v.uuid("token_id", &req.token_id);
                let reason =
                    Some(v.optional_text("reason", &req.reason, 500)).filter(|r| !r.is_empty());
                v.finish()?;
                let mut w = begin!(self.0, call, "RevokeToken", req);
                let info = app::revoke_token(&mut w, &call, id, reason).await?;
                let resp = token_to_pb(&info, w.now);
                w.commit(&resp).await?;
                Ok(resp)
            }
            .await,
        )
    }
}

fn token_to_pb(t: &TokenInfo, now: chrono::DateTime<chrono::Utc>) -> pb::TokenInfo {
    pb::TokenInfo {
        token_id: t.id.to_string(),
        actor: t.actor.clone(),
        name: t.name.clone(),
        role: role_to_pb(t.role) as i32,
        school_id: t.school_id.map(|s| s.to_string()).unwrap_or_default(),
        campaign_ids: t
            .campaigns
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect(),
        county_wide: t.campaigns.is_none(),
        expires_at: t.expires_at.map(ts),
        issued_by: t.issued_by.clone().unwrap_or_default(),
        created_at: Some(ts(t.created_at)),
        revoked_at: t.revoked_at.map(ts),
        demo: t.demo,
        live: t.live_at(now),
    }
}
