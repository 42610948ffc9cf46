//! Downstream servers (MS-WSUSSS DSS table) as the management API shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DownstreamServer {
    pub server_id: Uuid,
    pub name: String,
    /// The server it syncs from; None = this one.
    pub parent_server_id: Option<Uuid>,
    pub version: Option<String>,
    pub is_replica: bool,
    pub last_sync_time: Option<DateTime<Utc>>,
    pub last_rollup_time: Option<DateTime<Utc>>,
    /// Computers known through it.
    pub computer_count: i64,
    pub computer_target_count: Option<i32>,
    pub computer_targets_needing_updates_count: Option<i32>,
    pub computer_targets_with_update_errors_count: Option<i32>,
    pub computers_up_to_date_count: Option<i32>,
}

/// A page of downstream servers by name.
pub async fn page(
    pool: &PgPool,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<(Vec<DownstreamServer>, Option<(String, Uuid)>)> {
    let (name, id) = after.unwrap_or_default();
    let rows: Vec<DownstreamServer> = sqlx::query_as(
        "SELECT d.server_id, d.fqdn AS name, d.parent_server_id, d.version, d.is_replica, d.last_sync_time, \
            d.last_rollup_time, (SELECT count(*) FROM computer c WHERE c.parent_server_id = d.server_id) AS computer_count, \
            d.computer_target_count, d.computer_targets_needing_updates_count, \
            d.computer_targets_with_update_errors_count, d.computers_up_to_date_count \
         FROM downstream_server d WHERE (lower(d.fqdn), d.server_id) > ($1, $2) \
         ORDER BY lower(d.fqdn), d.server_id LIMIT $3",
    )
    .bind(name)
    .bind(id)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(crate::keyset(rows, limit, |d| (d.name.to_lowercase(), d.server_id), |d| d))
}
