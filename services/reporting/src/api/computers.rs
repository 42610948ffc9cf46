//! Computers: list with filters, details with status, per-update statuses, removal.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wsus_status::UpdateState;
use wsus_store::computers::{self, Computer, ComputerFilter, ComputerSort, ComputerState};

use super::{Api, ApiError, ApiResult, P, Page, PageQuery, Q, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/computers", list)
        .add("GET", "/api/v1/computers/{computer_id}", one)
        .add("DELETE", "/api/v1/computers/{computer_id}", delete)
        .add("GET", "/api/v1/computers/{computer_id}/updates", updates)
}

/// A computer with its overall state.
#[derive(Debug, Serialize)]
pub struct ComputerView {
    #[serde(flatten)]
    pub computer: Computer,
    pub state: ComputerState,
}

impl From<Computer> for ComputerView {
    fn from(computer: Computer) -> Self {
        Self { state: computer.state(), computer }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    pub group_id: Option<Uuid>,
    pub downstream_server_id: Option<Uuid>,
    /// true: only this server's own computers (not rolled up).
    pub local: Option<bool>,
    pub state: Option<ComputerState>,
    pub search: Option<String>,
}

/// Lists computers by name.
pub(super) async fn page_of(api: &Api, page: &PageQuery, f: Filter) -> ApiResult<Page<ComputerView>> {
    let filter = ComputerFilter {
        group_id: f.group_id,
        downstream_server_id: f.downstream_server_id,
        local_only: f.local.unwrap_or(false),
        search: f.search.filter(|s| !s.is_empty()),
        state: f.state,
        sort: ComputerSort::Name,
        after: page.after()?,
        limit: page.limit()?,
    };
    let (items, next) = computers::list(&api.pool, &filter).await?;
    Ok(Page::new(items.into_iter().map(Into::into).collect(), next))
}

async fn list(
    State(api): State<Arc<Api>>,
    Q(page): Q<PageQuery>,
    Q(f): Q<Filter>,
) -> ApiResult<Json<Page<ComputerView>>> {
    Ok(Json(page_of(&api, &page, f).await?))
}

async fn one(State(api): State<Arc<Api>>, P(id): P<String>) -> ApiResult<Json<ComputerView>> {
    let computer = computers::get(&api.pool, &id).await?.ok_or_else(|| unknown(&id))?;
    Ok(Json(computer.into()))
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("no computer {id:?}"))
}

async fn delete(State(api): State<Arc<Api>>, P(id): P<String>) -> ApiResult<StatusCode> {
    if computers::delete(&api.pool, &id).await? { Ok(StatusCode::NO_CONTENT) } else { Err(unknown(&id)) }
}

/// One update's status on the computer.
#[derive(Debug, Serialize)]
pub struct UpdateStatusView {
    pub update_id: Uuid,
    pub title: Option<String>,
    pub kb_article_id: Option<String>,
    pub status: &'static str,
    pub last_change_time: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct StatusFilter {
    status: Option<String>,
}

/// Parses a status name of the mapping table.
pub(super) fn status_code(name: &str) -> ApiResult<i16> {
    UpdateState::parse(name).map(UpdateState::summarization_state).ok_or_else(|| {
        let names: Vec<&str> = UpdateState::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::bad_request(format!("status {name:?} is not one of {}", names.join(", ")))
    })
}

async fn updates(
    State(api): State<Arc<Api>>,
    P(id): P<String>,
    Q(page): Q<PageQuery>,
    Q(f): Q<StatusFilter>,
) -> ApiResult<Json<Page<UpdateStatusView>>> {
    let status = f.status.as_deref().map(status_code).transpose()?;
    if computers::get(&api.pool, &id).await?.is_none() {
        return Err(unknown(&id));
    }
    let (rows, next) = computers::statuses(&api.pool, &id, status, page.after()?, page.limit()?).await?;
    let items = rows
        .into_iter()
        .map(|r| UpdateStatusView {
            update_id: r.update_id,
            title: r.title,
            kb_article_id: r.kb_article_id,
            status: UpdateState::from_summarization_state(r.status).unwrap_or(UpdateState::Unknown).as_str(),
            last_change_time: r.last_change_time,
        })
        .collect();
    Ok(Json(Page::new(items, next)))
}
