//! The ReportingService: client writes handed over by client-gateway, stored durably
//! before the call returns. Bad input is INVALID_ARGUMENT; a database outage is
//! UNAVAILABLE, so the gateway answers ServerBusy and the client retries.

use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};
use uuid::Uuid;
use wsus_rpc::reporting::reporting_service_server::ReportingService;
use wsus_rpc::reporting::{
    ClientEvent, ComputerRegistration, GetOutOfSyncComputersRequest, GetOutOfSyncComputersResponse,
    GetRollupConfigurationRequest, IngestEventsRequest, IngestEventsResponse, RecordClientSyncsRequest,
    RecordClientSyncsResponse, RegisterComputerRequest, RegisterComputerResponse, RollupComputerStatusRequest,
    RollupComputerStatusResponse, RollupComputersRequest, RollupComputersResponse, RollupConfiguration,
    RollupDownstreamServersRequest, RollupDownstreamServersResponse,
};
use wsus_service::edge::grpc_status;
use wsus_store::PgPool;
use wsus_store::reporting::{self, ClientSync, Event, Registration};

/// Largest batch accepted in one call.
const MAX_BATCH: usize = 10_000;

#[derive(Clone)]
pub struct Ingest {
    pool: PgPool,
    writer: EventWriter,
    /// Events received, and of those, new ones stored.
    received: wsus_service::Counter,
    stored: wsus_service::Counter,
}

impl Ingest {
    pub fn new(pool: PgPool) -> Self {
        Self {
            writer: EventWriter::start(pool.clone()),
            pool,
            received: Default::default(),
            stored: Default::default(),
        }
    }

    /// Counts events in `metrics` (`wsus_events_received_total`, `wsus_events_stored_total`).
    pub fn counting(self, metrics: &wsus_service::Metrics) -> Self {
        metrics.register("events_received", "Client events received (re-sent ones included)", self.received.clone());
        metrics.register("events_stored", "Client events stored for the first time", self.stored.clone());
        self
    }
}

/// Writes event batches in groups: the batches that arrive while one group commits go
/// into the next, in one transaction. With every commit flushed to disk (a couple of
/// milliseconds here), a commit per batch would cap ingestion at a few hundred batches
/// a second; a group commit shares the flush. A batch is answered once its group is
/// committed, so what is acknowledged is durable.
#[derive(Clone)]
struct EventWriter {
    tx: mpsc::Sender<Pending>,
}

struct Pending {
    events: Vec<Event>,
    reply: oneshot::Sender<Result<u64, Status>>,
}

/// Groups committed at once: one fills while another waits for its flush.
const WRITERS: usize = 3;
/// Events in one group at most (a batch is at most MAX_BATCH).
const GROUP_EVENTS: usize = 20_000;
/// Batches waiting for a writer; callers wait (and the gateway answers ServerBusy when
/// that takes too long) beyond it.
const QUEUED_BATCHES: usize = 1024;

impl EventWriter {
    fn start(pool: PgPool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUED_BATCHES);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WRITERS {
            tokio::spawn(write_groups(pool.clone(), rx.clone()));
        }
        Self { tx }
    }

    /// Stores a batch (with its statuses); returns how many of its events were new.
    async fn write(&self, events: Vec<Event>) -> Result<u64, Status> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Pending { events, reply }).await.map_err(|_| Status::unavailable("shutting down"))?;
        answer.await.map_err(|_| Status::unavailable("shutting down"))?
    }
}

