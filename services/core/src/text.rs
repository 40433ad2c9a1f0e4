//! How dates and times read in every text a person reads (reminders, digests, summaries,
//! notices, exports): 2020年4月30日, a deadline at the end of a day as 2020年4月30日24时, a time of
//! day as 2020年4月9日08:30, all in campaign time, without Western spaces. The one place these
//! formats live; English logs and error messages keep ISO dates.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

/// 2020年4月30日
pub fn date_zh(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// An instant in campaign time: the end of a day (the next midnight) as 2020年4月30日24时,
/// any other instant as 2020年4月9日08:30.
pub fn deadline_zh(at: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    if local.time() == NaiveTime::MIN {
        let last = local.date_naive().pred_opt().expect("date in range");
        format!("{}24时", date_zh(last))
    } else {
        format!(
            "{}{:02}:{:02}",
            date_zh(local.date_naive()),
            local.hour(),
            local.minute()
        )
    }
}

/// A period of days: 2020年4月30日至2020年5月9日.
pub fn period_zh(first: NaiveDate, last: NaiveDate) -> String {
    format!("{}至{}", date_zh(first), date_zh(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz() -> Tz {
        "Asia/Shanghai".parse().unwrap()
    }

    #[test]
    fn dates_and_times_read_as_a_bureau_writes_them() {
        let d = NaiveDate::from_ymd_opt(2020, 4, 30).unwrap();
        assert_eq!(date_zh(d), "2020年4月30日");
        let midnight = DateTime::parse_from_rfc3339("2020-05-01T00:00:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(deadline_zh(midnight, tz()), "2020年4月30日24时");
        let morning = DateTime::parse_from_rfc3339("2020-04-09T08:30:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(deadline_zh(morning, tz()), "2020年4月9日08:30");
        assert_eq!(
            period_zh(d, NaiveDate::from_ymd_opt(2020, 5, 9).unwrap()),
            "2020年4月30日至2020年5月9日"
        );
    }
}
