//! Obligations: who owes what by when. Opened and closed in the transaction of the state
//! change that creates or discharges them; the scheduler reads them instead of re-deriving rules.

use chrono::{DateTime, Utc};
use junheng_core::effects::ObligationKind;
use junheng_core::role::Role;
use junheng_core::{CampaignId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, StoreError, decode};

/// `obligations.status`: open until the state change that discharges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObligationStatus {
    Open,
    Done,
    /// Allowed by the schema (0001) though nothing writes it today; reads must not fail on it.
    Cancelled,
}

impl ObligationStatus {
    pub fn code(self) -> &'static str {
        match self {
            ObligationStatus::Open => "open",
            ObligationStatus::Done => "done",
            ObligationStatus::Cancelled => "cancelled",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        [
            ObligationStatus::Open,
            ObligationStatus::Done,
            ObligationStatus::Cancelled,
        ]
        .into_iter()
        .find(|o| o.code() == s)
    }
}

#[derive(Debug, Clone)]
pub struct NewObligation {
    pub kind: ObligationKind,
    pub school: Option<SchoolId>,
    pub key: String,
    pub owner_role: Role,
    pub owner_school: Option<SchoolId>,
    pub deadline_ref: String,
    pub due: DateTime<Utc>,
    pub subject: String,
}

#[derive(Debug, Clone)]
pub struct ObligationRow {
    pub id: Uuid,
    pub campaign_id: CampaignId,
    pub kind: ObligationKind,
    pub school_id: Option<SchoolId>,
    pub key: String,
    pub owner_role: Role,
    pub owner_school: Option<SchoolId>,
    pub deadline_ref: String,
    pub due_at: DateTime<Utc>,
    pub subject: String,
    pub status: ObligationStatus,
}

/// An `obligations` row as fetched, before its codes are read.
struct ObligationRec {
    id: Uuid,
    campaign_id: Uuid,
    kind: String,
    school_id: Option<Uuid>,
    key: String,
    owner_role: String,
    owner_school: Option<Uuid>,
    deadline_ref: String,
    due_at: DateTime<Utc>,
    subject: String,
    status: String,
}

impl TryFrom<ObligationRec> for ObligationRow {
    type Error = StoreError;

    fn try_from(r: ObligationRec) -> Result<Self> {
        Ok(ObligationRow {
            kind: decode("obligations.kind", &r.kind, ObligationKind::from_code)?,
            owner_role: decode("obligations.owner_role", &r.owner_role, Role::from_code)?,
            status: decode("obligations.status", &r.status, ObligationStatus::from_code)?,
            id: r.id,
            campaign_id: CampaignId::new(r.campaign_id),
            school_id: r.school_id.map(SchoolId::new),
            key: r.key,
            owner_school: r.owner_school.map(SchoolId::new),
            deadline_ref: r.deadline_ref,
            due_at: r.due_at,
            subject: r.subject,
        })
    }
}

/// Opens obligations; one already present (open or closed) is re-opened with the new due time.
pub async fn open_many(
    conn: &mut PgConnection,
    campaign: CampaignId,
    items: &[NewObligation],
    at: DateTime<Utc>,
    trace_context: Option<&str>,
) -> Result<()> {
    let campaign = campaign.as_uuid();
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = items.iter().map(|_| Uuid::now_v7()).collect();
    let kinds: Vec<&str> = items.iter().map(|o| o.kind.code()).collect();
    let schools: Vec<Option<Uuid>> = items
        .iter()
        .map(|o| o.school.map(SchoolId::as_uuid))
        .collect();
    let keys: Vec<String> = items.iter().map(|o| o.key.clone()).collect();
    let roles: Vec<&str> = items.iter().map(|o| o.owner_role.code()).collect();
    let owner_schools: Vec<Option<Uuid>> = items
        .iter()
        .map(|o| o.owner_school.map(SchoolId::as_uuid))
        .collect();
    let refs: Vec<String> = items.iter().map(|o| o.deadline_ref.clone()).collect();
    let dues: Vec<DateTime<Utc>> = items.iter().map(|o| o.due).collect();
    let subjects: Vec<String> = items.iter().map(|o| o.subject.clone()).collect();
    sqlx::query!(
        r#"INSERT INTO obligations (id, campaign_id, kind, school_id, key, owner_role, owner_school, deadline_ref, due_at, subject, status, created_at, trace_context)
           SELECT i, $1, k, s, ky, r, os, d, du, su, 'open', $2, $12
           FROM UNNEST($3::uuid[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::uuid[], $9::text[], $10::timestamptz[], $11::text[])
                AS t(i, k, s, ky, r, os, d, du, su)
           ON CONFLICT (campaign_id, kind, school_id, key) DO UPDATE
           SET status = 'open', due_at = EXCLUDED.due_at, deadline_ref = EXCLUDED.deadline_ref,
               owner_role = EXCLUDED.owner_role, owner_school = EXCLUDED.owner_school,
               subject = EXCLUDED.subject, closed_at = NULL, trace_context = EXCLUDED.trace_context"#,
        campaign,
        at,
        &ids,
        &kinds as &[&str],
        &schools as &[Option<Uuid>],
        &keys,
        &roles as &[&str],
        &owner_schools as &[Option<Uuid>],
        &refs,
        &dues,
        &subjects,
        trace_context,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn close(
    conn: &mut PgConnection,
    campaign: CampaignId,
    kind: ObligationKind,
    school: Option<SchoolId>,
    key: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let school = school.map(SchoolId::as_uuid);
    let campaign = campaign.as_uuid();
    sqlx::query!(
        r#"UPDATE obligations SET status = 'done', closed_at = $5
           WHERE campaign_id = $1 AND kind = $2 AND school_id IS NOT DISTINCT FROM $3 AND key = $4 AND status = 'open'"#,
        campaign,
        kind.code(),
        school,
        key,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn replan(
    conn: &mut PgConnection,
    campaign: CampaignId,
    deadline_ref: &str,
    due: DateTime<Utc>,
) -> Result<()> {
    let campaign = campaign.as_uuid();
    sqlx::query!(
        "UPDATE obligations SET due_at = $3 WHERE campaign_id = $1 AND deadline_ref = $2 AND status = 'open'",
        campaign,
        deadline_ref,
        due
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn list(
    conn: &mut PgConnection,
    campaign: CampaignId,
    school: Option<SchoolId>,
    include_closed: bool,
) -> Result<Vec<ObligationRow>> {
    let school = school.map(SchoolId::as_uuid);
    let campaign = campaign.as_uuid();
    sqlx::query_as!(
        ObligationRec,
        r#"SELECT id, campaign_id, kind, school_id, key, owner_role, owner_school, deadline_ref, due_at, subject, status
           FROM obligations
           WHERE campaign_id = $1 AND ($2::uuid IS NULL OR school_id = $2) AND ($3 OR status = 'open')
           ORDER BY due_at, kind, id"#,
        campaign,
        school,
        include_closed
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(ObligationRow::try_from)
    .collect()
}
