//! Updates: search, details with approvals and status counts, license terms, approve,
//! decline.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use wsus_api::{
    Approval, ApprovalAction, ApprovalRequest, Eula, InGroup, Language, Page, PageQuery, Update, UpdateDetail,
    UpdateFilter,
};
use wsus_store::approvals::{self, Action};
use wsus_store::updates;

use super::{Api, ApiError, ApiResult, Body, P, Paging, Q, Routes, page, wire};
use crate::admin::Actor;

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

#[utoipa::path(get, path = "/api/v1/updates", tag = "updates",
    summary = "Search updates (latest revisions of software and drivers) by id",
    params(PageQuery, UpdateFilter), responses((status = 200, body = Page<Update>)))]
async fn list(
    State(api): State<Arc<Api>>,
    Q(paging): Q<PageQuery>,
    Q(f): Q<UpdateFilter>,
) -> ApiResult<Json<Page<Update>>> {
    let filter = updates::UpdateFilter {
        search: f.search.filter(|s| !s.is_empty()),
        kb: f.kb.filter(|s| !s.is_empty()),
        categories: f.classification.into_iter().chain(f.product).collect(),
        approval: f.approval.map(wire::approval_filter),
        after: paging.after()?,
        limit: paging.limit()?,
    };
    let (items, next) = updates::list(&api.pool, &filter).await?;
    Ok(Json(page(items.into_iter().map(wire::update).collect(), next)))
}

#[utoipa::path(get, path = "/api/v1/updates/{update_id}", tag = "updates",
    summary = "One update with its approvals and status counts",
    params(("update_id" = Uuid, Path), InGroup), responses((status = 200, body = UpdateDetail)))]
async fn one(State(api): State<Arc<Api>>, P(id): P<Uuid>, Q(g): Q<InGroup>) -> ApiResult<Json<UpdateDetail>> {
    let update = known(&api, id).await?;
    let approvals = approvals::approvals_of(&api.pool, id).await?.into_iter().map(wire::approval).collect();
    let counts = updates::status_counts(&api.pool, id, g.group_id).await?;
    Ok(Json(UpdateDetail::new(wire::update(update), approvals, wire::counts(counts))))
}

async fn known(api: &Api, id: Uuid) -> ApiResult<updates::Update> {
    updates::get(&api.pool, id).await?.ok_or_else(|| ApiError::not_found(format!("no update {id} in the catalog")))
}

#[utoipa::path(get, path = "/api/v1/updates/{update_id}/eula", tag = "updates", summary = "The update's license terms",
    params(("update_id" = Uuid, Path), Language), responses((status = 200, body = Eula)))]
async fn eula(State(api): State<Arc<Api>>, P(id): P<Uuid>, Q(l): Q<Language>) -> ApiResult<Json<Eula>> {
    let update = known(&api, id).await?;
    let language = l.language.unwrap_or_else(|| "en".into());
    let (eula_id, text) = updates::eula_text(&api.pool, id, &language)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("update {id} has no license terms")))?;
    Ok(Json(Eula { eula_id, accepted: update.eula_accepted, text }))
}

#[utoipa::path(post, path = "/api/v1/updates/{update_id}/eula/accept", tag = "updates",
    summary = "Accept the update's license terms",
    params(("update_id" = Uuid, Path)), responses((status = 200, body = Eula)))]
async fn accept_eula(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<Json<Eula>> {
    let eula_id = api.admin.accept_eula(Actor::Api, id).await?;
    let text = updates::eula_text(&api.pool, id, "en").await?.map(|(_, t)| t).unwrap_or_default();
    Ok(Json(Eula { eula_id, accepted: true, text }))
}

#[utoipa::path(get, path = "/api/v1/updates/{update_id}/approvals", tag = "approvals",
    summary = "The update's approvals, one per group at most",
    params(("update_id" = Uuid, Path)), responses((status = 200, body = Page<Approval>)))]
async fn approvals_of(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<Json<Page<Approval>>> {
    known(&api, id).await?;
    // At most one approval per group: one page holds them all.
    let items = approvals::approvals_of(&api.pool, id).await?.into_iter().map(wire::approval).collect();
    Ok(Json(page(items, None::<()>)))
}

#[utoipa::path(put, path = "/api/v1/updates/{update_id}/approvals/{group_id}", tag = "approvals",
    summary = "Approve for a group (keyed to the update: new revisions inherit it). An update with license terms needs them accepted (accept_eula) or answers 409",
    params(("update_id" = Uuid, Path), ("group_id" = Uuid, Path)), request_body = ApprovalRequest,
    responses((status = 200, body = Approval)))]
async fn approve(
    State(api): State<Arc<Api>>,
    P((id, group)): P<(Uuid, Uuid)>,
    Body(a): Body<ApprovalRequest>,
) -> ApiResult<Json<Approval>> {
    let action = match a.action.unwrap_or_default() {
        ApprovalAction::Install => Action::Install,
        ApprovalAction::Uninstall => Action::Uninstall,
    };
    let deployment = api.admin.approve(Actor::Api, id, group, action, a.deadline, a.accept_eula).await?;
    Ok(Json(wire::approval(deployment)))
}

/// Removes a group's own approval: the group inherits its parent's again.
#[utoipa::path(delete, path = "/api/v1/updates/{update_id}/approvals/{group_id}", tag = "approvals",
    summary = "Remove a group's own approval: the group inherits its parent group's again",
    params(("update_id" = Uuid, Path), ("group_id" = Uuid, Path)), responses((status = 204)))]
async fn unapprove(State(api): State<Arc<Api>>, P((id, group)): P<(Uuid, Uuid)>) -> ApiResult<StatusCode> {
    match api.admin.unapprove(Actor::Api, id, group).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("update {id} has no approval of its own for group {group}"))),
    }
}

#[utoipa::path(post, path = "/api/v1/updates/{update_id}/decline", tag = "approvals",
    summary = "Decline an update (every revision); its approvals go",
    params(("update_id" = Uuid, Path)), responses((status = 204)))]
async fn decline(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<StatusCode> {
    api.admin.decline(Actor::Api, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/updates/{update_id}/decline", tag = "approvals", summary = "Take back a decline",
    params(("update_id" = Uuid, Path)), responses((status = 204)))]
async fn undecline(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<StatusCode> {
    match api.admin.undecline(Actor::Api, id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("update {id} is not declined"))),
    }
}
