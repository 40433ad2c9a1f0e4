//! Working days under the Chinese statutory calendar, with its adjusted working weekends (调休).
//!
//! Each year's State Council schedule (国务院办公厅关于部分节假日安排的通知) is a data file,
//! `deploy/calendars/<year>.toml`: the holidays with the days off and the make-up working days;
//! Saturdays and Sundays are off unless a holiday lists them as working. The files shipped
//! (2004–2026) were generated once from the `chinese_holiday` crate, which transcribes each
//! notice including the 2020 Spring Festival extension (a test checks they agree with it); a
//! bureau adds the next year's file when the State Council publishes it, without a release.
//!
//! This module stays pure: [`parse_year`] takes a file's text, [`Calendars::shipped`] the copies
//! compiled in; the workflow reads the directory and hands the parsed years over. A campaign
//! definition may add or override single days. A date without a year's data is an error, never
//! a guess.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "no working-day calendar data for year {0}; add deploy/calendars/{0}.toml (the State Council's holiday schedule for {0})"
    )]
    NoData(i32),
}

/// Where a bureau adds a year's schedule, relative to the installation.
pub fn file_for(year: i32) -> String {
    format!("deploy/calendars/{year}.toml")
}

/// A problem in a calendar file: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {field}: {reason}")]
pub struct CalendarFileError {
    /// The file (or the name the caller gave the text).
    pub source_name: String,
    pub field: String,
    pub reason: String,
}

/// One holiday of a year's schedule, as the State Council's notice lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    /// 春节, 国庆节, …
    pub name: String,
    /// The days off (weekends inside the holiday included, as the notice lists them).
    pub off: Vec<NaiveDate>,
    /// The make-up working days (调休上班), usually a Saturday or Sunday.
    pub working: Vec<NaiveDate>,
}

/// A year's schedule: its holidays; every other day is a working day from Monday to Friday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearSchedule {
    pub year: i32,
    pub holidays: Vec<Holiday>,
    off: BTreeSet<NaiveDate>,
    working: BTreeSet<NaiveDate>,
}

