//! Notification settings and channels, as the API and the console change them.

use chrono::Utc;
use uuid::Uuid;
use wsus_api::{ChannelKind, NewNotificationChannel, NotificationSettings, NotificationSettingsChange};
use wsus_store::notifications::{self, Channel, EventKind};
use wsus_store::{StoreError, settings};

use super::{Actor, Admin, AdminError, AdminResult};
use crate::notify::{LANGUAGES, watch};

/// The environment variables a webhook's key may be read from: none of the server's own
/// secrets can be made to sign.
pub const SECRET_ENV_PREFIX: &str = "WSUS_NOTIFY_KEY_";
/// The environment variables a webhook's URL may be read from: none of the server's own
/// settings can be made a destination.
pub const TARGET_ENV_PREFIX: &str = "WSUS_NOTIFY_URL_";

fn invalid(why: impl Into<String>) -> AdminError {
    AdminError::Invalid(why.into())
}

/// Whether `variable` is `prefix` and a name (letters, digits, underscores).
fn variable_named(variable: &str, prefix: &str) -> bool {
    variable.len() > prefix.len()
        && variable.starts_with(prefix)
        && variable.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Admin {
    /// Adds a channel after checking it: a webhook URL or e-mail addresses (only when
    /// e-mail can be sent), known events, a key variable of the allowed names.
    pub async fn add_channel(&self, new: NewNotificationChannel) -> AdminResult<Channel> {
        if new.name.trim().is_empty() {
            return Err(invalid("name: empty"));
        }
        let target = new.target.trim();
        let target_env = new.target_env.as_deref().map(str::trim).filter(|v| !v.is_empty());
        let target_ok = match (new.kind, target_env) {
            (ChannelKind::Email, None) => {
                target.split(',').map(str::trim).all(|r| r.contains('@') && !r.contains(char::is_whitespace))
            }
            (ChannelKind::Email, Some(_)) => return Err(invalid("target_env: for webhooks only")),
            (_, None) => target.starts_with("https://") || target.starts_with("http://"),
            (_, Some(variable)) => {
                if !target.is_empty() {
                    return Err(invalid("target and target_env: one or the other"));
                }
                if !variable_named(variable, TARGET_ENV_PREFIX) {
                    return Err(invalid(format!(
                        "target_env: the name of an environment variable starting {TARGET_ENV_PREFIX}"
                    )));
                }
                true
            }
        };
        if !target_ok {
            return Err(invalid("target: an http:// or https:// URL, or for e-mail comma-separated addresses"));
        }
        if new.kind == ChannelKind::Email && !self.mail {
            return Err(invalid("e-mail is not set up: reporting needs WSUS_SMTP_URL and WSUS_SMTP_FROM"));
        }
        if new.events.is_empty() {
            return Err(invalid("events: at least one"));
        }
        if let Some(bad) = new.events.iter().find(|e| EventKind::parse(e).is_none()) {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(invalid(format!("events: {bad:?} is not one of {known:?}")));
        }
        if let Some(variable) = new.secret_env.as_deref().filter(|v| !v.is_empty())
            && !variable_named(variable, SECRET_ENV_PREFIX)
        {
            return Err(invalid(format!(
                "secret_env: the name of an environment variable starting {SECRET_ENV_PREFIX}"
            )));
        }
        let stored = Channel {
            channel_id: Uuid::new_v4(),
            name: new.name.trim().to_owned(),
            kind: new.kind.as_str().to_owned(),
            target: target.to_owned(),
            target_env: target_env.map(str::to_owned),
            secret_env: new.secret_env.filter(|v| !v.is_empty()),
            events: new.events,
            enabled: new.enabled,
            changed_at: Utc::now(),
        };
        notifications::put_channel(&self.pool, &stored).await.map_err(|e| match &e {
            StoreError::Database(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                AdminError::Conflict("a channel of that name exists")
            }
            _ => e.into(),
        })?;
        Ok(stored)
    }

    pub async fn remove_channel(&self, channel_id: Uuid) -> AdminResult<()> {
        if notifications::delete_channel(&self.pool, channel_id).await? {
            Ok(())
        } else {
            Err(AdminError::NotFound("no such channel"))
        }
    }

    /// Queues a test notification for a channel; its id.
    pub async fn test_channel(&self, channel_id: Uuid) -> AdminResult<i64> {
        let payload = serde_json::json!({ "requested_at": Utc::now() });
        notifications::enqueue_test(&self.pool, channel_id, &payload)
            .await?
            .ok_or(AdminError::NotFound("no such channel"))
    }

    pub async fn notification_settings(&self) -> AdminResult<NotificationSettings> {
        Ok(watch::settings(&self.pool).await?)
    }

    /// Changes the settings given (all checked first) and schedules the summary anew.
    pub async fn change_notification_settings(
        &self,
        by: Actor,
        change: NotificationSettingsChange,
    ) -> AdminResult<NotificationSettings> {
        let mut s = watch::settings(&self.pool).await?;
        let before = s.summary;
        if let Some(summary) = change.summary {
            s.summary.every = summary.every.unwrap_or(s.summary.every);
            s.summary.hour = summary.hour.unwrap_or(s.summary.hour);
            s.summary.weekday = summary.weekday.unwrap_or(s.summary.weekday);
            if s.summary.hour > 23 {
                return Err(invalid("summary.hour: 0 to 23 (UTC)"));
            }
            if !(1..=7).contains(&s.summary.weekday) {
                return Err(invalid("summary.weekday: 1 (Monday) to 7 (Sunday)"));
            }
        }
        if let Some(days) = change.not_reported_days {
            if !(1..=365).contains(&days) {
                return Err(invalid("not_reported_days: 1 to 365"));
            }
            s.not_reported_days = days;
        }
        if let Some(hours) = change.rollup_silent_hours {
            if !(1..=8760).contains(&hours) {
                return Err(invalid("rollup_silent_hours: 1 to 8760"));
            }
            s.rollup_silent_hours = hours;
        }
        if let Some(language) = change.language {
            if !LANGUAGES.contains(&language.as_str()) {
                return Err(invalid(format!("language: one of {LANGUAGES:?}")));
            }
            s.language = language;
        }
        settings::put(&self.pool, watch::SETTINGS, &s, by.name()).await?;
        // Only a new schedule moves the next summary: a due one is not skipped by, say, a
        // change of language.
        if s.summary != before {
            let next = watch::next_summary(&s.summary, Utc::now());
            notifications::set_schedule(&self.pool, EventKind::StatusSummary, next).await?;
        }
        Ok(s)
    }
}
