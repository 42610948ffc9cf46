//! The sync Lease against a mocked Kubernetes API server (an in-memory one behind kube's
//! tower service seam): one replica holds it and syncs, the other is refused, and takes
//! over when the first gives it back or stops renewing it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use sqlx::PgPool;
use sync_worker::lease::{LEASE_NAME, LeaseLock};
use tonic::Code;
use wsus_config::{SyncWorkerConfig, Vars};
use wsus_rpc::sync::StartSyncRequest;
use wsus_rpc::sync::sync_service_server::SyncService;

/// Leases by name, with resourceVersion checks as the API server makes them.
#[derive(Clone, Default)]
struct FakeApiServer {
    leases: Arc<Mutex<HashMap<String, Value>>>,
    version: Arc<Mutex<u64>>,
}

fn status(code: StatusCode, reason: &str) -> Response<Body> {
    let body = json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                       "message": reason, "code": code.as_u16() });
    let mut r = Response::new(Body::from(serde_json::to_vec(&body).unwrap()));
    *r.status_mut() = code;
    r
}

fn ok(code: StatusCode, lease: &Value) -> Response<Body> {
    let mut r = Response::new(Body::from(serde_json::to_vec(lease).unwrap()));
    *r.status_mut() = code;
    r
}

impl FakeApiServer {
    async fn handle(self, req: Request<Body>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let body = req.into_body().collect_bytes().await.unwrap();
        let Some(rest) = path.strip_prefix("/apis/coordination.k8s.io/v1/namespaces/wsus/leases") else {
            return status(StatusCode::NOT_FOUND, "NotFound");
        };
        let name = rest.trim_start_matches('/').to_owned();
        let mut leases = self.leases.lock().unwrap();
        let next = || {
            let mut v = self.version.lock().unwrap();
            *v += 1;
            v.to_string()
        };
        match method {
            Method::GET => match leases.get(&name) {
                Some(l) => ok(StatusCode::OK, l),
                None => status(StatusCode::NOT_FOUND, "NotFound"),
            },
            Method::POST => {
                let mut lease: Value = serde_json::from_slice(&body).unwrap();
                let name = lease["metadata"]["name"].as_str().unwrap().to_owned();
                if leases.contains_key(&name) {
                    return status(StatusCode::CONFLICT, "AlreadyExists");
                }
                lease["metadata"]["resourceVersion"] = json!(next());
                leases.insert(name, lease.clone());
                ok(StatusCode::CREATED, &lease)
            }
            Method::PUT => {
                let mut lease: Value = serde_json::from_slice(&body).unwrap();
                let Some(stored) = leases.get(&name) else { return status(StatusCode::NOT_FOUND, "NotFound") };
                if lease["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"] {
                    return status(StatusCode::CONFLICT, "Conflict");
                }
                lease["metadata"]["resourceVersion"] = json!(next());
                leases.insert(name, lease.clone());
                ok(StatusCode::OK, &lease)
            }
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
        }
    }

    fn client(&self) -> kube::Client {
        let this = self.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let this = this.clone();
            async move { Ok::<_, Infallible>(this.handle(req).await) }
        });
        kube::Client::new(service, "wsus")
    }

    fn holder(&self) -> Option<String> {
        self.leases
            .lock()
            .unwrap()
            .get(LEASE_NAME)
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
    }
}

fn lock(api: &FakeApiServer, holder: &str, duration: Duration) -> LeaseLock {
    LeaseLock::new(api.client(), "wsus", LEASE_NAME, holder, duration)
}

#[tokio::test]
async fn one_holder_at_a_time_and_takeover_after_expiry() {
    let api = FakeApiServer::default();
    let (a, b) = (lock(&api, "worker-a", Duration::from_secs(2)), lock(&api, "worker-b", Duration::from_secs(2)));
    assert!(a.try_acquire().await.unwrap(), "the first takes it");
    assert!(!b.try_acquire().await.unwrap(), "the second is refused");
    assert!(a.try_acquire().await.unwrap(), "the holder renews");
    a.release().await.unwrap();
    assert_eq!(api.holder(), None);
    assert!(b.try_acquire().await.unwrap(), "given back: the other takes it");
    assert!(!a.try_acquire().await.unwrap());
    // b stops renewing (its process died): after the duration a takes over.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(a.try_acquire().await.unwrap());
    assert_eq!(api.holder().as_deref(), Some("worker-a"));
    let transitions = api.leases.lock().unwrap()[LEASE_NAME]["spec"]["leaseTransitions"].as_i64();
    assert_eq!(transitions, Some(2));
    // Releasing a Lease one does not hold changes nothing.
    b.release().await.unwrap();
    assert_eq!(api.holder().as_deref(), Some("worker-a"));
}

fn config(upstream: &str) -> SyncWorkerConfig {
    let vars = [("DATABASE_URL", "postgres://unused/x".to_owned()), ("WSUS_UPSTREAM_URL", upstream.to_owned())];
    let lookup = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    SyncWorkerConfig::from_vars(&Vars::new(&lookup)).unwrap()
}

async fn wait_finished(pool: &PgPool, sync_id: i64) {
    for _ in 0..200 {
        let (result,): (String,) = sqlx::query_as("SELECT result FROM sync_history WHERE sync_id = $1")
            .bind(sync_id)
            .fetch_one(pool)
            .await
            .unwrap();
        if result != "running" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sync {sync_id} did not finish");
}

#[sqlx::test(migrations = false)]
async fn only_the_holder_syncs_and_the_other_takes_over(pool: PgPool) {
    wsus_store::migrate::run(&pool).await.unwrap();
    let seed = wsus_store::settings::Seed {
        products: vec![],
        classifications: vec![],
        languages: vec!["en".into()],
        syncs_per_day: 0,
        content_mode: wsus_store::settings::ContentMode::Lazy,
    };
    wsus_store::identity::ensure(&pool, None, Some("dss.example"), "dss", &seed).await.unwrap();
    let api = FakeApiServer::default();
    // Nothing listens there: each sync fails fast, and gives the Lease back.
    let upstream = "http://127.0.0.1:9";
    let a = Arc::new(lock(&api, "worker-a", Duration::from_secs(30)));
    let b = Arc::new(lock(&api, "worker-b", Duration::from_secs(30)));
    let worker_a = sync_worker::Sync::with_lease(pool.clone(), config(upstream), Some(a.clone()));
    let worker_b = sync_worker::Sync::with_lease(pool.clone(), config(upstream), Some(b.clone()));
    let start = |w: &sync_worker::Sync| {
        let request = tonic::Request::new(StartSyncRequest { trigger: "manual".into() });
        let w = w.clone();
        async move { w.start_sync(request).await }
    };

    // a holds the Lease (a long sync of its own, say): b may not sync.
    assert!(a.try_acquire().await.unwrap());
    let refused = start(&worker_b).await.unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    assert!(refused.message().contains("Lease"), "{refused:?}");
    // a syncs (renewing its own Lease) and gives it back when done.
    let run = start(&worker_a).await.unwrap().into_inner().sync_id;
    wait_finished(&pool, run).await;
    assert_eq!(api.holder(), None, "given back after the sync");
    // Now b takes over.
    let run = start(&worker_b).await.unwrap().into_inner().sync_id;
    wait_finished(&pool, run).await;
    let (history,): (i64,) = sqlx::query_as("SELECT count(*) FROM sync_history").fetch_one(&pool).await.unwrap();
    assert_eq!(history, 2, "one sync each, none while the other held the Lease");
}
