//! Synchronisation: trigger, status and history, forwarded to sync-worker over gRPC.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use wsus_api::{Page, PageQuery, SyncRun, SyncStarted, SyncStatus};

use super::{Api, ApiResult, Paging, Q, Routes, page};
use crate::admin::Actor;

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/sync/status", status).add("POST", "/api/v1/sync/start", start).add(
        "GET",
        "/api/v1/sync/history",
        history,
    )
}

#[utoipa::path(post, path = "/api/v1/sync/start", tag = "sync",
    summary = "Start a synchronisation with the upstream server now",
    responses((status = 202, body = SyncStarted)))]
async fn start(State(api): State<Arc<Api>>) -> ApiResult<(StatusCode, Json<SyncStarted>)> {
    let sync_id = api.admin.start_sync(Actor::Api).await?;
    Ok((StatusCode::ACCEPTED, Json(SyncStarted { sync_id })))
}

#[utoipa::path(get, path = "/api/v1/sync/status", tag = "sync",
    summary = "The running synchronisation, if any, and the last finished one",
    responses((status = 200, body = SyncStatus)))]
async fn status(State(api): State<Arc<Api>>) -> ApiResult<Json<SyncStatus>> {
    Ok(Json(api.admin.sync_status().await?))
}

#[utoipa::path(get, path = "/api/v1/sync/history", tag = "sync", summary = "Past synchronisations, newest first",
    params(PageQuery), responses((status = 200, body = Page<SyncRun>)))]
async fn history(State(api): State<Arc<Api>>, Q(paging): Q<PageQuery>) -> ApiResult<Json<Page<SyncRun>>> {
    let (runs, next) = api.admin.sync_history(paging.after::<i64>()?, paging.limit()? as u32).await?;
    Ok(Json(page(runs, next)))
}
