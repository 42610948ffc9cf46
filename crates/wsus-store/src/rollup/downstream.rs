//! Rollup as a downstream server (MS-WSUSSS 3.2.4.5): what this server sends its own
//! upstream about itself, the servers below it, their computers and statuses.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use wsus_soap::rollup::{
    ActivitySummary, Change, ClientSummary, ComputerDetails, ComputerInfo, ComputerStatus, DownstreamServerInfo,
    ServerSummary, UpdateStatus,
};

use crate::Result;
use crate::states::{FAILED, still_needed};

/// What this server (as downstream) rolls up about itself.
#[derive(Debug, Clone)]
pub struct SelfInfo {
    pub server_id: Uuid,
    pub fqdn: String,
    pub version: String,
    pub is_replica: bool,
}

/// Classifications whose unapproved updates WSUS counts as critical or security.
const CRITICAL_UPDATES: Uuid = uuid::uuid!("e6cf1350-c01b-414d-a61f-263d14d133b4");
const SECURITY_UPDATES: Uuid = uuid::uuid!("0fa1201d-4330-4fa8-8ae9-b877473b6441");

/// The 18 ServerSummary counts of this server (MS-WSUSSS 3.2.4.5 step 2).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.downstream.server_summary"))]
pub async fn server_summary(pool: &PgPool) -> Result<ServerSummary> {
    type Counts = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let still_needed = still_needed();
    let row: Counts = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH latest AS (SELECT DISTINCT ON (update_id) * FROM revision WHERE update_type IN ('Software', 'Driver') \
                         ORDER BY update_id, revision_number DESC), \
         declined AS (SELECT update_id FROM declined_update), \
         approved AS (SELECT DISTINCT update_id FROM deployment WHERE deleted_at IS NULL AND action = 'Install'), \
         stale AS (SELECT DISTINCT p.update_id FROM deployment p JOIN latest l USING (update_id) \
                   WHERE p.deleted_at IS NULL AND p.revision_number < l.revision_number), \
         state AS (SELECT update_id, bool_or(status = {FAILED}) AS failed, bool_or(status IN {still_needed}) AS needed \
                   FROM update_status GROUP BY update_id), \
         missing AS (SELECT DISTINCT l.update_id FROM latest l JOIN approved a USING (update_id) \
                     JOIN revision_file rf ON rf.revision_id = l.revision_id JOIN file f ON f.sha1 = rf.sha1 \
                     WHERE f.content_state <> 'present'), \
         broken AS (SELECT DISTINCT l.update_id FROM latest l JOIN approved a USING (update_id) \
                    JOIN revision_file rf ON rf.revision_id = l.revision_id JOIN file f ON f.sha1 = rf.sha1 \
                    WHERE f.content_state IN ('failed', 'quarantined')), \
         computer_state AS (SELECT c.computer_id, bool_or(u.status = {FAILED}) AS failed, bool_or(u.status IN {still_needed}) AS needed \
                            FROM computer c LEFT JOIN update_status u USING (computer_id) GROUP BY c.computer_id) \
         SELECT (SELECT count(*) FROM latest), \
                (SELECT count(*) FROM latest JOIN declined USING (update_id)), \
                (SELECT count(*) FROM latest JOIN approved USING (update_id)), \
                (SELECT count(*) FROM stale), \
                (SELECT count(*) FROM latest WHERE publication_state = 'Expired'), \
                (SELECT count(*) FROM latest l WHERE NOT EXISTS (SELECT 1 FROM approved a WHERE a.update_id = l.update_id) \
                   AND NOT EXISTS (SELECT 1 FROM declined d WHERE d.update_id = l.update_id) \
                   AND EXISTS (SELECT 1 FROM revision_category rc WHERE rc.revision_id = l.revision_id \
                               AND rc.category_update_id IN ($1, $2))), \
                (SELECT count(*) FROM state WHERE failed), \
                (SELECT count(*) FROM broken), \
                (SELECT count(*) FROM missing), \
                (SELECT count(*) FROM state WHERE needed AND NOT failed), \
                (SELECT count(*) FROM target_group WHERE NOT is_builtin), \
                (SELECT count(*) FROM computer), \
                (SELECT count(*) FROM computer_state WHERE needed AND NOT failed), \
                (SELECT count(*) FROM computer_state WHERE failed), \
                (SELECT count(*) FROM computer_state WHERE NOT needed AND NOT failed)"
    )))
    .bind(CRITICAL_UPDATES)
    .bind(SECURITY_UPDATES)
    .fetch_one(pool)
    .await?;
    let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let (
        updates,
        declined,
        approved,
        stale,
        expired,
        critical,
        client_errors,
        server_errors,
        needing_files,
        needed,
        groups,
        computers,
        computers_needing,
        computers_failed,
        computers_ok,
    ) = row;
    Ok(ServerSummary {
        update_count: n(updates),
        declined_update_count: n(declined),
        approved_update_count: n(approved),
        not_approved_update_count: n((updates - declined - approved).max(0)),
        updates_with_stale_update_approvals_count: n(stale),
        expired_update_count: n(expired),
        critical_or_security_updates_not_approved_for_install_count: n(critical),
        // IsMandatory (WSUS infrastructure updates) is not kept: none counted.
        wsus_infrastructure_updates_not_approved_for_install_count: 0,
        updates_with_client_errors_count: n(client_errors),
        updates_with_server_errors_count: n(server_errors),
        updates_needing_files_count: n(needing_files),
        updates_needed_by_computers_count: n(needed),
        updates_up_to_date_count: n((updates - needed - client_errors).max(0)),
        custom_computer_target_group_count: n(groups),
        computer_target_count: n(computers),
        computer_targets_needing_updates_count: n(computers_needing),
        computer_targets_with_update_errors_count: n(computers_failed),
        computers_up_to_date_count: n(computers_ok),
    })
}

