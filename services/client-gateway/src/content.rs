//! `/Content/<XX>/<SHA1HEX>.<ext>`: update files from the content store, with GET, HEAD
//! and single byte ranges (how Delivery Optimization downloads: 1 MiB pieces in shuffled
//! order), a stable ETag and Last-Modified. Never compressed. A file the store lacks is a
//! 404 and a download request for sync-worker.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::Gateway;

/// `(sha1, extension)` from a content path, or None when it is not one.
pub fn parse_path(path: &str) -> Option<([u8; 20], String)> {
    let rest = path.get(..9).filter(|p| p.eq_ignore_ascii_case("/content/")).map(|_| &path[9..])?;
    let (folder, name) = rest.split_once('/')?;
    let (hex_name, ext) = name.split_once('.')?;
    let valid_ext = !ext.is_empty() && ext.len() <= 16 && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    if folder.len() != 2 || hex_name.len() != 40 || !valid_ext {
        return None;
    }
    let sha1: [u8; 20] = hex::decode(hex_name).ok()?.try_into().ok()?;
    // The folder is the last two hex digits of the digest.
    if !folder.eq_ignore_ascii_case(&hex_name[38..]) {
        return None;
    }
    Some((sha1, ext.to_owned()))
}

/// A requested byte range, resolved against the file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Whole,
    /// Inclusive bounds.
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads a `Range` header: one `bytes=` range (first-last, first-, or -suffix). Several
/// ranges, or anything unreadable, are ignored (the whole file), as HTTP allows.
pub fn parse_range(header: Option<&str>, size: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Range::Whole };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Range::Whole };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (false, _) => {
            let Some(a) = parse(first) else { return Range::Whole };
            let b = if last.is_empty() { Some(u64::MAX) } else { parse(last) };
            let Some(b) = b else { return Range::Whole };
            if a > b {
                Range::Whole
            } else if a >= size {
                Range::Unsatisfiable
            } else {
                Range::Part(a, b.min(size - 1))
            }
        }
        (true, false) => match parse(last) {
            Some(n) if n > 0 && size > 0 => Range::Part(size - n.min(size), size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Whole,
        },
        (true, true) => Range::Whole,
    }
}

fn http_date(t: std::time::SystemTime) -> String {
    let t: chrono::DateTime<chrono::Utc> = t.into();
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub async fn serve(gw: &Gateway, method: &Method, path: &str, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")], "").into_response();
    }
    let Some((sha1, ext)) = parse_path(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let store = wsus_content::ContentStore::new(&gw.config.content_dir);
    let file_path = store.path(&sha1, &format!("f.{ext}"));
    let file = match tokio::fs::File::open(&file_path).await {
        Ok(f) => f,
        Err(_) => {
            // Ask sync-worker for it; the client retries later.
            let pool = gw.pool.clone();
            tokio::spawn(async move {
                if let Err(e) = wsus_store::revisions::request_download(&pool, &sha1, "client_miss").await {
                    tracing::debug!(error = %e, "could not queue a download request");
                }
            });
            return StatusCode::NOT_FOUND.into_response();
        }
    };
    let meta = match file.metadata().await {
        Ok(m) => m,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let size = meta.len();
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Content-addressed: the digest is a perfect validator.
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", hex::encode(sha1))) {
        response_headers.insert(header::ETAG, v);
    }
    if let Some(v) = meta.modified().ok().and_then(|m| HeaderValue::from_str(&http_date(m)).ok()) {
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
    let file = file.into_std().await;
    match tokio::task::spawn_blocking(move || map_range(&file, start, len)).await {
        Ok(Ok(bytes)) => (status, response_headers, Body::from_stream(pieces(bytes))).into_response(),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_paths() {
        let (sha1, ext) = parse_path("/Content/49/A379D5526FB3A7A0423DA1CD7FC3182A8D448449.exe").unwrap();
        assert_eq!(
            (hex::encode_upper(sha1).as_str(), ext.as_str()),
            ("A379D5526FB3A7A0423DA1CD7FC3182A8D448449", "exe")
        );
        assert!(parse_path("/content/49/a379d5526fb3a7a0423da1cd7fc3182a8d448449.exe").is_some(), "any case");
        for bad in [
            "/Content/48/A379D5526FB3A7A0423DA1CD7FC3182A8D448449.exe",
            "/Content/49/../../etc/passwd",
            "/Content/49/A379D5526FB3A7A0423DA1CD7FC3182A8D448449",
            "/Content/49/A379D5526FB3A7A0423DA1CD7FC3182A8D448449.e/x",
            "/Content/49/A379D5526FB3A7A0423DA1CD7FC3182A8D44844.exe",
            "/Content/49/Z379D5526FB3A7A0423DA1CD7FC3182A8D448449.exe",
            "/Contents/49/A379D5526FB3A7A0423DA1CD7FC3182A8D448449.exe",
        ] {
            assert!(parse_path(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Range::Whole);
        assert_eq!(parse_range(Some("bytes=0-918943"), 918_944), Range::Part(0, 918_943));
        assert_eq!(parse_range(Some("bytes=204472320-204745167"), 204_745_168), Range::Part(204_472_320, 204_745_167));
        assert_eq!(parse_range(Some("bytes=10-"), 100), Range::Part(10, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Range::Part(90, 99));
        assert_eq!(parse_range(Some("bytes=0-1000"), 100), Range::Part(0, 99));
        assert_eq!(parse_range(Some("bytes=100-200"), 100), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 100), Range::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,5-9"), 100), Range::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), Range::Whole);
        assert_eq!(parse_range(Some("bytes=18446744073709551615-"), 100), Range::Unsatisfiable);
    }
}
