//! The office's delivery desk (office sessions only): deliveries filtered on the server, one
//! delivery with its attempts and the vendor's replies, dead letters resent singly or in bulk
//! (a confirmation page with the count, then a POST with the session's CSRF token and an
//! idempotency key), disabled endpoints with their reason and a re-enable action, and the
//! messages coming up.
//!
//! Deliveries are the scheduler's: every call goes to its `SchedulerService` over gRPC with
//! the signed-in person's own token (opened from the session, see `seal`), so the scheduler's
//! authentication, policy and audit apply exactly as to any gRPC caller.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use junheng_core::Role;
use junheng_proto::v1 as pb;
use junheng_proto::v1::scheduler_service_client::SchedulerServiceClient;
use junheng_sheets::{Cell, Table};
use maud::{Markup, html};
use serde::Deserialize;
use tonic::transport::Channel;

use super::dashboard::{table_html, urlencode, xlsx};
use super::layout::page;
use super::session::Session;
use super::{Page, SchedulerClient, Web};

pub const PAGE_SIZE: usize = 50;
/// The most deliveries one filtered view reads from the scheduler.
const MAX_ROWS: usize = 5000;
/// Bulk resend takes at most this many dead letters at once.
const MAX_BULK: usize = 1000;
const OFFICE: [Role; 1] = [Role::Office];

/// The scheduler's gRPC, connected lazily (the pages start when the scheduler is not up yet).
#[derive(Clone)]
pub struct Scheduler {
    channel: Channel,
}

impl Scheduler {
    pub fn connect(c: &SchedulerClient) -> anyhow::Result<Self> {
        let mut endpoint = tonic::transport::Endpoint::from_shared(c.url.clone())
            .map_err(|e| anyhow::anyhow!("--scheduler-url `{}`: {e}", c.url))?;
        if c.tls.enabled() {
            endpoint = endpoint.tls_config(c.tls.config()?)?;
        }
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15))
            .connect_lazy();
        Ok(Scheduler { channel })
    }

    fn client(&self) -> SchedulerServiceClient<Channel> {
        SchedulerServiceClient::new(self.channel.clone())
    }
}

/// Why a desk page cannot be shown.
pub enum DeskError {
    Page(super::WebError),
    NotConfigured,
    SignInAgain,
    Scheduler(tonic::Status),
}

impl From<super::WebError> for DeskError {
    fn from(e: super::WebError) -> Self {
        DeskError::Page(e)
    }
}

impl From<crate::error::AppError> for DeskError {
    fn from(e: crate::error::AppError) -> Self {
        DeskError::Page(e.into())
    }
}

impl From<tonic::Status> for DeskError {
    fn from(s: tonic::Status) -> Self {
        DeskError::Scheduler(s)
    }
}

impl IntoResponse for DeskError {
    fn into_response(self) -> Response {
        use tonic::Code;
        match self {
            DeskError::Page(e) => e.into_response(),
            DeskError::NotConfigured => Page::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "投递台未配置：本服务未设置消息调度服务地址（--scheduler-url）。",
            ),
            DeskError::SignInAgain => Page::error(
                StatusCode::FORBIDDEN,
                "本次登录早于投递台启用，请退出后重新登录。",
            ),
            DeskError::Scheduler(s) => match s.code() {
                Code::Unauthenticated => Redirect::to("/login").into_response(),
                Code::PermissionDenied => {
                    Page::error(StatusCode::FORBIDDEN, "您的账号无权进行此项操作。")
                }
                Code::NotFound => Page::error(StatusCode::NOT_FOUND, "没有这条消息或这个通道。"),
                Code::InvalidArgument => Page::error(
                    StatusCode::BAD_REQUEST,
                    &format!("请求有误：{}", s.message()),
                ),
                _ => {
                    tracing::warn!(code = ?s.code(), message = %s.message(), "scheduler call failed");
                    Page::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "消息调度服务暂时无法访问，请稍后再试。",
                    )
                }
            },
        }
    }
}

