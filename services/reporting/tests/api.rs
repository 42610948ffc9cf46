//! The management API: tokens and roles, and the sync status fetched from a real
//! sync-worker SyncService over gRPC.

use std::sync::Arc;

use sqlx::PgPool;
use tokio_stream::wrappers::TcpListenerStream;
use wsus_config::{ApiToken, Role, SyncWorkerConfig, Vars};
use wsus_rpc::sync::sync_service_server::SyncServiceServer;

async fn start(pool: PgPool, upstream: Option<&str>) -> String {
    wsus_store::migrate::run(&pool).await.unwrap();
    let mut vars = vec![("DATABASE_URL", "postgres://unused/x".to_owned())];
    if let Some(u) = upstream {
        vars.push(("WSUS_UPSTREAM_URL", u.to_owned()));
    }
    let lookup = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let config = SyncWorkerConfig::from_vars(&Vars::new(&lookup)).unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SyncServiceServer::new(sync_worker::Sync::new(pool, config)))
            .serve_with_incoming(TcpListenerStream::new(grpc)),
    );
    let tokens = [
        ApiToken { role: Role::Admin, token: "admin-token-1".into() },
        ApiToken { role: Role::Reader, token: "reader-token-1".into() },
    ];
    let api = reporting::Api::new(wsus_rpc::sync_client(&format!("http://{grpc_addr}")).unwrap(), &tokens);
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

    let done = wsus_store::sync_history::start(&pool, "http://uss.example:8530", "schedule").await.unwrap();
    wsus_store::sync_history::finish(&pool, done.sync_id, "succeeded", None).await.unwrap();
    let run = wsus_store::sync_history::start(&pool, "http://uss.example:8530", "manual").await.unwrap();
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
        content_mode: "lazy".into(),
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
}
