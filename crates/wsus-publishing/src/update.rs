//! A package definition as the update document WSUS serves, the way WSUS's own publishing
//! translation (`TranslateSdpToSus.xslt`) maps it: the package id is the update id, the
//! product category and the classification are prerequisites, the rules and the
//! installer's data carried over into the `msus/2002/12` namespaces clients read, and the
//! file is the signed Cabinet the server made, not the installer itself.

use std::fmt::Write as _;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::Digest as _;
use uuid::Uuid;
use wsus_metadata::tree::{Element, Node};

use crate::PublishError;
use crate::sdp::{CORPORATE_PUBLISHING, Installer, Package};

const UPD: &str = "http://schemas.microsoft.com/msus/2002/12/Update";
const CAT: &str = "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const COMMAND_LINE: &str = "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation";
const WINDOWS_INSTALLER: &str = "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsInstaller";

/// The publishing schemas' rule namespaces and the ones update documents use, with the
/// prefix written for each.
const RULE_NAMESPACES: [(&str, &str, &str); 3] = [
    ("BaseApplicabilityRules.xsd", "http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules", "bar"),
    ("LogicalApplicabilityRules.xsd", "http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules", "lar"),
    ("MsiApplicabilityRules.xsd", "http://schemas.microsoft.com/msus/2002/12/MsiApplicabilityRules", "msiar"),
];

/// The Company category of locally published packages without a vendor's own, and the
/// Product category WSUS's translation falls back to.
pub const LOCAL_PUBLISHER: Uuid = uuid::uuid!("7c40e8c2-01ae-47f5-9af2-6e75a0582518");
pub const LOCALLY_PUBLISHED_PACKAGES: Uuid = uuid::uuid!("5cc25303-143f-40f3-a2ff-803a1db69955");

/// The signed Cabinet a publication's clients download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFile {
    pub file_name: String,
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// One revision of a published package.
#[derive(Debug, Clone)]
pub struct Publication<'a> {
    pub package: &'a Package,
    pub revision: i32,
    /// This server's id.
    pub publisher: Uuid,
    pub product_category: Uuid,
    /// None: metadata only, the content is hosted elsewhere.
    pub file: Option<&'a PublishedFile>,
}

/// A vendor's Company category: named by the vendor, so every server that publishes for
/// the same vendor files it under the same category. The first 16 bytes of the SHA-256 of
/// the lower-case name, read as a GUID's little-endian bytes: the id WSUS gave "Patch My
/// PC" is exactly that (an inference from one published id; no source states the rule).
pub fn company_id(vendor: &str) -> Uuid {
    let digest = sha2::Sha256::digest(vendor.trim().to_lowercase().as_bytes());
    Uuid::from_bytes_le(digest[..16].try_into().expect("16 bytes"))
}

/// A product's category, under its vendor: the same rule over "vendor/product" (this
/// server's choice; WSUS's is not known).
pub fn product_id(vendor: &str, product: &str) -> Uuid {
    company_id(&format!("{}/{}", vendor.trim(), product.trim()))
}

