//! `/healthz` (the process runs), `/readyz` (the database answers and the schema is
//! current), `/metrics` (Prometheus text).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::Shell;

pub fn health_router(shell: Shell) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(shell)
}

/// Why the service cannot serve, or None when it can.
pub(crate) async fn not_ready_reason(shell: &Shell) -> Option<String> {
    let check = async {
        if let Err(e) = wsus_store::ping(&shell.pool).await {
            return Some(format!("database unreachable: {e}"));
        }
        match wsus_store::migrate::pending(&shell.pool).await {
            Err(e) => return Some(format!("cannot read the migration state: {e}")),
            Ok(p) if !p.is_empty() => return Some(format!("migrations not applied: {p:?}")),
            Ok(_) => {}
        }
        if let Some(r) = shell.startup.pending_reason() {
            return Some(format!("starting: {r}"));
        }
        shell.failing_check()
    };
    match tokio::time::timeout(Duration::from_secs(4), check).await {
        Ok(reason) => reason,
        Err(_) => Some("database did not answer within 4 s".into()),
    }
}

async fn readyz(State(shell): State<Shell>) -> Response {
    let reason = not_ready_reason(&shell).await;
    shell.metrics.set_ready(reason.is_none());
    match reason {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(r) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {r}\n")).into_response(),
    }
}

async fn metrics(State(shell): State<Shell>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], shell.metrics.encode())
        .into_response()
}
