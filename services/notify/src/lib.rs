//! Outbound notification channels for junheng.
//!
//! This crate owns the last hop of a notification: it turns an already rendered
//! [`Message`] into one delivery attempt on one [`Endpoint`] (SMTP, WeCom, DingTalk,
//! Feishu, Slack, a Standard-Webhooks receiver or a local file) and classifies what
//! happened as an [`Outcome`] the scheduler can act on (done, retry later, give up,
//! or disable the endpoint until an admin fixes it). It also renders the Chinese
//! message [`templates`].
//!
//! Invariants:
//! - It never touches the database: queueing, attempt counting and backoff policy
//!   belong to the scheduler.
//! - It never reads the clock: the caller passes `now_unix_ms` to [`Sender::send`], so
//!   vendor signatures are reproducible in tests.
//! - Secrets (keys, tokens, signing secrets, passwords) live in
//!   [`secrecy::SecretString`] and never appear in `Debug` output or logs.
//!
//! Vendor facts (payload shapes, signing, limits, error codes) follow
//! `shared/CHANNELS.md`.

mod chat;
mod endpoint;
mod error;
mod file;
mod message;
mod outcome;
mod sender;
pub mod sign;
mod smtp;
mod split;
pub mod templates;

pub use endpoint::{
    DingTalkEndpoint, Endpoint, FeishuEndpoint, FileEndpoint, SlackEndpoint, SmtpEndpoint, SmtpTls,
    WeComEndpoint, WebhookEndpoint,
};
pub use error::Error;
pub use message::{Attachment, Message};
pub use outcome::Outcome;
pub use sender::Sender;
pub use smtp::check_mailbox;
pub use split::split_utf8;
