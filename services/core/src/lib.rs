//! The campaign rules of junheng: phases and deadlines, working days, the school state machine,
//! notices, the mentor rule.
//!
//! Invariant: this crate does no I/O and never reads a clock. Every decision takes the current
//! instant, the campaign definition and the relevant state, and returns the new state plus the
//! effects (audit events, obligations) that the store persists in the same transaction.
//! It must not depend on tokio, sqlx, tonic, lettre or any proto type.

pub mod acceptance;
mod award_class;
pub mod awards;
pub mod calendar;
pub mod definition;
pub mod effects;
pub mod error;
mod exit_criteria;
pub mod ids;
pub mod mentor;
pub mod mentor_panel;
pub mod notice;
mod notice_kind;
pub mod pairing;
pub mod phase;
mod phase_kind;
pub mod role;
pub mod school;
pub mod scoring;
pub mod seed;
pub mod text;
pub mod time;
pub mod values;

#[cfg(test)]
pub(crate) mod testing;

pub use definition::CampaignDefinition;
pub use effects::Effect;
pub use error::RuleError;
pub use ids::{ApplicationId, CampaignId, NoticeId, ObjectionId, SchoolId, TokenId};
pub use phase::{PhaseBoard, PhaseKind, PhaseStatus};
pub use role::{Actor, Role, Scope};
pub use school::{CaseState, Ctx, SchoolCase, SchoolCommand};
