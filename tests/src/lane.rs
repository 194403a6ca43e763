//! Lanes on loopback with every device simulated, for tests, benchmarks and the demo.
//!
//! * [`LaneDevices`]: one channel's devices — two RTSP camera simulators, the Modbus gate
//!   simulator, the document and fingerprint reader simulators — and [`lane_config`], the
//!   `[lane]` section of a node that drives them.
//! * [`Authorities`]: the Macao and Mainland reference authorities over HTTPS with mutual TLS
//!   (one pair serves every lane of a port).
//! * [`Lane`]: a running lane as a traveller meets it — its screen API and its devices: show a
//!   face, present a document, answer the declaration, walk through. Every step is fallible
//!   with a message saying what the lane showed instead (the demo keeps going after one).
//! * [`Rig`] / [`rig`]: the test rig of `tests/lane.rs`, `tests/console.rs` and `benches/lane.rs`
//!   (a port of a voter and one lane node); its steps panic with the lane's log tail.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use chrono::{NaiveDate, Utc};
use clearway_gallery::ops::{Op, OverrideAction};
use clearway_gallery::{
    Authority, Category, Command, ConsentKind, ConsentRecord, DocumentKind, NewPerson, Outcome,
    Registration, Registrations, Request, Template, TravelDocument,
};
use clearway_node::cluster::ClusterClient;
use clearway_node::face::{FaceConfig, FacePipeline, Frame};
use clearway_node::lane::authority::{DemoPki, ReferenceAuthority, ReferenceHandle};
use clearway_node::lane::camera::sim::{CameraSimulator, Scene, SimConfig};
use clearway_node::lane::document::{
    ChipData, DocumentReaderSimulator, DocumentSigner, RawDocument, synthetic_mrz,
};
use clearway_node::lane::fingerprint::{FingerprintSimConfig, FingerprintSimulator};
use clearway_node::lane::gate::{GateSimConfig, GateSimulator, ModbusTlsConfig, sim_tls_config};
use clearway_node::lane::procedure::{AuthorityRecord, GateId, GateState, PrerequisiteStatus};
use serde_json::Value;

use crate::port::{LocalPort, Tuning, free_tcp};
use crate::{assets, ort_library, photo};

pub fn day(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

/// Plain HTTP/1.1 to the lane's API (status, body).
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let r = crate::http::request(addr, method, path, &[], &[])
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"));
    (r.status, r.body)
}

// ------------------------------------------------------------------------------ devices

/// The size and rate of the simulated channel cameras.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CameraSpec {
    /// Width, pixels (a multiple of 8).
    pub width: u32,
    /// Height, pixels (a multiple of 8).
    pub height: u32,
    /// Frames a second.
    pub fps: u32,
}

impl Default for CameraSpec {
    /// 720p at 10 fps, as the channel cameras: a traveller's face fills a good part of the
    /// picture.
    fn default() -> Self {
        CameraSpec {
            width: 1280,
            height: 720,
            fps: 10,
        }
    }
}

/// A demo PKI (CA, server, client) read from `dir` when it is there (a restart), else made and
/// written there.
fn demo_pki(dir: &Path) -> anyhow::Result<DemoPki> {
    if !dir.join("ca.pem").is_file() {
        let pki = DemoPki::generate(&[])?;
        pki.write(dir)?;
        return Ok(pki);
    }
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .with_context(|| format!("cannot read {}", dir.join(name).display()))
    };
    Ok(DemoPki {
        ca_pem: read("ca.pem")?,
        server_cert_pem: read("server.pem")?,
        server_key_pem: read("server.key")?,
        client_cert_pem: read("client.pem")?,
        client_key_pem: read("client.key")?,
    })
}

