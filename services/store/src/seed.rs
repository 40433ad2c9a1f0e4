//! The facts phase 1 (seed designation) is decided on: counts for its exit criteria.

use chrono::{DateTime, Utc};
use junheng_core::CampaignId;
use sqlx::PgConnection;

use crate::Result;

/// Counts for phase 1's exit criteria.
pub struct SeedFacts {
    pub pending_applications: i64,
    pub approved_awaiting_notice: i64,
    pub open_notices: i64,
    pub open_objections: i64,
    pub listed: i64,
}

pub async fn facts(
    conn: &mut PgConnection,
    campaign: CampaignId,
    now: DateTime<Utc>,
) -> Result<SeedFacts> {
    let campaign = campaign.as_uuid();
    let r = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM applications WHERE campaign_id = $1 AND status = 'pending') AS "pending!",
             (SELECT count(*) FROM schools WHERE campaign_id = $1 AND state = 'approved') AS "approved!",
             (SELECT count(*) FROM notices WHERE campaign_id = $1 AND kind <> 'results' AND ends_at > $2) AS "notices!",
             (SELECT count(*) FROM objections o JOIN notices n ON n.id = o.notice_id
               WHERE o.campaign_id = $1 AND o.status = 'open' AND n.kind <> 'results') AS "objections!",
             (SELECT count(*) FROM schools WHERE campaign_id = $1 AND state = 'listed') AS "listed!""#,
        campaign,
        now
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(SeedFacts {
        pending_applications: r.pending,
        approved_awaiting_notice: r.approved,
        open_notices: r.notices,
        open_objections: r.objections,
        listed: r.listed,
    })
}
