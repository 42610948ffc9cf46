//! The in-memory catalog a gateway answers SyncUpdates from: revisions with their
//! resolved prerequisites, approvals per group, declines. Built once per catalog version
//! and swapped whole; a scan is set arithmetic on integer revision ids, with no database
//! round trip. Core fragments are not held here: they are most of a catalog's bytes
//! (about 225 KB a revision for Windows), so the gateway keeps them in a bounded cache.

// FxHash: the scan hashes thousands of ids per request; SipHash's DoS resistance buys
// nothing for keys that come from the catalog or are bounded per request.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;
use wsus_metadata::{PrerequisiteClause, UpdateIdentity, UpdateType};

/// Implied deployments (the revisions no group approved) get a wire id of their own per
/// revision, as a real WSUS sends them (187 revisions, 187 distinct Deployment IDs in the
/// captured answers), from this base up; explicit ones are numbered from 1000.
pub const IMPLIED_ID_BASE: i32 = 1_000_000_000;

/// The wire id of a revision's implied deployment.
pub fn implied_wire_id(revision_id: i32) -> i32 {
    IMPLIED_ID_BASE.saturating_add(revision_id.max(0))
}

/// A revision as the index is built from it.
#[derive(Debug, Clone)]
pub struct IndexRevision {
    pub revision_id: i32,
    pub identity: UpdateIdentity,
    pub update_type: UpdateType,
    /// Company, ProductFamily, Product, UpdateClassification... for categories.
    pub category_type: Option<String>,
    pub is_leaf: bool,
    /// Products and classifications it belongs to (directly or through bundles).
    pub categories: Vec<Uuid>,
    pub prerequisites: Vec<PrerequisiteClause>,
    /// Exact revisions it bundles.
    pub bundled: Vec<UpdateIdentity>,
    /// LastChangeTime of its implied deployment.
    pub changed: NaiveDate,
    /// The catalog version that last changed it.
    pub changed_version: i64,
}

/// An explicit approval as the index is built from it.
#[derive(Debug, Clone)]
pub struct IndexDeployment {
    pub wire_id: i32,
    pub update_id: Uuid,
    pub group_id: Uuid,
    /// Install, OptionalInstall, Uninstall, PreDeploymentCheck or Block.
    pub action: String,
    pub deadline: Option<DateTime<Utc>>,
    pub last_change: NaiveDate,
    pub changed_version: i64,
}

#[derive(Debug, Clone, Default)]
pub struct IndexInput {
    pub version: i64,
    pub revisions: Vec<IndexRevision>,
    pub deployments: Vec<IndexDeployment>,
    pub declined: Vec<Uuid>,
    /// (group, parent)
    pub groups: Vec<(Uuid, Option<Uuid>)>,
    /// Group names, for client-side targeting.
    pub group_names: Vec<(String, Uuid)>,
    /// Per update, the catalog version of the last change to any of its approvals
    /// (made, changed or removed), so a removed approval shows as a change too.
    pub approval_changes: Vec<(Uuid, i64)>,
    /// Driver metadata of driver revisions.
    pub drivers: Vec<IndexDriver>,
}

struct Rev {
    revision_id: i32,
    update_id: Uuid,
    update_type: UpdateType,
    category_type: Option<String>,
    is_leaf: bool,
    categories: Vec<Uuid>,
    /// Each clause: update ids, at least one of which must be installed. A clause naming
    /// only updates absent from the catalog can never be satisfied.
    clauses: Vec<Vec<Uuid>>,
    /// The same clauses as dense update slots (`NO_SLOT` for an update absent from the
    /// catalog), so a scan tests them against a bitset instead of hashing.
    clause_slots: Vec<Vec<u32>>,
    /// This revision's update, as a dense slot.
    slot: u32,
    declined: bool,
    in_bundle: bool,
    changed: NaiveDate,
    changed_version: i64,
}

/// A deployment as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentView {
    pub wire_id: i32,
    pub action: &'static str,
    pub deadline: Option<DateTime<Utc>>,
    pub last_change: NaiveDate,
    pub changed_version: i64,
}

/// One answered revision.
#[derive(Debug, Clone)]
pub struct Offered {
    pub revision_id: i32,
    pub is_leaf: bool,
    pub deployment: DeploymentView,
    /// For drivers: the hardware id the driver was matched by.
    pub hardware_ids: Vec<String>,
}

