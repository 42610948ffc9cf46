//! With reporting unreachable, the gateway acknowledges nothing it could not store: the
//! client is told ServerBusy and retries later; once reporting is back, the retried
//! batch is stored, once.

use std::collections::HashMap;

use wsus_e2e::agent::Agent;
use wsus_e2e::{PgCluster, Service, free_port, wait_for_status};

#[tokio::test(flavor = "multi_thread")]
async fn writes_are_refused_with_server_busy_while_reporting_is_away() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let port = free_port();
    let reporting_grpc = free_port();
    let _gateway = Service::spawn(
        "client-gateway",
        &HashMap::from([
            ("DATABASE_URL", db.clone()),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{port}")),
            // Nothing listens there yet.
            ("WSUS_REPORTING_GRPC", format!("http://127.0.0.1:{reporting_grpc}")),
        ]),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for_status(&reqwest::Client::new(), &format!("{base}/readyz"), 200, std::time::Duration::from_secs(60)).await;

    let mut agent = Agent::new(&base);
    agent.handshake(false).await.unwrap();
    let fault = agent.register().await.unwrap_err();
    assert_eq!((fault.status, fault.error_code.as_str()), (500, "ServerBusy"), "{fault}");
    // The client keeps its batch (same EventInstanceIDs and time) and sends it again.
    let batch =
        (vec![uuid::Uuid::new_v4().to_string()], chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    let events: &[(i32, &str, &[&str])] = &[(147, "00000000-0000-0000-0000-000000000000", &["3"])];
    let fault = agent.report(events, Some(&batch)).await.unwrap_err();
    assert_eq!(fault.error_code, "ServerBusy", "{fault}");

    // Reporting comes back: the retried registration and batch are stored.
    let _reporting = Service::spawn(
        "reporting",
        &HashMap::from([
            ("DATABASE_URL", db.clone()),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{}", free_port())),
            ("WSUS_GRPC_ADDR", format!("127.0.0.1:{reporting_grpc}")),
        ]),
    );
    let mut stored = false;
    for _ in 0..100 {
        if agent.register().await.is_ok() && agent.report(events, Some(&batch)).await.is_ok() {
            stored = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(stored, "the client's retries succeed once reporting is back");
    agent.report(events, Some(&batch)).await.unwrap();
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM reporting_event WHERE computer_id = $1")
        .bind(&agent.client_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "nothing lost, nothing twice");
}