type DeskResult<T> = Result<T, DeskError>;

/// A request to the scheduler as the signed-in person.
fn req<T>(session: &Session, msg: T) -> DeskResult<tonic::Request<T>> {
    let token = session.token().ok_or(DeskError::SignInAgain)?;
    let mut r = tonic::Request::new(msg);
    let v = format!("Bearer {token}")
        .parse()
        .map_err(|_| DeskError::SignInAgain)?;
    r.metadata_mut().insert("authorization", v);
    if let Ok(v) = session.call.request_id.parse() {
        r.metadata_mut().insert("x-request-id", v);
    }
    Ok(r)
}

/// The office session and the scheduler, or why not.
fn open<'a>(web: &'a Web, session: &Session, what: &str) -> DeskResult<&'a Scheduler> {
    session.require(&OFFICE, what)?;
    web.scheduler.as_ref().ok_or(DeskError::NotConfigured)
}

/// The last `n` messages of a kind for a campaign, newest first (the dashboard's "last
/// summaries sent"): none when the scheduler is not configured or the session predates it.
pub async fn recent(
    web: &Web,
    session: &Session,
    campaign: junheng_core::CampaignId,
    kind: &str,
    n: usize,
) -> Result<Vec<pb::Delivery>, String> {
    let Some(s) = web.scheduler.as_ref() else {
        return Err("消息调度服务未配置。".into());
    };
    let filter = pb::ListDeliveriesRequest {
        campaign_id: campaign.to_string(),
        kind: kind.into(),
        ..Default::default()
    };
    let mut rows = match list_all(s, session, filter).await {
        Ok(r) => r,
        Err(DeskError::SignInAgain) => return Err("请重新登录后查看。".into()),
        Err(DeskError::Scheduler(st)) if st.code() == tonic::Code::PermissionDenied => {
            return Err("您的账号无权查看。".into());
        }
        Err(_) => return Err("消息调度服务暂时无法访问。".into()),
    };
    rows.sort_by_key(|d| std::cmp::Reverse(d.created_at.as_ref().map(|t| t.seconds)));
    rows.truncate(n);
    Ok(rows)
}

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/desk", get(deliveries))
        .route("/desk/deliveries/{id}", get(delivery))
        .route("/desk/resend", get(resend_confirm).post(resend))
        .route("/desk/endpoints", get(endpoints))
        .route("/desk/endpoints/{name}/enable", post(enable))
        .route("/desk/upcoming", get(upcoming))
        .route("/desk/schools", get(timeline))
}

fn tz() -> chrono_tz::Tz {
    chrono_tz::Asia::Shanghai
}

fn at(t: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.as_ref()
        .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
}

pub(super) fn when(t: &Option<prost_types::Timestamp>) -> String {
    at(t)
        .map(|t| super::zh::instant(t, tz()))
        .unwrap_or_else(|| "—".into())
}

pub(super) fn status_label(s: &str) -> &str {
    match s {
        "pending" => "待发送",
        "held" => "暂缓",
        "sending" => "发送中",
        "sent" => "已送达",
        "dead" => "发送失败（死信）",
        "cancelled" => "已取消",
        "parked" => "通道停用待发",
        other => other,
    }
}

fn kind_label(s: &str) -> &str {
    match s {
        "reminder" => "到期提醒",
        "overdue" => "逾期通知",
        "notice_expiry" => "公示期满",
        "daily_digest" => "每日汇总",
        "phase_summary" => "阶段小结",
        other => other,
    }
}

const STATUSES: [&str; 7] = [
    "pending",
    "held",
    "sending",
    "sent",
    "dead",
    "cancelled",
    "parked",
];
const KINDS: [&str; 5] = [
    "reminder",
    "overdue",
    "notice_expiry",
    "daily_digest",
    "phase_summary",
];

