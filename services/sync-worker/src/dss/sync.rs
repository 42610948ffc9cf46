//! This server as a downstream server (MS-WSUSSS 3.2.4): authorize, GetConfigData, the
//! categories pass, the updates pass with the administrator's filters, the documents in
//! bounded parallel batches, then the files. Anchors are committed only after the data
//! of their round is durable, so a sync killed at any point resumes without loss.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use tokio::task::JoinSet;
use tracing::Instrument as _;
use uuid::Uuid;
use wsus_soap::wsusss::{self, IdAndDelta, RevisionFilter, dss};
use wsus_soap::wusp::Cookie;
use wsus_soap::{Element, Limits};
use wsus_store::dss::UpstreamConfig;
use wsus_store::revisions::{self, NewRevision};
use wsus_store::{PgPool, StoreError, settings, sync_history};

const SERVER_SYNC: &str = "ServerSyncWebService/ServerSyncWebService.asmx";
/// GetUpdateData requests in flight at once.
const PARALLEL_BATCHES: usize = 4;
/// Downloads in flight at once.
const PARALLEL_DOWNLOADS: usize = 4;
/// A cookie this close to expiry is renewed before the sync starts.
const COOKIE_MARGIN: chrono::Duration = chrono::Duration::minutes(10);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("WSUS_UPSTREAM_URL is not set: there is no upstream server to synchronise from")]
    NoUpstream,
    /// Another run holds the lock of this work (a sync or rollup of the named upstream, or cleanup).
    #[error("{0}: another run is in progress")]
    Busy(String),
    #[error("upstream {url}: {message}")]
    Http { url: String, message: String },
    #[error("upstream fault {code} in {operation}: {message}")]
    Fault { operation: String, code: String, message: String },
    #[error("upstream answer to {operation} is not understood: {message}")]
    Protocol { operation: String, message: String },
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

impl SyncError {
    pub(crate) fn protocol(operation: &str, message: impl ToString) -> Self {
        SyncError::Protocol { operation: operation.to_owned(), message: message.to_string() }
    }

    fn is_cookie_fault(&self) -> bool {
        matches!(self, SyncError::Fault { code, .. } if code == "InvalidCookie" || code == "CookieExpired")
    }
}

/// Who this server is to its upstream.
#[derive(Debug, Clone)]
pub struct Me {
    pub server_id: Uuid,
    pub fqdn: String,
}

/// The SOAP side of an upstream server.
#[derive(Clone)]
pub struct Upstream {
    http: reqwest::Client,
    base: String,
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

/// An authorized conversation with the upstream.
struct Session {
    upstream: Upstream,
    pool: PgPool,
    url: String,
    me: Me,
    cookie: Cookie,
}

impl Session {
    /// Reuses the cookie in `state` while it has time left, else authorizes.
    async fn open(
        pool: &PgPool,
        upstream: Upstream,
        url: &str,
        me: Me,
        state: &wsus_store::dss::UpstreamState,
    ) -> Result<Self, SyncError> {
        let saved = match (state.cookie_expiration, &state.cookie_encrypted_data) {
            (Some(exp), Some(data)) if exp > Utc::now() + COOKIE_MARGIN => {
                Some(Cookie { expiration: exp, encrypted_data: Some(String::from_utf8_lossy(data).into_owned()) })
            }
            _ => None,
        };
        let mut session = Session {
            upstream,
            pool: pool.clone(),
            url: url.to_owned(),
            me,
            cookie: Cookie { expiration: Utc::now(), encrypted_data: None },
        };
        match saved {
            Some(c) => session.cookie = c,
            None => session.authorize().await?,
        }
        Ok(session)
    }