/// This server's own computers by operating system, with install activity (events 183
/// succeeded, 182 failed) received after `since`.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.downstream.client_summaries"))]
pub async fn client_summaries(
    pool: &PgPool,
    since: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
) -> Result<Vec<ClientSummary>> {
    type Row = (i32, i32, i32, i32, i32, String, i16, i16, i32, i32, String, i64);
    let groups: Vec<Row> = sqlx::query_as(
        "SELECT COALESCE(os_major_version, 0), COALESCE(os_minor_version, 0), COALESCE(os_build_number, 0), \
                COALESCE(os_service_pack_major_number, 0)::int4, COALESCE(os_service_pack_minor_number, 0)::int4, \
                COALESCE(os_locale, ''), COALESCE(suite_mask, 0)::int2, COALESCE(old_product_type, 0)::int2, \
                COALESCE(new_product_type, 0), COALESCE(system_metrics, 0), COALESCE(processor_architecture, ''), count(*) \
         FROM computer WHERE parent_server_id IS NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11",
    )
    .fetch_all(pool)
    .await?;
    type ActivityRow = (i32, i32, i32, i32, i32, String, i16, i16, i32, i32, String, Uuid, i32, i64, i64);
    let activity: Vec<ActivityRow> = sqlx::query_as(
        "SELECT COALESCE(c.os_major_version, 0), COALESCE(c.os_minor_version, 0), COALESCE(c.os_build_number, 0), \
                COALESCE(c.os_service_pack_major_number, 0)::int4, COALESCE(c.os_service_pack_minor_number, 0)::int4, \
                COALESCE(c.os_locale, ''), COALESCE(c.suite_mask, 0)::int2, COALESCE(c.old_product_type, 0)::int2, \
                COALESCE(c.new_product_type, 0), COALESCE(c.system_metrics, 0), COALESCE(c.processor_architecture, ''), \
                e.update_id, COALESCE(max(e.revision_number), 0), \
                count(*) FILTER (WHERE e.event_id = 183), count(*) FILTER (WHERE e.event_id = 182) \
         FROM reporting_event e JOIN computer c USING (computer_id) \
         WHERE c.parent_server_id IS NULL AND e.event_id IN (182, 183) AND e.update_id IS NOT NULL \
           AND ($1::timestamptz IS NULL OR e.received_at >= $1) AND e.received_at < $2 \
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12",
    )
    .bind(since)
    .bind(until)
    .fetch_all(pool)
    .await?;
    let mut out: Vec<ClientSummary> = groups
        .into_iter()
        .map(|g| ClientSummary {
            os_major_version: g.0,
            os_minor_version: g.1,
            os_build_number: g.2,
            os_service_pack_major_number: g.3,
            os_service_pack_minor_number: g.4,
            os_locale: g.5,
            suite_mask: g.6,
            old_product_type: u8::try_from(g.7).unwrap_or(0),
            new_product_type: g.8,
            system_metrics: g.9,
            processor_architecture: g.10,
            count: i32::try_from(g.11).unwrap_or(i32::MAX),
            activity: Vec::new(),
        })
        .collect();
    for a in activity {
        let key = (a.0, a.1, a.2, a.3, a.4, a.5.clone(), a.6, u8::try_from(a.7).unwrap_or(0), a.8, a.9, a.10.clone());
        if let Some(c) = out.iter_mut().find(|c| {
            (
                c.os_major_version,
                c.os_minor_version,
                c.os_build_number,
                c.os_service_pack_major_number,
                c.os_service_pack_minor_number,
                c.os_locale.clone(),
                c.suite_mask,
                c.old_product_type,
                c.new_product_type,
                c.system_metrics,
                c.processor_architecture.clone(),
            ) == key
        }) {
            c.activity.push(ActivitySummary {
                update_id: a.11,
                revision_number: a.12,
                install_success_count: i32::try_from(a.13).unwrap_or(i32::MAX),
                install_failure_count: i32::try_from(a.14).unwrap_or(i32::MAX),
            });
        }
    }
    Ok(out)
}