/// The desk's filter: the scheduler filters by campaign, kind, status and recipient; the
/// channel (endpoint) and the date range are applied here, on the server, to what it returns.
#[derive(Deserialize, Default, Clone)]
pub struct Filter {
    #[serde(default)]
    campaign: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    recipient: String,
    /// yyyy-mm-dd, by creation day (Beijing time), inclusive.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    download: String,
}

impl Filter {
    fn query(&self, extra: &str) -> String {
        let mut parts = vec![];
        for (k, v) in [
            ("campaign", &self.campaign),
            ("kind", &self.kind),
            ("channel", &self.channel),
            ("status", &self.status),
            ("recipient", &self.recipient),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        if !extra.is_empty() {
            parts.push(extra.to_string());
        }
        parts.join("&")
    }

    fn dates(&self) -> DeskResult<(Option<NaiveDate>, Option<NaiveDate>)> {
        let parse = |field: &str, v: &str| -> DeskResult<Option<NaiveDate>> {
            if v.is_empty() {
                return Ok(None);
            }
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| {
                    crate::error::AppError::invalid(
                        field,
                        format!("`{v}` is not a date like 2020-04-06"),
                    )
                    .into()
                })
        };
        Ok((parse("from", &self.from)?, parse("to", &self.to)?))
    }
}

async fn list_all(
    s: &Scheduler,
    session: &Session,
    filter: pb::ListDeliveriesRequest,
) -> DeskResult<Vec<pb::Delivery>> {
    let mut out = vec![];
    let mut token = String::new();
    loop {
        let r = s
            .client()
            .list_deliveries(req(
                session,
                pb::ListDeliveriesRequest {
                    page_size: 1000,
                    page_token: token.clone(),
                    ..filter.clone()
                },
            )?)
            .await?
            .into_inner();
        out.extend(r.deliveries);
        if r.next_page_token.is_empty() || out.len() >= MAX_ROWS {
            break;
        }
        token = r.next_page_token;
    }
    out.truncate(MAX_ROWS);
    Ok(out)
}

/// The deliveries the filter selects.
async fn select(s: &Scheduler, session: &Session, f: &Filter) -> DeskResult<Vec<pb::Delivery>> {
    let (from, to) = f.dates()?;
    let rows = list_all(
        s,
        session,
        pb::ListDeliveriesRequest {
            campaign_id: f.campaign.trim().to_string(),
            status: f.status.clone(),
            kind: f.kind.clone(),
            recipient: f.recipient.trim().to_string(),
            ..Default::default()
        },
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter(|d| f.channel.is_empty() || d.endpoint == f.channel)
        .filter(|d| {
            let day = at(&d.created_at).map(|t| t.with_timezone(&tz()).date_naive());
            from.is_none_or(|from| day.is_some_and(|d| d >= from))
                && to.is_none_or(|to| day.is_some_and(|d| d <= to))
        })
        .collect())
}

fn deliveries_table(rows: &[pb::Delivery]) -> Table {
    let mut t = Table::new(
        "消息投递记录",
        &[
            "编号",
            "类别",
            "标题",
            "接收方",
            "通道",
            "状态",
            "尝试次数",
            "最近错误",
            "创建时间",
            "送达时间",
        ],
    );
    for d in rows {
        t.rows.push(vec![
            Cell::text(&d.id),
            Cell::text(kind_label(&d.kind)),
            Cell::text(&d.title),
            Cell::text(&d.recipient),
            Cell::text(&d.endpoint),
            Cell::text(status_label(&d.status)),
            Cell::Int(d.attempts as i64),
            Cell::text(if d.last_error.is_empty() {
                "—"
            } else {
                &d.last_error
            }),
            Cell::text(when(&d.created_at)),
            Cell::text(when(&d.sent_at)),
        ]);
    }
    t
}

