//! One function a fuzz target: each feeds arbitrary bytes to a decoder that reads network
//! or file input, the way the services call it, and asserts what must hold whatever the
//! input (no panic, results within their bounds, round trips). `fuzz/` wraps each in a
//! libFuzzer target; `tests/corpora.rs` replays the committed corpora, the regressions
//! and seeds from the reference captures through the same functions in CI.

pub mod seeds;

use wsus_soap::{Element, Limits, rollup, wsusss, wusp};

/// A target: its name (the `fuzz/fuzz_targets/<name>.rs` file and corpus folder) and body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

pub const TARGETS: &[Target] = &[
    Target { name: "soap_envelope", run: soap_envelope },
    Target { name: "wusp_request", run: wusp_request },
    Target { name: "wsusss_request", run: wsusss_request },
    Target { name: "wsusss_response", run: wsusss_response },
    Target { name: "update_xml", run: update_xml },
    Target { name: "cab_blob", run: cab_blob },
    Target { name: "xpress", run: xpress },
    Target { name: "export_file", run: export_file },
    Target { name: "content_request", run: content_request },
];

/// The gateway's defaults: what a client request is parsed under.
fn gateway_limits() -> Limits {
    Limits::default()
}

fn operation(data: &[u8]) -> Option<Element> {
    wsus_soap::parse_request(data, &gateway_limits()).ok().map(|r| r.operation)
}

/// Envelopes as the gateway reads requests, and faults as sync-worker reads an
/// upstream's answers.
pub fn soap_envelope(data: &[u8]) {
    if let Ok(request) = wsus_soap::parse_request(data, &gateway_limits()) {
        // A parsed tree's text is readable in full.
        let _ = request.operation.value();
    }
    let _ = wsus_soap::fault::parse_fault(data, &gateway_limits());
}

/// Every MS-WUSP operation decoder on whatever operation arrived (the gateway picks one
/// by SOAPAction, which a client controls, so every decoder must survive every element).
pub fn wusp_request(data: &[u8]) {
    let Some(op) = operation(data) else { return };
    let _ = wusp::GetConfigRequest::decode(&op);
    let _ = wusp::GetAuthorizationCookieRequest::decode(&op);
    let _ = wusp::GetCookieRequest::decode(&op);
    let _ = wusp::ComputerInfo::decode(&op);
    let _ = wusp::SyncUpdatesRequest::decode(&op);
    let _ = wusp::GetExtendedUpdateInfoRequest::decode(&op);
    let _ = wusp::GetExtendedUpdateInfo2Request::decode(&op);
    let _ = wusp::decode_sync_printer_catalog(&op);
    let _ = wusp::decode_event_batch(&op);
    let _ = wusp::decode_start_category_scan(&op);
    let _ = wusp::decode_refresh_cache(&op);
    let _ = wusp::decode_file_digests(&op);
    for version in op.children_named("protocolVersion") {
        let _ = version.value().parse::<wusp::ProtocolVersion>();
    }
    // The cookie a client returns: opened under a key it cannot know.
    for name in ["cookie", "oldCookie"] {
        for e in op.children_named(name) {
            if let Ok(cookie) = wusp::Cookie::decode(e, name) {
                cookie_data(cookie.encrypted_data.as_deref().unwrap_or_default().as_bytes());
            }
        }
    }
}

fn cookie_data(b64: &[u8]) {
    use base64::Engine as _;
    let keys = wsus_cookie::Keys::new(&[("k1".to_owned(), [7; 32])]).expect("one key");
    if let Ok(sealed) = base64::engine::general_purpose::STANDARD.decode(b64) {
        assert!(wsus_cookie::ClientCookie::open(&keys, &sealed).is_err(), "a forged cookie opened");
    }
}

/// What the gateway decodes as an upstream server: server-sync and rollup requests.
pub fn wsusss_request(data: &[u8]) {
    let Some(op) = operation(data) else { return };
    let _ = wsusss::DssAuthorizationRequest::decode(&op);
    let _ = wsusss::GetCookieRequest::decode(&op);
    let _ = wsusss::RevisionFilter::decode(&op);
    let _ = wsusss::decode_update_ids(&op);
    let _ = wsusss::DeploymentsRequest::decode(&op);
    let _ = wsusss::decode_download_files(&op);
    let _ = wsusss::DriverFilter::decode(&op);
    let _ = wsusss::decode_driver_sets(&op);
    let _ = rollup::decode_client_time(&op);
    let _ = rollup::decode_parent_server_id(&op);
    for limit in [0, 1, 1000] {
        if let Ok(v) = rollup::decode_downstream_servers(&op, limit) {
            assert!(v.len() <= limit, "downstream servers over the batch limit");
        }
        if let Ok(v) = rollup::decode_computers(&op, limit) {
            assert!(v.len() <= limit, "computers over the batch limit");
        }
        if let Ok(v) = rollup::decode_last_rollup_numbers(&op, limit) {
            assert!(v.len() <= limit, "rollup numbers over the batch limit");
        }
        if let Ok(r) = wsus_soap::rollup_status::read_computer_status_request(data, &Limits::default(), limit) {
            assert!(r.computers.len() <= limit, "statuses over the batch limit");
        }
    }
}

