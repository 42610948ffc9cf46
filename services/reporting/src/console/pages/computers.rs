//! Computers: a filterable, paginated list (by name, keyset), and one computer with its
//! per-update statuses and its history (the outcomes of the installs and uninstalls it
//! reported, and failed downloads);
//! an admin adds it to a group or takes it out of one.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use wsus_store::computers::{self, ComputerFilter, ComputerSort, ComputerState};

use crate::admin::Actor;
use crate::console::layout::{self, Nav};
use crate::console::session::{Admin, CsrfForm, Session};
use crate::console::{Console, PageError, PageResult, page};

const PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    state: Option<String>,
    group: Option<uuid::Uuid>,
    /// "name" (the default), "contact_oldest" or "contact_newest".
    sort: Option<String>,
    /// The keyset to continue after: sort key and computer id, joined by a newline.
    after: Option<String>,
}

const SORTS: [(&str, ComputerSort, &str); 3] = [
    ("name", ComputerSort::Name, "name"),
    ("contact_oldest", ComputerSort::ContactOldest, "last contact, longest silent first"),
    ("contact_newest", ComputerSort::ContactNewest, "last contact, latest first"),
];

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
    let sort_name = q.sort.as_deref().filter(|s| !s.is_empty()).unwrap_or("name");
    let sort = SORTS
        .iter()
        .find(|(name, _, _)| *name == sort_name)
        .map(|(_, sort, _)| *sort)
        .ok_or_else(|| PageError::bad_request(format!("unknown sort {sort_name:?}")))?;
    let after = q.after.as_deref().and_then(|a| a.split_once('\n')).map(|(n, id)| (n.to_owned(), id.to_owned()));
    let filter = ComputerFilter {
        group_id: q.group,
        search: search.map(str::to_owned),
        state,
        sort,
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
            label { "Order "
                select name="sort" {
                    @for (value, s, label) in SORTS { option value=(value) selected[s == sort] { (label) } }
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
                ("sort", sort_name.to_owned()),
                ("after", format!("{name}\n{id}")),
            ]))
        }
    };
    Ok(page("Computers", &session, Nav::Computers, body))
}

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    /// The statuses' keyset: the last update id shown.
    after: Option<uuid::Uuid>,
    /// The history's keyset: the last event shown, as "<Unix microseconds>.<EventInstanceID>".
    before: Option<String>,
}

fn event_key(e: &computers::EventKey) -> String {
    super::position(Some(e.0), e.1)
}

/// An event always has a time.
fn parse_event_key(s: &str) -> Option<computers::EventKey> {
    match super::parse_position(s)? {
        (Some(time), id) => Some((time, id)),
        (None, _) => None,
    }
}

