//! Administrator settings: one JSON value per key in `admin_setting`, typed here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;
pub use wsus_config::ContentMode;

use crate::{Result, StoreError};

/// Key of the MS-WUSP client configuration (GetConfig); its `updated_at` is LastChange.
pub const CLIENT_CONFIG: &str = "client_config";
/// Product category GUIDs to synchronise (JSON array; empty = every product).
pub const SYNC_PRODUCTS: &str = "sync.products";
/// Classification GUIDs to synchronise (JSON array; empty = every classification).
pub const SYNC_CLASSIFICATIONS: &str = "sync.classifications";
/// `{"syncs_per_day": n}`; 0 = manual only.
pub const SYNC_SCHEDULE: &str = "sync.schedule";
/// `"lazy"`, `"immediate"` or `"catalog-only"`.
pub const CONTENT_MODE: &str = "content.mode";
/// How long things are kept ([`Retention`]).
pub const RETENTION: &str = "retention";

/// How long data is kept before cleanup removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Retention {
    /// Raw client events.
    pub event_days: u32,
    /// Synchronisation history.
    pub sync_history_days: u32,
    /// Computers that have not contacted this server (or been rolled up) for this long are removed; 0 = never.
    pub stale_computer_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self { event_days: 90, sync_history_days: 365, stale_computer_days: 0 }
    }
}

/// What GetConfig tells clients, apart from the protocol constants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientConfig {
    pub is_registration_required: bool,
    pub max_extended_updates_per_request: u32,
    /// UNC path of the package share clients may use for repair; omitted when None.
    pub package_server_share: Option<String>,
    pub client_reporting_level: u32,
    /// Updates per SyncUpdates page (a real Windows Server 2025 WSUS sends 30).
    pub sync_updates_page_size: u32,
    /// Client-side targeting: a computer's group is the one it names (Group Policy
    /// "Enable client-side targeting"); otherwise groups are set through the API.
    pub client_side_targeting: bool,
}

impl Default for ClientConfig {
    // The values a real Windows Server 2025 WSUS announces.
    fn default() -> Self {
        Self {
            is_registration_required: true,
            max_extended_updates_per_request: 50,
            package_server_share: None,
            client_reporting_level: 2,
            sync_updates_page_size: 30,
            client_side_targeting: false,
        }
    }
}

impl ClientConfig {
    /// The default for a server named `fqdn`, with WSUS's package share path.
    pub fn for_server(fqdn: &str) -> Self {
        Self { package_server_share: Some(format!(r"\\{fqdn}\UpdateServicesPackages")), ..Self::default() }
    }
}

/// A setting with the time it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped<T> {
    pub value: T,
    pub updated_at: DateTime<Utc>,
}

/// Reads one setting; None when it was never set.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.settings.get"))]
pub async fn get<T: for<'de> Deserialize<'de>>(pool: &PgPool, key: &str) -> Result<Option<Stamped<T>>> {
    let row: Option<(serde_json::Value, DateTime<Utc>)> =
        sqlx::query_as("SELECT value, updated_at FROM admin_setting WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?;
    row.map(|(value, updated_at)| {
        serde_json::from_value(value)
            .map(|value| Stamped { value, updated_at })
            .map_err(|e| StoreError::BadSetting { key: key.to_owned(), message: e.to_string() })
    })
    .transpose()
}

/// Writes one setting (its `updated_at` becomes now).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.settings.put"))]
pub async fn put<T: Serialize>(pool: &PgPool, key: &str, value: &T, by: &str) -> Result<()> {
    let json = serde_json::to_value(value)
        .map_err(|e| StoreError::BadSetting { key: key.to_owned(), message: e.to_string() })?;
    sqlx::query(
        "INSERT INTO admin_setting (key, value, updated_by) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by",
    )
    .bind(key)
    .bind(json)
    .bind(by)
    .execute(pool)
    .await?;
    Ok(())
}

/// Writes a setting only if it is absent (first-start seeding).
pub(crate) async fn put_if_absent<'c, T: Serialize>(executor: impl PgExecutor<'c>, key: &str, value: &T) -> Result<()> {
    let json = serde_json::to_value(value)
        .map_err(|e| StoreError::BadSetting { key: key.to_owned(), message: e.to_string() })?;
    sqlx::query(
        "INSERT INTO admin_setting (key, value, updated_by) VALUES ($1, $2, 'seed') ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(json)
    .execute(executor)
    .await?;
    Ok(())
}

/// The administrator settings the environment seeds on first start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub products: Vec<Uuid>,
    pub classifications: Vec<Uuid>,
    pub languages: Vec<String>,
    pub syncs_per_day: u32,
    pub content_mode: ContentMode,
}

/// When content is fetched: the setting, lazy when unset.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.settings.content_mode"))]
pub async fn content_mode(pool: &PgPool) -> Result<ContentMode> {
    Ok(get::<ContentMode>(pool, CONTENT_MODE).await?.map(|s| s.value).unwrap_or_default())
}

/// Short names of the languages enabled for sync and service.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.settings.enabled_languages"))]
pub async fn enabled_languages(pool: &PgPool) -> Result<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT short_name FROM language WHERE enabled ORDER BY lcid").fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}

