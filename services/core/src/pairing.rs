//! 1+X pairing: every potential school in exactly one mentor's group, group sizes within the
//! configured bounds, and a balanced proposal (same school level first, then same town, then
//! even load) that the office may edit; and the deciders of phase 3 (setting the groups,
//! baselines, assistance).

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::SchoolId;
use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

use crate::effects::{DeadlineRef, Effect, ObligationKind, Owner};
use crate::error::RuleError;
use crate::phase::PhaseKind;
use crate::role::Role;
use crate::school::{CaseState, Ctx, SchoolCommand};
use crate::scoring;
use crate::time::local_date;

/// What the pairing rules need to know about a school.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolInfo {
    pub id: SchoolId,
    pub level: String,
    pub town: String,
}

/// mentor id → its potential schools.
pub type Groups = BTreeMap<SchoolId, Vec<SchoolId>>;

/// 1+X 八项指标的全方位帮扶: per mentor, the indicators its logged activities cover, in the
/// definition's order (indicators the definition does not name are left out).
pub fn coverage<'a>(
    def: &crate::definition::CampaignDefinition,
    activities: impl IntoIterator<Item = (SchoolId, &'a [String])>,
) -> BTreeMap<SchoolId, Vec<String>> {
    let mut seen: BTreeMap<SchoolId, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for (mentor, inds) in activities {
        seen.entry(mentor)
            .or_default()
            .extend(inds.iter().map(String::as_str));
    }
    seen.into_iter()
        .map(|(m, s)| {
            let covered = def
                .indicators
                .iter()
                .filter(|i| s.contains(i.code.as_str()))
                .map(|i| i.code.clone())
                .collect();
            (m, covered)
        })
        .collect()
}

#[cfg(test)]
mod coverage_tests {
    use super::*;

    #[test]
    fn coverage_lists_each_indicator_once_in_the_definitions_order() {
        let def = crate::testing::changle();
        let a = vec!["teaching".to_string(), "teachers".to_string()];
        let b = vec!["teaching".to_string(), "unknown".to_string()];
        let m = SchoolId::from_u128(1);
        let c = coverage(&def, [(m, a.as_slice()), (m, b.as_slice())]);
        assert_eq!(c[&m], vec!["teachers".to_string(), "teaching".to_string()]);
        assert!(!c.contains_key(&SchoolId::from_u128(2)));
    }
}

/// Levels that can help each other: a nine-year school spans primary and junior.
fn level_match(mentor: &str, potential: &str) -> bool {
    mentor == potential || mentor == "nine_year" || potential == "nine_year"
}

/// Proposes groups. Deterministic: potentials are placed in a fixed order, each with the
/// mentor that has room and is the best match (level, then town, then lowest load, then id).
pub fn propose(
    mentors: &[SchoolInfo],
    potentials: &[SchoolInfo],
    min: u32,
    max: u32,
) -> Result<Groups, RuleError> {
    if mentors.is_empty() {
        return Err(RuleError::Precondition(
            "there are no mentor schools to pair with".into(),
        ));
    }
    let (min, max) = (min as usize, max as usize);
    if potentials.len() > mentors.len() * max {
        return Err(RuleError::Precondition(format!(
            "{} potential schools cannot fit in {} groups of at most {max}",
            potentials.len(),
            mentors.len()
        )));
    }
    if potentials.len() < mentors.len() * min {
        return Err(RuleError::Precondition(format!(
            "{} potential schools cannot give {} mentors at least {min} each",
            potentials.len(),
            mentors.len()
        )));
    }
    let mut groups: Groups = mentors.iter().map(|m| (m.id, Vec::new())).collect();
    // Schools with the fewest matching mentors go first, so scarce matches are not used up.
    let mut order: Vec<&SchoolInfo> = potentials.iter().collect();
    order.sort_by_key(|p| {
        (
            mentors
                .iter()
                .filter(|m| level_match(&m.level, &p.level))
                .count(),
            p.level.clone(),
            p.town.clone(),
            p.id,
        )
    });
    for p in order {
        let best = mentors
            .iter()
            .filter(|m| groups[&m.id].len() < max)
            .min_by_key(|m| {
                (
                    !level_match(&m.level, &p.level),
                    m.town != p.town,
                    groups[&m.id].len(),
                    m.id,
                )
            })
            .expect("capacity was checked");
        groups.get_mut(&best.id).expect("mentor present").push(p.id);
    }
    // Top up groups below the minimum from the largest groups.
    while let Some((&short, _)) = groups.iter().find(|(_, g)| g.len() < min) {
        let (&donor, _) = groups
            .iter()
            .max_by_key(|(id, g)| (g.len(), **id))
            .expect("mentors present");
        let moved = groups
            .get_mut(&donor)
            .expect("donor")
            .pop()
            .expect("donor has more than min");
        groups.get_mut(&short).expect("short").push(moved);
    }
    for g in groups.values_mut() {
        g.sort();
    }
    Ok(groups)
}

