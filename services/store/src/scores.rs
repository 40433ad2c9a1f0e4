//! Phase 4 records: the acceptance panel, score sheets, results and disputes.

use chrono::{DateTime, Utc};
use junheng_core::{CampaignId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use junheng_core::scoring::{AcceptanceResult, IndicatorScores};

use crate::{Result, decode_json, encode_json};

#[derive(Debug, Clone)]
pub struct PanelRow {
    pub actor: String,
    pub name: String,
    pub affiliation: String,
    pub mentor_school_id: Option<SchoolId>,
}

struct PanelRec {
    actor: String,
    name: String,
    affiliation: String,
    mentor_school_id: Option<Uuid>,
}

impl From<PanelRec> for PanelRow {
    fn from(r: PanelRec) -> Self {
        PanelRow {
            actor: r.actor,
            name: r.name,
            affiliation: r.affiliation,
            mentor_school_id: r.mentor_school_id.map(SchoolId::new),
        }
    }
}

pub async fn replace_panel(
    conn: &mut PgConnection,
    campaign: CampaignId,
    members: &[PanelRow],
) -> Result<()> {
    let campaign = campaign.as_uuid();
    sqlx::query!("DELETE FROM panel_members WHERE campaign_id = $1", campaign)
        .execute(&mut *conn)
        .await?;
    for m in members {
        sqlx::query!(
            "INSERT INTO panel_members (campaign_id, actor, name, affiliation, mentor_school_id) VALUES ($1, $2, $3, $4, $5)",
            campaign,
            m.actor,
            m.name,
            m.affiliation,
            m.mentor_school_id.map(SchoolId::as_uuid)
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn panel(conn: &mut PgConnection, campaign: CampaignId) -> Result<Vec<PanelRow>> {
    let campaign = campaign.as_uuid();
    Ok(sqlx::query_as!(PanelRec, "SELECT actor, name, affiliation, mentor_school_id FROM panel_members WHERE campaign_id = $1 ORDER BY actor", campaign)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(PanelRow::from)
        .collect())
}

#[derive(Debug, Clone)]
pub struct ScoreRow {
    pub school_id: SchoolId,
    pub member: String,
    pub report: f64,
    pub onsite: IndicatorScores,
}

struct ScoreRec {
    school_id: Uuid,
    member: String,
    report: f64,
    onsite: serde_json::Value,
}

impl TryFrom<ScoreRec> for ScoreRow {
    type Error = crate::StoreError;

    fn try_from(r: ScoreRec) -> Result<Self> {
        Ok(ScoreRow {
            school_id: SchoolId::new(r.school_id),
            member: r.member,
            report: r.report,
            onsite: decode_json("acceptance_scores.onsite", r.onsite)?,
        })
    }
}

pub async fn upsert_scores(
    conn: &mut PgConnection,
    campaign: CampaignId,
    s: &ScoreRow,
    at: DateTime<Utc>,
) -> Result<()> {
    let campaign = campaign.as_uuid();
    sqlx::query!(
        r#"INSERT INTO acceptance_scores (school_id, member, campaign_id, report, onsite, scored_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (school_id, member) DO UPDATE SET report = EXCLUDED.report, onsite = EXCLUDED.onsite, scored_at = EXCLUDED.scored_at"#,
        s.school_id.as_uuid(),
        s.member,
        campaign,
        s.report,
        encode_json("acceptance_scores.onsite", &s.onsite)?,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn scores(conn: &mut PgConnection, campaign: CampaignId) -> Result<Vec<ScoreRow>> {
    let campaign = campaign.as_uuid();
    sqlx::query_as!(ScoreRec, "SELECT school_id, member, report, onsite FROM acceptance_scores WHERE campaign_id = $1 ORDER BY school_id, member", campaign)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(ScoreRow::try_from)
        .collect()
}

pub async fn replace_results(
    conn: &mut PgConnection,
    campaign: CampaignId,
    rows: &[(SchoolId, Option<AcceptanceResult>)],
    at: DateTime<Utc>,
) -> Result<()> {
    let campaign = campaign.as_uuid();
    sqlx::query!("DELETE FROM results WHERE campaign_id = $1", campaign)
        .execute(&mut *conn)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0.as_uuid()).collect();
    let values = rows
        .iter()
        .map(|r| encode_json("results.result", &r.1))
        .collect::<Result<Vec<serde_json::Value>>>()?;
    sqlx::query!(
        "INSERT INTO results (school_id, campaign_id, result, computed_at) SELECT s, $1, r, $2 FROM UNNEST($3::uuid[], $4::jsonb[]) AS u(s, r)",
        campaign,
        at,
        &ids,
        &values
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn results(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Vec<(SchoolId, Option<AcceptanceResult>, bool)>> {
    let campaign = campaign.as_uuid();
    let rows = sqlx::query!(
        "SELECT school_id, result, disputed FROM results WHERE campaign_id = $1",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                SchoolId::new(r.school_id),
                decode_json("results.result", r.result)?,
                r.disputed,
            ))
        })
        .collect()
}

pub async fn mark_disputed(conn: &mut PgConnection, school: SchoolId) -> Result<()> {
    let school = school.as_uuid();
    sqlx::query!(
        "UPDATE results SET disputed = true WHERE school_id = $1",
        school
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn scores_of(conn: &mut PgConnection, school: SchoolId) -> Result<Vec<ScoreRow>> {
    let school = school.as_uuid();
    sqlx::query_as!(ScoreRec, "SELECT school_id, member, report, onsite FROM acceptance_scores WHERE school_id = $1 ORDER BY member", school)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(ScoreRow::try_from)
        .collect()
}

/// Whether a school's published result is disputed (None: no published result).
pub async fn disputed(conn: &mut PgConnection, school: SchoolId) -> Result<Option<bool>> {
    let school = school.as_uuid();
    Ok(
        sqlx::query_scalar!("SELECT disputed FROM results WHERE school_id = $1", school)
            .fetch_optional(&mut *conn)
            .await?,
    )
}
