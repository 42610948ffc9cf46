//! Every real update document parses, and the fragments derived from it equal the ones a
//! real Windows Server 2025 WSUS served for the same revisions.

use std::path::{Path, PathBuf};

use wsus_metadata::{Update, UpdateType, decode_compressed_blob, fragments};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every full update document in the reference material.
fn documents() -> Vec<PathBuf> {
    let r = wsus_testdata::root();
    let mut docs = Vec::new();
    for dir in [
        "metadata/updates",
        "metadata/bundles",
        "metadata/categories",
        "captures/wsus-m0-wsusss/docs",
        "wsusss/update-metadata",
    ] {
        for e in std::fs::read_dir(r.join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}")).flatten() {
            if e.path().extension().is_some_and(|x| x == "xml") {
                docs.push(e.path());
            }
        }
    }
    docs.push(r.join("metadata/detectoids/17e993cd-cf5a-4276-9944-6af62ff7139c-r100.MS-WSUSSS-example.xml"));
    docs
}

#[test]
fn every_reference_document_parses() {
    let docs = documents();
    assert!(docs.len() >= 18, "{docs:?}");
    for path in docs {
        let u = Update::parse(read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().to_lowercase();
        assert!(
            name.starts_with(&format!("{}-r{}", u.identity.update_id, u.identity.revision_number)),
            "{name} parsed as {}",
            u.identity
        );
    }
}

#[test]
fn extraction_of_the_approved_bundle() {
    let u = Update::parse(read(
        &wsus_testdata::root().join("metadata/updates/a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe-r200.xml"),
    ))
    .unwrap();
    assert_eq!(u.update_type, UpdateType::Software);
    assert!(u.explicitly_deployable);
    assert_eq!(u.kb_article_id.as_deref(), Some("2267602"));
    assert_eq!(u.superseded.len(), 10);
    assert_eq!(u.bundled.iter().map(Vec::len).collect::<Vec<_>>(), vec![7, 7, 7, 103]);
    assert!(u.bundled.iter().flatten().all(|m| m.revision_number == 200));
    let cats: Vec<String> = u.categories().map(|c| c.to_string()).collect();
    assert_eq!(cats, ["e0789628-ce08-4437-be74-2495b842f43b", "8c3fcc84-7410-4a95-8b89-a166a0190486"]);
    assert_eq!(u.prerequisites.iter().filter(|c| !c.is_category).count(), 2);
    assert!(u.files.is_empty());
    assert_eq!(u.localized.len(), 35);
    assert!(u.localized.iter().any(|l| l.language == "fr" && l.title.contains('\u{a0}')), "NBSP kept");

    let leaf = Update::parse(read(
        &wsus_testdata::root().join("metadata/updates/266f6222-c89d-43f2-9f8a-69340271e677-r200.xml"),
    ))
    .unwrap();
    let f = &leaf.files[0];
    assert_eq!(f.file_name, "AM_Delta.exe");
    assert_eq!(f.size, 11_606_440);
    assert_eq!(f.sha1[..4], [0x87, 0xf5, 0xbd, 0x04]);
    assert!(f.sha256.is_some());
    assert_eq!(f.modified.unwrap().to_rfc3339(), "2026-10-04T09:39:26+00:00");

    let company = Update::parse(read(
        &wsus_testdata::root().join("metadata/categories/56309036-4c77-4dd9-951a-99ee9c246a94-r101.xml"),
    ))
    .unwrap();
    assert_eq!(company.update_type, UpdateType::Category);
    assert_eq!(company.category_type.as_deref(), Some("Company"));
    assert_eq!(
        company.identity.update_id.to_string(),
        "56309036-4c77-4dd9-951a-99ee9c246a94",
        "upper-case GUIDs compare equal"
    );
}

/// The fragment files a real WSUS served, with the document they came from.
fn served_fragments() -> Vec<(PathBuf, String, PathBuf)> {
    let r = wsus_testdata::root();
    let mut out = Vec::new();
    for (frag_dir, doc_dirs) in [
        ("captures/wsus-m0-wsusss/wusp-reference", vec!["captures/wsus-m0-wsusss/docs"]),
        ("metadata/fragments", vec!["metadata/updates", "metadata/bundles", "metadata/categories"]),
    ] {
        for e in std::fs::read_dir(r.join(frag_dir)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((stem, kind)) = name.strip_suffix(".xml").and_then(|n| n.split_once('.')) else { continue };
            if let Some(doc) = doc_dirs.iter().map(|d| r.join(d).join(format!("{stem}.xml"))).find(|p| p.exists()) {
                out.push((e.path(), kind.to_owned(), doc));
            }
        }
    }
    out
}

#[test]
fn derived_fragments_equal_the_real_servers() {
    let cases = served_fragments();
    assert!(cases.len() >= 23, "{}", cases.len());
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for (frag, kind, doc) in cases {
        let u = Update::parse(read(&doc)).unwrap();
        let derived = match kind.as_str() {
            "core" => fragments::core(&u),
            "extended" => fragments::extended(&u),
            k if k.starts_with("localized-") => {
                let lang = &k["localized-".len()..];
                fragments::localized(&u).into_iter().find(|(l, _)| l == lang).unwrap().1
            }
            other => panic!("unknown fragment kind {other}"),
        };
        let real = read(&frag);
        // The captures redacted one URL parameter (see their README).
        let derived = if real.contains("LinkId=REDACTED") { redact_link_ids(&derived) } else { derived };
        assert_eq!(derived, real.trim_end_matches('\n'), "{} differs", frag.display());
        *kinds.entry(kind).or_default() += 1;
    }
    assert!(kinds["core"] >= 9 && kinds["extended"] >= 5 && kinds["localized-en"] >= 8, "{kinds:?}");
}

fn redact_link_ids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("LinkId=") {
        out.push_str(&rest[..i + 7]);
        out.push_str("REDACTED");
        rest = &rest[i + 7..];
        rest = &rest[rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// The text of `<tag>` in a SOAP body, unescaped.
fn soap_field(body: &str, tag: &str) -> String {
    let req = wsus_soap::parse_request(body.as_bytes(), &wsus_soap::Limits::default()).unwrap();
    let mut stack = vec![&req.operation];
    while let Some(e) = stack.pop() {
        if e.name == tag {
            return e.text.clone();
        }
        stack.extend(e.children.iter());
    }
    panic!("no {tag}")
}

#[test]
fn compressed_blobs_decode_to_the_documents() {
    let r = wsus_testdata::root();
    for (resp, doc) in [
        (
            "metadata/protocol/wsusss-getupdatedata-response-266f6222-r200.xml",
            "metadata/updates/266f6222-c89d-43f2-9f8a-69340271e677-r200.xml",
        ),
        (
            "metadata/protocol/wsusss-getupdatedata-response-a2fef9b0-r200.xml",
            "metadata/updates/a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe-r200.xml",
        ),
    ] {
        let blob = soap_field(&read(&r.join(resp)), "XmlUpdateBlobCompressed");
        assert!(blob.starts_with("TVNDRg"), "a Cabinet");
        let xml = decode_compressed_blob(&blob).unwrap();
        assert_eq!(xml, read(&r.join(doc)), "{resp}");
        Update::parse(xml).unwrap();
    }
    // An escaped XmlUpdateBlob (small documents travel uncompressed).
    let xml = soap_field(&read(&r.join("captures/wsus-m0-wsusss/exchanges/000015/response.body")), "XmlUpdateBlob");
    assert_eq!(Update::parse(xml).unwrap().identity.update_id.to_string(), "ccb78947-6453-4ecc-9de8-bc0305c98f2d");
}

#[test]
fn utf16_and_declarations_are_accepted() {
    let text = read(&wsus_testdata::root().join("metadata/categories/dd78b8a1-0b20-45c1-add6-4da72e9364cf-r202.xml"));
    let plain = Update::parse(text.clone()).unwrap();
    let with_decl = format!("<?xml version=\"1.0\" encoding=\"utf-16\"?>{text}");
    for bytes in [
        text.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>(),
        [0xFF, 0xFE].into_iter().chain(with_decl.encode_utf16().flat_map(u16::to_le_bytes)).collect(),
        [0xEF, 0xBB, 0xBF].into_iter().chain(format!("<?xml version=\"1.0\"?>{text}").bytes()).collect(),
    ] {
        let u = Update::parse_bytes(&bytes).unwrap();
        assert_eq!((u.identity, u.category_type.clone()), (plain.identity, plain.category_type.clone()));
        assert_eq!(fragments::core(&u), fragments::core(&plain));
    }
}
