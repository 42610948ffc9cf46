//! What this server answers downstream servers (MS-WSUSSS as USS): which revisions changed
//! since an anchor, which belong to categories, the documents and their files, and the
//! downstream servers it knows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Result;

/// Revisions of categories and detectoids changed after catalog version `since` (all of
/// them for None): the GetConfig=true list. Every revision, not only the latest, as a
/// real WSUS answers (a downstream then holds exactly what its upstream holds).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.configuration_revisions"))]
pub async fn configuration_revisions(pool: &PgPool, since: Option<i64>) -> Result<Vec<(Uuid, i32)>> {
    Ok(sqlx::query_as(
        "SELECT update_id, revision_number FROM revision \
         WHERE update_type IN ('Category', 'Detectoid') AND ($1::int8 IS NULL OR changed_version > $1) \
         ORDER BY update_id, revision_number",
    )
    .bind(since)
    .fetch_all(pool)
    .await?)
}

/// A GetRevisionIdList filter of updates: a revision must belong to one of `products`
/// and one of `classifications` (directly or through a bundle). Those listed with
/// `Delta=false` ask for every revision they hold, whatever the anchor (MS-WSUSSS
/// 3.1.4.5.3.3 IdAndDelta: "Specifies if only update revisions newer than the time
/// denoted by the anchor are requested"): a downstream that adds a product asks for it
/// in full and the rest as a delta.
#[derive(Debug, Clone, Copy)]
pub struct UpdateFilter<'a> {
    pub products: &'a [Uuid],
    pub classifications: &'a [Uuid],
    pub whole_products: &'a [Uuid],
    pub whole_classifications: &'a [Uuid],
}

/// Revisions of updates and drivers changed after `since` (all for None), or belonging
/// to a category asked for whole, that `filter` selects; every one when there is no
/// filter.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.update_revisions"))]
pub async fn update_revisions(
    pool: &PgPool,
    since: Option<i64>,
    filter: Option<UpdateFilter<'_>>,
) -> Result<Vec<(Uuid, i32)>> {
    let none: &[Uuid] = &[];
    let f = filter.unwrap_or(UpdateFilter {
        products: none,
        classifications: none,
        whole_products: none,
        whole_classifications: none,
    });
    Ok(sqlx::query_as(
        "SELECT update_id, revision_number FROM revision r \
         WHERE update_type IN ('Software', 'Driver') \
           AND ($1::int8 IS NULL OR changed_version > $1 \
                OR EXISTS (SELECT 1 FROM revision_category c WHERE c.revision_id = r.revision_id \
                             AND c.category_update_id = ANY($5)) \
                OR EXISTS (SELECT 1 FROM revision_category c WHERE c.revision_id = r.revision_id \
                             AND c.category_update_id = ANY($6))) \
           AND ($2 OR (EXISTS (SELECT 1 FROM revision_category c WHERE c.revision_id = r.revision_id \
                                 AND c.category_update_id = ANY($3)) \
                   AND EXISTS (SELECT 1 FROM revision_category c WHERE c.revision_id = r.revision_id \
                                 AND c.category_update_id = ANY($4)))) \
         ORDER BY update_id, revision_number",
    )
    .bind(since)
    .bind(filter.is_none())
    .bind(f.products)
    .bind(f.classifications)
    .bind(f.whole_products)
    .bind(f.whole_classifications)
    .fetch_all(pool)
    .await?)
}

