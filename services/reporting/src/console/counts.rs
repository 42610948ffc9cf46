//! The overview's counts over every computer and status (compliance, per group, statuses
//! by state, the most needed updates, contacts by hour). On a large estate they take
//! seconds to count, so they are counted in the background and the overview reads the
//! latest result: it answers at once, with numbers at most a refresh old.

use std::sync::Arc;
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
        contacts: summary::last_contact_by_hour(pool, 24).await?,
        counted_at: Utc::now(),
        took: started.elapsed(),
    })
}

/// The latest counts, refreshed in the background.
#[derive(Default)]
pub struct CountsCache {
    latest: ArcSwapOption<Counts>,
    /// One count at a time (the refresher and a first request may meet).
    counting: tokio::sync::Mutex<()>,
}

/// At least this long between counts.
const MIN_INTERVAL: Duration = Duration::from_secs(15);
/// Counting may take at most this share of the time (one count in ten intervals' worth).
const BUSY_FACTOR: u32 = 10;
/// A count this quick may be done while a page waits.
const QUICK: Duration = Duration::from_millis(300);

impl CountsCache {
    /// The latest counts. Counted now when there are none yet, or when counting is quick
    /// (a small estate) and they are older than ten counts' time (at least 2 s): then
    /// the page is as fresh as a direct count and costs about as much.
    pub async fn get(&self, pool: &PgPool) -> Result<Arc<Counts>, StoreError> {
        if let Some(c) = self.latest.load_full() {
            let age = (Utc::now() - c.counted_at).to_std().unwrap_or_default();
            if c.took >= QUICK || age < (c.took * BUSY_FACTOR).max(Duration::from_secs(2)) {
                return Ok(c);
            }
        }
        self.refresh(pool).await
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

    /// Counts again and again, every 15 s or ten times as long as a count takes.
    pub async fn keep_fresh(self: Arc<Self>, pool: PgPool) {
        loop {
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
