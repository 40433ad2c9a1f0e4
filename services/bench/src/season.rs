//! `junheng-bench season`: a whole season (phases 1–5, March to September on the simulated
//! clock) replayed through the gRPC API at several county sizes, several campaigns side by side.
//!
//! The workflow service runs as a separate process (the release `junheng-workflow` binary next
//! to this one) so its peak RSS (VmHWM) can be read; the scheduler runs alongside it on the
//! same database with the simulated clock, writing its notifications to files in a temp dir.
//! The clock is global, so every campaign advances in lockstep: each step's calls for all
//! campaigns go out concurrently (bounded), then `AdvanceClock` once.
//!
//! Per campaign (schools in registration order): the first `seed_share` are nominated, noticed,
//! present two practices and are rated excellent by the three members of the phase-2 panel
//! (mentor.min_raters = 3, so all become mentors); the
//! rest are potentials, paired with the service's own proposal, get baselines, a few assistance
//! logs and scores from a panel of three; results notice; awards proposed and confirmed. The
//! end check: every campaign lists exactly one confirmed award per school.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::{StreamExt, TryStreamExt};
use junheng_proto::v1 as pb;
use junheng_proto::v1::acceptance_service_client::AcceptanceServiceClient;
use junheng_proto::v1::admin_service_client::AdminServiceClient;
use junheng_proto::v1::award_service_client::AwardServiceClient;
use junheng_proto::v1::campaign_service_client::CampaignServiceClient;
use junheng_proto::v1::mentor_service_client::MentorServiceClient;
use junheng_proto::v1::pairing_service_client::PairingServiceClient;
use junheng_proto::v1::school_service_client::SchoolServiceClient;
use junheng_proto::v1::seed_service_client::SeedServiceClient;
use sqlx::PgPool;
use tokio::process::{Child, Command};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::{OFFICE, auth};

#[derive(clap::Args, Debug)]
pub struct SeasonArgs {
    /// Admin URL of a PostgreSQL server where the benchmark may create databases.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// County sizes (schools in all campaigns together), one season each, on a fresh database.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    schools: Vec<usize>,
    /// Schools per campaign.
    #[arg(long, default_value_t = 500)]
    campaign_size: usize,
    /// Share of each campaign's schools that become seeds and mentors. With group_max 4,
    /// mentors × 4 must cover the potentials: 0.2 is the least that fits.
    #[arg(long, default_value_t = 0.2)]
    seed_share: f64,
    /// RPCs in flight at once.
    #[arg(long, default_value_t = 24)]
    concurrency: usize,
    /// HTTP/2 connections to the workflow service (calls are spread round-robin).
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// The workflow service's database pool size (`--db-pool`).
    #[arg(long, default_value_t = 32)]
    db_pool: u32,
    /// The `junheng-workflow` binary; default: next to this one.
    #[arg(long)]
    workflow_bin: Option<PathBuf>,
    /// The `junheng-scheduler` binary; default: next to this one.
    #[arg(long)]
    scheduler_bin: Option<PathBuf>,
    /// Run the workflow service alone.
    #[arg(long)]
    no_scheduler: bool,
    /// Keep the temp dir (service logs, scheduler outbox files) and print its path.
    #[arg(long)]
    keep: bool,
    /// After the last clock move, how long the scheduler may take to send everything due and
    /// handle every ended notice before the run fails.
    #[arg(long, default_value_t = 300)]
    catch_up_timeout_secs: u64,
}

/// Simulated instants of the season (Asia/Shanghai), as in tests/season.rs.
const START: &str = "2020-03-02T09:00:00+08:00";
const SEED_NOTICE_ENDED: &str = "2020-03-09T09:00:00+08:00";
const MENTOR_OPENS: &str = "2020-04-01T09:00:00+08:00";
const PAIRING_OPENS: &str = "2020-05-06T09:00:00+08:00";
const ACCEPTANCE_OPENS: &str = "2020-07-02T09:00:00+08:00";
const RESULTS_NOTICE_ENDED: &str = "2020-07-10T09:00:00+08:00";
const AWARDS_OPEN: &str = "2020-09-01T09:00:00+08:00";

/// Tables the scheduler writes; every other user table belongs to the workflow.
const SCHEDULER_TABLES: [&str; 5] = [
    "outbox",
    "delivery_attempts",
    "endpoint_budgets",
    "scheduler_cursors",
    "notice_expiries",
];

fn key() -> String {
    Uuid::new_v4().to_string()
}

fn seconds(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339")
        .timestamp()
}

/// The on-site level a panel finds at potential `i` of a campaign (as in tests/season.rs):
/// progress, compliance, compliance with one near miss, veto.
fn level(i: usize, indicator: &str) -> f64 {
    match i % 4 {
        0 => 80.0,
        1 => 65.0,
        2 if indicator == "culture" => 57.0,
        2 => 66.0,
        _ => 50.0,
    }
}

/// Channels and counters shared by every call.
struct Ctx {
    channels: Vec<Channel>,
    next: AtomicUsize,
    rpcs: AtomicU64,
    concurrency: usize,
}

