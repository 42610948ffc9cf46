//! Local publishing: the signing certificate and the packages published here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The certificate published Cabinets are signed with. Clients trust it once it is in
/// their Trusted Publishers store (and, self-signed, in Trusted Root).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SigningCertificate {
    pub subject: String,
    /// SHA-1 of the certificate, hex upper case, as Windows' certificate stores show it.
    pub thumbprint: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Days until it expires (negative once it has); renew it well before.
    pub days_left: i64,
    /// `configured` (WSUS_SIGNING_CERTIFICATE_FILE) or `generated`.
    pub source: String,
    /// The certificate, PEM, to distribute to clients.
    pub certificate_pem: String,
}

/// Generate a self-signed signing certificate (replacing a generated one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GenerateCertificate {
    /// Its common name; default "WSUS Publishers Self-signed".
    #[serde(default)]
    pub common_name: Option<String>,
    /// Validity in days; default 1095 (three years).
    #[serde(default)]
    pub valid_days: Option<u32>,
}

/// A published package at its newest revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishedPackage {
    pub update_id: Uuid,
    pub revision_number: i32,
    pub title: String,
    pub vendor: String,
    pub product: String,
    /// The installer inside the signed Cabinet; null for a metadata-only publication.
    #[schema(required = true)]
    pub installer_name: Option<String>,
    /// SHA-1 (hex) of the signed Cabinet clients download; null for metadata only.
    #[schema(required = true)]
    pub file_sha1: Option<String>,
    #[schema(required = true)]
    pub file_size: Option<u64>,
    pub expired: bool,
    #[schema(required = true)]
    pub published_by: Option<String>,
    pub first_published_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

/// What a publication (or an expiry) made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Published {
    pub update_id: Uuid,
    pub revision_number: i32,
    pub title: String,
    #[schema(required = true)]
    pub file_sha1: Option<String>,
    #[schema(required = true)]
    pub file_size: Option<u64>,
    pub expired: bool,
}

/// A deleted package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishedDeleted {
    pub revisions_deleted: u64,
}
