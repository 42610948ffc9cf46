//! The catalog in Postgres: imports of the real documents, derived columns, approvals.

use sqlx::PgPool;
use uuid::Uuid;
use wsus_metadata::{Update, UpdateIdentity};
use wsus_store::approvals::{self, Action, Approval, ApprovalError};
use wsus_store::revisions::{self, NewRevision};
use wsus_store::{ALL_COMPUTERS, catalog, migrate};

fn reference_docs() -> Vec<NewRevision> {
    let root = wsus_testdata::root().join("captures/wsus-m0-wsusss/docs");
    let mut docs: Vec<NewRevision> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .flatten()
        .map(|e| NewRevision::from_update(&Update::parse(std::fs::read_to_string(e.path()).unwrap()).unwrap()))
        .collect();
    docs.sort_by_key(|d| d.identity);
    docs
}

fn ident(id: &str, rev: i32) -> UpdateIdentity {
    UpdateIdentity { update_id: id.parse().unwrap(), revision_number: rev }
}

#[sqlx::test(migrations = false)]
async fn importing_the_real_documents_is_idempotent(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let docs = reference_docs();
    let v0 = catalog::version(&pool).await.unwrap().version;
    let first = revisions::import_batch(&pool, &docs).await.unwrap();
    assert_eq!((first.revisions, first.new, first.updated, first.unchanged), (9, 9, 0, 0));
    assert_eq!(first.files, 3, "three leaves carry one file each");
    assert!(revisions::refresh_derived(&pool).await.unwrap() > 0);
    let v1 = catalog::version(&pool).await.unwrap().version;
    assert!(v1 > v0);

    let again = revisions::import_batch(&pool, &docs).await.unwrap();
    assert_eq!((again.new, again.updated, again.unchanged, again.files), (0, 0, 9, 0));
    assert_eq!(revisions::refresh_derived(&pool).await.unwrap(), 0);
    assert_eq!(catalog::version(&pool).await.unwrap().version, v1, "a re-import changes nothing");

    let rows = revisions::list(&pool).await.unwrap();
    let leaf = |u: &str| rows.iter().find(|r| r.update_id.to_string().starts_with(u)).unwrap().is_leaf;
    assert!(!leaf("56309036") && !leaf("6964aab4") && leaf("dd78b8a1") && leaf("ff36f0b5"));

    let engine =
        revisions::revision_id(&pool, ident("ff36f0b5-dded-4780-8664-cd78af8b62c1", 200)).await.unwrap().unwrap();
    let cats = revisions::categories(&pool, engine).await.unwrap();
    assert!(cats.contains(&("8c3fcc84-7410-4a95-8b89-a166a0190486".parse().unwrap(), true)), "{cats:?}");

    // The fragments served are the derived ones.
    let leaf_id =
        revisions::revision_id(&pool, ident("266f6222-c89d-43f2-9f8a-69340271e677", 200)).await.unwrap().unwrap();
    let core = revisions::fragment(&pool, leaf_id, "Core", "").await.unwrap().unwrap();
    assert!(core.starts_with("<UpdateIdentity UpdateID=\"266f6222"));
    assert!(revisions::fragment(&pool, leaf_id, "LocalizedProperties", "en").await.unwrap().is_some());
    let files = revisions::files(&pool).await.unwrap();
    assert!(files.iter().all(|f| f.sha1.len() == 20 && f.sha256.as_ref().is_some_and(|s| s.len() == 32)));
}

#[sqlx::test(migrations = false)]
async fn order_of_arrival_does_not_matter(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let docs = reference_docs();
    // Members before their bundles, one per batch, in reverse.
    for d in docs.iter().rev() {
        revisions::import_batch(&pool, std::slice::from_ref(d)).await.unwrap();
        revisions::refresh_derived(&pool).await.unwrap();
    }
    let reversed: Vec<(Uuid, bool, bool)> =
        revisions::list(&pool).await.unwrap().into_iter().map(|r| (r.update_id, r.is_leaf, r.is_bundle)).collect();
    let mut reversed_sorted = reversed.clone();
    reversed_sorted.sort();

    sqlx::query("TRUNCATE revision CASCADE").execute(&pool).await.unwrap();
    revisions::import_batch(&pool, &docs).await.unwrap();
    revisions::refresh_derived(&pool).await.unwrap();
    let mut at_once: Vec<(Uuid, bool, bool)> =
        revisions::list(&pool).await.unwrap().into_iter().map(|r| (r.update_id, r.is_leaf, r.is_bundle)).collect();
    at_once.sort();
    assert_eq!(reversed_sorted, at_once);
}

