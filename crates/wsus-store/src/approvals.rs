//! The administrator's levers over the catalog: target groups, approvals (deployments),
//! declines and accepted EULAs. Every change bumps the catalog version in the same
//! transaction, so every gateway serves it at the next scan.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{ErrorKind, HasKind, Result, StoreError, catalog};

/// Explicit deployment actions (Evaluate and Bundle are implied, never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Install,
    OptionalInstall,
    Uninstall,
    PreDeploymentCheck,
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Install => "Install",
            Action::OptionalInstall => "OptionalInstall",
            Action::Uninstall => "Uninstall",
            Action::PreDeploymentCheck => "PreDeploymentCheck",
            Action::Block => "Block",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Install" => Action::Install,
            "OptionalInstall" => Action::OptionalInstall,
            "Uninstall" => Action::Uninstall,
            "PreDeploymentCheck" => Action::PreDeploymentCheck,
            "Block" => Action::Block,
            _ => return None,
        })
    }
}

/// A target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Group {
    pub group_id: Uuid,
    pub name: String,
    pub parent_group_id: Option<Uuid>,
    pub is_builtin: bool,
}

/// A live approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub deployment_id: Uuid,
    pub update_id: Uuid,
    pub revision_number: Option<i32>,
    pub group_id: Uuid,
    pub action: Action,
    pub deadline: Option<DateTime<Utc>>,
    pub is_assigned: bool,
    pub download_priority: i16,
    pub admin_name: Option<String>,
    pub last_change_time: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct DeploymentRow {
    deployment_id: Uuid,
    update_id: Uuid,
    revision_number: Option<i32>,
    group_id: Uuid,
    action: String,
    deadline: Option<DateTime<Utc>>,
    is_assigned: bool,
    download_priority: i16,
    admin_name: Option<String>,
    last_change_time: DateTime<Utc>,
}

impl TryFrom<DeploymentRow> for Deployment {
    type Error = StoreError;
    fn try_from(r: DeploymentRow) -> Result<Self> {
        Ok(Deployment {
            action: Action::parse(&r.action)
                .ok_or_else(|| StoreError::Corrupt { what: "deployment.action", value: r.action.clone() })?,
            deployment_id: r.deployment_id,
            update_id: r.update_id,
            revision_number: r.revision_number,
            group_id: r.group_id,
            deadline: r.deadline,
            is_assigned: r.is_assigned,
            download_priority: r.download_priority,
            admin_name: r.admin_name,
            last_change_time: r.last_change_time,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("update {0} is not in the catalog")]
    UnknownUpdate(Uuid),
    #[error("target group {0} does not exist")]
    UnknownGroup(Uuid),
    #[error("update {0} is declined")]
    Declined(Uuid),
    #[error(
        "update {update_id} needs its license terms (EULA {eula_id}) accepted before it can be approved for install"
    )]
    EulaNotAccepted { update_id: Uuid, eula_id: Uuid },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ApprovalError {
    fn from(e: sqlx::Error) -> Self {
        ApprovalError::Store(e.into())
    }
}

impl HasKind for ApprovalError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApprovalError::UnknownUpdate(_) | ApprovalError::UnknownGroup(_) => ErrorKind::NotFound,
            ApprovalError::Declined(_) | ApprovalError::EulaNotAccepted { .. } => ErrorKind::Conflict,
            ApprovalError::Store(e) => e.kind(),
        }
    }
}

/// What to approve.
#[derive(Debug, Clone)]
pub struct Approval {
    pub update_id: Uuid,
    pub group_id: Uuid,
    pub action: Action,
    pub deadline: Option<DateTime<Utc>>,
    pub admin_name: Option<String>,
}

/// Approves an update for a group (keyed to the update: new revisions inherit it),
/// replacing the group's previous approval of it. Returns the deployment id.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.approve"))]
pub async fn approve(pool: &PgPool, a: &Approval) -> std::result::Result<Uuid, ApprovalError> {
    approve_in_one(pool, a, None).await
}

