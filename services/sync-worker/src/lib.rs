//! sync-worker: this server as a downstream server (MS-WSUSSS) of an upstream one, and
//! the home of long-running jobs. Serves the SyncService over gRPC.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use wsus_config::SyncWorkerConfig;
use wsus_rpc::sync::sync_service_server::{SyncService, SyncServiceServer};
use wsus_rpc::sync::{
    DeletePublishedResponse, GenerateSigningCertificateRequest, GetSigningCertificateRequest, GetSyncStatusRequest,
    ListSyncHistoryRequest, PublishRequest, PublishResponse, PublishedPackageRequest, SigningCertificate,
    StartCleanupRequest, StartCleanupResponse, StartSyncRequest, StartSyncResponse, SyncHistoryPage, SyncRun,
    SyncStatus, WatchSyncRequest, publish_request,
};
use wsus_service::Shell;
use wsus_service::edge::grpc_status;
use wsus_store::run::{RunResult, Trigger};
use wsus_store::sync_history::{self, SyncRecord};
use wsus_store::{PgPool, StoreError};

pub mod cleanup;
pub mod dss;
pub mod lease;
pub mod publishing;
pub mod schedule;
pub mod transfer;

/// sync-worker's own commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Import an export file, a directory of update documents, one document, or a saved
    /// GetUpdateData response.
    Import {
        path: std::path::PathBuf,
        /// Print one JSON summary line.
        #[arg(long)]
        json: bool,
    },
    /// Export the catalog, files list, groups, approvals, declines and EULAs to one tar file.
    Export { file: std::path::PathBuf },
    /// Roll up this server's status, its computers and those of the servers below it to
    /// WSUS_UPSTREAM_URL (MS-WSUSSS reporting rollup).
    Rollup {
        /// Run one complete rollup and exit (0 on success).
        #[arg(long)]
        once: bool,
        /// Print one JSON summary line.
        #[arg(long)]
        json: bool,
    },
    /// Decline expired and superseded updates no computer needs, delete obsolete revisions
    /// and unreferenced content, forget silent computers, purge history and old events.
    Cleanup {
        /// Run one complete cleanup and exit (0 on success).
        #[arg(long)]
        once: bool,
        /// Print one JSON summary line.
        #[arg(long)]
        json: bool,
    },
    /// Synchronise from WSUS_UPSTREAM_URL: metadata, then content.
    Sync {
        /// Run one complete sync and exit (0 on success).
        #[arg(long)]
        once: bool,
        /// Print one JSON summary line.
        #[arg(long)]
        json: bool,
    },
}

/// What a sync needs, from the configuration and this server's identity.
fn sync_context(
    config: &SyncWorkerConfig,
    content: &wsus_content::Store,
    pool: PgPool,
    identity: &wsus_store::identity::Identity,
    lease: Option<Arc<lease::LeaseLock>>,
) -> dss::sync::SyncContext {
    dss::sync::SyncContext {
        pool,
        upstream_url: config.upstream_url.clone(),
        content: content.clone(),
        me: dss::Me { server_id: identity.server_id, fqdn: identity.fqdn.clone() },
        replica: config.replica,
        transport: dss::Transport { proxy: config.upstream_proxy.clone(), ca_file: config.upstream_ca_file.clone() },
        lease,
    }
}

