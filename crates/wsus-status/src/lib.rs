//! A computer's status per update, derived from the events its agent reported, the way a
//! real WSUS was seen to derive it (notes/observed-behaviour.md §7): the client status
//! event 156 carries lists of update ids per state, and single events move one update.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An update's state on one computer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpdateState {
    /// Offered, and the computer has not yet reported a complete scan.
    Unknown,
    /// Offered, the computer reported a complete scan, and never named the update.
    NotApplicable,
    /// Needed and not installed.
    Needed,
    Downloaded,
    Failed,
    Installed,
    InstalledPendingReboot,
}

impl UpdateState {
    pub const ALL: [UpdateState; 7] = [
        UpdateState::Unknown,
        UpdateState::NotApplicable,
        UpdateState::Needed,
        UpdateState::Downloaded,
        UpdateState::Installed,
        UpdateState::Failed,
        UpdateState::InstalledPendingReboot,
    ];

    /// The state a stored SummarizationState stands for.
    pub fn from_summarization_state(code: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.summarization_state() == code)
    }

    /// The state of this name ([`UpdateState::as_str`]), any letter case.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// MS-WSUSSS SummarizationState, as `update_status.status` stores it.
    pub const fn summarization_state(self) -> i16 {
        match self {
            UpdateState::Unknown => 0,
            UpdateState::NotApplicable => 1,
            UpdateState::Needed => 2,
            UpdateState::Downloaded => 3,
            UpdateState::Installed => 4,
            UpdateState::Failed => 5,
            UpdateState::InstalledPendingReboot => 6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Unknown => "Unknown",
            UpdateState::NotApplicable => "NotApplicable",
            UpdateState::Needed => "Needed",
            UpdateState::Downloaded => "Downloaded",
            UpdateState::Failed => "Failed",
            UpdateState::Installed => "Installed",
            UpdateState::InstalledPendingReboot => "InstalledPendingReboot",
        }
    }
}

/// Where a state comes from: a list in the `MiscData` of event 156, or an event about
/// one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `<key>=<ID;ID;…>` in event 156.
    StatusList(&'static str),
    /// An event id whose UpdateID is the update.
    Event(i32),
}

/// The one table of what each report means.
pub const MAPPING: &[(Source, UpdateState)] = &[
    (Source::StatusList("U"), UpdateState::Needed),
    (Source::StatusList("V"), UpdateState::Installed),
    (Source::StatusList("W"), UpdateState::InstalledPendingReboot),
    (Source::StatusList("g"), UpdateState::Failed),
    (Source::StatusList("h"), UpdateState::Downloaded),
    (Source::Event(162), UpdateState::Downloaded),
    (Source::Event(182), UpdateState::Failed),
    (Source::Event(183), UpdateState::Installed),
    (Source::Event(201), UpdateState::InstalledPendingReboot),
];

/// Event 147: the agent finished a scan (detected N updates).
pub const SCAN_COMPLETE: i32 = 147;
/// Event 156: the client status, with the lists.
pub const CLIENT_STATUS: i32 = 156;

/// What an MS-WUSP event says, in the words of the specification's event table (MS-WUSP
/// 2.2.2.3.4's EventID list), for the events that name an update; None for the others.
pub fn describe_event(event_id: i32) -> Option<&'static str> {
    Some(match event_id {
        161 => "Download failed",
        162 => "Downloaded",
        163 => "Download canceled",
        164 => "Downloaded (partly from a peer)",
        165 => "Download paused",
        166 => "Download resumed",
        167 => "Download started",
        168 => "Download queued",
        169 => "Download heartbeat",
        170 => "Download progress",
        181 => "Installation started",
        182 => "Installation failed",
        183 => "Installed",
        184 => "Installed, restart required",
        185 => "Hidden",
        186 => "Installation canceled",
        187 => "Installation timed out",
        188 | 189 => "Ready to install",
        190 | 197 => "Installed (scheduled)",
        191 | 199 => "Installed (scheduled), restart required",
        192 | 200 => "Scheduled installation timed out",
        193 | 194 => "Restart required",
        195 | 198 => "Scheduled installation failed",
        196 => "Unhidden",
        201 => "Installation pending",
        202 => "Restart completed",
        203 | 204 => "Installation failed after restart",
        221 => "Uninstallation failed",
        222 => "Uninstalled",
        223 => "Uninstallation canceled",
        224 => "Uninstalled, restart required",
        225 => "Uninstallation timed out",
        // Not in the specification's table; native uninstalls sent it first (226, 222, 224, 221).
        226 => "Uninstallation started",
        521..=525 => "Commit",
        541..=546 => "Revert",
        _ => return None,
    })
}

/// Whether an event reports a failure (its Win32HResult is the error).
pub fn is_failure_event(event_id: i32) -> bool {
    matches!(event_id, 161 | 182 | 187 | 192 | 195 | 198 | 200 | 203 | 204 | 221 | 225)
}

/// Every event id status is derived from.
pub fn relevant_events() -> Vec<i32> {
    let mut ids: Vec<i32> = MAPPING
        .iter()
        .filter_map(|(s, _)| match s {
            Source::Event(id) => Some(*id),
            Source::StatusList(_) => None,
        })
        .chain([SCAN_COMPLETE, CLIENT_STATUS])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// One stored event, as much as status needs.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub event_id: i32,
    /// The update the event is about (None for the all-zero id).
    pub update_id: Option<Uuid>,
    pub time: DateTime<Utc>,
    pub misc_data: &'a [String],
}

