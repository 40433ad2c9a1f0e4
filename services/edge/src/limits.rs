//! Per-caller limits at the edge: a tower layer in front of every gRPC service that bounds how
//! many calls one caller has in progress and how fast it may call (a token bucket), and a
//! counter of long-lived streams per caller. A caller is the SHA-256 of its bearer token, or
//! its peer IP address when it sends none. Health checks (`grpc.health.v1.Health`) are never
//! limited, so probes keep answering while a caller is refused.
//!
//! Refusals are `RESOURCE_EXHAUSTED` with a `RetryInfo` detail and the wait in the message,
//! built by [`crate::status::ApiError::into_status`] like every other status.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::status::ApiError;

/// The defaults, documented in the README ("Limits").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallerLimits {
    /// Calls one caller may have in progress at once (a stream counts until its first reply).
    pub concurrent: usize,
    /// Calls per second one caller may make on average.
    pub rate_per_sec: f64,
    /// Calls one caller may make at once above the average.
    pub burst: f64,
    /// Long-lived streams (FollowEvents) one caller may hold open at once.
    pub streams: usize,
}

impl Default for CallerLimits {
    fn default() -> Self {
        CallerLimits {
            concurrent: 64,
            rate_per_sec: 200.0,
            burst: 400.0,
            streams: 8,
        }
    }
}

impl CallerLimits {
    /// No per-caller limits at all (benchmarks that measure the ceiling).
    pub fn unlimited() -> Self {
        CallerLimits {
            concurrent: usize::MAX,
            rate_per_sec: f64::INFINITY,
            burst: f64::INFINITY,
            streams: usize::MAX,
        }
    }
}

/// The per-caller limit flags both services share.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Calls one caller (token, or address without one) may have in progress at once.
    #[arg(long, env = "JUNHENG_MAX_CALLS_IN_FLIGHT", default_value_t = 64)]
    pub max_calls_in_flight: usize,
    /// Calls per second one caller may make on average (bursts of twice as many); 0: no
    /// rate limit.
    #[arg(long, env = "JUNHENG_MAX_CALLS_PER_SEC", default_value_t = 200)]
    pub max_calls_per_sec: u32,
    /// Event streams (FollowEvents) one caller may hold open at once.
    #[arg(long, env = "JUNHENG_MAX_STREAMS", default_value_t = 8)]
    pub max_streams: usize,
}

impl LimitArgs {
    pub fn limits(&self) -> CallerLimits {
        let rate = match self.max_calls_per_sec {
            0 => f64::INFINITY,
            n => f64::from(n),
        };
        CallerLimits {
            concurrent: self.max_calls_in_flight.max(1),
            rate_per_sec: rate,
            burst: rate * 2.0,
            streams: self.max_streams.max(1),
        }
    }
}

/// Who a caller is: a digest of its token, or its address.
pub type CallerKey = [u8; 32];

/// The caller of a request with these headers from `peer`.
pub fn caller_key(headers: &http::HeaderMap, peer: Option<std::net::IpAddr>) -> CallerKey {
    let mut h = Sha256::new();
    match headers.get(http::header::AUTHORIZATION) {
        Some(v) => {
            h.update(b"token:");
            h.update(v.as_bytes());
        }
        None => {
            h.update(b"peer:");
            h.update(peer.map(|p| p.to_string()).unwrap_or_default().as_bytes());
        }
    }
    h.finalize().into()
}

struct Bucket {
    in_flight: usize,
    streams: usize,
    tokens: f64,
    last: Instant,
}

/// The shared state of the layer: one bucket per caller seen recently.
pub struct Limiter {
    limits: CallerLimits,
    callers: Mutex<HashMap<CallerKey, Bucket>>,
}

/// A call admitted by [`Limiter::admit`]: releases its concurrency slot on drop.
pub struct Admitted {
    limiter: Arc<Limiter>,
    key: CallerKey,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut callers = self.limiter.callers.lock().expect("not poisoned");
        if let Some(b) = callers.get_mut(&self.key) {
            b.in_flight = b.in_flight.saturating_sub(1);
        }
    }
}

/// A stream held open by [`Limiter::open_stream`]: releases its slot on drop.
pub struct StreamSlot {
    limiter: Arc<Limiter>,
    key: CallerKey,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut callers = self.limiter.callers.lock().expect("not poisoned");
        if let Some(b) = callers.get_mut(&self.key) {
            b.streams = b.streams.saturating_sub(1);
        }
    }
}

impl Limiter {
    pub fn new(limits: CallerLimits) -> Arc<Limiter> {
        Arc::new(Limiter {
            limits,
            callers: Mutex::new(HashMap::new()),
        })
    }

    pub fn limits(&self) -> CallerLimits {
        self.limits
    }

