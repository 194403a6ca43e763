//! Port administration: rolling out ports and nodes, initialising clusters, users; and the
//! audit page (supervisors of the port and port admins).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use crate::auth::{Millis, generate_password};
use crate::config::PortConfig;
use crate::dto::{
    AuditView, BundleView, ConsoleAuditView, CreatedUser, ManagedUser, PortDefinition, Role,
    RolloutView, SessionView, USER_ACTIONS, UserView, Viewer, WriteReceipt,
};
use crate::error::{Error, Result};
use crate::port_api::{AuditEntry, Change};
use crate::rollout::{check_port_id, parse_halls, parse_nodes};

use super::{Console, PortHandle, Write, check_reason, check_text, port_def};

/// The create-port form as submitted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortForm {
    /// Port id.
    pub id: String,
    /// Name.
    pub name: String,
    /// UTC offset, minutes.
    pub utc_offset_minutes: String,
    /// Halls, one per line: `id | name | channels`.
    pub halls: String,
    /// Seed nodes: `1=addr, 2=addr`.
    pub nodes: String,
}

/// The largest port definition file the console reads (Hengqin's, 64 channels, is about 6 KiB).
const MAX_DEFINITION_BYTES: usize = 256 * 1024;

impl Console {
    fn admin(&self, v: &Viewer, what: &str) -> Result<()> {
        self.require(v, Role::PortAdmin, what)
    }

    /// Every port's definition (port admins).
    pub fn rollout_ports(&self, v: &Viewer) -> Result<Vec<PortDefinition>> {
        self.admin(v, "roll out ports")?;
        Ok(self.ports().iter().map(|p| p.def.view()).collect())
    }

    /// Creates a port (lab CAs only, `lab_ca`): CA under the data dir (key 0600), the console's
    /// client bundle, halls and seed nodes; its poller starts at once.
    pub fn create_port(
        &self,
        v: &Viewer,
        f: &PortForm,
        reason: &str,
        now: Millis,
    ) -> Result<(PortDefinition, Arc<PortHandle>)> {
        self.admin(v, "create ports")?;
        let id = f.id.trim();
        check_port_id(id)?;
        if self.port(id).is_ok() {
            return Err(Error::Invalid(format!("port {id} already exists")));
        }
        let offset = match f.utc_offset_minutes.trim() {
            "" => 480,
            s => s.parse::<i32>().map_err(|_| {
                Error::Invalid(format!("UTC offset {s:?} is not a number of minutes"))
            })?,
        };
        let config = PortConfig {
            id: id.to_string(),
            name: check_text("the port's name", &f.name)?,
            utc_offset_minutes: offset,
            bundle_dir: Default::default(),
            nodes: parse_nodes(&f.nodes)?,
            halls: parse_halls(&f.halls)?,
            dashboard_url: None,
        };
        // Check everything but the bundle before a CA is made.
        PortConfig {
            bundle_dir: "/".into(),
            ..config.clone()
        }
        .validate()
        .map_err(Error::Invalid)?;
        let reason = check_reason(reason)?;
        let config = self.rollout.create_port(config)?;
        let def = port_def(&config, true)?;
        let handle = Arc::new(PortHandle::new(
            def,
            Duration::from_millis(self.config.poll_timeout_ms),
            now,
        ));
        self.add_port(handle.clone());
        // Console-local: no cluster exists yet to hold an audit record; the console's own log
        // does (a reason is free text and stays out of the process log).
        info!(user = %v.name, port = %id, reason_chars = reason.chars().count(), "Port created.");
        self.record(v, "port.create", id, &reason, now)?;
        Ok((handle.def.view(), handle))
    }

