//! MS-WUSP message types (client ↔ server). Operations arrive one issue at a time;
//! each decodes from the request's operation element and encodes like the real server.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::read;
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

    /// A configuration change time as `LastChange` announces it: to the millisecond, as
    /// the real server's (`2026-10-04T13:17:07.59Z`, native-capture GetConfig.response.xml),
    /// so it survives a client that keeps fewer digits than a database timestamp has.
    pub fn last_change_at(t: DateTime<Utc>) -> DateTime<Utc> {
        use chrono::{DurationRound, TimeDelta};
        t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
    }

    /// Whether a client's `lastChange` (GetCookie) names this configuration. The native
    /// client echoes the string it was given (to the millisecond, however many digits it
    /// writes them with): that must match exactly. One that keeps whole seconds only,
    /// rounded or cut, still names it when within the second.
    pub fn is_current(&self, client_last_change: DateTime<Utc>) -> bool {
        if client_last_change.timestamp_subsec_nanos() == 0 {
            (client_last_change - self.last_change).abs() < chrono::TimeDelta::seconds(1)
        } else {
            Self::last_change_at(client_last_change) == self.last_change
        }
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
    fn last_change_survives_the_clients_echo() {
        // The real server announced .59Z and the native client sent the same string back
        // (native-capture GetConfig.response.xml, GetCookie.request.xml).
        let stored = DateTime::parse_from_rfc3339("2026-10-04T13:17:07.590412Z").unwrap().to_utc();
        let config = Config {
            last_change: Config::last_change_at(stored),
            is_registration_required: true,
            auth_plug_ins: vec![],
            properties: vec![],
        };
        assert_eq!(crate::write::datetime(config.last_change), "2026-10-04T13:17:07.59Z");
        let echo = |s: &str| read::time(s, "lastChange").unwrap();
        for same in
            ["2026-10-04T13:17:07.59Z", "2026-10-04T13:17:07.5900000Z", "2026-10-04T13:17:07Z", "2026-10-04T13:17:08Z"]
        {
            assert!(config.is_current(echo(same)), "{same}");
        }
        // A configuration of the same second is another configuration.
        for other in
            ["2026-10-04T13:17:06Z", "2026-10-04T13:17:09Z", "2026-10-05T13:17:07.59Z", "2026-10-04T13:17:07.2Z"]
        {
            assert!(!config.is_current(echo(other)), "{other}");
        }
    }

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

/// A Cookie: the clear-text expiry and the opaque sealed data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub expiration: DateTime<Utc>,
    /// Base64 text as sent; None when absent (a first GetCookie sends only Expiration).
    pub encrypted_data: Option<String>,
}

impl Cookie {
    pub fn decode(e: &Element, path: &str) -> Result<Self, DecodeError> {
        Ok(Self {
            expiration: read::time(
                &read::text(e, "Expiration", &format!("{path}.Expiration"))?,
                &format!("{path}.Expiration"),
            )?,
            encrypted_data: read::opt_text(e, "EncryptedData").filter(|s| !s.is_empty()),
        })
    }

    fn encode(&self, out: &mut String, name: &str) {
        let _ = write!(out, "<{name}>");
        element(out, "Expiration", &datetime(self.expiration));
        element(out, "EncryptedData", self.encrypted_data.as_deref().unwrap_or(""));
        let _ = write!(out, "</{name}>");
    }
}

/// SimpleAuth GetAuthorizationCookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetAuthorizationCookieRequest {
    pub client_id: String,
    pub target_group_name: Option<String>,
    pub dns_name: String,
}

impl GetAuthorizationCookieRequest {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let client_id = read::text(op, "clientId", "clientId")?;
        if client_id.is_empty() || client_id.len() > 256 {
            return Err(DecodeError::new("clientId", "must be 1 to 256 characters"));
        }
        let dns_name = read::text(op, "dnsName", "dnsName")?;
        if dns_name.len() > 255 {
            return Err(DecodeError::new("dnsName", "is too long"));
        }
        let target_group_name = read::opt_text(op, "targetGroupName").filter(|s| !s.is_empty());
        // Group names are at most 256 characters; a policy names a few of them.
        if target_group_name.as_ref().is_some_and(|t| t.len() > MAX_TARGET_GROUP_NAME) {
            return Err(DecodeError::new("targetGroupName", "is too long"));
        }
        Ok(Self { client_id, target_group_name, dns_name })
    }
}

