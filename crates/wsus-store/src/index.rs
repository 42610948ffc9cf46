//! What a gateway loads to answer clients from memory: the catalog index input and the
//! registered computers with their groups.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::PgPool;
use uuid::Uuid;
use wsus_catalog::index::{IndexDeployment, IndexDriver, IndexInput, IndexRevision};
use wsus_metadata::UpdateIdentity;

use crate::Result;

/// Channel notified (payload: the computer id) when a computer registers or its groups change.
pub const COMPUTERS_CHANNEL: &str = "wsus_computers";

/// Loads everything the in-memory index is built from, in one repeatable-read snapshot.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.index.load"))]
pub async fn load(pool: &PgPool) -> Result<IndexInput> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
    let (version,): (i64,) = sqlx::query_as("SELECT version FROM catalog_state").fetch_one(&mut *tx).await?;
    type Row = (i32, Uuid, i32, String, Option<String>, bool, i64, NaiveDate, Vec<Uuid>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.revision_id, r.update_id, r.revision_number, r.update_type, r.category_type, r.is_leaf, r.changed_version, \
                r.imported_at::date, \
                COALESCE((SELECT array_agg(c.category_update_id) FROM revision_category c WHERE c.revision_id = r.revision_id), '{}') \
         FROM revision r ORDER BY r.revision_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut at: HashMap<i32, usize> = HashMap::with_capacity(rows.len());
    let mut revisions: Vec<IndexRevision> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (rid, u, n, t, category_type, leaf, cv, imported, cats))| {
            at.insert(rid, i);
            IndexRevision {
                revision_id: rid,
                identity: UpdateIdentity { update_id: u, revision_number: n },
                update_type: crate::revisions::parse_type(&t),
                category_type,
                is_leaf: leaf,
                categories: cats,
                prerequisites: Vec::new(),
                bundled: Vec::new(),
                changed: imported,
                changed_version: cv,
            }
        })
        .collect();
    let mut relationships = crate::revisions::relationships(&mut tx).await?;
    for (rid, &i) in &at {
        revisions[i].prerequisites = relationships.prerequisites.remove(rid).unwrap_or_default();
        revisions[i].bundled =
            relationships.bundled.remove(rid).map(|b| b.into_iter().flatten().collect()).unwrap_or_default();
    }
    type Dep = (i32, Uuid, Uuid, String, Option<chrono::DateTime<chrono::Utc>>, NaiveDate, i64);
    let deployments: Vec<Dep> = sqlx::query_as(
        "SELECT wire_id, update_id, group_id, action, deadline, last_change_time::date, changed_version \
         FROM deployment WHERE deleted_at IS NULL",
    )
    .fetch_all(&mut *tx)
    .await?;
    let declined: Vec<(Uuid,)> = sqlx::query_as("SELECT update_id FROM declined_update").fetch_all(&mut *tx).await?;
    let approval_changes: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT update_id, max(GREATEST(changed_version, COALESCE(deleted_version, 0))) FROM deployment GROUP BY update_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let groups: Vec<(Uuid, Option<Uuid>, String)> =
        sqlx::query_as("SELECT group_id, parent_group_id, name FROM target_group").fetch_all(&mut *tx).await?;
    let drivers = load_drivers(&mut tx).await?;
    tx.commit().await?;
    Ok(IndexInput {
        version,
        revisions,
        deployments: deployments
            .into_iter()
            .map(|(wire_id, update_id, group_id, action, deadline, last_change, changed_version)| IndexDeployment {
                wire_id,
                update_id,
                group_id,
                action,
                deadline,
                last_change,
                changed_version,
            })
            .collect(),
        declined: declined.into_iter().map(|(u,)| u).collect(),
        groups: groups.iter().map(|(g, p, _)| (*g, *p)).collect(),
        group_names: groups.into_iter().map(|(g, _, n)| (n, g)).collect(),
        approval_changes,
        drivers,
    })
}

async fn load_drivers(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<Vec<IndexDriver>> {
    type Row = (i32, String, Option<NaiveDate>, Option<i64>, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT revision_id, hardware_id, driver_ver_date, driver_ver_version, class, manufacturer, provider FROM driver",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut drivers: Vec<IndexDriver> = rows
        .into_iter()
        .map(|(revision_id, hardware_id, date, version, class, manufacturer, provider)| IndexDriver {
            revision_id,
            hardware_id,
            date,
            version: version.map(|v| v as u64),
            class,
            manufacturer,
            provider,
            feature_scores: Vec::new(),
            computer_hardware_ids: Vec::new(),
        })
        .collect();
    let at: HashMap<(i32, String), usize> =
        drivers.iter().enumerate().map(|(i, d)| ((d.revision_id, d.hardware_id.clone()), i)).collect();
    let scores: Vec<(i32, String, String, i16)> =
        sqlx::query_as("SELECT revision_id, hardware_id, operating_system, feature_score FROM driver_feature_score")
            .fetch_all(&mut **tx)
            .await?;
    for (rid, hw, os, score) in scores {
        if let Some(&i) = at.get(&(rid, hw)) {
            drivers[i].feature_scores.push((os, score.clamp(0, 255) as u8));
        }
    }
    let computers: Vec<(i32, String, Uuid)> =
        sqlx::query_as("SELECT revision_id, hardware_id, computer_hardware_id FROM driver_computer_hardware_id")
            .fetch_all(&mut **tx)
            .await?;
    for (rid, hw, c) in computers {
        if let Some(&i) = at.get(&(rid, hw)) {
            drivers[i].computer_hardware_ids.push(c);
        }
    }
    Ok(drivers)
}

/// Registered computers (of this server, not rolled up) and their groups.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.index.registered_computers"))]
pub async fn registered_computers(pool: &PgPool) -> Result<Vec<(String, Vec<Uuid>)>> {
    Ok(sqlx::query_as(
        "SELECT c.computer_id, COALESCE(array_agg(m.group_id) FILTER (WHERE m.group_id IS NOT NULL), '{}') \
         FROM computer c LEFT JOIN computer_group_membership m USING (computer_id) \
         WHERE c.registered_at IS NOT NULL AND c.parent_server_id IS NULL GROUP BY c.computer_id",
    )
    .fetch_all(pool)
    .await?)
}

/// One computer's registration and groups (after a notification).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.index.registered_computer"))]
pub async fn registered_computer(pool: &PgPool, computer_id: &str) -> Result<Option<Vec<Uuid>>> {
    let row: Option<(Vec<Uuid>,)> = sqlx::query_as(
        "SELECT COALESCE(array_agg(m.group_id) FILTER (WHERE m.group_id IS NOT NULL), '{}') \
         FROM computer c LEFT JOIN computer_group_membership m USING (computer_id) \
         WHERE c.computer_id = $1 AND c.registered_at IS NOT NULL GROUP BY c.computer_id",
    )
    .bind(computer_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(g,)| g))
}