    /// GetAuthConfig, the plug-in's GetAuthorizationCookie, GetCookie.
    async fn authorize(&mut self) -> Result<(), SyncError> {
        let (_, response) = self
            .upstream
            .call(SERVER_SYNC, &dss::action("GetAuthConfig"), "GetAuthConfig", &dss::get_auth_config())
            .await?;
        let result = dss::result(&response, "GetAuthConfig").map_err(|e| SyncError::protocol("GetAuthConfig", e))?;
        let plug_ins = dss::auth_plug_ins(result).map_err(|e| SyncError::protocol("GetAuthConfig", e))?;
        let (plug_in, service) = plug_ins
            .iter()
            .find(|(id, _)| id == "DssTargeting")
            .or(plug_ins.first())
            .cloned()
            .ok_or_else(|| SyncError::protocol("GetAuthConfig", "no authorization plug-in"))?;
        // Microsoft Update authorizes anonymously: the all-zero GUID as name and id.
        let body = if is_microsoft_update(&self.url) {
            dss::get_authorization_cookie(&Uuid::nil().to_string(), Uuid::nil())
        } else {
            dss::get_authorization_cookie(&self.me.fqdn, self.me.server_id)
        };
        let (_, response) =
            self.upstream.call(&service, &dss::dss_auth_action(), "GetAuthorizationCookie", &body).await?;
        let result = dss::result(&response, "GetAuthorizationCookie")
            .map_err(|e| SyncError::protocol("GetAuthorizationCookie", e))?;
        let (plug_in_id, data) =
            dss::authorization_cookie(result).map_err(|e| SyncError::protocol("GetAuthorizationCookie", e))?;
        let plug_in_id = if plug_in_id.is_empty() { plug_in } else { plug_in_id };
        let body = dss::get_cookie(&plug_in_id, &data, wsusss::PROTOCOL_VERSION);
        let (_, response) = self.upstream.call(SERVER_SYNC, &dss::action("GetCookie"), "GetCookie", &body).await?;
        let cookie = dss::result(&response, "GetCookie")
            .and_then(dss::cookie_of)
            .map_err(|e| SyncError::protocol("GetCookie", e))?;
        wsus_store::dss::save_cookie(
            &self.pool,
            &self.url,
            &plug_in_id,
            data.as_bytes(),
            cookie.expiration,
            cookie.encrypted_data.as_deref().unwrap_or_default().as_bytes(),
        )
        .await?;
        tracing::info!(upstream = %self.url, expires = %cookie.expiration, "authorized by the upstream server");
        self.cookie = cookie;
        Ok(())
    }

    /// A server-sync call with the cookie; a refused cookie is renewed once.
    async fn call(&mut self, op: &str, body: impl Fn(&Cookie) -> String) -> Result<(String, Element), SyncError> {
        match self.upstream.call(SERVER_SYNC, &dss::action(op), op, &body(&self.cookie)).await {
            Err(e) if e.is_cookie_fault() => {
                tracing::info!(upstream = %self.url, "cookie refused; authorizing again");
                wsus_store::dss::drop_cookie(&self.pool, &self.url).await?;
                self.authorize().await?;
                self.upstream.call(SERVER_SYNC, &dss::action(op), op, &body(&self.cookie)).await
            }
            other => other,
        }
    }

    async fn revision_ids(&mut self, filter: &RevisionFilter) -> Result<dss::RevisionIdList, SyncError> {
        let (_, response) = self.call("GetRevisionIdList", |c| dss::get_revision_id_list(c, filter)).await?;
        dss::result(&response, "GetRevisionIdList")
            .and_then(dss::revision_id_list)
            .map_err(|e| SyncError::protocol("GetRevisionIdList", e))
    }
}

/// What one sync did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SyncOutcome {
    pub sync_id: i64,
    pub revisions_new: u64,
    pub revisions_updated: u64,
    pub deployments_changed: u64,
    pub files_queued: u64,
    pub files_downloaded: u64,
    pub files_failed: u64,
    pub bytes_received: u64,
    /// Documents the upstream sent that could not be read (set aside; asked for again).
    pub revisions_quarantined: u64,
}

/// Everything a sync needs.
#[derive(Clone)]
pub struct SyncContext {
    pub pool: PgPool,
    pub upstream_url: Option<String>,
    pub content_dir: std::path::PathBuf,
    pub me: Me,
    /// Replica mode: groups, approvals, declines and EULAs come from the upstream.
    pub replica: bool,
    pub transport: Transport,
    /// In a cluster, the Lease a replica must hold to sync.
    pub lease: Option<std::sync::Arc<crate::lease::LeaseLock>>,
}

/// A sync that holds its upstream's lock and has its history row.
pub struct Started {
    lock: sqlx::pool::PoolConnection<sqlx::Postgres>,
    url: String,
    pub sync_id: i64,
    /// Keeps the Lease renewed while the sync runs.
    renewal: Option<tokio::task::JoinHandle<()>>,
}

/// Takes the Lease when running in a cluster; Busy when another replica holds it.
async fn take_lease(ctx: &SyncContext, url: &str) -> Result<Option<tokio::task::JoinHandle<()>>, SyncError> {
    let Some(lease) = &ctx.lease else { return Ok(None) };
    match lease.try_acquire().await {
        Ok(true) => Ok(Some(lease.keep_renewed())),
        Ok(false) => Err(SyncError::Busy(format!("{url} (another sync-worker holds the Lease)"))),
        Err(e) => Err(SyncError::Other(format!("the sync Lease: {e}"))),
    }
}

/// Gives the Lease back (its renewal stops first).
async fn give_back_lease(ctx: &SyncContext, renewal: Option<tokio::task::JoinHandle<()>>) {
    if let Some(r) = renewal {
        r.abort();
    }
    if let Some(lease) = &ctx.lease
        && let Err(e) = lease.release().await
    {
        tracing::warn!(error = %e, "cannot give the sync Lease back; it expires by itself");
    }
}

