//! client-gateway: the HTTP/SOAP front door Windows Update Agent clients (MS-WUSP) and
//! downstream servers (MS-WSUSSS) talk to.

use std::sync::Arc;

use axum::Router;
use wsus_config::GatewayConfig;
use wsus_service::Shell;

/// How long reporting may take over a rollup batch from a downstream server (a status
/// batch at the announced size is tens of thousands of rows).
const ROLLUP_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

mod admission;
mod auth;
mod client;
mod client_address;
mod content;
mod fragments;
mod packed_blocks;
mod reports;
mod seen_requests;
mod soap;
mod state;
mod uss;
mod wsdl;

pub use state::Memory;

/// Shared by every request handler.
#[derive(Clone)]
pub struct Gateway {
    pub config: Arc<GatewayConfig>,
    pub memory: Memory,
    pub limits: wsus_soap::Limits,
    pub pool: wsus_store::PgPool,
    pub reporting: wsus_rpc::ReportingClient,
    /// Reporting for the rollup of downstream servers, whose batches take longer.
    pub reporting_rollup: wsus_rpc::ReportingClient,
    /// Where `/Content/` files are read from.
    pub content: wsus_content::Store,
    pub syncs: reports::SyncRecords,
    pub metrics: Arc<wsus_service::Metrics>,
    pub fragments: Arc<fragments::FragmentCache>,
    /// SyncUpdates requests already seen, by their bytes around the cookie.
    pub seen_requests: Arc<seen_requests::SeenRequests>,
    /// Xpress blocks compressed for earlier answers.
    pub packed_blocks: Arc<packed_blocks::PackedBlocks>,
    /// Admission of every SOAP request but event reports.
    pub admission: Arc<admission::Admission>,
    /// Admission of event reports (ReportEventBatch).
    pub report_admission: Arc<admission::Admission>,
    /// Admission of downstream servers (server-sync and rollup).
    pub server_admission: Arc<admission::Admission>,
}

/// Serves until shutdown.
pub async fn serve(config: GatewayConfig, shell: Shell) -> anyhow::Result<()> {
    let config_bytes = config.fragment_cache_bytes;
    let config = Arc::new(config);
    let memory = Memory::default();
    let probe = memory.clone();
    shell.add_readiness_check(move || probe.not_loaded());
    let refresher = tokio::spawn(memory.clone().keep_fresh(config.clone(), shell.clone()));
    let reporting = wsus_rpc::reporting_client(&config.reporting_grpc)?;
    let content = wsus_content::Store::open(&config.content_store, &config.content_dir)?;
    let reporting_rollup = wsus_rpc::reporting_client_within(&config.reporting_grpc, ROLLUP_CALL_TIMEOUT)?;
    let (syncs, flusher) = reports::SyncRecords::start(reporting.clone());
    let limits = wsus_soap::Limits {
        max_body_bytes: config.soap_max_body_bytes,
        max_depth: config.soap_max_depth,
        max_elements: config.soap_max_elements,
    };
    let admission_metrics = admission::AdmissionMetrics::register(&shell.metrics);
    let scan_limits = admission::Limits {
        max_inflight: config.soap_max_inflight,
        max_queued: config.soap_max_queued,
        wait: config.soap_queue_wait,
    };
    let report_limits = admission::Limits {
        max_inflight: config.soap_max_inflight.saturating_mul(admission::REPORT_FACTOR),
        max_queued: config.soap_max_queued.saturating_mul(admission::REPORT_FACTOR),
        ..scan_limits
    };
    let admission = Arc::new(admission::Admission::new("scans", scan_limits, &admission_metrics));
    let report_admission = Arc::new(admission::Admission::new("reports", report_limits, &admission_metrics));
    let server_limits = admission::Limits {
        max_inflight: admission::SERVER_SLOTS,
        max_queued: admission::SERVER_QUEUE,
        wait: admission::SERVER_WAIT,
    };
    let server_admission = Arc::new(admission::Admission::new("servers", server_limits, &admission_metrics));
    let gateway = Gateway {
        config,
        memory,
        limits,
        pool: shell.pool.clone(),
        reporting,
        reporting_rollup,
        content,
        syncs,
        metrics: shell.metrics.clone(),
        fragments: Arc::new(fragments::FragmentCache::new(config_bytes)),
        seen_requests: Arc::new(seen_requests::SeenRequests::new(seen_requests::DEFAULT_BOUND_BYTES)),
        packed_blocks: Arc::new(packed_blocks::PackedBlocks::new(packed_blocks::DEFAULT_BOUND_BYTES)),
        admission,
        report_admission,
        server_admission,
    };
    let gauges = tokio::spawn(catalog_gauges(gateway.clone(), shell.metrics.clone()));
    let https = match &gateway.config.tls {
        Some(tls) => Some(shell.serve_https(router(gateway.clone()), tls.addr, &tls.cert, &tls.key).await?),
        None => None,
    };
    let server = shell.serve_http(router(gateway)).await?;
    let _ = server.await;
    if let Some(https) = https {
        let _ = https.await;
    }
    refresher.abort();
    flusher.abort();
    gauges.abort();
    Ok(())
}

/// Keeps the catalog gauges (revisions served, catalog version, bytes held) current.
async fn catalog_gauges(gateway: Gateway, metrics: Arc<wsus_service::Metrics>) {
    let (memory, fragments) = (&gateway.memory, &gateway.fragments);
    use wsus_service::Gauge;
    let (revisions, version, bytes) = (Gauge::<i64>::default(), Gauge::<i64>::default(), Gauge::<i64>::default());
    metrics.register("catalog_revisions", "Revisions in the in-memory catalog", revisions.clone());
    metrics.register("catalog_version", "Catalog version served", version.clone());
    metrics.register("catalog_cache_bytes", "Approximate bytes the in-memory catalog holds", bytes.clone());
    let fragment_bytes = Gauge::<i64>::default();
    metrics.register(
        "fragment_cache_bytes",
        "Bytes of the fragment cache (bounded by WSUS_FRAGMENT_CACHE_BYTES)",
        fragment_bytes.clone(),
    );
    let seen_bytes = Gauge::<i64>::default();
    metrics.register(
        "seen_requests_bytes",
        "Approximate bytes of the SyncUpdates requests kept to be recognised again",
        seen_bytes.clone(),
    );
    loop {
        if let Some(c) = memory.catalog.load_full() {
            revisions.set(c.revision_count() as i64);
            version.set(c.version);
            bytes.set(c.approx_bytes() as i64);
        }
        fragment_bytes.set(fragments.bytes() as i64);
        seen_bytes.set(gateway.seen_requests.bytes() as i64);
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    }
}

/// Every path goes through one dispatcher: IIS answers the SOAP paths in any letter case,
/// so routing matches on the lower-cased path.
pub fn router(gateway: Gateway) -> Router {
    Router::new().fallback(soap::dispatch).with_state(gateway)
}

/// Core fragments of Windows updates are hundreds of kilobytes each. glibc raises its
/// mmap threshold each time such a block is freed, after which they are carved from the
/// heap arenas, and what the fragment cache evicts stays resident as fragmentation (seen:
/// 150 MiB above a 256 MiB bound). A fixed threshold keeps every block of 128 KiB or more
/// in a mapping of its own, returned to the system when freed, so the cache's bound sets
/// the memory. Fixing it also fixes the trim threshold, whose default (128 KiB) would
/// hand the heap's top back to the system after nearly every request: it is raised so
/// the small allocations of requests reuse memory. Call before any thread starts.
pub fn keep_large_allocations_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets allocator parameters; no allocation is in flight on another thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 * 1024 * 1024);
    }
}
