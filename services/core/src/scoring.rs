//! Acceptance scoring: trimmed means, weighted final scores, per-indicator pass flags.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::definition::CampaignDefinition;

/// The mean after dropping one highest and one lowest score when there are at least
/// `trim_from` scores (interpretation, configurable). None for no scores.
pub fn trimmed_mean(scores: &[f64], trim_from: u32) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let mut s = scores.to_vec();
    s.sort_by(f64::total_cmp);
    let kept = if s.len() >= trim_from as usize {
        &s[1..s.len() - 1]
    } else {
        &s[..]
    };
    Some(kept.iter().sum::<f64>() / kept.len() as f64)
}

/// Rounds to two decimals, the precision of a published notice.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Every panel member's scores for one potential school.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreSheets {
    /// Improvement report scores, one per member.
    pub report: Vec<f64>,
    /// On-site scores per indicator, one per member.
    pub onsite: BTreeMap<String, Vec<f64>>,
}

/// Scores per indicator code, as a baseline or an on-site score sheet holds them (and as the
/// store keeps them: `baselines.scores`, `acceptance_scores.onsite`).
pub type IndicatorScores = std::collections::BTreeMap<String, f64>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptanceResult {
    pub report: f64,
    pub onsite: BTreeMap<String, f64>,
    pub onsite_mean: f64,
    pub final_score: f64,
    pub passes: BTreeMap<String, bool>,
}

/// Aggregates one school's sheets; None while any indicator (or the report) has no score.
pub fn aggregate(def: &CampaignDefinition, s: &ScoreSheets) -> Option<AcceptanceResult> {
    let sc = &def.scoring;
    let report = round2(trimmed_mean(&s.report, sc.trim_from)?);
    let mut onsite = BTreeMap::new();
    for ind in &def.indicators {
        let v = round2(trimmed_mean(s.onsite.get(&ind.code)?, sc.trim_from)?);
        onsite.insert(ind.code.clone(), v);
    }
    let onsite_mean = round2(onsite.values().sum::<f64>() / onsite.len() as f64);
    let final_score = round2(sc.report_weight * report + sc.onsite_weight * onsite_mean);
    let passes = onsite
        .iter()
        .map(|(k, v)| (k.clone(), *v >= sc.pass_line))
        .collect();
    Some(AcceptanceResult {
        report,
        onsite,
        onsite_mean,
        final_score,
        passes,
    })
}

/// Checks a sheet of indicator scores: every indicator of the definition exactly once, each
/// 0..=100. Returns the scores by indicator and one (field, reason) per problem, `field` being
/// the request field the scores came in.
pub fn indicator_scores(
    def: &CampaignDefinition,
    field: &str,
    scores: &[(String, f64)],
) -> (BTreeMap<String, f64>, Vec<(String, String)>) {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, (indicator, score)) in scores.iter().enumerate() {
        if def.indicator(indicator).is_none() {
            problems.push((
                format!("{field}[{i}].indicator"),
                format!("unknown indicator `{indicator}`"),
            ));
        } else if out.insert(indicator.clone(), *score).is_some() {
            problems.push((
                format!("{field}[{i}].indicator"),
                format!("indicator `{indicator}` appears twice"),
            ));
        }
        if !(score.is_finite() && (0.0..=100.0).contains(score)) {
            problems.push((
                format!("{field}[{i}].score"),
                "must be between 0 and 100".into(),
            ));
        }
    }
    for ind in &def.indicators {
        if !out.contains_key(&ind.code) {
            problems.push((
                field.to_string(),
                format!("missing indicator `{}` ({})", ind.code, ind.name),
            ));
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_from_five_scores() {
        assert_eq!(trimmed_mean(&[60.0, 70.0, 80.0, 90.0], 5), Some(75.0));
        assert_eq!(
            trimmed_mean(&[10.0, 70.0, 80.0, 90.0, 100.0], 5),
            Some(80.0)
        );
        assert_eq!(trimmed_mean(&[], 5), None);
    }

    #[test]
    fn final_score_weighs_report_and_onsite() {
        let def =
            CampaignDefinition::parse(include_str!("../../../deploy/campaigns/changle-2020.toml"))
                .unwrap();
        let mut s = ScoreSheets {
            report: vec![80.0, 90.0],
            ..Default::default()
        };
        for ind in &def.indicators {
            s.onsite.insert(ind.code.clone(), vec![70.0, 70.0]);
        }
        s.onsite.insert("culture".into(), vec![50.0, 56.0]);
        let r = aggregate(&def, &s).unwrap();
        assert_eq!(r.report, 85.0);
        assert_eq!(r.onsite["culture"], 53.0);
        assert!(!r.passes["culture"] && r.passes["teachers"]);
        // onsite mean = (7 * 70 + 53) / 8 = 67.875 → 67.88; final = 0.4 * 85 + 0.6 * 67.88
        assert_eq!(r.onsite_mean, 67.88);
        assert_eq!(r.final_score, round2(34.0 + 0.6 * 67.88));
        s.onsite.remove("culture");
        assert!(aggregate(&def, &s).is_none());
    }

    #[test]
    fn indicator_sheets_name_every_problem() {
        let def =
            CampaignDefinition::parse(include_str!("../../../deploy/campaigns/changle-2020.toml"))
                .unwrap();
        let mut given: Vec<(String, f64)> = def
            .indicators
            .iter()
            .skip(1)
            .map(|i| (i.code.clone(), 70.0))
            .collect();
        given.push(("nope".into(), 70.0));
        given.push((def.indicators[1].code.clone(), 101.0));
        let (scores, problems) = indicator_scores(&def, "onsite", &given);
        assert_eq!(scores.len(), def.indicators.len() - 1);
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        let n = def.indicators.len() - 1;
        assert_eq!(
            fields,
            vec![
                format!("onsite[{n}].indicator"),
                format!("onsite[{}].indicator", n + 1),
                format!("onsite[{}].score", n + 1),
                "onsite".to_string(),
            ]
        );
        assert!(problems[3].1.contains(&def.indicators[0].code));
    }
}
