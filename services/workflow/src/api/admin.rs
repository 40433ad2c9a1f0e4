//! AdminService: server info (clock mode), the simulated clock, tokens. Parses, calls
//! `app::admin`, maps to proto.

use junheng_core::Role;
use junheng_proto::v1 as pb;
use junheng_proto::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use super::{Shared, begin, reply, request_id};
use crate::app::admin::{self as app, IssueToken};
use crate::convert::{Violations, from_ts, role_from_pb, ts};
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
                if to.is_none() {
                    v.add("to", "required: the instant to move the simulated clock to");
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
                v.add("role", "must be one of ROLE_OFFICE, ROLE_DEPARTMENT, ROLE_PANEL, ROLE_SCHOOL, ROLE_LEADER");
            }
            let school = match (role, req.school_id.is_empty()) {
                (Some(Role::School), true) => {
                    v.add("school_id", "required for ROLE_SCHOOL");
                    None
                }
                (Some(Role::School), false) => Some(v.uuid("school_id", &req.school_id)),
                (_, false) => {
                    v.add("school_id", "only ROLE_SCHOOL tokens are bound to a school");
                    None
                }
                (_, true) => None,
            };
            v.finish()?;
            let role = role.expect("checked");
            let mut w = begin!(self.0, call, "IssueToken", req);
            let cmd = IssueToken { name, role, school };
            let app::Issued { token, actor } = app::issue_token(&mut w, &call, cmd).await?;
            // The secret is shown once: a replay of this call returns the actor, not the token,
            // so no plaintext token is ever stored.
            w.commit(&pb::IssueTokenResponse { token: String::new(), actor: actor.clone() }).await?;
            Ok(pb::IssueTokenResponse { token, actor })
        }
        .await)
    }
}
