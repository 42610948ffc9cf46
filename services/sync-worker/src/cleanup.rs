//! Continuous cleanup instead of a wizard: expired and superseded updates declined,
//! obsolete revisions and unreferenced content removed, silent computers and downstream
//! servers forgotten, history and raw events purged past retention. Every job works in
//! small committed batches; a run that stops is resumed by the next.

use std::collections::BTreeMap;

use serde::Serialize;
use wsus_content::Store;
use wsus_store::settings::{self, Retention};
use wsus_store::{PgPool, cleanup, rules};

use crate::dss::SyncError;
use wsus_store::run::Trigger;

/// Rows per batch (events: per batch of the default partition).
const BATCH: i64 = 500;
const EVENT_BATCH: i64 = 5000;
/// Daily event partitions are created this many days ahead.
const PARTITIONS_AHEAD: i32 = 7;

/// What one run did, by job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CleanupOutcome {
    pub run_id: i64,
    pub counts: BTreeMap<&'static str, u64>,
}

/// A run that holds the cleanup lock and has its record.
pub struct Started {
    lock: sqlx::pool::PoolConnection<sqlx::Postgres>,
    pub run_id: i64,
}

/// Takes the cleanup lock and records the run; Busy when another replica runs one.
pub async fn begin(pool: &PgPool, trigger: Trigger) -> Result<Started, SyncError> {
    let Some(lock) = cleanup::try_lock(pool).await? else { return Err(SyncError::Busy("cleanup".into())) };
    cleanup::fail_abandoned(pool).await?;
    let run = cleanup::start_run(pool, trigger).await?;
    Ok(Started { lock, run_id: run.run_id })
}

impl Started {
    /// Runs every job, records the outcome, releases the lock.
    pub async fn run(self, pool: &PgPool, content: &Store) -> Result<CleanupOutcome, SyncError> {
        let mut outcome = CleanupOutcome { run_id: self.run_id, ..Default::default() };
        let result = jobs(pool, content, &mut outcome).await;
        let error = result.as_ref().err().map(|e| e.to_string());
        cleanup::finish_run(pool, self.run_id, error.as_deref()).await?;
        cleanup::unlock(self.lock).await?;
        result.map(|()| outcome)
    }
}

/// One complete cleanup run.
pub async fn run_once(pool: &PgPool, content: &Store, trigger: Trigger) -> Result<CleanupOutcome, SyncError> {
    begin(pool, trigger).await?.run(pool, content).await
}

/// Runs `batch` until it finds nothing more, recording each batch's count.
async fn until_done<F, Fut>(
    pool: &PgPool,
    run_id: i64,
    job: &'static str,
    outcome: &mut CleanupOutcome,
    mut batch: F,
) -> Result<(), SyncError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, SyncError>>,
{
    let total = outcome.counts.entry(job).or_insert(0);
    loop {
        let n = batch().await?;
        cleanup::progress(pool, run_id, job, n).await?;
        *total += n;
        if n == 0 {
            return Ok(());
        }
    }
}

async fn jobs(pool: &PgPool, store: &Store, outcome: &mut CleanupOutcome) -> Result<(), SyncError> {
    let id = outcome.run_id;
    let retention = settings::get::<Retention>(pool, settings::RETENTION).await?.map(|s| s.value).unwrap_or_default();
    cleanup::ensure_event_partitions(pool, PARTITIONS_AHEAD).await?;

    until_done(pool, id, "expired_declined", outcome, || async { Ok(rules::decline_expired(pool).await?) }).await?;
    until_done(pool, id, "superseded_declined", outcome, || async {
        Ok(cleanup::decline_superseded(pool, BATCH).await?.len() as u64)
    })
    .await?;
    until_done(pool, id, "obsolete_revisions_deleted", outcome, || async {
        Ok(cleanup::delete_obsolete_revisions(pool, BATCH).await?)
    })
    .await?;
    // Content first, rows after: a file whose content cannot be removed keeps its row, so
    // the next cleanup tries again rather than leaving an object nothing names.
    let after = std::sync::Mutex::new(None);
    until_done(pool, id, "content_files_deleted", outcome, || async {
        let start = *after.lock().unwrap_or_else(|e| e.into_inner());
        let files = cleanup::orphan_files(pool, start, BATCH).await?;
        let Some((last, _)) = files.last() else { return Ok(0) };
        *after.lock().unwrap_or_else(|e| e.into_inner()) = Some(*last);
        let mut removed = Vec::with_capacity(files.len());
        for (sha1, name) in &files {
            match store.remove(sha1, name).await {
                Ok(()) => removed.push(*sha1),
                Err(e) => tracing::warn!(file = name, error = %e, "cannot remove an unreferenced content file; kept for the next cleanup"),
            }
        }
        Ok(cleanup::forget_files(pool, &removed).await?)
    })
    .await?;
    if retention.stale_computer_days > 0 {
        let days = retention.stale_computer_days.min(36_500) as i32;
        until_done(pool, id, "computers_removed", outcome, || async {
            Ok(cleanup::remove_stale_computers(pool, days, BATCH).await?)
        })
        .await?;
        until_done(pool, id, "downstream_servers_removed", outcome, || async {
            Ok(cleanup::remove_stale_downstream_servers(pool, days, BATCH).await?)
        })
        .await?;
    }
    let history_days = retention.sync_history_days.clamp(1, 36_500) as i32;
    until_done(pool, id, "history_purged", outcome, || async {
        Ok(cleanup::purge_history(pool, history_days, BATCH).await?)
    })
    .await?;
    let event_days = retention.event_days.clamp(1, 36_500) as i32;
    until_done(pool, id, "events_purged", outcome, || async {
        Ok(cleanup::purge_events(pool, event_days, EVENT_BATCH).await?)
    })
    .await?;
    Ok(())
}
