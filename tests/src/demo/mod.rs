//! `clearway-demo` (`just demo`): Hengqin Port on one machine, the whole product running.
//!
//! * a port cluster of `clearway-node run` processes on loopback: voters 1, 2, 3 (rack
//!   appliances) and lane nodes 11–14 (learners with a `[lane]`, channels `passenger/1..4`);
//! * every lane's devices as simulators speaking the real protocols, inside this process: two
//!   RTSP cameras streaming the real photos under `assets/photos`, the Modbus gate controller,
//!   the document and fingerprint readers; the Macao and Mainland reference authorities over
//!   HTTPS with mutual TLS;
//! * a registry seeded through the cluster from real photos ([`registry`]);
//! * the supervisor console (`clearway-console serve`) with a port admin and a supervisor;
//! * Prometheus with the shipped config and rules, when `/usr/bin/prometheus` exists;
//! * travellers walking through every lane on a loop ([`walker`]).
//!
//! Everything lives under one directory (`CLEARWAY_DEMO_DIR`, default
//! `/var/tmp/clearway-demo`), laid out as
//!
//! ```text
//! demo.json            ports chosen on the first run, whether the registry is seeded
//! demo.lock            held while a demo runs on this directory
//! port/                ca/ (the port CA), client/ (operator bundle), node-N/{node.toml,tls,data,log}
//! authorities/         pki/ (the reference authorities' demo PKI), records/{macao,mainland}.jsonl
//! console/             console.toml, bundle/, data/, log, admin.password, supervisor.password, desk.password (0600)
//! prometheus/          prometheus.yml, rules/, targets/hengqin.json, data/, prometheus.log
//! ```
//!
//! A second run reuses all of it: the same CA and certificates, node addresses, Raft logs and
//! registry (no initialisation, no enrolment), console users and Prometheus data. SIGINT
//! (Ctrl-C) or SIGTERM stops the walkers, then sends SIGTERM to the lane nodes, the console,
//! Prometheus and the voters, waits for each, and exits 0.

/// `println!` that shrugs off a closed stdout (`just demo | tee log`, then Ctrl-C, which stops
/// `tee` too): the narrative is best effort, stopping the port cleanly is not.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod layout;
pub mod registry;
pub mod walker;

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::{Context, bail};
use clearway_node::cluster::ClusterClient;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use layout::{
    NODE_PORT_HINT, State, binary, check_free, console_site, generate_password, prepare_dir,
    write_secret,
};

use crate::console::{
    HENGQIN_HALLS, add_user, console_certificate, console_config, spawn_console, wait_listening,
};
use crate::lane::{Authorities, CameraSpec, Lane, LaneDevices, lane_config, tail};
use crate::port::{LocalPort, PortPicker, Tuning};
use crate::process::{Stopped, terminate};
use crate::prometheus::{Prometheus, Target};

/// The demo port's id (channel ids are `hengqin/<hall>/<n>`).
pub const PORT_ID: &str = "hengqin";
/// The demo port's name.
pub const PORT_NAME: &str = "Hengqin Port (demo)";
/// The voters' node ids.
pub const VOTERS: [u64; 3] = [1, 2, 3];
/// Lanes: channels `passenger/1..=LANES`.
pub const LANES: u32 = 4;

/// The node id of lane `n` (1-based): 11, 12, …
pub fn lane_node(n: u32) -> u64 {
    10 + u64::from(n)
}

/// The channel id of lane `n`.
pub fn channel(n: u32) -> String {
    format!("{PORT_ID}/passenger/{n}")
}

