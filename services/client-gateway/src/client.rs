//! The Client web service (MS-WUSP 3.1.5): configuration, cookies, registration,
//! SyncUpdates and GetExtendedUpdateInfo.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use wsus_cookie::{AuthorizationCookie, ClientCookie};
use wsus_soap::wusp::{
    self, ComputerInfo, Cookie, DeploymentInfo, GetConfigRequest, GetCookieRequest, GetExtendedUpdateInfoRequest,
    SyncInfo, SyncUpdatesRequest, UpdateInfo, encode_cookie_response, encode_empty_response,
    encode_extended_update_info,
};
use wsus_soap::{Element, ErrorCode};

use crate::Gateway;
use crate::seen_requests::{ScanKey, Seen};
use crate::soap::{Context, OpError, OpResult, fault, invalid, rpc_fault};
use crate::state::Server;

/// How long a cookie lives, as on the real server.
const COOKIE_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

pub(crate) fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn busy(what: &str) -> OpError {
    (ErrorCode::ServerBusy, format!("{what} not loaded yet"))
}

/// This server's identity and keys, once loaded (ServerBusy before).
pub(crate) fn server(gw: &Gateway) -> Result<std::sync::Arc<Server>, OpError> {
    gw.memory.server.load_full().ok_or_else(|| busy("server identity"))
}

pub fn get_config(gw: &Gateway, op: &Element) -> OpResult {
    let req = GetConfigRequest::decode(op).map_err(invalid)?;
    tracing::debug!(client_protocol = %req.protocol_version, "GetConfig");
    // The same answer for every client protocol version, as on the real server.
    let config = gw.memory.client_config.load_full().ok_or_else(|| busy("configuration"))?;
    Ok(config.encode_response())
}

fn config(gw: &Gateway) -> Result<std::sync::Arc<wusp::Config>, OpError> {
    gw.memory.client_config.load_full().ok_or_else(|| busy("configuration"))
}

fn config_last_change(gw: &Gateway) -> Result<DateTime<Utc>, OpError> {
    Ok(config(gw)?.last_change)
}

fn seal(server: &Server, c: &ClientCookie) -> Cookie {
    Cookie {
        expiration: DateTime::from_timestamp(c.expires_at, 0).unwrap_or_else(Utc::now),
        encrypted_data: Some(b64().encode(c.seal(&server.keys))),
    }
}

/// Opens and checks a client's cookie: ours, this server's, not expired.
pub fn open_cookie(gw: &Gateway, cookie: &Cookie) -> Result<(std::sync::Arc<Server>, ClientCookie), OpError> {
    let server = server(gw)?;
    let invalid_cookie = || (ErrorCode::InvalidCookie, "cookie".to_owned());
    let data = cookie.encrypted_data.as_deref().ok_or_else(invalid_cookie)?;
    let bytes = b64().decode(data).map_err(|_| invalid_cookie())?;
    let c = ClientCookie::open(&server.keys, &bytes).map_err(|_| invalid_cookie())?;
    if c.server_id != server.identity.server_id {
        return Err((ErrorCode::ServerChanged, "cookie".to_owned()));
    }
    if Utc::now().timestamp() > c.expires_at {
        return Err((ErrorCode::CookieExpired, "cookie".to_owned()));
    }
    Ok((server, c))
}