    /// What a port definition file (`deploy/ports/<port>.toml`, the file `clearway-node port
    /// provision` reads) would create: its id, name, offset, halls with their channels, and its
    /// voters as the console's seed nodes. Nothing is created.
    pub fn preview_definition(&self, v: &Viewer, text: &str) -> Result<(PortForm, PortDefinition)> {
        self.admin(v, "create ports")?;
        if text.len() > MAX_DEFINITION_BYTES {
            return Err(Error::Invalid(format!(
                "the port definition is over {} KiB",
                MAX_DEFINITION_BYTES / 1024
            )));
        }
        let def = clearway_wire::definition::PortDefinition::parse(text)
            .map_err(|e| Error::Invalid(format!("the port definition: {e}")))?;
        if let Some(h) = def.halls.iter().find(|h| h.name.contains('|')) {
            return Err(Error::Invalid(format!(
                "hall {}: a name may not contain `|`",
                h.id
            )));
        }
        let seeds: Vec<(u64, String)> = def
            .voters
            .iter()
            .map(|n| (n.id, SocketAddr::new(n.addr, def.listen.quic).to_string()))
            .collect();
        let form = PortForm {
            id: def.id.clone(),
            name: def.name.clone(),
            utc_offset_minutes: def.utc_offset_minutes.to_string(),
            // Planned halls are not built yet: the console watches the halls that are.
            halls: def
                .halls
                .iter()
                .filter(|h| !h.planned)
                .map(|h| format!("{} | {} | {}", h.id, h.name, h.channels))
                .collect::<Vec<_>>()
                .join("\n"),
            nodes: seeds
                .iter()
                .map(|(id, addr)| format!("{id}={addr}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let view = PortDefinition {
            id: def.id.clone(),
            name: def.name.clone(),
            utc_offset_minutes: def.utc_offset_minutes,
            halls: def
                .halls
                .iter()
                .filter(|h| !h.planned)
                .map(|h| (h.id.clone(), h.name.clone(), h.channels))
                .collect(),
            nodes: seeds,
            rolled_out: false,
        };
        Ok((form, view))
    }

    /// Creates a port from its definition file, as [`Console::create_port`] does from a form.
    pub fn create_port_from_definition(
        &self,
        v: &Viewer,
        text: &str,
        reason: &str,
        now: Millis,
    ) -> Result<(PortDefinition, Arc<PortHandle>)> {
        let (form, _) = self.preview_definition(v, text)?;
        self.create_port(v, &form, reason, now)
    }

    /// Issues a node bundle (node.toml and a certificate signed from the appliance's request
    /// `csr`, made by `clearway-node port csr` on it) for a new appliance of a port created here
    /// (lab CAs only).
    #[allow(clippy::too_many_arguments)]
    pub fn issue_bundle(
        &self,
        v: &Viewer,
        port: &str,
        node: &str,
        addr: &str,
        role: &str,
        channel: &str,
        csr: &str,
        reason: &str,
        now: Millis,
    ) -> Result<BundleView> {
        let p = self.port(port)?;
        self.admin(v, "issue node bundles")?;
        let node: u64 = node
            .trim()
            .parse()
            .map_err(|_| Error::Invalid(format!("node id {node:?} is not a number")))?;
        let listen: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| Error::Invalid(format!("{addr:?} is not an IP:PORT address")))?;
        let channel = match channel.trim() {
            "" => None,
            c => {
                let c = if c.starts_with(&format!("{port}/")) {
                    c.to_string()
                } else {
                    format!("{port}/{c}")
                };
                if p.def.locate(&c).is_none() {
                    return Err(Error::Invalid(format!(
                        "{c:?} is not a channel of port {port}"
                    )));
                }
                Some(c)
            }
        };
        let reason = check_reason(reason)?;
        let b =
            self.rollout
                .issue_bundle(port, node, listen, role.trim(), channel.as_deref(), csr)?;
        if let Some(c) = &b.channel {
            p.tracker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .learn_lane(c, node);
        }
        info!(user = %v.name, port = %port, node, reason_chars = reason.chars().count(), "Node bundle issued.");
        self.record(
            v,
            "bundle.issue",
            &format!("{port}/node-{node}"),
            &reason,
            now,
        )?;
        Ok(b.view())
    }

    /// The rollout page of one port.
    pub fn rollout_view(&self, v: &Viewer, port: &str) -> Result<RolloutView> {
        let p = self.port(port)?;
        self.admin(v, "roll out ports")?;
        Ok(RolloutView {
            port: p.def.view(),
            bundles: self
                .rollout
                .bundles(port)?
                .iter()
                .map(|b| b.view())
                .collect(),
            snapshot: p.latest().as_ref().clone(),
        })
    }

    /// Initialises a port's cluster with its voters: the voter bundles generated here, or the
    /// seed nodes. Audited in the new cluster's first console entry.
    pub async fn init_cluster(
        &self,
        v: &Viewer,
        port: &str,
        reason: &str,
        now: Millis,
    ) -> Result<WriteReceipt> {
        let p = self.port(port)?;
        self.admin(v, "initialise clusters")?;
        let reason = check_reason(reason)?;
        let bundles = self.rollout.bundles(port)?;
        let mut voters: BTreeMap<u64, String> = bundles
            .iter()
            .filter(|b| b.role == "voter")
            .map(|b| (b.node, b.addr.clone()))
            .collect();
        if voters.is_empty() {
            voters = p
                .def
                .seeds
                .iter()
                .map(|(id, a)| (*id, a.to_string()))
                .collect();
        }
        let nodes: BTreeMap<u64, SocketAddr> = voters
            .iter()
            .filter_map(|(id, a)| a.parse().ok().map(|a| (*id, a)))
            .collect();
        p.api.initialize(&nodes, &voters).await?;
        info!(user = %v.name, port = %port, voters = voters.len(), "Cluster initialised.");
        // The write retries until the first leader is elected (the client's deadline).
        let w = Write {
            metric: "cluster_init".into(),
            action: "cluster.init".into(),
            target: port.to_string(),
            reason,
            change: Change::AuditOnly,
        };
        self.submit(&p, v, w, now)
            .await
            .map_err(|e| Error::PortUnreachable {
                port: port.to_string(),
                message: format!(
                    "the cluster was initialised, but its audit record could not be written: {e}"
                ),
            })
    }

    /// Adds a learner (a lane node) to the port's cluster, with its audit record.
    pub async fn add_learner(
        &self,
        v: &Viewer,
        port: &str,
        node: &str,
        addr: &str,
        reason: &str,
        now: Millis,
    ) -> Result<WriteReceipt> {
        let p = self.port(port)?;
        self.admin(v, "add nodes")?;
        let id = node_id(node)?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| Error::Invalid(format!("{addr:?} is not an IP:PORT address")))?;
        let reason = check_reason(reason)?;
        p.api
            .add_learner(
                &p.nodes(),
                id,
                &addr.to_string(),
                &membership_audit(v, "cluster.add_learner", &reason, now),
            )
            .await?;
        let w = Write {
            metric: "add_learner".into(),
            action: "cluster.add_learner".into(),
            target: format!("{port}/node-{id}"),
            reason,
            change: Change::AuditOnly,
        };
        self.submit(&p, v, w, now).await
    }

