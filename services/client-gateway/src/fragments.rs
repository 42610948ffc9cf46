//! Fragments a gateway serves, kept in memory up to `WSUS_FRAGMENT_CACHE_BYTES` (least
//! recently used out) so a scan storm does not read the same rows from Postgres for every
//! client, and so the catalog's size does not set the gateway's memory: a Core fragment
//! (escaped, for SyncUpdates) and what GetExtendedUpdateInfo serves of a revision (its
//! fragments and files) are read on first use. Emptied when the catalog version moves (a
//! changed document keeps its revision id).

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

/// What of a revision an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    /// The Core fragment, escaped for a SyncUpdates answer.
    Core,
    /// Everything GetExtendedUpdateInfo serves.
    Extra,
}

#[derive(Clone)]
enum Entry {
    Core(Arc<str>),
    Extra(Arc<Extra>),
}

impl Entry {
    fn bytes(&self) -> usize {
        match self {
            Entry::Core(c) => c.len() + 64,
            Entry::Extra(e) => e.bytes(),
        }
    }
}

#[derive(Default)]
struct Inner {
    version: i64,
    entries: HashMap<(i32, Part), (Entry, u64)>,
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

    /// The escaped Core fragment of each of `ids` at catalog `version` (empty for a
    /// revision stored without one).
    pub async fn cores(&self, pool: &PgPool, version: i64, ids: &[i32]) -> Result<HashMap<i32, Arc<str>>, StoreError> {
        let (mut found, missing) = self.lookup(version, Part::Core, ids, |e| match e {
            Entry::Core(c) => Some(c.clone()),
            Entry::Extra(_) => None,
        });
        if missing.is_empty() {
            return Ok(found);
        }
        let mut loaded: HashMap<i32, Arc<str>> = HashMap::with_capacity(missing.len());
        for (id, _, locale, body) in revisions::fragments_of(pool, &missing, &["Core"]).await? {
            if locale.is_empty() {
                loaded.insert(id, Arc::from(wsus_catalog::index::escape_xml(&body)));
            }
        }
        for id in missing {
            loaded.entry(id).or_insert_with(|| Arc::from(""));
        }
        self.keep(version, Part::Core, loaded.iter().map(|(id, c)| (*id, Entry::Core(c.clone()))));
        found.extend(loaded);
        Ok(found)
    }

    /// What each of `ids` has, at catalog `version`: from memory, or read (and kept).
    pub async fn get(&self, pool: &PgPool, version: i64, ids: &[i32]) -> Result<HashMap<i32, Arc<Extra>>, StoreError> {
        let (mut found, missing) = self.lookup(version, Part::Extra, ids, |e| match e {
            Entry::Extra(x) => Some(x.clone()),
            Entry::Core(_) => None,
        });
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
        let loaded: HashMap<i32, Arc<Extra>> = loaded.into_iter().map(|(id, e)| (id, Arc::new(e))).collect();
        self.keep(version, Part::Extra, loaded.iter().map(|(id, e)| (*id, Entry::Extra(e.clone()))));
        found.extend(loaded);
        Ok(found)
    }

    /// What is held for `ids` (marked used), as `take` reads an entry, and the ids not held.
    fn lookup<T>(
        &self,
        version: i64,
        part: Part,
        ids: &[i32],
        take: impl Fn(&Entry) -> Option<T>,
    ) -> (HashMap<i32, T>, Vec<i32>) {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        let mut inner = self.inner.lock().expect("fragment cache");
        if inner.version != version {
            *inner = Inner { version, ..Inner::default() };
        }
        inner.tick += 1;
        let tick = inner.tick;
        for id in ids {
            match inner.entries.get_mut(&(*id, part)) {
                Some((entry, used)) => {
                    *used = tick;
                    found.extend(take(entry).map(|v| (*id, v)));
                }
                None => missing.push(*id),
            }
        }
        (found, missing)
    }

    /// Keeps what was read, unless the catalog moved on meanwhile; evicts down to the bound.
    fn keep(&self, version: i64, part: Part, loaded: impl Iterator<Item = (i32, Entry)>) {
        if self.bound == 0 {
            return;
        }
        let mut inner = self.inner.lock().expect("fragment cache");
        if inner.version != version {
            return;
        }
        let tick = inner.tick;
        for (id, entry) in loaded {
            if let std::collections::hash_map::Entry::Vacant(v) = inner.entries.entry((id, part)) {
                let size = entry.bytes();
                v.insert((entry, tick));
                inner.bytes += size;
            }
        }
        if inner.bytes > self.bound {
            evict(&mut inner, self.bound);
        }
    }
}

/// Drops the least recently used entries until a tenth under the bound, so evictions
/// come in batches rather than on every insert.
fn evict(inner: &mut Inner, bound: usize) {
    let target = bound - bound / 10;
    let mut by_age: Vec<(u64, (i32, Part))> = inner.entries.iter().map(|(key, (_, used))| (*used, *key)).collect();
    by_age.sort_unstable_by_key(|(used, _)| *used);
    for (_, key) in by_age {
        if inner.bytes <= target {
            break;
        }
        if let Some((entry, _)) = inner.entries.remove(&key) {
            inner.bytes -= entry.bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: usize) -> Entry {
        Entry::Extra(Arc::new(Extra {
            fragments: vec![("Extended".into(), String::new(), "x".repeat(body))],
            files: vec![],
        }))
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_bound_holds() {
        let mut inner = Inner::default();
        for id in 0..10 {
            let e = entry(1000);
            inner.bytes += e.bytes();
            inner.entries.insert((id, if id % 2 == 0 { Part::Core } else { Part::Extra }), (e, id as u64));
        }
        let one = entry(1000).bytes();
        evict(&mut inner, one * 5);
        assert!(inner.bytes <= one * 5 - one * 5 / 10);
        assert!(
            !inner.entries.contains_key(&(0, Part::Core)) && inner.entries.contains_key(&(9, Part::Extra)),
            "oldest out, newest in"
        );
        assert_eq!(inner.bytes, inner.entries.values().map(|(e, _)| e.bytes()).sum::<usize>());
    }
}
