//! Prometheus metrics: one recorder per process, a tower layer for the gRPC server, and the
//! admin HTTP endpoint (`GET /metrics`) that refreshes a service's own gauges before rendering.
//!
//! Series every service has:
//! - `junheng_grpc_requests_total{service,method,code}` and
//!   `junheng_grpc_request_duration_seconds{service,method}` (histogram);
//! - `junheng_db_pool_connections{state="idle|busy"}` and `junheng_db_pool_max`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use tokio::net::TcpListener;

pub const REQUESTS: &str = "junheng_grpc_requests_total";
pub const DURATION: &str = "junheng_grpc_request_duration_seconds";

/// The process-wide recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(DURATION.into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Several servers in one test process share the first recorder.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The gRPC status code's name for a `grpc-status` header value.
fn code_name(code: &str) -> &'static str {
    match code {
        "0" => "OK",
        "1" => "Cancelled",
        "2" => "Unknown",
        "3" => "InvalidArgument",
        "4" => "DeadlineExceeded",
        "5" => "NotFound",
        "6" => "AlreadyExists",
        "7" => "PermissionDenied",
        "8" => "ResourceExhausted",
        "9" => "FailedPrecondition",
        "10" => "Aborted",
        "11" => "OutOfRange",
        "12" => "Unimplemented",
        "13" => "Internal",
        "14" => "Unavailable",
        "15" => "DataLoss",
        "16" => "Unauthenticated",
        _ => "Unknown",
    }
}

/// Counts and times every call the wrapped gRPC server answers.
///
/// The code comes from the response headers: tonic answers a refused call "trailers-only",
/// with `grpc-status` in the headers; an answered unary call has no status there and is `OK`
/// (a stream that fails after its first message is counted `OK`).
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        handle();
        GrpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (service, method) = split_path(req.uri().path());
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            let code = match &res {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map_or("OK", code_name),
                Err(_) => "Unavailable",
            };
            metrics::counter!(REQUESTS, "service" => service.clone(), "method" => method.clone(), "code" => code)
                .increment(1);
            metrics::histogram!(DURATION, "service" => service, "method" => method)
                .record(started.elapsed().as_secs_f64());
            res
        })
    }
}

/// `/junheng.v1.SeedService/Nominate` → (`junheng.v1.SeedService`, `Nominate`).
pub(crate) fn split_path(path: &str) -> (String, String) {
    let mut it = path.trim_start_matches('/').splitn(2, '/');
    let service = it.next().unwrap_or_default();
    let method = it.next().unwrap_or_default();
    (service.to_string(), method.to_string())
}

/// A gauge whose series are all refreshed at each scrape from a query: a label set that the
/// query no longer returns (a campaign with no more overdue obligations) drops to 0 instead of
/// keeping its last value.
pub struct GaugeFamily {
    name: &'static str,
    seen: std::sync::Mutex<std::collections::BTreeSet<Vec<(&'static str, String)>>>,
}

impl GaugeFamily {
    pub const fn new(name: &'static str) -> Self {
        GaugeFamily {
            name,
            seen: std::sync::Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    pub fn set_all(&self, rows: impl IntoIterator<Item = (Vec<(&'static str, String)>, f64)>) {
        let mut seen = self.seen.lock().expect("not poisoned");
        let mut now = std::collections::BTreeSet::new();
        for (labels, value) in rows {
            gauge(self.name, &labels).set(value);
            now.insert(labels);
        }
        for gone in seen.difference(&now) {
            gauge(self.name, gone).set(0.0);
        }
        seen.extend(now);
    }
}

fn gauge(name: &'static str, labels: &[(&'static str, String)]) -> metrics::Gauge {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect();
    metrics::gauge!(name, labels)
}

/// What a service does at each scrape before the text is rendered (refreshing gauges from its
/// tables). Errors are logged and the scrape still answers with what it has.
pub type Scrape = Arc<dyn Fn() -> BoxFuture<anyhow::Result<()>> + Send + Sync>;

/// Records the pool's use (a gauge per state).
pub fn record_pool(pool: &PgPool) {
    let size = pool.size() as f64;
    let idle = pool.num_idle() as f64;
    metrics::gauge!("junheng_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("junheng_db_pool_connections", "state" => "busy").set(size - idle);
    metrics::gauge!("junheng_db_pool_max").set(pool.options().get_max_connections() as f64);
}

/// Serves `GET /metrics` (Prometheus text) on `listener` until `shutdown` resolves. This is the
/// admin port: keep it off the public address.
pub async fn serve_admin(
    listener: TcpListener,
    scrape: Scrape,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    handle(); // the recorder exists before the first scrape records anything
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let scrape = scrape.clone();
            async move {
                if let Err(e) = scrape().await {
                    tracing::warn!(error = %e, "metrics scrape incomplete");
                }
                (
                    [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle().render(),
                )
            }
        }),
    );
    tracing::info!(addr = %listener.local_addr()?, "metrics on /metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_codes() {
        assert_eq!(
            split_path("/junheng.v1.SeedService/Nominate"),
            ("junheng.v1.SeedService".into(), "Nominate".into())
        );
        assert_eq!(code_name("9"), "FailedPrecondition");
        assert_eq!(code_name("0"), "OK");
        assert_eq!(code_name("x"), "Unknown");
    }
}

/// Reading `/metrics` back, for tests and checks: the text of one scrape, and one sample.
pub mod read {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// `GET /metrics` from `addr`; panics unless it answers 200 (test helper).
    pub async fn fetch(addr: std::net::SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .expect("the metrics port answers");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")
            .await
            .expect("request sent");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("response read");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        out
    }

    /// The sum of the samples of `name` whose labels include every pair of `labels` (0 when
    /// there is none).
    pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}
