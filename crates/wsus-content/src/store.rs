//! Either content store, behind one async interface: sync-worker adopts verified
//! downloads into it, client-gateway asks what it holds (and reads a directory's files by
//! mapping them, a bucket's through [`Bucket::read`]), cleanup removes what no revision
//! references.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use wsus_config::ContentStoreConfig;

use crate::{Bucket, ContentError, ContentStore, Expected};

/// A file's bytes as they arrive from a bucket.
pub type ByteStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Bytes, ContentError>> + Send>>;

/// What is known of a stored file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// A file the store must hold, owned (to cross into blocking work and across awaits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub sha1: [u8; 20],
    pub sha256: Option<[u8; 32]>,
    pub size: Option<u64>,
    pub file_name: String,
}

impl Wanted {
    pub fn expected(&self) -> Expected<'_> {
        Expected { sha1: &self.sha1, sha256: self.sha256.as_ref(), size: self.size, file_name: &self.file_name }
    }
}

/// Where content is kept.
#[derive(Clone)]
pub enum Store {
    Directory(ContentStore),
    Bucket(Arc<Bucket>),
}

impl Store {
    /// The store the configuration names; `dir` is the directory store's root, or where
    /// a bucket's downloads are staged while they are fetched and verified.
    pub fn open(config: &ContentStoreConfig, dir: &Path) -> Result<Self, ContentError> {
        Ok(match config {
            ContentStoreConfig::Filesystem => Store::Directory(ContentStore::new(dir)),
            ContentStoreConfig::S3(s3) => Store::Bucket(Arc::new(Bucket::from_env(s3, dir)?)),
        })
    }

    /// Where a resumable download of this file accumulates (local disk, never served).
    pub fn partial_path(&self, sha1: &[u8; 20]) -> PathBuf {
        match self {
            Store::Directory(d) => d.partial_path(sha1),
            Store::Bucket(b) => b.partial_path(sha1),
        }
    }

    /// Verifies a completed download at `partial` and makes it visible under its name;
    /// mismatched bytes are dropped, short ones kept for the next attempt.
    pub async fn adopt(&self, wanted: Wanted, partial: PathBuf) -> Result<(), ContentError> {
        match self {
            Store::Directory(d) => {
                let d = d.clone();
                blocking(move || d.adopt(wanted.expected(), &partial).map(|_| ())).await
            }
            Store::Bucket(b) => b.adopt(wanted, partial).await,
        }
    }

    /// Stores `bytes` after checking them.
    pub async fn put(&self, wanted: Wanted, bytes: Vec<u8>) -> Result<(), ContentError> {
        match self {
            Store::Directory(d) => {
                let d = d.clone();
                blocking(move || d.put(wanted.expected(), &bytes).map(|_| ())).await
            }
            Store::Bucket(b) => b.put(wanted, bytes).await,
        }
    }

    /// The file's size and time; None when the store does not hold it.
    pub async fn stat(&self, sha1: &[u8; 20], file_name: &str) -> Result<Option<Stat>, ContentError> {
        match self {
            Store::Directory(d) => {
                let path = d.path(sha1, file_name);
                match tokio::fs::metadata(&path).await {
                    Ok(m) if m.is_file() => {
                        Ok(Some(Stat { size: m.len(), modified: m.modified().map(DateTime::from).unwrap_or_default() }))
                    }
                    Ok(_) => Ok(None),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            Store::Bucket(b) => b.stat(sha1, file_name).await,
        }
    }

    /// Removes a stored file (one already gone is no error).
    pub async fn remove(&self, sha1: &[u8; 20], file_name: &str) -> Result<(), ContentError> {
        match self {
            Store::Directory(d) => {
                let d = d.clone();
                let (sha1, name) = (*sha1, file_name.to_owned());
                blocking(move || d.remove(&sha1, &name).map(|_| ()).map_err(ContentError::from)).await
            }
            Store::Bucket(b) => b.remove(sha1, file_name).await,
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ContentError> + Send + 'static,
) -> Result<T, ContentError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ContentError::Io(std::io::Error::other(e)))?
}