fn desk_nav() -> Markup {
    html! {
        nav class="noprint" aria-label="投递台导航" {
            p {
                a href="/desk" { "消息投递" } " "
                a href="/desk?status=dead" { "发送失败" } " "
                a href="/desk/endpoints" { "通道状态" } " "
                a href="/desk/upcoming" { "待发消息" } " "
                a href="/desk/schools" { "学校时间线" }
            }
        }
    }
}

async fn deliveries(
    State(web): State<Web>,
    session: Session,
    Query(f): Query<Filter>,
) -> DeskResult<Response> {
    let s = open(&web, &session, "use the delivery desk")?;
    let rows = select(s, &session, &f).await?;
    let all = deliveries_table(&rows);
    match f.download.as_str() {
        "" => {}
        "deliveries" => return Ok(xlsx(&all, "deliveries")),
        other => {
            return Err(crate::error::AppError::invalid(
                "download",
                format!("`{other}` is not a table of this page"),
            )
            .into());
        }
    }
    let total = rows.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let pg = f.page.unwrap_or(1).clamp(1, pages);
    let shown: Vec<_> = rows
        .iter()
        .skip((pg - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    let dead = rows.iter().filter(|d| d.status == "dead").count();
    let campaigns = crate::app::dashboard::campaign_ids(&web.app, &session.call).await?;
    let mut channels: Vec<_> = rows.iter().map(|d| d.endpoint.clone()).collect();
    if !f.channel.is_empty() {
        channels.push(f.channel.clone());
    }
    channels.sort();
    channels.dedup();
    let body = html! {
        h1 { "消息投递台" }
        (desk_nav())
        form class="filters noprint" method="get" action="/desk" {
            label { "创建活动 " select name="campaign" {
                option value="" { "全部" }
                @for (id, title) in &campaigns {
                    option value=(id) selected[id.to_string() == f.campaign] { (title) }
                }
            } }
            label { "类别 " select name="kind" {
                option value="" { "全部" }
                @for k in KINDS { option value=(k) selected[k == f.kind] { (kind_label(k)) } }
            } }
            label { "通道 " select name="channel" {
                option value="" { "全部" }
                @for c in &channels { option value=(c) selected[*c == f.channel] { (c) } }
            } }
            label { "状态 " select name="status" {
                option value="" { "全部" }
                @for st in STATUSES { option value=(st) selected[st == f.status] { (status_label(st)) } }
            } }
            label { "接收方 " input type="text" name="recipient" value=(f.recipient) size="16"; }
            label { "起始日期 " input type="date" name="from" value=(f.from); }
            label { "截止日期 " input type="date" name="to" value=(f.to); }
            button type="submit" { "筛选" }
        }
        p { "共" (total) "条，其中发送失败" strong class="warn" { (dead) } "条；第" (pg) "/" (pages) "页。" }
        @if dead > 0 {
            p class="noprint" { a href={ "/desk/resend?" (Filter { status: "dead".into(), ..f.clone() }.query("")) } { "重新发送筛选结果中的全部失败消息（" (dead) "条）" } }
        }
        table id="deliveries" {
            caption { "消息投递记录 " a class="noprint" href={ "/desk?" (f.query("download=deliveries")) } { "下载 XLSX" } }
            thead { tr { @for h in &all.headers { th scope="col" { (h) } } } }
            tbody {
                @for d in &shown {
                    tr {
                        td { a href={ "/desk/deliveries/" (d.id) } { (d.id) } }
                        td { (kind_label(&d.kind)) }
                        td { (d.title) }
                        td { (d.recipient) }
                        td { (d.endpoint) }
                        td class=[(d.status == "dead").then_some("warn")] { (status_label(&d.status)) }
                        td class="num" { (d.attempts) }
                        td { @if d.last_error.is_empty() { "—" } @else { (d.last_error) } }
                        td { (when(&d.created_at)) }
                        td { (when(&d.sent_at)) }
                    }
                }
            }
        }
        @if shown.is_empty() { p { "（无）" } }
        p class="pager" {
            @if pg > 1 { a href={ "/desk?" (f.query(&format!("page={}", pg - 1))) } { "上一页" } }
            " "
            @if pg < pages { a href={ "/desk?" (f.query(&format!("page={}", pg + 1))) } { "下一页" } }
        }
    };
    Ok(page("消息投递台", Some(&session.nav()), body).into_response())
}

async fn delivery(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
) -> DeskResult<Response> {
    let s = open(&web, &session, "use the delivery desk")?;
    let d = s
        .client()
        .get_delivery(req(&session, pb::GetDeliveryRequest { id: id.clone() })?)
        .await?
        .into_inner();
    let m = d.delivery.unwrap_or_default();
    let body = html! {
        h1 { "消息详情" }
        (desk_nav())
        dl {
            dt { "编号" } dd { (m.id) }
            dt { "类别" } dd { (kind_label(&m.kind)) }
            dt { "标题" } dd { (m.title) }
            dt { "接收方" } dd { (m.recipient) }
            dt { "通道" } dd { (m.endpoint) }
            dt { "状态" } dd class=[(m.status == "dead").then_some("warn")] { (status_label(&m.status)) }
            dt { "最近错误" } dd { @if m.last_error.is_empty() { "—" } @else { (m.last_error) } }
            dt { "创建时间" } dd { (when(&m.created_at)) }
            dt { "送达时间" } dd { (when(&m.sent_at)) }
        }
        @if m.status == "dead" {
            form class="noprint" method="get" action="/desk/resend" {
                input type="hidden" name="id" value=(m.id);
                button type="submit" { "重新发送这条消息" }
            }
        }
        h2 { "发送尝试及服务商回复" }
        table id="attempts" {
            thead { tr {
                th scope="col" { "第几次" } th scope="col" { "发送进程" } th scope="col" { "开始" }
                th scope="col" { "结束" } th scope="col" { "结果" } th scope="col" { "服务商回复" }
            } }
            tbody {
                @for a in &d.attempts {
                    tr {
                        td class="num" { (a.attempt) }
                        td { (a.worker) }
                        td { (when(&a.started_at)) }
                        td { (when(&a.finished_at)) }
                        td { (a.outcome) }
                        td { @if a.detail.is_empty() { "—" } @else { (a.detail) } }
                    }
                }
            }
        }
        @if d.attempts.is_empty() { p { "尚未尝试发送。" } }
        h2 { "正文" }
        pre class="message" { (d.text) }
    };
    Ok(page("消息详情", Some(&session.nav()), body).into_response())
}

/// What the confirmation page asks about: one delivery (`id`), or the dead letters of a filter.
#[derive(Deserialize, Default)]
pub struct ResendQuery {
    #[serde(default)]
    id: String,
    #[serde(flatten)]
    filter: Filter,
}

async fn resend_confirm(
    State(web): State<Web>,
    session: Session,
    Query(q): Query<ResendQuery>,
) -> DeskResult<Response> {
    let s = open(&web, &session, "resend deliveries")?;
    let ids: Vec<String> = if q.id.is_empty() {
        let f = Filter {
            status: "dead".into(),
            ..q.filter.clone()
        };
        select(s, &session, &f)
            .await?
            .into_iter()
            .map(|d| d.id)
            .take(MAX_BULK)
            .collect()
    } else {
        vec![q.id.clone()]
    };
    let key = uuid::Uuid::new_v4().to_string();
    let body = html! {
        h1 { "确认重新发送" }
        @if ids.is_empty() {
            p { "没有需要重新发送的失败消息。" }
        } @else {
            p { "将重新发送 " strong id="resend-count" { (ids.len()) } " 条发送失败的消息。确认后各条消息按原编号重新排队发送，重复提交不会重复发送。" }
            form method="post" action="/desk/resend" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="idempotency_key" value=(key);
                input type="hidden" name="ids" value=(ids.join(","));
                p { button type="submit" { "确认重新发送 " (ids.len()) " 条" } " " a href="/desk?status=dead" { "取消" } }
            }
        }
    };
    Ok(page("确认重新发送", Some(&session.nav()), body).into_response())
}

#[derive(Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    ids: String,
}

