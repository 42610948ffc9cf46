//! This server as a downstream server (MS-WSUSSS 3.2.4): authorize, GetConfigData, the
//! categories pass, the updates pass with the administrator's filters, the documents in
//! bounded parallel batches, then the files. Anchors are committed only after the data
//! of their round is durable, so a sync killed at any point resumes without loss.

use std::collections::HashSet;

use base64::Engine as _;

use tracing::Instrument as _;
use uuid::Uuid;
use wsus_soap::wsusss::{self, IdAndDelta, RevisionFilter, dss};
use wsus_store::dss::UpstreamConfig;
use wsus_store::run::{RunResult, Trigger};
use wsus_store::{PgPool, revisions, settings, sync_history};

use super::documents::{fetch_documents, retry_quarantined};
use super::downloads::{content, download_queue};
use super::session::Session;
use super::{Me, SyncError, Transport, Upstream, is_microsoft_update};

/// What one sync did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SyncOutcome {
    pub sync_id: i64,
    pub revisions_new: u64,
    pub revisions_updated: u64,
    pub deployments_changed: u64,
    pub files_queued: u64,
    pub files_downloaded: u64,
    pub files_failed: u64,
    pub bytes_received: u64,
    /// Documents the upstream sent that could not be read (set aside; asked for again).
    pub revisions_quarantined: u64,
}

/// Everything a sync needs.
#[derive(Clone)]
pub struct SyncContext {
    pub pool: PgPool,
    pub upstream_url: Option<String>,
    /// Where downloaded files go.
    pub content: wsus_content::Store,
    pub me: Me,
    /// Replica mode: groups, approvals, declines and EULAs come from the upstream.
    pub replica: bool,
    pub transport: Transport,
    /// In a cluster, the Lease a replica must hold to sync.
    pub lease: Option<std::sync::Arc<crate::lease::LeaseLock>>,
}

/// A sync that holds its upstream's lock and has its history row.
pub struct Started {
    lock: sqlx::pool::PoolConnection<sqlx::Postgres>,
    url: String,
    pub sync_id: i64,
    /// Keeps the Lease renewed while the sync runs.
    renewal: Option<tokio::task::JoinHandle<()>>,
}

/// Takes the Lease when running in a cluster; Busy when another replica holds it.
async fn take_lease(ctx: &SyncContext, url: &str) -> Result<Option<tokio::task::JoinHandle<()>>, SyncError> {
    let Some(lease) = &ctx.lease else { return Ok(None) };
    match lease.try_acquire().await {
        Ok(true) => Ok(Some(lease.keep_renewed())),
        Ok(false) => Err(SyncError::Busy(format!("{url} (another sync-worker holds the Lease)"))),
        Err(e) => Err(SyncError::Other(format!("the sync Lease: {e}"))),
    }
}

/// Gives the Lease back (its renewal stops first).
async fn give_back_lease(ctx: &SyncContext, renewal: Option<tokio::task::JoinHandle<()>>) {
    if let Some(r) = renewal {
        r.abort();
    }
    if let Some(lease) = &ctx.lease
        && let Err(e) = lease.release().await
    {
        tracing::warn!(error = %e, "cannot give the sync Lease back; it expires by itself");
    }
}

/// Takes the per-upstream lock and opens the history row; Busy when another replica or
/// run holds the lock.
pub async fn begin(ctx: &SyncContext, trigger: Trigger) -> Result<Started, SyncError> {
    let url = ctx.upstream_url.clone().ok_or(SyncError::NoUpstream)?;
    let Some(lock) = wsus_store::dss::try_lock(&ctx.pool, &url).await? else {
        return Err(SyncError::Busy(url));
    };
    let renewal = match take_lease(ctx, &url).await {
        Ok(r) => r,
        Err(e) => {
            wsus_store::dss::unlock(lock, &url).await?;
            return Err(e);
        }
    };
    // A run that died without finishing its history row is over: the lock proves it.
    sync_history::fail_abandoned(&ctx.pool, chrono::Duration::zero()).await?;
    let record = sync_history::start(&ctx.pool, &url, trigger).await?;
    Ok(Started { lock, url, sync_id: record.sync_id, renewal })
}