/// The longest `targetGroupName` accepted: sixteen group names of the longest kind.
pub const MAX_TARGET_GROUP_NAME: usize = 16 * 257;

/// The `GetAuthorizationCookieResponse` element (ASMX style).
pub fn encode_authorization_cookie(plug_in_id: &str, cookie_data_b64: &str) -> String {
    let mut out = format!("<GetAuthorizationCookieResponse xmlns=\"{SIMPLE_AUTH_NS}\"><GetAuthorizationCookieResult>");
    element(&mut out, "PlugInId", plug_in_id);
    element(&mut out, "CookieData", cookie_data_b64);
    out.push_str("</GetAuthorizationCookieResult></GetAuthorizationCookieResponse>");
    out
}

/// An AuthorizationCookie as sent back in GetCookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCookie {
    pub plug_in_id: String,
    pub cookie_data: String,
}

/// GetCookie (MS-WUSP 2.2.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetCookieRequest {
    pub auth_cookies: Vec<AuthorizationCookie>,
    pub old_cookie: Option<Cookie>,
    pub last_change: Option<DateTime<Utc>>,
    pub current_time: Option<DateTime<Utc>>,
    pub protocol_version: ProtocolVersion,
}

impl GetCookieRequest {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let auth_cookies = read::items(op, "authCookies")
            .filter(|c| c.name == "AuthorizationCookie")
            .map(|c| {
                Ok(AuthorizationCookie {
                    plug_in_id: read::opt_text(c, "PlugInId").unwrap_or_default(),
                    cookie_data: read::text(c, "CookieData", "authCookies.CookieData")?,
                })
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        let old_cookie =
            op.child("oldCookie").filter(|c| !c.is_nil()).map(|c| Cookie::decode(c, "oldCookie")).transpose()?;
        let raw = read::text(op, "protocolVersion", "protocolVersion")?;
        Ok(Self {
            auth_cookies,
            old_cookie,
            last_change: read::opt_text(op, "lastChange").map(|t| read::time(&t, "lastChange")).transpose()?,
            current_time: read::opt_text(op, "currentTime").map(|t| read::time(&t, "currentTime")).transpose()?,
            protocol_version: raw
                .parse()
                .map_err(|_| DecodeError::new("protocolVersion", format!("{raw:?} is not major.minor")))?,
        })
    }
}

/// A response holding only a cookie: `<{op}Response><{op}Result>…</…>` (GetCookie).
pub fn encode_cookie_response(op: &str, cookie: &Cookie) -> String {
    let mut out = format!("<{op}Response xmlns=\"{CLIENT_NS}\">");
    cookie.encode(&mut out, &format!("{op}Result"));
    let _ = write!(out, "</{op}Response>");
    out
}

/// The `cookie` of any operation.
pub fn request_cookie(op: &Element) -> Result<Cookie, DecodeError> {
    request_cookie_named(op, "cookie")
}

/// A cookie carried under another name (`oldCookie`).
pub fn request_cookie_named(op: &Element, name: &str) -> Result<Cookie, DecodeError> {
    Cookie::decode(read::child(op, name, name)?, name)
}

/// RegisterComputer's ComputerInfo (MS-WUSP 2.2.2.2.3), as sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComputerInfo {
    pub dns_name: Option<String>,
    pub os_major_version: Option<i32>,
    pub os_minor_version: Option<i32>,
    pub os_build_number: Option<i32>,
    pub os_service_pack_major_number: Option<i16>,
    pub os_service_pack_minor_number: Option<i16>,
    pub os_locale: Option<String>,
    pub computer_manufacturer: Option<String>,
    pub computer_model: Option<String>,
    pub bios_version: Option<String>,
    pub bios_name: Option<String>,
    pub bios_release_date: Option<DateTime<Utc>>,
    pub processor_architecture: Option<String>,
    pub suite_mask: Option<i16>,
    pub old_product_type: Option<i16>,
    pub new_product_type: Option<i32>,
    pub system_metrics: Option<i32>,
    pub client_version: Option<String>,
    pub os_description: Option<String>,
    pub oem: Option<String>,
    pub device_type: Option<String>,
    pub firmware_version: Option<String>,
    pub mobile_operator: Option<String>,
}

