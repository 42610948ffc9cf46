//! Offline export / import with the real sync-worker binary: the reference documents go
//! into one database, out to a tar file, and into a second database identically.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;
use wsus_e2e::{PgCluster, reference, run_binary};
use wsus_store::approvals::{self, Action, Approval};

fn import(db: &str, path: &str) -> serde_json::Value {
    let (ok, out, err) =
        run_binary("sync-worker", &["import", path, "--json"], &HashMap::from([("DATABASE_URL", db.to_owned())]));
    assert!(ok, "import {path} failed: {out}{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Everything an export carries, independent of server-local revision ids.
async fn snapshot(pool: &PgPool) -> (Vec<String>, Vec<String>, Vec<String>, String) {
    let revisions: Vec<(String,)> = sqlx::query_as(
        "SELECT concat_ws(' ', update_id, revision_number, update_type, category_type, is_leaf, is_bundle, encode(x.sha256, 'hex')) \
         FROM revision r JOIN revision_xml x USING (revision_id) ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let fragments: Vec<(String,)> = sqlx::query_as(
        "SELECT concat_ws(' ', r.update_id, r.revision_number, f.kind, f.locale, md5(f.body)) \
         FROM fragment f JOIN revision r USING (revision_id) ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let files: Vec<(String,)> = sqlx::query_as(
        "SELECT concat_ws(' ', encode(sha1, 'hex'), encode(sha256, 'hex'), size, file_name, mu_url) FROM file ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let admin = serde_json::to_string(&approvals::admin_state(pool).await.unwrap()).unwrap();
    (
        revisions.into_iter().map(|r| r.0).collect(),
        fragments.into_iter().map(|r| r.0).collect(),
        files.into_iter().map(|r| r.0).collect(),
        admin,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn export_then_import_reproduces_the_catalog_and_refuses_tampering() {
    let pg = PgCluster::start().unwrap();
    let (a, b, c) =
        (pg.create_database("a").unwrap(), pg.create_database("b").unwrap(), pg.create_database("c").unwrap());
    let docs = reference("captures/wsus-m0-wsusss/docs");
    let docs = docs.to_str().unwrap();

    let first = import(&a, docs);
    assert_eq!(
        first,
        serde_json::json!({"revisions": 9, "new": 9, "updated": 0, "unchanged": 0, "files": 3, "rejected": 0})
    );
    let again = import(&a, docs);
    assert_eq!(
        again,
        serde_json::json!({"revisions": 9, "new": 0, "updated": 0, "unchanged": 9, "files": 0, "rejected": 0})
    );
    // One more document (pretty-printed, from the specification), and a saved
    // GetUpdateData response, which brings the file's Microsoft Update URL.
    let detectoid = reference("metadata/detectoids/17e993cd-cf5a-4276-9944-6af62ff7139c-r100.MS-WSUSSS-example.xml");
    assert_eq!(import(&a, detectoid.to_str().unwrap())["new"], 1);
    let response = reference("metadata/protocol/wsusss-getupdatedata-response-266f6222-r200.xml");
    assert_eq!(import(&a, response.to_str().unwrap())["unchanged"], 1);

    let pool_a = PgPool::connect(&a).await.unwrap();
    let (mu,): (Option<String>,) = sqlx::query_as(
        "SELECT mu_url FROM file WHERE sha1 = decode('87f5bd0469585006aa5d3a77d1c662fd2895ddcd', 'hex')",
    )
    .fetch_one(&pool_a)
    .await
    .unwrap();
    assert!(mu.unwrap().starts_with("http://download.windowsupdate.com/"), "MUUrl from the response");
    let pilot = Uuid::new_v4();
    approvals::create_group(&pool_a, pilot, "Pilot", None).await.unwrap();
    let kb: Uuid = "a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe".parse().unwrap();
    approvals::approve(
        &pool_a,
        &Approval {
            update_id: kb,
            group_id: pilot,
            action: Action::Install,
            deadline: Some("2026-12-24T18:00:00Z".parse().unwrap()),
            admin_name: Some("admin".into()),
        },
    )
    .await
    .unwrap();
    approvals::decline(&pool_a, "ccb78947-6453-4ecc-9de8-bc0305c98f2d".parse().unwrap(), Some("admin")).await.unwrap();
    approvals::accept_eula(&pool_a, Uuid::new_v4(), Some("admin")).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("catalog.tar");
    let (ok, out, err) =
        run_binary("sync-worker", &["export", tar.to_str().unwrap()], &HashMap::from([("DATABASE_URL", a.clone())]));
    assert!(ok, "{out}{err}");

    let into_b = import(&b, tar.to_str().unwrap());
    assert_eq!((into_b["revisions"].as_u64(), into_b["new"].as_u64()), (Some(10), Some(10)));
    let pool_b = PgPool::connect(&b).await.unwrap();
    assert_eq!(snapshot(&pool_a).await, snapshot(&pool_b).await, "identical revisions, fragments, files and approvals");
    let again = import(&b, tar.to_str().unwrap());
    assert_eq!((again["new"].as_u64(), again["unchanged"].as_u64()), (Some(0), Some(10)));

    // One altered byte in a member: refused, naming the member, and nothing stored.
    let mut bytes = std::fs::read(&tar).unwrap();
    let at = bytes.windows(8).position(|w| w == b"UpdateID").expect("a document inside");
    bytes[at] = b'u';
    let tampered = dir.path().join("tampered.tar");
    std::fs::write(&tampered, &bytes).unwrap();
    let (ok, out, err) = run_binary(
        "sync-worker",
        &["import", tampered.to_str().unwrap()],
        &HashMap::from([("DATABASE_URL", c.clone())]),
    );
    assert!(!ok, "{out}");
    assert!(err.contains("member revisions/00001.ndjson does not match the manifest"), "{err}");
    let pool_c = PgPool::connect(&c).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM revision").fetch_one(&pool_c).await.unwrap();
    assert_eq!(n, 0);
}
