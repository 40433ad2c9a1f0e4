//! The award rules of September: exactly one class per school, each with its reasoning.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use crate::ids::SchoolId;
use serde::Serialize;
use uuid::Uuid;

pub use crate::award_class::AwardClass;

use crate::definition::{
    AwardBasis, CampaignDefinition, ConsequenceRule, SeedWithoutPresentation, Subject,
};
use crate::effects::Effect;
use crate::error::RuleError;
use crate::phase_kind::PhaseKind;
use crate::school::{CaseState, Ctx};
use crate::scoring::{AcceptanceResult, round2};

/// A class's title as the definition's `[publication.awards]` writes it (不予评定 has none).
pub fn title(def: &CampaignDefinition, class: AwardClass) -> String {
    let t = &def.publication.awards;
    match class {
        AwardClass::Contribution => t.contribution.clone(),
        AwardClass::Model => t.model.clone(),
        AwardClass::Progress => t.progress.clone(),
        AwardClass::Compliance => t.compliance.clone(),
        AwardClass::Veto => t.veto.clone(),
        AwardClass::Withheld => class.label().into(),
    }
}

/// A potential school's acceptance result and baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct PotentialFacts {
    pub id: SchoolId,
    pub result: Option<AcceptanceResult>,
    pub baseline: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MentorFacts {
    pub id: SchoolId,
    pub activities: u32,
    pub group: Vec<SchoolId>,
    /// Distinct indicators its logged activities cover.
    pub covered: u32,
}

/// A seed school that is not a mentor, and whether it presented in phase 2.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedFacts {
    pub id: SchoolId,
    pub presented: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub school: SchoolId,
    pub class: AwardClass,
    pub reason: String,
}

/// One indicator's score on the definition's `award_basis`: the on-site score, or the weighted
/// score (report and on-site) the results notice publishes.
pub fn basis_score(def: &CampaignDefinition, r: &AcceptanceResult, code: &str) -> f64 {
    let onsite = r.onsite.get(code).copied().unwrap_or(0.0);
    match def.scoring.award_basis {
        AwardBasis::Onsite => onsite,
        AwardBasis::Weighted => {
            round2(def.scoring.report_weight * r.report + def.scoring.onsite_weight * onsite)
        }
    }
}

/// Mean per-indicator gain of the basis scores over the baseline.
pub fn gain(def: &CampaignDefinition, p: &PotentialFacts) -> Option<f64> {
    let r = p.result.as_ref()?;
    let diffs: Vec<f64> = def
        .indicators
        .iter()
        .map(|i| basis_score(def, r, &i.code) - p.baseline.get(&i.code).copied().unwrap_or(0.0))
        .collect();
    Some(round2(diffs.iter().sum::<f64>() / diffs.len() as f64))
}

/// The compliance bar: each indicator at or above the pass line, except at most
/// `max_near_misses` within `near_miss_margin` below it. Returns (meets, explanation).
pub fn compliance(def: &CampaignDefinition, r: &AcceptanceResult) -> (bool, String) {
    let sc = &def.scoring;
    let name = |c: &str| def.indicator(c).map_or(c.to_string(), |i| i.name.clone());
    let mut near = Vec::new();
    let mut missed = Vec::new();
    for ind in &def.indicators {
        let v = basis_score(def, r, &ind.code);
        if v >= sc.pass_line {
            continue;
        }
        if v >= sc.pass_line - sc.near_miss_margin {
            near.push(format!("{}（{v}）", name(&ind.code)));
        } else {
            missed.push(format!("{}（{v}）", name(&ind.code)));
        }
    }
    let meets = missed.is_empty() && near.len() as u32 <= sc.max_near_misses;
    let why = if meets && near.is_empty() {
        format!("各项指标均达到合格线 {}", sc.pass_line)
    } else if meets {
        format!(
            "基本达标：{} 接近合格线（允许 {} 项）",
            near.join("、"),
            sc.max_near_misses
        )
    } else if !missed.is_empty() {
        format!("未达合格线 {}：{}", sc.pass_line, missed.join("、"))
    } else {
        format!(
            "接近合格线的指标过多：{}（允许 {} 项）",
            near.join("、"),
            sc.max_near_misses
        )
    };
    (meets, why)
}

