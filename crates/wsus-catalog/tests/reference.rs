//! The graph rules on the real documents, against what the real server was seen to do.

use wsus_catalog::{Graph, RevisionNode};
use wsus_metadata::Update;

fn real_catalog() -> Vec<RevisionNode> {
    let root = wsus_testdata::root().join("captures/wsus-m0-wsusss/docs");
    std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .flatten()
        .map(|e| RevisionNode::from(&Update::parse(std::fs::read_to_string(e.path()).unwrap()).unwrap()))
        .collect()
}

#[test]
fn real_documents_give_the_observed_leaves_and_membership() {
    let g = Graph::new(real_catalog());
    let derived: std::collections::HashMap<String, wsus_catalog::Derived> =
        g.nodes().iter().map(|n| n.identity.update_id.to_string()[..8].to_owned()).zip(g.derive()).collect();
    // The category chain Company <- ProductFamily <- Product came one level per round,
    // IsLeaf false for the first two; the product nothing depends on is a leaf.
    assert!(!derived["56309036"].is_leaf);
    assert!(!derived["6964aab4"].is_leaf);
    assert!(derived["dd78b8a1"].is_leaf);
    // The approved bundle, its nested bundles and their members are leaves.
    for u in ["a2fef9b0", "1f9bd9bb", "ccb78947", "ff36f0b5", "266f6222"] {
        assert!(derived[u].is_leaf, "{u}");
    }
    assert!(derived["a2fef9b0"].is_bundle && derived["1f9bd9bb"].is_bundle);
    // Definition Updates and Microsoft Defender Antivirus reach the engine leaf through
    // two levels of bundles (a2fef9b0 -> 1f9bd9bb -> ff36f0b5).
    let cats: Vec<String> = derived["ff36f0b5"].categories.iter().map(|(c, _)| c.to_string()).collect();
    assert!(cats.contains(&"e0789628-ce08-4437-be74-2495b842f43b".to_owned()), "{cats:?}");
    assert!(cats.contains(&"8c3fcc84-7410-4a95-8b89-a166a0190486".to_owned()), "{cats:?}");
}
