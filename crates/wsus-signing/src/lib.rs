//! Locally published content: the server's code-signing certificate, the Cabinet that
//! holds a published installer, and the Cabinet's Authenticode signature, which clients
//! check against their Trusted Publishers before they install.

pub mod authenticode;
pub mod cabinet;
pub mod certificate;
pub mod pfx;

pub use certificate::SigningCertificate;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing certificate: {0}")]
    Certificate(String),
    #[error("signing key: {0}")]
    Key(String),
    #[error("Cabinet: {0}")]
    Cabinet(String),
    #[error("signature: {0}")]
    Signature(String),
    #[error("ASN.1: {0}")]
    Der(#[from] der::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
