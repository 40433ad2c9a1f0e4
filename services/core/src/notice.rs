//! Public notices (公示): their windows in working days, and who may object when.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::definition::CampaignDefinition;
use crate::error::RuleError;
use crate::time::{describe_deadline, local_date};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    SeedCandidates,
    SeedSupplementary,
    Results,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 3] = [
        NoticeKind::SeedCandidates,
        NoticeKind::SeedSupplementary,
        NoticeKind::Results,
    ];

    pub fn code(self) -> &'static str {
        match self {
            NoticeKind::SeedCandidates => "seed_candidates",
            NoticeKind::SeedSupplementary => "seed_supplementary",
            NoticeKind::Results => "results",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == s)
    }

    pub fn default_title(self, def: &CampaignDefinition) -> String {
        match self {
            NoticeKind::SeedCandidates => {
                format!("{}{}年标杆种子校拟定名单公示", def.county, def.year)
            }
            NoticeKind::SeedSupplementary => {
                format!("{}{}年标杆种子校补充名单公示", def.county, def.year)
            }
            NoticeKind::Results => format!("{}{}年潜力校验收成绩公示", def.county, def.year),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoticeWindow {
    pub starts_at: DateTime<Utc>,
    pub last_day: NaiveDate,
    /// Exclusive end: the start of the day after the last working day.
    pub ends_at: DateTime<Utc>,
}

/// A notice published at `now` runs N working days, counting today if it is a working day.
/// What the office owes when a notice period ends: "<title>公示期满", without doubling a title
/// that already ends in 公示 ("种子校名单公示" → "种子校名单公示期满").
pub fn period_over_subject(title: &str) -> String {
    if title.ends_with("公示") {
        format!("{title}期满")
    } else {
        format!("{title}公示期满")
    }
}

pub fn window(now: DateTime<Utc>, def: &CampaignDefinition) -> Result<NoticeWindow, RuleError> {
    let today = local_date(now, def.tz());
    let last_day = def
        .calendar()
        .nth_working_day(today, def.notice_working_days)
        .map_err(|e| RuleError::Precondition(e.to_string()))?;
    Ok(NoticeWindow {
        starts_at: now,
        last_day,
        ends_at: def.deadline_after(last_day),
    })
}

/// An objection must come during the notice, with a real name, a contact and evidence.
pub fn check_objection(
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
    def: &CampaignDefinition,
    name: &str,
    contact: &str,
    grounds: &str,
    evidence: &str,
) -> Result<(), RuleError> {
    let mut problems = Vec::new();
    for (field, value, why) in [
        (
            "objector_name",
            name,
            "objections must carry a real name (anonymous objections are not accepted)",
        ),
        (
            "objector_contact",
            contact,
            "objections must give contact details",
        ),
        ("grounds", grounds, "objections must state their grounds"),
        ("evidence", evidence, "objections must reference evidence"),
    ] {
        if value.trim().is_empty() {
            problems.push((field.to_string(), why.to_string()));
        }
    }
    if !problems.is_empty() {
        return Err(RuleError::Invalid(problems));
    }
    if now >= ends_at {
        return Err(RuleError::Precondition(format!(
            "the notice period ended at {}; late objections are not accepted",
            describe_deadline(ends_at, def.tz())
        )));
    }
    Ok(())
}

#[cfg(test)]
mod period_tests {
    #[test]
    fn the_period_over_subject_does_not_double_gongshi() {
        assert_eq!(
            super::period_over_subject("种子校名单公示"),
            "种子校名单公示期满"
        );
        assert_eq!(super::period_over_subject("验收结果"), "验收结果公示期满");
    }
}