impl Ctx {
    /// A channel for one RPC (round-robin), counted.
    fn ch(&self) -> Channel {
        self.rpcs.fetch_add(1, Ordering::Relaxed);
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.channels[i % self.channels.len()].clone()
    }
    fn campaigns(&self) -> CampaignServiceClient<Channel> {
        CampaignServiceClient::new(self.ch())
    }
    fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.ch())
    }
    fn seed(&self) -> SeedServiceClient<Channel> {
        SeedServiceClient::new(self.ch())
    }
    fn mentor(&self) -> MentorServiceClient<Channel> {
        MentorServiceClient::new(self.ch())
    }
    fn pairing(&self) -> PairingServiceClient<Channel> {
        PairingServiceClient::new(self.ch())
    }
    fn acceptance(&self) -> AcceptanceServiceClient<Channel> {
        AcceptanceServiceClient::new(self.ch())
    }
    fn awards(&self) -> AwardServiceClient<Channel> {
        AwardServiceClient::new(self.ch())
    }

    /// Runs `f` over `items` with at most `concurrency` calls in flight; results in order.
    async fn each<T, R, F, Fut>(&self, items: Vec<T>, f: F) -> anyhow::Result<Vec<R>>
    where
        F: Fn(T) -> Fut,
        Fut: Future<Output = anyhow::Result<R>>,
    {
        futures::stream::iter(items.into_iter().map(f))
            .buffered(self.concurrency)
            .try_collect()
            .await
    }

    async fn token(
        &self,
        name: String,
        role: pb::Role,
        school: &str,
    ) -> anyhow::Result<(String, String)> {
        let r = self
            .admin()
            .issue_token(auth(
                pb::IssueTokenRequest {
                    idempotency_key: key(),
                    name,
                    role: role as i32,
                    school_id: school.into(),
                    ..Default::default()
                },
                OFFICE,
            ))
            .await
            .context("IssueToken")?
            .into_inner();
        Ok((r.token, r.actor))
    }

    async fn advance(&self, to: &str) -> anyhow::Result<()> {
        // The timestamp type is prost's; filled in place so this crate need not name it.
        let mut req = pb::AdvanceClockRequest {
            idempotency_key: key(),
            to: Some(Default::default()),
        };
        if let Some(t) = req.to.as_mut() {
            t.seconds = seconds(to);
        }
        self.admin()
            .advance_clock(auth(req, OFFICE))
            .await
            .with_context(|| format!("AdvanceClock to {to}"))?;
        Ok(())
    }

    async fn open(&self, camp: &Camp, phase: pb::Phase) -> anyhow::Result<()> {
        self.campaigns()
            .open_phase(auth(
                pb::OpenPhaseRequest {
                    idempotency_key: key(),
                    campaign_id: camp.id.clone(),
                    phase: phase as i32,
                },
                OFFICE,
            ))
            .await
            .with_context(|| format!("OpenPhase {phase:?} of {}", camp.code))?;
        Ok(())
    }

    async fn complete(&self, camp: &Camp, phase: pb::Phase) -> anyhow::Result<()> {
        self.campaigns()
            .complete_phase(auth(
                pb::CompletePhaseRequest {
                    idempotency_key: key(),
                    campaign_id: camp.id.clone(),
                    phase: phase as i32,
                },
                OFFICE,
            ))
            .await
            .with_context(|| format!("CompletePhase {phase:?} of {}", camp.code))?;
        Ok(())
    }

    async fn close_notice(&self, camp: &Camp, notice: &str) -> anyhow::Result<()> {
        self.seed()
            .close_notice(auth(
                pb::CloseNoticeRequest {
                    idempotency_key: key(),
                    notice_id: notice.into(),
                },
                OFFICE,
            ))
            .await
            .with_context(|| format!("CloseNotice of {}", camp.code))?;
        Ok(())
    }
}

/// One campaign and what the replay learns about it on the way.
#[derive(Default)]
struct Camp {
    id: String,
    code: String,
    indicators: Vec<String>,
    /// Seeds first (`n_seeds`), then potentials, in registration order.
    schools: Vec<pb::School>,
    n_seeds: usize,
    dept: String,
    leader: String,
    /// (token, actor) of the phase-2 panel.
    raters: Vec<(String, String)>,
    /// (token, actor) of the acceptance panel.
    panel: Vec<(String, String)>,
    /// seed school id → its school token.
    seed_tokens: HashMap<String, String>,
    notice: String,
    groups: Vec<pb::PairingGroup>,
}

impl Camp {
    fn seeds(&self) -> &[pb::School] {
        &self.schools[..self.n_seeds]
    }
    fn potentials(&self) -> &[pb::School] {
        &self.schools[self.n_seeds..]
    }
    fn scores(&self, f: impl Fn(&str) -> f64) -> Vec<pb::IndicatorScore> {
        self.indicators
            .iter()
            .map(|i| pb::IndicatorScore {
                indicator: i.clone(),
                score: f(i),
                note: String::new(),
            })
            .collect()
    }
}

/// A child process whose peak RSS and CPU time we read from /proc.
struct Service {
    name: &'static str,
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Service {
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> anyhow::Result<Service> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id().context("child pid")?;
        Ok(Service {
            name,
            child,
            pid,
            log,
        })
    }

    fn status_kb(&self, field: &str) -> anyhow::Result<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let line = s
            .lines()
            .find(|l| l.starts_with(field))
            .with_context(|| format!("{field} in /proc/{}/status", self.pid))?;
        Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
    }

    /// Peak resident set size in MB.
    fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        Ok(self.status_kb("VmHWM:")? as f64 / 1024.0)
    }

    /// User + system CPU seconds so far.
    fn cpu_secs(&self) -> f64 {
        cpu_of(self.pid)
    }

    fn alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); log tail:\n{}",
                self.name,
                tail(&self.log)
            );
        }
        Ok(())
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Stops the service with SIGTERM and waits for it to exit (SIGKILL after `grace`).
    async fn terminate(mut self, grace: Duration) -> anyhow::Result<()> {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?
            .success();
        ensure!(ok, "could not signal {}", self.name);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                ensure!(
                    status.success(),
                    "{} exited with {status} on SIGTERM; log tail:\n{}",
                    self.name,
                    tail(&self.log)
                );
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("{} did not exit within {grace:?} of SIGTERM", self.name)
            }
        }
    }
}

fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    Ok(me.with_file_name(name))
}

/// A fresh, empty database; the services migrate it when they connect.
pub(crate) async fn create_db(admin: &str) -> anyhow::Result<String> {
    let name = format!("jh_season_{}", Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let mut url: url_lite::Url = admin.parse()?;
    url.set_db(&name);
    Ok(url.to_string())
}

/// Just enough URL editing to replace the database name of a `postgres://` URL.
mod url_lite {
    pub struct Url {
        head: String,
        query: String,
    }
    impl std::str::FromStr for Url {
        type Err = anyhow::Error;
        fn from_str(s: &str) -> anyhow::Result<Url> {
            let (base, query) = match s.split_once('?') {
                Some((b, q)) => (b, format!("?{q}")),
                None => (s, String::new()),
            };
            let scheme_end = base.find("://").map_or(0, |i| i + 3);
            let head = match base[scheme_end..].find('/') {
                Some(i) => base[..scheme_end + i].to_string(),
                None => base.to_string(),
            };
            Ok(Url { head, query })
        }
    }
    impl Url {
        pub fn set_db(&mut self, db: &str) {
            self.head = format!("{}/{db}", self.head);
        }
    }
    impl std::fmt::Display for Url {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}{}", self.head, self.query)
        }
    }
}