/// Proposes exactly one class for every potential school, mentor and other seed school.
pub fn propose(
    def: &CampaignDefinition,
    potentials: &[PotentialFacts],
    mentors: &[MentorFacts],
    other_seeds: &[SeedFacts],
) -> Vec<Proposal> {
    let sc = &def.scoring;
    let basis = sc.award_basis.label(sc);
    let gains: BTreeMap<SchoolId, Option<f64>> =
        potentials.iter().map(|p| (p.id, gain(def, p))).collect();
    // Top share by gain among all potential schools (ties at the cut all count).
    let mut sorted: Vec<f64> = gains.values().flatten().copied().collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let top_n = (sc.progress_top_share * potentials.len() as f64).floor() as usize;
    let cut = if top_n == 0 {
        f64::INFINITY
    } else {
        sorted.get(top_n - 1).copied().unwrap_or(f64::INFINITY)
    };
    let mut out = Vec::new();
    for p in potentials {
        let Some(r) = &p.result else {
            out.push(Proposal {
                school: p.id,
                class: AwardClass::Veto,
                reason: "未完成验收评分，不能认定达标".into(),
            });
            continue;
        };
        let g = gains[&p.id].unwrap_or(0.0);
        let (meets, why) = compliance(def, r);
        let (class, reason) = if !meets {
            (
                AwardClass::Veto,
                format!("{why}；综合得分 {}；{basis}", r.final_score),
            )
        } else if g >= sc.progress_gain || (g > 0.0 && g >= cut) {
            let basis_why = if g >= sc.progress_gain {
                format!("提升幅度 {g} 分，达到 {} 分的进步标准", sc.progress_gain)
            } else {
                format!(
                    "提升幅度 {g} 分，位列前 {}%",
                    (sc.progress_top_share * 100.0).round()
                )
            };
            (AwardClass::Progress, format!("{why}；{basis_why}；{basis}"))
        } else {
            (
                AwardClass::Compliance,
                format!("{why}；提升幅度 {g} 分；{basis}"),
            )
        };
        out.push(Proposal {
            school: p.id,
            class,
            reason,
        });
    }
    for m in mentors {
        let group_gains: Vec<f64> = m
            .group
            .iter()
            .filter_map(|p| gains.get(p).copied().flatten())
            .collect();
        let mean = if group_gains.is_empty() {
            0.0
        } else {
            round2(group_gains.iter().sum::<f64>() / group_gains.len() as f64)
        };
        let strong = m.activities >= sc.contribution_min_activities;
        let notable = !group_gains.is_empty() && mean >= sc.contribution_group_gain;
        let min_cov = sc.contribution_min_indicator_coverage;
        let all_round = m.covered >= min_cov;
        let total = def.indicators.len();
        let (class, reason) = if strong && notable && all_round {
            let coverage = if min_cov > 0 {
                format!("，帮扶覆盖 {}/{total} 项指标（要求 {min_cov}）", m.covered)
            } else {
                String::new()
            };
            (
                AwardClass::Contribution,
                format!(
                    "帮扶活动 {} 次（要求 {}），结对学校平均提升 {mean} 分（要求 {}）{coverage}；{basis}",
                    m.activities, sc.contribution_min_activities, sc.contribution_group_gain
                ),
            )
        } else {
            let mut why = Vec::new();
            if !strong {
                why.push(format!(
                    "帮扶活动 {} 次，少于 {} 次",
                    m.activities, sc.contribution_min_activities
                ));
            }
            if !notable {
                why.push(format!(
                    "结对学校平均提升 {mean} 分，未达 {} 分",
                    sc.contribution_group_gain
                ));
            }
            if !all_round {
                why.push(format!(
                    "帮扶覆盖 {}/{total} 项指标，少于 {min_cov} 项",
                    m.covered
                ));
            }
            (AwardClass::Model, format!("导师型学校；{}", why.join("；")))
        };
        out.push(Proposal {
            school: m.id,
            class,
            reason,
        });
    }
    for s in other_seeds {
        let (class, reason) = if s.presented {
            (AwardClass::Model, "标杆种子校（非导师型学校）".to_string())
        } else {
            let class = match def.awards.seed_without_presentation {
                SeedWithoutPresentation::None => AwardClass::Withheld,
                SeedWithoutPresentation::Model => AwardClass::Model,
                SeedWithoutPresentation::Compliance => AwardClass::Compliance,
            };
            (
                class,
                format!(
                    "标杆种子校未参加导师型学校展示评选，按本次创建规定为{}",
                    class.label()
                ),
            )
        };
        out.push(Proposal {
            school: s.id,
            class,
            reason,
        });
    }
    out
}

