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

pub type TracedChannel = InterceptedService<Channel, TraceContext>;
pub type ReportingClient = reporting::reporting_service_client::ReportingServiceClient<TracedChannel>;
pub type SyncClient = sync::sync_service_client::SyncServiceClient<TracedChannel>;

/// A client of the ReportingService at `url` (e.g. `http://reporting:50051`).
pub fn reporting_client(url: &str) -> Result<ReportingClient, RpcError> {
    Ok(reporting::reporting_service_client::ReportingServiceClient::with_interceptor(
        balanced_channel(url, DEFAULT_RESOLVE_EVERY)?,
        TraceContext,
    ))
}

/// A client of the SyncService at `url` (e.g. `http://sync-worker:50052`).
pub fn sync_client(url: &str) -> Result<SyncClient, RpcError> {
    Ok(sync::sync_service_client::SyncServiceClient::with_interceptor(
        balanced_channel(url, DEFAULT_RESOLVE_EVERY)?,
        TraceContext,
    ))
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

/// A channel over every address `url`'s host resolves to, refreshed every `resolve_every`.
/// Must be called inside a Tokio runtime. The resolver task ends with the channel.
pub fn balanced_channel(url: &str, resolve_every: Duration) -> Result<Channel, RpcError> {
    let (host, port) = host_port(url)?;
    Ok(channel_over(
        move || {
            let host = host.clone();
            async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) }
        },
        resolve_every,
    ))
}

/// A channel over the addresses `resolve` returns, asked again every `resolve_every`;
/// addresses that disappear stop getting calls, new ones start getting them.
pub fn channel_over<R, F>(mut resolve: R, resolve_every: Duration) -> Channel
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
    channel
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
