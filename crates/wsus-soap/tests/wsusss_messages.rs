//! MS-WSUSSS messages against a real Windows Server 2025 WSUS acting as upstream.

use std::path::PathBuf;

use chrono::DateTime;
use wsus_soap::wsusss::*;
use wsus_soap::wusp::Cookie;
use wsus_soap::{EnvelopeStyle, ErrorCode, Fault, Limits, SoapVersion, parse_request};

fn reference(path: &str) -> String {
    let root = std::env::var_os("WSUS_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference"));
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn uss(name: &str) -> String {
    reference(&format!("wsusss/examples/real-wsus-uss/wsus2025-{name}"))
}

fn exchange(n: &str, part: &str) -> String {
    reference(&format!("captures/wsus-m0-wsusss/exchanges/{n}/{part}"))
}

fn op(body: &str) -> wsus_soap::Element {
    let limits = Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 10_000_000 };
    parse_request(body.as_bytes(), &limits).unwrap().operation
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let start = s.find(open).unwrap() + open.len();
    &s[start..start + s[start..].find(close).unwrap()]
}

fn time(s: &str) -> chrono::DateTime<chrono::Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().into()
}

#[test]
fn handshake_answers_are_shaped_like_the_real_upstream() {
    let real = uss("000001-GetAuthConfig-response.xml");
    let ours = EnvelopeStyle::Asmx.wrap(&encode_auth_config(time(between(&real, "<LastChange>", "<"))));
    assert_eq!(ours, real.trim_end());

    let req = DssAuthorizationRequest::decode(&op(&uss("000002-GetAuthorizationCookie-request.xml"))).unwrap();
    assert_eq!(req.account_name, "probe.lab.invalid");
    let real = exchange("000002", "response.body");
    assert_eq!(
        EnvelopeStyle::Asmx.wrap(&encode_dss_authorization_cookie(between(&real, "<CookieData>", "<"))),
        real.trim_end()
    );

    let req = GetCookieRequest::decode(&op(&uss("000003-GetCookie-request.xml"))).unwrap();
    assert_eq!((req.auth_cookies.len(), req.protocol_version.to_string().as_str(), req.old_cookie), (1, "1.20", None));
    let real = uss("000003-GetCookie-response.xml");
    let cookie = Cookie {
        expiration: time(between(&real, "<Expiration>", "<")),
        encrypted_data: Some(between(&real, "<EncryptedData>", "<").to_owned()),
    };
    assert_eq!(EnvelopeStyle::Asmx.wrap(&encode_cookie("GetCookie", &cookie)), real.trim_end());
}

#[test]
fn config_data_is_shaped_like_the_real_upstream() {
    let real = uss("000004-GetConfigData-with-configAnchor-response.xml");
    let data = ConfigData {
        catalog_only_sync: false,
        lazy_sync: true,
        server_hosts_psf_files: false,
        max_updates_per_request: 100,
        new_config_anchor: "9438,2026-10-04 16:33:26.668".into(),
        languages: vec![],
        max_updates_per_decryption_request: 100,
    };
    assert_eq!(EnvelopeStyle::Asmx.wrap(&data.encode()), real.trim_end());
    // With the language list (first call, no anchor).
    let full = uss("000005-GetConfigData-response.xml");
    let languages: Vec<Language> = full
        .split("<ServerSyncLanguageData>")
        .skip(1)
        .map(|l| Language {
            id: between(l, "<LanguageID>", "<").parse().unwrap(),
            short: between(l, "<ShortLanguage>", "<").into(),
            long: between(l, "<LongLanguage>", "<").into(),
            enabled: between(l, "<Enabled>", "<") == "true",
        })
        .collect();
    let data = ConfigData { new_config_anchor: between(&full, "<NewConfigAnchor>", "<").into(), languages, ..data };
    assert_eq!(EnvelopeStyle::Asmx.wrap(&data.encode()), full.trim_end());
}

