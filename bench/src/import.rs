//! Sync import: a downstream `sync-worker sync --once` takes a whole generated catalog
//! from an upstream client-gateway (MS-WSUSSS) into an empty database, against a Postgres
//! that flushes every commit. Its rate is set beside Postgres COPY (binary) of the same
//! rows into copies of the same tables, with their indexes, in the same database.
//!
//! With `WSUS_BENCH_IMPORT_PERF=<file>` set, a system-wide perf profile of each sync is
//! written to `<file>.<revisions>`; the pids printed select this benchmark's processes in it.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use anyhow::Context as _;
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;
use wsus_e2e::PgCluster;

use crate::Cli;
use crate::table::{Row, row};
use crate::{proc, servers};

const SEED: u64 = 1;
const RATE_TARGET: f64 = 1000.0;
const COPY_TARGET: f64 = 0.5;

pub async fn run(cli: &Cli) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let started = Instant::now();
    // Durable: a sync that skipped its fsyncs would measure nothing a real server does.
    let pg = PgCluster::start_durable()?;
    eprintln!("import: cluster up in {:.0} s", started.elapsed().as_secs_f64());
    for (i, &n) in cli.import_revisions.iter().enumerate() {
        rows.extend(one_size(&pg, n, i).await?);
        eprintln!("import: {:.0} s so far", started.elapsed().as_secs_f64());
    }
    drop(pg);
    eprintln!("import: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(rows)
}

