//! Reporting rollup from downstream servers (MS-WSUSSS 3.1.4.13-17), this server acting as
//! their upstream: decoded here, handed to reporting over gRPC, answered as WSUS does.
//! The reporting cookie carries nothing (3.1.4.13.2.1): a caller is trusted as far as
//! the server ids it names were admitted by DssAuth, and the servers that call directly
//! (their parent is this server) are still on `WSUS_DSS_ALLOWLIST`.

use wsus_rpc::reporting::{
    ComputerRollupNumber, GetOutOfSyncComputersRequest, GetRollupConfigurationRequest, RollupComputerStatusRequest,
    RollupComputersRequest, RollupDownstreamServersRequest,
};
use wsus_soap::rollup::{self, Change, RollupConfiguration};
use wsus_soap::rollup_status::ComputerStatusRequest;
use wsus_soap::{Element, ErrorCode};

use crate::Gateway;
use crate::soap::{OpError, OpResult, invalid, rpc_fault};

/// The batch sizes this server announces (RollupConfiguration::announced).
fn limits() -> RollupConfiguration {
    RollupConfiguration::announced(uuid::Uuid::nil(), uuid::Uuid::nil())
}

fn cookie_present(op: &Element) -> Result<(), OpError> {
    op.child("cookie").map(|_| ()).ok_or_else(|| (ErrorCode::InvalidCookie, "cookie".to_owned()))
}

/// Refuses a caller taken off `WSUS_DSS_ALLOWLIST` since it was admitted.
async fn caller_allowed(gw: &Gateway, server_id: uuid::Uuid) -> Result<(), OpError> {
    crate::uss::sync::still_allowed(gw, &server_id.to_string()).await
}

async fn call<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, OpError> {
    call.await.map(tonic::Response::into_inner).map_err(|status| rpc_fault("reporting", &status))
}

fn guid(raw: &str) -> Result<uuid::Uuid, OpError> {
    uuid::Uuid::parse_str(raw).map_err(|_| (ErrorCode::InternalServerError, String::new()))
}

pub async fn get_rollup_configuration(gw: &Gateway, op: &Element) -> OpResult {
    cookie_present(op)?;
    let mut reporting = gw.reporting_rollup.clone();
    let c = call(reporting.get_rollup_configuration(GetRollupConfigurationRequest {})).await?;
    let config = RollupConfiguration {
        server_id: guid(&c.server_id)?,
        rollup_reset_guid: guid(&c.rollup_reset_guid)?,
        ..limits()
    };
    Ok(rollup::encode_rollup_configuration(&config))
}

pub async fn rollup_downstream_servers(gw: &Gateway, op: &Element) -> OpResult {
    cookie_present(op)?;
    let client_time = rollup::decode_client_time(op).map_err(invalid)?;
    let servers = rollup::decode_downstream_servers(op, limits().downstream_servers_batch as usize).map_err(invalid)?;
    if let Some(own) = gw.memory.server.load_full().map(|s| s.identity.server_id) {
        // A direct child names its parent as nil (its upstream) or as this server.
        for direct in servers.iter().filter(|s| s.parent_server_id.is_nil() || s.parent_server_id == own) {
            caller_allowed(gw, direct.server_id).await?;
        }
    }
    let request = RollupDownstreamServersRequest {
        client_time: Some(wsus_rpc::timestamp(client_time)),
        servers: servers.iter().map(wsus_rpc::uss_rollup::server_to_pb).collect(),
    };
    let mut reporting = gw.reporting_rollup.clone();
    call(reporting.rollup_downstream_servers(request)).await?;
    Ok(rollup::encode_downstream_servers_response())
}

pub async fn rollup_computers(gw: &Gateway, op: &Element) -> OpResult {
    cookie_present(op)?;
    let client_time = rollup::decode_client_time(op).map_err(invalid)?;
    let computers = rollup::decode_computers(op, limits().computers_batch as usize).map_err(invalid)?;
    let request = RollupComputersRequest {
        client_time: Some(wsus_rpc::timestamp(client_time)),
        computers: computers.iter().map(wsus_rpc::uss_rollup::computer_to_pb).collect(),
    };
    let mut reporting = gw.reporting_rollup.clone();
    let answer = call(reporting.rollup_computers(request)).await?;
    let changed: Vec<(String, Change)> = answer
        .changed
        .into_iter()
        .map(|c| (c.computer_id, if c.deleted { Change::Deleted } else { Change::NewParent }))
        .collect();
    Ok(rollup::encode_computers_response(&changed))
}

pub async fn get_out_of_sync_computers(gw: &Gateway, op: &Element) -> OpResult {
    cookie_present(op)?;
    let parent = rollup::decode_parent_server_id(op).map_err(invalid)?;
    caller_allowed(gw, parent).await?;
    let numbers = rollup::decode_last_rollup_numbers(op, limits().out_of_sync_batch as usize).map_err(invalid)?;
    let request = GetOutOfSyncComputersRequest {
        parent_server_id: parent.to_string(),
        numbers: numbers
            .into_iter()
            .map(|(computer_id, rollup_number)| ComputerRollupNumber { computer_id, rollup_number })
            .collect(),
    };
    let mut reporting = gw.reporting_rollup.clone();
    let answer = call(reporting.get_out_of_sync_computers(request)).await?;
    Ok(rollup::encode_out_of_sync_computers(&answer.computer_ids))
}

/// A busy reporting service answers false, as the protocol defines: the downstream
/// server tries again later.
pub async fn rollup_computer_status(gw: &Gateway, request: ComputerStatusRequest) -> OpResult {
    if !request.cookie {
        return Err((ErrorCode::InvalidCookie, "cookie".to_owned()));
    }
    caller_allowed(gw, request.parent_server_id).await?;
    let request = RollupComputerStatusRequest {
        client_time: Some(wsus_rpc::timestamp(request.client_time)),
        parent_server_id: request.parent_server_id.to_string(),
        computers: request.computers.iter().map(wsus_rpc::uss_rollup::status_to_pb).collect(),
    };
    let mut reporting = gw.reporting_rollup.clone();
    match call(reporting.rollup_computer_status(request)).await {
        Ok(answer) => Ok(rollup::encode_computer_status_response(answer.accepted)),
        Err((ErrorCode::ServerBusy, message)) => {
            tracing::info!(message, "rollup of computer status deferred: reporting is busy");
            Ok(rollup::encode_computer_status_response(false))
        }
        Err(e) => Err(e),
    }
}
