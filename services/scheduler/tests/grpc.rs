//! SchedulerService end to end: a real tonic server on a free port, real bearer tokens in the
//! `tokens` table, a real PostgreSQL; health, auth, validation details, paging, the attempt
//! log, idempotent resend and the preview.

mod common;

use std::sync::Arc;

use common::*;
use junheng_proto::v1 as pb;
use junheng_proto::v1::scheduler_service_client::SchedulerServiceClient;
use junheng_scheduler::grpc;
use junheng_scheduler::outbox::{self, Kind, NewRow, Payload};
use junheng_scheduler::{ClockMode, Dispatcher, SignClock};
use junheng_store::tokens::{self, TokenRow};
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use uuid::Uuid;

const OFFICE: &str = "tok-office-0123456789";
const LEADER: &str = "tok-leader-0123456789";
const SCHOOL: &str = "tok-school-0123456789";

async fn add_token(db: &TestDb, token: &str, actor: &str, role: &str) {
    let mut conn = db.pool.acquire().await.unwrap();
    tokens::insert(
        &mut conn,
        token,
        &TokenRow {
            actor: actor.into(),
            name: actor.into(),
            role: role.into(),
            ..TokenRow::default()
        },
    )
    .await
    .unwrap();
}

fn req<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r.metadata_mut()
        .insert("x-request-id", "req-test-1".parse().unwrap());
    r
}

/// Office and leader tokens, and the simulated clock at `t0`.
async fn office_leader_and_clock(db: &TestDb, t0: chrono::DateTime<chrono::Utc>) {
    add_token(db, OFFICE, "office-1", "office").await;
    add_token(db, LEADER, "leader-1", "leader").await;
    sqlx::query("INSERT INTO clock (singleton, simulated_now) VALUES (true, $1)")
        .bind(t0)
        .execute(&db.pool)
        .await
        .unwrap();
}

