//! Notifications: the channels (an admin adds, tests and removes them), the settings (the
//! summary's schedule, the watches' limits, the language) and the newest deliveries.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use uuid::Uuid;
use wsus_api::{ChannelKind, NewNotificationChannel, NotificationSettingsChange, SummaryEvery, SummaryScheduleChange};
use wsus_store::notifications::{self, EventKind};

use crate::admin::Actor;
use crate::console::layout::{self, Nav};
use crate::console::session::{Admin, CsrfForm, Session};
use crate::console::{Console, PageError, PageResult};
use crate::notify::LANGUAGES;

const KINDS: [(&str, &str); 4] =
    [("webhook", "Webhook (JSON)"), ("slack", "Slack"), ("teams", "Microsoft Teams"), ("email", "E-mail")];
const EVERY: [(&str, &str); 3] = [("never", "Never"), ("day", "Daily"), ("week", "Weekly")];
const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

pub async fn page(State(console): State<Console>, session: Session) -> PageResult {
    let (channels, recent, settings) = tokio::join!(
        notifications::channels(&console.pool),
        notifications::recent(&console.pool, 50),
        console.admin.notification_settings()
    );
    let (channels, recent, settings) = (channels?, recent?, settings?);
    let admin = session.is_admin();
    let name_of = |id: Uuid| channels.iter().find(|c| c.channel_id == id).map_or("(removed)", |c| c.name.as_str());
    let body = html! {
        h1 { "Notifications" }
        table #channels {
            thead { tr { th { "Channel" } th { "Kind" } th { "Sends to" } th { "Events" } @if admin { th { "" } } } }
            tbody { @for c in &channels { tr {
                td { (c.name) @if !c.enabled { " " span.note { "(off)" } } }
                td { (c.kind) }
                td { @if let Some(v) = &c.target_env { "the URL in " code { (v) } }
                     @else { (crate::notify::shown_target(c)) } }
                td { (c.events.join(", ")) }
                @if admin { td {
                    form.inline method="post" action={ "/console/notifications/" (c.channel_id) "/test" } {
                        input type="hidden" name="_csrf" value=(session.csrf);
                        button type="submit" { "Send a test" }
                    }
                    form.inline method="post" action={ "/console/notifications/" (c.channel_id) "/remove" }
                        data-confirm={ "Remove the channel " (c.name) " and what it has still to send?" } {
                        input type="hidden" name="_csrf" value=(session.csrf);
                        button.danger type="submit" { "Remove" }
                    }
                } }
            } } }
        }
        @if channels.is_empty() { p { "No channel yet: nothing is told." } }
        @if admin {
            form #new-channel method="post" action="/console/notifications" {
                h2 { "New channel" }
                input type="hidden" name="_csrf" value=(session.csrf);
                label { "Name " input type="text" name="name" required maxlength="256"; }
                label { "Kind " select name="kind" { @for (k, label) in KINDS { option value=(k) { (label) } } } }
                label { "URL, or e-mail recipients (comma-separated) " input type="text" name="target"; }
                label { "or the URL's variable (webhook) " input type="text" name="target_env" placeholder="WSUS_NOTIFY_URL_CHAT"; }
                label { "HMAC key variable (webhook, optional) " input type="text" name="secret_env" placeholder="WSUS_NOTIFY_KEY_OPS"; }
                fieldset { legend { "Events" }
                    @for k in EventKind::ALL {
                        label { input type="checkbox" name={ "event." (k.as_str()) } value="on"; " " (k.as_str()) }
                    }
                }
                button type="submit" { "Add" }
            }
            form #notification-settings method="post" action="/console/notifications/settings" {
                h2 { "Settings" }
                input type="hidden" name="_csrf" value=(session.csrf);
                label { "Status summary " select name="every" {
                    @for (v, label) in EVERY { option value=(v) selected[v == settings.summary.every.as_str()] { (label) } }
                } }
                label { "at (UTC hour) " input type="number" name="hour" min="0" max="23" value=(settings.summary.hour); }
                label { "on " select name="weekday" {
                    @for (i, d) in WEEKDAYS.iter().enumerate() {
                        option value=(i + 1) selected[i as u32 + 1 == settings.summary.weekday] { (d) }
                    }
                } " (weekly)" }
                label { "Not reporting after (days) " input type="number" name="not_reported_days" min="1" max="365" value=(settings.not_reported_days); }
                label { "Downstream silent after (hours) " input type="number" name="rollup_silent_hours" min="1" max="8760" value=(settings.rollup_silent_hours); }
                label { "Language " select name="language" {
                    @for l in LANGUAGES { option value=(l) selected[l == settings.language] { (l) } }
                } }
                button type="submit" { "Save" }
            }
        }
        h2 { "Deliveries" }
        table #deliveries {
            thead { tr { th { "#" } th { "Event" } th { "Channel" } th { "Created" } th { "State" } th.num { "Attempts" } th { "Last error" } } }
            tbody { @for n in &recent { tr {
                td { (n.notification_id) } td { (n.event_kind) } td { (name_of(n.channel_id)) }
                td { (layout::when(Some(n.created_at))) }
                td { span class={ "result " (n.state) } { (n.state) } }
                td.num { (n.attempts) } td { (n.last_error.as_deref().unwrap_or("")) }
            } } }
        }
        @if recent.is_empty() { p { "Nothing sent yet." } }
    };
    Ok(crate::console::page("Notifications", &session, Nav::Notifications, body))
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn number(form: &HashMap<String, String>, name: &str) -> Result<Option<u32>, PageError> {
    field(form, name).map(|v| v.parse().map_err(|_| PageError::bad_request(format!("{name}: a number")))).transpose()
}

