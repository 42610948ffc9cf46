//! Deployment settings, read once from environment variables at start-up.
//!
//! Every value is typed and validated here; a bad value stops the process with an
//! error naming the variable. Administrator settings (products, languages, schedule...)
//! live in the database instead; the `WSUS_SEED_*`-style variables below only seed them
//! on the very first start.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine as _;
use uuid::Uuid;

/// A variable that is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self { variable, message: message.into() }
    }
}

type Result<T> = std::result::Result<T, ConfigError>;

/// Reads variables through a lookup function, so tests need no process environment.
pub struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// A set, non-blank value (surrounding whitespace removed).
    /// The value as set, spaces and all (a password).
    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String> {
        self.get(name).ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    fn socket_addr(&self, name: &'static str, default: &str) -> Result<SocketAddr> {
        let raw = self.get(name).unwrap_or_else(|| default.to_owned());
        raw.parse().map_err(|_| ConfigError::new(name, format!("{raw:?} is not an address like 0.0.0.0:8530")))
    }

    fn socket_addr_opt(&self, name: &'static str) -> Result<Option<SocketAddr>> {
        self.get(name)
            .map(|raw| {
                raw.parse().map_err(|_| ConfigError::new(name, format!("{raw:?} is not an address like 0.0.0.0:9090")))
            })
            .transpose()
    }

    fn bool(&self, name: &'static str, default: bool) -> Result<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(name, format!("{raw:?} is not true or false"))),
            },
        }
    }

    fn http_url(&self, name: &'static str) -> Result<Option<String>> {
        self.get(name).map(|raw| parse_http_url(name, &raw)).transpose()
    }

    fn http_url_or(&self, name: &'static str, default: &str) -> Result<String> {
        let raw = self.get(name).unwrap_or_else(|| default.to_owned());
        parse_http_url(name, &raw)
    }

    fn number(&self, name: &'static str, default: usize, range: std::ops::RangeInclusive<usize>) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.parse::<usize>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                ConfigError::new(name, format!("{raw:?} is not a number from {} to {}", range.start(), range.end()))
            }),
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|raw| raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn uuid_list(&self, name: &'static str) -> Result<Vec<Uuid>> {
        self.list(name)
            .iter()
            .map(|s| Uuid::parse_str(s).map_err(|_| ConfigError::new(name, format!("{s:?} is not a GUID"))))
            .collect()
    }
}

fn parse_http_url(name: &'static str, raw: &str) -> Result<String> {
    // Errors name the value without its credentials (they end up in logs).
    let shown = redact_url(raw);
    let uri: http::Uri = raw.parse().map_err(|e| ConfigError::new(name, format!("{shown:?} is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(ConfigError::new(name, format!("{shown:?} must start with http:// or https://"))),
    }
    if uri.authority().is_none() {
        return Err(ConfigError::new(name, format!("{shown:?} has no host")));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// Settings every service reads.
#[derive(Clone, PartialEq, Eq)]
pub struct CommonConfig {
    pub database_url: String,
    pub http_addr: SocketAddr,
    /// A separate listener for /healthz, /readyz and /metrics; on `http_addr` when unset.
    pub admin_addr: Option<SocketAddr>,
    pub migrate_on_start: bool,
    /// This server's identity; generated and stored on first start when unset.
    pub server_id: Option<Uuid>,
    pub server_fqdn: Option<String>,
    /// Administrator settings written on the very first start only.
    pub seed: SeedSettings,
}

impl fmt::Debug for CommonConfig {
    // The database URL may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommonConfig")
            .field("database_url", &redact_url(&self.database_url))
            .field("http_addr", &self.http_addr)
            .field("admin_addr", &self.admin_addr)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("server_id", &self.server_id)
            .field("server_fqdn", &self.server_fqdn)
            .field("seed", &self.seed)
            .finish()
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl CommonConfig {
    fn read(vars: &Vars, default_http: &str) -> Result<Self> {
        let database_url = vars.required("DATABASE_URL")?;
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(ConfigError::new("DATABASE_URL", "must be a postgres:// or postgresql:// URL"));
        }
        let server_id = vars
            .get("WSUS_SERVER_ID")
            .map(|raw| {
                Uuid::parse_str(&raw).map_err(|_| ConfigError::new("WSUS_SERVER_ID", format!("{raw:?} is not a GUID")))
            })
            .transpose()?;
        let server_fqdn = vars.get("WSUS_SERVER_FQDN").map(|raw| validate_fqdn(&raw)).transpose()?;
        Ok(Self {
            database_url,
            http_addr: vars.socket_addr("WSUS_HTTP_ADDR", default_http)?,
            admin_addr: vars.socket_addr_opt("WSUS_ADMIN_ADDR")?,
            migrate_on_start: vars.bool("WSUS_MIGRATE_ON_START", true)?,
            server_id,
            server_fqdn,
            seed: SeedSettings::read(vars)?,
        })
    }
}

fn validate_fqdn(raw: &str) -> Result<String> {
    let ok = raw.len() <= 253
        && raw.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ConfigError::new("WSUS_SERVER_FQDN", format!("{raw:?} is not a host name")))
    }
}

/// When content files are fetched from the upstream server: seeded from the environment,
/// kept in the settings, changed through the API, all as this one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentMode {
    /// Files of approved updates only (WSUS's default, MS-WSUSSS LazySync).
    #[default]
    Lazy,
    /// Every file as soon as its metadata arrives.
    Immediate,
    /// No content at all: clients download from Microsoft Update (CatalogOnlySync).
    CatalogOnly,
}

impl ContentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentMode::Lazy => "lazy",
            ContentMode::Immediate => "immediate",
            ContentMode::CatalogOnly => "catalog-only",
        }
    }
}

