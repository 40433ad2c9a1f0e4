//! Id newtypes: one type per kind of row, so a school id passed where a campaign id belongs is
//! a compile error, not a `NOT_FOUND` at run time.
//!
//! Each is a `Uuid` inside (the column type); the store converts at its boundary (`new` on the
//! way out of a row, `as_uuid` on the way into a query) because this crate must not depend on
//! sqlx, and the edge parses request strings into them (`convert.rs`). Serialised as the bare
//! UUID string, exactly as the `Uuid`s they replace, so events and JSON read models are
//! unchanged.

use std::fmt;

use uuid::Uuid;

/// Defines one id newtype with its conversions.
macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn new(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(self) -> Uuid {
                self.0
            }

            /// A fresh, time-ordered id (UUIDv7, as the store's rows use).
            pub fn now_v7() -> Self {
                Self(Uuid::now_v7())
            }

            /// For tests and fixtures: the id whose UUID is `n`.
            pub const fn from_u128(n: u128) -> Self {
                Self(Uuid::from_u128(n))
            }

            pub const fn as_u128(self) -> u128 {
                self.0.as_u128()
            }

            pub const fn nil() -> Self {
                Self(Uuid::nil())
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id!(
    /// A campaign (`campaigns.id`).
    CampaignId
);
id!(
    /// A school registered in one campaign (`schools.id`).
    SchoolId
);
id!(
    /// A public notice (`notices.id`).
    NoticeId
);
id!(
    /// An objection filed against a notice (`objections.id`).
    ObjectionId
);
id!(
    /// A seed self-application (`seed_applications.id`).
    ApplicationId
);
id!(
    /// An API token (`api_tokens.id`).
    TokenId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_bare_uuid() {
        let u = Uuid::from_u128(7);
        let c = CampaignId::new(u);
        assert_eq!(
            serde_json::to_value(c).unwrap(),
            serde_json::to_value(u).unwrap()
        );
        assert_eq!(c.to_string(), u.to_string());
        assert_eq!(c.to_string().parse::<CampaignId>().unwrap(), c);
        let back: SchoolId = serde_json::from_value(serde_json::json!(u.to_string())).unwrap();
        assert_eq!(back.as_uuid(), u);
    }
}
