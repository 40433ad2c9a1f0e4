//! The gRPC edge: `junheng.v1.SchedulerService` over the [`crate::api`] functions, with health,
//! reflection, bearer-token authentication and request ids like the workflow service.
//!
//! Roles: `office` or `leader` may read (ListDeliveries, GetDelivery, PreviewUpcoming); only
//! `office` may ResendDelivery. Tokens are looked up on every call (SHA-256 digests in the
//! `tokens` table), so a revoked token stops working at once.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use junheng_core::{Actor, Role, Scope};
use junheng_edge::auth::Tokens;
use junheng_edge::request::{reply, request_id};
use junheng_edge::status::ApiError;
use junheng_edge::violations::Violations;
use junheng_proto::v1 as pb;
use junheng_proto::v1::scheduler_service_server::{SchedulerService, SchedulerServiceServer};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::api::{self, DeliveryFilter};
use crate::config::Settings;
use crate::lifecycle::OutboxStatus;

pub use crate::config::DEFAULT_GRPC_ADDR as DEFAULT_ADDR;
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

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::NotFound(m) => ApiError::NotFound(m),
            crate::Error::Conflict(m) => ApiError::AlreadyExists(m),
            crate::Error::NoSimulatedClock => ApiError::FailedPrecondition(e.to_string()),
            crate::Error::Store(junheng_store::StoreError::NotFound { .. }) => {
                ApiError::NotFound(e.to_string())
            }
            crate::Error::Db(e) => e.into(),
            crate::Error::Store(junheng_store::StoreError::Sqlx(e)) => e.into(),
            other => ApiError::from_failure(Box::new(other)),
        }
    }
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

#[derive(Clone)]
pub struct SchedulerApi {
    pool: PgPool,
    settings: Arc<Settings>,
    tokens: Arc<Tokens>,
}

impl SchedulerApi {
    pub fn new(pool: PgPool, settings: Arc<Settings>) -> Self {
        Self {
            pool,
            settings: settings.clone(),
            tokens: Arc::new(
                Tokens::new(settings.clock)
                    .refusing_demo(std::env::var("JUNHENG_ENV").is_ok_and(|e| e == "production")),
            ),
        }
    }

    async fn now(&self) -> Result<DateTime<Utc>, ApiError> {
        Ok(crate::now(&self.pool, self.settings.clock).await?)
    }

    async fn authenticate<T>(
        &self,
        req: &Request<T>,
        roles: &[Role],
    ) -> Result<(Actor, Scope), ApiError> {
        let junheng_edge::auth::Authenticated { actor, scope, .. } = self
            .tokens
            .authenticate_scoped(&self.pool, req.metadata())
            .await?;
        if !roles.contains(&actor.role) {
            return Err(ApiError::PermissionDenied(format!(
                "this call needs the {} role; the token is `{}`",
                roles
                    .iter()
                    .map(|r| r.code())
                    .collect::<Vec<_>>()
                    .join(" or "),
                actor.role
            )));
        }
        Ok((actor, scope))
    }

    /// Authenticates, runs `f`, and maps the result to a response carrying the request id.
    async fn handle<T, R, F, Fut>(
        &self,
        req: Request<T>,
        roles: &[Role],
        f: F,
    ) -> Result<Response<R>, Status>
    where
        F: FnOnce(api::Audit, T) -> Fut,
        Fut: Future<Output = Result<R, ApiError>>,
    {
        self.handle_audited(req, roles, f).await
    }

