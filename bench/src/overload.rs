//! Overload: client-gateway (default admission limits) is offered rescans open loop, at
//! twice the rate it answered closed loop in the same run. Accepted rate, shed fraction,
//! p99 of the accepted scans, peak memory, and how long after the load drops a lone
//! client scans as fast as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wsus_e2e::PgCluster;
use wsus_e2e::agent::Agent;

use crate::proc;
use crate::stats::{ms, percentile};
use crate::table::{Row, row};

/// Registered clients the load is drawn from; more than can be outstanding at once
/// (the admitted and queued requests, and the refusals on their way back).
const CLIENTS: usize = 1000;
/// Requests in flight in the closed-loop measurement.
const CLOSED_LOOP: usize = 64;

/// What one offered scan came to.
enum Outcome {
    Scanned(Duration),
    Shed,
    Failed(String),
}

fn copy_of(template: &Agent, base: &str) -> Agent {
    let mut a = Agent::new(base);
    a.installed_non_leaf = template.installed_non_leaf.clone();
    a.other_cached = template.other_cached.clone();
    a.received = template.received.clone();
    a
}

async fn rescan(a: &mut Agent) -> Outcome {
    let started = Instant::now();
    match a.scan().await {
        Ok(_) => Outcome::Scanned(started.elapsed()),
        Err(f) if f.error_code == "ServerBusy" => Outcome::Shed,
        Err(f) => Outcome::Failed(f.to_string()),
    }
}