#[test]
fn revision_lists_are_shaped_like_the_real_upstream() {
    let filter = RevisionFilter::decode(&op(&uss("000009-GetRevisionIdList-filtered-request.xml"))).unwrap();
    assert!(!filter.get_config && filter.anchor.is_none());
    assert_eq!(filter.categories[0].id.to_string(), "8c3fcc84-7410-4a95-8b89-a166a0190486");
    assert_eq!(filter.classifications[0].id.to_string(), "e0789628-ce08-4437-be74-2495b842f43b");
    let delta = RevisionFilter::decode(&op(&uss("000011-GetRevisionIdList-anchor-delta-request.xml"))).unwrap();
    assert!(delta.anchor.is_some() && delta.categories.iter().all(|c| c.delta));

    let real = uss("000011-GetRevisionIdList-anchor-delta-response.xml");
    assert_eq!(
        EnvelopeStyle::Asmx.wrap(&encode_revision_id_list(between(&real, "<Anchor>", "<"), &[])),
        real.trim_end()
    );
    let real = uss("000006-GetRevisionIdList-GetConfig-response-trimmed.xml");
    let ids: Vec<(uuid::Uuid, i32)> = real
        .split("<UpdateIdentity>")
        .skip(1)
        .map(|u| (between(u, "<UpdateID>", "<").parse().unwrap(), between(u, "<RevisionNumber>", "<").parse().unwrap()))
        .collect();
    assert_eq!(ids.len(), 30);
    assert_eq!(
        EnvelopeStyle::Asmx.wrap(&encode_revision_id_list(between(&real, "<Anchor>", "<"), &ids)),
        real.trim_end()
    );
}

#[test]
fn update_data_is_shaped_like_the_real_upstream() {
    let ids = decode_update_ids(&op(&uss("000014-GetUpdateData-request.xml"))).unwrap();
    assert_eq!(ids[0].0.to_string(), "266f6222-c89d-43f2-9f8a-69340271e677");
    // A small document travels as an escaped XmlUpdateBlob.
    let real = exchange("000015", "response.body");
    let parsed = op(&real);
    let mut stack = vec![&parsed];
    let mut blob = String::new();
    while let Some(e) = stack.pop() {
        if e.name == "XmlUpdateBlob" {
            blob = e.text.clone();
        }
        stack.extend(e.children.iter());
    }
    let data = UpdateData {
        update_id: "ccb78947-6453-4ecc-9de8-bc0305c98f2d".parse().unwrap(),
        revision_number: 200,
        file_digests: vec![],
        xml: &blob,
    };
    assert_eq!(EnvelopeStyle::Asmx.wrap(&encode_update_data(&[data], &[])), real.trim_end());
    // More than 100 ids is refused, as the real server refuses 101.
    let many: String = (0..101).map(|_| "<UpdateIdentity><UpdateID>266f6222-c89d-43f2-9f8a-69340271e677</UpdateID><RevisionNumber>200</RevisionNumber></UpdateIdentity>").collect();
    let body = format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><GetUpdateData xmlns=\"{SERVER_SYNC_NS}\"><updateIds>{many}</updateIds></GetUpdateData></s:Body></s:Envelope>"
    );
    assert_eq!(decode_update_ids(&op(&body)).unwrap_err().parameter, "updateIds");
}

#[test]
fn server_sync_faults_are_shaped_like_the_real_upstream() {
    for (file, code) in [
        ("000018-GetRevisionIdList-bad-anchor-fault.xml", ErrorCode::InvalidParameters),
        ("000017-GetUpdateData-unknown-id-fault.xml", ErrorCode::InternalServerError),
        ("000019-GetRevisionIdList-no-cookie-fault.xml", ErrorCode::InvalidCookie),
    ] {
        let real = uss(file);
        let mut fault = Fault::new(
            code,
            Some(between(&real, "<Message>", "<").to_owned()),
            Some(between(&real, "<Method>\"", "\"<")),
        );
        fault.id = between(&real, "<ID>", "<").parse().unwrap();
        fault.actor = Some(between(&real, "<faultactor>", "<").to_owned());
        assert_eq!(fault.to_xml(SoapVersion::Soap11, EnvelopeStyle::Asmx), real.trim_end(), "{file}");
    }
}
