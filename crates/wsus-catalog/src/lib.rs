//! The revision graph, without I/O: which revision of each update is current, which
//! revisions are leaves, what supersedes what, and which products and classifications a
//! revision belongs to (directly, or through the bundles that contain it). Results do not
//! depend on the order revisions arrive in: everything is derived from the whole set.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

pub mod index;

/// The built-in group every computer belongs to (the id every WSUS gives it).
pub const ALL_COMPUTERS: Uuid = uuid::uuid!("a0a08746-4dbe-4a37-9adf-9e7652c0b421");
/// The built-in group of the computers in no other group.
pub const UNASSIGNED_COMPUTERS: Uuid = uuid::uuid!("b73ca6ed-5727-47f3-84de-015e03f6a88a");
use wsus_metadata::{PrerequisiteClause, UpdateIdentity, UpdateType};

/// What the graph needs of a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionNode {
    pub identity: UpdateIdentity,
    pub update_type: UpdateType,
    pub prerequisites: Vec<PrerequisiteClause>,
    /// Bundled revisions (exact), CNF.
    pub bundled: Vec<Vec<UpdateIdentity>>,
    pub superseded: Vec<Uuid>,
}

impl From<&wsus_metadata::Update> for RevisionNode {
    fn from(u: &wsus_metadata::Update) -> Self {
        Self {
            identity: u.identity,
            update_type: u.update_type,
            prerequisites: u.prerequisites.clone(),
            bundled: u.bundled.clone(),
            superseded: u.superseded.clone(),
        }
    }
}

/// What the graph derives for one revision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Derived {
    /// No current revision names this update as a prerequisite (MS-WUSP IsLeaf). Bundle
    /// members are leaves unless something depends on them; a category nothing depends
    /// on is a leaf.
    pub is_leaf: bool,
    pub is_bundle: bool,
    /// This is the highest revision of its update.
    pub is_latest: bool,
    /// A current revision of another update supersedes this update.
    pub is_superseded: bool,
    /// Categories (products, classifications) it belongs to: `(category, via_bundle)`,
    /// `via_bundle` true when only a containing bundle names it. Sorted by category.
    pub categories: Vec<(Uuid, bool)>,
}

pub struct Graph {
    nodes: Vec<RevisionNode>,
    by_identity: HashMap<UpdateIdentity, usize>,
    latest: HashMap<Uuid, usize>,
}

