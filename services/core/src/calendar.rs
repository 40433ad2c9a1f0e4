//! Working days under the Chinese statutory calendar, with its adjusted working weekends (调休).
//!
//! The data comes from the `chinese_holiday` crate (pinned in the workspace; it transcribes each
//! State Council notice, 2004 to 2026, including the 2020 Spring Festival extension). We chose it
//! over `holiday-cn`, whose pinned release ships an empty 2026 file. A campaign definition may
//! add or override days. A date the data does not cover is an error, never a guess.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "no working-day calendar data for year {0}; the statutory data covers {FIRST_YEAR}-01-01 to {LAST_DAY}"
    )]
    NoData(i32),
}

const FIRST_YEAR: i32 = 2004;
/// The last day `chinese_holiday` 2026.0.1 answers for.
const LAST_DAY: &str = "2026-12-25";

fn last_day() -> NaiveDate {
    NaiveDate::parse_from_str(LAST_DAY, "%Y-%m-%d").expect("constant date")
}

/// Which days are working days.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkCalendar {
    /// Campaign-specific days (true = day off), taking precedence over the statutory data.
    overrides: BTreeMap<NaiveDate, bool>,
}

impl WorkCalendar {
    /// The statutory calendar.
    pub fn statutory() -> Self {
        WorkCalendar::default()
    }

    pub fn set_day(&mut self, date: NaiveDate, off: bool) {
        self.overrides.insert(date, off);
    }

    pub fn covers(&self, year: i32) -> bool {
        (FIRST_YEAR..=last_day().year()).contains(&year)
    }

    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        if let Some(off) = self.overrides.get(&date) {
            return Ok(!off);
        }
        if date.year() < FIRST_YEAR || date > last_day() {
            return Err(CalendarError::NoData(date.year()));
        }
        let ymd =
            chinese_holiday::Ymd::new(date.year() as u16, date.month() as u8, date.day() as u8);
        Ok(chinese_holiday::chinese_holiday(ymd).is_workday())
    }

    /// The last day of a notice of `n` working days starting on `start`. The start day counts
    /// when it is a working day (the practice of the education-department notices we checked).
    pub fn nth_working_day(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        assert!(n > 0, "a notice lasts at least one working day");
        let mut day = start;
        let mut counted = 0;
        loop {
            if self.is_working_day(day)? {
                counted += 1;
                if counted == n {
                    return Ok(day);
                }
            }
            day = day
                .checked_add_days(Days::new(1))
                .ok_or(CalendarError::NoData(i32::MAX))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cal() -> WorkCalendar {
        WorkCalendar::statutory()
    }

    #[test]
    fn spring_festival_2020_includes_the_covid_extension() {
        let c = cal();
        // 1/19 (Sunday) was an adjusted working day.
        assert!(c.is_working_day(d("2020-01-19")).unwrap());
        for day in [
            "2020-01-24",
            "2020-01-27",
            "2020-01-30",
            "2020-01-31",
            "2020-02-01",
            "2020-02-02",
        ] {
            assert!(!c.is_working_day(d(day)).unwrap(), "{day} should be off");
        }
        assert!(c.is_working_day(d("2020-02-03")).unwrap());
    }

    #[test]
    fn labour_day_2020_and_its_adjusted_weekends() {
        let c = cal();
        assert!(c.is_working_day(d("2020-04-26")).unwrap()); // Sunday, worked
        assert!(c.is_working_day(d("2020-05-09")).unwrap()); // Saturday, worked
        for day in ["2020-05-01", "2020-05-04", "2020-05-05"] {
            assert!(!c.is_working_day(d(day)).unwrap());
        }
        assert!(c.is_working_day(d("2020-06-28")).unwrap()); // Dragon Boat make-up Sunday
        assert!(!c.is_working_day(d("2020-06-25")).unwrap());
        assert!(c.is_working_day(d("2020-09-27")).unwrap());
        assert!(!c.is_working_day(d("2020-10-08")).unwrap());
        assert!(c.is_working_day(d("2020-10-10")).unwrap());
    }

    #[test]
    fn schedule_2026_matches_the_state_council_notice() {
        let c = cal();
        assert!(c.is_working_day(d("2026-01-04")).unwrap());
        assert!(!c.is_working_day(d("2026-01-02")).unwrap());
        for day in ["2026-02-15", "2026-02-18", "2026-02-23"] {
            assert!(!c.is_working_day(d(day)).unwrap(), "{day}");
        }
        assert!(c.is_working_day(d("2026-02-14")).unwrap());
        assert!(c.is_working_day(d("2026-02-28")).unwrap());
        assert!(!c.is_working_day(d("2026-04-06")).unwrap());
        assert!(!c.is_working_day(d("2026-05-05")).unwrap());
        assert!(c.is_working_day(d("2026-05-09")).unwrap());
        assert!(!c.is_working_day(d("2026-06-19")).unwrap());
        assert!(!c.is_working_day(d("2026-09-25")).unwrap());
        assert!(c.is_working_day(d("2026-09-20")).unwrap());
        assert!(!c.is_working_day(d("2026-10-07")).unwrap());
        assert!(c.is_working_day(d("2026-10-10")).unwrap());
    }

    #[test]
    fn a_year_without_data_is_a_clear_error() {
        let c = WorkCalendar::statutory();
        assert_eq!(
            c.is_working_day(d("2099-03-02")),
            Err(CalendarError::NoData(2099))
        );
        assert!(CalendarError::NoData(2099).to_string().contains("2099"));
    }

    #[test]
    fn five_working_days_count_the_start_day_and_skip_holidays() {
        let c = cal();
        // Thursday 2020-04-30 → 4/30, then 5/1–5/5 off, 5/6, 5/7, 5/8, 5/9 (adjusted Saturday).
        assert_eq!(
            c.nth_working_day(d("2020-04-30"), 5).unwrap(),
            d("2020-05-09")
        );
        // A plain week: Monday to Friday.
        assert_eq!(
            c.nth_working_day(d("2020-03-09"), 5).unwrap(),
            d("2020-03-13")
        );
        // Starting on a Saturday: the start day does not count.
        assert_eq!(
            c.nth_working_day(d("2020-03-14"), 5).unwrap(),
            d("2020-03-20")
        );
    }
}
