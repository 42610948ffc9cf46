//! The web console under `/console/`: what an administrator sees at a glance, rendered on
//! the server (HTML from maud, charts as inline SVG), with a session cookie from a
//! management API token and a CSRF token on every form. The CSS and the few lines of
//! script are served from the binary; the Content-Security-Policy allows nothing else.

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;
use wsus_store::{ErrorKind, HasKind, PgPool};

use crate::admin::Admin;
use wsus_api::{SyncRun, SyncStatus};

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
    /// Every change an administrator makes, and what sync-worker says of synchronization.
    pub admin: Admin,
}

/// Which upstream server sync-worker synchronizes from, as far as the console can tell.
pub enum Upstream {
    Set(String),
    /// WSUS_UPSTREAM_URL is unset: nothing is synchronized and nothing is scheduled.
    None,
    /// sync-worker did not answer in time.
    Unknown,
}

impl Upstream {
    /// From what sync-worker said; None when it did not answer.
    pub fn of(status: Option<&SyncStatus>) -> Self {
        match status {
            None => Upstream::Unknown,
            Some(SyncStatus { upstream_url: None, .. }) => Upstream::None,
            Some(SyncStatus { upstream_url: Some(url), .. }) => Upstream::Set(url.clone()),
        }
    }
}

impl Console {
    /// Where synchronization stands; None when sync-worker does not answer (a page
    /// still shows, saying so).
    pub async fn sync_status(&self) -> Option<SyncStatus> {
        self.admin.sync_status().await.inspect_err(|e| tracing::debug!(error = %e, "console: no sync status")).ok()
    }

    /// Past synchronizations, as [`Admin::sync_history`]; none when sync-worker does not answer.
    pub async fn sync_history(&self, before: Option<i64>, limit: u32) -> (Vec<SyncRun>, Option<i64>) {
        self.admin
            .sync_history(before, limit)
            .await
            .inspect_err(|e| tracing::debug!(error = %e, "console: no sync history"))
            .unwrap_or_default()
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
        .route("/console/notifications", get(pages::notifications::page).post(pages::notifications::add))
        .route("/console/notifications/settings", post(pages::notifications::settings))
        .route("/console/notifications/{id}/test", post(pages::notifications::test))
        .route("/console/notifications/{id}/remove", post(pages::notifications::remove))
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

/// What a page handler fails with: a page saying so, with the status of its kind.
pub struct PageError {
    kind: ErrorKind,
    message: String,
}

impl PageError {
    fn not_found(what: &str) -> Self {
        PageError { kind: ErrorKind::NotFound, message: format!("{what} not found") }
    }
    fn bad_request(what: impl Into<String>) -> Self {
        PageError { kind: ErrorKind::Invalid, message: what.into() }
    }

    /// The page for an error of the store or of the administration layer. What the
    /// server could not do is said plainly; the detail of its own faults is logged.
    fn of<E: HasKind + std::fmt::Display>(e: E) -> Self {
        let kind = e.kind();
        let message = match kind {
            ErrorKind::Unavailable => "the database or sync-worker is unavailable; try again shortly".to_owned(),
            ErrorKind::Internal => {
                tracing::error!(error = %e, "console: request failed");
                "something went wrong on the server".to_owned()
            }
            _ => e.to_string(),
        };
        PageError { kind, message }
    }
}

impl From<wsus_store::StoreError> for PageError {
    fn from(e: wsus_store::StoreError) -> Self {
        PageError::of(e)
    }
}

impl From<crate::admin::AdminError> for PageError {
    fn from(e: crate::admin::AdminError) -> Self {
        PageError::of(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = wsus_service::edge::http_status(self.kind);
        let reason = status.canonical_reason().unwrap_or("error");
        let body = layout::plain_page(
            reason,
            maud::html! {
                h1 { (status.as_u16()) " " (reason) }
                p.error { (self.message) }
                p { a href="/console/" { "Back to the overview" } }
            },
        );
        (status, body).into_response()
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