impl ComputerInfo {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let c = read::child(op, "computerInfo", "computerInfo")?;
        let s = |n: &str| read::opt_text(c, n);
        let p = |n: &str| format!("computerInfo.{n}");
        let version: Vec<String> = [
            "ClientVersionMajorNumber",
            "ClientVersionMinorNumber",
            "ClientVersionBuildNumber",
            "ClientVersionQfeNumber",
        ]
        .iter()
        .filter_map(|n| s(n))
        .collect();
        Ok(Self {
            dns_name: s("DnsName"),
            os_major_version: read::opt_num(c, "OSMajorVersion", &p("OSMajorVersion"))?,
            os_minor_version: read::opt_num(c, "OSMinorVersion", &p("OSMinorVersion"))?,
            os_build_number: read::opt_num(c, "OSBuildNumber", &p("OSBuildNumber"))?,
            os_service_pack_major_number: read::opt_num(c, "OSServicePackMajorNumber", &p("OSServicePackMajorNumber"))?,
            os_service_pack_minor_number: read::opt_num(c, "OSServicePackMinorNumber", &p("OSServicePackMinorNumber"))?,
            os_locale: s("OSLocale"),
            computer_manufacturer: s("ComputerManufacturer"),
            computer_model: s("ComputerModel"),
            bios_version: s("BiosVersion"),
            bios_name: s("BiosName"),
            bios_release_date: s("BiosReleaseDate").map(|t| read::time(&t, &p("BiosReleaseDate"))).transpose()?,
            processor_architecture: s("ProcessorArchitecture"),
            suite_mask: read::opt_num(c, "SuiteMask", &p("SuiteMask"))?,
            old_product_type: read::opt_num(c, "OldProductType", &p("OldProductType"))?,
            new_product_type: read::opt_num(c, "NewProductType", &p("NewProductType"))?,
            system_metrics: read::opt_num(c, "SystemMetrics", &p("SystemMetrics"))?,
            client_version: (!version.is_empty()).then(|| version.join(".")),
            os_description: s("OSDescription"),
            oem: s("OEM"),
            device_type: s("DeviceType"),
            firmware_version: s("FirmwareVersion"),
            mobile_operator: s("MobileOperator"),
        })
    }
}

/// An empty `<{op}Response/>` (RegisterComputer).
pub fn encode_empty_response(op: &str) -> String {
    format!("<{op}Response xmlns=\"{CLIENT_NS}\" />")
}

/// The driver a device has installed (SystemSpec/Device/installedDriver).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstalledDriver {
    pub matching_id: Option<String>,
    pub date: Option<chrono::NaiveDate>,
    /// DriverVerVersion as the client packs it (16 bits per part).
    pub version: Option<u64>,
    pub class: Option<String>,
    pub manufacturer: Option<String>,
    pub provider: Option<String>,
    /// The computer hardware id it was targeted to (nil in the captures: none).
    pub matching_computer_hwid: Option<uuid::Uuid>,
    /// DriverRank (0xSSGGTHHH); None for -1 (unknown) or when absent.
    pub rank: Option<u32>,
}

/// One device of a driver scan: its hardware ids, most specific first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    pub hardware_ids: Vec<String>,
    pub compatible_ids: Vec<String>,
    pub installed: Option<InstalledDriver>,
}

/// Devices a driver pass may list (real clients send 70-75).
pub const MAX_DEVICES: usize = 5000;

/// SyncUpdates parameters (MS-WUSP 2.2.2.2.4); unknown elements are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncUpdatesRequest {
    pub installed_non_leaf: Vec<i32>,
    pub other_cached: Vec<i32>,
    /// Present on the driver pass.
    pub has_system_spec: bool,
    pub devices: Vec<Device>,
    /// ComputerSpec hardware ids (SMBIOS-derived GUIDs), most specific first.
    pub computer_hardware_ids: Vec<uuid::Uuid>,
    /// e.g. `AMD64.10.0`, the key FeatureScores are given for.
    pub feature_score_key: Option<String>,
    pub skip_software_sync: bool,
    pub filter_category_ids: Vec<uuid::Uuid>,
    pub need_two_group_out_of_scope: bool,
    pub cached_driver_ids: Vec<i32>,
}

/// More InstalledNonLeafUpdateIDs than a real WSUS accepts.
pub const MAX_INSTALLED_NON_LEAF: usize = 400;

