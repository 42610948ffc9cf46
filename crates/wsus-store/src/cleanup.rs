//! Continuous cleanup, in small committed batches: each function does one batch and says
//! how much it did (0 = nothing left), so a stopped run is resumed by the next. Runs are
//! recorded in `cleanup_run`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::run::{RunResult, Trigger};
use crate::states::not_got;
use crate::{Result, catalog};

/// Declines up to `limit` updates that a newer update in the catalog supersedes and that
/// no computer needs (Needed, Downloaded, Failed or InstalledPendingReboot), with their
/// approvals. A superseding update the administrator declined keeps the one it replaces;
/// one declined here as superseded does not (chains go whole). Returns the updates declined.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.decline_superseded"))]
pub async fn decline_superseded(pool: &PgPool, limit: i64) -> Result<Vec<Uuid>> {
    let mut tx = pool.begin().await?;
    let not_got = not_got();
    let candidates: Vec<(Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH latest AS (SELECT DISTINCT ON (update_id) revision_id, update_id FROM revision \
                         WHERE update_type IN ('Software', 'Driver') ORDER BY update_id, revision_number DESC) \
         SELECT DISTINCT s.superseded_update_id FROM supersedence s \
         JOIN latest newer ON newer.revision_id = s.revision_id \
         JOIN latest older ON older.update_id = s.superseded_update_id \
         WHERE NOT EXISTS (SELECT 1 FROM declined_update d WHERE d.update_id = newer.update_id \
                           AND d.declined_by IS DISTINCT FROM 'cleanup: superseded') \
           AND NOT EXISTS (SELECT 1 FROM declined_update d WHERE d.update_id = s.superseded_update_id) \
           AND NOT EXISTS (SELECT 1 FROM update_status u WHERE u.update_id = s.superseded_update_id \
                           AND u.status IN {not_got}) \
         ORDER BY 1 LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = candidates.into_iter().map(|(u,)| u).collect();
    if ids.is_empty() {
        return Ok(ids);
    }
    let version = catalog::bump(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO declined_update (update_id, declined_by, changed_version) \
         SELECT u, 'cleanup: superseded', $2 FROM unnest($1::uuid[]) AS u ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE deployment SET deleted_at = now(), deleted_version = $2 WHERE update_id = ANY($1) AND deleted_at IS NULL",
    )
    .bind(&ids)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ids)
}

/// Deletes up to `limit` revisions that a newer revision of their update replaced, that
/// no live approval names and that no current bundle contains. Returns how many.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.delete_obsolete_revisions"))]
pub async fn delete_obsolete_revisions(pool: &PgPool, limit: i64) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let ids: Vec<(i32,)> = sqlx::query_as(
        "WITH latest AS (SELECT update_id, max(revision_number) AS n FROM revision GROUP BY update_id) \
         SELECT r.revision_id FROM revision r JOIN latest l USING (update_id) \
         WHERE r.revision_number < l.n \
           AND NOT EXISTS (SELECT 1 FROM deployment d WHERE d.update_id = r.update_id \
                           AND d.revision_number = r.revision_number AND d.deleted_at IS NULL) \
           AND NOT EXISTS (SELECT 1 FROM bundle_member b JOIN revision br ON br.revision_id = b.revision_id \
                           JOIN latest bl ON bl.update_id = br.update_id AND bl.n = br.revision_number \
                           WHERE b.member_update_id = r.update_id AND b.member_revision_number = r.revision_number) \
         ORDER BY r.revision_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i32> = ids.into_iter().map(|(i,)| i).collect();
    catalog::bump(&mut *tx).await?;
    let done = sqlx::query("DELETE FROM revision WHERE revision_id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Up to `limit` files no revision references, by SHA-1 after `after`: (SHA-1, file
/// name), for their content to be removed from the store before they are forgotten.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.orphan_files"))]
pub async fn orphan_files(pool: &PgPool, after: Option<[u8; 20]>, limit: i64) -> Result<Vec<([u8; 20], String)>> {
    let rows: Vec<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT f.sha1, f.file_name FROM file f \
         WHERE NOT EXISTS (SELECT 1 FROM revision_file rf WHERE rf.sha1 = f.sha1) \
         AND ($1::bytea IS NULL OR f.sha1 > $1) ORDER BY f.sha1 LIMIT $2",
    )
    .bind(after.as_ref().map(|a| a.as_slice()))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(|(sha1, name)| Some((<[u8; 20]>::try_from(sha1).ok()?, name))).collect())
}

