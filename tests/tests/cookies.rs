//! Cookies a client should not have: tampered, expired, sealed by another server, from an
//! older configuration. Each gets the MS-WUSP fault a client knows how to recover from.
//! And cookie keys rotate (`WSUS_COOKIE_KEYS`) without clients noticing.

use base64::Engine as _;
use uuid::Uuid;
use wsus_cookie::{ClientCookie, Keys, Purpose};
use wsus_e2e::agent::Agent;
use wsus_e2e::{PgCluster, System};

const KEY: [u8; 32] = [42; 32];

fn sealed(c: &ClientCookie, keys: &Keys) -> String {
    base64::engine::general_purpose::STANDARD.encode(c.seal(keys))
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_cookies_get_the_specified_faults() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let key_setting = format!("k1:{}", base64::engine::general_purpose::STANDARD.encode(KEY));
    let system = System::start_with(&db, None, &[("WSUS_COOKIE_KEYS", key_setting)]);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;
    let keys = Keys::new(&[("k1".to_owned(), KEY)]).unwrap();

    let mut agent = Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    // Read back what the server sealed (the test knows the key).
    let (_, data) = agent.cookie().unwrap();
    let mine = ClientCookie::open(&keys, &base64::engine::general_purpose::STANDARD.decode(&data).unwrap()).unwrap();
    assert_eq!(mine.client_id, agent.client_id);
    assert!(mine.catalog_version > 0, "a completed scan is remembered");

    let cases = [
        (ClientCookie { expires_at: chrono::Utc::now().timestamp() - 10, ..mine.clone() }, &keys, "CookieExpired"),
        (ClientCookie { server_id: Uuid::new_v4(), ..mine.clone() }, &keys, "ServerChanged"),
        (ClientCookie { config_last_change: mine.config_last_change - 1, ..mine.clone() }, &keys, "ConfigChanged"),
    ];
    for (cookie, k, expected) in cases {
        agent.set_cookie_data(&sealed(&cookie, k));
        let fault = agent.sync_updates_page().await.unwrap_err();
        assert_eq!((fault.status, fault.error_code.as_str()), (500, expected));
    }
    // Sealed with a key this server does not have; and bytes flipped.
    let foreign = Keys::new(&[("k1".to_owned(), [7; 32])]).unwrap();
    agent.set_cookie_data(&sealed(&mine, &foreign));
    assert_eq!(agent.sync_updates_page().await.unwrap_err().error_code, "InvalidCookie");
    let mut flipped = base64::engine::general_purpose::STANDARD.decode(&data).unwrap();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    agent.set_cookie_data(&base64::engine::general_purpose::STANDARD.encode(flipped));
    assert_eq!(agent.sync_updates_page().await.unwrap_err().error_code, "InvalidCookie");
    agent.set_cookie_data("not base64 at all!");
    assert_eq!(agent.sync_updates_page().await.unwrap_err().error_code, "InvalidCookie");

    // A client told InvalidCookie drops its cookie and recovers by doing the handshake again.
    agent.drop_cookie();
    agent.handshake(false).await.unwrap();
    agent.scan().await.unwrap();

    // A downstream server's expired cookie is InvalidCookie: MS-WSUSSS 2.2.9.3 lists the
    // codes a server-to-server fault may carry, and CookieExpired is not among them; a
    // real downstream authorizes again on InvalidCookie and stops on what it does not know.
    let server_cookie = ClientCookie {
        client_id: Uuid::new_v4().to_string(),
        expires_at: chrono::Utc::now().timestamp() - 10,
        ..mine.clone()
    };
    let data = base64::engine::general_purpose::STANDARD.encode(server_cookie.seal_for(&keys, Purpose::Server));
    let ns = "http://www.microsoft.com/SoftwareDistribution";
    let body = format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><GetConfigData xmlns=\"{ns}\"><cookie><Expiration>2026-10-04T20:09:26Z</Expiration><EncryptedData>{data}</EncryptedData></cookie></GetConfigData></soap:Body></soap:Envelope>"
    );
    let answer = http
        .post(format!("{}/ServerSyncWebService/ServerSyncWebService.asmx", system.gateway_url))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", format!("\"{ns}/GetConfigData\""))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 500);
    let text = answer.text().await.unwrap();
    assert!(text.contains("<ErrorCode>InvalidCookie</ErrorCode>"), "{text}");
}

fn setting(keys: &[(&str, [u8; 32])]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    keys.iter().map(|(id, k)| format!("{id}:{}", b64.encode(k))).collect::<Vec<_>>().join(",")
}

fn opens(keys: &Keys, data: &str) -> Option<ClientCookie> {
    ClientCookie::open(keys, &base64::engine::general_purpose::STANDARD.decode(data).ok()?).ok()
}

/// A new key goes first (it seals) with the old one after it (it still opens): clients
/// keep their cookies and are moved to the new key on their next call. Once the old key
/// is retired, a cookie only it opens is InvalidCookie, and the client authorises again.
#[tokio::test(flavor = "multi_thread")]
async fn cookie_keys_rotate_without_logging_clients_out() {
    const NEW: [u8; 32] = [43; 32];
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let mut system = System::start_with(&db, None, &[("WSUS_COOKIE_KEYS", setting(&[("k1", KEY)]))]);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;
    let (only_old, only_new) =
        (Keys::new(&[("k1".to_owned(), KEY)]).unwrap(), Keys::new(&[("k2".to_owned(), NEW)]).unwrap());

    let mut agent = Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    let (_, sealed_by_old) = agent.cookie().unwrap();
    let before = opens(&only_old, &sealed_by_old).expect("sealed with k1");
    assert!(opens(&only_new, &sealed_by_old).is_none());

    // Rotation: k2 seals, k1 still opens. The client's cookie is taken, and the one it gets
    // back is sealed with k2 and carries the same client and scan state.
    system.gateway.restart_with(&[("WSUS_COOKIE_KEYS", setting(&[("k2", NEW), ("k1", KEY)]))]);
    system.wait_ready(&http).await;
    agent.sync_updates_page().await.expect("a k1 cookie is still accepted");
    let (_, resealed) = agent.cookie().unwrap();
    let after = opens(&only_new, &resealed).expect("the renewed cookie is sealed with k2");
    assert!(opens(&only_old, &resealed).is_none());
    assert_eq!((after.client_id.as_str(), after.server_id), (before.client_id.as_str(), before.server_id));
    assert!(after.catalog_version >= before.catalog_version);

    // k1 retired: the k2 cookie keeps working; one only k1 opens is InvalidCookie.
    system.gateway.restart_with(&[("WSUS_COOKIE_KEYS", setting(&[("k2", NEW)]))]);
    system.wait_ready(&http).await;
    agent.sync_updates_page().await.expect("a k2 cookie is accepted");
    agent.set_cookie_data(&sealed_by_old);
    let fault = agent.sync_updates_page().await.unwrap_err();
    assert_eq!((fault.status, fault.error_code.as_str()), (500, "InvalidCookie"));

    // The client recovers as WUA does: a new handshake, and a cookie sealed with k2.
    agent.drop_cookie();
    agent.handshake(false).await.unwrap();
    agent.scan().await.unwrap();
    let (_, fresh) = agent.cookie().unwrap();
    assert_eq!(opens(&only_new, &fresh).expect("sealed with k2").client_id, agent.client_id);
    drop(pg);
}
