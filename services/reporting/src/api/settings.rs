//! Administrator settings: what to synchronise (products, classifications, languages),
//! when (schedule), content mode, targeting mode and retention; and the categories the
//! catalog offers to choose from.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wsus_store::settings::{self, Category, ClientConfig, ContentMode, Retention, Schedule};

use super::{Api, ApiError, ApiResult, Body, Page, PageQuery, Q, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/settings", get).add("PATCH", "/api/v1/settings", change).add(
        "GET",
        "/api/v1/categories",
        categories,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Targeting {
    /// Groups are set through the API.
    Server,
    /// A computer's group is the one it names (Group Policy client-side targeting).
    Client,
}

#[derive(Debug, Serialize)]
struct SettingsView {
    products: Vec<Uuid>,
    classifications: Vec<Uuid>,
    languages: Vec<String>,
    sync_schedule: Schedule,
    content_mode: ContentMode,
    targeting: Targeting,
    retention: Retention,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsChange {
    products: Option<Vec<Uuid>>,
    classifications: Option<Vec<Uuid>>,
    languages: Option<Vec<String>>,
    sync_schedule: Option<Schedule>,
    content_mode: Option<ContentMode>,
    targeting: Option<Targeting>,
    retention: Option<Retention>,
}

async fn read<T: for<'de> Deserialize<'de> + Default>(api: &Api, key: &str) -> ApiResult<T> {
    Ok(settings::get::<T>(&api.pool, key).await?.map(|s| s.value).unwrap_or_default())
}

async fn view(api: &Api) -> ApiResult<SettingsView> {
    let client: ClientConfig = read(api, settings::CLIENT_CONFIG).await?;
    Ok(SettingsView {
        products: read(api, settings::SYNC_PRODUCTS).await?,
        classifications: read(api, settings::SYNC_CLASSIFICATIONS).await?,
        languages: settings::enabled_languages(&api.pool).await?,
        sync_schedule: settings::get::<Schedule>(&api.pool, settings::SYNC_SCHEDULE)
            .await?
            .map_or(Schedule { syncs_per_day: 0 }, |s| s.value),
        content_mode: settings::content_mode(&api.pool).await?,
        targeting: if client.client_side_targeting { Targeting::Client } else { Targeting::Server },
        retention: read(api, settings::RETENTION).await?,
    })
}

async fn get(State(api): State<Arc<Api>>) -> ApiResult<Json<SettingsView>> {
    Ok(Json(view(&api).await?))
}

/// Changes the settings given; the others stay. Everything is checked before anything is written.
async fn change(State(api): State<Arc<Api>>, Body(c): Body<SettingsChange>) -> ApiResult<Json<SettingsView>> {
    if c.sync_schedule.is_some_and(|s| s.syncs_per_day > 24) {
        return Err(ApiError::bad_request("sync_schedule.syncs_per_day is within 0..24"));
    }
    if c.retention.is_some_and(|r| r.event_days == 0 || r.sync_history_days == 0) {
        return Err(ApiError::bad_request("retention: event_days and sync_history_days are at least 1"));
    }
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
    if let Some(s) = &c.sync_schedule {
        settings::put(&api.pool, settings::SYNC_SCHEDULE, s, by).await?;
    }
    if let Some(m) = &c.content_mode {
        settings::put(&api.pool, settings::CONTENT_MODE, m, by).await?;
    }
    if let Some(r) = &c.retention {
        settings::put(&api.pool, settings::RETENTION, r, by).await?;
    }
    if let Some(t) = c.targeting {
        let mut client: ClientConfig = read(&api, settings::CLIENT_CONFIG).await?;
        client.client_side_targeting = t == Targeting::Client;
        settings::put(&api.pool, settings::CLIENT_CONFIG, &client, by).await?;
    }
    Ok(Json(view(&api).await?))
}

#[derive(Debug, Deserialize)]
struct CategoryFilter {
    /// Company, ProductFamily, Product or UpdateClassification.
    #[serde(rename = "type")]
    category_type: Option<String>,
}

async fn categories(
    State(api): State<Arc<Api>>,
    Q(page): Q<PageQuery>,
    Q(f): Q<CategoryFilter>,
) -> ApiResult<Json<Page<Category>>> {
    let after: Option<Uuid> = page.after()?;
    let limit = page.limit()? as usize;
    let all = settings::categories(&api.pool, f.category_type.as_deref()).await?;
    let items: Vec<Category> =
        all.into_iter().filter(|c| after.is_none_or(|a| c.category_id > a)).take(limit + 1).collect();
    let more = items.len() > limit;
    let items: Vec<Category> = items.into_iter().take(limit).collect();
    let next = if more { items.last().map(|c| c.category_id) } else { None };
    Ok(Json(Page::new(items, next)))
}
