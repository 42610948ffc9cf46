//! Reporting rollup (MS-WSUSSS 3.1.4.13-17) against the specification's example messages:
//! each request decodes on the upstream's side, what a downstream server encodes decodes
//! to the same values, and each answer decodes on the downstream's side.

use chrono::{DateTime, Utc};
use uuid::{Uuid, uuid};
use wsus_soap::rollup::*;
use wsus_soap::rollup_status::read_computer_status_request;
use wsus_soap::{Limits, parse_request};

fn spec_bytes(name: &str) -> Vec<u8> {
    wsus_testdata::read(&format!("wsusss/examples/spec/{name}"))
}

fn spec(name: &str) -> wsus_soap::Element {
    without_layout(parse_request(&spec_bytes(name), &Limits::default()).unwrap().operation)
}

/// The examples are laid out on lines: drop the whitespace between elements.
fn without_layout(mut e: wsus_soap::Element) -> wsus_soap::Element {
    if !e.children.is_empty() && e.text.trim().is_empty() {
        e.text.clear();
    }
    e.children = e.children.into_iter().map(without_layout).collect();
    e
}

fn ours(body: &str) -> wsus_soap::Element {
    let envelope = wsus_soap::wsusss::dss::envelope(body);
    parse_request(envelope.as_bytes(), &Limits::default()).unwrap().operation
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().into()
}

const DSS: Uuid = uuid!("050cee4a-aaff-470c-8fc3-7a94cb3a4293");

#[test]
fn rollup_configuration_example() {
    let request = spec("spec-15-GetRollupConfiguration-request.xml");
    assert_eq!(request.name, "GetRollupConfiguration");
    assert_eq!(ours(&get_rollup_configuration()), request, "the reporting cookie, as in the example");
    let response = spec("spec-16-GetRollupConfiguration-response.xml");
    let config = rollup_configuration(response.child("GetRollupConfigurationResult").unwrap()).unwrap();
    assert_eq!(
        config,
        RollupConfiguration::windows(
            uuid!("059ab167-8a19-4bab-befc-daaab5b1d82b"),
            uuid!("3277f62c-fa08-468f-873f-2f9867bcf9e5")
        )
    );
    let ours = ours(&encode_rollup_configuration(&config));
    assert_eq!(rollup_configuration(ours.child("GetRollupConfigurationResult").unwrap()).unwrap(), config);
}

#[test]
fn rollup_downstream_servers_example() {
    let request = spec("spec-17-RollupDownstreamServers-request.xml");
    assert_eq!(decode_client_time(&request).unwrap(), time("2007-03-06T03:28:02.5507362Z"));
    let servers = decode_downstream_servers(&request, 5000).unwrap();
    assert_eq!(servers.len(), 1);
    let s = &servers[0];
    assert_eq!((s.server_id, s.full_domain_name.as_str()), (DSS, "yasufs64.ntdev.corp.microsoft.com"));
    assert_eq!(s.last_sync_time, None, "year 1 is never");
    assert_eq!((s.parent_server_id, s.version.as_str(), s.is_replica), (Uuid::nil(), "3.0.6000.354", true));
    assert_eq!(s.summary.update_count, 1002);
    assert_eq!(s.summary.critical_or_security_updates_not_approved_for_install_count, 953);
    assert_eq!(s.summary.counts()[14..], [1, 1, 0, 0]);
    assert_eq!(s.clients.len(), 1);
    let c = &s.clients[0];
    assert_eq!(
        (c.os_major_version, c.os_build_number, c.os_locale.as_str(), c.suite_mask, c.count),
        (5, 3790, "en-US", 272, 1)
    );
    assert_eq!(
        c.activity,
        vec![ActivitySummary {
            update_id: uuid!("63ee225f-897d-42ae-841e-4a383c92f350"),
            revision_number: 101,
            install_success_count: 1,
            install_failure_count: 0
        }]
    );
    assert!(decode_downstream_servers(&request, 0).is_err(), "more summaries than the batch size");
    // What a downstream server of ours sends decodes to the same.
    let again = ours(&rollup_downstream_servers(time("2007-03-06T03:28:02.5507362Z"), &servers));
    assert_eq!(decode_downstream_servers(&again, 5000).unwrap(), servers);
    assert_eq!(ours(&encode_downstream_servers_response()), spec("spec-18-RollupDownstreamServers-response.xml"));
}

