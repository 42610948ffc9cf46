//! Trace context crosses HTTP and gRPC, and spans reach an OTLP receiver.

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt;
use wsus_telemetry::collector::Collector;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread")]
async fn http_parent_is_adopted_and_exported_then_sent_on_grpc() {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let collector = Collector::default();
    let endpoint = collector.start().await.unwrap();

    let provider = wsus_telemetry::otlp_provider(&endpoint, "client-gateway").unwrap();
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

    tokio::task::spawn_blocking(move || provider.shutdown()).await.unwrap().unwrap();
    let spans = collector.spans();
    assert!(
        spans.iter().any(|s| s.name == "GetConfig" && s.trace_id == TRACE_ID && s.service == "client-gateway"),
        "{spans:?}"
    );
}
