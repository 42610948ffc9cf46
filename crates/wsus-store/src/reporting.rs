//! What clients tell the server: registrations, sync records and events.
//! Every write is idempotent, so a batch re-sent after a timeout changes nothing.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::Result;

/// RegisterComputer's ComputerInfo, plus what the gateway saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registration {
    pub computer_id: String,
    pub dns_name: Option<String>,
    pub ip_address: Option<std::net::IpAddr>,
    pub os_major_version: Option<i32>,
    pub os_minor_version: Option<i32>,
    pub os_build_number: Option<i32>,
    pub os_service_pack_major_number: Option<i16>,
    pub os_service_pack_minor_number: Option<i16>,
    pub os_locale: Option<String>,
    pub os_description: Option<String>,
    pub suite_mask: Option<i16>,
    pub old_product_type: Option<i16>,
    pub new_product_type: Option<i32>,
    pub system_metrics: Option<i32>,
    pub processor_architecture: Option<String>,
    pub computer_manufacturer: Option<String>,
    pub computer_model: Option<String>,
    pub bios_name: Option<String>,
    pub bios_version: Option<String>,
    pub bios_release_date: Option<DateTime<Utc>>,
    pub firmware_version: Option<String>,
    pub oem: Option<String>,
    pub device_type: Option<String>,
    pub mobile_operator: Option<String>,
    pub client_version: Option<String>,
    pub requested_target_group_names: Vec<String>,
    pub registered_at: DateTime<Utc>,
}

