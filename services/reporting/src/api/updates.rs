//! Updates: search, details with status counts, EULAs, approvals and declines. Approvals
//! are keyed to the update, so its new revisions inherit them; a group without its own
//! approval inherits its parent's.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wsus_store::approvals::{self, Action, Approval, Deployment};
use wsus_store::computers::StatusCounts;
use wsus_store::updates::{self, ApprovalFilter, Update, UpdateFilter};

use super::{Api, ApiError, ApiResult, Body, P, Page, PageQuery, Q, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/updates", list)
        .add("GET", "/api/v1/updates/{update_id}", one)
        .add("GET", "/api/v1/updates/{update_id}/eula", eula)
        .add("POST", "/api/v1/updates/{update_id}/eula/accept", accept_eula)
        .add("GET", "/api/v1/updates/{update_id}/approvals", approvals_of)
        .add("PUT", "/api/v1/updates/{update_id}/approvals/{group_id}", approve)
        .add("DELETE", "/api/v1/updates/{update_id}/approvals/{group_id}", unapprove)
        .add("POST", "/api/v1/updates/{update_id}/decline", decline)
        .add("DELETE", "/api/v1/updates/{update_id}/decline", undecline)
}

#[derive(Debug, Deserialize)]
struct Filter {
    search: Option<String>,
    kb: Option<String>,
    classification: Option<Uuid>,
    product: Option<Uuid>,
    approval: Option<ApprovalFilter>,
}

async fn list(State(api): State<Arc<Api>>, Q(page): Q<PageQuery>, Q(f): Q<Filter>) -> ApiResult<Json<Page<Update>>> {
    let filter = UpdateFilter {
        search: f.search.filter(|s| !s.is_empty()),
        kb: f.kb.filter(|s| !s.is_empty()),
        categories: f.classification.into_iter().chain(f.product).collect(),
        approval: f.approval,
        after: page.after()?,
        limit: page.limit()?,
    };
    let (items, next) = updates::list(&api.pool, &filter).await?;
    Ok(Json(Page::new(items, next)))
}

/// An update with its approvals and how many computers are in each state.
#[derive(Debug, Serialize)]
struct UpdateDetail {
    #[serde(flatten)]
    update: Update,
    approvals: Vec<Deployment>,
    status_counts: StatusCounts,
}

#[derive(Debug, Deserialize)]
struct InGroup {
    group_id: Option<Uuid>,
}

async fn one(State(api): State<Arc<Api>>, P(id): P<Uuid>, Q(g): Q<InGroup>) -> ApiResult<Json<UpdateDetail>> {
    let update = known(&api, id).await?;
    let approvals = approvals::approvals_of(&api.pool, id).await?;
    let status_counts = updates::status_counts(&api.pool, id, g.group_id).await?;
    Ok(Json(UpdateDetail { update, approvals, status_counts }))
}

async fn known(api: &Api, id: Uuid) -> ApiResult<Update> {
    updates::get(&api.pool, id).await?.ok_or_else(|| ApiError::not_found(format!("no update {id} in the catalog")))
}

#[derive(Debug, Serialize)]
struct Eula {
    eula_id: Uuid,
    accepted: bool,
    text: String,
}

#[derive(Debug, Deserialize)]
struct Language {
    language: Option<String>,
}

async fn eula(State(api): State<Arc<Api>>, P(id): P<Uuid>, Q(l): Q<Language>) -> ApiResult<Json<Eula>> {
    let update = known(&api, id).await?;
    let language = l.language.unwrap_or_else(|| "en".into());
    let (eula_id, text) = updates::eula_text(&api.pool, id, &language)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("update {id} has no license terms")))?;
    Ok(Json(Eula { eula_id, accepted: update.eula_accepted, text }))
}

async fn accept_eula(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<Json<Eula>> {
    let update = known(&api, id).await?;
    let eula_id = update.eula_id.ok_or_else(|| ApiError::not_found(format!("update {id} has no license terms")))?;
    approvals::accept_eula(&api.pool, eula_id, Some("api:admin")).await?;
    let text = updates::eula_text(&api.pool, id, "en").await?.map(|(_, t)| t).unwrap_or_default();
    Ok(Json(Eula { eula_id, accepted: true, text }))
}

async fn approvals_of(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<Json<Page<Deployment>>> {
    known(&api, id).await?;
    // At most one approval per group: one page holds them all.
    Ok(Json(Page::new(approvals::approvals_of(&api.pool, id).await?, None::<()>)))
}

#[derive(Debug, Deserialize)]
struct ApprovalRequest {
    /// Install (default) or Uninstall.
    action: Option<String>,
    deadline: Option<DateTime<Utc>>,
    /// Accept the update's license terms with this approval.
    #[serde(default)]
    accept_eula: bool,
}

async fn approve(
    State(api): State<Arc<Api>>,
    P((id, group)): P<(Uuid, Uuid)>,
    Body(a): Body<ApprovalRequest>,
) -> ApiResult<Json<Deployment>> {
    let action = match a.action.as_deref().unwrap_or("Install") {
        "Install" => Action::Install,
        "Uninstall" => Action::Uninstall,
        other => return Err(ApiError::bad_request(format!("action {other:?} is not Install or Uninstall"))),
    };
    let update = known(&api, id).await?;
    if let (true, Some(eula_id)) = (a.accept_eula, update.eula_id) {
        approvals::accept_eula(&api.pool, eula_id, Some("api:admin")).await?;
    }
    let approval =
        Approval { update_id: id, group_id: group, action, deadline: a.deadline, admin_name: Some("api:admin".into()) };
    let deployment_id = approvals::approve(&api.pool, &approval).await?;
    approvals::approvals_of(&api.pool, id)
        .await?
        .into_iter()
        .find(|d| d.deployment_id == deployment_id)
        .map(Json)
        .ok_or_else(|| ApiError::conflict("the approval was changed concurrently"))
}

/// Removes a group's own approval: the group inherits its parent's again.
async fn unapprove(State(api): State<Arc<Api>>, P((id, group)): P<(Uuid, Uuid)>) -> ApiResult<StatusCode> {
    match approvals::unapprove(&api.pool, id, group).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("update {id} has no approval of its own for group {group}"))),
    }
}

async fn decline(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<StatusCode> {
    known(&api, id).await?;
    approvals::decline(&api.pool, id, Some("api:admin")).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn undecline(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<StatusCode> {
    match approvals::undecline(&api.pool, id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("update {id} is not declined"))),
    }
}
