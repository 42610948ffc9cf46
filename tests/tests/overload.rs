//! Overload: many more concurrent full scans than the gateway admits. The surplus is
//! refused with ServerBusy faults carrying Retry-After, event reports and a downstream
//! server's sync go through all the while, nothing fails any other way,
//! every client that retries gets through, memory stays bounded, and once the storm is
//! over a client scans at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wsus_e2e::agent::{Agent, Fault, USER_AGENT};
use wsus_e2e::{PgCluster, System};

/// Small limits, so a CI-sized storm is far beyond them.
const MAX_INFLIGHT: usize = 2;
const MAX_QUEUED: usize = 4;
const RETRY_AFTER: u64 = 7;
const AGENTS: usize = 64;
/// Clients that post SyncUpdates directly, to see the HTTP headers of each answer.
const PROBERS: usize = 8;
const STORM: Duration = Duration::from_secs(5);
/// The storm's clients finish their last scan within this.
const DRAIN: Duration = Duration::from_secs(120);
/// A queued request holds a connection and its headers, not its body, and at most
/// MAX_INFLIGHT handlers run: the storm may add little to what one client's scan needs.
/// 64 MiB leaves room for allocator slack and the connections of 72 clients.
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A fault the admission control sends (not one of an operation's own).
fn is_shed(f: &Fault) -> bool {
    f.status == 500 && f.error_code == "ServerBusy" && f.message.starts_with("server busy:")
}

#[derive(Default)]
struct Tally {
    /// ServerBusy faults the agents got.
    shed: AtomicU64,
    /// Answers the probers got: 200s, and ServerBusy faults with a good Retry-After.
    probed_ok: AtomicU64,
    probed_shed: AtomicU64,
    /// Event reports stored during the storm (reports have their own slots: none is shed).
    reported: AtomicU64,
    /// Rounds of a downstream server's sync calls completed during the storm.
    downstream_syncs: AtomicU64,
    /// Anything else, described.
    failures: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}

/// Evaluates `$call` until it succeeds, sleeping briefly after each ServerBusy (the real
/// client waits far longer; the test has to finish); any other fault is recorded and
/// gives None.
macro_rules! until_admitted {
    ($tally:expr, $what:expr, $deadline:expr, $call:expr) => {
        loop {
            match $call.await {
                Ok(v) => break Some(v),
                Err(f) if is_shed(&f) => {
                    $tally.shed.fetch_add(1, Ordering::Relaxed);
                    if Instant::now() > $deadline {
                        $tally.fail(format!("{}: still refused after {DRAIN:?}", $what));
                        break None;
                    }
                    tokio::time::sleep(Duration::from_millis(40 + jitter_ms())).await;
                }
                Err(f) => {
                    $tally.fail(format!("{}: {f}", $what));
                    break None;
                }
            }
        }
    };
}

/// 0..40 ms of jitter, so retries do not march in step.
fn jitter_ms() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 40)
}

/// Handshakes, then scans again and again until the storm ends; returns the scans done.
async fn storm_agent(base: String, tally: Arc<Tally>, storm_ends: Instant, full_catalog: usize) -> usize {
    let deadline = storm_ends + DRAIN;
    let mut agent = Agent::new(&base);
    // `handshake` starts over from GetConfig: a refused step repeats the whole exchange.
    if until_admitted!(tally, "handshake", deadline, agent.handshake(true)).is_none() {
        return 0;
    }
    let mut scans = 0;
    loop {
        // Each scan from empty caches, as a machine asked for a full scan does. A refused
        // page is asked again: the agent keeps what earlier pages brought.
        agent.installed_non_leaf.clear();
        agent.other_cached.clear();
        agent.received.clear();
        if until_admitted!(tally, "scan", deadline, agent.scan()).is_none() {
            return scans;
        }
        if agent.received.len() != full_catalog {
            tally.fail(format!("a scan brought {} updates, not {full_catalog}", agent.received.len()));
            return scans;
        }
        scans += 1;
        if Instant::now() >= storm_ends {
            return scans;
        }
    }
}

