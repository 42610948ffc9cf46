//! Offline transfer for disconnected networks (`wsusutil export/import`, with approvals
//! travelling too): `export` writes one tar file whose first member, `manifest.json`,
//! names every other member with its SHA-256; `import` takes such a file, a directory of
//! update documents, one document, or a saved MS-WSUSSS GetUpdateData response.
//!
//! Imports are idempotent (a re-import changes nothing), atomic per batch of revisions,
//! and resumable (after a kill, run it again: stored revisions are skipped). A tar file is
//! verified whole before anything is stored; a tampered one is refused naming the member.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use uuid::Uuid;
use wsus_export::{
    ADMIN, FILES, FORMAT, FORMAT_VERSION, FileLine, MANIFEST, Manifest, Member, REVISIONS_PREFIX, RevisionLine,
};
use wsus_metadata::{Update, decode_compressed_blob};
use wsus_store::PgPool;
use wsus_store::approvals::{self, AdminState};
use wsus_store::revisions::{self, ImportOutcome, NewRevision};

/// Revisions stored per transaction.
pub const BATCH: usize = 500;

/// The summary an import prints (`--json`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub revisions: u64,
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub files: u64,
    /// Documents that could not be parsed (each reported on standard error).
    pub rejected: u64,
}

impl From<ImportOutcome> for Summary {
    fn from(o: ImportOutcome) -> Self {
        Summary {
            revisions: o.revisions,
            new: o.new,
            updated: o.updated,
            unchanged: o.unchanged,
            files: o.files,
            rejected: 0,
        }
    }
}

/// A progress line on standard error, only when it is a terminal.
struct Progress {
    enabled: bool,
    total: Option<u64>,
    done: u64,
}

impl Progress {
    fn new(total: Option<u64>) -> Self {
        Self { enabled: std::io::stderr().is_terminal(), total, done: 0 }
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        if self.enabled {
            match self.total {
                Some(t) if t > 0 => {
                    let width = 30;
                    let filled = (self.done.min(t) * width / t) as usize;
                    eprint!(
                        "\r[{}{}] {}/{} revisions",
                        "#".repeat(filled),
                        " ".repeat(width as usize - filled),
                        self.done,
                        t
                    );
                }
                _ => eprint!("\r{} revisions", self.done),
            }
        }
    }

    fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}

/// Stores documents in batches, then recomputes the derived graph once.
struct Importer<'a> {
    pool: &'a PgPool,
    pending: Vec<NewRevision>,
    outcome: ImportOutcome,
    rejected: u64,
    progress: Progress,
}

impl<'a> Importer<'a> {
    fn new(pool: &'a PgPool, total: Option<u64>) -> Self {
        Self {
            pool,
            pending: Vec::new(),
            outcome: ImportOutcome::default(),
            rejected: 0,
            progress: Progress::new(total),
        }
    }

    async fn add(&mut self, source: &str, parsed: Result<Update, wsus_metadata::MetadataError>) -> anyhow::Result<()> {
        match parsed {
            Ok(u) => self.add_revision(NewRevision::from_update(&u)).await,
            Err(e) => {
                self.reject(source, &e.to_string());
                Ok(())
            }
        }
    }

    fn reject(&mut self, source: &str, why: &str) {
        eprintln!("rejected {source}: {why}");
        self.rejected += 1;
    }

    async fn add_revision(&mut self, r: NewRevision) -> anyhow::Result<()> {
        self.pending.push(r);
        if self.pending.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.outcome += revisions::import_batch(self.pool, &batch).await?;
        self.progress.advance(batch.len() as u64);
        Ok(())
    }

    async fn finish(mut self) -> anyhow::Result<Summary> {
        self.flush().await?;
        self.progress.finish();
        revisions::refresh_derived(self.pool).await?;
        Ok(Summary { rejected: self.rejected, ..self.outcome.into() })
    }
}

