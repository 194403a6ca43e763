//! The messages nodes and clients exchange over QUIC: one [`Call`] per request stream, one
//! [`Reply`] back, both `postcard` behind a protocol version byte.
//!
//! Raft's own messages (append, vote, snapshot chunks) are accepted only from node certificates,
//! and only when the Raft sender named inside the message is the node the certificate names: a
//! node cannot speak for another. What else each role may call is the node's `cluster::authz` table.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clearway_gallery::ops::{AuditRecord, LaneMode, LedgerView};
use clearway_gallery::{DocumentKind, Hit, Outcome, Person, PersonId, Request};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::typ::{NodeId, TypeConfig};
use crate::{Error, Result};

/// The protocol version this node speaks (first byte of every message).
pub const PROTOCOL_VERSION: u8 = 1;

/// The audit action that records a supervisor's viewing of a lane's cameras (the console writes
/// it; a node hands out stills only under such a record).
pub const STILL_ACTION: &str = "camera.view";

/// The audit record's action and target for a membership change: `membership.remove`,
/// `node-11`.
pub fn membership_record(change: &MembershipChange) -> (&'static str, String) {
    let (action, id) = match change {
        MembershipChange::AddLearner { id, .. } => ("membership.add_learner", *id),
        MembershipChange::Promote { id } => ("membership.promote", *id),
        MembershipChange::Demote { id } => ("membership.demote", *id),
        MembershipChange::Remove { id } => ("membership.remove", *id),
    };
    (action, crate::net::Identity::Node(id).to_string())
}

/// The audited batch that goes before a membership change: its audit record and, for a removal,
/// the revocation of the node's certificates (a removed appliance's stale replica cannot be
/// used). The client signs it; the leader checks a batch it receives is exactly this.
pub fn membership_batch(
    change: &MembershipChange,
    draft: clearway_gallery::ops::AuditDraft,
) -> Request {
    use clearway_gallery::ops::Op;
    let (_, target) = membership_record(change);
    let mut ops = vec![Op::Audit(draft)];
    if let MembershipChange::Remove { .. } = change {
        ops.push(Op::Revoke { identity: target });
    }
    Request::V2(ops)
}

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
    /// Change membership (through the leader): the client's signed audit batch for it
    /// ([`membership_batch`]) is written first.
    Membership {
        /// The change.
        change: MembershipChange,
        /// Its audit record (and, for a removal, the revocation), signed by the client.
        audit: Request,
    },
    /// The lane this node runs, if any: its state right now.
    Lane,
    /// The newest still of one of the node's lane cameras (0 = gate 1, 1 = gate 2), for a
    /// supervisor watching: answered only while the audit record `audit_seq` in the node's
    /// replica records that viewing (action `camera.view`, this lane's channel, made within
    /// [`STILL_VIEWING`](super::node::STILL_VIEWING) by a supervisor).
    LaneStill {
        /// Which camera.
        camera: u8,
        /// The audit record of the viewing.
        audit_seq: u64,
    },
    /// The ledger's view on the node's local replica (orders, modes, acknowledgements).
    Ledger,
    /// Audit records from the node's local replica.
    Audit {
        /// The first record wanted.
        from_seq: u64,
        /// At most this many ([`MAX_AUDIT_RECORDS`] at most).
        limit: u32,
    },
    /// A registration by travel document, from the node's local replica (no templates).
    FindDocument {
        /// The document's kind.
        kind: DocumentKind,
        /// Its number as printed.
        number: String,
    },
    /// A client's call forwarded by a voter to the leader, with the client's identity and role
    /// as its certificate named them. Honoured only from a voter's certificate; from a lane the
    /// inner call is authorised as the lane itself (`cluster::authz`).
    OnBehalf {
        /// The client's identity, `client-console`.
        client: String,
        /// The client's role, `console` or `operator`.
        role: String,
        /// The call. Never itself `OnBehalf`: a forwarded call is not forwarded again, and one
        /// nested in another is refused when decoded ([`forwarded_call`]).
        #[serde(deserialize_with = "forwarded_call")]
        call: Box<Call>,
    },
}

