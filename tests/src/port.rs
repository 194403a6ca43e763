//! A local port cluster of `clearway-node run` processes on loopback, for tests, benchmarks and
//! the demo: the port CA, one bundle per node and an operator client bundle, a `node.toml` per
//! node (free loopback ports), the processes, and the cluster's bootstrap.
//!
//! Layout of its directory: `ca/` (the port CA), `client/` (the operator's bundle),
//! `node-N/{tls,data,node.toml,log}`. [`LocalPort::open`] finds an existing one again (the demo's
//! second run): the same CA, certificates, addresses and data.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clearway_node::cluster::ClusterClient;
use clearway_node::cluster::protocol::{MembershipChange, NodeStatus};
use clearway_node::net::tls::{Bundle, PortCa};
use clearway_node::net::{Identity, Role};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clearway_gallery::{
    Category, Command as GalleryCommand, ModelId, NewPerson, Registrations, Template,
    TravelDocument,
};
use rand::Rng;

use crate::node_bin;
use crate::process::{Stopped, terminate_all};

/// The port name the test clusters use.
pub const PORT: &str = "testport";

/// Extra `[raft]` lines for every node's config.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Snapshot after this many entries.
    pub snapshot_every: u64,
    /// Entries kept after a snapshot.
    pub keep_logs_after_snapshot: u64,
    /// fsync on commit.
    pub fsync: bool,
    /// Heartbeat interval, ms (elections time out after 5–10 heartbeats).
    pub heartbeat_ms: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            snapshot_every: 5000,
            keep_logs_after_snapshot: 1000,
            fsync: true,
            heartbeat_ms: 100,
        }
    }
}

/// A port cluster under test. Processes are killed on drop.
pub struct LocalPort {
    /// Everything lives here: `ca/`, `client/`, `node-N/{tls,data,node.toml,log}`.
    pub dir: PathBuf,
    /// The port CA.
    pub ca: PortCa,
    /// Node addresses.
    pub addrs: BTreeMap<u64, SocketAddr>,
    /// Node `/metrics` (HTTP) addresses.
    pub metrics: BTreeMap<u64, SocketAddr>,
    procs: BTreeMap<u64, Child>,
    tuning: Tuning,
    node_bin: PathBuf,
}

/// A 127.0.0.1 address free for both TCP and UDP now, outside the kernel's ephemeral range
/// (see [`PortPicker`]), never handed out twice in this process.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    PortPicker::new().pick()
}

/// A free TCP port on 127.0.0.1, chosen like [`free_addr`] (the caller binds it soon after).
pub fn free_tcp() -> anyhow::Result<SocketAddr> {
    free_addr()
}

/// Ports handed out by every [`PortPicker`] in this process: tests run side by side, and two of
/// them must never be given one port between its pick and its bind.
static TAKEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Loopback addresses chosen now and bound later, perhaps by another process or after a
/// restart. They are taken below (or above) the kernel's ephemeral port range, where no socket
/// bound to port 0 in the meantime (a simulator, a client's endpoint, another test's
/// connection) can land on one; never the same one twice in this process. A port picked with
/// port 0 and dropped was once handed to a QUIC client's endpoint before the node bound it
/// (CI, `a_revoked_appliance_is_cut_off`: "Address already in use").
pub struct PortPicker {
    range: std::ops::Range<u16>,
}

impl PortPicker {
    /// A picker outside `/proc/sys/net/ipv4/ip_local_port_range` (32768–60999 by default).
    pub fn new() -> PortPicker {
        let (lo, hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| {
                let mut it = t.split_whitespace().map(|v| v.parse::<u16>().ok());
                Some((it.next()??, it.next()??))
            })
            .unwrap_or((32768, 60999));
        let range = if lo >= 12_000 {
            10_000..lo
        } else if hi <= 63_000 {
            hi + 1..65_535
        } else {
            // The whole range is ephemeral: pick anywhere and hope.
            10_000..65_535
        };
        PortPicker { range }
    }

