//! MS-WSUSSS message types (server ↔ server), both directions: what a USS decodes from a
//! downstream server and answers in the shape of a real WSUS (ASMX style: empty elements
//! as `<X />`), and what a DSS sends.

use std::fmt::Write as _;

use crate::write::{datetime, escape};
use crate::wusp::{Cookie, ProtocolVersion};
use crate::{DecodeError, Element};

/// Namespace of the server-sync and reporting services.
pub const SERVER_SYNC_NS: &str = "http://www.microsoft.com/SoftwareDistribution";
/// Namespace of the DSS authorization service.
pub const DSS_AUTH_NS: &str = "http://www.microsoft.com/SoftwareDistribution/Server/DssAuthWebService";
/// The protocol version this server speaks (Windows Server 2016 and later: 1.20).
pub const PROTOCOL_VERSION: &str = "1.20";
/// The most update ids one GetUpdateData may name.
pub const MAX_UPDATES_PER_REQUEST: usize = 100;

/// `<name>text</name>`, or `<name />` when empty, as ASMX writes them.
fn asmx(out: &mut String, name: &str, text: &str) {
    if text.is_empty() {
        let _ = write!(out, "<{name} />");
    } else {
        let _ = write!(out, "<{name}>{}</{name}>", escape(text));
    }
}

fn text(e: &Element, name: &str, path: &str) -> Result<String, DecodeError> {
    e.child(name)
        .filter(|c| !c.is_nil())
        .map(|c| c.value().to_owned())
        .ok_or_else(|| DecodeError::new(path, "is required"))
}

fn guid(raw: &str, path: &str) -> Result<uuid::Uuid, DecodeError> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| DecodeError::new(path, format!("{raw:?} is not a GUID")))
}

fn boolean(e: &Element, name: &str, path: &str) -> Result<Option<bool>, DecodeError> {
    match e.child(name).filter(|c| !c.is_nil()).map(|c| c.value()) {
        None => Ok(None),
        Some("true") | Some("1") => Ok(Some(true)),
        Some("false") | Some("0") => Ok(Some(false)),
        Some(other) => Err(DecodeError::new(path, format!("{other:?} is not a boolean"))),
    }
}

fn identities(list: Option<&Element>, path: &str) -> Result<Vec<(uuid::Uuid, i32)>, DecodeError> {
    list.map(|l| l.children.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let n = text(u, "RevisionNumber", path)?;
            Ok((
                guid(&text(u, "UpdateID", path)?, path)?,
                n.parse().map_err(|_| DecodeError::new(path, format!("{n:?} is not a number")))?,
            ))
        })
        .collect()
}

/// GetAuthConfigResponse: one DssTargeting plug-in at the DSS authorization service.
pub fn encode_auth_config(last_change: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "<GetAuthConfigResponse xmlns=\"{SERVER_SYNC_NS}\"><GetAuthConfigResult><LastChange>{}</LastChange><AuthInfo><AuthPlugInInfo><PlugInID>DssTargeting</PlugInID><ServiceUrl>DssAuthWebService/DssAuthWebService.asmx</ServiceUrl><Parameter /></AuthPlugInInfo></AuthInfo></GetAuthConfigResult></GetAuthConfigResponse>",
        datetime(last_change)
    )
}

/// DssAuth GetAuthorizationCookie: the downstream server's FQDN and GUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DssAuthorizationRequest {
    pub account_name: String,
    pub account_guid: uuid::Uuid,
}

impl DssAuthorizationRequest {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let account_name = text(op, "accountName", "accountName")?;
        if account_name.is_empty() || account_name.len() > 255 {
            return Err(DecodeError::new("accountName", "must be a host name"));
        }
        Ok(Self { account_name, account_guid: guid(&text(op, "accountGuid", "accountGuid")?, "accountGuid")? })
    }
}

pub fn encode_dss_authorization_cookie(cookie_data_b64: &str) -> String {
    let mut out = format!("<GetAuthorizationCookieResponse xmlns=\"{DSS_AUTH_NS}\"><GetAuthorizationCookieResult>");
    asmx(&mut out, "PlugInId", "DssTargeting");
    asmx(&mut out, "CookieData", cookie_data_b64);
    out.push_str("</GetAuthorizationCookieResult></GetAuthorizationCookieResponse>");
    out
}

/// Server-sync GetCookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetCookieRequest {
    pub auth_cookies: Vec<String>,
    pub old_cookie: Option<Cookie>,
    pub protocol_version: ProtocolVersion,
}

