//! MS-WSUSSS as the upstream server: DssAuthWebService and ServerSyncWebService, answered
//! in the shape of a real WSUS (anchors `counter,yyyy-MM-dd HH:mm:ss.fff`, all-or-nothing
//! GetUpdateData, plain XmlUpdateBlob documents).

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use uuid::Uuid;
use wsus_cookie::{AuthorizationCookie, ClientCookie, Purpose};
use wsus_soap::wsusss::{
    self, ConfigData, DssAuthorizationRequest, GetCookieRequest, Language, RevisionFilter, UpdateData,
};
use wsus_soap::wusp::Cookie;
use wsus_soap::{Element, ErrorCode};

use wsus_store::settings::ContentMode;

use crate::Gateway;
use crate::client::{b64, server};
use crate::soap::{Context, OpError, OpResult, fault, invalid};

/// A downstream server's Cookie lives this long (the most MS-WSUSSS allows).
const COOKIE_LIFETIME: chrono::Duration = chrono::Duration::minutes(240);
/// An authorization cookie older than this is refused; the DSS authorizes again.
const AUTHORIZATION_LIFETIME: chrono::Duration = chrono::Duration::hours(24);
/// What a real WSUS announces for GetUpdateDecryptionData.
const MAX_UPDATES_PER_DECRYPTION_REQUEST: u32 = 100;

fn store_error(e: wsus_store::StoreError) -> OpError {
    fault("store", &e)
}

/// Whether `WSUS_DSS_ALLOWLIST` (GUIDs or FQDNs, empty = anyone) admits this server.
fn allowed(gw: &Gateway, server_id: &str, fqdn: &str) -> bool {
    let list = &gw.config.dss_allowlist;
    list.is_empty()
        || list.iter().any(|a| {
            a.eq_ignore_ascii_case(fqdn)
                || Uuid::parse_str(a).ok().zip(Uuid::parse_str(server_id).ok()).is_some_and(|(a, s)| a == s)
        })
}

/// The WSUS anchor format: catalog version, then the time it was taken.
pub fn format_anchor(version: i64, at: DateTime<Utc>) -> String {
    format!("{version},{}", at.format("%Y-%m-%d %H:%M:%S%.3f"))
}

/// The catalog version of an anchor we issued; anything else is refused, as WSUS does.
pub fn parse_anchor(anchor: &str) -> Option<i64> {
    let (version, at) = anchor.split_once(',')?;
    NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    version.parse().ok().filter(|v: &i64| *v >= 0)
}

pub fn get_auth_config(gw: &Gateway) -> OpResult {
    let server = server(gw)?;
    Ok(wsusss::encode_auth_config(server.identity.created_at))
}

pub async fn get_authorization_cookie(gw: &Gateway, op: &Element) -> OpResult {
    let req = DssAuthorizationRequest::decode(op).map_err(invalid)?;
    let id = req.account_guid.to_string();
    if !allowed(gw, &id, &req.account_name) {
        tracing::info!(server_id = %id, fqdn = req.account_name, "downstream server not in WSUS_DSS_ALLOWLIST");
        return Err((ErrorCode::InvalidAuthorizationCookie, "not an allowed downstream server".to_owned()));
    }
    let server = server(gw)?;
    wsus_store::uss::record_downstream_server(&gw.pool, req.account_guid, &req.account_name)
        .await
        .map_err(store_error)?;
    let cookie = AuthorizationCookie {
        server_id: server.identity.server_id,
        client_id: id,
        dns_name: req.account_name,
        target_group_name: None,
        issued_at: Utc::now().timestamp(),
    };
    let sealed = cookie.seal_for(&server.keys, Purpose::ServerAuthorization);
    Ok(wsusss::encode_dss_authorization_cookie(&b64().encode(sealed)))
}

