//! Target groups: the tree, and a group's members (paginated); an admin creates and
//! deletes groups (membership is changed on a computer's page).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;
use wsus_store::approvals::{self, Group};
use wsus_store::computers::{self, ComputerFilter};

use crate::admin::Actor;
use crate::console::layout::{self, Nav};
use crate::console::session::{Admin, CsrfForm, Session};
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
    let admin = session.is_admin();
    let body = html! {
        h1 { "Groups" }
        nav #group-tree aria-label="Target groups" { (branch(&groups, None)) }
        @if admin {
            form #new-group method="post" action="/console/groups" {
                h2 { "New group" }
                input type="hidden" name="_csrf" value=(session.csrf);
                label { "Name " input type="text" name="name" required maxlength="256"; }
                label { "Under "
                    select name="parent" {
                        @for g in groups.iter().filter(|g| g.group_id != wsus_store::UNASSIGNED_COMPUTERS) {
                            option value=(g.group_id) selected[g.group_id == wsus_store::ALL_COMPUTERS] { (g.name) }
                        }
                    }
                }
                button type="submit" { "Create" }
            }
        }
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
        @if session.is_admin() && !group.is_builtin {
            form #delete-group method="post" action={ "/console/groups/" (id) "/delete" }
                data-confirm={ "Delete the group " (group.name) " and its subgroups? Their approvals go with them; their computers stay, in whichever groups remain." } {
                input type="hidden" name="_csrf" value=(session.csrf);
                button.danger type="submit" { "Delete group" }
            }
        }
        @if let Some((name, cid)) = next {
            (layout::next_link(&format!("/console/groups/{id}"), &[("after", format!("{name}\n{cid}"))]))
        }
    };
    Ok(page("Group", &session, Nav::Groups, body))
}

#[derive(Debug, Deserialize)]
pub struct NewGroup {
    name: String,
    parent: Option<Uuid>,
}

pub async fn create(
    State(console): State<Console>,
    Admin(_): Admin,
    CsrfForm(form): CsrfForm<NewGroup>,
) -> Result<Response, PageError> {
    let group = console.admin.create_group(Actor::Console, &form.name, form.parent).await?;
    Ok(super::back_to(&format!("/console/groups/{}", group.group_id)))
}

pub async fn delete(
    State(console): State<Console>,
    Admin(_): Admin,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<super::Empty>,
) -> Result<Response, PageError> {
    // Deleting a group that is not there is harmless (a double submit).
    console.admin.delete_group(Actor::Console, id).await?;
    Ok(super::back_to("/console/groups"))
}
