//! Content in an S3-compatible bucket (MinIO, Ceph RGW, AWS S3) through the `object_store`
//! crate. Files are verified on local disk before they are uploaded, and each upload is
//! one PUT, or a multipart upload completed at the file's key only when every part is
//! there: the key holds nothing until it holds the whole, verified file. An upload cut
//! off leaves no object (only an unfinished multipart upload, for the bucket's lifecycle
//! rule to abort); the verified download stays on local disk and is uploaded again.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};
use tokio::io::AsyncReadExt as _;
use tokio_stream::StreamExt as _;
use wsus_config::S3Config;

use crate::store::{ByteStream, Stat, Wanted};
use crate::{ContentError, ContentStore, check, relative_path, verify_download};

/// Parts of a multipart upload (S3's smallest but the last is 5 MiB).
const PART: usize = 8 * 1024 * 1024;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// A bucket holding content under `<prefix>/Content/`, so a public or CDN endpoint for
/// `<bucket>/<prefix>` serves the same paths as this server's `/Content/`.
pub struct Bucket {
    s3: Arc<dyn ObjectStore>,
    prefix: String,
    /// Local disk where downloads are fetched and verified before upload.
    staging: ContentStore,
}

impl Bucket {
    /// The bucket of `config`, credentials from the `AWS_*` variables and the usual chain
    /// (web identity, container and instance credentials).
    pub fn from_env(config: &S3Config, staging: &Path) -> Result<Self, ContentError> {
        Self::build(AmazonS3Builder::from_env(), config, staging)
    }

    /// The bucket of `config` with these keys.
    pub fn with_keys(config: &S3Config, staging: &Path, key_id: &str, secret: &str) -> Result<Self, ContentError> {
        Self::build(AmazonS3Builder::new().with_access_key_id(key_id).with_secret_access_key(secret), config, staging)
    }

    fn build(builder: AmazonS3Builder, config: &S3Config, staging: &Path) -> Result<Self, ContentError> {
        // Reads stream whole files: no limit on a request's duration, but on connecting and
        // on a silence (a bucket that accepts connections and never answers).
        let client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_read_timeout(Duration::from_secs(30))
            .with_timeout_disabled();
        // A few quick retries: a client waits for the answer, a sync tries again later.
        let retry = RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(15), ..Default::default() };
        let mut builder = builder
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        Ok(Self { s3: Arc::new(builder.build()?), prefix: config.prefix.clone(), staging: ContentStore::new(staging) })
    }

    /// `<prefix>/Content/XX/SHA1.ext`.
    pub fn key(&self, sha1: &[u8; 20], file_name: &str) -> String {
        let path = format!("Content/{}", relative_path(sha1, file_name));
        if self.prefix.is_empty() { path } else { format!("{}/{path}", self.prefix) }
    }

    pub fn partial_path(&self, sha1: &[u8; 20]) -> PathBuf {
        self.staging.partial_path(sha1)
    }

    /// Verifies the download at `partial`, uploads it to its key, then drops it.
    pub async fn adopt(&self, wanted: Wanted, partial: PathBuf) -> Result<(), ContentError> {
        let verified = {
            let (wanted, partial) = (wanted.clone(), partial.clone());
            tokio::task::spawn_blocking(move || verify_download(wanted.expected(), &partial))
        };
        verified.await.map_err(|e| ContentError::Io(std::io::Error::other(e)))??;
        self.upload(&Key::from(self.key(&wanted.sha1, &wanted.file_name)), &partial).await?;
        tokio::fs::remove_file(&partial).await?;
        Ok(())
    }

    /// Uploads a verified file: one PUT when it fits in a part, else a multipart upload.
    async fn upload(&self, key: &Key, path: &Path) -> Result<(), ContentError> {
        let mut file = tokio::fs::File::open(path).await?;
        let size = file.metadata().await?.len();
        if size <= PART as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).await?;
            self.s3.put(key, PutPayload::from(bytes)).await?;
            return Ok(());
        }
        let mut upload = WriteMultipart::new_with_chunk_size(self.s3.put_multipart(key).await?, PART);
        let mut buf = vec![0u8; 1024 * 1024];
        let sent = async {
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, ContentError>(());
                }
                upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                upload.write(&buf[..n]);
            }
        }
        .await;
        match sent {
            Ok(()) => {
                upload.finish().await?;
                Ok(())
            }
            Err(e) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(key = %key, error = %abort, "cannot abort the multipart upload; the bucket's lifecycle rule removes it");
                }
                Err(e)
            }
        }
    }

    /// Stores `bytes` after checking them.
    pub async fn put(&self, wanted: Wanted, bytes: Vec<u8>) -> Result<(), ContentError> {
        check(wanted.expected(), crate::copy_hashing(&mut bytes.as_slice(), None)?)?;
        let key = Key::from(self.key(&wanted.sha1, &wanted.file_name));
        self.s3.put(&key, PutPayload::from(bytes)).await?;
        Ok(())
    }

    pub async fn stat(&self, sha1: &[u8; 20], file_name: &str) -> Result<Option<Stat>, ContentError> {
        match self.s3.head(&Key::from(self.key(sha1, file_name))).await {
            Ok(meta) => Ok(Some(Stat { size: meta.size, modified: meta.last_modified })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Bytes `range` of a stored file, streamed as S3 sends them.
    pub async fn read(&self, sha1: &[u8; 20], file_name: &str, range: Range<u64>) -> Result<ByteStream, ContentError> {
        let options = GetOptions { range: Some(GetRange::Bounded(range)), ..Default::default() };
        let got = self.s3.get_opts(&Key::from(self.key(sha1, file_name)), options).await?;
        Ok(Box::pin(got.into_stream().map(|chunk| chunk.map_err(ContentError::from))))
    }

    pub async fn remove(&self, sha1: &[u8; 20], file_name: &str) -> Result<(), ContentError> {
        match self.s3.delete(&Key::from(self.key(sha1, file_name))).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
