//! The sync schedule: `syncs_per_day` evenly spaced slots a day, shifted by an offset
//! derived from the server's id, so many downstream servers of one upstream spread over
//! the interval instead of all asking at midnight.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;
use wsus_store::{settings, sync_history};

use crate::dss::SyncError;
use crate::dss::sync::{self, SyncContext};
use wsus_store::run::{RunResult, Trigger};

/// This server's offset into each interval: stable across restarts and replicas.
pub fn offset(server_id: Uuid, per_day: u32) -> TimeDelta {
    settings::Schedule { syncs_per_day: per_day }.offset(server_id)
}

/// The first slot strictly after `now`.
pub fn next_slot(now: DateTime<Utc>, per_day: u32, offset: TimeDelta) -> DateTime<Utc> {
    settings::next_slot(now, settings::Schedule { syncs_per_day: per_day }.interval(), offset)
}

/// Runs scheduled syncs until `stop`; the schedule is re-read before each wait, so a
/// change takes effect at the next slot.
pub async fn run(ctx: SyncContext, stop: tokio_util::sync::CancellationToken) {
    if ctx.upstream_url.is_none() {
        tracing::info!("no upstream server (WSUS_UPSTREAM_URL): no synchronization is scheduled");
        return;
    }
    loop {
        let per_day = match settings::get::<settings::Schedule>(&ctx.pool, settings::SYNC_SCHEDULE).await {
            Ok(s) => s.map_or(0, |s| s.value.syncs_per_day),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the sync schedule; retrying in a minute");
                0
            }
        };
        let wait = if per_day == 0 {
            Duration::from_secs(60)
        } else {
            let now = Utc::now();
            let slot = next_slot(now, per_day, offset(ctx.me.server_id, per_day));
            tracing::info!(next = %slot, per_day, "next scheduled sync");
            (slot - now).to_std().unwrap_or_default().min(Duration::from_secs(3600))
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        // A wait capped at an hour may end before the slot: then only re-read the schedule.
        if per_day == 0 || !is_slot(Utc::now(), per_day, ctx.me.server_id) {
            continue;
        }
        // Another replica may have run this slot already.
        if let Ok(Some(last)) = sync_history::latest(&ctx.pool).await
            && Utc::now() - last.started_at < (settings::Schedule { syncs_per_day: per_day }).interval() / 2
        {
            continue;
        }
        match sync::sync_once(&ctx, Trigger::Schedule).await {
            Ok(o) => tracing::info!(sync_id = o.sync_id, new = o.revisions_new, "scheduled sync done"),
            Err(SyncError::Busy(_)) => tracing::info!("a sync is already running; this slot is skipped"),
            Err(e) => tracing::warn!(error = %e, "scheduled sync failed"),
        }
    }
}

/// Drains the download queue every `every` until `stop` (client misses and downstream
/// requests should not wait for the next scheduled sync).
pub async fn drain_downloads(ctx: SyncContext, every: Duration, stop: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match sync::drain_downloads(&ctx).await {
            Ok(o) if o.files_downloaded + o.files_failed > 0 => {
                tracing::info!(
                    downloaded = o.files_downloaded,
                    failed = o.files_failed,
                    "download queue worked through"
                )
            }
            Ok(_) | Err(SyncError::Busy(_)) => {}
            Err(e) => tracing::warn!(error = %e, "download queue"),
        }
    }
}

/// Rolls up to the upstream when the last rollup is older than [`ROLLUP_EVERY`] (besides
/// the rollup after each sync), checking every ten minutes until `stop`.
pub async fn rollups(ctx: SyncContext, stop: tokio_util::sync::CancellationToken) {
    let Some(url) = ctx.upstream_url.clone().filter(|u| !crate::dss::is_microsoft_update(u)) else { return };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
        }
        let due = match wsus_store::dss::rollup_state(&ctx.pool, &url).await {
            Ok((_, last)) => last.is_none_or(|t| Utc::now() - t > ROLLUP_EVERY),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the rollup state");
                false
            }
        };
        if due {
            match crate::dss::rollup::rollup_once(&ctx).await {
                Ok(o) => tracing::info!(computers = o.computers, statuses = o.statuses, "scheduled rollup done"),
                Err(SyncError::Busy(_)) => {}
                Err(e) => tracing::warn!(error = %e, "scheduled rollup failed"),
            }
        }
    }
}

