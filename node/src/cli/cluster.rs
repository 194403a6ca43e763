//! The cluster commands: `port` (CA, bundles, provisioning, Prometheus targets), `run`, `cluster` (membership, status,
//! cancellation) and `gallery import`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use clearway_gallery::{Command as Cmd, NewPerson, Outcome as GalleryOutcome, Template};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use tracing::info;

use super::{Global, Outcome, parse_id, print};
use crate::cluster::protocol::MembershipChange;
use crate::cluster::typ::NodeId;
use crate::cluster::{ClusterClient, ClusterNode, NodeConfig};
use crate::error::{Error, Result};
use crate::face::Frame;
use crate::net::tls::{Bundle, PortCa};
use crate::net::{Identity, Role};
use crate::provision::{Account, Credentials, provision};

/// How long a cluster command keeps retrying (leader elections take a second or two).
const DEADLINE: Duration = Duration::from_secs(30);

/// Which nodes to talk to, with which certificate.
#[derive(Debug, Args)]
pub struct Connect {
    /// Directory with this client's bundle (ca.pem, cert.pem, key.pem from `port issue --client`).
    #[arg(long)]
    pub bundle: PathBuf,
    /// A node to talk to, as ID=ADDRESS (repeat for several).
    #[arg(long = "node", required = true, value_parser = parse_node)]
    pub nodes: Vec<(NodeId, String)>,
}

fn parse_node(s: &str) -> std::result::Result<(NodeId, String), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or("expected ID=ADDRESS, e.g. 1=10.1.0.11:7400")?;
    let id = id
        .trim()
        .parse()
        .map_err(|_| format!("{id:?} is not a node id"))?;
    Ok((id, addr.trim().to_string()))
}

/// Whom a certificate is for: a node or a named client.
#[derive(Debug, clap::Args)]
pub struct Who {
    /// A node, by id.
    #[arg(long, conflicts_with = "client", required_unless_present = "client")]
    node: Option<NodeId>,
    /// A client (a person's or tool's, or the console), by name.
    #[arg(long)]
    client: Option<String>,
}

impl Who {
    fn identity(&self) -> Result<Identity> {
        match (self.node, &self.client) {
            (Some(id), _) => Ok(Identity::Node(id)),
            (None, Some(name)) => Ok(Identity::client(name)?),
            (None, None) => Err(Error::Config("name --node or --client".into())),
        }
    }
}

