//! Notifications: the channels administrators are told through, and what was sent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How a channel is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A JSON POST (the documented schema), signed with HMAC-SHA256 when a secret is set.
    Webhook,
    /// A Slack-compatible incoming webhook (`{"text": ...}`).
    Slack,
    /// A Microsoft Teams-compatible incoming webhook (an Adaptive Card: a Teams Workflows
    /// webhook or a classic incoming webhook).
    Teams,
    /// E-mail (plain text and HTML) through the SMTP server of WSUS_SMTP_URL.
    Email,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Email => "email",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [ChannelKind::Webhook, ChannelKind::Slack, ChannelKind::Teams, ChannelKind::Email]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationChannel {
    pub channel_id: Uuid,
    pub name: String,
    pub kind: ChannelKind,
    /// The e-mail recipients (comma-separated), or the webhook's URL shown by its host only
    /// (a Slack or Teams URL is its token); empty when the URL is in `target_env`.
    pub target: String,
    /// The environment variable of reporting (from a Secret), named WSUS_NOTIFY_URL_*,
    /// holding the webhook's URL, when the URL is kept there rather than in the database.
    #[schema(required = true)]
    pub target_env: Option<String>,
    /// The environment variable of reporting (from a Secret), named WSUS_NOTIFY_KEY_*,
    /// holding the webhook's HMAC key; the key itself is never stored nor shown.
    #[schema(required = true)]
    pub secret_env: Option<String>,
    /// The events it is told of: updates_synchronized, sync_failed, cleanup_failed, status_summary,
    /// installs_failed, downstream_silent, certificate_expiring.
    pub events: Vec<String>,
    pub enabled: bool,
    pub changed_at: DateTime<Utc>,
}

/// A channel to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewNotificationChannel {
    pub name: String,
    pub kind: ChannelKind,
    /// The webhook's URL or the e-mail recipients (comma-separated); leave it out when
    /// `target_env` names the variable holding the URL.
    #[serde(default)]
    pub target: String,
    /// For a webhook: reporting's environment variable (WSUS_NOTIFY_URL_*, from a Secret)
    /// holding its URL, so the URL (a Slack or Teams token) is not stored.
    #[serde(default)]
    pub target_env: Option<String>,
    #[serde(default)]
    pub secret_env: Option<String>,
    pub events: Vec<String>,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

/// A notification and how its delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub notification_id: i64,
    pub channel_id: Uuid,
    pub event_kind: String,
    pub created_at: DateTime<Utc>,
    /// pending, sending, sent or failed (given up).
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[schema(required = true)]
    pub sent_at: Option<DateTime<Utc>>,
}

/// A test notification queued for a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TestQueued {
    pub notification_id: i64,
}

/// How often the status summary is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SummaryEvery {
    #[default]
    Never,
    Day,
    Week,
}

impl SummaryEvery {
    pub fn as_str(self) -> &'static str {
        match self {
            SummaryEvery::Never => "never",
            SummaryEvery::Day => "day",
            SummaryEvery::Week => "week",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [SummaryEvery::Never, SummaryEvery::Day, SummaryEvery::Week].into_iter().find(|e| e.as_str() == name)
    }
}

/// When the status summary is sent (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct SummarySchedule {
    pub every: SummaryEvery,
    /// The hour of the day, 0..23 (UTC).
    pub hour: u32,
    /// For a weekly summary, the day: 1 Monday … 7 Sunday.
    pub weekday: u32,
}

impl Default for SummarySchedule {
    fn default() -> Self {
        Self { every: SummaryEvery::Never, hour: 7, weekday: 1 }
    }
}

/// What the notifications watch and when the summary is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct NotificationSettings {
    pub summary: SummarySchedule,
    /// The summary counts computers that have not reported for this many days.
    pub not_reported_days: u32,
    /// A downstream server that has not rolled up for this many hours is told of.
    pub rollup_silent_hours: u32,
    /// The language of the messages: en, de or fr.
    pub language: String,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            summary: SummarySchedule::default(),
            not_reported_days: 7,
            rollup_silent_hours: 48,
            language: "en".to_owned(),
        }
    }
}

/// A change of the summary's schedule; what is left out stays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SummaryScheduleChange {
    #[serde(default)]
    pub every: Option<SummaryEvery>,
    #[serde(default)]
    pub hour: Option<u32>,
    #[serde(default)]
    pub weekday: Option<u32>,
}

/// The settings to change; those left out stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationSettingsChange {
    #[serde(default)]
    pub summary: Option<SummaryScheduleChange>,
    #[serde(default)]
    pub not_reported_days: Option<u32>,
    #[serde(default)]
    pub rollup_silent_hours: Option<u32>,
    #[serde(default)]
    pub language: Option<String>,
}