/// What sync-worker decodes from an upstream's answers (under its roomier limits).
pub fn wsusss_response(data: &[u8]) {
    let limits = Limits { max_body_bytes: 512 * 1024 * 1024, max_depth: 64, max_elements: 20_000_000 };
    let Ok(response) = wsus_soap::parse_request(data, &limits) else { return };
    let op = &response.operation;
    // The result element under whatever name arrived, as the client looks for it.
    let results: Vec<&Element> = op.children.iter().collect();
    for result in results.iter().copied().chain([op]) {
        let _ = wsusss::dss::auth_plug_ins(result);
        let _ = wsusss::dss::authorization_cookie(result);
        let _ = wsusss::dss::cookie_of(result);
        let _ = wsusss::dss::config_data(result);
        let _ = wsusss::dss::revision_id_list(result);
        let _ = wsusss::Deployments::decode(result);
        let _ = wsusss::decode_update_decryption_data(result);
        let _ = rollup::rollup_configuration(result);
        let _ = rollup::changed_computers(result);
        let _ = rollup::out_of_sync_computers(result);
        let _ = rollup::computer_status_accepted(result);
        // GetUpdateData: each update's document, plain or compressed.
        for updates in result.children_named("updates") {
            for data in updates.children_named("ServerSyncUpdateData") {
                if let Some(plain) = data.child("XmlUpdateBlob") {
                    update_document(plain.value().as_bytes());
                }
                if let Some(c) = data.child("XmlUpdateBlobCompressed")
                    && let Ok(xml) = wsus_metadata::decode_compressed_blob(c.value())
                {
                    update_document(xml.as_bytes());
                }
            }
        }
    }
}

/// An update document as imported: parsed, then every fragment the gateway serves.
pub fn update_xml(data: &[u8]) {
    update_document(data);
}

fn update_document(data: &[u8]) {
    if let Ok(u) = wsus_metadata::Update::parse_bytes(data) {
        let _ = wsus_metadata::fragments::core(&u);
        let _ = wsus_metadata::fragments::extended(&u);
        let _ = wsus_metadata::fragments::localized(&u);
        let _ = wsus_metadata::fragments::eulas(&u);
        let _ = u.categories().count();
    }
}

/// The Cabinet inside `XmlUpdateBlobCompressed`. Our structural check runs on its own;
/// the `cab` crate's reading is contained by `decode_cabinet` (a panic in it becomes an
/// error), so the fuzzer's abort-on-panic hook is set aside for that call alone.
pub fn cab_blob(data: &[u8]) {
    let _ = wsus_metadata::check_cabinet(data);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let decoded = wsus_metadata::decode_cabinet(data);
    std::panic::set_hook(hook);
    if let Ok(xml) = decoded {
        update_document(xml.as_bytes());
    }
}

/// Xpress as clients and upstreams send it: decoding stays within its limit, and what
/// we compress decodes to itself.
pub fn xpress(data: &[u8]) {
    // Small enough that a decompression bomb costs microseconds, not a MiB an execution.
    const LIMIT: usize = 64 * 1024;
    if let Ok(out) = wsus_xpress::decompress(data, LIMIT) {
        assert!(out.len() <= LIMIT, "decompressed past the limit");
    }
    let mut out = Vec::new();
    if wsus_xpress::decompress_block(data, &mut out, LIMIT).is_ok() {
        assert!(out.len() <= LIMIT, "block decompressed past the limit");
    }
    let packed = wsus_xpress::compress(data);
    assert_eq!(wsus_xpress::decompress(&packed, data.len()).as_deref().ok(), Some(data), "round trip");
}

/// An export file as `sync-worker import` reads it: verified whole, then its lines.
pub fn export_file(data: &[u8]) {
    if wsus_export::verify(data).is_err() {
        return;
    }
    let mut archive = tar::Archive::new(data);
    let Ok(entries) = archive.entries() else { return };
    for entry in entries {
        let Ok(mut entry) = entry else { return };
        let name = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let mut text = String::new();
        if std::io::Read::read_to_string(&mut entry, &mut text).is_err() {
            continue;
        }
        for line in text.lines() {
            if name.starts_with(wsus_export::REVISIONS_PREFIX) {
                if let Ok(r) = wsus_export::RevisionLine::decode(&name, line) {
                    update_document(r.xml.as_bytes());
                }
            } else if name == wsus_export::FILES {
                let _ = wsus_export::FileLine::decode(&name, line);
            }
        }
        if name == wsus_export::ADMIN {
            let _ = serde_json::from_str::<serde_json::Value>(&text);
        }
    }
}

/// A `/Content/` request: 8 bytes of file size, then the path, a newline, and the Range
/// header. A range the gateway serves lies inside the file; a path it accepts names a
/// file by its digest.
pub fn content_request(data: &[u8]) {
    use wsus_content::request::{Range, parse_path, parse_range};
    let Some((size, rest)) = data.split_first_chunk::<8>() else { return };
    let size = u64::from_le_bytes(*size);
    let text = String::from_utf8_lossy(rest);
    let (path, range) = text.split_once('\n').unwrap_or((&text, ""));
    if let Some((sha1, ext)) = parse_path(path) {
        assert!(!ext.is_empty() && ext.bytes().all(|b| b.is_ascii_alphanumeric()), "extension {ext:?}");
        assert!(!path.contains(".."), "accepted {path:?}");
        let _ = sha1;
    }
    match parse_range(Some(range), size) {
        Range::Part(a, b) => assert!(a <= b && b < size, "range {a}-{b} outside {size}"),
        Range::Whole | Range::Unsatisfiable => {}
    }
}

/// The target of `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
