//! Who may read what: the one read policy of the workflow. Every read RPC and export asks
//! [`read`] first (scope, then [`TABLE`]) and passes what it loaded through the projection
//! functions below; every mutation is scope-checked by `Work::record` through
//! [`require_scope`]. ARCHITECTURE.md shows the same table; `tests/authz_matrix.rs` is
//! generated from [`TABLE`] and checks the behaviour through the real server.
//!
//! Cross-campaign reads outside a token's scope are `PERMISSION_DENIED` (campaign ids are not
//! secret: a bureau's campaigns are public knowledge), as are reads the table denies.

use junheng_core::{CampaignId, SchoolId};
use std::collections::HashSet;

use junheng_core::Role;
use junheng_core::notice::NoticeKind;
use junheng_store::PgConnection;
use junheng_store::applications::ApplicationRow;
use junheng_store::audit::EventRow;
use junheng_store::obligations::ObligationRow;
use junheng_store::schools::SchoolRow;

use crate::app::notices::NoticeView;
use crate::error::{AppError, AppResult};
use crate::state::Call;

/// Every read RPC (and the export), by its gRPC method name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    GetCampaign,
    ListCampaigns,
    ListAuditEvents,
    FollowEvents,
    ListObligations,
    GetSchool,
    ListSchools,
    ListApplications,
    GetNotice,
    ListNotices,
    GetPresentation,
    GetMentorPanel,
    ProposeMentors,
    GetPracticeCollection,
    ProposePairing,
    GetPairing,
    ListAssistance,
    GetPanel,
    GetResults,
    ProposeAwards,
    ListAwards,
    ListConsequences,
    Export,
    ListTokens,
}

impl Rpc {
    pub fn name(self) -> &'static str {
        match self {
            Rpc::GetCampaign => "GetCampaign",
            Rpc::ListCampaigns => "ListCampaigns",
            Rpc::ListAuditEvents => "ListAuditEvents",
            Rpc::FollowEvents => "FollowEvents",
            Rpc::ListObligations => "ListObligations",
            Rpc::GetSchool => "GetSchool",
            Rpc::ListSchools => "ListSchools",
            Rpc::ListApplications => "ListApplications",
            Rpc::GetNotice => "GetNotice",
            Rpc::ListNotices => "ListNotices",
            Rpc::GetPresentation => "GetPresentation",
            Rpc::GetMentorPanel => "GetMentorPanel",
            Rpc::ProposeMentors => "ProposeMentors",
            Rpc::GetPracticeCollection => "GetPracticeCollection",
            Rpc::ProposePairing => "ProposePairing",
            Rpc::GetPairing => "GetPairing",
            Rpc::ListAssistance => "ListAssistance",
            Rpc::GetPanel => "GetPanel",
            Rpc::GetResults => "GetResults",
            Rpc::ProposeAwards => "ProposeAwards",
            Rpc::ListAwards => "ListAwards",
            Rpc::ListConsequences => "ListConsequences",
            Rpc::Export => "Export",
            Rpc::ListTokens => "ListTokens",
        }
    }
}

/// What a role sees of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum See {
    /// Refused: `PERMISSION_DENIED`.
    Deny,
    /// Everything in the campaign, personal data included (office).
    All,
    /// Everything in the campaign, personal data removed (contacts, objectors' names, contacts
    /// and evidence, token holders) and, until the results notice, individual ratings and
    /// scores.
    Redacted,
    /// Its own school's rows (redacted of others' personal data); another school's single
    /// row is `PERMISSION_DENIED`, lists leave other schools out.
    Own,
    /// Its own school in full, the public part (name, code, level, town, state) of the others.
    OwnElsePublic,
    /// `PERMISSION_DENIED` until the results notice is published, then `Redacted`.
    AfterResults,
}

/// The columns of [`TABLE`], in this order.
pub const ROLES: [Role; 6] = [
    Role::Office,
    Role::Department,
    Role::Panel,
    Role::School,
    Role::Leader,
    Role::Scheduler,
];

use See::{AfterResults, All, Deny, Own, OwnElsePublic, Redacted};

