//! Updates: search (newest first, or by update id; keyset pages), one update with its status counts per group
//! and its approvals, and the admin's approve (with a deadline), remove approval, decline
//! and undecline.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{NaiveDateTime, TimeZone as _, Utc};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;
use wsus_store::approvals::{self, Action};
use wsus_store::updates::{self, ApprovalFilter, UpdateFilter};

use crate::admin::Actor;
use crate::console::layout::{self, Nav};
use crate::console::session::{Admin, CsrfForm, Session};
use crate::console::{Console, PageError, PageResult, page};

const PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    approval: Option<String>,
    /// "newest" (the default: release date, newest first) or "id" (update id).
    sort: Option<String>,
    /// The keyset to continue after: an update id (by id), or "<Unix microseconds or
    /// nothing>.<update id>" (newest first).
    after: Option<String>,
}

fn newest_key(k: &updates::NewestKey) -> String {
    super::position(k.0, k.1)
}

fn parse_newest_key(s: &str) -> Option<updates::NewestKey> {
    super::parse_position(s)
}

pub async fn list(State(console): State<Console>, session: Session, Query(q): Query<ListQuery>) -> PageResult {
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let approval = match q.approval.as_deref().filter(|s| !s.is_empty()) {
        Some("approved") => Some(ApprovalFilter::Approved),
        Some("unapproved") => Some(ApprovalFilter::Unapproved),
        Some("declined") => Some(ApprovalFilter::Declined),
        Some(other) => return Err(PageError::bad_request(format!("unknown approval filter {other:?}"))),
        None => None,
    };
    let by_id = match q.sort.as_deref().filter(|s| !s.is_empty()) {
        None | Some("newest") => false,
        Some("id") => true,
        Some(other) => return Err(PageError::bad_request(format!("unknown sort {other:?}"))),
    };
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    let bad_after = || PageError::bad_request(format!("bad page position {:?}", after.unwrap_or_default()));
    let mut filter = UpdateFilter { search: search.map(str::to_owned), approval, limit: PAGE, ..Default::default() };
    let (rows, next) = if by_id {
        filter.after = after.map(|a| a.parse()).transpose().map_err(|_| bad_after())?;
        let (rows, next) = updates::list(&console.pool, &filter).await?;
        (rows, next.map(|n| n.to_string()))
    } else {
        let after = after.map(|a| parse_newest_key(a).ok_or_else(bad_after)).transpose()?;
        let (rows, next) = updates::list_newest(&console.pool, &filter, after).await?;
        (rows, next.as_ref().map(newest_key))
    };
    let body = html! {
        h1 { "Updates" }
        form.filters method="get" action="/console/updates" {
            label { "Title or KB " input type="search" name="q" value=(search.unwrap_or("")); }
            label { "Approval "
                select name="approval" {
                    option value="" { "any" }
                    @for (v, l) in [("approved", "approved"), ("unapproved", "not approved"), ("declined", "declined")] {
                        option value=(v) selected[q.approval.as_deref() == Some(v)] { (l) }
                    }
                }
            }
            label { "Order "
                select name="sort" {
                    option value="newest" selected[!by_id] { "newest first" }
                    option value="id" selected[by_id] { "by update id" }
                }
            }
            button type="submit" { "Search" }
        }
        table #updates {
            thead { tr { th { "Title" } th { "KB" } th { "Type" } th { "Released" } th { "Approval" } } }
            tbody { @for u in &rows { tr {
                td { a href={ "/console/updates/" (u.update_id) } { (u.title.as_deref().unwrap_or("(untitled)")) } }
                td { (u.kb_article_id.as_deref().unwrap_or("")) }
                td { (u.update_type) }
                td { (layout::when(u.creation_date)) }
                td { @if u.declined { "declined" } @else if u.approved_group_ids.is_empty() { "not approved" }
                     @else { "approved for " (u.approved_group_ids.len()) " group(s)" } }
            } } }
        }
        @if rows.is_empty() { p { "No update matches." } }
        @if let Some(after) = next {
            (layout::next_link("/console/updates", &[
                ("q", search.unwrap_or("").to_owned()),
                ("approval", q.approval.clone().unwrap_or_default()),
                ("sort", if by_id { "id" } else { "newest" }.to_owned()),
                ("after", after),
            ]))
        }
    };
    Ok(page("Updates", &session, Nav::Updates, body))
}

