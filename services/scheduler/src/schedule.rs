//! When things happen, as pure functions: when an obligation's reminders and overdue notice
//! fall ([`ObligationSchedule`], read alike by the planner and the preview), when a chat
//! message may leave (quiet hours, non-working days, Feishu's peak minutes), when the digest
//! runs, when a message counts as late. No I/O and no clock reads: every function takes the
//! instants it needs. The I/O side is the planner (`planning`).

use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use junheng_core::CampaignDefinition;
use junheng_core::calendar::WorkCalendar;
use junheng_core::definition::Reminders;
use junheng_core::time::{local_date, local_instant};

use crate::kind::Kind;

/// One planned reminder of an obligation: `offset_days` before its last day, at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occasion {
    pub offset_days: u32,
    pub at: DateTime<Utc>,
}

/// The last local day an obligation may still be done on: deadlines are exclusive ends
/// (the start of the next day), so an instant exactly at midnight belongs to the day before.
pub fn last_day(due: DateTime<Utc>, tz: Tz) -> NaiveDate {
    local_date(due - TimeDelta::seconds(1), tz)
}

/// Every reminder occasion of a deadline, earliest first: `reminders.morning` local time on
/// the day `offset` days before the last day (offset 0 = the morning of the last day).
/// Occasions that would fall at or after the deadline itself are dropped.
pub fn reminder_occasions(due: DateTime<Utc>, reminders: &Reminders, tz: Tz) -> Vec<Occasion> {
    let last = last_day(due, tz);
    let mut out: Vec<Occasion> = reminders
        .offsets_days
        .iter()
        .filter_map(|&d| {
            let day = last.checked_sub_days(Days::new(u64::from(d)))?;
            let at = local_instant(day, reminders.morning, tz);
            (at < due).then_some(Occasion { offset_days: d, at })
        })
        .collect();
    out.sort_by_key(|o| o.at);
    out.dedup_by_key(|o| o.at);
    out
}

/// The reminder to plan now, if any: the latest occasion that has arrived (`at <= now`), that
/// falls after the obligation was opened and before it is due. Earlier occasions missed during
/// downtime are collapsed into this one (catch-up policy for reminders: collapse).
pub fn due_reminder(
    occasions: &[Occasion],
    opened_at: DateTime<Utc>,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Occasion> {
    if now >= due {
        return None;
    }
    occasions
        .iter()
        .rev()
        .find(|o| o.at <= now && o.at >= opened_at)
        .copied()
}

/// What an open obligation sends: a reminder at each of its occasions since it was opened,
/// and the overdue notice at its deadline. The planner asks what is due at its instant
/// ([`Self::due_at`]); the preview asks what falls in a window ([`Self::between`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObligationSchedule {
    due: DateTime<Utc>,
    opened_at: DateTime<Utc>,
    occasions: Vec<Occasion>,
}

/// One message of an [`ObligationSchedule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObligationMessage {
    Reminder(Occasion),
    /// At the deadline itself.
    Overdue(DateTime<Utc>),
}

impl ObligationMessage {
    pub fn kind(&self) -> Kind {
        match self {
            ObligationMessage::Reminder(_) => Kind::Reminder,
            ObligationMessage::Overdue(_) => Kind::Overdue,
        }
    }

    /// The occasion: when the message is due (before quiet hours or a Feishu peak move it).
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            ObligationMessage::Reminder(o) => o.at,
            ObligationMessage::Overdue(at) => *at,
        }
    }
}

impl ObligationSchedule {
    /// The schedule of an obligation opened at `opened_at` and due at `due`.
    pub fn new(
        due: DateTime<Utc>,
        opened_at: DateTime<Utc>,
        reminders: &Reminders,
        tz: Tz,
    ) -> Self {
        Self {
            due,
            opened_at,
            occasions: reminder_occasions(due, reminders, tz),
        }
    }

    /// What planning at `now` writes, reminder first: the latest reminder that has arrived
    /// while the obligation is not yet due ([`due_reminder`]: missed ones collapse into it),
    /// and the overdue notice once it is due (sent late after downtime).
    pub fn due_at(&self, now: DateTime<Utc>) -> Vec<ObligationMessage> {
        let reminder = due_reminder(&self.occasions, self.opened_at, self.due, now)
            .map(ObligationMessage::Reminder);
        let overdue = (now >= self.due).then_some(ObligationMessage::Overdue(self.due));
        reminder.into_iter().chain(overdue).collect()
    }