/// Everything the award rules read about a campaign, loaded by the caller.
#[derive(Debug, Clone, Default)]
pub struct AwardFacts {
    /// Every school of the campaign with its state, in the campaign's order.
    pub schools: Vec<(SchoolId, CaseState)>,
    /// Final acceptance results.
    pub results: BTreeMap<SchoolId, AcceptanceResult>,
    pub baselines: BTreeMap<SchoolId, BTreeMap<String, f64>>,
    /// 1+X groups: mentor → its potential schools.
    pub groups: BTreeMap<SchoolId, Vec<SchoolId>>,
    /// Logged assistance activities per mentor.
    pub activities: BTreeMap<SchoolId, u32>,
    /// Indicators each mentor's logged activities cover.
    pub coverage: BTreeMap<SchoolId, BTreeSet<String>>,
    /// Seed schools that submitted a presentation in phase 2.
    pub presented: BTreeSet<SchoolId>,
    /// Each school's principal (a person's stable id) when the awards are confirmed.
    pub principals: BTreeMap<SchoolId, Uuid>,
}

/// Sorts the campaign's schools into potential schools, mentors and other seed schools (also
/// once awarded, so proposing again after confirmation gives the same list) and proposes.
pub fn proposals(def: &CampaignDefinition, f: &AwardFacts) -> Vec<Proposal> {
    use CaseState as S;
    let members: BTreeSet<SchoolId> = f.groups.values().flatten().copied().collect();
    let potentials: Vec<PotentialFacts> = f
        .schools
        .iter()
        .filter(|(id, st)| {
            *st == S::Paired
                || (members.contains(id)
                    && matches!(
                        st,
                        S::ProgressAward | S::ComplianceAward | S::Vetoed | S::AwardWithheld
                    ))
        })
        .map(|(id, _)| PotentialFacts {
            id: *id,
            result: f.results.get(id).cloned(),
            baseline: f.baselines.get(id).cloned().unwrap_or_default(),
        })
        .collect();
    let mentors: Vec<MentorFacts> = f
        .schools
        .iter()
        .filter(|(id, st)| {
            !members.contains(id)
                && (matches!(st, S::Mentor | S::ContributionAward) || f.groups.contains_key(id))
        })
        .map(|(id, _)| MentorFacts {
            id: *id,
            activities: f.activities.get(id).copied().unwrap_or(0),
            group: f.groups.get(id).cloned().unwrap_or_default(),
            covered: f.coverage.get(id).map_or(0, |c| c.len() as u32),
        })
        .collect();
    let others: Vec<SeedFacts> = f
        .schools
        .iter()
        .filter(|(id, st)| {
            !members.contains(id)
                && !f.groups.contains_key(id)
                && matches!(
                    st,
                    S::SeedNonMentor
                        | S::ModelAward
                        | S::ComplianceAward
                        | S::Vetoed
                        | S::AwardWithheld
                )
        })
        .map(|(id, _)| SeedFacts {
            id: *id,
            presented: f.presented.contains(id),
        })
        .collect();
    propose(def, &potentials, &mentors, &others)
}

/// ProposeAwards: awards are proposed on final results only.
pub fn propose_awards(
    results_final: bool,
    def: &CampaignDefinition,
    f: &AwardFacts,
) -> Result<Vec<Proposal>, RuleError> {
    if !results_final {
        return Err(RuleError::ResultsNotFinal);
    }
    Ok(proposals(def, f))
}

/// The office's change to one proposal; `index` is its position in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub index: usize,
    pub class: AwardClass,
    pub reason: String,
}

/// One school's confirmed award.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmed {
    pub school: SchoolId,
    pub class: AwardClass,
    pub proposed: AwardClass,
    /// The proposal's reasoning.
    pub reason: String,
    /// Empty unless the office changed the class.
    pub override_reason: String,
}

