//! Provisioning a port from its definition (`deploy/ports/<port>.toml`): each appliance's
//! `node.toml`, certificate bundle and data directory (`clearway-node port provision`), and
//! Prometheus' target file (`clearway-node port targets`).
//!
//! The definition itself is `clearway_wire::definition` (the console reads it too);
//! `definition.rs` adds what only the node knows, each node's config with its lane, and is pure;
//! `install.rs` writes one node's files with their owners and modes.

pub mod definition;
pub mod install;
#[cfg(test)]
mod tests;

pub use definition::{NodeConfigs, NodePlan, PortDefinition};
pub use install::{Account, Credentials, Provisioned, provision};
