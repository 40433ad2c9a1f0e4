//! Logs and traces.
//!
//! Logs go to stderr as text or JSON lines. Traces are off unless an OTLP endpoint is given
//! (`--otlp-endpoint`, `JUNHENG_OTLP_ENDPOINT`, e.g. `http://127.0.0.1:4317`): then every span
//! of a junheng crate is exported over OTLP/gRPC (batched on the service's own runtime) with
//! the service's name as `service.name`.
//!
//! One trace follows a change from the call that made it to the messages it caused: the
//! gRPC server opens a span per call ([`grpc_span`]), continuing the caller's W3C
//! `traceparent` when it sent one; what the call writes to the audit trail carries that span's
//! `traceparent` ([`traceparent`]); the scheduler copies it to the outbox rows it plans from
//! the event and opens each delivery's span under it ([`continue_trace`]).

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The W3C header that carries a trace across processes.
pub const TRACEPARENT: &str = "traceparent";

/// How a service logs and traces.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `service.name` of the exported spans (`junheng-workflow`, `junheng-scheduler`).
    pub service: &'static str,
    /// JSON lines instead of text.
    pub json_logs: bool,
    /// OTLP/gRPC collector; traces are off when `None`.
    pub otlp_endpoint: Option<String>,
    /// Log filter when `RUST_LOG` is unset.
    pub default_filter: &'static str,
}

/// Keeps the trace exporter alive; flushes what is buffered when dropped.
#[must_use = "dropping it stops the trace exporter"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the global subscriber (once per process). Must run inside the tokio runtime
    /// when traces are on.
    pub fn init(opts: &Options) -> anyhow::Result<Telemetry> {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| opts.default_filter.into());
        let fmt = if opts.json_logs {
            tracing_subscriber::fmt::layer().json().boxed()
        } else {
            tracing_subscriber::fmt::layer().boxed()
        };
        let (otel, provider) = match &opts.otlp_endpoint {
            Some(url) => {
                let provider = provider(opts.service, url)?;
                let tracer = provider.tracer("junheng");
                // Only our own spans: the exporter's tonic and h2 must not trace themselves.
                let ours =
                    tracing_subscriber::filter::filter_fn(|m| m.target().starts_with("junheng"));
                let layer = tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(ours);
                (Some(layer), Some(provider))
            }
            None => (None, None),
        };
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing_subscriber::registry()
            .with(otel)
            .with(fmt.with_filter(filter))
            .try_init()?;
        if let Some(url) = &opts.otlp_endpoint {
            tracing::info!(endpoint = %url, service = opts.service, "exporting traces over OTLP");
        }
        Ok(Telemetry { provider })
    }

    /// Exports what is buffered and stops the exporter. The exporter runs on the runtime, so
    /// its blocking shutdown waits on the blocking pool while the runtime serves it.
    pub async fn shutdown(mut self) {
        if let Some(p) = self.provider.take() {
            match tokio::task::spawn_blocking(move || p.shutdown()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "trace exporter did not shut down cleanly")
                }
                Err(e) => tracing::warn!(error = %e, "trace exporter shutdown panicked"),
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if self.provider.is_some() {
            // Without `shutdown().await` the last batch may be lost; blocking here could
            // deadlock the runtime the exporter runs on.
            tracing::debug!("telemetry dropped without shutdown: buffered spans are not flushed");
        }
    }
}

/// A tracer provider exporting to `url` over OTLP/gRPC, batched on the tokio runtime (the
/// SDK's thread-based batcher cannot drive tonic's connections).
pub fn provider(service: &'static str, url: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(url)
        .build()
        .map_err(|e| anyhow::anyhow!("--otlp-endpoint {url}: {e}"))?;
    let batch =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batch)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build())
}

/// The `traceparent` of the current span, when traces are on and a span is open.
pub fn traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the trace `traceparent` names (ignored when malformed).
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    // A span no layer records (no trace exporter, below the log level) has no parent to set.
    if span.is_disabled() {
        return;
    }
    let Some(tp) = traceparent else { return };
    let carrier = HashMap::from([(TRACEPARENT.to_string(), tp.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The span of one gRPC call (tonic's `Server::trace_fn`): `rpc.service`, `rpc.method`, the
/// request id and the actor (recorded by the handler once known), under the caller's
/// `traceparent` when it sent one.
pub fn grpc_span<B>(req: &http::Request<B>) -> tracing::Span {
    let (service, method) = crate::metrics::split_path(req.uri().path());
    let span = tracing::info_span!(
        "grpc",
        otel.name = %format!("{service}/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        request.id = tracing::field::Empty,
        actor.id = tracing::field::Empty,
    );
    let traceparent = req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok());
    continue_trace(&span, traceparent);
    span
}
