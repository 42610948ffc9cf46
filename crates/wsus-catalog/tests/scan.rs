//! SyncUpdates from the in-memory index: the real documents give the rounds the native
//! client was seen to go through; a generated closed catalog is delivered whole.

use chrono::NaiveDate;
use uuid::Uuid;
use wsus_catalog::index::{CatalogIndex, IndexDeployment, IndexInput, IndexRevision, ScanRequest};
use wsus_catalog::{ALL_COMPUTERS, Graph, RevisionNode};
use wsus_metadata::Update;

fn index_of(docs: &[Update], deployments: Vec<IndexDeployment>, declined: Vec<Uuid>) -> CatalogIndex {
    index_with_changes(docs, deployments, declined, vec![])
}

fn index_with_changes(
    docs: &[Update],
    deployments: Vec<IndexDeployment>,
    declined: Vec<Uuid>,
    deployments_changed: Vec<(Uuid, i64)>,
) -> CatalogIndex {
    let graph = Graph::new(docs.iter().map(RevisionNode::from).collect());
    let derived = graph.derive();
    let revisions = docs
        .iter()
        .zip(derived)
        .enumerate()
        .map(|(i, (u, d))| IndexRevision {
            revision_id: 100_000 + i as i32,
            identity: u.identity,
            update_type: u.update_type,
            category_type: u.category_type.clone(),
            is_leaf: d.is_leaf,
            categories: d.categories.iter().map(|(c, _)| *c).collect(),
            prerequisites: u.prerequisites.clone(),
            bundled: u.bundled.iter().flatten().copied().collect(),
            changed: NaiveDate::from_ymd_opt(2026, 10, 4).unwrap(),
            changed_version: 1,
        })
        .collect();
    CatalogIndex::build(IndexInput {
        version: 2,
        revisions,
        deployments,
        declined,
        groups: vec![(ALL_COMPUTERS, None)],
        group_names: vec![("All Computers".into(), ALL_COMPUTERS)],
        approval_changes: deployments_changed,
        drivers: docs
            .iter()
            .enumerate()
            .flat_map(|(i, u)| {
                u.drivers.iter().map(move |d| wsus_catalog::index::IndexDriver {
                    revision_id: 100_000 + i as i32,
                    hardware_id: d.hardware_id.clone(),
                    date: d.driver_ver_date,
                    version: d.driver_ver_version,
                    class: d.class.clone(),
                    manufacturer: d.manufacturer.clone(),
                    provider: d.provider.clone(),
                    feature_scores: d.feature_scores.clone(),
                    computer_hardware_ids: d
                        .distribution_computer_hardware_ids
                        .iter()
                        .chain(&d.target_computer_hardware_ids)
                        .copied()
                        .collect(),
                })
            })
            .collect(),
    })
}

fn real_docs() -> Vec<Update> {
    let root = wsus_testdata::root().join("captures/wsus-m0-wsusss/docs");
    let mut paths: Vec<_> = std::fs::read_dir(root).unwrap().flatten().map(|e| e.path()).collect();
    paths.sort();
    paths.into_iter().map(|p| Update::parse(std::fs::read_to_string(p).unwrap()).unwrap()).collect()
}

#[test]
fn the_category_chain_arrives_one_level_per_round() {
    let docs = real_docs();
    let index = index_of(&docs, vec![], vec![]);
    let prefix = |r: &wsus_catalog::index::Offered| {
        docs[(r.revision_id - 100_000) as usize].identity.update_id.to_string()[..8].to_owned()
    };
    let mut installed: Vec<i32> = Vec::new();
    let mut cached: Vec<i32> = Vec::new();
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let r = index.scan(&ScanRequest {
            installed_non_leaf: &installed,
            other_cached: &cached,
            page_size: 30,
            ..Default::default()
        });
        if r.new_updates.is_empty() {
            break;
        }
        rounds.push(r.new_updates.iter().map(prefix).collect::<Vec<_>>());
        for u in &r.new_updates {
            assert_eq!(u.deployment.action, "Evaluate");
            if u.is_leaf { cached.push(u.revision_id) } else { installed.push(u.revision_id) }
        }
    }
    // Company, then ProductFamily, then Product — the updates' detectoids are not in
    // this partial catalog, so they are never applicable.
    assert_eq!(rounds, vec![vec!["56309036"], vec!["6964aab4"], vec!["dd78b8a1"]]);
}

// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[test]
fn a_closed_catalog_is_delivered_whole_and_approvals_show() {
    let mut docs = Vec::new();
    wsus_catalog_gen::generate(&wsus_catalog_gen::Options { revisions: 1500, seed: 3, ..Default::default() }, |d| {
        docs.push(Update::parse(d.xml).unwrap());
        Ok(())
    })
    .unwrap();
    let bundle = docs.iter().rev().find(|u| u.is_bundle()).unwrap();
    let approved = IndexDeployment {
        wire_id: 1000,
        update_id: bundle.identity.update_id,
        group_id: ALL_COMPUTERS,
        action: "Install".into(),
        deadline: None,
        last_change: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        changed_version: 2,
    };
    let declined = docs
        .iter()
        .find(|u| u.is_bundle() && u.identity.update_id != bundle.identity.update_id)
        .unwrap()
        .identity
        .update_id;
    let index = index_of(&docs, vec![approved], vec![declined]);

    let (mut installed, mut cached) = (Vec::new(), Vec::new());
    let mut delivered = std::collections::HashMap::new();
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls < 500, "the scan terminates");
        let r = index.scan(&ScanRequest {
            installed_non_leaf: &installed,
            other_cached: &cached,
            page_size: 30,
            ..Default::default()
        });
        assert!(r.new_updates.len() <= 30);
        assert!(r.out_of_scope.is_empty(), "nothing cached goes out of scope while nothing changes");
        let non_leaf = r.new_updates.iter().any(|u| !u.is_leaf);
        for u in &r.new_updates {
            assert!(delivered.insert(u.revision_id, u.deployment.action).is_none(), "each revision once");
            if u.is_leaf { cached.push(u.revision_id) } else { installed.push(u.revision_id) }
        }
        if !r.truncated && !non_leaf {
            break;
        }
    }
    let latest: std::collections::HashSet<_> = docs
        .iter()
        .filter(|u| u.update_type != wsus_metadata::UpdateType::Driver)
        .map(|u| u.identity.update_id)
        .collect();
    assert_eq!(delivered.len(), latest.len() - 1, "every update's latest revision but the declined one");
    let actions = |a: &str| delivered.values().filter(|&&x| x == a).count();
    assert_eq!(actions("Install"), 1);
    assert!(actions("Bundle") > 0 && actions("Evaluate") > 0 && actions("PreDeploymentCheck") > 0);

    // A second scan with everything cached brings nothing new.
    let again = index.scan(&ScanRequest {
        installed_non_leaf: &installed,
        other_cached: &cached,
        page_size: 30,
        since_version: 2,
        groups_changed: false,
        ..Default::default()
    });
    assert!(again.new_updates.is_empty() && again.changed.is_empty() && again.out_of_scope.is_empty());

    // The approval is removed at version 3: the client, last told at version 2, hears of
    // it, and the bundle is back to a status check (an unapproved top-level update, as
    // the real server sends them: captures/wsus-m0-native/flow/000012). A client with no
    // marker (a cookie fresh from GetCookie) is told every cached revision still offered,
    // as the real server does (notes/observed-behaviour.md §3: 295 ChangedUpdates at a
    // fresh anchor).
    let index = index_with_changes(&docs, vec![], vec![declined], vec![(bundle.identity.update_id, 3)]);
    let request = |since_version| ScanRequest {
        installed_non_leaf: &installed,
        other_cached: &cached,
        page_size: 30,
        since_version,
        ..Default::default()
    };
    let after = index.scan(&request(2));
    assert_eq!(after.changed.len(), 1);
    assert_eq!(after.changed[0].deployment.action, "PreDeploymentCheck");
    let fresh = index.scan(&request(0));
    assert!(fresh.new_updates.is_empty() && fresh.out_of_scope.is_empty());
    assert_eq!(fresh.changed.len(), installed.len() + cached.len(), "everything held is still offered");
    assert!(index.scan(&request(3)).changed.is_empty(), "told at version 3: nothing newer");

    // An id the server does not know (or an older revision) is out of scope.
    let mut stale = cached.clone();
    stale.push(99);
    let r = index.scan(&ScanRequest {
        installed_non_leaf: &installed,
        other_cached: &stale,
        page_size: 30,
        since_version: 2,
        groups_changed: false,
        ..Default::default()
    });
    assert_eq!(r.out_of_scope, vec![99]);
}