/// Rows inserted + updated + deleted so far, (workflow tables, scheduler tables).
async fn rows_written(pool: &PgPool) -> anyhow::Result<(i64, i64)> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT relname::text, (n_tup_ins + n_tup_upd + n_tup_del)::bigint FROM pg_stat_user_tables",
    )
    .fetch_all(pool)
    .await?;
    let mut out = (0, 0);
    for (t, n) in rows {
        if SCHEDULER_TABLES.contains(&t.as_str()) {
            out.1 += n;
        } else {
            out.0 += n;
        }
    }
    Ok(out)
}

/// Rows stored per table (exact counts), for the report.
async fn rows_stored(pool: &PgPool) -> anyhow::Result<Vec<(String, i64)>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables WHERE relname NOT LIKE '\\_sqlx%' ORDER BY relname",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for t in tables {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
            .fetch_one(pool)
            .await?;
        out.push((t, n));
    }
    Ok(out)
}

/// CPU seconds (user + system) of a process, 0 when it is gone.
fn cpu_of(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Busy CPU seconds of the whole machine (all cores), from /proc/stat.
fn machine_busy() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().next() else {
        return 0.0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy: u64 = v.iter().take(8).sum::<u64>() - v.get(3).unwrap_or(&0) - v.get(4).unwrap_or(&0);
    busy as f64 / 100.0
}

/// One step of the season, timed, with where the CPU went.
struct Step {
    name: &'static str,
    secs: f64,
    rpcs: u64,
    wf: f64,
    sched: f64,
    pg: f64,
    bench: f64,
    other: f64,
}

const STEP_HEADER: &str = "step                                         secs     rpcs    rpc/s |  cpu s: workflow sched  postgres  bench  other";

fn print_step(s: &Step) {
    println!(
        "{:<40} {:>8.2} {:>8} {:>8.0} | {:>17.1} {:>6.1} {:>9.1} {:>6.1} {:>6.1}",
        s.name,
        s.secs,
        s.rpcs,
        s.rpcs as f64 / s.secs.max(1e-9),
        s.wf,
        s.sched,
        s.pg,
        s.bench,
        s.other
    );
}

#[derive(Clone)]
struct Mark {
    t: Instant,
    rpcs: u64,
    wf: f64,
    sched: f64,
    pg: HashMap<u32, f64>,
    bench: f64,
    machine: f64,
}

struct Clocks<'a> {
    ctx: &'a Ctx,
    wf: &'a Service,
    sched: Option<&'a Service>,
    /// Lists PostgreSQL's processes (backends and background workers) at each lap.
    stats: &'a PgPool,
    steps: Vec<Step>,
    at: Mark,
}

impl<'a> Clocks<'a> {
    async fn new(
        ctx: &'a Ctx,
        wf: &'a Service,
        sched: Option<&'a Service>,
        stats: &'a PgPool,
    ) -> anyhow::Result<Self> {
        let mut c = Clocks {
            ctx,
            wf,
            sched,
            stats,
            steps: Vec::new(),
            at: Mark {
                t: Instant::now(),
                rpcs: 0,
                wf: 0.0,
                sched: 0.0,
                pg: HashMap::new(),
                bench: 0.0,
                machine: 0.0,
            },
        };
        c.at = c.mark().await?;
        println!("{STEP_HEADER}");
        Ok(c)
    }

    async fn mark(&self) -> anyhow::Result<Mark> {
        let pids: Vec<i32> = sqlx::query_scalar("SELECT pid FROM pg_stat_activity")
            .fetch_all(self.stats)
            .await?;
        Ok(Mark {
            t: Instant::now(),
            rpcs: self.ctx.rpcs.load(Ordering::Relaxed),
            wf: self.wf.cpu_secs(),
            sched: self.sched.map_or(0.0, Service::cpu_secs),
            pg: pids
                .into_iter()
                .map(|p| (p as u32, cpu_of(p as u32)))
                .collect(),
            bench: cpu_of(std::process::id()),
            machine: machine_busy(),
        })
    }

    async fn lap(&mut self, name: &'static str) -> anyhow::Result<()> {
        let now = self.mark().await?;
        let a = &self.at;
        // Backends that started during the step count from zero.
        let pg: f64 = now
            .pg
            .iter()
            .map(|(pid, c)| c - a.pg.get(pid).copied().unwrap_or(0.0))
            .sum();
        let (wf, sched, bench) = (now.wf - a.wf, now.sched - a.sched, now.bench - a.bench);
        let step = Step {
            name,
            secs: (now.t - a.t).as_secs_f64(),
            rpcs: now.rpcs - a.rpcs,
            wf,
            sched,
            pg,
            bench,
            other: ((now.machine - a.machine) - wf - sched - pg - bench).max(0.0),
        };
        print_step(&step);
        self.steps.push(step);
        self.at = now;
        Ok(())
    }
}

/// What one season run measured.
struct Outcome {
    schools: usize,
    campaigns: usize,
    secs: f64,
    rpcs: u64,
    wf_rss: f64,
    sched_rss: Option<f64>,
    written: (i64, i64),
    /// The scheduler's catch-up after the last clock move, in seconds (not in `secs`).
    catch_up: Option<f64>,
}

