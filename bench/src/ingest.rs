//! Durable event ingestion: simulated clients send ReportEventBatch calls to client-gateway,
//! which hands each batch to reporting, which stores it in a Postgres that flushes every
//! commit (fsync and synchronous_commit on). A call is answered only once its events are
//! stored, so acknowledged events are durable events; the count is checked at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use sqlx::PgPool;
use tokio::sync::Semaphore;
use wsus_e2e::PgCluster;
use wsus_e2e::agent::Agent;

use crate::Cli;
use crate::proc;
use crate::table::{Row, row};

/// Simulated clients (each registered, each with its own status rows).
const CLIENTS: usize = 1000;
/// Updates each client reports as needed (in the status list) and as installed (four
/// events each: 167, 162, 181, 183), as after a Patch Tuesday install.
const NEEDED: usize = 20;
const INSTALLED: usize = 5;
/// Events in each call: a scan-complete and a status event, then the installs.
const PER_CALL: usize = 2 + 4 * INSTALLED;

// One function on purpose: a benchmark scenario read top to bottom (clients, event batches, the COPY limit),
// each step using what the ones before set up.
pub async fn run(cli: &Cli) -> anyhow::Result<Vec<Row>> {
    let pg = PgCluster::start_durable()?;
    let db = pg.create_database("ingest")?;
    let dir = tempfile::tempdir()?;
    let opts = wsus_catalog_gen::Options { revisions: 2000, seed: 21, ..Default::default() };
    wsus_catalog_gen::write(&opts, dir.path(), None)?;
    wsus_e2e::import(&db, dir.path());
    let pool = PgPool::connect(&db).await?;
    let updates: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT update_id FROM revision WHERE is_leaf AND update_type = 'Software' ORDER BY update_id")
            .fetch_all(&pool)
            .await?;
    anyhow::ensure!(updates.len() >= NEEDED + INSTALLED, "the catalog has too few updates");
    let servers = crate::servers::start(&db, &[]).await?;
    let base = servers.base_url.clone();

    eprintln!("ingest: registering {CLIENTS} clients");
    let concurrency = cli.concurrency;
    let limit = Arc::new(Semaphore::new(concurrency));
    let mut registering = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (limit, base) = (limit.clone(), base.clone());
        registering.spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore");
            let mut a = Agent::new(&base);
            a.handshake(true).await.map_err(|f| anyhow::anyhow!("{f}"))?;
            Ok::<_, anyhow::Error>(a)
        });
    }
    let mut agents = Vec::with_capacity(CLIENTS);
    while let Some(a) = registering.join_next().await {
        agents.push(Arc::new(a??));
    }
    let (stored_before,): (i64,) = sqlx::query_as("SELECT count(*) FROM reporting_event").fetch_one(&pool).await?;

    let calls = cli.events.div_ceil(PER_CALL);
    eprintln!("ingest: {calls} ReportEventBatch calls of {PER_CALL} events, {concurrency} at a time");
    let ids: Arc<Vec<uuid::Uuid>> = Arc::new(updates.into_iter().map(|(u,)| u).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let postgres = pg.postmaster_pid().unwrap_or(0);
    let cpu_now = || {
        [
            proc::cpu_seconds(servers.gateway.pid()),
            proc::cpu_seconds(servers.reporting.pid()),
            proc::cpu_seconds(std::process::id()),
            proc::tree_cpu_seconds(postgres),
        ]
    };
    let cpu0 = cpu_now();
    let started = Instant::now();
    let mut sending = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (agents, ids, next) = (agents.clone(), ids.clone(), next.clone());
        sending.spawn(async move {
            loop {
                let call = next.fetch_add(1, Ordering::Relaxed);
                if call >= calls {
                    return Ok::<_, anyhow::Error>(());
                }
                // Each call a different client, each with its own slice of the catalog.
                let agent = &agents[call % agents.len()];
                let at = (call * 7) % (ids.len() - NEEDED - INSTALLED);
                let needed = &ids[at..at + NEEDED];
                let installed = &ids[at + NEEDED..at + NEEDED + INSTALLED];
                agent.report_scan_and_installs(needed, installed).await.map_err(|f| anyhow::anyhow!("{f}"))?;
            }
        });
    }
    while let Some(done) = sending.join_next().await {
        done??;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_now();
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM reporting_event").fetch_one(&pool).await?;
    let acknowledged = calls * PER_CALL;
    anyhow::ensure!(
        (stored - stored_before) as usize == acknowledged,
        "{acknowledged} events acknowledged, {} stored",
        stored - stored_before
    );
    let (statuses,): (i64,) = sqlx::query_as("SELECT count(*) FROM update_status").fetch_one(&pool).await?;
    let (fsync,): (String,) = sqlx::query_as("SELECT current_setting('fsync')").fetch_one(&pool).await?;
    let (sync_commit,): (String,) =
        sqlx::query_as("SELECT current_setting('synchronous_commit')").fetch_one(&pool).await?;
    let rate = acknowledged as f64 / wall;
    let cores = |i: usize| (cpu[i] - cpu0[i]) / wall;

    // The limit: COPY of the same event rows into the same partitioned table, emptied.
    let events = crate::copy::read_out(&pool, "(SELECT * FROM reporting_event)").await?;
    sqlx::query("TRUNCATE reporting_event").execute(&pool).await?;
    sqlx::query("CHECKPOINT").execute(&pool).await?;
    let (copy_secs, _) = crate::copy::write_in(&pool, &db, &[("reporting_event".to_owned(), events.clone())]).await?;
    let (copied,): (i64,) = sqlx::query_as("SELECT count(*) FROM reporting_event").fetch_one(&pool).await?;
    anyhow::ensure!(copied == stored, "COPY wrote {copied} of {stored} events");
    let copy_rate = copied as f64 / copy_secs;
    let ratio = rate / copy_rate;
    Ok(vec![
        row(
            format!("ingest: {rate:.0} events/s"),
            format!(
                "{acknowledged} events in {calls} ReportEventBatch calls of {PER_CALL} from {CLIENTS} clients, {concurrency} \
             at a time, {wall:.1} s, all stored, {statuses} status rows derived (Postgres fsync={fsync}, \
             synchronous_commit={sync_commit}); client-gateway {:.2} cores, reporting {:.2} cores, Postgres {:.2} cores, \
             load generator {:.2} cores",
                cores(0),
                cores(1),
                cores(3),
                cores(2)
            ),
            "≥ 20,000 events/s",
            Some(rate >= 20_000.0),
        ),
        row(
            format!("ingest vs COPY: {ratio:.2}"),
            format!(
                "COPY FROM STDIN (binary, Unix socket) of the same {copied} event rows ({:.0} MB) into the same partitioned \
             table, emptied, one durable transaction: {copy_rate:.0} events/s ({copy_secs:.1} s)",
                events.len() as f64 / 1e6
            ),
            "≥ 0.5",
            Some(ratio >= 0.5),
        ),
    ])
}
