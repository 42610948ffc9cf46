//! Trace context crosses HTTP and gRPC, and spans reach an OTLP receiver.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<(String, String, String)>>>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut v = self.0.lock().unwrap();
        for rs in r.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let trace: String = s.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    v.push((s.name, trace, service.clone()));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread")]
async fn http_parent_is_adopted_and_exported_then_sent_on_grpc() {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let sink = Sink::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let provider = wsus_telemetry::otlp_provider(&format!("http://{addr}"), "client-gateway").unwrap();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let mut outgoing = tonic::metadata::MetadataMap::new();
    let mut outgoing_http = http::HeaderMap::new();
    tracing::subscriber::with_default(subscriber, || {
        let mut incoming = http::HeaderMap::new();
        incoming.insert("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01").parse().unwrap());
        let span = tracing::info_span!("GetConfig");
        wsus_telemetry::adopt_http_parent(&span, &incoming);
        let _entered = span.enter();
        wsus_telemetry::inject_grpc(&mut outgoing);
        wsus_telemetry::inject_http(&mut outgoing_http);
    });
    let sent = outgoing.get("traceparent").expect("traceparent in gRPC metadata").to_str().unwrap().to_owned();
    assert!(sent.starts_with(&format!("00-{TRACE_ID}-")), "{sent}");
    assert_eq!(outgoing_http.get("traceparent").unwrap().to_str().unwrap(), sent);

    // The receiving side adopts it too.
    let received = tracing::info_span!("ReportingService/IngestEvents");
    wsus_telemetry::adopt_grpc_parent(&received, &outgoing);

    tokio::task::spawn_blocking(move || provider.shutdown()).await.unwrap().unwrap();
    let spans = sink.0.lock().unwrap().clone();
    assert!(
        spans.iter().any(|(name, trace, service)| name == "GetConfig"
            && trace == TRACE_ID
            && service.contains("client-gateway")),
        "{spans:?}"
    );
}