/// Upstream A with the catalog; downstream B syncs it all; then COPY of what B got.
// One function on purpose: a benchmark scenario read top to bottom (upstream, timed sync, COPY of what it got),
// each step using what the ones before set up.
async fn one_size(pg: &PgCluster, n: usize, i: usize) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let docs = dir.path().join("docs");
    let started = Instant::now();
    eprintln!("import: generating a {n}-revision catalog");
    let (documents, files) = wsus_catalog_gen::write(
        &wsus_catalog_gen::Options { revisions: n, seed: SEED, ..Default::default() },
        &docs,
        None,
    )?;
    let xml_bytes: u64 = std::fs::read_dir(&docs)?.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
    let generated = started.elapsed().as_secs_f64();

    let (db_a, db_b) = (pg.create_database(&format!("uss{i}"))?, pg.create_database(&format!("dss{i}"))?);
    eprintln!("import: importing it into the upstream's database");
    let at = Instant::now();
    wsus_e2e::import(&db_a, &docs);
    let imported = at.elapsed().as_secs_f64();
    // The upstream's autovacuum after the import is not to run during the timed sync.
    let pool_a = PgPool::connect(&db_a).await?;
    sqlx::query("VACUUM (ANALYZE)").execute(&pool_a).await?;
    pool_a.close().await;

    // The upstream: a gateway (with its reporting service, as a real server has) on A.
    let upstream = servers::start(&db_a, &[("WSUS_SERVER_FQDN", "uss.bench.test".to_owned())]).await?;

    // B: the schema in place first, so the sync's time is the sync's alone.
    let b_env = HashMap::from([("DATABASE_URL", db_b.clone())]);
    let (ok, out, err) = wsus_e2e::run_binary("sync-worker", &["migrate"], &b_env);
    anyhow::ensure!(ok, "sync-worker migrate: {out}{err}");
    let pool_b = PgPool::connect(&db_b).await?;
    let before = row_counts(&pool_b).await?;
    let postmaster = pg.postmaster_pid().context("the postmaster's pid")?;
    // Both timed parts start with no dirty pages of earlier work left to write.
    sqlx::query("CHECKPOINT").execute(&pool_b).await?;

    eprintln!("import: syncing {documents} revisions from the upstream");
    let content = dir.path().join("content-b");
    let perf_out = std::env::var_os("WSUS_BENCH_IMPORT_PERF").map(|p| {
        let mut p = p;
        p.push(format!(".{n}"));
        p
    });
    let perf = perf_out.as_ref().and_then(|out| {
        std::process::Command::new("perf")
            .args(["record", "-F", "499", "-g", "-a", "-o"])
            .arg(out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()
    });
    // Other work on the machine skews a wall-clock rate: say how much there was.
    let load = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split(' ').next().map(str::to_owned));
    let (gw_cpu0, pg_cpu0, children0) =
        (proc::cpu_seconds(upstream.gateway.pid()), proc::tree_cpu_seconds(postmaster), proc::reaped_children_cpu());
    let at = Instant::now();
    let child = tokio::process::Command::new(wsus_e2e::binary("sync-worker"))
        .args(["sync", "--once", "--json"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs([
            ("DATABASE_URL", db_b.clone()),
            ("WSUS_UPSTREAM_URL", upstream.base_url.clone()),
            ("WSUS_CONTENT_DIR", content.display().to_string()),
            ("WSUS_SERVER_FQDN", "dss.bench.test".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(out) = &perf_out {
        // A system-wide profile holds other work too: these select this benchmark's (`--pid`).
        eprintln!(
            "import: profiling into {}: sync-worker {}, client-gateway {}, postmaster {postmaster} (backends are its children)",
            out.to_string_lossy(),
            child.id().unwrap_or_default(),
            upstream.gateway.pid()
        );
    }
    let output = child.wait_with_output().await?;
    let sync_secs = at.elapsed().as_secs_f64();
    // Only sync-worker was reaped meanwhile: the growth of the children's time is its CPU.
    let sync_cpu = proc::reaped_children_cpu() - children0;
    let gw_cpu = proc::cpu_seconds(upstream.gateway.pid()) - gw_cpu0;
    let pg_cpu = proc::tree_cpu_seconds(postmaster) - pg_cpu0;
    if let Some(mut perf) = perf {
        // perf writes its file when interrupted.
        let _ = std::process::Command::new("kill").args(["-INT", &perf.id().to_string()]).status();
        let _ = perf.wait();
    }
    anyhow::ensure!(
        output.status.success(),
        "sync-worker sync: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let outcome = stdout.trim().lines().last().unwrap_or_default();
    let synced = field(outcome, "revisions_new").context("sync-worker's summary")?
        + field(outcome, "revisions_updated").unwrap_or(0);
    anyhow::ensure!(synced as usize >= documents, "the sync brought {synced} of {documents} revisions: {outcome}");
    drop(upstream);

    // The tables the sync wrote rows into, and COPY of those rows.
    let after = row_counts(&pool_b).await?;
    let written: Vec<(String, i64)> = after
        .iter()
        .filter(|(t, c)| **c > before.get(*t).copied().unwrap_or(0))
        .map(|(t, c)| (t.clone(), *c))
        .collect();
    sqlx::query("VACUUM (ANALYZE)").execute(&pool_b).await?;
    sqlx::query("CHECKPOINT").execute(&pool_b).await?;
    let copy = copy_baseline(&pool_b, &db_b, &written).await?;
    pool_b.close().await;

    let rate = synced as f64 / sync_secs;
    let ratio = copy.seconds / sync_secs;
    let total_rows: i64 = written.iter().map(|(_, c)| c).sum();
    let tables: Vec<String> = written.iter().map(|(t, c)| format!("{t} {c}")).collect();
    let profile = format!(
        "generated catalog, seed {SEED}: {documents} revisions, {files} files, {:.0} MB of XML",
        xml_bytes as f64 / 1e6
    );
    eprintln!(
        "import: {n}: generated in {generated:.1} s, imported upstream in {imported:.1} s, synced in {sync_secs:.1} s, \
         COPY {:.1} s; whole size {:.0} s",
        copy.seconds,
        started.elapsed().as_secs_f64()
    );
    Ok(vec![
        row(
            format!("sync import {n} revisions: {rate:.0} rev/s"),
            format!(
                "{synced} revisions in {sync_secs:.1} s, sync-worker process start to exit, no pinning \
                 ({profile}; fsync on); CPU: sync-worker {sync_cpu:.1} s, client-gateway {gw_cpu:.1} s, \
                 Postgres cluster (both databases, background workers) {pg_cpu:.1} s; load average before {}; setup: generated {generated:.0} s, \
                 upstream import {imported:.0} s",
                load.as_deref().unwrap_or("?")
            ),
            "≥ 1,000 rev/s",
            Some(rate >= RATE_TARGET),
        ),
        row(
            format!("sync import {n} vs COPY: {ratio:.2}"),
            format!(
                "COPY FROM STDIN (binary, Unix socket) of the same {total_rows} rows ({:.0} MB) into indexed copies (no foreign keys) of {} tables, \
                 one durable transaction: {:.1} s vs sync {sync_secs:.1} s ({})",
                copy.bytes as f64 / 1e6,
                written.len(),
                copy.seconds,
                tables.join(", ")
            ),
            "≥ 0.5",
            Some(ratio >= COPY_TARGET),
        ),
    ])
}

/// Rows of every ordinary table.
async fn row_counts(pool: &PgPool) -> anyhow::Result<BTreeMap<String, i64>> {
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND s.nspname = current_schema() ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    let mut counts = BTreeMap::new();
    for (t,) in tables {
        let (c,): (i64,) =
            sqlx::query_as(AssertSqlSafe(format!("SELECT count(*) FROM {}", ident(&t)))).fetch_one(pool).await?;
        counts.insert(t, c);
    }
    Ok(counts)
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

struct Copied {
    seconds: f64,
    bytes: usize,
}

/// Each table's rows read out in COPY binary format (untimed), then written into an empty
/// `LIKE … INCLUDING ALL` copy (indexes and defaults; no foreign keys or triggers) of it,
/// all in one transaction whose commit is part of the time.
async fn copy_baseline(pool: &PgPool, url: &str, tables: &[(String, i64)]) -> anyhow::Result<Copied> {
    let mut data = Vec::new();
    for (t, _) in tables {
        let copy = ident(&format!("bench_copy_{t}"));
        sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {copy}"))).execute(pool).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE TABLE {copy} (LIKE {} INCLUDING ALL)", ident(t))))
            .execute(pool)
            .await?;
        data.push((copy, crate::copy::read_out(pool, &ident(t)).await?));
    }
    let (seconds, times) = crate::copy::write_in(pool, url, &data).await?;
    // Each table's time, to set beside the sync's statements when looking for what costs.
    let each: Vec<String> = tables.iter().zip(times).map(|((t, _), s)| format!("{t} {s:.2} s")).collect();
    eprintln!("import: COPY {}", each.join(", "));
    for (copy, _) in &data {
        sqlx::query(AssertSqlSafe(format!("DROP TABLE {copy}"))).execute(pool).await?;
    }
    Ok(Copied { seconds, bytes: data.iter().map(|(_, b)| b.len()).sum() })
}

/// A number field of sync-worker's one-line JSON summary.
fn field(summary: &str, key: &str) -> Option<u64> {
    let rest = summary.split(&format!("\"{key}\":")).nth(1)?;
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}