/// Port CA commands.
#[derive(Debug, Subcommand)]
pub enum PortCommand {
    /// Create a port's certificate authority (ca.pem, ca.key) in a new directory.
    Init {
        /// The port's name (lowercase letters, digits, dashes), e.g. hengqin.
        #[arg(long)]
        port: String,
        /// Where to write the CA; keep ca.key offline.
        #[arg(long)]
        ca: PathBuf,
    },
    /// Issue a node or client bundle (ca.pem, cert.pem, key.pem) signed by the port CA.
    Issue {
        /// The port CA directory.
        #[arg(long)]
        ca: PathBuf,
        #[command(flatten)]
        who: Who,
        /// The role the certificate names: `voter` or `lane/<port>/<hall>/<n>` for a node,
        /// `operator` (the default for a client) or `console` for a client.
        #[arg(long)]
        role: Option<String>,
        /// Directory to write the bundle to.
        #[arg(long)]
        out: PathBuf,
    },
    /// On the appliance: make its key pair and a certificate signing request for the CA holder.
    /// Writes key.pem (0600; it never leaves this directory) and request.csr into --out.
    Csr {
        /// The port's name, as its CA names it.
        #[arg(long)]
        port: String,
        #[command(flatten)]
        who: Who,
        /// The directory the bundle will live in (key.pem, later cert.pem and ca.pem).
        #[arg(long)]
        out: PathBuf,
    },
    /// At the CA: sign a request made with `port csr`. Only its public key is taken; the name,
    /// role and lifetime are set here. Writes cert.pem and ca.pem into --out, to be copied
    /// beside the appliance's key.pem.
    Sign {
        /// The port CA directory.
        #[arg(long)]
        ca: PathBuf,
        /// The request file (request.csr).
        #[arg(long)]
        csr: PathBuf,
        #[command(flatten)]
        who: Who,
        /// The role the certificate names (as for `port issue`).
        #[arg(long)]
        role: Option<String>,
        /// Directory to write cert.pem and ca.pem to.
        #[arg(long)]
        out: PathBuf,
    },
    /// Lay down one appliance from the port definition: node.toml, its certificate bundle (issued
    /// with --ca, or a --bundle issued elsewhere) and its data directory, with owners and modes.
    Provision {
        /// The port definition, e.g. deploy/ports/hengqin.toml.
        #[arg(long)]
        def: PathBuf,
        /// The node id to lay down.
        #[arg(long)]
        node: NodeId,
        /// The port CA directory: issue the node's certificate now.
        #[arg(long, conflicts_with = "bundle", required_unless_present = "bundle")]
        ca: Option<PathBuf>,
        /// A bundle issued for this node already (console roll-out or `port issue --node`).
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Where the appliance's file system is (`/` on the appliance itself, or an image).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// The service user: gets the data directory, and read access (group) to config and key.
        #[arg(long)]
        user: Option<String>,
        /// Replace an existing config and certificate (a renewal); data is kept.
        #[arg(long)]
        force: bool,
    },
    /// Prometheus' target file of a port (file-based service discovery), from its definition.
    Targets {
        /// The port definition.
        #[arg(long)]
        def: PathBuf,
        /// Write here (atomically, for Prometheus to pick up) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Cluster commands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Each named node's view: role, term, leader, log and applied index, gallery size.
    Status,
    /// Verify each named node's audit trail: the hash chain, every record's client signature
    /// against the port CA, and the reasons against their commitments. Fails naming the first
    /// record that does not hold, even where every replica was rewritten alike.
    Audit,
    /// Initialise a new cluster with its first voters (sent to the first --node), then add the
    /// learners: from --voter flags, or from a node config's `role` and `[[peers]]`.
    Init {
        /// A voter as ID=ADDRESS (repeat).
        #[arg(long = "voter", value_parser = parse_node, required_unless_present = "config")]
        voters: Vec<(NodeId, String)>,
        /// A node config whose own role and peers say who votes and who learns.
        #[arg(long, conflicts_with = "voters")]
        config: Option<PathBuf>,
    },
    /// Add a learner (a lane node); with --wait, show its catch-up until it has the whole log.
    AddLearner {
        /// Its node id.
        id: NodeId,
        /// Its QUIC address.
        addr: String,
        /// Wait (with a progress bar) until it has caught up.
        #[arg(long)]
        wait: bool,
    },
    /// Make a learner a voter.
    Promote {
        /// Its node id.
        id: NodeId,
    },
    /// Make a voter a learner.
    Demote {
        /// Its node id.
        id: NodeId,
    },
    /// Remove a node from the cluster (this also revokes its certificates).
    Remove {
        /// Its node id.
        id: NodeId,
    },
    /// Revoke every certificate of an appliance or client issued until now (a stolen or retired
    /// appliance): every node refuses it within a heartbeat. A node still in the cluster is
    /// removed too. Its replacement is issued a new certificate afterwards.
    Revoke {
        /// `node-11` or `client-ops`.
        identity: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// Cancel a registration: the person is erased on every replica.
    Cancel {
        /// The person's id, e.g. P00000001.
        person: String,
        /// Why (kept in the audit trail, e.g. "cancelled in person at the service desk").
        #[arg(long)]
        reason: String,
    },
    /// A registration, read linearizably through the leader.
    Person {
        /// The person's id.
        person: String,
    },
}

/// Gallery commands.
#[derive(Debug, Subcommand)]
pub enum GalleryCommand {
    /// Enrol persons in bulk from a JSON Lines file, one person per line:
    /// `{"person": {...}, "photos": ["a.jpg"]}` or `{"person": {...}, "templates": [...]}`.
    Import {
        /// The file; photo paths are relative to it.
        file: PathBuf,
        /// Persons per log entry.
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// Why, kept in the audit trail with each batch.
        #[arg(long, default_value = "gallery import")]
        reason: String,
    },
}

/// One line of an import file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportLine {
    pub(crate) person: NewPerson,
    #[serde(default)]
    pub(crate) photos: Vec<PathBuf>,
    #[serde(default)]
    pub(crate) templates: Vec<Template>,
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Cluster(format!("cannot start the async runtime: {e}")))
}

impl Connect {
    fn client(&self) -> Result<ClusterClient> {
        let bundle = Bundle::load(&self.bundle)?;
        let mut nodes = BTreeMap::new();
        for (id, addr) in &self.nodes {
            let a: SocketAddr = addr.parse().map_err(|_| {
                Error::Config(format!("node {id}: {addr:?} is not an IP:PORT address"))
            })?;
            nodes.insert(*id, a);
        }
        Ok(ClusterClient::new(&bundle, nodes)?)
    }

