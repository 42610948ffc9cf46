//! Behaviours a real WSUS shows and this server's own peers could not tell apart, end to
//! end against the real binaries, with the simulated agent sending the captured client's
//! requests (tests/tests/agent_shapes.rs). Each section names where the real behaviour is
//! seen; docs/compatibility.md lists them all.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use wsus_e2e::agent::{Agent, Fault};
use wsus_e2e::{ADMIN_TOKEN, PgCluster, System};

const CLIENT_NS: &str = "http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService";
const ALL_COMPUTERS: &str = "a0a08746-4dbe-4a37-9adf-9e7652c0b421";

async fn api(
    http: &reqwest::Client,
    system: &System,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut request = http.request(method.clone(), format!("{}{path}", system.reporting_url)).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// How many times a condition that follows a change (gateways pick up catalog and
/// approval changes within a moment of the notification) is tried, 100 ms apart.
const ATTEMPTS: usize = 150;

async fn pause() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Waits until a fresh client is offered every one of `revisions` for install.
async fn offered_for_install(gateway_url: &str, revisions: &[i32]) {
    for _ in 0..ATTEMPTS {
        let mut probe = Agent::new(gateway_url);
        probe.handshake(true).await.unwrap();
        probe.scan().await.unwrap();
        if revisions.iter().all(|id| probe.received.get(id).is_some_and(|r| r.action == "Install")) {
            return;
        }
        pause().await;
    }
    panic!("{revisions:?} are not offered for install");
}

/// The leaves a client was sent for a status check (unapproved), in revision order.
fn checked_leaves(agent: &Agent) -> Vec<i32> {
    let mut ids: Vec<i32> = agent
        .received
        .iter()
        .filter(|(_, r)| r.is_leaf && r.action == "PreDeploymentCheck")
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    ids
}

fn update_of(agent: &Agent, revision_id: i32) -> Uuid {
    let core = &agent.received[&revision_id].core;
    core.split("UpdateID=\"").nth(1).and_then(|v| v.split('"').next()).unwrap().parse().unwrap()
}

/// One page of the software pass, as (new (id, action), changed (id, action), truncated).
async fn page(agent: &mut Agent) -> Result<(Vec<(i32, String)>, Vec<(i32, String)>, bool), Fault> {
    let result = agent.sync_updates_page().await?;
    let result = result.child("SyncUpdatesResult").unwrap();
    let list = |name: &str| -> Vec<(i32, String)> {
        result
            .child(name)
            .map(|l| {
                l.children
                    .iter()
                    .map(|u| {
                        let id = u.child("ID").unwrap().value().parse().unwrap();
                        let action = u.child("Deployment").unwrap().child("Action").unwrap().value().to_owned();
                        (id, action)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (new, changed) = (list("NewUpdates"), list("ChangedUpdates"));
    // Cache what came, as the client does between pages.
    for info in result.child("NewUpdates").map(|n| n.children.as_slice()).unwrap_or_default() {
        let id: i32 = info.child("ID").unwrap().value().parse().unwrap();
        let leaf = info.child("IsLeaf").unwrap().value() == "true";
        if !agent.other_cached.contains(&id) && !agent.installed_non_leaf.contains(&id) {
            if leaf { agent.other_cached.push(id) } else { agent.installed_non_leaf.push(id) }
        }
    }
    Ok((new, changed, result.child("Truncated").unwrap().value() == "true"))
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn clients_are_served_as_a_real_wsus_serves_them() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 400, seed: 17, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));
    let pool = PgPool::connect(&db).await.unwrap();
    let system = System::start(&db);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    system.wait_ready(&http).await;

    // LastChange to the millisecond, as the real server's `.59Z`
    // (native-capture/GetConfig.response.xml); a client that re-serialises it with more
    // or fewer digits still gets its cookie.
    let mut agent = Agent::new(&system.gateway_url);
    let config = agent
        .call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/GetConfig"), &Agent::get_config_body())
        .await
        .unwrap();
    let last_change = config.children[0].child("LastChange").unwrap().value().to_owned();
    let fraction = last_change.trim_end_matches('Z').split('.').nth(1).unwrap_or("");
    assert!(fraction.len() <= 3, "LastChange {last_change} has more than millisecond precision");
    let auth = agent
        .call(
            "/SimpleAuthWebService/SimpleAuth.asmx",
            "http://www.microsoft.com/SoftwareDistribution/Server/SimpleAuthWebService/GetAuthorizationCookie",
            &agent.authorization_body(),
        )
        .await
        .unwrap();
    let data = auth.children[0].child("CookieData").unwrap().value().to_owned();
    let parsed = chrono::DateTime::parse_from_rfc3339(&last_change).unwrap().to_utc();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for echo in [
        last_change.clone(),
        // .NET's seven digits.
        format!("{}.{:07}Z", parsed.format("%Y-%m-%dT%H:%M:%S"), parsed.timestamp_subsec_nanos() / 100),
        parsed.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    ] {
        let body = Agent::get_cookie_body("SimpleTargeting", &data, &echo, &now);
        let r = agent.call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/GetCookie"), &body).await;
        assert!(r.is_ok(), "lastChange {echo}: {:?}", r.err());
    }
    let stale = (parsed - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let body = Agent::get_cookie_body("SimpleTargeting", &data, &stale, &now);
    let fault =
        agent.call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/GetCookie"), &body).await.unwrap_err();
    assert_eq!(fault.error_code, "ConfigChanged");

    // 1. Unapproved updates come for a status check (PreDeploymentCheck: 441 software
    // leaves, no software Evaluate, in captures/wsus-m0-cbs/catalog-stats.json): the client evaluates
    // them and reports them needed, and the API and the console count it.
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    let reportable = agent.reportable();
    assert!(!reportable.is_empty(), "the client reports status for unapproved updates");
    let statuses = format!("U={}", reportable.join(";"));
    let count = reportable.len().to_string();
    let nil = "00000000-0000-0000-0000-000000000000";
    agent.report(&[(147, nil, &[count.as_str()]), (156, nil, &[statuses.as_str()])], None).await.unwrap();
    let needed: Uuid = reportable[0].to_lowercase().parse().unwrap();
    let mut detail = Value::Null;
    for _ in 0..ATTEMPTS {
        detail = api(&http, &system, reqwest::Method::GET, &format!("/api/v1/updates/{needed}"), None).await;
        if detail["status_counts"]["needed"] == 1 {
            break;
        }
        pause().await;
    }
    assert_eq!(detail["status_counts"]["needed"], 1, "the needed status is counted: {detail}");
    assert!(detail["approvals"].as_array().is_none_or(|a| a.is_empty()), "not approved: {detail}");
    let console = console_session(&http, &system).await;
    let page_html = http
        .get(format!("{}/console/updates/{needed}", system.reporting_url))
        .header("Cookie", &console)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = page_html.split(&format!("href=\"/console/groups/{ALL_COMPUTERS}\"")).nth(1).unwrap();
    let cells: Vec<&str> =
        row.split("<td class=\"num\">").skip(1).take(2).map(|c| c.split('<').next().unwrap()).collect();
    assert_eq!(cells, ["0", "1"], "All Computers: 0 installed, 1 needed");

    // 2. A cookie expires (its clear-text Expiration passed) and the client starts over
    // with GetCookie, sending an oldCookie with an Expiration and no EncryptedData
    // (native-capture/GetCookie.request.xml). An update it cached meanwhile approved with
    // a deadline still reaches it: a cookie with no change marker tells every cached
    // update still offered (notes/observed-behaviour.md §3: 295 ChangedUpdates at a
    // fresh anchor).
    let held = *agent.received.iter().find(|(_, r)| r.action == "PreDeploymentCheck" && r.is_leaf).unwrap().0;
    let held_update = update_of(&agent, held);
    agent.expire_cookie();
    let deadline = "2030-01-31T18:00:00Z";
    api(
        &http,
        &system,
        reqwest::Method::PUT,
        &format!("/api/v1/updates/{held_update}/approvals/{ALL_COMPUTERS}"),
        Some(json!({"action": "Install", "deadline": deadline, "accept_eula": true})),
    )
    .await;
    let mut outcome = wsus_e2e::agent::ScanOutcome::default();
    for _ in 0..ATTEMPTS {
        agent.expire_cookie();
        agent.handshake(false).await.unwrap();
        outcome = agent.scan().await.unwrap();
        if outcome.changed.contains(&(held, "Install".to_owned())) {
            break;
        }
        pause().await;
    }
    assert!(outcome.changed.contains(&(held, "Install".to_owned())), "the approval reaches the client: {outcome:?}");
    assert!(outcome.new.is_empty(), "nothing new: {:?}", outcome.new);
    assert_eq!(agent.received[&held].deadline.as_deref(), Some(deadline), "with its deadline");
    // The client installs it and says so; the status follows.
    agent.report_scan_and_installs(&[], &[held_update]).await.unwrap();
    let mut installed = Value::Null;
    for _ in 0..ATTEMPTS {
        installed = api(&http, &system, reqwest::Method::GET, &format!("/api/v1/updates/{held_update}"), None).await;
        if installed["status_counts"]["installed"] == 1 {
            break;
        }
        pause().await;
    }
    assert_eq!(installed["status_counts"]["installed"], 1, "the install is counted: {installed}");

    // 3. The change marker moves with every page: what a page delivered is not told again
    // as changed on the next (MS-WUSP 3.1.5.7: the server SHOULD update the cookie with the
    // highest LastChangeTime; INV §9.9: a cookie saved after 60 pages gave 0 changes). A
    // client that lost part of its cache gets it back over several pages, 31 of them
    // approved since its last scan.
    let mut pages = Agent::new(&system.gateway_url);
    pages.handshake(true).await.unwrap();
    pages.scan().await.unwrap();
    let mut lost = checked_leaves(&pages);
    lost.truncate(45);
    assert_eq!(lost.len(), 45, "enough updates for two pages");
    for id in &lost[..31] {
        let u = update_of(&pages, *id);
        api(
            &http,
            &system,
            reqwest::Method::PUT,
            &format!("/api/v1/updates/{u}/approvals/{ALL_COMPUTERS}"),
            Some(json!({"accept_eula": true})),
        )
        .await;
    }
    let approved: Vec<i32> = lost[..31].to_vec();
    // A probe with a cache of its own shows when the gateway has them.
    offered_for_install(&system.gateway_url, &approved).await;
    pages.other_cached.retain(|id| !lost.contains(id));
    let mut delivered: Vec<i32> = Vec::new();
    let mut page_count = 0;
    loop {
        let (new, changed, truncated) = page(&mut pages).await.unwrap();
        page_count += 1;
        for (id, _) in &changed {
            assert!(
                !delivered.contains(id),
                "{id} delivered on an earlier page came back as changed on page {page_count}"
            );
        }
        delivered.extend(new.iter().map(|(id, _)| *id));
        if !truncated {
            break;
        }
    }
    assert!(page_count >= 2, "the lost updates came over {page_count} pages");
    assert!(lost.iter().all(|id| delivered.contains(id)));

    // ...and a category scan moves only its own: an approval outside its category, made
    // after the client's last full scan, still reaches the next full scan.
    let (product, elsewhere): (Uuid, i32) = sqlx::query_as(
        "SELECT p.update_id, r.revision_id FROM revision p, revision r \
         WHERE p.category_type = 'Product' AND r.update_type = 'Software' AND r.is_leaf AND NOT r.is_bundle \
           AND NOT EXISTS (SELECT 1 FROM revision_category c WHERE c.revision_id = r.revision_id AND c.category_update_id = p.update_id) \
           AND r.revision_id = ANY($1) LIMIT 1",
    )
    .bind(pages.other_cached.clone())
    .fetch_one(&pool)
    .await
    .unwrap();
    let elsewhere_update = update_of(&pages, elsewhere);
    api(
        &http,
        &system,
        reqwest::Method::PUT,
        &format!("/api/v1/updates/{elsewhere_update}/approvals/{ALL_COMPUTERS}"),
        Some(json!({"accept_eula": true})),
    )
    .await;
    // Only once a probe sees the approval does the filtered scan's silence mean anything.
    offered_for_install(&system.gateway_url, &[elsewhere]).await;
    pages.filter_categories = vec![product];
    assert_eq!(pages.start_category_scan().await.unwrap(), vec![product]);
    let filtered = pages.scan().await.unwrap();
    assert!(!filtered.changed.iter().any(|(id, _)| *id == elsewhere), "outside the category scan");
    pages.filter_categories.clear();
    let full = pages.scan().await.unwrap();
    assert!(full.changed.contains(&(elsewhere, "Install".to_owned())), "the full scan hears of it: {:?}", full.changed);

    // 8. GetExtendedUpdateInfo: a declined update is out of scope, with no fragments and
    // no files (MS-WUSP 3.1.5.9); fragments come grouped by type, every Extended then
    // every LocalizedProperties (captures/wsus-m0-native/flow/000015); `locales` is
    // required with LocalizedProperties (InvalidParameters otherwise).
    let mut leaves: Vec<i32> = agent.received.iter().filter(|(_, r)| r.is_leaf).map(|(id, _)| *id).collect();
    leaves.sort_unstable();
    let (declined, kept) = (leaves[0], [leaves[1], leaves[2]]);
    let declined_update = update_of(&agent, declined);
    let r = http
        .post(format!("{}/api/v1/updates/{declined_update}/decline", system.reporting_url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(status.is_success(), "decline: {status} {}", r.text().await.unwrap_or_default());
    let ids = [declined, kept[0], kept[1]];
    let mut answer = None;
    for _ in 0..ATTEMPTS {
        let r = agent
            .call(
                "/ClientWebService/client.asmx",
                &format!("{CLIENT_NS}/GetExtendedUpdateInfo"),
                &agent.extended_info_body(&ids),
            )
            .await
            .unwrap();
        let declined_out = r.children[0]
            .child("OutOfScopeRevisionIDs")
            .is_some_and(|o| o.children.iter().any(|i| i.value() == declined.to_string()));
        answer = Some(r);
        if declined_out {
            break;
        }
        pause().await;
    }
    let result = &answer.unwrap().children[0];
    assert!(
        result
            .child("OutOfScopeRevisionIDs")
            .is_some_and(|o| o.children.iter().any(|i| i.value() == declined.to_string())),
        "the declined update is out of scope"
    );
    let updates: Vec<(i32, String)> = result
        .child("Updates")
        .unwrap()
        .children
        .iter()
        .map(|u| (u.child("ID").unwrap().value().parse().unwrap(), u.child("Xml").unwrap().text.clone()))
        .collect();
    assert!(updates.iter().all(|(id, _)| *id != declined), "no fragment of the declined update");
    let kinds: Vec<&str> =
        updates.iter().map(|(_, x)| if x.starts_with("<ExtendedProperties") { "E" } else { "L" }).collect();
    assert_eq!(kinds, ["E", "E", "L", "L"], "grouped by type");
    assert_eq!(updates.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [kept[0], kept[1], kept[0], kept[1]]);
    let no_locales =
        agent.extended_info_body(&kept).replace("<locales><string>en-US</string><string>en</string></locales>", "");
    let fault = agent
        .call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/GetExtendedUpdateInfo"), &no_locales)
        .await
        .unwrap_err();
    assert_eq!((fault.error_code.as_str(), fault.message.as_str()), ("InvalidParameters", "locales"));
    drop(pg);
}

/// Signs in to the console with the admin token; the session cookie.
async fn console_session(http: &reqwest::Client, system: &System) -> String {
    let r = http
        .post(format!("{}/console/login", system.reporting_url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signed in");
    r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn targeting_and_addresses_are_as_wsus_records_them() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 200, seed: 23, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));
    // The tests' loopback stands for an ingress in front of the gateway.
    let system = System::start_with(&db, None, &[("WSUS_TRUSTED_PROXIES", "127.0.0.1/32".to_owned())]);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;

    // 10. The client's address, as WSUS shows it for every computer: behind a trusted
    // proxy, the address the proxy names; kept current as the computer moves.
    let mut roaming = Agent::new(&system.gateway_url);
    roaming.forwarded_for = Some("203.0.113.7".into());
    roaming.handshake(true).await.unwrap();
    let computer = |id: String| {
        let (http, system) = (&http, &system);
        async move { api(http, system, reqwest::Method::GET, &format!("/api/v1/computers/{id}"), None).await }
    };
    assert_eq!(computer(roaming.client_id.clone()).await["ip_address"], "203.0.113.7", "recorded at registration");
    roaming.forwarded_for = Some("198.51.100.20, 127.0.0.1".into());
    roaming.scan().await.unwrap();
    let mut address = Value::Null;
    for _ in 0..ATTEMPTS {
        address = computer(roaming.client_id.clone()).await["ip_address"].clone();
        if address == "198.51.100.20" {
            break;
        }
        pause().await;
    }
    assert_eq!(address, "198.51.100.20", "the new address is recorded");
    let mut direct = Agent::new(&system.gateway_url);
    direct.handshake(true).await.unwrap();
    assert_eq!(computer(direct.client_id.clone()).await["ip_address"], "127.0.0.1", "no proxy: the peer");

    // 5. Client-side targeting with several groups: the TargetGroup policy may name
    // several, separated by semicolons (Windows' "Enable client-side targeting" policy);
    // the client is in each that exists and gets each one's approvals.
    let group = |name: &'static str| {
        let (http, system) = (&http, &system);
        async move {
            let g = api(http, system, reqwest::Method::POST, "/api/v1/groups", Some(json!({"name": name}))).await;
            g["group_id"].as_str().unwrap().to_owned()
        }
    };
    let (pilot, kiosks) = (group("Pilot").await, group("Kiosks").await);
    api(&http, &system, reqwest::Method::PATCH, "/api/v1/settings", Some(json!({"targeting": "client"}))).await;
    // SyncPrinterCatalog checks the configuration as SyncUpdates does (MS-WUSP 3.1.5.12):
    // once the gateway has the targeting change, a cookie from before is told so. Until
    // then, a new handshake could still be given the old configuration.
    let cookie = direct.cookie().unwrap();
    let printers = format!(
        "<SyncPrinterCatalog xmlns=\"{CLIENT_NS}\"><cookie><Expiration>{}</Expiration><EncryptedData>{}</EncryptedData></cookie><installedNonLeafUpdateIDs/><printerUpdateIDs/></SyncPrinterCatalog>",
        cookie.0, cookie.1
    );
    let mut told = None;
    for _ in 0..ATTEMPTS {
        match direct.call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/SyncPrinterCatalog"), &printers).await
        {
            Err(f) => {
                told = Some(f.error_code);
                break;
            }
            Ok(_) => pause().await,
        }
    }
    assert_eq!(told.as_deref(), Some("ConfigChanged"), "an old cookie hears of the new configuration");
    let mut scout = Agent::new(&system.gateway_url);
    scout.handshake(true).await.unwrap();
    scout.scan().await.unwrap();
    let offered = checked_leaves(&scout);
    let (for_pilot, for_kiosks) = (update_of(&scout, offered[0]), update_of(&scout, offered[1]));
    for (u, g) in [(for_pilot, &pilot), (for_kiosks, &kiosks)] {
        api(
            &http,
            &system,
            reqwest::Method::PUT,
            &format!("/api/v1/updates/{u}/approvals/{g}"),
            Some(json!({"accept_eula": true})),
        )
        .await;
    }
    let mut both = Agent::new(&system.gateway_url);
    both.target_group = Some("pilot; Kiosks".into());
    both.handshake(true).await.unwrap();
    let mut got_both = false;
    for _ in 0..ATTEMPTS {
        both.received.clear();
        both.installed_non_leaf.clear();
        both.other_cached.clear();
        both.scan().await.unwrap();
        got_both = both.received.get(&offered[0]).is_some_and(|r| r.action == "Install")
            && both.received.get(&offered[1]).is_some_and(|r| r.action == "Install");
        if got_both {
            break;
        }
        pause().await;
    }
    assert!(got_both, "both groups' approvals reach the client");
    let c = computer(both.client_id.clone()).await;
    let mut groups: Vec<&str> = c["group_ids"].as_array().unwrap().iter().map(|g| g.as_str().unwrap()).collect();
    groups.sort_unstable();
    let mut expected = vec![pilot.as_str(), kiosks.as_str()];
    expected.sort_unstable();
    assert_eq!(groups, expected, "a member of each group it names");
    assert_eq!(c["requested_target_group_names"], json!(["pilot", "Kiosks"]));
    drop(pg);
}
