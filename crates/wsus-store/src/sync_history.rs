//! Synchronisation history (MS-WSUSSS 3.1.1): one row per sync attempt.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::notifications::{self, EventKind};

use crate::Result;
pub use crate::run::{RunResult, Trigger};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SyncRecord {
    pub sync_id: i64,
    pub upstream_url: String,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub result: RunResult,
    pub phase: Option<String>,
    pub done: i64,
    pub total: i64,
    pub heartbeat_at: DateTime<Utc>,
    pub error: Option<String>,
    pub revisions_new: i32,
    pub revisions_updated: i32,
    pub deployments_changed: i32,
    pub files_queued: i32,
    pub bytes_received: i64,
    /// Documents the upstream sent that could not be read (quarantined).
    pub revisions_quarantined: i32,
}

macro_rules! columns {
    () => {
        "sync_id, upstream_url, trigger, started_at, finished_at, result, phase, done, total, heartbeat_at, \
         error, revisions_new, revisions_updated, deployments_changed, files_queued, bytes_received, \
         revisions_quarantined"
    };
}

/// The most recent attempt (running or not).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.sync_history.latest"))]
pub async fn latest(pool: &PgPool) -> Result<Option<SyncRecord>> {
    Ok(sqlx::query_as(concat!("SELECT ", columns!(), " FROM sync_history ORDER BY sync_id DESC LIMIT 1"))
        .fetch_optional(pool)
        .await?)
}

/// Attempts older than `before` (all when None), newest first, and the id to continue
/// before when more follow.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.sync_history.page"))]
pub async fn page(pool: &PgPool, before: Option<i64>, limit: i64) -> Result<(Vec<SyncRecord>, Option<i64>)> {
    let rows: Vec<SyncRecord> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM sync_history WHERE $1::int8 IS NULL OR sync_id < $1 ORDER BY sync_id DESC LIMIT $2"
    ))
    .bind(before)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(crate::keyset(rows, limit, |r| r.sync_id, |r| r))
}

/// When the last successful attempt ended.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.sync_history.last_success"))]
pub async fn last_success(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    let row: Option<(Option<DateTime<Utc>>,)> =
        sqlx::query_as("SELECT max(finished_at) FROM sync_history WHERE result = 'succeeded'")
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(t,)| t))
}

/// The most recent finished attempt.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.sync_history.latest_finished"))]
pub async fn latest_finished(pool: &PgPool) -> Result<Option<SyncRecord>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM sync_history WHERE result <> 'running' ORDER BY sync_id DESC LIMIT 1"
    ))
    .fetch_optional(pool)
    .await?)
}

/// Starts an attempt; fails with a unique violation if one is already running for this upstream.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.sync_history.start"))]
pub async fn start(pool: &PgPool, upstream_url: &str, trigger: Trigger) -> Result<SyncRecord> {
    Ok(sqlx::query_as(concat!(
        "INSERT INTO sync_history (upstream_url, trigger) VALUES ($1, $2) RETURNING ",
        columns!()
    ))
    .bind(upstream_url)
    .bind(trigger)
    .fetch_one(pool)
    .await?)
}

/// Records progress of a running attempt (and proves it is alive).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.sync_history.progress"))]
pub async fn progress(pool: &PgPool, sync_id: i64, phase: &str, done: i64, total: i64) -> Result<()> {
    sqlx::query(
        "UPDATE sync_history SET phase = $2, done = $3, total = $4, heartbeat_at = now() \
         WHERE sync_id = $1 AND result = 'running'",
    )
    .bind(sync_id)
    .bind(phase)
    .bind(done)
    .bind(total)
    .execute(pool)
    .await?;
    Ok(())
}

/// What an attempt did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub revisions_new: i32,
    pub revisions_updated: i32,
    pub deployments_changed: i32,
    pub files_queued: i32,
    pub bytes_received: i64,
    pub revisions_quarantined: i32,
}

