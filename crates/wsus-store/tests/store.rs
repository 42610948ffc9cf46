//! Store tests against a real Postgres: each test gets a database of its own.

use chrono::{Duration, TimeZone, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use wsus_store::listen::{Change, forward_changes};
use wsus_store::reporting::{self, ClientSync, Event, Registration};
use wsus_store::settings::{self, ClientConfig, Seed};
use wsus_store::{
    ALL_COMPUTERS, UNASSIGNED_COMPUTERS, approvals, catalog, computers, identity, migrate, summary, sync_history,
};

fn seed() -> Seed {
    Seed {
        products: vec![Uuid::parse_str("8c3fcc84-7410-4a95-8b89-a166a0190486").unwrap()],
        classifications: vec![],
        languages: vec!["en".into(), "de".into()],
        syncs_per_day: 4,
        content_mode: wsus_store::settings::ContentMode::Lazy,
    }
}

async fn migrated(pool: &PgPool) {
    migrate::run(pool).await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn migrations_apply_once_and_describe_every_table(pool: PgPool) {
    assert!(!migrate::pending(&pool).await.unwrap().is_empty());
    let applied = migrate::run(&pool).await.unwrap();
    assert_eq!(applied.len(), migrate::migrator().iter().count());
    assert!(migrate::run(&pool).await.unwrap().is_empty(), "a second run applies nothing");
    assert!(migrate::pending(&pool).await.unwrap().is_empty());

    let undocumented: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
           AND c.relname <> '_sqlx_migrations' AND obj_description(c.oid, 'pg_class') IS NULL",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(undocumented.is_empty(), "tables without a COMMENT: {undocumented:?}");

    let groups: Vec<(Uuid, String, bool)> =
        sqlx::query_as("SELECT group_id, name, is_builtin FROM target_group ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        groups,
        vec![
            (ALL_COMPUTERS, "All Computers".into(), true),
            (UNASSIGNED_COMPUTERS, "Unassigned Computers".into(), true)
        ]
    );
}

#[sqlx::test(migrations = false)]
async fn concurrent_migrations_apply_each_file_exactly_once(pool: PgPool) {
    let opts = pool.connect_options();
    let (a, b) = (
        sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with((*opts).clone()).await.unwrap(),
        sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with((*opts).clone()).await.unwrap(),
    );
    let (ra, rb) = tokio::join!(migrate::run(&a), migrate::run(&b));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.len() + rb.len(), migrate::migrator().iter().count(), "{ra:?} {rb:?}");
    assert!(ra.iter().all(|v| !rb.contains(v)));
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM _sqlx_migrations").fetch_one(&pool).await.unwrap();
    assert_eq!(rows as usize, migrate::migrator().iter().count());
}

#[sqlx::test(migrations = false)]
async fn identity_is_created_once_and_seeds_settings(pool: PgPool) {
    migrated(&pool).await;
    let first = identity::ensure(&pool, None, None, "wsus-a.example", &seed()).await.unwrap();
    assert!(first.first_start);
    assert_eq!(first.fqdn, "wsus-a.example");

    let mut other_seed = seed();
    other_seed.languages = vec!["fr".into()];
    let again = identity::ensure(&pool, None, None, "other-host", &other_seed).await.unwrap();
    assert!(!again.first_start);
    assert_eq!(again.server_id, first.server_id, "the stored identity survives restarts");
    assert_eq!(settings::enabled_languages(&pool).await.unwrap(), vec!["de", "en"], "only the first start seeds");

    let cfg = settings::get::<ClientConfig>(&pool, settings::CLIENT_CONFIG).await.unwrap().unwrap();
    assert!(cfg.value.is_registration_required);
    assert_eq!(cfg.value.max_extended_updates_per_request, 50);
    assert_eq!(cfg.value.package_server_share.as_deref(), Some(r"\\wsus-a.example\UpdateServicesPackages"));
    let products = settings::get::<Vec<Uuid>>(&pool, settings::SYNC_PRODUCTS).await.unwrap().unwrap();
    assert_eq!(products.value, seed().products);

    let configured = Uuid::new_v4();
    let moved = identity::ensure(&pool, Some(configured), Some("wsus.example.org"), "x", &seed()).await.unwrap();
    assert_eq!((moved.server_id, moved.fqdn.as_str()), (configured, "wsus.example.org"));
}

#[sqlx::test(migrations = false)]
async fn changing_a_setting_moves_its_timestamp(pool: PgPool) {
    migrated(&pool).await;
    identity::ensure(&pool, None, None, "h", &seed()).await.unwrap();
    let before = settings::get::<ClientConfig>(&pool, settings::CLIENT_CONFIG).await.unwrap().unwrap();
    let changed = ClientConfig { max_extended_updates_per_request: 25, ..before.value.clone() };
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    settings::put(&pool, settings::CLIENT_CONFIG, &changed, "admin").await.unwrap();
    let after = settings::get::<ClientConfig>(&pool, settings::CLIENT_CONFIG).await.unwrap().unwrap();
    assert_eq!(after.value.max_extended_updates_per_request, 25);
    assert!(after.updated_at > before.updated_at);
}

#[sqlx::test(migrations = false)]
async fn catalog_bumps_are_notified(pool: PgPool) {
    migrated(&pool).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let listener = tokio::spawn(forward_changes(pool.clone(), tx));
    assert_eq!(rx.recv().await, Some(Change::Resync), "a fresh listener asks for a full reload");

    let start = catalog::version(&pool).await.unwrap().version;
    let mut tx_db = pool.begin().await.unwrap();
    let v = catalog::bump(&mut *tx_db).await.unwrap();
    assert_eq!(v, start + 1);
    tx_db.commit().await.unwrap();
    assert_eq!(rx.recv().await, Some(Change::Catalog(start + 1)));

    settings::put(&pool, settings::SYNC_PRODUCTS, &Vec::<Uuid>::new(), "admin").await.unwrap();
    assert_eq!(rx.recv().await, Some(Change::Setting(settings::SYNC_PRODUCTS.into())));
    listener.abort();
}

#[sqlx::test(migrations = false)]
async fn revision_ids_are_never_reused_and_references_may_dangle(pool: PgPool) {
    migrated(&pool).await;
    let insert = "INSERT INTO revision (update_id, revision_number, update_type, changed_version) \
                  VALUES ($1, $2, 'Software', 1) RETURNING revision_id";
    let (first,): (i32,) = sqlx::query_as(insert).bind(Uuid::new_v4()).bind(200).fetch_one(&pool).await.unwrap();
    sqlx::query("DELETE FROM revision WHERE revision_id = $1").bind(first).execute(&pool).await.unwrap();
    let (second,): (i32,) = sqlx::query_as(insert).bind(Uuid::new_v4()).bind(100).fetch_one(&pool).await.unwrap();
    assert!(second > first, "revision ids come from a sequence and are never reused");

    // A prerequisite and a bundle member naming updates that are not in the catalog.
    sqlx::query("INSERT INTO prerequisite (revision_id, clause, update_id, is_category) VALUES ($1, 0, $2, true)")
        .bind(second)
        .bind(Uuid::new_v4())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO bundle_member (revision_id, clause, member_update_id, member_revision_number) VALUES ($1, 0, $2, 7)",
    )
    .bind(second)
    .bind(Uuid::new_v4())
    .execute(&pool)
    .await
    .unwrap();
}

