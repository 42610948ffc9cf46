//! Cleanup: its runs (read from the store) and a manual start (forwarded to sync-worker).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use wsus_store::cleanup::{self, CleanupRun};

use super::{Api, ApiResult, Page, PageQuery, Q, Routes};
use crate::admin::Actor;

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/cleanup/runs", runs).add("POST", "/api/v1/cleanup/start", start)
}

async fn runs(State(api): State<Arc<Api>>, Q(page): Q<PageQuery>) -> ApiResult<Json<Page<CleanupRun>>> {
    let (items, next) = cleanup::runs_page(&api.pool, page.after()?, page.limit()?).await?;
    Ok(Json(Page::new(items, next)))
}

#[derive(Debug, Serialize)]
struct Started {
    run_id: i64,
}

async fn start(State(api): State<Arc<Api>>) -> ApiResult<(StatusCode, Json<Started>)> {
    let run_id = api.admin.start_cleanup(Actor::Api).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { run_id })))
}
