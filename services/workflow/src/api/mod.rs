//! The gRPC edge: one module per service. Handlers parse the request (every field, all
//! problems at once), open a unit of work, make one call into `app` (which loads the facts, lets
//! the rule core decide and persists in that one transaction), and map the result back to proto
//! without I/O. No handler imports another.

mod acceptance;
mod admin;
mod award;
mod campaign;
#[cfg(test)]
mod edge_rules;
mod mentor;
mod pairing;
mod school;
mod seed;
mod sheets;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::error::AppResult;
use crate::state::{AppState, Call};

pub use acceptance::AcceptanceApi;
pub use admin::AdminApi;
pub use award::AwardApi;
pub use campaign::CampaignApi;
pub use mentor::MentorApi;
pub use pairing::PairingApi;
pub use school::SchoolApi;
pub use seed::SeedApi;
pub use sheets::{MAX_IMPORT, MAX_IMPORT_MESSAGE, SpreadsheetApi};

/// What every service holds.
#[derive(Clone)]
pub struct Shared(pub Arc<AppState>);

impl std::ops::Deref for Shared {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

pub use junheng_edge::request::request_id;

impl Shared {
    /// Authenticates the caller; the error already carries the request id.
    pub async fn call<T>(&self, req: &Request<T>) -> Result<Call, Status> {
        let request_id = request_id(req);
        let span = tracing::Span::current();
        span.record("request.id", request_id.as_str());
        match self.authenticate(req.metadata()).await {
            Ok(auth) => {
                let actor = auth.actor;
                span.record("actor.id", actor.id.as_str());
                tracing::debug!(request.id = %request_id, actor.id = %actor.id, actor.role = %actor.role, "call");
                Ok(Call {
                    actor,
                    scope: auth.scope,
                    token_id: Some(auth.token_id),
                    request_id,
                })
            }
            Err(e) => Err(e.into_status(&request_id)),
        }
    }
}

/// Maps a handler's result to a response carrying the request id.
pub fn reply<T>(call: &Call, result: AppResult<T>) -> Result<Response<T>, Status> {
    junheng_edge::request::reply(&call.request_id, result)
}

/// Opens a unit of work or returns the stored response of an earlier identical call.
macro_rules! begin {
    ($state:expr, $call:expr, $method:literal, $req:expr) => {
        match $state
            .begin(&$call, $method, &$req.idempotency_key, &$req)
            .await?
        {
            $crate::state::Begun::Replay(r) => return Ok(r),
            $crate::state::Begun::Fresh(w) => w,
        }
    };
}
pub(crate) use begin;