impl YearSchedule {
    /// A validated schedule: every date in `year`, no day both off and working, names given.
    pub fn new(
        year: i32,
        holidays: Vec<Holiday>,
        source_name: &str,
    ) -> Result<YearSchedule, CalendarFileError> {
        let err = |field: String, reason: String| CalendarFileError {
            source_name: source_name.to_string(),
            field,
            reason,
        };
        if !(1949..=9999).contains(&year) {
            return Err(err("year".into(), format!("{year} is not a year")));
        }
        let mut off = BTreeSet::new();
        let mut working = BTreeSet::new();
        for (i, h) in holidays.iter().enumerate() {
            if h.name.trim().is_empty() {
                return Err(err(
                    format!("holidays[{i}].name"),
                    "a holiday needs its name".into(),
                ));
            }
            for (list, days) in [("off", &h.off), ("working", &h.working)] {
                for (j, d) in days.iter().enumerate() {
                    if d.year() != year {
                        return Err(err(
                            format!("holidays[{i}].{list}[{j}]"),
                            format!("{d} is not in {year}"),
                        ));
                    }
                }
            }
            off.extend(h.off.iter().copied());
            working.extend(h.working.iter().copied());
        }
        if let Some(d) = off.intersection(&working).next() {
            let (i, _) = holidays
                .iter()
                .enumerate()
                .find(|(_, h)| h.working.contains(d))
                .expect("the day is in some holiday's working days");
            return Err(err(
                format!("holidays[{i}].working"),
                format!("{d} is listed both as a day off and as a working day"),
            ));
        }
        Ok(YearSchedule {
            year,
            holidays,
            off,
            working,
        })
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.off.contains(&date) {
            return false;
        }
        if self.working.contains(&date) {
            return true;
        }
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The schedule as a data file (the format [`parse_year`] reads).
    pub fn to_toml(&self, header: &str) -> String {
        let dates = |ds: &[NaiveDate]| {
            ds.iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = String::new();
        for line in header.lines() {
            out.push_str(&format!("# {line}\n"));
        }
        out.push_str(&format!("year = {}\n", self.year));
        for h in &self.holidays {
            out.push_str(&format!(
                "\n[[holidays]]\nname = \"{}\"\noff = [{}]\nworking = [{}]\n",
                h.name,
                dates(&h.off),
                dates(&h.working)
            ));
        }
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    year: i32,
    #[serde(default)]
    holidays: Vec<RawHoliday>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: String,
    #[serde(default)]
    off: Vec<String>,
    #[serde(default)]
    working: Vec<String>,
}

/// Parses and validates one year's file. `source_name` names it in errors (its path).
pub fn parse_year(text: &str, source_name: &str) -> Result<YearSchedule, CalendarFileError> {
    let raw: RawYear = toml::from_str(text).map_err(|e| CalendarFileError {
        source_name: source_name.to_string(),
        field: "file".into(),
        reason: e.message().trim().to_string(),
    })?;
    let mut holidays = Vec::new();
    for (i, h) in raw.holidays.into_iter().enumerate() {
        let mut lists: [Vec<NaiveDate>; 2] = Default::default();
        for (k, (list, days)) in [("off", &h.off), ("working", &h.working)]
            .into_iter()
            .enumerate()
        {
            for (j, d) in days.iter().enumerate() {
                let date =
                    NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| CalendarFileError {
                        source_name: source_name.to_string(),
                        field: format!("holidays[{i}].{list}[{j}]"),
                        reason: format!("{d:?} is not a date (YYYY-MM-DD)"),
                    })?;
                lists[k].push(date);
            }
        }
        let [off, working] = lists;
        holidays.push(Holiday {
            name: h.name,
            off,
            working,
        });
    }
    YearSchedule::new(raw.year, holidays, source_name)
}

/// The years with a schedule, by year.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Calendars {
    years: BTreeMap<i32, Arc<YearSchedule>>,
}

/// The shipped files, compiled in, so tests and the demo need no directory.
macro_rules! shipped {
    ($($year:literal),*) => {
        &[$((concat!("deploy/calendars/", $year, ".toml"),
             include_str!(concat!("../../../deploy/calendars/", $year, ".toml")))),*]
    };
}

const SHIPPED: &[(&str, &str)] = shipped!(
    "2004", "2005", "2006", "2007", "2008", "2009", "2010", "2011", "2012", "2013", "2014", "2015",
    "2016", "2017", "2018", "2019", "2020", "2021", "2022", "2023", "2024", "2025", "2026"
);

impl Calendars {
    /// The schedules shipped with this release (2004–2026).
    pub fn shipped() -> &'static Calendars {
        static SHIPPED_YEARS: OnceLock<Calendars> = OnceLock::new();
        SHIPPED_YEARS.get_or_init(|| {
            let mut c = Calendars::default();
            for (name, text) in SHIPPED {
                c.insert(parse_year(text, name).expect("a shipped calendar file is valid"));
            }
            c
        })
    }

    /// Adds a year, replacing the schedule it had (a corrected file wins over a shipped one).
    pub fn insert(&mut self, year: YearSchedule) {
        self.years.insert(year.year, Arc::new(year));
    }

    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    pub fn year(&self, year: i32) -> Option<&YearSchedule> {
        self.years.get(&year).map(|y| &**y)
    }
}

/// Which days are working days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkCalendar {
    years: Calendars,
    /// Campaign-specific days (true = day off), taking precedence over the statutory data.
    overrides: BTreeMap<NaiveDate, bool>,
}

impl Default for WorkCalendar {
    fn default() -> Self {
        WorkCalendar::statutory()
    }
}

impl WorkCalendar {
    /// The statutory calendar of the shipped years.
    pub fn statutory() -> Self {
        WorkCalendar::with_years(Calendars::shipped().clone())
    }

    /// The statutory calendar of these years (the shipped ones and those a bureau added).
    pub fn with_years(years: Calendars) -> Self {
        WorkCalendar {
            years,
            overrides: BTreeMap::new(),
        }
    }