async fn resend(
    State(web): State<Web>,
    session: Session,
    axum::Form(form): axum::Form<ResendForm>,
) -> DeskResult<Response> {
    session.check_csrf(&form.csrf)?;
    let s = open(&web, &session, "resend deliveries")?;
    if form.idempotency_key.trim().is_empty() {
        return Err(crate::error::AppError::invalid("idempotency_key", "is required").into());
    }
    let ids: Vec<&str> = form
        .ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(crate::error::AppError::invalid(
            "ids",
            format!("names 1 to {MAX_BULK} deliveries"),
        )
        .into());
    }
    let mut queued = 0usize;
    let mut failed: Vec<(String, String)> = vec![];
    for id in &ids {
        // One key per delivery, derived from the form's: the same form posted twice resends
        // nothing twice (the scheduler replays the first answer).
        let r = s
            .client()
            .resend_delivery(req(
                &session,
                pb::ResendDeliveryRequest {
                    idempotency_key: format!("{}:{id}", form.idempotency_key.trim()),
                    id: id.to_string(),
                },
            )?)
            .await;
        match r {
            Ok(_) => queued += 1,
            Err(st) => match st.code() {
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                    return Err(st.into());
                }
                tonic::Code::Unavailable => return Err(st.into()),
                _ => failed.push((id.to_string(), st.message().to_string())),
            },
        }
    }
    tracing::info!(actor.id = %session.call.actor.id, queued, failed = failed.len(), "desk resend");
    let body = html! {
        h1 { "重新发送结果" }
        (desk_nav())
        p role="status" { "已重新排队 " strong id="queued" { (queued) } " 条消息。" }
        @if !failed.is_empty() {
            p class="warn" { (failed.len()) " 条未能重新发送：" }
            ul { @for (id, why) in &failed { li { (id) "：" (why) } } }
        }
        p { a href="/desk" { "返回消息投递台" } }
    };
    Ok(page("重新发送结果", Some(&session.nav()), body).into_response())
}

