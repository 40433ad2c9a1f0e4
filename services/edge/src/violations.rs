//! Collects field violations so one response can list every problem at once
//! ([`ApiError::Invalid`]). Only campaign-agnostic checks live here; a service adds its own
//! (enum fields, domain values) on top.

use chrono::NaiveDate;
use uuid::Uuid;

use crate::status::ApiError;
use crate::values::{Email, EmailError, IdempotencyKey};

#[derive(Debug, Default)]
pub struct Violations(pub Vec<(String, String)>);

/// At most this many characters of a bad input are echoed back.
const ECHO_CHARS: usize = 64;

/// RFC 5321's limit on a forward path.
pub const MAX_EMAIL_CHARS: usize = 254;

/// A bad input as quoted back to the caller: its first [`ECHO_CHARS`] characters (and "…" when
/// it was longer), control characters shown as `\u{..}` escapes, so an over-long or binary value
/// never makes the reply's message or details big.
pub fn echo(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == ECHO_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The control character (Unicode category Cc: C0, DEL, C1) that makes `s` unsafe to store or
/// show, if any. Tab, line feed and carriage return are allowed: multi-line text (reasons,
/// statements, descriptions) is legitimate. PostgreSQL refuses NUL outright; the others are
/// refused so no stored text can corrupt a document, a CSV export or a terminal.
pub fn control_char(s: &str) -> Option<char> {
    s.chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// `YYYY-MM-DD` exactly: ten characters, zero-padded, four-digit year.
fn strict_date_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
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

    /// Refuses a control character (see [`control_char`]) in any string; true when `s` is
    /// clean. Every string a caller sends passes through this or a parser that calls it.
    pub fn clean(&mut self, field: &str, s: &str) -> bool {
        match control_char(s) {
            None => true,
            Some(c) => {
                self.add(
                    field,
                    format!(
                        "contains the control character {} (not allowed)",
                        c.escape_unicode()
                    ),
                );
                false
            }
        }
    }

    /// Required text, trimmed, of at most `max_chars` characters, without control characters.
    pub fn text(&mut self, field: &str, s: &str, max_chars: usize) -> String {
        let t = s.trim();
        if t.is_empty() {
            self.add(field, "required");
        } else if t.chars().count() > max_chars {
            self.add(field, format!("at most {max_chars} characters"));
        } else {
            self.clean(field, t);
        }
        t.to_string()
    }

    /// Optional text (empty allowed), trimmed, of at most `max_chars` characters, without
    /// control characters.
    pub fn optional_text(&mut self, field: &str, s: &str, max_chars: usize) -> String {
        let t = s.trim();
        if t.chars().count() > max_chars {
            self.add(field, format!("at most {max_chars} characters"));
        } else {
            self.clean(field, t);
        }
        t.to_string()
    }

    /// An e-mail address (trimmed; empty means absent), accepted exactly when lettre's
    /// `Address` accepts it, so the mailer never meets an address it refuses (as text; see
    /// [`email_address`](Self::email_address) for the parsed value).
    pub fn email(&mut self, field: &str, s: &str) -> Option<String> {
        self.email_address(field, s).map(String::from)
    }

    /// [`email`](Self::email) as the parsed [`Email`].
    pub fn email_address(&mut self, field: &str, s: &str) -> Option<Email> {
        let t = s.trim();
        if t.is_empty() {
            return None;
        }
        match Email::parse(t) {
            Ok(e) => Some(e),
            Err(EmailError::Refused(e)) => {
                self.add(
                    field,
                    format!("`{}` is not an e-mail address ({e})", echo(t)),
                );
                None
            }
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    /// A page token that is a positive row id (as a list returned it); empty means the first
    /// page (0). Signs, spaces, zero and anything but decimal digits are refused.
    pub fn id_page_token(&mut self, field: &str, s: &str) -> i64 {
        if s.is_empty() {
            return 0;
        }
        match s.parse::<i64>() {
            Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                self.add(field, "not a token returned by this call");
                0
            }
        }
    }

    /// An expected version: 0 means "don't check".
    pub fn version(&mut self, field: &str, v: i64) -> i64 {
        if v < 0 {
            self.add(field, "must be 0 (don't check) or a positive version");
        }
        v
    }

    /// A date written exactly `YYYY-MM-DD` (zero-padded; `2020-5-15` is refused).
    pub fn date(&mut self, field: &str, s: &str) -> NaiveDate {
        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) if strict_date_shape(s) => d,
            _ => {
                self.add(field, format!("`{}` is not a date (YYYY-MM-DD)", echo(s)));
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
    pub fn idempotency_key(&mut self, field: &str, key: &str) -> Option<IdempotencyKey> {
        let k = IdempotencyKey::parse(key);
        if k.is_none() {
            self.add(
                field,
                "required: 1 to 128 printable ASCII characters without spaces",
            );
        }
        k
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

    #[test]
    fn refuses_control_characters_but_not_line_breaks() {
        let mut v = Violations::default();
        assert_eq!(v.text("a", "第一行\n第二行\t尾", 100), "第一行\n第二行\t尾");
        v.text("b", "长乐\0一中", 100);
        v.optional_text("c", "\u{1b}[31m", 100);
        v.optional_text("d", "", 100);
        v.text("e", "x\u{7f}", 100);
        let fields: Vec<_> = v.0.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["b", "c", "e"]);
        assert_eq!(
            v.0[0].1,
            "contains the control character \\u{0} (not allowed)"
        );
    }

    #[test]
    fn id_page_tokens_are_positive_ids() {
        let mut v = Violations::default();
        assert_eq!(v.id_page_token("a", ""), 0);
        assert_eq!(v.id_page_token("b", "42"), 42);
        for (f, t) in [
            ("c", "-5"),
            ("d", "+5"),
            ("e", "0"),
            ("f", " 5"),
            ("g", "99999999999999999999"),
        ] {
            v.id_page_token(f, t);
        }
        let fields: Vec<_> = v.0.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["c", "d", "e", "f", "g"]);
    }

    #[test]
    fn dates_are_zero_padded() {
        let mut v = Violations::default();
        assert_eq!(
            v.date("a", "2020-05-15"),
            NaiveDate::from_ymd_opt(2020, 5, 15).unwrap()
        );
        v.date("b", "2020-5-15");
        v.date("c", "+10000-01-02");
        v.date("d", "2020-05-15 ");
        v.date("e", "2020-02-30");
        let fields: Vec<_> = v.0.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["b", "c", "d", "e"]);
    }

    #[test]
    fn emails_as_lettre_accepts_them() {
        let mut v = Violations::default();
        assert_eq!(
            v.email("a", " wang@schools.changle.example "),
            Some("wang@schools.changle.example".into())
        );
        assert_eq!(v.email("b", ""), None);
        v.email("c", "wang@@example.cn");
        v.email("d", "wang@exa mple.cn");
        v.email("e", "wang\0@example.cn");
        v.email("f", "王校长 <wang@example.cn>");
        let fields: Vec<_> = v.0.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["c", "d", "e", "f"]);
    }

    #[test]
    fn echoes_only_a_prefix() {
        let long = "x".repeat(100_000);
        let e = echo(&long);
        assert_eq!(e.chars().count(), ECHO_CHARS + 1);
        assert!(e.ends_with('…'));
        assert_eq!(echo("a\0b"), "a\\u{0}b");
        let mut v = Violations::default();
        v.uuid("id", &long);
        assert!(v.0[0].1.len() < 200, "{}", v.0[0].1.len());
    }
}