    /// Never hands out `addr`'s port (one chosen on an earlier run).
    pub fn reserve(&mut self, addr: SocketAddr) {
        TAKEN
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr.port());
    }

    /// A 127.0.0.1 address free for both TCP and UDP right now.
    pub fn pick(&mut self) -> anyhow::Result<SocketAddr> {
        let mut rng = rand::rng();
        let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..500 {
            let port = rng.random_range(self.range.clone());
            if taken.contains(&port) {
                continue;
            }
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let free = std::net::TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok();
            if free {
                taken.insert(port);
                return Ok(addr);
            }
        }
        bail!(
            "no free loopback port in {}..{}",
            self.range.start,
            self.range.end
        )
    }
}

impl Default for PortPicker {
    fn default() -> Self {
        PortPicker::new()
    }
}

impl LocalPort {
    /// A port with no nodes yet.
    fn empty(dir: &Path, ca: PortCa, tuning: Tuning, node_bin: PathBuf) -> LocalPort {
        LocalPort {
            dir: dir.to_path_buf(),
            ca,
            addrs: BTreeMap::new(),
            metrics: BTreeMap::new(),
            procs: BTreeMap::new(),
            tuning,
            node_bin,
        }
    }

    /// Creates the CA, a client bundle and `n` node directories (not started), for the test
    /// port [`PORT`] with the test build's `clearway-node`.
    pub fn new(dir: &Path, ids: impl IntoIterator<Item = u64>, tuning: Tuning) -> LocalPort {
        LocalPort::create(dir, PORT, "tests", ids, tuning, node_bin())
            .unwrap_or_else(|e| panic!("local port: {e:#}"))
    }

    /// Creates port `port`'s CA, the operator bundle `client` and the node directories (not
    /// started) under `dir`; nodes run `node_bin`.
    pub fn create(
        dir: &Path,
        port: &str,
        client: &str,
        ids: impl IntoIterator<Item = u64>,
        tuning: Tuning,
        node_bin: PathBuf,
    ) -> anyhow::Result<LocalPort> {
        let ca = PortCa::create(port).with_context(|| format!("port CA for {port}"))?;
        ca.save(&dir.join("ca"))
            .with_context(|| format!("cannot save the port CA in {}", dir.join("ca").display()))?;
        ca.issue(&Identity::client(client)?, &Role::Operator)
            .context("client bundle")?
            .save(&dir.join("client"))
            .with_context(|| format!("cannot save the client bundle in {}", dir.display()))?;
        let mut port = LocalPort::empty(dir, ca, tuning, node_bin);
        for id in ids {
            port.try_add_node(id)?;
        }
        Ok(port)
    }

    /// Opens a port [`LocalPort::create`] made earlier: its CA, and every `node-N/node.toml`
    /// (addresses as they were). Nothing is started.
    pub fn open(dir: &Path, node_bin: PathBuf) -> anyhow::Result<LocalPort> {
        let ca = PortCa::load(&dir.join("ca")).with_context(|| {
            format!("cannot load the port CA from {}", dir.join("ca").display())
        })?;
        let mut port = LocalPort::empty(dir, ca, Tuning::default(), node_bin);
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for e in entries {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_prefix("node-")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let file = e.path().join("node.toml");
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let config: toml::Table =
                toml::from_str(&text).with_context(|| format!("{}", file.display()))?;
            let addr = |key: &str| -> anyhow::Result<Option<SocketAddr>> {
                match config.get(key) {
                    None => Ok(None),
                    Some(v) => v
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .map(Some)
                        .with_context(|| format!("{}: {key} is not an IP:PORT", file.display())),
                }
            };
            let listen = addr("listen")?
                .with_context(|| format!("{}: no listen address", file.display()))?;
            // A port made before key files had to live outside the data directory: its keys
            // move to keys/ (as an operator would, following the node's refusal message).
            if config.get("key_file").is_none() {
                let keys = e.path().join("keys");
                std::fs::create_dir_all(&keys)
                    .with_context(|| format!("cannot create {}", keys.display()))?;
                for name in ["node.keyring", "outbox.key"] {
                    let old = e.path().join("data").join(name);
                    if old.exists() {
                        std::fs::rename(&old, keys.join(name))
                            .with_context(|| format!("cannot move {}", old.display()))?;
                    }
                }
                std::fs::write(&file, format!("key_file = \"keys/node.keyring\"\n{text}"))
                    .with_context(|| format!("cannot write {}", file.display()))?;
            }
            // A port made before certificates carried roles: its nodes get voter certificates
            // (a lane's is issued again when its lane is set).
            let tls = e.path().join("tls");
            if Bundle::load(&tls).is_err() {
                port.ca
                    .issue(&Identity::Node(id), &Role::Voter)?
                    .save(&tls)
                    .with_context(|| format!("cannot re-issue {}", tls.display()))?;
            }
            port.addrs.insert(id, listen);
            if let Some(m) = addr("metrics_listen")? {
                port.metrics.insert(id, m);
            }
        }
        if port.addrs.is_empty() {
            bail!("{} has no node-N/node.toml", dir.display());
        }
        let client = dir.join("client");
        if Bundle::load(&client).is_err() {
            // Made before certificates carried roles: a new operator bundle (the demo's name).
            let name = "operator";
            port.ca
                .issue(&Identity::client(name)?, &Role::Operator)?
                .save(&client)
                .with_context(|| format!("cannot re-issue {}", client.display()))?;
        }
        Ok(port)
    }

