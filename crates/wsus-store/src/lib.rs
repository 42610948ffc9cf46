//! All SQL of the system: the combined WSUS data model (MS-WUSP 3.1.1, MS-WSUSSS 3.1.1 /
//! 3.2.1) in Postgres, one module per concern. Services call these functions and never
//! write SQL of their own.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

pub mod approvals;
pub mod catalog;
pub mod cleanup;
pub mod computers;
pub mod dss;
mod error;
pub mod identity;
pub mod index;
pub mod listen;
pub mod migrate;
pub mod notifications;
pub mod publishing;
pub mod reporting;
pub mod revisions;
pub mod rollup;
pub mod rules;
pub mod run;
pub mod settings;
mod states;
pub mod summary;
pub mod sync_history;
pub mod updates;
pub mod uss;

pub use error::{ErrorKind, HasKind};
pub use sqlx::PgPool;

/// The built-in target groups every WSUS has.
pub use wsus_catalog::{ALL_COMPUTERS, UNASSIGNED_COMPUTERS};

/// (computer_id, group_id) of every computer's direct groups, with Unassigned Computers
/// for a computer in none (membership of it is implied, never stored).
pub(crate) fn direct_groups() -> String {
    format!(
        "(SELECT computer_id, group_id FROM computer_group_membership \
         UNION ALL SELECT c.computer_id, '{UNASSIGNED_COMPUTERS}'::uuid FROM computer c \
         WHERE NOT EXISTS (SELECT 1 FROM computer_group_membership x WHERE x.computer_id = c.computer_id))"
    )
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored setting {key} is not valid: {message}")]
    BadSetting { key: String, message: String },
    #[error("stored {what} has the unexpected value {value:?}")]
    Corrupt { what: &'static str, value: String },
    /// A caller's page position that does not fit the list's order (a bad request).
    #[error("bad page position {0:?}")]
    BadPosition(String),
}

impl StoreError {
    /// True when the database could not be reached at all (as opposed to refusing a query):
    /// callers answer "busy, retry" rather than "bad request".
    pub fn is_unavailable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }
}

impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_),
            ) => ErrorKind::Unavailable,
            StoreError::BadPosition(_) => ErrorKind::Invalid,
            StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::BadSetting { .. }
            | StoreError::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A pool that connects lazily, so a service starts (and reports not-ready) while the
/// database is down, and reconnects on its own when it returns.
pub fn connect_lazy(database_url: &str, max_connections: u32) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy(database_url)?)
}

/// `%part%` with LIKE's wildcards in `part` escaped.
pub(crate) fn like_pattern(part: &str) -> String {
    let escaped = part.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// Cuts a `limit + 1` fetch to a page and the key of its last row when more follow.
/// One page of a list in a stable order, and the key after which the next page starts
/// (None on the last page).
pub type KeysetPage<T, K> = (Vec<T>, Option<K>);

pub(crate) fn keyset<R, K, T>(
    mut rows: Vec<R>,
    limit: i64,
    key: impl Fn(&R) -> K,
    item: impl Fn(R) -> T,
) -> KeysetPage<T, K> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let next = if more { rows.last().map(&key) } else { None };
    (rows.into_iter().map(item).collect(), next)
}

/// Whether the database answers a trivial query.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.ping"))]
pub async fn ping(pool: &PgPool) -> Result<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}
