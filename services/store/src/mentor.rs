//! Phase 2 records: presentations, declared practices and panel rating sheets.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct PresentationRow {
    pub school_id: Uuid,
    pub campaign_id: Uuid,
    pub document_ref: String,
    pub document_sha256: String,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct PracticeRow {
    pub id: Uuid,
    pub school_id: Uuid,
    pub ordinal: i32,
    pub indicator: String,
    pub title: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct SheetRow {
    pub school_id: Uuid,
    pub rater: String,
    pub ratings: serde_json::Value,
    pub verdicts: serde_json::Value,
}

pub async fn insert_presentation(
    conn: &mut PgConnection,
    p: &PresentationRow,
    practices: &[PracticeRow],
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO presentations (school_id, campaign_id, document_ref, document_sha256, submitted_at) VALUES ($1, $2, $3, $4, $5)",
        p.school_id,
        p.campaign_id,
        p.document_ref,
        p.document_sha256,
        p.submitted_at
    )
    .execute(&mut *conn)
    .await?;
    for pr in practices {
        sqlx::query!(
            "INSERT INTO practices (id, campaign_id, school_id, ordinal, indicator, title, description) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            pr.id,
            p.campaign_id,
            pr.school_id,
            pr.ordinal,
            pr.indicator,
            pr.title,
            pr.description
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn get_presentation(conn: &mut PgConnection, school: Uuid) -> Result<PresentationRow> {
    sqlx::query_as!(
        PresentationRow,
        "SELECT school_id, campaign_id, document_ref, document_sha256, submitted_at FROM presentations WHERE school_id = $1",
        school
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("presentation of school", school))
}

pub async fn practices_of(conn: &mut PgConnection, school: Uuid) -> Result<Vec<PracticeRow>> {
    Ok(sqlx::query_as!(
        PracticeRow,
        "SELECT id, school_id, ordinal, indicator, title, description FROM practices WHERE school_id = $1 ORDER BY ordinal",
        school
    )
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn campaign_practices(
    conn: &mut PgConnection,
    campaign: Uuid,
) -> Result<Vec<PracticeRow>> {
    Ok(sqlx::query_as!(
        PracticeRow,
        "SELECT id, school_id, ordinal, indicator, title, description FROM practices WHERE campaign_id = $1 ORDER BY school_id, ordinal",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn upsert_sheet(
    conn: &mut PgConnection,
    campaign: Uuid,
    s: &SheetRow,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        r#"INSERT INTO ratings (school_id, rater, campaign_id, ratings, verdicts, rated_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (school_id, rater) DO UPDATE SET ratings = EXCLUDED.ratings, verdicts = EXCLUDED.verdicts, rated_at = EXCLUDED.rated_at"#,
        s.school_id,
        s.rater,
        campaign,
        s.ratings,
        s.verdicts,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn sheets_of(conn: &mut PgConnection, school: Uuid) -> Result<Vec<SheetRow>> {
    Ok(sqlx::query_as!(SheetRow, "SELECT school_id, rater, ratings, verdicts FROM ratings WHERE school_id = $1 ORDER BY rater", school)
        .fetch_all(&mut *conn)
        .await?)
}

pub async fn campaign_sheets(conn: &mut PgConnection, campaign: Uuid) -> Result<Vec<SheetRow>> {
    Ok(sqlx::query_as!(SheetRow, "SELECT school_id, rater, ratings, verdicts FROM ratings WHERE campaign_id = $1 ORDER BY school_id, rater", campaign)
        .fetch_all(&mut *conn)
        .await?)
}

/// One appointed member of a campaign's phase-2 panel.
#[derive(Debug, Clone)]
pub struct MentorPanelRow {
    pub actor: String,
    pub name: String,
    pub affiliation: String,
    pub school_id: Option<Uuid>,
}

pub async fn replace_mentor_panel(
    conn: &mut PgConnection,
    campaign: Uuid,
    members: &[MentorPanelRow],
) -> Result<()> {
    sqlx::query!(
        "DELETE FROM mentor_panel_members WHERE campaign_id = $1",
        campaign
    )
    .execute(&mut *conn)
    .await?;
    for m in members {
        sqlx::query!(
            "INSERT INTO mentor_panel_members (campaign_id, actor, name, affiliation, school_id) VALUES ($1, $2, $3, $4, $5)",
            campaign,
            m.actor,
            m.name,
            m.affiliation,
            m.school_id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn mentor_panel(conn: &mut PgConnection, campaign: Uuid) -> Result<Vec<MentorPanelRow>> {
    Ok(sqlx::query_as!(
        MentorPanelRow,
        "SELECT actor, name, affiliation, school_id FROM mentor_panel_members WHERE campaign_id = $1 ORDER BY actor",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Rating sheets recorded in a campaign so far.
pub async fn count_sheets(conn: &mut PgConnection, campaign: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM ratings WHERE campaign_id = $1"#,
        campaign
    )
    .fetch_one(&mut *conn)
    .await?)
}
