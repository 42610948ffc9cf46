//! A generated catalog (CI-sized here; the 150,000-revision run is in the README's
//! performance section) imports through the real binary, once.

use std::collections::HashMap;

use sqlx::PgPool;
use wsus_e2e::{PgCluster, run_binary};

const REVISIONS: usize = 4000;

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_catalog_imports_idempotently() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("gen").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: REVISIONS, seed: 7, ..Default::default() };
    let (docs, files) = wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    assert_eq!(docs, REVISIONS);

    let env = HashMap::from([("DATABASE_URL", db.clone())]);
    let docs_dir = dir.path().join("docs");

    // Killed part-way, then run again: it resumes, and nothing is lost or doubled.
    let mut killed = wsus_e2e::Service::spawn_args("sync-worker", &["import", docs_dir.to_str().unwrap()], &env);
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = std::process::Command::new("kill").args(["-KILL", &killed.pid().to_string()]).status();
    killed.wait(std::time::Duration::from_secs(10));

    let (ok, out, err) = run_binary("sync-worker", &["import", docs_dir.to_str().unwrap(), "--json"], &env);
    assert!(ok, "{out}{err}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        summary["new"].as_u64().unwrap() + summary["unchanged"].as_u64().unwrap(),
        REVISIONS as u64,
        "{summary}"
    );
    assert_eq!(summary["updated"].as_u64(), Some(0));
    let pool = PgPool::connect(&db).await.unwrap();
    let (stored_files,): (i64,) = sqlx::query_as("SELECT count(*) FROM file").fetch_one(&pool).await.unwrap();
    assert_eq!(stored_files as usize, files);

    let (ok, out, _) = run_binary("sync-worker", &["import", docs_dir.to_str().unwrap(), "--json"], &env);
    assert!(ok);
    let again: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(again["unchanged"].as_u64(), Some(REVISIONS as u64));

    let (leaves, non_leaves, in_products): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE is_leaf), count(*) FILTER (WHERE NOT is_leaf), \
                (SELECT count(DISTINCT revision_id) FROM revision_category WHERE via_bundle) FROM revision",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(leaves > 0 && non_leaves > 0 && in_products > 0, "{leaves} {non_leaves} {in_products}");
    let (fragments,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM fragment WHERE kind = 'Core'").fetch_one(&pool).await.unwrap();
    assert_eq!(fragments, REVISIONS as i64);
}
