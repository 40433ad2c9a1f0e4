//! Why the rules refuse a command. The edge maps each variant to one gRPC status.

use chrono::{DateTime, Utc};

use crate::phase_kind::{OpenItem, PhaseKind, PhaseStatus};
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
    #[error("phase {} ({}) cannot be completed yet: {}", phase.label(), phase.code(), crate::phase_kind::render(open))]
    ExitCriteria {
        phase: PhaseKind,
        open: Vec<OpenItem>,
    },
    /// Only members of the campaign's acceptance panel score.
    #[error("you are not on this campaign's acceptance panel")]
    NotOnPanel,
    /// Conflict of interest: a member from a mentor school never scores that mentor's group.
    #[error(
        "recused: {member} is affiliated with this school's mentor school and may not score it (conflict of interest)"
    )]
    Recused { member: String },
    /// Only appointed members of the phase-2 panel rate presentations.
    #[error(
        "you are not on this campaign's phase-2 panel; the office appoints its members (FormMentorPanel)"
    )]
    NotOnMentorPanel,
    /// Conflict of interest: a phase-2 panel member never rates the school they belong to.
    #[error(
        "recused: {member} is affiliated with this school and may not rate its presentation (conflict of interest)"
    )]
    RecusedFromPresentation { member: String },
    /// The phase-2 panel is fixed once a member has rated.
    #[error(
        "the phase-2 panel can no longer be re-formed: {ratings} rating sheet(s) are already recorded"
    )]
    MentorPanelFixed { ratings: u32 },
    #[error("only paired potential schools are scored; this school is {state}")]
    NotScorable { state: &'static str },
    #[error("the results notice is published; scores can change only after an upheld objection")]
    ScoresLocked,
    #[error("the results notice is already published")]
    ResultsNoticePublished,
    /// Names the schools still missing scores (none listed: no school is paired).
    #[error("scores are incomplete for: {}", if schools.is_empty() { "every school (none is paired)".to_string() } else { schools.join("、") })]
    ScoresIncomplete { schools: Vec<String> },
    #[error("awards are proposed on final results; complete the acceptance phase first")]
    ResultsNotFinal,
    #[error("the award list is already confirmed")]
    AwardsConfirmed,
    /// `notice.supplementary = false`: approved applicants join the list without a notice.
    #[error(
        "this campaign adds approved applicants to the list directly (notice.supplementary = false)"
    )]
    SupplementaryNoticeOff,
    #[error("the notice period ended at {ended}; late objections are not accepted")]
    LateObjection { ended: String },
    #[error("the school is no longer on the list (state {state})")]
    NoLongerListed { state: &'static str },
    #[error(
        "one objector may file at most {max} objections against a notice (notice.max_objections_per_objector)"
    )]
    TooManyObjections { max: u32 },
    #[error("the objection is already {status}")]
    ObjectionSettled { status: &'static str },
    #[error("the notice period runs until {until}")]
    NoticeRunning { until: String },
    #[error("the mentor list is already confirmed")]
    MentorsConfirmed,
    #[error("baselines are for potential schools; this school is {state}")]
    NotPotential { state: &'static str },
    #[error("the potential school is not in this mentor's 1+X group")]
    NotInGroup,
    #[error(
        "the seed list is final (phase seed_designation is completed); schools can no longer enrol in this campaign"
    )]
    EnrolmentClosed,
    #[error("no seed list notice has been published yet")]
    SeedNoticeNotPublished,
    #[error("the results notice has not been published yet")]
    ResultsNoticeNotPublished,
    #[error("the mentor list is not confirmed yet")]
    MentorsNotConfirmed,
    #[error("the award list is not confirmed yet")]
    AwardsNotConfirmed,
    /// `seed.require_department_opinion`: 督导室协同相关业务科室 — a department's opinion first.
    #[error(
        "no department opinion is recorded on this application yet; the campaign requires at least one before the office decides (seed.require_department_opinion)"
    )]
    DepartmentOpinionRequired,
    #[error("the application is already {status}; opinions are recorded before the decision")]
    ApplicationDecided { status: &'static str },
    #[error("{0}")]
    Precondition(String),
    #[error("invalid argument")]
    Invalid(Vec<(String, String)>),
}

impl RuleError {
    /// Whether the refusal is about who asks (PERMISSION_DENIED) rather than about the state of
    /// the campaign (FAILED_PRECONDITION) or the request (INVALID_ARGUMENT).
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            RuleError::Forbidden { .. }
                | RuleError::NotOnPanel
                | RuleError::Recused { .. }
                | RuleError::NotOnMentorPanel
                | RuleError::RecusedFromPresentation { .. }
        )
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RuleError::Invalid(vec![(field.into(), reason.into())])
    }
}
