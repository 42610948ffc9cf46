//! SOAP faults exactly as a real WSUS sends them (MS-WUSP 2.2.2.4, MS-WSUSSS 2.2.9):
//! HTTP 500, `faultcode`, `faultstring` "Fault occurred", and an unqualified `detail`
//! holding ErrorCode, Message, ID (a GUID per fault) and Method (the quoted SOAPAction).

use std::fmt::Write as _;

use uuid::Uuid;

use crate::envelope::{EnvelopeStyle, SoapVersion};
use crate::write::element;
use crate::{SOAP11_NS, SOAP12_NS};

/// The ErrorCode values of both protocols, spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidCookie,
    ConfigChanged,
    RegistrationRequired,
    ServerChanged,
    InternalServerError,
    CookieExpired,
    InvalidParameters,
    InvalidAuthorizationCookie,
    RegistrationNotRequired,
    ServerBusy,
    FileLocationChanged,
    IncompatibleProtocolVersion,
    FileDigestsMissing,
    TooManyIds,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidCookie => "InvalidCookie",
            ErrorCode::ConfigChanged => "ConfigChanged",
            ErrorCode::RegistrationRequired => "RegistrationRequired",
            ErrorCode::ServerChanged => "ServerChanged",
            ErrorCode::InternalServerError => "InternalServerError",
            ErrorCode::CookieExpired => "CookieExpired",
            ErrorCode::InvalidParameters => "InvalidParameters",
            ErrorCode::InvalidAuthorizationCookie => "InvalidAuthorizationCookie",
            ErrorCode::RegistrationNotRequired => "RegistrationNotRequired",
            ErrorCode::ServerBusy => "ServerBusy",
            ErrorCode::FileLocationChanged => "FileLocationChanged",
            ErrorCode::IncompatibleProtocolVersion => "IncompatibleProtocolVersion",
            ErrorCode::FileDigestsMissing => "FileDigestsMissing",
            ErrorCode::TooManyIds => "TooManyIds",
        }
    }

    /// Whether the server, not the request, is at fault (`soap:Server`, as WSUS answers
    /// InternalServerError).
    pub fn is_server_side(self) -> bool {
        matches!(self, ErrorCode::InternalServerError | ErrorCode::ServerBusy)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: ErrorCode,
    /// Free text; for InvalidParameters the parameter path, as WSUS does.
    pub message: Option<String>,
    pub id: Uuid,
    /// The SOAPAction of the request, quoted as WSUS writes it.
    pub method: Option<String>,
    /// The service URL, which the server-sync service of WSUS names (faultactor).
    pub actor: Option<String>,
}

impl Fault {
    pub fn new(code: ErrorCode, message: impl Into<Option<String>>, method: Option<&str>) -> Self {
        Self { code, message: message.into(), id: Uuid::new_v4(), method: method.map(quote_action), actor: None }
    }

    /// The response body for this fault.
    pub fn to_xml(&self, version: SoapVersion, style: EnvelopeStyle) -> String {
        let mut detail = String::new();
        element(&mut detail, "ErrorCode", self.code.as_str());
        if let Some(m) = &self.message {
            // Written out even when empty, as WSUS does.
            let _ = write!(detail, "<Message>{}</Message>", crate::write::escape(m));
        }
        element(&mut detail, "ID", &self.id.to_string());
        if let Some(m) = &self.method {
            element(&mut detail, "Method", m);
        }
        let p = style.prefix();
        let (decl, namespaces) = match style {
            EnvelopeStyle::Asmx => (
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
                " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"",
            ),
            EnvelopeStyle::Wcf => ("", ""),
        };
        let actor = self
            .actor
            .as_deref()
            .map(|a| format!("<faultactor>{}</faultactor>", crate::write::escape(a)))
            .unwrap_or_default();
        let mut out = String::with_capacity(detail.len() + 400);
        match version {
            SoapVersion::Soap11 => {
                let side = if self.code.is_server_side() { "Server" } else { "Client" };
                let _ = write!(
                    out,
                    "{decl}<{p}:Envelope xmlns:{p}=\"{SOAP11_NS}\"{namespaces}><{p}:Body><{p}:Fault><faultcode>{p}:{side}</faultcode>\
                     <faultstring>Fault occurred</faultstring>{actor}<detail>{detail}</detail></{p}:Fault></{p}:Body></{p}:Envelope>"
                );
            }
            SoapVersion::Soap12 => {
                let side = if self.code.is_server_side() { "Receiver" } else { "Sender" };
                let _ = write!(
                    out,
                    "{decl}<{p}:Envelope xmlns:{p}=\"{SOAP12_NS}\"><{p}:Body><{p}:Fault><{p}:Code><{p}:Value>{p}:{side}</{p}:Value></{p}:Code>\
                     <{p}:Reason><{p}:Text xml:lang=\"en\">Fault occurred</{p}:Text></{p}:Reason>\
                     <Detail>{detail}</Detail></{p}:Fault></{p}:Body></{p}:Envelope>"
                );
            }
        }
        out
    }
}

/// `"action"`, whether or not the client quoted it.
pub fn quote_action(action: &str) -> String {
    format!("\"{}\"", action.trim().trim_matches('"'))
}

/// Reads the ErrorCode and Message of a fault response (what a DSS needs of its USS).
pub fn parse_fault(body: &[u8], limits: &crate::Limits) -> Option<(String, Option<String>)> {
    let req = crate::parse_request(body, limits).ok()?;
    if req.operation.name != "Fault" {
        return None;
    }
    let detail = req.operation.child("detail").or_else(|| req.operation.child("Detail"))?;
    let code = detail.child("ErrorCode")?.value().to_owned();
    Some((code, detail.child("Message").map(|m| m.value().to_owned())))
}
