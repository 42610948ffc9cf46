//! The bucket store against a real S3 server (s3s-fs, started per test): a file appears
//! under its key only verified and whole, reads honour byte ranges, a corrupt download is
//! dropped, an interrupted one resumes, and removal is idempotent.

use std::sync::Arc;

use sha1::Digest as _;
use tokio_stream::StreamExt as _;
use wsus_config::S3Config;
use wsus_content::{Bucket, ContentError, Store, Wanted};
use wsus_testdata::S3Server;

fn config(s3: &S3Server, prefix: &str) -> S3Config {
    S3Config {
        bucket: s3.bucket.clone(),
        endpoint: Some(s3.endpoint.clone()),
        region: "us-east-1".into(),
        prefix: prefix.into(),
    }
}

fn store(s3: &S3Server, staging: &std::path::Path) -> (Store, Arc<Bucket>) {
    let bucket = Arc::new(Bucket::with_keys(&config(s3, "site-a"), staging, &s3.access_key, &s3.secret_key).unwrap());
    (Store::Bucket(bucket.clone()), bucket)
}

fn wanted(bytes: &[u8], name: &str) -> Wanted {
    Wanted {
        sha1: sha1::Sha1::digest(bytes).into(),
        sha256: Some(sha2::Sha256::digest(bytes).into()),
        size: Some(bytes.len() as u64),
        file_name: name.to_owned(),
    }
}

/// A file bigger than one part, so it goes up as a multipart upload.
fn big() -> Vec<u8> {
    (0..(11 * 1024 * 1024u32)).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

async fn read_all(store: &Store, w: &Wanted, range: std::ops::Range<u64>) -> Vec<u8> {
    let Store::Bucket(bucket) = store else { panic!("these tests read a bucket") };
    let mut stream = bucket.read(&w.sha1, &w.file_name, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

fn objects(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(objects(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test]
async fn only_verified_files_appear_and_ranges_read_back() {
    let s3 = S3Server::start("wsus");
    let staging = tempfile::tempdir().unwrap();
    let (store, bucket) = store(&s3, staging.path());
    let small = b"a small update payload".to_vec();
    let w = wanted(&small, "kb1.cab");

    // Wrong bytes never reach the bucket.
    let refused = store.put(w.clone(), b"a small update pay1oad".to_vec()).await;
    assert!(matches!(refused, Err(ContentError::DigestMismatch { .. })), "{refused:?}");
    assert_eq!(store.stat(&w.sha1, "kb1.cab").await.unwrap(), None);

    store.put(w.clone(), small.clone()).await.unwrap();
    let stat = store.stat(&w.sha1, "kb1.cab").await.unwrap().expect("stored");
    assert_eq!(stat.size, small.len() as u64);
    assert_eq!(read_all(&store, &w, 2..7).await, small[2..7]);
    // Where WSUS puts it, under the prefix: a CDN for <bucket>/site-a serves /Content/ paths.
    let key = bucket.key(&w.sha1, "kb1.cab");
    assert!(key.starts_with("site-a/Content/") && key.ends_with(".cab"), "{key}");
    assert!(s3.bucket_dir().join(&key).is_file());

    // A download bigger than a part: verified on local disk, then a multipart upload.
    let bytes = big();
    let w = wanted(&bytes, "feature.exe");
    let partial = store.partial_path(&w.sha1);
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(&partial, &bytes).unwrap();
    store.adopt(w.clone(), partial.clone()).await.unwrap();
    assert!(!partial.exists(), "the staged copy goes once uploaded");
    assert_eq!(store.stat(&w.sha1, "feature.exe").await.unwrap().unwrap().size, bytes.len() as u64);
    let tail = bytes.len() as u64 - 100;
    assert_eq!(read_all(&store, &w, tail..bytes.len() as u64).await, bytes[tail as usize..]);
    assert_eq!(read_all(&store, &w, 0..bytes.len() as u64).await, bytes, "byte for byte");

    store.remove(&w.sha1, "feature.exe").await.unwrap();
    assert_eq!(store.stat(&w.sha1, "feature.exe").await.unwrap(), None);
    store.remove(&w.sha1, "feature.exe").await.unwrap();
}

#[tokio::test]
async fn corrupt_downloads_are_dropped_and_short_ones_kept() {
    let s3 = S3Server::start("wsus");
    let staging = tempfile::tempdir().unwrap();
    let (store, _) = store(&s3, staging.path());
    let bytes = b"a file downloaded in two pieces".to_vec();
    let w = wanted(&bytes, "y.exe");
    let partial = store.partial_path(&w.sha1);
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();

    // Short: kept on local disk for the next attempt, nothing in the bucket.
    std::fs::write(&partial, &bytes[..10]).unwrap();
    let short = store.adopt(w.clone(), partial.clone()).await;
    assert!(matches!(short, Err(ContentError::Incomplete { actual: 10, .. })), "{short:?}");
    assert!(partial.exists());
    assert_eq!(store.stat(&w.sha1, "y.exe").await.unwrap(), None);

    // Corrupt: dropped, and nothing in the bucket.
    std::fs::write(&partial, b"A file downloaded in two pieces").unwrap();
    let corrupt = store.adopt(w.clone(), partial.clone()).await;
    assert!(matches!(corrupt, Err(ContentError::DigestMismatch { .. })), "{corrupt:?}");
    assert!(!partial.exists());
    let held = objects(&s3.bucket_dir());
    assert!(held.is_empty(), "no object of a refused file: {held:?}");

    // Completed: uploaded.
    std::fs::write(&partial, &bytes).unwrap();
    store.adopt(w.clone(), partial).await.unwrap();
    assert_eq!(read_all(&store, &w, 0..bytes.len() as u64).await, bytes);
}

#[tokio::test]
async fn a_refused_request_is_an_error_not_a_missing_file() {
    let s3 = S3Server::start("wsus");
    let staging = tempfile::tempdir().unwrap();
    let wrong = Bucket::with_keys(&config(&s3, ""), staging.path(), &s3.access_key, "not-the-secret").unwrap();
    let stat = Store::Bucket(Arc::new(wrong)).stat(&[7; 20], "x.cab").await;
    assert!(matches!(stat, Err(ContentError::Bucket(_))), "{stat:?}");
}
