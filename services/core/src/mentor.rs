//! The mentor rule: rated excellent on all indicators by panel consensus, and accepted
//! replicable practices covering at least N distinct indicators; and the deciders of phase 2
//! (presentations, ratings, confirming the list with reasoned overrides).

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::SchoolId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::definition::CampaignDefinition;
use crate::effects::{Effect, ObligationKind};
use crate::error::RuleError;
use crate::mentor_panel::{self, MentorPanelMember};
use crate::phase::PhaseKind;
use crate::school::{CaseState, Ctx, SchoolCommand};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    Excellent,
    Good,
    Fair,
    Poor,
}

impl Rating {
    pub fn code(self) -> &'static str {
        match self {
            Rating::Excellent => "excellent",
            Rating::Good => "good",
            Rating::Fair => "fair",
            Rating::Poor => "poor",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        [Rating::Excellent, Rating::Good, Rating::Fair, Rating::Poor]
            .into_iter()
            .find(|r| r.code() == s)
    }
}

/// Panel verdicts on one declared practice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeTally {
    pub indicator: String,
    pub accepts: u32,
    pub rejects: u32,
}

pub fn practice_accepted(t: &PracticeTally, def: &CampaignDefinition) -> bool {
    let total = t.accepts + t.rejects;
    total > 0 && f64::from(t.accepts) / f64::from(total) > def.mentor.practice_accept_share
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MentorVerdict {
    pub mentor: bool,
    pub excellent: Vec<String>,
    pub practice_indicators: Vec<String>,
    pub explanation: String,
}

/// Applies the rule to one seed school. `sheets` holds one map (indicator → rating) per rater.
pub fn evaluate(
    def: &CampaignDefinition,
    presented: bool,
    sheets: &[BTreeMap<String, Rating>],
    practices: &[PracticeTally],
) -> MentorVerdict {
    let rule = &def.mentor;
    if !presented {
        return MentorVerdict {
            mentor: false,
            excellent: vec![],
            practice_indicators: vec![],
            explanation: "未提交展示汇报材料，不能认定为导师型学校".into(),
        };
    }
    let raters = sheets.len() as u32;
    let mut excellent = Vec::new();
    let mut short = Vec::new();
    for ind in &def.indicators {
        let n = sheets
            .iter()
            .filter(|s| s.get(&ind.code) == Some(&Rating::Excellent))
            .count() as f64;
        let share = if raters == 0 {
            0.0
        } else {
            n / f64::from(raters)
        };
        if raters > 0 && share + 1e-9 >= rule.excellent_share {
            excellent.push(ind.code.clone());
        } else {
            short.push(format!("{}（{}/{}优秀）", ind.name, n as u32, raters));
        }
    }
    let covered: BTreeSet<String> = practices
        .iter()
        .filter(|p| practice_accepted(p, def))
        .map(|p| p.indicator.clone())
        .collect();
    let enough_raters = raters >= rule.min_raters;
    let all_excellent = short.is_empty();
    let enough_practices = covered.len() as u32 >= rule.min_practice_indicators;
    let mentor = enough_raters && all_excellent && enough_practices;
    let names = |codes: &BTreeSet<String>| {
        codes
            .iter()
            .map(|c| def.indicator(c).map_or(c.as_str(), |i| i.name.as_str()))
            .collect::<Vec<_>>()
            .join("、")
    };
    let mut why = Vec::new();
    if !enough_raters {
        why.push(format!("评议人数 {raters} 少于要求的 {}", rule.min_raters));
    }
    if all_excellent {
        why.push(format!(
            "{} 项指标均获评优秀（{raters} 位评委）",
            def.indicators.len()
        ));
    } else {
        why.push(format!("未达优秀的指标：{}", short.join("、")));
    }
    why.push(format!(
        "通过认定的可复制性经验做法覆盖 {} 项指标{}（要求至少 {} 项）",
        covered.len(),
        if covered.is_empty() {
            String::new()
        } else {
            format!("：{}", names(&covered))
        },
        rule.min_practice_indicators
    ));
    let verdict = if mentor {
        "符合导师型学校条件"
    } else {
        "不符合导师型学校条件"
    };
    MentorVerdict {
        mentor,
        excellent,
        practice_indicators: covered.into_iter().collect(),
        explanation: format!("{verdict}：{}", why.join("；")),
    }
}

/// A practice as a seed school declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredPractice {
    /// The new practice's id, chosen by the caller.
    pub id: Uuid,
    pub indicator: String,
    pub title: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitPresentation {
    pub school: SchoolId,
    pub practices: Vec<DeclaredPractice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentationSubmitted {
    /// Trimmed, in the order declared.
    pub practices: Vec<DeclaredPractice>,
    /// The school's own move (role, phase and state are checked there).
    pub command: SchoolCommand,
}

/// A presentation declares practices on indicators of the definition.
pub fn submit_presentation(
    cmd: SubmitPresentation,
    def: &CampaignDefinition,
) -> Result<PresentationSubmitted, RuleError> {
    let problems: Vec<(String, String)> = cmd
        .practices
        .iter()
        .enumerate()
        .filter(|(_, p)| def.indicator(p.indicator.trim()).is_none())
        .map(|(i, p)| {
            (
                format!("practices[{i}].indicator"),
                format!("unknown indicator `{}`", p.indicator),
            )
        })
        .collect();
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    Ok(PresentationSubmitted {
        practices: cmd
            .practices
            .into_iter()
            .map(|p| DeclaredPractice {
                id: p.id,
                indicator: p.indicator.trim().into(),
                title: p.title.trim().into(),
                description: p.description.trim().into(),
            })
            .collect(),
        command: SchoolCommand::SubmitPresentation,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatePresentation {
    pub school: SchoolId,
    /// The rating panel member.
    pub rater: String,
    pub ratings: BTreeMap<String, Rating>,
    /// Practice id → accepted.
    pub verdicts: BTreeMap<Uuid, bool>,
}

/// What rating one presentation needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingFacts {
    pub state: CaseState,
    /// The practices the school declared: (id, title).
    pub practices: Vec<(Uuid, String)>,
    /// Who has rated it so far.
    pub raters: BTreeSet<String>,
    /// The campaign's phase-2 panel: only its members rate, never their own school.
    pub panel: Vec<MentorPanelMember>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PresentationRated {
    /// The rater's sheet, replacing an earlier one of theirs.
    pub sheet: RatePresentation,
    pub effects: Vec<Effect>,
}

impl RatePresentation {
    /// The ratings as stored: indicator → rating code.
    pub fn ratings_json(&self) -> serde_json::Value {
        serde_json::to_value(
            self.ratings
                .iter()
                .map(|(k, r)| (k.clone(), r.code()))
                .collect::<BTreeMap<_, _>>(),
        )
        .expect("serializes")
    }

    /// The verdicts as stored: practice id → accepted.
    pub fn verdicts_json(&self) -> serde_json::Value {
        serde_json::to_value(
            self.verdicts
                .iter()
                .map(|(k, a)| (k.to_string(), *a))
                .collect::<BTreeMap<_, _>>(),
        )
        .expect("serializes")
    }
}

/// An appointed member of the phase-2 panel, not affiliated with the school, rates a presented
/// school: every indicator once, a verdict on every declared practice and nothing else, while
/// phase 2 is active. Once `mentor.min_raters` members have rated, the rating obligation is met.
pub fn rate_presentation(
    cmd: RatePresentation,
    facts: &RatingFacts,
    ctx: &Ctx<'_>,
) -> Result<PresentationRated, RuleError> {
    let action = "rate a presentation";
    ctx.phases
        .require_active(PhaseKind::MentorSelection, None, action, ctx.now, ctx.def)?;
    mentor_panel::may_rate(&facts.panel, &cmd.rater, cmd.school)?;
    if facts.state != CaseState::Presented {
        return Err(RuleError::IllegalTransition {
            action,
            state: facts.state.code(),
            state_label: facts.state.label(),
        });
    }
    let mut problems = Vec::new();
    for ind in &ctx.def.indicators {
        if !cmd.ratings.contains_key(&ind.code) {
            problems.push((
                "ratings".to_string(),
                format!("missing indicator `{}` ({})", ind.code, ind.name),
            ));
        }
    }
    for code in cmd.ratings.keys() {
        if ctx.def.indicator(code).is_none() {
            problems.push(("ratings".into(), format!("unknown indicator `{code}`")));
        }
    }
    let declared: BTreeSet<Uuid> = facts.practices.iter().map(|p| p.0).collect();
    for (id, title) in &facts.practices {
        if !cmd.verdicts.contains_key(id) {
            problems.push((
                "verdicts".into(),
                format!("missing a verdict on practice {id} ({title})"),
            ));
        }
    }
    for id in cmd.verdicts.keys() {
        if !declared.contains(id) {
            problems.push((
                "verdicts".into(),
                format!("practice {id} was not declared by this school"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    let mut effects = vec![Effect::event(
        "presentation.rated",
        Some(cmd.school),
        serde_json::Value::Null,
        cmd.ratings_json(),
        None,
    )];
    let raters = facts.raters.len() as u32 + u32::from(!facts.raters.contains(&cmd.rater));
    if raters >= ctx.def.mentor.min_raters {
        effects.push(Effect::CloseObligation {
            kind: ObligationKind::RatePresentation,
            school: Some(cmd.school),
            key: String::new(),
        });
    }
    Ok(PresentationRated {
        sheet: cmd,
        effects,
    })
}

/// The office's reasoned override of the rule's verdict for one seed school.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentorOverride {
    pub mentor: bool,
    pub reason: String,
}

/// One seed school's confirmed role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentorDecision {
    pub school: SchoolId,
    pub mentor: bool,
    /// The office's reason, when it overrode the rule.
    pub note: Option<String>,
    /// The school's own move.
    pub command: SchoolCommand,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MentorsConfirmed {
    /// One per seed school, in the order given.
    pub decisions: Vec<MentorDecision>,
    /// To record after the schools' own effects.
    pub effects: Vec<Effect>,
}

/// Confirms the mentor list once, while phase 2 is active: each seed school as the rule found
/// it unless the office overrode it with a reason (an override agreeing with the rule is no
/// override). Every override must name a seed school.
pub fn confirm_mentors(
    overrides: &BTreeMap<SchoolId, MentorOverride>,
    confirmed: bool,
    verdicts: &[(SchoolId, MentorVerdict)],
    ctx: &Ctx<'_>,
) -> Result<MentorsConfirmed, RuleError> {
    ctx.phases.require_active(
        PhaseKind::MentorSelection,
        None,
        "confirm the mentor list",
        ctx.now,
        ctx.def,
    )?;
    if confirmed {
        return Err(RuleError::MentorsConfirmed);
    }
    let known: BTreeSet<SchoolId> = verdicts.iter().map(|(s, _)| *s).collect();
    let problems: Vec<(String, String)> = overrides
        .keys()
        .enumerate()
        .filter(|(_, id)| !known.contains(id))
        .map(|(i, _)| {
            (
                format!("overrides[{i}].school_id"),
                "not a seed school of this campaign".to_string(),
            )
        })
        .collect();
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    let decisions: Vec<MentorDecision> = verdicts
        .iter()
        .map(|(school, verdict)| {
            let (mentor, note) = match overrides.get(school) {
                Some(o) if o.mentor != verdict.mentor => (o.mentor, Some(o.reason.clone())),
                _ => (verdict.mentor, None),
            };
            let reason = note.as_ref().map_or_else(
                || verdict.explanation.clone(),
                |n| format!("督导室调整：{n}；{}", verdict.explanation),
            );
            MentorDecision {
                school: *school,
                mentor,
                note,
                command: SchoolCommand::ConfirmMentor {
                    mentor,
                    reason: Some(reason),
                },
            }
        })
        .collect();
    let mentors: Vec<SchoolId> = decisions
        .iter()
        .filter(|d| d.mentor)
        .map(|d| d.school)
        .collect();
    let effects = vec![Effect::event(
        "mentors.confirmed",
        None,
        serde_json::Value::Null,
        serde_json::json!({ "mentors": mentors }),
        None,
    )];
    Ok(MentorsConfirmed { decisions, effects })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHANGLE: &str = include_str!("../../../deploy/campaigns/changle-2020.toml");

    fn sheet(def: &CampaignDefinition, r: Rating) -> BTreeMap<String, Rating> {
        def.indicators.iter().map(|i| (i.code.clone(), r)).collect()
    }

    fn tally(ind: &str, a: u32, r: u32) -> PracticeTally {
        PracticeTally {
            indicator: ind.into(),
            accepts: a,
            rejects: r,
        }
    }

    #[test]
    fn excellent_everywhere_and_two_practice_indicators_make_a_mentor() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        let sheets = vec![
            sheet(&def, Rating::Excellent),
            sheet(&def, Rating::Excellent),
            sheet(&def, Rating::Excellent),
        ];
        let v = evaluate(
            &def,
            true,
            &sheets,
            &[tally("teachers", 2, 0), tally("culture", 2, 0)],
        );
        assert!(v.mentor, "{}", v.explanation);
        assert!(v.explanation.contains("教师专业成长") && v.explanation.contains("校园文化"));
        // Two practices on one indicator are not enough.
        let v = evaluate(
            &def,
            true,
            &sheets,
            &[tally("teachers", 2, 0), tally("teachers", 2, 0)],
        );
        assert!(!v.mentor);
        // A tie is not acceptance.
        let v = evaluate(
            &def,
            true,
            &sheets,
            &[tally("teachers", 2, 0), tally("culture", 1, 1)],
        );
        assert!(!v.mentor);
    }

    #[test]
    fn fewer_raters_than_min_raters_make_no_mentor_and_say_so() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        assert_eq!(def.mentor.min_raters, 3);
        let sheets = vec![
            sheet(&def, Rating::Excellent),
            sheet(&def, Rating::Excellent),
        ];
        let v = evaluate(
            &def,
            true,
            &sheets,
            &[tally("teachers", 2, 0), tally("culture", 2, 0)],
        );
        assert!(!v.mentor);
        assert!(
            v.explanation.contains("评议人数 2 少于要求的 3"),
            "{}",
            v.explanation
        );
    }

    #[test]
    fn one_good_rating_breaks_consensus_and_is_named() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        let mut third = sheet(&def, Rating::Excellent);
        third.insert("teaching".into(), Rating::Good);
        let v = evaluate(
            &def,
            true,
            &[
                sheet(&def, Rating::Excellent),
                sheet(&def, Rating::Excellent),
                third,
            ],
            &[tally("teachers", 1, 0), tally("culture", 1, 0)],
        );
        assert!(!v.mentor);
        assert!(
            v.explanation.contains("教学质量（2/3优秀）"),
            "{}",
            v.explanation
        );
    }

    proptest! {
        #[test]
        fn mentor_iff_all_excellent_and_enough_distinct_indicators(
            ratings in proptest::collection::vec(proptest::collection::vec(0u8..4, 8), 0..5),
            practices in proptest::collection::vec((0usize..8, 0u32..4, 0u32..4), 0..6),
        ) {
            let def = CampaignDefinition::parse(CHANGLE).unwrap();
            let all = [Rating::Excellent, Rating::Good, Rating::Fair, Rating::Poor];
            let sheets: Vec<BTreeMap<String, Rating>> = ratings.iter().map(|row| {
                def.indicators.iter().zip(row).map(|(i, r)| (i.code.clone(), all[*r as usize])).collect()
            }).collect();
            let tallies: Vec<_> = practices.iter().map(|(i, a, r)| tally(&def.indicators[*i].code, *a, *r)).collect();
            let v = evaluate(&def, true, &sheets, &tallies);
            let all_excellent = !sheets.is_empty() && sheets.iter().all(|s| s.values().all(|r| *r == Rating::Excellent));
            let distinct: BTreeSet<_> = tallies.iter().filter(|t| t.accepts > t.rejects).map(|t| t.indicator.clone()).collect();
            let enough = sheets.len() as u32 >= def.mentor.min_raters;
            prop_assert_eq!(v.mentor, enough && all_excellent && distinct.len() >= 2);
        }
    }

    mod deciders {
        use super::super::*;
        use crate::testing::*;
        use proptest::prelude::*;

        fn verdict(mentor: bool) -> MentorVerdict {
            MentorVerdict {
                mentor,
                excellent: vec![],
                practice_indicators: vec![],
                explanation: "规则".into(),
            }
        }

        proptest! {
            /// A rating is accepted exactly when phase 2 is active, the rater is an appointed
            /// member not affiliated with the school, the school has presented, and the sheet
            /// rates every indicator and judges every declared practice, nothing else; the
            /// rating obligation is met once enough members have rated. A refused rating has
            /// no effect to record, whoever asks.
            #[test]
            fn a_rating_is_accepted_exactly_when_complete(
                day in 0i64..80,
                presented in any::<bool>(),
                drop_rating in any::<bool>(),
                extra_verdict in any::<bool>(),
                practices in 0u128..4,
                others in proptest::collection::btree_set("[a-c]", 0..3),
                again in any::<bool>(),
                min_raters in 1u32..4,
                member in any::<bool>(),
                affiliated in any::<bool>(),
            ) {
                let mut def = changle();
                def.mentor.min_raters = min_raters;
                let phases = board_open(&def, PhaseKind::MentorSelection);
                let now = opened_at(PhaseKind::MentorSelection) + chrono::Duration::days(day);
                let ctx = Ctx { now, def: &def, phases: &phases };
                let mut ratings: BTreeMap<String, Rating> = def.indicators.iter().map(|i| (i.code.clone(), Rating::Good)).collect();
                if drop_rating { ratings.pop_first(); }
                let mut verdicts: BTreeMap<Uuid, bool> = (0..practices).map(|p| (Uuid::from_u128(p), true)).collect();
                if extra_verdict { verdicts.insert(Uuid::from_u128(99), false); }
                let mut raters = others.clone();
                if again { raters.insert("me".into()); }
                let facts = RatingFacts {
                    state: if presented { CaseState::Presented } else { CaseState::Seed },
                    practices: (0..practices).map(|p| (Uuid::from_u128(p), format!("做法{p}"))).collect(),
                    raters: raters.clone(),
                    panel: [("me", affiliated), ("a", false), ("b", false), ("c", false)]
                        .into_iter()
                        .filter(|(a, _)| member || *a != "me")
                        .map(|(a, own)| MentorPanelMember {
                            actor: a.into(),
                            name: format!("评委{a}"),
                            affiliation: crate::acceptance::Affiliation::Department,
                            school: own.then(|| SchoolId::from_u128(7)),
                        })
                        .collect(),
                };
                let cmd = RatePresentation { school: SchoolId::from_u128(7), rater: "me".into(), ratings, verdicts };
                let active = now < phases.deadline(PhaseKind::MentorSelection, &def);
                let got = rate_presentation(cmd.clone(), &facts, &ctx);
                let may = member && !affiliated;
                prop_assert_eq!(got.is_ok(), active && may && presented && !drop_rating && !extra_verdict, "{:?}", got);
                match got {
                    Ok(d) => {
                        prop_assert_eq!(&d.sheet, &cmd);
                        raters.insert("me".into());
                        let met = raters.len() as u32 >= min_raters;
                        prop_assert_eq!(d.effects.len(), 1 + usize::from(met));
                    }
                    Err(e) => {
                        let expected = if !active { "deadline" } else if !member { "not on this campaign's phase-2 panel" } else if affiliated { "recused" } else if !presented { "cannot rate a presentation" } else { "invalid" };
                        prop_assert!(e.to_string().contains(expected), "{} vs {}", e, expected);
                    }
                }
            }

            /// The list is confirmed once; every seed school keeps the rule's verdict unless an
            /// override differs from it, and the override's reason is recorded with it.
            #[test]
            fn the_mentor_list_follows_the_rule_but_for_reasoned_overrides(
                rule in proptest::collection::vec(any::<bool>(), 1..8),
                overrides in proptest::collection::btree_map(0u128..10, any::<bool>(), 0..4),
                confirmed in any::<bool>(),
            ) {
                let def = changle();
                let phases = board_open(&def, PhaseKind::MentorSelection);
                let ctx = Ctx { now: opened_at(PhaseKind::MentorSelection), def: &def, phases: &phases };
                let verdicts: Vec<(SchoolId, MentorVerdict)> = rule.iter().enumerate().map(|(i, m)| (SchoolId::from_u128(i as u128), verdict(*m))).collect();
                let overrides: BTreeMap<SchoolId, MentorOverride> = overrides.into_iter().map(|(s, m)| (SchoolId::from_u128(s), MentorOverride { mentor: m, reason: "调整".into() })).collect();
                let all_known = overrides.keys().all(|s| (s.as_u128() as usize) < rule.len());
                match confirm_mentors(&overrides, confirmed, &verdicts, &ctx) {
                    Ok(d) => {
                        prop_assert!(!confirmed && all_known);
                        prop_assert_eq!(d.decisions.len(), rule.len());
                        for (dec, (id, v)) in d.decisions.iter().zip(&verdicts) {
                            prop_assert_eq!(dec.school, *id);
                            let expected = overrides.get(id).map_or(v.mentor, |o| o.mentor);
                            prop_assert_eq!(dec.mentor, expected);
                            prop_assert_eq!(dec.note.is_some(), expected != v.mentor);
                        }
                        prop_assert_eq!(d.effects.len(), 1);
                    }
                    Err(e) => {
                        prop_assert!(confirmed || !all_known);
                        if confirmed { prop_assert_eq!(e, RuleError::MentorsConfirmed); }
                        else { prop_assert!(matches!(e, RuleError::Invalid(_))); }
                    }
                }
            }

            /// A presentation is accepted exactly when each practice names a known indicator.
            #[test]
            fn a_presentation_names_known_indicators(known in proptest::collection::vec(any::<bool>(), 1..6)) {
                let def = changle();
                let practices = known.iter().enumerate().map(|(i, k)| DeclaredPractice {
                    id: Uuid::from_u128(i as u128),
                    indicator: if *k { format!(" {} ", def.indicators[0].code) } else { "nope".into() },
                    title: " 青蓝工程 ".into(),
                    description: "d".into(),
                }).collect();
                match submit_presentation(SubmitPresentation { school: SchoolId::nil(), practices }, &def) {
                    Ok(d) => {
                        prop_assert!(known.iter().all(|k| *k));
                        prop_assert!(d.practices.iter().all(|p| p.title == "青蓝工程" && p.indicator == def.indicators[0].code));
                    }
                    Err(RuleError::Invalid(p)) => prop_assert_eq!(p.len(), known.iter().filter(|k| !**k).count()),
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
        }
    }
}