pub async fn detail(State(console): State<Console>, session: Session, Path(id): Path<Uuid>) -> PageResult {
    let pool = &console.pool;
    let u = updates::get(pool, id).await?.ok_or_else(|| PageError::not_found("update"))?;
    let groups = approvals::groups(pool).await?;
    let deployments = approvals::approvals_of(pool, id).await?;
    let counts = updates::status_counts_by_group(pool, id).await?;
    let everyone = updates::status_counts(pool, id, None).await?;
    // All Computers gets the counts over every computer (its members are implied); the
    // other groups (Unassigned Computers included) count their direct members.
    let per_group: Vec<(&approvals::Group, wsus_store::computers::StatusCounts)> = groups
        .iter()
        .map(|g| {
            let direct = counts.iter().find(|(gid, _)| *gid == g.group_id).map(|(_, c)| *c).unwrap_or_default();
            (g, if g.group_id == wsus_store::ALL_COMPUTERS { everyone } else { direct })
        })
        .collect();
    let name_of = |gid: Uuid| groups.iter().find(|g| g.group_id == gid).map_or("(deleted group)", |g| g.name.as_str());
    let admin = session.is_admin();
    let body = html! {
        h1 { (u.title.as_deref().unwrap_or("(untitled)")) }
        section.card #update {
            dl {
                dt { "Update id" } dd { code { (u.update_id) } " revision " (u.revision_number) }
                dt { "KB" } dd { (u.kb_article_id.as_deref().unwrap_or("")) }
                dt { "Type" } dd { (u.update_type) }
                dt { "Released" } dd { (layout::when(u.creation_date)) }
                dt { "Declined" } dd { @if u.declined { "yes" } @else { "no" } }
                @if u.eula_id.is_some() { dt { "License terms" } dd { @if u.eula_accepted { "accepted" } @else { "not accepted" } } }
                @if !u.superseded_by.is_empty() { dt { "Superseded by" } dd { @for s in &u.superseded_by {
                    a href={ "/console/updates/" (s) } { (s) } " " } } }
            }
        }
        h2 { "Status per group" }
        p.note { "Direct members of each group (a subgroup's computers are counted in the subgroup, and Unassigned Computers holds those in no group); All Computers counts every computer." }
        table #status-by-group {
            thead { tr { th { "Group" } th.num { "Installed" } th.num { "Needed" } th.num { "Failed" }
                         th.num { "Not applicable" } th.num { "Unknown" } } }
            tbody { @for (g, c) in &per_group { tr {
                td { a href={ "/console/groups/" (g.group_id) } { (g.name) } }
                td.num { (c.installed + c.installed_pending_reboot) } td.num { (c.needed + c.downloaded) }
                td.num { (c.failed) } td.num { (c.not_applicable) } td.num { (c.unknown) }
            } } }
        }
        h2 { "Approvals" }
        table #approvals {
            thead { tr { th { "Group" } th { "Action" } th { "Deadline" } th { "By" } th { "Changed" } @if admin { th { } } } }
            tbody { @for d in &deployments { tr {
                td { (name_of(d.group_id)) } td { (d.action.as_str()) }
                td { @if d.deadline.is_some() { (layout::when(d.deadline)) } @else { "none" } }
                td { (d.admin_name.as_deref().unwrap_or("")) } td { (layout::when(Some(d.last_change_time))) }
                @if admin { td {
                    form.inline.unapprove method="post" action={ "/console/updates/" (u.update_id) "/unapprove" } {
                        input type="hidden" name="_csrf" value=(session.csrf);
                        input type="hidden" name="group" value=(d.group_id);
                        button type="submit" { "Remove approval" }
                    }
                } }
            } } }
        }
        @if deployments.is_empty() { p { "Not approved for any group." } }
        @if admin && u.declined {
            form #undecline method="post" action={ "/console/updates/" (u.update_id) "/undecline" } {
                input type="hidden" name="_csrf" value=(session.csrf);
                p { "Declined: computers do not see it. " button type="submit" { "Undecline" } }
            }
        }
        @if admin && !u.declined {
            form #approve method="post" action={ "/console/updates/" (u.update_id) "/approve" } {
                h2 { "Approve for install" }
                input type="hidden" name="_csrf" value=(session.csrf);
                label { "Group "
                    select name="group" required { @for g in &groups { option value=(g.group_id) { (g.name) } } }
                }
                label { "Deadline (UTC, optional) " input type="datetime-local" name="deadline"; }
                @if u.eula_id.is_some() && !u.eula_accepted {
                    label { input type="checkbox" name="accept_eula" value="true"; " Accept the license terms" }
                }
                button type="submit" { "Approve" }
            }
            form #decline method="post" action={ "/console/updates/" (u.update_id) "/decline" }
                data-confirm="Decline this update? It is taken out of every computer's scan." {
                input type="hidden" name="_csrf" value=(session.csrf);
                button.danger type="submit" { "Decline" }
            }
        }
    };
    Ok(page("Update", &session, Nav::Updates, body))
}