/// `clearway-demo`'s options (each also from the environment).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "clearway-demo",
    version,
    about = "Hengqin Port on this machine: 3 voters, 4 lanes with simulated devices, the console, Prometheus, and travellers walking through. Ctrl-C stops it; a second run resumes."
)]
pub struct Options {
    /// Where everything lives (created on the first run, reused after).
    #[arg(
        long,
        env = "CLEARWAY_DEMO_DIR",
        default_value = "/var/tmp/clearway-demo"
    )]
    pub dir: PathBuf,
    /// Pause between two travellers at a lane, milliseconds.
    #[arg(long, env = "CLEARWAY_DEMO_WALK_INTERVAL_MS", default_value_t = 4000)]
    pub walk_interval_ms: u64,
    /// The console's loopback port. Default: the one chosen on the first run (a free one then).
    #[arg(long, env = "CLEARWAY_DEMO_CONSOLE_PORT")]
    pub console_port: Option<u16>,
    /// Prometheus' loopback port. Default: the one chosen on the first run (a free one then).
    #[arg(long, env = "CLEARWAY_DEMO_PROMETHEUS_PORT")]
    pub prometheus_port: Option<u16>,
    /// Do not start Prometheus even if it is installed.
    #[arg(long, env = "CLEARWAY_DEMO_NO_PROMETHEUS")]
    pub no_prometheus: bool,
    /// The simulated cameras' picture and rate, `WIDTHxHEIGHT@FPS` (width and height multiples
    /// of 8). Eight streams are encoded, decoded and watched at once: the rate is kept low for
    /// small machines; below 1280x720 some photos' faces are too small for the quality gate.
    #[arg(long, env = "CLEARWAY_DEMO_CAMERA", default_value = "1280x720@5", value_parser = parse_camera)]
    pub camera: CameraSpec,
}

/// Parses `WIDTHxHEIGHT@FPS`.
pub fn parse_camera(s: &str) -> Result<CameraSpec, String> {
    let bad = || format!("{s:?} is not WIDTHxHEIGHT@FPS (e.g. 640x480@5)");
    let (size, fps) = s.split_once('@').ok_or_else(bad)?;
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    let spec = CameraSpec {
        width: w.trim().parse().map_err(|_| bad())?,
        height: h.trim().parse().map_err(|_| bad())?,
        fps: fps.trim().parse().map_err(|_| bad())?,
    };
    if !(64..=1920).contains(&spec.width)
        || !(64..=1080).contains(&spec.height)
        || spec.width % 8 != 0
        || spec.height % 8 != 0
        || !(1..=30).contains(&spec.fps)
    {
        return Err(format!(
            "{s:?}: width 64-1920 and height 64-1080, multiples of 8, and 1-30 fps"
        ));
    }
    Ok(spec)
}

/// SIGINT and SIGTERM.
struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// A console user the demo creates on its first run.
struct User {
    name: &'static str,
    role: &'static str,
    ports: &'static [&'static str],
    what: &'static str,
}

const USERS: [User; 3] = [
    User {
        name: "admin",
        role: "port_admin",
        ports: &[],
        what: "port admin: every page, rollout, users, audit",
    },
    User {
        name: "supervisor",
        role: "supervisor",
        ports: &[PORT_ID],
        what: "supervisor of hengqin: lanes, alarms, overrides",
    },
    User {
        name: "desk",
        role: "service_desk",
        ports: &[],
        what: "service desk: look up a traveller, guardian consent, cancellation",
    },
];

/// Everything the demo started, so that it can stop it.
struct Demo {
    opts: Options,
    state: State,
    _lock: File,
    assets: PathBuf,
    ort: PathBuf,
    node_bin: PathBuf,
    console_bin: PathBuf,
    site: PathBuf,
    port: Option<LocalPort>,
    authorities: Option<Authorities>,
    lanes: Vec<Lane>,
    walkers: Vec<JoinHandle<Lane>>,
    stop_walkers: watch::Sender<bool>,
    console: Option<Child>,
    console_listen: Option<SocketAddr>,
    console_metrics: Option<SocketAddr>,
    /// The console's self-signed certificate's SHA-256 fingerprint (printed).
    console_fingerprint: Option<String>,
    prometheus: Option<Prometheus>,
    /// Children already reported as gone.
    reported: Vec<String>,
    /// Console users created by this run (their passwords are printed).
    created: Vec<&'static str>,
    /// Where new loopback addresses come from.
    picker: PortPicker,
}