#[sqlx::test(migrations = false)]
async fn approvals_are_keyed_to_the_update_with_one_live_row_per_group(pool: PgPool) {
    migrated(&pool).await;
    let update = Uuid::new_v4();
    let approve = "INSERT INTO deployment (deployment_id, update_id, group_id, action, changed_version) \
                   VALUES ($1, $2, $3, 'Install', 2)";
    sqlx::query(approve).bind(Uuid::new_v4()).bind(update).bind(ALL_COMPUTERS).execute(&pool).await.unwrap();
    let twice = sqlx::query(approve).bind(Uuid::new_v4()).bind(update).bind(ALL_COMPUTERS).execute(&pool).await;
    assert!(twice.is_err(), "one live approval per update and group");
    sqlx::query("UPDATE deployment SET deleted_at = now(), deleted_version = 3 WHERE update_id = $1")
        .bind(update)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(approve).bind(Uuid::new_v4()).bind(update).bind(ALL_COMPUTERS).execute(&pool).await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn client_reports_are_idempotent(pool: PgPool) {
    migrated(&pool).await;
    let id = "3b5e1c2a-1111-4a4a-9c9c-0123456789ab".to_string();
    let registered_at = Utc.with_ymd_and_hms(2026, 10, 4, 14, 49, 5).unwrap();
    let reg = Registration {
        computer_id: id.clone(),
        dns_name: Some("desktop-1.lab".into()),
        ip_address: Some("192.0.2.10".parse().unwrap()),
        os_build_number: Some(26200),
        processor_architecture: Some("AMD64".into()),
        registered_at,
        ..Default::default()
    };
    reporting::register_computer(&pool, &reg).await.unwrap();
    reporting::register_computer(&pool, &reg).await.unwrap();

    let newer = registered_at + Duration::minutes(5);
    reporting::record_client_syncs(
        &pool,
        &[
            ClientSync { computer_id: id.clone(), synced_at: newer, succeeded: true, ..Default::default() },
            ClientSync { computer_id: id.clone(), synced_at: registered_at, succeeded: false, ..Default::default() },
        ],
    )
    .await
    .unwrap();
    // A late, older record does not roll the state back.
    reporting::record_client_syncs(
        &pool,
        &[ClientSync { computer_id: id.clone(), synced_at: registered_at, succeeded: false, ..Default::default() }],
    )
    .await
    .unwrap();
    let c = reporting::computer(&pool, &id).await.unwrap().unwrap();
    assert_eq!((c.last_sync_time, c.last_sync_result), (Some(newer), 1));
    assert_eq!(c.os_build_number, Some(26200));

    let events: Vec<Event> = (0..3)
        .map(|i| Event {
            event_instance_id: Uuid::new_v4(),
            time_at_target: newer + Duration::seconds(i),
            computer_id: id.clone(),
            namespace_id: 1,
            event_id: [147, 156, 183][i as usize],
            misc_data: vec!["U=".into()],
            ..Default::default()
        })
        .collect();
    let none = reporting::StatusFold::default();
    assert_eq!(reporting::insert_events(&pool, &events, &none).await.unwrap().len(), 3);
    assert!(
        reporting::insert_events(&pool, &events, &none).await.unwrap().is_empty(),
        "a re-sent batch changes nothing"
    );
    assert_eq!(reporting::event_count(&pool, &id).await.unwrap(), 3);

    // String lists arrive as they were sent, empty strings and empty lists included.
    let lists: Vec<Vec<String>> = vec![vec![], vec![String::new()], vec!["U=a;b".into(), String::new(), "V=".into()]];
    let events: Vec<Event> = lists
        .iter()
        .map(|l| Event {
            event_instance_id: Uuid::new_v4(),
            time_at_target: newer,
            computer_id: id.clone(),
            event_id: 156,
            misc_data: l.clone(),
            replacement_strings: l.iter().rev().cloned().collect(),
            ..Default::default()
        })
        .collect();
    reporting::insert_events(&pool, &events, &none).await.unwrap();
    for (e, l) in events.iter().zip(&lists) {
        let (misc, strings): (Vec<String>, Vec<String>) =
            sqlx::query_as("SELECT misc_data, replacement_strings FROM reporting_event WHERE event_instance_id = $1")
                .bind(e.event_instance_id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(&misc, l);
        assert_eq!(strings, l.iter().rev().cloned().collect::<Vec<_>>());
    }
}

#[sqlx::test(migrations = false)]
async fn status_reports_fold_in_by_time_and_late_ones_do_not_roll_back(pool: PgPool) {
    migrated(&pool).await;
    let id = "5d0c7a10-2222-4b4b-8d8d-0123456789ab".to_string();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 10, 18, 0, 0).unwrap();
    let reg = Registration { computer_id: id.clone(), registered_at: t0, ..Default::default() };
    reporting::register_computer(&pool, &reg).await.unwrap();
    // SummarizationState -> how far along the install (wsus-status lifecycle).
    let lifecycle = vec![0, 0, 1, 2, 4, 3, 5];
    let (needed, downloaded, installed) = (2, 3, 4);
    let update = Uuid::new_v4();
    let fold = |state: i16, at| reporting::StatusFold {
        reports: vec![(id.clone(), update, state, at)],
        last_scans: vec![(id.clone(), at)],
        lifecycle: lifecycle.clone(),
    };
    let held = || async {
        let row: (i16, chrono::DateTime<Utc>) = sqlx::query_as(
            "SELECT status, last_change_time FROM update_status WHERE computer_id = $1 AND update_id = $2",
        )
        .bind(&id)
        .bind(update)
        .fetch_one(&pool)
        .await
        .unwrap();
        row
    };
    let t1 = t0 + Duration::minutes(1);
    let t2 = t0 + Duration::minutes(2);
    let t3 = t0 + Duration::minutes(3);
    reporting::insert_events(&pool, &[], &fold(installed, t1)).await.unwrap();
    assert_eq!(held().await, (installed, t1));
    // The same state reported later: the change time stays, the report time moves on...
    reporting::insert_events(&pool, &[], &fold(installed, t3)).await.unwrap();
    assert_eq!(held().await, (installed, t1));
    // ...so a late report from between the two does not roll the state back.
    reporting::insert_events(&pool, &[], &fold(needed, t2)).await.unwrap();
    assert_eq!(held().await, (installed, t1));
    // At one time, the state further along wins, whichever arrives first.
    reporting::insert_events(&pool, &[], &fold(downloaded, t3)).await.unwrap();
    assert_eq!(held().await, (installed, t1));
    let t4 = t0 + Duration::minutes(4);
    reporting::insert_events(&pool, &[], &fold(needed, t4)).await.unwrap();
    assert_eq!(held().await, (needed, t4), "a later report wins");
    let (scan, changed): (Option<chrono::DateTime<Utc>>, Option<chrono::DateTime<Utc>>) = sqlx::query_as(
        "SELECT effective_last_detection_time, last_status_change_at FROM computer WHERE computer_id = $1",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(scan, Some(t4));
    assert!(changed.is_some());
    // A computer that is not registered gets no status rows.
    let stranger = reporting::StatusFold {
        reports: vec![("unknown".into(), update, installed, t4)],
        last_scans: vec![],
        lifecycle,
    };
    reporting::insert_events(&pool, &[], &stranger).await.unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM update_status").fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 1);
}

#[sqlx::test(migrations = false)]
async fn one_running_sync_per_upstream(pool: PgPool) {
    migrated(&pool).await;
    assert!(sync_history::latest(&pool).await.unwrap().is_none());
    let run = sync_history::start(&pool, "http://uss:8530", wsus_store::run::Trigger::Manual).await.unwrap();
    assert!(sync_history::start(&pool, "http://uss:8530", wsus_store::run::Trigger::Schedule).await.is_err());
    sync_history::progress(&pool, run.sync_id, "updates", 10, 30).await.unwrap();
    let latest = sync_history::latest(&pool).await.unwrap().unwrap();
    assert_eq!(
        (latest.result.as_str(), latest.phase.as_deref(), latest.done, latest.total),
        ("running", Some("updates"), 10, 30)
    );
    sync_history::finish(&pool, run.sync_id, wsus_store::run::RunResult::Failed, Some("upstream said InvalidCookie"))
        .await
        .unwrap();
    let done = sync_history::latest_finished(&pool).await.unwrap().unwrap();
    assert_eq!(done.error.as_deref(), Some("upstream said InvalidCookie"));
    sync_history::start(&pool, "http://uss:8530", wsus_store::run::Trigger::Manual).await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn an_older_binary_accepts_a_newer_schema(pool: PgPool) {
    migrated(&pool).await;
    // A newer release applied a migration this binary does not know (rolling upgrade).
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer release', true, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(migrate::run(&pool).await.unwrap().is_empty(), "starting the older binary still works");
    assert!(migrate::pending(&pool).await.unwrap().is_empty(), "and it is ready");
}

/// The overview's counts: each computer in exactly one compliance state (errors before
/// needs before up to date), per group, statuses by state, the most needed updates.
#[sqlx::test(migrations = false)]
async fn the_overview_counts_every_computer_once(pool: PgPool) {
    migrated(&pool).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, scanned) in [("failing", true), ("needing", true), ("current", true), ("silent", false)] {
        sqlx::query(
            "INSERT INTO computer (computer_id, last_contact_at, effective_last_detection_time) \
             VALUES ($1, now(), CASE WHEN $2 THEN now() END)",
        )
        .bind(id)
        .bind(scanned)
        .execute(&pool)
        .await
        .unwrap();
    }
    // failing: one failed and one needed; needing: a needs b (downloaded) too; current: installed.
    for (c, u, s) in [("failing", a, 5i16), ("failing", b, 2), ("needing", a, 2), ("needing", b, 3), ("current", a, 4)]
    {
        sqlx::query("INSERT INTO update_status (computer_id, update_id, status) VALUES ($1, $2, $3)")
            .bind(c)
            .bind(u)
            .bind(s)
            .execute(&pool)
            .await
            .unwrap();
    }
    let all = summary::compliance(&pool).await.unwrap();
    assert_eq!(
        all,
        summary::Compliance { up_to_date: 1, needs_updates: 1, with_errors: 1, not_reported: 1 },
        "one state each"
    );
    let group = approvals::add_group(&pool, "Ring 1", None).await.unwrap();
    computers::add_members(&pool, group.group_id, &["needing".to_owned(), "silent".to_owned()]).await.unwrap();
    let by_group = summary::compliance_by_group(&pool).await.unwrap();
    let names: Vec<&str> = by_group.iter().map(|g| g.1.as_str()).collect();
    assert_eq!(names, ["Ring 1", "Unassigned Computers"], "only groups with members; the rest are unassigned");
    assert_eq!(by_group[0].2, summary::Compliance { needs_updates: 1, not_reported: 1, ..Default::default() });
    assert_eq!(by_group[1].2, summary::Compliance { up_to_date: 1, with_errors: 1, ..Default::default() });
    // Per group for one update: "needing" needs a, "silent" never scanned (unknown);
    // unassigned, "failing" failed a and "current" installed it.
    let per_group = wsus_store::updates::status_counts_by_group(&pool, a).await.unwrap();
    let ring = per_group.iter().find(|(g, _)| *g == group.group_id).unwrap().1;
    assert_eq!((ring.needed, ring.unknown, ring.not_applicable, ring.installed), (1, 1, 0, 0));
    let rest = per_group.iter().find(|(g, _)| *g == UNASSIGNED_COMPUTERS).unwrap().1;
    assert_eq!((rest.failed, rest.installed, rest.needed, rest.unknown), (1, 1, 0, 0));
    // The built-in groups' members are implied: everyone, and those in no group.
    let pool_ref = &pool;
    let members = |g| async move {
        let f = computers::ComputerFilter { group_id: Some(g), limit: 10, ..Default::default() };
        computers::list(pool_ref, &f).await.unwrap().0.into_iter().map(|c| c.computer_id).collect::<Vec<_>>()
    };
    assert_eq!(members(ALL_COMPUTERS).await, ["current", "failing", "needing", "silent"]);
    assert_eq!(members(UNASSIGNED_COMPUTERS).await, ["current", "failing"]);
    assert_eq!(members(group.group_id).await, ["needing", "silent"]);
    assert_eq!(summary::status_distribution(&pool).await.unwrap(), [0, 0, 2, 1, 1, 1, 0]);
    let needed = summary::most_needed(&pool, 10).await.unwrap();
    let counts: Vec<(Uuid, i64)> = needed.iter().map(|n| (n.update_id, n.computers)).collect();
    assert_eq!(counts, vec![(b, 2), (a, 1)], "b is needed by two (needed and downloaded)");
    let hours = summary::contacts_by_hour(&pool, 24).await.unwrap();
    assert_eq!(hours.len(), 24);
    assert_eq!(hours.iter().map(|(_, n)| n).sum::<i64>(), 4, "every computer contacted in the last hour");
}

/// Clients contacting per hour: every hour a computer was in contact counts it once,
/// whichever writer moved last_contact_at (registration, scans, event batches); a week
/// on, cleanup forgets the hour. A computer's history is its update-bearing events,
/// newest first, a page at a time.
#[sqlx::test(migrations = false)]
async fn contacts_count_once_per_computer_and_hour(pool: PgPool) {
    use chrono::DurationRound as _;
    migrated(&pool).await;
    let now = Utc::now();
    let then = (now - Duration::hours(3)).duration_trunc(Duration::hours(1)).unwrap();
    for id in ["a", "b"] {
        let reg =
            Registration { computer_id: id.into(), registered_at: then + Duration::minutes(5), ..Default::default() };
        reporting::register_computer(&pool, &reg).await.unwrap();
    }
    let scan = |t| ClientSync { computer_id: "a".into(), synced_at: t, succeeded: true, ..Default::default() };
    // Two more contacts in the registration hour, then one now.
    reporting::record_client_syncs(&pool, &[scan(then + Duration::minutes(20))]).await.unwrap();
    reporting::record_client_syncs(&pool, &[scan(then + Duration::minutes(40))]).await.unwrap();
    reporting::record_client_syncs(&pool, &[scan(now)]).await.unwrap();
    let (u162, u183) = (Uuid::new_v4(), Uuid::new_v4());
    let event = |event_id: i16, update_id: Option<Uuid>, secs: i64| Event {
        event_instance_id: Uuid::new_v4(),
        time_at_target: now - Duration::seconds(secs),
        computer_id: "b".into(),
        namespace_id: 1,
        event_id,
        update_id,
        win32_hresult: Some(0),
        ..Default::default()
    };
    let u182 = Uuid::new_v4();
    let mut failed = event(182, Some(u182), 2);
    failed.win32_hresult = Some(0x8024_6007_u32 as i32);
    let events = [event(147, None, 4), event(162, Some(u162), 3), failed, event(183, Some(u183), 1)];
    let none = reporting::StatusFold::default();
    reporting::insert_events(&pool, &events, &none).await.unwrap();
    reporting::insert_events(&pool, &[event(147, None, 0)], &none).await.unwrap();

    let hours = summary::contacts_by_hour(&pool, 24).await.unwrap();
    let at = |t: chrono::DateTime<Utc>| hours.iter().find(|(h, _)| *h == t).map(|(_, n)| *n);
    assert_eq!(at(then), Some(2), "a and b registered then; a's later scans in that hour count once");
    assert_eq!(at(now.duration_trunc(Duration::hours(1)).unwrap()), Some(2), "a scanned now, b reported now");
    assert_eq!(hours.iter().map(|(_, n)| n).sum::<i64>(), 4);

    let (first, next) = computers::events(&pool, "b", None, 1).await.unwrap();
    assert_eq!(first.iter().map(|e| (e.event_id, e.update_id)).collect::<Vec<_>>(), vec![(183, u183)]);
    let (second, next) = computers::events(&pool, "b", next, 1).await.unwrap();
    assert_eq!(
        second.iter().map(|e| (e.event_id, e.update_id, e.win32_hresult)).collect::<Vec<_>>(),
        vec![(182, u182, Some(0x8024_6007_u32 as i32))]
    );
    assert!(next.is_none(), "a scan (147) and a download's progress (162) are not history");
    // The history index is built partition by partition after the migration (which only
    // declares it): on the default partition and today's and tomorrow's; then it is valid.
    wsus_store::cleanup::ensure_event_partitions(&pool, 1).await.unwrap();
    let valid = || async {
        let (v,): (bool,) =
            sqlx::query_as("SELECT indisvalid FROM pg_index WHERE indexrelid = 'reporting_event_outcome'::regclass")
                .fetch_one(&pool)
                .await
                .unwrap();
        v
    };
    assert!(!valid().await, "declared, not yet built");
    assert!(wsus_store::cleanup::build_outcome_indexes(&pool).await.unwrap() >= 1);
    assert!(valid().await, "built on every partition and attached");
    assert_eq!(wsus_store::cleanup::build_outcome_indexes(&pool).await.unwrap(), 0, "nothing left to build");
    // The history's event list is the partial index's: the planner reads the index.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET enable_seqscan = off").execute(&mut *conn).await.unwrap();
    let plan: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "EXPLAIN SELECT * FROM reporting_event WHERE computer_id = 'b' AND event_id IN {} \
         ORDER BY time_at_target DESC LIMIT 10",
        computers::HISTORY_EVENTS
    )))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let plan: Vec<String> = plan.into_iter().map(|(l,)| l).collect();
    assert!(
        plan.iter().any(|l| l.contains("Index Cond: (computer_id")) && !plan.iter().any(|l| l.contains("Seq Scan")),
        "the history does not use its index: {plan:#?}"
    );
    drop(conn);

    let old = ClientSync {
        computer_id: "c".into(),
        synced_at: now - Duration::days(10),
        succeeded: true,
        ..Default::default()
    };
    reporting::record_client_syncs(&pool, &[old]).await.unwrap();
    let stored = || async {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM computer_contact_hour").fetch_one(&pool).await.unwrap();
        n
    };
    assert_eq!(stored().await, 5);
    wsus_store::cleanup::purge_history(&pool, 365, 100).await.unwrap();
    assert_eq!(stored().await, 4, "contacts older than a week go, recent ones stay");
}