/// `n` office digests to `endpoint`, due at `t0`.
fn digests(
    campaign: Uuid,
    endpoint: &str,
    n: usize,
    t0: chrono::DateTime<chrono::Utc>,
) -> Vec<NewRow> {
    (0..n)
        .map(|i| NewRow {
            dedupe_key: format!("grpc:{i}|role:office|{endpoint}"),
            campaign_id: campaign,
            kind: Kind::DailyDigest,
            endpoint: endpoint.into(),
            recipient: "role:office".into(),
            obligation_id: None,
            planned_due_at: None,
            payload: Payload {
                title: format!("每日汇总 {i}"),
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

/// Field → reason pairs of an INVALID_ARGUMENT status's BadRequest details.
fn violations(s: &tonic::Status) -> Vec<String> {
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let mut v: Vec<String> = s
        .get_error_details()
        .bad_request()
        .expect("BadRequest details")
        .field_violations
        .iter()
        .map(|f| f.field.clone())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_service_end_to_end() {
    let db = TestDb::new().await;
    let t0 = local(2020, 4, 6, 9, 0);
    office_leader_and_clock(&db, t0).await;
    add_token(&db, SCHOOL, "school-1", "school").await;

    // A campaign with one open obligation (for the preview) and three delivered messages.
    let campaign = seed_campaign(&db.pool).await;
    let school = add_school(
        &db.pool,
        campaign,
        "3707250001",
        "昌乐二中",
        "enrolled",
        json!([]),
    )
    .await;
    add_obligation(
        &db.pool,
        campaign,
        Obl {
            kind: "submit_presentation",
            school: Some(school),
            owner_role: "school",
            owner_school: Some(school),
            due: local(2020, 4, 11, 0, 0),
            subject: "提交汇报材料",
            created: local(2020, 3, 1, 0, 0),
        },
    )
    .await;
    let sink = webhook_sink().await;
    let mut s = (*settings(&format!("{}/hook", sink.uri()), "")).clone();
    s.clock = ClockMode::Simulated { start: None };
    let settings = Arc::new(s);
    let rows = digests(campaign, "hook", 3, t0);
    let mut conn = db.pool.acquire().await.unwrap();
    outbox::insert(&mut conn, &rows, t0).await.unwrap();
    drop(conn);
    let d = Dispatcher::new(
        db.pool.clone(),
        settings.clone(),
        Arc::new(junheng_notify::Sender::new().unwrap()),
        "grpc-test".into(),
    )
    .with_sign_clock(SignClock::Tick);
    assert_eq!(d.drain(t0, 5).await.unwrap().sent, 3);

    let server = grpc::start(db.pool.clone(), settings.clone(), "127.0.0.1:0")
        .await
        .unwrap();
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();

    // Health.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["junheng.v1.SchedulerService", "junheng.clock.simulated"] {
        let h = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            h.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "{service}"
        );
    }

    let mut c = SchedulerServiceClient::new(channel);

    // Authentication and roles.
    let e = c
        .list_deliveries(req(pb::ListDeliveriesRequest::default(), None))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = c
        .list_deliveries(req(pb::ListDeliveriesRequest::default(), Some("nope")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = c
        .list_deliveries(req(pb::ListDeliveriesRequest::default(), Some(SCHOOL)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Scope: an office token of another campaign sees none of this one's messages, and a
    // token of this campaign sees them without naming it.
    let other = Uuid::now_v7();
    for (token, campaigns) in [
        ("tok-office-other-0123456789", vec![other]),
        ("tok-office-this-01234567890", vec![campaign]),
    ] {
        let mut conn = db.pool.acquire().await.unwrap();
        tokens::insert(
            &mut conn,
            token,
            &TokenRow {
                actor: format!("office:{token}"),
                name: token.into(),
                role: "office".into(),
                campaigns: Some(campaigns),
                ..TokenRow::default()
            },
        )
        .await
        .unwrap();
    }
    let list = |token: &'static str, campaign_id: String| {
        let mut c = c.clone();
        async move {
            c.list_deliveries(req(
                pb::ListDeliveriesRequest {
                    campaign_id,
                    ..Default::default()
                },
                Some(token),
            ))
            .await
        }
    };
    let mine = list("tok-office-this-01234567890", String::new())
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(mine.len(), 3);
    let theirs = list("tok-office-other-0123456789", String::new())
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert!(theirs.is_empty(), "{theirs:?}");
    let e = list("tok-office-other-0123456789", campaign.to_string())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = c
        .get_delivery(req(
            pb::GetDeliveryRequest {
                id: mine[0].id.clone(),
            },
            Some("tok-office-other-0123456789"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = c
        .resend_delivery(req(
            pb::ResendDeliveryRequest {
                idempotency_key: "scope-resend-1".into(),
                id: mine[0].id.clone(),
            },
            Some("tok-office-other-0123456789"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = c
        .preview_upcoming(req(
            pb::PreviewUpcomingRequest {
                campaign_id: campaign.to_string(),
                until: Some(prost_types::Timestamp {
                    seconds: (t0 + chrono::Duration::days(2)).timestamp(),
                    nanos: 0,
                }),
            },
            Some("tok-office-other-0123456789"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // Paging, newest first, as the leader; the request id comes back.
    let page1 = c
        .list_deliveries(req(
            pb::ListDeliveriesRequest {
                page_size: 2,
                status: "sent".into(),
                campaign_id: campaign.to_string(),
                ..Default::default()
            },
            Some(LEADER),
        ))
        .await
        .unwrap();
    assert_eq!(
        page1
            .metadata()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap(),
        "req-test-1"
    );
    let page1 = page1.into_inner();
    assert_eq!(page1.deliveries.len(), 2);
    assert!(!page1.next_page_token.is_empty());
    let page2 = c
        .list_deliveries(req(
            pb::ListDeliveriesRequest {
                page_size: 2,
                page_token: page1.next_page_token.clone(),
                ..Default::default()
            },
            Some(LEADER),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.deliveries.len(), 1);
    assert!(page2.next_page_token.is_empty());
    let mut titles: Vec<String> = page1
        .deliveries
        .iter()
        .chain(&page2.deliveries)
        .map(|d| d.title.clone())
        .collect();
    titles.sort();
    assert_eq!(titles, ["每日汇总 0", "每日汇总 1", "每日汇总 2"]);

    // Malformed arguments: every bad field is reported in BadRequest details.
    let e = c
        .list_deliveries(req(
            pb::ListDeliveriesRequest {
                campaign_id: "not-a-uuid".into(),
                status: "bogus".into(),
                page_size: 5000,
                page_token: "zzz".into(),
                ..Default::default()
            },
            Some(OFFICE),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violations(&e),
        ["campaign_id", "page_size", "page_token", "status"]
    );
    let e = c
        .get_delivery(req(
            pb::GetDeliveryRequest { id: "42".into() },
            Some(OFFICE),
        ))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["id"]);
    let e = c
        .get_delivery(req(
            pb::GetDeliveryRequest {
                id: Uuid::now_v7().to_string(),
            },
            Some(OFFICE),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // One delivery with its attempts and text.
    let first = page2.deliveries[0].clone();
    let detail = c
        .get_delivery(req(
            pb::GetDeliveryRequest {
                id: first.id.clone(),
            },
            Some(LEADER),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.delivery.as_ref().unwrap().status, "sent");
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.attempts[0].outcome, "delivered");
    assert_eq!(detail.attempts[0].worker, "grpc-test");
    assert!(detail.text.starts_with('第'), "{}", detail.text);

    // Resend: office only, idempotent per key, a key is bound to one delivery.
    let resend = |key: &str, id: &str| pb::ResendDeliveryRequest {
        idempotency_key: key.into(),
        id: id.into(),
    };
    let e = c
        .resend_delivery(req(resend("k1", &first.id), Some(LEADER)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = c
        .resend_delivery(req(resend("", "x"), Some(OFFICE)))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["id", "idempotency_key"]);
    let copy = c
        .resend_delivery(req(resend("k1", &first.id), Some(OFFICE)))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(copy.id, first.id);
    assert_eq!(copy.status, "pending");
    assert_eq!(copy.title, first.title);
    let again = c
        .resend_delivery(req(resend("k1", &first.id), Some(OFFICE)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, copy.id);
    // Audited once (the replay writes nothing), in the delivery's campaign, with the
    // original's state before and the copy after.
    let audit: Vec<(String, serde_json::Value, serde_json::Value)> =
        sqlx::query_as("SELECT actor, before, after FROM events WHERE action = 'delivery.resent'")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].1["delivery_id"], first.id.as_str());
    assert_eq!(audit[0].1["status"], first.status.as_str());
    assert_eq!(audit[0].2["delivery_id"], copy.id.as_str());
    assert_eq!(audit[0].2["status"], "pending");
    let e = c
        .resend_delivery(req(resend("k1", &page1.deliveries[0].id), Some(OFFICE)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    let e = c
        .resend_delivery(req(resend("k2", &Uuid::now_v7().to_string()), Some(OFFICE)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // The copy goes out under its own id.
    assert_eq!(d.drain(t0, 5).await.unwrap().sent, 1);
    let ids: Vec<String> = received(&sink).await.into_iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.contains(&copy.id));

    // Preview, on the simulated clock (Monday 2020-04-06 09:00).
    let until = local(2020, 4, 11, 0, 0);
    let p = c
        .preview_upcoming(req(
            pb::PreviewUpcomingRequest {
                campaign_id: campaign.to_string(),
                until: Some(prost_types::Timestamp {
                    seconds: until.timestamp(),
                    nanos: 0,
                }),
            },
            Some(LEADER),
        ))
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<&str> = p.messages.iter().map(|m| m.kind.as_str()).collect();
    // Reminders at 7/3/1 days and the morning of; the Saturday 00:00 overdue (owner and office)
    // waits for Monday morning on chat.
    assert_eq!(
        kinds,
        ["reminder", "reminder", "reminder", "overdue", "overdue"],
        "{p:#?}"
    );
    assert!(p.messages.iter().all(|m| m.title == "提交汇报材料"));
    let e = c
        .preview_upcoming(req(
            pb::PreviewUpcomingRequest {
                campaign_id: campaign.to_string(),
                until: Some(prost_types::Timestamp {
                    seconds: t0.timestamp() - 60,
                    nanos: 0,
                }),
            },
            Some(OFFICE),
        ))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["until"]);
    let e = c
        .preview_upcoming(req(pb::PreviewUpcomingRequest::default(), Some(OFFICE)))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["campaign_id", "until"]);

    server.shutdown().await.unwrap();
}

/// WeCom answers 93000 (robot removed from its group, CHANNELS.md): the endpoint is disabled,
/// its messages wait parked (one attempt for the message that found out, none for the next),
/// the office sees why over ListEndpoints, and EnableEndpoint after the fix sends them with
/// their own ids. Only the office may enable; an unknown name is NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_robot_is_disabled_until_the_office_enables_it() {
    let db = TestDb::new().await;
    let t0 = local(2020, 4, 6, 9, 0);
    office_leader_and_clock(&db, t0).await;
    let campaign = seed_campaign(&db.pool).await;
    let wecom = wiremock::MockServer::start().await;
    let removed = wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"errcode": 93000, "errmsg": "invalid webhook url"})),
        )
        .mount_as_scoped(&wecom)
        .await;
    let hook = webhook_sink().await;
    let group = format!(
        "[endpoints.group]\nkind = \"wecom\"\nkey = \"k\"\nbase_url = \"{}\"\n",
        wecom.uri()
    );
    let mut s = (*settings(&format!("{}/hook", hook.uri()), &group)).clone();
    s.clock = ClockMode::Simulated { start: None };
    s.dispatch.batch_size = 1;
    let settings = Arc::new(s);
    let rows = digests(campaign, "group", 2, t0);
    outbox::insert(&mut db.pool.acquire().await.unwrap(), &rows, t0)
        .await
        .unwrap();
    let d = Dispatcher::new(
        db.pool.clone(),
        settings.clone(),
        Arc::new(junheng_notify::Sender::new().unwrap()),
        "robot-test".into(),
    )
    .with_sign_clock(SignClock::Tick);
    // The first message finds out (one claim, one attempt); the second is claimed after.
    let r = d.dispatch_once(t0).await.unwrap();
    assert_eq!((r.sent, r.dead, r.parked), (0, 0, 1), "{r:?}");
    let r = d.drain(t0, 10).await.unwrap();
    assert_eq!((r.claimed, r.sent, r.parked), (0, 0, 1), "{r:?}");
    assert_eq!(wecom.received_requests().await.unwrap().len(), 1);
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_log")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        attempts, 1,
        "the second message was parked without an attempt"
    );
    // Nothing more goes out on later ticks while it is disabled.
    let r = d.drain(t0 + chrono::Duration::hours(1), 10).await.unwrap();
    assert_eq!((r.claimed, r.sent), (0, 0));

    let server = grpc::start(db.pool.clone(), settings.clone(), "127.0.0.1:0")
        .await
        .unwrap();
    let mut c = SchedulerServiceClient::new(
        Channel::from_shared(server.url())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let list = c
        .list_endpoints(req(pb::ListEndpointsRequest {}, Some(LEADER)))
        .await
        .unwrap()
        .into_inner()
        .endpoints;
    let group = list.iter().find(|e| e.name == "group").unwrap();
    assert!(group.disabled);
    assert_eq!((group.kind.as_str(), group.parked), ("wecom", 2));
    assert!(group.disabled_reason.contains("93000"), "{group:?}");
    let hook_ep = list.iter().find(|e| e.name == "hook").unwrap();
    assert!(!hook_ep.disabled && hook_ep.parked == 0);

    let e = c
        .enable_endpoint(req(
            pb::EnableEndpointRequest {
                name: "group".into(),
            },
            Some(LEADER),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = c
        .enable_endpoint(req(
            pb::EnableEndpointRequest { name: "".into() },
            Some(OFFICE),
        ))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), vec!["name"]);
    let e = c
        .enable_endpoint(req(
            pb::EnableEndpointRequest {
                name: "nope".into(),
            },
            Some(OFFICE),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // The robot is back in its group.
    drop(removed);
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"errcode": 0, "errmsg": "ok"})),
        )
        .mount(&wecom)
        .await;
    let enabled = c
        .enable_endpoint(req(
            pb::EnableEndpointRequest {
                name: "group".into(),
            },
            Some(OFFICE),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(enabled.released, 2);
    let ep = enabled.endpoint.unwrap();
    assert!(!ep.disabled && ep.parked == 0, "{ep:?}");
    // Enabling again is harmless.
    let again = c
        .enable_endpoint(req(
            pb::EnableEndpointRequest {
                name: "group".into(),
            },
            Some(OFFICE),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.released, 0);
    // Audited in the system chain with the disabled state it ended; the harmless repeat
    // changed nothing and wrote nothing.
    let audit: Vec<(uuid::Uuid, serde_json::Value, serde_json::Value)> = sqlx::query_as(
        "SELECT campaign_id, before, after FROM events WHERE action = 'endpoint.enabled'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, uuid::Uuid::nil());
    assert_eq!(audit[0].1["endpoint"], "group");
    assert!(
        audit[0].1["disabled"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("93000")),
        "{:?}",
        audit[0].1
    );
    assert_eq!(audit[0].2["released"], 2);

    let r = d.drain(t0 + chrono::Duration::hours(1), 10).await.unwrap();
    assert_eq!(r.sent, 2, "{r:?}");
    let ids: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, status FROM outbox ORDER BY dedupe_key")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let bodies: Vec<String> = wecom
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(bodies.len(), 3, "one refused, then both delivered");
    for (id, status) in &ids {
        assert_eq!(status, "sent");
        // The 编号 line carries the outbox id: the same message, not a copy.
        assert!(
            bodies[1..].iter().any(|b| b.contains(&id.to_string())),
            "{id} not in {bodies:?}"
        );
    }
    server.shutdown().await.unwrap();
}
