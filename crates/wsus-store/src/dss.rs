//! This server as a downstream server: what it keeps of its upstream (cookies, anchors,
//! the limits it announced), the one-sync-at-a-time lock, and the content download queue.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::pool::PoolConnection;
use sqlx::postgres::Postgres;
use uuid::Uuid;

use crate::Result;

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct UpstreamState {
    pub auth_plugin_id: Option<String>,
    pub auth_cookie_data: Option<Vec<u8>>,
    pub cookie_expiration: Option<DateTime<Utc>>,
    pub cookie_encrypted_data: Option<Vec<u8>>,
    pub config_anchor: Option<String>,
    pub sync_anchor: Option<String>,
    pub deployment_anchor: Option<String>,
    pub sync_filter: Option<serde_json::Value>,
    pub catalog_only_sync: Option<bool>,
    pub lazy_sync: Option<bool>,
    pub max_updates_per_request: Option<i32>,
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.load"))]
pub async fn load(pool: &PgPool, url: &str) -> Result<UpstreamState> {
    Ok(sqlx::query_as(
        "SELECT auth_plugin_id, auth_cookie_data, cookie_expiration, cookie_encrypted_data, config_anchor, sync_anchor, \
                deployment_anchor, sync_filter, catalog_only_sync, lazy_sync, max_updates_per_request \
         FROM upstream_state WHERE upstream_url = $1",
    )
    .bind(url)
    .fetch_optional(pool)
    .await?
    .unwrap_or_default())
}

/// Stores the authorization and the cookie it bought.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.save_cookie"))]
pub async fn save_cookie(
    pool: &PgPool,
    url: &str,
    plugin_id: &str,
    auth_cookie: &[u8],
    expiration: DateTime<Utc>,
    encrypted: &[u8],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO upstream_state (upstream_url, auth_plugin_id, auth_cookie_data, cookie_expiration, cookie_encrypted_data) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (upstream_url) DO UPDATE SET auth_plugin_id = $2, auth_cookie_data = $3, \
         cookie_expiration = $4, cookie_encrypted_data = $5, updated_at = now()",
    )
    .bind(url)
    .bind(plugin_id)
    .bind(auth_cookie)
    .bind(expiration)
    .bind(encrypted)
    .execute(pool)
    .await?;
    Ok(())
}

/// What GetConfigData said.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub anchor: String,
    pub catalog_only_sync: bool,
    pub lazy_sync: bool,
    pub server_hosts_psf_files: bool,
    pub max_updates_per_request: i32,
    pub max_updates_per_decryption_request: i32,
    pub protocol_version: String,
    /// ServerSyncLanguageData entries as (LCID, short, long, enabled).
    pub languages: Vec<(i32, String, String, bool)>,
}

/// Stores GetConfigData's answer; languages merge into what earlier deltas said.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.save_config"))]
pub async fn save_config(pool: &PgPool, url: &str, c: &UpstreamConfig) -> Result<()> {
    let languages = serde_json::to_value(&c.languages).unwrap_or_default();
    sqlx::query("INSERT INTO upstream_state (upstream_url) VALUES ($1) ON CONFLICT (upstream_url) DO NOTHING")
        .bind(url)
        .execute(pool)
        .await?;
    sqlx::query(
        "UPDATE upstream_state SET config_anchor = $2, catalog_only_sync = $3, lazy_sync = $4, server_hosts_psf_files = $5, \
         max_updates_per_request = $6, max_updates_per_decryption_request = $7, protocol_version = $8, \
         languages = (SELECT COALESCE(jsonb_agg(l ORDER BY l->>0), '[]') FROM ( \
             SELECT DISTINCT ON (l->>0) l FROM (SELECT jsonb_array_elements($9::jsonb) l, 0 o \
                                               UNION ALL SELECT jsonb_array_elements(languages), 1) x ORDER BY l->>0, o) y), \
         updated_at = now() WHERE upstream_url = $1",
    )
    .bind(url)
    .bind(&c.anchor)
    .bind(c.catalog_only_sync)
    .bind(c.lazy_sync)
    .bind(c.server_hosts_psf_files)
    .bind(c.max_updates_per_request)
    .bind(c.max_updates_per_decryption_request)
    .bind(&c.protocol_version)
    .bind(languages)
    .execute(pool)
    .await?;
    Ok(())
}

