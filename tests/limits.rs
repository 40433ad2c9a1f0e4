//! Limits against abuse, each with the clear error a caller gets and a health check that keeps
//! answering meanwhile (well inside 1 s): the XLSX bomb (cells at A1 and XFD1048576), an
//! oversize CSV, 1,000 concurrent FollowEvents from one caller, a burst of unknown tokens, the
//! per-caller rate limit, and unauthenticated calls that need no database connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use junheng_edge::limits::CallerLimits;
use junheng_proto::v1 as pb;
use junheng_tests::{App, OFFICE_TOKEN, auth, changle, fresh_db, key, violations};
use junheng_workflow::ClockMode;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

/// One test at a time: each measures how responsive the server stays, which a neighbouring
/// test's burst on the same two cores would blur.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn app_with(limits: CallerLimits) -> App {
    let (pool, _) = fresh_db().await;
    junheng_workflow::bootstrap::ensure_office_token(&pool, Some(OFFICE_TOKEN))
        .await
        .expect("office token");
    let server = junheng_workflow::spawn_with(pool.clone(), ClockMode::Real, limits)
        .await
        .expect("server starts");
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    App {
        server,
        pool,
        channel,
    }
}

/// Checks health every 50 ms on its own connection until stopped; returns the slowest answer.
struct Prober {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Duration, usize)>,
}

impl Prober {
    async fn start(app: &App) -> Prober {
        let channel = Channel::from_shared(app.server.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
            let (mut worst, mut n) = (Duration::ZERO, 0);
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = tokio::time::timeout(
                    Duration::from_secs(5),
                    health.check(tonic_health::pb::HealthCheckRequest {
                        service: "junheng.v1.CampaignService".into(),
                    }),
                )
                .await;
                let took = t.elapsed();
                let status = r
                    .expect("health answers within 5 s")
                    .expect("health answers");
                assert_eq!(status.into_inner().status, 1, "SERVING");
                worst = worst.max(took);
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (worst, n)
        });
        Prober { stop, task }
    }

    /// Stops and asserts health answered at least once and always well inside 1 s.
    async fn finish(self, what: &str) {
        // At least one probe overlaps whatever ran before.
        tokio::time::sleep(Duration::from_millis(120)).await;
        self.stop.store(true, Ordering::Relaxed);
        let (worst, n) = self.task.await.expect("prober");
        assert!(n >= 1, "{what}: no health check ran");
        println!("{what}: {n} health checks, the slowest {worst:?}");
        assert!(
            worst < Duration::from_millis(1000),
            "{what}: a health check took {worst:?}"
        );
    }
}

fn import(campaign: &str, filename: &str, content: Vec<u8>) -> pb::ImportSchoolsRequest {
    pb::ImportSchoolsRequest {
        idempotency_key: key(),
        campaign_id: campaign.into(),
        filename: filename.into(),
        content,
    }
}