pub fn get_cookie(gw: &Gateway, op: &Element) -> OpResult {
    let req = GetCookieRequest::decode(op).map_err(invalid)?;
    if req.protocol_version.major != 1 {
        return Err((ErrorCode::IncompatibleProtocolVersion, format!("protocol {}", req.protocol_version)));
    }
    let server = server(gw)?;
    let [auth] = req.auth_cookies.as_slice() else {
        return Err((ErrorCode::InvalidParameters, "authCookies".to_owned()));
    };
    let bad_auth = || (ErrorCode::InvalidAuthorizationCookie, "authCookies".to_owned());
    let sealed = b64().decode(auth.trim()).map_err(|_| bad_auth())?;
    let auth =
        AuthorizationCookie::open_for(&server.keys, Purpose::ServerAuthorization, &sealed).map_err(|_| bad_auth())?;
    let fresh = DateTime::from_timestamp(auth.issued_at, 0).is_some_and(|t| Utc::now() - t < AUTHORIZATION_LIFETIME);
    if auth.server_id != server.identity.server_id || !fresh || !allowed(gw, &auth.client_id, &auth.dns_name) {
        return Err(bad_auth());
    }
    let cookie = ClientCookie {
        server_id: server.identity.server_id,
        client_id: auth.client_id,
        target_group_name: None,
        protocol_version: (req.protocol_version.major, req.protocol_version.minor),
        config_last_change: 0,
        expires_at: (Utc::now() + COOKIE_LIFETIME).timestamp(),
        ..Default::default()
    };
    let sealed = Cookie {
        expiration: DateTime::from_timestamp(cookie.expires_at, 0).unwrap_or_else(Utc::now),
        encrypted_data: Some(b64().encode(cookie.seal_for(&server.keys, Purpose::Server))),
    };
    Ok(wsusss::encode_cookie("GetCookie", &sealed))
}

/// Whether a server admitted before is still on `WSUS_DSS_ALLOWLIST`, by its GUID or by
/// the name it authorised with. Checked on every call, so taking a server off the list
/// shuts it out at once rather than when its cookie expires.
pub(crate) async fn still_allowed(gw: &Gateway, server_id: &str) -> Result<(), OpError> {
    if gw.config.dss_allowlist.is_empty() || allowed(gw, server_id, "") {
        return Ok(());
    }
    let fqdn = match Uuid::parse_str(server_id) {
        Ok(id) => wsus_store::uss::downstream_server_fqdn(&gw.pool, id).await.map_err(store_error)?,
        Err(_) => None,
    };
    if fqdn.is_some_and(|f| !f.is_empty() && allowed(gw, server_id, &f)) {
        return Ok(());
    }
    tracing::info!(server_id, "downstream server no longer in WSUS_DSS_ALLOWLIST");
    // InvalidCookie sends it back to DssAuth, which refuses it by name.
    Err((ErrorCode::InvalidCookie, "not an allowed downstream server".to_owned()))
}

/// The downstream server a request's `cookie` names.
async fn authenticate(gw: &Gateway, op: &Element) -> Result<ClientCookie, OpError> {
    let bad = || (ErrorCode::InvalidCookie, String::new());
    let cookie = wsus_soap::wusp::request_cookie_named(op, "cookie").map_err(|_| bad())?;
    let server = server(gw)?;
    let sealed = b64().decode(cookie.encrypted_data.as_deref().unwrap_or_default().trim()).map_err(|_| bad())?;
    let cookie = ClientCookie::open_for(&server.keys, Purpose::Server, &sealed).map_err(|_| bad())?;
    if cookie.server_id != server.identity.server_id {
        return Err((ErrorCode::ServerChanged, String::new()));
    }
    // MS-WSUSSS 2.2.9.3 has no CookieExpired (that is MS-WUSP's): an expired cookie is
    // InvalidCookie, on which a downstream server authorizes again.
    if cookie.expires_at < Utc::now().timestamp() {
        return Err((ErrorCode::InvalidCookie, "cookie expired".to_owned()));
    }
    still_allowed(gw, &cookie.client_id).await?;
    Ok(cookie)
}

