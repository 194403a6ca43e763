//! Laying one appliance down on disk from the port definition: `node.toml`, the node's
//! certificate bundle and the data directory, with their owners and modes.
//!
//! | path (under `--root`)            | mode | owner                 |
//! |----------------------------------|------|-----------------------|
//! | `<config_dir>/node.toml`         | 0640 | invoker, group `user` |
//! | `<config_dir>/tls/`              | 0750 | invoker, group `user` |
//! | `tls/ca.pem`, `tls/cert.pem`     | 0644 | invoker               |
//! | `tls/key.pem`                    | 0640 | invoker, group `user` |
//! | `<data_dir>/`                    | 0700 | `user`:`user`'s group |
//!
//! The service user can read its key and config but not change them. Nothing is overwritten
//! without `force` (a renewal), and the data directory is never emptied.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{NodeConfigs, PortDefinition};
use crate::cluster::typ::NodeId;
use crate::error::{Error, Result};
use crate::net::tls::{Bundle, PortCa, write_file};
use crate::net::{Identity, Role};

/// Where the node's certificate comes from.
pub enum Credentials {
    /// Issue a new one with the port CA (its key on this machine, e.g. during staging).
    Ca(PortCa),
    /// Install one issued elsewhere (the console's roll-out, or `port issue --node`).
    Bundle(Bundle),
}

/// The service account that runs the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The user's name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary group's gid.
    pub gid: u32,
}

impl Account {
    /// Looks a user up in `/etc/passwd` (the appliances' users are local system users).
    pub fn lookup(name: &str) -> Result<Account> {
        let path = Path::new("/etc/passwd");
        let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Account::find(&text, name).ok_or_else(|| {
            Error::Config(format!(
                "no user {name:?} in /etc/passwd (useradd --system --home-dir /var/lib/clearway --shell /usr/sbin/nologin {name})"
            ))
        })
    }

    /// Finds `name` in passwd(5) text.
    pub fn find(passwd: &str, name: &str) -> Option<Account> {
        passwd.lines().find_map(|line| {
            let mut f = line.split(':');
            if f.next()? != name {
                return None;
            }
            let _password = f.next()?;
            Some(Account {
                name: name.to_string(),
                uid: f.next()?.parse().ok()?,
                gid: f.next()?.parse().ok()?,
            })
        })
    }
}

