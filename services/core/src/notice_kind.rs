//! The kinds of public notice (the seed list, its supplement, the results): the vocabulary
//! the school state machine, the notice rules and the wording in `text` share, so `school`
//! and `text` need not import `notice`.

use serde::{Deserialize, Serialize};

use crate::definition::CampaignDefinition;

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
