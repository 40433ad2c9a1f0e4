//! A database outage longer than the old give-up time (the scheduler's finisher gave up after
//! about 57 s; the pool held callers 10 s): the workflow's callers see `UNAVAILABLE` within the
//! configured acquire timeout (plus a margin), `junheng.ready` turns `NOT_SERVING` and back to
//! `SERVING` by itself, a command acknowledged before the outage is still there after it, and
//! a command retried after the outage with the same idempotency key is applied once.
//!
//! The test runs its own PostgreSQL cluster (it must stop it) and stops it with
//! `pg_ctl stop -m fast`, then starts it again on the same data directory and port.

use std::time::{Duration, Instant};

use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The pool's acquire timeout, as the binary sets it (`--db-acquire-timeout-ms`).
const ACQUIRE: Duration = Duration::from_secs(2);
/// What a caller may wait beyond it: a connection attempt in flight at the deadline, the
/// gRPC round trip and a loaded 2-core machine.
const MARGIN: Duration = Duration::from_secs(3);
/// Longer than the old give-up time (about 57 s).
const OUTAGE: Duration = Duration::from_secs(65);

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

async fn wait_ready(channel: &Channel, want: ServingStatus, within: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        if ready(channel).await == want as i32 {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < within,
            "junheng.ready did not turn {want:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn create(key: &str) -> tonic::Request<pb::CreateCampaignRequest> {
    auth(
        OFFICE_TOKEN,
        pb::CreateCampaignRequest {
            idempotency_key: key.into(),
            definition_toml: CHANGLE_2020.into(),
        },
    )
}

/// One call during the outage: `UNAVAILABLE`, never `INTERNAL`, and no later than the acquire
/// timeout plus the margin.
async fn assert_unavailable<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) {
    let t0 = Instant::now();
    let r = call.await;
    let took = t0.elapsed();
    let s = expect_code(r, Code::Unavailable);
    assert!(
        took <= ACQUIRE + MARGIN,
        "{what}: UNAVAILABLE after {took:?}, more than {:?}",
        ACQUIRE + MARGIN
    );
    assert!(s.message().contains("request id"), "{}", s.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_database_outage_is_unavailable_then_recovers_without_loss() {
    let pg = std::sync::Arc::new(tokio::task::spawn_blocking(PrivatePg::start).await.unwrap());
    let pool = junheng_store::pool_options(8, ACQUIRE)
        .connect(&pg.url())
        .await
        .expect("connect to the private cluster");
    junheng_store::MIGRATOR.run(&pool).await.expect("migrate");
    junheng_workflow::bootstrap::ensure_office_token(&pool, Some(OFFICE_TOKEN))
        .await
        .expect("office token");
    let server = junheng_workflow::spawn(
        pool.clone(),
        ClockMode::Simulated {
            start: Some(at("2020-03-02T09:00:00+08:00")),
        },
    )
    .await
    .expect("server starts");
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut campaigns = pb::campaign_service_client::CampaignServiceClient::new(channel.clone());

    // Acknowledged before the outage.
    let before = campaigns
        .create_campaign(create(&key()))
        .await
        .expect("create before the outage")
        .into_inner();
    wait_ready(&channel, ServingStatus::Serving, Duration::from_secs(5)).await;

    tokio::task::spawn_blocking({
        let pg = pg.clone();
        move || pg.stop()
    })
    .await
    .unwrap();
    let stopped = Instant::now();

    // A command and a read during the outage, right away and then every ~15 s until past the
    // old give-up time.
    let retried = key();
    let mut schools = pb::school_service_client::SchoolServiceClient::new(channel.clone());
    let register = |key: &str| {
        auth(
            OFFICE_TOKEN,
            pb::RegisterSchoolsRequest {
                idempotency_key: key.into(),
                campaign_id: before.id.clone(),
                schools: demo_requests(),
            },
        )
    };
    assert_unavailable(
        "RegisterSchools",
        schools.register_schools(register(&retried)),
    )
    .await;
    let not_ready = wait_ready(&channel, ServingStatus::NotServing, Duration::from_secs(5)).await;
    eprintln!("junheng.ready NOT_SERVING {not_ready:?} after the first failed call");
    while stopped.elapsed() < OUTAGE {
        assert_unavailable(
            "GetCampaign",
            campaigns.get_campaign(auth(
                OFFICE_TOKEN,
                pb::GetCampaignRequest {
                    campaign_id: before.id.clone(),
                },
            )),
        )
        .await;
        assert_unavailable(
            "RegisterSchools",
            schools.register_schools(register(&retried)),
        )
        .await;
        assert_unavailable("CreateCampaign", campaigns.create_campaign(create(&key()))).await;
        assert_eq!(ready(&channel).await, ServingStatus::NotServing as i32);
        tokio::time::sleep(Duration::from_secs(15).min(OUTAGE.saturating_sub(stopped.elapsed())))
            .await;
    }

    tokio::task::spawn_blocking({
        let pg = pg.clone();
        move || pg.start_again()
    })
    .await
    .unwrap();
    let back = wait_ready(&channel, ServingStatus::Serving, Duration::from_secs(10)).await;
    eprintln!(
        "outage {:?}; junheng.ready SERVING {back:?} after the restart",
        stopped.elapsed()
    );

    // The acknowledged command survived.
    let got = campaigns
        .get_campaign(auth(
            OFFICE_TOKEN,
            pb::GetCampaignRequest {
                campaign_id: before.id.clone(),
            },
        ))
        .await
        .expect("read after the outage")
        .into_inner();
    assert_eq!(got.id, before.id);

    // The command retried with its key applies once; a second retry replays it.
    let first = schools
        .register_schools(register(&retried))
        .await
        .expect("retry after the outage")
        .into_inner();
    let again = schools
        .register_schools(register(&retried))
        .await
        .expect("second retry")
        .into_inner();
    let ids = |r: &pb::RegisterSchoolsResponse| {
        r.schools.iter().map(|s| s.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&first),
        ids(&again),
        "the same key replays the same schools"
    );
    assert_eq!(first.schools.len(), demo_requests().len());
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM schools")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        n as usize,
        demo_requests().len(),
        "the retried command applied once"
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "no command issued during the outage was applied");
    drop(server);
}
