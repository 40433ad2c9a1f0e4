//! School rows: registration data plus the case state and its version.

use chrono::{DateTime, Utc};
use junheng_core::school::CaseState;
use junheng_core::values::SchoolCode;
use junheng_core::{CampaignId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, StoreError, decode};

#[derive(Debug, Clone)]
pub struct SchoolRow {
    pub id: SchoolId,
    pub campaign_id: CampaignId,
    pub code: String,
    pub name: String,
    pub level: String,
    pub town: String,
    pub principal: String,
    /// The current principal, a person's stable id (migration 0013).
    pub principal_id: Uuid,
    pub contacts: serde_json::Value,
    pub state: CaseState,
    pub version: i64,
}

/// A `schools` row as fetched, before its state is read.
struct SchoolRec {
    id: Uuid,
    campaign_id: Uuid,
    code: String,
    name: String,
    level: String,
    town: String,
    principal: String,
    principal_id: Uuid,
    contacts: serde_json::Value,
    state: String,
    version: i64,
}

impl TryFrom<SchoolRec> for SchoolRow {
    type Error = StoreError;

    fn try_from(r: SchoolRec) -> Result<Self> {
        Ok(SchoolRow {
            state: decode("schools.state", &r.state, CaseState::from_code)?,
            id: SchoolId::new(r.id),
            campaign_id: CampaignId::new(r.campaign_id),
            code: r.code,
            name: r.name,
            level: r.level,
            town: r.town,
            principal: r.principal,
            principal_id: r.principal_id,
            contacts: r.contacts,
            version: r.version,
        })
    }
}

fn rows(recs: Vec<SchoolRec>) -> Result<Vec<SchoolRow>> {
    recs.into_iter().map(SchoolRow::try_from).collect()
}

#[derive(Debug, Clone)]
pub struct NewSchool {
    pub code: SchoolCode,
    pub name: String,
    pub level: String,
    pub town: String,
    pub principal: String,
    pub contacts: serde_json::Value,
}

