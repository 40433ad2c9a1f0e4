//! Parsed values: built only by `parse`, so holding one means it was checked ("parse, don't
//! validate"). The edge parses a request field once (a field violation names it when `parse`
//! refuses) and carries the value inward.
//!
//! The e-mail address and the idempotency key live in `junheng_edge::values`: the address is
//! accepted exactly as lettre accepts it, and this crate must not depend on lettre.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A school's 10-digit code (学校代码), as the bureau's registry issues it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SchoolCode(String);

impl SchoolCode {
    /// Exactly ten ASCII digits; nothing is trimmed (the edge trims first).
    pub fn parse(s: &str) -> Option<SchoolCode> {
        (s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit())).then(|| SchoolCode(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mainland mobile number: 11 digits starting with 1.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mobile(String);

impl Mobile {
    /// Exactly eleven ASCII digits, the first a 1; nothing is trimmed.
    pub fn parse(s: &str) -> Option<Mobile> {
        (s.len() == 11 && s.starts_with('1') && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Mobile(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_value {
    ($name:ident, $what:literal) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                $name::parse(&s).ok_or_else(|| format!("`{s}` is not {}", $what))
            }
        }
    };
}

string_value!(SchoolCode, "a 10-digit school code");
string_value!(Mobile, "an 11-digit mobile number");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn school_codes() {
        assert_eq!(
            SchoolCode::parse("3501230001").unwrap().as_str(),
            "3501230001"
        );
        for bad in [
            "",
            "350123000",
            "35012300011",
            "350123000a",
            " 3501230001",
            "３５０１２３０００１",
        ] {
            assert!(SchoolCode::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn mobiles() {
        assert!(Mobile::parse("13800000000").is_some());
        for bad in [
            "",
            "23800000000",
            "1380000000",
            "138000000000",
            "1380000000x",
        ] {
            assert!(Mobile::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn serde_refuses_what_parse_refuses() {
        let c: SchoolCode = serde_json::from_value(serde_json::json!("3501230001")).unwrap();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!("3501230001")
        );
        assert!(serde_json::from_value::<SchoolCode>(serde_json::json!("12")).is_err());
        assert!(serde_json::from_value::<Mobile>(serde_json::json!("12")).is_err());
    }

    proptest! {
        #[test]
        fn a_code_is_ten_digits(s in "\\PC{0,12}") {
            let ok = s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit());
            prop_assert_eq!(SchoolCode::parse(&s).is_some(), ok);
        }
    }
}
