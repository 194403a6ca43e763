//! A port definition: the whole port on one page — its voters, its halls and their channels, and
//! how each lane node reaches its channel's devices (`deploy/ports/hengqin.toml`). Everything
//! here is pure: every node's config (`clearway_node::provision::definition`, which adds the
//! lane's part) and Prometheus' target file follow from the definition alone, so they are the
//! same wherever they are generated.
//!
//! ```toml
//! id = "hengqin"                 # as the port CA names it
//! name = "Hengqin Port"
//! utc_offset_minutes = 480       # default 480
//! console = "10.1.0.20:9480"     # the console's metrics_listen, for the target file; default none
//!
//! [listen]                       # the same on every node; defaults shown
//! quic = 7400
//! metrics = 9400
//! lane = 7600
//!
//! [paths]                        # defaults shown
//! config_dir = "/etc/clearway"   # node.toml and tls/
//! data_dir = "/var/lib/clearway"
//! key_dir = "/var/lib/clearway-keys"   # never inside data_dir
//! key_encryption_credential = "clearway-kek"   # default: none (key files in the clear)
//!
//! [[voter]]                      # 1 to 7 voting appliances
//! id = 1
//! addr = "10.1.0.11"
//!
//! [policy]                     # the port's eligibility policy; defaults shown (Hengqin)
//! authorities = ["macao", "mainland"]   # who inspects at its channels: one or two
//! prerequisites = true          # seed 000's prerequisites (false: seed 001's ports)
//!
//! [[hall]]
//! id = "passenger"
//! name = "Passenger Inspection Hall"
//! direction = "Macao → Hengqin" # which way its channels clear travellers (words) …
//! channel_directions = { "25-48" = "Hengqin → Macao" }   # … unless a range says otherwise
//! planned = false               # true: in the plan, not built yet (no nodes, no targets)
//! channels = 48                  # channel n (1-based) …
//! first_node_id = 101            # … is lane node first_node_id + n - 1 …
//! node_addr = "10.1.1.{n}"       # … at this address
//! [hall.lane]                    # node.toml's [lane] for each channel; "{n}", "{node_addr}" replaced
//! camera_gate1 = { name = "gate1", source = "rtsp://10.11.{n}.21:554/stream1" }
//! # …
//! ```
//!
//! `[raft]` and `[gallery]` are node.toml's sections, given to every node.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{GalleryConfig, Peer, RaftConfig, Role};
use crate::typ::NodeId;

/// Most voters a port may have; more only slows every commit down.
pub const MAX_VOTERS: usize = 7;
/// Most channels in one hall.
pub const MAX_CHANNELS: u32 = 999;

/// The port, as `deploy/ports/<port>.toml` describes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortDefinition {
    /// The port's id, as its CA names it (`hengqin`). Required.
    pub id: String,
    /// Its name for people. Required.
    pub name: String,
    /// The port's offset from UTC, minutes; every lane's travel day. Default 480.
    #[serde(default = "default_utc_offset")]
    pub utc_offset_minutes: i32,
    /// The console's `/metrics` address (`host:port`), listed in the target file. Default none.
    #[serde(default)]
    pub console: Option<String>,
    /// The ports every node listens on.
    #[serde(default)]
    pub listen: ListenPorts,
    /// Where nodes keep configuration and data.
    #[serde(default)]
    pub paths: Paths,
    /// The voting appliances (`[[voter]]`). At least one.
    #[serde(rename = "voter", default)]
    pub voters: Vec<VoterDefinition>,
    /// The halls and their channels (`[[hall]]`).
    #[serde(rename = "hall", default)]
    pub halls: Vec<HallDefinition>,
    /// Raft timing for every node.
    #[serde(default)]
    pub raft: RaftConfig,
    /// The 1:N index's model for every node.
    #[serde(default)]
    pub gallery: GalleryConfig,
    /// Who inspects at the port's channels and whether seed 000's prerequisites apply; every
    /// lane's `procedure.authorities` / `procedure.prerequisites`. Default: Hengqin's.
    #[serde(default)]
    pub policy: clearway_gallery::Policy,
}