/// Imports whatever `path` holds.
pub async fn import(pool: &PgPool, path: &Path) -> anyhow::Result<Summary> {
    if path.is_dir() {
        return import_directory(pool, path).await;
    }
    let mut head = [0u8; 512];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if n >= 262 && &head[257..262] == b"ustar" {
        return import_export_file(pool, path).await;
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = wsus_metadata::decode_text(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut importer = Importer::new(pool, None);
    if text.contains("ServerSyncUpdateData") {
        for d in update_data_response(&text).with_context(|| format!("{}", path.display()))? {
            match d.revision {
                Ok(r) => importer.add_revision(r).await?,
                Err(e) => importer.reject(&format!("{} ({:?})", path.display(), d.id), &e),
            }
        }
    } else {
        importer.add(&path.display().to_string(), Update::parse(text)).await?;
    }
    importer.finish().await
}

/// Every `*.xml` below `dir`, in name order.
fn xml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

async fn import_directory(pool: &PgPool, dir: &Path) -> anyhow::Result<Summary> {
    let files = xml_files(dir)?;
    let mut importer = Importer::new(pool, Some(files.len() as u64));
    for chunk in files.chunks(BATCH) {
        // Parsing and fragment derivation are CPU work: off the async threads.
        let chunk = chunk.to_vec();
        let parsed = tokio::task::spawn_blocking(move || {
            chunk
                .into_iter()
                .map(|p| {
                    let r = std::fs::read(&p)
                        .map_err(|e| wsus_metadata::MetadataError::Malformed { offset: 0, message: e.to_string() })
                        .and_then(|b| Update::parse_bytes(&b))
                        .map(|u| NewRevision::from_update(&u));
                    (p, r)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        for (path, r) in parsed {
            match r {
                Ok(rev) => importer.add_revision(rev).await?,
                Err(e) => importer.add(&path.display().to_string(), Err(e)).await?,
            }
        }
    }
    importer.finish().await
}

/// One document of a GetUpdateData response: the revision its `Id` names, and the
/// revision as read, or why it could not be read.
pub struct SentDocument {
    pub id: Option<(Uuid, i32)>,
    pub revision: Result<NewRevision, String>,
}

/// The documents of an MS-WSUSSS GetUpdateData response (a saved one, or an upstream's),
/// with their MUUrls. A document that cannot be read is answered as such, apart: one bad
/// document does not make the others unreadable.
pub fn update_data_response(text: &str) -> anyhow::Result<Vec<SentDocument>> {
    let limits = wsus_soap::Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 10_000_000 };
    let envelope =
        wsus_soap::parse_request(text.as_bytes(), &limits).map_err(|e| anyhow!("not a SOAP response: {e}"))?;
    let result =
        descendant(&envelope.operation, "GetUpdateDataResult").ok_or_else(|| anyhow!("no GetUpdateDataResult"))?;
    let mut urls = std::collections::HashMap::new();
    if let Some(list) = result.child("fileUrls") {
        for u in list.children_named("ServerSyncUrlData") {
            let digest = u.child("FileDigest").map(|d| d.value()).unwrap_or_default();
            let sha1 = base64_sha1(digest).ok_or_else(|| anyhow!("fileUrls: bad FileDigest {digest:?}"))?;
            if let Some(mu) = u.child("MUUrl").map(|m| m.value()).filter(|m| !m.is_empty()) {
                urls.insert(sha1, mu.to_owned());
            }
        }
    }
    let updates = result.child("updates").ok_or_else(|| anyhow!("no updates"))?;
    let read = |data: &wsus_soap::Element| -> anyhow::Result<NewRevision> {
        let xml = if let Some(plain) = data.child("XmlUpdateBlob").filter(|b| !b.is_nil() && !b.text.is_empty()) {
            plain.text.clone()
        } else if let Some(c) = data.child("XmlUpdateBlobCompressed") {
            decode_compressed_blob(&c.text)?
        } else {
            bail!("an update without XmlUpdateBlob or XmlUpdateBlobCompressed");
        };
        let mut r = NewRevision::from_update(&Update::parse(xml)?);
        for f in &r.files {
            if let Some(u) = urls.get(&f.sha1) {
                r.mu_urls.insert(f.sha1, u.clone());
            }
        }
        Ok(r)
    };
    Ok(updates
        .children_named("ServerSyncUpdateData")
        .map(|data| {
            let id = data.child("Id").and_then(|i| {
                let u = i.child("UpdateID")?.value().parse().ok()?;
                let n = i.child("RevisionNumber")?.value().parse().ok()?;
                Some((u, n))
            });
            SentDocument { id, revision: read(data).map_err(|e| format!("{e:#}")) }
        })
        .collect())
}

fn descendant<'a>(e: &'a wsus_soap::Element, name: &str) -> Option<&'a wsus_soap::Element> {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        if e.name == name {
            return Some(e);
        }
        stack.extend(e.children.iter());
    }
    None
}

fn base64_sha1(b64: &str) -> Option<[u8; 20]> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok().and_then(|v| v.try_into().ok())
}

