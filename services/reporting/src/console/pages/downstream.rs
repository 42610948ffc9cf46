//! Downstream servers: every server syncing from this one (or below it), with its last
//! sync and rollup and what it reported of its computers.

use axum::extract::{Query, State};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;
use wsus_store::uss;

use crate::console::layout::{self, Nav};
use crate::console::session::Session;
use crate::console::{Console, PageResult, page as in_layout};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// The keyset to continue after: lower-case name and server id, joined by a newline.
    after: Option<String>,
}

pub async fn page(State(console): State<Console>, session: Session, Query(q): Query<ListQuery>) -> PageResult {
    let after = q
        .after
        .as_deref()
        .and_then(|a| a.split_once('\n'))
        .and_then(|(n, id)| Some((n.to_owned(), Uuid::parse_str(id).ok()?)));
    let (servers, next) = uss::downstream_servers(&console.pool, after, 50).await?;
    let body = html! {
        h1 { "Downstream servers" }
        table #downstream-servers {
            thead { tr { th { "Server" } th { "Mode" } th { "Version" } th { "Last sync" } th { "Last rollup" }
                         th.num { "Computers" } th.num { "Needing updates" } th.num { "With errors" } } }
            tbody { @for s in &servers { tr {
                td { (s.name) } td { @if s.is_replica { "replica" } @else { "autonomous" } }
                td { (s.version.as_deref().unwrap_or("")) }
                td { (layout::when(s.last_sync_time)) } td { (layout::when(s.last_rollup_time)) }
                td.num { (s.computer_count) }
                td.num { (s.computer_targets_needing_updates_count.map(|n| n.to_string()).unwrap_or_default()) }
                td.num { (s.computer_targets_with_update_errors_count.map(|n| n.to_string()).unwrap_or_default()) }
            } } }
        }
        @if servers.is_empty() { p { "No downstream server has synchronized from this one." } }
        @if let Some((name, id)) = next { (layout::next_link("/console/downstream", &[("after", format!("{name}\n{id}"))])) }
    };
    Ok(in_layout("Downstream servers", &session, Nav::Downstream, body))
}
