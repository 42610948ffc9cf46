//! Where an [`ErrorKind`] becomes an answer on the wire: the HTTP status of the
//! management API and the console, the gRPC code between the services, and back from a
//! gRPC status another service answered. Client-gateway's SOAP ErrorCode is derived from
//! the same kind in its `soap` module.

use std::fmt::Display;

use http::StatusCode;
use tonic::{Code, Status};
use wsus_store::{ErrorKind, HasKind};

/// The HTTP status of a kind.
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict | ErrorKind::Busy => StatusCode::CONFLICT,
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC code of a kind.
pub fn grpc_code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Conflict => Code::FailedPrecondition,
        ErrorKind::Invalid => Code::InvalidArgument,
        ErrorKind::Busy => Code::AlreadyExists,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    }
}

/// What an internal failure tells the caller: its detail (a database's message, say)
/// stays in this server's log.
pub const INTERNAL_MESSAGE: &str = "internal error; the server's log has the detail";

/// The gRPC status of an error, with its message; an internal one is logged here, once,
/// and answered without its detail (the caller may pass the message on to the network).
pub fn grpc_status<E: HasKind + Display>(e: &E) -> Status {
    let kind = e.kind();
    if kind == ErrorKind::Internal {
        tracing::error!(error = %e, "request failed");
        return Status::new(grpc_code(kind), INTERNAL_MESSAGE);
    }
    Status::new(grpc_code(kind), e.to_string())
}

/// The kind of a status another service answered. Anything not named is Unavailable:
/// tonic reports a peer that died mid-call as Internal, Unknown, Cancelled or Aborted,
/// and every caller's right answer to those is "try again later".
pub fn kind_of_status(status: &Status) -> ErrorKind {
    match status.code() {
        Code::InvalidArgument => ErrorKind::Invalid,
        Code::NotFound => ErrorKind::NotFound,
        Code::FailedPrecondition => ErrorKind::Conflict,
        Code::AlreadyExists => ErrorKind::Busy,
        _ => ErrorKind::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ErrorKind; 6] = [
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Invalid,
        ErrorKind::Busy,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    #[test]
    fn a_kind_sent_over_grpc_comes_back_as_itself_except_internal() {
        for kind in KINDS {
            let back = kind_of_status(&Status::new(grpc_code(kind), "x"));
            let expected = if kind == ErrorKind::Internal { ErrorKind::Unavailable } else { kind };
            assert_eq!(back, expected, "{kind:?}");
        }
    }

    #[test]
    fn only_server_faults_are_5xx() {
        for kind in KINDS {
            let server = matches!(kind, ErrorKind::Unavailable | ErrorKind::Internal);
            assert_eq!(http_status(kind).is_server_error(), server, "{kind:?}");
        }
    }
}
