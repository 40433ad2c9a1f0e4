//! Phase 2 records: presentations, declared practices and panel rating sheets.

use chrono::{DateTime, Utc};
use junheng_core::{CampaignId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use std::collections::BTreeMap;

use junheng_core::mentor::Rating;

use crate::{Result, StoreError, decode_json, encode_json};

#[derive(Debug, Clone)]
pub struct PresentationRow {
    pub school_id: SchoolId,
    pub campaign_id: CampaignId,
    pub document_ref: String,
    pub document_sha256: String,
    pub submitted_at: DateTime<Utc>,
}

/// A `PresentationRow` as fetched, before its ids are typed.
struct PresentationRec {
    school_id: Uuid,
    campaign_id: Uuid,
    document_ref: String,
    document_sha256: String,
    submitted_at: DateTime<Utc>,
}

impl From<PresentationRec> for PresentationRow {
    fn from(r: PresentationRec) -> Self {
        PresentationRow {
            school_id: SchoolId::new(r.school_id),
            campaign_id: CampaignId::new(r.campaign_id),
            document_ref: r.document_ref,
            document_sha256: r.document_sha256,
            submitted_at: r.submitted_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PracticeRow {
    pub id: Uuid,
    pub school_id: SchoolId,
    pub ordinal: i32,
    pub indicator: String,
    pub title: String,
    pub description: String,
}

/// A `PracticeRow` as fetched, before its ids are typed.
struct PracticeRec {
    id: Uuid,
    school_id: Uuid,
    ordinal: i32,
    indicator: String,
    title: String,
    description: String,
}

impl From<PracticeRec> for PracticeRow {
    fn from(r: PracticeRec) -> Self {
        PracticeRow {
            id: r.id,
            school_id: SchoolId::new(r.school_id),
            ordinal: r.ordinal,
            indicator: r.indicator,
            title: r.title,
            description: r.description,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SheetRow {
    pub school_id: SchoolId,
    pub rater: String,
    /// Indicator code → rating.
    pub ratings: BTreeMap<String, Rating>,
    /// Practice id → accepted.
    pub verdicts: BTreeMap<Uuid, bool>,
}

/// A `ratings` row as fetched, before its ids and maps are typed.
struct SheetRec {
    school_id: Uuid,
    rater: String,
    ratings: serde_json::Value,
    verdicts: serde_json::Value,
}

impl TryFrom<SheetRec> for SheetRow {
    type Error = StoreError;

    fn try_from(r: SheetRec) -> Result<Self> {
        Ok(SheetRow {
            school_id: SchoolId::new(r.school_id),
            rater: r.rater,
            ratings: decode_json("ratings.ratings", r.ratings)?,
            verdicts: decode_json("ratings.verdicts", r.verdicts)?,
        })
    }
}

pub async fn insert_presentation(
    conn: &mut PgConnection,
    p: &PresentationRow,
    practices: &[PracticeRow],
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO presentations (school_id, campaign_id, document_ref, document_sha256, submitted_at) VALUES ($1, $2, $3, $4, $5)",
        p.school_id.as_uuid(),
        p.campaign_id.as_uuid(),
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
            p.campaign_id.as_uuid(),
            pr.school_id.as_uuid(),
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

pub async fn get_presentation(
    conn: &mut PgConnection,
    school: SchoolId,
) -> Result<PresentationRow> {
    let school = school.as_uuid();
    sqlx::query_as!(
        PresentationRec,
        "SELECT school_id, campaign_id, document_ref, document_sha256, submitted_at FROM presentations WHERE school_id = $1",
        school
    )
    .fetch_optional(&mut *conn)
    .await?
    .map(PresentationRow::from)
    .ok_or_else(|| StoreError::not_found("presentation of school", school))
}

pub async fn practices_of(conn: &mut PgConnection, school: SchoolId) -> Result<Vec<PracticeRow>> {
    let school = school.as_uuid();
    Ok(sqlx::query_as!(
        PracticeRec,
        "SELECT id, school_id, ordinal, indicator, title, description FROM practices WHERE school_id = $1 ORDER BY ordinal",
        school
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(PracticeRow::from)
    .collect())
}

pub async fn campaign_practices(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Vec<PracticeRow>> {
    let campaign = campaign.as_uuid();
    Ok(sqlx::query_as!(
        PracticeRec,
        "SELECT id, school_id, ordinal, indicator, title, description FROM practices WHERE campaign_id = $1 ORDER BY school_id, ordinal",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(PracticeRow::from)
    .collect())
}

pub async fn upsert_sheet(
    conn: &mut PgConnection,
    campaign: CampaignId,
    s: &SheetRow,
    at: DateTime<Utc>,
) -> Result<()> {
    let campaign = campaign.as_uuid();
    sqlx::query!(
        r#"INSERT INTO ratings (school_id, rater, campaign_id, ratings, verdicts, rated_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (school_id, rater) DO UPDATE SET ratings = EXCLUDED.ratings, verdicts = EXCLUDED.verdicts, rated_at = EXCLUDED.rated_at"#,
        s.school_id.as_uuid(),
        s.rater,
        campaign,
        encode_json("ratings.ratings", &s.ratings)?,
        encode_json("ratings.verdicts", &s.verdicts)?,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn sheets_of(conn: &mut PgConnection, school: SchoolId) -> Result<Vec<SheetRow>> {
    let school = school.as_uuid();
    sqlx::query_as!(SheetRec, "SELECT school_id, rater, ratings, verdicts FROM ratings WHERE school_id = $1 ORDER BY rater", school)
        .fetch_all(&mut *conn)
        .await?
    .into_iter()
    .map(SheetRow::try_from)
    .collect()
}

pub async fn campaign_sheets(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Vec<SheetRow>> {
    let campaign = campaign.as_uuid();
    sqlx::query_as!(SheetRec, "SELECT school_id, rater, ratings, verdicts FROM ratings WHERE campaign_id = $1 ORDER BY school_id, rater", campaign)
        .fetch_all(&mut *conn)
        .await?
    .into_iter()
    .map(SheetRow::try_from)
    .collect()
}

/// One appointed member of a campaign's phase-2 panel.
#[derive(Debug, Clone)]
pub struct MentorPanelRow {
    pub actor: String,
    pub name: String,
    pub affiliation: String,
    pub school_id: Option<SchoolId>,
}

/// A `MentorPanelRow` as fetched, before its ids are typed.
struct MentorPanelRec {
    actor: String,
    name: String,
    affiliation: String,
    school_id: Option<Uuid>,
}

impl From<MentorPanelRec> for MentorPanelRow {
    fn from(r: MentorPanelRec) -> Self {
        MentorPanelRow {
            actor: r.actor,
            name: r.name,
            affiliation: r.affiliation,
            school_id: r.school_id.map(SchoolId::new),
        }
    }
}

pub async fn replace_mentor_panel(
    conn: &mut PgConnection,
    campaign: CampaignId,
    members: &[MentorPanelRow],
) -> Result<()> {
    let campaign = campaign.as_uuid();
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
            m.school_id.map(SchoolId::as_uuid)
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn mentor_panel(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Vec<MentorPanelRow>> {
    let campaign = campaign.as_uuid();
    Ok(sqlx::query_as!(
        MentorPanelRec,
        "SELECT actor, name, affiliation, school_id FROM mentor_panel_members WHERE campaign_id = $1 ORDER BY actor",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(MentorPanelRow::from)
    .collect())
}

/// Rating sheets recorded in a campaign so far.
pub async fn count_sheets(conn: &mut PgConnection, campaign: CampaignId) -> Result<i64> {
    let campaign = campaign.as_uuid();
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM ratings WHERE campaign_id = $1"#,
        campaign
    )
    .fetch_one(&mut *conn)
    .await?)
}
