//! An administrator's day through `wsusctl` against the real binaries: a group, a
//! computer in it, an approval with a deadline the simulated client receives; the client
//! installs and reports; the status report shows Installed (and a re-sent report changes
//! no count); a decline takes the update out of scope at the next scan.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use wsus_e2e::agent::Agent;
use wsus_e2e::{ADMIN_TOKEN, PgCluster, READER_TOKEN, System, run_binary};

fn wsusctl(system: &System, token: &str, args: &[&str]) -> (bool, String, String) {
    let env = HashMap::from([("WSUS_API_URL", system.reporting_url.clone()), ("WSUS_API_TOKEN", token.to_owned())]);
    run_binary("wsusctl", args, &env)
}

/// Runs wsusctl as the admin and insists on success.
fn admin(system: &System, args: &[&str]) -> String {
    let (ok, out, err) = wsusctl(system, ADMIN_TOKEN, args);
    assert!(ok, "wsusctl {args:?}: {out}{err}");
    out
}

fn admin_json(system: &System, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&admin(system, &all)).unwrap()
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_approves_and_declines_through_wsusctl() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 300, seed: 5, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));
    let pool = PgPool::connect(&db).await.unwrap();
    // The latest revision of its update: a client is offered only that one (the generator
    // keeps an earlier revision of some bundles, and import order sets revision ids).
    let (bundle, bundle_rev): (uuid::Uuid, i32) = sqlx::query_as(
        "SELECT update_id, revision_id FROM revision r WHERE is_bundle AND update_type = 'Software' \
         AND revision_number = (SELECT max(revision_number) FROM revision x WHERE x.update_id = r.update_id) \
         ORDER BY revision_id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let bundle_id = bundle.to_string();

    let system = System::start(&db);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;
    let mut agent = Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    assert_eq!(agent.received[&bundle_rev].action, "PreDeploymentCheck", "not approved yet");

    // A group, the computer in it, the update approved for it with a deadline.
    assert!(admin(&system, &["groups", "create", "Pilot"]).contains("created group Pilot"));
    admin(&system, &["groups", "create", "Ring 2", "--parent", "pilot"]);
    let tree = admin(&system, &["groups", "list"]);
    assert!(tree.contains("All Computers") && tree.contains("\n    Ring 2"), "{tree}");
    admin(&system, &["groups", "add", "Pilot", &agent.client_id]);
    let members = admin_json(&system, &["groups", "members", "Pilot"]);
    assert_eq!(members[0]["computer_id"], agent.client_id.as_str());
    let (ok, _, err) = wsusctl(
        &system,
        READER_TOKEN,
        &["updates", "approve", &bundle_id, "--group", "Pilot", "--deadline", "2026-12-24T18:00:00Z"],
    );
    assert!(!ok && err.contains("403"), "a reader cannot approve: {err}");
    admin(&system, &["updates", "approve", &bundle_id, "--group", "Pilot", "--deadline", "2026-12-24T18:00:00Z"]);
    // The table names the groups an update is approved for; a first page says more follow.
    let approved = admin(&system, &["updates", "list", "--approval", "approved"]);
    assert!(approved.contains(&bundle_id) && approved.contains("Pilot"), "{approved}");
    let (ok, _, err) = wsusctl(&system, ADMIN_TOKEN, &["updates", "list", "--limit", "5"]);
    assert!(ok && err.contains("more follow"), "{err}");
    // A generated update found by the KB its title names; settings read back with `get`.
    let title = admin_json(&system, &["updates", "show", &bundle_id])["title"].as_str().unwrap_or_default().to_owned();
    let kb = title.split("(KB").nth(1).and_then(|t| t.split(')').next()).unwrap_or_default().to_owned();
    assert_eq!(
        admin_json(&system, &["updates", "show", &format!("KB{kb}")])["update_id"],
        bundle_id.as_str(),
        "{title}"
    );
    assert!(admin(&system, &["settings", "get"]).contains("syncs_per_day"));
    // `wsusctl updates list | head`: the reader goes away, wsusctl ends quietly.
    let mut piped = std::process::Command::new(wsus_e2e::binary("wsusctl"))
        .args(["updates", "list", "--all"])
        .env("WSUS_API_URL", &system.reporting_url)
        .env("WSUS_API_TOKEN", ADMIN_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(piped.stdout.take());
    let ended = piped.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&ended.stderr);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");

    // The next scan brings the approval and its deadline.
    let mut changed = Vec::new();
    for _ in 0..100 {
        changed = agent.scan().await.unwrap().changed;
        if !changed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(changed, vec![(bundle_rev, "Install".to_owned())]);
    let deadline = agent.received[&bundle_rev].deadline.clone().unwrap_or_default();
    assert!(deadline.starts_with("2026-12-24T18:00:00"), "{deadline}");

    // The client installs it and reports; the report shows Installed.
    let nil = "00000000-0000-0000-0000-000000000000";
    let events: &[(i32, &str, &[&str])] = &[(147, nil, &["0"]), (156, nil, &["U="]), (183, &bundle_id, &[])];
    let sent = agent.report(events, None).await.unwrap();
    let installed = |report: &Value| {
        report.as_array().unwrap().iter().find(|u| u["update_id"] == bundle_id.as_str()).map(|u| u["installed"].clone())
    };
    let mut report = Value::Null;
    for _ in 0..100 {
        report = admin_json(&system, &["reports", "updates"]);
        if installed(&report) == Some(Value::from(1)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(installed(&report), Some(Value::from(1)), "{report}");
    let statuses = admin_json(&system, &["computers", "updates", &agent.client_id, "--status", "Installed"]);
    assert_eq!(statuses[0]["update_id"], bundle_id.as_str(), "{statuses}");
    let table = admin(&system, &["reports", "computers", "--group", "Pilot"]);
    assert!(table.contains(&agent.client_id) && table.contains("up_to_date"), "{table}");

    // A re-sent batch (the client did not hear the answer) changes no count.
    agent.report(events, Some(&sent)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = admin_json(&system, &["reports", "updates"]);
    assert_eq!(again, report);
    let (events_stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM reporting_event WHERE computer_id = $1")
        .bind(&agent.client_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events_stored, 3);

    // Declined: out of scope at the next scan.
    admin(&system, &["updates", "decline", &bundle_id]);
    let mut gone = Vec::new();
    for _ in 0..100 {
        gone = agent.scan().await.unwrap().out_of_scope;
        if !gone.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone.contains(&bundle_rev), "{gone:?}");
    let shown = admin_json(&system, &["updates", "show", &bundle_id]);
    assert_eq!(shown["declined"], true);
    assert_eq!(shown["approved_group_ids"], serde_json::json!([]));

    // Client-side targeting: a machine that names a group gets that group's approvals
    // once the administrator switches targeting to the client.
    let (other, other_rev): (uuid::Uuid, i32) = sqlx::query_as(
        "SELECT update_id, revision_id FROM revision r WHERE is_bundle AND update_type = 'Software' AND update_id <> $1 \
         AND revision_number = (SELECT max(revision_number) FROM revision x WHERE x.update_id = r.update_id) \
         ORDER BY revision_id DESC LIMIT 1",
    )
    .bind(bundle)
    .fetch_one(&pool)
    .await
    .unwrap();
    admin(&system, &["groups", "create", "Kiosks"]);
    admin(&system, &["updates", "approve", &other.to_string(), "--group", "Kiosks"]);
    let mut kiosk = Agent::new(&system.gateway_url);
    kiosk.target_group = Some("kiosks".into());
    kiosk.handshake(true).await.unwrap();
    kiosk.scan().await.unwrap();
    assert_eq!(
        kiosk.received[&other_rev].action, "PreDeploymentCheck",
        "server-side targeting ignores the asked-for group"
    );
    let changed = admin_json(&system, &["settings", "set", "--targeting", "client"]);
    assert_eq!(changed["targeting"], "client");
    // The configuration changed: the client is told so and gets a new cookie, as WUA does.
    let mut changed = Vec::new();
    for _ in 0..100 {
        match kiosk.scan().await {
            Err(f) if f.error_code == "ConfigChanged" => kiosk.handshake(false).await.unwrap(),
            Err(f) => panic!("{f}"),
            Ok(o) if !o.changed.is_empty() => {
                changed = o.changed;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // The new cookie carries no change marker, so every cached update still offered is
    // told again (as the real server does at a fresh anchor): the approval among them.
    assert!(changed.contains(&(other_rev, "Install".to_owned())), "{changed:?}");
    assert_eq!(changed.iter().filter(|(_, a)| a == "Install").count(), 1, "{changed:?}");
}
