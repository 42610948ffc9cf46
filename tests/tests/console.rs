//! The web console in a real browser: a catalog, a group, a few hundred simulated clients
//! that scan and report (up to date, needing updates, with a failed install, never
//! reported), then tests/browser/console.mjs drives headless Chromium through every page
//! as an administrator (real numbers on the charts, no script error or CSP violation,
//! screenshots in light and dark) and approves an update for the group with a deadline;
//! a reader sees no approval form and is refused one. The approval made in the browser
//! reaches a client of the group at its next scan.
//!
//! Needs Debian's chromium and the browser driver's packages; .ci/run installs both:
//! `apt-get install -y --no-install-recommends chromium fonts-liberation` and
//! `cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund`.
//! The screenshots land in target/console-artifacts (and overview-light.png also where
//! `WSUS_CONSOLE_SCREENSHOT` says, when it is set).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use wsus_e2e::agent::Agent;
use wsus_e2e::{ADMIN_TOKEN, PgCluster, READER_TOKEN, System};

/// Simulated computers in all.
const COMPUTERS: usize = 200;
/// Of them, the ones that only register (never scan nor report).
const SILENT: usize = 10;
/// Computers of the needing kind put in the group the browser approves for.
const IN_GROUP: usize = 20;
/// The group the browser approves for.
const GROUP_NAME: &str = "Console Pilot";
/// The approval's deadline, as a datetime-local field takes it (the server's time, UTC).
const DEADLINE: &str = "2030-01-02T03:04";

const INSTALL: &str = "apt-get install -y --no-install-recommends chromium fonts-liberation \
                       && (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)";

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Chromium, Node.js and playwright-core are there, or the test fails saying how to get them.
fn assert_browser_installed() {
    let chromium = chromium();
    assert!(chromium.exists(), "{} is missing; install the browser test's tools with: {INSTALL}", chromium.display());
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node (Node.js 20 or later) is missing: {node:?}; then: {INSTALL}"
    );
    let driver = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(driver.exists(), "{} is missing; install the browser test's tools with: {INSTALL}", driver.display());
}

