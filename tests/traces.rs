//! One trace from a gRPC call to the messages it caused: a caller completes phase 1 with a
//! W3C `traceparent`; the workflow's span for the call continues that trace and the audit
//! event carries it; the scheduler plans the leadership summary from the event, and the
//! delivery's span continues the same trace. Both services export their spans over OTLP/gRPC
//! to a collector played by this test (the real OTLP protocol, `opentelemetry-proto`).

use std::sync::{Arc, Mutex};

use junheng_edge::telemetry::{Options, Telemetry};
use junheng_proto::v1 as pb;
use junheng_scheduler::{NoWorkflow, Scheduler, Settings};
use junheng_tests::*;
use junheng_workflow::ClockMode;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::{Request, Response, Status};

/// The caller's trace (the W3C spec's example ids).
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// A span as the collector received it: (service.name, span name, trace id, parent span id).
type Got = (String, String, String, String);

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Got>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut got = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    got.push((
                        service.clone(),
                        s.name,
                        hex(&s.trace_id),
                        hex(&s.parent_span_id),
                    ));
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn traced<T>(msg: T) -> Request<T> {
    let mut req = auth(OFFICE_TOKEN, msg);
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    req
}

#[tokio::test]
async fn a_phase_completed_by_a_traced_call_is_summarised_in_the_same_trace() {
    // The collector, on a free port.
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let telemetry = Telemetry::init(&Options {
        service: "junheng-test",
        json_logs: false,
        otlp_endpoint: Some(otlp),
        default_filter: "warn",
    })
    .unwrap();

    // Phase 1 as the README walks it, the completion traced by its caller.
    let app = App::spawn(ClockMode::Simulated {
        start: Some(at("2020-03-02T09:00:00+08:00")),
    })
    .await;
    let (camp, schools) = changle(&app).await;
    let o = OFFICE_TOKEN;
    let dept = app.token("业务科室", pb::Role::Department, "").await;
    app.campaigns()
        .open_phase(auth(
            o,
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
    let notice = app
        .seed()
        .publish_notice(auth(
            o,
            pb::PublishNoticeRequest {
                idempotency_key: key(),
                campaign_id: camp.id.clone(),
                kind: 1,
                school_ids: vec![schools[0].id.clone()],
                title: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    app.advance("2020-03-09T09:00:00+08:00").await;
    app.seed()
        .close_notice(auth(
            o,
            pb::CloseNoticeRequest {
                idempotency_key: key(),
                notice_id: notice.id.clone(),
            },
        ))
        .await
        .unwrap();
    app.campaigns()
        .complete_phase(traced(pb::CompletePhaseRequest {
            idempotency_key: key(),
            campaign_id: camp.id.clone(),
            phase: pb::Phase::SeedDesignation as i32,
        }))
        .await
        .unwrap();

    // The audit event of the completion carries the call's trace; an untraced call's do not.
    let traces: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT action, trace_context FROM events WHERE action IN ('phase.completed', 'phase.opened') ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let completed = traces
        .iter()
        .find(|(a, _)| a == "phase.completed")
        .and_then(|(_, t)| t.clone())
        .expect("the completion event carries a traceparent");
    assert!(
        completed.starts_with(&format!("00-{TRACE}-")) && !completed.contains(CALLER_SPAN),
        "a child of the caller's span: {completed}"
    );
    // (phase.opened came from an untraced call: a trace of its own, not the caller's.)
    assert!(
        traces
            .iter()
            .filter(|(a, _)| a == "phase.opened")
            .all(|(_, t)| t.as_deref().is_none_or(|t| !t.contains(TRACE))),
        "{traces:?}"
    );

    // The scheduler plans the leadership summary from the event and delivers it.
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
            skip_kinds = ["close_notice", "reminder", "overdue", "daily_digest", "notice_expiry"]
            digests_enabled = false
            [endpoints.hook]
            kind = "webhook"
            url = "{}/hook"
            secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
            [recipients]
            leadership = ["hook"]
            "#,
            sink.uri()
        ),
        |_| None,
    )
    .unwrap();
    let scheduler =
        Scheduler::new(app.pool.clone(), Arc::new(settings), Arc::new(NoWorkflow)).unwrap();
    let now = at("2020-03-09T10:00:00+08:00");
    let report = scheduler.tick(now).await.unwrap();
    assert_eq!(report.plan.summaries, 1, "{report:?}");
    let (kind, row_trace): (String, Option<String>) =
        sqlx::query_as("SELECT kind, trace_context FROM outbox WHERE kind = 'phase_summary'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(kind, "phase_summary");
    assert_eq!(row_trace.as_deref(), Some(completed.as_str()));
    assert_eq!(sink.received_requests().await.unwrap().len(), 1);

    // Both spans reached the collector in the caller's trace.
    telemetry.shutdown().await;
    let got = collector.0.lock().unwrap().clone();
    let in_trace: Vec<&Got> = got.iter().filter(|g| g.2 == TRACE).collect();
    let call = in_trace
        .iter()
        .find(|g| g.1 == "junheng.v1.CampaignService/CompletePhase")
        .unwrap_or_else(|| panic!("the call's span in the trace: {got:#?}"));
    assert_eq!(call.3, CALLER_SPAN, "the call's span is the caller's child");
    assert!(call.0.contains("junheng-test"), "{call:?}");
    let delivery = in_trace
        .iter()
        .find(|g| g.1 == "deliver")
        .unwrap_or_else(|| panic!("the delivery's span in the trace: {got:#?}"));
    assert_eq!(
        Some(delivery.3.as_str()),
        completed.split('-').nth(2),
        "the delivery continues the call's span"
    );
    // The untraced calls made traces of their own.
    assert!(
        got.iter()
            .any(|g| g.1.ends_with("/OpenPhase") && g.2 != TRACE)
    );
}
