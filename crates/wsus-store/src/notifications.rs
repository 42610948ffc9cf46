//! Notifications: the channels administrators are told through, and the outbox. An event
//! is written to the outbox, once per channel that wants it, in the transaction that
//! records the event itself, so what happened is told exactly when it is recorded. A
//! sender claims due rows (several senders never claim the same row), and each row is
//! retried with a growing pause until it is sent or given up.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::Result;

/// What happened, as the outbox and the channels name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A synchronisation brought new updates (once per sync).
    UpdatesSynchronized,
    SyncFailed,
    CleanupFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::UpdatesSynchronized, EventKind::SyncFailed, EventKind::CleanupFailed];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::UpdatesSynchronized => "updates_synchronized",
            EventKind::SyncFailed => "sync_failed",
            EventKind::CleanupFailed => "cleanup_failed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A channel.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Channel {
    pub channel_id: Uuid,
    pub name: String,
    /// webhook, slack, teams or email.
    pub kind: String,
    pub target: String,
    pub secret_env: Option<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    pub changed_at: DateTime<Utc>,
}

/// Adds or replaces a channel.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.put_channel"))]
pub async fn put_channel(pool: &PgPool, c: &Channel) -> Result<()> {
    sqlx::query(
        "INSERT INTO notification_channel (channel_id, name, kind, target, secret_env, events, enabled) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (channel_id) DO UPDATE SET name = $2, kind = $3, \
         target = $4, secret_env = $5, events = $6, enabled = $7, changed_at = now()",
    )
    .bind(c.channel_id)
    .bind(&c.name)
    .bind(&c.kind)
    .bind(&c.target)
    .bind(&c.secret_env)
    .bind(&c.events)
    .bind(c.enabled)
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.channels"))]
pub async fn channels(pool: &PgPool) -> Result<Vec<Channel>> {
    Ok(sqlx::query_as(
        "SELECT channel_id, name, kind, target, secret_env, events, enabled, changed_at FROM notification_channel ORDER BY name",
    )
    .fetch_all(pool)
    .await?)
}

/// Removes a channel and what it had still to send; false when there was none.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.delete_channel"))]
pub async fn delete_channel(pool: &PgPool, channel_id: Uuid) -> Result<bool> {
    let done =
        sqlx::query("DELETE FROM notification_channel WHERE channel_id = $1").bind(channel_id).execute(pool).await?;
    Ok(done.rows_affected() > 0)
}

/// Whether any enabled channel wants `kind` (to skip making a payload no one reads).
pub async fn wanted(tx: &mut PgConnection, kind: EventKind) -> Result<bool> {
    let (wanted,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM notification_channel WHERE enabled AND $1 = ANY(events))")
            .bind(kind.as_str())
            .fetch_one(tx)
            .await?;
    Ok(wanted)
}

/// Writes `kind` to the outbox of every enabled channel that wants it, on `tx` (the
/// transaction that records the event). Returns how many rows.
pub async fn enqueue(tx: &mut PgConnection, kind: EventKind, payload: &Value) -> Result<u64> {
    let done = sqlx::query(
        "INSERT INTO notification_outbox (channel_id, event_kind, payload) \
         SELECT channel_id, $1, $2 FROM notification_channel WHERE enabled AND $1 = ANY(events)",
    )
    .bind(kind.as_str())
    .bind(payload)
    .execute(tx)
    .await?;
    Ok(done.rows_affected())
}

/// A notification to send, and the claim under which its outcome is recorded.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Delivery {
    pub notification_id: i64,
    pub claim: Uuid,
    pub channel_id: Uuid,
    pub event_kind: String,
    pub payload: Value,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Claims up to `limit` due notifications for `hold` (a sender that dies meanwhile leaves
/// them due again after it); senders never claim the same row, and each claim counts as
/// an attempt.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.claim_due"))]
pub async fn claim_due(pool: &PgPool, limit: i64, hold: chrono::Duration) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as(
        "UPDATE notification_outbox SET state = 'sending', next_attempt_at = now() + $2, claim = $3, \
             attempts = attempts + 1 \
         WHERE notification_id IN (SELECT notification_id FROM notification_outbox \
             WHERE state IN ('pending', 'sending') AND next_attempt_at <= now() \
             ORDER BY next_attempt_at, notification_id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING notification_id, claim, channel_id, event_kind, payload, attempts, created_at",
    )
    .bind(limit)
    .bind(hold)
    .bind(Uuid::new_v4())
    .fetch_all(pool)
    .await?)
}

/// The notification reached its channel (recorded only under the claim it was sent with).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.sent"))]
pub async fn sent(pool: &PgPool, d: &Delivery) -> Result<()> {
    sqlx::query(
        "UPDATE notification_outbox SET state = 'sent', sent_at = now(), last_error = NULL \
         WHERE notification_id = $1 AND state = 'sending' AND claim = $2",
    )
    .bind(d.notification_id)
    .bind(d.claim)
    .execute(pool)
    .await?;
    Ok(())
}

/// How failed deliveries are tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The first pause; each next one is twice the last, at most an hour.
    pub first_pause: chrono::Duration,
    /// Given up after this many attempts.
    pub max_attempts: i32,
}

impl Default for Retry {
    fn default() -> Self {
        Self { first_pause: chrono::Duration::seconds(30), max_attempts: 8 }
    }
}

/// The attempt failed: tried again after `first_pause`, twice that, and so on (at most an
/// hour), and given up (`failed`) once tried `max_attempts` times. Returns whether it was
/// given up.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.attempt_failed"))]
pub async fn attempt_failed(pool: &PgPool, d: &Delivery, error: &str, retry: Retry) -> Result<bool> {
    // The exponent is bounded so the pause never overflows an interval before the cap.
    let state: Option<(String,)> = sqlx::query_as(
        "UPDATE notification_outbox SET last_error = left($3, 2000), \
             state = CASE WHEN attempts >= $4 THEN 'failed' ELSE 'pending' END, \
             next_attempt_at = now() + least(interval '1 hour', $5 * power(2, least(attempts - 1, 20))) \
         WHERE notification_id = $1 AND state = 'sending' AND claim = $2 RETURNING state",
    )
    .bind(d.notification_id)
    .bind(d.claim)
    .bind(error)
    .bind(retry.max_attempts)
    .bind(retry.first_pause)
    .fetch_optional(pool)
    .await?;
    Ok(state.is_some_and(|(s,)| s == "failed"))
}

/// Writes a test notification for one channel ("send a test"); its id.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.enqueue_test"))]
pub async fn enqueue_test(pool: &PgPool, channel_id: Uuid, payload: &Value) -> Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO notification_outbox (channel_id, event_kind, payload) \
         SELECT channel_id, 'test', $2 FROM notification_channel WHERE channel_id = $1 RETURNING notification_id",
    )
    .bind(channel_id)
    .bind(payload)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// A notification and how its delivery went.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Notification {
    pub notification_id: i64,
    pub channel_id: Uuid,
    pub event_kind: String,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The newest notifications, newest first.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.recent"))]
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<Notification>> {
    Ok(sqlx::query_as(
        "SELECT notification_id, channel_id, event_kind, payload, created_at, state, attempts, next_attempt_at, \
             last_error, sent_at FROM notification_outbox ORDER BY notification_id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
