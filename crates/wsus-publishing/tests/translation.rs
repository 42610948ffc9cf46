//! The sample package definitions (`samples/publishing/`) read and turned into update
//! documents, which this server's own document parser reads back as WSUS's would: the
//! mapping follows WSUS's publishing translation (`TranslateSdpToSus.xslt` of the WSUS
//! schema folder), and the fragments clients get come out in the shape of Microsoft's.

use std::path::PathBuf;

use chrono::TimeZone as _;
use uuid::{Uuid, uuid};
use wsus_metadata::{Update, UpdateType, fragments};
use wsus_publishing::sdp::{Classification, Installer, RuleKind};
use wsus_publishing::update::{self, CategoryKind};
use wsus_publishing::{Publication, PublishError, PublishedFile};

fn sample(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/publishing").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const PUBLISHER: Uuid = uuid!("11111111-2222-3333-4444-555555555555");

fn cabinet() -> PublishedFile {
    PublishedFile {
        file_name: "b7e2d4c8-1f3a-4e59-8a6b-2c9d0e7f1a24_1.cab".into(),
        sha1: [0x11; 20],
        sha256: [0x22; 32],
        size: 1_050_000,
        modified: chrono::Utc.with_ymd_and_hms(2026, 11, 12, 9, 0, 0).unwrap(),
    }
}

#[test]
fn an_msi_package_becomes_a_windows_installer_update() {
    let package = wsus_publishing::parse(&sample("contoso-notes-2.4.1-msi.xml")).unwrap();
    assert_eq!(package.package_id, uuid!("3f0c1a52-8d7e-4b6a-9c21-5e4f7a9b0c11"));
    assert_eq!((package.vendor.as_str(), package.products.as_slice()), ("Contoso", &["Contoso Notes".to_owned()][..]));
    assert_eq!(package.classification, Classification::Updates);
    assert_eq!(package.localized.len(), 2);
    assert!(matches!(package.item.installer, Installer::Msi { .. }));
    assert_eq!(package.item.installer.file(), Some("contoso-notes-2.4.1-x64.msi"));
    // The package's IsInstallable joined with the item's: both must hold.
    let (_, installable) = package.item.rules.iter().find(|(k, _)| *k == RuleKind::IsInstallable).unwrap();
    assert_eq!(installable.local, "And");
    assert_eq!(installable.elements().count(), 2);

    let product = update::product_id(&package.vendor, &package.products[0]);
    let file = cabinet();
    let xml = update::update_document(&Publication {
        package: &package,
        revision: 100,
        publisher: PUBLISHER,
        product_category: product,
        file: Some(&file),
    })
    .unwrap();
    let u = Update::parse(xml.clone()).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!((u.identity.update_id, u.identity.revision_number), (package.package_id, 100));
    assert_eq!(u.update_type, UpdateType::Software);
    assert!(u.explicitly_deployable);
    assert_eq!(u.publication_state.as_deref(), Some("Published"));
    assert_eq!(u.kb_article_id.as_deref(), Some("CN-241"));
    // The product and the classification, as category prerequisites.
    let categories: Vec<_> = u.prerequisites.iter().filter(|c| c.is_category).map(|c| c.update_ids.clone()).collect();
    assert_eq!(categories, vec![vec![product], vec![Classification::Updates.category()]]);
    // The file is the signed Cabinet, with both digests.
    assert_eq!(u.files.len(), 1);
    assert_eq!((u.files[0].sha1, u.files[0].sha256, u.files[0].size), (file.sha1, Some(file.sha256), file.size));
    assert_eq!(u.localized.iter().map(|l| l.language.as_str()).collect::<Vec<_>>(), ["en", "de"]);
    assert!(u.localized[0].description.as_deref().unwrap().contains("notebooks & an installer"));

    // Clients get the rules in the Core fragment as Microsoft's come: MSI rules `m.`, base `b.`.
    let core = fragments::core(&u);
    assert!(
        core.contains(
            "<m.MsiProductInstalled ProductCode=\"{6A1F2C3D-4B5E-4F60-8172-93A4B5C6D7E8}\" VersionMin=\"2.4.1.0\" />"
        ),
        "{core}"
    );
    assert!(core.contains("<b.WindowsVersion Comparison=\"GreaterThanOrEqualTo\" MajorVersion=\"10\""), "{core}");
    // The Windows Installer data in the Extended fragment.
    let extended = fragments::extended(&u);
    assert!(extended.contains("MsiFile=\"contoso-notes-2.4.1-x64.msi\""), "{extended}");
    assert!(extended.contains("RebootBehavior=\"CanRequestReboot\""), "{extended}");
}

#[test]
fn an_exe_package_becomes_a_command_line_update() {
    let package = wsus_publishing::parse(&sample("fabrikam-agent-5.1.0-exe.xml")).unwrap();
    assert_eq!(package.classification, Classification::SecurityUpdates);
    assert_eq!(package.severity.as_deref(), Some("Critical"));
    assert_eq!(package.cves, ["CVE-2026-40001"]);
    assert_eq!(package.superseded, [uuid!("1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5")]);
    let Installer::CommandLine { return_codes, .. } = &package.item.installer else { panic!("a command line") };
    assert_eq!(return_codes.len(), 3);

    let xml = update::update_document(&Publication {
        package: &package,
        revision: 101,
        publisher: PUBLISHER,
        product_category: update::product_id("Fabrikam", "Fabrikam Endpoint Agent"),
        file: Some(&cabinet()),
    })
    .unwrap();
    let u = Update::parse(xml.clone()).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(u.superseded, package.superseded);
    // As the real CommandLineInstallation update (266f6222) carries it.
    let extended = fragments::extended(&u);
    assert!(
        extended.contains("<InstallCommand Program=\"fabrikam-agent-setup-5.1.0.exe\" Arguments=\"/S /norestart\""),
        "{extended}"
    );
    assert!(extended.contains("<ReturnCode Code=\"3010\" Result=\"Succeeded\" Reboot=\"true\" />"), "{extended}");
    assert!(extended.contains("MsrcSeverity=\"Critical\""), "{extended}");
    let core = fragments::core(&u);
    assert!(
        core.contains("<b.RegSzToVersion Key=\"HKEY_LOCAL_MACHINE\" Subkey=\"SOFTWARE\\Fabrikam\\Endpoint Agent\""),
        "{core}"
    );
}

/// A Windows Installer patch (`msp:MspInstallerData`): WSUS's translation gives it the
/// WindowsInstaller handler, `MspData` and a self-contained file.
#[test]
fn an_msp_package_becomes_a_windows_installer_patch() {
    let msi = sample("contoso-notes-2.4.1-msi.xml");
    let start = msi.find("<msi:MsiInstallerData").unwrap();
    let end = start + msi[start..].find("/>").unwrap() + 2;
    let msp = format!(
        "{}<msp:MspInstallerData xmlns:msp=\"http://schemas.microsoft.com/wsus/2005/04/CorporatePublishing/Installers/MspInstallation.xsd\" PatchCode=\"{{0B5D1C2E-3F40-4A51-8B62-7C83D94E05F6}}\" CommandLine=\"REBOOT=ReallySuppress\"><msp:MspFileName>contoso-notes-2.4.1-fix.msp</msp:MspFileName></msp:MspInstallerData>{}",
        &msi[..start],
        &msi[end..]
    );
    let package = wsus_publishing::parse(&msp).unwrap();
    assert_eq!(package.item.installer.file(), Some("contoso-notes-2.4.1-fix.msp"));
    let file = cabinet();
    let xml = update::update_document(&Publication {
        package: &package,
        revision: 100,
        publisher: PUBLISHER,
        product_category: PUBLISHER,
        file: Some(&file),
    })
    .unwrap();
    let u = Update::parse(xml.clone()).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(u.files[0].patching_type.as_deref(), Some("SelfContained"));
    let extended = fragments::extended(&u);
    assert!(extended.contains("PatchCode=\"{0B5D1C2E-3F40-4A51-8B62-7C83D94E05F6}\""), "{extended}");
    assert!(xml.contains("xsi:type=\"msp:WindowsInstaller\"><msp:MspData"), "{xml}");
}

#[test]
fn expired_and_metadata_only_publications() {
    let text = sample("fabrikam-agent-5.1.0-exe.xml")
        .replace("VendorName=\"Fabrikam\"", "VendorName=\"Fabrikam\" PublicationState=\"Expired\"");
    let package = wsus_publishing::parse(&text).unwrap();
    assert!(package.expired);
    let xml = update::update_document(&Publication {
        package: &package,
        revision: 102,
        publisher: PUBLISHER,
        product_category: update::LOCALLY_PUBLISHED_PACKAGES,
        file: None,
    })
    .unwrap();
    let u = Update::parse(xml).unwrap();
    assert_eq!(u.publication_state.as_deref(), Some("Expired"));
    assert!(u.files.is_empty(), "metadata only: the content is elsewhere");
}

#[test]
fn vendor_and_product_categories() {
    // The Company id WSUS gave "Patch My PC" (published by that vendor's tooling).
    assert_eq!(update::company_id("Patch My PC"), uuid!("510a93c7-9415-599a-77ab-ad27ceebb380"));
    assert_eq!(update::company_id(" contoso "), update::company_id("Contoso"));
    assert_ne!(update::product_id("Contoso", "Notes"), update::product_id("Fabrikam", "Notes"));

    let created = chrono::Utc.with_ymd_and_hms(2026, 11, 12, 9, 0, 0).unwrap();
    let company = update::company_id("Contoso");
    let product = update::product_id("Contoso", "Contoso Notes");
    for (id, kind, title, parent) in [
        (company, CategoryKind::Company, "Contoso", None),
        (product, CategoryKind::Product, "Contoso Notes", Some(company)),
    ] {
        let doc = update::category_document(id, kind, title, parent, PUBLISHER, created);
        let u = Update::parse(doc).unwrap();
        assert_eq!(u.update_type, UpdateType::Category);
        assert_eq!(u.identity.update_id, id);
        let expected = if kind == CategoryKind::Company { "Company" } else { "Product" };
        assert_eq!(u.category_type.as_deref(), Some(expected));
        assert_eq!(
            u.prerequisites.iter().flat_map(|c| c.update_ids.clone()).collect::<Vec<_>>(),
            parent.into_iter().collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_bad_definition_is_refused_with_what_is_wrong() {
    let msi = sample("contoso-notes-2.4.1-msi.xml");
    let refused = |text: &str| wsus_publishing::parse(text).unwrap_err();
    assert!(matches!(refused("<not-xml"), PublishError::Malformed(_)));
    assert!(matches!(refused("<a/>"), PublishError::Malformed(_)));
    assert_eq!(refused(&msi.replace(" VendorName=\"Contoso\"", "")), PublishError::Missing("Properties/@VendorName"));
    assert!(matches!(
        refused(&msi.replace("3f0c1a52-8d7e", "not-a-guid")),
        PublishError::Invalid { what: "PackageID", .. }
    ));
    assert!(matches!(
        refused(&msi.replace("UpdateClassification=\"Updates\"", "UpdateClassification=\"Hotfixes\"")),
        PublishError::Invalid { what: "UpdateClassification", .. }
    ));
    let two_items = msi.replace("</sdp:SoftwareDistributionPackage>", "").to_owned()
        + &msi[msi.find("<sdp:InstallableItem").unwrap()..];
    assert!(matches!(refused(&two_items), PublishError::Unsupported(_)));
    // Names and characters that would make the update document malformed.
    let odd_name = msi.replace("<bar:Processor Architecture=\"9\" />", "<bar:Processor a&amp;b=\"9\" />");
    assert!(wsus_publishing::parse(&odd_name).is_err(), "an attribute name XML does not allow");
    let declaration =
        msi.replace("<bar:Processor Architecture=\"9\" />", "<bar:Processor x:xmlns=\"urn:x\" xmlns:x=\"urn:y\" />");
    assert!(matches!(wsus_publishing::parse(&declaration), Err(PublishError::Invalid { .. })));
    let twice = msi.replace(
        "<bar:Processor Architecture=\"9\" />",
        "<bar:Processor a:Architecture=\"9\" b:Architecture=\"5\" xmlns:a=\"urn:a\" xmlns:b=\"urn:b\" />",
    );
    assert!(matches!(wsus_publishing::parse(&twice), Err(PublishError::Invalid { .. })));
    let control = msi.replace("Contoso Notes 2.4.1 (x64)</sdp:Title>", "Contoso Notes&#1;</sdp:Title>");
    assert!(matches!(wsus_publishing::parse(&control), Err(PublishError::Invalid { .. })));
    // A rule from a schema the update documents have no namespace for.
    let foreign = msi.replace("<bar:Processor Architecture=\"9\" />", "<x:Custom xmlns:x=\"urn:example:rules\" />");
    let package = wsus_publishing::parse(&foreign).unwrap();
    let publication =
        Publication { package: &package, revision: 100, publisher: PUBLISHER, product_category: PUBLISHER, file: None };
    assert!(matches!(update::update_document(&publication), Err(PublishError::Unsupported(_))));
}
