//! Computers as the management API shows them: lists with filters and keyset pages, one
//! computer's details and per-update statuses, server-side group membership.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::states::{DOWNLOADED, FAILED, INSTALLED, INSTALLED_PENDING_REBOOT, NEEDED, NOT_APPLICABLE, UNKNOWN};
use crate::{ErrorKind, HasKind, Result, StoreError, keyset, like_pattern};

/// A computer's overall state, as the WSUS console groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComputerState {
    /// Reported, and nothing needed or failed.
    UpToDate,
    /// Some update needed, downloaded or waiting for a reboot; none failed.
    NeedsUpdates,
    /// Some update failed.
    WithErrors,
    /// No status reported yet.
    NotReported,
}

/// Counts of a computer's (or an update's) statuses, by SummarizationState.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct StatusCounts {
    pub installed: i64,
    pub needed: i64,
    pub downloaded: i64,
    pub failed: i64,
    pub installed_pending_reboot: i64,
    pub not_applicable: i64,
    pub unknown: i64,
}

/// One computer, with its status counts.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Computer {
    pub computer_id: String,
    pub name: Option<String>,
    pub ip_address: Option<String>,
    pub os_description: Option<String>,
    /// Major.Minor.Build, e.g. 10.0.26100.
    pub os_version: Option<String>,
    pub os_locale: Option<String>,
    pub processor_architecture: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub bios_version: Option<String>,
    pub client_version: Option<String>,
    pub requested_target_group_names: Vec<String>,
    pub group_ids: Vec<Uuid>,
    /// The downstream server it gets updates from; None = this server.
    pub downstream_server_id: Option<Uuid>,
    pub downstream_server_name: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub last_sync_time: Option<DateTime<Utc>>,
    pub last_reported_status_time: Option<DateTime<Utc>>,
    pub last_scan_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    pub counts: StatusCounts,
}

impl Computer {
    pub fn state(&self) -> ComputerState {
        let c = &self.counts;
        if c.failed > 0 {
            ComputerState::WithErrors
        } else if c.needed + c.downloaded + c.installed_pending_reboot > 0 {
            ComputerState::NeedsUpdates
        } else if self.last_reported_status_time.is_some() || self.last_scan_at.is_some() || c.installed > 0 {
            ComputerState::UpToDate
        } else {
            ComputerState::NotReported
        }
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ComputerFilter {
    /// Members of this group (server-side membership) or of its subgroups.
    pub group_id: Option<Uuid>,
    pub downstream_server_id: Option<Uuid>,
    /// Only computers of this server (not rolled up).
    pub local_only: bool,
    /// Case-insensitive part of the name or id.
    pub search: Option<String>,
    pub state: Option<ComputerState>,
    pub sort: ComputerSort,
    /// Keyset: list after this (sort key, computer id); the sort key is the lower-case
    /// name, or for the last-contact orders its Unix microseconds ("" for never).
    pub after: Option<(String, String)>,
    pub limit: i64,
}

/// The orders of the computer list, each along an index (computer_sort_name,
/// computer_sort_contact).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ComputerSort {
    #[default]
    Name,
    /// Longest silent first (never contacted last).
    ContactOldest,
    /// Latest contact first (never contacted first).
    ContactNewest,
}

/// A computer with its status counts; the states named from `wsus_status`.
fn select_computer() -> String {
    format!(
        "\
    SELECT c.computer_id, c.dns_name AS name, host(c.ip_address) AS ip_address, c.os_description, \
        CASE WHEN c.os_major_version IS NULL THEN NULL \
             ELSE concat_ws('.', c.os_major_version, c.os_minor_version, c.os_build_number) END AS os_version, \
        c.os_locale, c.processor_architecture, c.computer_manufacturer AS manufacturer, c.computer_model AS model, \
        c.bios_version, c.client_version, c.requested_target_group_names, \
        COALESCE((SELECT array_agg(m.group_id ORDER BY m.group_id) FROM computer_group_membership m \
                  WHERE m.computer_id = c.computer_id), '{{}}') AS group_ids, \
        c.parent_server_id AS downstream_server_id, d.fqdn AS downstream_server_name, \
        c.registered_at, c.last_contact_at, c.last_sync_time, c.last_reported_status_time, \
        c.effective_last_detection_time AS last_scan_at, \
        s.installed, s.needed, s.downloaded, s.failed, s.installed_pending_reboot, s.not_applicable, s.unknown, \
        lower(COALESCE(c.dns_name, c.computer_id)) AS sort_name \
    FROM computer c \
    LEFT JOIN downstream_server d ON d.server_id = c.parent_server_id \
    CROSS JOIN LATERAL (SELECT \
        count(*) FILTER (WHERE u.status = {INSTALLED}) AS installed, count(*) FILTER (WHERE u.status = {NEEDED}) AS needed, \
        count(*) FILTER (WHERE u.status = {DOWNLOADED}) AS downloaded, count(*) FILTER (WHERE u.status = {FAILED}) AS failed, \
        count(*) FILTER (WHERE u.status = {INSTALLED_PENDING_REBOOT}) AS installed_pending_reboot, \
        count(*) FILTER (WHERE u.status = {NOT_APPLICABLE}) AS not_applicable, count(*) FILTER (WHERE u.status = {UNKNOWN}) AS unknown \
        FROM update_status u WHERE u.computer_id = c.computer_id) s "
    )
}

/// The SQL condition for a computer state over the lateral counts `s`.
fn state_condition(state: ComputerState) -> &'static str {
    match state {
        ComputerState::WithErrors => "s.failed > 0",
        ComputerState::NeedsUpdates => "s.failed = 0 AND s.needed + s.downloaded + s.installed_pending_reboot > 0",
        ComputerState::UpToDate => {
            "s.failed = 0 AND s.needed + s.downloaded + s.installed_pending_reboot = 0 \
             AND (c.last_reported_status_time IS NOT NULL OR c.effective_last_detection_time IS NOT NULL OR s.installed > 0)"
        }
        ComputerState::NotReported => {
            "s.failed + s.needed + s.downloaded + s.installed_pending_reboot + s.installed = 0 \
             AND c.last_reported_status_time IS NULL AND c.effective_last_detection_time IS NULL"
        }
    }
}