/// Administrator settings taken from the environment on first start only; afterwards
/// the database (and the management API) owns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSettings {
    /// Product category GUIDs to sync; empty = every product.
    pub products: Vec<Uuid>,
    /// Classification GUIDs to sync; empty = every classification.
    pub classifications: Vec<Uuid>,
    /// Short language names (as in update metadata) to sync and serve.
    pub languages: Vec<String>,
    /// Scheduled synchronisations per day (0 = manual only).
    pub syncs_per_day: u32,
    pub content_mode: ContentMode,
}

impl SeedSettings {
    fn read(vars: &Vars) -> Result<Self> {
        let mut languages = vars.list("WSUS_SYNC_LANGUAGES");
        if languages.is_empty() {
            languages.push("en".to_owned());
        }
        for l in &mut languages {
            *l = l.to_ascii_lowercase();
            if !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(ConfigError::new(
                    "WSUS_SYNC_LANGUAGES",
                    format!("{l:?} is not a language name like en or pt-br"),
                ));
            }
        }
        let syncs_per_day = match vars.get("WSUS_SYNCS_PER_DAY") {
            None => 1,
            Some(raw) => raw.parse::<u32>().ok().filter(|n| *n <= 24).ok_or_else(|| {
                ConfigError::new("WSUS_SYNCS_PER_DAY", format!("{raw:?} is not a number from 0 to 24"))
            })?,
        };
        let content_mode = match vars.get("WSUS_CONTENT_MODE").as_deref() {
            None | Some("lazy") => ContentMode::Lazy,
            Some("immediate") => ContentMode::Immediate,
            Some("catalog-only") => ContentMode::CatalogOnly,
            Some(other) => {
                return Err(ConfigError::new(
                    "WSUS_CONTENT_MODE",
                    format!("{other:?} is not lazy, immediate or catalog-only"),
                ));
            }
        };
        Ok(Self {
            products: vars.uuid_list("WSUS_SYNC_PRODUCTS")?,
            classifications: vars.uuid_list("WSUS_SYNC_CLASSIFICATIONS")?,
            languages,
            syncs_per_day,
            content_mode,
        })
    }
}

/// One key of `WSUS_COOKIE_KEYS`: the first one seals cookies, every one opens them.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieKey {
    pub id: String,
    pub key: [u8; 32],
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CookieKey({}, ***)", self.id)
    }
}

fn cookie_keys(vars: &Vars) -> Result<Vec<CookieKey>> {
    const NAME: &str = "WSUS_COOKIE_KEYS";
    let mut seen = HashSet::new();
    vars.list(NAME)
        .iter()
        .map(|item| {
            let (id, b64) =
                item.split_once(':').ok_or_else(|| ConfigError::new(NAME, "expected kid:base64key,... entries"))?;
            if id.is_empty() || !seen.insert(id.to_owned()) {
                return Err(ConfigError::new(NAME, format!("key id {id:?} is empty or repeated")));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| ConfigError::new(NAME, format!("key {id:?} is not base64")))?;
            let key: [u8; 32] =
                bytes.try_into().map_err(|_| ConfigError::new(NAME, format!("key {id:?} must decode to 32 bytes")))?;
            Ok(CookieKey { id: id.to_owned(), key })
        })
        .collect()
}

/// Roles of the management API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Reader,
}

/// One entry of `WSUS_API_TOKENS`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub role: Role,
    pub token: String,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken({:?}, ***)", self.role)
    }
}

fn api_tokens(vars: &Vars) -> Result<Vec<ApiToken>> {
    const NAME: &str = "WSUS_API_TOKENS";
    vars.list(NAME)
        .iter()
        .map(|item| {
            let (role, token) =
                item.split_once(':').ok_or_else(|| ConfigError::new(NAME, "expected role:token,... entries"))?;
            let role = match role {
                "admin" => Role::Admin,
                "reader" => Role::Reader,
                other => {
                    return Err(ConfigError::new(NAME, format!("role {other:?} is not admin or reader")));
                }
            };
            if token.len() < 8 {
                return Err(ConfigError::new(NAME, "tokens must be at least 8 characters"));
            }
            Ok(ApiToken { role, token: token.to_owned() })
        })
        .collect()
}

