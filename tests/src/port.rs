//! A local port cluster of `clearway-node run` processes on loopback, for tests and benchmarks.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clearway_node::cluster::ClusterClient;
use clearway_node::cluster::protocol::{MembershipChange, NodeStatus};
use clearway_node::net::Identity;
use clearway_node::net::tls::PortCa;

use chrono::NaiveDate;
use clearway_gallery::{
    Category, Command as GalleryCommand, ModelId, NewPerson, Registrations, Template,
    TravelDocument,
};
use rand::Rng;

use crate::node_bin;

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
}

fn free_addr() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a free UDP port");
    s.local_addr().expect("local addr")
}

impl LocalPort {
    /// Creates the CA, a client bundle and `n` node directories (not started).
    pub fn new(dir: &Path, ids: impl IntoIterator<Item = u64>, tuning: Tuning) -> LocalPort {
        let ca = PortCa::create(PORT).expect("port CA");
        ca.save(&dir.join("ca")).expect("save CA");
        ca.issue(&Identity::client("tests").expect("client name"))
            .expect("client bundle")
            .save(&dir.join("client"))
            .expect("save client bundle");
        let mut port = LocalPort {
            dir: dir.to_path_buf(),
            ca,
            addrs: BTreeMap::new(),
            metrics: BTreeMap::new(),
            procs: BTreeMap::new(),
            tuning,
        };
        for id in ids {
            port.add_node(id);
        }
        port
    }

    /// Prepares one more node directory (not started).
    pub fn add_node(&mut self, id: u64) {
        let addr = free_addr();
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free TCP port");
        let node_dir = self.node_dir(id);
        self.ca
            .issue(&Identity::Node(id))
            .expect("node bundle")
            .save(&node_dir.join("tls"))
            .expect("save node bundle");
        let t = &self.tuning;
        let config = format!(
            "node_id = {id}\nlisten = \"{addr}\"\nmetrics_listen = \"{metrics}\"\ndata_dir = \"data\"\ntls_dir = \"tls\"\n\n[raft]\nheartbeat_ms = {hb}\nelection_timeout_min_ms = {emin}\nelection_timeout_max_ms = {emax}\nsnapshot_every = {}\nkeep_logs_after_snapshot = {}\nfsync = {}\n",
            t.snapshot_every,
            t.keep_logs_after_snapshot,
            t.fsync,
            hb = t.heartbeat_ms,
            emin = t.heartbeat_ms * 5,
            emax = t.heartbeat_ms * 10,
        );
        std::fs::write(node_dir.join("node.toml"), config).expect("write config");
        self.addrs.insert(id, addr);
        self.metrics.insert(id, metrics);
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
        let dir = self.node_dir(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log"))
            .expect("log file");
        let child = Command::new(node_bin())
            .args(["run", "--config"])
            .arg(dir.join("node.toml"))
            .env("RUST_LOG", "info,openraft=warn,quinn=warn")
            .env("CLEARWAY_ASSETS", crate::assets())
            .env("ORT_DYLIB_PATH", crate::ort_library())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start clearway-node run");
        self.procs.insert(id, child);
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
        match self.procs.remove(&id) {
            Some(mut c) => {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(c.id().to_string())
                    .status();
                c.wait().map(|s| s.success()).unwrap_or(false)
            }
            None => false,
        }
    }

    /// A client that knows every node.
    pub fn client(&self) -> ClusterClient {
        let bundle =
            clearway_node::net::tls::Bundle::load(&self.dir.join("client")).expect("client bundle");
        ClusterClient::new(&bundle, self.addrs.clone()).expect("client")
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
        let members = voters
            .iter()
            .map(|id| (*id, self.addrs[id].to_string()))
            .collect();
        // The first node may not be listening yet: retry until it answers.
        wait_ok(
            || client.initialize(voters[0], BTreeMap::clone(&members)),
            Duration::from_secs(30),
        )
        .await;
        for &id in learners {
            let change = MembershipChange::AddLearner {
                id,
                addr: self.addrs[&id].to_string(),
            };
            client
                .change_membership(change, Duration::from_secs(30))
                .await
                .expect("add learner");
        }
        for &id in voters.iter().chain(learners) {
            client
                .wait_for(id, "membership", Duration::from_secs(30), |s| {
                    s.voters.len() == voters.len()
                        && s.learners.len() == learners.len()
                        && s.leader.is_some()
                })
                .await
                .unwrap_or_else(|e| panic!("{e}\n{}", self.log(id)));
        }
        client
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

async fn wait_ok<F, Fut, T>(f: F, deadline: Duration) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = clearway_node::Result<T>>,
{
    let until = std::time::Instant::now() + deadline;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if std::time::Instant::now() < until => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("gave up after {deadline:?}: {e}"),
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