/// Runs the demo until SIGINT or SIGTERM; `Ok` after a clean stop.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let mut signals = Signals::new()?;
    let node_bin = binary("CLEARWAY_NODE_BIN", "clearway-node", "clearway-node")?;
    let console_bin = binary(
        "CLEARWAY_CONSOLE_BIN",
        "clearway-console",
        "clearway-console",
    )?;
    let assets = crate::find_assets().map_err(anyhow::Error::msg)?;
    let ort = crate::ort_library();
    if !ort.is_file() {
        bail!(
            "ONNX Runtime not found at {}: run `just setup` (or set ORT_DYLIB_PATH)",
            ort.display()
        );
    }
    for t in &registry::TRAVELLERS {
        for p in t.photos.iter().chain(t.enrolment_photo.iter()) {
            registry::photo(&assets, p)?;
        }
    }
    let (lock, state) = prepare_dir(&opts.dir)?;
    let fresh = state.is_none();
    let state = state.unwrap_or(State {
        version: 1,
        ..State::default()
    });
    state.save(&opts.dir)?;
    say!("Clearway demo: {PORT_NAME} on this machine");
    say!(
        "  data  {}  ({})",
        opts.dir.display(),
        if fresh {
            "new: everything is created"
        } else {
            "reused: the same CA, cluster, registry and console users"
        }
    );
    let (stop_walkers, _) = watch::channel(false);
    let mut demo = Demo {
        opts,
        state,
        _lock: lock,
        assets,
        ort,
        node_bin,
        console_bin,
        site: console_site(),
        port: None,
        authorities: None,
        lanes: Vec::new(),
        walkers: Vec::new(),
        stop_walkers,
        console: None,
        console_listen: None,
        console_metrics: None,
        console_fingerprint: None,
        prometheus: None,
        reported: Vec::new(),
        created: Vec::new(),
        picker: PortPicker::new(),
    };
    let started = tokio::select! {
        r = demo.start() => Some(r),
        s = signals.recv() => {
            say!("\n{s} while starting: stopping what was started …");
            None
        }
    };
    match started {
        Some(Ok(())) => {
            let s = demo.watch(&mut signals).await;
            say!("\n{s}: stopping (lanes, console, Prometheus, voters) …");
        }
        Some(Err(e)) => {
            say!("\nstart-up failed: stopping what was started …");
            demo.shutdown().await;
            return Err(e);
        }
        None => {}
    }
    if demo.shutdown().await {
        Ok(())
    } else {
        bail!("not every process stopped cleanly (see above and its log)")
    }
}

impl Demo {
    fn dir(&self) -> &Path {
        &self.opts.dir
    }

    fn lane_ids() -> Vec<u64> {
        (1..=LANES).map(lane_node).collect()
    }

