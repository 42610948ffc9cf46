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
    /// A Microsoft Teams-compatible incoming webhook (a MessageCard).
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
    /// (a Slack or Teams URL is its token).
    pub target: String,
    /// The environment variable of reporting (from a Secret), named WSUS_NOTIFY_KEY_*,
    /// holding the webhook's HMAC key; the key itself is never stored nor shown.
    #[schema(required = true)]
    pub secret_env: Option<String>,
    /// The events it is told of: updates_synchronized, sync_failed, cleanup_failed.
    pub events: Vec<String>,
    pub enabled: bool,
    pub changed_at: DateTime<Utc>,
}

/// A channel to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewNotificationChannel {
    pub name: String,
    pub kind: ChannelKind,
    pub target: String,
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
