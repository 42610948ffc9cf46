//! A client spreads its calls over every address its server name resolves to, and
//! follows the addresses as they change.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wsus_rpc::sync::sync_service_server::{SyncService, SyncServiceServer};
use wsus_rpc::sync::*;

#[derive(Clone)]
struct Counting(Arc<AtomicUsize>);

#[tonic::async_trait]
impl SyncService for Counting {
    async fn start_sync(
        &self,
        _: tonic::Request<StartSyncRequest>,
    ) -> Result<tonic::Response<StartSyncResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("test"))
    }
    async fn get_sync_status(
        &self,
        r: tonic::Request<GetSyncStatusRequest>,
    ) -> Result<tonic::Response<SyncStatus>, tonic::Status> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let traced = r.metadata().get("traceparent").is_some();
        Ok(tonic::Response::new(SyncStatus { upstream_url: format!("traced={traced}"), ..Default::default() }))
    }
    type WatchSyncStream = tokio_stream::Empty<Result<SyncStatus, tonic::Status>>;
    async fn watch_sync(
        &self,
        _: tonic::Request<WatchSyncRequest>,
    ) -> Result<tonic::Response<Self::WatchSyncStream>, tonic::Status> {
        Ok(tonic::Response::new(tokio_stream::empty()))
    }
    async fn list_sync_history(
        &self,
        _: tonic::Request<ListSyncHistoryRequest>,
    ) -> Result<tonic::Response<SyncHistoryPage>, tonic::Status> {
        Err(tonic::Status::unimplemented("test"))
    }
    async fn start_cleanup(
        &self,
        _: tonic::Request<StartCleanupRequest>,
    ) -> Result<tonic::Response<StartCleanupResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("test"))
    }
    async fn publish(
        &self,
        _: tonic::Request<tonic::Streaming<PublishRequest>>,
    ) -> Result<tonic::Response<PublishResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("test"))
    }
    async fn expire_published(
        &self,
        _: tonic::Request<PublishedPackageRequest>,
    ) -> Result<tonic::Response<PublishResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("test"))
    }
    async fn delete_published(
        &self,
        _: tonic::Request<PublishedPackageRequest>,
    ) -> Result<tonic::Response<DeletePublishedResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("test"))
    }
    async fn get_signing_certificate(
        &self,
        _: tonic::Request<GetSigningCertificateRequest>,
    ) -> Result<tonic::Response<SigningCertificate>, tonic::Status> {
        Err(tonic::Status::unimplemented("test"))
    }
    async fn generate_signing_certificate(
        &self,
        _: tonic::Request<GenerateSigningCertificateRequest>,
    ) -> Result<tonic::Response<SigningCertificate>, tonic::Status> {
        Err(tonic::Status::unimplemented("test"))
    }
}

async fn serve(ip: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::new(AtomicUsize::new(0));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SyncServiceServer::new(Counting(counter.clone())))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, counter)
}

async fn call(client: &mut wsus_rpc::SyncClient) -> String {
    tokio::time::timeout(Duration::from_secs(5), client.get_sync_status(GetSyncStatusRequest {}))
        .await
        .expect("call answered")
        .unwrap()
        .into_inner()
        .upstream_url
}

#[tokio::test]
async fn calls_follow_every_resolved_address() {
    // Two servers on distinct loopback addresses stand for the pods behind a headless Service.
    let (a, hits_a) = serve("127.0.0.1").await;
    let (b, hits_b) = serve("127.0.0.2").await;
    let answer: Arc<Mutex<HashSet<SocketAddr>>> = Arc::new(Mutex::new([a, b].into()));
    let resolver = answer.clone();
    let channel = wsus_rpc::channel_over(
        move || {
            let found = resolver.lock().unwrap().clone();
            async move { Ok(found) }
        },
        Duration::from_millis(50),
    );
    let mut client =
        wsus_rpc::sync::sync_service_client::SyncServiceClient::with_interceptor(channel, wsus_rpc::TraceContext);

    for _ in 0..40 {
        assert_eq!(call(&mut client).await, "traced=false", "no span, no traceparent");
    }
    let (na, nb) = (hits_a.load(Ordering::SeqCst), hits_b.load(Ordering::SeqCst));
    assert_eq!(na + nb, 40);
    assert!(na > 0 && nb > 0, "both addresses get calls: {na} / {nb}");

    // The name now resolves to b only: after the next resolution a gets nothing.
    *answer.lock().unwrap() = [b].into();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = hits_a.load(Ordering::SeqCst);
    for _ in 0..20 {
        call(&mut client).await;
    }
    assert_eq!(hits_a.load(Ordering::SeqCst), before, "a removed address gets no calls");
}

#[tokio::test]
async fn dns_names_resolve() {
    let (a, hits) = serve("127.0.0.1").await;
    let mut client = wsus_rpc::sync_client(&format!("http://127.0.0.1:{}", a.port())).unwrap();
    call(&mut client).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
