//! `junheng-workflow`: the workflow gRPC server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Parser;
use junheng_workflow::{ClockMode, bootstrap};
use tokio::net::TcpListener;

/// The allocator the scheduler uses too: a call allocates many small, short-lived buffers
/// across threads (HTTP/2 frames, protobuf, JSON), a pattern glibc's allocator handles poorly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(version, about = "junheng workflow service (gRPC)")]
struct Args {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Where a bureau adds a year's State Council holiday schedule (`<year>.toml`); the shipped
    /// years (2004–2026) are compiled in and a file here replaces its year.
    #[arg(long, env = "JUNHENG_CALENDARS_DIR", default_value = junheng_workflow::calendars::DEFAULT_DIR)]
    calendars_dir: std::path::PathBuf,
    /// Address to serve gRPC on.
    #[arg(long, env = "JUNHENG_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// `real` or `simulated` (replays a season; refused when JUNHENG_ENV=production). Default:
    /// `simulated` with `--demo` (the demo campaign is dated 2020), else `real`.
    #[arg(long, env = "JUNHENG_CLOCK")]
    clock: Option<String>,
    /// Where the simulated clock starts the first time (RFC 3339).
    #[arg(
        long,
        env = "JUNHENG_SIM_START",
        default_value = "2020-03-02T09:00:00+08:00"
    )]
    sim_start: DateTime<Utc>,
    /// Demo mode: load the Changle 2020 demo county (fictional schools) on first start and run
    /// on the simulated clock unless `--clock real` is given. Labelled in logs, health
    /// (`junheng.demo`) and `GetServerInfo`; refused when JUNHENG_ENV=production.
    #[arg(long)]
    demo: bool,
    /// Where to write the demo tokens (they are shown once; tokens are stored hashed).
    #[arg(long, default_value = ".data/demo-tokens.txt")]
    demo_tokens_file: PathBuf,
    /// Use this office token instead of generating one (for scripted setups).
    #[arg(long, env = "JUNHENG_OFFICE_TOKEN", hide_env_values = true)]
    office_token: Option<String>,
    /// Write a newly created office token to this file (mode 0600) instead of printing it.
    #[arg(long)]
    office_token_file: Option<PathBuf>,
    /// The scheduler's own token (role `scheduler`: closes ended notices, nothing else): read
    /// from this file when it exists, else created and written there (mode 0600), never printed.
    #[arg(long, env = "JUNHENG_SCHEDULER_TOKEN_FILE")]
    scheduler_token_file: Option<PathBuf>,
    /// Register this secret as the scheduler's token (for deployments that hand the same secret
    /// to both services, e.g. from a credential or a Kubernetes secret).
    #[arg(long, env = "JUNHENG_SCHEDULER_TOKEN", hide_env_values = true)]
    scheduler_token: Option<String>,
    /// Log as JSON lines.
    #[arg(long, env = "JUNHENG_LOG_JSON")]
    log_json: bool,
    /// Export traces over OTLP/gRPC to this collector (e.g. `http://127.0.0.1:4317`); off when
    /// unset.
    #[arg(long, env = "JUNHENG_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// The admin address for Prometheus metrics (`GET /metrics`); `off` serves none. Keep it
    /// off the public network.
    #[arg(long, env = "JUNHENG_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    metrics_addr: String,
    /// Address to serve the pages on (公示栏 for the public, the leadership dashboard behind
    /// sign-in); `off` serves none. Its own port, apart from gRPC, so the
    /// public board can be exposed and limited separately from the bureau systems' API.
    #[arg(long, env = "JUNHENG_WEB_LISTEN", default_value = "127.0.0.1:8080")]
    web_listen: String,
    /// Apply pending database migrations and exit (the migration Job of a rolling update).
    #[arg(long)]
    migrate_only: bool,
    /// The schema owner's URL: migrations run as this role, then the role of DATABASE_URL
    /// gets the runtime privileges (INSERT and SELECT only on the audit log). Without it the
    /// service migrates with DATABASE_URL, as one role.
    #[arg(long, env = "JUNHENG_MIGRATE_DATABASE_URL", hide_env_values = true)]
    migrate_database_url: Option<String>,
    /// Migrate nothing; refuse to start unless the schema is current (the service runs as the
    /// runtime role and a migration Job ran first).
    #[arg(
        long,
        env = "JUNHENG_NO_MIGRATE",
        conflicts_with = "migrate_database_url"
    )]
    no_migrate: bool,
    /// After migrating with DATABASE_URL (the owner), grant this role the runtime privileges
    /// (the migration Job, whose DATABASE_URL is the owner's).
    #[arg(long, env = "JUNHENG_RUNTIME_ROLE")]
    runtime_role: Option<String>,
    /// Database pool size.
    #[arg(long, env = "JUNHENG_DB_POOL", default_value_t = 32)]
    db_pool: u32,
    /// How long a call waits for a database connection before it fails with UNAVAILABLE
    /// (milliseconds).
    #[arg(long, env = "JUNHENG_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    db_acquire_timeout_ms: u64,
    /// TLS for the gRPC listener (and mTLS), and the plaintext-off-loopback rule.
    #[command(flatten)]
    listen_tls: junheng_edge::tls::ListenArgs,
    /// Per-caller limits.
    #[command(flatten)]
    limits: junheng_edge::limits::LimitArgs,
    /// The scheduler the office's desk calls (as the signed-in person).
    #[command(flatten)]
    scheduler_client: junheng_workflow::web::SchedulerArgs,
    /// Idempotency records are kept this many days, then deleted (a key reused after that
    /// runs as a new command).
    #[arg(long, env = "JUNHENG_IDEMPOTENCY_RETENTION_DAYS", default_value_t = 30)]
    idempotency_retention_days: u64,
}

