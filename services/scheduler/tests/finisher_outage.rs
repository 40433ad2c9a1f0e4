//! A database outage longer than the lease with deliveries in flight: the finisher holds the
//! results it could not record, the claim loops stop claiming, and when PostgreSQL is back the
//! results are written before anything is claimed again: every message reaches the sink
//! exactly once.
//!
//! The test runs its own PostgreSQL cluster (`common::PrivatePg`: it stops and starts it on
//! the same port, so the pool reconnects to the same address).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use junheng_scheduler::outbox;
use junheng_scheduler::{Dispatcher, Settings};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

mod common;

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
    let pg = common::PrivatePg::start();
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(pg.url().parse::<PgConnectOptions>().unwrap())
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
    let rows = common::office_digests("outage", campaign, N, now);
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
    pg.stop();
    let delivered_during = {
        tokio::time::sleep(Duration::from_secs(12)).await;
        seen.lock().unwrap().len()
    };
    pg.start_again();

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
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, N as i64, "one recorded attempt per message");
}
