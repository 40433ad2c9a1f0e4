//! The 公示栏: every campaign's published notices, each as a 公示 carries it, printable, and
//! its list as JSON and CSV. No login; reads only `app::public`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};

use super::layout::page;
use super::{Web, WebResult, zh};
use crate::app::public::{self, Period, PublicNotice};
use crate::error::AppError;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/", get(index))
        .route("/campaigns/{code}/notices", get(board))
        .route("/campaigns/{code}/notices/{file}", get(one))
}

async fn index(State(web): State<Web>) -> WebResult<Markup> {
    let campaigns = public::campaigns(&web.app).await?;
    Ok(page(
        "公示栏",
        None,
        html! {
            h1 { "公示栏" }
            p { "这里公布义务教育优质均衡系列示范校创建中的各项公示：种子校名单、验收成绩等。公示期内，任何单位和个人均可实名提出异议。" }
            @if campaigns.is_empty() {
                p { "暂无创建活动。" }
            } @else {
                table {
                    caption { "创建活动" }
                    thead { tr { th scope="col" { "活动" } th scope="col" { "县（市、区）" } th scope="col" class="num" { "公示" } } }
                    tbody {
                        @for c in &campaigns {
                            tr {
                                td { a href={ "/campaigns/" (c.code) "/notices" } { (c.county) (c.year) "年" (c.def.publication.title) } }
                                td { (c.county) }
                                td class="num" { (c.notices) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

fn period_text(n: &PublicNotice) -> Markup {
    match n.period {
        Period::Open { working_days_left } => html! {
            span class="status open" { "公示中，剩余" (working_days_left) "个工作日" }
        },
        Period::Ended => html! { span class="status ended" { "公示期已结束" } },
    }
}

async fn board(State(web): State<Web>, Path(code): Path<String>) -> WebResult<Markup> {
    let (camp, notices) = public::notices(&web.app, &code).await?;
    let current: Vec<_> = notices
        .iter()
        .filter(|n| n.period != Period::Ended)
        .collect();
    let past: Vec<_> = notices
        .iter()
        .filter(|n| n.period == Period::Ended)
        .collect();
    let list = |ns: &[&PublicNotice]| {
        html! {
            ul class="notices" {
                @for n in ns {
                    li {
                        a href={ "/campaigns/" (code) "/notices/" (n.row.id.to_string()) } { (n.heading()) }
                        br;
                        "发布日期：" (zh::date(n.published))
                        "；公示期：" (zh::date(n.published)) "至" (zh::date(n.row.last_day)) "。"
                        (period_text(n))
                    }
                }
            }
        }
    };
    let title = format!(
        "{}{}年{} 公示",
        camp.county, camp.year, camp.def.publication.title
    );
    Ok(page(
        &title,
        None,
        html! {
            h1 { (title) }
            p { "发布单位：" (camp.def.publication.issuing_unit) }
            h2 { "正在公示" }
            @if current.is_empty() { p { "当前没有正在公示的名单。" } } @else { (list(&current[..])) }
            h2 { "往期公示" }
            @if past.is_empty() { p { "暂无往期公示。" } } @else { (list(&past[..])) }
        },
    ))
}

enum Format {
    Html,
    Json,
    Csv,
}

fn parse_file(file: &str) -> Result<(junheng_core::NoticeId, Format), AppError> {
    let (id, fmt) = if let Some(id) = file.strip_suffix(".json") {
        (id, Format::Json)
    } else if let Some(id) = file.strip_suffix(".csv") {
        (id, Format::Csv)
    } else {
        (file, Format::Html)
    };
    let id = id
        .parse::<junheng_core::NoticeId>()
        .map_err(|_| AppError::NotFound(format!("no notice `{file}`")))?;
    Ok((id, fmt))
}

async fn one(
    State(web): State<Web>,
    Path((code, file)): Path<(String, String)>,
) -> WebResult<Response> {
    let (id, fmt) = parse_file(&file)?;
    let n = public::notice(&web.app, &code, id).await?;
    Ok(match fmt {
        Format::Html if super::objection::offered(&n) => {
            let (csrf, cookie) = super::objection::csrf_cookie(&web, &code, n.row.id);
            let mut res = notice_page(&n, Some(&csrf)).into_response();
            res.headers_mut().append(header::SET_COOKIE, cookie);
            res
        }
        Format::Html => notice_page(&n, None).into_response(),
        Format::Csv => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"notice-{}.csv\"", n.row.id),
                ),
            ],
            n.table.to_csv(),
        )
            .into_response(),
        Format::Json => axum::response::Json(notice_json(&n)).into_response(),
    })
}

/// The machine-readable copy: the same list, with the notice's dates.
fn notice_json(n: &PublicNotice) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = n
        .table
        .rows
        .iter()
        .map(|r| {
            let mut m = serde_json::Map::new();
            for (h, c) in n.table.headers.iter().zip(r) {
                let v = match c {
                    junheng_sheets::Cell::Int(i) => serde_json::json!(i),
                    junheng_sheets::Cell::Number(f) => serde_json::json!(f),
                    junheng_sheets::Cell::Text(s) => serde_json::json!(s),
                    junheng_sheets::Cell::Empty => serde_json::Value::Null,
                };
                m.insert(h.clone(), v);
            }
            serde_json::Value::Object(m)
        })
        .collect();
    serde_json::json!({
        "id": n.row.id,
        "campaign": n.campaign_code,
        "kind": n.row.kind.code(),
        "title": n.heading(),
        "issuing_unit": n.def.publication.issuing_unit,
        "index_number": n.index_number,
        "published": n.published.to_string(),
        "period_start": n.published.to_string(),
        "period_last_day": n.row.last_day.to_string(),
        "ended": n.period == Period::Ended,
        "outcome": n.outcome.map(|o| serde_json::json!({"upheld": o.upheld, "dismissed": o.dismissed, "open": o.open})),
        "headers": n.table.headers,
        "rows": rows,
    })
}

fn notice_page(n: &PublicNotice, form: Option<&str>) -> Markup {
    let p = &n.def.publication;
    let heading = n.heading();
    let deadline = zh::date(n.row.last_day);
    let base = format!("/campaigns/{}/notices/{}", n.campaign_code, n.row.id);
    page(
        &heading,
        None,
        html! {
            article class="notice" {
                p class="meta" {
                    @if !n.index_number.is_empty() { "索引号：" (n.index_number) br; }
                    "发布机构：" (p.issuing_unit) br;
                    "发布日期：" (zh::date(n.published))
                }
                h1 { (heading) }
                // The wording the notice exports carry too (core::text::notice).
                p { (junheng_core::text::notice::basis(&n.def, n.row.kind)) }
                p {
                    "公示期：" strong { (zh::date(n.published)) "至" (deadline) }
                    "（共" (n.def.notice_working_days) "个工作日）。" (period_text(n))
                }
                table {
                    caption { (n.row.title) }
                    thead { tr { @for h in &n.table.headers { th scope="col" { (h) } } } }
                    tbody {
                        @for r in &n.table.rows {
                            tr {
                                @for c in r {
                                    @match c {
                                        junheng_sheets::Cell::Int(_) | junheng_sheets::Cell::Number(_) => td class="num" { (c.display()) },
                                        _ => td { (c.display()) },
                                    }
                                }
                            }
                        }
                    }
                }
                @if n.table.rows.is_empty() { p { "（名单为空）" } }
                h2 { "异议方式" }
                p {
                    "公示期内，如对公示内容有异议，请以书面形式实名向" (p.office) "反映，写明真实姓名和联系方式，并提供必要的证据材料。"
                    "截止时间：" strong { (deadline) } "。匿名异议不予受理。"
                }
                ul {
                    @if !p.phone.is_empty() { li { "监督电话：" (p.phone) } }
                    @if !p.address.is_empty() { li { "通信地址：" (p.address) } }
                    @if !p.email.is_empty() { li { "电子邮箱：" a href={ "mailto:" (p.email) } { (p.email) } } }
                    @if p.phone.is_empty() && p.address.is_empty() && p.email.is_empty() { li { "请与" (p.office) "联系。" } }
                }
                @if let Some(csrf) = form { (super::objection::form(n, csrf)) }
                @if let Some(o) = n.outcome {
                    h2 { "公示结果" }
                    p {
                        "公示期内共收到异议" (o.upheld + o.dismissed + o.open) "件："
                        "经核实成立" (o.upheld) "件，不成立" (o.dismissed) "件"
                        @if o.open > 0 { "，正在核实" (o.open) "件" }
                        "。"
                    }
                }
                p class="sign" { (p.issuing_unit) br; (zh::date(n.published)) }
                p class="noprint" {
                    "下载名单："
                    a href={ (base) ".csv" } { "CSV 格式" } " "
                    a href={ (base) ".json" } { "JSON 格式" }
                    " · 打印本页即得公示文本。"
                }
            }
        },
    )
}