    /// Every message whose occasion falls in `(after, until]`, earliest first: what planning
    /// will write in that window if nothing changes.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Iterator<Item = ObligationMessage> + '_ {
        self.occasions
            .iter()
            .filter(|o| o.at >= self.opened_at)
            .map(|o| ObligationMessage::Reminder(*o))
            .chain(std::iter::once(ObligationMessage::Overdue(self.due)))
            .filter(move |m| m.at() > after && m.at() <= until)
    }
}

/// Whole days from the local date of `now` to the last day (0 on the last day itself).
pub fn days_left(due: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> i64 {
    (last_day(due, tz) - local_date(now, tz)).num_days().max(0)
}

/// Whole days since the deadline, at least 1 once it has passed.
pub fn days_overdue(due: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> i64 {
    (local_date(now, tz) - last_day(due, tz)).num_days().max(1)
}

/// Quiet hours and non-working days for non-urgent chat messages.
#[derive(Debug, Clone, Copy)]
pub struct QuietRules<'a> {
    pub quiet_start: NaiveTime,
    pub quiet_end: NaiveTime,
    pub tz: Tz,
    pub calendar: &'a WorkCalendar,
}

impl<'a> QuietRules<'a> {
    /// The campaign definition's quiet hours (`reminders.quiet_start..quiet_end`) and
    /// working-day calendar.
    pub fn for_campaign(def: &'a CampaignDefinition) -> Self {
        QuietRules {
            quiet_start: def.reminders.quiet_start,
            quiet_end: def.reminders.quiet_end,
            tz: def.tz(),
            calendar: def.calendar(),
        }
    }
}

impl QuietRules<'_> {
    fn in_quiet_hours(&self, t: NaiveTime) -> bool {
        if self.quiet_start == self.quiet_end {
            false
        } else if self.quiet_start < self.quiet_end {
            t >= self.quiet_start && t < self.quiet_end
        } else {
            // Crosses midnight, e.g. 21:00–08:00.
            t >= self.quiet_start || t < self.quiet_end
        }
    }

    fn is_working(&self, day: NaiveDate) -> bool {
        // A year without calendar data falls back to Monday–Friday rather than failing a send.
        self.calendar
            .is_working_day(day)
            .unwrap_or(day.weekday().number_from_monday() <= 5)
    }

    /// The first instant at or after `at` when a non-urgent chat message may be delivered:
    /// outside quiet hours on a working day (held messages are released at `quiet_end`).
    pub fn next_allowed(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let local = at.with_timezone(&self.tz);
        let (mut day, time) = (local.date_naive(), local.time());
        let mut moved = false;
        if self.in_quiet_hours(time) {
            if self.quiet_start > self.quiet_end && time >= self.quiet_start {
                day = day.succ_opt().expect("date in range");
            }
            moved = true;
        }
        for _ in 0..366 {
            if self.is_working(day) {
                break;
            }
            day = day.succ_opt().expect("date in range");
            moved = true;
        }
        if moved {
            local_instant(day, self.quiet_end, self.tz).max(at)
        } else {
            at
        }
    }
}

/// When a message for an occasion at `at`, planned at `now`, may leave. `quiet` is given for
/// non-urgent chat messages only (quiet hours and non-working days hold them); e-mail, files
/// and urgent kinds leave at `at`. A message planned late (after downtime or a clock jump) is
/// held from `now`, not from `at`, so it never lands in quiet hours; planned late inside
/// allowed hours it keeps its own `at`, so older occasions still go first. A hold that would
/// reach `hold_limit` is not applied (a reminder held past its own deadline would be useless,
/// so it goes out in quiet time instead).
pub fn release(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    quiet: Option<&QuietRules<'_>>,
    hold_limit: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let Some(q) = quiet else {
        return at;
    };
    let t = if at < now && q.next_allowed(now) == now {
        at
    } else {
        q.next_allowed(at.max(now))
    };
    if hold_limit.is_some_and(|limit| t >= limit) {
        at
    } else {
        t
    }
}