/// Records what an attempt did.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.sync_history.record_counts"))]
pub async fn record_counts(pool: &PgPool, sync_id: i64, c: Counts) -> Result<()> {
    sqlx::query(
        "UPDATE sync_history SET revisions_new = $2, revisions_updated = $3, deployments_changed = $4, \
         files_queued = $5, bytes_received = $6, revisions_quarantined = $7 WHERE sync_id = $1",
    )
    .bind(sync_id)
    .bind(c.revisions_new)
    .bind(c.revisions_updated)
    .bind(c.deployments_changed)
    .bind(c.files_queued)
    .bind(c.bytes_received)
    .bind(c.revisions_quarantined)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends an attempt with `result` (any but running).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.sync_history.finish"))]
pub async fn finish(pool: &PgPool, sync_id: i64, result: RunResult, error: Option<&str>) -> Result<()> {
    let mut tx = pool.begin().await?;
    let run: Option<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "UPDATE sync_history SET result = $2, error = $3, finished_at = now(), heartbeat_at = now() \
         WHERE sync_id = $1 RETURNING upstream_url, started_at",
    )
    .bind(sync_id)
    .bind(result)
    .bind(error)
    .fetch_optional(&mut *tx)
    .await?;
    // Told in the same transaction: a finished sync is never recorded untold, nor told twice.
    if let Some((upstream, started)) = run {
        match result {
            RunResult::Succeeded => {
                let after = told_through(&mut tx, sync_id, started).await?;
                if notifications::wanted(&mut tx, EventKind::UpdatesSynchronized).await? {
                    let payload = new_updates(&mut tx, sync_id, &upstream, after).await?;
                    if payload["count"].as_i64().unwrap_or(0) > 0 {
                        notifications::enqueue(&mut tx, EventKind::UpdatesSynchronized, &payload).await?;
                    }
                }
            }
            RunResult::Failed => {
                let payload = serde_json::json!({ "sync_id": sync_id, "upstream_url": upstream, "error": error });
                notifications::enqueue(&mut tx, EventKind::SyncFailed, &payload).await?;
            }
            RunResult::Running | RunResult::Cancelled => {}
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A new update, as a notification names it.
#[derive(Debug, sqlx::FromRow, serde::Serialize)]
struct NewUpdate {
    update_id: uuid::Uuid,
    title: Option<String>,
    kb_article_id: Option<String>,
    classification: Option<String>,
}

/// The most updates one notification names; the counts cover them all.
const NAMED_UPDATES: i64 = 100;

/// The revision id the previous successful sync told through, and this sync's mark: the
/// highest revision id now. Updates a failed sync imported are told by the next
/// successful one. Before any sync kept a mark (a server upgraded to this), what was
/// imported before this sync started counts as told.
async fn told_through(
    tx: &mut sqlx::PgConnection,
    sync_id: i64,
    started: chrono::DateTime<chrono::Utc>,
) -> Result<i32> {
    let (previous, successes): (Option<i32>, i64) = sqlx::query_as(
        "SELECT max(told_through_revision_id), count(*) FROM sync_history WHERE result = 'succeeded' AND sync_id <> $1",
    )
    .bind(sync_id)
    .fetch_one(&mut *tx)
    .await?;
    let after = match previous {
        Some(p) => p,
        None if successes > 0 => {
            let (before,): (Option<i32>,) =
                sqlx::query_as("SELECT max(revision_id) FROM revision WHERE imported_at < $1")
                    .bind(started)
                    .fetch_one(&mut *tx)
                    .await?;
            before.unwrap_or(0)
        }
        None => 0,
    };
    sqlx::query("UPDATE sync_history SET told_through_revision_id = (SELECT coalesce(max(revision_id), 0) FROM revision) WHERE sync_id = $1")
        .bind(sync_id)
        .execute(&mut *tx)
        .await?;
    Ok(after)
}

/// The updates new since revision id `after` (software and drivers whose first revision
/// is above it), counted per classification, the first ones named.
async fn new_updates(
    tx: &mut sqlx::PgConnection,
    sync_id: i64,
    upstream: &str,
    after: i32,
) -> Result<serde_json::Value> {
    // New updates with their classification; by revision id, so the primary key finds them.
    const NEW: &str = "WITH new AS (SELECT DISTINCT ON (r.update_id) r.update_id, r.revision_id, r.title, r.kb_article_id \
             FROM revision r WHERE r.revision_id > $1 AND r.update_type IN ('Software', 'Driver') \
             AND NOT EXISTS (SELECT 1 FROM revision o WHERE o.update_id = r.update_id AND o.revision_id <= $1) \
             ORDER BY r.update_id, r.revision_number DESC), \
         classified AS (SELECT n.update_id, n.title, n.kb_article_id, (SELECT c.title FROM revision_category rc \
             JOIN revision c ON c.update_id = rc.category_update_id AND c.category_type = 'UpdateClassification' \
             WHERE rc.revision_id = n.revision_id ORDER BY c.revision_number DESC LIMIT 1) AS classification FROM new n) ";
    let counts: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{NEW} SELECT coalesce(classification, 'Unclassified'), count(*) FROM classified GROUP BY 1 ORDER BY 1"
    )))
    .bind(after)
    .fetch_all(&mut *tx)
    .await?;
    let named: Vec<NewUpdate> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{NEW} SELECT update_id, title, kb_article_id, classification FROM classified ORDER BY title, update_id LIMIT $2"
    )))
    .bind(after)
    .bind(NAMED_UPDATES)
    .fetch_all(&mut *tx)
    .await?;
    let count: i64 = counts.iter().map(|(_, n)| n).sum();
    let by_classification: serde_json::Map<String, serde_json::Value> =
        counts.into_iter().map(|(k, n)| (k, n.into())).collect();
    Ok(serde_json::json!({
        "sync_id": sync_id,
        "upstream_url": upstream,
        "count": count,
        "by_classification": by_classification,
        "updates": named,
    }))
}

/// Marks attempts whose process stopped heart-beating as failed, so a new one can start.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.sync_history.fail_abandoned"))]
pub async fn fail_abandoned(pool: &PgPool, older_than: chrono::Duration) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE sync_history SET result = 'failed', finished_at = now(), \
         error = 'abandoned: the process running it stopped' \
         WHERE result = 'running' AND heartbeat_at < now() - $1",
    )
    .bind(older_than)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
