//! Target groups: create, nest, rename, delete, membership.

use std::sync::Arc;

use crate::admin::Actor;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wsus_store::approvals::{self, Group};

use super::computers::{ComputerView, page_of};
use super::{Api, ApiError, ApiResult, Body, P, Page, PageQuery, Q, Routes};

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

async fn list(State(api): State<Arc<Api>>, Q(page): Q<PageQuery>) -> ApiResult<Json<Page<Group>>> {
    let (items, next) = approvals::groups_page(&api.pool, page.after()?, page.limit()?).await?;
    Ok(Json(Page::new(items, next)))
}

#[derive(Debug, Deserialize)]
struct NewGroup {
    name: String,
    /// None = under All Computers.
    parent_group_id: Option<Uuid>,
}

async fn create(State(api): State<Arc<Api>>, Body(g): Body<NewGroup>) -> ApiResult<(StatusCode, Json<Group>)> {
    let group = api.admin.create_group(Actor::Api, &g.name, g.parent_group_id).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

async fn one(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<Json<Group>> {
    approvals::group(&api.pool, id).await?.map(Json).ok_or_else(|| ApiError::not_found(format!("no target group {id}")))
}

#[derive(Debug, Deserialize)]
struct GroupChange {
    name: Option<String>,
    parent_group_id: Option<Uuid>,
}

async fn change(State(api): State<Arc<Api>>, P(id): P<Uuid>, Body(c): Body<GroupChange>) -> ApiResult<Json<Group>> {
    let group = api.admin.change_group(Actor::Api, id, c.name.as_deref(), c.parent_group_id).await?;
    Ok(Json(group))
}

async fn delete(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<StatusCode> {
    match api.admin.delete_group(Actor::Api, id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("no target group {id}"))),
    }
}

async fn members(
    State(api): State<Arc<Api>>,
    P(id): P<Uuid>,
    Q(page): Q<PageQuery>,
) -> ApiResult<Json<Page<ComputerView>>> {
    if approvals::group(&api.pool, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no target group {id}")));
    }
    let filter = super::computers::Filter { group_id: Some(id), ..Default::default() };
    Ok(Json(page_of(&api, &page, filter).await?))
}

#[derive(Debug, Deserialize)]
struct Members {
    computer_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Added {
    added: u64,
}

async fn add_members(State(api): State<Arc<Api>>, P(id): P<Uuid>, Body(m): Body<Members>) -> ApiResult<Json<Added>> {
    let added = api.admin.add_members(Actor::Api, id, &m.computer_ids).await?;
    Ok(Json(Added { added }))
}

async fn remove_member(State(api): State<Arc<Api>>, P((id, computer)): P<(Uuid, String)>) -> ApiResult<StatusCode> {
    match api.admin.remove_member(Actor::Api, id, &computer).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("computer {computer:?} is not in group {id}"))),
    }
}
