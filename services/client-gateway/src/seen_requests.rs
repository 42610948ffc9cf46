//! SyncUpdates requests already seen, by their bytes around the cookie, with the scans
//! computed for them. In a scan storm every machine alike sends the same ~100 KB of cached
//! update ids again and again with only its cookie changed: recognising the bytes costs a
//! hash and a comparison, where parsing them into a tree and scanning cost a millisecond.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, Weak};

use wsus_catalog::index::{CatalogIndex, ScanResult};
use wsus_soap::SoapVersion;
use wsus_soap::cookie_span::CookieSpan;
use wsus_soap::wusp::SyncUpdatesRequest;

/// Request bytes held at most (about 300 distinct id lists of a real Windows client).
pub const DEFAULT_BOUND_BYTES: usize = 32 << 20;
/// Scans kept per request: one per catalog, group set and change marker seen lately.
const SCANS_PER_REQUEST: usize = 8;
/// A scan is kept when its result is this small: the common rescan (nothing or a few
/// updates new). A large one (a machine's first scan after GetCookie, told every cached
/// update) comes once per machine and costs less to compute again than to hold.
const MAX_KEPT_SCAN_BYTES: usize = 16 << 10;

/// A request seen before: what it decoded to and the scans answered for it.
pub struct Seen {
    /// What it holds, about: its bytes and its decoded ids.
    bytes: usize,
    before_len: usize,
    /// The request's bytes before and after its cookie, end to end.
    outside: Box<[u8]>,
    pub version: SoapVersion,
    pub request: SyncUpdatesRequest,
    scans: Mutex<VecDeque<(ScanKey, Arc<ScanResult>)>>,
}

/// What a scan's result depends on besides the request's ids.
pub struct ScanKey {
    /// The catalog scanned (held weakly: identity, not contents).
    pub catalog: Weak<CatalogIndex>,
    /// The client's groups, sorted.
    pub groups: Vec<uuid::Uuid>,
    pub since_version: i64,
    pub groups_changed: bool,
    pub two_group_out_of_scope: bool,
    pub page_size: usize,
}

impl PartialEq for ScanKey {
    fn eq(&self, other: &Self) -> bool {
        Weak::ptr_eq(&self.catalog, &other.catalog)
            && self.groups == other.groups
            && self.since_version == other.since_version
            && self.groups_changed == other.groups_changed
            && self.two_group_out_of_scope == other.two_group_out_of_scope
            && self.page_size == other.page_size
    }
}

impl Seen {
    fn matches(&self, span: &CookieSpan<'_>) -> bool {
        self.before_len == span.before.len()
            && self.outside[..self.before_len] == *span.before
            && self.outside[self.before_len..] == *span.after
    }

    /// The scan computed before for `key`, if any.
    pub fn scan(&self, key: &ScanKey) -> Option<Arc<ScanResult>> {
        let scans = self.scans.lock().expect("scans");
        scans.iter().find(|(k, _)| k == key).map(|(_, r)| r.clone())
    }

    pub fn keep_scan(&self, key: ScanKey, result: Arc<ScanResult>) {
        if scan_bytes(&result) > MAX_KEPT_SCAN_BYTES {
            return;
        }
        let mut scans = self.scans.lock().expect("scans");
        // Scans of catalogs no longer served go first.
        scans.retain(|(k, _)| k.catalog.strong_count() > 0);
        if scans.len() >= SCANS_PER_REQUEST {
            scans.pop_front();
        }
        scans.push_back((key, result));
    }
}

/// About what a scan result holds.
fn scan_bytes(r: &ScanResult) -> usize {
    let offered = r.new_updates.iter().chain(&r.changed);
    let heap: usize = offered.clone().flat_map(|o| &o.hardware_ids).map(String::len).sum();
    offered.count() * std::mem::size_of::<wsus_catalog::index::Offered>()
        + heap
        + (r.out_of_scope.len() + r.deployed_out_of_scope.len()) * std::mem::size_of::<i32>()
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<u64, Vec<Arc<Seen>>>,
    /// Insertion order (hash, entry address), for eviction.
    order: VecDeque<(u64, usize)>,
    bytes: usize,
}

pub struct SeenRequests {
    hasher: foldhash::quality::RandomState,
    bound: usize,
    entries: Mutex<Entries>,
}

impl SeenRequests {
    pub fn new(bound: usize) -> Self {
        Self { hasher: Default::default(), bound, entries: Mutex::default() }
    }

    fn hash(&self, span: &CookieSpan<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_usize(span.before.len());
        h.write(span.before);
        h.write(span.after);
        h.finish()
    }