/// Forgets these files, those still referenced by no revision (one a sync referenced
/// again meanwhile stays, and is fetched again when a client misses it). Returns how many.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.forget_files"))]
pub async fn forget_files(pool: &PgPool, sha1s: &[[u8; 20]]) -> Result<u64> {
    let sha1s: Vec<&[u8]> = sha1s.iter().map(|s| s.as_slice()).collect();
    let done = sqlx::query(
        "DELETE FROM file f WHERE f.sha1 = ANY($1) \
         AND NOT EXISTS (SELECT 1 FROM revision_file rf WHERE rf.sha1 = f.sha1)",
    )
    .bind(&sha1s)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Removes up to `limit` computers silent for `days` (neither contact nor rollup).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.remove_stale_computers"))]
pub async fn remove_stale_computers(pool: &PgPool, days: i32, limit: i64) -> Result<u64> {
    let gone: Vec<(String,)> = sqlx::query_as(
        "DELETE FROM computer WHERE computer_id IN (SELECT computer_id FROM computer \
             WHERE COALESCE(last_contact_at, registered_at, created_at) < now() - make_interval(days => $1) LIMIT $2) \
         RETURNING computer_id",
    )
    .bind(days)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let ids: Vec<String> = gone.into_iter().map(|(c,)| c).collect();
    crate::computers::notify_computers(pool, &ids).await?;
    Ok(ids.len() as u64)
}

/// Removes up to `limit` downstream servers silent for `days` (neither authorisation nor
/// rollup), and the computers that came through them.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.remove_stale_downstream_servers"))]
pub async fn remove_stale_downstream_servers(pool: &PgPool, days: i32, limit: i64) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM downstream_server WHERE server_id IN (SELECT server_id FROM downstream_server \
             WHERE GREATEST(first_seen_at, last_auth_at, last_rollup_time) < now() - make_interval(days => $1) LIMIT $2)",
    )
    .bind(days)
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes up to `limit` finished sync and cleanup records older than `days`, up to
/// `limit` delivered or given-up notifications older than that, and up to `limit` contact
/// hours older than [`CONTACT_DAYS`].
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.purge_history"))]
pub async fn purge_history(pool: &PgPool, days: i32, limit: i64) -> Result<u64> {
    let syncs = sqlx::query(
        "DELETE FROM sync_history WHERE sync_id IN (SELECT sync_id FROM sync_history \
             WHERE result <> 'running' AND started_at < now() - make_interval(days => $1) LIMIT $2)",
    )
    .bind(days)
    .bind(limit)
    .execute(pool)
    .await?;
    let runs = sqlx::query(
        "DELETE FROM cleanup_run WHERE run_id IN (SELECT run_id FROM cleanup_run \
             WHERE result <> 'running' AND started_at < now() - make_interval(days => $1) LIMIT $2)",
    )
    .bind(days)
    .bind(limit)
    .execute(pool)
    .await?;
    // Notifications still to send are kept, however old.
    let notifications = sqlx::query(
        "DELETE FROM notification_outbox WHERE notification_id IN (SELECT notification_id FROM notification_outbox \
             WHERE state IN ('sent', 'failed') AND created_at < now() - make_interval(days => $1) LIMIT $2)",
    )
    .bind(days)
    .bind(limit)
    .execute(pool)
    .await?;
    // The console charts the last day; eight days of contacts is plenty.
    let contacts = sqlx::query(
        "DELETE FROM computer_contact_hour WHERE (hour, computer_id) IN (SELECT hour, computer_id \
             FROM computer_contact_hour WHERE hour < now() - make_interval(days => $1) LIMIT $2)",
    )
    .bind(CONTACT_DAYS)
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(syncs.rows_affected() + runs.rows_affected() + notifications.rows_affected() + contacts.rows_affected())
}

