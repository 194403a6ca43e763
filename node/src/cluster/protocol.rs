//! The messages nodes and clients exchange over QUIC: one [`Call`] per request stream, one
//! [`Reply`] back, both `postcard` behind a protocol version byte.
//!
//! Raft's own messages (append, vote, snapshot chunks) are accepted only from node certificates,
//! and only when the Raft sender named inside the message is the node the certificate names: a
//! node cannot speak for another. Clients (operators' command line, the console) may write,
//! read, query status and change membership.

use std::collections::BTreeMap;

use clearway_gallery::{Hit, Outcome, Person, PersonId, Request};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use super::typ::{NodeId, TypeConfig};
use crate::error::{Error, Result};

/// The protocol version this node speaks (first byte of every message).
pub const PROTOCOL_VERSION: u8 = 1;

/// A membership change.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub enum MembershipChange {
    /// Add a non-voting node that replicates the gallery (a lane node).
    AddLearner {
        /// Its id.
        id: NodeId,
        /// Its QUIC address.
        addr: String,
    },
    /// Make a learner a voter.
    Promote {
        /// Its id.
        id: NodeId,
    },
    /// Make a voter a learner.
    Demote {
        /// Its id.
        id: NodeId,
    },
    /// Remove a node from the cluster.
    Remove {
        /// Its id.
        id: NodeId,
    },
}

/// A request to a node.
#[derive(Debug, Deserialize, Serialize)]
pub enum Call {
    /// Raft: append entries (node to node).
    Append(AppendEntriesRequest<TypeConfig>),
    /// Raft: request a vote (node to node).
    Vote(VoteRequest<NodeId>),
    /// Raft: one chunk of a snapshot (node to node).
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// Replicate a batch of gallery commands; answered once committed and applied.
    Write(Request),
    /// A person's record, read linearizably (through the leader) or from the local replica.
    Person {
        /// Who.
        person: PersonId,
        /// Read through the leader, seeing every write acknowledged before the call.
        linearizable: bool,
    },
    /// 1:N search of the node's local replica.
    Search {
        /// The probe embedding.
        probe: Vec<f32>,
        /// How many hits.
        k: usize,
    },
    /// The node's view of the cluster.
    Status,
    /// A digest of the node's replica and the log id it reflects.
    Digest,
    /// The node's metrics, Prometheus text format.
    Metrics,
    /// Initialise a new cluster with these voters (id → address).
    Initialize {
        /// The first voters.
        voters: BTreeMap<NodeId, String>,
    },
    /// Change membership (through the leader).
    Membership(MembershipChange),
}

impl Call {
    /// The call's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Append(_) => "append",
            Call::Vote(_) => "vote",
            Call::Snapshot(_) => "snapshot",
            Call::Write(_) => "write",
            Call::Person { .. } => "person",
            Call::Search { .. } => "search",
            Call::Status => "status",
            Call::Digest => "digest",
            Call::Metrics => "metrics",
            Call::Initialize { .. } => "initialize",
            Call::Membership(_) => "membership",
        }
    }
}

/// A node's view of the cluster, for operators and tests.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct NodeStatus {
    /// This node.
    pub id: NodeId,
    /// Leader, follower, learner or candidate.
    pub state: String,
    /// Current term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Last log index held.
    pub last_log_index: Option<u64>,
    /// Last index applied to the gallery.
    pub applied_index: Option<u64>,
    /// Last index covered by a snapshot.
    pub snapshot_index: Option<u64>,
    /// Last index purged from the log.
    pub purged_index: Option<u64>,
    /// Voting members.
    pub voters: Vec<NodeId>,
    /// Non-voting members.
    pub learners: Vec<NodeId>,
    /// Leader only: the index each follower has matched.
    pub replication: BTreeMap<NodeId, Option<u64>>,
    /// Registered persons in the local replica.
    pub persons: usize,
    /// Templates in the local replica's 1:N index.
    pub indexed_templates: usize,
    /// The storage key epoch (rises after each cancellation is shredded).
    pub key_epoch: u32,
    /// Log index of the latest cancellation whose data has been shredded from this node.
    pub shredded_index: u64,
}

/// A node's answer.
#[derive(Debug, Deserialize, Serialize)]
pub enum Reply {
    /// Raft append answer.
    Append(std::result::Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Raft vote answer.
    Vote(std::result::Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Raft snapshot chunk answer.
    Snapshot(
        std::result::Result<
            InstallSnapshotResponse<NodeId>,
            RaftError<NodeId, InstallSnapshotError>,
        >,
    ),
    /// A write was committed at this log index with these outcomes.
    Written {
        /// The log index of the entry.
        index: u64,
        /// One outcome per command.
        outcomes: Vec<Outcome>,
    },
    /// A person's record, without templates: biometric data never leaves a node in answers
    /// to clients (None: not registered).
    Person(Option<Box<Person>>),
    /// Search hits, best first.
    Hits(Vec<Hit>),
    /// Node status.
    Status(Box<NodeStatus>),
    /// Replica digest.
    Digest {
        /// SHA-256 of the registry image, hex.
        digest: String,
        /// Applied index it reflects.
        applied_index: Option<u64>,
    },
    /// Done.
    Done,
    /// Metrics text.
    Metrics(String),
    /// The call failed.
    Error {
        /// Stable code.
        code: String,
        /// What went wrong.
        message: String,
        /// Whether trying again (the same or another node) may succeed.
        retry: bool,
    },
}

impl Reply {
    /// An error reply.
    pub fn error(code: &str, message: impl Into<String>, retry: bool) -> Reply {
        Reply::Error {
            code: code.to_string(),
            message: message.into(),
            retry,
        }
    }
}

/// Encodes a message: version byte, then postcard.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>> {
    let out = vec![PROTOCOL_VERSION];
    postcard::to_extend(message, out)
        .map_err(|e| Error::Cluster(format!("cannot encode message: {e}")))
}

/// Decodes a message; an unknown version or malformed bytes are an error, never a panic.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&PROTOCOL_VERSION, body)) => postcard::from_bytes(body)
            .map_err(|e| Error::Cluster(format!("malformed message: {e}"))),
        Some((v, _)) => Err(Error::Cluster(format!(
            "protocol version {v} is not supported (this node speaks {PROTOCOL_VERSION})"
        ))),
        None => Err(Error::Cluster("empty message".into())),
    }
}