impl Confirmed {
    /// The reason recorded on the school's case: the proposal's, or the override with both.
    pub fn case_reason(&self) -> String {
        if self.override_reason.is_empty() {
            self.reason.clone()
        } else {
            format!(
                "督导室调整为{}：{}（原建议：{}，{}）",
                self.class.label(),
                self.override_reason,
                self.proposed.label(),
                self.reason
            )
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AwardsConfirmed {
    /// In proposal order; each becomes a `ConfirmAward` school command.
    pub awards: Vec<Confirmed>,
    /// 三、结果运用: what the confirmed awards mean for each school and its principal.
    pub consequences: Vec<Consequence>,
    pub effects: Vec<Effect>,
}

/// One consequence of a confirmed award (三、结果运用), for a school or its principal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consequence {
    pub school: SchoolId,
    /// The school's principal when the award was confirmed (also for school consequences,
    /// so "the principal of a vetoed school" stays known after a change).
    pub principal: Option<Uuid>,
    pub class: AwardClass,
    pub subject: Subject,
    pub kind: String,
    pub label: String,
    pub year: i32,
    /// Last day in force, when the rule is limited to the year (年内).
    pub valid_until: Option<NaiveDate>,
}

/// The consequences the definition gives each confirmed award; a consequence for the principal
/// is recorded only when the school has one.
pub fn consequences(
    rules: &[ConsequenceRule],
    year: i32,
    awards: &[Confirmed],
    principals: &BTreeMap<SchoolId, Uuid>,
) -> Vec<Consequence> {
    let mut out = Vec::new();
    for a in awards {
        let principal = principals.get(&a.school).copied();
        for r in rules.iter().filter(|r| r.class == a.class) {
            if r.subject == Subject::Principal && principal.is_none() {
                continue;
            }
            out.push(Consequence {
                school: a.school,
                principal,
                class: a.class,
                subject: r.subject,
                kind: r.kind.clone(),
                label: r.label.clone(),
                year,
                valid_until: r
                    .until_year_end
                    .then(|| NaiveDate::from_ymd_opt(year, 12, 31))
                    .flatten(),
            });
        }
    }
    out
}

/// ConfirmAwards: once, during the awards phase, on the proposals with the office's overrides;
/// an override must name a school that has a proposal. An override to the proposed class is
/// no override.
pub fn confirm_awards(
    overrides: &BTreeMap<SchoolId, Override>,
    confirmed: bool,
    f: &AwardFacts,
    ctx: &Ctx<'_>,
) -> Result<AwardsConfirmed, RuleError> {
    ctx.phases.require_active(
        PhaseKind::Awards,
        None,
        "confirm the award list",
        ctx.now,
        ctx.def,
    )?;
    if confirmed {
        return Err(RuleError::AwardsConfirmed);
    }
    let props = proposals(ctx.def, f);
    let mut unknown: Vec<(usize, String)> = overrides
        .iter()
        .filter(|(id, _)| !props.iter().any(|p| p.school == **id))
        .map(|(_, o)| {
            (
                o.index,
                "not a school with an award proposal in this campaign".to_string(),
            )
        })
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(RuleError::Invalid(
            unknown
                .into_iter()
                .map(|(i, r)| (format!("overrides[{i}].school_id"), r))
                .collect(),
        ));
    }
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    let awards: Vec<Confirmed> = props
        .into_iter()
        .map(|p| {
            let (class, override_reason) = match overrides.get(&p.school) {
                Some(o) if o.class != p.class => (o.class, o.reason.clone()),
                _ => (p.class, String::new()),
            };
            *counts.entry(class.code()).or_default() += 1;
            Confirmed {
                school: p.school,
                class,
                proposed: p.class,
                reason: p.reason,
                override_reason,
            }
        })
        .collect();
    let consequences = consequences(&ctx.def.consequences, ctx.def.year, &awards, &f.principals);
    let mut effects = vec![Effect::event(
        "awards.confirmed",
        None,
        serde_json::Value::Null,
        serde_json::json!({ "counts": counts }),
        None,
    )];
    for c in &consequences {
        effects.push(Effect::event(
            "consequence.recorded",
            Some(c.school),
            serde_json::Value::Null,
            serde_json::to_value(c).expect("consequence serializes"),
            None,
        ));
    }
    Ok(AwardsConfirmed {
        awards,
        consequences,
        effects,
    })
}

/// The awards exit criteria (the award list confirmed), kept with the other phases' in
/// `exit_criteria`.
pub use crate::exit_criteria::awards_items as exit_items;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn def() -> CampaignDefinition {
        CampaignDefinition::parse(include_str!("../../../deploy/campaigns/changle-2020.toml"))
            .unwrap()
    }

