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
    /// The status summary, on the schedule of the notification settings.
    StatusSummary,
    /// Computers whose install of an update newly failed (once per computer and update).
    InstallsFailed,
    /// A downstream server that stopped rolling up (once until it rolls up again).
    DownstreamSilent,
    /// The local publishing certificate nearing expiry (once per certificate and stage).
    CertificateExpiring,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::UpdatesSynchronized,
        EventKind::SyncFailed,
        EventKind::CleanupFailed,
        EventKind::StatusSummary,
        EventKind::InstallsFailed,
        EventKind::DownstreamSilent,
        EventKind::CertificateExpiring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::UpdatesSynchronized => "updates_synchronized",
            EventKind::SyncFailed => "sync_failed",
            EventKind::CleanupFailed => "cleanup_failed",
            EventKind::StatusSummary => "status_summary",
            EventKind::InstallsFailed => "installs_failed",
            EventKind::DownstreamSilent => "downstream_silent",
            EventKind::CertificateExpiring => "certificate_expiring",
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
    /// The URL or the recipients; empty when `target_env` holds the URL.
    pub target: String,
    /// The environment variable holding a webhook's URL (kept in a Secret).
    pub target_env: Option<String>,
    pub secret_env: Option<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    pub changed_at: DateTime<Utc>,
}