impl SyncUpdatesRequest {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let p = read::child(op, "parameters", "parameters")?;
        let installed_non_leaf = read::ints(p, "InstalledNonLeafUpdateIDs", "parameters.InstalledNonLeafUpdateIDs")?;
        if installed_non_leaf.len() > MAX_INSTALLED_NON_LEAF {
            return Err(DecodeError::new("parameters.InstalledNonLeafUpdateIDs", "more than 400 entries"));
        }
        let filter_category_ids = read::items(p, "FilterCategoryIds")
            .map(|c| read::guid(&read::text(c, "Id", "parameters.FilterCategoryIds")?, "parameters.FilterCategoryIds"))
            .collect::<Result<_, _>>()?;
        let devices = decode_devices(p)?;
        let computer_hardware_ids = p
            .child("ComputerSpec")
            .map(|c| {
                read::items(c, "HardwareIDs")
                    .map(|g| read::guid(g.value(), "parameters.ComputerSpec"))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let req = Self {
            installed_non_leaf,
            other_cached: read::ints(p, "OtherCachedUpdateIDs", "parameters.OtherCachedUpdateIDs")?,
            has_system_spec: !devices.is_empty(),
            devices,
            computer_hardware_ids,
            feature_score_key: read::opt_text(p, "FeatureScoreMatchingKey").filter(|k| !k.is_empty()),
            skip_software_sync: read::bool_or(p, "SkipSoftwareSync", "parameters.SkipSoftwareSync", false)?,
            filter_category_ids,
            need_two_group_out_of_scope: read::bool_or(
                p,
                "NeedTwoGroupOutOfScopeUpdates",
                "parameters.NeedTwoGroupOutOfScopeUpdates",
                false,
            )?,
            cached_driver_ids: read::ints(p, "CachedDriverIDs", "parameters.CachedDriverIDs")?,
        };
        if req.has_system_spec && !req.skip_software_sync {
            return Err(DecodeError::new("parameters.SystemSpec", "SystemSpec needs SkipSoftwareSync"));
        }
        Ok(req)
    }
}

fn decode_devices(p: &Element) -> Result<Vec<Device>, DecodeError> {
    let path = "parameters.SystemSpec";
    let devices: Vec<&Element> = read::items(p, "SystemSpec").filter(|d| d.name == "Device").collect();
    if devices.len() > MAX_DEVICES {
        return Err(DecodeError::new(path, "too many devices"));
    }
    devices
        .into_iter()
        .map(|d| {
            let installed = d
                .child("installedDriver")
                .filter(|i| !i.is_nil())
                .map(|i| -> Result<InstalledDriver, DecodeError> {
                    Ok(InstalledDriver {
                        matching_id: read::opt_text(i, "MatchingID"),
                        date: read::opt_text(i, "DriverVerDate")
                            .map(|t| read::time(&t, path).map(|t| t.date_naive()))
                            .transpose()?,
                        version: read::opt_num::<u64>(i, "DriverVerVersion", path)?,
                        class: read::opt_text(i, "Class"),
                        manufacturer: read::opt_text(i, "Manufacturer"),
                        provider: read::opt_text(i, "Provider"),
                        matching_computer_hwid: i
                            .child("MatchingComputerHWID")
                            .filter(|c| !c.is_nil() && !c.value().trim().is_empty())
                            .map(|c| read::guid(c.value(), path))
                            .transpose()?,
                        rank: read::opt_num::<i64>(i, "DriverRank", path)?.and_then(|r| u32::try_from(r).ok()),
                    })
                })
                .transpose()?;
            let hardware_ids = read::strings(d, "HardwareIDs");
            let compatible_ids = read::strings(d, "CompatibleIDs");
            if hardware_ids.len() + compatible_ids.len() > 500 {
                return Err(DecodeError::new(path, "too many ids for one device"));
            }
            Ok(Device { hardware_ids, compatible_ids, installed })
        })
        .collect()
}

/// A Deployment as WSUS writes it on every UpdateInfo (7 elements, plus Deadline when set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentInfo {
    pub id: i32,
    pub action: &'static str,
    pub deadline: Option<DateTime<Utc>>,
    pub last_change: chrono::NaiveDate,
    /// For drivers: the hardware ids they were matched by (clients 1.6 and later).
    pub hardware_ids: Vec<String>,
}

