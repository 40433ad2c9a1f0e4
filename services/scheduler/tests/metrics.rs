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
        })
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    outbox::insert(&mut conn, &rows, at).await.unwrap();
}

#[tokio::test]
async fn outbox_series_move_as_messages_are_delivered_or_dead() {
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