    /// Retires an appliance (port admins, reason required): every certificate it has is revoked
    /// by an audited op, so every node refuses it within a heartbeat, and it is removed from the
    /// cluster if it is a member. Its replacement gets a new bundle for the same node id.
    pub async fn retire_appliance(
        &self,
        v: &Viewer,
        port: &str,
        node: &str,
        reason: &str,
        now: Millis,
    ) -> Result<WriteReceipt> {
        let p = self.port(port)?;
        self.admin(v, "retire appliances")?;
        let id = node_id(node)?;
        let reason = check_reason(reason)?;
        let w = Write {
            metric: "retire".into(),
            action: "cluster.retire".into(),
            target: format!("{port}/node-{id}"),
            reason,
            change: Change::Revoke {
                identity: format!("node-{id}"),
            },
        };
        let membership = membership_audit(v, "cluster.remove", &w.reason, now);
        let (target, why) = (w.target.clone(), w.reason.clone());
        let receipt = self.submit(&p, v, w, now).await?;
        self.record(v, "appliance.retire", &target, &why, now)?;
        if p.latest()
            .members
            .iter()
            .any(|m| m.id == id && m.membership != "seed")
        {
            p.api.remove_node(&p.nodes(), id, &membership).await?;
        }
        Ok(receipt)
    }

    /// The port's audit chain, verified (supervisors of the port and port admins).
    pub async fn audit(&self, v: &Viewer, port: &str) -> Result<AuditView> {
        let p = self.monitored(v, port)?;
        let leader = p.latest().leader;
        p.api.audit(&p.nodes(), leader).await
    }

    /// Every console user (port admins).
    pub fn users(&self, v: &Viewer, now: Millis) -> Result<Vec<UserView>> {
        self.admin(v, "manage users")?;
        self.auth.users(now, 0)
    }

