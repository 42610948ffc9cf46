//! Security of the management API and of the secrets: bearer tokens and roles, the API
//! over HTTPS (the plain port keeps the probes and refuses /api), the downstream-server
//! allowlist of the upstream web services, and no secret in any service's log.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};
use wsus_e2e::agent::Agent;
use wsus_e2e::{
    ADMIN_TOKEN, ForwardProxy, PgCluster, READER_TOKEN, Service, System, TestCertificate, free_port, read_reference,
    run_binary, wait_for_status,
};

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, String) {
    let r = request.timeout(Duration::from_secs(10)).send().await.unwrap();
    (r.status(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_roles_guard_the_management_api() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 30, seed: 5, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));
    let system = System::start(&db);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;
    let api = |path: &str| format!("{}/api/v1/{path}", system.reporting_url);

    // Without a valid token: 401 with a Bearer challenge, and the token is not echoed.
    let r = http.get(api("computers")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let near_misses = [
        format!("{ADMIN_TOKEN}x"),
        ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1].to_owned(),
        ADMIN_TOKEN.to_uppercase(),
        String::new(),
        "reader:".to_owned() + READER_TOKEN,
    ];
    for wrong in &near_misses {
        let (status, body) = send(http.get(api("computers")).bearer_auth(wrong)).await;
        assert_eq!(status, 401, "token {wrong:?}: {body}");
        assert!(wrong.is_empty() || !body.contains(wrong.as_str()), "{body}");
    }
    for header in [format!("Basic {ADMIN_TOKEN}"), ADMIN_TOKEN.to_owned(), format!("Bearer{ADMIN_TOKEN}")] {
        let (status, _) = send(http.get(api("computers")).header(AUTHORIZATION, &header)).await;
        assert_eq!(status, 401, "{header:?}");
    }
    // Weird input is refused, never a server error: non-ASCII bytes, a very long value,
    // a value longer than the server reads at all.
    let non_ascii = HeaderValue::from_bytes("Bearer admin-tøken-1234 \u{1F512}".as_bytes()).unwrap();
    assert_eq!(send(http.get(api("computers")).header(AUTHORIZATION, non_ascii)).await.0, 401);
    let long = format!("Bearer {}", "a".repeat(64 * 1024));
    assert_eq!(send(http.get(api("computers")).header(AUTHORIZATION, long)).await.0, 401);
    let huge = format!("Bearer {}", "a".repeat(1024 * 1024));
    match http.get(api("computers")).header(AUTHORIZATION, huge).send().await {
        Ok(r) => assert!(r.status().is_client_error(), "a 1 MiB header: {}", r.status()),
        Err(e) => assert!(!e.is_timeout(), "a 1 MiB header: {e}"),
    }

    // A reader reads (the scheme's name in any case) but changes nothing.
    let (status, body) = send(http.get(api("groups")).bearer_auth(READER_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let all_computers = serde_json::from_str::<Value>(&body).unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "All Computers")
        .map(|g| g["group_id"].as_str().unwrap().to_owned())
        .unwrap();
    let lower = format!("bearer {READER_TOKEN}");
    assert_eq!(send(http.get(api("updates")).header(AUTHORIZATION, lower)).await.0, 200);
    let updates: Value =
        http.get(api("updates?limit=5")).bearer_auth(READER_TOKEN).send().await.unwrap().json().await.unwrap();
    let update = updates["items"][0]["update_id"].as_str().unwrap().to_owned();
    let approval = api(&format!("updates/{update}/approvals/{all_computers}"));
    let changes = [
        http.post(api("groups")).json(&json!({"name": "by a reader"})),
        http.put(&approval).json(&json!({"action": "Install"})),
        http.delete(&approval),
        http.post(api(&format!("updates/{update}/decline"))),
        http.patch(api(&format!("groups/{all_computers}"))).json(&json!({"name": "renamed"})),
        http.post(api("rules/apply")),
    ];
    for change in changes {
        let (status, body) = send(change.bearer_auth(READER_TOKEN)).await;
        assert_eq!(status, 403, "{body}");
    }
    let approvals = api(&format!("updates/{update}/approvals"));
    let approvals: Value = http.get(approvals).bearer_auth(READER_TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(approvals["items"], json!([]), "the reader approved nothing");

    // The admin changes things.
    let (status, body) = send(http.post(api("groups")).bearer_auth(ADMIN_TOKEN).json(&json!({"name": "Pilot"}))).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        send(http.put(&approval).bearer_auth(ADMIN_TOKEN).json(&json!({"action": "Install", "accept_eula": true})))
            .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(http.delete(&approval).header(AUTHORIZATION, format!("BEARER {ADMIN_TOKEN}"))).await;
    assert!(status.is_success(), "{status} {body}");
    let groups: Value = http.get(api("groups")).bearer_auth(READER_TOKEN).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = groups["items"].as_array().unwrap().iter().filter_map(|g| g["name"].as_str()).collect();
    assert!(names.contains(&"Pilot") && !names.contains(&"by a reader"), "{names:?}");
    drop(pg);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_management_api_can_be_served_over_https_only() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let certificate = TestCertificate::new();
    let (plain, tls, grpc) = (free_port(), free_port(), free_port());
    let env = HashMap::from([
        ("DATABASE_URL", db.clone()),
        ("WSUS_HTTP_ADDR", format!("127.0.0.1:{plain}")),
        ("WSUS_GRPC_ADDR", format!("127.0.0.1:{grpc}")),
        ("WSUS_SYNC_GRPC", format!("http://127.0.0.1:{}", free_port())),
        ("WSUS_API_TOKENS", format!("reader:{READER_TOKEN},admin:{ADMIN_TOKEN}")),
        ("WSUS_TLS_ADDR", format!("127.0.0.1:{tls}")),
        ("WSUS_TLS_CERT", certificate.cert.display().to_string()),
        ("WSUS_TLS_KEY", certificate.key.display().to_string()),
    ]);
    let reporting = Service::spawn("reporting", &env);
    let http = reqwest::Client::new();
    let plain = format!("http://127.0.0.1:{plain}");
    let https = format!("https://localhost:{tls}");
    // Probes and metrics stay on the plain port.
    wait_for_status(&http, &format!("{plain}/readyz"), 200, Duration::from_secs(60)).await;
    assert_eq!(http.get(format!("{plain}/metrics")).send().await.unwrap().status(), 200);

    // The API answers over HTTPS to a client that trusts the certificate...
    let trusting = certificate.client();
    let (status, body) = send(trusting.get(format!("{https}/api/v1/groups")).bearer_auth(READER_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("All Computers"), "{body}");
    assert_eq!(send(trusting.get(format!("{https}/api/v1/groups"))).await.0, 401);
    assert_eq!(send(trusting.post(format!("{https}/api/v1/groups")).bearer_auth(READER_TOKEN)).await.0, 403);
    assert_eq!(send(trusting.get(format!("{https}/api/openapi.json"))).await.0, 200);
    // ...not to one that does not...
    assert!(http.get(format!("{https}/api/v1/groups")).bearer_auth(READER_TOKEN).send().await.is_err());
    // ...and not in the clear, whatever the token.
    for path in ["/api/v1/groups", "/api/openapi.json", "/api", "/api/v1/nothing-here"] {
        let (status, body) = send(http.get(format!("{plain}{path}")).bearer_auth(ADMIN_TOKEN)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("HTTPS"), "{body}");
    }
    let (status, _) =
        send(http.post(format!("{plain}/api/v1/groups")).bearer_auth(ADMIN_TOKEN).json(&json!({"name": "x"}))).await;
    assert_eq!(status, 403);

    // wsusctl reaches it with the root given (WSUS_API_CA_FILE or --ca-file), and refuses
    // a certificate it cannot verify.
    let ctl = |ca: Option<&str>| {
        let mut env = HashMap::from([("WSUS_API_URL", https.clone()), ("WSUS_API_TOKEN", READER_TOKEN.to_owned())]);
        if let Some(ca) = ca {
            env.insert("WSUS_API_CA_FILE", ca.to_owned());
        }
        run_binary("wsusctl", &["--json", "groups", "list"], &env)
    };
    let (ok, out, err) = ctl(Some(&certificate.ca_file.display().to_string()));
    assert!(ok && out.contains("All Computers"), "{out}{err}");
    let (ok, out, err) = ctl(None);
    assert!(!ok && out.is_empty(), "{out}{err}");
    let with_flag = HashMap::from([("WSUS_API_URL", https.clone()), ("WSUS_API_TOKEN", READER_TOKEN.to_owned())]);
    let ca = certificate.ca_file.display().to_string();
    let (ok, out, err) = run_binary("wsusctl", &["--ca-file", &ca, "--json", "groups", "list"], &with_flag);
    assert!(ok && out.contains("All Computers"), "{out}{err}");
    drop(reporting);
    drop(pg);
}

/// The DssAuth, ServerSync and Reporting web services as a downstream server calls them:
/// a recorded request with its body edited.
async fn soap(http: &reqwest::Client, base: &str, exchange: &str, edit: impl Fn(String) -> String) -> (u16, String) {
    let dir = format!("captures/wsus-m0-wsusss/exchanges/{exchange}");
    let meta: Value = serde_json::from_slice(&read_reference(&format!("{dir}/meta.json"))).unwrap();
    let body = edit(String::from_utf8(read_reference(&format!("{dir}/request.body"))).unwrap());
    let r = http
        .post(format!("{base}{}", meta["path"].as_str().unwrap()))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", format!("\"{}\"", meta["soap_action"].as_str().unwrap()))
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn element(xml: &str, name: &str) -> String {
    let start = xml.find(&format!("<{name}>")).unwrap_or_else(|| panic!("no {name} in {xml}")) + name.len() + 2;
    xml[start..start + xml[start..].find('<').unwrap()].to_owned()
}

/// The recorded GetAuthorizationCookie comes from this server.
const RECORDED_DSS: (&str, &str) = ("6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12", "probe.lab.invalid");

#[tokio::test(flavor = "multi_thread")]
async fn only_allowed_downstream_servers_are_served() {
    let pg = PgCluster::start().unwrap();
    let (db, db_allowed, db_refused) =
        (pg.create_database("uss").unwrap(), pg.create_database("dss1").unwrap(), pg.create_database("dss2").unwrap());
    let allowed_id = uuid::Uuid::new_v4().to_string();
    let allowlist = format!("{allowed_id},Named.Dss.E2E.Test");
    let mut system = System::start_with(&db, None, &[("WSUS_DSS_ALLOWLIST", allowlist)]);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;
    let base = system.gateway_url.clone();
    let as_server = |id: &str, name: &str| {
        let (id, name) = (id.to_owned(), name.to_owned());
        move |b: String| b.replace(RECORDED_DSS.0, &id).replace(RECORDED_DSS.1, &name)
    };

    // GetAuthConfig names no server (MS-WSUSSS 3.1.4.1): anyone may read it.
    let (status, body) = soap(&http, &base, "000001", |b| b).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("DssTargeting"), "{body}");

    // The recorded server is on no list: InvalidAuthorizationCookie, which makes a WSUS
    // downstream server stop and start over (not retry in a loop).
    let (status, body) = soap(&http, &base, "000002", |b| b).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(element(&body, "ErrorCode"), "InvalidAuthorizationCookie", "{body}");

    // Listed by id, or by name (any letter case): authorised, and given a cookie.
    let (status, body) = soap(&http, &base, "000002", as_server(&allowed_id, "any.name.e2e.test")).await;
    assert_eq!(status, 200, "{body}");
    let auth_cookie = element(&body, "CookieData");
    let (status, body) =
        soap(&http, &base, "000002", as_server(&uuid::Uuid::new_v4().to_string(), "named.dss.e2e.test")).await;
    assert_eq!(status, 200, "{body}");
    let named_cookie = element(&body, "CookieData");
    let with_auth = |cookie: String| move |b: String| b.replace(&element(&b, "CookieData"), &cookie);
    let (status, body) = soap(&http, &base, "000003", with_auth(auth_cookie.clone())).await;
    assert_eq!(status, 200, "{body}");
    let server_cookie = element(&body, "EncryptedData");
    assert!(!server_cookie.is_empty(), "{body}");
    let with_cookie = |cookie: String| move |b: String| b.replace(&element(&b, "EncryptedData"), &cookie);
    let (status, body) = soap(&http, &base, "000004", with_cookie(server_cookie.clone())).await;
    assert_eq!(status, 200, "the server cookie is good: {body}");

    // A real downstream server: listed, it syncs and rolls up; not listed, it is refused
    // at authorisation, and its rollup too.
    let dir = tempfile::tempdir().unwrap();
    let dss = |db: &str, id: &str, name: &str| {
        HashMap::from([
            ("DATABASE_URL", db.to_owned()),
            ("WSUS_UPSTREAM_URL", base.clone()),
            ("WSUS_CONTENT_DIR", dir.path().join(id).display().to_string()),
            ("WSUS_SERVER_ID", id.to_owned()),
            ("WSUS_SERVER_FQDN", name.to_owned()),
        ])
    };
    let allowed = dss(&db_allowed, &allowed_id, "dss1.e2e.test");
    let (ok, out, err) = run_binary("sync-worker", &["sync", "--once", "--json"], &allowed);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run_binary("sync-worker", &["rollup", "--once", "--json"], &allowed);
    assert!(ok, "{out}{err}");
    let refused = dss(&db_refused, &uuid::Uuid::new_v4().to_string(), "dss2.e2e.test");
    let (ok, out, err) = run_binary("sync-worker", &["sync", "--once", "--json"], &refused);
    assert!(!ok && format!("{out}{err}").contains("InvalidAuthorizationCookie"), "{out}{err}");
    let (ok, out, err) = run_binary("sync-worker", &["rollup", "--once", "--json"], &refused);
    assert!(!ok && format!("{out}{err}").contains("not an allowed downstream server"), "{out}{err}");
    let servers: Value = http
        .get(format!("{}/api/v1/downstream-servers", system.reporting_url))
        .bearer_auth(READER_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = servers["items"].as_array().unwrap().iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(names.contains(&"dss1.e2e.test"), "{servers}");
    assert!(!names.contains(&"dss2.e2e.test") && !names.contains(&RECORDED_DSS.1), "{servers}");

    // Taken off the list, a server's authorisation no longer buys it a cookie.
    system.gateway.restart_with(&[("WSUS_DSS_ALLOWLIST", "named.dss.e2e.test".to_owned())]);
    system.wait_ready(&http).await;
    let (status, body) = soap(&http, &base, "000003", with_auth(auth_cookie)).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(element(&body, "ErrorCode"), "InvalidAuthorizationCookie", "{body}");
    // Nor does the server cookie it already holds keep it syncing (it is sent back to
    // DssAuth, which refuses it), nor may it go on rolling up.
    let (status, body) = soap(&http, &base, "000004", with_cookie(server_cookie)).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(element(&body, "ErrorCode"), "InvalidCookie", "{body}");
    let (ok, out, err) = run_binary("sync-worker", &["rollup", "--once", "--json"], &allowed);
    assert!(!ok && format!("{out}{err}").contains("InvalidCookie"), "{out}{err}");
    let (status, body) = soap(&http, &base, "000003", with_auth(named_cookie)).await;
    assert_eq!(status, 200, "{body}");
    drop(pg);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_the_logs() {
    let pg = PgCluster::start().unwrap();
    // Trust authentication ignores the password, but it is a secret all the same.
    let db_password = "Db-Pa55word-never-logged";
    let db = pg.create_database("wsus").unwrap().replace("postgres@", &format!("postgres:{db_password}@"));
    let dss_db = pg.create_database("dss").unwrap().replace("postgres@", &format!("postgres:{db_password}@"));
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 40, seed: 9, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));

    let b64 = |k: &[u8; 32]| base64::engine::general_purpose::STANDARD.encode(k);
    let (cookie_key, old_cookie_key) = ([0x5a; 32], [0xa5; 32]);
    let cookie_keys = format!("new:{},old:{}", b64(&cookie_key), b64(&old_cookie_key));
    // Everything each service says, at debug level.
    let verbose = [("RUST_LOG", "debug,h2=info,hyper=info,hyper_util=info,tower=info,rustls=info".to_owned())];
    let gateway = [("WSUS_COOKIE_KEYS", cookie_keys), verbose[0].clone()];
    let mut system = System::start_full(&db, None, &gateway, &verbose);
    system.reporting.restart_with(&verbose);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;

    // The management API: good tokens, bad ones (which may be someone's real token).
    let wrong_token = "Wr0ng-but-maybe-real-token";
    let groups = format!("{}/api/v1/groups", system.reporting_url);
    assert_eq!(send(http.get(&groups).bearer_auth(READER_TOKEN)).await.0, 200);
    assert_eq!(send(http.get(&groups).bearer_auth(wrong_token)).await.0, 401);
    assert_eq!(send(http.post(&groups).bearer_auth(READER_TOKEN).json(&json!({"name": "x"}))).await.0, 403);
    assert_eq!(send(http.post(&groups).bearer_auth(ADMIN_TOKEN).json(&json!({"name": "Ring 1"}))).await.0, 201);
    assert_eq!(send(http.post(&groups).bearer_auth(ADMIN_TOKEN).json(&json!({"nom": 1}))).await.0, 400);

    // A client: a scan and reports, then a cookie sealed with a key this server lacks.
    let mut agent = Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    let (_, sealed) = agent.cookie().unwrap();
    let mut damaged = base64::engine::general_purpose::STANDARD.decode(&sealed).unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    agent.set_cookie_data(&base64::engine::general_purpose::STANDARD.encode(damaged));
    assert_eq!(agent.sync_updates_page().await.unwrap_err().error_code, "InvalidCookie");
    agent.drop_cookie();
    agent.handshake(false).await.unwrap();

    // A downstream server through an authenticating proxy, then through one that is down.
    let proxy = ForwardProxy::start().await;
    let proxy_password = "Pr0xy-Pa55word-never-logged";
    let with_proxy = |proxy_url: &str| {
        let proxy_url = proxy_url.replace("http://", &format!("http://dss-user:{proxy_password}@"));
        HashMap::from([
            ("DATABASE_URL", dss_db.clone()),
            ("WSUS_UPSTREAM_URL", system.gateway_url.clone()),
            ("WSUS_UPSTREAM_PROXY", proxy_url),
            ("WSUS_CONTENT_DIR", dir.path().join("dss").display().to_string()),
            verbose[0].clone(),
        ])
    };
    let mut commands = Vec::new();
    let (ok, out, err) = run_binary("sync-worker", &["sync", "--once", "--json"], &with_proxy(&proxy.url));
    assert!(ok, "{out}{err}");
    assert!(!proxy.seen.lock().unwrap().is_empty(), "the sync went through the proxy");
    commands.push(("sync-worker sync through the proxy", format!("{out}{err}")));
    let down = format!("http://127.0.0.1:{}", free_port());
    let (ok, out, err) = run_binary("sync-worker", &["sync", "--once", "--json"], &with_proxy(&down));
    assert!(!ok, "{out}{err}");
    commands.push(("sync-worker sync, proxy down", format!("{out}{err}")));

    // Let the batched writes land, then read every log.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let secrets = [
        ("a database password", db_password.to_owned()),
        ("the reader token", READER_TOKEN.to_owned()),
        ("the admin token", ADMIN_TOKEN.to_owned()),
        ("a presented wrong token", wrong_token.to_owned()),
        ("the sealing cookie key", b64(&cookie_key)),
        ("the older cookie key", b64(&old_cookie_key)),
        ("a proxy password", proxy_password.to_owned()),
    ];
    let logs = [
        ("client-gateway", system.gateway.log()),
        ("reporting", system.reporting.log()),
        ("sync-worker", system.sync.log()),
    ];
    for (name, log) in logs.iter().map(|(n, l)| (*n, l)).chain(commands.iter().map(|(n, l)| (*n, l))) {
        assert!(log.len() > 200, "{name} logged almost nothing: {log}");
        for (what, secret) in &secrets {
            assert!(!log.contains(secret.as_str()), "{name} logged {what}");
        }
    }
    drop(pg);
}
