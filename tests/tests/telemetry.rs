//! Traces: a request's W3C trace context crosses HTTP into reporting, gRPC into
//! sync-worker, and both export their spans over OTLP to a collector.

use std::collections::HashMap;
use std::time::Duration;

use wsus_e2e::{PgCluster, Service, free_port, wait_for_status};
use wsus_telemetry::collector::Collector;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_spans_reporting_and_sync_worker() {
    let collector = Collector::default();
    let otlp = collector.start().await.unwrap();

    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let (rep, sw, sw_grpc) = (free_port(), free_port(), free_port());
    let mut sync = Service::spawn(
        "sync-worker",
        &HashMap::from([
            ("DATABASE_URL", db.clone()),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{sw}")),
            ("WSUS_GRPC_ADDR", format!("127.0.0.1:{sw_grpc}")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()),
        ]),
    );
    let mut reporting = Service::spawn(
        "reporting",
        &HashMap::from([
            ("DATABASE_URL", db.clone()),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{rep}")),
            ("WSUS_GRPC_ADDR", format!("127.0.0.1:{}", free_port())),
            ("WSUS_SYNC_GRPC", format!("http://127.0.0.1:{sw_grpc}")),
            ("WSUS_API_TOKENS", "reader:reader-token".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()),
            ("OTEL_SERVICE_NAME", "reporting-under-test".to_owned()),
        ]),
    );
    let http = reqwest::Client::new();
    for port in [rep, sw] {
        wait_for_status(&http, &format!("http://127.0.0.1:{port}/readyz"), 200, Duration::from_secs(60)).await;
    }
    let r = http
        .get(format!("http://127.0.0.1:{rep}/api/v1/sync/status"))
        .bearer_auth("reader-token")
        .header("traceparent", format!("00-{TRACE}-b7ad6b7169203331-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Shutdown flushes the exporters.
    for s in [&mut reporting, &mut sync] {
        assert!(s.terminate(Duration::from_secs(20)).is_some_and(|e| e.success()), "{}", s.log());
    }
    let spans = collector.spans();
    let in_trace: Vec<_> = spans.iter().filter(|s| s.trace_id == TRACE).collect();
    assert!(
        in_trace.iter().any(|s| s.service == "reporting-under-test" && s.name == "http"),
        "reporting continued the caller's trace: {spans:?}"
    );
    assert!(
        in_trace.iter().any(|s| s.service == "sync-worker" && s.name == "grpc"),
        "sync-worker's gRPC span is in the same trace: {spans:?}"
    );
    assert!(
        in_trace.iter().any(|s| s.service == "sync-worker" && s.name == "store.sync_history.latest"),
        "the database time of the call is a span of its own: {spans:?}"
    );
}

/// One client scan (the calls made with the cookie its GetCookie issued) is one trace, in
/// spans from client-gateway and from reporting; the operations are counted and timed.
#[tokio::test(flavor = "multi_thread")]
async fn one_client_scan_is_one_trace_across_gateway_and_reporting() {
    let collector = Collector::default();
    let otlp = collector.start().await.unwrap();
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 150, seed: 9, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));

    let (gw, rep, rep_grpc) = (free_port(), free_port(), free_port());
    let mut reporting = Service::spawn(
        "reporting",
        &HashMap::from([
            ("DATABASE_URL", db.clone()),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{rep}")),
            ("WSUS_GRPC_ADDR", format!("127.0.0.1:{rep_grpc}")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()),
        ]),
    );
    let mut gateway = Service::spawn(
        "client-gateway",
        &HashMap::from([
            ("DATABASE_URL", db.clone()),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{gw}")),
            ("WSUS_REPORTING_GRPC", format!("http://127.0.0.1:{rep_grpc}")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()),
        ]),
    );
    let http = reqwest::Client::new();
    for port in [rep, gw] {
        wait_for_status(&http, &format!("http://127.0.0.1:{port}/readyz"), 200, Duration::from_secs(60)).await;
    }
    let mut agent = wsus_e2e::agent::Agent::new(&format!("http://127.0.0.1:{gw}"));
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    agent.report_scan_and_installs(&[], &[]).await.unwrap();

    // RED metrics per SOAP operation and per gRPC method.
    let metrics = |port: u16| {
        let http = http.clone();
        async move { http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap() }
    };
    let gateway_metrics = metrics(gw).await;
    assert!(
        gateway_metrics.lines().any(|l| l.starts_with("wsus_soap_requests_total")
            && l.contains("operation=\"SyncUpdates\"")
            && l.contains("outcome=\"ok\"")),
        "{gateway_metrics}"
    );
    assert!(gateway_metrics.contains("wsus_soap_request_seconds_bucket"), "{gateway_metrics}");
    assert!(gateway_metrics.contains("wsus_catalog_revisions") && gateway_metrics.contains("wsus_catalog_cache_bytes"));
    let reporting_metrics = metrics(rep).await;
    assert!(
        reporting_metrics.lines().any(|l| l.starts_with("wsus_grpc_requests_total")
            && l.contains("operation=\"IngestEvents\"")
            && l.contains("outcome=\"Ok\"")),
        "{reporting_metrics}"
    );
    assert!(
        reporting_metrics.lines().any(|l| l.starts_with("wsus_events_stored_total") && l.ends_with(" 2")),
        "{reporting_metrics}"
    );

    for s in [&mut gateway, &mut reporting] {
        assert!(s.terminate(Duration::from_secs(20)).is_some_and(|e| e.success()), "{}", s.log());
    }
    let spans = collector.spans();
    let start = spans
        .iter()
        .find(|s| s.service == "client-gateway" && s.name == "GetCookie")
        .unwrap_or_else(|| panic!("no GetCookie span: {spans:?}"));
    let scan: Vec<_> = spans.iter().filter(|s| s.trace_id == start.trace_id).collect();
    for op in ["RegisterComputer", "SyncUpdates", "ReportEventBatch"] {
        assert!(
            scan.iter().any(|s| s.service == "client-gateway" && s.name == op),
            "{op} in the scan's trace: {scan:?}"
        );
    }
    assert!(
        scan.iter().any(|s| s.service == "reporting" && s.name == "grpc"),
        "reporting's spans are in the same trace: {scan:?}"
    );
}

