//! What a decision asks the store to do, in the same transaction as the state change.

use crate::ids::SchoolId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::phase_kind::PhaseKind;
use crate::role::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationKind {
    CompletePhase,
    ReviewApplication,
    ResolveObjection,
    CloseNotice,
    SubmitPresentation,
    RatePresentation,
    ConfirmMentors,
    RecordBaseline,
    SubmitScores,
}

impl ObligationKind {
    pub const ALL: [ObligationKind; 9] = [
        ObligationKind::CompletePhase,
        ObligationKind::ReviewApplication,
        ObligationKind::ResolveObjection,
        ObligationKind::CloseNotice,
        ObligationKind::SubmitPresentation,
        ObligationKind::RatePresentation,
        ObligationKind::ConfirmMentors,
        ObligationKind::RecordBaseline,
        ObligationKind::SubmitScores,
    ];

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == s)
    }

    pub fn code(self) -> &'static str {
        match self {
            ObligationKind::CompletePhase => "complete_phase",
            ObligationKind::ReviewApplication => "review_application",
            ObligationKind::ResolveObjection => "resolve_objection",
            ObligationKind::CloseNotice => "close_notice",
            ObligationKind::SubmitPresentation => "submit_presentation",
            ObligationKind::RatePresentation => "rate_presentation",
            ObligationKind::ConfirmMentors => "confirm_mentors",
            ObligationKind::RecordBaseline => "record_baseline",
            ObligationKind::SubmitScores => "submit_scores",
        }
    }
}

/// Who owes an obligation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Owner {
    /// Everyone holding the role (e.g. the office).
    Role(Role),
    /// One school, acting for itself.
    School(SchoolId),
}

/// Which deadline an obligation's due time follows, so an extension can re-plan it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeadlineRef {
    Phase(PhaseKind),
    Milestone(PhaseKind, String),
    /// A notice's own end, which no extension moves.
    Fixed,
}

impl DeadlineRef {
    pub fn code(&self) -> String {
        match self {
            DeadlineRef::Phase(p) => format!("phase:{}", p.code()),
            DeadlineRef::Milestone(p, m) => format!("milestone:{}:{m}", p.code()),
            DeadlineRef::Fixed => "fixed".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// An audit event, also the campaign event stream.
    Event {
        action: &'static str,
        school: Option<SchoolId>,
        before: serde_json::Value,
        after: serde_json::Value,
        reason: Option<String>,
    },
    OpenObligation {
        kind: ObligationKind,
        school: Option<SchoolId>,
        /// Distinguishes several obligations of one kind for one school (e.g. a notice id).
        key: String,
        owner: Owner,
        deadline: DeadlineRef,
        due: DateTime<Utc>,
        subject: String,
    },
    CloseObligation {
        kind: ObligationKind,
        school: Option<SchoolId>,
        key: String,
    },
    ReplanObligations {
        deadline: DeadlineRef,
        due: DateTime<Utc>,
    },
}

impl Effect {
    pub fn event(
        action: &'static str,
        school: Option<SchoolId>,
        before: serde_json::Value,
        after: serde_json::Value,
        reason: Option<String>,
    ) -> Self {
        Effect::Event {
            action,
            school,
            before,
            after,
            reason,
        }
    }
}

/// The audit event of a token issued for a school of a campaign (tokens of the bureau's own
/// roles belong to no campaign and are not in its log).
pub fn token_issued(actor: &str, name: &str, role: Role, school: Option<SchoolId>) -> Effect {
    Effect::event(
        "token.issued",
        school,
        serde_json::Value::Null,
        serde_json::json!({ "actor": actor, "name": name, "role": role.code() }),
        None,
    )
}

/// Records what an overwrite replaced: sets `before` of the `action` events to `prior` when
/// there was a prior value. The deciders need no prior value to decide, so the caller that
/// loaded it fills it in; the audit then shows both sides of every overwrite.
pub fn set_before(effects: &mut [Effect], action: &str, prior: Option<serde_json::Value>) {
    let Some(prior) = prior else { return };
    for e in effects {
        if let Effect::Event {
            action: a, before, ..
        } = e
            && *a == action
        {
            *before = prior.clone();
        }
    }
}

/// The audit event of the simulated clock moving (the system chain: it belongs to no
/// campaign). `before` is `None` the first time the clock is set.
pub fn clock_advanced(before: Option<DateTime<Utc>>, after: DateTime<Utc>) -> Effect {
    Effect::event(
        "clock.advanced",
        None,
        serde_json::json!({ "now": before }),
        serde_json::json!({ "now": after }),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::ObligationKind;

    #[test]
    fn every_obligation_kind_round_trips() {
        for k in ObligationKind::ALL {
            assert_eq!(ObligationKind::from_code(k.code()), Some(k));
        }
        assert_eq!(ObligationKind::from_code("nope"), None);
    }
}
