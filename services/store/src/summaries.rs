//! What the scheduler's phase summary for leadership reads of the workflow's tables: the
//! schools by state, what was late, the next deadlines and the score statistics' inputs
//! (baseline means, final scores). Read-only; the summary itself is built by the scheduler.

use chrono::{DateTime, Utc};
use junheng_core::school::CaseState;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Result, decode};

/// A school's name and case state.
#[derive(Debug, Clone)]
pub struct SchoolState {
    pub name: String,
    pub state: CaseState,
}

/// Every school of a campaign with its state, in school-code order.
pub async fn school_states(conn: &mut PgConnection, campaign: Uuid) -> Result<Vec<SchoolState>> {
    sqlx::query!(
        "SELECT name, state FROM schools WHERE campaign_id = $1 ORDER BY code",
        campaign
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| {
        Ok(SchoolState {
            state: decode("schools.state", &r.state, CaseState::from_code)?,
            name: r.name,
        })
    })
    .collect()
}

/// An obligation done after its deadline, or open past it.
#[derive(Debug, Clone)]
pub struct LateItem {
    /// The school it concerns; `None` for the office's own items.
    pub school: Option<String>,
    pub subject: String,
    pub due_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// The first 100 obligations that were or are late at `now`, by deadline. Closing a notice is
/// never late (a notice can only be closed once it has ended).
pub async fn late_items(
    conn: &mut PgConnection,
    campaign: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<LateItem>> {
    Ok(sqlx::query_as!(
        LateItem,
        r#"SELECT s.name AS "school?", o.subject, o.due_at, o.closed_at
           FROM obligations o LEFT JOIN schools s ON s.id = o.school_id
           WHERE o.campaign_id = $1 AND ((o.status = 'done' AND o.closed_at > o.due_at) OR (o.status = 'open' AND o.due_at < $2))
             -- A notice can only be closed once it has ended: closing it is never "late".
             AND NOT (o.kind = 'close_notice' AND o.status = 'done')
           ORDER BY o.due_at, o.id LIMIT 100"#,
        campaign,
        now
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// The five soonest open deadlines after `now`, one per subject: (deadline, subject).
pub async fn next_deadlines(
    conn: &mut PgConnection,
    campaign: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, String)>> {
    Ok(sqlx::query!(
        r#"SELECT subject, min(due_at) AS "due!" FROM obligations
           WHERE campaign_id = $1 AND status = 'open' AND due_at > $2 GROUP BY subject ORDER BY 2 LIMIT 5"#,
        campaign,
        now
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.due, r.subject))
    .collect())
}

/// Each school's mean over its recorded baseline indicators.
pub async fn baseline_means(conn: &mut PgConnection, campaign: Uuid) -> Result<Vec<f64>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT avg(v.value::double precision) AS "mean!"
           FROM baselines b, jsonb_each_text(b.scores) v
           WHERE b.campaign_id = $1 GROUP BY b.school_id"#,
        campaign
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Each school's final acceptance score, where its result has one.
pub async fn final_scores(conn: &mut PgConnection, campaign: Uuid) -> Result<Vec<f64>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT (result->>'final_score')::double precision AS "final!"
           FROM results WHERE campaign_id = $1 AND result ? 'final_score'"#,
        campaign
    )
    .fetch_all(&mut *conn)
    .await?)
}