/// Runs a cleanup when none ran for a day, checking every ten minutes until `stop`.
pub async fn cleanups(
    pool: wsus_store::PgPool,
    content: wsus_content::Store,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
        }
        let due = match wsus_store::cleanup::runs_page(&pool, None, 1).await {
            Ok((runs, _)) => runs.first().is_none_or(|r| Utc::now() - r.started_at > CLEANUP_EVERY),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the cleanup runs");
                false
            }
        };
        if due {
            match crate::cleanup::run_once(&pool, &content, Trigger::Schedule).await {
                Ok(o) => tracing::info!(run_id = o.run_id, counts = ?o.counts, "scheduled cleanup done"),
                Err(SyncError::Busy(_)) => {}
                Err(e) => tracing::warn!(error = %e, "scheduled cleanup failed"),
            }
        }
    }
}

/// Keeps the sync gauges current from the sync history (any replica may be the one
/// syncing): whether a sync runs and how far it is, when the last one succeeded and how
/// long ago (the lag), and how many files wait to download.
pub async fn sync_gauges(pool: wsus_store::PgPool, metrics: std::sync::Arc<wsus_service::Metrics>) {
    use wsus_service::Gauge;
    let running = Gauge::<i64>::default();
    let (done, total) = (Gauge::<i64>::default(), Gauge::<i64>::default());
    let last_success = Gauge::<i64>::default();
    let lag = Gauge::<i64>::default();
    let queued = Gauge::<i64>::default();
    metrics.register("sync_running", "1 while a synchronisation runs", running.clone());
    metrics.register("sync_progress_done", "Items done in the running synchronisation's phase", done.clone());
    metrics.register("sync_progress_total", "Items in the running synchronisation's phase", total.clone());
    metrics.register(
        "sync_last_success_timestamp_seconds",
        "When the last successful synchronisation ended",
        last_success.clone(),
    );
    metrics.register("sync_lag_seconds", "Seconds since the last successful synchronisation ended", lag.clone());
    metrics.register("content_downloads_queued", "Files waiting to download", queued.clone());
    loop {
        if let Ok(latest) = sync_history::latest(&pool).await {
            let run = latest.filter(|r| r.result == RunResult::Running);
            running.set(i64::from(run.is_some()));
            done.set(run.as_ref().map_or(0, |r| r.done));
            total.set(run.as_ref().map_or(0, |r| r.total));
        }
        if let Ok(Some(at)) = sync_history::last_success(&pool).await {
            last_success.set(at.timestamp());
            lag.set((Utc::now() - at).num_seconds());
        }
        if let Ok(n) = wsus_store::dss::queued_downloads(&pool).await {
            queued.set(n);
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
}

/// The longest time between two cleanups.
pub const CLEANUP_EVERY: TimeDelta = TimeDelta::hours(24);

/// The longest time between two rollups.
pub const ROLLUP_EVERY: TimeDelta = TimeDelta::hours(6);

/// Whether `now` is within a minute after one of the slots.
fn is_slot(now: DateTime<Utc>, per_day: u32, server_id: Uuid) -> bool {
    let next = next_slot(now - TimeDelta::minutes(1), per_day, offset(server_id, per_day));
    next <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    #[test]
    fn slots_are_evenly_spaced_and_shifted() {
        let off = TimeDelta::minutes(90);
        assert_eq!(next_slot(at("2026-11-26T00:00:00Z"), 4, off), at("2026-11-26T01:30:00Z"));
        assert_eq!(next_slot(at("2026-11-26T01:30:00Z"), 4, off), at("2026-11-26T07:30:00Z"));
        assert_eq!(next_slot(at("2026-11-26T23:00:00Z"), 4, off), at("2026-11-27T01:30:00Z"));
        assert_eq!(next_slot(at("2026-11-26T12:00:00Z"), 1, TimeDelta::zero()), at("2026-11-27T00:00:00Z"));
    }

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        let id = Uuid::parse_str("6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12").unwrap();
        assert_eq!(offset(id, 4), offset(id, 4));
        assert!(offset(id, 4) < TimeDelta::hours(6));
        assert_ne!(offset(id, 24), offset(Uuid::new_v4(), 24), "servers spread (almost surely)");
        assert!(is_slot(next_slot(at("2026-11-26T00:00:00Z"), 4, offset(id, 4)), 4, id));
    }
}