    /// Prepares one more node directory (not started).
    pub fn add_node(&mut self, id: u64) {
        self.try_add_node(id)
            .unwrap_or_else(|e| panic!("node {id}: {e:#}"));
    }

    /// Prepares one more node directory (not started): its bundle, free loopback addresses
    /// (QUIC and `/metrics`, free when asked) and `node.toml`.
    pub fn try_add_node(&mut self, id: u64) -> anyhow::Result<()> {
        self.try_add_node_at(id, free_addr()?, free_tcp()?)
    }

    /// Prepares one more node directory (not started) with its QUIC address `addr` and its
    /// `/metrics` address `metrics`.
    pub fn try_add_node_at(
        &mut self,
        id: u64,
        addr: SocketAddr,
        metrics: SocketAddr,
    ) -> anyhow::Result<()> {
        let node_dir = self.node_dir(id);
        self.ca
            .issue(&Identity::Node(id), &Role::Voter)
            .with_context(|| format!("node {id} bundle"))?
            .save(&node_dir.join("tls"))
            .with_context(|| format!("cannot save node {id}'s bundle in {}", node_dir.display()))?;
        let t = &self.tuning;
        let config = format!(
            "node_id = {id}\nlisten = \"{addr}\"\nmetrics_listen = \"{metrics}\"\ndata_dir = \"data\"\nkey_file = \"keys/node.keyring\"\ntls_dir = \"tls\"\n\n[raft]\nheartbeat_ms = {hb}\nelection_timeout_min_ms = {emin}\nelection_timeout_max_ms = {emax}\nsnapshot_every = {}\nkeep_logs_after_snapshot = {}\nfsync = {}\n",
            t.snapshot_every,
            t.keep_logs_after_snapshot,
            t.fsync,
            hb = t.heartbeat_ms,
            emin = t.heartbeat_ms * 5,
            emax = t.heartbeat_ms * 10,
        );
        let file = node_dir.join("node.toml");
        std::fs::write(&file, config)
            .with_context(|| format!("cannot write {}", file.display()))?;
        self.addrs.insert(id, addr);
        self.metrics.insert(id, metrics);
        Ok(())
    }

    /// Makes node `id` the lane node of `channel`: issues it a lane certificate for the channel
    /// and replaces the `[lane]` section of its `node.toml` (and everything after it) by `lane`
    /// (a `[lane]` table and its sub-tables).
    pub fn set_lane(&self, id: u64, channel: &str, lane: &str) -> anyhow::Result<()> {
        let node_dir = self.node_dir(id);
        let role = Role::Lane {
            channel: channel.to_owned(),
        };
        self.ca
            .issue(&Identity::Node(id), &role)
            .with_context(|| format!("node {id} lane bundle"))?
            .save(&node_dir.join("tls"))
            .with_context(|| format!("cannot save node {id}'s bundle in {}", node_dir.display()))?;
        let file = self.node_dir(id).join("node.toml");
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let mut base = String::new();
        for line in text.lines() {
            if line.trim_start().starts_with("[lane") {
                break;
            }
            base.push_str(line);
            base.push('\n');
        }
        let config = format!("{}\n{}", base.trim_end(), lane);
        std::fs::write(&file, config).with_context(|| format!("cannot write {}", file.display()))
    }

