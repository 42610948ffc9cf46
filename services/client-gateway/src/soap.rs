//! SOAP over HTTP: path dispatch (any letter case), body limits, SOAPAction, faults.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use wsus_service::RouteLabel;
use wsus_soap::envelope::EnvelopeError;
use wsus_soap::{Element, EnvelopeStyle, ErrorCode, Fault, SoapVersion};
use wsus_store::{ErrorKind, HasKind};

use crate::Gateway;
use crate::admission::Shed;

/// How long a request body may take to arrive once admitted (a RollupComputerStatus at
/// the announced batch is tens of MB).
const BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The web services this gateway answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Client,
    SimpleAuth,
    Reporting,
    /// MS-WSUSSS, for downstream servers.
    ServerSync,
    DssAuth,
}

impl Service {
    fn label(self) -> &'static str {
        match self {
            Service::Client => "ClientWebService",
            Service::SimpleAuth => "SimpleAuthWebService",
            Service::Reporting => "ReportingWebService",
            Service::ServerSync => "ServerSyncWebService",
            Service::DssAuth => "DssAuthWebService",
        }
    }

    /// The fault actor the server-to-server services name, as WSUS does.
    fn actor(self, scheme: &str, host: &str) -> Option<String> {
        let path = match self {
            Service::ServerSync => "ServerSyncWebService/ServerSyncWebService.asmx",
            Service::DssAuth => "DssAuthWebService/DssAuthWebService.asmx",
            _ => return None,
        };
        Some(format!("{scheme}://{host}/{path}"))
    }

    /// The namespace an operation of this service is qualified by (MS-WUSP 2.2.1,
    /// MS-WSUSSS 2.2): the service's, but Ping's (IMonitorable), which every service has.
    fn namespace(self, op: &str) -> &'static str {
        use wsus_soap::{wsusss, wusp};
        match self {
            _ if op == "Ping" => wsusss::MONITORABLE_NS,
            Service::Client => wusp::CLIENT_NS,
            Service::SimpleAuth => wusp::SIMPLE_AUTH_NS,
            Service::Reporting => wusp::REPORTING_NS,
            Service::ServerSync => wsusss::SERVER_SYNC_NS,
            Service::DssAuth => wsusss::DSS_AUTH_NS,
        }
    }

    /// Client answers like WCF, the others like ASMX, as on the real server.
    fn style(self) -> EnvelopeStyle {
        match self {
            Service::Client => EnvelopeStyle::Wcf,
            Service::SimpleAuth | Service::Reporting | Service::ServerSync | Service::DssAuth => EnvelopeStyle::Asmx,
        }
    }
}

fn service_for(path: &str) -> Option<Service> {
    match path.to_ascii_lowercase().as_str() {
        "/clientwebservice/client.asmx" => Some(Service::Client),
        "/simpleauthwebservice/simpleauth.asmx" => Some(Service::SimpleAuth),
        // The native client uses the first; the WSDL names the second.
        "/reportingwebservice/reportingwebservice.asmx" | "/reportingwebservice/webservice.asmx" => {
            Some(Service::Reporting)
        }
        "/serversyncwebservice/serversyncwebservice.asmx" => Some(Service::ServerSync),
        // WSUS downstream servers build this URL with a doubled slash.
        "/dssauthwebservice/dssauthwebservice.asmx" | "//dssauthwebservice/dssauthwebservice.asmx" => {
            Some(Service::DssAuth)
        }
        _ => None,
    }
}

/// What a handler knows of the HTTP request.
pub struct Context {
    /// `host[:port]` as the client sent it.
    pub host: String,
    pub scheme: &'static str,
    /// Where the client calls from (behind trusted proxies, the address they name).
    pub client_address: Option<std::net::IpAddr>,
}

/// A failed operation: the fault's code and message.
pub type OpError = (ErrorCode, String);
pub type OpResult = Result<String, OpError>;

pub fn invalid(e: wsus_soap::DecodeError) -> OpError {
    (ErrorCode::InvalidParameters, e.parameter)
}

/// The SOAP ErrorCode of an error kind. A client retries later after ServerBusy and
/// InternalServerError alike (MS-WUSP 3.1.5); a downstream server retries ServerBusy and
/// stops on InternalServerError (MS-WSUSSS 3.1.5), so only a fault of this server is
/// internal, and anything that passes is busy.
pub fn fault_code(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::NotFound | ErrorKind::Conflict | ErrorKind::Invalid => ErrorCode::InvalidParameters,
        ErrorKind::Busy | ErrorKind::Unavailable => ErrorCode::ServerBusy,
        ErrorKind::Internal => ErrorCode::InternalServerError,
    }
}

