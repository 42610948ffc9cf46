//! The Patch-Tuesday storm: N simulated clients hold the cache of a client that synced a
//! generated catalog; ten new revisions are published and approved; every client rescans
//! (SyncUpdates rounds, GetExtendedUpdateInfo, ReportEventBatch). Then the same
//! SyncUpdates request against the gateway and against an echo server (the limit).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use wsus_e2e::agent::Agent;
use wsus_e2e::{PgCluster, free_port};

use crate::echo::{self, Request1};
use crate::proc;
use crate::stats::{ms, percentile};
use crate::table::{Row, row};

/// About how many updates a real Windows client holds.
const TARGET_CACHED: usize = 1400;
/// InstalledNonLeafUpdateIDs a SyncUpdates may carry (as a real WSUS allows).
const MAX_INSTALLED_NON_LEAF: usize = 400;

pub struct StormConfig {
    pub clients: usize,
    pub concurrency: usize,
    pub revisions: usize,
    /// How long each side of the echo comparison runs.
    pub echo_seconds: u64,
    /// Record a CPU profile of client-gateway (perf) while it answers the repeated SyncUpdates.
    pub perf: Option<std::path::PathBuf>,
    /// Windows-sized Core fragments (average KiB a revision) and the fragment cache's
    /// bound for them; None: the generator's small fragments and the default bound.
    pub windows_sized: Option<(usize, u64)>,
}

impl StormConfig {
    /// What the rows name the run by.
    fn label(&self) -> String {
        match self.windows_sized {
            None => "storm".to_owned(),
            Some((kib, bound)) => format!("storm, Windows-sized Core ({kib} KiB, cache {} MiB)", bound >> 20),
        }
    }
}

/// Writes the generated catalog: all but the last ten documents to `base`, those ten (the
/// Patch Tuesday) to `late`.
fn write_catalog(cfg: &StormConfig, base: &Path, late: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(base)?;
    std::fs::create_dir_all(late)?;
    let revisions = cfg.revisions + 10;
    let opts = match cfg.windows_sized {
        None => wsus_catalog_gen::Options { revisions, seed: 1, ..Default::default() },
        Some((kib, _)) => crate::memory::windows_sized(revisions, kib, 1)?,
    };
    let mut docs = Vec::new();
    wsus_catalog_gen::generate(&opts, |d| {
        docs.push((d.file_name(), d.xml));
        Ok(())
    })?;
    let split = docs.len().saturating_sub(10);
    for (i, (name, xml)) in docs.into_iter().enumerate() {
        std::fs::write(if i < split { base.join(name) } else { late.join(name) }, xml)?;
    }
    Ok(())
}

/// The root detectoid of each product of a generated catalog: a machine without it has
/// none of the product's updates.
pub async fn product_roots(pool: &PgPool) -> anyhow::Result<Vec<uuid::Uuid>> {
    let roots: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "SELECT r.update_id FROM revision r WHERE r.update_type = 'Detectoid' \
         AND NOT EXISTS (SELECT 1 FROM prerequisite p WHERE p.revision_id = r.revision_id) ORDER BY r.update_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(roots.into_iter().map(|(u,)| u).collect())
}

