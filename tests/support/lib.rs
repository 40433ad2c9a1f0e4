//! Test support: a fresh database per test in the PostgreSQL that `DATABASE_URL` points at
//! (the README's test command starts a private cluster and sets it), and the real workflow
//! server on a free port.

pub mod certs;

use std::str::FromStr;

use chrono::{DateTime, Utc};
use junheng_proto::v1 as pb;
use junheng_proto::v1::admin_service_client::AdminServiceClient;
use junheng_proto::v1::campaign_service_client::CampaignServiceClient;
use junheng_proto::v1::mentor_service_client::MentorServiceClient;
use junheng_proto::v1::school_service_client::SchoolServiceClient;
use junheng_proto::v1::seed_service_client::SeedServiceClient;
use junheng_store::PgPool;
use junheng_workflow::{ClockMode, Running};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

pub use junheng_workflow::bootstrap::{CHANGLE_2020, demo_schools};

pub const OFFICE_TOKEN: &str = "test-office-token";

/// A fresh, migrated database named after nothing else, so tests never share state.
pub async fn fresh_db() -> (PgPool, String) {
    let admin = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a PostgreSQL server where tests may create databases (the README's test command sets it)");
    let name = format!("jh_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect to the test server");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut opts = sqlx::postgres::PgConnectOptions::from_str(&admin).expect("DATABASE_URL parses");
    opts = opts.database(&name);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(40)
        .connect_with(opts)
        .await
        .expect("connect to the test database");
    junheng_store::MIGRATOR
        .run(&pool)
        .await
        .expect("migrations apply");
    (pool, name)
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

/// The real server and clients for every service.
pub struct App {
    pub server: Running,
    pub pool: PgPool,
    pub channel: Channel,
}

impl App {
    pub async fn spawn(clock: ClockMode) -> App {
        Self::spawn_with_calendars(clock, junheng_core::calendar::Calendars::shipped().clone())
            .await
    }

    /// A server that knows these working-day calendar years (a bureau's added files).
    pub async fn spawn_with_calendars(
        clock: ClockMode,
        calendars: junheng_core::calendar::Calendars,
    ) -> App {
        let (pool, _) = fresh_db().await;
        junheng_workflow::bootstrap::ensure_office_token(&pool, Some(OFFICE_TOKEN))
            .await
            .expect("office token");
        let server = junheng_workflow::spawn_with_calendars(pool.clone(), clock, calendars)
            .await
            .expect("server starts");
        let channel = Channel::from_shared(server.url())
            .expect("url")
            .connect()
            .await
            .expect("connect");
        App {
            server,
            pool,
            channel,
        }
    }

    /// The real server with its pages (公示栏, dashboard) on a second free port; returns
    /// the pages' base URL too.
    pub async fn spawn_with_web(clock: ClockMode) -> (App, String) {
        Self::spawn_with_web_options(clock, Default::default()).await
    }

    /// As [`App::spawn_with_web`], with these page options (the desk's scheduler client).
    pub async fn spawn_with_web_options(
        clock: ClockMode,
        options: junheng_workflow::web::WebOptions,
    ) -> (App, String) {
        let (pool, _) = fresh_db().await;
        junheng_workflow::bootstrap::ensure_office_token(&pool, Some(OFFICE_TOKEN))
            .await
            .expect("office token");
        let (server, web) = junheng_workflow::spawn_with_web_options(pool.clone(), clock, options)
            .await
            .expect("server starts");
        let channel = Channel::from_shared(server.url())
            .expect("url")
            .connect()
            .await
            .expect("connect");
        (
            App {
                server,
                pool,
                channel,
            },
            format!("http://{web}"),
        )
    }

    pub fn campaigns(&self) -> CampaignServiceClient<Channel> {
        CampaignServiceClient::new(self.channel.clone())
    }
    pub fn schools(&self) -> SchoolServiceClient<Channel> {
        SchoolServiceClient::new(self.channel.clone())
    }
    pub fn seed(&self) -> SeedServiceClient<Channel> {
        SeedServiceClient::new(self.channel.clone())
    }
    pub fn mentor(&self) -> MentorServiceClient<Channel> {
        MentorServiceClient::new(self.channel.clone())
    }
    pub fn pairing(
        &self,
    ) -> junheng_proto::v1::pairing_service_client::PairingServiceClient<Channel> {
        junheng_proto::v1::pairing_service_client::PairingServiceClient::new(self.channel.clone())
    }
    pub fn acceptance(
        &self,
    ) -> junheng_proto::v1::acceptance_service_client::AcceptanceServiceClient<Channel> {
        junheng_proto::v1::acceptance_service_client::AcceptanceServiceClient::new(
            self.channel.clone(),
        )
    }
    pub fn awards(&self) -> junheng_proto::v1::award_service_client::AwardServiceClient<Channel> {
        junheng_proto::v1::award_service_client::AwardServiceClient::new(self.channel.clone())
    }
    pub fn sheets(
        &self,
    ) -> junheng_proto::v1::spreadsheet_service_client::SpreadsheetServiceClient<Channel> {
        junheng_proto::v1::spreadsheet_service_client::SpreadsheetServiceClient::new(
            self.channel.clone(),
        )
    }
    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// Appoints the phase-2 panel of `campaign` (phase 2 open) as the bootstrap office: one
    /// panel token per member (name, affiliation, the campaign school it belongs to or "");
    /// returns the members' tokens in order.
    pub async fn mentor_panel(
        &self,
        campaign: &str,
        members: &[(&str, pb::Affiliation, &str)],
    ) -> Vec<String> {
        let mut tokens = Vec::new();
        let mut listed = Vec::new();
        for (name, affiliation, school) in members {
            let r = self
                .admin()
                .issue_token(auth(
                    OFFICE_TOKEN,
                    pb::IssueTokenRequest {
                        idempotency_key: key(),
                        name: (*name).into(),
                        role: pb::Role::Panel as i32,
                        ..Default::default()
                    },
                ))
                .await
                .expect("issue panel token")
                .into_inner();
            listed.push(pb::MentorPanelMember {
                actor: r.actor,
                name: (*name).into(),
                affiliation: *affiliation as i32,
                school_id: (*school).into(),
            });
            tokens.push(r.token);
        }
        self.mentor()
            .form_mentor_panel(auth(
                OFFICE_TOKEN,
                pb::FormMentorPanelRequest {
                    idempotency_key: key(),
                    campaign_id: campaign.into(),
                    members: listed,
                },
            ))
            .await
            .expect("form the phase-2 panel");
        tokens
    }

    /// Issues a token for a role (and a school for ROLE_SCHOOL) through the API.
    pub async fn token(&self, name: &str, role: pb::Role, school: &str) -> String {
        let req = pb::IssueTokenRequest {
            idempotency_key: key(),
            name: name.into(),
            role: role as i32,
            school_id: school.into(),
            ..Default::default()
        };
        self.admin()
            .issue_token(auth(OFFICE_TOKEN, req))
            .await
            .expect("issue token")
            .into_inner()
            .token
    }

    /// Issues a token with a scope (campaign ids; empty: the school's campaign for a school
    /// token, else county-wide) and an optional expiry, as the bootstrap office; returns the
    /// secret and the token id.
    pub async fn scoped_token(
        &self,
        name: &str,
        role: pb::Role,
        school: &str,
        campaigns: &[&str],
        expires_at: Option<DateTime<Utc>>,
    ) -> (String, String) {
        let req = pb::IssueTokenRequest {
            idempotency_key: key(),
            name: name.into(),
            role: role as i32,
            school_id: school.into(),
            campaign_ids: campaigns.iter().map(|c| c.to_string()).collect(),
            expires_at: expires_at.map(ts),
        };
        let r = self
            .admin()
            .issue_token(auth(OFFICE_TOKEN, req))
            .await
            .expect("issue token")
            .into_inner();
        (r.token, r.token_id)
    }

    /// Revokes a token as the bootstrap office.
    pub async fn revoke(&self, token_id: &str) {
        let req = pb::RevokeTokenRequest {
            idempotency_key: key(),
            token_id: token_id.into(),
            reason: "test".into(),
        };
        self.admin()
            .revoke_token(auth(OFFICE_TOKEN, req))
            .await
            .expect("revoke token");
    }

    pub async fn advance(&self, to: &str) {
        let req = pb::AdvanceClockRequest {
            idempotency_key: key(),
            to: Some(ts(at(to))),
        };
        self.admin()
            .advance_clock(auth(OFFICE_TOKEN, req))
            .await
            .expect("advance clock");
    }

    /// Counts rows of a table, to prove a refused call changed nothing.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    /// A fingerprint of everything the workflow stores, to prove a refused call changed nothing.
    pub async fn snapshot(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for t in [
            "campaigns",
            "schools",
            "applications",
            "notices",
            "objections",
            "presentations",
            "practices",
            "ratings",
            "events",
            "obligations",
            "idempotency_keys",
            "tokens",
        ] {
            out.push(self.count(t).await);
        }
        out.push(
            sqlx::query_scalar::<_, i64>("SELECT coalesce(sum(version), 0)::bigint FROM schools")
                .fetch_one(&self.pool)
                .await
                .expect("versions"),
        );
        out
    }
}

pub fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn auth<T>(token: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    r
}

/// Asserts a status code and returns the field names of its BadRequest violations.
pub fn expect_code<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, Status>,
    code: Code,
) -> Status {
    match r {
        Ok(v) => panic!("expected {code:?}, got success: {v:?}"),
        Err(s) => {
            assert_eq!(s.code(), code, "unexpected status: {}", s.message());
            s
        }
    }
}

pub fn violations(s: &Status) -> Vec<String> {
    s.get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Demo schools in request form.
pub fn demo_requests() -> Vec<pb::NewSchool> {
    demo_schools()
        .into_iter()
        .map(|s| pb::NewSchool {
            contacts: vec![pb::Contact {
                name: "校长".into(),
                email: format!("s{}@schools.changle.example", s.code),
                mobile: String::new(),
                robots: vec![],
            }],
            code: s.code.into(),
            name: s.name,
            level: match s.level.as_str() {
                "primary" => pb::SchoolLevel::Primary,
                "junior" => pb::SchoolLevel::Junior,
                _ => pb::SchoolLevel::NineYear,
            } as i32,
            town: s.town,
            principal: s.principal,
        })
        .collect()
}

/// Creates the Changle 2020 campaign and registers the demo schools through the API.
pub async fn changle(app: &App) -> (pb::Campaign, Vec<pb::School>) {
    let c = app
        .campaigns()
        .create_campaign(auth(
            OFFICE_TOKEN,
            pb::CreateCampaignRequest {
                idempotency_key: key(),
                definition_toml: CHANGLE_2020.into(),
            },
        ))
        .await
        .expect("create campaign")
        .into_inner();
    let schools = app
        .schools()
        .register_schools(auth(
            OFFICE_TOKEN,
            pb::RegisterSchoolsRequest {
                idempotency_key: key(),
                campaign_id: c.id.clone(),
                schools: demo_requests(),
            },
        ))
        .await
        .expect("register schools")
        .into_inner()
        .schools;
    (c, schools)
}

/// Asserts INVALID_ARGUMENT with a field violation on `field` (or one of its sub-fields).
pub fn assert_invalid<T: std::fmt::Debug>(r: Result<tonic::Response<T>, Status>, field: &str) {
    let s = expect_code(r, Code::InvalidArgument);
    let fields = violations(&s);
    assert!(
        fields
            .iter()
            .any(|f| f == field || f.starts_with(&format!("{field}."))),
        "expected a violation on `{field}`, got {fields:?} ({})",
        s.message()
    );
}

/// A PostgreSQL cluster of the test's own (initdb in a temporary directory, a free port), so a
/// test can stop and start the server under a running service. `pg_ctl` and `initdb` refuse
/// to run as root, so as root they run as the `postgres` user (as `deploy/scripts/pg.sh` does).
pub struct PrivatePg {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePg {
    /// Initialises and starts a cluster; [`PrivatePg::url`] is its admin URL.
    pub fn start() -> PrivatePg {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())
            .or_else(|| {
                let out = std::process::Command::new("pg_config")
                    .arg("--bindir")
                    .output()
                    .ok()?;
                Some(String::from_utf8(out.stdout).ok()?.trim().into())
            })
            .expect("PostgreSQL binaries (initdb, pg_ctl) are installed");
        // A short path: the socket directory lives inside it (~107-byte limit).
        let dir = std::path::PathBuf::from(format!(
            "/tmp/jh-pg-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let pg = PrivatePg { dir, bin, port };
        if Self::root() {
            let ok = std::process::Command::new("chown")
                .arg("postgres")
                .arg(&pg.dir)
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown the cluster directory to postgres");
        }
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        pg.start_again();
        pg
    }

    fn root() -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if Self::root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The admin URL (database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server on the same data directory and port (after [`PrivatePg::stop`]).
    pub fn start_again(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c max_connections=100 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        );
    }

    /// Stops the server the way an operator would (`pg_ctl stop -m fast`): open connections are
    /// terminated, new ones refused.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
        let _ = if Self::root() {
            std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            std::process::Command::new(&exe).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
