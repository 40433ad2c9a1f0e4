//! The exit criteria of all five phases: from the facts the store counts ([`PhaseFacts`]) to
//! what still blocks completing a phase ([`OpenItem`]s, worded in `phase_kind`). Imports only
//! the phase vocabulary, so `phase` (which completes a phase) and `acceptance`/`awards` (which
//! re-export their phase's criteria) need not import each other.

use chrono::{DateTime, Utc};

use crate::phase_kind::{OpenItem, PhaseKind, RunningNotice};

/// Facts the store counts so the rules can say what still blocks a phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhaseFacts {
    pub pending_applications: u64,
    pub approved_awaiting_notice: u64,
    /// Notices (other than the results notice) whose period has not ended.
    pub running_notices: Vec<RunningNotice>,
    pub open_objections: u64,
    pub listed_schools: u64,
    pub seed_schools: u64,
    pub mentors_confirmed: bool,
    /// Potential schools not yet in a 1+X group.
    pub unpaired_potentials: u64,
    /// Paired potential schools without a baseline.
    pub baselines_missing: u64,
    /// The results notice, once published.
    pub results_notice: Option<ResultsNoticeFacts>,
    pub awards_confirmed: bool,
}

/// The published results notice as the acceptance exit criteria see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultsNoticeFacts {
    pub ends_at: DateTime<Utc>,
    /// Its last day (公示期 end), as people read it.
    pub last_day: chrono::NaiveDate,
    pub open_objections: u64,
}

/// The exit criteria: what still blocks completing `kind` at `now`. Empty exactly when the
/// phase may complete.
pub fn open_items(kind: PhaseKind, f: &PhaseFacts, now: DateTime<Utc>) -> Vec<OpenItem> {
    let mut items = Vec::new();
    let count = |items: &mut Vec<OpenItem>, n: u64, item: fn(u64) -> OpenItem| {
        if n > 0 {
            items.push(item(n));
        }
    };
    match kind {
        PhaseKind::SeedDesignation => {
            count(
                &mut items,
                f.pending_applications,
                OpenItem::ApplicationsAwaitingReview,
            );
            count(
                &mut items,
                f.approved_awaiting_notice,
                OpenItem::ApprovedAwaitingNotice,
            );
            if !f.running_notices.is_empty() {
                items.push(OpenItem::NoticesRunning(f.running_notices.clone()));
            }
            count(
                &mut items,
                f.open_objections,
                OpenItem::ObjectionsUnresolved,
            );
            if f.listed_schools == 0 {
                items.push(OpenItem::SeedListEmpty);
            }
        }
        PhaseKind::MentorSelection => {
            if !f.mentors_confirmed {
                items.push(OpenItem::MentorListNotConfirmed);
            }
        }
        PhaseKind::Pairing => {
            count(
                &mut items,
                f.unpaired_potentials,
                OpenItem::PotentialsNotPaired,
            );
            count(&mut items, f.baselines_missing, OpenItem::BaselinesMissing);
        }
        PhaseKind::Acceptance => items.extend(acceptance_items(f.results_notice, now)),
        PhaseKind::Awards => items.extend(awards_items(f.awards_confirmed)),
    }
    items
}

/// The acceptance exit criteria: the results notice published, its period over, and every
/// objection to it resolved.
pub fn acceptance_items(notice: Option<ResultsNoticeFacts>, now: DateTime<Utc>) -> Vec<OpenItem> {
    let Some(n) = notice else {
        return vec![OpenItem::ResultsNoticeNotPublished];
    };
    let mut items = Vec::new();
    if now < n.ends_at {
        items.push(OpenItem::ResultsNoticeRunning(n.last_day));
    }
    if n.open_objections > 0 {
        items.push(OpenItem::ResultsObjectionsUnresolved(n.open_objections));
    }
    items
}

/// The awards exit criteria: the award list confirmed.
pub fn awards_items(confirmed: bool) -> Vec<OpenItem> {
    if confirmed {
        Vec::new()
    } else {
        vec![OpenItem::AwardListNotConfirmed]
    }
}
