//! MS-WSUSSS messages against a real Windows Server 2025 WSUS acting as upstream.

use chrono::DateTime;
use wsus_soap::wsusss::*;
use wsus_soap::wusp::Cookie;
use wsus_soap::{EnvelopeStyle, ErrorCode, Fault, Limits, SoapVersion, parse_request};

use wsus_testdata::read_to_string as reference;

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
        compressed: None,
    };
    assert_eq!(EnvelopeStyle::Asmx.wrap(&encode_update_data(&[data], &[])), real.trim_end());
    // More than 100 ids is refused, as the real server refuses 101.
    let many: String = (0..101).map(|_| "<UpdateIdentity><UpdateID>266f6222-c89d-43f2-9f8a-69340271e677</UpdateID><RevisionNumber>200</RevisionNumber></UpdateIdentity>").collect();
    let body = format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><GetUpdateData xmlns=\"{SERVER_SYNC_NS}\"><updateIds>{many}</updateIds></GetUpdateData></s:Body></s:Envelope>"
    );
    assert_eq!(decode_update_ids(&op(&body)).unwrap_err().parameter, "updateIds");
}

/// The element order of a WSDL complex type's sequence.
fn wsdl_sequence(wsdl: &str, type_name: &str) -> Vec<String> {
    let start = wsdl.find(&format!("<s:complexType name=\"{type_name}\">")).unwrap();
    let body = &wsdl[start..start + wsdl[start..].find("</s:complexType>").unwrap()];
    body.split("name=\"").skip(2).map(|n| n.split('"').next().unwrap().to_owned()).collect()
}

#[test]
fn update_data_follows_the_wsdl_order_plain_and_compressed() {
    // ServerSyncWebService.wsdl (and Microsoft's proxy types, Order=2 FileDigestList,
    // Order=3 XmlUpdateBlobCompressed): Id, XmlUpdateBlob, FileDigestList, XmlUpdateBlobCompressed.
    let wsdl = reference("wsusss/wsdl/ServerSyncWebService.wsdl");
    let sequence = wsdl_sequence(&wsdl, "ServerSyncUpdateData");
    assert_eq!(sequence, ["Id", "XmlUpdateBlob", "FileDigestList", "XmlUpdateBlobCompressed"]);
    let small = "<upd:Update xmlns:upd=\"http://schemas.microsoft.com/msus/2002/12/Update\"/>";
    let large = reference("captures/wsus-m0-wsusss/docs/266f6222-c89d-43f2-9f8a-69340271e677-r200.xml");
    assert!(!should_compress(small) && should_compress(&large), "over 5,120 bytes of UTF-16 is compressed");
    fn data(xml: &str) -> UpdateData<'_> {
        UpdateData {
            update_id: uuid::Uuid::nil(),
            revision_number: 200,
            file_digests: vec!["SQN51VJvs6BCPaHNf8MYKo1EhEk=".into()],
            xml: if should_compress(xml) { "" } else { xml },
            compressed: should_compress(xml).then(|| wsus_metadata::compress_blob(xml)),
        }
    }
    let answer = op(&EnvelopeStyle::Asmx.wrap(&encode_update_data(&[data(small), data(&large)], &[])));
    let updates = answer.child("GetUpdateDataResult").unwrap().child("updates").unwrap();
    let names = |i: usize| -> Vec<String> { updates.children[i].children.iter().map(|c| c.name.clone()).collect() };
    let in_order = |names: &[String]| {
        let positions: Vec<usize> = names.iter().map(|n| sequence.iter().position(|s| s == n).unwrap()).collect();
        positions.windows(2).all(|w| w[0] < w[1])
    };
    assert_eq!(names(0), ["Id", "XmlUpdateBlob", "FileDigestList"]);
    assert_eq!(names(1), ["Id", "FileDigestList", "XmlUpdateBlobCompressed"], "as the real 000014");
    assert!(in_order(&names(0)) && in_order(&names(1)));
    // The compressed document reads back as it was, the way a downstream reads one.
    let blob = updates.children[1].child("XmlUpdateBlobCompressed").unwrap().value();
    assert_eq!(wsus_metadata::decode_compressed_blob(blob).unwrap(), large);
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

