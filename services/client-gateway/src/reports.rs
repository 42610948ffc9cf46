//! The Reporting web service (ReportEventBatch) and scan records: client writes go to
//! reporting over gRPC; an event is acknowledged only once reporting stored it.

use std::time::Duration;

use tokio::sync::mpsc;
use wsus_soap::wusp::{self, encode_report_event_batch_response};
use wsus_soap::{Element, ErrorCode};

use crate::Gateway;
use crate::soap::{OpResult, invalid, rpc_fault};

/// ReportEventBatch (the cookie says who reports) and ReportEventBatch2 (computerId
/// does, as the WSDL defines it).
pub async fn report_event_batch(gw: &Gateway, op: &Element) -> OpResult {
    let operation = op.name.clone();
    let computer_id = if operation == "ReportEventBatch2" {
        let id = op.child("computerId").map(|c| c.value().to_owned()).unwrap_or_default();
        if id.is_empty() || id.len() > 256 {
            return Err((ErrorCode::InvalidParameters, "computerId".to_owned()));
        }
        id
    } else {
        crate::client::open_cookie(gw, &wusp::request_cookie(op).map_err(invalid)?)?.1.client_id
    };
    let events = wusp::decode_event_batch(op).map_err(invalid)?;
    let events = events
        .into_iter()
        .map(|e| wsus_rpc::reporting::ClientEvent {
            event_instance_id: e.event_instance_id,
            time_at_target: Some(wsus_rpc::timestamp(e.time_at_target.unwrap_or_else(chrono::Utc::now))),
            // The cookie says who this is; TargetID is the client's own claim.
            computer_id: computer_id.clone(),
            namespace_id: e.namespace_id,
            event_id: e.event_id,
            source_id: e.source_id,
            update_id: e.update_id,
            revision_number: e.revision_number,
            win32_hresult: e.win32_hresult,
            app_name: e.app_name,
            replacement_strings: e.replacement_strings,
            misc_data: e.misc_data,
            computer_brand: e.computer_brand,
            computer_model: e.computer_model,
            bios_revision: e.bios_revision,
            processor_architecture: e.processor_architecture,
            os_version: e.os_version,
            os_locale_id: e.os_locale_id,
            device_id: e.device_id,
        })
        .collect();
    let mut reporting = gw.reporting.clone();
    let request = wsus_rpc::reporting::IngestEventsRequest { events };
    match reporting.ingest_events(request).await {
        Ok(_) => Ok(encode_report_event_batch_response(&operation)),
        Err(status) => Err(rpc_fault("events not stored", &status)),
    }
}

/// GetRequiredInventoryType: this server never asks for inventory (GetConfig announces
/// IsInventoryRequired 0), so the answer is 0, none.
pub fn get_required_inventory_type(gw: &Gateway, op: &Element) -> OpResult {
    crate::client::open_cookie(gw, &wusp::request_cookie(op).map_err(invalid)?)?;
    Ok(format!(
        "<GetRequiredInventoryTypeResponse xmlns=\"{}\"><GetRequiredInventoryTypeResult>0</GetRequiredInventoryTypeResult></GetRequiredInventoryTypeResponse>",
        wusp::REPORTING_NS
    ))
}

/// ReportInventory: inventory this server did not ask for is acknowledged and not kept.
pub fn report_inventory(gw: &Gateway, op: &Element) -> OpResult {
    let (_, cookie) = crate::client::open_cookie(gw, &wusp::request_cookie(op).map_err(invalid)?)?;
    tracing::debug!(computer = %cookie.client_id, "inventory sent though none was asked for; not kept");
    Ok(encode_report_event_batch_response("ReportInventory"))
}

/// Completed scans, sent to reporting in batches off the request path.
#[derive(Clone)]
pub struct SyncRecords {
    tx: mpsc::Sender<wsus_rpc::reporting::ClientSync>,
}

/// Scans held while reporting is unreachable; older ones are dropped past this.
const MAX_PENDING: usize = 50_000;

impl SyncRecords {
    pub fn start(reporting: wsus_rpc::ReportingClient) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<wsus_rpc::reporting::ClientSync>(10_000);
        let task = tokio::spawn(async move {
            let mut pending: Vec<wsus_rpc::reporting::ClientSync> = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    got = rx.recv() => match got {
                        Some(s) => pending.push(s),
                        None => break,
                    },
                    _ = tick.tick() => {
                        if pending.is_empty() {
                            continue;
                        }
                        let batch: Vec<_> = pending.drain(..pending.len().min(5000)).collect();
                        let mut client = reporting.clone();
                        let request = wsus_rpc::reporting::RecordClientSyncsRequest { syncs: batch.clone() };
                        match client.record_client_syncs(request).await {
                            Ok(_) => {}
                            Err(_) => {
                                // Keep them for the next tick, bounded.
                                pending.splice(0..0, batch);
                                if pending.len() > MAX_PENDING {
                                    let drop = pending.len() - MAX_PENDING;
                                    pending.drain(..drop);
                                    tracing::warn!(dropped = drop, "reporting unreachable: oldest scan records dropped");
                                }
                            }
                        }
                    }
                }
            }
        });
        (Self { tx }, task)
    }

    /// Records a completed scan now, with where the client called from and the groups it
    /// asked for; never waits.
    pub fn record(&self, computer_id: &str, address: Option<std::net::IpAddr>, requested_groups: Vec<String>) {
        let record = wsus_rpc::reporting::ClientSync {
            computer_id: computer_id.to_owned(),
            synced_at: Some(wsus_rpc::timestamp(chrono::Utc::now())),
            succeeded: true,
            ip_address: address.map(|a| a.to_string()),
            requested_target_group_names: requested_groups,
        };
        if self.tx.try_send(record).is_err() {
            tracing::debug!("scan record queue full; record dropped");
        }
    }
}