/// Checks an office-edited assignment: every mentor listed is a mentor, every potential school
/// is in exactly one group, and sizes are within bounds. Problems are field violations.
pub fn validate(
    groups: &Groups,
    mentors: &BTreeSet<SchoolId>,
    potentials: &BTreeSet<SchoolId>,
    min: u32,
    max: u32,
) -> Result<(), RuleError> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<SchoolId, SchoolId> = BTreeMap::new();
    for (i, (mentor, members)) in groups.iter().enumerate() {
        if !mentors.contains(mentor) {
            problems.push((
                format!("groups[{i}].mentor_school_id"),
                format!("{mentor} is not a mentor school of this campaign"),
            ));
        }
        let n = members.len() as u32;
        if n < min || n > max {
            problems.push((
                format!("groups[{i}].potential_school_ids"),
                format!("a group has {min} to {max} potential schools, this one {n}"),
            ));
        }
        for p in members {
            if !potentials.contains(p) {
                problems.push((
                    format!("groups[{i}].potential_school_ids"),
                    format!("{p} is not a potential school of this campaign"),
                ));
            } else if let Some(other) = seen.insert(*p, *mentor) {
                problems.push((
                    format!("groups[{i}].potential_school_ids"),
                    format!("{p} is already in the group of {other}"),
                ));
            }
        }
    }
    for m in mentors {
        if !groups.contains_key(m) {
            problems.push(("groups".into(), format!("mentor school {m} has no group")));
        }
    }
    let missing: Vec<String> = potentials
        .iter()
        .filter(|p| !seen.contains_key(p))
        .map(SchoolId::to_string)
        .collect();
    if !missing.is_empty() {
        problems.push((
            "groups".into(),
            format!("potential schools in no group: {}", missing.join(", ")),
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RuleError::Invalid(problems))
    }
}

/// What forming the groups needs to know about the campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairingFacts {
    pub mentors: BTreeSet<SchoolId>,
    /// Potential schools, paired or not.
    pub potentials: BTreeSet<SchoolId>,
    pub names: BTreeMap<SchoolId, String>,
    /// Potential schools that already have a baseline.
    pub baselines: BTreeSet<SchoolId>,
}

/// One potential school's move into a group, with the obligations it brings.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub school: SchoolId,
    pub command: SchoolCommand,
    /// Extra effects to record with the school's own.
    pub extra: Vec<Effect>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PairingSet {
    pub groups: Groups,
    /// (mentor, potential), as stored.
    pub pairs: Vec<(SchoolId, SchoolId)>,
    /// In group order, then member order.
    pub moves: Vec<Move>,
    /// To record after the schools' own effects.
    pub effects: Vec<Effect>,
}