// One function on purpose: a benchmark scenario read top to bottom (closed loop, open loop at twice its rate,
// recovery), each step using what the ones before measured.
pub async fn run(cli: &crate::Cli) -> anyhow::Result<Vec<Row>> {
    let pg = PgCluster::start()?;
    let db = pg.create_database("bench")?;
    let dir = tempfile::tempdir()?;
    let opts = wsus_catalog_gen::Options { revisions: cli.overload_revisions, seed: 5, ..Default::default() };
    eprintln!("overload: generating and importing a {}-revision catalog", cli.overload_revisions);
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None)?;
    wsus_e2e::import(&db, &dir.path().join("docs"));

    let servers = crate::servers::start(&db, &[]).await?;
    let (gateway, reporting, base) = (servers.gateway, servers.reporting, servers.base_url);
    proc::pin(gateway.pid(), 0);
    proc::pin(reporting.pid(), 0);
    proc::pin(std::process::id(), 1);

    let mut template = Agent::new(&base);
    template.handshake(true).await.map_err(|f| anyhow::anyhow!("{f}"))?;
    template.scan().await.map_err(|f| anyhow::anyhow!("{f}"))?;
    eprintln!("overload: preparing {CLIENTS} clients holding {} updates", template.received.len());
    let limit = Arc::new(Semaphore::new(CLOSED_LOOP));
    let mut prepared = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (limit, mut a) = (limit.clone(), copy_of(&template, &base));
        prepared.spawn(async move {
            let _slot = limit.acquire().await.expect("semaphore");
            a.handshake(true).await.map_err(|f| anyhow::anyhow!("{f}"))?;
            Ok::<_, anyhow::Error>(a)
        });
    }
    let mut pool = Vec::with_capacity(CLIENTS);
    while let Some(a) = prepared.join_next().await {
        pool.push(a??);
    }
    let seconds = Duration::from_secs(cli.overload_seconds);

    // Closed loop: what the gateway answers when clients wait for each other.
    let pool = Arc::new(Mutex::new(pool));
    let done = Arc::new(AtomicU64::new(0));
    let mut alone_latencies = Vec::new();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CLOSED_LOOP {
        let (pool, done) = (pool.clone(), done.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < seconds {
                let Some(mut a) = pool.lock().expect("pool").pop() else { break };
                let outcome = rescan(&mut a).await;
                pool.lock().expect("pool").push(a);
                match outcome {
                    Outcome::Scanned(d) => {
                        latencies.push(d);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Shed => {}
                    Outcome::Failed(f) => return Err(anyhow::anyhow!("closed loop: {f}")),
                }
            }
            Ok(latencies)
        });
    }
    while let Some(w) = workers.join_next().await {
        alone_latencies.extend(w??);
    }
    let capacity = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let closed_p50 = percentile(&mut alone_latencies, 50.0);
    let (rss_before, _) = proc::rss(gateway.pid());

    // Open loop at twice that: arrivals on a fixed schedule, whatever the answers.
    let rate = 2.0 * capacity;
    eprintln!("overload: {capacity:.0} scans/s closed loop; offering {rate:.0}/s for {seconds:?}");
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = std::thread::spawn({
        let (peak, sampling, pid) = (peak.clone(), sampling.clone(), gateway.pid());
        move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(proc::rss(pid).0, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let mut offered = tokio::task::JoinSet::new();
    let mut out_of_clients = 0u64;
    let started = Instant::now();
    for i in 0.. {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        if due >= started + seconds {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let Some(mut a) = pool.lock().expect("pool").pop() else {
            out_of_clients += 1;
            continue;
        };
        let pool = pool.clone();
        offered.spawn(async move {
            let outcome = rescan(&mut a).await;
            pool.lock().expect("pool").push(a);
            (outcome, started.elapsed())
        });
    }
    let offered_for = started.elapsed().as_secs_f64();
    let load_dropped = Instant::now();

    // Recovery: a lone client rescans until it is answered as fast as in the closed loop.
    let mut probe = pool.lock().expect("pool").pop().ok_or_else(|| anyhow::anyhow!("no client left to probe"))?;
    let recovered = loop {
        if let Outcome::Scanned(d) = rescan(&mut probe).await
            && d <= closed_p50 * 2
        {
            break load_dropped.elapsed();
        }
        anyhow::ensure!(load_dropped.elapsed() < Duration::from_secs(120), "no recovery within 2 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (mut accepted, mut shed, mut failed) = (Vec::new(), 0u64, Vec::new());
    // Accepted scans a second, until the last offered one was answered.
    let mut answered_for = offered_for;
    while let Some(o) = offered.join_next().await {
        let (outcome, at) = o?;
        answered_for = answered_for.max(at.as_secs_f64());
        match outcome {
            Outcome::Scanned(d) => accepted.push(d),
            Outcome::Shed => shed += 1,
            Outcome::Failed(f) => failed.push(f),
        }
    }
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    let total = accepted.len() as u64 + shed + failed.len() as u64 + out_of_clients;
    let accepted_rate = accepted.len() as f64 / answered_for;
    let p99 = percentile(&mut accepted, 99.0);
    let mib = |b: u64| b / (1 << 20);
    if let Some(f) = failed.first() {
        eprintln!("overload: {} scans failed otherwise, e.g. {f}", failed.len());
    }
    let rows = vec![
        row(
            format!("overload: {accepted_rate:.0} scans/s accepted"),
            format!(
                "{:.0}/s offered open loop for {offered_for:.1} s (2 × {capacity:.0}/s closed loop); {:.1}% shed with \
                 ServerBusy, {} failed otherwise, {out_of_clients} not sent (all {CLIENTS} clients busy)",
                total as f64 / offered_for,
                100.0 * shed as f64 / total.max(1) as f64,
                failed.len()
            ),
            "no other failures",
            Some(failed.is_empty()),
        ),
        row("overload accepted scans", format!("p99 {} (closed loop p50 {})", ms(p99), ms(closed_p50)), "", None),
        row(
            "overload client-gateway memory",
            format!("RSS {} MiB before, peak {} MiB", mib(rss_before), mib(peak.load(Ordering::Relaxed))),
            "",
            None,
        ),
        row(
            "overload recovery",
            format!(
                "{:.2} s after the load dropped, a lone rescan within 2 × the closed-loop p50",
                recovered.as_secs_f64()
            ),
            "",
            None,
        ),
    ];
    drop(gateway);
    drop(reporting);
    drop(pg);
    Ok(rows)
}