/// The downstream servers below this one, parents first, as this server last heard of them.
/// Their ParentServerId is `me` for direct children (their parent, seen from our upstream).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.downstream.descendants"))]
pub async fn descendants(pool: &PgPool, me: Uuid) -> Result<Vec<DownstreamServerInfo>> {
    type Row = (
        Uuid,
        String,
        Option<Uuid>,
        Option<String>,
        bool,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Vec<Option<i32>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "WITH RECURSIVE tree AS (SELECT server_id, 0 AS depth FROM downstream_server WHERE parent_server_id IS NULL \
             UNION ALL SELECT d.server_id, t.depth + 1 FROM downstream_server d JOIN tree t ON d.parent_server_id = t.server_id \
             WHERE t.depth < 32) \
         SELECT d.server_id, d.fqdn, d.parent_server_id, d.version, d.is_replica, d.last_sync_time, d.last_rollup_time, \
            ARRAY[d.update_count, d.declined_update_count, d.approved_update_count, d.not_approved_update_count, \
                  d.updates_with_stale_update_approvals_count, d.expired_update_count, \
                  d.critical_or_security_updates_not_approved_for_install_count, \
                  d.wsus_infrastructure_updates_not_approved_for_install_count, d.updates_with_client_errors_count, \
                  d.updates_with_server_errors_count, d.updates_needing_files_count, d.updates_needed_by_computers_count, \
                  d.updates_up_to_date_count, d.custom_computer_target_group_count, d.computer_target_count, \
                  d.computer_targets_needing_updates_count, d.computer_targets_with_update_errors_count, \
                  d.computers_up_to_date_count] \
         FROM tree t JOIN downstream_server d USING (server_id) \
         WHERE d.last_rollup_time IS NOT NULL ORDER BY t.depth, d.server_id",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (server_id, fqdn, parent, version, is_replica, last_sync, last_rollup, counts) in rows {
        let mut stored = [0i32; 18];
        for (slot, v) in stored.iter_mut().zip(counts) {
            *slot = v.unwrap_or(0);
        }
        let summary = ServerSummary::from_counts(stored);
        type ClientRow = (i32, i32, i32, i32, i32, String, i16, i16, i32, i32, String, i32);
        let clients: Vec<ClientRow> = sqlx::query_as(
            "SELECT os_major_version, os_minor_version, os_build_number, os_service_pack_major_number, \
                os_service_pack_minor_number, os_locale, suite_mask, old_product_type, new_product_type, system_metrics, \
                processor_architecture, computer_count FROM downstream_client_summary WHERE server_id = $1",
        )
        .bind(server_id)
        .fetch_all(pool)
        .await?;
        out.push(DownstreamServerInfo {
            server_id,
            full_domain_name: fqdn,
            last_sync_time: last_sync,
            parent_server_id: parent.unwrap_or(me),
            version: version.unwrap_or_default(),
            is_replica,
            last_rollup_time: last_rollup,
            summary,
            clients: clients
                .into_iter()
                .map(|c| ClientSummary {
                    os_major_version: c.0,
                    os_minor_version: c.1,
                    os_build_number: c.2,
                    os_service_pack_major_number: c.3,
                    os_service_pack_minor_number: c.4,
                    os_locale: c.5,
                    suite_mask: c.6,
                    old_product_type: u8::try_from(c.7).unwrap_or(0),
                    new_product_type: c.8,
                    system_metrics: c.9,
                    processor_architecture: c.10,
                    count: c.11,
                    activity: Vec::new(),
                })
                .collect(),
        });
    }
    Ok(out)
}

/// A page of every computer this server knows (its own, with ParentServerId `me`, and
/// those of its downstream servers), or of `only` these, by id; details when they
/// changed or `full`.
// One function on purpose: one query and its row mapped field by field; the length is the width of a computer's row.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.downstream.computers_page"))]
pub async fn computers_page(
    pool: &PgPool,
    me: Uuid,
    after: Option<&str>,
    limit: i64,
    full: bool,
    only: Option<&[String]>,
) -> Result<Vec<ComputerInfo>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        computer_id: String,
        parent_server_id: Option<Uuid>,
        last_sync_time: Option<DateTime<Utc>>,
        last_sync_result: i16,
        last_reported_reboot_time: Option<DateTime<Utc>>,
        last_reported_status_time: Option<DateTime<Utc>>,
        last_inventory_time: Option<DateTime<Utc>>,
        details_changed: bool,
        ip: Option<String>,
        dns_name: Option<String>,
        os_major_version: Option<i32>,
        os_minor_version: Option<i32>,
        os_build_number: Option<i32>,
        os_service_pack_major_number: Option<i16>,
        os_service_pack_minor_number: Option<i16>,
        os_locale: Option<String>,
        os_family: Option<String>,
        os_description: Option<String>,
        computer_manufacturer: Option<String>,
        computer_model: Option<String>,
        bios_version: Option<String>,
        bios_name: Option<String>,
        bios_release_date: Option<DateTime<Utc>>,
        processor_architecture: Option<String>,
        suite_mask: Option<i16>,
        old_product_type: Option<i16>,
        new_product_type: Option<i32>,
        system_metrics: Option<i32>,
        client_version: Option<String>,
        requested_target_group_names: Vec<String>,
        group_ids: Vec<Uuid>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.computer_id, c.parent_server_id, c.last_sync_time, c.last_sync_result, c.last_reported_reboot_time, \
            c.last_reported_status_time, c.last_inventory_time, c.details_changed, host(c.ip_address) AS ip, c.dns_name, \
            c.os_major_version, c.os_minor_version, c.os_build_number, c.os_service_pack_major_number, \
            c.os_service_pack_minor_number, c.os_locale, c.os_family, c.os_description, c.computer_manufacturer, \
            c.computer_model, c.bios_version, c.bios_name, c.bios_release_date, c.processor_architecture, c.suite_mask, \
            c.old_product_type, c.new_product_type, c.system_metrics, c.client_version, c.requested_target_group_names, \
            COALESCE((SELECT array_agg(m.group_id ORDER BY m.group_id) FROM computer_group_membership m \
                      WHERE m.computer_id = c.computer_id), '{}') AS group_ids \
         FROM computer c WHERE ($1::text IS NULL OR c.computer_id > $1) AND ($3::text[] IS NULL OR c.computer_id = ANY($3)) \
         ORDER BY c.computer_id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .bind(only)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let details = (full || r.details_changed).then(|| ComputerDetails {
                ip_address: r.ip,
                full_domain_name: r.dns_name,
                os_major_version: r.os_major_version,
                os_minor_version: r.os_minor_version,
                os_build_number: r.os_build_number,
                os_service_pack_major_number: r.os_service_pack_major_number,
                os_service_pack_minor_number: r.os_service_pack_minor_number,
                os_locale: r.os_locale,
                os_family: r.os_family,
                os_description: r.os_description,
                computer_make: r.computer_manufacturer,
                computer_model: r.computer_model,
                bios_version: r.bios_version,
                bios_name: r.bios_name,
                bios_release_date: r.bios_release_date,
                processor_architecture: r.processor_architecture,
                suite_mask: r.suite_mask,
                old_product_type: r.old_product_type,
                new_product_type: r.new_product_type,
                system_metrics: r.system_metrics,
                client_version: r.client_version,
                // Unassigned computers are in no group of their own.
                target_group_ids: if r.group_ids.is_empty() { vec![crate::UNASSIGNED_COMPUTERS] } else { r.group_ids },
                requested_target_group_names: r.requested_target_group_names,
            });
            ComputerInfo {
                computer_id: r.computer_id,
                last_sync_time: r.last_sync_time,
                last_sync_result: r.last_sync_result,
                last_reported_reboot_time: r.last_reported_reboot_time,
                last_reported_status_time: r.last_reported_status_time,
                last_inventory_time: r.last_inventory_time,
                parent_server_id: r.parent_server_id.unwrap_or(me),
                details,
            }
        })
        .collect())
}