/// A document a downstream server asked for, with its files.
#[derive(Debug, Clone)]
pub struct Document {
    pub update_id: Uuid,
    pub revision_number: i32,
    pub xml: String,
    pub files: Vec<DocumentFile>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DocumentFile {
    pub sha1: Vec<u8>,
    pub file_name: String,
    /// Where Microsoft Update serves it; None for files imported without one.
    pub mu_url: Option<String>,
}

/// The documents of these exact revisions; None when any is unknown (all or nothing).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.documents"))]
pub async fn documents(pool: &PgPool, ids: &[(Uuid, i32)]) -> Result<Option<Vec<Document>>> {
    let updates: Vec<Uuid> = ids.iter().map(|(u, _)| *u).collect();
    let revisions: Vec<i32> = ids.iter().map(|(_, r)| *r).collect();
    let rows: Vec<(i32, Uuid, i32, Vec<u8>)> = sqlx::query_as(
        "SELECT r.revision_id, r.update_id, r.revision_number, x.body FROM unnest($1::uuid[], $2::int4[]) AS k(u, n) \
         JOIN revision r ON r.update_id = k.u AND r.revision_number = k.n JOIN revision_xml x USING (revision_id)",
    )
    .bind(&updates)
    .bind(&revisions)
    .fetch_all(pool)
    .await?;
    let found: std::collections::HashMap<(Uuid, i32), (i32, String)> = rows
        .into_iter()
        .map(|(rid, u, n, body)| ((u, n), (rid, String::from_utf8_lossy(&body).into_owned())))
        .collect();
    if ids.iter().any(|k| !found.contains_key(k)) {
        return Ok(None);
    }
    let rids: Vec<i32> = found.values().map(|(rid, _)| *rid).collect();
    let files: Vec<(i32, Vec<u8>, String, Option<String>)> = sqlx::query_as(
        "SELECT rf.revision_id, f.sha1, f.file_name, f.mu_url FROM revision_file rf JOIN file f USING (sha1) \
         WHERE rf.revision_id = ANY($1) ORDER BY rf.revision_id, rf.ordinal",
    )
    .bind(&rids)
    .fetch_all(pool)
    .await?;
    // A revision asked for twice is answered twice, as WSUS does.
    let docs = ids
        .iter()
        .map(|k| {
            let (rid, xml) = found.get(k).cloned().expect("every id was found");
            Document {
                update_id: k.0,
                revision_number: k.1,
                xml,
                files: files
                    .iter()
                    .filter(|(r, ..)| *r == rid)
                    .map(|(_, sha1, name, url)| DocumentFile {
                        sha1: sha1.clone(),
                        file_name: name.clone(),
                        mu_url: url.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Some(docs))
}

/// Records a downstream server that asked for authorization (first sight adds it).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.record_downstream_server"))]
pub async fn record_downstream_server(pool: &PgPool, server_id: Uuid, fqdn: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO downstream_server (server_id, fqdn, last_auth_at) VALUES ($1, $2, now()) \
         ON CONFLICT (server_id) DO UPDATE SET fqdn = EXCLUDED.fqdn, last_auth_at = now()",
    )
    .bind(server_id)
    .bind(fqdn)
    .execute(pool)
    .await?;
    Ok(())
}

/// The name a downstream server last authorised with.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.downstream_server_fqdn"))]
pub async fn downstream_server_fqdn(pool: &PgPool, server_id: Uuid) -> Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT fqdn FROM downstream_server WHERE server_id = $1")
        .bind(server_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(f,)| f))
}

/// Languages changed after `since` (all for None): (LCID, short, long, enabled), "all" first.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.languages"))]
pub async fn languages(pool: &PgPool, since: Option<i64>) -> Result<Vec<(i32, String, String, bool)>> {
    Ok(sqlx::query_as(
        "SELECT lcid, short_name, long_name, enabled FROM language \
         WHERE $1::int8 IS NULL OR changed_version > $1 ORDER BY lcid",
    )
    .bind(since)
    .fetch_all(pool)
    .await?)
}

/// An approval as GetDeployments sends it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerDeployment {
    pub deployment_id: Uuid,
    pub update_id: Uuid,
    /// The approved revision, or the latest one for approvals that follow the update.
    pub revision_number: i32,
    pub group_id: Uuid,
    pub action: String,
    pub admin_name: Option<String>,
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
    pub is_assigned: bool,
    pub go_live_time: chrono::DateTime<chrono::Utc>,
    pub download_priority: i16,
}

/// Live approvals changed after catalog version `after` (all for None) up to `upto`, of
/// updates the catalog holds.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.deployments_between"))]
pub async fn deployments_between(pool: &PgPool, after: Option<i64>, upto: i64) -> Result<Vec<ServerDeployment>> {
    Ok(sqlx::query_as(
        "SELECT d.deployment_id, d.update_id, COALESCE(d.revision_number, latest.n) AS revision_number, d.group_id, \
                d.action, d.admin_name, d.deadline, d.is_assigned, d.go_live_time, d.download_priority \
         FROM deployment d JOIN LATERAL (SELECT max(revision_number) n FROM revision r WHERE r.update_id = d.update_id) latest \
           ON latest.n IS NOT NULL \
         WHERE d.deleted_at IS NULL AND ($1::int8 IS NULL OR d.changed_version > $1) AND d.changed_version <= $2 \
         ORDER BY d.changed_version, d.deployment_id",
    )
    .bind(after)
    .bind(upto)
    .fetch_all(pool)
    .await?)
}

/// Approvals removed after `after` up to `upto` (none on a first sync: there is nothing
/// downstream to remove).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.dead_deployments_between"))]
pub async fn dead_deployments_between(pool: &PgPool, after: Option<i64>, upto: i64) -> Result<Vec<Uuid>> {
    let Some(after) = after else { return Ok(Vec::new()) };
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT deployment_id FROM deployment WHERE deleted_at IS NOT NULL AND deleted_version > $1 AND deleted_version <= $2 \
         ORDER BY deployment_id",
    )
    .bind(after)
    .bind(upto)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(d,)| d).collect())
}

