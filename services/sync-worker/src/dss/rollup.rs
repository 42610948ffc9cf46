//! Reporting rollup to the upstream server (MS-WSUSSS 3.2.4.5): this server, the servers
//! below it, their computers and computer statuses, in the batch sizes the upstream
//! announces. Run after each sync, on a timer, and by `sync-worker rollup --once`.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use wsus_soap::rollup::{self, DownstreamServerInfo};
use wsus_soap::wsusss::dss;
use wsus_store::rollup as store;

use crate::dss::sync::SyncContext;
use crate::dss::{SyncError, Upstream};
use wsus_store::run::RunResult;

/// Where a WSUS upstream serves rollup.
const REPORTING_PATH: &str = "ReportingWebService/ReportingWebService.asmx";
/// The version this server reports of itself (a .NET Version, as WSUS's are).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), ".0");
/// How many servers one RollupDownstreamServers carries at most, whatever their summaries.
const SERVERS_PER_REQUEST: usize = 100;

/// What one rollup sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RollupOutcome {
    /// A new RollupResetGuid asked for everything again.
    pub full: bool,
    pub servers: usize,
    pub computers: usize,
    pub computers_with_details: usize,
    pub out_of_sync: usize,
    pub statuses: usize,
}

async fn call(upstream: &Upstream, op: &str, body: &str) -> Result<wsus_soap::Element, SyncError> {
    let (_, response) = upstream.call(REPORTING_PATH, &dss::action(op), op, body).await?;
    Ok(response)
}

fn result<'a>(response: &'a wsus_soap::Element, op: &str) -> Result<&'a wsus_soap::Element, SyncError> {
    dss::result(response, op).map_err(|e| SyncError::protocol(op, e))
}

/// Splits servers so that no request carries more than `limit` client summaries (a
/// server with more is sent in parts).
fn server_batches(servers: Vec<DownstreamServerInfo>, limit: usize) -> Vec<Vec<DownstreamServerInfo>> {
    let limit = limit.max(1);
    let mut parts = Vec::new();
    for mut s in servers {
        let clients = std::mem::take(&mut s.clients);
        if clients.is_empty() {
            parts.push(s);
            continue;
        }
        for chunk in clients.chunks(limit) {
            parts.push(DownstreamServerInfo { clients: chunk.to_vec(), ..s.clone() });
        }
    }
    let mut batches: Vec<Vec<DownstreamServerInfo>> = Vec::new();
    let mut used = 0;
    for p in parts {
        let weight = p.clients.len();
        match batches.last_mut() {
            Some(b) if used + weight <= limit && b.len() < SERVERS_PER_REQUEST => {
                used += weight;
                b.push(p);
            }
            _ => {
                used = weight;
                batches.push(vec![p]);
            }
        }
    }
    batches
}

/// One complete rollup to the configured upstream. Busy when another runs.
pub async fn rollup_once(ctx: &SyncContext) -> Result<RollupOutcome, SyncError> {
    let url = ctx.upstream_url.clone().ok_or(SyncError::NoUpstream)?;
    let lock_name = format!("rollup:{url}");
    let Some(lock) = wsus_store::dss::try_lock(&ctx.pool, &lock_name).await? else {
        return Err(SyncError::Busy(url));
    };
    let outcome = run(ctx, &url).await;
    wsus_store::dss::unlock(lock, &lock_name).await?;
    outcome
}