    /// Starts everything, prints where it is, and sets the travellers walking.
    async fn start(&mut self) -> anyhow::Result<()> {
        let dir = self.dir().to_path_buf();

        // 1. The port CA, bundles and node configs.
        say!("\n[1/7] Port CA, certificates, node configs");
        let port_dir = dir.join("port");
        let all: Vec<u64> = VOTERS.iter().copied().chain(Self::lane_ids()).collect();
        let fresh = !port_dir.join("ca").exists();
        let mut port = if fresh {
            std::fs::create_dir_all(&port_dir)
                .with_context(|| format!("cannot create {}", port_dir.display()))?;
            LocalPort::create(
                &port_dir,
                PORT_ID,
                "operator",
                std::iter::empty(),
                Tuning::default(),
                self.node_bin.clone(),
            )?
        } else {
            let port = LocalPort::open(&port_dir, self.node_bin.clone())?;
            if port.ca.port() != PORT_ID {
                bail!(
                    "{} holds the CA of port {:?}, not {PORT_ID:?}: remove the demo directory to start over",
                    port_dir.display(),
                    port.ca.port()
                );
            }
            port
        };
        // Addresses chosen on an earlier run stay; new ones come from outside the ephemeral
        // range, so no simulator started meanwhile can take them.
        let earlier = port.addrs.values().chain(port.metrics.values()).copied();
        let earlier: Vec<SocketAddr> = earlier
            .chain(self.state.console_listen)
            .chain(self.state.console_metrics)
            .chain(self.state.prometheus_listen)
            .collect();
        for a in earlier {
            self.picker.reserve(a);
        }
        for &id in &all {
            if !port.addrs.contains_key(&id) {
                let (quic, metrics) = (self.picker.pick()?, self.picker.pick()?);
                port.try_add_node_at(id, quic, metrics)?;
            }
        }
        if fresh {
            say!(
                "      created the port CA ({}/ca, key 0600), a bundle for nodes {all:?} and for the operator (client/)",
                port_dir.display()
            );
        } else {
            say!(
                "      reused {}/ca (port {PORT_ID}) and every node's bundle and config",
                port_dir.display()
            );
        }
        for &id in &all {
            let quic = format!("node {id}'s QUIC address");
            check_free(port.addrs[&id], true, &quic, NODE_PORT_HINT)?;
            if let Some(m) = port.metrics.get(&id) {
                check_free(*m, false, &format!("node {id}'s /metrics"), NODE_PORT_HINT)?;
            }
        }
        let console_listen = match (self.opts.console_port, self.state.console_listen) {
            (Some(p), _) => SocketAddr::from(([127, 0, 0, 1], p)),
            (None, Some(a)) => a,
            (None, None) => self.picker.pick()?,
        };
        check_free(
            console_listen,
            false,
            "the console's address",
            "pick another with --console-port (CLEARWAY_DEMO_CONSOLE_PORT)",
        )?;
        self.state.console_listen = Some(console_listen);
        let console_metrics = match self.state.console_metrics {
            Some(a) => a,
            None => self.picker.pick()?,
        };
        check_free(
            console_metrics,
            false,
            "the console's /metrics address",
            "remove demo.json from the demo directory to choose new addresses",
        )?;
        self.state.console_metrics = Some(console_metrics);
        self.state.save(&dir)?;

        // 2. Simulators.
        say!(
            "\n[2/7] Simulated devices and partners (labelled simulators; each speaks the real protocol)"
        );
        let auth_dir = dir.join("authorities");
        let authorities =
            Authorities::start(&auth_dir.join("pki"), Some(&auth_dir.join("records"))).await?;
        // What the authorities hold about each traveller's prerequisites (the lane asks).
        for t in &registry::TRAVELLERS {
            authorities.hold(t.document, t.prerequisites());
        }
        say!(
            "      Macao reference authority     {}  (HTTPS, mutual TLS)",
            authorities.macao.base_url()
        );
        say!(
            "      Mainland reference authority  {}  (HTTPS, mutual TLS)",
            authorities.mainland.base_url()
        );
        let cam = self.opts.camera;
        for n in 1..=LANES {
            let devices =
                LaneDevices::start_secure(cam, &self.dir().join(format!("gate-pki-{n}"))).await?;
            let api = self.picker.pick()?;
            let ch = channel(n);
            port.set_lane(
                lane_node(n),
                &ch,
                &lane_config(&ch, api, &devices, &authorities, ""),
            )?;
            say!(
                "      lane {n} ({ch}): RTSP camera simulators {} and {} ({}x{} H.264, {} fps, real photos), \
                 Modbus/TCP Security gates {} (mutual TLS), document reader {} (chips signed by a test issuer, passive authentication), fingerprint reader {}",
                devices.cam1.url(),
                devices.cam2.url(),
                cam.width,
                cam.height,
                cam.fps,
                devices.gates.addr(),
                devices.documents.local_addr(),
                devices.fingers.addr(),
            );
            self.lanes.push(Lane::new(&ch, api, devices));
        }
        say!(
            "      presentation-attack detection: observe mode on every lane (the cameras show photos, \
             attacks by construction: verdicts are counted on /metrics, nobody is refused for them; \
             the console's lane page says so)"
        );
        self.authorities = Some(authorities);

        // 3. The cluster.
        say!(
            "\n[3/7] Port cluster: voters {VOTERS:?}, lane nodes {:?} (learners, full replicas), QUIC + mutual TLS",
            Self::lane_ids()
        );
        for &id in &all {
            port.try_start(id)?;
        }
        self.port = Some(port);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.check_started(&all)?;
        let port = self.port.as_ref().context("port")?;
        let client = port.client_checked()?;
        let initialised = match port
            .join(
                &client,
                &VOTERS,
                &Self::lane_ids(),
                Duration::from_secs(120),
            )
            .await
        {
            Ok(i) => i,
            Err(e) => {
                self.check_started(&all)?;
                return Err(e);
            }
        };
        let mut status = client.status(VOTERS[0]).await?;
        if let Some(leader) = status.leader
            && let Ok(s) = client.status(leader).await
        {
            status = s;
        }
        say!(
            "      {} the cluster; leader node {}, term {}, {} persons in the registry",
            if initialised {
                "initialised"
            } else {
                "rejoined"
            },
            status.leader.map(|l| l.to_string()).unwrap_or("?".into()),
            status.term,
            status.persons
        );

        // 4. The registry.
        say!("\n[4/7] Registry (through the cluster; templates from real photos, sealed at rest)");
        if self.state.seeded {
            say!(
                "      seeded on the first run: {} persons (the cancelled one is erased); nothing re-enrolled",
                status.persons
            );
            for t in &registry::TRAVELLERS {
                say!(
                    "      {:<15} {:<19} {}",
                    t.name,
                    registry::category_words(t.category),
                    t.standing.describe()
                );
            }
        } else {
            registry::seed(&client, &self.assets, &self.ort).await?;
            for t in registry::TRAVELLERS.iter().filter(|t| {
                matches!(
                    t.standing,
                    registry::Standing::MinorWithoutConsent | registry::Standing::Unregistered
                )
            }) {
                say!(
                    "    (not enrolled) {:<15} {} ({})",
                    t.name,
                    registry::category_words(t.category),
                    t.standing.describe()
                );
            }
            self.state.seeded = true;
            self.state.save(&dir)?;
        }

        // 5. The console.
        say!("\n[5/7] Supervisor console");
        self.start_console().await?;

        // 6. Prometheus.
        say!("\n[6/7] Prometheus");
        self.start_prometheus().await;

        // 7. Lanes up, travellers walking.
        say!("\n[7/7] Lanes");
        for lane in &self.lanes {
            lane.wait_api(Duration::from_secs(120))
                .await
                .with_context(|| {
                    format!(
                        "lane {}: see {}",
                        lane.channel,
                        self.log_path_of_channel(&lane.channel)
                    )
                })?;
        }
        let port = self.port.as_ref().context("port")?;
        for (i, lane) in self.lanes.iter().enumerate() {
            let n = i as u32 + 1;
            let node = lane_node(n);
            let metrics = port
                .metrics
                .get(&node)
                .map(|m| format!("http://{m}/metrics"))
                .unwrap_or_default();
            say!(
                "      {}  node {node}  gate screens http://{api}/kiosk and /kiosk?gate=2  state http://{api}/lane  metrics {metrics}",
                lane.channel,
                api = lane.api
            );
        }
        self.print_summary();
        self.start_walkers(client);
        Ok(())
    }

