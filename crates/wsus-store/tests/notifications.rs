//! The notification outbox: an event is written, once per channel that wants it, in the
//! transaction that records it; senders claim disjoint rows; a failing delivery is tried
//! again with a growing pause and then given up. The sync imports the real lab documents
//! (captures/wsus-m0-wsusss/docs).

use sqlx::PgPool;
use uuid::Uuid;
use wsus_metadata::Update;
use wsus_store::notifications::{self, Channel};
use wsus_store::revisions::{self, NewRevision};
use wsus_store::run::{RunResult, Trigger};
use wsus_store::{cleanup, migrate, sync_history};

fn channel(name: &str, events: &[&str], enabled: bool) -> Channel {
    Channel {
        channel_id: Uuid::new_v4(),
        name: name.into(),
        kind: "webhook".into(),
        target: format!("https://hooks.example/{name}"),
        target_env: None,
        secret_env: None,
        events: events.iter().map(|e| e.to_string()).collect(),
        enabled,
        changed_at: chrono::Utc::now(),
    }
}

async fn outbox(pool: &PgPool) -> Vec<(Uuid, String, serde_json::Value)> {
    sqlx::query_as("SELECT channel_id, event_kind, payload FROM notification_outbox ORDER BY notification_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn events_are_written_with_what_records_them(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let ops = channel("ops", &["updates_synchronized", "sync_failed"], true);
    let off = channel("off", &["updates_synchronized"], false);
    let janitor = channel("janitor", &["cleanup_failed"], true);
    for c in [&ops, &off, &janitor] {
        notifications::put_channel(&pool, c).await.unwrap();
    }

    // A sync that brought the lab's documents: one notification, to the one channel that
    // wants it and is enabled, counting the new software updates.
    let run = sync_history::start(&pool, "http://uss.example:8530", Trigger::Schedule).await.unwrap();
    lab_catalog(&pool).await;
    revisions::refresh_derived(&pool).await.unwrap();
    let (software,): (i64,) =
        sqlx::query_as("SELECT count(DISTINCT update_id) FROM revision WHERE update_type IN ('Software', 'Driver')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(software > 0);
    sync_history::finish(&pool, run.sync_id, RunResult::Succeeded, None).await.unwrap();
    let told = outbox(&pool).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!((told[0].0, told[0].1.as_str()), (ops.channel_id, "updates_synchronized"));
    let payload = &told[0].2;
    assert_eq!(payload["count"], software, "{payload}");
    assert_eq!(payload["sync_id"], run.sync_id);
    let counted: i64 = payload["by_classification"].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum();
    assert_eq!(counted, software);
    assert!(payload["updates"].as_array().unwrap().iter().any(|u| u["kb_article_id"] == "2267602"), "{payload}");

    // A sync that brought nothing new tells nothing; a failed one says why.
    let quiet = sync_history::start(&pool, "http://uss.example:8530", Trigger::Schedule).await.unwrap();
    sync_history::finish(&pool, quiet.sync_id, RunResult::Succeeded, None).await.unwrap();
    assert_eq!(outbox(&pool).await.len(), 1);
    let broken = sync_history::start(&pool, "http://uss.example:8530", Trigger::Manual).await.unwrap();
    sync_history::finish(&pool, broken.sync_id, RunResult::Failed, Some("the upstream refused the cookie"))
        .await
        .unwrap();
    let told = outbox(&pool).await;
    assert_eq!(told.len(), 2);
    assert_eq!((told[1].0, told[1].1.as_str()), (ops.channel_id, "sync_failed"));
    assert_eq!(told[1].2["error"], "the upstream refused the cookie");

    // What a failed sync imported is told by the next successful one.
    let failing = sync_history::start(&pool, "http://uss.example:8530", Trigger::Schedule).await.unwrap();
    let leaf = std::fs::read_to_string(
        wsus_testdata::root()
            .join("captures/wsus-m0-wsusss/docs")
            .join("266f6222-c89d-43f2-9f8a-69340271e677-r200.xml"),
    )
    .unwrap();
    let copy = leaf.replace("266f6222-c89d-43f2-9f8a-69340271e677", "00000000-1111-4222-8333-444444444444");
    revisions::import_batch(&pool, &[NewRevision::from_update(&Update::parse(copy).unwrap())]).await.unwrap();
    sync_history::finish(&pool, failing.sync_id, RunResult::Failed, Some("cut off")).await.unwrap();
    let next = sync_history::start(&pool, "http://uss.example:8530", Trigger::Schedule).await.unwrap();
    sync_history::finish(&pool, next.sync_id, RunResult::Succeeded, None).await.unwrap();
    let told = outbox(&pool).await;
    let last = told.last().unwrap();
    assert_eq!((last.1.as_str(), &last.2["count"]), ("updates_synchronized", &serde_json::json!(1)), "{told:?}");
    assert_eq!(last.2["updates"][0]["update_id"], "00000000-1111-4222-8333-444444444444");

    // A failed cleanup goes to the channel that wants that.
    let cleanup_run = cleanup::start_run(&pool, Trigger::Schedule).await.unwrap();
    cleanup::finish_run(&pool, cleanup_run.run_id, Some("disk full")).await.unwrap();
    let told = outbox(&pool).await;
    assert_eq!(
        (told.last().unwrap().0, told.last().unwrap().1.as_str(), told.last().unwrap().2["error"].as_str()),
        (janitor.channel_id, "cleanup_failed", Some("disk full"))
    );
}

/// Records `n` syncs that failed (each one sync_failed notification).
async fn failed_syncs(pool: &PgPool, n: usize) {
    for i in 0..n {
        let run = sync_history::start(pool, "http://uss.example:8530", Trigger::Schedule).await.unwrap();
        sync_history::finish(pool, run.sync_id, RunResult::Failed, Some(&format!("failure {i}"))).await.unwrap();
    }
}

#[sqlx::test(migrations = false)]
async fn deliveries_are_claimed_once_retried_and_given_up(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let hook = channel("hook", &["sync_failed"], true);
    notifications::put_channel(&pool, &hook).await.unwrap();
    failed_syncs(&pool, 3).await;

    // Two senders at once take disjoint rows, and a claimed row is not due while held.
    let hold = chrono::Duration::minutes(2);
    let (a, b) = tokio::join!(notifications::claim_due(&pool, 2, hold), notifications::claim_due(&pool, 2, hold));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 3);
    assert!(a.iter().all(|x| b.iter().all(|y| x.notification_id != y.notification_id)));
    assert!(notifications::claim_due(&pool, 10, hold).await.unwrap().is_empty());

    // One is sent; one fails three times (due again each time after its pause) and is given up.
    let mut claimed: Vec<_> = a.into_iter().chain(b).collect();
    claimed.sort_by_key(|d| d.notification_id);
    let (first, mut second) = (claimed[0].clone(), claimed[1].clone());
    notifications::sent(&pool, &first).await.unwrap();
    let due_in = |id: i64| {
        let pool = pool.clone();
        async move {
            let (seconds,): (f64,) = sqlx::query_as(
                "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM notification_outbox WHERE notification_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
            seconds
        }
    };
    let due_now = |id: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query("UPDATE notification_outbox SET next_attempt_at = now() WHERE notification_id = $1")
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    let retry = notifications::Retry { first_pause: chrono::Duration::seconds(30), max_attempts: 3 };
    assert!(!notifications::attempt_failed(&pool, &second, "503", retry).await.unwrap());
    let pause1 = due_in(second.notification_id).await;
    due_now(second.notification_id).await;
    second = notifications::claim_due(&pool, 10, hold).await.unwrap().remove(0);
    assert!(!notifications::attempt_failed(&pool, &second, "503", retry).await.unwrap());
    let pause2 = due_in(second.notification_id).await;
    assert!(pause1 > 20.0 && pause2 > pause1 * 1.5, "{pause1} then {pause2}");
    due_now(second.notification_id).await;
    let stale = second.clone();
    second = notifications::claim_due(&pool, 10, hold).await.unwrap().remove(0);
    assert_ne!(stale.claim, second.claim);
    // A sender whose claim was taken over records nothing.
    assert!(!notifications::attempt_failed(&pool, &stale, "late", retry).await.unwrap());
    notifications::sent(&pool, &stale).await.unwrap();
    assert!(notifications::attempt_failed(&pool, &second, "connection refused", retry).await.unwrap(), "given up");
    let recent = notifications::recent(&pool, 10).await.unwrap();
    let state = |id: i64| recent.iter().find(|n| n.notification_id == id).unwrap().clone();
    assert_eq!((state(first.notification_id).state.as_str(), state(first.notification_id).attempts), ("sent", 1));
    let gave_up = state(second.notification_id);
    assert_eq!(
        (gave_up.state.as_str(), gave_up.attempts, gave_up.last_error.as_deref()),
        ("failed", 3, Some("connection refused"))
    );

    // A removed channel takes what it had still to send with it.
    assert!(notifications::delete_channel(&pool, hook.channel_id).await.unwrap());
    assert!(notifications::recent(&pool, 10).await.unwrap().is_empty());
}

/// The lab's documents imported; the update id of KB2267602's newest revision.
async fn lab_catalog(pool: &PgPool) -> Uuid {
    let root = wsus_testdata::root().join("captures/wsus-m0-wsusss/docs");
    let docs: Vec<NewRevision> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| NewRevision::from_update(&Update::parse(std::fs::read_to_string(e.path()).unwrap()).unwrap()))
        .collect();
    revisions::import_batch(pool, &docs).await.unwrap();
    let (id,): (Uuid,) = sqlx::query_as("SELECT update_id FROM revision WHERE kb_article_id = '2267602' LIMIT 1")
        .fetch_one(pool)
        .await
        .unwrap();
    id
}

async fn set_status(pool: &PgPool, computer: &str, update_id: Uuid, status: i16) {
    sqlx::query(
        "INSERT INTO computer (computer_id, dns_name) VALUES ($1, $1 || '.corp.example') ON CONFLICT DO NOTHING",
    )
    .bind(computer)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO update_status (computer_id, update_id, status) VALUES ($1, $2, $3) \
         ON CONFLICT (computer_id, update_id) DO UPDATE SET status = $3",
    )
    .bind(computer)
    .bind(update_id)
    .bind(status)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_scheduled_notification_is_sent_by_one_of_many(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let kind = notifications::EventKind::StatusSummary;
    let hook = channel("hook", &["status_summary"], true);
    notifications::put_channel(&pool, &hook).await.unwrap();
    let now = chrono::Utc::now();
    let due = now - chrono::Duration::seconds(5);
    let next = now + chrono::Duration::days(1);
    notifications::set_schedule(&pool, kind, Some(due)).await.unwrap();
    // Not yet due: nothing is taken.
    notifications::set_schedule(&pool, kind, Some(next)).await.unwrap();
    assert!(!notifications::take_scheduled(&pool, kind, next, next, &serde_json::json!({})).await.unwrap());
    notifications::set_schedule(&pool, kind, Some(due)).await.unwrap();

    // Eight replicas see it due at once: exactly one sends it and moves it on.
    let payload = serde_json::json!({ "computers": { "total": 0 } });
    let replicas: Vec<_> = (0..8)
        .map(|_| {
            let (pool, payload) = (pool.clone(), payload.clone());
            tokio::spawn(async move { notifications::take_scheduled(&pool, kind, due, next, &payload).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for r in replicas {
        taken += usize::from(r.await.unwrap());
    }
    assert_eq!(taken, 1);
    assert_eq!(outbox(&pool).await.len(), 1);
    let moved = notifications::next_scheduled(&pool, kind).await.unwrap().unwrap();
    assert!((moved - next).num_milliseconds().abs() < 1, "{moved} vs {next}");
    notifications::set_schedule(&pool, kind, None).await.unwrap();
    assert_eq!(notifications::next_scheduled(&pool, kind).await.unwrap(), None);
}

#[sqlx::test(migrations = false)]
async fn a_condition_is_told_once_until_it_ends(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let kb = lab_catalog(&pool).await;
    let other = Uuid::new_v4();
    set_status(&pool, "pc-1", kb, 5).await;
    set_status(&pool, "pc-1", other, 5).await;
    set_status(&pool, "pc-2", kb, 5).await;
    set_status(&pool, "pc-3", kb, 4).await;

    // While no channel wants it, nothing is looked at or remembered...
    assert_eq!(notifications::tell_failed_installs(&pool, 100).await.unwrap(), 0);
    let (remembered,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM install_failure_told").fetch_one(&pool).await.unwrap();
    assert_eq!(remembered, 0);
    let hook = channel("hook", &["installs_failed", "downstream_silent", "certificate_expiring"], true);
    notifications::put_channel(&pool, &hook).await.unwrap();

    // ...then two computers failing are told once (naming the update by its KB and
    // title), by one of two replicas looking at once.
    let (a, b) =
        tokio::join!(notifications::tell_failed_installs(&pool, 100), notifications::tell_failed_installs(&pool, 100));
    assert_eq!(a.unwrap() + b.unwrap(), 3);
    let told = outbox(&pool).await;
    assert_eq!(told.len(), 1, "{told:?}");
    let p = &told[0].2;
    assert_eq!((p["computers"].as_i64(), p["installs"].as_i64()), (Some(2), Some(3)), "{p}");
    assert_eq!(p["named"][0]["name"], "pc-1.corp.example");
    assert_eq!(p["named"][0]["updates"].as_array().unwrap().len(), 2);
    assert!(p["named"][1]["updates"][0]["kb_article_id"] == "2267602", "{p}");
    assert_eq!(notifications::tell_failed_installs(&pool, 100).await.unwrap(), 0, "told once");

    // pc-1's install of `kb` succeeds, then fails again: told again, alone.
    set_status(&pool, "pc-1", kb, 4).await;
    assert_eq!(notifications::tell_failed_installs(&pool, 100).await.unwrap(), 0);
    set_status(&pool, "pc-1", kb, 5).await;
    assert_eq!(notifications::tell_failed_installs(&pool, 100).await.unwrap(), 1);
    let told = outbox(&pool).await;
    assert_eq!(told.len(), 2);
    assert_eq!((told[1].2["computers"].as_i64(), told[1].2["installs"].as_i64()), (Some(1), Some(1)));

    // Downstream servers: the direct one silent for three days is told of; a recent one,
    // one that never rolled up and a grandchild are not.
    let silent = Uuid::new_v4();
    for (id, parent, ago) in [
        (silent, None, Some(72)),
        (Uuid::new_v4(), None, Some(1)),
        (Uuid::new_v4(), None, None),
        (Uuid::new_v4(), Some(silent), Some(72)),
    ] {
        sqlx::query(
            "INSERT INTO downstream_server (server_id, fqdn, parent_server_id, last_rollup_time) \
             VALUES ($1, $1::text || '.example', $2, now() - make_interval(hours => $3))",
        )
        .bind(id)
        .bind(parent)
        .bind(ago)
        .execute(&pool)
        .await
        .unwrap();
    }
    let hours48 = chrono::Duration::hours(48);
    let told = notifications::tell_silent_downstreams(&pool, hours48).await.unwrap();
    assert_eq!(told.iter().map(|s| s.server_id).collect::<Vec<_>>(), [silent]);
    assert!(notifications::tell_silent_downstreams(&pool, hours48).await.unwrap().is_empty(), "told once");
    // It rolls up again (forgotten), then falls silent again: told again.
    let rolled = |hours: i32| {
        sqlx::query(
            "UPDATE downstream_server SET last_rollup_time = now() - make_interval(hours => $2) WHERE server_id = $1",
        )
        .bind(silent)
        .bind(hours)
        .execute(&pool)
    };
    rolled(0).await.unwrap();
    assert!(notifications::tell_silent_downstreams(&pool, hours48).await.unwrap().is_empty());
    rolled(50).await.unwrap();
    assert_eq!(notifications::tell_silent_downstreams(&pool, hours48).await.unwrap().len(), 1);
    let kinds: Vec<String> = outbox(&pool).await.into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(kinds, ["installs_failed", "installs_failed", "downstream_silent", "downstream_silent"]);

    // A certificate's stage is told once however often it is looked at.
    let kind = notifications::EventKind::CertificateExpiring;
    let payload = serde_json::json!({ "thumbprint": "AB12", "days_left": 20 });
    assert!(notifications::tell_once(&pool, kind, "AB12:30", &payload).await.unwrap());
    assert!(!notifications::tell_once(&pool, kind, "AB12:30", &payload).await.unwrap());
    assert!(notifications::tell_once(&pool, kind, "AB12:14", &payload).await.unwrap());
    assert_eq!(outbox(&pool).await.len(), 6);
}

#[sqlx::test(migrations = false)]
async fn cleanup_purges_old_deliveries_but_not_those_still_to_send(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let hook = channel("hook", &["sync_failed"], true);
    notifications::put_channel(&pool, &hook).await.unwrap();
    failed_syncs(&pool, 3).await;
    sqlx::query(
        "UPDATE notification_outbox SET created_at = now() - interval '400 days', \
         state = (ARRAY['sent', 'failed', 'pending'])[notification_id - (SELECT min(notification_id) FROM notification_outbox) + 1]",
    )
    .execute(&pool)
    .await
    .unwrap();
    cleanup::purge_history(&pool, 365, 100).await.unwrap();
    let left: Vec<(String,)> = sqlx::query_as("SELECT state FROM notification_outbox").fetch_all(&pool).await.unwrap();
    assert_eq!(left, [("pending".to_owned(),)]);
}
