//! MS-WSUSSS reporting rollup (3.1.4.13-17), both directions: what a downstream server
//! sends about itself, its computers and their statuses, and what the upstream answers.
//! The shapes follow the WSDL and the specification's examples (spec-15 … spec-24).
//! Both sides stay in one module on purpose: each message is written by one side and read
//! by the other, and keeping its encoder beside its decoder is what lets the tests
//! round-trip it. Callers are split by side: client-gateway `uss::rollup` reads requests,
//! sync-worker `dss::rollup` writes them.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::read;
use crate::write::{datetime, escape};
use crate::wsusss::SERVER_SYNC_NS;
use crate::{DecodeError, Element};

/// What the upstream tells a downstream server before a rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupConfiguration {
    pub do_detailed_rollup: bool,
    /// A new value asks the downstream server for a full rollup.
    pub rollup_reset_guid: Uuid,
    /// The upstream server's id.
    pub server_id: Uuid,
    pub downstream_servers_batch: u32,
    pub computers_batch: u32,
    pub out_of_sync_batch: u32,
    pub computer_status_batch: u32,
}

impl RollupConfiguration {
    /// The batch sizes of a real WSUS.
    pub fn windows(server_id: Uuid, rollup_reset_guid: Uuid) -> Self {
        Self {
            do_detailed_rollup: true,
            rollup_reset_guid,
            server_id,
            downstream_servers_batch: 5000,
            computers_batch: 1500,
            out_of_sync_batch: 20000,
            computer_status_batch: 500,
        }
    }
}

/// The RollupComputerStatus batch this server announces, smaller than Windows' 500
/// (the value is "implementation-specific", MS-WSUSSS 3.1.4.13): a computer's full rollup
/// names every update it has a status for, so 500 of them with a few thousand statuses
/// each is a request of hundreds of MB, which a downstream resends unchanged after every
/// refusal.
pub const ANNOUNCED_COMPUTER_STATUS_BATCH: u32 = 100;
/// The statuses a computer is expected to carry at most in one rollup (sizes the limits
/// below): more than a Windows client's applicable updates across its products.
pub const STATUSES_PER_COMPUTER: usize = 2_500;

impl RollupConfiguration {
    /// The batch sizes this server announces: Windows' (MS-WSUSSS endnotes <46>-<49>),
    /// but RollupComputerStatus's ([`ANNOUNCED_COMPUTER_STATUS_BATCH`]).
    pub fn announced(server_id: Uuid, rollup_reset_guid: Uuid) -> Self {
        Self { computer_status_batch: ANNOUNCED_COMPUTER_STATUS_BATCH, ..Self::windows(server_id, rollup_reset_guid) }
    }
}

/// What a RollupComputerStatus is read within: a full batch of computers at
/// [`STATUSES_PER_COMPUTER`] each, with room to spare (a status is about 230 bytes and 4
/// elements as this server and the specification's examples write one).
pub fn computer_status_limits() -> crate::Limits {
    let batch = ANNOUNCED_COMPUTER_STATUS_BATCH as usize;
    crate::Limits {
        max_body_bytes: 64 * 1024 * 1024,
        max_depth: 16,
        max_elements: batch * (STATUSES_PER_COMPUTER * 4 + 16) + 64,
    }
}

/// The 18 counts of DownstreamServerRollupServerSummary, in WSDL order.
pub const SERVER_SUMMARY_FIELDS: [&str; 18] = [
    "UpdateCount",
    "DeclinedUpdateCount",
    "ApprovedUpdateCount",
    "NotApprovedUpdateCount",
    "UpdatesWithStaleUpdateApprovalsCount",
    "ExpiredUpdateCount",
    "CriticalOrSecurityUpdatesNotApprovedForInstallCount",
    "WsusInfrastructureUpdatesNotApprovedForInstallCount",
    "UpdatesWithClientErrorsCount",
    "UpdatesWithServerErrorsCount",
    "UpdatesNeedingFilesCount",
    "UpdatesNeededByComputersCount",
    "UpdatesUpToDateCount",
    "CustomComputerTargetGroupCount",
    "ComputerTargetCount",
    "ComputerTargetsNeedingUpdatesCount",
    "ComputerTargetsWithUpdateErrorsCount",
    "ComputersUpToDateCount",
];