/// Takes the per-upstream lock and opens the history row; Busy when another replica or
/// run holds the lock.
pub async fn begin(ctx: &SyncContext, trigger: &str) -> Result<Started, SyncError> {
    let url = ctx.upstream_url.clone().ok_or(SyncError::NoUpstream)?;
    let Some(lock) = wsus_store::dss::try_lock(&ctx.pool, &url).await? else {
        return Err(SyncError::Busy(url));
    };
    let renewal = match take_lease(ctx, &url).await {
        Ok(r) => r,
        Err(e) => {
            wsus_store::dss::unlock(lock, &url).await?;
            return Err(e);
        }
    };
    // A run that died without finishing its history row is over: the lock proves it.
    sync_history::fail_abandoned(&ctx.pool, chrono::Duration::zero()).await?;
    let record = sync_history::start(&ctx.pool, &url, trigger).await?;
    Ok(Started { lock, url, sync_id: record.sync_id, renewal })
}

impl Started {
    /// Runs the sync to its end, records the outcome, releases the lock.
    pub async fn run(self, ctx: &SyncContext) -> Result<SyncOutcome, SyncError> {
        let mut outcome = SyncOutcome { sync_id: self.sync_id, ..Default::default() };
        // A sync is a trace of its own, whoever started it.
        let span = tracing::info_span!(parent: None, "sync", sync_id = self.sync_id, upstream = %self.url);
        let result = run(ctx, &self.url, &mut outcome).instrument(span).await;
        if let Err(e) = &result {
            tracing::warn!(upstream = %self.url, error = %e, "sync failed");
        }
        let error = result.as_ref().err().map(|e| e.to_string());
        let counts = sync_history::Counts {
            revisions_new: outcome.revisions_new as i32,
            revisions_updated: outcome.revisions_updated as i32,
            deployments_changed: outcome.deployments_changed as i32,
            files_queued: outcome.files_queued as i32,
            bytes_received: outcome.bytes_received as i64,
            revisions_quarantined: outcome.revisions_quarantined as i32,
        };
        sync_history::record_counts(&ctx.pool, self.sync_id, counts).await?;
        let verdict = if error.is_none() { "succeeded" } else { "failed" };
        sync_history::finish(&ctx.pool, self.sync_id, verdict, error.as_deref()).await?;
        give_back_lease(ctx, self.renewal).await;
        wsus_store::dss::unlock(self.lock, &self.url).await?;
        // Reporting follows each successful sync (Microsoft Update takes none).
        if result.is_ok() && !is_microsoft_update(&self.url) {
            match crate::dss::rollup::rollup_once(ctx).await {
                Ok(r) => tracing::info!(computers = r.computers, statuses = r.statuses, "rollup after sync done"),
                Err(SyncError::Busy(_)) => {}
                Err(e) => tracing::warn!(error = %e, "rollup after sync failed; the next one sends it"),
            }
        }
        result.map(|()| outcome)
    }
}

/// One complete sync (metadata, then content) under the per-upstream lock, recorded in
/// the sync history.
pub async fn sync_once(ctx: &SyncContext, trigger: &str) -> Result<SyncOutcome, SyncError> {
    begin(ctx, trigger).await?.run(ctx).await
}

/// Works through the download queue between syncs (files clients missed, files a
/// downstream asked for), under the same lock as a sync; nothing to do returns at once.
pub async fn drain_downloads(ctx: &SyncContext) -> Result<SyncOutcome, SyncError> {
    let url = ctx.upstream_url.clone().ok_or(SyncError::NoUpstream)?;
    let mut outcome = SyncOutcome::default();
    if wsus_store::dss::due_downloads(&ctx.pool, 1).await?.is_empty() {
        return Ok(outcome);
    }
    let Some(lock) = wsus_store::dss::try_lock(&ctx.pool, &url).await? else {
        return Err(SyncError::Busy(url));
    };
    let renewal = match take_lease(ctx, &url).await {
        Ok(r) => r,
        Err(e) => {
            wsus_store::dss::unlock(lock, &url).await?;
            return Err(e);
        }
    };
    let result = async {
        let upstream = Upstream::new(&url, &ctx.transport)?;
        let state = wsus_store::dss::load(&ctx.pool, &url).await?;
        let mut session = Session::open(&ctx.pool, upstream, &url, ctx.me.clone(), &state).await?;
        download_queue(ctx, &mut session, state.catalog_only_sync.unwrap_or(false), &mut outcome).await
    }
    .await;
    give_back_lease(ctx, renewal).await;
    wsus_store::dss::unlock(lock, &url).await?;
    result.map(|()| outcome)
}