/// Commits the revision anchor once the round's data is durable.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.save_sync_anchor"))]
pub async fn save_sync_anchor(pool: &PgPool, url: &str, anchor: &str, filter: &serde_json::Value) -> Result<()> {
    sqlx::query(
        "UPDATE upstream_state SET sync_anchor = $2, sync_filter = $3, updated_at = now() WHERE upstream_url = $1",
    )
    .bind(url)
    .bind(anchor)
    .bind(filter)
    .execute(pool)
    .await?;
    Ok(())
}

/// Commits the deployment anchor once the approvals it covers are stored.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.save_deployment_anchor"))]
pub async fn save_deployment_anchor(pool: &PgPool, url: &str, anchor: &str) -> Result<()> {
    sqlx::query("UPDATE upstream_state SET deployment_anchor = $2, updated_at = now() WHERE upstream_url = $1")
        .bind(url)
        .bind(anchor)
        .execute(pool)
        .await?;
    Ok(())
}

/// The upstream is another server than the anchors were taken from (ServerChanged): the
/// configuration, sync and deployment anchors go, with the cookie, and the next sync lists
/// everything again (MS-WSUSSS 2.2.9.3: "The DSS MUST reset the ConfigAnchor, SyncAnchor,
/// and DeploymentAnchor").
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.reset_anchors"))]
pub async fn reset_anchors(pool: &PgPool, url: &str) -> Result<()> {
    // What the other server sent unreadable is not this one's to ask for.
    sqlx::query("DELETE FROM quarantined_document WHERE upstream_url = $1").bind(url).execute(pool).await?;
    sqlx::query(
        "UPDATE upstream_state SET config_anchor = NULL, sync_anchor = NULL, sync_filter = NULL, \
            deployment_anchor = NULL, cookie_expiration = NULL, cookie_encrypted_data = NULL, auth_cookie_data = NULL, \
            updated_at = now() WHERE upstream_url = $1",
    )
    .bind(url)
    .execute(pool)
    .await?;
    Ok(())
}

/// Sets aside documents that could not be read: (update, revision, why).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.quarantine"))]
pub async fn quarantine(pool: &PgPool, url: &str, unreadable: &[(Uuid, i32, String)]) -> Result<()> {
    if unreadable.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO quarantined_document (upstream_url, update_id, revision_number, error) \
         SELECT $1, u, n, e FROM unnest($2::uuid[], $3::int4[], $4::text[]) AS x(u, n, e) \
         ON CONFLICT (upstream_url, update_id, revision_number) DO UPDATE SET error = EXCLUDED.error, \
            last_tried_at = now(), attempts = quarantined_document.attempts + 1",
    )
    .bind(url)
    .bind(unreadable.iter().map(|(u, _, _)| *u).collect::<Vec<_>>())
    .bind(unreadable.iter().map(|(_, n, _)| *n).collect::<Vec<_>>())
    .bind(unreadable.iter().map(|(_, _, e)| e.clone()).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

/// The revisions set aside from this upstream, to ask for again.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.quarantined"))]
pub async fn quarantined(pool: &PgPool, url: &str) -> Result<Vec<(Uuid, i32)>> {
    Ok(sqlx::query_as(
        "SELECT update_id, revision_number FROM quarantined_document WHERE upstream_url = $1 \
         ORDER BY update_id, revision_number",
    )
    .bind(url)
    .fetch_all(pool)
    .await?)
}

/// Forgets a quarantined revision the upstream no longer sends.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.forget_quarantined"))]
pub async fn forget_quarantined(pool: &PgPool, url: &str, id: (Uuid, i32)) -> Result<()> {
    sqlx::query("DELETE FROM quarantined_document WHERE upstream_url = $1 AND update_id = $2 AND revision_number = $3")
        .bind(url)
        .bind(id.0)
        .bind(id.1)
        .execute(pool)
        .await?;
    Ok(())
}

/// Releases from quarantine the revisions now stored.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.release_stored"))]
pub async fn release_stored(pool: &PgPool, url: &str) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM quarantined_document q USING revision r \
         WHERE q.upstream_url = $1 AND r.update_id = q.update_id AND r.revision_number = q.revision_number",
    )
    .bind(url)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Forgets the cookie (the upstream refused it).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.drop_cookie"))]