#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    group: Uuid,
    #[serde(default)]
    deadline: String,
    #[serde(default)]
    accept_eula: Option<String>,
}

/// `datetime-local` gives minutes (or seconds) without a zone; the page says UTC.
fn deadline(raw: &str) -> Result<Option<chrono::DateTime<Utc>>, PageError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map(|t| Some(Utc.from_utc_datetime(&t)))
        .map_err(|_| PageError::bad_request(format!("deadline {raw:?} is not a date and time")))
}

pub async fn approve(
    State(console): State<Console>,
    Admin(_): Admin,
    Path(id): Path<Uuid>,
    CsrfForm(form): CsrfForm<ApproveForm>,
) -> Result<Response, PageError> {
    // The deadline is read before anything changes.
    let deadline = deadline(&form.deadline)?;
    let accept_eula = form.accept_eula.is_some();
    console.admin.approve(Actor::Console, id, form.group, Action::Install, deadline, accept_eula).await?;
    Ok(back_to(id))
}

pub async fn decline(
    State(console): State<Console>,
    Admin(_): Admin,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<super::Empty>,
) -> Result<Response, PageError> {
    set_declined(&console, id, true).await
}

pub async fn undecline(
    State(console): State<Console>,
    Admin(_): Admin,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<super::Empty>,
) -> Result<Response, PageError> {
    set_declined(&console, id, false).await
}

async fn set_declined(console: &Console, id: Uuid, declined: bool) -> Result<Response, PageError> {
    // Declining twice, or taking back a decline that is not there, is harmless.
    if declined {
        console.admin.decline(Actor::Console, id).await?;
    } else {
        console.admin.undecline(Actor::Console, id).await?;
    }
    Ok(back_to(id))
}

pub async fn unapprove(
    State(console): State<Console>,
    Admin(_): Admin,
    Path(id): Path<Uuid>,
    CsrfForm(form): CsrfForm<super::GroupForm>,
) -> Result<Response, PageError> {
    // Removing an approval that is not there is harmless (a double submit).
    console.admin.unapprove(Actor::Console, id, form.group).await?;
    Ok(back_to(id))
}

/// After a change, the update's page.
fn back_to(id: Uuid) -> Response {
    super::back_to(&format!("/console/updates/{id}"))
}

#[cfg(test)]
mod tests {
    use super::deadline;

    #[test]
    fn newest_first_positions_round_trip_and_bad_ones_are_refused() {
        use super::{newest_key, parse_newest_key};
        let id = uuid::Uuid::new_v4();
        let dated = (chrono::DateTime::from_timestamp_micros(1_700_000_000_000_001), id);
        assert_eq!(parse_newest_key(&newest_key(&dated)), Some(dated));
        assert_eq!(parse_newest_key(&newest_key(&(None, id))), Some((None, id)), "an undated update");
        for bad in ["", ".", "1.x", "x.00000000-0000-0000-0000-000000000000"] {
            assert_eq!(parse_newest_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn deadlines_are_read_as_utc_minutes_or_seconds() {
        assert_eq!(deadline("").ok().flatten(), None);
        assert_eq!(deadline("2030-01-02T03:04").ok().flatten().unwrap().to_rfc3339(), "2030-01-02T03:04:00+00:00");
        assert!(deadline("2030-01-02T03:04:05").ok().flatten().is_some());
        assert!(deadline("tomorrow").is_err());
    }
}
