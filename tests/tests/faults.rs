//! Faults injected under load, end to end: the database restarted while clients report,
//! reporting killed while clients report, a downstream sync-worker killed half-way
//! through a file, and a downstream content volume that fills up. Nothing acknowledged is
//! lost or stored twice, and no partial or corrupt file is ever served.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha1::Digest as _;
use sqlx::PgPool;
use wsus_e2e::agent::Agent;
use wsus_e2e::store::{StoreKind, TestStore};
use wsus_e2e::{PgCluster, Service, System, free_port, run_binary, wait_for_status};

const NIL: &str = "00000000-0000-0000-0000-000000000000";

// ---------------------------------------------------------------------------------------
// Clients under load
// ---------------------------------------------------------------------------------------

/// What one simulated client saw while a fault came and went.
#[derive(Default)]
struct Tally {
    /// Event instance ids the gateway acknowledged, with when.
    acked: Vec<(String, Instant)>,
    /// Event instance ids of batches told ServerBusy at least once, then sent again.
    retried: Vec<String>,
    /// When ServerBusy answers came.
    busy: Vec<Instant>,
    /// Anything else that went wrong.
    other: Vec<String>,
}

/// Repeats `call` while the answer is ServerBusy (as the client's retry does); any other
/// failure is recorded and given up on.
async fn until_accepted<T, F, Fut>(tally: &Mutex<Tally>, what: &str, mut call: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, wsus_e2e::agent::Fault>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match call().await {
            Ok(v) => return Some(v),
            Err(f) if f.error_code == "ServerBusy" && f.status == 500 && Instant::now() < deadline => {
                tally.lock().unwrap().busy.push(Instant::now());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(f) => {
                tally.lock().unwrap().other.push(format!("{what}: {f}"));
                return None;
            }
        }
    }
}

/// A client registering and reporting batch after batch until `stop`; each batch is sent
/// again (same EventInstanceIDs and time) until the gateway acknowledges it.
async fn keep_reporting(agent: Agent, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    let mut round = 0u32;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        // Registers again now and then, as a client does when its details change.
        if round % 3 == 1 && until_accepted(&tally, "RegisterComputer", || agent.register()).await.is_none() {
            return;
        }
        let batch = (
            vec![uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string()],
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        );
        let events: &[(i32, &str, &[&str])] = &[(147, NIL, &["0"]), (156, NIL, &["U="])];
        let busy_before = tally.lock().unwrap().busy.len();
        if until_accepted(&tally, "ReportEventBatch", || agent.report(events, Some(&batch))).await.is_none() {
            return;
        }
        let mut t = tally.lock().unwrap();
        let now = Instant::now();
        if t.busy.len() > busy_before {
            t.retried.extend(batch.0.iter().cloned());
        }
        t.acked.extend(batch.0.into_iter().map(|id| (id, now)));
    }
}

/// `n` registered clients of `gateway` reporting in a loop.
async fn start_clients(
    gateway: &str,
    n: usize,
) -> (Arc<AtomicBool>, Vec<Arc<Mutex<Tally>>>, Vec<tokio::task::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (mut tallies, mut tasks) = (Vec::new(), Vec::new());
    for i in 0..n {
        let mut agent = Agent::new(gateway);
        agent.dns_name = format!("desktop-{i}.lab.test");
        agent.handshake(true).await.unwrap();
        let tally = Arc::new(Mutex::new(Tally::default()));
        tasks.push(tokio::spawn(keep_reporting(agent, stop.clone(), tally.clone())));
        tallies.push(tally);
    }
    (stop, tallies, tasks)
}

/// Waits until every client had a batch acknowledged after `since`.
async fn wait_all_acknowledged_after(tallies: &[Arc<Mutex<Tally>>], since: Instant, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let behind = tallies.iter().filter(|t| !t.lock().unwrap().acked.iter().any(|(_, at)| *at > since)).count();
        if behind == 0 {
            return;
        }
        let other: Vec<String> = tallies.iter().flat_map(|t| t.lock().unwrap().other.clone()).collect();
        assert!(other.is_empty(), "clients failed: {other:?}");
        assert!(Instant::now() < deadline, "{behind} clients had nothing acknowledged after the fault");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many rows `reporting_event` holds for each of `ids`.
async fn stored_counts(pool: &PgPool, ids: &[String]) -> HashMap<String, i64> {
    let uuids: Vec<uuid::Uuid> = ids.iter().map(|i| i.parse().unwrap()).collect();
    sqlx::query_as::<_, (uuid::Uuid, i64)>(
        "SELECT event_instance_id, count(*) FROM reporting_event WHERE event_instance_id = ANY($1) GROUP BY 1",
    )
    .bind(&uuids)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, n)| (id.to_string(), n))
    .collect()
}

