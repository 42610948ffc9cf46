//! Cleanup on a generated catalog with superseded chains, started through wsusctl: it
//! declines exactly the superseded updates no computer needs, deletes obsolete revisions
//! and the content nothing references, forgets silent computers, purges old events, and
//! the next scan no longer offers what it declined.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;
use wsus_e2e::agent::Agent;
use wsus_e2e::store::{StoreKind, TestStore};
use wsus_e2e::{ADMIN_TOKEN, PgCluster, System, run_binary};

fn wsusctl(system: &System, args: &[&str]) -> Value {
    let env =
        HashMap::from([("WSUS_API_URL", system.reporting_url.clone()), ("WSUS_API_TOKEN", ADMIN_TOKEN.to_owned())]);
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = run_binary("wsusctl", &all, &env);
    assert!(ok, "wsusctl {args:?}: {out}{err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_declines_exactly_the_superseded_updates_no_computer_needs() {
    scenario(StoreKind::Directory).await;
}

/// The same with the content in a bucket: cleanup deletes the objects nothing references.
#[tokio::test(flavor = "multi_thread")]
async fn cleanup_with_content_in_a_bucket() {
    scenario(StoreKind::Bucket).await;
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
async fn scenario(kind: StoreKind) {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("content");
    let docs = dir.path().join("docs");
    let opts = wsus_catalog_gen::Options { revisions: 600, seed: 41, ..Default::default() };
    wsus_catalog_gen::write(&opts, &docs, Some(&generated)).unwrap();
    wsus_e2e::import(&db, &docs);
    let content = match kind {
        StoreKind::Directory => TestStore::directory(&generated),
        StoreKind::Bucket => TestStore::bucket(&dir.path().join("staging"), "wsus"),
    };
    content.fill_from(&generated).await;

    // What the documents say, read independently of the store: the updates a newer one supersedes.
    let mut latest: HashMap<Uuid, (i32, Vec<Uuid>)> = HashMap::new();
    for entry in std::fs::read_dir(&docs).unwrap().flatten() {
        let u = wsus_metadata::Update::parse(std::fs::read_to_string(entry.path()).unwrap()).unwrap();
        if u.update_type.as_str() != "Software" {
            continue;
        }
        let e = latest.entry(u.identity.update_id).or_insert((i32::MIN, Vec::new()));
        if u.identity.revision_number > e.0 {
            *e = (u.identity.revision_number, u.superseded.clone());
        }
    }
    let superseded: BTreeSet<Uuid> =
        latest.values().flat_map(|(_, s)| s.iter().copied()).filter(|s| latest.contains_key(s)).collect();
    assert!(superseded.len() >= 5, "the generated catalog has superseded chains");

    let settings = content.settings();
    let system = System::start_full(&db, Some(content.dir()), &settings, &settings);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;
    let pool = PgPool::connect(&db).await.unwrap();

    // A computer still needs one superseded update and failed to install another.
    let mut agent = Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    let mut picks = superseded.iter().copied();
    let (needed, failed) = (picks.next().unwrap(), picks.next().unwrap());
    let nil = "00000000-0000-0000-0000-000000000000";
    let u_list = format!("U={needed}");
    let failed_id = failed.to_string();
    let events: &[(i32, &str, &[&str])] = &[(147, nil, &["1"]), (156, nil, &[u_list.as_str()]), (182, &failed_id, &[])];
    agent.report(events, None).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..100 {
        statuses = wsus_store::reporting::statuses(&pool, &agent.client_id).await.unwrap();
        if statuses.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(statuses.len(), 2, "{statuses:?}");

    // A silent computer, an event past retention, and a file nothing references.
    wsusctl(&system, &["settings", "set", "--stale-computer-days", "30", "--event-days", "90"]);
    sqlx::query("INSERT INTO computer (computer_id, dns_name, last_contact_at) VALUES ('silent', 'old.test', now() - interval '60 days')")
        .execute(&pool)
        .await
        .unwrap();
    let old = wsus_store::reporting::Event {
        event_instance_id: Uuid::new_v4(),
        time_at_target: chrono::Utc::now() - chrono::Duration::days(200),
        computer_id: agent.client_id.clone(),
        event_id: 147,
        namespace_id: 1,
        ..Default::default()
    };
    wsus_store::reporting::insert_events(&pool, &[old], &Default::default()).await.unwrap();
    let (orphan_sha1, orphan) = content.put("orphan.cab", b"referenced by nothing".to_vec()).await;
    sqlx::query("INSERT INTO file (sha1, size, file_name, content_state) VALUES ($1, 21, 'orphan.cab', 'present')")
        .bind(orphan_sha1.as_slice())
        .execute(&pool)
        .await
        .unwrap();
    assert!(content.served_path(&orphan).is_file());
    // And one whose content cannot be removed (a directory stands at its name): its row
    // stays for the next cleanup, so nothing in the store is ever left unnamed.
    let stuck_sha1: [u8; 20] = <sha1::Sha1 as sha1::Digest>::digest(b"stuck").into();
    let stuck = wsus_content::relative_path(&stuck_sha1, "stuck.cab");
    if kind == StoreKind::Directory {
        std::fs::create_dir_all(content.served_path(&stuck).join("obstacle")).unwrap();
        sqlx::query("INSERT INTO file (sha1, size, file_name, content_state) VALUES ($1, 5, 'stuck.cab', 'present')")
            .bind(stuck_sha1.as_slice())
            .execute(&pool)
            .await
            .unwrap();
    }
    let (obsolete_revisions,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM revision r WHERE r.revision_number < (SELECT max(revision_number) FROM revision x WHERE x.update_id = r.update_id)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let run = wsusctl(&system, &["cleanup", "start", "--wait"]);
    assert_eq!(run["result"], "succeeded", "{run}");
    let declined: BTreeSet<Uuid> =
        sqlx::query_as::<_, (Uuid,)>("SELECT update_id FROM declined_update WHERE declined_by = 'cleanup: superseded'")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(u,)| u)
            .collect();
    let mut expected = superseded.clone();
    expected.remove(&needed);
    expected.remove(&failed);
    assert_eq!(declined, expected, "exactly the superseded updates no computer needs");
    assert_eq!(run["counts"]["superseded_declined"], expected.len());
    assert_eq!(run["counts"]["obsolete_revisions_deleted"], obsolete_revisions, "{run}");
    assert!(run["counts"]["events_purged"].as_u64().unwrap() >= 1, "{run}");
    assert_eq!(run["counts"]["computers_removed"], 1, "{run}");
    let orphans = || async {
        sqlx::query_as::<_, (String,)>(
            "SELECT file_name FROM file f WHERE NOT EXISTS (SELECT 1 FROM revision_file rf WHERE rf.sha1 = f.sha1)",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let kept: Vec<(String,)> = if kind == StoreKind::Directory { vec![("stuck.cab".into(),)] } else { vec![] };
    assert_eq!(orphans().await, kept);
    // Their content went with them, and what is left is exactly what revisions reference.
    assert!(run["counts"]["content_files_deleted"].as_u64().unwrap() >= 1, "{run}");
    assert!(!content.served_path(&orphan).exists(), "the unreferenced file is deleted from the store");
    let referenced: BTreeSet<String> = sqlx::query_as::<_, (Vec<u8>, String)>("SELECT sha1, file_name FROM file")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(sha1, name)| wsus_content::relative_path(&sha1.try_into().unwrap(), &name))
        .collect();
    let left: BTreeSet<String> = content.served().into_iter().collect();
    assert!(left.is_subset(&referenced), "{:?}", left.difference(&referenced).collect::<Vec<_>>());
    let (today,): (bool,) = sqlx::query_as(
        "SELECT to_regclass('reporting_event_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')) IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(today, "daily event partitions exist");
    let runs = wsusctl(&system, &["cleanup", "runs"]);
    assert_eq!(runs[0]["run_id"], run["run_id"]);

    // A second run finds nothing more to decline, and removes what it could not before.
    if kind == StoreKind::Directory {
        std::fs::remove_dir_all(content.served_path(&stuck)).unwrap();
    }
    let again = wsusctl(&system, &["cleanup", "start", "--wait"]);
    assert_eq!(again["counts"]["superseded_declined"], 0, "{again}");
    assert_eq!(again["counts"]["content_files_deleted"], kept.len(), "{again}");
    assert_eq!(orphans().await, vec![]);

    // The client's next scan: the declined updates are out of scope.
    let declined_revisions: BTreeSet<i32> = sqlx::query_as::<_, (i32,)>(
        "SELECT revision_id FROM revision WHERE update_id IN (SELECT update_id FROM declined_update)",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(r,)| r)
    .collect();
    let held: BTreeSet<i32> = agent.received.keys().copied().filter(|id| declined_revisions.contains(id)).collect();
    assert!(!held.is_empty());
    let mut gone = BTreeSet::new();
    for _ in 0..100 {
        gone.extend(agent.scan().await.unwrap().out_of_scope);
        if held.is_subset(&gone) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(held.is_subset(&gone), "every declined revision the client held leaves its scope: {held:?} {gone:?}");
    drop(pg);
}
