//! The simulated agent sends every request in the captured native client's shape: the
//! same elements, nested the same way, in the same order (values aside), for each call a
//! Windows 11 Update Agent made to a real WSUS (captures/wsus-m0-native,
//! wusp/examples/native-capture). What the end-to-end tests prove with the agent holds
//! for requests a real client sends.

use std::collections::{BTreeMap, BTreeSet};

use wsus_e2e::agent::{Agent, Device, InstalledDriver};
use wsus_soap::{Element, Limits};

/// For every element path of an operation, each distinct sequence of child names found
/// there (a run of same-named siblings counted once, so lists of any length compare).
/// Two requests with equal shapes nest the same elements in the same order.
fn shape(envelope: &[u8]) -> BTreeMap<String, BTreeSet<Vec<String>>> {
    let limits = Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 10_000_000 };
    let request = wsus_soap::parse_request(envelope, &limits).unwrap();
    fn walk(e: &Element, path: &str, out: &mut BTreeMap<String, BTreeSet<Vec<String>>>) {
        let mut names: Vec<String> = e.children.iter().map(|c| c.name.clone()).collect();
        names.dedup();
        out.entry(path.to_owned()).or_default().insert(names);
        for c in &e.children {
            walk(c, &format!("{path}/{}", c.name), out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&request.operation, &request.operation.name, &mut out);
    out
}

fn envelope(body: &str) -> Vec<u8> {
    format!("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{body}</s:Body></s:Envelope>")
        .into_bytes()
}

fn captured(path: &str) -> Vec<u8> {
    wsus_e2e::read_reference(path)
}

fn namespace_of(envelope: &[u8]) -> Option<String> {
    let limits = Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 10_000_000 };
    wsus_soap::parse_request(envelope, &limits).unwrap().operation.ns.as_deref().map(str::to_owned)
}

fn same_shape(what: &str, ours: &str, real_path: &str) {
    let ours = envelope(ours);
    let real = captured(real_path);
    assert_eq!(shape(&ours), shape(&real), "{what}: the agent's request against {real_path}");
    assert_eq!(namespace_of(&ours), namespace_of(&real), "{what}: namespace");
}