    fn facts(def: &CampaignDefinition, i: u128, onsite: &[f64], base: f64) -> PotentialFacts {
        let onsite: BTreeMap<String, f64> = def
            .indicators
            .iter()
            .zip(onsite.iter().cycle())
            .map(|(d, v)| (d.code.clone(), *v))
            .collect();
        let mean = onsite.values().sum::<f64>() / onsite.len() as f64;
        PotentialFacts {
            id: SchoolId::from_u128(i),
            result: Some(AcceptanceResult {
                report: 80.0,
                passes: onsite
                    .iter()
                    .map(|(k, v)| (k.clone(), *v >= 60.0))
                    .collect(),
                onsite,
                onsite_mean: mean,
                final_score: mean,
            }),
            baseline: def
                .indicators
                .iter()
                .map(|d| (d.code.clone(), base))
                .collect(),
        }
    }

    #[test]
    fn progress_compliance_and_veto() {
        let d = def();
        let ps = [
            facts(&d, 1, &[80.0], 60.0),
            facts(&d, 2, &[65.0], 62.0),
            facts(&d, 3, &[70.0, 57.0], 60.0),
            facts(&d, 4, &[70.0, 50.0], 40.0),
            facts(&d, 5, &[64.0], 63.0),
        ];
        let out = propose(&d, &ps, &[], &[]);
        let class = |i: u128| {
            out.iter()
                .find(|p| p.school == SchoolId::from_u128(i))
                .unwrap()
                .class
        };
        assert_eq!(class(1), AwardClass::Progress); // gain 20
        assert_eq!(class(2), AwardClass::Compliance); // gain 3, not top 20% (top 1 of 5)
        assert_eq!(class(4), AwardClass::Veto); // 50 is more than 5 below the line
        // 57 is one near miss (allowed) — but school 3 has four of them (cycle), so veto.
        assert_eq!(class(3), AwardClass::Veto);
        assert!(
            out.iter()
                .find(|p| p.school == SchoolId::from_u128(3))
                .unwrap()
                .reason
                .contains("接近合格线的指标过多")
        );
        assert_eq!(class(5), AwardClass::Compliance);
    }

    #[test]
    fn mentors_need_strong_assistance_and_notable_group_progress() {
        let d = def();
        let ps = [facts(&d, 1, &[80.0], 60.0), facts(&d, 2, &[65.0], 62.0)];
        let m = [
            MentorFacts {
                id: SchoolId::from_u128(10),
                activities: 5,
                group: vec![SchoolId::from_u128(1)],
                covered: 8,
            },
            MentorFacts {
                id: SchoolId::from_u128(11),
                activities: 9,
                group: vec![SchoolId::from_u128(2)],
                covered: 8,
            },
            MentorFacts {
                id: SchoolId::from_u128(12),
                activities: 1,
                group: vec![SchoolId::from_u128(1)],
                covered: 8,
            },
        ];
        let seeds = [SeedFacts {
            id: SchoolId::from_u128(20),
            presented: true,
        }];
        let out = propose(&d, &ps, &m, &seeds);
        let class = |i: u128| {
            out.iter()
                .find(|p| p.school == SchoolId::from_u128(i))
                .unwrap()
                .class
        };
        assert_eq!(class(10), AwardClass::Contribution);
        assert_eq!(class(11), AwardClass::Model);
        assert_eq!(class(12), AwardClass::Model);
        assert_eq!(class(20), AwardClass::Model);
    }

