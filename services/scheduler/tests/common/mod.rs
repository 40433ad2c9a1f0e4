//! Test helpers: a fresh PostgreSQL database per test (migrated with the store's migrator),
//! the shipped Changle 2020 campaign, rows inserted directly, a webhook sink and a tiny SMTP
//! sink.
#![allow(dead_code)]

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use junheng_core::{CampaignDefinition, PhaseBoard};
use junheng_scheduler::{Settings, Workflow, WorkflowError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

pub const CAMPAIGN_TOML: &str = include_str!("../../../../deploy/campaigns/changle-2020.toml");

fn admin_url() -> String {
    if let Ok(u) = std::env::var("DATABASE_URL") {
        return u;
    }
    let env = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env"))
        .unwrap_or_default();
    env.lines()
        .find_map(|l| l.strip_prefix("DATABASE_URL="))
        .map(|s| s.trim().to_owned())
        .expect("DATABASE_URL must point at a PostgreSQL server where tests may CREATE DATABASE")
}

pub struct TestDb {
    pub name: String,
    pub options: PgConnectOptions,
    pub pool: PgPool,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let base = PgConnectOptions::from_str(&admin_url()).expect("valid DATABASE_URL");
        let name = format!("sched_{}", Uuid::new_v4().simple());
        let mut admin = base
            .clone()
            .database("postgres")
            .connect()
            .await
            .expect("connect to the admin database");
        // The name is a generated uuid, never user input.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let options = base.database(&name);
        let pool = Self::pool_for(&options, 5).await;
        junheng_store::MIGRATOR.run(&pool).await.unwrap();
        TestDb {
            name,
            options,
            pool,
        }
    }

    pub async fn pool_for(options: &PgConnectOptions, max: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max)
            .connect_with(options.clone())
            .await
            .unwrap()
    }

    /// A URL for this database (for a child process), keeping credentials and parameters.
    pub fn url(&self) -> String {
        let admin = admin_url();
        let (base, query) = match admin.split_once('?') {
            Some((b, q)) => (b.to_owned(), format!("?{q}")),
            None => (admin.clone(), String::new()),
        };
        let (head, _) = base.rsplit_once('/').expect("URL has a path");
        format!("{head}/{}{query}", self.name)
    }

    pub async fn another_pool(&self, max: u32) -> PgPool {
        Self::pool_for(&self.options, max).await
    }
}

/// `n` office digests to the webhook endpoint `hook`, due at `at`; dedupe keys
/// `{prefix}:{i}|role:office|hook`.
pub fn office_digests(
    prefix: &str,
    campaign: Uuid,
    n: usize,
    at: DateTime<Utc>,
) -> Vec<junheng_scheduler::outbox::NewRow> {
    use junheng_scheduler::outbox::{Kind, NewRow, Payload};
    (0..n)
        .map(|i| NewRow {
            dedupe_key: format!("{prefix}:{i}|role:office|hook"),
            campaign_id: campaign,
            kind: Kind::DailyDigest,
            endpoint: "hook".into(),
            recipient: "role:office".into(),
            obligation_id: None,
            planned_due_at: None,
            payload: Payload {
                title: format!("消息 {i}"),
                text: format!("第 {i} 条"),
                ..Payload::default()
            },
            urgent: false,
            not_before: at,
            held: false,
            trace_context: None,
        })
        .collect()
}

pub fn definition() -> CampaignDefinition {
    CampaignDefinition::parse(CAMPAIGN_TOML).expect("shipped definition parses")
}

/// A local instant in the campaign time zone (Asia/Shanghai).
pub fn local(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(y, m, d, h, mi, 0)
        .unwrap()
        .with_timezone(&Utc)
}

