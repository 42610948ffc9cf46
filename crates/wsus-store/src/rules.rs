//! Automatic approval rules, and the catalog housekeeping that runs with them: new
//! revisions matching a rule are approved, approvals follow an update's newest revision,
//! expired updates are declined.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Result, catalog};

/// A rule: updates in any of the classifications AND any of the products (an empty list
/// matches all) are approved for install for each group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Rule {
    pub rule_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub classification_ids: Vec<Uuid>,
    pub product_ids: Vec<Uuid>,
    pub group_ids: Vec<Uuid>,
    /// Install or OptionalInstall.
    pub action: String,
    /// Deadline this many hours after the approval; None = no deadline.
    pub deadline_offset_hours: Option<i32>,
}

const SELECT_RULE: &str = "SELECT rule_id, name, enabled, classification_ids, product_ids, group_ids, action, \
    (extract(epoch FROM deadline_offset) / 3600)::int4 AS deadline_offset_hours FROM auto_approval_rule";

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rules.list"))]
pub async fn list(pool: &PgPool) -> Result<Vec<Rule>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_RULE} ORDER BY lower(name), rule_id")))
        .fetch_all(pool)
        .await?)
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rules.get"))]
pub async fn get(pool: &PgPool, rule_id: Uuid) -> Result<Option<Rule>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_RULE} WHERE rule_id = $1")))
        .bind(rule_id)
        .fetch_optional(pool)
        .await?)
}

/// Creates or replaces a rule. A new rule applies to revisions that arrive from now on;
/// `apply` with `everything` runs it over the whole catalog.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rules.put"))]
pub async fn put(pool: &PgPool, r: &Rule) -> Result<()> {
    sqlx::query(
        "INSERT INTO auto_approval_rule (rule_id, name, enabled, classification_ids, product_ids, group_ids, action, \
            deadline_offset, applied_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, make_interval(hours => $8), (SELECT version FROM catalog_state)) \
         ON CONFLICT (rule_id) DO UPDATE SET name = EXCLUDED.name, enabled = EXCLUDED.enabled, \
            classification_ids = EXCLUDED.classification_ids, product_ids = EXCLUDED.product_ids, \
            group_ids = EXCLUDED.group_ids, action = EXCLUDED.action, deadline_offset = EXCLUDED.deadline_offset, \
            updated_at = now()",
    )
    .bind(r.rule_id)
    .bind(&r.name)
    .bind(r.enabled)
    .bind(&r.classification_ids)
    .bind(&r.product_ids)
    .bind(&r.group_ids)
    .bind(&r.action)
    .bind(r.deadline_offset_hours)
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rules.delete"))]
pub async fn delete(pool: &PgPool, rule_id: Uuid) -> Result<bool> {
    let done = sqlx::query("DELETE FROM auto_approval_rule WHERE rule_id = $1").bind(rule_id).execute(pool).await?;
    Ok(done.rows_affected() > 0)
}

/// What applying the rules did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Approvals made by rules.
    pub approved: u64,
    /// Approvals moved to their update's newest revision.
    pub revisions_followed: u64,
    /// Expired updates declined.
    pub expired_declined: u64,
}

/// Applies enabled rules to revisions that changed since each last ran (`everything`:
/// to the whole catalog, or only rule `only`), moves approvals to their update's newest
/// revision and declines expired updates. One transaction; the catalog version moves
/// when something changed.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rules.apply"))]
pub async fn apply(pool: &PgPool, only: Option<Uuid>, everything: bool) -> Result<Applied> {
    let mut tx = pool.begin().await?;
    let (version,): (i64,) = sqlx::query_as("SELECT version FROM catalog_state FOR UPDATE").fetch_one(&mut *tx).await?;
    let next = version + 1;

    // Approvable: the newest revision of a published software or driver update that no
    // bundle contains (members are installed through their bundle), not declined.
    let approved = sqlx::query(
        "WITH latest AS (SELECT DISTINCT ON (update_id) * FROM revision ORDER BY update_id, revision_number DESC), \
         candidate AS (SELECT a.rule_id, a.name, a.action, a.deadline_offset, g AS group_id, r.update_id, \
                              r.revision_number, r.eula_id \
             FROM auto_approval_rule a CROSS JOIN LATERAL unnest(a.group_ids) AS g \
             JOIN latest r ON r.update_type IN ('Software', 'Driver') AND r.publication_state = 'Published' \
             WHERE a.enabled AND ($1::uuid IS NULL OR a.rule_id = $1) \
               AND ($2 OR r.changed_version > a.applied_version) \
               AND EXISTS (SELECT 1 FROM target_group t WHERE t.group_id = g) \
               AND NOT EXISTS (SELECT 1 FROM bundle_member b WHERE b.member_update_id = r.update_id) \
               AND NOT EXISTS (SELECT 1 FROM declined_update d WHERE d.update_id = r.update_id) \
               AND (cardinality(a.classification_ids) = 0 OR EXISTS (SELECT 1 FROM revision_category c \
                    WHERE c.revision_id = r.revision_id AND c.category_update_id = ANY(a.classification_ids))) \
               AND (cardinality(a.product_ids) = 0 OR EXISTS (SELECT 1 FROM revision_category c \
                    WHERE c.revision_id = r.revision_id AND c.category_update_id = ANY(a.product_ids))) \
               AND NOT EXISTS (SELECT 1 FROM deployment p WHERE p.update_id = r.update_id AND p.group_id = g \
                               AND p.deleted_at IS NULL)), \
         eulas AS (INSERT INTO accepted_eula (eula_id, accepted_by, changed_version) \
             SELECT DISTINCT eula_id, 'rule', $3 FROM candidate WHERE eula_id IS NOT NULL ON CONFLICT DO NOTHING) \
         INSERT INTO deployment (deployment_id, update_id, revision_number, group_id, action, deadline, admin_name, \
             origin, changed_version) \
         SELECT DISTINCT ON (update_id, group_id) gen_random_uuid(), update_id, revision_number, group_id, action, \
             now() + deadline_offset, 'rule: ' || name, 'rule', $3 FROM candidate ORDER BY update_id, group_id, rule_id",
    )
    .bind(only)
    .bind(everything)
    .bind(next)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let revisions_followed = follow_new_revisions(&mut tx, next).await?;

    let expired_declined = decline_expired_in(&mut tx, next).await?;
    let applied = Applied { approved, revisions_followed, expired_declined };
    // The rules have seen the catalog up to the version this run leaves.
    let seen = if applied != Applied::default() {
        let v = catalog::bump(&mut *tx).await?;
        debug_assert_eq!(v, next);
        next
    } else {
        version
    };
    sqlx::query(
        "UPDATE auto_approval_rule SET applied_version = $2 WHERE enabled AND ($1::uuid IS NULL OR rule_id = $1)",
    )
    .bind(only)
    .bind(seen)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(applied)
}

