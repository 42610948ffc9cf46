//! Administrator settings: what to synchronise (products, classifications, languages),
//! when (schedule), content mode, targeting mode and retention; and the categories the
//! catalog offers to choose from.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;
use wsus_api::{Category, CategoryFilter, Page, PageQuery, Settings, SettingsChange, Targeting};
use wsus_store::settings::{self, ClientConfig, Schedule};

use super::{Api, ApiError, ApiResult, Body, Paging, Q, Routes, page, wire};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/settings", get).add("PATCH", "/api/v1/settings", change).add(
        "GET",
        "/api/v1/categories",
        categories,
    )
}

async fn read<T: for<'de> Deserialize<'de> + Default>(api: &Api, key: &str) -> ApiResult<T> {
    Ok(settings::get::<T>(&api.pool, key).await?.map(|s| s.value).unwrap_or_default())
}

async fn view(api: &Api) -> ApiResult<Settings> {
    let client: ClientConfig = read(api, settings::CLIENT_CONFIG).await?;
    Ok(Settings {
        products: read(api, settings::SYNC_PRODUCTS).await?,
        classifications: read(api, settings::SYNC_CLASSIFICATIONS).await?,
        languages: settings::enabled_languages(&api.pool).await?,
        sync_schedule: wire::schedule(
            settings::get::<Schedule>(&api.pool, settings::SYNC_SCHEDULE)
                .await?
                .map_or(Schedule { syncs_per_day: 0 }, |s| s.value),
        ),
        content_mode: wire::content_mode(settings::content_mode(&api.pool).await?),
        targeting: if client.client_side_targeting { Targeting::Client } else { Targeting::Server },
        retention: wire::retention(read(api, settings::RETENTION).await?),
    })
}

#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", summary = "Administrator settings",
    responses((status = 200, body = Settings)))]
async fn get(State(api): State<Arc<Api>>) -> ApiResult<Json<Settings>> {
    Ok(Json(view(&api).await?))
}

/// Changes the settings given; the others stay. Everything is checked before anything is written.
#[utoipa::path(patch, path = "/api/v1/settings", tag = "settings",
    summary = "Change some settings (all are checked before any is written)",
    request_body = SettingsChange, responses((status = 200, body = Settings)))]
async fn change(State(api): State<Arc<Api>>, Body(c): Body<SettingsChange>) -> ApiResult<Json<Settings>> {
    if c.sync_schedule.is_some_and(|s| s.syncs_per_day > 24) {
        return Err(ApiError::bad_request("sync_schedule.syncs_per_day is within 0..24"));
    }
    let retention = match c.retention {
        None => None,
        Some(change) => {
            let mut r: settings::Retention = read(&api, settings::RETENTION).await?;
            r.event_days = change.event_days.unwrap_or(r.event_days);
            r.sync_history_days = change.sync_history_days.unwrap_or(r.sync_history_days);
            r.stale_computer_days = change.stale_computer_days.unwrap_or(r.stale_computer_days);
            if r.event_days == 0 || r.sync_history_days == 0 {
                return Err(ApiError::bad_request("retention: event_days and sync_history_days are at least 1"));
            }
            Some(r)
        }
    };
    let by = "api:admin";
    if let Some(languages) = &c.languages
        && let Err(unknown) = settings::set_enabled_languages(&api.pool, languages).await?
    {
        return Err(ApiError::bad_request(format!("unknown languages: {}", unknown.join(", "))));
    }
    if let Some(p) = &c.products {
        settings::put(&api.pool, settings::SYNC_PRODUCTS, p, by).await?;
    }
    if let Some(p) = &c.classifications {
        settings::put(&api.pool, settings::SYNC_CLASSIFICATIONS, p, by).await?;
    }
    if let Some(s) = c.sync_schedule {
        settings::put(&api.pool, settings::SYNC_SCHEDULE, &wire::stored_schedule(s), by).await?;
    }
    if let Some(m) = c.content_mode {
        settings::put(&api.pool, settings::CONTENT_MODE, &wire::stored_content_mode(m), by).await?;
    }
    if let Some(r) = &retention {
        settings::put(&api.pool, settings::RETENTION, r, by).await?;
    }
    if let Some(t) = c.targeting {
        let mut client: ClientConfig = read(&api, settings::CLIENT_CONFIG).await?;
        client.client_side_targeting = t == Targeting::Client;
        settings::put(&api.pool, settings::CLIENT_CONFIG, &client, by).await?;
    }
    Ok(Json(view(&api).await?))
}

#[utoipa::path(get, path = "/api/v1/categories", tag = "settings",
    summary = "Products and classifications the catalog knows",
    params(PageQuery, CategoryFilter), responses((status = 200, body = Page<Category>)))]
async fn categories(
    State(api): State<Arc<Api>>,
    Q(paging): Q<PageQuery>,
    Q(f): Q<CategoryFilter>,
) -> ApiResult<Json<Page<Category>>> {
    let after: Option<Uuid> = paging.after()?;
    let limit = paging.limit()? as usize;
    let all = settings::categories(&api.pool, f.category_type.map(|t| t.as_str())).await?;
    let items: Vec<Category> = all
        .into_iter()
        .filter(|c| after.is_none_or(|a| c.category_id > a))
        .take(limit + 1)
        .map(wire::category)
        .collect();
    let more = items.len() > limit;
    let items: Vec<Category> = items.into_iter().take(limit).collect();
    let next = if more { items.last().map(|c| c.category_id) } else { None };
    Ok(Json(page(items, next)))
}
