//! A SyncUpdates whose bytes but for the cookie the gateway has seen before is answered
//! from what it decoded and scanned then (services/client-gateway/src/seen_requests.rs).
//! The answer must be the one a full parse gives, for every machine that sends those
//! bytes, before and after the catalog changes, and for every SyncUpdates the native
//! client sent a real WSUS (captures/wsus-m0-native). A request with an empty SOAPAction
//! takes the full parse (the fast path asks for one that names SyncUpdates), which is the
//! reference here.

use sqlx::PgPool;
use wsus_e2e::agent::{Agent, CLIENT_NS};
use wsus_e2e::{PgCluster, System};
use wsus_soap::Element;

const PATH: &str = "/ClientWebService/client.asmx";

/// The answer with the new cookie's sealed bytes and expiry blanked (they differ on
/// every call).
fn without_cookie(mut e: Element) -> Element {
    if e.name == "NewCookie" {
        e.children.clear();
        return e;
    }
    e.children = e.children.into_iter().map(without_cookie).collect();
    e
}

async fn both_ways(agent: &Agent) -> Element {
    let body = agent.sync_updates_body();
    let seen = agent.call(PATH, &format!("{CLIENT_NS}/SyncUpdates"), &body).await.expect("SyncUpdates");
    let again = agent.call(PATH, &format!("{CLIENT_NS}/SyncUpdates"), &body).await.expect("SyncUpdates again");
    let parsed = agent.call(PATH, "", &body).await.expect("SyncUpdates, full parse");
    let (seen, again, parsed) = (without_cookie(seen), without_cookie(again), without_cookie(parsed));
    assert_eq!(seen, parsed, "answered from the seen request vs parsed");
    assert_eq!(again, parsed, "answered again from the seen request vs parsed");
    seen
}

/// How many UpdateInfo an answer's `container` (NewUpdates, ChangedUpdates) holds.
fn count(answer: &Element, container: &str) -> usize {
    fn find<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
        if e.name == name {
            return Some(e);
        }
        e.children.iter().find_map(|c| find(c, name))
    }
    find(answer, container).map_or(0, |n| n.children.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_seen_before_is_answered_as_a_full_parse_answers_it() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("seen").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 600, seed: 5, ..Default::default() };
    wsus_catalog_gen::write(&opts, dir.path(), None).unwrap();
    wsus_e2e::import(&db, dir.path());
    let pool = PgPool::connect(&db).await.unwrap();
    assert!(wsus_e2e::approve_bundles(&pool, 5, false).await.unwrap() > 0);
    let system = System::start(&db);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;

    // A machine scans all; a second one holds the same cache, so sends the same bytes but
    // for its cookie.
    let mut first = Agent::new(&system.gateway_url);
    first.handshake(true).await.unwrap();
    first.scan().await.unwrap();
    let mut second = Agent::new(&system.gateway_url);
    second.installed_non_leaf = first.installed_non_leaf.clone();
    second.other_cached = first.other_cached.clone();
    second.handshake(true).await.unwrap();
    assert_eq!(
        first.sync_updates_body().split("</cookie>").nth(1),
        second.sync_updates_body().split("</cookie>").nth(1),
        "the two machines' requests differ but for the cookie"
    );
    let before_first = both_ways(&first).await;
    let before_second = both_ways(&second).await;
    // The first has been told its cached updates' deployments (its cookie says so), the
    // second, fresh from GetCookie, has not: the same ids, not the same answer.
    assert_ne!(before_first, before_second);

    // The catalog changes: what was computed for the old one is not answered again.
    let version = wsus_e2e::served_catalog_version(&http, &system.gateway_url).await.unwrap();
    assert!(wsus_e2e::approve_bundles(&pool, 5, false).await.unwrap() > 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while wsus_e2e::served_catalog_version(&http, &system.gateway_url).await.unwrap() <= version {
        assert!(std::time::Instant::now() < deadline, "the gateway did not load the new catalog");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let after_first = both_ways(&first).await;
    // The updates the first machine holds were offered unapproved; now approved, their
    // deployments are told again.
    assert!(
        count(&after_first, "ChangedUpdates") > count(&before_first, "ChangedUpdates"),
        "the approvals changed deployments: {} then {}",
        count(&before_first, "ChangedUpdates"),
        count(&after_first, "ChangedUpdates")
    );

    // What the native Windows 11 client sent a real WSUS (captures/wsus-m0-native, every
    // SyncUpdates: software, driver and category passes), our cookie in place of the lab's:
    // recognised from its bytes, answered as the full parse answers it.
    let (expiration, data) = first.cookie().expect("a cookie");
    let root = wsus_e2e::reference("captures/wsus-m0-native");
    let mut replayed = 0;
    for run in ["scan", "flow"] {
        let mut exchanges: Vec<_> = std::fs::read_dir(root.join(run)).unwrap().flatten().map(|e| e.path()).collect();
        exchanges.sort();
        for ex in exchanges.iter().filter(|ex| {
            std::fs::read_to_string(ex.join("meta.json")).is_ok_and(|m| m.contains("ClientWebService/SyncUpdates"))
        }) {
            let body = std::fs::read_to_string(ex.join("request.body")).unwrap();
            let inner = body.split("<s:Body>").nth(1).unwrap().split("</s:Body>").next().unwrap();
            let (head, rest) = inner.split_once("<Expiration>").unwrap();
            let (_, rest) = rest.split_once("</EncryptedData>").unwrap();
            let ours =
                format!("{head}<Expiration>{expiration}</Expiration><EncryptedData>{data}</EncryptedData>{rest}");
            let seen = first.call(PATH, &format!("{CLIENT_NS}/SyncUpdates"), &ours).await;
            let again = first.call(PATH, &format!("{CLIENT_NS}/SyncUpdates"), &ours).await;
            let parsed = first.call(PATH, "", &ours).await;
            let (seen, again, parsed) =
                (seen.map(without_cookie), again.map(without_cookie), parsed.map(without_cookie));
            assert!(parsed.is_ok(), "{}: {parsed:?}", ex.display());
            assert_eq!(seen, parsed, "{}", ex.display());
            assert_eq!(again, parsed, "{}", ex.display());
            replayed += 1;
        }
    }
    assert!(replayed >= 9, "{replayed} captured SyncUpdates replayed");

    // A seen request with a cookie that is not ours is refused as any other.
    let forged = first.sync_updates_body().replacen("<EncryptedData>", "<EncryptedData>AAAA", 1);
    let fault = first.call(PATH, &format!("{CLIENT_NS}/SyncUpdates"), &forged).await.unwrap_err();
    assert_eq!(fault.error_code, "InvalidCookie", "{fault:?}");
}
