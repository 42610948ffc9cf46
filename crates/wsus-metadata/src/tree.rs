//! The document as a tree of elements and text: enough to extract what the server
//! interprets and to re-serialise fragments the way WSUS writes them.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::MetadataError;

/// Nesting deeper than this is refused (real documents stay far below it).
const MAX_DEPTH: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI, if any.
    pub ns: Option<String>,
    pub local: String,
    /// Attributes by local name, in document order; namespace declarations left out.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this namespace and local name.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, local))
    }

    pub fn children_named<'a>(&'a self, ns: &'a str, local: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(ns, local))
    }

    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// All text directly inside this element.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }
}

/// Parses a document into its root element. Whitespace-only text between elements is
/// dropped (it is not content; pretty-printed documents give the same fragments).
pub fn parse(xml: &str) -> Result<Element, MetadataError> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let malformed = |reader: &NsReader<&[u8]>, e: &dyn std::fmt::Display| MetadataError::Malformed {
        offset: reader.buffer_position(),
        message: e.to_string(),
    };
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => return Err(malformed(&reader, &e)),
        };
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(malformed(&reader, &"content after the root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(&reader, &format!("nested deeper than {MAX_DEPTH}")));
                }
                let ns = match ns {
                    ResolveResult::Bound(n) => Some(n.as_ref().to_owned()),
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(p) => {
                        return Err(malformed(&reader, &format!("namespace prefix {p:?} is not declared")));
                    }
                };
                let mut attrs = Vec::new();
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| malformed(&reader, &e))?;
                    if attr.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| malformed(&reader, &e))?;
                    attrs.push((attr.key.local_name().as_ref().to_owned(), value.into_owned()));
                }
                stack.push(Element { ns, local: start.local_name().as_ref().to_owned(), attrs, children: Vec::new() });
            }
            Event::End(_) => {
                let done = stack.pop().ok_or_else(|| malformed(&reader, &"unexpected end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content(), &reader)?,
            Event::CData(c) => push_text(&mut stack, &c.into_inner(), &reader)?,
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match r.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(malformed(&reader, &format!("entity &{other}; is not allowed"))),
                    },
                    Err(e) => return Err(malformed(&reader, &e)),
                };
                push_text(&mut stack, c.encode_utf8(&mut [0; 4]), &reader)?;
            }
            Event::DocType(_) => return Err(malformed(&reader, &"DTDs are not allowed")),
            Event::Empty(_) => unreachable!("expand_empty_elements is on"),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(MetadataError::Malformed {
            offset: xml.len() as u64,
            message: "unexpected end of document".into(),
        });
    }
    let mut root = root.ok_or(MetadataError::Malformed { offset: 0, message: "no root element".into() })?;
    drop_blank_text(&mut root);
    Ok(root)
}

fn push_text(stack: &mut [Element], text: &str, reader: &NsReader<&[u8]>) -> Result<(), MetadataError> {
    match stack.last_mut() {
        Some(top) => {
            // Adjacent pieces (text, references) join into one text node.
            if let Some(Node::Text(last)) = top.children.last_mut() {
                last.push_str(text);
            } else {
                top.children.push(Node::Text(text.to_owned()));
            }
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(MetadataError::Malformed {
            offset: reader.buffer_position(),
            message: "text outside the root element".into(),
        }),
    }
}

/// Removes whitespace-only text from elements that also hold elements.
fn drop_blank_text(e: &mut Element) {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        if e.children.iter().any(|n| matches!(n, Node::Element(_))) {
            e.children.retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
        }
        for child in e.children.iter_mut() {
            if let Node::Element(c) = child {
                stack.push(c);
            }
        }
    }
}