    proptest! {
        #[test]
        fn exactly_one_class_per_school_and_veto_iff_bar_missed(
            scores in proptest::collection::vec((proptest::collection::vec(30.0f64..100.0, 8), 30.0f64..90.0), 1..30),
        ) {
            let d = def();
            let ps: Vec<PotentialFacts> = scores.iter().enumerate().map(|(i, (s, b))| facts(&d, i as u128, s, *b)).collect();
            let out = propose(&d, &ps, &[], &[]);
            prop_assert_eq!(out.len(), ps.len());
            let ids: std::collections::BTreeSet<SchoolId> = out.iter().map(|p| p.school).collect();
            prop_assert_eq!(ids.len(), ps.len());
            for (p, o) in ps.iter().zip(out.iter()) {
                let (meets, _) = compliance(&d, p.result.as_ref().unwrap());
                prop_assert_eq!(o.class == AwardClass::Veto, !meets);
            }
        }
    }

    fn office() -> crate::role::Actor {
        crate::role::Actor {
            id: "office".into(),
            role: crate::role::Role::Office,
            school: None,
        }
    }

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    /// A board with phases 1–4 completed and the awards phase open since 2020-09-01.
    fn awards_open(def: &CampaignDefinition) -> crate::phase::PhaseBoard {
        use crate::phase::{PhaseBoard, PhaseFacts, ResultsNoticeFacts};
        let mut b = PhaseBoard::new(def);
        let done = PhaseFacts {
            listed_schools: 1,
            mentors_confirmed: true,
            results_notice: Some(ResultsNoticeFacts {
                ends_at: at("2020-07-10T00:00:00Z"),
                last_day: at("2020-07-10T00:00:00Z").date_naive(),
                open_objections: 0,
            }),
            ..Default::default()
        };
        for (p, t) in [
            (PhaseKind::SeedDesignation, "2020-03-02T01:00:00Z"),
            (PhaseKind::MentorSelection, "2020-04-02T01:00:00Z"),
            (PhaseKind::Pairing, "2020-05-02T01:00:00Z"),
            (PhaseKind::Acceptance, "2020-07-20T01:00:00Z"),
        ] {
            b.open(p, &office(), at(t), def).unwrap();
            b.complete(p, &office(), at(t), &done).unwrap();
        }
        b.open(
            PhaseKind::Awards,
            &office(),
            at("2020-09-01T01:00:00Z"),
            def,
        )
        .unwrap();
        b
    }

    /// Two potential schools in mentor 10's group, a seed school that is not a mentor.
    fn campaign(d: &CampaignDefinition) -> AwardFacts {
        let p1 = facts(d, 1, &[80.0], 60.0);
        let p2 = facts(d, 2, &[50.0], 60.0);
        AwardFacts {
            schools: vec![
                (p1.id, CaseState::Paired),
                (p2.id, CaseState::Paired),
                (SchoolId::from_u128(10), CaseState::Mentor),
                (SchoolId::from_u128(20), CaseState::SeedNonMentor),
            ],
            results: [p1.clone(), p2.clone()]
                .into_iter()
                .map(|p| (p.id, p.result.unwrap()))
                .collect(),
            baselines: [p1, p2].into_iter().map(|p| (p.id, p.baseline)).collect(),
            groups: BTreeMap::from([(
                SchoolId::from_u128(10),
                vec![SchoolId::from_u128(1), SchoolId::from_u128(2)],
            )]),
            activities: BTreeMap::from([(SchoolId::from_u128(10), 5)]),
            ..Default::default()
        }
    }

    #[test]
    fn proposals_wait_for_final_results() {
        let d = def();
        let f = campaign(&d);
        assert_eq!(
            propose_awards(false, &d, &f).unwrap_err(),
            RuleError::ResultsNotFinal
        );
        let out = propose_awards(true, &d, &f).unwrap();
        assert_eq!(out.len(), 4, "one class per school");
        assert_eq!(out[1].class, AwardClass::Veto);
        // School 20 never presented: the shipped definition gives it no award.
        assert_eq!(out[3].class, AwardClass::Withheld);
        assert!(
            out[3].reason.contains("未参加导师型学校展示评选"),
            "{}",
            out[3].reason
        );
    }