fn default_utc_offset() -> i32 {
    480
}

/// Listening ports, the same on every node (each node has its own address).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenPorts {
    /// QUIC: Raft and clients. Default 7400.
    pub quic: u16,
    /// HTTP `/metrics` and `/healthz`. Default 9400.
    pub metrics: u16,
    /// Lane nodes' gate-screen API. Default 7600.
    pub lane: u16,
}

impl Default for ListenPorts {
    fn default() -> Self {
        ListenPorts {
            quic: 7400,
            metrics: 9400,
            lane: 7600,
        }
    }
}

/// Where a node keeps its files.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    /// `node.toml` and `tls/` (the node's bundle); absolute. Default `/etc/clearway`.
    pub config_dir: PathBuf,
    /// The node's database and snapshots. Default `/var/lib/clearway` (the systemd unit's state
    /// directory). A relative path is taken from `config_dir`, as node.toml reads it (several
    /// nodes on one test machine).
    pub data_dir: PathBuf,
    /// The node's key files (storage keyring, outbox key): never inside `data_dir`. Default
    /// `/var/lib/clearway-keys` (a second state directory of the unit); relative as `data_dir`.
    pub key_dir: PathBuf,
    /// The systemd credential whose key-encryption key seals the key files
    /// (`LoadCredentialEncrypted=` in deploy/systemd/clearway-node.service). Default none.
    pub key_encryption_credential: Option<String>,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            config_dir: PathBuf::from("/etc/clearway"),
            data_dir: PathBuf::from("/var/lib/clearway"),
            key_dir: PathBuf::from("/var/lib/clearway-keys"),
            key_encryption_credential: None,
        }
    }
}

/// A voting appliance.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoterDefinition {
    /// Its node id.
    pub id: NodeId,
    /// Its address.
    pub addr: IpAddr,
}

/// A hall: its channels and how their lane nodes are set up.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HallDefinition {
    /// The hall's id, as the console's `[[port.hall]] id` (`passenger`).
    pub id: String,
    /// Its name for people.
    pub name: String,
    /// How many channels (1 to 999).
    pub channels: u32,
    /// Node id of channel 1's lane node; channel n has `first_node_id + n - 1`.
    pub first_node_id: NodeId,
    /// Channel n's lane node address, with `{n}` for the channel number (`10.1.1.{n}`).
    pub node_addr: String,
    /// node.toml's `[lane]` section for every channel, `{n}` and `{node_addr}` replaced in its
    /// strings. `listen` and `procedure.channel` / `utc_offset_minutes` / `authorities` /
    /// `prerequisites` / `direction` come from the definition and must not be given.
    pub lane: toml::Table,
    /// Which way the hall's channels clear travellers, in words (`Macao → Hengqin`). Seed 000:
    /// registration is made travelling in either direction. Default: not said.
    #[serde(default)]
    pub direction: String,
    /// Channels whose direction differs from the hall's: `"25-48"` or `"7"` → words.
    #[serde(default)]
    pub channel_directions: std::collections::BTreeMap<String, String>,
    /// In the port's plan but not built yet (Hengqin's departure and arrival halls, planned for
    /// the year after the launch): validated and listed, but no nodes, configs or targets.
    #[serde(default)]
    pub planned: bool,
}

impl HallDefinition {
    /// Channel `n`'s direction, in words.
    pub fn direction_of(&self, n: u32) -> std::result::Result<&str, String> {
        for (range, words) in &self.channel_directions {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            let parse = |x: &str| {
                x.trim().parse::<u32>().map_err(|_| {
                    format!(
                        "hall {}: channel_directions key {range:?} is not N or N-M",
                        self.id
                    )
                })
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a == 0 || a > b || b > self.channels {
                return Err(format!(
                    "hall {}: channel_directions {range:?} outside 1..={}",
                    self.id, self.channels
                ));
            }
            if (a..=b).contains(&n) {
                return Ok(words);
            }
        }
        Ok(&self.direction)
    }
}

/// One node of the port, as the definition places it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodePlan {
    /// Its node id.
    pub id: NodeId,
    /// Voter (appliance) or learner (lane node).
    pub role: Role,
    /// Its address.
    pub addr: IpAddr,
    /// The channel, for a lane node: (hall id, channel number 1…).
    pub channel: Option<(String, u32)>,
}

