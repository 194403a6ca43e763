//! What the node adds to a port definition ([`clearway_wire::definition`], shared with the
//! console): each node's whole `node.toml`, its `[lane]` loaded and checked as the lane will
//! load it. Pure, like the definition: the same configs wherever they are generated.
//!
//! [`parse`] and [`from_file`] check everything; `PortDefinition::parse` alone leaves the lane
//! sections' device settings unchecked (the console, which has no lane code, previews with it).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

pub use clearway_wire::definition::*;

use crate::cluster::config::NodeConfig;
use crate::cluster::typ::NodeId;
use crate::error::{Error, Result};
use crate::lane::LaneConfig;

/// Parses a definition and checks all of it, every node's config included.
pub fn parse(text: &str) -> std::result::Result<PortDefinition, String> {
    let def = PortDefinition::parse(text)?;
    check(&def)?;
    Ok(def)
}

/// Reads a definition file and checks all of it.
pub fn from_file(path: &Path) -> Result<PortDefinition> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// Checks what [`PortDefinition::validate`] leaves to the node: every node's config, and every
/// lane section (a planned hall's first channel's too) as the lane loads it.
pub fn check(def: &PortDefinition) -> std::result::Result<(), String> {
    let nodes = def.nodes()?;
    for n in &nodes {
        def.node_config(n.id)?;
    }
    // A built channel's lane config was checked with its node's; a planned hall's channels have
    // no node yet, so theirs are checked on their own.
    let built: std::collections::BTreeSet<(String, u32)> =
        nodes.into_iter().filter_map(|n| n.channel).collect();
    for (hall, n, addr) in def.lanes()? {
        if !built.contains(&(hall.clone(), n)) {
            def.lane_config(&hall, n, addr)?;
        }
    }
    Ok(())
}

/// The node configs a definition implies.
pub trait NodeConfigs {
    /// The `node.toml` of node `id` (its peers: [`PortDefinition::peers_of`]).
    fn node_config(&self, id: NodeId) -> std::result::Result<NodeConfig, String>;
    /// Channel `n` of `hall`'s lane config, loaded and checked.
    fn lane_config(
        &self,
        hall: &str,
        n: u32,
        addr: IpAddr,
    ) -> std::result::Result<LaneConfig, String>;
}

impl NodeConfigs for PortDefinition {
    fn node_config(&self, id: NodeId) -> std::result::Result<NodeConfig, String> {
        let node = self.node(id)?;
        let lane = match &node.channel {
            Some((hall, n)) => Some(self.lane_config(hall, *n, node.addr)?),
            None => None,
        };
        let config = NodeConfig {
            node_id: id,
            listen: SocketAddr::new(node.addr, self.listen.quic),
            advertise: None,
            metrics_listen: Some(SocketAddr::new(node.addr, self.listen.metrics)),
            data_dir: self.paths.data_dir.clone(),
            key_file: Some(self.paths.key_dir.join("node.keyring")),
            key_encryption_credential: self.paths.key_encryption_credential.clone(),
            allow_key_in_data_dir: false,
            // Beside node.toml, wherever that is (node.toml's relative paths are its own dir's).
            tls_dir: PathBuf::from("tls"),
            role: node.role,
            peers: self.peers_of(id),
            raft: self.raft.clone(),
            gallery: self.gallery.clone(),
            lane,
        };
        config.validate().map_err(|e| format!("node {id}: {e}"))?;
        Ok(config)
    }

    fn lane_config(
        &self,
        hall: &str,
        n: u32,
        addr: IpAddr,
    ) -> std::result::Result<LaneConfig, String> {
        let bad = |why: String| format!("hall {hall} channel {n}: [hall.lane] {why}");
        let lane: LaneConfig = toml::Value::Table(self.lane_table(hall, n, addr)?)
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        lane.validate().map_err(|e| {
            bad(match e {
                Error::Config(why) => why,
                e => e.to_string(),
            })
        })?;
        Ok(lane)
    }
}