fn content_dir(vars: &Vars) -> PathBuf {
    PathBuf::from(vars.get("WSUS_CONTENT_DIR").unwrap_or_else(|| "content".to_owned()))
}

/// Where update content is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentStoreConfig {
    /// Files under `WSUS_CONTENT_DIR`: one machine, or a volume every replica mounts.
    Filesystem,
    /// An S3-compatible bucket (MinIO, Ceph RGW, AWS S3); `WSUS_CONTENT_DIR` then holds only
    /// sync-worker's downloads while they are fetched and verified. Credentials come from
    /// the `AWS_*` variables and the usual chain, never from here.
    S3(S3Config),
}

/// `WSUS_S3_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// The S3 API's base URL (`http://minio:9000`); None = AWS's for the region.
    pub endpoint: Option<String>,
    pub region: String,
    /// Where under the bucket the content lives (`wsus`: keys `wsus/Content/…`); "" = the root.
    pub prefix: String,
}

/// `WSUS_CONTENT_STORE` (`filesystem`, the default, or `s3`) and, for s3, `WSUS_S3_*`.
fn content_store(vars: &Vars) -> Result<ContentStoreConfig> {
    match vars.get("WSUS_CONTENT_STORE").as_deref() {
        None | Some("filesystem") => Ok(ContentStoreConfig::Filesystem),
        Some("s3") => {
            let bucket = vars
                .get("WSUS_S3_BUCKET")
                .filter(|b| !b.is_empty())
                .ok_or_else(|| ConfigError::new("WSUS_S3_BUCKET", "is required when WSUS_CONTENT_STORE=s3"))?;
            Ok(ContentStoreConfig::S3(S3Config {
                bucket,
                endpoint: vars.http_url("WSUS_S3_ENDPOINT")?,
                region: vars
                    .get("WSUS_S3_REGION")
                    .or_else(|| vars.get("AWS_REGION"))
                    .unwrap_or_else(|| "us-east-1".to_owned()),
                prefix: vars.get("WSUS_S3_PREFIX").unwrap_or_default().trim_matches('/').to_owned(),
            }))
        }
        Some(other) => Err(ConfigError::new("WSUS_CONTENT_STORE", format!("{other:?} is not filesystem or s3"))),
    }
}

/// client-gateway: the HTTP/SOAP front door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    pub common: CommonConfig,
    pub reporting_grpc: String,
    pub content_dir: PathBuf,
    pub content_store: ContentStoreConfig,
    pub content_base_url: Option<String>,
    pub cookie_keys: Vec<CookieKey>,
    /// Downstream servers allowed to sync from this one (GUIDs or FQDNs); empty = any.
    pub dss_allowlist: Vec<String>,
    /// Hard limits on SOAP requests.
    pub soap_max_body_bytes: usize,
    pub soap_max_depth: usize,
    pub soap_max_elements: usize,
    /// HTTPS for clients (Windows clients use 8531), when a certificate is given.
    pub tls: Option<TlsConfig>,
    /// Bytes of Core fragments (SyncUpdates) and of fragments and file lists
    /// (GetExtendedUpdateInfo) kept in memory.
    pub fragment_cache_bytes: usize,
    /// Admission control of the SOAP services: requests in their handlers at once...
    pub soap_max_inflight: usize,
    /// ...requests more waiting for a slot...
    pub soap_max_queued: usize,
    /// ...and how long each may wait; beyond either, a ServerBusy fault.
    pub soap_queue_wait: std::time::Duration,
    /// The Retry-After (seconds) sent with every ServerBusy fault.
    pub retry_after_seconds: usize,
    /// Proxies and load balancers whose `X-Forwarded-For` / `Forwarded` name the client
    /// (`WSUS_TRUSTED_PROXIES`, addresses or CIDR ranges); from anyone else the headers
    /// are ignored and the connection's peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Admission defaults scale with the cores. Handlers are mostly CPU work on the
/// in-memory catalog with short waits on the database or reporting, so a few requests a
/// core keep the cores busy; the rest wait without a body read (a connection and a few
/// KB each), enough to ride out a burst that the cores clear in well under a second.
fn admission_defaults() -> (usize, usize) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (8 * cores, 64 * cores)
}

