//! This server as the upstream server (USS) of MS-WSUSSS: what downstream servers call.

/// Reporting rollup from downstream servers (MS-WSUSSS 3.1.4.13-17).
pub mod rollup;
/// DssAuthWebService and ServerSyncWebService (MS-WSUSSS 3.1.4.1-12).
pub mod sync;