    fn log_path_of_channel(&self, ch: &str) -> String {
        (1..=LANES)
            .find(|n| channel(*n) == ch)
            .map(|n| {
                self.dir()
                    .join(format!("port/node-{}/log", lane_node(n)))
                    .display()
                    .to_string()
            })
            .unwrap_or_default()
    }

    /// Fails naming the nodes that exited (with their log tails).
    fn check_started(&mut self, ids: &[u64]) -> anyhow::Result<()> {
        let Some(port) = self.port.as_mut() else {
            return Ok(());
        };
        let mut dead = Vec::new();
        for &id in ids {
            if let Some(status) = port.exited(id) {
                dead.push(format!(
                    "node {id} exited ({}); {}:\n{}",
                    status
                        .map(|s| s.to_string())
                        .unwrap_or("not started".into()),
                    port.node_dir(id).join("log").display(),
                    tail(&port.log(id))
                ));
            }
        }
        if dead.is_empty() {
            Ok(())
        } else {
            bail!("{}", dead.join("\n"))
        }
    }

    async fn start_console(&mut self) -> anyhow::Result<()> {
        let dir = self.dir().to_path_buf();
        let cdir = dir.join("console");
        std::fs::create_dir_all(&cdir)
            .with_context(|| format!("cannot create {}", cdir.display()))?;
        let port = self.port.as_ref().context("port")?;
        // Issued once; again if it was made before certificates carried roles.
        if clearway_node::net::tls::Bundle::load(&cdir.join("bundle")).is_err() {
            port.ca
                .issue(
                    &clearway_node::net::Identity::client("console")?,
                    &clearway_node::net::Role::Console,
                )?
                .save(&cdir.join("bundle"))
                .with_context(|| {
                    format!("cannot save the console's bundle in {}", cdir.display())
                })?;
        }
        let listen = self
            .state
            .console_listen
            .context("the console's address was not chosen")?;
        let metrics = self
            .state
            .console_metrics
            .context("the console's /metrics address was not chosen")?;
        let config = console_config(
            listen,
            metrics,
            PORT_ID,
            PORT_NAME,
            &port.addrs,
            &HENGQIN_HALLS,
            None,
        );
        let config_path = cdir.join("console.toml");
        std::fs::write(&config_path, config)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        // Self-signed, made on the first run and kept: for this demo only (a port's console
        // gets its certificate from the operator's CA).
        let (cert, fingerprint) = console_certificate(&self.console_bin, &cdir)?;
        say!(
            "      HTTPS with a self-signed certificate ({}), SHA-256 {fingerprint}",
            cert.display()
        );
        self.console_fingerprint = Some(fingerprint);
        say!(
            "      {}: port {PORT_ID} with its 7 nodes as seeds; halls passenger (48 channels, lanes 1-4 deployed) and onboard (16)",
            config_path.display()
        );
        for u in &USERS {
            let file = cdir.join(format!("{}.password", u.name));
            if file.is_file() {
                say!(
                    "      user {:<10} exists ({}); its password is in {} (made on the first run)",
                    u.name,
                    u.what,
                    file.display()
                );
                continue;
            }
            write_secret(&file, &generate_password())?;
            if let Err(e) = add_user(
                &self.console_bin,
                &cdir.join("data"),
                u.name,
                u.role,
                u.ports,
                &file,
            ) {
                let _ = std::fs::remove_file(&file);
                return Err(e);
            }
            self.created.push(u.name);
            say!(
                "      created user {:<10} ({}); password in {} (mode 0600)",
                u.name,
                u.what,
                file.display()
            );
        }
        if !self.site.join("pkg").join("clearway_console.js").is_file() {
            say!(
                "      warning: the console's browser code is missing in {}: pages render but do not update live; build it with `just console`",
                self.site.display()
            );
        }
        let child = spawn_console(
            &self.console_bin,
            &config_path,
            &self.site,
            &cdir.join("log"),
        )?;
        self.console = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while let Err(e) = wait_listening(listen, Duration::from_millis(500)).await {
            let gone = self
                .console
                .as_mut()
                .is_some_and(|c| !matches!(c.try_wait(), Ok(None)));
            if gone || tokio::time::Instant::now() > deadline {
                bail!(
                    "the console did not start ({e}); {}:\n{}",
                    cdir.join("log").display(),
                    tail(&std::fs::read_to_string(cdir.join("log")).unwrap_or_default())
                );
            }
        }
        self.console_listen = Some(listen);
        self.console_metrics = Some(metrics);
        say!("      serving on https://{listen}/ (its /metrics on http://{metrics}/metrics)");
        Ok(())
    }

