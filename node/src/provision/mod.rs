//! Provisioning a port from its definition (`deploy/ports/<port>.toml`): each appliance's
//! `node.toml`, certificate bundle and data directory (`clearway-node port provision`), and
//! Prometheus' target file (`clearway-node port targets`).
//!
//! `definition.rs` is pure (the definition and everything that follows from it); `install.rs`
//! writes one node's files with their owners and modes.

pub mod definition;
pub mod install;
#[cfg(test)]
mod tests;

pub use definition::{NodePlan, PortDefinition};
pub use install::{Account, Credentials, Provisioned, provision};
