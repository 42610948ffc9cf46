//! Reports: status summaries per update and per computer (as WSUS's
//! GetSummariesPerUpdate / GetSummariesPerComputerTarget), and downstream servers.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use wsus_api::{Computer, ComputerFilter, DownstreamServer, InGroup, Page, PageQuery, UpdateSummary};
use wsus_store::{updates, uss};

use super::computers::page_of;
use super::{Api, ApiResult, Paging, Q, Routes, page, wire};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/reports/updates", per_update).add("GET", "/api/v1/reports/computers", per_computer).add(
        "GET",
        "/api/v1/downstream-servers",
        downstream_servers,
    )
}

#[utoipa::path(get, path = "/api/v1/reports/updates", tag = "reports",
    summary = "Status counts per update (GetSummariesPerUpdate), over approved or reported updates",
    params(PageQuery, InGroup), responses((status = 200, body = Page<UpdateSummary>)))]
async fn per_update(
    State(api): State<Arc<Api>>,
    Q(paging): Q<PageQuery>,
    Q(g): Q<InGroup>,
) -> ApiResult<Json<Page<UpdateSummary>>> {
    let (items, next) = updates::summaries_per_update(&api.pool, g.group_id, paging.after()?, paging.limit()?).await?;
    Ok(Json(page(items.into_iter().map(wire::update_summary).collect(), next)))
}

#[utoipa::path(get, path = "/api/v1/reports/computers", tag = "reports",
    summary = "Status counts per computer (GetSummariesPerComputerTarget)",
    params(PageQuery, ComputerFilter), responses((status = 200, body = Page<Computer>)))]
async fn per_computer(
    State(api): State<Arc<Api>>,
    Q(paging): Q<PageQuery>,
    Q(f): Q<ComputerFilter>,
) -> ApiResult<Json<Page<Computer>>> {
    Ok(Json(page_of(&api, &paging, f).await?))
}

#[utoipa::path(get, path = "/api/v1/downstream-servers", tag = "reports",
    summary = "Downstream servers and their last rollup",
    params(PageQuery), responses((status = 200, body = Page<DownstreamServer>)))]
async fn downstream_servers(
    State(api): State<Arc<Api>>,
    Q(paging): Q<PageQuery>,
) -> ApiResult<Json<Page<DownstreamServer>>> {
    let (items, next) = uss::downstream_servers(&api.pool, paging.after()?, paging.limit()?).await?;
    Ok(Json(page(items.into_iter().map(wire::downstream_server).collect(), next)))
}