/// Most audit records one [`Call::Audit`] answers.
pub const MAX_AUDIT_RECORDS: u32 = 1000;

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
            Call::Membership { .. } => "membership",
            Call::Lane => "lane",
            Call::LaneStill { .. } => "lane_still",
            Call::Ledger => "ledger",
            Call::Audit { .. } => "audit",
            Call::FindDocument { .. } => "find_document",
            Call::OnBehalf { .. } => "on_behalf",
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
    /// Every voter's and learner's QUIC address, by id.
    pub members: BTreeMap<NodeId, String>,
    /// The channel of the lane this node runs, if any.
    pub channel: Option<String>,
    /// Audit records in the node's replica.
    pub audit_len: u64,
    /// The newest audit record's hash (hex): replicas that applied the same log agree on it.
    pub audit_head: String,
}

/// A lane's state for the console ([`Call::Lane`]).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct LaneStatus {
    /// The channel, e.g. `hengqin/passenger/12`.
    pub channel: String,
    /// The procedure's step (`idle`, `declaration`, `gate1_open`, `inspection`, `officer`, …).
    pub step: String,
    /// The mode in force.
    pub mode: LaneMode,
    /// Whether face scan is in use right now (mode allows it and the replica is fresh).
    pub face_scan: bool,
    /// The newest fencing token the lane knows: (term, log index).
    pub fence: (u64, u64),
    /// Gates 1–3: `closed`, `moving`, `open`, `locked` or `fault`.
    pub gates: [String; 3],
    /// Persons between gate 1 and gate 2.
    pub occupancy: u32,
    /// Why the channel is held for an officer, if it is.
    pub held_for: Option<String>,
    /// Whether the gate-1 and gate-2 cameras deliver frames.
    pub cameras_up: [bool; 2],
    /// The latest decision at gate 1.
    pub last_decision: Option<LastDecision>,
    /// Alarms in force.
    pub alarms: Vec<LaneAlarm>,
    /// Log index of the newest supervisor order the lane has carried out (0: none).
    pub acked_order: u64,
    /// Travellers who left through gate 3 since the lane started.
    pub clearances: u64,
    /// Clearances in the last hour (a sliding window of their times, kept by the lane).
    pub clearances_last_hour: u64,
    /// Milliseconds since the replica last heard from the cluster (`u64::MAX`: never).
    pub staleness_ms: u64,
    /// Which way the channel clears travellers (`Macao → Hengqin`; empty: not said).
    pub direction: String,
    /// Presentation-attack detection: `enforce`, `observe` or `off`.
    pub pad: String,
}

/// A decision at gate 1.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct LastDecision {
    /// `admitted`, `refused`, `referred`, …
    pub outcome: String,
    /// Camera frame to decision, in milliseconds: only for a decision made on a frame (a face
    /// at gate 1); a card scan's, or a clearance the authorities' answers triggered, has none.
    pub latency_ms: Option<f64>,
    /// For a clearance: gate 1's admission to the clearance, in milliseconds (the passage).
    pub passage_ms: Option<f64>,
    /// When.
    pub at: DateTime<Utc>,
}

/// An alarm in force on a lane.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct LaneAlarm {
    /// `camera_down`, `tailgating`, `multiple_faces`, `authority_not_answering`, `replica_stale`,
    /// `gate_fault`, `presentation_attack`, `held`, `order_refused` (the lane or its gate controller did not carry out a
    /// supervisor's order) or `order_expired` (an order reached the lane too late).
    pub kind: String,
    /// Since when.
    pub since: DateTime<Utc>,
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
    /// The node's lane (None: it runs none).
    Lane(Option<Box<LaneStatus>>),
    /// A camera still (JPEG); `None` while the first one of a viewing is being made.
    Still(Option<Vec<u8>>),
    /// The ledger's view.
    Ledger(Box<LedgerView>),
    /// Audit records, oldest first.
    Audit(Vec<AuditRecord>),
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

