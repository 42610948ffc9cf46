//! Local publishing without I/O: a Software Distribution Package definition read
//! ([`sdp`]) and turned into the update document this server imports and serves like any
//! other, with its vendor's and product's category documents ([`update`]).

pub mod sdp;
pub mod update;

pub use sdp::{Package, parse};
pub use update::{Publication, PublishedFile};

/// What is wrong with a package definition; shown to the administrator who published it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("not a package definition: {0}")]
    Malformed(String),
    #[error("the package definition has no {0}")]
    Missing(&'static str),
    #[error("{what} is {value:?}, which a package definition cannot have")]
    Invalid { what: &'static str, value: String },
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl PublishError {
    fn invalid(what: &'static str, value: &str) -> Self {
        PublishError::Invalid { what, value: value.chars().take(200).collect() }
    }
}