/// What a client asked for in one SyncUpdates call.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest<'a> {
    /// The client's groups (ancestors are added, All Computers always applies).
    pub groups: &'a [Uuid],
    pub installed_non_leaf: &'a [i32],
    pub other_cached: &'a [i32],
    pub filter_categories: &'a [Uuid],
    /// For a category scan: report cached revisions that are still deployed but outside
    /// the scan apart (DeployedOutOfScopeRevisionIds) from those no longer deployed.
    pub need_two_group_out_of_scope: bool,
    pub page_size: usize,
    /// The catalog version the client was last told its cached revisions' deployments at
    /// (the cookie's change marker): changes after it are reported. 0 (no marker: a
    /// cookie fresh from GetCookie) reports every cached revision still offered.
    pub since_version: i64,
    /// The client's groups differ from those of its last scan: every cached update that has
    /// approvals anywhere is told its deployment again.
    pub groups_changed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ScanResult {
    pub new_updates: Vec<Offered>,
    pub out_of_scope: Vec<i32>,
    /// Category scans with NeedTwoGroupOutOfScopeUpdates: cached, still deployed, outside this scan.
    pub deployed_out_of_scope: Vec<i32>,
    pub changed: Vec<Offered>,
    pub truncated: bool,
}

pub struct CatalogIndex {
    pub version: i64,
    revs: Vec<Rev>,
    by_revision_id: HashMap<i32, u32>,
    by_identity: HashMap<UpdateIdentity, u32>,
    latest: Vec<u32>,
    latest_by_update: HashMap<Uuid, u32>,
    deployments: HashMap<Uuid, HashMap<Uuid, IndexDeployment>>,
    declined: HashSet<Uuid>,
    /// How many distinct updates the catalog holds (dense slots 0..slot_count).
    slot_count: usize,
    needed_cache: std::sync::Mutex<HashMap<Bits, Arc<Needed>>>,
    parents: HashMap<Uuid, Option<Uuid>>,
    group_names: HashMap<String, Uuid>,
    approval_changes: HashMap<Uuid, i64>,
    drivers: DriverIndex,
    has_drivers: bool,
}

/// The slot of an update the catalog does not hold: never installed.
const NO_SLOT: u32 = u32::MAX;

/// A set of small integers, one bit each.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Self {
        Bits(vec![0; len.div_ceil(64)])
    }
    fn set(&mut self, i: u32) {
        if let Some(w) = self.0.get_mut(i as usize / 64) {
            *w |= 1 << (i % 64);
        }
    }
    fn has(&self, i: u32) -> bool {
        self.0.get(i as usize / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// What a machine with a given set of installed non-leaf updates needs (before any
/// category filter): its latest revisions, as a list and as bits.
struct Needed {
    list: Vec<u32>,
    bits: Bits,
}

/// Machines alike (the same installed non-leaf updates) need the same: in a scan storm
/// most clients are alike, so the last answers are kept, a few dozen at most.
const NEEDED_CACHE: usize = 64;

/// Escapes a fragment for element content, once.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    wsus_metadata::fragments::push_text(&mut out, text);
    out
}

/// Between approvals that reach a client from unrelated groups (a client in two groups, or
/// one group and All Computers through another): Install over Uninstall over
/// OptionalInstall over a status check, a Block last (it overrides only its own group's
/// ancestors).
fn action_rank(action: &str) -> u8 {
    match action {
        "Install" => 5,
        "Uninstall" => 4,
        "OptionalInstall" => 3,
        "PreDeploymentCheck" => 2,
        "Block" => 1,
        _ => 0,
    }
}

/// Whether approval `a` wins over `b` when they come from unrelated groups: the higher
/// action, then a deadline over none, then the earlier deadline (then the older approval,
/// so the answer never depends on map order).
fn precedes(a: &IndexDeployment, b: &IndexDeployment) -> bool {
    let key = |d: &IndexDeployment| {
        (action_rank(&d.action), d.deadline.is_some(), std::cmp::Reverse(d.deadline), std::cmp::Reverse(d.wire_id))
    };
    key(a) > key(b)
}

/// The implied action of an unapproved revision (see `deployment_for`).
fn implied_action(r: &Rev) -> &'static str {
    if r.in_bundle {
        "Bundle"
    } else if matches!(r.update_type, UpdateType::Software | UpdateType::Driver) {
        "PreDeploymentCheck"
    } else {
        "Evaluate"
    }
}

/// A client's groups, each with its ancestors, nearest first.
struct Chains(Vec<Vec<Uuid>>);

fn wire_action(action: &str) -> &'static str {
    match action {
        "Install" => "Install",
        "OptionalInstall" => "OptionalInstall",
        "Uninstall" => "Uninstall",
        // Block is sent as PreDeploymentCheck: not offered, status still reported.
        _ => "PreDeploymentCheck",
    }
}

