//! Fixtures the deciders' tests share: the Changle definition and a board with the phases
//! before one completed and that one open.

use chrono::{DateTime, Utc};

use crate::definition::CampaignDefinition;
use crate::phase::{PhaseBoard, PhaseFacts, PhaseKind, ResultsNoticeFacts};
use crate::role::{Actor, Role};

pub const CHANGLE: &str = include_str!("../../../deploy/campaigns/changle-2020.toml");

pub fn changle() -> CampaignDefinition {
    CampaignDefinition::parse(CHANGLE).unwrap()
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn office() -> Actor {
    Actor {
        id: "office".into(),
        role: Role::Office,
        school: None,
    }
}

/// When each phase opens in these tests: the morning after its window opens.
pub fn opened_at(kind: PhaseKind) -> DateTime<Utc> {
    at(match kind {
        PhaseKind::SeedDesignation => "2020-03-02T01:00:00Z",
        PhaseKind::MentorSelection => "2020-04-02T01:00:00Z",
        PhaseKind::Pairing => "2020-05-02T01:00:00Z",
        PhaseKind::Acceptance => "2020-07-01T01:00:00Z",
        PhaseKind::Awards => "2020-09-01T01:00:00Z",
    })
}

/// Every phase before `open` completed, `open` open.
pub fn board_open(def: &CampaignDefinition, open: PhaseKind) -> PhaseBoard {
    let mut b = PhaseBoard::new(def);
    let done = PhaseFacts {
        listed_schools: 1,
        mentors_confirmed: true,
        results_notice: Some(ResultsNoticeFacts {
            ends_at: DateTime::<Utc>::MIN_UTC,
            last_day: DateTime::<Utc>::MIN_UTC.date_naive(),
            open_objections: 0,
        }),
        awards_confirmed: true,
        ..Default::default()
    };
    for p in PhaseKind::ALL {
        b.open(p, &office(), opened_at(p), def).unwrap();
        if p == open {
            break;
        }
        b.complete(p, &office(), opened_at(p), &done).unwrap();
    }
    b
}
