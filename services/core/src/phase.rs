//! The five phases, their windows, deadlines and exit criteria.
//!
//! Windows overlap by a month in the plan, so a phase opens once its window has opened *and*
//! the previous phase is completed. A deadline is the start of the day after the last day
//! (exclusive end), in the campaign's time zone. Deadlines move only by an audited extension.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use crate::exit_criteria::{PhaseFacts, ResultsNoticeFacts, open_items};
pub use crate::phase_kind::{OpenItem, PhaseKind, PhaseStatus, RunningNotice, render};

use crate::definition::CampaignDefinition;
use crate::effects::{DeadlineRef, Effect, ObligationKind, Owner};
use crate::error::RuleError;
use crate::role::{Actor, Role};
use crate::time::{describe_deadline, start_of_day};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseState {
    pub kind: PhaseKind,
    pub status: PhaseStatus,
    /// The last day, as defined or as extended.
    pub last_day: NaiveDate,
    /// Milestone last days, as defined or as extended.
    pub milestones: BTreeMap<String, NaiveDate>,
    pub opened_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// All five phases of one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseBoard {
    pub phases: Vec<PhaseState>,
}

impl PhaseBoard {
    pub fn new(def: &CampaignDefinition) -> Self {
        let phases = PhaseKind::ALL
            .into_iter()
            .map(|kind| {
                let w = def.window(kind);
                PhaseState {
                    kind,
                    status: PhaseStatus::NotOpen,
                    last_day: w.end,
                    milestones: w
                        .milestones
                        .iter()
                        .map(|m| (m.name.clone(), m.date))
                        .collect(),
                    opened_at: None,
                    completed_at: None,
                }
            })
            .collect();
        PhaseBoard { phases }
    }

    pub fn get(&self, kind: PhaseKind) -> &PhaseState {
        &self.phases[kind.index()]
    }

    fn get_mut(&mut self, kind: PhaseKind) -> &mut PhaseState {
        &mut self.phases[kind.index()]
    }

    pub fn deadline(&self, kind: PhaseKind, def: &CampaignDefinition) -> DateTime<Utc> {
        def.deadline_after(self.get(kind).last_day)
    }

    pub fn milestone_deadline(
        &self,
        kind: PhaseKind,
        name: &str,
        def: &CampaignDefinition,
    ) -> Option<DateTime<Utc>> {
        self.get(kind)
            .milestones
            .get(name)
            .map(|d| def.deadline_after(*d))
    }

    /// The phase whose actions are currently allowed, if any.
    pub fn current(&self) -> Option<PhaseKind> {
        self.phases
            .iter()
            .find(|p| p.status == PhaseStatus::Open)
            .map(|p| p.kind)
    }

    /// Refuses an action unless `phase` is open, whatever its deadline: for what an open notice
    /// allows for its whole period (objections and their resolution), since a phase cannot
    /// complete while one of its notices runs or an objection is unresolved.
    pub fn require_open(&self, phase: PhaseKind, action: &'static str) -> Result<(), RuleError> {
        let st = self.get(phase);
        if st.status != PhaseStatus::Open {
            return Err(RuleError::PhaseNotOpen {
                phase,
                status: st.status,
                action,
            });
        }
        Ok(())
    }

    /// Refuses an action unless `phase` is open and its deadline (and the milestone's, if
    /// given) has not passed.
    pub fn require_active(
        &self,
        phase: PhaseKind,
        milestone: Option<&str>,
        action: &'static str,
        now: DateTime<Utc>,
        def: &CampaignDefinition,
    ) -> Result<(), RuleError> {
        let st = self.get(phase);
        if st.status != PhaseStatus::Open {
            return Err(RuleError::PhaseNotOpen {
                phase,
                status: st.status,
                action,
            });
        }
        let tz = def.tz();
        let deadline = self.deadline(phase, def);
        if now >= deadline {
            return Err(RuleError::DeadlinePassed {
                phase,
                what: "the deadline".into(),
                deadline,
                deadline_local: describe_deadline(deadline, tz),
                action,
            });
        }
        if let Some(name) = milestone
            && let Some(deadline) = self.milestone_deadline(phase, name, def)
            && now >= deadline
        {
            let label = def
                .milestone(phase, name)
                .map_or(name, |m| m.label.as_str());
            return Err(RuleError::DeadlinePassed {
                phase,
                what: format!("milestone {label} ({name})"),
                deadline,
                deadline_local: describe_deadline(deadline, tz),
                action,
            });
        }
        Ok(())
    }

