//! Computers: list with filters, details with status, per-update statuses, removal.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use wsus_api::{Computer, ComputerFilter, Page, PageQuery, StatusFilter, UpdateStatus};
use wsus_status::UpdateState;
use wsus_store::computers::{self, ComputerSort};

use super::{Api, ApiError, ApiResult, P, Paging, Q, Routes, page, wire};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/computers", list)
        .add("GET", "/api/v1/computers/{computer_id}", one)
        .add("DELETE", "/api/v1/computers/{computer_id}", delete)
        .add("GET", "/api/v1/computers/{computer_id}/updates", updates)
}

/// Lists computers by name.
pub(super) async fn page_of(api: &Api, paging: &PageQuery, f: ComputerFilter) -> ApiResult<Page<Computer>> {
    let filter = computers::ComputerFilter {
        group_id: f.group_id,
        downstream_server_id: f.downstream_server_id,
        local_only: f.local.unwrap_or(false),
        search: f.search.filter(|s| !s.is_empty()),
        state: f.state.map(wire::state_filter),
        sort: ComputerSort::Name,
        after: paging.after()?,
        limit: paging.limit()?,
    };
    let (items, next) = computers::list(&api.pool, &filter).await?;
    Ok(page(items.into_iter().map(wire::computer).collect(), next))
}

#[utoipa::path(get, path = "/api/v1/computers", tag = "computers", summary = "List computers by name",
    params(PageQuery, ComputerFilter), responses((status = 200, body = Page<Computer>)))]
async fn list(
    State(api): State<Arc<Api>>,
    Q(paging): Q<PageQuery>,
    Q(f): Q<ComputerFilter>,
) -> ApiResult<Json<Page<Computer>>> {
    Ok(Json(page_of(&api, &paging, f).await?))
}

#[utoipa::path(get, path = "/api/v1/computers/{computer_id}", tag = "computers",
    summary = "One computer with its status counts",
    params(("computer_id" = String, Path)), responses((status = 200, body = Computer)))]
async fn one(State(api): State<Arc<Api>>, P(id): P<String>) -> ApiResult<Json<Computer>> {
    let computer = computers::get(&api.pool, &id).await?.ok_or_else(|| unknown(&id))?;
    Ok(Json(wire::computer(computer)))
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("no computer {id:?}"))
}

#[utoipa::path(delete, path = "/api/v1/computers/{computer_id}", tag = "computers",
    summary = "Forget a computer (it comes back when it reports again)",
    params(("computer_id" = String, Path)), responses((status = 204)))]
async fn delete(State(api): State<Arc<Api>>, P(id): P<String>) -> ApiResult<StatusCode> {
    if computers::delete(&api.pool, &id).await? { Ok(StatusCode::NO_CONTENT) } else { Err(unknown(&id)) }
}

/// Parses a status name of the mapping table, any letter case.
pub(super) fn status_code(name: &str) -> ApiResult<i16> {
    UpdateState::parse(name).map(UpdateState::summarization_state).ok_or_else(|| {
        let names: Vec<&str> = UpdateState::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::bad_request(format!("status {name:?} is not one of {}", names.join(", ")))
    })
}

#[utoipa::path(get, path = "/api/v1/computers/{computer_id}/updates", tag = "computers",
    summary = "A computer's per-update statuses",
    params(("computer_id" = String, Path), PageQuery, StatusFilter),
    responses((status = 200, body = Page<UpdateStatus>)))]
async fn updates(
    State(api): State<Arc<Api>>,
    P(id): P<String>,
    Q(paging): Q<PageQuery>,
    Q(f): Q<StatusFilter>,
) -> ApiResult<Json<Page<UpdateStatus>>> {
    let status = f.status.as_deref().map(status_code).transpose()?;
    if computers::get(&api.pool, &id).await?.is_none() {
        return Err(unknown(&id));
    }
    let (rows, next) = computers::statuses(&api.pool, &id, status, paging.after()?, paging.limit()?).await?;
    let items = rows
        .into_iter()
        .map(|r| UpdateStatus {
            update_id: r.update_id,
            title: r.title,
            kb_article_id: r.kb_article_id,
            status: wire::update_state(UpdateState::from_summarization_state(r.status).unwrap_or(UpdateState::Unknown)),
            last_change_time: r.last_change_time,
        })
        .collect();
    Ok(Json(page(items, next)))
}
