//! A simulated Windows Update Agent against the real binaries: handshake, a full scan of
//! a generated catalog with one approval, extended info, reports; then a rescan, and the
//! approval removed; and the faults a bad client gets.

use std::time::Duration;

use sqlx::PgPool;
use wsus_e2e::agent::{Agent, Device};
use wsus_e2e::store::{StoreKind, TestStore};
use wsus_e2e::{PgCluster, System};
use wsus_store::approvals::{self, Action, Approval};

#[tokio::test(flavor = "multi_thread")]
async fn a_client_scans_downloads_metadata_and_reports() {
    scenario(StoreKind::Directory).await;
}

/// The same with the content in a bucket of a real S3 server: every answer about
/// `/Content/` is the same as from a directory.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_scans_downloads_metadata_and_reports_with_content_in_a_bucket() {
    scenario(StoreKind::Bucket).await;
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
async fn scenario(kind: StoreKind) {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 1200, seed: 11, ..Default::default() };
    let generated = dir.path().join("content");
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), Some(&generated)).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));
    // A bucket is filled through the S3 API; its services' own directory stays empty.
    let store = match kind {
        StoreKind::Directory => TestStore::directory(&generated),
        StoreKind::Bucket => TestStore::bucket(&dir.path().join("staging"), "site-a"),
    };
    assert!(store.fill_from(&generated).await > 0);

    let pool = PgPool::connect(&db).await.unwrap();
    let (bundle,): (uuid::Uuid,) =
        sqlx::query_as("SELECT update_id FROM revision WHERE is_bundle ORDER BY revision_id DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    approvals::approve(
        &pool,
        &Approval {
            update_id: bundle,
            group_id: wsus_store::ALL_COMPUTERS,
            action: Action::Install,
            deadline: None,
            admin_name: None,
        },
    )
    .await
    .unwrap();

    let settings = store.settings();
    let system = System::start_full(&db, Some(store.dir()), &settings, &settings);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;

    // Standard SOAP tooling can read the service descriptions, with this server's address.
    let wsdl = http.get(format!("{}/ClientWebService/Client.asmx?wsdl", system.gateway_url)).send().await.unwrap();
    assert_eq!(wsdl.status(), 200);
    let wsdl = wsdl.text().await.unwrap();
    assert!(wsdl.contains(&format!("location=\"{}/ClientWebService/Client.asmx\"", system.gateway_url)), "{wsdl}");

    let mut agent = Agent::new(&system.gateway_url);
    // Without registering, a scan is refused with RegistrationRequired.
    agent.handshake(false).await.unwrap();
    let refused = agent.scan().await.unwrap_err();
    assert_eq!(refused.error_code, "RegistrationRequired", "{refused}");
    agent.register().await.unwrap();

    let scan = agent.scan().await.unwrap();
    let (latest,): (i64,) =
        sqlx::query_as("SELECT count(DISTINCT update_id) FROM revision WHERE update_type <> 'Driver'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(scan.new.len() as i64, latest, "the whole generated catalog and the three real categories");

    // A machine on which one detectoid evaluates as not installed never gets the updates
    // that need it.
    let (detectoid,): (uuid::Uuid,) = sqlx::query_as(
        "SELECT p.update_id FROM prerequisite p JOIN revision r ON r.update_id = p.update_id \
         WHERE r.update_type = 'Detectoid' GROUP BY p.update_id ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut partial = Agent::new(&system.gateway_url);
    partial.absent.insert(detectoid);
    partial.handshake(true).await.unwrap();
    let fewer = partial.scan().await.unwrap();
    assert!(fewer.new.len() < scan.new.len(), "{} < {}", fewer.new.len(), scan.new.len());
    assert!(scan.pages > 2, "paged");
    assert!(
        agent.xpress_responses.load(std::sync::atomic::Ordering::Relaxed) > scan.pages / 2,
        "Xpress-encoded answers"
    );
    let install: Vec<_> = agent.received.iter().filter(|(_, r)| r.action == "Install").collect();
    assert_eq!(install.len(), 1, "the approved bundle");
    assert!(install[0].1.deployment_id >= 1000);
    // Unapproved updates come for a status check, categories and detectoids to evaluate,
    // bundle members as Bundle (captures/wsus-m0-native/flow/000012).
    for action in ["Bundle", "Evaluate", "PreDeploymentCheck"] {
        assert!(agent.received.values().any(|r| r.action == action), "{action}");
    }
    assert!(
        agent.received.values().all(|r| r.core.starts_with("<UpdateIdentity ")),
        "the Core fragment, unescaped by the client"
    );

    // RefreshCache maps what the client holds back to revision ids, less bundle members
    // (as the real server does: the client syncs those again).
    let refreshed = agent.refresh_cache().await.unwrap();
    let not_bundle = agent.received.values().filter(|r| r.action != "Bundle").count();
    assert_eq!(refreshed.len(), not_bundle);
    assert!(refreshed.iter().all(|(id, action)| agent.received.get(id).is_some_and(|r| &r.action == action)));

    // The driver pass: the newest driver for a device with an older one installed.
    let hwid = wsus_catalog_gen::driver_hardware_id(0);
    let (drivers, not_needed) =
        agent.driver_pass(&[Device::with_driver(&hwid, Some(("2025-01-15", "281474976710656")))], &[]).await.unwrap();
    assert_eq!(drivers.len(), 1, "one driver for the one device");
    assert!(!not_needed, "the catalog holds drivers");
    let (offered,): (String,) =
        sqlx::query_as("SELECT d.hardware_id || ' ' || d.driver_ver_version FROM driver d WHERE d.revision_id = $1")
            .bind(drivers[0])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(offered, format!("{hwid} {}", wsus_metadata::pack_driver_version("1.0.2.0").unwrap()));
    let (none, _) = agent.driver_pass(&[Device::with_driver("USB\\VID_0000&PID_0000", None)], &[]).await.unwrap();
    assert!(none.is_empty());

    // Extended info for a leaf with a file: its fragments and where to download it.
    let leaf = agent.received.iter().find(|(_, r)| r.is_leaf && r.action == "Bundle").map(|(id, _)| *id).unwrap();
    let (fragments, files) = agent.extended_info(&[leaf, 999_999]).await.unwrap();
    assert!(fragments.iter().any(|(id, x)| *id == leaf && x.starts_with("<ExtendedProperties")), "{fragments:?}");
    assert!(
        fragments.iter().any(|(id, x)| *id == leaf && x.starts_with("<LocalizedProperties><Language>en</Language>"))
    );
    let host = system.gateway_url.trim_start_matches("http://");
    assert!(files.iter().any(|(_, url)| url.starts_with(&format!("http://{host}/Content/"))), "{files:?}");

    // The file downloads in shuffled Range pieces and matches its digests.
    let extended = &fragments.iter().find(|(id, x)| *id == leaf && x.starts_with("<ExtendedProperties")).unwrap().1;
    let meta = wsus_e2e::agent::FileMeta::from_extended(extended);
    assert_eq!(meta.len(), 1);
    let url = &files.iter().find(|(d, _)| *d == meta[0].sha1).unwrap().1;
    let bytes = agent.download(url, &meta[0], 1000).await.unwrap();
    assert_eq!(bytes.len() as u64, meta[0].size);
    let head = http.head(url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"].to_str().unwrap(), meta[0].size.to_string());
    // The same validators on HEAD and GET, from either store: the ETag is the SHA-1.
    let got = http.get(url).header("Range", "bytes=0-0").send().await.unwrap();
    assert_eq!(got.status(), 206);
    for validator in ["etag", "last-modified"] {
        assert_eq!(head.headers().get(validator), got.headers().get(validator), "{validator}");
    }
    let sha1 = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &meta[0].sha1).unwrap();
    assert_eq!(head.headers()["etag"].to_str().unwrap(), format!("\"{}\"", hex::encode(sha1)));
    let beyond = http.get(url).header("Range", format!("bytes={}-", meta[0].size)).send().await.unwrap();
    assert_eq!(beyond.status(), 416);
    // Every file offered for install, in shuffled 64 KiB pieces, each checked against its digests.
    let (offered, bytes) = agent.download_offered(64 * 1024).await.unwrap();
    assert!(offered >= 1 && bytes > 0, "{offered} files, {bytes} bytes");
    // A file the store lacks: 404, and sync-worker is asked to fetch it.
    let missing = url.replace(&url[url.len() - 44..url.len() - 4], "0000000000000000000000000000000000000000");
    let missing = missing.replace(&format!("/Content/{}/", &url[url.len() - 47..url.len() - 45]), "/Content/00/");
    assert_eq!(http.get(&missing).send().await.unwrap().status(), 404);
    // A catalog file gone from the store: 404, and a download request is queued.
    let stored_path = store.served_path(url.rsplit("/Content/").next().unwrap());
    std::fs::remove_file(&stored_path).unwrap();
    assert_eq!(http.get(url).send().await.unwrap().status(), 404);
    assert_eq!(wsus_e2e::client_misses_queued(&pool).await, 1);
    let traversal = format!("{}/Content/00/..%2F..%2Fetc%2Fpasswd", system.gateway_url);
    assert_eq!(http.get(&traversal).send().await.unwrap().status(), 404);

    // Reports are stored (once, however often they are sent).
    let events: &[(i32, &str, &[&str])] =
        &[(147, "00000000-0000-0000-0000-000000000000", &["B=3"]), (183, &bundle.to_string(), &[])];
    let sent = agent.report(events, None).await.unwrap();
    agent.report(events, Some(&sent)).await.unwrap();
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM reporting_event WHERE computer_id = $1")
        .bind(&agent.client_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 2);
    let mut last_sync = None;
    for _ in 0..50 {
        let c = wsus_store::reporting::computer(&pool, &agent.client_id).await.unwrap().unwrap();
        assert_eq!(c.os_build_number, Some(26200));
        last_sync = c.last_sync_time;
        if last_sync.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last_sync.is_some(), "the completed scan was recorded");

    // A second scan with the cache brings nothing new.
    let again = agent.scan().await.unwrap();
    assert!(again.new.is_empty() && again.out_of_scope.is_empty() && again.changed.is_empty(), "{again:?}");

    // The approval goes: the next scan says so.
    approvals::unapprove(&pool, bundle, wsus_store::ALL_COMPUTERS).await.unwrap();
    let mut changed = Vec::new();
    for _ in 0..50 {
        changed = agent.scan().await.unwrap().changed;
        if !changed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].1, "PreDeploymentCheck", "unapproved again: a status check");

    // GetExtendedUpdateInfo2 by identity, with file URLs; SyncPrinterCatalog (no printers).
    let (leaf_update, leaf_rev): (uuid::Uuid, i32) =
        sqlx::query_as("SELECT update_id, revision_number FROM revision WHERE revision_id = $1")
            .bind(leaf)
            .fetch_one(&pool)
            .await
            .unwrap();
    let cookie = agent.cookie().unwrap();
    let cookie_xml =
        format!("<cookie><Expiration>{}</Expiration><EncryptedData>{}</EncryptedData></cookie>", cookie.0, cookie.1);
    let ns = "http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService";
    let info2 = agent
        .call("/ClientWebService/client.asmx", &format!("{ns}/GetExtendedUpdateInfo2"), &format!(
            "<GetExtendedUpdateInfo2 xmlns=\"{ns}\">{cookie_xml}<updateIDs><UpdateIdentity><UpdateID>{leaf_update}</UpdateID><RevisionNumber>{leaf_rev}</RevisionNumber></UpdateIdentity></updateIDs><infoTypes><XmlUpdateFragmentType>Extended</XmlUpdateFragmentType><XmlUpdateFragmentType>FileUrl</XmlUpdateFragmentType></infoTypes><locales><string>en</string></locales></GetExtendedUpdateInfo2>"))
        .await
        .unwrap();
    let result = &info2.children[0];
    assert_eq!(result.name, "GetExtendedUpdateInfo2Result");
    assert_eq!(result.children.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Updates", "FileLocations"]);
    let printers = agent
        .call("/ClientWebService/client.asmx", &format!("{ns}/SyncPrinterCatalog"), &format!(
            "<SyncPrinterCatalog xmlns=\"{ns}\">{cookie_xml}<installedNonLeafUpdateIDs/><printerUpdateIDs/></SyncPrinterCatalog>"))
        .await
        .unwrap();
    assert_eq!(printers.children[0].name, "SyncPrinterCatalogResult");
    assert!(printers.children[0].child("NewUpdates").is_none() && printers.children[0].child("NewCookie").is_some());

    // Inventory is never asked for.
    let rns = "http://www.microsoft.com/SoftwareDistribution";
    let inventory = agent
        .call("/ReportingWebService/ReportingWebService.asmx", &format!("{rns}/GetRequiredInventoryType"), &format!(
            "<GetRequiredInventoryType xmlns=\"{rns}\">{cookie_xml}<rulesId>00000000-0000-0000-0000-000000000000</rulesId><rulesVersion>1</rulesVersion></GetRequiredInventoryType>"))
        .await
        .unwrap();
    assert_eq!(inventory.children[0].value(), "0");

    // An oversize body is refused with a fault, not read whole.
    let huge = format!(
        "<GetConfig xmlns=\"{ns}\"><protocolVersion>{}</protocolVersion></GetConfig>",
        "9".repeat(9 * 1024 * 1024)
    );
    let fault = agent.call("/ClientWebService/client.asmx", &format!("{ns}/GetConfig"), &huge).await.unwrap_err();
    assert_eq!((fault.status, fault.error_code.as_str()), (500, "InvalidParameters"));

    // Bad cookies, and too many installed non-leaf ids.
    let mut forged = Agent::new(&system.gateway_url);
    forged.handshake(true).await.unwrap();
    forged.set_cookie_data("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(forged.scan().await.unwrap_err().error_code, "InvalidCookie");
    let mut greedy = Agent::new(&system.gateway_url);
    greedy.handshake(true).await.unwrap();
    greedy.installed_non_leaf = (1..=401).collect();
    let fault = greedy.sync_updates_page().await.unwrap_err();
    assert_eq!(
        (fault.status, fault.error_code.as_str(), fault.message.as_str()),
        (500, "InvalidParameters", "parameters.InstalledNonLeafUpdateIDs")
    );
}
