//! Phases 3–5 records: pairings, baselines, assistance, the panel, scores, results, awards.

use chrono::{DateTime, NaiveDate, Utc};
use junheng_core::{CampaignId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use junheng_core::scoring::{AcceptanceResult, IndicatorScores};

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

#[derive(Debug, Clone)]
pub struct AwardRow {
    pub school_id: SchoolId,
    pub campaign_id: CampaignId,
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
            a.school_id.as_uuid(),
            a.campaign_id.as_uuid(),
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
    pub school_id: SchoolId,
    pub school_code: String,
    pub school_name: String,
    pub principal: String,
    pub class: String,
    pub reason: String,
    pub override_reason: String,
    pub campaign_id: CampaignId,
    pub county: String,
    pub year: i32,
}

struct AwardListingRec {
    school_id: Uuid,
    school_code: String,
    school_name: String,
    principal: String,
    class: String,
    reason: String,
    override_reason: String,
    campaign_id: Uuid,
    county: String,
    year: i32,
}

impl From<AwardListingRec> for AwardListing {
    fn from(r: AwardListingRec) -> Self {
        AwardListing {
            school_id: SchoolId::new(r.school_id),
            school_code: r.school_code,
            school_name: r.school_name,
            principal: r.principal,
            class: r.class,
            reason: r.reason,
            override_reason: r.override_reason,
            campaign_id: CampaignId::new(r.campaign_id),
            county: r.county,
            year: r.year,
        }
    }
}

/// Confirmed awards, filtered by campaign or year, school, principal and class.
pub async fn list_awards(
    conn: &mut PgConnection,
    campaign: Option<CampaignId>,
    year: Option<i32>,
    school: Option<SchoolId>,
    principal: Option<&str>,
    class: Option<&str>,
) -> Result<Vec<AwardListing>> {
    let campaign = campaign.map(CampaignId::as_uuid);
    let school = school.map(SchoolId::as_uuid);
    Ok(sqlx::query_as!(
        AwardListingRec,
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
    .await?
    .into_iter()
    .map(AwardListing::from)
    .collect())
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
