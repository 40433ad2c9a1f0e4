//! The workflow's admin endpoint: `GET /metrics` shows every call by method and code, the audit
//! events and the obligations by campaign and phase, and the series move when work happens.
//! Health answers `junheng.live` and `junheng.ready` (the database answers).

use junheng_edge::metrics::read::{fetch, sample as value};
use junheng_proto::v1 as pb;
use junheng_tests::*;
use junheng_workflow::ClockMode;
use tonic::Code;

#[tokio::test]
async fn metrics_move_when_work_happens() {
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let dept = app.token("业务科室", pb::Role::Department, "").await;

    let m = fetch(app.server.metrics_addr.expect("metrics port")).await;
    let calls = |m: &str, method: &str, code: &str| {
        value(
            m,
            "junheng_grpc_requests_total",
            &[("method", method), ("code", code)],
        )
    };
    assert_eq!(calls(&m, "CreateCampaign", "OK"), 1.0, "{m}");
    assert_eq!(calls(&m, "RegisterSchools", "OK"), 1.0);
    assert_eq!(
        value(
            &m,
            "junheng_events_total",
            &[
                ("campaign", "changle-2020"),
                ("action", "school.registered")
            ]
        ),
        40.0
    );
    assert!(value(&m, "junheng_db_pool_max", &[]) > 0.0);

    // A refused call is counted by its code, and timed.
    let nominate = pb::NominateRequest {
        idempotency_key: key(),
        school_id: schools[0].id.clone(),
        expected_version: 0,
        basis: "达标".into(),
    };
    expect_code(
        app.seed().nominate(auth(&dept, nominate.clone())).await,
        Code::FailedPrecondition,
    );
    let m2 = fetch(app.server.metrics_addr.expect("metrics port")).await;
    assert_eq!(calls(&m2, "Nominate", "FailedPrecondition"), 1.0, "{m2}");
    assert_eq!(
        value(
            &m2,
            "junheng_grpc_request_duration_seconds_count",
            &[("method", "Nominate")]
        ),
        1.0
    );

    // A notice opens an obligation to close it; once its period is over it is overdue; closing
    // it takes both series back to 0.
    app.campaigns()
        .open_phase(auth(
            OFFICE_TOKEN,
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
                ..nominate
            },
        ))
        .await
        .unwrap();
    let notice = app
        .seed()
        .publish_notice(auth(
            OFFICE_TOKEN,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: camp.id.clone(),
                kind: pb::NoticeKind::SeedCandidates as i32,
                school_ids: vec![schools[0].id.clone()],
                title: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let close = [
        ("campaign", "changle-2020"),
        ("phase", "notice"),
        ("kind", "close_notice"),
    ];
    let m3 = fetch(app.server.metrics_addr.expect("metrics port")).await;
    assert_eq!(value(&m3, "junheng_obligations_open", &close), 1.0, "{m3}");
    assert_eq!(value(&m3, "junheng_obligations_overdue", &close), 0.0);
    app.advance("2020-03-09T09:00:00+08:00").await;
    let m4 = fetch(app.server.metrics_addr.expect("metrics port")).await;
    assert_eq!(
        value(&m4, "junheng_obligations_overdue", &close),
        1.0,
        "{m4}"
    );
    app.seed()
        .close_notice(auth(
            OFFICE_TOKEN,
            pb::CloseNoticeRequest {
                idempotency_key: key(),
                notice_id: notice.id.clone(),
            },
        ))
        .await
        .unwrap();
    let m5 = fetch(app.server.metrics_addr.expect("metrics port")).await;
    assert!(
        m5.contains("junheng_obligations_open{"),
        "the series stays, at 0: {m5}"
    );
    assert_eq!(value(&m5, "junheng_obligations_open", &close), 0.0);
    assert_eq!(value(&m5, "junheng_obligations_overdue", &close), 0.0);
    assert_eq!(
        value(&m5, "junheng_events_total", &[("action", "notice.closed")]),
        1.0,
        "{m5}"
    );

    // Liveness and readiness.
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    for svc in ["junheng.live", "junheng.ready"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: svc.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{svc}"
        );
    }
}