/// How long the hours computers were in contact are kept.
pub const CONTACT_DAYS: i32 = 8;

/// Creates the daily partitions of reporting_event from today (UTC) to `days_ahead` days on.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.ensure_event_partitions"))]
pub async fn ensure_event_partitions(pool: &PgPool, days_ahead: i32) -> Result<()> {
    sqlx::query(
        "SELECT reporting_event_partition(d::date) FROM generate_series((now() AT TIME ZONE 'UTC')::date, \
             (now() AT TIME ZONE 'UTC')::date + $1, interval '1 day') AS d",
    )
    .bind(days_ahead)
    .execute(pool)
    .await?;
    Ok(())
}

/// Builds the index of computers' histories (reporting_event_outcome, migration 0008) on
/// every partition of reporting_event that lacks it, concurrently (event inserts go on),
/// and attaches each to the partitioned index, which is valid once all are. One process
/// at a time (the others skip); a build that failed half-way is dropped and made again.
/// Returns how many partitions got the index.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.build_outcome_indexes"))]
pub async fn build_outcome_indexes(pool: &PgPool) -> Result<u32> {
    const LOCK: i64 = 0x5753_5553_6f75_7463; // "WSUSoutc"
    let mut conn = pool.acquire().await?;
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)").bind(LOCK).fetch_one(&mut *conn).await?;
    if !locked {
        return Ok(0);
    }
    let built = build_missing_outcome_indexes(&mut conn).await;
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(LOCK).execute(&mut *conn).await?;
    built
}

async fn build_missing_outcome_indexes(conn: &mut sqlx::PgConnection) -> Result<u32> {
    let missing: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'reporting_event'::regclass \
           AND NOT EXISTS (SELECT 1 FROM pg_inherits a JOIN pg_index x ON x.indexrelid = a.inhrelid \
                           WHERE a.inhparent = 'reporting_event_outcome'::regclass AND x.indrelid = c.oid) \
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut built = 0;
    for (partition,) in missing {
        // Names are ours (checked here), so they may be spliced into the DDL.
        let ours = partition == "reporting_event_default"
            || partition
                .strip_prefix("reporting_event_")
                .is_some_and(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()));
        if !ours {
            continue;
        }
        let index = format!("{partition}_outcome");
        let leftover: Option<(bool,)> =
            sqlx::query_as("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)")
                .bind(&index)
                .fetch_optional(&mut *conn)
                .await?;
        if leftover.is_some_and(|(valid,)| !valid) {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX CONCURRENTLY IF EXISTS \"{index}\"")))
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"{index}\" ON \"{partition}\" (computer_id, time_at_target DESC) \
             WHERE event_id IN {}",
            crate::computers::HISTORY_EVENTS
        )))
        .execute(&mut *conn)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("ALTER INDEX reporting_event_outcome ATTACH PARTITION \"{index}\"")))
            .execute(&mut *conn)
            .await?;
        built += 1;
    }
    Ok(built)
}

