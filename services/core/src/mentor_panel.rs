//! The phase-2 panel (督导室邀请各业务科室和部分高中校长): the office appoints the members who
//! rate the seed schools' presentations, each with an affiliation. Only appointed members rate
//! (`mentor::rate_presentation` asks [`may_rate`]); a member affiliated with the presenting
//! school is recused. The panel is formed, and re-formed, until the first rating is recorded;
//! after that it is fixed, so that no sheet was given by someone the panel no longer holds.

use std::collections::BTreeSet;

use crate::ids::SchoolId;

use crate::acceptance::Affiliation;
use crate::effects::Effect;
use crate::error::RuleError;
use crate::phase::PhaseKind;
use crate::school::Ctx;

/// One appointed member of the phase-2 panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentorPanelMember {
    /// The actor id of the member's panel token.
    pub actor: String,
    pub name: String,
    /// A department (业务科室) or a high school (高中校长); mentor schools do not exist yet.
    pub affiliation: Affiliation,
    /// A school of this campaign the member belongs to (for instance the junior section of the
    /// member's high school): the member is recused from rating it.
    pub school: Option<SchoolId>,
}

/// What forming the panel needs to know about the campaign.
#[derive(Debug, Clone, Default)]
pub struct MentorPanelFacts {
    /// Those of the proposed members' actors that hold a panel-role token.
    pub panel_actors: BTreeSet<String>,
    /// Those of the named schools that belong to this campaign.
    pub campaign_schools: BTreeSet<SchoolId>,
    /// Rating sheets recorded so far in the campaign.
    pub ratings: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MentorPanelFormed {
    pub members: Vec<MentorPanelMember>,
    pub effects: Vec<Effect>,
}

/// Forms (or, before the first rating, re-forms) the phase-2 panel while phase 2 is active:
/// at least `mentor.min_raters` members, each once, each holding a panel token, from a
/// department or a high school, any school named being one of the campaign's.
pub fn form_mentor_panel(
    members: Vec<MentorPanelMember>,
    facts: &MentorPanelFacts,
    ctx: &Ctx<'_>,
) -> Result<MentorPanelFormed, RuleError> {
    ctx.phases.require_active(
        PhaseKind::MentorSelection,
        None,
        "form the phase-2 panel",
        ctx.now,
        ctx.def,
    )?;
    if facts.ratings > 0 {
        return Err(RuleError::MentorPanelFixed {
            ratings: facts.ratings,
        });
    }
    let mut problems = Vec::new();
    let min = ctx.def.mentor.min_raters;
    if (members.len() as u32) < min {
        problems.push((
            "members".to_string(),
            format!(
                "{} member(s) cannot reach mentor.min_raters = {min}; appoint at least {min}",
                members.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, m) in members.iter().enumerate() {
        if !seen.insert(m.actor.as_str()) {
            problems.push((format!("members[{i}].actor"), "listed twice".into()));
        }
        if !facts.panel_actors.contains(&m.actor) {
            problems.push((
                format!("members[{i}].actor"),
                format!(
                    "`{}` is not a panel-role actor (issue a ROLE_PANEL token first)",
                    m.actor
                ),
            ));
        }
        if matches!(m.affiliation, Affiliation::MentorSchool(_)) {
            problems.push((
                format!("members[{i}].affiliation"),
                "the phase-2 panel is drawn from departments and high schools; mentor schools are chosen by it".into(),
            ));
        }
        if let Some(s) = m.school
            && !facts.campaign_schools.contains(&s)
        {
            problems.push((
                format!("members[{i}].school_id"),
                "not a school of this campaign".into(),
            ));
        }
    }
    // A member is recused from their own school, so every school must keep min_raters
    // members after its recusals, or it could never be judged (and the panel is fixed after
    // the first rating).
    if (members.len() as u32) >= min {
        let mut recused: std::collections::BTreeMap<SchoolId, u32> =
            std::collections::BTreeMap::new();
        for s in members.iter().filter_map(|m| m.school) {
            *recused.entry(s).or_default() += 1;
        }
        for (school, n) in recused {
            let left = members.len() as u32 - n;
            if left < min {
                problems.push((
                    "members".to_string(),
                    format!(
                        "school {school} keeps {left} member(s) after {n} recusal(s), fewer than mentor.min_raters = {min}; appoint more members"
                    ),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    let listed: Vec<serde_json::Value> = members
        .iter()
        .map(|m| {
            serde_json::json!({
                "actor": m.actor,
                "name": m.name,
                "affiliation": m.affiliation.code(),
                "school_id": m.school,
            })
        })
        .collect();
    let effects = vec![Effect::event(
        "mentor_panel.formed",
        None,
        serde_json::Value::Null,
        serde_json::json!({ "members": listed }),
        None,
    )];
    Ok(MentorPanelFormed { members, effects })
}

/// Whether `rater` may rate `school`'s presentation: an appointed member not affiliated with it.
pub fn may_rate(
    panel: &[MentorPanelMember],
    rater: &str,
    school: SchoolId,
) -> Result<(), RuleError> {
    let Some(member) = panel.iter().find(|m| m.actor == rater) else {
        return Err(RuleError::NotOnMentorPanel);
    };
    if member.school == Some(school) {
        return Err(RuleError::RecusedFromPresentation {
            member: member.name.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use proptest::prelude::*;

    fn member(i: u8, affiliation: Affiliation, school: Option<SchoolId>) -> MentorPanelMember {
        MentorPanelMember {
            actor: format!("panel-{i}"),
            name: format!("评委{i}"),
            affiliation,
            school,
        }
    }

    proptest! {
        /// The panel is formed exactly when phase 2 is active, no rating exists yet, it has at
        /// least min_raters distinct panel-token members from departments or high schools and
        /// every school named is the campaign's; a refusal carries no effect to record.
        #[test]
        fn a_panel_is_formed_exactly_when_valid(
            day in 0i64..80,
            n in 0u8..6,
            ratings in 0u32..3,
            min_raters in 1u32..5,
            without_token in proptest::option::of(0u8..6),
            mentor_member in proptest::option::of(0u8..6),
            foreign_school in proptest::option::of(0u8..6),
            twice in any::<bool>(),
        ) {
            let mut def = changle();
            def.mentor.min_raters = min_raters;
            let phases = board_open(&def, PhaseKind::MentorSelection);
            let now = opened_at(PhaseKind::MentorSelection) + chrono::Duration::days(day);
            let ctx = Ctx { now, def: &def, phases: &phases };
            let own = SchoolId::from_u128(1);
            let mut members: Vec<MentorPanelMember> = (0..n).map(|i| {
                let aff = if Some(i) == mentor_member { Affiliation::MentorSchool(own) }
                    else if i % 2 == 0 { Affiliation::Department } else { Affiliation::HighSchool };
                let school = if Some(i) == foreign_school { Some(SchoolId::from_u128(99)) }
                    else if i == 1 { Some(own) } else { None };
                member(i, aff, school)
            }).collect();
            if twice && n > 0 { members.push(members[0].clone()); }
            let facts = MentorPanelFacts {
                panel_actors: members.iter().enumerate()
                    .filter(|(i, _)| Some(*i as u8) != without_token)
                    .map(|(_, m)| m.actor.clone()).collect(),
                campaign_schools: [own].into(),
                ratings,
            };
            let active = now < phases.deadline(PhaseKind::MentorSelection, &def);
            let valid = members.len() as u32 >= min_raters
                && !(twice && n > 0)
                && without_token.is_none_or(|i| i >= n)
                && mentor_member.is_none_or(|i| i >= n)
                && foreign_school.is_none_or(|i| i >= n)
                // every school keeps min_raters members after its own members are recused
                && members.iter().filter_map(|m| m.school).all(|s| {
                    members.len() - members.iter().filter(|m| m.school == Some(s)).count()
                        >= min_raters as usize
                });
            match form_mentor_panel(members.clone(), &facts, &ctx) {
                Ok(d) => {
                    prop_assert!(active && ratings == 0 && valid);
                    prop_assert_eq!(d.members, members);
                    prop_assert_eq!(d.effects.len(), 1);
                }
                Err(e) => {
                    prop_assert!(!(active && ratings == 0 && valid), "{}", e);
                    if active && ratings > 0 {
                        prop_assert_eq!(e, RuleError::MentorPanelFixed { ratings });
                    } else if active {
                        prop_assert!(matches!(e, RuleError::Invalid(_)));
                    }
                }
            }
        }

        /// Only appointed members rate, and never the school they are affiliated with.
        #[test]
        fn non_members_and_recused_members_never_rate(
            panel in proptest::collection::vec((0u8..8, proptest::option::of(0u128..4)), 0..6),
            rater in 0u8..8,
            school in 0u128..4,
        ) {
            let panel: Vec<MentorPanelMember> = panel.iter()
                .map(|(i, s)| member(*i, Affiliation::Department, s.map(SchoolId::from_u128)))
                .collect();
            let actor = format!("panel-{rater}");
            let school = SchoolId::from_u128(school);
            let got = may_rate(&panel, &actor, school);
            match panel.iter().find(|m| m.actor == actor) {
                None => prop_assert_eq!(got, Err(RuleError::NotOnMentorPanel)),
                Some(m) if m.school == Some(school) => {
                    prop_assert_eq!(got, Err(RuleError::RecusedFromPresentation { member: m.name.clone() }));
                }
                Some(_) => prop_assert_eq!(got, Ok(())),
            }
        }
    }

    #[test]
    fn the_refusals_say_why() {
        let s = SchoolId::from_u128(1);
        let panel = vec![member(1, Affiliation::HighSchool, Some(s))];
        assert_eq!(
            may_rate(&panel, "panel-1", s).unwrap_err().to_string(),
            "recused: 评委1 is affiliated with this school and may not rate its presentation (conflict of interest)"
        );
        assert_eq!(
            may_rate(&panel, "panel-2", s).unwrap_err().to_string(),
            "you are not on this campaign's phase-2 panel; the office appoints its members (FormMentorPanel)"
        );
    }
}
