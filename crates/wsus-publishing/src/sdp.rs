//! Software Distribution Package (SDP) definitions, the XML that System Center Updates
//! Publisher catalogs and the other publishing tools write (WSUS's
//! `SoftwareDistributionPackage.xsd`): what the package is, where it applies, and how its
//! one installable item installs.

use chrono::{DateTime, Utc};
use uuid::Uuid;
use wsus_metadata::tree::{self, Element};

use crate::PublishError;

/// The publishing schemas' common namespace prefix.
pub const CORPORATE_PUBLISHING: &str = "http://schemas.microsoft.com/wsus/2005/04/CorporatePublishing/";
pub const SDP: &str = "http://schemas.microsoft.com/wsus/2005/04/CorporatePublishing/SoftwareDistributionPackage.xsd";
pub const CMD: &str =
    "http://schemas.microsoft.com/wsus/2005/04/CorporatePublishing/Installers/CommandLineInstallation.xsd";
pub const MSI: &str = "http://schemas.microsoft.com/wsus/2005/04/CorporatePublishing/Installers/MsiInstallation.xsd";
pub const MSP: &str = "http://schemas.microsoft.com/wsus/2005/04/CorporatePublishing/Installers/MspInstallation.xsd";

/// A package definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub package_id: Uuid,
    pub creation_date: DateTime<Utc>,
    pub vendor: String,
    /// The first is the product it is filed under; none: WSUS's "Locally published
    /// packages".
    pub products: Vec<String>,
    pub expired: bool,
    pub more_info_urls: Vec<String>,
    pub support_url: Option<String>,
    /// The first is the default language.
    pub localized: Vec<Localized>,
    pub classification: Classification,
    pub severity: Option<String>,
    pub security_bulletin: Option<String>,
    pub kb_article: Option<String>,
    pub cves: Vec<String>,
    pub superseded: Vec<Uuid>,
    /// Each group: one of these packages must be installed first.
    pub prerequisites: Vec<Vec<Uuid>>,
    pub item: InstallableItem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localized {
    pub language: String,
    pub title: String,
    pub description: Option<String>,
}

/// `UpdateSpecificData/@UpdateClassification`, or an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    Updates,
    CriticalUpdates,
    SecurityUpdates,
    FeaturePacks,
    UpdateRollups,
    ServicePacks,
    Tools,
    Drivers,
    Applications,
}

impl Classification {
    fn parse(value: &str) -> Result<Self, PublishError> {
        Ok(match value {
            "Updates" => Self::Updates,
            "Critical Updates" => Self::CriticalUpdates,
            "Security Updates" => Self::SecurityUpdates,
            "Feature Packs" => Self::FeaturePacks,
            "Update Rollups" => Self::UpdateRollups,
            "Service Packs" => Self::ServicePacks,
            "Tools" => Self::Tools,
            "Drivers" => Self::Drivers,
            // "Hotfixes" is in the schema, but WSUS's own translation gives it no category.
            other => return Err(PublishError::invalid("UpdateClassification", other)),
        })
    }

    /// Its name, as WSUS shows it (and as definitions spell it).
    pub fn name(self) -> &'static str {
        match self {
            Self::Updates => "Updates",
            Self::CriticalUpdates => "Critical Updates",
            Self::SecurityUpdates => "Security Updates",
            Self::FeaturePacks => "Feature Packs",
            Self::UpdateRollups => "Update Rollups",
            Self::ServicePacks => "Service Packs",
            Self::Tools => "Tools",
            Self::Drivers => "Drivers",
            Self::Applications => "Applications",
        }
    }

    /// The classification's category update (what WSUS's publishing translation names).
    pub fn category(self) -> Uuid {
        let id = match self {
            Self::Updates => "cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83",
            Self::CriticalUpdates => "e6cf1350-c01b-414d-a61f-263d14d133b4",
            Self::SecurityUpdates => "0fa1201d-4330-4fa8-8ae9-b877473b6441",
            Self::FeaturePacks => "b54e7d24-7add-428f-8b75-90a396fa584f",
            Self::UpdateRollups => "28bc880e-0592-4cbf-8f95-c79b17911d5f",
            Self::ServicePacks => "68c5b0a3-d1a6-4553-ae49-01d3a7827828",
            Self::Tools => "b4832bd8-e735-4761-8dab-37f882276dab",
            Self::Drivers => "ebfc1fc5-71a4-4f7b-9aca-3b9a503104a0",
            Self::Applications => "5c9376ab-8ce6-464a-b136-22113dd69801",
        };
        Uuid::parse_str(id).expect("a constant")
    }
}