/// Stops the clients (each finishes its batch) and checks what they saw against what is
/// stored: every acknowledged event exactly once, ServerBusy during each of `faults` (from
/// its start to a little after its end) and never before the first, no other failure.
/// Returns (acknowledged, retried) event counts.
async fn settle(
    pool: &PgPool,
    stop: Arc<AtomicBool>,
    tallies: Vec<Arc<Mutex<Tally>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    faults: &[(Instant, Instant)],
) -> (usize, usize) {
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let tallies: Vec<Tally> = tallies.into_iter().map(|t| std::mem::take(&mut *t.lock().unwrap())).collect();
    let other: Vec<&String> = tallies.iter().flat_map(|t| &t.other).collect();
    assert!(other.is_empty(), "only ServerBusy, never another fault or a dropped connection: {other:?}");
    let busy: Vec<Instant> = tallies.iter().flat_map(|t| t.busy.iter().copied()).collect();
    assert!(busy.iter().all(|b| *b >= faults[0].0), "no ServerBusy before the fault");
    for (n, (start, end)) in faults.iter().enumerate() {
        let during = busy.iter().filter(|b| *b >= start && **b <= *end + Duration::from_secs(10)).count();
        assert!(during > 0, "clients were told ServerBusy during fault {n}");
        for (i, t) in tallies.iter().enumerate() {
            assert!(t.acked.iter().any(|(_, at)| at > end), "client {i} succeeds again after fault {n}");
        }
    }
    let acked: Vec<String> = tallies.iter().flat_map(|t| t.acked.iter().map(|(id, _)| id.clone())).collect();
    let retried: Vec<String> = tallies.iter().flat_map(|t| t.retried.clone()).collect();
    assert!(!retried.is_empty(), "some batches were refused and sent again");
    let stored = stored_counts(pool, &acked).await;
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} of {} acknowledged events lost: {missing:?}", missing.len(), acked.len());
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    assert!(retried.iter().all(|id| stored.get(id) == Some(&1)), "every retried batch is stored, once");
    (acked.len(), retried.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_restarted_under_load_loses_no_acknowledged_event() {
    // Durable commits: an acknowledged event has been flushed, as in production.
    let pg = PgCluster::start_durable().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 200, seed: 5, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));
    let mut system = System::start(&db);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;
    let pool = PgPool::connect(&db).await.unwrap();

    let (stop, tallies, tasks) = start_clients(&system.gateway_url, 6).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    pool.close().await;
    let mut faults = Vec::new();
    // A clean stop, then a crash (immediate shutdown: no checkpoint, WAL recovery on start).
    for crash in [false, true] {
        let start = Instant::now();
        if crash {
            let pid = pg.postmaster_pid().expect("the server runs");
            assert!(Command::new("kill").args(["-QUIT", &pid.to_string()]).status().unwrap().success());
            let deadline = Instant::now() + Duration::from_secs(30);
            while pg.postmaster_pid().is_some() {
                assert!(Instant::now() < deadline, "the server did not go down");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } else {
            pg.stop().unwrap();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        pg.resume().unwrap();
        let end = Instant::now();
        wait_all_acknowledged_after(&tallies, end, Duration::from_secs(60)).await;
        faults.push((start, end));
    }
    // A while longer under load, then the accounts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pool = PgPool::connect(&db).await.unwrap();
    let (acked, retried) = settle(&pool, stop, tallies, tasks, &faults).await;
    eprintln!("{acked} events acknowledged, {retried} of them after ServerBusy");

    // No service was restarted; the catalog is served again too.
    for s in [&mut system.gateway, &mut system.reporting, &mut system.sync] {
        assert!(s.wait(Duration::from_millis(50)).is_none(), "{} kept running: {}", s.name, s.log());
    }
    let mut agent = Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();
    let scan = agent.scan().await.unwrap();
    assert!(!scan.new.is_empty(), "a scan after the restart brings the catalog");
}

#[tokio::test(flavor = "multi_thread")]
async fn reporting_killed_under_load_loses_nothing() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let (gateway_port, reporting_http, reporting_grpc) = (free_port(), free_port(), free_port());
    let reporting_env = HashMap::from([
        ("DATABASE_URL", db.clone()),
        ("WSUS_HTTP_ADDR", format!("127.0.0.1:{reporting_http}")),
        ("WSUS_GRPC_ADDR", format!("127.0.0.1:{reporting_grpc}")),
    ]);
    let mut reporting = Service::spawn("reporting", &reporting_env);
    let mut gateway = Service::spawn(
        "client-gateway",
        &HashMap::from([
            ("DATABASE_URL", db.clone()),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{gateway_port}")),
            ("WSUS_REPORTING_GRPC", format!("http://127.0.0.1:{reporting_grpc}")),
        ]),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{gateway_port}");
    for url in [format!("{base}/readyz"), format!("http://127.0.0.1:{reporting_http}/readyz")] {
        wait_for_status(&http, &url, 200, Duration::from_secs(60)).await;
    }
    let pool = PgPool::connect(&db).await.unwrap();

    let (stop, tallies, tasks) = start_clients(&base, 6).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = Instant::now();
    reporting.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Back on the same address, as a restarted pod behind its Service would be.
    let _reporting = Service::spawn("reporting", &reporting_env);
    let restarted = Instant::now();
    wait_all_acknowledged_after(&tallies, restarted, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (acked, retried) = settle(&pool, stop, tallies, tasks, &[(killed, restarted)]).await;
    eprintln!("{acked} events acknowledged, {retried} of them after ServerBusy");
    assert!(gateway.wait(Duration::from_millis(50)).is_none(), "the gateway kept running: {}", gateway.log());
}

// ---------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------

/// An upstream A (a generated catalog with its files, client-gateway serving them) and a
/// downstream B that has synced A's metadata but no file yet.
struct Downstream {
    _pg: PgCluster,
    _dir: tempfile::TempDir,
    db_b: String,
    content_b: TestStore,
    _a: System,
    /// B reaches A through it.
    relay: SlowRelay,
    pool_b: PgPool,
    /// Every file B knows: (SHA-1, file name, size).
    files: Vec<([u8; 20], String, u64)>,
}

impl Downstream {
    /// B's content in a store of `kind`, or in the directory `volume`.
    async fn start(seed: u64, file_size: (u64, u64), kind: StoreKind, volume: Option<PathBuf>) -> Self {
        let pg = PgCluster::start().unwrap();
        let (db_a, db_b) = (pg.create_database("uss").unwrap(), pg.create_database("dss").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let content_a = dir.path().join("content-a");
        let content_b = match volume {
            Some(v) => TestStore::directory(&v),
            None => TestStore::new(kind, &dir.path().join("content-b")),
        };
        let opts = wsus_catalog_gen::Options { revisions: 100, seed, file_size, ..Default::default() };
        wsus_catalog_gen::write(&opts, &dir.path().join("docs"), Some(&content_a)).unwrap();
        wsus_e2e::import(&db_a, &dir.path().join("docs"));
        let a = System::start_with(&db_a, Some(&content_a), &[]);
        a.wait_ready(&reqwest::Client::new()).await;
        let relay = SlowRelay::start(&a.gateway_url, 0).await;
        // Metadata first (lazy content, nothing approved: no file yet).
        let (ok, out, err) = run_binary("sync-worker", &["sync", "--once"], &sync_env(&db_b, &relay.url, &content_b));
        assert!(ok, "metadata sync: {out}{err}");
        let pool_b = PgPool::connect(&db_b).await.unwrap();
        wsus_store::settings::put(&pool_b, wsus_store::settings::CONTENT_MODE, &"immediate", "test").await.unwrap();
        let rows: Vec<(Vec<u8>, String, i64)> =
            sqlx::query_as("SELECT sha1, file_name, size FROM file ORDER BY sha1").fetch_all(&pool_b).await.unwrap();
        let files: Vec<_> = rows.into_iter().map(|(s, n, z)| (s.try_into().unwrap(), n, z as u64)).collect();
        assert!(files.len() >= 10, "a catalog with files: {}", files.len());
        Self { _pg: pg, _dir: dir, db_b, content_b, _a: a, relay, pool_b, files }
    }

    fn sync_env(&self) -> HashMap<&'static str, String> {
        sync_env(&self.db_b, &self.relay.url, &self.content_b)
    }

    /// `sync-worker sync --once --json` at B: (success, stdout, stderr).
    fn sync(&self) -> (bool, String, String) {
        run_binary("sync-worker", &["sync", "--once", "--json"], &self.sync_env())
    }

    /// B's client-gateway, serving B's content store; (service, base URL).
    async fn gateway(&self) -> (Service, String) {
        let port = free_port();
        let mut env =
            HashMap::from([("DATABASE_URL", self.db_b.clone()), ("WSUS_HTTP_ADDR", format!("127.0.0.1:{port}"))]);
        env.extend(self.content_b.env());
        let gateway = Service::spawn("client-gateway", &env);
        let base = format!("http://127.0.0.1:{port}");
        wait_for_status(&reqwest::Client::new(), &format!("{base}/readyz"), 200, Duration::from_secs(60)).await;
        (gateway, base)
    }

    fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.2).sum()
    }
}

