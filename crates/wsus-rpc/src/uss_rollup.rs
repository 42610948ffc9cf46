//! The rollup this server receives as upstream (USS side of MS-WSUSSS 3.1.4.13-17):
//! the messages between their SOAP shape (`wsus_soap::rollup`) and their gRPC shape
//! (client-gateway → reporting). The downstream side sends SOAP only and needs no gRPC.

use uuid::Uuid;
use wsus_soap::rollup as soap;

use crate::reporting as pb;
use crate::{datetime, timestamp};

/// A message field that does not convert.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {value:?} is not valid")]
pub struct BadField {
    pub field: &'static str,
    pub value: String,
}

fn guid(field: &'static str, raw: &str) -> Result<Uuid, BadField> {
    Uuid::parse_str(raw).map_err(|_| BadField { field, value: raw.to_owned() })
}

fn small<T: TryFrom<i32>>(field: &'static str, v: i32) -> Result<T, BadField> {
    T::try_from(v).map_err(|_| BadField { field, value: v.to_string() })
}

fn time(t: Option<&crate::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    t.and_then(datetime)
}

pub fn server_to_pb(s: &soap::DownstreamServerInfo) -> pb::DownstreamServerInfo {
    pb::DownstreamServerInfo {
        server_id: s.server_id.to_string(),
        full_domain_name: s.full_domain_name.clone(),
        last_sync_time: s.last_sync_time.map(timestamp),
        parent_server_id: s.parent_server_id.to_string(),
        version: s.version.clone(),
        is_replica: s.is_replica,
        last_rollup_time: s.last_rollup_time.map(timestamp),
        summary: s.summary.counts().to_vec(),
        clients: s
            .clients
            .iter()
            .map(|c| pb::ClientSummary {
                os_major_version: c.os_major_version,
                os_minor_version: c.os_minor_version,
                os_build_number: c.os_build_number,
                os_service_pack_major_number: c.os_service_pack_major_number,
                os_service_pack_minor_number: c.os_service_pack_minor_number,
                os_locale: c.os_locale.clone(),
                suite_mask: c.suite_mask.into(),
                old_product_type: c.old_product_type.into(),
                new_product_type: c.new_product_type,
                system_metrics: c.system_metrics,
                processor_architecture: c.processor_architecture.clone(),
                count: c.count,
                activity: c
                    .activity
                    .iter()
                    .map(|a| pb::ActivitySummary {
                        update_id: a.update_id.to_string(),
                        revision_number: a.revision_number,
                        install_success_count: a.install_success_count,
                        install_failure_count: a.install_failure_count,
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub fn server_from_pb(s: pb::DownstreamServerInfo) -> Result<soap::DownstreamServerInfo, BadField> {
    let summary = soap::ServerSummary::from_counts(
        s.summary
            .try_into()
            .map_err(|v: Vec<i32>| BadField { field: "summary", value: format!("{} counts", v.len()) })?,
    );
    let clients = s
        .clients
        .into_iter()
        .map(|c| {
            Ok(soap::ClientSummary {
                os_major_version: c.os_major_version,
                os_minor_version: c.os_minor_version,
                os_build_number: c.os_build_number,
                os_service_pack_major_number: c.os_service_pack_major_number,
                os_service_pack_minor_number: c.os_service_pack_minor_number,
                os_locale: c.os_locale,
                suite_mask: small("suite_mask", c.suite_mask)?,
                old_product_type: small("old_product_type", c.old_product_type)?,
                new_product_type: c.new_product_type,
                system_metrics: c.system_metrics,
                processor_architecture: c.processor_architecture,
                count: c.count,
                activity: c
                    .activity
                    .into_iter()
                    .map(|a| {
                        Ok(soap::ActivitySummary {
                            update_id: guid("activity.update_id", &a.update_id)?,
                            revision_number: a.revision_number,
                            install_success_count: a.install_success_count,
                            install_failure_count: a.install_failure_count,
                        })
                    })
                    .collect::<Result<_, BadField>>()?,
            })
        })
        .collect::<Result<_, BadField>>()?;
    Ok(soap::DownstreamServerInfo {
        server_id: guid("server_id", &s.server_id)?,
        full_domain_name: s.full_domain_name,
        last_sync_time: time(s.last_sync_time.as_ref()),
        parent_server_id: guid("parent_server_id", &s.parent_server_id)?,
        version: s.version,
        is_replica: s.is_replica,
        last_rollup_time: time(s.last_rollup_time.as_ref()),
        summary,
        clients,
    })
}

fn details_to_pb(computer_id: &str, d: &soap::ComputerDetails) -> pb::ComputerRegistration {
    pb::ComputerRegistration {
        computer_id: computer_id.to_owned(),
        dns_name: d.full_domain_name.clone(),
        ip_address: d.ip_address.clone(),
        os_major_version: d.os_major_version,
        os_minor_version: d.os_minor_version,
        os_build_number: d.os_build_number,
        os_service_pack_major_number: d.os_service_pack_major_number.map(i32::from),
        os_service_pack_minor_number: d.os_service_pack_minor_number.map(i32::from),
        os_locale: d.os_locale.clone(),
        os_description: d.os_description.clone(),
        suite_mask: d.suite_mask.map(i32::from),
        old_product_type: d.old_product_type.map(i32::from),
        new_product_type: d.new_product_type,
        system_metrics: d.system_metrics,
        processor_architecture: d.processor_architecture.clone(),
        computer_manufacturer: d.computer_make.clone(),
        computer_model: d.computer_model.clone(),
        bios_name: d.bios_name.clone(),
        bios_version: d.bios_version.clone(),
        bios_release_date: d.bios_release_date.map(timestamp),
        client_version: d.client_version.clone(),
        requested_target_group_names: d.requested_target_group_names.clone(),
        os_family: d.os_family.clone(),
        target_group_ids: d.target_group_ids.iter().map(Uuid::to_string).collect(),
        ..Default::default()
    }
}

fn details_from_pb(d: pb::ComputerRegistration) -> Result<soap::ComputerDetails, BadField> {
    let opt_small = |field: &'static str, v: Option<i32>| v.map(|v| small::<i16>(field, v)).transpose();
    Ok(soap::ComputerDetails {
        ip_address: d.ip_address,
        full_domain_name: d.dns_name,
        os_major_version: d.os_major_version,
        os_minor_version: d.os_minor_version,
        os_build_number: d.os_build_number,
        os_service_pack_major_number: opt_small("os_service_pack_major_number", d.os_service_pack_major_number)?,
        os_service_pack_minor_number: opt_small("os_service_pack_minor_number", d.os_service_pack_minor_number)?,
        os_locale: d.os_locale,
        os_family: d.os_family,
        os_description: d.os_description,
        computer_make: d.computer_manufacturer,
        computer_model: d.computer_model,
        bios_version: d.bios_version,
        bios_name: d.bios_name,
        bios_release_date: time(d.bios_release_date.as_ref()),
        processor_architecture: d.processor_architecture,
        suite_mask: opt_small("suite_mask", d.suite_mask)?,
        old_product_type: opt_small("old_product_type", d.old_product_type)?,
        new_product_type: d.new_product_type,
        system_metrics: d.system_metrics,
        client_version: d.client_version,
        target_group_ids: d.target_group_ids.iter().map(|g| guid("target_group_ids", g)).collect::<Result<_, _>>()?,
        requested_target_group_names: d.requested_target_group_names,
    })
}

pub fn computer_to_pb(c: &soap::ComputerInfo) -> pb::RolledUpComputer {
    pb::RolledUpComputer {
        computer_id: c.computer_id.clone(),
        last_sync_time: c.last_sync_time.map(timestamp),
        last_sync_result: c.last_sync_result.into(),
        last_reported_reboot_time: c.last_reported_reboot_time.map(timestamp),
        last_reported_status_time: c.last_reported_status_time.map(timestamp),
        last_inventory_time: c.last_inventory_time.map(timestamp),
        parent_server_id: c.parent_server_id.to_string(),
        details: c.details.as_ref().map(|d| details_to_pb(&c.computer_id, d)),
    }
}

pub fn computer_from_pb(c: pb::RolledUpComputer) -> Result<soap::ComputerInfo, BadField> {
    Ok(soap::ComputerInfo {
        last_sync_time: time(c.last_sync_time.as_ref()),
        last_sync_result: small("last_sync_result", c.last_sync_result)?,
        last_reported_reboot_time: time(c.last_reported_reboot_time.as_ref()),
        last_reported_status_time: time(c.last_reported_status_time.as_ref()),
        last_inventory_time: time(c.last_inventory_time.as_ref()),
        parent_server_id: guid("parent_server_id", &c.parent_server_id)?,
        details: c.details.map(details_from_pb).transpose()?,
        computer_id: c.computer_id,
    })
}

pub fn status_to_pb(c: &soap::ComputerStatus) -> pb::ComputerStatusRollup {
    pb::ComputerStatusRollup {
        instance_id: c.instance_id.to_string(),
        computer_id: c.computer_id.clone(),
        effective_last_detection_time: c.effective_last_detection_time.map(timestamp),
        rollup_number: c.rollup_number,
        is_full_rollup: c.is_full_rollup,
        statuses: c
            .statuses
            .iter()
            .map(|s| pb::RolledUpStatus {
                update_id: s.update_id.to_string(),
                summarization_state: s.summarization_state.into(),
                last_change_time: Some(timestamp(s.last_change_time)),
            })
            .collect(),
    }
}

pub fn status_from_pb(c: pb::ComputerStatusRollup) -> Result<soap::ComputerStatus, BadField> {
    Ok(soap::ComputerStatus {
        instance_id: guid("instance_id", &c.instance_id)?,
        effective_last_detection_time: time(c.effective_last_detection_time.as_ref()),
        rollup_number: c.rollup_number,
        is_full_rollup: c.is_full_rollup,
        statuses: c
            .statuses
            .into_iter()
            .map(|s| {
                let state: i16 = small("summarization_state", s.summarization_state)?;
                if !(0..=6).contains(&state) {
                    return Err(BadField { field: "summarization_state", value: state.to_string() });
                }
                Ok(soap::UpdateStatus {
                    update_id: guid("update_id", &s.update_id)?,
                    summarization_state: state,
                    last_change_time: time(s.last_change_time.as_ref())
                        .ok_or(BadField { field: "last_change_time", value: String::new() })?,
                })
            })
            .collect::<Result<_, _>>()?,
        computer_id: c.computer_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computers_and_statuses_survive_the_trip() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-10-04T14:49:05.123Z").unwrap().to_utc();
        let computer = soap::ComputerInfo {
            computer_id: "c1".into(),
            last_sync_time: Some(t),
            last_sync_result: 1,
            last_reported_reboot_time: None,
            last_reported_status_time: Some(t),
            last_inventory_time: None,
            parent_server_id: Uuid::new_v4(),
            details: Some(soap::ComputerDetails {
                full_domain_name: Some("pc.contoso.test".into()),
                os_build_number: Some(26100),
                suite_mask: Some(272),
                os_family: Some("Windows".into()),
                target_group_ids: vec![Uuid::new_v4()],
                requested_target_group_names: vec!["Ring 1".into()],
                ..Default::default()
            }),
        };
        assert_eq!(computer_from_pb(computer_to_pb(&computer)).unwrap(), computer);
        let status = soap::ComputerStatus {
            instance_id: Uuid::new_v4(),
            computer_id: "c1".into(),
            effective_last_detection_time: Some(t),
            rollup_number: 3,
            is_full_rollup: true,
            statuses: vec![soap::UpdateStatus {
                update_id: Uuid::new_v4(),
                summarization_state: 4,
                last_change_time: t,
            }],
        };
        assert_eq!(status_from_pb(status_to_pb(&status)).unwrap(), status);
        let mut bad = status_to_pb(&status);
        bad.statuses[0].summarization_state = 9;
        assert!(status_from_pb(bad).is_err());
        let server = soap::DownstreamServerInfo {
            server_id: Uuid::new_v4(),
            full_domain_name: "dss".into(),
            last_sync_time: None,
            parent_server_id: Uuid::nil(),
            version: "1".into(),
            is_replica: false,
            last_rollup_time: Some(t),
            summary: soap::ServerSummary::from_counts([7; 18]),
            clients: vec![soap::ClientSummary { count: 2, suite_mask: 256, ..Default::default() }],
        };
        assert_eq!(server_from_pb(server_to_pb(&server)).unwrap(), server);
    }
}
