//! The scheduler's admin endpoint: `GET /metrics` shows the outbox per endpoint and status, the
//! age of the oldest due message, attempts by outcome and dead letters, and they move as the
//! dispatcher works.

mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::*;
use junheng_edge::metrics::read::{fetch, sample as value};
use junheng_notify::Sender;
use junheng_scheduler::outbox::{self, Kind, NewRow, Payload};
use junheng_scheduler::{ClockMode, Dispatcher, SignClock};
use sqlx::PgPool;

/// The Prometheus recorder is one per process and each test scrapes its own database into it:
/// the tests of this file take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn queue(pool: &PgPool, campaign: uuid::Uuid, endpoint: &str, n: usize) {
    let at = Utc::now() - Duration::seconds(90);
    let rows: Vec<NewRow> = (0..n)
        .map(|i| NewRow {
            dedupe_key: format!("metrics:{endpoint}:{i}"),
            campaign_id: campaign,
            kind: Kind::DailyDigest,
            endpoint: endpoint.into(),
            recipient: "role:office".into(),
            obligation_id: None,
            planned_due_at: None,
            payload: Payload {
                title: format!("消息 {i}"),
                text: "正文".into(),
                ..Payload::default()
            },
            urgent: false,
            not_before: at,
            held: false,
            trace_context: None,
        })
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    outbox::insert(&mut conn, &rows, at).await.unwrap();
}

#[tokio::test]
async fn outbox_series_move_as_messages_are_delivered_or_dead() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let sink = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/bad"))
        .respond_with(wiremock::ResponseTemplate::new(400).set_body_string("invalid payload"))
        .mount(&sink)
        .await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&sink)
        .await;
    let campaign = seed_campaign(&db.pool).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pool = db.pool.clone();
    let scrape_fn: junheng_edge::metrics::Scrape = Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move { junheng_scheduler::metrics::scrape(&pool, ClockMode::Real).await })
    });
    tokio::spawn(junheng_edge::metrics::serve_admin(
        listener,
        scrape_fn,
        std::future::pending(),
    ));

    queue(&db.pool, campaign, "hook", 3).await;
    let hook = [("endpoint", "hook")];
    let m = fetch(addr).await;
    assert_eq!(
        value(
            &m,
            "junheng_outbox_messages",
            &[("endpoint", "hook"), ("status", "pending")]
        ),
        3.0,
        "{m}"
    );
    let age = value(&m, "junheng_outbox_oldest_due_seconds", &hook);
    assert!(
        (90.0..600.0).contains(&age),
        "the oldest waited about 90 s: {age}"
    );

    let sent = |url: &str| {
        Dispatcher::new(
            db.pool.clone(),
            settings(url, "lookahead_ms = 0"),
            Arc::new(Sender::new().unwrap()),
            "metrics".into(),
        )
        .with_sign_clock(SignClock::Tick)
    };
    sent(&format!("{}/ok", sink.uri()))
        .dispatch_once(Utc::now())
        .await
        .unwrap();
    let m = fetch(addr).await;
    assert_eq!(
        value(
            &m,
            "junheng_outbox_messages",
            &[("endpoint", "hook"), ("status", "pending")]
        ),
        0.0,
        "{m}"
    );
    assert_eq!(
        value(
            &m,
            "junheng_outbox_messages",
            &[("endpoint", "hook"), ("status", "sent")]
        ),
        3.0
    );
    assert_eq!(value(&m, "junheng_outbox_oldest_due_seconds", &hook), 0.0);
    assert_eq!(
        value(
            &m,
            "junheng_delivery_attempts_total",
            &[("endpoint", "hook"), ("outcome", "delivered")]
        ),
        3.0
    );

    // A message the vendor refuses for good is a dead letter at once.
    sqlx::query("UPDATE outbox SET dedupe_key = dedupe_key || ':old'")
        .execute(&db.pool)
        .await
        .unwrap();
    queue(&db.pool, campaign, "hook", 1).await;
    sent(&format!("{}/bad", sink.uri()))
        .dispatch_once(Utc::now())
        .await
        .unwrap();
    let m = fetch(addr).await;
    assert_eq!(
        value(
            &m,
            "junheng_outbox_messages",
            &[("endpoint", "hook"), ("status", "dead")]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        value(
            &m,
            "junheng_delivery_attempts_total",
            &[("endpoint", "hook"), ("outcome", "permanent")]
        ),
        1.0
    );
    assert!(value(&m, "junheng_db_pool_max", &[]) > 0.0, "{m}");
}

#[tokio::test]
async fn messages_put_off_by_a_spent_budget_or_a_vendor_pause_are_counted_with_their_wait() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let sink = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/busy"))
        .respond_with(wiremock::ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .mount(&sink)
        .await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&sink)
        .await;
    let campaign = seed_campaign(&db.pool).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pool = db.pool.clone();
    let scrape_fn: junheng_edge::metrics::Scrape = Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move { junheng_scheduler::metrics::scrape(&pool, ClockMode::Real).await })
    });
    tokio::spawn(junheng_edge::metrics::serve_admin(
        listener,
        scrape_fn,
        std::future::pending(),
    ));
    let budget = [("endpoint", "hook"), ("source", "budget")];
    let vendor = [("endpoint", "hook"), ("source", "vendor")];
    // The recorder is global to this test binary: compare with what was there before.
    let before = fetch(addr).await;
    let waits = |m: &str, l: &[(&str, &str)]| value(m, "junheng_rate_limit_waits_total", l);

    // 2 per minute on the hook and 5 due: 3 are put off until the window frees.
    queue(&db.pool, campaign, "hook", 5).await;
    let mut s = (*settings(&format!("{}/ok", sink.uri()), "lookahead_ms = 0")).clone();
    s.endpoints.get_mut("hook").unwrap().rate_limits =
        Some(vec![junheng_scheduler::config::RateLimit {
            max: 2,
            per_secs: 60,
        }]);
    Dispatcher::new(
        db.pool.clone(),
        Arc::new(s),
        Arc::new(Sender::new().unwrap()),
        "metrics".into(),
    )
    .with_sign_clock(SignClock::Tick)
    .dispatch_once(Utc::now())
    .await
    .unwrap();
    let m = fetch(addr).await;
    assert_eq!(waits(&m, &budget) - waits(&before, &budget), 3.0, "{m}");
    let waited = value(&m, "junheng_rate_limit_wait_seconds_sum", &budget);
    assert!(
        waited > 0.0 && waited <= 60.0,
        "one deferral of at most a window: {waited}"
    );

    // The vendor answers 429 with Retry-After: 120 → one message waits 120 s on its word.
    // (The 3 put off above are due only when the window frees, a minute from now.)
    sqlx::query("UPDATE outbox SET dedupe_key = dedupe_key || ':old'")
        .execute(&db.pool)
        .await
        .unwrap();
    queue(&db.pool, campaign, "hook", 1).await;
    Dispatcher::new(
        db.pool.clone(),
        settings(&format!("{}/busy", sink.uri()), "lookahead_ms = 0"),
        Arc::new(Sender::new().unwrap()),
        "metrics".into(),
    )
    .with_sign_clock(SignClock::Tick)
    .dispatch_once(Utc::now())
    .await
    .unwrap();
    let m = fetch(addr).await;
    assert_eq!(waits(&m, &vendor) - waits(&before, &vendor), 1.0, "{m}");
    assert_eq!(
        value(&m, "junheng_rate_limit_wait_seconds_sum", &vendor),
        120.0
    );
}
