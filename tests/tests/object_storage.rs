//! Content in S3-compatible object storage, against a real S3 server (s3s-fs): the
//! gateway serves `/Content/` from the bucket as it does from a directory (a simulated
//! client downloads in shuffled Range pieces and gets every byte; HEAD, ETag,
//! Last-Modified, 416 beyond the end), and a file the bucket lacks is a 404 that asks
//! sync-worker for it.

use std::sync::Arc;

use sqlx::PgPool;
use wsus_config::S3Config;
use wsus_content::{Bucket, Store, Wanted};
use wsus_e2e::PgCluster;
use wsus_e2e::agent::Agent;
use wsus_testdata::S3Server;

/// Uploads every file of a generated content directory into the bucket through the S3 API.
async fn upload(store: &Store, dir: &std::path::Path) -> usize {
    let mut uploaded = 0;
    for folder in std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.path().is_dir()) {
        for file in std::fs::read_dir(folder.path()).unwrap().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let Some((hex, ext)) = name.split_once('.') else { continue };
            let Ok(sha1) = hex::decode(hex).map(|b| <[u8; 20]>::try_from(b).unwrap()) else { continue };
            let bytes = std::fs::read(file.path()).unwrap();
            let wanted = Wanted { sha1, sha256: None, size: Some(bytes.len() as u64), file_name: format!("f.{ext}") };
            store.put(wanted, bytes).await.unwrap();
            uploaded += 1;
        }
    }
    uploaded
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_serves_content_from_a_bucket() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 300, seed: 21, ..Default::default() };
    let generated = dir.path().join("generated");
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), Some(&generated)).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));
    let pool = PgPool::connect(&db).await.unwrap();
    assert_eq!(wsus_e2e::approve_bundles(&pool, 3, true).await.unwrap(), 3);

    let s3 = S3Server::start("wsus");
    let config = S3Config {
        bucket: s3.bucket.clone(),
        endpoint: Some(s3.endpoint.clone()),
        region: "us-east-1".into(),
        prefix: "site-a".into(),
    };
    let staging = dir.path().join("staging");
    let bucket = Store::Bucket(Arc::new(Bucket::with_keys(&config, &staging, &s3.access_key, &s3.secret_key).unwrap()));
    assert!(upload(&bucket, &generated).await > 0);
    // The services' own directory holds nothing: every byte served comes from the bucket.
    let empty = dir.path().join("local");
    let settings: Vec<(&'static str, String)> = s3.env("site-a");
    let system = wsus_e2e::System::start_full(&db, Some(&empty), &settings, &settings);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;

    let mut agent = Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    // Every file offered, in shuffled 64 KiB Range pieces, each checked against its digests.
    let (files, bytes) = agent.download_offered(64 * 1024).await.unwrap();
    assert!(files > 0 && bytes > 0, "{files} files, {bytes} bytes");
    assert_eq!(std::fs::read_dir(&empty).map(|d| d.count()).unwrap_or(0), 0, "nothing was served from disk");

    // HEAD, validators and a range beyond the end, as from a directory.
    let leaf = agent
        .received
        .iter()
        .filter(|(_, r)| r.is_leaf && matches!(r.action.as_str(), "Install" | "Bundle"))
        .map(|(id, _)| *id)
        .min()
        .unwrap();
    let (fragments, locations) = agent.extended_info(&[leaf]).await.unwrap();
    let extended = &fragments.iter().find(|(_, x)| x.starts_with("<ExtendedProperties")).unwrap().1;
    let meta = &wsus_e2e::agent::FileMeta::from_extended(extended)[0];
    let url = &locations.iter().find(|(d, _)| *d == meta.sha1).unwrap().1;
    let head = http.head(url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"].to_str().unwrap(), meta.size.to_string());
    assert!(head.headers().contains_key("etag") && head.headers().contains_key("last-modified"));
    let beyond = http.get(url).header("Range", format!("bytes={}-", meta.size)).send().await.unwrap();
    assert_eq!(beyond.status(), 416);

    // A catalog file gone from the bucket: 404, and sync-worker is asked for it.
    let key = format!("site-a/Content/{}", url.rsplit("/Content/").next().unwrap());
    std::fs::remove_file(s3.bucket_dir().join(&key)).unwrap();
    assert_eq!(http.get(url).send().await.unwrap().status(), 404);
    assert_eq!(wsus_e2e::client_misses_queued(&pool).await, 1);
    drop(system);
}

/// A downstream server whose content is in a bucket: its sync-worker fetches the files of
/// an update approved there from the upstream into the bucket (verified on local disk,
/// then uploaded), and its client-gateway serves them to a client byte for byte.
#[tokio::test(flavor = "multi_thread")]
async fn a_downstream_syncs_its_content_into_a_bucket() {
    let pg = PgCluster::start().unwrap();
    let (db_a, db_b) = (pg.create_database("uss").unwrap(), pg.create_database("dss").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let content_a = dir.path().join("content-a");
    let opts = wsus_catalog_gen::Options { revisions: 300, seed: 23, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), Some(&content_a)).unwrap();
    wsus_e2e::import(&db_a, &dir.path().join("docs"));
    let http = reqwest::Client::new();
    let a = wsus_e2e::System::start_with(&db_a, Some(&content_a), &[]);
    a.wait_ready(&http).await;

    let s3 = S3Server::start("wsus");
    let staging = dir.path().join("staging-b");
    let mut env: std::collections::HashMap<&str, String> = s3.env("site-b").into_iter().collect();
    env.extend([
        ("DATABASE_URL", db_b.clone()),
        ("WSUS_UPSTREAM_URL", a.gateway_url.clone()),
        ("WSUS_CONTENT_DIR", staging.display().to_string()),
        ("WSUS_SERVER_FQDN", "dss.e2e.test".to_owned()),
    ]);
    let sync = || {
        let (ok, out, err) = wsus_e2e::run_binary("sync-worker", &["sync", "--once", "--json"], &env);
        assert!(ok, "sync failed: {out}{err}");
        serde_json::from_str::<serde_json::Value>(out.trim().lines().last().unwrap()).unwrap()
    };
    let first = sync();
    assert!(first["revisions_new"].as_u64().unwrap() > 0, "{first}");
    let pool_b = PgPool::connect(&db_b).await.unwrap();
    assert_eq!(wsus_e2e::approve_bundles(&pool_b, 2, true).await.unwrap(), 2);
    let content = sync();
    assert!(content["files_downloaded"].as_u64().unwrap() >= 1, "{content}");
    assert_eq!(content["files_failed"], 0, "{content}");
    let staged: Vec<_> = walk(&staging);
    assert!(staged.is_empty(), "nothing stays staged once uploaded: {staged:?}");

    let gateway_settings: Vec<(&'static str, String)> = s3.env("site-b");
    let mut sync_settings = gateway_settings.clone();
    sync_settings.push(("WSUS_UPSTREAM_URL", a.gateway_url.clone()));
    let b = wsus_e2e::System::start_full(&db_b, Some(&staging), &gateway_settings, &sync_settings);
    b.wait_ready(&http).await;
    let mut agent = Agent::new(&b.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    // The files of the approved bundles' members (what lazy content fetched), in pieces.
    let members: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "SELECT DISTINCT b.member_update_id FROM bundle_member b JOIN revision r USING (revision_id) \
         JOIN deployment d ON d.update_id = r.update_id AND d.deleted_at IS NULL",
    )
    .fetch_all(&pool_b)
    .await
    .unwrap();
    let leaves: Vec<i32> = agent
        .received
        .iter()
        .filter(|(_, r)| r.is_leaf && members.iter().any(|(m,)| r.core.contains(&m.to_string())))
        .map(|(id, _)| *id)
        .collect();
    let mut downloaded = 0;
    for chunk in leaves.chunks(50) {
        let (fragments, locations) = agent.extended_info(chunk).await.unwrap();
        for (_, extended) in fragments.iter().filter(|(_, x)| x.starts_with("<ExtendedProperties")) {
            for meta in wsus_e2e::agent::FileMeta::from_extended(extended) {
                let (_, url) = locations.iter().find(|(d, _)| *d == meta.sha1).unwrap();
                assert!(url.starts_with(&b.gateway_url), "{url}");
                let bytes = agent.download(url, &meta, 1000).await.unwrap();
                assert_eq!(bytes.len() as u64, meta.size);
                downloaded += 1;
            }
        }
    }
    assert!(downloaded >= 1, "files of the approved updates came from B's bucket");
    // Every object B holds is a file A serves, byte for byte.
    for object in walk(&s3.bucket_dir()) {
        let relative = object.to_string_lossy().rsplit("/Content/").next().unwrap().to_owned();
        assert_eq!(std::fs::read(&object).unwrap(), std::fs::read(content_a.join(&relative)).unwrap(), "{relative}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
