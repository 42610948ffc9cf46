//! The documents of the revisions this server lacks: GetUpdateData in bounded parallel
//! batches, each arrival stored in one transaction; unreadable documents set aside and
//! asked for again.

use std::collections::HashSet;

use tokio::task::JoinSet;
use tracing::Instrument as _;
use uuid::Uuid;
use wsus_soap::wsusss::dss;
use wsus_soap::wusp::Cookie;
use wsus_store::revisions::{self, NewRevision};
use wsus_store::{PgPool, sync_history};

use super::SyncError;
use super::session::Session;
use super::sync::SyncOutcome;
use super::upstream::{SERVER_SYNC, Upstream};

/// GetUpdateData requests in flight at once.
const PARALLEL_BATCHES: usize = 4;

/// Fetches and stores the documents of the revisions this catalog lacks.
pub(super) async fn fetch_documents(
    session: &mut Session,
    pool: &PgPool,
    sync_id: i64,
    phase: &str,
    ids: &[(Uuid, i32)],
    per_request: usize,
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let held = wsus_store::dss::held(pool, ids).await?;
    let missing: Vec<(Uuid, i32)> =
        ids.iter().filter(|k| !held.contains(k)).copied().collect::<HashSet<_>>().into_iter().collect();
    let total = missing.len() as i64;
    sync_history::progress(pool, sync_id, phase, 0, total).await?;
    let mut done = 0i64;
    let mut last_progress = std::time::Instant::now();
    let mut batches = missing.chunks(per_request).map(<[_]>::to_vec).collect::<Vec<_>>().into_iter();
    let mut running: JoinSet<Result<Fetched, SyncError>> = JoinSet::new();
    loop {
        while running.len() < PARALLEL_BATCHES {
            let Some(batch) = batches.next() else { break };
            let (upstream, cookie) = (session.upstream.clone(), session.cookie.clone());
            let span = tracing::info_span!("sync_batch", "otel.name" = "GetUpdateData", revisions = batch.len());
            running.spawn(async move { fetch_batch(&upstream, &cookie, &batch).await }.instrument(span));
        }
        let Some(first) = running.join_next().await else { break };
        // Every answer that has arrived is stored in one transaction: fewer, larger
        // commits, and the upstream keeps answering meanwhile.
        let mut arrived = vec![first];
        while let Some(more) = running.try_join_next() {
            arrived.push(more);
        }
        let mut revisions = Vec::new();
        let mut unreadable = Vec::new();
        for joined in arrived {
            match joined.map_err(|e| SyncError::Other(e.to_string()))? {
                Ok(f) => {
                    revisions.extend(f.revisions);
                    unreadable.extend(f.unreadable);
                }
                Err(e) if e.is_cookie_fault() => {
                    // Renew once, then let the remaining batches use the new cookie; the
                    // failed batch is simply not stored, and the anchor not advanced.
                    running.abort_all();
                    session.authorize().await?;
                    return Box::pin(fetch_documents(session, pool, sync_id, phase, ids, per_request, outcome)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let n = (revisions.len() + unreadable.len()) as i64;
        let stored = revisions::import_batch(pool, &revisions)
            .instrument(tracing::info_span!("sync_batch", "otel.name" = "store", revisions = revisions.len()))
            .await?;
        outcome.revisions_new += stored.new;
        outcome.revisions_updated += stored.updated;
        // A document this server cannot read does not hold the rest back: it is set aside,
        // reported, and asked for again by every later sync.
        for (u, r, why) in &unreadable {
            tracing::warn!(update_id = %u, revision = r, error = why, "document not readable; quarantined");
        }
        outcome.revisions_quarantined += unreadable.len() as u64;
        wsus_store::dss::quarantine(pool, &session.url, &unreadable).await?;
        done += n;
        // Progress is for people watching: once a second is enough.
        if last_progress.elapsed() >= std::time::Duration::from_secs(1) || done == total {
            sync_history::progress(pool, sync_id, phase, done, total).await?;
            last_progress = std::time::Instant::now();
        }
    }
    Ok(())
}

/// Asks again, one at a time, for the documents earlier syncs could not read, so a fixed
/// parser or a mended upstream brings them in. Nothing here fails the sync: a revision the
/// upstream no longer sends (left out, or faulted on) is forgotten, one still unreadable
/// stays set aside, and an upstream that does not answer is asked again next time.
pub(super) async fn retry_quarantined(
    session: &mut Session,
    pool: &PgPool,
    ids: &[(Uuid, i32)],
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let url = session.url.clone();
    let held = wsus_store::dss::held(pool, ids).await?;
    for &id in ids.iter().filter(|id| !held.contains(id)) {
        let mut fetched = fetch_batch(&session.upstream, &session.cookie, &[id]).await;
        if fetched.as_ref().err().is_some_and(SyncError::is_cookie_fault) {
            session.authorize().await?;
            fetched = fetch_batch(&session.upstream, &session.cookie, &[id]).await;
        }
        match fetched {
            Ok(f) => {
                revisions::import_batch(pool, &f.revisions).await?;
                outcome.revisions_quarantined += f.unreadable.len() as u64;
                wsus_store::dss::quarantine(pool, &url, &f.unreadable).await?;
            }
            Err(SyncError::Fault { code, .. }) if code == "ServerBusy" => {
                tracing::info!("quarantined documents not asked for again: the upstream is busy");
                break;
            }
            Err(SyncError::Protocol { .. } | SyncError::Fault { .. }) => {
                tracing::info!(update_id = %id.0, revision = id.1, "the upstream no longer sends a quarantined revision; forgotten");
                wsus_store::dss::forget_quarantined(pool, &url, id).await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, "quarantined documents not asked for again: the upstream does not answer");
                break;
            }
        }
    }
    let recovered = wsus_store::dss::release_stored(pool, &url).await?;
    if recovered > 0 {
        tracing::info!(revisions = recovered, "quarantined documents read and stored");
    }
    Ok(())
}

/// What GetUpdateData brought for a batch: the revisions read, and those sent but
/// unreadable (with why).
#[derive(Default)]
struct Fetched {
    revisions: Vec<NewRevision>,
    unreadable: Vec<(Uuid, i32, String)>,
}

/// GetUpdateData for `ids`. An answer that leaves ids out (Windows caps an answer at
/// 2,000,000 bytes: MS-WSUSSS endnote <37>) is completed by asking for the rest, in
/// halves when nothing came; only an id a request for it alone leaves out fails the batch.
async fn fetch_batch(upstream: &Upstream, cookie: &Cookie, ids: &[(Uuid, i32)]) -> Result<Fetched, SyncError> {
    let mut fetched = Fetched::default();
    let mut todo: Vec<Vec<(Uuid, i32)>> = vec![ids.to_vec()];
    while let Some(batch) = todo.pop() {
        let (text, _) = upstream
            .call(SERVER_SYNC, &dss::action("GetUpdateData"), "GetUpdateData", &dss::get_update_data(cookie, &batch))
            .await?;
        let documents = tokio::task::spawn_blocking(move || crate::transfer::update_data_response(&text))
            .await
            .map_err(|e| SyncError::Other(e.to_string()))?
            .map_err(|e| SyncError::protocol("GetUpdateData", format!("{e:#}")))?;
        let mut got: HashSet<(Uuid, i32)> = HashSet::new();
        for d in documents {
            match d.revision {
                Ok(r) => {
                    got.insert((r.identity.update_id, r.identity.revision_number));
                    fetched.revisions.push(r);
                }
                Err(why) => match d.id {
                    Some(id) => {
                        got.insert(id);
                        fetched.unreadable.push((id.0, id.1, why));
                    }
                    None => {
                        return Err(SyncError::protocol("GetUpdateData", format!("a document without an Id: {why}")));
                    }
                },
            }
        }
        let missing: Vec<(Uuid, i32)> = batch.iter().filter(|k| !got.contains(k)).copied().collect();
        match missing.as_slice() {
            [] => {}
            [one] if batch.len() == 1 => {
                return Err(SyncError::protocol("GetUpdateData", format!("{}/{} was not sent", one.0, one.1)));
            }
            _ if missing.len() == batch.len() => {
                let (first, rest) = missing.split_at(missing.len() / 2);
                todo.push(rest.to_vec());
                todo.push(first.to_vec());
            }
            _ => todo.push(missing),
        }
    }
    Ok(fetched)
}