/// Updates newest first: each update once (its latest revision), by release date, undated
/// ones last, a page at a time, with the filters of the list by id.
#[sqlx::test(migrations = false)]
async fn updates_list_newest_first_by_latest_revision(pool: PgPool) {
    use wsus_store::updates::{self, UpdateFilter};
    migrated(&pool).await;
    let day = |d: u32| Some(Utc.with_ymd_and_hms(2026, 3, d, 12, 0, 0).unwrap());
    let (old, revised, undated, newest, category) =
        (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    // `revised` was released on day 2 and revised on day 9; its first revision is not listed.
    for (id, rev, kind, date, title) in [
        (old, 1, "Software", day(1), "Old"),
        (revised, 1, "Software", day(2), "Revised, first"),
        (revised, 2, "Software", day(9), "Revised"),
        (undated, 1, "Driver", None, "Undated"),
        (newest, 1, "Software", day(20), "Newest"),
        (category, 1, "Category", day(25), "A category"),
    ] {
        sqlx::query(
            "INSERT INTO revision (update_id, revision_number, update_type, creation_date, title, changed_version) \
             VALUES ($1, $2, $3, $4, $5, 1)",
        )
        .bind(id)
        .bind(rev)
        .bind(kind)
        .bind(date)
        .bind(title)
        .execute(&pool)
        .await
        .unwrap();
    }
    let filter = UpdateFilter { limit: 1, ..Default::default() };
    let (mut seen, mut after) = (Vec::new(), None);
    loop {
        let (page, next) = updates::list_newest(&pool, &filter, after).await.unwrap();
        seen.extend(page.into_iter().map(|u| (u.update_id, u.revision_number)));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
        assert!(seen.len() <= 4, "the pages do not end: {seen:?}");
    }
    assert_eq!(seen, vec![(newest, 1), (revised, 2), (old, 1), (undated, 1)]);
    let search = UpdateFilter { search: Some("revised".into()), limit: 10, ..Default::default() };
    let (found, _) = updates::list_newest(&pool, &search, None).await.unwrap();
    assert_eq!(found.iter().map(|u| u.update_id).collect::<Vec<_>>(), vec![revised], "the latest revision's title");
}

/// Computers by last contact: longest silent first (never contacted last) and latest
/// first, a page at a time; a position that is not a time is refused.
#[sqlx::test(migrations = false)]
async fn computers_list_by_last_contact(pool: PgPool) {
    use wsus_store::computers::{ComputerFilter, ComputerSort};
    migrated(&pool).await;
    let t = |h: i64| Some(Utc::now() - Duration::hours(h));
    for (id, contact) in [("recent", t(1)), ("silent", t(48)), ("never", None), ("also-recent", t(1))] {
        sqlx::query("INSERT INTO computer (computer_id, last_contact_at) VALUES ($1, $2)")
            .bind(id)
            .bind(contact)
            .execute(&pool)
            .await
            .unwrap();
    }
    // "recent" and "also-recent" contacted at the same time: the id breaks the tie.
    sqlx::query(
        "UPDATE computer SET last_contact_at = (SELECT last_contact_at FROM computer WHERE computer_id = 'recent') \
                 WHERE computer_id = 'also-recent'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let walk = |sort| {
        let pool = pool.clone();
        async move {
            let (mut seen, mut after) = (Vec::new(), None);
            loop {
                let f = ComputerFilter { sort, after: after.clone(), limit: 1, ..Default::default() };
                let (page, next) = computers::list(&pool, &f).await.unwrap();
                seen.extend(page.into_iter().map(|c| c.computer_id));
                match next {
                    Some(n) if seen.len() < 10 => after = Some(n),
                    _ => break seen,
                }
            }
        }
    };
    assert_eq!(walk(ComputerSort::ContactOldest).await, ["silent", "also-recent", "recent", "never"]);
    assert_eq!(walk(ComputerSort::ContactNewest).await, ["never", "recent", "also-recent", "silent"]);
    let bad = ComputerFilter {
        sort: ComputerSort::ContactOldest,
        after: Some(("yesterday".into(), "x".into())),
        limit: 1,
        ..Default::default()
    };
    assert!(matches!(computers::list(&pool, &bad).await, Err(wsus_store::StoreError::BadPosition(_))));
}