impl CatalogIndex {
    pub fn build(input: IndexInput) -> Self {
        let mut latest_by_update: HashMap<Uuid, u32> = HashMap::default();
        let mut by_identity: HashMap<UpdateIdentity, u32> = HashMap::default();
        for (i, r) in input.revisions.iter().enumerate() {
            by_identity.insert(r.identity, i as u32);
            let e = latest_by_update.entry(r.identity.update_id).or_insert(i as u32);
            if input.revisions[*e as usize].identity.revision_number < r.identity.revision_number {
                *e = i as u32;
            }
        }
        let mut in_bundle: HashSet<u32> = HashSet::default();
        for &i in latest_by_update.values() {
            for m in &input.revisions[i as usize].bundled {
                if let Some(&mi) = by_identity.get(m) {
                    in_bundle.insert(mi);
                }
            }
        }
        let has_drivers = input.revisions.iter().any(|r| r.update_type == UpdateType::Driver);
        // Dense slots for the updates the catalog holds.
        let mut slots: HashMap<Uuid, u32> = HashMap::default();
        for r in &input.revisions {
            let next = slots.len() as u32;
            slots.entry(r.identity.update_id).or_insert(next);
        }
        let declined: HashSet<Uuid> = input.declined.into_iter().collect();
        let revs: Vec<Rev> = input
            .revisions
            .into_iter()
            .enumerate()
            .map(|(i, r)| Rev {
                revision_id: r.revision_id,
                update_id: r.identity.update_id,
                update_type: r.update_type,
                category_type: r.category_type,
                is_leaf: r.is_leaf,
                categories: r.categories,
                clause_slots: r
                    .prerequisites
                    .iter()
                    .filter(|c| !c.update_ids.is_empty())
                    .map(|c| c.update_ids.iter().map(|u| slots.get(u).copied().unwrap_or(NO_SLOT)).collect())
                    .collect(),
                clauses: r.prerequisites.into_iter().map(|c| c.update_ids).filter(|c| !c.is_empty()).collect(),
                slot: slots[&r.identity.update_id],
                declined: declined.contains(&r.identity.update_id),
                in_bundle: in_bundle.contains(&(i as u32)),
                changed: r.changed,
                changed_version: r.changed_version,
            })
            .collect();
        let by_revision_id: HashMap<i32, u32> =
            revs.iter().enumerate().map(|(i, r)| (r.revision_id, i as u32)).collect();
        let drivers = DriverIndex::build(input.drivers, &by_revision_id);
        let mut latest: Vec<u32> = latest_by_update.values().copied().collect();
        latest.sort_unstable_by_key(|&i| revs[i as usize].revision_id);
        let mut deployments: HashMap<Uuid, HashMap<Uuid, IndexDeployment>> = HashMap::default();
        for d in input.deployments {
            deployments.entry(d.group_id).or_default().insert(d.update_id, d);
        }
        Self {
            version: input.version,
            revs,
            by_revision_id,
            by_identity,
            latest,
            latest_by_update,
            deployments,
            slot_count: slots.len(),
            needed_cache: Default::default(),
            declined,
            parents: input.groups.into_iter().collect(),
            group_names: input.group_names.into_iter().map(|(n, id)| (n.to_lowercase(), id)).collect(),
            approval_changes: input.approval_changes.into_iter().collect(),
            drivers,
            has_drivers,
        }
    }

    pub fn revision_count(&self) -> usize {
        self.revs.len()
    }

    /// Roughly how many bytes the revisions hold (their category and prerequisite lists
    /// and lookup entries), for the cache-memory metric.
    pub fn approx_bytes(&self) -> usize {
        let per_rev: usize = self
            .revs
            .iter()
            .map(|r| {
                std::mem::size_of::<Rev>()
                    + r.category_type.as_ref().map_or(0, String::len)
                    + r.categories.capacity() * 16
                    + r.clauses.iter().map(|c| 24 + c.capacity() * 16).sum::<usize>()
            })
            .sum();
        // The hash maps from revision id, identity and update id to a revision.
        per_rev + self.revs.len() * 3 * 48
    }

    pub fn has_drivers(&self) -> bool {
        self.has_drivers
    }

    /// The group of this name (client-side targeting), any letter case.
    pub fn group_named(&self, name: &str) -> Option<Uuid> {
        self.group_names.get(&name.to_lowercase()).copied()
    }

    /// The revision id's update, if the catalog holds it.
    pub fn update_of(&self, revision_id: i32) -> Option<Uuid> {
        self.by_revision_id.get(&revision_id).map(|&i| self.revs[i as usize].update_id)
    }