async fn endpoints(State(web): State<Web>, session: Session) -> DeskResult<Response> {
    let s = open(&web, &session, "use the delivery desk")?;
    let list = s
        .client()
        .list_endpoints(req(&session, pb::ListEndpointsRequest {})?)
        .await?
        .into_inner()
        .endpoints;
    let disabled = list.iter().filter(|e| e.disabled).count();
    let body = html! {
        h1 { "通道状态" }
        (desk_nav())
        p { "共" (list.len()) "个通道，停用" strong class="warn" { (disabled) } "个。" }
        table id="endpoints" {
            thead { tr {
                th scope="col" { "通道" } th scope="col" { "类型" } th scope="col" { "状态" }
                th scope="col" { "停用时间" } th scope="col" { "停用原因" } th scope="col" { "待发消息" }
                th scope="col" { "操作" }
            } }
            tbody {
                @for e in &list {
                    tr {
                        td { (e.name) }
                        td { (e.kind) }
                        td class=[e.disabled.then_some("warn")] { @if e.disabled { "已停用" } @else { "正常" } }
                        td { @if e.disabled { (when(&e.disabled_at)) } @else { "—" } }
                        td {
                            @if e.disabled_reason.is_empty() { "—" } @else { (e.disabled_reason) }
                            @if !e.disabled_by_delivery.is_empty() {
                                " " a href={ "/desk/deliveries/" (e.disabled_by_delivery) } { "查看该条消息" }
                            }
                        }
                        td class="num" { (e.parked) }
                        td {
                            @if e.disabled {
                                form class="inline" method="post" action={ "/desk/endpoints/" (urlencode(&e.name)) "/enable" } {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    button type="submit" aria-label={ "重新启用通道 " (e.name) } { "重新启用" }
                                }
                            } @else { "—" }
                        }
                    }
                }
            }
        }
    };
    Ok(page("通道状态", Some(&session.nav()), body).into_response())
}

