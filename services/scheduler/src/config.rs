//! Typed configuration: defaults → TOML file → environment, validated once at start.
//!
//! Endpoints are named so outbox rows can refer to them by name (a row outlives a process,
//! and credentials never enter the database). Secrets stay in `SecretString`s inside
//! [`junheng_notify::Endpoint`], so `Debug` of the whole settings struct is safe to log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use junheng_core::calendar::Calendars;
use junheng_notify::Endpoint;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid configuration:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Where "now" comes from. Simulated time must be asked for explicitly and is logged loudly;
/// it is then the `clock` row written by the workflow (woken by NOTIFY junheng_clock), so the
/// scheduler's mode never carries a start of its own.
pub use junheng_edge::clock::ClockMode;

fn real_clock() -> ClockMode {
    ClockMode::Real
}

/// `clock = "real" | "simulated"`.
fn clock_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ClockMode, D::Error> {
    const NAMES: &[&str] = &["real", "simulated"];
    let s = String::deserialize(d)?;
    match s.as_str() {
        "real" => Ok(ClockMode::Real),
        "simulated" => Ok(ClockMode::Simulated { start: None }),
        other => Err(serde::de::Error::unknown_variant(other, NAMES)),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database_url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long a database call waits for a pool connection before it fails (`UNAVAILABLE` to
    /// a gRPC caller; the loop retries next tick). Env `JUNHENG_DB_ACQUIRE_TIMEOUT_MS`.
    #[serde(default = "default_db_acquire_timeout_ms")]
    pub db_acquire_timeout_ms: u64,
    #[serde(default = "real_clock", deserialize_with = "clock_mode")]
    pub clock: ClockMode,
    /// Name of this replica in the delivery log; defaults to host name + pid.
    #[serde(default)]
    pub worker_name: Option<String>,
    /// Listen address of the gRPC API (SchedulerService, health, reflection).
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
    #[serde(default)]
    pub workflow: WorkflowSettings,
    #[serde(default)]
    pub dispatch: DispatchSettings,
    #[serde(default)]
    pub planning: PlanningSettings,
    /// Named endpoints.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointConfig>,
    #[serde(default)]
    pub recipients: Recipients,
    /// The calendars directory (`<year>.toml`, the State Council's schedule of each year the
    /// shipped files do not cover), as the workflow reads it: env `JUNHENG_CALENDARS_DIR`, flag
    /// `--calendars-dir`; default `deploy/calendars`.
    #[serde(default)]
    pub calendars_dir: Option<PathBuf>,
    /// The years loaded from the shipped files and [`Self::calendars_dir`] (see
    /// [`Self::load_calendars`]); every definition the scheduler reads is rebuilt with them.
    #[serde(skip, default = "shipped_calendars")]
    pub calendars: Calendars,
}

fn shipped_calendars() -> Calendars {
    Calendars::shipped().clone()
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSettings {
    /// gRPC URL of the workflow service, e.g. `http://127.0.0.1:50051`. Without it notices are
    /// announced but not closed (logged as a warning at start).
    #[serde(default)]
    pub url: Option<String>,
    /// Office bearer token used for CloseNotice.
    #[serde(default)]
    pub office_token: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchSettings {
    pub batch_size: i64,
    pub lease_secs: u64,
    pub max_attempts: i32,
    pub backoff_base_secs: u64,
    pub backoff_max_secs: u64,
    /// Concurrent sends per claim loop to endpoints without a rate limit: a replica has
    /// `concurrency` × `workers` HTTP exchanges in progress at most.
    pub concurrency: usize,
    /// Concurrent sends to any one endpoint, so a slow or hanging vendor holds only its own
    /// messages (and its own HTTP timeouts): the others keep their slots.
    pub endpoint_concurrency: usize,
    /// Claim loops per replica draining the outbox side by side (SKIP LOCKED keeps them apart).
    pub workers: usize,
    /// Most send results recorded in one transaction.
    pub finish_batch: usize,
    /// Finishers recording results side by side (one collects while the others write).
    pub finishers: usize,
    /// Switch every rate limit off (benchmarks, local sinks).
    pub rate_limits_enabled: bool,
    /// Planning runs this often without being woken; an idle dispatcher re-reads the outbox
    /// at least this often (a fallback: it is woken by NOTIFY and sleeps until the next due
    /// row otherwise).
    pub poll_interval_ms: u64,
    /// Rows due within this many milliseconds are claimed ahead and sent at their instant,
    /// re-checked just before (real clock only; endpoints with rate limits are not claimed
    /// ahead). An idle dispatcher wakes when the next row enters this window, so a burst due
    /// at one instant is claimed before it instead of after.
    pub lookahead_ms: u64,
    /// Most rows a replica holds claimed and not yet recorded (bounds memory and leases;
    /// also bounds the results the finisher holds through a database outage).
    pub max_in_flight: usize,
    /// Messages per minute kept under each vendor's documented per-minute limit (WeCom
    /// 20/min is budgeted as 19/min by default), so replicas sharing a robot and a little
    /// latency spread never reach the vendor's throttle. Not applied to `rate_limits` set
    /// explicitly on an endpoint.
    pub rate_limit_margin: u32,
    /// On shutdown, how long the finisher may keep trying to record the results it holds.
    pub shutdown_grace_secs: u64,
}

/// The defaults, measured with `scheduler-bench` on the 2-core development machine (PostgreSQL
/// 15 on the same cores, loopback sink in a separate process; runs and figures in the
/// scheduler README): with continuous claiming, `batch_size` 500 × `workers` 2 keeps one claim
/// in flight while the other's rows are sent; 64 sends at a time to the one endpoint reach a
/// transport ceiling of 30,000–37,000/s on a quiet machine; `finish_batch` 500 records a group
/// in one statement and `finishers` 2 let one collect while the other commits (3.00 row writes
/// per message, exactly: lease, result, attempt row; ~560 commits per 50,000 messages). On a
/// quiet machine the defaults drained 10,700–14,300 messages/s (session 5); with the cores
/// loaded by other builds (load 8–10) 4,700–6,400/s, 0.41–0.79 × the bound raw claim ÷ 3 and
/// 0.21–0.35 × the transport ceiling of the same runs. The tuned variant (4 loops of 1,000,
/// 128 sends, 20,000 in flight) was within the noise of the defaults in the same runs, so
/// the defaults stay. `max_in_flight` 5,000 bounds memory (and the results held through an
/// outage) while letting a burst be claimed 5,000 rows ahead.
impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            lease_secs: 120,
            max_attempts: 8,
            backoff_base_secs: 30,
            backoff_max_secs: 3600,
            concurrency: 64,
            endpoint_concurrency: 64,
            workers: 2,
            finish_batch: 500,
            finishers: 2,
            rate_limits_enabled: true,
            poll_interval_ms: 1000,
            lookahead_ms: 3000,
            max_in_flight: 5_000,
            rate_limit_margin: 1,
            shutdown_grace_secs: 30,
        }
    }
}

impl DispatchSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanningSettings {
    /// Obligation kinds that get no reminders (the scheduler closes notices itself).
    pub skip_kinds: Vec<String>,
    /// Kinds (`reminder`, `overdue`, `notice_expiry`, `phase_summary`, `daily_digest`) that are
    /// urgent: marked 【紧急】 and never held by quiet hours or non-working days.
    pub urgent_kinds: Vec<String>,
    /// Reminders at or below this many days before the deadline count as urgent.
    pub urgent_offset_days: Option<u32>,
    /// Days ahead listed in the office digest.
    pub digest_horizon_days: i64,
    /// The office digest can be switched off (e.g. while the office still wants single messages).
    pub digests_enabled: bool,
}

impl PlanningSettings {
    /// Whether obligations of `kind` get no messages (`skip_kinds` names kinds by their code;
    /// a name no kind has skips nothing).
    pub fn skips(&self, kind: junheng_core::effects::ObligationKind) -> bool {
        self.skip_kinds.iter().any(|k| k == kind.code())
    }
}

impl Default for PlanningSettings {
    fn default() -> Self {
        Self {
            skip_kinds: vec!["close_notice".into()],
            urgent_kinds: Vec::new(),
            urgent_offset_days: None,
            digest_horizon_days: 7,
            digests_enabled: true,
        }
    }
}

/// One named endpoint: the channel (`kind = "wecom"` …) plus optional rate limits that
/// replace the vendor defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct EndpointConfig {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    #[serde(default)]
    pub rate_limits: Option<Vec<RateLimit>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub max: u32,
    pub per_secs: u64,
}