async fn run(ctx: &SyncContext, url: &str) -> Result<RollupOutcome, SyncError> {
    let pool = &ctx.pool;
    let me = ctx.me.server_id;
    let upstream = Upstream::new(url, &ctx.transport)?;
    let response = call(&upstream, "GetRollupConfiguration", &rollup::get_rollup_configuration()).await?;
    let config = rollup::rollup_configuration(result(&response, "GetRollupConfiguration")?)
        .map_err(|e| SyncError::protocol("GetRollupConfiguration", e))?;
    let (saved_guid, last_rollup) = wsus_store::dss::rollup_state(pool, url).await?;
    let full = saved_guid != Some(config.rollup_reset_guid);
    if full {
        store::reset_for_full_rollup(pool).await?;
    }
    let mut outcome = RollupOutcome { full, ..Default::default() };
    let now = Utc::now();

    // This server last, after the servers below it (parents before children).
    let mut servers = store::descendants(pool, me).await?;
    let last_sync = wsus_store::sync_history::latest_finished(pool)
        .await?
        .filter(|r| r.result == RunResult::Succeeded)
        .and_then(|r| r.finished_at);
    servers.push(DownstreamServerInfo {
        server_id: me,
        full_domain_name: ctx.me.fqdn.clone(),
        last_sync_time: last_sync,
        parent_server_id: uuid::Uuid::nil(),
        version: VERSION.to_owned(),
        is_replica: ctx.replica,
        last_rollup_time: Some(now),
        summary: store::server_summary(pool).await?,
        clients: store::client_summaries(pool, if full { None } else { last_rollup }, now).await?,
    });
    outcome.servers = servers.len();
    for batch in server_batches(servers, config.downstream_servers_batch as usize) {
        call(&upstream, "RollupDownstreamServers", &rollup::rollup_downstream_servers(Utc::now(), &batch)).await?;
    }

    if config.do_detailed_rollup {
        roll_up_computers(ctx, &upstream, config.computers_batch as i64, full, &mut outcome).await?;
    }

    // Which computers the upstream holds other statuses of than we sent.
    let mut resend: BTreeSet<String> = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = store::sent_numbers_page(pool, after.as_deref(), config.out_of_sync_batch as i64).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        let response = call(&upstream, "GetOutOfSyncComputers", &rollup::get_out_of_sync_computers(me, &page)).await?;
        resend.extend(rollup::out_of_sync_computers(result(&response, "GetOutOfSyncComputers")?));
    }
    outcome.out_of_sync = resend.len();
    resend.extend(store::status_changed(pool).await?);

    let ids: Vec<String> = resend.into_iter().collect();
    for chunk in ids.chunks(config.computer_status_batch as usize) {
        let statuses = store::full_statuses(pool, chunk).await?;
        for part in by_size(statuses, MAX_STATUS_REQUEST_BYTES) {
            send_statuses(&upstream, me, &part).await?;
            let sent: Vec<(String, i32)> = part.iter().map(|s| (s.computer_id.clone(), s.rollup_number)).collect();
            store::statuses_sent(pool, &sent, now).await?;
            outcome.statuses += sent.len();
        }
    }
    wsus_store::dss::save_rollup(pool, url, config.rollup_reset_guid, now).await?;
    Ok(outcome)
}

/// RollupComputers over every computer, then once more with details for those the
/// upstream answered NewParent.
async fn roll_up_computers(
    ctx: &SyncContext,
    upstream: &Upstream,
    batch: i64,
    full: bool,
    outcome: &mut RollupOutcome,
) -> Result<(), SyncError> {
    let pool = &ctx.pool;
    let mut again = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store::computers_page(pool, ctx.me.server_id, after.as_deref(), batch, full, None).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.computer_id.clone());
        let changed = send_computers(pool, upstream, &page, outcome).await?;
        again.extend(changed.into_iter().filter(|(_, c)| *c == rollup::Change::NewParent).map(|(id, _)| id));
    }
    for chunk in again.chunks(batch.max(1) as usize) {
        let page = store::computers_page(pool, ctx.me.server_id, None, batch, true, Some(chunk)).await?;
        send_computers(pool, upstream, &page, outcome).await?;
    }
    Ok(())
}

async fn send_computers(
    pool: &wsus_store::PgPool,
    upstream: &Upstream,
    page: &[rollup::ComputerInfo],
    outcome: &mut RollupOutcome,
) -> Result<Vec<(String, rollup::Change)>, SyncError> {
    let response = call(upstream, "RollupComputers", &rollup::rollup_computers(Utc::now(), page)).await?;
    let changed = rollup::changed_computers(result(&response, "RollupComputers")?)
        .map_err(|e| SyncError::protocol("RollupComputers", e))?;
    let with_details: Vec<String> =
        page.iter().filter(|c| c.details.is_some()).map(|c| c.computer_id.clone()).collect();
    outcome.computers += page.len();
    outcome.computers_with_details += with_details.len();
    store::computers_answered(pool, &with_details, &changed).await?;
    Ok(changed)
}

/// The largest RollupComputerStatus this server sends: a batch whose computers carry more
/// statuses than that goes in smaller requests (the batch size bounds computers, not
/// statuses, and an upstream refuses what it cannot read: a downstream that resends the
/// same refused batch never gets further).
const MAX_STATUS_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// About what a computer's statuses take on the wire (MS-WSUSSS's ComputerStatusRollupInfo
/// with ComputerStatusRollupUpdateStatus elements, as rollup::rollup_computer_status writes
/// them).
fn wire_size(c: &rollup::ComputerStatus) -> usize {
    400 + c.computer_id.len() + c.statuses.len() * 240
}