pub async fn drop_cookie(pool: &PgPool, url: &str) -> Result<()> {
    sqlx::query(
        "UPDATE upstream_state SET cookie_expiration = NULL, cookie_encrypted_data = NULL, auth_cookie_data = NULL \
         WHERE upstream_url = $1",
    )
    .bind(url)
    .execute(pool)
    .await?;
    Ok(())
}

/// The session-level advisory lock that makes one sync per upstream run at a time across
/// replicas; held for as long as the returned connection lives (Postgres releases it
/// when the session ends, so a killed worker never leaves it held).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.try_lock"))]
pub async fn try_lock(pool: &PgPool, url: &str) -> Result<Option<PoolConnection<Postgres>>> {
    let mut conn = pool.acquire().await?;
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtext('wsus-sync:' || $1)::int8)")
        .bind(url)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(None);
    }
    Ok(Some(conn))
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.unlock"))]
pub async fn unlock(mut conn: PoolConnection<Postgres>, url: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_unlock(hashtext('wsus-sync:' || $1)::int8)").bind(url).execute(&mut *conn).await?;
    Ok(())
}

/// Which of these revisions the catalog already holds.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.held"))]
pub async fn held(pool: &PgPool, ids: &[(Uuid, i32)]) -> Result<std::collections::HashSet<(Uuid, i32)>> {
    let updates: Vec<Uuid> = ids.iter().map(|(u, _)| *u).collect();
    let revisions: Vec<i32> = ids.iter().map(|(_, r)| *r).collect();
    let rows: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT r.update_id, r.revision_number FROM unnest($1::uuid[], $2::int4[]) AS k(u, n) \
         JOIN revision r ON r.update_id = k.u AND r.revision_number = k.n",
    )
    .bind(&updates)
    .bind(&revisions)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Every category of a kind (`Product`, `UpdateClassification`...) the catalog holds;
/// products include product families and companies, which a filter may name too.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.categories_of_kind"))]
pub async fn categories_of_kind(pool: &PgPool, classifications: bool) -> Result<Vec<Uuid>> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT DISTINCT update_id FROM revision WHERE update_type = 'Category' \
         AND (category_type = 'UpdateClassification') = $1 ORDER BY update_id",
    )
    .bind(classifications)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(u,)| u).collect())
}

