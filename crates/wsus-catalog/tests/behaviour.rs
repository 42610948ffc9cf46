//! The behaviour table: for every class of revision a real WSUS was seen to send, the
//! Deployment action, IsLeaf and list this index answers are what the real server sent.
//!
//! The captured rows come from every SyncUpdates answer a Windows Server 2025 WSUS gave a
//! Windows 11 client in `captures/wsus-m0-native/{scan,flow}` and `captures/wsus-m0`
//! (187 revisions): their Core fragments rebuild that part of the catalog, with the
//! approval the lab made (KB2267602, a2fef9b0, Install for All Computers:
//! notes/observed-behaviour.md §0), and the index is scanned as a client would. What a
//! partial catalog cannot decide (a bundle member whose bundle was not captured, a
//! non-leaf whose dependants were not) is counted apart, not compared. Rows the captures
//! do not show (declined, ChangedUpdates) name their source beside them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use chrono::{NaiveDate, TimeZone, Utc};
use uuid::Uuid;
use wsus_catalog::index::{CatalogIndex, IndexDeployment, IndexInput, IndexRevision, ScanRequest, ScanResult};
use wsus_catalog::{ALL_COMPUTERS, Graph, RevisionNode};
use wsus_metadata::{PrerequisiteClause, UpdateIdentity, UpdateType};
use wsus_soap::{Element, Limits};

/// KB2267602, approved for installation in the lab.
const APPROVED: Uuid = uuid::uuid!("a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe");

/// One UpdateInfo as the real server sent it.
#[derive(Debug, Clone)]
struct Seen {
    revision_id: i32,
    deployment_id: i32,
    action: String,
    is_leaf: bool,
    node: RevisionNode,
    file: String,
}

fn descendants<'a>(e: &'a Element, name: &'a str, out: &mut Vec<&'a Element>) {
    for c in &e.children {
        if c.name == name {
            out.push(c);
        } else {
            descendants(c, name, out);
        }
    }
}

fn identity(e: &Element) -> UpdateIdentity {
    UpdateIdentity {
        update_id: e.attr("UpdateID").unwrap().parse().unwrap(),
        revision_number: e.attr("RevisionNumber").map_or(0, |r| r.parse().unwrap()),
    }
}

/// The graph node a Core fragment describes (MS-WUSP 3.1.1.1: identity, UpdateType,
/// Relationships), read with the project's XML reader; the fragment has several roots.
fn node_of(core: &str) -> RevisionNode {
    let root = wsus_soap::xml::parse(format!("<Core>{core}</Core>").as_bytes(), &Limits::default()).unwrap();
    let update_type = match root.child("Properties").and_then(|p| p.attr("UpdateType")).unwrap() {
        "Software" => UpdateType::Software,
        "Driver" => UpdateType::Driver,
        "Category" => UpdateType::Category,
        _ => UpdateType::Detectoid,
    };
    let relationships = root.child("Relationships");
    let prerequisites = relationships
        .and_then(|r| r.child("Prerequisites"))
        .map(|p| {
            p.children
                .iter()
                .map(|c| match c.name.as_str() {
                    "AtLeastOne" => PrerequisiteClause {
                        update_ids: c.children.iter().map(|i| identity(i).update_id).collect(),
                        is_category: c.attr("IsCategory") == Some("true"),
                    },
                    _ => PrerequisiteClause { update_ids: vec![identity(c).update_id], is_category: false },
                })
                .collect()
        })
        .unwrap_or_default();
    let bundled = relationships
        .and_then(|r| r.child("BundledUpdates"))
        .map(|b| {
            let mut ids = Vec::new();
            descendants(b, "UpdateIdentity", &mut ids);
            ids.into_iter().map(|i| vec![identity(i)]).collect()
        })
        .unwrap_or_default();
    let superseded = relationships
        .and_then(|r| r.child("SupersededUpdates"))
        .map(|s| s.children.iter().map(|i| identity(i).update_id).collect())
        .unwrap_or_default();
    RevisionNode {
        identity: identity(root.child("UpdateIdentity").unwrap()),
        update_type,
        prerequisites,
        bundled,
        superseded,
    }
}