    /// Writes node `id`'s face pipeline configuration (`[face]`'s TOML, e.g. `[pad]\nthreshold =
    /// 1.0`); it takes effect at the node's next start.
    pub fn set_face(&self, id: u64, toml: &str) -> anyhow::Result<()> {
        let file = self.node_dir(id).join("face.toml");
        std::fs::write(&file, toml).with_context(|| format!("cannot write {}", file.display()))
    }

    /// Scrapes a node's `/metrics` over HTTP.
    pub fn scrape(&self, id: u64) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.metrics[&id]).expect("connect to /metrics");
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("response");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        out
    }

    /// A node's directory.
    pub fn node_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    /// A node's data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.node_dir(id).join("data")
    }

    /// Starts (or restarts) a node process; its log goes to `node-N/log`.
    pub fn start(&mut self, id: u64) {
        self.try_start(id)
            .unwrap_or_else(|e| panic!("node {id}: {e:#}"));
    }

    /// Starts (or restarts) a node process; its log goes to `node-N/log` (appended).
    pub fn try_start(&mut self, id: u64) -> anyhow::Result<()> {
        let dir = self.node_dir(id);
        let log_path = dir.join("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut command = Command::new(&self.node_bin);
        // A node's own face pipeline configuration, when the test wrote one (`set_face`).
        let face = dir.join("face.toml");
        if face.is_file() {
            command.arg("--face-config").arg(&face);
        }
        let child = command
            .args(["run", "--config"])
            .arg(dir.join("node.toml"))
            .env("RUST_LOG", "info,openraft=warn,quinn=warn")
            // As the deployed unit sets it (deploy/systemd/clearway-node.service).
            .env("MALLOC_ARENA_MAX", "2")
            .env("CLEARWAY_ASSETS", crate::assets())
            .env("ORT_DYLIB_PATH", crate::ort_library())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.node_bin.display()))?;
        self.procs.insert(id, child);
        Ok(())
    }

    /// Node `id`'s process id, while it runs.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.procs.get(&id).map(Child::id)
    }

    /// Whether node `id`'s process has exited (or was never started); its status if known.
    pub fn exited(&mut self, id: u64) -> Option<Option<std::process::ExitStatus>> {
        match self.procs.get_mut(&id) {
            None => Some(None),
            Some(c) => c.try_wait().ok().flatten().map(Some),
        }
    }

    /// SIGKILLs a node process.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.procs.remove(&id) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs a node and waits for it to exit; returns whether it exited successfully.
    pub fn stop(&mut self, id: u64) -> bool {
        self.stop_all(&[id], Duration::from_secs(60))
            .first()
            .is_some_and(|(_, s)| s.success())
    }

    /// SIGTERMs the running nodes among `ids` together and waits up to `grace` for them to
    /// exit (SIGKILL after that); how each ended.
    pub fn stop_all(&mut self, ids: &[u64], grace: Duration) -> Vec<(u64, Stopped)> {
        let mut taken: Vec<(u64, Child)> = ids
            .iter()
            .filter_map(|id| self.procs.remove(id).map(|c| (*id, c)))
            .collect();
        let mut refs: Vec<&mut Child> = taken.iter_mut().map(|(_, c)| c).collect();
        let stopped = terminate_all(&mut refs, grace);
        taken.iter().map(|(id, _)| *id).zip(stopped).collect()
    }

    /// A client that knows every node.
    pub fn client(&self) -> ClusterClient {
        self.client_checked().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A client that knows every node, with the operator bundle in `client/`.
    pub fn client_checked(&self) -> anyhow::Result<ClusterClient> {
        let dir = self.dir.join("client");
        let bundle = clearway_node::net::tls::Bundle::load(&dir)
            .with_context(|| format!("cannot load the client bundle in {}", dir.display()))?;
        Ok(ClusterClient::new(&bundle, self.addrs.clone())?)
    }

    /// A node's log so far (for failure messages).
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.node_dir(id).join("log")).unwrap_or_default()
    }

    /// Starts `voters` and `learners`, initialises the cluster and adds the learners.
    pub async fn bootstrap(&mut self, voters: &[u64], learners: &[u64]) -> ClusterClient {
        for &id in voters.iter().chain(learners) {
            self.start(id);
        }
        let client = self.client();
        self.join(&client, voters, learners, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        client
    }

    /// Brings the running nodes into one cluster of `voters` and `learners`, doing only what is
    /// missing: initialises it unless the first voter already knows a membership (a restart),
    /// adds the learners that are not members yet, and waits until every node sees the whole
    /// membership and a leader. Whether it initialised the cluster.
    pub async fn join(
        &self,
        client: &ClusterClient,
        voters: &[u64],
        learners: &[u64],
        within: Duration,
    ) -> anyhow::Result<bool> {
        let deadline = tokio::time::Instant::now() + within;
        // The first node may not be listening yet: retry until it answers.
        let status = loop {
            match client.status(voters[0]).await {
                Ok(s) => break s,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => bail!(
                    "node {} did not answer within {within:?}: {e}\n{}",
                    voters[0],
                    crate::lane::tail(&self.log(voters[0]))
                ),
            }
        };
        let initialise = status.voters.is_empty();
        if initialise {
            let members: BTreeMap<u64, String> = voters
                .iter()
                .map(|id| (*id, self.addrs[id].to_string()))
                .collect();
            loop {
                match client.initialize(voters[0], members.clone()).await {
                    Ok(()) => break,
                    Err(e) if tokio::time::Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => bail!("cannot initialise the cluster: {e}"),
                }
            }
        }
        let known = leader_status(client, voters, deadline).await?;
        for &id in learners {
            if known.learners.contains(&id) || known.voters.contains(&id) {
                continue;
            }
            let change = MembershipChange::AddLearner {
                id,
                addr: self.addrs[&id].to_string(),
            };
            client
                .change_membership(change, Duration::from_secs(30))
                .await
                .with_context(|| format!("cannot add node {id} as a learner"))?;
        }
        for &id in voters.iter().chain(learners) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            client
                .wait_for(id, "membership", left.max(Duration::from_secs(1)), |s| {
                    s.voters.len() == voters.len()
                        && s.learners.len() == learners.len()
                        && s.leader.is_some()
                })
                .await
                .map_err(|e| {
                    anyhow::anyhow!("node {id}: {e}\n{}", crate::lane::tail(&self.log(id)))
                })?;
        }
        Ok(initialise)
    }
}

