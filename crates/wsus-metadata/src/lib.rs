//! Microsoft update metadata (`msus/2002/12/Update` documents), without I/O.
//!
//! [`Update::parse`] reads a document however it arrives — UTF-8 or UTF-16LE, with or
//! without an XML declaration, the text of an `XmlUpdateBlob`, or the base64 Cabinet of
//! an `XmlUpdateBlobCompressed` ([`decode_compressed_blob`]) — and extracts what the
//! server interprets: identity, type, prerequisites (CNF), bundled revisions,
//! supersedence, files and digests, EULA, localized properties, driver metadata. The
//! whole document is kept, so nothing it does not interpret is lost. [`fragments`]
//! derives what MS-WUSP serves from it.

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use uuid::Uuid;

mod cabinet;
pub mod fragments;
pub mod tree;

use tree::Element;

/// Namespace URIs of the update schema.
pub mod ns {
    pub const UPDATE: &str = "http://schemas.microsoft.com/msus/2002/12/Update";
    pub const BASE_RULES: &str = "http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules";
    pub const MSI_RULES: &str = "http://schemas.microsoft.com/msus/2002/12/MsiApplicabilityRules";
    pub const WINDOWS_DRIVER: &str = "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver";
    pub const CATEGORY: &str = "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category";
}

/// What is wrong with a document. Never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("not valid UTF-8 or UTF-16")]
    Encoding,
    #[error("malformed XML at byte {offset}: {message}")]
    Malformed { offset: u64, message: String },
    #[error("the root element is {0}, not an msus/2002/12/Update Update")]
    NotAnUpdate(String),
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{what} has the invalid value {value:?}")]
    Invalid { what: &'static str, value: String },
    #[error("compressed blob: {0}")]
    Blob(String),
}

fn invalid(what: &'static str, value: &str) -> MetadataError {
    MetadataError::Invalid { what, value: value.chars().take(200).collect() }
}

/// An update revision: (UpdateID, RevisionNumber).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UpdateIdentity {
    pub update_id: Uuid,
    pub revision_number: i32,
}

impl std::fmt::Display for UpdateIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.update_id, self.revision_number)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateType {
    Software,
    Driver,
    Category,
    Detectoid,
}

impl UpdateType {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateType::Software => "Software",
            UpdateType::Driver => "Driver",
            UpdateType::Category => "Category",
            UpdateType::Detectoid => "Detectoid",
        }
    }
}

/// One AND clause of the prerequisites: at least one of `update_ids` (each meaning its
/// highest revision) must be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrerequisiteClause {
    pub update_ids: Vec<Uuid>,
    /// `AtLeastOne IsCategory="true"`: products or classifications the update belongs to.
    pub is_category: bool,
}

/// A content file of the revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub sha1: [u8; 20],
    pub sha256: Option<[u8; 32]>,
    pub file_name: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
    pub patching_type: Option<String>,
    pub is_encrypted: bool,
}

/// One `LocalizedProperties` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalizedProperties {
    pub language: String,
    pub title: String,
    pub description: Option<String>,
}

/// `WindowsDriverMetaData` of a driver revision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriverMetadata {
    pub hardware_id: String,
    pub driver_ver_date: Option<chrono::NaiveDate>,
    /// a.b.c.d packed 16 bits each, so versions compare as integers.
    pub driver_ver_version: Option<u64>,
    pub class: Option<String>,
    pub manufacturer: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub whql_driver_id: Option<String>,
    /// (operating system key such as `AMD64.10.0`, score 0-255; lower ranks better).
    pub feature_scores: Vec<(String, u8)>,
    pub distribution_computer_hardware_ids: Vec<Uuid>,
    pub target_computer_hardware_ids: Vec<Uuid>,
}

/// A parsed update document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The document as text (UTF-8, as received after decoding).
    pub xml: String,
    pub root: Element,
    pub identity: UpdateIdentity,
    pub update_type: UpdateType,
    /// Company, ProductFamily, Product, UpdateClassification... for categories, when given.
    pub category_type: Option<String>,
    pub publication_state: Option<String>,
    pub default_language: Option<String>,
    pub creation_date: Option<DateTime<Utc>>,
    pub explicitly_deployable: bool,
    pub eula_id: Option<Uuid>,
    /// MS-WSUSSS FragmentType (`Properties/SecuredFragment`).
    pub secured_fragment: Option<String>,
    pub kb_article_id: Option<String>,
    pub prerequisites: Vec<PrerequisiteClause>,
    /// Bundled revisions in CNF: each inner list is one AtLeastOne clause.
    pub bundled: Vec<Vec<UpdateIdentity>>,
    pub superseded: Vec<Uuid>,
    pub files: Vec<FileInfo>,
    pub localized: Vec<LocalizedProperties>,
    pub drivers: Vec<DriverMetadata>,
}

