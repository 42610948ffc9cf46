//! Hostile and broken requests against a running client-gateway: each gets the fault
//! MS-WUSP names for bad input (InvalidParameters, as the real server answers the capture
//! below) quickly, nothing leaks, memory stays bounded, and the gateway goes on serving
//! clients afterwards.

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

/// Peak resident memory of a gateway serving no catalog, whatever these requests do. The
/// SOAP limits hold a request to an 8 MiB body and 200,000 parsed elements (tens of MB
/// while parsed), so the 100 MB body, entity expansion or an unbounded parse would
/// each cross it; the process alone needs about 25 MiB.
const PEAK_RSS_BOUND_KIB: u64 = 96 * 1024;

/// `VmRSS` or `VmHWM` (the peak) of a process, in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The text between `<tag>` and the next `<`.
fn between<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    text.split(&format!("<{tag}>")).nth(1)?.split('<').next()
}

/// (what, path, SOAPAction, body). Every one is bad input: InvalidParameters. `cookie`
/// (Expiration, EncryptedData) is a valid one of this server's.
fn cases(cookie: &(String, String)) -> Vec<(&'static str, &'static str, String, Vec<u8>)> {
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
    // A real client's SyncUpdates with more InstalledNonLeafUpdateIDs than WSUS accepts,
    // which the real server refused with InvalidParameters; with a cookie of this server's
    // in place of the (sanitized) one it carried.
    let captured = String::from_utf8(wsus_e2e::read_reference("captures/wsus-m0/000141/request.body")).unwrap();
    let too_many_non_leaf = captured
        .replace(between(&captured, "Expiration").unwrap(), &cookie.0)
        .replace(between(&captured, "EncryptedData").unwrap(), &cookie.1)
        .into_bytes();
    vec![
        ("401 installed non-leaf ids (a real request)", CLIENT, sync_updates.clone(), too_many_non_leaf),
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
            "an unknown operation",
            CLIENT,
            format!("\"{CLIENT_NS}/FormatDisk\""),
            envelope(&format!("<FormatDisk xmlns=\"{CLIENT_NS}\"/>")).into_bytes(),
        ),
        (
            "a wrong envelope namespace",
            CLIENT,
            get_config.clone(),
            envelope("<GetConfig/>").replace(SOAP_NS, "urn:not-soap").into_bytes(),
        ),
        (
            // WCF answers only the contract's namespace (MS-WUSP 2.2.1: the Client service's
            // elements are qualified by its namespace).
            "an operation in another namespace",
            CLIENT,
            get_config.clone(),
            envelope("<GetConfig xmlns=\"urn:evil\"><protocolVersion>2.90</protocolVersion></GetConfig>").into_bytes(),
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
    let pid = system.gateway.pid();
    let mut rss_after = Vec::new();
    let mut agent = Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();

    for (what, path, action, body) in cases(&agent.cookie().unwrap()) {
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
        assert_eq!(status, 500, "{what}: {text:.300}");
        assert_eq!(between(&text, "ErrorCode"), Some("InvalidParameters"), "{what}: {text:.300}");
        assert!(!text.contains("root:"), "{what}: the answer shows a local file");
        assert!(!text.contains("lollollol"), "{what}: an entity was expanded");
        if what.contains("real request") {
            // As the real server names it.
            assert!(text.contains("<Message>parameters.InstalledNonLeafUpdateIDs</Message>"), "{text}");
        }
        rss_after.push((what, memory_kib(pid, "VmRSS:")));
    }

    for path in ["/Content/../../etc/passwd", "/Content/%2e%2e/%2e%2e/etc/passwd", "/Content/49/..%2f..%2fetc%2fpasswd"]
    {
        let r = http.get(format!("{}{path}", system.gateway_url)).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        assert!(matches!(status, 400 | 404), "{path}: HTTP {status}");
        assert!(!text.contains("root:"), "{path}: the answer shows a local file");
    }

    let peak = memory_kib(pid, "VmHWM:");
    eprintln!("RSS after each case (KiB): {rss_after:?}; peak {peak} KiB");
    assert!(peak < PEAK_RSS_BOUND_KIB, "the gateway peaked at {peak} KiB: {rss_after:?}");

    // Still serving: a client gets through a whole scan.
    agent.scan().await.unwrap();

    // A cookie the server cannot open (the sanitized one of the capture): InvalidCookie.
    let captured = String::from_utf8(wsus_e2e::read_reference("captures/wsus-m0/000141/request.body")).unwrap();
    let sealed = between(&captured, "EncryptedData").unwrap();
    let mut forged = Agent::new(&system.gateway_url);
    forged.handshake(true).await.unwrap();
    forged.set_cookie_data(sealed);
    let refused = forged.scan().await.unwrap_err();
    assert_eq!((refused.status, refused.error_code.as_str()), (500, "InvalidCookie"), "{refused}");
    assert!(system.gateway.log().find("panicked").is_none(), "the gateway panicked");
}