/// Where the screenshots go: target/console-artifacts.
fn artifact_dir() -> PathBuf {
    let target = wsus_e2e::bin_dir().parent().map(PathBuf::from);
    target
        .filter(|t| t.join("CACHEDIR.TAG").exists() || t.file_name().is_some_and(|n| n == "target"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("console-artifacts")
}

/// What a simulated computer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Installed two updates, needs none.
    UpToDate,
    /// Needs the update the browser approves, and another; installed one.
    Needing,
    /// An install failed; needs the approved update too.
    Failing,
    /// Registered, never scanned nor reported.
    Silent,
}

fn kind_of(i: usize) -> Kind {
    if i >= COMPUTERS - SILENT {
        Kind::Silent
    } else {
        match i % 10 {
            0..=2 => Kind::UpToDate,
            3..=8 => Kind::Needing,
            _ => Kind::Failing,
        }
    }
}

/// Statuses (Needed, Installed, Failed) a computer of this kind leaves for the bundles.
fn statuses_of(kind: Kind) -> i64 {
    match kind {
        Kind::UpToDate => 2,
        Kind::Needing => 3,
        Kind::Failing => 2,
        Kind::Silent => 0,
    }
}

/// A computer: registers and (but the silent ones) scans and reports as its kind says.
async fn run_client(gateway: String, http: reqwest::Client, i: usize, bundles: [Uuid; 4]) -> (usize, Kind, Agent) {
    let kind = kind_of(i);
    let mut agent = Agent::with_http(&gateway, http);
    agent.dns_name = format!("pc-{i:03}.lab.test");
    agent.handshake(true).await.unwrap_or_else(|f| panic!("client {i}: {f}"));
    if kind == Kind::Silent {
        return (i, kind, agent);
    }
    agent.scan().await.unwrap_or_else(|f| panic!("client {i}: {f}"));
    let nil = "00000000-0000-0000-0000-000000000000";
    let [approved, other, installed, failing] = bundles.map(|b| b.to_string());
    let (needed, installed, failed): (Vec<&str>, Vec<&str>, Vec<&str>) = match kind {
        Kind::UpToDate => (vec![], vec![&other, &installed], vec![]),
        Kind::Needing => (vec![&approved, &other], vec![&installed], vec![]),
        Kind::Failing => (vec![&approved], vec![], vec![&failing]),
        Kind::Silent => unreachable!(),
    };
    let count = needed.len().to_string();
    let list = format!("U={}", needed.join(";"));
    let (count, list) = ([count.as_str()], [list.as_str()]);
    let mut events: Vec<(i32, &str, &[&str])> = vec![(147, nil, &count), (156, nil, &list)];
    events.extend(installed.iter().map(|u| (183, *u, &[] as &[&str])));
    events.extend(failed.iter().map(|u| (182, *u, &[] as &[&str])));
    agent.report(&events, None).await.unwrap_or_else(|f| panic!("client {i}: {f}"));
    (i, kind, agent)
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_the_fleet_and_approves_in_a_browser() {
    assert_browser_installed();
    let started = Instant::now();
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 300, seed: 17, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));
    let pool = PgPool::connect(&db).await.unwrap();
    // Software bundles at their latest revision: what a client is offered.
    let latest: Vec<(Uuid, i32, Option<String>)> = sqlx::query_as(
        "SELECT update_id, revision_id, title FROM revision r \
         WHERE is_bundle AND update_type = 'Software' AND eula_id IS NULL \
         AND revision_number = (SELECT max(revision_number) FROM revision x WHERE x.update_id = r.update_id) \
         ORDER BY revision_id DESC LIMIT 4",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(latest.len(), 4, "the catalog has four software bundles");
    let bundles = [latest[0].0, latest[1].0, latest[2].0, latest[3].0];
    let (approved, approved_rev, title) = latest[0].clone();

    let system = System::start(&db);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;

    // The clients, a batch at a time.
    let mut clients: Vec<(Kind, Agent)> = Vec::with_capacity(COMPUTERS);
    for batch in (0..COMPUTERS).collect::<Vec<_>>().chunks(25) {
        let mut set = tokio::task::JoinSet::new();
        for &i in batch {
            set.spawn(run_client(system.gateway_url.clone(), http.clone(), i, bundles));
        }
        let mut done = set.join_all().await;
        done.sort_by_key(|(i, _, _)| *i);
        clients.extend(done.into_iter().map(|(_, kind, agent)| (kind, agent)));
    }
    eprintln!("{COMPUTERS} clients scanned and reported in {:?}", started.elapsed());
    for (kind, agent) in clients.iter().filter(|(k, _)| *k != Kind::Silent) {
        let offered = agent.received.get(&approved_rev).map(|r| r.action.as_str());
        assert_eq!(offered, Some("PreDeploymentCheck"), "{kind:?} client {} was offered {approved}", agent.client_id);
    }

    // Every report became statuses.
    let expected: i64 = clients.iter().map(|(k, _)| statuses_of(*k)).sum();
    let mut stored = 0;
    for _ in 0..300 {
        stored = sqlx::query_as::<_, (i64,)>(
            "SELECT count(*) FROM update_status WHERE status IN (2, 4, 5) AND update_id = ANY($1)",
        )
        .bind(&bundles[..])
        .fetch_one(&pool)
        .await
        .unwrap()
        .0;
        if stored == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored, expected, "statuses derived from the clients' reports");

    // A group of needing computers, made through the API.
    let api = |path: &str| format!("{}/api/v1{path}", system.reporting_url);
    let created =
        http.post(api("/groups")).bearer_auth(ADMIN_TOKEN).json(&json!({ "name": GROUP_NAME })).send().await.unwrap();
    assert_eq!(created.status(), 201, "POST /api/v1/groups");
    let group: Value = created.json().await.unwrap();
    let group_id = group["group_id"].as_str().expect("group_id").to_owned();
    let members: Vec<usize> =
        clients.iter().enumerate().filter(|(_, (k, _))| *k == Kind::Needing).map(|(i, _)| i).take(IN_GROUP).collect();
    let ids: Vec<String> = members.iter().map(|&i| clients[i].1.client_id.clone()).collect();
    let added = http
        .post(api(&format!("/groups/{group_id}/computers")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "computer_ids": ids }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200, "adding members: {}", added.text().await.unwrap_or_default());
    // The approved update is the most needed one: every needing and failing computer needs it.
    let needing = clients.iter().filter(|(k, _)| matches!(k, Kind::Needing | Kind::Failing)).count();
    let failing = clients.iter().find(|(k, _)| *k == Kind::Failing).map(|(_, a)| a).unwrap();
    let (failing_id, failing_name) = (failing.client_id.clone(), failing.dns_name.clone());

    // The browser.
    let artifacts = artifact_dir();
    std::fs::create_dir_all(&artifacts).unwrap();
    for old in ["overview-light.png", "overview-dark.png"] {
        let _ = std::fs::remove_file(artifacts.join(old));
    }
    let mut node = tokio::process::Command::new("node");
    node.arg("console.mjs")
        .current_dir(browser_dir())
        .env("BASE_URL", &system.reporting_url)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("READER_TOKEN", READER_TOKEN)
        .env("UPDATE_ID", approved.to_string())
        .env("GROUP_ID", &group_id)
        .env("GROUP_NAME", GROUP_NAME)
        .env("GROUP_MEMBERS", IN_GROUP.to_string())
        .env("TOP_NEEDED", needing.to_string())
        .env("DEADLINE", DEADLINE)
        .env("COMPUTERS", COMPUTERS.to_string())
        .env("COMPUTER_ID", &failing_id)
        .env("COMPUTER_NAME", &failing_name)
        .env("CHROMIUM", chromium())
        .env("ARTIFACT_DIR", &artifacts)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(t) = &title {
        node.env("UPDATE_TITLE", t);
    }
    let browsed = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(300), node.output())
        .await
        .expect("console.mjs did not finish within 300 s")
        .expect("running node console.mjs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("console.mjs ({:?}):\n{stdout}{stderr}", browsed.elapsed());
    assert!(
        out.status.success(),
        "console.mjs failed ({}); screenshots in {}:\n{stdout}\n{stderr}",
        out.status,
        artifacts.display()
    );
    // reporting built the computers' history index on every event partition at start
    // (migration 0008 only declares it): it is valid.
    let (valid,): (bool,) =
        sqlx::query_as("SELECT indisvalid FROM pg_index WHERE indexrelid = 'reporting_event_outcome'::regclass")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(valid, "reporting did not build the history index on every event partition");
    for shot in ["overview-light.png", "overview-dark.png", "computer.png", "update.png"] {
        let size = std::fs::metadata(artifacts.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{shot} was not saved in {}", artifacts.display());
    }
    if let Some(to) = std::env::var_os("WSUS_CONSOLE_SCREENSHOT") {
        std::fs::copy(artifacts.join("overview-light.png"), &to).unwrap();
    }

    // The approval made in the browser reaches a client of the group, deadline and all.
    let member = &mut clients[members[0]].1;
    let mut changed = Vec::new();
    for _ in 0..100 {
        changed = member.scan().await.unwrap().changed;
        if !changed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(changed, vec![(approved_rev, "Install".to_owned())]);
    let deadline = member.received[&approved_rev].deadline.clone().unwrap_or_default();
    assert!(deadline.starts_with(&format!("{DEADLINE}:00")), "deadline {deadline:?}, not {DEADLINE}");
    // Not approved for anyone else: a computer outside the group still only evaluates it.
    let outsider = clients.iter().position(|(k, a)| *k == Kind::Needing && !ids.contains(&a.client_id));
    let outsider = &mut clients[outsider.unwrap()].1;
    outsider.scan().await.unwrap();
    assert_eq!(outsider.received[&approved_rev].action, "PreDeploymentCheck", "the approval is for the group only");
    eprintln!("the console test took {:?}", started.elapsed());
}
