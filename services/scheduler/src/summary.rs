//! The leadership summary sent when a phase completes: counts by school state (with a bar
//! chart in e-mail and a markdown table in chat), the schools in each state, score statistics,
//! what was late and the next deadlines.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use junheng_core::text::deadline_zh;
use junheng_core::{CampaignDefinition, CaseState, PhaseBoard, PhaseKind, PhaseStatus};
use junheng_store::{PgConnection, StoreError, summaries};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::chart;
use crate::outbox::StoredAttachment;
use crate::schedule::days_overdue;

pub const CHART_CID: &str = "phase-summary-counts";

pub struct Summary {
    pub ctx: Value,
    pub chart_png: Vec<u8>,
    /// (label, count) in chart order, for the HTML legend.
    pub legend: Vec<(String, u64)>,
}

impl Summary {
    pub fn attachment(&self) -> StoredAttachment {
        StoredAttachment::new("counts.png", "image/png", &self.chart_png, Some(CHART_CID))
    }

    /// Embeds the chart and its colour legend into the rendered e-mail HTML.
    pub fn embed_chart(&self, html: String) -> String {
        let legend: String = self
            .legend
            .iter()
            .enumerate()
            .map(|(i, (label, n))| format!("<span style=\"display:inline-block;margin-right:12px\"><span style=\"display:inline-block;width:10px;height:10px;background:{}\"></span> {} {}</span>", chart::css_colour(i), escape(label), n))
            .collect();
        let block = format!(
            "<p><img src=\"cid:{CHART_CID}\" alt=\"各状态学校数\" width=\"480\" height=\"240\"></p><p>{legend}</p>\n"
        );
        match html.find("<p style=\"color:#888") {
            Some(pos) => format!("{}{block}{}", &html[..pos], &html[pos..]),
            None => html.replacen("</body>", &format!("{block}</body>"), 1),
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Gathers the facts for the summary of `phase` as of `now`.
pub async fn build(
    conn: &mut PgConnection,
    campaign_id: Uuid,
    phases: &Value,
    def: &CampaignDefinition,
    phase: &str,
    now: DateTime<Utc>,
) -> Result<Summary, StoreError> {
    let tz: Tz = def.tz();
    let schools = summaries::school_states(conn, campaign_id).await?;
    let mut states: Vec<(CaseState, Vec<String>)> = Vec::new();
    for s in &schools {
        match states.iter_mut().find(|(st, _)| *st == s.state) {
            Some((_, names)) => names.push(s.name.clone()),
            None => states.push((s.state, vec![s.name.clone()])),
        }
    }
    // Order by the state machine's order, so the chart reads the same every time.
    let order = |state: CaseState| {
        CaseState::ALL
            .iter()
            .position(|s| *s == state)
            .unwrap_or(usize::MAX)
    };
    states.sort_by_key(|(st, _)| order(*st));
    let counts: Vec<Value> = states
        .iter()
        .map(|(st, names)| json!({"state": st.label(), "count": names.len()}))
        .collect();
    let lists: Vec<Value> = states
        .iter()
        .map(|(st, names)| {
            let mut items: Vec<String> = names.iter().take(50).cloned().collect();
            if names.len() > 50 {
                items.push(format!("等 {} 所", names.len()));
            }
            json!({"name": format!("{}名单", st.label()), "items": items})
        })
        .collect();

    let late_rows = summaries::late_items(conn, campaign_id, now).await?;
    let late: Vec<Value> = late_rows
        .iter()
        .map(|r| {
            let until = r.closed_at.unwrap_or(now);
            json!({"school": r.school.clone().unwrap_or_else(|| "督导室".into()), "subject": r.subject, "days_late": days_overdue(r.due_at, until, tz)})
        })
        .collect();

    let mut next: Vec<(DateTime<Utc>, String)> = Vec::new();
    if let Ok(board) = serde_json::from_value::<PhaseBoard>(phases.clone()) {
        for p in &board.phases {
            if p.status != PhaseStatus::Completed {
                next.push((
                    def.deadline_after(p.last_day),
                    format!("{}阶段截止", p.kind.label()),
                ));
            }
        }
    }
    next.extend(summaries::next_deadlines(conn, campaign_id, now).await?);
    next.retain(|(t, _)| *t > now);
    next.sort();
    next.truncate(6);
    let next_deadlines: Vec<Value> = next
        .iter()
        .map(|(t, s)| json!({"subject": s, "due": deadline_zh(*t, tz)}))
        .collect();

    let phase_label = PhaseKind::from_code(phase)
        .map(|p| p.label())
        .unwrap_or(phase);
    let scores = score_statistics(conn, campaign_id).await?;
    let ctx = json!({
        "campaign": format!("{}{}年义务教育优质均衡提升行动", def.county, def.year),
        "phase": phase_label,
        "counts": counts,
        "lists": lists,
        "scores": scores,
        "late": late,
        "next_deadlines": next_deadlines,
    });
    let values: Vec<u64> = states.iter().map(|(_, n)| n.len() as u64).collect();
    let chart_png = chart::bar_chart_png(&values, 480, 240)
        .map_err(|e| StoreError::Corrupt(format!("chart: {e}")))?;
    let legend = states
        .iter()
        .map(|(st, n)| (st.label().to_owned(), n.len() as u64))
        .collect();
    Ok(Summary {
        ctx,
        chart_png,
        legend,
    })
}

/// A score shown to two decimals, without trailing zeros ("86.5", "60").
fn score_text(x: f64) -> String {
    ((x * 100.0).round() / 100.0).to_string()
}

/// One line of statistics (count, mean, min, max) per phase where scores exist: the pairing
/// phase's baselines (each school's mean over the indicators) and the acceptance results
/// (each school's final score). Phases without scores have no line.
pub fn statistics(rows: &[(&str, Vec<f64>)]) -> Vec<Value> {
    rows.iter()
        .filter(|(_, xs)| !xs.is_empty())
        .map(|(name, xs)| {
            let n = xs.len();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            json!({"name": name, "count": n, "mean": score_text(mean),
                   "min": score_text(min), "max": score_text(max)})
        })
        .collect()
}

async fn score_statistics(
    conn: &mut PgConnection,
    campaign_id: Uuid,
) -> Result<Vec<Value>, StoreError> {
    let baselines = summaries::baseline_means(conn, campaign_id).await?;
    let finals = summaries::final_scores(conn, campaign_id).await?;
    Ok(statistics(&[
        ("结对帮扶阶段基线分", baselines),
        ("验收评估阶段综合得分", finals),
    ]))
}