#[sqlx::test(migrations = false)]
async fn a_changed_document_keeps_its_revision_id(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let docs = reference_docs();
    revisions::import_batch(&pool, &docs).await.unwrap();
    let target = ident("dd78b8a1-0b20-45c1-add6-4da72e9364cf", 202);
    let before = revisions::revision_id(&pool, target).await.unwrap().unwrap();
    let doc = docs.iter().find(|d| d.identity == target).unwrap();
    let edited = Update::parse(doc.xml.replace("OOBE ZDP</upd:Title>", "OOBE ZDP (edited)</upd:Title>")).unwrap();
    let outcome = revisions::import_batch(&pool, &[NewRevision::from_update(&edited)]).await.unwrap();
    assert_eq!((outcome.updated, outcome.new), (1, 0));
    assert_eq!(revisions::revision_id(&pool, target).await.unwrap(), Some(before));
    let title = revisions::fragment(&pool, before, "LocalizedProperties", "en").await.unwrap().unwrap();
    assert!(title.contains("(edited)"));
}

#[sqlx::test(migrations = false)]
async fn approvals_declines_and_eulas_move_the_catalog_version(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    revisions::import_batch(&pool, &reference_docs()).await.unwrap();
    let kb = "a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe".parse().unwrap();
    let version = || async { catalog::version(&pool).await.unwrap().version };

    let v = version().await;
    let approval = Approval {
        update_id: kb,
        group_id: ALL_COMPUTERS,
        action: Action::Install,
        deadline: None,
        admin_name: Some("admin".into()),
    };
    let first = approvals::approve(&pool, &approval).await.unwrap();
    assert!(version().await > v);
    let deployments = approvals::deployments(&pool).await.unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!((deployments[0].revision_number, deployments[0].action), (Some(200), Action::Install));

    // Re-approving replaces the group's approval (the old one stays as a dead row).
    let deadline = Some("2026-12-01T00:00:00Z".parse().unwrap());
    let second = approvals::approve(&pool, &Approval { deadline, ..approval.clone() }).await.unwrap();
    assert_ne!(first, second);
    let deployments = approvals::deployments(&pool).await.unwrap();
    assert_eq!((deployments.len(), deployments[0].deadline), (1, deadline));

    assert!(matches!(
        approvals::approve(&pool, &Approval { update_id: Uuid::new_v4(), ..approval.clone() }).await,
        Err(ApprovalError::UnknownUpdate(_))
    ));
    assert!(matches!(
        approvals::approve(&pool, &Approval { group_id: Uuid::new_v4(), ..approval.clone() }).await,
        Err(ApprovalError::UnknownGroup(_))
    ));

    let v = version().await;
    assert!(approvals::unapprove(&pool, kb, ALL_COMPUTERS).await.unwrap());
    assert!(!approvals::unapprove(&pool, kb, ALL_COMPUTERS).await.unwrap());
    assert!(version().await > v);
    let (dead,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM deployment WHERE deleted_at IS NOT NULL").fetch_one(&pool).await.unwrap();
    assert_eq!(dead, 2, "removed approvals stay for GetDeployments");

    approvals::approve(&pool, &approval).await.unwrap();
    assert!(approvals::decline(&pool, kb, Some("admin")).await.unwrap());
    assert!(approvals::deployments(&pool).await.unwrap().is_empty(), "declining removes approvals");
    assert!(matches!(approvals::approve(&pool, &approval).await, Err(ApprovalError::Declined(_))));
    assert!(!approvals::decline(&pool, kb, None).await.unwrap());

    let eula = Uuid::new_v4();
    let v = version().await;
    assert!(approvals::accept_eula(&pool, eula, Some("admin")).await.unwrap());
    assert!(version().await > v);
    assert_eq!(approvals::accepted_eulas(&pool).await.unwrap(), vec![eula]);
}

#[sqlx::test(migrations = false)]
async fn admin_state_merges_idempotently(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    revisions::import_batch(&pool, &reference_docs()).await.unwrap();
    let kb: Uuid = "a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe".parse().unwrap();
    let pilot = Uuid::new_v4();
    approvals::create_group(&pool, pilot, "Pilot", None).await.unwrap();
    let ring = Uuid::new_v4();
    approvals::create_group(&pool, ring, "Pilot ring 1", Some(pilot)).await.unwrap();
    approvals::approve(
        &pool,
        &Approval { update_id: kb, group_id: ring, action: Action::Install, deadline: None, admin_name: None },
    )
    .await
    .unwrap();
    approvals::accept_eula(&pool, Uuid::new_v4(), None).await.unwrap();
    let state = approvals::admin_state(&pool).await.unwrap();

    let v = catalog::version(&pool).await.unwrap().version;
    assert_eq!(approvals::merge_admin_state(&pool, &state).await.unwrap(), 0);
    assert_eq!(catalog::version(&pool).await.unwrap().version, v, "merging the same state changes nothing");

    // Into an empty catalog of the same updates, children listed before parents.
    sqlx::query("DELETE FROM deployment").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM target_group WHERE NOT is_builtin").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM accepted_eula").execute(&pool).await.unwrap();
    let mut reordered = state.clone();
    reordered.groups.reverse();
    assert!(approvals::merge_admin_state(&pool, &reordered).await.unwrap() > 0);
    assert_eq!(approvals::admin_state(&pool).await.unwrap(), state);
}

