//! `junheng`: the command-line client for the junheng workflow and scheduler APIs.
//!
//! Subcommands are grouped as a bureau thinks (campaign, school, seed, notice, objection,
//! clock); `junheng call Service/Method JSON` reaches every other RPC of both services with the
//! same JSON as grpcurl. Exit codes tell the classes of failure apart (see `--help`).

mod demo;
mod groups;
mod output;
mod rpc;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono_tz::Tz;
use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use output::{Cell, Col, Format, View, col};
use rpc::{CallError, Client};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt as _;

const AFTER_HELP: &str = "\
Exit codes: 0 done; 1 server error; 2 usage (bad flags or JSON); 3 invalid argument (the
server names the fields); 4 not found; 5 not authenticated or not allowed; 6 refused by the
campaign's rules or state (failed precondition, conflict, version); 7 unavailable, retry later;
8 `audit verify` found the audit chain broken.

The token is read from JUNHENG_TOKEN, else from the file given by --token-file
(JUNHENG_TOKEN_FILE), else from `token_file` in the config file; it is never printed.";

#[derive(Parser, Debug)]
#[command(name = "junheng", version, about = "junheng 均衡: run a county's school-improvement campaign", after_help = AFTER_HELP)]
struct Cli {
    /// The workflow's gRPC address.
    #[arg(long, global = true, env = "JUNHENG_ADDR")]
    addr: Option<String>,
    /// The scheduler's gRPC address (deliveries and endpoints).
    #[arg(long, global = true, env = "JUNHENG_SCHEDULER_ADDR")]
    scheduler_addr: Option<String>,
    /// A file holding the bearer token (the first word of its first line).
    #[arg(long, global = true, env = "JUNHENG_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// The CA that signed the servers' certificates (PEM): speak TLS (https) and verify them.
    #[arg(long, global = true, env = "JUNHENG_CA")]
    ca: Option<PathBuf>,
    /// The name the servers' certificates must carry (default: the address's host); TLS.
    #[arg(long, global = true, env = "JUNHENG_TLS_DOMAIN")]
    tls_domain: Option<String>,
    /// A client certificate (PEM) for servers that require one (mTLS); needs --client-key.
    #[arg(long, global = true, env = "JUNHENG_CLIENT_CERT")]
    client_cert: Option<PathBuf>,
    /// The key of --client-cert (PEM).
    #[arg(long, global = true, env = "JUNHENG_CLIENT_KEY")]
    client_key: Option<PathBuf>,
    /// Config file (TOML: `addr`, `scheduler_addr`, `token_file`, `time_zone`, `ca`,
    /// `tls_domain`, `client_cert`, `client_key`); default $XDG_CONFIG_HOME/junheng/cli.toml
    /// when it exists.
    #[arg(long, global = true, env = "JUNHENG_CONFIG")]
    config: Option<PathBuf>,
    /// Output: aligned table, JSON (stable for scripts), CSV, or only the ids.
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Time zone for times in tables and CSV.
    #[arg(long, global = true)]
    time_zone: Option<Tz>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The server: version, clock (real or simulated, and its "now"), demo or not.
    Info,
    /// Campaigns and their phases.
    #[command(subcommand)]
    Campaign(CampaignCmd),
    /// The schools of a campaign.
    #[command(subcommand)]
    School(SchoolCmd),
    /// Phase 1: nominations of seed schools.
    #[command(subcommand)]
    Seed(SeedCmd),
    /// Public notices (公示).
    #[command(subcommand)]
    Notice(NoticeCmd),
    /// Objections to a notice (real name required).
    #[command(subcommand)]
    Objection(ObjectionCmd),
    /// The simulated clock.
    #[command(subcommand)]
    Clock(ClockCmd),
    /// The audit trail as it happens.
    #[command(subcommand)]
    Events(EventsCmd),
    /// The audit trail's hash chain (office).
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The bureau's documents (公示名单, 导师型学校名单, 经验做法汇编, 成绩, 表彰, 一票否决) as files.
    Export {
        #[arg(value_enum)]
        document: Document,
        /// File format (Markdown for the practice collection only).
        #[arg(long, value_enum, default_value_t = FileFormat::Xlsx)]
        format: FileFormat,
        /// Where to write it (default: the server's file name, in this directory).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        campaign: CampaignArg,
    },
    /// Register schools from a spreadsheet (CSV in UTF-8 or GBK, or XLSX); all or nothing.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Notifications the scheduler planned and sent (the scheduler's address).
    #[command(subcommand)]
    Delivery(DeliveryCmd),
    /// The scheduler's channels: disabled robots and what waits for them.
    #[command(subcommand)]
    Endpoint(EndpointCmd),
    /// Bearer tokens (office).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Any RPC of either service by name, with a JSON body (grpcurl's mapping); an empty
    /// `idempotency_key` is filled in. `junheng call --list` lists them.
    Call {
        /// `Service/Method`, e.g. `MentorService/ProposeMentors`.
        #[arg(required_unless_present = "list")]
        method: Option<String>,
        /// The request as JSON, `@FILE`, or `-` for standard input; default `{}`.
        body: Option<String>,
        /// List every service and method.
        #[arg(long)]
        list: bool,
    },
    /// Phase 2: presentations, ratings, mentor schools, the practice collection.
    #[command(subcommand)]
    Mentor(groups::MentorCmd),
    /// Phase 3: 1+X groups, baselines, assistance.
    #[command(subcommand)]
    Pairing(groups::PairingCmd),
    /// Phase 4: the acceptance panel, scores, results and their notice.
    #[command(subcommand)]
    Acceptance(groups::AcceptanceCmd),
    /// Phase 5: awards (表彰) and their consequences (结果运用).
    #[command(subcommand)]
    Award(groups::AwardCmd),
    /// What is owed by whom and by when (reminders are planned from these).
    #[command(subcommand)]
    Obligation(groups::ObligationCmd),
    /// The demo county (`deploy/scripts/run.sh`): replay a whole season.
    #[command(subcommand)]
    Demo(demo::DemoCmd),
    /// Shell completions on standard output.
    Completions { shell: clap_complete::Shell },
    /// The man page (roff) on standard output.
    Man,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Phase {
    SeedDesignation,
    MentorSelection,
    Pairing,
    Acceptance,
    Awards,
}

impl Phase {
    fn pb(self) -> &'static str {
        match self {
            Phase::SeedDesignation => "PHASE_SEED_DESIGNATION",
            Phase::MentorSelection => "PHASE_MENTOR_SELECTION",
            Phase::Pairing => "PHASE_PAIRING",
            Phase::Acceptance => "PHASE_ACCEPTANCE",
            Phase::Awards => "PHASE_AWARDS",
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum NoticeKind {
    /// 标杆种子校拟定名单公示
    SeedCandidates,
    /// 补充公示
    SeedSupplementary,
}

impl NoticeKind {
    fn pb(self) -> &'static str {
        match self {
            NoticeKind::SeedCandidates => "NOTICE_KIND_SEED_CANDIDATES",
            NoticeKind::SeedSupplementary => "NOTICE_KIND_SEED_SUPPLEMENTARY",
        }
    }
}

/// The campaign a command acts in; may be left out when the server holds exactly one.
#[derive(clap::Args, Debug)]
struct CampaignArg {
    /// Campaign id (default: the only campaign on the server).
    #[arg(long, short)]
    campaign: Option<String>,
}

/// Idempotency: a key generated per call unless given, so a retried command is safe.
#[derive(clap::Args, Debug)]
struct KeyArg {
    /// Idempotency key (default: a fresh one). Repeat a key to retry safely.
    #[arg(long)]
    key: Option<String>,
}

#[derive(Subcommand, Debug)]
enum CampaignCmd {
    /// Every campaign with its phases' status.
    List,
    /// One campaign: each phase's window, deadline, status and what still blocks it.
    Show(CampaignArg),
    /// Open a phase (office).
    Open {
        phase: Phase,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Complete a phase once its exit criteria hold (office).
    Complete {
        phase: Phase,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    #[command(flatten)]
    More(groups::CampaignMore),
}

#[derive(Subcommand, Debug)]
enum SchoolCmd {
    /// The schools of a campaign, with their state.
    List {
        #[command(flatten)]
        campaign: CampaignArg,
        /// Only schools in this state (e.g. `seed`, `potential`, `nominated`).
        #[arg(long)]
        state: Option<String>,
        /// Only schools in this town.
        #[arg(long)]
        town: Option<String>,
        /// At most this many (1–1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One school (by id, 10-digit code or name).
    Show { school: String },
    #[command(flatten)]
    More(groups::SchoolMore),
}

#[derive(Subcommand, Debug)]
enum SeedCmd {
    /// Nominate schools as seed-school candidates (department).
    Nominate {
        /// Schools by id, 10-digit code or name.
        #[arg(required = true)]
        schools: Vec<String>,
        /// Why they meet the standard.
        #[arg(long)]
        basis: String,
        /// Refuse unless the school is at this version (one school only; default: no check).
        #[arg(long)]
        expected_version: Option<i64>,
        /// Show what would change and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        key: KeyArg,
    },
    #[command(flatten)]
    More(groups::SeedMore),
}

#[derive(Subcommand, Debug)]
enum NoticeCmd {
    /// Publish a notice listing schools (office); its period is counted in working days.
    Publish {
        #[arg(long, value_enum)]
        kind: NoticeKind,
        /// School ids.
        #[arg(required = true)]
        schools: Vec<String>,
        /// Title (default: the definition's, e.g. 昌乐县2020年标杆种子校拟定名单公示).
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// The notices of a campaign.
    List(CampaignArg),
    /// One notice with its objections.
    Show { notice: String },
    /// Close a notice whose period is over (office).
    Close {
        notice: String,
        #[command(flatten)]
        key: KeyArg,
    },
}

#[derive(Subcommand, Debug)]
enum ObjectionCmd {
    /// File an objection to a school on a notice, under a real name.
    File {
        #[arg(long)]
        notice: String,
        #[arg(long)]
        school: String,
        /// The objector's real name (or unit name); anonymous objections are not accepted.
        #[arg(long)]
        name: String,
        /// Phone or e-mail.
        #[arg(long)]
        contact: String,
        #[arg(long)]
        grounds: String,
        /// A reference to the evidence.
        #[arg(long)]
        evidence: String,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Resolve an objection (office): upheld removes the school from the list.
    Resolve {
        objection: String,
        #[arg(long, conflicts_with = "dismiss", required_unless_present = "dismiss")]
        uphold: bool,
        #[arg(long)]
        dismiss: bool,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        key: KeyArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Document {
    SeedNotice,
    MentorList,
    PracticeCollection,
    ResultsNotice,
    AwardList,
    VetoList,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FileFormat {
    Xlsx,
    Csv,
    Markdown,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Role {
    Office,
    Department,
    Panel,
    School,
    Leader,
    Scheduler,
}

fn enum_name(prefix: &str, v: impl ValueEnum) -> String {
    let name = v
        .to_possible_value()
        .expect("no skipped variants")
        .get_name()
        .to_string();
    format!("{prefix}{}", name.replace('-', "_").to_ascii_uppercase())
}

#[derive(Subcommand, Debug)]
enum EventsCmd {
    /// Print each event of a campaign as it is committed (Ctrl-C stops).
    Follow {
        #[command(flatten)]
        campaign: CampaignArg,
        /// Resume after this cursor (printed with each event in `-o json`).
        #[arg(long)]
        cursor: Option<String>,
        /// Stop once caught up instead of waiting for new events.
        #[arg(long)]
        until_caught_up: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Recompute a campaign's audit hash chain from its genesis and name the first broken
    /// link; exit code 8 when it is broken.
    Verify {
        /// Campaign id, or `system` for the chain of the clock, endpoints and deliveries
        /// without a campaign (default: the only campaign on the server).
        campaign: Option<String>,
    },
    #[command(flatten)]
    More(groups::AuditMore),
}

const CHAIN: &[Col] = &[
    col("完整", "intact", Cell::Text),
    col("已核验事件数", "events_checked", Cell::Text),
    col("末条哈希", "last_hash", Cell::Text),
    col("首个断点事件", "first_broken.event_id", Cell::Text),
    col("链上序号", "first_broken.chain_seq", Cell::Text),
    col("问题", "first_broken.problem", Cell::Text),
];

#[derive(Subcommand, Debug)]
enum ImportCmd {
    /// The school list: one row per school (学校代码, 学校名称, 学段, 镇街, 校长, 联系人…).
    Schools {
        file: PathBuf,
        #[command(flatten)]
        campaign: CampaignArg,
        #[command(flatten)]
        key: KeyArg,
    },
}

#[derive(Subcommand, Debug)]
enum DeliveryCmd {
    /// Deliveries, newest first, filtered on the server.
    List {
        /// Only this status: pending, held, sending, sent, dead, cancelled, parked.
        #[arg(long)]
        status: Option<String>,
        /// Only this kind: reminder, overdue, notice_expiry, daily_digest, phase_summary.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    #[command(flatten)]
    More(groups::DeliveryMore),
}

#[derive(Subcommand, Debug)]
enum EndpointCmd {
    /// Every configured endpoint, disabled or not, with what waits for it.
    List,
    /// Enable a disabled endpoint again; its parked messages are sent (office).
    Enable { name: String },
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// Issue a token; the secret is shown once (or written to --out, mode 0600).
    Issue {
        /// Who holds it, for the audit log.
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        /// The school, for a school token.
        #[arg(long)]
        school: Option<String>,
        /// The campaigns it acts in (repeatable). Default: the issuer's own scope (a school
        /// token: its school's campaign).
        #[arg(long = "campaign")]
        campaigns: Vec<String>,
        /// When it stops working, e.g. 2027-01-01T00:00:00+08:00. Default: never.
        #[arg(long, conflicts_with = "expires_in_days")]
        expires: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// Expires this many days from now (the server's clock decides).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Write the secret to this file (mode 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArg,
    },
    /// The tokens within your scope (never their secrets).
    List {
        /// Also revoked and expired ones.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a token: refused from the next call on.
    Revoke {
        token_id: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        key: KeyArg,
    },
    /// A new secret for a token (shown once, or written to --out); the old one stops working.
    Rotate {
        token_id: String,
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArg,
    },
}

#[derive(Subcommand, Debug)]
enum ClockCmd {
    /// The server's clock.
    Show,
    /// Move the simulated clock forward to an instant (office), e.g. 2020-03-09T09:00:00+08:00.
    Advance {
        to: chrono::DateTime<chrono::FixedOffset>,
        #[command(flatten)]
        key: KeyArg,
    },
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct Config {
    addr: Option<String>,
    scheduler_addr: Option<String>,
    token_file: Option<PathBuf>,
    time_zone: Option<String>,
    ca: Option<PathBuf>,
    tls_domain: Option<String>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

/// TLS for both servers from the flags, else the config file; none when nothing is given.
fn client_tls(
    cli: &Cli,
    config: &Config,
) -> anyhow::Result<Option<tonic::transport::ClientTlsConfig>> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let pick = |a: &Option<PathBuf>, b: &Option<PathBuf>| a.clone().or_else(|| b.clone());
    let ca = pick(&cli.ca, &config.ca);
    let domain = cli.tls_domain.clone().or_else(|| config.tls_domain.clone());
    let cert = pick(&cli.client_cert, &config.client_cert);
    let key = pick(&cli.client_key, &config.client_key);
    if ca.is_none() && domain.is_none() && cert.is_none() && key.is_none() {
        return Ok(None);
    }
    let read = |p: &PathBuf, what: &str| {
        std::fs::read(p).with_context(|| format!("reading the {what} {}", p.display()))
    };
    let mut tls = ClientTlsConfig::new();
    if let Some(ca) = &ca {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca, "CA certificate (--ca)")?));
    }
    if let Some(d) = domain {
        tls = tls.domain_name(d);
    }
    match (&cert, &key) {
        (Some(c), Some(k)) => {
            tls = tls.identity(Identity::from_pem(
                read(c, "client certificate (--client-cert)")?,
                read(k, "client key (--client-key)")?,
            ));
        }
        (None, None) => {}
        _ => anyhow::bail!("--client-cert and --client-key go together"),
    }
    Ok(Some(tls))
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    text: String,
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure {
            code: 2,
            text: format!("error: {e:#}"),
        }
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Usage(m) => Failure {
                code: 2,
                text: format!("error: {m}"),
            },
            CallError::Status(s) => {
                let code = match s.code() {
                    Code::InvalidArgument | Code::OutOfRange => 3,
                    Code::NotFound => 4,
                    Code::Unauthenticated | Code::PermissionDenied => 5,
                    Code::FailedPrecondition | Code::Aborted | Code::AlreadyExists => 6,
                    Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => 7,
                    _ => 1,
                };
                let mut text = format!("error: {:?}: {}", s.code(), s.message());
                if let Some(bad) = s.get_details_bad_request() {
                    for v in bad.field_violations {
                        text.push_str(&format!("\n  {}: {}", v.field, v.description));
                    }
                }
                if let Some(id) = s
                    .metadata()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                {
                    text.push_str(&format!("\n  (request id {id})"));
                }
                Failure { code, text }
            }
        }
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let path = match path {
        Some(p) => p.clone(),
        None => {
            let base = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
            match base.map(|b| b.join("junheng/cli.toml")) {
                Some(p) if p.exists() => p,
                _ => return Ok(Config::default()),
            }
        }
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

fn read_token(path: &PathBuf) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    text.split_whitespace()
        .next()
        .map(String::from)
        .with_context(|| format!("the token file {} is empty", path.display()))
}

fn write_secret(path: &PathBuf, secret: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{secret}")?;
    Ok(())
}

fn parse_body(body: Option<&str>) -> anyhow::Result<Value> {
    let text = match body {
        None => "{}".to_string(),
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
        Some(b) => match b.strip_prefix('@') {
            Some(path) => {
                std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
            }
            None => b.to_string(),
        },
    };
    serde_json::from_str(&text).context("the request body is not JSON")
}

const PHASES: &[Col] = &[
    col("阶段", "phase", Cell::Enum("PHASE_")),
    col("状态", "status", Cell::Enum("PHASE_STATUS_")),
    col("起", "window_start", Cell::Text),
    col("止", "window_end", Cell::Text),
    col("截止", "deadline", Cell::End),
    col("逾期", "overdue", Cell::Text),
    col("待办", "open_items", Cell::Text),
];
const CAMPAIGNS: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("代码", "code", Cell::Text),
    col("县", "county", Cell::Text),
    col("年度", "year", Cell::Text),
    col("阶段1", "phases.0.status", Cell::Enum("PHASE_STATUS_")),
    col("阶段2", "phases.1.status", Cell::Enum("PHASE_STATUS_")),
    col("阶段3", "phases.2.status", Cell::Enum("PHASE_STATUS_")),
    col("阶段4", "phases.3.status", Cell::Enum("PHASE_STATUS_")),
    col("阶段5", "phases.4.status", Cell::Enum("PHASE_STATUS_")),
];
const SCHOOLS: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("学校", "name", Cell::Text),
    col("学段", "level", Cell::Enum("SCHOOL_LEVEL_")),
    col("所属镇街", "town", Cell::Text),
    col("状态", "state", Cell::Text),
    col("说明", "state_label", Cell::Text),
    col("版本", "version", Cell::Text),
];
const NOTICES: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("标题", "title", Cell::Text),
    col("状态", "status", Cell::Text),
    col("开始", "starts_at", Cell::Time),
    col("结束", "ends_at", Cell::End),
    col("学校数", "school_ids", Cell::Count),
    col("异议数", "objections", Cell::Count),
];
const TOKENS: &[Col] = &[
    col("ID", "token_id", Cell::Text),
    col("持有人", "name", Cell::Text),
    col("角色", "role", Cell::Enum("ROLE_")),
    col("学校", "school_id", Cell::Text),
    col("活动", "campaign_ids", Cell::Count),
    col("全县", "county_wide", Cell::Text),
    col("到期", "expires_at", Cell::Time),
    col("吊销", "revoked_at", Cell::Time),
    col("有效", "live", Cell::Text),
];
const OBJECTIONS: &[Col] = &[
    col("ID", "id", Cell::Text),
    col("学校", "school_id", Cell::Text),
    col("异议人", "objector_name", Cell::Text),
    col("理由", "grounds", Cell::Text),
    col("状态", "status", Cell::Text),
    col("处理意见", "resolution", Cell::Text),
];
const INFO: &[Col] = &[
    col("版本", "version", Cell::Text),
    col("时钟", "clock_mode", Cell::Text),
    col("当前时间", "now", Cell::Time),
    col("演示", "demo", Cell::Text),
];

struct Ctx {
    client: Client,
    format: Format,
    tz: Tz,
}

impl Ctx {
    fn print(&self, reply: &Value, rows: Option<&'static str>, cols: &[Col]) {
        print!(
            "{}",
            output::render(self.format, reply, &View { rows, cols }, self.tz)
        );
    }

    async fn campaign(&self, arg: &CampaignArg) -> Result<String, Failure> {
        if let Some(c) = &arg.campaign {
            return Ok(c.clone());
        }
        let list = self
            .client
            .call("CampaignService/ListCampaigns", json!({}))
            .await?;
        let ids: Vec<&str> = list["campaigns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str())
            .collect();
        match ids.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(anyhow::anyhow!("the server holds no campaign yet").into()),
            many => Err(anyhow::anyhow!(
                "the server holds {} campaigns: pass --campaign (one of {})",
                many.len(),
                many.join(", ")
            )
            .into()),
        }
    }
}

fn key(k: &KeyArg) -> String {
    k.key.clone().unwrap_or_default()
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "junheng",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(anyhow::Error::from)?;
            return Ok(());
        }
        _ => {}
    }
    let config = load_config(cli.config.as_ref())?;
    let tls = client_tls(&cli, &config)?;
    let addr = cli
        .addr
        .clone()
        .or(config.addr)
        .unwrap_or_else(|| "127.0.0.1:50051".into());
    let token = match std::env::var("JUNHENG_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        Some(t) => Some(t),
        None => cli
            .token_file
            .clone()
            .or(config.token_file)
            .map(|p| read_token(&p))
            .transpose()?,
    };
    let tz = match (cli.time_zone, config.time_zone) {
        (Some(tz), _) => tz,
        (None, Some(name)) => name
            .parse()
            .map_err(|e| anyhow::anyhow!("config time_zone `{name}`: {e}"))?,
        (None, None) => chrono_tz::Asia::Shanghai,
    };
    let channel = |addr: String| -> anyhow::Result<tonic::transport::Channel> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = if addr.contains("://") {
            addr
        } else {
            format!("{scheme}://{addr}")
        };
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
            .with_context(|| format!("`{url}` is not a server address"))?;
        if let Some(tls) = &tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .with_context(|| format!("TLS for {url}"))?;
        }
        Ok(endpoint.connect_lazy())
    };
    let scheduler = cli
        .scheduler_addr
        .clone()
        .or(config.scheduler_addr)
        .unwrap_or_else(|| "127.0.0.1:50052".into());
    let ctx = Ctx {
        client: Client::new(channel(addr)?, channel(scheduler)?, token)?,
        format: cli.output,
        tz,
    };
    let c = &ctx.client;
    match cli.command {
        Command::Completions { .. } | Command::Man => unreachable!("handled above"),
        Command::Info => {
            let r = c.call("AdminService/GetServerInfo", json!({})).await?;
            ctx.print(&r, None, INFO);
        }
        Command::Campaign(cmd) => {
            match cmd {
                CampaignCmd::List => {
                    let r = c.call("CampaignService/ListCampaigns", json!({})).await?;
                    ctx.print(&r, Some("campaigns"), CAMPAIGNS);
                }
                CampaignCmd::Show(arg) => {
                    let id = ctx.campaign(&arg).await?;
                    let r = c
                        .call("CampaignService/GetCampaign", json!({ "campaign_id": id }))
                        .await?;
                    ctx.print(&r, Some("phases"), PHASES);
                }
                CampaignCmd::Open {
                    phase,
                    campaign,
                    key: k,
                } => {
                    let id = ctx.campaign(&campaign).await?;
                    let body = json!({ "idempotency_key": key(&k), "campaign_id": id, "phase": phase.pb() });
                    let r = c.call("CampaignService/OpenPhase", body).await?;
                    ctx.print(&r, Some("phases"), PHASES);
                }
                CampaignCmd::Complete {
                    phase,
                    campaign,
                    key: k,
                } => {
                    let id = ctx.campaign(&campaign).await?;
                    let body = json!({ "idempotency_key": key(&k), "campaign_id": id, "phase": phase.pb() });
                    let r = c.call("CampaignService/CompletePhase", body).await?;
                    ctx.print(&r, Some("phases"), PHASES);
                }
                CampaignCmd::More(m) => groups::campaign(&ctx, m).await?,
            }
        }
        Command::School(cmd) => match cmd {
            SchoolCmd::List {
                campaign,
                state,
                town,
                limit,
            } => {
                let id = ctx.campaign(&campaign).await?;
                let body = json!({
                    "campaign_id": id,
                    "state": state.unwrap_or_default(),
                    "town": town.unwrap_or_default(),
                    "page_size": limit,
                });
                let r = c.call("SchoolService/ListSchools", body).await?;
                ctx.print(&r, Some("schools"), SCHOOLS);
            }
            SchoolCmd::Show { school } => {
                let school = ctx
                    .school_ids(&CampaignArg { campaign: None }, &[&school])
                    .await?
                    .remove(0);
                let r = c
                    .call("SchoolService/GetSchool", json!({ "school_id": school }))
                    .await?;
                ctx.print(&r, None, SCHOOLS);
            }
            SchoolCmd::More(m) => groups::school(&ctx, m).await?,
        },
        Command::Seed(SeedCmd::More(m)) => groups::seed(&ctx, m).await?,
        Command::Mentor(m) => groups::mentor(&ctx, m).await?,
        Command::Pairing(m) => groups::pairing(&ctx, m).await?,
        Command::Acceptance(m) => groups::acceptance(&ctx, m).await?,
        Command::Award(m) => groups::award(&ctx, m).await?,
        Command::Obligation(m) => groups::obligation(&ctx, m).await?,
        Command::Audit(AuditCmd::More(m)) => groups::audit(&ctx, m).await?,
        Command::Delivery(DeliveryCmd::More(m)) => groups::delivery(&ctx, m).await?,
        Command::Demo(m) => demo::run(&ctx, m).await?,
        Command::Seed(SeedCmd::Nominate {
            schools,
            basis,
            expected_version,
            dry_run,
            key: k,
        }) => {
            // Schools by id, 10-digit code or name.
            let names: Vec<&str> = schools.iter().map(String::as_str).collect();
            let schools = ctx
                .school_ids(&CampaignArg { campaign: None }, &names)
                .await?;
            if expected_version.is_some() && schools.len() > 1 {
                return Err(
                    anyhow::anyhow!("--expected-version applies to one school at a time").into(),
                );
            }
            if dry_run {
                let mut plan = Vec::new();
                for s in &schools {
                    let r = c
                        .call("SchoolService/GetSchool", json!({ "school_id": s }))
                        .await?;
                    plan.push(json!({ "id": r["id"], "name": r["name"], "from": r["state"], "to": "nominated" }));
                }
                let cols = [
                    col("ID", "id", Cell::Text),
                    col("学校", "name", Cell::Text),
                    col("现状态", "from", Cell::Text),
                    col("将变为", "to", Cell::Text),
                ];
                ctx.print(&json!({ "changes": plan }), Some("changes"), &cols);
                eprintln!(
                    "dry run: {} school(s) would be nominated; nothing was changed",
                    plan.len()
                );
                return Ok(());
            }
            let mut done = Vec::new();
            for s in &schools {
                let body = json!({
                    // One key per school: `--key K` makes a re-run replay every nomination.
                    "idempotency_key": k.key.as_ref().map(|k| format!("{k}-{s}")).unwrap_or_default(),
                    "school_id": s,
                    "expected_version": expected_version.unwrap_or(0),
                    "basis": basis,
                });
                done.push(c.call("SeedService/Nominate", body).await?);
            }
            ctx.print(&json!({ "schools": done }), Some("schools"), SCHOOLS);
        }
        Command::Notice(cmd) => match cmd {
            NoticeCmd::Publish {
                kind,
                schools,
                title,
                campaign,
                key: k,
            } => {
                let id = ctx.campaign(&campaign).await?;
                let body = json!({
                    "idempotency_key": key(&k),
                    "campaign_id": id,
                    "kind": kind.pb(),
                    "school_ids": schools,
                    "title": title.unwrap_or_default(),
                });
                let r = c.call("SeedService/PublishNotice", body).await?;
                ctx.print(&r, None, NOTICES);
            }
            NoticeCmd::List(campaign) => {
                let id = ctx.campaign(&campaign).await?;
                let r = c
                    .call("SeedService/ListNotices", json!({ "campaign_id": id }))
                    .await?;
                ctx.print(&r, Some("notices"), NOTICES);
            }
            NoticeCmd::Show { notice } => {
                let r = c
                    .call("SeedService/GetNotice", json!({ "notice_id": notice }))
                    .await?;
                ctx.print(&r, None, NOTICES);
                if ctx.format == Format::Table
                    && r["objections"].as_array().is_some_and(|a| !a.is_empty())
                {
                    println!();
                    ctx.print(&r, Some("objections"), OBJECTIONS);
                }
            }
            NoticeCmd::Close { notice, key: k } => {
                let body = json!({ "idempotency_key": key(&k), "notice_id": notice });
                let r = c.call("SeedService/CloseNotice", body).await?;
                ctx.print(&r, None, NOTICES);
            }
        },
        Command::Objection(cmd) => match cmd {
            ObjectionCmd::File {
                notice,
                school,
                name,
                contact,
                grounds,
                evidence,
                key: k,
            } => {
                let body = json!({
                    "idempotency_key": key(&k),
                    "notice_id": notice,
                    "school_id": school,
                    "objector_name": name,
                    "objector_contact": contact,
                    "grounds": grounds,
                    "evidence": evidence,
                });
                let r = c.call("SeedService/FileObjection", body).await?;
                ctx.print(&r, None, OBJECTIONS);
            }
            ObjectionCmd::Resolve {
                objection,
                uphold,
                dismiss: _,
                reason,
                key: k,
            } => {
                let body = json!({
                    "idempotency_key": key(&k),
                    "objection_id": objection,
                    "upheld": uphold,
                    "reason": reason,
                });
                let r = c.call("SeedService/ResolveObjection", body).await?;
                ctx.print(&r, None, OBJECTIONS);
            }
        },
        Command::Clock(cmd) => match cmd {
            ClockCmd::Show => {
                let r = c.call("AdminService/GetServerInfo", json!({})).await?;
                ctx.print(&r, None, INFO);
            }
            ClockCmd::Advance { to, key: k } => {
                let body = json!({ "idempotency_key": key(&k), "to": to.to_rfc3339() });
                let r = c.call("AdminService/AdvanceClock", body).await?;
                ctx.print(&r, None, INFO);
            }
        },
        Command::Events(EventsCmd::Follow {
            campaign,
            cursor,
            until_caught_up,
        }) => {
            let id = ctx.campaign(&campaign).await?;
            let body = json!({ "campaign_id": id, "cursor": cursor.unwrap_or_default(), "stop_when_caught_up": until_caught_up });
            let cols = [
                col("时间", "event.at", Cell::Time),
                col("事项", "event.action", Cell::Text),
                col("学校", "event.school_id", Cell::Text),
                col("操作人", "event.actor", Cell::Text),
                col("角色", "event.role", Cell::Enum("ROLE_")),
                col("理由", "event.reason", Cell::Text),
            ];
            let format = ctx.format;
            c.stream("CampaignService/FollowEvents", body, |ev| match format {
                // One JSON object per line, so a script can read the stream as it comes.
                Format::Json => println!("{ev}"),
                Format::Id => println!("{}", ev["cursor"].as_str().unwrap_or_default()),
                _ => {
                    let row = output::render(
                        Format::Csv,
                        &ev,
                        &View {
                            rows: None,
                            cols: &cols,
                        },
                        ctx.tz,
                    );
                    let line = row.lines().nth(1).unwrap_or_default();
                    println!(
                        "{}",
                        if format == Format::Csv {
                            line.to_string()
                        } else {
                            line.replace(',', "  ")
                        }
                    );
                }
            })
            .await?;
        }
        Command::Audit(AuditCmd::Verify { campaign }) => {
            let id = match campaign.as_deref() {
                Some("system") => "00000000-0000-0000-0000-000000000000".to_string(),
                Some(c) => c.to_string(),
                None => ctx.campaign(&CampaignArg { campaign: None }).await?,
            };
            let r = c
                .call(
                    "CampaignService/VerifyAuditChain",
                    json!({ "campaign_id": id }),
                )
                .await?;
            ctx.print(&r, None, CHAIN);
            if r["intact"].as_bool() != Some(true) {
                let b = &r["first_broken"];
                let event = match &b["event_id"] {
                    Value::String(s) => s.clone(),
                    Value::Null => "0 (the chain's head)".into(),
                    v => v.to_string(),
                };
                return Err(Failure {
                    code: 8,
                    text: format!(
                        "the audit chain of {id} is broken at event {event}: {}",
                        b["problem"].as_str().unwrap_or_default()
                    ),
                });
            }
        }
        Command::Export {
            document,
            format,
            out,
            campaign,
        } => {
            let id = ctx.campaign(&campaign).await?;
            let body = json!({
                "campaign_id": id,
                "document": enum_name("DOCUMENT_", document),
                "format": enum_name("FILE_FORMAT_", format),
            });
            let r = c.call("SpreadsheetService/Export", body).await?;
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(r["content"].as_str().unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("the server sent undecodable content: {e}"))?;
            let path =
                out.unwrap_or_else(|| PathBuf::from(r["filename"].as_str().unwrap_or("export")));
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            println!("{} ({} bytes)", path.display(), bytes.len());
        }
        Command::Import(ImportCmd::Schools {
            file,
            campaign,
            key: k,
        }) => {
            let id = ctx.campaign(&campaign).await?;
            let content =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            use base64::Engine as _;
            let body = json!({
                "idempotency_key": key(&k),
                "campaign_id": id,
                "filename": file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
                "content": base64::engine::general_purpose::STANDARD.encode(content),
            });
            let r = c.call("SpreadsheetService/ImportSchools", body).await?;
            ctx.print(&r, Some("schools"), SCHOOLS);
        }
        Command::Delivery(DeliveryCmd::List {
            status,
            kind,
            limit,
        }) => {
            let body = json!({ "status": status.unwrap_or_default(), "kind": kind.unwrap_or_default(), "page_size": limit });
            let r = c.call("SchedulerService/ListDeliveries", body).await?;
            let cols = [
                col("ID", "id", Cell::Text),
                col("类别", "kind", Cell::Text),
                col("接收方", "recipient", Cell::Text),
                col("渠道", "endpoint", Cell::Text),
                col("状态", "status", Cell::Text),
                col("次数", "attempts", Cell::Text),
                col("计划", "not_before", Cell::Time),
                col("发送", "sent_at", Cell::Time),
                col("标题", "title", Cell::Text),
                col("错误", "last_error", Cell::Text),
            ];
            ctx.print(&r, Some("deliveries"), &cols);
        }
        Command::Endpoint(cmd) => {
            let cols = [
                col("名称", "name", Cell::Text),
                col("类型", "kind", Cell::Text),
                col("停用", "disabled", Cell::Text),
                col("停用时间", "disabled_at", Cell::Time),
                col("原因", "disabled_reason", Cell::Text),
                col("待发", "parked", Cell::Text),
            ];
            match cmd {
                EndpointCmd::List => {
                    let r = c.call("SchedulerService/ListEndpoints", json!({})).await?;
                    ctx.print(&r, Some("endpoints"), &cols);
                }
                EndpointCmd::Enable { name } => {
                    let r = c
                        .call("SchedulerService/EnableEndpoint", json!({ "name": name }))
                        .await?;
                    ctx.print(&r, Some("endpoint"), &cols);
                    eprintln!("{} parked message(s) queued again", r["released"]);
                }
            }
        }
        Command::Token(TokenCmd::Issue {
            name,
            role,
            school,
            campaigns,
            expires,
            expires_in_days,
            out,
            key: k,
        }) => {
            let expires = match (expires, expires_in_days) {
                (Some(e), _) => Some(e.with_timezone(&chrono::Utc)),
                (None, Some(d)) => {
                    let info = c.call("AdminService/GetServerInfo", json!({})).await?;
                    let now = info["now"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .ok_or_else(|| anyhow::anyhow!("the server reported no clock"))?;
                    Some(now.with_timezone(&chrono::Utc) + chrono::Duration::days(i64::from(d)))
                }
                (None, None) => None,
            };
            let mut body = json!({
                "idempotency_key": key(&k),
                "name": name,
                "role": enum_name("ROLE_", role),
                "school_id": school.unwrap_or_default(),
                "campaign_ids": campaigns,
            });
            if let Some(e) = expires {
                body["expires_at"] = json!(e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            let r = c.call("AdminService/IssueToken", body).await?;
            let secret = r["token"].as_str().unwrap_or_default();
            match out {
                Some(path) => {
                    write_secret(&path, secret)?;
                    println!(
                        "{} {} → {} (mode 0600)",
                        r["token_id"].as_str().unwrap_or_default(),
                        r["actor"].as_str().unwrap_or_default(),
                        path.display()
                    );
                }
                None => println!("{secret}"),
            }
        }
        Command::Token(TokenCmd::List { all }) => {
            let r = c
                .call("AdminService/ListTokens", json!({ "include_dead": all }))
                .await?;
            ctx.print(&r, Some("tokens"), TOKENS);
        }
        Command::Token(TokenCmd::Revoke {
            token_id,
            reason,
            key: k,
        }) => {
            let r = c
                .call(
                    "AdminService/RevokeToken",
                    json!({ "idempotency_key": key(&k), "token_id": token_id, "reason": reason }),
                )
                .await?;
            ctx.print(&r, None, TOKENS);
        }
        Command::Token(TokenCmd::Rotate {
            token_id,
            out,
            key: k,
        }) => {
            let r = c
                .call(
                    "AdminService/RotateToken",
                    json!({ "idempotency_key": key(&k), "token_id": token_id }),
                )
                .await?;
            let secret = r["token"].as_str().unwrap_or_default();
            match out {
                Some(path) => {
                    write_secret(&path, secret)?;
                    println!("{token_id} → {} (mode 0600)", path.display());
                }
                None => println!("{secret}"),
            }
        }
        Command::Call { list: true, .. } => {
            for s in c.pool().services() {
                for m in s.methods() {
                    println!("{}/{}", s.name(), m.name());
                }
            }
        }
        Command::Call { method, body, .. } => {
            let method = method.expect("clap requires it without --list");
            let r = c.call(&method, parse_body(body.as_deref())?).await?;
            print!(
                "{}",
                output::render(
                    Format::Json,
                    &r,
                    &View {
                        rows: None,
                        cols: &[]
                    },
                    tz
                )
            );
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}", f.text);
            ExitCode::from(f.code)
        }
    }
}
