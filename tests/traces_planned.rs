//! Reminders and notice expiries continue the trace of the call that caused them: the call
//! that opened a deadline (OpenPhase) or published a notice (PublishNotice) leaves its W3C
//! `traceparent` on the obligation or notice, and the scheduler copies it to the outbox rows it
//! plans from them days later — so each `deliver` span of those rows joins the call's trace,
//! as `tests/traces.rs` shows for a leadership summary planned from an event.

use std::sync::Arc;

use junheng_edge::telemetry::{Options, Telemetry};
use junheng_proto::v1 as pb;
use junheng_scheduler::{NoWorkflow, Scheduler, Settings};
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Request;

const OPENER: &str = "0af7651916cd43dd8448eb211c80319c";
const PUBLISHER: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traced<T>(trace: &str, msg: T) -> Request<T> {
    let mut req = auth(OFFICE_TOKEN, msg);
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-b7ad6b7169203331-01").parse().unwrap(),
    );
    req
}

#[tokio::test]
async fn reminders_and_notice_expiries_continue_the_trace_of_the_call_that_caused_them() {
    // Spans are made (and their context propagated) whether or not the collector answers;
    // nothing listens on this port, so the exporter's sends fail quietly.
    let telemetry = Telemetry::init(&Options {
        service: "junheng-test",
        json_logs: false,
        otlp_endpoint: Some("http://127.0.0.1:9".into()),
        default_filter: "error",
    })
    .unwrap();

    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    app.campaigns()
        .open_phase(traced(
            OPENER,
            pb::OpenPhaseRequest {
                idempotency_key: key(),
                campaign_id: camp.id.clone(),
                phase: pb::Phase::SeedDesignation as i32,
            },
        ))
        .await
        .unwrap();
    app.seed()
        .nominate(auth(
            &dept,
            pb::NominateRequest {
                idempotency_key: key(),
                school_id: schools[0].id.clone(),
                expected_version: 0,
                basis: "达标".into(),
            },
        ))
        .await
        .unwrap();
    app.seed()
        .publish_notice(traced(
            PUBLISHER,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: camp.id.clone(),
                kind: 1,
                school_ids: vec![schools[0].id.clone()],
                title: String::new(),
            },
        ))
        .await
        .unwrap();

    // What the workflow kept: each opened deadline and the notice carry the trace of the call
    // that opened it — the phase's deadlines OpenPhase's, the notice's close PublishNotice's.
    let obligations: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT kind, trace_context FROM obligations WHERE status = 'open'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(
        obligations.iter().any(|(k, _)| k != "close_notice"),
        "{obligations:?}"
    );
    for (kind, t) in &obligations {
        let t = t.as_deref().unwrap_or_default();
        let caller = if kind == "close_notice" {
            PUBLISHER
        } else {
            OPENER
        };
        assert!(t.starts_with(&format!("00-{caller}-")), "{kind}: {t:?}");
    }
    let (notice_trace,): (Option<String>,) = sqlx::query_as("SELECT trace_context FROM notices")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let notice_trace = notice_trace.expect("the notice carries its publisher's trace");
    assert!(
        notice_trace.starts_with(&format!("00-{PUBLISHER}-")),
        "{notice_trace}"
    );

    // The scheduler plans the notice's expiry once it has ended, and the deadline's first
    // reminder a week before it (the definition's offsets 7/3/1/0 days, 08:30).
    let sink = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&sink)
        .await;
    let settings = Settings::from_toml(
        &format!(
            r#"
            database_url = "postgres://unused/unused"
            clock = "simulated"
            [planning]
            skip_kinds = ["close_notice", "daily_digest", "phase_summary"]
            digests_enabled = false
            [endpoints.hook]
            kind = "webhook"
            url = "{}/hook"
            secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
            [recipients]
            office = ["hook"]
            department = ["hook"]
            leadership = ["hook"]
            schools = ["hook"]
            "#,
            sink.uri()
        ),
        |_| None,
    )
    .unwrap();
    let scheduler =
        Scheduler::new(app.pool.clone(), Arc::new(settings), Arc::new(NoWorkflow)).unwrap();
    scheduler
        .tick(at("2020-03-16T10:00:00+08:00"))
        .await
        .unwrap();
    scheduler
        .tick(at("2020-04-23T09:00:00+08:00"))
        .await
        .unwrap();

    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT kind, recipient, trace_context FROM outbox WHERE kind IN ('reminder', 'notice_expiry') ORDER BY kind, recipient",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let expiries: Vec<_> = rows.iter().filter(|r| r.0 == "notice_expiry").collect();
    let reminders: Vec<_> = rows.iter().filter(|r| r.0 == "reminder").collect();
    assert!(
        expiries.len() >= 2,
        "the office's copy and the listed school's: {rows:?}"
    );
    assert!(!reminders.is_empty(), "{rows:?}");
    for (kind, recipient, t) in &expiries {
        assert_eq!(
            t.as_deref(),
            Some(notice_trace.as_str()),
            "{kind} to {recipient}"
        );
    }
    for (kind, recipient, t) in &reminders {
        let t = t.as_deref().unwrap_or_default();
        assert!(
            t.starts_with(&format!("00-{OPENER}-")),
            "{kind} to {recipient}: {t:?}"
        );
    }
    telemetry.shutdown().await;
}
