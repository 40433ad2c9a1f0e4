use std::time::Duration;

use tracing::Instrument as _;

use crate::smtp::TransportCache;
use crate::{Endpoint, Error, Message, Outcome, chat, file, smtp};

/// Delivers messages. Create one per process and share it: it holds the pooled
/// HTTP client and the pooled SMTP connections.
pub struct Sender {
    http: reqwest::Client,
    smtp: TransportCache,
    timeout: Duration,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Per-request timeout (HTTP request, SMTP command) unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

    pub fn new() -> Result<Self, Error> {
        Self::with_timeout(Self::DEFAULT_TIMEOUT)
    }

    pub fn with_timeout(timeout: Duration) -> Result<Self, Error> {
        // reqwest is built with `rustls-no-provider` and panics without a provider;
        // an Err here only means another part of the process installed one first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Never follow redirects: the body may be signed for this URL, and a
            // redirect from a vendor endpoint is a configuration problem anyway.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("junheng-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Self {
            http,
            smtp: TransportCache::default(),
            timeout,
        })
    }

    /// Makes one delivery attempt of `msg` to `endpoint` and says what to do next.
    ///
    /// `now_unix_ms` is used for vendor signatures and to read HTTP-date
    /// `Retry-After` values; the library never reads the clock itself. A message that
    /// needed several parts is `Delivered` only if every part was accepted;
    /// otherwise retry the whole message (parts carry the same id, so receivers can
    /// de-duplicate).
    pub async fn send(&self, endpoint: &Endpoint, msg: &Message, now_unix_ms: i64) -> Outcome {
        // Debug: not formatted per message at a service's usual `info` level. The events
        // below carry the channel and the message id (which the scheduler makes its outbox
        // id) themselves, so a warning still says what it is about without the span.
        let span = tracing::debug_span!(
            "notify.send",
            notify.channel = endpoint.kind(),
            notify.message_id = %msg.id,
        );
        let channel = endpoint.kind();
        async {
            let outcome = match endpoint {
                Endpoint::Smtp(ep) => smtp::send(&self.smtp, self.timeout, ep, msg).await,
                Endpoint::File(ep) => file::write(ep, msg).await,
                _ => chat::send(&self.http, endpoint, msg, now_unix_ms).await,
            };
            match &outcome {
                // Debug too: a caller keeps its own record of each attempt.
                Outcome::Delivered { detail } => tracing::debug!(notify.detail = %detail, "delivered"),
                Outcome::Retry { after, reason } => {
                    tracing::warn!(notify.channel = channel, notify.message_id = %msg.id, notify.reason = %reason, notify.retry_after = ?after, "will retry")
                }
                Outcome::Permanent { reason } => {
                    tracing::warn!(notify.channel = channel, notify.message_id = %msg.id, notify.reason = %reason, "permanent failure")
                }
                Outcome::DisableEndpoint { reason } => {
                    tracing::error!(notify.channel = channel, notify.message_id = %msg.id, notify.reason = %reason, "endpoint must be fixed by an admin")
                }
            }
            outcome
        }
        .instrument(span)
        .await
    }
}
