//! Notices (公示) and the schools each lists.

use chrono::{DateTime, NaiveDate, Utc};
use junheng_core::notice::NoticeKind;
use junheng_core::{CampaignId, NoticeId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, StoreError, decode};

#[derive(Debug, Clone)]
pub struct NoticeRow {
    /// A bare `Uuid` while the scheduler's planner keys its maps by it.
    pub id: Uuid,
    pub campaign_id: CampaignId,
    pub kind: NoticeKind,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub last_day: NaiveDate,
    pub closed_at: Option<DateTime<Utc>>,
}

impl NoticeRow {
    pub fn notice_id(&self) -> NoticeId {
        NoticeId::new(self.id)
    }
}

/// A `notices` row as fetched, before its kind is read.
struct NoticeRec {
    id: Uuid,
    campaign_id: Uuid,
    kind: String,
    title: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    last_day: NaiveDate,
    closed_at: Option<DateTime<Utc>>,
}

impl TryFrom<NoticeRec> for NoticeRow {
    type Error = StoreError;

    fn try_from(r: NoticeRec) -> Result<Self> {
        Ok(NoticeRow {
            kind: decode("notices.kind", &r.kind, NoticeKind::from_code)?,
            id: r.id,
            campaign_id: CampaignId::new(r.campaign_id),
            title: r.title,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            last_day: r.last_day,
            closed_at: r.closed_at,
        })
    }
}

pub async fn insert_notice(
    conn: &mut PgConnection,
    n: &NoticeRow,
    schools: &[SchoolId],
    at: DateTime<Utc>,
    trace_context: Option<&str>,
) -> Result<()> {
    let schools: Vec<Uuid> = schools.iter().map(|s| s.as_uuid()).collect();
    sqlx::query!(
        r#"INSERT INTO notices (id, campaign_id, kind, title, starts_at, ends_at, last_day, created_at, trace_context)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
        n.id,
        n.campaign_id.as_uuid(),
        n.kind.code(),
        n.title,
        n.starts_at,
        n.ends_at,
        n.last_day,
        at,
        trace_context
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO notice_schools (notice_id, school_id, ordinal) SELECT $1, s, o::int FROM UNNEST($2::uuid[]) WITH ORDINALITY AS u(s, o)",
        n.id,
        &schools
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_notice(conn: &mut PgConnection, id: NoticeId) -> Result<NoticeRow> {
    let id = id.as_uuid();
    sqlx::query_as!(NoticeRec, "SELECT id, campaign_id, kind, title, starts_at, ends_at, last_day, closed_at FROM notices WHERE id = $1", id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found("notice", id))?
    .try_into()
}

pub async fn lock_notice(conn: &mut PgConnection, id: NoticeId) -> Result<NoticeRow> {
    let id = id.as_uuid();
    sqlx::query_as!(NoticeRec, "SELECT id, campaign_id, kind, title, starts_at, ends_at, last_day, closed_at FROM notices WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found("notice", id))?
    .try_into()
}

/// `campaign` may still be a bare `Uuid` (the scheduler's planner passes one).
pub async fn list_notices(
    conn: &mut PgConnection,
    campaign: impl Into<CampaignId>,
) -> Result<Vec<NoticeRow>> {
    let campaign = campaign.into().as_uuid();
    sqlx::query_as!(
        NoticeRec,
        "SELECT id, campaign_id, kind, title, starts_at, ends_at, last_day, closed_at FROM notices WHERE campaign_id = $1 ORDER BY starts_at, id",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(NoticeRow::try_from)
    .collect()
}

/// [`notice_schools`], typed.
pub async fn notice_school_ids(conn: &mut PgConnection, notice: NoticeId) -> Result<Vec<SchoolId>> {
    Ok(notice_schools(conn, notice.as_uuid())
        .await?
        .into_iter()
        .map(SchoolId::new)
        .collect())
}

pub async fn notice_schools(conn: &mut PgConnection, notice: Uuid) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar!(
        "SELECT school_id FROM notice_schools WHERE notice_id = $1 ORDER BY ordinal",
        notice
    )
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn close_notice(
    conn: &mut PgConnection,
    id: NoticeId,
    at: DateTime<Utc>,
) -> Result<bool> {
    let id = id.as_uuid();
    let n = sqlx::query!(
        "UPDATE notices SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL",
        id,
        at
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}