    /// Starts Prometheus when it is installed; a failure is reported, not fatal.
    async fn start_prometheus(&mut self) {
        if self.opts.no_prometheus {
            say!("      not started (--no-prometheus)");
            return;
        }
        if !crate::prometheus::installed() {
            say!("      /usr/bin/prometheus is not installed: skipped (`just setup` installs it)");
            return;
        }
        match self.try_start_prometheus().await {
            Ok(addr) => say!(
                "      http://{addr}/ with the shipped deploy/prometheus config and alert rules; \
                 targets in {}/prometheus/targets/{PORT_ID}.json",
                self.dir().display()
            ),
            Err(e) => say!("      warning: Prometheus did not start: {e:#}"),
        }
    }

    async fn try_start_prometheus(&mut self) -> anyhow::Result<SocketAddr> {
        let dir = self.dir().to_path_buf();
        let port = self.port.as_ref().context("port")?;
        let listen = match (self.opts.prometheus_port, self.state.prometheus_listen) {
            (Some(p), _) => SocketAddr::from(([127, 0, 0, 1], p)),
            (None, Some(a)) => a,
            (None, None) => self.picker.pick()?,
        };
        check_free(
            listen,
            false,
            "Prometheus' address",
            "pick another with --prometheus-port (CLEARWAY_DEMO_PROMETHEUS_PORT), or --no-prometheus",
        )?;
        let node = |id: u64, member: &str| Target {
            addr: port.metrics[&id],
            labels: vec![
                ("port", PORT_ID.to_string()),
                ("role", "node".into()),
                ("member", member.into()),
                ("node", id.to_string()),
            ],
        };
        let mut targets: Vec<Target> = VOTERS.iter().map(|&id| node(id, "voter")).collect();
        for n in 1..=LANES {
            let mut t = node(lane_node(n), "learner");
            t.labels
                .extend([("hall", "passenger".to_string()), ("channel", channel(n))]);
            targets.push(t);
        }
        if let Some(c) = self.console_metrics {
            targets.push(Target {
                addr: c,
                labels: vec![("role", "console".into())],
            });
        }
        let prom_dir = dir.join("prometheus");
        let prom = Prometheus::try_start(&prom_dir, PORT_ID, &targets, listen)?;
        // Held by the demo at once, so that a Ctrl-C while it starts stops it too.
        self.prometheus = Some(prom);
        self.state.prometheus_listen = Some(listen);
        self.state.save(&dir)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while wait_listening(listen, Duration::from_millis(500))
            .await
            .is_err()
        {
            let prom = self.prometheus.as_mut().context("prometheus")?;
            if prom.exited() || tokio::time::Instant::now() > deadline {
                let log = prom.log();
                if let Some(p) = self.prometheus.take() {
                    let _ = p.stop(Duration::from_secs(5));
                }
                bail!("{}/prometheus.log:\n{}", prom_dir.display(), tail(&log));
            }
        }
        Ok(listen)
    }