    /// Whether a revision is deployed to clients at all: the catalog holds it and its
    /// update is not declined.
    pub fn is_deployable(&self, revision_id: i32) -> bool {
        self.by_revision_id.get(&revision_id).is_some_and(|&i| !self.revs[i as usize].declined)
    }

    /// The revision id of a revision the catalog holds.
    pub fn revision_id_of(&self, identity: &UpdateIdentity) -> Option<i32> {
        self.by_identity.get(identity).map(|&i| self.revs[i as usize].revision_id)
    }

    /// The category type of the latest revision of a category update, if the catalog
    /// holds that category ("" when the document gives none).
    pub fn category_type(&self, update_id: Uuid) -> Option<&str> {
        let r = &self.revs[*self.latest_by_update.get(&update_id)? as usize];
        (r.update_type == UpdateType::Category).then(|| r.category_type.as_deref().unwrap_or(""))
    }

    /// RefreshCache (MS-WUSP 3.1.5.8): the revision ids and deployments of revisions the
    /// client holds, for those deployed to it (bundle members are left out: the client
    /// syncs them again, as with the real server).
    pub fn refresh(&self, groups: &[Uuid], identities: &[UpdateIdentity]) -> Vec<(UpdateIdentity, Offered)> {
        let chains = self.chains(groups);
        identities
            .iter()
            .filter_map(|id| self.by_identity.get(id).map(|&i| (*id, i)))
            .filter(|(_, i)| !self.declined.contains(&self.revs[*i as usize].update_id))
            .map(|(id, i)| (id, self.offered(&chains, i)))
            .filter(|(_, o)| o.deployment.action != "Bundle")
            .collect()
    }

    /// The groups whose approvals apply, as one chain per group the client is in: the
    /// group, then its parent, up to All Computers (which ends every chain).
    fn chains(&self, groups: &[Uuid]) -> Chains {
        let mut chains: Vec<Vec<Uuid>> = Vec::with_capacity(groups.len().max(1));
        for &g in groups.iter().chain(groups.is_empty().then_some(&crate::ALL_COMPUTERS)) {
            let mut chain = vec![g];
            while let Some(Some(p)) = self.parents.get(chain.last().expect("never empty")) {
                if chain.contains(p) {
                    break; // a cycle in stored data: stop rather than loop
                }
                chain.push(*p);
            }
            if !chain.contains(&crate::ALL_COMPUTERS) {
                chain.push(crate::ALL_COMPUTERS);
            }
            if !chains.contains(&chain) {
                chains.push(chain);
            }
        }
        // A client in a group and in one of its ancestors is in the group: the ancestor's
        // chain is part of the group's and would bring back what the group overrides.
        let all = chains.clone();
        chains.retain(|c| !all.iter().any(|other| other.len() > c.len() && other.ends_with(c)));
        Chains(chains)
    }

    /// The approval a client gets for `update` (WSUS's conflict rules, MS-WUSP 3.1.5 leaves
    /// them to the server): along each of its groups' chains the nearest approval wins (a
    /// subgroup's approval, a Block included, overrides its parent's); between chains,
    /// [`precedes`] decides.
    fn explicit(&self, chains: &Chains, update: Uuid) -> Option<&IndexDeployment> {
        let mut best: Option<&IndexDeployment> = None;
        for chain in &chains.0 {
            let nearest = chain.iter().find_map(|g| self.deployments.get(g).and_then(|m| m.get(&update)));
            if let Some(d) = nearest
                && best.is_none_or(|b| precedes(d, b))
            {
                best = Some(d);
            }
        }
        best
    }

    /// The deployment a client in `chains` gets for revision `i`. Unapproved revisions are
    /// deployed implicitly, as a real WSUS does: updates (software, drivers) for a status
    /// check (PreDeploymentCheck: evaluated and reported, not offered; 441 such software
    /// leaves beside 92 Install and no Evaluate in captures/wsus-m0-cbs/catalog-stats.json), bundle
    /// members as Bundle, categories and detectoids as Evaluate.
    fn deployment_for(&self, chains: &Chains, i: u32) -> DeploymentView {
        let r = &self.revs[i as usize];
        let approvals_changed = self.approval_changes.get(&r.update_id).copied().unwrap_or(0);
        match self.explicit(chains, r.update_id) {
            Some(d) => DeploymentView {
                wire_id: d.wire_id,
                action: wire_action(&d.action),
                deadline: d.deadline,
                last_change: d.last_change,
                changed_version: d.changed_version.max(approvals_changed),
            },
            None => DeploymentView {
                wire_id: implied_wire_id(r.revision_id),
                action: implied_action(r),
                deadline: None,
                last_change: r.changed,
                changed_version: r.changed_version.max(approvals_changed),
            },
        }
    }

