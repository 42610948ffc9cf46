//! A small element tree built with hard limits: what request decoding reads from.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Hard limits on what a request may contain. Exceeding one is an error, never a
/// partial parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_depth: usize,
    pub max_elements: usize,
}

impl Default for Limits {
    /// Roomy for real clients (a full-scan SyncUpdates with thousands of cached ids is
    /// tens of KB), small enough that a hostile body cannot hurt.
    fn default() -> Self {
        Self { max_body_bytes: 8 * 1024 * 1024, max_depth: 64, max_elements: 200_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("elements nest deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("more than {limit} elements")]
    TooManyElements { limit: usize },
    #[error("DTDs are not accepted")]
    Doctype,
    #[error("entity reference &{0}; is not accepted")]
    Entity(String),
    #[error("body is not valid UTF-8 or UTF-16")]
    Encoding,
    #[error("namespace prefix {0:?} is not declared")]
    UnknownPrefix(String),
    #[error("no root element")]
    Empty,
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// One element: namespace URI, local name, attributes by local name, children, text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Shared by the elements of one namespace (parsing allocates it once).
    pub ns: Option<std::sync::Arc<str>>,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Character data directly inside this element (unescaped, not trimmed).
    pub text: String,
}

impl Element {
    /// The first child with this local name, whatever its prefix or namespace.
    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == local)
    }

    /// Every child with this local name.
    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == local)
    }

    /// An attribute by local name.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == local).map(|(_, v)| v.as_str())
    }

    /// The text with surrounding whitespace removed (XML Schema collapses it for every
    /// non-string type).
    pub fn value(&self) -> &str {
        self.text.trim()
    }

    /// `xsi:nil="true"` (the soapenc style of the 2006 examples).
    pub fn is_nil(&self) -> bool {
        matches!(self.attr("nil"), Some("true") | Some("1"))
    }
}

/// Decodes UTF-8 (BOM optional) or UTF-16 with a BOM into a string.
pub fn decode_text(body: &[u8]) -> Result<std::borrow::Cow<'_, str>, XmlError> {
    use std::borrow::Cow;
    let utf16 = |bytes: &[u8], le: bool| -> Result<Cow<'_, str>, XmlError> {
        if !bytes.len().is_multiple_of(2) {
            return Err(XmlError::Encoding);
        }
        let units = bytes
            .chunks_exact(2)
            .map(|p| if le { u16::from_le_bytes([p[0], p[1]]) } else { u16::from_be_bytes([p[0], p[1]]) });
        char::decode_utf16(units).collect::<Result<String, _>>().map(Cow::Owned).map_err(|_| XmlError::Encoding)
    };
    match body {
        [0xEF, 0xBB, 0xBF, rest @ ..] => std::str::from_utf8(rest).map(Cow::Borrowed).map_err(|_| XmlError::Encoding),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        _ => std::str::from_utf8(body).map(Cow::Borrowed).map_err(|_| XmlError::Encoding),
    }
}

