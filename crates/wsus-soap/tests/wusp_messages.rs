//! MS-WUSP messages against the native Windows 11 ↔ Windows Server 2025 captures.

use chrono::DateTime;
use wsus_soap::wusp::*;
use wsus_soap::{EnvelopeStyle, Limits, parse_request};

use wsus_testdata::read_to_string as reference;

fn native(name: &str) -> String {
    reference(&format!("wusp/examples/native-capture/{name}"))
}

fn op(body: &str) -> wsus_soap::Element {
    parse_request(body.as_bytes(), &Limits::default()).unwrap().operation
}

fn encrypted_data(body: &str) -> &str {
    body.split("<EncryptedData>").nth(1).unwrap().split('<').next().unwrap()
}

#[test]
fn handshake_requests_decode() {
    let auth = GetAuthorizationCookieRequest::decode(&op(&native("GetAuthorizationCookie.request.xml"))).unwrap();
    assert_eq!(auth.client_id, "e1da06a3-5601-43c9-bac3-52d5db701494");
    assert_eq!((auth.dns_name.as_str(), auth.target_group_name), ("REDACTED3", None));

    let get = GetCookieRequest::decode(&op(&native("GetCookie.request.xml"))).unwrap();
    assert_eq!(get.auth_cookies.len(), 1);
    assert_eq!(get.auth_cookies[0].plug_in_id, "SimpleTargeting");
    let old = get.old_cookie.unwrap();
    assert_eq!((old.expiration.to_rfc3339(), old.encrypted_data), ("2026-10-04T15:03:36+00:00".into(), None));
    assert_eq!(get.last_change.unwrap(), DateTime::parse_from_rfc3339("2026-10-04T13:17:07.59Z").unwrap());
    assert_eq!(get.protocol_version.to_string(), "2.90");

    let reg = ComputerInfo::decode(&op(&native("RegisterComputer.request.xml"))).unwrap();
    assert_eq!(reg.os_build_number, Some(26200));
    assert_eq!(reg.processor_architecture.as_deref(), Some("AMD64"));
    assert_eq!((reg.suite_mask, reg.old_product_type, reg.new_product_type), (Some(256), Some(1), Some(48)));
    assert_eq!(reg.client_version.as_deref(), Some("1507.2601.30012.0"));
    assert_eq!(reg.os_description.as_deref(), Some("Windows 10 Pro"));
    assert!(request_cookie(&op(&native("RegisterComputer.request.xml"))).unwrap().encrypted_data.is_some());
}

#[test]
fn handshake_responses_are_shaped_like_the_real_server() {
    let real = native("GetAuthorizationCookie.response.xml");
    let data = real.split("<CookieData>").nth(1).unwrap().split('<').next().unwrap();
    assert_eq!(EnvelopeStyle::Asmx.wrap(&encode_authorization_cookie("SimpleTargeting", data)), real.trim_end());

    let real = native("GetCookie.response.xml");
    let cookie = Cookie {
        expiration: DateTime::parse_from_rfc3339("2026-10-04T16:03:35.9967236Z").unwrap().into(),
        encrypted_data: Some(encrypted_data(&real).to_owned()),
    };
    assert_eq!(EnvelopeStyle::Wcf.wrap(&encode_cookie_response("GetCookie", &cookie)), real.trim_end());

    let real = native("ReportEventBatch.response.xml");
    assert_eq!(EnvelopeStyle::Asmx.wrap(&encode_report_event_batch_response("ReportEventBatch")), real.trim_end());
}

#[test]
fn sync_updates_requests_decode() {
    let first = SyncUpdatesRequest::decode(&op(&native("SyncUpdates.software-first.request.xml"))).unwrap();
    assert!(first.installed_non_leaf.is_empty() && first.other_cached.is_empty(), "absent arrays are empty");
    assert!(!first.skip_software_sync);
    let third = SyncUpdatesRequest::decode(&op(&native("SyncUpdates.software-third.request.xml"))).unwrap();
    assert_eq!(third.installed_non_leaf, vec![108226, 108231]);
    assert_eq!(third.filter_category_ids, vec!["dd78b8a1-0b20-45c1-add6-4da72e9364cf".parse::<uuid::Uuid>().unwrap()]);
    assert!(third.need_two_group_out_of_scope);

    // 401 installed non-leaf ids: refused as the real server refused it.
    let err = SyncUpdatesRequest::decode(&op(&reference("captures/wsus-m0/000141/request.body"))).unwrap_err();
    assert_eq!(err.parameter, "parameters.InstalledNonLeafUpdateIDs");
}

