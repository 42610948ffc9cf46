//! SyncService against a real Postgres.

use sqlx::PgPool;
use tokio_stream::StreamExt;
use wsus_config::{SyncWorkerConfig, Vars};
use wsus_rpc::sync::sync_service_server::SyncService;
use wsus_rpc::sync::{GetSyncStatusRequest, StartSyncRequest, WatchSyncRequest};

fn config(upstream: Option<&str>) -> SyncWorkerConfig {
    let mut vars = vec![("DATABASE_URL", "postgres://unused/x".to_owned())];
    if let Some(u) = upstream {
        vars.push(("WSUS_UPSTREAM_URL", u.to_owned()));
    }
    let lookup = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    SyncWorkerConfig::from_vars(&Vars::new(&lookup)).unwrap()
}

#[sqlx::test(migrations = false)]
async fn start_needs_an_upstream(pool: PgPool) {
    wsus_store::migrate::run(&pool).await.unwrap();
    let sync = sync_worker::Sync::new(pool, config(None));
    let err = sync.start_sync(tonic::Request::new(StartSyncRequest::default())).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

#[sqlx::test(migrations = false)]
async fn watch_streams_progress_until_the_run_ends(pool: PgPool) {
    wsus_store::migrate::run(&pool).await.unwrap();
    let sync = sync_worker::Sync::new(pool.clone(), config(Some("http://uss:8530")));

    // Nothing running: one snapshot, then the stream ends.
    let idle: Vec<_> =
        sync.watch_sync(tonic::Request::new(WatchSyncRequest {})).await.unwrap().into_inner().collect().await;
    assert_eq!(idle.len(), 1);

    let run =
        wsus_store::sync_history::start(&pool, "http://uss:8530", wsus_store::run::Trigger::Manual).await.unwrap();
    let mut stream = sync.watch_sync(tonic::Request::new(WatchSyncRequest {})).await.unwrap().into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.running.as_ref().unwrap().sync_id, run.sync_id);
    wsus_store::sync_history::progress(&pool, run.sync_id, "categories", 5, 10).await.unwrap();
    let moved = stream.next().await.unwrap().unwrap();
    assert_eq!(moved.running.as_ref().unwrap().phase, "categories");
    wsus_store::sync_history::finish(&pool, run.sync_id, wsus_store::run::RunResult::Succeeded, None).await.unwrap();
    let last = stream.next().await.unwrap().unwrap();
    assert!(last.running.is_none());
    assert_eq!(last.last.unwrap().result, "succeeded");
    assert!(stream.next().await.is_none(), "the stream ends with the run");

    let status = sync.get_sync_status(tonic::Request::new(GetSyncStatusRequest {})).await.unwrap().into_inner();
    assert_eq!(status.upstream_url, "http://uss:8530");
}
