//! A database outage under the running scheduler (its loop and its gRPC API): callers see
//! `UNAVAILABLE` within the configured acquire timeout (plus a margin), `junheng.ready` turns
//! `NOT_SERVING` and back to `SERVING` by itself, a resend acknowledged before the outage is
//! delivered after it, a resend retried after the outage with the same idempotency key is
//! applied (and delivered) once, and nothing delivered before the outage is sent again.
//!
//! The test runs its own PostgreSQL cluster and stops it with `pg_ctl stop -m fast`. The stop
//! lasts [`OUTAGE`] (20 s), not the > 60 s of the workflow's outage test: what is checked here —
//! the status map, the acquire timeout, the readiness probe, idempotent resend — does not
//! change with the length of the stop (the workflow test shows the same pool and probe across
//! 65 s), and the scheduler's one length-dependent behaviour, the finisher's give-up after
//! about a minute, belongs to the finisher's own outage work.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use junheng_proto::v1 as pb;
use junheng_proto::v1::scheduler_service_client::SchedulerServiceClient;
use junheng_scheduler::outbox;
use junheng_scheduler::{ClockMode, Scheduler, SignClock, grpc};
use junheng_store::tokens::{self, TokenRow};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const OFFICE: &str = "tok-office-0123456789";
/// The pool's acquire timeout, as `db_acquire_timeout_ms` sets it by default.
const ACQUIRE: Duration = Duration::from_secs(2);
/// A connection attempt in flight at the deadline, the round trip, a loaded 2-core machine.
const MARGIN: Duration = Duration::from_secs(3);
const OUTAGE: Duration = Duration::from_secs(20);

fn req<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {OFFICE}").parse().unwrap());
    r
}

async fn ready(channel: &Channel) -> i32 {
    HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: junheng_edge::health::READY.into(),
        })
        .await
        .expect("health answers without the database")
        .into_inner()
        .status
}

async fn wait_ready(channel: &Channel, want: ServingStatus, within: Duration) {
    let t0 = Instant::now();
    while ready(channel).await != want as i32 {
        assert!(
            t0.elapsed() < within,
            "junheng.ready did not turn {want:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn assert_unavailable<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) {
    let t0 = Instant::now();
    let r = call.await;
    let took = t0.elapsed();
    match r {
        Ok(v) => panic!("{what}: expected UNAVAILABLE, got {v:?}"),
        Err(s) => assert_eq!(s.code(), Code::Unavailable, "{what}: {s:?}"),
    }
    assert!(
        took <= ACQUIRE + MARGIN,
        "{what}: UNAVAILABLE after {took:?}, more than {:?}",
        ACQUIRE + MARGIN
    );
}

async fn wait_for(sink: &wiremock::MockServer, n: usize, within: Duration) -> Vec<Received> {
    let t0 = Instant::now();
    loop {
        let got = received(sink).await;
        if got.len() >= n || t0.elapsed() > within {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_unavailable_then_recovers_without_loss_or_resend() {
    let pg = Arc::new(tokio::task::spawn_blocking(PrivatePg::start).await.unwrap());
    let pool = junheng_store::pool_options(5, ACQUIRE)
        .connect(&pg.url())
        .await
        .expect("connect to the private cluster");
    junheng_store::MIGRATOR.run(&pool).await.unwrap();
    let t0 = local(2020, 4, 6, 9, 0);
    let mut conn = pool.acquire().await.unwrap();
    tokens::insert(
        &mut conn,
        OFFICE,
        &TokenRow {
            actor: "office-1".into(),
            name: "office-1".into(),
            role: "office".into(),
            school_id: None,
            ..TokenRow::default()
        },
    )
    .await
    .unwrap();
    sqlx::query("INSERT INTO clock (singleton, simulated_now) VALUES (true, $1)")
        .bind(t0)
        .execute(&mut *conn)
        .await
        .unwrap();
    let campaign = seed_campaign(&pool).await;
    let rows = common::office_digests("outage", campaign, 3, t0);
    outbox::insert(&mut conn, &rows, t0).await.unwrap();
    drop(conn);

    let sink = webhook_sink().await;
    let mut s = (*settings(&format!("{}/hook", sink.uri()), "poll_interval_ms = 200")).clone();
    s.clock = ClockMode::Simulated { start: None };
    let settings = Arc::new(s);
    let scheduler = Scheduler::new(
        pool.clone(),
        settings.clone(),
        Arc::new(FakeWorkflow::default()),
    )
    .unwrap()
    .with_sign_clock(SignClock::Tick);
    // The loop runs beside the test's own steps, in the test's task (it is not `Send`).
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let looped = scheduler.run(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    });
    let steps = async move {
        let server = grpc::start(pool.clone(), settings.clone(), "127.0.0.1:0")
            .await
            .unwrap();
        let channel = Channel::from_shared(server.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = SchedulerServiceClient::new(channel.clone());

        // Delivered, and a resend acknowledged, before the outage.
        let delivered = wait_for(&sink, 3, Duration::from_secs(20)).await;
        assert_eq!(
            delivered.len(),
            3,
            "the three digests go out before the outage"
        );
        wait_ready(&channel, ServingStatus::Serving, Duration::from_secs(5)).await;
        let list = c
            .list_deliveries(req(pb::ListDeliveriesRequest::default()))
            .await
            .unwrap()
            .into_inner();
        let target = list.deliveries[0].id.clone();
        let resend = |key: &str| {
            req(pb::ResendDeliveryRequest {
                idempotency_key: key.into(),
                id: target.clone(),
            })
        };
        // Acknowledged, then the database stops before the loop (200 ms poll) may have sent it.
        c.resend_delivery(resend("before")).await.unwrap();
        tokio::task::spawn_blocking({
            let pg = pg.clone();
            move || pg.stop()
        })
        .await
        .unwrap();
        let stopped = Instant::now();

        assert_unavailable("ResendDelivery", c.resend_delivery(resend("during"))).await;
        wait_ready(&channel, ServingStatus::NotServing, Duration::from_secs(5)).await;
        while stopped.elapsed() < OUTAGE {
            assert_unavailable(
                "ListDeliveries",
                c.list_deliveries(req(pb::ListDeliveriesRequest::default())),
            )
            .await;
            assert_unavailable("ResendDelivery", c.resend_delivery(resend("during"))).await;
            assert_eq!(ready(&channel).await, ServingStatus::NotServing as i32);
            tokio::time::sleep(
                Duration::from_secs(5).min(OUTAGE.saturating_sub(stopped.elapsed())),
            )
            .await;
        }
        tokio::task::spawn_blocking({
            let pg = pg.clone();
            move || pg.start_again()
        })
        .await
        .unwrap();
        wait_ready(&channel, ServingStatus::Serving, Duration::from_secs(10)).await;

        // The resend retried with its key applies once (a second retry replays it).
        let a = c
            .resend_delivery(resend("during"))
            .await
            .unwrap()
            .into_inner();
        let b = c
            .resend_delivery(resend("during"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a.id, b.id);

        // 3 before + the acknowledged resend + the retried one, each exactly once.
        let got = wait_for(&sink, 5, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let got_after = received(&sink).await;
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got_after.len(), 5, "nothing is sent twice: {got_after:?}");
        let mut ids: HashMap<&str, usize> = HashMap::new();
        for r in &got_after {
            *ids.entry(r.id.as_str()).or_default() += 1;
        }
        assert!(ids.values().all(|n| *n == 1), "a webhook id twice: {ids:?}");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'sent'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 5);

        stop_tx.send(true).unwrap();
        drop(server);
    };
    let (looped, ()) = tokio::join!(looped, steps);
    looped.unwrap();
}
