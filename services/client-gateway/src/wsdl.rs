//! `?wsdl` on each web service: the WSDLs of MS-WUSP Appendix A with their published
//! defects corrected (a blank in an element name, an undeclared `xs:` prefix, a
//! non-existent `String` type, an operation missing from the SOAP 1.2 binding), and the
//! addresses of this server.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::soap::Service;

const CLIENT: &str = include_str!("../wsdl/ClientWebService.wsdl");
const SIMPLE_AUTH: &str = include_str!("../wsdl/SimpleAuthWebService.wsdl");
const REPORTING: &str = include_str!("../wsdl/ReportingWebService.wsdl");

/// The WSDL of a client-facing service; the server-to-server ones publish none (WSUS
/// downstream servers use compiled proxies).
fn document(service: Service) -> Option<&'static str> {
    match service {
        Service::Client => Some(CLIENT),
        Service::SimpleAuth => Some(SIMPLE_AUTH),
        Service::Reporting => Some(REPORTING),
        Service::ServerSync | Service::DssAuth => None,
    }
}

/// Whether a query string asks for the WSDL (`?wsdl`, any case).
pub fn is_wsdl_query(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|p| p.eq_ignore_ascii_case("wsdl")))
}

pub fn serve(service: Service, scheme: &str, host: &str) -> Response {
    let Some(document) = document(service) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain")], "no WSDL\n").into_response();
    };
    let body = document.replace("http://localhost/", &format!("{scheme}://{host}/"));
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"))], body)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every prefix a QName-valued attribute uses is declared in the document.
    fn undeclared_prefixes(doc: &str) -> Vec<String> {
        let declared: std::collections::HashSet<&str> =
            doc.split("xmlns:").skip(1).filter_map(|s| s.split('=').next()).collect();
        let mut missing = Vec::new();
        for attr in ["type=\"", "element=\"", "message=\"", "binding=\"", "base=\""] {
            for value in doc.split(attr).skip(1).filter_map(|s| s.split('"').next()) {
                if value.split_once(':').is_some_and(|(prefix, _)| !declared.contains(prefix)) {
                    missing.push(format!("{attr}{value}"));
                }
            }
        }
        missing
    }

    #[test]
    fn the_wsdls_are_well_formed_and_complete() {
        for service in [Service::Client, Service::SimpleAuth, Service::Reporting] {
            let doc = document(service).expect("client services publish a WSDL");
            let limits = wsus_soap::Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 1_000_000 };
            let root =
                wsus_soap::xml::parse(doc.as_bytes(), &limits).expect("well-formed, every element prefix declared");
            assert_eq!(root.name, "definitions");
            assert_eq!(undeclared_prefixes(doc), Vec::<String>::new(), "{service:?}");
            assert!(!doc.contains("name=\" "), "no blank in names");
            assert!(!doc.contains("s1:String"));
        }
        // Both bindings carry every operation of the port type.
        let ops = |s: &str| s.matches("<wsdl:operation name=").count();
        let bindings: Vec<&str> = CLIENT.split("<wsdl:binding ").skip(1).collect();
        assert_eq!(bindings.len(), 2);
        assert_eq!(ops(bindings[0]), ops(bindings[1]));
        assert!(REPORTING.contains("ReportingWebService/ReportingWebService.asmx"));
    }

    #[test]
    fn addresses_name_this_server() {
        let r = serve(Service::Client, "http", "wsus.example:8530");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            is_wsdl_query(Some("WSDL"))
                && is_wsdl_query(Some("wsdl"))
                && !is_wsdl_query(Some("disco"))
                && !is_wsdl_query(None)
        );
    }
}
