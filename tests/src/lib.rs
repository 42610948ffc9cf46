//! Harness for end-to-end tests: a Postgres cluster of the test's own (it may be stopped
//! and started again), and the real service binaries spawned on free ports.
//!
//! The binaries must be built first (`cargo build --bins`; `scripts/test` does it). Their
//! directory is `WSUS_BIN_DIR`, or the cargo target directory this test runs from.

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod agent;
pub mod store;

/// A free TCP port on 127.0.0.1 for a service a test starts. Taken below Linux's
/// ephemeral range (32768-60999): a port the kernel hands out for port 0 may be handed
/// again to an outgoing connection (a test's HTTP or Postgres client) before the service
/// binds it, which made a service fail with "address in use" now and then. A counter keeps
/// this process's ports apart, the process id other processes', a bind test the rest.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 40) * 300;
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT);
}

/// `testdata/<path>` of the repository, and its bytes.
pub use wsus_testdata::{path as reference, read as read_reference};

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// A throwaway Postgres cluster on a fixed port, owned by the test.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    root: bool,
    /// fsync and synchronous commit on (durability benchmarks); off for tests.
    durable: bool,
}

impl PgCluster {
    /// initdb and start. As root the server runs as the `postgres` user (initdb refuses root).
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with_durability(false)
    }

    /// A cluster that flushes every commit to disk, as a production server does.
    pub fn start_durable() -> anyhow::Result<Self> {
        Self::start_with_durability(true)
    }

    fn start_with_durability(durable: bool) -> anyhow::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .ok_or_else(|| anyhow::anyhow!("no PostgreSQL server binaries under /usr/lib/postgresql"))?;
        let dir = tempfile::Builder::new().prefix("wsus-e2e-pg").tempdir()?;
        let root = is_root();
        if root {
            if Command::new("id").arg("postgres").output()?.status.success() {
                // exists
            } else {
                run(Command::new("useradd").args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "postgres",
                ]))?;
            }
            run(Command::new("chown").arg("postgres").arg(dir.path()))?;
        }
        let cluster = Self { port: free_port(), bin, dir, root, durable };
        run(cluster.as_pg(&cluster.bin.join("initdb")).arg("-D").arg(cluster.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]))?;
        cluster.resume()?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_pg(&self, program: &Path) -> Command {
        let mut c = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.current_dir(self.dir.path()).stdin(Stdio::null());
        c
    }

    /// Starts the (stopped) server again on the same port.
    pub fn resume(&self) -> anyhow::Result<()> {
        let sync = if self.durable { "on" } else { "off" };
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={sync} -c synchronous_commit={sync} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        run(self
            .as_pg(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "30", "-o", &opts, "start"]))
    }

    /// The server's main process (its backends are its children), for benchmarks to read.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) -> anyhow::Result<()> {
        run(self.as_pg(&self.bin.join("pg_ctl")).arg("-D").arg(self.data()).args(["-m", "fast", "-w", "stop"]))
    }

    /// Creates a database and returns its URL.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        run(self.as_pg(&self.bin.join("createdb")).args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            name,
        ]))?;
        Ok(format!("postgres://postgres@127.0.0.1:{}/{name}", self.port))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Where the service binaries are.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WSUS_BIN_DIR") {
        return PathBuf::from(d);
    }
    // target/<profile>/deps/<test> -> target/<profile>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("target directory").to_path_buf()
}

pub fn binary(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} is missing: run `cargo build --bins` first (scripts/test does)", p.display());
    if let Some(newer) = newer_source(&p) {
        panic!(
            "{} is older than {}, which it is built from: run `cargo build --workspace --bins` first (scripts/test does)",
            p.display(),
            newer.display()
        );
    }
    p
}

/// A source file newer than the binary `bin`, by the dep-info cargo writes beside it
/// (`<bin>.d`: the binary, then every file it was built from). A test that ran a stale
/// binary would test old code and say nothing. None without dep-info.
fn newer_source(bin: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok()?;
    let deps = std::fs::read_to_string(bin.with_extension("d")).ok()?;
    let (_, sources) = deps.lines().next()?.split_once(": ")?;
    // Spaces inside a path are escaped with a backslash.
    let sources = sources.replace("\\ ", "\0");
    sources
        .split_whitespace()
        .map(|s| PathBuf::from(s.replace('\0', " ")))
        .find(|source| std::fs::metadata(source).and_then(|m| m.modified()).is_ok_and(|changed| changed > built))
}