/// Key of the cookie key generated when `WSUS_COOKIE_KEYS` is unset (shared by replicas).
const GENERATED_COOKIE_KEY: &str = "secret.generated_cookie_key";

/// The cookie key every replica shares when none is configured: generated once, stored.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.settings.generated_cookie_key"))]
pub async fn generated_cookie_key(pool: &PgPool) -> Result<[u8; 32]> {
    use base64::Engine as _;
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh)
        .map_err(|e| StoreError::BadSetting { key: GENERATED_COOKIE_KEY.into(), message: e.to_string() })?;
    let b64 = base64::engine::general_purpose::STANDARD;
    sqlx::query(
        "INSERT INTO admin_setting (key, value, updated_by) VALUES ($1, to_jsonb($2::text), 'generated') ON CONFLICT (key) DO NOTHING",
    )
    .bind(GENERATED_COOKIE_KEY)
    .bind(b64.encode(fresh))
    .execute(pool)
    .await?;
    let stored = get::<String>(pool, GENERATED_COOKIE_KEY)
        .await?
        .ok_or_else(|| StoreError::BadSetting { key: GENERATED_COOKIE_KEY.into(), message: "missing".into() })?;
    b64.decode(stored.value.as_bytes()).ok().and_then(|v| <[u8; 32]>::try_from(v).ok()).ok_or_else(|| {
        StoreError::BadSetting { key: GENERATED_COOKIE_KEY.into(), message: "not 32 bytes of base64".into() }
    })
}

/// `{"syncs_per_day": n}` under [`SYNC_SCHEDULE`]; 0 = manual only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub syncs_per_day: u32,
}

impl Schedule {
    /// The time between two slots.
    pub fn interval(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(86_400 / i64::from(self.syncs_per_day.clamp(1, 24 * 60)))
    }

    /// A server's offset into each interval, derived from its id: stable across restarts
    /// and replicas, and spreading many downstream servers of one upstream over the
    /// interval instead of all asking at midnight.
    pub fn offset(&self, server_id: Uuid) -> chrono::TimeDelta {
        let interval = self.interval().num_seconds().max(1) as u64;
        let n = u64::from_le_bytes(server_id.as_bytes()[..8].try_into().expect("16 bytes"));
        chrono::TimeDelta::seconds((n % interval) as i64)
    }

    /// The first slot strictly after `now` for `server_id`; None when syncs are manual only.
    pub fn next_after(&self, now: DateTime<Utc>, server_id: Uuid) -> Option<DateTime<Utc>> {
        (self.syncs_per_day > 0).then(|| next_slot(now, self.interval(), self.offset(server_id)))
    }
}

/// The first of the slots `midnight + offset + k * interval` strictly after `now`.
pub fn next_slot(now: DateTime<Utc>, interval: chrono::TimeDelta, offset: chrono::TimeDelta) -> DateTime<Utc> {
    let midnight = now.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let mut slot = midnight + offset;
    while slot <= now {
        slot += interval;
    }
    slot
}

/// Enables exactly these languages (short names); Err with the unknown ones, changing nothing.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.settings.set_enabled_languages"))]
pub async fn set_enabled_languages(
    pool: &PgPool,
    short_names: &[String],
) -> Result<std::result::Result<(), Vec<String>>> {
    let mut tx = pool.begin().await?;
    let unknown: Vec<(String,)> = sqlx::query_as(
        "SELECT n FROM unnest($1::text[]) AS n WHERE NOT EXISTS (SELECT 1 FROM language WHERE short_name = lower(n))",
    )
    .bind(short_names)
    .fetch_all(&mut *tx)
    .await?;
    if !unknown.is_empty() {
        return Ok(Err(unknown.into_iter().map(|(n,)| n).collect()));
    }
    let version = crate::catalog::bump(&mut *tx).await?;
    let lower: Vec<String> = short_names.iter().map(|n| n.to_lowercase()).collect();
    sqlx::query(
        "UPDATE language SET enabled = short_name = ANY($1), changed_version = $2 WHERE enabled <> (short_name = ANY($1))",
    )
    .bind(&lower)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// A product or classification the catalog knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Category {
    pub category_id: Uuid,
    /// Company, ProductFamily, Product or UpdateClassification.
    pub category_type: Option<String>,
    pub title: Option<String>,
}

/// Categories of the catalog (all, or of one type), by title.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.settings.categories"))]
pub async fn categories(pool: &PgPool, category_type: Option<&str>) -> Result<Vec<Category>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT ON (update_id) update_id AS category_id, category_type, title FROM revision \
         WHERE update_type = 'Category' AND ($1::text IS NULL OR category_type = $1) \
         ORDER BY update_id, revision_number DESC",
    )
    .bind(category_type)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_slot_follows_the_schedule_and_manual_has_none() {
        let id = Uuid::new_v4();
        let now = "2026-11-26T11:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(Schedule { syncs_per_day: 0 }.next_after(now, id), None);
        let four = Schedule { syncs_per_day: 4 };
        let next = four.next_after(now, id).unwrap();
        assert!(next > now && next - now <= four.interval(), "{next}");
        let midnight = now.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert_eq!((next - midnight - four.offset(id)).num_seconds() % four.interval().num_seconds(), 0, "on a slot");
    }
}
