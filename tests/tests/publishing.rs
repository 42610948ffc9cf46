//! Local publishing end to end, with the real binaries: a signing certificate generated
//! through the API and exported, a package definition (samples/publishing) and its
//! installer published with `wsusctl publish`, the update approved and offered to a
//! simulated client, whose Cabinet download osslsigncode verifies against the exported
//! certificate and cabextract unpacks to the installer; a downstream server syncs it, its
//! content and all, and serves the same Cabinet; a re-publication arrives as a new
//! revision, an expiry takes it out of scans, and an unapproved package is deleted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sqlx::PgPool;
use uuid::{Uuid, uuid};
use wsus_e2e::agent::{Agent, FileMeta};
use wsus_e2e::{ADMIN_TOKEN, PgCluster, System, run_binary};
use wsus_testdata::cabinets::{cabextract, osslsigncode_verify};

const MSI_PACKAGE: Uuid = uuid!("3f0c1a52-8d7e-4b6a-9c21-5e4f7a9b0c11");
const EXE_PACKAGE: Uuid = uuid!("9a4d6e21-3b5c-4f7e-a8d9-0c1b2e3f4a55");

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/publishing").join(name)
}

fn wsusctl(system: &System, args: &[&str]) -> (bool, String) {
    let env =
        HashMap::from([("WSUS_API_URL", system.reporting_url.clone()), ("WSUS_API_TOKEN", ADMIN_TOKEN.to_owned())]);
    let (ok, out, err) = run_binary("wsusctl", args, &env);
    (ok, format!("{out}{err}"))
}

