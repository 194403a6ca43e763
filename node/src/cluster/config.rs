//! The node configuration file (TOML). Every field has a documented default except the node's
//! identity and where it keeps its data.
//!
//! ```toml
//! node_id = 1
//! listen = "10.1.0.11:7400"
//! data_dir = "/var/lib/clearway"
//! key_file = "/var/lib/clearway-keys/node.keyring"   # required, outside data_dir
//! key_encryption_credential = "clearway-kek"         # systemd credential sealing the key files
//! tls_dir = "/etc/clearway/tls"      # ca.pem, cert.pem, key.pem from `clearway-node port issue`
//! role = "voter"
//!
//! [[peers]]                           # the other nodes `cluster init` sets up
//! id = 2
//! addr = "10.1.0.12:7400"
//! role = "voter"
//!
//! [raft]
//! heartbeat_ms = 250
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::typ::NodeId;
use crate::error::{Error, Result};

pub use clearway_wire::config::{GalleryConfig, Peer, RaftConfig, Role};

/// A node's configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id (must match its certificate). Required.
    pub node_id: NodeId,
    /// QUIC listen address. Required.
    pub listen: SocketAddr,
    /// Address other nodes reach this one at. Default: `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Where Prometheus scrapes `/metrics` (and `/healthz`), HTTP. Default: not served.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Where the sled database and snapshot live. Required.
    pub data_dir: PathBuf,
    /// The storage keyring (rotated on every cancellation). Required, outside `data_dir`; the
    /// lane's outbox keyring lives beside it (`outbox.keyring`). On appliances:
    /// `/var/lib/clearway-keys/node.keyring`, sealed under `key_encryption_credential`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The systemd credential (`LoadCredentialEncrypted=<name>:…`) holding the key-encryption key
    /// that seals `key_file` and the outbox key; read from `$CREDENTIALS_DIRECTORY`. Default: none
    /// (key files in the clear: development only).
    #[serde(default)]
    pub key_encryption_credential: Option<String>,
    /// Tests only: allow `key_file` inside `data_dir`. Default false: such a node refuses to
    /// start.
    #[serde(default)]
    pub allow_key_in_data_dir: bool,
    /// Directory with `ca.pem`, `cert.pem`, `key.pem`. Required.
    pub tls_dir: PathBuf,
    /// Voter or learner (default learner); `cluster init --config` uses the roles. Afterwards
    /// membership is replicated state, changed with `cluster promote|demote|remove`.
    #[serde(default)]
    pub role: Role,
    /// The port's other nodes, for `cluster init`. Default none.
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// Raft timing and durability.
    #[serde(default)]
    pub raft: RaftConfig,
    /// The 1:N index's model.
    #[serde(default)]
    pub gallery: GalleryConfig,
    /// The channel this node runs, if it is a lane node (`[lane]`). Default: none (a voter
    /// appliance without a lane).
    #[serde(default)]
    pub lane: Option<crate::lane::LaneConfig>,
}

