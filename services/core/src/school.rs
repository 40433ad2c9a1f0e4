//! Each school's case as a state machine.
//!
//! `target` is the whole transition table: a command either names the next state or is
//! illegal in the current one. `decide` adds who may act, in which phase and by which
//! deadline, and the effects (audit event, obligations) the store must persist with it.

use crate::ids::{NoticeId, ObjectionId, SchoolId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::award_class::AwardClass;
use crate::definition::CampaignDefinition;
use crate::effects::{DeadlineRef, Effect, ObligationKind, Owner};
use crate::error::RuleError;
use crate::notice_kind::NoticeKind;
use crate::phase::{PhaseBoard, PhaseKind};
use crate::role::{Actor, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Registered for the campaign; no role yet.
    Enrolled,
    /// Nominated by a department as a seed candidate.
    Nominated,
    /// Self-applied; awaiting the office's review.
    Applied,
    /// Application approved; awaiting the supplementary notice.
    Approved,
    /// Application rejected.
    Rejected,
    /// On a published seed list notice.
    Listed,
    /// Removed from the list by an upheld objection.
    Removed,
    /// Seed school (list final).
    Seed,
    /// Potential school (every enrolled school that is not a seed school).
    Potential,
    /// Seed school that has submitted its presentation.
    Presented,
    /// Confirmed mentor school.
    Mentor,
    /// Seed school not selected as mentor.
    SeedNonMentor,
    /// Potential school in a 1+X group.
    Paired,
    ContributionAward,
    ModelAward,
    ProgressAward,
    ComplianceAward,
    Vetoed,
    /// The office withheld any award (no class; e.g. a seed school that never presented).
    AwardWithheld,
}

impl CaseState {
    pub const ALL: [CaseState; 19] = [
        CaseState::Enrolled,
        CaseState::Nominated,
        CaseState::Applied,
        CaseState::Approved,
        CaseState::Rejected,
        CaseState::Listed,
        CaseState::Removed,
        CaseState::Seed,
        CaseState::Potential,
        CaseState::Presented,
        CaseState::Mentor,
        CaseState::SeedNonMentor,
        CaseState::Paired,
        CaseState::ContributionAward,
        CaseState::ModelAward,
        CaseState::ProgressAward,
        CaseState::ComplianceAward,
        CaseState::Vetoed,
        CaseState::AwardWithheld,
    ];

    pub fn code(self) -> &'static str {
        match self {
            CaseState::Enrolled => "enrolled",
            CaseState::Nominated => "nominated",
            CaseState::Applied => "applied",
            CaseState::Approved => "approved",
            CaseState::Rejected => "rejected",
            CaseState::Listed => "listed",
            CaseState::Removed => "removed",
            CaseState::Seed => "seed",
            CaseState::Potential => "potential",
            CaseState::Presented => "presented",
            CaseState::Mentor => "mentor",
            CaseState::SeedNonMentor => "seed_non_mentor",
            CaseState::Paired => "paired",
            CaseState::ContributionAward => "contribution_award",
            CaseState::ModelAward => "model_award",
            CaseState::ProgressAward => "progress_award",
            CaseState::ComplianceAward => "compliance_award",
            CaseState::Vetoed => "vetoed",
            CaseState::AwardWithheld => "award_withheld",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CaseState::Enrolled => "已登记",
            CaseState::Nominated => "已推荐",
            CaseState::Applied => "自主申报待复核",
            CaseState::Approved => "申报已通过待补充公示",
            CaseState::Rejected => "申报未通过",
            CaseState::Listed => "已列入种子校公示名单",
            CaseState::Removed => "因异议成立移出名单",
            CaseState::Seed => "标杆种子校",
            CaseState::Potential => "潜力校",
            CaseState::Presented => "已提交展示材料",
            CaseState::Mentor => "导师型学校",
            CaseState::SeedNonMentor => "种子校（非导师型）",
            CaseState::Paired => "潜力校（已结对）",
            CaseState::ContributionAward => "贡献校",
            CaseState::ModelAward => "标兵校",
            CaseState::ProgressAward => "进步校",
            CaseState::ComplianceAward => "达标校",
            CaseState::Vetoed => "一票否决",
            CaseState::AwardWithheld => "不予评定",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == s)
    }

    /// Is this a seed school (or became one)?
    pub fn is_seed(self) -> bool {
        matches!(
            self,
            CaseState::Seed | CaseState::Presented | CaseState::Mentor | CaseState::SeedNonMentor
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolCase {
    pub id: SchoolId,
    pub name: String,
    pub state: CaseState,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchoolCommand {
    Nominate {
        basis: String,
    },
    WithdrawNomination {
        reason: String,
    },
    SubmitApplication,
    ReviewApplication {
        approve: bool,
        reason: String,
    },
    PutOnNotice {
        notice: NoticeId,
        kind: NoticeKind,
    },
    UpholdObjection {
        objection: ObjectionId,
        reason: String,
    },
    /// Part of completing phase 1: listed schools become seed schools, the rest potential.
    FinaliseSeedList,
    SubmitPresentation,
    ConfirmMentor {
        mentor: bool,
        reason: Option<String>,
    },
    /// Put a potential school into a mentor's 1+X group (again, when the office edits groups).
    Pair {
        mentor: SchoolId,
    },
    ConfirmAward {
        class: AwardClass,
        reason: String,
    },
}

impl SchoolCommand {
    pub fn action(&self) -> &'static str {
        match self {
            SchoolCommand::Nominate { .. } => "nominate",
            SchoolCommand::WithdrawNomination { .. } => "withdraw a nomination",
            SchoolCommand::SubmitApplication => "submit an application",
            SchoolCommand::ReviewApplication { .. } => "review an application",
            SchoolCommand::PutOnNotice { .. } => "put a school on a notice",
            SchoolCommand::UpholdObjection { .. } => "uphold an objection",
            SchoolCommand::FinaliseSeedList => "finalise the seed list",
            SchoolCommand::SubmitPresentation => "submit a presentation",
            SchoolCommand::ConfirmMentor { .. } => "confirm the mentor list",
            SchoolCommand::Pair { .. } => "form 1+X groups",
            SchoolCommand::ConfirmAward { .. } => "confirm the award list",
        }
    }

    fn event_name(&self) -> &'static str {
        match self {
            SchoolCommand::Nominate { .. } => "school.nominated",
            SchoolCommand::WithdrawNomination { .. } => "school.nomination_withdrawn",
            SchoolCommand::SubmitApplication => "school.applied",
            SchoolCommand::ReviewApplication { approve: true, .. } => "application.approved",
            SchoolCommand::ReviewApplication { approve: false, .. } => "application.rejected",
            SchoolCommand::PutOnNotice { .. } => "school.listed",
            SchoolCommand::UpholdObjection { .. } => "school.removed",
            SchoolCommand::FinaliseSeedList => "school.role_assigned",
            SchoolCommand::SubmitPresentation => "presentation.submitted",
            SchoolCommand::ConfirmMentor { .. } => "mentor.confirmed",
            SchoolCommand::Pair { .. } => "school.paired",
            SchoolCommand::ConfirmAward { .. } => "award.confirmed",
        }
    }

    fn phase(&self) -> PhaseKind {
        match self {
            SchoolCommand::SubmitPresentation | SchoolCommand::ConfirmMentor { .. } => {
                PhaseKind::MentorSelection
            }
            SchoolCommand::Pair { .. } => PhaseKind::Pairing,
            SchoolCommand::ConfirmAward { .. } => PhaseKind::Awards,
            _ => PhaseKind::SeedDesignation,
        }
    }

    fn allowed(&self, actor: &Actor, school: SchoolId) -> bool {
        match self {
            SchoolCommand::Nominate { .. } => actor.role == Role::Department,
            SchoolCommand::WithdrawNomination { .. } => {
                matches!(actor.role, Role::Department | Role::Office)
            }
            SchoolCommand::SubmitApplication | SchoolCommand::SubmitPresentation => {
                actor.acts_for(school)
            }
            SchoolCommand::ReviewApplication { .. }
            | SchoolCommand::PutOnNotice { .. }
            | SchoolCommand::UpholdObjection { .. }
            | SchoolCommand::FinaliseSeedList
            | SchoolCommand::ConfirmMentor { .. }
            | SchoolCommand::Pair { .. }
            | SchoolCommand::ConfirmAward { .. } => actor.role == Role::Office,
        }
    }
}

/// The transition table. `None` means the command is illegal in `state`.
pub fn target(
    state: CaseState,
    cmd: &SchoolCommand,
    supplementary_notice: bool,
) -> Option<CaseState> {
    use CaseState as S;
    use SchoolCommand as C;
    Some(match (state, cmd) {
        (S::Enrolled, C::Nominate { .. }) => S::Nominated,
        (S::Nominated, C::WithdrawNomination { .. }) => S::Enrolled,
        (S::Enrolled, C::SubmitApplication) => S::Applied,
        (S::Applied, C::ReviewApplication { approve: true, .. }) if supplementary_notice => {
            S::Approved
        }
        (S::Applied, C::ReviewApplication { approve: true, .. }) => S::Listed,
        (S::Applied, C::ReviewApplication { approve: false, .. }) => S::Rejected,
        (
            S::Nominated,
            C::PutOnNotice {
                kind: NoticeKind::SeedCandidates,
                ..
            },
        ) => S::Listed,
        (
            S::Approved,
            C::PutOnNotice {
                kind: NoticeKind::SeedSupplementary,
                ..
            },
        ) => S::Listed,
        (S::Listed, C::UpholdObjection { .. }) => S::Removed,
        (S::Listed, C::FinaliseSeedList) => S::Seed,
        (S::Enrolled | S::Nominated | S::Rejected | S::Removed, C::FinaliseSeedList) => {
            S::Potential
        }
        (S::Seed, C::SubmitPresentation) => S::Presented,
        (S::Seed | S::Presented, C::ConfirmMentor { mentor: false, .. }) => S::SeedNonMentor,
        (S::Presented, C::ConfirmMentor { mentor: true, .. }) => S::Mentor,
        (S::Potential | S::Paired, C::Pair { .. }) => S::Paired,
        (
            S::Paired,
            C::ConfirmAward {
                class: AwardClass::Progress,
                ..
            },
        ) => S::ProgressAward,
        (
            S::Paired,
            C::ConfirmAward {
                class: AwardClass::Compliance,
                ..
            },
        ) => S::ComplianceAward,
        (
            S::Paired | S::Mentor | S::SeedNonMentor,
            C::ConfirmAward {
                class: AwardClass::Veto,
                ..
            },
        ) => S::Vetoed,
        (
            S::Paired | S::Mentor | S::SeedNonMentor,
            C::ConfirmAward {
                class: AwardClass::Withheld,
                ..
            },
        ) => S::AwardWithheld,
        (
            S::SeedNonMentor,
            C::ConfirmAward {
                class: AwardClass::Compliance,
                ..
            },
        ) => S::ComplianceAward,
        (
            S::Mentor,
            C::ConfirmAward {
                class: AwardClass::Contribution,
                ..
            },
        ) => S::ContributionAward,
        (
            S::Mentor | S::SeedNonMentor,
            C::ConfirmAward {
                class: AwardClass::Model,
                ..
            },
        ) => S::ModelAward,
        _ => return None,
    })
}

/// The clock, the definition and the phase board a decision is made against.
pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub def: &'a CampaignDefinition,
    pub phases: &'a PhaseBoard,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub to: CaseState,
    pub effects: Vec<Effect>,
}

pub fn decide(
    case: &SchoolCase,
    cmd: &SchoolCommand,
    actor: &Actor,
    ctx: &Ctx<'_>,
) -> Result<Transition, RuleError> {
    let action = cmd.action();
    if !cmd.allowed(actor, case.id) {
        return Err(RuleError::Forbidden {
            action,
            role: actor.role,
        });
    }
    let phase = cmd.phase();
    match cmd {
        // Completing a phase late is how the office closes it after the deadline; an objection
        // is resolved whenever its notice ran (the phase cannot complete with it open).
        SchoolCommand::FinaliseSeedList | SchoolCommand::UpholdObjection { .. } => {
            if ctx.phases.get(phase).status != crate::phase::PhaseStatus::Open {
                return Err(RuleError::PhaseNotOpen {
                    phase,
                    status: ctx.phases.get(phase).status,
                    action,
                });
            }
        }
        SchoolCommand::SubmitApplication => ctx.phases.require_active(
            phase,
            Some("application_deadline"),
            action,
            ctx.now,
            ctx.def,
        )?,
        _ => ctx
            .phases
            .require_active(phase, None, action, ctx.now, ctx.def)?,
    }
    let Some(to) = target(case.state, cmd, ctx.def.supplementary_notice) else {
        return Err(RuleError::IllegalTransition {
            action,
            state: case.state.code(),
            state_label: case.state.label(),
        });
    };
    let reason = match cmd {
        SchoolCommand::Nominate { basis } => Some(basis.clone()),
        SchoolCommand::WithdrawNomination { reason }
        | SchoolCommand::ReviewApplication { reason, .. }
        | SchoolCommand::UpholdObjection { reason, .. } => Some(reason.clone()),
        SchoolCommand::ConfirmMentor { reason, .. } => reason.clone(),
        SchoolCommand::ConfirmAward { reason, .. } => Some(reason.clone()),
        _ => None,
    };
    if let SchoolCommand::ReviewApplication { reason, .. }
    | SchoolCommand::WithdrawNomination { reason } = cmd
        && reason.trim().is_empty()
    {
        return Err(RuleError::invalid("reason", "a reason is required"));
    }
    let mut effects = vec![Effect::event(
        cmd.event_name(),
        Some(case.id),
        serde_json::json!({ "state": case.state.code(), "version": case.version }),
        serde_json::json!({ "state": to.code(), "version": case.version + 1 }),
        reason,
    )];
    let phase_due = |p: PhaseKind| ctx.phases.deadline(p, ctx.def);
    match (cmd, to) {
        (SchoolCommand::SubmitApplication, _) => effects.push(Effect::OpenObligation {
            kind: ObligationKind::ReviewApplication,
            school: Some(case.id),
            key: String::new(),
            owner: Owner::Role(Role::Office),
            deadline: DeadlineRef::Phase(PhaseKind::SeedDesignation),
            due: phase_due(PhaseKind::SeedDesignation),
            subject: format!("复核{}的自主申报", case.name),
        }),
        (SchoolCommand::ReviewApplication { .. }, _) => effects.push(Effect::CloseObligation {
            kind: ObligationKind::ReviewApplication,
            school: Some(case.id),
            key: String::new(),
        }),
        (SchoolCommand::FinaliseSeedList, CaseState::Seed) => {
            effects.push(Effect::OpenObligation {
                kind: ObligationKind::SubmitPresentation,
                school: Some(case.id),
                key: String::new(),
                owner: Owner::School(case.id),
                deadline: DeadlineRef::Phase(PhaseKind::MentorSelection),
                due: phase_due(PhaseKind::MentorSelection),
                subject: format!("{}提交展示汇报材料和可复制性经验做法", case.name),
            })
        }
        (SchoolCommand::SubmitPresentation, _) => {
            effects.push(Effect::CloseObligation {
                kind: ObligationKind::SubmitPresentation,
                school: Some(case.id),
                key: String::new(),
            });
            effects.push(Effect::OpenObligation {
                kind: ObligationKind::RatePresentation,
                school: Some(case.id),
                key: String::new(),
                owner: Owner::Role(Role::Panel),
                deadline: DeadlineRef::Phase(PhaseKind::MentorSelection),
                due: phase_due(PhaseKind::MentorSelection),
                subject: format!("评议{}的展示汇报", case.name),
            });
        }
        (SchoolCommand::ConfirmMentor { .. }, _) => {
            effects.push(Effect::CloseObligation {
                kind: ObligationKind::SubmitPresentation,
                school: Some(case.id),
                key: String::new(),
            });
            effects.push(Effect::CloseObligation {
                kind: ObligationKind::RatePresentation,
                school: Some(case.id),
                key: String::new(),
            });
        }
        _ => {}
    }
    Ok(Transition { to, effects })
}

/// Schools enrol in a campaign until the seed list is final (phase 1 completed).
pub fn enrol(phases: &PhaseBoard) -> Result<(), RuleError> {
    if phases.get(PhaseKind::SeedDesignation).status == crate::phase::PhaseStatus::Completed {
        return Err(RuleError::EnrolmentClosed);
    }
    Ok(())
}

/// The audit event of one enrolled school, as stored.
pub fn registered(id: SchoolId, code: &str, name: &str, state: CaseState, version: i64) -> Effect {
    Effect::event(
        "school.registered",
        Some(id),
        serde_json::Value::Null,
        serde_json::json!({ "code": code, "name": name, "state": state.code(), "version": version }),
        None,
    )
}

/// A school's principal changes (结果运用 follows the person): the new person has a new id, and
/// the old one keeps every award and consequence recorded under theirs. Any time, any phase;
/// the name and the reason are required.
pub fn change_principal(
    school: SchoolId,
    old: (Uuid, &str),
    new: (Uuid, &str),
    reason: &str,
) -> Result<Effect, RuleError> {
    let mut problems = Vec::new();
    if new.1.trim().is_empty() {
        problems.push((
            "name".to_string(),
            "the new principal's name is required".to_string(),
        ));
    }
    if reason.trim().is_empty() {
        problems.push((
            "reason".to_string(),
            "say why the principal changes".to_string(),
        ));
    }
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    Ok(Effect::event(
        "principal.changed",
        Some(school),
        serde_json::json!({ "principal_id": old.0, "principal": old.1 }),
        serde_json::json!({ "principal_id": new.0, "principal": new.1.trim() }),
        Some(reason.trim().to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::CampaignDefinition;
    use crate::phase::PhaseFacts;
    use proptest::prelude::*;

    const CHANGLE: &str = include_str!("../../../deploy/campaigns/changle-2020.toml");

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn office() -> Actor {
        Actor {
            id: "office".into(),
            role: Role::Office,
            school: None,
        }
    }

    fn commands(school: SchoolId) -> Vec<(SchoolCommand, Actor)> {
        let dept = Actor {
            id: "dept".into(),
            role: Role::Department,
            school: None,
        };
        let me = Actor {
            id: "school".into(),
            role: Role::School,
            school: Some(school),
        };
        let other = Actor {
            id: "other".into(),
            role: Role::School,
            school: Some(SchoolId::nil()),
        };
        vec![
            (
                SchoolCommand::Nominate {
                    basis: "达标".into(),
                },
                dept.clone(),
            ),
            (
                SchoolCommand::Nominate {
                    basis: "达标".into(),
                },
                office(),
            ),
            (
                SchoolCommand::WithdrawNomination {
                    reason: "撤回".into(),
                },
                dept,
            ),
            (SchoolCommand::SubmitApplication, me.clone()),
            (SchoolCommand::SubmitApplication, other.clone()),
            (
                SchoolCommand::ReviewApplication {
                    approve: true,
                    reason: "符合".into(),
                },
                office(),
            ),
            (
                SchoolCommand::ReviewApplication {
                    approve: false,
                    reason: "不符合".into(),
                },
                office(),
            ),
            (
                SchoolCommand::PutOnNotice {
                    notice: NoticeId::nil(),
                    kind: NoticeKind::SeedCandidates,
                },
                office(),
            ),
            (
                SchoolCommand::PutOnNotice {
                    notice: NoticeId::nil(),
                    kind: NoticeKind::SeedSupplementary,
                },
                office(),
            ),
            (
                SchoolCommand::UpholdObjection {
                    objection: ObjectionId::nil(),
                    reason: "属实".into(),
                },
                office(),
            ),
            (SchoolCommand::FinaliseSeedList, office()),
            (SchoolCommand::SubmitPresentation, me),
            (SchoolCommand::SubmitPresentation, other),
            (
                SchoolCommand::ConfirmMentor {
                    mentor: true,
                    reason: None,
                },
                office(),
            ),
            (
                SchoolCommand::ConfirmMentor {
                    mentor: false,
                    reason: None,
                },
                office(),
            ),
            (
                SchoolCommand::Pair {
                    mentor: SchoolId::nil(),
                },
                office(),
            ),
            (
                SchoolCommand::ConfirmAward {
                    class: AwardClass::Progress,
                    reason: "r".into(),
                },
                office(),
            ),
            (
                SchoolCommand::ConfirmAward {
                    class: AwardClass::Model,
                    reason: "r".into(),
                },
                office(),
            ),
            (
                SchoolCommand::ConfirmAward {
                    class: AwardClass::Veto,
                    reason: "r".into(),
                },
                office(),
            ),
        ]
    }

    /// States reachable from `from` in the transition table (the allowed graph).
    fn successors(from: CaseState) -> Vec<CaseState> {
        let id = SchoolId::from_u128(7);
        commands(id)
            .into_iter()
            .flat_map(|(c, _)| [target(from, &c, true), target(from, &c, false)])
            .flatten()
            .collect()
    }

    proptest! {
        /// Random command sequences by random actors, while the clock moves through the
        /// season: every accepted command follows the table, the version-free state never
        /// leaves the allowed graph, refused commands change nothing, and a seed school never
        /// becomes potential (or the reverse).
        #[test]
        fn random_command_sequences_stay_legal(steps in proptest::collection::vec((0usize..19, 0i64..200 * 24), 1..60)) {
            let def = CampaignDefinition::parse(CHANGLE).unwrap();
            let mut phases = PhaseBoard::new(&def);
            let id = SchoolId::from_u128(7);
            let mut case = SchoolCase { id, name: "测试小学".into(), state: CaseState::Enrolled, version: 1 };
            let start = at("2020-03-02T01:00:00Z");
            let mut hours = 0i64;
            phases.open(PhaseKind::SeedDesignation, &office(), start, &def).unwrap();
            let cmds = commands(id);
            for (pick, dh) in steps {
                hours = (hours + dh / 20).min(24 * 205);
                let now = start + chrono::Duration::hours(hours);
                // Move the phases along the way the office would.
                if phases.get(PhaseKind::SeedDesignation).status == crate::phase::PhaseStatus::Open
                    && now >= at("2020-04-20T00:00:00Z")
                {
                    let facts = PhaseFacts { listed_schools: 1, ..Default::default() };
                    phases.complete(PhaseKind::SeedDesignation, &office(), now, &facts).unwrap();
                    let _ = phases.open(PhaseKind::MentorSelection, &office(), now, &def);
                }
                for (phase, next, from) in [
                    (PhaseKind::MentorSelection, PhaseKind::Pairing, "2020-05-20T00:00:00Z"),
                    (PhaseKind::Pairing, PhaseKind::Acceptance, "2020-07-20T00:00:00Z"),
                    (PhaseKind::Acceptance, PhaseKind::Awards, "2020-09-02T00:00:00Z"),
                ] {
                    if phases.get(phase).status == crate::phase::PhaseStatus::Open && now >= at(from) {
                        let facts = PhaseFacts {
                            mentors_confirmed: true,
                            results_notice: Some(crate::phase::ResultsNoticeFacts { ends_at: start, last_day: start.date_naive(), open_objections: 0 }),
                            ..Default::default()
                        };
                        phases.complete(phase, &office(), now, &facts).unwrap();
                        let _ = phases.open(next, &office(), now, &def);
                    }
                }
                let (cmd, actor) = &cmds[pick];
                let ctx = Ctx { now, def: &def, phases: &phases };
                let before = case.clone();
                match decide(&case, cmd, actor, &ctx) {
                    Ok(t) => {
                        prop_assert!(successors(before.state).contains(&t.to));
                        prop_assert_eq!(Some(t.to), target(before.state, cmd, def.supplementary_notice));
                        prop_assert!(!(before.state.is_seed() && t.to == CaseState::Potential));
                        prop_assert!(!(before.state == CaseState::Potential && t.to.is_seed()));
                        let first_is_event = matches!(t.effects.first(), Some(Effect::Event { .. }));
                        prop_assert!(first_is_event);
                        case.state = t.to;
                        case.version += 1;
                    }
                    Err(_) => prop_assert_eq!(&case, &before),
                }
            }
        }
    }

    #[test]
    fn every_state_has_a_label_and_round_trips() {
        for s in CaseState::ALL {
            assert_eq!(CaseState::from_code(s.code()), Some(s));
            assert!(!s.label().is_empty());
        }
    }

    #[test]
    fn refusals_name_the_phase_and_the_deadline() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        let mut phases = PhaseBoard::new(&def);
        let case = SchoolCase {
            id: SchoolId::from_u128(1),
            name: "x".into(),
            state: CaseState::Enrolled,
            version: 1,
        };
        let dept = Actor {
            id: "d".into(),
            role: Role::Department,
            school: None,
        };
        let cmd = SchoolCommand::Nominate { basis: "b".into() };
        let ctx = Ctx {
            now: at("2020-03-02T01:00:00Z"),
            def: &def,
            phases: &phases,
        };
        let err = decide(&case, &cmd, &dept, &ctx).unwrap_err();
        assert!(
            err.to_string().contains("seed_designation") && err.to_string().contains("not_open"),
            "{err}"
        );
        phases
            .open(
                PhaseKind::SeedDesignation,
                &office(),
                at("2020-03-02T01:00:00Z"),
                &def,
            )
            .unwrap();
        let ctx = Ctx {
            now: at("2020-04-30T16:00:00Z"),
            def: &def,
            phases: &phases,
        };
        let err = decide(&case, &cmd, &dept, &ctx).unwrap_err();
        assert!(err.to_string().contains("2020-04-30 24:00"), "{err}");
        // The application milestone closes earlier than the phase.
        let me = Actor {
            id: "s".into(),
            role: Role::School,
            school: Some(case.id),
        };
        let ctx = Ctx {
            now: at("2020-04-10T16:00:01Z"),
            def: &def,
            phases: &phases,
        };
        let err = decide(&case, &SchoolCommand::SubmitApplication, &me, &ctx).unwrap_err();
        assert!(err.to_string().contains("application_deadline"), "{err}");
    }

    mod enrolment {
        use super::super::*;
        use crate::testing::*;
        use proptest::prelude::*;

        proptest! {
            /// Schools enrol exactly until phase 1 is completed.
            #[test]
            fn schools_enrol_until_the_seed_list_is_final(open in proptest::option::of(0usize..5)) {
                let def = changle();
                let board = match open {
                    None => PhaseBoard::new(&def),
                    Some(i) => board_open(&def, PhaseKind::ALL[i]),
                };
                let completed = open.is_some_and(|i| i > 0);
                prop_assert_eq!(enrol(&board).is_err(), completed);
                if completed {
                    prop_assert_eq!(enrol(&board).unwrap_err(), RuleError::EnrolmentClosed);
                }
            }
        }
    }
}