    /// Whether an administrator approved update `update` for a client in `chains` (to
    /// install, or to install if the user wants).
    fn approved(&self, chains: &Chains, update: Uuid) -> bool {
        self.explicit(chains, update).is_some_and(|d| matches!(d.action.as_str(), "Install" | "OptionalInstall"))
    }

    fn offered(&self, chains: &Chains, i: u32) -> Offered {
        let r = &self.revs[i as usize];
        Offered {
            revision_id: r.revision_id,
            is_leaf: r.is_leaf,
            deployment: self.deployment_for(chains, i),
            hardware_ids: Vec::new(),
        }
    }

    /// Latest revisions in scope for a category scan: those in (or being) the filter
    /// categories, plus everything their prerequisites lead to.
    fn in_filter(&self, filter: &[Uuid]) -> HashSet<u32> {
        let mut scope: HashSet<u32> = HashSet::default();
        let mut todo: Vec<u32> = self
            .latest
            .iter()
            .copied()
            .filter(|&i| {
                let r = &self.revs[i as usize];
                filter.contains(&r.update_id) || r.categories.iter().any(|c| filter.contains(c))
            })
            .collect();
        while let Some(i) = todo.pop() {
            if !scope.insert(i) {
                continue;
            }
            for clause in &self.revs[i as usize].clauses {
                todo.extend(clause.iter().filter_map(|u| self.latest_by_update.get(u)));
            }
        }
        scope
    }

    /// The latest software revisions whose prerequisites `installed` satisfies (not
    /// declined), from the cache when a machine alike asked before.
    fn needed_by(&self, installed: Bits) -> Arc<Needed> {
        if let Some(n) = self.needed_cache.lock().expect("needed cache").get(&installed) {
            return n.clone();
        }
        let mut list = Vec::new();
        let mut bits = Bits::new(self.revs.len());
        for &i in &self.latest {
            let r = &self.revs[i as usize];
            if r.update_type == UpdateType::Driver || r.declined {
                continue;
            }
            if r.clause_slots.iter().all(|c| c.iter().any(|&s| s != NO_SLOT && installed.has(s))) {
                list.push(i);
                bits.set(i);
            }
        }
        let needed = Arc::new(Needed { list, bits });
        let mut cache = self.needed_cache.lock().expect("needed cache");
        if cache.len() >= NEEDED_CACHE {
            // Forget one (any): the cache only has to hold the machines of the moment.
            if let Some(k) = cache.keys().next().cloned() {
                cache.remove(&k);
            }
        }
        cache.insert(installed, needed.clone());
        needed
    }

    /// The software pass of SyncUpdates (MS-WUSP 3.1.5.7): what the client needs now, one
    /// prerequisite level per round, a page at a time.
    pub fn scan(&self, req: &ScanRequest<'_>) -> ScanResult {
        let chains = self.chains(req.groups);
        let mut installed = Bits::new(self.slot_count);
        for id in req.installed_non_leaf {
            if let Some(&i) = self.by_revision_id.get(id) {
                installed.set(self.revs[i as usize].slot);
            }
        }
        let cached: HashSet<i32> = req.installed_non_leaf.iter().chain(req.other_cached).copied().collect();
        let scope = (!req.filter_categories.is_empty()).then(|| self.in_filter(req.filter_categories));

        let all = self.needed_by(installed);
        let mut needed: Vec<u32> = Vec::new();
        // Deployed to the client whatever the filter (only a category scan needs it apart).
        let mut deployed_anywhere: HashSet<i32> = HashSet::default();
        for &i in &all.list {
            if let Some(scope) = &scope {
                deployed_anywhere.insert(self.revs[i as usize].revision_id);
                if !scope.contains(&i) {
                    continue;
                }
            }
            needed.push(i);
        }
        let scoped_bits;
        let needed_bits = match &scope {
            None => &all.bits,
            Some(_) => {
                let mut b = Bits::new(self.revs.len());
                needed.iter().for_each(|&i| b.set(i));
                scoped_bits = b;
                &scoped_bits
            }
        };
        let is_needed = |id: &i32| self.by_revision_id.get(id).is_some_and(|&i| needed_bits.has(i));

        // Non-leaves first (the client evaluates them and reports them installed), then
        // leaves, each in revision id order.
        let mut fresh: Vec<u32> =
            needed.iter().copied().filter(|&i| !cached.contains(&self.revs[i as usize].revision_id)).collect();
        fresh.sort_by_key(|&i| (self.revs[i as usize].is_leaf, self.revs[i as usize].revision_id));
        let truncated = fresh.len() > req.page_size;
        fresh.truncate(req.page_size);

        // With no marker (a cookie fresh from GetCookie) every cached revision still offered
        // is told again, as the real server does (295 ChangedUpdates at a fresh anchor,
        // notes/observed-behaviour.md §3): a client whose cookie expired still hears of
        // approvals made since it cached an update.
        let changed = needed
            .iter()
            .filter(|&&i| cached.contains(&self.revs[i as usize].revision_id))
            .filter(|&&i| {
                let r = &self.revs[i as usize];
                req.since_version == 0
                    || (req.groups_changed && self.approval_changes.contains_key(&r.update_id))
                    || self.deployment_for(&chains, i).changed_version > req.since_version
            })
            .map(|&i| self.offered(&chains, i))
            .collect();
        // A category scan sees only part of the catalog: what lies outside it is out of
        // scope only when it is not deployed at all, and is reported apart when the client
        // asks for two groups; otherwise it is left alone.
        let outside: Vec<i32> = cached.iter().copied().filter(|id| !is_needed(id)).collect();
        let (mut out_of_scope, mut deployed_out_of_scope): (Vec<i32>, Vec<i32>) = match scope {
            None => (outside, Vec::new()),
            Some(_) if req.need_two_group_out_of_scope => {
                outside.into_iter().partition(|id| !deployed_anywhere.contains(id))
            }
            Some(_) => (Vec::new(), Vec::new()),
        };
        out_of_scope.sort_unstable();
        deployed_out_of_scope.sort_unstable();
        ScanResult {
            new_updates: fresh.into_iter().map(|i| self.offered(&chains, i)).collect(),
            out_of_scope,
            deployed_out_of_scope,
            changed,
            truncated,
        }
    }
}