impl Started {
    /// Runs the sync to its end, records the outcome, releases the lock.
    pub async fn run(self, ctx: &SyncContext) -> Result<SyncOutcome, SyncError> {
        let mut outcome = SyncOutcome { sync_id: self.sync_id, ..Default::default() };
        // A sync is a trace of its own, whoever started it.
        let span = tracing::info_span!(parent: None, "sync", sync_id = self.sync_id, upstream = %self.url);
        let result = run(ctx, &self.url, &mut outcome).instrument(span).await;
        if let Err(e) = &result {
            tracing::warn!(upstream = %self.url, error = %e, "sync failed");
        }
        let error = result.as_ref().err().map(|e| e.to_string());
        let counts = sync_history::Counts {
            revisions_new: outcome.revisions_new as i32,
            revisions_updated: outcome.revisions_updated as i32,
            deployments_changed: outcome.deployments_changed as i32,
            files_queued: outcome.files_queued as i32,
            bytes_received: outcome.bytes_received as i64,
            revisions_quarantined: outcome.revisions_quarantined as i32,
        };
        let verdict = if error.is_none() { RunResult::Succeeded } else { RunResult::Failed };
        let recorded = async {
            sync_history::record_counts(&ctx.pool, self.sync_id, counts).await?;
            sync_history::finish(&ctx.pool, self.sync_id, verdict, error.as_deref()).await
        }
        .await;
        // The lease and the lock go back whether or not the record could be written.
        give_back_lease(ctx, self.renewal).await;
        wsus_store::dss::unlock(self.lock, &self.url).await?;
        recorded?;
        // Reporting follows each successful sync (Microsoft Update takes none).
        if result.is_ok() && !is_microsoft_update(&self.url) {
            match crate::dss::rollup::rollup_once(ctx).await {
                Ok(r) => tracing::info!(computers = r.computers, statuses = r.statuses, "rollup after sync done"),
                Err(SyncError::Busy(_)) => {}
                Err(e) => tracing::warn!(error = %e, "rollup after sync failed; the next one sends it"),
            }
        }
        result.map(|()| outcome)
    }
}

/// One complete sync (metadata, then content) under the per-upstream lock, recorded in
/// the sync history.
pub async fn sync_once(ctx: &SyncContext, trigger: Trigger) -> Result<SyncOutcome, SyncError> {
    begin(ctx, trigger).await?.run(ctx).await
}

/// Works through the download queue between syncs (files clients missed, files a
/// downstream asked for), under the same lock as a sync; nothing to do returns at once.
pub async fn drain_downloads(ctx: &SyncContext) -> Result<SyncOutcome, SyncError> {
    let url = ctx.upstream_url.clone().ok_or(SyncError::NoUpstream)?;
    let mut outcome = SyncOutcome::default();
    if wsus_store::dss::due_downloads(&ctx.pool, 1).await?.is_empty() {
        return Ok(outcome);
    }
    let Some(lock) = wsus_store::dss::try_lock(&ctx.pool, &url).await? else {
        return Err(SyncError::Busy(url));
    };
    let renewal = match take_lease(ctx, &url).await {
        Ok(r) => r,
        Err(e) => {
            wsus_store::dss::unlock(lock, &url).await?;
            return Err(e);
        }
    };
    let result = async {
        let upstream = Upstream::new(&url, &ctx.transport)?;
        let state = wsus_store::dss::load(&ctx.pool, &url).await?;
        let mut session = Session::open(&ctx.pool, upstream, &url, ctx.me.clone(), &state).await?;
        download_queue(ctx, &mut session, state.catalog_only_sync.unwrap_or(false), &mut outcome).await
    }
    .await;
    give_back_lease(ctx, renewal).await;
    wsus_store::dss::unlock(lock, &url).await?;
    result.map(|()| outcome)
}

/// One sync; an upstream that answers ServerChanged is another server than the anchors
/// came from: they are reset and the sync starts over once (MS-WSUSSS 2.2.9.3: "The DSS
/// MUST reset the ConfigAnchor, SyncAnchor, and DeploymentAnchor ... and continue the
/// protocol").
async fn run(ctx: &SyncContext, url: &str, outcome: &mut SyncOutcome) -> Result<(), SyncError> {
    match run_from_anchors(ctx, url, outcome).await {
        Err(SyncError::Fault { code, operation, .. }) if code == "ServerChanged" => {
            tracing::warn!(upstream = url, operation, "the upstream server changed; starting over from no anchor");
            wsus_store::dss::reset_anchors(&ctx.pool, url).await?;
            run_from_anchors(ctx, url, outcome).await
        }
        other => other,
    }
}

