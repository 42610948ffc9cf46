//! Admission control for the SOAP services. Under a scan storm, accepting every request
//! would queue them all in the runtime: each holding its body and, later, its answer,
//! memory and latency growing without bound. Instead at most `max_inflight` requests are
//! in their handlers at once, at most `max_queued` more wait for a slot (holding only a
//! connection and the headers), each for at most `wait`; anything beyond is refused at
//! once, before its body is read, with a ServerBusy fault and a Retry-After.
//!
//! Three classes share nothing but the metrics: clients' scans and the rest of the client
//! protocol (CPU-bound in the gateway); event reports (ReportEventBatch: I/O-bound, each
//! waits for its events to be stored durably, and the more wait together the more a commit
//! carries); and downstream servers (MS-WSUSSS server-sync and rollup). Reports get
//! [`REPORT_FACTOR`] times the slots, so a scan storm's slots do not cap event ingestion
//! (with one budget, 16 slots on 2 CPUs held durable ingestion to 14,500 events/s instead
//! of 20,600). Downstream servers get slots of their own, so a scan storm never turns a
//! downstream's sync into ServerBusy: a Windows downstream stops its sync at the first
//! ServerBusy and does not retry (MS-WSUSSS endnote <10>).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wsus_service::{Counter, Gauge, Metrics};

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Every slot busy and the queue full.
    QueueFull,
    /// Queued, but no slot came free in time.
    WaitedTooLong,
}

impl Shed {
    fn label(self) -> &'static str {
        match self {
            Shed::QueueFull => "queue_full",
            Shed::WaitedTooLong => "wait_timeout",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    class: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

/// Event reports get this many times the slots and queue places of the other requests.
pub const REPORT_FACTOR: usize = 4;

/// Downstream servers are few and their requests heavier (a GetUpdateData of 100
/// documents, a RollupComputerStatus of tens of MB): a few slots, a long wait, as a
/// downstream server would rather wait than stop.
pub const SERVER_SLOTS: usize = 4;
pub const SERVER_QUEUE: usize = 64;
pub const SERVER_WAIT: Duration = Duration::from_secs(60);

/// The admission metrics of every class, registered once.
#[derive(Clone, Default)]
pub struct AdmissionMetrics {
    in_flight: Family<ClassLabels, Gauge>,
    queued: Family<ClassLabels, Gauge>,
    shed: Family<ShedLabels, Counter>,
}

impl AdmissionMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let m = Self::default();
        metrics.register(
            "soap_in_flight",
            "SOAP requests in their handlers, by class (at most WSUS_SOAP_MAX_INFLIGHT; reports 4 times that)",
            m.in_flight.clone(),
        );
        metrics.register(
            "soap_queued",
            "SOAP requests waiting for a handler slot, by class (at most WSUS_SOAP_MAX_QUEUED; reports 4 times that)",
            m.queued.clone(),
        );
        metrics.register(
            "soap_shed",
            "SOAP requests refused with ServerBusy before their body was read, by class and reason",
            m.shed.clone(),
        );
        m
    }
}

/// The limits (from `WSUS_SOAP_MAX_INFLIGHT`, `WSUS_SOAP_MAX_QUEUED`,
/// `WSUS_SOAP_QUEUE_WAIT_MS`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_inflight: usize,
    pub max_queued: usize,
    pub wait: Duration,
}

pub struct Admission {
    class: &'static str,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    limits: Limits,
    in_flight_gauge: Gauge,
    queued_gauge: Gauge,
    shed: Family<ShedLabels, Counter>,
    started: Instant,
    /// Seconds since `started` before which shedding is not logged again.
    next_warning: AtomicU64,
}

/// A slot in the handlers, given back when dropped.
pub struct Permit {
    _slot: OwnedSemaphorePermit,
    in_flight: Gauge,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

/// A place in the queue, given back when dropped (also when the client goes away while
/// waiting, which drops the waiting future).
struct Place<'a>(&'a Admission);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::AcqRel);
        self.0.queued_gauge.dec();
    }
}

/// How often, at most, shedding is logged: under overload a line per request would add
/// to the load.
const WARN_EVERY_SECS: u64 = 10;

impl Admission {
    /// One class's admission ("scans", "reports" or "servers"), counted in `metrics`.
    pub fn new(class: &'static str, limits: Limits, metrics: &AdmissionMetrics) -> Self {
        let labels = ClassLabels { class };
        let admission = Self {
            class,
            slots: Arc::new(Semaphore::new(limits.max_inflight)),
            queued: AtomicUsize::new(0),
            limits,
            in_flight_gauge: metrics.in_flight.get_or_create(&labels).clone(),
            queued_gauge: metrics.queued.get_or_create(&labels).clone(),
            shed: metrics.shed.clone(),
            started: Instant::now(),
            next_warning: AtomicU64::new(0),
        };
        // Every series exists from the start, so a rate over them is defined before any shedding.
        for reason in [Shed::QueueFull, Shed::WaitedTooLong] {
            let _ = admission.shed.get_or_create(&ShedLabels { class, reason: reason.label() });
        }
        admission
    }

