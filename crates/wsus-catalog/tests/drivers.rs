//! The driver pass (MS-WUSP 3.1.5.7): NeededRevisions are the drivers deployed to the
//! client, each the best match for a device and a better match than the driver the device
//! runs, by the section's five rules in order; ChangedUpdates and OutOfScope as for
//! software, against CachedDriverIDs; each Deployment carries "all the HardwareIDs ...
//! selected as 'best' matches". Device ids and installed drivers are shaped as the native
//! client sent them (captures/wsus-m0-native/scan/000009: DriverRank 16711680 =
//! 0x00FF0000, MatchingComputerHWID nil, printers with Provider and Manufacturer).

use chrono::NaiveDate;
use uuid::Uuid;
use wsus_catalog::ALL_COMPUTERS;
use wsus_catalog::index::{
    CatalogIndex, DeviceSpec, DriverScanRequest, IndexDeployment, IndexDriver, IndexInput, IndexRevision,
    InstalledDriverSpec, ScanResult,
};
use wsus_metadata::{UpdateIdentity, UpdateType};

const NIC: &str = "PCI\\VEN_8086&DEV_15F3&SUBSYS_00008086";
const NIC_COMPAT: &str = "PCI\\CC_0200";
const MODEL: Uuid = uuid::uuid!("458ab48b-acb9-5863-b5a8-d2c32f0d3e6f");
const KEY: &str = "AMD64.10.0";

struct Driver {
    revision_id: i32,
    hardware_ids: &'static [&'static str],
    date: (i32, u32),
    version: u64,
    score: Option<u8>,
    computers: &'static [Uuid],
    class: &'static str,
    provider: &'static str,
}

fn driver(revision_id: i32, hardware_ids: &'static [&'static str], date: (i32, u32), version: u64) -> Driver {
    Driver { revision_id, hardware_ids, date, version, score: None, computers: &[], class: "Net", provider: "Contoso" }
}

fn update_of(revision_id: i32) -> Uuid {
    Uuid::from_u128(revision_id as u128)
}

fn index(drivers: &[Driver], approved: &[(i32, i64)]) -> CatalogIndex {
    CatalogIndex::build(IndexInput {
        version: 20,
        revisions: drivers
            .iter()
            .map(|d| IndexRevision {
                revision_id: d.revision_id,
                identity: UpdateIdentity { update_id: update_of(d.revision_id), revision_number: 1 },
                update_type: UpdateType::Driver,
                category_type: None,
                is_leaf: true,
                categories: vec![],
                prerequisites: vec![],
                bundled: vec![],
                changed: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                changed_version: 1,
            })
            .collect(),
        deployments: approved
            .iter()
            .map(|(rid, version)| IndexDeployment {
                wire_id: 1000 + rid,
                update_id: update_of(*rid),
                group_id: ALL_COMPUTERS,
                action: "Install".into(),
                deadline: None,
                last_change: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                changed_version: *version,
            })
            .collect(),
        declined: vec![],
        groups: vec![(ALL_COMPUTERS, None)],
        group_names: vec![],
        approval_changes: approved.iter().map(|(rid, v)| (update_of(*rid), *v)).collect(),
        drivers: drivers
            .iter()
            .flat_map(|d| {
                d.hardware_ids.iter().map(move |hw| IndexDriver {
                    revision_id: d.revision_id,
                    hardware_id: (*hw).to_owned(),
                    date: NaiveDate::from_ymd_opt(d.date.0, d.date.1, 1),
                    version: Some(d.version),
                    class: Some(d.class.into()),
                    manufacturer: Some(d.provider.into()),
                    provider: Some(d.provider.into()),
                    feature_scores: d.score.map(|s| vec![(KEY.to_owned(), s)]).unwrap_or_default(),
                    computer_hardware_ids: d.computers.to_vec(),
                })
            })
            .collect(),
    })
}

fn nic(installed: Option<InstalledDriverSpec>) -> DeviceSpec {
    DeviceSpec { ids: vec![NIC.into(), NIC_COMPAT.into()], installed }
}

/// An installed driver as the native client describes one (no computer targeting, rank
/// 0x00FF0000: no feature score).
fn running(matching_id: &str, date: (i32, u32), version: u64) -> InstalledDriverSpec {
    InstalledDriverSpec {
        matching_id: Some(matching_id.into()),
        date: NaiveDate::from_ymd_opt(date.0, date.1, 1),
        version: Some(version),
        class: Some("Net".into()),
        manufacturer: Some("Contoso".into()),
        provider: Some("Contoso".into()),
        matching_computer_hwid: None,
        rank: Some(0x00FF_0000),
    }
}

fn scan(index: &CatalogIndex, devices: &[DeviceSpec], cached: &[i32], since_version: i64) -> ScanResult {
    index.scan_drivers(&DriverScanRequest {
        devices,
        cached_driver_ids: cached,
        computer_hardware_ids: &[Uuid::from_u128(9), MODEL],
        feature_score_key: Some(KEY),
        since_version,
        ..Default::default()
    })
}

fn offered(r: &ScanResult) -> Vec<(i32, &str)> {
    r.new_updates.iter().map(|o| (o.revision_id, o.deployment.action)).collect()
}

#[test]
fn an_approved_driver_is_chosen_before_a_better_unapproved_one() {
    let drivers = [driver(1, &[NIC], (2026, 1), 10), driver(2, &[NIC], (2026, 6), 20)];
    // Nothing approved: the best match, for a status check.
    assert_eq!(offered(&scan(&index(&drivers, &[]), &[nic(None)], &[], 0)), vec![(2, "PreDeploymentCheck")]);
    // The older one approved: it is the one deployed, so it is the one offered.
    assert_eq!(offered(&scan(&index(&drivers, &[(1, 5)]), &[nic(None)], &[], 0)), vec![(1, "Install")]);
    assert_eq!(offered(&scan(&index(&drivers, &[(2, 5)]), &[nic(None)], &[], 0)), vec![(2, "Install")]);
}

