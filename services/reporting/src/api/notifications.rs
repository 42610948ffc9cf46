//! Notifications: the channels administrators are told through, a test for one, and what
//! was sent (read from the store; reporting's sender delivers them).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;
use wsus_api::{ChannelKind, NewNotificationChannel, Notification, NotificationChannel, TestQueued};
use wsus_store::notifications::{self, EventKind};

use super::{Api, ApiError, ApiResult, Routes};

/// The most notifications one listing returns.
const RECENT: i64 = 200;

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/notifications/channels", channels)
        .add("POST", "/api/v1/notifications/channels", add)
        .add("DELETE", "/api/v1/notifications/channels/{channel_id}", remove)
        .add("POST", "/api/v1/notifications/channels/{channel_id}/test", test)
        .add("GET", "/api/v1/notifications", recent)
}

/// The environment variables a webhook's key may be read from: none of the server's own
/// secrets can be made to sign.
const SECRET_ENV_PREFIX: &str = "WSUS_NOTIFY_KEY_";

fn channel(c: notifications::Channel) -> ApiResult<NotificationChannel> {
    let kind = ChannelKind::parse(&c.kind)
        .ok_or_else(|| ApiError::unavailable(format!("a stored channel kind {:?}", c.kind)))?;
    // A webhook's URL is its credential (Slack and Teams put the token in it): shown by host.
    let target = match kind {
        ChannelKind::Email => c.target,
        _ => format!("{}://{}/…", c.target.split("://").next().unwrap_or("https"), crate::notify::host_of(&c.target)),
    };
    Ok(NotificationChannel {
        channel_id: c.channel_id,
        name: c.name,
        kind,
        target,
        secret_env: c.secret_env,
        events: c.events,
        enabled: c.enabled,
        changed_at: c.changed_at,
    })
}

#[utoipa::path(get, path = "/api/v1/notifications/channels", tag = "notifications",
    summary = "Where administrators are told what changed", responses((status = 200, body = Vec<NotificationChannel>)))]
async fn channels(State(api): State<Arc<Api>>) -> ApiResult<Json<Vec<NotificationChannel>>> {
    let stored = notifications::channels(&api.pool).await?;
    Ok(Json(stored.into_iter().map(channel).collect::<ApiResult<_>>()?))
}

#[utoipa::path(post, path = "/api/v1/notifications/channels", tag = "notifications",
    summary = "Add a channel: a webhook (JSON, signed with HMAC-SHA256 when secret_env names reporting's variable holding the key), a Slack- or Teams-compatible incoming webhook, or e-mail recipients (through WSUS_SMTP_URL)",
    request_body = NewNotificationChannel, responses((status = 201, body = NotificationChannel)))]
async fn add(
    State(api): State<Arc<Api>>,
    Json(new): Json<NewNotificationChannel>,
) -> ApiResult<(StatusCode, Json<NotificationChannel>)> {
    if new.name.trim().is_empty() {
        return Err(ApiError::bad_request("name: empty"));
    }
    let url = new.target.trim();
    let recipients = url.split(',').map(str::trim);
    let target_ok = match new.kind {
        ChannelKind::Email => recipients.clone().all(|r| r.contains('@') && !r.contains(char::is_whitespace)),
        _ => url.starts_with("https://") || url.starts_with("http://"),
    };
    if !target_ok {
        return Err(ApiError::bad_request(
            "target: an http:// or https:// URL, or for e-mail comma-separated addresses",
        ));
    }
    if new.events.is_empty() {
        return Err(ApiError::bad_request("events: at least one"));
    }
    if let Some(bad) = new.events.iter().find(|e| EventKind::parse(e).is_none()) {
        let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        return Err(ApiError::bad_request(format!("events: {bad:?} is not one of {known:?}")));
    }
    if let Some(variable) = &new.secret_env
        && (!variable.starts_with(SECRET_ENV_PREFIX)
            || variable.len() == SECRET_ENV_PREFIX.len()
            || !variable.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(ApiError::bad_request(format!(
            "secret_env: the name of an environment variable starting {SECRET_ENV_PREFIX}"
        )));
    }
    let stored = notifications::Channel {
        channel_id: Uuid::new_v4(),
        name: new.name.trim().to_owned(),
        kind: new.kind.as_str().to_owned(),
        target: url.to_owned(),
        secret_env: new.secret_env,
        events: new.events,
        enabled: new.enabled,
        changed_at: chrono::Utc::now(),
    };
    notifications::put_channel(&api.pool, &stored).await.map_err(|e| match &e {
        wsus_store::StoreError::Database(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            ApiError::conflict("a channel of that name exists")
        }
        _ => e.into(),
    })?;
    Ok((StatusCode::CREATED, Json(channel(stored)?)))
}

#[utoipa::path(delete, path = "/api/v1/notifications/channels/{channel_id}", tag = "notifications",
    summary = "Remove a channel and what it had still to send",
    params(("channel_id" = Uuid, Path)), responses((status = 204)))]
async fn remove(State(api): State<Arc<Api>>, Path(channel_id): Path<Uuid>) -> ApiResult<StatusCode> {
    if notifications::delete_channel(&api.pool, channel_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such channel"))
    }
}

#[utoipa::path(post, path = "/api/v1/notifications/channels/{channel_id}/test", tag = "notifications",
    summary = "Send a test notification to a channel (its delivery shows in /api/v1/notifications)",
    params(("channel_id" = Uuid, Path)), responses((status = 202, body = TestQueued)))]
async fn test(State(api): State<Arc<Api>>, Path(channel_id): Path<Uuid>) -> ApiResult<(StatusCode, Json<TestQueued>)> {
    let payload = serde_json::json!({ "requested_at": chrono::Utc::now() });
    let id = notifications::enqueue_test(&api.pool, channel_id, &payload)
        .await?
        .ok_or_else(|| ApiError::not_found("no such channel"))?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { notification_id: id })))
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    summary = "The newest notifications (200) and how their delivery went", responses((status = 200, body = Vec<Notification>)))]
async fn recent(State(api): State<Arc<Api>>) -> ApiResult<Json<Vec<Notification>>> {
    let rows = notifications::recent(&api.pool, RECENT).await?;
    Ok(Json(
        rows.into_iter()
            .map(|n| Notification {
                notification_id: n.notification_id,
                channel_id: n.channel_id,
                event_kind: n.event_kind,
                created_at: n.created_at,
                state: n.state,
                attempts: n.attempts,
                next_attempt_at: n.next_attempt_at,
                last_error: n.last_error,
                sent_at: n.sent_at,
            })
            .collect(),
    ))
}