#[test]
fn rollup_computers_example() {
    let request = spec("spec-19-RollupComputers-request.xml");
    let computers = decode_computers(&request, 1500).unwrap();
    let c = &computers[0];
    assert_eq!(c.computer_id, "d07a4d51-7cb2-46d1-ad86-91195cb4325a");
    assert_eq!((c.last_sync_time, c.last_sync_result), (Some(time("2007-03-06T03:22:28.137Z")), 1));
    assert_eq!((c.last_reported_reboot_time, c.last_inventory_time), (None, None));
    assert_eq!(c.parent_server_id, DSS);
    let d = c.details.as_ref().unwrap();
    assert_eq!(d.full_domain_name.as_deref(), Some("yasufs64.ntdev.corp.microsoft.com"));
    assert_eq!((d.os_major_version, d.os_build_number, d.suite_mask), (Some(5), Some(3790), Some(272)));
    assert_eq!(d.computer_model.as_deref(), Some("HP Compaq dc7600 Convertible Minitower"));
    assert_eq!(d.bios_release_date, Some(time("2005-05-18T00:00:00Z")));
    assert_eq!(d.target_group_ids, vec![uuid!("b73ca6ed-5727-47f3-84de-015e03f6a88a")]);
    assert_eq!(d.requested_target_group_names, vec!["Windows Server 2003", "Servers"]);
    let again = ours(&rollup_computers(time("2007-03-06T03:28:02.9726004Z"), &computers));
    assert_eq!(decode_computers(&again, 1500).unwrap(), computers);
    assert!(decode_computers(&request, 0).is_err());

    let response = spec("spec-20-RollupComputers-response.xml");
    assert_eq!(changed_computers(response.child("RollupComputersResult").unwrap()).unwrap(), vec![]);
    assert_eq!(ours(&encode_computers_response(&[])), response);
    let changed = vec![("a".to_owned(), Change::NewParent), ("b\"<".to_owned(), Change::Deleted)];
    let answer = ours(&encode_computers_response(&changed));
    assert_eq!(changed_computers(answer.child("RollupComputersResult").unwrap()).unwrap(), changed);
}

#[test]
fn out_of_sync_computers_example() {
    let request = spec("spec-21-GetOutOfSyncComputers-request.xml");
    assert_eq!(decode_parent_server_id(&request).unwrap(), DSS);
    let numbers = decode_last_rollup_numbers(&request, 20000).unwrap();
    assert_eq!(numbers, vec![("d07a4d51-7cb2-46d1-ad86-91195cb4325a".to_owned(), 2)]);
    assert_eq!(ours(&get_out_of_sync_computers(DSS, &numbers)), request);
    let response = spec("spec-22-GetOutOfSyncComputers-response.xml");
    assert!(out_of_sync_computers(response.child("GetOutOfSyncComputersResult").unwrap()).is_empty());
    assert_eq!(ours(&encode_out_of_sync_computers(&[])), response);
    let some = ours(&encode_out_of_sync_computers(&["x".to_owned(), "y".to_owned()]));
    assert_eq!(out_of_sync_computers(some.child("GetOutOfSyncComputersResult").unwrap()), vec!["x", "y"]);
}

