//! One module a page of the console.

pub mod computers;
pub mod downstream;
pub mod groups;
pub mod notifications;
pub mod overview;
pub mod sync;
pub mod updates;

use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A list position of a time (or none) and an id, as a query parameter: "<Unix
/// microseconds, or nothing>.<id>" (microseconds: what Postgres keeps).
pub fn position(time: Option<DateTime<Utc>>, id: Uuid) -> String {
    format!("{}.{id}", time.map(|t| t.timestamp_micros().to_string()).unwrap_or_default())
}

/// Reads a [`position`]; None when it is not one.
pub fn parse_position(s: &str) -> Option<(Option<DateTime<Utc>>, Uuid)> {
    let (micros, id) = s.split_once('.')?;
    let time = match micros {
        "" => None,
        m => Some(DateTime::from_timestamp_micros(m.parse().ok()?)?),
    };
    Some((time, id.parse().ok()?))
}

/// After a change, the page to show (post, redirect, get).
pub fn back_to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A form with nothing but its CSRF token.
#[derive(Debug, serde::Deserialize)]
pub struct Empty {}

/// A form naming one target group.
#[derive(Debug, serde::Deserialize)]
pub struct GroupForm {
    pub group: uuid::Uuid,
}

/// SummarizationState names (MS-WSUSSS), by value, with the CSS class of their colour.
pub const STATES: [(&str, &str); 7] = [
    ("Unknown", "s-unknown"),
    ("Not applicable", "s-none"),
    ("Needed", "s-needed"),
    ("Downloaded", "s-needed"),
    ("Installed", "s-ok"),
    ("Failed", "s-failed"),
    ("Installed, pending reboot", "s-needed"),
];

pub fn state_name(status: i16) -> &'static str {
    usize::try_from(status).ok().and_then(|s| STATES.get(s)).map_or("?", |s| s.0)
}

/// Where synchronizations come from, or why none happen.
pub fn upstream_note(upstream: &crate::console::Upstream) -> maud::Markup {
    use crate::console::Upstream;
    maud::html! {
        @match upstream {
            Upstream::Set(url) => p.upstream { "Upstream server: " code { (url) } },
            Upstream::None => p.upstream.warning {
                "No upstream server is set, so nothing is synchronized and no synchronization is scheduled. "
                "Set " code { "WSUS_UPSTREAM_URL" } " for sync-worker (another WSUS, or "
                code { "https://sws.update.microsoft.com" } " for Microsoft Update); with "
                code { "scripts/run" } ": " code { "WSUS_UPSTREAM_URL=… scripts/run" } "."
            },
            Upstream::Unknown => p.upstream.warning { "sync-worker does not answer: the upstream server is not known." },
        }
    }
}