#[test]
fn better_than_installed_follows_every_rule_in_order() {
    let older_on_hardware_id = [driver(1, &[NIC], (2025, 1), 10)];
    let newer_on_compatible_id = [driver(1, &[NIC_COMPAT], (2026, 6), 20)];
    let targeted_older = [Driver { computers: &[MODEL], ..driver(1, &[NIC], (2024, 1), 5) }];
    let scored_newer = [Driver { score: Some(0x20), ..driver(1, &[NIC], (2026, 6), 20) }];
    #[rustfmt::skip]
    let table: &[(&str, &[Driver], InstalledDriverSpec, bool)] = &[
        ("newer than the installed one, same device id", &older_on_hardware_id, running(NIC, (2024, 1), 5), true),
        ("older, same device id", &older_on_hardware_id, running(NIC, (2026, 1), 5), false),
        ("same date, higher version", &older_on_hardware_id, running(NIC, (2025, 1), 9), true),
        ("same date and version: not better", &older_on_hardware_id, running(NIC, (2025, 1), 10), false),
        ("a more specific device id wins over a newer date",
            &older_on_hardware_id, running(NIC_COMPAT, (2026, 12), 99), true),
        ("a less specific device id loses to an older driver", &newer_on_compatible_id, running(NIC, (2020, 1), 1), false),
        ("targeted to this computer model beats an untargeted installed driver",
            &targeted_older, running(NIC, (2026, 1), 50), true),
        ("the installed driver targeted more specifically (earlier in ComputerSpec) wins",
            &targeted_older, InstalledDriverSpec { matching_computer_hwid: Some(Uuid::from_u128(9)), ..running(NIC, (2020, 1), 1) }, false),
        ("an installed driver with a lower feature score beats a newer one with a higher",
            &scored_newer, InstalledDriverSpec { rank: Some(0x0010_0000), ..running(NIC, (2020, 1), 1) }, false),
        ("a scored driver beats a newer installed one without a score (0xFF)",
            &scored_newer, running(NIC, (2026, 12), 99), true),
        ("an unknown rank (-1) leaves the feature score out", &scored_newer,
            InstalledDriverSpec { rank: None, ..running(NIC, (2026, 1), 10) }, true),
    ];
    for (why, drivers, installed, offered_) in table {
        let r = scan(&index(drivers, &[]), &[nic(Some(installed.clone()))], &[], 0);
        assert_eq!(r.new_updates.len() == 1, *offered_, "{why}: {:?}", offered(&r));
    }
}

#[test]
fn an_installed_printer_driver_is_replaced_only_by_its_provider() {
    let printer = |provider: &'static str| Driver {
        class: "Printer",
        provider,
        ..driver(7, &["{084f01fa-e634-4d77-83ee-074817c03581}"], (2026, 6), 20)
    };
    let device = DeviceSpec {
        ids: vec!["{084f01fa-e634-4d77-83ee-074817c03581}".into()],
        installed: Some(InstalledDriverSpec {
            class: Some("Printer".into()),
            manufacturer: Some("Microsoft".into()),
            provider: Some("Microsoft".into()),
            rank: None,
            ..running("{084f01fa-e634-4d77-83ee-074817c03581}", (2006, 6), 1)
        }),
    };
    assert!(scan(&index(&[printer("Contoso")], &[]), std::slice::from_ref(&device), &[], 0).new_updates.is_empty());
    assert_eq!(scan(&index(&[printer("Microsoft")], &[]), &[device], &[], 0).new_updates.len(), 1);
}

#[test]
fn one_driver_for_several_devices_carries_every_hardware_id() {
    const DOCK: &str = "USB\\VID_17EF&PID_30B4";
    let drivers = [driver(3, &[NIC, DOCK], (2026, 6), 20)];
    let devices = [nic(None), DeviceSpec { ids: vec![DOCK.into()], installed: None }];
    let r = scan(&index(&drivers, &[]), &devices, &[], 0);
    assert_eq!(r.new_updates.len(), 1);
    assert_eq!(r.new_updates[0].hardware_ids, vec![NIC.to_owned(), DOCK.to_owned()]);
}

#[test]
fn cached_drivers_hear_of_changes() {
    let drivers = [driver(1, &[NIC], (2026, 1), 10), driver(2, &[NIC_COMPAT], (2020, 1), 1)];
    // Approved at version 15, after the client's marker (10): ChangedUpdates.
    let approved = index(&drivers, &[(1, 15)]);
    let r = scan(&approved, &[nic(None)], &[1], 10);
    assert!(r.new_updates.is_empty() && r.out_of_scope.is_empty());
    assert_eq!(
        r.changed.iter().map(|o| (o.revision_id, o.deployment.action)).collect::<Vec<_>>(),
        vec![(1, "Install")]
    );
    assert_eq!(r.changed[0].hardware_ids, vec![NIC.to_owned()]);
    // Told at 15: nothing more. No marker: every cached driver still offered.
    assert!(scan(&approved, &[nic(None)], &[1], 15).changed.is_empty());
    assert_eq!(scan(&approved, &[nic(None)], &[1], 0).changed.len(), 1);
    // A cached driver no longer the best is out of scope.
    assert_eq!(scan(&approved, &[nic(None)], &[1, 2], 15).out_of_scope, vec![2]);
}