impl Graph {
    pub fn new(nodes: Vec<RevisionNode>) -> Self {
        let mut by_identity = HashMap::with_capacity(nodes.len());
        let mut latest: HashMap<Uuid, usize> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            by_identity.insert(n.identity, i);
            latest
                .entry(n.identity.update_id)
                .and_modify(|cur| {
                    if nodes[*cur].identity.revision_number < n.identity.revision_number {
                        *cur = i;
                    }
                })
                .or_insert(i);
        }
        Self { nodes, by_identity, latest }
    }

    pub fn nodes(&self) -> &[RevisionNode] {
        &self.nodes
    }

    /// The highest revision of `update_id`, if the catalog holds any.
    pub fn latest(&self, update_id: Uuid) -> Option<&RevisionNode> {
        self.latest.get(&update_id).map(|&i| &self.nodes[i])
    }

    pub fn get(&self, identity: &UpdateIdentity) -> Option<&RevisionNode> {
        self.by_identity.get(identity).map(|&i| &self.nodes[i])
    }

    /// Derives, for every node in order, what the graph says about it.
    pub fn derive(&self) -> Vec<Derived> {
        let current = || self.latest.values().map(|&i| &self.nodes[i]);
        let prerequisite_targets: HashSet<Uuid> =
            current().flat_map(|n| n.prerequisites.iter().flat_map(|c| c.update_ids.iter().copied())).collect();
        let superseded: HashSet<Uuid> = current().flat_map(|n| n.superseded.iter().copied()).collect();

        // Direct categories, then pushed down from every current bundle to the revisions
        // it contains, however deep the bundles nest.
        let mut categories: Vec<HashMap<Uuid, bool>> = self
            .nodes
            .iter()
            .map(|n| {
                n.prerequisites
                    .iter()
                    .filter(|c| c.is_category)
                    .flat_map(|c| c.update_ids.iter().map(|&id| (id, false)))
                    .collect()
            })
            .collect();
        for &bundle in self.latest.values() {
            if self.nodes[bundle].bundled.is_empty() {
                continue;
            }
            let inherited: Vec<Uuid> = categories[bundle].keys().copied().collect();
            if inherited.is_empty() {
                continue;
            }
            let mut seen = HashSet::from([bundle]);
            let mut todo = vec![bundle];
            while let Some(b) = todo.pop() {
                for member in self.nodes[b].bundled.iter().flatten() {
                    let Some(&m) = self.by_identity.get(member) else { continue }; // unresolved
                    if !seen.insert(m) {
                        continue;
                    }
                    for &c in &inherited {
                        categories[m].entry(c).or_insert(true);
                    }
                    todo.push(m);
                }
            }
        }

        self.nodes
            .iter()
            .zip(categories)
            .map(|(n, cats)| {
                let mut categories: Vec<(Uuid, bool)> = cats.into_iter().collect();
                categories.sort();
                Derived {
                    is_leaf: !prerequisite_targets.contains(&n.identity.update_id),
                    is_bundle: !n.bundled.is_empty(),
                    is_latest: self.latest.get(&n.identity.update_id) == self.by_identity.get(&n.identity),
                    is_superseded: superseded.contains(&n.identity.update_id),
                    categories,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn rev(n: u128, r: i32) -> UpdateIdentity {
        UpdateIdentity { update_id: id(n), revision_number: r }
    }

    fn node(n: u128, r: i32, t: UpdateType) -> RevisionNode {
        RevisionNode { identity: rev(n, r), update_type: t, prerequisites: vec![], bundled: vec![], superseded: vec![] }
    }

    fn category_clause(ids: &[u128]) -> PrerequisiteClause {
        PrerequisiteClause { update_ids: ids.iter().map(|&i| id(i)).collect(), is_category: true }
    }

    /// Company 1 <- family 2 <- product 3; classification 4; detectoid 5;
    /// bundle 10 (product 3, classification 4, needs detectoid 5) holds bundle 11 (r200)
    /// which holds leaf 12 (r200); leaf 13 is not in any bundle; 10 supersedes 99.
    fn catalog() -> Vec<RevisionNode> {
        let mut family = node(2, 100, UpdateType::Category);
        family.prerequisites = vec![category_clause(&[1])];
        let mut product = node(3, 202, UpdateType::Category);
        product.prerequisites = vec![category_clause(&[2])];
        let mut bundle = node(10, 200, UpdateType::Software);
        bundle.prerequisites = vec![
            PrerequisiteClause { update_ids: vec![id(5)], is_category: false },
            category_clause(&[4]),
            category_clause(&[3]),
        ];
        bundle.bundled = vec![vec![rev(11, 200), rev(77, 1)]];
        bundle.superseded = vec![id(99)];
        let mut inner = node(11, 200, UpdateType::Software);
        inner.bundled = vec![vec![rev(12, 200)]];
        vec![
            node(1, 101, UpdateType::Category),
            family,
            product,
            node(4, 100, UpdateType::Category),
            node(5, 200, UpdateType::Detectoid),
            bundle,
            inner,
            node(12, 200, UpdateType::Software),
            node(12, 199, UpdateType::Software),
            node(13, 200, UpdateType::Software),
        ]
    }

    fn derive_by_identity(nodes: Vec<RevisionNode>) -> HashMap<UpdateIdentity, Derived> {
        let g = Graph::new(nodes);
        g.nodes().iter().map(|n| n.identity).zip(g.derive()).collect()
    }

    #[test]
    fn leaves_bundles_and_membership() {
        let d = derive_by_identity(catalog());
        // The category chain: targets of IsCategory prerequisites are not leaves...
        assert!(!d[&rev(1, 101)].is_leaf && !d[&rev(2, 100)].is_leaf);
        // ...nor are the product and classification a bundle names in IsCategory clauses.
        assert!(!d[&rev(3, 202)].is_leaf && !d[&rev(4, 100)].is_leaf);
        assert!(!d[&rev(5, 200)].is_leaf, "a detectoid something needs");
        assert!(
            d[&rev(10, 200)].is_leaf && d[&rev(11, 200)].is_leaf && d[&rev(12, 200)].is_leaf,
            "bundle members are leaves"
        );
        assert!(d[&rev(10, 200)].is_bundle && !d[&rev(12, 200)].is_bundle);
        assert_eq!(d[&rev(10, 200)].categories, vec![(id(3), false), (id(4), false)]);
        assert_eq!(d[&rev(12, 200)].categories, vec![(id(3), true), (id(4), true)], "through two levels of bundles");
        assert!(d[&rev(12, 199)].categories.is_empty(), "bundles pin exact revisions");
        assert!(d[&rev(13, 200)].categories.is_empty());
        assert_eq!(d[&rev(2, 100)].categories, vec![(id(1), false)]);
        assert!(d[&rev(12, 200)].is_latest && !d[&rev(12, 199)].is_latest);
        assert!(!d[&rev(10, 200)].is_superseded);
    }

    #[test]
    fn arrival_order_does_not_matter() {
        let forward = derive_by_identity(catalog());
        let mut reversed = catalog();
        reversed.reverse();
        assert_eq!(derive_by_identity(reversed), forward);
        let mut rotated = catalog();
        rotated.rotate_left(4);
        assert_eq!(derive_by_identity(rotated), forward);
    }

    #[test]
    fn only_current_revisions_count() {
        // Revision 1 of update 20 needed 30; revision 2 no longer does: 30 is a leaf again.
        let mut old = node(20, 1, UpdateType::Software);
        old.prerequisites = vec![PrerequisiteClause { update_ids: vec![id(30)], is_category: false }];
        old.superseded = vec![id(40)];
        let d = derive_by_identity(vec![
            old.clone(),
            node(30, 1, UpdateType::Detectoid),
            node(40, 1, UpdateType::Software),
        ]);
        assert!(!d[&rev(30, 1)].is_leaf && d[&rev(40, 1)].is_superseded);
        let d = derive_by_identity(vec![
            old,
            node(20, 2, UpdateType::Software),
            node(30, 1, UpdateType::Detectoid),
            node(40, 1, UpdateType::Software),
        ]);
        assert!(d[&rev(30, 1)].is_leaf && !d[&rev(40, 1)].is_superseded);
    }

    #[test]
    fn bundle_cycles_terminate() {
        let mut a = node(1, 1, UpdateType::Software);
        a.prerequisites = vec![category_clause(&[9])];
        a.bundled = vec![vec![rev(2, 1)]];
        let mut b = node(2, 1, UpdateType::Software);
        b.bundled = vec![vec![rev(1, 1)]];
        let d = derive_by_identity(vec![a, b]);
        assert_eq!(d[&rev(2, 1)].categories, vec![(id(9), true)]);
    }
}
