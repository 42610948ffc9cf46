//! What the gateway holds in memory, refreshed in the background: the client
//! configuration, the catalog index, the registered computers, the identity and cookie
//! keys. Requests read snapshots and never wait for the database on the common path.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use uuid::Uuid;
use wsus_catalog::index::CatalogIndex;
use wsus_config::GatewayConfig;
use wsus_cookie::Keys;
use wsus_service::Shell;
use wsus_soap::wusp::{AuthPlugIn, Config};
use wsus_store::PgPool;
use wsus_store::identity::Identity;
use wsus_store::listen::{Change, forward_changes};
use wsus_store::settings::{self, ClientConfig};

/// Identity and cookie keys, known once start-up is done.
pub struct Server {
    pub identity: Arc<Identity>,
    pub keys: Keys,
}

#[derive(Clone, Default)]
pub struct Memory {
    pub server: Arc<ArcSwapOption<Server>>,
    pub client_config: Arc<ArcSwapOption<Config>>,
    /// The raw configuration values (page size etc. derive from them).
    pub settings: Arc<ArcSwapOption<ClientConfig>>,
    pub catalog: Arc<ArcSwapOption<CatalogIndex>>,
    /// Registered computers and their (server-side) groups.
    pub computers: Arc<RwLock<HashMap<String, Vec<Uuid>>>>,
}

impl Memory {
    /// What is not loaded yet (readiness): clients would get ServerBusy until it is.
    pub fn not_loaded(&self) -> Option<String> {
        if self.server.load().is_none() {
            Some("cookie keys not loaded".into())
        } else if self.client_config.load().is_none() {
            Some("client configuration not loaded".into())
        } else if self.catalog.load().is_none() {
            Some("catalog not loaded".into())
        } else {
            None
        }
    }

    pub fn is_registered(&self, computer_id: &str) -> bool {
        self.computers.read().expect("computers").contains_key(computer_id)
    }

    pub fn groups_of(&self, computer_id: &str) -> Vec<Uuid> {
        self.computers.read().expect("computers").get(computer_id).cloned().unwrap_or_default()
    }

    pub fn mark_registered(&self, computer_id: &str) {
        self.computers.write().expect("computers").entry(computer_id.to_owned()).or_default();
    }

    async fn load_server(&self, config: &GatewayConfig, pool: &PgPool, identity: Arc<Identity>) -> anyhow::Result<()> {
        let keys: Vec<(String, [u8; 32])> = if config.cookie_keys.is_empty() {
            vec![("generated".to_owned(), settings::generated_cookie_key(pool).await?)]
        } else {
            config.cookie_keys.iter().map(|k| (k.id.clone(), k.key)).collect()
        };
        let keys = Keys::new(&keys).ok_or_else(|| anyhow::anyhow!("WSUS_COOKIE_KEYS: no usable key"))?;
        self.server.store(Some(Arc::new(Server { identity, keys })));
        Ok(())
    }

    async fn load_client_config(&self, pool: &PgPool, identity: &Identity) -> anyhow::Result<()> {
        let stored = settings::get::<ClientConfig>(pool, settings::CLIENT_CONFIG).await?;
        // Seeded on first start; if an operator deleted it, announce the defaults as of
        // the identity's creation so LastChange stays stable.
        let (cfg, last_change) = match stored {
            Some(s) => (s.value, s.updated_at),
            None => (ClientConfig::for_server(&identity.fqdn), identity.created_at),
        };
        let config = Config {
            last_change: Config::last_change_at(last_change),
            is_registration_required: cfg.is_registration_required,
            auth_plug_ins: vec![AuthPlugIn::simple_targeting()],
            properties: Config::wsus_properties(
                cfg.max_extended_updates_per_request,
                cfg.package_server_share.as_deref(),
                cfg.client_reporting_level,
            ),
        };
        if self.client_config.load().as_deref() != Some(&config) {
            tracing::info!(last_change = %config.last_change, "client configuration loaded");
            self.client_config.store(Some(Arc::new(config)));
        }
        self.settings.store(Some(Arc::new(cfg)));
        Ok(())
    }

    async fn load_catalog(&self, pool: &PgPool, force: bool) -> anyhow::Result<()> {
        let current = self.catalog.load().as_ref().map(|c| c.version);
        if !force {
            let now = wsus_store::catalog::version(pool).await?.version;
            if current == Some(now) {
                return Ok(());
            }
        }
        let input = wsus_store::index::load(pool).await?;
        if current == Some(input.version) {
            return Ok(());
        }
        // Building the index is CPU work.
        let index = tokio::task::spawn_blocking(move || CatalogIndex::build(input)).await?;
        tracing::info!(version = index.version, revisions = index.revision_count(), "catalog index loaded");
        self.catalog.store(Some(Arc::new(index)));
        Ok(())
    }

    async fn load_computers(&self, pool: &PgPool) -> anyhow::Result<()> {
        let all: HashMap<String, Vec<Uuid>> =
            wsus_store::index::registered_computers(pool).await?.into_iter().collect();
        *self.computers.write().expect("computers") = all;
        Ok(())
    }

    async fn load_computer(&self, pool: &PgPool, computer_id: &str) -> anyhow::Result<()> {
        if let Some(groups) = wsus_store::index::registered_computer(pool, computer_id).await? {
            self.computers.write().expect("computers").insert(computer_id.to_owned(), groups);
        }
        Ok(())
    }

    async fn reload_all(&self, pool: &PgPool, identity: &Identity) {
        let outcome: anyhow::Result<()> = async {
            self.load_client_config(pool, identity).await?;
            self.load_catalog(pool, false).await?;
            self.load_computers(pool).await?;
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            tracing::warn!(error = format!("{e:#}"), "cannot refresh from the database; serving what is loaded");
        }
    }

    /// Loads everything once start-up is done, then follows changes until aborted.
    pub async fn keep_fresh(self, config: Arc<GatewayConfig>, shell: Shell) {
        let identity = shell.startup.wait().await;
        let pool = shell.pool.clone();
        loop {
            match self.load_server(&config, &pool, identity.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "cannot load the cookie keys yet");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let listener = tokio::spawn(forward_changes(pool.clone(), tx));
        self.reload_all(&pool, &identity).await;
        let mut every = tokio::time::interval(Duration::from_secs(30));
        loop {
            let outcome = tokio::select! {
                change = rx.recv() => match change {
                    None => break,
                    Some(Change::Setting(key)) if key == settings::CLIENT_CONFIG => self.load_client_config(&pool, &identity).await,
                    Some(Change::Setting(_)) => Ok(()),
                    Some(Change::Catalog(_)) => self.load_catalog(&pool, false).await,
                    Some(Change::Computer(id)) => self.load_computer(&pool, &id).await,
                    Some(Change::Resync) => {
                        self.reload_all(&pool, &identity).await;
                        Ok(())
                    }
                },
                _ = every.tick() => {
                    self.reload_all(&pool, &identity).await;
                    Ok(())
                }
            };
            if let Err(e) = outcome {
                tracing::warn!(error = format!("{e:#}"), "refresh failed; serving what is loaded");
            }
        }
        listener.abort();
    }
}