/// The installer the MSI sample runs: exactly the size its OriginFile says.
fn installer(dir: &Path) -> PathBuf {
    let path = dir.join("contoso-notes-2.4.1-x64.msi");
    let bytes: Vec<u8> = (0..1_048_576u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The client's scan, and the Cabinet of the revision of `update_id` it was offered:
/// downloaded through the gateway in Range pieces, checked against the metadata's digests.
async fn download_cabinet(gateway: &str, update_id: Uuid, dir: &Path) -> (Agent, PathBuf) {
    let mut agent = Agent::new(gateway);
    agent.handshake(true).await.unwrap();
    // The gateway takes the approval in as soon as it reloads its catalog.
    let mut offered = None;
    for _ in 0..50 {
        agent.scan().await.unwrap();
        offered = agent
            .received
            .iter()
            .find(|(_, r)| r.action == "Install" && r.core.contains(&update_id.to_string()))
            .map(|(id, _)| *id);
        if offered.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let seen: Vec<_> =
        agent.received.values().map(|r| (r.action.clone(), r.core.chars().take(120).collect::<String>())).collect();
    let id = offered.unwrap_or_else(|| panic!("{update_id} offered for install: {seen:#?}"));
    let id = &id;
    let (fragments, locations) = agent.extended_info(&[*id]).await.unwrap();
    let extended = &fragments.iter().find(|(_, x)| x.starts_with("<ExtendedProperties")).unwrap().1;
    assert!(extended.contains("MsiFile=\"contoso-notes-2.4.1-x64.msi\""), "{extended}");
    let meta = &FileMeta::from_extended(extended)[0];
    let (_, url) = locations.iter().find(|(d, _)| *d == meta.sha1).unwrap();
    assert!(url.starts_with(gateway), "{url}");
    let bytes = agent.download(url, meta, 256 * 1024).await.unwrap();
    let cab = dir.join(format!("{}.cab", Uuid::new_v4()));
    std::fs::write(&cab, bytes).unwrap();
    (agent, cab)
}

fn unpacked(cab: &Path, dir: &Path) -> Vec<u8> {
    let to = dir.join(format!("x-{}", Uuid::new_v4()));
    cabextract(cab, &to);
    std::fs::read(to.join("contoso-notes-2.4.1-x64.msi")).unwrap()
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn a_published_package_reaches_clients_signed_through_a_downstream_server() {
    let pg = PgCluster::start().unwrap();
    let (db_a, db_b) = (pg.create_database("uss").unwrap(), pg.create_database("dss").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let a = System::start_with(&db_a, Some(&dir.path().join("content-a")), &[]);
    let http = reqwest::Client::new();
    a.wait_ready(&http).await;
    let pool_a = PgPool::connect(&db_a).await.unwrap();

    // No certificate yet: publishing says so.
    let msi = installer(dir.path());
    let definition = sample("contoso-notes-2.4.1-msi.xml");
    let (ok, out) = wsusctl(&a, &["publish", definition.to_str().unwrap(), "--installer", msi.to_str().unwrap()]);
    assert!(!ok && out.contains("409") && out.contains("no signing certificate"), "{out}");

    // A self-signed certificate, generated and exported for clients.
    let (ok, out) = wsusctl(&a, &["--json", "publishing", "generate-certificate", "--name", "Contoso IT Publishing"]);
    assert!(ok, "{out}");
    let generated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(generated["subject"], "CN=Contoso IT Publishing");
    assert!(generated["days_left"].as_i64().unwrap() > 1000);
    let (ok, pem) = wsusctl(&a, &["publishing", "certificate", "--pem"]);
    assert!(ok && pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let pem_file = dir.path().join("publisher.pem");
    std::fs::write(&pem_file, &pem).unwrap();

    // Published: a new update, unapproved, under its vendor's and product's categories.
    let (ok, out) =
        wsusctl(&a, &["--json", "publish", definition.to_str().unwrap(), "--installer", msi.to_str().unwrap()]);
    assert!(ok, "{out}");
    let published: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(published["update_id"], MSI_PACKAGE.to_string());
    assert_eq!(published["revision_number"], 100);
    let update = http
        .get(format!("{}/api/v1/updates/{MSI_PACKAGE}", a.reporting_url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), 200);
    let update: serde_json::Value = update.json().await.unwrap();
    assert_eq!(update["title"], "Contoso Notes 2.4.1 (x64)", "{update}");
    let (products,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM revision WHERE update_type = 'Category' AND category_type IN ('Company', 'Product')",
    )
    .fetch_one(&pool_a)
    .await
    .unwrap();
    assert_eq!(products, 2, "Contoso, and Contoso Notes under it");

    // Approved, it is offered; the client's Cabinet verifies against the exported
    // certificate and unpacks to the installer.
    wsus_e2e::approve_for_all(&pool_a, MSI_PACKAGE).await;
    let (_, cab) = download_cabinet(&a.gateway_url, MSI_PACKAGE, dir.path()).await;
    let (ok, out) = osslsigncode_verify(&cab, &pem_file);
    assert!(ok, "{out}");
    assert_eq!(unpacked(&cab, dir.path()), std::fs::read(&msi).unwrap());

    // A downstream server syncs it: the update, its categories and (approved there) its
    // Cabinet, which its own gateway serves to its client, still verifying.
    let content_b = dir.path().join("content-b");
    let env_b = HashMap::from([
        ("DATABASE_URL", db_b.clone()),
        ("WSUS_UPSTREAM_URL", a.gateway_url.clone()),
        ("WSUS_CONTENT_DIR", content_b.display().to_string()),
        ("WSUS_SERVER_FQDN", "dss.e2e.test".to_owned()),
    ]);
    let sync_b = || {
        let (ok, out, err) = run_binary("sync-worker", &["sync", "--once", "--json"], &env_b);
        assert!(ok, "sync at B: {out}{err}");
    };
    sync_b();
    let pool_b = PgPool::connect(&db_b).await.unwrap();
    wsus_e2e::approve_for_all(&pool_b, MSI_PACKAGE).await;
    sync_b();
    let b = System::start_with(&db_b, Some(&content_b), &[]);
    b.wait_ready(&http).await;
    let (_, cab_b) = download_cabinet(&b.gateway_url, MSI_PACKAGE, dir.path()).await;
    assert_eq!(std::fs::read(&cab_b).unwrap(), std::fs::read(&cab).unwrap(), "the same signed Cabinet");
    assert!(osslsigncode_verify(&cab_b, &pem_file).0);

    // Published again (a corrected title): its next revision, offered in the old one's place.
    let revised = dir.path().join("revised.xml");
    let text = std::fs::read_to_string(&definition).unwrap().replacen(
        "<sdp:Title>Contoso Notes 2.4.1 (x64)</sdp:Title>",
        "<sdp:Title>Contoso Notes 2.4.1 (x64, revised)</sdp:Title>",
        1,
    );
    assert!(text.contains("(x64, revised)"));
    std::fs::write(&revised, text).unwrap();
    let (ok, out) =
        wsusctl(&a, &["--json", "publish", revised.to_str().unwrap(), "--installer", msi.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["revision_number"], 101);
    let (agent, _) = download_cabinet(&a.gateway_url, MSI_PACKAGE, dir.path()).await;
    let offered: Vec<_> = agent.received.values().filter(|r| r.core.contains(&MSI_PACKAGE.to_string())).collect();
    assert_eq!(offered.len(), 1, "one revision offered");
    assert!(offered[0].core.contains("RevisionNumber=\"101\""), "{}", offered[0].core);
    // And through the downstream server, whose approval follows the new revision.
    sync_b();
    let (mut client_b, _) = download_cabinet(&b.gateway_url, MSI_PACKAGE, dir.path()).await;
    let offered_b: Vec<_> = client_b.received.values().filter(|r| r.core.contains(&MSI_PACKAGE.to_string())).collect();
    assert_eq!(offered_b.len(), 1);
    assert!(offered_b[0].core.contains("RevisionNumber=\"101\""), "{}", offered_b[0].core);
    let held_b: Vec<i32> = client_b
        .received
        .iter()
        .filter(|(_, r)| r.core.contains(&MSI_PACKAGE.to_string()))
        .map(|(id, _)| *id)
        .collect();

    // Expired: its next revision says so, it is declined, and the client's next scan
    // drops what it held.
    let mut client = agent;
    let held: Vec<i32> =
        client.received.iter().filter(|(_, r)| r.core.contains(&MSI_PACKAGE.to_string())).map(|(id, _)| *id).collect();
    let (ok, out) = wsusctl(&a, &["--json", "publishing", "expire", &MSI_PACKAGE.to_string()]);
    assert!(ok, "{out}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["revision_number"], 102);
    let mut gone = Vec::new();
    for _ in 0..50 {
        gone.extend(client.scan().await.unwrap().out_of_scope);
        if held.iter().all(|h| gone.contains(h)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(held.iter().all(|h| gone.contains(h)), "held {held:?}, out of scope {gone:?}");
    let (ok, out) = wsusctl(&a, &["publishing", "expire", &MSI_PACKAGE.to_string()]);
    assert!(!ok && out.contains("409"), "expired once: {out}");
    let (ok, out) = wsusctl(&a, &["publish", definition.to_str().unwrap(), "--installer", msi.to_str().unwrap()]);
    assert!(!ok && out.contains("409") && out.contains("expired"), "an expired package is not published again: {out}");
    // The downstream server gets the expired revision, and its cleanup declines it (as
    // for any update whose newest revision expired), so its client drops it too.
    sync_b();
    let (ok, out, err) = run_binary("sync-worker", &["cleanup", "--once", "--json"], &env_b);
    assert!(ok, "cleanup at B: {out}{err}");
    let mut gone_b = Vec::new();
    for _ in 0..50 {
        gone_b.extend(client_b.scan().await.unwrap().out_of_scope);
        if held_b.iter().all(|h| gone_b.contains(h)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(held_b.iter().all(|h| gone_b.contains(h)), "held {held_b:?}, out of scope {gone_b:?}");

    // The offline export carries it: the update, its categories, its revisions.
    let export = dir.path().join("export.tar");
    let db_c = pg.create_database("offline").unwrap();
    let (ok, out, err) = run_binary(
        "sync-worker",
        &["export", export.to_str().unwrap()],
        &HashMap::from([("DATABASE_URL", db_a.clone())]),
    );
    assert!(ok, "export: {out}{err}");
    let (ok, out, err) = run_binary(
        "sync-worker",
        &["import", export.to_str().unwrap(), "--json"],
        &HashMap::from([("DATABASE_URL", db_c.clone())]),
    );
    assert!(ok, "import: {out}{err}");
    let revisions_of = |db: String| async move {
        let pool = PgPool::connect(&db).await.unwrap();
        sqlx::query_as::<_, (i32,)>("SELECT revision_number FROM revision WHERE update_id = $1 ORDER BY 1")
            .bind(MSI_PACKAGE)
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    let at_a = revisions_of(db_a.clone()).await;
    assert!(at_a.contains(&(102,)), "{at_a:?}");
    assert_eq!(revisions_of(db_c).await, at_a, "exported and imported");

    // Metadata only, and with no ProductName (filed, as WSUS files it, under "Locally
    // published packages"), then deleted while unapproved.
    let exe = dir.path().join("no-product.xml");
    let text = std::fs::read_to_string(sample("fabrikam-agent-5.1.0-exe.xml")).unwrap();
    std::fs::write(&exe, text.replace("<sdp:ProductName>Fabrikam Endpoint Agent</sdp:ProductName>", "")).unwrap();
    let (ok, out) = wsusctl(&a, &["--json", "publish", exe.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["file_sha1"], serde_json::Value::Null);
    let (ok, out) = wsusctl(&a, &["--json", "publishing", "list"]);
    assert!(ok, "{out}");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|p| p["product"] == "Locally published packages"), "{listed:?}");
    let (fallback,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM prerequisite p JOIN revision r USING (revision_id) WHERE r.update_id = $1 AND p.update_id = $2",
    )
    .bind(EXE_PACKAGE)
    .bind(uuid!("5cc25303-143f-40f3-a2ff-803a1db69955"))
    .fetch_one(&pool_a)
    .await
    .unwrap();
    assert_eq!(fallback, 1, "the update is under WSUS's Locally published packages product");
    let (ok, out) = wsusctl(&a, &["publishing", "delete", &EXE_PACKAGE.to_string()]);
    assert!(ok, "{out}");
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM revision WHERE update_id = $1")
        .bind(EXE_PACKAGE)
        .fetch_one(&pool_a)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let (ok, out) = wsusctl(&a, &["publishing", "delete", &EXE_PACKAGE.to_string()]);
    assert!(!ok && out.contains("404"), "{out}");

    // A package cannot take the id of an update this server did not publish.
    let taken = dir.path().join("taken.xml");
    let text = std::fs::read_to_string(&definition).unwrap();
    std::fs::write(&taken, text.replace(&MSI_PACKAGE.to_string(), "cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83")).unwrap();
    let (ok, out) = wsusctl(&a, &["publish", taken.to_str().unwrap(), "--installer", msi.to_str().unwrap()]);
    assert!(!ok && out.contains("409") && out.contains("did not publish"), "{out}");

    // What cannot be published is refused with the reason.
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, std::fs::read_to_string(&definition).unwrap().replace(" VendorName=\"Contoso\"", "")).unwrap();
    let (ok, out) = wsusctl(&a, &["publish", bad.to_str().unwrap(), "--installer", msi.to_str().unwrap()]);
    assert!(!ok && out.contains("400") && out.contains("VendorName"), "{out}");
    // (a new package: the sample's expired above)
    let fresh = dir.path().join("fresh.xml");
    let text = std::fs::read_to_string(&definition).unwrap();
    std::fs::write(&fresh, text.replace(&MSI_PACKAGE.to_string(), "0b7e6c1a-1111-4c2b-9d3e-5f6a7b8c9d0e")).unwrap();
    let other = dir.path().join("other.msi");
    std::fs::write(&other, vec![0u8; 1_048_576]).unwrap();
    let (ok, out) = wsusctl(&a, &["publish", fresh.to_str().unwrap(), "--installer", other.to_str().unwrap()]);
    assert!(!ok && out.contains("400") && out.contains("contoso-notes-2.4.1-x64.msi"), "{out}");
}
