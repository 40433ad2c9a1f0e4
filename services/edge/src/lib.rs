//! junheng-edge: what both services need where they meet the operator's world.
//!
//! - [`health`]: `junheng.live` (the process runs) and `junheng.ready` (the database answers),
//!   for Kubernetes' native gRPC probes and load balancers;
//! - [`systemd`]: `READY=1` once serving and `WATCHDOG=1` while the database answers, for
//!   `Type=notify` units with `WatchdogSec=`;
//! - [`metrics`]: Prometheus text on an admin port: a tower layer counting every gRPC call by
//!   service, method and code with a latency histogram, and gauges a service fills at scrape
//!   time from its own tables.
//!
//! It knows nothing of campaigns; the services pass it their pool and their scrape function.

pub mod health;
pub mod metrics;
pub mod systemd;