/// A downstream sync-worker's settings: its database, upstream and content store.
fn sync_env(db: &str, upstream: &str, content: &TestStore) -> HashMap<&'static str, String> {
    let mut env = HashMap::from([
        ("DATABASE_URL", db.to_owned()),
        ("WSUS_UPSTREAM_URL", upstream.to_owned()),
        ("WSUS_SERVER_FQDN", "dss.e2e.test".to_owned()),
    ]);
    env.extend(content.env());
    env
}

/// Where a download accumulates: the directory store's, or a bucket's local staging.
fn incoming(content: &TestStore, sha1: &[u8; 20]) -> PathBuf {
    wsus_content::ContentStore::new(content.dir()).partial_path(sha1)
}

/// Files under their served names in `content` that are not exactly their bytes.
fn corrupt_on_disk(content: &TestStore, files: &[([u8; 20], String, u64)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (sha1, name, size) in files {
        let path = content.served_path(&wsus_content::relative_path(sha1, name));
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() as u64 == *size && sha1::Sha1::digest(&bytes)[..] == sha1[..] => {}
            Ok(bytes) => bad.push(format!("{}: {} of {size} bytes, wrong digest", path.display(), bytes.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bad.push(format!("{}: {e}", path.display())),
        }
    }
    bad
}

/// GETs every file from B's gateway: each must be a 404 or exactly its bytes, and the
/// names a download accumulates under must never answer. Returns how many were served
/// whole, or what was wrong.
async fn served(http: &reqwest::Client, base: &str, files: &[([u8; 20], String, u64)]) -> Result<usize, String> {
    let mut whole = 0;
    for (sha1, name, size) in files {
        let rel = wsus_content::relative_path(sha1, name);
        let url = format!("{base}/Content/{rel}");
        let r = http.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
        match r.status().as_u16() {
            404 => {}
            200 => {
                let body = r.bytes().await.map_err(|e| format!("{url}: {e}"))?;
                if body.len() as u64 != *size || sha1::Sha1::digest(&body)[..] != sha1[..] {
                    return Err(format!("{url}: served {} of {size} bytes that do not match", body.len()));
                }
                whole += 1;
            }
            s => return Err(format!("{url}: {s}")),
        }
        let hex = hex::encode_upper(sha1);
        for temp in [
            format!("/Content/.incoming/{hex}.partial"),
            format!("/Content/{}/{hex}.partial", &hex[38..]),
            format!("/Content/{}/../.incoming/{hex}.partial", &hex[38..]),
            format!("/Content/%2Eincoming/{hex}.partial"),
        ] {
            let s = http.get(format!("{base}{temp}")).send().await.map_err(|e| format!("{temp}: {e}"))?.status();
            if s.is_success() {
                return Err(format!("{temp}: a download in progress is reachable ({s})"));
            }
        }
    }
    Ok(whole)
}

/// Checks B's gateway over and over until `stop`; the first violation, if any.
fn watch_served(
    base: String,
    files: Vec<([u8; 20], String, u64)>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<usize, String>> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut rounds = 0;
        while !stop.load(Ordering::Relaxed) {
            served(&http, &base, &files).await?;
            rounds += 1;
        }
        Ok(rounds)
    })
}

