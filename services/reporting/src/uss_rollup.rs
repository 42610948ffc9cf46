//! Rollup from downstream servers, this server as their upstream (USS side of MS-WSUSSS 3.1.4.13-17), handed over by client-gateway
//! acting as their upstream: stored so the API shows downstream servers, their computers
//! and statuses with the server they came through.

use chrono::{Duration, Utc};
use tonic::Status;
use uuid::Uuid;
use wsus_rpc::reporting::{
    ChangedComputer, GetOutOfSyncComputersRequest, RollupComputerStatusRequest, RollupComputersRequest,
    RollupConfiguration, RollupDownstreamServersRequest,
};
use wsus_rpc::uss_rollup::{BadField, computer_from_pb, server_from_pb, status_from_pb};
use wsus_soap::rollup::Change;
use wsus_store::PgPool;
use wsus_store::rollup;

use wsus_service::edge::grpc_status;

/// Largest batch accepted in one call (above every batch size GetRollupConfiguration announces).
const MAX_BATCH: usize = 20_000;

fn bad(e: BadField) -> Status {
    Status::invalid_argument(e.to_string())
}

fn batch<T>(items: &[T], what: &str) -> Result<(), Status> {
    if items.len() > MAX_BATCH {
        return Err(Status::invalid_argument(format!("{what}: more than {MAX_BATCH}")));
    }
    Ok(())
}

/// How far the downstream server's clock is ahead of ours, when by more than a minute
/// (WSUS corrects the times it receives by that much).
fn skew(client_time: Option<&wsus_rpc::Timestamp>) -> Duration {
    let Some(theirs) = client_time.and_then(wsus_rpc::datetime) else { return Duration::zero() };
    let d = theirs - Utc::now();
    if d.num_seconds().abs() > 60 { d } else { Duration::zero() }
}

fn parent(raw: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(raw).map_err(|_| Status::invalid_argument(format!("parent_server_id: {raw:?} is not a GUID")))
}

pub async fn configuration(pool: &PgPool) -> Result<RollupConfiguration, Status> {
    let me = wsus_store::identity::current(pool)
        .await
        .map_err(|e| grpc_status(&e))?
        .ok_or_else(|| Status::unavailable("starting: the server identity is not created yet"))?;
    let reset = rollup::reset_guid(pool).await.map_err(|e| grpc_status(&e))?;
    Ok(RollupConfiguration { rollup_reset_guid: reset.to_string(), server_id: me.server_id.to_string() })
}

pub async fn downstream_servers(pool: &PgPool, r: RollupDownstreamServersRequest) -> Result<(), Status> {
    batch(&r.servers, "servers")?;
    let skew = skew(r.client_time.as_ref());
    let servers = r.servers.into_iter().map(server_from_pb).collect::<Result<Vec<_>, _>>().map_err(bad)?;
    rollup::receive_servers(pool, &servers, skew).await.map_err(|e| grpc_status(&e))
}

pub async fn computers(pool: &PgPool, r: RollupComputersRequest) -> Result<Vec<ChangedComputer>, Status> {
    batch(&r.computers, "computers")?;
    let skew = skew(r.client_time.as_ref());
    let computers = r.computers.into_iter().map(computer_from_pb).collect::<Result<Vec<_>, _>>().map_err(bad)?;
    let changed = rollup::receive_computers(pool, &computers, skew).await.map_err(|e| grpc_status(&e))?;
    Ok(changed
        .into_iter()
        .map(|(computer_id, c)| ChangedComputer { computer_id, deleted: c == Change::Deleted })
        .collect())
}

pub async fn out_of_sync(pool: &PgPool, r: GetOutOfSyncComputersRequest) -> Result<Vec<String>, Status> {
    batch(&r.numbers, "numbers")?;
    let numbers: Vec<(String, i32)> = r.numbers.into_iter().map(|n| (n.computer_id, n.rollup_number)).collect();
    rollup::out_of_sync(pool, parent(&r.parent_server_id)?, &numbers).await.map_err(|e| grpc_status(&e))
}

pub async fn computer_status(pool: &PgPool, r: RollupComputerStatusRequest) -> Result<(), Status> {
    batch(&r.computers, "computers")?;
    let skew = skew(r.client_time.as_ref());
    let statuses = r.computers.into_iter().map(status_from_pb).collect::<Result<Vec<_>, _>>().map_err(bad)?;
    rollup::receive_statuses(pool, parent(&r.parent_server_id)?, &statuses, skew).await.map_err(|e| grpc_status(&e))
}