/// The migration that added titles and KB numbers fills them for revisions stored before
/// it, from the stored fragments and documents, as an import would.
#[sqlx::test(migrations = false)]
async fn titles_and_kb_numbers_of_stored_revisions_are_filled_in(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    revisions::import_batch(&pool, &reference_docs()).await.unwrap();
    let read = || async {
        sqlx::query_as::<_, (Uuid, Option<String>, Option<String>)>(
            "SELECT update_id, title, kb_article_id FROM revision ORDER BY update_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let imported = read().await;
    assert!(imported.iter().any(|(_, _, kb)| kb.as_deref() == Some("2267602")), "{imported:?}");
    assert!(imported.iter().all(|(_, t, _)| t.is_some()), "{imported:?}");
    sqlx::query("UPDATE revision SET title = NULL, kb_article_id = NULL").execute(&pool).await.unwrap();
    let migration = include_str!("../../../migrations/0005_administration.sql");
    for statement in migration.split(';').map(str::trim).filter(|s| s.contains("UPDATE revision r SET")) {
        let sql = statement.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
    }
    let filled = read().await;
    // XML escapes stay escaped in the SQL fill; the real titles here have none.
    assert_eq!(filled, imported);
}

/// A client's miss marks a file recorded as present lost only when it was present before
/// the miss: a file sync-worker finished in between is not fetched again.
#[sqlx::test(migrations = false)]
async fn a_client_miss_only_loses_files_present_before_it(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let sha1 = [9u8; 20];
    sqlx::query(
        "INSERT INTO file (sha1, size, file_name, content_state, content_changed_at) \
         VALUES ($1, 1, 'a.cab', 'present', now())",
    )
    .bind(sha1.as_slice())
    .execute(&pool)
    .await
    .unwrap();
    let state = || async {
        let (s,): (String,) = sqlx::query_as("SELECT content_state FROM file WHERE sha1 = $1")
            .bind(sha1.as_slice())
            .fetch_one(&pool)
            .await
            .unwrap();
        s
    };
    let before = chrono::Utc::now() - chrono::Duration::seconds(10);
    assert!(!revisions::request_download(&pool, &sha1, "client_miss", Some(before)).await.unwrap());
    assert_eq!(state().await, "present", "finished after the miss: left alone");
    let after = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert!(revisions::request_download(&pool, &sha1, "client_miss", Some(after)).await.unwrap());
    assert_eq!(state().await, "absent", "present before the miss, missing now: lost, and queued");
}

/// MS-WSUSSS GetRevisionIdList lists by change version and membership together: a
/// downstream server that asks while this server is itself syncing (documents stored,
/// membership not yet derived), or before a bundle gives a member its product, must find
/// those revisions after its anchor once their membership is there.
#[sqlx::test(migrations = false)]
async fn no_revision_escapes_an_incremental_downstream(pool: PgPool) {
    use wsus_store::uss;
    migrate::run(&pool).await.unwrap();
    let docs = reference_docs();
    let (bundles, rest): (Vec<NewRevision>, Vec<NewRevision>) = docs.into_iter().partition(|d| !d.bundled.is_empty());
    assert!(!bundles.is_empty() && !rest.is_empty());
    let engine = ident("ff36f0b5-dded-4780-8664-cd78af8b62c1", 200);
    // The products and classifications the bundles name, as a downstream's filter.
    let filter: Vec<Uuid> = bundles
        .iter()
        .flat_map(|b| b.prerequisites.iter().filter(|c| c.is_category).flat_map(|c| c.update_ids.clone()))
        .collect();
    let listed = |since: Option<i64>| {
        let (pool, filter) = (&pool, &filter);
        async move {
            let f = uss::UpdateFilter {
                products: filter,
                classifications: filter,
                whole_products: &[],
                whole_classifications: &[],
            };
            uss::update_revisions(pool, since, Some(f))
                .await
                .unwrap()
                .into_iter()
                .map(|(u, n)| UpdateIdentity { update_id: u, revision_number: n })
                .collect::<Vec<_>>()
        }
    };

    // Documents stored, membership not derived yet: a downstream asks and keeps its anchor.
    revisions::import_batch(&pool, &rest).await.unwrap();
    let mid_sync = catalog::version(&pool).await.unwrap().version;
    assert!(!listed(None).await.contains(&engine), "no membership yet");
    revisions::refresh_derived(&pool).await.unwrap();
    // The bundles arrive later: the engine belongs to their product through them.
    let before_bundles = catalog::version(&pool).await.unwrap().version;
    revisions::import_batch(&pool, &bundles).await.unwrap();
    revisions::refresh_derived(&pool).await.unwrap();
    assert!(listed(Some(mid_sync)).await.contains(&engine), "listed after the anchor taken mid-sync");
    assert!(listed(Some(before_bundles)).await.contains(&engine), "its membership changed: listed again");
    let now = catalog::version(&pool).await.unwrap().version;
    assert!(!listed(Some(now)).await.contains(&engine), "and not again once the downstream has it");
    // A product asked for whole (Delta false) lists all it holds, whatever the anchor.
    let whole = uss::UpdateFilter {
        products: &filter,
        classifications: &filter,
        whole_products: &filter,
        whole_classifications: &[],
    };
    let all = uss::update_revisions(&pool, Some(now), Some(whole)).await.unwrap();
    assert!(all.contains(&(engine.update_id, engine.revision_number)), "{all:?}");
}

/// The rows a document brings go out with their revision (migration 0010's trigger takes
/// the place of ON DELETE CASCADE); an edge a document names twice is stored once.
#[sqlx::test(migrations = false)]
async fn a_revisions_rows_go_with_it_and_a_repeated_edge_is_stored_once(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let mut docs = reference_docs();
    let leaf = docs.iter_mut().find(|d| !d.prerequisites.is_empty() && !d.files.is_empty()).expect("a leaf");
    let clause = leaf.prerequisites[0].clone();
    leaf.prerequisites[0].update_ids.extend(clause.update_ids.clone());
    leaf.superseded.extend(leaf.superseded.clone());
    leaf.files.push(leaf.files[0].clone());
    let identity = leaf.identity;
    revisions::import_batch(&pool, &docs).await.unwrap();
    revisions::refresh_derived(&pool).await.unwrap();
    let rid = revisions::revision_id(&pool, identity).await.unwrap().unwrap();
    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            let sql = format!("SELECT count(*) FROM {table} WHERE revision_id = $1");
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(rid).fetch_one(&pool).await.unwrap();
            n
        }
    };
    assert_eq!(
        count("prerequisite").await as usize,
        clause.update_ids.len() + docs_edges_beyond_first(&docs, identity)
    );
    assert_eq!(count("revision_file").await, 1);
    assert_eq!(count("revision_xml").await, 1);
    assert!(count("fragment").await >= 2 && count("revision_category").await >= 1);

    sqlx::query("DELETE FROM revision WHERE revision_id = $1").bind(rid).execute(&pool).await.unwrap();
    for table in [
        "revision_xml",
        "fragment",
        "prerequisite",
        "bundle_member",
        "supersedence",
        "revision_file",
        "revision_category",
    ] {
        assert_eq!(count(table).await, 0, "{table} keeps rows of a deleted revision");
    }
}

