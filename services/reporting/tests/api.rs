//! The management API: tokens and roles, and the sync status fetched from a real
//! sync-worker SyncService over gRPC.

use std::sync::Arc;

use sqlx::PgPool;
use tokio_stream::wrappers::TcpListenerStream;
use wsus_config::{ApiToken, Role, SyncWorkerConfig, Vars};
use wsus_rpc::sync::sync_service_server::SyncServiceServer;

pub async fn start(pool: PgPool, upstream: Option<&str>) -> String {
    wsus_store::migrate::run(&pool).await.unwrap();
    let mut vars = vec![("DATABASE_URL", "postgres://unused/x".to_owned())];
    if let Some(u) = upstream {
        vars.push(("WSUS_UPSTREAM_URL", u.to_owned()));
    }
    let lookup = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let config = SyncWorkerConfig::from_vars(&Vars::new(&lookup)).unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sync_pool = pool.clone();
    let grpc_addr = grpc.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SyncServiceServer::new(sync_worker::Sync::new(sync_pool, config)))
            .serve_with_incoming(TcpListenerStream::new(grpc)),
    );
    let tokens = [
        ApiToken { role: Role::Admin, token: "admin-token-1".into() },
        ApiToken { role: Role::Reader, token: "reader-token-1".into() },
    ];
    let api = reporting::Api::new(pool, wsus_rpc::sync_client(&format!("http://{grpc_addr}")).unwrap(), &tokens);
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", http.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(http, reporting::api_router(Arc::new(api))).await });
    base
}

#[sqlx::test(migrations = false)]
async fn tokens_and_roles(pool: PgPool) {
    let base = start(pool, None).await;
    let http = reqwest::Client::new();
    let status = format!("{base}/api/v1/sync/status");
    let r = http.get(&status).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(http.get(&status).bearer_auth("admin-token-2").send().await.unwrap().status(), 401);
    assert_eq!(http.get(&status).bearer_auth("reader-token-1").send().await.unwrap().status(), 200);
    assert_eq!(http.get(&status).bearer_auth("admin-token-1").send().await.unwrap().status(), 200);

    let start = format!("{base}/api/v1/sync/start");
    assert_eq!(http.post(&start).bearer_auth("reader-token-1").send().await.unwrap().status(), 403);
    let r = http.post(&start).bearer_auth("admin-token-1").send().await.unwrap();
    assert_eq!(r.status(), 409, "no upstream configured");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("WSUS_UPSTREAM_URL"), "{body}");
}

