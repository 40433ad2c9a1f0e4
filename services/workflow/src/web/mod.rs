//! The pages people look at, server-rendered HTML on their own listener (`--web-listen`): the
//! public 公示栏 (no login) and the leadership dashboard (sign-in with a token, exchanged for a
//! session cookie). No JavaScript is needed to read anything;
//! charts are inline SVG drawn here. Every page reads through the same application layer and
//! per-role policy as gRPC (`app::public` for the public, `app::policy::read` for signed-in
//! readers), so no rule or query exists twice.
//!
//! Served by [`serve_web`], which takes a bound listener, so TLS can be put in front of it in
//! one place.

mod dashboard;
mod desk;
mod layout;
mod objection;
mod public;
mod seal;
pub mod session;

pub mod zh;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use crate::error::AppError;
use crate::state::AppState;

/// What the pages share.
#[derive(Clone)]
pub struct Web {
    pub app: Arc<AppState>,
    /// Cookies carry `Secure` (the listener is behind TLS).
    pub secure_cookies: bool,
    /// The scheduler's gRPC, called by the desk as the signed-in person; none: not configured.
    pub scheduler: Option<desk::Scheduler>,
    /// Online objection forms per reader's address.
    pub objections: objection::RateLimit,
}

/// How the pages are served.
#[derive(Debug, Clone, Default)]
pub struct WebOptions {
    /// Set `Secure` on cookies: the pages are served over TLS.
    pub secure_cookies: bool,
    /// Where the desk finds the scheduler's gRPC (`--scheduler-url`), and how it trusts it.
    pub scheduler: Option<SchedulerClient>,
}

/// The scheduler the desk calls: its URL and the TLS a client of a peer uses.
#[derive(Debug, Clone, Default)]
pub struct SchedulerClient {
    pub url: String,
    pub tls: junheng_edge::tls::ClientTls,
}

/// The scheduler client's command-line settings.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SchedulerArgs {
    /// The scheduler's gRPC (SchedulerService) for the office's desk, e.g.
    /// http://127.0.0.1:50052; unset, the desk says it is not configured.
    #[arg(long, env = "JUNHENG_SCHEDULER_URL")]
    pub scheduler_url: Option<String>,
    /// The CA that signed the scheduler's certificate (PEM); any TLS setting makes it https.
    #[arg(long, env = "JUNHENG_SCHEDULER_CA")]
    pub scheduler_ca: Option<std::path::PathBuf>,
    /// The name the scheduler's certificate must carry (default: the URL's host).
    #[arg(long, env = "JUNHENG_SCHEDULER_TLS_DOMAIN")]
    pub scheduler_tls_domain: Option<String>,
    /// A client certificate for mTLS to the scheduler (PEM), with --scheduler-client-key.
    #[arg(long, env = "JUNHENG_SCHEDULER_CLIENT_CERT")]
    pub scheduler_client_cert: Option<std::path::PathBuf>,
    #[arg(long, env = "JUNHENG_SCHEDULER_CLIENT_KEY")]
    pub scheduler_client_key: Option<std::path::PathBuf>,
}

impl SchedulerArgs {
    pub fn client(&self) -> Option<SchedulerClient> {
        self.scheduler_url.as_ref().map(|url| SchedulerClient {
            url: url.clone(),
            tls: junheng_edge::tls::ClientTls {
                ca: self.scheduler_ca.clone(),
                domain: self.scheduler_tls_domain.clone(),
                cert: self.scheduler_client_cert.clone(),
                key: self.scheduler_client_key.clone(),
            },
        })
    }
}

/// The pages' routes. Fails only on a scheduler client setting that cannot work (a bad URL
/// or unreadable TLS files), so a start-up names it.
pub fn router(app: Arc<AppState>, options: WebOptions) -> anyhow::Result<Router> {
    let scheduler = options
        .scheduler
        .as_ref()
        .map(desk::Scheduler::connect)
        .transpose()?;
    let web = Web {
        app,
        secure_cookies: options.secure_cookies,
        scheduler,
        objections: Default::default(),
    };
    Ok(public::routes()
        .merge(session::routes())
        .merge(dashboard::routes())
        .merge(desk::routes())
        .merge(objection::routes())
        .route("/static/site.css", axum::routing::get(layout::css))
        .fallback(|| async { Page::error(StatusCode::NOT_FOUND, "页面不存在。") })
        .layer(axum::middleware::map_response(security_headers))
        .with_state(web))
}

/// Serves `router` on `listener` until `shutdown` resolves. The one place a TLS acceptor goes.
pub async fn serve_web(
    listener: TcpListener,
    router: Router,
    tls: Option<junheng_edge::tls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let Some(acceptor) = tls else {
        tracing::info!(%addr, "junheng workflow serving pages");
        // Nagle off, as on the gRPC listeners: a page's last segment leaves when written.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "setting TCP_NODELAY on a pages connection failed");
            }
        });
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        return Ok(());
    };
    // axum serves plain TCP only: accept, hand the TLS handshake to its own task, then serve
    // the connection with hyper (HTTP/1.1 or HTTP/2, as ALPN chose).
    tracing::info!(%addr, "junheng workflow serving pages over TLS");
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a pages connection failed");
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "setting TCP_NODELAY on a pages connection failed");
        }
        let acceptor = acceptor.clone();
        let router = router
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake on the pages port failed");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            if let Err(e) =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service)
                    .await
            {
                tracing::debug!(%peer, error = %e, "pages connection ended with an error");
            }
        });
    }
}

/// No scripts, no frames, no third parties; nothing cached that a session shows.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// A rendered page or an error page.
pub struct Page;

impl Page {
    pub fn error(status: StatusCode, message: &str) -> Response {
        let title = match status {
            StatusCode::NOT_FOUND => "未找到",
            StatusCode::FORBIDDEN => "无权访问",
            StatusCode::BAD_REQUEST => "请求有误",
            StatusCode::SERVICE_UNAVAILABLE => "暂时无法访问",
            _ => "出错了",
        };
        let body = maud::html! {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "返回公示栏首页" } }
        };
        (status, layout::page(title, None, body)).into_response()
    }
}

/// What an application error means to a reader of a page.
pub struct WebError(pub AppError);

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        WebError(e)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self.0 {
            AppError::NotFound(_) => Page::error(StatusCode::NOT_FOUND, "没有这个页面或公示。"),
            AppError::PermissionDenied(m) => {
                tracing::info!(reason = %m, "page refused");
                Page::error(StatusCode::FORBIDDEN, "您的账号无权查看此页面。")
            }
            AppError::Unauthenticated(_) => axum::response::Redirect::to("/login").into_response(),
            AppError::Invalid(v) => {
                let m = v
                    .iter()
                    .map(|(f, r)| format!("{f}：{r}"))
                    .collect::<Vec<_>>()
                    .join("；");
                Page::error(StatusCode::BAD_REQUEST, &m)
            }
            AppError::Unavailable(e) => {
                tracing::warn!(error = %e, "page unavailable: database");
                Page::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "系统暂时无法访问，请稍后再试。",
                )
            }
            e => {
                tracing::error!(error = ?e, "page failed");
                Page::error(StatusCode::INTERNAL_SERVER_ERROR, "系统出错，请稍后再试。")
            }
        }
    }
}

pub type WebResult<T> = Result<T, WebError>;