pub async fn run(args: SeasonArgs) -> anyhow::Result<()> {
    ensure!(
        args.campaign_size >= 20,
        "--campaign-size must be at least 20"
    );
    ensure!(
        args.concurrency >= 1 && args.channels >= 1,
        "--concurrency and --channels ≥ 1"
    );
    let workflow_bin = match &args.workflow_bin {
        Some(p) => p.clone(),
        None => sibling("junheng-workflow")?,
    };
    ensure!(
        workflow_bin.exists(),
        "{} not found: cargo build --release -p junheng-workflow (or pass --workflow-bin)",
        workflow_bin.display()
    );
    let scheduler_bin = if args.no_scheduler {
        None
    } else {
        let p = match &args.scheduler_bin {
            Some(p) => p.clone(),
            None => sibling("junheng-scheduler")?,
        };
        ensure!(
            p.exists(),
            "{} not found: cargo build --release -p junheng-scheduler (or pass --scheduler-bin / --no-scheduler)",
            p.display()
        );
        Some(p)
    };
    println!(
        "season: campaigns of {} schools ({}% seeds), {} RPCs in flight over {} connections, workflow db pool {}, durable PostgreSQL (fsync on){}",
        args.campaign_size,
        (args.seed_share * 100.0).round(),
        args.concurrency,
        args.channels,
        args.db_pool,
        if scheduler_bin.is_some() {
            ", scheduler alongside"
        } else {
            ", no scheduler"
        }
    );
    let mut outcomes = Vec::new();
    for &n in &args.schools {
        let o = one_size(&args, n, &workflow_bin, scheduler_bin.as_deref()).await?;
        outcomes.push(o);
    }

    println!();
    println!(
        "{:>8} {:>5} {:>9} {:>8} {:>9} {:>10} {:>12} {:>13} {:>11}",
        "schools",
        "camp",
        "secs",
        "rpcs",
        "rpc/s",
        "rows/s",
        "wf rss MB",
        "sched rss MB",
        "ms/school"
    );
    for o in &outcomes {
        println!(
            "{:>8} {:>5} {:>9.1} {:>8} {:>9.0} {:>10.0} {:>12.1} {:>13} {:>11.2}",
            o.schools,
            o.campaigns,
            o.secs,
            o.rpcs,
            o.rpcs as f64 / o.secs,
            (o.written.0 + o.written.1) as f64 / o.secs,
            o.wf_rss,
            o.sched_rss.map_or("-".into(), |r| format!("{r:.1}")),
            o.secs * 1e3 / o.schools as f64,
        );
    }
    if let (Some(small), Some(large)) = (
        outcomes.iter().min_by_key(|o| o.schools),
        outcomes.iter().max_by_key(|o| o.schools),
    ) && large.schools > small.schools
    {
        let per = |o: &Outcome| o.secs / o.schools as f64;
        let growth = per(large) / per(small);
        let rss_growth = large.wf_rss / small.wf_rss;
        println!(
            "growth {}→{} schools ({}×): time per school ×{:.2} ({}), workflow peak RSS ×{:.2}",
            small.schools,
            large.schools,
            large.schools / small.schools,
            growth,
            if growth <= 1.10 {
                "linear or better"
            } else {
                "WORSE than linear"
            },
            rss_growth
        );
    }
    let last = outcomes
        .iter()
        .max_by_key(|o| o.schools)
        .context("no size measured")?;
    let rss = last.sched_rss.map_or(last.wf_rss, |s| s.max(last.wf_rss));
    println!(
        "season schools={} secs={:.1} rss_mb={:.1}{}",
        last.schools,
        last.secs,
        rss,
        last.catch_up
            .map_or(String::new(), |c| format!(" catch_up_secs={c:.1}"))
    );
    Ok(())
}