async fn write_groups(pool: PgPool, rx: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        // One writer gathers a group while the others commit theirs.
        let group = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut size = first.events.len();
            let mut group = vec![first];
            while size < GROUP_EVENTS {
                match rx.try_recv() {
                    Ok(p) => {
                        size += p.events.len();
                        group.push(p);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        write_group(&pool, group).await;
    }
}

async fn write_group(pool: &PgPool, group: Vec<Pending>) {
    // The batches' events end to end, each batch's reply with how many are its own.
    let mut all: Vec<Event> = Vec::with_capacity(group.iter().map(|p| p.events.len()).sum());
    let mut waiting = Vec::with_capacity(group.len());
    for p in group {
        waiting.push((p.reply, p.events.len()));
        all.extend(p.events);
    }
    // Events and the statuses they imply are stored in one transaction.
    let fold = crate::status::fold(&all);
    match reporting::insert_events(pool, &all, &fold).await {
        Ok(new) => {
            let new: std::collections::HashSet<Uuid> = new.into_iter().collect();
            let mut rest = all.as_slice();
            for (reply, n) in waiting {
                let (mine, tail) = rest.split_at(n);
                rest = tail;
                let count = mine.iter().filter(|e| new.contains(&e.event_instance_id)).count();
                let _ = reply.send(Ok(count as u64));
            }
        }
        // One batch's rows may be what the database refused: each alone, so only it fails.
        Err(e) if waiting.len() > 1 && !e.is_unavailable() => {
            let mut events = all.into_iter();
            for (reply, n) in waiting {
                let events = events.by_ref().take(n).collect();
                Box::pin(write_group(pool, vec![Pending { events, reply }])).await;
            }
        }
        Err(e) => {
            let status = grpc_status(&e);
            for (reply, _) in waiting {
                let _ = reply.send(Err(status.clone()));
            }
        }
    }
}

fn computer_id(raw: &str, field: &str) -> Result<String, Status> {
    let id = raw.trim();
    if id.is_empty() || id.len() > 256 {
        return Err(Status::invalid_argument(format!("{field}: must be 1 to 256 characters")));
    }
    Ok(id.to_owned())
}

fn time(t: Option<&wsus_rpc::Timestamp>, field: &str) -> Result<chrono::DateTime<chrono::Utc>, Status> {
    t.and_then(wsus_rpc::datetime).ok_or_else(|| Status::invalid_argument(format!("{field}: missing or out of range")))
}

fn small(v: Option<i32>, field: &str) -> Result<Option<i16>, Status> {
    v.map(|n| i16::try_from(n).map_err(|_| Status::invalid_argument(format!("{field}: {n} is out of range"))))
        .transpose()
}

fn registration(c: ComputerRegistration) -> Result<Registration, Status> {
    Ok(Registration {
        computer_id: computer_id(&c.computer_id, "computer_id")?,
        ip_address: c.ip_address.as_deref().and_then(|ip| ip.parse().ok()),
        os_service_pack_major_number: small(c.os_service_pack_major_number, "os_service_pack_major_number")?,
        os_service_pack_minor_number: small(c.os_service_pack_minor_number, "os_service_pack_minor_number")?,
        suite_mask: small(c.suite_mask, "suite_mask")?,
        old_product_type: small(c.old_product_type, "old_product_type")?,
        bios_release_date: c.bios_release_date.as_ref().and_then(wsus_rpc::datetime),
        registered_at: time(c.registered_at.as_ref(), "registered_at")?,
        dns_name: c.dns_name,
        os_major_version: c.os_major_version,
        os_minor_version: c.os_minor_version,
        os_build_number: c.os_build_number,
        os_locale: c.os_locale,
        os_description: c.os_description,
        new_product_type: c.new_product_type,
        system_metrics: c.system_metrics,
        processor_architecture: c.processor_architecture,
        computer_manufacturer: c.computer_manufacturer,
        computer_model: c.computer_model,
        bios_name: c.bios_name,
        bios_version: c.bios_version,
        firmware_version: c.firmware_version,
        oem: c.oem,
        device_type: c.device_type,
        mobile_operator: c.mobile_operator,
        client_version: c.client_version,
        requested_target_group_names: c.requested_target_group_names,
    })
}

fn event(e: ClientEvent) -> Result<Event, Status> {
    let event_instance_id = Uuid::parse_str(&e.event_instance_id)
        .map_err(|_| Status::invalid_argument(format!("event_instance_id: {:?} is not a GUID", e.event_instance_id)))?;
    let update_id = match e.update_id.as_deref() {
        None => None,
        Some(raw) => {
            let id = Uuid::parse_str(raw)
                .map_err(|_| Status::invalid_argument(format!("update_id: {raw:?} is not a GUID")))?;
            (!id.is_nil()).then_some(id)
        }
    };
    // XML cannot carry other control characters; the store relies on it for its lists.
    for (field, list) in [("replacement_strings", &e.replacement_strings), ("misc_data", &e.misc_data)] {
        if list.iter().any(|s| s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))) {
            return Err(Status::invalid_argument(format!("{field}: holds a control character")));
        }
    }
    Ok(Event {
        event_instance_id,
        time_at_target: time(e.time_at_target.as_ref(), "time_at_target")?,
        computer_id: computer_id(&e.computer_id, "computer_id")?,
        namespace_id: small(Some(e.namespace_id), "namespace_id")?.unwrap_or(1),
        event_id: small(Some(e.event_id), "event_id")?.unwrap_or_default(),
        source_id: small(e.source_id, "source_id")?,
        update_id,
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
}

#[tonic::async_trait]
impl ReportingService for Ingest {
    async fn register_computer(
        &self,
        request: Request<RegisterComputerRequest>,
    ) -> Result<Response<RegisterComputerResponse>, Status> {
        let computer = request.into_inner().computer.ok_or_else(|| Status::invalid_argument("computer: missing"))?;
        let r = registration(computer)?;
        reporting::register_computer(&self.pool, &r).await.map_err(|e| grpc_status(&e))?;
        Ok(Response::new(RegisterComputerResponse {}))
    }

    async fn record_client_syncs(
        &self,
        request: Request<RecordClientSyncsRequest>,
    ) -> Result<Response<RecordClientSyncsResponse>, Status> {
        let syncs = request.into_inner().syncs;
        if syncs.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!("syncs: more than {MAX_BATCH}")));
        }
        let syncs = syncs
            .into_iter()
            .map(|s| {
                Ok(ClientSync {
                    computer_id: computer_id(&s.computer_id, "computer_id")?,
                    synced_at: time(s.synced_at.as_ref(), "synced_at")?,
                    succeeded: s.succeeded,
                    ip_address: s
                        .ip_address
                        .as_deref()
                        .map(|a| {
                            a.parse()
                                .map_err(|_| Status::invalid_argument(format!("ip_address: {a:?} is not an address")))
                        })
                        .transpose()?,
                    requested_target_group_names: s.requested_target_group_names,
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        reporting::record_client_syncs(&self.pool, &syncs).await.map_err(|e| grpc_status(&e))?;
        Ok(Response::new(RecordClientSyncsResponse {}))
    }

    async fn ingest_events(
        &self,
        request: Request<IngestEventsRequest>,
    ) -> Result<Response<IngestEventsResponse>, Status> {
        let events = request.into_inner().events;
        if events.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!("events: more than {MAX_BATCH}")));
        }
        let events = events.into_iter().map(event).collect::<Result<Vec<_>, Status>>()?;
        let accepted = events.len() as u64;
        let new_events = self.writer.write(events).await?;
        self.received.inc_by(accepted);
        self.stored.inc_by(new_events);
        Ok(Response::new(IngestEventsResponse { accepted, new_events }))
    }

    async fn get_rollup_configuration(
        &self,
        _request: Request<GetRollupConfigurationRequest>,
    ) -> Result<Response<RollupConfiguration>, Status> {
        crate::uss_rollup::configuration(&self.pool).await.map(Response::new)
    }

    async fn rollup_downstream_servers(
        &self,
        request: Request<RollupDownstreamServersRequest>,
    ) -> Result<Response<RollupDownstreamServersResponse>, Status> {
        crate::uss_rollup::downstream_servers(&self.pool, request.into_inner()).await?;
        Ok(Response::new(RollupDownstreamServersResponse {}))
    }

    async fn rollup_computers(
        &self,
        request: Request<RollupComputersRequest>,
    ) -> Result<Response<RollupComputersResponse>, Status> {
        let changed = crate::uss_rollup::computers(&self.pool, request.into_inner()).await?;
        Ok(Response::new(RollupComputersResponse { changed }))
    }

    async fn get_out_of_sync_computers(
        &self,
        request: Request<GetOutOfSyncComputersRequest>,
    ) -> Result<Response<GetOutOfSyncComputersResponse>, Status> {
        let computer_ids = crate::uss_rollup::out_of_sync(&self.pool, request.into_inner()).await?;
        Ok(Response::new(GetOutOfSyncComputersResponse { computer_ids }))
    }

    async fn rollup_computer_status(
        &self,
        request: Request<RollupComputerStatusRequest>,
    ) -> Result<Response<RollupComputerStatusResponse>, Status> {
        crate::uss_rollup::computer_status(&self.pool, request.into_inner()).await?;
        Ok(Response::new(RollupComputerStatusResponse { accepted: true }))
    }
}