fn captured() -> Vec<Seen> {
    let captures = wsus_testdata::root().join("captures");
    let mut files: Vec<PathBuf> = ["wsus-m0-native/scan", "wsus-m0-native/flow", "wsus-m0"]
        .iter()
        .flat_map(|d| std::fs::read_dir(captures.join(d)).unwrap().flatten().map(|e| e.path().join("response.body")))
        .filter(|p| p.exists())
        .collect();
    files.sort();
    let mut seen: BTreeMap<i32, Seen> = BTreeMap::new();
    for file in files {
        let body = std::fs::read(&file).unwrap();
        let limits = Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 10_000_000 };
        let response = wsus_soap::parse_request(&body, &limits).unwrap();
        if response.operation.name != "SyncUpdatesResponse" {
            continue;
        }
        let mut infos = Vec::new();
        descendants(&response.operation, "UpdateInfo", &mut infos);
        for info in infos {
            let deployment = info.child("Deployment").unwrap();
            let s = Seen {
                revision_id: info.child("ID").unwrap().value().parse().unwrap(),
                deployment_id: deployment.child("ID").unwrap().value().parse().unwrap(),
                action: deployment.child("Action").unwrap().value().to_owned(),
                is_leaf: info.child("IsLeaf").unwrap().value() == "true",
                node: node_of(&info.child("Xml").unwrap().text),
                file: file.strip_prefix(&captures).unwrap().display().to_string(),
            };
            seen.insert(s.revision_id, s);
        }
    }
    seen.into_values().collect()
}

/// The captured part of the catalog as the index is built from it: the real revision ids,
/// IsLeaf and bundles from the graph, prerequisites on revisions the captures do not hold
/// left out (they can never be satisfied in a partial catalog).
fn index_of(seen: &[Seen], declined: Vec<Uuid>, changed_version: i64) -> CatalogIndex {
    index_with(seen, declined, changed_version, vec![])
}

/// The same with more approvals than the lab's.
fn index_with(seen: &[Seen], declined: Vec<Uuid>, changed_version: i64, more: Vec<IndexDeployment>) -> CatalogIndex {
    let known: HashSet<Uuid> = seen.iter().map(|s| s.node.identity.update_id).collect();
    let graph = Graph::new(seen.iter().map(|s| s.node.clone()).collect());
    let revisions = seen
        .iter()
        .zip(graph.derive())
        .map(|(s, d)| IndexRevision {
            revision_id: s.revision_id,
            identity: s.node.identity,
            update_type: s.node.update_type,
            category_type: None,
            is_leaf: d.is_leaf,
            categories: d.categories.iter().map(|(c, _)| *c).collect(),
            prerequisites: s
                .node
                .prerequisites
                .iter()
                .filter(|c| c.update_ids.iter().all(|u| known.contains(u)))
                .cloned()
                .collect(),
            bundled: s.node.bundled.iter().flatten().copied().collect(),
            changed: NaiveDate::from_ymd_opt(2026, 10, 4).unwrap(),
            changed_version,
        })
        .collect();
    let mut deployments = vec![IndexDeployment {
        wire_id: 34100,
        update_id: APPROVED,
        group_id: ALL_COMPUTERS,
        action: "Install".into(),
        deadline: None,
        last_change: NaiveDate::from_ymd_opt(2026, 10, 4).unwrap(),
        changed_version: 2,
    }];
    deployments.extend(more);
    CatalogIndex::build(IndexInput {
        version: 12,
        revisions,
        approval_changes: deployments.iter().map(|d| (d.update_id, d.changed_version)).collect(),
        deployments,
        declined,
        groups: vec![(ALL_COMPUTERS, None)],
        group_names: vec![],
        drivers: vec![],
    })
}

