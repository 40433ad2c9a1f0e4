//! Delivery guarantees against a real PostgreSQL and a wiremock webhook sink: replicas draining
//! one outbox, lease-expiry crash recovery, a rate limit shared across replicas, retry with
//! backoff then dead letter.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::*;
use junheng_notify::Sender;
use junheng_scheduler::outbox::{self, Kind, NewRow, Payload};
use junheng_scheduler::{Dispatcher, OutboxStatus, Settings, SignClock};
use sqlx::PgPool;
use uuid::Uuid;

async fn queue(pool: &PgPool, campaign: Uuid, n: usize, at: DateTime<Utc>) {
    let rows = common::office_digests("test", campaign, n, at);
    let mut conn = pool.acquire().await.unwrap();
    for chunk in rows.chunks(500) {
        outbox::insert(&mut conn, chunk, at).await.unwrap();
    }
}

fn dispatcher(pool: PgPool, settings: Arc<Settings>, name: &str) -> Dispatcher {
    Dispatcher::new(
        pool,
        settings,
        Arc::new(Sender::new().unwrap()),
        name.into(),
    )
    .with_sign_clock(SignClock::Tick)
}

async fn statuses(pool: &PgPool) -> HashMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM outbox GROUP BY status")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_drain_one_outbox_without_duplicates() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let now = local(2020, 4, 9, 10, 0);
    const N: usize = 600;
    queue(&db.pool, campaign, N, now).await;
    let settings = Arc::new({
        let mut s = (*settings(&format!("{}/hook", sink.uri()), "")).clone();
        s.dispatch.rate_limits_enabled = false;
        s.dispatch.batch_size = 25;
        s
    });
    let mut tasks = Vec::new();
    for r in 0..3 {
        let pool = db.another_pool(3).await;
        let d = dispatcher(pool, settings.clone(), &format!("replica-{r}"));
        tasks.push(tokio::spawn(
            async move { d.drain(now, 1000).await.unwrap() },
        ));
    }
    let mut sent_per_replica = Vec::new();
    for t in tasks {
        sent_per_replica.push(t.await.unwrap().sent);
    }
    let got = received(&sink).await;
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for r in &got {
        *by_id.entry(r.id.as_str()).or_default() += 1;
    }
    let duplicates: usize = by_id.values().map(|n| n - 1).sum();
    eprintln!(
        "replicas sent {sent_per_replica:?}; sink received {} requests, {} distinct ids, {duplicates} duplicates",
        got.len(),
        by_id.len()
    );
    assert_eq!(duplicates, 0);
    assert_eq!(by_id.len(), N);
    assert_eq!(sent_per_replica.iter().sum::<usize>(), N);
    assert!(
        sent_per_replica.iter().filter(|n| **n > 0).count() >= 2,
        "work was shared: {sent_per_replica:?}"
    );
    assert_eq!(statuses(&db.pool).await.get("sent"), Some(&(N as i64)));
    // Every received id is an outbox id.
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert!(
        ids.iter()
            .all(|id| by_id.contains_key(id.to_string().as_str()))
    );
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_resent_with_the_same_id() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let now = local(2020, 4, 9, 10, 0);
    queue(&db.pool, campaign, 5, now).await;
    let settings = settings(&format!("{}/hook", sink.uri()), "");
    let crashed = dispatcher(db.another_pool(2).await, settings.clone(), "crashed");
    let survivor = dispatcher(db.another_pool(2).await, settings.clone(), "survivor");
    // Worker A claims (the lease commits) and dies before sending.
    let (claimed, _) = crashed.claim(now).await.unwrap();
    assert_eq!(claimed.len(), 5);
    drop(crashed);
    // While the lease runs nobody else takes the rows.
    assert_eq!(
        survivor
            .dispatch_once(now + Duration::seconds(30))
            .await
            .unwrap()
            .claimed,
        0
    );
    // After it expires, they are sent once, under their outbox ids.
    let r = survivor
        .dispatch_once(now + Duration::seconds(61))
        .await
        .unwrap();
    assert_eq!((r.claimed, r.sent), (5, 5));
    let got = received(&sink).await;
    let mut ids: Vec<String> = got.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    let mut want: Vec<String> = claimed.iter().map(|c| c.id.to_string()).collect();
    want.sort();
    assert_eq!(ids, want);
    let attempts: Vec<(i32, String)> =
        sqlx::query_as("SELECT attempt, worker FROM delivery_log ORDER BY outbox_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(attempts.len(), 5, "{attempts:?}");
    assert!(
        attempts.iter().all(|(n, w)| *n == 2 && w == "survivor"),
        "{attempts:?}"
    );
    // Each delivering attempt is recorded on its outbox row: no attempt row of its own.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_attempts")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

/// The same results recorded twice (a finisher that wrote again after a commit it did not see
/// go through): the second write finds the row settled, keeps the attempt as an attempt row,
/// and the log still lists the attempt once.
#[tokio::test]
async fn an_attempt_recorded_twice_is_listed_once() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let now = local(2020, 4, 9, 10, 0);
    queue(&db.pool, campaign, 1, now).await;
    let d = dispatcher(
        db.pool.clone(),
        settings(&format!("{}/hook", sink.uri()), ""),
        "w",
    );
    let (claimed, _) = d.claim(now).await.unwrap();
    let r = d.deliver(claimed.clone(), now).await.unwrap();
    assert_eq!((r.sent, r.lost_lease), (1, 0));
    let r = d.deliver(claimed.clone(), now).await.unwrap();
    assert_eq!((r.sent, r.lost_lease), (0, 1));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_attempts")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "the second write kept its attempt as a row");
    let log: Vec<(i32, String, String)> =
        sqlx::query_as("SELECT attempt, worker, outcome FROM delivery_log WHERE outbox_id = $1")
            .bind(claimed[0].id)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(log, [(1, "w".to_owned(), "delivered".to_owned())]);
}

