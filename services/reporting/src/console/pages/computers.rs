//! Computers: a filterable, paginated list (by name, keyset), and one computer with its
//! per-update statuses.

use axum::extract::{Path, Query, State};
use maud::html;
use serde::Deserialize;
use wsus_store::computers::{self, ComputerFilter, ComputerState};

use crate::console::layout::{self, Nav};
use crate::console::session::Session;
use crate::console::{Console, PageError, PageResult, page};

const PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    state: Option<String>,
    group: Option<uuid::Uuid>,
    /// The keyset to continue after: sort name and computer id, joined by a newline.
    after: Option<String>,
}

fn state_of(s: &str) -> Option<ComputerState> {
    Some(match s {
        "up_to_date" => ComputerState::UpToDate,
        "needs_updates" => ComputerState::NeedsUpdates,
        "with_errors" => ComputerState::WithErrors,
        "not_reported" => ComputerState::NotReported,
        _ => return None,
    })
}

fn state_label(s: ComputerState) -> (&'static str, &'static str) {
    match s {
        ComputerState::UpToDate => ("Up to date", "s-ok"),
        ComputerState::NeedsUpdates => ("Needs updates", "s-needed"),
        ComputerState::WithErrors => ("With errors", "s-failed"),
        ComputerState::NotReported => ("Not reported", "s-unknown"),
    }
}

pub async fn list(State(console): State<Console>, session: Session, Query(q): Query<ListQuery>) -> PageResult {
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let state = match q.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(state_of(s).ok_or_else(|| PageError::bad_request(format!("unknown state {s:?}")))?),
        None => None,
    };
    let after = q.after.as_deref().and_then(|a| a.split_once('\n')).map(|(n, id)| (n.to_owned(), id.to_owned()));
    let filter = ComputerFilter {
        group_id: q.group,
        search: search.map(str::to_owned),
        state,
        after,
        limit: PAGE,
        ..Default::default()
    };
    let (rows, next) = computers::list(&console.pool, &filter).await?;
    let groups = wsus_store::approvals::groups(&console.pool).await?;
    let body = html! {
        h1 { "Computers" }
        form.filters method="get" action="/console/computers" {
            label { "Name " input type="search" name="q" value=(search.unwrap_or("")); }
            label { "State "
                select name="state" {
                    option value="" { "any" }
                    @for (value, s) in [("up_to_date", ComputerState::UpToDate), ("needs_updates", ComputerState::NeedsUpdates),
                                        ("with_errors", ComputerState::WithErrors), ("not_reported", ComputerState::NotReported)] {
                        option value=(value) selected[state == Some(s)] { (state_label(s).0) }
                    }
                }
            }
            label { "Group "
                select name="group" {
                    option value="" { "any" }
                    @for g in &groups { option value=(g.group_id) selected[q.group == Some(g.group_id)] { (g.name) } }
                }
            }
            button type="submit" { "Filter" }
        }
        table #computers {
            thead { tr { th { "Name" } th { "State" } th { "Operating system" } th.num { "Needed" } th.num { "Failed" }
                         th { "Last contact" } } }
            tbody {
                @for c in &rows {
                    @let (label, class) = state_label(c.state());
                    tr {
                        td { a href={ "/console/computers/" (layout::encode(&c.computer_id)) } { (c.name.as_deref().unwrap_or(&c.computer_id)) } }
                        td { span class={ "badge " (class) } { (label) } }
                        td { (c.os_description.as_deref().unwrap_or("")) }
                        td.num { (c.counts.needed + c.counts.downloaded + c.counts.installed_pending_reboot) }
                        td.num { (c.counts.failed) }
                        td { (layout::when(c.last_contact_at)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p { "No computer matches." } }
        @if let Some((name, id)) = next {
            (layout::next_link("/console/computers", &[
                ("q", search.unwrap_or("").to_owned()),
                ("state", q.state.clone().unwrap_or_default()),
                ("group", q.group.map(|g| g.to_string()).unwrap_or_default()),
                ("after", format!("{name}\n{id}")),
            ]))
        }
    };
    Ok(page("Computers", &session, Nav::Computers, body))
}

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    after: Option<uuid::Uuid>,
}

pub async fn detail(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> PageResult {
    let c = computers::get(&console.pool, &id).await?.ok_or_else(|| PageError::not_found("computer"))?;
    let (statuses, next) = computers::statuses(&console.pool, &id, None, q.after, PAGE).await?;
    let groups = wsus_store::approvals::groups(&console.pool).await?;
    let names: Vec<&str> =
        groups.iter().filter(|g| c.group_ids.contains(&g.group_id)).map(|g| g.name.as_str()).collect();
    let (label, class) = state_label(c.state());
    let mut history: Vec<&computers::UpdateStatusRow> = statuses.iter().collect();
    history.sort_by_key(|s| std::cmp::Reverse(s.last_change_time));
    let body = html! {
        h1 { (c.name.as_deref().unwrap_or(&c.computer_id)) }
        section.card #computer {
            dl {
                dt { "State" } dd { span class={ "badge " (class) } { (label) } }
                dt { "Computer id" } dd { code { (c.computer_id) } }
                dt { "IP address" } dd { (c.ip_address.as_deref().unwrap_or("")) }
                dt { "Operating system" } dd { (c.os_description.as_deref().unwrap_or("")) " " (c.os_version.as_deref().unwrap_or("")) }
                dt { "Make and model" } dd { (c.manufacturer.as_deref().unwrap_or("")) " " (c.model.as_deref().unwrap_or("")) }
                dt { "Groups" } dd { @if names.is_empty() { "Unassigned" } @else { (names.join(", ")) } }
                dt { "Via" } dd { (c.downstream_server_name.as_deref().unwrap_or("this server")) }
                dt { "Registered" } dd { (layout::when(c.registered_at)) }
                dt { "Last contact" } dd { (layout::when(c.last_contact_at)) }
                dt { "Last status report" } dd { (layout::when(c.last_reported_status_time)) }
                dt { "Counts" } dd { (c.counts.installed) " installed, " (c.counts.needed) " needed, "
                                     (c.counts.failed) " failed, " (c.counts.not_applicable) " not applicable" }
            }
        }
        h2 { "Updates" }
        table #computer-updates {
            thead { tr { th { "Update" } th { "KB" } th { "Status" } th { "Since" } } }
            tbody { @for s in &statuses { tr {
                td { a href={ "/console/updates/" (s.update_id) } { (s.title.as_deref().unwrap_or("(untitled)")) } }
                td { (s.kb_article_id.as_deref().unwrap_or("")) }
                td { (layout::status_badge(super::state_name(s.status))) }
                td { (layout::when(Some(s.last_change_time))) }
            } } }
        }
        @if let Some(after) = next {
            (layout::next_link(&format!("/console/computers/{}", layout::encode(&c.computer_id)), &[("after", after.to_string())]))
        }
        section #history {
            h2 { "History" }
            p.note { "Status changes on this page, latest first." }
            ol { @for s in history.iter().take(20) {
                li { (layout::when(Some(s.last_change_time))) ": " (s.title.as_deref().unwrap_or("(untitled)")) " — "
                     (super::state_name(s.status)) }
            } }
        }
    };
    Ok(page("Computer", &session, Nav::Computers, body))
}
