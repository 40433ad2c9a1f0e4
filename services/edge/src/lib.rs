//! junheng-edge: what both services need where they meet the operator's world.
//!
//! - [`auth`]: `authorization: Bearer …` → a `junheng_core::Actor`, cached or not;
//! - [`request`]: the request id (`x-request-id`) and the reply that echoes it;
//! - [`violations`]: every bad field of a request at once;
//! - [`status`]: [`status::ApiError`] and the one map to a gRPC `Status` (codes, messages,
//!   `BadRequest` details, internal errors logged once);
//! - [`calendars`]: the working-day calendar years, shipped and from the calendars directory;
//! - [`clock`]: the clock mode and "now";
//! - [`running`]: a server running in-process for tests and benchmarks;
//! - [`health`]: `junheng.live` (the process runs) and `junheng.ready` (the database answers),
//!   for Kubernetes' native gRPC probes and load balancers;
//! - [`systemd`]: `READY=1` once serving and `WATCHDOG=1` while the database answers, for
//!   `Type=notify` units with `WatchdogSec=`;
//! - [`metrics`]: Prometheus text on an admin port: a tower layer counting every gRPC call by
//!   service, method and code with a latency histogram, and gauges a service fills at scrape
//!   time from its own tables;
//! - [`telemetry`]: logs (text or JSON) and OpenTelemetry traces over OTLP when configured,
//!   with one trace from a gRPC call to the deliveries it caused.
//! - [`limits`]: per-caller concurrency, rate and stream limits (a tower layer);
//! - [`tls`]: TLS files → server and client configurations, and the rule that a plaintext
//!   listener stays on loopback unless the operator says otherwise.
//!
//! It knows nothing of campaigns; the services pass it their pool and their scrape function,
//! and map their own errors (rule refusals, outbox errors) to an [`status::ApiError`].

pub mod auth;
pub mod calendars;
pub mod clock;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod request;
pub mod running;
pub mod status;
pub mod systemd;
pub mod telemetry;
pub mod tls;
pub mod values;
pub mod violations;