/// A whole software scan as the native client runs it: every non-leaf evaluated
/// installed, pages until nothing is truncated and no non-leaf came back.
fn full_scan(index: &CatalogIndex) -> (Vec<wsus_catalog::index::Offered>, Vec<i32>, Vec<i32>) {
    let (mut installed, mut cached, mut delivered) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..100 {
        let r = index.scan(&ScanRequest {
            installed_non_leaf: &installed,
            other_cached: &cached,
            page_size: 30,
            ..Default::default()
        });
        let non_leaf = r.new_updates.iter().any(|u| !u.is_leaf);
        for u in &r.new_updates {
            if u.is_leaf { cached.push(u.revision_id) } else { installed.push(u.revision_id) }
        }
        delivered.extend(r.new_updates);
        if !r.truncated && !non_leaf {
            return (delivered, installed, cached);
        }
    }
    panic!("the scan does not end");
}

/// The class a captured revision belongs to, and whether the captured part of the catalog
/// holds what decides its answer.
fn class_of(s: &Seen, in_captured_bundle: bool, has_captured_dependant: bool) -> (&'static str, bool) {
    let kind = match s.node.update_type {
        UpdateType::Category => "category",
        UpdateType::Detectoid => "detectoid",
        UpdateType::Driver => "driver",
        UpdateType::Software if s.node.identity.update_id == APPROVED => "approved bundle",
        UpdateType::Software if !s.node.bundled.is_empty() && s.action == "Bundle" => "bundle inside a bundle",
        UpdateType::Software if s.action == "Bundle" => "bundle member",
        UpdateType::Software => "unapproved top-level update",
    };
    // A bundle member's action needs its bundle; a non-leaf's IsLeaf needs what depends on it.
    let decidable = (s.action != "Bundle" || in_captured_bundle) && (s.is_leaf || has_captured_dependant);
    (kind, decidable)
}

#[test]
fn every_captured_class_is_answered_as_the_real_server_did() {
    let seen = captured();
    assert_eq!(seen.len(), 187, "the captured SyncUpdates answers hold 187 revisions");
    let bundled: HashSet<Uuid> =
        seen.iter().flat_map(|s| s.node.bundled.iter().flatten().map(|m| m.update_id)).collect();
    let depended_on: HashSet<Uuid> =
        seen.iter().flat_map(|s| s.node.prerequisites.iter().flat_map(|c| c.update_ids.iter().copied())).collect();
    let superseded: HashSet<Uuid> = seen.iter().flat_map(|s| s.node.superseded.iter().copied()).collect();

    let index = index_of(&seen, vec![], 1);
    let (delivered, _, _) = full_scan(&index);
    let ours: HashMap<i32, &wsus_catalog::index::Offered> = delivered.iter().map(|o| (o.revision_id, o)).collect();

    // class -> (compared, not decidable from the captures)
    let mut table: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for s in &seen {
        let id = s.node.identity.update_id;
        let (class, decidable) = class_of(s, bundled.contains(&id), depended_on.contains(&id));
        let row = table.entry(class).or_default();
        // Every captured revision comes as a NewUpdate of a first scan, as it did.
        let Some(o) = ours.get(&s.revision_id) else {
            mismatches.push(format!("{} ({class}, {}): not sent", s.revision_id, s.file));
            continue;
        };
        if !decidable {
            row.1 += 1;
            continue;
        }
        row.0 += 1;
        if (o.deployment.action, o.is_leaf) != (s.action.as_str(), s.is_leaf) {
            mismatches.push(format!(
                "{} ({class}, {}): sent {} IsLeaf {}, the real server {} IsLeaf {}",
                s.revision_id, s.file, o.deployment.action, o.is_leaf, s.action, s.is_leaf
            ));
        }
        if superseded.contains(&id) {
            table.entry("superseded (still offered)").or_default().0 += 1;
        }
    }
    for (class, (compared, undecidable)) in &table {
        println!("{class:32} compared {compared:3}   not decidable from the captures {undecidable:3}");
    }
    assert!(mismatches.is_empty(), "{} of {}:\n{}", mismatches.len(), seen.len(), mismatches.join("\n"));
    for class in [
        "category",
        "detectoid",
        "bundle member",
        "bundle inside a bundle",
        "approved bundle",
        "unapproved top-level update",
        "superseded (still offered)",
    ] {
        assert!(table.get(class).is_some_and(|r| r.0 > 0), "no row compared for {class}");
    }

    // Deployment IDs: one per revision, as the real server's (187 revisions, 187 ids).
    let real_ids: HashSet<i32> = seen.iter().map(|s| s.deployment_id).collect();
    assert_eq!(real_ids.len(), seen.len(), "the real server gave every revision its own deployment");
    let our_ids: HashSet<i32> = delivered.iter().map(|o| o.deployment.wire_id).collect();
    assert_eq!(our_ids.len(), delivered.len(), "so do we");
}

