//! Local publishing, where the content store and the signing key are: a package
//! definition and its installer become a signed Cabinet in the content store and an
//! update in the catalog (with its vendor's and product's categories), served to clients
//! and downstream servers like any other.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha1::Digest as _;
use uuid::Uuid;
use wsus_config::SigningFiles;
use wsus_content::{Store, Wanted};
use wsus_metadata::Update;
use wsus_publishing::update::{self, CategoryKind};
use wsus_publishing::{Package, Publication, PublishError, PublishedFile};
use wsus_signing::{SigningCertificate, SigningError, cabinet};
use wsus_store::publishing::{self as store, PublishedFileRow};
use wsus_store::revisions::{self, NewRevision};
use wsus_store::{ErrorKind, HasKind, PgPool, StoreError};

/// The largest installer a Cabinet holds: the format's 2 GiB less room for its headers
/// (8 bytes for every 32 KiB block).
pub const MAX_INSTALLER: u64 = 0x7FF0_0000;
/// The longest installer file name (Windows' path component limit, with room).
const MAX_NAME: usize = 200;
/// A generated certificate's common name, as WSUS names its own.
pub const DEFAULT_COMMON_NAME: &str = "WSUS Publishers Self-signed";

#[derive(Debug, thiserror::Error)]
pub enum PublishingError {
    #[error(transparent)]
    Definition(#[from] PublishError),
    #[error("installer: {0}")]
    Installer(String),
    #[error("no signing certificate: configure one (WSUS_SIGNING_CERTIFICATE_FILE) or generate one")]
    NoCertificate,
    #[error("the signing certificate is configured from files; it is not generated here")]
    Configured,
    #[error("no such published package")]
    NotFound,
    #[error("it is approved; remove its approvals first")]
    Approved,
    #[error("it expired already")]
    Expired,
    #[error("it expired: an expired package is not published again (publish one that supersedes it)")]
    ExpiredPackage,
    #[error("{0} is an update this server did not publish: a package cannot take its id")]
    NotPublishedHere(Uuid),
    #[error("the signing certificate expired on {0}: renew it")]
    CertificateExpired(DateTime<Utc>),
    #[error("{0}")]
    Signing(#[from] SigningError),
    #[error("content store: {0}")]
    Content(#[from] wsus_content::ContentError),
    #[error("{0}")]
    Document(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl HasKind for PublishingError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Definition(_) | Self::Installer(_) => ErrorKind::Invalid,
            Self::NoCertificate
            | Self::Configured
            | Self::Approved
            | Self::Expired
            | Self::ExpiredPackage
            | Self::NotPublishedHere(_)
            | Self::CertificateExpired(_) => ErrorKind::Conflict,
            Self::NotFound => ErrorKind::NotFound,
            Self::Store(e) => e.kind(),
            Self::Signing(_) | Self::Content(_) | Self::Document(_) | Self::Io(_) => ErrorKind::Internal,
        }
    }
}

impl From<store::DeleteError> for PublishingError {
    fn from(e: store::DeleteError) -> Self {
        match e {
            store::DeleteError::NotFound => Self::NotFound,
            store::DeleteError::Approved => Self::Approved,
            store::DeleteError::Store(e) => Self::Store(e),
        }
    }
}

/// Where the signing certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateSource {
    Configured,
    Generated,
}

impl CertificateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Configured => "configured",
            Self::Generated => "generated",
        }
    }
}

/// What a publication left in the catalog.
#[derive(Debug, Clone)]
pub struct Published {
    pub update_id: Uuid,
    pub revision_number: i32,
    pub title: String,
    pub file: Option<PublishedFile>,
    pub expired: bool,
}

#[derive(Clone)]
pub struct Publisher {
    pool: PgPool,
    content: Store,
    signing: Option<SigningFiles>,
    /// Local disk where installers arrive and Cabinets are made.
    work: PathBuf,
}

impl Publisher {
    pub fn new(pool: PgPool, content: Store, signing: Option<SigningFiles>, content_dir: &Path) -> Self {
        Self { pool, content, signing, work: content_dir.join(".publishing") }
    }