/// The update document of a publication.
pub fn update_document(p: &Publication) -> Result<String, PublishError> {
    let pkg = p.package;
    let item = &pkg.item;
    let mut x = String::with_capacity(4096);
    let _ = write!(
        x,
        "<upd:Update xmlns:upd=\"{UPD}\" xmlns:xsi=\"{XSI}\" xmlns:cmd=\"{COMMAND_LINE}\" xmlns:msp=\"{WINDOWS_INSTALLER}\""
    );
    for (_, ns, prefix) in RULE_NAMESPACES {
        let _ = write!(x, " xmlns:{prefix}=\"{ns}\"");
    }
    x.push('>');
    let _ = write!(x, "<upd:UpdateIdentity UpdateID=\"{}\" RevisionNumber=\"{}\" />", pkg.package_id, p.revision);

    let handler = match item.installer {
        Installer::CommandLine { .. } => COMMAND_LINE,
        Installer::Msi { .. } | Installer::Msp { .. } => WINDOWS_INSTALLER,
    };
    x.push_str("<upd:Properties UpdateType=\"Software\" ExplicitlyDeployable=\"true\"");
    attr(&mut x, "DefaultPropertiesLanguage", &pkg.localized[0].language);
    attr(&mut x, "Handler", handler);
    if let Some(f) = p.file {
        attr(&mut x, "MaxDownloadSize", &f.size.to_string());
        attr(&mut x, "MinDownloadSize", "0");
    }
    attr(&mut x, "PublicationState", if pkg.expired { "Expired" } else { "Published" });
    attr(&mut x, "CreationDate", &pkg.creation_date.to_rfc3339_opts(SecondsFormat::Millis, true));
    attr(&mut x, "PublisherID", &p.publisher.to_string());
    attr(&mut x, "IsLocallyPublished", "true");
    if let Some(s) = &pkg.severity {
        attr(&mut x, "MsrcSeverity", s);
    }
    x.push('>');
    behaviour(&mut x, "InstallationBehavior", Some(&item.install_behaviour));
    behaviour(&mut x, "UninstallationBehavior", item.uninstall_behaviour.as_ref());
    for url in &pkg.more_info_urls {
        text_element(&mut x, "upd:MoreInfoUrl", url);
    }
    if let Some(url) = &pkg.support_url {
        text_element(&mut x, "upd:SupportUrl", url);
    }
    if let Some(b) = &pkg.security_bulletin {
        text_element(&mut x, "upd:SecurityBulletinID", b);
    }
    for cve in &pkg.cves {
        text_element(&mut x, "upd:CveID", cve);
    }
    if let Some(kb) = &pkg.kb_article {
        text_element(&mut x, "upd:KBArticleID", kb);
    }
    x.push_str("</upd:Properties>");

    x.push_str("<upd:LocalizedPropertiesCollection>");
    for l in &pkg.localized {
        x.push_str("<upd:LocalizedProperties>");
        text_element(&mut x, "upd:Language", &l.language);
        text_element(&mut x, "upd:Title", &l.title);
        if let Some(d) = &l.description {
            text_element(&mut x, "upd:Description", d);
        }
        x.push_str("</upd:LocalizedProperties>");
    }
    x.push_str("</upd:LocalizedPropertiesCollection>");

    x.push_str("<upd:Relationships>");
    if !pkg.superseded.is_empty() {
        x.push_str("<upd:SupersededUpdates>");
        for s in &pkg.superseded {
            let _ = write!(x, "<upd:UpdateIdentity UpdateID=\"{s}\" />");
        }
        x.push_str("</upd:SupersededUpdates>");
    }
    let _ = write!(
        x,
        "<upd:Prerequisites><upd:AtLeastOne IsCategory=\"true\"><upd:UpdateIdentity UpdateID=\"{}\" /></upd:AtLeastOne><upd:AtLeastOne IsCategory=\"true\"><upd:UpdateIdentity UpdateID=\"{}\" /></upd:AtLeastOne>",
        p.product_category,
        pkg.classification.category()
    );
    for group in &pkg.prerequisites {
        x.push_str("<upd:AtLeastOne>");
        for id in group {
            let _ = write!(x, "<upd:UpdateIdentity UpdateID=\"{id}\" />");
        }
        x.push_str("</upd:AtLeastOne>");
    }
    x.push_str("</upd:Prerequisites></upd:Relationships>");

    if !item.rules.is_empty() {
        x.push_str("<upd:ApplicabilityRules>");
        for (kind, rule) in &item.rules {
            let _ = write!(x, "<upd:{}>", kind.name());
            rule_element(&mut x, rule)?;
            let _ = write!(x, "</upd:{}>", kind.name());
        }
        x.push_str("</upd:ApplicabilityRules>");
    }

    if let Some(f) = p.file {
        let b64 = base64::engine::general_purpose::STANDARD;
        x.push_str("<upd:Files><upd:File");
        attr(&mut x, "Digest", &b64.encode(f.sha1));
        attr(&mut x, "DigestAlgorithm", "SHA1");
        attr(&mut x, "FileName", &f.file_name);
        attr(&mut x, "Size", &f.size.to_string());
        attr(&mut x, "Modified", &f.modified.to_rfc3339_opts(SecondsFormat::Millis, true));
        if matches!(item.installer, Installer::Msp { .. }) {
            attr(&mut x, "PatchingType", "SelfContained");
        }
        let _ =
            write!(x, "><upd:AdditionalDigest Algorithm=\"SHA256\">{}</upd:AdditionalDigest>", b64.encode(f.sha256));
        x.push_str("</upd:File></upd:Files>");
    }

    match &item.installer {
        Installer::CommandLine { attributes, return_codes } => {
            x.push_str("<upd:HandlerSpecificData xsi:type=\"cmd:CommandLineInstallation\"><cmd:InstallCommand");
            attrs(&mut x, attributes);
            x.push('>');
            for code in return_codes {
                x.push_str("<cmd:ReturnCode");
                attrs(&mut x, code);
                x.push_str(" />");
            }
            x.push_str("</cmd:InstallCommand></upd:HandlerSpecificData>");
        }
        Installer::Msi { attributes } => {
            x.push_str("<upd:HandlerSpecificData xsi:type=\"msp:WindowsInstallerApp\"><msp:MsiData");
            attrs(&mut x, attributes);
            x.push_str(" /></upd:HandlerSpecificData>");
        }
        Installer::Msp { attributes, .. } => {
            x.push_str("<upd:HandlerSpecificData xsi:type=\"msp:WindowsInstaller\"><msp:MspData");
            attrs(&mut x, attributes);
            x.push_str(" /></upd:HandlerSpecificData>");
        }
    }
    x.push_str("</upd:Update>");
    Ok(x)
}