/// Decodes document bytes: UTF-16LE/BE (with a BOM, or LE recognised by `<\0`) or UTF-8.
pub fn decode_text(bytes: &[u8]) -> Result<String, MetadataError> {
    fn utf16(bytes: &[u8], le: bool) -> Result<String, MetadataError> {
        if !bytes.len().is_multiple_of(2) {
            return Err(MetadataError::Encoding);
        }
        let units = bytes
            .chunks_exact(2)
            .map(|p| if le { u16::from_le_bytes([p[0], p[1]]) } else { u16::from_be_bytes([p[0], p[1]]) });
        char::decode_utf16(units).collect::<Result<String, _>>().map_err(|_| MetadataError::Encoding)
    }
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8(rest.to_vec()).map_err(|_| MetadataError::Encoding),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        [b'<', 0, ..] => utf16(bytes, true),
        _ => String::from_utf8(bytes.to_vec()).map_err(|_| MetadataError::Encoding),
    }
}

/// Largest decompressed blob accepted (the largest real documents are about 47 MB).
const MAX_BLOB_BYTES: u64 = 256 * 1024 * 1024;

/// Decodes an `XmlUpdateBlobCompressed`: base64 of a Cabinet (LZX) whose one member,
/// `blob`, is the document in UTF-16LE.
pub fn decode_compressed_blob(base64_text: &str) -> Result<String, MetadataError> {
    let clean: String = base64_text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|e| MetadataError::Blob(format!("not base64: {e}")))?;
    decode_cabinet(&bytes)
}

