//! Two instances on loopback: A is the upstream (its own database, the real reference
//! documents and a generated catalog with its files), B syncs from A's client-gateway
//! with `sync-worker sync --once`. What A holds reaches B, an update imported at A later
//! reaches B by an anchored delta, and B's client-gateway serves it and its file to a
//! simulated client.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use sqlx::PgPool;
use wsus_e2e::agent::{Agent, FileMeta};
use wsus_e2e::store::{StoreKind, TestStore};
use wsus_e2e::{ADMIN_TOKEN, PgCluster, System, reference, run_binary};
use wsus_store::approvals::{self, Action, Approval};

fn sync(db: &str, upstream: &str, content: &TestStore) -> serde_json::Value {
    sync_with(db, upstream, content, &[])
}

/// A downstream sync-worker's settings: its database, upstream and content store, and `extra`.
fn sync_env(
    db: &str,
    upstream: &str,
    content: &TestStore,
    extra: &[(&'static str, &str)],
) -> HashMap<&'static str, String> {
    let mut env = HashMap::from([
        ("DATABASE_URL", db.to_owned()),
        ("WSUS_UPSTREAM_URL", upstream.to_owned()),
        ("WSUS_SERVER_FQDN", "dss.e2e.test".to_owned()),
    ]);
    env.extend(content.env());
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

fn sync_with(db: &str, upstream: &str, content: &TestStore, extra: &[(&'static str, &str)]) -> serde_json::Value {
    let env = sync_env(db, upstream, content, extra);
    let (ok, out, err) = run_binary("sync-worker", &["sync", "--once", "--json"], &env);
    assert!(ok, "sync failed: {out}{err}");
    serde_json::from_str(out.trim().lines().last().unwrap()).unwrap()
}

/// B's three services on `content` with `upstream` (a sync-worker of its own, for
/// client misses and the management API's triggers).
fn start_b(db: &str, content: &TestStore, upstream: &str) -> System {
    let gateway = content.settings();
    let mut sync = gateway.clone();
    sync.push(("WSUS_UPSTREAM_URL", upstream.to_owned()));
    System::start_full(db, Some(content.dir()), &gateway, &sync)
}

/// Imports the next revision of `update` (its newest, numbered one higher), as a sync
/// from Microsoft would bring it; returns the new revision number.
async fn import_next_revision(pool: &sqlx::PgPool, update: uuid::Uuid) -> i32 {
    let (xml,): (Vec<u8>,) = sqlx::query_as(
        "SELECT x.body FROM revision r JOIN revision_xml x USING (revision_id) WHERE r.update_id = $1 \
         ORDER BY r.revision_number DESC LIMIT 1",
    )
    .bind(update)
    .fetch_one(pool)
    .await
    .unwrap();
    let old = wsus_metadata::Update::parse(String::from_utf8(xml).unwrap()).unwrap();
    let number = old.identity.revision_number;
    let newer =
        old.xml.replacen(&format!("RevisionNumber=\"{number}\""), &format!("RevisionNumber=\"{}\"", number + 1), 1);
    let newer = wsus_store::revisions::NewRevision::from_update(&wsus_metadata::Update::parse(newer).unwrap());
    wsus_store::revisions::import_batch(pool, &[newer]).await.unwrap();
    wsus_store::revisions::refresh_derived(pool).await.unwrap();
    number + 1
}

/// Marks the first file of one document as encrypted (SecuredFragment FileDecryption);
/// returns its file name.
fn encrypt_one(docs: &Path) -> String {
    let mut paths: Vec<_> = std::fs::read_dir(docs).unwrap().flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let xml = std::fs::read_to_string(&p).unwrap();
        let Some(at) = xml.find("<upd:File ") else { continue };
        let name = xml[at..].split("FileName=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let xml = xml.replacen("<upd:File ", "<upd:File IsEncrypted=\"true\" ", 1);
        let props = xml.find("<upd:Properties ").unwrap();
        let end = props + xml[props..].find('>').unwrap() + 1;
        let xml = format!("{}<upd:SecuredFragment>FileDecryption</upd:SecuredFragment>{}", &xml[..end], &xml[end..]);
        std::fs::write(&p, xml).unwrap();
        return name;
    }
    panic!("no document with a file");
}

async fn revisions(pool: &PgPool) -> HashSet<(uuid::Uuid, i32)> {
    sqlx::query_as("SELECT update_id, revision_number FROM revision")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn approve(pool: &PgPool, update_id: uuid::Uuid) {
    approvals::approve(
        pool,
        &Approval {
            update_id,
            group_id: wsus_store::ALL_COMPUTERS,
            action: Action::Install,
            deadline: None,
            admin_name: None,
        },
    )
    .await
    .unwrap();
}

/// The newest bundle of the catalog whose first member has a file.
async fn bundle_with_file(pool: &PgPool, exclude: &HashSet<(uuid::Uuid, i32)>) -> uuid::Uuid {
    let rows: Vec<(uuid::Uuid, i32)> = sqlx::query_as(
        "SELECT r.update_id, r.revision_number FROM revision r WHERE r.is_bundle AND EXISTS ( \
            SELECT 1 FROM bundle_member b JOIN revision m ON m.update_id = b.member_update_id \
            JOIN revision_file f ON f.revision_id = m.revision_id WHERE b.revision_id = r.revision_id) \
         ORDER BY r.revision_id DESC",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().find(|k| !exclude.contains(k)).expect("a bundle with files").0
}

/// A: its own database, a generated catalog (and `also`, when given) imported, its files
/// in its content store, client-gateway running. B: an empty database and content store
/// (a directory, or a bucket).
/// Bind `_pg` and `dir` when destructuring: dropping them stops the database and
/// removes the files.
struct Pair {
    _pg: PgCluster,
    dir: tempfile::TempDir,
    db_a: String,
    db_b: String,
    content_a: std::path::PathBuf,
    content_b: TestStore,
    a: System,
    pool_a: PgPool,
    pool_b: PgPool,
    http: reqwest::Client,
}

impl Pair {
    async fn start(revisions: usize, seed: u64, also: Option<&Path>) -> Self {
        Self::start_with(revisions, seed, also, StoreKind::Directory).await
    }

    async fn start_with(revisions: usize, seed: u64, also: Option<&Path>, b_store: StoreKind) -> Self {
        let pg = PgCluster::start().unwrap();
        let (db_a, db_b) = (pg.create_database("uss").unwrap(), pg.create_database("dss").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let content_a = dir.path().join("content-a");
        let content_b = TestStore::new(b_store, &dir.path().join("content-b"));
        let opts = wsus_catalog_gen::Options { revisions, seed, ..Default::default() };
        wsus_catalog_gen::write(&opts, &dir.path().join("docs"), Some(&content_a)).unwrap();
        wsus_e2e::import(&db_a, &dir.path().join("docs"));
        if let Some(p) = also {
            wsus_e2e::import(&db_a, p);
        }
        let pool_a = PgPool::connect(&db_a).await.unwrap();
        let pool_b = PgPool::connect(&db_b).await.unwrap();
        let a = System::start_with(&db_a, Some(&content_a), &[]);
        let http = reqwest::Client::new();
        a.wait_ready(&http).await;
        Pair { _pg: pg, dir, db_a, db_b, content_a, content_b, a, pool_a, pool_b, http }
    }
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn an_update_imported_upstream_reaches_a_client_of_the_downstream() {
    update_reaches_a_client_of_the_downstream(StoreKind::Directory).await;
}

/// The same with B's content in a bucket of a real S3 server: sync-worker fetches and
/// verifies on local disk, uploads, and B's client-gateway serves from the bucket.
#[tokio::test(flavor = "multi_thread")]
async fn an_update_imported_upstream_reaches_a_client_of_a_downstream_with_content_in_a_bucket() {
    update_reaches_a_client_of_the_downstream(StoreKind::Bucket).await;
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
async fn update_reaches_a_client_of_the_downstream(b_store: StoreKind) {
    let Pair { _pg, dir, db_a, db_b, content_a, content_b, a, pool_a, pool_b, http } =
        Pair::start_with(300, 21, Some(&reference("captures/wsus-m0-wsusss/docs")), b_store).await;

    // First sync: everything A holds (no products or classifications chosen at B).
    let outcome = sync(&db_b, &a.gateway_url, &content_b);
    let at_a = revisions(&pool_a).await;
    assert_eq!(revisions(&pool_b).await, at_a, "B holds exactly A's revisions");
    assert_eq!(outcome["revisions_new"].as_u64().unwrap() as usize, at_a.len());
    assert_eq!(outcome["files_queued"], 0, "lazy content: nothing approved yet");
    let (anchor,): (Option<String>,) =
        sqlx::query_as("SELECT sync_anchor FROM upstream_state").fetch_one(&pool_b).await.unwrap();
    assert!(anchor.is_some_and(|a| a.contains(',')), "the anchor is committed");
    let (downstream,): (String,) =
        sqlx::query_as("SELECT fqdn FROM downstream_server").fetch_one(&pool_a).await.unwrap();
    assert_eq!(downstream, "dss.e2e.test", "A knows B");

    // Nothing changed: the anchored sync brings nothing.
    let again = sync(&db_b, &a.gateway_url, &content_b);
    assert_eq!(again["revisions_new"], 0);
    assert_eq!(again["revisions_updated"], 0);

    // A new update at A, approved at B: it arrives by delta, with its file.
    let second = wsus_catalog_gen::Options { revisions: 120, seed: 22, ..Default::default() };
    wsus_catalog_gen::write(&second, &dir.path().join("docs-2"), Some(&content_a)).unwrap();
    // One of them with an encrypted file, whose key the downstream must fetch.
    let secured = encrypt_one(&dir.path().join("docs-2"));
    wsus_e2e::import(&db_a, &dir.path().join("docs-2"));
    let key = vec![7u8; 32];
    sqlx::query("UPDATE file SET decryption_key = $2 WHERE file_name = $1")
        .bind(&secured)
        .bind(&key)
        .execute(&pool_a)
        .await
        .unwrap();
    let added: HashSet<_> = revisions(&pool_a).await.difference(&at_a).copied().collect();
    assert!(!added.is_empty());
    let delta = sync(&db_b, &a.gateway_url, &content_b);
    assert_eq!(delta["revisions_new"].as_u64().unwrap() as usize, added.len(), "only what is new: {delta}");
    assert_eq!(revisions(&pool_b).await, revisions(&pool_a).await);
    let (got,): (Option<Vec<u8>>,) = sqlx::query_as("SELECT decryption_key FROM file WHERE file_name = $1")
        .bind(&secured)
        .fetch_one(&pool_b)
        .await
        .unwrap();
    assert_eq!(got, Some(key), "GetUpdateDecryptionData brought the key");
    let bundle = bundle_with_file(&pool_b, &at_a).await;
    approve(&pool_b, bundle).await;
    let content_sync = sync(&db_b, &a.gateway_url, &content_b);
    assert!(content_sync["files_downloaded"].as_u64().unwrap() >= 1, "{content_sync}");
    assert_eq!(content_sync["files_failed"], 0);

    // B's client-gateway serves the update and its file to a client.
    let b = start_b(&db_b, &content_b, &a.gateway_url);
    b.wait_ready(&http).await;

    // The manual trigger of the management API runs a sync in sync-worker B.
    let started =
        http.post(format!("{}/api/v1/sync/start", b.reporting_url)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(started.status(), 202);
    let sync_id = started.json::<serde_json::Value>().await.unwrap()["sync_id"].as_i64().unwrap();
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        last = http
            .get(format!("{}/api/v1/sync/status", b.reporting_url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if last["last"]["sync_id"].as_i64() == Some(sync_id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(last["last"]["result"], "succeeded", "{last}");
    assert_eq!(last["last"]["trigger"], "manual");
    let mut agent = Agent::new(&b.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    let install: Vec<_> = agent.received.iter().filter(|(_, r)| r.action == "Install").collect();
    assert_eq!(install.len(), 1, "the bundle approved at B");
    let leaves = agent.to_install();
    let actions: Vec<_> = agent.received.values().map(|r| (r.action.clone(), r.is_leaf)).collect();
    assert!(!leaves.is_empty(), "the approved bundle's members: {actions:?}");
    let (mut fragments, mut files) = (Vec::new(), Vec::new());
    for chunk in leaves.chunks(50) {
        let (f, u) = agent.extended_info(chunk).await.unwrap();
        fragments.extend(f);
        files.extend(u);
    }
    let mut downloaded = 0;
    for (_, extended) in fragments.iter().filter(|(_, x)| x.starts_with("<ExtendedProperties")) {
        for meta in FileMeta::from_extended(extended) {
            let Some((_, url)) = files.iter().find(|(d, _)| *d == meta.sha1) else { continue };
            assert!(url.starts_with(&b.gateway_url), "{url}");
            let bytes = agent.download(url, &meta, 100_000).await.unwrap();
            assert_eq!(bytes.len() as u64, meta.size);
            downloaded += 1;
        }
    }
    assert!(downloaded >= 1, "a file of the approved update came from B");
    // What B serves is A's files byte for byte, and nothing stays staged once stored.
    let served = content_b.served();
    assert!(served.len() >= downloaded, "{served:?}");
    for relative in &served {
        let (at_b, at_a) = (std::fs::read(content_b.served_path(relative)), std::fs::read(content_a.join(relative)));
        assert_eq!(at_b.unwrap(), at_a.unwrap(), "{relative}");
    }
    assert_eq!(content_b.staged(), Vec::<std::path::PathBuf>::new());

    // A file lost from B's store: the client's miss is queued, and sync-worker B fetches
    // it again from A between syncs.
    let (_, url) = files.iter().find(|(_, u)| u.starts_with(&b.gateway_url)).unwrap();
    let stored = content_b.served_path(url.rsplit("/Content/").next().unwrap());
    std::fs::remove_file(&stored).unwrap();
    assert_eq!(http.get(url).send().await.unwrap().status(), 404);
    let mut back = false;
    for _ in 0..100 {
        if http.get(url).send().await.unwrap().status() == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(back, "fetched again: {}", b.sync.log());
}

/// Revisions in the kill-and-resume test: CI-sized unless `WSUS_E2E_LONG=1`.
fn resume_catalog_size() -> usize {
    if std::env::var("WSUS_E2E_LONG").is_ok_and(|v| v == "1") { 20_000 } else { 3_000 }
}

/// Of the files `pool` knows, how many are stored whole under their served names in
/// `content`, and which are there but not exactly their bytes.
async fn files_on_disk(pool: &PgPool, content: &TestStore) -> (usize, Vec<String>) {
    use sha1::Digest as _;
    let files: Vec<(Vec<u8>, String, i64)> =
        sqlx::query_as("SELECT sha1, file_name, size FROM file").fetch_all(pool).await.unwrap();
    let (mut whole, mut broken) = (0, Vec::new());
    for (sha1, name, size) in files {
        let sha1: [u8; 20] = sha1.try_into().unwrap();
        let path = content.served_path(&wsus_content::relative_path(&sha1, &name));
        let Ok(bytes) = std::fs::read(&path) else { continue };
        if bytes.len() as i64 == size && sha1::Sha1::digest(&bytes)[..] == sha1[..] {
            whole += 1;
        } else {
            broken.push(format!("{}: {} of {size} bytes", path.display(), bytes.len()));
        }
    }
    (whole, broken)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_downstream_killed_mid_sync_converges_to_the_upstream() {
    killed_mid_sync_converges(StoreKind::Directory).await;
}

/// The same with B's content in a bucket: whatever the kills cut off, no object is
/// partial, and the resumed sync uploads every file.
#[tokio::test(flavor = "multi_thread")]
async fn a_downstream_with_content_in_a_bucket_killed_mid_sync_converges_to_the_upstream() {
    killed_mid_sync_converges(StoreKind::Bucket).await;
}

async fn killed_mid_sync_converges(b_store: StoreKind) {
    let seed = 31;
    let Pair { _pg, dir: _dir, db_b, content_b, mut a, pool_a, pool_b, http, .. } =
        Pair::start_with(resume_catalog_size(), seed, None, b_store).await;
    // Replica mode with approvals at A, and immediate content: revisions, deployments and
    // files must all converge.
    let bundles: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT DISTINCT update_id FROM revision WHERE is_bundle ORDER BY update_id LIMIT 25")
            .fetch_all(&pool_a)
            .await
            .unwrap();
    for (b,) in &bundles {
        approve(&pool_a, *b).await;
    }
    let env =
        sync_env(&db_b, &a.gateway_url, &content_b, &[("WSUS_CONTENT_MODE", "immediate"), ("WSUS_REPLICA", "true")]);

    // Killed at pseudo-random points (deterministic per run size), each later than the last.
    let mut seed: u64 = seed;
    let (mut kills, mut upstream_kills) = (0, 0);
    for round in 0..4u64 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let after = std::time::Duration::from_millis(300 + round * 400 + (seed >> 33) % 700);
        let mut b = wsus_e2e::Service::spawn_args("sync-worker", &["sync", "--once"], &env);
        if round == 1 {
            // This time the upstream's gateway dies under the sync instead, and comes back.
            tokio::time::sleep(after).await;
            a.restart_gateway();
            let _ = b.wait(std::time::Duration::from_secs(60));
            a.wait_ready(&http).await;
            upstream_kills += 1;
            continue;
        }
        tokio::time::sleep(after).await;
        if b.wait(std::time::Duration::ZERO).is_none() {
            b.kill();
            kills += 1;
        }
    }
    assert!(kills >= 1 && upstream_kills == 1, "the sync was interrupted");
    // Whatever the kills left under a served name is whole: downloads accumulate apart.
    let (whole, broken) = files_on_disk(&pool_b, &content_b).await;
    assert_eq!(broken, Vec::<String>::new(), "no partial or corrupt file under a served name");
    eprintln!("{whole} files whole on disk when the sync resumed");
    // Resumed to the end: exactly A's revisions and approvals, and every file, verified.
    let outcome = sync_with(&db_b, &a.gateway_url, &content_b, &[("WSUS_REPLICA", "true")]);
    assert_eq!(outcome["files_failed"], 0);
    assert_eq!(revisions(&pool_b).await, revisions(&pool_a).await, "B converged to A");
    let live = "SELECT deployment_id, update_id, group_id, action FROM deployment WHERE deleted_at IS NULL ORDER BY 1";
    let deployments_a: Vec<(uuid::Uuid, uuid::Uuid, uuid::Uuid, String)> =
        sqlx::query_as(live).fetch_all(&pool_a).await.unwrap();
    assert_eq!(deployments_a.len(), bundles.len());
    assert_eq!(
        sqlx::query_as::<_, (uuid::Uuid, uuid::Uuid, uuid::Uuid, String)>(live).fetch_all(&pool_b).await.unwrap(),
        deployments_a
    );
    let (files_a,): (i64,) = sqlx::query_as("SELECT count(*) FROM file").fetch_one(&pool_a).await.unwrap();
    let (present_b,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM file WHERE content_state = 'present'").fetch_one(&pool_b).await.unwrap();
    assert_eq!(present_b, files_a, "every file downloaded once and verified");
    assert_eq!(files_on_disk(&pool_b, &content_b).await, (files_a as usize, Vec::new()), "and each is on disk, whole");
    let (queued,): (i64,) = sqlx::query_as("SELECT count(*) FROM content_download").fetch_one(&pool_b).await.unwrap();
    assert_eq!(queued, 0);
    let (running, succeeded): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE result = 'running'), count(*) FILTER (WHERE result = 'succeeded') FROM sync_history",
    )
    .fetch_one(&pool_b)
    .await
    .unwrap();
    assert_eq!(running, 0, "killed runs are closed as failed by the next one");
    assert!(succeeded >= 1);
    // The anchor moved: one more sync brings nothing new.
    let again = sync_with(&db_b, &a.gateway_url, &content_b, &[("WSUS_REPLICA", "true")]);
    assert_eq!(again["revisions_new"], 0);
    assert_eq!(again["deployments_changed"], 0);
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn in_replica_mode_approvals_made_upstream_reach_the_downstream_client() {
    let Pair { _pg, dir: _dir, db_b, content_a, content_b, a, pool_a, pool_b, http, .. } =
        Pair::start(300, 41, None).await;
    // At A: a group, an approval for it and one for everyone, a declined update.
    let group = uuid::Uuid::new_v4();
    approvals::create_group(&pool_a, group, "Pilot", None).await.unwrap();
    let bundle = bundle_with_file(&pool_a, &HashSet::new()).await;
    let approved = approvals::approve(
        &pool_a,
        &Approval {
            update_id: bundle,
            group_id: wsus_store::ALL_COMPUTERS,
            action: Action::Install,
            deadline: None,
            admin_name: Some("admin-a".into()),
        },
    )
    .await
    .unwrap();
    let (other,): (uuid::Uuid,) = sqlx::query_as(
        "SELECT update_id FROM revision WHERE update_type = 'Software' AND update_id <> $1 ORDER BY revision_id LIMIT 1",
    )
    .bind(bundle)
    .fetch_one(&pool_a)
    .await
    .unwrap();
    approvals::approve(
        &pool_a,
        &Approval { update_id: other, group_id: group, action: Action::Install, deadline: None, admin_name: None },
    )
    .await
    .unwrap();
    let (declined,): (uuid::Uuid,) = sqlx::query_as(
        "SELECT update_id FROM revision WHERE update_type = 'Software' AND update_id NOT IN ($1, $2) ORDER BY revision_id DESC LIMIT 1",
    )
    .bind(bundle)
    .bind(other)
    .fetch_one(&pool_a)
    .await
    .unwrap();
    approvals::decline(&pool_a, declined, None).await.unwrap();

    let replica = [("WSUS_REPLICA", "true")];
    let first = sync_with(&db_b, &a.gateway_url, &content_b, &replica);
    assert!(first["deployments_changed"].as_u64().unwrap() >= 3, "{first}");
    assert!(first["files_downloaded"].as_u64().unwrap() >= 1, "the approved update's files, lazily: {first}");
    let groups_b: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT group_id, name FROM target_group WHERE NOT is_builtin")
            .fetch_all(&pool_b)
            .await
            .unwrap();
    assert_eq!(groups_b, vec![(group, "Pilot".to_owned())]);
    let live_b: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT deployment_id, origin FROM deployment WHERE deleted_at IS NULL ORDER BY deployment_id")
            .fetch_all(&pool_b)
            .await
            .unwrap();
    let live_a: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT deployment_id FROM deployment WHERE deleted_at IS NULL ORDER BY deployment_id")
            .fetch_all(&pool_a)
            .await
            .unwrap();
    assert_eq!(live_b.iter().map(|(d, _)| *d).collect::<Vec<_>>(), live_a.iter().map(|(d,)| *d).collect::<Vec<_>>());
    assert!(live_b.iter().all(|(_, o)| o == "upstream"));
    assert_eq!(approvals::declined(&pool_b).await.unwrap(), vec![declined]);

    // B's client gets the approval made at A.
    let b = start_b(&db_b, &content_b, &a.gateway_url);
    b.wait_ready(&http).await;
    let mut agent = Agent::new(&b.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    let install: Vec<_> = agent.received.values().filter(|r| r.action == "Install").collect();
    assert_eq!(install.len(), 1, "the approval for All Computers");
    assert!(install[0].core.contains(&bundle.to_string()));

    // Removed at A: removed at B by the next sync (a dead deployment).
    approvals::unapprove(&pool_a, bundle, wsus_store::ALL_COMPUTERS).await.unwrap();
    let second = sync_with(&db_b, &a.gateway_url, &content_b, &replica);
    assert!(second["deployments_changed"].as_u64().unwrap() >= 1, "{second}");
    let (still,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM deployment WHERE deployment_id = $1 AND deleted_at IS NULL")
            .bind(approved)
            .fetch_one(&pool_b)
            .await
            .unwrap();
    assert_eq!(still, 0);
    let (live,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM deployment WHERE deleted_at IS NULL").fetch_one(&pool_b).await.unwrap();
    assert_eq!(live, 1, "the Pilot approval stays");

    // A new revision of the update approved for Pilot arrives at A: A approves it in the
    // old one's stead (a new deployment, as WSUS's approval refresh creates one), and B,
    // a replica, approves the new revision with its next sync.
    let number = import_next_revision(&pool_a, other).await - 1;
    assert_eq!(wsus_store::rules::apply(&pool_a, None, false).await.unwrap().revisions_followed, 1);
    let third = sync_with(&db_b, &a.gateway_url, &content_b, &replica);
    assert!(third["deployments_changed"].as_u64().unwrap() >= 2, "a new approval and a removed one: {third}");
    let followed: Vec<(Option<i32>,)> = sqlx::query_as(
        "SELECT revision_number FROM deployment WHERE update_id = $1 AND group_id = $2 AND deleted_at IS NULL",
    )
    .bind(other)
    .bind(group)
    .fetch_all(&pool_b)
    .await
    .unwrap();
    assert_eq!(followed, [(Some(number + 1),)], "B approves the new revision");

    // A file A's content service lacks: B asks A for it with DownloadFiles, and A queues
    // it for its own upstream; B's sync reports the file as not downloaded yet.
    // Another bundle: not the one approved above, nor the declined one.
    let taken = [bundle, other, declined];
    let taken: HashSet<_> = revisions(&pool_a).await.into_iter().filter(|(u, _)| taken.contains(u)).collect();
    let next = bundle_with_file(&pool_a, &taken).await;
    let files: Vec<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT DISTINCT f.sha1, f.file_name FROM revision r JOIN bundle_member b ON b.revision_id = r.revision_id \
         JOIN revision m ON m.update_id = b.member_update_id JOIN revision_file rf ON rf.revision_id = m.revision_id \
         JOIN file f ON f.sha1 = rf.sha1 WHERE r.update_id = $1",
    )
    .bind(next)
    .fetch_all(&pool_a)
    .await
    .unwrap();
    for (sha1, name) in &files {
        let sha1: [u8; 20] = sha1.as_slice().try_into().unwrap();
        let _ = std::fs::remove_file(content_a.join(wsus_content::relative_path(&sha1, name)));
    }
    // A file an earlier approval brought to B already is not asked for again.
    let files: Vec<(Vec<u8>, String)> = files
        .into_iter()
        .filter(|(sha1, name)| {
            let sha1: [u8; 20] = sha1.as_slice().try_into().unwrap();
            !content_b.served_path(&wsus_content::relative_path(&sha1, name)).exists()
        })
        .collect();
    assert!(!files.is_empty());
    approve(&pool_a, next).await;
    let env = sync_env(&db_b, &a.gateway_url, &content_b, &[("WSUS_REPLICA", "true")]);
    let (ok, out, err) = run_binary("sync-worker", &["sync", "--once"], &env);
    assert!(!ok, "files are missing upstream: {out}");
    assert!(err.contains("could not be downloaded"), "{err}");
    assert_eq!(err.matches("asked the upstream to fetch the file").count(), files.len(), "{err}");
    // (A's own content service queued them first, on the 404; DownloadFiles keeps them queued.)
    let (asked,): (i64,) = sqlx::query_as("SELECT count(*) FROM content_download WHERE sha1 = ANY($1)")
        .bind(files.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>())
        .fetch_one(&pool_a)
        .await
        .unwrap();
    assert_eq!(asked as usize, files.len(), "A queued what B asked for");
}

#[tokio::test(flavor = "multi_thread")]
async fn everything_upstream_goes_through_the_configured_proxy() {
    let Pair { _pg, dir: _dir, db_b, content_a, content_b, a, pool_a, pool_b, .. } = Pair::start(100, 51, None).await;
    // A download of one file was interrupted half-way before: it resumes with a Range.
    let (sha1, name, size): (Vec<u8>, String, i64) =
        sqlx::query_as("SELECT sha1, file_name, size FROM file WHERE size > 1 ORDER BY sha1 LIMIT 1")
            .fetch_one(&pool_a)
            .await
            .unwrap();
    let sha1: [u8; 20] = sha1.try_into().unwrap();
    let whole = std::fs::read(content_a.join(wsus_content::relative_path(&sha1, &name))).unwrap();
    let half = size as usize / 2;
    let partial = wsus_content::ContentStore::new(content_b.dir()).partial_path(&sha1);
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(&partial, &whole[..half]).unwrap();
    let proxy = wsus_e2e::ForwardProxy::start().await;
    let with_credentials = proxy.url.replace("http://", "http://sync:s3cret@");
    let outcome = sync_with(
        &db_b,
        &a.gateway_url,
        &content_b,
        &[("WSUS_UPSTREAM_PROXY", with_credentials.as_str()), ("WSUS_CONTENT_MODE", "immediate")],
    );
    assert!(outcome["files_downloaded"].as_u64().unwrap() > 0, "{outcome}");
    let (total,): (i64,) = sqlx::query_as("SELECT sum(size)::int8 FROM file").fetch_one(&pool_a).await.unwrap();
    assert_eq!(outcome["bytes_received"].as_i64().unwrap(), total - half as i64, "the rest of the partial file only");
    assert!(!partial.exists());
    assert_eq!(revisions(&pool_b).await, revisions(&pool_a).await);
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(seen.iter().any(|(line, _)| line.contains("/ServerSyncWebService/")), "{seen:?}");
    // "sync:s3cret", as HTTP Basic credentials to the proxy.
    assert!(seen.iter().all(|(_, auth)| auth.as_deref() == Some("Basic c3luYzpzM2NyZXQ=")), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_only_upstream_sends_its_downstream_to_microsoft_update_urls() {
    let Pair { _pg, dir: _dir, db_b, content_b, a, pool_a, pool_b, .. } = Pair::start(100, 61, None).await;
    wsus_store::settings::put(&pool_a, wsus_store::settings::CONTENT_MODE, &"catalog-only", "test").await.unwrap();
    // The "Microsoft Update" URLs lead to A's files under another host name.
    let port = a.gateway_url.rsplit(':').next().unwrap();
    let files: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT sha1, file_name FROM file").fetch_all(&pool_a).await.unwrap();
    for (sha1, name) in &files {
        let rel = wsus_content::relative_path(&sha1.as_slice().try_into().unwrap(), name);
        sqlx::query("UPDATE file SET mu_url = $2 WHERE sha1 = $1")
            .bind(sha1)
            .bind(format!("http://localhost:{port}/Content/{rel}"))
            .execute(&pool_a)
            .await
            .unwrap();
    }
    let proxy = wsus_e2e::ForwardProxy::start().await;
    let outcome = sync_with(
        &db_b,
        &a.gateway_url,
        &content_b,
        &[("WSUS_UPSTREAM_PROXY", proxy.url.as_str()), ("WSUS_CONTENT_MODE", "immediate")],
    );
    assert_eq!(outcome["files_downloaded"].as_u64().unwrap() as usize, files.len(), "{outcome}");
    let (catalog_only,): (Option<bool>,) =
        sqlx::query_as("SELECT catalog_only_sync FROM upstream_state").fetch_one(&pool_b).await.unwrap();
    assert_eq!(catalog_only, Some(true));
    let seen = proxy.seen.lock().unwrap().clone();
    let content: Vec<_> = seen.iter().filter(|(line, _)| line.contains("/Content/")).collect();
    assert!(!content.is_empty() && content.iter().all(|(line, _)| line.contains("//localhost:")), "{seen:?}");
}

/// POSTs one server-sync request to `base`; (HTTP status, parsed operation or fault).
async fn call(http: &reqwest::Client, base: &str, path: &str, action: &str, body: &str) -> (u16, wsus_soap::Element) {
    let r = http
        .post(format!("{base}{path}"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", action)
        .body(wsus_soap::wsusss::dss::envelope(body))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let limits = wsus_soap::Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 10_000_000 };
    (status, wsus_soap::parse_request(text.as_bytes(), &limits).unwrap().operation)
}

#[tokio::test(flavor = "multi_thread")]
async fn driver_lists_by_device_hardware_id() {
    use wsus_soap::wsusss::dss;
    let Pair { _pg, dir: _dir, a, pool_a, http, .. } = Pair::start(300, 71, None).await;
    let sync_path = "/ServerSyncWebService/ServerSyncWebService.asmx";
    let (_, auth) = call(
        &http,
        &a.gateway_url,
        "/DssAuthWebService/DssAuthWebService.asmx",
        &dss::dss_auth_action(),
        &dss::get_authorization_cookie("dss.example", uuid::Uuid::new_v4()),
    )
    .await;
    let (_, data) = dss::authorization_cookie(dss::result(&auth, "GetAuthorizationCookie").unwrap()).unwrap();
    let (_, cookie) = call(
        &http,
        &a.gateway_url,
        sync_path,
        &dss::action("GetCookie"),
        &dss::get_cookie("DssTargeting", &data, "1.20"),
    )
    .await;
    let cookie = dss::cookie_of(dss::result(&cookie, "GetCookie").unwrap()).unwrap();

    let hwid = wsus_catalog_gen::driver_hardware_id(0);
    let expected: Vec<(uuid::Uuid, i32)> = sqlx::query_as(
        "SELECT DISTINCT r.update_id, r.revision_number FROM driver d JOIN revision r USING (revision_id) \
         WHERE lower(d.hardware_id) = lower($1) ORDER BY 1, 2",
    )
    .bind(&hwid)
    .fetch_all(&pool_a)
    .await
    .unwrap();
    assert!(!expected.is_empty());
    let filter = |id: &str| {
        format!(
            "<GetDriverIdList xmlns=\"http://www.microsoft.com/SoftwareDistribution\"><cookie><Expiration>{}</Expiration><EncryptedData>{}</EncryptedData></cookie>\
             <filter><Categories /><ComputerIds /><PnpHardwareIds><HardwareIdAndDelta><Id>{id}</Id><Delta>false</Delta></HardwareIdAndDelta></PnpHardwareIds></filter></GetDriverIdList>",
            wsus_soap::write::datetime(cookie.expiration),
            cookie.encrypted_data.clone().unwrap(),
            id = wsus_soap::write::escape(id)
        )
    };
    let (status, list) =
        call(&http, &a.gateway_url, sync_path, &dss::action("GetDriverIdList"), &filter(&hwid.to_uppercase())).await;
    assert_eq!(status, 200, "{list:?}");
    let result = dss::result(&list, "GetDriverIdList").unwrap();
    assert_eq!(dss::revision_id_list(result).unwrap().revisions, expected, "matched case-insensitively");
    let names: Vec<&str> = result.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Anchor", "NewRevisions", "NewDriverSets", "RemovedDriverSets"]);
    let (_, none) =
        call(&http, &a.gateway_url, sync_path, &dss::action("GetDriverIdList"), &filter("PCI\\VEN_0000")).await;
    assert!(dss::revision_id_list(dss::result(&none, "GetDriverIdList").unwrap()).unwrap().revisions.is_empty());

    let sets = |inner: &str| {
        format!(
            "<GetDriverSetData xmlns=\"http://www.microsoft.com/SoftwareDistribution\"><cookie><Expiration>{}</Expiration><EncryptedData>{}</EncryptedData></cookie>{inner}</GetDriverSetData>",
            wsus_soap::write::datetime(cookie.expiration),
            cookie.encrypted_data.clone().unwrap()
        )
    };
    let (status, empty) =
        call(&http, &a.gateway_url, sync_path, &dss::action("GetDriverSetData"), &sets("<driverSets />")).await;
    assert_eq!(status, 200);
    assert!(dss::result(&empty, "GetDriverSetData").unwrap().child("DriverSets").unwrap().children.is_empty());
    let (status, fault) = call(&http, &a.gateway_url, sync_path, &dss::action("GetDriverSetData"), &sets("")).await;
    assert_eq!(status, 500);
    assert_eq!(fault.child("detail").unwrap().child("ErrorCode").unwrap().value(), "InvalidParameters");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_upstream_is_trusted_through_the_configured_root_certificate() {
    let Pair { _pg, dir: _dir, db_b, content_b, a, pool_a, pool_b, .. } = Pair::start(100, 81, None).await;
    let front = wsus_e2e::TlsFront::start(&a.gateway_url).await;
    // Without the root, the upstream's certificate is refused.
    let env = sync_env(&db_b, &front.url, &content_b, &[("WSUS_CONTENT_MODE", "immediate")]);
    let (ok, _, err) = run_binary("sync-worker", &["sync", "--once"], &env);
    assert!(!ok);
    assert!(err.lines().last().unwrap().contains("certificate"), "the reason is said: {err}");
    // With it, the whole sync runs over TLS, files included.
    let ca = front.ca_file.display().to_string();
    let outcome = sync_with(
        &db_b,
        &front.url,
        &content_b,
        &[("WSUS_UPSTREAM_CA_FILE", ca.as_str()), ("WSUS_CONTENT_MODE", "immediate")],
    );
    assert!(outcome["files_downloaded"].as_u64().unwrap() > 0, "{outcome}");
    assert_eq!(revisions(&pool_b).await, revisions(&pool_a).await);
}

/// The schedule runs syncs by itself (here every minute, the finest it allows), and two
/// syncs asked for at once run one after the other under the per-upstream lock.
#[tokio::test(flavor = "multi_thread")]
async fn scheduled_and_concurrent_syncs() {
    let Pair { _pg, dir: _dir, db_b, content_b, a, pool_a, pool_b, http, .. } = Pair::start(100, 91, None).await;
    // Two at once from the command line: both succeed, never overlapping.
    let env = sync_env(&db_b, &a.gateway_url, &content_b, &[]);
    let mut first = wsus_e2e::Service::spawn_args("sync-worker", &["sync", "--once"], &env);
    let mut second = wsus_e2e::Service::spawn_args("sync-worker", &["sync", "--once"], &env);
    let within = std::time::Duration::from_secs(120);
    assert!(first.wait(within).unwrap().success(), "{}", first.log());
    assert!(second.wait(within).unwrap().success(), "{}", second.log());
    let runs: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT started_at, finished_at FROM sync_history WHERE result = 'succeeded' ORDER BY started_at",
    )
    .fetch_all(&pool_b)
    .await
    .unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[0].1 <= runs[1].0, "one after the other: {runs:?}");
    assert_eq!(revisions(&pool_b).await, revisions(&pool_a).await);

    wsus_store::settings::put(
        &pool_b,
        wsus_store::settings::SYNC_SCHEDULE,
        &serde_json::json!({"syncs_per_day": 1440}),
        "test",
    )
    .await
    .unwrap();
    let b = start_b(&db_b, &content_b, &a.gateway_url);
    b.wait_ready(&http).await;
    // A slot comes within a minute; one too close to the syncs above is skipped.
    let mut scheduled = None;
    for _ in 0..150 {
        scheduled = sqlx::query_as::<_, (String,)>(
            "SELECT result FROM sync_history WHERE trigger = 'schedule' AND result <> 'running'",
        )
        .fetch_optional(&pool_b)
        .await
        .unwrap();
        if scheduled.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert_eq!(scheduled, Some(("succeeded".to_owned(),)), "{}", b.sync.log());
}

/// What the relay in front of A does to its answers.
#[derive(Default)]
struct Mischief {
    /// GetConfigData answers refused with HTTP 503 before one goes through.
    unavailable: std::sync::atomic::AtomicUsize,
    /// GetRevisionIdList answers refused with a ServerBusy fault before one goes through.
    busy: std::sync::atomic::AtomicUsize,
    /// The next GetRevisionIdList is answered ServerChanged.
    server_changed: std::sync::atomic::AtomicBool,
    /// The update whose document is sent unreadable, while set.
    corrupt: std::sync::Mutex<Option<uuid::Uuid>>,
    /// The update whose document is left out of every answer, while set (gone upstream).
    withhold: std::sync::Mutex<Option<uuid::Uuid>>,
    /// For each GetRevisionIdList passed on: whether it carried an anchor.
    anchored: std::sync::Mutex<Vec<bool>>,
    /// How often each trick was played.
    refused: std::sync::atomic::AtomicUsize,
    truncated: std::sync::atomic::AtomicUsize,
    changed_told: std::sync::atomic::AtomicUsize,
}

/// An HTTP relay in front of an upstream that misbehaves as real upstreams do: it
/// refuses calls for a while (503, ServerBusy with Retry-After), sends GetUpdateData
/// answers without their second half (a real WSUS caps an answer at 2,000,000 bytes:
/// MS-WSUSSS endnote <37>), sends one document unreadable, and says ServerChanged once.
async fn misbehaving_relay(upstream: &str, mischief: std::sync::Arc<Mischief>) -> String {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.to_owned();
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (upstream, http, mischief) = (upstream.clone(), http.clone(), mischief.clone());
            tokio::spawn(async move {
                let Some(request) = wsus_e2e::read_request(&mut client).await else { return };
                let body = String::from_utf8_lossy(&request.body).into_owned();
                let path = request.path;
                let header = |name: &str| request.headers.get(name).cloned();
                let action = header("soapaction").unwrap_or_default();
                let op = action.trim_matches('"').rsplit('/').next().unwrap_or("").to_owned();
                let fault = |code: wsus_soap::ErrorCode| {
                    wsus_soap::Fault::new(code, Some("relay".to_owned()), Some(&action))
                        .to_xml(wsus_soap::SoapVersion::Soap11, wsus_soap::EnvelopeStyle::Asmx)
                };
                let (status, retry_after, text) = if op == "GetConfigData"
                    && mischief.unavailable.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok()
                {
                    mischief.refused.fetch_add(1, SeqCst);
                    (503, Some("1"), "Service Unavailable".to_owned())
                } else if op == "GetRevisionIdList"
                    && mischief.busy.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok()
                {
                    mischief.refused.fetch_add(1, SeqCst);
                    (500, Some("1"), fault(wsus_soap::ErrorCode::ServerBusy))
                } else if op == "GetRevisionIdList" && mischief.server_changed.swap(false, SeqCst) {
                    mischief.changed_told.fetch_add(1, SeqCst);
                    (500, None, fault(wsus_soap::ErrorCode::ServerChanged))
                } else {
                    if op == "GetRevisionIdList" {
                        mischief.anchored.lock().unwrap().push(body.contains("<Anchor>"));
                    }
                    let r = http
                        .post(format!("{upstream}{path}"))
                        .header("Content-Type", "text/xml; charset=utf-8")
                        .header("SOAPAction", &action)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    let mut text = r.text().await.unwrap();
                    if op == "GetUpdateData" && status == 200 {
                        let corrupt = *mischief.corrupt.lock().unwrap();
                        let withhold = *mischief.withhold.lock().unwrap();
                        text = misdeliver(&text, corrupt, withhold, &mischief.truncated);
                    }
                    (status, None, text)
                };
                let mut answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
                    text.len()
                );
                if let Some(s) = retry_after {
                    answer.push_str(&format!("Retry-After: {s}\r\n"));
                }
                answer.push_str("\r\n");
                answer.push_str(&text);
                let _ = client.write_all(answer.as_bytes()).await;
                let _ = client.shutdown().await;
            });
        }
    });
    url
}

/// A GetUpdateData answer without the second half of its documents (when it holds more
/// than one), without `withhold`'s and with `corrupt`'s document unreadable.
fn misdeliver(
    text: &str,
    corrupt: Option<uuid::Uuid>,
    withhold: Option<uuid::Uuid>,
    truncated: &std::sync::atomic::AtomicUsize,
) -> String {
    const OPEN: &str = "<ServerSyncUpdateData>";
    let start = text.find(OPEN).unwrap();
    let end = text.rfind("</ServerSyncUpdateData>").unwrap() + "</ServerSyncUpdateData>".len();
    let is = |d: &str, u: uuid::Uuid| d.starts_with(&format!("{OPEN}<Id><UpdateID>{u}</UpdateID>"));
    let mut docs: Vec<String> = text[start..end]
        .split(OPEN)
        .skip(1)
        .map(|d| format!("{OPEN}{d}"))
        .filter(|d| withhold.is_none_or(|u| !is(d, u)))
        .collect();
    if docs.len() > 1 {
        docs.truncate(docs.len().div_ceil(2));
        truncated.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    for d in docs.iter_mut() {
        if corrupt.is_some_and(|u| is(d, u)) {
            let blob_at = d.find("<XmlUpdateBlob").unwrap();
            let close = d[blob_at..].find('>').unwrap() + blob_at + 1;
            d.insert_str(close, "&lt;upd:Update&gt;&lt;unclosed");
        }
    }
    format!("{}{}{}", &text[..start], docs.concat(), &text[end..])
}

/// A downstream survives what real upstreams do: refusals (a 503, ServerBusy with
/// Retry-After) are tried again, GetUpdateData answers that leave documents out are
/// completed, a document it cannot read is set aside and reported without holding the
/// sync back, and fetched again by the next sync; ServerChanged resets the anchors.
#[tokio::test(flavor = "multi_thread")]
async fn a_downstream_survives_what_real_upstreams_do() {
    use std::sync::atomic::Ordering::SeqCst;
    let Pair { _pg, dir: _dir, db_b, content_b, a, pool_a, pool_b, .. } = Pair::start(200, 61, None).await;
    let (victim,): (uuid::Uuid,) = sqlx::query_as(
        "SELECT update_id FROM revision WHERE update_type = 'Software' AND NOT is_bundle \
         GROUP BY update_id HAVING count(*) = 1 ORDER BY update_id LIMIT 1",
    )
    .fetch_one(&pool_a)
    .await
    .unwrap();
    let mischief = std::sync::Arc::new(Mischief::default());
    mischief.unavailable.store(2, SeqCst);
    mischief.busy.store(1, SeqCst);
    *mischief.corrupt.lock().unwrap() = Some(victim);
    let relay = misbehaving_relay(&a.gateway_url, mischief.clone()).await;

    let first = sync(&db_b, &relay, &content_b);
    assert_eq!(mischief.refused.load(SeqCst), 3, "every refusal was met and tried again");
    assert!(mischief.truncated.load(SeqCst) > 0, "answers were cut short");
    assert_eq!(first["revisions_quarantined"], 1, "{first}");
    let (held_a, held_b) = (revisions(&pool_a).await, revisions(&pool_b).await);
    let missing: Vec<_> = held_a.difference(&held_b).collect();
    assert_eq!(missing.len(), 1, "all but the unreadable document: {missing:?}");
    assert_eq!(missing[0].0, victim);
    let (quarantined, anchor): (i64, Option<String>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM quarantined_document), (SELECT sync_anchor FROM upstream_state LIMIT 1)",
    )
    .fetch_one(&pool_b)
    .await
    .unwrap();
    assert_eq!(quarantined, 1);
    assert!(anchor.is_some(), "the sync committed its anchor all the same");

    let quarantined_now = |pool: PgPool| async move {
        sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM quarantined_document").fetch_one(&pool).await.unwrap().0
    };

    // The upstream mends the document: the next sync, a delta that lists nothing new, asks
    // for it again and stores it.
    *mischief.corrupt.lock().unwrap() = None;
    let second = sync(&db_b, &relay, &content_b);
    assert_eq!(second["revisions_quarantined"], 0, "{second}");
    assert!(mischief.anchored.lock().unwrap().iter().rev().take(2).all(|a| *a), "a delta sync");
    assert_eq!(revisions(&pool_b).await, revisions(&pool_a).await, "B holds everything A holds");
    assert_eq!(quarantined_now(pool_b.clone()).await, 0, "released once stored");

    // A new revision arrives unreadable, then the upstream no longer sends it at all: the
    // revision is forgotten, and the sync does not fail over it.
    let number = import_next_revision(&pool_a, victim).await - 1;
    *mischief.corrupt.lock().unwrap() = Some(victim);
    assert_eq!(sync(&db_b, &relay, &content_b)["revisions_quarantined"], 1);
    *mischief.corrupt.lock().unwrap() = None;
    *mischief.withhold.lock().unwrap() = Some(victim);
    let fourth = sync(&db_b, &relay, &content_b);
    assert_eq!(fourth["revisions_quarantined"], 0, "{fourth}");
    assert_eq!(quarantined_now(pool_b.clone()).await, 0, "forgotten");
    assert!(!revisions(&pool_b).await.contains(&(victim, number + 1)));

    // The upstream says it changed servers: B resets its anchors and starts over (the next
    // GetRevisionIdList carries none), and takes in what the anchors had left behind.
    *mischief.withhold.lock().unwrap() = None;
    mischief.server_changed.store(true, SeqCst);
    mischief.anchored.lock().unwrap().clear();
    let fifth = sync(&db_b, &relay, &content_b);
    assert_eq!(mischief.changed_told.load(SeqCst), 1);
    assert_eq!(mischief.anchored.lock().unwrap().first(), Some(&false), "started over from no anchor: {fifth}");
    assert_eq!(revisions(&pool_b).await, revisions(&pool_a).await, "B holds everything A holds");
}
