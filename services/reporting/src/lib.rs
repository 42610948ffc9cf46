//! reporting: takes in what clients report (gRPC ReportingService, from client-gateway)
//! and serves the management REST API under `/api/v1/`.

use std::sync::Arc;

use wsus_config::ReportingConfig;
use wsus_rpc::reporting::reporting_service_server::ReportingServiceServer;
use wsus_service::Shell;

pub mod api;
mod ingest;
mod rollup;
mod status;

pub use api::{Api, api_router};
pub use ingest::Ingest;

/// Serves until shutdown.
pub async fn serve(config: ReportingConfig, shell: Shell) -> anyhow::Result<()> {
    let sync = wsus_rpc::sync_client(&config.sync_grpc)?;
    let api = Api::new(shell.pool.clone(), sync, &config.api_tokens);
    let http = shell.serve_http(api_router(Arc::new(api))).await?;
    let incoming = shell.bind_grpc(config.grpc_addr).await?;
    let stop = shell.shutdown.clone();
    tonic::transport::Server::builder()
        .trace_fn(wsus_rpc::server_span)
        .add_service(ReportingServiceServer::new(Ingest::new(shell.pool.clone())))
        .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
        .await?;
    let _ = http.await;
    Ok(())
}
