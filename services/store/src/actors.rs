//! The actors the plan names and what an award means afterwards (migration 0013): principals
//! with a stable id and their tenures, departments' opinions on self-applications, and the
//! consequences of confirmed awards.

use chrono::{DateTime, NaiveDate, Utc};
use junheng_core::{ApplicationId, CampaignId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, StoreError};

/// Every school's current principal in a campaign: (school, principal id).
pub async fn current_principals(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Vec<(SchoolId, Uuid)>> {
    let campaign = campaign.as_uuid();
    let rows = sqlx::query!(
        "SELECT id, principal_id FROM schools WHERE campaign_id = $1 ORDER BY id",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (SchoolId::new(r.id), r.principal_id))
        .collect())
}

/// A school's principal changes: the new person gets a new id, the current tenure ends, the
/// new one begins, and the school's name column follows. Returns the old principal's id.
pub async fn change_principal(
    conn: &mut PgConnection,
    school: SchoolId,
    new_principal: Uuid,
    name: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Uuid> {
    let school = school.as_uuid();
    let old = sqlx::query_scalar!(
        "SELECT principal_id FROM schools WHERE id = $1 FOR UPDATE",
        school
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("school", school))?;
    sqlx::query!(
        "INSERT INTO principals (id, name, created_at) VALUES ($1, $2, $3)",
        new_principal,
        name,
        at
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE principal_history SET until = $2, reason = $3 WHERE school_id = $1 AND until IS NULL",
        school,
        at,
        reason
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO principal_history (school_id, principal_id, since) VALUES ($1, $2, $3)",
        school,
        new_principal,
        at
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE schools SET principal_id = $2, principal = $3, updated_at = $4 WHERE id = $1",
        school,
        new_principal,
        name,
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(old)
}

/// One principal's tenure at a school.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenure {
    pub principal_id: Uuid,
    pub name: String,
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    /// Why the tenure ended (empty while current).
    pub reason: String,
}

/// A school's principals, oldest first.
pub async fn principal_history(conn: &mut PgConnection, school: SchoolId) -> Result<Vec<Tenure>> {
    let school = school.as_uuid();
    Ok(sqlx::query_as!(
        Tenure,
        r#"SELECT h.principal_id, p.name, h.since, h.until, h.reason
           FROM principal_history h JOIN principals p ON p.id = h.principal_id
           WHERE h.school_id = $1 ORDER BY h.since, h.principal_id"#,
        school
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// A department's opinion on a self-application.
#[derive(Debug, Clone, PartialEq)]
pub struct OpinionRow {
    pub application_id: ApplicationId,
    pub department: String,
    pub campaign_id: CampaignId,
    pub school_id: SchoolId,
    pub agree: bool,
    pub reason: String,
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
}

/// A `OpinionRow` as fetched, before its ids are typed.
struct OpinionRec {
    application_id: Uuid,
    department: String,
    campaign_id: Uuid,
    school_id: Uuid,
    agree: bool,
    reason: String,
    actor: String,
    recorded_at: DateTime<Utc>,
}

impl From<OpinionRec> for OpinionRow {
    fn from(r: OpinionRec) -> Self {
        OpinionRow {
            application_id: ApplicationId::new(r.application_id),
            department: r.department,
            campaign_id: CampaignId::new(r.campaign_id),
            school_id: SchoolId::new(r.school_id),
            agree: r.agree,
            reason: r.reason,
            actor: r.actor,
            recorded_at: r.recorded_at,
        }
    }
}

/// Records a department's opinion, replacing its earlier one; returns the replaced opinion.
pub async fn put_opinion(conn: &mut PgConnection, o: &OpinionRow) -> Result<Option<OpinionRow>> {
    let before = sqlx::query_as!(
        OpinionRec,
        r#"SELECT application_id, department, campaign_id, school_id, agree, reason, actor, recorded_at
           FROM department_opinions WHERE application_id = $1 AND department = $2 FOR UPDATE"#,
        o.application_id.as_uuid(),
        o.department
    )
    .fetch_optional(&mut *conn)
    .await?
    .map(OpinionRow::from);
    sqlx::query!(
        r#"INSERT INTO department_opinions (application_id, department, campaign_id, school_id, agree, reason, actor, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (application_id, department) DO UPDATE
             SET agree = EXCLUDED.agree, reason = EXCLUDED.reason, actor = EXCLUDED.actor, recorded_at = EXCLUDED.recorded_at"#,
        o.application_id.as_uuid(),
        o.department,
        o.campaign_id.as_uuid(),
        o.school_id.as_uuid(),
        o.agree,
        o.reason,
        o.actor,
        o.recorded_at
    )
    .execute(&mut *conn)
    .await?;
    Ok(before)
}

/// The opinions of a campaign's applications, by application then department.
pub async fn opinions(conn: &mut PgConnection, campaign: CampaignId) -> Result<Vec<OpinionRow>> {
    let campaign = campaign.as_uuid();
    Ok(sqlx::query_as!(
        OpinionRec,
        r#"SELECT application_id, department, campaign_id, school_id, agree, reason, actor, recorded_at
           FROM department_opinions WHERE campaign_id = $1 ORDER BY application_id, recorded_at, department"#,
        campaign
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(OpinionRow::from)
    .collect())
}

/// The opinions of one application, in recording order.
pub async fn opinions_of(
    conn: &mut PgConnection,
    application: ApplicationId,
) -> Result<Vec<OpinionRow>> {
    let application = application.as_uuid();
    Ok(sqlx::query_as!(
        OpinionRec,
        r#"SELECT application_id, department, campaign_id, school_id, agree, reason, actor, recorded_at
           FROM department_opinions WHERE application_id = $1 ORDER BY recorded_at, department"#,
        application
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(OpinionRow::from)
    .collect())
}

/// One consequence of a confirmed award, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsequenceRow {
    pub id: Uuid,
    pub campaign_id: CampaignId,
    pub school_id: SchoolId,
    pub principal_id: Option<Uuid>,
    pub year: i32,
    pub class: String,
    pub subject: String,
    pub kind: String,
    pub label: String,
    pub valid_until: Option<NaiveDate>,
    pub recorded_at: DateTime<Utc>,
}

pub async fn insert_consequences(conn: &mut PgConnection, rows: &[ConsequenceRow]) -> Result<()> {
    for c in rows {
        sqlx::query!(
            r#"INSERT INTO award_consequences (id, campaign_id, school_id, principal_id, year, class, subject, kind, label, valid_until, recorded_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#,
            c.id,
            c.campaign_id.as_uuid(),
            c.school_id.as_uuid(),
            c.principal_id,
            c.year,
            c.class,
            c.subject,
            c.kind,
            c.label,
            c.valid_until,
            c.recorded_at
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A consequence with the school and principal it names.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsequenceListing {
    pub id: Uuid,
    pub campaign_id: CampaignId,
    pub year: i32,
    pub school_id: SchoolId,
    pub school_code: String,
    pub school_name: String,
    pub principal_id: Option<Uuid>,
    pub principal_name: Option<String>,
    pub class: String,
    pub subject: String,
    pub kind: String,
    pub label: String,
    pub valid_until: Option<NaiveDate>,
    pub recorded_at: DateTime<Utc>,
}

/// A `ConsequenceListing` as fetched, before its ids are typed.
struct ConsequenceListingRec {
    id: Uuid,
    campaign_id: Uuid,
    year: i32,
    school_id: Uuid,
    school_code: String,
    school_name: String,
    principal_id: Option<Uuid>,
    principal_name: Option<String>,
    class: String,
    subject: String,
    kind: String,
    label: String,
    valid_until: Option<NaiveDate>,
    recorded_at: DateTime<Utc>,
}

impl From<ConsequenceListingRec> for ConsequenceListing {
    fn from(r: ConsequenceListingRec) -> Self {
        ConsequenceListing {
            id: r.id,
            campaign_id: CampaignId::new(r.campaign_id),
            year: r.year,
            school_id: SchoolId::new(r.school_id),
            school_code: r.school_code,
            school_name: r.school_name,
            principal_id: r.principal_id,
            principal_name: r.principal_name,
            class: r.class,
            subject: r.subject,
            kind: r.kind,
            label: r.label,
            valid_until: r.valid_until,
            recorded_at: r.recorded_at,
        }
    }
}

/// Filters of `list_consequences`; at least a campaign or a year.
#[derive(Debug, Clone, Default)]
pub struct ConsequenceFilter {
    pub campaign: Option<CampaignId>,
    pub year: Option<i32>,
    pub school: Option<SchoolId>,
    pub principal: Option<Uuid>,
    pub kind: Option<String>,
}

/// Consequences in id order (ids are v7, so in recording order), after `after`, at most `limit`.
pub async fn list_consequences(
    conn: &mut PgConnection,
    f: &ConsequenceFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ConsequenceListing>> {
    Ok(sqlx::query_as!(
        ConsequenceListingRec,
        r#"SELECT k.id, k.campaign_id, k.year, k.school_id, s.code AS school_code, s.name AS school_name,
                  k.principal_id, p.name AS "principal_name?", k.class, k.subject, k.kind, k.label,
                  k.valid_until, k.recorded_at
           FROM award_consequences k
           JOIN schools s ON s.id = k.school_id
           LEFT JOIN principals p ON p.id = k.principal_id
           WHERE ($1::uuid IS NULL OR k.campaign_id = $1) AND ($2::int IS NULL OR k.year = $2)
             AND ($3::uuid IS NULL OR k.school_id = $3) AND ($4::uuid IS NULL OR k.principal_id = $4)
             AND ($5::text IS NULL OR k.kind = $5) AND ($6::uuid IS NULL OR k.id > $6)
           ORDER BY k.id
           LIMIT $7"#,
        f.campaign.map(CampaignId::as_uuid),
        f.year,
        f.school.map(SchoolId::as_uuid),
        f.principal,
        f.kind,
        after,
        limit
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(ConsequenceListing::from)
    .collect())
}

/// The schools of a campaign that submitted a phase-2 presentation.
pub async fn presented(conn: &mut PgConnection, campaign: CampaignId) -> Result<Vec<SchoolId>> {
    let campaign = campaign.as_uuid();
    Ok(sqlx::query_scalar!(
        "SELECT school_id FROM presentations WHERE campaign_id = $1 ORDER BY school_id",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(SchoolId::new)
    .collect())
}