/// A Company (vendor), Product or classification category document, as Microsoft's are
/// written.
pub fn category_document(
    id: Uuid,
    kind: CategoryKind,
    title: &str,
    parent: Option<Uuid>,
    publisher: Uuid,
    created: DateTime<Utc>,
) -> String {
    let mut x = String::with_capacity(1024);
    let _ = write!(
        x,
        "<upd:Update xmlns:upd=\"{UPD}\" xmlns:xsi=\"{XSI}\" xmlns:cat=\"{CAT}\" xmlns:lar=\"http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules\"><upd:UpdateIdentity UpdateID=\"{id}\" RevisionNumber=\"{}\" /><upd:Properties DefaultPropertiesLanguage=\"en\" UpdateType=\"Category\" Handler=\"{CAT}\" PublicationState=\"Published\"",
        kind.revision()
    );
    attr(&mut x, "CreationDate", &created.to_rfc3339_opts(SecondsFormat::Millis, true));
    attr(&mut x, "PublisherID", &publisher.to_string());
    attr(&mut x, "IsLocallyPublished", "true");
    x.push_str("></upd:Properties><upd:LocalizedPropertiesCollection><upd:LocalizedProperties>");
    text_element(&mut x, "upd:Language", "en");
    text_element(&mut x, "upd:Title", title);
    text_element(&mut x, "upd:Description", title);
    x.push_str("</upd:LocalizedProperties></upd:LocalizedPropertiesCollection>");
    if let Some(parent) = parent {
        let _ = write!(
            x,
            "<upd:Relationships><upd:Prerequisites><upd:AtLeastOne IsCategory=\"true\"><upd:UpdateIdentity UpdateID=\"{parent}\" /></upd:AtLeastOne></upd:Prerequisites></upd:Relationships>"
        );
    }
    let information = match kind {
        CategoryKind::Company => "CategoryType=\"Company\" ProhibitsSubcategories=\"false\" ProhibitsUpdates=\"true\"",
        CategoryKind::Product => "CategoryType=\"Product\" ProhibitsSubcategories=\"true\" ProhibitsUpdates=\"false\"",
        CategoryKind::Classification => {
            "CategoryType=\"UpdateClassification\" ProhibitsSubcategories=\"true\" ProhibitsUpdates=\"false\""
        }
    };
    let _ = write!(
        x,
        "<upd:ApplicabilityRules><upd:IsInstalled><lar:True /></upd:IsInstalled></upd:ApplicabilityRules><upd:HandlerSpecificData xsi:type=\"cat:Category\"><cat:CategoryInformation {information} /></upd:HandlerSpecificData></upd:Update>"
    );
    x
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryKind {
    Company,
    Product,
    /// One of Microsoft's classifications, for a server that never synchronised them.
    Classification,
}

impl CategoryKind {
    /// The revision this server writes: 100 for its own categories; 1 for a classification
    /// it stands in for, so Microsoft's own revision, once synchronised, is the newer.
    pub fn revision(self) -> i32 {
        match self {
            Self::Company | Self::Product => 100,
            Self::Classification => 1,
        }
    }
}

fn behaviour(x: &mut String, name: &str, attributes: Option<&Vec<(String, String)>>) {
    let Some(attributes) = attributes.filter(|a| !a.is_empty()) else { return };
    let _ = write!(x, "<upd:{name}");
    attrs(x, attributes);
    x.push_str(" />");
}

/// A rule element and its children, in the update namespaces.
fn rule_element(x: &mut String, e: &Element) -> Result<(), PublishError> {
    let prefix = rule_prefix(e)?;
    let _ = write!(x, "<{prefix}:{}", e.local);
    attrs(x, &e.attrs);
    if e.children.is_empty() {
        x.push_str(" />");
        return Ok(());
    }
    x.push('>');
    for child in &e.children {
        match child {
            Node::Element(c) => rule_element(x, c)?,
            Node::Text(t) => escape_into(x, t, false),
        }
    }
    let _ = write!(x, "</{prefix}:{}>", e.local);
    Ok(())
}

fn rule_prefix(e: &Element) -> Result<&'static str, PublishError> {
    let ns = e.ns.as_deref().unwrap_or_default();
    let schema = ns.strip_prefix(CORPORATE_PUBLISHING).unwrap_or_default();
    RULE_NAMESPACES
        .iter()
        .find(|(from, _, _)| *from == schema)
        .map(|(_, _, prefix)| *prefix)
        .ok_or_else(|| PublishError::Unsupported(format!("the rule {} in namespace {ns:?}", e.local)))
}

fn attrs(x: &mut String, attributes: &[(String, String)]) {
    for (k, v) in attributes {
        attr(x, k, v);
    }
}

fn attr(x: &mut String, name: &str, value: &str) {
    let _ = write!(x, " {name}=\"");
    escape_into(x, value, true);
    x.push('"');
}

fn text_element(x: &mut String, name: &str, text: &str) {
    let _ = write!(x, "<{name}>");
    escape_into(x, text, false);
    let _ = write!(x, "</{name}>");
}

fn escape_into(x: &mut String, s: &str, attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => x.push_str("&amp;"),
            '<' => x.push_str("&lt;"),
            '>' => x.push_str("&gt;"),
            '"' if attribute => x.push_str("&quot;"),
            // Kept as written: an attribute's raw newline or tab would read back as a space.
            '\n' if attribute => x.push_str("&#10;"),
            '\r' => x.push_str("&#13;"),
            '\t' if attribute => x.push_str("&#9;"),
            c => x.push(c),
        }
    }
}
