//! The gRPC edge: `junheng.v1.SchedulerService` over the [`crate::api`] functions, with health,
//! reflection, bearer-token authentication and request ids like the workflow service.
//!
//! Roles: `office` or `leader` may read (ListDeliveries, GetDelivery, PreviewUpcoming); only
//! `office` may ResendDelivery. Tokens are looked up on every call (SHA-256 digests in the
//! `tokens` table), so a revoked token stops working at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use junheng_proto::v1 as pb;
use junheng_proto::v1::scheduler_service_server::{SchedulerService, SchedulerServiceServer};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use uuid::Uuid;

use crate::api::{self, DeliveryFilter};
use crate::config::{ClockMode, Settings};
use crate::lifecycle::OutboxStatus;

/// Default listen address of the scheduler's gRPC API.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50052";
const MAX_PAGE_SIZE: u32 = 1000;
const DEFAULT_PAGE_SIZE: u32 = 100;
const STATUSES: &[&str] = &OutboxStatus::NAMES;
const KINDS: &[&str] = &[
    "reminder",
    "overdue",
    "notice_expiry",
    "daily_digest",
    "phase_summary",
];
/// PreviewUpcoming looks at most this far ahead.
const MAX_PREVIEW_DAYS: i64 = 400;

/// One error type for the edge, mapped to a status in one place (the workflow's pattern).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request")]
    Invalid(Vec<(String, String)>),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The status a caller sees; internal causes are logged once, with the request id.
    pub fn into_status(self, request_id: &str) -> Status {
        match self {
            ApiError::Invalid(violations) => {
                let summary = violations
                    .iter()
                    .map(|(f, r)| format!("{f}: {r}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut details = ErrorDetails::new();
                for (f, r) in violations {
                    details.add_bad_request_violation(f, r);
                }
                Status::with_error_details(
                    Code::InvalidArgument,
                    format!("invalid request: {summary}"),
                    details,
                )
            }
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::AlreadyExists(m) => Status::already_exists(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::Internal(e) => {
                let mut chain = e.to_string();
                let mut src = e.source();
                while let Some(s) = src {
                    chain.push_str(": ");
                    chain.push_str(&s.to_string());
                    src = s.source();
                }
                tracing::error!(request.id = request_id, error = %chain, "internal error");
                Status::internal(format!("internal error (request id {request_id})"))
            }
        }
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::NotFound(m) => ApiError::NotFound(m),
            crate::Error::Conflict(m) => ApiError::AlreadyExists(m),
            crate::Error::NoSimulatedClock => ApiError::FailedPrecondition(e.to_string()),
            crate::Error::Store(junheng_store::StoreError::NotFound { .. }) => {
                ApiError::NotFound(e.to_string())
            }
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(Box::new(e))
    }
}

impl From<junheng_store::StoreError> for ApiError {
    fn from(e: junheng_store::StoreError) -> Self {
        ApiError::Internal(Box::new(e))
    }
}

/// Collects per-field violations so a request reports all its bad fields at once.
#[derive(Default)]
struct Violations(Vec<(String, String)>);

impl Violations {
    fn add(&mut self, field: &str, reason: impl Into<String>) {
        self.0.push((field.into(), reason.into()));
    }

    /// An optional id: empty means absent.
    fn opt_uuid(&mut self, field: &str, v: &str) -> Option<Uuid> {
        if v.is_empty() {
            return None;
        }
        match Uuid::parse_str(v) {
            Ok(u) => Some(u),
            Err(_) => {
                self.add(field, format!("`{}` is not a UUID", truncate(v)));
                None
            }
        }
    }

    fn uuid(&mut self, field: &str, v: &str) -> Uuid {
        if v.is_empty() {
            self.add(field, "required");
            return Uuid::nil();
        }
        self.opt_uuid(field, v).unwrap_or_default()
    }

    fn one_of(&mut self, field: &str, v: &str, allowed: &[&str]) -> Option<String> {
        if v.is_empty() {
            return None;
        }
        if !allowed.contains(&v) {
            self.add(
                field,
                format!("`{}` is not one of {}", truncate(v), allowed.join(", ")),
            );
        }
        Some(v.to_owned())
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.0))
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn from_ts(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

fn delivery(d: api::Delivery) -> pb::Delivery {
    pb::Delivery {
        id: d.id.to_string(),
        campaign_id: d.campaign_id.to_string(),
        kind: d.kind,
        recipient: d.recipient,
        endpoint: d.endpoint,
        status: d.status,
        attempts: d.attempts.max(0) as u32,
        last_error: d.last_error.unwrap_or_default(),
        title: d.title,
        not_before: Some(ts(d.not_before)),
        sent_at: d.sent_at.map(ts),
        created_at: Some(ts(d.created_at)),
    }
}

/// Who called: the actor id and role of a live bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: String,
    pub role: String,
}

#[derive(Clone)]
pub struct SchedulerApi {
    pool: PgPool,
    settings: Arc<Settings>,
}

impl SchedulerApi {
    pub fn new(pool: PgPool, settings: Arc<Settings>) -> Self {
        Self { pool, settings }
    }

    async fn now(&self) -> Result<DateTime<Utc>, ApiError> {
        Ok(crate::now(&self.pool, self.settings.clock).await?)
    }

    async fn authenticate<T>(&self, req: &Request<T>, roles: &[&str]) -> Result<Caller, ApiError> {
        let header = req.metadata().get("authorization").ok_or_else(|| {
            ApiError::Unauthenticated("missing `authorization: Bearer <token>` metadata".into())
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthenticated("authorization metadata must be `Bearer <token>`".into())
            })?;
        let mut conn = self.pool.acquire().await?;
        let row = junheng_store::tokens::find(&mut conn, token)
            .await?
            .ok_or_else(|| ApiError::Unauthenticated("unknown or revoked token".into()))?;
        if !roles.contains(&row.role.as_str()) {
            return Err(ApiError::PermissionDenied(format!(
                "this call needs the {} role; the token is `{}`",
                roles.join(" or "),
                row.role
            )));
        }
        Ok(Caller {
            actor: row.actor,
            role: row.role,
        })
    }

    /// Authenticates, runs `f`, and maps the result to a response carrying the request id.
    async fn handle<T, R, F, Fut>(
        &self,
        req: Request<T>,
        roles: &[&str],
        f: F,
    ) -> Result<Response<R>, Status>
    where
        F: FnOnce(Caller, T) -> Fut,
        Fut: Future<Output = Result<R, ApiError>>,
    {
        let request_id = request_id(&req);
        let result = match self.authenticate(&req, roles).await {
            Ok(caller) => {
                tracing::debug!(request.id = %request_id, actor.id = %caller.actor, actor.role = %caller.role, "call");
                f(caller, req.into_inner()).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => {
                let mut resp = Response::new(v);
                if let Ok(v) = request_id.parse() {
                    resp.metadata_mut().insert("x-request-id", v);
                }
                Ok(resp)
            }
            Err(e) => Err(e.into_status(&request_id)),
        }
    }
}

fn endpoint(e: api::EndpointStatus) -> pb::Endpoint {
    let d = e.disabled.as_ref();
    pb::Endpoint {
        name: e.name,
        kind: e.kind,
        disabled: d.is_some(),
        disabled_at: d.map(|d| ts(d.at)),
        disabled_reason: d.map(|d| d.reason.clone()).unwrap_or_default(),
        disabled_by_delivery: d.map(|d| d.by_delivery.to_string()).unwrap_or_default(),
        parked: e.parked.max(0) as u64,
    }
}

fn request_id<T>(req: &Request<T>) -> String {
    req.metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(String::from)
        .unwrap_or_else(|| Uuid::now_v7().to_string())
}

const READERS: &[&str] = &["office", "leader"];
const OFFICE: &[&str] = &["office"];

#[tonic::async_trait]
impl SchedulerService for SchedulerApi {
    async fn list_deliveries(
        &self,
        req: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        self.handle(req, READERS, |_, r| async move {
            let mut v = Violations::default();
            let campaign_id = v.opt_uuid("campaign_id", &r.campaign_id);
            let status = v.one_of("status", &r.status, STATUSES);
            let kind = v.one_of("kind", &r.kind, KINDS);
            let before_id = v.opt_uuid("page_token", &r.page_token);
            if r.page_size > MAX_PAGE_SIZE {
                v.add(
                    "page_size",
                    format!("at most {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})"),
                );
            }
            if r.recipient.len() > 200 {
                v.add("recipient", "at most 200 bytes");
            }
            v.finish()?;
            let limit = if r.page_size == 0 {
                DEFAULT_PAGE_SIZE
            } else {
                r.page_size
            };
            let rows = api::list_deliveries(
                &self.pool,
                &DeliveryFilter {
                    campaign_id,
                    status,
                    kind,
                    recipient: (!r.recipient.is_empty()).then_some(r.recipient),
                    before_id,
                    limit: i64::from(limit),
                },
            )
            .await?;
            let next_page_token = if rows.len() == limit as usize {
                rows.last().map(|d| d.id.to_string()).unwrap_or_default()
            } else {
                String::new()
            };
            Ok(pb::ListDeliveriesResponse {
                deliveries: rows.into_iter().map(delivery).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn get_delivery(
        &self,
        req: Request<pb::GetDeliveryRequest>,
    ) -> Result<Response<pb::DeliveryDetail>, Status> {
        self.handle(req, READERS, |_, r| async move {
            let mut v = Violations::default();
            let id = v.uuid("id", &r.id);
            v.finish()?;
            let (d, text) = api::get_delivery(&self.pool, id).await?;
            let attempts = api::attempts(&self.pool, id).await?;
            Ok(pb::DeliveryDetail {
                delivery: Some(delivery(d)),
                attempts: attempts
                    .into_iter()
                    .map(|a| pb::DeliveryAttempt {
                        attempt: a.attempt.max(0) as u32,
                        worker: a.worker,
                        started_at: Some(ts(a.started_at)),
                        finished_at: Some(ts(a.finished_at)),
                        outcome: a.outcome,
                        detail: a.detail,
                    })
                    .collect(),
                text,
            })
        })
        .await
    }

    async fn resend_delivery(
        &self,
        req: Request<pb::ResendDeliveryRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        self.handle(req, OFFICE, |caller, r| async move {
            let mut v = Violations::default();
            let key = &r.idempotency_key;
            if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                v.add(
                    "idempotency_key",
                    "required: 1 to 128 printable ASCII characters without spaces",
                );
            }
            let id = v.uuid("id", &r.id);
            v.finish()?;
            let now = self.now().await?;
            let copy = api::resend(&self.pool, id, &caller.actor, key, now).await?;
            tracing::info!(outbox.id = %id, copy.id = %copy, actor.id = %caller.actor, "resend queued");
            let (d, _) = api::get_delivery(&self.pool, copy).await?;
            Ok(delivery(d))
        })
        .await
    }

    async fn preview_upcoming(
        &self,
        req: Request<pb::PreviewUpcomingRequest>,
    ) -> Result<Response<pb::PreviewUpcomingResponse>, Status> {
        self.handle(req, READERS, |_, r| async move {
            let mut v = Violations::default();
            let campaign_id = v.uuid("campaign_id", &r.campaign_id);
            let until = match &r.until {
                None => {
                    v.add("until", "required");
                    None
                }
                Some(t) => {
                    let u = from_ts(t);
                    if u.is_none() {
                        v.add("until", "not a valid timestamp");
                    }
                    u
                }
            };
            v.finish()?;
            let until = until.expect("validated");
            let now = self.now().await?;
            let mut v = Violations::default();
            if until <= now {
                v.add("until", format!("must be after now ({now})"));
            } else if until > now + chrono::Duration::days(MAX_PREVIEW_DAYS) {
                v.add(
                    "until",
                    format!("at most {MAX_PREVIEW_DAYS} days after now ({now})"),
                );
            }
            v.finish()?;
            let items = api::preview(&self.pool, &self.settings, campaign_id, now, until).await?;
            Ok(pb::PreviewUpcomingResponse {
                messages: items
                    .into_iter()
                    .map(|i| pb::UpcomingMessage {
                        at: Some(ts(i.at)),
                        kind: i.kind,
                        recipient: i.recipient,
                        endpoint: i.endpoint,
                        title: i.subject,
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn list_endpoints(
        &self,
        req: Request<pb::ListEndpointsRequest>,
    ) -> Result<Response<pb::ListEndpointsResponse>, Status> {
        self.handle(req, READERS, |_, _| async move {
            let endpoints = api::endpoints(&self.pool, &self.settings).await?;
            Ok(pb::ListEndpointsResponse {
                endpoints: endpoints.into_iter().map(endpoint).collect(),
            })
        })
        .await
    }

    async fn enable_endpoint(
        &self,
        req: Request<pb::EnableEndpointRequest>,
    ) -> Result<Response<pb::EnableEndpointResponse>, Status> {
        self.handle(req, OFFICE, |caller, r| async move {
            let mut v = Violations::default();
            if r.name.is_empty() || r.name.len() > 200 {
                v.add("name", "required: an endpoint name of at most 200 bytes");
            }
            v.finish()?;
            let known = api::endpoints(&self.pool, &self.settings).await?;
            if !known.iter().any(|e| e.name == r.name) {
                return Err(ApiError::NotFound(format!(
                    "no endpoint named `{}` (configured: {})",
                    r.name,
                    known
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let now = self.now().await?;
            let released = api::enable_endpoint(&self.pool, &r.name, now).await?;
            tracing::info!(endpoint = %r.name, released, actor.id = %caller.actor, "endpoint enabled");
            let status = api::endpoints(&self.pool, &self.settings)
                .await?
                .into_iter()
                .find(|e| e.name == r.name)
                .map(endpoint);
            Ok(pb::EnableEndpointResponse {
                endpoint: status,
                released,
            })
        })
        .await
    }
}

/// Serves SchedulerService, health (`junheng.v1.SchedulerService` and
/// `junheng.clock.<real|simulated>`) and reflection until `shutdown` resolves.
pub async fn serve(
    pool: PgPool,
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<SchedulerServiceServer<SchedulerApi>>()
        .await;
    junheng_edge::health::spawn_readiness(health.clone(), pool.clone()).await;
    let clock = match settings.clock {
        ClockMode::Real => "real",
        ClockMode::Simulated => "simulated",
    };
    health
        .set_service_status(
            format!("junheng.clock.{clock}"),
            tonic_health::ServingStatus::Serving,
        )
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(junheng_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, clock, "junheng scheduler serving gRPC");
    Server::builder()
        .layer(junheng_edge::metrics::GrpcMetricsLayer)
        .trace_fn(|req| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            tracing::info_span!("grpc", request.id = %id, rpc = %req.uri().path())
        })
        .add_service(health_service)
        .add_service(reflection)
        .add_service(SchedulerServiceServer::new(SchedulerApi::new(
            pool, settings,
        )))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            junheng_edge::systemd::ready();
            shutdown.await;
            junheng_edge::systemd::stopping();
        })
        .await?;
    Ok(())
}

/// A server bound to `addr` (use port 0 for a free port), stopped on drop or [`Running::shutdown`].
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    pub async fn start(pool: PgPool, settings: Arc<Settings>, addr: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, rx) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(serve(pool, settings, listener, async {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            handle: Some(handle),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.handle.take() {
            Some(h) => h.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