    /// Removes what publications a crash cut short left (a day old: on a shared content
    /// volume another replica may be publishing now).
    pub fn sweep(content_dir: &Path) {
        let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
        for entry in std::fs::read_dir(content_dir.join(".publishing")).into_iter().flatten().flatten() {
            let stale = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < day_ago);
            if stale && let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove a stale publication folder");
            }
        }
    }

    /// A fresh folder for one publication's files.
    pub fn work_dir(&self) -> std::io::Result<WorkDir> {
        let dir = self.work.join(Uuid::new_v4().to_string());
        std::fs::create_dir_all(&dir)?;
        Ok(WorkDir(dir))
    }

    /// The signing certificate: the configured one (read anew each time, so a renewed
    /// Secret takes effect), else the generated one.
    pub async fn certificate(&self) -> Result<Option<(SigningCertificate, CertificateSource)>, PublishingError> {
        match &self.signing {
            Some(SigningFiles::Pem { certificate, key }) => {
                let (certificate, key) =
                    (tokio::fs::read_to_string(certificate).await?, tokio::fs::read_to_string(key).await?);
                return Ok(Some((SigningCertificate::from_pem(&certificate, &key)?, CertificateSource::Configured)));
            }
            Some(SigningFiles::Pkcs12 { file, password }) => {
                let bytes = tokio::fs::read(file).await?;
                return Ok(Some((SigningCertificate::from_pkcs12(&bytes, password)?, CertificateSource::Configured)));
            }
            None => {}
        }
        match store::signing_certificate(&self.pool).await? {
            Some((certificate, key)) => {
                Ok(Some((SigningCertificate::from_pem(&certificate, &key)?, CertificateSource::Generated)))
            }
            None => Ok(None),
        }
    }

    /// Generates a self-signed certificate and keeps it, replacing a generated one.
    pub async fn generate_certificate(
        &self,
        common_name: &str,
        valid_days: u32,
    ) -> Result<SigningCertificate, PublishingError> {
        if self.signing.is_some() {
            return Err(PublishingError::Configured);
        }
        let name = common_name.trim();
        let name = if name.is_empty() { DEFAULT_COMMON_NAME.to_owned() } else { name.to_owned() };
        let days = if valid_days == 0 { 3 * 365 } else { valid_days.min(20 * 365) };
        let generated = tokio::task::spawn_blocking(move || {
            SigningCertificate::generate(&name, std::time::Duration::from_secs(u64::from(days) * 86_400))
        })
        .await
        .map_err(|e| PublishingError::Document(e.to_string()))??;
        store::set_signing_certificate(&self.pool, &generated.certificate_pem()?, &generated.key_pem()?).await?;
        tracing::info!(thumbprint = generated.thumbprint(), not_after = %generated.not_after(), "signing certificate generated");
        Ok(generated)
    }

    /// Publishes `definition` with the installer at `installer` (its file name as
    /// uploaded), or metadata only.
    pub async fn publish(
        &self,
        definition: &str,
        installer: Option<(&str, &Path)>,
        by: Option<&str>,
    ) -> Result<Published, PublishingError> {
        let package = wsus_publishing::parse(definition)?;
        if package.expired {
            return Err(PublishError::Invalid {
                what: "PublicationState",
                value: "Expired (expire it instead)".into(),
            }
            .into());
        }
        let lock = store::lock(&self.pool, package.package_id).await?;
        let published = async {
            match store::get(&self.pool, package.package_id).await? {
                Some((row, _)) if row.expired => return Err(PublishingError::ExpiredPackage),
                Some(_) => {}
                None if revisions::update_known(&self.pool, package.package_id).await? => {
                    return Err(PublishingError::NotPublishedHere(package.package_id));
                }
                None => {}
            }
            let file = match installer {
                Some((name, path)) => Some(self.signed_cabinet(&package, name, path).await?),
                None => None,
            };
            self.import(&package, definition, file.as_ref(), installer.map(|(n, _)| n), by).await
        }
        .await;
        lock.release().await?;
        published
    }

    /// Publishes the next revision of a published package, expired, and declines it.
    pub async fn expire(&self, update_id: Uuid, by: Option<&str>) -> Result<Published, PublishingError> {
        let lock = store::lock(&self.pool, update_id).await?;
        let expired = self.expire_locked(update_id, by).await;
        lock.release().await?;
        expired
    }

    async fn expire_locked(&self, update_id: Uuid, by: Option<&str>) -> Result<Published, PublishingError> {
        let (row, definition) = store::get(&self.pool, update_id).await?.ok_or(PublishingError::NotFound)?;
        if row.expired {
            return Err(PublishingError::Expired);
        }
        // Declined first: should what follows fail, the update is offered to no one, and
        // expiring it again finishes the job.
        wsus_store::approvals::decline(&self.pool, update_id, Some("publishing: expired")).await?;
        let mut package = wsus_publishing::parse(&definition)?;
        package.expired = true;
        let file = match (row.file_sha1, row.file_sha256, row.file_name, row.file_size, row.file_modified) {
            (Some(sha1), Some(sha256), Some(file_name), Some(size), Some(modified)) => Some(PublishedFile {
                file_name,
                sha1: sha1
                    .try_into()
                    .map_err(|_| PublishingError::Document("a stored SHA-1 of the wrong size".into()))?,
                sha256: sha256
                    .try_into()
                    .map_err(|_| PublishingError::Document("a stored SHA-256 of the wrong size".into()))?,
                size: size as u64,
                modified,
            }),
            _ => None,
        };
        self.import(&package, &definition, file.as_ref(), row.installer_name.as_deref(), by).await
    }

    pub async fn delete(&self, update_id: Uuid) -> Result<u64, PublishingError> {
        let lock = store::lock(&self.pool, update_id).await?;
        let deleted = store::delete(&self.pool, update_id).await;
        lock.release().await?;
        Ok(deleted?)
    }

    /// Checks the installer against the definition, wraps it in a Cabinet, signs it and
    /// puts it in the content store.
    async fn signed_cabinet(
        &self,
        package: &Package,
        name: &str,
        installer: &Path,
    ) -> Result<PublishedFile, PublishingError> {
        // A patch whose definition names no file is the Cabinet's one file, whatever its name.
        let runs = package.item.installer.file().unwrap_or(name);
        if !runs.eq_ignore_ascii_case(name) {
            return Err(PublishingError::Installer(format!(
                "the definition runs {runs:?}; the installer given is {name:?}"
            )));
        }
        let plain = name.len() <= MAX_NAME
            && !name.starts_with('.')
            && !name.ends_with(['.', ' '])
            && !name
                .chars()
                .any(|c| c.is_control() || matches!(c, '/' | '\\' | ':' | '<' | '>' | '"' | '|' | '?' | '*'));
        if !plain {
            return Err(PublishingError::Installer(format!("{name:?} is not a plain Windows file name")));
        }
        let (signer, _) = self.certificate().await?.ok_or(PublishingError::NoCertificate)?;
        if signer.not_after() < Utc::now() {
            return Err(PublishingError::CertificateExpired(signer.not_after()));
        }
        let origin = package.item.origin_file.clone();
        let (name, installer, item) = (runs.to_owned(), installer.to_owned(), package.item.id);
        let made = tokio::task::spawn_blocking(move || -> Result<(PathBuf, PublishedFile), PublishingError> {
            let size = std::fs::metadata(&installer)?.len();
            if size > MAX_INSTALLER {
                return Err(PublishingError::Installer(format!(
                    "{size} bytes; a Cabinet holds at most {MAX_INSTALLER}"
                )));
            }
            if let Some(origin) = &origin {
                check_origin(origin, &installer, size)?;
            }
            let modified = Utc::now();
            let cab = installer.with_file_name(format!("{item}.cab"));
            cabinet::write(&cab, &[(&name, &installer)], modified)?;
            cabinet::sign(&cab, &signer)?;
            let (sha1, sha256, size) = digests(&cab)?;
            Ok((cab.clone(), PublishedFile { file_name: format!("{item}.cab"), sha1, sha256, size, modified }))
        });
        let (cab, file) = made.await.map_err(|e| PublishingError::Document(e.to_string()))??;
        let wanted = Wanted {
            sha1: file.sha1,
            sha256: Some(file.sha256),
            size: Some(file.size),
            file_name: file.file_name.clone(),
        };
        self.content.adopt(wanted, cab).await?;
        Ok(file)
    }

    /// Imports the package's categories (once) and its next revision, and records it.
    async fn import(
        &self,
        package: &Package,
        definition: &str,
        file: Option<&PublishedFile>,
        installer_name: Option<&str>,
        by: Option<&str>,
    ) -> Result<Published, PublishingError> {
        let me = wsus_store::identity::current(&self.pool)
            .await?
            .ok_or_else(|| PublishingError::Document("starting: the server identity is not created yet".into()))?;
        // Without a ProductName, WSUS files a package under its own "Locally published
        // packages" product of the "Local Publisher" company.
        let vendor = package.vendor.as_str();
        let (company, company_name, product_category, product) = match package.products.first() {
            Some(product) => {
                (update::company_id(vendor), vendor, update::product_id(vendor, product), product.as_str())
            }
            None => (
                update::LOCAL_PUBLISHER,
                "Local Publisher",
                update::LOCALLY_PUBLISHED_PACKAGES,
                "Locally published packages",
            ),
        };
        let revision = store::next_revision(&self.pool, package.package_id).await?;
        let classification = package.classification;
        let mut documents = Vec::new();
        for (id, kind, title, parent) in [
            (company, CategoryKind::Company, company_name, None),
            (product_category, CategoryKind::Product, product, Some(company)),
            (classification.category(), CategoryKind::Classification, classification.name(), None),
        ] {
            // Once there, a category stays as it is (a classification synchronised from
            // Microsoft is theirs).
            if !revisions::update_known(&self.pool, id).await? {
                documents.push(update::category_document(id, kind, title, parent, me.server_id, package.creation_date));
            }
        }
        let publication = Publication { package, revision, publisher: me.server_id, product_category, file };
        documents.push(update::update_document(&publication)?);
        let revisions = documents
            .into_iter()
            .map(|d| Update::parse(d).map(|u| NewRevision::from_update(&u)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PublishingError::Document(format!("a generated document does not read back: {e}")))?;
        revisions::import_batch(&self.pool, &revisions).await?;
        revisions::refresh_derived(&self.pool).await?;
        if let Some(f) = file {
            revisions::set_content_state(&self.pool, &[f.sha1.to_vec()], "present").await?;
        }
        let title = package.localized[0].title.clone();
        store::record(
            &self.pool,
            &store::Publication {
                update_id: package.package_id,
                revision_number: revision,
                vendor,
                product,
                title: &title,
                definition,
                installer_name,
                file: file.map(|f| PublishedFileRow {
                    sha1: &f.sha1,
                    sha256: &f.sha256,
                    name: &f.file_name,
                    size: f.size as i64,
                    modified: f.modified,
                }),
                expired: package.expired,
                by,
            },
        )
        .await?;
        tracing::info!(update_id = %package.package_id, revision, title, expired = package.expired, "published");
        Ok(Published {
            update_id: package.package_id,
            revision_number: revision,
            title,
            file: file.cloned(),
            expired: package.expired,
        })
    }
}

