//! Memory: client-gateway's RSS with a large generated catalog loaded, and with a profile
//! of Windows-sized Core fragments where the fragment cache's bound, not the catalog, must
//! set the memory. Clients scan (SyncUpdates rounds, GetExtendedUpdateInfo) so the cache
//! fills as it does in service.

use std::time::Duration;

use sqlx::PgPool;
use wsus_e2e::PgCluster;
use wsus_e2e::agent::Agent;

use crate::proc;
use crate::table::{Row, row};
use crate::{Cli, storm};

const MIB: u64 = 1 << 20;
/// What the gateway may hold with the large catalog.
const TARGET: u64 = 1 << 30;
/// What a gateway may hold beyond its catalog and fragment cache: answers being written
/// (a page of Windows-sized updates is several MiB), the allocator's slack.
const OVERHEAD: u64 = 128 * MIB;
/// Simulated machines that scan the large catalog, each with its own products.
const SCANNERS: usize = 6;

pub async fn run(cli: &Cli) -> anyhow::Result<Vec<Row>> {
    let pg = PgCluster::start()?;
    let mut rows = Vec::new();

    // The large catalog at the default bound.
    let db = pg.create_database("memory_large")?;
    let dir = tempfile::tempdir()?;
    eprintln!("memory: generating and importing a {}-revision catalog", cli.memory_revisions);
    let opts = wsus_catalog_gen::Options { revisions: cli.memory_revisions, seed: 11, ..Default::default() };
    wsus_catalog_gen::write(&opts, dir.path(), None)?;
    wsus_e2e::import(&db, dir.path());
    drop(dir);
    let bound = 256 * MIB;
    let m = measure(&db, bound, SCANNERS, cli.memory_revisions).await?;
    rows.push(row(
        format!("memory: {} MiB with {} revisions", m.peak / MIB, cli.memory_revisions),
        format!(
            "client-gateway RSS {} MiB with the catalog loaded, {} MiB (peak {} MiB) after {SCANNERS} machines scanned \
             ({} SyncUpdates pages, {} MiB fragment cache, bound {} MiB; generated catalog, average Core {} bytes)",
            m.loaded / MIB,
            m.after / MIB,
            m.peak / MIB,
            m.pages,
            m.cache / MIB,
            bound / MIB,
            m.average_core
        ),
        "≤ 1 GiB",
        Some(m.peak <= TARGET),
    ));

    // Windows-sized Core fragments: the catalog's Core bytes are several times the bound,
    // and the gateway's memory follows the bound.
    let db = pg.create_database("memory_windows")?;
    let dir = tempfile::tempdir()?;
    let revisions = cli.memory_windows_revisions;
    eprintln!("memory: generating and importing {revisions} revisions with {} KiB Core fragments", cli.core_kib);
    let opts = windows_sized(revisions, cli.core_kib, 12)?;
    wsus_catalog_gen::write(&opts, dir.path(), None)?;
    wsus_e2e::import(&db, dir.path());
    drop(dir);
    for bound in [64 * MIB, 256 * MIB] {
        let m = measure(&db, bound, 2, revisions).await?;
        rows.push(row(
            format!("memory, Windows-sized Core, bound {} MiB: {} MiB", bound / MIB, m.peak / MIB),
            format!(
                "client-gateway RSS {} MiB loaded, {} MiB (peak {} MiB) after 2 machines took every update of their products ({} pages, \
                 {} MiB of Core served; cache {} MiB; {revisions} revisions, average Core {} KiB)",
                m.loaded / MIB,
                m.after / MIB,
                m.peak / MIB,
                m.pages,
                m.core_served / MIB,
                m.cache / MIB,
                m.average_core / 1024
            ),
            format!("≤ loaded + bound + {} MiB", OVERHEAD / MIB),
            // Clients took more Core than the bound: the bound, not the catalog, held.
            Some(m.peak <= m.loaded + bound + OVERHEAD && m.core_served > bound),
        ));
    }
    drop(pg);
    Ok(rows)
}