/// Declines every update whose newest revision is expired (cleanup runs this besides the
/// rules); returns how many.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rules.decline_expired"))]
pub async fn decline_expired(pool: &PgPool) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let (version,): (i64,) = sqlx::query_as("SELECT version FROM catalog_state FOR UPDATE").fetch_one(&mut *tx).await?;
    let n = decline_expired_in(&mut tx, version + 1).await?;
    if n > 0 {
        catalog::bump(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// Declines every update whose newest revision is expired, and removes its approvals.
async fn decline_expired_in(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, version: i64) -> Result<u64> {
    let declined: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO declined_update (update_id, declined_by, changed_version) \
         SELECT update_id, 'expired', $1 FROM (SELECT DISTINCT ON (update_id) update_id, publication_state \
             FROM revision WHERE update_type IN ('Software', 'Driver') ORDER BY update_id, revision_number DESC) l \
         WHERE l.publication_state = 'Expired' ON CONFLICT DO NOTHING RETURNING update_id",
    )
    .bind(version)
    .fetch_all(&mut **tx)
    .await?;
    let ids: Vec<Uuid> = declined.into_iter().map(|(u,)| u).collect();
    sqlx::query(
        "UPDATE deployment SET deleted_at = now(), deleted_version = $2 WHERE update_id = ANY($1) AND deleted_at IS NULL",
    )
    .bind(&ids)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(ids.len() as u64)
}
/// An approved update's new revision is approved in its stead, as WSUS's automatic
/// approval refresh does: a new approval of the new revision (a new deployment, so a
/// replica downstream server, told of it by GetDeployments, approves that revision too),
/// the old one removed (sent as a dead deployment). A new revision whose license terms
/// nobody accepted keeps the old approval: WSUS refreshes approvals "only if the new
/// revision does not require a new license agreement". Returns how many moved.
async fn follow_new_revisions(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, version: i64) -> Result<u64> {
    let moves: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT p.deployment_id, l.revision_number FROM deployment p \
         JOIN (SELECT DISTINCT ON (update_id) update_id, revision_number, eula_id FROM revision \
               ORDER BY update_id, revision_number DESC) l ON l.update_id = p.update_id \
         WHERE p.deleted_at IS NULL AND p.revision_number < l.revision_number \
           AND (l.eula_id IS NULL OR EXISTS (SELECT 1 FROM accepted_eula e WHERE e.eula_id = l.eula_id)) \
         FOR UPDATE OF p",
    )
    .fetch_all(&mut **tx)
    .await?;
    if moves.is_empty() {
        return Ok(0);
    }
    let (old, revision): (Vec<Uuid>, Vec<i32>) = moves.into_iter().unzip();
    let new: Vec<Uuid> = old.iter().map(|_| Uuid::new_v4()).collect();
    sqlx::query("UPDATE deployment SET deleted_at = now(), deleted_version = $2 WHERE deployment_id = ANY($1)")
        .bind(&old)
        .bind(version)
        .execute(&mut **tx)
        .await?;
    let moved = sqlx::query(
        "INSERT INTO deployment (deployment_id, update_id, revision_number, group_id, action, deadline, is_assigned, \
            download_priority, go_live_time, admin_name, origin, last_change_time, changed_version) \
         SELECT m.new_id, p.update_id, m.revision, p.group_id, p.action, p.deadline, p.is_assigned, \
                p.download_priority, now(), p.admin_name, p.origin, now(), $4 \
         FROM unnest($1::uuid[], $2::uuid[], $3::int4[]) AS m(old_id, new_id, revision) \
         JOIN deployment p ON p.deployment_id = m.old_id",
    )
    .bind(&old)
    .bind(&new)
    .bind(&revision)
    .bind(version)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(moved)
}