    /// A handler slot, at once or after waiting in the queue; or why not.
    pub async fn admit(&self) -> Result<Permit, Shed> {
        // The semaphore is fair: a free slot here means nobody is queued ahead.
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(self.admitted(slot));
        }
        let max = self.limits.max_queued;
        if self.queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| (q < max).then_some(q + 1)).is_err() {
            return Err(self.refuse(Shed::QueueFull));
        }
        self.queued_gauge.inc();
        let place = Place(self);
        let outcome = tokio::time::timeout(self.limits.wait, self.slots.clone().acquire_owned()).await;
        drop(place);
        match outcome {
            Ok(Ok(slot)) => Ok(self.admitted(slot)),
            // The semaphore is never closed; treat it as a timeout all the same.
            Ok(Err(_)) | Err(_) => Err(self.refuse(Shed::WaitedTooLong)),
        }
    }

    fn admitted(&self, slot: OwnedSemaphorePermit) -> Permit {
        self.in_flight_gauge.inc();
        Permit { _slot: slot, in_flight: self.in_flight_gauge.clone() }
    }

    fn refuse(&self, why: Shed) -> Shed {
        self.shed.get_or_create(&ShedLabels { class: self.class, reason: why.label() }).inc();
        let now = self.started.elapsed().as_secs();
        let next = self.next_warning.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_warning
                .compare_exchange(next, now + WARN_EVERY_SECS, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                class = self.class,
                reason = why.label(),
                max_inflight = self.limits.max_inflight,
                max_queued = self.limits.max_queued,
                "overloaded: refusing SOAP requests with ServerBusy (see wsus_soap_shed_total)"
            );
        }
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_inflight: usize, max_queued: usize, wait_ms: u64) -> Arc<Admission> {
        let metrics = AdmissionMetrics::register(&Metrics::new("test"));
        let limits = Limits { max_inflight, max_queued, wait: Duration::from_millis(wait_ms) };
        Arc::new(Admission::new("scans", limits, &metrics))
    }

    #[tokio::test]
    async fn beyond_the_slots_and_the_queue_requests_are_refused() {
        let a = admission(2, 1, 5_000);
        let first = a.admit().await.unwrap();
        let _second = a.admit().await.unwrap();
        // The third waits in the queue; the fourth finds it full.
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.admit().await.map(|_| ()) }
        });
        while a.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(a.admit().await.err(), Some(Shed::QueueFull));
        // A slot given back goes to the one waiting.
        drop(first);
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!(a.queued.load(Ordering::Acquire), 0);
        assert_eq!(a.in_flight_gauge.get(), 1);
    }

    #[tokio::test]
    async fn a_queued_request_waits_only_so_long() {
        let a = admission(1, 4, 50);
        let _held = a.admit().await.unwrap();
        let started = Instant::now();
        assert_eq!(a.admit().await.err(), Some(Shed::WaitedTooLong));
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(a.queued.load(Ordering::Acquire), 0, "the place was given back");
        assert_eq!(a.queued_gauge.get(), 0);
        let text = {
            let metrics = Metrics::new("test");
            let families = AdmissionMetrics::register(&metrics);
            let scans = Admission::new("scans", a.limits, &families);
            let reports = Admission::new("reports", a.limits, &families);
            scans.refuse(Shed::WaitedTooLong);
            drop(reports.admit().await.unwrap());
            metrics.encode()
        };
        assert!(
            text.contains("wsus_soap_shed_total{service=\"test\",class=\"scans\",reason=\"wait_timeout\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("wsus_soap_shed_total{service=\"test\",class=\"reports\",reason=\"wait_timeout\"} 0"),
            "{text}"
        );
        assert!(text.contains("wsus_soap_in_flight{service=\"test\",class=\"reports\"} 0"), "{text}");
    }

    #[tokio::test]
    async fn a_client_that_goes_away_while_queued_gives_its_place_back() {
        let a = admission(1, 1, 60_000);
        let held = a.admit().await.unwrap();
        let gone = tokio::spawn({
            let a = a.clone();
            async move { a.admit().await.map(|_| ()) }
        });
        while a.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        gone.abort();
        let _ = gone.await;
        assert_eq!(a.queued.load(Ordering::Acquire), 0);
        drop(held);
        assert!(a.admit().await.is_ok());
    }
}