/// A driver of a driver revision, as the index is built from it.
#[derive(Debug, Clone)]
pub struct IndexDriver {
    pub revision_id: i32,
    pub hardware_id: String,
    pub date: Option<NaiveDate>,
    pub version: Option<u64>,
    pub class: Option<String>,
    pub manufacturer: Option<String>,
    pub provider: Option<String>,
    /// (operating system key, score): lower ranks better.
    pub feature_scores: Vec<(String, u8)>,
    /// Computer models it is targeted to (distribution and INF targeting together).
    pub computer_hardware_ids: Vec<Uuid>,
}

/// The driver a device runs now, as SystemSpec's installedDriver describes it.
#[derive(Debug, Clone, Default)]
pub struct InstalledDriverSpec {
    /// The device id it was installed for (MatchingID).
    pub matching_id: Option<String>,
    pub date: Option<NaiveDate>,
    pub version: Option<u64>,
    pub class: Option<String>,
    pub manufacturer: Option<String>,
    pub provider: Option<String>,
    /// The computer hardware id it was targeted to (MatchingComputerHWID; nil when none).
    pub matching_computer_hwid: Option<Uuid>,
    /// DriverRank, 0xSSGGTHHH with the feature score in GG (the captured client sends
    /// 16711680 = 0x00FF0000, "no feature score"); None when unknown (-1, or absent).
    pub rank: Option<u32>,
}

/// One device of a driver scan.
#[derive(Debug, Clone, Default)]
pub struct DeviceSpec {
    /// Hardware ids then compatible ids, most specific first.
    pub ids: Vec<String>,
    pub installed: Option<InstalledDriverSpec>,
}

/// The driver pass of SyncUpdates.
#[derive(Debug, Clone, Default)]
pub struct DriverScanRequest<'a> {
    pub groups: &'a [Uuid],
    pub installed_non_leaf: &'a [i32],
    pub cached_driver_ids: &'a [i32],
    pub devices: &'a [DeviceSpec],
    pub computer_hardware_ids: &'a [Uuid],
    pub feature_score_key: Option<&'a str>,
    /// The driver pass's change marker, as [`ScanRequest::since_version`] for software.
    pub since_version: i64,
}

/// Drivers by lower-cased hardware id.
#[derive(Default)]
pub(crate) struct DriverIndex {
    by_hardware_id: HashMap<String, Vec<(u32, IndexDriver)>>,
}

impl DriverIndex {
    pub(crate) fn build(drivers: Vec<IndexDriver>, by_revision_id: &HashMap<i32, u32>) -> Self {
        let mut by_hardware_id: HashMap<String, Vec<(u32, IndexDriver)>> = HashMap::default();
        for d in drivers {
            if let Some(&i) = by_revision_id.get(&d.revision_id) {
                by_hardware_id.entry(d.hardware_id.to_lowercase()).or_default().push((i, d));
            }
        }
        Self { by_hardware_id }
    }
}

/// A driver revision chosen for one or more devices, with the hardware ids it matched.
type Chosen = (u32, Vec<String>);

