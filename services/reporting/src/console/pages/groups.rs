//! Target groups: the tree, and a group's members (paginated).

use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;
use wsus_store::approvals::{self, Group};
use wsus_store::computers::{self, ComputerFilter};

use crate::console::layout::{self, Nav};
use crate::console::session::Session;
use crate::console::{Console, PageError, PageResult, page};

fn branch(groups: &[Group], parent: Option<Uuid>) -> Markup {
    let children: Vec<&Group> = groups.iter().filter(|g| g.parent_group_id == parent).collect();
    html! {
        @if !children.is_empty() {
            ul { @for g in children {
                li {
                    a href={ "/console/groups/" (g.group_id) } { (g.name) }
                    @if g.is_builtin { " " span.note { "(built in)" } }
                    (branch(groups, Some(g.group_id)))
                }
            } }
        }
    }
}

pub async fn tree(State(console): State<Console>, session: Session) -> PageResult {
    let groups = approvals::groups(&console.pool).await?;
    let body = html! {
        h1 { "Groups" }
        nav #group-tree aria-label="Target groups" { (branch(&groups, None)) }
    };
    Ok(page("Groups", &session, Nav::Groups, body))
}

#[derive(Debug, Default, Deserialize)]
pub struct MembersQuery {
    after: Option<String>,
}

pub async fn members(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<Uuid>,
    Query(q): Query<MembersQuery>,
) -> PageResult {
    let group = approvals::group(&console.pool, id).await?.ok_or_else(|| PageError::not_found("group"))?;
    let after = q.after.as_deref().and_then(|a| a.split_once('\n')).map(|(n, c)| (n.to_owned(), c.to_owned()));
    let filter = ComputerFilter { group_id: Some(id), after, limit: 50, ..Default::default() };
    let (rows, next) = computers::list(&console.pool, &filter).await?;
    let body = html! {
        h1 { "Group " (group.name) }
        p { a href={ "/console/computers?group=" (id) } { "Filter the computer list by this group" } }
        table #members {
            thead { tr { th { "Computer" } th { "Operating system" } th { "Last contact" } } }
            tbody { @for c in &rows { tr {
                td { a href={ "/console/computers/" (layout::encode(&c.computer_id)) } { (c.name.as_deref().unwrap_or(&c.computer_id)) } }
                td { (c.os_description.as_deref().unwrap_or("")) }
                td { (layout::when(c.last_contact_at)) }
            } } }
        }
        @if rows.is_empty() { p { "No members." } }
        @if let Some((name, cid)) = next {
            (layout::next_link(&format!("/console/groups/{id}"), &[("after", format!("{name}\n{cid}"))]))
        }
    };
    Ok(page("Group", &session, Nav::Groups, body))
}
