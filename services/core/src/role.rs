//! Who is acting.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Office,
    Department,
    Panel,
    School,
    Leader,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Office,
        Role::Department,
        Role::Panel,
        Role::School,
        Role::Leader,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::Office => "office",
            Role::Department => "department",
            Role::Panel => "panel",
            Role::School => "school",
            Role::Leader => "leader",
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
    pub school: Option<Uuid>,
}

impl Actor {
    /// A school acts only for itself.
    pub fn acts_for(&self, school: Uuid) -> bool {
        self.role == Role::School && self.school == Some(school)
    }
}
