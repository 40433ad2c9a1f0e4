//! The office's delivery desk through the real workflow pages, the real scheduler gRPC (one
//! PostgreSQL) and real vendors' answers (wiremock): a dead delivery shown with the vendor's
//! reply, a bulk resend with its count and confirmation, a disabled robot re-enabled; a leader
//! and a school refused the desk; the session-bound token absent from a dump of
//! `web_sessions`; and the same pages in headless Chromium (content, no console errors,
//! axe-core clean, screenshots).

#[path = "pages_http.rs"]
mod web;
#[path = "pages_webdriver.rs"]
#[allow(dead_code)]
mod webdriver;
use web::{client, field, sign_in};

use std::sync::Arc;

use junheng_proto::v1 as pb;
use junheng_scheduler::outbox::{self, Kind, NewRow, Payload};
use junheng_scheduler::{Dispatcher, SignClock};
use junheng_tests::*;
use junheng_workflow::ClockMode;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

const VENDOR_REPLY: &str = "recipient mailbox unknown: 督导室收件组";

fn scheduler_settings(hook: &str, wecom: &str) -> Arc<junheng_scheduler::config::Settings> {
    let text = format!(
        r#"
        database_url = "postgres://unused/unused"
        [dispatch]
        batch_size = 1
        lease_secs = 60
        max_attempts = 3
        backoff_base_secs = 30
        backoff_max_secs = 3600
        concurrency = 1
        [endpoints.hook]
        kind = "webhook"
        url = "{hook}/hook"
        secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
        [endpoints.group]
        kind = "wecom"
        key = "k"
        base_url = "{wecom}"
        [planning]
        digests_enabled = false
        [recipients]
        office = ["hook"]
        leadership = ["hook"]
        schools = ["hook"]
    "#
    );
    let mut s = junheng_scheduler::config::Settings::from_toml(&text, |_| None).expect("settings");
    s.clock = junheng_scheduler::ClockMode::Simulated { start: None };
    Arc::new(s)
}

fn rows(
    campaign: Uuid,
    endpoint: &str,
    n: usize,
    t0: chrono::DateTime<chrono::Utc>,
) -> Vec<NewRow> {
    (0..n)
        .map(|i| NewRow {
            dedupe_key: format!("desk:{endpoint}:{i}"),
            campaign_id: campaign,
            kind: Kind::DailyDigest,
            endpoint: endpoint.into(),
            recipient: "role:office".into(),
            obligation_id: None,
            planned_due_at: None,
            payload: Payload {
                title: format!("每日汇总 {endpoint} {i}"),
                text: format!("第 {i} 条正文"),
                ..Payload::default()
            },
            urgent: false,
            not_before: t0,
            held: false,
            trace_context: None,
        })
        .collect()
}

