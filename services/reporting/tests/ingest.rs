//! ReportingService over real gRPC against a real Postgres.

use std::net::SocketAddr;

use sqlx::PgPool;
use tokio_stream::wrappers::TcpListenerStream;
use wsus_rpc::reporting::reporting_service_server::ReportingServiceServer;
use wsus_rpc::reporting::*;

async fn serve(pool: PgPool) -> wsus_rpc::ReportingClient {
    wsus_store::migrate::run(&pool).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ReportingServiceServer::new(reporting::Ingest::new(pool)))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    wsus_rpc::reporting_client(&format!("http://{addr}")).unwrap()
}

fn ts(s: &str) -> Option<wsus_rpc::Timestamp> {
    Some(wsus_rpc::timestamp(chrono::DateTime::parse_from_rfc3339(s).unwrap().into()))
}

const CLIENT: &str = "0d6a7f31-5c0c-4e5e-9b38-7d1f2a4b6c8e";

fn event(id: &str, event_id: i32) -> ClientEvent {
    ClientEvent {
        event_instance_id: id.into(),
        time_at_target: ts("2026-10-04T15:05:01Z"),
        computer_id: CLIENT.into(),
        namespace_id: 1,
        event_id,
        source_id: Some(101),
        update_id: Some("00000000-0000-0000-0000-000000000000".into()),
        revision_number: Some(0),
        misc_data: vec!["U=a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe".into()],
        ..Default::default()
    }
}

#[sqlx::test(migrations = false)]
async fn registrations_and_scans_are_stored(pool: PgPool) {
    let mut client = serve(pool.clone()).await;
    let computer = ComputerRegistration {
        computer_id: CLIENT.into(),
        dns_name: Some("DESKTOP-LAB".into()),
        os_build_number: Some(26200),
        processor_architecture: Some("AMD64".into()),
        suite_mask: Some(256),
        registered_at: ts("2026-10-04T14:49:05Z"),
        ..Default::default()
    };
    client.register_computer(RegisterComputerRequest { computer: Some(computer) }).await.unwrap();
    client
        .record_client_syncs(RecordClientSyncsRequest {
            syncs: vec![ClientSync {
                computer_id: CLIENT.into(),
                synced_at: ts("2026-10-04T15:03:40Z"),
                succeeded: true,
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    let stored = wsus_store::reporting::computer(&pool, CLIENT).await.unwrap().unwrap();
    assert_eq!(stored.dns_name.as_deref(), Some("DESKTOP-LAB"));
    assert_eq!(stored.os_build_number, Some(26200));
    assert_eq!(stored.last_sync_result, 1);

    let missing = client.register_computer(RegisterComputerRequest { computer: None }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);
    let overflow = ComputerRegistration {
        computer_id: CLIENT.into(),
        suite_mask: Some(70_000),
        registered_at: ts("2026-10-04T14:49:05Z"),
        ..Default::default()
    };
    let err = client.register_computer(RegisterComputerRequest { computer: Some(overflow) }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("suite_mask"), "{}", err.message());
}

#[sqlx::test(migrations = false)]
async fn events_are_stored_once(pool: PgPool) {
    let mut client = serve(pool.clone()).await;
    let batch =
        vec![event("7d4b3b7e-2f5a-4c61-9a0b-0c1d2e3f4a5b", 147), event("8e5c4c8f-3a6b-4d72-8b1c-1d2e3f4a5b6c", 156)];
    let first = client.ingest_events(IngestEventsRequest { events: batch.clone() }).await.unwrap().into_inner();
    assert_eq!((first.accepted, first.new_events), (2, 2));
    let again = client.ingest_events(IngestEventsRequest { events: batch }).await.unwrap().into_inner();
    assert_eq!((again.accepted, again.new_events), (2, 0), "a re-sent batch changes nothing");
    assert_eq!(wsus_store::reporting::event_count(&pool, CLIENT).await.unwrap(), 2);

    // One bad event refuses the whole batch: nothing half-stored.
    let bad = vec![event("9f6d5d9a-4b7c-4e83-9c2d-2e3f4a5b6c7d", 183), event("not-a-guid", 183)];
    let err = client.ingest_events(IngestEventsRequest { events: bad }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(wsus_store::reporting::event_count(&pool, CLIENT).await.unwrap(), 2);
}

#[sqlx::test(migrations = false)]
async fn a_database_outage_is_unavailable_not_an_error(pool: PgPool) {
    let mut client = serve(pool.clone()).await;
    pool.close().await;
    let err = client
        .ingest_events(IngestEventsRequest { events: vec![event("7d4b3b7e-2f5a-4c61-9a0b-0c1d2e3f4a5b", 147)] })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "the gateway answers ServerBusy and the client retries");
}

#[sqlx::test(migrations = false)]
async fn statuses_follow_the_events(pool: PgPool) {
    let mut client = serve(pool.clone()).await;
    let computer = ComputerRegistration {
        computer_id: CLIENT.into(),
        registered_at: ts("2026-10-04T14:49:05Z"),
        ..Default::default()
    };
    client.register_computer(RegisterComputerRequest { computer: Some(computer) }).await.unwrap();
    let (needed, other) = ("a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe", "266f6222-c89d-43f2-9f8a-69340271e677");
    let mut status = event("1d4b3b7e-2f5a-4c61-9a0b-0c1d2e3f4a5b", 156);
    status.misc_data = vec![format!("U={};{}", needed.to_uppercase(), other.to_uppercase()), "G=1507".into()];
    let batch = vec![event("2d4b3b7e-2f5a-4c61-9a0b-0c1d2e3f4a5b", 147), status];
    client.ingest_events(IngestEventsRequest { events: batch }).await.unwrap();
    let states = |pool: PgPool| async move { wsus_store::reporting::statuses(&pool, CLIENT).await.unwrap() };
    let both_needed = states(pool.clone()).await;
    assert_eq!(both_needed.len(), 2);
    assert!(both_needed.iter().all(|(_, s)| *s == 2), "Needed: {both_needed:?}");

    // Installed later; re-sending the batch changes nothing.
    let mut installed = event("3d4b3b7e-2f5a-4c61-9a0b-0c1d2e3f4a5b", 183);
    installed.time_at_target = ts("2026-10-04T15:30:00Z");
    installed.update_id = Some(needed.into());
    installed.revision_number = Some(200);
    for _ in 0..2 {
        client.ingest_events(IngestEventsRequest { events: vec![installed.clone()] }).await.unwrap();
        let now = states(pool.clone()).await;
        let of = |id: &str| now.iter().find(|(u, _)| u.to_string() == id).unwrap().1;
        assert_eq!((of(needed), of(other)), (4, 2), "Installed and still Needed");
    }
}