/// Runs `attempt` again while another replica's run holds its lock (for up to an hour),
/// as a command run by hand should rather wait than fail.
async fn when_free<T, F, Fut>(mut attempt: F) -> Result<T, dss::SyncError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, dss::SyncError>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(3600);
    loop {
        match attempt().await {
            Err(dss::SyncError::Busy(what)) if std::time::Instant::now() < deadline => {
                tracing::info!(what, "another run holds it; waiting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// Runs one of sync-worker's own commands.
pub async fn run(config: SyncWorkerConfig, command: Command) -> anyhow::Result<()> {
    let pool = wsus_service::command_pool(&config.common).await?;
    match command {
        Command::Import { path, json } => {
            let summary = transfer::import(&pool, &path).await?;
            // What arrived meets the automatic approval rules, and approved updates'
            // new revisions are approved in their stead, as after a sync (a replica takes
            // its approvals from its upstream instead).
            if !config.replica {
                let applied = wsus_store::rules::apply(&pool, None, false).await?;
                tracing::info!(approved = applied.approved, followed = applied.revisions_followed, "rules applied");
            }
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!(
                    "{} revisions: {} new, {} updated, {} unchanged; {} new files; {} rejected",
                    summary.revisions, summary.new, summary.updated, summary.unchanged, summary.files, summary.rejected
                );
            }
            if summary.rejected > 0 {
                anyhow::bail!("{} documents were rejected", summary.rejected);
            }
        }
        Command::Export { file } => {
            let manifest = transfer::export(&pool, &file).await?;
            println!("exported {}: {:?}", file.display(), manifest.counts);
        }
        Command::Rollup { once, json } => {
            if !once {
                anyhow::bail!("`rollup` runs one rollup: pass --once (the service rolls up after each sync)");
            }
            let identity = wsus_service::command_identity(&pool, &config.common).await?;
            let ctx = sync_context(
                &config,
                &content_store(&config)?,
                pool.clone(),
                &identity,
                lease::LeaseLock::in_cluster().map(Arc::new),
            );
            let outcome = when_free(|| dss::rollup::rollup_once(&ctx)).await?;
            if json {
                println!("{}", serde_json::to_string(&outcome)?);
            } else {
                println!(
                    "rollup{}: {} servers, {} computers ({} with details), {} computer statuses",
                    if outcome.full { " (full)" } else { "" },
                    outcome.servers,
                    outcome.computers,
                    outcome.computers_with_details,
                    outcome.statuses
                );
            }
        }
        Command::Cleanup { once, json } => {
            if !once {
                anyhow::bail!("`cleanup` runs one cleanup: pass --once (the service cleans up every day)");
            }
            let content = content_store(&config)?;
            let outcome = when_free(|| cleanup::run_once(&pool, &content, Trigger::Cli)).await?;
            if json {
                println!("{}", serde_json::to_string(&outcome)?);
            } else {
                let done: Vec<String> = outcome.counts.iter().map(|(job, n)| format!("{job} {n}")).collect();
                println!("cleanup {}: {}", outcome.run_id, done.join(", "));
            }
        }
        Command::Sync { once, json } => {
            if !once {
                anyhow::bail!("`sync` runs one sync: pass --once (the service syncs on its schedule)");
            }
            let identity = wsus_service::command_identity(&pool, &config.common).await?;
            let ctx = sync_context(
                &config,
                &content_store(&config)?,
                pool.clone(),
                &identity,
                lease::LeaseLock::in_cluster().map(Arc::new),
            );
            let outcome = when_free(|| dss::sync::sync_once(&ctx, Trigger::Cli)).await?;
            if json {
                println!("{}", serde_json::to_string(&outcome)?);
            } else {
                println!(
                    "sync {}: {} new and {} updated revisions; {} files queued, {} downloaded, {} failed ({} bytes)",
                    outcome.sync_id,
                    outcome.revisions_new,
                    outcome.revisions_updated,
                    outcome.files_queued,
                    outcome.files_downloaded,
                    outcome.files_failed,
                    outcome.bytes_received
                );
            }
            if outcome.files_failed > 0 {
                anyhow::bail!("{} files could not be downloaded (they stay queued)", outcome.files_failed);
            }
        }
    }
    pool.close().await;
    Ok(())
}

/// The content store the configuration names.
fn content_store(config: &SyncWorkerConfig) -> anyhow::Result<wsus_content::Store> {
    Ok(wsus_content::Store::open(&config.content_store, &config.content_dir)?)
}

/// Serves until shutdown.
pub async fn serve(config: SyncWorkerConfig, shell: Shell) -> anyhow::Result<()> {
    // Bound first: before this process's own connections take ports (50052 lies in
    // Linux's ephemeral range).
    let incoming = shell.bind_grpc(config.grpc_addr).await?;
    let content = content_store(&config)?;
    let service = Sync::new(shell.pool.clone(), config.clone());
    let lease_on_exit = service.lease.clone();
    let http = shell.serve_http(axum::Router::new()).await?;
    publishing::Publisher::sweep(&config.content_dir);
    let certificate = tokio::spawn(publishing::watch_certificate(
        publishing::Publisher::new(shell.pool.clone(), content.clone(), config.signing.clone(), &config.content_dir),
        shell.shutdown.clone(),
    ));
    // Cleanup runs whether or not there is an upstream.
    let cleanups = tokio::spawn(schedule::cleanups(shell.pool.clone(), content, shell.shutdown.clone()));
    let scheduler = {
        let (service, stop) = (service.clone(), shell.shutdown.clone());
        tokio::spawn(async move {
            // The schedule needs the identity; it exists once start-up is done.
            let ctx = loop {
                match service.context().await {
                    Ok(ctx) => break ctx,
                    Err(s) if s.code() == tonic::Code::FailedPrecondition => return,
                    Err(_) => {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        }
                    }
                }
            };
            let drain = tokio::spawn(schedule::drain_downloads(ctx.clone(), Duration::from_secs(5), stop.clone()));
            let rollups = tokio::spawn(schedule::rollups(ctx.clone(), stop.clone()));
            schedule::run(ctx, stop).await;
            let _ = drain.await;
            let _ = rollups.await;
        })
    };
    let stop = shell.shutdown.clone();
    let gauges = tokio::spawn(schedule::sync_gauges(shell.pool.clone(), shell.metrics.clone()));
    tonic::transport::Server::builder()
        .layer(wsus_service::GrpcMetricsLayer::new(shell.metrics.clone(), &["wsus.sync.v1.SyncService"]))
        .trace_fn(wsus_rpc::server_span)
        .add_service(SyncServiceServer::new(service))
        .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
        .await?;
    scheduler.abort();
    cleanups.abort();
    certificate.abort();
    gauges.abort();
    // A sync cut short by shutdown leaves the Lease: give it back rather than wait out its expiry.
    if let Some(lease) = &lease_on_exit
        && let Err(e) = lease.release().await
    {
        tracing::warn!(error = %e, "cannot give the sync Lease back on shutdown");
    }
    let _ = http.await;
    Ok(())
}

#[derive(Clone)]
pub struct Sync {
    pool: PgPool,
    config: Arc<SyncWorkerConfig>,
    /// The content store, or why it cannot be opened (each run then fails saying so).
    content: Result<wsus_content::Store, String>,
    lease: Option<Arc<lease::LeaseLock>>,
}

/// What the client is told of a publication.
fn publish_response(p: publishing::Published) -> PublishResponse {
    PublishResponse {
        update_id: p.update_id.to_string(),
        revision_number: p.revision_number,
        title: p.title,
        file_sha1: p.file.as_ref().map(|f| hex::encode_upper(f.sha1)).unwrap_or_default(),
        file_size: p.file.as_ref().map_or(0, |f| f.size),
        expired: p.expired,
    }
}

fn certificate_of(
    c: &wsus_signing::SigningCertificate,
    source: publishing::CertificateSource,
) -> Result<SigningCertificate, Status> {
    Ok(SigningCertificate {
        subject: c.subject(),
        thumbprint: c.thumbprint(),
        not_before: Some(wsus_rpc::timestamp(c.not_before())),
        not_after: Some(wsus_rpc::timestamp(c.not_after())),
        source: source.as_str().to_owned(),
        certificate_pem: c.certificate_pem().map_err(|e| grpc_status(&publishing::PublishingError::from(e)))?,
    })
}

fn update_id_of(text: &str) -> Result<uuid::Uuid, Status> {
    uuid::Uuid::parse_str(text.trim()).map_err(|_| Status::invalid_argument(format!("{text:?} is not an update id")))
}

fn run_of(r: SyncRecord) -> SyncRun {
    let ts = wsus_rpc::timestamp;
    SyncRun {
        sync_id: r.sync_id,
        upstream_url: r.upstream_url,
        trigger: r.trigger.as_str().to_owned(),
        started_at: Some(ts(r.started_at)),
        finished_at: r.finished_at.map(ts),
        result: r.result.as_str().to_owned(),
        phase: r.phase.unwrap_or_default(),
        done: r.done,
        total: r.total,
        error: r.error.unwrap_or_default(),
        revisions_new: r.revisions_new,
        revisions_updated: r.revisions_updated,
        deployments_changed: r.deployments_changed,
        files_queued: r.files_queued,
        bytes_received: r.bytes_received,
        revisions_quarantined: r.revisions_quarantined,
    }
}

impl Sync {
    /// In a cluster, syncs take the Lease ([`lease::LeaseLock::in_cluster`]).
    pub fn new(pool: PgPool, config: SyncWorkerConfig) -> Self {
        Self::with_lease(pool, config, lease::LeaseLock::in_cluster().map(Arc::new))
    }

    pub fn with_lease(pool: PgPool, config: SyncWorkerConfig, lease: Option<Arc<lease::LeaseLock>>) -> Self {
        let content = content_store(&config).map_err(|e| e.to_string());
        Self { pool, config: Arc::new(config), content, lease }
    }

    fn publisher(&self) -> Result<publishing::Publisher, Status> {
        let content = self.content.as_ref().map_err(|e| Status::failed_precondition(e.clone()))?;
        Ok(publishing::Publisher::new(
            self.pool.clone(),
            content.clone(),
            self.config.signing.clone(),
            &self.config.content_dir,
        ))
    }

    async fn context(&self) -> Result<dss::sync::SyncContext, Status> {
        if self.config.upstream_url.is_none() {
            return Err(grpc_status(&dss::SyncError::NoUpstream));
        }
        let me = wsus_store::identity::current(&self.pool)
            .await
            .map_err(|e| grpc_status(&e))?
            .ok_or_else(|| Status::unavailable("starting: the server identity is not created yet"))?;
        let content = self.content.as_ref().map_err(|e| Status::failed_precondition(e.clone()))?;
        Ok(sync_context(&self.config, content, self.pool.clone(), &me, self.lease.clone()))
    }

    async fn status(&self) -> Result<SyncStatus, StoreError> {
        let latest = sync_history::latest(&self.pool).await?;
        let (running, last) = match latest {
            Some(r) if r.result == RunResult::Running => (Some(r), sync_history::latest_finished(&self.pool).await?),
            other => (None, other),
        };
        Ok(SyncStatus {
            upstream_url: self.config.upstream_url.clone().unwrap_or_default(),
            replica: self.config.replica,
            running: running.map(run_of),
            last: last.map(run_of),
        })
    }
}

type StatusStream = Pin<Box<dyn Stream<Item = Result<SyncStatus, Status>> + Send>>;

#[tonic::async_trait]
impl SyncService for Sync {
    async fn start_sync(&self, request: Request<StartSyncRequest>) -> Result<Response<StartSyncResponse>, Status> {
        let trigger = match request.into_inner().trigger.as_str() {
            "" | "manual" => Trigger::Manual,
            "schedule" => Trigger::Schedule,
            other => return Err(Status::invalid_argument(format!("trigger {other:?} is not manual or schedule"))),
        };
        let ctx = self.context().await?;
        let started = dss::sync::begin(&ctx, trigger).await.map_err(|e| grpc_status(&e))?;
        let sync_id = started.sync_id;
        tokio::spawn(async move {
            let _ = started.run(&ctx).await;
        });
        Ok(Response::new(StartSyncResponse { sync_id }))
    }

    async fn get_sync_status(&self, _request: Request<GetSyncStatusRequest>) -> Result<Response<SyncStatus>, Status> {
        self.status().await.map(Response::new).map_err(|e| grpc_status(&e))
    }

    type WatchSyncStream = StatusStream;

    async fn watch_sync(&self, _request: Request<WatchSyncRequest>) -> Result<Response<StatusStream>, Status> {
        let first = self.status().await.map_err(|e| grpc_status(&e))?;
        let this = self.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut last = first;
            if tx.send(Ok(last.clone())).await.is_err() {
                return;
            }
            // Progress lives in sync_history (any replica may run the sync): poll it.
            while last.running.is_some() {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let next = match this.status().await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(grpc_status(&e))).await;
                        return;
                    }
                };
                if next != last {
                    if tx.send(Ok(next.clone())).await.is_err() {
                        return;
                    }
                    last = next;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn list_sync_history(
        &self,
        request: Request<ListSyncHistoryRequest>,
    ) -> Result<Response<SyncHistoryPage>, Status> {
        let r = request.into_inner();
        let limit = match r.limit {
            0 => 100,
            n @ 1..=1000 => i64::from(n),
            n => return Err(Status::invalid_argument(format!("limit {n} is not within 1..1000"))),
        };
        let before = (r.before_sync_id > 0).then_some(r.before_sync_id);
        let (runs, next) = sync_history::page(&self.pool, before, limit).await.map_err(|e| grpc_status(&e))?;
        Ok(Response::new(SyncHistoryPage {
            runs: runs.into_iter().map(run_of).collect(),
            next_before_sync_id: next.unwrap_or(0),
        }))
    }

    async fn start_cleanup(
        &self,
        _request: Request<StartCleanupRequest>,
    ) -> Result<Response<StartCleanupResponse>, Status> {
        // Before the run's lock is taken: a store that cannot be opened leaves nothing held.
        let content = self.content.clone().map_err(Status::failed_precondition)?;
        let started = cleanup::begin(&self.pool, Trigger::Manual).await.map_err(|e| grpc_status(&e))?;
        let run_id = started.run_id;
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Err(e) = started.run(&pool, &content).await {
                tracing::warn!(error = %e, "cleanup failed");
            }
        });
        Ok(Response::new(StartCleanupResponse { run_id }))
    }

    async fn publish(
        &self,
        request: Request<tonic::Streaming<PublishRequest>>,
    ) -> Result<Response<PublishResponse>, Status> {
        use tokio::io::AsyncWriteExt as _;
        let publisher = self.publisher()?;
        let mut parts = request.into_inner();
        let Some(publish_request::Part::Header(header)) = parts.message().await?.and_then(|m| m.part) else {
            return Err(Status::invalid_argument("the package definition comes first"));
        };
        // A definition that cannot be published is refused before the installer is received.
        wsus_publishing::parse(&header.definition).map_err(|e| grpc_status(&publishing::PublishingError::from(e)))?;
        let work = publisher.work_dir().map_err(|e| grpc_status(&publishing::PublishingError::from(e)))?;
        let path = work.0.join("installer");
        let io = |e: std::io::Error| grpc_status(&publishing::PublishingError::from(e));
        let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
        let mut received = 0u64;
        let mut ended = false;
        while let Some(message) = parts.message().await? {
            let bytes = match message.part {
                Some(publish_request::Part::InstallerChunk(bytes)) if !ended => bytes,
                Some(publish_request::Part::End(end)) if !ended && end.installer_size == received => {
                    ended = true;
                    continue;
                }
                Some(publish_request::Part::End(end)) if !ended => {
                    return Err(Status::invalid_argument(format!(
                        "{received} installer bytes arrived; {} were sent",
                        end.installer_size
                    )));
                }
                _ => {
                    return Err(Status::invalid_argument(
                        "one package definition, the installer's bytes, then the end",
                    ));
                }
            };
            received += bytes.len() as u64;
            if received > publishing::MAX_INSTALLER {
                return Err(Status::invalid_argument(format!(
                    "the installer is over {} bytes, more than a Cabinet holds",
                    publishing::MAX_INSTALLER
                )));
            }
            file.write_all(&bytes).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        drop(file);
        if !ended {
            return Err(Status::invalid_argument("the upload was cut off: nothing is published"));
        }
        let name = match header.installer_name.trim() {
            "" if received > 0 => return Err(Status::invalid_argument("installer bytes without an installer name")),
            "" => None,
            name => Some(name.to_owned()),
        };
        let by = Some(header.by).filter(|b| !b.is_empty());
        // Once the upload is whole, the publication runs to its end on its own: a caller
        // that goes away now does not leave it half done.
        let publication = tokio::spawn(async move {
            let _work = work;
            let installer = name.as_deref().map(|n| (n, path.as_path()));
            publisher.publish(&header.definition, installer, by.as_deref()).await
        });
        let published = publication
            .await
            .map_err(|e| Status::internal(format!("the publication stopped: {e}")))?
            .map_err(|e| grpc_status(&e))?;
        Ok(Response::new(publish_response(published)))
    }

    async fn expire_published(
        &self,
        request: Request<PublishedPackageRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let r = request.into_inner();
        let by = Some(r.by.as_str()).filter(|b| !b.is_empty());
        let published = self.publisher()?.expire(update_id_of(&r.update_id)?, by).await.map_err(|e| grpc_status(&e))?;
        Ok(Response::new(publish_response(published)))
    }

    async fn delete_published(
        &self,
        request: Request<PublishedPackageRequest>,
    ) -> Result<Response<DeletePublishedResponse>, Status> {
        let id = update_id_of(&request.into_inner().update_id)?;
        let revisions_deleted = self.publisher()?.delete(id).await.map_err(|e| grpc_status(&e))?;
        Ok(Response::new(DeletePublishedResponse { revisions_deleted }))
    }

    async fn get_signing_certificate(
        &self,
        _request: Request<GetSigningCertificateRequest>,
    ) -> Result<Response<SigningCertificate>, Status> {
        let (certificate, source) = self
            .publisher()?
            .certificate()
            .await
            .map_err(|e| grpc_status(&e))?
            .ok_or_else(|| Status::not_found("no signing certificate: configure one or generate one"))?;
        Ok(Response::new(certificate_of(&certificate, source)?))
    }

    async fn generate_signing_certificate(
        &self,
        request: Request<GenerateSigningCertificateRequest>,
    ) -> Result<Response<SigningCertificate>, Status> {
        let r = request.into_inner();
        let generated =
            self.publisher()?.generate_certificate(&r.common_name, r.valid_days).await.map_err(|e| grpc_status(&e))?;
        Ok(Response::new(certificate_of(&generated, publishing::CertificateSource::Generated)?))
    }
}
