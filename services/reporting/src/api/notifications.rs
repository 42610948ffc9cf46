//! Notifications: the channels administrators are told through, a test for one, and what
//! was sent (read from the store; reporting's sender delivers them).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;
use wsus_api::{
    ChannelKind, NewNotificationChannel, Notification, NotificationChannel, NotificationSettings,
    NotificationSettingsChange, TestQueued,
};
use wsus_store::notifications;

use super::{Api, ApiError, ApiResult, Body, Routes};
use crate::admin::Actor;

/// The most notifications one listing returns.
const RECENT: i64 = 200;

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/notifications/channels", channels)
        .add("POST", "/api/v1/notifications/channels", add)
        .add("DELETE", "/api/v1/notifications/channels/{channel_id}", remove)
        .add("POST", "/api/v1/notifications/channels/{channel_id}/test", test)
        .add("GET", "/api/v1/notifications/settings", settings)
        .add("PATCH", "/api/v1/notifications/settings", change_settings)
        .add("GET", "/api/v1/notifications", recent)
}

fn channel(c: notifications::Channel) -> ApiResult<NotificationChannel> {
    let kind = ChannelKind::parse(&c.kind)
        .ok_or_else(|| ApiError::unavailable(format!("a stored channel kind {:?}", c.kind)))?;
    let target = crate::notify::shown_target(&c);
    Ok(NotificationChannel {
        channel_id: c.channel_id,
        name: c.name,
        kind,
        target,
        target_env: c.target_env,
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
    summary = "Add a channel: a webhook (JSON, signed with HMAC-SHA256 when secret_env names reporting's variable holding the key), a Slack- or Teams-compatible incoming webhook, or e-mail recipients (through WSUS_SMTP_URL; refused when it is not set)",
    request_body = NewNotificationChannel, responses((status = 201, body = NotificationChannel)))]
async fn add(
    State(api): State<Arc<Api>>,
    Body(new): Body<NewNotificationChannel>,
) -> ApiResult<(StatusCode, Json<NotificationChannel>)> {
    let stored = api.admin.add_channel(new).await?;
    Ok((StatusCode::CREATED, Json(channel(stored)?)))
}

#[utoipa::path(delete, path = "/api/v1/notifications/channels/{channel_id}", tag = "notifications",
    summary = "Remove a channel and what it had still to send",
    params(("channel_id" = Uuid, Path)), responses((status = 204)))]
async fn remove(State(api): State<Arc<Api>>, Path(channel_id): Path<Uuid>) -> ApiResult<StatusCode> {
    api.admin.remove_channel(channel_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/notifications/channels/{channel_id}/test", tag = "notifications",
    summary = "Send a test notification to a channel (its delivery shows in /api/v1/notifications)",
    params(("channel_id" = Uuid, Path)), responses((status = 202, body = TestQueued)))]
async fn test(State(api): State<Arc<Api>>, Path(channel_id): Path<Uuid>) -> ApiResult<(StatusCode, Json<TestQueued>)> {
    let id = api.admin.test_channel(channel_id).await?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { notification_id: id })))
}

#[utoipa::path(get, path = "/api/v1/notifications/settings", tag = "notifications",
    summary = "When the status summary is sent, what the watches look for, the messages' language",
    responses((status = 200, body = NotificationSettings)))]
async fn settings(State(api): State<Arc<Api>>) -> ApiResult<Json<NotificationSettings>> {
    Ok(Json(api.admin.notification_settings().await?))
}

#[utoipa::path(patch, path = "/api/v1/notifications/settings", tag = "notifications",
    summary = "Change some notification settings (all are checked before any is written)",
    request_body = NotificationSettingsChange, responses((status = 200, body = NotificationSettings)))]
async fn change_settings(
    State(api): State<Arc<Api>>,
    Body(change): Body<NotificationSettingsChange>,
) -> ApiResult<Json<NotificationSettings>> {
    Ok(Json(api.admin.change_notification_settings(Actor::Api, change).await?))
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
