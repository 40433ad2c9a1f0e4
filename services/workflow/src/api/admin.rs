//! AdminService: server info (clock mode), the simulated clock, tokens.

use junheng_core::{Effect, Role};
use junheng_proto::v1 as pb;
use junheng_proto::v1::admin_service_server::AdminService;
use junheng_store::tokens::{self, TokenRow};
use rand::RngCore;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Shared, begin, reply, request_id};
use crate::convert::{Violations, from_ts, role_from_pb, ts};
use crate::error::AppError;
use crate::state::{Call, ClockMode};

pub struct AdminApi(pub Shared);

/// A fresh bearer token: 32 random bytes, hex, with a recognisable prefix.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    format!("jh_{}", hex::encode(b))
}

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
                let mut conn = self.0.pool.acquire().await?;
                let now = self.0.now(&mut conn).await?;
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
        reply(&call, async {
            call.require(&[Role::Office], "advance the clock")?;
            let mut v = Violations::default();
            let to = req.to.as_ref().and_then(from_ts);
            if to.is_none() {
                v.add("to", "required: the instant to move the simulated clock to");
            }
            v.finish()?;
            if self.0.clock == ClockMode::Real {
                return Err(AppError::FailedPrecondition(
                    "the server runs on the real clock; start it with `--clock simulated` to replay a season".into(),
                ));
            }
            let mut w = begin!(self.0, call, "AdvanceClock", req);
            let to = to.expect("checked");
            if to < w.now {
                return Err(AppError::invalid("to", format!("{to} is earlier than the simulated now {}; the clock never goes back", w.now)));
            }
            let now = junheng_store::clock::advance(w.conn(), to).await?;
            tracing::info!(clock.now = %now, "simulated clock advanced");
            let resp = pb::ServerInfo { version: env!("CARGO_PKG_VERSION").into(), clock_mode: self.0.clock.name().into(), now: Some(ts(now)), demo: self.0.demo };
            w.commit(&resp).await?;
            Ok(resp)
        }
        .await)
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
            let campaign = match school {
                Some(s) => Some(junheng_store::schools::get(w.conn(), s).await?.campaign_id),
                None => None,
            };
            let token = new_token();
            let actor = format!("{}:{}", role.code(), Uuid::now_v7().simple());
            tokens::insert(w.conn(), &token, &TokenRow { actor: actor.clone(), name: name.clone(), role: role.code().into(), school_id: school }).await?;
            if let Some(c) = campaign {
                let ev = Effect::event(
                    "token.issued",
                    school,
                    serde_json::Value::Null,
                    serde_json::json!({ "actor": actor, "name": name, "role": role.code() }),
                    None,
                );
                w.record(&call, c, &[ev]).await?;
            }
            // The secret is shown once: a replay of this call returns the actor, not the token,
            // so no plaintext token is ever stored.
            w.commit(&pb::IssueTokenResponse { token: String::new(), actor: actor.clone() }).await?;
            Ok(pb::IssueTokenResponse { token, actor })
        }
        .await)
    }
}
