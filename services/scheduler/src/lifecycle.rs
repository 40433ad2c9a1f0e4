//! The outbox row's lifecycle, as pure decisions: what to do with a claimed row (send, cancel,
//! park, defer) and how a send's outcome settles it (sent, retry at, dead, disable the
//! endpoint). No I/O and no clock reads: the dispatcher (`dispatch::{claim, send, finish}`)
//! gathers the facts, asks here, and writes the answer in SQL.
//!
//! Statuses (`outbox.status`, `CHECK`ed by the migrations):
//!
//! ```text
//! pending ─┬─ claim ─▶ sending ─┬─ delivered ──────────────▶ sent
//! held  ───┘   │                ├─ retry, attempts left ───▶ pending (not_before = retry at)
//!              │                ├─ retry, none left / permanent ─▶ dead
//!              │                ├─ endpoint gone ──────────▶ parked ── EnableEndpoint ─▶ pending
//!              │                └─ lease expired ─ claim again (same id, next attempt)
//!              ├─ obligation done / moved / superseded ─▶ cancelled
//!              ├─ endpoint disabled ─▶ parked
//!              └─ over the rate limit ─▶ pending (not_before = when the window frees)
//! ```
//!
//! Invariant (migration 0006 enforces it): `lease_until` is set exactly while a row is
//! `sending` ([`OutboxStatus::has_lease`]).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use junheng_notify::Outcome;
use junheng_store::obligations::ObligationStatus;
use sqlx::Postgres;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use uuid::Uuid;

use crate::schedule;

/// `outbox.status`. Stored as `text`; [`OutboxStatus::as_str`] and [`FromStr`] are the one
/// mapping, and the sqlx impls go through them. SQL that must name a status literally (the
/// partial indexes `outbox_due_order` and `outbox_parked` are only used by a query whose
/// predicate repeats theirs: a bound parameter would hide it from the planner) uses exactly
/// these names; `tests/dispatch.rs` checks them against the table's `CHECK` constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Waiting for `not_before`.
    Pending,
    /// Held by quiet hours until `not_before` (a non-urgent chat message).
    Held,
    /// Claimed by a worker until `lease_until`; the only status with a lease.
    Sending,
    Sent,
    /// Dead letter (`last_error` says why).
    Dead,
    /// Not worth sending any more (the obligation is done, its deadline moved, a later
    /// reminder superseded it).
    Cancelled,
    /// Its endpoint is disabled; released to `pending` when it is enabled again.
    Parked,
}

impl OutboxStatus {
    /// Every status, in the order the API lists them.
    pub const ALL: [OutboxStatus; 7] = [
        Self::Pending,
        Self::Held,
        Self::Sending,
        Self::Sent,
        Self::Dead,
        Self::Cancelled,
        Self::Parked,
    ];

    /// [`Self::ALL`]'s names, in the same order.
    pub const NAMES: [&'static str; 7] = {
        let mut names = [""; 7];
        let mut i = 0;
        while i < names.len() {
            names[i] = Self::ALL[i].as_str();
            i += 1;
        }
        names
    };

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Held => "held",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
            Self::Parked => "parked",
        }
    }

    /// Whether a row in this status has a `lease_until` (and no other status has one).
    pub const fn has_lease(self) -> bool {
        matches!(self, Self::Sending)
    }

    /// Whether the claim picks the row up once `not_before` has come.
    pub const fn is_due_status(self) -> bool {
        matches!(self, Self::Pending | Self::Held)
    }
}

impl fmt::Display for OutboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an outbox status")]
pub struct UnknownStatus(pub String);

