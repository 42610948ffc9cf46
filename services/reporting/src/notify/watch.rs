//! Notifications of conditions rather than of recorded events: the status summary when
//! its schedule is due, computers newly failing installs, downstream servers that stopped
//! rolling up. Every replica looks every so often; the store makes sure only one tells
//! (the schedule is moved on by exactly one, what was told is remembered under a lock).

use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde_json::{Value, json};
use wsus_api::{NotificationSettings, SummaryEvery, SummarySchedule};
use wsus_store::notifications::{self, EventKind};
use wsus_store::{PgPool, StoreError, settings, summary};

/// The admin_setting key of [`NotificationSettings`].
pub const SETTINGS: &str = "notifications";
/// How many failing computers, and how many most-needed updates, a message names.
const NAMED: usize = 100;
const MOST_NEEDED: i64 = 10;

/// The notification settings (the defaults until changed).
pub async fn settings(pool: &PgPool) -> Result<NotificationSettings, StoreError> {
    Ok(settings::get::<NotificationSettings>(pool, SETTINGS).await?.map(|s| s.value).unwrap_or_default())
}

/// The first time strictly after `now` that `schedule` sends the summary; None when never.
pub fn next_summary(schedule: &SummarySchedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let hour = schedule.hour.min(23);
    let today = now.date_naive().and_hms_opt(hour, 0, 0)?.and_utc();
    match schedule.every {
        SummaryEvery::Never => None,
        SummaryEvery::Day => Some(if today > now { today } else { today + chrono::Duration::days(1) }),
        SummaryEvery::Week => {
            let want = i64::from(schedule.weekday.clamp(1, 7)) - 1;
            let ahead = (want - i64::from(now.weekday().num_days_from_monday())).rem_euclid(7);
            let slot = today + chrono::Duration::days(ahead);
            Some(if slot > now { slot } else { slot + chrono::Duration::days(7) })
        }
    }
}

/// Looks every `every` until `stop`.
pub async fn run(pool: PgPool, every: Duration, stop: tokio_util::sync::CancellationToken) {
    loop {
        if let Err(e) = look(&pool, Utc::now()).await {
            tracing::warn!(error = %e, "notifications: cannot look for what to tell now");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One look: sends the summary if due, tells of new install failures and silent
/// downstream servers.
pub async fn look(pool: &PgPool, now: DateTime<Utc>) -> Result<(), StoreError> {
    let settings = settings(pool).await?;
    let kind = EventKind::StatusSummary;
    let next = next_summary(&settings.summary, now);
    match (notifications::next_scheduled(pool, kind).await?, next) {
        (Some(due), Some(next)) if due <= now => {
            let payload = status_summary(pool, settings.not_reported_days).await?;
            notifications::take_scheduled(pool, kind, due, next, &payload).await?;
        }
        // Scheduled, unscheduled or changed where the settings were not changed through
        // the administration layer (which schedules it itself).
        (None, Some(_)) | (Some(_), None) => notifications::set_schedule(pool, kind, next).await?,
        _ => {}
    }
    notifications::tell_failed_installs(pool, NAMED).await?;
    let silent_for = chrono::Duration::hours(i64::from(settings.rollup_silent_hours.max(1)));
    notifications::tell_silent_downstreams(pool, silent_for).await?;
    Ok(())
}

fn counts(c: &summary::Compliance, silent: i64) -> Value {
    json!({
        "total": c.total(),
        "up_to_date": c.up_to_date,
        "needs_updates": c.needs_updates,
        "with_errors": c.with_errors,
        "not_reported": c.not_reported,
        "silent": silent,
    })
}

/// What the status summary tells: computers by compliance, all and per group, those not
/// reported for `days`, and the updates most computers need.
pub async fn status_summary(pool: &PgPool, days: u32) -> Result<Value, StoreError> {
    let days = days.clamp(1, 36_500);
    let all = summary::compliance(pool).await?;
    let (silent, silent_by_group) = summary::silent_computers(pool, days as i32).await?;
    let groups: Vec<Value> = summary::compliance_by_group(pool)
        .await?
        .into_iter()
        .map(|(group_id, name, c)| {
            let silent = silent_by_group.iter().find(|(g, _)| *g == group_id).map_or(0, |(_, n)| *n);
            let mut v = counts(&c, silent);
            v["group_id"] = json!(group_id);
            v["name"] = json!(name);
            v
        })
        .collect();
    let most_needed: Vec<Value> = summary::most_needed(pool, MOST_NEEDED)
        .await?
        .into_iter()
        .map(|n| {
            json!({ "update_id": n.update_id, "title": n.title, "kb_article_id": n.kb_article_id, "computers": n.computers })
        })
        .collect();
    Ok(json!({
        "not_reported_days": days,
        "computers": counts(&all, silent),
        "groups": groups,
        "most_needed": most_needed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_daily_summary_is_next_at_its_hour_today_or_tomorrow() {
        let daily = SummarySchedule { every: SummaryEvery::Day, hour: 7, weekday: 1 };
        assert_eq!(next_summary(&daily, at("2026-12-07T06:59:59Z")), Some(at("2026-12-07T07:00:00Z")));
        assert_eq!(next_summary(&daily, at("2026-12-07T07:00:00Z")), Some(at("2026-12-08T07:00:00Z")));
        assert_eq!(next_summary(&SummarySchedule::default(), at("2026-12-07T06:00:00Z")), None);
    }

    #[test]
    fn a_weekly_summary_is_next_on_its_day() {
        // 2026-12-07 is a Monday.
        let friday = SummarySchedule { every: SummaryEvery::Week, hour: 9, weekday: 5 };
        assert_eq!(next_summary(&friday, at("2026-12-07T12:00:00Z")), Some(at("2026-12-11T09:00:00Z")));
        let monday = SummarySchedule { every: SummaryEvery::Week, hour: 9, weekday: 1 };
        assert_eq!(next_summary(&monday, at("2026-12-07T08:00:00Z")), Some(at("2026-12-07T09:00:00Z")));
        assert_eq!(next_summary(&monday, at("2026-12-07T09:00:00Z")), Some(at("2026-12-14T09:00:00Z")));
    }
}