    pub fn open(
        &mut self,
        kind: PhaseKind,
        actor: &Actor,
        now: DateTime<Utc>,
        def: &CampaignDefinition,
    ) -> Result<Vec<Effect>, RuleError> {
        require_office(actor, "open a phase")?;
        let st = self.get(kind);
        if st.status != PhaseStatus::NotOpen {
            return Err(RuleError::Precondition(format!(
                "phase {} ({}) is already {}",
                kind.label(),
                kind.code(),
                st.status.code()
            )));
        }
        if let Some(prev) = kind.previous()
            && self.get(prev).status != PhaseStatus::Completed
        {
            return Err(RuleError::Precondition(format!(
                "phase {} ({}) can open only after phase {} ({}) is completed; it is {}",
                kind.label(),
                kind.code(),
                prev.label(),
                prev.code(),
                self.get(prev).status.code()
            )));
        }
        let tz = def.tz();
        let opens = start_of_day(def.window(kind).start, tz);
        if now < opens {
            return Err(RuleError::Precondition(format!(
                "the window of phase {} ({}) opens on {}",
                kind.label(),
                kind.code(),
                def.window(kind).start
            )));
        }
        let deadline = self.deadline(kind, def);
        if now >= deadline {
            return Err(RuleError::DeadlinePassed {
                phase: kind,
                what: "the deadline".into(),
                deadline,
                deadline_local: describe_deadline(deadline, tz),
                action: "open the phase",
            });
        }
        let before = serde_json::to_value(self.get(kind)).expect("serializes");
        let st = self.get_mut(kind);
        st.status = PhaseStatus::Open;
        st.opened_at = Some(now);
        let after = serde_json::to_value(&*st).expect("serializes");
        Ok(vec![
            Effect::event("phase.opened", None, before, after, None),
            Effect::OpenObligation {
                kind: ObligationKind::CompletePhase,
                school: None,
                key: kind.code().to_string(),
                owner: Owner::Role(Role::Office),
                deadline: DeadlineRef::Phase(kind),
                due: deadline,
                subject: format!("完成{}阶段", kind.label()),
            },
        ])
    }

    /// Completion needs the phase's exit criteria; the caller turns schools over afterwards.
    pub fn complete(
        &mut self,
        kind: PhaseKind,
        actor: &Actor,
        now: DateTime<Utc>,
        facts: &PhaseFacts,
    ) -> Result<Vec<Effect>, RuleError> {
        require_office(actor, "complete a phase")?;
        let st = self.get(kind);
        if st.status != PhaseStatus::Open {
            return Err(RuleError::PhaseNotOpen {
                phase: kind,
                status: st.status,
                action: "complete the phase",
            });
        }
        let open = open_items(kind, facts, now);
        if !open.is_empty() {
            return Err(RuleError::ExitCriteria { phase: kind, open });
        }
        let before = serde_json::to_value(st).expect("serializes");
        let st = self.get_mut(kind);
        st.status = PhaseStatus::Completed;
        st.completed_at = Some(now);
        let after = serde_json::to_value(&*st).expect("serializes");
        Ok(vec![
            Effect::event("phase.completed", None, before, after, None),
            Effect::CloseObligation {
                kind: ObligationKind::CompletePhase,
                school: None,
                key: kind.code().to_string(),
            },
        ])
    }