/// A running service binary; killed when dropped. Its stdout+stderr go to a log file.
pub struct Service {
    pub name: &'static str,
    args: Vec<String>,
    env: HashMap<String, String>,
    child: Child,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

impl Service {
    pub fn spawn(name: &'static str, env: &HashMap<&str, String>) -> Self {
        Self::spawn_args(name, &[], env)
    }

    pub fn spawn_args(name: &'static str, args: &[&str], env: &HashMap<&str, String>) -> Self {
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join(format!("{name}.log"));
        let out = File::create(&log).unwrap();
        let child = Command::new(binary(name))
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let env = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        Self { name, args: args.iter().map(|a| a.to_string()).collect(), env, child, log, _logdir: logdir }
    }

    /// Another instance beside it (a second replica): the same arguments, its environment
    /// changed by `changes` (its own addresses, say).
    pub fn replica(&self, changes: &[(&str, String)]) -> Service {
        let mut env = self.env.clone();
        env.extend(changes.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let env: HashMap<&str, String> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        Service::spawn_args(self.name, &args, &env)
    }

    /// Kills it and starts it again with the same arguments and its environment changed by
    /// `changes` (a new log).
    pub fn restart_with(&mut self, changes: &[(&str, String)]) {
        let mut env = self.env.clone();
        env.extend(changes.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let env: HashMap<&str, String> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let args = self.args.clone();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.kill();
        *self = Service::spawn_args(self.name, &args, &env);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it outright (SIGKILL), as a crash or an evicted pod would end.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.wait(within)
    }

    pub fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- {} log -----\n{}", self.name, self.log());
        }
    }
}

/// The three services against one database, on free loopback ports.
pub struct System {
    pub gateway: Service,
    pub reporting: Service,
    pub sync: Service,
    pub gateway_url: String,
    pub reporting_url: String,
    pub sync_url: String,
}

/// The API token `System` configures (reader and admin).
pub const READER_TOKEN: &str = "reader-token-1234";
pub const ADMIN_TOKEN: &str = "admin-token-1234";

impl System {
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, None, &[])
    }

    /// With the gateway serving files from `content` (`WSUS_CONTENT_DIR`) and more
    /// settings of its own.
    pub fn start_with(database_url: &str, content: Option<&Path>, gateway_settings: &[(&'static str, String)]) -> Self {
        Self::start_full(database_url, content, gateway_settings, &[])
    }

    /// Also with settings of sync-worker's own (which shares `content`).
    pub fn start_full(
        database_url: &str,
        content: Option<&Path>,
        gateway_settings: &[(&'static str, String)],
        sync_settings: &[(&'static str, String)],
    ) -> Self {
        Self::start_each(database_url, content, gateway_settings, sync_settings, &[])
    }

    /// Also with settings of reporting's own.
    pub fn start_each(
        database_url: &str,
        content: Option<&Path>,
        gateway_settings: &[(&'static str, String)],
        sync_settings: &[(&'static str, String)],
        reporting_settings: &[(&'static str, String)],
    ) -> Self {
        let (gw, rep, rep_grpc, sw, sw_grpc) = (free_port(), free_port(), free_port(), free_port(), free_port());
        let common = |http: u16| -> HashMap<&'static str, String> {
            HashMap::from([
                ("DATABASE_URL", database_url.to_owned()),
                ("WSUS_HTTP_ADDR", format!("127.0.0.1:{http}")),
                ("WSUS_SERVER_FQDN", "wsus.e2e.test".to_owned()),
            ])
        };
        let mut reporting_env = common(rep);
        reporting_env.insert("WSUS_GRPC_ADDR", format!("127.0.0.1:{rep_grpc}"));
        reporting_env.insert("WSUS_SYNC_GRPC", format!("http://127.0.0.1:{sw_grpc}"));
        reporting_env.insert("WSUS_API_TOKENS", format!("reader:{READER_TOKEN},admin:{ADMIN_TOKEN}"));
        let mut sync_env = common(sw);
        sync_env.insert("WSUS_GRPC_ADDR", format!("127.0.0.1:{sw_grpc}"));
        let mut gateway_env = common(gw);
        gateway_env.insert("WSUS_REPORTING_GRPC", format!("http://127.0.0.1:{rep_grpc}"));
        if let Some(c) = content {
            gateway_env.insert("WSUS_CONTENT_DIR", c.display().to_string());
            sync_env.insert("WSUS_CONTENT_DIR", c.display().to_string());
        }
        gateway_env.extend(gateway_settings.iter().cloned());
        sync_env.extend(sync_settings.iter().cloned());
        reporting_env.extend(reporting_settings.iter().cloned());
        System {
            reporting: Service::spawn("reporting", &reporting_env),
            sync: Service::spawn("sync-worker", &sync_env),
            gateway: Service::spawn("client-gateway", &gateway_env),
            gateway_url: format!("http://127.0.0.1:{gw}"),
            reporting_url: format!("http://127.0.0.1:{rep}"),
            sync_url: format!("http://127.0.0.1:{sw}"),
        }
    }

    /// Kills client-gateway outright and starts it again on the same address.
    pub fn restart_gateway(&mut self) {
        self.gateway.restart_with(&[]);
    }

    /// Waits until all three answer /readyz with 200.
    pub async fn wait_ready(&self, http: &reqwest::Client) {
        for base in [&self.gateway_url, &self.reporting_url, &self.sync_url] {
            wait_for_status(http, &format!("{base}/readyz"), 200, Duration::from_secs(60)).await;
        }
    }
}

/// How many downloads clients' misses asked for, once there is one (or after 2.5 s).
pub async fn client_misses_queued(pool: &sqlx::PgPool) -> i64 {
    let mut queued = 0;
    for _ in 0..50 {
        queued = sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM content_download WHERE reason = 'client_miss'")
            .fetch_one(pool)
            .await
            .unwrap_or((0,))
            .0;
        if queued > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    queued
}

/// Imports update documents (a directory, a file or an export) into a database with
/// `sync-worker import`, insisting on success.
pub fn import(database_url: &str, path: &Path) {
    let env = HashMap::from([("DATABASE_URL", database_url.to_owned())]);
    let (ok, out, err) = run_binary("sync-worker", &["import", &path.display().to_string()], &env);
    assert!(ok, "sync-worker import {}: {out}{err}", path.display());
}

/// Approves `update_id` for install on All Computers.
pub async fn approve_for_all(pool: &sqlx::PgPool, update_id: uuid::Uuid) {
    use wsus_store::approvals::{self, Action, Approval};
    let approval = Approval {
        update_id,
        group_id: wsus_store::ALL_COMPUTERS,
        action: Action::Install,
        deadline: None,
        admin_name: None,
    };
    approvals::approve(pool, &approval).await.unwrap();
}

/// Approves for All Computers `how_many` software bundles that have no approval yet, the
/// newest (by revision id) or the oldest first; returns how many it approved.
pub async fn approve_bundles(pool: &sqlx::PgPool, how_many: i64, newest: bool) -> anyhow::Result<usize> {
    use wsus_store::approvals::{self, Action, Approval};
    let order = if newest { "DESC" } else { "ASC" };
    let bundles: Vec<(uuid::Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT update_id FROM revision WHERE is_bundle AND update_type = 'Software' \
         AND update_id NOT IN (SELECT update_id FROM deployment WHERE deleted_at IS NULL) \
         GROUP BY update_id ORDER BY max(revision_id) {order} LIMIT $1"
    )))
    .bind(how_many)
    .fetch_all(pool)
    .await?;
    for (update_id,) in &bundles {
        let a = Approval {
            update_id: *update_id,
            group_id: wsus_store::ALL_COMPUTERS,
            action: Action::Install,
            deadline: None,
            admin_name: Some("test".into()),
        };
        approvals::approve(pool, &a).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(bundles.len())
}

/// The catalog version a client-gateway at `base_url` serves, from its /metrics
/// (`wsus_catalog_version`); 0 when it does not say.
pub async fn served_catalog_version(http: &reqwest::Client, base_url: &str) -> anyhow::Result<i64> {
    let metrics = http.get(format!("{base_url}/metrics")).send().await?.text().await?;
    Ok(metrics
        .lines()
        .find(|l| l.starts_with("wsus_catalog_version"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0))
}

/// Runs a binary to completion with `env`; returns (success, stdout, stderr).
pub fn run_binary(name: &str, args: &[&str], env: &HashMap<&str, String>) -> (bool, String, String) {
    let out = Command::new(binary(name))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// GET `url` and return the status code (0 when nothing answered).
pub async fn status_of(client: &reqwest::Client, url: &str) -> u16 {
    match client.get(url).timeout(Duration::from_secs(6)).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Polls `url` until it answers `want`, or fails after `within`.
pub async fn wait_for_status(client: &reqwest::Client, url: &str, want: u16, within: Duration) {
    let deadline = Instant::now() + within;
    let mut last = 0;
    while Instant::now() < deadline {
        last = status_of(client, url).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = match client.get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => e.to_string(),
    };
    panic!("{url} answered {last}, not {want}, within {within:?}: {body}");
}

/// Per connection: the first request line and its Proxy-Authorization header.
pub type ProxyLog = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

/// One HTTP/1.1 request a test's server read: the path of its request line, its headers
/// (names in lower case) and its Content-Length body.
pub struct HttpRequest {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// Reads one request from `socket`; None when the peer leaves before it is whole.
pub async fn read_request(socket: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<HttpRequest> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let body = buf[head_end..head_end + length].to_vec();
    Some(HttpRequest { path, headers, body })
}

/// A forwarding HTTP proxy on loopback that records what went through it.
pub struct ForwardProxy {
    pub url: String,
    pub seen: ProxyLog,
}

impl ForwardProxy {
    pub async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: ProxyLog = Default::default();
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if client.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let mut lines = text.split("\r\n");
                    let request_line = lines.next().unwrap_or_default().to_owned();
                    let auth = lines
                        .clone()
                        .find(|l| l.to_ascii_lowercase().starts_with("proxy-authorization:"))
                        .map(|l| l.split_once(':').unwrap().1.trim().to_owned());
                    record.lock().unwrap().push((request_line.clone(), auth));
                    let mut parts = request_line.split(' ');
                    let (method, target, version) =
                        (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let Some(rest) = target.strip_prefix("http://") else { return };
                    let (host, path) =
                        rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(host).await else { return };
                    let mut forwarded = format!("{method} {path} {version}\r\n");
                    for l in lines.filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("proxy-")) {
                        forwarded.push_str(l);
                        forwarded.push_str("\r\n");
                    }
                    forwarded.push_str("\r\n");
                    if upstream.write_all(forwarded.as_bytes()).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        Self { url, seen }
    }
}

/// A throwaway root and a certificate for `localhost` it signs (PEM files made with the
/// openssl command), as an internal CA would issue.
pub struct TestCertificate {
    /// The root a client must trust.
    pub ca_file: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCertificate {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let openssl = |args: &[&str]| {
            let ok = Command::new("openssl").args(args).current_dir(dir.path()).stderr(Stdio::null()).status().unwrap();
            assert!(ok.success(), "openssl {args:?}");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Test Root",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "srv.csr",
        ]);
        std::fs::write(p("ext.cnf"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "cert.pem",
            "-extfile",
            "ext.cnf",
        ]);
        Self { ca_file: p("ca.pem"), cert: p("cert.pem"), key: p("key.pem"), _dir: dir }
    }

    /// An HTTP client that trusts the root.
    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca_file).unwrap();
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap()).build().unwrap()
    }
}

impl Default for TestCertificate {
    fn default() -> Self {
        Self::new()
    }
}

/// A TLS front on loopback (a [`TestCertificate`] for `localhost`) forwarding to a plain
/// HTTP service: an upstream reachable only over HTTPS.
pub struct TlsFront {
    /// `https://localhost:<port>`.
    pub url: String,
    /// The root (PEM) a client must trust.
    pub ca_file: PathBuf,
    _certificate: TestCertificate,
}

impl TlsFront {
    pub async fn start(target: &str) -> Self {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        let certificate = TestCertificate::new();
        let (cert, key) = (&certificate.cert, &certificate.key);
        let chain: Vec<_> =
            rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap().collect::<Result<_, _>>().unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = target.trim_start_matches("http://").to_owned();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, target) = (acceptor.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(&target).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self {
            url: format!("https://localhost:{port}"),
            ca_file: certificate.ca_file.clone(),
            _certificate: certificate,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn a_binary_older_than_a_source_it_lists_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let (bin, source) = (dir.path().join("svc"), dir.path().join("a file.rs"));
        std::fs::write(&bin, b"").unwrap();
        std::fs::write(&source, b"").unwrap();
        let deps = format!("{}: {}\n", bin.display(), source.display().to_string().replace(' ', "\\ "));
        std::fs::write(dir.path().join("svc.d"), deps).unwrap();
        let at = |path: &Path, t: SystemTime| File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
        let now = SystemTime::now();
        at(&bin, now);
        at(&source, now - Duration::from_secs(60));
        assert_eq!(newer_source(&bin), None);
        at(&source, now + Duration::from_secs(60));
        assert_eq!(newer_source(&bin), Some(source));
    }
}
