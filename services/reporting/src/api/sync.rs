//! Synchronisation: trigger, status and history, forwarded to sync-worker over gRPC.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use wsus_rpc::sync::{GetSyncStatusRequest, ListSyncHistoryRequest, StartSyncRequest, SyncRun, SyncStatus};

use super::{Api, ApiError, ApiResult, Page, PageQuery, Q, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/sync/status", status).add("POST", "/api/v1/sync/start", start).add(
        "GET",
        "/api/v1/sync/history",
        history,
    )
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
    /// Documents the upstream sent that could not be read (set aside, asked for again).
    pub revisions_quarantined: i32,
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
            revisions_quarantined: r.revisions_quarantined,
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

/// The API error for a gRPC error from sync-worker.
fn from_sync_error(status: tonic::Status) -> ApiError {
    let message = format!("sync-worker: {}", status.message());
    match status.code() {
        tonic::Code::FailedPrecondition | tonic::Code::AlreadyExists => ApiError::Conflict(message),
        tonic::Code::InvalidArgument => ApiError::BadRequest(message),
        _ => ApiError::Unavailable(message),
    }
}

/// Calls sync-worker, giving up after 5 s.
pub(super) async fn call<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> ApiResult<T> {
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(status)) => Err(from_sync_error(status)),
        Err(_) => Err(ApiError::Unavailable("sync-worker did not answer within 5 s".into())),
    }
}

#[derive(Debug, Serialize)]
struct Started {
    sync_id: i64,
}

/// `POST /api/v1/sync/start`: a manual synchronisation.
async fn start(State(api): State<Arc<Api>>) -> ApiResult<(StatusCode, Json<Started>)> {
    let mut client = api.sync.clone();
    let r = call(client.start_sync(StartSyncRequest { trigger: "manual".into() })).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { sync_id: r.sync_id })))
}

async fn status(State(api): State<Arc<Api>>) -> ApiResult<Json<SyncStatusView>> {
    let mut client = api.sync.clone();
    Ok(Json(call(client.get_sync_status(GetSyncStatusRequest {})).await?.into()))
}

/// `GET /api/v1/sync/history`: past attempts, newest first.
async fn history(State(api): State<Arc<Api>>, Q(page): Q<PageQuery>) -> ApiResult<Json<Page<SyncRunView>>> {
    let mut client = api.sync.clone();
    let request =
        ListSyncHistoryRequest { before_sync_id: page.after::<i64>()?.unwrap_or(0), limit: page.limit()? as u32 };
    let r = call(client.list_sync_history(request)).await?;
    let next = (r.next_before_sync_id > 0).then_some(r.next_before_sync_id);
    Ok(Json(Page::new(r.runs.into_iter().map(Into::into).collect(), next)))
}