/// The package's one installable item.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallableItem {
    pub id: Uuid,
    /// IsInstalled, IsSuperseded, IsInstallable, Metadata: the item's rule joined with the
    /// package's (both must hold), each the one rule element.
    pub rules: Vec<(RuleKind, Element)>,
    /// InstallProperties' attributes (Impact, RebootBehavior, ...), as given.
    pub install_behaviour: Vec<(String, String)>,
    pub uninstall_behaviour: Option<Vec<(String, String)>>,
    pub installer: Installer,
    /// The installer file the definition was written for, when it names one.
    pub origin_file: Option<OriginFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    IsInstalled,
    IsSuperseded,
    IsInstallable,
    Metadata,
}

impl RuleKind {
    pub const ALL: [RuleKind; 4] = [Self::IsInstalled, Self::IsSuperseded, Self::IsInstallable, Self::Metadata];

    pub fn name(self) -> &'static str {
        match self {
            Self::IsInstalled => "IsInstalled",
            Self::IsSuperseded => "IsSuperseded",
            Self::IsInstallable => "IsInstallable",
            Self::Metadata => "Metadata",
        }
    }
}

/// How the client installs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installer {
    /// `cmd:CommandLineInstallerData`: a program run with arguments, its exit codes mapped.
    CommandLine { attributes: Vec<(String, String)>, return_codes: Vec<Vec<(String, String)>> },
    /// `msi:MsiInstallerData`: an MSI installed by Windows Installer.
    Msi { attributes: Vec<(String, String)> },
    /// `msp:MspInstallerData`: a Windows Installer patch; its file named by `MspFileName`,
    /// or the one file of the Cabinet.
    Msp { attributes: Vec<(String, String)>, file: Option<String> },
}

