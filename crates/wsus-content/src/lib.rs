//! The content store: update files addressed by SHA-1 as WSUS names them
//! (`<last two hex digits>/<SHA1HEX>.<ext>`), visible only after their size, SHA-1 and
//! SHA-256 match, so a partial or corrupt file is never served. Kept in a directory
//! ([`ContentStore`]) or an S3-compatible bucket ([`Bucket`]); [`Store`] is either.

mod bucket;
pub mod request;
mod store;

pub use bucket::Bucket;
pub use store::{ByteStream, Stat, Store, Wanted};

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha1::Digest as _;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content store: {0}")]
    Io(#[from] io::Error),
    #[error("object storage: {0}")]
    Bucket(#[from] object_store::Error),
    #[error("{what} mismatch for {name}: expected {expected}, got {actual}")]
    DigestMismatch { name: String, what: &'static str, expected: String, actual: String },
    #[error("size mismatch for {name}: expected {expected} bytes, got {actual}")]
    SizeMismatch { name: String, expected: u64, actual: u64 },
    /// A resumable download holds fewer bytes than the file has: it stopped early (a
    /// full volume, a dropped connection) and is kept for the next attempt to finish.
    #[error("{name} is incomplete: {actual} of {expected} bytes; the rest is fetched next time")]
    Incomplete { name: String, expected: u64, actual: u64 },
}

impl ContentError {
    /// The store does not hold the file (as opposed to a store that cannot answer).
    pub fn is_not_found(&self) -> bool {
        match self {
            ContentError::Io(e) => e.kind() == io::ErrorKind::NotFound,
            ContentError::Bucket(e) => matches!(e, object_store::Error::NotFound { .. }),
            _ => false,
        }
    }
}

/// What a stored file must be.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub sha1: &'a [u8; 20],
    pub sha256: Option<&'a [u8; 32]>,
    pub size: Option<u64>,
    /// The metadata FileName; its extension names the stored file.
    pub file_name: &'a str,
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// `XX/SHA1HEX.ext`: the folder is the last two hex digits, all upper case, as WSUS does.
pub fn relative_path(sha1: &[u8; 20], file_name: &str) -> String {
    let hex = hex::encode_upper(sha1);
    let ext = Path::new(file_name).extension().and_then(|e| e.to_str()).filter(|e| !e.is_empty()).unwrap_or("bin");
    format!("{}/{hex}.{ext}", &hex[38..])
}

impl ContentStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, sha1: &[u8; 20], file_name: &str) -> PathBuf {
        self.root.join(relative_path(sha1, file_name))
    }

    pub fn contains(&self, sha1: &[u8; 20], file_name: &str) -> bool {
        self.path(sha1, file_name).is_file()
    }

    /// Removes a stored file; false when it was not there.
    pub fn remove(&self, sha1: &[u8; 20], file_name: &str) -> std::io::Result<bool> {
        match std::fs::remove_file(self.path(sha1, file_name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stores `bytes` after checking them against `expected`.
    pub fn put(&self, expected: Expected<'_>, bytes: &[u8]) -> Result<PathBuf, ContentError> {
        self.put_reader(expected, bytes)
    }

    /// Streams `reader` into the store, verifying as it goes; the file appears only if
    /// every digest (and the size, when given) matches.
    pub fn put_reader(&self, expected: Expected<'_>, mut reader: impl Read) -> Result<PathBuf, ContentError> {
        let incoming = self.root.join(".incoming");
        fs::create_dir_all(&incoming)?;
        let hex = hex::encode_upper(expected.sha1);
        let tmp = incoming.join(format!("{hex}.{}.part", std::process::id()));
        let outcome = (|| {
            let mut file = fs::File::create(&tmp)?;
            let digests = copy_hashing(&mut reader, Some(&mut file))?;
            file.sync_all()?;
            self.place_checked(expected, digests, &tmp)
        })();
        if outcome.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        outcome
    }

    /// Where a resumable download of this file accumulates: inside the store, never served.
    pub fn partial_path(&self, sha1: &[u8; 20]) -> PathBuf {
        self.root.join(".incoming").join(format!("{}.partial", hex::encode_upper(sha1)))
    }

    /// Verifies a completed download at `path` and moves it into place; a file that does
    /// not match is removed (the next attempt starts over). One that is only short stays
    /// where it is, for the next attempt to resume.
    pub fn adopt(&self, expected: Expected<'_>, path: &Path) -> Result<PathBuf, ContentError> {
        verify_download(expected, path)?;
        self.place(expected, path)
    }

    /// Checks the digests of a complete file and renames it into place.
    fn place_checked(&self, expected: Expected<'_>, digests: Digests, from: &Path) -> Result<PathBuf, ContentError> {
        check(expected, digests)?;
        self.place(expected, from)
    }

    /// Renames a verified file into place.
    fn place(&self, expected: Expected<'_>, from: &Path) -> Result<PathBuf, ContentError> {
        let dest = self.path(expected.sha1, expected.file_name);
        fs::create_dir_all(dest.parent().expect("a folder"))?;
        fs::rename(from, &dest)?;
        Ok(dest)
    }
}

/// (size, SHA-1, SHA-256) of what was read.
type Digests = (u64, [u8; 20], [u8; 32]);

/// Verifies a completed download at `path` in place. A file that does not match is
/// removed (the next attempt starts over); one that is only short stays, for the next
/// attempt to resume.
pub(crate) fn verify_download(expected: Expected<'_>, path: &Path) -> Result<(), ContentError> {
    let outcome = (|| {
        let have = fs::metadata(path)?.len();
        if let Some(want) = expected.size.filter(|w| have < *w) {
            let name = expected.file_name.to_owned();
            return Err(ContentError::Incomplete { name, expected: want, actual: have });
        }
        check(expected, copy_hashing(&mut fs::File::open(path)?, None)?)
    })();
    if matches!(outcome, Err(ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. })) {
        let _ = fs::remove_file(path);
    }
    outcome
}

/// Whether what was read is the file expected.
pub(crate) fn check(expected: Expected<'_>, (size, got1, got256): Digests) -> Result<(), ContentError> {
    let name = expected.file_name.to_owned();
    if let Some(want) = expected.size.filter(|w| *w != size) {
        return Err(ContentError::SizeMismatch { name, expected: want, actual: size });
    }
    if &got1 != expected.sha1 {
        return Err(ContentError::DigestMismatch {
            name,
            what: "SHA-1",
            expected: hex::encode_upper(expected.sha1),
            actual: hex::encode_upper(got1),
        });
    }
    if let Some(want) = expected.sha256.filter(|w| **w != got256) {
        return Err(ContentError::DigestMismatch {
            name,
            what: "SHA-256",
            expected: hex::encode_upper(want),
            actual: hex::encode_upper(got256),
        });
    }
    Ok(())
}

/// Reads `reader` to its end, hashing, and copying into `sink` when given.
pub(crate) fn copy_hashing(reader: &mut impl Read, mut sink: Option<&mut fs::File>) -> io::Result<Digests> {
    let (mut sha1, mut sha256, mut size) = (sha1::Sha1::new(), sha2::Sha256::new(), 0u64);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha1.update(&buf[..n]);
        sha256.update(&buf[..n]);
        size += n as u64;
        if let Some(f) = sink.as_mut() {
            f.write_all(&buf[..n])?;
        }
    }
    Ok((size, sha1.finalize().into(), sha256.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(bytes: &[u8]) -> ([u8; 20], [u8; 32]) {
        (sha1::Sha1::digest(bytes).into(), sha2::Sha256::digest(bytes).into())
    }

    #[test]
    fn paths_follow_wsus() {
        let sha1 = hex::decode("A379D5526FB3A7A0423DA1CD7FC3182A8D448449").unwrap().try_into().unwrap();
        assert_eq!(relative_path(&sha1, "AM_Delta.exe"), "49/A379D5526FB3A7A0423DA1CD7FC3182A8D448449.exe");
        assert_eq!(relative_path(&sha1, "noext"), "49/A379D5526FB3A7A0423DA1CD7FC3182A8D448449.bin");
    }

    #[test]
    fn only_verified_files_appear() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        let bytes = b"update payload".to_vec();
        let (sha1, sha256) = digests(&bytes);
        let expected =
            Expected { sha1: &sha1, sha256: Some(&sha256), size: Some(bytes.len() as u64), file_name: "x.cab" };

        let tampered = b"update pay1oad".to_vec();
        assert!(matches!(store.put(expected, &tampered), Err(ContentError::DigestMismatch { what: "SHA-1", .. })));
        assert!(matches!(store.put(expected, &bytes[..5]), Err(ContentError::SizeMismatch { .. })));
        let wrong256 = [0u8; 32];
        let bad = Expected { sha256: Some(&wrong256), ..expected };
        assert!(matches!(store.put(bad, &bytes), Err(ContentError::DigestMismatch { what: "SHA-256", .. })));
        assert!(!store.contains(&sha1, "x.cab"));
        assert_eq!(fs::read_dir(dir.path().join(".incoming")).unwrap().count(), 0, "no partial file left");

        let path = store.put(expected, &bytes).unwrap();
        assert_eq!(fs::read(path).unwrap(), bytes);
        assert!(store.contains(&sha1, "x.cab"));
    }

    #[test]
    fn resumed_downloads_are_adopted_only_when_they_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        let bytes = b"a file downloaded in two pieces".to_vec();
        let (sha1, sha256) = digests(&bytes);
        let expected =
            Expected { sha1: &sha1, sha256: Some(&sha256), size: Some(bytes.len() as u64), file_name: "y.exe" };
        let partial = store.partial_path(&sha1);
        fs::create_dir_all(partial.parent().unwrap()).unwrap();
        fs::write(&partial, &bytes[..10]).unwrap();
        assert!(matches!(store.adopt(expected, &partial), Err(ContentError::Incomplete { actual: 10, .. })));
        assert!(partial.exists() && !store.contains(&sha1, "y.exe"), "a short one is kept, not served");
        let mut longer = bytes.clone();
        longer.push(b'!');
        fs::write(&partial, &longer).unwrap();
        assert!(matches!(store.adopt(expected, &partial), Err(ContentError::SizeMismatch { .. })));
        assert!(!partial.exists(), "a bad partial file is dropped");
        fs::write(&partial, b"A file downloaded in two pieces").unwrap();
        assert!(matches!(store.adopt(expected, &partial), Err(ContentError::DigestMismatch { .. })));
        assert!(!partial.exists(), "a corrupt partial file is dropped");
        fs::write(&partial, &bytes).unwrap();
        let path = store.adopt(expected, &partial).unwrap();
        assert_eq!(fs::read(path).unwrap(), bytes);
        assert!(!partial.exists() && store.contains(&sha1, "y.exe"));
    }
}
