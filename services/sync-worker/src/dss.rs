//! This server as a downstream server (DSS) of MS-WSUSSS: what it asks of its upstream.

/// Reporting rollup to the upstream server (MS-WSUSSS 3.2.4.5).
pub mod rollup;
/// Synchronization from the upstream server (MS-WSUSSS 3.2.4).
pub mod sync;