/// Removes events older than `days`, one batch: a whole daily partition when one is past
/// the retention (dropping it is instant), else up to `limit` rows of the default one.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.purge_events"))]
pub async fn purge_events(pool: &PgPool, days: i32, limit: i64) -> Result<u64> {
    let cutoff: DateTime<Utc> = Utc::now() - chrono::Duration::days(i64::from(days));
    let partitions: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'reporting_event' \
         AND c.relname ~ '^reporting_event_[0-9]{8}$' ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    for (name,) in partitions {
        let Ok(day) = NaiveDate::parse_from_str(&name["reporting_event_".len()..], "%Y%m%d") else { continue };
        let end = (day + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        if end.is_some_and(|end| end <= cutoff) {
            let (rows,): (i64,) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM \"{name}\""))).fetch_one(pool).await?;
            // The name is one of ours (checked above): reporting_event_YYYYMMDD.
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE \"{name}\""))).execute(pool).await?;
            return Ok(rows.max(1) as u64);
        }
    }
    let done = sqlx::query(
        "DELETE FROM reporting_event_default WHERE ctid IN \
             (SELECT ctid FROM reporting_event_default WHERE time_at_target < $1 LIMIT $2)",
    )
    .bind(cutoff)
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// One cleanup run as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CleanupRun {
    pub run_id: i64,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub result: RunResult,
    /// The job running now (or that failed).
    pub job: Option<String>,
    /// What each job removed or declined.
    pub counts: serde_json::Value,
    pub error: Option<String>,
}

const RUN_COLUMNS: &str = "run_id, trigger, started_at, finished_at, result, job, counts, error";

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.start_run"))]
pub async fn start_run(pool: &PgPool, trigger: Trigger) -> Result<CleanupRun> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO cleanup_run (trigger) VALUES ($1) RETURNING {RUN_COLUMNS}"
    )))
    .bind(trigger)
    .fetch_one(pool)
    .await?)
}

/// Adds `n` to a job's count and names it the current job.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.progress"))]
pub async fn progress(pool: &PgPool, run_id: i64, job: &str, n: u64) -> Result<()> {
    sqlx::query(
        "UPDATE cleanup_run SET job = $2, counts = jsonb_set(counts, ARRAY[$2], \
             to_jsonb(COALESCE((counts ->> $2)::int8, 0) + $3)) WHERE run_id = $1",
    )
    .bind(run_id)
    .bind(job)
    .bind(n as i64)
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.finish_run"))]
pub async fn finish_run(pool: &PgPool, run_id: i64, error: Option<&str>) -> Result<()> {
    let mut tx = pool.begin().await?;
    let job: Option<(Option<String>,)> = sqlx::query_as(
        "UPDATE cleanup_run SET finished_at = now(), result = CASE WHEN $2::text IS NULL THEN 'succeeded' ELSE 'failed' END, \
            job = CASE WHEN $2::text IS NULL THEN NULL ELSE job END, error = $2 WHERE run_id = $1 RETURNING job",
    )
    .bind(run_id)
    .bind(error)
    .fetch_optional(&mut *tx)
    .await?;
    if let (Some((job,)), Some(error)) = (job, error) {
        let payload = serde_json::json!({ "run_id": run_id, "job": job, "error": error });
        crate::notifications::enqueue(&mut tx, crate::notifications::EventKind::CleanupFailed, &payload).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Runs left "running" by a process that died are over.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.fail_abandoned"))]
pub async fn fail_abandoned(pool: &PgPool) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE cleanup_run SET finished_at = now(), result = 'failed', error = 'abandoned (the process stopped)' \
         WHERE result = 'running'",
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Runs, newest first, older than `before` (all when None), and the id to continue before.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.runs_page"))]
pub async fn runs_page(pool: &PgPool, before: Option<i64>, limit: i64) -> Result<(Vec<CleanupRun>, Option<i64>)> {
    let rows: Vec<CleanupRun> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM cleanup_run WHERE $1::int8 IS NULL OR run_id < $1 ORDER BY run_id DESC LIMIT $2"
    )))
    .bind(before)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(crate::keyset(rows, limit, |r| r.run_id, |r| r))
}

/// Takes the cleanup lock (one run at a time across replicas); None when another holds it.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.try_lock"))]
pub async fn try_lock(pool: &PgPool) -> Result<Option<sqlx::pool::PoolConnection<sqlx::Postgres>>> {
    crate::dss::try_lock(pool, "cleanup").await
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.cleanup.unlock"))]
pub async fn unlock(conn: sqlx::pool::PoolConnection<sqlx::Postgres>) -> Result<()> {
    crate::dss::unlock(conn, "cleanup").await
}