#[derive(sqlx::FromRow)]
struct ComputerRow {
    #[sqlx(flatten)]
    computer: Computer,
    sort_name: String,
}

/// A page of computers, in the filter's order, and the key to continue after (None at the end).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.computers.list"))]
pub async fn list(pool: &PgPool, f: &ComputerFilter) -> Result<crate::KeysetPage<Computer, (String, String)>> {
    let mut sql = format!("SELECT * FROM ({} WHERE true", select_computer());
    if f.group_id == Some(crate::ALL_COMPUTERS) {
        // Everyone is in All Computers.
        sql.push_str(" AND $1::uuid IS NOT NULL");
    } else if f.group_id == Some(crate::UNASSIGNED_COMPUTERS) {
        sql.push_str(
            " AND $1::uuid IS NOT NULL \
              AND NOT EXISTS (SELECT 1 FROM computer_group_membership m WHERE m.computer_id = c.computer_id)",
        );
    } else if f.group_id.is_some() {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM computer_group_membership m WHERE m.computer_id = c.computer_id AND m.group_id IN \
               (WITH RECURSIVE sub(g) AS (SELECT $1::uuid UNION SELECT t.group_id FROM target_group t JOIN sub ON t.parent_group_id = sub.g) \
                SELECT g FROM sub))",
        );
    }
    if f.downstream_server_id.is_some() {
        sql.push_str(" AND c.parent_server_id = $2");
    }
    if f.local_only {
        sql.push_str(" AND c.parent_server_id IS NULL");
    }
    if f.search.is_some() {
        sql.push_str(" AND (c.dns_name ILIKE $3 OR c.computer_id ILIKE $3)");
    }
    if let Some(state) = f.state {
        sql.push_str(" AND ");
        sql.push_str(state_condition(state));
    }
    sql.push_str(") x");
    // The contact orders sort on the index's expression: never contacted = +infinity.
    const CONTACT: &str = "COALESCE(x.last_contact_at, 'infinity'::timestamptz)";
    let (after_key, after_id) = f.after.clone().unwrap_or_default();
    let mut after_contact = None;
    match f.sort {
        ComputerSort::Name => {
            if f.after.is_some() {
                sql.push_str(" WHERE (x.sort_name, x.computer_id) > ($4, $5)");
            }
            sql.push_str(" ORDER BY x.sort_name, x.computer_id LIMIT $6");
        }
        ComputerSort::ContactOldest | ComputerSort::ContactNewest => {
            let (cmp, dir) = if f.sort == ComputerSort::ContactOldest { (">", "") } else { ("<", " DESC") };
            if f.after.is_some() {
                after_contact = match after_key.as_str() {
                    "" => None,
                    micros => Some(
                        micros
                            .parse()
                            .ok()
                            .and_then(DateTime::from_timestamp_micros)
                            .ok_or_else(|| StoreError::BadPosition(micros.to_owned()))?,
                    ),
                };
                sql.push_str(&format!(
                    " WHERE ({CONTACT}, x.computer_id) {cmp} (COALESCE($7::timestamptz, 'infinity'::timestamptz), $5)"
                ));
            }
            sql.push_str(&format!(" ORDER BY {CONTACT}{dir}, x.computer_id{dir} LIMIT $6"));
        }
    }
    let rows: Vec<ComputerRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(f.group_id)
        .bind(f.downstream_server_id)
        .bind(f.search.as_deref().map(like_pattern))
        .bind(after_key)
        .bind(after_id)
        .bind(f.limit + 1)
        .bind(after_contact)
        .fetch_all(pool)
        .await?;
    let sort = f.sort;
    Ok(keyset(
        rows,
        f.limit,
        |r| {
            let key = match sort {
                ComputerSort::Name => r.sort_name.clone(),
                _ => r.computer.last_contact_at.map(|t| t.timestamp_micros().to_string()).unwrap_or_default(),
            };
            (key, r.computer.computer_id.clone())
        },
        |r| r.computer,
    ))
}

