//! Schema migrations, applied exactly once however many replicas start together.

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgPool};

use crate::Result;

/// Key of the Postgres advisory lock every migrating process holds ("WSUSMIGR").
const MIGRATION_LOCK: i64 = 0x5753_5553_4d49_4752;

/// The embedded migrations. A binary older than the database ignores newer files
/// (rolling upgrade: expand-then-contract keeps the old release working).
pub fn migrator() -> Migrator {
    let mut m = sqlx::migrate!("../../migrations");
    m.set_ignore_missing(true);
    // We hold our own lock around the whole step, including the pending-list query.
    m.set_locking(false);
    m
}

/// Applies the pending migrations under the advisory lock and returns the versions this
/// call applied (empty when another process got there first).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.migrate.run"))]
pub async fn run(pool: &PgPool) -> Result<Vec<i64>> {
    // A connection of its own: the session lock must not return to the pool.
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut conn).await?;
    let outcome = apply_locked(&mut conn).await;
    // Closing the session releases the lock whatever happened above.
    let _ = conn.close().await;
    outcome
}

async fn apply_locked(conn: &mut sqlx::PgConnection) -> Result<Vec<i64>> {
    let migrator = migrator();
    let before = applied_versions(&mut *conn).await?;
    let pending: Vec<i64> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !before.contains(&m.version))
        .map(|m| m.version)
        .collect();
    migrator.run_direct(None, conn, false).await?;
    for version in &pending {
        tracing::info!(version, "applied migration");
    }
    Ok(pending)
}

async fn applied_versions<'c, E>(executor: E) -> Result<Vec<i64>>
where
    E: sqlx::PgExecutor<'c>,
{
    // The bookkeeping table does not exist before the first migration.
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(executor)
        .await
        .or_else(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(Vec::new()),
            _ => Err(e),
        })?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

/// Versions this binary knows that the database has not applied yet (readiness).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.migrate.pending"))]
pub async fn pending(pool: &PgPool) -> Result<Vec<i64>> {
    let applied = applied_versions(pool).await?;
    Ok(migrator()
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| m.version)
        .collect())
}