/// A revision, and the digest and key of one of its encrypted files.
pub type DecryptionData = (Uuid, i32, Vec<u8>, Option<Vec<u8>>);

/// The encrypted files of these revisions and their keys: (update, revision, SHA-1, key).
/// Revisions not in the catalog are left out.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.decryption_data"))]
pub async fn decryption_data(pool: &PgPool, ids: &[(Uuid, i32)]) -> Result<Vec<DecryptionData>> {
    let updates: Vec<Uuid> = ids.iter().map(|(u, _)| *u).collect();
    let revisions: Vec<i32> = ids.iter().map(|(_, r)| *r).collect();
    Ok(sqlx::query_as(
        "SELECT r.update_id, r.revision_number, f.sha1, f.decryption_key FROM unnest($1::uuid[], $2::int4[]) AS k(u, n) \
         JOIN revision r ON r.update_id = k.u AND r.revision_number = k.n \
         JOIN revision_file rf ON rf.revision_id = r.revision_id JOIN file f ON f.sha1 = rf.sha1 \
         WHERE f.is_encrypted ORDER BY r.update_id, r.revision_number, rf.ordinal",
    )
    .bind(&updates)
    .bind(&revisions)
    .fetch_all(pool)
    .await?)
}

/// Driver revisions for device hardware ids (compared case-insensitively): every one for
/// `all_ids`, those changed after `since` for `delta_ids`; limited to `categories` when
/// any are given.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.driver_revisions"))]
pub async fn driver_revisions(
    pool: &PgPool,
    since: Option<i64>,
    all_ids: &[String],
    delta_ids: &[String],
    categories: &[Uuid],
) -> Result<Vec<(Uuid, i32)>> {
    let lower = |ids: &[String]| ids.iter().map(|i| i.to_lowercase()).collect::<Vec<_>>();
    Ok(sqlx::query_as(
        "SELECT DISTINCT r.update_id, r.revision_number FROM driver d JOIN revision r USING (revision_id) \
         WHERE (lower(d.hardware_id) = ANY($2) OR (lower(d.hardware_id) = ANY($3) AND ($1::int8 IS NULL OR r.changed_version > $1))) \
           AND (cardinality($4::uuid[]) = 0 OR EXISTS (SELECT 1 FROM revision_category c \
                WHERE c.revision_id = r.revision_id AND c.category_update_id = ANY($4))) \
         ORDER BY 1, 2",
    )
    .bind(since)
    .bind(lower(all_ids))
    .bind(lower(delta_ids))
    .bind(categories)
    .fetch_all(pool)
    .await?)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DownstreamServer {
    pub server_id: Uuid,
    pub name: String,
    /// The server it syncs from; None = this one.
    pub parent_server_id: Option<Uuid>,
    pub version: Option<String>,
    pub is_replica: bool,
    pub last_sync_time: Option<DateTime<Utc>>,
    pub last_rollup_time: Option<DateTime<Utc>>,
    /// Computers known through it.
    pub computer_count: i64,
    pub computer_target_count: Option<i32>,
    pub computer_targets_needing_updates_count: Option<i32>,
    pub computer_targets_with_update_errors_count: Option<i32>,
    pub computers_up_to_date_count: Option<i32>,
}

/// A page of the downstream servers this server knows, by name.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.uss.downstream_servers"))]
pub async fn downstream_servers(
    pool: &PgPool,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<crate::KeysetPage<DownstreamServer, (String, Uuid)>> {
    let (name, id) = after.unwrap_or_default();
    let rows: Vec<DownstreamServer> = sqlx::query_as(
        "SELECT d.server_id, d.fqdn AS name, d.parent_server_id, d.version, d.is_replica, d.last_sync_time, \
            d.last_rollup_time, (SELECT count(*) FROM computer c WHERE c.parent_server_id = d.server_id) AS computer_count, \
            d.computer_target_count, d.computer_targets_needing_updates_count, \
            d.computer_targets_with_update_errors_count, d.computers_up_to_date_count \
         FROM downstream_server d WHERE (lower(d.fqdn), d.server_id) > ($1, $2) \
         ORDER BY lower(d.fqdn), d.server_id LIMIT $3",
    )
    .bind(name)
    .bind(id)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(crate::keyset(rows, limit, |d| (d.name.to_lowercase(), d.server_id), |d| d))
}
