//! Campaign rows: the stored definition and the phase board.

use chrono::{DateTime, Utc};
use junheng_core::{CampaignId, NoticeId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, StoreError};

/// `id` stays a bare `Uuid` while the scheduler reads it as one; [`CampaignRow::campaign_id`]
/// is the typed id.
#[derive(Debug, Clone)]
pub struct CampaignRow {
    pub id: Uuid,
    pub code: String,
    pub county: String,
    pub year: i32,
    pub time_zone: String,
    pub definition: serde_json::Value,
    pub definition_sha256: String,
    pub phases: serde_json::Value,
    pub mentors_confirmed_at: Option<DateTime<Utc>>,
    pub results_notice_id: Option<Uuid>,
    pub results_final_at: Option<DateTime<Utc>>,
    pub awards_confirmed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl CampaignRow {
    pub fn campaign_id(&self) -> CampaignId {
        CampaignId::new(self.id)
    }
}

/// How a command locks its campaign: school-level commands take a key-share lock so they run
/// in parallel but never interleave with a phase change, which takes the row lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    None,
    Share,
    Update,
}

pub async fn insert(conn: &mut PgConnection, row: &CampaignRow) -> Result<()> {
    let res = sqlx::query!(
        r#"INSERT INTO campaigns (id, code, county, year, time_zone, definition, definition_sha256, phases, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (code) DO NOTHING"#,
        row.id,
        row.code,
        row.county,
        row.year,
        row.time_zone,
        row.definition,
        row.definition_sha256,
        row.phases,
        row.created_at,
    )
    .execute(&mut *conn)
    .await?;
    if res.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "a campaign with code `{}` already exists",
            row.code
        )));
    }
    Ok(())
}

/// `id` is a [`CampaignId`], or a bare `Uuid` from a caller not yet typed (the scheduler).
pub async fn get(
    conn: &mut PgConnection,
    id: impl Into<CampaignId>,
    lock: Lock,
) -> Result<CampaignRow> {
    let id = id.into().as_uuid();
    let row = match lock {
        Lock::None => sqlx::query_as!(CampaignRow, "SELECT id, code, county, year, time_zone, definition, definition_sha256, phases, mentors_confirmed_at, results_notice_id, results_final_at, awards_confirmed_at, created_at FROM campaigns WHERE id = $1", id)
            .fetch_optional(&mut *conn)
            .await?,
        Lock::Share => sqlx::query_as!(CampaignRow, "SELECT id, code, county, year, time_zone, definition, definition_sha256, phases, mentors_confirmed_at, results_notice_id, results_final_at, awards_confirmed_at, created_at FROM campaigns WHERE id = $1 FOR KEY SHARE", id)
            .fetch_optional(&mut *conn)
            .await?,
        Lock::Update => sqlx::query_as!(CampaignRow, "SELECT id, code, county, year, time_zone, definition, definition_sha256, phases, mentors_confirmed_at, results_notice_id, results_final_at, awards_confirmed_at, created_at FROM campaigns WHERE id = $1 FOR UPDATE", id)
            .fetch_optional(&mut *conn)
            .await?,
    };
    row.ok_or_else(|| StoreError::not_found("campaign", id))
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<CampaignRow>> {
    Ok(sqlx::query_as!(CampaignRow, "SELECT id, code, county, year, time_zone, definition, definition_sha256, phases, mentors_confirmed_at, results_notice_id, results_final_at, awards_confirmed_at, created_at FROM campaigns ORDER BY year DESC, code")
        .fetch_all(&mut *conn)
        .await?)
}

pub async fn set_phases(
    conn: &mut PgConnection,
    id: CampaignId,
    phases: &serde_json::Value,
) -> Result<()> {
    let id = id.as_uuid();
    sqlx::query!("UPDATE campaigns SET phases = $2 WHERE id = $1", id, phases)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn set_mentors_confirmed(
    conn: &mut PgConnection,
    id: CampaignId,
    at: DateTime<Utc>,
) -> Result<()> {
    let id = id.as_uuid();
    sqlx::query!(
        "UPDATE campaigns SET mentors_confirmed_at = $2 WHERE id = $1",
        id,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_results_notice(
    conn: &mut PgConnection,
    id: CampaignId,
    notice: NoticeId,
) -> Result<()> {
    let id = id.as_uuid();
    let notice = notice.as_uuid();
    sqlx::query!(
        "UPDATE campaigns SET results_notice_id = $2 WHERE id = $1",
        id,
        notice
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_results_final(
    conn: &mut PgConnection,
    id: CampaignId,
    at: DateTime<Utc>,
) -> Result<()> {
    let id = id.as_uuid();
    sqlx::query!(
        "UPDATE campaigns SET results_final_at = $2 WHERE id = $1",
        id,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_awards_confirmed(
    conn: &mut PgConnection,
    id: CampaignId,
    at: DateTime<Utc>,
) -> Result<()> {
    let id = id.as_uuid();
    sqlx::query!(
        "UPDATE campaigns SET awards_confirmed_at = $2 WHERE id = $1",
        id,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
