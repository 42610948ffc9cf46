//! SOAP over HTTP: path dispatch (any letter case), body limits, SOAPAction, faults.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use wsus_service::RouteLabel;
use wsus_soap::envelope::EnvelopeError;
use wsus_soap::wusp::GetConfigRequest;
use wsus_soap::{EnvelopeStyle, ErrorCode, Fault, SoapVersion};

use crate::Gateway;

/// The web services this gateway answers, by lower-cased path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Client,
}

fn service_for(path: &str) -> Option<Service> {
    match path.to_ascii_lowercase().as_str() {
        "/clientwebservice/client.asmx" => Some(Service::Client),
        _ => None,
    }
}

pub async fn dispatch(State(gw): State<Gateway>, request: Request) -> Response {
    let Some(service) = service_for(request.uri().path()) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain")], "not found\n").into_response();
    };
    if request.method() != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")], "").into_response();
    }
    let span = tracing::info_span!("soap", service = ?service, operation = tracing::field::Empty);
    let mut response = handle(gw, service, request).instrument(span).await;
    response.extensions_mut().insert(RouteLabel("ClientWebService"));
    response
}

async fn handle(gw: Gateway, service: Service, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let action = soap_action(&parts.headers);
    let style = match service {
        Service::Client => EnvelopeStyle::Wcf,
    };
    let fault = |code: ErrorCode, message: String, version: SoapVersion| {
        fault_response(Fault::new(code, Some(message), action.as_deref()), version, style)
    };
    let bytes = match to_bytes(Body::new(body), gw.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return fault(
                ErrorCode::InvalidParameters,
                format!("body larger than {} bytes", gw.limits.max_body_bytes),
                SoapVersion::Soap11,
            );
        }
    };
    let request = match wsus_soap::parse_request(&bytes, &gw.limits) {
        Ok(r) => r,
        Err(e) => return fault(ErrorCode::InvalidParameters, envelope_message(&e), SoapVersion::Soap11),
    };
    let op = request.operation.name.as_str();
    tracing::Span::current().record("operation", op);
    if let Some(a) = action.as_deref().filter(|a| !action_names(a, op)) {
        return fault(ErrorCode::InvalidParameters, format!("SOAPAction {a} does not match {op}"), request.version);
    }
    let result = match (service, op) {
        (Service::Client, "GetConfig") => get_config(&gw, &request.operation),
        (Service::Client, other) if CLIENT_OPERATIONS.contains(&other) => {
            Err((ErrorCode::InternalServerError, format!("{other} is not available on this server yet")))
        }
        (_, other) => Err((ErrorCode::InvalidParameters, format!("unknown operation {other}"))),
    };
    match result {
        Ok(body) => soap_ok(style.wrap(&body)),
        Err((code, message)) => fault(code, message, request.version),
    }
}

/// The operations of the Client web service's WSDL.
const CLIENT_OPERATIONS: &[&str] = &[
    "GetConfig",
    "GetCookie",
    "RegisterComputer",
    "StartCategoryScan",
    "SyncUpdates",
    "SyncPrinterCatalog",
    "RefreshCache",
    "GetExtendedUpdateInfo",
    "GetExtendedUpdateInfo2",
    "GetFileLocations",
];

type OpResult = Result<String, (ErrorCode, String)>;

fn get_config(gw: &Gateway, op: &wsus_soap::Element) -> OpResult {
    let req = GetConfigRequest::decode(op).map_err(|e| (ErrorCode::InvalidParameters, e.parameter))?;
    tracing::debug!(client_protocol = %req.protocol_version, "GetConfig");
    // The answer is the same for every client protocol version, as on the real server.
    let config =
        gw.client_config.get().ok_or_else(|| (ErrorCode::ServerBusy, "configuration not loaded yet".to_owned()))?;
    Ok(config.encode_response())
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

fn soap_ok(body: String) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("private")),
        ],
        body,
    )
        .into_response()
}

fn fault_response(fault: Fault, version: SoapVersion, style: EnvelopeStyle) -> Response {
    tracing::info!(error_code = fault.code.as_str(), message = fault.message.as_deref().unwrap_or(""), "SOAP fault");
    let content_type = match version {
        SoapVersion::Soap11 => "text/xml; charset=utf-8",
        SoapVersion::Soap12 => "application/soap+xml; charset=utf-8",
    };
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        fault.to_xml(version, style),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_in_any_case() {
        assert_eq!(service_for("/ClientWebService/client.asmx"), Some(Service::Client));
        assert_eq!(service_for("/CLIENTWEBSERVICE/CLIENT.ASMX"), Some(Service::Client));
        assert_eq!(service_for("/ClientWebService/other.asmx"), None);
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
