//! Revisions in bulk: import batches (one transaction each, idempotent), the derived
//! graph columns, and reads.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sha2::Digest as _;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;
use wsus_catalog::{Graph, RevisionNode};
use wsus_metadata::{FileInfo, PrerequisiteClause, Update, UpdateIdentity, UpdateType, fragments};

use crate::{Result, catalog};

/// A revision ready to store: the document, what the server interprets of it, and its
/// fragments.
#[derive(Debug, Clone)]
pub struct NewRevision {
    pub identity: UpdateIdentity,
    pub update_type: UpdateType,
    pub category_type: Option<String>,
    pub publication_state: String,
    pub default_language: Option<String>,
    pub creation_date: Option<DateTime<Utc>>,
    pub eula_id: Option<Uuid>,
    pub secured_fragment: Option<String>,
    /// English title (else the first), for search and reports.
    pub title: Option<String>,
    pub kb_article_id: Option<String>,
    pub xml: String,
    pub xml_sha256: [u8; 32],
    /// (kind, locale, body): Core, Extended, LocalizedProperties per language, Eula.
    pub fragments: Vec<(&'static str, String, String)>,
    pub prerequisites: Vec<PrerequisiteClause>,
    pub bundled: Vec<Vec<UpdateIdentity>>,
    pub superseded: Vec<Uuid>,
    pub files: Vec<FileInfo>,
    pub drivers: Vec<wsus_metadata::DriverMetadata>,
    /// Microsoft Update URLs of files, by SHA-1, when the source gave them.
    pub mu_urls: HashMap<[u8; 20], String>,
}

impl NewRevision {
    /// Derives everything to store from a parsed document.
    pub fn from_update(u: &Update) -> Self {
        let mut frags =
            vec![("Core", String::new(), fragments::core(u)), ("Extended", String::new(), fragments::extended(u))];
        for (lang, body) in fragments::localized(u) {
            frags.push(("LocalizedProperties", lang, body));
        }
        for (lang, body) in fragments::eulas(u) {
            frags.push(("Eula", lang, body));
        }
        // One fragment per (kind, locale): a document repeating a language keeps the first.
        let mut seen = HashSet::new();
        frags.retain(|(k, l, _)| seen.insert((*k, l.clone())));
        Self {
            identity: u.identity,
            update_type: u.update_type,
            category_type: u.category_type.clone(),
            publication_state: u.publication_state.clone().unwrap_or_else(|| "Published".into()),
            default_language: u.default_language.clone(),
            creation_date: u.creation_date,
            eula_id: u.eula_id,
            secured_fragment: u.secured_fragment.clone(),
            title: u
                .localized
                .iter()
                .find(|l| l.language.eq_ignore_ascii_case("en"))
                .or(u.localized.first())
                .map(|l| l.title.clone()),
            kb_article_id: u.kb_article_id.clone(),
            xml_sha256: sha2::Sha256::digest(u.xml.as_bytes()).into(),
            xml: u.xml.clone(),
            fragments: frags,
            prerequisites: u.prerequisites.clone(),
            bundled: u.bundled.clone(),
            superseded: u.superseded.clone(),
            files: u.files.clone(),
            drivers: u.drivers.clone(),
            mu_urls: HashMap::new(),
        }
    }
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportOutcome {
    pub revisions: u64,
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Files the catalog did not hold before.
    pub files: u64,
}

impl std::ops::AddAssign for ImportOutcome {
    fn add_assign(&mut self, o: Self) {
        self.revisions += o.revisions;
        self.new += o.new;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.files += o.files;
    }
}

/// Stores a batch of revisions in one transaction. A revision whose document is already
/// stored unchanged is skipped; a changed one is replaced in place (its revision id
/// stays). Bumps the catalog version once when anything changed.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.import_batch"))]
pub async fn import_batch(pool: &PgPool, batch: &[NewRevision]) -> Result<ImportOutcome> {
    // The same revision twice in one batch: the last copy wins.
    let mut latest_copy: HashMap<UpdateIdentity, &NewRevision> = HashMap::new();
    for r in batch {
        latest_copy.insert(r.identity, r);
    }
    let batch: Vec<&NewRevision> = latest_copy.into_values().collect();
    let mut outcome = ImportOutcome { revisions: batch.len() as u64, ..Default::default() };
    if batch.is_empty() {
        return Ok(outcome);
    }
    let mut tx = pool.begin().await?;
    let ids: Vec<Uuid> = batch.iter().map(|r| r.identity.update_id).collect();
    let revs: Vec<i32> = batch.iter().map(|r| r.identity.revision_number).collect();
    let existing: Vec<(i32, Uuid, i32, Vec<u8>)> = sqlx::query_as(
        "SELECT r.revision_id, r.update_id, r.revision_number, x.sha256 FROM revision r \
         JOIN unnest($1::uuid[], $2::int4[]) AS k(u, n) ON r.update_id = k.u AND r.revision_number = k.n \
         JOIN revision_xml x ON x.revision_id = r.revision_id",
    )
    .bind(&ids)
    .bind(&revs)
    .fetch_all(&mut *tx)
    .await?;
    let existing: HashMap<UpdateIdentity, (i32, Vec<u8>)> = existing
        .into_iter()
        .map(|(rid, u, n, sha)| (UpdateIdentity { update_id: u, revision_number: n }, (rid, sha)))
        .collect();

    let mut new = Vec::new();
    let mut changed = Vec::new();
    for &r in &batch {
        match existing.get(&r.identity) {
            Some((_, sha)) if sha.as_slice() == r.xml_sha256 => outcome.unchanged += 1,
            Some((rid, _)) => changed.push((*rid, r)),
            None => new.push(r),
        }
    }
    outcome.new = new.len() as u64;
    outcome.updated = changed.len() as u64;
    if new.is_empty() && changed.is_empty() {
        // Unchanged documents may still bring where Microsoft Update serves their files.
        let urls: Vec<(Vec<u8>, String)> =
            batch.iter().flat_map(|r| r.mu_urls.iter().map(|(s, u)| (s.to_vec(), u.clone()))).collect();
        update_mu_urls(&mut tx, &urls).await?;
        tx.commit().await?;
        return Ok(outcome);
    }
    let version = catalog::bump(&mut *tx).await?;

    let mut stored: Vec<(i32, &NewRevision)> = insert_revisions(&mut tx, &new, version).await?;
    if !changed.is_empty() {
        update_revisions(&mut tx, &changed, version).await?;
        stored.extend(changed.iter().copied());
    }
    outcome.files = insert_children(&mut tx, &stored).await?;
    tx.commit().await?;
    Ok(outcome)
}

async fn insert_revisions<'a>(
    tx: &mut Transaction<'_, Postgres>,
    new: &[&'a NewRevision],
    version: i64,
) -> Result<Vec<(i32, &'a NewRevision)>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i32, Uuid, i32)> = sqlx::query_as(
        "INSERT INTO revision (update_id, revision_number, update_type, category_type, publication_state, \
            default_language, creation_date, eula_id, secured_fragment, is_bundle, changed_version, title, kb_article_id) \
         SELECT u, n, t, ct, ps, dl, cd, e, sf, b, $11, ti, kb \
         FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], \
                     $8::uuid[], $9::text[], $10::bool[], $12::text[], $13::text[]) AS x(u, n, t, ct, ps, dl, cd, e, sf, b, ti, kb) \
         RETURNING revision_id, update_id, revision_number",
    )
    .bind(new.iter().map(|r| r.identity.update_id).collect::<Vec<_>>())
    .bind(new.iter().map(|r| r.identity.revision_number).collect::<Vec<_>>())
    .bind(new.iter().map(|r| r.update_type.as_str()).collect::<Vec<_>>())
    .bind(new.iter().map(|r| r.category_type.clone()).collect::<Vec<_>>())
    .bind(new.iter().map(|r| r.publication_state.clone()).collect::<Vec<_>>())
    .bind(new.iter().map(|r| r.default_language.clone()).collect::<Vec<_>>())
    .bind(new.iter().map(|r| r.creation_date).collect::<Vec<_>>())
    .bind(new.iter().map(|r| r.eula_id).collect::<Vec<_>>())
    .bind(new.iter().map(|r| r.secured_fragment.clone()).collect::<Vec<_>>())
    .bind(new.iter().map(|r| !r.bundled.is_empty()).collect::<Vec<_>>())
    .bind(version)
    .bind(new.iter().map(|r| r.title.clone()).collect::<Vec<_>>())
    .bind(new.iter().map(|r| r.kb_article_id.clone()).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    let by_identity: HashMap<UpdateIdentity, &NewRevision> = new.iter().map(|r| (r.identity, *r)).collect();
    Ok(rows
        .into_iter()
        .map(|(rid, u, n)| (rid, by_identity[&UpdateIdentity { update_id: u, revision_number: n }]))
        .collect())
}

/// Tables holding what a revision's document says; replaced wholesale when it changes.
const CHILD_TABLES: &[&str] = &[
    "DELETE FROM revision_xml WHERE revision_id = ANY($1)",
    "DELETE FROM fragment WHERE revision_id = ANY($1)",
    "DELETE FROM prerequisite WHERE revision_id = ANY($1)",
    "DELETE FROM bundle_member WHERE revision_id = ANY($1)",
    "DELETE FROM supersedence WHERE revision_id = ANY($1)",
    "DELETE FROM revision_file WHERE revision_id = ANY($1)",
    "DELETE FROM driver_feature_score WHERE revision_id = ANY($1)",
    "DELETE FROM driver_computer_hardware_id WHERE revision_id = ANY($1)",
    "DELETE FROM driver WHERE revision_id = ANY($1)",
];

async fn update_revisions(
    tx: &mut Transaction<'_, Postgres>,
    changed: &[(i32, &NewRevision)],
    version: i64,
) -> Result<()> {
    let rids: Vec<i32> = changed.iter().map(|(id, _)| *id).collect();
    sqlx::query(
        "UPDATE revision r SET update_type = x.t, category_type = x.ct, publication_state = x.ps, \
            default_language = x.dl, creation_date = x.cd, eula_id = x.e, secured_fragment = x.sf, \
            is_bundle = x.b, changed_version = $11, title = x.ti, kb_article_id = x.kb \
         FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::uuid[], \
                     $8::text[], $9::bool[], $10::text[], $12::text[]) AS x(id, t, ct, ps, dl, cd, e, sf, b, ti, kb) \
         WHERE r.revision_id = x.id",
    )
    .bind(&rids)
    .bind(changed.iter().map(|(_, r)| r.update_type.as_str()).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.category_type.clone()).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.publication_state.clone()).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.default_language.clone()).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.creation_date).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.eula_id).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.secured_fragment.clone()).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| !r.bundled.is_empty()).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.title.clone()).collect::<Vec<_>>())
    .bind(version)
    .bind(changed.iter().map(|(_, r)| r.kb_article_id.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    for statement in CHILD_TABLES {
        sqlx::query(*statement).bind(&rids).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts documents, fragments, edges, files and driver data; returns how many files
/// were new to the catalog. The revisions are new, or changed ones whose rows were just
/// deleted, so nothing can clash but an edge a document names twice: those are left out
/// here, and the rows go in without ON CONFLICT (its speculative insertion cost the narrow
/// tables several times the insert itself).
// One function on purpose: one pass gathers every child table's columns, then one INSERT per table, in order,
// in the caller's transaction.
async fn insert_children(tx: &mut Transaction<'_, Postgres>, stored: &[(i32, &NewRevision)]) -> Result<u64> {
    sqlx::query(
        "INSERT INTO revision_xml (revision_id, sha256, body) SELECT * FROM unnest($1::int4[], $2::bytea[], $3::bytea[])",
    )
    .bind(stored.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(stored.iter().map(|(_, r)| r.xml_sha256.to_vec()).collect::<Vec<_>>())
    .bind(stored.iter().map(|(_, r)| r.xml.as_bytes().to_vec()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;

    let (mut f_rid, mut f_kind, mut f_locale, mut f_body) = (vec![], vec![], vec![], vec![]);
    let (mut p_rid, mut p_clause, mut p_update, mut p_cat) = (vec![], vec![], vec![], vec![]);
    let (mut b_rid, mut b_clause, mut b_update, mut b_rev) = (vec![], vec![], vec![], vec![]);
    let (mut s_rid, mut s_update) = (vec![], vec![]);
    let (mut rf_rid, mut rf_sha1, mut rf_ord) = (vec![], vec![], vec![]);
    let mut files: HashMap<[u8; 20], (&FileInfo, Option<&String>)> = HashMap::new();
    for (rid, r) in stored {
        for (kind, locale, body) in &r.fragments {
            f_rid.push(*rid);
            f_kind.push(*kind);
            f_locale.push(locale.as_str());
            f_body.push(body.as_bytes().to_vec());
        }
        let mut edges = HashSet::new();
        for (clause, c) in r.prerequisites.iter().enumerate() {
            for u in c.update_ids.iter().filter(|u| edges.insert((clause, **u))) {
                p_rid.push(*rid);
                p_clause.push(clause as i32);
                p_update.push(*u);
                p_cat.push(c.is_category);
            }
        }
        let mut members = HashSet::new();
        for (clause, c) in r.bundled.iter().enumerate() {
            for m in c.iter().filter(|m| members.insert((clause, **m))) {
                b_rid.push(*rid);
                b_clause.push(clause as i32);
                b_update.push(m.update_id);
                b_rev.push(m.revision_number);
            }
        }
        let mut superseded = HashSet::new();
        for s in r.superseded.iter().filter(|s| superseded.insert(**s)) {
            s_rid.push(*rid);
            s_update.push(*s);
        }
        let mut linked = HashSet::new();
        for (ordinal, f) in r.files.iter().enumerate() {
            if linked.insert(f.sha1) {
                rf_rid.push(*rid);
                rf_sha1.push(f.sha1.to_vec());
                rf_ord.push(ordinal as i32);
            }
            files.entry(f.sha1).or_insert((f, r.mu_urls.get(&f.sha1)));
        }
    }
    sqlx::query(
        "INSERT INTO fragment (revision_id, kind, locale, body) \
         SELECT * FROM unnest($1::int4[], $2::text[], $3::text[], $4::bytea[])",
    )
    .bind(&f_rid)
    .bind(&f_kind)
    .bind(&f_locale)
    .bind(&f_body)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO prerequisite (revision_id, clause, update_id, is_category) \
         SELECT * FROM unnest($1::int4[], $2::int4[], $3::uuid[], $4::bool[])",
    )
    .bind(&p_rid)
    .bind(&p_clause)
    .bind(&p_update)
    .bind(&p_cat)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO bundle_member (revision_id, clause, member_update_id, member_revision_number) \
         SELECT * FROM unnest($1::int4[], $2::int4[], $3::uuid[], $4::int4[])",
    )
    .bind(&b_rid)
    .bind(&b_clause)
    .bind(&b_update)
    .bind(&b_rev)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO supersedence (revision_id, superseded_update_id) \
         SELECT * FROM unnest($1::int4[], $2::uuid[])",
    )
    .bind(&s_rid)
    .bind(&s_update)
    .execute(&mut **tx)
    .await?;

    let files: Vec<(&FileInfo, Option<&String>)> = files.into_values().collect();
    let new_files = sqlx::query(
        "INSERT INTO file (sha1, sha256, size, file_name, modified, patching_type, mu_url, is_encrypted) \
         SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::int8[], $4::text[], $5::timestamptz[], $6::text[], \
                              $7::text[], $8::bool[]) \
         ON CONFLICT (sha1) DO UPDATE SET sha256 = COALESCE(file.sha256, EXCLUDED.sha256), \
            mu_url = COALESCE(EXCLUDED.mu_url, file.mu_url) \
         RETURNING (xmax = 0)",
    )
    .bind(files.iter().map(|(f, _)| f.sha1.to_vec()).collect::<Vec<_>>())
    .bind(files.iter().map(|(f, _)| f.sha256.map(|s| s.to_vec())).collect::<Vec<_>>())
    .bind(files.iter().map(|(f, _)| i64::try_from(f.size).unwrap_or(i64::MAX)).collect::<Vec<_>>())
    .bind(files.iter().map(|(f, _)| f.file_name.clone()).collect::<Vec<_>>())
    .bind(files.iter().map(|(f, _)| f.modified).collect::<Vec<_>>())
    .bind(files.iter().map(|(f, _)| f.patching_type.clone()).collect::<Vec<_>>())
    .bind(files.iter().map(|(_, u)| u.cloned()).collect::<Vec<_>>())
    .bind(files.iter().map(|(f, _)| f.is_encrypted).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .filter(|row: &sqlx::postgres::PgRow| sqlx::Row::get::<bool, _>(row, 0))
    .count() as u64;
    sqlx::query(
        "INSERT INTO revision_file (revision_id, sha1, ordinal) \
         SELECT * FROM unnest($1::int4[], $2::bytea[], $3::int4[])",
    )
    .bind(&rf_rid)
    .bind(&rf_sha1)
    .bind(&rf_ord)
    .execute(&mut **tx)
    .await?;

    for (rid, r) in stored.iter().filter(|(_, r)| !r.drivers.is_empty()) {
        insert_drivers(tx, *rid, &r.drivers).await?;
    }
    Ok(new_files)
}

async fn insert_drivers(
    tx: &mut Transaction<'_, Postgres>,
    rid: i32,
    drivers: &[wsus_metadata::DriverMetadata],
) -> Result<()> {
    for d in drivers {
        sqlx::query(
            "INSERT INTO driver (revision_id, hardware_id, driver_ver_date, driver_ver_version, class, manufacturer, \
             provider, model, whql_driver_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING",
        )
        .bind(rid)
        .bind(&d.hardware_id)
        .bind(d.driver_ver_date)
        .bind(d.driver_ver_version.map(|v| v as i64))
        .bind(&d.class)
        .bind(&d.manufacturer)
        .bind(&d.provider)
        .bind(&d.model)
        .bind(&d.whql_driver_id)
        .execute(&mut **tx)
        .await?;
        for (os, score) in &d.feature_scores {
            sqlx::query(
                "INSERT INTO driver_feature_score (revision_id, hardware_id, operating_system, feature_score) \
                 VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING",
            )
            .bind(rid)
            .bind(&d.hardware_id)
            .bind(os)
            .bind(i16::from(*score))
            .execute(&mut **tx)
            .await?;
        }
        for (kind, ids) in
            [("distribution", &d.distribution_computer_hardware_ids), ("target", &d.target_computer_hardware_ids)]
        {
            for id in ids {
                sqlx::query(
                    "INSERT INTO driver_computer_hardware_id (revision_id, hardware_id, kind, computer_hardware_id) \
                     VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING",
                )
                .bind(rid)
                .bind(&d.hardware_id)
                .bind(kind)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}

/// Recomputes the derived columns (IsLeaf, bundles, category membership) from the whole
/// catalog, writes what changed, and bumps the catalog version when anything did.
/// Returns how many revisions changed.
// One function on purpose: one transaction (read the graph, derive, write what changed) whose steps share the
// rows read at its start.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.refresh_derived"))]
pub async fn refresh_derived(pool: &PgPool) -> Result<u64> {
    let mut tx = pool.begin().await?;
    // Serialise with catalog writers so the graph is consistent.
    sqlx::query("SELECT version FROM catalog_state FOR UPDATE").execute(&mut *tx).await?;
    let revisions: Vec<(i32, Uuid, i32, String, bool, bool)> =
        sqlx::query_as("SELECT revision_id, update_id, revision_number, update_type, is_leaf, is_bundle FROM revision")
            .fetch_all(&mut *tx)
            .await?;
    let mut index: HashMap<i32, usize> = HashMap::with_capacity(revisions.len());
    let mut nodes: Vec<RevisionNode> = revisions
        .iter()
        .enumerate()
        .map(|(i, (rid, u, n, t, _, _))| {
            index.insert(*rid, i);
            RevisionNode {
                identity: UpdateIdentity { update_id: *u, revision_number: *n },
                update_type: parse_type(t),
                prerequisites: Vec::new(),
                bundled: Vec::new(),
                superseded: Vec::new(),
            }
        })
        .collect();
    let mut relationships = relationships(&mut tx).await?;
    for (rid, &i) in &index {
        nodes[i].prerequisites = relationships.prerequisites.remove(rid).unwrap_or_default();
        nodes[i].bundled = relationships.bundled.remove(rid).unwrap_or_default();
    }
    let superseded: Vec<(i32, Uuid)> =
        sqlx::query_as("SELECT revision_id, superseded_update_id FROM supersedence").fetch_all(&mut *tx).await?;
    // Rows of a revision deleted meanwhile are passed over.
    for (rid, u) in superseded {
        if let Some(&i) = index.get(&rid) {
            nodes[i].superseded.push(u);
        }
    }
    let current_categories: Vec<(i32, Uuid, bool)> =
        sqlx::query_as("SELECT revision_id, category_update_id, via_bundle FROM revision_category")
            .fetch_all(&mut *tx)
            .await?;
    let mut stored_categories: HashMap<i32, Vec<(Uuid, bool)>> = HashMap::new();
    for (rid, c, via) in current_categories {
        stored_categories.entry(rid).or_default().push((c, via));
    }

    let graph = Graph::new(nodes);
    let derived = graph.derive();
    let (mut flag_ids, mut leaf, mut bundle) = (vec![], vec![], vec![]);
    let mut cat_changed: Vec<i32> = Vec::new();
    let (mut c_rid, mut c_cat, mut c_via) = (vec![], vec![], vec![]);
    for ((rid, _, _, _, old_leaf, old_bundle), d) in revisions.iter().zip(&derived) {
        if d.is_leaf != *old_leaf || d.is_bundle != *old_bundle {
            flag_ids.push(*rid);
            leaf.push(d.is_leaf);
            bundle.push(d.is_bundle);
        }
        let mut stored = stored_categories.remove(rid).unwrap_or_default();
        stored.sort();
        if stored != d.categories {
            cat_changed.push(*rid);
            for (c, via) in &d.categories {
                c_rid.push(*rid);
                c_cat.push(*c);
                c_via.push(*via);
            }
        }
    }
    let changed: HashSet<i32> = flag_ids.iter().chain(&cat_changed).copied().collect();
    if changed.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let version = catalog::bump(&mut *tx).await?;
    sqlx::query(
        "UPDATE revision r SET is_leaf = x.l, is_bundle = x.b \
         FROM unnest($1::int4[], $2::bool[], $3::bool[]) AS x(id, l, b) WHERE r.revision_id = x.id",
    )
    .bind(&flag_ids)
    .bind(&leaf)
    .bind(&bundle)
    .execute(&mut *tx)
    .await?;
    // Every revision whose flags or product and classification membership changed gets
    // this version, in the transaction that writes the membership: a downstream server
    // lists by change version and membership together (GetRevisionIdList), so a revision
    // whose membership arrived after its own import, or changed later, is listed again
    // rather than left behind its anchor.
    let stamped: Vec<i32> = changed.iter().copied().collect();
    sqlx::query("UPDATE revision SET changed_version = $2 WHERE revision_id = ANY($1)")
        .bind(&stamped)
        .bind(version)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM revision_category WHERE revision_id = ANY($1)")
        .bind(&cat_changed)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO revision_category (revision_id, category_update_id, via_bundle) \
         SELECT * FROM unnest($1::int4[], $2::uuid[], $3::bool[])",
    )
    .bind(&c_rid)
    .bind(&c_cat)
    .bind(&c_via)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(changed.len() as u64)
}

pub(crate) fn parse_type(t: &str) -> UpdateType {
    match t {
        "Driver" => UpdateType::Driver,
        "Category" => UpdateType::Category,
        "Detectoid" => UpdateType::Detectoid,
        _ => UpdateType::Software,
    }
}

/// Every revision's prerequisites (CNF) and bundled revisions, by revision id.
pub(crate) struct Relationships {
    pub prerequisites: HashMap<i32, Vec<PrerequisiteClause>>,
    pub bundled: HashMap<i32, Vec<Vec<UpdateIdentity>>>,
}

pub(crate) async fn relationships(tx: &mut Transaction<'_, Postgres>) -> Result<Relationships> {
    let rows: Vec<(i32, i32, Uuid, bool)> = sqlx::query_as(
        "SELECT revision_id, clause, update_id, is_category FROM prerequisite ORDER BY revision_id, clause",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut prerequisites: HashMap<i32, Vec<PrerequisiteClause>> = HashMap::new();
    for (rid, clause, u, cat) in rows {
        let clauses = prerequisites.entry(rid).or_default();
        let clause = clause.max(0) as usize;
        while clauses.len() <= clause {
            clauses.push(PrerequisiteClause { update_ids: Vec::new(), is_category: cat });
        }
        clauses[clause].update_ids.push(u);
    }
    let rows: Vec<(i32, i32, Uuid, i32)> = sqlx::query_as(
        "SELECT revision_id, clause, member_update_id, member_revision_number FROM bundle_member ORDER BY revision_id, clause",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut bundled: HashMap<i32, Vec<Vec<UpdateIdentity>>> = HashMap::new();
    for (rid, clause, u, r) in rows {
        let clauses = bundled.entry(rid).or_default();
        let clause = clause.max(0) as usize;
        while clauses.len() <= clause {
            clauses.push(Vec::new());
        }
        clauses[clause].push(UpdateIdentity { update_id: u, revision_number: r });
    }
    // Gaps in clause numbers would leave empty clauses, and an empty OR never holds.
    for c in prerequisites.values_mut() {
        c.retain(|c| !c.update_ids.is_empty());
    }
    for c in bundled.values_mut() {
        c.retain(|c| !c.is_empty());
    }
    Ok(Relationships { prerequisites, bundled })
}

/// A stored revision's identity and derived columns.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevisionRow {
    pub revision_id: i32,
    pub update_id: Uuid,
    pub revision_number: i32,
    pub update_type: String,
    pub is_leaf: bool,
    pub is_bundle: bool,
}

/// Every revision, by revision id.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.list"))]
pub async fn list(pool: &PgPool) -> Result<Vec<RevisionRow>> {
    Ok(sqlx::query_as(
        "SELECT revision_id, update_id, revision_number, update_type, is_leaf, is_bundle FROM revision ORDER BY revision_id",
    )
    .fetch_all(pool)
    .await?)
}

/// The revision id of a revision.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.revision_id"))]
pub async fn revision_id(pool: &PgPool, identity: UpdateIdentity) -> Result<Option<i32>> {
    let row: Option<(i32,)> =
        sqlx::query_as("SELECT revision_id FROM revision WHERE update_id = $1 AND revision_number = $2")
            .bind(identity.update_id)
            .bind(identity.revision_number)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(id,)| id))
}

/// Whether the catalog holds any revision of `update_id`.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.update_known"))]
pub async fn update_known(pool: &PgPool, update_id: Uuid) -> Result<bool> {
    let (known,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM revision WHERE update_id = $1)")
        .bind(update_id)
        .fetch_one(pool)
        .await?;
    Ok(known)
}

/// One fragment (locale "" for Core and Extended).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.fragment"))]
pub async fn fragment(pool: &PgPool, revision_id: i32, kind: &str, locale: &str) -> Result<Option<String>> {
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT body FROM fragment WHERE revision_id = $1 AND kind = $2 AND locale = $3")
            .bind(revision_id)
            .bind(kind)
            .bind(locale)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(b,)| String::from_utf8_lossy(&b).into_owned()))
}

/// The stored documents of revisions after `after_revision_id`, in revision-id order,
/// at most `limit` (for streaming exports).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.documents_after"))]
pub async fn documents_after(pool: &PgPool, after_revision_id: i32, limit: i64) -> Result<Vec<(i32, String)>> {
    let rows: Vec<(i32, Vec<u8>)> = sqlx::query_as(
        "SELECT revision_id, body FROM revision_xml WHERE revision_id > $1 ORDER BY revision_id LIMIT $2",
    )
    .bind(after_revision_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id, b)| (id, String::from_utf8_lossy(&b).into_owned())).collect())
}

/// The category memberships of a revision: (category, via_bundle).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.categories"))]
pub async fn categories(pool: &PgPool, revision_id: i32) -> Result<Vec<(Uuid, bool)>> {
    Ok(sqlx::query_as(
        "SELECT category_update_id, via_bundle FROM revision_category WHERE revision_id = $1 ORDER BY category_update_id",
    )
    .bind(revision_id)
    .fetch_all(pool)
    .await?)
}

/// A content file as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FileRow {
    pub sha1: Vec<u8>,
    pub sha256: Option<Vec<u8>>,
    pub size: i64,
    pub file_name: String,
    pub mu_url: Option<String>,
    pub content_state: String,
}