    /// Moves a phase deadline or milestone later. Completed phases cannot be extended.
    pub fn extend(
        &mut self,
        kind: PhaseKind,
        milestone: Option<&str>,
        new_last_day: NaiveDate,
        reason: &str,
        actor: &Actor,
        def: &CampaignDefinition,
    ) -> Result<Vec<Effect>, RuleError> {
        require_office(actor, "extend a deadline")?;
        if reason.trim().is_empty() {
            return Err(RuleError::invalid("reason", "an extension needs a reason"));
        }
        let st = self.get(kind);
        if st.status == PhaseStatus::Completed {
            return Err(RuleError::Precondition(format!(
                "phase {} ({}) is already completed",
                kind.label(),
                kind.code()
            )));
        }
        let before = serde_json::to_value(st).expect("serializes");
        let (current, target) = match milestone {
            None => (st.last_day, DeadlineRef::Phase(kind)),
            Some(name) => match st.milestones.get(name) {
                Some(d) => (*d, DeadlineRef::Milestone(kind, name.to_string())),
                None => {
                    return Err(RuleError::invalid(
                        "milestone",
                        format!("phase {} has no milestone `{name}`", kind.code()),
                    ));
                }
            },
        };
        if new_last_day <= current {
            return Err(RuleError::invalid(
                "new_last_day",
                format!("{new_last_day} is not later than the current last day {current}"),
            ));
        }
        if milestone.is_some() && new_last_day > st.last_day {
            return Err(RuleError::invalid(
                "new_last_day",
                format!(
                    "{new_last_day} is after the phase's last day {}; extend the phase first",
                    st.last_day
                ),
            ));
        }
        let year = chrono::Datelike::year(&new_last_day);
        if !def.calendar().covers(year) {
            return Err(RuleError::invalid(
                "new_last_day",
                format!(
                    "no working-day calendar data for {year}: add {}",
                    crate::calendar::file_for(year)
                ),
            ));
        }
        let st = self.get_mut(kind);
        match milestone {
            None => st.last_day = new_last_day,
            Some(name) => {
                st.milestones.insert(name.to_string(), new_last_day);
            }
        }
        let after = serde_json::to_value(&*st).expect("serializes");
        Ok(vec![
            Effect::event(
                "deadline.extended",
                None,
                before,
                after,
                Some(reason.trim().to_string()),
            ),
            Effect::ReplanObligations {
                deadline: target,
                due: def.deadline_after(new_last_day),
            },
        ])
    }
}

fn require_office(actor: &Actor, action: &'static str) -> Result<(), RuleError> {
    if actor.role == Role::Office {
        Ok(())
    } else {
        Err(RuleError::Forbidden {
            action,
            role: actor.role,
        })
    }
}

/// A new campaign: every phase not open, and the `campaign.created` event naming the
/// definition it runs on (its SHA-256).
pub fn create_campaign(def: &CampaignDefinition, sha256: &str) -> (PhaseBoard, Vec<Effect>) {
    let effects = vec![Effect::event(
        "campaign.created",
        None,
        serde_json::Value::Null,
        serde_json::json!({ "code": def.code, "county": def.county, "year": def.year, "definition_sha256": sha256 }),
        None,
    )];
    (PhaseBoard::new(def), effects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_items_are_worded_chinese_first_in_one_place() {
        let f = PhaseFacts {
            unpaired_potentials: 2,
            baselines_missing: 30,
            ..Default::default()
        };
        let now = DateTime::<Utc>::MIN_UTC;
        let items = open_items(PhaseKind::Pairing, &f, now);
        assert_eq!(
            items,
            vec![
                OpenItem::PotentialsNotPaired(2),
                OpenItem::BaselinesMissing(30)
            ]
        );
        assert_eq!(
            render(&items),
            "2 所潜力校未编入 1+X 帮扶组 (potential schools not in a group); \
             30 所潜力校未录入基线分 (baselines missing)"
        );
        assert_eq!(
            open_items(PhaseKind::Acceptance, &f, now),
            vec![OpenItem::ResultsNoticeNotPublished]
        );
        assert_eq!(
            open_items(PhaseKind::Awards, &f, now)[0].to_string(),
            "奖项名单未确认 (award list not confirmed)"
        );
        let err = RuleError::ExitCriteria {
            phase: PhaseKind::Pairing,
            open: items,
        };
        assert!(
            err.to_string()
                .starts_with("phase 1+X 搭对帮扶提升 (pairing) cannot be completed yet: 2 所"),
            "{err}"
        );
    }

    #[test]
    fn a_new_campaign_has_every_phase_not_open_and_names_its_definition() {
        let def = crate::testing::changle();
        let (_, sha) = def.canonical();
        let (board, effects) = create_campaign(&def, &sha);
        assert!(
            board
                .phases
                .iter()
                .all(|p| p.status == PhaseStatus::NotOpen)
        );
        assert_eq!(board.phases.len(), PhaseKind::ALL.len());
        assert!(
            matches!(&effects[..], [Effect::Event { action: "campaign.created", after, .. }] if after["definition_sha256"] == sha.as_str())
        );
    }
}
