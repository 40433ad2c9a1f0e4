//! The leadership dashboard (office and leader sessions): phase progress with deadlines,
//! schools by state per town and level, what is late and whose it is, the score distribution
//! once published (inline SVG), award counts. The school list is filtered and paged on the
//! server; every table downloads as XLSX (`?download=…`, the bureau's own table writer).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use junheng_core::{PhaseStatus, Role};
use junheng_sheets::{Cell, Table};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::page;
use super::session::Session;
use super::{Web, WebResult, zh};
use crate::app::dashboard::{self, Dashboard};

pub const PAGE_SIZE: usize = 20;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/dashboard", get(index))
        .route("/campaigns/{code}/dashboard", get(show))
}

async fn index(State(web): State<Web>, session: Session) -> WebResult<Markup> {
    session.require(&dashboard::READERS, "read the dashboard")?;
    let list = dashboard::campaigns(&web.app, &session.call).await?;
    Ok(page(
        "领导看板",
        Some(&session.nav()),
        html! {
            h1 { "领导看板" }
            ul {
                @for (code, title) in &list {
                    li { a href={ "/campaigns/" (code) "/dashboard" } { (title) "创建活动" } }
                }
            }
            @if list.is_empty() { p { "您的账号下没有创建活动。" } }
        },
    ))
}

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    town: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    download: String,
}

fn level_label(code: &str) -> &'static str {
    crate::app::documents::level(code).label_zh()
}

fn role_label(r: Role) -> &'static str {
    match r {
        Role::Office => "督导室",
        Role::Department => "业务科室",
        Role::Panel => "评审专家",
        Role::School => "学校",
        Role::Leader => "局领导",
        Role::Scheduler => "系统",
    }
}

fn status_label(s: PhaseStatus) -> &'static str {
    match s {
        PhaseStatus::NotOpen => "未开始",
        PhaseStatus::Open => "进行中",
        PhaseStatus::Completed => "已完成",
    }
}

/// The dashboard's tables, as shown and as downloaded.
struct Tables {
    phases: Table,
    by_town: Table,
    late: Table,
    awards: Table,
    schools: Table,
}

fn tables(d: &Dashboard, f: &Filter) -> Tables {
    let tz = d.view.camp.def.tz();
    let mut phases = Table::new("阶段进度", &["阶段", "状态", "截止日期", "未完成事项"]);
    for p in &d.view.camp.phases.phases {
        phases.rows.push(vec![
            Cell::text(p.kind.label()),
            Cell::text(status_label(p.status)),
            Cell::text(zh::date(p.last_day)),
            Cell::Int(d.view.open_items(p.kind).len() as i64),
        ]);
    }
    let states: BTreeSet<_> = d.schools.iter().map(|s| s.state).collect();
    let mut headers = vec!["镇街", "学段"];
    headers.extend(states.iter().map(|s| s.label()));
    headers.push("合计");
    let mut by_town = Table::new("各镇街学校状态", &headers);
    let mut grid: BTreeMap<(String, String), HashMap<_, i64>> = BTreeMap::new();
    for s in &d.schools {
        *grid
            .entry((s.town.clone(), s.level.clone()))
            .or_default()
            .entry(s.state)
            .or_default() += 1;
    }
    for ((town, level), counts) in &grid {
        let mut row = vec![Cell::text(town), Cell::text(level_label(level))];
        row.extend(
            states
                .iter()
                .map(|s| Cell::Int(counts.get(s).copied().unwrap_or(0))),
        );
        row.push(Cell::Int(counts.values().sum()));
        by_town.rows.push(row);
    }
    let names: HashMap<_, _> = d.schools.iter().map(|s| (s.id, s.name.as_str())).collect();
    let mut late = Table::new("逾期事项", &["事项", "责任方", "学校", "应完成时间"]);
    for o in &d.late {
        let owner = match o.owner_school {
            Some(s) => names.get(&s).copied().unwrap_or("学校").to_string(),
            None => role_label(o.owner_role).to_string(),
        };
        late.rows.push(vec![
            Cell::text(&o.subject),
            Cell::text(owner),
            Cell::text(
                o.school_id
                    .and_then(|s| names.get(&s).copied())
                    .unwrap_or("—"),
            ),
            Cell::text(zh::instant(o.due_at, tz)),
        ]);
    }
    let mut awards = Table::new("表彰结果", &["类别", "学校数"]);
    for (c, n) in &d.awards {
        awards
            .rows
            .push(vec![Cell::text(c.label()), Cell::Int(*n as i64)]);
    }
    let mut schools = Table::new(
        "学校名单",
        &["学校代码", "学校名称", "学段", "所属镇街", "状态"],
    );
    for s in d.schools.iter().filter(|s| {
        (f.town.is_empty() || s.town == f.town)
            && (f.level.is_empty() || s.level == f.level)
            && (f.state.is_empty() || s.state.code() == f.state)
    }) {
        schools.rows.push(vec![
            Cell::text(&s.code),
            Cell::text(&s.name),
            Cell::text(level_label(&s.level)),
            Cell::text(&s.town),
            Cell::text(s.state.label()),
        ]);
    }
    Tables {
        phases,
        by_town,
        late,
        awards,
        schools,
    }
}