/// The status of the leader as the voters know it, waiting until there is one.
async fn leader_status(
    client: &ClusterClient,
    voters: &[u64],
    deadline: tokio::time::Instant,
) -> anyhow::Result<NodeStatus> {
    loop {
        for &id in voters {
            if let Ok(s) = client.status(id).await
                && s.state == "leader"
            {
                return Ok(s);
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no leader among nodes {voters:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for LocalPort {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.procs) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The leader as seen by `via`, waiting until there is one.
pub async fn leader(client: &ClusterClient, via: &[u64]) -> u64 {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        for &id in via {
            if let Ok(NodeStatus {
                leader: Some(l),
                state,
                ..
            }) = client.status(id).await
            {
                if via.contains(&l) && (l != id || state == "leader") {
                    return l;
                }
            }
        }
        assert!(std::time::Instant::now() < until, "no leader within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

/// A synthetic Macao resident with travel document `doc`.
pub fn person(doc: &str) -> NewPerson {
    NewPerson {
        name: format!("Traveller {doc}"),
        date_of_birth: day(1985, 3, 4),
        category: Category::MacaoResident,
        document: TravelDocument {
            kind: Category::MacaoResident.document_kind(),
            number: doc.to_string(),
            valid_from: day(2020, 1, 1),
            valid_until: day(2030, 1, 1),
        },
        endorsement: None,
        registrations: Registrations::default(),
        consents: vec![],
        guardian_consent: None,
    }
}

/// A random unit vector of 128 dimensions (SFace's size).
pub fn random_embedding(rng: &mut impl Rng) -> Vec<f32> {
    let v: Vec<f32> = (0..128).map(|_| rng.random::<f32>() - 0.5).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// An SFace template of `embedding`.
pub fn template(embedding: &[f32]) -> Template {
    Template::quantize(ModelId::new("sface", "2021dec"), embedding).expect("template")
}

/// Enrol `doc` with one template of `embedding`.
pub fn enrol(doc: &str, embedding: &[f32]) -> GalleryCommand {
    GalleryCommand::Enrol {
        person: person(doc),
        templates: vec![template(embedding)],
    }
}