/// The fault for an error of the store while doing `what`. An internal error's detail is
/// logged here and not sent: the caller learns what failed, not how.
pub fn fault(what: &str, e: &(impl HasKind + std::fmt::Display)) -> OpError {
    let kind = e.kind();
    if kind == ErrorKind::Internal {
        tracing::error!(error = %e, what, "operation failed");
        return (fault_code(kind), what.to_owned());
    }
    (fault_code(kind), format!("{what}: {e}"))
}

/// The fault for what another service answered while doing `what`.
pub fn rpc_fault(what: &str, status: &tonic::Status) -> OpError {
    (fault_code(wsus_service::edge::kind_of_status(status)), format!("{what}: {}", status.message()))
}

pub async fn dispatch(State(gw): State<Gateway>, request: Request) -> Response {
    let Some(service) = service_for(request.uri().path()) else {
        if request.uri().path().get(..9).is_some_and(|p| p.eq_ignore_ascii_case("/content/")) {
            let mut response =
                crate::content::serve(&gw, request.method(), request.uri().path(), request.headers()).await;
            response.extensions_mut().insert(RouteLabel("Content"));
            return response;
        }
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain")], "not found\n").into_response();
    };
    if request.method() == Method::GET && crate::wsdl::is_wsdl_query(request.uri().query()) {
        let host = request_host(request.headers(), request.uri()).unwrap_or_else(|| "localhost".to_owned());
        let scheme = request.extensions().get::<wsus_service::tls::Scheme>().map_or("http", |s| s.0);
        let mut response = crate::wsdl::serve(service, scheme, &host);
        response.extensions_mut().insert(RouteLabel(service.label()));
        return response;
    }
    if request.method() != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")], "").into_response();
    }
    // Admitted before the body is read: a refused request costs no more than its headers.
    let action = soap_action(request.headers());
    let admission = match service {
        Service::ServerSync | Service::DssAuth => &gw.server_admission,
        Service::Reporting if action.as_deref().is_some_and(is_rollup) => &gw.server_admission,
        Service::Reporting => &gw.report_admission,
        Service::Client | Service::SimpleAuth => &gw.admission,
    };
    let mut response = match admission.clone().admit().await {
        Ok(slot) => {
            let span = tracing::info_span!("soap", service = service.label(), operation = tracing::field::Empty);
            let response = handle(gw, service, request).instrument(span).await;
            drop(slot);
            response
        }
        Err(why) => shed(&gw, service, &request, why),
    };
    response.extensions_mut().insert(RouteLabel(service.label()));
    response
}

/// Whether a Reporting service SOAPAction is a downstream server's rollup (MS-WSUSSS
/// 3.1.4.13-17) rather than a client's report.
fn is_rollup(action: &str) -> bool {
    const ROLLUP: [&str; 5] = [
        "GetRollupConfiguration",
        "RollupDownstreamServers",
        "RollupComputers",
        "GetOutOfSyncComputers",
        "RollupComputerStatus",
    ];
    ROLLUP.iter().any(|op| !action.trim().trim_matches('"').is_empty() && action_names(action, op))
}

