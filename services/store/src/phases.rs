//! Phases 3–5 records: pairings, baselines, assistance, the panel, scores, results, awards.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;

/// Replaces the campaign's groups: (mentor, potential) pairs.
pub async fn set_pairing(
    conn: &mut PgConnection,
    campaign: Uuid,
    pairs: &[(Uuid, Uuid)],
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!("DELETE FROM pairings WHERE campaign_id = $1", campaign)
        .execute(&mut *conn)
        .await?;
    let mentors: Vec<Uuid> = pairs.iter().map(|p| p.0).collect();
    let potentials: Vec<Uuid> = pairs.iter().map(|p| p.1).collect();
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
pub async fn pairing(conn: &mut PgConnection, campaign: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query!("SELECT mentor_id, potential_id FROM pairings WHERE campaign_id = $1 ORDER BY mentor_id, potential_id", campaign)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.mentor_id, r.potential_id))
        .collect())
}

pub async fn mentor_of(conn: &mut PgConnection, potential: Uuid) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar!(
        "SELECT mentor_id FROM pairings WHERE potential_id = $1",
        potential
    )
    .fetch_optional(&mut *conn)
    .await?)
}

pub async fn upsert_baseline(
    conn: &mut PgConnection,
    campaign: Uuid,
    school: Uuid,
    scores: &serde_json::Value,
    by: &str,
    at: DateTime<Utc>,
) -> Result<()> {
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
    campaign: Uuid,
) -> Result<Vec<(Uuid, serde_json::Value)>> {
    let rows = sqlx::query!(
        "SELECT school_id, scores FROM baselines WHERE campaign_id = $1",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.school_id, r.scores)).collect())
}

#[derive(Debug, Clone)]
pub struct ActivityRow {
    pub id: Uuid,
    pub mentor_id: Uuid,
    pub potential_id: Uuid,
    pub activity_date: NaiveDate,
    pub indicators: Vec<String>,
    pub description: String,
    pub evidence_ref: String,
}

pub async fn insert_activity(
    conn: &mut PgConnection,
    campaign: Uuid,
    a: &ActivityRow,
    by: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        r#"INSERT INTO assistance_activities (id, campaign_id, mentor_id, potential_id, activity_date, indicators, description, evidence_ref, logged_by, logged_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"#,
        a.id,
        campaign,
        a.mentor_id,
        a.potential_id,
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
    campaign: Uuid,
    mentor: Option<Uuid>,
) -> Result<Vec<ActivityRow>> {
    Ok(sqlx::query_as!(
        ActivityRow,
        r#"SELECT id, mentor_id, potential_id, activity_date, indicators, description, evidence_ref FROM assistance_activities
           WHERE campaign_id = $1 AND ($2::uuid IS NULL OR mentor_id = $2) ORDER BY activity_date, id"#,
        campaign,
        mentor
    )
    .fetch_all(&mut *conn)
    .await?)
}

#[derive(Debug, Clone)]
pub struct PanelRow {
    pub actor: String,
    pub name: String,
    pub affiliation: String,
    pub mentor_school_id: Option<Uuid>,
}

