//! Approval conflicts: one update approved differently for the groups a computer belongs
//! to. MS-WUSP 3.1.5 leaves the choice to the server. What a source shows: a subgroup's own
//! approval, a Block included, overrides what it inherits from its parent (WSUS API
//! UpdateApprovalAction: NotApproved "can be used in a ... ComputerTargetGroup to
//! 'override' a UpdateApproval made to the 'All Computers' ComputerTargetGroup"; Block
//! "block[s] an update from deploying to the specified target group when the same update
//! is approved to the All Computers group"). What no source shows, and this server
//! decides (docs/compatibility.md): between unrelated groups Install wins over Uninstall
//! over OptionalInstall, a deadline over none, the earlier deadline over the later.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use uuid::Uuid;
use wsus_catalog::ALL_COMPUTERS;
use wsus_catalog::index::{CatalogIndex, IndexDeployment, IndexInput, IndexRevision, ScanRequest};
use wsus_metadata::{UpdateIdentity, UpdateType};

const UPDATE: Uuid = uuid::uuid!("00000000-0000-0000-0000-0000000000aa");
// All Computers > Servers > Web; All Computers > Pilot; All Computers > Kiosks.
const SERVERS: Uuid = uuid::uuid!("00000000-0000-0000-0000-000000000001");
const WEB: Uuid = uuid::uuid!("00000000-0000-0000-0000-000000000002");
const PILOT: Uuid = uuid::uuid!("00000000-0000-0000-0000-000000000003");
const KIOSKS: Uuid = uuid::uuid!("00000000-0000-0000-0000-000000000004");

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, 18, 0, 0).unwrap()
}

/// An approval: (group, action, deadline).
type Approval<'a> = (Uuid, &'a str, Option<DateTime<Utc>>);
/// (why, approvals, the computer's groups, action sent, deadline sent, the approval sent:
/// its wire id, or -1 for an implied deployment).
type Row<'a> = (&'a str, &'a [Approval<'a>], &'a [Uuid], &'a str, Option<DateTime<Utc>>, i32);

fn index(approvals: &[Approval]) -> CatalogIndex {
    CatalogIndex::build(IndexInput {
        version: 5,
        revisions: vec![IndexRevision {
            revision_id: 100,
            identity: UpdateIdentity { update_id: UPDATE, revision_number: 200 },
            update_type: UpdateType::Software,
            category_type: None,
            is_leaf: true,
            categories: vec![],
            prerequisites: vec![],
            bundled: vec![],
            changed: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            changed_version: 1,
        }],
        deployments: approvals
            .iter()
            .enumerate()
            .map(|(n, (group, action, deadline))| IndexDeployment {
                wire_id: 1000 + n as i32,
                update_id: UPDATE,
                group_id: *group,
                action: (*action).into(),
                deadline: *deadline,
                last_change: NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(),
                changed_version: 2,
            })
            .collect(),
        declined: vec![],
        groups: vec![
            (ALL_COMPUTERS, None),
            (SERVERS, Some(ALL_COMPUTERS)),
            (WEB, Some(SERVERS)),
            (PILOT, Some(ALL_COMPUTERS)),
            (KIOSKS, Some(ALL_COMPUTERS)),
        ],
        group_names: vec![],
        approval_changes: vec![],
        drivers: vec![],
    })
}

/// What a computer in `groups` is sent for the update: (action, deadline, deployment id).
fn resolved(
    approvals: &[(Uuid, &str, Option<DateTime<Utc>>)],
    groups: &[Uuid],
) -> (String, Option<DateTime<Utc>>, i32) {
    let r = index(approvals).scan(&ScanRequest { groups, page_size: 10, ..Default::default() });
    let [o] = r.new_updates.as_slice() else { panic!("one update offered, got {:?}", r.new_updates) };
    (o.deployment.action.to_owned(), o.deployment.deadline, o.deployment.wire_id)
}