impl DeploymentInfo {
    pub fn encode(&self, out: &mut String) {
        let _ = write!(out, "<Deployment><ID>{}</ID><Action>{}</Action>", self.id, self.action);
        if let Some(d) = self.deadline {
            element(out, "Deadline", &datetime(d));
        }
        let _ = write!(
            out,
            "<IsAssigned>true</IsAssigned><LastChangeTime>{}</LastChangeTime>",
            self.last_change.format("%Y-%m-%d")
        );
        if !self.hardware_ids.is_empty() {
            out.push_str("<HardwareIds>");
            for h in &self.hardware_ids {
                element(out, "string", h);
            }
            out.push_str("</HardwareIds>");
        }
        out.push_str("<AutoSelect>0</AutoSelect><AutoDownload>0</AutoDownload><SupersedenceBehavior>0</SupersedenceBehavior></Deployment>");
    }
}

/// One UpdateInfo of a SyncUpdates answer; `core_escaped` is the Core fragment, already
/// escaped for element content.
#[derive(Debug, Clone)]
pub struct UpdateInfo<'a> {
    pub revision_id: i32,
    pub deployment: DeploymentInfo,
    pub is_leaf: bool,
    pub core_escaped: &'a str,
}

/// SyncUpdatesResult, in the real server's element order.
#[derive(Debug, Clone)]
pub struct SyncInfo<'a> {
    pub new_updates: Vec<UpdateInfo<'a>>,
    pub out_of_scope: Vec<i32>,
    /// (revision id, deployment, IsLeaf) of cached revisions whose deployment changed.
    pub changed: Vec<UpdateInfo<'a>>,
    pub truncated: bool,
    pub new_cookie: Cookie,
    /// Only for category scans that asked for it (NeedTwoGroupOutOfScopeUpdates).
    pub deployed_out_of_scope: Vec<i32>,
    pub driver_sync_not_needed: bool,
}

impl SyncInfo<'_> {
    pub fn encode_response(&self) -> String {
        self.encode_as("SyncUpdates")
    }

    /// The SyncInfo as the answer of `op` (SyncUpdates or SyncPrinterCatalog).
    pub fn encode_as(&self, op: &str) -> String {
        let size: usize = self.new_updates.iter().map(|u| u.core_escaped.len() + 400).sum();
        let mut out = String::with_capacity(size + 1024);
        let _ = write!(out, "<{op}Response xmlns=\"{CLIENT_NS}\"><{op}Result>");
        if !self.new_updates.is_empty() {
            out.push_str("<NewUpdates>");
            for u in &self.new_updates {
                encode_update_info(&mut out, u, true);
            }
            out.push_str("</NewUpdates>");
        }
        if !self.out_of_scope.is_empty() {
            out.push_str("<OutOfScopeRevisionIDs>");
            for id in &self.out_of_scope {
                let _ = write!(out, "<int>{id}</int>");
            }
            out.push_str("</OutOfScopeRevisionIDs>");
        }
        if !self.changed.is_empty() {
            out.push_str("<ChangedUpdates>");
            for u in &self.changed {
                encode_update_info(&mut out, u, false);
            }
            out.push_str("</ChangedUpdates>");
        }
        let _ = write!(out, "<Truncated>{}</Truncated>", self.truncated);
        self.new_cookie.encode(&mut out, "NewCookie");
        if !self.deployed_out_of_scope.is_empty() {
            out.push_str("<DeployedOutOfScopeRevisionIds>");
            for id in &self.deployed_out_of_scope {
                let _ = write!(out, "<int>{id}</int>");
            }
            out.push_str("</DeployedOutOfScopeRevisionIds>");
        }
        let _ = write!(out, "<DriverSyncNotNeeded>{}</DriverSyncNotNeeded>", self.driver_sync_not_needed);
        let _ = write!(out, "</{op}Result></{op}Response>");
        out
    }
}

fn encode_update_info(out: &mut String, u: &UpdateInfo<'_>, with_xml: bool) {
    let _ = write!(out, "<UpdateInfo><ID>{}</ID>", u.revision_id);
    u.deployment.encode(out);
    let _ = write!(out, "<IsLeaf>{}</IsLeaf>", u.is_leaf);
    if with_xml {
        out.push_str("<Xml>");
        out.push_str(u.core_escaped);
        out.push_str("</Xml>");
    }
    out.push_str("</UpdateInfo>");
}

/// GetExtendedUpdateInfo (MS-WUSP 2.2.2.2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetExtendedUpdateInfoRequest {
    pub revision_ids: Vec<i32>,
    pub info_types: Vec<String>,
    pub locales: Vec<String>,
}

