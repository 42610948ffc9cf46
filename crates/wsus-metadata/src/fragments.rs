//! The fragments MS-WUSP serves, derived from the full document exactly as MS-WUSP
//! 3.1.1.1 specifies and a real WSUS writes them: namespace declarations and prefixes
//! stripped, rule elements renamed `b.` / `m.` / `d.`, empty elements as `<X />`.

use crate::tree::{Element, Node};
use crate::{Update, ns};

/// Core: identity, the scan-relevant properties, relationships and rules.
pub fn core(u: &Update) -> String {
    let root = &u.root;
    let mut out = String::with_capacity(1024);
    if let Some(id) = root.child(ns::UPDATE, "UpdateIdentity") {
        write_element(&mut out, id, "UpdateIdentity");
    }
    if let Some(p) = root.child(ns::UPDATE, "Properties") {
        // A fixed attribute order, defaults left out, no children: as WSUS writes it.
        out.push_str("<Properties");
        for name in ["UpdateType", "ExplicitlyDeployable", "AutoSelectOnWebSites", "OSUpgrade", "EulaID"] {
            if let Some(v) = p.attr(name).filter(|v| !is_default(name, v)) {
                push_attr(&mut out, name, v);
            }
        }
        out.push_str(" />");
    }
    for name in ["Relationships", "ApplicabilityRules"] {
        if let Some(e) = root.child(ns::UPDATE, name) {
            write_element(&mut out, e, name);
        }
    }
    out
}

/// Attributes of Properties the Extended fragment leaves out (MS-WUSP 3.1.1.1).
const NOT_EXTENDED: &[&str] = &[
    "UpdateType",
    "ExplicitlyDeployable",
    "AutoSelectOnWebSites",
    "EulaID",
    "PublicationState",
    "PublisherID",
    "CreationDate",
    "IsPublic",
    "LegacyName",
    "DetectoidType",
    "OSUpgrade",
];

/// Extended: the other properties, the files and the handler data.
pub fn extended(u: &Update) -> String {
    let root = &u.root;
    let mut out = String::with_capacity(1024);
    if let Some(p) = root.child(ns::UPDATE, "Properties") {
        let kept = Element {
            ns: p.ns.clone(),
            local: p.local.clone(),
            attrs: p
                .attrs
                .iter()
                .filter(|(k, v)| !NOT_EXTENDED.contains(&k.as_str()) && !is_default(k, v))
                .cloned()
                .collect(),
            children: p.children.clone(),
        };
        write_element(&mut out, &kept, "ExtendedProperties");
    }
    for name in ["Files", "HandlerSpecificData"] {
        if let Some(e) = root.child(ns::UPDATE, name) {
            write_element(&mut out, e, name);
        }
    }
    out
}

/// LocalizedProperties, one per language: (language, fragment).
pub fn localized(u: &Update) -> Vec<(String, String)> {
    let Some(coll) = u.root.child(ns::UPDATE, "LocalizedPropertiesCollection") else { return Vec::new() };
    coll.children_named(ns::UPDATE, "LocalizedProperties")
        .map(|lp| {
            let lang = lp.child(ns::UPDATE, "Language").map(|l| l.text().trim().to_owned()).unwrap_or_default();
            let mut out = String::new();
            write_element(&mut out, lp, "LocalizedProperties");
            (lang, out)
        })
        .collect()
}

/// Eula, one per EulaFile: (language, fragment).
pub fn eulas(u: &Update) -> Vec<(String, String)> {
    let Some(coll) = u.root.child(ns::UPDATE, "LocalizedPropertiesCollection") else { return Vec::new() };
    coll.children_named(ns::UPDATE, "EulaFile")
        .map(|e| {
            let mut out = String::new();
            write_element(&mut out, e, "EulaFile");
            (e.attr("Language").unwrap_or_default().to_owned(), out)
        })
        .collect()
}

/// Attribute values WSUS leaves out of fragments because they are the default.
fn is_default(name: &str, value: &str) -> bool {
    matches!(
        (name, value),
        ("ExplicitlyDeployable", "false")
            | ("AutoSelectOnWebSites", "false")
            | ("IsPublic", "true")
            | ("PerUser", "false")
    )
}

fn element_name(e: &Element) -> String {
    match e.ns.as_deref() {
        Some(ns::BASE_RULES) => format!("b.{}", e.local),
        Some(ns::MSI_RULES) => format!("m.{}", e.local),
        Some(ns::WINDOWS_DRIVER) => format!("d.{}", e.local),
        _ => e.local.clone(),
    }
}

/// Writes `e` (named `name` at the top, renamed by namespace below) without recursion,
/// so no document can exhaust the stack.
fn write_element(out: &mut String, e: &Element, name: &str) {
    enum Step<'a> {
        Open(&'a Element, Option<&'a str>),
        Text(&'a str),
        Close(String),
    }
    let mut steps = vec![Step::Open(e, Some(name))];
    while let Some(step) = steps.pop() {
        match step {
            Step::Text(t) => push_text(out, t),
            Step::Close(n) => {
                out.push_str("</");
                out.push_str(&n);
                out.push('>');
            }
            Step::Open(e, top_name) => {
                let n = top_name.map(str::to_owned).unwrap_or_else(|| element_name(e));
                out.push('<');
                out.push_str(&n);
                for (k, v) in &e.attrs {
                    push_attr(out, k, v);
                }
                if e.children.is_empty() {
                    out.push_str(" />");
                    continue;
                }
                out.push('>');
                steps.push(Step::Close(n));
                for child in e.children.iter().rev() {
                    steps.push(match child {
                        Node::Element(c) => Step::Open(c, None),
                        Node::Text(t) => Step::Text(t),
                    });
                }
            }
        }
    }
}

fn push_attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `text` escaped for element content (`&`, `<`, `>`), as WSUS writes fragments.
pub fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}