/// One channel's simulated devices, each speaking its real protocol on loopback.
pub struct LaneDevices {
    /// The gate-1 camera (RTSP).
    pub cam1: clearway_node::lane::camera::sim::SimHandle,
    /// The gate-2 camera (RTSP).
    pub cam2: clearway_node::lane::camera::sim::SimHandle,
    /// The gate controller (Modbus TCP, or Modbus/TCP Security).
    pub gates: clearway_node::lane::gate::SimHandle,
    /// The lane's side of the gate network's TLS, when the controller speaks Modbus/TCP
    /// Security ([`LaneDevices::start_secure`]).
    pub gate_tls: Option<ModbusTlsConfig>,
    /// The document reader.
    pub documents: DocumentReaderSimulator,
    /// The lane's side of the reader's TLS, when it speaks TLS ([`LaneDevices::start_secure`]).
    pub document_tls: Option<ModbusTlsConfig>,
    /// The test issuer whose chips the reader presents (passive authentication).
    pub document_signer: DocumentSigner,
    /// `csca.pem` of [`LaneDevices::document_signer`]: the lane's `document_reader.csca_certs`.
    pub csca_certs: PathBuf,
    /// Where the signer lives when no directory was given.
    signer_dir: Option<tempfile::TempDir>,
    /// The fingerprint reader.
    pub fingers: clearway_node::lane::fingerprint::SimFingerprintHandle,
    /// The lane's side of the fingerprint reader's TLS ([`LaneDevices::start_secure`]).
    pub fingerprint_tls: Option<ModbusTlsConfig>,
}

impl LaneDevices {
    /// [`LaneDevices::start`] with the gate controller on Modbus/TCP Security and the document
    /// and fingerprint readers on TLS: a device-network PKI (CA, devices, lane) is made in `pki_dir` (or read
    /// there, on a restart).
    pub async fn start_secure(camera: CameraSpec, pki_dir: &Path) -> anyhow::Result<LaneDevices> {
        let pki = demo_pki(pki_dir).context("gate network PKI")?;
        let tls = sim_tls_config(
            pki.ca_pem.as_bytes(),
            pki.server_cert_pem.as_bytes(),
            pki.server_key_pem.as_bytes(),
        )
        .map_err(|e| anyhow!("gate simulator TLS: {e}"))?;
        let mut devices =
            LaneDevices::start_with(camera, Some(tls), Some(&pki_dir.join("documents"))).await?;
        let lane_side = ModbusTlsConfig {
            ca_cert: pki_dir.join("ca.pem"),
            client_cert: pki_dir.join("client.pem"),
            client_key: pki_dir.join("client.key"),
            server_name: None,
        };
        devices.gate_tls = Some(lane_side.clone());
        devices.document_tls = Some(lane_side.clone());
        devices.fingerprint_tls = Some(lane_side);
        Ok(devices)
    }

    /// Starts the devices on free loopback ports; both cameras show the empty channel. The gate
    /// controller speaks plain Modbus TCP.
    pub async fn start(camera: CameraSpec) -> anyhow::Result<LaneDevices> {
        LaneDevices::start_with(camera, None, None).await
    }

    async fn start_with(
        camera: CameraSpec,
        gate_tls: Option<std::sync::Arc<rustls::ServerConfig>>,
        signer_dir: Option<&Path>,
    ) -> anyhow::Result<LaneDevices> {
        let temp = match signer_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().context("document signer dir")?),
        };
        let dir = signer_dir
            .or(temp.as_ref().map(|t| t.path()))
            .context("document signer dir")?
            .to_path_buf();
        let document_signer = DocumentSigner::read_or_generate(&dir)
            .map_err(|e| anyhow!("test document signer: {e}"))?;
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        let cam = |mount: &str| SimConfig {
            mount: mount.into(),
            width: camera.width,
            height: camera.height,
            fps: camera.fps,
            ..SimConfig::default()
        };
        let cam1 =
            CameraSimulator::start(cam("/gate1")).context("RTSP camera simulator (gate 1)")?;
        let cam2 =
            CameraSimulator::start(cam("/gate2")).context("RTSP camera simulator (gate 2)")?;
        cam1.show(Scene::Empty)?;
        cam2.show(Scene::Empty)?;
        let gate_config = GateSimConfig {
            hold_open_ms: 20_000,
            ..GateSimConfig::default()
        };
        let gates = match gate_tls.clone() {
            Some(tls) => GateSimulator::start_tls(any, gate_config, tls).await,
            None => GateSimulator::start(any, gate_config).await,
        }
        .context("Modbus gate simulator")?;
        let documents = match &gate_tls {
            Some(tls) => DocumentReaderSimulator::start_tls(any, tls.clone()).await,
            None => DocumentReaderSimulator::start(any).await,
        }
        .context("document reader simulator")?;
        let fingers = match &gate_tls {
            Some(tls) => {
                FingerprintSimulator::start_tls(any, FingerprintSimConfig::default(), tls.clone())
                    .await
            }
            None => FingerprintSimulator::start(any, FingerprintSimConfig::default()).await,
        }
        .context("fingerprint reader simulator")?;
        Ok(LaneDevices {
            cam1,
            cam2,
            gates,
            gate_tls: None,
            documents,
            document_tls: None,
            document_signer,
            csca_certs: dir.join("csca.pem"),
            signer_dir: temp,
            fingers,
            fingerprint_tls: None,
        })
    }
}