pub fn get_cookie(gw: &Gateway, op: &Element) -> OpResult {
    let req = GetCookieRequest::decode(op).map_err(invalid)?;
    let server = server(gw)?;
    let [auth] = req.auth_cookies.as_slice() else {
        return Err((ErrorCode::InvalidAuthorizationCookie, "authCookies".to_owned()));
    };
    let bad_auth = || (ErrorCode::InvalidAuthorizationCookie, "authCookies".to_owned());
    let sealed = b64().decode(auth.cookie_data.trim()).map_err(|_| bad_auth())?;
    let auth = AuthorizationCookie::open(&server.keys, &sealed).map_err(|_| bad_auth())?;
    if auth.server_id != server.identity.server_id {
        return Err(bad_auth());
    }
    let config = config(gw)?;
    if req.last_change.is_some_and(|l| !config.is_current(l)) {
        return Err((ErrorCode::ConfigChanged, "lastChange".to_owned()));
    }
    let last_change = config.last_change;
    // Carry what the server knew of this client over from an old cookie of ours.
    let old = req.old_cookie.as_ref().filter(|c| c.encrypted_data.is_some()).map(|c| {
        let bytes = b64().decode(c.encrypted_data.as_deref().unwrap_or_default()).map_err(|_| ())?;
        ClientCookie::open(&server.keys, &bytes).map_err(|_| ())
    });
    let old = match old {
        None => None,
        Some(Err(())) => return Err((ErrorCode::InvalidCookie, "oldCookie".to_owned())),
        Some(Ok(c)) if c.server_id != server.identity.server_id => {
            return Err((ErrorCode::ServerChanged, "oldCookie".to_owned()));
        }
        Some(Ok(c)) => Some(c).filter(|c| c.client_id == auth.client_id),
    };
    let cookie = ClientCookie {
        server_id: server.identity.server_id,
        client_id: auth.client_id,
        target_group_name: auth.target_group_name,
        protocol_version: (req.protocol_version.major, req.protocol_version.minor),
        config_last_change: last_change.timestamp_micros(),
        expires_at: (Utc::now() + COOKIE_LIFETIME).timestamp(),
        last_sync: old.as_ref().map_or(0, |o| o.last_sync),
        last_driver_sync: old.as_ref().map_or(0, |o| o.last_driver_sync),
        catalog_version: old.as_ref().map_or(0, |o| o.catalog_version),
        groups_digest: old.as_ref().map_or(0, |o| o.groups_digest),
        filter_version: old.as_ref().map_or(0, |o| o.filter_version),
        filter_digest: old.as_ref().map_or(0, |o| o.filter_digest),
        driver_version: old.as_ref().map_or(0, |o| o.driver_version),
        driver_digest: old.as_ref().map_or(0, |o| o.driver_digest),
        // A scan begins here: its later calls join this call's trace.
        trace: wsus_telemetry::span_ids(&tracing::Span::current()).unwrap_or((0, 0)),
    };
    Ok(encode_cookie_response("GetCookie", &seal(&server, &cookie)))
}

pub async fn register_computer(gw: &Gateway, ctx: &Context, op: &Element) -> OpResult {
    let (_, cookie) = open_cookie(gw, &wusp::request_cookie(op).map_err(invalid)?)?;
    let info = ComputerInfo::decode(op).map_err(invalid)?;
    let settings = gw.memory.settings.load_full().ok_or_else(|| busy("configuration"))?;
    if !settings.is_registration_required {
        return Err((ErrorCode::RegistrationNotRequired, "computerInfo".to_owned()));
    }
    let computer = wsus_rpc::reporting::ComputerRegistration {
        computer_id: cookie.client_id.clone(),
        dns_name: info.dns_name,
        ip_address: ctx.client_address.map(|a| a.to_string()),
        os_major_version: info.os_major_version,
        os_minor_version: info.os_minor_version,
        os_build_number: info.os_build_number,
        os_service_pack_major_number: info.os_service_pack_major_number.map(i32::from),
        os_service_pack_minor_number: info.os_service_pack_minor_number.map(i32::from),
        os_locale: info.os_locale,
        os_description: info.os_description,
        suite_mask: info.suite_mask.map(i32::from),
        old_product_type: info.old_product_type.map(i32::from),
        new_product_type: info.new_product_type,
        system_metrics: info.system_metrics,
        processor_architecture: info.processor_architecture,
        computer_manufacturer: info.computer_manufacturer,
        computer_model: info.computer_model,
        bios_name: info.bios_name,
        bios_version: info.bios_version,
        bios_release_date: info.bios_release_date.map(wsus_rpc::timestamp),
        firmware_version: info.firmware_version,
        oem: info.oem,
        device_type: info.device_type,
        mobile_operator: info.mobile_operator,
        client_version: info.client_version,
        requested_target_group_names: requested_group_names(cookie.target_group_name.as_deref()),
        registered_at: Some(wsus_rpc::timestamp(Utc::now())),
        ..Default::default()
    };
    let mut reporting = gw.reporting.clone();
    // Acknowledged only once durable; if reporting cannot say so, the client retries.
    let request = wsus_rpc::reporting::RegisterComputerRequest { computer: Some(computer) };
    match reporting.register_computer(request).await {
        Ok(_) => {
            gw.memory.mark_registered(&cookie.client_id);
            Ok(encode_empty_response("RegisterComputer"))
        }
        Err(status) => Err(rpc_fault("registration not stored", &status)),
    }
}

