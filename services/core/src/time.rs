//! Local-time arithmetic in the campaign's time zone. Pure: "now" is always passed in.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant a local calendar day starts. Midnight exists in every zone the bureau uses, but
/// a zone with a midnight DST gap would start the day at the first valid instant.
pub fn start_of_day(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    local_instant(day, NaiveTime::MIN, tz)
}

/// A local wall-clock time on a day, as an instant (the earlier one if ambiguous).
pub fn local_instant(day: NaiveDate, time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let naive = day.and_time(time);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.with_timezone(&Utc)
        }
        chrono::LocalResult::None => {
            let later = naive + chrono::Duration::hours(1);
            tz.from_local_datetime(&later)
                .earliest()
                .expect("one hour past a DST gap exists")
                .with_timezone(&Utc)
        }
    }
}

/// The local calendar date of an instant.
pub fn local_date(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// Formats an instant in local time for Chinese messages, e.g. `2020-04-30 24:00` is shown as
/// the last day's end: `2020年4月30日 24:00`.
pub fn describe_deadline(deadline: DateTime<Utc>, tz: Tz) -> String {
    let local = deadline.with_timezone(&tz);
    if local.time() == NaiveTime::MIN {
        let last = local.date_naive().pred_opt().expect("date in range");
        format!("{} 24:00", last.format("%Y-%m-%d"))
    } else {
        local.format("%Y-%m-%d %H:%M").to_string()
    }
}
