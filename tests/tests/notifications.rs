//! Notifications end to end, with the real binaries and an HTTP receiver the test runs: a
//! sync that brings new updates is told exactly once to each channel (a signed JSON
//! webhook, a Slack-compatible one); a sync that brings nothing tells nothing; "send a
//! test" arrives; an endpoint that keeps failing is tried again and then given up, and
//! delays no one else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsus_e2e::{ADMIN_TOKEN, PgCluster, System, run_binary};

/// A request the receiver got: its path, headers (lower-case names) and body.
type Received = (String, HashMap<String, String>, Vec<u8>);

/// An HTTP receiver on loopback: 200 on every path but `/broken`, which answers 500.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
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
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                let status = if path == "/broken" { "500 Internal Server Error" } else { "200 OK" };
                seen.lock().unwrap().push((path, headers, buf[head_end..head_end + length].to_vec()));
                let _ = socket
                    .write_all(
                        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                    )
                    .await;
            });
        }
    });
    (url, got)
}

/// Debian's aiosmtpd on loopback, delivering into a Maildir; stopped when dropped.
struct SmtpServer(std::process::Child);

impl SmtpServer {
    fn start(port: u16, maildir: &std::path::Path) -> Self {
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd (scripts/test-setup installs python3-aiosmtpd)");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "aiosmtpd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer(child)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The messages the SMTP server delivered.
fn mails(maildir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(maildir.join("new"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}

fn on(got: &Arc<Mutex<Vec<Received>>>, path: &str) -> Vec<Received> {
    got.lock().unwrap().iter().filter(|(p, _, _)| p == path).cloned().collect()
}

async fn api(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http.request(method, format!("{base}{path}")).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_with_new_updates_is_told_once_to_each_channel() {
    let pg = PgCluster::start().unwrap();
    let (db_a, db_b) = (pg.create_database("uss").unwrap(), pg.create_database("dss").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 200, seed: 77, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), Some(&dir.path().join("content-a"))).unwrap();
    wsus_e2e::import(&db_a, &dir.path().join("docs"));
    let http = reqwest::Client::new();
    let a = System::start_with(&db_a, Some(&dir.path().join("content-a")), &[]);
    a.wait_ready(&http).await;

    // An SMTP server (Debian's aiosmtpd) keeping what it receives in a Maildir.
    let maildir = dir.path().join("maildir");
    let smtp_port = wsus_e2e::free_port();
    let _smtp = SmtpServer::start(smtp_port, &maildir);

    // B's reporting sends; a failing endpoint is tried after 1 s, 2 s, then given up.
    let secret = "hook-secret-0123456789";
    let reporting = [
        ("WSUS_NOTIFY_RETRY_SECONDS", "1".to_owned()),
        ("WSUS_NOTIFY_MAX_ATTEMPTS", "3".to_owned()),
        ("WSUS_NOTIFY_KEY_TEST", secret.to_owned()),
        ("WSUS_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}")),
        ("WSUS_SMTP_FROM", "WSUS <wsus@e2e.test>".to_owned()),
    ];
    let content_b = dir.path().join("content-b");
    let b =
        System::start_each(&db_b, Some(&content_b), &[], &[("WSUS_UPSTREAM_URL", a.gateway_url.clone())], &reporting);
    b.wait_ready(&http).await;
    let (hooks, got) = receiver().await;
    let post = reqwest::Method::POST;
    let add = |channel: Value| {
        let (http, base) = (http.clone(), b.reporting_url.clone());
        async move { api(&http, &base, reqwest::Method::POST, "/api/v1/notifications/channels", Some(channel)).await }
    };
    let every = json!(["updates_synchronized", "sync_failed"]);
    let (status, webhook) = add(json!({
        "name": "ops", "kind": "webhook", "target": format!("{hooks}/ops"), "secret_env": "WSUS_NOTIFY_KEY_TEST", "events": every,
    }))
    .await;
    assert_eq!(status, 201, "{webhook}");
    let one = json!(["updates_synchronized"]);
    let (status, _) =
        add(json!({ "name": "chat", "kind": "slack", "target": format!("{hooks}/chat"), "events": one })).await;
    assert_eq!(status, 201);
    let (status, broken) =
        add(json!({ "name": "dead", "kind": "teams", "target": format!("{hooks}/broken"), "events": one })).await;
    assert_eq!(status, 201);
    let (status, _) =
        add(json!({ "name": "admins", "kind": "email", "target": "admin@e2e.test, security@e2e.test", "events": one }))
            .await;
    assert_eq!(status, 201);
    let (status, refused) =
        add(json!({ "name": "odd", "kind": "webhook", "target": format!("{hooks}/odd"), "events": ["patch_tuesday"] }))
            .await;
    assert_eq!(status, 400, "{refused}");
    // A webhook's URL is shown by its host only (a Slack or Teams URL is its token).
    assert!(!webhook["target"].as_str().unwrap().contains("/ops"), "{webhook}");

    // The sync brings the catalog: one message to each channel.
    let env_b = HashMap::from([
        ("DATABASE_URL", db_b.clone()),
        ("WSUS_UPSTREAM_URL", a.gateway_url.clone()),
        ("WSUS_CONTENT_DIR", content_b.display().to_string()),
    ]);
    let (ok, out, err) = run_binary("sync-worker", &["sync", "--once", "--json"], &env_b);
    assert!(ok, "{out}{err}");
    for _ in 0..100 {
        if !on(&got, "/ops").is_empty()
            && !on(&got, "/chat").is_empty()
            && on(&got, "/broken").len() >= 3
            && !mails(&maildir).is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ops = on(&got, "/ops");
    assert_eq!(ops.len(), 1, "exactly one webhook");
    let (_, headers, body) = &ops[0];
    let signature =
        aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes()), body);
    assert_eq!(
        headers["x-wsus-signature"],
        format!("sha256={}", hex::encode(signature.as_ref())),
        "signed with the key"
    );
    let message: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(message["event"], "updates_synchronized");
    let pool_b = PgPool::connect(&db_b).await.unwrap();
    let (new,): (i64,) =
        sqlx::query_as("SELECT count(DISTINCT update_id) FROM revision WHERE update_type IN ('Software', 'Driver')")
            .fetch_one(&pool_b)
            .await
            .unwrap();
    assert_eq!(message["data"]["count"], new, "{message}");
    let counted: i64 =
        message["data"]["by_classification"].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum();
    assert_eq!(counted, new);
    let chat = on(&got, "/chat");
    assert_eq!(chat.len(), 1);
    let text: Value = serde_json::from_slice(&chat[0].2).unwrap();
    assert!(text["text"].as_str().unwrap().contains(&format!("{new} new updates synchronized")), "{text}");

    // One e-mail to both recipients, plain text and HTML.
    let mail = mails(&maildir);
    assert_eq!(mail.len(), 1, "exactly one mail");
    assert!(mail[0].contains(&format!("Subject: WSUS: {new} new updates synchronized")), "{}", mail[0]);
    assert!(mail[0].contains("admin@e2e.test") && mail[0].contains("security@e2e.test"));
    assert!(mail[0].contains("text/plain") && mail[0].contains("text/html"), "{}", mail[0]);

    // The dead endpoint: three attempts, then given up; the others were not held back.
    let mut dead = Value::Null;
    for _ in 0..100 {
        let (_, recent) = api(&http, &b.reporting_url, reqwest::Method::GET, "/api/v1/notifications", None).await;
        dead = recent
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["channel_id"] == broken["channel_id"])
            .cloned()
            .unwrap_or(Value::Null);
        if dead["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!((dead["state"].as_str(), dead["attempts"].as_i64()), (Some("failed"), Some(3)), "{dead}");
    assert!(dead["last_error"].as_str().unwrap().contains("500"), "{dead}");
    assert_eq!(on(&got, "/broken").len(), 3);

    // A sync that brings nothing new tells nothing.
    let (ok, out, err) = run_binary("sync-worker", &["sync", "--once", "--json"], &env_b);
    assert!(ok, "{out}{err}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(on(&got, "/ops").len(), 1, "still exactly one");

    // Send a test.
    let test_path = format!("/api/v1/notifications/channels/{}/test", webhook["channel_id"].as_str().unwrap());
    let (status, queued) = api(&http, &b.reporting_url, post, &test_path, None).await;
    assert_eq!(status, 202, "{queued}");
    for _ in 0..50 {
        if on(&got, "/ops").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ops = on(&got, "/ops");
    assert_eq!(ops.len(), 2);
    assert_eq!(serde_json::from_slice::<Value>(&ops[1].2).unwrap()["event"], "test");

    // The same through wsusctl.
    let env = HashMap::from([("WSUS_API_URL", b.reporting_url.clone()), ("WSUS_API_TOKEN", ADMIN_TOKEN.to_owned())]);
    let (ok, out, err) = run_binary("wsusctl", &["--json", "notifications", "channels"], &env);
    assert!(ok, "{out}{err}");
    assert_eq!(serde_json::from_str::<Vec<Value>>(&out).unwrap().len(), 4);
    let (ok, out, err) = run_binary("wsusctl", &["--json", "notifications", "list"], &env);
    assert!(ok, "{out}{err}");
    let sent: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(sent.iter().filter(|n| n["state"] == "sent").count(), 4, "{sent:?}");
    let (ok, out, err) =
        run_binary("wsusctl", &["notifications", "remove", broken["channel_id"].as_str().unwrap()], &env);
    assert!(ok, "{out}{err}");
}
