//! This server as a downstream server (DSS) of MS-WSUSSS: what it asks of its upstream.

/// The documents of revisions this server lacks.
mod documents;
/// Content downloads from the upstream.
mod downloads;
mod error;
/// Reporting rollup to the upstream server (MS-WSUSSS 3.2.4.5).
pub mod rollup;
/// An authorized conversation with the upstream.
mod session;
/// Synchronization from the upstream server (MS-WSUSSS 3.2.4).
pub mod sync;
/// The SOAP client of the upstream server.
pub mod upstream;

pub use error::SyncError;
pub use session::Me;
pub use upstream::{Transport, Upstream, is_microsoft_update};