/// Stores a registration durably (insert or refresh).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.reporting.register_computer"))]
pub async fn register_computer(pool: &PgPool, r: &Registration) -> Result<()> {
    sqlx::query(
        "INSERT INTO computer (computer_id, dns_name, ip_address, os_major_version, os_minor_version, \
            os_build_number, os_service_pack_major_number, os_service_pack_minor_number, os_locale, \
            os_description, suite_mask, old_product_type, new_product_type, system_metrics, \
            processor_architecture, computer_manufacturer, computer_model, bios_name, bios_version, \
            bios_release_date, firmware_version, oem, device_type, mobile_operator, client_version, \
            requested_target_group_names, registered_at, last_contact_at, details_changed) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$27,true) \
         ON CONFLICT (computer_id) DO UPDATE SET \
            dns_name = EXCLUDED.dns_name, ip_address = EXCLUDED.ip_address, \
            os_major_version = EXCLUDED.os_major_version, os_minor_version = EXCLUDED.os_minor_version, \
            os_build_number = EXCLUDED.os_build_number, \
            os_service_pack_major_number = EXCLUDED.os_service_pack_major_number, \
            os_service_pack_minor_number = EXCLUDED.os_service_pack_minor_number, \
            os_locale = EXCLUDED.os_locale, os_description = EXCLUDED.os_description, \
            suite_mask = EXCLUDED.suite_mask, old_product_type = EXCLUDED.old_product_type, \
            new_product_type = EXCLUDED.new_product_type, system_metrics = EXCLUDED.system_metrics, \
            processor_architecture = EXCLUDED.processor_architecture, \
            computer_manufacturer = EXCLUDED.computer_manufacturer, computer_model = EXCLUDED.computer_model, \
            bios_name = EXCLUDED.bios_name, bios_version = EXCLUDED.bios_version, \
            bios_release_date = EXCLUDED.bios_release_date, firmware_version = EXCLUDED.firmware_version, \
            oem = EXCLUDED.oem, device_type = EXCLUDED.device_type, mobile_operator = EXCLUDED.mobile_operator, \
            client_version = EXCLUDED.client_version, \
            requested_target_group_names = EXCLUDED.requested_target_group_names, \
            registered_at = EXCLUDED.registered_at, \
            last_contact_at = GREATEST(computer.last_contact_at, EXCLUDED.last_contact_at), \
            details_changed = true, updated_at = now()",
    )
    .bind(&r.computer_id)
    .bind(&r.dns_name)
    .bind(r.ip_address)
    .bind(r.os_major_version)
    .bind(r.os_minor_version)
    .bind(r.os_build_number)
    .bind(r.os_service_pack_major_number)
    .bind(r.os_service_pack_minor_number)
    .bind(&r.os_locale)
    .bind(&r.os_description)
    .bind(r.suite_mask)
    .bind(r.old_product_type)
    .bind(r.new_product_type)
    .bind(r.system_metrics)
    .bind(&r.processor_architecture)
    .bind(&r.computer_manufacturer)
    .bind(&r.computer_model)
    .bind(&r.bios_name)
    .bind(&r.bios_version)
    .bind(r.bios_release_date)
    .bind(&r.firmware_version)
    .bind(&r.oem)
    .bind(&r.device_type)
    .bind(&r.mobile_operator)
    .bind(&r.client_version)
    .bind(&r.requested_target_group_names)
    .bind(r.registered_at)
    .execute(pool)
    .await?;
    place_by_requested_groups(pool, std::slice::from_ref(&r.computer_id)).await?;
    // Gateways keep registered computers in memory.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(crate::index::COMPUTERS_CHANNEL)
        .bind(&r.computer_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A completed (or failed) SyncUpdates scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientSync {
    pub computer_id: String,
    pub synced_at: DateTime<Utc>,
    pub succeeded: bool,
    /// Where it called from; None when not known (the address on record stays).
    pub ip_address: Option<std::net::IpAddr>,
    /// The groups it asked for (client-side targeting).
    pub requested_target_group_names: Vec<String>,
}

/// Records scans; the newest time wins, so replays and reordering are harmless. The
/// newest scan's address and requested groups become the computer's (an address that
/// changed is a detail a rollup sends again).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.reporting.record_client_syncs"))]
pub async fn record_client_syncs(pool: &PgPool, syncs: &[ClientSync]) -> Result<()> {
    if syncs.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = syncs.iter().map(|s| s.computer_id.as_str()).collect();
    let times: Vec<DateTime<Utc>> = syncs.iter().map(|s| s.synced_at).collect();
    let results: Vec<i16> = syncs.iter().map(|s| if s.succeeded { 1 } else { 2 }).collect();
    let ips: Vec<Option<std::net::IpAddr>> = syncs.iter().map(|s| s.ip_address).collect();
    // Ragged lists travel as JSON arrays, one per scan.
    let names: Vec<serde_json::Value> =
        syncs.iter().map(|s| serde_json::json!(s.requested_target_group_names)).collect();
    let mut tx = pool.begin().await?;
    // One row per computer (its newest scan) so the upsert touches each row once.
    let touched: Vec<(String,)> = sqlx::query_as(
        "WITH s AS ( \
            SELECT DISTINCT ON (id) id, t, r, ip, \
                   ARRAY(SELECT jsonb_array_elements_text(n)) AS names \
            FROM unnest($1::text[], $2::timestamptz[], $3::int2[], $4::inet[], $5::jsonb[]) AS s(id, t, r, ip, n) \
            ORDER BY id, t DESC) \
         INSERT INTO computer AS c (computer_id, last_sync_time, last_sync_result, last_contact_at, ip_address, \
                                    requested_target_group_names) \
         SELECT id, t, r, t, ip, names FROM s \
         ON CONFLICT (computer_id) DO UPDATE SET \
            last_sync_result = CASE WHEN c.last_sync_time IS NULL OR EXCLUDED.last_sync_time >= c.last_sync_time \
                               THEN EXCLUDED.last_sync_result ELSE c.last_sync_result END, \
            ip_address = CASE WHEN EXCLUDED.ip_address IS NOT NULL \
                                   AND (c.last_sync_time IS NULL OR EXCLUDED.last_sync_time >= c.last_sync_time) \
                              THEN EXCLUDED.ip_address ELSE c.ip_address END, \
            details_changed = c.details_changed OR (EXCLUDED.ip_address IS NOT NULL \
                                   AND EXCLUDED.ip_address IS DISTINCT FROM c.ip_address \
                                   AND (c.last_sync_time IS NULL OR EXCLUDED.last_sync_time >= c.last_sync_time)), \
            requested_target_group_names = CASE WHEN c.last_sync_time IS NULL OR EXCLUDED.last_sync_time >= c.last_sync_time \
                              THEN EXCLUDED.requested_target_group_names ELSE c.requested_target_group_names END, \
            last_sync_time = GREATEST(c.last_sync_time, EXCLUDED.last_sync_time), \
            last_contact_at = GREATEST(c.last_contact_at, EXCLUDED.last_contact_at), \
            updated_at = now() \
         RETURNING computer_id",
    )
    .bind(&ids)
    .bind(&times)
    .bind(&results)
    .bind(&ips)
    .bind(&names)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let touched: Vec<String> = touched.into_iter().map(|(id,)| id).collect();
    place_by_requested_groups(pool, &touched).await
}

/// With client-side targeting (Group Policy "Enable client-side targeting"), puts each
/// computer in every existing group it asks for and takes it out of those it no longer
/// asks for ("If client-side targeting is enabled and the group exists, the client is
/// added to the specified group"; a computer in none is in Unassigned Computers). Names
/// match in any letter case; the built-in groups are never asked into. Memberships an
/// administrator made stay.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.reporting.place_by_requested_groups"))]
pub async fn place_by_requested_groups(pool: &PgPool, computer_ids: &[String]) -> Result<()> {
    if computer_ids.is_empty() {
        return Ok(());
    }
    let client_side = crate::settings::get::<crate::settings::ClientConfig>(pool, crate::settings::CLIENT_CONFIG)
        .await?
        .is_some_and(|s| s.value.client_side_targeting);
    if !client_side {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    // The groups each computer asks for that exist (not built-in), in any letter case.
    sqlx::query(
        "DELETE FROM computer_group_membership m WHERE m.computer_id = ANY($1) AND m.source = 'client' \
           AND NOT EXISTS (SELECT 1 FROM computer c JOIN target_group g ON g.group_id = m.group_id \
                           WHERE c.computer_id = m.computer_id AND NOT g.is_builtin \
                             AND lower(g.name) IN (SELECT lower(n) FROM unnest(c.requested_target_group_names) AS n))",
    )
    .bind(computer_ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO computer_group_membership (computer_id, group_id, source) \
         SELECT c.computer_id, g.group_id, 'client' FROM computer c \
         JOIN target_group g ON NOT g.is_builtin \
          AND lower(g.name) IN (SELECT lower(n) FROM unnest(c.requested_target_group_names) AS n) \
         WHERE c.computer_id = ANY($1) ON CONFLICT DO NOTHING",
    )
    .bind(computer_ids)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One MS-WUSP ReportingEvent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub event_instance_id: Uuid,
    pub time_at_target: DateTime<Utc>,
    pub computer_id: String,
    pub namespace_id: i16,
    pub event_id: i16,
    pub source_id: Option<i16>,
    /// None for the all-zero GUID.
    pub update_id: Option<Uuid>,
    pub revision_number: Option<i32>,
    pub win32_hresult: Option<i32>,
    pub app_name: Option<String>,
    pub replacement_strings: Vec<String>,
    pub misc_data: Vec<String>,
    pub computer_brand: Option<String>,
    pub computer_model: Option<String>,
    pub bios_revision: Option<String>,
    pub processor_architecture: Option<String>,
    pub os_version: Option<String>,
    pub os_locale_id: Option<i32>,
    pub device_id: Option<String>,
}

/// Separates the strings of a string list passed as one text (a control character XML
/// cannot carry, so no event string holds it: reporting refuses those that do).
pub const LIST_SEPARATOR: char = '\u{1f}';

/// One text per list: each string preceded by the separator (so `[""]` and `[]` differ).
fn joined<'a>(lists: impl Iterator<Item = &'a [String]>) -> Vec<String> {
    lists
        .map(|l| {
            let mut out = String::with_capacity(l.iter().map(|s| s.len() + 1).sum());
            for s in l {
                out.push(LIST_SEPARATOR);
                out.push_str(s);
            }
            out
        })
        .collect()
}

/// Inserts events as columns of arrays: one statement of one shape whatever the batch
/// size, so it is planned once per connection.
async fn insert_rows(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, events: &[Event]) -> Result<Vec<Uuid>> {
    fn col<'a, T, F: Fn(&'a Event) -> T>(events: &'a [Event], f: F) -> Vec<T> {
        events.iter().map(f).collect()
    }
    let new: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO reporting_event (event_instance_id, time_at_target, computer_id, namespace_id, \
             event_id, source_id, update_id, revision_number, win32_hresult, app_name, replacement_strings, \
             misc_data, computer_brand, computer_model, bios_revision, processor_architecture, os_version, \
             os_locale_id, device_id) \
         SELECT i, t, c, n, e, s, u, r, h, a, (string_to_array(rs, chr(31)))[2:], (string_to_array(md, chr(31)))[2:], \
                cb, cm, br, pa, ov, ol, di \
         FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::int2[], $5::int2[], $6::int2[], $7::uuid[], \
                     $8::int4[], $9::int4[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], \
                     $15::text[], $16::text[], $17::text[], $18::int4[], $19::text[]) \
              AS x(i, t, c, n, e, s, u, r, h, a, rs, md, cb, cm, br, pa, ov, ol, di) \
         ON CONFLICT DO NOTHING RETURNING event_instance_id",
    )
    .bind(col(events, |e| e.event_instance_id))
    .bind(col(events, |e| e.time_at_target))
    .bind(col(events, |e| e.computer_id.as_str()))
    .bind(col(events, |e| e.namespace_id))
    .bind(col(events, |e| e.event_id))
    .bind(col(events, |e| e.source_id))
    .bind(col(events, |e| e.update_id))
    .bind(col(events, |e| e.revision_number))
    .bind(col(events, |e| e.win32_hresult))
    .bind(col(events, |e| e.app_name.as_deref()))
    .bind(joined(events.iter().map(|e| e.replacement_strings.as_slice())))
    .bind(joined(events.iter().map(|e| e.misc_data.as_slice())))
    .bind(col(events, |e| e.computer_brand.as_deref()))
    .bind(col(events, |e| e.computer_model.as_deref()))
    .bind(col(events, |e| e.bios_revision.as_deref()))
    .bind(col(events, |e| e.processor_architecture.as_deref()))
    .bind(col(events, |e| e.os_version.as_deref()))
    .bind(col(events, |e| e.os_locale_id))
    .bind(col(events, |e| e.device_id.as_deref()))
    .fetch_all(&mut **tx)
    .await?;
    Ok(new.into_iter().map(|(id,)| id).collect())
}

