//! What a batch of events says about each computer's per-update status, folded into
//! update_status with the events (the store keeps, per update, the report that set the
//! status, so each batch is folded in alone: no computer's history is read again).

use std::collections::BTreeMap;

use wsus_status::Event;
use wsus_store::reporting::{self, StatusFold};

/// The batch's latest report per computer and update, and its last complete scans.
pub fn fold(events: &[reporting::Event]) -> StatusFold {
    let relevant = wsus_status::relevant_events();
    let mut by_computer: BTreeMap<&str, Vec<Event<'_>>> = BTreeMap::new();
    for e in events.iter().filter(|e| relevant.contains(&i32::from(e.event_id))) {
        by_computer.entry(e.computer_id.as_str()).or_default().push(Event {
            event_id: i32::from(e.event_id),
            update_id: e.update_id,
            time: e.time_at_target,
            misc_data: &e.misc_data,
        });
    }
    let mut out = StatusFold { lifecycle: wsus_status::lifecycle_by_summarization_state(), ..Default::default() };
    for (computer, events) in by_computer {
        let derived = wsus_status::derive(&events);
        out.reports
            .extend(derived.states.iter().map(|(u, (s, t))| (computer.to_owned(), *u, s.summarization_state(), *t)));
        out.last_scans.extend(derived.last_scan.map(|t| (computer.to_owned(), t)));
    }
    // Rows in one order, so groups committed side by side lock them in the same order.
    out.reports.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out
}
