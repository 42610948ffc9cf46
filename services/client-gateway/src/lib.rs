//! client-gateway: the HTTP/SOAP front door Windows Update Agent clients (MS-WUSP) and
//! downstream servers (MS-WSUSSS) talk to.

use std::sync::Arc;

use axum::Router;
use wsus_config::GatewayConfig;
use wsus_service::Shell;

mod auth;
mod client;
mod content;
mod reports;
mod rollup;
mod server_sync;
mod soap;
mod state;
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
    pub syncs: reports::SyncRecords,
}

/// Serves until shutdown.
pub async fn serve(config: GatewayConfig, shell: Shell) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let memory = Memory::default();
    let probe = memory.clone();
    shell.add_readiness_check(move || probe.not_loaded());
    let refresher = tokio::spawn(memory.clone().keep_fresh(config.clone(), shell.clone()));
    let reporting = wsus_rpc::reporting_client(&config.reporting_grpc)?;
    let (syncs, flusher) = reports::SyncRecords::start(reporting.clone());
    let gateway =
        Gateway { config, memory, limits: wsus_soap::Limits::default(), pool: shell.pool.clone(), reporting, syncs };
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
    Ok(())
}

/// Every path goes through one dispatcher: IIS answers the SOAP paths in any letter case,
/// so routing matches on the lower-cased path.
pub fn router(gateway: Gateway) -> Router {
    Router::new().fallback(soap::dispatch).with_state(gateway)
}