/// Every file, by SHA-1.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.files"))]
pub async fn files(pool: &PgPool) -> Result<Vec<FileRow>> {
    Ok(sqlx::query_as("SELECT sha1, sha256, size, file_name, mu_url, content_state FROM file ORDER BY sha1")
        .fetch_all(pool)
        .await?)
}

/// Marks files present in the content store (verified) or absent.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.set_content_state"))]
pub async fn set_content_state(pool: &PgPool, sha1s: &[Vec<u8>], state: &str) -> Result<()> {
    sqlx::query("UPDATE file SET content_state = $2, content_changed_at = now() WHERE sha1 = ANY($1)")
        .bind(sha1s)
        .bind(state)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records where Microsoft Update serves files: (SHA-1, MUUrl).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.set_mu_urls"))]
pub async fn set_mu_urls(pool: &PgPool, urls: &[(Vec<u8>, String)]) -> Result<()> {
    let mut tx = pool.begin().await?;
    update_mu_urls(&mut tx, urls).await?;
    tx.commit().await?;
    Ok(())
}

async fn update_mu_urls(tx: &mut Transaction<'_, Postgres>, urls: &[(Vec<u8>, String)]) -> Result<()> {
    if urls.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE file f SET mu_url = x.u FROM unnest($1::bytea[], $2::text[]) AS x(s, u) \
         WHERE f.sha1 = x.s AND f.mu_url IS DISTINCT FROM x.u",
    )
    .bind(urls.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>())
    .bind(urls.iter().map(|(_, u)| u.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Fragments of these revisions and kinds: (revision id, kind, locale, body).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.fragments_of"))]
pub async fn fragments_of(
    pool: &PgPool,
    revision_ids: &[i32],
    kinds: &[&str],
) -> Result<Vec<(i32, String, String, String)>> {
    let rows: Vec<(i32, String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT revision_id, kind, locale, body FROM fragment WHERE revision_id = ANY($1) AND kind = ANY($2) \
         ORDER BY revision_id, kind, locale",
    )
    .bind(revision_ids)
    .bind(kinds)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(r, k, l, b)| (r, k, l, String::from_utf8_lossy(&b).into_owned())).collect())
}

/// The files of these revisions: (SHA-1, file name), each file once.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.files_of"))]
pub async fn files_of(pool: &PgPool, revision_ids: &[i32]) -> Result<Vec<(Vec<u8>, String)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT f.sha1, f.file_name FROM revision_file rf JOIN file f USING (sha1) WHERE rf.revision_id = ANY($1) ORDER BY 1",
    )
    .bind(revision_ids)
    .fetch_all(pool)
    .await?)
}