/// How well a driver matches a device, by MS-WUSP 3.1.5.7's rules in their order (lower
/// is better): the more specific computer hardware id (earlier in ComputerSpec; an
/// untargeted driver ranks after every targeted one), the lower feature score, the more
/// specific device id (earlier among the device's hardware then compatible ids), the newer
/// DriverVerDate, the higher DriverVerVersion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct DriverMatch {
    computer: usize,
    feature_score: u8,
    device_id: usize,
    date: std::cmp::Reverse<Option<NaiveDate>>,
    version: std::cmp::Reverse<Option<u64>>,
}

/// The installed driver under the same rules; a rule the client gave no value for is
/// left out of the comparison.
struct InstalledMatch {
    computer: usize,
    feature_score: Option<u8>,
    device_id: Option<usize>,
    date: Option<NaiveDate>,
    version: Option<u64>,
}

impl InstalledMatch {
    fn of(installed: &InstalledDriverSpec, device: &DeviceSpec, computers: &[Uuid]) -> Self {
        Self {
            computer: installed
                .matching_computer_hwid
                .and_then(|c| computers.iter().position(|x| *x == c))
                .unwrap_or(computers.len()),
            feature_score: installed.rank.map(|r| ((r >> 16) & 0xff) as u8),
            device_id: installed
                .matching_id
                .as_deref()
                .and_then(|m| device.ids.iter().position(|id| id.eq_ignore_ascii_case(m))),
            date: installed.date,
            version: installed.version,
        }
    }

    /// Whether `m` is a better match than this installed driver.
    fn is_beaten_by(&self, m: &DriverMatch) -> bool {
        use std::cmp::Ordering;
        let rules = [
            Some(m.computer.cmp(&self.computer)),
            self.feature_score.map(|s| m.feature_score.cmp(&s)),
            self.device_id.map(|p| m.device_id.cmp(&p)),
            self.date.map(|d| m.date.cmp(&std::cmp::Reverse(Some(d)))),
            self.version.map(|v| m.version.cmp(&std::cmp::Reverse(Some(v)))),
        ];
        rules.into_iter().flatten().find(|o| *o != Ordering::Equal) == Some(Ordering::Less)
    }
}

impl CatalogIndex {
    /// The driver pass (MS-WUSP 3.1.5.7): for each device, the best applicable driver —
    /// among the drivers approved for the client first, then among the rest (offered for a
    /// status check) — offered only when it is a better match than the installed one
    /// (by the same rules; for an installed printer driver, only from its provider and
    /// manufacturer). A driver best for several devices carries every hardware id it was
    /// matched by. Cached drivers whose deployment changed come back as ChangedUpdates.
    pub fn scan_drivers(&self, req: &DriverScanRequest<'_>) -> ScanResult {
        let chains = self.chains(req.groups);
        let installed: HashSet<Uuid> = req.installed_non_leaf.iter().filter_map(|id| self.update_of(*id)).collect();
        let latest: HashSet<u32> = self.latest.iter().copied().collect();
        let computers = req.computer_hardware_ids;
        // Each chosen revision with the hardware ids it was chosen by, in the order chosen.
        let mut chosen: Vec<Chosen> = Vec::new();
        for device in req.devices {
            let installed_printer = device
                .installed
                .as_ref()
                .filter(|d| d.class.as_deref().is_some_and(|c| c.eq_ignore_ascii_case("Printer")));
            let mut best: Option<((bool, DriverMatch), u32, &IndexDriver)> = None;
            for (id_rank, id) in device.ids.iter().enumerate() {
                for (i, d) in self.drivers.by_hardware_id.get(&id.to_lowercase()).map(Vec::as_slice).unwrap_or_default()
                {
                    let r = &self.revs[*i as usize];
                    if !latest.contains(i) || self.declined.contains(&r.update_id) {
                        continue;
                    }
                    if !r.clauses.iter().all(|c| c.iter().any(|u| installed.contains(u))) {
                        continue;
                    }
                    // Targeted to computer models: only those, the more specific the better.
                    let computer = if d.computer_hardware_ids.is_empty() {
                        computers.len()
                    } else {
                        match computers.iter().position(|c| d.computer_hardware_ids.contains(c)) {
                            Some(p) => p,
                            None => continue,
                        }
                    };
                    if let Some(p) = installed_printer
                        && (!matches(&d.provider, &p.provider) || !matches(&d.manufacturer, &p.manufacturer))
                    {
                        continue;
                    }
                    let feature_score = req
                        .feature_score_key
                        .and_then(|k| d.feature_scores.iter().find(|(os, _)| os.eq_ignore_ascii_case(k)))
                        .map_or(u8::MAX, |(_, s)| *s);
                    let m = DriverMatch {
                        computer,
                        feature_score,
                        device_id: id_rank,
                        date: std::cmp::Reverse(d.date),
                        version: std::cmp::Reverse(d.version),
                    };
                    let key = (!self.approved(&chains, r.update_id), m);
                    if best.as_ref().is_none_or(|(b, _, _)| key < *b) {
                        best = Some((key, *i, d));
                    }
                }
            }
            let Some(((_, m), i, d)) = best else { continue };
            let better = device
                .installed
                .as_ref()
                .is_none_or(|inst| InstalledMatch::of(inst, device, computers).is_beaten_by(&m));
            if !better {
                continue;
            }
            match chosen.iter_mut().find(|(c, _)| *c == i) {
                Some((_, ids)) if !ids.iter().any(|h| h.eq_ignore_ascii_case(&d.hardware_id)) => {
                    ids.push(d.hardware_id.clone())
                }
                Some(_) => {}
                None => chosen.push((i, vec![d.hardware_id.clone()])),
            }
        }
        let cached: HashSet<i32> = req.cached_driver_ids.iter().copied().collect();
        let needed_ids: HashSet<i32> = chosen.iter().map(|(i, _)| self.revs[*i as usize].revision_id).collect();
        let offer = |(i, ids): &Chosen| Offered { hardware_ids: ids.clone(), ..self.offered(&chains, *i) };
        let (held, fresh): (Vec<&Chosen>, Vec<&Chosen>) =
            chosen.iter().partition(|(i, _)| cached.contains(&self.revs[*i as usize].revision_id));
        let mut new_updates: Vec<Offered> = fresh.into_iter().map(offer).collect();
        new_updates.sort_by_key(|o| o.revision_id);
        let mut changed: Vec<Offered> = held
            .into_iter()
            .filter(|(i, _)| {
                req.since_version == 0 || self.deployment_for(&chains, *i).changed_version > req.since_version
            })
            .map(offer)
            .collect();
        changed.sort_by_key(|o| o.revision_id);
        let mut out_of_scope: Vec<i32> = cached.into_iter().filter(|id| !needed_ids.contains(id)).collect();
        out_of_scope.sort_unstable();
        ScanResult { new_updates, out_of_scope, deployed_out_of_scope: Vec::new(), changed, truncated: false }
    }
}

