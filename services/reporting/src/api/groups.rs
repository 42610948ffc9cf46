//! Target groups: create, nest, rename, delete, membership.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use wsus_api::{Added, Computer, ComputerFilter, Group, GroupChange, Members, NewGroup, Page, PageQuery};
use wsus_store::approvals;

use super::computers::page_of;
use super::{Api, ApiError, ApiResult, Body, P, Paging, Q, Routes, page, wire};
use crate::admin::Actor;

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/groups", list)
        .add("POST", "/api/v1/groups", create)
        .add("GET", "/api/v1/groups/{group_id}", one)
        .add("PATCH", "/api/v1/groups/{group_id}", change)
        .add("DELETE", "/api/v1/groups/{group_id}", delete)
        .add("GET", "/api/v1/groups/{group_id}/computers", members)
        .add("POST", "/api/v1/groups/{group_id}/computers", add_members)
        .add("DELETE", "/api/v1/groups/{group_id}/computers/{computer_id}", remove_member)
}

#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    summary = "List target groups by name (a tree through parent_group_id)",
    params(PageQuery), responses((status = 200, body = Page<Group>)))]
async fn list(State(api): State<Arc<Api>>, Q(paging): Q<PageQuery>) -> ApiResult<Json<Page<Group>>> {
    let (items, next) = approvals::groups_page(&api.pool, paging.after()?, paging.limit()?).await?;
    Ok(Json(page(items.into_iter().map(wire::group).collect(), next)))
}

#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", summary = "Create a target group",
    request_body = NewGroup, responses((status = 201, body = Group)))]
async fn create(State(api): State<Arc<Api>>, Body(g): Body<NewGroup>) -> ApiResult<(StatusCode, Json<Group>)> {
    let group = api.admin.create_group(Actor::Api, &g.name, g.parent_group_id).await?;
    Ok((StatusCode::CREATED, Json(wire::group(group))))
}

#[utoipa::path(get, path = "/api/v1/groups/{group_id}", tag = "groups", summary = "One target group",
    params(("group_id" = Uuid, Path)), responses((status = 200, body = Group)))]
async fn one(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<Json<Group>> {
    approvals::group(&api.pool, id)
        .await?
        .map(|g| Json(wire::group(g)))
        .ok_or_else(|| ApiError::not_found(format!("no target group {id}")))
}

#[utoipa::path(patch, path = "/api/v1/groups/{group_id}", tag = "groups", summary = "Rename or move a target group",
    params(("group_id" = Uuid, Path)), request_body = GroupChange, responses((status = 200, body = Group)))]
async fn change(State(api): State<Arc<Api>>, P(id): P<Uuid>, Body(c): Body<GroupChange>) -> ApiResult<Json<Group>> {
    let group = api.admin.change_group(Actor::Api, id, c.name.as_deref(), c.parent_group_id).await?;
    Ok(Json(wire::group(group)))
}

#[utoipa::path(delete, path = "/api/v1/groups/{group_id}", tag = "groups",
    summary = "Delete a target group, its subgroups and their approvals",
    params(("group_id" = Uuid, Path)), responses((status = 204)))]
async fn delete(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<StatusCode> {
    match api.admin.delete_group(Actor::Api, id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("no target group {id}"))),
    }
}

#[utoipa::path(get, path = "/api/v1/groups/{group_id}/computers", tag = "groups",
    summary = "Computers in a group or its subgroups",
    params(("group_id" = Uuid, Path), PageQuery), responses((status = 200, body = Page<Computer>)))]
async fn members(
    State(api): State<Arc<Api>>,
    P(id): P<Uuid>,
    Q(paging): Q<PageQuery>,
) -> ApiResult<Json<Page<Computer>>> {
    if approvals::group(&api.pool, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no target group {id}")));
    }
    let filter = ComputerFilter { group_id: Some(id), ..Default::default() };
    Ok(Json(page_of(&api, &paging, filter).await?))
}

#[utoipa::path(post, path = "/api/v1/groups/{group_id}/computers", tag = "groups",
    summary = "Put computers in a group (server-side targeting)",
    params(("group_id" = Uuid, Path)), request_body = Members, responses((status = 200, body = Added)))]
async fn add_members(State(api): State<Arc<Api>>, P(id): P<Uuid>, Body(m): Body<Members>) -> ApiResult<Json<Added>> {
    let added = api.admin.add_members(Actor::Api, id, &m.computer_ids).await?;
    Ok(Json(Added { added }))
}

#[utoipa::path(delete, path = "/api/v1/groups/{group_id}/computers/{computer_id}", tag = "groups",
    summary = "Take a computer out of a group",
    params(("group_id" = Uuid, Path), ("computer_id" = String, Path)), responses((status = 204)))]
async fn remove_member(State(api): State<Arc<Api>>, P((id, computer)): P<(Uuid, String)>) -> ApiResult<StatusCode> {
    match api.admin.remove_member(Actor::Api, id, &computer).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("computer {computer:?} is not in group {id}"))),
    }
}
