//! The SOAP client of the upstream server: one request at a time, retried as Microsoft's
//! own server-sync client retries a busy or unreachable upstream.

use std::time::Duration;

use uuid::Uuid;
use wsus_soap::wsusss::dss;
use wsus_soap::{Element, Limits};

use super::SyncError;

/// The server-sync web service, relative to the upstream's base URL.
pub(crate) const SERVER_SYNC: &str = "ServerSyncWebService/ServerSyncWebService.asmx";

/// The SOAP side of an upstream server.
#[derive(Clone)]
pub struct Upstream {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    limits: Limits,
}

/// How to reach the upstream: an optional proxy (credentials in its URL) and an extra
/// trusted root certificate.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    pub proxy: Option<wsus_config::ProxyUrl>,
    pub ca_file: Option<std::path::PathBuf>,
}

impl Upstream {
    pub fn new(base: &str, transport: &Transport) -> Result<Self, SyncError> {
        let mut builder =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(30)).timeout(Duration::from_secs(600));
        if let Some(p) = &transport.proxy {
            let proxy = reqwest::Proxy::all(&p.0).map_err(|e| SyncError::Other(format!("WSUS_UPSTREAM_PROXY: {e}")))?;
            builder = builder.proxy(proxy);
        }
        if let Some(path) = &transport.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| SyncError::Other(format!("WSUS_UPSTREAM_CA_FILE {}: {e}", path.display())))?;
            let bad = |why: String| SyncError::Other(format!("WSUS_UPSTREAM_CA_FILE {}: {why}", path.display()));
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("holds no PEM certificate".to_owned()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| SyncError::Other(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            limits: Limits { max_body_bytes: 512 * 1024 * 1024, max_depth: 64, max_elements: 20_000_000 },
        })
    }

    /// Posts one SOAP request; returns the response text and its operation element. An
    /// upstream that says it is busy (a ServerBusy fault, HTTP 429 or 503) is asked again
    /// after a growing pause (its Retry-After when it gives one), up to [`BUSY_ATTEMPTS`]
    /// times in all, as Microsoft's own server-sync client retries; a gateway error (502,
    /// 504) or a connection that failed or broke off, up to [`BROKEN_ATTEMPTS`]; anything
    /// else (a fault of the operation, a certificate the upstream's does not match) is final.
    pub(crate) async fn call(
        &self,
        path: &str,
        action: &str,
        op: &str,
        body: &str,
    ) -> Result<(String, Element), SyncError> {
        let mut attempt = 1;
        loop {
            match self.call_once(path, action, op, body).await {
                Err(Transient { error, retry_after, attempts }) if attempt < attempts => {
                    let pause = retry_after.unwrap_or_else(|| backoff(attempt)).min(MAX_RETRY_PAUSE);
                    tracing::info!(operation = op, attempt, error = %error, pause_ms = pause.as_millis() as u64, "upstream call failed; trying again");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(Transient { error, .. }) | Err(Final(error)) => return Err(error),
                Ok(answer) => return Ok(answer),
            }
        }
    }

    async fn call_once(&self, path: &str, action: &str, op: &str, body: &str) -> Result<(String, Element), CallError> {
        // A plug-in's ServiceUrl may be absolute (another host); else it is relative to the base.
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        };
        // A connection that failed or broke off is worth another try; a TLS failure is not.
        let http_error = |e: reqwest::Error| {
            let message = causes(&e);
            let tls = message.contains("certificate") || message.contains("TLS") || message.contains("tls");
            let error = SyncError::Http { url: url.clone(), message };
            if tls { Final(error) } else { Transient { error, retry_after: None, attempts: BROKEN_ATTEMPTS } }
        };
        let response = self
            .http
            .post(&url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", action)
            .body(dss::envelope(body))
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(http_error)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let parsed = wsus_soap::parse_request(text.as_bytes(), &self.limits);
        match parsed {
            Ok(r) if r.operation.name == "Fault" => {
                let detail = r.operation.child("detail").or_else(|| r.operation.child("Detail"));
                let field = |n: &str| detail.and_then(|d| d.child(n)).map(|c| c.value().to_owned()).unwrap_or_default();
                let error =
                    SyncError::Fault { operation: op.to_owned(), code: field("ErrorCode"), message: field("Message") };
                if field("ErrorCode") == "ServerBusy" {
                    Err(Transient { error, retry_after, attempts: BUSY_ATTEMPTS })
                } else {
                    Err(Final(error))
                }
            }
            Ok(r) if status.is_success() => Ok((text, r.operation)),
            _ => {
                let error = SyncError::Http {
                    url,
                    message: format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()),
                };
                match status.as_u16() {
                    429 | 503 => Err(Transient { error, retry_after, attempts: BUSY_ATTEMPTS }),
                    502 | 504 => Err(Transient { error, retry_after, attempts: BROKEN_ATTEMPTS }),
                    _ => Err(Final(error)),
                }
            }
        }
    }
}