/// Prerequisite edges of the revision's clauses after the first.
fn docs_edges_beyond_first(docs: &[NewRevision], identity: UpdateIdentity) -> usize {
    let d = docs.iter().find(|d| d.identity == identity).unwrap();
    d.prerequisites.iter().skip(1).map(|c| c.update_ids.len()).sum()
}

/// Approving the captured Defender bundle KB2267602 (a2fef9b0) wants the files of the
/// bundles it holds as well: AM_Engine.exe belongs to ff36f0b5, a member of 1f9bd9bb,
/// itself a member of a2fef9b0 (captures/wsus-m0-wsusss/docs). The real agent fetched
/// AM_Engine.exe after that approval (notes/observed-behaviour.md: 4 of the 9 files).
#[sqlx::test(migrations = false)]
async fn an_approved_bundle_wants_the_files_of_the_bundles_it_holds(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    revisions::import_batch(&pool, &reference_docs()).await.unwrap();
    revisions::refresh_derived(&pool).await.unwrap();
    let queued = || async {
        sqlx::query_as::<_, (String,)>("SELECT f.file_name FROM content_download q JOIN file f USING (sha1) ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(n,)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(wsus_store::dss::queue_wanted_files(&pool, false).await.unwrap(), 0, "nothing approved");
    let approval = Approval {
        update_id: "a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe".parse().unwrap(),
        group_id: ALL_COMPUTERS,
        action: Action::Install,
        deadline: None,
        admin_name: None,
    };
    approvals::approve(&pool, &approval).await.unwrap();
    wsus_store::dss::queue_wanted_files(&pool, false).await.unwrap();
    assert_eq!(queued().await, ["AM_Delta.exe", "AM_Engine.exe"], "a direct member's file and a nested one's");
    // Every file, whatever is approved, once.
    wsus_store::dss::queue_wanted_files(&pool, true).await.unwrap();
    assert_eq!(queued().await.len(), 3);
}