    #[test]
    fn a_seed_school_that_never_presented_gets_what_the_definition_says() {
        let mut d = def();
        let mut f = campaign(&d);
        let seed = SchoolId::from_u128(20);
        let class = |d: &CampaignDefinition, f: &AwardFacts| {
            proposals(d, f)
                .into_iter()
                .find(|p| p.school == seed)
                .unwrap()
                .class
        };
        assert_eq!(class(&d, &f), AwardClass::Withheld);
        d.awards.seed_without_presentation = SeedWithoutPresentation::Compliance;
        assert_eq!(class(&d, &f), AwardClass::Compliance);
        d.awards.seed_without_presentation = SeedWithoutPresentation::Model;
        assert_eq!(class(&d, &f), AwardClass::Model);
        d.awards.seed_without_presentation = SeedWithoutPresentation::None;
        f.presented.insert(seed);
        assert_eq!(class(&d, &f), AwardClass::Model, "presented: 标兵校");
    }

    #[test]
    fn the_award_basis_decides_which_scores_feed_the_bar_and_says_so() {
        let mut d = def();
        // On-site 58 everywhere (more than one near miss: veto on-site); report 80 lifts the
        // weighted score to 0.4 × 80 + 0.6 × 58 = 66.8 on every indicator.
        let mut p = facts(&d, 1, &[58.0], 50.0);
        p.result.as_mut().unwrap().report = 80.0;
        let onsite = propose(&d, std::slice::from_ref(&p), &[], &[]);
        assert_eq!(onsite[0].class, AwardClass::Veto);
        assert!(
            onsite[0].reason.ends_with("依据现场评估得分"),
            "{}",
            onsite[0].reason
        );
        d.scoring.award_basis = AwardBasis::Weighted;
        let weighted = propose(&d, &[p], &[], &[]);
        assert_eq!(weighted[0].class, AwardClass::Progress, "gain 16.8");
        assert!(
            weighted[0]
                .reason
                .ends_with("依据综合得分（报告40%＋现场60%）"),
            "{}",
            weighted[0].reason
        );
    }

    #[test]
    fn contribution_may_require_coverage_of_the_indicators() {
        let mut d = def();
        let ps = [facts(&d, 1, &[80.0], 60.0)];
        let m = MentorFacts {
            id: SchoolId::from_u128(10),
            activities: 5,
            group: vec![SchoolId::from_u128(1)],
            covered: 3,
        };
        let class = |d: &CampaignDefinition| propose(d, &ps, std::slice::from_ref(&m), &[]);
        assert_eq!(
            class(&d)[1].class,
            AwardClass::Contribution,
            "0 = no condition"
        );
        d.scoring.contribution_min_indicator_coverage = 8;
        let out = class(&d);
        assert_eq!(out[1].class, AwardClass::Model);
        assert!(
            out[1].reason.contains("帮扶覆盖 3/8 项指标，少于 8 项"),
            "{}",
            out[1].reason
        );
        d.scoring.contribution_min_indicator_coverage = 3;
        let out = class(&d);
        assert_eq!(out[1].class, AwardClass::Contribution);
        assert!(
            out[1].reason.contains("帮扶覆盖 3/8 项指标（要求 3）"),
            "{}",
            out[1].reason
        );
    }

    #[test]
    fn every_confirmed_award_has_the_plans_consequences() {
        let d = def();
        let conf = |school: u128, class| Confirmed {
            school: SchoolId::from_u128(school),
            class,
            proposed: class,
            reason: String::new(),
            override_reason: String::new(),
        };
        let awards = [
            conf(1, AwardClass::Contribution),
            conf(2, AwardClass::Progress),
            conf(3, AwardClass::Veto),
            conf(4, AwardClass::Compliance),
            conf(5, AwardClass::Veto),
        ];
        // School 5 has no principal on record: only its school consequences.
        let principals: BTreeMap<SchoolId, Uuid> = (1..=4)
            .map(|i| (SchoolId::from_u128(i), Uuid::from_u128(100 + i)))
            .collect();
        let out = consequences(&d.consequences, 2020, &awards, &principals);
        let of = |i: u128| -> Vec<(Subject, &str)> {
            out.iter()
                .filter(|c| c.school == SchoolId::from_u128(i))
                .map(|c| (c.subject, c.kind.as_str()))
                .collect()
        };
        use Subject::{Principal as P, School as S};
        assert_eq!(
            of(1),
            vec![
                (S, "teachers_day_commendation"),
                (P, "teachers_day_commendation"),
                (S, "evaluation_basis"),
                (P, "evaluation_basis"),
                (P, "rank_assessment_basis"),
                (P, "appointment_basis"),
                (S, "title_evaluation_tilt"),
            ]
        );
        assert_eq!(of(2).len(), 5);
        assert_eq!(
            of(3),
            vec![
                (S, "evaluation_barred"),
                (P, "evaluation_barred"),
                (P, "rank_assessment_flag")
            ]
        );
        assert!(of(4).is_empty(), "达标校: the plan names no consequence");
        assert_eq!(of(5), vec![(S, "evaluation_barred")]);
        let bar = out
            .iter()
            .find(|c| c.school == SchoolId::from_u128(3) && c.subject == P)
            .unwrap();
        assert_eq!(bar.principal, Some(Uuid::from_u128(103)));
        assert_eq!(bar.valid_until, NaiveDate::from_ymd_opt(2020, 12, 31));
        assert_eq!(bar.label, "年内不得评先树优");
    }