/// Options of a generated catalog whose Core fragments average `core_kib` over all its
/// revisions, as the real Windows 11 product's do. Only leaf updates carry big rules: they
/// are padded so that the average over all revisions comes out right.
pub fn windows_sized(revisions: usize, core_kib: usize, seed: u64) -> anyhow::Result<wsus_catalog_gen::Options> {
    let mut opts = wsus_catalog_gen::Options { revisions, seed, ..Default::default() };
    let mut leaves = 0usize;
    wsus_catalog_gen::generate(&opts, |d| {
        leaves += usize::from(padded(&d));
        Ok(())
    })?;
    let per_leaf = core_kib * 1024 * revisions / leaves.max(1);
    // The Core fragment keeps less of the rules than the document holds (each rule's
    // repeated namespace declaration goes): measure it on one padded leaf and scale.
    opts.core_bytes = per_leaf;
    let mut sampled = None;
    let _ = wsus_catalog_gen::generate(&opts, |d| {
        if padded(&d) {
            let core = wsus_metadata::fragments::core(&wsus_metadata::Update::parse(d.xml)?).len();
            sampled = Some(core);
            anyhow::bail!("sampled");
        }
        Ok(())
    });
    if let Some(core) = sampled.filter(|c| *c > 0) {
        opts.core_bytes = (per_leaf as f64 * per_leaf as f64 / core as f64) as usize;
    }
    Ok(opts)
}

struct Measured {
    loaded: u64,
    after: u64,
    peak: u64,
    cache: u64,
    pages: usize,
    core_served: u64,
    average_core: u64,
}

/// Starts a gateway on `db` (a catalog of `revisions`) with the fragment cache bounded at
/// `bound`, lets `machines` clients scan, each with its own run of as many products as a
/// client may name the detectoids of, and reads the gateway's memory.
async fn measure(db: &str, bound: u64, machines: usize, revisions: usize) -> anyhow::Result<Measured> {
    let pool = PgPool::connect(db).await?;
    let (average_core,): (Option<f64>,) =
        sqlx::query_as("SELECT avg(length(body))::float8 FROM fragment WHERE kind = 'Core' AND locale = ''")
            .fetch_one(&pool)
            .await?;
    let roots = storm::product_roots(&pool).await?;
    // A product brings a chain of detectoids (a twelfth of the catalog, spread over the
    // products), and a SyncUpdates may name at most 400 installed non-leaf updates.
    let chain = (revisions / 12 / roots.len().max(1)).max(1);
    let products = (300 / chain).clamp(1, roots.len().max(1));
    pool.close().await;
    let servers = crate::servers::start(db, &[("WSUS_FRAGMENT_CACHE_BYTES", bound.to_string())]).await?;
    let (gateway, base) = (&servers.gateway, servers.base_url.clone());
    let http = reqwest::Client::new();
    // Let the allocator settle after the index build.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (loaded, _) = proc::rss(gateway.pid());
    let mut scans = tokio::task::JoinSet::new();
    for m in 0..machines {
        let mut a = Agent::new(&base);
        let mine = |i: usize| (i + roots.len() - (m * products) % roots.len()) % roots.len() < products;
        a.absent = roots.iter().enumerate().filter(|(i, _)| !mine(*i)).map(|(_, u)| *u).collect();
        scans.spawn(async move {
            a.handshake(true).await.map_err(|f| anyhow::anyhow!("{f}"))?;
            let scan = a.scan().await.map_err(|f| anyhow::anyhow!("{f}"))?;
            let leaves: Vec<i32> =
                scan.new.iter().copied().filter(|id| a.received.get(id).is_some_and(|r| r.is_leaf)).collect();
            for batch in leaves.chunks(50) {
                a.extended_info(batch).await.map_err(|f| anyhow::anyhow!("{f}"))?;
            }
            let core: usize = a.received.values().map(|r| r.core.len()).sum();
            Ok::<_, anyhow::Error>((scan.pages, core as u64))
        });
    }
    let (mut pages, mut core_served) = (0, 0);
    while let Some(done) = scans.join_next().await {
        let (p, c) = done??;
        pages += p;
        core_served += c;
    }
    let (after, peak) = proc::rss(gateway.pid());
    // The gauge is refreshed every ten seconds.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let metrics = http.get(format!("{base}/metrics")).send().await?.text().await?;
    let cache = metrics
        .lines()
        .find(|l| l.starts_with("wsus_fragment_cache_bytes"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    drop(servers);
    Ok(Measured { loaded, after, peak, cache, pages, core_served, average_core: average_core.unwrap_or(0.0) as u64 })
}

/// Software updates with a file: the documents the generator pads (not drivers).
fn padded(d: &wsus_catalog_gen::Document) -> bool {
    d.file.is_some()
        && d.xml
            .contains("Handler=\"http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation\"")
}