/// A TCP relay in front of an upstream passing its answers on at `rate` bytes a second
/// per connection (0: at full speed): downloads slow enough to be interrupted half-way.
struct SlowRelay {
    url: String,
    rate: Arc<AtomicU64>,
}

impl SlowRelay {
    async fn start(target: &str, rate: u64) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let rate = Arc::new(AtomicU64::new(rate));
        let (target, shared) = (target.trim_start_matches("http://").to_owned(), rate.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (target, rate) = (target.clone(), shared.clone());
                tokio::spawn(async move {
                    if let Ok(upstream) = tokio::net::TcpStream::connect(&target).await {
                        let _ = relay_slowly(client, upstream, rate).await;
                    }
                });
            }
        });
        Self { url, rate }
    }
}

async fn relay_slowly(
    client: tokio::net::TcpStream,
    upstream: tokio::net::TcpStream,
    rate: Arc<AtomicU64>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_upstream, mut to_upstream) = upstream.into_split();
    let requests = tokio::spawn(async move { tokio::io::copy(&mut from_client, &mut to_upstream).await });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from_upstream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        to_client.write_all(&buf[..n]).await?;
        if let Some(nanos) = (n as u64 * 1_000_000_000).checked_div(rate.load(Ordering::Relaxed)) {
            tokio::time::sleep(Duration::from_nanos(nanos)).await;
        }
    }
    requests.abort();
    Ok(())
}

