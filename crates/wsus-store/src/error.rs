//! The one kind every store and domain error has. Each edge derives its answer from the
//! kind in one place: the HTTP status and gRPC code in `wsus-service`'s `edge`, the SOAP
//! ErrorCode in client-gateway's `soap`.

/// What went wrong, as far as a caller needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The thing named does not exist.
    NotFound,
    /// The request is well formed but the current state refuses it.
    Conflict,
    /// The request itself is not valid.
    Invalid,
    /// Another run holds the lock of this work: the same request succeeds later. Apart
    /// from Conflict because a caller retries it and does not show it as a refusal.
    Busy,
    /// A dependency (the database, another service) cannot be reached now.
    Unavailable,
    /// A fault of this server.
    Internal,
}

/// An error that knows its [`ErrorKind`].
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}