/// A TLS listener: where, and the PEM certificate chain and private key it presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub addr: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `WSUS_TLS_*`: none = plain HTTP only; a certificate needs its key and the other way round.
fn tls(vars: &Vars, default_addr: &str) -> Result<Option<TlsConfig>> {
    let addr = vars.socket_addr("WSUS_TLS_ADDR", default_addr)?;
    match (vars.get("WSUS_TLS_CERT"), vars.get("WSUS_TLS_KEY")) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsConfig { addr, cert: cert.into(), key: key.into() })),
        (Some(_), None) => Err(ConfigError::new("WSUS_TLS_KEY", "is required when WSUS_TLS_CERT is set")),
        (None, Some(_)) => Err(ConfigError::new("WSUS_TLS_CERT", "is required when WSUS_TLS_KEY is set")),
    }
}

impl GatewayConfig {
    pub fn from_vars(vars: &Vars) -> Result<Self> {
        let (inflight, queued) = admission_defaults();
        Ok(Self {
            common: CommonConfig::read(vars, "0.0.0.0:8530")?,
            reporting_grpc: vars.http_url_or("WSUS_REPORTING_GRPC", "http://127.0.0.1:50051")?,
            content_dir: content_dir(vars),
            content_store: content_store(vars)?,
            content_base_url: vars.http_url("WSUS_CONTENT_BASE_URL")?,
            cookie_keys: cookie_keys(vars)?,
            dss_allowlist: vars.list("WSUS_DSS_ALLOWLIST").into_iter().map(|s| s.to_ascii_lowercase()).collect(),
            soap_max_body_bytes: vars.number("WSUS_SOAP_MAX_BODY_BYTES", 8 * 1024 * 1024, 1024..=1024 * 1024 * 1024)?,
            soap_max_depth: vars.number("WSUS_SOAP_MAX_DEPTH", 64, 8..=1024)?,
            soap_max_elements: vars.number("WSUS_SOAP_MAX_ELEMENTS", 200_000, 100..=50_000_000)?,
            tls: tls(vars, "0.0.0.0:8531")?,
            fragment_cache_bytes: vars.number(
                "WSUS_FRAGMENT_CACHE_BYTES",
                256 * 1024 * 1024,
                0..=64 * 1024 * 1024 * 1024,
            )?,
            soap_max_inflight: vars.number("WSUS_SOAP_MAX_INFLIGHT", inflight, 1..=65_536)?,
            soap_max_queued: vars.number("WSUS_SOAP_MAX_QUEUED", queued, 0..=1_000_000)?,
            // Longer than a busy handler takes, shorter than a client's patience.
            soap_queue_wait: std::time::Duration::from_millis(vars.number(
                "WSUS_SOAP_QUEUE_WAIT_MS",
                2000,
                0..=60_000,
            )? as u64),
            // A storm clears in seconds once shed requests back off; clients told to wait
            // longer would leave the server idle afterwards.
            retry_after_seconds: vars.number("WSUS_RETRY_AFTER_SECONDS", 10, 1..=3600)?,
            trusted_proxies: trusted_proxies(vars)?,
        })
    }
}

/// `WSUS_TRUSTED_PROXIES`: `10.0.0.0/8,192.0.2.7,fd00::/8` (a bare address is itself alone).
fn trusted_proxies(vars: &Vars) -> Result<Vec<ipnet::IpNet>> {
    vars.list("WSUS_TRUSTED_PROXIES")
        .iter()
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| ConfigError::new("WSUS_TRUSTED_PROXIES", format!("{p:?} is not an address or CIDR range")))
        })
        .collect()
}

/// reporting: event ingestion (gRPC) and the management API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportingConfig {
    pub common: CommonConfig,
    pub grpc_addr: SocketAddr,
    pub sync_grpc: String,
    pub api_tokens: Vec<ApiToken>,
    /// Keys of the web console's session cookies (`WSUS_COOKIE_KEYS`, as the gateway's);
    /// empty = the key generated in the database, shared by every replica.
    pub cookie_keys: Vec<CookieKey>,
    /// HTTPS for the management API, when a certificate is given (then `/api` is served
    /// there only).
    pub tls: Option<TlsConfig>,
    /// Notifications: the first pause before a failed delivery is tried again (doubling
    /// each time, at most an hour), and how many attempts before it is given up.
    pub notify_retry_seconds: usize,
    pub notify_max_attempts: usize,
    /// How often reporting looks whether the status summary is due, installs newly failed
    /// or a downstream server stopped rolling up.
    pub notify_watch_seconds: usize,
    /// Where e-mail notifications are sent from, when e-mail is set up.
    pub smtp: Option<SmtpConfig>,
}

/// The mail server and the sender of e-mail notifications.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// `smtp://host:25` (no TLS), `smtp://user:password@host:587?tls=required` (STARTTLS),
    /// `smtps://user:password@host:465` (implicit TLS).
    pub url: String,
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's credentials stay out of logs.
        let host = self.url.split_once("://").map(|(s, rest)| (s, rest.rsplit('@').next().unwrap_or(rest)));
        match host {
            Some((scheme, host)) => write!(f, "SmtpConfig({scheme}://{host}, from {})", self.from),
            None => write!(f, "SmtpConfig(?, from {})", self.from),
        }
    }
}