/// The ServerBusy fault for a request refused by admission control, written from its
/// headers alone. A RollupComputerStatus is answered `false` instead, the protocol's own
/// "busy, send it again later" (MS-WSUSSS 3.1.4.17): on a fault a downstream stops.
fn shed(gw: &Gateway, service: Service, request: &Request, why: Shed) -> Response {
    let headers = request.headers();
    let action = soap_action(headers);
    if service == Service::Reporting
        && action.as_deref().is_some_and(|a| is_rollup(a) && action_names(a, "RollupComputerStatus"))
    {
        let body = wsus_soap::rollup::encode_computer_status_response(false);
        let mut response = soap_ok(service.style().wrap_for(SoapVersion::Soap11, &body), service, SoapVersion::Soap11);
        if request.version() <= Version::HTTP_11 {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return response;
    }
    let host = request_host(headers, request.uri()).unwrap_or_else(|| gw.config.common.http_addr.to_string());
    let scheme = request.extensions().get::<wsus_service::tls::Scheme>().map_or("http", |s| s.0);
    // The body says which SOAP version; its Content-Type says so too.
    let soap12 = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/soap+xml"));
    let version = if soap12 { SoapVersion::Soap12 } else { SoapVersion::Soap11 };
    let message = match why {
        Shed::QueueFull => "server busy: too many requests",
        Shed::WaitedTooLong => "server busy: no capacity in time",
    };
    let mut fault = Fault::new(ErrorCode::ServerBusy, Some(message.to_owned()), action.as_deref());
    fault.actor = service.actor(scheme, &host);
    let mut response = fault_response(fault, version, service.style(), gw.config.retry_after_seconds);
    // The body was left unread, so the connection cannot carry another request; saying
    // so keeps the client from sending its next one down a connection being closed.
    if request.version() <= Version::HTTP_11 {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn handle(gw: Gateway, service: Service, request: Request) -> Response {
    let xpress = accepts_xpress(request.headers());
    let blocks = gw.packed_blocks.clone();
    let response = answer(gw, service, request).await;
    if xpress { compress(blocks, response).await } else { response }
}

/// Whether the client sent `Accept-Encoding: xpress` (as Windows clients do).
fn accepts_xpress(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("xpress")))
}

/// Xpress-encodes a SOAP response when that makes it smaller; blocks compressed for an
/// earlier answer are taken as they are (crate::packed_blocks).
async fn compress(blocks: std::sync::Arc<crate::packed_blocks::PackedBlocks>, response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    parts.headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // Compression is CPU work; large bodies leave the async threads.
    let packed = if bytes.len() > 64 * 1024 {
        let b = bytes.clone();
        tokio::task::spawn_blocking(move || wsus_xpress::compress_with(&b, |block| blocks.pack(block)))
            .await
            .unwrap_or_default()
    } else {
        wsus_xpress::compress_with(&bytes, |block| blocks.pack(block))
    };
    if packed.is_empty() || packed.len() >= bytes.len() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("xpress"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(packed))
}

async fn answer(gw: Gateway, service: Service, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let action = soap_action(&parts.headers);
    let style = service.style();
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<wsus_service::tls::Peer>>().map(|c| c.0.0.ip());
    let ctx = Context {
        host: request_host(&parts.headers, &parts.uri).unwrap_or_else(|| gw.config.common.http_addr.to_string()),
        scheme: parts.extensions.get::<wsus_service::tls::Scheme>().map_or("http", |s| s.0),
        client_address: crate::client_address::client_address(peer, &parts.headers, &gw.config.trusted_proxies),
    };
    let actor = service.actor(ctx.scheme, &ctx.host);
    let fault = |code: ErrorCode, message: String, version: SoapVersion| {
        tracing::info!(error_code = code.as_str(), message, "SOAP fault");
        let mut fault = Fault::new(code, Some(message), action.as_deref());
        fault.actor = actor.clone();
        fault_response(fault, version, style, gw.config.retry_after_seconds)
    };
    // RollupComputerStatus grows with a batch of computers times their statuses: it is
    // read as it streams, within limits sized from the batch this server announces.
    let computer_status = service == Service::Reporting
        && action
            .as_deref()
            .is_some_and(|a| !a.trim().trim_matches('"').is_empty() && action_names(a, "RollupComputerStatus"));
    let limit = if computer_status {
        wsus_soap::rollup::computer_status_limits().max_body_bytes
    } else {
        gw.limits.max_body_bytes
    };
    // A body that trickles in holds its admission slot: it has so long to arrive.
    let bytes = match tokio::time::timeout(BODY_WAIT, to_bytes(Body::new(body), limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return fault(ErrorCode::InvalidParameters, format!("body larger than {limit} bytes"), SoapVersion::Soap11);
        }
        Err(_) => {
            let wait = BODY_WAIT.as_secs();
            return fault(
                ErrorCode::InvalidParameters,
                format!("body not received within {wait} s"),
                SoapVersion::Soap11,
            );
        }
    };
    if computer_status {
        return computer_status_answer(&gw, &bytes, &fault).await;
    }
    if service == Service::Client
        && action.as_deref().is_some_and(|a| !a.trim().trim_matches('"').is_empty() && action_names(a, "SyncUpdates"))
        && let Some(response) = seen_sync_updates(&gw, &ctx, &bytes, &fault).await
    {
        return response;
    }
    let request = match wsus_soap::parse_request(&bytes, &gw.limits) {
        Ok(r) => r,
        Err(e) => return fault(ErrorCode::InvalidParameters, envelope_message(&e), SoapVersion::Soap11),
    };
    let op = request.operation.name.as_str();
    tracing::Span::current().record("operation", op);
    if let Some(a) = action.as_deref().filter(|a| !action_names(a, op)) {
        return fault(ErrorCode::InvalidParameters, format!("SOAPAction {a} does not match {op}"), request.version);
    }
    // A RollupComputerStatus that named no SOAPAction (small enough for the usual limits).
    if service == Service::Reporting && op == "RollupComputerStatus" {
        return computer_status_answer(&gw, &bytes, &fault).await;
    }
    let element = &request.operation;
    // An operation element of another namespace is not this service's operation, whatever
    // its local name: refused, as WCF and ASMX refuse it, rather than answered.
    let expected = service.namespace(op);
    if element.ns.as_deref() != Some(expected) {
        let got = element.ns.as_deref().unwrap_or("no namespace");
        return fault(ErrorCode::InvalidParameters, format!("{op} in {got}, not {expected}"), request.version);
    }
    // One span per operation; a client's calls carrying one cookie join the trace its
    // GetCookie began, so a scan is one trace.
    let span = tracing::info_span!("soap_operation", "otel.name" = op, service = service.label());
    if let Some((trace_id, span_id)) = scan_trace(&gw, element) {
        wsus_telemetry::adopt_ids(&span, trace_id, span_id);
    }
    let started = std::time::Instant::now();
    let (result, known) = match perform(&gw, &ctx, service, op, element).instrument(span).await {
        Some(r) => (r, true),
        None => (Err((ErrorCode::InvalidParameters, format!("unknown operation {op}"))), false),
    };
    // Only known operations name a series: the name comes from the request.
    let label = if known { op } else { "unknown" };
    respond(&gw, service, label, request.version, started, result, &fault)
}

/// The response to an operation's result, its duration and outcome counted.
fn respond(
    gw: &Gateway,
    service: Service,
    op: &str,
    version: SoapVersion,
    started: std::time::Instant,
    result: OpResult,
    fault: &impl Fn(ErrorCode, String, SoapVersion) -> Response,
) -> Response {
    let outcome = match &result {
        Ok(_) => "ok",
        Err((code, _)) => code.as_str(),
    };
    gw.metrics.observe_soap(service.label(), op, outcome, started.elapsed());
    match result {
        Ok(body) => soap_ok(service.style().wrap_for(version, &body), service, version),
        Err((code, message)) => fault(code, message, version),
    }
}

/// A SyncUpdates whose bytes but for the cookie were seen before (crate::seen_requests)
/// is answered without parsing it again, its cookie opened once. The first time, it is
/// parsed and kept. None when the request is not of that kind or does not decode: it is
/// then handled as any other, which gives the fault.
async fn seen_sync_updates(
    gw: &Gateway,
    ctx: &Context,
    bytes: &[u8],
    fault: &impl Fn(ErrorCode, String, SoapVersion) -> Response,
) -> Option<Response> {
    const OP: &str = "SyncUpdates";
    let span = wsus_soap::cookie_span::find_cookie(bytes)?;
    let seen = match gw.seen_requests.get(&span) {
        Some(seen) => seen,
        None => {
            let request = wsus_soap::parse_request(bytes, &gw.limits).ok()?;
            let op = &request.operation;
            let ours = op.name == OP && op.ns.as_deref() == Some(Service::Client.namespace(OP));
            // The cookie found in the bytes must be the one the parser reads.
            if !ours || wsus_soap::wusp::request_cookie(op).ok()? != span.cookie {
                return None;
            }
            let decoded = wsus_soap::wusp::SyncUpdatesRequest::decode(op).ok()?;
            gw.seen_requests.insert(&span, request.version, decoded)
        }
    };
    tracing::Span::current().record("operation", OP);
    let opened = crate::client::open_cookie(gw, &span.cookie);
    let op_span = tracing::info_span!("soap_operation", "otel.name" = OP, service = Service::Client.label());
    if let Ok((_, cookie)) = &opened
        && cookie.trace.0 != 0
    {
        wsus_telemetry::adopt_ids(&op_span, cookie.trace.0, cookie.trace.1);
    }
    let started = std::time::Instant::now();
    let result = match opened {
        Ok(opened) => crate::client::sync_updates_seen(gw, ctx, opened, &seen).instrument(op_span).await,
        Err(e) => Err(e),
    };
    Some(respond(gw, Service::Client, OP, seen.version, started, result, fault))
}

/// RollupComputerStatus, read as it streams (no element tree), then answered as the
/// other operations are.
async fn computer_status_answer(
    gw: &Gateway,
    bytes: &[u8],
    fault: &impl Fn(ErrorCode, String, SoapVersion) -> Response,
) -> Response {
    const OP: &str = "RollupComputerStatus";
    tracing::Span::current().record("operation", OP);
    let limits = wsus_soap::rollup::computer_status_limits();
    let batch = wsus_soap::rollup::ANNOUNCED_COMPUTER_STATUS_BATCH as usize;
    let request = match wsus_soap::rollup_status::read_computer_status_request(bytes, &limits, batch) {
        Ok(r) => r,
        Err(e) => return fault(ErrorCode::InvalidParameters, e.parameter, SoapVersion::Soap11),
    };
    let expected = Service::Reporting.namespace(OP);
    if request.namespace.as_deref() != Some(expected) {
        let got = request.namespace.as_deref().unwrap_or("no namespace");
        return fault(ErrorCode::InvalidParameters, format!("{OP} in {got}, not {expected}"), request.version);
    }
    let version = request.version;
    let started = std::time::Instant::now();
    let span = tracing::info_span!("soap_operation", "otel.name" = OP, service = Service::Reporting.label());
    let result = crate::uss::rollup::rollup_computer_status(gw, request).instrument(span).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err((code, _)) => code.as_str(),
    };
    gw.metrics.observe_soap(Service::Reporting.label(), OP, outcome, started.elapsed());
    match result {
        Ok(body) => soap_ok(Service::Reporting.style().wrap_for(version, &body), Service::Reporting, version),
        Err((code, message)) => fault(code, message, version),
    }
}