    fn bucket<'a>(
        &self,
        callers: &'a mut HashMap<CallerKey, Bucket>,
        key: CallerKey,
        now: Instant,
    ) -> &'a mut Bucket {
        // Forget idle callers now and then, so a burst of distinct tokens cannot grow the map
        // without bound.
        if callers.len() > 10_000 {
            callers.retain(|_, b| {
                b.in_flight > 0
                    || b.streams > 0
                    || now.duration_since(b.last) < Duration::from_secs(60)
            });
        }
        let burst = self.limits.burst;
        callers.entry(key).or_insert(Bucket {
            in_flight: 0,
            streams: 0,
            tokens: burst,
            last: now,
        })
    }

    /// Admits one call of `key`, or says how long to wait.
    pub fn admit(self: &Arc<Self>, key: CallerKey) -> Result<Admitted, ApiError> {
        let now = Instant::now();
        let mut callers = self.callers.lock().expect("not poisoned");
        let limits = self.limits;
        let b = self.bucket(&mut callers, key, now);
        if limits.rate_per_sec.is_finite() {
            let elapsed = now.duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + elapsed * limits.rate_per_sec).min(limits.burst);
        }
        b.last = now;
        if b.in_flight >= limits.concurrent {
            return Err(ApiError::ResourceExhausted {
                message: format!(
                    "too many calls in progress: at most {} at once per caller",
                    limits.concurrent
                ),
                retry_after: Duration::from_millis(100),
            });
        }
        if limits.rate_per_sec.is_finite() {
            if b.tokens < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - b.tokens) / limits.rate_per_sec);
                return Err(ApiError::ResourceExhausted {
                    message: format!(
                        "rate limit: at most {} calls per second per caller (bursts of {})",
                        limits.rate_per_sec, limits.burst
                    ),
                    retry_after: wait.max(Duration::from_millis(1)),
                });
            }
            b.tokens -= 1.0;
        }
        b.in_flight += 1;
        Ok(Admitted {
            limiter: self.clone(),
            key,
        })
    }

    /// Opens one long-lived stream of `key`, or refuses it past [`CallerLimits::streams`].
    pub fn open_stream(self: &Arc<Self>, key: CallerKey) -> Result<StreamSlot, ApiError> {
        let now = Instant::now();
        let mut callers = self.callers.lock().expect("not poisoned");
        let limits = self.limits;
        let b = self.bucket(&mut callers, key, now);
        if b.streams >= limits.streams {
            return Err(ApiError::ResourceExhausted {
                message: format!(
                    "too many open event streams: at most {} per caller; close one first",
                    limits.streams
                ),
                retry_after: Duration::from_secs(1),
            });
        }
        b.streams += 1;
        Ok(StreamSlot {
            limiter: self.clone(),
            key,
        })
    }
}

/// The peer address tonic records on each request (plaintext or TLS).
pub fn peer_ip<B>(req: &http::Request<B>) -> Option<std::net::IpAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let ext = req.extensions();
    ext.get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
        .map(|a| a.ip())
}

/// The tower layer: per-caller concurrency and rate limits on every call but health checks.
#[derive(Clone)]
pub struct CallerLimitLayer {
    limiter: Arc<Limiter>,
}

impl CallerLimitLayer {
    pub fn new(limiter: Arc<Limiter>) -> Self {
        CallerLimitLayer { limiter }
    }
}

impl<S> tower::Layer<S> for CallerLimitLayer {
    type Service = CallerLimit<S>;
    fn layer(&self, inner: S) -> CallerLimit<S> {
        CallerLimit {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

#[derive(Clone)]
pub struct CallerLimit<S> {
    inner: S,
    limiter: Arc<Limiter>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for CallerLimit<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path().starts_with("/grpc.health.v1.Health/") {
            return Box::pin(self.inner.call(req));
        }
        let key = caller_key(req.headers(), peer_ip(&req));
        match self.limiter.admit(key) {
            Ok(admitted) => {
                let fut = self.inner.call(req);
                Box::pin(async move {
                    let res = fut.await;
                    drop(admitted);
                    res
                })
            }
            Err(e) => {
                let id = crate::request::header_request_id(req.headers());
                let status = e.into_status(&id);
                let mut resp = status.into_http::<RB>();
                if let Ok(v) = id.parse() {
                    resp.headers_mut().insert("x-request-id", v);
                }
                Box::pin(async move { Ok(resp) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_rate_and_streams_are_per_caller() {
        let l = Limiter::new(CallerLimits {
            concurrent: 2,
            rate_per_sec: 1.0,
            burst: 3.0,
            streams: 1,
        });
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let one = l.admit(a).unwrap();
        let _two = l.admit(a).unwrap();
        assert!(matches!(
            l.admit(a),
            Err(ApiError::ResourceExhausted { .. })
        ));
        assert!(l.admit(b).is_ok(), "another caller is not affected");
        drop(one);
        // The slot is back, but the bucket (3) is empty now.
        let third = l.admit(a).unwrap();
        drop(third);
        match l.admit(a) {
            Err(ApiError::ResourceExhausted {
                message,
                retry_after,
            }) => {
                assert!(message.contains("calls per second"), "{message}");
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
            }
            other => panic!("expected the rate limit, got {:?}", other.err()),
        }
        let s = l.open_stream(a).unwrap();
        assert!(l.open_stream(a).is_err());
        drop(s);
        assert!(l.open_stream(a).is_ok());
    }

    #[test]
    fn callers_are_told_apart_by_token_then_address() {
        let mut h = http::HeaderMap::new();
        let ip = Some("10.0.0.1".parse().unwrap());
        let by_ip = caller_key(&h, ip);
        assert_ne!(by_ip, caller_key(&h, Some("10.0.0.2".parse().unwrap())));
        h.insert("authorization", "Bearer a".parse().unwrap());
        let by_token = caller_key(&h, ip);
        assert_eq!(by_token, caller_key(&h, Some("10.0.0.2".parse().unwrap())));
        assert_ne!(by_token, by_ip);
    }
}