async fn one_size(
    args: &SeasonArgs,
    n: usize,
    workflow_bin: &Path,
    scheduler_bin: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let n_camps = n.div_ceil(args.campaign_size);
    let db_url = create_db(&args.database_url).await?;
    let dir = std::env::temp_dir().join(format!("jh-season-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("outbox"))?;

    // The workflow service: a process of its own on a free port, simulated clock.
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(workflow_bin);
    cmd.args(["--database-url", &db_url])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--clock", "simulated", "--sim-start", START])
        .args(["--office-token", OFFICE])
        .args(["--db-pool", &args.db_pool.to_string()])
        .env("DATABASE_URL", &db_url)
        .env_remove("JUNHENG_ENV");
    let mut wf = Service::spawn("junheng-workflow", cmd, dir.join("workflow.log"))?;
    let first = wait_ready(&mut wf, &url).await?;

    // The scheduler alongside, on the same database, simulated clock, files for every channel.
    let mut sched = match scheduler_bin {
        Some(bin) => {
            let config = dir.join("scheduler.toml");
            std::fs::write(
                &config,
                format!(
                    r#"database_url = "{db_url}"
clock = "simulated"
grpc_addr = "127.0.0.1:0"
max_connections = 8

[workflow]
url = "{url}"
office_token = "{OFFICE}"

[dispatch]
rate_limits_enabled = false

[endpoints.files]
kind = "file"
dir = "{}"

[recipients]
office = ["files"]
leadership = ["files"]
department = ["files"]
panel = ["files"]
schools = ["files"]
"#,
                    dir.join("outbox").display()
                ),
            )?;
            let mut cmd = Command::new(bin);
            cmd.arg("--config").arg(&config);
            // The environment overrides the file: point it at the season's database, not ours.
            cmd.env("DATABASE_URL", &db_url);
            for (k, _) in std::env::vars() {
                if k.starts_with("JUNHENG_") {
                    cmd.env_remove(k);
                }
            }
            Some(Service::spawn(
                "junheng-scheduler",
                cmd,
                dir.join("scheduler.log"),
            )?)
        }
        None => None,
    };

    let opts: sqlx::postgres::PgConnectOptions = db_url.parse()?;
    let stats = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts)
        .await?;
    let mut channels = vec![first];
    for _ in 1..args.channels {
        channels.push(Channel::from_shared(url.clone())?.connect().await?);
    }
    let ctx = &Ctx {
        channels,
        next: AtomicUsize::new(0),
        rpcs: AtomicU64::new(0),
        concurrency: args.concurrency,
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(s) = sched.as_mut() {
        s.alive()?;
    }
    let before = rows_written(&stats).await?;

    println!();
    println!(
        "== {n} schools: {n_camps} campaigns of {} ==",
        args.campaign_size
    );
    let started = Instant::now();
    let mut clocks = Clocks::new(ctx, &wf, sched.as_ref(), &stats).await?;
    let camps = season(ctx, args, n, n_camps, &mut clocks).await;
    let secs = started.elapsed().as_secs_f64();
    let rpcs = ctx.rpcs.load(Ordering::Relaxed);
    let steps = std::mem::take(&mut clocks.steps);
    drop(clocks);
    let camps = match camps {
        Ok(c) => c,
        Err(e) => {
            eprintln!("workflow log tail:\n{}", tail(&wf.log));
            return Err(e);
        }
    };
    wf.alive()?;
    if let Some(s) = sched.as_mut() {
        s.alive()?;
    }
    // The scheduler's catch-up (its own figure, not in the season's time): after the last
    // clock move, until nothing due at the final instant is pending, held or sending and every
    // ended notice is announced and closed.
    let catch_up = match sched.as_mut() {
        Some(s) => {
            Some(catch_up(&stats, s, Duration::from_secs(args.catch_up_timeout_secs)).await?)
        }
        None => None,
    };

    // The end check (not timed): one confirmed award per school in every campaign.
    let t = Instant::now();
    let awards = ctx
        .each(camps.iter().collect(), |c| async move {
            let list = ctx
                .awards()
                .list_awards(auth(
                    pb::ListAwardsRequest {
                        campaign_id: c.id.clone(),
                        ..Default::default()
                    },
                    &c.leader,
                ))
                .await
                .with_context(|| format!("ListAwards of {}", c.code))?
                .into_inner();
            let distinct: HashSet<&str> =
                list.awards.iter().map(|a| a.school_id.as_str()).collect();
            ensure!(
                list.awards.len() == c.schools.len() && distinct.len() == c.schools.len(),
                "{}: {} awards for {} distinct schools, expected one for each of {}",
                c.code,
                list.awards.len(),
                distinct.len(),
                c.schools.len()
            );
            let vetoes = list
                .awards
                .iter()
                .filter(|a| a.class == pb::AwardClass::Veto as i32)
                .count();
            Ok((list.awards.len(), vetoes))
        })
        .await?;
    let total_awards: usize = awards.iter().map(|a| a.0).sum();
    let total_vetoes: usize = awards.iter().map(|a| a.1).sum();
    let check_secs = t.elapsed().as_secs_f64();

    // Peak RSS before stopping; stopping closes their connections, which flushes table stats.
    let wf_rss = wf.peak_rss_mb()?;
    let wf_cpu = wf.cpu_secs();
    let sched_rss = sched.as_ref().map(Service::peak_rss_mb).transpose()?;
    let sched_cpu = sched.as_ref().map(Service::cpu_secs);
    let outbox: Vec<(String, i64)> = if sched.is_some() {
        sqlx::query_as("SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")
            .fetch_all(&stats)
            .await?
    } else {
        Vec::new()
    };
    // SIGTERM: the scheduler finishes its tick and exits on its own.
    if let Some(s) = sched {
        s.terminate(Duration::from_secs(30)).await?;
    }
    wf.stop().await?;
    let unsent = if catch_up.is_some() {
        let final_at = final_instant(&stats).await?;
        let (left, dead) = unsent(&stats, final_at).await?;
        ensure!(
            left == 0 && dead == 0,
            "{left} outbox rows due by {final_at} are still unsent and {dead} are dead after the scheduler stopped"
        );
        Some(left)
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rows_written(&stats).await?;
    let written = (after.0 - before.0, after.1 - before.1);
    let stored = rows_stored(&stats).await?;
    stats.close().await;
    let files = std::fs::read_dir(dir.join("outbox"))
        .map(|d| d.count())
        .unwrap_or(0);

    let sum = |f: fn(&Step) -> f64| steps.iter().map(f).sum::<f64>();
    print_step(&Step {
        name: "season total",
        secs,
        rpcs,
        wf: sum(|s| s.wf),
        sched: sum(|s| s.sched),
        pg: sum(|s| s.pg),
        bench: sum(|s| s.bench),
        other: sum(|s| s.other),
    });
    println!(
        "check: {total_awards} confirmed awards = {n} schools, one per school in each of {} campaigns ({total_vetoes} vetoes) [{check_secs:.2}s, not timed]",
        camps.len()
    );
    println!(
        "rows written (ins+upd+del): workflow {} + scheduler {} = {} → {:.0} rows/s",
        written.0,
        written.1,
        written.0 + written.1,
        (written.0 + written.1) as f64 / secs
    );
    println!(
        "rows stored: {}",
        stored
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{t}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let (Some(c), Some(left)) = (catch_up, unsent) {
        println!(
            "scheduler catch-up after the last clock move: {c:.1}s (pending/held/sending due rows → 0, every ended notice handled); {left} due rows unsent after SIGTERM"
        );
    }
    if sched_cpu.is_some() {
        println!(
            "scheduler: outbox {} ; {files} files written",
            outbox
                .iter()
                .map(|(s, n)| format!("{s}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!(
        "workflow: peak RSS {wf_rss:.1} MB, CPU {wf_cpu:.1}s; scheduler: peak RSS {}, CPU {}",
        sched_rss.map_or("-".into(), |r| format!("{r:.1} MB")),
        sched_cpu.map_or("-".into(), |c| format!("{c:.1}s"))
    );
    println!(
        "{n} schools: {secs:.1}s wall, {rpcs} RPCs ({:.0}/s), {:.0} rows written/s",
        rpcs as f64 / secs,
        (written.0 + written.1) as f64 / secs
    );
    if args.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(Outcome {
        schools: n,
        campaigns: camps.len(),
        secs,
        rpcs,
        wf_rss,
        sched_rss,
        written,
        catch_up,
    })
}

/// The simulated instant the season ended at (the last clock move).
async fn final_instant(stats: &PgPool) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    sqlx::query_scalar("SELECT simulated_now FROM clock")
        .fetch_one(stats)
        .await
        .context("reading the simulated clock")
}

/// Outbox rows due by `at` that are not sent (pending, held or sending), and dead letters.
async fn unsent(stats: &PgPool, at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status IN ('pending', 'held', 'sending') AND not_before <= $1),
                count(*) FILTER (WHERE status = 'dead')
         FROM outbox",
    )
    .bind(at)
    .fetch_one(stats)
    .await?)
}

/// What the scheduler still owes at `at`: unsent due rows, ended notices not yet announced and
/// closed, and events its planner has not read yet (a phase summary may still follow).
async fn owed(
    stats: &PgPool,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(i64, i64, i64)> {
    let (rows, _) = unsent(stats, at).await?;
    let notices: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notices n LEFT JOIN notice_expiries e ON e.notice_id = n.id
         WHERE n.ends_at <= $1 AND e.closed_at IS NULL",
    )
    .bind(at)
    .fetch_one(stats)
    .await?;
    // Campaigns' events only: the system chain (tokens issued, campaigns created; the nil
    // campaign id) is no campaign's and the planner never reads it. Counting it kept every
    // run waiting for the whole timeout.
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e
         JOIN campaigns c ON c.id = e.campaign_id
         LEFT JOIN scheduler_cursors s ON s.campaign_id = e.campaign_id AND s.kind = 'events'
         WHERE s.event_xid IS NULL OR (e.xid, e.id) > (s.event_xid::xid8, s.event_id)",
    )
    .fetch_one(stats)
    .await?;
    Ok((rows, notices, events))
}

/// Waits until the scheduler owes nothing at the final instant; fails after `timeout`.
/// Returns the seconds it took.
async fn catch_up(stats: &PgPool, sched: &mut Service, timeout: Duration) -> anyhow::Result<f64> {
    let t = Instant::now();
    let at = final_instant(stats).await?;
    loop {
        sched.alive()?;
        let owed = owed(stats, at).await?;
        if owed == (0, 0, 0) {
            return Ok(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > timeout {
            bail!(
                "the scheduler did not catch up within {timeout:?} after the last clock move: {} due rows unsent, {} ended notices not handled, {} events not read; log tail:\n{}",
                owed.0,
                owed.1,
                owed.2,
                tail(&sched.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the workflow answers GetServerInfo (it migrates the database first).
async fn wait_ready(wf: &mut Service, url: &str) -> anyhow::Result<Channel> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        wf.alive()?;
        if let Ok(ch) = Channel::from_shared(url.to_string())?.connect().await {
            let info = AdminServiceClient::new(ch.clone())
                .get_server_info(auth(pb::GetServerInfoRequest {}, OFFICE))
                .await;
            if let Ok(info) = info {
                ensure!(
                    info.get_ref().clock_mode == "simulated",
                    "the workflow is not on the simulated clock"
                );
                return Ok(ch);
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the workflow did not answer within 60 s; log:\n{}",
                tail(&wf.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The season for `n` schools in `n_camps` campaigns; returns the campaigns.
async fn season(
    ctx: &Ctx,
    args: &SeasonArgs,
    n: usize,
    n_camps: usize,
    clocks: &mut Clocks<'_>,
) -> anyhow::Result<Vec<Camp>> {
    let size = args.campaign_size;
    let run = Uuid::new_v4().simple().to_string()[..8].to_string();

    // Setup: campaigns, schools, the people who act in them.
    let mut camps: Vec<Camp> = ctx
        .each((0..n_camps).collect(), |k| {
            let run = run.clone();
            async move {
                let in_camp = size.min(n - k * size);
                let code = format!("bench-{run}-{k:03}");
                let toml = junheng_workflow::bootstrap::CHANGLE_2020
                    .replace("code = \"changle-2020\"", &format!("code = \"{code}\""));
                ensure!(toml.contains(&code), "campaign code not replaced");
                let c = ctx
                    .campaigns()
                    .create_campaign(auth(
                        pb::CreateCampaignRequest {
                            idempotency_key: key(),
                            definition_toml: toml,
                        },
                        OFFICE,
                    ))
                    .await
                    .context("CreateCampaign")?
                    .into_inner();
                let schools: Vec<pb::NewSchool> = (0..in_camp)
                    .map(|i| pb::NewSchool {
                        code: format!("{:010}", 3_707_000_000u64 + (k * size + i) as u64),
                        name: format!("基准{k}校{i}"),
                        level: match i % 3 {
                            0 => pb::SchoolLevel::Primary,
                            1 => pb::SchoolLevel::Junior,
                            _ => pb::SchoolLevel::NineYear,
                        } as i32,
                        town: junheng_workflow::bootstrap::TOWNS[i % 8].into(),
                        principal: format!("校长{k}-{i}"),
                        contacts: vec![pb::Contact {
                            name: "校长".into(),
                            email: format!("s{k}-{i}@schools.example"),
                            mobile: String::new(),
                            robots: vec![],
                        }],
                    })
                    .collect();
                let schools = SchoolServiceClient::new(ctx.ch())
                    .register_schools(auth(
                        pb::RegisterSchoolsRequest {
                            idempotency_key: key(),
                            campaign_id: c.id.clone(),
                            schools,
                        },
                        OFFICE,
                    ))
                    .await
                    .context("RegisterSchools")?
                    .into_inner()
                    .schools;
                ensure!(schools.len() == in_camp, "registered {} schools", schools.len());
                let n_seeds = ((in_camp as f64) * args.seed_share).ceil() as usize;
                ensure!(
                    n_seeds * 4 >= in_camp - n_seeds,
                    "{n_seeds} mentors cannot take {} potentials in groups of 4: raise --seed-share",
                    in_camp - n_seeds
                );
                let dept = ctx.token(format!("业务科室{k}"), pb::Role::Department, "").await?.0;
                let leader = ctx.token(format!("领导{k}"), pb::Role::Leader, "").await?.0;
                let mut raters = Vec::new();
                for r in 0..3 {
                    raters.push(ctx.token(format!("评委{k}-{r}"), pb::Role::Panel, "").await?);
                }
                let mut panel = Vec::new();
                for m in 0..3 {
                    panel.push(ctx.token(format!("验收组{k}-{m}"), pb::Role::Panel, "").await?);
                }
                Ok(Camp {
                    id: c.id,
                    code,
                    indicators: c.indicators.iter().map(|i| i.code.clone()).collect(),
                    schools,
                    n_seeds,
                    dept,
                    leader,
                    raters,
                    panel,
                    ..Camp::default()
                })
            }
        })
        .await?;
    clocks.lap("setup: campaigns, schools, tokens").await?;

    // Phase 1 (March): nominate the seeds, notice, close, complete.
    ctx.each(camps.iter().collect(), |c| {
        ctx.open(c, pb::Phase::SeedDesignation)
    })
    .await?;
    let nominations: Vec<(&Camp, &pb::School)> = camps
        .iter()
        .flat_map(|c| c.seeds().iter().map(move |s| (c, s)))
        .collect();
    ctx.each(nominations, |(c, s)| async move {
        ctx.seed()
            .nominate(auth(
                pb::NominateRequest {
                    idempotency_key: key(),
                    school_id: s.id.clone(),
                    expected_version: 0,
                    basis: "达标".into(),
                },
                &c.dept,
            ))
            .await
            .with_context(|| format!("Nominate in {}", c.code))?;
        Ok(())
    })
    .await?;
    let notices = ctx
        .each(camps.iter().collect(), |c| async move {
            Ok(ctx
                .seed()
                .publish_notice(auth(
                    pb::PublishNoticeRequest {
                        idempotency_key: key(),
                        campaign_id: c.id.clone(),
                        kind: pb::NoticeKind::SeedCandidates as i32,
                        school_ids: c.seeds().iter().map(|s| s.id.clone()).collect(),
                        title: String::new(),
                    },
                    OFFICE,
                ))
                .await
                .with_context(|| format!("PublishNotice of {}", c.code))?
                .into_inner()
                .id)
        })
        .await?;
    for (c, id) in camps.iter_mut().zip(notices) {
        c.notice = id;
    }
    clocks.lap("1 seeds: open, nominate, notice").await?;
    ctx.advance(SEED_NOTICE_ENDED).await?;
    ctx.each(camps.iter().collect(), |c| async move {
        ctx.close_notice(c, &c.notice).await?;
        ctx.complete(c, pb::Phase::SeedDesignation).await
    })
    .await?;
    clocks.lap("1 seeds: advance, close, complete").await?;

    // Phase 2 (April): the office appoints a panel of three, every seed presents, the panel
    // rates it excellent; confirm mentors.
    ctx.advance(MENTOR_OPENS).await?;
    ctx.each(camps.iter().collect(), |c| async move {
        ctx.open(c, pb::Phase::MentorSelection).await?;
        let members = c
            .raters
            .iter()
            .enumerate()
            .map(|(m, (_, actor))| pb::MentorPanelMember {
                actor: actor.clone(),
                name: format!("评委{m}"),
                affiliation: if m < 2 {
                    pb::Affiliation::Department
                } else {
                    pb::Affiliation::HighSchool
                } as i32,
                school_id: String::new(),
            })
            .collect();
        ctx.mentor()
            .form_mentor_panel(auth(
                pb::FormMentorPanelRequest {
                    idempotency_key: key(),
                    campaign_id: c.id.clone(),
                    members,
                },
                OFFICE,
            ))
            .await
            .with_context(|| format!("FormMentorPanel of {}", c.code))?;
        Ok(())
    })
    .await?;
    let presenters: Vec<(&Camp, usize, &pb::School)> = camps
        .iter()
        .flat_map(|c| c.seeds().iter().enumerate().map(move |(i, s)| (c, i, s)))
        .collect();
    let tokens = ctx
        .each(presenters, |(c, i, s)| async move {
            let (token, _) = ctx.token(s.name.clone(), pb::Role::School, &s.id).await?;
            let practices = ["teachers", "management"]
                .iter()
                .enumerate()
                .map(|(j, ind)| pb::PracticeDeclaration {
                    indicator: (*ind).into(),
                    title: format!("做法{i}-{j}"),
                    description: "说明".into(),
                })
                .collect();
            let p = ctx
                .mentor()
                .submit_presentation(auth(
                    pb::SubmitPresentationRequest {
                        idempotency_key: key(),
                        school_id: s.id.clone(),
                        expected_version: 0,
                        document_ref: "doc".into(),
                        document_sha256: "cd".repeat(32),
                        practices,
                    },
                    &token,
                ))
                .await
                .with_context(|| format!("SubmitPresentation in {}", c.code))?
                .into_inner();
            for (r, _) in &c.raters {
                ctx.mentor()
                    .rate_presentation(auth(
                        pb::RatePresentationRequest {
                            idempotency_key: key(),
                            school_id: s.id.clone(),
                            ratings: c
                                .indicators
                                .iter()
                                .map(|ind| pb::IndicatorRating {
                                    indicator: ind.clone(),
                                    rating: pb::Rating::Excellent as i32,
                                })
                                .collect(),
                            verdicts: p
                                .practices
                                .iter()
                                .map(|x| pb::PracticeVerdict {
                                    practice_id: x.id.clone(),
                                    accepted: true,
                                })
                                .collect(),
                        },
                        r,
                    ))
                    .await
                    .with_context(|| format!("RatePresentation in {}", c.code))?;
            }
            Ok((s.id.clone(), token))
        })
        .await?;
    let mut tokens = tokens.into_iter();
    for c in camps.iter_mut() {
        c.seed_tokens = tokens.by_ref().take(c.n_seeds).collect();
    }
    clocks.lap("2 mentors: tokens, present, rate").await?;
    ctx.each(camps.iter().collect(), |c| async move {
        let r = ctx
            .mentor()
            .confirm_mentors(auth(
                pb::ConfirmMentorsRequest {
                    idempotency_key: key(),
                    campaign_id: c.id.clone(),
                    overrides: vec![],
                },
                OFFICE,
            ))
            .await
            .with_context(|| format!("ConfirmMentors of {}", c.code))?
            .into_inner();
        let mentors = r.proposals.iter().filter(|p| p.mentor).count();
        ensure!(
            mentors == c.n_seeds,
            "{}: {mentors} mentors of {} seeds",
            c.code,
            c.n_seeds
        );
        ctx.complete(c, pb::Phase::MentorSelection).await
    })
    .await?;
    clocks.lap("2 mentors: confirm, complete").await?;

    // Phase 3 (May): the proposed 1+X groups, baselines, a few assistance logs.
    ctx.advance(PAIRING_OPENS).await?;
    let groups = ctx
        .each(camps.iter().collect(), |c| async move {
            ctx.open(c, pb::Phase::Pairing).await?;
            let proposal = ctx
                .pairing()
                .propose_pairing(auth(
                    pb::ProposePairingRequest {
                        campaign_id: c.id.clone(),
                    },
                    OFFICE,
                ))
                .await
                .with_context(|| format!("ProposePairing of {}", c.code))?
                .into_inner();
            ctx.pairing()
                .set_pairing(auth(
                    pb::SetPairingRequest {
                        idempotency_key: key(),
                        campaign_id: c.id.clone(),
                        groups: proposal.groups.clone(),
                    },
                    OFFICE,
                ))
                .await
                .with_context(|| format!("SetPairing of {}", c.code))?;
            Ok(proposal.groups)
        })
        .await?;
    for (c, g) in camps.iter_mut().zip(groups) {
        c.groups = g;
    }
    clocks.lap("3 pairing: open, propose, set").await?;
    let potentials: Vec<(&Camp, &pb::School)> = camps
        .iter()
        .flat_map(|c| c.potentials().iter().map(move |s| (c, s)))
        .collect();
    ctx.each(potentials, |(c, s)| async move {
        ctx.pairing()
            .record_baseline(auth(
                pb::RecordBaselineRequest {
                    idempotency_key: key(),
                    school_id: s.id.clone(),
                    scores: c.scores(|_| 60.0),
                },
                &c.dept,
            ))
            .await
            .with_context(|| format!("RecordBaseline in {}", c.code))?;
        Ok(())
    })
    .await?;
    clocks.lap("3 pairing: baselines").await?;
    // The first ten mentors of each campaign log four activities each, the next ten one.
    let activities: Vec<(&Camp, &pb::PairingGroup, usize)> = camps
        .iter()
        .flat_map(|c| {
            c.groups
                .iter()
                .take(20)
                .enumerate()
                .flat_map(move |(k, g)| (0..if k < 10 { 4 } else { 1 }).map(move |j| (c, g, j)))
        })
        .filter(|(_, g, _)| !g.potential_school_ids.is_empty())
        .collect();
    ctx.each(activities, |(c, g, j)| async move {
        let token = &c.seed_tokens[&g.mentor_school_id];
        ctx.pairing()
            .log_assistance(auth(
                pb::LogAssistanceRequest {
                    idempotency_key: key(),
                    mentor_school_id: g.mentor_school_id.clone(),
                    potential_school_id: g.potential_school_ids[j % g.potential_school_ids.len()]
                        .clone(),
                    date: format!("2020-05-0{}", j + 1),
                    indicators: vec!["teaching".into()],
                    description: "送教上门、同课异构".into(),
                    evidence_ref: "doc://activity".into(),
                },
                token,
            ))
            .await
            .with_context(|| format!("LogAssistance in {}", c.code))?;
        Ok(())
    })
    .await?;
    ctx.each(camps.iter().collect(), |c| {
        ctx.complete(c, pb::Phase::Pairing)
    })
    .await?;
    clocks.lap("3 pairing: assistance, complete").await?;

    // Phase 4 (July): a panel of three scores every potential; results notice; close.
    ctx.advance(ACCEPTANCE_OPENS).await?;
    ctx.each(camps.iter().collect(), |c| async move {
        ctx.open(c, pb::Phase::Acceptance).await?;
        let members = c
            .panel
            .iter()
            .enumerate()
            .map(|(m, (_, actor))| pb::PanelMember {
                actor: actor.clone(),
                name: format!("验收组成员{m}"),
                affiliation: if m < 2 {
                    pb::Affiliation::Department
                } else {
                    pb::Affiliation::HighSchool
                } as i32,
                mentor_school_id: String::new(),
            })
            .collect();
        ctx.acceptance()
            .form_panel(auth(
                pb::FormPanelRequest {
                    idempotency_key: key(),
                    campaign_id: c.id.clone(),
                    members,
                },
                OFFICE,
            ))
            .await
            .with_context(|| format!("FormPanel of {}", c.code))?;
        Ok(())
    })
    .await?;
    clocks.lap("4 acceptance: open, panel").await?;
    // Member-major order, so the members of one school rarely wait on each other's lock.
    let scoring: Vec<(&Camp, usize, usize)> = (0..3)
        .flat_map(|m| {
            camps
                .iter()
                .flat_map(move |c| (0..c.potentials().len()).map(move |i| (c, i, m)))
        })
        .collect();
    ctx.each(scoring, |(c, i, m)| async move {
        ctx.acceptance()
            .submit_scores(auth(
                pb::SubmitScoresRequest {
                    idempotency_key: key(),
                    school_id: c.potentials()[i].id.clone(),
                    report_score: 70.0,
                    onsite: c.scores(|ind| level(i, ind)),
                },
                &c.panel[m].0,
            ))
            .await
            .with_context(|| format!("SubmitScores in {}", c.code))?;
        Ok(())
    })
    .await?;
    clocks.lap("4 acceptance: scores").await?;
    let notices = ctx
        .each(camps.iter().collect(), |c| async move {
            let results = ctx
                .acceptance()
                .get_results(auth(
                    pb::GetResultsRequest {
                        campaign_id: c.id.clone(),
                    },
                    &c.leader,
                ))
                .await
                .with_context(|| format!("GetResults of {}", c.code))?
                .into_inner();
            ensure!(
                results.results.len() == c.potentials().len()
                    && results.results.iter().all(|r| r.complete && r.scorers == 3),
                "{}: results incomplete",
                c.code
            );
            Ok(ctx
                .acceptance()
                .publish_results_notice(auth(
                    pb::PublishResultsNoticeRequest {
                        idempotency_key: key(),
                        campaign_id: c.id.clone(),
                        title: String::new(),
                    },
                    OFFICE,
                ))
                .await
                .with_context(|| format!("PublishResultsNotice of {}", c.code))?
                .into_inner()
                .id)
        })
        .await?;
    for (c, id) in camps.iter_mut().zip(notices) {
        c.notice = id;
    }
    clocks.lap("4 acceptance: results, notice").await?;
    ctx.advance(RESULTS_NOTICE_ENDED).await?;
    ctx.each(camps.iter().collect(), |c| async move {
        ctx.close_notice(c, &c.notice).await?;
        ctx.complete(c, pb::Phase::Acceptance).await
    })
    .await?;
    clocks.lap("4 acceptance: advance, close, complete").await?;

    // Phase 5 (September): propose, confirm, complete.
    ctx.advance(AWARDS_OPEN).await?;
    ctx.each(camps.iter().collect(), |c| async move {
        ctx.open(c, pb::Phase::Awards).await?;
        let proposed = ctx
            .awards()
            .propose_awards(auth(
                pb::ProposeAwardsRequest {
                    campaign_id: c.id.clone(),
                },
                &c.leader,
            ))
            .await
            .with_context(|| format!("ProposeAwards of {}", c.code))?
            .into_inner();
        ensure!(
            proposed.awards.len() == c.schools.len(),
            "{}: {} proposals for {} schools",
            c.code,
            proposed.awards.len(),
            c.schools.len()
        );
        ctx.awards()
            .confirm_awards(auth(
                pb::ConfirmAwardsRequest {
                    idempotency_key: key(),
                    campaign_id: c.id.clone(),
                    overrides: vec![],
                },
                OFFICE,
            ))
            .await
            .with_context(|| format!("ConfirmAwards of {}", c.code))?;
        ctx.complete(c, pb::Phase::Awards).await
    })
    .await?;
    clocks.lap("5 awards: open, propose, confirm").await?;
    Ok(camps)
}