impl GetExtendedUpdateInfoRequest {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let (info_types, locales) = info_types_and_locales(op)?;
        Ok(Self { revision_ids: read::ints(op, "revisionIDs", "revisionIDs")?, info_types, locales })
    }
}

/// `infoTypes` (required) and `locales`, which "MUST be present, if the infoTypes
/// parameter contains either the Eula or the LocalizedProperties element" (MS-WUSP
/// 3.1.5.9: InvalidParameters otherwise).
fn info_types_and_locales(op: &Element) -> Result<(Vec<String>, Vec<String>), DecodeError> {
    read::child(op, "infoTypes", "infoTypes")?;
    let info_types: Vec<String> = read::strings(op, "infoTypes").into_iter().map(|s| s.trim().to_owned()).collect();
    let localized = info_types.iter().any(|t| t == "LocalizedProperties" || t == "Eula");
    if localized && op.child("locales").is_none_or(|l| l.is_nil()) {
        return Err(DecodeError::new("locales", "required for LocalizedProperties and Eula"));
    }
    let locales = read::strings(op, "locales").into_iter().map(|s| s.trim().to_owned()).collect();
    Ok((info_types, locales))
}

/// ExtendedUpdateInfo, in WSDL order: fragments (revision id, fragment text), file
/// locations (SHA-1 base64, URL), out-of-scope revisions. `op` is GetExtendedUpdateInfo
/// or GetExtendedUpdateInfo2 (which has no out-of-scope list).
pub fn encode_extended_update_info(
    op: &str,
    updates: &[(i32, &str)],
    files: &[(String, String)],
    out_of_scope: &[i32],
) -> String {
    let mut out = String::with_capacity(updates.iter().map(|(_, x)| x.len() + 64).sum::<usize>() + 512);
    let _ = write!(out, "<{op}Response xmlns=\"{CLIENT_NS}\"><{op}Result>");
    out.push_str("<Updates>");
    for (id, xml) in updates {
        let _ = write!(out, "<Update><ID>{id}</ID><Xml>{}</Xml></Update>", escape(xml));
    }
    out.push_str("</Updates>");
    if !files.is_empty() {
        out.push_str("<FileLocations>");
        for (digest, url) in files {
            let _ =
                write!(out, "<FileLocation><FileDigest>{digest}</FileDigest><Url>{}</Url></FileLocation>", escape(url));
        }
        out.push_str("</FileLocations>");
    }
    if !out_of_scope.is_empty() {
        out.push_str("<OutOfScopeRevisionIDs>");
        for id in out_of_scope {
            let _ = write!(out, "<int>{id}</int>");
        }
        out.push_str("</OutOfScopeRevisionIDs>");
    }
    let _ = write!(out, "</{op}Result></{op}Response>");
    out
}

/// GetExtendedUpdateInfo2 (MS-WUSP 2.2.2.2.10): updates by identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetExtendedUpdateInfo2Request {
    pub update_ids: Vec<(uuid::Uuid, i32)>,
    pub info_types: Vec<String>,
    pub locales: Vec<String>,
}

impl GetExtendedUpdateInfo2Request {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let (info_types, locales) = info_types_and_locales(op)?;
        let path = "updateIDs";
        Ok(Self {
            update_ids: read::items(op, "updateIDs")
                .map(|u| {
                    Ok((
                        read::guid(&read::text(u, "UpdateID", path)?, path)?,
                        read::num(&read::text(u, "RevisionNumber", path)?, path)?,
                    ))
                })
                .collect::<Result<_, DecodeError>>()?,
            info_types,
            locales,
        })
    }
}

/// SyncPrinterCatalog (MS-WUSP 2.2.2.2.9): installed non-leaf ids and the printer
/// driver ids the client holds.
pub fn decode_sync_printer_catalog(op: &Element) -> Result<(Vec<i32>, Vec<i32>), DecodeError> {
    let installed = read::ints(op, "installedNonLeafUpdateIDs", "installedNonLeafUpdateIDs")?;
    if installed.len() > MAX_INSTALLED_NON_LEAF {
        return Err(DecodeError::new("installedNonLeafUpdateIDs", "more than 400 entries"));
    }
    Ok((installed, read::ints(op, "printerUpdateIDs", "printerUpdateIDs")?))
}

