//! The foundation, end to end: the three real binaries against a Postgres of their own.

use std::collections::HashMap;
use std::time::Duration;

use wsus_e2e::{PgCluster, Service, System, free_port, read_reference, status_of, wait_for_status};

const TOKEN: &str = wsus_e2e::READER_TOKEN;
const GET_CONFIG_ACTION: &str = "\"http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService/GetConfig\"";

async fn get_config(client: &reqwest::Client, gateway: &str, path: &str, body: Vec<u8>) -> (u16, String) {
    let r = client
        .post(format!("{gateway}{path}"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", GET_CONFIG_ACTION)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The text of the first `<tag>` element.
fn element<'a>(xml: &'a str, tag: &str) -> &'a str {
    let start = xml.find(&format!("<{tag}>")).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    &xml[start..end]
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn three_services_serve_and_ride_out_a_database_restart() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let system = System::start(&db);
    let http = reqwest::Client::new();
    let ready = Duration::from_secs(60);
    for base in [&system.gateway_url, &system.reporting_url, &system.sync_url] {
        wait_for_status(&http, &format!("{base}/healthz"), 200, ready).await;
        wait_for_status(&http, &format!("{base}/readyz"), 200, ready).await;
    }

    // GetConfig, as the native Windows 11 client sends it (lower-case path), answered
    // byte for byte like the real Windows Server 2025 WSUS apart from its own values.
    let request = read_reference("wusp/examples/native-capture/GetConfig.request.xml");
    let real = String::from_utf8(read_reference("wusp/examples/native-capture/GetConfig.response.xml")).unwrap();
    let (status, body) = get_config(&http, &system.gateway_url, "/ClientWebService/client.asmx", request.clone()).await;
    assert_eq!(status, 200, "{body}");
    let expected = real
        .trim_end()
        .replace(element(&real, "LastChange"), element(&body, "LastChange"))
        .replace(r"\\REDACTED2\UpdateServicesPackages", r"\\wsus.e2e.test\UpdateServicesPackages");
    assert_eq!(body, expected);
    let last_change = element(&body, "LastChange").to_owned();
    assert!(last_change.ends_with('Z') && last_change.starts_with("20"), "{last_change}");
    // Any letter case.
    let (status, upper) =
        get_config(&http, &system.gateway_url, "/CLIENTWEBSERVICE/CLIENT.ASMX", request.clone()).await;
    assert_eq!((status, upper.as_str()), (200, body.as_str()));

    // A malformed request gets the real server's fault shape.
    for bad in [
        b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><GetConfig xmlns=\"http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService\"/></s:Body></s:Envelope>".to_vec(),
        b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><GetConfig xmlns=\"http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService\"><protocolVersion>two</protocolVersion></GetConfig></s:Body></s:Envelope>".to_vec(),
        b"not xml at all".to_vec(),
        b"<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>".to_vec(),
    ] {
        let (status, fault) = get_config(&http, &system.gateway_url, "/ClientWebService/Client.asmx", bad).await;
        assert_eq!(status, 500);
        assert!(fault.starts_with("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>Fault occurred</faultstring><detail><ErrorCode>InvalidParameters</ErrorCode><Message>"), "{fault}");
        assert!(fault.contains(&format!("<Method>{GET_CONFIG_ACTION}</Method>")), "{fault}");
        let id = element(&fault, "ID");
        assert_eq!(id.len(), 36, "a GUID per fault: {id}");
    }

    // The sync status, from sync-worker over gRPC, through reporting's REST API.
    let status_url = format!("{}/api/v1/sync/status", system.reporting_url);
    assert_eq!(status_of(&http, &status_url).await, 401, "the API needs a token");
    let status: serde_json::Value =
        http.get(&status_url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(status, serde_json::json!({"upstream_url": null, "replica": false, "running": null, "last": null}));
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    sqlx::query(
        "INSERT INTO sync_history (upstream_url, trigger, finished_at, result, error, revisions_new) \
         VALUES ('http://uss.example:8530', 'manual', now(), 'failed', 'InvalidCookie', 7)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let status: serde_json::Value =
        http.get(&status_url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["last"]["result"], "failed", "{status}");
    assert_eq!(status["last"]["error"], "InvalidCookie");
    assert_eq!(status["last"]["revisions_new"], 7);
    assert!(status["running"].is_null());

    // The database goes away: every service turns not-ready, none dies.
    pg.stop().unwrap();
    for base in [&system.gateway_url, &system.reporting_url, &system.sync_url] {
        wait_for_status(&http, &format!("{base}/readyz"), 503, Duration::from_secs(20)).await;
        assert_eq!(status_of(&http, &format!("{base}/healthz")).await, 200);
    }
    // GetConfig needs no database round trip: still answered.
    let (status, during) =
        get_config(&http, &system.gateway_url, "/ClientWebService/client.asmx", request.clone()).await;
    assert_eq!((status, during.as_str()), (200, body.as_str()));
    let r = http.get(&status_url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503, "sync status says why it cannot answer");

    // It comes back: so do they, without a restart.
    pg.resume().unwrap();
    for base in [&system.gateway_url, &system.reporting_url, &system.sync_url] {
        wait_for_status(&http, &format!("{base}/readyz"), 200, Duration::from_secs(30)).await;
    }
    let status: serde_json::Value =
        http.get(&status_url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["last"]["result"], "failed");

    let metrics = http.get(format!("{}/metrics", system.gateway_url)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics
            .contains("wsus_http_requests_total{service=\"client-gateway\",route=\"ClientWebService\",status=\"200\"}"),
        "{metrics}"
    );

    // SIGTERM: a graceful, successful exit.
    let System { mut gateway, mut reporting, mut sync, .. } = system;
    for s in [&mut gateway, &mut reporting, &mut sync] {
        let exit = s.terminate(Duration::from_secs(15)).unwrap_or_else(|| panic!("{} did not stop", s.name));
        assert!(exit.success(), "{} exited with {exit}", s.name);
    }
    let log = gateway.log();
    assert!(log.lines().all(|l| l.starts_with('{')), "JSON logs only:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_starting_together_migrate_exactly_once() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let env =
        |port: u16| HashMap::from([("DATABASE_URL", db.clone()), ("WSUS_HTTP_ADDR", format!("127.0.0.1:{port}"))]);
    let (a_port, b_port) = (free_port(), free_port());
    let a = Service::spawn("client-gateway", &env(a_port));
    let b = Service::spawn("client-gateway", &env(b_port));
    let http = reqwest::Client::new();
    for port in [a_port, b_port] {
        wait_for_status(&http, &format!("http://127.0.0.1:{port}/readyz"), 200, Duration::from_secs(60)).await;
    }
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
        .count();
    let applied = |s: &Service| s.log().lines().filter(|l| l.contains("\"applied migration\"")).count();
    assert_eq!(applied(&a) + applied(&b), migrations, "each migration applied by exactly one process");
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM _sqlx_migrations").fetch_one(&pool).await.unwrap();
    assert_eq!(rows as usize, migrations);
    let (identities,): (i64,) = sqlx::query_as("SELECT count(*) FROM server_identity").fetch_one(&pool).await.unwrap();
    assert_eq!(identities, 1, "one identity, created by whichever started first");
    let seeded = a.log().contains("first start") as u8 + b.log().contains("first start") as u8;
    assert_eq!(seeded, 1, "settings seeded exactly once");
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_subcommand_and_migrate_on_start_off() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let port = free_port();
    let env = HashMap::from([
        ("DATABASE_URL", db.clone()),
        ("WSUS_HTTP_ADDR", format!("127.0.0.1:{port}")),
        ("WSUS_MIGRATE_ON_START", "false".to_owned()),
    ]);
    let _serving = Service::spawn("sync-worker", &{
        let mut e = env.clone();
        e.insert("WSUS_GRPC_ADDR", format!("127.0.0.1:{}", free_port()));
        e
    });
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    wait_for_status(&http, &ready, 503, Duration::from_secs(30)).await;
    let reason = http.get(&ready).send().await.unwrap().text().await.unwrap();
    assert!(reason.contains("migrations not applied"), "{reason}");

    // What the Helm migration Job runs.
    let mut job = Service::spawn_args("reporting", &["migrate"], &env);
    let exit = job.wait(Duration::from_secs(60)).expect("migrate finishes");
    assert!(exit.success(), "{}", job.log());
    wait_for_status(&http, &ready, 200, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_setting_stops_the_process_naming_the_variable() {
    for (name, value) in
        [("WSUS_HTTP_ADDR", "eighty-five-thirty"), ("WSUS_REPORTING_GRPC", "reporting:50051"), ("DATABASE_URL", "")]
    {
        let mut env = HashMap::from([("DATABASE_URL", "postgres://127.0.0.1:1/x".to_owned())]);
        env.insert(name, value.to_owned());
        let mut s = Service::spawn("client-gateway", &env);
        let exit = s.wait(Duration::from_secs(10)).expect("exits at once");
        assert_eq!(exit.code(), Some(2));
        assert!(s.log().contains(name), "{}", s.log());
    }
}