/// A publication's folder, removed with what is left in it.
pub struct WorkDir(pub PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The installer is the one the definition was written for, when it says which.
fn check_origin(origin: &wsus_publishing::sdp::OriginFile, installer: &Path, size: u64) -> Result<(), PublishingError> {
    if let Some(expected) = origin.size.filter(|s| *s != size) {
        return Err(PublishingError::Installer(format!("{size} bytes; the definition says {expected}")));
    }
    if let Some(expected) = &origin.digest {
        let (sha1, _, _) = digests(installer)?;
        let actual = base64::engine::general_purpose::STANDARD.encode(sha1);
        if &actual != expected {
            return Err(PublishingError::Installer(format!("its SHA-1 is {actual}; the definition says {expected}")));
        }
    }
    Ok(())
}

/// SHA-1, SHA-256 and size of a file.
fn digests(path: &Path) -> std::io::Result<([u8; 20], [u8; 32], u64)> {
    let mut file = std::fs::File::open(path)?;
    let (mut sha1, mut sha256, mut size) = (sha1::Sha1::new(), sha2::Sha256::new(), 0u64);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha1.update(&buf[..n]);
        sha2::Digest::update(&mut sha256, &buf[..n]);
        size += n as u64;
    }
    Ok((sha1.finalize().into(), sha256.finalize().into(), size))
}