    fn print_summary(&self) {
        let dir = self.dir();
        say!("\nReady.");
        if let Some(c) = self.console_listen {
            say!("  Console      https://{c}/");
            if let Some(f) = &self.console_fingerprint {
                say!(
                    "  Certificate  self-signed for this demo; your browser will warn: check its SHA-256 is {f}"
                );
            }
        }
        for u in &USERS {
            let file = dir.join("console").join(format!("{}.password", u.name));
            let fresh_password = std::fs::read_to_string(&file)
                .ok()
                .map(|p| p.trim().to_string());
            match fresh_password {
                Some(p) if self.created.contains(&u.name) => say!(
                    "  Sign in      {} / {p}   ({}; kept in {}, mode 0600)",
                    u.name,
                    u.what,
                    file.display()
                ),
                _ => say!(
                    "  Sign in      {}: the password is in the existing file {}",
                    u.name,
                    file.display()
                ),
            }
        }
        if let Some(p) = &self.prometheus {
            say!("  Prometheus   http://{}/", p.addr);
        }
        say!(
            "  Logs         {0}/port/node-N/log, {0}/console/log, {0}/prometheus/prometheus.log",
            dir.display()
        );
        say!(
            "  Operator     clearway-node cluster --bundle {0}/port/client --node 1={1} status",
            dir.display(),
            self.port
                .as_ref()
                .and_then(|p| p.addrs.get(&1))
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
        say!(
            "  Stop         Ctrl-C (data stays in {0}: run again to resume; rm -rf {0} to start over)",
            dir.display()
        );
        say!("  Travellers   (try their permits at the service desk, /desk, signed in as desk)");
        for t in &registry::TRAVELLERS {
            say!(
                "    {:<15} {:<10} {:<28} {}",
                t.name,
                t.document,
                registry::category_words(t.category),
                t.standing.describe()
            );
        }
        say!(
            "\nTravellers walk up to each lane, one every {:.1} s (the cameras show their real photos); \
             on lane 1 every other visit of {} has a finger the reader cannot take, so the channel \
             is held for an officer (release it from the console's lane page):",
            self.opts.walk_interval_ms as f64 / 1000.0,
            registry::TRAVELLERS[0].name
        );
    }

    fn start_walkers(&mut self, client: ClusterClient) {
        let client = std::sync::Arc::new(client);
        let interval = Duration::from_millis(self.opts.walk_interval_ms);
        for (i, lane) in std::mem::take(&mut self.lanes).into_iter().enumerate() {
            let n = i as u32 + 1;
            let stop = self.stop_walkers.subscribe();
            let assets = self.assets.clone();
            self.walkers.push(tokio::spawn(walker::walk(
                lane,
                n,
                assets,
                client.clone(),
                interval,
                i * 2,
                stop,
            )));
        }
    }

    /// Waits for SIGINT or SIGTERM, reporting children that exit meanwhile.
    async fn watch(&mut self, signals: &mut Signals) -> &'static str {
        loop {
            tokio::select! {
                s = signals.recv() => return s,
                _ = tokio::time::sleep(Duration::from_secs(1)) => self.report_exits(),
            }
        }
    }