impl EndpointConfig {
    /// The limits that apply: configured ones as given, else the vendor's documented ones
    /// with `margin` messages per minute kept free in every window of a minute or more.
    pub fn limits(&self, margin: u32) -> Vec<RateLimit> {
        if let Some(l) = &self.rate_limits {
            return l.clone();
        }
        let l = |max: u32, per_secs| RateLimit {
            max: if per_secs >= 60 {
                max.saturating_sub(margin).max(1)
            } else {
                max
            },
            per_secs,
        };
        match self.endpoint {
            Endpoint::WeCom(_) => vec![l(20, 60)],
            // 20/min documented, throttled for 10 minutes when exceeded: one more spare.
            Endpoint::DingTalk(_) => vec![l(19, 60)],
            Endpoint::Feishu(_) => vec![l(100, 60), l(5, 1)],
            Endpoint::Slack(_) => vec![l(1, 1)],
            _ => vec![],
        }
    }

    /// Chat robots are held by quiet hours; e-mail and files are not.
    pub fn is_chat(&self) -> bool {
        !matches!(self.endpoint, Endpoint::Smtp(_) | Endpoint::File(_))
    }
}

/// Who receives what. Role lists name endpoints; schools are reached through their contacts'
/// robots (endpoint names in `schools.contacts[].robots`), through `school_email` with the
/// contacts' addresses as `to`, and through `schools` for every school.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipients {
    #[serde(default)]
    pub office: Vec<String>,
    #[serde(default)]
    pub leadership: Vec<String>,
    #[serde(default)]
    pub department: Vec<String>,
    #[serde(default)]
    pub panel: Vec<String>,
    /// Endpoints every school receives on (e.g. a local file sink).
    #[serde(default)]
    pub schools: Vec<String>,
    /// An SMTP endpoint used for school e-mail; its `to` is replaced by the contacts' e-mails.
    #[serde(default)]
    pub school_email: Option<String>,
}

