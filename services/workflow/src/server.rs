//! Serving: the gRPC services, health, reflection (v1 and v1alpha), request ids, the event
//! wake-up listener and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use junheng_core::calendar::Calendars;
use junheng_proto::v1::acceptance_service_server::AcceptanceServiceServer;
use junheng_proto::v1::admin_service_server::AdminServiceServer;
use junheng_proto::v1::award_service_server::AwardServiceServer;
use junheng_proto::v1::campaign_service_server::CampaignServiceServer;
use junheng_proto::v1::mentor_service_server::MentorServiceServer;
use junheng_proto::v1::pairing_service_server::PairingServiceServer;
use junheng_proto::v1::school_service_server::SchoolServiceServer;
use junheng_proto::v1::seed_service_server::SeedServiceServer;
use junheng_proto::v1::spreadsheet_service_server::SpreadsheetServiceServer;
use junheng_store::PgPool;
use tokio::net::TcpListener;
use tonic::transport::Server;
use uuid::Uuid;

use crate::api::{
    AcceptanceApi, AdminApi, AwardApi, CampaignApi, MentorApi, PairingApi, SchoolApi, SeedApi,
    Shared, SpreadsheetApi,
};
use crate::state::{AppState, ClockMode};
use junheng_edge::limits::{CallerLimitLayer, CallerLimits, Limiter};
use junheng_edge::metrics::GaugeFamily;

