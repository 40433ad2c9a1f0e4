//! 1+X pairing: every potential school in exactly one mentor's group, group sizes within the
//! configured bounds, and a balanced proposal (same school level first, then same town, then
//! even load) that the office may edit.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::error::RuleError;

/// What the pairing rules need to know about a school.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolInfo {
    pub id: Uuid,
    pub level: String,
    pub town: String,
}

/// mentor id → its potential schools.
pub type Groups = BTreeMap<Uuid, Vec<Uuid>>;

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
    mentors: &BTreeSet<Uuid>,
    potentials: &BTreeSet<Uuid>,
    min: u32,
    max: u32,
) -> Result<(), RuleError> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<Uuid, Uuid> = BTreeMap::new();
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
        .map(Uuid::to_string)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn school(i: u128, level: &str, town: &str) -> SchoolInfo {
        SchoolInfo {
            id: Uuid::from_u128(i),
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
        assert_eq!(g[&Uuid::from_u128(2)], vec![Uuid::from_u128(10)]);
        assert_eq!(g[&Uuid::from_u128(3)], vec![Uuid::from_u128(11)]);
        assert_eq!(g[&Uuid::from_u128(1)], vec![Uuid::from_u128(12)]);
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
                    let ms: BTreeSet<Uuid> = mentors.iter().map(|s| s.id).collect();
                    let ps: BTreeSet<Uuid> = potentials.iter().map(|s| s.id).collect();
                    prop_assert!(validate(&groups, &ms, &ps, min, max).is_ok());
                }
                Err(_) => prop_assert!(p > m * max as usize || p < m * min as usize),
            }
        }
    }
}
