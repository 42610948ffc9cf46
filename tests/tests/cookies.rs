//! Cookies a client should not have: tampered, expired, sealed by another server, from an
//! older configuration. Each gets the MS-WUSP fault a client knows how to recover from.

use base64::Engine as _;
use uuid::Uuid;
use wsus_cookie::{ClientCookie, Keys};
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
}
