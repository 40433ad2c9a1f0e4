//! Parsed values of the edge: built only by `parse`, so a service that holds one knows it was
//! checked. The rule core's own values (school code, mobile) are in `junheng_core::values`;
//! these two stay here because one follows lettre and the other is the edge's own contract.

use std::fmt;

use crate::violations::{MAX_EMAIL_CHARS, control_char};

/// An e-mail address, accepted exactly when lettre's `Address` accepts it (after trimming, at
/// most [`MAX_EMAIL_CHARS`] characters, no control character), so the mailer never meets an
/// address it refuses. Holds the trimmed text as the caller wrote it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Email(String);

/// Why a text is not an [`Email`].
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum EmailError {
    #[error("at most {MAX_EMAIL_CHARS} characters")]
    TooLong,
    #[error("contains the control character {} (not allowed)", .0.escape_unicode())]
    Control(char),
    /// lettre's reason.
    #[error("{0}")]
    Refused(String),
}

impl Email {
    /// Trims `s` and checks it; an empty text is `Refused` (callers treat empty as absent
    /// before parsing).
    pub fn parse(s: &str) -> Result<Email, EmailError> {
        let t = s.trim();
        if t.chars().count() > MAX_EMAIL_CHARS {
            return Err(EmailError::TooLong);
        }
        if let Some(c) = control_char(t) {
            return Err(EmailError::Control(c));
        }
        match t.parse::<lettre::Address>() {
            Ok(_) => Ok(Email(t.to_owned())),
            Err(e) => Err(EmailError::Refused(e.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as lettre holds it (always succeeds: `parse` checked it).
    pub fn address(&self) -> lettre::Address {
        self.0.parse().expect("an Email is a lettre address")
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client's idempotency key: 1 to 128 printable ASCII characters without spaces.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Option<IdempotencyKey> {
        crate::violations::valid_key(s).then(|| IdempotencyKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The acceptance is lettre's, case by case: what lettre refuses is refused, what it takes
    /// is taken (trimmed), plus the length and control-character limits on top.
    #[test]
    fn an_email_is_what_lettre_accepts() {
        let samples = [
            "wang@schools.changle.example",
            " wang@schools.changle.example ",
            "wang@@example.cn",
            "wang@exa mple.cn",
            "王校长 <wang@example.cn>",
            "wang@example",
            "wang.@example.cn",
            "\"wang li\"@example.cn",
            "wang@[127.0.0.1]",
            "wang@-example.cn",
            "wang@example..cn",
            "王@例子.中国",
            "@example.cn",
            "wang@",
            "a@b",
        ];
        for s in samples {
            let lettre = s.trim().parse::<lettre::Address>().is_ok();
            assert_eq!(Email::parse(s).is_ok(), lettre, "{s:?}");
        }
        assert_eq!(
            Email::parse(" wang@schools.changle.example ")
                .unwrap()
                .as_str(),
            "wang@schools.changle.example"
        );
        assert_eq!(
            Email::parse("wang\0@example.cn"),
            Err(EmailError::Control('\0'))
        );
        let long = format!("{}@example.cn", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
        let e = Email::parse("li@example.cn").unwrap();
        assert_eq!(e.address().to_string(), "li@example.cn");
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("k-1").is_some());
        for bad in ["", "has space", "键", &"k".repeat(129)] {
            assert!(IdempotencyKey::parse(bad).is_none(), "{bad:?}");
        }
    }
}
