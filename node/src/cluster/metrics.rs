//! The node's cluster metrics, on an explicit `prometheus::Registry` (no global statics), refreshed
//! from the node's status at each scrape. Labels are bounded: a peer label is a node id of this
//! port (a handful to ~70), a model label is a model id; never a person, document or face.

use prometheus::{Encoder, Gauge, IntCounter, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use super::protocol::NodeStatus;

/// Cluster metrics of one node.
pub struct Metrics {
    registry: Registry,
    term: IntGauge,
    state: IntGaugeVec,
    last_log_index: IntGauge,
    applied_index: IntGauge,
    snapshot_index: IntGauge,
    purged_index: IntGauge,
    replication_lag: IntGaugeVec,
    staleness: Gauge,
    snapshot_receiving_bytes: IntGauge,
    snapshots_installed: IntCounter,
    persons: IntGauge,
    templates: IntGaugeVec,
    key_epoch: IntGauge,
    shredded_index: IntGauge,
    voters: IntGauge,
    learners: IntGauge,
    certificate_expiry: IntGaugeVec,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    /// Registers the cluster metrics on `registry`.
    pub fn new(registry: Registry) -> prometheus::Result<Metrics> {
        let r = &registry;
        let snapshots_installed = IntCounter::new(
            "clearway_cluster_snapshots_installed_total",
            "Snapshots received from a leader and installed.",
        )?;
        r.register(Box::new(snapshots_installed.clone()))?;
        Ok(Metrics {
            term: gauge(r, "clearway_cluster_term", "Current Raft term.")?,
            state: gauge_vec(
                r,
                "clearway_cluster_state",
                "1 for this node's Raft state.",
                &["state"],
            )?,
            last_log_index: gauge(
                r,
                "clearway_cluster_last_log_index",
                "Last Raft log index held.",
            )?,
            applied_index: gauge(
                r,
                "clearway_cluster_applied_index",
                "Last log index applied to the gallery.",
            )?,
            snapshot_index: gauge(
                r,
                "clearway_cluster_snapshot_index",
                "Last log index covered by a snapshot.",
            )?,
            purged_index: gauge(r, "clearway_cluster_purged_index", "Last log index purged.")?,
            replication_lag: gauge_vec(
                r,
                "clearway_cluster_replication_lag_entries",
                "Leader only: log entries each follower or learner is behind.",
                &["peer"],
            )?,
            staleness: {
                let g = Gauge::new(
                    "clearway_cluster_staleness_seconds",
                    "How long ago this replica last heard from a leader (leader: since its quorum last acknowledged); -1 if never.",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            snapshot_receiving_bytes: gauge(
                r,
                "clearway_cluster_snapshot_receiving_bytes",
                "Bytes received of the snapshot being installed (0 when none).",
            )?,
            snapshots_installed,
            persons: gauge(
                r,
                "clearway_gallery_persons",
                "Registered persons in the local replica.",
            )?,
            templates: gauge_vec(
                r,
                "clearway_gallery_templates",
                "Templates in the local 1:N index.",
                &["model"],
            )?,
            key_epoch: gauge(
                r,
                "clearway_storage_key_epoch",
                "Storage key epoch (rises when a cancellation is shredded).",
            )?,
            shredded_index: gauge(
                r,
                "clearway_storage_shredded_index",
                "Log index of the latest cancellation shredded from this node's disk.",
            )?,
            voters: gauge(r, "clearway_cluster_voters", "Voting members.")?,
            learners: gauge(
                r,
                "clearway_cluster_learners",
                "Non-voting members (lane nodes).",
            )?,
            certificate_expiry: gauge_vec(
                r,
                "clearway_certificate_expiry_timestamp_seconds",
                "When a certificate this node uses expires (notAfter), Unix time.",
                &["certificate"],
            )?,
            registry,
        })
    }

    /// The registry these metrics live on; the lane runtime registers its own beside them so
    /// one scrape of the node sees everything.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records when a certificate expires; `certificate` names its role (`node`, `port_ca`,
    /// `macao_client`, …), never its subject.
    pub fn certificate_expires(&self, certificate: &str, not_after_unix: i64) {
        self.certificate_expiry
            .with_label_values(&[certificate])
            .set(not_after_unix);
    }

    /// Counts one installed snapshot.
    pub fn snapshot_installed(&self) {
        self.snapshots_installed.inc();
    }

    /// Sets the bytes received of the snapshot in flight.
    pub fn snapshot_receiving(&self, bytes: u64) {
        self.snapshot_receiving_bytes.set(bytes as i64);
    }

    /// Refreshes from `status` and renders the registry in the text exposition format.
    pub fn render(&self, status: &NodeStatus, staleness_ms: Option<u64>, model: &str) -> String {
        let i = |v: Option<u64>| v.map_or(0, |v| v as i64);
        self.term.set(status.term as i64);
        for s in ["leader", "follower", "learner", "candidate", "shutdown"] {
            self.state
                .with_label_values(&[s])
                .set(i64::from(status.state == s));
        }
        self.last_log_index.set(i(status.last_log_index));
        self.applied_index.set(i(status.applied_index));
        self.snapshot_index.set(i(status.snapshot_index));
        self.purged_index.set(i(status.purged_index));
        self.replication_lag.reset();
        let last = i(status.last_log_index);
        for (peer, matched) in &status.replication {
            if *peer != status.id {
                self.replication_lag
                    .with_label_values(&[&peer.to_string()])
                    .set((last - i(*matched)).max(0));
            }
        }
        self.staleness
            .set(staleness_ms.map_or(-1.0, |v| v as f64 / 1000.0));
        self.persons.set(status.persons as i64);
        self.templates
            .with_label_values(&[model])
            .set(status.indexed_templates as i64);
        self.key_epoch.set(i64::from(status.key_epoch));
        self.shredded_index.set(status.shredded_index as i64);
        self.voters.set(status.voters.len() as i64);
        self.learners.set(status.learners.len() as i64);
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