impl ReportingConfig {
    pub fn from_vars(vars: &Vars) -> Result<Self> {
        Ok(Self {
            common: CommonConfig::read(vars, "0.0.0.0:8080")?,
            grpc_addr: vars.socket_addr("WSUS_GRPC_ADDR", "0.0.0.0:50051")?,
            sync_grpc: vars.http_url_or("WSUS_SYNC_GRPC", "http://127.0.0.1:50052")?,
            api_tokens: api_tokens(vars)?,
            cookie_keys: cookie_keys(vars)?,
            tls: tls(vars, "0.0.0.0:8443")?,
            notify_retry_seconds: vars.number("WSUS_NOTIFY_RETRY_SECONDS", 30, 1..=3600)?,
            notify_max_attempts: vars.number("WSUS_NOTIFY_MAX_ATTEMPTS", 8, 1..=100)?,
            notify_watch_seconds: vars.number("WSUS_NOTIFY_WATCH_SECONDS", 60, 1..=3600)?,
            smtp: match (vars.get("WSUS_SMTP_URL"), vars.get("WSUS_SMTP_FROM")) {
                (None, _) => None,
                (Some(url), Some(from)) if url.starts_with("smtp://") || url.starts_with("smtps://") => {
                    Some(SmtpConfig { url, from })
                }
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new("WSUS_SMTP_URL", "is not an smtp:// or smtps:// URL"));
                }
                (Some(_), None) => return Err(ConfigError::new("WSUS_SMTP_FROM", "is required with WSUS_SMTP_URL")),
            },
        })
    }
}

/// sync-worker: this server as a downstream of an upstream one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncWorkerConfig {
    pub common: CommonConfig,
    pub grpc_addr: SocketAddr,
    pub content_dir: PathBuf,
    pub content_store: ContentStoreConfig,
    /// The upstream server's base URL; unset = no upstream (imports only).
    pub upstream_url: Option<String>,
    /// Replica mode: approvals, groups, declines and EULAs come from the upstream.
    pub replica: bool,
    /// HTTP(S) proxy for everything upstream, credentials in the URL.
    pub upstream_proxy: Option<ProxyUrl>,
    /// A PEM root certificate trusted for the upstream's TLS, besides the system roots.
    pub upstream_ca_file: Option<PathBuf>,
    /// The code-signing certificate locally published Cabinets are signed with (PEM, the
    /// signer first, then its chain) and its private key (PEM); unset = one generated on
    /// request and kept in the database.
    pub signing: Option<SigningFiles>,
}

/// Where the signing certificate and its key are read from.
#[derive(Clone, PartialEq, Eq)]
pub enum SigningFiles {
    /// The certificate (then its chain) and the key, PEM.
    Pem { certificate: PathBuf, key: PathBuf },
    /// A PKCS#12 file and its password.
    Pkcs12 { file: PathBuf, password: String },
}

impl std::fmt::Debug for SigningFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pem { certificate, key } => write!(f, "Pem({}, {})", certificate.display(), key.display()),
            // Never the password.
            Self::Pkcs12 { file, .. } => write!(f, "Pkcs12({})", file.display()),
        }
    }
}

/// The signing certificate's files: PEM, or PKCS#12 (one or the other).
fn signing_files(vars: &Vars) -> Result<Option<SigningFiles>> {
    let pem = (vars.get("WSUS_SIGNING_CERTIFICATE_FILE"), vars.get("WSUS_SIGNING_KEY_FILE"));
    let pkcs12 = vars.get("WSUS_SIGNING_PKCS12_FILE");
    match (pem, pkcs12) {
        ((None, None), None) => Ok(None),
        ((Some(c), Some(k)), None) => Ok(Some(SigningFiles::Pem { certificate: c.into(), key: k.into() })),
        ((None, None), Some(file)) => Ok(Some(SigningFiles::Pkcs12 {
            file: file.into(),
            // An empty password is a password (Windows exports allow it).
            password: vars.raw("WSUS_SIGNING_PKCS12_PASSWORD").unwrap_or_default(),
        })),
        ((_, _), Some(_)) => Err(ConfigError::new(
            "WSUS_SIGNING_PKCS12_FILE",
            "is set with WSUS_SIGNING_CERTIFICATE_FILE or WSUS_SIGNING_KEY_FILE: give one or the other",
        )),
        _ => Err(ConfigError::new(
            "WSUS_SIGNING_CERTIFICATE_FILE",
            "and WSUS_SIGNING_KEY_FILE go together: set both or neither",
        )),
    }
}

/// A proxy URL whose credentials never reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(pub String);

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.split_once("://").and_then(|(scheme, rest)| Some((scheme, rest.split_once('@')?.1))) {
            Some((scheme, host)) => write!(f, "{scheme}://***@{host}"),
            None => f.write_str(&self.0),
        }
    }
}

