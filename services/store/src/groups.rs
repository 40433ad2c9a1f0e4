//! The 1+X groups of phase 3: pairings (mentor, potential), baselines, assistance activities.

use chrono::{DateTime, NaiveDate, Utc};
use junheng_core::{CampaignId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use junheng_core::scoring::IndicatorScores;

use crate::{Result, decode_json, encode_json};

/// Replaces the campaign's groups: (mentor, potential) pairs.
pub async fn set_pairing(
    conn: &mut PgConnection,
    campaign: CampaignId,
    pairs: &[(SchoolId, SchoolId)],
    at: DateTime<Utc>,
) -> Result<()> {
    let campaign = campaign.as_uuid();
    sqlx::query!("DELETE FROM pairings WHERE campaign_id = $1", campaign)
        .execute(&mut *conn)
        .await?;
    let mentors: Vec<Uuid> = pairs.iter().map(|p| p.0.as_uuid()).collect();
    let potentials: Vec<Uuid> = pairs.iter().map(|p| p.1.as_uuid()).collect();
    sqlx::query!(
        "INSERT INTO pairings (potential_id, mentor_id, campaign_id, set_at) SELECT p, m, $1, $2 FROM UNNEST($3::uuid[], $4::uuid[]) AS u(m, p)",
        campaign,
        at,
        &mentors,
        &potentials
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// (mentor, potential) pairs of a campaign.
pub async fn pairing(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Vec<(SchoolId, SchoolId)>> {
    let campaign = campaign.as_uuid();
    let rows = sqlx::query!("SELECT mentor_id, potential_id FROM pairings WHERE campaign_id = $1 ORDER BY mentor_id, potential_id", campaign)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (SchoolId::new(r.mentor_id), SchoolId::new(r.potential_id)))
        .collect())
}

pub async fn mentor_of(conn: &mut PgConnection, potential: SchoolId) -> Result<Option<SchoolId>> {
    Ok(sqlx::query_scalar!(
        "SELECT mentor_id FROM pairings WHERE potential_id = $1",
        potential.as_uuid()
    )
    .fetch_optional(&mut *conn)
    .await?
    .map(SchoolId::new))
}

pub async fn upsert_baseline(
    conn: &mut PgConnection,
    campaign: CampaignId,
    school: SchoolId,
    scores: &IndicatorScores,
    by: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let scores = encode_json("baselines.scores", scores)?;
    let school = school.as_uuid();
    let campaign = campaign.as_uuid();
    sqlx::query!(
        r#"INSERT INTO baselines (school_id, campaign_id, scores, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (school_id) DO UPDATE SET scores = EXCLUDED.scores, recorded_by = EXCLUDED.recorded_by, recorded_at = EXCLUDED.recorded_at"#,
        school,
        campaign,
        scores,
        by,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn baselines(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Vec<(SchoolId, IndicatorScores)>> {
    let campaign = campaign.as_uuid();
    let rows = sqlx::query!(
        "SELECT school_id, scores FROM baselines WHERE campaign_id = $1",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                SchoolId::new(r.school_id),
                decode_json("baselines.scores", r.scores)?,
            ))
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct ActivityRow {
    pub id: Uuid,
    pub mentor_id: SchoolId,
    pub potential_id: SchoolId,
    pub activity_date: NaiveDate,
    pub indicators: Vec<String>,
    pub description: String,
    pub evidence_ref: String,
}

/// An `assistance_activities` row as fetched, before its ids are typed.
struct ActivityRec {
    id: Uuid,
    mentor_id: Uuid,
    potential_id: Uuid,
    activity_date: NaiveDate,
    indicators: Vec<String>,
    description: String,
    evidence_ref: String,
}

impl From<ActivityRec> for ActivityRow {
    fn from(r: ActivityRec) -> Self {
        ActivityRow {
            id: r.id,
            mentor_id: SchoolId::new(r.mentor_id),
            potential_id: SchoolId::new(r.potential_id),
            activity_date: r.activity_date,
            indicators: r.indicators,
            description: r.description,
            evidence_ref: r.evidence_ref,
        }
    }
}

pub async fn insert_activity(
    conn: &mut PgConnection,
    campaign: CampaignId,
    a: &ActivityRow,
    by: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let campaign = campaign.as_uuid();
    sqlx::query!(
        r#"INSERT INTO assistance_activities (id, campaign_id, mentor_id, potential_id, activity_date, indicators, description, evidence_ref, logged_by, logged_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"#,
        a.id,
        campaign,
        a.mentor_id.as_uuid(),
        a.potential_id.as_uuid(),
        a.activity_date,
        &a.indicators,
        a.description,
        a.evidence_ref,
        by,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn activities(
    conn: &mut PgConnection,
    campaign: CampaignId,
    mentor: Option<SchoolId>,
) -> Result<Vec<ActivityRow>> {
    let campaign = campaign.as_uuid();
    let mentor = mentor.map(SchoolId::as_uuid);
    Ok(sqlx::query_as!(
        ActivityRec,
        r#"SELECT id, mentor_id, potential_id, activity_date, indicators, description, evidence_ref FROM assistance_activities
           WHERE campaign_id = $1 AND ($2::uuid IS NULL OR mentor_id = $2) ORDER BY activity_date, id"#,
        campaign,
        mentor
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(ActivityRow::from)
    .collect())
}
