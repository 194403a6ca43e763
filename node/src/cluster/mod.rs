//! The port cluster: the gallery replicated by Raft (openraft) over QUIC with mutual TLS.
//!
//! * [`typ`], [`protocol`], [`client`]: the Raft types, the [`Call`](protocol::Call)s nodes and
//!   clients exchange over QUIC, and the operators' client — re-exported from `clearway-wire`,
//!   the small crate the console shares.
//! * [`log_store`]: the Raft log on sled (tree `raft_log`, `raft_meta`), sealed at rest.
//! * [`state_machine`]: the gallery [`Registry`](clearway_gallery::Registry) as Raft state
//!   machine on sled (trees `sm_*`), per-person keys, snapshots; its [`GalleryHandle`] is what
//!   lanes read from.
//! * [`exposure`]: whether the node's disk ever held personal data (a fresh learner's first
//!   snapshot install needs no key rotation).
//! * [`checkpoint`]: the replica checkpoint a node writes when it stops cleanly and starts from.
//! * [`network`]: openraft's network over the node's QUIC endpoint.
//! * [`node`]: a running node — storage, Raft, the endpoint, and the shredder.
//! * [`metrics`]: the node's Prometheus metrics (served at `metrics_listen`/metrics).
//! * [`config`]: the node configuration file.
//!
//! Log store and state machine share one sled database and the node's
//! [`Keyring`](crate::store::keyring::Keyring), but no trees.

pub mod authz;
pub mod checkpoint;
pub mod config;
pub mod exposure;
pub mod freshness;
pub mod log_store;
pub mod metrics;
pub mod network;
pub mod node;
pub mod snapshot;
pub mod state_machine;
#[cfg(test)]
mod tests;

pub use self::client::ClusterClient;
pub use self::config::NodeConfig;
pub use self::node::ClusterNode;
pub use self::state_machine::GalleryHandle;

pub use clearway_wire::{Response, client, protocol, typ};