async fn enable(
    State(web): State<Web>,
    session: Session,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<super::session::CsrfForm>,
) -> DeskResult<Response> {
    session.check_csrf(&form.csrf)?;
    let s = open(&web, &session, "enable an endpoint")?;
    let r = s
        .client()
        .enable_endpoint(req(
            &session,
            pb::EnableEndpointRequest { name: name.clone() },
        )?)
        .await?
        .into_inner();
    let body = html! {
        h1 { "通道已重新启用" }
        (desk_nav())
        p role="status" { "通道 " strong { (name) } " 已重新启用，" (r.released) " 条待发消息重新排队。" }
        p { a href="/desk/endpoints" { "返回通道状态" } }
    };
    Ok(page("通道已重新启用", Some(&session.nav()), body).into_response())
}

#[derive(Deserialize, Default)]
pub struct UpcomingQuery {
    #[serde(default)]
    campaign: String,
    #[serde(default)]
    days: Option<i64>,
    #[serde(default)]
    download: String,
}

async fn upcoming(
    State(web): State<Web>,
    session: Session,
    Query(q): Query<UpcomingQuery>,
) -> DeskResult<Response> {
    let s = open(&web, &session, "use the delivery desk")?;
    let campaigns = crate::app::dashboard::campaign_ids(&web.app, &session.call).await?;
    let campaign = if q.campaign.is_empty() {
        campaigns
            .first()
            .map(|c| c.0.to_string())
            .unwrap_or_default()
    } else {
        q.campaign.clone()
    };
    let days = q.days.unwrap_or(14).clamp(1, 400);
    let mut conn = web
        .app
        .pool
        .acquire()
        .await
        .map_err(crate::error::AppError::from)?;
    let now = web.app.now(&mut conn).await?;
    drop(conn);
    let until = now + chrono::Duration::days(days);
    let list = s
        .client()
        .preview_upcoming(req(
            &session,
            pb::PreviewUpcomingRequest {
                campaign_id: campaign.clone(),
                until: Some(prost_types::Timestamp {
                    seconds: until.timestamp(),
                    nanos: 0,
                }),
            },
        )?)
        .await?
        .into_inner()
        .messages;
    let mut t = Table::new("待发消息", &["预计时间", "类别", "接收方", "通道", "标题"]);
    for m in &list {
        t.rows.push(vec![
            Cell::text(when(&m.at)),
            Cell::text(kind_label(&m.kind)),
            Cell::text(&m.recipient),
            Cell::text(&m.endpoint),
            Cell::text(&m.title),
        ]);
    }
    if q.download == "upcoming" {
        return Ok(xlsx(&t, "upcoming"));
    }
    let body = html! {
        h1 { "待发消息" }
        (desk_nav())
        form class="filters noprint" method="get" action="/desk/upcoming" {
            label { "创建活动 " select name="campaign" {
                @for (id, title) in &campaigns {
                    option value=(id) selected[id.to_string() == campaign] { (title) }
                }
            } }
            label { "未来天数 " input type="number" name="days" min="1" max="400" value=(days); }
            button type="submit" { "预览" }
        }
        p { "今后" (days) "天内预计发送" (list.len()) "条。" }
        (table_html(&t, "upcoming", &format!("/desk/upcoming?campaign={}&days={days}&download=upcoming", urlencode(&campaign))))
    };
    Ok(page("待发消息", Some(&session.nav()), body).into_response())
}