/// Default listen address of the scheduler's gRPC API. Here rather than in `grpc`, which
/// reads `Settings`, so the two modules don't import each other.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50052";

fn default_grpc_addr() -> String {
    DEFAULT_GRPC_ADDR.into()
}

fn default_max_connections() -> u32 {
    8
}

fn default_db_acquire_timeout_ms() -> u64 {
    junheng_store::DEFAULT_ACQUIRE_TIMEOUT.as_millis() as u64
}

impl Settings {
    /// Reads `path`, then applies `JUNHENG_SCHEDULER_*` environment overrides, then validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, |k| std::env::var(k).ok())
    }

    /// Parses TOML text with an injected environment (tests pass a closure).
    pub fn from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut s: Settings = toml::from_str(text)?;
        if let Some(v) = env("JUNHENG_SCHEDULER_DATABASE_URL").or_else(|| env("DATABASE_URL")) {
            s.database_url = v;
        }
        if let Some(v) = env("JUNHENG_SCHEDULER_WORKFLOW_URL") {
            s.workflow.url = Some(v);
        }
        if let Some(v) = env("JUNHENG_SCHEDULER_GRPC_ADDR") {
            s.grpc_addr = v;
        }
        // JUNHENG_OFFICE_TOKEN / JUNHENG_CLOCK: the names deploy/scripts/run.sh and the
        // workflow binary use; the JUNHENG_SCHEDULER_ ones win when both are set.
        if let Some(v) =
            env("JUNHENG_SCHEDULER_OFFICE_TOKEN").or_else(|| env("JUNHENG_OFFICE_TOKEN"))
        {
            s.workflow.office_token = Some(SecretString::from(v));
        }
        if let Some(v) = env("JUNHENG_SCHEDULER_CLOCK").or_else(|| env("JUNHENG_CLOCK")) {
            s.clock = match v.as_str() {
                "real" => ClockMode::Real,
                "simulated" => ClockMode::Simulated { start: None },
                other => {
                    return Err(ConfigError::Invalid(vec![format!(
                        "JUNHENG_SCHEDULER_CLOCK: `{other}` is neither real nor simulated"
                    )]));
                }
            };
        }
        if let Some(v) = env("JUNHENG_DB_ACQUIRE_TIMEOUT_MS") {
            s.db_acquire_timeout_ms = v.parse().map_err(|_| {
                ConfigError::Invalid(vec![format!(
                    "JUNHENG_DB_ACQUIRE_TIMEOUT_MS: `{v}` is not a number of milliseconds"
                )])
            })?;
        }
        if let Some(v) = env("JUNHENG_SCHEDULER_RATE_LIMITS") {
            s.dispatch.rate_limits_enabled = v != "off" && v != "false" && v != "0";
        }
        if let Some(v) = env("JUNHENG_CALENDARS_DIR") {
            s.calendars_dir = Some(PathBuf::from(v));
        }
        s.validate()?;
        s.load_calendars()?;
        Ok(s)
    }

    /// Reads the calendars directory ([`Self::calendars_dir`], default `deploy/calendars`) with
    /// the workflow's validation: a file that does not validate is refused, naming it; a
    /// missing directory leaves the shipped years.
    pub fn load_calendars(&mut self) -> Result<(), ConfigError> {
        let dir = self
            .calendars_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(junheng_edge::calendars::DEFAULT_DIR));
        self.calendars = junheng_edge::calendars::load(&dir)
            .map_err(|e| ConfigError::Invalid(vec![format!("calendars_dir: {e:#}")]))?;
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let lists = [
            ("recipients.office", &self.recipients.office),
            ("recipients.leadership", &self.recipients.leadership),
            ("recipients.department", &self.recipients.department),
            ("recipients.panel", &self.recipients.panel),
            ("recipients.schools", &self.recipients.schools),
        ];
        for (field, names) in lists {
            for n in names {
                if !self.endpoints.contains_key(n) {
                    problems.push(format!("{field}: no endpoint named `{n}`"));
                }
            }
        }
        if let Some(n) = &self.recipients.school_email {
            match self.endpoints.get(n) {
                Some(EndpointConfig {
                    endpoint: Endpoint::Smtp(_),
                    ..
                }) => {}
                Some(_) => problems.push(format!(
                    "recipients.school_email: `{n}` is not an smtp endpoint"
                )),
                None => problems.push(format!("recipients.school_email: no endpoint named `{n}`")),
            }
        }
        for (name, ep) in &self.endpoints {
            // The mailer's own acceptance, at load: a configured address it refuses would
            // otherwise only show at the first send.
            if let Endpoint::Smtp(smtp) = &ep.endpoint {
                if let Err(e) = junheng_notify::check_mailbox(&smtp.from) {
                    problems.push(format!(
                        "endpoints.{name}.from: not an e-mail address ({e})"
                    ));
                }
                for (i, to) in smtp.to.iter().enumerate() {
                    if let Err(e) = junheng_notify::check_mailbox(to) {
                        problems.push(format!(
                            "endpoints.{name}.to[{i}]: not an e-mail address ({e})"
                        ));
                    }
                }
            }
            for l in ep.limits(self.dispatch.rate_limit_margin) {
                if l.max == 0 || l.per_secs == 0 {
                    problems.push(format!(
                        "endpoints.{name}.rate_limits: max and per_secs must be positive"
                    ));
                }
            }
        }
        if self.db_acquire_timeout_ms == 0 {
            problems.push("db_acquire_timeout_ms: must be positive".into());
        }
        if self.grpc_addr.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "grpc_addr: `{}` is not a socket address like 127.0.0.1:50052",
                self.grpc_addr
            ));
        }
        if self.database_url.is_empty() {
            problems.push("database_url: empty (set it or DATABASE_URL)".into());
        }
        if self.dispatch.max_attempts < 1
            || self.dispatch.batch_size < 1
            || self.dispatch.concurrency < 1
            || self.dispatch.workers < 1
            || self.dispatch.finish_batch < 1
            || self.dispatch.finishers < 1
            || self.dispatch.endpoint_concurrency < 1
        {
            problems.push(
                "dispatch: max_attempts, batch_size, concurrency, endpoint_concurrency, workers, finish_batch and finishers must be at least 1".into(),
            );
        }
        if self.dispatch.max_in_flight < self.dispatch.batch_size.max(1) as usize {
            problems.push(format!(
                "dispatch.max_in_flight: {} is less than batch_size {}",
                self.dispatch.max_in_flight, self.dispatch.batch_size
            ));
        }
        if self.workflow.url.is_some() && self.workflow.office_token.is_none() {
            problems.push("workflow.office_token: required when workflow.url is set".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = include_str!("../config/local.toml");

    #[test]
    fn shipped_local_config_is_valid() {
        let s = Settings::from_toml(LOCAL, |_| None).unwrap();
        assert_eq!(s.clock, ClockMode::Real);
        assert!(s.endpoints.contains_key("outbox-files"));
    }

    #[test]
    fn env_overrides_and_validation() {
        let s = Settings::from_toml(LOCAL, |k| match k {
            "DATABASE_URL" => Some("postgres://x/y".into()),
            "JUNHENG_SCHEDULER_CLOCK" => Some("simulated".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.database_url, "postgres://x/y");
        assert_eq!(s.clock, ClockMode::Simulated { start: None });

        let bad = r#"
            database_url = "postgres://x/y"
            [recipients]
            office = ["nope"]
            school_email = "files"
            [endpoints.files]
            kind = "file"
            dir = "/tmp/x"
        "#;
        let err = Settings::from_toml(bad, |_| None).unwrap_err().to_string();
        assert!(
            err.contains("recipients.office: no endpoint named `nope`"),
            "{err}"
        );
        assert!(err.contains("is not an smtp endpoint"), "{err}");
    }

    #[test]
    fn smtp_addresses_the_mailer_refuses_are_refused_at_load() {
        let bad = r#"
            database_url = "postgres://x/y"
            [endpoints.mail]
            kind = "smtp"
            host = "127.0.0.1"
            from = "jy@@junheng.example"
            to = ["office@junheng.example", "bad address"]
            message_id_domain = "junheng.example"
        "#;
        let err = Settings::from_toml(bad, |_| None).unwrap_err().to_string();
        assert!(
            err.contains("endpoints.mail.from: not an e-mail address"),
            "{err}"
        );
        assert!(
            err.contains("endpoints.mail.to[1]: not an e-mail address"),
            "{err}"
        );
        assert!(!err.contains("to[0]"), "{err}");
    }

    #[test]
    fn in_flight_below_one_batch_is_refused_by_name() {
        let bad = r#"
            database_url = "postgres://x/y"
            [dispatch]
            batch_size = 500
            max_in_flight = 100
        "#;
        let err = Settings::from_toml(bad, |_| None).unwrap_err().to_string();
        assert!(
            err.contains("dispatch.max_in_flight: 100 is less than batch_size 500"),
            "{err}"
        );
    }

    #[test]
    fn vendor_default_limits_and_debug_hides_secrets() {
        let s = Settings::from_toml(
            r#"
            database_url = "postgres://x/y"
            [endpoints.feishu]
            kind = "feishu"
            hook_id = "HOOK-SECRET"
            secret = "SIGN-SECRET"
            [endpoints.wecom]
            kind = "wecom"
            key = "KEY-SECRET"
            rate_limits = [{ max = 3, per_secs = 10 }]
            "#,
            |_| None,
        )
        .unwrap();
        assert_eq!(
            s.endpoints["feishu"].limits(s.dispatch.rate_limit_margin),
            vec![
                RateLimit {
                    max: 99,
                    per_secs: 60
                },
                RateLimit {
                    max: 5,
                    per_secs: 1
                }
            ]
        );
        assert_eq!(
            s.endpoints["wecom"].limits(s.dispatch.rate_limit_margin),
            vec![RateLimit {
                max: 3,
                per_secs: 10
            }]
        );
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("SECRET"), "{dbg}");
    }

    /// The scheduler reads the calendars directory as the workflow does: a synthetic 2031 file
    /// makes a 2031 campaign's days known (its holiday is off, its make-up Saturday working); a
    /// campaign in a year without a file is an error naming the year and the file to add.
    #[test]
    fn the_calendars_directory_adds_years_and_an_unknown_year_is_named() {
        let dir = std::env::temp_dir().join(format!("junheng-sched-cal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("2031.toml"),
            "year = 2031\n[[holidays]]\nname = \"县庆\"\noff = [\"2031-03-05\"]\nworking = [\"2031-03-08\"]\n",
        )
        .unwrap();
        let dir_str = dir.display().to_string();
        let s = Settings::from_toml(LOCAL, |k| {
            (k == "JUNHENG_CALENDARS_DIR").then(|| dir_str.clone())
        })
        .unwrap();
        assert!(s.calendars.covers(2031) && s.calendars.covers(2020));
        let def_text = include_str!("../../../deploy/campaigns/changle-2020.toml");
        let def_2031 = def_text
            .replace("2020-", "2031-")
            .replace("year = 2020", "year = 2031");
        let stored = junheng_core::CampaignDefinition::parse_with(&def_2031, &s.calendars)
            .unwrap()
            .canonical()
            .0;
        let def = crate::planning::definition(&s, &stored).unwrap();
        let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        assert_eq!(def.calendar().is_working_day(day("2031-03-05")), Ok(false));
        assert_eq!(def.calendar().is_working_day(day("2031-03-08")), Ok(true));
        // Without the directory the same campaign is named, not planned as all working days.
        let shipped = Settings::from_toml(LOCAL, |_| None).unwrap();
        let e = crate::planning::definition(&shipped, &stored)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "campaign definition: campaign changle-2020: no working-day calendar data for year 2031; add deploy/calendars/2031.toml (the State Council's holiday schedule for 2031)"
        );
        // A file that does not validate stops the start, naming it.
        std::fs::write(dir.join("2032.toml"), "year = 2033\n").unwrap();
        let e = Settings::from_toml(LOCAL, |k| {
            (k == "JUNHENG_CALENDARS_DIR").then(|| dir_str.clone())
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("invalid configuration:\ncalendars_dir: ")
                && e.ends_with(
                    "2032.toml: year: the file says 2033 but is named 2032.toml; name it 2033.toml"
                ),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