pub async fn get_config_data(gw: &Gateway, op: &Element) -> OpResult {
    authenticate(gw, op).await?;
    let since = match op.child("configAnchor").map(Element::value).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(parse_anchor(a).ok_or((ErrorCode::InvalidParameters, "configAnchor".to_owned()))?),
    };
    let now = wsus_store::catalog::version(&gw.pool).await.map_err(store_error)?;
    let languages = wsus_store::uss::languages(&gw.pool, since).await.map_err(store_error)?;
    // This server's content mode: a catalog-only server sends its downstreams to MUUrl.
    let mode = wsus_store::settings::content_mode(&gw.pool).await.map_err(store_error)?;
    Ok(ConfigData {
        catalog_only_sync: mode == ContentMode::CatalogOnly,
        lazy_sync: mode == ContentMode::Lazy,
        server_hosts_psf_files: false,
        max_updates_per_request: wsusss::MAX_UPDATES_PER_REQUEST as u32,
        new_config_anchor: format_anchor(now.version, Utc::now()),
        languages: languages
            .into_iter()
            .map(|(id, short, long, enabled)| Language { id, short, long, enabled })
            .collect(),
        max_updates_per_decryption_request: MAX_UPDATES_PER_DECRYPTION_REQUEST,
    }
    .encode())
}

/// The revisions a filter selects.
#[derive(Debug, PartialEq, Eq)]
pub struct RevisionQuery {
    /// Changed after this catalog version; None = all.
    pub since: Option<i64>,
    /// The categories and classifications a revision must both match; None = any.
    pub lists: Option<RevisionLists>,
}

/// A filter's lists, and which of their ids ask for every revision (`Delta` false).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RevisionLists {
    pub products: Vec<Uuid>,
    pub classifications: Vec<Uuid>,
    pub whole_products: Vec<Uuid>,
    pub whole_classifications: Vec<Uuid>,
}

/// Which revisions a filter asks for: None = nothing (one list alone, which a real WSUS
/// answers with an empty list). With an anchor, each product and classification is a
/// delta or whole as its own `Delta` says (MS-WSUSSS 3.1.4.5.3.3, 3.1.4.5.3.5): all
/// Delta true gives the changes, all false everything again (as observed on a real
/// WSUS), and a product a downstream just added (false among trues) all its revisions.
pub fn revision_query(filter: &RevisionFilter, since: Option<i64>) -> Option<RevisionQuery> {
    if filter.get_config {
        return Some(RevisionQuery { since, lists: None });
    }
    let ids = |l: &[wsusss::IdAndDelta], whole: bool| -> Vec<Uuid> {
        l.iter().filter(|c| !whole || !c.delta).map(|c| c.id).collect()
    };
    match (filter.categories.is_empty(), filter.classifications.is_empty()) {
        (false, true) | (true, false) => None,
        (true, true) => Some(RevisionQuery { since, lists: None }),
        (false, false) => Some(RevisionQuery {
            since,
            lists: Some(RevisionLists {
                products: ids(&filter.categories, false),
                classifications: ids(&filter.classifications, false),
                whole_products: if since.is_some() { ids(&filter.categories, true) } else { Vec::new() },
                whole_classifications: if since.is_some() { ids(&filter.classifications, true) } else { Vec::new() },
            }),
        }),
    }
}

pub async fn get_revision_id_list(gw: &Gateway, op: &Element) -> OpResult {
    authenticate(gw, op).await?;
    let filter = RevisionFilter::decode(op).map_err(invalid)?;
    let since = match filter.anchor.as_deref() {
        None => None,
        Some(a) => Some(parse_anchor(a).ok_or((ErrorCode::InvalidParameters, "filter".to_owned()))?),
    };
    // The anchor is taken before reading: a change committed meanwhile is sent again next
    // time rather than lost.
    let now = wsus_store::catalog::version(&gw.pool).await.map_err(store_error)?;
    let anchor = format_anchor(now.version, Utc::now());
    let revisions = match revision_query(&filter, since) {
        None => Vec::new(),
        Some(q) if filter.get_config => {
            wsus_store::uss::configuration_revisions(&gw.pool, q.since).await.map_err(store_error)?
        }
        Some(q) => {
            let lists = q.lists.as_ref().map(|l| wsus_store::uss::UpdateFilter {
                products: &l.products,
                classifications: &l.classifications,
                whole_products: &l.whole_products,
                whole_classifications: &l.whole_classifications,
            });
            wsus_store::uss::update_revisions(&gw.pool, q.since, lists).await.map_err(store_error)?
        }
    };
    Ok(wsusss::encode_revision_id_list(&anchor, &revisions))
}