/// Approves as [`approve`] does, accepting the license terms of the update's latest
/// revision (if it has any) as `accepted_by` in the same transaction: an approval
/// refused for any reason leaves them as they were.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.approve_accepting_eula"))]
pub async fn approve_accepting_eula(
    pool: &PgPool,
    a: &Approval,
    accepted_by: &str,
) -> std::result::Result<Uuid, ApprovalError> {
    approve_in_one(pool, a, Some(accepted_by)).await
}

async fn approve_in_one(
    pool: &PgPool,
    a: &Approval,
    accept_eula_as: Option<&str>,
) -> std::result::Result<Uuid, ApprovalError> {
    let mut tx = pool.begin().await?;
    let latest: Option<(i32, Option<Uuid>, bool)> = sqlx::query_as(
        "SELECT revision_number, eula_id, EXISTS (SELECT 1 FROM accepted_eula e WHERE e.eula_id = r.eula_id) \
         FROM revision r WHERE update_id = $1 ORDER BY revision_number DESC LIMIT 1",
    )
    .bind(a.update_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((revision_number, eula_id, eula_accepted)) = latest else {
        return Err(ApprovalError::UnknownUpdate(a.update_id));
    };
    let accept_now = eula_id.filter(|_| !eula_accepted && accept_eula_as.is_some());
    if let (Some(eula_id), false, None, Action::Install | Action::OptionalInstall) =
        (eula_id, eula_accepted, accept_now, a.action)
    {
        return Err(ApprovalError::EulaNotAccepted { update_id: a.update_id, eula_id });
    }
    let group: Option<(Uuid,)> = sqlx::query_as("SELECT group_id FROM target_group WHERE group_id = $1")
        .bind(a.group_id)
        .fetch_optional(&mut *tx)
        .await?;
    if group.is_none() {
        return Err(ApprovalError::UnknownGroup(a.group_id));
    }
    let declined: Option<(Uuid,)> = sqlx::query_as("SELECT update_id FROM declined_update WHERE update_id = $1")
        .bind(a.update_id)
        .fetch_optional(&mut *tx)
        .await?;
    if declined.is_some() && a.action != Action::Block {
        return Err(ApprovalError::Declined(a.update_id));
    }
    let version = catalog::bump(&mut *tx).await.map_err(ApprovalError::Store)?;
    if let Some(eula_id) = accept_now {
        sqlx::query(
            "INSERT INTO accepted_eula (eula_id, accepted_by, changed_version) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(eula_id)
        .bind(accept_eula_as)
        .bind(version)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE deployment SET deleted_at = now(), deleted_version = $3 \
         WHERE update_id = $1 AND group_id = $2 AND deleted_at IS NULL",
    )
    .bind(a.update_id)
    .bind(a.group_id)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO deployment (deployment_id, update_id, revision_number, group_id, action, deadline, admin_name, changed_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(a.update_id)
    .bind(revision_number)
    .bind(a.group_id)
    .bind(a.action.as_str())
    .bind(a.deadline)
    .bind(&a.admin_name)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Removes a group's approval of an update; false when there was none.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.unapprove"))]
pub async fn unapprove(pool: &PgPool, update_id: Uuid, group_id: Uuid) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let version = catalog::bump(&mut *tx).await?;
    let done = sqlx::query(
        "UPDATE deployment SET deleted_at = now(), deleted_version = $3 \
         WHERE update_id = $1 AND group_id = $2 AND deleted_at IS NULL",
    )
    .bind(update_id)
    .bind(group_id)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Declines an update (every revision) and removes its approvals; false when it was
/// already declined.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.decline"))]
pub async fn decline(pool: &PgPool, update_id: Uuid, by: Option<&str>) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let version = catalog::bump(&mut *tx).await?;
    let inserted = sqlx::query(
        "INSERT INTO declined_update (update_id, declined_by, changed_version) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(update_id)
    .bind(by)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "UPDATE deployment SET deleted_at = now(), deleted_version = $2 WHERE update_id = $1 AND deleted_at IS NULL",
    )
    .bind(update_id)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Takes an update out of the declined ones; false when it was not declined.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.undecline"))]
pub async fn undecline(pool: &PgPool, update_id: Uuid) -> Result<bool> {
    let mut tx = pool.begin().await?;
    catalog::bump(&mut *tx).await?;
    let done =
        sqlx::query("DELETE FROM declined_update WHERE update_id = $1").bind(update_id).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Live approvals of one update.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.approvals_of"))]
pub async fn approvals_of(pool: &PgPool, update_id: Uuid) -> Result<Vec<Deployment>> {
    let rows: Vec<DeploymentRow> = sqlx::query_as(
        "SELECT deployment_id, update_id, revision_number, group_id, action, deadline, is_assigned, download_priority, \
         admin_name, last_change_time FROM deployment WHERE update_id = $1 AND deleted_at IS NULL ORDER BY group_id",
    )
    .bind(update_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(Deployment::try_from).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("target group {0} does not exist")]
    Unknown(Uuid),
    #[error("the built-in groups cannot be renamed, moved or deleted")]
    Builtin,
    #[error("a target group named {0:?} already exists")]
    NameTaken(String),
    #[error("a group cannot be nested under itself or its own subgroups")]
    Cycle,
    #[error("a group name has 1 to 256 characters")]
    BadName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for GroupError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.constraint() == Some("target_group_name") => {
                GroupError::NameTaken(String::new())
            }
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => GroupError::Unknown(Uuid::nil()),
            sqlx::Error::Database(d) if d.is_check_violation() => GroupError::BadName,
            _ => GroupError::Store(e.into()),
        }
    }
}

impl HasKind for GroupError {
    fn kind(&self) -> ErrorKind {
        match self {
            GroupError::Unknown(_) => ErrorKind::NotFound,
            GroupError::Builtin | GroupError::NameTaken(_) | GroupError::Cycle => ErrorKind::Conflict,
            GroupError::BadName => ErrorKind::Invalid,
            GroupError::Store(e) => e.kind(),
        }
    }
}

/// One group.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.group"))]
pub async fn group(pool: &PgPool, group_id: Uuid) -> Result<Option<Group>> {
    Ok(sqlx::query_as("SELECT group_id, name, parent_group_id, is_builtin FROM target_group WHERE group_id = $1")
        .bind(group_id)
        .fetch_optional(pool)
        .await?)
}

/// A page of groups by name (a tree through `parent_group_id`).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.groups_page"))]
pub async fn groups_page(
    pool: &PgPool,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<crate::KeysetPage<Group, (String, Uuid)>> {
    let (name, id) = after.unwrap_or_default();
    let rows: Vec<Group> = sqlx::query_as(
        "SELECT group_id, name, parent_group_id, is_builtin FROM target_group \
         WHERE (lower(name), group_id) > ($1, $2) ORDER BY lower(name), group_id LIMIT $3",
    )
    .bind(name)
    .bind(id)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(crate::keyset(rows, limit, |g| (g.name.to_lowercase(), g.group_id), |g| g))
}

/// Creates a group, checking the name and parent first.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.add_group"))]
pub async fn add_group(pool: &PgPool, name: &str, parent: Option<Uuid>) -> std::result::Result<Group, GroupError> {
    let name = checked_name(name)?;
    let parent = parent.unwrap_or(crate::ALL_COMPUTERS);
    if parent == crate::UNASSIGNED_COMPUTERS {
        return Err(GroupError::Builtin);
    }
    if group(pool, parent).await?.is_none() {
        return Err(GroupError::Unknown(parent));
    }
    let group_id = Uuid::new_v4();
    create_group(pool, group_id, name, Some(parent)).await.map_err(|e| match e {
        StoreError::Database(d) => named(GroupError::from(d), name),
        other => GroupError::Store(other),
    })?;
    Ok(Group { group_id, name: name.to_owned(), parent_group_id: Some(parent), is_builtin: false })
}

fn checked_name(name: &str) -> std::result::Result<&str, GroupError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 256 {
        return Err(GroupError::BadName);
    }
    Ok(name)
}

fn named(e: GroupError, name: &str) -> GroupError {
    match e {
        GroupError::NameTaken(_) => GroupError::NameTaken(name.to_owned()),
        other => other,
    }
}

/// Renames and/or moves a group.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.change_group"))]
pub async fn change_group(
    pool: &PgPool,
    group_id: Uuid,
    name: Option<&str>,
    parent: Option<Uuid>,
) -> std::result::Result<Group, GroupError> {
    let current = group(pool, group_id).await?.ok_or(GroupError::Unknown(group_id))?;
    if current.is_builtin {
        return Err(GroupError::Builtin);
    }
    let name = name.map(checked_name).transpose()?;
    let mut tx = pool.begin().await?;
    if let Some(parent) = parent {
        if parent == crate::UNASSIGNED_COMPUTERS {
            return Err(GroupError::Builtin);
        }
        // The new parent must exist and must not be the group or one of its descendants.
        let (exists, inside): (bool, bool) = sqlx::query_as(
            "WITH RECURSIVE sub(g) AS (SELECT $1::uuid UNION SELECT t.group_id FROM target_group t JOIN sub ON t.parent_group_id = sub.g) \
             SELECT EXISTS (SELECT 1 FROM target_group WHERE group_id = $2), $2 IN (SELECT g FROM sub)",
        )
        .bind(group_id)
        .bind(parent)
        .fetch_one(&mut *tx)
        .await?;
        if !exists {
            return Err(GroupError::Unknown(parent));
        }
        if inside {
            return Err(GroupError::Cycle);
        }
    }
    let version = catalog::bump(&mut *tx).await?;
    let changed: Group = sqlx::query_as(
        "UPDATE target_group SET name = COALESCE($2, name), parent_group_id = COALESCE($3, parent_group_id), \
            changed_version = $4 WHERE group_id = $1 RETURNING group_id, name, parent_group_id, is_builtin",
    )
    .bind(group_id)
    .bind(name)
    .bind(parent)
    .bind(version)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| named(GroupError::from(e), name.unwrap_or_default()))?;
    tx.commit().await?;
    Ok(changed)
}

/// Deletes a group and its subgroups with their approvals (a replica drops them too, as
/// it keeps only the groups its upstream lists); their computers fall back to Unassigned
/// Computers. False when there was no such group.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.delete_group"))]
pub async fn delete_group(pool: &PgPool, group_id: Uuid) -> std::result::Result<bool, GroupError> {
    let Some(current) = group(pool, group_id).await? else { return Ok(false) };
    if current.is_builtin {
        return Err(GroupError::Builtin);
    }
    let mut tx = pool.begin().await?;
    catalog::bump(&mut *tx).await?;
    let members: Vec<(String,)> = sqlx::query_as(
        "WITH RECURSIVE sub(g) AS (SELECT $1::uuid UNION SELECT t.group_id FROM target_group t JOIN sub ON t.parent_group_id = sub.g) \
         SELECT DISTINCT computer_id FROM computer_group_membership WHERE group_id IN (SELECT g FROM sub)",
    )
    .bind(group_id)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM target_group WHERE group_id = $1").bind(group_id).execute(&mut *tx).await?;
    tx.commit().await?;
    let members: Vec<String> = members.into_iter().map(|(m,)| m).collect();
    crate::computers::notify_computers(pool, &members).await?;
    Ok(true)
}

/// Accepts a EULA; false when it already was.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.accept_eula"))]
pub async fn accept_eula(pool: &PgPool, eula_id: Uuid, by: Option<&str>) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let version = catalog::bump(&mut *tx).await?;
    let inserted = sqlx::query(
        "INSERT INTO accepted_eula (eula_id, accepted_by, changed_version) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(eula_id)
    .bind(by)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Creates a target group under `parent` (All Computers when None).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.create_group"))]
pub async fn create_group(pool: &PgPool, group_id: Uuid, name: &str, parent: Option<Uuid>) -> Result<()> {
    let mut tx = pool.begin().await?;
    let version = catalog::bump(&mut *tx).await?;
    sqlx::query("INSERT INTO target_group (group_id, name, parent_group_id, changed_version) VALUES ($1, $2, $3, $4)")
        .bind(group_id)
        .bind(name)
        .bind(parent.unwrap_or(crate::ALL_COMPUTERS))
        .bind(version)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.groups"))]
pub async fn groups(pool: &PgPool) -> Result<Vec<Group>> {
    Ok(sqlx::query_as(
        "SELECT group_id, name, parent_group_id, is_builtin FROM target_group ORDER BY parent_group_id NULLS FIRST, name",
    )
    .fetch_all(pool)
    .await?)
}

/// Every live approval.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.deployments"))]
pub async fn deployments(pool: &PgPool) -> Result<Vec<Deployment>> {
    let rows: Vec<DeploymentRow> = sqlx::query_as(
        "SELECT deployment_id, update_id, revision_number, group_id, action, deadline, is_assigned, download_priority, \
         admin_name, last_change_time FROM deployment WHERE deleted_at IS NULL ORDER BY update_id, group_id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(Deployment::try_from).collect()
}

/// Every declined update.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.declined"))]
pub async fn declined(pool: &PgPool) -> Result<Vec<Uuid>> {
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT update_id FROM declined_update ORDER BY update_id").fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(u,)| u).collect())
}

/// Every accepted EULA.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.accepted_eulas"))]
pub async fn accepted_eulas(pool: &PgPool) -> Result<Vec<Uuid>> {
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT eula_id FROM accepted_eula ORDER BY eula_id").fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(u,)| u).collect())
}

/// The administrative state carried by an export: groups, approvals, declines, EULAs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminState {
    pub groups: Vec<Group>,
    pub deployments: Vec<Deployment>,
    pub declined: Vec<Uuid>,
    pub accepted_eulas: Vec<Uuid>,
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.admin_state"))]
pub async fn admin_state(pool: &PgPool) -> Result<AdminState> {
    Ok(AdminState {
        groups: groups(pool).await?,
        deployments: deployments(pool).await?,
        declined: declined(pool).await?,
        accepted_eulas: accepted_eulas(pool).await?,
    })
}

/// Merges an exported administrative state in one transaction: groups and approvals are
/// upserted by id, declines and EULAs added. Returns how many rows changed; the catalog
/// version moves only when something did.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.merge_admin_state"))]
pub async fn merge_admin_state(pool: &PgPool, state: &AdminState) -> Result<u64> {
    apply_admin_state(pool, state, None).await
}

/// Replica mode: makes this server's groups, approvals and declines those of its upstream
/// (GetDeployments): `state` holds every group, the approvals changed since the last
/// anchor, every declined update and every accepted EULA; `dead` the approvals removed
/// since. Groups and declines the upstream no longer has go; EULAs stay accepted.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.approvals.replicate"))]
pub async fn replicate(pool: &PgPool, state: &AdminState, dead: &[Uuid]) -> Result<u64> {
    apply_admin_state(pool, state, Some(dead)).await
}

// One function on purpose: one transaction at one catalog version, its statements in the order they must run
// (removals, groups parents first, approvals, declines, EULAs).
async fn apply_admin_state(pool: &PgPool, state: &AdminState, replica_dead: Option<&[Uuid]>) -> Result<u64> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT version FROM catalog_state FOR UPDATE").execute(&mut *tx).await?;
    let (current,): (i64,) = sqlx::query_as("SELECT version + 1 FROM catalog_state").fetch_one(&mut *tx).await?;
    let mut changed = 0u64;
    let origin = if replica_dead.is_some() { "upstream" } else { "admin" };
    if let Some(dead) = replica_dead {
        changed += sqlx::query(
            "UPDATE deployment SET deleted_at = now(), deleted_version = $2 \
             WHERE deployment_id = ANY($1) AND deleted_at IS NULL",
        )
        .bind(dead)
        .bind(current)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let kept: Vec<Uuid> = state.groups.iter().map(|g| g.group_id).collect();
        changed += sqlx::query("DELETE FROM target_group WHERE NOT is_builtin AND group_id <> ALL($1)")
            .bind(&kept)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        changed += sqlx::query("DELETE FROM declined_update WHERE update_id <> ALL($1)")
            .bind(&state.declined)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    // Parents before children.
    let mut pending: Vec<&Group> = state.groups.iter().filter(|g| !g.is_builtin).collect();
    let mut placed: std::collections::HashSet<Uuid> =
        state.groups.iter().filter(|g| g.is_builtin).map(|g| g.group_id).collect();
    placed.insert(crate::ALL_COMPUTERS);
    placed.insert(crate::UNASSIGNED_COMPUTERS);
    while !pending.is_empty() {
        let (ready, rest): (Vec<&Group>, Vec<&Group>) =
            pending.into_iter().partition(|g| g.parent_group_id.is_none_or(|p| placed.contains(&p)));
        if ready.is_empty() {
            // Parents missing from the export: hang the rest under All Computers.
            for g in &rest {
                changed += upsert_group(&mut tx, g, Some(crate::ALL_COMPUTERS), current).await?;
            }
            break;
        }
        for g in ready {
            changed += upsert_group(&mut tx, g, g.parent_group_id, current).await?;
            placed.insert(g.group_id);
        }
        pending = rest;
    }
    for d in &state.deployments {
        let done = sqlx::query(
            "INSERT INTO deployment (deployment_id, update_id, revision_number, group_id, action, deadline, is_assigned, \
                download_priority, admin_name, last_change_time, origin, changed_version) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $11 \
             WHERE NOT EXISTS (SELECT 1 FROM deployment WHERE update_id = $2 AND group_id = $4 AND deleted_at IS NULL \
                               AND deployment_id <> $1) \
             ON CONFLICT (deployment_id) DO UPDATE SET action = EXCLUDED.action, deadline = EXCLUDED.deadline, \
                is_assigned = EXCLUDED.is_assigned, download_priority = EXCLUDED.download_priority, \
                revision_number = EXCLUDED.revision_number, last_change_time = EXCLUDED.last_change_time, \
                deleted_at = NULL, deleted_version = NULL, changed_version = EXCLUDED.changed_version \
             WHERE (deployment.action, deployment.deadline, deployment.is_assigned, deployment.download_priority, \
                    deployment.revision_number, deployment.deleted_at) \
                   IS DISTINCT FROM (EXCLUDED.action, EXCLUDED.deadline, EXCLUDED.is_assigned, \
                    EXCLUDED.download_priority, EXCLUDED.revision_number, NULL::timestamptz)",
        )
        .bind(d.deployment_id)
        .bind(d.update_id)
        .bind(d.revision_number)
        .bind(d.group_id)
        .bind(d.action.as_str())
        .bind(d.deadline)
        .bind(d.is_assigned)
        .bind(d.download_priority)
        .bind(&d.admin_name)
        .bind(d.last_change_time)
        .bind(current)
        .bind(origin)
        .execute(&mut *tx)
        .await?;
        changed += done.rows_affected();
    }
    changed += sqlx::query(
        "INSERT INTO declined_update (update_id, changed_version) SELECT u, $2 FROM unnest($1::uuid[]) AS u ON CONFLICT DO NOTHING",
    )
    .bind(&state.declined)
    .bind(current)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    changed += sqlx::query(
        "INSERT INTO accepted_eula (eula_id, changed_version) SELECT e, $2 FROM unnest($1::uuid[]) AS e ON CONFLICT DO NOTHING",
    )
    .bind(&state.accepted_eulas)
    .bind(current)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed > 0 {
        let v = catalog::bump(&mut *tx).await?;
        debug_assert_eq!(v, current);
    }
    tx.commit().await?;
    Ok(changed)
}

async fn upsert_group(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    g: &Group,
    parent: Option<Uuid>,
    version: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "INSERT INTO target_group (group_id, name, parent_group_id, changed_version) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (group_id) DO UPDATE SET name = EXCLUDED.name, parent_group_id = EXCLUDED.parent_group_id, \
            changed_version = EXCLUDED.changed_version \
         WHERE (target_group.name, target_group.parent_group_id) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.parent_group_id)",
    )
    .bind(g.group_id)
    .bind(&g.name)
    .bind(parent)
    .bind(version)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}
