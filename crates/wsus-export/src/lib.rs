//! The export file: one tar whose first member, `manifest.json`, names every other member
//! with its SHA-256 and size. `revisions/*.ndjson` hold one update document a line,
//! `files.ndjson` the file locations, `admin.json` groups, approvals, declines and EULAs.
//!
//! Everything here reads from a `Read`, so hostile files can be checked (and fuzzed)
//! without a database: a file is verified whole before anything is stored.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

pub const MANIFEST: &str = "manifest.json";
pub const ADMIN: &str = "admin.json";
pub const FILES: &str = "files.ndjson";
pub const REVISIONS_PREFIX: &str = "revisions/";
pub const FORMAT: &str = "wsus-export";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("empty archive")]
    Empty,
    #[error("the first member is not {MANIFEST}")]
    NoManifest,
    #[error("{MANIFEST} is not valid: {0}")]
    BadManifest(serde_json::Error),
    #[error("unsupported export format {format} version {version}")]
    Unsupported { format: String, version: u32 },
    #[error("member {0} is not in the manifest: refused")]
    Unlisted(String),
    #[error(
        "member {name} does not match the manifest (SHA-256 {sha256}, {size} bytes): the file was altered; refused"
    )]
    Altered { name: String, sha256: String, size: u64 },
    #[error("member {0} named by the manifest is missing: refused")]
    Missing(String),
    #[error("{member}: bad line: {message}")]
    BadLine { member: String, message: String },
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub counts: BTreeMap<String, u64>,
    pub members: Vec<Member>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
pub struct Member {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

impl Member {
    /// The manifest entry for a member holding `body`.
    pub fn of(name: &str, body: &[u8]) -> Self {
        Member { name: name.to_owned(), sha256: hex::encode(sha2::Sha256::digest(body)), size: body.len() as u64 }
    }
}

/// One line of a `revisions/*.ndjson` member.
#[derive(Debug, Serialize, Deserialize)]
pub struct RevisionLine {
    pub update_id: uuid::Uuid,
    pub revision_number: i32,
    pub xml: String,
}

/// One line of `files.ndjson`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileLine {
    pub sha1: String,
    pub sha256: Option<String>,
    pub size: i64,
    pub file_name: String,
    pub mu_url: Option<String>,
}

impl RevisionLine {
    pub fn decode(member: &str, line: &str) -> Result<Self, ExportError> {
        serde_json::from_str(line).map_err(|e| bad_line(member, e))
    }
}

impl FileLine {
    /// A line with its SHA-1 checked to be 20 bytes of hex.
    pub fn decode(member: &str, line: &str) -> Result<(Self, [u8; 20]), ExportError> {
        let f: FileLine = serde_json::from_str(line).map_err(|e| bad_line(member, e))?;
        let sha1 = hex::decode(&f.sha1)
            .ok()
            .and_then(|b| <[u8; 20]>::try_from(b).ok())
            .ok_or_else(|| bad_line(member, format!("bad sha1 {:?}", f.sha1)))?;
        Ok((f, sha1))
    }
}

fn bad_line(member: &str, e: impl std::fmt::Display) -> ExportError {
    ExportError::BadLine { member: member.to_owned(), message: e.to_string() }
}

/// Checks every member of an export against its manifest; returns the manifest.
pub fn verify(archive: impl Read) -> Result<Manifest, ExportError> {
    let mut archive = tar::Archive::new(archive);
    let mut entries = archive.entries()?;
    let mut first = entries.next().ok_or(ExportError::Empty)??;
    if first.path()?.to_string_lossy() != MANIFEST {
        return Err(ExportError::NoManifest);
    }
    let mut raw = Vec::new();
    // A manifest names members, not content: a few MiB is already absurd.
    (&mut first).take(64 * 1024 * 1024).read_to_end(&mut raw)?;
    let manifest: Manifest = serde_json::from_slice(&raw).map_err(ExportError::BadManifest)?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(ExportError::Unsupported { format: manifest.format, version: manifest.format_version });
    }
    let mut expected: BTreeMap<&str, &Member> = manifest.members.iter().map(|m| (m.name.as_str(), m)).collect();
    for entry in entries {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let member = expected.remove(name.as_str()).ok_or_else(|| ExportError::Unlisted(name.clone()))?;
        let mut hasher = sha2::Sha256::new();
        let size = std::io::copy(&mut entry, &mut HashWriter(&mut hasher))?;
        let sha256 = hex::encode(hasher.finalize());
        if sha256 != member.sha256 || size != member.size {
            return Err(ExportError::Altered { name, sha256, size });
        }
    }
    if let Some(missing) = expected.keys().next() {
        return Err(ExportError::Missing((*missing).to_owned()));
    }
    Ok(manifest)
}

struct HashWriter<'a>(&'a mut sha2::Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A tar header as exports write them (reproducible: no owner, fixed time).
pub fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in members {
            b.append_data(&mut header(body.len() as u64), name, *body).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn manifest(members: Vec<Member>) -> Vec<u8> {
        serde_json::to_vec(&Manifest {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            created_at: chrono::Utc::now(),
            counts: BTreeMap::new(),
            members,
        })
        .unwrap()
    }

    #[test]
    fn a_whole_export_verifies_and_an_altered_one_is_refused() {
        let files = b"{\"sha1\":\"00\"}\n".as_slice();
        let m = manifest(vec![Member::of(FILES, files)]);
        assert!(verify(archive(&[(MANIFEST, &m), (FILES, files)]).as_slice()).is_ok());
        let altered = verify(archive(&[(MANIFEST, &m), (FILES, b"{\"sha1\":\"01\"}\n")]).as_slice());
        assert!(matches!(altered, Err(ExportError::Altered { .. })), "{altered:?}");
        let extra = verify(archive(&[(MANIFEST, &m), (FILES, files), ("evil", b"x")]).as_slice());
        assert!(matches!(extra, Err(ExportError::Unlisted(n)) if n == "evil"));
        assert!(matches!(verify(archive(&[(MANIFEST, &m)]).as_slice()), Err(ExportError::Missing(_))));
        assert!(matches!(verify(archive(&[(FILES, files)]).as_slice()), Err(ExportError::NoManifest)));
        assert!(verify(&b"not a tar"[..]).is_err());
    }

    #[test]
    fn file_lines_need_a_twenty_byte_sha1() {
        let ok = r#"{"sha1":"a379d5526fb3a7a0423da1cd7fc3182a8d448449","sha256":null,"size":1,"file_name":"a.cab","mu_url":null}"#;
        assert!(FileLine::decode(FILES, ok).is_ok());
        assert!(FileLine::decode(FILES, &ok.replace("a379", "zz79")).is_err());
        assert!(FileLine::decode(FILES, &ok.replace("a379", "79")).is_err());
    }
}