async fn run_from_anchors(ctx: &SyncContext, url: &str, outcome: &mut SyncOutcome) -> Result<(), SyncError> {
    let pool = &ctx.pool;
    let id = outcome.sync_id;
    let upstream = Upstream::new(url, &ctx.transport)?;
    sync_history::progress(pool, id, "authorizing", 0, 0).await?;
    let state = wsus_store::dss::load(pool, url).await?;
    let mut session =
        Session::open(pool, upstream, url, ctx.me.clone(), &state).instrument(phase("authorizing")).await?;

    sync_history::progress(pool, id, "configuration", 0, 0).await?;
    let config = configuration(&mut session, pool, url, &state).instrument(phase("configuration")).await?;
    let per_request = (config.max_updates_per_request as usize).clamp(1, wsusss::MAX_UPDATES_PER_REQUEST);

    // Set aside by earlier syncs: asked for again after the passes, unless a pass just did.
    let set_aside = wsus_store::dss::quarantined(pool, url).await?;
    // Categories pass: categories and detectoids changed since the last committed anchor.
    let sync_anchor = state.sync_anchor.clone();
    let categories_filter = RevisionFilter { anchor: sync_anchor.clone(), get_config: true, ..Default::default() };
    let categories = async {
        let categories = session.revision_ids(&categories_filter).await?;
        fetch_documents(&mut session, pool, id, "categories", &categories.revisions, per_request, outcome).await?;
        Ok::<_, SyncError>(categories)
    }
    .instrument(phase("categories"))
    .await?;

    // Updates pass, with the administrator's products and classifications.
    let (filter, filter_json) = updates_filter(pool, url, &state).await?;
    async {
        let updates = session.revision_ids(&filter).await?;
        fetch_documents(&mut session, pool, id, "updates", &updates.revisions, per_request, outcome).await?;
        let asked: HashSet<_> = categories.revisions.iter().chain(&updates.revisions).copied().collect();
        let again: Vec<_> = set_aside.iter().filter(|k| !asked.contains(k)).copied().collect();
        retry_quarantined(&mut session, pool, &again, outcome).await?;
        decryption_keys(&mut session, pool, config.max_updates_per_decryption_request as usize).await?;
        revisions::refresh_derived(pool).await?;
        Ok::<_, SyncError>(())
    }
    .instrument(phase("updates"))
    .await?;
    // Both passes are durable: from now on, only what changed after this anchor.
    if let Some(a) = &categories.anchor {
        wsus_store::dss::save_sync_anchor(pool, url, a, &filter_json).await?;
        if ctx.replica {
            sync_history::progress(pool, id, "deployments", 0, 0).await?;
            replicate(&mut session, pool, url, state.deployment_anchor.as_deref(), a, outcome)
                .instrument(phase("deployments"))
                .await?;
        }
    }
    if !ctx.replica {
        // New revisions meet the automatic approval rules; expired ones are declined.
        let applied = wsus_store::rules::apply(pool, None, false).instrument(phase("rules")).await?;
        outcome.deployments_changed += applied.approved + applied.revisions_followed;
    }

    content(ctx, &mut session, config.catalog_only_sync, outcome).instrument(phase("content")).await
}

/// GetConfigData, saved as the upstream's configuration.
async fn configuration(
    session: &mut Session,
    pool: &PgPool,
    url: &str,
    state: &wsus_store::dss::UpstreamState,
) -> Result<wsusss::ConfigData, SyncError> {
    let anchor = state.config_anchor.clone();
    let (_, response) = session.call("GetConfigData", |c| dss::get_config_data(c, anchor.as_deref())).await?;
    let config = dss::result(&response, "GetConfigData")
        .and_then(dss::config_data)
        .map_err(|e| SyncError::protocol("GetConfigData", e))?;
    let per_request = (config.max_updates_per_request as usize).clamp(1, wsusss::MAX_UPDATES_PER_REQUEST);
    wsus_store::dss::save_config(
        pool,
        url,
        &UpstreamConfig {
            anchor: config.new_config_anchor.clone(),
            catalog_only_sync: config.catalog_only_sync,
            lazy_sync: config.lazy_sync,
            server_hosts_psf_files: config.server_hosts_psf_files,
            max_updates_per_request: per_request as i32,
            max_updates_per_decryption_request: config.max_updates_per_decryption_request as i32,
            protocol_version: response
                .children
                .first()
                .and_then(|r| r.child("ProtocolVersion"))
                .map(|v| v.value().to_owned())
                .unwrap_or_default(),
            languages: config.languages.iter().map(|l| (l.id, l.short.clone(), l.long.clone(), l.enabled)).collect(),
        },
    )
    .await?;
    Ok(config)
}