    proptest! {
        /// Confirmation is accepted exactly when the phase is active, the list is unconfirmed
        /// and every override names a proposed school; it then gives every proposed school
        /// exactly one class — the override's, with its reason, or the proposal's.
        #[test]
        fn confirmation_applies_exactly_the_overrides(
            picks in proptest::collection::vec((0u128..6, 0usize..5, any::<bool>()), 0..5),
            confirmed in any::<bool>(),
            day in 0i64..40,
        ) {
            let d = def();
            let phases = awards_open(&d);
            let now = at("2020-09-01T02:00:00Z") + chrono::Duration::days(day);
            let ctx = Ctx { now, def: &d, phases: &phases };
            let f = campaign(&d);
            let proposed = proposals(&d, &f);
            let mut overrides = BTreeMap::new();
            for (i, (school, class, _)) in picks.iter().enumerate() {
                let id = SchoolId::from_u128([1, 2, 10, 20, 30, 40][*school as usize]);
                overrides.insert(id, Override { index: i, class: AwardClass::ALL[*class], reason: format!("理由{i}") });
            }
            let active = now < phases.deadline(PhaseKind::Awards, &d);
            let known = overrides.keys().all(|id| proposed.iter().any(|p| p.school == *id));
            match confirm_awards(&overrides, confirmed, &f, &ctx) {
                Ok(c) => {
                    prop_assert!(active && !confirmed && known);
                    prop_assert_eq!(c.awards.len(), proposed.len());
                    for (a, p) in c.awards.iter().zip(&proposed) {
                        prop_assert_eq!(a.school, p.school);
                        prop_assert_eq!(a.proposed, p.class);
                        match overrides.get(&a.school) {
                            Some(o) if o.class != p.class => {
                                prop_assert_eq!(a.class, o.class);
                                prop_assert_eq!(&a.override_reason, &o.reason);
                                prop_assert!(a.case_reason().contains("督导室调整为"));
                            }
                            _ => {
                                prop_assert_eq!(a.class, p.class);
                                prop_assert!(a.override_reason.is_empty());
                                prop_assert_eq!(a.case_reason(), p.reason.clone());
                            }
                        }
                    }
                    prop_assert_eq!(c.effects.len(), 1 + c.consequences.len());
                }
                Err(e) => {
                    prop_assert!(!(active && !confirmed && known));
                    if active && !confirmed {
                        prop_assert!(matches!(e, RuleError::Invalid(_)));
                    }
                }
            }
        }

        /// The awards phase completes exactly when the list is confirmed; a refused
        /// completion leaves the board as it was.
        #[test]
        fn awards_complete_exactly_when_confirmed(confirmed in any::<bool>(), day in 0i64..60) {
            let d = def();
            let mut phases = awards_open(&d);
            let now = at("2020-09-01T02:00:00Z") + chrono::Duration::days(day);
            let facts = crate::phase::PhaseFacts { awards_confirmed: confirmed, ..Default::default() };
            prop_assert_eq!(crate::phase::open_items(PhaseKind::Awards, &facts, now).is_empty(), confirmed);
            let before = phases.clone();
            let done = phases.complete(PhaseKind::Awards, &office(), now, &facts);
            prop_assert_eq!(done.is_ok(), confirmed);
            if !confirmed {
                prop_assert_eq!(phases, before);
            }
        }
    }
}
