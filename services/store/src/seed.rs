//! Phase 1 records: applications, notices and the schools they list, objections.

use chrono::{DateTime, NaiveDate, Utc};
use junheng_core::notice::{NoticeKind, ObjectionStatus};
use junheng_core::seed::ApplicationStatus;
use junheng_core::{ApplicationId, CampaignId, NoticeId, ObjectionId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, StoreError, decode};

#[derive(Debug, Clone)]
pub struct ApplicationRow {
    pub id: ApplicationId,
    pub campaign_id: CampaignId,
    pub school_id: SchoolId,
    pub self_assessment: serde_json::Value,
    pub statement: String,
    pub status: ApplicationStatus,
    pub reason: String,
    pub submitted_at: DateTime<Utc>,
}

/// An `applications` row as fetched, before its status is read.
struct ApplicationRec {
    id: Uuid,
    campaign_id: Uuid,
    school_id: Uuid,
    self_assessment: serde_json::Value,
    statement: String,
    status: String,
    reason: String,
    submitted_at: DateTime<Utc>,
}

impl TryFrom<ApplicationRec> for ApplicationRow {
    type Error = StoreError;

    fn try_from(r: ApplicationRec) -> Result<Self> {
        Ok(ApplicationRow {
            status: decode(
                "applications.status",
                &r.status,
                ApplicationStatus::from_code,
            )?,
            id: ApplicationId::new(r.id),
            campaign_id: CampaignId::new(r.campaign_id),
            school_id: SchoolId::new(r.school_id),
            self_assessment: r.self_assessment,
            statement: r.statement,
            reason: r.reason,
            submitted_at: r.submitted_at,
        })
    }
}

