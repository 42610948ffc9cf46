//! reporting: takes in what clients report (gRPC ReportingService, from client-gateway)
//! and serves the management REST API under `/api/v1/` and the web console under
//! `/console/`, over HTTPS when configured.

use std::sync::Arc;

use wsus_rpc::reporting::reporting_service_server::ReportingServiceServer;
use wsus_service::Shell;

pub mod admin;
pub mod api;
pub mod console;
mod https;
mod ingest;
pub mod notify;
mod status;
mod uss_rollup;

pub use api::{Api, api_router};
pub use ingest::Ingest;

/// How long a console page waits for sync-worker before it says sync-worker does not answer.
const CONSOLE_SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a publication may take: an installer's upload, its Cabinet, its signature.
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Serves until shutdown.
pub async fn serve(config: wsus_config::ReportingConfig, shell: Shell) -> anyhow::Result<()> {
    // Bound first: before this process's own connections take ports (50051 lies in
    // Linux's ephemeral range).
    let incoming = shell.bind_grpc(config.grpc_addr).await?;
    let sync = wsus_rpc::sync_client(&config.sync_grpc)?;
    let sessions = Arc::new(console::Sessions::new(None, &config.api_tokens));
    let keys = tokio::spawn(load_session_keys(config.cookie_keys.clone(), shell.pool.clone(), sessions.clone()));
    let counts = Arc::new(console::counts::CountsCache::default());
    let counting = tokio::spawn(counts.clone().keep_fresh(shell.pool.clone()));
    let console = console::router(console::Console {
        pool: shell.pool.clone(),
        sessions,
        counts,
        // A page waits for sync-worker less long than an API call does.
        admin: admin::Admin::new(
            shell.pool.clone(),
            wsus_rpc::sync_client_within(&config.sync_grpc, CONSOLE_SYNC_TIMEOUT)?,
        )
        .with_mail(config.smtp.is_some()),
    });
    let publishing = wsus_rpc::sync_client_within(&config.sync_grpc, PUBLISH_TIMEOUT)?;
    let api = Api::new(shell.pool.clone(), sync, &config.api_tokens)
        .with_publishing(publishing)
        .with_mail(config.smtp.is_some());
    let api = api_router(Arc::new(api)).merge(console);
    let (http, https) = match &config.tls {
        None => (shell.serve_http(api).await?, None),
        Some(tls) => {
            let https = shell.serve_https(api, tls.addr, &tls.cert, &tls.key).await?;
            (shell.serve_http(https::plain_api_refusal()).await?, Some(https))
        }
    };
    let partitions =
        tokio::spawn(keep_event_partitions(shell.pool.clone(), shell.startup.clone(), shell.shutdown.clone()));
    let retry = wsus_store::notifications::Retry {
        first_pause: chrono::Duration::seconds(config.notify_retry_seconds as i64),
        max_attempts: config.notify_max_attempts as i32,
    };
    let mailer = config.smtp.as_ref().map(notify::Mailer::new).transpose()?;
    let notifying = tokio::spawn(notify::run(shell.pool.clone(), retry, mailer, shell.shutdown.clone()));
    let watching = tokio::spawn(notify::watch::run(
        shell.pool.clone(),
        std::time::Duration::from_secs(config.notify_watch_seconds as u64),
        shell.shutdown.clone(),
    ));
    let stop = shell.shutdown.clone();
    tonic::transport::Server::builder()
        .layer(wsus_service::GrpcMetricsLayer::new(shell.metrics.clone(), &["wsus.reporting.v1.ReportingService"]))
        .trace_fn(wsus_rpc::server_span)
        .add_service(
            ReportingServiceServer::new(Ingest::new(shell.pool.clone()).counting(&shell.metrics))
                // A RollupComputerStatus at the announced batch, forwarded whole (tonic's
                // default of 4 MiB holds about 70,000 statuses).
                .max_decoding_message_size(64 * 1024 * 1024),
        )
        .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
        .await?;
    partitions.abort();
    notifying.abort();
    watching.abort();
    keys.abort();
    counting.abort();
    let _ = http.await;
    if let Some(https) = https {
        let _ = https.await;
    }
    Ok(())
}

/// The console's session keys: at once when configured, else (the key the gateways share,
/// kept in the database) as soon as the database answers.
async fn load_session_keys(
    configured: Vec<wsus_config::CookieKey>,
    pool: wsus_store::PgPool,
    sessions: Arc<console::Sessions>,
) {
    loop {
        match console::session::session_keys(&configured, &pool).await {
            Ok(keys) => return sessions.set_keys(keys),
            Err(e) => tracing::debug!(error = %e, "console: cannot load the session keys yet"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// Creates the daily partitions of raw events a week ahead, at start and every six hours,
/// so events land in dated partitions that cleanup drops whole; and builds the history
/// index on the partitions that lack it (after an upgrade, those of the past days). Starts
/// once the migrations are applied (the index is declared by one).
async fn keep_event_partitions(
    pool: wsus_store::PgPool,
    startup: wsus_service::Startup,
    stop: tokio_util::sync::CancellationToken,
) {
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = startup.wait() => {}
    }
    loop {
        if let Err(e) = wsus_store::cleanup::ensure_event_partitions(&pool, 7).await {
            tracing::debug!(error = %e, "cannot create event partitions yet");
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => continue,
            }
        }
        match wsus_store::cleanup::build_outcome_indexes(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(partitions = n, "built the computer history index on event partitions"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the computer history index yet; next try in ten minutes");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => continue,
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(6 * 3600)) => {}
        }
    }
}
