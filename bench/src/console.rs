//! The console on a large estate: 150,000 computers (in ten groups, contacts spread over
//! two days) with 100 statuses each (15 million rows, a mix of installed, needed, failed
//! and not applicable) against a 25,000-revision catalog. How long the overview's counts
//! take, how fast the overview page and the first pages of the lists answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use wsus_e2e::{PgCluster, Service, free_port, wait_for_status};

use crate::stats::{ms, percentile};
use crate::table::{Row, row};

const TOKEN: &str = "bench-console-admin-token";

async fn timed(http: &reqwest::Client, cookie: &str, url: &str, times: usize) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(times);
    for _ in 0..times {
        let started = Instant::now();
        let r = http.get(url).header("Cookie", cookie).send().await?;
        anyhow::ensure!(r.status() == 200, "{url}: {}", r.status());
        r.bytes().await?;
        out.push(started.elapsed());
    }
    Ok(out)
}

// One function on purpose: a benchmark scenario read top to bottom (catalog, seeded computers, page timings),
// each step using what the ones before set up.
pub async fn run(cli: &crate::Cli) -> anyhow::Result<Vec<Row>> {
    let (computers, statuses_each) = (cli.console_computers, 100);
    let pg = PgCluster::start()?;
    let db = pg.create_database("bench")?;
    let dir = tempfile::tempdir()?;
    let opts = wsus_catalog_gen::Options { revisions: 25_000, seed: 7, ..Default::default() };
    eprintln!("console: generating and importing a 25000-revision catalog");
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), None)?;
    wsus_e2e::import(&db, &dir.path().join("docs"));

    eprintln!("console: {computers} computers with {statuses_each} statuses each");
    let pool = sqlx::PgPool::connect(&db).await?;
    let seeded = Instant::now();
    for (i, name) in (1..=10).map(|i| (i, format!("Ring {i}"))) {
        wsus_store::approvals::add_group(&pool, &name, None).await.map_err(|e| anyhow::anyhow!("group {i}: {e}"))?;
    }
    sqlx::query(
        "INSERT INTO computer (computer_id, dns_name, os_description, registered_at, last_contact_at, \
                               effective_last_detection_time, last_reported_status_time) \
         SELECT 'pc-' || i, 'pc-' || lpad(i::text, 6, '0') || '.corp.example', 'Windows 11 Enterprise', now(), \
                now() - (i % 2880) * interval '1 minute', now(), now() \
         FROM generate_series(1, $1) i",
    )
    .bind(computers as i64)
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO computer_group_membership (computer_id, group_id) \
         SELECT 'pc-' || i, g.group_id FROM generate_series(1, $1) i \
         JOIN (SELECT group_id, row_number() OVER (ORDER BY name) - 1 AS n FROM target_group WHERE NOT is_builtin) g \
           ON g.n = i % 10",
    )
    .bind(computers as i64)
    .execute(&pool)
    .await?;
    // Each computer: 100 of the catalog's updates, mostly installed or not applicable,
    // some needed, a few failed (about 1 computer in 50 has one).
    sqlx::query(
        "WITH u AS (SELECT array_agg(update_id ORDER BY update_id) AS ids FROM \
                      (SELECT DISTINCT update_id FROM revision WHERE update_type = 'Software') s) \
         INSERT INTO update_status (computer_id, update_id, status) \
         SELECT 'pc-' || i, u.ids[1 + ((i * 37 + k * 101) % array_length(u.ids, 1))], \
                CASE WHEN (i + k) % 5000 = 0 THEN 5 WHEN (i * k) % 17 = 0 THEN 2 WHEN k % 3 = 0 THEN 1 ELSE 4 END \
         FROM u, generate_series(1, $1) i, generate_series(1, $2) k \
         ON CONFLICT DO NOTHING",
    )
    .bind(computers as i64)
    .bind(statuses_each)
    .execute(&pool)
    .await?;
    // Each computer's history: ten download and install events (every update-bearing
    // event is in the history's index).
    sqlx::query(
        "INSERT INTO reporting_event (event_instance_id, time_at_target, computer_id, event_id, update_id, win32_hresult) \
         SELECT gen_random_uuid(), now() - (i % 2880) * interval '1 minute' - k * interval '1 second', 'pc-' || i, \
                (ARRAY[167, 162, 181, 183, 182])[1 + k % 5], s.update_id, CASE WHEN k % 5 = 4 THEN -2145099769 ELSE 0 END \
         FROM generate_series(1, $1) i, generate_series(0, 9) k, \
              LATERAL (SELECT update_id FROM update_status WHERE computer_id = 'pc-' || i LIMIT 1) s",
    )
    .bind(computers as i64)
    .execute(&pool)
    .await?;
    sqlx::query("VACUUM (ANALYZE)").execute(&pool).await?;
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM update_status").fetch_one(&pool).await?;
    eprintln!("console: seeded {rows} statuses in {:.0} s", seeded.elapsed().as_secs_f64());

    // The counts the overview shows, counted directly (what the background refresh does).
    let started = Instant::now();
    let compliance = wsus_store::summary::compliance(&pool).await?;
    wsus_store::summary::compliance_by_group(&pool).await?;
    wsus_store::summary::status_distribution(&pool).await?;
    wsus_store::summary::most_needed(&pool, 10).await?;
    wsus_store::summary::contacts_by_hour(&pool, 24).await?;
    let count_took = started.elapsed();
    anyhow::ensure!(compliance.total() == computers as i64, "counted {} computers", compliance.total());

    let (port, grpc) = (free_port(), free_port());
    let reporting = Service::spawn(
        "reporting",
        &HashMap::from([
            ("DATABASE_URL", db.clone()),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{port}")),
            ("WSUS_GRPC_ADDR", format!("127.0.0.1:{grpc}")),
            ("WSUS_API_TOKENS", format!("admin:{TOKEN}")),
            ("RUST_LOG", "warn".to_owned()),
        ]),
    );
    let base = format!("http://127.0.0.1:{port}");
    let plain = reqwest::Client::new();
    wait_for_status(&plain, &format!("{base}/readyz"), 200, Duration::from_secs(600)).await;
    crate::proc::pin(reporting.pid(), 0);
    crate::proc::pin(std::process::id(), 1);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let mut cookie = None;
    for _ in 0..100 {
        let r = http
            .post(format!("{base}/console/login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={TOKEN}"))
            .send()
            .await?;
        if r.status() == 303 {
            let set = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
            cookie = set.split(';').next().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cookie = cookie.ok_or_else(|| anyhow::anyhow!("could not sign in to the console"))?;
    // The first view may count; later ones read the background counts.
    let first = timed(&http, &cookie, &format!("{base}/console/"), 1).await?[0];
    let mut overview = timed(&http, &cookie, &format!("{base}/console/"), 20).await?;
    let mut pages = Vec::new();
    for (what, path) in [
        ("computers, first page", "/console/computers"),
        ("computers with errors", "/console/computers?state=with_errors"),
        ("computers by name", "/console/computers?q=pc-0420"),
        ("computers, longest silent first", "/console/computers?sort=contact_oldest"),
        ("updates, first page (newest first)", "/console/updates"),
        ("updates by id", "/console/updates?sort=id"),
        ("a computer (statuses, history)", "/console/computers/pc-1"),
        ("a group's members", ""),
    ] {
        let path = if path.is_empty() {
            let (g,): (uuid::Uuid,) =
                sqlx::query_as("SELECT group_id FROM target_group WHERE name = 'Ring 3'").fetch_one(&pool).await?;
            format!("/console/groups/{g}")
        } else {
            path.to_owned()
        };
        let mut t = timed(&http, &cookie, &format!("{base}{path}"), 5).await?;
        pages.push(format!("{what} {}", ms(percentile(&mut t, 50.0))));
    }
    let (needed,): (uuid::Uuid,) = sqlx::query_as(
        "SELECT update_id FROM update_status WHERE status = 2 GROUP BY update_id ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await?;
    let mut detail = timed(&http, &cookie, &format!("{base}/console/updates/{needed}"), 3).await?;
    drop(reporting);
    drop(pg);
    let p99 = percentile(&mut overview, 99.0);
    Ok(vec![
        row(
            format!("console overview: p99 {}", ms(p99)),
            format!(
                "{computers} computers in 10 groups, {rows} statuses, 25000 revisions; 20 views after the first \
                 (first view {}); the counts behind it take {} and are refreshed in the background",
                ms(first),
                ms(count_took)
            ),
            "well under 1 s",
            Some(p99 < Duration::from_millis(500)),
        ),
        row("console list pages (p50 of 5)", pages.join("; "), "", None),
        row(
            "console update page (status per group, 10 groups)",
            format!("p50 {}", ms(percentile(&mut detail, 50.0))),
            "",
            None,
        ),
    ])
}