/// How many times an upstream call is made while the upstream says it is busy
/// (Microsoft's server-sync client tries its GetUpdateData ten times)...
const BUSY_ATTEMPTS: u32 = 10;
/// ...and while the connection fails (an upstream that is down stays down: the sync
/// fails soon, and the next scheduled one tries again).
const BROKEN_ATTEMPTS: u32 = 3;
/// The longest pause between two attempts, whatever Retry-After says.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(120);

/// The pause before attempt `attempt + 1`: 1 s, doubling, at most a minute, with a
/// quarter of jitter so downstream servers refused together do not return together.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1u64 << (attempt.saturating_sub(1)).min(6)).min(Duration::from_secs(60));
    let jitter = u64::from(Uuid::new_v4().as_bytes()[0]) * base.as_millis() as u64 / 4 / 255;
    base + Duration::from_millis(jitter)
}

/// How one attempt of a call failed.
enum CallError {
    /// Worth another attempt (after Retry-After, when the upstream said), up to
    /// `attempts` in all.
    Transient {
        error: SyncError,
        retry_after: Option<Duration>,
        attempts: u32,
    },
    Final(SyncError),
}
use CallError::{Final, Transient};

/// An error with its causes (a TLS failure hides two levels down in reqwest's).
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Whether the upstream is Microsoft Update itself (`*.update.microsoft.com`).
pub fn is_microsoft_update(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url).split(['/', ':']).next().unwrap_or_default();
    host.eq_ignore_ascii_case("update.microsoft.com") || host.to_ascii_lowercase().ends_with(".update.microsoft.com")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extra_root_certificate_is_loaded_or_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        // Any real root will do: the first of the system bundle.
        let bundle = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap();
        let end = "-----END CERTIFICATE-----";
        let first = &bundle[bundle.find("-----BEGIN CERTIFICATE-----").unwrap()..bundle.find(end).unwrap() + end.len()];
        let good = dir.path().join("root.pem");
        std::fs::write(&good, first).unwrap();
        let transport = Transport { proxy: None, ca_file: Some(good) };
        assert!(Upstream::new("https://sws.update.microsoft.com", &transport).is_ok());
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        for path in [bad, dir.path().join("missing.pem")] {
            let transport = Transport { proxy: None, ca_file: Some(path) };
            let err = Upstream::new("https://sws.update.microsoft.com", &transport).err().unwrap();
            assert!(err.to_string().contains("WSUS_UPSTREAM_CA_FILE"), "{err}");
        }
    }

    #[test]
    fn microsoft_update_is_recognised_by_host() {
        assert!(is_microsoft_update("https://sws.update.microsoft.com"));
        assert!(is_microsoft_update("https://SWS1.update.microsoft.com:443/"));
        assert!(!is_microsoft_update("http://wsus.example:8530"));
        assert!(!is_microsoft_update("https://update.microsoft.com.evil.example"));
    }
}