/// Someone who opens the server's address is sent to the console; the API's root says,
/// without a token, what is there.
#[sqlx::test(migrations = false)]
async fn the_roots_say_where_to_go(pool: PgPool) {
    let base = start(pool, None).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/");
    for root in ["/api/v1/", "/api/v1"] {
        let r = http.get(format!("{base}{root}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{root}");
        let index: serde_json::Value = r.json().await.unwrap();
        assert_eq!(index["openapi"], "/api/openapi.json");
        let collections: Vec<&str> =
            index["collections"].as_array().unwrap().iter().filter_map(|c| c.as_str()).collect();
        for c in ["/api/v1/computers", "/api/v1/groups", "/api/v1/updates", "/api/v1/sync"] {
            assert!(collections.contains(&c), "{c} in {collections:?}");
        }
    }
    let r = http.get(format!("{base}/api/v1/nothing")).bearer_auth("reader-token-1").send().await.unwrap();
    assert_eq!(r.status(), 404, "unknown endpoints stay 404");
}

#[sqlx::test(migrations = false)]
async fn status_reflects_the_history(pool: PgPool) {
    let base = start(pool.clone(), Some("http://uss.example:8530")).await;
    let http = reqwest::Client::new();
    let get = || async {
        http.get(format!("{base}/api/v1/sync/status"))
            .bearer_auth("reader-token-1")
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let idle = get().await;
    assert_eq!(idle["upstream_url"], "http://uss.example:8530");
    assert!(idle["running"].is_null() && idle["last"].is_null());

    let done = wsus_store::sync_history::start(&pool, "http://uss.example:8530", wsus_store::run::Trigger::Schedule)
        .await
        .unwrap();
    wsus_store::sync_history::finish(&pool, done.sync_id, wsus_store::run::RunResult::Succeeded, None).await.unwrap();
    let run = wsus_store::sync_history::start(&pool, "http://uss.example:8530", wsus_store::run::Trigger::Manual)
        .await
        .unwrap();
    wsus_store::sync_history::progress(&pool, run.sync_id, "updates", 30, 120).await.unwrap();
    let busy = get().await;
    assert_eq!(busy["running"]["sync_id"], run.sync_id);
    assert_eq!(busy["running"]["phase"], "updates");
    assert_eq!((busy["running"]["done"].as_i64(), busy["running"]["total"].as_i64()), (Some(30), Some(120)));
    assert_eq!(busy["last"]["sync_id"], done.sync_id);
    assert_eq!(busy["last"]["result"], "succeeded");
    assert!(busy["last"]["finished_at"].is_string());

    // A manual start runs a sync: it ends the abandoned run above (nothing holds the
    // upstream's lock) and fails on the unreachable upstream, saying so.
    let seed = wsus_store::settings::Seed {
        products: vec![],
        classifications: vec![],
        languages: vec!["en".into()],
        syncs_per_day: 0,
        content_mode: wsus_store::settings::ContentMode::Lazy,
    };
    wsus_store::identity::ensure(&pool, None, Some("dss.example"), "dss", &seed).await.unwrap();
    let r = http.post(format!("{base}/api/v1/sync/start")).bearer_auth("admin-token-1").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let started = r.json::<serde_json::Value>().await.unwrap()["sync_id"].as_i64().unwrap();
    let mut last = serde_json::Value::Null;
    for _ in 0..150 {
        last = get().await;
        if last["last"]["sync_id"] == started {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last["last"]["result"], "failed", "{last}");
    assert!(last["last"]["error"].as_str().unwrap().contains("uss.example"), "{last}");
    let (abandoned,): (String,) = sqlx::query_as("SELECT result FROM sync_history WHERE sync_id = $1")
        .bind(run.sync_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(abandoned, "failed");

    // The history, newest first, a page at a time.
    let page = |cursor: Option<String>| {
        let http = http.clone();
        let url =
            format!("{base}/api/v1/sync/history?limit=2{}", cursor.map(|c| format!("&cursor={c}")).unwrap_or_default());
        async move {
            http.get(url).bearer_auth("reader-token-1").send().await.unwrap().json::<serde_json::Value>().await.unwrap()
        }
    };
    let first = page(None).await;
    let ids: Vec<i64> = first["items"].as_array().unwrap().iter().map(|r| r["sync_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![started, run.sync_id]);
    let rest = page(first["next_cursor"].as_str().map(str::to_owned)).await;
    assert_eq!(rest["items"][0]["sync_id"], done.sync_id);
    assert!(rest["next_cursor"].is_null());
    assert_eq!(
        http.get(format!("{base}/api/v1/sync/history?limit=5000"))
            .bearer_auth("reader-token-1")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

/// The OpenAPI document lists exactly the operations the router serves, and every
/// reference in it resolves.
#[test]
fn the_openapi_document_is_the_router() {
    let doc = reporting::api::openapi::document();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut served: Vec<(String, String)> =
        reporting::api::routes().served.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(doc["components"]["schemas"][name].is_object(), "dangling $ref {name}");
    }
}

/// Checks that a JSON object has exactly the properties of its schema.
fn conforms(doc: &serde_json::Value, schema: &str, value: &serde_json::Value) {
    let props = doc["components"]["schemas"][schema]["properties"].as_object().unwrap();
    let mut want: Vec<&String> = props.keys().collect();
    let mut got: Vec<&String> = value.as_object().unwrap_or_else(|| panic!("{schema}: {value}")).keys().collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{schema}: {value}");
}

fn reference_revisions(with_eula: Option<&str>) -> Vec<wsus_store::revisions::NewRevision> {
    let root = wsus_testdata::root().join("captures/wsus-m0-wsusss/docs");
    std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| {
            let mut xml = std::fs::read_to_string(e.path()).unwrap();
            if let Some(eula) = with_eula
                && e.file_name().to_string_lossy().starts_with(KB2267602)
            {
                xml = xml.replacen("<upd:Properties ", &format!("<upd:Properties EulaID=\"{eula}\" "), 1);
            }
            wsus_store::revisions::NewRevision::from_update(&wsus_metadata::Update::parse(xml).unwrap())
        })
        .collect()
}

/// The Defender bundle (KB2267602) of the capture server: the one update an admin sees.
const KB2267602: &str = "a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe";
/// Its classification in the capture (Definition Updates).
const DEFINITION_UPDATES: &str = "e0789628-ce08-4437-be74-2495b842f43b";

async fn register(pool: &PgPool, id: &str, name: &str) {
    let r = wsus_store::reporting::Registration {
        computer_id: id.into(),
        dns_name: Some(name.into()),
        os_major_version: Some(10),
        os_minor_version: Some(0),
        os_build_number: Some(26100),
        os_description: Some("Windows 10 Pro".into()),
        registered_at: chrono::Utc::now(),
        ..Default::default()
    };
    wsus_store::reporting::register_computer(pool, &r).await.unwrap();
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).unwrap() })
    }
    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, "reader-token-1", None).await
    }
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.call(method, path, "admin-token-1", body).await
    }
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[sqlx::test(migrations = false)]
async fn the_administrators_levers(pool: PgPool) {
    use reqwest::Method;
    use serde_json::json;
    let base = start(pool.clone(), None).await;
    let doc =
        reqwest::get(format!("{base}/api/openapi.json")).await.unwrap().json::<serde_json::Value>().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let api = Client { http: reqwest::Client::new(), base };
    let eula = "0e7f3f4a-5f8e-4c3c-9a43-0b7e4a1a2b3c";
    wsus_store::revisions::import_batch(&pool, &reference_revisions(Some(eula))).await.unwrap();
    wsus_store::revisions::refresh_derived(&pool).await.unwrap();
    register(&pool, "c1", "pc-one.contoso.test").await;
    register(&pool, "c2", "pc-two.contoso.test").await;

    // Computers: list, search, detail.
    let (s, page) = api.get("/api/v1/computers?limit=1").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    conforms(&doc, "Computer", &page["items"][0]);
    assert_eq!(page["items"][0]["name"], "pc-one.contoso.test");
    assert_eq!(page["items"][0]["state"], "not_reported");
    assert_eq!(page["items"][0]["os_version"], "10.0.26100");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = api.get(&format!("/api/v1/computers?limit=1&cursor={cursor}")).await;
    assert_eq!(next["items"][0]["computer_id"], "c2");
    assert!(next["next_cursor"].is_null());
    let (_, found) = api.get("/api/v1/computers?search=TWO").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(api.get("/api/v1/computers/nope").await.0, 404);
    assert_eq!(api.get("/api/v1/computers?limit=0").await.0, 400);
    assert_eq!(api.get("/api/v1/computers?cursor=!!").await.0, 400);
    assert_eq!(api.get("/api/v1/computers?state=sideways").await.0, 400);

    // Groups: create, nest, rename, refuse cycles and duplicates, membership.
    let (s, pilot) = api.admin(Method::POST, "/api/v1/groups", Some(json!({ "name": "Pilot" }))).await;
    assert_eq!(s, 201, "{pilot}");
    conforms(&doc, "Group", &pilot);
    let pilot_id = pilot["group_id"].as_str().unwrap().to_owned();
    let (s, ring) =
        api.admin(Method::POST, "/api/v1/groups", Some(json!({ "name": "Ring 1", "parent_group_id": pilot_id }))).await;
    assert_eq!(s, 201);
    let ring_id = ring["group_id"].as_str().unwrap().to_owned();
    assert_eq!(api.admin(Method::POST, "/api/v1/groups", Some(json!({ "name": "pilot" }))).await.0, 409);
    assert_eq!(api.call(Method::POST, "/api/v1/groups", "reader-token-1", Some(json!({ "name": "X" }))).await.0, 403);
    let (s, _) = api
        .admin(Method::PATCH, &format!("/api/v1/groups/{pilot_id}"), Some(json!({ "parent_group_id": ring_id })))
        .await;
    assert_eq!(s, 409, "a group cannot move under its own subgroup");
    let (s, renamed) =
        api.admin(Method::PATCH, &format!("/api/v1/groups/{ring_id}"), Some(json!({ "name": "Ring One" }))).await;
    assert_eq!((s, renamed["name"].as_str()), (200, Some("Ring One")));
    let all = "a0a08746-4dbe-4a37-9adf-9e7652c0b421";
    assert_eq!(api.admin(Method::DELETE, &format!("/api/v1/groups/{all}"), None).await.0, 409);
    let (s, added) = api
        .admin(Method::POST, &format!("/api/v1/groups/{ring_id}/computers"), Some(json!({ "computer_ids": ["c1"] })))
        .await;
    assert_eq!((s, added["added"].as_u64()), (200, Some(1)));
    let (s, _) = api
        .admin(Method::POST, &format!("/api/v1/groups/{ring_id}/computers"), Some(json!({ "computer_ids": ["zz"] })))
        .await;
    assert_eq!(s, 400, "unknown computers are refused");
    let (_, members) = api.get(&format!("/api/v1/groups/{pilot_id}/computers")).await;
    assert_eq!(members["items"].as_array().unwrap().len(), 1, "members of subgroups count: {members}");
    let (_, c1) = api.get("/api/v1/computers/c1").await;
    assert_eq!(c1["group_ids"], json!([ring_id]));
    let (_, groups) = api.get("/api/v1/groups").await;
    assert_eq!(groups["items"].as_array().unwrap().len(), 4, "{groups}");

    // Updates: search by KB and classification; detail.
    let (s, by_kb) = api.get("/api/v1/updates?kb=KB2267602").await;
    assert_eq!(s, 200);
    assert_eq!(by_kb["items"].as_array().unwrap().len(), 1, "{by_kb}");
    conforms(&doc, "Update", &by_kb["items"][0]);
    assert!(by_kb["items"][0]["title"].as_str().unwrap().starts_with("Security Intelligence Update"));
    let (_, by_title) = api.get("/api/v1/updates?search=security%20intelligence").await;
    assert_eq!(by_title["items"][0]["update_id"], KB2267602);
    let (_, by_class) = api.get(&format!("/api/v1/updates?classification={DEFINITION_UPDATES}")).await;
    assert!(by_class["items"].as_array().unwrap().iter().any(|u| u["update_id"] == KB2267602), "{by_class}");

    // Approvals: an EULA must be accepted; a deadline is kept; the catalog version moves.
    let version = || async { wsus_store::catalog::version(&pool).await.unwrap().version };
    let v0 = version().await;
    let approve = format!("/api/v1/updates/{KB2267602}/approvals/{pilot_id}");
    let deadline = "2026-12-24T18:00:00Z";
    let (s, refused) = api.admin(Method::PUT, &approve, Some(json!({ "deadline": deadline }))).await;
    assert_eq!(s, 409, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("license"), "{refused}");
    let (s, approval) =
        api.admin(Method::PUT, &approve, Some(json!({ "deadline": deadline, "accept_eula": true }))).await;
    assert_eq!(s, 200, "{approval}");
    conforms(&doc, "Approval", &approval);
    assert_eq!(approval["deadline"], deadline);
    assert!(version().await > v0);
    let (_, detail) = api.get(&format!("/api/v1/updates/{KB2267602}")).await;
    conforms(&doc, "UpdateDetail", &detail);
    assert_eq!(detail["eula_accepted"], true);
    assert_eq!(detail["approved_group_ids"], json!([pilot_id]));
    // The subgroup inherits: removing its own approval (it has none) is a 404.
    assert_eq!(
        api.admin(Method::DELETE, &format!("/api/v1/updates/{KB2267602}/approvals/{ring_id}"), None).await.0,
        404
    );

    // Statuses and reports: c1 installed it, c2 scanned and never named it.
    let kb: uuid::Uuid = KB2267602.parse().unwrap();
    let now = chrono::Utc::now();
    let fold = wsus_store::reporting::StatusFold {
        reports: vec![("c1".into(), kb, 4, now)],
        last_scans: vec![("c1".into(), now), ("c2".into(), now)],
        lifecycle: wsus_status::lifecycle_by_summarization_state(),
    };
    wsus_store::reporting::insert_events(&pool, &[], &fold).await.unwrap();
    let (_, detail) = api.get(&format!("/api/v1/updates/{KB2267602}")).await;
    assert_eq!(
        detail["status_counts"],
        json!({ "installed": 1, "needed": 0, "downloaded": 0, "failed": 0,
        "installed_pending_reboot": 0, "not_applicable": 1, "unknown": 0 })
    );
    let (_, in_ring) = api.get(&format!("/api/v1/updates/{KB2267602}?group_id={ring_id}")).await;
    assert_eq!(
        (in_ring["status_counts"]["installed"].as_i64(), in_ring["status_counts"]["not_applicable"].as_i64()),
        (Some(1), Some(0))
    );
    let (_, report) = api.get("/api/v1/reports/updates").await;
    conforms(&doc, "UpdateSummary", &report["items"][0]);
    assert_eq!(report["items"][0]["installed"], 1);
    let (_, statuses) = api.get("/api/v1/computers/c1/updates?status=installed").await;
    conforms(&doc, "UpdateStatus", &statuses["items"][0]);
    assert_eq!(statuses["items"][0]["status"], "Installed");
    let (_, up_to_date) = api.get("/api/v1/reports/computers?state=up_to_date").await;
    assert_eq!(up_to_date["items"].as_array().unwrap().len(), 2, "{up_to_date}");

    // Decline: approvals go, approving is refused until the decline is taken back.
    assert_eq!(api.admin(Method::POST, &format!("/api/v1/updates/{KB2267602}/decline"), None).await.0, 204);
    let (_, declined) = api.get("/api/v1/updates?approval=declined").await;
    assert_eq!(declined["items"][0]["approved_group_ids"], json!([]));
    assert_eq!(api.admin(Method::PUT, &approve, Some(json!({}))).await.0, 409);
    assert_eq!(api.admin(Method::DELETE, &format!("/api/v1/updates/{KB2267602}/decline"), None).await.0, 204);

    // Rules: a classification rule approves the update for its group when applied.
    let rule = json!({ "name": "Definitions", "classification_ids": [DEFINITION_UPDATES], "group_ids": [ring_id], "deadline_offset_hours": 24 });
    let (s, created) = api.admin(Method::POST, "/api/v1/rules", Some(rule)).await;
    assert_eq!(s, 201, "{created}");
    conforms(&doc, "Rule", &created);
    let (s, applied) = api.admin(Method::POST, "/api/v1/rules/apply", Some(json!({ "everything": true }))).await;
    assert_eq!(s, 200, "{applied}");
    conforms(&doc, "Applied", &applied);
    assert_eq!(applied["approved"], 1, "only the bundle is approvable, not its members: {applied}");
    let (_, approvals) = api.get(&format!("/api/v1/updates/{KB2267602}/approvals")).await;
    let by_rule =
        approvals["items"].as_array().unwrap().iter().find(|a| a["group_id"] == ring_id.as_str()).unwrap().clone();
    assert_eq!(by_rule["admin_name"], "rule: Definitions");
    assert!(by_rule["deadline"].is_string());
    let (_, again) = api.admin(Method::POST, "/api/v1/rules/apply", Some(json!({}))).await;
    assert_eq!(again["approved"], 0);

    // Settings: read, change, refuse nonsense without writing anything.
    let (s, settings) = api.get("/api/v1/settings").await;
    assert_eq!(s, 200);
    conforms(&doc, "Settings", &settings);
    let change = json!({ "content_mode": "immediate", "targeting": "client", "sync_schedule": { "syncs_per_day": 4 },
                         "languages": ["en", "de"], "retention": { "event_days": 30, "sync_history_days": 90, "stale_computer_days": 60 } });
    let (s, changed) = api.admin(Method::PATCH, "/api/v1/settings", Some(change)).await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!((changed["content_mode"].as_str(), changed["targeting"].as_str()), (Some("immediate"), Some("client")));
    assert_eq!(changed["languages"], json!(["de", "en"]), "by LCID");
    assert_eq!(changed["retention"]["event_days"], 30);
    let (s, _) = api.admin(Method::PATCH, "/api/v1/settings", Some(json!({ "content_mode": "sometimes" }))).await;
    assert_eq!(s, 400);
    let (s, _) = api.admin(Method::PATCH, "/api/v1/settings", Some(json!({ "languages": ["klingon"] }))).await;
    assert_eq!(s, 400);
    assert_eq!(api.get("/api/v1/settings").await.1, changed);
    let (_, products) = api.get("/api/v1/categories?type=Product").await;
    assert_eq!(products["items"][0]["category_id"], "dd78b8a1-0b20-45c1-add6-4da72e9364cf");

    // Cleanup runs and downstream servers, as the document describes them.
    let run = wsus_store::cleanup::start_run(&pool, wsus_store::run::Trigger::Cli).await.unwrap();
    wsus_store::cleanup::progress(&pool, run.run_id, "superseded_declined", 3).await.unwrap();
    wsus_store::cleanup::finish_run(&pool, run.run_id, None).await.unwrap();
    let (_, runs) = api.get("/api/v1/cleanup/runs").await;
    conforms(&doc, "CleanupRun", &runs["items"][0]);
    assert_eq!(runs["items"][0]["counts"]["superseded_declined"], 3);
    wsus_store::uss::record_downstream_server(&pool, uuid::Uuid::new_v4(), "dss.contoso.test").await.unwrap();
    let (_, servers) = api.get("/api/v1/downstream-servers").await;
    conforms(&doc, "DownstreamServer", &servers["items"][0]);
    assert_eq!(api.call(Method::POST, "/api/v1/cleanup/start", "reader-token-1", None).await.0, 403);

    // Deleting a group puts its computers back in Unassigned Computers.
    assert_eq!(api.admin(Method::DELETE, &format!("/api/v1/groups/{pilot_id}"), None).await.0, 204);
    let (_, c1) = api.get("/api/v1/computers/c1").await;
    assert_eq!(c1["group_ids"], json!([]));
    assert_eq!(api.get(&format!("/api/v1/groups/{ring_id}")).await.0, 404);
    assert_eq!(api.admin(Method::DELETE, "/api/v1/computers/c2", None).await.0, 204);
    assert_eq!(api.get("/api/v1/nothing-here").await.0, 404);
}

#[sqlx::test(migrations = false)]
async fn retention_changes_field_by_field(pool: PgPool) {
    use reqwest::Method;
    use serde_json::json;
    let base = start(pool.clone(), None).await;
    let api = Client { http: reqwest::Client::new(), base };
    let (_, before) = api.get("/api/v1/settings").await;
    let (s, after) =
        api.admin(Method::PATCH, "/api/v1/settings", Some(json!({ "retention": { "event_days": 7 } }))).await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(after["retention"]["event_days"], 7);
    for kept in ["sync_history_days", "stale_computer_days"] {
        assert_eq!(after["retention"][kept], before["retention"][kept], "{kept} stays");
    }
    let (s, _) = api.admin(Method::PATCH, "/api/v1/settings", Some(json!({ "retention": { "event_days": 0 } }))).await;
    assert_eq!(s, 400, "at least a day");
    assert_eq!(api.get("/api/v1/settings").await.1["retention"]["event_days"], 7, "nothing written");
}