/// Parses a whole document into its root element, enforcing `limits`.
// One function on purpose: one streaming state machine, each arm a step on the same element stack.
pub fn parse(body: &[u8], limits: &Limits) -> Result<Element, XmlError> {
    if body.len() > limits.max_body_bytes {
        return Err(XmlError::TooLarge { limit: limits.max_body_bytes });
    }
    let text = decode_text(body)?;
    let mut reader = NsReader::from_str(&text);
    reader.config_mut().expand_empty_elements = true;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    // The namespaces seen so far: a document uses a handful, thousands of times.
    let mut namespaces: Vec<std::sync::Arc<str>> = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError::Malformed("content after the root element".into()));
                }
                count += 1;
                if count > limits.max_elements {
                    return Err(XmlError::TooManyElements { limit: limits.max_elements });
                }
                if stack.len() >= limits.max_depth {
                    return Err(XmlError::TooDeep { limit: limits.max_depth });
                }
                let ns = match ns {
                    ResolveResult::Bound(n) => {
                        let uri = n.as_ref();
                        match namespaces.iter().find(|k| &***k == uri) {
                            Some(known) => Some(known.clone()),
                            None => {
                                let new: std::sync::Arc<str> = uri.into();
                                namespaces.push(new.clone());
                                Some(new)
                            }
                        }
                    }
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(p) => {
                        return Err(XmlError::UnknownPrefix(p.to_string()));
                    }
                };
                let name = start.local_name().as_ref().to_owned();
                let mut attrs = Vec::new();
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| XmlError::Malformed(e.to_string()))?;
                    let key = attr.key.local_name().as_ref().to_owned();
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| entity_or_malformed(e.to_string()))?;
                    attrs.push((key, value.into_owned()));
                }
                stack.push(Element { ns, name, attrs, children: Vec::new(), text: String::new() });
            }
            Event::End(_) => {
                let done = stack.pop().ok_or_else(|| XmlError::Malformed("unexpected end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(XmlError::Malformed("text outside the root element".into())),
                }
            }
            Event::CData(c) => {
                let content = c.into_inner();
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&content),
                    None => return Err(XmlError::Malformed("CDATA outside the root element".into())),
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match r.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(XmlError::Entity(other.to_owned())),
                    },
                    Err(e) => return Err(XmlError::Malformed(e.to_string())),
                };
                match stack.last_mut() {
                    Some(top) => top.text.push(resolved),
                    None => return Err(XmlError::Malformed("reference outside the root element".into())),
                }
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Empty(_) => unreachable!("expand_empty_elements is on"),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("unexpected end of document".into()));
    }
    root.ok_or(XmlError::Empty)
}

fn entity_or_malformed(message: String) -> XmlError {
    // quick-xml reports unknown entities in attribute values as an escape error.
    if message.contains("entity") { XmlError::Entity(message) } else { XmlError::Malformed(message) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Element, XmlError> {
        parse(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn names_are_local_and_namespaces_resolved() {
        let e = parse_str(
            r#"<a:Root xmlns:a="urn:x" xmlns="urn:d"><Child k="v &amp; w">1 &lt; 2 &#x41;</Child><a:Child/></a:Root>"#,
        )
        .unwrap();
        assert_eq!((e.ns.as_deref(), e.name.as_str()), (Some("urn:x"), "Root"));
        let c: Vec<_> = e.children_named("Child").collect();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].ns.as_deref(), Some("urn:d"));
        assert_eq!(c[0].text, "1 < 2 A");
        assert_eq!(c[0].attr("k"), Some("v & w"));
    }

    #[test]
    fn hostile_documents_are_refused() {
        assert_eq!(parse_str(r#"<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>"#), Err(XmlError::Doctype));
        assert!(matches!(parse_str("<r>&x;</r>"), Err(XmlError::Entity(_))));
        assert!(matches!(parse_str("<r><a></r>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse_str("<r><a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse_str("<p:r/>"), Err(XmlError::UnknownPrefix(_))));
        assert_eq!(parse_str(""), Err(XmlError::Empty));
        assert_eq!(parse(b"<r>\xff</r>", &Limits::default()), Err(XmlError::Encoding));

        let limits = Limits { max_body_bytes: 1000, max_depth: 3, max_elements: 5 };
        assert_eq!(parse(&[b' '; 1001], &limits), Err(XmlError::TooLarge { limit: 1000 }));
        assert_eq!(parse(b"<a><b><c><d/></c></b></a>", &limits), Err(XmlError::TooDeep { limit: 3 }));
        assert_eq!(parse(b"<a><b/><b/><b/><b/><b/></a>", &limits), Err(XmlError::TooManyElements { limit: 5 }));
        let deep = "<a>".repeat(100_000);
        assert_eq!(parse(deep.as_bytes(), &Limits::default()), Err(XmlError::TooDeep { limit: 64 }));
    }

    #[test]
    fn utf16_with_bom_is_read() {
        let mut body = vec![0xFF, 0xFE];
        for u in "<r>é</r>".encode_utf16() {
            body.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(parse(&body, &Limits::default()).unwrap().text, "é");
    }
}
