//! The award classes of September (贡献校, 标兵校, …): the vocabulary the definition (its
//! `[publication.awards]` titles), the school state machine and the award rules share,
//! importing nothing, so `definition` and `school` need not import `awards`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwardClass {
    Contribution,
    Model,
    Progress,
    Compliance,
    Veto,
    /// No award (不予评定): the office withheld it, or a seed school never presented.
    Withheld,
}

impl AwardClass {
    pub const ALL: [AwardClass; 6] = [
        AwardClass::Contribution,
        AwardClass::Model,
        AwardClass::Progress,
        AwardClass::Compliance,
        AwardClass::Veto,
        AwardClass::Withheld,
    ];

    pub fn code(self) -> &'static str {
        match self {
            AwardClass::Contribution => "contribution",
            AwardClass::Model => "model",
            AwardClass::Progress => "progress",
            AwardClass::Compliance => "compliance",
            AwardClass::Veto => "veto",
            AwardClass::Withheld => "withheld",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AwardClass::Contribution => "贡献校",
            AwardClass::Model => "标兵校",
            AwardClass::Progress => "进步校",
            AwardClass::Compliance => "达标校",
            AwardClass::Veto => "一票否决",
            AwardClass::Withheld => "不予评定",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == s)
    }
}