impl FromStr for OutboxStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl sqlx::Type<Postgres> for OutboxStatus {
    fn type_info() -> PgTypeInfo {
        <&str as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl PgHasArrayType for OutboxStatus {
    fn array_type_info() -> PgTypeInfo {
        <&str as PgHasArrayType>::array_type_info()
    }

    fn array_compatible(ty: &PgTypeInfo) -> bool {
        <&str as PgHasArrayType>::array_compatible(ty)
    }
}

impl sqlx::Encode<'_, Postgres> for OutboxStatus {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&str as sqlx::Encode<Postgres>>::encode(self.as_str(), buf)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for OutboxStatus {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(<&str as sqlx::Decode<Postgres>>::decode(value)?.parse()?)
    }
}

// ---------------------------------------------------------------------------------------
// The claim: what to do with a row picked up by `FOR UPDATE SKIP LOCKED`.

/// What the claim knows of a row it picked up (due, or its lease expired).
#[derive(Debug, Clone, Copy)]
pub struct ClaimFacts<'a> {
    pub reminder: bool,
    pub recipient: &'a str,
    pub endpoint: &'a str,
    pub not_before: DateTime<Utc>,
    /// The obligation the row was planned for, if any.
    pub obligation: Option<ObligationFacts>,
    /// Its endpoint is disabled (`endpoint_states`).
    pub endpoint_disabled: bool,
}

/// A row's obligation: the deadline it was planned for and the obligation as it is now.
#[derive(Debug, Clone, Copy)]
pub struct ObligationFacts {
    pub id: Uuid,
    pub planned_due_at: Option<DateTime<Utc>>,
    /// `None` when the obligation is gone.
    pub status: Option<ObligationStatus>,
    pub due_at: Option<DateTime<Utc>>,
}

/// What the claim does with a row, before the rate limit has its say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Lease it (`sending`) and send it, unless the rate limit defers it ([`budget`]).
    Send,
    /// `cancelled`, with this `last_error`.
    Cancel(String),
    /// `parked` until its endpoint is enabled again. Not an attempt.
    Park,
}

impl Claim {
    /// The row's status after the claim commits (a deferred row goes to [`DEFERRED`]).
    pub fn status(&self) -> OutboxStatus {
        match self {
            Claim::Send => OutboxStatus::Sending,
            Claim::Cancel(_) => OutboxStatus::Cancelled,
            Claim::Park => OutboxStatus::Parked,
        }
    }
}

/// Where the rate limit sends a deferred row whose lease had expired (it was never sent by
/// us), without a lease, until the window frees; a `pending` or `held` row keeps its status.
pub const DEFERRED: OutboxStatus = OutboxStatus::Pending;

/// Decides every claimed row of a batch, in order: a disabled endpoint parks it; a row planned
/// for an obligation that is no longer open, or whose deadline moved (an extension: the
/// planner has planned the new occasions under new keys), is cancelled, and so is every
/// reminder of the batch but the latest for the same obligation, recipient and endpoint
/// (catch-up: only the latest is worth sending). The rest is sent.
pub fn triage(rows: &[ClaimFacts<'_>]) -> Vec<Claim> {
    let mut latest: HashMap<(Uuid, &str, &str), DateTime<Utc>> = HashMap::new();
    for r in rows {
        if let (Some(ob), true) = (r.obligation, r.reminder) {
            let e = latest
                .entry((ob.id, r.recipient, r.endpoint))
                .or_insert(r.not_before);
            *e = (*e).max(r.not_before);
        }
    }
    rows.iter()
        .map(|r| {
            if r.endpoint_disabled {
                return Claim::Park;
            }
            let Some(ob) = r.obligation else {
                return Claim::Send;
            };
            if ob.status != Some(ObligationStatus::Open) {
                return Claim::Cancel(format!(
                    "obligation is {}",
                    ob.status.map_or("gone", ObligationStatus::code)
                ));
            }
            if ob.due_at != ob.planned_due_at {
                return Claim::Cancel("deadline moved; re-planned".into());
            }
            if r.reminder
                && latest
                    .get(&(ob.id, r.recipient, r.endpoint))
                    .is_some_and(|t| *t > r.not_before)
            {
                return Claim::Cancel("superseded by a later reminder".into());
            }
            Claim::Send
        })
        .collect()
}

/// One sliding window of an endpoint's shared budget: `recent` holds the claim instants of
/// the last `max` claims (`endpoint_budgets.recent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub window: chrono::Duration,
    pub max: usize,
    pub recent: Vec<DateTime<Utc>>,
}