/// Relays `NOTIFY junheng_events` to followers in this process. Followers also poll, so a
/// dropped connection costs latency, never events.
fn spawn_event_listener(state: Arc<AppState>) {
    tokio::spawn(async move {
        loop {
            let res: Result<(), sqlx::Error> = async {
                let mut l = sqlx::postgres::PgListener::connect_with(&state.pool).await?;
                l.listen(junheng_store::audit::EVENTS_CHANNEL).await?;
                state.events_live.store(true, Ordering::Relaxed);
                loop {
                    let n = l.recv().await?;
                    if let Ok(id) = Uuid::parse_str(n.payload()) {
                        let _ = state.events.send(id);
                    }
                }
            }
            .await;
            state.events_live.store(false, Ordering::Relaxed);
            if let Err(e) = res {
                tracing::warn!(error = %e, "event listener lost its connection; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// The largest request message every service but SpreadsheetService decodes (tonic's default,
/// stated here): 4 MiB. SpreadsheetService takes `api::MAX_IMPORT_MESSAGE` (a 20 MiB file and
/// its fields); anything larger is RESOURCE_EXHAUSTED before a handler runs.
pub const MAX_MESSAGE: usize = 4 << 20;

/// How a server runs: its clock, whether it is a labelled demo, and where its metrics go.
#[derive(Debug)]
pub struct ServeOptions {
    pub clock: ClockMode,
    pub demo: bool,
    /// The admin port for `GET /metrics` (never the public one); none serves no metrics.
    pub metrics: Option<TcpListener>,
    /// The working-day calendar years (`calendars::load`); the shipped ones by default.
    pub calendars: Calendars,
    /// The pages' own port (公示栏, dashboard; see `web`); none serves no pages.
    pub web: Option<TcpListener>,
    pub web_options: crate::web::WebOptions,
    /// Serve gRPC over TLS (with client verification when it names a client CA).
    pub tls: Option<junheng_edge::tls::TlsFiles>,
    /// Per-caller concurrency, rate and stream limits.
    pub limits: CallerLimits,
    /// Idempotency records older than this are deleted (checked every hour).
    pub idempotency_retention: Duration,
}

impl ServeOptions {
    /// A server for tests and benchmarks: no demo, no metrics, no pages, no TLS, the shipped
    /// calendars, the test limits.
    pub fn local(clock: ClockMode) -> Self {
        ServeOptions {
            clock,
            demo: false,
            metrics: None,
            calendars: Calendars::shipped().clone(),
            web: None,
            web_options: Default::default(),
            tls: None,
            limits: test_limits(),
            idempotency_retention: DEFAULT_IDEMPOTENCY_RETENTION,
        }
    }
}

/// How long an idempotency record is kept by default: 30 days.
pub const DEFAULT_IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Deletes expired idempotency records now and then every hour.
fn spawn_idempotency_purge(pool: PgPool, retention: Duration) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            match junheng_store::idempotency::purge(&pool, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired idempotency records deleted"),
                Err(e) => tracing::warn!(error = %e, "deleting expired idempotency records failed"),
            }
        }
    });
}

static OBLIGATIONS_OPEN: GaugeFamily = GaugeFamily::new("junheng_obligations_open");
static OBLIGATIONS_OVERDUE: GaugeFamily = GaugeFamily::new("junheng_obligations_overdue");

/// Refreshes the workflow's gauges from its tables: open and overdue obligations by campaign,
/// phase and kind; audit events (transitions and decisions) by campaign and action; the pool.
async fn scrape(state: Arc<AppState>) -> anyhow::Result<()> {
    junheng_edge::metrics::record_pool(&state.pool);
    let now = {
        let mut conn = state.pool.acquire().await?;
        state
            .now(&mut conn)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
    };
    let rows = junheng_store::metrics::obligations(&state.pool, now).await?;
    let labels = |c: &str, p: &str, k: &str| {
        vec![
            ("campaign", c.to_string()),
            ("phase", p.to_string()),
            ("kind", k.to_string()),
        ]
    };
    OBLIGATIONS_OPEN.set_all(
        rows.iter()
            .map(|(c, p, k, open, _)| (labels(c, p, k), *open as f64)),
    );
    OBLIGATIONS_OVERDUE.set_all(
        rows.iter()
            .map(|(c, p, k, _, late)| (labels(c, p, k), *late as f64)),
    );
    for (campaign, action, n) in junheng_store::metrics::events(&state.pool).await? {
        metrics::counter!("junheng_events_total", "campaign" => campaign, "action" => action)
            .absolute(n as u64);
    }
    Ok(())
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    pool: PgPool,
    options: ServeOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let ServeOptions {
        clock,
        demo,
        metrics,
        calendars,
        web,
        web_options,
        tls,
        limits,
        idempotency_retention,
    } = options;
    let mut state = AppState::new(pool, clock);
    state.demo = demo;
    state.calendars = calendars;
    state.limiter = Limiter::new(limits);
    let state = Arc::new(state);
    spawn_event_listener(state.clone());
    spawn_idempotency_purge(state.pool.clone(), idempotency_retention);
    let admin = metrics.map(|listener| {
        let st = state.clone();
        let scrape: junheng_edge::metrics::Scrape = Arc::new(move || Box::pin(scrape(st.clone())));
        tokio::spawn(junheng_edge::metrics::serve_admin(
            listener,
            scrape,
            std::future::pending(),
        ))
    });
    let (web_stop, web_stopped) = tokio::sync::oneshot::channel::<()>();
    // The pages speak TLS when gRPC does, from the same certificate (browsers present no
    // client certificate: no client verification there); cookies are `Secure` then.
    let web_tls = match (&web, &tls) {
        (Some(_), Some(files)) => Some(
            junheng_edge::tls::TlsFiles {
                client_ca: None,
                ..files.clone()
            }
            .acceptor()?,
        ),
        _ => None,
    };
    let web_options = crate::web::WebOptions {
        secure_cookies: web_options.secure_cookies || web_tls.is_some(),
        ..web_options
    };
    let pages = match web {
        Some(listener) => {
            let router = crate::web::router(state.clone(), web_options)?;
            Some(tokio::spawn(crate::web::serve_web(
                listener,
                router,
                web_tls,
                async {
                    let _ = web_stopped.await;
                },
            )))
        }
        None => None,
    };
    let shared = Shared(state.clone());

    let (health, health_service) = tonic_health::server::health_reporter();
    junheng_edge::health::spawn_readiness(health.clone(), state.pool.clone()).await;
    health
        .set_serving::<CampaignServiceServer<CampaignApi>>()
        .await;
    health.set_serving::<SchoolServiceServer<SchoolApi>>().await;
    health.set_serving::<SeedServiceServer<SeedApi>>().await;
    health.set_serving::<MentorServiceServer<MentorApi>>().await;
    health.set_serving::<AdminServiceServer<AdminApi>>().await;
    health
        .set_serving::<PairingServiceServer<PairingApi>>()
        .await;
    health
        .set_serving::<AcceptanceServiceServer<AcceptanceApi>>()
        .await;
    health.set_serving::<AwardServiceServer<AwardApi>>().await;
    health
        .set_serving::<SpreadsheetServiceServer<SpreadsheetApi>>()
        .await;
    // The clock mode is part of health output: `junheng.clock.simulated` is SERVING only when
    // the simulated clock is on (and `junheng.clock.real` otherwise).
    health
        .set_service_status(
            format!("junheng.clock.{}", clock.name()),
            tonic_health::ServingStatus::Serving,
        )
        .await;
    if demo {
        // A demo server says so wherever an operator looks: here, GetServerInfo and the logs.
        health
            .set_service_status("junheng.demo", tonic_health::ServingStatus::Serving)
            .await;
    }

    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let addr = listener.local_addr()?;
    tracing::info!(%addr, clock = clock.name(), demo, tls = tls.is_some(), "junheng workflow serving gRPC");
    let mut builder = Server::builder();
    if let Some(tls) = &tls {
        builder = builder.tls_config(tls.server_config()?)?;
    }
    let served = builder
        .layer(junheng_edge::metrics::GrpcMetricsLayer)
        .layer(CallerLimitLayer::new(state.limiter.clone()))
        .trace_fn(|req| {
            // The request id is recorded by the handler (`Shared::call`), which also makes one up
            // when the caller sent none, so every span carries the id the caller is told.
            junheng_edge::telemetry::grpc_span(req)
        })
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            CampaignServiceServer::new(CampaignApi(shared.clone()))
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            SchoolServiceServer::new(SchoolApi(shared.clone()))
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            SeedServiceServer::new(SeedApi(shared.clone())).max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            MentorServiceServer::new(MentorApi(shared.clone()))
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            PairingServiceServer::new(PairingApi(shared.clone()))
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            AcceptanceServiceServer::new(AcceptanceApi(shared.clone()))
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            AwardServiceServer::new(AwardApi(shared.clone()))
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            SpreadsheetServiceServer::new(SpreadsheetApi(shared.clone()))
                .max_decoding_message_size(crate::api::MAX_IMPORT_MESSAGE),
        )
        .add_service(
            AdminServiceServer::new(AdminApi(shared)).max_decoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(junheng_edge::running::incoming(listener), async {
            junheng_edge::systemd::ready();
            shutdown.await;
            junheng_edge::systemd::stopping();
            let _ = web_stop.send(());
        })
        .await;
    if let Some(a) = admin {
        a.abort();
    }
    if let Some(p) = pages {
        match p.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "the pages stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "the pages task failed"),
            Ok(Ok(())) => {}
        }
    }
    served?;
    Ok(())
}

/// A running server for tests and benchmarks: bound to a free port, stopped on drop.
pub use junheng_edge::running::Running;

/// The limits of [`spawn`]: the defaults without the rate limit, so tests and benchmarks that
/// drive one token hard measure the server, not the limiter ([`spawn_with`] sets them all).
pub fn test_limits() -> CallerLimits {
    CallerLimits {
        rate_per_sec: f64::INFINITY,
        burst: f64::INFINITY,
        ..CallerLimits::default()
    }
}

/// Starts the server on 127.0.0.1 with a free port.
pub async fn spawn(pool: PgPool, clock: ClockMode) -> anyhow::Result<Running> {
    spawn_local(pool, ServeOptions::local(clock)).await
}

/// [`spawn`] with these per-caller limits.
pub async fn spawn_with(
    pool: PgPool,
    clock: ClockMode,
    limits: CallerLimits,
) -> anyhow::Result<Running> {
    spawn_local(
        pool,
        ServeOptions {
            limits,
            ..ServeOptions::local(clock)
        },
    )
    .await
}

/// [`spawn`] with these calendar years (a bureau's added files).
pub async fn spawn_with_calendars(
    pool: PgPool,
    clock: ClockMode,
    calendars: Calendars,
) -> anyhow::Result<Running> {
    spawn_local(
        pool,
        ServeOptions {
            calendars,
            ..ServeOptions::local(clock)
        },
    )
    .await
}

/// Starts the server on 127.0.0.1 with a free port (and a free metrics port).
async fn spawn_local(pool: PgPool, options: ServeOptions) -> anyhow::Result<Running> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let metrics = TcpListener::bind("127.0.0.1:0").await?;
    let metrics_addr = metrics.local_addr()?;
    Ok(Running::spawn(addr, Some(metrics_addr), |stop| {
        serve(
            pool,
            ServeOptions {
                metrics: Some(metrics),
                ..options
            },
            listener,
            stop,
        )
    }))
}

