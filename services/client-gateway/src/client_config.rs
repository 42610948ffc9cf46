//! The MS-WUSP client configuration (GetConfig), held in memory: loaded from the database
//! once start-up is done, reloaded when the setting changes (NOTIFY) and every minute.
//! GetConfig never waits for the database.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use wsus_service::Shell;
use wsus_soap::wusp::{AuthPlugIn, Config};
use wsus_store::listen::{Change, forward_changes};
use wsus_store::settings::{self, ClientConfig};

#[derive(Clone, Default)]
pub struct ClientConfigCache {
    current: Arc<ArcSwapOption<Config>>,
}

impl ClientConfigCache {
    /// The configuration to announce; None until it was loaded once.
    pub fn get(&self) -> Option<Arc<Config>> {
        self.current.load_full()
    }

    async fn reload(&self, shell: &Shell) {
        let Some(identity) = shell.startup.identity() else { return };
        match settings::get::<ClientConfig>(&shell.pool, settings::CLIENT_CONFIG).await {
            Ok(stored) => {
                // Seeded on first start; if an operator deleted it, announce the defaults
                // as of the identity's creation so LastChange stays stable.
                let (cfg, last_change) = match stored {
                    Some(s) => (s.value, s.updated_at),
                    None => (ClientConfig::for_server(&identity.fqdn), identity.created_at),
                };
                let config = Config {
                    last_change,
                    is_registration_required: cfg.is_registration_required,
                    auth_plug_ins: vec![AuthPlugIn::simple_targeting()],
                    properties: Config::wsus_properties(
                        cfg.max_extended_updates_per_request,
                        cfg.package_server_share.as_deref(),
                        cfg.client_reporting_level,
                    ),
                };
                if self.get().as_deref() != Some(&config) {
                    tracing::info!(last_change = %config.last_change, "client configuration loaded");
                    self.current.store(Some(Arc::new(config)));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot reload the client configuration; keeping the last one"),
        }
    }

    /// Keeps the cache current until the task is aborted.
    pub async fn keep_fresh(self, shell: Shell) {
        shell.startup.wait().await;
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let listener = tokio::spawn(forward_changes(shell.pool.clone(), tx));
        self.reload(&shell).await;
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                change = rx.recv() => match change {
                    Some(Change::Setting(key)) if key != settings::CLIENT_CONFIG => continue,
                    Some(Change::Catalog(_)) => continue,
                    Some(_) => self.reload(&shell).await,
                    None => break,
                },
                _ = every.tick() => self.reload(&shell).await,
            }
        }
        listener.abort();
    }
}
