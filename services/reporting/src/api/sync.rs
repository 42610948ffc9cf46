//! Synchronisation: trigger, status and history, forwarded to sync-worker over gRPC.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::admin::Actor;
pub use crate::admin::{SyncRunView, SyncStatusView};

use super::{Api, ApiResult, Page, PageQuery, Q, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/sync/status", status).add("POST", "/api/v1/sync/start", start).add(
        "GET",
        "/api/v1/sync/history",
        history,
    )
}

#[derive(Debug, Serialize)]
struct Started {
    sync_id: i64,
}

/// `POST /api/v1/sync/start`: a manual synchronisation.
async fn start(State(api): State<Arc<Api>>) -> ApiResult<(StatusCode, Json<Started>)> {
    let sync_id = api.admin.start_sync(Actor::Api).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { sync_id })))
}

async fn status(State(api): State<Arc<Api>>) -> ApiResult<Json<SyncStatusView>> {
    Ok(Json(api.admin.sync_status().await?))
}

/// `GET /api/v1/sync/history`: past attempts, newest first.
async fn history(State(api): State<Arc<Api>>, Q(page): Q<PageQuery>) -> ApiResult<Json<Page<SyncRunView>>> {
    let (runs, next) = api.admin.sync_history(page.after::<i64>()?, page.limit()? as u32).await?;
    Ok(Json(Page::new(runs, next)))
}
