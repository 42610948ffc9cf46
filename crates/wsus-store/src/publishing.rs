//! Locally published packages and the generated signing certificate. The revisions a
//! publication brings are stored by `revisions::import_batch` like any other.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Result, catalog};

/// The revision number of a package's first publication.
pub const FIRST_REVISION: i32 = 100;

/// A published package at its newest revision.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PublishedPackage {
    pub update_id: Uuid,
    pub revision_number: i32,
    pub vendor: String,
    pub product: String,
    pub title: String,
    pub installer_name: Option<String>,
    pub file_sha1: Option<Vec<u8>>,
    pub file_sha256: Option<Vec<u8>>,
    pub file_name: Option<String>,
    pub file_size: Option<i64>,
    pub file_modified: Option<DateTime<Utc>>,
    pub expired: bool,
    pub published_by: Option<String>,
    pub first_published_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

const COLUMNS: &str = "update_id, revision_number, vendor, product, title, installer_name, file_sha1, file_sha256, \
                       file_name, file_size, file_modified, expired, published_by, first_published_at, changed_at";

/// What a publication records.
#[derive(Debug, Clone)]
pub struct Publication<'a> {
    pub update_id: Uuid,
    pub revision_number: i32,
    pub vendor: &'a str,
    pub product: &'a str,
    pub title: &'a str,
    pub definition: &'a str,
    pub installer_name: Option<&'a str>,
    pub file: Option<PublishedFileRow<'a>>,
    pub expired: bool,
    pub by: Option<&'a str>,
}

/// The signed Cabinet of a publication.
#[derive(Debug, Clone, Copy)]
pub struct PublishedFileRow<'a> {
    pub sha1: &'a [u8],
    pub sha256: &'a [u8],
    pub name: &'a str,
    pub size: i64,
    pub modified: DateTime<Utc>,
}

/// The revision number the next publication of `update_id` takes: one more than any
/// stored (a package published elsewhere first keeps counting), else [`FIRST_REVISION`].
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.publishing.next_revision"))]
pub async fn next_revision(pool: &PgPool, update_id: Uuid) -> Result<i32> {
    let (max,): (Option<i32>,) = sqlx::query_as("SELECT max(revision_number) FROM revision WHERE update_id = $1")
        .bind(update_id)
        .fetch_one(pool)
        .await?;
    Ok(max.map_or(FIRST_REVISION, |m| m + 1))
}

/// Records a publication (a new package, a new revision of one, or its expiry).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.publishing.record"))]
pub async fn record(pool: &PgPool, p: &Publication<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO published_package (update_id, revision_number, vendor, product, title, definition, installer_name, \
             file_sha1, file_sha256, file_name, file_size, file_modified, expired, published_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (update_id) DO UPDATE SET revision_number = $2, vendor = $3, product = $4, title = $5, \
             definition = $6, installer_name = $7, file_sha1 = $8, file_sha256 = $9, file_name = $10, file_size = $11, \
             file_modified = $12, expired = $13, published_by = $14, changed_at = now()",
    )
    .bind(p.update_id)
    .bind(p.revision_number)
    .bind(p.vendor)
    .bind(p.product)
    .bind(p.title)
    .bind(p.definition)
    .bind(p.installer_name)
    .bind(p.file.map(|f| f.sha1))
    .bind(p.file.map(|f| f.sha256))
    .bind(p.file.map(|f| f.name))
    .bind(p.file.map(|f| f.size))
    .bind(p.file.map(|f| f.modified))
    .bind(p.expired)
    .bind(p.by)
    .execute(pool)
    .await?;
    Ok(())
}

/// Every published package, newest change first.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.publishing.list"))]
pub async fn list(pool: &PgPool) -> Result<Vec<PublishedPackage>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM published_package ORDER BY changed_at DESC, update_id"
    )))
    .fetch_all(pool)
    .await?)
}