fn write_secret(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{secret}")?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let telemetry = junheng_edge::telemetry::Telemetry::init(&junheng_edge::telemetry::Options {
        service: "junheng-workflow",
        json_logs: args.log_json,
        otlp_endpoint: args.otlp_endpoint.clone(),
        default_filter: "info,sqlx=warn",
    })?;
    // Refused before anything else happens: a plaintext listener stays on loopback unless the
    // operator says otherwise; the metrics port never speaks TLS.
    let tls = args.listen_tls.files();
    let insecure = args.listen_tls.insecure_listen;
    junheng_edge::tls::check_listen("gRPC", args.listen, tls.is_some(), insecure)?;
    if let Ok(addr) = args.metrics_addr.parse::<SocketAddr>() {
        junheng_edge::tls::check_listen("metrics", addr, false, insecure)?;
    }
    // The pages speak TLS from the same certificate when one is given.
    if let Ok(addr) = args.web_listen.parse::<SocketAddr>() {
        junheng_edge::tls::check_listen("pages", addr, tls.is_some(), insecure)?;
    }
    if let Some(files) = &tls {
        files.server_config().context("--tls-cert/--tls-key")?;
    }
    let production = std::env::var("JUNHENG_ENV").is_ok_and(|e| e == "production");
    if args.demo && production {
        anyhow::bail!("refusing to start in demo mode (--demo) while JUNHENG_ENV=production");
    }
    let clock_name = args
        .clock
        .as_deref()
        .unwrap_or(if args.demo { "simulated" } else { "real" });
    let clock = match clock_name {
        "real" => ClockMode::Real,
        "simulated" => {
            if production {
                anyhow::bail!(
                    "refusing to start with the simulated clock while JUNHENG_ENV=production"
                );
            }
            tracing::warn!(start = %args.sim_start, "SIMULATED CLOCK: time moves only by AdvanceClock; never use this in production");
            ClockMode::Simulated {
                start: Some(args.sim_start),
            }
        }
        other => anyhow::bail!("--clock must be `real` or `simulated`, not `{other}`"),
    };
    let migrations = match (&args.migrate_database_url, args.no_migrate) {
        (Some(owner), _) => junheng_store::Migrations::ApplyAsOwner(owner),
        (None, true) => junheng_store::Migrations::Require,
        (None, false) => junheng_store::Migrations::Apply,
    };
    let pool = junheng_store::connect_with(
        &args.database_url,
        args.db_pool,
        std::time::Duration::from_millis(args.db_acquire_timeout_ms.max(1)),
        migrations,
    )
    .await
    .context("connecting to PostgreSQL")?;
    if let Some(role) = &args.runtime_role {
        junheng_store::grant_runtime(&pool, role)
            .await
            .with_context(|| format!("granting the runtime privileges to `{role}`"))?;
        tracing::info!(role, "runtime privileges granted");
    }
    if args.migrate_only {
        tracing::info!("migrations applied; exiting (--migrate-only)");
        return Ok(());
    }
    junheng_edge::systemd::spawn_watchdog(pool.clone());
    let created = bootstrap::ensure_office_token(&pool, args.office_token.as_deref()).await?;
    if let Some(token) = created.filter(|_| args.office_token.is_none()) {
        match &args.office_token_file {
            Some(path) => {
                write_secret(path, &token)?;
                println!("office token written to {} (stored hashed)", path.display());
            }
            None => println!("office token (shown once, stored hashed): {token}"),
        }
    }
    if let Some(t) = &args.scheduler_token {
        bootstrap::ensure_scheduler_token(&pool, Some(t)).await?;
    }
    if let Some(path) = &args.scheduler_token_file {
        let existing = std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let token = bootstrap::ensure_scheduler_token(&pool, existing.as_deref()).await?;
        if existing.is_none() {
            write_secret(path, &token)?;
            println!("scheduler token written to {}", path.display());
        }
    }
    // The simulated clock starts (or resumes where an earlier run left it) now, so the scheduler
    // and every replica read the same instant from the first moment.
    let now = {
        let mut conn = pool.acquire().await?;
        junheng_edge::clock::now(&mut conn, clock).await?
    };
    if args.demo {
        tracing::warn!(
            clock = clock.name(),
            "DEMO MODE: the Changle 2020 demo county with fictional schools; never enter real data here"
        );
        match bootstrap::load_demo(&pool, now).await? {
            Some(list) => {
                if let Some(dir) = args.demo_tokens_file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_secret(&args.demo_tokens_file, list.trim_end())?;
                println!(
                    "demo county loaded; its tokens are in {} (refused when JUNHENG_ENV=production)",
                    args.demo_tokens_file.display()
                );
            }
            None => println!(
                "demo county already loaded; its tokens are in {}",
                args.demo_tokens_file.display()
            ),
        }
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let metrics = match args.metrics_addr.as_str() {
        "off" => None,
        addr => Some({
            let parsed: SocketAddr = addr.parse().with_context(|| {
                format!("--metrics-addr: `{addr}` is not an address like 127.0.0.1:9464 or `off`")
            })?;
            TcpListener::bind(parsed)
                .await
                .with_context(|| format!("binding the metrics address {addr}"))?
        }),
    };
    let calendars = junheng_workflow::calendars::load(&args.calendars_dir)?;
    tracing::info!(
        dir = %args.calendars_dir.display(),
        years = %calendars.years().map(|y| y.to_string()).collect::<Vec<_>>().join(","),
        "working-day calendars loaded"
    );
    let web = match args.web_listen.as_str() {
        "off" => None,
        addr => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the pages address {addr}"))?,
        ),
    };
    let options = junheng_workflow::ServeOptions {
        clock,
        demo: args.demo,
        metrics,
        calendars,
        web,
        web_options: junheng_workflow::web::WebOptions {
            scheduler: args.scheduler_client.client(),
            ..Default::default()
        },
        tls,
        limits: args.limits.limits(),
        idempotency_retention: std::time::Duration::from_secs(
            args.idempotency_retention_days.max(1) * 24 * 3600,
        ),
    };
    let served = junheng_workflow::serve(pool, options, listener, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await;
    telemetry.shutdown().await;
    served
}