    pub fn get(&self, span: &CookieSpan<'_>) -> Option<Arc<Seen>> {
        let hash = self.hash(span);
        let entries = self.entries.lock().expect("seen requests");
        entries.by_hash.get(&hash)?.iter().find(|s| s.matches(span)).cloned()
    }

    /// Keeps a decoded request; the oldest go when the bound is passed.
    pub fn insert(&self, span: &CookieSpan<'_>, version: SoapVersion, request: SyncUpdatesRequest) -> Arc<Seen> {
        let ids = request.installed_non_leaf.len() + request.other_cached.len() + request.cached_driver_ids.len();
        let size = span.before.len() + span.after.len() + ids * std::mem::size_of::<i32>();
        let seen = Arc::new(Seen {
            bytes: size,
            before_len: span.before.len(),
            outside: [span.before, span.after].concat().into_boxed_slice(),
            version,
            request,
            scans: Mutex::default(),
        });
        if size > self.bound {
            return seen;
        }
        let hash = self.hash(span);
        let mut entries = self.entries.lock().expect("seen requests");
        if let Some(existing) = entries.by_hash.get(&hash).and_then(|v| v.iter().find(|s| s.matches(span))) {
            return existing.clone();
        }
        while entries.bytes + size > self.bound {
            let Some((old_hash, old)) = entries.order.pop_front() else { break };
            let mut freed = 0;
            if let Some(list) = entries.by_hash.get_mut(&old_hash) {
                if let Some(i) = list.iter().position(|s| Arc::as_ptr(s) as usize == old) {
                    freed = list.swap_remove(i).bytes;
                }
                if list.is_empty() {
                    entries.by_hash.remove(&old_hash);
                }
            }
            entries.bytes -= freed;
        }
        entries.bytes += size;
        entries.by_hash.entry(hash).or_default().push(seen.clone());
        entries.order.push_back((hash, Arc::as_ptr(&seen) as usize));
        seen
    }

    pub fn bytes(&self) -> usize {
        self.entries.lock().expect("seen requests").bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(body: &str) -> CookieSpan<'_> {
        wsus_soap::cookie_span::find_cookie(body.as_bytes()).expect("cookie")
    }

    fn body(ids: &str, data: &str) -> String {
        format!(
            "<a><cookie><Expiration>2026-10-04T15:49:04Z</Expiration><EncryptedData>{data}</EncryptedData></cookie>\
             <ids>{ids}</ids></a>"
        )
    }

    #[test]
    fn a_request_is_found_again_under_another_cookie_and_not_under_other_ids() {
        let seen = SeenRequests::new(1 << 20);
        let first = body("1 2 3", "AAAA");
        seen.insert(&span(&first), SoapVersion::Soap11, SyncUpdatesRequest::default());
        assert!(seen.get(&span(&body("1 2 3", "BBBB"))).is_some());
        assert!(seen.get(&span(&body("1 2 4", "AAAA"))).is_none());
    }

    #[test]
    fn small_scans_are_kept_and_large_ones_are_not() {
        let seen = SeenRequests::new(1 << 20);
        let first = body("1", "A");
        let request = seen.insert(&span(&first), SoapVersion::Soap11, SyncUpdatesRequest::default());
        let catalog = Arc::new(CatalogIndex::build(Default::default()));
        let key = || ScanKey {
            catalog: Arc::downgrade(&catalog),
            groups: vec![],
            since_version: 0,
            groups_changed: false,
            two_group_out_of_scope: false,
            page_size: 30,
        };
        let large = ScanResult { out_of_scope: vec![1; MAX_KEPT_SCAN_BYTES], ..Default::default() };
        request.keep_scan(key(), Arc::new(large));
        assert!(request.scan(&key()).is_none());
        request.keep_scan(key(), Arc::new(ScanResult { out_of_scope: vec![1; 10], ..Default::default() }));
        assert_eq!(request.scan(&key()).map(|r| r.out_of_scope.len()), Some(10));
        // Another catalog: not the same scan.
        let other = Arc::new(CatalogIndex::build(Default::default()));
        assert!(request.scan(&ScanKey { catalog: Arc::downgrade(&other), ..key() }).is_none());
    }

    #[test]
    fn the_oldest_go_past_the_bound() {
        let first = body("1", "A");
        // No ids decoded here: a request holds its bytes around the cookie.
        let one = span(&first).before.len() + span(&first).after.len();
        let seen = SeenRequests::new(one * 2);
        for ids in ["1", "2", "3"] {
            seen.insert(&span(&body(ids, "A")), SoapVersion::Soap11, SyncUpdatesRequest::default());
        }
        assert!(seen.get(&span(&body("1", "A"))).is_none());
        assert!(seen.get(&span(&body("3", "A"))).is_some());
        assert!(seen.bytes() <= one * 2);
    }
}