/// What the rate limit allows for one endpoint at one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// How many of the wanted rows may be sent now; the rest are deferred to `next_free`.
    pub allowed: usize,
    /// When a slot frees in every window (at least a second from now).
    pub next_free: DateTime<Utc>,
    /// Each window's `recent` after taking `allowed` slots at `now`, to be stored.
    pub recent: Vec<Vec<DateTime<Utc>>>,
}

/// Takes as many of `wanted` slots at `now` as every window allows.
pub fn budget(windows: &[Window], wanted: usize, now: DateTime<Utc>) -> Budget {
    let windows: Vec<(chrono::Duration, usize, Vec<DateTime<Utc>>)> = windows
        .iter()
        .map(|w| {
            let mut recent: Vec<DateTime<Utc>> = w
                .recent
                .iter()
                .copied()
                .filter(|t| *t > now - w.window)
                .collect();
            recent.sort();
            (w.window, w.max, recent)
        })
        .collect();
    let allowed = windows
        .iter()
        .map(|(_, max, recent)| max.saturating_sub(recent.len()))
        .min()
        .unwrap_or(wanted)
        .min(wanted);
    let mut next_free = now + chrono::Duration::seconds(1);
    let mut out = Vec::with_capacity(windows.len());
    for (window, max, mut recent) in windows {
        recent.extend(std::iter::repeat_n(now, allowed));
        if recent.len() >= max {
            // The slot frees when the oldest of the last `max` claims leaves the window.
            let oldest = recent[recent.len() - max];
            next_free = next_free.max(oldest + window);
        }
        let keep = recent.len().saturating_sub(max);
        out.push(recent.split_off(keep));
    }
    Budget {
        allowed,
        next_free,
        recent: out,
    }
}

// ---------------------------------------------------------------------------------------
// The send.

/// Whether a claimed row may still be sent at `started`: not when its lease could run out
/// mid-send (`margin` before it ends), since another worker may take it over then; it is
/// left to the lease and claimed again with its id.
pub fn lease_allows_send(
    started: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    margin: std::time::Duration,
) -> bool {
    started + chrono::Duration::from_std(margin).unwrap_or_default() < lease_until
}

// ---------------------------------------------------------------------------------------
// The finish: how an attempt's outcome settles its row.

/// The retry policy of `[dispatch]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: i32,
    pub base: std::time::Duration,
    pub max: std::time::Duration,
}

/// Retry delay after `attempt` failed attempts: exponential from `base`, capped at `max`,
/// with "equal jitter" (half fixed, half random) so replicas don't retry in lockstep; never
/// shorter than what the vendor asked for.
pub fn backoff(
    attempt: i32,
    base: std::time::Duration,
    max: std::time::Duration,
    vendor_min: Option<std::time::Duration>,
    unit_random: f64,
) -> std::time::Duration {
    let exp = base
        .saturating_mul(1u32 << (attempt.clamp(1, 20) - 1) as u32)
        .min(max);
    let half = exp / 2;
    let jittered = half + half.mul_f64(unit_random.clamp(0.0, 1.0));
    jittered.max(vendor_min.unwrap_or_default())
}

/// The attempt being settled.
#[derive(Debug, Clone, Copy)]
pub struct Attempted<'a> {
    /// 1 for the first attempt.
    pub attempt: i32,
    pub endpoint: &'a str,
    pub started_at: DateTime<Utc>,
    /// When the vendor's answer arrived (or the attempt gave up): a `Retry-After` counts
    /// from here.
    pub answered_at: DateTime<Utc>,
    pub urgent: bool,
    /// Sent to a Feishu bot: a retry keeps off its :00/:30 peaks.
    pub feishu: bool,
}

