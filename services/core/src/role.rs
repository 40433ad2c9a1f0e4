//! Who is acting.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::SchoolId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Office,
    Department,
    Panel,
    School,
    Leader,
    /// The scheduler service: closes ended notices and reads what it plans; nothing else.
    Scheduler,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Office,
        Role::Department,
        Role::Panel,
        Role::School,
        Role::Leader,
        Role::Scheduler,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::Office => "office",
            Role::Department => "department",
            Role::Panel => "panel",
            Role::School => "school",
            Role::Leader => "leader",
            Role::Scheduler => "scheduler",
        }
    }

    pub fn from_code(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// An authenticated caller. `school` is set exactly for the `school` role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub role: Role,
    pub school: Option<SchoolId>,
}

impl Actor {
    /// A school acts only for itself.
    pub fn acts_for(&self, school: SchoolId) -> bool {
        self.role == Role::School && self.school == Some(school)
    }
}

/// Where a token acts: the whole county (every campaign, present and future) or a list of
/// campaigns. A school token acts in its school's campaign only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    County,
    Campaigns(Vec<Uuid>),
}

impl Scope {
    pub fn from_campaigns(c: Option<Vec<Uuid>>) -> Scope {
        match c {
            None => Scope::County,
            Some(v) => Scope::Campaigns(v),
        }
    }

    pub fn campaigns(&self) -> Option<&[Uuid]> {
        match self {
            Scope::County => None,
            Scope::Campaigns(v) => Some(v),
        }
    }

    /// `campaign` is a [`CampaignId`](crate::CampaignId) or a bare `Uuid` (the scheduler's).
    pub fn covers(&self, campaign: impl Into<Uuid>) -> bool {
        let campaign = campaign.into();
        match self {
            Scope::County => true,
            Scope::Campaigns(v) => v.contains(&campaign),
        }
    }

    /// `inner` lies within `self` (an issuer hands out at most its own scope).
    pub fn contains(&self, inner: &Scope) -> bool {
        match (self, inner) {
            (Scope::County, _) => true,
            (Scope::Campaigns(_), Scope::County) => false,
            (Scope::Campaigns(_), Scope::Campaigns(v)) => v.iter().all(|c| self.covers(*c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips() {
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
    }

    #[test]
    fn a_scope_contains_only_what_it_covers() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let ab = Scope::Campaigns(vec![a, b]);
        let only_a = Scope::Campaigns(vec![a]);
        assert!(Scope::County.contains(&ab) && ab.contains(&only_a));
        assert!(!only_a.contains(&ab) && !ab.contains(&Scope::County));
        assert!(only_a.covers(a) && !only_a.covers(b) && Scope::County.covers(b));
    }
}