/// A document as an `XmlUpdateBlobCompressed`: base64 of a Cabinet whose one member,
/// `blob`, is the document in UTF-16LE without a byte order mark (as a real WSUS sends
/// it, captures/wsus-m0-wsusss/exchanges/000014), compressed with MSZIP.
pub fn compress_blob(document: &str) -> String {
    let utf16: Vec<u8> = document.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let cabinet = cabinet::write_blob(&utf16).expect("writing a Cabinet to memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(cabinet)
}

/// The document inside a Cabinet (the decoded form of `XmlUpdateBlobCompressed`):
/// its member `blob`, in UTF-16LE as specified (UTF-8 accepted).
pub fn decode_cabinet(bytes: &[u8]) -> Result<String, MetadataError> {
    let raw = cabinet::read_blob(bytes, MAX_BLOB_BYTES).map_err(MetadataError::Blob)?;
    decode_text(&raw)
}

/// Whether a Cabinet's structure is sound (what [`decode_cabinet`] checks before reading).
pub fn check_cabinet(bytes: &[u8]) -> Result<(), String> {
    cabinet::check(bytes)
}

fn guid(what: &'static str, value: &str) -> Result<Uuid, MetadataError> {
    Uuid::parse_str(value.trim()).map_err(|_| invalid(what, value))
}

fn required<'a>(e: &'a Element, attr: &str, what: &'static str) -> Result<&'a str, MetadataError> {
    e.attr(attr).ok_or(MetadataError::Missing(what))
}

fn time(what: &'static str, value: &str) -> Result<DateTime<Utc>, MetadataError> {
    let v = value.trim();
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
        .map_err(|_| invalid(what, value))
}

fn bool_attr(e: &Element, name: &str) -> bool {
    matches!(e.attr(name), Some("true") | Some("1"))
}

fn digest<const N: usize>(what: &'static str, b64: &str) -> Result<[u8; N], MetadataError> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|v| <[u8; N]>::try_from(v).ok())
        .ok_or_else(|| invalid(what, b64))
}

/// DriverVerVersion `a.b.c.d` packed into 64 bits.
pub fn pack_driver_version(v: &str) -> Option<u64> {
    let parts: Vec<u16> = v.trim().split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    Some(parts.iter().chain(std::iter::repeat(&0)).take(4).fold(0u64, |acc, p| (acc << 16) | u64::from(*p)))
}

impl Update {
    /// Parses document bytes (any of the encodings [`decode_text`] reads).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, MetadataError> {
        Self::parse(decode_text(bytes)?)
    }

    /// Parses a document.
    pub fn parse(xml: String) -> Result<Self, MetadataError> {
        let root = tree::parse(&xml)?;
        if !root.is(ns::UPDATE, "Update") {
            return Err(MetadataError::NotAnUpdate(format!("{{{}}}{}", root.ns.as_deref().unwrap_or(""), root.local)));
        }
        let id = root.child(ns::UPDATE, "UpdateIdentity").ok_or(MetadataError::Missing("UpdateIdentity"))?;
        let identity = UpdateIdentity {
            update_id: guid("UpdateIdentity/@UpdateID", required(id, "UpdateID", "UpdateIdentity/@UpdateID")?)?,
            revision_number: {
                let raw = required(id, "RevisionNumber", "UpdateIdentity/@RevisionNumber")?;
                raw.trim().parse().map_err(|_| invalid("UpdateIdentity/@RevisionNumber", raw))?
            },
        };
        let props = root.child(ns::UPDATE, "Properties").ok_or(MetadataError::Missing("Properties"))?;
        let raw_type = required(props, "UpdateType", "Properties/@UpdateType")?;
        let update_type = match raw_type {
            "Software" => UpdateType::Software,
            "Driver" => UpdateType::Driver,
            "Category" => UpdateType::Category,
            "Detectoid" => UpdateType::Detectoid,
            other => return Err(invalid("Properties/@UpdateType", other)),
        };
        let category_type = root
            .child(ns::UPDATE, "HandlerSpecificData")
            .and_then(|h| h.elements().find(|e| e.local == "CategoryInformation"))
            .and_then(|c| c.attr("CategoryType"))
            .map(str::to_owned);
        let eula_id = props.attr("EulaID").map(|v| guid("Properties/@EulaID", v)).transpose()?;
        let creation_date = props.attr("CreationDate").map(|v| time("Properties/@CreationDate", v)).transpose()?;
        let child_text = |name: &str| props.child(ns::UPDATE, name).map(|e| e.text().trim().to_owned());

        let relationship = |name: &str| root.child(ns::UPDATE, "Relationships").and_then(|r| r.child(ns::UPDATE, name));
        let prerequisites = relationship("Prerequisites").map(parse_prerequisites).transpose()?.unwrap_or_default();
        let bundled = relationship("BundledUpdates").map(parse_bundled).transpose()?.unwrap_or_default();
        let superseded = relationship("SupersededUpdates").map(parse_superseded).transpose()?.unwrap_or_default();
        let files = root.child(ns::UPDATE, "Files").map(parse_files).transpose()?.unwrap_or_default();
        let localized = root
            .child(ns::UPDATE, "LocalizedPropertiesCollection")
            .map(parse_localized)
            .transpose()?
            .unwrap_or_default();
        let drivers = root
            .child(ns::UPDATE, "ApplicabilityRules")
            .and_then(|r| r.child(ns::UPDATE, "Metadata"))
            .map(parse_drivers)
            .transpose()?
            .unwrap_or_default();

        Ok(Self {
            identity,
            update_type,
            category_type,
            publication_state: props.attr("PublicationState").map(str::to_owned),
            default_language: props.attr("DefaultPropertiesLanguage").map(str::to_owned),
            creation_date,
            explicitly_deployable: bool_attr(props, "ExplicitlyDeployable"),
            eula_id,
            secured_fragment: child_text("SecuredFragment"),
            kb_article_id: child_text("KBArticleID"),
            prerequisites,
            bundled,
            superseded,
            files,
            localized,
            drivers,
            root,
            xml,
        })
    }

    /// Whether this revision bundles others.
    pub fn is_bundle(&self) -> bool {
        !self.bundled.is_empty()
    }

    /// The category GUIDs named by `IsCategory` prerequisite clauses.
    pub fn categories(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.prerequisites.iter().filter(|c| c.is_category).flat_map(|c| c.update_ids.iter().copied())
    }
}