/// One ReportingEvent (MS-WUSP 2.2.2.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportingEvent {
    pub target_id: String,
    pub time_at_target: Option<DateTime<Utc>>,
    pub event_instance_id: String,
    pub namespace_id: i32,
    pub event_id: i32,
    pub source_id: Option<i32>,
    pub update_id: Option<String>,
    pub revision_number: Option<i32>,
    pub win32_hresult: Option<i32>,
    pub app_name: Option<String>,
    pub replacement_strings: Vec<String>,
    pub misc_data: Vec<String>,
    pub computer_brand: Option<String>,
    pub computer_model: Option<String>,
    pub bios_revision: Option<String>,
    pub processor_architecture: Option<String>,
    pub os_version: Option<String>,
    pub os_locale_id: Option<i32>,
    pub device_id: Option<String>,
}

/// ReportEventBatch: the cookie and the events.
pub fn decode_event_batch(op: &Element) -> Result<Vec<ReportingEvent>, DecodeError> {
    read::items(op, "eventBatch")
        .filter(|e| e.name == "ReportingEvent")
        .map(|e| {
            let basic = read::child(e, "BasicData", "eventBatch.BasicData")?;
            let extended = e.child("ExtendedData");
            let target = read::child(basic, "TargetID", "eventBatch.BasicData.TargetID")?;
            let update = basic.child("UpdateID");
            let os_version = extended.and_then(|x| x.child("OSVersion")).map(|v| {
                ["Major", "Minor", "Build", "Revision", "ServicePackMajor", "ServicePackMinor"]
                    .iter()
                    .map(|n| v.child(n).map(|c| c.value().to_owned()).unwrap_or_else(|| "0".into()))
                    .collect::<Vec<_>>()
                    .join(".")
            });
            let ext_text = |n: &str| extended.and_then(|x| read::opt_text(x, n));
            Ok(ReportingEvent {
                target_id: read::text(target, "Sid", "eventBatch.BasicData.TargetID.Sid")?,
                time_at_target: read::opt_text(basic, "TimeAtTarget")
                    .map(|t| read::time(&t, "eventBatch.BasicData.TimeAtTarget"))
                    .transpose()?,
                event_instance_id: read::text(basic, "EventInstanceID", "eventBatch.BasicData.EventInstanceID")?,
                namespace_id: read::opt_num(basic, "NamespaceID", "eventBatch.BasicData.NamespaceID")?.unwrap_or(1),
                event_id: read::num(
                    &read::text(basic, "EventID", "eventBatch.BasicData.EventID")?,
                    "eventBatch.BasicData.EventID",
                )?,
                source_id: read::opt_num(basic, "SourceID", "eventBatch.BasicData.SourceID")?,
                update_id: update.and_then(|u| read::opt_text(u, "UpdateID")),
                revision_number: update
                    .map(|u| read::opt_num(u, "RevisionNumber", "eventBatch.BasicData.UpdateID.RevisionNumber"))
                    .transpose()?
                    .flatten(),
                win32_hresult: read::opt_num(basic, "Win32HResult", "eventBatch.BasicData.Win32HResult")?,
                app_name: read::opt_text(basic, "AppName"),
                replacement_strings: extended.map(|x| read::strings(x, "ReplacementStrings")).unwrap_or_default(),
                misc_data: extended.map(|x| read::strings(x, "MiscData")).unwrap_or_default(),
                computer_brand: ext_text("ComputerBrand"),
                computer_model: ext_text("ComputerModel"),
                bios_revision: ext_text("BiosRevision"),
                processor_architecture: ext_text("ProcessorArchitecture"),
                os_version,
                os_locale_id: extended
                    .map(|x| read::opt_num(x, "OSLocaleID", "eventBatch.ExtendedData.OSLocaleID"))
                    .transpose()?
                    .flatten(),
                device_id: ext_text("DeviceID"),
            })
        })
        .collect()
}

/// `ReportEventBatchResponse` with `true` (ASMX style, Reporting namespace).
pub fn encode_report_event_batch_response(op: &str) -> String {
    format!("<{op}Response xmlns=\"{REPORTING_NS}\"><{op}Result>true</{op}Result></{op}Response>")
}

/// StartCategoryScan (MS-WUSP 2.2.2.2.8): the categories, as (AND group index, id). No cookie.
pub fn decode_start_category_scan(op: &Element) -> Result<Vec<(i32, uuid::Uuid)>, DecodeError> {
    let path = "requestedCategories";
    let items: Vec<(i32, uuid::Uuid)> = read::items(op, "requestedCategories")
        .map(|c| {
            Ok((
                read::num(&read::text(c, "IndexOfAndGroup", path)?, path)?,
                read::guid(&read::text(c, "CategoryId", path)?, path)?,
            ))
        })
        .collect::<Result<_, DecodeError>>()?;
    // Windows answers 200 or more categories with InvalidParameters.
    if items.len() >= 200 {
        return Err(DecodeError::new(path, "200 or more categories"));
    }
    Ok(items)
}