/// Starts the server on 127.0.0.1 with a free port, serving TLS from `tls`.
pub async fn spawn_tls(
    pool: PgPool,
    clock: ClockMode,
    tls: junheng_edge::tls::TlsFiles,
) -> anyhow::Result<Running> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok(Running::spawn(addr, None, |stop| {
        serve(
            pool,
            ServeOptions {
                tls: Some(tls),
                ..ServeOptions::local(clock)
            },
            listener,
            stop,
        )
    }))
}

/// [`spawn_tls`] with the pages too, over TLS from the same certificate; returns where the
/// pages answer.
pub async fn spawn_tls_with_web(
    pool: PgPool,
    clock: ClockMode,
    tls: junheng_edge::tls::TlsFiles,
) -> anyhow::Result<(Running, std::net::SocketAddr)> {
    spawn_pages(
        pool,
        ServeOptions {
            tls: Some(tls),
            ..ServeOptions::local(clock)
        },
    )
    .await
}

/// Reflection (v1 and v1alpha alike) lists exactly the services this server adds: the
/// descriptor set also holds the scheduler's service, which is served elsewhere.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    use tonic::server::NamedService;
    type Health = tonic_health::pb::health_server::HealthServer<()>;
    let served = [
        <Health as NamedService>::NAME,
        <tonic_reflection::pb::v1::server_reflection_server::ServerReflectionServer<()> as NamedService>::NAME,
        <tonic_reflection::pb::v1alpha::server_reflection_server::ServerReflectionServer<()> as NamedService>::NAME,
        <CampaignServiceServer<()> as NamedService>::NAME,
        <SchoolServiceServer<()> as NamedService>::NAME,
        <SeedServiceServer<()> as NamedService>::NAME,
        <MentorServiceServer<()> as NamedService>::NAME,
        <PairingServiceServer<()> as NamedService>::NAME,
        <AcceptanceServiceServer<()> as NamedService>::NAME,
        <AwardServiceServer<()> as NamedService>::NAME,
        <SpreadsheetServiceServer<()> as NamedService>::NAME,
        <AdminServiceServer<()> as NamedService>::NAME,
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

/// Starts the server with its pages, each on a free port of 127.0.0.1; returns where the
/// pages answer too.
pub async fn spawn_with_web(
    pool: PgPool,
    clock: ClockMode,
) -> anyhow::Result<(Running, std::net::SocketAddr)> {
    spawn_pages(pool, ServeOptions::local(clock)).await
}

/// As [`spawn_with_web`], with these page options (the desk's scheduler client).
pub async fn spawn_with_web_options(
    pool: PgPool,
    clock: ClockMode,
    web_options: crate::web::WebOptions,
) -> anyhow::Result<(Running, std::net::SocketAddr)> {
    spawn_pages(
        pool,
        ServeOptions {
            web_options,
            ..ServeOptions::local(clock)
        },
    )
    .await
}

async fn spawn_pages(
    pool: PgPool,
    options: ServeOptions,
) -> anyhow::Result<(Running, std::net::SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let web = TcpListener::bind("127.0.0.1:0").await?;
    let web_addr = web.local_addr()?;
    let running = Running::spawn(addr, None, |stop| {
        serve(
            pool,
            ServeOptions {
                web: Some(web),
                ..options
            },
            listener,
            stop,
        )
    });
    Ok((running, web_addr))
}
