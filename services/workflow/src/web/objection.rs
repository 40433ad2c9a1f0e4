//! The optional 公示 objection form (`[notice] online_objections`): on a running notice's
//! public page a reader files an objection with real name and contact, as the notice describes.
//! The form carries a double-submit CSRF token (as the sign-in form does), each address may
//! file [`PER_HOUR`] forms an hour, anonymous forms and forms after the period are refused
//! with the reason (the last day named), and the reply never echoes what was filed. It becomes
//! an objection through the same app call as gRPC's FileObjection (`app::public`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::layout::page;
use super::session::{cookie, random_hex, same, set_cookie};
use super::{Page, Web, WebResult, zh};
use crate::app::public::{self, OnlineObjection, Period, PublicNotice};
use crate::error::AppError;

/// Forms one address may send per hour.
pub const PER_HOUR: usize = 5;
const CSRF_COOKIE: &str = "jh_objection_csrf";

/// Recent form submissions per address (in memory: one service instance's view).
#[derive(Clone, Default)]
pub struct RateLimit(Arc<Mutex<HashMap<IpAddr, Vec<Instant>>>>);

impl RateLimit {
    fn allow(&self, ip: IpAddr) -> bool {
        let mut m = self.0.lock().expect("rate limit lock");
        let now = Instant::now();
        // Addresses whose last hour is empty are dropped, so the map stays as small as the
        // last hour's senders.
        m.retain(|_, v| {
            v.retain(|t| now.duration_since(*t) < Duration::from_secs(3600));
            !v.is_empty()
        });
        let v = m.entry(ip).or_default();
        if v.len() >= PER_HOUR {
            return false;
        }
        v.push(now);
        true
    }
}

pub fn routes() -> Router<Web> {
    Router::new().route("/campaigns/{code}/notices/{id}/objection", post(file))
}

/// Whether the notice page offers the form.
pub fn offered(n: &PublicNotice) -> bool {
    n.def.online_objections && matches!(n.period, Period::Open { .. })
}

/// The form, with its CSRF token (the same value goes into the cookie [`csrf_cookie`] sets).
pub fn form(n: &PublicNotice, csrf: &str) -> Markup {
    let action = format!(
        "/campaigns/{}/notices/{}/objection",
        n.campaign_code, n.row.id
    );
    html! {
        h2 { "在线提出异议" }
        form class="objection noprint" method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            p { label for="school" { "异议对象" } " "
                select id="school" name="school" required {
                    @for (id, name) in &n.schools { option value=(id) { (name) } }
                }
            }
            p { label for="name" { "真实姓名（必填）" } " " input id="name" name="name" type="text" required maxlength="100" autocomplete="name"; }
            p { label for="contact" { "联系方式（必填，电话或电子邮箱）" } " " input id="contact" name="contact" type="text" required maxlength="100"; }
            p { label for="grounds" { "异议事由及依据" } br; textarea id="grounds" name="grounds" rows="5" cols="60" required maxlength="5000" {} }
            p { label for="evidence" { "证据材料（名称、来源或可供核实的方式）" } br; textarea id="evidence" name="evidence" rows="2" cols="60" required maxlength="1000" {} }
            p { "截止时间：" (zh::date(n.row.last_day)) "。匿名异议不予受理；所填个人信息仅用于核实，不予公开。" }
            p { button type="submit" { "提交异议" } }
        }
    }
}

pub fn csrf_cookie(web: &Web, code: &str, id: Uuid) -> (String, HeaderValue) {
    let csrf = random_hex();
    let path = format!("/campaigns/{code}/notices/{id}/objection");
    let v = set_cookie(web, CSRF_COOKIE, &csrf, &path, 3600);
    (csrf, v)
}

#[derive(Deserialize)]
pub struct Form {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    school: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    grounds: String,
    #[serde(default)]
    evidence: String,
}

/// The filer as the audit names it: a digest of the form's random key (its CSRF value), so a
/// form's retries share one name and nothing about the reader's address is recorded.
fn filer(form_key: &str) -> String {
    hex::encode(&Sha256::digest(form_key.as_bytes())[..8])
}