/// `host[:port]` the client addressed: the Host header (HTTP/1.1), or the authority of
/// the request URI (HTTP/2 sends no Host header).
fn request_host(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
}

/// The scan trace a client's cookie carries, if the request has a client cookie.
fn scan_trace(gw: &Gateway, op: &Element) -> Option<(u128, u64)> {
    let cookie = wsus_soap::wusp::request_cookie(op).ok()?;
    let (_, cookie) = crate::client::open_cookie(gw, &cookie).ok()?;
    (cookie.trace.0 != 0).then_some(cookie.trace)
}

/// Runs a known operation; None for an operation this service does not have.
async fn perform(gw: &Gateway, ctx: &Context, service: Service, op: &str, element: &Element) -> Option<OpResult> {
    Some(match (service, op) {
        (Service::Client, "GetConfig") => crate::client::get_config(gw, element),
        (Service::Client, "GetCookie") => crate::client::get_cookie(gw, element),
        (Service::Client, "RegisterComputer") => crate::client::register_computer(gw, ctx, element).await,
        (Service::Client, "SyncUpdates") => crate::client::sync_updates(gw, ctx, element).await,
        (Service::Client, "GetExtendedUpdateInfo") => crate::client::get_extended_update_info(gw, ctx, element).await,
        (Service::Client, "StartCategoryScan") => crate::client::start_category_scan(gw, element),
        (Service::Client, "GetExtendedUpdateInfo2") => crate::client::get_extended_update_info2(gw, ctx, element).await,
        (Service::Client, "SyncPrinterCatalog") => crate::client::sync_printer_catalog(gw, element).await,
        (Service::Client, "RefreshCache") => crate::client::refresh_cache(gw, element),
        (Service::Client, "GetFileLocations") => crate::client::get_file_locations(gw, ctx, element).await,
        (Service::SimpleAuth, "GetAuthorizationCookie") => crate::auth::get_authorization_cookie(gw, element),
        (Service::Reporting, "ReportEventBatch" | "ReportEventBatch2") => {
            crate::reports::report_event_batch(gw, element).await
        }
        (Service::Reporting, "GetRequiredInventoryType") => crate::reports::get_required_inventory_type(gw, element),
        (Service::Reporting, "ReportInventory") => crate::reports::report_inventory(gw, element),
        (Service::Reporting, "GetRollupConfiguration") => {
            crate::uss::rollup::get_rollup_configuration(gw, element).await
        }
        (Service::Reporting, "RollupDownstreamServers") => {
            crate::uss::rollup::rollup_downstream_servers(gw, element).await
        }
        (Service::Reporting, "RollupComputers") => crate::uss::rollup::rollup_computers(gw, element).await,
        (Service::Reporting, "GetOutOfSyncComputers") => {
            crate::uss::rollup::get_out_of_sync_computers(gw, element).await
        }
        (Service::DssAuth, "GetAuthorizationCookie") => crate::uss::sync::get_authorization_cookie(gw, element).await,
        (Service::ServerSync, "GetAuthConfig") => crate::uss::sync::get_auth_config(gw),
        (Service::ServerSync, "GetCookie") => crate::uss::sync::get_cookie(gw, element),
        (Service::ServerSync, "GetConfigData") => crate::uss::sync::get_config_data(gw, element).await,
        (Service::ServerSync, "GetRevisionIdList") => crate::uss::sync::get_revision_id_list(gw, element).await,
        (Service::ServerSync, "GetUpdateDecryptionData") => {
            crate::uss::sync::get_update_decryption_data(gw, element).await
        }
        (Service::ServerSync, "GetDriverIdList") => crate::uss::sync::get_driver_id_list(gw, element).await,
        (Service::ServerSync, "GetDriverSetData") => crate::uss::sync::get_driver_set_data(gw, element).await,
        (Service::ServerSync, "Ping") => crate::uss::sync::ping(gw).await,
        (Service::ServerSync, "DownloadFiles") => crate::uss::sync::download_files(gw, element).await,
        (Service::ServerSync, "GetDeployments") => crate::uss::sync::get_deployments(gw, element).await,
        (Service::ServerSync, "GetUpdateData") => crate::uss::sync::get_update_data(gw, ctx, element).await,
        _ => return None,
    })
}