/// After RollupComputers: details sent are current; NewParent asks for them again;
/// Deleted computers are forgotten.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.downstream.computers_answered"))]
pub async fn computers_answered(pool: &PgPool, with_details: &[String], changed: &[(String, Change)]) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE computer SET details_changed = false WHERE computer_id = ANY($1)")
        .bind(with_details)
        .execute(&mut *tx)
        .await?;
    let again: Vec<&str> = changed.iter().filter(|(_, c)| *c == Change::NewParent).map(|(id, _)| id.as_str()).collect();
    let gone: Vec<&str> = changed.iter().filter(|(_, c)| *c == Change::Deleted).map(|(id, _)| id.as_str()).collect();
    sqlx::query("UPDATE computer SET details_changed = true WHERE computer_id = ANY($1)")
        .bind(&again)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM computer WHERE computer_id = ANY($1)").bind(&gone).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// A page of (computer id, last status rollup number sent), by id.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.downstream.sent_numbers_page"))]
pub async fn sent_numbers_page(pool: &PgPool, after: Option<&str>, limit: i64) -> Result<Vec<(String, i32)>> {
    Ok(sqlx::query_as(
        "SELECT computer_id, last_sent_status_rollup_number FROM computer \
         WHERE $1::text IS NULL OR computer_id > $1 ORDER BY computer_id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Computers whose statuses changed since they were last rolled up (or never were).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.downstream.status_changed"))]