/// Inserts a batch; returns the codes that already exist in the campaign (nothing is inserted
/// then: the caller rolls back).
pub async fn insert_many(
    conn: &mut PgConnection,
    campaign: CampaignId,
    schools: &[NewSchool],
    state: CaseState,
    at: DateTime<Utc>,
) -> Result<Vec<SchoolRow>> {
    let campaign = campaign.as_uuid();
    let ids: Vec<Uuid> = schools.iter().map(|_| Uuid::now_v7()).collect();
    let codes: Vec<String> = schools.iter().map(|s| s.code.to_string()).collect();
    let existing = sqlx::query_scalar!(
        "SELECT code FROM schools WHERE campaign_id = $1 AND code = ANY($2)",
        campaign,
        &codes
    )
    .fetch_all(&mut *conn)
    .await?;
    if !existing.is_empty() {
        return Err(StoreError::Conflict(format!(
            "school codes already registered: {}",
            existing.join(", ")
        )));
    }
    let names: Vec<String> = schools.iter().map(|s| s.name.clone()).collect();
    let levels: Vec<String> = schools.iter().map(|s| s.level.clone()).collect();
    let towns: Vec<String> = schools.iter().map(|s| s.town.clone()).collect();
    let principals: Vec<String> = schools.iter().map(|s| s.principal.clone()).collect();
    let contacts: Vec<serde_json::Value> = schools.iter().map(|s| s.contacts.clone()).collect();
    rows(sqlx::query_as!(
        SchoolRec,
        r#"INSERT INTO schools (id, campaign_id, code, name, level, town, principal, contacts, state, created_at, updated_at)
           SELECT i, $1, c, n, l, t, p, ct, $2, $3, $3
           FROM UNNEST($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[])
                WITH ORDINALITY AS u(i, c, n, l, t, p, ct, ord)
           ORDER BY ord
           RETURNING id, campaign_id, code, name, level, town, principal, principal_id, contacts, state, version"#,
        campaign,
        state.code(),
        at,
        &ids,
        &codes,
        &names,
        &levels,
        &towns,
        &principals,
        &contacts,
    )
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn get(conn: &mut PgConnection, id: SchoolId) -> Result<SchoolRow> {
    let id = id.as_uuid();
    sqlx::query_as!(
        SchoolRec,
        "SELECT id, campaign_id, code, name, level, town, principal, principal_id, contacts, state, version FROM schools WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("school", id))?
    .try_into()
}

pub async fn get_for_update(conn: &mut PgConnection, id: SchoolId) -> Result<SchoolRow> {
    let id = id.as_uuid();
    sqlx::query_as!(
        SchoolRec,
        "SELECT id, campaign_id, code, name, level, town, principal, principal_id, contacts, state, version FROM schools WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("school", id))?
    .try_into()
}

/// Locks several schools of one campaign in id order (a fixed order avoids deadlocks).
pub async fn lock_many(
    conn: &mut PgConnection,
    campaign: CampaignId,
    ids: &[SchoolId],
) -> Result<Vec<SchoolRow>> {
    let ids: Vec<Uuid> = ids.iter().map(|i| i.as_uuid()).collect();
    let campaign = campaign.as_uuid();
    rows(sqlx::query_as!(
        SchoolRec,
        "SELECT id, campaign_id, code, name, level, town, principal, principal_id, contacts, state, version FROM schools WHERE campaign_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
        campaign,
        &ids
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// All schools of a campaign, locked, in id order.
pub async fn lock_all(conn: &mut PgConnection, campaign: CampaignId) -> Result<Vec<SchoolRow>> {
    let campaign = campaign.as_uuid();
    rows(sqlx::query_as!(
        SchoolRec,
        "SELECT id, campaign_id, code, name, level, town, principal, principal_id, contacts, state, version FROM schools WHERE campaign_id = $1 ORDER BY id FOR UPDATE",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Compare-and-set of the case state; the version must still be `version`.
pub async fn set_state(
    conn: &mut PgConnection,
    id: SchoolId,
    version: i64,
    state: CaseState,
    at: DateTime<Utc>,
) -> Result<i64> {
    let id = id.as_uuid();
    let row = sqlx::query_scalar!(
        "UPDATE schools SET state = $3, version = version + 1, updated_at = $4 WHERE id = $1 AND version = $2 RETURNING version",
        id,
        version,
        state.code(),
        at
    )
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(v) => Ok(v),
        None => {
            let current = get(conn, SchoolId::new(id)).await?.version;
            Err(StoreError::VersionConflict {
                expected: version,
                current,
            })
        }
    }
}

/// Sets many states at once (used when a phase turns every school over).
pub async fn set_states(
    conn: &mut PgConnection,
    ids: &[SchoolId],
    states: &[CaseState],
    at: DateTime<Utc>,
) -> Result<()> {
    let ids: Vec<Uuid> = ids.iter().map(|i| i.as_uuid()).collect();
    let states: Vec<&str> = states.iter().map(|s| s.code()).collect();
    sqlx::query!(
        r#"UPDATE schools SET state = u.s, version = version + 1, updated_at = $3
           FROM UNNEST($1::uuid[], $2::text[]) AS u(i, s) WHERE schools.id = u.i"#,
        &ids,
        &states as &[&str],
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub town: Option<String>,
    pub level: Option<String>,
    pub state: Option<CaseState>,
}

/// A page of schools ordered by code, after `after_code`.
pub async fn list(
    conn: &mut PgConnection,
    campaign: CampaignId,
    f: &Filter,
    after_code: &str,
    limit: i64,
) -> Result<Vec<SchoolRow>> {
    let campaign = campaign.as_uuid();
    rows(sqlx::query_as!(
        SchoolRec,
        r#"SELECT id, campaign_id, code, name, level, town, principal, principal_id, contacts, state, version FROM schools
           WHERE campaign_id = $1 AND code > $2
             AND ($3::text IS NULL OR town = $3) AND ($4::text IS NULL OR level = $4) AND ($5::text IS NULL OR state = $5)
           ORDER BY code LIMIT $6"#,
        campaign,
        after_code,
        f.town,
        f.level,
        f.state.map(CaseState::code),
        limit
    )
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn count_by_state(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Vec<(CaseState, i64)>> {
    let campaign = campaign.as_uuid();
    let rows = sqlx::query!(r#"SELECT state, count(*) AS "n!" FROM schools WHERE campaign_id = $1 GROUP BY state ORDER BY state"#, campaign)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                decode("schools.state", &r.state, CaseState::from_code)?,
                r.n,
            ))
        })
        .collect()
}