// One function on purpose: a benchmark scenario read top to bottom (catalog, clients, Patch Tuesday, storm, echo
// limit), each step using what the ones before set up.
pub async fn run(cfg: &StormConfig) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let pg = PgCluster::start()?;
    let db = pg.create_database("bench")?;
    let dir = tempfile::tempdir()?;
    let (base, late) = (dir.path().join("base"), dir.path().join("late"));
    eprintln!("storm: generating a {}-revision catalog", cfg.revisions);
    write_catalog(cfg, &base, &late)?;
    eprintln!("storm: importing it");
    wsus_e2e::import(&db, &base);
    let pool = PgPool::connect(&db).await?;
    wsus_e2e::approve_bundles(&pool, 20, true).await?;

    let bound = cfg.windows_sized.map(|(_, bound)| ("WSUS_FRAGMENT_CACHE_BYTES", bound.to_string()));
    let servers = crate::servers::start(&db, bound.as_slice()).await?;
    let (gateway, reporting, base_url) = (servers.gateway, servers.reporting, servers.base_url);
    // The servers on the first core, the load generator on the second.
    proc::pin(gateway.pid(), 0);
    proc::pin(reporting.pid(), 0);
    proc::pin(std::process::id(), 1);
    let http = reqwest::Client::new();

    // The client every simulated one is a copy of: a machine with a few of the catalog's
    // products (the root detectoid of each other product evaluates as not installed), so
    // it holds about as many updates as a real Windows client (~1,400), after a full scan.
    let roots: Vec<(uuid::Uuid,)> = product_roots(&pool).await?.into_iter().map(|u| (u,)).collect();
    let keep = ((roots.len() * TARGET_CACHED).div_ceil(cfg.revisions)).clamp(1, roots.len().max(1));
    // The products of the coming Patch Tuesday are among the machine's.
    let mut needed: Vec<uuid::Uuid> = Vec::new();
    for entry in std::fs::read_dir(&late)?.flatten() {
        let doc = wsus_metadata::Update::parse(std::fs::read_to_string(entry.path())?)?;
        needed.extend(doc.prerequisites.iter().filter(|c| !c.is_category).flat_map(|c| c.update_ids.iter().copied()));
    }
    let patch_roots: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "WITH RECURSIVE up(u) AS (SELECT unnest($1::uuid[]) \
             UNION SELECT p.update_id FROM up JOIN revision r ON r.update_id = up.u \
             JOIN prerequisite p ON p.revision_id = r.revision_id AND NOT p.is_category) \
         SELECT DISTINCT u FROM up JOIN revision r ON r.update_id = up.u WHERE r.update_type = 'Detectoid' \
           AND NOT EXISTS (SELECT 1 FROM prerequisite p WHERE p.revision_id = r.revision_id)",
    )
    .bind(&needed)
    .fetch_all(&pool)
    .await?;
    // Each product brings its chain of detectoids, all installed non-leaf updates, and a
    // client may name at most 400 of those: no more products than fit.
    let chain = (cfg.revisions / 12 / roots.len().max(1)).max(1);
    let keep = keep.min((MAX_INSTALLED_NON_LEAF * 3 / 4 / chain).max(1));
    let mut kept: Vec<uuid::Uuid> = patch_roots.into_iter().map(|(u,)| u).take(keep).collect();
    for (root,) in &roots {
        if kept.len() >= keep {
            break;
        }
        if !kept.contains(root) {
            kept.push(*root);
        }
    }
    eprintln!("storm: the machine has {} of {} products", kept.len(), roots.len());
    let mut template = Agent::new(&base_url);
    template.absent = roots.iter().map(|(u,)| *u).filter(|u| !kept.contains(u)).collect();
    template.handshake(true).await.map_err(|f| anyhow::anyhow!("{f}"))?;
    let first = template.scan().await.map_err(|f| anyhow::anyhow!("{f}"))?;
    let cached = template.installed_non_leaf.len() + template.other_cached.len();
    eprintln!("storm: a full scan brought {} updates in {} pages; {cached} cached ids", first.new.len(), first.pages);

    // N clients with that cache, registered, each having scanned once (so its cookie says so).
    // Each holds of every Core fragment only its identity (what it reports by): 2,000
    // copies of Windows-sized fragments would not fit in memory.
    for r in template.received.values_mut() {
        let identity = r.core.find('>').map_or(r.core.len(), |i| i + 1);
        r.core.truncate(identity);
    }
    eprintln!("storm: preparing {} clients", cfg.clients);
    let limit = Arc::new(Semaphore::new(cfg.concurrency));
    let mut prepared = tokio::task::JoinSet::new();
    for _ in 0..cfg.clients {
        let (limit, url) = (limit.clone(), base_url.clone());
        let (non_leaf, other, received, absent) = (
            template.installed_non_leaf.clone(),
            template.other_cached.clone(),
            template.received.clone(),
            template.absent.clone(),
        );
        prepared.spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore");
            let mut a = Agent::new(&url);
            a.installed_non_leaf = non_leaf;
            a.other_cached = other;
            a.received = received;
            a.absent = absent;
            a.handshake(true).await.map_err(|f| anyhow::anyhow!("{f}"))?;
            a.scan().await.map_err(|f| anyhow::anyhow!("{f}"))?;
            a.timings.lock().expect("timings").clear();
            Ok::<_, anyhow::Error>(a)
        });
    }
    let mut agents = Vec::with_capacity(cfg.clients);
    while let Some(a) = prepared.join_next().await {
        agents.push(a??);
    }

    // Patch Tuesday: ten new revisions, the new bundles approved.
    let version_before = wsus_store::catalog::version(&pool).await?.version;
    wsus_e2e::import(&db, &late);
    wsus_e2e::approve_bundles(&pool, 10, true).await?;
    let version = wsus_store::catalog::version(&pool).await?.version;
    anyhow::ensure!(version > version_before, "the new revisions did not change the catalog");
    // Wait until the gateway serves them (it reloads on the change notification).
    let mut probe = Agent::new(&base_url);
    probe.installed_non_leaf = template.installed_non_leaf.clone();
    probe.other_cached = template.other_cached.clone();
    probe.received = template.received.clone();
    probe.absent = template.absent.clone();
    probe.handshake(true).await.map_err(|f| anyhow::anyhow!("{f}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        probe.scan().await.map_err(|f| anyhow::anyhow!("{f}"))?;
        if wsus_e2e::served_catalog_version(&http, &base_url).await? >= version {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the gateway did not load catalog version {version}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The storm.
    eprintln!("storm: {} clients rescan, {} at a time", cfg.clients, cfg.concurrency);
    let postgres = pg.postmaster_pid().unwrap_or(0);
    let (gw_cpu0, self_cpu0, rep_cpu0, pg_cpu0) = (
        proc::cpu_seconds(gateway.pid()),
        proc::cpu_seconds(std::process::id()),
        proc::cpu_seconds(reporting.pid()),
        proc::tree_cpu_seconds(postgres),
    );
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for mut a in agents {
        let limit = limit.clone();
        running.spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore");
            let scan = a.scan().await.map_err(|f| anyhow::anyhow!("{f}"))?;
            let leaves: Vec<i32> =
                scan.new.iter().copied().filter(|id| a.received.get(id).is_some_and(|r| r.is_leaf)).collect();
            for batch in leaves.chunks(50) {
                a.extended_info(batch).await.map_err(|f| anyhow::anyhow!("{f}"))?;
            }
            a.report_scan_and_installs(&[], &[]).await.map_err(|f| anyhow::anyhow!("{f}"))?;
            Ok::<_, anyhow::Error>((a, scan.new.len()))
        });
    }
    let mut agents = Vec::new();
    let mut new_per_client = Vec::new();
    while let Some(done) = running.join_next().await {
        let (a, n) = done??;
        new_per_client.push(n);
        agents.push(a);
    }
    let wall = started.elapsed().as_secs_f64();
    let gw_cpu = proc::cpu_seconds(gateway.pid()) - gw_cpu0;
    let rep_cpu = proc::cpu_seconds(reporting.pid()) - rep_cpu0;
    let self_cpu = proc::cpu_seconds(std::process::id()) - self_cpu0;
    let pg_cpu = proc::tree_cpu_seconds(postgres) - pg_cpu0;
    let (gw_rss, gw_peak) = proc::rss(gateway.pid());
    let scans = agents.len() as f64 / wall;
    anyhow::ensure!(new_per_client.iter().all(|n| *n > 0), "a client found nothing new: the storm did not happen");

    let mut by_op: HashMap<String, Vec<Duration>> = HashMap::new();
    for a in &agents {
        for (op, d) in a.timings.lock().expect("timings").iter() {
            by_op.entry(op.clone()).or_default().push(*d);
        }
    }
    let profile = format!("generated catalog, {} revisions + 10 new; {cached} cached ids a client", cfg.revisions);
    let label = cfg.label();
    rows.push(row(
        format!("{label}: {scans:.0} scans/s"),
        format!("{} clients, {} at a time, {wall:.1} s ({profile})", agents.len(), cfg.concurrency),
        if cfg.windows_sized.is_none() { "≥ 1,000 scans/s" } else { "" },
        cfg.windows_sized.is_none().then_some(scans >= 1000.0),
    ));
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by(|a, b| a.0.cmp(&b.0));
    for (op, mut samples) in ops {
        let (p50, p99) = (percentile(&mut samples, 50.0), percentile(&mut samples, 99.0));
        let judged = op == "SyncUpdates" && cfg.windows_sized.is_none();
        let target = if judged { "p99 ≤ 50 ms" } else { "" };
        let met = judged.then_some(p99 <= Duration::from_millis(50));
        rows.push(row(
            format!("{label} {op}"),
            format!("{} calls, p50 {}, p99 {}", samples.len(), ms(p50), ms(p99)),
            target,
            met,
        ));
    }
    // What a scan costs the whole system: the figure that sets the cores of a large estate.
    let per_scan_ms = (gw_cpu + rep_cpu + pg_cpu) * 1000.0 / agents.len() as f64;
    rows.push(row(
        format!("{label} CPU: {per_scan_ms:.2} ms a scan"),
        format!(
            "client-gateway + reporting + Postgres CPU per complete scan; client-gateway {:.2} cores, reporting {:.2} \
             cores, Postgres {:.2} cores, load generator {:.2} cores",
            gw_cpu / wall,
            rep_cpu / wall,
            pg_cpu / wall,
            self_cpu / wall
        ),
        "",
        None,
    ));
    rows.push(row(
        format!("{label} client-gateway memory"),
        format!("RSS {} MiB (peak {} MiB)", gw_rss / (1 << 20), gw_peak / (1 << 20)),
        "",
        None,
    ));

    if cfg.windows_sized.is_some() {
        return Ok(rows);
    }
    // The limit: one client's SyncUpdates, against the gateway and against an echo server.
    let (path, action, body) = agents[0].sync_updates_request();
    let request = Request1 { url: format!("{base_url}{path}"), action, body };
    let answer = echo::record(&request).await?;
    let recorder = cfg.perf.as_ref().map(|out| {
        std::process::Command::new("perf")
            .args(["record", "-F", "499", "-g", "-o"])
            .arg(out)
            .args(["-p", &gateway.pid().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
    });
    let against_gateway = echo::blast(&request, cfg.concurrency.min(64), Duration::from_secs(cfg.echo_seconds)).await;
    if let Some(Ok(mut perf)) = recorder {
        // perf writes its file when interrupted.
        let _ = std::process::Command::new("kill").args(["-INT", &perf.id().to_string()]).status();
        let _ = perf.wait();
    }
    let echo_port = free_port();
    let answer_file = dir.path().join("answer.bin");
    std::fs::write(&answer_file, &answer.body)?;
    let exe = std::env::current_exe()?;
    let mut echo_server = std::process::Command::new(exe)
        .args(["echo", "--port", &echo_port.to_string(), "--response", answer_file.to_str().context("path")?])
        .args(answer.xpress.then_some("--xpress"))
        .spawn()?;
    proc::pin(echo_server.id(), 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let echo_request = Request1 { url: format!("http://127.0.0.1:{echo_port}{path}"), ..request };
    let against_echo = echo::blast(&echo_request, cfg.concurrency.min(64), Duration::from_secs(cfg.echo_seconds)).await;
    let _ = echo_server.kill();
    let ratio = against_gateway / against_echo.max(1.0);
    rows.push(row(
        format!("SyncUpdates vs echo: {ratio:.2}"),
        format!(
            "gateway {against_gateway:.0}/s, echo server {against_echo:.0}/s ({} response bytes{})",
            answer.body.len(),
            if answer.xpress { ", Xpress" } else { "" }
        ),
        "≥ 0.5",
        Some(ratio >= 0.5),
    ));
    drop(gateway);
    drop(reporting);
    drop(pg);
    Ok(rows)
}