/// `Relationships/Prerequisites`: a lone UpdateIdentity is a clause of its own, an
/// AtLeastOne (possibly of categories) one clause of its members.
fn parse_prerequisites(pre: &Element) -> Result<Vec<PrerequisiteClause>, MetadataError> {
    let mut prerequisites = Vec::new();
    for e in pre.elements() {
        match e.local.as_str() {
            "UpdateIdentity" => prerequisites.push(PrerequisiteClause {
                update_ids: vec![guid(
                    "Prerequisites/UpdateIdentity/@UpdateID",
                    required(e, "UpdateID", "Prerequisites/UpdateIdentity/@UpdateID")?,
                )?],
                is_category: false,
            }),
            "AtLeastOne" => {
                let update_ids = e
                    .children_named(ns::UPDATE, "UpdateIdentity")
                    .map(|i| {
                        guid(
                            "Prerequisites/AtLeastOne/UpdateIdentity/@UpdateID",
                            required(i, "UpdateID", "Prerequisites/AtLeastOne/UpdateIdentity/@UpdateID")?,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if !update_ids.is_empty() {
                    prerequisites.push(PrerequisiteClause { update_ids, is_category: bool_attr(e, "IsCategory") });
                }
            }
            _ => {}
        }
    }
    Ok(prerequisites)
}

/// `Relationships/BundledUpdates` in CNF: a lone UpdateIdentity is a clause of its own,
/// an AtLeastOne one clause of its members.
fn parse_bundled(b: &Element) -> Result<Vec<Vec<UpdateIdentity>>, MetadataError> {
    let member = |i: &Element| -> Result<UpdateIdentity, MetadataError> {
        let raw = required(i, "RevisionNumber", "BundledUpdates/UpdateIdentity/@RevisionNumber")?;
        Ok(UpdateIdentity {
            update_id: guid(
                "BundledUpdates/UpdateIdentity/@UpdateID",
                required(i, "UpdateID", "BundledUpdates/UpdateIdentity/@UpdateID")?,
            )?,
            revision_number: raw
                .trim()
                .parse()
                .map_err(|_| invalid("BundledUpdates/UpdateIdentity/@RevisionNumber", raw))?,
        })
    };
    let mut bundled = Vec::new();
    for e in b.elements() {
        match e.local.as_str() {
            "UpdateIdentity" => bundled.push(vec![member(e)?]),
            "AtLeastOne" => {
                let clause =
                    e.children_named(ns::UPDATE, "UpdateIdentity").map(member).collect::<Result<Vec<_>, _>>()?;
                if !clause.is_empty() {
                    bundled.push(clause);
                }
            }
            _ => {}
        }
    }
    Ok(bundled)
}

/// `Relationships/SupersededUpdates`: the update ids superseded.
fn parse_superseded(s: &Element) -> Result<Vec<Uuid>, MetadataError> {
    let mut superseded = Vec::new();
    for i in s.children_named(ns::UPDATE, "UpdateIdentity") {
        superseded.push(guid(
            "SupersededUpdates/UpdateIdentity/@UpdateID",
            required(i, "UpdateID", "SupersededUpdates/UpdateIdentity/@UpdateID")?,
        )?);
    }
    Ok(superseded)
}

/// `Files`: each content file with its digests.
fn parse_files(f: &Element) -> Result<Vec<FileInfo>, MetadataError> {
    let mut files = Vec::new();
    for file in f.children_named(ns::UPDATE, "File") {
        let sha256 = file
            .children_named(ns::UPDATE, "AdditionalDigest")
            .find(|d| d.attr("Algorithm").is_some_and(|a| a.eq_ignore_ascii_case("SHA256")))
            .map(|d| digest::<32>("File/AdditionalDigest[SHA256]", &d.text()))
            .transpose()?;
        let size_raw = required(file, "Size", "File/@Size")?;
        files.push(FileInfo {
            sha1: digest::<20>("File/@Digest", required(file, "Digest", "File/@Digest")?)?,
            sha256,
            file_name: required(file, "FileName", "File/@FileName")?.to_owned(),
            size: size_raw.trim().parse().map_err(|_| invalid("File/@Size", size_raw))?,
            modified: file.attr("Modified").map(|v| time("File/@Modified", v)).transpose()?,
            patching_type: file.attr("PatchingType").map(str::to_owned),
            is_encrypted: bool_attr(file, "IsEncrypted"),
        });
    }
    Ok(files)
}

/// `LocalizedPropertiesCollection`: each language's title and description.
fn parse_localized(coll: &Element) -> Result<Vec<LocalizedProperties>, MetadataError> {
    let mut localized = Vec::new();
    for lp in coll.children_named(ns::UPDATE, "LocalizedProperties") {
        let text = |n: &str| lp.child(ns::UPDATE, n).map(|e| e.text());
        localized.push(LocalizedProperties {
            language: text("Language")
                .map(|l| l.trim().to_owned())
                .ok_or(MetadataError::Missing("LocalizedProperties/Language"))?,
            title: text("Title").unwrap_or_default(),
            description: text("Description"),
        });
    }
    Ok(localized)
}

/// `ApplicabilityRules/Metadata`: each `WindowsDriverMetaData`.
fn parse_drivers(meta: &Element) -> Result<Vec<DriverMetadata>, MetadataError> {
    let mut drivers = Vec::new();
    for d in meta.elements().filter(|e| e.local == "WindowsDriverMetaData") {
        drivers.push(driver(d)?);
    }
    Ok(drivers)
}

fn driver(d: &Element) -> Result<DriverMetadata, MetadataError> {
    let attr = |n: &str| d.attr(n).map(str::to_owned);
    let mut m = DriverMetadata {
        hardware_id: required(d, "HardwareID", "WindowsDriverMetaData/@HardwareID")?.to_owned(),
        driver_ver_date: d
            .attr("DriverVerDate")
            .map(|v| {
                chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
                    .or_else(|_| chrono::NaiveDate::parse_from_str(v.trim(), "%m/%d/%Y"))
                    .map_err(|_| invalid("WindowsDriverMetaData/@DriverVerDate", v))
            })
            .transpose()?,
        driver_ver_version: d
            .attr("DriverVerVersion")
            .map(|v| pack_driver_version(v).ok_or_else(|| invalid("WindowsDriverMetaData/@DriverVerVersion", v)))
            .transpose()?,
        class: attr("Class"),
        manufacturer: attr("Manufacturer"),
        provider: attr("Provider"),
        model: attr("Model"),
        whql_driver_id: attr("WhqlDriverID"),
        ..Default::default()
    };
    for e in d.elements() {
        match e.local.as_str() {
            "FeatureScore" => {
                let os = required(e, "OperatingSystem", "FeatureScore/@OperatingSystem")?.to_owned();
                let raw = required(e, "FeatureScore", "FeatureScore/@FeatureScore")?;
                let score = raw.trim().parse().map_err(|_| invalid("FeatureScore/@FeatureScore", raw))?;
                m.feature_scores.push((os, score));
            }
            "DistributionComputerHardwareId" => {
                m.distribution_computer_hardware_ids.push(guid("DistributionComputerHardwareId", &e.text())?)
            }
            "TargetComputerHardwareId" => {
                m.target_computer_hardware_ids.push(guid("TargetComputerHardwareId", &e.text())?)
            }
            _ => {}
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_versions_pack() {
        assert_eq!(pack_driver_version("10.0.19041.1"), Some((10 << 48) | (19041 << 16) | 1));
        assert!(pack_driver_version("1.2.3.4").unwrap() < pack_driver_version("1.2.4.0").unwrap());
        assert_eq!(pack_driver_version("1.70000"), None);
        assert_eq!(pack_driver_version("1.2.3.4.5"), None);
    }

    #[test]
    fn malformed_documents_are_typed_errors() {
        let upd = "http://schemas.microsoft.com/msus/2002/12/Update";
        type Check = fn(&MetadataError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            ("<Update/>".into(), |e| matches!(e, MetadataError::NotAnUpdate(_))),
            (
                format!(
                    "<u:Update xmlns:u=\"{upd}\"><u:UpdateIdentity UpdateID=\"x\" RevisionNumber=\"1\"/></u:Update>"
                ),
                |e| matches!(e, MetadataError::Invalid { what: "UpdateIdentity/@UpdateID", .. }),
            ),
            (
                format!(
                    "<u:Update xmlns:u=\"{upd}\"><u:UpdateIdentity UpdateID=\"56309036-4C77-4DD9-951A-99EE9C246A94\" RevisionNumber=\"1\"/></u:Update>"
                ),
                |e| matches!(e, MetadataError::Missing("Properties")),
            ),
            (
                format!(
                    "<u:Update xmlns:u=\"{upd}\"><u:UpdateIdentity UpdateID=\"56309036-4C77-4DD9-951A-99EE9C246A94\" RevisionNumber=\"1\"/><u:Properties UpdateType=\"Printer\"/></u:Update>"
                ),
                |e| matches!(e, MetadataError::Invalid { what: "Properties/@UpdateType", .. }),
            ),
            ("<u:Update xmlns:u=\"x\"><".into(), |e| matches!(e, MetadataError::Malformed { .. })),
            ("<!DOCTYPE u [<!ENTITY a \"b\">]><u/>".into(), |e| matches!(e, MetadataError::Malformed { .. })),
        ];
        for (doc, check) in cases {
            let err = Update::parse(doc.clone()).unwrap_err();
            assert!(check(&err), "{doc}: {err}");
        }
        assert_eq!(decode_text(&[0xFF, 0xFE, 0x3C]), Err(MetadataError::Encoding));
        assert!(matches!(decode_compressed_blob("!!!"), Err(MetadataError::Blob(_))));
        assert!(matches!(decode_compressed_blob("TVNDRgAAAAA="), Err(MetadataError::Blob(_))));
    }
}