// One function on purpose: one page: its queries and the one maud template that shows them, read together.
pub async fn detail(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> PageResult {
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => {
            Some(parse_event_key(b).ok_or_else(|| PageError::bad_request(format!("bad history position {b:?}")))?)
        }
        None => None,
    };
    let c = computers::get(&console.pool, &id).await?.ok_or_else(|| PageError::not_found("computer"))?;
    let (statuses, next) = computers::statuses(&console.pool, &id, None, q.after, PAGE).await?;
    let (events, older) = computers::events(&console.pool, &id, before, PAGE).await?;
    let groups = wsus_store::approvals::groups(&console.pool).await?;
    let member_of: Vec<&wsus_store::approvals::Group> =
        groups.iter().filter(|g| c.group_ids.contains(&g.group_id)).collect();
    let names: Vec<&str> = member_of.iter().map(|g| g.name.as_str()).collect();
    // Membership of the built-in groups is implied; a computer joins the others.
    let joinable: Vec<&wsus_store::approvals::Group> =
        groups.iter().filter(|g| !g.is_builtin && !c.group_ids.contains(&g.group_id)).collect();
    let admin = session.is_admin();
    let (label, class) = state_label(c.state());
    let base = format!("/console/computers/{}", layout::encode(&c.computer_id));
    let body = html! {
        h1 { (c.name.as_deref().unwrap_or(&c.computer_id)) }
        section.card #computer {
            dl {
                dt { "State" } dd { span class={ "badge " (class) } { (label) } }
                dt { "Computer id" } dd { code { (c.computer_id) } }
                dt { "IP address" } dd { (c.ip_address.as_deref().unwrap_or("")) }
                dt { "Operating system" } dd { (c.os_description.as_deref().unwrap_or("")) " " (c.os_version.as_deref().unwrap_or("")) }
                dt { "Make and model" } dd { (c.manufacturer.as_deref().unwrap_or("")) " " (c.model.as_deref().unwrap_or("")) }
                dt { "Groups" } dd #computer-groups {
                    @if names.is_empty() { "Unassigned Computers" }
                    @for g in &member_of {
                        span.member { a href={ "/console/groups/" (g.group_id) } { (g.name) }
                            @if admin {
                                form.inline.leave method="post" action={ (base) "/groups/remove" } {
                                    input type="hidden" name="_csrf" value=(session.csrf);
                                    input type="hidden" name="group" value=(g.group_id);
                                    button type="submit" title={ "Remove from " (g.name) } { "Remove" }
                                }
                            }
                        } " "
                    }
                }
                dt { "Via" } dd { (c.downstream_server_name.as_deref().unwrap_or("this server")) }
                dt { "Registered" } dd { (layout::when(c.registered_at)) }
                dt { "Last contact" } dd { (layout::when(c.last_contact_at)) }
                dt { "Last status report" } dd { (layout::when(c.last_reported_status_time)) }
                dt { "Counts" } dd { (c.counts.installed) " installed, " (c.counts.needed) " needed, "
                                     (c.counts.failed) " failed, " (c.counts.not_applicable) " not applicable" }
            }
        }
        @if admin && !joinable.is_empty() {
            form #join method="post" action={ (base) "/groups" } {
                input type="hidden" name="_csrf" value=(session.csrf);
                label { "Add to group "
                    select name="group" required { @for g in &joinable { option value=(g.group_id) { (g.name) } } }
                }
                button type="submit" { "Add" }
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
            (layout::next_link(&base, &[("after", after.to_string())]))
        }
        section #history {
            h2 { "History" }
            p.note { "What came of each install and uninstall the computer reported, and each failed download, newest first (its own clock, UTC), for as long as events are kept." }
            @if events.is_empty() { p { "Nothing reported yet." } } @else {
                table #computer-history {
                    thead { tr { th { "When" } th { "Event" } th { "Update" } th { "Result" } } }
                    tbody { @for e in &events {
                        @let failed = wsus_status::is_failure_event(i32::from(e.event_id));
                        tr {
                            td { (layout::when(Some(e.time_at_target))) }
                            td { @if failed { span.badge.s-failed { (event_label(e.event_id)) } } @else { (event_label(e.event_id)) } }
                            td { a href={ "/console/updates/" (e.update_id) } { (e.title.as_deref().unwrap_or("(not in the catalog)")) } }
                            td { @match e.win32_hresult { Some(h) if h != 0 || failed => code { (format!("0x{:08X}", h as u32)) }, _ => "" } }
                        }
                    } }
                }
            }
            @if let Some(older) = older {
                (layout::next_link(&base, &[("before", event_key(&older))]))
            }
        }
    };
    Ok(page("Computer", &session, Nav::Computers, body))
}

pub async fn add_to_group(
    State(console): State<Console>,
    Admin(_): Admin,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<super::GroupForm>,
) -> Result<Response, PageError> {
    console.admin.add_members(Actor::Console, form.group, std::slice::from_ref(&id)).await?;
    Ok(super::back_to(&format!("/console/computers/{}", layout::encode(&id))))
}

pub async fn remove_from_group(
    State(console): State<Console>,
    Admin(_): Admin,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<super::GroupForm>,
) -> Result<Response, PageError> {
    // Taking out a computer that is not in the group is harmless (a double submit).
    console.admin.remove_member(Actor::Console, form.group, &id).await?;
    Ok(super::back_to(&format!("/console/computers/{}", layout::encode(&id))))
}

fn event_label(event_id: i16) -> String {
    wsus_status::describe_event(i32::from(event_id)).map_or_else(|| format!("Event {event_id}"), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_positions_round_trip_and_bad_ones_are_refused() {
        let key = (chrono::DateTime::from_timestamp_micros(1_764_158_400_123_456).unwrap(), uuid::Uuid::new_v4());
        assert_eq!(parse_event_key(&event_key(&key)), Some(key));
        for bad in ["", "1", "x.y", "1.not-a-uuid", "99999999999999999999.00000000-0000-0000-0000-000000000000"] {
            assert_eq!(parse_event_key(bad), None, "{bad:?}");
        }
    }
}