/// The files of each of these revisions: (revision id, SHA-1, file name).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.files_by_revision"))]
pub async fn files_by_revision(pool: &PgPool, revision_ids: &[i32]) -> Result<Vec<(i32, Vec<u8>, String)>> {
    Ok(sqlx::query_as(
        "SELECT rf.revision_id, f.sha1, f.file_name FROM revision_file rf JOIN file f USING (sha1) \
         WHERE rf.revision_id = ANY($1) ORDER BY rf.revision_id, rf.ordinal",
    )
    .bind(revision_ids)
    .fetch_all(pool)
    .await?)
}

/// Asks sync-worker to fetch a file the catalog knows (no-op for unknown files or files
/// already queued). A client's miss at `missed_at` proves the store lost a file recorded
/// as present before then: it is marked absent again and fetched. A file that became
/// present after the miss (sync-worker finished it meanwhile) is left alone.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.request_download"))]
pub async fn request_download(
    pool: &PgPool,
    sha1: &[u8; 20],
    reason: &str,
    missed_at: Option<DateTime<Utc>>,
) -> Result<bool> {
    let done = sqlx::query(
        "WITH lost AS (UPDATE file SET content_state = 'absent', content_changed_at = now() \
                       WHERE sha1 = $1 AND $2 = 'client_miss' AND content_state = 'present' \
                       AND content_changed_at < $3 RETURNING sha1) \
         INSERT INTO content_download (sha1, reason) SELECT sha1, $2 FROM file \
         WHERE sha1 = $1 AND (content_state <> 'present' OR EXISTS (SELECT 1 FROM lost)) \
         ON CONFLICT (sha1) DO NOTHING",
    )
    .bind(sha1.as_slice())
    .bind(reason)
    .bind(missed_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// File names of these files the catalog knows: (SHA-1, file name).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.revisions.file_names"))]
pub async fn file_names(pool: &PgPool, sha1s: &[Vec<u8>]) -> Result<Vec<(Vec<u8>, String)>> {
    Ok(sqlx::query_as("SELECT sha1, file_name FROM file WHERE sha1 = ANY($1) ORDER BY sha1")
        .bind(sha1s)
        .fetch_all(pool)
        .await?)
}