    /// Creates a console user; an empty password generates one, shown once.
    #[allow(clippy::too_many_arguments)]
    pub fn create_user(
        &self,
        v: &Viewer,
        name: &str,
        role: &str,
        ports: &str,
        password: &str,
        reason: &str,
        now: Millis,
    ) -> Result<CreatedUser> {
        self.admin(v, "create users")?;
        let role = Role::parse(role).map_err(Error::Invalid)?;
        let ports: Vec<String> = ports
            .split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        for p in &ports {
            self.port(p)?;
        }
        let reason = check_reason(reason)?;
        let (password, generated) = match password {
            "" => {
                let p = generate_password();
                (p.clone(), Some(p))
            }
            p => (p.to_string(), None),
        };
        self.auth
            .add_user(name.trim(), role, &ports, &password, now)?;
        info!(user = %v.name, created = %name.trim(), role = %role, reason_chars = reason.chars().count(), "User created from the console.");
        self.record(
            v,
            "user.create",
            &format!("{} ({role})", name.trim()),
            &reason,
            now,
        )?;
        Ok(CreatedUser {
            name: name.trim().to_string(),
            generated_password: generated,
        })
    }
}

impl Console {
    /// An administrator's action on an account ([`USER_ACTIONS`]), with a reason, recorded in
    /// the console's audit log. A reset answers the generated password (shown once).
    pub fn manage_user(
        &self,
        v: &Viewer,
        name: &str,
        action: &str,
        reason: &str,
        now: Millis,
    ) -> Result<ManagedUser> {
        self.admin(v, "manage users")?;
        let reason = check_reason(reason)?;
        let name = name.trim();
        crate::auth::check_user_name(name)?;
        let mut generated = None;
        match action {
            "unlock" => {
                self.users(v, now)?
                    .iter()
                    .find(|u| u.name == name)
                    .ok_or_else(|| Error::NotFound(format!("there is no user {name}")))?;
                self.auth.unlock(name);
            }
            "disable" => self.auth.set_disabled(&v.name, name, true)?,
            "enable" => self.auth.set_disabled(&v.name, name, false)?,
            "reset_password" => generated = Some(self.auth.reset_password(&v.name, name)?),
            "revoke_sessions" => {
                self.auth.revoke(name, None)?;
            }
            "delete" => self.auth.delete_user(&v.name, name)?,
            other => {
                return Err(Error::Invalid(format!(
                    "{other:?} is not an account action (one of {})",
                    USER_ACTIONS.join(", ")
                )));
            }
        }
        self.record(v, &format!("user.{action}"), name, &reason, now)?;
        Ok(ManagedUser {
            name: name.to_string(),
            action: action.to_string(),
            generated_password: generated,
        })
    }

    /// The signed-in user's own live sessions (`token` marks the current one).
    pub fn my_sessions(&self, v: &Viewer, token: &str, now: Millis) -> Result<Vec<SessionView>> {
        self.auth.sessions_of(&v.name, Some(token), now, 0)
    }

    /// Ends one of the signed-in user's own sessions.
    pub fn revoke_my_session(&self, v: &Viewer, id: &str) -> Result<()> {
        self.auth.revoke(&v.name, Some(id.trim())).map(|_| ())
    }

    /// Changes the signed-in user's password (recorded in the console's audit log; the other
    /// sessions end).
    pub fn change_password(
        &self,
        v: &Viewer,
        token: &str,
        current: &str,
        new: &str,
        now: Millis,
    ) -> Result<()> {
        self.auth.change_password(token, current, new, now)?;
        self.record(v, "user.change_password", &v.name, "by the user", now)
    }

    /// The console's own audit log, verified (port admins).
    pub fn console_audit(&self, v: &Viewer) -> Result<ConsoleAuditView> {
        self.admin(v, "read the console's audit log")?;
        self.ledger.view(0)
    }
}

/// A node id typed into a form.
fn node_id(node: &str) -> Result<u64> {
    node.trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("node id {node:?} is not a number")))
}

/// The user and reason a membership change's own audit record names (the node writes it with
/// the change; action and target are the change's).
fn membership_audit(v: &Viewer, action: &str, reason: &str, now: Millis) -> AuditEntry {
    AuditEntry {
        actor: v.name.clone(),
        role: v.role.as_str().into(),
        action: action.into(),
        target: String::new(),
        reason: reason.into(),
        at_ms: now,
    }
}
