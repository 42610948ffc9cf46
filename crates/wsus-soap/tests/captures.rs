//! The codec against real messages captured between Windows 11 and Windows Server 2025.

use chrono::DateTime;
use wsus_soap::wusp::{AuthPlugIn, Config, GetConfigRequest, ProtocolVersion};
use wsus_soap::{EnvelopeStyle, ErrorCode, Fault, Limits, SoapVersion, parse_request};

use wsus_testdata::read as reference;

#[test]
fn native_get_config_request_decodes() {
    let req =
        parse_request(&reference("wusp/examples/native-capture/GetConfig.request.xml"), &Limits::default()).unwrap();
    assert_eq!(req.version, SoapVersion::Soap11);
    assert_eq!(req.operation.name, "GetConfig");
    assert_eq!(req.operation.ns.as_deref(), Some(wsus_soap::wusp::CLIENT_NS));
    let get = GetConfigRequest::decode(&req.operation).unwrap();
    assert_eq!(get.protocol_version, ProtocolVersion { major: 2, minor: 90 });

    // The scripted client of the other capture sent 1.8.
    let req = parse_request(&reference("captures/wsus-m0/000001/request.body"), &Limits::default()).unwrap();
    assert_eq!(GetConfigRequest::decode(&req.operation).unwrap().protocol_version.to_string(), "1.8");
}

#[test]
fn get_config_response_is_byte_identical_to_the_real_server() {
    let real = String::from_utf8(reference("wusp/examples/native-capture/GetConfig.response.xml")).unwrap();
    let config = Config {
        last_change: DateTime::parse_from_rfc3339("2026-10-04T13:17:07.59Z").unwrap().into(),
        is_registration_required: true,
        auth_plug_ins: vec![AuthPlugIn::simple_targeting()],
        properties: Config::wsus_properties(50, Some(r"\\REDACTED2\UpdateServicesPackages"), 2),
    };
    assert_eq!(EnvelopeStyle::Wcf.wrap(&config.encode_response()), real.trim_end());
}

#[test]
fn fault_is_byte_identical_to_the_real_server() {
    let real =
        String::from_utf8(reference("wusp/examples/native-capture/SyncUpdates.fault-InvalidParameters.response.xml"))
            .unwrap();
    let mut fault = Fault::new(
        ErrorCode::InvalidParameters,
        Some("parameters.InstalledNonLeafUpdateIDs".to_owned()),
        // Clients quote the SOAPAction; the fault quotes it either way.
        Some("http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService/SyncUpdates"),
    );
    fault.id = "81418b4e-82c1-48d0-9504-da01db6148ae".parse().unwrap();
    assert_eq!(fault.to_xml(SoapVersion::Soap11, EnvelopeStyle::Wcf), real.trim_end());
    let parsed = wsus_soap::fault::parse_fault(real.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(parsed, ("InvalidParameters".to_owned(), Some("parameters.InstalledNonLeafUpdateIDs".to_owned())));
}

#[test]
fn server_sync_faults_parse() {
    let body = reference("wsusss/examples/real-wsus-uss/wsus2025-000017-GetUpdateData-unknown-id-fault.xml");
    let (code, _) = wsus_soap::fault::parse_fault(&body, &Limits::default()).unwrap();
    assert_eq!(code, "InternalServerError");
}

#[test]
fn every_captured_request_parses_within_the_default_limits() {
    let mut dirs = 0;
    for base in ["captures/wsus-m0", "captures/wsus-m0-native"] {
        let root = wsus_testdata::root().join(base);
        let Ok(walk) = std::fs::read_dir(&root) else { continue };
        for entry in walk.flatten() {
            let mut stack = vec![entry.path()];
            while let Some(p) = stack.pop() {
                if p.is_dir() {
                    stack.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
                } else if p.file_name().is_some_and(|n| n == "request.body") {
                    let body = std::fs::read(&p).unwrap();
                    if body.is_empty() || !body.starts_with(b"<") {
                        continue; // content GETs
                    }
                    let req =
                        parse_request(&body, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    assert!(!req.operation.name.is_empty());
                    dirs += 1;
                }
            }
        }
    }
    assert!(dirs >= 8, "found only {dirs} captured requests");
}
