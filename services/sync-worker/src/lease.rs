//! Which sync-worker replica synchronises, when it runs in Kubernetes: the holder of a
//! `coordination.k8s.io/v1` Lease (outside a cluster the Postgres advisory lock alone
//! decides). A holder renews the Lease while it works and gives it back when done; a
//! holder that vanished loses it once `lease_duration` passes without renewal.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

/// The Lease sync-worker replicas share, unless `WSUS_LEASE_NAME` names another (the
/// Helm chart names it after the release, so two releases in a namespace do not meet).
pub const LEASE_NAME: &str = "wsus-sync-worker";
/// How long a Lease holds without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(30);

pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    holder: String,
    duration: Duration,
}

impl std::fmt::Debug for LeaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseLock").field("name", &self.name).field("holder", &self.holder).finish()
    }
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl LeaseLock {
    pub fn new(client: kube::Client, namespace: &str, name: &str, holder: &str, duration: Duration) -> Self {
        Self { api: Api::namespaced(client, namespace), name: name.to_owned(), holder: holder.to_owned(), duration }
    }

    /// This pod's lock when running in a cluster (a service account is mounted); None
    /// outside one. The holder is the pod's name.
    pub fn in_cluster() -> Option<Self> {
        let config = kube::Config::incluster().ok()?;
        let namespace = config.default_namespace.clone();
        let client = match kube::Client::try_from(config) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "in a cluster, but no Kubernetes client; syncing under the database lock only");
                return None;
            }
        };
        let holder = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string());
        let name =
            std::env::var("WSUS_LEASE_NAME").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| LEASE_NAME.to_owned());
        tracing::info!(namespace, holder, lease = name, "in a cluster: syncs take the Lease");
        Some(Self::new(client, &namespace, &name, &holder, LEASE_DURATION))
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Takes (or renews) the Lease; false when another live holder has it. Concurrent
    /// attempts are settled by the API server's resourceVersion check.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let seconds = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX).max(1);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.holder.clone()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_duration_seconds: Some(seconds),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if conflict(&e) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.holder.as_str());
        let expires =
            spec.renew_time.as_ref().map(|t| t.0.as_second() + i64::from(spec.lease_duration_seconds.unwrap_or(0)));
        let live = expires.is_some_and(|e| e > now.as_second());
        if holder.is_some() && !mine && live {
            return Ok(false);
        }
        if !mine {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.holder.clone());
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(seconds);
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(e) if conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease back if this replica holds it.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else { return Ok(()) };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.holder.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            // Someone else took it meanwhile: it is not ours to give back.
            Err(e) if conflict(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Renews the Lease every third of its duration until dropped (abort the task).
    pub fn keep_renewed(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(this.duration / 3).await;
                match this.try_acquire().await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(holder = this.holder, "the sync Lease was taken by another replica"),
                    Err(e) => tracing::warn!(error = %e, "cannot renew the sync Lease"),
                }
            }
        })
    }
}
