//! Update file downloads: Range GETs of 1 MiB pieces at random aligned offsets (how
//! Delivery Optimization and BITS fetch a file) from client-gateway's `/Content/` and from
//! nginx serving the same file out of the same directory, taking turns in the same run,
//! each server on the first core and the load generator on the second. A third side is
//! client-gateway serving the file from an S3 bucket (s3s-fs on the same core), reported
//! against the directory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::header;
use wsus_e2e::{PgCluster, Service, free_port, wait_for_status};

use crate::Cli;
use crate::proc;
use crate::table::{Row, row};

const NGINX: &str = "/usr/sbin/nginx";
/// The piece a downloader asks for at a time.
const PIECE: u64 = 1 << 20;
/// Ratio the gateway must reach.
const TARGET: f64 = 0.8;
/// Bytes each timed answer is compared against the file (its start): cheap enough not to
/// slow the load generator, enough to catch a wrong offset.
const PROBE: usize = 64;

/// Upper-case hex SHA-1 of a file (coreutils: the bench has no digest crate of its own).
fn sha1_hex(path: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new("sha1sum").arg(path).output().context("sha1sum")?;
    anyhow::ensure!(out.status.success(), "sha1sum failed: {}", String::from_utf8_lossy(&out.stderr));
    let hex = String::from_utf8(out.stdout)?.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
    anyhow::ensure!(hex.len() == 40, "sha1sum printed no digest");
    Ok(hex)
}

/// Raises every thread of a process above normal priority (when allowed: root), so that
/// other work on the machine takes less from the two sides and less unevenly: at equal
/// priority the scheduler shares a core by thread, which favours the many-threaded gateway
/// over single-threaded nginx.
fn prioritise(pid: u32) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return };
    let tids: Vec<String> = tasks.flatten().map(|t| t.file_name().to_string_lossy().into_owned()).collect();
    let _ = std::process::Command::new("renice")
        .args(["-n", "-10", "-p"])
        .args(&tids)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// nginx as a child process; killed when dropped, so no error path leaves it running.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx serving `root` on `port`, configured as a plain static file server: sendfile,
/// keep-alive, no access log (the gateway logs nothing per request at `warn` either).
/// One process without a master, so it is pinned and its CPU read like the gateway's.
fn start_nginx(dir: &Path, root: &Path, port: u16) -> anyhow::Result<Nginx> {
    let d = dir.display();
    let conf = format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    default_type application/octet-stream;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
",
        root = root.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let child = std::process::Command::new(NGINX)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting nginx")?;
    let mut nginx = Nginx(child);
    // Up when it accepts connections; a bad configuration ends it with the reason in its log.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let log = || std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default();
        if let Some(status) = nginx.0.try_wait()? {
            anyhow::bail!("nginx exited ({status}): {}", log());
        }
        anyhow::ensure!(Instant::now() < deadline, "nginx did not listen on {port}: {}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(nginx)
}

/// GETs `len` bytes at `start` and checks the answer: 206, the Content-Range, the length,
/// and the first `check` bytes (all of them when `check` is `usize::MAX`).
async fn fetch(
    http: &reqwest::Client,
    url: &str,
    start: u64,
    len: u64,
    data: &[u8],
    check: usize,
) -> anyhow::Result<()> {
    let last = start + len - 1;
    let mut r = http.get(url).header(header::RANGE, format!("bytes={start}-{last}")).send().await?;
    anyhow::ensure!(r.status() == reqwest::StatusCode::PARTIAL_CONTENT, "status {}", r.status());
    let want_range = format!("bytes {start}-{last}/{}", data.len());
    anyhow::ensure!(
        r.headers().get(header::CONTENT_RANGE).is_some_and(|v| v.as_bytes() == want_range.as_bytes()),
        "Content-Range {:?}, not {want_range}",
        r.headers().get(header::CONTENT_RANGE)
    );
    // Chunks are counted and dropped: collecting the body would cost the load generator a
    // copy per byte that neither server is responsible for.
    let mut got = 0usize;
    let start = start as usize;
    while let Some(chunk) = r.chunk().await? {
        if got < check {
            let n = chunk.len().min(check - got);
            let at = start + got;
            anyhow::ensure!(data.get(at..at + n) == Some(&chunk[..n]), "bytes at {at} differ from the file");
        }
        got += chunk.len();
    }
    anyhow::ensure!(got as u64 == len, "{got} bytes, not {len}");
    Ok(())
}

/// Outside the timed loop: pieces at both ends, a few random ones and an unaligned range,
/// every byte compared with the file.
async fn verify(http: &reqwest::Client, url: &str, data: &[u8], label: &str) -> anyhow::Result<()> {
    let size = data.len() as u64;
    let piece = PIECE.min(size);
    let mut ranges = vec![(0, piece), (size - piece, piece), (size / 3 + 7, (size / 2).clamp(1, 100_003))];
    let mut rng = wsus_catalog_gen::Rng::new(7);
    ranges.extend((0..8).map(|_| ((rng.next_u64() % (size / piece)) * piece, piece)));
    for (start, len) in ranges {
        let len = len.min(size - start);
        fetch(http, url, start, len, data, usize::MAX)
            .await
            .with_context(|| format!("{label}: bytes {start}+{len}"))?;
    }
    Ok(())
}

/// What one side of the comparison did.
#[derive(Default)]
struct Side {
    bytes: u64,
    requests: u64,
    failures: u64,
    first_failure: Option<String>,
    wall: f64,
    server_cpu: f64,
    load_cpu: f64,
}

impl Side {
    fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.wall.max(f64::MIN_POSITIVE)
    }

    fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.wall.max(f64::MIN_POSITIVE)
    }

    fn add(&mut self, round: Side) {
        self.bytes += round.bytes;
        self.requests += round.requests;
        self.failures += round.failures;
        self.first_failure = self.first_failure.take().or(round.first_failure);
        self.wall += round.wall;
        self.server_cpu += round.server_cpu;
        self.load_cpu += round.load_cpu;
    }
}

