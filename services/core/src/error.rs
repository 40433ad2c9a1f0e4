//! Why the rules refuse a command. The edge maps each variant to one gRPC status.

use chrono::{DateTime, Utc};

use crate::phase::{PhaseKind, PhaseStatus};
use crate::role::Role;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("{role} may not {action}")]
    Forbidden { action: &'static str, role: Role },
    #[error("phase {} ({}) is {} — {action} is only possible while it is open", phase.label(), phase.code(), status.code())]
    PhaseNotOpen {
        phase: PhaseKind,
        status: PhaseStatus,
        action: &'static str,
    },
    #[error("{what} of phase {} ({}) passed at {deadline_local} — {action} is refused; the office may extend it", phase.label(), phase.code())]
    DeadlinePassed {
        phase: PhaseKind,
        what: String,
        deadline: DateTime<Utc>,
        deadline_local: String,
        action: &'static str,
    },
    #[error("cannot {action}: the school is {} ({})", state_label, state)]
    IllegalTransition {
        action: &'static str,
        state: &'static str,
        state_label: &'static str,
    },
    #[error("{0}")]
    Precondition(String),
    #[error("invalid argument")]
    Invalid(Vec<(String, String)>),
}

impl RuleError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RuleError::Invalid(vec![(field.into(), reason.into())])
    }
}