/// Sets the office's groups before the pairing milestone: valid groups (see `validate`), each
/// potential school paired (again), and a baseline owed for each one without.
pub fn set_pairing(
    groups: Groups,
    facts: &PairingFacts,
    ctx: &Ctx<'_>,
) -> Result<PairingSet, RuleError> {
    ctx.phases.require_active(
        PhaseKind::Pairing,
        Some("pairing_deadline"),
        "form 1+X groups",
        ctx.now,
        ctx.def,
    )?;
    validate(
        &groups,
        &facts.mentors,
        &facts.potentials,
        ctx.def.group_min,
        ctx.def.group_max,
    )?;
    let due = ctx.phases.deadline(PhaseKind::Pairing, ctx.def);
    let mut moves = Vec::new();
    for (mentor, members) in &groups {
        for p in members {
            let mut extra = Vec::new();
            if !facts.baselines.contains(p) {
                extra.push(Effect::OpenObligation {
                    kind: ObligationKind::RecordBaseline,
                    school: Some(*p),
                    key: String::new(),
                    owner: Owner::Role(Role::Office),
                    deadline: DeadlineRef::Phase(PhaseKind::Pairing),
                    due,
                    subject: format!(
                        "录入{}的各项指标基线分",
                        facts.names.get(p).map_or("", String::as_str)
                    ),
                });
            }
            moves.push(Move {
                school: *p,
                command: SchoolCommand::Pair { mentor: *mentor },
                extra,
            });
        }
    }
    let pairs: Vec<(SchoolId, SchoolId)> = groups
        .iter()
        .flat_map(|(m, ps)| ps.iter().map(move |p| (*m, *p)))
        .collect();
    let effects = vec![Effect::event(
        "pairing.set",
        None,
        serde_json::Value::Null,
        serde_json::json!({ "groups": groups.iter().map(|(m, ps)| serde_json::json!({ "mentor": m, "potentials": ps })).collect::<Vec<_>>() }),
        None,
    )];
    Ok(PairingSet {
        groups,
        pairs,
        moves,
        effects,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct BaselineRecorded {
    pub scores: BTreeMap<String, f64>,
    pub effects: Vec<Effect>,
}

/// Records a potential school's baseline (every indicator once) during phase 3, meeting the
/// obligation to record it.
pub fn record_baseline(
    school: SchoolId,
    scores: &[(String, f64)],
    state: CaseState,
    ctx: &Ctx<'_>,
) -> Result<BaselineRecorded, RuleError> {
    let (scores, problems) = scoring::indicator_scores(ctx.def, "scores", scores);
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    ctx.phases.require_active(
        PhaseKind::Pairing,
        None,
        "record a baseline",
        ctx.now,
        ctx.def,
    )?;
    if state != CaseState::Paired && state != CaseState::Potential {
        return Err(RuleError::NotPotential {
            state: state.code(),
        });
    }
    let effects = vec![
        Effect::event(
            "baseline.recorded",
            Some(school),
            serde_json::Value::Null,
            serde_json::to_value(&scores).expect("serializes"),
            None,
        ),
        Effect::CloseObligation {
            kind: ObligationKind::RecordBaseline,
            school: Some(school),
            key: String::new(),
        },
    ];
    Ok(BaselineRecorded { scores, effects })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAssistance {
    /// The new activity's id, chosen by the caller.
    pub activity: Uuid,
    pub mentor: SchoolId,
    pub potential: SchoolId,
    pub date: NaiveDate,
    pub indicators: Vec<String>,
    pub description: String,
    pub evidence_ref: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AssistanceLogged {
    pub activity: LogAssistance,
    pub effects: Vec<Effect>,
}

/// Logs a mentor's assistance to a school of its group: known indicators, a day not in the
/// future, during phase 3. `mentor_of` is the potential school's current mentor.
pub fn log_assistance(
    cmd: LogAssistance,
    mentor_of: Option<SchoolId>,
    ctx: &Ctx<'_>,
) -> Result<AssistanceLogged, RuleError> {
    let mut problems = Vec::new();
    for (i, ind) in cmd.indicators.iter().enumerate() {
        if ctx.def.indicator(ind).is_none() {
            problems.push((
                format!("indicators[{i}]"),
                format!("unknown indicator `{ind}`"),
            ));
        }
    }
    if cmd.date > local_date(ctx.now, ctx.def.tz()) {
        problems.push(("date".into(), format!("{} is in the future", cmd.date)));
    } else if cmd.date.year() != ctx.def.year {
        problems.push((
            "date".into(),
            format!("{} is outside the campaign year {}", cmd.date, ctx.def.year),
        ));
    }
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    ctx.phases.require_active(
        PhaseKind::Pairing,
        None,
        "log an assistance activity",
        ctx.now,
        ctx.def,
    )?;
    if mentor_of != Some(cmd.mentor) {
        return Err(RuleError::NotInGroup);
    }
    let effects = vec![Effect::event(
        "assistance.logged",
        Some(cmd.mentor),
        serde_json::Value::Null,
        serde_json::json!({ "activity_id": cmd.activity, "potential_school_id": cmd.potential,
                            "date": cmd.date, "indicators": cmd.indicators }),
        None,
    )];
    Ok(AssistanceLogged {
        activity: cmd,
        effects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn school(i: u128, level: &str, town: &str) -> SchoolInfo {
        SchoolInfo {
            id: SchoolId::from_u128(i),
            level: level.into(),
            town: town.into(),
        }
    }

    #[test]
    fn prefers_same_level_then_same_town() {
        let mentors = [
            school(1, "primary", "A"),
            school(2, "junior", "B"),
            school(3, "primary", "B"),
        ];
        let potentials = [
            school(10, "junior", "A"),
            school(11, "primary", "B"),
            school(12, "primary", "A"),
        ];
        let g = propose(&mentors, &potentials, 1, 4).unwrap();
        assert_eq!(g[&SchoolId::from_u128(2)], vec![SchoolId::from_u128(10)]);
        assert_eq!(g[&SchoolId::from_u128(3)], vec![SchoolId::from_u128(11)]);
        assert_eq!(g[&SchoolId::from_u128(1)], vec![SchoolId::from_u128(12)]);
    }

    #[test]
    fn too_many_potentials_is_a_clear_refusal() {
        let err = propose(
            &[school(1, "primary", "A")],
            &[school(2, "primary", "A"), school(3, "primary", "A")],
            1,
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot fit"));
    }

    proptest! {
        #[test]
        fn proposals_cover_every_potential_once_within_bounds(
            m in 1usize..8, p in 0usize..40, min in 0u32..3, extra in 0u32..5, seed in any::<u64>()
        ) {
            let levels = ["primary", "junior", "nine_year"];
            let towns = ["A", "B", "C", "D"];
            let pick = |i: usize, k: u64| (seed.wrapping_mul(6364136223846793005).wrapping_add((i as u64).wrapping_mul(1442695040888963407).wrapping_add(k)) >> 33) as usize;
            let mentors: Vec<_> = (0..m).map(|i| school(1000 + i as u128, levels[pick(i, 1) % 3], towns[pick(i, 2) % 4])).collect();
            let potentials: Vec<_> = (0..p).map(|i| school(i as u128, levels[pick(i, 3) % 3], towns[pick(i, 4) % 4])).collect();
            let max = (min + extra).max(1);
            match propose(&mentors, &potentials, min, max) {
                Ok(groups) => {
                    let ms: BTreeSet<SchoolId> = mentors.iter().map(|s| s.id).collect();
                    let ps: BTreeSet<SchoolId> = potentials.iter().map(|s| s.id).collect();
                    prop_assert!(validate(&groups, &ms, &ps, min, max).is_ok());
                }
                Err(_) => prop_assert!(p > m * max as usize || p < m * min as usize),
            }
        }
    }

    mod deciders {
        use super::super::*;
        use crate::testing::*;
        use proptest::prelude::*;

        proptest! {
            /// Valid groups set before the milestone pair every member, owe a baseline exactly
            /// for those without one, and record one event; anything else is refused whole.
            #[test]
            fn groups_are_set_exactly_when_valid_and_in_time(
                sizes in proptest::collection::vec(0usize..6, 1..4),
                stranger in any::<bool>(),
                with_baseline in proptest::collection::btree_set(0u128..30, 0..10),
                day in 0i64..60,
            ) {
                let def = changle();
                let phases = board_open(&def, PhaseKind::Pairing);
                let now = opened_at(PhaseKind::Pairing) + chrono::Duration::days(day);
                let ctx = Ctx { now, def: &def, phases: &phases };
                let mut facts = PairingFacts::default();
                let mut groups = Groups::new();
                let mut next = 0u128;
                for (g, n) in sizes.iter().enumerate() {
                    let m = SchoolId::from_u128(1000 + g as u128);
                    facts.mentors.insert(m);
                    let members: Vec<SchoolId> = (0..*n).map(|_| { next += 1; SchoolId::from_u128(next) }).collect();
                    for p in &members { facts.potentials.insert(*p); facts.names.insert(*p, format!("校{p}")); }
                    groups.insert(m, members);
                }
                if stranger { groups.insert(SchoolId::from_u128(5000), vec![]); }
                facts.baselines = with_baseline.iter().map(|b| SchoolId::from_u128(*b)).collect();
                let in_time = phases.require_active(PhaseKind::Pairing, Some("pairing_deadline"), "x", now, &def).is_ok();
                let valid = !stranger && sizes.iter().all(|n| (*n as u32) >= def.group_min && (*n as u32) <= def.group_max);
                let got = set_pairing(groups.clone(), &facts, &ctx);
                prop_assert_eq!(got.is_ok(), in_time && valid, "{:?}", got.as_ref().err());
                if let Ok(d) = got {
                    prop_assert_eq!(d.moves.len(), facts.potentials.len());
                    prop_assert_eq!(d.pairs.len(), facts.potentials.len());
                    for mv in &d.moves {
                        prop_assert_eq!(mv.extra.is_empty(), facts.baselines.contains(&mv.school));
                    }
                    prop_assert_eq!(d.effects.len(), 1);
                    prop_assert_eq!(d.groups, groups);
                }
            }

            /// A baseline is recorded exactly for a potential school, complete, during phase 3,
            /// and meets the obligation to record it.
            #[test]
            fn a_baseline_is_recorded_exactly_for_a_potential_school(
                state in 0usize..4,
                drop_one in any::<bool>(),
                day in 0i64..100,
            ) {
                let def = changle();
                let phases = board_open(&def, PhaseKind::Pairing);
                let now = opened_at(PhaseKind::Pairing) + chrono::Duration::days(day);
                let ctx = Ctx { now, def: &def, phases: &phases };
                let state = [CaseState::Potential, CaseState::Paired, CaseState::Mentor, CaseState::Seed][state];
                let mut scores: Vec<(String, f64)> = def.indicators.iter().map(|i| (i.code.clone(), 50.0)).collect();
                if drop_one { scores.pop(); }
                let active = now < phases.deadline(PhaseKind::Pairing, &def);
                let potential = matches!(state, CaseState::Potential | CaseState::Paired);
                match record_baseline(SchoolId::from_u128(1), &scores, state, &ctx) {
                    Ok(d) => {
                        prop_assert!(!drop_one && active && potential);
                        prop_assert_eq!(d.scores.len(), def.indicators.len());
                        prop_assert_eq!(d.effects.len(), 2);
                    }
                    Err(e) => {
                        prop_assert!(drop_one || !active || !potential);
                        let expected = if drop_one { "invalid" } else if !active { "deadline" } else { "baselines are for potential schools" };
                        prop_assert!(e.to_string().contains(expected), "{} vs {}", e, expected);
                    }
                }
            }

            /// Assistance is logged exactly for the mentor's own group, on known indicators, on a
            /// day not in the future, during phase 3.
            #[test]
            fn assistance_is_logged_exactly_within_the_group(
                own in any::<bool>(),
                unknown in any::<bool>(),
                ahead in -3i64..3,
                day in 0i64..100,
            ) {
                let def = changle();
                let phases = board_open(&def, PhaseKind::Pairing);
                let now = opened_at(PhaseKind::Pairing) + chrono::Duration::days(day);
                let ctx = Ctx { now, def: &def, phases: &phases };
                let today = local_date(now, def.tz());
                let mentor = SchoolId::from_u128(1);
                let mut indicators = vec![def.indicators[0].code.clone()];
                if unknown { indicators.push("nope".into()); }
                let cmd = LogAssistance { activity: Uuid::from_u128(9), mentor, potential: SchoolId::from_u128(2),
                    date: today + chrono::Duration::days(ahead), indicators, description: "送教".into(), evidence_ref: String::new() };
                let active = now < phases.deadline(PhaseKind::Pairing, &def);
                let got = log_assistance(cmd.clone(), own.then_some(mentor), &ctx);
                let ok = own && !unknown && ahead <= 0 && active;
                prop_assert_eq!(got.is_ok(), ok, "{:?}", got);
                match got {
                    Ok(d) => { prop_assert_eq!(d.activity, cmd); prop_assert_eq!(d.effects.len(), 1); }
                    Err(e) => {
                        let expected = if unknown || ahead > 0 { "invalid" } else if !active { "deadline" } else { "not in this mentor's 1+X group" };
                        prop_assert!(e.to_string().contains(expected), "{} vs {}", e, expected);
                    }
                }
            }
        }

        /// An activity dated before the campaign year (a typo of the year) is refused.
        #[test]
        fn assistance_outside_the_campaign_year_is_refused() {
            let def = changle();
            let phases = board_open(&def, PhaseKind::Pairing);
            let now = opened_at(PhaseKind::Pairing);
            let ctx = Ctx {
                now,
                def: &def,
                phases: &phases,
            };
            let mentor = SchoolId::from_u128(1);
            let cmd = LogAssistance {
                activity: Uuid::from_u128(9),
                mentor,
                potential: SchoolId::from_u128(2),
                date: NaiveDate::from_ymd_opt(def.year - 1, 12, 31).unwrap(),
                indicators: vec![def.indicators[0].code.clone()],
                description: "送教".into(),
                evidence_ref: String::new(),
            };
            match log_assistance(cmd, Some(mentor), &ctx) {
                Err(RuleError::Invalid(p)) => {
                    assert_eq!(p[0].0, "date");
                    assert!(p[0].1.contains("outside the campaign year"), "{}", p[0].1);
                }
                other => panic!("expected the date refused, got {other:?}"),
            }
        }
    }
}
