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

pub struct Metrics {
    registry: Mutex<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<HttpLabels, Histogram>,
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
        registry.register("http_requests", "HTTP requests answered", http_requests.clone());
        registry.register("http_request_seconds", "Time to answer an HTTP request", http_seconds.clone());
        registry.register("ready", "1 when /readyz last answered 200", ready.clone());
        Self { registry: Mutex::new(registry), http_requests, http_seconds, ready }
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