/// RPC × role (office, department, panel, school, leader, scheduler) → what is visible.
#[rustfmt::skip]
pub const TABLE: &[(Rpc, [See; 6])] = &[
    //                              office department panel     school         leader    scheduler
    (Rpc::GetCampaign,           [All, All,         All,      All,           All,      All]),
    (Rpc::ListCampaigns,         [All, All,         All,      All,           All,      All]),
    (Rpc::ListAuditEvents,       [All, Redacted,    Redacted, Own,           Redacted, Redacted]),
    (Rpc::FollowEvents,          [All, Redacted,    Redacted, Own,           Redacted, Redacted]),
    (Rpc::ListObligations,       [All, All,         All,      Own,           All,      All]),
    (Rpc::GetSchool,             [All, Redacted,    Redacted, OwnElsePublic, Redacted, Redacted]),
    (Rpc::ListSchools,           [All, Redacted,    Redacted, OwnElsePublic, Redacted, Redacted]),
    (Rpc::ListApplications,      [All, All,         Redacted, Own,           Redacted, Deny]),
    (Rpc::GetNotice,             [All, Redacted,    Redacted, Redacted,      Redacted, Redacted]),
    (Rpc::ListNotices,           [All, Redacted,    Redacted, Redacted,      Redacted, Redacted]),
    (Rpc::GetPresentation,       [All, All,         All,      Own,           All,      Deny]),
    (Rpc::GetMentorPanel,        [All, All,         All,      All,           All,      Deny]),
    (Rpc::ProposeMentors,        [All, All,         Deny,     Deny,          All,      Deny]),
    (Rpc::GetPracticeCollection, [All, All,         All,      All,           All,      Deny]),
    (Rpc::ProposePairing,        [All, All,         Deny,     Deny,          All,      Deny]),
    (Rpc::GetPairing,            [All, All,         All,      All,           All,      Deny]),
    (Rpc::ListAssistance,        [All, All,         All,      All,           All,      Deny]),
    (Rpc::GetPanel,              [All, All,         All,      All,           All,      Deny]),
    (Rpc::GetResults,            [All, AfterResults, AfterResults, AfterResults, All,  Deny]),
    (Rpc::ProposeAwards,         [All, All,         Deny,     Deny,          All,      Deny]),
    (Rpc::ListAwards,            [All, All,         All,      All,           All,      Deny]),
    (Rpc::ListConsequences,      [All, All,         All,      All,           All,      Deny]),
    (Rpc::Export,                [All, Redacted,    Deny,     Deny,          Redacted, Deny]),
    (Rpc::ListTokens,            [All, Deny,        Deny,     Deny,          Deny,     Deny]),
];

/// The table's entry for `rpc` and `role`.
pub fn see(rpc: Rpc, role: Role) -> See {
    let col = ROLES
        .iter()
        .position(|r| *r == role)
        .expect("every role has a column");
    TABLE
        .iter()
        .find(|(r, _)| *r == rpc)
        .map(|(_, row)| row[col])
        .unwrap_or(Deny)
}

/// What a reader without a token (the public pages, the 公示栏) sees: the campaigns and their
/// published notices, redacted as for every role but the office (no objector's name, contact
/// or evidence). Everything else is refused; the public results are the results notice itself.
#[rustfmt::skip]
pub const ANONYMOUS: &[(Rpc, See)] = &[
    (Rpc::ListCampaigns, Redacted),
    (Rpc::GetNotice,     Redacted),
    (Rpc::ListNotices,   Redacted),
];

/// Asks before a public read (no token): the [`ANONYMOUS`] entry, `PERMISSION_DENIED` for any
/// read it does not name.
pub fn anonymous(rpc: Rpc) -> AppResult<See> {
    ANONYMOUS
        .iter()
        .find(|(r, _)| *r == rpc)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            AppError::PermissionDenied(format!(
                "{} needs a token; the public reads only published notices",
                rpc.name()
            ))
        })
}

/// The campaign lies within the caller's token scope.
pub fn require_scope(call: &Call, campaign: CampaignId) -> AppResult<()> {
    if call.scope.covers(campaign) {
        Ok(())
    } else {
        Err(AppError::PermissionDenied(format!(
            "campaign {campaign} is outside this token's scope"
        )))
    }
}

/// Asks before a read: the campaign must be in scope and the table must not deny it.
pub fn read(call: &Call, rpc: Rpc, campaign: Option<CampaignId>) -> AppResult<See> {
    if let Some(c) = campaign {
        require_scope(call, c)?;
    }
    match see(rpc, call.actor.role) {
        Deny => Err(AppError::PermissionDenied(format!(
            "{} may not call {}",
            call.actor.role,
            rpc.name()
        ))),
        s => Ok(s),
    }
}

/// Whether the results notice of the campaign has been published.
pub async fn results_published(conn: &mut PgConnection, campaign: CampaignId) -> AppResult<bool> {
    Ok(junheng_store::notices::list_notices(conn, campaign)
        .await?
        .iter()
        .any(|n| n.kind == NoticeKind::Results))
}

/// `AfterResults` before the results notice is refused; everything else passes.
pub fn gate_results(call: &Call, see: See, published: bool) -> AppResult<See> {
    match (see, published) {
        (AfterResults, false) => Err(AppError::PermissionDenied(format!(
            "{} may read results only after the results notice is published",
            call.actor.role
        ))),
        (AfterResults, true) => Ok(Redacted),
        (s, _) => Ok(s),
    }
}

fn own(call: &Call, school: SchoolId) -> bool {
    call.actor.acts_for(school)
}

/// The public part of a school: no contacts.
fn public_school(mut row: SchoolRow) -> SchoolRow {
    row.contacts = serde_json::json!([]);
    row
}