/// Posts SyncUpdates with `agent`'s cookie until the storm ends, checking the HTTP of each
/// answer: 200, or 500 with a ServerBusy fault, a numeric Retry-After and Connection: close.
/// Reports events all through the storm: the scans' slots are full, the reports' are not.
async fn reporter(agent: Agent, tally: Arc<Tally>, storm_ends: Instant) {
    let nil = "00000000-0000-0000-0000-000000000000";
    while Instant::now() < storm_ends {
        match agent.report(&[(147, nil, &["0"] as &[&str])], None).await {
            Ok(_) => {
                tally.reported.fetch_add(1, Ordering::Relaxed);
            }
            Err(f) => {
                tally.fail(format!("reporter: {f:?}"));
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A downstream server syncing all through the storm, as a Windows one does (DssAuth,
/// GetCookie, GetConfigData, GetRevisionIdList, again and again): downstream servers
/// have slots of their own, so none of its calls is refused (a Windows downstream stops
/// its sync at the first ServerBusy, MS-WSUSSS endnote <10>).
async fn downstream(base: String, tally: Arc<Tally>, storm_ends: Instant) {
    use wsus_soap::wsusss::{RevisionFilter, dss};
    let http = reqwest::Client::new();
    let call = |path: &'static str, action: String, body: String| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            let r = http
                .post(url)
                .header("Content-Type", "text/xml; charset=utf-8")
                .header("SOAPAction", action)
                .body(dss::envelope(&body))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            if status != 200 {
                return Err(format!("HTTP {status}: {text:.300}"));
            }
            let limits = wsus_soap::Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 10_000_000 };
            wsus_soap::parse_request(text.as_bytes(), &limits).map(|r| r.operation).map_err(|e| e.to_string())
        }
    };
    const SYNC: &str = "/ServerSyncWebService/ServerSyncWebService.asmx";
    while Instant::now() < storm_ends {
        let outcome: Result<(), String> = async {
            call(SYNC, dss::action("GetAuthConfig"), dss::get_auth_config()).await?;
            let auth = call(
                "/DssAuthWebService/DssAuthWebService.asmx",
                dss::dss_auth_action(),
                dss::get_authorization_cookie("dss.e2e.test", uuid::Uuid::from_u128(7)),
            )
            .await?;
            let (plug_in, data) =
                dss::authorization_cookie(dss::result(&auth, "GetAuthorizationCookie").map_err(|e| e.reason)?)
                    .map_err(|e| e.reason)?;
            let cookie = call(SYNC, dss::action("GetCookie"), dss::get_cookie(&plug_in, &data, "1.20")).await?;
            let cookie =
                dss::cookie_of(dss::result(&cookie, "GetCookie").map_err(|e| e.reason)?).map_err(|e| e.reason)?;
            call(SYNC, dss::action("GetConfigData"), dss::get_config_data(&cookie, None)).await?;
            let filter = RevisionFilter { get_config: true, ..Default::default() };
            call(SYNC, dss::action("GetRevisionIdList"), dss::get_revision_id_list(&cookie, &filter)).await?;
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                tally.downstream_syncs.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.fail(format!("downstream server: {e}"));
                return;
            }
        }
    }
}

async fn prober(base: String, agent: Agent, tally: Arc<Tally>, storm_ends: Instant) {
    let (path, action, body) = agent.sync_updates_request();
    let http = reqwest::Client::new();
    while Instant::now() < storm_ends {
        let sent = http
            .post(format!("{base}{path}"))
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("User-Agent", USER_AGENT)
            .header("SOAPAction", &action)
            .body(body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                tally.fail(format!("prober: no answer: {e}"));
                return;
            }
        };
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let close = response.headers().get("connection").is_some_and(|v| v == "close");
        let text = response.text().await.unwrap_or_default();
        let code = text.split("<ErrorCode>").nth(1).and_then(|t| t.split('<').next()).unwrap_or("");
        match status {
            200 if text.contains("SyncUpdatesResult") => {
                tally.probed_ok.fetch_add(1, Ordering::Relaxed);
            }
            500 if code == "ServerBusy" && retry_after.as_deref() == Some(&RETRY_AFTER.to_string()) && close => {
                tally.probed_shed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(40 + jitter_ms())).await;
            }
            _ => {
                tally.fail(format!(
                    "prober: HTTP {status}, ErrorCode {code:?}, Retry-After {retry_after:?}, Connection: close {close}: {text:.200}"
                ));
                return;
            }
        }
    }
}