    fn report_exits(&mut self) {
        let mut gone = Vec::new();
        if let Some(port) = self.port.as_mut() {
            for id in VOTERS.iter().copied().chain(Self::lane_ids()) {
                if let Some(Some(status)) = port.exited(id) {
                    gone.push((
                        format!("node {id}"),
                        format!("{status}; see {}", port.node_dir(id).join("log").display()),
                    ));
                }
            }
        }
        if let Some(c) = self.console.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            gone.push(("the console".into(), status.to_string()));
        }
        if let Some(p) = self.prometheus.as_mut()
            && p.exited()
        {
            gone.push(("Prometheus".into(), "exited".into()));
        }
        for (who, why) in gone {
            if !self.reported.contains(&who) {
                say!("warning: {who} exited ({why})");
                self.reported.push(who);
            }
        }
    }

    /// Stops the walkers, then the lane nodes, the console, Prometheus and the voters (SIGTERM,
    /// waiting for each), then the simulators. Whether every process exited with status 0.
    async fn shutdown(&mut self) -> bool {
        let _ = self.stop_walkers.send(true);
        for w in std::mem::take(&mut self.walkers) {
            if let Ok(Ok(lane)) = tokio::time::timeout(Duration::from_secs(10), w).await {
                self.lanes.push(lane);
            }
        }
        let grace = Duration::from_secs(30);
        let mut results: Vec<(String, Stopped)> = Vec::new();
        if let Some(port) = self.port.as_mut() {
            let lanes = Self::lane_ids();
            let stopped = tokio::task::block_in_place(|| port.stop_all(&lanes, grace));
            results.extend(stopped.into_iter().map(|(id, s)| (format!("node {id}"), s)));
        }
        if let Some(mut c) = self.console.take() {
            let s = tokio::task::block_in_place(|| terminate(&mut c, grace));
            results.push(("console".into(), s));
        }
        if let Some(p) = self.prometheus.take() {
            let s = tokio::task::block_in_place(|| p.stop(grace));
            results.push(("prometheus".into(), s));
        }
        if let Some(port) = self.port.as_mut() {
            let stopped = tokio::task::block_in_place(|| port.stop_all(&VOTERS, grace));
            results.extend(stopped.into_iter().map(|(id, s)| (format!("node {id}"), s)));
        }
        self.lanes.clear();
        if let Some(a) = self.authorities.take() {
            a.macao.shutdown().await;
            a.mainland.shutdown().await;
        }
        let unclean: Vec<String> = results
            .iter()
            .filter(|(_, s)| !s.success())
            .map(|(who, s)| format!("{who}: {s}"))
            .collect();
        if results.is_empty() {
            say!("Stopped.");
        } else if unclean.is_empty() {
            say!(
                "Stopped cleanly: {} processes exited with status 0.",
                results.len()
            );
        } else {
            say!("Stopped; not cleanly: {}", unclean.join(", "));
        }
        say!(
            "Data kept in {}: run the demo again to resume.",
            self.dir().display()
        );
        unclean.is_empty()
    }
}
