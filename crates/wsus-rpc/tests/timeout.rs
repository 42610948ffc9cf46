//! A client's calls end after the timeout its channel was made with, without a timeout
//! at the call: a service that stalls costs its caller SYNC_CALL_TIMEOUT, not forever.

use std::time::{Duration, Instant};

use wsus_rpc::sync::GetSyncStatusRequest;

#[tokio::test]
async fn a_stalled_service_is_given_up_after_the_channel_timeout() {
    // An HTTP/2 server that takes every call and answers none for a minute.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stalled = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        ""
    });
    tokio::spawn(async move { axum::serve(listener, stalled).await });

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

#[tokio::test]
async fn a_name_that_resolves_to_nothing_is_given_up_too() {
    // No address at all (a headless Service without a ready pod): the call waits for
    // none, so only a timeout over the whole channel ends it.
    let mut client = wsus_rpc::sync_client("http://nothing-here.invalid:50052").unwrap();
    let started = Instant::now();
    let status = client.get_sync_status(GetSyncStatusRequest {}).await.expect_err("the call is given up");
    let took = started.elapsed();
    assert!(took < wsus_rpc::SYNC_CALL_TIMEOUT * 3, "soon after the timeout: {took:?} ({status:?})");
}
