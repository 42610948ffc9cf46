//! Updates, their license terms and approvals.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::StatusCounts;

/// What kind of update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum UpdateType {
    Software,
    Driver,
}

/// An update (its latest revision), as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Update {
    pub update_id: Uuid,
    pub revision_number: i32,
    #[schema(required = true)]
    pub title: Option<String>,
    #[schema(required = true)]
    pub kb_article_id: Option<String>,
    pub update_type: UpdateType,
    pub publication_state: String,
    #[schema(required = true)]
    pub creation_date: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub eula_id: Option<Uuid>,
    pub eula_accepted: bool,
    pub declined: bool,
    /// Groups with a live approval.
    pub approved_group_ids: Vec<Uuid>,
    /// Products and classifications.
    pub category_ids: Vec<Uuid>,
    /// Updates in the catalog that supersede it.
    pub superseded_by: Vec<Uuid>,
}

/// An update with its approvals and how many computers are in each state. Its fields
/// are [`Update`]'s written out, not flattened: a flattened type is an `allOf` in the
/// document, and clients (and the schema test) read one object's properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdateDetail {
    pub update_id: Uuid,
    pub revision_number: i32,
    #[schema(required = true)]
    pub title: Option<String>,
    #[schema(required = true)]
    pub kb_article_id: Option<String>,
    pub update_type: UpdateType,
    pub publication_state: String,
    #[schema(required = true)]
    pub creation_date: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub eula_id: Option<Uuid>,
    pub eula_accepted: bool,
    pub declined: bool,
    /// Groups with a live approval.
    pub approved_group_ids: Vec<Uuid>,
    /// Products and classifications.
    pub category_ids: Vec<Uuid>,
    /// Updates in the catalog that supersede it.
    pub superseded_by: Vec<Uuid>,
    pub approvals: Vec<Approval>,
    pub status_counts: StatusCounts,
}

impl UpdateDetail {
    pub fn new(u: Update, approvals: Vec<Approval>, status_counts: StatusCounts) -> Self {
        Self {
            update_id: u.update_id,
            revision_number: u.revision_number,
            title: u.title,
            kb_article_id: u.kb_article_id,
            update_type: u.update_type,
            publication_state: u.publication_state,
            creation_date: u.creation_date,
            eula_id: u.eula_id,
            eula_accepted: u.eula_accepted,
            declined: u.declined,
            approved_group_ids: u.approved_group_ids,
            category_ids: u.category_ids,
            superseded_by: u.superseded_by,
            approvals,
            status_counts,
        }
    }
}

/// Whether an update is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Approved,
    Unapproved,
    Declined,
}

/// Which updates a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateFilter {
    /// Part of the title or KB number.
    pub search: Option<String>,
    /// KB number, with or without the KB prefix.
    pub kb: Option<String>,
    /// Classification id.
    pub classification: Option<Uuid>,
    /// Product id.
    pub product: Option<Uuid>,
    /// Approval state.
    pub approval: Option<ApprovalState>,
}

/// Counting only the computers of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InGroup {
    /// Only computers of this group and its subgroups.
    pub group_id: Option<Uuid>,
}

/// In which language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Language {
    /// Language (default en).
    pub language: Option<String>,
}

/// An update's license terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Eula {
    pub eula_id: Uuid,
    pub accepted: bool,
    pub text: String,
}

/// What an approval does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Action {
    Install,
    OptionalInstall,
    Uninstall,
    PreDeploymentCheck,
    Block,
}

/// A live approval of an update for a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    pub deployment_id: Uuid,
    pub update_id: Uuid,
    #[schema(required = true)]
    pub revision_number: Option<i32>,
    pub group_id: Uuid,
    pub action: Action,
    #[schema(required = true)]
    pub deadline: Option<DateTime<Utc>>,
    pub is_assigned: bool,
    pub download_priority: i16,
    #[schema(required = true)]
    pub admin_name: Option<String>,
    pub last_change_time: DateTime<Utc>,
}

/// What an administrator may approve an update for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ApprovalAction {
    #[default]
    Install,
    Uninstall,
}

/// An approval to make.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalRequest {
    /// Install (default) or Uninstall.
    #[serde(default)]
    pub action: Option<ApprovalAction>,
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    /// Accept the update's license terms with this approval.
    #[serde(default)]
    pub accept_eula: bool,
}