pub async fn seed_campaign(pool: &PgPool) -> Uuid {
    let def = definition();
    let (canonical, sha) = def.canonical();
    let id = Uuid::now_v7();
    // Plain SQL rather than the store's row type, which grows with the workflow.
    sqlx::query(
        "INSERT INTO campaigns (id, code, county, year, time_zone, definition, definition_sha256, phases, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(&def.code)
    .bind(&def.county)
    .bind(def.year)
    .bind(&def.time_zone)
    .bind(canonical)
    .bind(sha)
    .bind(serde_json::to_value(PhaseBoard::new(&def)).unwrap())
    .bind(local(2020, 2, 1, 0, 0))
    .execute(pool)
    .await
    .unwrap();
    id
}

pub async fn add_school(
    pool: &PgPool,
    campaign: Uuid,
    code: &str,
    name: &str,
    state: &str,
    contacts: serde_json::Value,
) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO schools (id, campaign_id, code, name, level, town, principal, contacts, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'primary', '宝城街道', '王校长', $5, $6, $7, $7)",
    )
    .bind(id)
    .bind(campaign)
    .bind(code)
    .bind(name)
    .bind(contacts)
    .bind(state)
    .bind(local(2020, 2, 1, 0, 0))
    .execute(pool)
    .await
    .unwrap();
    id
}

pub struct Obl<'a> {
    pub kind: &'a str,
    pub school: Option<Uuid>,
    pub owner_role: &'a str,
    pub owner_school: Option<Uuid>,
    pub due: DateTime<Utc>,
    pub subject: &'a str,
    pub created: DateTime<Utc>,
}

pub async fn add_obligation(pool: &PgPool, campaign: Uuid, o: Obl<'_>) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO obligations (id, campaign_id, kind, school_id, key, owner_role, owner_school, deadline_ref, due_at, subject, status, created_at)
         VALUES ($1, $2, $3, $4, '', $5, $6, 'milestone:seed_designation:application_deadline', $7, $8, 'open', $9)",
    )
    .bind(id)
    .bind(campaign)
    .bind(o.kind)
    .bind(o.school)
    .bind(o.owner_role)
    .bind(o.owner_school)
    .bind(o.due)
    .bind(o.subject)
    .bind(o.created)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// Settings with a Standard-Webhooks endpoint `hook` (no rate limit unless given) and
/// whatever extra TOML is appended.
pub fn settings(hook_url: &str, extra: &str) -> Arc<Settings> {
    let text = format!(
        r#"
        database_url = "postgres://unused/unused"
        [dispatch]
        batch_size = 50
        lease_secs = 60
        max_attempts = 3
        backoff_base_secs = 30
        backoff_max_secs = 3600
        concurrency = 8
        {extra}
        [endpoints.hook]
        kind = "webhook"
        url = "{hook_url}"
        secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
        "#
    );
    let text = if extra.contains("[planning]") {
        text
    } else {
        format!("{text}\n[planning]\ndigests_enabled = false\n")
    };
    let text = if text.contains("[recipients]") {
        text
    } else {
        format!(
            "{text}\n[recipients]\noffice = [\"hook\"]\nleadership = [\"hook\"]\nschools = [\"hook\"]\n"
        )
    };
    Arc::new(Settings::from_toml(&text, |_| None).unwrap())
}

/// A wiremock webhook sink answering 200.
pub async fn webhook_sink() -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub ts: i64,
    pub body: serde_json::Value,
}

pub async fn received(server: &wiremock::MockServer) -> Vec<Received> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| Received {
            id: r
                .headers
                .get("webhook-id")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            ts: r
                .headers
                .get("webhook-timestamp")
                .map(|v| v.to_str().unwrap().parse().unwrap())
                .unwrap_or_default(),
            body: serde_json::from_slice(&r.body).unwrap_or_default(),
        })
        .collect()
}

/// A workflow double that records CloseNotice calls and fails the first `fail_first`.
#[derive(Default)]
pub struct FakeWorkflow {
    pub calls: Mutex<Vec<(Uuid, String)>>,
    pub fail_first: Mutex<usize>,
}