/// StartCategoryScan (MS-WUSP 3.1.5.6): which of the requested category groups the server
/// can scan by. No cookie.
pub fn start_category_scan(gw: &Gateway, op: &Element) -> OpResult {
    let requested = wusp::decode_start_category_scan(op).map_err(invalid)?;
    let catalog = gw.memory.catalog.load_full().ok_or_else(|| busy("catalog"))?;
    let mut groups: std::collections::BTreeMap<i32, Vec<uuid::Uuid>> = std::collections::BTreeMap::new();
    for (group, id) in requested {
        groups.entry(group).or_default().push(id);
    }
    let (mut preferred, mut in_error) = (Vec::new(), Vec::new());
    for ids in groups.values() {
        let types: Vec<Option<&str>> = ids.iter().map(|id| catalog.category_type(*id)).collect();
        if types.iter().any(Option::is_none) {
            in_error.extend(ids.iter().zip(&types).filter(|(_, t)| t.is_none()).map(|(id, _)| *id));
            continue;
        }
        let product = ids.iter().zip(&types).find(|(_, t)| **t == Some("Product")).map(|(id, _)| *id);
        let shape_ok = match types.as_slice() {
            [Some("Product")] => true,
            [a, b] => matches!(
                (*a, *b),
                (Some("Product"), Some("UpdateClassification")) | (Some("UpdateClassification"), Some("Product"))
            ),
            _ => false,
        };
        match (shape_ok, product) {
            (true, Some(p)) if !preferred.contains(&p) => preferred.push(p),
            (true, _) => {}
            // Any other shape: the scan cannot be narrowed.
            (false, _) => {
                preferred.clear();
                break;
            }
        }
    }
    Ok(wusp::encode_start_category_scan(&preferred, &in_error))
}

/// A stable digest of a set of ids (FNV-1a over the sorted ids; never 0, which means "not
/// recorded").
fn digest(ids: &[uuid::Uuid]) -> i64 {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sorted.iter().flat_map(|g| g.as_bytes()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    if h == 0 { 1 } else { h as i64 }
}

/// The group names a client asks for: the TargetGroup policy may name several, separated
/// by semicolons ("If the intranet Microsoft update service supports multiple target
/// groups, this policy can specify multiple group names separated by semicolons",
/// Windows' "Enable client-side targeting" policy).
pub(crate) fn requested_group_names(target_group_name: Option<&str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    target_group_name
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.len() <= 256 && seen.insert(n.to_lowercase()))
        .take(MAX_REQUESTED_GROUPS)
        .map(str::to_owned)
        .collect()
}

/// The most groups a client may ask to be in (SimpleAuth bounds the names' length too).
const MAX_REQUESTED_GROUPS: usize = 16;

/// The groups a client's approvals come from: with client-side targeting every named
/// group that exists (when none does, Unassigned Computers, as WSUS puts it there), else
/// those the administrator put it in.
fn client_groups(gw: &Gateway, catalog: &wsus_catalog::index::CatalogIndex, cookie: &ClientCookie) -> Vec<uuid::Uuid> {
    let client_side = gw.memory.settings.load().as_ref().is_some_and(|s| s.client_side_targeting);
    let mut groups: Vec<uuid::Uuid> = if client_side {
        requested_group_names(cookie.target_group_name.as_deref())
            .iter()
            .filter_map(|n| catalog.group_named(n))
            .collect()
    } else {
        gw.memory.groups_of(&cookie.client_id)
    };
    groups.dedup();
    if groups.is_empty() {
        groups.push(wsus_store::UNASSIGNED_COMPUTERS);
    }
    groups
}

/// RefreshCache (MS-WUSP 3.1.5.8): new revision ids for what the client holds.
pub fn refresh_cache(gw: &Gateway, op: &Element) -> OpResult {
    let (_, cookie) = open_cookie(gw, &wusp::request_cookie(op).map_err(invalid)?)?;
    let ids = wusp::decode_refresh_cache(op).map_err(invalid)?;
    let catalog = gw.memory.catalog.load_full().ok_or_else(|| busy("catalog"))?;
    let identities: Vec<wsus_metadata::UpdateIdentity> = ids
        .into_iter()
        .map(|(update_id, revision_number)| wsus_metadata::UpdateIdentity { update_id, revision_number })
        .collect();
    let entries: Vec<wusp::RefreshEntry> = catalog
        .refresh(&client_groups(gw, &catalog, &cookie), &identities)
        .into_iter()
        .map(|(id, o)| wusp::RefreshEntry {
            revision_id: o.revision_id,
            update_id: id.update_id,
            revision_number: id.revision_number,
            is_leaf: o.is_leaf,
            deployment: update_info(&o).deployment,
        })
        .collect();
    Ok(wusp::encode_refresh_cache(&entries))
}

