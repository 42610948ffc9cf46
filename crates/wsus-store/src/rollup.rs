//! Reporting rollup (MS-WSUSSS 3.1.4.13-17, 3.2.4.5), by side: [`upstream`] keeps what
//! downstream servers roll up to this server; [`downstream`] gathers what this server rolls
//! up to its own upstream. Both are re-exported here.

pub mod downstream;
pub mod upstream;

pub use downstream::*;
pub use upstream::*;
