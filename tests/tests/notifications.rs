//! Notifications end to end, with the real binaries, an HTTP receiver the test runs and
//! Debian's aiosmtpd: a sync that brings new updates is told exactly once to each channel
//! (a signed JSON webhook, a Slack-compatible one, an e-mail); a sync that brings nothing
//! tells nothing; "send a test" arrives; an endpoint that keeps failing is tried again and
//! then given up, and delays no one else. With two reporting replicas, the signing
//! certificate's end, an install failure a client reported, a silent downstream server and
//! the scheduled status summary are each told once, through an endpoint that refuses every
//! first delivery, and mail goes over STARTTLS or implicit TLS with a login.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use wsus_e2e::{ADMIN_TOKEN, PgCluster, System, run_binary};

/// A request the receiver got: its path, headers (lower-case names) and body.
type Received = (String, HashMap<String, String>, Vec<u8>);

/// An HTTP receiver on loopback: 200 on every path but `/broken`, which answers 500, and
/// `/flaky`, which answers 500 to the first delivery of each notification.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Received>>> = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some(wsus_e2e::HttpRequest { path, headers, body }) = wsus_e2e::read_request(&mut socket).await
                else {
                    return;
                };
                let status = {
                    let mut seen = seen.lock().unwrap();
                    let first_try =
                        || !seen.iter().any(|(p, _, b)| p == "/flaky" && notification_id(b) == notification_id(&body));
                    let fail = path == "/broken" || (path == "/flaky" && first_try());
                    seen.push((path, headers, body));
                    if fail { "500 Internal Server Error" } else { "200 OK" }
                };
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

/// aiosmtpd that takes mail only over TLS (`starttls`: STARTTLS required; `tls`: implicit)
/// and only after a login as wsus / s3cret: arguments mode, port, certificate, key, Maildir.
const SMTP_TLS: &str = r#"
import ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
mode, port, cert, key, maildir = sys.argv[1:6]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
def login(server, session, envelope, mechanism, data):
    return AuthResult(success=(data.login == b"wsus" and data.password == b"s3cret"))
settings = dict(authenticator=login, auth_required=True, auth_require_tls=True)
if mode == "starttls":
    settings.update(tls_context=context, require_starttls=True)
else:
    # aiosmtpd counts only STARTTLS as TLS when deciding to offer AUTH; this socket is TLS.
    settings.update(ssl_context=context, auth_require_tls=False)
Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port), **settings).start()
while True:
    time.sleep(3600)
"#;

impl SmtpServer {
    fn start(port: u16, maildir: &std::path::Path) -> Self {
        let listen = format!("127.0.0.1:{port}");
        Self::launch(
            &[
                "-m".as_ref(),
                "aiosmtpd".as_ref(),
                "-n".as_ref(),
                "-l".as_ref(),
                listen.as_ref(),
                "-c".as_ref(),
                "aiosmtpd.handlers.Mailbox".as_ref(),
                maildir.as_os_str(),
            ],
            port,
        )
    }

    /// Mail over TLS with a login (`mode` starttls or tls), with `certificate` for localhost.
    fn start_tls(mode: &str, port: u16, certificate: &wsus_e2e::TestCertificate, maildir: &std::path::Path) -> Self {
        let port_text = port.to_string();
        Self::launch(
            &[
                "-c".as_ref(),
                SMTP_TLS.as_ref(),
                mode.as_ref(),
                port_text.as_ref(),
                certificate.cert.as_os_str(),
                certificate.key.as_os_str(),
                maildir.as_os_str(),
            ],
            port,
        )
    }

    /// Debian's Python with these arguments, once it listens on `port`.
    fn launch(args: &[&std::ffi::OsStr], port: u16) -> Self {
        let child = std::process::Command::new("/usr/bin/python3")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd (scripts/test-setup installs python3-aiosmtpd)");
        Self::listening(child, port)
    }

