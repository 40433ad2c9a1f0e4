//! Chinese date and time formats for the pages (2020年4月30日). A small local helper; the
//! notification texts have their own (the two are to be unified).

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

pub fn date(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// A local instant: 2020年4月30日 17:00.
pub fn instant(at: DateTime<Utc>, tz: Tz) -> String {
    let l = at.with_timezone(&tz);
    format!("{} {:02}:{:02}", date(l.date_naive()), l.hour(), l.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_the_chinese_way() {
        assert_eq!(
            date(NaiveDate::from_ymd_opt(2020, 4, 3).unwrap()),
            "2020年4月3日"
        );
        let at = DateTime::parse_from_rfc3339("2020-04-30T09:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            instant(at, chrono_tz::Asia::Shanghai),
            "2020年4月30日 17:00"
        );
    }
}
