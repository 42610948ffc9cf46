//! The web console under `/console/`: what an administrator sees at a glance, rendered on
//! the server (HTML from maud, charts as inline SVG), with a session cookie from a
//! management API token and a CSRF token on every form. The CSS and the few lines of
//! script are served from the binary; the Content-Security-Policy allows nothing else.

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;
use wsus_store::PgPool;

pub mod counts;
mod layout;
mod pages;
pub mod session;
mod svg;

pub use session::Sessions;

/// What every console handler reads.
#[derive(Clone)]
pub struct Console {
    pub pool: PgPool,
    pub sessions: Arc<Sessions>,
    pub counts: Arc<counts::CountsCache>,
    /// sync-worker's SyncService: which upstream server it syncs from.
    pub sync: wsus_rpc::SyncClient,
}

/// Which upstream server sync-worker synchronizes from, as far as the console can tell.
pub enum Upstream {
    Set(String),
    /// WSUS_UPSTREAM_URL is unset: nothing is synchronized and nothing is scheduled.
    None,
    /// sync-worker did not answer in time.
    Unknown,
}

impl Console {
    pub async fn upstream(&self) -> Upstream {
        let mut sync = self.sync.clone();
        let asked = sync.get_sync_status(wsus_rpc::sync::GetSyncStatusRequest {});
        match tokio::time::timeout(std::time::Duration::from_secs(2), asked).await {
            Ok(Ok(status)) if status.get_ref().upstream_url.is_empty() => Upstream::None,
            Ok(Ok(status)) => Upstream::Set(status.into_inner().upstream_url),
            _ => Upstream::Unknown,
        }
    }
}

impl FromRef<Console> for Arc<Sessions> {
    fn from_ref(console: &Console) -> Self {
        console.sessions.clone()
    }
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Nothing but this origin's own stylesheet, script, forms and data: no inline code, so
/// an injected tag has nothing to run.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router(console: Console) -> Router {
    Router::new()
        .route("/console", get(|| async { axum::response::Redirect::permanent("/console/") }))
        .route("/console/login", get(session::login_page).post(session::login))
        .route("/console/logout", post(session::logout))
        .route("/console/static/console.css", get(|| async { asset(CSS, "text/css; charset=utf-8") }))
        .route("/console/static/console.js", get(|| async { asset(JS, "text/javascript; charset=utf-8") }))
        .route("/console/", get(pages::overview::page))
        .route("/console/computers", get(pages::computers::list))
        .route("/console/computers/{id}", get(pages::computers::detail))
        .route("/console/updates", get(pages::updates::list))
        .route("/console/updates/{id}", get(pages::updates::detail))
        .route("/console/updates/{id}/approve", post(pages::updates::approve))
        .route("/console/updates/{id}/decline", post(pages::updates::decline))
        .route("/console/updates/{id}/unapprove", post(pages::updates::unapprove))
        .route("/console/updates/{id}/undecline", post(pages::updates::undecline))
        .route("/console/computers/{id}/groups", post(pages::computers::add_to_group))
        .route("/console/computers/{id}/groups/remove", post(pages::computers::remove_from_group))
        .route("/console/groups", get(pages::groups::tree).post(pages::groups::create))
        .route("/console/groups/{id}", get(pages::groups::members))
        .route("/console/groups/{id}/delete", post(pages::groups::delete))
        .route("/console/sync", get(pages::sync::page))
        .route("/console/sync/progress.json", get(pages::sync::progress))
        .route("/console/downstream", get(pages::downstream::page))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(console)
}

async fn secure_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

/// What a page handler fails with: a page saying so, with the status.
pub struct PageError(StatusCode, String);

impl PageError {
    fn not_found(what: &str) -> Self {
        PageError(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
    fn bad_request(what: impl Into<String>) -> Self {
        PageError(StatusCode::BAD_REQUEST, what.into())
    }
    fn conflict(what: impl Into<String>) -> Self {
        PageError(StatusCode::CONFLICT, what.into())
    }
}

impl From<wsus_store::StoreError> for PageError {
    fn from(e: wsus_store::StoreError) -> Self {
        if let wsus_store::StoreError::BadPosition(_) = e {
            PageError::bad_request(e.to_string())
        } else if e.is_unavailable() {
            PageError(StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable; try again shortly".into())
        } else {
            tracing::error!(error = %e, "console: store error");
            PageError(StatusCode::INTERNAL_SERVER_ERROR, "something went wrong reading the database".into())
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let reason = self.0.canonical_reason().unwrap_or("error");
        let body = layout::plain_page(
            reason,
            maud::html! {
                h1 { (self.0.as_u16()) " " (reason) }
                p.error { (self.1) }
                p { a href="/console/" { "Back to the overview" } }
            },
        );
        (self.0, body).into_response()
    }
}

pub type PageResult = Result<Markup, PageError>;

/// A page in the shared layout, for the session's role.
fn page(title: &str, session: &session::Session, current: layout::Nav, body: Markup) -> Markup {
    let role = match session.role {
        wsus_config::Role::Admin => "admin",
        wsus_config::Role::Reader => "reader",
    };
    layout::page(title, role, &session.csrf, current, body)
}
