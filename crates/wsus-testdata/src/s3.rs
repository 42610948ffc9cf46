//! A real S3 server for tests: s3s-fs (installed by `scripts/test-setup`), which keeps
//! each bucket as a directory and checks every request's signature. Not a mock: the
//! tests exercise the same HTTP API MinIO, Ceph RGW and AWS S3 serve.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running s3s-fs with one bucket; stopped (and its data removed) when dropped.
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    child: Child,
    root: PathBuf,
}

impl S3Server {
    /// Starts s3s-fs on a free loopback port with an empty `bucket`. Panics, saying how
    /// to install it, when the binary is missing.
    pub fn start(bucket: &str) -> S3Server {
        let root = std::env::temp_dir().join(format!("wsus-s3-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(root.join(bucket)).expect("the S3 server's directory");
        let (access_key, secret_key) = ("wsus-test-key".to_owned(), "wsus-test-secret-0123456789".to_owned());
        // The port is free when chosen and taken when s3s-fs binds it; another process may
        // take it in between, so a server that exits at start is started on another.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(binary())
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", &access_key])
                .args(["--secret-key", &secret_key])
                .arg(&root)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("s3s-fs: {e} (scripts/test-setup installs it)"));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                // Listening, and still alive a moment later: the listener is this one.
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                    if child.try_wait().ok().flatten().is_some() {
                        break;
                    }
                    let endpoint = format!("http://{addr}");
                    return S3Server { endpoint, bucket: bucket.to_owned(), access_key, secret_key, child, root };
                }
                assert!(Instant::now() < deadline, "s3s-fs did not listen on {addr}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("s3s-fs exited at start five times");
    }

    /// Stops answering (SIGSTOP): connections are still accepted, as by a bucket that hangs.
    pub fn freeze(&self) {
        signal(self.child.id(), "-STOP");
    }

    /// Answers again (SIGCONT).
    pub fn thaw(&self) {
        signal(self.child.id(), "-CONT");
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the bucket's objects lie on disk (`<key>` is a path under it).
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.join(&self.bucket)
    }

    /// Multipart uploads begun and neither completed nor aborted.
    pub fn unfinished_uploads(&self) -> usize {
        std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(".upload-") && name.ends_with(".json")
            })
            .count()
    }

    /// The environment a service needs to use this bucket as its content store.
    pub fn env(&self, prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("WSUS_CONTENT_STORE", "s3".to_owned()),
            ("WSUS_S3_BUCKET", self.bucket.clone()),
            ("WSUS_S3_ENDPOINT", self.endpoint.clone()),
            ("WSUS_S3_REGION", "us-east-1".to_owned()),
            ("WSUS_S3_PREFIX", prefix.to_owned()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn signal(pid: u32, which: &str) {
    let sent = Command::new("kill").args([which, &pid.to_string()]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill {which} {pid}");
}

/// s3s-fs from PATH, else from cargo's bin folder (where `cargo install` puts it).
fn binary() -> PathBuf {
    let in_cargo = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|c| c.join("bin/s3s-fs"));
    match in_cargo {
        Some(p) if p.is_file() => p,
        _ => PathBuf::from("s3s-fs"),
    }
}

/// A free port below the ephemeral range (where the end-to-end tests' services take
/// theirs, from 20000), so no outgoing connection can hold it when s3s-fs binds.
fn free_port() -> u16 {
    const FIRST: u32 = 17_000;
    const COUNT: u32 = 3_000;
    let start = (std::process::id() % 30) * 100 + unique() as u32;
    (0..COUNT)
        .map(|n| (FIRST + (start + n) % COUNT) as u16)
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port in 17000..20000")
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