/// Where an attempt leaves its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    Sent,
    /// Back to `pending` until the retry instant.
    Retry,
    Dead,
    /// The vendor said the endpoint is gone or misconfigured: the endpoint is disabled and
    /// the message waits for it.
    Parked,
}

impl Settlement {
    pub fn status(self) -> OutboxStatus {
        match self {
            Settlement::Sent => OutboxStatus::Sent,
            Settlement::Retry => OutboxStatus::Pending,
            Settlement::Dead => OutboxStatus::Dead,
            Settlement::Parked => OutboxStatus::Parked,
        }
    }
}

/// An attempt's outcome as the finisher writes it: the row (fenced by the attempt number,
/// lease cleared) and the attempt's record: on the row when it delivered, a
/// `delivery_attempts` row otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub settlement: Settlement,
    /// The row's new `not_before` (a retry only).
    pub retry_at: Option<DateTime<Utc>>,
    /// The row's new `last_error`, if it changes.
    pub last_error: Option<String>,
    /// The attempt's outcome as `delivery_log` lists it.
    pub attempt_outcome: &'static str,
    /// What the vendor answered (`sent_detail` or `delivery_attempts.detail`); for a disabled
    /// endpoint also the reason recorded for it.
    pub detail: String,
}

impl Settled {
    pub fn status(&self) -> OutboxStatus {
        self.settlement.status()
    }

    /// The endpoint to disable, and why (`endpoint_states`; the first report wins).
    pub fn disables_endpoint(&self) -> Option<&str> {
        (self.settlement == Settlement::Parked).then_some(self.detail.as_str())
    }
}