/// The two reference authorities (Macao, Mainland): HTTPS with mutual TLS under a demo PKI.
pub struct Authorities {
    /// Macao's service.
    pub macao: ReferenceHandle,
    /// The Mainland's service.
    pub mainland: ReferenceHandle,
    /// Where the PKI's files are (`ca.pem`, `client.pem`, `client.key`, …).
    pub pki_dir: PathBuf,
}

impl Authorities {
    /// Starts both services on free loopback ports. The PKI is read from `pki_dir` when it is
    /// there (a restart), else made and written there. With `records_dir`, each service
    /// keeps the records it received in `<records_dir>/<name>.jsonl` and reloads them at start.
    pub async fn start(pki_dir: &Path, records_dir: Option<&Path>) -> anyhow::Result<Authorities> {
        let pki = demo_pki(pki_dir).context("authority PKI")?;
        let start = |name: &str| {
            let mut config = pki.reference_config();
            config.name = name.to_string();
            config.records_file = records_dir.map(|d| d.join(format!("{name}.jsonl")));
            ReferenceAuthority::start(config)
        };
        if let Some(d) = records_dir {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let macao = start("macao").await.context("Macao reference authority")?;
        let mainland = start("mainland")
            .await
            .context("Mainland reference authority")?;
        Ok(Authorities {
            macao,
            mainland,
            pki_dir: pki_dir.to_path_buf(),
        })
    }

    /// One authority's service.
    pub fn get(&self, authority: Authority) -> &ReferenceHandle {
        match authority {
            Authority::Macao => &self.macao,
            Authority::Mainland => &self.mainland,
        }
    }

    /// What the two services hold about the document numbered `number`'s prerequisites.
    pub fn hold(&self, number: &str, [macao, mainland]: [PrerequisiteStatus; 2]) {
        self.macao.set_prerequisites(Some(number), macao);
        self.mainland.set_prerequisites(Some(number), mainland);
    }
}

/// What the Macao and Mainland authorities hold for a traveller of `category` who has every
/// prerequisite of DOMAIN.md's table (registered with the automated clearance services the
/// category needs, or for Mainland residents the fingerprint-read authorisation).
pub fn prerequisites_held(category: Category) -> [PrerequisiteStatus; 2] {
    let registered = |location: &str| PrerequisiteStatus {
        automated_clearance: Some(Registration {
            registered_at: "2024-03-01T02:00:00Z".parse().expect("time"),
            location: location.into(),
        }),
        fingerprint_read_authorised_at: None,
    };
    let macao = registered("Macao automated clearance service, Border Gate");
    let mainland = registered("Mainland e-channel service, Gongbei");
    match category {
        Category::MacaoResident => [PrerequisiteStatus::default(), mainland],
        Category::HongKongPermanentResident | Category::TaiwanResident => [macao, mainland],
        Category::MainlandResident => [
            PrerequisiteStatus {
                automated_clearance: None,
                fingerprint_read_authorised_at: Some("2024-01-10T02:00:00Z".parse().expect("time")),
            },
            PrerequisiteStatus::default(),
        ],
    }
}

/// The Smart Immigration Clearance consent (Agree), as both authorities acknowledged it at
/// `channel`: what a record registered at a channel carries.
pub fn agreed_at(channel: &str) -> Vec<ConsentRecord> {
    Authority::ALL
        .into_iter()
        .map(|authority| ConsentRecord {
            authority,
            kind: ConsentKind::SmartClearanceRegistration,
            given_at: "2025-11-05T02:00:00Z".parse().expect("time"),
            channel: channel.into(),
        })
        .collect()
}

/// The `[lane]` section of a lane node driving `devices` and `authorities`, with its screen
/// API on `api`. `procedure` holds extra `[lane.procedure]` lines (time-outs), if any.
pub fn lane_config(
    channel: &str,
    api: SocketAddr,
    devices: &LaneDevices,
    authorities: &Authorities,
    procedure: &str,
) -> String {
    lane_config_for(
        channel,
        api,
        devices,
        authorities,
        procedure,
        &Authority::ALL,
    )
}

/// [`lane_config`] for a port where only `inspecting` inspect (the procedure's `authorities`
/// must say the same): the other authority gets no `[lane.<name>]` section.
pub fn lane_config_for(
    channel: &str,
    api: SocketAddr,
    devices: &LaneDevices,
    authorities: &Authorities,
    procedure: &str,
    inspecting: &[Authority],
) -> String {
    let pki = &authorities.pki_dir;
    let auth = |name: &str, url: &str| {
        format!(
            "[lane.{name}]\nbase_url = \"{url}\"\nca_cert = \"{ca}\"\nclient_cert = \"{cert}\"\nclient_key = \"{key}\"\ntimeout_ms = 2000\n\n",
            ca = pki.join("ca.pem").display(),
            cert = pki.join("client.pem").display(),
            key = pki.join("client.key").display(),
        )
    };
    let tls = |section: &str, t: &Option<ModbusTlsConfig>| {
        t.as_ref().map_or(String::new(), |t| {
            format!(
                "\n[lane.{section}.tls]\nca_cert = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n",
                t.ca_cert.display(),
                t.client_cert.display(),
                t.client_key.display()
            )
        })
    };
    // The simulated cameras show photos: presentation attacks by construction. Lanes built here
    // only observe PAD unless `procedure` brings its own `[lane.procedure.pad]` (tests/tests/pad.rs
    // walks the enforcing mode).
    let pad = if procedure.contains("[lane.procedure.pad]") {
        ""
    } else {
        "\n[lane.procedure.pad]\nmode = \"observe\"\n"
    };
    format!(
        "[lane]\nlisten = \"{api}\"\n\n[lane.procedure]\nchannel = \"{channel}\"\n{procedure}{pad}\n[lane.camera_gate1]\nname = \"gate1\"\nsource = \"{cam1}\"\n\n[lane.camera_gate2]\nname = \"gate2\"\nsource = \"{cam2}\"\n\n[lane.gates]\naddress = \"{gates}\"\n{gate_tls}\n[lane.document_reader]\naddress = \"{docs}\"\ncsca_certs = \"{csca}\"\n{document_tls}\n[lane.fingerprint_reader]\naddress = \"{fingers}\"\n{fingerprint_tls}\n{macao}{mainland}",
        cam1 = devices.cam1.url(),
        cam2 = devices.cam2.url(),
        gates = devices.gates.addr(),
        gate_tls = tls("gates", &devices.gate_tls),
        docs = devices.documents.local_addr(),
        csca = devices.csca_certs.display(),
        document_tls = tls("document_reader", &devices.document_tls),
        fingers = devices.fingers.addr(),
        fingerprint_tls = tls("fingerprint_reader", &devices.fingerprint_tls),
        macao = if inspecting.contains(&Authority::Macao) {
            auth("macao", &authorities.macao.base_url())
        } else {
            String::new()
        },
        mainland = if inspecting.contains(&Authority::Mainland) {
            auth("mainland", &authorities.mainland.base_url())
        } else {
            String::new()
        },
    )
}

// ------------------------------------------------------------------------------ a lane

/// A running lane as travellers meet it: its screen API and its devices.
pub struct Lane {
    /// The channel id, e.g. `hengqin/passenger/1`.
    pub channel: String,
    /// The gate-screen API (`GET /lane`, `POST /lane/screen/agree|decline`).
    pub api: SocketAddr,
    /// The gate-1 camera.
    pub cam1: clearway_node::lane::camera::sim::SimHandle,
    /// The gate-2 camera.
    pub cam2: clearway_node::lane::camera::sim::SimHandle,
    /// The gate controller.
    pub gates: clearway_node::lane::gate::SimHandle,
    /// The document reader.
    pub documents: DocumentReaderSimulator,
    /// The test issuer whose chips the reader presents.
    pub document_signer: DocumentSigner,
    _signer_dir: Option<tempfile::TempDir>,
    /// The fingerprint reader.
    pub fingers: clearway_node::lane::fingerprint::SimFingerprintHandle,
    /// The `seq` of the last lane event waited for (0: none; the lane numbers events from 1).
    pub seen_events: usize,
}

impl Lane {
    /// The lane `channel` with its screen API on `api`, driving `devices`.
    pub fn new(channel: &str, api: SocketAddr, devices: LaneDevices) -> Lane {
        Lane {
            channel: channel.to_string(),
            api,
            cam1: devices.cam1,
            cam2: devices.cam2,
            gates: devices.gates,
            documents: devices.documents,
            document_signer: devices.document_signer,
            _signer_dir: devices.signer_dir,
            fingers: devices.fingers,
            seen_events: 0,
        }
    }