/// What a batch of events says about statuses, stored with the events.
#[derive(Debug, Clone, Default)]
pub struct StatusFold {
    /// (computer, update, SummarizationState, time of the report): the batch's latest
    /// report per computer and update.
    pub reports: Vec<(String, Uuid, i16, DateTime<Utc>)>,
    /// (computer, time of its last complete scan in the batch).
    pub last_scans: Vec<(String, DateTime<Utc>)>,
    /// How far along the install each SummarizationState is (indexed by the state): of two
    /// reports at one time, the one further along wins.
    pub lifecycle: Vec<i16>,
}

/// Stores events durably in one transaction with what they say about statuses; returns
/// the EventInstanceIDs of the events that were new (the rest were already stored: same
/// EventInstanceID and TimeAtTarget). Folding a status report in twice changes nothing,
/// so a re-sent batch is harmless.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.reporting.insert_events"))]
pub async fn insert_events(pool: &PgPool, events: &[Event], fold: &StatusFold) -> Result<Vec<Uuid>> {
    if events.is_empty() && fold.reports.is_empty() && fold.last_scans.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    let inserted = if events.is_empty() { Vec::new() } else { insert_rows(&mut tx, events).await? };
    let changed = fold_statuses(&mut tx, fold).await?;
    let mut ids: Vec<&str> = events.iter().map(|e| e.computer_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let (scanned, scans): (Vec<&str>, Vec<DateTime<Utc>>) =
        fold.last_scans.iter().map(|(c, t)| (c.as_str(), *t)).unzip();
    sqlx::query(
        "UPDATE computer c SET \
            last_reported_status_time = CASE WHEN c.computer_id = ANY($1) THEN now() ELSE c.last_reported_status_time END, \
            last_contact_at = CASE WHEN c.computer_id = ANY($1) THEN GREATEST(c.last_contact_at, now()) ELSE c.last_contact_at END, \
            effective_last_detection_time = GREATEST(c.effective_last_detection_time, \
                (SELECT max(t) FROM unnest($2::text[], $3::timestamptz[]) AS s(id, t) WHERE s.id = c.computer_id)), \
            last_status_change_at = CASE WHEN c.computer_id = ANY($4) THEN now() ELSE c.last_status_change_at END \
         WHERE c.computer_id = ANY($1) OR c.computer_id = ANY($2) OR c.computer_id = ANY($4)",
    )
    .bind(&ids)
    .bind(&scanned)
    .bind(&scans)
    .bind(&changed)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(inserted)
}

/// Folds status reports into update_status: a report replaces the held one when it is
/// later, or as late and further along the install. Returns the computers a status of
/// which changed.
async fn fold_statuses(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, fold: &StatusFold) -> Result<Vec<String>> {
    if fold.reports.is_empty() {
        return Ok(Vec::new());
    }
    let computers: Vec<&str> = fold.reports.iter().map(|r| r.0.as_str()).collect();
    let updates: Vec<Uuid> = fold.reports.iter().map(|r| r.1).collect();
    let states: Vec<i16> = fold.reports.iter().map(|r| r.2).collect();
    let times: Vec<DateTime<Utc>> = fold.reports.iter().map(|r| r.3).collect();
    // The CTE `held` reads the rows as they were before the upsert (one snapshot), which
    // tells a changed status from a newer report of the same one.
    let changed: Vec<(String,)> = sqlx::query_as(
        "WITH incoming AS ( \
            SELECT * FROM unnest($1::text[], $2::uuid[], $3::int2[], $4::timestamptz[]) AS x(computer_id, update_id, status, reported_at) \
            WHERE EXISTS (SELECT 1 FROM computer c WHERE c.computer_id = x.computer_id)), \
         held AS ( \
            SELECT i.computer_id, i.update_id, u.status FROM incoming i \
            JOIN update_status u ON u.computer_id = i.computer_id AND u.update_id = i.update_id), \
         folded AS ( \
            INSERT INTO update_status AS u (computer_id, update_id, status, last_change_time, reported_at) \
            SELECT computer_id, update_id, status, reported_at, reported_at FROM incoming \
            ON CONFLICT (computer_id, update_id) DO UPDATE SET status = EXCLUDED.status, reported_at = EXCLUDED.reported_at, \
                last_change_time = CASE WHEN u.status <> EXCLUDED.status THEN EXCLUDED.reported_at ELSE u.last_change_time END \
            WHERE (EXCLUDED.reported_at, ($5::int2[])[EXCLUDED.status + 1]) \
                > (COALESCE(u.reported_at, u.last_change_time), ($5::int2[])[u.status + 1]) \
            RETURNING u.computer_id, u.update_id, u.status) \
         SELECT DISTINCT f.computer_id FROM folded f \
         LEFT JOIN held h ON h.computer_id = f.computer_id AND h.update_id = f.update_id \
         WHERE h.status IS DISTINCT FROM f.status",
    )
    .bind(&computers)
    .bind(&updates)
    .bind(&states)
    .bind(&times)
    .bind(&fold.lifecycle)
    .fetch_all(&mut **tx)
    .await?;
    Ok(changed.into_iter().map(|(c,)| c).collect())
}

/// A computer as stored (the fields the services read back so far).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ComputerSummary {
    pub computer_id: String,
    pub dns_name: Option<String>,
    pub os_build_number: Option<i32>,
    pub registered_at: Option<DateTime<Utc>>,
    pub last_sync_time: Option<DateTime<Utc>>,
    pub last_sync_result: i16,
    pub last_reported_status_time: Option<DateTime<Utc>>,
}

#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.reporting.computer"))]
pub async fn computer(pool: &PgPool, computer_id: &str) -> Result<Option<ComputerSummary>> {
    Ok(sqlx::query_as(
        "SELECT computer_id, dns_name, os_build_number, registered_at, last_sync_time, last_sync_result, \
         last_reported_status_time FROM computer WHERE computer_id = $1",
    )
    .bind(computer_id)
    .fetch_optional(pool)
    .await?)
}

/// Number of stored events of one computer.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.reporting.event_count"))]
pub async fn event_count(pool: &PgPool, computer_id: &str) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM reporting_event WHERE computer_id = $1")
        .bind(computer_id)
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// A computer's stored statuses: (update, SummarizationState).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.reporting.statuses"))]
pub async fn statuses(pool: &PgPool, computer_id: &str) -> Result<Vec<(Uuid, i16)>> {
    Ok(sqlx::query_as("SELECT update_id, status FROM update_status WHERE computer_id = $1 ORDER BY update_id")
        .bind(computer_id)
        .fetch_all(pool)
        .await?)
}
