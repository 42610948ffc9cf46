//! MS-WUSP message types (client ↔ server). Operations arrive one issue at a time;
//! each decodes from the request's operation element and encodes like the real server.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::write::{datetime, element, escape};
use crate::{DecodeError, Element};

/// Namespace of the Client web service and its types.
pub const CLIENT_NS: &str = "http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService";
/// Namespace of the SimpleAuth web service.
pub const SIMPLE_AUTH_NS: &str = "http://www.microsoft.com/SoftwareDistribution/Server/SimpleAuthWebService";
/// Namespace of the Reporting web service (and of MS-WSUSSS server sync).
pub const REPORTING_NS: &str = "http://www.microsoft.com/SoftwareDistribution";

/// The server protocol version this server announces (WSUS 3.0 SP2 and later, as
/// Windows Server 2025 does; below 3.2 clients skip fast category scans).
pub const SERVER_PROTOCOL_VERSION: &str = "3.2";

/// A client protocol version "major.minor" (compared numerically: 2.90 > 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProtocolVersion {
    pub major: u32,
    pub minor: u32,
}

impl std::str::FromStr for ProtocolVersion {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (major, minor) = s.split_once('.').ok_or(())?;
        let digits = |p: &str| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return Err(());
        }
        Ok(Self { major: major.parse().map_err(|_| ())?, minor: minor.parse().map_err(|_| ())? })
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// GetConfig (MS-WUSP 2.2.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetConfigRequest {
    pub protocol_version: ProtocolVersion,
}

impl GetConfigRequest {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let raw =
            op.child("protocolVersion").ok_or_else(|| DecodeError::new("protocolVersion", "is required"))?.value();
        let protocol_version =
            raw.parse().map_err(|_| DecodeError::new("protocolVersion", format!("{raw:?} is not major.minor")))?;
        Ok(Self { protocol_version })
    }
}

/// An authorization plug-in the client must call (AuthPlugInInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPlugIn {
    pub plug_in_id: String,
    /// Relative to the server's base URL.
    pub service_url: String,
}

impl AuthPlugIn {
    /// The SimpleTargeting plug-in at the SimpleAuth web service, as WSUS announces it.
    pub fn simple_targeting() -> Self {
        Self { plug_in_id: "SimpleTargeting".into(), service_url: "SimpleAuthWebService/SimpleAuth.asmx".into() }
    }
}

/// GetConfigResult (MS-WUSP 2.2.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub last_change: DateTime<Utc>,
    pub is_registration_required: bool,
    pub auth_plug_ins: Vec<AuthPlugIn>,
    /// ConfigurationProperty Name/Value pairs, in order.
    pub properties: Vec<(String, String)>,
}

impl Config {
    /// The properties a real Windows Server 2025 WSUS sends, in its order.
    pub fn wsus_properties(
        max_extended_updates_per_request: u32,
        package_server_share: Option<&str>,
        client_reporting_level: u32,
    ) -> Vec<(String, String)> {
        let mut p = vec![("MaxExtendedUpdatesPerRequest".to_owned(), max_extended_updates_per_request.to_string())];
        if let Some(share) = package_server_share {
            p.push(("PackageServerShare".into(), share.into()));
        }
        p.push(("ProtocolVersion".into(), SERVER_PROTOCOL_VERSION.into()));
        // MUST be 0: this server never asks for inventory.
        p.push(("IsInventoryRequired".into(), "0".into()));
        p.push(("ClientReportingLevel".into(), client_reporting_level.to_string()));
        p
    }

    /// The `GetConfigResponse` element (to wrap with `EnvelopeStyle::Wcf`).
    pub fn encode_response(&self) -> String {
        let mut out = String::with_capacity(1024);
        let _ = write!(out, "<GetConfigResponse xmlns=\"{CLIENT_NS}\"><GetConfigResult>");
        element(&mut out, "LastChange", &datetime(self.last_change));
        element(&mut out, "IsRegistrationRequired", if self.is_registration_required { "true" } else { "false" });
        out.push_str("<AuthInfo>");
        for p in &self.auth_plug_ins {
            out.push_str("<AuthPlugInInfo>");
            element(&mut out, "PlugInID", &p.plug_in_id);
            element(&mut out, "ServiceUrl", &p.service_url);
            // The specification says it MUST NOT be present; the real server sends it empty.
            out.push_str("<Parameter/>");
            out.push_str("</AuthPlugInInfo>");
        }
        out.push_str("</AuthInfo><Properties>");
        for (name, value) in &self.properties {
            let _ = write!(
                out,
                "<ConfigurationProperty><Name>{}</Name><Value>{}</Value></ConfigurationProperty>",
                escape(name),
                escape(value)
            );
        }
        out.push_str("</Properties></GetConfigResult></GetConfigResponse>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_versions_compare_numerically() {
        let v = |s: &str| s.parse::<ProtocolVersion>().unwrap();
        assert!(v("2.90") > v("2.4"));
        assert!(v("1.8") < v("1.20"));
        for bad in ["", "2", "2.", ".9", "a.b", "2.9.1", "-1.2", "99999999999.1"] {
            assert!(bad.parse::<ProtocolVersion>().is_err(), "{bad}");
        }
    }
}