    pub fn set_day(&mut self, date: NaiveDate, off: bool) {
        self.overrides.insert(date, off);
    }

    pub fn covers(&self, year: i32) -> bool {
        self.years.covers(year)
    }

    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        if let Some(off) = self.overrides.get(&date) {
            return Ok(!off);
        }
        self.years
            .year(date.year())
            .map(|y| y.is_working_day(date))
            .ok_or(CalendarError::NoData(date.year()))
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
    fn a_year_without_data_is_a_clear_error_naming_the_file_to_add() {
        let c = WorkCalendar::statutory();
        assert_eq!(
            c.is_working_day(d("2027-03-02")),
            Err(CalendarError::NoData(2027))
        );
        assert_eq!(
            CalendarError::NoData(2027).to_string(),
            "no working-day calendar data for year 2027; add deploy/calendars/2027.toml (the State Council's holiday schedule for 2027)"
        );
        assert!(!c.covers(2003) && c.covers(2004) && c.covers(2026) && !c.covers(2027));
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

    /// A synthetic year with a made-up holiday: a bureau's file is all it takes.
    const Y2031: &str = r#"
year = 2031

[[holidays]]
name = "县庆"
off = ["2031-03-05", "2031-03-06", "2031-03-07"]
working = ["2031-03-08"]
"#;

    #[test]
    fn a_bureau_file_adds_a_year_and_notice_periods_count_its_working_days() {
        let y = parse_year(Y2031, "deploy/calendars/2031.toml").unwrap();
        assert_eq!(y.holidays[0].name, "县庆");
        let mut years = Calendars::shipped().clone();
        assert!(!years.covers(2031));
        years.insert(y);
        let c = WorkCalendar::with_years(years);
        // Monday 3/3 and Tuesday 3/4 work; Wednesday–Friday off; Saturday 3/8 works; Monday
        // 3/10 is the fourth working day; Sunday 3/9 stays off.
        assert!(!c.is_working_day(d("2031-03-05")).unwrap());
        assert!(c.is_working_day(d("2031-03-08")).unwrap());
        assert!(!c.is_working_day(d("2031-03-09")).unwrap());
        assert_eq!(
            c.nth_working_day(d("2031-03-03"), 5).unwrap(),
            d("2031-03-11")
        );
        // Without the file the same count is refused, naming the year.
        assert_eq!(
            cal().nth_working_day(d("2031-03-03"), 5),
            Err(CalendarError::NoData(2031))
        );
    }

    #[test]
    fn a_calendar_file_is_validated_field_by_field() {
        let bad = |text: &str| parse_year(text, "2031.toml").unwrap_err();
        let e = bad("year = 2031\n[[holidays]]\nname = \"春节\"\noff = [\"2030-12-31\"]\n");
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            ("holidays[0].off[0]", "2030-12-31 is not in 2031")
        );
        let e = bad(
            "year = 2031\n[[holidays]]\nname = \"春节\"\noff = [\"2031-01-25\"]\n[[holidays]]\nname = \"元旦\"\nworking = [\"2031-01-25\"]\n",
        );
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            (
                "holidays[1].working",
                "2031-01-25 is listed both as a day off and as a working day"
            )
        );
        let e = bad("year = 2031\n[[holidays]]\nname = \" \"\n");
        assert_eq!(e.field, "holidays[0].name");
        let e = bad("year = 2031\n[[holidays]]\nname = \"春节\"\noff = [\"2031-02-30\"]\n");
        assert_eq!(e.field, "holidays[0].off[0]");
        let e = bad("year = 2031\nholiday = []\n");
        assert_eq!(e.field, "file");
        assert!(
            e.to_string().starts_with("2031.toml: file: unknown field"),
            "{e}"
        );
        // Weekends default to off: a file with no holidays is a plain year.
        let plain = parse_year("year = 2031\n", "2031.toml").unwrap();
        assert!(!plain.is_working_day(d("2031-03-08")));
        assert!(plain.is_working_day(d("2031-03-07")));
    }

    /// The last day `chinese_holiday` 2026.0.1 answers for.
    fn crate_last_day() -> NaiveDate {
        d("2026-12-25")
    }

    fn crate_says_working(date: NaiveDate) -> bool {
        let ymd =
            chinese_holiday::Ymd::new(date.year() as u16, date.month() as u8, date.day() as u8);
        chinese_holiday::chinese_holiday(ymd).is_workday()
    }

    #[test]
    fn the_shipped_files_agree_with_the_holiday_crate_on_every_day() {
        let c = Calendars::shipped();
        assert_eq!(
            c.years().collect::<Vec<_>>(),
            (2004..=2026).collect::<Vec<_>>()
        );
        let mut day = d("2004-01-01");
        while day <= crate_last_day() {
            let y = c.year(day.year()).unwrap();
            assert_eq!(y.is_working_day(day), crate_says_working(day), "{day}");
            day = day.succ_opt().unwrap();
        }
    }

    fn holiday_name(kind: chinese_holiday::DayKind) -> Option<(&'static str, bool)> {
        use chinese_holiday::DayKind as K;
        Some(match kind {
            K::NewYearsDayHoliday => ("元旦", true),
            K::NewYearsDayWorkday => ("元旦", false),
            K::SpringFestivalHoliday => ("春节", true),
            K::SpringFestivalWorkday => ("春节", false),
            K::ChingMingFestivalHoliday => ("清明节", true),
            K::ChingMingFestivalWorkday => ("清明节", false),
            K::InternationalWorkersDayHoliday => ("劳动节", true),
            K::InternationalWorkersDayWorkday => ("劳动节", false),
            K::DragonBoatFestivalHoliday => ("端午节", true),
            K::DragonBoatFestivalWorkday => ("端午节", false),
            K::MidAutumnFestivalHoliday => ("中秋节", true),
            K::MidAutumnFestivalWorkday => ("中秋节", false),
            K::NationalDayHoliday => ("国庆节", true),
            K::NationalDayWorkday => ("国庆节", false),
            K::OtherHoliday => ("其他安排", true),
            K::OtherWorkday => ("其他安排", false),
            K::NormalWorkday | K::NormalHoliday => return None,
        })
    }

    /// Writes `deploy/calendars/2004.toml` … `2026.toml` from the crate. Run once, by hand:
    /// `cargo test -p junheng-core --lib calendar::tests::write_the_shipped_files -- --ignored`.
    #[test]
    #[ignore = "generates the shipped files; run by hand"]
    fn write_the_shipped_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/calendars");
        std::fs::create_dir_all(&dir).unwrap();
        for year in 2004..=2026 {
            let mut holidays: Vec<Holiday> = Vec::new();
            let mut day = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
            while day.year() == year && day <= crate_last_day() {
                let ymd = chinese_holiday::Ymd::new(
                    day.year() as u16,
                    day.month() as u8,
                    day.day() as u8,
                );
                if let Some((name, off)) = holiday_name(chinese_holiday::chinese_holiday(ymd)) {
                    let h = match holidays.iter_mut().find(|h| h.name == name) {
                        Some(h) => h,
                        None => {
                            holidays.push(Holiday {
                                name: name.into(),
                                off: Vec::new(),
                                working: Vec::new(),
                            });
                            holidays.last_mut().unwrap()
                        }
                    };
                    if off {
                        h.off.push(day)
                    } else {
                        h.working.push(day)
                    }
                }
                day = day.succ_opt().unwrap();
            }
            let y = YearSchedule::new(year, holidays, "generated").unwrap();
            let header = format!(
                "{year}年部分节假日安排（国务院办公厅通知），由 chinese_holiday 2026.0.1 生成。\n\
                 周六、周日默认休息；off 为放假日，working 为调休上班日。"
            );
            std::fs::write(dir.join(format!("{year}.toml")), y.to_toml(&header)).unwrap();
        }
    }
}