impl SyncWorkerConfig {
    pub fn from_vars(vars: &Vars) -> Result<Self> {
        Ok(Self {
            common: CommonConfig::read(vars, "0.0.0.0:8081")?,
            grpc_addr: vars.socket_addr("WSUS_GRPC_ADDR", "0.0.0.0:50052")?,
            content_dir: content_dir(vars),
            content_store: content_store(vars)?,
            upstream_url: vars.http_url("WSUS_UPSTREAM_URL")?,
            replica: vars.bool("WSUS_REPLICA", false)?,
            upstream_proxy: vars.http_url("WSUS_UPSTREAM_PROXY")?.map(ProxyUrl),
            upstream_ca_file: vars.get("WSUS_UPSTREAM_CA_FILE").map(PathBuf::from),
            signing: signing_files(vars)?,
        })
    }
}

/// Reads the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars_from(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn gateway(pairs: &[(&str, &str)]) -> Result<GatewayConfig> {
        let map = vars_from(pairs);
        let lookup = move |k: &str| map.get(k).cloned();
        GatewayConfig::from_vars(&Vars::new(&lookup))
    }

    const DB: (&str, &str) = ("DATABASE_URL", "postgres://u:secret@localhost/wsus");

    #[test]
    fn the_content_store_is_a_directory_unless_a_bucket_is_named() {
        assert_eq!(gateway(&[DB]).unwrap().content_store, ContentStoreConfig::Filesystem);
        let e = gateway(&[DB, ("WSUS_CONTENT_STORE", "s3")]).unwrap_err();
        assert_eq!(e.variable, "WSUS_S3_BUCKET");
        let s3 = gateway(&[
            DB,
            ("WSUS_CONTENT_STORE", "s3"),
            ("WSUS_S3_BUCKET", "wsus"),
            ("WSUS_S3_ENDPOINT", "http://minio:9000"),
            ("WSUS_S3_PREFIX", "/site-a/"),
        ])
        .unwrap();
        let want = S3Config {
            bucket: "wsus".into(),
            endpoint: Some("http://minio:9000".into()),
            region: "us-east-1".into(),
            prefix: "site-a".into(),
        };
        assert_eq!(s3.content_store, ContentStoreConfig::S3(want));
        assert_eq!(gateway(&[DB, ("WSUS_CONTENT_STORE", "nfs")]).unwrap_err().variable, "WSUS_CONTENT_STORE");
    }

    #[test]
    fn url_errors_never_show_credentials() {
        for bad in ["http://user:proxy secret@host", "ftp://user:proxy-secret@host", "http://user:proxy-secret@"] {
            let e = parse_http_url("WSUS_UPSTREAM_PROXY", bad).unwrap_err();
            assert!(!e.to_string().contains("secret"), "{e}");
            assert_eq!(e.variable, "WSUS_UPSTREAM_PROXY");
        }
    }

    #[test]
    fn defaults_follow_the_fixed_names() {
        let g = gateway(&[DB]).unwrap();
        assert_eq!(g.common.http_addr, "0.0.0.0:8530".parse().unwrap());
        assert_eq!(g.common.admin_addr, None);
        assert!(g.common.migrate_on_start);
        assert_eq!(g.reporting_grpc, "http://127.0.0.1:50051");
        assert_eq!(g.tls, None, "TLS only with a certificate");
        let with_tls = gateway(&[DB, ("WSUS_TLS_CERT", "/tls/tls.crt"), ("WSUS_TLS_KEY", "/tls/tls.key")]).unwrap();
        assert_eq!(with_tls.tls.unwrap().addr, "0.0.0.0:8531".parse().unwrap());
        assert_eq!(gateway(&[DB, ("WSUS_TLS_CERT", "/tls/tls.crt")]).unwrap_err().variable, "WSUS_TLS_KEY");
        let map = vars_from(&[DB, ("WSUS_TLS_CERT", "/tls/tls.crt"), ("WSUS_TLS_KEY", "/tls/tls.key")]);
        let lookup = move |k: &str| map.get(k).cloned();
        let reporting = ReportingConfig::from_vars(&Vars::new(&lookup)).unwrap();
        assert_eq!(reporting.tls.unwrap().addr, "0.0.0.0:8443".parse().unwrap(), "the management API's own port");
        assert_eq!(g.common.seed.languages, vec!["en"]);
        assert_eq!(g.common.seed.content_mode, ContentMode::Lazy);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!((g.soap_max_inflight, g.soap_max_queued), (8 * cores, 64 * cores));
        assert_eq!(g.soap_queue_wait, std::time::Duration::from_secs(2));
        assert_eq!(g.retry_after_seconds, 10);
        assert!(g.trusted_proxies.is_empty(), "no proxy is trusted unless named");
        let proxies = gateway(&[DB, ("WSUS_TRUSTED_PROXIES", "10.42.0.0/16, 192.0.2.7,fd00::1/8")]).unwrap();
        let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
        assert_eq!(proxies.trusted_proxies, vec![net("10.42.0.0/16"), net("192.0.2.7/32"), net("fd00::/8")]);

        let map = vars_from(&[DB]);
        let lookup = move |k: &str| map.get(k).cloned();
        let r = ReportingConfig::from_vars(&Vars::new(&lookup)).unwrap();
        assert_eq!(r.common.http_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(r.grpc_addr, "0.0.0.0:50051".parse().unwrap());
        assert_eq!(r.sync_grpc, "http://127.0.0.1:50052");
        let s = SyncWorkerConfig::from_vars(&Vars::new(&lookup)).unwrap();
        assert_eq!(s.common.http_addr, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(s.grpc_addr, "0.0.0.0:50052".parse().unwrap());
        assert_eq!(s.upstream_url, None);
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(gateway(&[]).unwrap_err().variable, "DATABASE_URL");
        assert_eq!(gateway(&[("DATABASE_URL", "mysql://x")]).unwrap_err().variable, "DATABASE_URL");
        for (name, bad) in [
            ("WSUS_HTTP_ADDR", "8530"),
            ("WSUS_ADMIN_ADDR", "localhost"),
            ("WSUS_MIGRATE_ON_START", "maybe"),
            ("WSUS_SERVER_ID", "not-a-guid"),
            ("WSUS_SERVER_FQDN", "bad host!"),
            ("WSUS_REPORTING_GRPC", "127.0.0.1:50051"),
            ("WSUS_CONTENT_BASE_URL", "ftp://cdn"),
            ("WSUS_COOKIE_KEYS", "k1:short"),
            ("WSUS_SYNC_PRODUCTS", "x"),
            ("WSUS_SYNCS_PER_DAY", "99"),
            ("WSUS_CONTENT_MODE", "eager"),
            ("WSUS_SOAP_MAX_BODY_BYTES", "12"),
            ("WSUS_SOAP_MAX_DEPTH", "deep"),
            ("WSUS_SOAP_MAX_INFLIGHT", "0"),
            ("WSUS_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("WSUS_TRUSTED_PROXIES", "ingress"),
            ("WSUS_SOAP_MAX_QUEUED", "-1"),
            ("WSUS_SOAP_QUEUE_WAIT_MS", "2s"),
            ("WSUS_RETRY_AFTER_SECONDS", "0"),
        ] {
            let err = gateway(&[DB, (name, bad)]).unwrap_err();
            assert_eq!(err.variable, name, "{err}");
            assert!(err.to_string().starts_with(name));
        }
    }

    #[test]
    fn cookie_keys_and_tokens_parse() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let g = gateway(&[DB, ("WSUS_COOKIE_KEYS", &format!("new:{key}, old:{key}"))]).unwrap();
        assert_eq!(g.cookie_keys.len(), 2);
        assert_eq!(g.cookie_keys[0].id, "new");
        assert_eq!(g.cookie_keys[1].key, [7u8; 32]);
        assert!(!format!("{g:?}").contains(&key), "keys never reach logs");
        assert!(!format!("{g:?}").contains("secret"), "database password never reaches logs");
        let dup = gateway(&[DB, ("WSUS_COOKIE_KEYS", &format!("a:{key},a:{key}"))]);
        assert!(dup.is_err());

        let map = vars_from(&[DB, ("WSUS_API_TOKENS", "admin:s3cret-admin,reader:r3ad-only")]);
        let lookup = move |k: &str| map.get(k).cloned();
        let r = ReportingConfig::from_vars(&Vars::new(&lookup)).unwrap();
        assert_eq!(r.api_tokens[0].role, Role::Admin);
        assert_eq!(r.api_tokens[1].token, "r3ad-only");
        assert!(r.cookie_keys.is_empty(), "optional: the generated key stands in");
        let map = vars_from(&[DB, ("WSUS_COOKIE_KEYS", &format!("console:{key}"))]);
        let lookup = move |k: &str| map.get(k).cloned();
        let r = ReportingConfig::from_vars(&Vars::new(&lookup)).unwrap();
        assert_eq!(r.cookie_keys, vec![CookieKey { id: "console".into(), key: [7u8; 32] }]);
        assert!(!format!("{r:?}").contains(&key), "keys never reach logs");
        let map = vars_from(&[DB, ("WSUS_COOKIE_KEYS", "k1:short")]);
        let lookup = move |k: &str| map.get(k).cloned();
        assert_eq!(ReportingConfig::from_vars(&Vars::new(&lookup)).unwrap_err().variable, "WSUS_COOKIE_KEYS");
        let map = vars_from(&[DB, ("WSUS_API_TOKENS", "root:whatever123")]);
        let lookup = move |k: &str| map.get(k).cloned();
        assert_eq!(ReportingConfig::from_vars(&Vars::new(&lookup)).unwrap_err().variable, "WSUS_API_TOKENS");
    }

    #[test]
    fn identity_and_upstream() {
        let g = gateway(&[
            DB,
            ("WSUS_SERVER_ID", "6E1C1D2B-2F0B-4C4E-9E2F-1A2B3C4D5E6F"),
            ("WSUS_SERVER_FQDN", "WSUS.Example.org"),
        ])
        .unwrap();
        assert_eq!(g.common.server_id.unwrap().to_string(), "6e1c1d2b-2f0b-4c4e-9e2f-1a2b3c4d5e6f");
        assert_eq!(g.common.server_fqdn.as_deref(), Some("wsus.example.org"));

        let map = vars_from(&[
            DB,
            ("WSUS_UPSTREAM_URL", "http://uss.example:8530/"),
            ("WSUS_REPLICA", "true"),
            ("WSUS_UPSTREAM_PROXY", "http://user:secret@proxy.example:3128"),
        ]);
        let lookup = move |k: &str| map.get(k).cloned();
        let s = SyncWorkerConfig::from_vars(&Vars::new(&lookup)).unwrap();
        assert_eq!(s.upstream_url.as_deref(), Some("http://uss.example:8530"));
        let proxy = s.upstream_proxy.clone().unwrap();
        assert_eq!(proxy.0, "http://user:secret@proxy.example:3128");
        assert_eq!(format!("{proxy:?}"), "http://***@proxy.example:3128");
        assert!(!format!("{s:?}").contains("secret"));
        assert!(s.replica);
    }

    #[test]
    fn the_mail_server_keeps_its_password_out_of_logs() {
        let reporting = |pairs: &[(&str, &str)]| {
            let map = vars_from(&[&[DB], pairs].concat());
            let lookup = move |k: &str| map.get(k).cloned();
            ReportingConfig::from_vars(&Vars::new(&lookup))
        };
        assert_eq!(reporting(&[]).unwrap().smtp, None);
        let r = reporting(&[
            ("WSUS_SMTP_URL", "smtp://wsus:p4ss@mail.example:587?tls=required"),
            ("WSUS_SMTP_FROM", "wsus@example.com"),
        ])
        .unwrap();
        let smtp = r.smtp.clone().unwrap();
        assert_eq!(smtp.url, "smtp://wsus:p4ss@mail.example:587?tls=required");
        assert!(!format!("{r:?}").contains("p4ss"), "{r:?}");
        assert!(
            reporting(&[("WSUS_SMTP_URL", "smtp://mail.example")]).unwrap_err().to_string().contains("WSUS_SMTP_FROM")
        );
        assert!(reporting(&[("WSUS_SMTP_URL", "http://mail.example"), ("WSUS_SMTP_FROM", "a@b")]).is_err());
    }

    #[test]
    fn the_signing_certificate_is_pem_or_pkcs12() {
        let sync_worker = |pairs: &[(&str, &str)]| {
            let map = vars_from(&[&[DB], pairs].concat());
            let lookup = move |k: &str| map.get(k).cloned();
            SyncWorkerConfig::from_vars(&Vars::new(&lookup))
        };
        assert_eq!(sync_worker(&[]).unwrap().signing, None);
        let pem =
            sync_worker(&[("WSUS_SIGNING_CERTIFICATE_FILE", "/s/tls.crt"), ("WSUS_SIGNING_KEY_FILE", "/s/tls.key")]);
        assert_eq!(
            pem.unwrap().signing,
            Some(SigningFiles::Pem { certificate: "/s/tls.crt".into(), key: "/s/tls.key".into() })
        );
        let pfx = sync_worker(&[
            ("WSUS_SIGNING_PKCS12_FILE", "/s/signing.pfx"),
            ("WSUS_SIGNING_PKCS12_PASSWORD", " s3cret "),
        ])
        .unwrap();
        assert_eq!(
            pfx.signing,
            Some(SigningFiles::Pkcs12 { file: "/s/signing.pfx".into(), password: " s3cret ".into() })
        );
        assert!(!format!("{pfx:?}").contains("s3cret"), "the password stays out of logs");
        let half = sync_worker(&[("WSUS_SIGNING_CERTIFICATE_FILE", "/s/tls.crt")]).unwrap_err();
        assert!(half.to_string().contains("WSUS_SIGNING_KEY_FILE"), "{half}");
        let both = sync_worker(&[
            ("WSUS_SIGNING_CERTIFICATE_FILE", "/a"),
            ("WSUS_SIGNING_KEY_FILE", "/b"),
            ("WSUS_SIGNING_PKCS12_FILE", "/c"),
        ])
        .unwrap_err();
        assert!(both.to_string().contains("one or the other"), "{both}");
    }
}