/// What [`provision`] wrote, and what the operator still has to supply.
#[derive(Debug)]
pub struct Provisioned {
    /// The node's config file.
    pub node_toml: PathBuf,
    /// Its bundle directory.
    pub tls_dir: PathBuf,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Files the config names that are not there yet (a lane's authority certificates, which the
    /// authorities issue; its gate-network certificate, from the operator's gate-network CA).
    pub missing: Vec<PathBuf>,
}

/// `path` (absolute, as the node will see it) inside `root`.
pub fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Lays down node `id` of the port `def` inside `root` (`/` on the appliance itself). With
/// `account`, the files get the owners above (needs root); without, only the modes.
pub fn provision(
    def: &PortDefinition,
    id: NodeId,
    credentials: &Credentials,
    root: &Path,
    account: Option<&Account>,
    force: bool,
) -> Result<Provisioned> {
    let config = def.node_config(id).map_err(Error::Config)?;
    let bundle = match credentials {
        Credentials::Ca(ca) => {
            if ca.port() != def.id {
                return Err(Error::Config(format!(
                    "the CA is port {}'s, the definition is port {}'s",
                    ca.port(),
                    def.id
                )));
            }
            ca.issue(&Identity::Node(id), &node_role(&config))?
        }
        Credentials::Bundle(b) => {
            if b.port != def.id || b.identity != Identity::Node(id) {
                return Err(Error::Config(format!(
                    "the bundle is for {} of port {}, not node {id} of port {}",
                    b.identity, b.port, def.id
                )));
            }
            let role = node_role(&config);
            if b.role != role {
                return Err(Error::Config(format!(
                    "the bundle's certificate is for the role {}, but node {id} is {role} in the definition",
                    b.role
                )));
            }
            b.clone()
        }
    };

    let config_dir = under(root, &def.paths.config_dir);
    let node_toml = config_dir.join("node.toml");
    // As `NodeConfig::from_file` will resolve them: relative to node.toml's directory.
    let tls_dir = config_dir.join(&config.tls_dir);
    let resolve = |p: &Path| {
        if p.is_absolute() {
            under(root, p)
        } else {
            config_dir.join(p)
        }
    };
    let data_dir = resolve(&config.data_dir);
    let key_dir = resolve(&def.paths.key_dir);
    if !force {
        for p in [&node_toml, &tls_dir.join("key.pem")] {
            if p.exists() {
                return Err(Error::Config(format!(
                    "{} exists; this node is provisioned already (--force replaces its config and certificate, keeping its data)",
                    p.display()
                )));
            }
        }
    }

    let text = toml::to_string_pretty(&config)
        .map_err(|e| Error::Config(format!("node {id}: cannot write the config: {e}")))?;
    let text = format!(
        "# node {id} of port {} ({}), generated by `clearway-node port provision` from the port\n\
         # definition. Change the definition and provision again with --force, not this file.\n\n{text}",
        def.id, def.name
    );
    fs::create_dir_all(&config_dir).map_err(|e| Error::io(&config_dir, e))?;
    write_file(&node_toml, text.as_bytes(), 0o640)?;
    fs::create_dir_all(&tls_dir).map_err(|e| Error::io(&tls_dir, e))?;
    set_mode(&tls_dir, 0o750)?;
    bundle.save(&tls_dir)?;
    for (file, mode) in [("ca.pem", 0o644), ("cert.pem", 0o644), ("key.pem", 0o640)] {
        set_mode(&tls_dir.join(file), mode)?;
    }
    fs::create_dir_all(&data_dir).map_err(|e| Error::io(&data_dir, e))?;
    set_mode(&data_dir, 0o700)?;
    fs::create_dir_all(&key_dir).map_err(|e| Error::io(&key_dir, e))?;
    set_mode(&key_dir, 0o700)?;

    if let Some(a) = account {
        for p in [&node_toml, &tls_dir, &tls_dir.join("key.pem")] {
            chown(p, None, Some(a.gid))?;
        }
        chown(&data_dir, Some(a.uid), Some(a.gid))?;
        chown(&key_dir, Some(a.uid), Some(a.gid))?;
    }

    let mut missing = Vec::new();
    if let Some(lane) = &config.lane {
        for a in [&lane.macao, &lane.mainland].into_iter().flatten() {
            for p in [&a.ca_cert, &a.client_cert, &a.client_key] {
                if !under(root, p).exists() {
                    missing.push(p.clone());
                }
            }
        }
        for t in (lane.gates.tls.iter())
            .chain(&lane.document_reader.tls)
            .chain(&lane.fingerprint_reader.tls)
        {
            for p in [&t.ca_cert, &t.client_cert, &t.client_key] {
                if !under(root, p).exists() {
                    missing.push(p.clone());
                }
            }
        }
        // The issuers' CSCA certificates: without them every card scan goes to an officer.
        for p in lane.document_reader.csca_certs.iter() {
            if !under(root, p).exists() {
                missing.push(p.clone());
            }
        }
    }
    // The gate controller and the readers share the device network's files.
    missing.sort();
    missing.dedup();
    Ok(Provisioned {
        node_toml,
        tls_dir,
        data_dir,
        missing,
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(path, e))
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
    std::os::unix::fs::chown(path, uid, gid).map_err(|e| Error::io(path, e))
}

/// The role a node's certificate names: the lane of its channel, or a voter.
pub fn node_role(config: &crate::cluster::NodeConfig) -> Role {
    match &config.lane {
        Some(lane) => Role::Lane {
            channel: lane.procedure.channel.clone(),
        },
        None => Role::Voter,
    }
}
