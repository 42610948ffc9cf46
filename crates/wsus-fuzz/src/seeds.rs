//! Seed inputs for every target, taken from the reference material: the real captures'
//! SOAP bodies, the real update documents, the compressed blobs inside real GetUpdateData
//! answers, the ranges Delivery Optimization really asked for, and an export file built
//! from real documents.

use std::path::{Path, PathBuf};

use base64::Engine as _;

/// A named seed input.
pub struct Seed {
    pub name: String,
    pub bytes: Vec<u8>,
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every file of the reference, in a stable order, with its bytes.
fn reference_files(reference: &Path) -> Vec<(String, Vec<u8>)> {
    let mut paths = Vec::new();
    for top in ["captures", "wusp", "wsusss", "metadata"] {
        files_under(&reference.join(top), &mut paths);
    }
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let name = p.strip_prefix(reference).ok()?.to_string_lossy().replace('/', "__");
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect()
}

fn is_soap(bytes: &[u8]) -> bool {
    bytes.windows(9).any(|w| w == b"Envelope ") || bytes.windows(9).any(|w| w == b":Envelope")
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(a) = rest.find(open) {
        let after = &rest[a + open.len()..];
        let Some(b) = after.find(close) else { break };
        out.push(&after[..b]);
        rest = &after[b + close.len()..];
    }
    out
}

/// The seeds of `target` from the reference directory (empty for an unknown target).
pub fn seeds(target: &str, reference: &Path) -> Vec<Seed> {
    let files = reference_files(reference);
    let soap = || files.iter().filter(|(n, b)| is_soap(b) && !n.ends_with(".headers"));
    let seed = |name: &str, bytes: Vec<u8>| Seed { name: name.to_owned(), bytes };
    match target {
        "soap_envelope" | "wusp_request" | "wsusss_request" | "wsusss_response" => {
            soap().map(|(n, b)| seed(n, b.clone())).collect()
        }
        "update_xml" => files
            .iter()
            .filter(|(n, b)| n.starts_with("metadata__") && n.ends_with(".xml") && !is_soap(b))
            .map(|(n, b)| seed(n, b.clone()))
            .collect(),
        "cab_blob" => soap()
            .flat_map(|(n, b)| {
                let text = String::from_utf8_lossy(b).into_owned();
                between(&text, "<XmlUpdateBlobCompressed>", "</XmlUpdateBlobCompressed>")
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, b64)| {
                        let clean: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                        let bytes = base64::engine::general_purpose::STANDARD.decode(clean).ok()?;
                        Some(seed(&format!("{n}.{i}"), bytes))
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
        "xpress" => soap().map(|(n, b)| seed(n, wsus_xpress::compress(b))).collect(),
        "export_file" => vec![seed("export-of-reference-documents", export_of(&files))],
        "content_request" => content_requests(&files),
        _ => Vec::new(),
    }
}

/// An export file as `sync-worker export` writes it, holding the reference documents.
fn export_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    use wsus_export::{FILES, FORMAT, FORMAT_VERSION, MANIFEST, Manifest, Member, RevisionLine};
    let mut revisions = Vec::new();
    for (_, bytes) in files.iter().filter(|(n, b)| n.starts_with("metadata__") && n.ends_with(".xml") && !is_soap(b)) {
        let Ok(u) = wsus_metadata::Update::parse_bytes(bytes) else { continue };
        let line =
            RevisionLine { update_id: u.identity.update_id, revision_number: u.identity.revision_number, xml: u.xml };
        revisions.extend(serde_json::to_vec(&line).expect("serialisable"));
        revisions.push(b'\n');
    }
    let file_lines = concat!(
        r#"{"sha1":"2f88df42da48aa980fb748d13baa2de49cd154ab","sha256":null,"size":204745168,"#,
        r#""file_name":"windows11.0-kb5066835-x64.exe","mu_url":"http://download.windowsupdate.com/a.exe"}"#,
        "\n"
    )
    .as_bytes()
    .to_vec();
    let admin = br#"{"groups":[],"deployments":[],"declined":[],"accepted_eulas":[]}"#.to_vec();
    let members = [("revisions/00001.ndjson", revisions), (FILES, file_lines), (wsus_export::ADMIN, admin)];
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        created_at: chrono::DateTime::UNIX_EPOCH,
        counts: Default::default(),
        members: members.iter().map(|(n, b)| Member::of(n, b)).collect(),
    };
    let mut builder = tar::Builder::new(Vec::new());
    let manifest = serde_json::to_vec_pretty(&manifest).expect("serialisable");
    for (name, body) in std::iter::once((MANIFEST, &manifest)).chain(members.iter().map(|(n, b)| (*n, b))) {
        builder.append_data(&mut wsus_export::header(body.len() as u64), name, body.as_slice()).expect("in memory");
    }
    builder.into_inner().expect("in memory")
}

/// The paths and ranges real clients asked for, against the sizes of real files.
fn content_requests(files: &[(String, Vec<u8>)]) -> Vec<Seed> {
    let mut out = Vec::new();
    for (name, bytes) in files.iter().filter(|(n, _)| n.ends_with("request.headers")) {
        let text = String::from_utf8_lossy(bytes);
        let Some(path) = text.lines().next().and_then(|l| l.split(' ').nth(1)) else { continue };
        if !path.to_ascii_lowercase().starts_with("/content/") {
            continue;
        }
        let range = text
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("range")).map(|(_, v)| v.trim()))
            .unwrap_or("");
        for size in [0u64, 918_944, 204_745_168] {
            let mut bytes = size.to_le_bytes().to_vec();
            bytes.extend(format!("{path}\n{range}").into_bytes());
            out.push(Seed { name: format!("{name}.{size}"), bytes });
        }
    }
    out
}