impl NodeConfig {
    /// Reads and validates a config file; relative paths are taken from the file's directory.
    pub fn from_file(path: &Path) -> Result<NodeConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        NodeConfig::parse(&text, base)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses and validates a config file's text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> std::result::Result<NodeConfig, String> {
        let mut config: NodeConfig = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        for p in [&mut config.data_dir, &mut config.tls_dir] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(k) = config.key_file.as_mut().filter(|k| k.is_relative()) {
            *k = base.join(&*k);
        }
        if let Some(lane) = config.lane.as_mut() {
            let mut paths: Vec<&mut PathBuf> = Vec::new();
            for a in [lane.macao.as_mut(), lane.mainland.as_mut()]
                .into_iter()
                .flatten()
            {
                paths.extend([&mut a.ca_cert, &mut a.client_cert, &mut a.client_key]);
            }
            paths.extend(lane.outbox_dir.as_mut());
            if let Some(t) = lane.gates.tls.as_mut() {
                paths.extend([&mut t.ca_cert, &mut t.client_cert, &mut t.client_key]);
            }
            paths.extend(lane.document_reader.csca_certs.as_mut());
            if let Some(t) = lane.document_reader.tls.as_mut() {
                paths.extend([&mut t.ca_cert, &mut t.client_cert, &mut t.client_key]);
            }
            for p in paths.into_iter().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.raft.validate()?;
        self.gallery.validate()?;
        if self.peers.iter().any(|p| p.id == self.node_id) {
            return Err("peers must not list this node itself".into());
        }
        if let Some(lane) = &self.lane {
            lane.validate().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The storage keyring file; a missing `key_file` or one inside `data_dir` is refused with
    /// what to do (unless `allow_key_in_data_dir`).
    pub fn key_file(&self) -> Result<PathBuf> {
        let key_file = self.key_file.clone().ok_or_else(|| {
            Error::Config(format!(
                "node {}: key_file is not set. The storage keyring must live outside the data \
                 directory {} (e.g. key_file = \"/var/lib/clearway-keys/node.keyring\"; a node \
                 provisioned before this requirement: move <data_dir>/node.keyring and \
                 <data_dir>/outbox.key there and set key_file)",
                self.node_id,
                self.data_dir.display()
            ))
        })?;
        crate::store::custody::check_outside(
            &key_file,
            &self.data_dir,
            self.allow_key_in_data_dir,
        )?;
        Ok(key_file)
    }

    /// The lane's outbox keyring: `outbox.keyring` beside the node's keyring (an outbox from
    /// before key epochs had one key in `outbox.key` there; the lane migrates it).
    pub fn outbox_key_file(&self) -> Result<PathBuf> {
        Ok(self.key_file()?.with_file_name("outbox.keyring"))
    }

    /// What protects the key files: the configured credential's key-encryption key, or nothing.
    pub fn custody(&self) -> Result<crate::store::custody::Custody> {
        match &self.key_encryption_credential {
            Some(name) => crate::store::custody::Custody::from_credential(name),
            None => Ok(crate::store::custody::Custody::plain()),
        }
    }

    /// The address other nodes use.
    pub fn advertise(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }

    /// openraft's config.
    pub fn openraft(&self, port: &str) -> Result<openraft::Config> {
        let r = &self.raft;
        let config = openraft::Config {
            cluster_name: port.to_string(),
            heartbeat_interval: r.heartbeat_ms,
            election_timeout_min: r.election_timeout_min_ms,
            election_timeout_max: r.election_timeout_max_ms,
            install_snapshot_timeout: r.snapshot_chunk_timeout_ms,
            snapshot_max_chunk_size: r.snapshot_chunk_bytes,
            max_payload_entries: r.max_payload_entries,
            max_in_snapshot_log_to_keep: r.keep_logs_after_snapshot,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(r.snapshot_every),
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| Error::Config(format!("raft: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_with_defaults_and_refuses_nonsense() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "node_id = 1\nlisten = \"127.0.0.1:7400\"\ndata_dir = \"data\"\ntls_dir = \"tls\"\n",
        )
        .expect("write");
        let c = NodeConfig::from_file(&path).expect("parses");
        assert_eq!(c.data_dir, dir.path().join("data"));
        // No key file: refused, with what to do; inside the data directory: refused unless a
        // test says so; outside: the keyring and the outbox key beside it.
        let err = c.key_file().expect_err("no key file");
        assert!(err.to_string().contains("key_file is not set"), "{err}");
        let mut c = c;
        c.key_file = Some(dir.path().join("data/node.keyring"));
        let err = c.key_file().expect_err("inside");
        assert!(
            err.to_string().contains("inside the data directory"),
            "{err}"
        );
        c.allow_key_in_data_dir = true;
        assert_eq!(
            c.key_file().expect("a test may"),
            dir.path().join("data/node.keyring")
        );
        c.allow_key_in_data_dir = false;
        c.key_file = Some(dir.path().join("keys/node.keyring"));
        assert_eq!(
            c.key_file().expect("outside"),
            dir.path().join("keys/node.keyring")
        );
        assert_eq!(
            c.outbox_key_file().expect("outside"),
            dir.path().join("keys/outbox.keyring")
        );
        assert!(c.raft.fsync, "fsync on by default");
        assert_eq!(c.role, Role::Learner);
        c.openraft("hengqin").expect("valid raft config");

        // A lane's file paths are taken from the config file's directory too.
        let lane = r#"
[lane]
listen = "127.0.0.1:7600"
[lane.camera_gate1]
name = "gate1"
source = "test://"
[lane.camera_gate2]
name = "gate2"
source = "test://"
[lane.gates]
address = "127.0.0.1:1502"
[lane.document_reader]
address = "127.0.0.1:7400"
[lane.fingerprint_reader]
address = "127.0.0.1:7500"
[lane.macao]
base_url = "https://127.0.0.1:8443"
ca_cert = "authority/ca.pem"
client_cert = "authority/client.pem"
client_key = "/abs/client.key"
[lane.mainland]
base_url = "https://127.0.0.1:8444"
ca_cert = "authority/ca.pem"
client_cert = "authority/client.pem"
client_key = "authority/client.key"
"#;
        let text =
            "node_id = 1\nlisten = \"127.0.0.1:7400\"\ndata_dir = \"data\"\ntls_dir = \"tls\"\n";
        std::fs::write(&path, format!("{text}{lane}")).expect("write");
        let c = NodeConfig::from_file(&path).expect("lane config parses");
        let parsed = c.lane.expect("lane section");
        assert_eq!(
            parsed.macao.as_ref().expect("macao").ca_cert,
            dir.path().join("authority/ca.pem")
        );
        assert_eq!(
            parsed.macao.as_ref().expect("macao").client_key,
            PathBuf::from("/abs/client.key")
        );
        assert_eq!(parsed.procedure.utc_offset_minutes, 480, "defaults apply");
        std::fs::write(
            &path,
            format!("{text}{lane}[lane.procedure]\nverify_threshold = 3.0\n"),
        )
        .expect("write");
        let e = NodeConfig::from_file(&path)
            .expect_err("bad lane")
            .to_string();
        assert!(e.contains("[lane.procedure] verify_threshold"), "{e}");

        for (text, needle) in [
            ("node_id = 1\n", "missing field"),
            (
                "node_id = 1\nlisten = \"nowhere\"\ndata_dir = \"d\"\ntls_dir = \"t\"\n",
                "invalid socket address",
            ),
            (
                "node_id = 1\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntls_dir = \"t\"\nbogus = 1\n",
                "unknown field",
            ),
            (
                "node_id = 1\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntls_dir = \"t\"\n[raft]\nheartbeat_ms = 5000\n",
                "election_timeout_min_ms",
            ),
            (
                "node_id = 1\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntls_dir = \"t\"\n[[peers]]\nid = 1\naddr = \"x\"\n",
                "itself",
            ),
        ] {
            std::fs::write(&path, text).expect("write");
            let err = NodeConfig::from_file(&path).expect_err(text).to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