/// GetUpdateData. A file's MUUrl is its Microsoft Update address, or, for a file this
/// server got without one (an import), its address here, so a downstream server set to
/// fetch from Microsoft Update still finds it.
pub async fn get_update_data(gw: &Gateway, ctx: &Context, op: &Element) -> OpResult {
    authenticate(gw, op).await?;
    let ids = wsusss::decode_update_ids(op).map_err(invalid)?;
    // All or nothing: an unknown revision fails the whole request, as on a real WSUS.
    let Some(docs) = wsus_store::uss::documents(&gw.pool, &ids).await.map_err(store_error)? else {
        return Err((ErrorCode::InternalServerError, String::new()));
    };
    // Large documents go out compressed, as from a real WSUS; compressing is CPU work.
    let compressed: Vec<Option<String>> = {
        let xmls: Vec<Option<String>> =
            docs.iter().map(|d| wsusss::should_compress(&d.xml).then(|| d.xml.clone())).collect();
        tokio::task::spawn_blocking(move || {
            xmls.into_iter().map(|x| x.map(|x| wsus_metadata::compress_blob(&x))).collect()
        })
        .await
        .map_err(|e| (ErrorCode::InternalServerError, format!("compressing: {e}")))?
    };
    let mut urls: Vec<(String, Option<String>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let updates: Vec<UpdateData<'_>> = docs
        .iter()
        .zip(compressed)
        .map(|(d, compressed)| UpdateData {
            update_id: d.update_id,
            revision_number: d.revision_number,
            file_digests: d
                .files
                .iter()
                .map(|f| {
                    let digest = b64().encode(&f.sha1);
                    if seen.insert(f.sha1.clone()) {
                        let here = <[u8; 20]>::try_from(f.sha1.as_slice())
                            .ok()
                            .map(|sha1| crate::client::content_url(gw, ctx, &sha1, &f.file_name));
                        urls.push((digest.clone(), f.mu_url.clone().or(here)));
                    }
                    digest
                })
                .collect(),
            xml: &d.xml,
            compressed,
        })
        .collect();
    Ok(wsusss::encode_update_data(&updates, &urls))
}

/// Hard caps on GetDriverIdList lists (this server announces 0, "no stated limit", as
/// WSUS does; these keep a request bounded anyway).
const MAX_DRIVER_FILTER_IDS: usize = 1000;

/// GetDriverIdList: the driver revisions for the device hardware ids asked about. This
/// server keeps no driver sets (computer-model targeting documents), so those lists are
/// empty and ComputerIds select nothing.
pub async fn get_driver_id_list(gw: &Gateway, op: &Element) -> OpResult {
    authenticate(gw, op).await?;
    let filter = wsusss::DriverFilter::decode(op).map_err(invalid)?;
    if filter.computer_ids.len() > MAX_DRIVER_FILTER_IDS || filter.pnp_hardware_ids.len() > MAX_DRIVER_FILTER_IDS {
        return Err((ErrorCode::InvalidParameters, "filter".to_owned()));
    }
    let since = match filter.anchor.as_deref() {
        None => None,
        Some(a) => Some(parse_anchor(a).ok_or((ErrorCode::InvalidParameters, "filter".to_owned()))?),
    };
    let now = wsus_store::catalog::version(&gw.pool).await.map_err(store_error)?;
    let anchor = format_anchor(now.version, Utc::now());
    let (delta, all): (Vec<_>, Vec<_>) = filter.pnp_hardware_ids.iter().partition(|(_, d)| *d && since.is_some());
    let ids = |v: Vec<&(String, bool)>| v.into_iter().map(|(i, _)| i.clone()).collect::<Vec<_>>();
    let categories: Vec<Uuid> = filter.categories.iter().map(|c| c.id).collect();
    let revisions = wsus_store::uss::driver_revisions(&gw.pool, since, &ids(all), &ids(delta), &categories)
        .await
        .map_err(store_error)?;
    Ok(wsusss::encode_driver_id_list(&anchor, &revisions, &[]))
}

/// GetDriverSetData: no driver sets are kept here, so every requested set is unknown and
/// the answer lists none.
pub async fn get_driver_set_data(gw: &Gateway, op: &Element) -> OpResult {
    authenticate(gw, op).await?;
    let sets = wsusss::decode_driver_sets(op).map_err(invalid)?;
    if sets.len() > MAX_DRIVER_FILTER_IDS {
        return Err((ErrorCode::TooManyIds, "driverSets".to_owned()));
    }
    Ok(wsusss::encode_driver_set_data(&[]))
}

/// Ping (IMonitorable): whether this server and its database answer.
pub async fn ping(gw: &Gateway) -> OpResult {
    let server = server(gw)?;
    let database = wsus_store::catalog::version(&gw.pool).await;
    Ok(wsusss::PingAnswer {
        success: database.is_ok(),
        now: Utc::now(),
        service: "ServerSyncWebService".to_owned(),
        machine: server.identity.fqdn.clone(),
        https: false,
        configuration_changed: database.map(|v| v.changed_at).unwrap_or(server.identity.created_at),
        database: "PostgreSQL".to_owned(),
    }
    .encode())
}

/// GetUpdateDecryptionData: the keys of the encrypted files of these revisions.
pub async fn get_update_decryption_data(gw: &Gateway, op: &Element) -> OpResult {
    authenticate(gw, op).await?;
    let ids = wsusss::decode_update_ids(op).map_err(invalid)?;
    let rows = wsus_store::uss::decryption_data(&gw.pool, &ids).await.map_err(store_error)?;
    let mut out: Vec<wsusss::FileDecryption> = Vec::new();
    for (update_id, revision_number, sha1, key) in rows {
        let file = (b64().encode(&sha1), key.map(|k| b64().encode(k)));
        match out.last_mut().filter(|u| (u.update_id, u.revision_number) == (update_id, revision_number)) {
            Some(u) => u.files.push(file),
            None => out.push(wsusss::FileDecryption { update_id, revision_number, files: vec![file] }),
        }
    }
    Ok(wsusss::encode_update_decryption_data(&out))
}

/// DownloadFiles: a downstream server found files missing from this content service; they
/// are queued for sync-worker to fetch from this server's own upstream. Digests this
/// catalog does not know fail the request (FileDigestsMissing, listed with `|`).
pub async fn download_files(gw: &Gateway, op: &Element) -> OpResult {
    authenticate(gw, op).await?;
    let digests = wsusss::decode_download_files(op).map_err(invalid)?;
    let raw: Vec<Vec<u8>> = digests.iter().map(|d| d.to_vec()).collect();
    let known = wsus_store::revisions::file_names(&gw.pool, &raw).await.map_err(store_error)?;
    let missing: Vec<String> =
        raw.iter().filter(|d| !known.iter().any(|(k, _)| k == *d)).map(|d| b64().encode(d)).collect();
    if !missing.is_empty() {
        return Err((ErrorCode::FileDigestsMissing, missing.join("|")));
    }
    for d in &digests {
        wsus_store::revisions::request_download(&gw.pool, d, "downstream", None).await.map_err(store_error)?;
    }
    Ok(wsusss::encode_download_files_response())
}

/// GetDeployments (replica downstream servers): every group, the approvals changed
/// between the two anchors, those removed, every declined update and accepted EULA.
pub async fn get_deployments(gw: &Gateway, op: &Element) -> OpResult {
    authenticate(gw, op).await?;
    let req = wsusss::DeploymentsRequest::decode(op).map_err(invalid)?;
    let bad = |p: &str| (ErrorCode::InvalidParameters, p.to_owned());
    let upto = parse_anchor(&req.sync_anchor).ok_or_else(|| bad("syncAnchor"))?;
    let after = match req.deployment_anchor.as_deref() {
        None => None,
        Some(a) => Some(parse_anchor(a).ok_or_else(|| bad("deploymentAnchor"))?),
    };
    let pool = &gw.pool;
    let groups = wsus_store::approvals::groups(pool).await.map_err(store_error)?;
    let deployments = wsus_store::uss::deployments_between(pool, after, upto).await.map_err(store_error)?;
    let dead = wsus_store::uss::dead_deployments_between(pool, after, upto).await.map_err(store_error)?;
    let hidden = wsus_store::approvals::declined(pool).await.map_err(store_error)?;
    let accepted_eulas = wsus_store::approvals::accepted_eulas(pool).await.map_err(store_error)?;
    Ok(wsusss::Deployments {
        anchor: req.sync_anchor.clone(),
        groups: groups
            .into_iter()
            .map(|g| wsusss::SyncGroup {
                id: g.group_id,
                parent: g.parent_group_id,
                name: g.name,
                builtin: g.is_builtin,
            })
            .collect(),
        deployments: deployments
            .into_iter()
            .map(|d| wsusss::SyncDeployment {
                update_id: d.update_id,
                revision_number: d.revision_number,
                // Optional installs travel as unassigned installs, as WSUS sends them.
                action: match d.action.as_str() {
                    "Uninstall" => 1,
                    "PreDeploymentCheck" => 2,
                    "Block" => 3,
                    _ => 0,
                },
                is_assigned: d.is_assigned && d.action != "OptionalInstall",
                admin_name: d.admin_name,
                deadline: d.deadline,
                go_live_time: d.go_live_time,
                deployment_id: d.deployment_id,
                group_id: d.group_id,
                download_priority: d.download_priority.clamp(1, 3) as u8,
            })
            .collect(),
        dead,
        hidden,
        accepted_eulas,
    }
    .encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsus_soap::wsusss::IdAndDelta;

    #[test]
    fn anchors_round_trip_in_the_wsus_format() {
        let at = DateTime::parse_from_rfc3339("2026-10-04T16:09:27.167Z").unwrap().with_timezone(&Utc);
        assert_eq!(format_anchor(9438, at), "9438,2026-10-04 16:09:27.167");
        assert_eq!(parse_anchor("9438,2026-10-04 16:09:27.167"), Some(9438));
        for bad in ["garbage", "9438", "x,2026-10-04 16:09:27.167", "9438,yesterday", "-1,2026-10-04 16:09:27.167"] {
            assert_eq!(parse_anchor(bad), None, "{bad}");
        }
    }

    fn filter(categories: &[bool], classifications: &[bool]) -> RevisionFilter {
        let ids = |d: &[bool]| d.iter().map(|&delta| IdAndDelta { id: Uuid::new_v4(), delta }).collect();
        RevisionFilter { categories: ids(categories), classifications: ids(classifications), ..Default::default() }
    }

    #[test]
    fn delta_is_per_product_and_classification() {
        // One list alone: nothing.
        assert!(revision_query(&filter(&[true], &[]), Some(5)).is_none());
        assert!(revision_query(&filter(&[], &[false]), None).is_none());
        // No lists: everything, since the anchor.
        assert_eq!(revision_query(&filter(&[], &[]), Some(5)), Some(RevisionQuery { since: Some(5), lists: None }));
        let whole = |f: &RevisionFilter, since| {
            let l = revision_query(f, since).unwrap().lists.unwrap();
            (l.whole_products.len(), l.whole_classifications.len())
        };
        // All Delta true: the changes since the anchor (observed: 0 with no change).
        let all_delta = filter(&[true, true], &[true]);
        assert_eq!(revision_query(&all_delta, Some(5)).unwrap().since, Some(5));
        assert_eq!(whole(&all_delta, Some(5)), (0, 0));
        // All Delta false: everything again (observed: all 24,509 again).
        assert_eq!(whole(&filter(&[false, false], &[false]), Some(5)), (2, 1));
        // A product added (Delta false among trues): that product whole, the rest a delta.
        let added = filter(&[true, false], &[true, true]);
        assert_eq!(whole(&added, Some(5)), (1, 0));
        let l = revision_query(&added, Some(5)).unwrap().lists.unwrap();
        assert_eq!(l.whole_products, vec![added.categories[1].id]);
        assert_eq!((l.products.len(), l.classifications.len()), (2, 2));
        // No anchor: everything, whatever Delta says.
        assert_eq!(revision_query(&added, None).unwrap().since, None);
        // GetConfig ignores the lists.
        let config = RevisionFilter { get_config: true, ..filter(&[true], &[]) };
        assert_eq!(revision_query(&config, Some(7)), Some(RevisionQuery { since: Some(7), lists: None }));
    }
}