/// When a message whose occasion is `at`, planned at `now`, leaves: `held_until` after any
/// hold of `quiet` ([`release`]; give `quiet` for non-urgent chat only), and `not_before`,
/// which for a non-urgent Feishu message (`feishu`) also keeps off the peak minutes
/// ([`off_feishu_peak`]). The planner stores both; the preview shows `not_before`.
pub fn departure(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    quiet: Option<&QuietRules<'_>>,
    feishu: bool,
    hold_limit: Option<DateTime<Utc>>,
) -> Departure {
    let held_until = release(at, now, quiet, hold_limit);
    let not_before = if feishu {
        off_feishu_peak(held_until, now, quiet, hold_limit)
    } else {
        held_until
    };
    Departure {
        held_until,
        not_before,
    }
}

/// See [`departure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    pub held_until: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
}

/// A message planned more than this after it was due to leave is *late*: it says so to the
/// reader ("（补发）" in the title, "原定于…发送，因系统停机延后补发。" in the body). A tick
/// runs every few seconds, and a season replay ticks a minute or so after an occasion, so
/// only real downtime (or a clock jump) crosses an hour; below that the reader would not
/// notice the delay and the note would only be noise.
pub const LATE_AFTER: TimeDelta = TimeDelta::hours(1);

/// Whether a message that was due to leave at `due_to_leave` is late when planned at `now`.
pub fn is_late(due_to_leave: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - due_to_leave > LATE_AFTER
}

/// "2020年4月11日08:30": a local instant as the late note names it (`core::text`; a midnight
/// reads as the previous day's 24时).
pub fn describe_local(at: DateTime<Utc>, tz: Tz) -> String {
    junheng_core::text::deadline_zh(at, tz)
}

/// Feishu throttles custom bots at the traffic peaks at exactly :00 and :30 (error 11232,
/// CHANNELS.md §3), so a non-urgent Feishu message due to leave in the first minute of a :00
/// or :30 leaves this much later instead. Deterministic (no jitter): every replica plans the
/// same instant, and messages keep their relative order.
pub const FEISHU_PEAK_SHIFT: TimeDelta = TimeDelta::minutes(2);

/// Whether `t` falls in the first minute of a :00 or :30, by the UTC minute. The peaks follow
/// Feishu's (China, UTC+8) traffic, and UTC+8 has the same minutes; a campaign in a zone with
/// a :30 or :45 offset is still kept off the vendor's peak rather than its own round times.
pub fn is_feishu_peak(t: DateTime<Utc>) -> bool {
    matches!(t.minute(), 0 | 30)
}

