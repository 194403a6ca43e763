//! Prometheus series of the authority clients and outboxes.
//!
//! Every label value is bounded: `authority` is `macao` or `mainland`, `kind` is `inspection`, `prerequisites` or
//! `record`, `outcome` is one of [`OUTCOMES`]. Document numbers, names and keys never appear.

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use clearway_gallery::Authority;

/// Every value the `outcome` label of `clearway_authority_requests_total` takes.
pub const OUTCOMES: [&str; 12] = [
    "cleared",
    "answered",
    "refer",
    "delivered",
    "duplicate",
    "connect",
    "timeout",
    "unavailable",
    "rejected",
    "bad_response",
    "transport",
    "config",
];

/// The series, registered once per registry and shared (cheaply cloned) by both authorities'
/// clients and the outbox.
#[derive(Clone, Debug)]
pub struct AuthorityMetrics {
    pub(crate) depth: IntGaugeVec,
    pub(crate) oldest_age: GaugeVec,
    pub(crate) delivered: IntCounterVec,
    pub(crate) retries: IntCounterVec,
    pub(crate) dead_letters: IntCounterVec,
    pub(crate) requests: IntCounterVec,
    pub(crate) key_epoch: IntGauge,
    pub(crate) write_failures: IntCounter,
    pub(crate) writable: IntGauge,
}

impl AuthorityMetrics {
    /// Creates the series and registers them on `registry`. Fails if they are already registered
    /// there: create them once and clone.
    pub fn new(registry: &Registry) -> prometheus::Result<AuthorityMetrics> {
        let depth = IntGaugeVec::new(
            Opts::new(
                "clearway_outbox_depth",
                "Records queued for an authority and not yet delivered.",
            ),
            &["authority"],
        )?;
        let oldest_age = GaugeVec::new(
            Opts::new(
                "clearway_outbox_oldest_age_seconds",
                "Age of the oldest record queued for an authority (0 when none).",
            ),
            &["authority"],
        )?;
        let delivered = IntCounterVec::new(
            Opts::new(
                "clearway_outbox_delivered_total",
                "Records an authority has acknowledged (new or already held).",
            ),
            &["authority"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "clearway_outbox_retries_total",
                "Delivery attempts that failed retryably and were scheduled again.",
            ),
            &["authority"],
        )?;
        let dead_letters = IntCounterVec::new(
            Opts::new(
                "clearway_outbox_dead_letters_total",
                "Records parked as dead letters (refused for good by the authority, or unreadable on disk).",
            ),
            &["authority"],
        )?;
        let requests = IntCounterVec::new(
            Opts::new(
                "clearway_authority_requests_total",
                "Requests to the authorities by kind (inspection, prerequisites, record) and outcome.",
            ),
            &["authority", "kind", "outcome"],
        )?;
        let key_epoch = IntGauge::new(
            "clearway_outbox_key_epoch",
            "The outbox's key epoch (rises when a cancellation is applied: older keys are destroyed).",
        )?;
        let write_failures = IntCounter::new(
            "clearway_outbox_write_failures_total",
            "Writes the outbox could not make durable (a full or failing disk): the passage they were for did not happen.",
        )?;
        let writable = IntGauge::new(
            "clearway_outbox_writable",
            "1 while the outbox stores records, 0 after a failed write until a probe write succeeds.",
        )?;
        writable.set(1);
        registry.register(Box::new(key_epoch.clone()))?;
        registry.register(Box::new(write_failures.clone()))?;
        registry.register(Box::new(writable.clone()))?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(oldest_age.clone()))?;
        registry.register(Box::new(delivered.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        let m = AuthorityMetrics {
            depth,
            oldest_age,
            delivered,
            retries,
            dead_letters,
            requests,
            key_epoch,
            write_failures,
            writable,
        };
        // Every per-authority series exists from the start (a scrape shows 0, not nothing).
        for a in Authority::ALL {
            let l = [a.as_str()];
            m.depth.with_label_values(&l).set(0);
            m.oldest_age.with_label_values(&l).set(0.0);
            m.delivered.with_label_values(&l);
            m.retries.with_label_values(&l);
            m.dead_letters.with_label_values(&l);
        }
        Ok(m)
    }

    /// Counts one request. `outcome` must be one of [`OUTCOMES`].
    pub(crate) fn request(&self, authority: Authority, kind: &'static str, outcome: &'static str) {
        debug_assert!(OUTCOMES.contains(&outcome), "unbounded outcome {outcome}");
        self.requests
            .with_label_values(&[authority.as_str(), kind, outcome])
            .inc();
    }

    /// Records delivered to `authority` so far (this process).
    pub fn delivered(&self, authority: Authority) -> u64 {
        self.delivered
            .with_label_values(&[authority.as_str()])
            .get()
    }

    /// Retryable failures for `authority` so far (this process).
    pub fn retries(&self, authority: Authority) -> u64 {
        self.retries.with_label_values(&[authority.as_str()]).get()
    }

    /// Dead letters for `authority` so far (this process).
    pub fn dead_letters(&self, authority: Authority) -> u64 {
        self.dead_letters
            .with_label_values(&[authority.as_str()])
            .get()
    }

    /// Requests of `kind` to `authority` with `outcome` so far (this process).
    pub fn requests(&self, authority: Authority, kind: &str, outcome: &str) -> u64 {
        self.requests
            .with_label_values(&[authority.as_str(), kind, outcome])
            .get()
    }
}
