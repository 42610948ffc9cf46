//! client-gateway: the HTTP/SOAP front door Windows Update Agent clients (MS-WUSP) and
//! downstream servers (MS-WSUSSS) talk to.

use std::sync::Arc;

use axum::Router;
use wsus_config::GatewayConfig;
use wsus_service::Shell;

mod client_config;
mod soap;

pub use client_config::ClientConfigCache;

/// Shared by every request handler.
#[derive(Clone)]
pub struct Gateway {
    pub config: Arc<GatewayConfig>,
    pub client_config: ClientConfigCache,
    pub limits: wsus_soap::Limits,
}

/// Serves until shutdown.
pub async fn serve(config: GatewayConfig, shell: Shell) -> anyhow::Result<()> {
    let client_config = ClientConfigCache::default();
    let refresher = tokio::spawn(client_config.clone().keep_fresh(shell.clone()));
    let gateway = Gateway { config: Arc::new(config), client_config, limits: wsus_soap::Limits::default() };
    let server = shell.serve_http(router(gateway)).await?;
    let _ = server.await;
    refresher.abort();
    Ok(())
}

/// Every path goes through one dispatcher: IIS answers the SOAP paths in any letter case,
/// so routing matches on the lower-cased path.
pub fn router(gateway: Gateway) -> Router {
    Router::new().fallback(soap::dispatch).with_state(gateway)
}
