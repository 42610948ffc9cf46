//! Reports: status per update, and downstream servers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One update's status counts (as WSUS's GetSummariesPerUpdate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateSummary {
    pub update_id: Uuid,
    #[schema(required = true)]
    pub title: Option<String>,
    #[schema(required = true)]
    pub kb_article_id: Option<String>,
    pub installed: i64,
    pub needed: i64,
    pub downloaded: i64,
    pub failed: i64,
    pub installed_pending_reboot: i64,
    pub not_applicable: i64,
    pub unknown: i64,
}

/// A downstream server and its last rollup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DownstreamServer {
    pub server_id: Uuid,
    pub name: String,
    /// The server it syncs from; null = this one.
    #[schema(required = true)]
    pub parent_server_id: Option<Uuid>,
    #[schema(required = true)]
    pub version: Option<String>,
    pub is_replica: bool,
    #[schema(required = true)]
    pub last_sync_time: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_rollup_time: Option<DateTime<Utc>>,
    /// Computers known through it.
    pub computer_count: i64,
    #[schema(required = true)]
    pub computer_target_count: Option<i32>,
    #[schema(required = true)]
    pub computer_targets_needing_updates_count: Option<i32>,
    #[schema(required = true)]
    pub computer_targets_with_update_errors_count: Option<i32>,
    #[schema(required = true)]
    pub computers_up_to_date_count: Option<i32>,
}
