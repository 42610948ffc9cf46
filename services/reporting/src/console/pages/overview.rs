//! The overview: compliance at a glance, what most computers need, the last sync and the
//! schedule, downstream servers, and the charts a person would rather look at than read.

use axum::extract::State;
use maud::html;
use wsus_store::{settings, summary, uss};

use wsus_api::SyncRun;

use crate::console::layout::{self, Nav};
use crate::console::session::Session;
use crate::console::svg::{self, Part};
use crate::console::{Console, PageResult, Upstream};

fn compliance_parts(c: &summary::Compliance) -> Vec<Part<'static>> {
    vec![
        Part { label: "Up to date", value: c.up_to_date as u64, class: "s-ok" },
        Part { label: "Needing updates", value: c.needs_updates as u64, class: "s-needed" },
        Part { label: "With errors", value: c.with_errors as u64, class: "s-failed" },
        Part { label: "Not reported", value: c.not_reported as u64, class: "s-unknown" },
    ]
}

// One function on purpose: one page: its figures and the one maud template that lays them out, read together.
pub async fn page(State(console): State<Console>, session: Session) -> PageResult {
    let pool = &console.pool;
    let counts = console.counts.get(pool).await?;
    let (compliance, by_group, statuses, needed, contacts) =
        (&counts.compliance, &counts.by_group, counts.statuses, &counts.most_needed, &counts.contacts);
    let (status, (history, _)) = tokio::join!(console.sync_status(), console.sync_history(None, 30));
    let schedule = settings::get::<settings::Schedule>(pool, settings::SYNC_SCHEDULE).await?.map(|s| s.value);
    let me = wsus_store::identity::current(pool).await?;
    let next_sync = schedule.zip(me).and_then(|(s, me)| s.next_after(chrono::Utc::now(), me.server_id));
    let (servers, _) = uss::downstream_servers(pool, None, 10).await?;
    let upstream = Upstream::of(status.as_ref());
    // The run in progress, else the last one.
    let last = status.and_then(|s| s.running.or(s.last));

    let status_parts: Vec<Part> =
        super::STATES.iter().zip(statuses).map(|((label, class), n)| Part { label, value: n as u64, class }).collect();
    let group_rows: Vec<(String, Vec<Part>)> =
        by_group.iter().map(|(_, name, c)| (name.clone(), compliance_parts(c))).collect();
    let contact_points: Vec<(String, f64)> =
        contacts.iter().map(|(hour, n)| (hour.format("%H:00").to_string(), *n as f64)).collect();
    // Oldest first, finished ones only.
    let finished: Vec<&SyncRun> = history.iter().rev().filter(|r| r.finished_at.is_some()).collect();
    let durations: Vec<(String, f64)> = finished
        .iter()
        .filter_map(|r| {
            let took = r.finished_at? - r.started_at?;
            Some((format!("#{}", r.sync_id), took.num_milliseconds() as f64 / 1000.0))
        })
        .collect();
    let sizes: Vec<(String, f64)> =
        finished.iter().map(|r| (format!("#{}", r.sync_id), r.bytes_received as f64 / (1024.0 * 1024.0))).collect();

    let body = html! {
        h1 { "Overview" }
        p.note #counted { "Counts as of " (layout::when(Some(counts.counted_at))) " (UTC), refreshed in the background while the overview is in use." }
        div.grid {
            section.card #compliance {
                h2 { "Computers" }
                p.big { (compliance.total()) " computers" }
                (svg::donut("compliance-chart", "Computers by compliance", &compliance_parts(compliance)))
            }
            section.card #status-distribution {
                h2 { "Update statuses" }
                (svg::donut("status-chart", "Reported update statuses", &status_parts))
            }
            section.card #last-sync {
                h2 { "Synchronization" }
                @match &last {
                    Some(r) => {
                        p { "Last: " span.result { (r.result) } " — started " (layout::when(r.started_at))
                            @if let Some(f) = r.finished_at { ", finished " (layout::when(Some(f))) } }
                        @if let Some(e) = &r.error { p.error { (e) } }
                        p { (r.revisions_new) " new and " (r.revisions_updated) " changed revisions, "
                            (layout::bytes(r.bytes_received)) " received" }
                    }
                    None => p { "No synchronization yet." }
                }
                (super::upstream_note(&upstream))
                @if !matches!(upstream, Upstream::None) {
                    p.schedule {
                        @match (schedule.map(|s| s.syncs_per_day), next_sync) {
                            (Some(n), Some(next)) => { "Next: " (layout::when(Some(next))) " (" (n) " a day)" }
                            (Some(_), None) => { "Scheduled: manual only" }
                            (None, _) => { "Scheduled: not set" }
                        }
                    }
                }
                p { a href="/console/sync" { "History" } }
            }
            section.card #downstream {
                h2 { "Downstream servers" }
                @if servers.is_empty() { p { "None." } } @else {
                    table {
                        thead { tr { th { "Server" } th { "Last rollup" } th { "Computers" } } }
                        tbody { @for s in &servers { tr {
                            td { (s.name) } td { (layout::when(s.last_rollup_time)) } td.num { (s.computer_count) }
                        } } }
                    }
                }
            }
        }
        section.card.wide #compliance-by-group {
            h2 { "Compliance per group" }
            (svg::stacked_bars("group-chart", "Computers by compliance, per group", &group_rows))
        }
        section.card.wide #top-needed {
            h2 { "Updates needed by most computers" }
            @if needed.is_empty() { p { "No computer needs an update." } } @else {
                table {
                    thead { tr { th { "Update" } th { "KB" } th.num { "Computers" } } }
                    tbody { @for n in needed { tr {
                        td { a href={ "/console/updates/" (n.update_id) } { (n.title.as_deref().unwrap_or("(untitled)")) } }
                        td { (n.kb_article_id.as_deref().unwrap_or("")) }
                        td.num { (n.computers) }
                    } } }
                }
            }
        }
        div.grid {
            section.card #contacts {
                h2 { "Clients contacting per hour" }
                p.note { "Computers in contact (scans, reports, registrations, rollups) in each of the last 24 hours, UTC." }
                (svg::columns("contacts-chart", "Computers in contact per hour", &contact_points, "computers"))
            }
            section.card #sync-trend {
                h2 { "Synchronizations" }
                (svg::line("sync-duration-chart", "Sync duration", &durations, "s"))
                (svg::columns("sync-size-chart", "Data received per sync", &sizes, "MiB"))
            }
        }
    };
    Ok(crate::console::page("Overview", &session, Nav::Overview, body))
}