async fn get(c: &reqwest::Client, cookie: &str, url: &str) -> (StatusCode, String) {
    let r = c.get(url).header("cookie", cookie).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post(
    c: &reqwest::Client,
    cookie: &str,
    url: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let r = c
        .post(url)
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_desk_shows_failures_resends_in_bulk_and_re_enables_a_robot() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The scheduler's port is chosen first, so the pages know where to call.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sched_addr = probe.local_addr().unwrap();
    drop(probe);
    let (app, web) = App::spawn_with_web_options(
        ClockMode::Simulated {
            start: Some(at("2020-03-02T09:00:00+08:00")),
        },
        junheng_workflow::web::WebOptions {
            scheduler: Some(junheng_workflow::web::SchedulerClient {
                url: format!("http://{sched_addr}"),
                tls: Default::default(),
            }),
            ..Default::default()
        },
    )
    .await;
    let (campaign, schools) = changle(&app).await;
    let campaign_id: Uuid = campaign.id.parse().unwrap();
    let leader = app.token("局领导", pb::Role::Leader, "").await;
    let school = app
        .token(&schools[3].name, pb::Role::School, &schools[3].id)
        .await;

    // The vendors: the webhook refuses for good (422, the reply kept), WeCom says the robot
    // was removed from its group (93000: the endpoint is disabled, its message parked).
    let hook = wiremock::MockServer::start().await;
    let refusing = wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(422).set_body_string(VENDOR_REPLY))
        .mount_as_scoped(&hook)
        .await;
    let wecom = wiremock::MockServer::start().await;
    let removed = wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"errcode": 93000, "errmsg": "invalid webhook url"})),
        )
        .mount_as_scoped(&wecom)
        .await;
    let settings = scheduler_settings(&hook.uri(), &wecom.uri());
    let t0 = at("2020-03-02T09:00:00+08:00");
    let mut all = rows(campaign_id, "hook", 3, t0);
    all.extend(rows(campaign_id, "group", 1, t0));
    outbox::insert(&mut app.pool.acquire().await.unwrap(), &all, t0)
        .await
        .unwrap();
    let d = Dispatcher::new(
        app.pool.clone(),
        settings.clone(),
        Arc::new(junheng_notify::Sender::new().unwrap()),
        "desk-test".into(),
    )
    .with_sign_clock(SignClock::Tick);
    let r = d.drain(t0, 10).await.unwrap();
    assert_eq!((r.sent, r.dead, r.parked), (0, 3, 1), "{r:?}");
    let scheduler =
        junheng_scheduler::grpc::start(app.pool.clone(), settings.clone(), &sched_addr.to_string())
            .await
            .expect("scheduler starts");

    let c = client();
    let office = sign_in(&c, &web, OFFICE_TOKEN).await;

    // The token is kept with the session only sealed: a dump of the table does not hold it.
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws('|', encode(id_digest, 'escape'), token_id::text, csrf, \
                encode(coalesce(token_sealed, ''::bytea), 'escape'), encode(coalesce(token_sealed, ''::bytea), 'hex')) \
         FROM web_sessions",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(!dump.is_empty());
    for row in &dump {
        assert!(!row.contains(OFFICE_TOKEN), "{row}");
        assert!(!row.contains(&hex::encode(OFFICE_TOKEN)), "{row}");
    }

    // The failures, filtered on the server, each with the vendor's reply.
    let (st, html) = get(&c, &office, &format!("{web}/desk?status=dead&channel=hook")).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(html.contains("共3条，其中发送失败"), "{html}");
    assert!(html.contains("每日汇总 hook 0"), "{html}");
    assert!(!html.contains("每日汇总 group 0"), "{html}");
    let (_, none) = get(
        &c,
        &office,
        &format!("{web}/desk?status=dead&from=2020-03-03"),
    )
    .await;
    assert!(none.contains("共0条"), "{none}");
    let id = html
        .split("href=\"/desk/deliveries/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let (st, one) = get(&c, &office, &format!("{web}/desk/deliveries/{id}")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(one.contains("发送失败（死信）"), "{one}");
    assert!(
        one.contains(VENDOR_REPLY),
        "the vendor's reply is shown: {one}"
    );
    // The table downloads as XLSX.
    let r = c
        .get(format!("{web}/desk?status=dead&download=deliveries"))
        .header("cookie", &office)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(r.bytes().await.unwrap().starts_with(b"PK"));

    // Bulk resend: the confirmation names the count, the POST carries CSRF and a key.
    drop(refusing);
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let (st, confirm) = get(&c, &office, &format!("{web}/desk/resend?status=dead")).await;
    assert_eq!(st, StatusCode::OK, "{confirm}");
    assert!(
        confirm.contains("将重新发送 <strong id=\"resend-count\">3</strong> 条"),
        "{confirm}"
    );
    let csrf = field(&confirm, "csrf");
    let key = field(&confirm, "idempotency_key");
    let ids = field(&confirm, "ids");
    let (st, _) = post(
        &c,
        &office,
        &format!("{web}/desk/resend"),
        &[("csrf", "wrong"), ("idempotency_key", &key), ("ids", &ids)],
    )
    .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "a form without the session's CSRF token"
    );
    let form = [
        ("csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("ids", ids.as_str()),
    ];
    let (st, done) = post(&c, &office, &format!("{web}/desk/resend"), &form).await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert!(
        done.contains("已重新排队 <strong id=\"queued\">3</strong> 条"),
        "{done}"
    );
    // The same form again resends nothing twice.
    let (st, again) = post(&c, &office, &format!("{web}/desk/resend"), &form).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    let r = d
        .drain(t0 + chrono::Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(r.sent, 3, "{r:?}");
    // A resend is a copy under a new id (the dead letter stays, as history): three copies,
    // sent, however often the form was posted; each audited as the office's own call.
    let (_, after) = get(&c, &office, &format!("{web}/desk?status=sent&channel=hook")).await;
    assert!(after.contains("共3条"), "{after}");
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, role FROM events WHERE action = 'delivery.resent' AND campaign_id = $1",
    )
    .bind(campaign_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 3, "{audited:?}");
    assert!(
        audited.iter().all(|(_, role)| role == "office"),
        "{audited:?}"
    );
    // A phase summary sent shows on the dashboard's "last summaries sent", read the same way.
    let t1 = t0 + chrono::Duration::minutes(2);
    let mut summary = rows(campaign_id, "hook", 1, t1);
    summary[0].kind = Kind::PhaseSummary;
    summary[0].dedupe_key = "desk:summary".into();
    summary[0].recipient = "role:leadership".into();
    summary[0].payload.title = "第一阶段工作小结".into();
    outbox::insert(&mut app.pool.acquire().await.unwrap(), &summary, t1)
        .await
        .unwrap();
    assert_eq!(d.drain(t1, 10).await.unwrap().sent, 1);
    let leader_cookie = sign_in(&c, &web, &leader).await;
    let (st, dash) = get(
        &c,
        &leader_cookie,
        &format!("{web}/campaigns/{}/dashboard", campaign.code),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{dash}");
    let section = dash.split("最近发送的阶段小结").nth(1).unwrap();
    assert!(
        section.contains("第一阶段工作小结") && section.contains("已送达"),
        "{section}"
    );

    // The disabled robot, with its reason, and re-enabled.
    drop(removed);
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"errcode": 0, "errmsg": "ok"})),
        )
        .mount(&wecom)
        .await;
    let (st, eps) = get(&c, &office, &format!("{web}/desk/endpoints")).await;
    assert_eq!(st, StatusCode::OK, "{eps}");
    assert!(eps.contains("已停用") && eps.contains("93000"), "{eps}");
    let csrf = field(&eps, "csrf");
    let (st, enabled) = post(
        &c,
        &office,
        &format!("{web}/desk/endpoints/group/enable"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{enabled}");
    assert!(enabled.contains("1 条待发消息重新排队"), "{enabled}");
    let (_, eps) = get(&c, &office, &format!("{web}/desk/endpoints")).await;
    assert!(!eps.contains("已停用</td>"), "{eps}");

    // The messages coming up answer too.
    let (st, up) = get(
        &c,
        &office,
        &format!("{web}/desk/upcoming?campaign={campaign_id}"),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{up}");
    assert!(up.contains("待发消息"), "{up}");

    // One school's timeline: its own events from the workflow, with the link to choose it.
    let (st, tl) = get(
        &c,
        &office,
        &format!(
            "{web}/desk/schools?campaign={campaign_id}&school={}",
            schools[3].id
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{tl}");
    assert!(
        tl.contains(&schools[3].name) && tl.contains("办理记录"),
        "{tl}"
    );

    // A leader and a school are refused the desk (the page and its actions).
    for token in [&leader, &school] {
        let cookie = sign_in(&c, &web, token).await;
        for path in [
            "/desk",
            "/desk/endpoints",
            "/desk/resend?status=dead",
            "/desk/schools",
        ] {
            let (st, body) = get(&c, &cookie, &format!("{web}{path}")).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{path}: {body}");
        }
        let (_, dash) = get(&c, &cookie, &format!("{web}/dashboard")).await;
        assert!(
            !dash.contains("href=\"/desk\""),
            "no desk link for a non-office session"
        );
    }

    // In a real browser: the desk's pages read right, no console errors, axe-core clean.
    let b = webdriver::Browser::start().await;
    b.goto(&format!("{web}/login")).await;
    b.sign_in(OFFICE_TOKEN).await;
    let text = visit(&b, &format!("{web}/desk"), "desk").await;
    assert!(
        text.contains("消息投递台") && text.contains("每日汇总 hook 0"),
        "{text}"
    );
    let text = visit(&b, &format!("{web}/desk/deliveries/{id}"), "desk-delivery").await;
    assert!(text.contains(VENDOR_REPLY), "{text}");
    let text = visit(&b, &format!("{web}/desk/endpoints"), "desk-endpoints").await;
    assert!(text.contains("通道状态"), "{text}");
    visit(&b, &format!("{web}/desk/upcoming"), "desk-upcoming").await;
    visit(
        &b,
        &format!(
            "{web}/desk/schools?campaign={campaign_id}&school={}",
            schools[3].id
        ),
        "desk-school",
    )
    .await;
    let text = visit(
        &b,
        &format!("{web}/campaigns/{}/dashboard", campaign.code),
        "desk-dashboard",
    )
    .await;
    assert!(text.contains("第一阶段工作小结"), "{text}");
    b.quit().await;
    scheduler.shutdown().await.unwrap();
}

/// The shared page check, with the screenshots this test refreshes for the README.
async fn visit(b: &webdriver::Browser, url: &str, shot: &str) -> String {
    webdriver::visit(b, url, shot, &["desk", "desk-delivery", "desk-endpoints"]).await
}
