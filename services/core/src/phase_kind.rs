//! A phase's name and status, and what can block its exit: the vocabulary `definition`,
//! `effects` and `error` share with `phase`. It imports nothing from the crate, so none of
//! them needs `phase` (which needs all three) and no module cycle forms.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    SeedDesignation,
    MentorSelection,
    Pairing,
    Acceptance,
    Awards,
}

impl PhaseKind {
    pub const ALL: [PhaseKind; 5] = [
        PhaseKind::SeedDesignation,
        PhaseKind::MentorSelection,
        PhaseKind::Pairing,
        PhaseKind::Acceptance,
        PhaseKind::Awards,
    ];

    pub fn code(self) -> &'static str {
        match self {
            PhaseKind::SeedDesignation => "seed_designation",
            PhaseKind::MentorSelection => "mentor_selection",
            PhaseKind::Pairing => "pairing",
            PhaseKind::Acceptance => "acceptance",
            PhaseKind::Awards => "awards",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            PhaseKind::SeedDesignation => "确定标杆种子校",
            PhaseKind::MentorSelection => "遴选导师型学校",
            PhaseKind::Pairing => "1+X 搭对帮扶提升",
            PhaseKind::Acceptance => "验收评估",
            PhaseKind::Awards => "表彰奖励",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn previous(self) -> Option<Self> {
        self.index().checked_sub(1).map(|i| Self::ALL[i])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseStatus {
    NotOpen,
    Open,
    Completed,
}

impl PhaseStatus {
    pub fn code(self) -> &'static str {
        match self {
            PhaseStatus::NotOpen => "not_open",
            PhaseStatus::Open => "open",
            PhaseStatus::Completed => "completed",
        }
    }
}

/// A notice whose period has not ended, as the exit criteria name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningNotice {
    pub title: String,
    /// The last day of its period (campaign time).
    pub last_day: chrono::NaiveDate,
}

/// One thing that still blocks completing a phase. Rendered in words (Chinese for people, the
/// English gist in brackets) only by its `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenItem {
    ApplicationsAwaitingReview(u64),
    ApprovedAwaitingNotice(u64),
    /// The notices still running, each named with its title and last day.
    NoticesRunning(Vec<RunningNotice>),
    ObjectionsUnresolved(u64),
    SeedListEmpty,
    MentorListNotConfirmed,
    PotentialsNotPaired(u64),
    BaselinesMissing(u64),
    ResultsNoticeNotPublished,
    /// The results notice is still running, until its last day.
    ResultsNoticeRunning(chrono::NaiveDate),
    ResultsObjectionsUnresolved(u64),
    AwardListNotConfirmed,
}

impl std::fmt::Display for OpenItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenItem::ApplicationsAwaitingReview(n) => {
                write!(f, "{n} 份自主申报待复核 (applications awaiting review)")
            }
            OpenItem::ApprovedAwaitingNotice(n) => write!(
                f,
                "{n} 所已通过申报的学校待补充公示 (approved, not yet on a notice)"
            ),
            OpenItem::NoticesRunning(notices) => write!(
                f,
                "{} 个公示期未结束：{} (notices still running)",
                notices.len(),
                notices
                    .iter()
                    .map(|n| format!("《{}》至{}期满", n.title, crate::text::date_zh(n.last_day)))
                    .collect::<Vec<_>>()
                    .join("，")
            ),
            OpenItem::ObjectionsUnresolved(n) => {
                write!(f, "{n} 件异议待处理 (objections unresolved)")
            }
            OpenItem::SeedListEmpty => {
                f.write_str("种子校名单为空 (no school is on the seed list)")
            }
            OpenItem::MentorListNotConfirmed => {
                f.write_str("导师型学校名单未确认 (mentor list not confirmed)")
            }
            OpenItem::PotentialsNotPaired(n) => write!(
                f,
                "{n} 所潜力校未编入 1+X 帮扶组 (potential schools not in a group)"
            ),
            OpenItem::BaselinesMissing(n) => {
                write!(f, "{n} 所潜力校未录入基线分 (baselines missing)")
            }
            OpenItem::ResultsNoticeNotPublished => {
                f.write_str("成绩公示未发布 (results notice not published)")
            }
            OpenItem::ResultsNoticeRunning(last_day) => write!(
                f,
                "成绩公示期未结束：至{}期满 (results notice still running)",
                crate::text::date_zh(*last_day)
            ),
            OpenItem::ResultsObjectionsUnresolved(n) => {
                write!(f, "{n} 件成绩异议待处理 (objections unresolved)")
            }
            OpenItem::AwardListNotConfirmed => {
                f.write_str("奖项名单未确认 (award list not confirmed)")
            }
        }
    }
}

/// Several open items in one line, as a refusal or a summary shows them.
pub fn render(items: &[OpenItem]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod open_item_tests {
    use super::*;

    #[test]
    fn a_running_notice_is_named_with_its_title_and_last_day() {
        let item = OpenItem::NoticesRunning(vec![
            RunningNotice {
                title: "昌乐县2020年标杆种子校拟定名单公示".into(),
                last_day: chrono::NaiveDate::from_ymd_opt(2020, 3, 6).unwrap(),
            },
            RunningNotice {
                title: "补充公示".into(),
                last_day: chrono::NaiveDate::from_ymd_opt(2020, 3, 20).unwrap(),
            },
        ]);
        assert_eq!(
            item.to_string(),
            "2 个公示期未结束：《昌乐县2020年标杆种子校拟定名单公示》至2020年3月6日期满，《补充公示》至2020年3月20日期满 (notices still running)"
        );
        assert_eq!(
            OpenItem::ResultsNoticeRunning(chrono::NaiveDate::from_ymd_opt(2020, 8, 26).unwrap())
                .to_string(),
            "成绩公示期未结束：至2020年8月26日期满 (results notice still running)"
        );
    }
}
