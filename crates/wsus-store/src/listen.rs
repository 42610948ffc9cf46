//! Change notifications (LISTEN/NOTIFY), so services refresh caches without polling hard.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use crate::catalog::{CATALOG_CHANNEL, SETTINGS_CHANNEL};

/// Something changed in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The catalog reached this version.
    Catalog(i64),
    /// This administrator setting changed.
    Setting(String),
    /// This computer registered, or its groups changed.
    Computer(String),
    /// Notifications may have been missed (first connection or a reconnect): reload everything.
    Resync,
}

/// Forwards changes to `tx` until the receiver goes away, reconnecting forever with a
/// short back-off. Every (re)connection first sends `Resync`.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.listen.forward_changes"))]
pub async fn forward_changes(pool: PgPool, tx: mpsc::Sender<Change>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if tx.is_closed() {
            return;
        }
        match listen_once(&pool, &tx).await {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(error = %e, "change listener lost its connection; reconnecting");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Ok(()) when the receiver is gone; Err when the connection failed.
async fn listen_once(pool: &PgPool, tx: &mpsc::Sender<Change>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CATALOG_CHANNEL, SETTINGS_CHANNEL, crate::index::COMPUTERS_CHANNEL]).await?;
    if tx.send(Change::Resync).await.is_err() {
        return Ok(());
    }
    loop {
        let change = match listener.try_recv().await? {
            None => Change::Resync,
            Some(n) if n.channel() == CATALOG_CHANNEL => match n.payload().parse() {
                Ok(v) => Change::Catalog(v),
                Err(_) => Change::Resync,
            },
            Some(n) if n.channel() == crate::index::COMPUTERS_CHANNEL => Change::Computer(n.payload().to_owned()),
            Some(n) => Change::Setting(n.payload().to_owned()),
        };
        if tx.send(change).await.is_err() {
            return Ok(());
        }
    }
}
