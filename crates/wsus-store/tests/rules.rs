//! Automatic approval rules on the real documents: a rule approves what arrives after it
//! (bundles, not their members), approvals follow an update's newest revision, and an
//! update whose newest revision is expired is declined.

use sqlx::PgPool;
use uuid::{Uuid, uuid};
use wsus_metadata::Update;
use wsus_store::revisions::{self, NewRevision};
use wsus_store::rules::{self, Applied, Rule};
use wsus_store::{approvals, migrate, uss};

const KB2267602: Uuid = uuid!("a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe");
const DEFINITION_UPDATES: Uuid = uuid!("e0789628-ce08-4437-be74-2495b842f43b");

fn docs() -> Vec<(String, String)> {
    let root = wsus_testdata::root().join("captures/wsus-m0-wsusss/docs");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

fn revision(xml: &str) -> NewRevision {
    NewRevision::from_update(&Update::parse(xml.to_owned()).unwrap())
}

/// The bundle's document as a later revision (and, optionally, expired).
fn later(xml: &str, number: i32, expired: bool) -> NewRevision {
    let mut xml = xml.replacen(
        &format!("UpdateID=\"{KB2267602}\" RevisionNumber=\"200\""),
        &format!("UpdateID=\"{KB2267602}\" RevisionNumber=\"{number}\""),
        1,
    );
    if expired {
        xml = xml.replacen("PublicationState=\"Published\"", "PublicationState=\"Expired\"", 1);
    }
    revision(&xml)
}

#[sqlx::test(migrations = false)]
async fn rules_approve_new_revisions_follow_and_expire(pool: PgPool) {
    migrate::run(&pool).await.unwrap();
    let all = docs();
    let (bundle, rest): (Vec<_>, Vec<_>) = all.iter().partition(|(name, _)| name.starts_with("a2fef9b0"));
    revisions::import_batch(&pool, &rest.iter().map(|(_, x)| revision(x)).collect::<Vec<_>>()).await.unwrap();
    revisions::refresh_derived(&pool).await.unwrap();
    let group = approvals::add_group(&pool, "Definitions", None).await.unwrap();
    let rule = Rule {
        rule_id: Uuid::new_v4(),
        name: "Definitions".into(),
        enabled: true,
        classification_ids: vec![DEFINITION_UPDATES],
        product_ids: vec![],
        group_ids: vec![group.group_id],
        action: "Install".into(),
        deadline_offset_hours: Some(48),
    };
    rules::put(&pool, &rule).await.unwrap();
    assert_eq!(rules::get(&pool, rule.rule_id).await.unwrap(), Some(rule.clone()));
    assert_eq!(rules::apply(&pool, None, false).await.unwrap(), Applied::default(), "nothing new since the rule");

    // The bundle arrives: the rule approves it (its members are installed through it).
    let bundle_xml = &bundle[0].1;
    revisions::import_batch(&pool, &[revision(bundle_xml)]).await.unwrap();
    revisions::refresh_derived(&pool).await.unwrap();
    let applied = rules::apply(&pool, None, false).await.unwrap();
    assert_eq!(applied.approved, 1, "{applied:?}");
    let approvals = approvals::approvals_of(&pool, KB2267602).await.unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].revision_number, Some(200));
    assert_eq!(approvals[0].admin_name.as_deref(), Some("rule: Definitions"));
    let deadline = approvals[0].deadline.unwrap() - chrono::Utc::now();
    assert!((47..=48).contains(&deadline.num_hours()), "{deadline}");
    assert_eq!(rules::apply(&pool, None, false).await.unwrap(), Applied::default(), "applied once");

    // A new revision: it is approved in the old one's stead, as a new deployment (what
    // WSUS's approval refresh creates), the old one removed: a replica downstream learns
    // of both from GetDeployments and approves the new revision.
    let first = approvals[0].deployment_id;
    let before = wsus_store::catalog::version(&pool).await.unwrap().version;
    revisions::import_batch(&pool, &[later(bundle_xml, 201, false)]).await.unwrap();
    revisions::refresh_derived(&pool).await.unwrap();
    let applied = rules::apply(&pool, None, false).await.unwrap();
    assert_eq!((applied.approved, applied.revisions_followed), (0, 1), "{applied:?}");
    let now = approvals::approvals_of(&pool, KB2267602).await.unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].revision_number, Some(201));
    assert_ne!(now[0].deployment_id, first, "a new deployment");
    assert_eq!((now[0].group_id, now[0].deadline), (approvals[0].group_id, approvals[0].deadline), "same approval");
    let upto = wsus_store::catalog::version(&pool).await.unwrap().version;
    let sent = uss::deployments_between(&pool, Some(before), upto).await.unwrap();
    assert_eq!(
        sent.iter().map(|d| (d.deployment_id, d.revision_number)).collect::<Vec<_>>(),
        [(now[0].deployment_id, 201)]
    );
    assert_eq!(uss::dead_deployments_between(&pool, Some(before), upto).await.unwrap(), [first]);

    // A revision with license terms nobody accepted keeps the old approval.
    let eula = Uuid::new_v4();
    let with_eula = bundle_xml.replacen("<upd:Properties ", &format!("<upd:Properties EulaID=\"{eula}\" "), 1);
    revisions::import_batch(&pool, &[later(&with_eula, 210, false)]).await.unwrap();
    revisions::refresh_derived(&pool).await.unwrap();
    assert_eq!(rules::apply(&pool, None, false).await.unwrap().revisions_followed, 0);
    assert_eq!(approvals::approvals_of(&pool, KB2267602).await.unwrap()[0].revision_number, Some(201));
    approvals::accept_eula(&pool, eula, Some("admin")).await.unwrap();
    assert_eq!(rules::apply(&pool, None, false).await.unwrap().revisions_followed, 1, "once accepted");
    assert_eq!(approvals::approvals_of(&pool, KB2267602).await.unwrap()[0].revision_number, Some(210));

    // Its newest revision expires: the update is declined and its approval goes.
    revisions::import_batch(&pool, &[later(bundle_xml, 212, true)]).await.unwrap();
    revisions::refresh_derived(&pool).await.unwrap();
    let applied = rules::apply(&pool, None, false).await.unwrap();
    assert_eq!(applied.expired_declined, 1, "{applied:?}");
    assert!(approvals::declined(&pool).await.unwrap().contains(&KB2267602));
    assert!(approvals::approvals_of(&pool, KB2267602).await.unwrap().is_empty());

    // A disabled rule approves nothing, even over the whole catalog.
    approvals::undecline(&pool, KB2267602).await.unwrap();
    rules::put(&pool, &Rule { enabled: false, ..rule.clone() }).await.unwrap();
    let applied = rules::apply(&pool, None, true).await.unwrap();
    assert_eq!(applied.approved, 0);
    assert!(rules::delete(&pool, rule.rule_id).await.unwrap());
}
