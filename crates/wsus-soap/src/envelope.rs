//! Request envelopes in, response envelopes out.

use crate::xml::{self, Element, Limits, XmlError};
use crate::{SOAP11_NS, SOAP12_NS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    Soap11,
    Soap12,
}

/// The operation element of a request and the SOAP version it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub version: SoapVersion,
    /// The first element inside Body: its local name is the operation.
    pub operation: Element,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("the root element is not a SOAP 1.1 or 1.2 Envelope")]
    NotAnEnvelope,
    #[error("the Envelope has no Body")]
    NoBody,
    #[error("the Body holds no operation element")]
    NoOperation,
}

/// Parses a SOAP request and returns its operation element.
pub fn parse_request(body: &[u8], limits: &Limits) -> Result<Request, EnvelopeError> {
    let root = xml::parse(body, limits)?;
    let version = match (root.name.as_str(), root.ns.as_deref()) {
        ("Envelope", Some(SOAP11_NS)) => SoapVersion::Soap11,
        ("Envelope", Some(SOAP12_NS)) => SoapVersion::Soap12,
        _ => return Err(EnvelopeError::NotAnEnvelope),
    };
    let ns = root.ns.clone();
    let body = root.children.into_iter().find(|c| c.name == "Body" && c.ns == ns).ok_or(EnvelopeError::NoBody)?;
    let operation = body.children.into_iter().next().ok_or(EnvelopeError::NoOperation)?;
    Ok(Request { version, operation })
}

/// The two shapes a real WSUS gives its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeStyle {
    /// WCF (Client web service): `s:` prefix, no XML declaration, xsi/xsd declared on Body.
    Wcf,
    /// ASMX (SimpleAuth, Reporting, server-sync): XML declaration, `soap:` prefix,
    /// xsi/xsd declared on Envelope.
    Asmx,
}

impl EnvelopeStyle {
    /// Wraps an answer in the SOAP version the request came in.
    pub fn wrap_for(self, version: SoapVersion, body_content: &str) -> String {
        match version {
            SoapVersion::Soap11 => self.wrap(body_content),
            SoapVersion::Soap12 => {
                let p = self.prefix();
                let decl = if self == EnvelopeStyle::Asmx { "<?xml version=\"1.0\" encoding=\"utf-8\"?>" } else { "" };
                format!(
                    "{decl}<{p}:Envelope xmlns:{p}=\"{SOAP12_NS}\"><{p}:Body>{body_content}</{p}:Body></{p}:Envelope>"
                )
            }
        }
    }

    /// Wraps an already-encoded body element in a SOAP 1.1 envelope.
    pub fn wrap(self, body_content: &str) -> String {
        match self {
            EnvelopeStyle::Wcf => format!(
                "<s:Envelope xmlns:s=\"{SOAP11_NS}\"><s:Body xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
                 xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">{body_content}</s:Body></s:Envelope>"
            ),
            EnvelopeStyle::Asmx => format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{SOAP11_NS}\" \
                 xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\
                 <soap:Body>{body_content}</soap:Body></soap:Envelope>"
            ),
        }
    }

    pub(crate) fn prefix(self) -> &'static str {
        match self {
            EnvelopeStyle::Wcf => "s",
            EnvelopeStyle::Asmx => "soap",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_prefix_and_both_versions() {
        let zeep = br#"<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body><ns0:GetConfig xmlns:ns0="http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService"><ns0:protocolVersion>1.20</ns0:protocolVersion></ns0:GetConfig></soap-env:Body></soap-env:Envelope>"#;
        let r = parse_request(zeep, &Limits::default()).unwrap();
        assert_eq!((r.version, r.operation.name.as_str()), (SoapVersion::Soap11, "GetConfig"));
        let soap12 = br#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Header/><e:Body><GetAuthConfig xmlns="http://www.microsoft.com/SoftwareDistribution"/></e:Body></e:Envelope>"#;
        assert_eq!(parse_request(soap12, &Limits::default()).unwrap().version, SoapVersion::Soap12);
    }

    #[test]
    fn answers_follow_the_request_version() {
        let wrapped = EnvelopeStyle::Wcf.wrap_for(SoapVersion::Soap12, "<X/>");
        let parsed = parse_request(wrapped.as_bytes(), &Limits::default()).unwrap();
        assert_eq!((parsed.version, parsed.operation.name.as_str()), (SoapVersion::Soap12, "X"));
        assert_eq!(EnvelopeStyle::Asmx.wrap_for(SoapVersion::Soap11, "<X/>"), EnvelopeStyle::Asmx.wrap("<X/>"));
    }

    #[test]
    fn not_an_envelope() {
        let l = Limits::default();
        assert_eq!(parse_request(b"<GetConfig/>", &l), Err(EnvelopeError::NotAnEnvelope));
        let wrong_ns = br#"<s:Envelope xmlns:s="urn:other"><s:Body><X/></s:Body></s:Envelope>"#;
        assert_eq!(parse_request(wrong_ns, &l), Err(EnvelopeError::NotAnEnvelope));
        let no_body = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/></s:Envelope>"#;
        assert_eq!(parse_request(no_body, &l), Err(EnvelopeError::NoBody));
        let empty =
            br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body> </s:Body></s:Envelope>"#;
        assert_eq!(parse_request(empty, &l), Err(EnvelopeError::NoOperation));
    }
}
