//! Objections filed against a notice, and their resolution.

use chrono::{DateTime, Utc};
use junheng_core::notice::ObjectionStatus;
use junheng_core::{CampaignId, NoticeId, ObjectionId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, StoreError, decode};

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
