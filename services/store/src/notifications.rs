//! What the scheduler reads of the workflow's tables to plan and send its notifications: the
//! open obligations (reminders, overdue notices, digests), the schools' contacts, the notices
//! that ended or will end, and the obligation a queued message was planned for. The workflow
//! writes these tables; the scheduler only reads them, here, so each table has one owner and
//! the scheduler's own SQL names only its own tables (outbox, attempts, endpoints, cursors).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use junheng_core::effects::ObligationKind;
use junheng_core::role::Role;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::obligations::ObligationStatus;
use crate::{Result, StoreError, decode};

/// An open obligation as the planner needs it.
#[derive(Debug, Clone)]
pub struct OpenObligation {
    pub id: Uuid,
    pub kind: ObligationKind,
    pub school_id: Option<Uuid>,
    pub owner_role: Role,
    pub owner_school: Option<Uuid>,
    pub due_at: DateTime<Utc>,
    pub subject: String,
    pub created_at: DateTime<Utc>,
    /// The `traceparent` of the call that opened it: its reminders continue that trace.
    pub trace_context: Option<String>,
}

struct OpenObligationRec {
    id: Uuid,
    kind: String,
    school_id: Option<Uuid>,
    owner_role: String,
    owner_school: Option<Uuid>,
    due_at: DateTime<Utc>,
    subject: String,
    created_at: DateTime<Utc>,
    trace_context: Option<String>,
}

impl TryFrom<OpenObligationRec> for OpenObligation {
    type Error = StoreError;

    fn try_from(r: OpenObligationRec) -> Result<Self> {
        Ok(OpenObligation {
            kind: decode("obligations.kind", &r.kind, ObligationKind::from_code)?,
            owner_role: decode("obligations.owner_role", &r.owner_role, Role::from_code)?,
            id: r.id,
            school_id: r.school_id,
            owner_school: r.owner_school,
            due_at: r.due_at,
            subject: r.subject,
            created_at: r.created_at,
            trace_context: r.trace_context,
        })
    }
}

/// A campaign's open obligations, soonest first.
pub async fn open_obligations(
    conn: &mut PgConnection,
    campaign: Uuid,
) -> Result<Vec<OpenObligation>> {
    sqlx::query_as!(
        OpenObligationRec,
        r#"SELECT id, kind, school_id, owner_role, owner_school, due_at, subject, created_at, trace_context
           FROM obligations WHERE campaign_id = $1 AND status = 'open' ORDER BY due_at, id"#,
        campaign
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(OpenObligation::try_from)
    .collect()
}

/// A school as a recipient: its name and its stored contacts (`schools.contacts`, read by the
/// scheduler's recipients, which treat malformed contacts as none).
#[derive(Debug, Clone)]
pub struct SchoolContacts {
    pub id: Uuid,
    pub name: String,
    pub contacts: serde_json::Value,
}

/// Every school of a campaign with its contacts.
pub async fn school_contacts(
    conn: &mut PgConnection,
    campaign: Uuid,
) -> Result<Vec<SchoolContacts>> {
    Ok(sqlx::query_as!(
        SchoolContacts,
        "SELECT id, name, contacts FROM schools WHERE campaign_id = $1",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// A notice whose period has ended (or ends in a window), as the scheduler announces it.
#[derive(Debug, Clone)]
pub struct EndingNotice {
    pub id: Uuid,
    pub title: String,
    pub ends_at: DateTime<Utc>,
    /// Set once the workflow closed it.
    pub closed_at: Option<DateTime<Utc>>,
    /// The call that published it: the expiry's delivery continues that trace.
    pub trace_context: Option<String>,
}

/// The campaign's notices that ended by `now`, in the order they ended.
pub async fn ended_notices(
    conn: &mut PgConnection,
    campaign: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<EndingNotice>> {
    Ok(sqlx::query_as!(
        EndingNotice,
        r#"SELECT id, title, ends_at, closed_at, trace_context FROM notices
           WHERE campaign_id = $1 AND ends_at <= $2 ORDER BY ends_at, id"#,
        campaign,
        now
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// The campaign's notices that end in `(after, until]`, in the order they end.
pub async fn notices_ending(
    conn: &mut PgConnection,
    campaign: Uuid,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<EndingNotice>> {
    Ok(sqlx::query_as!(
        EndingNotice,
        r#"SELECT id, title, ends_at, closed_at, trace_context FROM notices
           WHERE campaign_id = $1 AND ends_at > $2 AND ends_at <= $3 ORDER BY ends_at, id"#,
        campaign,
        after,
        until
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// An obligation as it is now: whether it is still open, and its current deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObligationNow {
    pub status: ObligationStatus,
    pub due_at: DateTime<Utc>,
}

/// The obligations among `ids` that exist, as they are now (an id that is gone is absent).
pub async fn obligations_now(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, ObligationNow>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query!(
        "SELECT id, status, due_at FROM obligations WHERE id = ANY($1)",
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.id,
                ObligationNow {
                    status: decode("obligations.status", &r.status, ObligationStatus::from_code)?,
                    due_at: r.due_at,
                },
            ))
        })
        .collect()
}
