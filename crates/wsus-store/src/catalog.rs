//! The catalog version: what gateways compare to know their in-memory index is current.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use crate::Result;

/// Channel notified (payload: the new version) when a catalog change commits.
pub const CATALOG_CHANNEL: &str = "wsus_catalog";
/// Channel notified (payload: the key) when an administrator setting changes.
pub const SETTINGS_CHANNEL: &str = "wsus_settings";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogVersion {
    pub version: i64,
    pub changed_at: DateTime<Utc>,
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.catalog.version"))]
pub async fn version(pool: &PgPool) -> Result<CatalogVersion> {
    let (version, changed_at) = sqlx::query_as("SELECT version, changed_at FROM catalog_state").fetch_one(pool).await?;
    Ok(CatalogVersion { version, changed_at })
}

/// Bumps the version inside the caller's transaction and returns the new one, to stamp the
/// changed rows with. Holding the row lock until commit serialises catalog writers, so
/// versions become visible in order.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.catalog.bump"))]
pub async fn bump<'c>(executor: impl PgExecutor<'c>) -> Result<i64> {
    let (v,): (i64,) = sqlx::query_as("SELECT wsus_bump_catalog_version()").fetch_one(executor).await?;
    Ok(v)
}
