//! Phase 5 records: the confirmed award of each school, and the award listing.

use chrono::{DateTime, Utc};
use junheng_core::{CampaignId, SchoolId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;

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
