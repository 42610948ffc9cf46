//! Generates update catalogs for tests and benchmarks: deterministic from a seed, from a
//! thousand to hundreds of thousands of revisions, shaped like the real documents
//! (company → product families → products, classifications, detectoid chains, bundles
//! whose members are leaves, supersedence chains, older revisions, several languages) and
//! closed: every reference resolves. Leaf updates carry files whose bytes follow from the
//! seed, so their SHA-1, SHA-256 and size in the metadata are true.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use sha1::Digest as _;
use uuid::Uuid;

/// The well-known Security Updates and Definition Updates classifications, plus
/// generated ones.
pub const SECURITY_UPDATES: Uuid = uuid::uuid!("0fa1201d-4330-4fa8-8ae9-b877473b6441");
pub const DEFINITION_UPDATES: Uuid = uuid::uuid!("e0789628-ce08-4437-be74-2495b842f43b");

#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Total revisions to generate (at least 100).
    pub revisions: usize,
    /// Languages of the localized properties; the first is every document's default.
    pub languages: Vec<String>,
    /// File sizes are drawn from this range (bytes).
    pub file_size: (u64, u64),
    /// At least this many bytes of applicability rules in each leaf update's Core
    /// fragment (0: as few as the rules need). Real Windows updates carry hundreds of
    /// kilobytes; rules that are never true are added to IsInstallable's blocked list, so
    /// what applies is unchanged.
    pub core_bytes: usize,
    /// The leaves of the first this-many update series' bundles carry files of
    /// `large_file_size` bytes instead (for multipart uploads and long downloads without
    /// making every file large).
    pub large_bundles: usize,
    pub large_file_size: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 1,
            revisions: 1000,
            languages: vec!["en".into(), "de".into(), "fr".into()],
            file_size: (512, 4096),
            core_bytes: 0,
            large_bundles: 0,
            large_file_size: 0,
        }
    }
}

/// A deterministic pseudo-random sequence (SplitMix64): the same seed gives the same catalog.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// In `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64 - 1) as usize]
    }
    pub fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(((self.next_u64() as u128) << 64 | self.next_u64() as u128).to_le_bytes())
            .into_uuid()
    }
}

/// A content file the catalog references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub file_name: String,
    pub size: u64,
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
    /// Seed of the bytes (see [`file_bytes`]).
    pub content_seed: u64,
}

/// The bytes of a generated file.
pub fn file_bytes(content_seed: u64, size: u64) -> Vec<u8> {
    let mut rng = Rng::new(content_seed);
    let mut out = Vec::with_capacity(size as usize + 8);
    while (out.len() as u64) < size {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(size as usize);
    out
}

/// One generated document.
#[derive(Debug, Clone)]
pub struct Document {
    pub update_id: Uuid,
    pub revision_number: i32,
    pub xml: String,
    pub file: Option<GeneratedFile>,
}

impl Document {
    /// `<update id>-r<revision>.xml`, as the reference folders name documents.
    pub fn file_name(&self) -> String {
        format!("{}-r{}.xml", self.update_id, self.revision_number)
    }
}

const NS: &str = r#"xmlns:pub="http://schemas.microsoft.com/msus/2002/12/Publishing" xmlns:bar="http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules" xmlns:lar="http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules" xmlns:cmd="http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation" xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update""#;

struct Writer<'a> {
    opts: &'a Options,
    rng: Rng,
}