#[async_trait]
impl Workflow for FakeWorkflow {
    async fn close_notice(&self, notice_id: Uuid, key: &str) -> Result<(), WorkflowError> {
        self.calls.lock().unwrap().push((notice_id, key.to_owned()));
        let mut f = self.fail_first.lock().unwrap();
        if *f > 0 {
            *f -= 1;
            return Err(WorkflowError::Call(
                "Unavailable: workflow restarting".into(),
            ));
        }
        Ok(())
    }
}

/// A minimal SMTP server that accepts everything and keeps each message's DATA.
pub struct SmtpSink {
    pub port: u16,
    pub messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut lines = BufReader::new(r).lines();
                    w.write_all(b"220 sink ESMTP\r\n").await.ok();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                            w.write_all(b"250-sink\r\n250 8BITMIME\r\n").await.ok();
                        } else if upper.starts_with("DATA") {
                            w.write_all(b"354 go ahead\r\n").await.ok();
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            store.lock().unwrap().push(data);
                            w.write_all(b"250 queued\r\n").await.ok();
                        } else if upper.starts_with("QUIT") {
                            w.write_all(b"221 bye\r\n").await.ok();
                            break;
                        } else {
                            w.write_all(b"250 ok\r\n").await.ok();
                        }
                    }
                });
            }
        });
        SmtpSink { port, messages }
    }

    pub fn toml(&self, name: &str) -> String {
        format!(
            "[endpoints.{name}]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"jy@junheng.example\"\nto = [\"office@junheng.example\"]\nmessage_id_domain = \"junheng.example\"\n",
            self.port
        )
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

/// The real SMTP server of the notify crate's tests: `python3 -m aiosmtpd` with
/// `services/notify/tests/smtp_sink.py`, storing each message as an .eml file. Killed on drop.
pub struct Aiosmtpd {
    child: std::process::Child,
    pub port: u16,
    pub dir: std::path::PathBuf,
}

impl Aiosmtpd {
    pub fn start() -> Aiosmtpd {
        use std::process::{Command, Stdio};
        use std::time::{Duration, Instant};
        let dir =
            std::env::temp_dir().join(format!("junheng-sched-smtp-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let handler_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../notify/tests");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "smtp_sink.Sink"])
            .env("PYTHONPATH", &handler_dir)
            .env("SMTP_SINK_DIR", &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 -m aiosmtpd (install python3-aiosmtpd or pip install aiosmtpd)");
        let mut sink = Aiosmtpd { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sink.child.try_wait() {
                panic!("aiosmtpd exited early with {status} (is the aiosmtpd package installed?)");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sink
    }

    pub fn toml(&self, name: &str) -> String {
        format!(
            "[endpoints.{name}]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"jy@junheng.example\"\nto = [\"office@junheng.example\"]\nmessage_id_domain = \"junheng.example\"\n",
            self.port
        )
    }

    /// The stored messages (raw RFC 5322 bytes), waiting up to 10 s for `n` of them.
    pub fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut emls: Vec<std::path::PathBuf> = std::fs::read_dir(&self.dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect();
            if emls.len() >= n {
                emls.sort();
                return emls.iter().map(|p| std::fs::read(p).unwrap()).collect();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {n} messages arrived in {:?}",
                emls.len(),
                self.dir
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn outbox_rows(
    pool: &PgPool,
) -> Vec<(
    uuid::Uuid,
    String,
    String,
    String,
    String,
    i32,
    Option<String>,
)> {
    sqlx::query_as("SELECT id, kind, recipient, endpoint, status, attempts, last_error FROM outbox ORDER BY created_at, dedupe_key").fetch_all(pool).await.unwrap()
}

/// The test's own PostgreSQL cluster, which a test stops and starts under a running
/// scheduler; shared with the workspace's end-to-end tests.
#[allow(unused_imports)] // not every test binary that includes this module uses it
pub use junheng_tests::PrivatePg;
