//! MS-WSUSSS message types (server ↔ server), both directions: what a USS decodes from a
//! downstream server and answers in the shape of a real WSUS (ASMX style: empty elements
//! as `<X />`), and what a DSS sends.

use std::fmt::Write as _;

use crate::read;
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

fn identities(list: Option<&Element>, path: &str) -> Result<Vec<(uuid::Uuid, i32)>, DecodeError> {
    list.map(|l| l.children.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let n = read::text(u, "RevisionNumber", path)?;
            Ok((
                read::guid(&read::text(u, "UpdateID", path)?, path)?,
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
        let account_name = read::text(op, "accountName", "accountName")?;
        if account_name.is_empty() || account_name.len() > 255 {
            return Err(DecodeError::new("accountName", "must be a host name"));
        }
        Ok(Self {
            account_name,
            account_guid: read::guid(&read::text(op, "accountGuid", "accountGuid")?, "accountGuid")?,
        })
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
            .map(|c| read::text(c, "CookieData", "authCookies"))
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

/// The `filter` of a GetRevisionIdList or GetDriverIdList.
fn filter_of(op: &Element) -> Result<&Element, DecodeError> {
    op.child("filter").filter(|f| !f.is_nil()).ok_or_else(|| DecodeError::new("filter", "is required"))
}

/// An ArrayOfIdAndDelta child of a filter (absent = empty).
fn id_and_deltas(f: &Element, name: &str) -> Result<Vec<IdAndDelta>, DecodeError> {
    f.child(name)
        .map(|l| l.children.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            Ok(IdAndDelta {
                id: read::guid(&read::text(c, "Id", "filter")?, "filter")?,
                delta: read::bool_or(c, "Delta", "filter", false)?,
            })
        })
        .collect()
}

impl RevisionFilter {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let f = filter_of(op)?;
        let list = |name: &str| id_and_deltas(f, name);
        let languages = f
            .child("Languages")
            .map(|l| l.children.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let id = read::text(c, "Id", "filter")?;
                Ok((
                    id.parse().map_err(|_| DecodeError::new("filter", "bad language id"))?,
                    read::bool_or(c, "Delta", "filter", false)?,
                ))
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(Self {
            anchor: f.child("Anchor").filter(|a| !a.is_nil()).map(|a| a.value().to_owned()).filter(|a| !a.is_empty()),
            get_config: read::bool_or(f, "GetConfig", "filter", false)?,
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
    /// The document as `XmlUpdateBlobCompressed` (base64 of a Cabinet), sent instead of
    /// the plain blob when given.
    pub compressed: Option<String>,
}

/// "All Windows implementations use XmlUpdateBlobCompressed if the size of the
/// uncompressed XML metadata is more than 5,120 bytes" (MS-WSUSSS endnote <36>); the
/// blob is UTF-16, and the lab's documents under 5,120 UTF-16 bytes came plain.
pub const COMPRESS_ABOVE_UTF16_BYTES: usize = 5120;

/// Whether a document goes out compressed.
pub fn should_compress(xml: &str) -> bool {
    xml.encode_utf16().count() * 2 > COMPRESS_ABOVE_UTF16_BYTES
}

/// ServerUpdateData: the documents (escaped XmlUpdateBlob, or XmlUpdateBlobCompressed)
/// and one ServerSyncUrlData per distinct file (digest, MUUrl).
pub fn encode_update_data(updates: &[UpdateData<'_>], file_urls: &[(String, Option<String>)]) -> String {
    let size: usize = updates.iter().map(|u| u.xml.len() + u.xml.len() / 4 + 300).sum();
    let mut out = String::with_capacity(size + 512);
    let _ = write!(out, "<GetUpdateDataResponse xmlns=\"{SERVER_SYNC_NS}\"><GetUpdateDataResult><updates>");
    // In the WSDL's order (Id, XmlUpdateBlob, FileDigestList, XmlUpdateBlobCompressed),
    // as Microsoft's own proxy types order them too.
    for u in updates {
        let _ = write!(
            out,
            "<ServerSyncUpdateData><Id><UpdateID>{}</UpdateID><RevisionNumber>{}</RevisionNumber></Id>",
            u.update_id, u.revision_number
        );
        if u.compressed.is_none() {
            asmx(&mut out, "XmlUpdateBlob", u.xml);
        }
        if !u.file_digests.is_empty() {
            out.push_str("<FileDigestList>");
            for d in &u.file_digests {
                let _ = write!(out, "<base64Binary>{d}</base64Binary>");
            }
            out.push_str("</FileDigestList>");
        }
        if let Some(c) = &u.compressed {
            let _ = write!(out, "<XmlUpdateBlobCompressed>{c}</XmlUpdateBlobCompressed>");
        }
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

/// GetDeployments (replica downstream servers): the anchors asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentsRequest {
    pub deployment_anchor: Option<String>,
    pub sync_anchor: String,
}

impl DeploymentsRequest {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let opt = |n: &str| op.child(n).filter(|c| !c.is_nil()).map(|c| c.value().to_owned()).filter(|v| !v.is_empty());
        Ok(Self {
            deployment_anchor: opt("deploymentAnchor"),
            sync_anchor: opt("syncAnchor").ok_or_else(|| DecodeError::new("syncAnchor", "is required"))?,
        })
    }
}

/// ServerSyncTargetGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    pub id: uuid::Uuid,
    /// None at the top (sent as the all-zero GUID).
    pub parent: Option<uuid::Uuid>,
    pub name: String,
    pub builtin: bool,
}

/// ServerSyncDeployment. Action: 0 Install, 1 Uninstall, 2 detect only, 3 Block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDeployment {
    pub update_id: uuid::Uuid,
    pub revision_number: i32,
    pub action: u8,
    pub admin_name: Option<String>,
    /// None = no deadline (sent as 9999-12-31T23:59:59.9999999).
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
    pub is_assigned: bool,
    pub go_live_time: chrono::DateTime<chrono::Utc>,
    pub deployment_id: uuid::Uuid,
    pub group_id: uuid::Uuid,
    pub download_priority: u8,
}

/// ServerSyncDeploymentResult.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deployments {
    pub anchor: String,
    pub groups: Vec<SyncGroup>,
    pub deployments: Vec<SyncDeployment>,
    pub dead: Vec<uuid::Uuid>,
    pub hidden: Vec<uuid::Uuid>,
    pub accepted_eulas: Vec<uuid::Uuid>,
}

const NO_DEADLINE: &str = "9999-12-31T23:59:59.9999999";

fn guids(out: &mut String, name: &str, ids: &[uuid::Uuid]) {
    if ids.is_empty() {
        let _ = write!(out, "<{name} />");
        return;
    }
    let _ = write!(out, "<{name}>");
    for id in ids {
        let _ = write!(out, "<guid>{id}</guid>");
    }
    let _ = write!(out, "</{name}>");
}

fn read_guids(e: &Element, name: &str) -> Result<Vec<uuid::Uuid>, DecodeError> {
    e.child(name)
        .map(|l| l.children.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|g| read::guid(g.value(), name))
        .collect()
}

impl Deployments {
    pub fn encode(&self) -> String {
        let mut out = format!("<GetDeploymentsResponse xmlns=\"{SERVER_SYNC_NS}\"><GetDeploymentsResult>");
        asmx(&mut out, "Anchor", &self.anchor);
        out.push_str("<Groups>");
        for g in &self.groups {
            let _ = write!(
                out,
                "<ServerSyncTargetGroup><TargetGroupID>{}</TargetGroupID><ParentGroupId>{}</ParentGroupId><Name>{}</Name><IsBuiltin>{}</IsBuiltin></ServerSyncTargetGroup>",
                g.id,
                g.parent.unwrap_or_default(),
                escape(&g.name),
                g.builtin
            );
        }
        out.push_str("</Groups>");
        if self.deployments.is_empty() {
            out.push_str("<Deployments />");
        } else {
            out.push_str("<Deployments>");
            for d in &self.deployments {
                let _ = write!(
                    out,
                    "<ServerSyncDeployment><UpdateId>{}</UpdateId><RevisionNumber>{}</RevisionNumber><Action>{}</Action>",
                    d.update_id, d.revision_number, d.action
                );
                if let Some(a) = &d.admin_name {
                    asmx(&mut out, "AdminName", a);
                }
                let deadline = d.deadline.map(datetime).unwrap_or_else(|| NO_DEADLINE.to_owned());
                let _ = write!(
                    out,
                    "<Deadline>{deadline}</Deadline><IsAssigned>{}</IsAssigned><GoLiveTime>{}</GoLiveTime><DeploymentGuid>{}</DeploymentGuid><TargetGroupId>{}</TargetGroupId><DownloadPriority>{}</DownloadPriority></ServerSyncDeployment>",
                    d.is_assigned,
                    datetime(d.go_live_time),
                    d.deployment_id,
                    d.group_id,
                    d.download_priority
                );
            }
            out.push_str("</Deployments>");
        }
        guids(&mut out, "DeadDeployments", &self.dead);
        guids(&mut out, "HiddenUpdates", &self.hidden);
        guids(&mut out, "AcceptedEulas", &self.accepted_eulas);
        out.push_str("</GetDeploymentsResult></GetDeploymentsResponse>");
        out
    }

    /// Reads a GetDeploymentsResult from any upstream.
    pub fn decode(result: &Element) -> Result<Self, DecodeError> {
        let groups = result
            .child("Groups")
            .map(|l| l.children.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|g| {
                let parent = match g.child("ParentGroupId").map(|p| p.value()).filter(|p| !p.is_empty()) {
                    None => None,
                    Some(p) => Some(read::guid(p, "Groups")?).filter(|p| !p.is_nil()),
                };
                Ok(SyncGroup {
                    id: read::guid(&read::text(g, "TargetGroupID", "Groups")?, "Groups")?,
                    parent,
                    name: read::text(g, "Name", "Groups")?,
                    builtin: read::bool_or(g, "IsBuiltin", "Groups", false)?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        let deployments = result
            .child("Deployments")
            .map(|l| l.children.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|d| {
                let path = "Deployments";
                let number = |n: &str| read::required_num::<i64>(d, n, path);
                let time = |n: &str| read::time(&read::text(d, n, path)?, path);
                let deadline = time("Deadline")?;
                Ok(SyncDeployment {
                    update_id: read::guid(&read::text(d, "UpdateId", path)?, path)?,
                    revision_number: number("RevisionNumber")? as i32,
                    action: u8::try_from(number("Action")?).map_err(|_| DecodeError::new(path, "bad Action"))?,
                    admin_name: d.child("AdminName").map(|a| a.value().to_owned()).filter(|a| !a.is_empty()),
                    deadline: Some(deadline).filter(|t| chrono::Datelike::year(t) < 9999),
                    is_assigned: read::bool_or(d, "IsAssigned", path, true)?,
                    go_live_time: time("GoLiveTime")?,
                    deployment_id: read::guid(&read::text(d, "DeploymentGuid", path)?, path)?,
                    group_id: read::guid(&read::text(d, "TargetGroupId", path)?, path)?,
                    download_priority: u8::try_from(number("DownloadPriority")?)
                        .map_err(|_| DecodeError::new(path, "bad DownloadPriority"))?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(Self {
            anchor: result.child("Anchor").map(|a| a.value().to_owned()).unwrap_or_default(),
            groups,
            deployments,
            dead: read_guids(result, "DeadDeployments")?,
            hidden: read_guids(result, "HiddenUpdates")?,
            accepted_eulas: read_guids(result, "AcceptedEulas")?,
        })
    }
}

/// DownloadFiles: the SHA-1 digests (1 to 100) a downstream server wants fetched.
pub fn decode_download_files(op: &Element) -> Result<Vec<[u8; 20]>, DecodeError> {
    use base64::Engine as _;
    let path = "fileDigestList";
    let list = op.child(path).map(|l| l.children.as_slice()).unwrap_or_default();
    if list.is_empty() || list.len() > MAX_UPDATES_PER_REQUEST {
        return Err(DecodeError::new(path, format!("1 to {MAX_UPDATES_PER_REQUEST} digests")));
    }
    list.iter()
        .map(|d| {
            base64::engine::general_purpose::STANDARD
                .decode(d.value().trim())
                .ok()
                .and_then(|v| <[u8; 20]>::try_from(v).ok())
                .ok_or_else(|| DecodeError::new(path, format!("{:?} is not a base64 SHA-1", d.value())))
        })
        .collect()
}

pub fn encode_download_files_response() -> String {
    format!("<DownloadFilesResponse xmlns=\"{SERVER_SYNC_NS}\" />")
}

/// ServerSyncUpdateFileDecryption: the keys of one revision's encrypted files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDecryption {
    pub update_id: uuid::Uuid,
    pub revision_number: i32,
    /// (base64 SHA-1, base64 key when known).
    pub files: Vec<(String, Option<String>)>,
}

pub fn encode_update_decryption_data(updates: &[FileDecryption]) -> String {
    let mut out =
        format!("<GetUpdateDecryptionDataResponse xmlns=\"{SERVER_SYNC_NS}\"><GetUpdateDecryptionDataResult>");
    if updates.is_empty() {
        out.push_str("<UpdateFileDecryptionData />");
    } else {
        out.push_str("<UpdateFileDecryptionData>");
        for u in updates {
            let _ = write!(
                out,
                "<ServerSyncUpdateFileDecryption><UpdateId><UpdateID>{}</UpdateID><RevisionNumber>{}</RevisionNumber></UpdateId><FileDecryptionData>",
                u.update_id, u.revision_number
            );
            for (digest, key) in &u.files {
                let _ = write!(out, "<ServerSyncFileDecryption><FileDigest>{}</FileDigest>", escape(digest));
                if let Some(k) = key {
                    let _ = write!(out, "<DecryptionKey>{}</DecryptionKey>", escape(k));
                }
                out.push_str("</ServerSyncFileDecryption>");
            }
            out.push_str("</FileDecryptionData></ServerSyncUpdateFileDecryption>");
        }
        out.push_str("</UpdateFileDecryptionData>");
    }
    out.push_str("</GetUpdateDecryptionDataResult></GetUpdateDecryptionDataResponse>");
    out
}

pub fn decode_update_decryption_data(result: &Element) -> Result<Vec<FileDecryption>, DecodeError> {
    let path = "UpdateFileDecryptionData";
    result
        .child(path)
        .map(|l| l.children.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let id = u.child("UpdateId").ok_or_else(|| DecodeError::new(path, "UpdateId is required"))?;
            let n = read::text(id, "RevisionNumber", path)?;
            Ok(FileDecryption {
                update_id: read::guid(&read::text(id, "UpdateID", path)?, path)?,
                revision_number: n.trim().parse().map_err(|_| DecodeError::new(path, "bad RevisionNumber"))?,
                files: u
                    .child("FileDecryptionData")
                    .map(|l| l.children.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .map(|f| {
                        Ok((
                            read::text(f, "FileDigest", path)?,
                            f.child("DecryptionKey").map(|k| k.value().to_owned()).filter(|k| !k.is_empty()),
                        ))
                    })
                    .collect::<Result<_, DecodeError>>()?,
            })
        })
        .collect()
}

/// Namespace of the Ping (IMonitorable) messages.
pub const MONITORABLE_NS: &str = "http://www.microsoft.com/SoftwareDistribution/Server/IMonitorable";

/// The health a Ping reports (MonitoredServicesResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingAnswer {
    pub success: bool,
    pub now: chrono::DateTime<chrono::Utc>,
    pub service: String,
    pub machine: String,
    pub https: bool,
    pub configuration_changed: chrono::DateTime<chrono::Utc>,
    pub database: String,
}

impl PingAnswer {
    /// In the WSDL's element order; the configuration-file fields name what this server has
    /// instead (the time its configuration last changed).
    pub fn encode(&self) -> String {
        let mut out = format!("<PingResponse xmlns=\"{MONITORABLE_NS}\"><PingResult>");
        let _ = write!(
            out,
            "<SuccessFlag>{}</SuccessFlag><ServicesTime>{}</ServicesTime>",
            self.success,
            datetime(self.now)
        );
        asmx(&mut out, "ServicesName", &self.service);
        asmx(&mut out, "ServicesMachine", &self.machine);
        let _ = write!(
            out,
            "<IsHttps>{}</IsHttps><RequestContentType>text/xml; charset=utf-8</RequestContentType>\
             <ConfigFileLastModifiedTime>{}</ConfigFileLastModifiedTime><ConfigFileNextExpirationTime>{}</ConfigFileNextExpirationTime>\
             <ConfigFileExpirationModuloInMinutes>0</ConfigFileExpirationModuloInMinutes>",
            self.https,
            datetime(self.configuration_changed),
            datetime(self.now)
        );
        asmx(&mut out, "DatabaseInfo", &self.database);
        out.push_str("</PingResult></PingResponse>");
        out
    }
}

/// ServerSyncDriverFilter of GetDriverIdList.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriverFilter {
    pub anchor: Option<String>,
    pub categories: Vec<IdAndDelta>,
    pub computer_ids: Vec<IdAndDelta>,
    /// (device hardware id, delta).
    pub pnp_hardware_ids: Vec<(String, bool)>,
}

impl DriverFilter {
    pub fn decode(op: &Element) -> Result<Self, DecodeError> {
        let f = filter_of(op)?;
        let list = |name: &str| id_and_deltas(f, name);
        let pnp = f
            .child("PnpHardwareIds")
            .ok_or_else(|| DecodeError::new("filter", "PnpHardwareIds is required"))?
            .children
            .iter()
            .map(|c| Ok((read::text(c, "Id", "filter")?, read::bool_or(c, "Delta", "filter", false)?)))
            .collect::<Result<_, DecodeError>>()?;
        Ok(Self {
            anchor: f.child("Anchor").filter(|a| !a.is_nil()).map(|a| a.value().to_owned()).filter(|a| !a.is_empty()),
            categories: list("Categories")?,
            computer_ids: list("ComputerIds")?,
            pnp_hardware_ids: pnp,
        })
    }
}

/// DriverSetAndRevisionIdList (this server keeps no driver sets: those lists are empty).
pub fn encode_driver_id_list(anchor: &str, revisions: &[(uuid::Uuid, i32)], new_sets: &[uuid::Uuid]) -> String {
    let list = encode_revision_id_list(anchor, revisions)
        .replace("GetRevisionIdListResponse", "GetDriverIdListResponse")
        .replace("GetRevisionIdListResult", "GetDriverIdListResult");
    let mut sets = String::new();
    guids(&mut sets, "NewDriverSets", new_sets);
    guids(&mut sets, "RemovedDriverSets", &[]);
    list.replace("</GetDriverIdListResult>", &format!("{sets}</GetDriverIdListResult>"))
}

/// GetDriverSetData: the driver sets asked for; absent is an error, empty is not.
pub fn decode_driver_sets(op: &Element) -> Result<Vec<uuid::Uuid>, DecodeError> {
    let list =
        op.child("driverSets").filter(|l| !l.is_nil()).ok_or_else(|| DecodeError::new("driverSets", "is required"))?;
    list.children.iter().map(|g| read::guid(g.value(), "driverSets")).collect()
}

/// ServerDriverSetData: (DriverSetId, DriverSetXml) of each set found.
pub fn encode_driver_set_data(sets: &[(uuid::Uuid, String)]) -> String {
    let mut out = format!("<GetDriverSetDataResponse xmlns=\"{SERVER_SYNC_NS}\"><GetDriverSetDataResult>");
    if sets.is_empty() {
        out.push_str("<DriverSets />");
    } else {
        out.push_str("<DriverSets>");
        for (id, xml) in sets {
            let _ = write!(out, "<ServerSyncDriverSetData><DriverSetId>{id}</DriverSetId>");
            asmx(&mut out, "DriverSetXml", xml);
            out.push_str("</ServerSyncDriverSetData>");
        }
        out.push_str("</DriverSets>");
    }
    out.push_str("</GetDriverSetDataResult></GetDriverSetDataResponse>");
    out
}

/// What a DSS sends: request bodies in the WSDL's element order (Microsoft Update wants
/// exactly that), and readers of the answers, tolerant of element order (a WSUS).
pub mod dss {
    use std::fmt::Write as _;

    use super::{DSS_AUTH_NS, IdAndDelta, Language, RevisionFilter, SERVER_SYNC_NS, identities};
    use crate::read;
    use crate::write::{datetime, escape};
    use crate::wusp::Cookie;
    use crate::{DecodeError, Element};

    /// A SOAP 1.1 request envelope around `body`.
    pub fn envelope(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"><soap:Body>{body}</soap:Body></soap:Envelope>"
        )
    }

    /// The SOAPAction of a server-sync operation.
    pub fn action(op: &str) -> String {
        format!("\"{SERVER_SYNC_NS}/{op}\"")
    }

    pub fn dss_auth_action() -> String {
        format!("\"{DSS_AUTH_NS}/GetAuthorizationCookie\"")
    }

    fn cookie(out: &mut String, name: &str, c: &Cookie) {
        let _ = write!(out, "<{name}><Expiration>{}</Expiration>", datetime(c.expiration));
        if let Some(d) = &c.encrypted_data {
            let _ = write!(out, "<EncryptedData>{}</EncryptedData>", escape(d));
        }
        let _ = write!(out, "</{name}>");
    }

    pub fn get_auth_config() -> String {
        format!("<GetAuthConfig xmlns=\"{SERVER_SYNC_NS}\" />")
    }

    pub fn get_authorization_cookie(account_name: &str, account_guid: uuid::Uuid) -> String {
        format!(
            "<GetAuthorizationCookie xmlns=\"{DSS_AUTH_NS}\"><accountName>{}</accountName><accountGuid>{account_guid}</accountGuid></GetAuthorizationCookie>",
            escape(account_name)
        )
    }

    pub fn get_cookie(plug_in_id: &str, cookie_data: &str, protocol_version: &str) -> String {
        format!(
            "<GetCookie xmlns=\"{SERVER_SYNC_NS}\"><authCookies><AuthorizationCookie><PlugInId>{}</PlugInId><CookieData>{}</CookieData></AuthorizationCookie></authCookies><protocolVersion>{}</protocolVersion></GetCookie>",
            escape(plug_in_id),
            escape(cookie_data),
            escape(protocol_version)
        )
    }

    pub fn get_config_data(c: &Cookie, anchor: Option<&str>) -> String {
        let mut out = format!("<GetConfigData xmlns=\"{SERVER_SYNC_NS}\">");
        cookie(&mut out, "cookie", c);
        if let Some(a) = anchor {
            let _ = write!(out, "<configAnchor>{}</configAnchor>", escape(a));
        }
        out.push_str("</GetConfigData>");
        out
    }

    pub fn get_revision_id_list(c: &Cookie, filter: &RevisionFilter) -> String {
        let mut out = format!("<GetRevisionIdList xmlns=\"{SERVER_SYNC_NS}\">");
        cookie(&mut out, "cookie", c);
        out.push_str("<filter>");
        if let Some(a) = &filter.anchor {
            let _ = write!(out, "<Anchor>{}</Anchor>", escape(a));
        }
        let _ = write!(out, "<GetConfig>{}</GetConfig><Get63LanguageOnly>false</Get63LanguageOnly>", filter.get_config);
        for (name, list) in [("Categories", &filter.categories), ("Classifications", &filter.classifications)] {
            if !list.is_empty() {
                let _ = write!(out, "<{name}>");
                for IdAndDelta { id, delta } in list {
                    let _ = write!(out, "<IdAndDelta><Id>{id}</Id><Delta>{delta}</Delta></IdAndDelta>");
                }
                let _ = write!(out, "</{name}>");
            }
        }
        if !filter.languages.is_empty() {
            out.push_str("<Languages>");
            for (id, delta) in &filter.languages {
                let _ = write!(out, "<LanguageAndDelta><Id>{id}</Id><Delta>{delta}</Delta></LanguageAndDelta>");
            }
            out.push_str("</Languages>");
        }
        out.push_str("</filter></GetRevisionIdList>");
        out
    }

    pub fn get_update_data(c: &Cookie, ids: &[(uuid::Uuid, i32)]) -> String {
        let mut out = format!("<GetUpdateData xmlns=\"{SERVER_SYNC_NS}\">");
        cookie(&mut out, "cookie", c);
        out.push_str("<updateIds>");
        for (id, rev) in ids {
            let _ = write!(
                out,
                "<UpdateIdentity><UpdateID>{id}</UpdateID><RevisionNumber>{rev}</RevisionNumber></UpdateIdentity>"
            );
        }
        out.push_str("</updateIds></GetUpdateData>");
        out
    }

    pub fn get_deployments(c: &Cookie, deployment_anchor: Option<&str>, sync_anchor: &str) -> String {
        let mut out = format!("<GetDeployments xmlns=\"{SERVER_SYNC_NS}\">");
        cookie(&mut out, "cookie", c);
        if let Some(a) = deployment_anchor {
            let _ = write!(out, "<deploymentAnchor>{}</deploymentAnchor>", escape(a));
        }
        let _ = write!(out, "<syncAnchor>{}</syncAnchor></GetDeployments>", escape(sync_anchor));
        out
    }

    pub fn get_update_decryption_data(c: &Cookie, ids: &[(uuid::Uuid, i32)]) -> String {
        get_update_data(c, ids).replace("GetUpdateData", "GetUpdateDecryptionData")
    }

    /// DownloadFiles for files the upstream's content service lacks (base64 SHA-1 digests).
    pub fn download_files(c: &Cookie, digests: &[String]) -> String {
        let mut out = format!("<DownloadFiles xmlns=\"{SERVER_SYNC_NS}\">");
        cookie(&mut out, "cookie", c);
        out.push_str("<fileDigestList>");
        for d in digests {
            let _ = write!(out, "<base64Binary>{}</base64Binary>", escape(d));
        }
        out.push_str("</fileDigestList></DownloadFiles>");
        out
    }

    /// The `…Result` element of a `…Response`.
    pub fn result<'a>(response: &'a Element, op: &str) -> Result<&'a Element, DecodeError> {
        let path = format!("{op}Result");
        response.child(&path).ok_or_else(|| DecodeError::new(path, "is missing"))
    }

    /// GetAuthConfig: (PlugInID, ServiceUrl) of each authorization plug-in.
    pub fn auth_plug_ins(result: &Element) -> Result<Vec<(String, String)>, DecodeError> {
        result
            .child("AuthInfo")
            .map(|a| a.children.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|p| Ok((read::text(p, "PlugInID", "AuthInfo")?, read::text(p, "ServiceUrl", "AuthInfo")?)))
            .collect()
    }

    pub fn authorization_cookie(result: &Element) -> Result<(String, String), DecodeError> {
        Ok((read::text(result, "PlugInId", "PlugInId")?, read::text(result, "CookieData", "CookieData")?))
    }

    pub fn cookie_of(result: &Element) -> Result<Cookie, DecodeError> {
        Cookie::decode(result, "Cookie")
    }

    /// ServerSyncConfigData as sent by any upstream.
    pub fn config_data(result: &Element) -> Result<super::ConfigData, DecodeError> {
        let languages = result
            .child("LanguageUpdateList")
            .map(|l| l.children.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|l| {
                let id = read::text(l, "LanguageID", "LanguageUpdateList")?;
                Ok(Language {
                    id: id.parse().map_err(|_| DecodeError::new("LanguageUpdateList", "bad LanguageID"))?,
                    short: read::text(l, "ShortLanguage", "LanguageUpdateList")?,
                    long: l.child("LongLanguage").map(|c| c.value().to_owned()).unwrap_or_default(),
                    enabled: read::bool_or(l, "Enabled", "LanguageUpdateList", false)?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(super::ConfigData {
            catalog_only_sync: read::bool_or(result, "CatalogOnlySync", "CatalogOnlySync", false)?,
            lazy_sync: read::bool_or(result, "LazySync", "LazySync", false)?,
            server_hosts_psf_files: read::bool_or(result, "ServerHostsPsfFiles", "ServerHostsPsfFiles", false)?,
            max_updates_per_request: read::opt_num(
                result,
                "MaxNumberOfUpdatesPerRequest",
                "MaxNumberOfUpdatesPerRequest",
            )?
            .unwrap_or(0),
            new_config_anchor: result.child("NewConfigAnchor").map(|c| c.value().to_owned()).unwrap_or_default(),
            languages,
            max_updates_per_decryption_request: read::opt_num(
                result,
                "MaxUpdatesPerRequestInGetUpdateDecryptionData",
                "MaxUpdatesPerRequestInGetUpdateDecryptionData",
            )?
            .unwrap_or(0),
        })
    }

    /// A RevisionIdList as received.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RevisionIdList {
        pub anchor: Option<String>,
        pub revisions: Vec<(uuid::Uuid, i32)>,
    }

    pub fn revision_id_list(result: &Element) -> Result<RevisionIdList, DecodeError> {
        Ok(RevisionIdList {
            anchor: result.child("Anchor").map(|a| a.value().to_owned()).filter(|a| !a.is_empty()),
            revisions: identities(result.child("NewRevisions"), "NewRevisions")?,
        })
    }
}