impl Installer {
    /// The file in the Cabinet the client runs, when the definition names it.
    pub fn file(&self) -> Option<&str> {
        let (attributes, name) = match self {
            Installer::CommandLine { attributes, .. } => (attributes, "Program"),
            Installer::Msi { attributes } => (attributes, "MsiFile"),
            Installer::Msp { file, .. } => return file.as_deref(),
        };
        attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn attributes(&self) -> &[(String, String)] {
        match self {
            Installer::CommandLine { attributes, .. }
            | Installer::Msi { attributes }
            | Installer::Msp { attributes, .. } => attributes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginFile {
    pub file_name: String,
    pub size: Option<u64>,
    /// SHA-1, base64, as written.
    pub digest: Option<String>,
}

/// Reads an SDP document.
pub fn parse(xml: &str) -> Result<Package, PublishError> {
    let root = tree::parse(xml).map_err(|e| PublishError::Malformed(e.to_string()))?;
    if !root.is(SDP, "SoftwareDistributionPackage") {
        return Err(PublishError::Malformed(format!("the root element is {}, not an SDP", root.local)));
    }
    let properties = root.child(SDP, "Properties").ok_or(PublishError::Missing("Properties"))?;
    let package_id = uuid_of("PackageID", properties.attr("PackageID"))?;
    let creation_date = properties
        .attr("CreationDate")
        .ok_or(PublishError::Missing("Properties/@CreationDate"))
        .and_then(|v| date(v).ok_or_else(|| PublishError::invalid("CreationDate", v)))?;
    if let Some(kind) = properties.attr("UpdateType").filter(|t| *t != "Software") {
        return Err(PublishError::Unsupported(format!("UpdateType {kind} (software updates only)")));
    }
    let expired = match properties.attr("PublicationState") {
        None | Some("Published") => false,
        Some("Expired") => true,
        Some(other) => return Err(PublishError::invalid("PublicationState", other)),
    };
    let texts = |parent: &Element, name: &str| -> Vec<String> {
        parent.children_named(SDP, name).map(|e| e.text().trim().to_owned()).filter(|t| !t.is_empty()).collect()
    };
    let localized: Vec<Localized> = root
        .children_named(SDP, "LocalizedProperties")
        .map(|l| {
            Ok(Localized {
                language: l
                    .child(SDP, "Language")
                    .map(|e| e.text().trim().to_owned())
                    .ok_or(PublishError::Missing("LocalizedProperties/Language"))?,
                title: l
                    .child(SDP, "Title")
                    .map(|e| e.text().trim().to_owned())
                    .ok_or(PublishError::Missing("LocalizedProperties/Title"))?,
                description: l.child(SDP, "Description").map(|e| e.text().trim().to_owned()).filter(|t| !t.is_empty()),
            })
        })
        .collect::<Result<_, PublishError>>()?;
    if localized.is_empty() {
        return Err(PublishError::Missing("LocalizedProperties"));
    }
    let (classification, severity, security_bulletin, kb_article, cves) =
        match (root.child(SDP, "UpdateSpecificData"), root.child(SDP, "ApplicationSpecificData")) {
            (Some(u), _) => (
                Classification::parse(
                    u.attr("UpdateClassification").ok_or(PublishError::Missing("@UpdateClassification"))?,
                )?,
                u.attr("MsrcSeverity").map(str::to_owned),
                texts(u, "SecurityBulletinID").into_iter().next(),
                texts(u, "KBArticleID").into_iter().next(),
                texts(u, "CveID"),
            ),
            (None, Some(_)) => (Classification::Applications, None, None, None, Vec::new()),
            (None, None) => return Err(PublishError::Missing("UpdateSpecificData or ApplicationSpecificData")),
        };
    let superseded = root
        .child(SDP, "SupersededPackages")
        .map(|s| texts(s, "PackageID").iter().map(|v| uuid_of("SupersededPackages/PackageID", Some(v))).collect())
        .transpose()?
        .unwrap_or_default();
    let prerequisites = root
        .children_named(SDP, "Prerequisites")
        .flat_map(|p| p.children_named(SDP, "AtLeastOne"))
        .map(|group| texts(group, "PackageID").iter().map(|v| uuid_of("Prerequisites//PackageID", Some(v))).collect())
        .collect::<Result<Vec<Vec<Uuid>>, _>>()?;
    if root.child(SDP, "BundledPackages").is_some() {
        return Err(PublishError::Unsupported("BundledPackages (a package of packages)".into()));
    }
    let mut items = root.children_named(SDP, "InstallableItem");
    let item = items.next().ok_or(PublishError::Missing("InstallableItem"))?;
    if items.next().is_some() {
        return Err(PublishError::Unsupported("more than one InstallableItem".into()));
    }
    Ok(Package {
        package_id,
        creation_date,
        vendor: properties
            .attr("VendorName")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(PublishError::Missing("Properties/@VendorName"))?
            .to_owned(),
        products: texts(properties, "ProductName"),
        expired,
        more_info_urls: texts(properties, "MoreInfoUrl"),
        support_url: texts(properties, "SupportUrl").into_iter().next(),
        localized,
        classification,
        severity,
        security_bulletin,
        kb_article,
        cves,
        superseded,
        prerequisites,
        item: installable_item(&root, item)?,
    })
    .and_then(checked)
}

/// Everything copied into the update document is a name XML allows and text XML 1.0
/// carries, so the document clients and downstream servers read is well formed.
fn checked(p: Package) -> Result<Package, PublishError> {
    for (kind, rule) in &p.item.rules {
        well_formed(rule).map_err(|why| PublishError::invalid(kind.name(), &why))?;
    }
    let codes = match &p.item.installer {
        Installer::CommandLine { return_codes, .. } => return_codes.as_slice(),
        Installer::Msi { .. } | Installer::Msp { .. } => &[][..],
    };
    let installer = p.item.installer.attributes().to_vec();
    let attributes = &installer;
    let behaviour = p.item.uninstall_behaviour.iter().chain(std::iter::once(&p.item.install_behaviour));
    for list in std::iter::once(attributes).chain(codes).chain(behaviour) {
        attributes_ok(list).map_err(|why| PublishError::invalid("the installer's data", &why))?;
    }
    let texts = p
        .localized
        .iter()
        .flat_map(|l| [Some(&l.language), Some(&l.title), l.description.as_ref()])
        .flatten()
        .chain(&p.more_info_urls)
        .chain(&p.support_url)
        .chain(&p.cves)
        .chain(&p.security_bulletin)
        .chain(&p.kb_article)
        .chain(&p.products)
        .chain(std::iter::once(&p.vendor));
    for t in texts {
        if !t.chars().all(xml_char) {
            return Err(PublishError::invalid("a text", t));
        }
    }
    Ok(p)
}

fn well_formed(e: &Element) -> Result<(), String> {
    if !ncname(&e.local) {
        return Err(format!("the element name {:?}", e.local));
    }
    attributes_ok(&e.attrs)?;
    for child in &e.children {
        match child {
            tree::Node::Element(c) => well_formed(c)?,
            tree::Node::Text(t) if !t.chars().all(xml_char) => return Err(format!("the text {t:?}")),
            tree::Node::Text(_) => {}
        }
    }
    Ok(())
}

/// Names XML allows, none a namespace declaration, none twice; values of XML 1.0 characters.
fn attributes_ok(attributes: &[(String, String)]) -> Result<(), String> {
    for (i, (name, value)) in attributes.iter().enumerate() {
        if !ncname(name) || name.starts_with("xmlns") {
            return Err(format!("the attribute name {name:?}"));
        }
        if attributes[..i].iter().any(|(n, _)| n == name) {
            return Err(format!("the attribute {name:?} twice"));
        }
        if !value.chars().all(xml_char) {
            return Err(format!("the value of {name}"));
        }
    }
    Ok(())
}

/// An XML name without a colon (NCName), from letters, digits, `_`, `-` and `.`: what the
/// schemas' names use.
fn ncname(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// XML 1.0's Char production.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn installable_item(root: &Element, item: &Element) -> Result<InstallableItem, PublishError> {
    let id = uuid_of("InstallableItem/@ID", item.attr("ID"))?;
    let item_rules = item.child(SDP, "ApplicabilityRules");
    let mut rules = Vec::new();
    for kind in RuleKind::ALL {
        let mut parts: Vec<Element> = Vec::new();
        // The package's IsInstalled / IsInstallable hold with the item's own.
        if matches!(kind, RuleKind::IsInstalled | RuleKind::IsInstallable) {
            parts.extend(root.child(SDP, kind.name()).map(one_rule).transpose()?);
        }
        parts.extend(item_rules.and_then(|r| r.child(SDP, kind.name())).map(one_rule).transpose()?);
        let rule = match parts.len() {
            0 => continue,
            1 => parts.remove(0),
            _ => Element {
                ns: Some(format!("{CORPORATE_PUBLISHING}LogicalApplicabilityRules.xsd")),
                local: "And".into(),
                attrs: Vec::new(),
                children: parts.into_iter().map(tree::Node::Element).collect(),
            },
        };
        rules.push((kind, rule));
    }
    let attributes = |e: &Element| e.attrs.clone();
    let installer = if let Some(cmd) = item.child(CMD, "CommandLineInstallerData") {
        Installer::CommandLine {
            attributes: attributes(cmd),
            return_codes: cmd.children_named(CMD, "ReturnCode").map(attributes).collect(),
        }
    } else if let Some(msi) = item.child(MSI, "MsiInstallerData") {
        Installer::Msi { attributes: attributes(msi) }
    } else if let Some(msp) = item.child(MSP, "MspInstallerData") {
        let file = msp.child(MSP, "MspFileName").map(|f| f.text().trim().to_owned()).filter(|f| !f.is_empty());
        Installer::Msp { attributes: attributes(msp), file }
    } else {
        return Err(PublishError::Unsupported(
            "an installer other than CommandLineInstallerData, MsiInstallerData or MspInstallerData".into(),
        ));
    };
    let named = matches!(installer, Installer::Msp { .. }) || installer.file().is_some_and(|f| !f.is_empty());
    if !named {
        return Err(PublishError::Missing("the installer's Program or MsiFile"));
    }
    Ok(InstallableItem {
        id,
        rules,
        install_behaviour: item.child(SDP, "InstallProperties").map(attributes).unwrap_or_default(),
        uninstall_behaviour: item.child(SDP, "UninstallProperties").map(attributes),
        installer,
        origin_file: item.child(SDP, "OriginFile").map(|f| OriginFile {
            file_name: f.attr("FileName").unwrap_or_default().to_owned(),
            size: f.attr("Size").and_then(|s| s.parse().ok()),
            digest: f.attr("Digest").map(str::to_owned),
        }),
    })
}

/// The one rule element inside IsInstalled / IsInstallable / ...
fn one_rule(holder: &Element) -> Result<Element, PublishError> {
    let mut rules = holder.elements();
    match (rules.next(), rules.next()) {
        (Some(rule), None) => Ok(rule.clone()),
        _ => Err(PublishError::invalid(holder_name(holder), "not exactly one rule")),
    }
}

fn holder_name(e: &Element) -> &'static str {
    RuleKind::ALL.into_iter().find(|k| k.name() == e.local).map(RuleKind::name).unwrap_or("a rule")
}

fn uuid_of(what: &'static str, value: Option<&str>) -> Result<Uuid, PublishError> {
    let value = value.ok_or(PublishError::Missing(what))?;
    Uuid::parse_str(value.trim().trim_start_matches('{').trim_end_matches('}'))
        .map_err(|_| PublishError::invalid(what, value))
}

/// xs:dateTime as the tools write it: with a zone (`Z`, `+00:00`) or without (UTC).
fn date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc()))
}