/// DownstreamServerRollupServerSummary: the counts a server reports of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerSummary {
    pub update_count: i32,
    pub declined_update_count: i32,
    pub approved_update_count: i32,
    pub not_approved_update_count: i32,
    pub updates_with_stale_update_approvals_count: i32,
    pub expired_update_count: i32,
    pub critical_or_security_updates_not_approved_for_install_count: i32,
    pub wsus_infrastructure_updates_not_approved_for_install_count: i32,
    pub updates_with_client_errors_count: i32,
    pub updates_with_server_errors_count: i32,
    pub updates_needing_files_count: i32,
    pub updates_needed_by_computers_count: i32,
    pub updates_up_to_date_count: i32,
    pub custom_computer_target_group_count: i32,
    pub computer_target_count: i32,
    pub computer_targets_needing_updates_count: i32,
    pub computer_targets_with_update_errors_count: i32,
    pub computers_up_to_date_count: i32,
}

impl ServerSummary {
    /// The counts in WSDL order, beside [`SERVER_SUMMARY_FIELDS`].
    pub fn counts(&self) -> [i32; 18] {
        [
            self.update_count,
            self.declined_update_count,
            self.approved_update_count,
            self.not_approved_update_count,
            self.updates_with_stale_update_approvals_count,
            self.expired_update_count,
            self.critical_or_security_updates_not_approved_for_install_count,
            self.wsus_infrastructure_updates_not_approved_for_install_count,
            self.updates_with_client_errors_count,
            self.updates_with_server_errors_count,
            self.updates_needing_files_count,
            self.updates_needed_by_computers_count,
            self.updates_up_to_date_count,
            self.custom_computer_target_group_count,
            self.computer_target_count,
            self.computer_targets_needing_updates_count,
            self.computer_targets_with_update_errors_count,
            self.computers_up_to_date_count,
        ]
    }

    /// From the counts in WSDL order.
    pub fn from_counts(counts: [i32; 18]) -> Self {
        let [
            update_count,
            declined_update_count,
            approved_update_count,
            not_approved_update_count,
            updates_with_stale_update_approvals_count,
            expired_update_count,
            critical_or_security_updates_not_approved_for_install_count,
            wsus_infrastructure_updates_not_approved_for_install_count,
            updates_with_client_errors_count,
            updates_with_server_errors_count,
            updates_needing_files_count,
            updates_needed_by_computers_count,
            updates_up_to_date_count,
            custom_computer_target_group_count,
            computer_target_count,
            computer_targets_needing_updates_count,
            computer_targets_with_update_errors_count,
            computers_up_to_date_count,
        ] = counts;
        Self {
            update_count,
            declined_update_count,
            approved_update_count,
            not_approved_update_count,
            updates_with_stale_update_approvals_count,
            expired_update_count,
            critical_or_security_updates_not_approved_for_install_count,
            wsus_infrastructure_updates_not_approved_for_install_count,
            updates_with_client_errors_count,
            updates_with_server_errors_count,
            updates_needing_files_count,
            updates_needed_by_computers_count,
            updates_up_to_date_count,
            custom_computer_target_group_count,
            computer_target_count,
            computer_targets_needing_updates_count,
            computer_targets_with_update_errors_count,
            computers_up_to_date_count,
        }
    }
}

/// Install operations of one update since the last rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivitySummary {
    pub update_id: Uuid,
    pub revision_number: i32,
    pub install_success_count: i32,
    pub install_failure_count: i32,
}

/// How many computers of one operating system a server has, and their install activity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientSummary {
    pub os_major_version: i32,
    pub os_minor_version: i32,
    pub os_build_number: i32,
    pub os_service_pack_major_number: i32,
    pub os_service_pack_minor_number: i32,
    pub os_locale: String,
    pub suite_mask: i16,
    pub old_product_type: u8,
    pub new_product_type: i32,
    pub system_metrics: i32,
    pub processor_architecture: String,
    pub count: i32,
    pub activity: Vec<ActivitySummary>,
}

/// DownstreamServerRollupInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamServerInfo {
    pub server_id: Uuid,
    pub full_domain_name: String,
    pub last_sync_time: Option<DateTime<Utc>>,
    /// The server it syncs from; nil when that is the receiving upstream.
    pub parent_server_id: Uuid,
    pub version: String,
    pub is_replica: bool,
    pub last_rollup_time: Option<DateTime<Utc>>,
    pub summary: ServerSummary,
    pub clients: Vec<ClientSummary>,
}

/// ComputerRollupDetails: what a computer is (sent first, and when it changed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComputerDetails {
    pub ip_address: Option<String>,
    pub full_domain_name: Option<String>,
    pub os_major_version: Option<i32>,
    pub os_minor_version: Option<i32>,
    pub os_build_number: Option<i32>,
    pub os_service_pack_major_number: Option<i16>,
    pub os_service_pack_minor_number: Option<i16>,
    pub os_locale: Option<String>,
    pub os_family: Option<String>,
    pub os_description: Option<String>,
    pub computer_make: Option<String>,
    pub computer_model: Option<String>,
    pub bios_version: Option<String>,
    pub bios_name: Option<String>,
    pub bios_release_date: Option<DateTime<Utc>>,
    pub processor_architecture: Option<String>,
    pub suite_mask: Option<i16>,
    pub old_product_type: Option<i16>,
    pub new_product_type: Option<i32>,
    pub system_metrics: Option<i32>,
    pub client_version: Option<String>,
    pub target_group_ids: Vec<Uuid>,
    pub requested_target_group_names: Vec<String>,
}

/// ComputerRollupInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputerInfo {
    pub computer_id: String,
    pub last_sync_time: Option<DateTime<Utc>>,
    /// 0 unknown, 1 succeeded, 2 failed.
    pub last_sync_result: i16,
    pub last_reported_reboot_time: Option<DateTime<Utc>>,
    pub last_reported_status_time: Option<DateTime<Utc>>,
    pub last_inventory_time: Option<DateTime<Utc>>,
    /// The downstream server the computer reports to.
    pub parent_server_id: Uuid,
    pub details: Option<ComputerDetails>,
}

/// What the upstream says about a computer in RollupComputers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Send its details next time.
    NewParent,
    /// Forget it.
    Deleted,
}

/// One update's state on a computer (SummarizationState).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStatus {
    pub update_id: Uuid,
    pub summarization_state: i16,
    pub last_change_time: DateTime<Utc>,
}

/// ComputerStatusRollupInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputerStatus {
    pub instance_id: Uuid,
    pub computer_id: String,
    pub effective_last_detection_time: Option<DateTime<Utc>>,
    pub rollup_number: i32,
    pub is_full_rollup: bool,
    pub statuses: Vec<UpdateStatus>,
}

/// How "never" is written: the smallest SQL Server datetime, as WSUS does.
const NEVER: &str = "1753-01-01T00:00:00";

fn time_or_never(t: Option<DateTime<Utc>>) -> String {
    t.map(datetime).unwrap_or_else(|| NEVER.to_owned())
}

fn attr_escape(s: &str) -> String {
    escape(s).replace('"', "&quot;")
}

// ---- the upstream's side: decode requests, encode responses ----

/// `clientTime` of a rollup request: the downstream server's clock.
pub fn decode_client_time(op: &Element) -> Result<DateTime<Utc>, DecodeError> {
    read::time(&read::text(op, "clientTime", "clientTime")?, "clientTime")
}

/// `parentServerId`: the calling downstream server.
pub fn decode_parent_server_id(op: &Element) -> Result<Uuid, DecodeError> {
    read::guid(&read::text(op, "parentServerId", "parentServerId")?, "parentServerId")
}

pub fn encode_rollup_configuration(c: &RollupConfiguration) -> String {
    format!(
        "<GetRollupConfigurationResponse xmlns=\"{SERVER_SYNC_NS}\"><GetRollupConfigurationResult>\
         <DoDetailedRollup>{}</DoDetailedRollup><RollupResetGuid>{}</RollupResetGuid><ServerId>{}</ServerId>\
         <RollupDownstreamServersMaxBatchSize>{}</RollupDownstreamServersMaxBatchSize>\
         <RollupComputersMaxBatchSize>{}</RollupComputersMaxBatchSize>\
         <GetOutOfSyncComputersMaxBatchSize>{}</GetOutOfSyncComputersMaxBatchSize>\
         <RollupComputerStatusMaxBatchSize>{}</RollupComputerStatusMaxBatchSize>\
         </GetRollupConfigurationResult></GetRollupConfigurationResponse>",
        c.do_detailed_rollup,
        c.rollup_reset_guid,
        c.server_id,
        c.downstream_servers_batch,
        c.computers_batch,
        c.out_of_sync_batch,
        c.computer_status_batch
    )
}

