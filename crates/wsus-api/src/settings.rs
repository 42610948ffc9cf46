//! Administrator settings and the categories to choose products and classifications from.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// How often to synchronise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    /// 0 = manual only.
    #[schema(minimum = 0, maximum = 24)]
    pub syncs_per_day: u32,
}

/// How long data is kept before cleanup removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Retention {
    /// Raw client events.
    #[schema(minimum = 1)]
    pub event_days: u32,
    #[schema(minimum = 1)]
    pub sync_history_days: u32,
    /// Remove computers silent this long; 0 = never.
    pub stale_computer_days: u32,
}

/// Retention to change; what is left out stays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub event_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub sync_history_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_computer_days: Option<u32>,
}

/// When content files are fetched from the upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ContentMode {
    /// Files of approved updates only.
    Lazy,
    /// Every file as soon as its metadata arrives.
    Immediate,
    /// No content: clients download from Microsoft Update.
    CatalogOnly,
}

/// Who puts computers in groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Targeting {
    /// Groups are set through this API.
    Server,
    /// A computer's group is the one it names (Group Policy client-side targeting).
    Client,
}

/// The administrator settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    /// Products to synchronise (empty = all).
    pub products: Vec<Uuid>,
    /// Classifications to synchronise (empty = all).
    pub classifications: Vec<Uuid>,
    /// Enabled languages, e.g. en, de.
    pub languages: Vec<String>,
    pub sync_schedule: Schedule,
    pub content_mode: ContentMode,
    pub targeting: Targeting,
    pub retention: Retention,
}

/// Settings to change; what is left out stays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// Products to synchronise (empty = all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<Uuid>>,
    /// Classifications to synchronise (empty = all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifications: Option<Vec<Uuid>>,
    /// Enabled languages, e.g. en, de, or all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_mode: Option<ContentMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<Targeting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionChange>,
}

/// What kind of category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum CategoryType {
    Company,
    ProductFamily,
    Product,
    UpdateClassification,
}

impl CategoryType {
    pub fn as_str(self) -> &'static str {
        match self {
            CategoryType::Company => "Company",
            CategoryType::ProductFamily => "ProductFamily",
            CategoryType::Product => "Product",
            CategoryType::UpdateClassification => "UpdateClassification",
        }
    }
}

/// A product or classification the catalog knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Category {
    pub category_id: Uuid,
    /// Company, ProductFamily, Product or UpdateClassification.
    #[schema(required = true)]
    pub category_type: Option<String>,
    #[schema(required = true)]
    pub title: Option<String>,
}

/// Which categories a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CategoryFilter {
    /// Category type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub category_type: Option<CategoryType>,
}
