//! A client of a port cluster (the command line, tests, later the console): calls nodes over
//! QUIC with an operator certificate, retrying writes on other nodes until a deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clearway_gallery::ops::{AuditDraft, AuditRecord, LedgerView, Op};
use clearway_gallery::{Command, DocumentKind, Hit, Outcome, Person, PersonId, Request};
use tracing::debug;

use crate::net::Identity;
use crate::net::rpc::RpcEndpoint;
use crate::net::tls::Bundle;
use crate::protocol::{
    Call, LaneStatus, MAX_AUDIT_RECORDS, MembershipChange, NodeStatus, Reply, decode, encode,
    membership_batch, membership_record, reply_error,
};
use crate::typ::NodeId;
use crate::{Error, Result};

/// Who a client's audit records name: the actor and role written into each record. An
/// operator's tool writes as its certificate (`ops`, `operator`); the console as the signed-in
/// user it vouches for (`ana@console`, `supervisor`). The leader checks both against the
/// certificate, and the record is signed with the certificate's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// `ops`, `ana@console`.
    pub actor: String,
    /// `operator`, `supervisor`, `service_desk`, `port_admin`.
    pub role: String,
}

impl Author {
    /// An audit record by this author, unsigned and without its digest ([`ClusterClient::sign`]
    /// completes it); its time is now, to the millisecond.
    pub fn draft(&self, action: &str, target: &str, reason: &str) -> AuditDraft {
        AuditDraft {
            actor: self.actor.clone(),
            role: self.role.clone(),
            action: action.into(),
            target: target.into(),
            reason: reason.into(),
            reason_salt: String::new(),
            at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 3),
            ops_digest: String::new(),
            signature: None,
        }
    }
}

/// Per-call timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one port's nodes.
pub struct ClusterClient {
    endpoint: RpcEndpoint,
    nodes: BTreeMap<NodeId, SocketAddr>,
    /// Signs audit records (the bundle's key).
    bundle: Bundle,
}

impl ClusterClient {
    /// A client with `bundle`'s certificate that knows these nodes.
    pub fn new(bundle: &Bundle, nodes: BTreeMap<NodeId, SocketAddr>) -> Result<ClusterClient> {
        if nodes.is_empty() {
            return Err(Error::Config("name at least one node to connect to".into()));
        }
        Ok(ClusterClient {
            endpoint: RpcEndpoint::client(bundle)?,
            nodes,
            bundle: bundle.clone(),
        })
    }

    /// Closes every connection, telling the nodes so: a short-lived client (one CLI command)
    /// must, or each node keeps counting its connection against the identity's cap until the
    /// idle timeout.
    pub async fn close(&self) {
        self.endpoint.close().await;
    }

    /// This client as an operator: its certificate's name, role `operator`.
    pub fn operator(&self) -> Author {
        let actor = match &self.bundle.identity {
            Identity::Client(name) => name.clone(),
            other => other.to_string(),
        };
        Author {
            actor,
            role: "operator".into(),
        }
    }

    /// The console user `user` with console role `role`, vouched for by this client (a console).
    pub fn console_user(&self, user: &str, role: &str) -> Author {
        let console = match &self.bundle.identity {
            Identity::Client(name) => name.as_str(),
            _ => "console",
        };
        Author {
            actor: format!("{user}@{console}"),
            role: role.into(),
        }
    }

    /// A checker of audit records' signatures against this client's port CA.
    pub fn audit_verifier(&self) -> Result<crate::net::signing::AuditVerifier> {
        Ok(crate::net::signing::AuditVerifier::new(&self.bundle)?)
    }

    /// Who this client's records name for `user` acting as `role`: the user and this console
    /// when the client is a console, otherwise the operator certificate itself (an operator's
    /// tool cannot vouch for persons).
    pub fn author_for(&self, user: &str, role: &str) -> Author {
        if self.bundle.role == crate::net::Role::Console {
            self.console_user(user, role)
        } else {
            self.operator()
        }
    }

    /// Completes and signs a batch's audit record with this client's certificate key (see
    /// [`crate::net::signing::sign_batch`]).
    pub fn sign(&self, ops: &mut [Op]) -> Result<()> {
        crate::net::signing::sign_batch(&self.bundle, ops)?;
        Ok(())
    }

    /// An operator's gallery commands as one signed, audited batch: the audit record first,
    /// then the commands; outcome `i + 1` is command `i`'s.
    pub fn audited(
        &self,
        commands: Vec<Command>,
        action: &str,
        target: &str,
        reason: &str,
    ) -> Result<Request> {
        let mut ops: Vec<Op> =
            std::iter::once(Op::Audit(self.operator().draft(action, target, reason)))
                .chain(commands.into_iter().map(Op::Gallery))
                .collect();
        self.sign(&mut ops)?;
        Ok(Request::V2(ops))
    }