pub(super) fn table_html(t: &Table, id: &str, download: &str) -> Markup {
    html! {
        table id=(id) {
            caption { (t.title) " " a class="noprint" href=(download) { "下载 XLSX" } }
            thead { tr { @for h in &t.headers { th scope="col" { (h) } } } }
            tbody {
                @for r in &t.rows {
                    tr { @for c in r {
                        @match c {
                            Cell::Int(_) | Cell::Number(_) => td class="num" { (c.display()) },
                            _ => td { (c.display()) },
                        }
                    } }
                }
            }
        }
        @if t.rows.is_empty() { p { "（无）" } }
    }
}

/// Scores in bins of five points, as an inline SVG bar chart with its numbers in words.
fn histogram(scores: &[f64]) -> Markup {
    let lo = 50.0;
    let bins: Vec<(String, usize)> = (0..10)
        .map(|i| {
            let a = lo + 5.0 * i as f64;
            let n = scores
                .iter()
                .filter(|s| **s >= a && (**s < a + 5.0 || (i == 9 && **s <= 100.0)))
                .count();
            (format!("{a:.0}–{:.0}", a + 5.0), n)
        })
        .collect();
    let below = scores.iter().filter(|s| **s < lo).count();
    let max = bins.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let (w, h, bw) = (640.0, 260.0, 56.0);
    let desc = bins
        .iter()
        .filter(|b| b.1 > 0)
        .map(|(l, n)| format!("{l}分 {n}所"))
        .collect::<Vec<_>>()
        .join("，");
    let f = |x: f64| format!("{x:.1}");
    html! {
        figure {
            svg role="img" aria-labelledby="hist-title" width=(f(w)) height=(f(h)) viewBox={ "0 0 " (f(w)) " " (f(h)) } {
                title id="hist-title" { "综合得分分布：" (desc) }
                line x1="40" y1=(f(h - 40.0)) x2=(f(w - 10.0)) y2=(f(h - 40.0)) stroke="#111" stroke-width="1" {}
                @for (i, (label, n)) in bins.iter().enumerate() {
                    @let x = 45.0 + i as f64 * (bw + 4.0);
                    @let bh = (h - 80.0) * (*n as f64) / (max as f64);
                    rect x=(f(x)) y=(f(h - 40.0 - bh)) width=(f(bw)) height=(f(bh)) fill="#8b0000" {}
                    text x=(f(x + bw / 2.0)) y=(f(h - 44.0 - bh)) text-anchor="middle" font-size="16" fill="#111" { (n) }
                    text x=(f(x + bw / 2.0)) y=(f(h - 18.0)) text-anchor="middle" font-size="13" fill="#111" { (label) }
                }
            }
            figcaption { "综合得分分布（每5分一档，共" (scores.len()) "所" @if below > 0 { "，另有" (below) "所低于50分" } "）" }
        }
    }
}

pub(super) fn xlsx(t: &Table, name: &str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.xlsx\""),
            ),
        ],
        t.to_xlsx(),
    )
        .into_response()
}