/// `wsus_<name>` summed over its series, from the gateway's /metrics.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("wsus_{name}{{")) || l.starts_with(&format!("wsus_{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A metric's value for one admission class.
fn class_metric(text: &str, name: &str, class: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("wsus_{name}{{")) && l.contains(&format!("class=\"{class}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn a_scan_storm_is_shed_with_server_busy_and_the_gateway_recovers() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 400, seed: 23, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));

    let system = System::start_with(
        &db,
        None,
        &[
            ("WSUS_SOAP_MAX_INFLIGHT", MAX_INFLIGHT.to_string()),
            ("WSUS_SOAP_MAX_QUEUED", MAX_QUEUED.to_string()),
            ("WSUS_SOAP_QUEUE_WAIT_MS", "250".to_owned()),
            ("WSUS_RETRY_AFTER_SECONDS", RETRY_AFTER.to_string()),
        ],
    );
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;
    let base = system.gateway_url.clone();

    // One client alone: the full catalog, no fault; what it leaves in memory is the baseline.
    let mut alone = Agent::new(&base);
    alone.handshake(true).await.unwrap();
    alone.scan().await.unwrap();
    let full_catalog = alone.received.len();
    assert!(full_catalog > 100, "{full_catalog} updates");
    let pid = system.gateway.pid();
    let baseline = rss_kib(pid).unwrap();

    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = std::thread::spawn({
        let (peak, sampling) = (peak.clone(), sampling.clone());
        move || {
            while sampling.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });

    // The probers get their cookies before the storm, to probe all through it.
    let mut probing = Vec::new();
    for _ in 0..PROBERS {
        let mut agent = Agent::new(&base);
        agent.handshake(true).await.unwrap();
        probing.push(agent);
    }
    let mut reporting_agent = Agent::new(&base);
    reporting_agent.handshake(true).await.unwrap();
    let tally = Arc::new(Tally::default());
    let storm_ends = Instant::now() + STORM;
    let reporter = tokio::spawn(reporter(reporting_agent, tally.clone(), storm_ends));
    let downstream = tokio::spawn(downstream(base.clone(), tally.clone(), storm_ends));
    let agents: Vec<_> =
        (0..AGENTS).map(|_| tokio::spawn(storm_agent(base.clone(), tally.clone(), storm_ends, full_catalog))).collect();
    let probers: Vec<_> =
        probing.into_iter().map(|a| tokio::spawn(prober(base.clone(), a, tally.clone(), storm_ends))).collect();
    // /metrics is not admission-controlled: it shows the bounds holding during the storm.
    let watcher = tokio::spawn({
        let (http, url, sampling) = (http.clone(), format!("{base}/metrics"), sampling.clone());
        async move {
            let (mut in_flight, mut queued) = (0.0f64, 0.0f64);
            while sampling.load(Ordering::Relaxed) {
                if let Ok(r) = http.get(&url).send().await {
                    let text = r.text().await.unwrap_or_default();
                    in_flight = in_flight.max(class_metric(&text, "soap_in_flight", "scans"));
                    queued = queued.max(class_metric(&text, "soap_queued", "scans"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (in_flight, queued)
        }
    });
    let mut scans = Vec::new();
    for a in agents {
        scans.push(a.await.unwrap());
    }
    for p in probers {
        p.await.unwrap();
    }
    reporter.await.unwrap();
    downstream.await.unwrap();
    let drained = storm_ends.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let (max_in_flight, max_queued) = watcher.await.unwrap();
    sampler.join().unwrap();

    let failures = tally.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} requests failed otherwise than ServerBusy: {failures:#?}", failures.len());
    let (shed, probed_ok, probed_shed) = (
        tally.shed.load(Ordering::Relaxed),
        tally.probed_ok.load(Ordering::Relaxed),
        tally.probed_shed.load(Ordering::Relaxed),
    );
    eprintln!(
        "storm: {} scans by {AGENTS} agents, {shed} ServerBusy to agents; probers {probed_ok} answered, \
         {probed_shed} ServerBusy; {} event reports stored, {} downstream sync rounds; all done {drained:?} after the storm; at most {max_in_flight} in flight, {max_queued} queued; RSS {baseline} KiB before, {} KiB at peak",
        scans.iter().sum::<usize>(),
        tally.reported.load(Ordering::Relaxed),
        tally.downstream_syncs.load(Ordering::Relaxed),
        peak.load(Ordering::Relaxed)
    );
    assert!(shed > 0, "the agents were never refused: the limits did not bite");
    assert!(probed_shed > 0, "no prober saw a ServerBusy answer's headers");
    assert!(probed_ok > 0, "probers were never admitted");
    let reported = tally.reported.load(Ordering::Relaxed);
    assert!(reported > 0, "no event report went through the storm");
    assert!(tally.downstream_syncs.load(Ordering::Relaxed) > 0, "no downstream sync went through the storm");
    assert!(scans.iter().all(|&n| n >= 1), "every agent completed a full scan: {scans:?}");
    assert!(max_in_flight <= MAX_INFLIGHT as f64, "{max_in_flight} in the handlers at once");
    assert!(max_queued <= MAX_QUEUED as f64, "{max_queued} queued at once");
    assert!(max_queued > 0.0, "requests never waited in the queue");
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(growth < RSS_GROWTH_BOUND_KIB, "RSS grew {growth} KiB in the storm (bound {RSS_GROWTH_BOUND_KIB} KiB)");

    // Every refusal the clients saw is counted, and nothing is left in the handlers or queued.
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric(&metrics, "soap_shed_total") as u64, shed + probed_shed, "{metrics}");
    assert_eq!(metric(&metrics, "soap_in_flight"), 0.0);
    assert_eq!(metric(&metrics, "soap_queued"), 0.0);

    // Load gone: a new client handshakes and scans without a fault, promptly.
    let started = Instant::now();
    let mut after = Agent::new(&base);
    after.handshake(true).await.unwrap();
    after.scan().await.unwrap();
    let took = started.elapsed();
    assert_eq!(after.received.len(), full_catalog);
    assert!(took < Duration::from_secs(10), "a lone scan after the storm took {took:?}");
    let again = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric(&again, "soap_shed_total"), metric(&metrics, "soap_shed_total"), "refused after the storm");

    // Every other ServerBusy says when to come back too: a real client's ReportEventBatch
    // (with this server's cookie in it) while reporting is down.
    let mut system = system;
    system.reporting.kill();
    let (expiration, sealed) = after.cookie().unwrap();
    let captured =
        String::from_utf8(wsus_e2e::read_reference("wusp/examples/native-capture/ReportEventBatch.request.xml"))
            .unwrap();
    let between = |tag: &str| captured.split(&format!("<{tag}>")).nth(1).and_then(|t| t.split('<').next()).unwrap();
    let body = captured.replace(between("Expiration"), &expiration).replace(between("EncryptedData"), &sealed);
    let r = http
        .post(format!("{base}/ReportingWebService/ReportingWebService.asmx"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"http://www.microsoft.com/SoftwareDistribution/ReportEventBatch\"")
        .body(body)
        .send()
        .await
        .unwrap();
    let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("<ErrorCode>ServerBusy</ErrorCode>"), "{text}");
    assert_eq!(retry_after, Some(RETRY_AFTER.to_string()), "{text}");
}