fn soap_action(headers: &HeaderMap) -> Option<String> {
    headers.get("soapaction").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Whether a SOAPAction (quoted or not) names operation `op`.
fn action_names(action: &str, op: &str) -> bool {
    let bare = action.trim().trim_matches('"');
    bare.is_empty() || bare.rsplit('/').next() == Some(op)
}

fn envelope_message(e: &EnvelopeError) -> String {
    format!("request: {e}")
}

fn soap_ok(body: String, service: Service, version: SoapVersion) -> Response {
    // Reporting adds max-age=0, as the real server does.
    let cache = if service == Service::Reporting { "private, max-age=0" } else { "private" };
    let content_type = match version {
        SoapVersion::Soap11 => "text/xml; charset=utf-8",
        SoapVersion::Soap12 => "application/soap+xml; charset=utf-8",
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

/// A fault as WSUS sends it (HTTP 500); a ServerBusy one also says when to come back
/// (`Retry-After`, seconds), for clients and proxies that honour it.
fn fault_response(fault: Fault, version: SoapVersion, style: EnvelopeStyle, retry_after_seconds: usize) -> Response {
    let content_type = match version {
        SoapVersion::Soap11 => "text/xml; charset=utf-8",
        SoapVersion::Soap12 => "application/soap+xml; charset=utf-8",
    };
    let mut response = (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        fault.to_xml(version, style),
    )
        .into_response();
    if fault.code == ErrorCode::ServerBusy {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_in_any_case() {
        assert_eq!(service_for("/ClientWebService/client.asmx"), Some(Service::Client));
        assert_eq!(service_for("/CLIENTWEBSERVICE/CLIENT.ASMX"), Some(Service::Client));
        assert_eq!(service_for("/SimpleAuthWebService/SimpleAuth.asmx"), Some(Service::SimpleAuth));
        assert_eq!(service_for("/ReportingWebService/WebService.asmx"), Some(Service::Reporting));
        assert_eq!(service_for("/ReportingWebService/ReportingWebService.asmx"), Some(Service::Reporting));
        assert_eq!(service_for("/ClientWebService/other.asmx"), None);
        assert_eq!(service_for("/ServerSyncWebService/ServerSyncWebService.asmx"), Some(Service::ServerSync));
        assert_eq!(service_for("//DssAuthWebService/DssAuthWebService.asmx"), Some(Service::DssAuth));
        assert_eq!(service_for("/DssAuthWebService/DssAuthWebService.asmx"), Some(Service::DssAuth));
    }

    #[test]
    fn soap_actions_quoted_or_not() {
        let a = "http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService/GetConfig";
        assert!(action_names(a, "GetConfig"));
        assert!(action_names(&format!("\"{a}\""), "GetConfig"));
        assert!(action_names("\"\"", "GetConfig"));
        assert!(!action_names(a, "SyncUpdates"));
    }
}