/// RollupDownstreamServers; at most `limit` client summaries in all.
pub fn decode_downstream_servers(op: &Element, limit: usize) -> Result<Vec<DownstreamServerInfo>, DecodeError> {
    let path = "downstreamServers";
    let servers = read::items(op, "downstreamServers")
        .map(|s| {
            let mut counts = [0i32; 18];
            if let Some(sum) = s.child("ServerSummary") {
                for (slot, name) in counts.iter_mut().zip(SERVER_SUMMARY_FIELDS) {
                    *slot = read::opt_num(sum, name, path)?.unwrap_or(0);
                }
            }
            let summary = ServerSummary::from_counts(counts);
            let clients = read::items(s, "ClientSummaries")
                .map(|c| {
                    let activity = read::items(c, "ActivitySummaries")
                        .map(|a| {
                            Ok(ActivitySummary {
                                update_id: read::guid(&read::text(a, "UpdateId", path)?, path)?,
                                revision_number: read::required_num(a, "RevisionNumber", path)?,
                                install_success_count: read::required_num(a, "InstallSuccessCount", path)?,
                                install_failure_count: read::required_num(a, "InstallFailureCount", path)?,
                            })
                        })
                        .collect::<Result<Vec<_>, DecodeError>>()?;
                    Ok(ClientSummary {
                        os_major_version: read::required_num(c, "OSMajorVersion", path)?,
                        os_minor_version: read::required_num(c, "OSMinorVersion", path)?,
                        os_build_number: read::required_num(c, "OSBuildNumber", path)?,
                        os_service_pack_major_number: read::required_num(c, "OSServicePackMajorNumber", path)?,
                        os_service_pack_minor_number: read::required_num(c, "OSServicePackMinorNumber", path)?,
                        os_locale: read::opt_text(c, "OSLocale").unwrap_or_default(),
                        suite_mask: read::required_num(c, "SuiteMask", path)?,
                        old_product_type: read::required_num(c, "OldProductType", path)?,
                        new_product_type: read::required_num(c, "NewProductType", path)?,
                        system_metrics: read::required_num(c, "SystemMetrics", path)?,
                        processor_architecture: read::opt_text(c, "ProcessorArchitecture").unwrap_or_default(),
                        count: read::required_num(c, "Count", path)?,
                        activity,
                    })
                })
                .collect::<Result<Vec<_>, DecodeError>>()?;
            Ok(DownstreamServerInfo {
                server_id: read::guid(&read::text(s, "ServerId", path)?, path)?,
                full_domain_name: read::opt_text(s, "FullDomainName").unwrap_or_default(),
                last_sync_time: read::optional_time(read::opt_text(s, "LastSyncTime").as_deref(), path)?,
                parent_server_id: read::opt_text(s, "ParentServerId")
                    .map(|p| read::guid(&p, path))
                    .transpose()?
                    .unwrap_or(Uuid::nil()),
                version: read::opt_text(s, "Version").unwrap_or_default(),
                is_replica: read::bool_or(s, "IsReplica", path, false)?,
                last_rollup_time: read::optional_time(read::opt_text(s, "LastRollupTime").as_deref(), path)?,
                summary,
                clients,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    let summaries: usize = servers.iter().map(|s| s.clients.len()).sum();
    if summaries > limit {
        return Err(DecodeError::new(path, format!("{summaries} client summaries, more than the batch size {limit}")));
    }
    Ok(servers)
}

pub fn encode_downstream_servers_response() -> String {
    format!("<RollupDownstreamServersResponse xmlns=\"{SERVER_SYNC_NS}\" />")
}

/// RollupComputers (attributes, as the WSDL defines them).
pub fn decode_computers(op: &Element, limit: usize) -> Result<Vec<ComputerInfo>, DecodeError> {
    let path = "computers";
    let computers = read::items(op, "computers")
        .map(|c| {
            let computer_id = c.attr("ComputerId").unwrap_or_default().to_owned();
            if computer_id.is_empty() || computer_id.len() > 256 {
                return Err(DecodeError::new(path, "ComputerId is required (at most 256 characters)"));
            }
            let details = c
                .child("Details")
                .map(|d| {
                    let s = |n: &str| d.attr(n).filter(|v| !v.is_empty()).map(str::to_owned);
                    Ok::<_, DecodeError>(ComputerDetails {
                        ip_address: s("IPAddress"),
                        full_domain_name: s("FullDomainName"),
                        os_major_version: read::attr_num(d, "OSMajorVersion", path)?,
                        os_minor_version: read::attr_num(d, "OSMinorVersion", path)?,
                        os_build_number: read::attr_num(d, "OSBuildNumber", path)?,
                        os_service_pack_major_number: read::attr_num(d, "OSServicePackMajorNumber", path)?,
                        os_service_pack_minor_number: read::attr_num(d, "OSServicePackMinorNumber", path)?,
                        os_locale: s("OSLocale"),
                        os_family: s("OSFamily"),
                        os_description: s("OSDescription"),
                        computer_make: s("ComputerMake"),
                        computer_model: s("ComputerModel"),
                        bios_version: s("BiosVersion"),
                        bios_name: s("BiosName"),
                        bios_release_date: read::optional_time(d.attr("BiosReleaseDate"), path)?,
                        processor_architecture: s("ProcessorArchitecture"),
                        suite_mask: read::attr_num(d, "SuiteMask", path)?,
                        old_product_type: read::attr_num(d, "OldProductType", path)?,
                        new_product_type: read::attr_num(d, "NewProductType", path)?,
                        system_metrics: read::attr_num(d, "SystemMetrics", path)?,
                        client_version: s("ClientVersion"),
                        target_group_ids: read::items(d, "TargetGroupIdList")
                            .map(|g| read::guid(g.value(), path))
                            .collect::<Result<_, _>>()?,
                        requested_target_group_names: read::strings(d, "RequestedTargetGroupNames"),
                    })
                })
                .transpose()?;
            Ok(ComputerInfo {
                computer_id,
                last_sync_time: read::optional_time(c.attr("LastSyncTime"), path)?,
                last_sync_result: read::attr_num(c, "LastSyncResult", path)?.unwrap_or(0),
                last_reported_reboot_time: read::optional_time(c.attr("LastReportedRebootTime"), path)?,
                last_reported_status_time: read::optional_time(c.attr("LastReportedStatusTime"), path)?,
                last_inventory_time: read::optional_time(c.attr("LastInventoryTime"), path)?,
                parent_server_id: read::guid(c.attr("ParentServerId").unwrap_or_default(), path)?,
                details,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    read::at_most(computers, limit, path)
}

pub fn encode_computers_response(changed: &[(String, Change)]) -> String {
    let mut out = format!("<RollupComputersResponse xmlns=\"{SERVER_SYNC_NS}\">");
    if changed.is_empty() {
        out.push_str("<RollupComputersResult />");
    } else {
        out.push_str("<RollupComputersResult>");
        for (id, change) in changed {
            let change = match change {
                Change::NewParent => "NewParent",
                Change::Deleted => "Deleted",
            };
            let _ = write!(out, "<ChangedComputer ComputerId=\"{}\" Change=\"{change}\" />", attr_escape(id));
        }
        out.push_str("</RollupComputersResult>");
    }
    out.push_str("</RollupComputersResponse>");
    out
}

/// GetOutOfSyncComputers: (computer id, last rollup number).
pub fn decode_last_rollup_numbers(op: &Element, limit: usize) -> Result<Vec<(String, i32)>, DecodeError> {
    let path = "lastRollupNumbers";
    let numbers = read::items(op, "lastRollupNumbers")
        .map(|n| Ok((read::text(n, "ComputerId", path)?, read::required_num(n, "RollupNumber", path)?)))
        .collect::<Result<Vec<_>, DecodeError>>()?;
    read::at_most(numbers, limit, path)
}

pub fn encode_out_of_sync_computers(ids: &[String]) -> String {
    let mut out = format!("<GetOutOfSyncComputersResponse xmlns=\"{SERVER_SYNC_NS}\">");
    if ids.is_empty() {
        out.push_str("<GetOutOfSyncComputersResult />");
    } else {
        out.push_str("<GetOutOfSyncComputersResult>");
        for id in ids {
            let _ = write!(out, "<string>{}</string>", escape(id));
        }
        out.push_str("</GetOutOfSyncComputersResult>");
    }
    out.push_str("</GetOutOfSyncComputersResponse>");
    out
}

/// `accepted` false = busy: the downstream server tries again later.
pub fn encode_computer_status_response(accepted: bool) -> String {
    format!(
        "<RollupComputerStatusResponse xmlns=\"{SERVER_SYNC_NS}\"><RollupComputerStatusResult>{accepted}</RollupComputerStatusResult></RollupComputerStatusResponse>"
    )
}

// ---- the downstream server's side: encode requests, decode responses ----

/// The reporting cookie every rollup operation carries (3.1.4.13.2.1).
const REPORTING_COOKIE: &str = "<cookie><Expiration>9999-12-31T23:59:59.9999999</Expiration><EncryptedData /></cookie>";

pub fn get_rollup_configuration() -> String {
    format!("<GetRollupConfiguration xmlns=\"{SERVER_SYNC_NS}\">{REPORTING_COOKIE}</GetRollupConfiguration>")
}

fn opt_element(out: &mut String, name: &str, v: Option<impl std::fmt::Display>) {
    if let Some(v) = v {
        let _ = write!(out, "<{name}>{}</{name}>", escape(&v.to_string()));
    }
}

pub fn rollup_downstream_servers(client_time: DateTime<Utc>, servers: &[DownstreamServerInfo]) -> String {
    let mut out = format!(
        "<RollupDownstreamServers xmlns=\"{SERVER_SYNC_NS}\">{REPORTING_COOKIE}<clientTime>{}</clientTime><downstreamServers>",
        datetime(client_time)
    );
    for s in servers {
        let _ = write!(
            out,
            "<DownstreamServerRollupInfo><ServerId>{}</ServerId><FullDomainName>{}</FullDomainName><LastSyncTime>{}</LastSyncTime>\
             <ParentServerId>{}</ParentServerId><Version>{}</Version><IsReplica>{}</IsReplica><LastRollupTime>{}</LastRollupTime><ServerSummary>",
            s.server_id,
            escape(&s.full_domain_name),
            time_or_never(s.last_sync_time),
            s.parent_server_id,
            escape(&s.version),
            s.is_replica,
            time_or_never(s.last_rollup_time)
        );
        for (name, v) in SERVER_SUMMARY_FIELDS.iter().zip(s.summary.counts()) {
            let _ = write!(out, "<{name}>{v}</{name}>");
        }
        out.push_str("</ServerSummary><ClientSummaries>");
        for c in &s.clients {
            let _ = write!(
                out,
                "<DownstreamServerRollupClientSummary><OSMajorVersion>{}</OSMajorVersion><OSMinorVersion>{}</OSMinorVersion>\
                 <OSBuildNumber>{}</OSBuildNumber><OSServicePackMajorNumber>{}</OSServicePackMajorNumber>\
                 <OSServicePackMinorNumber>{}</OSServicePackMinorNumber><OSLocale>{}</OSLocale><SuiteMask>{}</SuiteMask>\
                 <OldProductType>{}</OldProductType><NewProductType>{}</NewProductType><SystemMetrics>{}</SystemMetrics>\
                 <ProcessorArchitecture>{}</ProcessorArchitecture><Count>{}</Count><ActivitySummaries>",
                c.os_major_version,
                c.os_minor_version,
                c.os_build_number,
                c.os_service_pack_major_number,
                c.os_service_pack_minor_number,
                escape(&c.os_locale),
                c.suite_mask,
                c.old_product_type,
                c.new_product_type,
                c.system_metrics,
                escape(&c.processor_architecture),
                c.count
            );
            for a in &c.activity {
                let _ = write!(
                    out,
                    "<DownstreamServerRollupClientActivitySummary><UpdateId>{}</UpdateId><RevisionNumber>{}</RevisionNumber>\
                     <InstallSuccessCount>{}</InstallSuccessCount><InstallFailureCount>{}</InstallFailureCount>\
                     </DownstreamServerRollupClientActivitySummary>",
                    a.update_id, a.revision_number, a.install_success_count, a.install_failure_count
                );
            }
            out.push_str("</ActivitySummaries></DownstreamServerRollupClientSummary>");
        }
        out.push_str("</ClientSummaries></DownstreamServerRollupInfo>");
    }
    out.push_str("</downstreamServers></RollupDownstreamServers>");
    out
}

pub fn rollup_computers(client_time: DateTime<Utc>, computers: &[ComputerInfo]) -> String {
    let mut out = format!(
        "<RollupComputers xmlns=\"{SERVER_SYNC_NS}\">{REPORTING_COOKIE}<clientTime>{}</clientTime><computers>",
        datetime(client_time)
    );
    for c in computers {
        let _ = write!(
            out,
            "<ComputerRollupInfo ComputerId=\"{}\" LastSyncTime=\"{}\" LastSyncResult=\"{}\" LastReportedRebootTime=\"{}\" \
             LastReportedStatusTime=\"{}\" LastInventoryTime=\"{}\" ParentServerId=\"{}\">",
            attr_escape(&c.computer_id),
            time_or_never(c.last_sync_time),
            c.last_sync_result,
            time_or_never(c.last_reported_reboot_time),
            time_or_never(c.last_reported_status_time),
            time_or_never(c.last_inventory_time),
            c.parent_server_id
        );
        if let Some(d) = &c.details {
            out.push_str("<Details");
            let mut a = |name: &str, v: Option<String>| {
                if let Some(v) = v {
                    let _ = write!(out, " {name}=\"{}\"", attr_escape(&v));
                }
            };
            let n = |v: Option<i64>| v.map(|v| v.to_string());
            // "This field MUST be present" (MS-WSUSSS 3.1.4.15.3.3): empty when not known.
            a("IPAddress", Some(d.ip_address.clone().unwrap_or_default()));
            a("FullDomainName", d.full_domain_name.clone());
            a("OSMajorVersion", n(d.os_major_version.map(i64::from)));
            a("OSMinorVersion", n(d.os_minor_version.map(i64::from)));
            a("OSBuildNumber", n(d.os_build_number.map(i64::from)));
            a("OSServicePackMajorNumber", n(d.os_service_pack_major_number.map(i64::from)));
            a("OSServicePackMinorNumber", n(d.os_service_pack_minor_number.map(i64::from)));
            a("OSLocale", d.os_locale.clone());
            a("OSFamily", d.os_family.clone());
            a("OSDescription", d.os_description.clone());
            a("ComputerMake", d.computer_make.clone());
            a("ComputerModel", d.computer_model.clone());
            a("BiosVersion", d.bios_version.clone());
            a("BiosName", d.bios_name.clone());
            a("BiosReleaseDate", d.bios_release_date.map(datetime));
            a("ProcessorArchitecture", d.processor_architecture.clone());
            a("SuiteMask", n(d.suite_mask.map(i64::from)));
            a("OldProductType", n(d.old_product_type.map(i64::from)));
            a("NewProductType", n(d.new_product_type.map(i64::from)));
            a("SystemMetrics", n(d.system_metrics.map(i64::from)));
            a("ClientVersion", d.client_version.clone());
            out.push_str("><TargetGroupIdList>");
            for g in &d.target_group_ids {
                let _ = write!(out, "<guid>{g}</guid>");
            }
            out.push_str("</TargetGroupIdList><RequestedTargetGroupNames>");
            for name in &d.requested_target_group_names {
                let _ = write!(out, "<string>{}</string>", escape(name));
            }
            out.push_str("</RequestedTargetGroupNames></Details>");
        }
        out.push_str("</ComputerRollupInfo>");
    }
    out.push_str("</computers></RollupComputers>");
    out
}

pub fn get_out_of_sync_computers(parent_server_id: Uuid, numbers: &[(String, i32)]) -> String {
    let mut out = format!(
        "<GetOutOfSyncComputers xmlns=\"{SERVER_SYNC_NS}\">{REPORTING_COOKIE}<parentServerId>{parent_server_id}</parentServerId><lastRollupNumbers>"
    );
    for (id, n) in numbers {
        let _ = write!(
            out,
            "<ComputerLastRollupNumber><ComputerId>{}</ComputerId><RollupNumber>{n}</RollupNumber></ComputerLastRollupNumber>",
            escape(id)
        );
    }
    out.push_str("</lastRollupNumbers></GetOutOfSyncComputers>");
    out
}

pub fn rollup_computer_status(
    client_time: DateTime<Utc>,
    parent_server_id: Uuid,
    computers: &[ComputerStatus],
) -> String {
    let mut out = format!(
        "<RollupComputerStatus xmlns=\"{SERVER_SYNC_NS}\">{REPORTING_COOKIE}<clientTime>{}</clientTime>\
         <parentServerId>{parent_server_id}</parentServerId><computers>",
        datetime(client_time)
    );
    for c in computers {
        let _ = write!(
            out,
            "<ComputerStatusRollupInfo><InstanceId>{}</InstanceId><ComputerId>{}</ComputerId>",
            c.instance_id,
            escape(&c.computer_id)
        );
        opt_element(&mut out, "EffectiveLastDetectionTime", Some(time_or_never(c.effective_last_detection_time)));
        let _ = write!(
            out,
            "<RollupNumber>{}</RollupNumber><IsFullRollup>{}</IsFullRollup><UpdateStatus>",
            c.rollup_number, c.is_full_rollup
        );
        for s in &c.statuses {
            let _ = write!(
                out,
                "<ComputerStatusRollupUpdateStatus><UpdateId>{}</UpdateId><SummarizationState>{}</SummarizationState>\
                 <LastChangeTime>{}</LastChangeTime></ComputerStatusRollupUpdateStatus>",
                s.update_id,
                s.summarization_state,
                datetime(s.last_change_time)
            );
        }
        out.push_str("</UpdateStatus></ComputerStatusRollupInfo>");
    }
    out.push_str("</computers></RollupComputerStatus>");
    out
}

/// GetRollupConfigurationResult.
pub fn rollup_configuration(result: &Element) -> Result<RollupConfiguration, DecodeError> {
    let path = "GetRollupConfigurationResult";
    let batch = |name: &str| -> Result<u32, DecodeError> {
        let n: u32 = read::required_num(result, name, path)?;
        if n == 0 {
            return Err(DecodeError::new(path, format!("{name} is 0")));
        }
        Ok(n)
    };
    Ok(RollupConfiguration {
        do_detailed_rollup: read::required_bool(result, "DoDetailedRollup", path)?,
        rollup_reset_guid: read::guid(&read::text(result, "RollupResetGuid", path)?, path)?,
        server_id: read::guid(&read::text(result, "ServerId", path)?, path)?,
        downstream_servers_batch: batch("RollupDownstreamServersMaxBatchSize")?,
        computers_batch: batch("RollupComputersMaxBatchSize")?,
        out_of_sync_batch: batch("GetOutOfSyncComputersMaxBatchSize")?,
        computer_status_batch: batch("RollupComputerStatusMaxBatchSize")?,
    })
}

/// RollupComputersResult.
pub fn changed_computers(result: &Element) -> Result<Vec<(String, Change)>, DecodeError> {
    let path = "RollupComputersResult";
    result
        .children
        .iter()
        .map(|c| {
            let id = c.attr("ComputerId").ok_or_else(|| DecodeError::new(path, "ComputerId is required"))?;
            let change = match c.attr("Change") {
                Some("NewParent") => Change::NewParent,
                Some("Deleted") => Change::Deleted,
                other => return Err(DecodeError::new(path, format!("Change {other:?} is not NewParent or Deleted"))),
            };
            Ok((id.to_owned(), change))
        })
        .collect()
}

/// GetOutOfSyncComputersResult.
pub fn out_of_sync_computers(result: &Element) -> Vec<String> {
    result.children.iter().map(|s| s.value().to_owned()).collect()
}

/// RollupComputerStatusResult.
pub fn computer_status_accepted(result: &Element) -> Result<bool, DecodeError> {
    match result.value().trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(DecodeError::new("RollupComputerStatusResult", format!("{other:?} is not a boolean"))),
    }
}