pub fn encode_start_category_scan(preferred: &[uuid::Uuid], in_error: &[uuid::Uuid]) -> String {
    let mut out = format!("<StartCategoryScanResponse xmlns=\"{CLIENT_NS}\">");
    let guids = |out: &mut String, name: &str, ids: &[uuid::Uuid]| {
        if ids.is_empty() {
            return;
        }
        let _ = write!(out, "<{name}>");
        for id in ids {
            let _ = write!(out, "<guid>{id}</guid>");
        }
        let _ = write!(out, "</{name}>");
    };
    guids(&mut out, "preferredCategoryIds", preferred);
    guids(&mut out, "requestedCategoryIdsInError", in_error);
    out.push_str("</StartCategoryScanResponse>");
    out
}

/// RefreshCache (MS-WUSP 2.2.2.2.5): the update identities the client holds.
pub fn decode_refresh_cache(op: &Element) -> Result<Vec<(uuid::Uuid, i32)>, DecodeError> {
    let path = "globalIDs";
    let ids: Vec<(uuid::Uuid, i32)> = read::items(op, "globalIDs")
        .map(|u| {
            Ok((
                read::guid(&read::text(u, "UpdateID", path)?, path)?,
                read::num(&read::text(u, "RevisionNumber", path)?, path)?,
            ))
        })
        .collect::<Result<_, DecodeError>>()?;
    if ids.len() > 10_000 {
        return Err(DecodeError::new(path, "more than 10,000 identities"));
    }
    Ok(ids)
}

/// One RefreshCacheResult.
pub struct RefreshEntry {
    pub revision_id: i32,
    pub update_id: uuid::Uuid,
    pub revision_number: i32,
    pub is_leaf: bool,
    pub deployment: DeploymentInfo,
}

pub fn encode_refresh_cache(entries: &[RefreshEntry]) -> String {
    let mut out = format!("<RefreshCacheResponse xmlns=\"{CLIENT_NS}\"><RefreshCacheResult>");
    for e in entries {
        let _ = write!(
            out,
            "<RefreshCacheResult><RevisionID>{}</RevisionID><GlobalID><UpdateID>{}</UpdateID><RevisionNumber>{}</RevisionNumber></GlobalID><IsLeaf>{}</IsLeaf>",
            e.revision_id, e.update_id, e.revision_number, e.is_leaf
        );
        e.deployment.encode(&mut out);
        out.push_str("</RefreshCacheResult>");
    }
    out.push_str("</RefreshCacheResult></RefreshCacheResponse>");
    out
}

/// GetFileLocations (MS-WUSP 2.2.2.2.7): SHA-1 digests (20 bytes each).
pub fn decode_file_digests(op: &Element) -> Result<Vec<[u8; 20]>, DecodeError> {
    use base64::Engine as _;
    let digests: Vec<[u8; 20]> = read::items(op, "fileDigests")
        .map(|d| {
            base64::engine::general_purpose::STANDARD
                .decode(d.value())
                .ok()
                .and_then(|v| <[u8; 20]>::try_from(v).ok())
                .ok_or_else(|| DecodeError::new("fileDigests", "each digest must be a base64 SHA-1"))
        })
        .collect::<Result<_, _>>()?;
    if digests.len() > 1000 {
        return Err(DecodeError::new("fileDigests", "more than 1,000 digests"));
    }
    Ok(digests)
}

/// GetFileLocationsResponse: (SHA-1 base64, URL) and the renewed cookie.
pub fn encode_file_locations(files: &[(String, String)], cookie: &Cookie) -> String {
    let mut out = format!("<GetFileLocationsResponse xmlns=\"{CLIENT_NS}\"><GetFileLocationsResult><FileLocations>");
    for (digest, url) in files {
        let _ = write!(out, "<FileLocation><FileDigest>{digest}</FileDigest><Url>{}</Url></FileLocation>", escape(url));
    }
    out.push_str("</FileLocations>");
    cookie.encode(&mut out, "NewCookie");
    out.push_str("</GetFileLocationsResult></GetFileLocationsResponse>");
    out
}
