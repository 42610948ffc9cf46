//! Automatic approval rules.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// What a rule approves for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum RuleAction {
    #[default]
    Install,
    OptionalInstall,
}

/// A rule as written: everything but its id. Updates in any of the classifications AND
/// any of the products (an empty list matches all) are approved for each group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleBody {
    pub name: String,
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub enabled: bool,
    /// Any of these (empty = all).
    #[serde(default)]
    pub classification_ids: Vec<Uuid>,
    /// And any of these (empty = all).
    #[serde(default)]
    pub product_ids: Vec<Uuid>,
    #[schema(min_items = 1)]
    pub group_ids: Vec<Uuid>,
    #[serde(default)]
    pub action: Option<RuleAction>,
    /// The deadline this many hours after the approval; null = none.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 8760)]
    pub deadline_offset_hours: Option<i32>,
}

fn yes() -> bool {
    true
}

/// A rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    pub rule_id: Uuid,
    pub name: String,
    pub enabled: bool,
    /// Any of these (empty = all).
    pub classification_ids: Vec<Uuid>,
    /// And any of these (empty = all).
    pub product_ids: Vec<Uuid>,
    pub group_ids: Vec<Uuid>,
    pub action: RuleAction,
    /// The deadline this many hours after the approval; null = none.
    #[schema(required = true)]
    pub deadline_offset_hours: Option<i32>,
}

/// Which rules to apply now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplyRequest {
    /// One rule; default every enabled rule.
    #[serde(default)]
    pub rule_id: Option<Uuid>,
    /// Over the whole catalog, not only what arrived since the rules last ran.
    #[serde(default)]
    pub everything: bool,
}

/// What applying the rules did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Applied {
    /// Approvals made by rules.
    pub approved: u64,
    /// Approvals moved to their update's newest revision.
    pub revisions_followed: u64,
    /// Expired updates declined.
    pub expired_declined: u64,
}
