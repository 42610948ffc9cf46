//! Logs and traces for every service.
//!
//! - Logs: JSON lines on stdout, filtered by `RUST_LOG` (default `info`).
//! - Traces: `tracing` spans exported over OTLP/gRPC when the standard
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set (off otherwise, so tests need no collector);
//!   `OTEL_SERVICE_NAME` defaults to the binary's name.
//! - Context: W3C `traceparent` / `tracestate` carried in HTTP headers and gRPC metadata.

use opentelemetry::Context;
#[cfg(feature = "collector")]
pub mod collector;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("RUST_LOG: {0}")]
    Filter(String),
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("logging was already set up")]
    AlreadySet,
}

/// Keeps the trace pipeline alive; `shutdown` flushes what is still buffered.
#[must_use = "dropping the guard without shutdown loses buffered spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// True when spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the exporter. The SDK's shutdown blocks, so it runs off the async threads.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTo {
    /// Services: standard output, as container platforms collect it.
    Stdout,
    /// One-shot commands: standard error, keeping standard output for their results.
    Stderr,
}

/// Sets up logging and, when configured, trace export for the service `default_name`.
/// Reads `RUST_LOG`, `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME` through `lookup`.
/// Must run inside a Tokio runtime (the OTLP exporter needs one).
pub fn init(
    default_name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    log_to: LogTo,
) -> Result<Telemetry, TelemetryError> {
    let filter = match lookup("RUST_LOG").filter(|s| !s.trim().is_empty()) {
        Some(directives) => EnvFilter::try_new(&directives).map_err(|e| TelemetryError::Filter(e.to_string()))?,
        // sqlx reports every server notice at info.
        None => EnvFilter::new("info,sqlx=warn"),
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let provider = match lookup("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(_) => {
            // The exporter reads the endpoint (and the other OTEL_EXPORTER_OTLP_* settings) itself.
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            let name =
                lookup("OTEL_SERVICE_NAME").filter(|s| !s.trim().is_empty()).unwrap_or_else(|| default_name.to_owned());
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(Resource::builder().with_service_name(name).build())
                    .build(),
            )
        }
    };

    let writer = match log_to {
        LogTo::Stdout => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stdout),
        LogTo::Stderr => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true);
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(default_name.to_owned())));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|_| TelemetryError::AlreadySet)?;
    Ok(Telemetry { provider })
}

/// Builds a tracer provider exporting to `endpoint` (tests use it with an in-process receiver).
pub fn otlp_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    Ok(SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name.to_owned()).build())
        .build())
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value)) {
            self.0.insert(k, v);
        }
    }
}

struct MetadataExtractor<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => k.as_str(),
                tonic::metadata::KeyRef::Binary(k) => k.as_str(),
            })
            .collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Makes the trace context found in `headers` (if any) the parent of `span`.
pub fn adopt_http_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    adopt(span, cx);
}

/// Makes the trace context found in gRPC `metadata` (if any) the parent of `span`.
pub fn adopt_grpc_parent(span: &tracing::Span, metadata: &tonic::metadata::MetadataMap) {
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&MetadataExtractor(metadata)));
    adopt(span, cx);
}

fn adopt(span: &tracing::Span, cx: Context) {
    use opentelemetry::trace::TraceContextExt as _;
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The trace a span belongs to and its own id; None when spans are not traced.
pub fn span_ids(span: &tracing::Span) -> Option<(u128, u64)> {
    use opentelemetry::trace::TraceContextExt as _;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| (u128::from_be_bytes(sc.trace_id().to_bytes()), u64::from_be_bytes(sc.span_id().to_bytes())))
}

/// Makes the span `(trace id, span id)` (recorded earlier, e.g. in a client's cookie) the
/// parent of `span`, so work spread over several requests forms one trace.
pub fn adopt_ids(span: &tracing::Span, trace_id: u128, span_id: u64) {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
    let sc = SpanContext::new(
        TraceId::from_bytes(trace_id.to_be_bytes()),
        SpanId::from_bytes(span_id.to_be_bytes()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    adopt(span, Context::new().with_remote_span_context(sc));
}

/// Writes the current span's trace context into outgoing HTTP headers.
pub fn inject_http(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_grpc(metadata: &mut tonic::metadata::MetadataMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MetadataInjector(metadata)));
}
