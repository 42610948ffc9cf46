//! What GetExtendedUpdateInfo serves of a revision (its fragments and files), kept in
//! memory up to `WSUS_FRAGMENT_CACHE_BYTES` so a scan storm does not read the same rows
//! from Postgres for every client. Emptied when the catalog version moves (a changed
//! document keeps its revision id).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wsus_store::{PgPool, StoreError, revisions};

/// A revision's fragments (kind, locale, body) and files (SHA-1, name).
#[derive(Debug, Default)]
pub struct Extra {
    pub fragments: Vec<(String, String, String)>,
    pub files: Vec<(Vec<u8>, String)>,
}

impl Extra {
    fn bytes(&self) -> usize {
        let f: usize = self.fragments.iter().map(|(k, l, b)| k.len() + l.len() + b.len() + 72).sum();
        let g: usize = self.files.iter().map(|(s, n)| s.len() + n.len() + 48).sum();
        f + g + 64
    }
}

#[derive(Default)]
struct Inner {
    version: i64,
    entries: HashMap<i32, (Arc<Extra>, u64)>,
    bytes: usize,
    tick: u64,
}

pub struct FragmentCache {
    inner: Mutex<Inner>,
    bound: usize,
}

impl FragmentCache {
    /// A cache of at most `bound` bytes (0: nothing is kept).
    pub fn new(bound: usize) -> Self {
        Self { inner: Mutex::default(), bound }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().expect("fragment cache").bytes
    }

    /// What each of `ids` has, at catalog `version`: from memory, or read (and kept).
    pub async fn get(&self, pool: &PgPool, version: i64, ids: &[i32]) -> Result<HashMap<i32, Arc<Extra>>, StoreError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let mut inner = self.inner.lock().expect("fragment cache");
            if inner.version != version {
                *inner = Inner { version, ..Inner::default() };
            }
            inner.tick += 1;
            let tick = inner.tick;
            for id in ids {
                match inner.entries.get_mut(id) {
                    Some((extra, used)) => {
                        *used = tick;
                        found.insert(*id, extra.clone());
                    }
                    None => missing.push(*id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let kinds = ["Core", "Extended", "LocalizedProperties", "Eula"];
        let mut loaded: HashMap<i32, Extra> = missing.iter().map(|id| (*id, Extra::default())).collect();
        for (id, kind, locale, body) in revisions::fragments_of(pool, &missing, &kinds).await? {
            if let Some(e) = loaded.get_mut(&id) {
                e.fragments.push((kind, locale, body));
            }
        }
        for (id, sha1, name) in revisions::files_by_revision(pool, &missing).await? {
            if let Some(e) = loaded.get_mut(&id) {
                e.files.push((sha1, name));
            }
        }
        let mut inner = self.inner.lock().expect("fragment cache");
        let keep = inner.version == version && self.bound > 0;
        let tick = inner.tick;
        for (id, extra) in loaded {
            let extra = Arc::new(extra);
            if keep && !inner.entries.contains_key(&id) {
                inner.bytes += extra.bytes();
                inner.entries.insert(id, (extra.clone(), tick));
            }
            found.insert(id, extra);
        }
        if inner.bytes > self.bound {
            evict(&mut inner, self.bound);
        }
        Ok(found)
    }
}

/// Drops the least recently used entries until a tenth under the bound, so evictions
/// come in batches rather than on every insert.
fn evict(inner: &mut Inner, bound: usize) {
    let target = bound - bound / 10;
    let mut by_age: Vec<(u64, i32)> = inner.entries.iter().map(|(id, (_, used))| (*used, *id)).collect();
    by_age.sort_unstable();
    for (_, id) in by_age {
        if inner.bytes <= target {
            break;
        }
        if let Some((extra, _)) = inner.entries.remove(&id) {
            inner.bytes -= extra.bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: usize) -> Arc<Extra> {
        Arc::new(Extra { fragments: vec![("Extended".into(), String::new(), "x".repeat(body))], files: vec![] })
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_bound_holds() {
        let mut inner = Inner::default();
        for id in 0..10 {
            let e = entry(1000);
            inner.bytes += e.bytes();
            inner.entries.insert(id, (e, id as u64));
        }
        let one = entry(1000).bytes();
        evict(&mut inner, one * 5);
        assert!(inner.bytes <= one * 5 - one * 5 / 10);
        assert!(!inner.entries.contains_key(&0) && inner.entries.contains_key(&9), "oldest out, newest in");
        assert_eq!(inner.bytes, inner.entries.values().map(|(e, _)| e.bytes()).sum::<usize>());
    }
}
