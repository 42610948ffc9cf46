//! Automatic approval rules.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use wsus_api::{Applied, ApplyRequest, Page, PageQuery, Rule, RuleAction, RuleBody};
use wsus_store::rules;

use super::{Api, ApiError, ApiResult, Body, P, Paging, Q, Routes, page, wire};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/rules", list)
        .add("POST", "/api/v1/rules", create)
        .add("POST", "/api/v1/rules/apply", apply)
        .add("GET", "/api/v1/rules/{rule_id}", one)
        .add("PUT", "/api/v1/rules/{rule_id}", replace)
        .add("DELETE", "/api/v1/rules/{rule_id}", delete)
}

/// The rule a body describes, checked.
fn rule_of(body: RuleBody, rule_id: Uuid) -> ApiResult<rules::Rule> {
    if body.name.trim().is_empty() || body.group_ids.is_empty() {
        return Err(ApiError::bad_request("a rule needs a name and at least one group"));
    }
    if body.deadline_offset_hours.is_some_and(|h| !(0..=24 * 365).contains(&h)) {
        return Err(ApiError::bad_request("deadline_offset_hours is within 0..8760"));
    }
    let action = match body.action.unwrap_or_default() {
        RuleAction::Install => "Install",
        RuleAction::OptionalInstall => "OptionalInstall",
    };
    Ok(rules::Rule {
        rule_id,
        name: body.name.trim().to_owned(),
        enabled: body.enabled,
        classification_ids: body.classification_ids,
        product_ids: body.product_ids,
        group_ids: body.group_ids,
        action: action.to_owned(),
        deadline_offset_hours: body.deadline_offset_hours,
    })
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", summary = "List automatic approval rules",
    params(PageQuery), responses((status = 200, body = Page<Rule>)))]
async fn list(State(api): State<Arc<Api>>, Q(paging): Q<PageQuery>) -> ApiResult<Json<Page<Rule>>> {
    // Rules are few: page over the sorted list.
    let all = rules::list(&api.pool).await?;
    let after: Option<Uuid> = paging.after()?;
    let start = after.and_then(|a| all.iter().position(|r| r.rule_id == a)).map_or(0, |i| i + 1);
    let limit = paging.limit()? as usize;
    let items: Vec<Rule> = all.iter().skip(start).take(limit).cloned().map(wire::rule).collect();
    let next = (start + limit < all.len()).then(|| items.last().map(|r| r.rule_id)).flatten();
    Ok(Json(page(items, next)))
}

#[utoipa::path(post, path = "/api/v1/rules", tag = "rules",
    summary = "Create a rule (it applies to revisions that arrive from now on)",
    request_body = RuleBody, responses((status = 201, body = Rule)))]
async fn create(State(api): State<Arc<Api>>, Body(b): Body<RuleBody>) -> ApiResult<(StatusCode, Json<Rule>)> {
    let rule = rule_of(b, Uuid::new_v4())?;
    rules::put(&api.pool, &rule).await?;
    Ok((StatusCode::CREATED, Json(wire::rule(rule))))
}

#[utoipa::path(get, path = "/api/v1/rules/{rule_id}", tag = "rules", summary = "One rule",
    params(("rule_id" = Uuid, Path)), responses((status = 200, body = Rule)))]
async fn one(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<Json<Rule>> {
    rules::get(&api.pool, id)
        .await?
        .map(|r| Json(wire::rule(r)))
        .ok_or_else(|| ApiError::not_found(format!("no rule {id}")))
}

#[utoipa::path(put, path = "/api/v1/rules/{rule_id}", tag = "rules", summary = "Replace a rule",
    params(("rule_id" = Uuid, Path)), request_body = RuleBody, responses((status = 200, body = Rule)))]
async fn replace(State(api): State<Arc<Api>>, P(id): P<Uuid>, Body(b): Body<RuleBody>) -> ApiResult<Json<Rule>> {
    if rules::get(&api.pool, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no rule {id}")));
    }
    let rule = rule_of(b, id)?;
    rules::put(&api.pool, &rule).await?;
    Ok(Json(wire::rule(rule)))
}

#[utoipa::path(delete, path = "/api/v1/rules/{rule_id}", tag = "rules", summary = "Delete a rule (its approvals stay)",
    params(("rule_id" = Uuid, Path)), responses((status = 204)))]
async fn delete(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<StatusCode> {
    match rules::delete(&api.pool, id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("no rule {id}"))),
    }
}

#[utoipa::path(post, path = "/api/v1/rules/apply", tag = "rules",
    summary = "Apply rules now; also moves approvals to their update's newest revision and declines expired updates",
    request_body = ApplyRequest, responses((status = 200, body = Applied)))]
async fn apply(State(api): State<Arc<Api>>, Body(a): Body<ApplyRequest>) -> ApiResult<Json<Applied>> {
    if let Some(id) = a.rule_id
        && rules::get(&api.pool, id).await?.is_none()
    {
        return Err(ApiError::not_found(format!("no rule {id}")));
    }
    Ok(Json(wire::applied(rules::apply(&api.pool, a.rule_id, a.everything).await?)))
}