impl GetCookieRequest {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let auth_cookies = op
            .child("authCookies")
            .map(|a| a.children.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| text(c, "CookieData", "authCookies"))
            .collect::<Result<Vec<_>, _>>()?;
        let raw = op.child("protocolVersion").map(|p| p.value().to_owned()).unwrap_or_else(|| "1.0".to_owned());
        let old_cookie = match op.child("oldCookie").filter(|c| !c.is_nil()) {
            None => None,
            Some(_) => crate::wusp::request_cookie_named(op, "oldCookie").ok(),
        };
        Ok(Self {
            auth_cookies,
            old_cookie,
            protocol_version: raw
                .parse()
                .map_err(|_| DecodeError::new("protocolVersion", format!("{raw:?} is not major.minor")))?,
        })
    }
}

/// `<{op}Response><{op}Result>` with a cookie (Expiration, EncryptedData), ASMX style.
pub fn encode_cookie(op: &str, cookie: &Cookie) -> String {
    let mut out = format!("<{op}Response xmlns=\"{SERVER_SYNC_NS}\"><{op}Result>");
    asmx(&mut out, "Expiration", &datetime(cookie.expiration));
    asmx(&mut out, "EncryptedData", cookie.encrypted_data.as_deref().unwrap_or(""));
    let _ = write!(out, "</{op}Result></{op}Response>");
    out
}

/// One language of ServerSyncLanguageData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language {
    pub id: i32,
    pub short: String,
    pub long: String,
    pub enabled: bool,
}

/// ServerSyncConfigData, in the element order a real WSUS answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigData {
    pub catalog_only_sync: bool,
    pub lazy_sync: bool,
    pub server_hosts_psf_files: bool,
    pub max_updates_per_request: u32,
    pub new_config_anchor: String,
    pub languages: Vec<Language>,
    pub max_updates_per_decryption_request: u32,
}

impl ConfigData {
    pub fn encode(&self) -> String {
        let mut out = format!("<GetConfigDataResponse xmlns=\"{SERVER_SYNC_NS}\"><GetConfigDataResult>");
        let _ = write!(
            out,
            "<CatalogOnlySync>{}</CatalogOnlySync><LazySync>{}</LazySync><ServerHostsPsfFiles>{}</ServerHostsPsfFiles>\
             <MaxNumberOfComputerIdsInRequest>0</MaxNumberOfComputerIdsInRequest><MaxNumberOfDriverSetsPerRequest>0</MaxNumberOfDriverSetsPerRequest>\
             <MaxNumberOfPnpHardwareIdsInRequest>0</MaxNumberOfPnpHardwareIdsInRequest><MaxNumberOfUpdatesPerRequest>{}</MaxNumberOfUpdatesPerRequest>",
            self.catalog_only_sync, self.lazy_sync, self.server_hosts_psf_files, self.max_updates_per_request
        );
        asmx(&mut out, "NewConfigAnchor", &self.new_config_anchor);
        asmx(&mut out, "ProtocolVersion", PROTOCOL_VERSION);
        if self.languages.is_empty() {
            out.push_str("<LanguageUpdateList />");
        } else {
            out.push_str("<LanguageUpdateList>");
            for l in &self.languages {
                let _ = write!(
                    out,
                    "<ServerSyncLanguageData><LanguageID>{}</LanguageID><ShortLanguage>{}</ShortLanguage><LongLanguage>{}</LongLanguage><Enabled>{}</Enabled></ServerSyncLanguageData>",
                    l.id,
                    escape(&l.short),
                    escape(&l.long),
                    l.enabled
                );
            }
            out.push_str("</LanguageUpdateList>");
        }
        let _ = write!(
            out,
            "<MaxUpdatesPerRequestInGetUpdateDecryptionData>{}</MaxUpdatesPerRequestInGetUpdateDecryptionData></GetConfigDataResult></GetConfigDataResponse>",
            self.max_updates_per_decryption_request
        );
        out
    }
}

/// A category or classification of a GetRevisionIdList filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdAndDelta {
    pub id: uuid::Uuid,
    pub delta: bool,
}

/// ServerSyncFilter of GetRevisionIdList.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RevisionFilter {
    pub anchor: Option<String>,
    pub get_config: bool,
    pub categories: Vec<IdAndDelta>,
    pub classifications: Vec<IdAndDelta>,
    pub languages: Vec<(i32, bool)>,
}