impl CatalogIndex {
    /// SyncPrinterCatalog (MS-WUSP 3.1.5.12): the printer drivers applicable to the
    /// client, less those it holds; held ones no longer offered are out of scope.
    pub fn printer_catalog(&self, groups: &[Uuid], installed_non_leaf: &[i32], cached: &[i32]) -> ScanResult {
        let chains = self.chains(groups);
        let installed: HashSet<Uuid> = installed_non_leaf.iter().filter_map(|id| self.update_of(*id)).collect();
        let latest: HashSet<u32> = self.latest.iter().copied().collect();
        let mut printers: Vec<u32> = self
            .drivers
            .by_hardware_id
            .values()
            .flatten()
            .filter(|(_, d)| d.class.as_deref().is_some_and(|c| c.eq_ignore_ascii_case("Printer")))
            .map(|(i, _)| *i)
            .filter(|i| latest.contains(i))
            .filter(|&i| {
                let r = &self.revs[i as usize];
                !self.declined.contains(&r.update_id)
                    && r.clauses.iter().all(|c| c.iter().any(|u| installed.contains(u)))
            })
            .collect();
        printers.sort_unstable();
        printers.dedup();
        let cached_set: HashSet<i32> = cached.iter().copied().collect();
        let ids: HashSet<i32> = printers.iter().map(|&i| self.revs[i as usize].revision_id).collect();
        let mut out_of_scope: Vec<i32> = cached_set.iter().copied().filter(|id| !ids.contains(id)).collect();
        out_of_scope.sort_unstable();
        ScanResult {
            new_updates: printers
                .into_iter()
                .filter(|&i| !cached_set.contains(&self.revs[i as usize].revision_id))
                .map(|i| self.offered(&chains, i))
                .collect(),
            out_of_scope,
            deployed_out_of_scope: Vec::new(),
            changed: Vec::new(),
            truncated: false,
        }
    }
}

/// Whether a driver's provider (or manufacturer) is the installed printer driver's; an
/// installed driver that names none constrains nothing.
fn matches(candidate: &Option<String>, installed: &Option<String>) -> bool {
    match (candidate, installed) {
        (_, None) => true,
        (Some(c), Some(i)) => c.eq_ignore_ascii_case(i),
        (None, Some(_)) => false,
    }
}