/// One sync; an upstream that answers ServerChanged is another server than the anchors
/// came from: they are reset and the sync starts over once (MS-WSUSSS 2.2.9.3: "The DSS
/// MUST reset the ConfigAnchor, SyncAnchor, and DeploymentAnchor ... and continue the
/// protocol").
async fn run(ctx: &SyncContext, url: &str, outcome: &mut SyncOutcome) -> Result<(), SyncError> {
    match run_from_anchors(ctx, url, outcome).await {
        Err(SyncError::Fault { code, operation, .. }) if code == "ServerChanged" => {
            tracing::warn!(upstream = url, operation, "the upstream server changed; starting over from no anchor");
            wsus_store::dss::reset_anchors(&ctx.pool, url).await?;
            run_from_anchors(ctx, url, outcome).await
        }
        other => other,
    }
}

async fn run_from_anchors(ctx: &SyncContext, url: &str, outcome: &mut SyncOutcome) -> Result<(), SyncError> {
    let pool = &ctx.pool;
    let id = outcome.sync_id;
    let upstream = Upstream::new(url, &ctx.transport)?;
    sync_history::progress(pool, id, "authorizing", 0, 0).await?;
    let state = wsus_store::dss::load(pool, url).await?;
    let mut session =
        Session::open(pool, upstream, url, ctx.me.clone(), &state).instrument(phase("authorizing")).await?;

    sync_history::progress(pool, id, "configuration", 0, 0).await?;
    let anchor = state.config_anchor.clone();
    let (_, response) = session
        .call("GetConfigData", |c| dss::get_config_data(c, anchor.as_deref()))
        .instrument(phase("configuration"))
        .await?;
    let config = dss::result(&response, "GetConfigData")
        .and_then(dss::config_data)
        .map_err(|e| SyncError::protocol("GetConfigData", e))?;
    let per_request = (config.max_updates_per_request as usize).clamp(1, wsusss::MAX_UPDATES_PER_REQUEST);
    wsus_store::dss::save_config(
        pool,
        url,
        &UpstreamConfig {
            anchor: config.new_config_anchor.clone(),
            catalog_only_sync: config.catalog_only_sync,
            lazy_sync: config.lazy_sync,
            server_hosts_psf_files: config.server_hosts_psf_files,
            max_updates_per_request: per_request as i32,
            max_updates_per_decryption_request: config.max_updates_per_decryption_request as i32,
            protocol_version: response
                .children
                .first()
                .and_then(|r| r.child("ProtocolVersion"))
                .map(|v| v.value().to_owned())
                .unwrap_or_default(),
            languages: config.languages.iter().map(|l| (l.id, l.short.clone(), l.long.clone(), l.enabled)).collect(),
        },
    )
    .await?;

    // Set aside by earlier syncs: asked for again after the passes, unless a pass just did.
    let set_aside = wsus_store::dss::quarantined(pool, url).await?;
    // Categories pass: categories and detectoids changed since the last committed anchor.
    let sync_anchor = state.sync_anchor.clone();
    let categories_filter = RevisionFilter { anchor: sync_anchor.clone(), get_config: true, ..Default::default() };
    let categories = async {
        let categories = session.revision_ids(&categories_filter).await?;
        fetch_documents(&mut session, pool, id, "categories", &categories.revisions, per_request, outcome).await?;
        Ok::<_, SyncError>(categories)
    }
    .instrument(phase("categories"))
    .await?;

    // Updates pass, with the administrator's products and classifications.
    let products = setting_ids(pool, settings::SYNC_PRODUCTS).await?;
    let classifications = setting_ids(pool, settings::SYNC_CLASSIFICATIONS).await?;
    let filter_json = serde_json::json!({ "products": products, "classifications": classifications });
    let same_filter = state.sync_filter.as_ref() == Some(&filter_json);
    let mut filter = RevisionFilter { anchor: sync_anchor.filter(|_| same_filter), ..Default::default() };
    // Microsoft Update lists nothing without a classification: "everything" is spelled out.
    if !(products.is_empty() && classifications.is_empty()) || is_microsoft_update(url) {
        // Never one list alone (a real WSUS answers that with nothing): an unset kind is
        // every category of that kind the categories pass brought.
        let products =
            if products.is_empty() { wsus_store::dss::categories_of_kind(pool, false).await? } else { products };
        let classifications = if classifications.is_empty() {
            wsus_store::dss::categories_of_kind(pool, true).await?
        } else {
            classifications
        };
        let delta = filter.anchor.is_some();
        filter.categories = products.into_iter().map(|id| IdAndDelta { id, delta }).collect();
        filter.classifications = classifications.into_iter().map(|id| IdAndDelta { id, delta }).collect();
    }
    async {
        let updates = session.revision_ids(&filter).await?;
        fetch_documents(&mut session, pool, id, "updates", &updates.revisions, per_request, outcome).await?;
        let asked: HashSet<_> = categories.revisions.iter().chain(&updates.revisions).copied().collect();
        let again: Vec<_> = set_aside.iter().filter(|k| !asked.contains(k)).copied().collect();
        retry_quarantined(&mut session, pool, &again, outcome).await?;
        decryption_keys(&mut session, pool, config.max_updates_per_decryption_request as usize).await?;
        revisions::refresh_derived(pool).await?;
        Ok::<_, SyncError>(())
    }
    .instrument(phase("updates"))
    .await?;
    // Both passes are durable: from now on, only what changed after this anchor.
    if let Some(a) = &categories.anchor {
        wsus_store::dss::save_sync_anchor(pool, url, a, &filter_json).await?;
        if ctx.replica {
            sync_history::progress(pool, id, "deployments", 0, 0).await?;
            replicate(&mut session, pool, url, state.deployment_anchor.as_deref(), a, outcome)
                .instrument(phase("deployments"))
                .await?;
        }
    }
    if !ctx.replica {
        // New revisions meet the automatic approval rules; expired ones are declined.
        let applied = wsus_store::rules::apply(pool, None, false).instrument(phase("rules")).await?;
        outcome.deployments_changed += applied.approved + applied.revisions_followed;
    }

    content(ctx, &mut session, config.catalog_only_sync, outcome).instrument(phase("content")).await
}

