//! Phase 1, seed designation: self-applications and their review. Nominations are plain school
//! commands (`school::decide`); the notices and objections are in `notice`.

use crate::ids::{ApplicationId, SchoolId};
use chrono::{DateTime, Utc};

use crate::definition::CampaignDefinition;
use crate::effects::Effect;
use crate::error::RuleError;
use crate::phase::PhaseKind;
use crate::role::{Actor, Role};
use crate::school::{Ctx, SchoolCommand};
use crate::scoring;

/// One indicator of a self-assessment.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfScore {
    pub indicator: String,
    pub score: f64,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubmitApplication {
    /// The new application's id, chosen by the caller.
    pub application: ApplicationId,
    pub school: SchoolId,
    pub statement: String,
    pub self_assessment: Vec<SelfScore>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationStatus {
    Pending,
    Approved,
    Rejected,
}

impl ApplicationStatus {
    pub fn code(self) -> &'static str {
        match self {
            ApplicationStatus::Pending => "pending",
            ApplicationStatus::Approved => "approved",
            ApplicationStatus::Rejected => "rejected",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        [
            ApplicationStatus::Pending,
            ApplicationStatus::Approved,
            ApplicationStatus::Rejected,
        ]
        .into_iter()
        .find(|a| a.code() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub id: ApplicationId,
    pub school: SchoolId,
    pub statement: String,
    pub self_assessment: Vec<SelfScore>,
    pub status: ApplicationStatus,
    pub reason: String,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationSubmitted {
    pub application: Application,
    /// The school's own move (deadline, role and state are checked there).
    pub command: SchoolCommand,
}

/// A self-application scores every indicator of the definition exactly once, and nothing else.
pub fn submit_application(
    cmd: SubmitApplication,
    def: &CampaignDefinition,
    now: DateTime<Utc>,
) -> Result<ApplicationSubmitted, RuleError> {
    let pairs: Vec<(String, f64)> = cmd
        .self_assessment
        .iter()
        .map(|s| (s.indicator.clone(), s.score))
        .collect();
    let (_, problems) = scoring::indicator_scores(def, "self_assessment", &pairs);
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    let self_assessment = cmd
        .self_assessment
        .into_iter()
        .map(|s| SelfScore {
            note: s.note.trim().to_string(),
            ..s
        })
        .collect();
    Ok(ApplicationSubmitted {
        application: Application {
            id: cmd.application,
            school: cmd.school,
            statement: cmd.statement,
            self_assessment,
            status: ApplicationStatus::Pending,
            reason: String::new(),
            submitted_at: now,
        },
        command: SchoolCommand::SubmitApplication,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationReviewed {
    pub status: ApplicationStatus,
    pub reason: String,
    /// The school's own move, which refuses a review out of turn.
    pub command: SchoolCommand,
}

/// The office approves or rejects an application, with its reason.
pub fn review_application(approve: bool, reason: String) -> ApplicationReviewed {
    ApplicationReviewed {
        status: if approve {
            ApplicationStatus::Approved
        } else {
            ApplicationStatus::Rejected
        },
        command: SchoolCommand::ReviewApplication {
            approve,
            reason: reason.clone(),
        },
        reason,
    }
}

/// The decision with the departments' opinions: with `seed.require_department_opinion` the
/// office decides only after at least one opinion (督导室协同相关业务科室).
pub fn review_with_opinions(
    approve: bool,
    reason: String,
    opinions: usize,
    def: &CampaignDefinition,
) -> Result<ApplicationReviewed, RuleError> {
    if def.seed.require_department_opinion && opinions == 0 {
        return Err(RuleError::DepartmentOpinionRequired);
    }
    Ok(review_application(approve, reason))
}

/// A department's opinion on a self-application.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordOpinion {
    pub department: String,
    pub agree: bool,
    pub reason: String,
}

/// A department (or the office recording it) gives its opinion on a pending application while
/// phase 1 is open; the effect is its audit event (before: the opinion it replaces).
pub fn record_opinion(
    cmd: &RecordOpinion,
    status: ApplicationStatus,
    school: SchoolId,
    actor: &Actor,
    ctx: &Ctx<'_>,
) -> Result<Effect, RuleError> {
    if !matches!(actor.role, Role::Department | Role::Office) {
        return Err(RuleError::Forbidden {
            action: "record a department opinion",
            role: actor.role,
        });
    }
    let mut problems = Vec::new();
    if cmd.department.trim().is_empty() {
        problems.push(("department".to_string(), "required".to_string()));
    }
    if cmd.reason.trim().is_empty() {
        problems.push((
            "reason".to_string(),
            "an opinion gives its reason".to_string(),
        ));
    }
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    ctx.phases.require_active(
        PhaseKind::SeedDesignation,
        None,
        "record a department opinion",
        ctx.now,
        ctx.def,
    )?;
    if status != ApplicationStatus::Pending {
        return Err(RuleError::ApplicationDecided {
            status: status.code(),
        });
    }
    Ok(Effect::event(
        "application.opinion_recorded",
        Some(school),
        serde_json::Value::Null,
        serde_json::json!({
            "department": cmd.department.trim(),
            "agree": cmd.agree,
            "reason": cmd.reason.trim(),
        }),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use proptest::prelude::*;

    proptest! {
        /// An application is accepted exactly when it scores every indicator once and nothing
        /// else; it is then pending, stamped now, with its notes trimmed.
        #[test]
        fn an_application_scores_every_indicator_once(
            drop in proptest::option::of(0usize..8),
            twice in proptest::option::of(0usize..8),
            unknown in any::<bool>(),
            score in 0.0f64..=100.0,
        ) {
            let def = changle();
            let n = def.indicators.len();
            let mut scores: Vec<SelfScore> = def.indicators.iter().map(|i| SelfScore {
                indicator: i.code.clone(), score, note: "  说明 ".into(),
            }).collect();
            if let Some(d) = drop { scores.remove(d % n); }
            if let Some(t) = twice { let s = scores[t % scores.len()].clone(); scores.push(s); }
            if unknown { scores.push(SelfScore { indicator: "nope".into(), score, note: String::new() }); }
            let complete = drop.is_none() && twice.is_none() && !unknown;
            let now = at("2020-03-03T01:00:00Z");
            let cmd = SubmitApplication { application: ApplicationId::from_u128(1), school: SchoolId::from_u128(2),
                statement: "申报".into(), self_assessment: scores };
            match submit_application(cmd, &def, now) {
                Ok(d) => {
                    prop_assert!(complete);
                    prop_assert_eq!(d.application.status, ApplicationStatus::Pending);
                    prop_assert_eq!(d.application.submitted_at, now);
                    prop_assert_eq!(d.application.self_assessment.len(), n);
                    prop_assert!(d.application.self_assessment.iter().all(|s| s.note == "说明"));
                    prop_assert_eq!(d.command, SchoolCommand::SubmitApplication);
                }
                Err(RuleError::Invalid(problems)) => {
                    prop_assert!(!complete);
                    prop_assert!(problems.iter().all(|(f, _)| f.starts_with("self_assessment")));
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        /// With `require_department_opinion` a decision without an opinion is refused, with one
        /// (or without the requirement) it is the plain review.
        #[test]
        fn a_decision_waits_for_a_department_opinion_when_required(
            required in any::<bool>(), opinions in 0usize..3, approve in any::<bool>(),
        ) {
            let mut def = changle();
            def.seed.require_department_opinion = required;
            match review_with_opinions(approve, "理由".into(), opinions, &def) {
                Ok(d) => {
                    prop_assert!(!required || opinions > 0);
                    prop_assert_eq!(d, review_application(approve, "理由".into()));
                }
                Err(e) => {
                    prop_assert!(required && opinions == 0);
                    prop_assert_eq!(e, RuleError::DepartmentOpinionRequired);
                }
            }
        }

        /// An opinion is recorded exactly by a department or the office, with a department and
        /// a reason, on a pending application while phase 1 is open.
        #[test]
        fn an_opinion_needs_its_role_reason_phase_and_a_pending_application(
            role in 0usize..6, dept in "[a-z ]{0,3}", reason in "[a-z ]{0,3}",
            status in 0usize..3, day in 0i64..80,
        ) {
            let def = changle();
            let mut phases = crate::phase::PhaseBoard::new(&def);
            phases.open(PhaseKind::SeedDesignation, &office(), at("2020-03-01T01:00:00Z"), &def).unwrap();
            let now = at("2020-03-01T02:00:00Z") + chrono::Duration::days(day);
            let ctx = Ctx { now, def: &def, phases: &phases };
            let actor = Actor { id: "a".into(), role: Role::ALL[role], school: None };
            let status = [ApplicationStatus::Pending, ApplicationStatus::Approved, ApplicationStatus::Rejected][status];
            let cmd = RecordOpinion { department: dept.clone(), agree: true, reason: reason.clone() };
            let role_ok = matches!(actor.role, Role::Department | Role::Office);
            let text_ok = !dept.trim().is_empty() && !reason.trim().is_empty();
            let open = now < phases.deadline(PhaseKind::SeedDesignation, &def);
            let r = record_opinion(&cmd, status, SchoolId::from_u128(1), &actor, &ctx);
            prop_assert_eq!(r.is_ok(), role_ok && text_ok && open && status == ApplicationStatus::Pending);
            let forbidden = matches!(r, Err(RuleError::Forbidden { .. }));
            let invalid = matches!(r, Err(RuleError::Invalid(_)));
            if !role_ok {
                prop_assert!(forbidden);
            } else if !text_ok {
                prop_assert!(invalid);
            }
        }

        /// A review's status follows the decision, and the school's move carries the reason.
        #[test]
        fn a_review_follows_the_decision(approve in any::<bool>(), reason in "[a-z]{0,8}") {
            let d = review_application(approve, reason.clone());
            prop_assert_eq!(d.status == ApplicationStatus::Approved, approve);
            prop_assert_eq!(d.command, SchoolCommand::ReviewApplication { approve, reason });
        }
    }
}