/// Where files are served: `WSUS_CONTENT_BASE_URL`, or the host the client used over
/// plain HTTP on this server's HTTP port. A real WSUS "uses SSL for metadata only, not for
/// update files", and MS-WUSP 2.1 puts content at `http://serverUrl:[contentPort]/Content`
/// whichever port the web services use (8531 with SSL, note <5>).
pub(crate) fn content_url(gw: &Gateway, ctx: &Context, sha1: &[u8; 20], file_name: &str) -> String {
    let base = gw.config.content_base_url.clone().unwrap_or_else(|| match ctx.scheme {
        "http" => format!("http://{}", ctx.host),
        _ => format!("http://{}:{}", host_name(&ctx.host), gw.config.common.http_addr.port()),
    });
    format!("{base}/Content/{}", wsus_content::relative_path(sha1, file_name))
}

/// The host of a `host[:port]` (an IPv6 literal keeps its brackets).
fn host_name(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}

/// (SHA-1 base64, URL) for stored files given as (SHA-1, file name).
fn file_locations(gw: &Gateway, ctx: &Context, files: &[(Vec<u8>, String)]) -> Vec<(String, String)> {
    files
        .iter()
        .filter_map(|(sha1, name)| {
            let sha1: [u8; 20] = sha1.as_slice().try_into().ok()?;
            Some((b64().encode(sha1), content_url(gw, ctx, &sha1, name)))
        })
        .collect()
}

/// GetFileLocations (MS-WUSP 3.1.5.10).
pub async fn get_file_locations(gw: &Gateway, ctx: &Context, op: &Element) -> OpResult {
    let (server, cookie) = open_cookie(gw, &wusp::request_cookie(op).map_err(invalid)?)?;
    let digests = wusp::decode_file_digests(op).map_err(invalid)?;
    let raw: Vec<Vec<u8>> = digests.iter().map(|d| d.to_vec()).collect();
    let names = wsus_store::revisions::file_names(&gw.pool, &raw).await.map_err(|e| fault("catalog store", &e))?;
    Ok(wusp::encode_file_locations(&file_locations(gw, ctx, &names), &seal(&server, &cookie)))
}

/// ConfigChanged when the configuration changed since the cookie was issued,
/// RegistrationRequired when the client must register and has not (MS-WUSP 3.1.5.7).
fn check_config_and_registration(
    gw: &Gateway,
    cookie: &ClientCookie,
) -> Result<std::sync::Arc<wsus_store::settings::ClientConfig>, OpError> {
    if cookie.config_last_change != config_last_change(gw)?.timestamp_micros() {
        return Err((ErrorCode::ConfigChanged, "cookie".to_owned()));
    }
    let settings = gw.memory.settings.load_full().ok_or_else(|| busy("configuration"))?;
    if settings.is_registration_required && !gw.memory.is_registered(&cookie.client_id) {
        return Err((ErrorCode::RegistrationRequired, "cookie".to_owned()));
    }
    Ok(settings)
}

pub async fn sync_updates(gw: &Gateway, ctx: &Context, op: &Element) -> OpResult {
    let opened = open_cookie(gw, &wusp::request_cookie(op).map_err(invalid)?)?;
    let req = SyncUpdatesRequest::decode(op).map_err(invalid)?;
    answer_sync_updates(gw, ctx, opened, &req, None).await
}

/// SyncUpdates of a request seen before: its ids decoded then, its scans kept.
pub async fn sync_updates_seen(
    gw: &Gateway,
    ctx: &Context,
    opened: (std::sync::Arc<Server>, ClientCookie),
    seen: &Seen,
) -> OpResult {
    answer_sync_updates(gw, ctx, opened, &seen.request, Some(seen)).await
}

