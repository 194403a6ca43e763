//! openraft's network over the node's QUIC endpoint: each Raft RPC is one [`Call`] on its own
//! stream to the target node, which must prove with a port-CA certificate that it is that node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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

/// Creates a [`Peer`] per target node.
#[derive(Clone)]
pub struct Network {
    endpoint: Arc<RpcEndpoint>,
}

impl Network {
    /// A network over `endpoint`.
    pub fn new(endpoint: Arc<RpcEndpoint>) -> Network {
        Network { endpoint }
    }
}

/// The connection to one target node.
pub struct Peer {
    endpoint: Arc<RpcEndpoint>,
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
            target,
            addr: node.addr.clone(),
        }
    }
}