impl Writer<'_> {
    fn open(&self, out: &mut String, id: Uuid, rev: i32, update_type: &str, extra_props: &str, handler: &str) {
        self.open_kb(out, id, rev, update_type, extra_props, handler, None);
    }

    /// Opens a document; `kb` is its KBArticleID, as Microsoft's updates carry one. Dates
    /// are in 2025, so a generated catalog holds nothing released in the future.
    #[allow(clippy::too_many_arguments)]
    fn open_kb(
        &self,
        out: &mut String,
        id: Uuid,
        rev: i32,
        update_type: &str,
        extra_props: &str,
        handler: &str,
        kb: Option<u32>,
    ) {
        let kb = kb.map(|kb| format!("<upd:KBArticleID>{kb}</upd:KBArticleID>")).unwrap_or_default();
        let _ = write!(
            out,
            "<upd:Update {NS}><upd:UpdateIdentity UpdateID=\"{id}\" RevisionNumber=\"{rev}\" /><upd:Properties UpdateType=\"{update_type}\" DefaultPropertiesLanguage=\"{}\"{handler}{extra_props} PublicationState=\"Published\" CreationDate=\"2025-{:02}-{:02}T{:02}:00:00.000Z\" PublisherID=\"395392a0-19c0-48b7-a927-f7c15066d905\">{kb}</upd:Properties>",
            self.opts.languages[0],
            1 + rev % 12,
            1 + rev % 28,
            rev % 24
        );
    }

    fn localized(&mut self, out: &mut String, title: &str, description: Option<&str>) {
        out.push_str("<upd:LocalizedPropertiesCollection>");
        // The default language always; the others for some documents.
        let extra = self.rng.range(0, self.opts.languages.len() as u64 - 1) as usize;
        for (i, lang) in self.opts.languages.iter().enumerate().take(1 + extra) {
            let suffix = if i == 0 { String::new() } else { format!(" ({lang})") };
            let _ = write!(
                out,
                "<upd:LocalizedProperties><upd:Language>{lang}</upd:Language><upd:Title>{title}{suffix}</upd:Title>"
            );
            if let Some(d) = description {
                let _ = write!(out, "<upd:Description>{d}{suffix}</upd:Description>");
            }
            out.push_str("</upd:LocalizedProperties>");
        }
        out.push_str("</upd:LocalizedPropertiesCollection>");
    }
}

/// Prerequisite clauses: `(ids, is_category)`.
fn relationships(out: &mut String, superseded: &[Uuid], prerequisites: &[(Vec<Uuid>, bool)], bundled: &[(Uuid, i32)]) {
    if superseded.is_empty() && prerequisites.is_empty() && bundled.is_empty() {
        return;
    }
    out.push_str("<upd:Relationships>");
    if !superseded.is_empty() {
        out.push_str("<upd:SupersededUpdates>");
        for s in superseded {
            let _ = write!(out, "<upd:UpdateIdentity UpdateID=\"{s}\" />");
        }
        out.push_str("</upd:SupersededUpdates>");
    }
    if !prerequisites.is_empty() {
        out.push_str("<upd:Prerequisites>");
        for (ids, is_category) in prerequisites {
            if ids.len() == 1 && !is_category {
                let _ = write!(out, "<upd:UpdateIdentity UpdateID=\"{}\" />", ids[0]);
            } else {
                out.push_str(if *is_category { "<upd:AtLeastOne IsCategory=\"true\">" } else { "<upd:AtLeastOne>" });
                for id in ids {
                    let _ = write!(out, "<upd:UpdateIdentity UpdateID=\"{id}\" />");
                }
                out.push_str("</upd:AtLeastOne>");
            }
        }
        out.push_str("</upd:Prerequisites>");
    }
    if !bundled.is_empty() {
        out.push_str("<upd:BundledUpdates><upd:AtLeastOne>");
        for (id, rev) in bundled {
            let _ = write!(out, "<upd:UpdateIdentity UpdateID=\"{id}\" RevisionNumber=\"{rev}\" />");
        }
        out.push_str("</upd:AtLeastOne></upd:BundledUpdates>");
    }
    out.push_str("</upd:Relationships>");
}

fn registry_rule(key: &str, value: &str, version: u64) -> String {
    format!(
        "<bar:RegDword Key=\"HKEY_LOCAL_MACHINE\" Subkey=\"SOFTWARE\\Contoso\\{key}\" Value=\"{value}\" Comparison=\"GreaterThanOrEqualTo\" Data=\"{version}\" xmlns:bar=\"http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules\" />"
    )
}

fn category(w: &mut Writer, id: Uuid, kind: &str, title: &str, parent: Option<Uuid>) -> Document {
    let mut xml = String::with_capacity(1200);
    w.open(
        &mut xml,
        id,
        100,
        "Category",
        " IsPublic=\"true\"",
        " Handler=\"http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category\"",
    );
    w.localized(&mut xml, title, Some(title));
    relationships(&mut xml, &[], &parent.map(|p| vec![(vec![p], true)]).unwrap_or_default(), &[]);
    let _ = write!(
        xml,
        "<upd:ApplicabilityRules><upd:IsInstalled><lar:True /></upd:IsInstalled></upd:ApplicabilityRules><upd:HandlerSpecificData xsi:type=\"cat:Category\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><cat:CategoryInformation CategoryType=\"{kind}\" ProhibitsSubcategories=\"false\" ProhibitsUpdates=\"false\" DisplayOrder=\"0\" xmlns:cat=\"http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category\" /></upd:HandlerSpecificData></upd:Update>"
    );
    Document { update_id: id, revision_number: 100, xml, file: None }
}