/// Splits a batch so that no request exceeds `max` bytes (a computer too large alone goes
/// alone).
fn by_size(batch: Vec<rollup::ComputerStatus>, max: usize) -> Vec<Vec<rollup::ComputerStatus>> {
    let mut parts: Vec<Vec<rollup::ComputerStatus>> = Vec::new();
    let mut size = 0;
    for c in batch {
        let s = wire_size(&c);
        if parts.last().is_none_or(|p| !p.is_empty() && size + s > max) {
            parts.push(Vec::new());
            size = 0;
        }
        size += s;
        parts.last_mut().expect("pushed above").push(c);
    }
    parts
}

/// RollupComputerStatus; a busy upstream (false) is asked again after a minute, three
/// times, each time with the clock of the moment (an upstream shifts every time stamp by
/// the difference between its clock and clientTime: MS-WSUSSS endnote <61>).
async fn send_statuses(
    upstream: &Upstream,
    me: uuid::Uuid,
    statuses: &[rollup::ComputerStatus],
) -> Result<(), SyncError> {
    for attempt in 0..4 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        let body = rollup::rollup_computer_status(Utc::now(), me, statuses);
        let response = call(upstream, "RollupComputerStatus", &body).await?;
        let accepted = rollup::computer_status_accepted(result(&response, "RollupComputerStatus")?)
            .map_err(|e| SyncError::protocol("RollupComputerStatus", e))?;
        if accepted {
            return Ok(());
        }
        tracing::info!(attempt, "the upstream is busy with computer status; asking again in a minute");
    }
    Err(SyncError::protocol("RollupComputerStatus", "the upstream stayed busy"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsus_soap::rollup::ClientSummary;

    fn server(clients: usize) -> DownstreamServerInfo {
        DownstreamServerInfo {
            server_id: uuid::Uuid::new_v4(),
            full_domain_name: "s".into(),
            last_sync_time: None,
            parent_server_id: uuid::Uuid::nil(),
            version: VERSION.into(),
            is_replica: false,
            last_rollup_time: None,
            summary: Default::default(),
            clients: vec![ClientSummary::default(); clients],
        }
    }

    #[test]
    fn no_request_carries_more_summaries_than_the_batch() {
        let batches = server_batches(vec![server(3), server(0), server(12), server(1)], 5);
        for b in &batches {
            assert!(b.iter().map(|s| s.clients.len()).sum::<usize>() <= 5);
        }
        let total: usize = batches.iter().flatten().map(|s| s.clients.len()).sum();
        assert_eq!(total, 16);
        // The server with 12 goes in three parts, in order, and the order of servers holds.
        let ids: Vec<_> = batches.iter().flatten().map(|s| s.server_id).collect();
        let mut dedup = ids.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), 4);
    }

    #[test]
    fn statuses_go_in_requests_an_upstream_can_read() {
        let computer = |n: usize, statuses: usize| rollup::ComputerStatus {
            instance_id: uuid::Uuid::new_v4(),
            computer_id: format!("pc-{n}"),
            effective_last_detection_time: None,
            rollup_number: 1,
            is_full_rollup: true,
            statuses: (0..statuses)
                .map(|_| rollup::UpdateStatus {
                    update_id: uuid::Uuid::new_v4(),
                    summarization_state: 2,
                    last_change_time: Utc::now(),
                })
                .collect(),
        };
        let batch: Vec<_> = (0..10).map(|n| computer(n, if n == 4 { 400 } else { 50 })).collect();
        let parts = by_size(batch, 40_000);
        assert!(parts.len() > 1);
        for p in &parts {
            let body = rollup::rollup_computer_status(Utc::now(), uuid::Uuid::nil(), p);
            assert!(p.len() == 1 || body.len() <= 40_000, "{} bytes for {} computers", body.len(), p.len());
            assert!(body.len() <= p.iter().map(wire_size).sum::<usize>(), "the estimate is an upper bound");
        }
        let order: Vec<String> = parts.iter().flatten().map(|c| c.computer_id.clone()).collect();
        assert_eq!(order, (0..10).map(|n| format!("pc-{n}")).collect::<Vec<_>>(), "every computer, in order");
    }
}