/// One server under test: its URL, its process and the downloaders' client (one
/// keep-alive connection a downloader, kept across rounds).
struct Target<'a> {
    url: &'a str,
    pid: u32,
    http: reqwest::Client,
}

impl<'a> Target<'a> {
    fn new(url: &'a str, pid: u32, connections: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().http1_only().pool_max_idle_per_host(connections).build()?;
        Ok(Self { url, pid, http })
    }
}

/// `connections` downloaders GET random aligned pieces of the file from `target` for
/// `duration`.
async fn measure(target: &Target<'_>, data: &Arc<Vec<u8>>, connections: usize, duration: Duration, seed: u64) -> Side {
    let pieces = (data.len() as u64 / PIECE).max(1);
    let piece = PIECE.min(data.len() as u64);
    let (bytes, requests, failures) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let (server_cpu0, load_cpu0) = (proc::cpu_seconds(target.pid), proc::cpu_seconds(std::process::id()));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..connections {
        let (http, url, data) = (target.http.clone(), target.url.to_owned(), data.clone());
        let (bytes, requests, failures, first_failure) =
            (bytes.clone(), requests.clone(), failures.clone(), first_failure.clone());
        tasks.spawn(async move {
            let mut rng = wsus_catalog_gen::Rng::new(seed.wrapping_mul(1000) + i as u64);
            while Instant::now() < deadline {
                let offset = (rng.next_u64() % pieces) * piece;
                match fetch(&http, &url, offset, piece, &data, PROBE).await {
                    Ok(()) => {
                        bytes.fetch_add(piece, Ordering::Relaxed);
                        requests.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first_failure.lock().expect("failure").get_or_insert_with(|| e.to_string());
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let wall = start.elapsed().as_secs_f64();
    let first_failure = first_failure.lock().expect("failure").take();
    Side {
        bytes: bytes.load(Ordering::Relaxed),
        requests: requests.load(Ordering::Relaxed),
        failures: failures.load(Ordering::Relaxed),
        first_failure,
        wall,
        server_cpu: proc::cpu_seconds(target.pid) - server_cpu0,
        load_cpu: proc::cpu_seconds(std::process::id()) - load_cpu0,
    }
}

// One function on purpose: a benchmark scenario read top to bottom (the file, nginx and the gateway in turns,
// the comparison), each step using what the ones before set up.
pub async fn run(cli: &Cli) -> anyhow::Result<Vec<Row>> {
    let what = "content Range GET vs nginx";
    if !Path::new(NGINX).exists() {
        return Ok(vec![row(what, format!("not measured: {NGINX} is not installed"), "≥ 0.8", None)]);
    }
    let mib = cli.content_mib.max(1);
    let duration = Duration::from_secs(cli.content_seconds.max(1));
    // Enough downloads in flight to keep one server core busy (each piece is 1 MiB, far more
    // than a socket buffer, so every connection always has a send pending); more would only
    // queue in the kernel and spend the load generator's single core on scheduling.
    let connections = cli.concurrency.clamp(1, 16);

    // The file, named by its SHA-1 as the content store names it, under `Content/` so that
    // nginx (root = the directory above) and the gateway (the store = `Content/`) serve the
    // one file at the same URL path.
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("Content");
    eprintln!("content: writing a {mib} MiB file");
    let data = Arc::new(wsus_catalog_gen::file_bytes(42, (mib as u64) << 20));
    let staged = dir.path().join("staged.cab");
    std::fs::write(&staged, data.as_slice())?;
    let hex = sha1_hex(&staged)?;
    let relative = format!("{}/{hex}.cab", &hex[38..]);
    std::fs::create_dir_all(store.join(&hex[38..]))?;
    std::fs::rename(&staged, store.join(&relative))?;

    // Other work on the machine moves both results; it is reported beside them.
    let background = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let pg = PgCluster::start()?;
    let db = pg.create_database("content")?;
    let (gw_port, nginx_port) = (free_port(), free_port());
    let gateway = Service::spawn(
        "client-gateway",
        &HashMap::from([
            ("DATABASE_URL", db),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{gw_port}")),
            ("WSUS_CONTENT_DIR", store.display().to_string()),
            // Downloads never reach reporting; nothing listens there.
            ("WSUS_REPORTING_GRPC", format!("http://127.0.0.1:{}", free_port())),
            ("RUST_LOG", "warn".to_owned()),
        ]),
    );
    let nginx = start_nginx(dir.path(), dir.path(), nginx_port)?;
    // The servers on the first core, the load generator on the second.
    proc::pin(gateway.pid(), 0);
    proc::pin(nginx.0.id(), 0);
    proc::pin(std::process::id(), 1);
    for pid in [gateway.pid(), nginx.0.id(), std::process::id()] {
        prioritise(pid);
    }

    let http = reqwest::Client::new();
    let gw_url = format!("http://127.0.0.1:{gw_port}/Content/{relative}");
    let nginx_url = format!("http://127.0.0.1:{nginx_port}/Content/{relative}");
    wait_for_status(&http, &format!("http://127.0.0.1:{gw_port}/readyz"), 200, Duration::from_secs(120)).await;
    verify(&http, &gw_url, &data, "client-gateway").await?;
    verify(&http, &nginx_url, &data, "nginx").await?;

    // The same file in a bucket, served by a second gateway.
    let s3 = wsus_testdata::S3Server::start("wsus");
    let config = wsus_config::S3Config {
        bucket: s3.bucket.clone(),
        endpoint: Some(s3.endpoint.clone()),
        region: "us-east-1".into(),
        prefix: String::new(),
    };
    let bucket = wsus_content::Bucket::with_keys(&config, &dir.path().join("staging"), &s3.access_key, &s3.secret_key)?;
    let sha1: [u8; 20] = (0..20)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a SHA-1 is 20 bytes"))?;
    let wanted = wsus_content::Wanted { sha1, sha256: None, size: Some(data.len() as u64), file_name: "f.cab".into() };
    bucket.put(wanted, data.to_vec()).await?;
    let s3_port = free_port();
    let mut s3_env: HashMap<&str, String> = s3.env("").into_iter().collect();
    s3_env.extend([
        ("DATABASE_URL", pg.create_database("content_s3")?),
        ("WSUS_HTTP_ADDR", format!("127.0.0.1:{s3_port}")),
        ("WSUS_CONTENT_DIR", dir.path().join("staging").display().to_string()),
        ("WSUS_REPORTING_GRPC", format!("http://127.0.0.1:{}", free_port())),
        ("RUST_LOG", "warn".to_owned()),
    ]);
    let gateway_s3 = Service::spawn("client-gateway", &s3_env);
    proc::pin(gateway_s3.pid(), 0);
    proc::pin(s3.pid(), 0);
    for pid in [gateway_s3.pid(), s3.pid()] {
        prioritise(pid);
    }
    let s3_url = format!("http://127.0.0.1:{s3_port}/Content/{relative}");
    wait_for_status(&http, &format!("http://127.0.0.1:{s3_port}/readyz"), 200, Duration::from_secs(120)).await;
    verify(&http, &s3_url, &data, "client-gateway (bucket)").await?;

    // The sides take turns in a few rounds, so a change of background load on the machine
    // falls on both rather than on whichever ran second.
    let rounds = (duration.as_secs() / 2).clamp(1, 5);
    let round = duration / rounds as u32;
    eprintln!(
        "content: {connections} connections GET 1 MiB pieces, {} s from each server in {rounds} rounds",
        duration.as_secs()
    );
    let gw_target = Target::new(&gw_url, gateway.pid(), connections)?;
    let nginx_target = Target::new(&nginx_url, nginx.0.id(), connections)?;
    let s3_target = Target::new(&s3_url, gateway_s3.pid(), connections)?;
    let (mut gw, mut ng, mut bk) = (Side::default(), Side::default(), Side::default());
    for r in 0..rounds {
        let (g, n, b) = (
            measure(&gw_target, &data, connections, round, r).await,
            measure(&nginx_target, &data, connections, round, r).await,
            measure(&s3_target, &data, connections, round, r).await,
        );
        eprintln!("content: round {}: gateway from the bucket {:.0} MiB/s", r + 1, b.mib_per_s());
        bk.add(b);
        eprintln!(
            "content: round {}: gateway {:.0} MiB/s ({:.2} cores), nginx {:.0} MiB/s ({:.2} cores)",
            r + 1,
            g.mib_per_s(),
            g.server_cpu / g.wall,
            n.mib_per_s(),
            n.server_cpu / n.wall
        );
        gw.add(g);
        ng.add(n);
    }
    drop(nginx);
    drop(gateway);
    drop(gateway_s3);
    drop(s3);
    drop(pg);

    let ratio = gw.mib_per_s() / ng.mib_per_s().max(f64::MIN_POSITIVE);
    let failures = gw.failures + ng.failures;
    let failed = [("client-gateway", &gw), ("nginx", &ng)]
        .iter()
        .filter_map(|(name, s)| s.first_failure.as_ref().map(|e| format!("; {name}: {} failed ({e})", s.failures)))
        .collect::<String>();
    let mut rows = vec![row(
        format!("{what}: {ratio:.2}"),
        format!(
            "gateway {:.0} MiB/s ({:.0} requests/s), nginx {:.0} MiB/s ({:.0} requests/s); 1 MiB ranges at \
             random aligned offsets of a {mib} MiB file (page cache), {connections} keep-alive connections, \
             {} s each; machine load average {background:.1} beforehand{failed}",
            gw.mib_per_s(),
            gw.requests_per_s(),
            ng.mib_per_s(),
            ng.requests_per_s(),
            duration.as_secs(),
        ),
        "≥ 0.8",
        Some(ratio >= TARGET && failures == 0),
    )];
    let from_bucket = bk.mib_per_s() / gw.mib_per_s().max(f64::MIN_POSITIVE);
    let bucket_failed =
        bk.first_failure.as_ref().map(|e| format!("; {} failed ({e})", bk.failures)).unwrap_or_default();
    rows.push(row(
        format!("content Range GET from a bucket vs a directory: {from_bucket:.2}"),
        format!(
            "gateway from an S3 bucket (s3s-fs on the same core) {:.0} MiB/s ({:.0} requests/s, gateway {:.2} cores), \
             from its directory {:.0} MiB/s; the same ranges and connections{bucket_failed}",
            bk.mib_per_s(),
            bk.requests_per_s(),
            bk.server_cpu / bk.wall,
            gw.mib_per_s(),
        ),
        "measured",
        Some(bk.failures == 0),
    ));
    // MiB per CPU-second says how efficiently each server sends, even when the load
    // generator rather than the server core sets the pace.
    let per_cpu = |s: &Side| s.bytes as f64 / (1 << 20) as f64 / s.server_cpu.max(0.01);
    rows.push(row(
        "content CPU",
        format!(
            "client-gateway {:.2} cores ({:.0} MiB per CPU-second), nginx {:.2} cores ({:.0} MiB per CPU-second); \
             load generator {:.2} / {:.2} cores",
            gw.server_cpu / gw.wall,
            per_cpu(&gw),
            ng.server_cpu / ng.wall,
            per_cpu(&ng),
            gw.load_cpu / gw.wall,
            ng.load_cpu / ng.wall,
        ),
        "",
        None,
    ));
    Ok(rows)
}
