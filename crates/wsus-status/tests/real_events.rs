//! The status a real agent's reports lead to: the events a native Windows 11 agent sent a
//! real WSUS (captures/wsus-m0-reports).

use chrono::{DateTime, Utc};
use uuid::Uuid;
use wsus_status::{Event, UpdateState, derive};

fn reference(path: &str) -> serde_json::Value {
    serde_json::from_str(&wsus_testdata::read_to_string(path)).unwrap()
}

/// (event id, update id or None, time, misc data): an event as the JSON holds it.
type Recorded = (i32, Option<Uuid>, DateTime<Utc>, Vec<String>);

/// Every event of the batches of a run.
fn events_of(run: &str) -> Vec<Recorded> {
    let all = reference("captures/wsus-m0-reports/native-install-events.json");
    let mut out = Vec::new();
    for batch in all["batches"].as_array().unwrap().iter().filter(|b| b["run"].as_str().unwrap().starts_with(run)) {
        for e in batch["events"].as_array().unwrap() {
            let update = e["update"].as_str().unwrap().split('@').next().unwrap();
            let update = Uuid::parse_str(update).unwrap();
            out.push((
                e["event_id"].as_i64().unwrap() as i32,
                Some(update).filter(|u| !u.is_nil()),
                DateTime::parse_from_rfc3339(e["time_at_target"].as_str().unwrap()).unwrap().into(),
                e["misc_data"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect(),
            ));
        }
    }
    out
}

fn as_events(raw: &[Recorded]) -> Vec<Event<'_>> {
    raw.iter().map(|(id, u, t, m)| Event { event_id: *id, update_id: *u, time: *t, misc_data: m }).collect()
}

#[test]
fn an_install_that_needs_a_restart() {
    let raw = events_of("native .NET cumulative update");
    let kb = Uuid::parse_str("88661612-7dd9-49d4-bb34-1e54802c99b9").unwrap();
    let events = as_events(&raw);
    // The first post: scanned, downloaded (162), install started (181: no state of its own).
    let first: Vec<_> = events.iter().filter(|e| e.event_id != 201).cloned().collect();
    assert_eq!(derive(&first).state_of(kb), UpdateState::Downloaded);
    // The second post: 201, the restart is pending.
    let all = derive(&events);
    assert_eq!(all.state_of(kb), UpdateState::InstalledPendingReboot);
    assert!(all.last_scan.is_some());
    assert_eq!(all.state_of(Uuid::new_v4()), UpdateState::NotApplicable, "offered, scanned, never named");
}

#[test]
fn failed_installs() {
    let raw = events_of("native MSI test updates");
    let d = derive(&as_events(&raw));
    for id in ["b3201129-7087-42ee-a3f7-2a3b44965ee5", "d2f6f81e-0633-41dc-a073-9975148ca7a2"] {
        assert_eq!(d.state_of(Uuid::parse_str(id).unwrap()), UpdateState::Failed, "{id}: 182 after 161 and 181");
    }
}

#[test]
fn the_client_status_lists() {
    let lists = reference("captures/wsus-m0-reports/native-156-lists.json");
    let native = &lists["native"];
    let join = |key: &str| {
        let ids: Vec<&str> = native[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        format!("{key}={}", ids.join(";"))
    };
    let misc = vec!["G=1507.2601.30012.0".to_owned(), join("U"), join("V"), "AppName=x".to_owned()];
    let time: DateTime<Utc> = DateTime::parse_from_rfc3339(native["time_at_target"].as_str().unwrap()).unwrap().into();
    let d = derive(&[Event { event_id: 156, update_id: None, time, misc_data: &misc }]);
    let count = |s: UpdateState| d.states.values().filter(|(st, _)| *st == s).count();
    assert_eq!(count(UpdateState::Needed), native["U"].as_array().unwrap().len());
    assert_eq!(count(UpdateState::Installed), native["V"].as_array().unwrap().len());
    assert_eq!(d.last_status, Some(time));
}
