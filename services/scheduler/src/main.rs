//! `junheng-scheduler --config <file>`: runs the plan-and-dispatch loop until Ctrl-C/SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use junheng_scheduler::{ClockMode, GrpcWorkflow, NoWorkflow, Scheduler, Settings, Workflow};

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
    /// Log as JSON lines.
    #[arg(long)]
    json_logs: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.json_logs {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let _ = rustls::crypto::ring::default_provider().install_default();

    let settings = Arc::new(
        Settings::load(&args.config)
            .with_context(|| format!("loading {}", args.config.display()))?,
    );
    if settings.clock == ClockMode::Simulated {
        tracing::warn!(
            "SIMULATED CLOCK: \"now\" is read from the database clock row; never use this in production"
        );
    }
    let pool = junheng_store::connect(&settings.database_url, settings.max_connections)
        .await
        .context("connecting to PostgreSQL")?;
    let workflow: Arc<dyn Workflow> =
        match (&settings.workflow.url, &settings.workflow.office_token) {
            (Some(url), Some(token)) => Arc::new(GrpcWorkflow::new(url, token.clone())?),
            _ => {
                tracing::warn!(
                    "no workflow.url configured: ended notices are announced but not closed"
                );
                Arc::new(NoWorkflow)
            }
        };
    let scheduler = Scheduler::new(pool, settings, workflow)?;
    scheduler.run(shutdown_signal()).await?;
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
