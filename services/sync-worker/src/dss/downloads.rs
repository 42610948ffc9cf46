//! Content: the files the content mode wants, downloaded from the upstream (or Microsoft
//! Update for a catalog-only upstream), resumed with Range, visible only once verified.

use std::collections::HashSet;

use base64::Engine as _;
use tokio::task::JoinSet;
use wsus_soap::wsusss::dss;
use wsus_store::settings::{self, ContentMode};
use wsus_store::sync_history;

use super::SyncError;
use super::session::Session;
use super::sync::{SyncContext, SyncOutcome};

/// Downloads in flight at once.
const PARALLEL_DOWNLOADS: usize = 4;

/// Queues the files the content mode wants, then works through the queue.
pub(super) async fn content(
    ctx: &SyncContext,
    session: &mut Session,
    catalog_only_upstream: bool,
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError> {
    outcome.files_queued = match settings::content_mode(&ctx.pool).await? {
        ContentMode::CatalogOnly => return Ok(()),
        ContentMode::Immediate => wsus_store::dss::queue_wanted_files(&ctx.pool, true).await?,
        ContentMode::Lazy => wsus_store::dss::queue_wanted_files(&ctx.pool, false).await?,
    };
    download_queue(ctx, session, catalog_only_upstream, outcome).await
}

/// Downloads every due file of the queue, verified before it becomes visible. A file the
/// upstream's content service lacks is asked for with DownloadFiles and retried later.
pub(super) async fn download_queue(
    ctx: &SyncContext,
    session: &mut Session,
    catalog_only_upstream: bool,
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let upstream = session.upstream.clone();
    let store = ctx.content.clone();
    let total = wsus_store::dss::queued_downloads(&ctx.pool).await?;
    let mut done = 0i64;
    sync_history::progress(&ctx.pool, outcome.sync_id, "content", 0, total).await?;
    let mut tried: HashSet<Vec<u8>> = HashSet::new();
    loop {
        let due: Vec<_> = wsus_store::dss::due_downloads(&ctx.pool, 200)
            .await?
            .into_iter()
            .filter(|d| !tried.contains(&d.sha1))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let mut running: JoinSet<(Vec<u8>, Result<u64, DownloadError>)> = JoinSet::new();
        let mut queue = due.into_iter();
        loop {
            while running.len() < PARALLEL_DOWNLOADS {
                let Some(d) = queue.next() else { break };
                tried.insert(d.sha1.clone());
                let (http, store) = (upstream.http.clone(), store.clone());
                let source = match (catalog_only_upstream, d.mu_url.clone()) {
                    (true, Some(mu)) => mu,
                    _ => match <[u8; 20]>::try_from(d.sha1.as_slice()) {
                        Ok(sha1) => {
                            format!("{}/Content/{}", upstream.base, wsus_content::relative_path(&sha1, &d.file_name))
                        }
                        Err(_) => continue,
                    },
                };
                running.spawn(async move {
                    let result = download(&http, &store, &source, &d).await;
                    (d.sha1, result)
                });
            }
            let Some(joined) = running.join_next().await else { break };
            let (sha1, result) = joined.map_err(|e| SyncError::Other(e.to_string()))?;
            match result {
                Ok(bytes) => {
                    wsus_store::dss::download_done(&ctx.pool, &sha1).await?;
                    outcome.files_downloaded += 1;
                    outcome.bytes_received += bytes;
                }
                Err(DownloadError { message, mismatch, not_found }) => {
                    tracing::warn!(sha1 = %hex::encode_upper(&sha1), error = message, "download failed");
                    if not_found && !catalog_only_upstream {
                        let digest = base64::engine::general_purpose::STANDARD.encode(&sha1);
                        match session
                            .call("DownloadFiles", |c| dss::download_files(c, std::slice::from_ref(&digest)))
                            .await
                        {
                            Ok(_) => tracing::info!(digest, "asked the upstream to fetch the file"),
                            Err(e) => tracing::warn!(digest, error = %e, "DownloadFiles failed"),
                        }
                    }
                    wsus_store::dss::download_failed(&ctx.pool, &sha1, &message, mismatch).await?;
                    outcome.files_failed += 1;
                }
            }
            done += 1;
            sync_history::progress(&ctx.pool, outcome.sync_id, "content", done, total).await?;
        }
    }
}

/// Why a download failed; `mismatch` when the bytes failed verification.
struct DownloadError {
    message: String,
    mismatch: bool,
    /// The source answered 404.
    not_found: bool,
}

fn transfer_error(message: String) -> DownloadError {
    DownloadError { message, mismatch: false, not_found: false }
}

/// One file into the store, resuming a partial download with a Range request; the bytes
/// become visible only after they match every digest.
async fn download(
    http: &reqwest::Client,
    store: &wsus_content::Store,
    url: &str,
    d: &wsus_store::dss::Download,
) -> Result<u64, DownloadError> {
    use tokio::io::AsyncWriteExt as _;
    let sha1: [u8; 20] = d.sha1.as_slice().try_into().map_err(|_| transfer_error("bad SHA-1".to_owned()))?;
    let partial = store.partial_path(&sha1);
    let io = |e: std::io::Error| transfer_error(format!("{}: {e}", partial.display()));
    tokio::fs::create_dir_all(partial.parent().expect("a folder")).await.map_err(io)?;
    let have = tokio::fs::metadata(&partial).await.map(|m| m.len()).unwrap_or(0);
    let mut request = http.get(url);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = request.send().await.map_err(|e| transfer_error(format!("{url}: {e}")))?;
    let status = response.status();
    let mut received = 0u64;
    let complete_already =
        status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && u64::try_from(d.size).is_ok_and(|s| s == have);
    if !complete_already {
        let append = match status {
            reqwest::StatusCode::PARTIAL_CONTENT if have > 0 => true,
            s if s.is_success() => false,
            s => {
                if s == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
                    let _ = tokio::fs::remove_file(&partial).await;
                }
                let not_found = s == reqwest::StatusCode::NOT_FOUND;
                return Err(DownloadError { message: format!("{url}: HTTP {s}"), mismatch: false, not_found });
            }
        };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&partial)
            .await
            .map_err(io)?;
        // A dropped connection keeps what arrived: the next attempt asks for the rest.
        while let Some(chunk) = response.chunk().await.map_err(|e| transfer_error(format!("{url}: {e}")))? {
            file.write_all(&chunk).await.map_err(io)?;
            received += chunk.len() as u64;
        }
        // The last write's error (a full volume, say) surfaces on flush; sync_all drops it.
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
    }
    let wanted = wsus_content::Wanted {
        sha1,
        sha256: d.sha256.as_deref().and_then(|s| s.try_into().ok()),
        size: u64::try_from(d.size).ok().filter(|s| *s > 0),
        file_name: d.file_name.clone(),
    };
    store.adopt(wanted, partial).await.map_err(|e| DownloadError {
        not_found: false,
        mismatch: matches!(
            e,
            wsus_content::ContentError::DigestMismatch { .. } | wsus_content::ContentError::SizeMismatch { .. }
        ),
        message: e.to_string(),
    })?;
    Ok(received)
}
