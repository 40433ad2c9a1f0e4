//! Collects field violations so one response can list every problem at once
//! ([`ApiError::Invalid`]). Only campaign-agnostic checks live here; a service adds its own
//! (enum fields, domain values) on top.

use chrono::NaiveDate;
use uuid::Uuid;

use crate::status::ApiError;

#[derive(Debug, Default)]
pub struct Violations(pub Vec<(String, String)>);

/// At most this many characters of a bad input are echoed back.
const ECHO_CHARS: usize = 64;

fn echo(s: &str) -> String {
    s.chars().take(ECHO_CHARS).collect()
}

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push((field.into(), reason.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A required id.
    pub fn uuid(&mut self, field: &str, s: &str) -> Uuid {
        if s.is_empty() {
            self.add(field, "required");
            return Uuid::nil();
        }
        self.opt_uuid(field, s).unwrap_or_default()
    }

    /// An optional id: empty means absent.
    pub fn opt_uuid(&mut self, field: &str, s: &str) -> Option<Uuid> {
        if s.is_empty() {
            return None;
        }
        match Uuid::parse_str(s) {
            Ok(u) => Some(u),
            Err(_) => {
                self.add(field, format!("`{}` is not a UUID", echo(s)));
                None
            }
        }
    }

    /// Required text, trimmed, of at most `max_chars` characters.
    pub fn text(&mut self, field: &str, s: &str, max_chars: usize) -> String {
        let t = s.trim();
        if t.is_empty() {
            self.add(field, "required");
        } else if t.chars().count() > max_chars {
            self.add(field, format!("at most {max_chars} characters"));
        }
        t.to_string()
    }

    pub fn optional_text(&mut self, field: &str, s: &str, max_chars: usize) -> String {
        let t = s.trim();
        if t.chars().count() > max_chars {
            self.add(field, format!("at most {max_chars} characters"));
        }
        t.to_string()
    }

    /// An expected version: 0 means "don't check".
    pub fn version(&mut self, field: &str, v: i64) -> i64 {
        if v < 0 {
            self.add(field, "must be 0 (don't check) or a positive version");
        }
        v
    }

    pub fn date(&mut self, field: &str, s: &str) -> NaiveDate {
        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => d,
            Err(_) => {
                self.add(field, format!("`{s}` is not a date (YYYY-MM-DD)"));
                NaiveDate::MIN
            }
        }
    }

    /// An optional value from a closed list: empty means absent.
    pub fn one_of(&mut self, field: &str, v: &str, allowed: &[&str]) -> Option<String> {
        if v.is_empty() {
            return None;
        }
        if !allowed.contains(&v) {
            self.add(
                field,
                format!("`{}` is not one of {}", echo(v), allowed.join(", ")),
            );
        }
        Some(v.to_owned())
    }

    /// An idempotency key: 1 to 128 printable ASCII characters without spaces.
    pub fn idempotency_key(&mut self, field: &str, key: &str) {
        if !valid_key(key) {
            self.add(
                field,
                "required: 1 to 128 printable ASCII characters without spaces",
            );
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.0))
        }
    }
}

pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_problem() {
        let mut v = Violations::default();
        v.uuid("a", "");
        v.uuid("b", "nope");
        assert_eq!(v.opt_uuid("c", ""), None);
        v.text("d", "  ", 3);
        v.one_of("e", "x", &["y", "z"]);
        v.idempotency_key("k", "has space");
        let fields: Vec<_> = v.0.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["a", "b", "d", "e", "k"]);
        assert_eq!(v.0[1].1, "`nope` is not a UUID");
        assert!(v.finish().is_err());
    }
}
