//! The gRPC contracts between the services (compiled from `proto/`), and the client side
//! every service uses to call another: a channel that resolves the server's DNS name
//! again and again and spreads calls over every address (so a headless Kubernetes
//! Service balances), with the W3C trace context in the metadata.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tower::timeout::Timeout;

pub mod reporting {
    tonic::include_proto!("wsus.reporting.v1");
}

pub mod uss_rollup;

pub mod sync {
    tonic::include_proto!("wsus.sync.v1");
}

pub use prost_types::Timestamp;

/// A protobuf Timestamp for a UTC time.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// The UTC time of a protobuf Timestamp; None when out of range.
pub fn datetime(t: &Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    u32::try_from(t.nanos).ok().and_then(|n| chrono::DateTime::from_timestamp(t.seconds, n))
}

/// How often a client resolves the server's name again.
pub const DEFAULT_RESOLVE_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("{url:?} is not an http:// URL with a host and port")]
    BadUrl { url: String },
}

/// Adds the current span's trace context to every outgoing call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContext;

impl tonic::service::Interceptor for TraceContext {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        wsus_telemetry::inject_grpc(request.metadata_mut());
        Ok(request)
    }
}

/// A balanced channel whose every call ends after the channel's timeout, whatever it
/// waits for: an address to resolve, a connection, or the answer. (A timeout on each
/// address alone would let a call wait forever while the name resolves to nothing, e.g.
/// a headless Service with no ready pod.)
pub type BalancedChannel = Timeout<Channel>;
/// A channel whose every call carries the trace context and ends after its timeout.
pub type TracedChannel = InterceptedService<BalancedChannel, TraceContext>;
pub type ReportingClient = reporting::reporting_service_client::ReportingServiceClient<TracedChannel>;
pub type SyncClient = sync::sync_service_client::SyncServiceClient<TracedChannel>;

/// How long a call to reporting may take: a client's registration or event batch, which
/// the gateway answers ServerBusy when it is over.
pub const REPORTING_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call to sync-worker may take: status, history and starting a run, asked by
/// a person waiting for a page.
pub const SYNC_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The channel of a client: balanced over `url`'s addresses, every call traced and ended
/// after `timeout` (set once here, for every call of the client).
fn traced(url: &str, timeout: Duration) -> Result<TracedChannel, RpcError> {
    let (host, port) = host_port(url)?;
    let resolve = move || {
        let host = host.clone();
        async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) }
    };
    Ok(InterceptedService::new(balanced(resolve, DEFAULT_RESOLVE_EVERY, timeout), TraceContext))
}

/// A client of the ReportingService at `url` (e.g. `http://reporting:50051`), with
/// [`REPORTING_CALL_TIMEOUT`].
pub fn reporting_client(url: &str) -> Result<ReportingClient, RpcError> {
    reporting_client_within(url, REPORTING_CALL_TIMEOUT)
}

/// A client of the ReportingService whose calls end after `timeout`.
pub fn reporting_client_within(url: &str, timeout: Duration) -> Result<ReportingClient, RpcError> {
    Ok(reporting::reporting_service_client::ReportingServiceClient::new(traced(url, timeout)?))
}

/// A client of the SyncService at `url` (e.g. `http://sync-worker:50052`), with
/// [`SYNC_CALL_TIMEOUT`].
pub fn sync_client(url: &str) -> Result<SyncClient, RpcError> {
    sync_client_within(url, SYNC_CALL_TIMEOUT)
}

/// A client of the SyncService whose calls end after `timeout`.
pub fn sync_client_within(url: &str, timeout: Duration) -> Result<SyncClient, RpcError> {
    Ok(sync::sync_service_client::SyncServiceClient::new(traced(url, timeout)?))
}

/// Splits `http://host:port` into what to resolve.
fn host_port(url: &str) -> Result<(String, u16), RpcError> {
    let bad = || RpcError::BadUrl { url: url.to_owned() };
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") {
        return Err(bad());
    }
    let host = uri.host().ok_or_else(bad)?.trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok((host, uri.port_u16().unwrap_or(80)))
}

/// A channel over the addresses `resolve` returns, asked again every `resolve_every`;
/// addresses that disappear stop getting calls, new ones start getting them. Each call
/// ends after [`REPORTING_CALL_TIMEOUT`]. Must be called inside a Tokio runtime; the
/// resolver task ends with the channel.
pub fn channel_over<R, F>(resolve: R, resolve_every: Duration) -> BalancedChannel
where
    R: FnMut() -> F + Send + 'static,
    F: Future<Output = std::io::Result<HashSet<SocketAddr>>> + Send,
{
    balanced(resolve, resolve_every, REPORTING_CALL_TIMEOUT)
}

/// [`channel_over`], each call ended after `timeout`.
fn balanced<R, F>(mut resolve: R, resolve_every: Duration, timeout: Duration) -> BalancedChannel
where
    R: FnMut() -> F + Send + 'static,
    F: Future<Output = std::io::Result<HashSet<SocketAddr>>> + Send,
{
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(16);
    tokio::spawn(async move {
        let mut current: HashSet<SocketAddr> = HashSet::new();
        loop {
            match resolve().await {
                Ok(found) => {
                    for gone in current.difference(&found) {
                        if changes.send(Change::Remove(*gone)).await.is_err() {
                            return;
                        }
                    }
                    for new in found.difference(&current) {
                        if changes.send(Change::Insert(*new, endpoint_for(*new))).await.is_err() {
                            return;
                        }
                    }
                    if found != current {
                        tracing::debug!(addresses = found.len(), "gRPC server addresses changed");
                    }
                    current = found;
                }
                // Keep the addresses we have: a DNS hiccup must not empty the pool.
                Err(e) => tracing::debug!(error = %e, "resolving the gRPC server failed"),
            }
            if changes.is_closed() {
                return;
            }
            tokio::time::sleep(resolve_every).await;
        }
    });
    Timeout::new(channel, timeout)
}

fn endpoint_for(addr: SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address is a valid authority")
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
}

/// A span for an incoming gRPC call, child of the caller's trace context.
/// Use as `Server::builder().trace_fn(wsus_rpc::server_span)`.
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("grpc", rpc = %request.uri().path());
    wsus_telemetry::adopt_http_parent(&span, request.headers());
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_plain_http_with_a_host() {
        assert_eq!(host_port("http://reporting:50051").unwrap(), ("reporting".into(), 50051));
        assert_eq!(host_port("http://[::1]:50052").unwrap(), ("::1".into(), 50052));
        assert!(host_port("reporting:50051").is_err());
        assert!(host_port("https://reporting:50051").is_err());
    }
}
