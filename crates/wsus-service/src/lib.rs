//! The shell every service binary shares: command line (`serve` by default, `migrate`),
//! configuration errors that name the variable, JSON logs and traces, a database pool
//! that survives the database going away, start-up migration and identity, `/healthz`,
//! `/readyz`, `/metrics`, and graceful shutdown on SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use wsus_config::{CommonConfig, ConfigError, Vars};
use wsus_store::PgPool;
use wsus_store::identity::{self, Identity};
use wsus_store::settings::Seed;

pub mod edge;
mod health;
mod metrics;
pub mod tls;

pub use health::health_router;
pub use metrics::{GrpcMetricsLayer, Metrics, RouteLabel};
/// Metric types services register their own metrics with.
pub use prometheus_client::metrics::{counter::Counter, gauge::Gauge};

#[derive(Debug, Parser)]
struct Cli<X: Subcommand> {
    #[command(subcommand)]
    command: Option<Command<X>>,
}

#[derive(Debug, Subcommand)]
enum Command<X: Subcommand> {
    /// Serve (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    #[command(flatten)]
    Extra(X),
}

/// For binaries with no commands beyond `serve` and `migrate`.
#[derive(Debug, Subcommand)]
pub enum NoCommands {}

/// Runs a service binary: parses the command line and the environment, then serves or
/// migrates. `serve` returns once `shell.shutdown` has fired and its servers have drained.
pub fn main<C, F, Fut>(
    name: &'static str,
    read_config: fn(&Vars) -> Result<C, ConfigError>,
    common: fn(&C) -> &CommonConfig,
    serve: F,
) -> ExitCode
where
    F: FnOnce(C, Shell) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    main_with_commands::<C, NoCommands, F, Fut, _, std::future::Ready<anyhow::Result<()>>>(
        name,
        read_config,
        common,
        serve,
        |_, never| match never {},
    )
}