impl NodePlan {
    /// The channel's canonical id `<port>/<hall>/<n>`, as the lane's `procedure.channel`.
    pub fn channel_id(&self, port: &str) -> Option<String> {
        self.channel
            .as_ref()
            .map(|(hall, n)| format!("{port}/{hall}/{n}"))
    }
}

impl PortDefinition {
    /// Parses a definition and checks it as [`PortDefinition::validate`] does.
    pub fn parse(text: &str) -> std::result::Result<PortDefinition, String> {
        let def: PortDefinition = toml::from_str(text).map_err(|e| e.message().to_string())?;
        def.validate()?;
        Ok(def)
    }

    /// Checks what the definition itself says: names, ids and addresses unique, ranges, the
    /// policy, every lane section's port-wide keys left to the definition. A lane section's
    /// device settings are the lane's to check (`clearway_node::provision::definition::check`
    /// loads every node's config as the node will).
    pub fn validate(&self) -> std::result::Result<(), String> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !name_ok(&self.id) {
            return Err(format!(
                "id {:?}: 1 to 32 lowercase letters, digits and '-'",
                self.id
            ));
        }
        if !self.paths.config_dir.is_absolute() {
            return Err("paths.config_dir must be an absolute path".into());
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err("utc_offset_minutes must be -720..=840".into());
        }
        if self.voters.is_empty() || self.voters.len() > MAX_VOTERS {
            return Err(format!("1 to {MAX_VOTERS} [[voter]] entries are needed"));
        }
        let ports = [self.listen.quic, self.listen.metrics, self.listen.lane];
        if ports.contains(&0) || ports.iter().collect::<BTreeSet<_>>().len() != 3 {
            return Err(
                "[listen] quic, metrics and lane must be three different ports (not 0)".into(),
            );
        }
        if let Some(c) = &self.console {
            if c.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(format!("console {c:?}: expected HOST:PORT"));
            }
        }
        let mut halls = BTreeSet::new();
        for h in &self.halls {
            if !name_ok(&h.id) || !halls.insert(h.id.as_str()) {
                return Err(format!(
                    "hall id {:?}: missing, repeated or not 1 to 32 lowercase letters, digits and '-'",
                    h.id
                ));
            }
            if h.channels == 0 || h.channels > MAX_CHANNELS {
                return Err(format!(
                    "hall {}: channels must be 1..={MAX_CHANNELS}",
                    h.id
                ));
            }
            h.direction_of(1)?;
        }
        self.policy
            .validate()
            .map_err(|e| format!("[policy] {e}"))?;
        self.raft.validate()?;
        self.gallery.validate()?;
        let nodes = self.nodes()?;
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for n in &nodes {
            if !ids.insert(n.id) {
                return Err(format!("node id {} is used twice", n.id));
            }
            if !addrs.insert(n.addr) {
                return Err(format!("address {} is used by two nodes", n.addr));
            }
        }
        for (hall, n, addr) in self.lanes()? {
            self.lane_table(&hall, n, addr)?;
        }
        Ok(())
    }

    /// Every lane section to check: each built channel's, and a planned hall's first channel's
    /// (so the plan is ready to build), as (hall, channel, node address).
    pub fn lanes(&self) -> std::result::Result<Vec<(String, u32, IpAddr)>, String> {
        let mut lanes: Vec<_> = self
            .nodes()?
            .into_iter()
            .filter_map(|n| n.channel.map(|(hall, c)| (hall, c, n.addr)))
            .collect();
        for h in self.halls.iter().filter(|h| h.planned) {
            let text = h.node_addr.replace("{n}", "1");
            let addr = text
                .parse()
                .map_err(|_| format!("hall {}: node_addr {text:?} is not an IP address", h.id))?;
            lanes.push((h.id.clone(), 1, addr));
        }
        Ok(lanes)
    }

    /// Every node: the voters, then each hall's lanes in channel order.
    pub fn nodes(&self) -> std::result::Result<Vec<NodePlan>, String> {
        let mut nodes: Vec<NodePlan> = self
            .voters
            .iter()
            .map(|v| NodePlan {
                id: v.id,
                role: Role::Voter,
                addr: v.addr,
                channel: None,
            })
            .collect();
        for h in self.halls.iter().filter(|h| !h.planned) {
            for n in 1..=h.channels {
                let id = h
                    .first_node_id
                    .checked_add(u64::from(n) - 1)
                    .ok_or_else(|| format!("hall {}: node ids overflow", h.id))?;
                let text = h.node_addr.replace("{n}", &n.to_string());
                let addr = text.parse().map_err(|_| {
                    format!(
                        "hall {} channel {n}: node_addr {text:?} is not an IP address",
                        h.id
                    )
                })?;
                nodes.push(NodePlan {
                    id,
                    role: Role::Learner,
                    addr,
                    channel: Some((h.id.clone(), n)),
                });
            }
        }
        Ok(nodes)
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> std::result::Result<NodePlan, String> {
        self.nodes()?
            .into_iter()
            .find(|n| n.id == id)
            .ok_or_else(|| format!("port {} has no node {id}", self.id))
    }

    /// The other voters, as node `id`'s `[[peers]]`: every node lists the voters, so
    /// `cluster init --config` on any voter sets the voters up; lanes join as learners
    /// (console roll-out or `cluster add-learner`).
    pub fn peers_of(&self, id: NodeId) -> Vec<Peer> {
        self.voters
            .iter()
            .filter(|v| v.id != id)
            .map(|v| Peer {
                id: v.id,
                addr: SocketAddr::new(v.addr, self.listen.quic).to_string(),
                role: Role::Voter,
            })
            .collect()
    }

    /// Channel `n` of `hall`'s `[lane]` section as a TOML table: `{n}` and `{node_addr}`
    /// replaced, the screens' loopback listener and the procedure's port-wide settings filled in.
    /// Whether the devices' settings are right is the lane's to say (the node's
    /// `provision::definition`, which loads the table as the lane's config).
    pub fn lane_table(
        &self,
        hall: &str,
        n: u32,
        addr: IpAddr,
    ) -> std::result::Result<toml::Table, String> {
        let h = self
            .halls
            .iter()
            .find(|h| h.id == hall)
            .ok_or_else(|| format!("no hall {hall}"))?;
        let bad = |why: String| format!("hall {hall} channel {n}: [hall.lane] {why}");
        let mut table = h.lane.clone();
        for (_, value) in table.iter_mut() {
            substitute(value, n, addr);
        }
        if table.contains_key("listen") {
            return Err(bad(
                "must not set listen (it is [listen] lane on the appliance's loopback)".into(),
            ));
        }
        // The gate screens are the appliance's own displays: never on the node's network.
        table.insert(
            "listen".into(),
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, self.listen.lane))
                .to_string()
                .into(),
        );
        let procedure = table
            .entry("procedure")
            .or_insert_with(|| toml::Table::new().into())
            .as_table_mut()
            .ok_or_else(|| bad("procedure must be a table".into()))?;
        for key in [
            "channel",
            "utc_offset_minutes",
            "authorities",
            "prerequisites",
            "destination",
            "direction",
        ] {
            if procedure.contains_key(key) {
                return Err(bad(format!(
                    "must not set procedure.{key} (the definition does)"
                )));
            }
        }
        procedure.insert("channel".into(), format!("{}/{hall}/{n}", self.id).into());
        procedure.insert(
            "utc_offset_minutes".into(),
            i64::from(self.utc_offset_minutes).into(),
        );
        procedure.insert(
            "authorities".into(),
            toml::Value::Array(
                self.policy
                    .authorities
                    .iter()
                    .map(|a| a.as_str().into())
                    .collect(),
            ),
        );
        procedure.insert("prerequisites".into(), self.policy.prerequisites.into());
        // Absent: any destination (the procedure's default is Macao, so say so explicitly).
        procedure.insert(
            "destination".into(),
            self.policy
                .destination
                .map_or("any", clearway_gallery::Destination::as_str)
                .into(),
        );
        procedure.insert("direction".into(), h.direction_of(n)?.into());
        Ok(table)
    }

    /// Prometheus' target file of the port (`file_sd` JSON): one group per node with the
    /// labels `deploy/prometheus/README.md` lists, and the console if the definition names it.
    pub fn targets(&self) -> std::result::Result<String, String> {
        let mut groups = Vec::new();
        for n in self.nodes()? {
            let labels = Labels {
                port: Some(&self.id),
                role: "node",
                member: Some(match n.role {
                    Role::Voter => "voter",
                    Role::Learner => "learner",
                }),
                node: Some(n.id.to_string()),
                hall: n.channel.as_ref().map(|(hall, _)| hall.as_str()),
                channel: n.channel_id(&self.id),
            };
            groups.push(group(
                SocketAddr::new(n.addr, self.listen.metrics).to_string(),
                labels,
            ));
        }
        if let Some(console) = &self.console {
            let labels = Labels {
                port: None,
                role: "console",
                member: None,
                node: None,
                hall: None,
                channel: None,
            };
            groups.push(group(console.clone(), labels));
        }
        Ok(format!("[\n  {}\n]\n", groups.join(",\n  ")))
    }
}

