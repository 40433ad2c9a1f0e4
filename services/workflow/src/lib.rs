//! The junheng workflow service: owns every school's state in a campaign, enforces phase
//! windows and deadlines, refuses illegal moves, records the audit trail, and serves it all
//! over gRPC.
//!
//! Layers: `api` (the gRPC edge: parsing, proto mapping) → `app` (load facts, decide, persist;
//! read models) → `junheng_core` (rules, pure) and `junheng_store` (SQL). Only `api` and
//! `convert` name proto types.

pub mod api;
pub mod app;
pub mod bootstrap;
pub mod calendars;
pub mod convert;
pub mod error;
pub mod server;
pub mod state;
pub mod web;

pub use server::{
    Running, ServeOptions, serve, spawn, spawn_tls, spawn_tls_with_web, spawn_with,
    spawn_with_calendars, spawn_with_web, spawn_with_web_options, test_limits,
};
pub use state::ClockMode;