/// Like [`main`], with commands of the binary's own (`X`), run by `run`.
pub fn main_with_commands<C, X, F, Fut, R, RFut>(
    name: &'static str,
    read_config: fn(&Vars) -> Result<C, ConfigError>,
    common: fn(&C) -> &CommonConfig,
    serve: F,
    run: R,
) -> ExitCode
where
    X: Subcommand + std::fmt::Debug,
    F: FnOnce(C, Shell) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
    R: FnOnce(C, X) -> RFut,
    RFut: Future<Output = anyhow::Result<()>>,
{
    let cli = Cli::<X>::parse();
    let lookup = wsus_config::process_env;
    let config = match read_config(&Vars::new(&lookup)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let log_to = match cli.command {
            Some(Command::Extra(_)) | Some(Command::Migrate) => wsus_telemetry::LogTo::Stderr,
            _ => wsus_telemetry::LogTo::Stdout,
        };
        let telemetry = match wsus_telemetry::init(name, &lookup, log_to) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: configuration error: {e}");
                return ExitCode::from(2);
            }
        };
        let outcome = match cli.command.unwrap_or(Command::Serve) {
            Command::Migrate => migrate_once(common(&config)).await,
            Command::Extra(x) => run(config, x).await,
            Command::Serve => match Shell::start(name, common(&config)) {
                Ok(shell) => {
                    tracing::info!(service = name, version = env!("CARGO_PKG_VERSION"), "starting");
                    serve(config, shell).await
                }
                Err(e) => Err(e),
            },
        };
        telemetry.shutdown().await;
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "{name} stopped with an error");
                eprintln!("{name}: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// A pool for a one-shot command, with the schema brought up to date first.
pub async fn command_pool(common: &CommonConfig) -> anyhow::Result<PgPool> {
    let pool = wsus_store::connect_lazy(&common.database_url, 4)?;
    wsus_store::migrate::run(&pool).await.map_err(|e| anyhow::anyhow!("cannot prepare the database: {e}"))?;
    Ok(pool)
}

fn seed_of(common: &CommonConfig) -> Seed {
    Seed {
        products: common.seed.products.clone(),
        classifications: common.seed.classifications.clone(),
        languages: common.seed.languages.clone(),
        syncs_per_day: common.seed.syncs_per_day,
        content_mode: common.seed.content_mode,
    }
}

/// The server identity for a one-shot command (created, with the seeded settings, on a
/// database no service has started against yet).
pub async fn command_identity(pool: &PgPool, common: &CommonConfig) -> anyhow::Result<Identity> {
    Ok(identity::ensure(pool, common.server_id, common.server_fqdn.as_deref(), &host_name(), &seed_of(common)).await?)
}

async fn migrate_once(common: &CommonConfig) -> anyhow::Result<()> {
    let pool = wsus_store::connect_lazy(&common.database_url, 2)?;
    let applied = wsus_store::migrate::run(&pool).await?;
    tracing::info!(applied = applied.len(), "migrations up to date");
    pool.close().await;
    Ok(())
}

/// Whether start-up work (migration, identity) is done; services wait on it before
/// serving what needs the database.
#[derive(Clone)]
pub struct Startup {
    rx: watch::Receiver<StartupState>,
}

#[derive(Clone, Debug)]
enum StartupState {
    Pending(String),
    Done(Arc<Identity>),
}

impl Startup {
    /// The server identity once start-up finished.
    pub fn identity(&self) -> Option<Arc<Identity>> {
        match &*self.rx.borrow() {
            StartupState::Done(id) => Some(id.clone()),
            StartupState::Pending(_) => None,
        }
    }

    /// Why start-up has not finished yet (None once it has).
    pub fn pending_reason(&self) -> Option<String> {
        match &*self.rx.borrow() {
            StartupState::Done(_) => None,
            StartupState::Pending(r) => Some(r.clone()),
        }
    }

    /// Waits for start-up to finish.
    pub async fn wait(&self) -> Arc<Identity> {
        let mut rx = self.rx.clone();
        loop {
            if let StartupState::Done(id) = &*rx.borrow_and_update() {
                return id.clone();
            }
            if rx.changed().await.is_err() {
                // The start-up task never gives up; this only happens at shutdown.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// What a service gets to serve with.
#[derive(Clone)]
pub struct Shell {
    pub name: &'static str,
    pub pool: PgPool,
    pub startup: Startup,
    pub metrics: Arc<Metrics>,
    /// Fires on SIGTERM / Ctrl-C.
    pub shutdown: CancellationToken,
    http_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    checks: Arc<std::sync::Mutex<Vec<ReadinessCheck>>>,
}

/// A service's own readiness condition: None when ready, else why not.
pub type ReadinessCheck = Box<dyn Fn() -> Option<String> + Send + Sync>;

impl Shell {
    /// Creates the lazy pool, starts the start-up task and the signal handler.
    pub fn start(name: &'static str, common: &CommonConfig) -> anyhow::Result<Self> {
        let pool = wsus_store::connect_lazy(&common.database_url, 16)?;
        let (tx, rx) = watch::channel(StartupState::Pending("starting".into()));
        let shutdown = CancellationToken::new();
        tokio::spawn(run_startup(pool.clone(), common.clone(), tx, shutdown.clone()));
        tokio::spawn(wait_for_signal(shutdown.clone()));
        Ok(Self {
            name,
            pool,
            startup: Startup { rx },
            metrics: Arc::new(Metrics::new(name)),
            shutdown,
            http_addr: common.http_addr,
            admin_addr: common.admin_addr,
            checks: Arc::default(),
        })
    }

    /// Adds a condition `/readyz` checks (after the database and the migrations).
    pub fn add_readiness_check(&self, check: impl Fn() -> Option<String> + Send + Sync + 'static) {
        self.checks.lock().expect("readiness checks").push(Box::new(check));
    }

    pub(crate) fn failing_check(&self) -> Option<String> {
        self.checks.lock().expect("readiness checks").iter().find_map(|c| c())
    }

    /// Serves `app` on `WSUS_HTTP_ADDR`, with /healthz, /readyz and /metrics there or on
    /// `WSUS_ADMIN_ADDR` when set, until shutdown. Binding happens before this returns.
    pub async fn serve_http(&self, app: Router) -> anyhow::Result<JoinHandle<()>> {
        let health = health_router(self.clone());
        let app = metrics::instrument(app, self.metrics.clone());
        let main = match self.admin_addr {
            Some(_) => app,
            None => health.clone().merge(app),
        };
        let mut handles = vec![self.serve_router(self.http_addr, main).await?];
        if let Some(admin) = self.admin_addr {
            handles.push(self.serve_router(admin, health).await?);
        }
        Ok(tokio::spawn(async move {
            for h in handles {
                let _ = h.await;
            }
        }))
    }

    /// Serves `app` over HTTPS on `addr` with the certificate and key given (PEM); every
    /// request carries the [`tls::Scheme`] `https`.
    pub async fn serve_https(
        &self,
        app: Router,
        addr: SocketAddr,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> anyhow::Result<JoinHandle<()>> {
        let config = tls::server_config(cert, key)?;
        let listener = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let listener = tls::TlsListener::new(listener, config)?;
        tracing::info!(%addr, "listening (HTTPS)");
        let app = metrics::instrument(app, self.metrics.clone()).layer(axum::Extension(tls::Scheme("https")));
        let shutdown = self.shutdown.clone();
        Ok(tokio::spawn(async move {
            let served = axum::serve(listener, app.into_make_service_with_connect_info::<tls::Peer>())
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(%addr, error = %e, "HTTPS server failed");
            }
        }))
    }

    async fn serve_router(&self, addr: SocketAddr, router: Router) -> anyhow::Result<JoinHandle<()>> {
        let listener = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, "listening (HTTP)");
        let shutdown = self.shutdown.clone();
        Ok(tokio::spawn(async move {
            let served = axum::serve(listener, router.into_make_service_with_connect_info::<tls::Peer>())
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(%addr, error = %e, "HTTP server failed");
            }
        }))
    }

    /// Binds a gRPC listener (so a bad address fails at start, naming it), for
    /// `tonic::transport::Server::serve_with_incoming_shutdown`.
    pub async fn bind_grpc(&self, addr: SocketAddr) -> anyhow::Result<TcpListenerStream> {
        let listener = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, "listening (gRPC)");
        Ok(TcpListenerStream::new(listener))
    }
}

/// Migrates (unless told not to) and loads the identity, retrying until the database is
/// there: a service started before its database becomes ready on its own.
async fn run_startup(pool: PgPool, common: CommonConfig, tx: watch::Sender<StartupState>, stop: CancellationToken) {
    let seed = seed_of(&common);
    let fallback_fqdn = host_name();
    let mut backoff = Duration::from_millis(250);
    let mut migrated = !common.migrate_on_start;
    loop {
        let attempt: anyhow::Result<Identity> = async {
            if !migrated {
                let applied = wsus_store::migrate::run(&pool).await?;
                tracing::info!(applied = applied.len(), "migrations up to date");
                migrated = true;
            }
            Ok(identity::ensure(&pool, common.server_id, common.server_fqdn.as_deref(), &fallback_fqdn, &seed).await?)
        }
        .await;
        match attempt {
            Ok(id) => {
                tracing::info!(server_id = %id.server_id, fqdn = %id.fqdn, "start-up complete");
                let _ = tx.send(StartupState::Done(Arc::new(id)));
                return;
            }
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::warn!(error = %reason, "start-up waiting for the database");
                let _ = tx.send(StartupState::Pending(reason));
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_ascii_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down"),
        _ = shutdown.cancelled() => return,
    }
    shutdown.cancel();
}
