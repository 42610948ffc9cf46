//! The management REST API (JSON) under `/api/v1/`, behind bearer tokens
//! (`WSUS_API_TOKENS`, roles admin and reader).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use wsus_config::{ApiToken, Role};
use wsus_rpc::SyncClient;
use wsus_rpc::sync::{GetSyncStatusRequest, StartSyncRequest, SyncRun, SyncStatus};

pub struct Api {
    sync: SyncClient,
    tokens: Vec<ApiToken>,
}

impl Api {
    pub fn new(sync: SyncClient, tokens: &[ApiToken]) -> Self {
        Self { sync, tokens: tokens.to_vec() }
    }

    /// The role of a presented token. Compares every configured token in constant time.
    fn role_of(&self, presented: &str) -> Option<Role> {
        let mut found = None;
        for t in &self.tokens {
            if constant_time_eq(t.token.as_bytes(), presented.as_bytes()) {
                found = Some(t.role);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Serialize)]
pub struct ApiError {
    pub error: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ApiError { error: message.into() })).into_response()
}

pub fn api_router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/v1/sync/status", get(sync_status))
        .route("/api/v1/sync/start", post(sync_start))
        .route_layer(axum::middleware::from_fn_with_state(api.clone(), authenticate))
        .with_state(api)
}

/// Any valid token may read; changes (later endpoints) need the admin role.
async fn authenticate(State(api): State<Arc<Api>>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(role) = presented.and_then(|t| api.role_of(t)) else {
        let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required (WSUS_API_TOKENS)");
        r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        return r;
    };
    let reads = matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    if !reads && role != Role::Admin {
        return error(StatusCode::FORBIDDEN, "the reader role cannot change anything");
    }
    request.extensions_mut().insert(role);
    next.run(request).await
}

/// One synchronisation attempt, as the API shows it.
#[derive(Debug, Serialize, PartialEq)]
pub struct SyncRunView {
    pub sync_id: i64,
    pub upstream_url: String,
    pub trigger: String,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub result: String,
    pub phase: Option<String>,
    pub done: i64,
    pub total: i64,
    pub error: Option<String>,
    pub revisions_new: i32,
    pub revisions_updated: i32,
    pub deployments_changed: i32,
    pub files_queued: i32,
    pub bytes_received: i64,
}

impl From<SyncRun> for SyncRunView {
    fn from(r: SyncRun) -> Self {
        let nonempty = |s: String| (!s.is_empty()).then_some(s);
        Self {
            sync_id: r.sync_id,
            upstream_url: r.upstream_url,
            trigger: r.trigger,
            started_at: r.started_at.as_ref().and_then(wsus_rpc::datetime),
            finished_at: r.finished_at.as_ref().and_then(wsus_rpc::datetime),
            result: r.result,
            phase: nonempty(r.phase),
            done: r.done,
            total: r.total,
            error: nonempty(r.error),
            revisions_new: r.revisions_new,
            revisions_updated: r.revisions_updated,
            deployments_changed: r.deployments_changed,
            files_queued: r.files_queued,
            bytes_received: r.bytes_received,
        }
    }
}

/// `GET /api/v1/sync/status`.
#[derive(Debug, Serialize, PartialEq)]
pub struct SyncStatusView {
    /// Null when no upstream server is configured.
    pub upstream_url: Option<String>,
    pub replica: bool,
    pub running: Option<SyncRunView>,
    pub last: Option<SyncRunView>,
}

impl From<SyncStatus> for SyncStatusView {
    fn from(s: SyncStatus) -> Self {
        Self {
            upstream_url: (!s.upstream_url.is_empty()).then_some(s.upstream_url),
            replica: s.replica,
            running: s.running.map(Into::into),
            last: s.last.map(Into::into),
        }
    }
}

/// The HTTP answer for a gRPC error from sync-worker.
fn from_sync_error(status: tonic::Status) -> Response {
    let code = match status.code() {
        tonic::Code::FailedPrecondition | tonic::Code::AlreadyExists => StatusCode::CONFLICT,
        tonic::Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(code, format!("sync-worker: {}", status.message()))
}

#[derive(Debug, Serialize)]
struct Started {
    sync_id: i64,
}

/// `POST /api/v1/sync/start`: a manual synchronisation (admin only).
async fn sync_start(State(api): State<Arc<Api>>) -> Response {
    let mut client = api.sync.clone();
    let request = StartSyncRequest { trigger: "manual".into() };
    match tokio::time::timeout(Duration::from_secs(5), client.start_sync(request)).await {
        Ok(Ok(r)) => (StatusCode::ACCEPTED, Json(Started { sync_id: r.into_inner().sync_id })).into_response(),
        Ok(Err(status)) => from_sync_error(status),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "sync-worker did not answer within 5 s"),
    }
}

async fn sync_status(State(api): State<Arc<Api>>) -> Response {
    let mut client = api.sync.clone();
    match tokio::time::timeout(Duration::from_secs(5), client.get_sync_status(GetSyncStatusRequest {})).await {
        Ok(Ok(status)) => Json(SyncStatusView::from(status.into_inner())).into_response(),
        Ok(Err(status)) => from_sync_error(status),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "sync-worker did not answer within 5 s"),
    }
}
