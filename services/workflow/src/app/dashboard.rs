//! The leadership dashboard's read model (read-only): the campaign view, its schools, what is
//! late and whose it is, the score distribution once the results notice is out, and the award
//! counts. Each part asks `policy::read` for the RPC that reads the same data over gRPC and
//! passes what it loads through the same projections, so the dashboard shows exactly what the
//! API would show the same token.

use junheng_core::{CampaignId, SchoolId};
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use junheng_core::Role;
use junheng_core::awards::AwardClass;
use junheng_store::obligations::{ObligationRow, ObligationStatus};
use junheng_store::scores;

use junheng_store::schools::SchoolRow;

use super::campaign::{self, CampaignView};
use super::policy::{self, Rpc};
use crate::error::AppResult;
use crate::state::{AppState, Call};

pub struct Dashboard {
    pub view: CampaignView,
    pub schools: Vec<SchoolRow>,
    /// Open obligations past due, earliest first.
    pub late: Vec<ObligationRow>,
    pub open_obligations: usize,
    /// Final scores, once the results notice is published.
    pub scores: Option<Vec<(SchoolId, f64)>>,
    /// Confirmed awards by class, in the plan's order.
    pub awards: Vec<(AwardClass, usize)>,
    pub now: DateTime<Utc>,
}

/// The roles that see the dashboard.
pub const READERS: [Role; 2] = [Role::Office, Role::Leader];

pub async fn dashboard(
    state: &AppState,
    call: &Call,
    campaign: CampaignId,
) -> AppResult<Dashboard> {
    call.require(&READERS, "read the dashboard")?;
    policy::read(call, Rpc::GetCampaign, Some(campaign))?;
    let view = campaign::campaign(state, campaign).await?;
    let now = view.now;
    let see = policy::read(call, Rpc::ListSchools, Some(campaign))?;
    let mut conn = state.pool.acquire().await?;
    let schools = policy::schools(call, see, super::all_schools(&mut conn, campaign).await?);
    let see = policy::read(call, Rpc::ListObligations, Some(campaign))?;
    let open = policy::obligations(
        call,
        see,
        junheng_store::obligations::list(&mut conn, campaign, None, false).await?,
    );
    let open: Vec<_> = open
        .into_iter()
        .filter(|o| o.status == ObligationStatus::Open)
        .collect();
    let open_obligations = open.len();
    let mut late: Vec<_> = open.into_iter().filter(|o| o.due_at < now).collect();
    late.sort_by_key(|o| o.due_at);
    let see = policy::read(call, Rpc::GetResults, Some(campaign))?;
    let published = policy::results_published(&mut conn, campaign).await?;
    let scores = if published && policy::gate_results(call, see, published).is_ok() {
        let mut s: Vec<(SchoolId, f64)> = scores::results(&mut conn, campaign)
            .await?
            .into_iter()
            .filter_map(|(id, r, _)| Some((id, r?.final_score)))
            .collect();
        s.sort_by(|a, b| b.1.total_cmp(&a.1));
        Some(s)
    } else {
        None
    };
    policy::read(call, Rpc::ListAwards, Some(campaign))?;
    let listed =
        junheng_store::awards::list_awards(&mut conn, Some(campaign), None, None, None, None)
            .await?;
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &listed {
        *by.entry(a.class.as_str()).or_default() += 1;
    }
    let awards = AwardClass::ALL
        .into_iter()
        .map(|c| (c, by.get(c.code()).copied().unwrap_or(0)))
        .collect();
    Ok(Dashboard {
        view,
        schools,
        late,
        open_obligations,
        scores,
        awards,
        now,
    })
}

/// The campaigns a signed-in reader may open (its token's scope), as (code, title).
pub async fn campaigns(state: &AppState, call: &Call) -> AppResult<Vec<(String, String)>> {
    policy::read(call, Rpc::ListCampaigns, None)?;
    let mut conn = state.pool.acquire().await?;
    let mut out = Vec::new();
    for row in junheng_store::campaigns::list(&mut conn).await? {
        if call.scope.covers(row.id) {
            out.push((row.code.clone(), format!("{}{}年", row.county, row.year)));
        }
    }
    Ok(out)
}

/// A campaign's id by its code (codes, like ids, are public).
pub async fn campaign_id(state: &AppState, code: &str) -> AppResult<CampaignId> {
    let mut conn = state.pool.acquire().await?;
    junheng_store::campaigns::list(&mut conn)
        .await?
        .into_iter()
        .find(|c| c.code == code)
        .map(|c| c.campaign_id())
        .ok_or_else(|| crate::error::AppError::NotFound(format!("no campaign `{code}`")))
}

/// As [`campaigns`], by id (the desk's filter: the scheduler names campaigns by id).
pub async fn campaign_ids(state: &AppState, call: &Call) -> AppResult<Vec<(CampaignId, String)>> {
    policy::read(call, Rpc::ListCampaigns, None)?;
    let mut conn = state.pool.acquire().await?;
    Ok(junheng_store::campaigns::list(&mut conn)
        .await?
        .into_iter()
        .filter(|row| call.scope.covers(row.id))
        .map(|row| {
            (
                row.campaign_id(),
                format!("{}{}年{}", row.county, row.year, row.code),
            )
        })
        .collect())
}

/// One school's timeline for the office's desk: the campaign's schools (for choosing), and the
/// chosen school's audit events (notices, objections, pairing, scores…) as ListAuditEvents
/// shows them to the same token, oldest first.
pub struct SchoolTimeline {
    pub schools: Vec<SchoolRow>,
    pub events: Vec<junheng_store::audit::EventRow>,
}

pub async fn school_timeline(
    state: &AppState,
    call: &Call,
    campaign: CampaignId,
    school: Option<SchoolId>,
) -> AppResult<SchoolTimeline> {
    let see = policy::read(call, Rpc::ListSchools, Some(campaign))?;
    let mut conn = state.pool.acquire().await?;
    let schools = policy::schools(call, see, super::all_schools(&mut conn, campaign).await?);
    let Some(school) = school else {
        return Ok(SchoolTimeline {
            schools,
            events: vec![],
        });
    };
    if !schools.iter().any(|s| s.id == school) {
        return Err(crate::error::AppError::NotFound(format!(
            "no school `{school}` in this campaign"
        )));
    }
    let see = policy::read(call, Rpc::ListAuditEvents, Some(campaign))?;
    let published = policy::results_published(&mut conn, campaign).await?;
    drop(conn);
    let rows = campaign::audit_events(state, campaign, Some(school), 0, 10_000).await?;
    Ok(SchoolTimeline {
        schools,
        events: policy::events(call, see, published, rows),
    })
}
