use std::time::Duration;

/// What one delivery attempt achieved, phrased as what the scheduler should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The vendor accepted every part of the message.
    Delivered { detail: String },
    /// A temporary failure. `after` is a lower bound the vendor asked for (Retry-After,
    /// a throttle window); `None` means "use your normal backoff".
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// This message can never be delivered as it is (bad payload, rejected content).
    Permanent { reason: String },
    /// The endpoint configuration is broken (robot removed, bad token, signature
    /// mismatch, SMTP auth failure): stop using it until an admin acts.
    DisableEndpoint { reason: String },
}

impl Outcome {
    pub(crate) fn retry(reason: impl Into<String>) -> Self {
        Outcome::Retry {
            after: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn retry_after(after: Duration, reason: impl Into<String>) -> Self {
        Outcome::Retry {
            after: Some(after),
            reason: reason.into(),
        }
    }

    pub(crate) fn permanent(reason: impl Into<String>) -> Self {
        Outcome::Permanent {
            reason: reason.into(),
        }
    }

    pub(crate) fn disable(reason: impl Into<String>) -> Self {
        Outcome::DisableEndpoint {
            reason: reason.into(),
        }
    }

    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. })
    }
}