/// A target group's labels, in the order the README shows them.
#[derive(Serialize)]
struct Labels<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<&'a str>,
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    member: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hall: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
}

#[derive(Serialize)]
struct Group<'a> {
    targets: [String; 1],
    labels: Labels<'a>,
}

fn group(target: String, labels: Labels<'_>) -> String {
    // Serialising strings and string maps cannot fail.
    serde_json::to_string(&Group {
        targets: [target],
        labels,
    })
    .unwrap_or_default()
}

/// Replaces `{n}` and `{node_addr}` in every string of `value`.
fn substitute(value: &mut toml::Value, n: u32, addr: IpAddr) {
    match value {
        toml::Value::String(s) => {
            *s = s
                .replace("{n}", &n.to_string())
                .replace("{node_addr}", &addr.to_string());
        }
        toml::Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, n, addr)),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| substitute(v, n, addr)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HENGQIN: &str = include_str!("../../../deploy/ports/hengqin.toml");

    /// What the console checks without the node: the whole definition but the lane sections'
    /// device settings (those are `clearway_node::provision::definition`'s, tested there).
    #[test]
    fn the_definition_is_checked_without_the_lane() {
        let def = PortDefinition::parse(HENGQIN).expect("the shipped Hengqin definition");
        assert!(!def.lanes().expect("lanes").is_empty());
        for (bad, needle) in [
            (
                "\n[raft]\nheartbeat_ms = 2000\n",
                "raft.election_timeout_min_ms must exceed",
            ),
            ("\n[raft]\nsnapshot_every = 0\n", "raft.snapshot_every"),
            ("\n[gallery]\ndim = 0\n", "gallery.dim must be"),
        ] {
            let err = PortDefinition::parse(&format!("{HENGQIN}{bad}")).expect_err(bad);
            assert!(err.contains(needle), "{bad}: {err}");
        }
        let listen = HENGQIN.replacen("[hall.lane]\n", "[hall.lane]\nlisten = \"0.0.0.0:1\"\n", 1);
        assert_ne!(listen, HENGQIN);
        let err = PortDefinition::parse(&listen).expect_err("a lane's listen");
        assert!(err.contains("must not set listen"), "{err}");
    }
}