#[test]
fn a_downstream_reads_the_real_upstream_answers() {
    let auth = op(&exchange("000001", "response.body"));
    let plug_ins = dss::auth_plug_ins(dss::result(&auth, "GetAuthConfig").unwrap()).unwrap();
    assert_eq!(plug_ins, vec![("DssTargeting".to_owned(), "DssAuthWebService/DssAuthWebService.asmx".to_owned())]);
    let cookie = op(&exchange("000002", "response.body"));
    let (plug_in, data) = dss::authorization_cookie(dss::result(&cookie, "GetAuthorizationCookie").unwrap()).unwrap();
    assert_eq!(plug_in, "DssTargeting");
    assert!(!data.is_empty());
    let c = op(&exchange("000003", "response.body"));
    let c = dss::cookie_of(dss::result(&c, "GetCookie").unwrap()).unwrap();
    assert_eq!(c.expiration, time("2026-10-04T20:33:26.65455Z"));
    let config = op(&exchange("000005", "response.body"));
    let config = dss::config_data(dss::result(&config, "GetConfigData").unwrap()).unwrap();
    assert!(config.lazy_sync && !config.catalog_only_sync);
    assert_eq!(config.max_updates_per_request, 100);
    assert_eq!(config.new_config_anchor, "9438,2026-10-04 16:33:26.670");
    assert!(config.languages.iter().any(|l| l.short == "en" && l.enabled));
    let list = op(&exchange("000009", "response.body"));
    let list = dss::revision_id_list(dss::result(&list, "GetRevisionIdList").unwrap()).unwrap();
    assert!(list.anchor.unwrap().starts_with("9438,"));
    assert_eq!(list.revisions.len(), 30);
    assert_eq!(list.revisions[0], ("8c55755c-2b9d-48cc-be8b-aedbf20911ec".parse().unwrap(), 201));
}

#[test]
fn downstream_requests_read_back_as_sent() {
    let cookie = Cookie { expiration: time("2026-10-04T20:33:26.65455Z"), encrypted_data: Some("AAAA".to_owned()) };
    let filter = RevisionFilter {
        anchor: Some("9438,2026-10-04 16:09:27.371".to_owned()),
        get_config: false,
        categories: vec![IdAndDelta { id: "8c3fcc84-7410-4a95-8b89-a166a0190486".parse().unwrap(), delta: true }],
        classifications: vec![IdAndDelta { id: "e0789628-ce08-4437-be74-2495b842f43b".parse().unwrap(), delta: false }],
        languages: vec![(1033, true)],
    };
    let body = dss::envelope(&dss::get_revision_id_list(&cookie, &filter));
    let request = op(&body);
    assert_eq!(RevisionFilter::decode(&request).unwrap(), filter);
    assert_eq!(wsus_soap::wusp::request_cookie_named(&request, "cookie").unwrap(), cookie);
    // The filter's children follow the WSDL sequence.
    let names: Vec<&str> = request.child("filter").unwrap().children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Anchor", "GetConfig", "Get63LanguageOnly", "Categories", "Classifications", "Languages"]);

    let ids = [("266f6222-c89d-43f2-9f8a-69340271e677".parse().unwrap(), 200)];
    assert_eq!(decode_update_ids(&op(&dss::envelope(&dss::get_update_data(&cookie, &ids)))).unwrap(), ids);
    let auth = DssAuthorizationRequest::decode(&op(&dss::envelope(&dss::get_authorization_cookie(
        "dss.example",
        "6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12".parse().unwrap(),
    ))))
    .unwrap();
    assert_eq!(auth.account_name, "dss.example");
    let get_cookie =
        GetCookieRequest::decode(&op(&dss::envelope(&dss::get_cookie("DssTargeting", "QUJD", "1.20")))).unwrap();
    assert_eq!(get_cookie.auth_cookies, ["QUJD"]);
    assert_eq!(get_cookie.protocol_version.to_string(), "1.20");
    let config = op(&dss::envelope(&dss::get_config_data(&cookie, Some("1,2026-10-04 16:09:27.371"))));
    assert_eq!(config.child("configAnchor").unwrap().value(), "1,2026-10-04 16:09:27.371");
}