/// What the captures do not show, from the sources that do.
#[test]
fn lists_beyond_the_captures() {
    let seen = captured();
    let pdc = seen.iter().find(|s| s.action == "PreDeploymentCheck").unwrap();
    let index = index_of(&seen, vec![], 1);
    let (_, installed, cached) = full_scan(&index);
    let scan = |index: &CatalogIndex, since_version: i64, extra: &[i32]| -> ScanResult {
        let other: Vec<i32> = cached.iter().chain(extra).copied().collect();
        index.scan(&ScanRequest {
            installed_non_leaf: &installed,
            other_cached: &other,
            page_size: 30,
            since_version,
            ..Default::default()
        })
    };
    // A cookie fresh from GetCookie carries no marker: every cached revision still offered
    // comes back in ChangedUpdates (notes/observed-behaviour.md §3, INV §9.9: 295
    // ChangedUpdates at a fresh anchor, 0 at an anchor saved 60 pages later).
    let fresh = scan(&index, 0, &[]);
    assert!(fresh.new_updates.is_empty() && fresh.out_of_scope.is_empty());
    assert_eq!(fresh.changed.len(), installed.len() + cached.len());
    let later = scan(&index, 10, &[]);
    assert!(later.new_updates.is_empty() && later.changed.is_empty() && later.out_of_scope.is_empty());
    // A revision the server does not hold (any more) is out of scope (MS-WUSP 3.1.5.7:
    // OutOfScopeRevisionIDs = CachedRevisions not in NeededRevisions).
    assert_eq!(scan(&index, 10, &[12_345_678]).out_of_scope, vec![12_345_678]);
    // A declined update is no longer deployed: cached, it goes out of scope; not cached,
    // it is not sent (NeededRevisions holds only revisions deployed to the client).
    let declined = index_of(&seen, vec![pdc.node.identity.update_id], 1);
    assert_eq!(scan(&declined, 10, &[]).out_of_scope, vec![pdc.revision_id]);
    let (delivered, _, _) = full_scan(&declined);
    assert!(delivered.iter().all(|o| o.revision_id != pdc.revision_id));
    // An approval made after the client's marker reaches it in ChangedUpdates, with its
    // deadline (MS-WUSP 3.1.5.7 ChangedUpdates: cached and needed, "Deployment ... has
    // changed since the last time the client synchronized").
    let deadline = Utc.with_ymd_and_hms(2026, 12, 24, 18, 0, 0).unwrap();
    let approval = IndexDeployment {
        wire_id: 1001,
        update_id: pdc.node.identity.update_id,
        group_id: ALL_COMPUTERS,
        action: "Install".into(),
        deadline: Some(deadline),
        last_change: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
        changed_version: 11,
    };
    let index = index_with(&seen, vec![], 1, vec![approval]);
    let r = scan(&index, 10, &[]);
    assert!(r.new_updates.is_empty() && r.out_of_scope.is_empty());
    assert_eq!(r.changed.len(), 1);
    assert_eq!(r.changed[0].revision_id, pdc.revision_id);
    assert_eq!((r.changed[0].deployment.action, r.changed[0].deployment.deadline), ("Install", Some(deadline)));
}
