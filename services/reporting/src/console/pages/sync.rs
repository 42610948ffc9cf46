//! Synchronizations: the history (newest first, paginated), and a running sync's progress,
//! which the page's script polls.

use axum::Json;
use axum::extract::{Query, State};
use maud::html;
use serde::{Deserialize, Serialize};

use crate::console::layout::{self, Nav};
use crate::console::session::Session;
use crate::console::{Console, PageError, PageResult, Upstream};

#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    before: Option<i64>,
}

async fn history(console: &Console, session: &Session, before: Option<i64>) -> PageResult {
    let (status, (runs, next)) = tokio::join!(console.sync_status(), console.sync_history(before, 50));
    let upstream = Upstream::of(status.as_ref());
    let running = status.and_then(|s| s.running);
    let body = html! {
        h1 { "Synchronizations" }
        (super::upstream_note(&upstream))
        section.card #sync-progress data-running=(running.is_some()) {
            @match &running {
                Some(r) => {
                    p { "Running since " (layout::when(r.started_at)) ": " span.phase { (r.phase.as_deref().unwrap_or("starting")) } }
                    progress max=(r.total.max(1)) value=(r.done) {}
                    p.counts { (r.done) " of " (r.total) }
                }
                None => p { "No synchronization is running." }
            }
        }
        table #sync-history {
            thead { tr { th { "#" } th { "Started" } th { "Took" } th { "Result" } th { "Trigger" } th.num { "New" }
                         th.num { "Changed" } th.num { "Unreadable" } th.num { "Received" } } }
            tbody { @for r in &runs { tr {
                td { (r.sync_id) } td { (layout::when(r.started_at)) }
                td { @if let (Some(s), Some(f)) = (r.started_at, r.finished_at) { ((f - s).num_seconds()) " s" } }
                td { span class={ "result " (r.result) } { (r.result) } @if let Some(e) = &r.error { br; span.error { (e) } } }
                td { (r.trigger) } td.num { (r.revisions_new) } td.num { (r.revisions_updated) }
                td.num { (r.revisions_quarantined) } td.num { (layout::bytes(r.bytes_received)) }
            } } }
        }
        @if runs.is_empty() { p { "No synchronization yet." } }
        @if let Some(before) = next { (layout::next_link("/console/sync", &[("before", before.to_string())])) }
    };
    Ok(crate::console::page("Synchronizations", session, Nav::Sync, body))
}

pub async fn page(State(console): State<Console>, session: Session, Query(q): Query<HistoryQuery>) -> PageResult {
    history(&console, &session, q.before).await
}

/// What the page's script shows while a sync runs.
#[derive(Debug, Serialize)]
pub struct Progress {
    running: bool,
    phase: Option<String>,
    done: i64,
    total: i64,
}

/// A sync-worker that does not answer shows as nothing running (the page says why).
pub async fn progress(State(console): State<Console>, _session: Session) -> Result<Json<Progress>, PageError> {
    let running = console.sync_status().await.and_then(|s| s.running);
    Ok(Json(match running {
        Some(r) => Progress { running: true, phase: r.phase, done: r.done, total: r.total },
        None => Progress { running: false, phase: None, done: 0, total: 0 },
    }))
}
