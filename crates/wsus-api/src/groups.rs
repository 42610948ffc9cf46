//! Target groups and their members.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A target group; groups form a tree through `parent_group_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub group_id: Uuid,
    pub name: String,
    #[schema(required = true)]
    pub parent_group_id: Option<Uuid>,
    pub is_builtin: bool,
}

/// A group to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewGroup {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// Default: All Computers.
    #[serde(default)]
    pub parent_group_id: Option<Uuid>,
}

/// A group's new name or parent; what is left out stays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_group_id: Option<Uuid>,
}

/// Computers to put in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Members {
    #[schema(min_items = 1, max_items = 1000)]
    pub computer_ids: Vec<String>,
}

/// How many of the computers named were not in the group yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Added {
    pub added: u64,
}
