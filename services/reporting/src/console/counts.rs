//! The overview's counts over every computer and status (compliance, per group, statuses
//! by state, the most needed updates, contacts by hour). On a large estate they take
//! seconds to count, so they are counted in the background and the overview reads the
//! latest result: it answers at once, with numbers at most a refresh old. Counting goes on
//! only while someone looks: a replica nobody has opened the overview on for ten minutes
//! stops, and the next view wakes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use wsus_store::{PgPool, StoreError, summary};

/// What the overview shows of the whole estate.
#[derive(Debug)]
pub struct Counts {
    pub compliance: summary::Compliance,
    pub by_group: Vec<(Uuid, String, summary::Compliance)>,
    pub statuses: [i64; 7],
    pub most_needed: Vec<summary::Needed>,
    pub contacts: Vec<(DateTime<Utc>, i64)>,
    pub counted_at: DateTime<Utc>,
    pub took: Duration,
}

async fn count(pool: &PgPool) -> Result<Counts, StoreError> {
    let started = Instant::now();
    Ok(Counts {
        compliance: summary::compliance(pool).await?,
        by_group: summary::compliance_by_group(pool).await?,
        statuses: summary::status_distribution(pool).await?,
        most_needed: summary::most_needed(pool, 10).await?,
        contacts: summary::contacts_by_hour(pool, 24).await?,
        counted_at: Utc::now(),
        took: started.elapsed(),
    })
}

/// The latest counts, refreshed in the background while the overview is in use.
#[derive(Default)]
pub struct CountsCache {
    latest: ArcSwapOption<Counts>,
    /// One count at a time (the refresher and a first request may meet).
    counting: tokio::sync::Mutex<()>,
    /// When the overview was last asked for (Unix seconds; 0 never).
    viewed_at: AtomicI64,
    /// Wakes the refresher when a view comes after it went idle.
    viewed: tokio::sync::Notify,
}

/// At least this long between counts.
const MIN_INTERVAL: Duration = Duration::from_secs(15);
/// Counting may take at most this share of the time (one count in ten intervals' worth).
const BUSY_FACTOR: u32 = 10;
/// A count this quick may be done while a page waits.
const QUICK: Duration = Duration::from_millis(300);
/// The refresher stops this long after the last view.
const IDLE: Duration = Duration::from_secs(600);
/// Counts older than this are recounted while the page waits, if a count takes less than
/// [`WAIT_AT_MOST`]; else the page shows them (with their time) while the refresher counts.
const STALE: Duration = Duration::from_secs(120);
const WAIT_AT_MOST: Duration = Duration::from_secs(2);

impl CountsCache {
    /// The latest counts. Counted now when there are none yet; when counting is quick (a
    /// small estate) and they are older than ten counts' time (at least 2 s), since then the
    /// page is as fresh as a direct count and costs about as much; and when they are stale
    /// (the refresher was idle) and a count takes under 2 s.
    pub async fn get(&self, pool: &PgPool) -> Result<Arc<Counts>, StoreError> {
        self.viewed_at.store(Utc::now().timestamp(), Ordering::Relaxed);
        self.viewed.notify_one();
        if let Some(c) = self.latest.load_full() {
            let age = (Utc::now() - c.counted_at).to_std().unwrap_or_default();
            let fresh = if c.took >= QUICK {
                age < STALE || c.took >= WAIT_AT_MOST
            } else {
                age < (c.took * BUSY_FACTOR).max(Duration::from_secs(2))
            };
            if fresh {
                return Ok(c);
            }
        }
        self.refresh(pool).await
    }

    /// Whether the overview was viewed within [`IDLE`].
    fn in_use(&self) -> bool {
        let viewed = self.viewed_at.load(Ordering::Relaxed);
        viewed > 0 && Utc::now().timestamp() - viewed < IDLE.as_secs() as i64
    }

    async fn refresh(&self, pool: &PgPool) -> Result<Arc<Counts>, StoreError> {
        let _one = self.counting.lock().await;
        if let Some(c) = self.latest.load_full().filter(|c| Utc::now() - c.counted_at < chrono::Duration::seconds(1)) {
            return Ok(c);
        }
        let counts = Arc::new(count(pool).await?);
        self.latest.store(Some(counts.clone()));
        Ok(counts)
    }

    /// Counts again and again while the overview is in use, every 15 s or ten times as
    /// long as a count takes; idle, waits for the next view. The first count is made at
    /// once, so that the first view after a start does not wait for it.
    pub async fn keep_fresh(self: Arc<Self>, pool: PgPool) {
        let mut first = true;
        loop {
            if !std::mem::take(&mut first) && !self.in_use() {
                self.viewed.notified().await;
                continue;
            }
            let pause = match self.refresh(&pool).await {
                Ok(c) => MIN_INTERVAL.max(c.took * BUSY_FACTOR),
                Err(e) => {
                    tracing::debug!(error = %e, "console: cannot count the overview yet");
                    MIN_INTERVAL
                }
            };
            tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_until_viewed_and_again_after_ten_minutes() {
        let cache = CountsCache::default();
        assert!(!cache.in_use(), "nobody has looked yet");
        cache.viewed_at.store(Utc::now().timestamp(), Ordering::Relaxed);
        assert!(cache.in_use());
        cache.viewed_at.store(Utc::now().timestamp() - IDLE.as_secs() as i64 - 1, Ordering::Relaxed);
        assert!(!cache.in_use(), "ten minutes after the last view");
    }
}
