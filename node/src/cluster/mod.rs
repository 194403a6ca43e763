//! The port cluster: the gallery replicated by Raft (openraft) over QUIC with mutual TLS.
//!
//! * [`typ`]: the Raft type configuration and short aliases over it.
//! * [`log_store`]: the Raft log on sled (tree `raft_log`, `raft_meta`), sealed at rest.
//! * [`state_machine`]: the gallery [`Registry`](clearway_gallery::Registry) as Raft state
//!   machine on sled (trees `sm_*`), per-person keys, snapshots; its [`GalleryHandle`] is what
//!   lanes read from.
//! * [`protocol`]: the [`Call`](protocol::Call)s nodes and clients exchange over QUIC.
//! * [`network`]: openraft's network over the node's QUIC endpoint.
//! * [`node`]: a running node — storage, Raft, the endpoint, and the shredder.
//! * [`metrics`]: the node's Prometheus metrics (served at `metrics_listen`/metrics).
//! * [`client`]: the operators' and tests' client.
//! * [`config`]: the node configuration file.
//!
//! Log store and state machine share one sled database and the node's
//! [`Keyring`](crate::store::keyring::Keyring), but no trees.

pub mod authz;
pub mod client;
pub mod config;
pub mod freshness;
pub mod log_store;
pub mod metrics;
pub mod network;
pub mod node;
pub mod protocol;
pub mod state_machine;
#[cfg(test)]
mod tests;

pub use self::client::ClusterClient;
pub use self::config::NodeConfig;
pub use self::node::ClusterNode;
pub use self::state_machine::GalleryHandle;

use clearway_gallery::Outcome;
use serde::{Deserialize, Serialize};

/// What applying one log entry answered: one outcome per command of the entry's batch (empty for
/// blank and membership entries).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Response {
    /// One outcome per command, in order.
    pub outcomes: Vec<Outcome>,
}

/// Raft types and short aliases over them (openraft's recommended layout).
pub mod typ {
    use std::io::Cursor;

    use super::Response;

    openraft::declare_raft_types!(
        /// The port cluster's Raft types: gallery requests, numeric node ids, nodes known by
        /// their QUIC address.
        pub TypeConfig:
            D = clearway_gallery::Request,
            R = Response,
            NodeId = u64,
            Node = openraft::BasicNode,
    );

    /// A node id.
    pub type NodeId = u64;
    /// A node's address record.
    pub type Node = openraft::BasicNode;
    /// The Raft handle.
    pub type Raft = openraft::Raft<TypeConfig>;
    /// A log entry.
    pub type Entry = openraft::Entry<TypeConfig>;
    /// A log id.
    pub type LogId = openraft::LogId<NodeId>;
    /// A vote.
    pub type Vote = openraft::Vote<NodeId>;
    /// Membership as stored with the log id that set it.
    pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
    /// Snapshot metadata.
    pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
    /// A snapshot.
    pub type Snapshot = openraft::Snapshot<TypeConfig>;
    /// Storage errors as openraft wants them.
    pub type StorageError = openraft::StorageError<NodeId>;
    /// Storage IO errors.
    pub type StorageIOError = openraft::StorageIOError<NodeId>;
    /// Raft metrics.
    pub type RaftMetrics = openraft::RaftMetrics<NodeId, Node>;
}
