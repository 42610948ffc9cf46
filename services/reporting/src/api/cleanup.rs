//! Cleanup: its runs (read from the store) and a manual start (forwarded to sync-worker).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use wsus_api::{CleanupRun, CleanupStarted, Page, PageQuery};
use wsus_store::cleanup;

use super::{Api, ApiResult, Paging, Q, Routes, page, wire};
use crate::admin::Actor;

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/cleanup/runs", runs).add("POST", "/api/v1/cleanup/start", start)
}

#[utoipa::path(get, path = "/api/v1/cleanup/runs", tag = "cleanup",
    summary = "Cleanup runs, newest first, with what each job removed or declined",
    params(PageQuery), responses((status = 200, body = Page<CleanupRun>)))]
async fn runs(State(api): State<Arc<Api>>, Q(paging): Q<PageQuery>) -> ApiResult<Json<Page<CleanupRun>>> {
    let (items, next) = cleanup::runs_page(&api.pool, paging.after()?, paging.limit()?).await?;
    Ok(Json(page(items.into_iter().map(wire::cleanup_run).collect(), next)))
}

#[utoipa::path(post, path = "/api/v1/cleanup/start", tag = "cleanup",
    summary = "Start a cleanup run now (409 when one is running)",
    responses((status = 202, body = CleanupStarted)))]
async fn start(State(api): State<Arc<Api>>) -> ApiResult<(StatusCode, Json<CleanupStarted>)> {
    let run_id = api.admin.start_cleanup(Actor::Api).await?;
    Ok((StatusCode::ACCEPTED, Json(CleanupStarted { run_id })))
}