async fn answer_sync_updates(
    gw: &Gateway,
    ctx: &Context,
    (server, mut cookie): (std::sync::Arc<Server>, ClientCookie),
    req: &SyncUpdatesRequest,
    seen: Option<&Seen>,
) -> OpResult {
    let settings = check_config_and_registration(gw, &cookie)?;
    let catalog = gw.memory.catalog.load_full().ok_or_else(|| busy("catalog"))?;

    let groups = client_groups(gw, &catalog, &cookie);
    let groups_digest = digest(&groups);

    if req.skip_software_sync {
        return answer_driver_sync(gw, &server, cookie, req, &catalog, &groups, groups_digest).await;
    }

    // The change marker (MS-WUSP 3.1.5.7 NewCookie): every page's ChangedUpdates covers all
    // the client holds, so every page moves the marker to the catalog it was answered
    // from, and what a page delivered is not told again on the next. A category scan
    // covers only its categories: it moves a marker of its own (for that filter and those
    // groups) and leaves the full scan's alone.
    let filtered = !req.filter_category_ids.is_empty();
    let filter_digest = digest(&[req.filter_category_ids.as_slice(), &groups].concat());
    let (since_version, groups_changed) = if filtered && cookie.filter_digest == filter_digest {
        (cookie.catalog_version.max(cookie.filter_version), false)
    } else {
        (cookie.catalog_version, cookie.groups_digest != groups_digest)
    };
    let scan_request = wsus_catalog::index::ScanRequest {
        groups: &groups,
        installed_non_leaf: &req.installed_non_leaf,
        other_cached: &req.other_cached,
        filter_categories: &req.filter_category_ids,
        // StartCategoryScan and its options need client protocol 1.7 (server 3.2).
        need_two_group_out_of_scope: req.need_two_group_out_of_scope && cookie.protocol_version >= (1, 7),
        page_size: settings.sync_updates_page_size.max(1) as usize,
        since_version,
        groups_changed,
    };
    let result = scan_or_seen(&catalog, &scan_request, seen);
    let cores = cores_of(gw, catalog.version, &result.new_updates).await?;
    if filtered {
        cookie.filter_version = catalog.version;
        cookie.filter_digest = filter_digest;
    } else {
        cookie.catalog_version = catalog.version;
        cookie.groups_digest = groups_digest;
    }
    let scan_done = !result.truncated && result.new_updates.iter().all(|u| u.is_leaf);
    if scan_done {
        cookie.last_sync = Utc::now().timestamp();
        gw.syncs.record(
            &cookie.client_id,
            ctx.client_address,
            requested_group_names(cookie.target_group_name.as_deref()),
        );
    }
    let info = SyncInfo {
        new_updates: result
            .new_updates
            .iter()
            .map(|o| UpdateInfo { core_escaped: core(&cores, o), ..update_info(o) })
            .collect(),
        out_of_scope: result.out_of_scope.clone(),
        changed: result.changed.iter().map(update_info).collect(),
        truncated: result.truncated,
        new_cookie: seal(&server, &cookie),
        deployed_out_of_scope: result.deployed_out_of_scope.clone(),
        driver_sync_not_needed: !req.filter_category_ids.is_empty(),
    };
    Ok(info.encode_response())
}

/// The driver pass of SyncUpdates (the client skips software): drivers for its devices,
/// with the cookie's driver marker moved to this catalog.
async fn answer_driver_sync(
    gw: &Gateway,
    server: &Server,
    mut cookie: ClientCookie,
    req: &SyncUpdatesRequest,
    catalog: &wsus_catalog::index::CatalogIndex,
    groups: &[uuid::Uuid],
    groups_digest: i64,
) -> OpResult {
    let devices = device_specs(req);
    let result = catalog.scan_drivers(&wsus_catalog::index::DriverScanRequest {
        groups,
        installed_non_leaf: &req.installed_non_leaf,
        cached_driver_ids: &req.cached_driver_ids,
        devices: &devices,
        computer_hardware_ids: &req.computer_hardware_ids,
        feature_score_key: req.feature_score_key.as_deref(),
        since_version: if cookie.driver_digest == groups_digest { cookie.driver_version } else { 0 },
    });
    let cores = cores_of(gw, catalog.version, &result.new_updates).await?;
    cookie.last_driver_sync = Utc::now().timestamp();
    // Each answer tells every cached driver's change: the marker moves with it.
    cookie.driver_version = catalog.version;
    cookie.driver_digest = groups_digest;
    // Hardware ids on driver deployments are understood from client protocol 1.6.
    let with_hardware_ids = cookie.protocol_version >= (1, 6);
    let info = SyncInfo {
        new_updates: result
            .new_updates
            .iter()
            .map(|o| {
                let mut info = UpdateInfo { core_escaped: core(&cores, o), ..update_info(o) };
                if !with_hardware_ids {
                    info.deployment.hardware_ids.clear();
                }
                info
            })
            .collect(),
        out_of_scope: result.out_of_scope.clone(),
        changed: result
            .changed
            .iter()
            .map(|o| {
                let mut info = update_info(o);
                if !with_hardware_ids {
                    info.deployment.hardware_ids.clear();
                }
                info
            })
            .collect(),
        truncated: false,
        new_cookie: seal(server, &cookie),
        deployed_out_of_scope: vec![],
        driver_sync_not_needed: !catalog.has_drivers(),
    };
    Ok(info.encode_response())
}

