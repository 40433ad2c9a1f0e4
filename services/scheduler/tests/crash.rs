//! kill -9 of the real binary in the middle of a batch, then a restart: nothing is lost, no
//! message gets a second id, and raw re-sends (same id) are counted.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use common::*;
use junheng_scheduler::outbox::{self, Kind, NewRow, Payload};
use sqlx::PgPool;
use uuid::Uuid;

const N: usize = 400;

fn spawn(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_junheng-scheduler"))
        .arg("--config")
        .arg(config)
        // No metrics listener: its fixed default port may be taken by another scheduler on the
        // machine, and this test reads nothing from it.
        .args(["--metrics-addr", "off"])
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start junheng-scheduler")
}

async fn count_sent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'sent'")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_batch_then_restart_loses_nothing() {
    let db = TestDb::new().await;
    // A slow sink, so the kill lands while requests are in flight.
    let sink = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_delay(Duration::from_millis(20)))
        .mount(&sink)
        .await;
    let t0 = local(2020, 4, 9, 10, 0);
    sqlx::query("INSERT INTO clock (singleton, simulated_now) VALUES (true, $1)")
        .bind(t0)
        .execute(&db.pool)
        .await
        .unwrap();
    let campaign = Uuid::now_v7();
    let rows: Vec<NewRow> = (0..N)
        .map(|i| NewRow {
            dedupe_key: format!("crash:{i}|role:office|hook"),
            campaign_id: campaign,
            kind: Kind::DailyDigest,
            endpoint: "hook".into(),
            recipient: "role:office".into(),
            obligation_id: None,
            planned_due_at: None,
            payload: Payload {
                title: format!("消息 {i}"),
                text: "正文".into(),
                ..Payload::default()
            },
            urgent: false,
            not_before: t0,
            held: false,
            trace_context: None,
        })
        .collect();
    let mut conn = db.pool.acquire().await.unwrap();
    outbox::insert(&mut conn, &rows, t0).await.unwrap();
    drop(conn);

    let dir = std::env::temp_dir().join(format!("junheng-crash-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("scheduler.toml");
    let url = db.url();
    std::fs::write(
        &config,
        format!(
            r#"
            database_url = "{url}"
            clock = "simulated"
            worker_name = "crash-test"
            grpc_addr = "127.0.0.1:0"
            [dispatch]
            batch_size = 20
            lease_secs = 30
            concurrency = 4
            rate_limits_enabled = false
            poll_interval_ms = 100
            [planning]
            digests_enabled = false
            [endpoints.hook]
            kind = "webhook"
            url = "{}/hook"
            secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
            [recipients]
            office = ["hook"]
            "#,
            sink.uri()
        ),
    )
    .unwrap();

    // Run until some messages went out, then SIGKILL in the middle of a batch.
    let mut child = spawn(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = sink.received_requests().await.unwrap_or_default().len();
        if n >= N / 4 {
            break;
        }
        assert!(Instant::now() < deadline, "the scheduler sent nothing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let sent_before = count_sent(&db.pool).await;
    let in_flight: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'sending'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    eprintln!("killed with {sent_before} sent and {in_flight} leased");

    // Restart; the leases of the dead process expire once the (simulated) clock passes them.
    sqlx::query("UPDATE clock SET simulated_now = $1")
        .bind(t0 + ChronoDuration::seconds(31))
        .execute(&db.pool)
        .await
        .unwrap();
    let mut child = spawn(&config);
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_sent(&db.pool).await < N as i64 {
        assert!(
            Instant::now() < deadline,
            "not everything was sent after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Graceful stop.
    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown: {status}");

    let got = received(&sink).await;
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *by_id.entry(r.id.clone()).or_default() += 1;
    }
    let raw_resends: usize = by_id.values().map(|n| n - 1).sum();
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let lost = ids
        .iter()
        .filter(|id| !by_id.contains_key(&id.to_string()))
        .count();
    let foreign = by_id
        .keys()
        .filter(|k| !ids.iter().any(|id| id.to_string() == **k))
        .count();
    eprintln!(
        "crash test: {} requests, {} distinct ids, lost={lost}, distinct-id duplicates={foreign}, raw re-sends (same id)={raw_resends}, in flight at kill={in_flight}",
        got.len(),
        by_id.len()
    );
    assert_eq!(lost, 0);
    assert_eq!(foreign, 0);
    assert_eq!(by_id.len(), N);
    assert!(
        raw_resends as i64 <= in_flight,
        "re-sends only for rows leased at the kill"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn sigterm(child: &Child) {
    // `kill -TERM <pid>` without a libc dependency.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
}
