//! Seed flow 2: a simulated client registers with downstream server B and reports; B rolls
//! up to upstream A (`sync-worker rollup --once`); A's management API lists the computer,
//! its operating system and update statuses, under B. Then only what changed goes again,
//! and a rollup from a server A does not know is refused.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use wsus_e2e::agent::Agent;
use wsus_e2e::{ADMIN_TOKEN, PgCluster, READER_TOKEN, System, read_reference, run_binary};

fn env(db: &str, upstream: &str, content: &Path) -> HashMap<&'static str, String> {
    HashMap::from([
        ("DATABASE_URL", db.to_owned()),
        ("WSUS_UPSTREAM_URL", upstream.to_owned()),
        ("WSUS_CONTENT_DIR", content.display().to_string()),
        ("WSUS_SERVER_FQDN", "dss.e2e.test".to_owned()),
    ])
}

fn sync_worker(args: &[&str], env: &HashMap<&'static str, String>) -> Value {
    let (ok, out, err) = run_binary("sync-worker", args, env);
    assert!(ok, "sync-worker {args:?}: {out}{err}");
    serde_json::from_str(out.trim().lines().last().unwrap()).unwrap()
}

async fn api(http: &reqwest::Client, base: &str, path: &str) -> Value {
    let r = http.get(format!("{base}{path}")).bearer_auth(READER_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn computers_of_a_downstream_server_reach_the_upstream() {
    let pg = PgCluster::start().unwrap();
    let (db_a, db_b) = (pg.create_database("uss").unwrap(), pg.create_database("dss").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let opts = wsus_catalog_gen::Options { revisions: 200, seed: 31, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None).unwrap();
    wsus_e2e::import(&db_a, &dir.path().join("docs"));
    let a = System::start(&db_a);
    let http = reqwest::Client::new();
    a.wait_ready(&http).await;

    // B synchronises from A (A now knows B), then serves a client of its own.
    let content_b = dir.path().join("content-b");
    let b_env = env(&db_b, &a.gateway_url, &content_b);
    sync_worker(&["sync", "--once", "--json"], &b_env);
    let upstream = [("WSUS_UPSTREAM_URL", a.gateway_url.clone())];
    let b = System::start_full(&db_b, Some(&content_b), &[], &upstream);
    b.wait_ready(&http).await;
    let mut agent = Agent::new(&b.gateway_url);
    agent.handshake(true).await.unwrap();
    agent.scan().await.unwrap();
    let pool_b = PgPool::connect(&db_b).await.unwrap();
    let updates: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "SELECT DISTINCT update_id FROM revision WHERE update_type = 'Software' AND is_bundle ORDER BY update_id LIMIT 3",
    )
    .fetch_all(&pool_b)
    .await
    .unwrap();
    let (installed, needed) = (updates[0].0, [updates[1].0, updates[2].0]);
    agent.report_scan_and_installs(&needed, &[installed]).await.unwrap();
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = wsus_store::reporting::statuses(&pool_b, &agent.client_id).await.unwrap();
        if stored.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored.len(), 3, "B derived the statuses: {stored:?}");

    // B rolls up to A.
    let outcome = sync_worker(&["rollup", "--once", "--json"], &b_env);
    assert_eq!(outcome["computers"], 1, "{outcome}");
    assert_eq!(outcome["computers_with_details"], 1, "{outcome}");
    assert_eq!(outcome["statuses"], 1, "{outcome}");

    // A's API: B, the computer under it, its OS and statuses.
    let servers = api(&http, &a.reporting_url, "/api/v1/downstream-servers").await;
    let server = &servers["items"][0];
    assert_eq!(server["name"], "dss.e2e.test", "{servers}");
    assert_eq!(server["computer_count"], 1);
    assert_eq!(server["computer_target_count"], 1);
    assert!(server["last_rollup_time"].is_string());
    let server_id = server["server_id"].as_str().unwrap().to_owned();
    let listed = api(&http, &a.reporting_url, &format!("/api/v1/computers?downstream_server_id={server_id}")).await;
    let computer = &listed["items"][0];
    assert_eq!(computer["computer_id"], agent.client_id.as_str(), "{listed}");
    assert_eq!(computer["downstream_server_name"], "dss.e2e.test");
    assert_eq!(computer["os_version"], "10.0.26200", "{computer}");
    assert_eq!(computer["counts"]["installed"], 1, "{computer}");
    assert_eq!(computer["counts"]["needed"], 2, "{computer}");
    assert_eq!(computer["state"], "needs_updates");
    let all = api(&http, &a.reporting_url, "/api/v1/computers").await;
    assert!(all["items"].as_array().unwrap().iter().any(|c| c["computer_id"] == agent.client_id.as_str()));
    let statuses = api(&http, &a.reporting_url, &format!("/api/v1/computers/{}/updates", agent.client_id)).await;
    let installed_at_a: Vec<&Value> =
        statuses["items"].as_array().unwrap().iter().filter(|s| s["status"] == "Installed").collect();
    assert_eq!(installed_at_a.len(), 1);
    assert_eq!(installed_at_a[0]["update_id"], installed.to_string());

    // Nothing changed: nothing goes again but B's own line and the computer list.
    let quiet = sync_worker(&["rollup", "--once", "--json"], &b_env);
    assert_eq!((quiet["statuses"].as_u64(), quiet["computers_with_details"].as_u64()), (Some(0), Some(0)), "{quiet}");
    assert_eq!(quiet["full"], false);

    // The client installs another update: the next rollup carries that computer's status.
    agent.report_scan_and_installs(&[needed[1]], &[needed[0]]).await.unwrap();
    let mut rolled = Value::Null;
    for _ in 0..50 {
        rolled = sync_worker(&["rollup", "--once", "--json"], &b_env);
        if rolled["statuses"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rolled["statuses"], 1, "{rolled}");
    let computer = api(&http, &a.reporting_url, &format!("/api/v1/computers/{}", agent.client_id)).await;
    assert_eq!((computer["counts"]["installed"].as_i64(), computer["counts"]["needed"].as_i64()), (Some(2), Some(1)));

    // A server A never authorised cannot roll up (the specification's example comes from one).
    let body = read_reference("wsusss/examples/spec/spec-21-GetOutOfSyncComputers-request.xml");
    let r = http
        .post(format!("{}/ReportingWebService/ReportingWebService.asmx", a.gateway_url))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"http://www.microsoft.com/SoftwareDistribution/GetOutOfSyncComputers\"")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let fault = r.text().await.unwrap();
    assert!(fault.contains("<ErrorCode>InvalidParameters</ErrorCode>") && fault.contains("not known here"), "{fault}");

    // The worst case this upstream is sized for: a RollupComputerStatus of the batch size
    // it announces (100 computers), each with 2,500 statuses, about 57 MB of XML, read as
    // it streams and forwarded to reporting whole (MS-WSUSSS 3.1.4.17; a refused request
    // is sent again unchanged by a real downstream, so it must fit).
    {
        use wsus_soap::rollup::{self, ComputerInfo, ComputerStatus, UpdateStatus};
        let b_id: uuid::Uuid = server_id.parse().unwrap();
        let batch = rollup::ANNOUNCED_COMPUTER_STATUS_BATCH as usize;
        let ids: Vec<String> = (0..batch).map(|i| format!("worst-case-{i:03}")).collect();
        let now = chrono::Utc::now();
        let post = |op: &'static str, body: String| {
            let http = http.clone();
            let url = format!("{}/ReportingWebService/ReportingWebService.asmx", a.gateway_url);
            async move {
                let r = http
                    .post(url)
                    .header("Content-Type", "text/xml; charset=utf-8")
                    .header("SOAPAction", format!("\"http://www.microsoft.com/SoftwareDistribution/{op}\""))
                    .body(wsus_soap::wsusss::dss::envelope(&body))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let computers: Vec<ComputerInfo> = ids
            .iter()
            .map(|id| ComputerInfo {
                computer_id: id.clone(),
                last_sync_time: Some(now),
                last_sync_result: 1,
                last_reported_reboot_time: None,
                last_reported_status_time: Some(now),
                last_inventory_time: None,
                parent_server_id: b_id,
                details: Some(rollup::ComputerDetails {
                    full_domain_name: Some(format!("{id}.lab.test")),
                    ..Default::default()
                }),
            })
            .collect();
        let (status, text) = post("RollupComputers", rollup::rollup_computers(now, &computers)).await;
        assert_eq!(status, 200, "{text:.500}");
        let statuses: Vec<ComputerStatus> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| ComputerStatus {
                instance_id: uuid::Uuid::new_v4(),
                computer_id: id.clone(),
                effective_last_detection_time: Some(now),
                rollup_number: 1,
                is_full_rollup: true,
                statuses: (0..rollup::STATUSES_PER_COMPUTER)
                    .map(|n| UpdateStatus {
                        update_id: uuid::Uuid::from_u128(((i * rollup::STATUSES_PER_COMPUTER + n) as u128) | 7 << 120),
                        summarization_state: 2,
                        last_change_time: now,
                    })
                    .collect(),
            })
            .collect();
        let body = rollup::rollup_computer_status(now, b_id, &statuses);
        assert!(body.len() > 50_000_000, "{} bytes", body.len());
        let (status, text) = post("RollupComputerStatus", body).await;
        assert_eq!(status, 200, "{text:.500}");
        assert!(text.contains("<RollupComputerStatusResult>true</RollupComputerStatusResult>"), "{text:.500}");
        let last = api(&http, &a.reporting_url, &format!("/api/v1/computers/{}", ids[batch - 1])).await;
        assert_eq!(last["counts"]["needed"], rollup::STATUSES_PER_COMPUTER as i64, "{last}");
    }

    // An administrator of B starts a sync and waits for it; a rollup follows it.
    let ctl = HashMap::from([("WSUS_API_URL", b.reporting_url.clone()), ("WSUS_API_TOKEN", ADMIN_TOKEN.to_owned())]);
    let before =
        api(&http, &a.reporting_url, "/api/v1/downstream-servers").await["items"][0]["last_rollup_time"].clone();
    let (ok, out, err) = run_binary("wsusctl", &["sync", "start", "--wait"], &ctl);
    assert!(ok, "{out}{err}");
    assert!(out.contains("succeeded"), "{out}");
    let (ok, out, err) = run_binary("wsusctl", &["sync", "history"], &ctl);
    assert!(ok && out.lines().nth(1).is_some_and(|l| l.contains("manual") && l.contains("succeeded")), "{out}{err}");
    let mut after = before.clone();
    for _ in 0..100 {
        after =
            api(&http, &a.reporting_url, "/api/v1/downstream-servers").await["items"][0]["last_rollup_time"].clone();
        if after != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(after, before, "the sync was followed by a rollup");
    drop(pg);
}