/// Queues the files this server wants and lacks: every file when `all`, else those of
/// approved updates and of the updates they bundle, however deep (a real bundle holds
/// bundles: KB2267602 holds 1f9bd9bb, which holds the engine's update). Returns how many
/// were added.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.queue_wanted_files"))]
pub async fn queue_wanted_files(pool: &PgPool, all: bool) -> Result<u64> {
    // Members match by update (any revision held), so a file is queued rather than missed.
    let done = sqlx::query(
        "WITH RECURSIVE wanted(update_id) AS ( \
             SELECT d.update_id FROM deployment d \
             WHERE d.deleted_at IS NULL AND d.action IN ('Install', 'OptionalInstall') AND NOT $1 \
             UNION \
             SELECT b.member_update_id FROM wanted w JOIN revision a ON a.update_id = w.update_id \
             JOIN bundle_member b ON b.revision_id = a.revision_id) \
         INSERT INTO content_download (sha1, reason) \
         SELECT DISTINCT f.sha1, CASE WHEN $1 THEN 'immediate' ELSE 'approved' END FROM file f \
         JOIN revision_file rf USING (sha1) JOIN revision r USING (revision_id) \
         WHERE f.content_state NOT IN ('present', 'quarantined') \
         AND ($1 OR r.update_id IN (SELECT update_id FROM wanted)) \
         ON CONFLICT (sha1) DO NOTHING",
    )
    .bind(all)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A file to fetch.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Download {
    pub sha1: Vec<u8>,
    pub sha256: Option<Vec<u8>>,
    pub size: i64,
    pub file_name: String,
    pub mu_url: Option<String>,
    pub attempts: i32,
}

/// Files due for download, oldest request first.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.due_downloads"))]
pub async fn due_downloads(pool: &PgPool, limit: i64) -> Result<Vec<Download>> {
    Ok(sqlx::query_as(
        "SELECT f.sha1, f.sha256, f.size, f.file_name, f.mu_url, q.attempts FROM content_download q JOIN file f USING (sha1) \
         WHERE q.next_attempt_at <= now() ORDER BY q.requested_at, q.sha1 LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The file is stored and verified: servable from now on.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.download_done"))]
pub async fn download_done(pool: &PgPool, sha1: &[u8]) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM content_download WHERE sha1 = $1").bind(sha1).execute(&mut *tx).await?;
    sqlx::query("UPDATE file SET content_state = 'present', content_changed_at = now() WHERE sha1 = $1")
        .bind(sha1)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The download failed: retried later with backoff; bytes that did not match their
/// digests mark the file quarantined until a later attempt succeeds.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.download_failed"))]
pub async fn download_failed(pool: &PgPool, sha1: &[u8], error: &str, mismatch: bool) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE content_download SET attempts = attempts + 1, last_error = $2, \
         next_attempt_at = now() + least(interval '1 hour', interval '5 seconds' * power(2, attempts)) WHERE sha1 = $1",
    )
    .bind(sha1)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    let state = if mismatch { "quarantined" } else { "failed" };
    sqlx::query("UPDATE file SET content_state = $2, content_changed_at = now() WHERE sha1 = $1")
        .bind(sha1)
        .bind(state)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// How many downloads are queued.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.queued_downloads"))]
pub async fn queued_downloads(pool: &PgPool) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM content_download").fetch_one(pool).await?;
    Ok(n)
}

/// Revisions whose documents say their files are encrypted (SecuredFragment
/// `FileDecryption`) and which have an encrypted file without its key.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.needing_decryption"))]
pub async fn needing_decryption(pool: &PgPool) -> Result<Vec<(Uuid, i32)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT r.update_id, r.revision_number FROM revision r \
         JOIN revision_file rf ON rf.revision_id = r.revision_id JOIN file f ON f.sha1 = rf.sha1 \
         WHERE r.secured_fragment = 'FileDecryption' AND f.is_encrypted AND f.decryption_key IS NULL \
         ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await?)
}

/// Stores file decryption keys from the upstream.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.set_decryption_keys"))]
pub async fn set_decryption_keys(pool: &PgPool, keys: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
    let (sha1s, values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = keys.iter().cloned().unzip();
    sqlx::query(
        "UPDATE file f SET decryption_key = k.key FROM unnest($1::bytea[], $2::bytea[]) AS k(sha1, key) WHERE f.sha1 = k.sha1",
    )
    .bind(&sha1s)
    .bind(&values)
    .execute(pool)
    .await?;
    Ok(())
}

/// What the last rollup to this upstream left: its RollupResetGuid and when it ran.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.rollup_state"))]
pub async fn rollup_state(pool: &PgPool, url: &str) -> Result<(Option<Uuid>, Option<DateTime<Utc>>)> {
    let row: Option<(Option<Uuid>, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT rollup_reset_guid, last_rollup_time FROM upstream_state WHERE upstream_url = $1")
            .bind(url)
            .fetch_optional(pool)
            .await?;
    Ok(row.unwrap_or_default())
}

/// Records a completed rollup.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.dss.save_rollup"))]
pub async fn save_rollup(pool: &PgPool, url: &str, reset_guid: Uuid, at: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "INSERT INTO upstream_state (upstream_url, rollup_reset_guid, last_rollup_time) VALUES ($1, $2, $3) \
         ON CONFLICT (upstream_url) DO UPDATE SET rollup_reset_guid = EXCLUDED.rollup_reset_guid, \
            last_rollup_time = EXCLUDED.last_rollup_time",
    )
    .bind(url)
    .bind(reset_guid)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}