/// Generates the catalog, calling `emit` for each document in an order where categories
/// and detectoids come first (arrival order does not matter to an import, though).
// One function on purpose: a generator drawn from one seeded random stream in a fixed order, each phase using
// the ids drawn before it; read top to bottom, that order shows.
pub fn generate(opts: &Options, mut emit: impl FnMut(Document) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let total = opts.revisions.max(100);
    let mut w = Writer { opts, rng: Rng::new(opts.seed) };
    let mut emitted = 0usize;

    // Categories: one company, families, products, classifications.
    let families = (total / 20_000).clamp(2, 8);
    let products_per_family = (total / 5_000).clamp(3, 12);
    let company = w.rng.uuid();
    emit(category(&mut w, company, "Company", "Contoso", None))?;
    emitted += 1;
    let mut products = Vec::new();
    for f in 0..families {
        let family = w.rng.uuid();
        emit(category(&mut w, family, "ProductFamily", &format!("Contoso Family {f}"), Some(company)))?;
        emitted += 1;
        for p in 0..products_per_family {
            let product = w.rng.uuid();
            emit(category(&mut w, product, "Product", &format!("Contoso Product {f}.{p}"), Some(family)))?;
            emitted += 1;
            products.push(product);
        }
    }
    let mut classifications = vec![SECURITY_UPDATES, DEFINITION_UPDATES];
    for _ in 0..4 {
        classifications.push(w.rng.uuid());
    }
    for (i, c) in classifications.iter().enumerate() {
        emit(category(&mut w, *c, "UpdateClassification", &format!("Classification {i}"), None))?;
        emitted += 1;
    }

    // Detectoids: a chain per product (each needs the previous one).
    let detectoids_per_product = ((total / 12) / products.len()).clamp(1, 400);
    let mut product_detectoids: Vec<Vec<Uuid>> = Vec::new();
    for (pi, _) in products.iter().enumerate() {
        let mut chain: Vec<Uuid> = Vec::new();
        for d in 0..detectoids_per_product {
            let id = w.rng.uuid();
            let mut xml = String::with_capacity(1200);
            w.open(&mut xml, id, 200, "Detectoid", "", "");
            w.localized(&mut xml, &format!("Detect component {pi}.{d}"), None);
            let prereqs: Vec<(Vec<Uuid>, bool)> = chain.last().map(|p| vec![(vec![*p], false)]).unwrap_or_default();
            relationships(&mut xml, &[], &prereqs, &[]);
            let _ = write!(
                xml,
                "<upd:ApplicabilityRules><upd:IsInstalled>{}</upd:IsInstalled></upd:ApplicabilityRules></upd:Update>",
                registry_rule(&format!("Product{pi}"), &format!("Component{d}"), 1)
            );
            emit(Document { update_id: id, revision_number: 200, xml, file: None })?;
            emitted += 1;
            chain.push(id);
        }
        product_detectoids.push(chain);
    }

    // Drivers: a few devices, each with several driver versions (newer dates and
    // versions), some scored for AMD64 and some targeted to a computer model.
    let devices = (total / 400).clamp(2, 50);
    for dev in 0..devices {
        let detectoid = product_detectoids[dev % product_detectoids.len()][0];
        for v in 0..3u64 {
            if emitted >= total {
                break;
            }
            let id = w.rng.uuid();
            let size = w.rng.range(opts.file_size.0, opts.file_size.1);
            let content_seed = w.rng.next_u64();
            let bytes = file_bytes(content_seed, size);
            let file = GeneratedFile {
                file_name: format!("contoso-driver-{dev}-{v}.cab"),
                size,
                sha1: sha1::Sha1::digest(&bytes).into(),
                sha256: sha2::Sha256::digest(&bytes).into(),
                content_seed,
            };
            let b64 = base64::engine::general_purpose::STANDARD;
            let hwid = driver_hardware_id(dev);
            let targeting = if dev % 5 == 4 {
                "<drv:TargetComputerHardwareId>458ab48b-acb9-5863-b5a8-d2c32f0d3e6f</drv:TargetComputerHardwareId>"
            } else {
                ""
            };
            let mut xml = String::with_capacity(2000);
            w.open(
                &mut xml,
                id,
                200,
                "Driver",
                &format!(" MaxDownloadSize=\"{size}\" MinDownloadSize=\"0\""),
                " Handler=\"http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver\"",
            );
            w.localized(&mut xml, &format!("Contoso Ethernet driver {dev} version {v}"), None);
            relationships(&mut xml, &[], &[(vec![detectoid], false)], &[]);
            let _ = write!(
                xml,
                "<upd:ApplicabilityRules><upd:IsInstalled><drv:WindowsDriverInstalled xmlns:drv=\"http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver\" /></upd:IsInstalled><upd:IsInstallable><drv:WindowsDriverInstallable xmlns:drv=\"http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver\" /></upd:IsInstallable><upd:Metadata><drv:WindowsDriverMetaData xmlns:drv=\"http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver\" HardwareID=\"{}\" DriverVerDate=\"2025-0{}-15\" DriverVerVersion=\"1.0.{v}.0\" WhqlDriverID=\"{}\" Class=\"Net\" Company=\"Contoso\" Provider=\"Contoso\" Manufacturer=\"Contoso\" Model=\"Contoso Ethernet {dev}\"><drv:FeatureScore OperatingSystem=\"AMD64.10.0\" FeatureScore=\"{}\" />{targeting}</drv:WindowsDriverMetaData></upd:Metadata></upd:ApplicabilityRules><upd:Files><upd:File Digest=\"{}\" DigestAlgorithm=\"SHA1\" FileName=\"{}\" Size=\"{size}\" Modified=\"2025-03-15T00:00:00Z\"><upd:AdditionalDigest Algorithm=\"SHA256\">{}</upd:AdditionalDigest></upd:File></upd:Files></upd:Update>",
                xml_escape_attr(&hwid),
                1 + v,
                1000 + v,
                200 - v,
                b64.encode(file.sha1),
                file.file_name,
                b64.encode(file.sha256),
            );
            emit(Document { update_id: id, revision_number: 200, xml, file: Some(file) })?;
            emitted += 1;
        }
    }

    // Update series: a bundle (approved-to-be, in a product and a classification) holding
    // leaves with files; each new bundle of a series supersedes the previous one. Some
    // updates also keep an older revision.
    let mut series_last: Vec<Option<Uuid>> = vec![None; products.len() * 4];
    let mut n = 0u64;
    while emitted < total {
        n += 1;
        let series = w.rng.range(0, series_last.len() as u64 - 1) as usize;
        let pi = series % products.len();
        let product = products[pi];
        let classification = *w.rng.pick(&classifications);
        let detectoid = *w.rng.pick(&product_detectoids[pi]);
        let leaves = (w.rng.range(1, 4) as usize).min(total.saturating_sub(emitted + 1).max(1));
        let mut members = Vec::new();
        for l in 0..leaves {
            let id = w.rng.uuid();
            let rev = 200 + w.rng.range(0, 4) as i32;
            // Drawn either way, so the rest of the catalog is the same with or without.
            let drawn = w.rng.range(opts.file_size.0, opts.file_size.1);
            let size = if (n as usize) <= opts.large_bundles { opts.large_file_size } else { drawn };
            let content_seed = w.rng.next_u64();
            let bytes = file_bytes(content_seed, size);
            let file = GeneratedFile {
                file_name: format!("contoso-kb{}-{l}.cab", 5_000_000 + n),
                size,
                sha1: sha1::Sha1::digest(&bytes).into(),
                sha256: sha2::Sha256::digest(&bytes).into(),
                content_seed,
            };
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut xml = String::with_capacity(2000);
            w.open(
                &mut xml,
                id,
                rev,
                "Software",
                &format!(" MaxDownloadSize=\"{size}\" MinDownloadSize=\"0\""),
                " Handler=\"http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation\"",
            );
            w.localized(&mut xml, &format!("Contoso update {n}.{l} for product {pi}"), None);
            relationships(&mut xml, &[], &[(vec![detectoid], false), (vec![product], false)], &[]);
            let mut blocked = registry_rule(&format!("Product{pi}"), &format!("Blocked{n}_{l}"), 1);
            if blocked.len() < opts.core_bytes {
                let mut rules = String::with_capacity(opts.core_bytes + 512);
                rules.push_str("<lar:Or>");
                rules.push_str(&blocked);
                let mut k = 0;
                while rules.len() < opts.core_bytes {
                    rules.push_str(&registry_rule(&format!("Product{pi}"), &format!("Blocked{n}_{l}_{k}"), 1));
                    k += 1;
                }
                rules.push_str("</lar:Or>");
                blocked = rules;
            }
            let _ = write!(
                xml,
                "<upd:ApplicabilityRules><upd:IsInstalled>{}</upd:IsInstalled><upd:IsInstallable><lar:Not>{}</lar:Not></upd:IsInstallable></upd:ApplicabilityRules><upd:Files><upd:File Digest=\"{}\" DigestAlgorithm=\"SHA1\" FileName=\"{}\" Size=\"{size}\" Modified=\"2026-10-04T09:39:26Z\"><upd:AdditionalDigest Algorithm=\"SHA256\">{}</upd:AdditionalDigest></upd:File></upd:Files><upd:HandlerSpecificData xsi:type=\"cmd:CommandLineInstallation\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><cmd:InstallCommand Program=\"{}\" Arguments=\"/quiet\" xmlns:cmd=\"http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation\"><cmd:ReturnCode Code=\"0\" Result=\"Succeeded\" /></cmd:InstallCommand></upd:HandlerSpecificData></upd:Update>",
                registry_rule(&format!("Product{pi}"), &format!("Update{n}_{l}"), 1),
                blocked,
                b64.encode(file.sha1),
                file.file_name,
                b64.encode(file.sha256),
                file.file_name,
            );
            members.push((id, rev));
            emit(Document { update_id: id, revision_number: rev, xml, file: Some(file) })?;
            emitted += 1;
        }
        if emitted >= total {
            break;
        }
        let bundle = w.rng.uuid();
        let superseded: Vec<Uuid> = series_last[series].into_iter().collect();
        let bundle_doc = |w: &mut Writer, rev: i32, members: &[(Uuid, i32)]| {
            let mut xml = String::with_capacity(2000);
            w.open_kb(&mut xml, bundle, rev, "Software", " AutoSelectOnWebSites=\"true\" ExplicitlyDeployable=\"true\" MaxDownloadSize=\"0\" MinDownloadSize=\"0\"", "", Some(5_000_000 + n as u32));
            w.localized(
                &mut xml,
                &format!("Contoso cumulative update {n} for product {pi} (KB{})", 5_000_000 + n),
                Some("Install this update to resolve issues in Contoso products."),
            );
            relationships(
                &mut xml,
                &superseded,
                &[(vec![detectoid], false), (vec![classification], true), (vec![product], true)],
                members,
            );
            xml.push_str("</upd:Update>");
            Document { update_id: bundle, revision_number: rev, xml, file: None }
        };
        // One in thirty bundles also has an earlier revision still in the catalog.
        if w.rng.range(0, 29) == 0 && emitted + 2 <= total {
            emit(bundle_doc(&mut w, 199, &members))?;
            emitted += 1;
        }
        emit(bundle_doc(&mut w, 200, &members))?;
        emitted += 1;
        series_last[series] = Some(bundle);
    }
    Ok(())
}

