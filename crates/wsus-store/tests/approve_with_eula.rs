//! An approval that accepts license terms does both in one transaction: refused, it
//! leaves the terms unaccepted; granted, both are visible at one catalog version. On
//! the real lab documents (captures/wsus-m0-wsusss/docs), KB2267602's bundle given a EULA.

use sqlx::PgPool;
use uuid::{Uuid, uuid};
use wsus_metadata::Update;
use wsus_store::approvals::{self, Action, Approval, ApprovalError};
use wsus_store::revisions::{self, NewRevision};
use wsus_store::{catalog, migrate};

const KB2267602: Uuid = uuid!("a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe");

async fn catalog_with_eula(pool: &PgPool, eula: Uuid) {
    let root = wsus_testdata::root().join("captures/wsus-m0-wsusss/docs");
    let docs: Vec<NewRevision> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| {
            let mut xml = std::fs::read_to_string(e.path()).unwrap();
            if e.file_name().to_string_lossy().starts_with("a2fef9b0") {
                xml = xml.replacen("<upd:Properties ", &format!("<upd:Properties EulaID=\"{eula}\" "), 1);
            }
            NewRevision::from_update(&Update::parse(xml).unwrap())
        })
        .collect();
    revisions::import_batch(pool, &docs).await.unwrap();
    revisions::refresh_derived(pool).await.unwrap();
}

fn install(group_id: Uuid) -> Approval {
    Approval { update_id: KB2267602, group_id, action: Action::Install, deadline: None, admin_name: Some("t".into()) }
}

#[sqlx::test(migrations = false)]
async fn approving_with_the_license_terms_is_one_transaction(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let eula = Uuid::new_v4();
    catalog_with_eula(&pool, eula).await;
    let group = approvals::add_group(&pool, "Pilot", None).await.unwrap();

    // Refused (no such group): the terms stay unaccepted and nothing moved.
    let before = catalog::version(&pool).await.unwrap().version;
    let refused = approvals::approve_accepting_eula(&pool, &install(Uuid::new_v4()), "admin").await;
    assert!(matches!(refused, Err(ApprovalError::UnknownGroup(_))), "{refused:?}");
    assert!(approvals::accepted_eulas(&pool).await.unwrap().is_empty());
    assert_eq!(catalog::version(&pool).await.unwrap().version, before);

    // Without accepting, an install needs the terms.
    let plain = approvals::approve(&pool, &install(group.group_id)).await;
    assert!(matches!(plain, Err(ApprovalError::EulaNotAccepted { .. })), "{plain:?}");

    // Granted: accepted and approved, at one new catalog version.
    let id = approvals::approve_accepting_eula(&pool, &install(group.group_id), "admin").await.unwrap();
    assert_eq!(approvals::accepted_eulas(&pool).await.unwrap(), vec![eula]);
    assert_eq!(catalog::version(&pool).await.unwrap().version, before + 1);
    let approved = approvals::approvals_of(&pool, KB2267602).await.unwrap();
    assert_eq!(approved.iter().map(|d| d.deployment_id).collect::<Vec<_>>(), [id]);
}