/// The `not_before` of a non-urgent Feishu message: `not_before` unchanged unless the message
/// would leave (at `not_before`, or at `now` when that is later, as a message planned late
/// does) in a peak minute; then that instant plus [`FEISHU_PEAK_SHIFT`], held again by
/// `quiet` if the shift crosses into quiet hours. A shift that would reach `hold_limit` (a
/// reminder's own deadline) is not applied.
pub fn off_feishu_peak(
    not_before: DateTime<Utc>,
    now: DateTime<Utc>,
    quiet: Option<&QuietRules<'_>>,
    hold_limit: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let leaves = not_before.max(now);
    if !is_feishu_peak(leaves) {
        return not_before;
    }
    let mut t = leaves;
    // A quiet hold ends at `quiet_end`, which may be a peak itself (08:00 → 08:02).
    for _ in 0..3 {
        if !is_feishu_peak(t) {
            break;
        }
        t += FEISHU_PEAK_SHIFT;
        if let Some(q) = quiet {
            t = q.next_allowed(t);
        }
    }
    if is_feishu_peak(t) || hold_limit.is_some_and(|limit| t >= limit) {
        not_before
    } else {
        t
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid digest cron `{expr}`: {reason}")]
pub struct CronError {
    pub expr: String,
    pub reason: String,
}

/// The latest digest occurrence in `(after, now]`, evaluated in the campaign time zone.
/// Missed occurrences collapse into the latest one (catch-up policy for digests).
pub fn digest_due(
    expr: &str,
    tz: Tz,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, CronError> {
    let schedule = cron::Schedule::from_str(expr).map_err(|e| CronError {
        expr: expr.into(),
        reason: e.to_string(),
    })?;
    let mut latest = None;
    for t in schedule.after(&after.with_timezone(&tz)) {
        let t = t.with_timezone(&Utc);
        if t > now {
            break;
        }
        latest = Some(t);
    }
    Ok(latest)
}

/// Digest occurrences in `(after, until]`, for the preview.
pub fn digest_occurrences(
    expr: &str,
    tz: Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, CronError> {
    let schedule = cron::Schedule::from_str(expr).map_err(|e| CronError {
        expr: expr.into(),
        reason: e.to_string(),
    })?;
    Ok(schedule
        .after(&after.with_timezone(&tz))
        .map(|t| t.with_timezone(&Utc))
        .take_while(|t| *t <= until)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tz() -> Tz {
        "Asia/Shanghai".parse().unwrap()
    }
    fn reminders() -> Reminders {
        Reminders {
            offsets_days: vec![7, 3, 1, 0],
            morning: NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
            quiet_start: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            quiet_end: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            digest_cron: "0 0 17 * * Mon-Fri".into(),
        }
    }
    fn local(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        tz().with_ymd_and_hms(y, m, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn occasions_fall_in_the_morning_before_the_last_day() {
        // Deadline: end of 2020-04-10 (exclusive 04-11 00:00 local).
        let due = local(2020, 4, 11, 0, 0);
        let occ = reminder_occasions(due, &reminders(), tz());
        let ats: Vec<_> = occ.iter().map(|o| (o.offset_days, o.at)).collect();
        assert_eq!(
            ats,
            vec![
                (7, local(2020, 4, 3, 8, 30)),
                (3, local(2020, 4, 7, 8, 30)),
                (1, local(2020, 4, 9, 8, 30)),
                (0, local(2020, 4, 10, 8, 30))
            ]
        );
        assert_eq!(days_left(due, local(2020, 4, 3, 8, 30), tz()), 7);
        assert_eq!(days_left(due, local(2020, 4, 10, 8, 30), tz()), 0);
        assert_eq!(days_overdue(due, local(2020, 4, 11, 0, 0), tz()), 1);
    }

    #[test]
    fn due_reminder_collapses_missed_occasions_and_skips_before_opening() {
        let due = local(2020, 4, 11, 0, 0);
        let occ = reminder_occasions(due, &reminders(), tz());
        let opened = local(2020, 3, 1, 0, 0);
        assert_eq!(
            due_reminder(&occ, opened, due, local(2020, 4, 3, 8, 29)),
            None
        );
        assert_eq!(
            due_reminder(&occ, opened, due, local(2020, 4, 3, 8, 30))
                .unwrap()
                .offset_days,
            7
        );
        // Down from 04-02 to 04-09 noon: one reminder, the latest.
        assert_eq!(
            due_reminder(&occ, opened, due, local(2020, 4, 9, 12, 0))
                .unwrap()
                .offset_days,
            1
        );
        // Opened on 04-08: the 7- and 3-day occasions predate it.
        assert_eq!(
            due_reminder(&occ, local(2020, 4, 8, 0, 0), due, local(2020, 4, 8, 12, 0)),
            None
        );
        assert_eq!(due_reminder(&occ, opened, due, due), None);
    }

    #[test]
    fn quiet_hours_and_non_working_days_hold_until_the_next_allowed_time() {
        let cal = WorkCalendar::statutory();
        let q = QuietRules {
            quiet_start: reminders().quiet_start,
            quiet_end: reminders().quiet_end,
            tz: tz(),
            calendar: &cal,
        };
        // Thursday 2020-04-09 22:00 → Friday 08:00.
        assert_eq!(
            q.next_allowed(local(2020, 4, 9, 22, 0)),
            local(2020, 4, 10, 8, 0)
        );
        // Friday 07:00 → 08:00 the same day.
        assert_eq!(
            q.next_allowed(local(2020, 4, 10, 7, 0)),
            local(2020, 4, 10, 8, 0)
        );
        // Friday 10:00 is fine.
        assert_eq!(
            q.next_allowed(local(2020, 4, 10, 10, 0)),
            local(2020, 4, 10, 10, 0)
        );
        // Saturday 10:00 → Monday 08:00.
        assert_eq!(
            q.next_allowed(local(2020, 4, 11, 10, 0)),
            local(2020, 4, 13, 8, 0)
        );
        // Friday 22:00 → Monday 08:00.
        assert_eq!(
            q.next_allowed(local(2020, 4, 10, 22, 0)),
            local(2020, 4, 13, 8, 0)
        );
        // 2020-05-01 is Labour Day (holiday through 05-05); 2020-04-26 (Sunday) was a working day.
        assert_eq!(
            q.next_allowed(local(2020, 5, 1, 10, 0)),
            local(2020, 5, 6, 8, 0)
        );
        assert_eq!(
            q.next_allowed(local(2020, 4, 26, 10, 0)),
            local(2020, 4, 26, 10, 0)
        );
    }

    fn quiet_rules(cal: &WorkCalendar) -> QuietRules<'_> {
        QuietRules {
            quiet_start: reminders().quiet_start,
            quiet_end: reminders().quiet_end,
            tz: tz(),
            calendar: cal,
        }
    }

    #[test]
    fn lateness_is_measured_from_when_the_message_was_due_to_leave() {
        let cal = WorkCalendar::statutory();
        let q = quiet_rules(&cal);
        let at = local(2020, 4, 9, 8, 30);
        assert!(!is_late(at, at));
        assert!(
            !is_late(at, local(2020, 4, 9, 9, 30)),
            "an hour is not late"
        );
        assert!(is_late(at, local(2020, 4, 9, 9, 31)));
        assert_eq!(describe_local(at, tz()), "2020年4月9日08:30");
        assert_eq!(
            describe_local(local(2020, 11, 20, 17, 5), tz()),
            "2020年11月20日17:05"
        );
        // Due Saturday 00:00: the e-mail was due to leave then, the chat message on Monday
        // 08:00 (quiet hours, weekend). Planned Monday 08:30, only the e-mail is late.
        let due = local(2020, 4, 11, 0, 0);
        let monday = local(2020, 4, 13, 8, 30);
        assert_eq!(release(due, due, None, None), due);
        assert_eq!(release(due, due, Some(&q), None), local(2020, 4, 13, 8, 0));
        assert!(is_late(release(due, due, None, None), monday));
        assert!(!is_late(release(due, due, Some(&q), None), monday));
        // Planned late inside allowed hours: keeps its own instant (older first) …
        assert_eq!(release(due, monday, Some(&q), None), due);
        // … in quiet hours: held from now.
        assert_eq!(
            release(due, local(2020, 4, 13, 7, 0), Some(&q), None),
            local(2020, 4, 13, 8, 0)
        );
        // Never held up to its own limit.
        let r = local(2020, 4, 10, 22, 0);
        assert_eq!(release(r, r, Some(&q), Some(due)), r);
    }

    #[test]
    fn feishu_messages_leave_after_the_peak_minutes() {
        let cal = WorkCalendar::statutory();
        let q = quiet_rules(&cal);
        let off = |t: DateTime<Utc>| off_feishu_peak(t, t, Some(&q), None);
        let two = FEISHU_PEAK_SHIFT;
        assert_eq!(two, TimeDelta::minutes(2));
        // The reminder morning (08:30) and the digest (17:00).
        assert_eq!(off(local(2020, 4, 9, 8, 30)), local(2020, 4, 9, 8, 32));
        assert_eq!(off(local(2020, 4, 9, 17, 0)), local(2020, 4, 9, 17, 2));
        // Anywhere in the first minute; the seconds are kept.
        let t = local(2020, 4, 9, 10, 0) + TimeDelta::seconds(59);
        assert_eq!(off(t), t + two);
        // Outside the peak minutes nothing moves.
        for m in [1, 29, 31, 59] {
            let t = local(2020, 4, 9, 10, m);
            assert_eq!(off(t), t, "10:{m:02}");
        }
        // Held to 08:00 by quiet hours: 08:02.
        let saturday = local(2020, 4, 11, 0, 1);
        let held = release(local(2020, 4, 11, 0, 0), saturday, Some(&q), None);
        assert_eq!(
            off_feishu_peak(held, saturday, Some(&q), None),
            local(2020, 4, 13, 8, 2)
        );
        // Planned late with its own (past) instant: it leaves now, so only `now` matters.
        let due = local(2020, 4, 9, 0, 0);
        assert_eq!(
            off_feishu_peak(due, local(2020, 4, 9, 10, 15), Some(&q), None),
            due
        );
        assert_eq!(
            off_feishu_peak(due, local(2020, 4, 9, 10, 30), Some(&q), None),
            local(2020, 4, 9, 10, 32)
        );
        // A shift into quiet hours is held to the next morning, and off that peak too.
        let late_start = QuietRules {
            quiet_start: NaiveTime::from_hms_opt(20, 31, 0).unwrap(),
            ..q
        };
        let t = local(2020, 4, 9, 20, 30);
        assert_eq!(
            off_feishu_peak(t, t, Some(&late_start), None),
            local(2020, 4, 10, 8, 2)
        );
        // Never moved up to a reminder's own deadline.
        let t = local(2020, 4, 9, 15, 30);
        assert_eq!(
            off_feishu_peak(t, t, Some(&q), Some(local(2020, 4, 9, 15, 31))),
            t
        );
        // Deterministic.
        assert_eq!(off(local(2020, 4, 9, 8, 30)), off(local(2020, 4, 9, 8, 30)));
    }

    #[test]
    fn digest_cron_runs_in_campaign_time() {
        let expr = "0 0 17 * * Mon-Fri";
        // Friday 2020-04-10 17:00 Shanghai = 09:00 UTC.
        let after = local(2020, 4, 10, 0, 0);
        assert_eq!(
            digest_due(expr, tz(), after, local(2020, 4, 10, 16, 59)).unwrap(),
            None
        );
        assert_eq!(
            digest_due(expr, tz(), after, local(2020, 4, 10, 17, 0)).unwrap(),
            Some(local(2020, 4, 10, 17, 0))
        );
        // Down over the weekend until Tuesday evening: one digest, Tuesday's.
        assert_eq!(
            digest_due(expr, tz(), after, local(2020, 4, 14, 18, 0)).unwrap(),
            Some(local(2020, 4, 14, 17, 0))
        );
        assert_eq!(
            digest_occurrences(expr, tz(), after, local(2020, 4, 14, 18, 0))
                .unwrap()
                .len(),
            3
        );
        assert!(digest_due("nonsense", tz(), after, after).is_err());
    }

    #[test]
    fn an_obligation_schedule_is_what_planning_and_the_preview_both_read() {
        let due = local(2020, 4, 11, 0, 0);
        let opened = local(2020, 4, 5, 0, 0);
        let s = ObligationSchedule::new(due, opened, &reminders(), tz());
        // Opened on 04-05: the 7-day occasion (04-03) predates it.
        let listed: Vec<_> = s
            .between(local(2020, 4, 1, 0, 0), local(2020, 4, 20, 0, 0))
            .map(|m| (m.kind(), m.at()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (Kind::Reminder, local(2020, 4, 7, 8, 30)),
                (Kind::Reminder, local(2020, 4, 9, 8, 30)),
                (Kind::Reminder, local(2020, 4, 10, 8, 30)),
                (Kind::Overdue, due),
            ]
        );
        assert!(s.due_at(local(2020, 4, 7, 8, 29)).is_empty());
        assert_eq!(
            s.due_at(local(2020, 4, 9, 12, 0)),
            vec![ObligationMessage::Reminder(Occasion {
                offset_days: 1,
                at: local(2020, 4, 9, 8, 30)
            })]
        );
        assert_eq!(
            s.due_at(local(2020, 4, 12, 0, 0)),
            vec![ObligationMessage::Overdue(due)]
        );
    }

    proptest::proptest! {
        /// Whatever the preview lists for a window is exactly what planning writes at each
        /// message's own instant, and nothing planning writes in the window is missing.
        #[test]
        fn the_preview_lists_what_planning_will_write(
            due_h in 24i64 * 3..24 * 40,
            opened_h in 0i64..24 * 40,
            after_h in 0i64..24 * 40,
            len_h in 0i64..24 * 20,
        ) {
            let base = local(2020, 4, 1, 0, 0);
            let h = |x: i64| base + TimeDelta::hours(x);
            let (due, opened) = (h(due_h), h(opened_h.min(due_h - 1)));
            let s = ObligationSchedule::new(due, opened, &reminders(), tz());
            let (after, until) = (h(after_h), h(after_h + len_h));
            let listed: Vec<ObligationMessage> = s.between(after, until).collect();
            for m in &listed {
                proptest::prop_assert!(s.due_at(m.at()).contains(m), "{m:?} not planned at its instant");
            }
            // Planning every hour of the window finds nothing the preview left out.
            let mut t = after + TimeDelta::hours(1);
            while t <= until {
                for m in s.due_at(t) {
                    if m.at() > after && m.at() <= t {
                        proptest::prop_assert!(listed.contains(&m), "{m:?} planned at {t} but not listed");
                    }
                }
                t += TimeDelta::hours(1);
            }
        }
    }
}
