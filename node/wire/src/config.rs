//! The cluster's settings that a port definition gives every node (`[raft]`, `[gallery]`) and
//! how nodes name each other (`[[peers]]`). The whole `node.toml` is the node's
//! (`clearway_node::cluster::config::NodeConfig`), which holds these.

use serde::{Deserialize, Serialize};

use crate::typ::NodeId;

/// Whether a node votes (a rack appliance) or only replicates (a lane node).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Votes in elections and counts towards the commit quorum.
    Voter,
    /// Holds a full replica; never votes (lane nodes).
    #[default]
    Learner,
}

/// Another node of the port, as `cluster init` should set it up.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Its node id.
    pub id: NodeId,
    /// Its QUIC address.
    pub addr: String,
    /// Voter or learner (default learner).
    #[serde(default)]
    pub role: Role,
}

/// Raft timing and durability.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    /// Leader heartbeat interval, ms. Default 250.
    pub heartbeat_ms: u64,
    /// Election timeout lower bound, ms. Default 1000.
    pub election_timeout_min_ms: u64,
    /// Election timeout upper bound, ms. Default 2000.
    pub election_timeout_max_ms: u64,
    /// Timeout for one snapshot chunk, ms. Default 120000: the last chunk's answer waits for
    /// the install (about 1 min per million templates on one core).
    pub snapshot_chunk_timeout_ms: u64,
    /// Snapshot chunk size, bytes. Default 4 MiB.
    pub snapshot_chunk_bytes: u64,
    /// Build a snapshot after this many log entries. Default 5000.
    pub snapshot_every: u64,
    /// Most entries in one append message. Default 16. openraft gives one append a heartbeat
    /// interval to complete, and an entry can carry a batch of enrolments (~300 KB per 1,000),
    /// so this bounds the bytes per append.
    pub max_payload_entries: u64,
    /// Log entries kept after a snapshot, for followers slightly behind. Default 1000; 0 makes
    /// every lagging node catch up by snapshot.
    pub keep_logs_after_snapshot: u64,
    /// Flush the log to disk before acknowledging an append (fsync on commit). Default true.
    /// Turning it off trades durability of the last ~0.5 s of writes on power loss for latency.
    pub fsync: bool,
}

impl RaftConfig {
    /// Checks the timings and sizes make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_ms == 0 || self.election_timeout_min_ms <= self.heartbeat_ms {
            return Err("raft.election_timeout_min_ms must exceed raft.heartbeat_ms (> 0)".into());
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(
                "raft.election_timeout_max_ms must exceed raft.election_timeout_min_ms".into(),
            );
        }
        if self.snapshot_every == 0
            || self.max_payload_entries == 0
            || self.snapshot_chunk_bytes < 1024
        {
            return Err("raft.snapshot_every and raft.max_payload_entries must be > 0, snapshot_chunk_bytes >= 1024".into());
        }
        Ok(())
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            heartbeat_ms: 250,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            snapshot_chunk_timeout_ms: 120_000,
            snapshot_chunk_bytes: 4 * 1024 * 1024,
            snapshot_every: 5000,
            max_payload_entries: 16,
            keep_logs_after_snapshot: 1000,
            fsync: true,
        }
    }
}

/// The gallery model the node's 1:N index serves.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GalleryConfig {
    /// Face model name. Default "sface".
    pub model: String,
    /// Model version. Default "2021dec".
    pub model_version: String,
    /// Embedding dimension. Default 128.
    pub dim: usize,
}

impl GalleryConfig {
    /// Checks the embedding dimension is one the gallery can hold.
    pub fn validate(&self) -> Result<(), String> {
        if self.dim == 0 || self.dim > clearway_gallery::MAX_DIM {
            return Err(format!(
                "gallery.dim must be 1..={}",
                clearway_gallery::MAX_DIM
            ));
        }
        Ok(())
    }
}

impl Default for GalleryConfig {
    fn default() -> Self {
        GalleryConfig {
            model: "sface".into(),
            model_version: "2021dec".into(),
            dim: 128,
        }
    }
}