/// The request's devices as the driver scan takes them: hardware ids then compatible ids,
/// and the driver installed for each.
fn device_specs(req: &SyncUpdatesRequest) -> Vec<wsus_catalog::index::DeviceSpec> {
    req.devices
        .iter()
        .map(|d| wsus_catalog::index::DeviceSpec {
            ids: d.hardware_ids.iter().chain(&d.compatible_ids).cloned().collect(),
            installed: d.installed.as_ref().map(|i| wsus_catalog::index::InstalledDriverSpec {
                matching_id: i.matching_id.clone(),
                date: i.date,
                version: i.version,
                class: i.class.clone(),
                manufacturer: i.manufacturer.clone(),
                provider: i.provider.clone(),
                matching_computer_hwid: i.matching_computer_hwid,
                rank: i.rank,
            }),
        })
        .collect()
}

/// The software scan's result. A scan is a function of the catalog and the request: one
/// computed for the same ids, groups and change marker is answered again.
fn scan_or_seen(
    catalog: &std::sync::Arc<wsus_catalog::index::CatalogIndex>,
    scan_request: &wsus_catalog::index::ScanRequest<'_>,
    seen: Option<&Seen>,
) -> std::sync::Arc<wsus_catalog::index::ScanResult> {
    match seen {
        None => std::sync::Arc::new(catalog.scan(scan_request)),
        Some(seen) => {
            let mut sorted_groups = scan_request.groups.to_vec();
            sorted_groups.sort_unstable();
            sorted_groups.dedup();
            let key = ScanKey {
                catalog: std::sync::Arc::downgrade(catalog),
                groups: sorted_groups,
                since_version: scan_request.since_version,
                groups_changed: scan_request.groups_changed,
                two_group_out_of_scope: scan_request.need_two_group_out_of_scope,
                page_size: scan_request.page_size,
            };
            match seen.scan(&key) {
                Some(result) => result,
                None => {
                    let result = std::sync::Arc::new(catalog.scan(scan_request));
                    seen.keep_scan(key, result.clone());
                    result
                }
            }
        }
    }
}

/// The stored locales to answer with: for each requested locale its best match (exact,
/// then the language alone), and English beside them ("The service SHOULD always return
/// the EN locale extended metadata", MS-WUSP 2.2.2.2.6). The native client asks for
/// `en-US` and `en` and was answered `en` alone (captures/wsus-m0-native/flow/000015).
fn pick_locales<'a>(requested: &[String], available: &'a [String]) -> Vec<&'a String> {
    let find = |want: &str| available.iter().find(|a| a.eq_ignore_ascii_case(want));
    let mut picked: Vec<&String> = Vec::new();
    for l in requested {
        let language = l.split('-').next().unwrap_or_default();
        if let Some(a) = find(l).or_else(|| find(language))
            && !picked.contains(&a)
        {
            picked.push(a);
        }
    }
    if let Some(en) = find("en")
        && !picked.contains(&en)
    {
        picked.push(en);
    }
    picked
}

pub async fn get_extended_update_info(gw: &Gateway, ctx: &Context, op: &Element) -> OpResult {
    open_cookie(gw, &wusp::request_cookie(op).map_err(invalid)?)?;
    let req = GetExtendedUpdateInfoRequest::decode(op).map_err(invalid)?;
    let catalog = gw.memory.catalog.load_full().ok_or_else(|| busy("catalog"))?;
    // Revisions not deployed to the client (unknown, or declined) are out of scope, with
    // no fragments and no files (MS-WUSP 3.1.5.9).
    let (known, out_of_scope): (Vec<i32>, Vec<i32>) =
        req.revision_ids.iter().partition(|id| catalog.is_deployable(**id));
    let with_files = req.info_types.iter().any(|t| t == "Extended");
    extended_info(
        gw,
        ctx,
        "GetExtendedUpdateInfo",
        req.revision_ids.len(),
        &known,
        &req.info_types,
        &req.locales,
        with_files,
        &out_of_scope,
    )
    .await
}