    /// The nodes this client knows.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.keys().copied()
    }

    /// One call to one node; an error reply becomes an error.
    pub async fn call(&self, node: NodeId, call: &Call) -> Result<Reply> {
        let bytes = encode(call)?;
        self.call_bytes(node, &bytes).await
    }

    async fn call_bytes(&self, node: NodeId, bytes: &[u8]) -> Result<Reply> {
        let addr = *self
            .nodes
            .get(&node)
            .ok_or_else(|| Error::Config(format!("node {node} is not known to this client")))?;
        let reply = self
            .endpoint
            .call(addr, &Identity::Node(node), bytes, CALL_TIMEOUT)
            .await?;
        match decode(&reply)? {
            Reply::Error {
                code,
                message,
                retry,
            } => Err(Error::Remote {
                code,
                message,
                retry,
            }),
            reply => Ok(reply),
        }
    }

    /// Calls nodes in turn until one answers without a retryable error, or `deadline` passes.
    async fn call_any(&self, call: &Call, deadline: Duration) -> Result<Reply> {
        let bytes = encode(call)?;
        let until = Instant::now() + deadline;
        let mut backoff = Duration::from_millis(20);
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let mut turn = 0usize;
        loop {
            let node = ids[turn % ids.len()];
            turn += 1;
            match self.call_bytes(node, &bytes).await {
                Ok(reply) => return Ok(reply),
                Err(e) if retryable(&e) && Instant::now() < until => {
                    debug!(node, error = %e, "Call failed; trying again.");
                    tokio::time::sleep(
                        backoff.min(until.saturating_duration_since(Instant::now())),
                    )
                    .await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Replicates a batch of commands through any node; returns the log index and outcomes. A
    /// batch is one log entry: all its commands apply or none.
    pub async fn write(&self, request: Request, deadline: Duration) -> Result<(u64, Vec<Outcome>)> {
        match self.call_any(&Call::Write(request), deadline).await? {
            Reply::Written { index, outcomes } => Ok((index, outcomes)),
            other => Err(reply_error(other)),
        }
    }

    /// Replicates gallery commands as one audited batch (`Request::V2`: the audit record, then
    /// the commands), the way every client change travels; returns the log index and one
    /// outcome per command. The record names this client as an operator and is signed with its
    /// key. A batch is one log entry: all its commands apply or none.
    pub async fn write_audited(
        &self,
        commands: Vec<Command>,
        action: &str,
        target: &str,
        reason: &str,
        deadline: Duration,
    ) -> Result<(u64, Vec<Outcome>)> {
        let request = self.audited(commands, action, target, reason)?;
        let (index, mut outcomes) = self.write(request, deadline).await?;
        match outcomes.first() {
            Some(Outcome::Audited { .. }) => {
                outcomes.remove(0);
                Ok((index, outcomes))
            }
            // A refused batch answers one refusal per op; keep one per command.
            Some(Outcome::Refused { .. }) => {
                outcomes.remove(0);
                Ok((index, outcomes))
            }
            _ => Err(Error::Cluster(
                "the audited batch was answered without its audit record".into(),
            )),
        }
    }

    /// Revokes every certificate of `identity` issued until now, as one audited batch signed by
    /// this client as an operator.
    pub async fn revoke(
        &self,
        identity: &Identity,
        reason: &str,
        deadline: Duration,
    ) -> Result<u64> {
        let mut ops = vec![
            Op::Audit(
                self.operator()
                    .draft("revoke", &identity.to_string(), reason),
            ),
            Op::Revoke {
                identity: identity.to_string(),
            },
        ];
        self.sign(&mut ops)?;
        let (index, outcomes) = self.write(Request::V2(ops), deadline).await?;
        match outcomes
            .iter()
            .find(|o| matches!(o, Outcome::Refused { .. }))
        {
            Some(Outcome::Refused { code, reason }) => Err(Error::Remote {
                code: code.clone(),
                message: reason.clone(),
                retry: false,
            }),
            _ => Ok(index),
        }
    }

    /// A node's status.
    pub async fn status(&self, node: NodeId) -> Result<NodeStatus> {
        match self.call(node, &Call::Status).await? {
            Reply::Status(s) => Ok(*s),
            other => Err(reply_error(other)),
        }
    }

    /// The state of the lane a node runs (None: it runs none).
    pub async fn lane(&self, node: NodeId) -> Result<Option<LaneStatus>> {
        match self.call(node, &Call::Lane).await? {
            Reply::Lane(l) => Ok(l.map(|l| *l)),
            other => Err(reply_error(other)),
        }
    }

    /// The newest still (JPEG) of `camera` (0 = gate 1, 1 = gate 2) of the lane `node` runs,
    /// for the viewing recorded by audit record `audit_seq`; `None` while the first is made.
    pub async fn lane_still(
        &self,
        node: NodeId,
        camera: u8,
        audit_seq: u64,
    ) -> Result<Option<Vec<u8>>> {
        match self
            .call(node, &Call::LaneStill { camera, audit_seq })
            .await?
        {
            Reply::Still(jpeg) => Ok(jpeg),
            other => Err(reply_error(other)),
        }
    }

    /// The ledger's view on a node's local replica.
    pub async fn ledger(&self, node: NodeId) -> Result<LedgerView> {
        match self.call(node, &Call::Ledger).await? {
            Reply::Ledger(v) => Ok(*v),
            other => Err(reply_error(other)),
        }
    }

    /// Up to `limit` audit records from `from_seq` on, from a node's local replica.
    pub async fn audit(&self, node: NodeId, from_seq: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        match self.call(node, &Call::Audit { from_seq, limit }).await? {
            Reply::Audit(records) => Ok(records),
            other => Err(reply_error(other)),
        }
    }

    /// The whole audit trail from a node's local replica, read in pages.
    pub async fn audit_trail(&self, node: NodeId) -> Result<Vec<AuditRecord>> {
        let mut trail: Vec<AuditRecord> = Vec::new();
        loop {
            let page = self
                .audit(node, trail.len() as u64, MAX_AUDIT_RECORDS)
                .await?;
            let done = page.len() < MAX_AUDIT_RECORDS as usize;
            trail.extend(page);
            if done {
                return Ok(trail);
            }
        }
    }

    /// A registration by travel document from a node's local replica (no templates).
    pub async fn find_document(
        &self,
        node: NodeId,
        kind: DocumentKind,
        number: String,
    ) -> Result<Option<Person>> {
        match self
            .call(node, &Call::FindDocument { kind, number })
            .await?
        {
            Reply::Person(p) => Ok(p.map(|p| *p)),
            other => Err(reply_error(other)),
        }
    }

    /// A node's metrics (Prometheus text).
    pub async fn metrics(&self, node: NodeId) -> Result<String> {
        match self.call(node, &Call::Metrics).await? {
            Reply::Metrics(m) => Ok(m),
            other => Err(reply_error(other)),
        }
    }

    /// A node's replica digest and the applied index it reflects.
    pub async fn digest(&self, node: NodeId) -> Result<(String, Option<u64>)> {
        match self.call(node, &Call::Digest).await? {
            Reply::Digest {
                digest,
                applied_index,
            } => Ok((digest, applied_index)),
            other => Err(reply_error(other)),
        }
    }

    /// 1:N search on one node's local replica.
    pub async fn search(&self, node: NodeId, probe: Vec<f32>, k: usize) -> Result<Vec<Hit>> {
        match self.call(node, &Call::Search { probe, k }).await? {
            Reply::Hits(h) => Ok(h),
            other => Err(reply_error(other)),
        }
    }

    /// A person's record (no templates): linearizable (through the leader) or from `node`'s replica.
    pub async fn person(
        &self,
        node: NodeId,
        person: PersonId,
        linearizable: bool,
    ) -> Result<Option<Person>> {
        match self
            .call(
                node,
                &Call::Person {
                    person,
                    linearizable,
                },
            )
            .await?
        {
            Reply::Person(p) => Ok(p.map(|b| *b)),
            other => Err(reply_error(other)),
        }
    }

    /// Initialises a new cluster on `node` with these voters.
    pub async fn initialize(&self, node: NodeId, voters: BTreeMap<NodeId, String>) -> Result<()> {
        match self.call(node, &Call::Initialize { voters }).await? {
            Reply::Done => Ok(()),
            other => Err(reply_error(other)),
        }
    }

    /// Changes membership through any node (forwarded to the leader), audited as this client
    /// as an operator.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
        deadline: Duration,
    ) -> Result<()> {
        let reason = match change {
            MembershipChange::Remove { .. } => "removed from the cluster; its certificates revoked",
            _ => "cluster membership change",
        };
        self.change_membership_by(change, &self.operator(), reason, deadline)
            .await
    }

    /// Changes membership through any node (forwarded to the leader), with a signed audit
    /// record by `author` that the leader writes first ([`membership_batch`]).
    pub async fn change_membership_by(
        &self,
        change: MembershipChange,
        author: &Author,
        reason: &str,
        deadline: Duration,
    ) -> Result<()> {
        let (action, target) = membership_record(&change);
        let mut audit = membership_batch(&change, author.draft(action, &target, reason));
        if let Request::V2(ops) = &mut audit {
            self.sign(ops)?;
        }
        match self
            .call_any(&Call::Membership { change, audit }, deadline)
            .await?
        {
            Reply::Done => Ok(()),
            other => Err(reply_error(other)),
        }
    }

    /// Polls `node`'s status every 50 ms until `done` holds, or fails after `deadline` naming
    /// `what` and the last status seen.
    pub async fn wait_for(
        &self,
        node: NodeId,
        what: &str,
        deadline: Duration,
        done: impl Fn(&NodeStatus) -> bool,
    ) -> Result<NodeStatus> {
        let until = Instant::now() + deadline;
        let mut last;
        loop {
            match self.status(node).await {
                Ok(s) if done(&s) => return Ok(s),
                Ok(s) => last = Some(format!("{s:?}")),
                Err(e) => last = Some(e.to_string()),
            }
            if Instant::now() >= until {
                return Err(Error::Cluster(format!(
                    "node {node}: gave up waiting for {what} after {deadline:?}; last seen: {}",
                    last.unwrap_or_default()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Whether an error may go away by trying again (another node, a new leader).
pub fn retryable(e: &Error) -> bool {
    match e {
        Error::Remote { retry, .. } => *retry,
        Error::Net(_) => true,
        _ => false,
    }
}