#[test]
fn sync_updates_response_is_shaped_like_the_real_server() {
    let real = native("SyncUpdates.software-first.response.xml");
    let core_escaped = real.split("<Xml>").nth(1).unwrap().split("</Xml>").next().unwrap();
    let info = SyncInfo {
        new_updates: vec![UpdateInfo {
            revision_id: 108226,
            deployment: DeploymentInfo {
                id: 8059,
                action: "Evaluate",
                deadline: None,
                last_change: "2026-10-04".parse().unwrap(),
                hardware_ids: vec![],
            },
            is_leaf: false,
            core_escaped,
        }],
        out_of_scope: vec![],
        changed: vec![],
        truncated: false,
        new_cookie: Cookie {
            expiration: DateTime::parse_from_rfc3339("2026-10-04T16:03:35.9967236Z").unwrap().into(),
            encrypted_data: Some(encrypted_data(&real).to_owned()),
        },
        deployed_out_of_scope: vec![],
        driver_sync_not_needed: true,
    };
    assert_eq!(EnvelopeStyle::Wcf.wrap(&info.encode_response()), real.trim_end());

    let real = native("SyncUpdates.driver-pass.response.xml");
    let empty = SyncInfo { new_updates: vec![], ..info };
    let empty = SyncInfo {
        new_cookie: Cookie { encrypted_data: Some(encrypted_data(&real).to_owned()), ..empty.new_cookie.clone() },
        ..empty
    };
    assert_eq!(EnvelopeStyle::Wcf.wrap(&empty.encode_response()), real.trim_end());
}

#[test]
fn extended_info_and_events_decode() {
    let req =
        GetExtendedUpdateInfoRequest::decode(&op(&native("GetExtendedUpdateInfo.categories.request.xml"))).unwrap();
    assert_eq!(req.revision_ids, vec![72571, 108226, 108231]);
    assert_eq!(req.info_types, vec!["Extended", "LocalizedProperties"]);
    assert_eq!(req.locales, vec!["en-US", "en"]);

    let events = decode_event_batch(&op(&native("ReportEventBatch.request.xml"))).unwrap();
    assert!(!events.is_empty());
    let first = &events[0];
    assert_eq!((first.event_id, first.target_id.as_str()), (147, "e1da06a3-5601-43c9-bac3-52d5db701494"));
    assert_eq!(first.event_instance_id, "fab199c1-6123-44f2-b01c-a5a92201b011");
    assert_eq!(first.update_id.as_deref(), Some("00000000-0000-0000-0000-000000000000"));
    assert!(first.misc_data.iter().any(|m| m == "B=3"));
    assert!(first.os_version.as_deref().is_some_and(|v| v.starts_with("10.0.")), "{:?}", first.os_version);
}

#[test]
fn the_driver_pass_decodes() {
    let req = SyncUpdatesRequest::decode(&op(&reference("captures/wsus-m0-native/scan/000009/request.body"))).unwrap();
    assert!(req.skip_software_sync && req.has_system_spec);
    assert!(req.devices.len() >= 70, "{}", req.devices.len());
    assert_eq!(req.computer_hardware_ids.len(), 6);
    assert_eq!(req.feature_score_key.as_deref(), Some("AMD64.10.0"));
    let printer = &req.devices[0];
    assert_eq!(printer.hardware_ids, vec!["{6d170653-5280-44c2-ba44-2c04bc9d46da}"]);
    let installed = printer.installed.as_ref().unwrap();
    assert_eq!(installed.class.as_deref(), Some("Printer"));
    assert_eq!(installed.version, Some(2_814_751_477_604_196));
    assert_eq!(installed.date, chrono::NaiveDate::from_ymd_opt(2006, 6, 21));
}

/// The 2006 specification examples: soapenc arrays, xsi:nil, pretty-printed whitespace.
#[test]
fn the_specification_examples_decode() {
    let dir = "wusp/examples/spec-section4";
    let mut decoded = 0;
    for name in [
        "GetAuthorizationCookie.request.xml",
        "GetConfig.request.xml",
        "GetCookie.request.xml",
        "RegisterComputer.request.xml",
        "SyncUpdates.1-first.request.xml",
        "SyncUpdates.2-second.request.xml",
        "SyncUpdates.3-third.request.xml",
        "SyncUpdates.4-fourth.request.xml",
        "RefreshCache.request.xml",
        "GetFileLocations.request.xml",
        "ReportEventBatch.event148.request.xml",
        "ReportEventBatch.events147-156.request.xml",
        "ReportEventBatch.events183-202-147-156.request.xml",
    ] {
        let e = op(&reference(&format!("{dir}/{name}")));
        match e.name.as_str() {
            "GetAuthorizationCookie" => drop(GetAuthorizationCookieRequest::decode(&e).unwrap()),
            "GetConfig" => drop(GetConfigRequest::decode(&e).unwrap()),
            "GetCookie" => assert_eq!(GetCookieRequest::decode(&e).unwrap().auth_cookies.len(), 1),
            "RegisterComputer" => assert!(ComputerInfo::decode(&e).unwrap().dns_name.is_some()),
            "SyncUpdates" => {
                let r = SyncUpdatesRequest::decode(&e).unwrap();
                assert!(
                    name.contains("1-first") || !r.installed_non_leaf.is_empty() || !r.other_cached.is_empty(),
                    "{name}"
                );
            }
            "RefreshCache" => assert_eq!(decode_refresh_cache(&e).unwrap().len(), 7),
            "GetFileLocations" => assert_eq!(decode_file_digests(&e).unwrap().len(), 1),
            "ReportEventBatch" => assert!(!decode_event_batch(&e).unwrap().is_empty(), "{name}"),
            other => panic!("{name}: {other}"),
        }
        decoded += 1;
    }
    assert_eq!(decoded, 13);
}