thread_local! {
    /// Whether this thread is decoding the call inside an `OnBehalf`.
    static IN_FORWARDED_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Decodes the call an `OnBehalf` carries, refusing another `OnBehalf` inside it before
/// descending: without the check, a few bytes per level nest calls deep enough within one
/// request (1 MiB from a lane) to overflow the decoding thread's stack and abort the node.
fn forwarded_call<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Box<Call>, D::Error> {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_FORWARDED_CALL.set(self.0);
        }
    }
    if IN_FORWARDED_CALL.replace(true) {
        return Err(serde::de::Error::custom(
            "a forwarded call cannot be forwarded",
        ));
    }
    let _reset = Reset(false);
    Call::deserialize(deserializer).map(Box::new)
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

/// The error a reply carries, or an "unexpected reply" error.
pub fn reply_error(reply: Reply) -> Error {
    match reply {
        Reply::Error {
            code,
            message,
            retry,
        } => Error::Remote {
            code,
            message,
            retry,
        },
        other => Error::Cluster(format!("unexpected reply {}", reply_name(&other))),
    }
}

fn reply_name(reply: &Reply) -> &'static str {
    match reply {
        Reply::Append(_) => "append",
        Reply::Vote(_) => "vote",
        Reply::Snapshot(_) => "snapshot",
        Reply::Written { .. } => "written",
        Reply::Person(_) => "person",
        Reply::Hits(_) => "hits",
        Reply::Status(_) => "status",
        Reply::Digest { .. } => "digest",
        Reply::Done => "done",
        Reply::Metrics(_) => "metrics",
        Reply::Lane(_) => "lane",
        Reply::Still(_) => "still",
        Reply::Ledger(_) => "ledger",
        Reply::Audit(_) => "audit",
        Reply::Error { .. } => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_behalf(call: Call) -> Call {
        Call::OnBehalf {
            client: "client-console".into(),
            role: "console".into(),
            call: Box::new(call),
        }
    }

    #[test]
    fn a_forwarded_call_decodes_and_a_nested_one_is_refused() {
        let once = encode(&on_behalf(Call::Status)).expect("encodes");
        let back = decode::<Call>(&once).expect("one level of forwarding decodes");
        assert!(matches!(back, Call::OnBehalf { call, .. } if matches!(*call, Call::Status)));
        // The flag is reset: a second message on the same thread decodes alike.
        assert!(decode::<Call>(&once).is_ok());

        let twice = encode(&on_behalf(on_behalf(Call::Status))).expect("encodes");
        let err = decode::<Call>(&twice).expect_err("nested forwarding is refused");
        assert!(err.to_string().contains("malformed message"), "{err}");
        assert!(
            decode::<Call>(&once).is_ok(),
            "a refusal leaves the flag reset"
        );
    }

    /// Found by fuzzing (`fuzz/regressions/rpc_frame/nested-on-behalf`): 3 bytes a level nested
    /// `OnBehalf` deep enough to overflow the stack. Decoded on a thread with a small stack.
    #[test]
    fn deeply_nested_forwarding_is_refused_without_overflowing_the_stack() {
        let on_behalf_tag = encode(&on_behalf(Call::Status)).expect("encodes")[1];
        let mut bytes = vec![PROTOCOL_VERSION];
        for _ in 0..300_000 {
            bytes.extend([on_behalf_tag, 0, 0]);
        }
        let status = encode(&Call::Status).expect("encodes");
        bytes.push(status[1]);
        let refused = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || decode::<Call>(&bytes).is_err())
            .expect("a thread")
            .join()
            .expect("no stack overflow");
        assert!(refused);
    }
}
