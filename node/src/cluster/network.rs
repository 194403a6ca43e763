//! openraft's network over the node's QUIC endpoint: each Raft RPC is one [`Call`] on its own
//! stream to the target node, which must prove with a port-CA certificate that it is that node.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::protocol::{Call, Reply, decode, encode};
use super::typ::{Node, NodeId, TypeConfig};
use crate::error::Error;
use crate::net::Identity;
use crate::net::rpc::RpcEndpoint;

/// When each node this one sends Raft messages to (a leader: every member; a candidate: the
/// voters) last answered one.
#[derive(Debug, Default)]
pub struct Contacts(Mutex<BTreeMap<NodeId, Instant>>);

impl Contacts {
    fn answered(&self, peer: NodeId) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer, Instant::now());
    }

    /// How long ago each peer last answered.
    pub fn ages(&self) -> BTreeMap<NodeId, Duration> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(peer, at)| (*peer, at.elapsed()))
            .collect()
    }
}

/// Creates a [`Peer`] per target node.
#[derive(Clone)]
pub struct Network {
    endpoint: Arc<RpcEndpoint>,
    contacts: Arc<Contacts>,
}

impl Network {
    /// A network over `endpoint`, noting each peer's answers in `contacts`.
    pub fn new(endpoint: Arc<RpcEndpoint>, contacts: Arc<Contacts>) -> Network {
        Network { endpoint, contacts }
    }
}

/// The connection to one target node.
pub struct Peer {
    endpoint: Arc<RpcEndpoint>,
    contacts: Arc<Contacts>,
    target: NodeId,
    addr: String,
}

/// Resolves a node address (`ip:port` or `host:port`).
pub async fn resolve(addr: &str) -> Result<SocketAddr, Error> {
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Error::Cluster(format!("cannot resolve node address {addr:?}")))
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, Node, RaftError<NodeId, E>>>;

impl Peer {
    async fn call<E: std::error::Error>(
        &self,
        call: Call,
        timeout: Duration,
    ) -> Result<Reply, RPCError<NodeId, Node, RaftError<NodeId, E>>> {
        let addr = resolve(&self.addr)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let bytes = encode(&call).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let reply = self
            .endpoint
            .call(addr, &Identity::Node(self.target), &bytes, timeout)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        self.contacts.answered(self.target);
        decode(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

fn unexpected<E: std::error::Error>(reply: Reply) -> RPCError<NodeId, Node, RaftError<NodeId, E>> {
    let e = match reply {
        Reply::Error { message, .. } => Error::Cluster(message),
        other => Error::Cluster(format!("unexpected reply {other:?}")),
    };
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self.call(Call::Append(rpc), option.hard_ttl()).await? {
            Reply::Append(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self.call(Call::Snapshot(rpc), option.hard_ttl()).await? {
            Reply::Snapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(Call::Vote(rpc), option.hard_ttl()).await? {
            Reply::Vote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(unexpected(other)),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Peer {
        Peer {
            endpoint: self.endpoint.clone(),
            contacts: self.contacts.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}
