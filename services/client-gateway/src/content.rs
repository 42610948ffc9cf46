//! `/Content/<XX>/<SHA1HEX>.<ext>`: update files from the content store, with GET, HEAD
//! and single byte ranges (how Delivery Optimization downloads: 1 MiB pieces in shuffled
//! order), a stable ETag and Last-Modified. Never compressed. A file the store lacks is a
//! 404 and a download request for sync-worker.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use wsus_content::request::{Range, parse_path, parse_range};

use crate::Gateway;

fn http_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub async fn serve(gw: &Gateway, method: &Method, path: &str, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")], "").into_response();
    }
    let Some((sha1, ext)) = parse_path(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let name = format!("f.{ext}");
    let stat = match tokio::time::timeout(STAT_WITHIN, gw.content.stat(&sha1, &name)).await {
        Ok(Ok(Some(stat))) => stat,
        Ok(Ok(None)) => {
            // Ask sync-worker for it; the client retries later.
            let pool = gw.pool.clone();
            let missed_at = chrono::Utc::now();
            tokio::spawn(async move {
                let queued = wsus_store::revisions::request_download(&pool, &sha1, "client_miss", Some(missed_at));
                if let Err(e) = queued.await {
                    tracing::debug!(error = %e, "could not queue a download request");
                }
            });
            return StatusCode::NOT_FOUND.into_response();
        }
        // The store cannot say (a bucket that refuses or does not answer): no download is
        // asked for.
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "content store");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Err(_) => {
            tracing::warn!(within = ?STAT_WITHIN, "content store did not answer");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let size = stat.size;
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Content-addressed: the digest is a perfect validator.
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", hex::encode(sha1))) {
        response_headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(stat.modified)) {
        response_headers.insert(header::LAST_MODIFIED, v);
    }
    let range = parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), size);
    let (status, start, len) = match range {
        Range::Whole => (StatusCode::OK, 0, size),
        Range::Part(a, b) => {
            let v = format!("bytes {a}-{b}/{size}");
            response_headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).expect("ascii"));
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        Range::Unsatisfiable => {
            let v = format!("bytes */{size}");
            response_headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).expect("ascii"));
            return (StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response();
        }
    };
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if method == Method::HEAD {
        return (status, response_headers).into_response();
    }
    if len == 0 {
        return (status, response_headers).into_response();
    }
    let body = match &gw.content {
        // A directory's file is mapped, not read: the socket is written from the page cache.
        wsus_content::Store::Directory(dir) => {
            let path = dir.path(&sha1, &name);
            let mapped = move || map_range(&std::fs::File::open(path)?, start, len);
            match tokio::task::spawn_blocking(mapped).await {
                Ok(Ok(bytes)) => Body::from_stream(pieces(bytes)),
                // Removed by cleanup since it was looked at.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    return StatusCode::NOT_FOUND.into_response();
                }
                _ => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
        // A bucket's range streams through as it arrives, never whole in memory.
        wsus_content::Store::Bucket(bucket) => match bucket.read(&sha1, &name, start..start + len).await {
            Ok(stream) => Body::from_stream(stream),
            Err(e) if e.is_not_found() => return StatusCode::NOT_FOUND.into_response(),
            Err(e) => {
                tracing::warn!(error = %e, "content store");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        },
    };
    (status, response_headers, body).into_response()
}

/// How long a client waits for the store to say whether it holds a file; then 503, which
/// the client retries.
const STAT_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Largest piece handed to the connection at once.
const PIECE: usize = 1 << 20;
/// Ranges up to this size are read into memory when mapped (one page-in instead of a fault
/// per page while the answer is written); larger ones page in as they are sent.
const POPULATE: u64 = 8 << 20;

/// The bytes `start..start + len` of a stored file, mapped rather than read: the socket
/// is written straight from the page cache, with no read into a buffer first and no trip
/// to the blocking pool per piece.
fn map_range(file: &std::fs::File, start: u64, len: u64) -> std::io::Result<bytes::Bytes> {
    let size = usize::try_from(len).map_err(|_| std::io::Error::other("range too large to map"))?;
    let mut options = memmap2::MmapOptions::new();
    options.offset(start).len(size);
    if len <= POPULATE {
        options.populate();
    }
    // SAFETY: the content store writes a file under a temporary name and renames it into
    // place once its digests match; a stored file is never written to or truncated again,
    // and removing it unlinks it, which leaves a mapping intact. The mapped bytes cannot
    // change while the answer is sent.
    let map = unsafe { options.map(file)? };
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(bytes::Bytes::from_owner(map))
}

/// The mapping in pieces (each a view of it, not a copy).
fn pieces(bytes: bytes::Bytes) -> impl tokio_stream::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    let count = bytes.len().div_ceil(PIECE);
    tokio_stream::iter((0..count).map(move |i| Ok(bytes.slice(i * PIECE..((i + 1) * PIECE).min(bytes.len())))))
}
