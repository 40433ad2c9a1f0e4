//! `junheng-scheduler --config <file>`: runs the plan-and-dispatch loop until Ctrl-C/SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use junheng_scheduler::{ClockMode, GrpcWorkflow, NoWorkflow, Scheduler, Settings, Workflow};

/// glibc's allocator showed up as a sixth of the dispatcher's profile (many small, short-lived
/// buffers per HTTP request across threads); mimalloc handles that pattern far better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "junheng notification scheduler")]
struct Args {
    /// TOML configuration (see services/scheduler/config/local.toml).
    #[arg(
        long,
        env = "JUNHENG_SCHEDULER_CONFIG",
        default_value = "services/scheduler/config/local.toml"
    )]
    config: PathBuf,
    /// gRPC listen address (overrides `grpc_addr` and JUNHENG_SCHEDULER_GRPC_ADDR; default
    /// 127.0.0.1:50052). Port 0 picks a free port (logged).
    #[arg(long)]
    grpc_addr: Option<String>,
    /// The admin address for Prometheus metrics (`GET /metrics`); `off` serves none. Keep it
    /// off the public network.
    #[arg(
        long,
        env = "JUNHENG_SCHEDULER_METRICS_ADDR",
        default_value = "127.0.0.1:9465"
    )]
    metrics_addr: String,
    /// The calendars directory: `<year>.toml` files with the State Council's schedule of the
    /// years the shipped files do not cover, as the workflow's `--calendars-dir` (overrides
    /// JUNHENG_CALENDARS_DIR and `calendars_dir`; default deploy/calendars).
    #[arg(long)]
    calendars_dir: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long)]
    json_logs: bool,
    /// Export traces over OTLP/gRPC to this collector (e.g. `http://127.0.0.1:4317`); off when
    /// unset. Each delivery's span continues the trace of the call that caused it.
    #[arg(long, env = "JUNHENG_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// TLS for the gRPC listener (and mTLS), and the plaintext-off-loopback rule.
    #[command(flatten)]
    listen_tls: junheng_edge::tls::ListenArgs,
    /// Per-caller limits on the gRPC API.
    #[command(flatten)]
    limits: junheng_edge::limits::LimitArgs,
    /// The CA that signed the workflow's certificate (PEM): the workflow client speaks TLS
    /// and verifies the server (use an `https://` workflow.url).
    #[arg(long, env = "JUNHENG_WORKFLOW_CA")]
    workflow_ca: Option<PathBuf>,
    /// The name the workflow's certificate must carry (default: the URL's host).
    #[arg(long, env = "JUNHENG_WORKFLOW_TLS_DOMAIN")]
    workflow_tls_domain: Option<String>,
    /// The scheduler's client certificate for mTLS to the workflow (PEM); needs the key.
    #[arg(
        long,
        env = "JUNHENG_WORKFLOW_CLIENT_CERT",
        requires = "workflow_client_key"
    )]
    workflow_client_cert: Option<PathBuf>,
    /// The key of --workflow-client-cert (PEM).
    #[arg(
        long,
        env = "JUNHENG_WORKFLOW_CLIENT_KEY",
        requires = "workflow_client_cert"
    )]
    workflow_client_key: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let telemetry = junheng_edge::telemetry::Telemetry::init(&junheng_edge::telemetry::Options {
        service: "junheng-scheduler",
        json_logs: args.json_logs,
        otlp_endpoint: args.otlp_endpoint.clone(),
        default_filter: "info",
    })?;
    let _ = rustls::crypto::ring::default_provider().install_default();

    let mut settings = Settings::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    if let Some(a) = args.grpc_addr {
        settings.grpc_addr = a;
    }
    if let Some(dir) = args.calendars_dir {
        settings.calendars_dir = Some(dir);
        settings.load_calendars()?;
    }
    tracing::info!(
        dir = %settings.calendars_dir.as_deref().unwrap_or(std::path::Path::new(junheng_edge::calendars::DEFAULT_DIR)).display(),
        years = %settings.calendars.years().map(|y| y.to_string()).collect::<Vec<_>>().join(","),
        "working-day calendars loaded"
    );
    let settings = Arc::new(settings);
    // Refused before anything else happens: a plaintext listener stays on loopback unless the
    // operator says otherwise; the metrics port never speaks TLS.
    let tls = args.listen_tls.files();
    let insecure = args.listen_tls.insecure_listen;
    let grpc_addr: std::net::SocketAddr = settings.grpc_addr.parse()?; // validated by Settings
    junheng_edge::tls::check_listen("gRPC", grpc_addr, tls.is_some(), insecure)?;
    if let Ok(addr) = args.metrics_addr.parse::<std::net::SocketAddr>() {
        junheng_edge::tls::check_listen("metrics", addr, false, insecure)?;
    }
    if let Some(files) = &tls {
        files.server_config().context("--tls-cert/--tls-key")?;
    }
    if matches!(settings.clock, ClockMode::Simulated { .. }) {
        tracing::warn!(
            "SIMULATED CLOCK: \"now\" is read from the database clock row; never use this in production"
        );
    }
    // As the workflow: JUNHENG_MIGRATE_DATABASE_URL (the owner's URL) migrates as the owner and
    // grants the runtime privileges to the role of the database URL; JUNHENG_NO_MIGRATE=true
    // migrates nothing and refuses an older schema.
    let owner_url = std::env::var("JUNHENG_MIGRATE_DATABASE_URL").ok();
    let migrations = match (&owner_url, std::env::var("JUNHENG_NO_MIGRATE").as_deref()) {
        (Some(owner), _) => junheng_store::Migrations::ApplyAsOwner(owner),
        (None, Ok("true" | "1")) => junheng_store::Migrations::Require,
        _ => junheng_store::Migrations::Apply,
    };
    let pool = junheng_store::connect_with(
        &settings.database_url,
        settings.max_connections,
        std::time::Duration::from_millis(settings.db_acquire_timeout_ms),
        migrations,
    )
    .await
    .context("connecting to PostgreSQL")?;
    let client_tls = junheng_edge::tls::ClientTls {
        ca: args.workflow_ca.clone(),
        domain: args.workflow_tls_domain.clone(),
        cert: args.workflow_client_cert.clone(),
        key: args.workflow_client_key.clone(),
    };
    let workflow: Arc<dyn Workflow> =
        match (&settings.workflow.url, &settings.workflow.office_token) {
            (Some(url), Some(token)) => {
                Arc::new(GrpcWorkflow::with_tls(url, token.clone(), &client_tls)?)
            }
            _ => {
                tracing::warn!(
                    "no workflow.url configured: ended notices are announced but not closed"
                );
                Arc::new(NoWorkflow)
            }
        };
    let listener = tokio::net::TcpListener::bind(&settings.grpc_addr)
        .await
        .with_context(|| format!("binding the gRPC address {}", settings.grpc_addr))?;
    let scheduler = Scheduler::new(pool.clone(), settings.clone(), workflow)?;
    // A campaign in a year without calendar data is named now (and by the planner on every
    // pass, which plans nothing for it) rather than treated as all working days.
    for problem in junheng_scheduler::planning::calendar_problems(&pool, &settings).await? {
        tracing::error!("{problem}");
    }
    junheng_edge::systemd::spawn_watchdog(pool.clone());
    if args.metrics_addr != "off" {
        let parsed: std::net::SocketAddr = args.metrics_addr.parse().with_context(|| {
            format!(
                "--metrics-addr: `{}` is not an address like 127.0.0.1:9465 or `off`",
                args.metrics_addr
            )
        })?;
        let listener = tokio::net::TcpListener::bind(parsed)
            .await
            .with_context(|| format!("binding the metrics address {}", args.metrics_addr))?;
        let (pool, clock) = (pool.clone(), settings.clock);
        let scrape: junheng_edge::metrics::Scrape = Arc::new(move || {
            let pool = pool.clone();
            Box::pin(async move { junheng_scheduler::metrics::scrape(&pool, clock).await })
        });
        tokio::spawn(junheng_edge::metrics::serve_admin(
            listener,
            scrape,
            std::future::pending(),
        ));
    }

    // One shutdown signal for both the loop and the server.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(junheng_scheduler::grpc::serve(
        pool,
        settings,
        listener,
        junheng_scheduler::grpc::Edge {
            tls,
            limits: args.limits.limits(),
        },
        stopped(stop_rx.clone()),
    ));
    let looped = scheduler.run(stopped(stop_rx)).await;
    let served = server.await.context("gRPC server task");
    telemetry.shutdown().await;
    served??;
    looped?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