#[test]
fn conflicts_resolve_as_wsus_does() {
    let none = None;
    #[rustfmt::skip]
    let table: &[Row] = &[
        ("nothing approved: a status check", &[], &[WEB], "PreDeploymentCheck", none, -1),
        ("inherited from All Computers", &[(ALL_COMPUTERS, "Install", none)], &[WEB], "Install", none, 1000),
        ("inherited from a grandparent", &[(SERVERS, "Install", Some(at(20)))], &[WEB], "Install", Some(at(20)), 1000),
        ("the subgroup's own approval wins over its parent's",
            &[(SERVERS, "Install", none), (WEB, "Uninstall", none)], &[WEB], "Uninstall", none, 1001),
        ("...whatever the actions",
            &[(SERVERS, "Uninstall", none), (WEB, "Install", none)], &[WEB], "Install", none, 1001),
        ("a subgroup's Block overrides All Computers' Install (sent as a status check)",
            &[(ALL_COMPUTERS, "Install", none), (WEB, "Block", none)], &[WEB], "PreDeploymentCheck", none, 1001),
        ("the parent's approval still reaches its other members",
            &[(SERVERS, "Install", none), (WEB, "Block", none)], &[SERVERS], "Install", none, 1000),
        ("Install beats Uninstall between unrelated groups",
            &[(PILOT, "Uninstall", none), (KIOSKS, "Install", none)], &[PILOT, KIOSKS], "Install", none, 1001),
        ("...in either order",
            &[(KIOSKS, "Install", none), (PILOT, "Uninstall", none)], &[PILOT, KIOSKS], "Install", none, 1000),
        ("Install beats OptionalInstall",
            &[(PILOT, "OptionalInstall", none), (KIOSKS, "Install", none)], &[KIOSKS, PILOT], "Install", none, 1001),
        ("a deadline beats none",
            &[(PILOT, "Install", none), (KIOSKS, "Install", Some(at(24)))], &[PILOT, KIOSKS], "Install", Some(at(24)), 1001),
        ("the earlier deadline wins",
            &[(PILOT, "Install", Some(at(24))), (KIOSKS, "Install", Some(at(10)))], &[PILOT, KIOSKS], "Install", Some(at(10)), 1001),
        ("...in either order",
            &[(KIOSKS, "Install", Some(at(10))), (PILOT, "Install", Some(at(24)))], &[PILOT, KIOSKS], "Install", Some(at(10)), 1000),
        ("a Block in one group does not stop another group's Install",
            &[(PILOT, "Block", none), (KIOSKS, "Install", none)], &[PILOT, KIOSKS], "Install", none, 1001),
        ("a group's own approval against All Computers' through another group",
            &[(ALL_COMPUTERS, "Install", Some(at(10))), (WEB, "Uninstall", none)], &[WEB, PILOT], "Install", Some(at(10)), 1000),
        ("in a group and in its parent: the group's own approval still wins",
            &[(SERVERS, "Install", none), (WEB, "Block", none)], &[WEB, SERVERS], "PreDeploymentCheck", none, 1001),
        ("...in either order",
            &[(SERVERS, "Install", none), (WEB, "Uninstall", none)], &[SERVERS, WEB], "Uninstall", none, 1001),
        ("a computer in no group is in Unassigned Computers, under All Computers",
            &[(ALL_COMPUTERS, "OptionalInstall", none)], &[], "OptionalInstall", none, 1000),
    ];
    for (why, approvals, groups, action, deadline, from) in table {
        let (got_action, got_deadline, wire_id) = resolved(approvals, groups);
        assert_eq!((got_action.as_str(), got_deadline), (*action, *deadline), "{why}");
        if *from >= 0 {
            assert_eq!(wire_id, *from, "{why}: the deployment sent is the winning approval's");
        } else {
            assert!(wire_id >= wsus_catalog::index::IMPLIED_ID_BASE, "{why}: an implied deployment");
        }
    }
}