#[test]
fn computer_status_example() {
    let raw = spec_bytes("spec-23-RollupComputerStatus-request.xml");
    let request = read_computer_status_request(&raw, &Limits::default(), 500).unwrap();
    assert_eq!(request.parent_server_id, DSS);
    assert!(request.cookie);
    assert_eq!(request.namespace.as_deref(), Some(wsus_soap::wsusss::SERVER_SYNC_NS));
    let computers = request.computers;
    let c = &computers[0];
    assert_eq!(
        (c.instance_id, c.computer_id.as_str()),
        (uuid!("14720b83-5998-41f7-b586-6088cd8acd0c"), "d07a4d51-7cb2-46d1-ad86-91195cb4325a")
    );
    assert_eq!((c.rollup_number, c.is_full_rollup), (3, true));
    assert_eq!(c.effective_last_detection_time, Some(time("2007-03-06T01:47:46.42Z")));
    assert_eq!(c.statuses.iter().map(|s| s.summarization_state).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(c.statuses[0].update_id, uuid!("09de7a79-5c09-4f3a-972e-cc1bbb7ca7e4"));
    let again = wsus_soap::wsusss::dss::envelope(&rollup_computer_status(
        time("2007-03-06T03:39:24.2520342Z"),
        DSS,
        &computers,
    ));
    let read = read_computer_status_request(again.as_bytes(), &Limits::default(), 500).unwrap();
    assert_eq!((read.computers, read.client_time), (computers.clone(), time("2007-03-06T03:39:24.2520342Z")));
    // More computers than the batch size announced is refused.
    assert_eq!(
        read_computer_status_request(again.as_bytes(), &Limits::default(), 0).unwrap_err().parameter,
        "computers"
    );
    let response = spec("spec-24-RollupComputerStatus-response.xml");
    assert!(computer_status_accepted(response.child("RollupComputerStatusResult").unwrap()).unwrap());
    assert_eq!(ours(&encode_computer_status_response(true)), response);
    let busy = ours(&encode_computer_status_response(false));
    assert!(!computer_status_accepted(busy.child("RollupComputerStatusResult").unwrap()).unwrap());
}

/// The worst case this server is sized for: a full batch at the size it announces, each
/// computer with the most statuses expected, as a downstream encodes it. It reads within
/// the limits RollupComputerStatus is read with; over them, it is refused (a downstream
/// that exceeds the batch size is told, not served a partial read).
#[test]
fn the_announced_computer_status_batch_fits_its_limits() {
    let batch = ANNOUNCED_COMPUTER_STATUS_BATCH as usize;
    let computers: Vec<ComputerStatus> = (0..batch)
        .map(|i| ComputerStatus {
            instance_id: Uuid::from_u128(i as u128),
            computer_id: Uuid::from_u128(1 << 100 | i as u128).to_string(),
            effective_last_detection_time: Some(time("2026-10-04T15:03:36.9967236Z")),
            rollup_number: 7,
            is_full_rollup: true,
            statuses: (0..STATUSES_PER_COMPUTER)
                .map(|n| UpdateStatus {
                    update_id: Uuid::from_u128((i * STATUSES_PER_COMPUTER + n) as u128 | 0xfedc << 112),
                    summarization_state: (n % 7) as i16,
                    last_change_time: time("2026-10-04T15:20:46.1234567Z"),
                })
                .collect(),
        })
        .collect();
    let body = wsus_soap::wsusss::dss::envelope(&rollup_computer_status(time("2026-10-04T16:00:00Z"), DSS, &computers));
    let limits = computer_status_limits();
    assert!(body.len() < limits.max_body_bytes, "{} bytes over {}", body.len(), limits.max_body_bytes);
    let read = read_computer_status_request(body.as_bytes(), &limits, batch).unwrap();
    assert_eq!(read.computers.len(), batch);
    assert!(read.computers.iter().all(|c| c.statuses.len() == STATUSES_PER_COMPUTER));
    assert_eq!(read.computers, computers);
    // Windows' 500 of them would not fit: announcing 100 is what keeps a rollup whole.
    assert!(body.len() * 5 > limits.max_body_bytes);
    let tight = wsus_soap::Limits { max_elements: limits.max_elements / 10, ..limits };
    assert!(read_computer_status_request(body.as_bytes(), &tight, batch).is_err());
}