/// How `outcome` settles attempt `a`. `unit_random` (in `[0, 1]`) is the backoff's jitter.
pub fn settle(
    outcome: &Outcome,
    a: &Attempted<'_>,
    policy: &RetryPolicy,
    unit_random: f64,
) -> Settled {
    let (attempt_outcome, detail) = match outcome {
        Outcome::Delivered { detail } => ("delivered", detail.clone()),
        Outcome::Retry { reason, .. } => ("retry", reason.clone()),
        Outcome::Permanent { reason } => ("permanent", reason.clone()),
        Outcome::DisableEndpoint { reason } => ("disable_endpoint", reason.clone()),
    };
    let (settlement, retry_at, last_error) = match outcome {
        Outcome::Delivered { .. } => (Settlement::Sent, None, None),
        Outcome::Retry { after, .. } if a.attempt < policy.max_attempts => {
            let delay = backoff(a.attempt, policy.base, policy.max, None, unit_random);
            let mut retry_at = a.started_at
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
            // The vendor's wait counts from its answer, not from the start of the attempt
            // (a 429 that took 1.5 s to arrive with `Retry-After: 2` waits 2 s after it).
            if let Some(after) = after {
                retry_at = retry_at.max(
                    a.answered_at.max(a.started_at)
                        + chrono::Duration::from_std(*after).unwrap_or(chrono::Duration::hours(1)),
                );
            }
            if !a.urgent && a.feishu {
                // Retries keep off Feishu's :00/:30 peaks too (error 11232 is a peak).
                retry_at = schedule::off_feishu_peak(retry_at, retry_at, None, None);
            }
            (
                Settlement::Retry,
                Some(retry_at),
                Some(format!("attempt {}: {detail}", a.attempt)),
            )
        }
        Outcome::Retry { .. } => (
            Settlement::Dead,
            None,
            Some(format!("gave up after {} attempts: {detail}", a.attempt)),
        ),
        Outcome::Permanent { .. } => (Settlement::Dead, None, Some(format!("permanent: {detail}"))),
        Outcome::DisableEndpoint { .. } => (
            Settlement::Parked,
            None,
            Some(format!(
                "endpoint `{}` disabled, needs an admin: {detail}",
                a.endpoint
            )),
        ),
    };
    Settled {
        settlement,
        retry_at,
        last_error,
        attempt_outcome,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};
    use proptest::prelude::*;
    use std::time::Duration;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 4, 9, 2, 0, 0).unwrap()
    }

    fn policy(max_attempts: i32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base: Duration::from_secs(30),
            max: Duration::from_secs(3600),
        }
    }

    fn attempted(attempt: i32, started_at: DateTime<Utc>, feishu: bool) -> Attempted<'static> {
        Attempted {
            attempt,
            endpoint: "hook",
            started_at,
            answered_at: started_at,
            urgent: false,
            feishu,
        }
    }

    #[test]
    fn status_names_round_trip_and_only_sending_has_a_lease() {
        for s in OutboxStatus::ALL {
            assert_eq!(s.as_str().parse::<OutboxStatus>(), Ok(s));
            assert_eq!(s.has_lease(), s == OutboxStatus::Sending);
        }
        assert!("Sending".parse::<OutboxStatus>().is_err());
        assert!("".parse::<OutboxStatus>().is_err());
        assert!(!DEFERRED.has_lease() && DEFERRED.is_due_status());
        let names: Vec<&str> = OutboxStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, OutboxStatus::NAMES);
    }

    #[test]
    fn a_send_starts_only_with_margin_left_on_its_lease() {
        let lease_until = t0() + chrono::Duration::seconds(60);
        let margin = Duration::from_secs(20);
        assert!(lease_allows_send(t0(), lease_until, margin));
        assert!(lease_allows_send(
            lease_until - chrono::Duration::seconds(21),
            lease_until,
            margin
        ));
        assert!(!lease_allows_send(
            lease_until - chrono::Duration::seconds(20),
            lease_until,
            margin
        ));
        assert!(!lease_allows_send(lease_until, lease_until, margin));
    }

    #[test]
    fn backoff_grows_caps_and_honours_the_vendor() {
        let base = Duration::from_secs(30);
        let max = Duration::from_secs(3600);
        assert_eq!(backoff(1, base, max, None, 0.0), Duration::from_secs(15));
        assert_eq!(backoff(1, base, max, None, 1.0), Duration::from_secs(30));
        assert_eq!(backoff(3, base, max, None, 1.0), Duration::from_secs(120));
        assert_eq!(backoff(30, base, max, None, 1.0), max);
        assert_eq!(
            backoff(1, base, max, Some(Duration::from_secs(600)), 0.5),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn retry_after_counts_from_the_answer() {
        // A 429 answered 1.5 s after the attempt started, asking for 2 s.
        let started = t0();
        let answered = started + chrono::Duration::milliseconds(1_500);
        let a = Attempted {
            answered_at: answered,
            ..attempted(1, started, false)
        };
        let o = Outcome::Retry {
            after: Some(Duration::from_secs(2)),
            reason: "429".into(),
        };
        let policy = RetryPolicy {
            max_attempts: 3,
            base: Duration::ZERO,
            max: Duration::ZERO,
        };
        let s = settle(&o, &a, &policy, 0.5);
        assert_eq!(s.retry_at, Some(answered + chrono::Duration::seconds(2)));
        // The backoff still applies when it is longer than the vendor's wait.
        let s = settle(&o, &a, &self::policy(3), 1.0);
        assert_eq!(s.retry_at, Some(started + chrono::Duration::seconds(30)));
    }

    #[test]
    fn each_outcome_settles_as_the_readme_says() {
        let a = attempted(2, t0(), false);
        let p = policy(3);
        let s = settle(
            &Outcome::Delivered {
                detail: "ok".into(),
            },
            &a,
            &p,
            0.5,
        );
        assert_eq!(
            (s.status(), s.retry_at, s.last_error),
            (OutboxStatus::Sent, None, None)
        );
        let s = settle(
            &Outcome::Retry {
                after: None,
                reason: "503".into(),
            },
            &a,
            &p,
            1.0,
        );
        assert_eq!(s.status(), OutboxStatus::Pending);
        assert_eq!(s.retry_at, Some(t0() + chrono::Duration::seconds(60)));
        assert_eq!(s.last_error.as_deref(), Some("attempt 2: 503"));
        let last = attempted(3, t0(), false);
        let s = settle(
            &Outcome::Retry {
                after: None,
                reason: "503".into(),
            },
            &last,
            &p,
            1.0,
        );
        assert_eq!(s.status(), OutboxStatus::Dead);
        assert_eq!(
            s.last_error.as_deref(),
            Some("gave up after 3 attempts: 503")
        );
        let s = settle(
            &Outcome::Permanent {
                reason: "bad".into(),
            },
            &a,
            &p,
            0.0,
        );
        assert_eq!(
            (s.status(), s.last_error.as_deref(), s.attempt_outcome),
            (OutboxStatus::Dead, Some("permanent: bad"), "permanent")
        );
        let s = settle(
            &Outcome::DisableEndpoint {
                reason: "93000".into(),
            },
            &a,
            &p,
            0.0,
        );
        assert_eq!(s.status(), OutboxStatus::Parked);
        assert_eq!(s.disables_endpoint(), Some("93000"));
        assert_eq!(
            s.last_error.as_deref(),
            Some("endpoint `hook` disabled, needs an admin: 93000")
        );
    }

    #[test]
    fn the_claim_parks_cancels_and_collapses_reminders() {
        let ob = Uuid::from_u128(1);
        let due = t0() + chrono::Duration::days(3);
        let facts = |reminder, not_before, status, due_at, disabled| ClaimFacts {
            reminder,
            recipient: "role:office",
            endpoint: "hook",
            not_before,
            obligation: Some(ObligationFacts {
                id: ob,
                planned_due_at: Some(due),
                status,
                due_at,
            }),
            endpoint_disabled: disabled,
        };
        let later = t0() + chrono::Duration::hours(1);
        let rows = [
            facts(true, t0(), Some(ObligationStatus::Open), Some(due), false),
            facts(true, later, Some(ObligationStatus::Open), Some(due), false),
            facts(false, t0(), Some(ObligationStatus::Open), Some(due), false),
        ];
        assert_eq!(
            triage(&rows),
            vec![
                Claim::Cancel("superseded by a later reminder".into()),
                Claim::Send,
                Claim::Send
            ]
        );
        assert_eq!(
            triage(&[facts(
                true,
                t0(),
                Some(ObligationStatus::Done),
                Some(due),
                false
            )]),
            vec![Claim::Cancel("obligation is done".into())]
        );
        assert_eq!(
            triage(&[facts(true, t0(), None, None, false)]),
            vec![Claim::Cancel("obligation is gone".into())]
        );
        assert_eq!(
            triage(&[facts(
                true,
                t0(),
                Some(ObligationStatus::Open),
                Some(later),
                false
            )]),
            vec![Claim::Cancel("deadline moved; re-planned".into())]
        );
        assert_eq!(
            triage(&[facts(true, t0(), Some(ObligationStatus::Done), None, true)]),
            vec![Claim::Park]
        );
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Delivered {
                detail: "ok".into()
            }),
            proptest::option::of(0u64..7200).prop_map(|s| Outcome::Retry {
                after: s.map(Duration::from_secs),
                reason: "busy".into()
            }),
            Just(Outcome::Permanent {
                reason: "bad".into()
            }),
            Just(Outcome::DisableEndpoint {
                reason: "gone".into()
            }),
        ]
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        (0i64..86_400 * 366).prop_map(|s| t0() + chrono::Duration::seconds(s))
    }

    proptest! {
        /// A settled attempt never leaves its row `sending` (whose lease it clears), a retry
        /// is never before the attempt nor before the vendor's Retry-After, and the last
        /// attempt allowed is never retried.
        #[test]
        fn a_settled_attempt_has_no_lease_and_retries_only_within_the_policy(
            o in outcome(),
            attempt in 1i32..12,
            max_attempts in 1i32..10,
            started in instant(),
            feishu in any::<bool>(),
            urgent in any::<bool>(),
            r in 0.0f64..=1.0,
        ) {
            let a = Attempted { attempt, endpoint: "e", started_at: started, answered_at: started, urgent, feishu };
            let s = settle(&o, &a, &policy(max_attempts), r);
            prop_assert!(!s.status().has_lease());
            prop_assert_ne!(s.status(), OutboxStatus::Sending);
            prop_assert_eq!(s.retry_at.is_some(), s.settlement == Settlement::Retry);
            prop_assert_eq!(s.disables_endpoint().is_some(), matches!(o, Outcome::DisableEndpoint { .. }));
            match &o {
                Outcome::Delivered { .. } => prop_assert_eq!(s.status(), OutboxStatus::Sent),
                Outcome::Permanent { .. } => prop_assert_eq!(s.status(), OutboxStatus::Dead),
                Outcome::DisableEndpoint { .. } => prop_assert_eq!(s.status(), OutboxStatus::Parked),
                Outcome::Retry { after, .. } => {
                    if attempt >= max_attempts {
                        prop_assert_eq!(s.status(), OutboxStatus::Dead);
                    } else {
                        let at = s.retry_at.unwrap();
                        prop_assert!(at > started);
                        let vendor = chrono::Duration::from_std(after.unwrap_or_default()).unwrap();
                        prop_assert!(at >= started + vendor, "{at} before Retry-After {vendor}");
                        // Never later than the cap (plus a Feishu step) unless the vendor asked.
                        let cap = chrono::Duration::seconds(3600).max(vendor) + chrono::Duration::minutes(2);
                        prop_assert!(at <= started + cap);
                        if feishu && !urgent {
                            prop_assert!(!schedule::is_feishu_peak(at), "{at} at a peak");
                        }
                    }
                }
            }
        }

        /// With the same jitter, every further attempt waits at least as long, until the
        /// policy's last attempt, after which the row is dead.
        #[test]
        fn retries_are_monotone_in_time_and_end_dead(
            max_attempts in 2i32..12,
            started in instant(),
            r in 0.0f64..=1.0,
            after in proptest::option::of(0u64..600),
        ) {
            let o = Outcome::Retry { after: after.map(Duration::from_secs), reason: "503".into() };
            let mut previous = None;
            for attempt in 1..=max_attempts {
                let s = settle(&o, &attempted(attempt, started, false), &policy(max_attempts), r);
                if attempt == max_attempts {
                    prop_assert_eq!(s.status(), OutboxStatus::Dead);
                    let expected = format!("gave up after {attempt} attempts");
                    prop_assert!(s.last_error.unwrap().starts_with(&expected));
                } else {
                    prop_assert_eq!(s.status(), OutboxStatus::Pending);
                    let at = s.retry_at.unwrap();
                    if let Some(p) = previous {
                        prop_assert!(at >= p, "attempt {attempt}: {at} before {p}");
                    }
                    previous = Some(at);
                }
            }
        }

        /// A Feishu retry keeps the seconds it was given, only stepping off the peak minute.
        #[test]
        fn a_feishu_retry_moves_at_most_one_step(started in instant(), r in 0.0f64..=1.0) {
            let o = Outcome::Retry { after: None, reason: "11232".into() };
            let plain = settle(&o, &attempted(1, started, false), &policy(3), r).retry_at.unwrap();
            let shifted = settle(&o, &attempted(1, started, true), &policy(3), r).retry_at.unwrap();
            if matches!(plain.minute(), 0 | 30) {
                prop_assert_eq!(shifted, plain + schedule::FEISHU_PEAK_SHIFT);
            } else {
                prop_assert_eq!(shifted, plain);
            }
        }

        /// The claim never sends over any window's budget, and when it defers rows the
        /// instant it defers them to has a free slot in every window.
        #[test]
        fn the_budget_never_overspends_and_defers_to_a_free_slot(
            windows in proptest::collection::vec((1i64..120, 1usize..30, proptest::collection::vec(0i64..240_000, 0..40)), 1..4),
            wanted in 0usize..60,
            now in instant(),
        ) {
            let windows: Vec<Window> = windows
                .into_iter()
                .map(|(secs, max, ago)| Window {
                    window: chrono::Duration::seconds(secs),
                    max,
                    recent: ago.into_iter().map(|ms| now - chrono::Duration::milliseconds(ms)).collect(),
                })
                .collect();
            let b = budget(&windows, wanted, now);
            prop_assert!(b.allowed <= wanted);
            prop_assert!(b.next_free > now);
            prop_assert_eq!(b.recent.len(), windows.len());
            let in_window = |recent: &[DateTime<Utc>], w: chrono::Duration, at: DateTime<Utc>| {
                recent.iter().filter(|t| **t > at - w && **t <= at).count()
            };
            for (w, recent) in windows.iter().zip(&b.recent) {
                prop_assert!(recent.len() <= w.max);
                prop_assert!(recent.windows(2).all(|p| p[0] <= p[1]));
                let before = in_window(&w.recent, w.window, now);
                prop_assert!(in_window(recent, w.window, now) <= w.max);
                prop_assert!(before + b.allowed <= w.max.max(before));
                if b.allowed < wanted {
                    prop_assert!(in_window(recent, w.window, b.next_free) < w.max,
                        "no free slot at {} in a {}s window", b.next_free, w.window.num_seconds());
                }
            }
        }

        /// Of a batch's reminders for one obligation, recipient and endpoint, only the latest
        /// is sent; a disabled endpoint parks whatever else is true; a closed obligation's
        /// rows are never sent.
        #[test]
        fn the_claim_sends_only_the_latest_live_reminder(
            rows in proptest::collection::vec((0u128..3, 0usize..2, 0i64..5, any::<bool>(), 0usize..3, any::<bool>()), 0..20),
        ) {
            let due = t0() + chrono::Duration::days(10);
            let recipients = ["school:a", "role:office"];
            let statuses = [Some(ObligationStatus::Open), Some(ObligationStatus::Done), None];
            let facts: Vec<ClaimFacts<'_>> = rows
                .iter()
                .map(|&(ob, rcp, hours, reminder, st, disabled)| ClaimFacts {
                    reminder,
                    recipient: recipients[rcp],
                    endpoint: "hook",
                    not_before: t0() + chrono::Duration::hours(hours),
                    obligation: Some(ObligationFacts {
                        id: Uuid::from_u128(ob),
                        planned_due_at: Some(due),
                        status: statuses[st],
                        due_at: Some(due),
                    }),
                    endpoint_disabled: disabled,
                })
                .collect();
            let claims = triage(&facts);
            prop_assert_eq!(claims.len(), facts.len());
            for (f, c) in facts.iter().zip(&claims) {
                let ob = f.obligation.unwrap();
                if f.endpoint_disabled {
                    prop_assert_eq!(c, &Claim::Park);
                    continue;
                }
                if ob.status != Some(ObligationStatus::Open) {
                    prop_assert!(matches!(c, Claim::Cancel(_)));
                }
                if *c == Claim::Send && f.reminder {
                    prop_assert!(!facts.iter().any(|g| g.reminder
                        && g.obligation.unwrap().id == ob.id
                        && g.recipient == f.recipient
                        && g.not_before > f.not_before));
                }
            }
        }
    }
}