/// Partial downloads in B's store: SHA-1 -> bytes so far.
fn partials(content: &TestStore, files: &[([u8; 20], String, u64)]) -> HashMap<[u8; 20], u64> {
    files
        .iter()
        .filter_map(|(sha1, _, _)| std::fs::metadata(incoming(content, sha1)).ok().map(|m| (*sha1, m.len())))
        .collect()
}

fn stored_whole(content: &TestStore, files: &[([u8; 20], String, u64)]) -> usize {
    files.iter().filter(|(s, n, _)| content.served_path(&wsus_content::relative_path(s, n)).is_file()).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_worker_killed_mid_download_resumes_and_never_serves_a_partial_file() {
    killed_mid_download_resumes(StoreKind::Directory).await;
}

/// The same with B's content in a bucket: downloads accumulate in the local staging and
/// resume there; the gateway serves only whole objects.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_worker_killed_mid_download_into_a_bucket_resumes_and_never_serves_a_partial_file() {
    killed_mid_download_resumes(StoreKind::Bucket).await;
}

async fn killed_mid_download_resumes(kind: StoreKind) {
    let down = Downstream::start(101, (256 * 1024, 768 * 1024), kind, None).await;
    let (_gateway, base) = down.gateway().await;
    let http = reqwest::Client::new();
    assert_eq!(served(&http, &base, &down.files).await, Ok(0), "nothing downloaded yet");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_served(base.clone(), down.files.clone(), stop.clone());

    // Downloads at 1 MB/s a connection: killed once a file is in and others are half-way.
    down.relay.rate.store(1024 * 1024, Ordering::Relaxed);
    let env = down.sync_env();
    let mut worker = Service::spawn_args("sync-worker", &["sync", "--once"], &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let growing = partials(&down.content_b, &down.files).values().any(|n| *n > 0);
        if stored_whole(&down.content_b, &down.files) >= 1 && growing {
            break;
        }
        assert!(
            worker.wait(Duration::from_millis(1)).is_none(),
            "finished before it could be killed: {}",
            worker.log()
        );
        assert!(Instant::now() < deadline, "no download started: {}", worker.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill();
    // What the gateway queued on a miss settles before the store is read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = partials(&down.content_b, &down.files);
    let sizes: HashMap<[u8; 20], u64> = down.files.iter().map(|(s, _, z)| (*s, *z)).collect();
    assert!(left.iter().any(|(s, n)| *n > 0 && *n < sizes[s]), "the kill landed half-way through a file: {left:?}");
    assert_eq!(corrupt_on_disk(&down.content_b, &down.files), Vec::<String>::new());
    let before = served(&http, &base, &down.files).await.unwrap();
    assert!(before >= 1 && before < down.files.len(), "some files served whole, the rest 404: {before}");

    // Resumed: each half-done file continues where it stopped (a Range request).
    let present: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT sha1 FROM file WHERE content_state = 'present'").fetch_all(&down.pool_b).await.unwrap();
    let present: std::collections::HashSet<[u8; 20]> = present.into_iter().map(|(s,)| s.try_into().unwrap()).collect();
    let owed: u64 = down
        .files
        .iter()
        .filter(|(s, _, _)| !present.contains(s))
        .map(|(s, _, z)| z - left.get(s).copied().unwrap_or(0))
        .sum();
    down.relay.rate.store(0, Ordering::Relaxed);
    let (ok, out, err) = down.sync();
    assert!(ok, "resumed sync: {out}{err}");
    let outcome: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    assert_eq!(outcome["files_failed"], 0, "{outcome}");
    assert_eq!(outcome["files_downloaded"].as_u64().unwrap() as usize, down.files.len() - present.len(), "{outcome}");
    assert_eq!(outcome["bytes_received"].as_u64().unwrap(), owed, "only what was missing: {outcome}");

    stop.store(true, Ordering::Relaxed);
    let rounds = watcher.await.unwrap().expect("never a partial or corrupt file served");
    assert!(rounds >= 2, "the store was watched while it filled: {rounds} rounds");
    assert_eq!(served(&http, &base, &down.files).await, Ok(down.files.len()), "every file served whole");
    assert!(partials(&down.content_b, &down.files).is_empty(), "no partial download left");
    let total = down.total_size();
    eprintln!("{} files, {total} bytes; {owed} bytes after the kill", down.files.len());
}

/// A tmpfs of its own, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts `size` (as mount(8) reads it, e.g. `2m`) at `dir`; why not, when it cannot.
    fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Self { dir: dir.to_path_buf() })
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.dir).output().unwrap();
        assert!(out.status.success(), "remount: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_content_volume_fails_clearly_and_serves_no_partial_file() {
    let volume_dir = tempfile::tempdir().unwrap();
    let volume = match Tmpfs::mount(volume_dir.path(), "2m") {
        Ok(v) => v,
        Err(why) => {
            eprintln!("\n*** SKIPPED a_full_content_volume_fails_clearly_and_serves_no_partial_file ***");
            eprintln!("*** a small volume cannot be mounted here ({why}); run as root to test a full disk ***\n");
            return;
        }
    };
    let down = Downstream::start(102, (100 * 1024, 300 * 1024), StoreKind::Directory, Some(volume.dir.clone())).await;
    let total = down.total_size();
    assert!(total > 2 * 2 * 1024 * 1024, "the files ({total} bytes) need more than the volume holds");

    let (ok, out, err) = down.sync();
    assert!(!ok, "a sync that could not store its files fails: {out}");
    let outcome: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    let failed = outcome["files_failed"].as_u64().unwrap();
    let downloaded = outcome["files_downloaded"].as_u64().unwrap();
    assert!(failed > 0, "{outcome}");
    assert!(err.contains("files could not be downloaded"), "{err}");
    assert!(err.contains("No space left on device"), "the reason is said: {err}");
    // Each failure is recorded with its reason; a full disk is not the upstream's fault.
    let errors: Vec<(Vec<u8>, Option<String>, String)> = sqlx::query_as(
        "SELECT q.sha1, q.last_error, f.content_state FROM content_download q JOIN file f USING (sha1) WHERE q.attempts > 0",
    )
    .fetch_all(&down.pool_b)
    .await
    .unwrap();
    assert_eq!(errors.len() as u64, failed);
    for (sha1, error, state) in &errors {
        let error = error.as_deref().unwrap_or_default();
        assert!(error.contains("No space left on device"), "{}: {error}", hex::encode_upper(sha1));
        assert!(error.contains(&hex::encode_upper(sha1)), "the error names the file: {error}");
        assert_eq!(state, "failed", "{}: {error}", hex::encode_upper(sha1));
    }

    // Nothing truncated under a served name, on disk or over HTTP.
    assert_eq!(corrupt_on_disk(&down.content_b, &down.files), Vec::<String>::new());
    let (gateway, base) = down.gateway().await;
    let http = reqwest::Client::new();
    assert_eq!(
        served(&http, &base, &down.files).await,
        Ok(downloaded as usize),
        "the stored files, whole; 404 for the rest"
    );

    // Room again: a later sync (once the retry is due) completes the downloads.
    volume.resize("64m");
    let (due,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT max(next_attempt_at) FROM content_download").fetch_one(&down.pool_b).await.unwrap();
    let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    let (ok, out, err) = down.sync();
    assert!(ok, "{out}{err}");
    let outcome: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    assert_eq!(outcome["files_failed"], 0, "{outcome}");
    assert_eq!(served(&http, &base, &down.files).await, Ok(down.files.len()), "every file served whole");
    assert!(partials(&down.content_b, &down.files).is_empty(), "no partial download left");
    // Everything using the volume stops before it is unmounted.
    drop(gateway);
    drop(down);
    drop(volume);
}