/// A span for one phase of a sync (a child of the sync's span).
fn phase(name: &'static str) -> tracing::Span {
    tracing::info_span!("sync_phase", "otel.name" = name)
}

/// GetUpdateDecryptionData for the revisions whose encrypted files lack their keys.
async fn decryption_keys(session: &mut Session, pool: &PgPool, per_request: usize) -> Result<(), SyncError> {
    let wanted = wsus_store::dss::needing_decryption(pool).await?;
    for batch in wanted.chunks(per_request.clamp(1, wsusss::MAX_UPDATES_PER_REQUEST)) {
        let (_, response) =
            session.call("GetUpdateDecryptionData", |c| dss::get_update_decryption_data(c, batch)).await?;
        let data = dss::result(&response, "GetUpdateDecryptionData")
            .and_then(wsusss::decode_update_decryption_data)
            .map_err(|e| SyncError::protocol("GetUpdateDecryptionData", e))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let keys: Vec<(Vec<u8>, Vec<u8>)> = data
            .iter()
            .flat_map(|u| u.files.iter())
            .filter_map(|(digest, key)| Some((b64.decode(digest).ok()?, b64.decode(key.as_deref()?).ok()?)))
            .collect();
        wsus_store::dss::set_decryption_keys(pool, &keys).await?;
    }
    Ok(())
}