pub async fn add(
    State(console): State<Console>,
    Admin(_): Admin,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let kind = field(&form, "kind").and_then(ChannelKind::parse).ok_or_else(|| PageError::bad_request("kind"))?;
    let events = EventKind::ALL
        .iter()
        .map(|k| k.as_str())
        .filter(|k| form.contains_key(&format!("event.{k}")))
        .map(str::to_owned)
        .collect();
    let new = NewNotificationChannel {
        name: field(&form, "name").unwrap_or_default().to_owned(),
        kind,
        target: field(&form, "target").unwrap_or_default().to_owned(),
        target_env: field(&form, "target_env").map(str::to_owned),
        secret_env: field(&form, "secret_env").map(str::to_owned),
        events,
        enabled: true,
    };
    console.admin.add_channel(new).await?;
    Ok(super::back_to("/console/notifications"))
}

pub async fn settings(
    State(console): State<Console>,
    Admin(_): Admin,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let every = match field(&form, "every") {
        None => SummaryEvery::Never,
        Some(v) => SummaryEvery::parse(v).ok_or_else(|| PageError::bad_request(format!("every: {v:?}")))?,
    };
    let summary =
        SummaryScheduleChange { every: Some(every), hour: number(&form, "hour")?, weekday: number(&form, "weekday")? };
    let change = NotificationSettingsChange {
        summary: Some(summary),
        not_reported_days: number(&form, "not_reported_days")?,
        rollup_silent_hours: number(&form, "rollup_silent_hours")?,
        language: field(&form, "language").map(str::to_owned),
    };
    console.admin.change_notification_settings(Actor::Console, change).await?;
    Ok(super::back_to("/console/notifications"))
}

pub async fn test(
    State(console): State<Console>,
    Admin(_): Admin,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<super::Empty>,
) -> Result<Response, PageError> {
    console.admin.test_channel(id).await?;
    Ok(super::back_to("/console/notifications"))
}

pub async fn remove(
    State(console): State<Console>,
    Admin(_): Admin,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<super::Empty>,
) -> Result<Response, PageError> {
    // Removing a channel that is not there is harmless (a double submit).
    match console.admin.remove_channel(id).await {
        Ok(()) | Err(crate::admin::AdminError::NotFound(_)) => Ok(super::back_to("/console/notifications")),
        Err(e) => Err(e.into()),
    }
}
