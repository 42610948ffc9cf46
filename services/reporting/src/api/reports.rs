//! Reports: status summaries per update and per computer (as WSUS's
//! GetSummariesPerUpdate / GetSummariesPerComputerTarget), and downstream servers.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;
use wsus_store::updates::{self, UpdateSummary};
use wsus_store::uss::{self, DownstreamServer};

use super::computers::{ComputerView, Filter, page_of};
use super::{Api, ApiResult, Page, PageQuery, Q, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/reports/updates", per_update).add("GET", "/api/v1/reports/computers", per_computer).add(
        "GET",
        "/api/v1/downstream-servers",
        downstream_servers,
    )
}

#[derive(Debug, Deserialize)]
struct InGroup {
    group_id: Option<Uuid>,
}

async fn per_update(
    State(api): State<Arc<Api>>,
    Q(page): Q<PageQuery>,
    Q(g): Q<InGroup>,
) -> ApiResult<Json<Page<UpdateSummary>>> {
    let (items, next) = updates::summaries_per_update(&api.pool, g.group_id, page.after()?, page.limit()?).await?;
    Ok(Json(Page::new(items, next)))
}

async fn per_computer(
    State(api): State<Arc<Api>>,
    Q(page): Q<PageQuery>,
    Q(f): Q<Filter>,
) -> ApiResult<Json<Page<ComputerView>>> {
    Ok(Json(page_of(&api, &page, f).await?))
}

async fn downstream_servers(
    State(api): State<Arc<Api>>,
    Q(page): Q<PageQuery>,
) -> ApiResult<Json<Page<DownstreamServer>>> {
    let (items, next) = uss::downstream_servers(&api.pool, page.after()?, page.limit()?).await?;
    Ok(Json(Page::new(items, next)))
}
