//! Computers and their statuses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A computer's overall state, as the WSUS console groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComputerState {
    /// Reported, and nothing needed or failed.
    UpToDate,
    /// Some update needed, downloaded or waiting for a reboot; none failed.
    NeedsUpdates,
    /// Some update failed.
    WithErrors,
    /// No status reported yet.
    NotReported,
}

/// An update's state on one computer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum UpdateState {
    Unknown,
    NotApplicable,
    Needed,
    Downloaded,
    Installed,
    Failed,
    InstalledPendingReboot,
}

/// How many updates (of a computer) or computers (of an update) are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusCounts {
    pub installed: i64,
    pub needed: i64,
    pub downloaded: i64,
    pub failed: i64,
    pub installed_pending_reboot: i64,
    pub not_applicable: i64,
    pub unknown: i64,
}

/// One computer, with its overall state and status counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Computer {
    pub computer_id: String,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub ip_address: Option<String>,
    #[schema(required = true)]
    pub os_description: Option<String>,
    /// Major.Minor.Build, e.g. 10.0.26100.
    #[schema(required = true)]
    pub os_version: Option<String>,
    #[schema(required = true)]
    pub os_locale: Option<String>,
    #[schema(required = true)]
    pub processor_architecture: Option<String>,
    #[schema(required = true)]
    pub manufacturer: Option<String>,
    #[schema(required = true)]
    pub model: Option<String>,
    #[schema(required = true)]
    pub bios_version: Option<String>,
    #[schema(required = true)]
    pub client_version: Option<String>,
    pub requested_target_group_names: Vec<String>,
    pub group_ids: Vec<Uuid>,
    #[schema(required = true)]
    pub downstream_server_id: Option<Uuid>,
    /// The downstream server the computer was rolled up from; null = this server.
    #[schema(required = true)]
    pub downstream_server_name: Option<String>,
    #[schema(required = true)]
    pub registered_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_contact_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_sync_time: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_reported_status_time: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_scan_at: Option<DateTime<Utc>>,
    pub state: ComputerState,
    pub counts: StatusCounts,
}

/// Which computers a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComputerFilter {
    /// Members of this group or its subgroups.
    pub group_id: Option<Uuid>,
    /// Computers rolled up from this downstream server.
    pub downstream_server_id: Option<Uuid>,
    /// true: only this server's own computers.
    pub local: Option<bool>,
    /// Overall state.
    pub state: Option<ComputerState>,
    /// Part of the name or id, any letter case.
    pub search: Option<String>,
}

/// One update's status on a computer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdateStatus {
    pub update_id: Uuid,
    #[schema(required = true)]
    pub title: Option<String>,
    #[schema(required = true)]
    pub kb_article_id: Option<String>,
    pub status: UpdateState,
    pub last_change_time: DateTime<Utc>,
}

/// Which statuses a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusFilter {
    /// Only this status (any letter case).
    #[param(value_type = Option<UpdateState>)]
    pub status: Option<String>,
}
