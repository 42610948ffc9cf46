//! Prometheus metrics shared by every service; services register their own as well.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use tracing::Instrument;

/// Set by a handler on its response to name the route in metrics (bounded cardinality
/// even when paths come in any letter case).
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    service: String,
    operation: String,
    /// `ok`, or the fault's ErrorCode / the gRPC status code.
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationTimeLabels {
    service: String,
    operation: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<HttpLabels, Histogram>,
    soap_requests: Family<OperationLabels, Counter>,
    soap_seconds: Family<OperationTimeLabels, Histogram>,
    grpc_requests: Family<OperationLabels, Counter>,
    grpc_seconds: Family<OperationTimeLabels, Histogram>,
    ready: Gauge,
}

impl Metrics {
    pub fn new(service: &'static str) -> Self {
        let mut registry = Registry::with_prefix_and_labels("wsus", [("service".into(), service.into())].into_iter());
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_seconds = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let ready = Gauge::default();
        let soap_requests = Family::<OperationLabels, Counter>::default();
        let soap_seconds = Family::<OperationTimeLabels, Histogram>::new_with_constructor(latency_histogram);
        let grpc_requests = Family::<OperationLabels, Counter>::default();
        let grpc_seconds = Family::<OperationTimeLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register("http_requests", "HTTP requests answered", http_requests.clone());
        registry.register("http_request_seconds", "Time to answer an HTTP request", http_seconds.clone());
        registry.register("soap_requests", "SOAP operations answered, by outcome", soap_requests.clone());
        registry.register("soap_request_seconds", "Time to answer a SOAP operation", soap_seconds.clone());
        registry.register("grpc_requests", "gRPC calls answered, by status", grpc_requests.clone());
        registry.register("grpc_request_seconds", "Time to answer a gRPC call", grpc_seconds.clone());
        registry.register("ready", "1 when /readyz last answered 200", ready.clone());
        Self {
            registry: Mutex::new(registry),
            http_requests,
            http_seconds,
            soap_requests,
            soap_seconds,
            grpc_requests,
            grpc_seconds,
            ready,
        }
    }

    /// Adds a service-specific metric.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry.lock().expect("metrics registry").register(name, help, metric);
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry");
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// One SOAP operation answered (`operation` from a fixed set: bounded cardinality).
    pub fn observe_soap(&self, service: &str, operation: &str, outcome: &str, took: std::time::Duration) {
        let labels = OperationLabels {
            service: service.to_owned(),
            operation: operation.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.soap_requests.get_or_create(&labels).inc();
        let time = OperationTimeLabels { service: service.to_owned(), operation: operation.to_owned() };
        self.soap_seconds.get_or_create(&time).observe(took.as_secs_f64());
    }

    /// One gRPC call answered; `path` is `/package.Service/Method`.
    pub fn observe_grpc(&self, path: &str, status: &str, took: std::time::Duration) {
        let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or(("unknown", path));
        let labels =
            OperationLabels { service: service.to_owned(), operation: method.to_owned(), outcome: status.to_owned() };
        self.grpc_requests.get_or_create(&labels).inc();
        let time = OperationTimeLabels { service: service.to_owned(), operation: method.to_owned() };
        self.grpc_seconds.get_or_create(&time).observe(took.as_secs_f64());
    }

    fn observe(&self, route: &str, status: u16, seconds: f64) {
        let labels = HttpLabels { route: route.to_owned(), status };
        self.http_requests.get_or_create(&labels).inc();
        self.http_seconds.get_or_create(&labels).observe(seconds);
    }
}

/// Counts and times every request of `router`, each in a span that continues the
/// caller's W3C trace context.
pub(crate) fn instrument(router: Router, metrics: Arc<Metrics>) -> Router {
    router.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
        let metrics = metrics.clone();
        let span = tracing::info_span!("http", method = %req.method(), path = %req.uri().path());
        wsus_telemetry::adopt_http_parent(&span, req.headers());
        async move {
            let matched = req.extensions().get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_owned());
            let start = Instant::now();
            let response: Response = next.run(req).await;
            let route = response
                .extensions()
                .get::<RouteLabel>()
                .map(|r| r.0.to_owned())
                .or(matched)
                .unwrap_or_else(|| "other".to_owned());
            metrics.observe(&route, response.status().as_u16(), start.elapsed().as_secs_f64());
            response
        }
        .instrument(span)
    }))
}

/// Counts and times every call of a gRPC server (a tonic `Server::builder().layer(..)`), by
/// method and status. Paths of services not in `services` count as `unknown`: the path
/// comes from the caller.
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    metrics: Arc<Metrics>,
    services: &'static [&'static str],
}

impl GrpcMetricsLayer {
    pub fn new(metrics: Arc<Metrics>, services: &'static [&'static str]) -> Self {
        Self { metrics, services }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let known = path.trim_start_matches('/').split('/').next().is_some_and(|s| self.layer.services.contains(&s));
        let path = if known { path.to_owned() } else { "/unknown/unknown".to_owned() };
        let metrics = self.layer.metrics.clone();
        let start = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            if let Ok(r) = &response {
                // A handler's error comes back in the headers (trailers-only); success in trailers.
                let code =
                    r.headers().get("grpc-status").and_then(|v| v.to_str().ok()?.parse::<i32>().ok()).unwrap_or(0);
                metrics.observe_grpc(&path, &format!("{:?}", tonic::Code::from(code)), start.elapsed());
            }
            response
        })
    }
}