/// The updates pass's filter: the administrator's products and classifications, from
/// the sync anchor while they are unchanged (else from nothing); with the filter as
/// saved beside the anchor.
async fn updates_filter(
    pool: &PgPool,
    url: &str,
    state: &wsus_store::dss::UpstreamState,
) -> Result<(RevisionFilter, serde_json::Value), SyncError> {
    let products = setting_ids(pool, settings::SYNC_PRODUCTS).await?;
    let classifications = setting_ids(pool, settings::SYNC_CLASSIFICATIONS).await?;
    let filter_json = serde_json::json!({ "products": products, "classifications": classifications });
    let same_filter = state.sync_filter.as_ref() == Some(&filter_json);
    let mut filter = RevisionFilter { anchor: state.sync_anchor.clone().filter(|_| same_filter), ..Default::default() };
    // Microsoft Update lists nothing without a classification: "everything" is spelled out.
    if !(products.is_empty() && classifications.is_empty()) || is_microsoft_update(url) {
        // Never one list alone (a real WSUS answers that with nothing): an unset kind is
        // every category of that kind the categories pass brought.
        let products =
            if products.is_empty() { wsus_store::dss::categories_of_kind(pool, false).await? } else { products };
        let classifications = if classifications.is_empty() {
            wsus_store::dss::categories_of_kind(pool, true).await?
        } else {
            classifications
        };
        let delta = filter.anchor.is_some();
        filter.categories = products.into_iter().map(|id| IdAndDelta { id, delta }).collect();
        filter.classifications = classifications.into_iter().map(|id| IdAndDelta { id, delta }).collect();
    }
    Ok((filter, filter_json))
}

/// A span for one phase of a sync (a child of the sync's span).
fn phase(name: &'static str) -> tracing::Span {
    tracing::info_span!("sync_phase", "otel.name" = name)
}

/// GetUpdateDecryptionData for the revisions whose encrypted files lack their keys.
async fn decryption_keys(session: &mut Session, pool: &PgPool, per_request: usize) -> Result<(), SyncError> {
    let wanted = wsus_store::dss::needing_decryption(pool).await?;
    for batch in wanted.chunks(per_request.clamp(1, wsusss::MAX_UPDATES_PER_REQUEST)) {
        let (_, response) =
            session.call("GetUpdateDecryptionData", |c| dss::get_update_decryption_data(c, batch)).await?;
        let data = dss::result(&response, "GetUpdateDecryptionData")
            .and_then(wsusss::decode_update_decryption_data)
            .map_err(|e| SyncError::protocol("GetUpdateDecryptionData", e))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let keys: Vec<(Vec<u8>, Vec<u8>)> = data
            .iter()
            .flat_map(|u| u.files.iter())
            .filter_map(|(digest, key)| Some((b64.decode(digest).ok()?, b64.decode(key.as_deref()?).ok()?)))
            .collect();
        wsus_store::dss::set_decryption_keys(pool, &keys).await?;
    }
    Ok(())
}

/// GetDeployments, applied in one transaction; then its anchor is committed.
async fn replicate(
    session: &mut Session,
    pool: &PgPool,
    url: &str,
    deployment_anchor: Option<&str>,
    sync_anchor: &str,
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError> {
    use wsus_store::approvals::{Action, AdminState, Deployment, Group};
    let (_, response) =
        session.call("GetDeployments", |c| dss::get_deployments(c, deployment_anchor, sync_anchor)).await?;
    let answer = dss::result(&response, "GetDeployments")
        .and_then(wsusss::Deployments::decode)
        .map_err(|e| SyncError::protocol("GetDeployments", e))?;
    let state = AdminState {
        groups: answer
            .groups
            .iter()
            .map(|g| Group { group_id: g.id, name: g.name.clone(), parent_group_id: g.parent, is_builtin: g.builtin })
            .collect(),
        deployments: answer
            .deployments
            .iter()
            .map(|d| Deployment {
                deployment_id: d.deployment_id,
                update_id: d.update_id,
                revision_number: Some(d.revision_number),
                group_id: d.group_id,
                action: match (d.action, d.is_assigned) {
                    (0, true) => Action::Install,
                    (0, false) => Action::OptionalInstall,
                    (1, _) => Action::Uninstall,
                    (2, _) => Action::PreDeploymentCheck,
                    _ => Action::Block,
                },
                deadline: d.deadline,
                is_assigned: d.is_assigned,
                download_priority: i16::from(d.download_priority),
                admin_name: d.admin_name.clone(),
                last_change_time: d.go_live_time,
            })
            .collect(),
        declined: answer.hidden.clone(),
        accepted_eulas: answer.accepted_eulas.clone(),
    };
    outcome.deployments_changed += wsus_store::approvals::replicate(pool, &state, &answer.dead).await?;
    let anchor = if answer.anchor.is_empty() { sync_anchor } else { &answer.anchor };
    wsus_store::dss::save_deployment_anchor(pool, url, anchor).await?;
    Ok(())
}

async fn setting_ids(pool: &PgPool, key: &str) -> Result<Vec<Uuid>, SyncError> {
    Ok(settings::get::<Vec<Uuid>>(pool, key).await?.map(|s| s.value).unwrap_or_default())
}
