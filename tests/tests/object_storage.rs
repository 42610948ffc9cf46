//! What only a bucket can get wrong, against a real S3 server (s3s-fs): a downstream's
//! sync-worker killed while a multipart upload runs leaves no object behind and uploads
//! the file again on the next sync; bytes that do not match their digests never reach
//! the bucket. The content scenarios themselves (client_flow, server_sync, cleanup) run
//! against both stores.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use wsus_e2e::agent::Agent;
use wsus_e2e::store::TestStore;
use wsus_e2e::{PgCluster, System, run_binary};

/// Files of the first bundle: three multipart parts of 8 MiB each (the last one short).
const LARGE: u64 = 20 * 1024 * 1024;

/// The bundles whose members carry files of [`LARGE`] bytes, or (`large` false) others.
async fn bundles_with_files(pool: &PgPool, large: bool) -> Vec<uuid::Uuid> {
    sqlx::query_as::<_, (uuid::Uuid,)>(
        "SELECT DISTINCT r.update_id FROM revision r JOIN bundle_member b ON b.revision_id = r.revision_id \
         JOIN revision m ON m.update_id = b.member_update_id JOIN revision_file rf ON rf.revision_id = m.revision_id \
         JOIN file f ON f.sha1 = rf.sha1 WHERE (f.size = $1) = $2 ORDER BY 1",
    )
    .bind(LARGE as i64)
    .bind(large)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(u,)| u)
    .collect()
}

