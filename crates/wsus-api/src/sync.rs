//! Synchronisation and cleanup runs.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Manual,
    Cli,
    Startup,
}

/// How a run ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl Trigger {
    pub const ALL: [Trigger; 4] = [Trigger::Schedule, Trigger::Manual, Trigger::Cli, Trigger::Startup];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Cli => "cli",
            Trigger::Startup => "startup",
        }
    }

    /// The trigger of this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl RunResult {
    pub const ALL: [RunResult; 4] = [RunResult::Running, RunResult::Succeeded, RunResult::Failed, RunResult::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Running => "running",
            RunResult::Succeeded => "succeeded",
            RunResult::Failed => "failed",
            RunResult::Cancelled => "cancelled",
        }
    }

    /// The result of this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One synchronisation attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncRun {
    pub sync_id: i64,
    pub upstream_url: String,
    pub trigger: Trigger,
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    pub result: RunResult,
    #[schema(required = true)]
    pub phase: Option<String>,
    pub done: i64,
    pub total: i64,
    #[schema(required = true)]
    pub error: Option<String>,
    pub revisions_new: i32,
    pub revisions_updated: i32,
    pub deployments_changed: i32,
    pub files_queued: i32,
    pub bytes_received: i64,
    /// Documents the upstream sent that could not be read: set aside and asked for again
    /// by every later sync.
    pub revisions_quarantined: i32,
}

/// The running synchronisation, if any, and the last finished one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncStatus {
    /// Null when no upstream server is configured.
    #[schema(required = true)]
    pub upstream_url: Option<String>,
    pub replica: bool,
    #[schema(required = true)]
    pub running: Option<SyncRun>,
    #[schema(required = true)]
    pub last: Option<SyncRun>,
}

/// A synchronisation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncStarted {
    pub sync_id: i64,
}

/// One cleanup run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CleanupRun {
    pub run_id: i64,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    pub result: RunResult,
    /// The job running now (or that failed).
    #[schema(required = true)]
    pub job: Option<String>,
    /// By job: expired_declined, superseded_declined, obsolete_revisions_deleted,
    /// content_files_deleted, computers_removed, downstream_servers_removed,
    /// history_purged, events_purged.
    pub counts: BTreeMap<String, i64>,
    #[schema(required = true)]
    pub error: Option<String>,
}

/// A cleanup run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CleanupStarted {
    pub run_id: i64,
}
