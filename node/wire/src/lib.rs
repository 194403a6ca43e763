//! What a port's parts say to each other, and nothing else: the transport ([`net`]: QUIC with
//! mutual TLS against the port CA, request/response framing, signed audit batches), the Raft
//! types ([`typ`]), the cluster protocol ([`protocol`]: every [`Call`](protocol::Call) and
//! [`Reply`](protocol::Reply)) and its client ([`client`]); and what a port's parts are told
//! about each other: the port [`definition`] every appliance is provisioned from, and the
//! cluster settings ([`config`]) it gives every node.
//!
//! The node (`clearway-node`) serves this protocol; the console and the command line call it.
//! The crate is small on purpose: the console depends on it rather than on the node, so the
//! console builds without GStreamer, ONNX Runtime or the lane's devices (issue 17 §5). Its
//! [`Error`] is this layer's own; the node's error wraps it.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod definition;
pub mod net;
pub mod protocol;
pub mod snapshot;

pub use client::ClusterClient;

use clearway_gallery::Outcome;
use serde::{Deserialize, Serialize};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to a port cluster. Messages are lowercase, one line; `code()` is
/// stable and the same as the node's error gives for the same failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration (of the client: no node to call, an unknown node).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Transport failure (QUIC, TLS, certificates).
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// A cluster operation failed (no leader, refused, malformed message).
    #[error("cluster: {0}")]
    Cluster(String),
    /// A node answered a call with an error.
    #[error("{message}")]
    Remote {
        /// The remote error's stable code.
        code: String,
        /// Its message.
        message: String,
        /// Whether trying again may succeed.
        retry: bool,
    },
    /// A gallery operation was refused.
    #[error(transparent)]
    Gallery(#[from] clearway_gallery::Error),
}

impl Error {
    /// A stable identifier for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Net(e) => e.code(),
            Error::Cluster(_) => "cluster",
            Error::Remote { .. } => "remote",
            Error::Gallery(e) => e.code(),
        }
    }
}

/// What applying one log entry answered: one outcome per command of the entry's batch (empty for
/// blank and membership entries).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Response {
    /// One outcome per command, in order.
    pub outcomes: Vec<Outcome>,
}

/// Raft types and short aliases over them (openraft's recommended layout).
pub mod typ {
    use crate::Response;

    openraft::declare_raft_types!(
        /// The port cluster's Raft types: gallery requests, numeric node ids, nodes known by
        /// their QUIC address.
        pub TypeConfig:
            D = clearway_gallery::Request,
            R = Response,
            NodeId = u64,
            Node = openraft::BasicNode,
            SnapshotData = crate::snapshot::SnapshotData,
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
