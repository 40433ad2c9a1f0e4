//! The award rules of September: exactly one class per school, each with its reasoning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::definition::CampaignDefinition;
use crate::scoring::{AcceptanceResult, round2};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwardClass {
    Contribution,
    Model,
    Progress,
    Compliance,
    Veto,
}

impl AwardClass {
    pub const ALL: [AwardClass; 5] = [
        AwardClass::Contribution,
        AwardClass::Model,
        AwardClass::Progress,
        AwardClass::Compliance,
        AwardClass::Veto,
    ];

    pub fn code(self) -> &'static str {
        match self {
            AwardClass::Contribution => "contribution",
            AwardClass::Model => "model",
            AwardClass::Progress => "progress",
            AwardClass::Compliance => "compliance",
            AwardClass::Veto => "veto",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AwardClass::Contribution => "贡献校",
            AwardClass::Model => "标兵校",
            AwardClass::Progress => "进步校",
            AwardClass::Compliance => "达标校",
            AwardClass::Veto => "一票否决",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == s)
    }
}

/// A potential school's acceptance result and baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct PotentialFacts {
    pub id: Uuid,
    pub result: Option<AcceptanceResult>,
    pub baseline: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MentorFacts {
    pub id: Uuid,
    pub activities: u32,
    pub group: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub school: Uuid,
    pub class: AwardClass,
    pub reason: String,
}

/// Mean per-indicator gain of on-site scores over the baseline.
pub fn gain(def: &CampaignDefinition, p: &PotentialFacts) -> Option<f64> {
    let r = p.result.as_ref()?;
    let diffs: Vec<f64> = def
        .indicators
        .iter()
        .map(|i| {
            r.onsite.get(&i.code).copied().unwrap_or(0.0)
                - p.baseline.get(&i.code).copied().unwrap_or(0.0)
        })
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
        let v = r.onsite.get(&ind.code).copied().unwrap_or(0.0);
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
    other_seeds: &[Uuid],
) -> Vec<Proposal> {
    let sc = &def.scoring;
    let gains: BTreeMap<Uuid, Option<f64>> =
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
                format!("{why}；综合得分 {}", r.final_score),
            )
        } else if g >= sc.progress_gain || (g > 0.0 && g >= cut) {
            let basis = if g >= sc.progress_gain {
                format!("提升幅度 {g} 分，达到 {} 分的进步标准", sc.progress_gain)
            } else {
                format!(
                    "提升幅度 {g} 分，位列前 {}%",
                    (sc.progress_top_share * 100.0).round()
                )
            };
            (AwardClass::Progress, format!("{why}；{basis}"))
        } else {
            (AwardClass::Compliance, format!("{why}；提升幅度 {g} 分"))
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
        let (class, reason) = if strong && notable {
            (
                AwardClass::Contribution,
                format!(
                    "帮扶活动 {} 次（要求 {}），结对学校平均提升 {mean} 分（要求 {}）",
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
            (AwardClass::Model, format!("导师型学校；{}", why.join("；")))
        };
        out.push(Proposal {
            school: m.id,
            class,
            reason,
        });
    }
    for s in other_seeds {
        out.push(Proposal {
            school: *s,
            class: AwardClass::Model,
            reason: "标杆种子校（非导师型学校）".into(),
        });
    }
    out
}

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
            id: Uuid::from_u128(i),
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
                .find(|p| p.school == Uuid::from_u128(i))
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
                .find(|p| p.school == Uuid::from_u128(3))
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
                id: Uuid::from_u128(10),
                activities: 5,
                group: vec![Uuid::from_u128(1)],
            },
            MentorFacts {
                id: Uuid::from_u128(11),
                activities: 9,
                group: vec![Uuid::from_u128(2)],
            },
            MentorFacts {
                id: Uuid::from_u128(12),
                activities: 1,
                group: vec![Uuid::from_u128(1)],
            },
        ];
        let out = propose(&d, &ps, &m, &[Uuid::from_u128(20)]);
        let class = |i: u128| {
            out.iter()
                .find(|p| p.school == Uuid::from_u128(i))
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
            let ids: std::collections::BTreeSet<Uuid> = out.iter().map(|p| p.school).collect();
            prop_assert_eq!(ids.len(), ps.len());
            for (p, o) in ps.iter().zip(out.iter()) {
                let (meets, _) = compliance(&d, p.result.as_ref().unwrap());
                prop_assert_eq!(o.class == AwardClass::Veto, !meets);
            }
        }
    }
}
