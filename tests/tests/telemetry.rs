//! Traces: a request's W3C trace context crosses HTTP into reporting, gRPC into
//! sync-worker, and both export their spans over OTLP to a collector.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use wsus_e2e::{PgCluster, Service, free_port, wait_for_status};

/// (service.name, span name, trace id hex)
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<(String, String, String)>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().unwrap();
        for rs in r.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let trace = s.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    seen.push((service.clone(), s.name, trace));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_spans_reporting_and_sync_worker() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

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
    let spans = collector.0.lock().unwrap().clone();
    let in_trace: Vec<_> = spans.iter().filter(|(_, _, t)| t == TRACE).collect();
    assert!(
        in_trace.iter().any(|(svc, name, _)| svc == "reporting-under-test" && name == "http"),
        "reporting continued the caller's trace: {spans:?}"
    );
    assert!(
        in_trace.iter().any(|(svc, name, _)| svc == "sync-worker" && name == "grpc"),
        "sync-worker's gRPC span is in the same trace: {spans:?}"
    );
}