    /// `GET /lane`: the lane's state, screens and recent events.
    pub fn status(&self) -> anyhow::Result<Value> {
        let r = crate::http::request(self.api, "GET", "/lane", &[], &[])
            .with_context(|| format!("lane API http://{}/lane", self.api))?;
        if r.status != 200 {
            bail!("lane API answered {}: {}", r.status, r.body);
        }
        serde_json::from_str(&r.body).context("lane status JSON")
    }

    /// Waits until the screen API answers.
    pub async fn wait_api(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while std::net::TcpStream::connect(self.api).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "the lane API (http://{}) did not come up within {within:?}",
                    self.api
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// Marks every event the lane shows now as seen.
    pub fn skip_events(&mut self) -> anyhow::Result<()> {
        let lane = self.status()?;
        self.seen_events = lane["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["seq"].as_u64())
            .max()
            .unwrap_or(0) as usize;
        Ok(())
    }

    /// Waits until the lane shows an event (kind, code) newer than the last one waited for.
    pub async fn wait_event(
        &mut self,
        kind: &str,
        code: &str,
        within: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let lane = self.status()?;
            let events = lane["events"].as_array().cloned().unwrap_or_default();
            if let Some(e) = events.iter().find(|e| {
                e["seq"].as_u64().unwrap_or(0) as usize > self.seen_events
                    && e["kind"] == kind
                    && e["code"] == code
            }) {
                self.seen_events = e["seq"].as_u64().unwrap_or(0) as usize;
                return Ok(e.clone());
            }
            if Instant::now() > deadline {
                let newer: Vec<String> = events
                    .iter()
                    .filter(|e| e["seq"].as_u64().unwrap_or(0) as usize > self.seen_events)
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["kind"].as_str().unwrap_or("?"),
                            e["code"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                bail!(
                    "no {kind} {code} within {within:?} (lane at step {}, events since: {})",
                    lane["view"]["step"],
                    if newer.is_empty() {
                        "none".into()
                    } else {
                        newer.join(", ")
                    }
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the procedure is at `step` (e.g. `idle`).
    pub async fn wait_step(&self, step: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let lane = self.status()?;
            if lane["view"]["step"] == step {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "lane not at step {step} within {within:?}: {}",
                    lane["view"]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until one of the gate screens shows `code`.
    pub async fn wait_screen(&self, code: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let lane = self.status()?;
            if lane["screens"][0]["code"] == code || lane["screens"][1]["code"] == code {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "no screen {code} within {within:?}: screens {}",
                    lane["screens"]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Shows `scene` to both cameras (the traveller is in view of gate 1, then gate 2).
    pub fn show(&self, scene: Scene) -> anyhow::Result<()> {
        self.cam1.show(scene.clone()).context("gate-1 scene")?;
        self.cam2.show(scene).context("gate-2 scene")?;
        Ok(())
    }

    /// Presents a synthetic permit with a valid MRZ at the document reader, its chip (number
    /// and birth date) signed by the test issuer the lane trusts.
    pub fn present(
        &self,
        kind: DocumentKind,
        number: &str,
        name: &str,
        dob: NaiveDate,
        expiry: NaiveDate,
    ) -> anyhow::Result<()> {
        let mrz = synthetic_mrz(kind, number, name, dob, expiry, 'M');
        let doc = RawDocument::signed(mrz, ChipData::minimal(number, dob), &self.document_signer)
            .map_err(|e| anyhow!("sign the chip: {e}"))?;
        self.documents.present(doc).context("present the document")
    }

    /// Taps Agree (`true`) or Decline on the declaration screen.
    pub fn answer_declaration(&self, agree: bool) -> anyhow::Result<()> {
        let path = if agree {
            "/lane/screen/agree"
        } else {
            "/lane/screen/decline"
        };
        let r = crate::http::request(self.api, "POST", path, &[], &[])
            .with_context(|| format!("POST {path}"))?;
        if r.status != 204 {
            bail!("POST {path} answered {}: {}", r.status, r.body);
        }
        Ok(())
    }

    /// Walks the traveller admitted at gate 1 through gate 2 and out: steps into the zone
    /// (out of the gate-1 camera's view, still in the gate-2 camera's), then leaves once gates
    /// 2 and 3 open. The `cleared` decision event.
    pub async fn walk_through(&mut self) -> anyhow::Result<Value> {
        self.cam1.show(Scene::Empty).context("gate-1 scene")?;
        self.gates.set_occupancy(1);
        let cleared = self
            .wait_event("decision", "cleared", Duration::from_secs(30))
            .await?;
        // The decision is recorded as the commands leave for the controller: give them a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        for g in [GateId::Two, GateId::Three] {
            loop {
                let s = self.gates.state(g);
                if matches!(s, GateState::Open | GateState::Moving) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{g} did not open after the clearance: {s:?}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Gate 1 closed behind the traveller (or is still closing).
        let g1 = self.gates.state(GateId::One);
        if g1 == GateState::Open {
            bail!("gate 1 still open behind a traveller inside");
        }
        // The traveller walks out of both cameras' view and out of the zone.
        self.show(Scene::Empty)?;
        self.gates.set_occupancy(0);
        self.wait_step("idle", Duration::from_secs(15)).await?;
        Ok(cleared)
    }
}

// ------------------------------------------------------------------------------ test rig

pub struct Rig {
    pub port: LocalPort,
    /// The lane node (node 2) as travellers meet it.
    pub lane: Lane,
    /// Both reference authorities.
    pub authorities: Authorities,
    pub pipeline: FacePipeline,
}

impl Rig {
    fn fail(&self, e: anyhow::Error) -> ! {
        panic!("{e:#}\nlog tail:\n{}", tail(&self.port.log(2)))
    }

    /// The lane's state (`GET /lane`).
    pub fn status(&self) -> Value {
        self.lane.status().unwrap_or_else(|e| self.fail(e))
    }

    /// Waits until the lane shows an event (kind, code) newer than the last one waited for.
    pub async fn wait_event(&mut self, kind: &str, code: &str, within: Duration) -> Value {
        match self.lane.wait_event(kind, code, within).await {
            Ok(v) => v,
            Err(e) => self.fail(e),
        }
    }

    pub async fn wait_step(&self, step: &str, within: Duration) {
        if let Err(e) = self.lane.wait_step(step, within).await {
            self.fail(e)
        }
    }

    pub async fn wait_screen(&self, code: &str, within: Duration) {
        if let Err(e) = self.lane.wait_screen(code, within).await {
            self.fail(e)
        }
    }

    pub fn show(&self, scene: Scene) {
        self.lane.show(scene).unwrap_or_else(|e| self.fail(e));
    }

    pub fn template(&mut self, rel: &str) -> Template {
        template(&mut self.pipeline, &photo(rel)).unwrap_or_else(|e| panic!("{rel}: {e:#}"))
    }

    pub fn present(&self, kind: DocumentKind, number: &str, name: &str, dob: &str, expiry: &str) {
        self.lane
            .present(kind, number, name, day(dob), day(expiry))
            .unwrap_or_else(|e| self.fail(e));
    }

    /// Walks the traveller admitted at gate 1 through gate 2 and out: steps into the zone,
    /// then leaves once gates 2 and 3 open.
    pub async fn walk_through(&mut self) {
        if let Err(e) = self.lane.walk_through().await {
            self.fail(e)
        }
    }

    /// Enrols a registered Macao adult ([`registered_macao_adult`]) with the face in `photo` (as
    /// a service location does) and has both authorities hold his prerequisites.
    pub async fn enrol_macao_adult(&mut self, number: &str, name: &str, photo: &str) {
        let template = self.template(photo);
        self.port
            .client()
            .write_audited(
                vec![Command::Enrol {
                    person: registered_macao_adult(number, name),
                    templates: vec![template],
                }],
                "enrol",
                "gallery",
                "registered at a service location",
                Duration::from_secs(20),
            )
            .await
            .expect("enrol");
        self.authorities
            .hold(number, prerequisites_held(Category::MacaoResident));
    }

    pub async fn records(&self, authority: Authority) -> Vec<(String, AuthorityRecord)> {
        self.authorities
            .get(authority)
            .records()
            .into_iter()
            .map(|r| (r.key, r.record))
            .collect()
    }
}

/// Issues a supervisor's order for `channel` through the cluster, as the console does: one
/// `Request::V2` entry with the audit record first. The entry's log index.
pub async fn order(
    client: &ClusterClient,
    channel: &str,
    action: OverrideAction,
    actor: &str,
    reason: &str,
) -> anyhow::Result<u64> {
    let mut ops = vec![
        Op::Audit(client.author_for(actor, "supervisor").draft(
            &format!("order.{}", action.name()),
            channel,
            reason,
        )),
        Op::Order {
            channel: channel.into(),
            action,
        },
    ];
    client.sign(&mut ops).context("sign the order")?;
    let (index, outcomes) = client
        .write(Request::V2(ops), Duration::from_secs(20))
        .await
        .context("order through the cluster")?;
    if !matches!(outcomes.first(), Some(Outcome::Audited { .. }))
        || outcomes.get(1) != Some(&Outcome::Ordered)
    {
        bail!("order refused: {outcomes:?}");
    }
    Ok(index)
}

/// A face template of the one good face in `photo`, as enrolment makes it.
pub fn template(pipeline: &mut FacePipeline, photo: &Path) -> anyhow::Result<Template> {
    let frame = Frame::open(photo).with_context(|| format!("cannot open {}", photo.display()))?;
    let (_, embedding) = pipeline
        .single_face(frame.as_ref())
        .map_err(|e| anyhow!("{}: no single good face: {e}", photo.display()))?;
    Ok(Template::quantize(
        embedding.model().clone(),
        embedding.values(),
    )?)
}

pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

pub fn registered_macao_adult(number: &str, name: &str) -> NewPerson {
    NewPerson {
        name: name.into(),
        date_of_birth: day("1961-08-04"),
        category: Category::MacaoResident,
        document: TravelDocument {
            kind: DocumentKind::MainlandTravelPermitHkMacao,
            number: number.into(),
            valid_from: day("2021-01-01"),
            valid_until: day("2030-12-31"),
        },
        endorsement: None,
        registrations: Registrations {
            macao: None,
            mainland: Some(Registration {
                registered_at: Utc::now(),
                location: "Mainland enrolment office".into(),
            }),
        },
        consents: agreed_at("hengqin/passenger/1"),
        guardian_consent: None,
    }
}

/// The test procedure's short time-outs (a partition turns face scan off after 4 s).
/// Every face passage re-confirms the traveller's prerequisites (`prerequisite_recheck = 0`).
const TEST_PROCEDURE: &str = "max_staleness = 4000\nenter_timeout = 3000\nrefusal_display = 1500\ninspection_timeout = 3000\nprerequisite_recheck = 0\ndirection = \"Macao → Hengqin\"\n";

/// The rig's lane: channel 1 of the test port's passenger hall.
pub const CHANNEL: &str = "testport/passenger/1";

pub async fn rig(dir: &Path) -> Rig {
    rig_for(dir, "", &Authority::ALL).await
}

/// The rig for a port where only `inspecting` inspect, with `policy` as extra
/// `[lane.procedure]` lines (`authorities = ["mainland"]`, `prerequisites = false`).
pub async fn rig_for(dir: &Path, policy: &str, inspecting: &[Authority]) -> Rig {
    rig_with(dir, policy, inspecting, "").await
}

/// [`rig`] with the gate controller on plain Modbus TCP (a port without Modbus/TCP Security).
pub async fn rig_plain_modbus(dir: &Path) -> Rig {
    let devices = LaneDevices::start(CameraSpec::default())
        .await
        .expect("lane devices");
    rig_on(dir, devices, "", &Authority::ALL, "", "").await
}

/// [`rig_for`] with extra `[lane]` lines (`outbox_dir = "…"`).
pub async fn rig_with(dir: &Path, policy: &str, inspecting: &[Authority], lane: &str) -> Rig {
    let devices = LaneDevices::start_secure(CameraSpec::default(), &dir.join("gate-pki"))
        .await
        .expect("lane devices");
    rig_on(dir, devices, policy, inspecting, lane, "").await
}

/// [`rig_for`] with the lane node's face pipeline configured by `face` (TOML of `--face-config`).
pub async fn rig_with_face(dir: &Path, policy: &str, face: &str) -> Rig {
    let devices = LaneDevices::start_secure(CameraSpec::default(), &dir.join("gate-pki"))
        .await
        .expect("lane devices");
    rig_on(dir, devices, policy, &Authority::ALL, "", face).await
}

async fn rig_on(
    dir: &Path,
    devices: LaneDevices,
    policy: &str,
    inspecting: &[Authority],
    lane: &str,
    face: &str,
) -> Rig {
    let authorities = Authorities::start(&dir.join("authority-pki"), None)
        .await
        .expect("reference authorities");
    let mut port = LocalPort::new(dir, [1, 2], Tuning::default());
    let api = free_tcp().expect("free TCP port");
    port.set_lane(
        2,
        CHANNEL,
        &lane_config_for(
            CHANNEL,
            api,
            &devices,
            &authorities,
            &format!("{TEST_PROCEDURE}{policy}"),
            inspecting,
        )
        .replacen("[lane]\n", &format!("[lane]\n{lane}"), 1),
    )
    .expect("lane config");
    if !face.is_empty() {
        port.set_face(2, face).expect("face config");
    }
    port.bootstrap(&[1], &[2]).await;

    let pipeline = FacePipeline::load(&ort_library(), &assets(), FaceConfig::default())
        .expect("face pipeline");
    Rig {
        port,
        lane: Lane::new(CHANNEL, api, devices),
        authorities,
        pipeline,
    }
}

pub async fn wait_lane_api(rig: &Rig) {
    if let Err(e) = rig.lane.wait_api(Duration::from_secs(60)).await {
        rig.fail(e)
    }
}

/// Waits until `check` holds, polling every 100 ms; fails the test after `within`.
pub async fn until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
