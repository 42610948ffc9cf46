//! HTTPS for the management API, off unless a certificate is given: `WSUS_TLS_ADDR`
//! (default `0.0.0.0:8443`), `WSUS_TLS_CERT`, `WSUS_TLS_KEY` (PEM), the names
//! client-gateway reads for its own listener (parsed in wsus-config).
//!
//! With HTTPS on, `/api` and `/console` are served on the TLS listener only. The plain listener keeps
//! `/healthz`, `/readyz` and `/metrics` (kubelet probes and Prometheus scrape plain HTTP)
//! and answers 403 for anything under `/api`: bearer tokens must not cross the network in
//! the clear, and a refusal makes a client still pointed at `http://` fail on its first
//! call instead of working while it leaks its token (a redirect would keep it working).

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;

/// What the plain listener serves under `/api` while HTTPS is on.
pub fn plain_api_refusal() -> Router {
    Router::new()
        .route("/api", any(refuse))
        .route("/api/{*rest}", any(refuse))
        .route("/console", any(refuse))
        .route("/console/{*rest}", any(refuse))
}

async fn refuse() -> Response {
    let error = "the management API and console are served over HTTPS only (WSUS_TLS_ADDR)".to_owned();
    (StatusCode::FORBIDDEN, axum::Json(wsus_api::Error { error })).into_response()
}
