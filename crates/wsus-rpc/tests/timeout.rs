//! A client's calls end after the timeout its channel was made with, without a timeout
//! at the call: a service that stalls costs its caller SYNC_CALL_TIMEOUT, not forever.

use std::time::{Duration, Instant};

use wsus_rpc::sync::sync_service_server::{SyncService, SyncServiceServer};
use wsus_rpc::sync::*;

/// Answers nothing for a minute.
struct Stalled;

#[tonic::async_trait]
impl SyncService for Stalled {
    async fn start_sync(
        &self,
        _: tonic::Request<StartSyncRequest>,
    ) -> Result<tonic::Response<StartSyncResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("test"))
    }
    async fn get_sync_status(
        &self,
        _: tonic::Request<GetSyncStatusRequest>,
    ) -> Result<tonic::Response<SyncStatus>, tonic::Status> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(tonic::Response::new(SyncStatus::default()))
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
}

#[tokio::test]
async fn a_stalled_service_is_given_up_after_the_channel_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SyncServiceServer::new(Stalled))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut client = wsus_rpc::sync_client(&format!("http://{addr}")).unwrap();
    let started = Instant::now();
    let status = client.get_sync_status(GetSyncStatusRequest {}).await.expect_err("the call is given up");
    let took = started.elapsed();
    assert!(took >= wsus_rpc::SYNC_CALL_TIMEOUT, "not before the timeout: {took:?}");
    assert!(took < wsus_rpc::SYNC_CALL_TIMEOUT * 3, "soon after it: {took:?}");
    // Never a code a caller would take as the service's own refusal.
    assert!(
        !matches!(
            status.code(),
            tonic::Code::InvalidArgument
                | tonic::Code::FailedPrecondition
                | tonic::Code::AlreadyExists
                | tonic::Code::NotFound
        ),
        "{status:?}"
    );
}