/// One school read by id.
pub fn school(call: &Call, see: See, row: SchoolRow) -> AppResult<SchoolRow> {
    match see {
        All => Ok(row),
        OwnElsePublic | Own if own(call, row.id) => Ok(row),
        Own => Err(AppError::PermissionDenied(
            "a school token reads only its own school".into(),
        )),
        _ => Ok(public_school(row)),
    }
}

pub fn schools(call: &Call, see: See, rows: Vec<SchoolRow>) -> Vec<SchoolRow> {
    rows.into_iter()
        .filter(|r| see != Own || own(call, r.id))
        .map(|r| match see {
            All => r,
            OwnElsePublic | Own if own(call, r.id) => r,
            _ => public_school(r),
        })
        .collect()
}

pub fn applications(call: &Call, see: See, rows: Vec<ApplicationRow>) -> Vec<ApplicationRow> {
    rows.into_iter()
        .filter(|r| see != Own || own(call, r.school_id))
        .collect()
}

/// Objections keep their grounds and outcome; who objected, how to reach them and the evidence
/// are the office's only.
pub fn notice(see: See, mut n: NoticeView) -> NoticeView {
    if see != All {
        for o in &mut n.objections {
            o.objector_name.clear();
            o.objector_contact.clear();
            o.evidence.clear();
            o.filed_by.clear();
        }
    }
    n
}

pub fn obligations(call: &Call, see: See, rows: Vec<ObligationRow>) -> Vec<ObligationRow> {
    rows.into_iter()
        .filter(|r| see != Own || r.school_id.or(r.owner_school).is_some_and(|s| own(call, s)))
        .collect()
}

/// A presentation of `school` may be read.
pub fn presentation(call: &Call, see: See, school: SchoolId) -> AppResult<()> {
    if see == Own && !own(call, school) {
        return Err(AppError::PermissionDenied(
            "a school token reads only its own presentation".into(),
        ));
    }
    Ok(())
}

/// Keys holding personal data, removed from event payloads for everyone but the office.
const PERSONAL: [&str; 7] = [
    "contacts",
    "objector_name",
    "objector_contact",
    "evidence",
    "email",
    "mobile",
    "filed_by",
];

/// Events carrying individual ratings and scores: hidden from all but the office until the
/// results notice.
const SCORING: [&str; 4] = [
    "presentation.rated",
    "scores.submitted",
    "results.recomputed",
    "results.final",
];

/// Campaign-wide events a school may follow.
const PUBLIC: [&str; 6] = [
    "campaign.created",
    "phase.opened",
    "phase.completed",
    "deadline.extended",
    "notice.published",
    "notice.closed",
];

fn strip(v: &mut serde_json::Value, keys: &HashSet<&str>) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !keys.contains(k.as_str()));
            m.values_mut().for_each(|x| strip(x, keys));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| strip(x, keys)),
        _ => {}
    }
}

/// The audit log and the event stream as `see` allows; `published`: the results notice is out.
pub fn events(call: &Call, see: See, published: bool, rows: Vec<EventRow>) -> Vec<EventRow> {
    if see == All {
        return rows;
    }
    let keys: HashSet<&str> = PERSONAL.into_iter().collect();
    rows.into_iter()
        .filter(|e| !e.action.starts_with("token."))
        .filter(|e| {
            see != Own
                || match e.school_id {
                    Some(s) => own(call, SchoolId::new(s)),
                    None => PUBLIC.contains(&e.action.as_str()),
                }
        })
        .map(|mut e| {
            if !published && SCORING.contains(&e.action.as_str()) {
                e.before = serde_json::json!({ "redacted": true });
                e.after = serde_json::json!({ "redacted": true });
            } else {
                strip(&mut e.before, &keys);
                strip(&mut e.after, &keys);
            }
            if e.reason.is_some() && e.action == "objection.filed" {
                e.reason = None;
            }
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_read_has_one_row_and_every_role_a_column() {
        let mut seen = HashSet::new();
        for (rpc, _) in TABLE {
            assert!(seen.insert(*rpc), "{rpc:?} twice");
        }
        assert_eq!(seen.len(), 24);
        assert_eq!(ROLES.len(), Role::ALL.len());
        for r in Role::ALL {
            assert!(ROLES.contains(&r));
        }
    }

    #[test]
    fn the_public_reads_only_campaigns_and_notices_and_never_personal_data() {
        for (rpc, _) in TABLE {
            let public = matches!(rpc, Rpc::ListCampaigns | Rpc::GetNotice | Rpc::ListNotices);
            assert_eq!(anonymous(*rpc).is_ok(), public, "{rpc:?}");
            if public {
                assert_ne!(anonymous(*rpc).unwrap(), All, "{rpc:?}");
            }
        }
    }

    #[test]
    fn only_the_office_reads_tokens() {
        for r in ROLES {
            assert_eq!(see(Rpc::ListTokens, r) == All, r == Role::Office);
        }
    }
}