/// A workbook of a few KiB whose sheet spans A1:XFD1048576 (17 billion cells).
fn xlsx_bomb() -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let sheet = wb.add_worksheet();
    sheet.write_string(0, 0, "学校代码").unwrap();
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    wb.save_to_buffer().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spreadsheet_bombs_and_oversize_files_are_refused_naming_the_limit() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = app_with(junheng_workflow::test_limits()).await;
    let (camp, _) = changle(&app).await;
    let before = app.count("schools").await;
    let probe = Prober::start(&app).await;

    let bomb = xlsx_bomb();
    assert!(
        bomb.len() < 20_000,
        "the bomb is tiny: {} bytes",
        bomb.len()
    );
    let t = Instant::now();
    let s = app
        .sheets()
        .import_schools(auth(OFFICE_TOKEN, import(&camp.id, "bomb.xlsx", bomb)))
        .await
        .expect_err("the bomb is refused");
    let took = t.elapsed();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let bad = s.get_details_bad_request().expect("field violations");
    let content = bad
        .field_violations
        .iter()
        .find(|v| v.field == "content")
        .expect("names content");
    assert!(
        content.description.contains("at most 20000 rows"),
        "{}",
        content.description
    );
    println!("XLSX bomb refused in {took:?}");

    // The same bomb with cells only (no declared dimension) is caught while reading.
    let mut wide = rust_xlsxwriter::Workbook::new();
    let sheet = wide.add_worksheet();
    sheet.write_string(0, 0, "学校代码").unwrap();
    sheet.write_string(0, 16_383, "x").unwrap();
    let s = app
        .sheets()
        .import_schools(auth(
            OFFICE_TOKEN,
            import(&camp.id, "wide.xlsx", wide.save_to_buffer().unwrap()),
        ))
        .await
        .expect_err("too wide");
    assert!(s.message().contains("at most 100 columns"), "{s:?}");

    // A CSV over the documented 20 MiB reaches the handler (the service decodes up to
    // 21 MiB) and is refused naming the limit.
    let mut big = b"\xEF\xBB\xBF\xE5\xAD\xA6\xE6\xA0\xA1\xE4\xBB\xA3\xE7\xA0\x81\n".to_vec();
    big.resize((20 << 20) + 1, b'1');
    let s = app
        .sheets()
        .import_schools(auth(OFFICE_TOKEN, import(&camp.id, "big.csv", big)))
        .await
        .expect_err("over 20 MiB");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(violations(&s).contains(&"content".to_string()), "{s:?}");
    assert!(s.message().contains("at most 20971520 bytes"), "{s:?}");

    // Past the decoding limit tonic refuses before any handler (OUT_OF_RANGE, its code for
    // a message over the limit).
    let mut huge = vec![b'1'; (21 << 20) + 1024];
    huge[0] = b'x';
    let s = app
        .sheets()
        .import_schools(auth(OFFICE_TOKEN, import(&camp.id, "huge.csv", huge)))
        .await
        .expect_err("over the decoding limit");
    assert_eq!(s.code(), Code::OutOfRange, "{s:?}");
    assert!(s.message().contains("message length too large"), "{s:?}");

    // A CSV with more rows than a sheet may have.
    let mut rows = "学校代码,学校名称,学段,所属镇街,校长\n".to_string();
    for i in 0..20_000 {
        rows.push_str(&format!(
            "{:010},学校{i},小学,城关街道,张三\n",
            3_707_000_000u64 + i
        ));
    }
    let s = app
        .sheets()
        .import_schools(auth(
            OFFICE_TOKEN,
            import(&camp.id, "rows.csv", rows.into_bytes()),
        ))
        .await
        .expect_err("too many rows");
    assert!(s.message().contains("at most 20000 rows"), "{s:?}");

    // Field lengths as RegisterSchools: a 101-character name is refused naming the field.
    let long = "长".repeat(101);
    let csv =
        format!("学校代码,学校名称,学段,所属镇街,校长\n3707000001,{long},小学,城关街道,张三\n");
    let s = app
        .sheets()
        .import_schools(auth(
            OFFICE_TOKEN,
            import(&camp.id, "long.csv", csv.into_bytes()),
        ))
        .await
        .expect_err("a name too long");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        violations(&s).contains(&"schools[0].name".to_string()),
        "{s:?}"
    );

    assert_eq!(app.count("schools").await, before, "nothing was imported");
    probe.finish("imports").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_follow_events_from_one_caller_get_the_cap() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = app_with(junheng_workflow::test_limits()).await;
    let (camp, _) = changle(&app).await;
    let probe = Prober::start(&app).await;
    let cap = CallerLimits::default().streams;

    let calls = (0..1000).map(|_| {
        let mut client =
            pb::campaign_service_client::CampaignServiceClient::new(app.channel.clone());
        let id = camp.id.clone();
        tokio::spawn(async move {
            client
                .follow_events(auth(
                    OFFICE_TOKEN,
                    pb::FollowEventsRequest {
                        campaign_id: id,
                        ..Default::default()
                    },
                ))
                .await
        })
    });
    let results = futures::future::join_all(calls).await;
    let mut open = Vec::new();
    let mut refused = 0;
    for r in results {
        match r.unwrap() {
            Ok(stream) => open.push(stream.into_inner()),
            Err(s) => {
                assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
                assert!(s.message().contains("retry in"), "{s:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(open.len(), cap, "exactly the cap of streams is open");
    assert_eq!(refused, 1000 - cap);
    let s = pb::campaign_service_client::CampaignServiceClient::new(app.channel.clone())
        .follow_events(auth(
            OFFICE_TOKEN,
            pb::FollowEventsRequest {
                campaign_id: camp.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("still at the cap");
    assert!(s.message().contains("at most 8 per caller"), "{s:?}");
    // The open streams still deliver: the campaign's events so far.
    let first = open[0].message().await.expect("an event").expect("some");
    assert!(first.event.is_some());

    // Closing the streams frees the slots.
    drop(open);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = pb::campaign_service_client::CampaignServiceClient::new(app.channel.clone())
            .follow_events(auth(
                OFFICE_TOKEN,
                pb::FollowEventsRequest {
                    campaign_id: camp.id.clone(),
                    stop_when_caught_up: true,
                    ..Default::default()
                },
            ))
            .await;
        if r.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "slots never came back: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    probe.finish("1,000 FollowEvents").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_unknown_tokens_is_refused_and_remembered() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = app_with(junheng_workflow::test_limits()).await;
    let probe = Prober::start(&app).await;
    let list = |token: String| {
        let mut c = pb::campaign_service_client::CampaignServiceClient::new(app.channel.clone());
        tokio::spawn(async move {
            c.list_campaigns(auth(&token, pb::ListCampaignsRequest::default()))
                .await
        })
    };
    // One token 500 times at once: past the 64 calls in progress per caller the rest are
    // RESOURCE_EXHAUSTED; every admitted one is UNAUTHENTICATED.
    let same: Vec<_> = (0..500).map(|_| list("guessed-token".into())).collect();
    let distinct: Vec<_> = (0..200).map(|i| list(format!("guess-{i}"))).collect();
    let mut refused = 0;
    for r in futures::future::join_all(same).await {
        let s = r.unwrap().expect_err("refused");
        match s.code() {
            Code::Unauthenticated => refused += 1,
            Code::ResourceExhausted => {}
            other => panic!("{other:?}: {s:?}"),
        }
    }
    assert!(refused >= 1, "some were looked up and refused");
    // 200 distinct tokens are 200 callers: each is looked up and refused.
    for r in futures::future::join_all(distinct).await {
        let s = r.unwrap().expect_err("refused");
        assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    }
    probe.finish("unknown tokens").await;

    // Remembered: with the database gone, a known-unknown token is still refused as
    // UNAUTHENTICATED (no round trip), a never-seen one needs the database (UNAVAILABLE), the
    // real token too — and unauthenticated GetServerInfo (real clock) needs none.
    app.pool.close().await;
    let s = list("guessed-token".into())
        .await
        .unwrap()
        .expect_err("refused");
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    let s = list("never-seen".into())
        .await
        .unwrap()
        .expect_err("needs the db");
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    let s = list(OFFICE_TOKEN.into())
        .await
        .unwrap()
        .expect_err("needs the db");
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    let info = app
        .admin()
        .get_server_info(pb::GetServerInfoRequest::default())
        .await
        .expect("GetServerInfo without the database")
        .into_inner();
    assert_eq!(info.clock_mode, "real");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_caller_past_its_rate_is_told_when_to_retry() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = app_with(CallerLimits {
        rate_per_sec: 50.0,
        burst: 100.0,
        concurrent: 1000,
        ..CallerLimits::default()
    })
    .await;
    let probe = Prober::start(&app).await;
    let calls = (0..300).map(|_| {
        let mut c = pb::campaign_service_client::CampaignServiceClient::new(app.channel.clone());
        tokio::spawn(async move {
            c.list_campaigns(auth(OFFICE_TOKEN, pb::ListCampaignsRequest::default()))
                .await
        })
    });
    let (mut ok, mut limited) = (0, 0);
    for r in futures::future::join_all(calls).await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(s) => {
                assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
                let retry = s.get_details_retry_info().expect("RetryInfo");
                assert!(
                    retry.retry_delay.is_some_and(|d| d > Duration::ZERO),
                    "{s:?}"
                );
                limited += 1;
            }
        }
    }
    assert!(ok >= 100, "the burst is served: {ok}");
    assert!(limited > 0, "past the burst some are limited ({ok} served)");
    // Another caller is not affected (the office's bucket refills first: it issues the token).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let other = app.token("另一个科室", pb::Role::Department, "").await;
    pb::campaign_service_client::CampaignServiceClient::new(app.channel.clone())
        .list_campaigns(auth(&other, pb::ListCampaignsRequest::default()))
        .await
        .expect("another caller is served");
    probe.finish("rate limit").await;
}

#[tokio::test]
async fn idempotency_records_expire_after_the_retention() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = app_with(junheng_workflow::test_limits()).await;
    let _ = changle(&app).await; // two commands: two records
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(n >= 2, "{n}");
    // One record is 31 days old, one 29: only the first is past the 30-day default.
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '31 days'
         WHERE method = 'CreateCampaign'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '29 days'
         WHERE method = 'RegisterSchools'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let gone = junheng_store::idempotency::purge(
        &app.pool,
        junheng_workflow::server::DEFAULT_IDEMPOTENCY_RETENTION,
    )
    .await
    .unwrap();
    assert_eq!(gone, 1);
    let methods: Vec<String> = sqlx::query_scalar("SELECT method FROM idempotency_keys")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(
        !methods.contains(&"CreateCampaign".to_string()),
        "{methods:?}"
    );
    assert!(
        methods.contains(&"RegisterSchools".to_string()),
        "{methods:?}"
    );
}