    /// `handle` for a mutation: `f` gets the caller with the request id its audit event
    /// carries.
    async fn handle_audited<T, R, F, Fut>(
        &self,
        req: Request<T>,
        roles: &[Role],
        f: F,
    ) -> Result<Response<R>, Status>
    where
        F: FnOnce(api::Audit, T) -> Fut,
        Fut: Future<Output = Result<R, ApiError>>,
    {
        let request_id = request_id(&req);
        let result = match self.authenticate(&req, roles).await {
            Ok((caller, scope)) => {
                tracing::debug!(request.id = %request_id, actor.id = %caller.id, actor.role = %caller.role, "call");
                let audit = api::Audit {
                    actor: caller,
                    scope,
                    request_id: request_id.clone(),
                };
                f(audit, req.into_inner()).await
            }
            Err(e) => Err(e),
        };
        reply(&request_id, result)
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

const READERS: &[Role] = &[Role::Office, Role::Leader];
const OFFICE: &[Role] = &[Role::Office];

/// The campaign a list or preview is about, within the caller's scope: a county-wide token may
/// name any campaign or none; a campaign-scoped token only one of its own (or none, when it
/// covers exactly one).
fn campaign_in_scope(scope: &Scope, named: Option<Uuid>) -> Result<Option<Uuid>, ApiError> {
    match (scope, named) {
        (Scope::County, named) => Ok(named),
        (s, Some(c)) if s.covers(c) => Ok(Some(c)),
        (_, Some(c)) => Err(ApiError::PermissionDenied(format!(
            "the token does not cover campaign {c}"
        ))),
        (Scope::Campaigns(own), None) if own.len() == 1 => Ok(Some(own[0])),
        (Scope::Campaigns(_), None) => {
            let mut v = Violations::default();
            v.add(
                "campaign_id",
                "required: the token covers several campaigns; name one",
            );
            Err(v.finish().expect_err("a violation was added"))
        }
    }
}

/// A delivery the caller may see: one of its scope's campaigns. Another campaign's reads as
/// absent, as it would to a caller who guessed an id.
fn visible(scope: &Scope, d: &api::Delivery) -> Result<(), ApiError> {
    if scope.covers(d.campaign_id) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no delivery {}", d.id)))
    }
}

#[tonic::async_trait]
impl SchedulerService for SchedulerApi {
    async fn list_deliveries(
        &self,
        req: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        self.handle(req, READERS, |caller, r| async move {
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
            } else {
                v.clean("recipient", &r.recipient);
            }
            v.finish()?;
            let campaign_id = campaign_in_scope(&caller.scope, campaign_id)?;
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
        self.handle(req, READERS, |caller, r| async move {
            let mut v = Violations::default();
            let id = v.uuid("id", &r.id);
            v.finish()?;
            let (d, text) = api::get_delivery(&self.pool, id).await?;
            visible(&caller.scope, &d)?;
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
        self.handle_audited(req, OFFICE, |caller, r| async move {
            let mut v = Violations::default();
            let key = &r.idempotency_key;
            v.idempotency_key("idempotency_key", key);
            let id = v.uuid("id", &r.id);
            v.finish()?;
            visible(&caller.scope, &api::get_delivery(&self.pool, id).await?.0)?;
            let now = self.now().await?;
            let copy = api::resend(&self.pool, id, &caller, key, now).await?;
            tracing::info!(outbox.id = %id, copy.id = %copy, actor.id = %caller.actor.id, "resend queued");
            let (d, _) = api::get_delivery(&self.pool, copy).await?;
            Ok(delivery(d))
        })
        .await
    }

    async fn preview_upcoming(
        &self,
        req: Request<pb::PreviewUpcomingRequest>,
    ) -> Result<Response<pb::PreviewUpcomingResponse>, Status> {
        self.handle(req, READERS, |caller, r| async move {
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
            campaign_in_scope(&caller.scope, Some(campaign_id))?;
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
        self.handle_audited(req, OFFICE, |caller, r| async move {
            let mut v = Violations::default();
            if r.name.is_empty() || r.name.len() > 200 {
                v.add("name", "required: an endpoint name of at most 200 bytes");
            } else {
                v.clean("name", &r.name);
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
            let released = api::enable_endpoint(&self.pool, &r.name, &caller, now).await?;
            tracing::info!(endpoint = %r.name, released, actor.id = %caller.actor.id, "endpoint enabled");
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

/// How the listener meets callers: TLS (and mTLS) and the per-caller limits.
#[derive(Default)]
pub struct Edge {
    pub tls: Option<junheng_edge::tls::TlsFiles>,
    pub limits: junheng_edge::limits::CallerLimits,
}

/// Serves SchedulerService, health (`junheng.v1.SchedulerService` and
/// `junheng.clock.<real|simulated>`) and reflection until `shutdown` resolves.
pub async fn serve(
    pool: PgPool,
    settings: Arc<Settings>,
    listener: TcpListener,
    edge: Edge,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let Edge { tls, limits } = edge;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<SchedulerServiceServer<SchedulerApi>>()
        .await;
    junheng_edge::health::spawn_readiness(health.clone(), pool.clone()).await;
    let clock = settings.clock.name();
    health
        .set_service_status(
            format!("junheng.clock.{clock}"),
            tonic_health::ServingStatus::Serving,
        )
        .await;
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, clock, tls = tls.is_some(), "junheng scheduler serving gRPC");
    let mut builder = Server::builder();
    if let Some(tls) = &tls {
        builder = builder.tls_config(tls.server_config()?)?;
    }
    builder
        .layer(junheng_edge::metrics::GrpcMetricsLayer)
        .layer(junheng_edge::limits::CallerLimitLayer::new(
            junheng_edge::limits::Limiter::new(limits),
        ))
        .trace_fn(|req| {
            let span = junheng_edge::telemetry::grpc_span(req);
            if let Some(id) = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
            {
                span.record("request.id", id);
            }
            span
        })
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(SchedulerServiceServer::new(SchedulerApi::new(
            pool, settings,
        )))
        .serve_with_incoming_shutdown(junheng_edge::running::incoming(listener), async {
            junheng_edge::systemd::ready();
            shutdown.await;
            junheng_edge::systemd::stopping();
        })
        .await?;
    Ok(())
}

/// A server bound to `addr` (use port 0 for a free port), stopped on drop or [`Running::shutdown`].
pub use junheng_edge::running::Running;

/// Starts the scheduler's gRPC server on `addr`.
pub async fn start(pool: PgPool, settings: Arc<Settings>, addr: &str) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    Ok(Running::spawn(addr, None, |stop| {
        serve(pool, settings, listener, Edge::default(), stop)
    }))
}

/// As [`start`], serving TLS from `tls` (mTLS when it names a client CA).
pub async fn start_tls(
    pool: PgPool,
    settings: Arc<Settings>,
    addr: &str,
    tls: junheng_edge::tls::TlsFiles,
) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    Ok(Running::spawn(addr, None, |stop| {
        serve(
            pool,
            settings,
            listener,
            Edge {
                tls: Some(tls),
                ..Edge::default()
            },
            stop,
        )
    }))
}

/// Reflection (v1 and v1alpha, as grpcurl 1.8 and grpcio-reflection speak it) lists exactly
/// what this server adds: the descriptor set also holds the workflow's services.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    use tonic::server::NamedService;
    let served = [
        <tonic_health::pb::health_server::HealthServer<()> as NamedService>::NAME,
        <tonic_reflection::pb::v1::server_reflection_server::ServerReflectionServer<()> as NamedService>::NAME,
        <tonic_reflection::pb::v1alpha::server_reflection_server::ServerReflectionServer<()> as NamedService>::NAME,
        <SchedulerServiceServer<()> as NamedService>::NAME,
    ];
    served.into_iter().fold(
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(junheng_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            ),
        |b, name| b.with_service_name(name),
    )
}