/// GetExtendedUpdateInfo2 (MS-WUSP 3.1.5.9): the same by update identity; file
/// locations when asked for with FileUrl.
pub async fn get_extended_update_info2(gw: &Gateway, ctx: &Context, op: &Element) -> OpResult {
    open_cookie(gw, &wusp::request_cookie(op).map_err(invalid)?)?;
    let req = wusp::GetExtendedUpdateInfo2Request::decode(op).map_err(invalid)?;
    let catalog = gw.memory.catalog.load_full().ok_or_else(|| busy("catalog"))?;
    let known: Vec<i32> = req
        .update_ids
        .iter()
        .filter_map(|(u, n)| {
            catalog.revision_id_of(&wsus_metadata::UpdateIdentity { update_id: *u, revision_number: *n })
        })
        .filter(|id| catalog.is_deployable(*id))
        .collect();
    let with_files = req.info_types.iter().any(|t| t == "FileUrl" || t == "Extended");
    extended_info(
        gw,
        ctx,
        "GetExtendedUpdateInfo2",
        req.update_ids.len(),
        &known,
        &req.info_types,
        &req.locales,
        with_files,
        &[],
    )
    .await
}

/// Fragments of `known` revisions of the requested kinds (LocalizedProperties and Eula
/// in the best locale), and their file locations when `with_files`.
#[allow(clippy::too_many_arguments)]
async fn extended_info(
    gw: &Gateway,
    ctx: &Context,
    op: &str,
    requested: usize,
    known: &[i32],
    info_types: &[String],
    locales: &[String],
    with_files: bool,
    out_of_scope: &[i32],
) -> OpResult {
    let settings = gw.memory.settings.load_full().ok_or_else(|| busy("configuration"))?;
    if requested > settings.max_extended_updates_per_request as usize {
        return Err((
            ErrorCode::InvalidParameters,
            if op == "GetExtendedUpdateInfo" { "revisionIDs" } else { "updateIDs" }.to_owned(),
        ));
    }
    let kinds: Vec<&str> = info_types
        .iter()
        .filter_map(|t| match t.as_str() {
            "Core" => Some("Core"),
            "Extended" => Some("Extended"),
            "LocalizedProperties" => Some("LocalizedProperties"),
            "Eula" => Some("Eula"),
            _ => None,
        })
        .collect();
    let catalog = gw.memory.catalog.load_full().ok_or_else(|| busy("catalog"))?;
    let stored = gw.fragments.get(&gw.pool, catalog.version, known).await.map_err(|e| fault("catalog store", &e))?;
    // Grouped by fragment type, each in the order asked (the real answers list every
    // Extended fragment, then every LocalizedProperties: scan/000010, flow/000015).
    let mut updates: Vec<(i32, String)> = Vec::new();
    for kind in &kinds {
        for id in known {
            let Some(extra) = stored.get(id) else { continue };
            let mine: Vec<&(String, String, String)> = extra.fragments.iter().filter(|(k, _, _)| k == kind).collect();
            if matches!(*kind, "Core" | "Extended") {
                updates.extend(mine.first().map(|(_, _, body)| (*id, body.clone())));
            } else {
                let available: Vec<String> = mine.iter().map(|(_, l, _)| l.clone()).collect();
                for l in pick_locales(locales, &available) {
                    updates.extend(mine.iter().find(|(_, ll, _)| ll == l).map(|(_, _, body)| (*id, body.clone())));
                }
            }
        }
    }
    let mut files: Vec<(Vec<u8>, String)> = Vec::new();
    if with_files {
        files.extend(known.iter().filter_map(|id| stored.get(id)).flat_map(|extra| extra.files.iter().cloned()));
    }
    // Each file once, as the store listed them.
    files.sort();
    files.dedup();
    let locations = file_locations(gw, ctx, &files);
    let refs: Vec<(i32, &str)> = updates.iter().map(|(id, x)| (*id, x.as_str())).collect();
    Ok(encode_extended_update_info(op, &refs, &locations, out_of_scope))
}