    fn listening(child: std::process::Child, port: u16) -> Self {
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

    // B's reporting sends; a failing endpoint is tried after 1 s, 2 s, then given up. The
    // chat's URL (its token) is kept in B's environment, as a Secret would give it.
    let (hooks, got) = receiver().await;
    let secret = "hook-secret-0123456789";
    let reporting = [
        ("WSUS_NOTIFY_URL_CHAT", format!("{hooks}/chat")),
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
    let (status, chat) =
        add(json!({ "name": "chat", "kind": "slack", "target_env": "WSUS_NOTIFY_URL_CHAT", "events": one })).await;
    assert_eq!(status, 201, "{chat}");
    assert_eq!((chat["target"].as_str(), chat["target_env"].as_str()), (Some(""), Some("WSUS_NOTIFY_URL_CHAT")));
    let (status, refused) =
        add(json!({ "name": "leak", "kind": "slack", "target_env": "DATABASE_URL", "events": one })).await;
    assert_eq!(status, 400, "only WSUS_NOTIFY_URL_* variables: {refused}");
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
    // What Teams was sent: an Adaptive Card, as its Workflows webhooks take one.
    let card: Value = serde_json::from_slice(&on(&got, "/broken")[0].2).unwrap();
    assert_eq!(card["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive", "{card}");
    let first_line = &card["attachments"][0]["content"]["body"][0]["text"];
    assert_eq!(first_line.as_str(), Some(format!("WSUS: {new} new updates synchronized").as_str()), "{card}");

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

/// Polls `done` every 100 ms for up to `within`; whether it came true.
async fn until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}

/// The notification a webhook's body carries (null when it is not one).
fn notification_id(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body).map(|m| m["notification_id"].clone()).unwrap_or(Value::Null)
}

/// The JSON bodies `/flaky` took (answered 200), by event.
fn delivered(got: &Arc<Mutex<Vec<Received>>>) -> Vec<Value> {
    let all = on(got, "/flaky");
    // The first delivery of each notification was refused; the ones after it were taken.
    (0..all.len())
        .filter(|&i| all[..i].iter().any(|(_, _, b)| notification_id(b) == notification_id(&all[i].2)))
        .map(|i| serde_json::from_slice(&all[i].2).unwrap())
        .collect()
}

/// A code-signing certificate (RSA 2048, self-signed by openssl) that ends in `days`.
fn short_lived_signing_certificate(dir: &std::path::Path, days: u32) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("signing.pem"), dir.join("signing.key"));
    let ok = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", &days.to_string()])
        .args(["-subj", "/CN=E2E Publisher", "-addext", "keyUsage=critical,digitalSignature"])
        .args(["-addext", "extendedKeyUsage=codeSigning", "-addext", "basicConstraints=CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    (cert, key)
}

// One function on purpose: the two replicas, the receiver and the mail server are shared
// by every condition told, and each step checks nothing was told twice so far.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_tell_each_condition_once_despite_a_failing_endpoint() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 60, seed: 23, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));
    let (cert, key) = short_lived_signing_certificate(dir.path(), 10);
    let tls = wsus_e2e::TestCertificate::new();
    let smtp_port = wsus_e2e::free_port();
    let maildir = dir.path().join("maildir");
    let _smtp = SmtpServer::start_tls("starttls", smtp_port, &tls, &maildir);

    // Both replicas look every second and try a failed delivery again after a second;
    // mail goes over STARTTLS with a login, to a server whose root they trust.
    let reporting = [
        ("WSUS_NOTIFY_WATCH_SECONDS", "1".to_owned()),
        ("WSUS_NOTIFY_RETRY_SECONDS", "1".to_owned()),
        ("WSUS_SMTP_URL", format!("smtp://wsus:s3cret@localhost:{smtp_port}?tls=required")),
        ("WSUS_SMTP_FROM", "WSUS <wsus@e2e.test>".to_owned()),
        ("SSL_CERT_FILE", tls.ca_file.display().to_string()),
    ];
    let signing = [
        ("WSUS_SIGNING_CERTIFICATE_FILE", cert.display().to_string()),
        ("WSUS_SIGNING_KEY_FILE", key.display().to_string()),
    ];
    let http = reqwest::Client::new();
    let system = System::start_each(&db, None, &[], &signing, &reporting);
    system.wait_ready(&http).await;
    let (second_http, second_grpc) = (wsus_e2e::free_port(), wsus_e2e::free_port());
    let second = system.reporting.replica(&[
        ("WSUS_HTTP_ADDR", format!("127.0.0.1:{second_http}")),
        ("WSUS_GRPC_ADDR", format!("127.0.0.1:{second_grpc}")),
    ]);
    let second_url = format!("http://127.0.0.1:{second_http}");
    wsus_e2e::wait_for_status(&http, &format!("{second_url}/readyz"), 200, Duration::from_secs(60)).await;
    let pool = PgPool::connect(&db).await.unwrap();

    let (hooks, got) = receiver().await;
    let every =
        ["status_summary", "installs_failed", "downstream_silent", "certificate_expiring", "updates_synchronized"];
    // One channel added through each replica.
    let channels = [
        (
            &system.reporting_url,
            json!({ "name": "ops", "kind": "webhook", "target": format!("{hooks}/flaky"), "events": every }),
        ),
        (
            &second_url,
            json!({ "name": "admins", "kind": "email", "target": "admin@e2e.test", "events": ["status_summary"] }),
        ),
    ];
    for (base, channel) in channels {
        let (status, added) =
            api(&http, base, reqwest::Method::POST, "/api/v1/notifications/channels", Some(channel)).await;
        assert_eq!(status, 201, "{added}");
    }

    // The signing certificate ends in ten days: sync-worker tells once (stage "under 14").
    assert!(
        until(Duration::from_secs(30), || delivered(&got).iter().any(|m| m["event"] == "certificate_expiring")).await,
        "{}",
        system.sync.log()
    );
    let told = delivered(&got);
    let certificate = told.iter().find(|m| m["event"] == "certificate_expiring").unwrap();
    assert_eq!(certificate["data"]["days_left"], 9, "{certificate}");

    // A computer reports an install that failed (event 182, as the native client's).
    let update: uuid::Uuid = sqlx::query_as::<_, (uuid::Uuid,)>(
        "SELECT update_id FROM revision WHERE update_type = 'Software' ORDER BY update_id LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .0;
    let mut agent = wsus_e2e::agent::Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();
    let nil = "00000000-0000-0000-0000-000000000000";
    let failed = update.to_string();
    let events: &[(i32, &str, &[&str])] = &[(147, nil, &["0"]), (181, &failed, &[]), (182, &failed, &[])];
    agent.report(events, None).await.unwrap();
    assert!(
        until(Duration::from_secs(30), || delivered(&got).iter().any(|m| m["event"] == "installs_failed")).await,
        "{}",
        system.reporting.log()
    );
    let message = delivered(&got).into_iter().find(|m| m["event"] == "installs_failed").unwrap();
    assert_eq!(message["data"]["computers"], 1);
    assert_eq!(message["data"]["named"][0]["computer_id"], agent.client_id.as_str());
    assert_eq!(message["data"]["named"][0]["updates"][0]["update_id"], failed.as_str());

    // A downstream server whose last roll-up (as its RollupDownstreamServers wrote it) is
    // three days old: told once, after the default 48 hours.
    sqlx::query(
        "INSERT INTO downstream_server (server_id, fqdn, last_rollup_time) \
         VALUES (gen_random_uuid(), 'branch.e2e.test', now() - interval '3 days')",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(until(Duration::from_secs(30), || delivered(&got).iter().any(|m| m["event"] == "downstream_silent")).await);

    // The status summary, daily at 06:00 then 08:00 UTC in German, made due now: one
    // webhook and one mail.
    let change = |settings: Value| {
        let (http, base) = (http.clone(), second_url.clone());
        async move { api(&http, &base, reqwest::Method::PATCH, "/api/v1/notifications/settings", Some(settings)).await }
    };
    let (status, settings) =
        change(json!({ "summary": { "every": "day", "hour": 6, "weekday": 1 }, "language": "de" })).await;
    assert_eq!(status, 200, "{settings}");
    let (status, refused) = change(json!({ "summary": { "every": "day", "hour": 24, "weekday": 1 } })).await;
    assert_eq!(status, 400, "{refused}");
    // What a change leaves out stays: the hour alone moves a daily summary.
    let (status, settings) = change(json!({ "summary": { "hour": 8 } })).await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!((settings["summary"]["every"].as_str(), settings["language"].as_str()), (Some("day"), Some("de")));
    let (next,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT next_at FROM notification_schedule WHERE event_kind = 'status_summary'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(next.format("%H:%M:%S").to_string(), "08:00:00");
    assert!(next > chrono::Utc::now() && next < chrono::Utc::now() + chrono::Duration::days(1));
    sqlx::query("UPDATE notification_schedule SET next_at = now() - interval '1 second'").execute(&pool).await.unwrap();
    assert!(
        until(Duration::from_secs(30), || {
            delivered(&got).iter().any(|m| m["event"] == "status_summary") && !mails(&maildir).is_empty()
        })
        .await,
        "{}\n{}",
        system.reporting.log(),
        second.log()
    );
    let summary = delivered(&got).into_iter().find(|m| m["event"] == "status_summary").unwrap();
    assert_eq!(summary["title"], "WSUS-Statusbericht");
    assert_eq!(summary["data"]["computers"]["total"], 1, "{summary}");
    assert_eq!(summary["data"]["computers"]["with_errors"], 1, "{summary}");
    let mail = mails(&maildir);
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains("Subject: WSUS-Statusbericht"), "{}", mail[0]);
    let (moved,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT next_at FROM notification_schedule WHERE event_kind = 'status_summary'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(moved > chrono::Utc::now(), "moved on to the next day: {moved}");

    // A few more looks by both replicas: still each condition told exactly once, each
    // delivery refused once, taken once, never twice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let taken = delivered(&got);
    let mut events: Vec<&str> = taken.iter().map(|m| m["event"].as_str().unwrap()).collect();
    events.sort_unstable();
    assert_eq!(events, ["certificate_expiring", "downstream_silent", "installs_failed", "status_summary"]);
    assert_eq!(on(&got, "/flaky").len(), 8, "each refused once and taken once");
    assert_eq!(mails(&maildir).len(), 1);
    let (sent, attempts): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(attempts) FROM notification_outbox WHERE state = 'sent'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((sent, attempts), (5, 9), "four webhooks tried twice, one mail once");
    drop(second);
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_goes_over_implicit_tls_and_an_email_channel_needs_a_mail_server() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let tls = wsus_e2e::TestCertificate::new();
    let dir = tempfile::tempdir().unwrap();
    let (port, maildir) = (wsus_e2e::free_port(), dir.path().join("maildir"));
    let _smtp = SmtpServer::start_tls("tls", port, &tls, &maildir);
    let http = reqwest::Client::new();
    let mut system = System::start(&db);
    system.wait_ready(&http).await;
    let channel = json!({ "name": "admins", "kind": "email", "target": "admin@e2e.test", "events": ["sync_failed"] });
    let add = reqwest::Method::POST;
    let (status, refused) =
        api(&http, &system.reporting_url, add.clone(), "/api/v1/notifications/channels", Some(channel.clone())).await;
    assert_eq!(status, 400, "no WSUS_SMTP_URL: {refused}");
    assert!(refused.to_string().contains("WSUS_SMTP_URL"), "{refused}");

    system.reporting.restart_with(&[
        ("WSUS_SMTP_URL", format!("smtps://wsus:s3cret@localhost:{port}")),
        ("WSUS_SMTP_FROM", "wsus@e2e.test".to_owned()),
        ("SSL_CERT_FILE", tls.ca_file.display().to_string()),
    ]);
    system.wait_ready(&http).await;
    let (status, added) =
        api(&http, &system.reporting_url, add.clone(), "/api/v1/notifications/channels", Some(channel)).await;
    assert_eq!(status, 201, "{added}");
    let test = format!("/api/v1/notifications/channels/{}/test", added["channel_id"].as_str().unwrap());
    let (status, _) = api(&http, &system.reporting_url, add, &test, None).await;
    assert_eq!(status, 202);
    assert!(until(Duration::from_secs(20), || !mails(&maildir).is_empty()).await, "{}", system.reporting.log());
    assert!(mails(&maildir)[0].contains("Subject: WSUS: a test notification"));
}