/// A sync is one trace in sync-worker: the sync's span, one per phase, and one per batch.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_is_one_trace_with_its_phases_and_batches() {
    let collector = Collector::default();
    let otlp = collector.start().await.unwrap();
    let pg = PgCluster::start().unwrap();
    let (db_a, db_b) = (pg.create_database("uss").unwrap(), pg.create_database("dss").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 250, seed: 13, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db_a, &dir.path().join("docs"));
    let a = wsus_e2e::System::start(&db_a);
    a.wait_ready(&reqwest::Client::new()).await;

    let env = HashMap::from([
        ("DATABASE_URL", db_b.clone()),
        ("WSUS_UPSTREAM_URL", a.gateway_url.clone()),
        ("WSUS_CONTENT_DIR", dir.path().join("content-b").display().to_string()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()),
    ]);
    let (ok, out, err) = wsus_e2e::run_binary("sync-worker", &["sync", "--once"], &env);
    assert!(ok, "{out}{err}");

    let spans = collector.spans();
    let sync = spans
        .iter()
        .find(|s| s.service == "sync-worker" && s.name == "sync")
        .unwrap_or_else(|| panic!("no sync span: {spans:?}"));
    let trace: Vec<&str> = spans.iter().filter(|s| s.trace_id == sync.trace_id).map(|s| s.name.as_str()).collect();
    for phase in ["authorizing", "configuration", "categories", "updates", "content"] {
        assert!(trace.contains(&phase), "phase {phase} in the sync's trace: {trace:?}");
    }
    let batches = trace.iter().filter(|n| **n == "GetUpdateData").count();
    assert!(batches >= 3, "one span per GetUpdateData batch (250 revisions, 100 a batch): {trace:?}");
    assert_eq!(batches, trace.iter().filter(|n| **n == "store").count(), "{trace:?}");
    drop(pg);
}