/// SyncPrinterCatalog (MS-WUSP 3.1.5.12), used by the Add Printer wizard.
pub async fn sync_printer_catalog(gw: &Gateway, op: &Element) -> OpResult {
    let (server, cookie) = open_cookie(gw, &wusp::request_cookie(op).map_err(invalid)?)?;
    // "The server MUST check whether the configuration data ... has changed" and "SHOULD
    // check whether client registration is required" (MS-WUSP 3.1.5.12), as SyncUpdates.
    check_config_and_registration(gw, &cookie)?;
    let (installed, printers) = wusp::decode_sync_printer_catalog(op).map_err(invalid)?;
    let catalog = gw.memory.catalog.load_full().ok_or_else(|| busy("catalog"))?;
    let result = catalog.printer_catalog(&client_groups(gw, &catalog, &cookie), &installed, &printers);
    let cores = cores_of(gw, catalog.version, &result.new_updates).await?;
    let info = SyncInfo {
        new_updates: result
            .new_updates
            .iter()
            .map(|o| UpdateInfo { core_escaped: core(&cores, o), ..update_info(o) })
            .collect(),
        out_of_scope: result.out_of_scope.clone(),
        changed: vec![],
        truncated: false,
        new_cookie: seal(&server, &cookie),
        deployed_out_of_scope: vec![],
        driver_sync_not_needed: true,
    };
    Ok(info.encode_as("SyncPrinterCatalog"))
}

/// The escaped Core fragments of offered revisions, from the fragment cache.
async fn cores_of(
    gw: &Gateway,
    version: i64,
    offered: &[wsus_catalog::index::Offered],
) -> Result<std::collections::HashMap<i32, std::sync::Arc<str>>, OpError> {
    if offered.is_empty() {
        return Ok(Default::default());
    }
    let ids: Vec<i32> = offered.iter().map(|o| o.revision_id).collect();
    gw.fragments.cores(&gw.pool, version, &ids).await.map_err(|e| fault("catalog store", &e))
}

fn core<'a>(
    cores: &'a std::collections::HashMap<i32, std::sync::Arc<str>>,
    o: &wsus_catalog::index::Offered,
) -> &'a str {
    cores.get(&o.revision_id).map_or("", |c| c)
}

/// An offered revision as an UpdateInfo (without its Core fragment).
fn update_info(o: &wsus_catalog::index::Offered) -> UpdateInfo<'static> {
    UpdateInfo {
        revision_id: o.revision_id,
        deployment: DeploymentInfo {
            id: o.deployment.wire_id,
            action: o.deployment.action,
            deadline: o.deployment.deadline,
            last_change: o.deployment.last_change,
            hardware_ids: o.hardware_ids.clone(),
        },
        is_leaf: o.is_leaf,
        core_escaped: "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_groups_are_split_trimmed_and_deduplicated() {
        assert_eq!(requested_group_names(Some("Pilot; Ring1;;pilot ;RING1")), ["Pilot", "Ring1"]);
        assert!(requested_group_names(None).is_empty() && requested_group_names(Some(" ; ")).is_empty());
        let many: String = (0..100).map(|i| format!("g{i};")).collect();
        assert_eq!(requested_group_names(Some(&many)).len(), MAX_REQUESTED_GROUPS);
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("wsus.lab:8531"), "wsus.lab");
        assert_eq!(host_name("wsus.lab"), "wsus.lab");
        assert_eq!(host_name("[2001:db8::1]:8531"), "[2001:db8::1]");
        assert_eq!(host_name("[2001:db8::1]"), "[2001:db8::1]");
        assert_eq!(host_name("192.0.2.1:8531"), "192.0.2.1");
    }

    #[test]
    fn locales_fall_back_to_the_language_and_english_comes_too() {
        let available = vec!["de".to_owned(), "en".to_owned(), "pt-br".to_owned()];
        let picked = |asked: &[&str], available: &[String]| -> Vec<String> {
            let asked: Vec<String> = asked.iter().map(|s| s.to_string()).collect();
            pick_locales(&asked, available).into_iter().cloned().collect()
        };
        // The native client's request, answered with `en` alone (flow/000015).
        assert_eq!(picked(&["en-US", "en"], &available), ["en"]);
        assert_eq!(picked(&["pt-BR"], &available), ["pt-br", "en"]);
        assert_eq!(picked(&["de-AT", "de"], &available), ["de", "en"]);
        assert_eq!(picked(&["ja"], &available), ["en"]);
        assert!(picked(&["ja"], &["de".to_owned()]).is_empty());
    }
}