/// What a computer's events say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Derived {
    /// Per update: its state and the time of the report that set it.
    pub states: HashMap<Uuid, (UpdateState, DateTime<Utc>)>,
    /// The last complete scan.
    pub last_scan: Option<DateTime<Utc>>,
    /// The last event that changed a state.
    pub last_status: Option<DateTime<Utc>>,
}

impl Derived {
    /// The state of an update the computer was offered.
    pub fn state_of(&self, update_id: Uuid) -> UpdateState {
        match self.states.get(&update_id) {
            Some((s, _)) => *s,
            None if self.last_scan.is_some() => UpdateState::NotApplicable,
            None => UpdateState::Unknown,
        }
    }
}

fn list_state(key: &str) -> Option<UpdateState> {
    MAPPING.iter().find(|(s, _)| matches!(s, Source::StatusList(k) if *k == key)).map(|(_, st)| *st)
}

fn event_state(event_id: i32) -> Option<UpdateState> {
    MAPPING.iter().find(|(s, _)| *s == Source::Event(event_id)).map(|(_, st)| *st)
}

/// How far along the install an update is: of two reports with the same time (a client
/// stamps a whole batch alike), the one further along wins.
pub fn lifecycle(state: UpdateState) -> u8 {
    match state {
        UpdateState::Unknown | UpdateState::NotApplicable => 0,
        UpdateState::Needed => 1,
        UpdateState::Downloaded => 2,
        UpdateState::Failed => 3,
        UpdateState::Installed => 4,
        UpdateState::InstalledPendingReboot => 5,
    }
}

/// [`lifecycle`] of each SummarizationState, indexed by the state (0..=6), for the store
/// to compare a held status with a report.
pub fn lifecycle_by_summarization_state() -> Vec<i16> {
    let mut out = vec![0; UpdateState::ALL.len()];
    for s in UpdateState::ALL {
        out[s.summarization_state() as usize] = i16::from(lifecycle(s));
    }
    out
}

fn record(states: &mut HashMap<Uuid, (UpdateState, DateTime<Utc>)>, id: Uuid, state: UpdateState, time: DateTime<Utc>) {
    match states.get(&id) {
        Some((held, at)) if *at == time && lifecycle(*held) > lifecycle(state) => {}
        _ => {
            states.insert(id, (state, time));
        }
    }
}

/// Applies events in time order: a later report about an update replaces an earlier one;
/// at the same time, the state further along the install wins. Malformed list entries
/// are skipped.
pub fn derive(events: &[Event<'_>]) -> Derived {
    let mut order: Vec<&Event<'_>> = events.iter().collect();
    order.sort_by_key(|e| e.time);
    let mut out = Derived::default();
    for e in order {
        if e.event_id == SCAN_COMPLETE {
            out.last_scan = out.last_scan.max(Some(e.time));
        }
        if e.event_id == CLIENT_STATUS {
            for entry in e.misc_data {
                let Some((key, ids)) = entry.split_once('=') else { continue };
                let Some(state) = list_state(key) else { continue };
                for id in ids.split(';').filter_map(|i| Uuid::parse_str(i.trim()).ok()) {
                    record(&mut out.states, id, state, e.time);
                }
                out.last_status = out.last_status.max(Some(e.time));
            }
        } else if let (Some(state), Some(id)) = (event_state(e.event_id), e.update_id) {
            record(&mut out.states, id, state, e.time);
            out.last_status = out.last_status.max(Some(e.time));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_that_moves_a_status_is_described() {
        for (source, _) in MAPPING {
            if let Source::Event(id) = source {
                assert!(describe_event(*id).is_some(), "event {id}");
            }
        }
        assert_eq!(describe_event(SCAN_COMPLETE), None, "a scan names no update");
        assert_eq!(describe_event(CLIENT_STATUS), None);
        assert!(is_failure_event(182) && !is_failure_event(183));
        assert!(describe_event(182).is_some_and(|d| d.contains("failed")));
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    #[test]
    fn later_reports_win_and_unreported_offers_depend_on_a_scan() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let lists = vec![format!("U={};{}", a.to_string().to_uppercase(), b), format!("V={c}"), "x=1".to_owned()];
        let none: Vec<String> = vec![];
        let events = [
            Event { event_id: 183, update_id: Some(a), time: at("2026-10-06T15:00:00Z"), misc_data: &none },
            Event { event_id: 156, update_id: None, time: at("2026-10-06T14:00:00Z"), misc_data: &lists },
        ];
        let d = derive(&events);
        assert_eq!(d.state_of(a), UpdateState::Installed, "the install came after the status list");
        assert_eq!(d.state_of(b), UpdateState::Needed);
        assert_eq!(d.state_of(c), UpdateState::Installed);
        assert_eq!(d.state_of(Uuid::new_v4()), UpdateState::Unknown, "no complete scan yet");
        assert_eq!(d.last_status, Some(at("2026-10-06T15:00:00Z")));
        // One batch, one time: download, then install, in either stored order.
        let t = at("2026-10-06T16:00:00Z");
        let batch = [
            Event { event_id: 183, update_id: Some(b), time: t, misc_data: &none },
            Event { event_id: 162, update_id: Some(b), time: t, misc_data: &none },
            Event { event_id: 156, update_id: None, time: t, misc_data: &lists },
        ];
        assert_eq!(derive(&batch).state_of(b), UpdateState::Installed);
        let scanned = [Event { event_id: 147, update_id: None, time: at("2026-10-06T13:00:00Z"), misc_data: &none }];
        assert_eq!(derive(&scanned).state_of(Uuid::new_v4()), UpdateState::NotApplicable);
    }
}