#[derive(Deserialize, Default)]
pub struct TimelineQuery {
    #[serde(default)]
    campaign: String,
    #[serde(default)]
    school: String,
    #[serde(default)]
    download: String,
}

/// One school's timeline: the workflow's events for it (notices, objections, pairing,
/// scores, as ListAuditEvents shows them) and the scheduler's messages to it, by time.
async fn timeline(
    State(web): State<Web>,
    session: Session,
    Query(q): Query<TimelineQuery>,
) -> DeskResult<Response> {
    let s = open(&web, &session, "use the delivery desk")?;
    let campaigns = crate::app::dashboard::campaign_ids(&web.app, &session.call).await?;
    let campaign = match q.campaign.as_str() {
        "" => campaigns.first().map(|c| c.0),
        c => Some(c.parse::<junheng_core::CampaignId>().map_err(|_| {
            crate::error::AppError::invalid("campaign", format!("`{c}` is not a campaign id"))
        })?),
    };
    let Some(campaign) = campaign else {
        let body = html! { h1 { "学校时间线" } (desk_nav()) p { "您的账号下没有创建活动。" } };
        return Ok(page("学校时间线", Some(&session.nav()), body).into_response());
    };
    let school = match q.school.as_str() {
        "" => None,
        x => Some(x.parse::<junheng_core::SchoolId>().map_err(|_| {
            crate::error::AppError::invalid("school", format!("`{x}` is not a school id"))
        })?),
    };
    let t =
        crate::app::dashboard::school_timeline(&web.app, &session.call, campaign, school).await?;
    let mut lines: Vec<(Option<DateTime<Utc>>, &str, String, String)> = t
        .events
        .iter()
        .map(|e| {
            (
                Some(e.occurred_at),
                "办理记录",
                e.action.clone(),
                e.reason.clone().unwrap_or_default(),
            )
        })
        .collect();
    let messages = match school {
        Some(id) => {
            list_all(
                s,
                &session,
                pb::ListDeliveriesRequest {
                    campaign_id: campaign.to_string(),
                    recipient: format!("school:{id}"),
                    ..Default::default()
                },
            )
            .await?
        }
        None => vec![],
    };
    for m in &messages {
        lines.push((
            at(&m.created_at),
            "消息",
            format!("{}：{}", kind_label(&m.kind), m.title),
            format!("{}（{}）", status_label(&m.status), m.endpoint),
        ));
    }
    lines.sort_by_key(|l| l.0);
    let mut table = Table::new("学校时间线", &["时间", "来源", "事项", "说明"]);
    for (when_, src, what, note) in &lines {
        table.rows.push(vec![
            Cell::text(
                when_
                    .map(|t| super::zh::instant(t, tz()))
                    .unwrap_or_default(),
            ),
            Cell::text(*src),
            Cell::text(what),
            Cell::text(note),
        ]);
    }
    if q.download == "timeline" {
        return Ok(xlsx(&table, "school-timeline"));
    }
    let name = school
        .and_then(|id| t.schools.iter().find(|x| x.id == id))
        .map(|x| x.name.clone());
    let body = html! {
        h1 { "学校时间线" @if let Some(n) = &name { "：" (n) } }
        (desk_nav())
        form class="filters noprint" method="get" action="/desk/schools" {
            label { "创建活动 " select name="campaign" {
                @for (id, title) in &campaigns { option value=(id) selected[*id == campaign] { (title) } }
            } }
            label { "学校 " select name="school" {
                option value="" { "请选择" }
                @for x in &t.schools { option value=(x.id) selected[Some(x.id) == school] { (x.code) " " (x.name) } }
            } }
            button type="submit" { "查看" }
        }
        @if school.is_some() {
            (table_html(&table, "timeline", &format!("/desk/schools?campaign={campaign}&school={}&download=timeline", q.school)))
        } @else {
            p { "请选择一所学校。" }
        }
    };
    Ok(page("学校时间线", Some(&session.nav()), body).into_response())
}