/// Reads an export file: verifies every member against the manifest first, then
/// imports revisions, file locations and the administrative state.
async fn import_export_file(pool: &PgPool, path: &Path) -> anyhow::Result<Summary> {
    let manifest = verify_export(path)?;
    let total = manifest.counts.get("revisions").copied();
    let mut importer = Importer::new(pool, total);
    let mut admin: Option<AdminState> = None;
    let mut file_urls: Vec<(Vec<u8>, String)> = Vec::new();
    let mut archive = tar::Archive::new(File::open(path)?);
    for entry in archive.entries()? {
        let entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name.starts_with(REVISIONS_PREFIX) {
            for line in BufReader::new(entry).lines() {
                let line = RevisionLine::decode(&name, &line?)?;
                let parsed = Update::parse(line.xml).and_then(|u| {
                    if u.identity.update_id == line.update_id && u.identity.revision_number == line.revision_number {
                        Ok(u)
                    } else {
                        Err(wsus_metadata::MetadataError::Invalid { what: "identity", value: u.identity.to_string() })
                    }
                });
                importer.add(&format!("{name}: {}/{}", line.update_id, line.revision_number), parsed).await?;
            }
        } else if name == FILES {
            for line in BufReader::new(entry).lines() {
                let (f, sha1) = FileLine::decode(&name, &line?)?;
                if let Some(url) = f.mu_url {
                    file_urls.push((sha1.to_vec(), url));
                }
            }
        } else if name == ADMIN {
            admin = Some(serde_json::from_reader(entry).with_context(|| format!("{name}: not valid"))?);
        }
    }
    let summary = importer.finish().await?;
    wsus_store::revisions::set_mu_urls(pool, &file_urls).await?;
    if let Some(state) = admin {
        approvals::merge_admin_state(pool, &state).await?;
    }
    Ok(summary)
}

/// Checks every member of an export against its manifest; returns the manifest.
pub fn verify_export(path: &Path) -> anyhow::Result<Manifest> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    wsus_export::verify(BufReader::new(file)).with_context(|| format!("{}", path.display()))
}

/// Exports the catalog and the administrative state to `out` (written to a temporary
/// file beside it and renamed into place when complete).
pub async fn export(pool: &PgPool, out: &Path) -> anyhow::Result<Manifest> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new().prefix(".wsus-export-").tempdir_in(dir)?;
    let mut members: Vec<Member> = Vec::new();
    let mut counts = BTreeMap::new();

    // Revisions, in chunks of 1,000 per member.
    let mut after = 0;
    let mut chunk = 0;
    let mut revisions_total = 0u64;
    loop {
        let docs = revisions::documents_after(pool, after, 1000).await?;
        let Some(&(last, _)) = docs.last() else { break };
        after = last;
        chunk += 1;
        let name = format!("revisions/{chunk:05}.ndjson");
        let mut body = Vec::new();
        for (_, xml) in docs {
            let u = Update::parse(xml)?;
            let line = RevisionLine {
                update_id: u.identity.update_id,
                revision_number: u.identity.revision_number,
                xml: u.xml,
            };
            serde_json::to_writer(&mut body, &line)?;
            body.push(b'\n');
            revisions_total += 1;
        }
        members.push(stage(staging.path(), &name, &body)?);
    }
    counts.insert("revisions".to_owned(), revisions_total);

    let files = revisions::files(pool).await?;
    let mut body = Vec::new();
    for f in &files {
        let line = FileLine {
            sha1: hex::encode(&f.sha1),
            sha256: f.sha256.as_ref().map(hex::encode),
            size: f.size,
            file_name: f.file_name.clone(),
            mu_url: f.mu_url.clone(),
        };
        serde_json::to_writer(&mut body, &line)?;
        body.push(b'\n');
    }
    members.push(stage(staging.path(), FILES, &body)?);
    counts.insert("files".to_owned(), files.len() as u64);

    let admin = approvals::admin_state(pool).await?;
    counts.insert("groups".to_owned(), admin.groups.len() as u64);
    counts.insert("deployments".to_owned(), admin.deployments.len() as u64);
    counts.insert("declined".to_owned(), admin.declined.len() as u64);
    counts.insert("accepted_eulas".to_owned(), admin.accepted_eulas.len() as u64);
    members.push(stage(staging.path(), ADMIN, &serde_json::to_vec_pretty(&admin)?)?);

    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        created_at: chrono::Utc::now(),
        counts,
        members: members.clone(),
    };
    let partial = staging.path().join("export.tar");
    {
        let mut builder = tar::Builder::new(std::io::BufWriter::new(File::create(&partial)?));
        append_bytes(&mut builder, MANIFEST, &serde_json::to_vec_pretty(&manifest)?)?;
        for m in &members {
            append_file(&mut builder, &m.name, &staging.path().join(&m.name), m.size)?;
        }
        let mut w = builder.into_inner()?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&partial, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(manifest)
}

fn stage(dir: &Path, name: &str, body: &[u8]) -> anyhow::Result<Member> {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("a folder"))?;
    std::fs::write(&path, body)?;
    Ok(Member::of(name, body))
}

fn append_bytes<W: Write>(builder: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    builder.append_data(&mut wsus_export::header(bytes.len() as u64), name, bytes)?;
    Ok(())
}

fn append_file<W: Write>(builder: &mut tar::Builder<W>, name: &str, path: &Path, size: u64) -> anyhow::Result<()> {
    builder.append_data(&mut wsus_export::header(size), name, File::open(path)?)?;
    Ok(())
}
