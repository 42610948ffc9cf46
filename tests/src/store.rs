//! A server's content store in a test: a directory, or a bucket of a real S3 server
//! (s3s-fs), so one scenario runs against both. s3s-fs keeps each object as a plain file
//! under its key, so a test reads or removes what is served from disk either way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wsus_config::S3Config;
use wsus_content::{Bucket, Store, Wanted};
use wsus_testdata::S3Server;

/// Which store a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Directory,
    Bucket,
}

/// A content store for the services of one test.
pub struct TestStore {
    /// `WSUS_CONTENT_DIR`: the directory store, or a bucket's local staging.
    dir: PathBuf,
    bucket: Option<(S3Server, String)>,
}

impl TestStore {
    /// Files kept in `dir`.
    pub fn directory(dir: &Path) -> Self {
        TestStore { dir: dir.to_owned(), bucket: None }
    }

    /// Files kept under `prefix` in a bucket of a new S3 server, staged in `staging`.
    pub fn bucket(staging: &Path, prefix: &str) -> Self {
        TestStore { dir: staging.to_owned(), bucket: Some((S3Server::start("wsus"), prefix.to_owned())) }
    }

    /// A store of `kind`: the directory `dir`, or a bucket staged there.
    pub fn new(kind: StoreKind, dir: &Path) -> Self {
        match kind {
            StoreKind::Directory => Self::directory(dir),
            StoreKind::Bucket => Self::bucket(dir, "site"),
        }
    }

    pub fn kind(&self) -> StoreKind {
        if self.bucket.is_some() { StoreKind::Bucket } else { StoreKind::Directory }
    }

    /// `WSUS_CONTENT_DIR`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What a service needs beyond `WSUS_CONTENT_DIR` to use this store.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        self.bucket.as_ref().map(|(s3, prefix)| s3.env(prefix)).unwrap_or_default()
    }

    /// `WSUS_CONTENT_DIR` and the settings, for a service's environment.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("WSUS_CONTENT_DIR", self.dir.display().to_string())];
        env.extend(self.settings());
        env
    }

    /// The S3 server, for a bucket.
    pub fn s3(&self) -> Option<&S3Server> {
        self.bucket.as_ref().map(|(s3, _)| s3)
    }

    /// The file on disk holding what is served as `/Content/<relative>`.
    pub fn served_path(&self, relative: &str) -> PathBuf {
        match &self.bucket {
            None => self.dir.join(relative),
            Some((s3, prefix)) => s3.bucket_dir().join(prefix).join("Content").join(relative),
        }
    }

    /// Every file served, as paths relative to `/Content/`.
    pub fn served(&self) -> Vec<String> {
        let root = match &self.bucket {
            None => self.dir.clone(),
            Some((s3, prefix)) => s3.bucket_dir().join(prefix).join("Content"),
        };
        let mut out = Vec::new();
        for folder in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            // A directory store's own folders (partial downloads, quarantine) are not served.
            let name = folder.file_name().to_string_lossy().into_owned();
            if name.len() != 2 || !folder.path().is_dir() {
                continue;
            }
            for file in std::fs::read_dir(folder.path()).into_iter().flatten().flatten() {
                out.push(format!("{name}/{}", file.file_name().to_string_lossy()));
            }
        }
        out.sort();
        out
    }

    /// Downloads under way or cut off (local disk, never served).
    pub fn staged(&self) -> Vec<PathBuf> {
        let incoming = self.dir.join(".incoming");
        std::fs::read_dir(incoming).into_iter().flatten().flatten().map(|e| e.path()).collect()
    }

    /// The store as the services open it.
    pub fn open(&self) -> Store {
        let Some((s3, prefix)) = &self.bucket else {
            return Store::Directory(wsus_content::ContentStore::new(&self.dir));
        };
        let config = S3Config {
            bucket: s3.bucket.clone(),
            endpoint: Some(s3.endpoint.clone()),
            region: "us-east-1".into(),
            prefix: prefix.clone(),
        };
        Store::Bucket(Arc::new(Bucket::with_keys(&config, &self.dir, &s3.access_key, &s3.secret_key).unwrap()))
    }

    /// Stores `bytes` as a file named `file_name`; returns its SHA-1 and its path under
    /// `/Content/`.
    pub async fn put(&self, file_name: &str, bytes: Vec<u8>) -> ([u8; 20], String) {
        use sha1::Digest as _;
        let sha1: [u8; 20] = sha1::Sha1::digest(&bytes).into();
        let wanted = Wanted { sha1, sha256: None, size: Some(bytes.len() as u64), file_name: file_name.to_owned() };
        self.open().put(wanted, bytes).await.unwrap();
        (sha1, wsus_content::relative_path(&sha1, file_name))
    }

    /// Puts the files of a directory store (`catalog-gen --content`) into this store:
    /// through the S3 API for a bucket; a directory must be that directory already.
    pub async fn fill_from(&self, generated: &Path) -> usize {
        if self.bucket.is_none() {
            assert_eq!(generated, self.dir, "a directory store is filled where it is generated");
            return TestStore::directory(generated).served().len();
        }
        let store = self.open();
        let mut uploaded = 0;
        for relative in TestStore::directory(generated).served() {
            let name = relative.rsplit('/').next().unwrap();
            let (hex, ext) = name.split_once('.').unwrap_or((name, ""));
            let Ok(sha1) = hex::decode(hex).map(|b| <[u8; 20]>::try_from(b).unwrap()) else { continue };
            let bytes = std::fs::read(generated.join(&relative)).unwrap();
            let wanted = Wanted { sha1, sha256: None, size: Some(bytes.len() as u64), file_name: format!("f.{ext}") };
            store.put(wanted, bytes).await.unwrap();
            uploaded += 1;
        }
        uploaded
    }
}