    fn first(&self) -> NodeId {
        self.nodes[0].0
    }
}

/// `port …`
pub fn port(command: &PortCommand) -> Result<Outcome> {
    match command {
        PortCommand::Init { port, ca } => {
            let authority = PortCa::create(port)?;
            authority.save(ca)?;
            println!("port CA for {port} written to {}", ca.display());
        }
        PortCommand::Issue { ca, who, role, out } => {
            let authority = PortCa::load(ca)?;
            let identity = who.identity()?;
            let role = role_of(role.as_deref(), &identity)?;
            authority.issue(&identity, &role)?.save(out)?;
            println!(
                "{identity} ({role}) bundle for port {} written to {}",
                authority.port(),
                out.display()
            );
        }
        PortCommand::Csr { port, who, out } => {
            let identity = who.identity()?;
            let key_path = out.join("key.pem");
            if key_path.exists() {
                return Err(Error::Config(format!(
                    "{} exists: a key is never overwritten (remove it to start over)",
                    key_path.display()
                )));
            }
            let (key, csr) = crate::net::tls::signing_request(port, &identity)?;
            std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
            crate::net::tls::write_file(&key_path, key.as_bytes(), 0o600)?;
            let csr_path = out.join("request.csr");
            crate::net::tls::write_file(&csr_path, csr.as_bytes(), 0o644)?;
            println!(
                "{identity}: key written to {} (keep it here); request for the port {port} CA in {}",
                key_path.display(),
                csr_path.display()
            );
        }
        PortCommand::Sign {
            ca,
            csr,
            who,
            role,
            out,
        } => {
            let authority = PortCa::load(ca)?;
            let identity = who.identity()?;
            let role = role_of(role.as_deref(), &identity)?;
            let request = std::fs::read_to_string(csr).map_err(|e| Error::io(csr, e))?;
            let cert = authority.sign(&request, &identity, &role)?;
            std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
            crate::net::tls::write_file(&out.join("cert.pem"), cert.as_bytes(), 0o644)?;
            crate::net::tls::write_file(
                &out.join("ca.pem"),
                authority.cert_pem().as_bytes(),
                0o644,
            )?;
            println!(
                "{identity} ({role}) certificate for port {} written to {} with ca.pem; copy both beside the appliance's key.pem",
                authority.port(),
                out.display()
            );
        }
        PortCommand::Provision {
            def,
            node,
            ca,
            bundle,
            root,
            user,
            force,
        } => {
            let definition = crate::provision::definition::from_file(def)?;
            let credentials = match (ca, bundle) {
                (Some(ca), _) => Credentials::Ca(PortCa::load(ca)?),
                (None, Some(b)) => Credentials::Bundle(Bundle::load(b)?),
                (None, None) => return Err(Error::Config("name --ca or --bundle".into())),
            };
            let account = user.as_deref().map(Account::lookup).transpose()?;
            let done = provision(
                &definition,
                *node,
                &credentials,
                root,
                account.as_ref(),
                *force,
            )?;
            println!(
                "node {node} of port {}: {}, {}, {}",
                definition.id,
                done.node_toml.display(),
                done.tls_dir.display(),
                done.data_dir.display()
            );
            for p in &done.missing {
                println!("still needed (from the authorities): {}", p.display());
            }
        }
        PortCommand::Targets { def, out } => {
            let definition = crate::provision::definition::from_file(def)?;
            let text = definition.targets().map_err(Error::Config)?;
            match out {
                Some(out) => {
                    crate::net::tls::write_file(out, text.as_bytes(), 0o644)?;
                    println!(
                        "targets of port {} written to {}",
                        definition.id,
                        out.display()
                    );
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(Outcome::Yes)
}

/// The role named by `--role`; a client's defaults to operator, a node's must be named.
fn role_of(role: Option<&str>, identity: &Identity) -> Result<Role> {
    match (role, identity) {
        (Some(role), _) => Ok(role.parse()?),
        (None, Identity::Client(_)) => Ok(Role::Operator),
        (None, Identity::Node(_)) => Err(Error::Config(
            "name the node's role: --role voter or --role lane/<port>/<hall>/<n>".into(),
        )),
    }
}

/// `run --config …`: runs a node (and its lane, if the config has a `[lane]`) until SIGINT or
/// SIGTERM.
pub fn run_node(g: &Global, config: &Path) -> Result<Outcome> {
    let config = NodeConfig::from_file(config)?;
    runtime()?.block_on(async {
        let node = ClusterNode::start(&config).await?;
        let lane = match &config.lane {
            Some(lane) => {
                let face = super::face_config(g)?;
                let ort = super::ort_library(g);
                Some(
                    crate::lane::runtime::start_from_config(
                        node.clone(),
                        lane,
                        &config.data_dir,
                        &config.outbox_key_file()?,
                        std::sync::Arc::new(config.custody()?),
                        &ort,
                        &g.assets,
                        face,
                    )
                    .await?,
                )
            }
            None => None,
        };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| Error::Cluster(format!("cannot watch SIGTERM: {e}")))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        info!("Stopping.");
        if let Some(lane) = lane {
            lane.shutdown().await;
        }
        node.shutdown().await;
        Ok(Outcome::Yes)
    })
}

/// `cluster …`
pub fn cluster(g: &Global, conn: &Connect, command: &ClusterCommand) -> Result<Outcome> {
    runtime()?.block_on(async {
        // The QUIC endpoint needs the runtime.
        let client = conn.client()?;
        let outcome = run(g, conn, &client, command).await;
        client.close().await;
        outcome
    })
}

async fn run(
    g: &Global,
    conn: &Connect,
    client: &ClusterClient,
    command: &ClusterCommand,
) -> Result<Outcome> {
    match command {
        ClusterCommand::Status => {
            let mut all = Vec::new();
            for id in client.nodes().collect::<Vec<_>>() {
                match client.status(id).await {
                    Ok(s) => all.push(serde_json::to_value(&s).unwrap_or_default()),
                    Err(e) => all.push(serde_json::json!({"id": id, "error": e.to_string()})),
                }
            }
            print(g.json, &all, || {
                all.iter()
                        .map(|s| match s.get("error") {
                            Some(e) => format!("node {}: unreachable ({e})", s["id"]),
                            None => format!(
                                "node {}: {} term {} leader {} log {} applied {} persons {} voters {} learners {} audit {}:{:.12}",
                                s["id"], s["state"], s["term"], s["leader"], s["last_log_index"],
                                s["applied_index"], s["persons"], s["voters"], s["learners"],
                                s["audit_len"], s["audit_head"].as_str().unwrap_or("")
                            ),
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
            })?;
            if let Some(divergence) = audit_divergence(&all) {
                return Err(Error::Cluster(divergence));
            }
        }
        ClusterCommand::Audit => {
            let verifier = client.audit_verifier()?;
            let mut all = Vec::new();
            let mut broken = Vec::new();
            for id in client.nodes().collect::<Vec<_>>() {
                let verdict = match client.audit_trail(id).await {
                    Err(e) => serde_json::json!({"id": id, "error": e.to_string()}),
                    Ok(trail) => match crate::net::signing::verify_trail(&trail, &verifier) {
                        Ok(summary) => serde_json::json!({"id": id, "verified": summary}),
                        Err(e) => {
                            broken.push(format!("node {id}: {e}"));
                            serde_json::json!({"id": id, "broken": e})
                        }
                    },
                };
                all.push(verdict);
            }
            print(g.json, &all, || {
                all.iter()
                    .map(|v| {
                        if let Some(e) = v.get("error") {
                            format!("node {}: unreachable ({e})", v["id"])
                        } else if let Some(b) = v.get("broken") {
                            format!(
                                "node {}: BROKEN at record {}: {}",
                                v["id"],
                                b["seq"],
                                b["why"].as_str().unwrap_or_default()
                            )
                        } else {
                            let s = &v["verified"];
                            format!(
                                "node {}: {} records verified, signed by {}; {} reasons erased",
                                v["id"], s["records"], s["signers"], s["reasons_erased"]
                            )
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            if !broken.is_empty() {
                return Err(Error::Cluster(format!(
                    "audit trail does not verify: {}",
                    broken.join("; ")
                )));
            }
        }
        ClusterCommand::Init { voters, config } => {
            let (voters, learners) = match config {
                None => (voters.clone(), Vec::new()),
                Some(path) => members_from_config(&NodeConfig::from_file(path)?),
            };
            if voters.is_empty() {
                return Err(Error::Config(
                    "no voter: give --voter or a config with voters".into(),
                ));
            }
            client
                .initialize(conn.first(), voters.iter().cloned().collect())
                .await?;
            println!("cluster initialised with {} voters", voters.len());
            for (id, addr) in learners {
                client
                    .change_membership(MembershipChange::AddLearner { id, addr }, DEADLINE)
                    .await?;
                println!("node {id} added as a learner");
            }
        }
        ClusterCommand::AddLearner { id, addr, wait } => {
            client
                .change_membership(
                    MembershipChange::AddLearner {
                        id: *id,
                        addr: addr.clone(),
                    },
                    DEADLINE,
                )
                .await?;
            println!("node {id} added as a learner");
            if *wait {
                wait_caught_up(client, conn.first(), *id).await?;
            }
        }
        ClusterCommand::Promote { id } => {
            client
                .change_membership(MembershipChange::Promote { id: *id }, DEADLINE)
                .await?;
            println!("node {id} is a voter");
        }
        ClusterCommand::Demote { id } => {
            client
                .change_membership(MembershipChange::Demote { id: *id }, DEADLINE)
                .await?;
            println!("node {id} is a learner");
        }
        ClusterCommand::Remove { id } => {
            client
                .change_membership(MembershipChange::Remove { id: *id }, DEADLINE)
                .await?;
            println!("node {id} removed; its certificates are revoked");
        }
        ClusterCommand::Revoke { identity, reason } => {
            let parsed: Identity = identity.parse()?;
            client.revoke(&parsed, reason, DEADLINE).await?;
            println!("{parsed}: certificates issued until now are revoked");
            if let Identity::Node(id) = parsed {
                let status = client.status(conn.first()).await?;
                if status.members.contains_key(&id) {
                    client
                        .change_membership(MembershipChange::Remove { id }, DEADLINE)
                        .await?;
                    println!("node {id} removed from the cluster");
                }
            }
        }
        ClusterCommand::Cancel { person, reason } => {
            let id = parse_id(person)?;
            let (index, outcomes) = client
                .write_audited(
                    vec![Cmd::Cancel { person: id }],
                    "cancel",
                    &id.to_string(),
                    reason,
                    DEADLINE,
                )
                .await?;
            return report_outcome(&outcomes, index);
        }
        ClusterCommand::Person { person } => {
            let id = parse_id(person)?;
            let entry = client.person(conn.first(), id, true).await?;
            let shown = entry.as_ref();
            print(g.json, &shown, || match shown {
                Some(p) => format!(
                    "{} {} ({}), document {}",
                    p.id,
                    p.name,
                    p.category,
                    p.document.kind.as_str()
                ),
                None => format!("{id} is not registered"),
            })?;
            return Ok(if entry.is_some() {
                Outcome::Yes
            } else {
                Outcome::No
            });
        }
    }
    Ok(Outcome::Yes)
}

/// Voters and learners named by a node config: the node itself by its `role`, and its peers.
fn members_from_config(config: &NodeConfig) -> (Vec<(NodeId, String)>, Vec<(NodeId, String)>) {
    use crate::cluster::config::Role;
    let mut all = vec![(config.node_id, config.advertise(), config.role)];
    all.extend(config.peers.iter().map(|p| (p.id, p.addr.clone(), p.role)));
    let (voters, learners): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|(_, _, r)| *r == Role::Voter);
    let strip = |v: Vec<(NodeId, String, Role)>| v.into_iter().map(|(id, a, _)| (id, a)).collect();
    (strip(voters), strip(learners))
}

fn report_outcome(outcomes: &[GalleryOutcome], index: u64) -> Result<Outcome> {
    match outcomes.first() {
        Some(GalleryOutcome::Refused { code, reason }) => Err(Error::Remote {
            code: code.clone(),
            message: reason.clone(),
            retry: false,
        }),
        Some(o) => {
            println!("{o:?} (log index {index})");
            Ok(Outcome::Yes)
        }
        None => Err(Error::Cluster("no outcome".into())),
    }
}

/// Shows a learner's catch-up against the leader's log until it has applied everything.
async fn wait_caught_up(client: &ClusterClient, via: NodeId, learner: NodeId) -> Result<()> {
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} log entries ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("node {learner} catching up"));
    let until = std::time::Instant::now() + Duration::from_secs(3600);
    loop {
        let s = client.status(via).await?;
        let target = s.last_log_index.unwrap_or(0);
        let matched = s.replication.get(&learner).copied().flatten();
        bar.set_length(target);
        bar.set_position(matched.unwrap_or(0));
        if matched.is_some_and(|m| m >= target) {
            bar.finish();
            info!(node = learner, index = target, "Learner caught up.");
            println!("node {learner} caught up at log index {target}");
            return Ok(());
        }
        if std::time::Instant::now() > until {
            return Err(Error::Cluster(format!(
                "node {learner} did not catch up within an hour"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `gallery import FILE`
pub fn import(
    g: &Global,
    conn: &Connect,
    file: &Path,
    batch: usize,
    reason: &str,
) -> Result<Outcome> {
    if batch == 0 || batch > 4096 {
        return Err(Error::Config("--batch must be 1..=4096".into()));
    }
    let text = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
    let base = file.parent().unwrap_or(Path::new("."));
    // Parse and embed everything first: a bad line stops the import before anything is written.
    let lines: Vec<String> = std::io::BufReader::new(text)
        .lines()
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(file, e))?;
    let mut pipeline = None;
    let mut commands = Vec::new();
    let bar = ProgressBar::new(lines.len() as u64);
    bar.set_message("reading");
    for (n, line) in lines.iter().enumerate() {
        bar.inc(1);
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: String| Error::Config(format!("{}:{}: {e}", file.display(), n + 1));
        let parsed: ImportLine = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let mut templates = parsed.templates;
        for photo in &parsed.photos {
            let path = base.join(photo);
            let p = match &mut pipeline {
                Some(p) => p,
                None => pipeline.insert(super::pipeline(g)?),
            };
            let frame = Frame::open(&path)?;
            let (_, embedding) = p.single_face(frame.as_ref())?;
            templates.push(Template::quantize(
                embedding.model().clone(),
                embedding.values(),
            )?);
        }
        commands.push(Cmd::Enrol {
            person: parsed.person,
            templates,
        });
    }
    bar.finish_and_clear();
    let total = commands.len();
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("importing [{bar:40}] {pos}/{len} persons ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut enrolled, mut existing, mut refused) = (0usize, 0usize, Vec::new());
    runtime()?.block_on(async {
        let client = conn.client()?;
        let sent = async {
            for chunk in commands.chunks(batch) {
                let (_, outcomes) = client
                    .write_audited(chunk.to_vec(), "import", "gallery", reason, DEADLINE)
                    .await?;
                for o in outcomes {
                    match o {
                        GalleryOutcome::Enrolled(_) => enrolled += 1,
                        GalleryOutcome::AlreadyEnrolled(_) => existing += 1,
                        GalleryOutcome::Refused { code, reason } => {
                            refused.push(format!("{code}: {reason}"))
                        }
                        _ => {}
                    }
                }
                bar.inc(chunk.len() as u64);
            }
            Ok::<(), Error>(())
        }
        .await;
        client.close().await;
        sent
    })?;
    bar.finish();
    let summary = serde_json::json!({"persons": total, "enrolled": enrolled, "already_enrolled": existing, "refused": refused});
    print(g.json, &summary, || {
        format!(
            "{total} persons: {enrolled} enrolled, {existing} already enrolled, {} refused{}",
            refused.len(),
            refused
                .iter()
                .map(|r| format!("\n  {r}"))
                .collect::<String>()
        )
    })?;
    info!(persons = total, enrolled, "Import finished.");
    Ok(if refused.is_empty() {
        Outcome::Yes
    } else {
        Outcome::No
    })
}

/// Replicas that applied the same log index must hold the same audit trail (length and head
/// hash): a node whose trail was truncated or rewritten on its disk does not. What differs, if
/// anything.
fn audit_divergence(statuses: &[serde_json::Value]) -> Option<String> {
    let mut at: BTreeMap<u64, Vec<(u64, u64, String)>> = BTreeMap::new();
    for s in statuses {
        let (Some(id), Some(applied), Some(len), Some(head)) = (
            s["id"].as_u64(),
            s["applied_index"].as_u64(),
            s["audit_len"].as_u64(),
            s["audit_head"].as_str(),
        ) else {
            continue;
        };
        at.entry(applied)
            .or_default()
            .push((id, len, head.to_owned()));
    }
    for (applied, nodes) in at {
        let first = &nodes[0];
        if let Some(other) = nodes.iter().find(|n| (n.1, &n.2) != (first.1, &first.2)) {
            return Some(format!(
                "audit trails diverge at applied index {applied}: node {} holds {} records (head {:.12}), node {} holds {} (head {:.12}); a replica's trail was changed on its disk",
                first.0, first.1, first.2, other.0, other.1, other.2
            ));
        }
    }
    None
}
