//! Rollup as the upstream server (MS-WSUSSS 3.1.4.13-17): what this server keeps of its
//! downstream servers, their computers and computer statuses.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use wsus_soap::rollup::{Change, ClientSummary, ComputerDetails, ComputerInfo, ComputerStatus, DownstreamServerInfo};

use crate::{ErrorKind, HasKind, Result, StoreError};

/// Key of the RollupResetGuid this server hands its downstream servers.
const RESET_GUID: &str = "rollup.reset_guid";

#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    /// A server this one does not know: it must synchronise (authorise) first.
    #[error("downstream server {0} is not known here: it must synchronise with this server first")]
    UnknownServer(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RollupError {
    fn from(e: sqlx::Error) -> Self {
        RollupError::Store(e.into())
    }
}

impl HasKind for RollupError {
    fn kind(&self) -> ErrorKind {
        match self {
            RollupError::UnknownServer(_) => ErrorKind::Conflict,
            RollupError::Store(e) => e.kind(),
        }
    }
}

/// The RollupResetGuid: generated once; a new one would ask for full rollups.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.upstream.reset_guid"))]
pub async fn reset_guid(pool: &PgPool) -> Result<Uuid> {
    sqlx::query(
        "INSERT INTO admin_setting (key, value, updated_by) VALUES ($1, to_jsonb($2::text), 'generated') \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(RESET_GUID)
    .bind(Uuid::new_v4().to_string())
    .execute(pool)
    .await?;
    let (raw,): (String,) = sqlx::query_as("SELECT value #>> '{}' FROM admin_setting WHERE key = $1")
        .bind(RESET_GUID)
        .fetch_one(pool)
        .await?;
    Uuid::parse_str(&raw).map_err(|_| StoreError::Corrupt { what: "rollup.reset_guid", value: raw })
}

/// A downstream server's clock ahead of ours by `skew`: its times moved onto our clock.
fn ours(t: Option<DateTime<Utc>>, skew: Duration) -> Option<DateTime<Utc>> {
    t.map(|t| t - skew)
}

async fn known_server(tx: &mut sqlx::PgConnection, id: Uuid) -> Result<bool> {
    let (known,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM downstream_server WHERE server_id = $1)")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    Ok(known)
}

/// RollupDownstreamServers: the calling server (nil parent) and the servers below it,
/// parents first. A server's row changes only when this rollup is not older than the
/// last; install activity adds up. All or nothing.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.upstream.receive_servers"))]
pub async fn receive_servers(
    pool: &PgPool,
    servers: &[DownstreamServerInfo],
    skew: Duration,
) -> std::result::Result<(), RollupError> {
    let mut tx = pool.begin().await?;
    for s in servers {
        let parent = (!s.parent_server_id.is_nil()).then_some(s.parent_server_id);
        // The calling server authorised here first; the others hang below a known one.
        let anchor = parent.unwrap_or(s.server_id);
        if !known_server(&mut tx, anchor).await? {
            return Err(RollupError::UnknownServer(anchor));
        }
        let c = s.summary.counts();
        sqlx::query(
            "INSERT INTO downstream_server AS d (server_id, fqdn, parent_server_id, version, is_replica, last_sync_time, \
                last_rollup_time, update_count, declined_update_count, approved_update_count, not_approved_update_count, \
                updates_with_stale_update_approvals_count, expired_update_count, \
                critical_or_security_updates_not_approved_for_install_count, \
                wsus_infrastructure_updates_not_approved_for_install_count, updates_with_client_errors_count, \
                updates_with_server_errors_count, updates_needing_files_count, updates_needed_by_computers_count, \
                updates_up_to_date_count, custom_computer_target_group_count, computer_target_count, \
                computer_targets_needing_updates_count, computer_targets_with_update_errors_count, computers_up_to_date_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) \
             ON CONFLICT (server_id) DO UPDATE SET fqdn = EXCLUDED.fqdn, parent_server_id = EXCLUDED.parent_server_id, \
                version = EXCLUDED.version, is_replica = EXCLUDED.is_replica, last_sync_time = EXCLUDED.last_sync_time, \
                last_rollup_time = EXCLUDED.last_rollup_time, update_count = EXCLUDED.update_count, \
                declined_update_count = EXCLUDED.declined_update_count, approved_update_count = EXCLUDED.approved_update_count, \
                not_approved_update_count = EXCLUDED.not_approved_update_count, \
                updates_with_stale_update_approvals_count = EXCLUDED.updates_with_stale_update_approvals_count, \
                expired_update_count = EXCLUDED.expired_update_count, \
                critical_or_security_updates_not_approved_for_install_count = EXCLUDED.critical_or_security_updates_not_approved_for_install_count, \
                wsus_infrastructure_updates_not_approved_for_install_count = EXCLUDED.wsus_infrastructure_updates_not_approved_for_install_count, \
                updates_with_client_errors_count = EXCLUDED.updates_with_client_errors_count, \
                updates_with_server_errors_count = EXCLUDED.updates_with_server_errors_count, \
                updates_needing_files_count = EXCLUDED.updates_needing_files_count, \
                updates_needed_by_computers_count = EXCLUDED.updates_needed_by_computers_count, \
                updates_up_to_date_count = EXCLUDED.updates_up_to_date_count, \
                custom_computer_target_group_count = EXCLUDED.custom_computer_target_group_count, \
                computer_target_count = EXCLUDED.computer_target_count, \
                computer_targets_needing_updates_count = EXCLUDED.computer_targets_needing_updates_count, \
                computer_targets_with_update_errors_count = EXCLUDED.computer_targets_with_update_errors_count, \
                computers_up_to_date_count = EXCLUDED.computers_up_to_date_count \
             WHERE d.last_rollup_time IS NULL OR EXCLUDED.last_rollup_time IS NULL OR d.last_rollup_time <= EXCLUDED.last_rollup_time",
        )
        .bind(s.server_id)
        .bind(&s.full_domain_name)
        .bind(parent)
        .bind(&s.version)
        .bind(s.is_replica)
        .bind(ours(s.last_sync_time, skew))
        .bind(ours(s.last_rollup_time, skew))
        .bind(c[0])
        .bind(c[1])
        .bind(c[2])
        .bind(c[3])
        .bind(c[4])
        .bind(c[5])
        .bind(c[6])
        .bind(c[7])
        .bind(c[8])
        .bind(c[9])
        .bind(c[10])
        .bind(c[11])
        .bind(c[12])
        .bind(c[13])
        .bind(c[14])
        .bind(c[15])
        .bind(c[16])
        .bind(c[17])
        .execute(&mut *tx)
        .await?;
        store_client_summaries(&mut tx, s.server_id, &s.clients).await?;
    }
    tx.commit().await?;
    Ok(())
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds $1..$12: the server and the operating system a client summary is about.
fn bind_os<'q>(q: PgQuery<'q>, server_id: Uuid, c: &'q ClientSummary) -> PgQuery<'q> {
    q.bind(server_id)
        .bind(c.os_major_version)
        .bind(c.os_minor_version)
        .bind(c.os_build_number)
        .bind(c.os_service_pack_major_number)
        .bind(c.os_service_pack_minor_number)
        .bind(&c.os_locale)
        .bind(c.suite_mask)
        .bind(i16::from(c.old_product_type))
        .bind(c.new_product_type)
        .bind(c.system_metrics)
        .bind(&c.processor_architecture)
}

const OS_COLUMNS: &str = "server_id, os_major_version, os_minor_version, os_build_number, \
    os_service_pack_major_number, os_service_pack_minor_number, os_locale, suite_mask, old_product_type, \
    new_product_type, system_metrics, processor_architecture";

async fn store_client_summaries(tx: &mut sqlx::PgConnection, server_id: Uuid, clients: &[ClientSummary]) -> Result<()> {
    let counts = format!(
        "INSERT INTO downstream_client_summary ({OS_COLUMNS}, computer_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT ON CONSTRAINT downstream_client_summary_pkey DO UPDATE SET computer_count = EXCLUDED.computer_count"
    );
    let activity = format!(
        "INSERT INTO client_activity_summary AS s ({OS_COLUMNS}, update_id, install_success_count, install_failure_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT ON CONSTRAINT client_activity_summary_pkey DO UPDATE SET \
            install_success_count = s.install_success_count + EXCLUDED.install_success_count, \
            install_failure_count = s.install_failure_count + EXCLUDED.install_failure_count"
    );
    for c in clients {
        bind_os(sqlx::query(sqlx::AssertSqlSafe(counts.as_str())), server_id, c)
            .bind(c.count)
            .execute(&mut *tx)
            .await?;
        for a in &c.activity {
            bind_os(sqlx::query(sqlx::AssertSqlSafe(activity.as_str())), server_id, c)
                .bind(a.update_id)
                .bind(a.install_success_count)
                .bind(a.install_failure_count)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// RollupComputers: computers of downstream servers. A row changes only when this report
/// is not older than the stored one; a computer new here (or moved from another server)
/// without details is answered NewParent so its details come next time.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.upstream.receive_computers"))]
pub async fn receive_computers(
    pool: &PgPool,
    computers: &[ComputerInfo],
    skew: Duration,
) -> std::result::Result<Vec<(String, Change)>, RollupError> {
    let mut changed = Vec::new();
    let mut tx = pool.begin().await?;
    for c in computers {
        if !known_server(&mut tx, c.parent_server_id).await? {
            return Err(RollupError::UnknownServer(c.parent_server_id));
        }
        let stored: Option<(Option<Uuid>,)> =
            sqlx::query_as("SELECT parent_server_id FROM computer WHERE computer_id = $1")
                .bind(&c.computer_id)
                .fetch_optional(&mut *tx)
                .await?;
        let same_parent = stored.as_ref().is_some_and(|(p,)| *p == Some(c.parent_server_id));
        let Some(d) = &c.details else {
            if !same_parent {
                changed.push((c.computer_id.clone(), Change::NewParent));
                continue;
            }
            sqlx::query(
                "UPDATE computer SET last_sync_time = $2, last_sync_result = $3, last_reported_reboot_time = $4, \
                    last_reported_status_time = $5, last_inventory_time = $6, \
                    last_contact_at = GREATEST(last_contact_at, $2, $5), updated_at = now() \
                 WHERE computer_id = $1 AND (last_sync_time IS NULL OR $2::timestamptz IS NULL OR last_sync_time <= $2)",
            )
            .bind(&c.computer_id)
            .bind(ours(c.last_sync_time, skew))
            .bind(c.last_sync_result.clamp(0, 2))
            .bind(ours(c.last_reported_reboot_time, skew))
            .bind(ours(c.last_reported_status_time, skew))
            .bind(ours(c.last_inventory_time, skew))
            .execute(&mut *tx)
            .await?;
            continue;
        };
        upsert_rolled_up(&mut tx, c, d, skew).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

async fn upsert_rolled_up(
    tx: &mut sqlx::PgConnection,
    c: &ComputerInfo,
    d: &ComputerDetails,
    skew: Duration,
) -> Result<()> {
    let ip: Option<std::net::IpAddr> = d.ip_address.as_deref().and_then(|a| a.parse().ok());
    sqlx::query(
        "INSERT INTO computer AS c (computer_id, parent_server_id, dns_name, ip_address, os_major_version, os_minor_version, \
            os_build_number, os_service_pack_major_number, os_service_pack_minor_number, os_locale, os_family, \
            os_description, computer_manufacturer, computer_model, bios_version, bios_name, bios_release_date, \
            processor_architecture, suite_mask, old_product_type, new_product_type, system_metrics, client_version, \
            requested_target_group_names, last_sync_time, last_sync_result, last_reported_reboot_time, \
            last_reported_status_time, last_inventory_time, last_contact_at, details_changed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, \
                 $24, $25, $26, $27, $28, $29, GREATEST($25, $28), true) \
         ON CONFLICT (computer_id) DO UPDATE SET parent_server_id = EXCLUDED.parent_server_id, dns_name = EXCLUDED.dns_name, \
            ip_address = EXCLUDED.ip_address, os_major_version = EXCLUDED.os_major_version, \
            os_minor_version = EXCLUDED.os_minor_version, os_build_number = EXCLUDED.os_build_number, \
            os_service_pack_major_number = EXCLUDED.os_service_pack_major_number, \
            os_service_pack_minor_number = EXCLUDED.os_service_pack_minor_number, os_locale = EXCLUDED.os_locale, \
            os_family = EXCLUDED.os_family, os_description = EXCLUDED.os_description, \
            computer_manufacturer = EXCLUDED.computer_manufacturer, computer_model = EXCLUDED.computer_model, \
            bios_version = EXCLUDED.bios_version, bios_name = EXCLUDED.bios_name, \
            bios_release_date = EXCLUDED.bios_release_date, processor_architecture = EXCLUDED.processor_architecture, \
            suite_mask = EXCLUDED.suite_mask, old_product_type = EXCLUDED.old_product_type, \
            new_product_type = EXCLUDED.new_product_type, system_metrics = EXCLUDED.system_metrics, \
            client_version = EXCLUDED.client_version, requested_target_group_names = EXCLUDED.requested_target_group_names, \
            last_sync_time = EXCLUDED.last_sync_time, last_sync_result = EXCLUDED.last_sync_result, \
            last_reported_reboot_time = EXCLUDED.last_reported_reboot_time, \
            last_reported_status_time = EXCLUDED.last_reported_status_time, \
            last_inventory_time = EXCLUDED.last_inventory_time, \
            last_contact_at = GREATEST(c.last_contact_at, EXCLUDED.last_contact_at), details_changed = true, updated_at = now() \
         WHERE c.parent_server_id IS DISTINCT FROM EXCLUDED.parent_server_id OR c.last_sync_time IS NULL \
            OR EXCLUDED.last_sync_time IS NULL OR c.last_sync_time <= EXCLUDED.last_sync_time",
    )
    .bind(&c.computer_id)
    .bind(c.parent_server_id)
    .bind(&d.full_domain_name)
    .bind(ip)
    .bind(d.os_major_version)
    .bind(d.os_minor_version)
    .bind(d.os_build_number)
    .bind(d.os_service_pack_major_number)
    .bind(d.os_service_pack_minor_number)
    .bind(&d.os_locale)
    .bind(&d.os_family)
    .bind(&d.os_description)
    .bind(&d.computer_make)
    .bind(&d.computer_model)
    .bind(&d.bios_version)
    .bind(&d.bios_name)
    .bind(d.bios_release_date)
    .bind(&d.processor_architecture)
    .bind(d.suite_mask)
    .bind(d.old_product_type)
    .bind(d.new_product_type)
    .bind(d.system_metrics)
    .bind(&d.client_version)
    .bind(&d.requested_target_group_names)
    .bind(ours(c.last_sync_time, skew))
    .bind(c.last_sync_result.clamp(0, 2))
    .bind(ours(c.last_reported_reboot_time, skew))
    .bind(ours(c.last_reported_status_time, skew))
    .bind(ours(c.last_inventory_time, skew))
    .execute(&mut *tx)
    .await?;
    // Its groups as the downstream server has them (those that exist here).
    sqlx::query("DELETE FROM computer_group_membership WHERE computer_id = $1 AND source = 'rollup'")
        .bind(&c.computer_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO computer_group_membership (computer_id, group_id, source) \
         SELECT $1, g, 'rollup' FROM unnest($2::uuid[]) AS g \
         WHERE EXISTS (SELECT 1 FROM target_group t WHERE t.group_id = g) \
           AND g NOT IN ($3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&c.computer_id)
    .bind(&d.target_group_ids)
    .bind(crate::ALL_COMPUTERS)
    .bind(crate::UNASSIGNED_COMPUTERS)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// GetOutOfSyncComputers: the computers of `parent` whose last received rollup number
/// differs from what it says it sent (unknown computers are left out: their details come first).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.upstream.out_of_sync"))]
pub async fn out_of_sync(
    pool: &PgPool,
    parent: Uuid,
    numbers: &[(String, i32)],
) -> std::result::Result<Vec<String>, RollupError> {
    let mut conn = pool.acquire().await?;
    if !known_server(&mut conn, parent).await? {
        return Err(RollupError::UnknownServer(parent));
    }
    let ids: Vec<&str> = numbers.iter().map(|(id, _)| id.as_str()).collect();
    let sent: Vec<i32> = numbers.iter().map(|(_, n)| *n).collect();
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT c.computer_id FROM unnest($2::text[], $3::int4[]) AS x(id, n) \
         JOIN computer c ON c.computer_id = x.id AND c.parent_server_id = $1 \
         WHERE c.last_received_status_rollup_number <> x.n ORDER BY c.computer_id",
    )
    .bind(parent)
    .bind(&ids)
    .bind(&sent)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// RollupComputerStatus: a full rollup replaces a computer's statuses; a partial one keeps,
/// per update, the newer change. Computers not (or no longer) of `parent` are skipped.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.upstream.receive_statuses"))]
pub async fn receive_statuses(
    pool: &PgPool,
    parent: Uuid,
    computers: &[ComputerStatus],
    skew: Duration,
) -> std::result::Result<(), RollupError> {
    let mut tx = pool.begin().await?;
    if !known_server(&mut tx, parent).await? {
        return Err(RollupError::UnknownServer(parent));
    }
    for c in computers {
        let done = sqlx::query(
            "UPDATE computer SET last_received_status_rollup_number = $3, last_status_rollup_time = now(), \
                effective_last_detection_time = $4, last_status_change_at = now() \
             WHERE computer_id = $1 AND parent_server_id = $2",
        )
        .bind(&c.computer_id)
        .bind(parent)
        .bind(c.rollup_number)
        .bind(ours(c.effective_last_detection_time, skew))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            continue;
        }
        if c.is_full_rollup {
            sqlx::query("DELETE FROM update_status WHERE computer_id = $1")
                .bind(&c.computer_id)
                .execute(&mut *tx)
                .await?;
        }
        let updates: Vec<Uuid> = c.statuses.iter().map(|s| s.update_id).collect();
        let states: Vec<i16> = c.statuses.iter().map(|s| s.summarization_state).collect();
        let times: Vec<DateTime<Utc>> = c.statuses.iter().map(|s| s.last_change_time - skew).collect();
        sqlx::query(
            "INSERT INTO update_status AS u (computer_id, update_id, status, last_change_time) \
             SELECT DISTINCT ON (x.u) $1, x.u, x.s, x.t FROM unnest($2::uuid[], $3::int2[], $4::timestamptz[]) AS x(u, s, t) \
             ORDER BY x.u, x.t DESC \
             ON CONFLICT (computer_id, update_id) DO UPDATE SET status = EXCLUDED.status, \
                last_change_time = EXCLUDED.last_change_time WHERE u.last_change_time <= EXCLUDED.last_change_time",
        )
        .bind(&c.computer_id)
        .bind(&updates)
        .bind(&states)
        .bind(&times)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
