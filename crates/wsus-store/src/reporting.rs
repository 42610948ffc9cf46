//! What clients tell the server: registrations, sync records and events.
//! Every write is idempotent, so a batch re-sent after a timeout changes nothing.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, QueryBuilder};
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
    // Gateways keep registered computers in memory.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(crate::index::COMPUTERS_CHANNEL)
        .bind(&r.computer_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A completed (or failed) SyncUpdates scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSync {
    pub computer_id: String,
    pub synced_at: DateTime<Utc>,
    pub succeeded: bool,
}

/// Records scans; the newest time wins, so replays and reordering are harmless.
pub async fn record_client_syncs(pool: &PgPool, syncs: &[ClientSync]) -> Result<()> {
    if syncs.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = syncs.iter().map(|s| s.computer_id.as_str()).collect();
    let times: Vec<DateTime<Utc>> = syncs.iter().map(|s| s.synced_at).collect();
    let results: Vec<i16> = syncs.iter().map(|s| if s.succeeded { 1 } else { 2 }).collect();
    // One row per computer (its newest scan) so the upsert touches each row once.
    sqlx::query(
        "INSERT INTO computer AS c (computer_id, last_sync_time, last_sync_result, last_contact_at) \
         SELECT DISTINCT ON (id) id, t, r, t FROM unnest($1::text[], $2::timestamptz[], $3::int2[]) AS s(id, t, r) \
         ORDER BY id, t DESC \
         ON CONFLICT (computer_id) DO UPDATE SET \
            last_sync_result = CASE WHEN c.last_sync_time IS NULL OR EXCLUDED.last_sync_time >= c.last_sync_time \
                               THEN EXCLUDED.last_sync_result ELSE c.last_sync_result END, \
            last_sync_time = GREATEST(c.last_sync_time, EXCLUDED.last_sync_time), \
            last_contact_at = GREATEST(c.last_contact_at, EXCLUDED.last_contact_at), \
            updated_at = now()",
    )
    .bind(&ids)
    .bind(&times)
    .bind(&results)
    .execute(pool)
    .await?;
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

/// Rows per INSERT statement: keeps bind parameters under Postgres's 65,535.
const EVENTS_PER_STATEMENT: usize = 1000;

/// Stores events durably in one transaction; returns how many were new (the rest were
/// already stored: same EventInstanceID and TimeAtTarget).
pub async fn insert_events(pool: &PgPool, events: &[Event]) -> Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let mut inserted = 0;
    for chunk in events.chunks(EVENTS_PER_STATEMENT) {
        let mut q = QueryBuilder::new(
            "INSERT INTO reporting_event (event_instance_id, time_at_target, computer_id, namespace_id, \
             event_id, source_id, update_id, revision_number, win32_hresult, app_name, replacement_strings, \
             misc_data, computer_brand, computer_model, bios_revision, processor_architecture, os_version, \
             os_locale_id, device_id) ",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(e.event_instance_id)
                .push_bind(e.time_at_target)
                .push_bind(&e.computer_id)
                .push_bind(e.namespace_id)
                .push_bind(e.event_id)
                .push_bind(e.source_id)
                .push_bind(e.update_id)
                .push_bind(e.revision_number)
                .push_bind(e.win32_hresult)
                .push_bind(&e.app_name)
                .push_bind(&e.replacement_strings)
                .push_bind(&e.misc_data)
                .push_bind(&e.computer_brand)
                .push_bind(&e.computer_model)
                .push_bind(&e.bios_revision)
                .push_bind(&e.processor_architecture)
                .push_bind(&e.os_version)
                .push_bind(e.os_locale_id)
                .push_bind(&e.device_id);
        });
        q.push(" ON CONFLICT DO NOTHING");
        inserted += q.build().execute(&mut *tx).await?.rows_affected();
    }
    let mut ids: Vec<&str> = events.iter().map(|e| e.computer_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    sqlx::query(
        "UPDATE computer SET last_reported_status_time = now(), last_contact_at = GREATEST(last_contact_at, now()) \
         WHERE computer_id = ANY($1)",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(inserted)
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
pub async fn event_count(pool: &PgPool, computer_id: &str) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM reporting_event WHERE computer_id = $1")
        .bind(computer_id)
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// An event as status derivation reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatusEvent {
    pub event_id: i16,
    pub update_id: Option<Uuid>,
    pub time_at_target: DateTime<Utc>,
    pub misc_data: Vec<String>,
}

/// A computer's events of the given ids, oldest first.
pub async fn events_of(pool: &PgPool, computer_id: &str, event_ids: &[i32]) -> Result<Vec<StatusEvent>> {
    Ok(sqlx::query_as(
        "SELECT event_id, update_id, time_at_target, misc_data FROM reporting_event \
         WHERE computer_id = $1 AND event_id = ANY($2::int2[]) ORDER BY time_at_target, event_instance_id",
    )
    .bind(computer_id)
    .bind(event_ids.iter().map(|i| *i as i16).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?)
}

/// Stores a computer's derived statuses: (update, SummarizationState, time of the report);
/// a row changes only when its state does. Returns how many rows changed.
pub async fn store_statuses(pool: &PgPool, computer_id: &str, rows: &[(Uuid, i16, DateTime<Utc>)]) -> Result<u64> {
    let updates: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let states: Vec<i16> = rows.iter().map(|r| r.1).collect();
    let times: Vec<DateTime<Utc>> = rows.iter().map(|r| r.2).collect();
    let done = sqlx::query(
        "INSERT INTO update_status (computer_id, update_id, status, last_change_time) \
         SELECT $1, u, s, t FROM unnest($2::uuid[], $3::int2[], $4::timestamptz[]) AS x(u, s, t) \
         WHERE EXISTS (SELECT 1 FROM computer WHERE computer_id = $1) \
         ON CONFLICT (computer_id, update_id) DO UPDATE SET status = EXCLUDED.status, \
            last_change_time = EXCLUDED.last_change_time WHERE update_status.status <> EXCLUDED.status",
    )
    .bind(computer_id)
    .bind(&updates)
    .bind(&states)
    .bind(&times)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A computer's stored statuses: (update, SummarizationState).
pub async fn statuses(pool: &PgPool, computer_id: &str) -> Result<Vec<(Uuid, i16)>> {
    Ok(sqlx::query_as("SELECT update_id, status FROM update_status WHERE computer_id = $1 ORDER BY update_id")
        .bind(computer_id)
        .fetch_all(pool)
        .await?)
}
