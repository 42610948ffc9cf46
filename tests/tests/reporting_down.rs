//! With reporting unreachable, the gateway acknowledges nothing it could not store: the
//! client is told ServerBusy and retries later.

use std::collections::HashMap;

use wsus_e2e::agent::Agent;
use wsus_e2e::{PgCluster, Service, free_port, wait_for_status};

#[tokio::test(flavor = "multi_thread")]
async fn writes_are_refused_with_server_busy_while_reporting_is_away() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let port = free_port();
    let _gateway = Service::spawn(
        "client-gateway",
        &HashMap::from([
            ("DATABASE_URL", db.clone()),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{port}")),
            // Nothing listens there.
            ("WSUS_REPORTING_GRPC", format!("http://127.0.0.1:{}", free_port())),
        ]),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for_status(&reqwest::Client::new(), &format!("{base}/readyz"), 200, std::time::Duration::from_secs(60)).await;

    let mut agent = Agent::new(&base);
    agent.handshake(false).await.unwrap();
    let fault = agent.register().await.unwrap_err();
    assert_eq!((fault.status, fault.error_code.as_str()), (500, "ServerBusy"), "{fault}");
    let fault = agent.report(&[(147, "00000000-0000-0000-0000-000000000000", &[])], None).await.unwrap_err();
    assert_eq!(fault.error_code, "ServerBusy", "{fault}");
}
