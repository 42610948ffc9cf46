//! One module a page of the console.

pub mod computers;
pub mod downstream;
pub mod groups;
pub mod overview;
pub mod sync;
pub mod updates;

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
