//! Hostile and broken requests against a running client-gateway: each gets a fault or a
//! 4xx quickly, nothing leaks, and the gateway goes on serving clients afterwards.

use std::time::{Duration, Instant};

use wsus_e2e::agent::Agent;
use wsus_e2e::{PgCluster, System};

const CLIENT: &str = "/ClientWebService/client.asmx";
const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const CLIENT_NS: &str = "http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService";

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{SOAP_NS}\"><soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

/// (what, path, SOAPAction, body)
fn cases() -> Vec<(&'static str, &'static str, String, Vec<u8>)> {
    let get_config = format!("\"{CLIENT_NS}/GetConfig\"");
    let sync_updates = format!("\"{CLIENT_NS}/SyncUpdates\"");
    let laughs = {
        let mut dtd = String::from("<!DOCTYPE lolz [<!ENTITY lol \"lol\">");
        for i in 1..10 {
            let prev = if i == 1 { "lol".to_owned() } else { format!("lol{}", i - 1) };
            dtd.push_str(&format!("<!ENTITY lol{i} \"{}\">", format!("&{prev};").repeat(10)));
        }
        dtd.push(']');
        dtd.push('>');
        format!("<?xml version=\"1.0\"?>{dtd}{}", envelope("<GetConfig>&lol9;</GetConfig>"))
    };
    let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    let huge_array = envelope(&format!(
        "<SyncUpdates xmlns=\"{CLIENT_NS}\"><parameters><InstalledNonLeafUpdateIDs>{}</InstalledNonLeafUpdateIDs></parameters></SyncUpdates>",
        "<int>1</int>".repeat(400_000)
    ));
    let mut invalid_utf8 =
        envelope(&format!("<GetConfig xmlns=\"{CLIENT_NS}\"><protocolVersion>2.0</protocolVersion></GetConfig>"))
            .into_bytes();
    let at = invalid_utf8.len() / 2;
    invalid_utf8.splice(at..at, [0xff, 0xfe, 0xc3]);
    vec![
        (
            "an external entity",
            CLIENT,
            get_config.clone(),
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
                envelope("<GetConfig>&e;</GetConfig>")
            )
            .into_bytes(),
        ),
        ("billion laughs", CLIENT, get_config.clone(), laughs.into_bytes()),
        ("deep nesting", CLIENT, get_config.clone(), envelope(&deep).into_bytes()),
        ("a 100 MB body", CLIENT, get_config.clone(), vec![b'<'; 100 << 20]),
        ("400,000 ids", CLIENT, sync_updates, huge_array.into_bytes()),
        (
            "a wrong envelope namespace",
            CLIENT,
            get_config.clone(),
            envelope("<GetConfig/>").replace(SOAP_NS, "urn:not-soap").into_bytes(),
        ),
        ("truncated XML", CLIENT, get_config.clone(), envelope("<GetConfig>").as_bytes()[..60].to_vec()),
        ("a wrong SOAPAction", CLIENT, "\"urn:nothing/Here\"".to_owned(), envelope("<GetConfig/>").into_bytes()),
        ("invalid UTF-8", CLIENT, get_config.clone(), invalid_utf8),
        (
            "UTF-16 declared, not sent",
            CLIENT,
            get_config.clone(),
            envelope("<GetConfig/>").replace("utf-8", "utf-16").into_bytes(),
        ),
        (
            "an overflowing integer",
            CLIENT,
            get_config,
            envelope(&format!(
                "<GetConfig xmlns=\"{CLIENT_NS}\"><protocolVersion>99999999999999999999.-1</protocolVersion></GetConfig>"
            ))
            .into_bytes(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_get_faults_quickly_and_the_gateway_keeps_serving() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let system = System::start(&db);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;

    for (what, path, action, body) in cases() {
        let started = Instant::now();
        let r = http
            .post(format!("{}{path}", system.gateway_url))
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", action)
            .body(body)
            .send()
            .await;
        let elapsed = started.elapsed();
        // A refused upload may close the connection before the client finished sending.
        let Ok(r) = r else {
            assert!(elapsed < Duration::from_secs(10), "{what}: no answer for {elapsed:?}");
            continue;
        };
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        assert!(elapsed < Duration::from_secs(10), "{what}: took {elapsed:?}");
        assert!(matches!(status, 400 | 404 | 413 | 415 | 500), "{what}: HTTP {status}: {text:.300}");
        if status == 500 {
            assert!(text.contains("Fault"), "{what}: a 500 without a SOAP fault: {text:.300}");
        }
        assert!(!text.contains("root:"), "{what}: the answer shows a local file");
        assert!(!text.contains("lollollol"), "{what}: an entity was expanded");
    }

    for path in ["/Content/../../etc/passwd", "/Content/%2e%2e/%2e%2e/etc/passwd", "/Content/49/..%2f..%2fetc%2fpasswd"]
    {
        let r = http.get(format!("{}{path}", system.gateway_url)).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        assert!(matches!(status, 400 | 404), "{path}: HTTP {status}");
        assert!(!text.contains("root:"), "{path}: the answer shows a local file");
    }

    // Still serving: a client gets through a whole scan.
    let mut agent = Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    assert!(system.gateway.log().find("panicked").is_none(), "the gateway panicked");
}