#[test]
fn the_driver_pass_offers_the_best_newer_driver() {
    use wsus_catalog::index::{DeviceSpec, DriverScanRequest, InstalledDriverSpec};
    let mut docs = Vec::new();
    wsus_catalog_gen::generate(&wsus_catalog_gen::Options { revisions: 2000, seed: 5, ..Default::default() }, |d| {
        docs.push(Update::parse(d.xml).unwrap());
        Ok(())
    })
    .unwrap();
    let index = index_of(&docs, vec![], vec![]);
    assert!(index.has_drivers());
    // Every non-leaf evaluated installed (detectoids and categories).
    let installed: Vec<i32> = (0..docs.len() as i32).map(|i| 100_000 + i).collect();
    let revision_of = |hwid: &str, version: &str| {
        docs.iter()
            .position(|u| {
                u.drivers.iter().any(|d| {
                    d.hardware_id == hwid && d.driver_ver_version == wsus_metadata::pack_driver_version(version)
                })
            })
            .map(|i| 100_000 + i as i32)
            .unwrap()
    };
    let device = |n: usize, installed_version: Option<(&str, u32)>| DeviceSpec {
        ids: vec![wsus_catalog_gen::driver_hardware_id(n), "PCI\\CC_0200".into()],
        installed: installed_version.map(|(v, month)| InstalledDriverSpec {
            date: NaiveDate::from_ymd_opt(2025, month, 15),
            version: wsus_metadata::pack_driver_version(v),
            ..Default::default()
        }),
    };
    let scan = |devices: &[DeviceSpec], computers: &[Uuid], cached: &[i32]| {
        index.scan_drivers(&DriverScanRequest {
            installed_non_leaf: &installed,
            cached_driver_ids: cached,
            devices,
            computer_hardware_ids: computers,
            feature_score_key: Some("AMD64.10.0"),
            ..Default::default()
        })
    };
    let hw0 = wsus_catalog_gen::driver_hardware_id(0);
    let newest = revision_of(&hw0, "1.0.2.0");
    // An older driver installed: the newest is offered, once.
    let r = scan(&[device(0, Some(("1.0.0.0", 1)))], &[], &[]);
    assert_eq!(r.new_updates.iter().map(|o| o.revision_id).collect::<Vec<_>>(), vec![newest]);
    assert_eq!(docs[(newest - 100_000) as usize].update_type, wsus_metadata::UpdateType::Driver);
    assert_eq!(
        r.new_updates[0].hardware_ids,
        vec![hw0.clone()],
        "the matching hardware id travels with the deployment"
    );
    // The newest already installed: nothing.
    assert!(scan(&[device(0, Some(("1.0.2.0", 3)))], &[], &[]).new_updates.is_empty());
    // Cached: not offered again; a cached driver no longer best is out of scope.
    let older = revision_of(&hw0, "1.0.1.0");
    let r = scan(&[device(0, None)], &[], &[newest, older]);
    assert!(r.new_updates.is_empty());
    assert_eq!(r.out_of_scope, vec![older]);
    // Device 4's drivers target one computer model: only that model gets them.
    let model: Uuid = "458ab48b-acb9-5863-b5a8-d2c32f0d3e6f".parse().unwrap();
    assert!(scan(&[device(4, None)], &[Uuid::new_v4()], &[]).new_updates.is_empty());
    assert_eq!(scan(&[device(4, None)], &[Uuid::new_v4(), model], &[]).new_updates.len(), 1);
    // A device nothing matches.
    assert!(
        scan(&[DeviceSpec { ids: vec!["USB\\VID_0000".into()], installed: None }], &[], &[]).new_updates.is_empty()
    );
}

#[test]
fn a_category_scan_tells_deployed_out_of_scope_apart() {
    let mut docs = Vec::new();
    wsus_catalog_gen::generate(&wsus_catalog_gen::Options { revisions: 1500, seed: 9, ..Default::default() }, |d| {
        docs.push(Update::parse(d.xml).unwrap());
        Ok(())
    })
    .unwrap();
    let index = index_of(&docs, vec![], vec![]);
    // A full scan first.
    let (mut installed, mut cached) = (Vec::new(), Vec::new());
    loop {
        let r = index.scan(&ScanRequest {
            installed_non_leaf: &installed,
            other_cached: &cached,
            page_size: 100,
            ..Default::default()
        });
        let non_leaf = r.new_updates.iter().any(|u| !u.is_leaf);
        for u in &r.new_updates {
            if u.is_leaf { cached.push(u.revision_id) } else { installed.push(u.revision_id) }
        }
        if !r.truncated && !non_leaf {
            break;
        }
    }
    // Then a scan of one product: what other products hold is still deployed.
    let product = docs.iter().find(|u| u.category_type.as_deref() == Some("Product")).unwrap().identity.update_id;
    let filter = [product];
    let scan = |two_groups| {
        index.scan(&ScanRequest {
            installed_non_leaf: &installed,
            other_cached: &cached,
            filter_categories: &filter,
            need_two_group_out_of_scope: two_groups,
            page_size: 100,
            since_version: 2,
            groups_changed: false,
            ..Default::default()
        })
    };
    let r = scan(true);
    assert!(r.new_updates.is_empty());
    assert!(r.out_of_scope.is_empty(), "nothing cached went away");
    assert!(!r.deployed_out_of_scope.is_empty(), "other products' updates are deployed, outside this scan");
    let r = scan(false);
    assert!(r.out_of_scope.is_empty() && r.deployed_out_of_scope.is_empty());
}