/// The hardware id of generated device `n` (its drivers match it).
pub fn driver_hardware_id(n: usize) -> String {
    format!("PCI\\VEN_C0DE&DEV_{n:04X}")
}

fn xml_escape_attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;")
}

/// Writes the catalog as `<id>-r<rev>.xml` files into `dir`, and the file bytes into the
/// content store at `content` when given. Returns (documents, files the catalog references).
pub fn write(opts: &Options, dir: &Path, content: Option<&Path>) -> anyhow::Result<(usize, usize)> {
    std::fs::create_dir_all(dir)?;
    let store = content.map(wsus_content::ContentStore::new);
    let (mut docs, mut files) = (0, 0);
    generate(opts, |d| {
        std::fs::write(dir.join(d.file_name()), &d.xml)?;
        docs += 1;
        if let Some(f) = &d.file {
            files += 1;
            if let Some(store) = store.as_ref().filter(|s| !s.contains(&f.sha1, &f.file_name)) {
                let expected = wsus_content::Expected {
                    sha1: &f.sha1,
                    sha256: Some(&f.sha256),
                    size: Some(f.size),
                    file_name: &f.file_name,
                };
                store.put(expected, &file_bytes(f.content_seed, f.size))?;
            }
        }
        Ok(())
    })?;
    Ok((docs, files))
}