/// GetDeployments, applied in one transaction; then its anchor is committed.
async fn replicate(
    session: &mut Session,
    pool: &PgPool,
    url: &str,
    deployment_anchor: Option<&str>,
    sync_anchor: &str,
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError> {
    use wsus_store::approvals::{Action, AdminState, Deployment, Group};
    let (_, response) =
        session.call("GetDeployments", |c| dss::get_deployments(c, deployment_anchor, sync_anchor)).await?;
    let answer = dss::result(&response, "GetDeployments")
        .and_then(wsusss::Deployments::decode)
        .map_err(|e| SyncError::protocol("GetDeployments", e))?;
    let state = AdminState {
        groups: answer
            .groups
            .iter()
            .map(|g| Group { group_id: g.id, name: g.name.clone(), parent_group_id: g.parent, is_builtin: g.builtin })
            .collect(),
        deployments: answer
            .deployments
            .iter()
            .map(|d| Deployment {
                deployment_id: d.deployment_id,
                update_id: d.update_id,
                revision_number: Some(d.revision_number),
                group_id: d.group_id,
                action: match (d.action, d.is_assigned) {
                    (0, true) => Action::Install,
                    (0, false) => Action::OptionalInstall,
                    (1, _) => Action::Uninstall,
                    (2, _) => Action::PreDeploymentCheck,
                    _ => Action::Block,
                },
                deadline: d.deadline,
                is_assigned: d.is_assigned,
                download_priority: i16::from(d.download_priority),
                admin_name: d.admin_name.clone(),
                last_change_time: d.go_live_time,
            })
            .collect(),
        declined: answer.hidden.clone(),
        accepted_eulas: answer.accepted_eulas.clone(),
    };
    outcome.deployments_changed += wsus_store::approvals::replicate(pool, &state, &answer.dead).await?;
    let anchor = if answer.anchor.is_empty() { sync_anchor } else { &answer.anchor };
    wsus_store::dss::save_deployment_anchor(pool, url, anchor).await?;
    Ok(())
}

async fn setting_ids(pool: &PgPool, key: &str) -> Result<Vec<Uuid>, SyncError> {
    Ok(settings::get::<Vec<Uuid>>(pool, key).await?.map(|s| s.value).unwrap_or_default())
}

/// Fetches and stores the documents of the revisions this catalog lacks.
async fn fetch_documents(
    session: &mut Session,
    pool: &PgPool,
    sync_id: i64,
    phase: &str,
    ids: &[(Uuid, i32)],
    per_request: usize,
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let held = wsus_store::dss::held(pool, ids).await?;
    let missing: Vec<(Uuid, i32)> =
        ids.iter().filter(|k| !held.contains(k)).copied().collect::<HashSet<_>>().into_iter().collect();
    let total = missing.len() as i64;
    sync_history::progress(pool, sync_id, phase, 0, total).await?;
    let mut done = 0i64;
    let mut last_progress = std::time::Instant::now();
    let mut batches = missing.chunks(per_request).map(<[_]>::to_vec).collect::<Vec<_>>().into_iter();
    let mut running: JoinSet<Result<Fetched, SyncError>> = JoinSet::new();
    loop {
        while running.len() < PARALLEL_BATCHES {
            let Some(batch) = batches.next() else { break };
            let (upstream, cookie) = (session.upstream.clone(), session.cookie.clone());
            let span = tracing::info_span!("sync_batch", "otel.name" = "GetUpdateData", revisions = batch.len());
            running.spawn(async move { fetch_batch(&upstream, &cookie, &batch).await }.instrument(span));
        }
        let Some(first) = running.join_next().await else { break };
        // Every answer that has arrived is stored in one transaction: fewer, larger
        // commits, and the upstream keeps answering meanwhile.
        let mut arrived = vec![first];
        while let Some(more) = running.try_join_next() {
            arrived.push(more);
        }
        let mut revisions = Vec::new();
        let mut unreadable = Vec::new();
        for joined in arrived {
            match joined.map_err(|e| SyncError::Other(e.to_string()))? {
                Ok(f) => {
                    revisions.extend(f.revisions);
                    unreadable.extend(f.unreadable);
                }
                Err(e) if e.is_cookie_fault() => {
                    // Renew once, then let the remaining batches use the new cookie; the
                    // failed batch is simply not stored, and the anchor not advanced.
                    running.abort_all();
                    session.authorize().await?;
                    return Box::pin(fetch_documents(session, pool, sync_id, phase, ids, per_request, outcome)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let n = (revisions.len() + unreadable.len()) as i64;
        let stored = revisions::import_batch(pool, &revisions)
            .instrument(tracing::info_span!("sync_batch", "otel.name" = "store", revisions = revisions.len()))
            .await?;
        outcome.revisions_new += stored.new;
        outcome.revisions_updated += stored.updated;
        // A document this server cannot read does not hold the rest back: it is set aside,
        // reported, and asked for again by every later sync.
        for (u, r, why) in &unreadable {
            tracing::warn!(update_id = %u, revision = r, error = why, "document not readable; quarantined");
        }
        outcome.revisions_quarantined += unreadable.len() as u64;
        wsus_store::dss::quarantine(pool, &session.url, &unreadable).await?;
        done += n;
        // Progress is for people watching: once a second is enough.
        if last_progress.elapsed() >= std::time::Duration::from_secs(1) || done == total {
            sync_history::progress(pool, sync_id, phase, done, total).await?;
            last_progress = std::time::Instant::now();
        }
    }
    Ok(())
}

/// Asks again, one at a time, for the documents earlier syncs could not read, so a fixed
/// parser or a mended upstream brings them in. Nothing here fails the sync: a revision the
/// upstream no longer sends (left out, or faulted on) is forgotten, one still unreadable
/// stays set aside, and an upstream that does not answer is asked again next time.
async fn retry_quarantined(
    session: &mut Session,
    pool: &PgPool,
    ids: &[(Uuid, i32)],
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let url = session.url.clone();
    let held = wsus_store::dss::held(pool, ids).await?;
    for &id in ids.iter().filter(|id| !held.contains(id)) {
        let mut fetched = fetch_batch(&session.upstream, &session.cookie, &[id]).await;
        if fetched.as_ref().err().is_some_and(SyncError::is_cookie_fault) {
            session.authorize().await?;
            fetched = fetch_batch(&session.upstream, &session.cookie, &[id]).await;
        }
        match fetched {
            Ok(f) => {
                revisions::import_batch(pool, &f.revisions).await?;
                outcome.revisions_quarantined += f.unreadable.len() as u64;
                wsus_store::dss::quarantine(pool, &url, &f.unreadable).await?;
            }
            Err(SyncError::Fault { code, .. }) if code == "ServerBusy" => {
                tracing::info!("quarantined documents not asked for again: the upstream is busy");
                break;
            }
            Err(SyncError::Protocol { .. } | SyncError::Fault { .. }) => {
                tracing::info!(update_id = %id.0, revision = id.1, "the upstream no longer sends a quarantined revision; forgotten");
                wsus_store::dss::forget_quarantined(pool, &url, id).await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, "quarantined documents not asked for again: the upstream does not answer");
                break;
            }
        }
    }
    let recovered = wsus_store::dss::release_stored(pool, &url).await?;
    if recovered > 0 {
        tracing::info!(revisions = recovered, "quarantined documents read and stored");
    }
    Ok(())
}

/// What GetUpdateData brought for a batch: the revisions read, and those sent but
/// unreadable (with why).
#[derive(Default)]
struct Fetched {
    revisions: Vec<NewRevision>,
    unreadable: Vec<(Uuid, i32, String)>,
}

/// GetUpdateData for `ids`. An answer that leaves ids out (Windows caps an answer at
/// 2,000,000 bytes: MS-WSUSSS endnote <37>) is completed by asking for the rest, in
/// halves when nothing came; only an id a request for it alone leaves out fails the batch.
async fn fetch_batch(upstream: &Upstream, cookie: &Cookie, ids: &[(Uuid, i32)]) -> Result<Fetched, SyncError> {
    let mut fetched = Fetched::default();
    let mut todo: Vec<Vec<(Uuid, i32)>> = vec![ids.to_vec()];
    while let Some(batch) = todo.pop() {
        let (text, _) = upstream
            .call(SERVER_SYNC, &dss::action("GetUpdateData"), "GetUpdateData", &dss::get_update_data(cookie, &batch))
            .await?;
        let documents = tokio::task::spawn_blocking(move || crate::transfer::update_data_response(&text))
            .await
            .map_err(|e| SyncError::Other(e.to_string()))?
            .map_err(|e| SyncError::protocol("GetUpdateData", format!("{e:#}")))?;
        let mut got: HashSet<(Uuid, i32)> = HashSet::new();
        for d in documents {
            match d.revision {
                Ok(r) => {
                    got.insert((r.identity.update_id, r.identity.revision_number));
                    fetched.revisions.push(r);
                }
                Err(why) => match d.id {
                    Some(id) => {
                        got.insert(id);
                        fetched.unreadable.push((id.0, id.1, why));
                    }
                    None => {
                        return Err(SyncError::protocol("GetUpdateData", format!("a document without an Id: {why}")));
                    }
                },
            }
        }
        let missing: Vec<(Uuid, i32)> = batch.iter().filter(|k| !got.contains(k)).copied().collect();
        match missing.as_slice() {
            [] => {}
            [one] if batch.len() == 1 => {
                return Err(SyncError::protocol("GetUpdateData", format!("{}/{} was not sent", one.0, one.1)));
            }
            _ if missing.len() == batch.len() => {
                let (first, rest) = missing.split_at(missing.len() / 2);
                todo.push(rest.to_vec());
                todo.push(first.to_vec());
            }
            _ => todo.push(missing),
        }
    }
    Ok(fetched)
}

/// Queues the files the content mode wants, then works through the queue.
async fn content(
    ctx: &SyncContext,
    session: &mut Session,
    catalog_only_upstream: bool,
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let mode = settings::get::<String>(&ctx.pool, settings::CONTENT_MODE).await?.map(|s| s.value);
    match mode.as_deref() {
        Some("catalog-only") => return Ok(()),
        Some("immediate") => outcome.files_queued = wsus_store::dss::queue_wanted_files(&ctx.pool, true).await?,
        _ => outcome.files_queued = wsus_store::dss::queue_wanted_files(&ctx.pool, false).await?,
    }
    download_queue(ctx, session, catalog_only_upstream, outcome).await
}

/// Downloads every due file of the queue, verified before it becomes visible. A file the
/// upstream's content service lacks is asked for with DownloadFiles and retried later.
async fn download_queue(
    ctx: &SyncContext,
    session: &mut Session,
    catalog_only_upstream: bool,
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let upstream = session.upstream.clone();
    let store = Arc::new(wsus_content::ContentStore::new(&ctx.content_dir));
    let total = wsus_store::dss::queued_downloads(&ctx.pool).await?;
    let mut done = 0i64;
    sync_history::progress(&ctx.pool, outcome.sync_id, "content", 0, total).await?;
    let mut tried: HashSet<Vec<u8>> = HashSet::new();
    loop {
        let due: Vec<_> = wsus_store::dss::due_downloads(&ctx.pool, 200)
            .await?
            .into_iter()
            .filter(|d| !tried.contains(&d.sha1))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let mut running: JoinSet<(Vec<u8>, Result<u64, DownloadError>)> = JoinSet::new();
        let mut queue = due.into_iter();
        loop {
            while running.len() < PARALLEL_DOWNLOADS {
                let Some(d) = queue.next() else { break };
                tried.insert(d.sha1.clone());
                let (http, store) = (upstream.http.clone(), store.clone());
                let source = match (catalog_only_upstream, d.mu_url.clone()) {
                    (true, Some(mu)) => mu,
                    _ => match <[u8; 20]>::try_from(d.sha1.as_slice()) {
                        Ok(sha1) => {
                            format!("{}/Content/{}", upstream.base, wsus_content::relative_path(&sha1, &d.file_name))
                        }
                        Err(_) => continue,
                    },
                };
                running.spawn(async move {
                    let result = download(&http, &store, &source, &d).await;
                    (d.sha1, result)
                });
            }
            let Some(joined) = running.join_next().await else { break };
            let (sha1, result) = joined.map_err(|e| SyncError::Other(e.to_string()))?;
            match result {
                Ok(bytes) => {
                    wsus_store::dss::download_done(&ctx.pool, &sha1).await?;
                    outcome.files_downloaded += 1;
                    outcome.bytes_received += bytes;
                }
                Err(DownloadError { message, mismatch, not_found }) => {
                    tracing::warn!(sha1 = %hex::encode_upper(&sha1), error = message, "download failed");
                    if not_found && !catalog_only_upstream {
                        let digest = base64::engine::general_purpose::STANDARD.encode(&sha1);
                        match session
                            .call("DownloadFiles", |c| dss::download_files(c, std::slice::from_ref(&digest)))
                            .await
                        {
                            Ok(_) => tracing::info!(digest, "asked the upstream to fetch the file"),
                            Err(e) => tracing::warn!(digest, error = %e, "DownloadFiles failed"),
                        }
                    }
                    wsus_store::dss::download_failed(&ctx.pool, &sha1, &message, mismatch).await?;
                    outcome.files_failed += 1;
                }
            }
            done += 1;
            sync_history::progress(&ctx.pool, outcome.sync_id, "content", done, total).await?;
        }
    }
}

/// Why a download failed; `mismatch` when the bytes failed verification.
struct DownloadError {
    message: String,
    mismatch: bool,
    /// The source answered 404.
    not_found: bool,
}

fn transfer_error(message: String) -> DownloadError {
    DownloadError { message, mismatch: false, not_found: false }
}

/// One file into the store, resuming a partial download with a Range request; the bytes
/// become visible only after they match every digest.
async fn download(
    http: &reqwest::Client,
    store: &wsus_content::ContentStore,
    url: &str,
    d: &wsus_store::dss::Download,
) -> Result<u64, DownloadError> {
    use tokio::io::AsyncWriteExt as _;
    let sha1: [u8; 20] = d.sha1.as_slice().try_into().map_err(|_| transfer_error("bad SHA-1".to_owned()))?;
    let partial = store.partial_path(&sha1);
    let io = |e: std::io::Error| transfer_error(format!("{}: {e}", partial.display()));
    tokio::fs::create_dir_all(partial.parent().expect("a folder")).await.map_err(io)?;
    let have = tokio::fs::metadata(&partial).await.map(|m| m.len()).unwrap_or(0);
    let mut request = http.get(url);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = request.send().await.map_err(|e| transfer_error(format!("{url}: {e}")))?;
    let status = response.status();
    let mut received = 0u64;
    let complete_already =
        status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && u64::try_from(d.size).is_ok_and(|s| s == have);
    if !complete_already {
        let append = match status {
            reqwest::StatusCode::PARTIAL_CONTENT if have > 0 => true,
            s if s.is_success() => false,
            s => {
                if s == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
                    let _ = tokio::fs::remove_file(&partial).await;
                }
                let not_found = s == reqwest::StatusCode::NOT_FOUND;
                return Err(DownloadError { message: format!("{url}: HTTP {s}"), mismatch: false, not_found });
            }
        };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&partial)
            .await
            .map_err(io)?;
        // A dropped connection keeps what arrived: the next attempt asks for the rest.
        while let Some(chunk) = response.chunk().await.map_err(|e| transfer_error(format!("{url}: {e}")))? {
            file.write_all(&chunk).await.map_err(io)?;
            received += chunk.len() as u64;
        }
        // The last write's error (a full volume, say) surfaces on flush; sync_all drops it.
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
    }
    let sha256: Option<[u8; 32]> = d.sha256.as_deref().and_then(|s| s.try_into().ok());
    let store = store.clone();
    let (name, size) = (d.file_name.clone(), u64::try_from(d.size).ok().filter(|s| *s > 0));
    tokio::task::spawn_blocking(move || {
        let expected = wsus_content::Expected { sha1: &sha1, sha256: sha256.as_ref(), size, file_name: &name };
        store.adopt(expected, &partial)
    })
    .await
    .map_err(|e| transfer_error(e.to_string()))?
    .map_err(|e| DownloadError {
        not_found: false,
        mismatch: matches!(
            e,
            wsus_content::ContentError::DigestMismatch { .. } | wsus_content::ContentError::SizeMismatch { .. }
        ),
        message: e.to_string(),
    })?;
    Ok(received)
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
