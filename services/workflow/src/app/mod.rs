//! The application layer: each command loads the facts the rule core needs, lets
//! `junheng_core` decide (pure), and persists the decision's state and effects in the caller's
//! unit of work; plus the read models the edge shows. Knows the store, never proto types.

pub mod acceptance;
pub mod admin;
pub mod awards;
pub mod campaign;
pub mod cases;
pub mod dashboard;
pub mod documents;
pub mod mentor;
pub mod notices;
pub mod pairing;
pub mod policy;
pub mod public;
pub mod schools;
pub mod seed;

use junheng_core::CampaignId;
use junheng_store::PgConnection;
use junheng_store::schools::{Filter, SchoolRow};

use crate::error::AppResult;
use crate::state::Loaded;

/// All schools of a campaign (a county is small; a province-sized campaign pages this).
pub async fn all_schools(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> AppResult<Vec<SchoolRow>> {
    Ok(junheng_store::schools::list(conn, campaign, &Filter::default(), "", i64::MAX).await?)
}

/// The clock, definition and phase board of a loaded campaign, as the rule core takes them.
pub fn ctx(camp: &Loaded, now: chrono::DateTime<chrono::Utc>) -> junheng_core::Ctx<'_> {
    junheng_core::Ctx {
        now,
        def: &camp.def,
        phases: &camp.phases,
    }
}
