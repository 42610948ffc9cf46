//! Generated catalogs parse, are closed, deterministic, and look like the real ones.

use std::collections::{HashMap, HashSet};

use wsus_catalog::{Graph, RevisionNode};
use wsus_catalog_gen::{Options, file_bytes, generate};
use wsus_metadata::{Update, UpdateType, fragments};

fn collect(opts: &Options) -> Vec<wsus_catalog_gen::Document> {
    let mut docs = Vec::new();
    generate(opts, |d| {
        docs.push(d);
        Ok(())
    })
    .unwrap();
    docs
}

#[test]
fn a_catalog_is_closed_realistic_and_true() {
    let opts = Options { revisions: 3000, ..Options::default() };
    let docs = collect(&opts);
    assert_eq!(docs.len(), 3000);
    let parsed: Vec<Update> = docs.iter().map(|d| Update::parse(d.xml.clone()).unwrap()).collect();
    let ids: HashSet<_> = parsed.iter().map(|u| u.identity.update_id).collect();
    let revisions: HashSet<_> = parsed.iter().map(|u| u.identity).collect();
    for u in &parsed {
        for c in &u.prerequisites {
            assert!(c.update_ids.iter().all(|i| ids.contains(i)), "prerequisite of {} resolves", u.identity);
        }
        assert!(u.bundled.iter().flatten().all(|m| revisions.contains(m)), "bundle members resolve");
        assert!(u.superseded.iter().all(|s| ids.contains(s)), "superseded updates resolve");
        // Fragments derive like the real ones.
        assert!(fragments::core(u).starts_with("<UpdateIdentity "));
        assert!(!fragments::localized(u).is_empty());
    }
    let count = |t: UpdateType| parsed.iter().filter(|u| u.update_type == t).count();
    assert!(
        count(UpdateType::Category) > 10 && count(UpdateType::Detectoid) > 100 && count(UpdateType::Software) > 2000
    );
    let kinds: HashSet<_> = parsed.iter().filter_map(|u| u.category_type.clone()).collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert!(parsed.iter().any(|u| !u.superseded.is_empty()), "supersedence chains");
    let mut per_update: HashMap<_, usize> = HashMap::new();
    for u in &parsed {
        *per_update.entry(u.identity.update_id).or_default() += 1;
    }
    assert!(per_update.values().any(|&n| n > 1), "some updates have several revisions");
    assert!(parsed.iter().any(|u| u.localized.len() > 1), "several languages");
    // A title that names a KB has that KBArticleID, so `wsusctl updates show KB…` finds it;
    // nothing was released in the future.
    let mut with_kb = 0;
    for u in &parsed {
        let title = &u.localized[0].title;
        if let Some(kb) = title.split("(KB").nth(1).and_then(|t| t.split(')').next()) {
            assert_eq!(u.kb_article_id.as_deref(), Some(kb), "{title}");
            with_kb += 1;
        }
        assert!(u.creation_date.is_some_and(|d| d < chrono::Utc::now()), "{}: {:?}", u.identity, u.creation_date);
    }
    assert!(with_kb > 10, "{with_kb} updates name a KB");

    // The graph sees leaves and non-leaves, and leaves in products through bundles.
    let graph = Graph::new(parsed.iter().map(RevisionNode::from).collect());
    let derived = graph.derive();
    assert!(derived.iter().any(|d| !d.is_leaf) && derived.iter().any(|d| d.is_leaf));
    assert!(graph.nodes().iter().zip(&derived).any(|(n, d)| n.update_type == UpdateType::Software
        && !n.prerequisites.is_empty()
        && d.categories.iter().any(|(_, via)| *via)));

    // File digests are true.
    for d in docs.iter().filter_map(|d| d.file.as_ref()).take(50) {
        let bytes = file_bytes(d.content_seed, d.size);
        assert_eq!(bytes.len() as u64, d.size);
        use sha1::Digest as _;
        assert_eq!(<[u8; 20]>::from(sha1::Sha1::digest(&bytes)), d.sha1);
    }
}

#[test]
fn the_same_seed_gives_the_same_catalog() {
    let a: Vec<String> = collect(&Options::default()).into_iter().map(|d| d.xml).collect();
    let b: Vec<String> = collect(&Options::default()).into_iter().map(|d| d.xml).collect();
    assert_eq!(a, b);
    let c: Vec<String> = collect(&Options { seed: 2, ..Options::default() }).into_iter().map(|d| d.xml).collect();
    assert_ne!(a, c);
}

#[test]
fn files_land_in_the_content_store() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { revisions: 200, ..Options::default() };
    let (docs, files) =
        wsus_catalog_gen::write(&opts, &dir.path().join("docs"), Some(&dir.path().join("content"))).unwrap();
    assert_eq!(docs, 200);
    assert!(files > 50);
    let stored = walk(&dir.path().join("content"));
    assert_eq!(stored, files);
}

fn walk(p: &std::path::Path) -> usize {
    std::fs::read_dir(p)
        .map(|r| r.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}