/// One computer; None when unknown.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.computers.get"))]
pub async fn get(pool: &PgPool, computer_id: &str) -> Result<Option<Computer>> {
    let row: Option<ComputerRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{} WHERE c.computer_id = $1", select_computer())))
            .bind(computer_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|r| r.computer))
}

/// Forgets a computer, its memberships and statuses (its raw events age out); false when unknown.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.computers.delete"))]
pub async fn delete(pool: &PgPool, computer_id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM computer WHERE computer_id = $1").bind(computer_id).execute(pool).await?;
    if done.rows_affected() > 0 {
        notify_computers(pool, &[computer_id.to_owned()]).await?;
    }
    Ok(done.rows_affected() > 0)
}

/// One update's status on a computer.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct UpdateStatusRow {
    pub update_id: Uuid,
    pub title: Option<String>,
    pub kb_article_id: Option<String>,
    /// SummarizationState (0 Unknown … 6 InstalledPendingReboot).
    pub status: i16,
    pub last_change_time: DateTime<Utc>,
}

/// A page of a computer's stored statuses, by update id.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.computers.statuses"))]
pub async fn statuses(
    pool: &PgPool,
    computer_id: &str,
    status: Option<i16>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<(Vec<UpdateStatusRow>, Option<Uuid>)> {
    let rows: Vec<UpdateStatusRow> = sqlx::query_as(
        "SELECT u.update_id, r.title, r.kb_article_id, u.status, u.last_change_time FROM update_status u \
         LEFT JOIN LATERAL (SELECT title, kb_article_id FROM revision WHERE update_id = u.update_id \
                            ORDER BY revision_number DESC LIMIT 1) r ON true \
         WHERE u.computer_id = $1 AND ($2::int2 IS NULL OR u.status = $2) AND ($3::uuid IS NULL OR u.update_id > $3) \
         ORDER BY u.update_id LIMIT $4",
    )
    .bind(computer_id)
    .bind(status)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(keyset(rows, limit, |r| r.update_id, |r| r))
}

/// The events a computer's history shows: the outcomes of installs and uninstalls, and
/// failed downloads (MS-WUSP EventIDs), exactly as the partial index reporting_event_outcome
/// (migration 0008) lists them, so that the planner can use it.
pub const HISTORY_EVENTS: &str =
    "(161, 182, 183, 184, 186, 187, 190, 191, 192, 195, 197, 198, 199, 200, 201, 203, 204, 221, 222, 223, 224, 225)";

/// One outcome a computer reported (of an install, an uninstall, a failed download), as its
/// history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ComputerEvent {
    pub time_at_target: DateTime<Utc>,
    pub event_instance_id: Uuid,
    /// MS-WUSP EventID (183 installed, 182 install failed, 161 download failed, …).
    pub event_id: i16,
    pub update_id: Uuid,
    pub title: Option<String>,
    pub kb_article_id: Option<String>,
    pub win32_hresult: Option<i32>,
}

/// Where a page of a computer's events continues: the last event shown.
pub type EventKey = (DateTime<Utc>, Uuid);