/// Whole days from `now` until `not_after`, rounded down: -1 as soon as it has expired.
pub fn days_left(not_after: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (not_after - now).num_seconds().div_euclid(86_400)
}

/// Below this many days left, the certificate is warned about every day.
pub const RENEW_WITHIN_DAYS: i64 = 30;

/// The stage of a certificate's end `days_left` is in: administrators are told once on
/// entering each (under 30, 14, 7 and 1 days; expired), not every day.
pub fn expiry_stage(days_left: i64) -> Option<&'static str> {
    match days_left {
        d if d < 0 => Some("expired"),
        d if d < 1 => Some("1"),
        d if d < 7 => Some("7"),
        d if d < 14 => Some("14"),
        d if d < RENEW_WITHIN_DAYS => Some("30"),
        _ => None,
    }
}

/// Looks every hour whether the signing certificate is near its end (or past it), so it
/// is renewed before clients start refusing what it signs: tells the notification channels
/// once per stage (one replica tells: the store remembers what was told), and warns in the
/// log once a day.
pub async fn watch_certificate(publisher: Publisher, stop: tokio_util::sync::CancellationToken) {
    const LOOK: std::time::Duration = std::time::Duration::from_secs(3600);
    const WARN: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    let mut warned: Option<std::time::Instant> = None;
    // A moment after start, so the first look does not race the service's own start.
    let mut pause = std::time::Duration::from_secs(5);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = LOOK;
        match publisher.certificate().await {
            Ok(Some((c, source))) => {
                let left = days_left(c.not_after(), Utc::now());
                let Some(stage) = expiry_stage(left) else { continue };
                let payload = serde_json::json!({
                    "thumbprint": c.thumbprint(),
                    "not_after": c.not_after(),
                    "days_left": left,
                    "source": source.as_str(),
                });
                let subject = format!("{}:{stage}", c.thumbprint());
                let kind = wsus_store::notifications::EventKind::CertificateExpiring;
                let told = wsus_store::notifications::tell_once(&publisher.pool, kind, &subject, &payload)
                    .await
                    .inspect_err(|e| tracing::warn!(error = %e, "cannot tell of the signing certificate's end now"))
                    .unwrap_or(false);
                if told || warned.is_none_or(|at| at.elapsed() >= WARN) {
                    warned = Some(std::time::Instant::now());
                    tracing::warn!(
                        days_left = left,
                        thumbprint = c.thumbprint(),
                        source = source.as_str(),
                        "the signing certificate expires soon: renew it and give clients the new one"
                    );
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the signing certificate"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_are_rounded_down_so_an_ended_certificate_is_expired_at_once() {
        let end: DateTime<Utc> = "2026-12-10T12:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(days_left(end, at("2026-12-10T11:00:00Z")), 0);
        assert_eq!(expiry_stage(days_left(end, at("2026-12-10T11:00:00Z"))), Some("1"));
        assert_eq!(days_left(end, at("2026-12-10T13:00:00Z")), -1);
        assert_eq!(expiry_stage(days_left(end, at("2026-12-10T13:00:00Z"))), Some("expired"));
        assert_eq!(days_left(end, at("2026-11-30T12:00:01Z")), 9);
    }

    #[test]
    fn a_certificate_is_told_of_once_per_stage_of_its_end() {
        let stages: Vec<Option<&str>> = [45, 30, 29, 14, 13, 7, 6, 1, 0, -1].into_iter().map(expiry_stage).collect();
        assert_eq!(
            stages,
            [
                None,
                None,
                Some("30"),
                Some("30"),
                Some("14"),
                Some("14"),
                Some("7"),
                Some("7"),
                Some("1"),
                Some("expired")
            ]
        );
    }
}
