//! Phase 1 self-applications and their review.

use chrono::{DateTime, Utc};
use junheng_core::seed::ApplicationStatus;
use junheng_core::{ApplicationId, CampaignId, SchoolId};
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