/// One published package, and the definition it was published with.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.publishing.get"))]
pub async fn get(pool: &PgPool, update_id: Uuid) -> Result<Option<(PublishedPackage, String)>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT definition FROM published_package WHERE update_id = $1")
        .bind(update_id)
        .fetch_optional(pool)
        .await?;
    let Some((definition,)) = row else { return Ok(None) };
    let package =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM published_package WHERE update_id = $1")))
            .bind(update_id)
            .fetch_one(pool)
            .await?;
    Ok(Some((package, definition)))
}

/// Why a published package cannot be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("no such published package")]
    NotFound,
    #[error("it is approved; remove its approvals first")]
    Approved,
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

impl crate::HasKind for DeleteError {
    fn kind(&self) -> crate::ErrorKind {
        match self {
            DeleteError::NotFound => crate::ErrorKind::NotFound,
            DeleteError::Approved => crate::ErrorKind::Conflict,
            DeleteError::Store(e) => e.kind(),
        }
    }
}

/// Deletes an unapproved published package: its revisions go (their files become
/// unreferenced, for cleanup to remove), and clients holding it are told it is out of
/// scope. Returns the revisions deleted.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.publishing.delete"))]
pub async fn delete(pool: &PgPool, update_id: Uuid) -> std::result::Result<u64, DeleteError> {
    let mut tx = pool.begin().await.map_err(crate::StoreError::from)?;
    let found = sqlx::query("DELETE FROM published_package WHERE update_id = $1")
        .bind(update_id)
        .execute(&mut *tx)
        .await
        .map_err(crate::StoreError::from)?;
    if found.rows_affected() == 0 {
        return Err(DeleteError::NotFound);
    }
    let (approved,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM deployment WHERE update_id = $1 AND deleted_at IS NULL AND action <> 'Block')",
    )
    .bind(update_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(crate::StoreError::from)?;
    if approved {
        return Err(DeleteError::Approved);
    }
    catalog::bump(&mut *tx).await?;
    sqlx::query("DELETE FROM declined_update WHERE update_id = $1")
        .bind(update_id)
        .execute(&mut *tx)
        .await
        .map_err(crate::StoreError::from)?;
    let gone = sqlx::query("DELETE FROM revision WHERE update_id = $1")
        .bind(update_id)
        .execute(&mut *tx)
        .await
        .map_err(crate::StoreError::from)?;
    tx.commit().await.map_err(crate::StoreError::from)?;
    Ok(gone.rows_affected())
}

/// Held while one package is published, expired or deleted, by whichever sync-worker
/// replica: a session lock on a connection of its own, so a process that dies releases it
/// with its connection.
pub struct PackageLock(sqlx::PgConnection);

/// Waits for and takes the lock of `update_id`'s publications.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.publishing.lock"))]
pub async fn lock(pool: &PgPool, update_id: Uuid) -> Result<PackageLock> {
    let mut connection = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('wsus.publishing.' || $1::text, 0))")
        .bind(update_id)
        .execute(&mut connection)
        .await?;
    Ok(PackageLock(connection))
}

impl PackageLock {
    /// Gives the lock back (dropping it closes its connection, which does the same).
    pub async fn release(self) -> Result<()> {
        use sqlx::Connection as _;
        self.0.close().await?;
        Ok(())
    }
}

/// The generated signing certificate and its key (PEM), when one was generated.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.publishing.signing_certificate"))]
pub async fn signing_certificate(pool: &PgPool) -> Result<Option<(String, String)>> {
    Ok(sqlx::query_as("SELECT certificate_pem, key_pem FROM signing_certificate WHERE id = 1")
        .fetch_optional(pool)
        .await?)
}

/// Keeps a generated signing certificate, replacing the one before.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.publishing.set_signing_certificate"))]
pub async fn set_signing_certificate(pool: &PgPool, certificate_pem: &str, key_pem: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO signing_certificate (id, certificate_pem, key_pem) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET certificate_pem = $1, key_pem = $2, created_at = now()",
    )
    .bind(certificate_pem)
    .bind(key_pem)
    .execute(pool)
    .await?;
    Ok(())
}