/// The same limits as gRPC's FileObjection, worded for a reader: (field, label, at most).
const FIELDS: [(&str, &str, usize); 4] = [
    ("name", "真实姓名", 100),
    ("contact", "联系方式", 100),
    ("grounds", "异议事由", 5000),
    ("evidence", "证据材料", 1000),
];

async fn file(
    State(web): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((code, id)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<Form>,
) -> WebResult<Response> {
    let id = id
        .parse::<junheng_core::NoticeId>()
        .map_err(|_| AppError::NotFound(format!("no notice `{id}`")))?;
    let n = public::notice(&web.app, &code, id).await?;
    if !n.def.online_objections {
        return Err(AppError::NotFound("online objections are off".into()).into());
    }
    let expected = cookie(&headers, CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&expected, &f.csrf) {
        return Ok(Page::error(
            StatusCode::FORBIDDEN,
            "异议表单已失效，请重新打开公示页面后提交。",
        ));
    }
    if matches!(n.period, Period::Ended) {
        return Ok(Page::error(
            StatusCode::CONFLICT,
            &format!(
                "本公示的公示期已于{}结束，不再受理异议。",
                zh::date(n.row.last_day)
            ),
        ));
    }
    let values = [&f.name, &f.contact, &f.grounds, &f.evidence];
    let mut missing = vec![];
    let mut wrong = vec![];
    for ((field, label, max), value) in FIELDS.iter().zip(values) {
        let v = value.trim();
        if v.is_empty() {
            missing.push(format!("{field}：请填写{label}"));
        } else if v.chars().count() > *max {
            wrong.push(format!("{field}：{label}不超过{max}字"));
        } else if v
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            wrong.push(format!("{field}：{label}含有不可见的控制字符"));
        }
    }
    if !missing.is_empty() {
        return Ok(Page::error(
            StatusCode::BAD_REQUEST,
            &format!("匿名异议不予受理。{}。", missing.join("；")),
        ));
    }
    if !wrong.is_empty() {
        return Ok(Page::error(
            StatusCode::BAD_REQUEST,
            &format!("请修改后重新提交：{}。", wrong.join("；")),
        ));
    }
    // Only a form that would be filed counts against the address's hourly allowance.
    if !web.objections.allow(peer.ip()) {
        return Ok((
            [(header::RETRY_AFTER, "3600")],
            Page::error(
                StatusCode::TOO_MANY_REQUESTS,
                "提交过于频繁，请一小时后再试，或按公示所列方式书面反映。",
            ),
        )
            .into_response());
    }
    let school = f
        .school
        .parse::<junheng_core::SchoolId>()
        .ok()
        .filter(|s| n.schools.iter().any(|(id, _)| id == s))
        .ok_or_else(|| AppError::invalid("school", "请选择公示名单中的学校"))?;
    let filed = public::file_online_objection(
        &web.app,
        &code,
        id,
        &filer(&f.csrf),
        OnlineObjection {
            school,
            name: f.name.trim().to_string(),
            contact: f.contact.trim().to_string(),
            grounds: f.grounds.trim().to_string(),
            evidence: f.evidence.trim().to_string(),
            form_key: f.csrf.clone(),
        },
    )
    .await;
    match filed {
        Ok(()) => {}
        Err(AppError::FailedPrecondition(m)) => {
            tracing::info!(reason = %m, "online objection refused");
            return Ok(Page::error(
                StatusCode::CONFLICT,
                "根据公示规则，该异议不予受理（例如公示期已结束，或同一联系方式对本公示提出的异议已达上限）。",
            ));
        }
        Err(AppError::AlreadyExists(_)) => {
            return Ok(Page::error(
                StatusCode::CONFLICT,
                "此表单已提交过。如需另提异议，请重新打开公示页面填写新的表单。",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let back = format!("/campaigns/{code}/notices/{id}");
    let body = html! {
        h1 { "异议已收到" }
        p { "您对《" (n.heading()) "》提出的异议已收到，" (n.def.publication.office) "将在核实后依规处理。" }
        p { a href=(back) { "返回公示" } }
    };
    Ok((StatusCode::OK, page("异议已收到", None, body)).into_response())
}
