//! What can stop a sync, a rollup or a cleanup.

use wsus_store::{ErrorKind, HasKind, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("WSUS_UPSTREAM_URL is not set: there is no upstream server to synchronise from")]
    NoUpstream,
    /// Another run holds the lock of this work (a sync or rollup of the named upstream, or cleanup).
    #[error("{0}: another run is in progress")]
    Busy(String),
    #[error("upstream {url}: {message}")]
    Http { url: String, message: String },
    #[error("upstream fault {code} in {operation}: {message}")]
    Fault { operation: String, code: String, message: String },
    #[error("upstream answer to {operation} is not understood: {message}")]
    Protocol { operation: String, message: String },
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

impl SyncError {
    pub(crate) fn protocol(operation: &str, message: impl ToString) -> Self {
        SyncError::Protocol { operation: operation.to_owned(), message: message.to_string() }
    }

    pub(crate) fn is_cookie_fault(&self) -> bool {
        matches!(self, SyncError::Fault { code, .. } if code == "InvalidCookie" || code == "CookieExpired")
    }
}

impl HasKind for SyncError {
    fn kind(&self) -> ErrorKind {
        match self {
            SyncError::NoUpstream => ErrorKind::Conflict,
            SyncError::Busy(_) => ErrorKind::Busy,
            SyncError::Store(e) => e.kind(),
            // The upstream failing is this server's failure to its own callers.
            SyncError::Http { .. } | SyncError::Fault { .. } | SyncError::Protocol { .. } | SyncError::Other(_) => {
                ErrorKind::Internal
            }
        }
    }
}
