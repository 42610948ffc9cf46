//! Keeps each computer's per-update status (update_status) in step with its events.

use std::collections::BTreeSet;

use wsus_status::Event;
use wsus_store::{PgPool, StoreError, reporting};

/// Re-derives the status of every computer a batch of new events touched, when the batch
/// holds an event status depends on.
pub async fn refresh_after(pool: &PgPool, events: &[reporting::Event]) -> Result<(), StoreError> {
    let relevant = wsus_status::relevant_events();
    let computers: BTreeSet<&str> =
        events.iter().filter(|e| relevant.contains(&i32::from(e.event_id))).map(|e| e.computer_id.as_str()).collect();
    for computer in computers {
        refresh(pool, computer, &relevant).await?;
    }
    Ok(())
}

async fn refresh(pool: &PgPool, computer_id: &str, relevant: &[i32]) -> Result<(), StoreError> {
    let raw = reporting::events_of(pool, computer_id, relevant).await?;
    let events: Vec<Event<'_>> = raw
        .iter()
        .map(|e| Event {
            event_id: i32::from(e.event_id),
            update_id: e.update_id,
            time: e.time_at_target,
            misc_data: &e.misc_data,
        })
        .collect();
    let derived = wsus_status::derive(&events);
    let rows: Vec<_> = derived.states.iter().map(|(u, (s, t))| (*u, s.summarization_state(), *t)).collect();
    let changed = reporting::store_statuses(pool, computer_id, &rows).await?;
    wsus_store::computers::record_status_times(pool, computer_id, derived.last_scan, changed > 0).await
}