pub async fn insert_application(conn: &mut PgConnection, a: &ApplicationRow) -> Result<()> {
    sqlx::query!(
        r#"INSERT INTO applications (id, campaign_id, school_id, self_assessment, statement, status, reason, submitted_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
        a.id.as_uuid(),
        a.campaign_id.as_uuid(),
        a.school_id.as_uuid(),
        a.self_assessment,
        a.statement,
        a.status.code(),
        a.reason,
        a.submitted_at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_application(conn: &mut PgConnection, id: ApplicationId) -> Result<ApplicationRow> {
    let id = id.as_uuid();
    sqlx::query_as!(
        ApplicationRec,
        "SELECT id, campaign_id, school_id, self_assessment, statement, status, reason, submitted_at FROM applications WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("application", id))?
    .try_into()
}

pub async fn decide_application(
    conn: &mut PgConnection,
    id: ApplicationId,
    status: ApplicationStatus,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let id = id.as_uuid();
    sqlx::query!(
        "UPDATE applications SET status = $2, reason = $3, decided_at = $4 WHERE id = $1",
        id,
        status.code(),
        reason,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn list_applications(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Vec<ApplicationRow>> {
    let campaign = campaign.as_uuid();
    sqlx::query_as!(
        ApplicationRec,
        "SELECT id, campaign_id, school_id, self_assessment, statement, status, reason, submitted_at FROM applications WHERE campaign_id = $1 ORDER BY submitted_at, id",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(ApplicationRow::try_from)
    .collect()
}

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

#[derive(Debug, Clone)]
pub struct ObjectionRow {
    pub id: ObjectionId,
    pub campaign_id: CampaignId,
    pub notice_id: NoticeId,
    pub school_id: SchoolId,
    pub objector_name: String,
    pub objector_contact: String,
    pub grounds: String,
    pub evidence: String,
    pub filed_by: String,
    pub status: ObjectionStatus,
    pub resolution: String,
    pub filed_at: DateTime<Utc>,
}

/// An `objections` row as fetched, before its status is read.
struct ObjectionRec {
    id: Uuid,
    campaign_id: Uuid,
    notice_id: Uuid,
    school_id: Uuid,
    objector_name: String,
    objector_contact: String,
    grounds: String,
    evidence: String,
    filed_by: String,
    status: String,
    resolution: String,
    filed_at: DateTime<Utc>,
}

impl TryFrom<ObjectionRec> for ObjectionRow {
    type Error = StoreError;

    fn try_from(r: ObjectionRec) -> Result<Self> {
        Ok(ObjectionRow {
            status: decode("objections.status", &r.status, ObjectionStatus::from_code)?,
            id: ObjectionId::new(r.id),
            campaign_id: CampaignId::new(r.campaign_id),
            notice_id: NoticeId::new(r.notice_id),
            school_id: SchoolId::new(r.school_id),
            objector_name: r.objector_name,
            objector_contact: r.objector_contact,
            grounds: r.grounds,
            evidence: r.evidence,
            filed_by: r.filed_by,
            resolution: r.resolution,
            filed_at: r.filed_at,
        })
    }
}

pub async fn insert_objection(conn: &mut PgConnection, o: &ObjectionRow) -> Result<()> {
    sqlx::query!(
        r#"INSERT INTO objections (id, campaign_id, notice_id, school_id, objector_name, objector_contact, grounds, evidence, filed_by, status, filed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#,
        o.id.as_uuid(),
        o.campaign_id.as_uuid(),
        o.notice_id.as_uuid(),
        o.school_id.as_uuid(),
        o.objector_name,
        o.objector_contact,
        o.grounds,
        o.evidence,
        o.filed_by,
        o.status.code(),
        o.filed_at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn lock_objection(conn: &mut PgConnection, id: ObjectionId) -> Result<ObjectionRow> {
    let id = id.as_uuid();
    sqlx::query_as!(
        ObjectionRec,
        "SELECT id, campaign_id, notice_id, school_id, objector_name, objector_contact, grounds, evidence, filed_by, status, resolution, filed_at FROM objections WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("objection", id))?
    .try_into()
}

pub async fn resolve_objection(
    conn: &mut PgConnection,
    id: ObjectionId,
    status: ObjectionStatus,
    resolution: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let id = id.as_uuid();
    sqlx::query!(
        "UPDATE objections SET status = $2, resolution = $3, resolved_at = $4 WHERE id = $1",
        id,
        status.code(),
        resolution,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn notice_objections(
    conn: &mut PgConnection,
    notice: NoticeId,
) -> Result<Vec<ObjectionRow>> {
    let notice = notice.as_uuid();
    sqlx::query_as!(
        ObjectionRec,
        "SELECT id, campaign_id, notice_id, school_id, objector_name, objector_contact, grounds, evidence, filed_by, status, resolution, filed_at FROM objections WHERE notice_id = $1 ORDER BY filed_at, id",
        notice
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(ObjectionRow::try_from)
    .collect()
}

/// Counts for phase 1's exit criteria.
pub struct SeedFacts {
    pub pending_applications: i64,
    pub approved_awaiting_notice: i64,
    pub open_notices: i64,
    pub open_objections: i64,
    pub listed: i64,
}

pub async fn facts(
    conn: &mut PgConnection,
    campaign: CampaignId,
    now: DateTime<Utc>,
) -> Result<SeedFacts> {
    let campaign = campaign.as_uuid();
    let r = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM applications WHERE campaign_id = $1 AND status = 'pending') AS "pending!",
             (SELECT count(*) FROM schools WHERE campaign_id = $1 AND state = 'approved') AS "approved!",
             (SELECT count(*) FROM notices WHERE campaign_id = $1 AND kind <> 'results' AND ends_at > $2) AS "notices!",
             (SELECT count(*) FROM objections o JOIN notices n ON n.id = o.notice_id
               WHERE o.campaign_id = $1 AND o.status = 'open' AND n.kind <> 'results') AS "objections!",
             (SELECT count(*) FROM schools WHERE campaign_id = $1 AND state = 'listed') AS "listed!""#,
        campaign,
        now
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(SeedFacts {
        pending_applications: r.pending,
        approved_awaiting_notice: r.approved,
        open_notices: r.notices,
        open_objections: r.objections,
        listed: r.listed,
    })
}
