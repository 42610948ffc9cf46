//! The administration layer: every change an administrator makes, and what sync-worker
//! says about synchronization, written once for the management API and the console
//! alike. Handlers parse their request, call here, and render the answer; the HTTP status
//! of a failure comes from its [`ErrorKind`].

use chrono::{DateTime, Utc};
use uuid::Uuid;
use wsus_api::{RunResult, SyncRun, SyncStatus, Trigger};
use wsus_rpc::SyncClient;
use wsus_rpc::sync::{self as pb, GetSyncStatusRequest, ListSyncHistoryRequest, StartCleanupRequest, StartSyncRequest};
use wsus_store::approvals::{self, Action, Approval, ApprovalError, Deployment, Group, GroupError};
use wsus_store::computers::{self, MembershipError};
use wsus_store::{ErrorKind, HasKind, PgPool, StoreError, updates};

mod notifications;

/// The most computers one membership change names.
pub const MAX_MEMBERS_AT_ONCE: usize = 1000;

/// Who made a change, as recorded beside it (the approval's admin name, the EULA's and
/// the decline's author).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Api,
    Console,
}

impl Actor {
    pub fn name(self) -> &'static str {
        match self {
            Actor::Api => "api:admin",
            Actor::Console => "console:admin",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no update {0} in the catalog")]
    UnknownUpdate(Uuid),
    #[error("update {0} has no license terms")]
    NoLicenseTerms(Uuid),
    #[error("the approval was changed concurrently")]
    ChangedConcurrently,
    #[error("computer_ids: 1 to {MAX_MEMBERS_AT_ONCE} ids")]
    MemberCount,
    /// A value the administrator gave that cannot be taken, and why.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What sync-worker answered (or that it did not).
    #[error("sync-worker: {}", .0.message())]
    SyncWorker(tonic::Status),
}

impl HasKind for AdminError {
    fn kind(&self) -> ErrorKind {
        match self {
            AdminError::UnknownUpdate(_) | AdminError::NoLicenseTerms(_) => ErrorKind::NotFound,
            AdminError::ChangedConcurrently => ErrorKind::Conflict,
            AdminError::MemberCount | AdminError::Invalid(_) => ErrorKind::Invalid,
            AdminError::NotFound(_) => ErrorKind::NotFound,
            AdminError::Conflict(_) => ErrorKind::Conflict,
            AdminError::Approval(e) => e.kind(),
            AdminError::Group(e) => e.kind(),
            AdminError::Membership(e) => e.kind(),
            AdminError::Store(e) => e.kind(),
            AdminError::SyncWorker(status) => wsus_service::edge::kind_of_status(status),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// A run as sync-worker reported it, in the API's terms; a word sync-worker should not
/// have sent is its fault.
fn sync_run(r: pb::SyncRun) -> AdminResult<SyncRun> {
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    let unknown =
        |what: &str, v: &str| AdminError::SyncWorker(tonic::Status::internal(format!("unknown {what} {v:?}")));
    Ok(SyncRun {
        sync_id: r.sync_id,
        trigger: Trigger::parse(&r.trigger).ok_or_else(|| unknown("trigger", &r.trigger))?,
        result: RunResult::parse(&r.result).ok_or_else(|| unknown("result", &r.result))?,
        upstream_url: r.upstream_url,
        started_at: r.started_at.as_ref().and_then(wsus_rpc::datetime),
        finished_at: r.finished_at.as_ref().and_then(wsus_rpc::datetime),
        phase: nonempty(r.phase),
        done: r.done,
        total: r.total,
        error: nonempty(r.error),
        revisions_new: r.revisions_new,
        revisions_updated: r.revisions_updated,
        deployments_changed: r.deployments_changed,
        files_queued: r.files_queued,
        bytes_received: r.bytes_received,
        revisions_quarantined: r.revisions_quarantined,
    })
}

/// The administration layer. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    pool: PgPool,
    /// sync-worker's SyncService: synchronization and cleanup are its to run and report.
    sync: SyncClient,
    /// The same, for publications: an installer's upload takes longer than a call's limit.
    publishing: SyncClient,
    /// Whether e-mail can be sent (WSUS_SMTP_URL is set): e-mail channels are refused otherwise.
    mail: bool,
}

impl Admin {
    pub fn new(pool: PgPool, sync: SyncClient) -> Self {
        Self { pool, publishing: sync.clone(), sync, mail: false }
    }

    /// E-mail can be sent (WSUS_SMTP_URL is set).
    pub fn with_mail(mut self, mail: bool) -> Self {
        self.mail = mail;
        self
    }

    /// Publications go through `client` (one whose calls may last as long as an upload).
    pub fn with_publishing(mut self, client: SyncClient) -> Self {
        self.publishing = client;
        self
    }

    async fn known_update(&self, update_id: Uuid) -> AdminResult<updates::Update> {
        updates::get(&self.pool, update_id).await?.ok_or(AdminError::UnknownUpdate(update_id))
    }

    /// Approves an update for a group; with `accept_eula`, its license terms are accepted
    /// in the same transaction (a refused approval leaves them unaccepted).
    pub async fn approve(
        &self,
        by: Actor,
        update_id: Uuid,
        group_id: Uuid,
        action: Action,
        deadline: Option<DateTime<Utc>>,
        accept_eula: bool,
    ) -> AdminResult<Deployment> {
        self.known_update(update_id).await?;
        let approval = Approval { update_id, group_id, action, deadline, admin_name: Some(by.name().to_owned()) };
        let deployment_id = if accept_eula {
            approvals::approve_accepting_eula(&self.pool, &approval, by.name()).await?
        } else {
            approvals::approve(&self.pool, &approval).await?
        };
        tracing::info!(actor = by.name(), %update_id, %group_id, action = action.as_str(), "approved");
        approvals::approvals_of(&self.pool, update_id)
            .await?
            .into_iter()
            .find(|d| d.deployment_id == deployment_id)
            .ok_or(AdminError::ChangedConcurrently)
    }

    /// Accepts the license terms of an update's latest revision; their id.
    pub async fn accept_eula(&self, by: Actor, update_id: Uuid) -> AdminResult<Uuid> {
        let eula_id = self.known_update(update_id).await?.eula_id.ok_or(AdminError::NoLicenseTerms(update_id))?;
        approvals::accept_eula(&self.pool, eula_id, Some(by.name())).await?;
        tracing::info!(actor = by.name(), %update_id, %eula_id, "license terms accepted");
        Ok(eula_id)
    }

    /// Removes a group's own approval; false when it had none.
    pub async fn unapprove(&self, by: Actor, update_id: Uuid, group_id: Uuid) -> AdminResult<bool> {
        let removed = approvals::unapprove(&self.pool, update_id, group_id).await?;
        if removed {
            tracing::info!(actor = by.name(), %update_id, %group_id, "approval removed");
        }
        Ok(removed)
    }

    /// Declines an update; false when it already was.
    pub async fn decline(&self, by: Actor, update_id: Uuid) -> AdminResult<bool> {
        self.known_update(update_id).await?;
        let declined = approvals::decline(&self.pool, update_id, Some(by.name())).await?;
        if declined {
            tracing::info!(actor = by.name(), %update_id, "declined");
        }
        Ok(declined)
    }

    /// Takes a decline back; false when the update was not declined.
    pub async fn undecline(&self, by: Actor, update_id: Uuid) -> AdminResult<bool> {
        self.known_update(update_id).await?;
        let undeclined = approvals::undecline(&self.pool, update_id).await?;
        if undeclined {
            tracing::info!(actor = by.name(), %update_id, "decline taken back");
        }
        Ok(undeclined)
    }

    /// Creates a target group under `parent` (All Computers when None).
    pub async fn create_group(&self, by: Actor, name: &str, parent: Option<Uuid>) -> AdminResult<Group> {
        let group = approvals::add_group(&self.pool, name.trim(), parent).await?;
        tracing::info!(actor = by.name(), group_id = %group.group_id, name = group.name, "group created");
        Ok(group)
    }

    /// Renames or moves a target group.
    pub async fn change_group(
        &self,
        by: Actor,
        group_id: Uuid,
        name: Option<&str>,
        parent: Option<Uuid>,
    ) -> AdminResult<Group> {
        let group = approvals::change_group(&self.pool, group_id, name, parent).await?;
        tracing::info!(actor = by.name(), %group_id, name = group.name, "group changed");
        Ok(group)
    }

    /// Deletes a target group; false when there was none.
    pub async fn delete_group(&self, by: Actor, group_id: Uuid) -> AdminResult<bool> {
        let deleted = approvals::delete_group(&self.pool, group_id).await?;
        if deleted {
            tracing::info!(actor = by.name(), %group_id, "group deleted");
        }
        Ok(deleted)
    }

    /// Puts computers in a group, all or none; how many were not in it yet.
    pub async fn add_members(&self, by: Actor, group_id: Uuid, computer_ids: &[String]) -> AdminResult<u64> {
        if computer_ids.is_empty() || computer_ids.len() > MAX_MEMBERS_AT_ONCE {
            return Err(AdminError::MemberCount);
        }
        let added = computers::add_members(&self.pool, group_id, computer_ids).await?;
        tracing::info!(actor = by.name(), %group_id, added, "computers put in a group");
        Ok(added)
    }

    /// Takes a computer out of a group; false when it was not in it.
    pub async fn remove_member(&self, by: Actor, group_id: Uuid, computer_id: &str) -> AdminResult<bool> {
        let removed = computers::remove_member(&self.pool, group_id, computer_id).await?;
        if removed {
            tracing::info!(actor = by.name(), %group_id, computer_id, "computer taken out of a group");
        }
        Ok(removed)
    }

    /// Where synchronization stands, as sync-worker (which runs it) says.
    pub async fn sync_status(&self) -> AdminResult<SyncStatus> {
        let mut sync = self.sync.clone();
        let s = answer(sync.get_sync_status(GetSyncStatusRequest {}).await)?;
        Ok(SyncStatus {
            upstream_url: (!s.upstream_url.is_empty()).then_some(s.upstream_url),
            replica: s.replica,
            running: s.running.map(sync_run).transpose()?,
            last: s.last.map(sync_run).transpose()?,
        })
    }

    /// Past synchronizations, newest first, older than `before`; with where the next page starts.
    pub async fn sync_history(&self, before: Option<i64>, limit: u32) -> AdminResult<(Vec<SyncRun>, Option<i64>)> {
        let mut sync = self.sync.clone();
        let request = ListSyncHistoryRequest { before_sync_id: before.unwrap_or(0), limit };
        let page = answer(sync.list_sync_history(request).await)?;
        let next = (page.next_before_sync_id > 0).then_some(page.next_before_sync_id);
        Ok((page.runs.into_iter().map(sync_run).collect::<AdminResult<_>>()?, next))
    }

    /// Starts a synchronization now; its id.
    pub async fn start_sync(&self, by: Actor) -> AdminResult<i64> {
        let mut sync = self.sync.clone();
        let started = answer(sync.start_sync(StartSyncRequest { trigger: "manual".into() }).await)?;
        tracing::info!(actor = by.name(), sync_id = started.sync_id, "synchronization started");
        Ok(started.sync_id)
    }

    /// Starts a cleanup run now; its id.
    pub async fn start_cleanup(&self, by: Actor) -> AdminResult<i64> {
        let mut sync = self.sync.clone();
        let started = answer(sync.start_cleanup(StartCleanupRequest {}).await)?;
        tracing::info!(actor = by.name(), run_id = started.run_id, "cleanup started");
        Ok(started.run_id)
    }
}

/// Local publishing, done by sync-worker (it holds the content store and the signing key).
impl Admin {
    /// The signing certificate (NotFound before one is configured or generated).
    pub async fn signing_certificate(&self) -> AdminResult<wsus_api::SigningCertificate> {
        let mut sync = self.sync.clone();
        certificate(answer(sync.get_signing_certificate(pb::GetSigningCertificateRequest {}).await)?)
    }

    /// Generates a self-signed signing certificate, replacing a generated one.
    pub async fn generate_signing_certificate(
        &self,
        request: wsus_api::GenerateCertificate,
        by: Actor,
    ) -> AdminResult<wsus_api::SigningCertificate> {
        let mut sync = self.publishing.clone();
        let generated = answer(
            sync.generate_signing_certificate(pb::GenerateSigningCertificateRequest {
                common_name: request.common_name.unwrap_or_default(),
                valid_days: request.valid_days.unwrap_or(0),
            })
            .await,
        )?;
        tracing::info!(actor = by.name(), thumbprint = generated.thumbprint, "signing certificate generated");
        certificate(generated)
    }

    /// Publishes what `parts` carry: the definition, the installer's bytes, the end.
    pub async fn publish(
        &self,
        parts: impl tokio_stream::Stream<Item = pb::PublishRequest> + Send + 'static,
        by: Actor,
    ) -> AdminResult<wsus_api::Published> {
        let mut sync = self.publishing.clone();
        let published = published(answer(sync.publish(parts).await)?)?;
        tracing::info!(actor = by.name(), update_id = %published.update_id, revision = published.revision_number, "package published");
        Ok(published)
    }

    pub async fn expire_published(&self, update_id: Uuid, by: Actor) -> AdminResult<wsus_api::Published> {
        let mut sync = self.publishing.clone();
        let request = pb::PublishedPackageRequest { update_id: update_id.to_string(), by: by.name().to_owned() };
        let expired = published(answer(sync.expire_published(request).await)?)?;
        tracing::info!(actor = by.name(), %update_id, revision = expired.revision_number, "published package expired");
        Ok(expired)
    }

    pub async fn delete_published(&self, update_id: Uuid, by: Actor) -> AdminResult<u64> {
        let mut sync = self.publishing.clone();
        let request = pb::PublishedPackageRequest { update_id: update_id.to_string(), by: by.name().to_owned() };
        let deleted = answer(sync.delete_published(request).await)?.revisions_deleted;
        tracing::info!(actor = by.name(), %update_id, revisions = deleted, "published package deleted");
        Ok(deleted)
    }
}

fn certificate(c: pb::SigningCertificate) -> AdminResult<wsus_api::SigningCertificate> {
    let time = |t: Option<wsus_rpc::Timestamp>| {
        t.as_ref()
            .and_then(wsus_rpc::datetime)
            .ok_or_else(|| AdminError::SyncWorker(tonic::Status::internal("a certificate without its validity")))
    };
    let not_after = time(c.not_after)?;
    Ok(wsus_api::SigningCertificate {
        subject: c.subject,
        thumbprint: c.thumbprint,
        not_before: time(c.not_before)?,
        not_after,
        // Rounded down, as sync-worker's watch counts: -1 once it has expired.
        days_left: (not_after - Utc::now()).num_seconds().div_euclid(86_400),
        source: c.source,
        certificate_pem: c.certificate_pem,
    })
}

fn published(p: pb::PublishResponse) -> AdminResult<wsus_api::Published> {
    Ok(wsus_api::Published {
        update_id: p
            .update_id
            .parse()
            .map_err(|_| AdminError::SyncWorker(tonic::Status::internal(format!("an update id {:?}", p.update_id))))?,
        revision_number: p.revision_number,
        title: p.title,
        file_sha1: (!p.file_sha1.is_empty()).then_some(p.file_sha1),
        file_size: (p.file_size > 0).then_some(p.file_size),
        expired: p.expired,
    })
}

fn answer<T>(r: Result<tonic::Response<T>, tonic::Status>) -> AdminResult<T> {
    r.map(tonic::Response::into_inner).map_err(AdminError::SyncWorker)
}