pub async fn status_changed(pool: &PgPool) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT computer_id FROM computer c WHERE (c.last_status_rollup_time IS NULL \
            AND (c.effective_last_detection_time IS NOT NULL OR EXISTS (SELECT 1 FROM update_status u WHERE u.computer_id = c.computer_id))) \
            OR c.last_status_change_at > c.last_status_rollup_time ORDER BY computer_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Full status rollups of these computers, numbered one past what was last sent.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.downstream.full_statuses"))]
pub async fn full_statuses(pool: &PgPool, ids: &[String]) -> Result<Vec<ComputerStatus>> {
    let heads: Vec<(String, Option<DateTime<Utc>>, i32)> = sqlx::query_as(
        "SELECT computer_id, effective_last_detection_time, last_sent_status_rollup_number FROM computer \
         WHERE computer_id = ANY($1) ORDER BY computer_id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let rows: Vec<(String, Uuid, i16, DateTime<Utc>)> = sqlx::query_as(
        "SELECT computer_id, update_id, status, last_change_time FROM update_status WHERE computer_id = ANY($1) \
         ORDER BY computer_id, update_id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut out: Vec<ComputerStatus> = heads
        .into_iter()
        .map(|(computer_id, detected, n)| ComputerStatus {
            instance_id: Uuid::new_v4(),
            computer_id,
            effective_last_detection_time: detected,
            rollup_number: n.saturating_add(1),
            is_full_rollup: true,
            statuses: Vec::new(),
        })
        .collect();
    for (id, update_id, state, t) in rows {
        if let Ok(i) = out.binary_search_by(|c| c.computer_id.as_str().cmp(id.as_str())) {
            out[i].statuses.push(UpdateStatus { update_id, summarization_state: state, last_change_time: t });
        }
    }
    Ok(out)
}

/// After an accepted RollupComputerStatus: the numbers sent become the last sent.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.downstream.statuses_sent"))]
pub async fn statuses_sent(pool: &PgPool, sent: &[(String, i32)], at: DateTime<Utc>) -> Result<()> {
    let ids: Vec<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    let numbers: Vec<i32> = sent.iter().map(|(_, n)| *n).collect();
    sqlx::query(
        "UPDATE computer c SET last_sent_status_rollup_number = x.n, last_status_rollup_time = $3 \
         FROM unnest($1::text[], $2::int4[]) AS x(id, n) WHERE c.computer_id = x.id",
    )
    .bind(&ids)
    .bind(&numbers)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}

/// A new RollupResetGuid from the upstream: everything goes again, in full.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.rollup.downstream.reset_for_full_rollup"))]
pub async fn reset_for_full_rollup(pool: &PgPool) -> Result<()> {
    sqlx::query("UPDATE computer SET details_changed = true, last_status_rollup_time = NULL").execute(pool).await?;
    Ok(())
}