/// The files of the updates `bundle` holds: (SHA-1, path under /Content/).
async fn files_of(pool: &PgPool, bundle: uuid::Uuid) -> Vec<([u8; 20], String)> {
    sqlx::query_as::<_, (Vec<u8>, String)>(
        "SELECT DISTINCT f.sha1, f.file_name FROM revision r JOIN bundle_member b ON b.revision_id = r.revision_id \
         JOIN revision m ON m.update_id = b.member_update_id JOIN revision_file rf ON rf.revision_id = m.revision_id \
         JOIN file f ON f.sha1 = rf.sha1 WHERE r.update_id = $1",
    )
    .bind(bundle)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(sha1, name)| {
        let sha1: [u8; 20] = sha1.try_into().unwrap();
        (sha1, wsus_content::relative_path(&sha1, &name))
    })
    .collect()
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_worker_killed_mid_upload_leaves_no_object_and_corrupt_files_never_reach_the_bucket() {
    let pg = PgCluster::start().unwrap();
    let (db_a, db_b) = (pg.create_database("uss").unwrap(), pg.create_database("dss").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let content_a = dir.path().join("content-a");
    let opts = wsus_catalog_gen::Options {
        revisions: 100,
        seed: 27,
        large_bundles: 1,
        large_file_size: LARGE,
        ..Default::default()
    };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), Some(&content_a)).unwrap();
    wsus_e2e::import(&db_a, &dir.path().join("docs"));
    let http = reqwest::Client::new();
    let a = System::start_with(&db_a, Some(&content_a), &[]);
    a.wait_ready(&http).await;

    let store = TestStore::bucket(&dir.path().join("staging-b"), "site-b");
    let s3 = store.s3().unwrap();
    let objects = store.open();
    let mut env: HashMap<&str, String> = store.env().into_iter().collect();
    env.extend([
        ("DATABASE_URL", db_b.clone()),
        ("WSUS_UPSTREAM_URL", a.gateway_url.clone()),
        ("WSUS_SERVER_FQDN", "dss.e2e.test".to_owned()),
    ]);
    // A sync's outcome; one that could not download every file exits with an error.
    let try_sync = |env: &HashMap<&str, String>| {
        let (ok, out, err) = run_binary("sync-worker", &["sync", "--once", "--json"], env);
        let outcome = out.trim().lines().last().and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok());
        (ok, outcome.unwrap_or_else(|| panic!("no outcome: {out}{err}")))
    };
    let sync = |env: &HashMap<&str, String>| {
        let (ok, outcome) = try_sync(env);
        assert!(ok, "sync failed: {outcome}");
        outcome
    };
    assert!(sync(&env)["revisions_new"].as_u64().unwrap() > 0);
    let pool_b = PgPool::connect(&db_b).await.unwrap();
    let in_bucket = |relative: &str| store.served_path(relative).is_file();

    // Corrupt at the upstream: the download fails its digests, the file is quarantined,
    // and neither the bucket nor the staging keeps a byte of it.
    let small = bundles_with_files(&pool_b, false).await[0];
    let (bad_sha1, bad) = files_of(&pool_b, small).await.remove(0);
    let original = std::fs::read(content_a.join(&bad)).unwrap();
    let mut corrupt = original.clone();
    corrupt[0] ^= 0xff;
    std::fs::write(content_a.join(&bad), &corrupt).unwrap();
    wsus_e2e::approve_for_all(&pool_b, small).await;
    let (ok, failed) = try_sync(&env);
    assert!(!ok && failed["files_failed"].as_u64().unwrap() >= 1, "{failed}");
    let (state,): (String,) = sqlx::query_as("SELECT content_state FROM file WHERE sha1 = $1")
        .bind(bad_sha1.as_slice())
        .fetch_one(&pool_b)
        .await
        .unwrap();
    assert_eq!(state, "quarantined");
    assert!(!in_bucket(&bad), "mismatched bytes never reach the bucket");
    assert_eq!(store.staged(), Vec::<std::path::PathBuf>::new(), "and are not kept to resume from");
    // The upstream mends it; the retry is due now rather than after its backoff.
    std::fs::write(content_a.join(&bad), &original).unwrap();
    sqlx::query("UPDATE content_download SET next_attempt_at = now()").execute(&pool_b).await.unwrap();

    // Killed while a multipart upload runs: no object appears under the file's key, the
    // verified download stays staged, and the unfinished upload is the bucket's to expire.
    let large = bundles_with_files(&pool_b, true).await;
    assert_eq!(large.len(), 1, "{large:?}");
    let large_files = files_of(&pool_b, large[0]).await;
    wsus_e2e::approve_for_all(&pool_b, large[0]).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let cut_off = loop {
        assert!(Instant::now() < deadline, "no multipart upload was ever seen running");
        let mut worker = wsus_e2e::Service::spawn_args("sync-worker", &["sync", "--once"], &env);
        while s3.unfinished_uploads() == 0 && worker.wait(Duration::ZERO).is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        worker.kill();
        // Seen and still unfinished after the kill: the upload was cut off.
        if s3.unfinished_uploads() > 0 {
            break large_files.iter().filter(|(_, f)| !in_bucket(f)).count();
        }
        if large_files.iter().all(|(_, f)| in_bucket(f)) {
            // Every upload finished before a kill landed: take them away and try again.
            for (_, f) in &large_files {
                std::fs::remove_file(store.served_path(f)).unwrap();
            }
            sqlx::query("UPDATE file SET content_state = 'absent' WHERE size = $1")
                .bind(LARGE as i64)
                .execute(&pool_b)
                .await
                .unwrap();
        }
    };
    assert!(cut_off >= 1);
    for (sha1, relative) in &large_files {
        match objects.stat(sha1, relative).await.unwrap() {
            Some(stat) => assert_eq!(stat.size, LARGE, "an object is whole or absent: {relative}"),
            None => assert!(!in_bucket(relative)),
        }
    }
    assert!(!store.staged().is_empty(), "the verified download waits on local disk");

    // The next sync uploads what was cut off: every file whole, nothing staged.
    let resumed = sync(&env);
    assert_eq!(resumed["files_failed"], 0, "{resumed}");
    let (queued,): (i64,) = sqlx::query_as("SELECT count(*) FROM content_download").fetch_one(&pool_b).await.unwrap();
    assert_eq!(queued, 0);
    for (_, relative) in large_files.iter().chain([(bad_sha1, bad.clone())].iter()) {
        let (at_b, at_a) = (std::fs::read(store.served_path(relative)), std::fs::read(content_a.join(relative)));
        assert_eq!(at_b.unwrap(), at_a.unwrap(), "{relative} byte for byte");
    }
    assert_eq!(store.staged(), Vec::<std::path::PathBuf>::new());

    // B's client-gateway serves them to a client from the bucket, in 1 MiB Range pieces.
    let settings = store.settings();
    let b = System::start_full(&db_b, Some(store.dir()), &settings, &settings);
    b.wait_ready(&http).await;
    let mut agent = Agent::new(&b.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    let (files, bytes) = agent.download_offered(1024 * 1024).await.unwrap();
    assert!(files > large_files.len(), "the files of both bundles: {files}");
    assert!(bytes >= LARGE * large_files.len() as u64);

    // A bucket that accepts connections and never answers: the client is told 503 within
    // the gateway's 10 s, and no download is asked for (the file is not known missing).
    let url = format!("{}/Content/{}", b.gateway_url, large_files[0].1);
    let misses = wsus_e2e::client_misses_queued(&pool_b).await;
    s3.freeze();
    let asked = Instant::now();
    let status = http.get(&url).timeout(Duration::from_secs(30)).send().await.map(|r| r.status().as_u16());
    let waited = asked.elapsed();
    s3.thaw();
    assert_eq!(status.unwrap(), 503, "after {waited:?}");
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    assert_eq!(wsus_e2e::client_misses_queued(&pool_b).await, misses);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200, "answered again once the bucket is");
}