impl RevisionFilter {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let f = op.child("filter").filter(|f| !f.is_nil()).ok_or_else(|| DecodeError::new("filter", "is required"))?;
        let list = |name: &str| -> Result<Vec<IdAndDelta>, DecodeError> {
            f.child(name)
                .map(|l| l.children.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    Ok(IdAndDelta {
                        id: guid(&text(c, "Id", "filter")?, "filter")?,
                        delta: boolean(c, "Delta", "filter")?.unwrap_or(false),
                    })
                })
                .collect()
        };
        let languages = f
            .child("Languages")
            .map(|l| l.children.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let id = text(c, "Id", "filter")?;
                Ok((
                    id.parse().map_err(|_| DecodeError::new("filter", "bad language id"))?,
                    boolean(c, "Delta", "filter")?.unwrap_or(false),
                ))
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(Self {
            anchor: f.child("Anchor").filter(|a| !a.is_nil()).map(|a| a.value().to_owned()).filter(|a| !a.is_empty()),
            get_config: boolean(f, "GetConfig", "filter")?.unwrap_or(false),
            categories: list("Categories")?,
            classifications: list("Classifications")?,
            languages,
        })
    }
}

/// RevisionIdList.
pub fn encode_revision_id_list(anchor: &str, revisions: &[(uuid::Uuid, i32)]) -> String {
    let mut out = format!("<GetRevisionIdListResponse xmlns=\"{SERVER_SYNC_NS}\"><GetRevisionIdListResult>");
    asmx(&mut out, "Anchor", anchor);
    if revisions.is_empty() {
        out.push_str("<NewRevisions />");
    } else {
        out.push_str("<NewRevisions>");
        for (id, rev) in revisions {
            let _ = write!(
                out,
                "<UpdateIdentity><UpdateID>{id}</UpdateID><RevisionNumber>{rev}</RevisionNumber></UpdateIdentity>"
            );
        }
        out.push_str("</NewRevisions>");
    }
    out.push_str("</GetRevisionIdListResult></GetRevisionIdListResponse>");
    out
}

/// GetUpdateData: the revisions asked for (at most [`MAX_UPDATES_PER_REQUEST`]).
pub fn decode_update_ids(op: &Element) -> Result<Vec<(uuid::Uuid, i32)>, DecodeError> {
    let ids = identities(op.child("updateIds").filter(|u| !u.is_nil()), "updateIds")?;
    if ids.is_empty() || ids.len() > MAX_UPDATES_PER_REQUEST {
        return Err(DecodeError::new("updateIds", format!("1 to {MAX_UPDATES_PER_REQUEST} ids")));
    }
    Ok(ids)
}

/// One ServerSyncUpdateData: identity, file digests (base64 SHA-1), the document.
pub struct UpdateData<'a> {
    pub update_id: uuid::Uuid,
    pub revision_number: i32,
    pub file_digests: Vec<String>,
    pub xml: &'a str,
}

/// ServerUpdateData: the documents (as escaped XmlUpdateBlob) and one ServerSyncUrlData
/// per distinct file (digest, MUUrl).
pub fn encode_update_data(updates: &[UpdateData<'_>], file_urls: &[(String, Option<String>)]) -> String {
    let size: usize = updates.iter().map(|u| u.xml.len() + u.xml.len() / 4 + 300).sum();
    let mut out = String::with_capacity(size + 512);
    let _ = write!(out, "<GetUpdateDataResponse xmlns=\"{SERVER_SYNC_NS}\"><GetUpdateDataResult><updates>");
    for u in updates {
        let _ = write!(
            out,
            "<ServerSyncUpdateData><Id><UpdateID>{}</UpdateID><RevisionNumber>{}</RevisionNumber></Id>",
            u.update_id, u.revision_number
        );
        if !u.file_digests.is_empty() {
            out.push_str("<FileDigestList>");
            for d in &u.file_digests {
                let _ = write!(out, "<base64Binary>{d}</base64Binary>");
            }
            out.push_str("</FileDigestList>");
        }
        asmx(&mut out, "XmlUpdateBlob", u.xml);
        out.push_str("</ServerSyncUpdateData>");
    }
    out.push_str("</updates>");
    if file_urls.is_empty() {
        out.push_str("<fileUrls />");
    } else {
        out.push_str("<fileUrls>");
        for (digest, mu) in file_urls {
            let _ = write!(out, "<ServerSyncUrlData><FileDigest>{digest}</FileDigest>");
            if let Some(mu) = mu {
                asmx(&mut out, "MUUrl", mu);
            }
            out.push_str("<UssUrl /></ServerSyncUrlData>");
        }
        out.push_str("</fileUrls>");
    }
    out.push_str("</GetUpdateDataResult></GetUpdateDataResponse>");
    out
}