async fn show(
    State(web): State<Web>,
    session: Session,
    Path(code): Path<String>,
    Query(f): Query<Filter>,
) -> WebResult<Response> {
    let id = dashboard::campaign_id(&web.app, &code).await?;
    let d = dashboard::dashboard(&web.app, &session.call, id).await?;
    let t = tables(&d, &f);
    let slug = format!("{code}-");
    match f.download.as_str() {
        "" => {}
        "phases" => return Ok(xlsx(&t.phases, &format!("{slug}phases"))),
        "by_town" => return Ok(xlsx(&t.by_town, &format!("{slug}schools-by-town"))),
        "late" => return Ok(xlsx(&t.late, &format!("{slug}late"))),
        "awards" => return Ok(xlsx(&t.awards, &format!("{slug}awards"))),
        "schools" => return Ok(xlsx(&t.schools, &format!("{slug}schools"))),
        other => {
            return Err(crate::error::AppError::invalid(
                "download",
                format!("`{other}` is not a table of this page"),
            )
            .into());
        }
    }
    let camp = &d.view.camp;
    let tz = camp.def.tz();
    let base = format!("/campaigns/{code}/dashboard");
    let q = |extra: &str| {
        let mut parts = vec![];
        for (k, v) in [("town", &f.town), ("level", &f.level), ("state", &f.state)] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        if !extra.is_empty() {
            parts.push(extra.to_string());
        }
        format!("{base}?{}", parts.join("&"))
    };
    let total = t.schools.rows.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let pg = f.page.unwrap_or(1).clamp(1, pages);
    let mut shown = t.schools.clone();
    shown.rows = t
        .schools
        .rows
        .iter()
        .skip((pg - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .cloned()
        .collect();
    let towns: BTreeSet<_> = d.schools.iter().map(|s| s.town.clone()).collect();
    let states: BTreeSet<_> = d.schools.iter().map(|s| s.state).collect();
    let title = format!(
        "{}{}年{} 领导看板",
        camp.def.county, camp.def.year, camp.def.publication.title
    );
    let scores: Option<Vec<f64>> = d.scores.as_ref().map(|s| s.iter().map(|x| x.1).collect());
    // The last summaries sent: the scheduler's, asked as the signed-in person.
    let summaries = super::desk::recent(&web, &session, id, "phase_summary", 5).await;
    let body = html! {
        h1 { (title) }
        p { "数据时间：" (zh::instant(d.now, tz)) "。学校" (d.schools.len()) "所；未完成事项" (d.open_obligations) "项，其中逾期" strong class="warn" { (d.late.len()) } "项。" }
        h2 { "阶段进度" }
        (table_html(&t.phases, "phases", &q("download=phases")))
        h2 { "各镇街、学段学校状态" }
        (table_html(&t.by_town, "by-town", &q("download=by_town")))
        h2 { "逾期事项（责任方）" }
        (table_html(&t.late, "late", &q("download=late")))
        h2 { "验收成绩分布" }
        @if let Some(v) = scores.as_ref().filter(|v| !v.is_empty()) {
            (histogram(v))
        } @else {
            p { "验收成绩公示发布后显示。" }
        }
        h2 { "表彰结果" }
        (table_html(&t.awards, "awards", &q("download=awards")))
        h2 { "最近发送的阶段小结" }
        @match &summaries {
            Ok(list) if list.is_empty() => p { "尚未发送阶段小结。" },
            Ok(list) => table id="summaries" {
                thead { tr { th scope="col" { "标题" } th scope="col" { "接收方" } th scope="col" { "状态" } th scope="col" { "送达时间" } } }
                tbody { @for m in list { tr {
                    td { (m.title) }
                    td { (m.recipient) }
                    td { (super::desk::status_label(&m.status)) }
                    td { (super::desk::when(&m.sent_at)) }
                } } }
            },
            Err(why) => p { (why) },
        }
        h2 { "学校名单" }
        form class="filters noprint" method="get" action=(base) {
            label { "镇街 " select name="town" {
                option value="" { "全部" }
                @for town in &towns { option value=(town) selected[*town == f.town] { (town) } }
            } }
            label { "学段 " select name="level" {
                option value="" { "全部" }
                @for l in ["primary", "junior", "nine_year"] { option value=(l) selected[l == f.level] { (level_label(l)) } }
            } }
            label { "状态 " select name="state" {
                option value="" { "全部" }
                @for s in &states { option value=(s.code()) selected[s.code() == f.state] { (s.label()) } }
            } }
            button type="submit" { "筛选" }
        }
        p { "共" (total) "所，第" (pg) "/" (pages) "页。" }
        (table_html(&shown, "schools", &q("download=schools")))
        p class="pager" {
            @if pg > 1 { a href=(q(&format!("page={}", pg - 1))) { "上一页" } }
            @if pg < pages { a href=(q(&format!("page={}", pg + 1))) { "下一页" } }
        }
    };
    Ok(page(&title, Some(&session.nav()), body).into_response())
}

pub(super) fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