/// A page of a computer's outcome events ([`HISTORY_EVENTS`]) that name an update, newest
/// first (index reporting_event_outcome); events go as the event retention ages them out.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.computers.events"))]
pub async fn events(
    pool: &PgPool,
    computer_id: &str,
    before: Option<EventKey>,
    limit: i64,
) -> Result<(Vec<ComputerEvent>, Option<EventKey>)> {
    // Only constants are joined into this SQL. The position is a condition only when there
    // is one ("$2 IS NULL OR ..." would not bound the index scan in a generic plan).
    let position = if before.is_some() { "AND (time_at_target, event_instance_id) < ($2, $3)" } else { "" };
    let rows: Vec<ComputerEvent> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT e.time_at_target, e.event_instance_id, e.event_id, e.update_id, r.title, r.kb_article_id, \
            e.win32_hresult FROM \
           (SELECT time_at_target, event_instance_id, event_id, update_id, win32_hresult FROM reporting_event \
            WHERE computer_id = $1 AND event_id IN {HISTORY_EVENTS} AND update_id IS NOT NULL {position} \
            ORDER BY time_at_target DESC, event_instance_id DESC LIMIT $4) e \
         LEFT JOIN LATERAL (SELECT title, kb_article_id FROM revision WHERE update_id = e.update_id \
                            ORDER BY revision_number DESC LIMIT 1) r ON true \
         ORDER BY e.time_at_target DESC, e.event_instance_id DESC"
    )))
    .bind(computer_id)
    .bind(before.map(|b| b.0))
    .bind(before.map(|b| b.1))
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(keyset(rows, limit, |e| (e.time_at_target, e.event_instance_id), |e| e))
}

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("target group {0} does not exist")]
    UnknownGroup(Uuid),
    #[error("computers cannot be put in {0}: membership of the built-in groups is implied")]
    BuiltinGroup(Uuid),
    #[error("unknown computers: {0:?}")]
    UnknownComputers(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MembershipError {
    fn from(e: sqlx::Error) -> Self {
        MembershipError::Store(e.into())
    }
}

impl HasKind for MembershipError {
    fn kind(&self) -> ErrorKind {
        match self {
            MembershipError::UnknownGroup(_) => ErrorKind::NotFound,
            MembershipError::BuiltinGroup(_) => ErrorKind::Conflict,
            // Named in the request body, not the path: the request is what is wrong.
            MembershipError::UnknownComputers(_) => ErrorKind::Invalid,
            MembershipError::Store(e) => e.kind(),
        }
    }
}

/// Puts computers in a group (server-side targeting). All or nothing.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.computers.add_members"))]
pub async fn add_members(
    pool: &PgPool,
    group_id: Uuid,
    computer_ids: &[String],
) -> std::result::Result<u64, MembershipError> {
    if group_id == crate::ALL_COMPUTERS || group_id == crate::UNASSIGNED_COMPUTERS {
        return Err(MembershipError::BuiltinGroup(group_id));
    }
    let mut tx = pool.begin().await?;
    let group: Option<(Uuid,)> = sqlx::query_as("SELECT group_id FROM target_group WHERE group_id = $1")
        .bind(group_id)
        .fetch_optional(&mut *tx)
        .await?;
    if group.is_none() {
        return Err(MembershipError::UnknownGroup(group_id));
    }
    let missing: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM unnest($1::text[]) AS id WHERE NOT EXISTS (SELECT 1 FROM computer WHERE computer_id = id)",
    )
    .bind(computer_ids)
    .fetch_all(&mut *tx)
    .await?;
    if !missing.is_empty() {
        return Err(MembershipError::UnknownComputers(missing.into_iter().map(|(m,)| m).collect()));
    }
    let added = sqlx::query(
        "INSERT INTO computer_group_membership (computer_id, group_id, source) SELECT DISTINCT id, $2, 'admin' \
         FROM unnest($1::text[]) AS id ON CONFLICT DO NOTHING",
    )
    .bind(computer_ids)
    .bind(group_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    notify_computers(pool, computer_ids).await?;
    Ok(added.rows_affected())
}

/// Takes a computer out of a group; false when it was not in it.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.computers.remove_member"))]
pub async fn remove_member(pool: &PgPool, group_id: Uuid, computer_id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM computer_group_membership WHERE group_id = $1 AND computer_id = $2")
        .bind(group_id)
        .bind(computer_id)
        .execute(pool)
        .await?;
    notify_computers(pool, &[computer_id.to_owned()]).await?;
    Ok(done.rows_affected() > 0)
}

/// Gateways keep registered computers and their groups in memory.
pub(crate) async fn notify_computers(pool: &PgPool, computer_ids: &[String]) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id")
        .bind(crate::index::COMPUTERS_CHANNEL)
        .bind(computer_ids)
        .execute(pool)
        .await?;
    Ok(())
}
