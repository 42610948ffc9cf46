//! Automatic approval rules.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;
use wsus_store::rules::{self, Applied, Rule};

use super::{Api, ApiError, ApiResult, Body, P, Page, PageQuery, Q, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/rules", list)
        .add("POST", "/api/v1/rules", create)
        .add("POST", "/api/v1/rules/apply", apply)
        .add("GET", "/api/v1/rules/{rule_id}", one)
        .add("PUT", "/api/v1/rules/{rule_id}", replace)
        .add("DELETE", "/api/v1/rules/{rule_id}", delete)
}

/// A rule as written: everything but its id.
#[derive(Debug, Deserialize)]
struct RuleBody {
    name: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    classification_ids: Vec<Uuid>,
    #[serde(default)]
    product_ids: Vec<Uuid>,
    group_ids: Vec<Uuid>,
    action: Option<String>,
    deadline_offset_hours: Option<i32>,
}

fn yes() -> bool {
    true
}

impl RuleBody {
    fn into_rule(self, rule_id: Uuid) -> ApiResult<Rule> {
        let action = self.action.unwrap_or_else(|| "Install".into());
        if action != "Install" && action != "OptionalInstall" {
            return Err(ApiError::bad_request(format!("action {action:?} is not Install or OptionalInstall")));
        }
        if self.name.trim().is_empty() || self.group_ids.is_empty() {
            return Err(ApiError::bad_request("a rule needs a name and at least one group"));
        }
        if self.deadline_offset_hours.is_some_and(|h| !(0..=24 * 365).contains(&h)) {
            return Err(ApiError::bad_request("deadline_offset_hours is within 0..8760"));
        }
        Ok(Rule {
            rule_id,
            name: self.name.trim().to_owned(),
            enabled: self.enabled,
            classification_ids: self.classification_ids,
            product_ids: self.product_ids,
            group_ids: self.group_ids,
            action,
            deadline_offset_hours: self.deadline_offset_hours,
        })
    }
}

async fn list(State(api): State<Arc<Api>>, Q(page): Q<PageQuery>) -> ApiResult<Json<Page<Rule>>> {
    // Rules are few: page over the sorted list.
    let all = rules::list(&api.pool).await?;
    let after: Option<Uuid> = page.after()?;
    let start = after.and_then(|a| all.iter().position(|r| r.rule_id == a)).map_or(0, |i| i + 1);
    let limit = page.limit()? as usize;
    let items: Vec<Rule> = all.iter().skip(start).take(limit).cloned().collect();
    let next = (start + limit < all.len()).then(|| items.last().map(|r| r.rule_id)).flatten();
    Ok(Json(Page::new(items, next)))
}

async fn create(State(api): State<Arc<Api>>, Body(b): Body<RuleBody>) -> ApiResult<(StatusCode, Json<Rule>)> {
    let rule = b.into_rule(Uuid::new_v4())?;
    rules::put(&api.pool, &rule).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

async fn one(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<Json<Rule>> {
    rules::get(&api.pool, id).await?.map(Json).ok_or_else(|| ApiError::not_found(format!("no rule {id}")))
}

async fn replace(State(api): State<Arc<Api>>, P(id): P<Uuid>, Body(b): Body<RuleBody>) -> ApiResult<Json<Rule>> {
    if rules::get(&api.pool, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no rule {id}")));
    }
    let rule = b.into_rule(id)?;
    rules::put(&api.pool, &rule).await?;
    Ok(Json(rule))
}

async fn delete(State(api): State<Arc<Api>>, P(id): P<Uuid>) -> ApiResult<StatusCode> {
    match rules::delete(&api.pool, id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("no rule {id}"))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApplyRequest {
    /// Only this rule (all enabled rules when absent).
    rule_id: Option<Uuid>,
    /// Over the whole catalog, not only what arrived since the rules last ran.
    everything: bool,
}

async fn apply(State(api): State<Arc<Api>>, Body(a): Body<ApplyRequest>) -> ApiResult<Json<Applied>> {
    if let Some(id) = a.rule_id
        && rules::get(&api.pool, id).await?.is_none()
    {
        return Err(ApiError::not_found(format!("no rule {id}")));
    }
    Ok(Json(rules::apply(&api.pool, a.rule_id, a.everything).await?))
}