#[tokio::test]
async fn a_slow_worker_that_lost_its_lease_does_not_overwrite_the_new_owner() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let now = local(2020, 4, 9, 10, 0);
    queue(&db.pool, campaign, 1, now).await;
    let settings = settings(&format!("{}/hook", sink.uri()), "");
    let slow = dispatcher(db.another_pool(2).await, settings.clone(), "slow");
    let fast = dispatcher(db.another_pool(2).await, settings.clone(), "fast");
    let (claimed, _) = slow.claim(now).await.unwrap();
    let r = fast
        .dispatch_once(now + Duration::seconds(61))
        .await
        .unwrap();
    assert_eq!(r.sent, 1);
    // The slow worker finally sends (the raw re-send the design notes call the crash window).
    let r = slow.deliver(claimed, now).await.unwrap();
    assert_eq!((r.sent, r.lost_lease), (0, 1));
    let got = received(&sink).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].id, got[1].id,
        "a re-send carries the same webhook-id, so the receiver de-duplicates"
    );
    let (status, attempts): (String, i32) = sqlx::query_as("SELECT status, attempts FROM outbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!((status.as_str(), attempts), ("sent", 2));
    // Both deliveries are in the log: the new owner's on the row, the slow worker's (whose
    // row was no longer its own) as an attempt row.
    let log: Vec<(i32, String, String)> =
        sqlx::query_as("SELECT attempt, worker, outcome FROM delivery_log ORDER BY attempt")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let log: Vec<(i32, &str, &str)> = log
        .iter()
        .map(|(n, w, o)| (*n, w.as_str(), o.as_str()))
        .collect();
    assert_eq!(log, [(1, "slow", "delivered"), (2, "fast", "delivered")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rate_limit_is_shared_across_replicas() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let t0 = local(2020, 4, 9, 10, 0);
    const N: usize = 30;
    queue(&db.pool, campaign, N, t0).await;
    // 5 per minute on the hook, however many replicas send.
    let settings = Arc::new({
        let mut s = (*settings(&format!("{}/hook", sink.uri()), "")).clone();
        s.endpoints.get_mut("hook").unwrap().rate_limits =
            Some(vec![junheng_scheduler::config::RateLimit {
                max: 5,
                per_secs: 60,
            }]);
        s
    });
    let replicas: Vec<Arc<Dispatcher>> = {
        let mut v = Vec::new();
        for r in 0..3 {
            v.push(Arc::new(dispatcher(
                db.another_pool(2).await,
                settings.clone(),
                &format!("replica-{r}"),
            )));
        }
        v
    };
    // Simulated time moves 10 s per step; all three replicas dispatch at every step.
    for step in 0..60 {
        let now = t0 + Duration::seconds(10 * step);
        let handles: Vec<_> = replicas
            .iter()
            .map(|d| {
                let d = d.clone();
                tokio::spawn(async move { d.drain(now, 10).await.unwrap() })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }
    let got = received(&sink).await;
    assert_eq!(got.len(), N, "everything was delivered eventually");
    let mut ts: Vec<i64> = got.iter().map(|r| r.ts).collect();
    ts.sort();
    let worst = ts
        .iter()
        .map(|start| {
            ts.iter()
                .filter(|t| **t >= *start && **t < start + 60)
                .count()
        })
        .max()
        .unwrap();
    eprintln!(
        "max sends in any 60 s window: {worst} (limit 5); first {} last {}",
        ts[0] - ts[0],
        ts[N - 1] - ts[0]
    );
    assert!(worst <= 5, "sink saw {worst} sends within one minute");
    // 30 messages at 5 per minute need at least 5 more minutes after the first batch.
    assert!(ts[N - 1] - ts[0] >= 300);
}

#[tokio::test]
async fn failures_back_off_then_dead_letter_with_the_last_error() {
    let db = TestDb::new().await;
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/fail"))
        .respond_with(wiremock::ResponseTemplate::new(503).set_body_string("upstream down"))
        .mount(&server)
        .await;
    wiremock::Mock::given(wiremock::matchers::path("/slow-down"))
        .respond_with(wiremock::ResponseTemplate::new(429).insert_header("retry-after", "600"))
        .mount(&server)
        .await;
    wiremock::Mock::given(wiremock::matchers::path("/bad"))
        .respond_with(wiremock::ResponseTemplate::new(400).set_body_string("invalid payload"))
        .mount(&server)
        .await;
    let campaign = seed_campaign(&db.pool).await;
    let now = local(2020, 4, 9, 10, 0);

    // 503 three times (max_attempts = 3): backoff grows, then dead with the last error.
    // (No look-ahead, so "not claimed before the backoff" is what is checked.)
    queue(&db.pool, campaign, 1, now).await;
    let d = dispatcher(
        db.pool.clone(),
        settings(&format!("{}/fail", server.uri()), "lookahead_ms = 0"),
        "w",
    );
    let r = d.dispatch_once(now).await.unwrap();
    assert_eq!(r.retried, 1);
    let (nb, err): (DateTime<Utc>, Option<String>) =
        sqlx::query_as("SELECT not_before, last_error FROM outbox")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let delay = (nb - now).num_seconds();
    assert!(
        (15..=30).contains(&delay),
        "first backoff 15–30 s with jitter, got {delay}"
    );
    assert!(err.unwrap().contains("503"));
    assert_eq!(
        d.dispatch_once(now + Duration::seconds(14))
            .await
            .unwrap()
            .claimed,
        0,
        "not before the backoff"
    );
    let r = d.dispatch_once(now + Duration::seconds(31)).await.unwrap();
    assert_eq!(r.retried, 1);
    let nb2: DateTime<Utc> = sqlx::query_scalar("SELECT not_before FROM outbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let delay2 = (nb2 - (now + Duration::seconds(31))).num_seconds();
    assert!(
        (30..=60).contains(&delay2),
        "second backoff 30–60 s, got {delay2}"
    );
    let r = d.dispatch_once(now + Duration::seconds(200)).await.unwrap();
    assert_eq!(r.dead, 1);
    let (status, err, attempts): (String, Option<String>, i32) =
        sqlx::query_as("SELECT status, last_error, attempts FROM outbox")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("dead", 3));
    assert!(
        err.as_deref()
            .unwrap()
            .starts_with("gave up after 3 attempts"),
        "{err:?}"
    );
    let log = junheng_scheduler::api::list_deliveries(
        &db.pool,
        &junheng_scheduler::api::DeliveryFilter {
            status: Some("dead".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(log.len(), 1);
    let tries = junheng_scheduler::api::attempts(&db.pool, log[0].id)
        .await
        .unwrap();
    assert_eq!(
        tries.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(),
        vec!["retry", "retry", "retry"]
    );

    // A resend queues a copy under a new id; the same idempotency key returns the same copy.
    let office = junheng_scheduler::api::Audit {
        actor: junheng_core::Actor {
            id: "office-1".into(),
            role: junheng_core::Role::Office,
            school: None,
        },
        scope: junheng_core::Scope::County,
        request_id: "r-1".into(),
    };
    let copy = junheng_scheduler::api::resend(&db.pool, log[0].id, &office, "k1", now)
        .await
        .unwrap();
    assert_ne!(copy, log[0].id);
    assert_eq!(
        junheng_scheduler::api::resend(&db.pool, log[0].id, &office, "k1", now)
            .await
            .unwrap(),
        copy
    );

    // 429 with Retry-After: 600 → not before 10 minutes.
    sqlx::query("DELETE FROM delivery_attempts")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM outbox")
        .execute(&db.pool)
        .await
        .unwrap();
    queue(&db.pool, campaign, 1, now).await;
    let d = dispatcher(
        db.pool.clone(),
        settings(&format!("{}/slow-down", server.uri()), ""),
        "w",
    );
    assert_eq!(d.dispatch_once(now).await.unwrap().retried, 1);
    let nb: DateTime<Utc> = sqlx::query_scalar("SELECT not_before FROM outbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!((nb - now).num_seconds() >= 600);

    // 400: permanent, dead at once.
    sqlx::query("DELETE FROM delivery_attempts")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM outbox")
        .execute(&db.pool)
        .await
        .unwrap();
    queue(&db.pool, campaign, 1, now).await;
    let d = dispatcher(
        db.pool.clone(),
        settings(&format!("{}/bad", server.uri()), ""),
        "w",
    );
    assert_eq!(d.dispatch_once(now).await.unwrap().dead, 1);
    let err: Option<String> = sqlx::query_scalar("SELECT last_error FROM outbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(err.unwrap().starts_with("permanent: HTTP 400"));
}

fn endpoint_of(key: &str) -> &'static str {
    if key == "limited" { "limited" } else { "hook" }
}

/// Rows due within the look-ahead are claimed before their instant and sent at it, not a poll
/// interval later; a reminder whose obligation is done while it waits is cancelled at its
/// instant, not sent. A simulated clock claims nothing ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_due_soon_are_claimed_ahead_sent_on_time_and_rechecked() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let now = Utc::now();
    let due = now + Duration::milliseconds(3000);
    let deadline = now + Duration::days(1);
    let obl = |kind, subject| Obl {
        kind,
        school: None,
        owner_role: "school",
        owner_school: None,
        due: deadline,
        subject,
        created: now,
    };
    let kept = add_obligation(&db.pool, campaign, obl("submit_application", "提交申请")).await;
    let done = add_obligation(&db.pool, campaign, obl("submit_presentation", "提交材料")).await;
    let row = |key: &str, obligation: Option<Uuid>| NewRow {
        dedupe_key: format!("test:{key}|role:office|{}", endpoint_of(key)),
        campaign_id: campaign,
        kind: if obligation.is_some() {
            Kind::Reminder
        } else {
            Kind::DailyDigest
        },
        endpoint: endpoint_of(key).into(),
        recipient: "role:office".into(),
        obligation_id: obligation,
        planned_due_at: obligation.map(|_| deadline),
        payload: Payload {
            title: format!("消息 {key}"),
            text: key.into(),
            ..Payload::default()
        },
        urgent: false,
        not_before: due,
        held: false,
        trace_context: None,
    };
    let rows = [
        row("digest", None),
        row("kept", Some(kept)),
        row("done", Some(done)),
        row("limited", None),
    ];
    outbox::insert(&mut db.pool.acquire().await.unwrap(), &rows, now)
        .await
        .unwrap();

    // A simulated clock never claims ahead: its "now" may jump past the instant.
    let simulated = Arc::new({
        let mut s = (*settings(&format!("{}/hook", sink.uri()), "")).clone();
        s.clock = junheng_scheduler::ClockMode::Simulated { start: None };
        s
    });
    let r = dispatcher(db.pool.clone(), simulated, "sim")
        .drain(now, 10)
        .await
        .unwrap();
    assert_eq!((r.claimed, r.sent), (0, 0));

    // `limited` has a rate limit: its budget is taken at the claim, so it is never claimed
    // ahead (it would be counted at the wrong instant).
    let limited = format!(
        "lookahead_ms = 10000\n[endpoints.limited]\nkind = \"webhook\"\nurl = \"{}/hook\"\nsecret = \"whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\nrate_limits = [{{ max = 5, per_secs = 60 }}]\n",
        sink.uri()
    );
    let d = dispatcher(
        db.pool.clone(),
        settings(&format!("{}/hook", sink.uri()), &limited),
        "real",
    );
    let drain = tokio::spawn(async move { d.drain(now, 10).await.unwrap() });
    // Claimed ahead, nothing sent before the instant.
    let t = std::time::Instant::now();
    while statuses(&db.pool).await.get("sending") != Some(&3) {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "not claimed ahead"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        Utc::now() < due,
        "the claim took longer than the test allows"
    );
    assert!(received(&sink).await.is_empty());
    // The lease runs from the send instant, not from the claim.
    let leases: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        sqlx::query_as("SELECT not_before, lease_until FROM outbox WHERE status = 'sending'")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    for (nb, lease) in leases {
        assert_eq!(lease, nb + Duration::seconds(60));
    }
    sqlx::query("UPDATE obligations SET status = 'done' WHERE id = $1")
        .bind(done)
        .execute(&db.pool)
        .await
        .unwrap();

    let r = drain.await.unwrap();
    assert_eq!((r.claimed, r.sent, r.cancelled), (3, 2, 1), "{r:?}");
    let got: Vec<String> = received(&sink)
        .await
        .into_iter()
        .map(|m| m.body["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(!got.iter().any(|t| t.contains("limited")), "{got:?}");
    assert_eq!(statuses(&db.pool).await.get("pending"), Some(&1));
    assert!(!got.iter().any(|t| t.contains("done")), "{got:?}");
    let sent: Vec<(String, Option<DateTime<Utc>>, Option<String>)> =
        sqlx::query_as("SELECT status, sent_at, last_error FROM outbox ORDER BY dedupe_key")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    for (status, sent_at, last_error) in &sent {
        match status.as_str() {
            "pending" => {} // `limited`, for the next tick
            "sent" => assert!(sent_at.unwrap() >= due, "sent early: {sent_at:?} < {due}"),
            "cancelled" => assert!(
                last_error
                    .as_deref()
                    .unwrap()
                    .contains("before the send instant"),
                "{last_error:?}"
            ),
            other => panic!("unexpected status {other}"),
        }
    }
}

/// A retry to a Feishu bot that would fall on a :00 peak (Retry-After 60 s at 09:59) is moved
/// off it, as planning does for first sends.
#[tokio::test]
async fn a_feishu_retry_keeps_off_the_peak_minute() {
    let db = TestDb::new().await;
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(429).insert_header("retry-after", "60"))
        .mount(&server)
        .await;
    let campaign = seed_campaign(&db.pool).await;
    let now = local(2020, 4, 9, 9, 59);
    let row = NewRow {
        dedupe_key: "test:feishu|role:office|bot".into(),
        campaign_id: campaign,
        kind: Kind::DailyDigest,
        endpoint: "bot".into(),
        recipient: "role:office".into(),
        obligation_id: None,
        planned_due_at: None,
        payload: Payload {
            title: "每日汇总".into(),
            text: "正文".into(),
            ..Payload::default()
        },
        urgent: false,
        not_before: now,
        held: false,
        trace_context: None,
    };
    outbox::insert(&mut db.pool.acquire().await.unwrap(), &[row], now)
        .await
        .unwrap();
    let extra = format!(
        "rate_limits_enabled = false\n[endpoints.bot]\nkind = \"feishu\"\nhook_id = \"h\"\nbase_url = \"{}\"\n",
        server.uri()
    );
    let d = dispatcher(
        db.pool.clone(),
        settings(&format!("{}/hook", server.uri()), &extra),
        "w",
    );
    assert_eq!(d.dispatch_once(now).await.unwrap().retried, 1);
    let nb: DateTime<Utc> = sqlx::query_scalar("SELECT not_before FROM outbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    // Due at 10:00:00.x by Retry-After; 10:00 is a peak, so 10:02.
    assert_eq!(
        nb.with_timezone(&chrono_tz::Asia::Shanghai)
            .format("%H:%M")
            .to_string(),
        "10:02"
    );
}

#[tokio::test]
async fn the_status_enum_and_the_lease_invariant_are_the_tables_own() {
    let db = TestDb::new().await;
    let campaign = seed_campaign(&db.pool).await;
    // Every status the code knows is one the table accepts, and no other.
    let check: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'outbox_status_check'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let allowed: Vec<&str> = check.split('\'').skip(1).step_by(2).collect();
    let mut known: Vec<&str> = OutboxStatus::ALL.iter().map(|s| s.as_str()).collect();
    let mut allowed_sorted = allowed.clone();
    known.sort_unstable();
    allowed_sorted.sort_unstable();
    assert_eq!(known, allowed_sorted, "{check}");

    // `lease_until` is set exactly while the row is `sending`: the database refuses the rest.
    let now = local(2020, 4, 9, 10, 0);
    queue(&db.pool, campaign, 1, now).await;
    for s in OutboxStatus::ALL {
        for lease in [None, Some(now)] {
            let r = sqlx::query("UPDATE outbox SET status = $1, lease_until = $2")
                .bind(s)
                .bind(lease)
                .execute(&db.pool)
                .await;
            assert_eq!(
                r.is_ok(),
                s.has_lease() == lease.is_some(),
                "{s} with lease {lease:?}: {r:?}"
            );
        }
    }
    let (status, lease): (OutboxStatus, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT status, lease_until FROM outbox")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((status, lease), (OutboxStatus::Parked, None));
}

/// The dispatcher's planner settings (`INDEX_PLANS`: no sequential or bitmap scans, no JIT)
/// hold for its own transactions only: a connection back in the pool plans as configured.
#[tokio::test]
async fn the_dispatchers_planner_settings_stay_inside_its_transactions() {
    let db = TestDb::new().await;
    let sink = webhook_sink().await;
    let campaign = seed_campaign(&db.pool).await;
    let now = local(2020, 4, 9, 10, 0);
    queue(&db.pool, campaign, 3, now).await;
    let settings = settings(&format!("{}/hook", sink.uri()), "");
    // One connection: the claim, the finisher and the check below all use it.
    let pool = db.another_pool(1).await;
    let show = |name: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SHOW {name}")))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let before = (
        show("enable_seqscan").await,
        show("enable_bitmapscan").await,
        show("jit").await,
    );
    let r = dispatcher(pool.clone(), settings, "one")
        .dispatch_once(now)
        .await
        .unwrap();
    assert_eq!((r.claimed, r.sent), (3, 3));
    assert_eq!(before.0, "on");
    assert_eq!(before.1, "on");
    let after = (
        show("enable_seqscan").await,
        show("enable_bitmapscan").await,
        show("jit").await,
    );
    assert_eq!(
        after, before,
        "SET LOCAL-style settings leaked out of the dispatcher's transactions"
    );
}
