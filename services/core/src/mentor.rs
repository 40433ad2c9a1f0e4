//! The mentor rule: rated excellent on all indicators by panel consensus, and accepted
//! replicable practices covering at least N distinct indicators.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::definition::CampaignDefinition;

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
    fn one_good_rating_breaks_consensus_and_is_named() {
        let def = CampaignDefinition::parse(CHANGLE).unwrap();
        let mut second = sheet(&def, Rating::Excellent);
        second.insert("teaching".into(), Rating::Good);
        let v = evaluate(
            &def,
            true,
            &[sheet(&def, Rating::Excellent), second],
            &[tally("teachers", 1, 0), tally("culture", 1, 0)],
        );
        assert!(!v.mentor);
        assert!(
            v.explanation.contains("教学质量（1/2优秀）"),
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
            prop_assert_eq!(v.mentor, all_excellent && distinct.len() >= 2);
        }
    }
}