/// Adds or replaces a channel.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.put_channel"))]
pub async fn put_channel(pool: &PgPool, c: &Channel) -> Result<()> {
    sqlx::query(
        "INSERT INTO notification_channel (channel_id, name, kind, target, secret_env, events, enabled, target_env) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (channel_id) DO UPDATE SET name = $2, kind = $3, \
         target = $4, secret_env = $5, events = $6, enabled = $7, target_env = $8, changed_at = now()",
    )
    .bind(c.channel_id)
    .bind(&c.name)
    .bind(&c.kind)
    .bind(&c.target)
    .bind(&c.secret_env)
    .bind(&c.events)
    .bind(c.enabled)
    .bind(&c.target_env)
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.channels"))]
pub async fn channels(pool: &PgPool) -> Result<Vec<Channel>> {
    Ok(sqlx::query_as(
        "SELECT channel_id, name, kind, target, target_env, secret_env, events, enabled, changed_at \
         FROM notification_channel ORDER BY name",
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

/// When a scheduled notification is next due; None when it is not scheduled.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.next_scheduled"))]
pub async fn next_scheduled(pool: &PgPool, kind: EventKind) -> Result<Option<DateTime<Utc>>> {
    let row: Option<(DateTime<Utc>,)> =
        sqlx::query_as("SELECT next_at FROM notification_schedule WHERE event_kind = $1")
            .bind(kind.as_str())
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(at,)| at))
}

/// Schedules `kind` at `next` (None: no longer scheduled), replacing what was scheduled.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.set_schedule"))]
pub async fn set_schedule(pool: &PgPool, kind: EventKind, next: Option<DateTime<Utc>>) -> Result<()> {
    match next {
        Some(at) => sqlx::query(
            "INSERT INTO notification_schedule (event_kind, next_at) VALUES ($1, $2) \
             ON CONFLICT (event_kind) DO UPDATE SET next_at = $2",
        )
        .bind(kind.as_str())
        .bind(at),
        None => sqlx::query("DELETE FROM notification_schedule WHERE event_kind = $1").bind(kind.as_str()),
    }
    .execute(pool)
    .await?;
    Ok(())
}

/// Sends the scheduled `kind` that was due at `due`: moves it on to `next` and writes
/// `payload` to the outbox in one transaction, but only if it is still due at `due`, so
/// of several replicas that saw it due exactly one sends it. Returns whether this one did.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.take_scheduled"))]
pub async fn take_scheduled(
    pool: &PgPool,
    kind: EventKind,
    due: DateTime<Utc>,
    next: DateTime<Utc>,
    payload: &Value,
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let moved = sqlx::query(
        "UPDATE notification_schedule SET next_at = $3 WHERE event_kind = $1 AND next_at = $2 AND next_at <= now()",
    )
    .bind(kind.as_str())
    .bind(due)
    .bind(next)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Ok(false);
    }
    enqueue(&mut tx, kind, payload).await?;
    tx.commit().await?;
    Ok(true)
}

/// Tells `kind` about `subject` (a certificate's stage, say) unless it was told already;
/// whether this call told it.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.tell_once"))]
pub async fn tell_once(pool: &PgPool, kind: EventKind, subject: &str, payload: &Value) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let new = sqlx::query("INSERT INTO notification_told (event_kind, subject) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(kind.as_str())
        .bind(subject)
        .execute(&mut *tx)
        .await?;
    if new.rows_affected() == 0 {
        return Ok(false);
    }
    enqueue(&mut tx, kind, payload).await?;
    tx.commit().await?;
    Ok(true)
}

/// A transaction holding the lock of one watch, so replicas looking at once do not both
/// tell; None when another replica holds it (it tells) or no enabled channel wants `kind`.
async fn begin_watch(pool: &PgPool, kind: EventKind) -> Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>> {
    let mut tx = pool.begin().await?;
    let (locked,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_xact_lock(hashtextextended('wsus.notifications.' || $1, 0))")
            .bind(kind.as_str())
            .fetch_one(&mut *tx)
            .await?;
    Ok((locked && wanted(&mut tx, kind).await?).then_some(tx))
}

/// A computer whose installs newly failed, and those updates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailingComputer {
    pub computer_id: String,
    pub name: Option<String>,
    pub updates: Vec<FailedUpdate>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct FailedUpdate {
    pub update_id: Uuid,
    pub title: Option<String>,
    pub kb_article_id: Option<String>,
}

/// Tells `installs_failed` of the failed installs (status Failed) not told before, naming
/// the first `named` computers; a failure that ended (the status left Failed) is
/// forgotten, so failing again is told again. Nothing is looked at (or remembered) while
/// no channel wants the event, so the first channel that does is told of every install
/// failing then. Returns how many installs were new.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.tell_failed_installs"))]
pub async fn tell_failed_installs(pool: &PgPool, named: usize) -> Result<u64> {
    let kind = EventKind::InstallsFailed;
    let Some(mut tx) = begin_watch(pool, kind).await? else { return Ok(0) };
    sqlx::query(
        "DELETE FROM install_failure_told t WHERE NOT EXISTS (SELECT 1 FROM update_status u \
             WHERE u.computer_id = t.computer_id AND u.update_id = t.update_id AND u.status = 5)",
    )
    .execute(&mut *tx)
    .await?;
    let new: Vec<(String, Uuid)> = sqlx::query_as(
        "INSERT INTO install_failure_told (computer_id, update_id) \
         SELECT computer_id, update_id FROM update_status WHERE status = 5 \
         ON CONFLICT DO NOTHING RETURNING computer_id, update_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    if !new.is_empty() {
        let mut computers: Vec<&str> = new.iter().map(|(c, _)| c.as_str()).collect();
        computers.sort_unstable();
        computers.dedup();
        let count = computers.len();
        computers.truncate(named);
        let (ids, updates): (Vec<&str>, Vec<Uuid>) = new
            .iter()
            .filter(|(c, _)| computers.binary_search(&c.as_str()).is_ok())
            .map(|(c, u)| (c.as_str(), *u))
            .unzip();
        #[derive(sqlx::FromRow)]
        struct Row {
            computer_id: String,
            name: Option<String>,
            #[sqlx(flatten)]
            update: FailedUpdate,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT n.computer_id, c.dns_name AS name, n.update_id, r.title, r.kb_article_id \
             FROM unnest($1::text[], $2::uuid[]) AS n(computer_id, update_id) JOIN computer c USING (computer_id) \
             LEFT JOIN LATERAL (SELECT title, kb_article_id FROM revision WHERE update_id = n.update_id \
                                ORDER BY revision_number DESC LIMIT 1) r ON true \
             ORDER BY lower(c.dns_name), n.computer_id, r.title, n.update_id",
        )
        .bind(&ids)
        .bind(&updates)
        .fetch_all(&mut *tx)
        .await?;
        let mut named: Vec<FailingComputer> = Vec::new();
        for Row { computer_id, name, update } in rows {
            match named.last_mut() {
                Some(last) if last.computer_id == computer_id => last.updates.push(update),
                _ => named.push(FailingComputer { computer_id, name, updates: vec![update] }),
            }
        }
        let payload = serde_json::json!({ "computers": count, "installs": new.len(), "named": named });
        enqueue(&mut tx, kind, &payload).await?;
    }
    tx.commit().await?;
    Ok(new.len() as u64)
}

/// A downstream server that has not rolled up for a while.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct SilentServer {
    pub server_id: Uuid,
    pub fqdn: String,
    pub last_rollup_time: DateTime<Utc>,
    pub last_sync_time: Option<DateTime<Utc>>,
}

/// Tells `downstream_silent` of the direct downstream servers whose last roll-up is older
/// than `silent_for` and that were not told of since they last rolled up (one that rolls
/// up again is forgotten). Servers that never rolled up are not watched, nor any while no
/// channel wants the event. Returns the servers newly told of.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.notifications.tell_silent_downstreams"))]
pub async fn tell_silent_downstreams(pool: &PgPool, silent_for: chrono::Duration) -> Result<Vec<SilentServer>> {
    let kind = EventKind::DownstreamSilent;
    let Some(mut tx) = begin_watch(pool, kind).await? else { return Ok(Vec::new()) };
    sqlx::query(
        "DELETE FROM notification_told t WHERE event_kind = $1 AND NOT EXISTS (SELECT 1 FROM downstream_server d \
             WHERE d.server_id::text = t.subject AND d.last_rollup_time < now() - $2)",
    )
    .bind(kind.as_str())
    .bind(silent_for)
    .execute(&mut *tx)
    .await?;
    let new: Vec<SilentServer> = sqlx::query_as(
        "WITH told AS (INSERT INTO notification_told (event_kind, subject) \
             SELECT $1, server_id::text FROM downstream_server \
             WHERE parent_server_id IS NULL AND last_rollup_time < now() - $2 \
             ON CONFLICT DO NOTHING RETURNING subject) \
         SELECT d.server_id, d.fqdn, d.last_rollup_time, d.last_sync_time FROM told \
         JOIN downstream_server d ON d.server_id::text = told.subject ORDER BY lower(d.fqdn), d.server_id",
    )
    .bind(kind.as_str())
    .bind(silent_for)
    .fetch_all(&mut *tx)
    .await?;
    if !new.is_empty() {
        let payload = serde_json::json!({ "silent_for_hours": silent_for.num_hours(), "servers": new });
        enqueue(&mut tx, kind, &payload).await?;
    }
    tx.commit().await?;
    Ok(new)
}
