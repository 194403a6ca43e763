//! The node's cluster metrics, on an explicit `prometheus::Registry` (no global statics), refreshed
//! from the node's status at each scrape. Labels are bounded: a peer label is a node id of this
//! port (a handful to ~70), a model label is a model id; never a person, document or face.

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use super::protocol::NodeStatus;
use super::typ::NodeId;

/// The label values of a vector without labels (present only on the leader).
const NO_LABELS: &[&str] = &[];

/// What a scrape reads from the running node.
pub struct Live {
    /// The node's view of the cluster.
    pub status: NodeStatus,
    /// Milliseconds since this replica last knew itself in touch with the cluster.
    pub staleness_ms: Option<u64>,
    /// Open QUIC connections of the node's endpoint.
    pub quic_connections: usize,
    /// How long ago each peer last answered this node's Raft messages.
    pub contact_ages: BTreeMap<NodeId, Duration>,
    /// A voter that answered within this long counts as reachable.
    pub reachable_within: Duration,
}

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
    commit_index: IntGaugeVec,
    voters_reachable: IntGaugeVec,
    peer_contact_age: GaugeVec,
    quic_connections: IntGauge,
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
    refused: IntCounterVec,
    person_reads: IntCounterVec,
    audit_records: IntGauge,
    audit_head: IntGauge,
    revoked_certificates: IntGauge,
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
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
            refused: counter_vec(
                r,
                "clearway_cluster_calls_refused_total",
                "Calls and connections this node refused, by call (or connection reason) and the caller's role.",
                &["call", "role"],
            )?,
            person_reads: counter_vec(
                r,
                "clearway_cluster_person_reads_total",
                "Reads of person records (by id or document) this node answered, by the caller's role and result.",
                &["role", "result"],
            )?,
            audit_records: gauge(
                r,
                "clearway_audit_records",
                "Audit records in this node's replica.",
            )?,
            audit_head: gauge(
                r,
                "clearway_audit_head_prefix",
                "The first 48 bits of the newest audit record's hash, as a number: replicas at the same applied index agree; Prometheus keeps an outside copy.",
            )?,
            revoked_certificates: gauge(
                r,
                "clearway_cluster_revoked_certificates",
                "Certificates on the port's replicated revocation list, as this node applied it.",
            )?,
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
            commit_index: gauge_vec(
                r,
                "clearway_cluster_commit_index",
                "Leader only: the highest log index a quorum of voters holds.",
                &[],
            )?,
            voters_reachable: gauge_vec(
                r,
                "clearway_cluster_voters_reachable",
                "Leader only: voters (itself included) that answered it within the longest election timeout.",
                &[],
            )?,
            peer_contact_age: {
                let g = GaugeVec::new(
                    Opts::new(
                        "clearway_cluster_peer_contact_age_seconds",
                        "How long ago each node this one sends Raft messages to (a leader: every member) last answered.",
                    ),
                    &["peer"],
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            quic_connections: gauge(
                r,
                "clearway_quic_connections",
                "Open QUIC connections of this node's endpoint, both directions.",
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

    /// Counts a refused call (`call`: its name, or why a connection was refused) from `role`.
    pub fn refused(&self, call: &str, role: &str) {
        self.refused.with_label_values(&[call, role]).inc();
    }

    /// Counts a person read by a caller of `role` (`result`: `answered` or `rate_limited`).
    pub fn person_read(&self, role: &str, result: &str) {
        self.person_reads.with_label_values(&[role, result]).inc();
    }

    /// Sets the number of revoked certificates.
    pub fn revoked_certificates(&self, n: usize) {
        self.revoked_certificates.set(n as i64);
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

    /// Refreshes from the node and renders the registry in the text exposition format.
    pub fn render(&self, live: &Live, model: &str) -> String {
        let status = &live.status;
        let staleness_ms = live.staleness_ms;
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
        self.commit_index.reset();
        self.voters_reachable.reset();
        if status.state == "leader" {
            self.commit_index
                .with_label_values(NO_LABELS)
                .set(i(quorum_index(status)));
            let reachable = status
                .voters
                .iter()
                .filter(|v| {
                    **v == status.id
                        || live
                            .contact_ages
                            .get(v)
                            .is_some_and(|age| *age <= live.reachable_within)
                })
                .count();
            self.voters_reachable
                .with_label_values(NO_LABELS)
                .set(reachable as i64);
        }
        self.peer_contact_age.reset();
        // Members only: a node removed from the port keeps no series.
        for (peer, age) in live
            .contact_ages
            .iter()
            .filter(|(p, _)| status.members.contains_key(p))
        {
            self.peer_contact_age
                .with_label_values(&[&peer.to_string()])
                .set(age.as_secs_f64());
        }
        self.quic_connections.set(live.quic_connections as i64);
        self.staleness
            .set(staleness_ms.map_or(-1.0, |v| v as f64 / 1000.0));
        self.persons.set(status.persons as i64);
        self.templates
            .with_label_values(&[model])
            .set(status.indexed_templates as i64);
        self.key_epoch.set(i64::from(status.key_epoch));
        self.audit_records.set(status.audit_len as i64);
        self.audit_head
            .set(i64::from_str_radix(status.audit_head.get(..12).unwrap_or("0"), 16).unwrap_or(0));
        self.shredded_index.set(status.shredded_index as i64);
        self.voters.set(status.voters.len() as i64);
        self.learners.set(status.learners.len() as i64);
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The highest log index a majority of the voters holds, from the leader's replication view
/// (its own log counts for itself). Raft's commit index, but for the rule that a leader only
/// commits by counting entries of its own term, which holds after the leader's first entry.
fn quorum_index(status: &NodeStatus) -> Option<u64> {
    let mut held: Vec<Option<u64>> = status
        .voters
        .iter()
        .map(|v| {
            if *v == status.id {
                status.last_log_index
            } else {
                status.replication.get(v).copied().flatten()
            }
        })
        .collect();
    if held.is_empty() {
        return None;
    }
    held.sort_unstable_by(|a, b| b.cmp(a));
    held[held.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, voters: &[NodeId], replication: &[(NodeId, Option<u64>)]) -> NodeStatus {
        NodeStatus {
            id: 1,
            state: state.into(),
            term: 3,
            leader: Some(1),
            last_log_index: Some(100),
            applied_index: Some(100),
            snapshot_index: None,
            purged_index: None,
            voters: voters.to_vec(),
            learners: vec![11],
            replication: replication.iter().copied().collect(),
            persons: 0,
            indexed_templates: 0,
            key_epoch: 0,
            shredded_index: 0,
            members: [1, 2, 3, 11]
                .map(|id| (id, format!("10.0.0.{id}:7400")))
                .into(),
            channel: None,
            audit_len: 0,
            audit_head: String::new(),
        }
    }

    #[test]
    fn the_quorum_index_is_what_a_majority_of_voters_holds() {
        for (voters, replication, expected) in [
            (vec![1], vec![], Some(100)),
            (
                vec![1, 2, 3],
                vec![(2, Some(90)), (3, Some(80)), (11, Some(5))],
                Some(90),
            ),
            (vec![1, 2, 3], vec![(2, None), (3, Some(80))], Some(80)),
            (vec![1, 2, 3], vec![(2, None), (3, None)], None),
            (
                vec![1, 2, 3, 4, 5],
                vec![(2, Some(99)), (3, Some(98)), (4, Some(1)), (5, None)],
                Some(98),
            ),
        ] {
            assert_eq!(
                quorum_index(&status("leader", &voters, &replication)),
                expected,
                "{voters:?} {replication:?}"
            );
        }
    }

    #[test]
    fn leaders_count_reachable_voters_and_followers_do_not_claim_to_know() {
        let m = Metrics::new(Registry::new()).expect("metrics");
        let live = |state: &str, ages: &[(NodeId, u64)]| Live {
            status: status(
                state,
                &[1, 2, 3],
                &[(2, Some(100)), (3, Some(40)), (11, Some(100))],
            ),
            staleness_ms: Some(10),
            quic_connections: 4,
            contact_ages: ages
                .iter()
                .map(|(p, ms)| (*p, Duration::from_millis(*ms)))
                .collect(),
            reachable_within: Duration::from_secs(2),
        };
        let text = m.render(
            &live("leader", &[(2, 100), (3, 5000), (11, 100), (12, 1)]),
            "sface@2021dec",
        );
        assert!(!text.contains("peer=\"12\""), "12 is not a member:\n{text}");
        for line in [
            "clearway_cluster_voters_reachable 2",
            "clearway_cluster_commit_index 100",
            "clearway_quic_connections 4",
            "clearway_cluster_peer_contact_age_seconds{peer=\"3\"} 5",
            "clearway_cluster_replication_lag_entries{peer=\"3\"} 60",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        let text = m.render(&live("follower", &[]), "sface@2021dec");
        assert!(
            !text.contains("clearway_cluster_voters_reachable "),
            "{text}"
        );
        assert!(!text.contains("clearway_cluster_commit_index "), "{text}");
        assert!(
            !text.contains("clearway_cluster_peer_contact_age_seconds{"),
            "{text}"
        );
    }
}
