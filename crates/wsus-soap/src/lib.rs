//! SOAP for WSUS, without I/O: bounded, tolerant decoding of request envelopes into a
//! small element tree; literal encoding shaped like the real server's responses; faults
//! exactly as a real WSUS sends them.
//!
//! Decoding matches elements by local name (any prefix), ignores unknown elements and
//! element order, refuses DTDs and entity declarations, and enforces hard limits on body
//! size, nesting depth and element count.

pub mod cookie_span;
pub mod envelope;
pub mod fault;
pub(crate) mod read;
pub mod rollup;
pub mod rollup_status;
pub mod write;
pub mod wsusss;
pub mod wusp;
pub mod xml;

pub use envelope::{EnvelopeStyle, Request, SoapVersion, parse_request};
pub use fault::{ErrorCode, Fault};
pub use xml::{Element, Limits, XmlError};

/// SOAP 1.1 envelope namespace.
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.2 envelope namespace.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// A request element that is missing or holds a value the operation cannot accept.
/// Becomes an `InvalidParameters` fault whose Message names the parameter, as WSUS does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {reason}")]
pub struct DecodeError {
    /// The parameter path as WSUS reports it, e.g. `protocolVersion` or
    /// `parameters.InstalledNonLeafUpdateIDs`.
    pub parameter: String,
    pub reason: String,
}

impl DecodeError {
    pub fn new(parameter: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { parameter: parameter.into(), reason: reason.into() }
    }
}