#[test]
fn deployments_read_back_and_the_specification_example_decodes() {
    let spec = reference("wsusss/examples/spec/spec-14-GetDeployments-response.xml");
    let limits = Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 1_000_000 };
    let root = wsus_soap::xml::parse(spec.as_bytes(), &limits).unwrap();
    let d = Deployments::decode(root.child("GetDeploymentsResult").unwrap()).unwrap();
    assert_eq!(d.anchor, "4742,2006-05-26 18:59:26.192");
    assert_eq!(d.groups.len(), 2);
    assert_eq!(d.groups[0].parent, None);
    assert_eq!(d.deployments.len(), 2);
    assert_eq!(d.deployments[0].deadline, None, "9999-12-31 is no deadline");
    assert_eq!(d.deployments[0].download_priority, 1);
    assert_eq!(d.hidden.len(), 2);
    assert!(d.dead.is_empty() && d.accepted_eulas.is_empty());
    // What this server encodes reads back the same.
    let again = Deployments::decode(
        &op(&format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{}</s:Body></s:Envelope>",
            d.encode()
        ))
        .children[0],
    )
    .unwrap();
    assert_eq!(again, d);
    let request = spec_request("spec-13-GetDeployments-request.xml");
    let r = DeploymentsRequest::decode(&request).unwrap();
    assert_eq!((r.deployment_anchor, r.sync_anchor.as_str()), (None, "4742,2006-05-26 18:59:26.192"));
}

fn spec_request(name: &str) -> wsus_soap::Element {
    let body = reference(&format!("wsusss/examples/spec/{name}"));
    let limits = Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 1_000_000 };
    wsus_soap::xml::parse(body.as_bytes(), &limits).unwrap()
}

#[test]
fn decryption_data_and_download_files_read_back() {
    let data = vec![FileDecryption {
        update_id: "266f6222-c89d-43f2-9f8a-69340271e677".parse().unwrap(),
        revision_number: 200,
        files: vec![("h/W9BGlYUAaqXTp30cZi/SiV3c0=".to_owned(), Some("AAECAw==".to_owned()))],
    }];
    let body = format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{}</s:Body></s:Envelope>",
        encode_update_decryption_data(&data)
    );
    let response = op(&body);
    assert_eq!(decode_update_decryption_data(&response.children[0]).unwrap(), data);
    let cookie = Cookie { expiration: time("2026-10-04T20:33:26Z"), encrypted_data: Some("AAAA".to_owned()) };
    let ids = [(data[0].update_id, 200)];
    let request = op(&dss::envelope(&dss::get_update_decryption_data(&cookie, &ids)));
    assert_eq!(request.name, "GetUpdateDecryptionData");
    assert_eq!(decode_update_ids(&request).unwrap(), ids);
    let request = op(&dss::envelope(&dss::download_files(&cookie, &["h/W9BGlYUAaqXTp30cZi/SiV3c0=".to_owned()])));
    assert_eq!(decode_download_files(&request).unwrap().len(), 1);
    let bad = op(&dss::envelope(&dss::download_files(&cookie, &["bm90IGEgc2hhMQ==".to_owned()])));
    assert_eq!(decode_download_files(&bad).unwrap_err().parameter, "fileDigestList");
}

#[test]
fn ping_answers_in_the_wsdl_order() {
    let answer = PingAnswer {
        success: true,
        now: time("2026-10-04T20:33:26Z"),
        service: "ServerSyncWebService".into(),
        machine: "uss.example".into(),
        https: false,
        configuration_changed: time("2026-10-04T13:16:35.433Z"),
        database: "PostgreSQL".into(),
    };
    let response = op(&format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{}</s:Body></s:Envelope>",
        answer.encode()
    ));
    let names: Vec<&str> = response.children[0].children.iter().map(|c| c.name.as_str()).collect();
    let wsdl = reference("wsusss/wsdl/ServerSyncWebService.wsdl");
    let sequence = between(&wsdl, "<s:complexType name=\"MonitoredServicesResponse\">", "</s:complexType>");
    let declared: Vec<&str> = sequence.split("name=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
    let in_order: Vec<&str> = declared.iter().copied().filter(|n| names.contains(n)).collect();
    assert_eq!(names, in_order);
    assert!(names.starts_with(&["SuccessFlag", "ServicesTime"]));
}

#[test]
fn a_downstream_reads_microsoft_updates_configuration() {
    let body = reference("wsusss/examples/microsoft-update/sws-GetConfigData-response-20261006.xml");
    let response = op(&body);
    let config = dss::config_data(dss::result(&response, "GetConfigData").unwrap()).unwrap();
    assert!(config.catalog_only_sync && config.lazy_sync && config.server_hosts_psf_files);
    assert_eq!(config.max_updates_per_request, 100);
    assert_eq!(config.max_updates_per_decryption_request, 500);
    // Microsoft's anchors have no counter: kept as the opaque strings they are.
    assert_eq!(config.new_config_anchor, "2026-10-05 17:27:44.393");
    assert_eq!(config.languages.len(), 39);
    assert_eq!(config.languages.iter().filter(|l| l.enabled).map(|l| l.short.as_str()).collect::<Vec<_>>(), ["all"]);
}