pub async fn replace_panel(
    conn: &mut PgConnection,
    campaign: Uuid,
    members: &[PanelRow],
) -> Result<()> {
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
            m.mentor_school_id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn panel(conn: &mut PgConnection, campaign: Uuid) -> Result<Vec<PanelRow>> {
    Ok(sqlx::query_as!(PanelRow, "SELECT actor, name, affiliation, mentor_school_id FROM panel_members WHERE campaign_id = $1 ORDER BY actor", campaign)
        .fetch_all(&mut *conn)
        .await?)
}

#[derive(Debug, Clone)]
pub struct ScoreRow {
    pub school_id: Uuid,
    pub member: String,
    pub report: f64,
    pub onsite: serde_json::Value,
}

pub async fn upsert_scores(
    conn: &mut PgConnection,
    campaign: Uuid,
    s: &ScoreRow,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        r#"INSERT INTO acceptance_scores (school_id, member, campaign_id, report, onsite, scored_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (school_id, member) DO UPDATE SET report = EXCLUDED.report, onsite = EXCLUDED.onsite, scored_at = EXCLUDED.scored_at"#,
        s.school_id,
        s.member,
        campaign,
        s.report,
        s.onsite,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn scores(conn: &mut PgConnection, campaign: Uuid) -> Result<Vec<ScoreRow>> {
    Ok(sqlx::query_as!(ScoreRow, "SELECT school_id, member, report, onsite FROM acceptance_scores WHERE campaign_id = $1 ORDER BY school_id, member", campaign)
        .fetch_all(&mut *conn)
        .await?)
}

pub async fn replace_results(
    conn: &mut PgConnection,
    campaign: Uuid,
    rows: &[(Uuid, serde_json::Value)],
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!("DELETE FROM results WHERE campaign_id = $1", campaign)
        .execute(&mut *conn)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let values: Vec<serde_json::Value> = rows.iter().map(|r| r.1.clone()).collect();
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
    campaign: Uuid,
) -> Result<Vec<(Uuid, serde_json::Value, bool)>> {
    let rows = sqlx::query!(
        "SELECT school_id, result, disputed FROM results WHERE campaign_id = $1",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.school_id, r.result, r.disputed))
        .collect())
}

pub async fn mark_disputed(conn: &mut PgConnection, school: Uuid) -> Result<()> {
    sqlx::query!(
        "UPDATE results SET disputed = true WHERE school_id = $1",
        school
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct AwardRow {
    pub school_id: Uuid,
    pub campaign_id: Uuid,
    pub class: String,
    pub proposed_class: String,
    pub reason: String,
    pub override_reason: String,
    pub principal: String,
}

pub async fn insert_awards(
    conn: &mut PgConnection,
    rows: &[AwardRow],
    at: DateTime<Utc>,
) -> Result<()> {
    for a in rows {
        sqlx::query!(
            r#"INSERT INTO awards (school_id, campaign_id, class, proposed_class, reason, override_reason, principal, confirmed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
            a.school_id,
            a.campaign_id,
            a.class,
            a.proposed_class,
            a.reason,
            a.override_reason,
            a.principal,
            at
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct AwardListing {
    pub school_id: Uuid,
    pub school_code: String,
    pub school_name: String,
    pub principal: String,
    pub class: String,
    pub reason: String,
    pub override_reason: String,
    pub campaign_id: Uuid,
    pub county: String,
    pub year: i32,
}

/// Confirmed awards, filtered by campaign or year, school, principal and class.
pub async fn list_awards(
    conn: &mut PgConnection,
    campaign: Option<Uuid>,
    year: Option<i32>,
    school: Option<Uuid>,
    principal: Option<&str>,
    class: Option<&str>,
) -> Result<Vec<AwardListing>> {
    Ok(sqlx::query_as!(
        AwardListing,
        r#"SELECT a.school_id, s.code AS school_code, s.name AS school_name, a.principal, a.class, a.reason, a.override_reason,
                  a.campaign_id, c.county, c.year
           FROM awards a JOIN schools s ON s.id = a.school_id JOIN campaigns c ON c.id = a.campaign_id
           WHERE ($1::uuid IS NULL OR a.campaign_id = $1) AND ($2::int IS NULL OR c.year = $2)
             AND ($3::uuid IS NULL OR a.school_id = $3) AND ($4::text IS NULL OR a.principal = $4) AND ($5::text IS NULL OR a.class = $5)
           ORDER BY c.year, c.code, s.code"#,
        campaign,
        year,
        school,
        principal,
        class
    )
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn scores_of(conn: &mut PgConnection, school: Uuid) -> Result<Vec<ScoreRow>> {
    Ok(sqlx::query_as!(ScoreRow, "SELECT school_id, member, report, onsite FROM acceptance_scores WHERE school_id = $1 ORDER BY member", school)
        .fetch_all(&mut *conn)
        .await?)
}

/// Whether a school's published result is disputed (None: no published result).
pub async fn disputed(conn: &mut PgConnection, school: Uuid) -> Result<Option<bool>> {
    Ok(
        sqlx::query_scalar!("SELECT disputed FROM results WHERE school_id = $1", school)
            .fetch_optional(&mut *conn)
            .await?,
    )
}