/// The SystemSpec devices of a captured driver pass, as the agent's devices.
fn devices_of(path: &str) -> Vec<Device> {
    let limits = Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 10_000_000 };
    let request = wsus_soap::parse_request(&captured(path), &limits).unwrap();
    let spec = request.operation.child("parameters").unwrap().child("SystemSpec").unwrap();
    let strings = |e: &Element, name: &str| -> Vec<String> {
        e.child(name).map(|l| l.children.iter().map(|s| s.value().to_owned()).collect()).unwrap_or_default()
    };
    let text = |e: &Element, name: &str| e.child(name).map(|c| c.value().to_owned());
    let date = |e: &Element| text(e, "DriverVerDate").unwrap()[..10].to_owned();
    spec.children
        .iter()
        .map(|d| Device {
            hardware_ids: strings(d, "HardwareIDs"),
            compatible_ids: strings(d, "CompatibleIDs"),
            installed: d.child("installedDriver").map(|i| InstalledDriver {
                matching_id: text(i, "MatchingID"),
                date: date(i),
                version: text(i, "DriverVerVersion").unwrap(),
                class: text(i, "Class"),
                manufacturer: text(i, "Manufacturer"),
                provider: text(i, "Provider"),
                model: text(i, "Model"),
                rank: text(i, "DriverRank").unwrap().parse().unwrap(),
                generic: i.child("IsGeneric").is_some(),
            }),
            extension_drivers: d
                .child("extensionDrivers")
                .map(|x| {
                    x.children
                        .iter()
                        .map(|e| {
                            (
                                text(e, "ExtensionId").unwrap(),
                                date(e),
                                text(e, "DriverVerVersion").unwrap(),
                                text(e, "Class").unwrap(),
                                text(e, "DriverRank").unwrap().parse().unwrap(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            flags: text(d, "DeviceFlags").map(|f| f.parse().unwrap()),
        })
        .collect()
}

fn agent_with_cookie() -> Agent {
    let mut agent = Agent::new("http://127.0.0.1:1");
    // A cookie as a server's GetCookie answer carries one.
    let limits = Limits::default();
    let cookie = wsus_soap::parse_request(&captured("wusp/examples/native-capture/GetCookie.response.xml"), &limits)
        .unwrap()
        .operation;
    agent.adopt_cookie(&cookie);
    assert!(agent.cookie().is_some());
    agent
}

#[test]
fn the_handshake_is_the_native_clients() {
    let agent = agent_with_cookie();
    same_shape("GetConfig", &Agent::get_config_body(), "wusp/examples/native-capture/GetConfig.request.xml");
    same_shape(
        "GetAuthorizationCookie",
        &agent.authorization_body(),
        "wusp/examples/native-capture/GetAuthorizationCookie.request.xml",
    );
    // An oldCookie with an Expiration and nothing else, whatever cookie the client held.
    let get_cookie =
        Agent::get_cookie_body("SimpleTargeting", "AAAA", "2026-10-04T13:17:07.59Z", "2026-10-04T15:03:36Z");
    same_shape("GetCookie", &get_cookie, "wusp/examples/native-capture/GetCookie.request.xml");
    assert!(get_cookie.contains("<oldCookie><Expiration>2026-10-04T15:03:36Z</Expiration></oldCookie>"));
    same_shape("RegisterComputer", &agent.register_body(), "wusp/examples/native-capture/RegisterComputer.request.xml");
}

#[test]
fn scans_are_the_native_clients() {
    let mut agent = agent_with_cookie();
    // The category scan of the first boot ("OOBE ZDP"): StartCategoryScan, then a first
    // SyncUpdates with no cached ids at all.
    agent.filter_categories = vec!["dd78b8a1-0b20-45c1-add6-4da72e9364cf".parse().unwrap()];
    same_shape(
        "StartCategoryScan",
        &agent.start_category_scan_body(),
        "wusp/examples/native-capture/StartCategoryScan.request.xml",
    );
    same_shape(
        "SyncUpdates, first of a category scan",
        &agent.sync_updates_body(),
        "captures/wsus-m0-native/scan/000006/request.body",
    );
    agent.installed_non_leaf = vec![72571];
    same_shape("SyncUpdates, second", &agent.sync_updates_body(), "captures/wsus-m0-native/scan/000007/request.body");
    // A full scan with a warm cache.
    agent.filter_categories.clear();
    agent.other_cached = vec![719, 1020];
    same_shape(
        "SyncUpdates, full scan",
        &agent.sync_updates_body(),
        "captures/wsus-m0-native/flow/000001/request.body",
    );
    // Its driver pass, with the devices the native client described.
    let real = "captures/wsus-m0-native/flow/000014/request.body";
    let devices = devices_of(real);
    assert_eq!(devices.len(), 75);
    same_shape(
        "SyncUpdates, driver pass",
        &agent.driver_pass_body(&devices, &["458ab48b-acb9-5863-b5a8-d2c32f0d3e6f"]),
        real,
    );
    same_shape(
        "GetExtendedUpdateInfo",
        &agent.extended_info_body(&[72571, 108226, 108231]),
        "captures/wsus-m0-native/scan/000010/request.body",
    );
}

#[test]
fn reports_are_the_native_clients() {
    let agent = agent_with_cookie();
    let nil = "00000000-0000-0000-0000-000000000000";
    // The captured batch: a scan (147, its count as a replacement string) and failed
    // detections (148), each with MiscData; named callers and a process among them.
    let events: &[(i32, &str, &[&str])] = &[
        (147, nil, &["0", "B=3", "C=3", "G=1507.2601.30012.0", "AppName=OOBE ZDP"]),
        (148, nil, &["0x80240438", "C=2", "G=1507.2601.30012.0", "AppName=Appraiser Driver Scan"]),
        (148, nil, &["0x80240438", "C=2", "G=1507.2601.30012.0"]),
    ];
    let (body, _, _) = agent.report_body(events, None);
    same_shape("ReportEventBatch", &body, "captures/wsus-m0-native/flow/000016/request.body");
}
