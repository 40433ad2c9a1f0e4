//! A database outage longer than the lease with deliveries in flight: the finisher holds the
//! results it could not record, the claim loops stop claiming, and when PostgreSQL is back the
//! results are written before anything is claimed again: every message reaches the sink
//! exactly once.
//!
//! The test runs its own PostgreSQL cluster (it stops and starts it), on a fixed port so the
//! pool reconnects to the same address.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use junheng_scheduler::outbox::{self, Kind, NewRow, Payload};
use junheng_scheduler::{Dispatcher, Settings};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

const BIN: &str = "/usr/lib/postgresql/15/bin";

struct Cluster {
    dir: PathBuf,
    port: u16,
}

fn as_owner(cmd: &str) -> Command {
    let path = format!("{BIN}/{cmd}");
    if unsafe_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Cluster {
    fn start() -> Cluster {
        let dir = PathBuf::from(format!("/tmp/jh-outage-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if unsafe_is_root() {
            assert!(
                Command::new("chown")
                    .args(["postgres", dir.to_str().unwrap()])
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let out = as_owner("initdb")
            .args(["-D", dir.join("data").to_str().unwrap()])
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Cluster { dir, port };
        c.pg_ctl_start();
        c
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_owned()
    }

    fn pg_ctl_start(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let out = as_owner("pg_ctl")
            .args(["-D", &self.data(), "-w", "-l"])
            .arg(self.dir.join("log"))
            .args(["-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }

    fn stop(&self, mode: &str) {
        let out = as_owner("pg_ctl")
            .args(["-D", &self.data(), "-w", "-m", mode, "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }

    fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database("postgres")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_owner("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}

/// Counts each webhook-id; answers 200 after `delay`.
struct Counter {
    seen: Arc<Mutex<HashMap<String, u32>>>,
    delay: Duration,
}

impl wiremock::Respond for Counter {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        let id = req
            .headers
            .get("webhook-id")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        *self.seen.lock().unwrap().entry(id).or_default() += 1;
        wiremock::ResponseTemplate::new(200).set_delay(self.delay)
    }
}

const N: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_longer_than_the_lease_sends_no_delivered_message_again() {
    let pg = Cluster::start();
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(pg.options())
        .await
        .unwrap();
    junheng_store::MIGRATOR.run(&pool).await.unwrap();

    let server = wiremock::MockServer::start().await;
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(Counter {
            seen: seen.clone(),
            delay: Duration::from_millis(1_500),
        })
        .mount(&server)
        .await;
    // A short lease (5 s) so the outage (12 s) outlasts it while the test stays short.
    let settings = Arc::new(
        Settings::from_toml(
            &format!(
                r#"
                database_url = "postgres://unused/unused"
                [dispatch]
                lease_secs = 5
                endpoint_concurrency = 8
                poll_interval_ms = 200
                [planning]
                digests_enabled = false
                [endpoints.hook]
                kind = "webhook"
                url = "{}/hook"
                secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
                [recipients]
                office = ["hook"]
                "#,
                server.uri()
            ),
            |_| None,
        )
        .unwrap(),
    );
    let campaign = Uuid::now_v7();
    let now = Utc::now();
    let rows: Vec<NewRow> = (0..N)
        .map(|i| NewRow {
            dedupe_key: format!("outage:{i}|role:office|hook"),
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
            not_before: now,
            held: false,
        })
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    outbox::insert(&mut conn, &rows, now).await.unwrap();
    drop(conn);

    let d = Dispatcher::new(
        pool.clone(),
        settings,
        Arc::new(junheng_notify::Sender::new().unwrap()),
        "outage".into(),
    );
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn({
        let d = d.clone();
        async move { d.run(stop_rx).await }
    });

    // Deliveries in flight (each takes 1.5 s at the sink): stop the database now.
    let t = std::time::Instant::now();
    while seen.lock().unwrap().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(20), "nothing was sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pg.stop("fast");
    let delivered_during = {
        tokio::time::sleep(Duration::from_secs(12)).await;
        seen.lock().unwrap().len()
    };
    pg.pg_ctl_start();

    // Everything is recorded once the database is back.
    let t = std::time::Instant::now();
    loop {
        let sent: Result<i64, _> =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'sent'")
                .fetch_one(&pool)
                .await;
        if sent.as_ref().is_ok_and(|n| *n == N as i64) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "not all sent after the outage: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let report = running.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "outage 12 s (lease 5 s): {delivered_during} delivered before/while the database was down; report {report:?}"
    );
    assert!(
        delivered_during >= 1,
        "deliveries were in flight during the outage"
    );
    assert_eq!(seen.len(), N, "every message reached the sink");
    assert!(twice.is_empty(), "sent again after the outage: {twice:?}");
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, N as i64, "one recorded attempt per message");
}
