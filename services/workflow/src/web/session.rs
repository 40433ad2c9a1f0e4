//! Sign-in for the pages: a token (as issued over gRPC) is exchanged for a session cookie —
//! HttpOnly, SameSite=Strict, `Secure` when the pages run behind TLS, expiring after
//! [`SESSION_HOURS`] on the service's clock (or with the token, if sooner). Only a digest of
//! the session id is stored (`web_sessions`, migration 0014); the token behind it is re-checked
//! on every request, so a revoked or expired token ends its sessions at once. Every form
//! carries a CSRF token: the sign-in form a double-submit cookie, every other form the
//! session's own token; a form without the right one is refused with 403. The token itself is
//! kept with the session only sealed under the session id (`seal`, migration 0017), for the
//! desk's calls to the scheduler as the signed-in person.

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Duration;
use junheng_core::{Actor, Role, Scope};
use junheng_store::{tokens, web_sessions};
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::layout::{Nav, page};
use super::{Page, Web, WebError};
use crate::error::AppError;
use crate::state::Call;

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 8;
pub const SESSION_COOKIE: &str = "jh_session";
const LOGIN_CSRF_COOKIE: &str = "jh_login_csrf";

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
}

pub(super) fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn digest(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// Equal without an early exit.
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub(super) fn set_cookie(
    web: &Web,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> HeaderValue {
    let secure = if web.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("cookie is ASCII")
}

/// A signed-in reader: the call its token makes, and the session's CSRF token.
pub struct Session {
    pub call: Call,
    pub csrf: String,
    pub name: String,
    id_digest: Vec<u8>,
    /// The signed-in person's own token, opened from the session row with the cookie's id
    /// (`seal`); none for a session from before it was kept.
    token: Option<String>,
}

impl Session {
    pub fn nav(&self) -> Nav {
        Nav {
            who: self.name.clone(),
            csrf: self.csrf.clone(),
            office: self.call.actor.role == Role::Office,
        }
    }

    /// A form's CSRF field must be this session's.
    pub fn check_csrf(&self, field: &str) -> Result<(), WebError> {
        if same(field, &self.csrf) {
            Ok(())
        } else {
            Err(WebError(AppError::PermissionDenied(
                "the form's CSRF token is missing or wrong".into(),
            )))
        }
    }

    /// The bearer token the desk presents to the scheduler, as this person.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Only these roles may see the page.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), WebError> {
        Ok(self.call.require(roles, what)?)
    }
}

impl FromRequestParts<Web> for Session {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        let unauth = || WebError(AppError::Unauthenticated("sign in first".into()));
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(unauth)?;
        let d = digest(&id);
        let mut conn = web.app.pool.acquire().await.map_err(AppError::from)?;
        let s = web_sessions::find(&mut conn, &d)
            .await
            .map_err(AppError::from)?
            .ok_or_else(unauth)?;
        let now = web.app.now(&mut conn).await?;
        if s.ended_at.is_some() || s.expires_at <= now {
            return Err(unauth());
        }
        let t = tokens::get(&mut conn, s.token_id)
            .await
            .map_err(AppError::from)?
            .filter(|t| t.live_at(now))
            .ok_or_else(unauth)?;
        let role = t.role;
        let call = Call {
            actor: Actor {
                id: t.actor.clone(),
                role,
                school: t.school_id.map(junheng_core::SchoolId::new),
            },
            scope: Scope::from_campaigns(t.campaigns.clone()),
            token_id: Some(t.id),
            request_id: uuid::Uuid::new_v4().to_string(),
        };
        Ok(Session {
            call,
            csrf: s.csrf,
            name: if t.name.is_empty() { t.actor } else { t.name },
            token: s
                .token_sealed
                .as_deref()
                .and_then(|sealed| super::seal::open(&id, &d, sealed)),
            id_digest: d,
        })
    }
}

fn login_page(web: &Web, status: StatusCode, message: Option<&str>) -> Response {
    let csrf = random_hex();
    let body = html! {
        h1 { "工作人员登录" }
        p { "县教体局领导和督导室工作人员请输入系统发放的访问令牌登录。公示内容无需登录即可查看。" }
        @if let Some(m) = message { p class="warn" role="alert" { (m) } }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            p {
                label for="token" { "访问令牌" }
                input id="token" name="token" type="password" autocomplete="off" required size="40";
            }
            p { button type="submit" { "登录" } }
        }
    };
    let mut res = (status, page("工作人员登录", None, body)).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(web, LOGIN_CSRF_COOKIE, &csrf, "/login", 3600),
    );
    res
}

async fn login_form(State(web): State<Web>) -> Response {
    login_page(&web, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

async fn login(
    State(web): State<Web>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, WebError> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&expected, &form.csrf) {
        return Ok(Page::error(
            StatusCode::FORBIDDEN,
            "登录表单已失效，请重新打开登录页面。",
        ));
    }
    let mut md = tonic::metadata::MetadataMap::new();
    let Ok(v) = format!("Bearer {}", form.token.trim()).parse() else {
        return Ok(login_page(
            &web,
            StatusCode::UNAUTHORIZED,
            Some("令牌无效。"),
        ));
    };
    md.insert("authorization", v);
    let auth = match web.app.authenticate(&md).await {
        Ok(a) => a,
        Err(AppError::Unauthenticated(_)) | Err(AppError::Invalid(_)) => {
            return Ok(login_page(
                &web,
                StatusCode::UNAUTHORIZED,
                Some("令牌无效、已过期或已被吊销。"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let mut conn = web.app.pool.acquire().await.map_err(AppError::from)?;
    let now = web.app.now(&mut conn).await?;
    let token = tokens::get(&mut conn, auth.token_id)
        .await
        .map_err(AppError::from)?;
    let mut expires = now + Duration::hours(SESSION_HOURS);
    if let Some(e) = token.and_then(|t| t.expires_at) {
        expires = expires.min(e);
    }
    let id = random_hex();
    let id_digest = digest(&id);
    let sealed = super::seal::seal(&id, &id_digest, form.token.trim());
    web_sessions::insert(
        &mut conn,
        &id_digest,
        auth.token_id,
        &random_hex(),
        now,
        expires,
        Some(&sealed),
    )
    .await
    .map_err(AppError::from)?;
    tracing::info!(actor.id = %auth.actor.id, actor.role = %auth.actor.role, "signed in to the pages");
    let mut res = Redirect::to("/dashboard").into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            &web,
            SESSION_COOKIE,
            &id,
            "/",
            (expires - now).num_seconds().max(1),
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&web, LOGIN_CSRF_COOKIE, "", "/login", 0),
    );
    Ok(res)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

async fn logout(
    State(web): State<Web>,
    session: Session,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, WebError> {
    session.check_csrf(&form.csrf)?;
    let mut conn = web.app.pool.acquire().await.map_err(AppError::from)?;
    let now = web.app.now(&mut conn).await?;
    web_sessions::end(&mut conn, &session.id_digest, now)
        .await
        .map_err(AppError::from)?;
    let mut res = Redirect::to("/").into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&web, SESSION_COOKIE, "", "/", 0),
    );
    Ok(res)
}
