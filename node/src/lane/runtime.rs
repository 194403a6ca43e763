//! The lane runtime: the IO around [`Procedure`].
//!
//! One event loop owns the procedure. Every other part is a task that turns IO into
//! [`Input`]s or carries out [`Output`]s:
//!
//! * the vision thread (cameras → faces → 1:N on the local replica);
//! * the gate task (fenced commands to the Modbus controller; its status polled every 200 ms);
//! * the document reader task (MRZ + chip → [`CardScan`], holder looked up on the replica);
//! * the fingerprint task (one capture per request);
//! * inspections, one task per authority per passage;
//! * the outbox delivery tasks (records to both authorities, durable, exactly once);
//! * the replica task (fencing token and staleness from the cluster node, every 250 ms; it is
//!   also the procedure's clock tick). It also delivers supervisors' orders for this channel from
//!   the replicated ledger, in log order, each fenced with its own entry's (term, index), before
//!   the token that covers them;
//! * the gate-screen HTTP API (`GET /lane`, `POST /lane/screen/agree|decline`) and the gate
//!   screens' pages (`GET /kiosk?gate=1|2`, `GET /kiosk/screen`, see [`super::kiosk`]);
//! * the console's report: the node answers `Call::Lane` with [`Lane::report`]'s
//!   [`protocol::LaneStatus`](crate::cluster::protocol::LaneStatus) over mutual TLS.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use clearway_gallery::{
    Authority, Outcome as RegistryOutcome, Person, PersonId, Request, Template,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use super::authority::{AuthorityClient, AuthorityConfig, Outbox};
use super::camera::CameraMonitor;
use super::document::{ChipTrust, DocumentReader, DocumentReaderConfig, TcpDocumentReader};
use super::fingerprint::{FingerprintReader, TcpFingerprintReader, TcpFingerprintReaderConfig};
use super::gate::{GateController, ModbusGates, ModbusGatesConfig};
use super::metrics::LaneMetrics;
use super::procedure::{
    CardScan, ClearanceMethod, Completed, Delivery, FaceOnRecord, GateAction, GateCommand, GateId,
    Holder, Input, LaneView, Output, Procedure, ProcedureConfig, RegistrationRequest, Screen,
    registration_commands,
};
use super::procedure::{Fence, LaneMode, OverrideAction, PadMode};
use super::refresh::Refresher;
use super::vision::{Capture, FrameSource, Seen, Vision, Wants};
use crate::cluster::ClusterNode;
use crate::cluster::protocol::{self, LaneAlarm, LastDecision};
use crate::error::{Error, Result};
use crate::face::FacePipeline;

/// The `[lane]` section of a node config: this node runs a channel.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LaneConfig {
    /// The procedure's tunables, including the channel's name (`[lane.procedure]`).
    #[serde(default)]
    pub procedure: ProcedureConfig,
    /// The gate-screen API and lane status (HTTP). Required, and a loopback address: the gate
    /// screens are the appliance's own displays, and a tap on Agree is a traveller's consent,
    /// so nothing on the hall network may reach it (mutual TLS for remote screens is not built).
    pub listen: SocketAddr,
    /// The camera facing travellers at gate 1. Required.
    pub camera_gate1: super::camera::CameraConfig,
    /// The camera at gate 2. Required.
    pub camera_gate2: super::camera::CameraConfig,
    /// The gate controller. Required.
    pub gates: ModbusGatesConfig,
    /// The document reader. Required.
    pub document_reader: DocumentReaderConfig,
    /// The fingerprint reader. Required.
    pub fingerprint_reader: TcpFingerprintReaderConfig,
    /// The Macao authority's API: required when it inspects at this port
    /// (`procedure.authorities`), refused otherwise.
    #[serde(default)]
    pub macao: Option<AuthorityConfig>,
    /// The Mainland authority's API: the same.
    #[serde(default)]
    pub mainland: Option<AuthorityConfig>,
    /// Faces whose eyes are closer than this many pixels are outside the capture zone
    /// (people further back in the queue). Default 12.
    #[serde(default = "default_zone_min_eye_px")]
    pub zone_min_eye_px: f32,
    /// The outbox's database directory. Default `<data_dir>/outbox`.
    #[serde(default)]
    pub outbox_dir: Option<PathBuf>,
    /// Free space (MiB) the outbox's filesystem must keep: below it the lane stores no records
    /// and so starts no passage (face or card) until there is room again. Default 64.
    #[serde(default = "default_outbox_reserve_mb")]
    pub outbox_reserve_mb: u64,
}

fn default_outbox_reserve_mb() -> u64 {
    64
}

fn default_zone_min_eye_px() -> f32 {
    12.0
}

impl LaneConfig {
    /// Checks every part; the first problem, named.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, why: String| Error::Config(format!("[lane.{what}] {why}"));
        if !self.listen.ip().is_loopback() {
            return Err(Error::Config(format!(
                "[lane] listen = \"{}\": the gate-screen API takes travellers' consent and must \
                 listen on a loopback address (127.0.0.1), for the appliance's own screens only",
                self.listen
            )));
        }
        self.procedure.validate().map_err(|e| bad("procedure", e))?;
        self.gates.validate().map_err(|e| bad("gates", e))?;
        self.fingerprint_reader
            .validate()
            .map_err(|e| bad("fingerprint_reader", e))?;
        self.document_reader
            .validate()
            .map_err(|e| bad("document_reader", e.to_string()))?;
        for (what, camera) in [
            ("camera_gate1", &self.camera_gate1),
            ("camera_gate2", &self.camera_gate2),
        ] {
            camera.validate().map_err(|e| bad(what, e.to_string()))?;
        }
        for (authority, config) in [
            (Authority::Macao, &self.macao),
            (Authority::Mainland, &self.mainland),
        ] {
            let inspects = self.procedure.authorities.contains(&authority);
            match config {
                Some(c) if inspects => c
                    .validate()
                    .map_err(|e| bad(authority.as_str(), e.to_string()))?,
                None if inspects => {
                    return Err(bad(
                        authority.as_str(),
                        format!("is required: the {authority} authority inspects at this port"),
                    ));
                }
                Some(_) => {
                    return Err(bad(
                        authority.as_str(),
                        format!(
                            "is given, but the {authority} authority does not inspect at this port (procedure.authorities)"
                        ),
                    ));
                }
                None => {}
            }
        }
        if !(0.0..=1000.0).contains(&self.zone_min_eye_px) {
            return Err(bad(
                "zone_min_eye_px",
                format!("{} outside 0..=1000", self.zone_min_eye_px),
            ));
        }
        Ok(())
    }
}

/// Something that happened, for the console's lane view.
#[derive(Debug, Clone, Serialize)]
pub struct LaneEvent {
    /// Position in the lane's event sequence since it started (1, 2, …), so a reader can tell
    /// new events from ones already seen.
    pub seq: u64,
    /// When.
    pub at: chrono::DateTime<Utc>,
    /// `alarm`, `referral` or `decision`.
    pub kind: &'static str,
    /// A stable code.
    pub code: String,
    /// Words.
    pub detail: String,
}

/// What `GET /lane` answers.
#[derive(Debug, Clone, Serialize)]
pub struct LaneStatus {
    /// The procedure's view.
    pub view: LaneView,
    /// What the gate-1 and gate-2 screens show.
    pub screens: [Option<Screen>; 2],
    /// Recent events, newest last.
    pub events: VecDeque<LaneEvent>,
}

const EVENTS_KEPT: usize = 100;

/// The oldest a supervisor's gate or officer order may be when it reaches the lane.
const ORDER_MAX_AGE: Duration = Duration::from_secs(30);

struct Shared {
    status: Mutex<LaneStatus>,
    console: Mutex<ConsoleState>,
}

/// What the console's report adds to the procedure's view.
#[derive(Default)]
struct ConsoleState {
    last_decision: Option<LastDecision>,
    /// Alarms in force, by kind, with the time each was raised.
    alarms: BTreeMap<&'static str, DateTime<Utc>>,
    /// Log index of the newest order carried out.
    acked_order: u64,
    /// A gate order the procedure took, waiting for the gate controller to carry out its
    /// command: (log index, gate, action). It is acknowledged only then.
    awaiting: Option<(u64, GateId, GateAction)>,
    clearances: u64,
    /// When each clearance of the last hour happened, oldest first.
    recent_clearances: VecDeque<Instant>,
    /// When gate 1 last admitted a traveller (for the passage time of their clearance).
    admitted_at: Option<Instant>,
}

impl ConsoleState {
    /// Drops the clearances older than an hour (on every clearance and every report, so the
    /// window stays bounded whether or not a console asks).
    fn forget_old_clearances(&mut self) {
        while self
            .recent_clearances
            .front()
            .is_some_and(|t| t.elapsed() > Duration::from_secs(3600))
        {
            self.recent_clearances.pop_front();
        }
    }

    /// Clears the alarms the lane's state no longer supports: holds end when the channel is
    /// released, gate faults when no gate reports one, staleness when face scan is back, a
    /// locked gate 1's when it is unlocked, a failed gate command's when the channel is neither
    /// held nor locked any more.
    fn settle(&mut self, view: &LaneView, now: DateTime<Utc>) {
        let held = view.held_for.is_some();
        if !held {
            for kind in ["multiple_faces", "tailgating", "authority_not_answering"] {
                self.alarms.remove(kind);
            }
        }
        if !held && !view.gates.contains(&super::procedure::GateState::Fault) {
            self.alarms.remove("gate_fault");
        }
        if view.face_scan || view.mode != LaneMode::FaceAndCard {
            self.alarms.remove("replica_stale");
        }
        if !view.foreign_fence {
            self.alarms.remove("foreign_fence");
        }
        if !view.records_unwritable {
            self.alarms.remove("records_unwritable");
        }
        let gate1_locked = view.gates[0] == super::procedure::GateState::Locked;
        if !gate1_locked {
            self.alarms.remove("gate1_locked");
        }
        if !held && !gate1_locked {
            self.alarms.remove("gate_failed");
        }
        if held {
            self.alarms.entry("held").or_insert(now);
        } else {
            self.alarms.remove("held");
        }
        // `order_refused` and `order_expired` stay until a later order is carried out.
        // A presentation attack is an event, not a state: it shows for five minutes.
        if self
            .alarms
            .get("presentation_attack")
            .is_some_and(|since| now - *since > chrono::TimeDelta::minutes(5))
        {
            self.alarms.remove("presentation_attack");
        }
    }

    /// An order was carried out.
    fn acknowledge(&mut self, index: u64) {
        self.acked_order = self.acked_order.max(index);
        self.alarms.remove("order_refused");
        self.alarms.remove("order_expired");
    }
}

impl Shared {
    fn event(&self, kind: &'static str, code: &str, detail: String) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if s.events.len() == EVENTS_KEPT {
            s.events.pop_front();
        }
        let seq = s.events.back().map_or(1, |e| e.seq + 1);
        s.events.push_back(LaneEvent {
            seq,
            at: Utc::now(),
            kind,
            code: code.to_string(),
            detail,
        });
    }
}

/// One input for the event loop, with the arrival time of the frame it came from, if any.
struct Event {
    input: Input,
    arrived: Option<Instant>,
}

/// Builds a lane from its `[lane]` config on a started cluster node: the face pipeline (ONNX
/// Runtime from `ort_library`, models under `assets`), both cameras, the device clients, the
/// authority clients and the outbox (`<data_dir>/outbox`, sealed with the key in `outbox_key`,
/// itself sealed under `custody`'s key-encryption key when there is one).
#[allow(clippy::too_many_arguments)]
pub async fn start_from_config(
    node: ClusterNode,
    config: &LaneConfig,
    data_dir: &std::path::Path,
    outbox_key: &std::path::Path,
    custody: std::sync::Arc<crate::store::custody::Custody>,
    ort_library: &std::path::Path,
    assets: &std::path::Path,
    face: crate::face::FaceConfig,
) -> Result<Lane> {
    use super::authority::AuthorityMetrics;
    use super::camera::{Camera, CameraMetrics};
    config.validate()?;
    let pad_mode = config.procedure.pad.mode;
    let (pipeline, pad) = tokio::task::block_in_place(|| -> Result<_> {
        let pad = match pad_mode {
            PadMode::Off => None,
            mode => {
                let runtime = crate::face::OrtRuntime::load(ort_library, face.runtime.clone())?;
                let model = crate::face::pad::OnnxLiveness::new(&runtime, assets, &face.pad)?;
                Some(super::vision::PadStage::new(
                    Box::new(model),
                    face.pad.planarity.clone(),
                    mode,
                ))
            }
        };
        let runtime_config = face.runtime.clone();
        let pipeline = FacePipeline::load(ort_library, assets, face)?;
        // On a GPU, 1:N runs there too (face/onnx_search.rs). A CPU lane keeps the int8 scan,
        // which is the faster of the two on a CPU, and so does a lane whose GPU cannot hold the
        // search graph: the graph only speeds searches up, the scan gives the same hits.
        if pipeline.device() == crate::face::Device::Cuda {
            let dim = node.gallery().read().registry.index().dim();
            let index = crate::face::OrtRuntime::load(ort_library, runtime_config).and_then(|r| {
                crate::face::OrtIndex::new(
                    &r,
                    dim,
                    clearway_gallery::registry::MAX_TEMPLATES_PER_PERSON,
                )
            });
            match index {
                Ok(index) if index.device() == crate::face::Device::Cuda => {
                    if node.gallery().use_device_index(index) {
                        info!("1:N search runs on the GPU.");
                    }
                }
                Ok(_) => warn!("The search graph did not build on CUDA; 1:N stays on the CPU."),
                Err(e) => warn!(error = %e, "No search graph on the GPU; 1:N stays on the CPU."),
            }
        }
        Ok((pipeline, pad))
    })?;
    info!(mode = pad_mode.as_str(), "Presentation-attack detection.");
    let registry = node.registry().clone();
    let camera_metrics =
        CameraMetrics::new(&registry).map_err(|e| Error::Config(format!("camera metrics: {e}")))?;
    let gate1 = Camera::spawn(config.camera_gate1.clone(), &camera_metrics)?;
    let gate2 = Camera::spawn(config.camera_gate2.clone(), &camera_metrics)?;
    let authority_metrics = AuthorityMetrics::new(&registry)
        .map_err(|e| Error::Config(format!("authority metrics: {e}")))?;
    let client = |a: Authority, c: &AuthorityConfig| {
        AuthorityClient::new(a, c, authority_metrics.clone())
            .map_err(|e| Error::Config(format!("[lane.{a}] {e}")))
    };
    let macao = config
        .macao
        .as_ref()
        .map(|c| client(Authority::Macao, c))
        .transpose()?;
    let mainland = config
        .mainland
        .as_ref()
        .map(|c| client(Authority::Mainland, c))
        .transpose()?;
    // The authorities' client certificates expire like the port's; the clients above have read
    // them already, so a failure here is only logged.
    for (certificate, c) in [
        ("macao_client", &config.macao),
        ("mainland_client", &config.mainland),
    ] {
        let Some(c) = c else { continue };
        match crate::net::tls::certificate_not_after(&c.client_cert) {
            Ok(t) => node.certificate_expires(certificate, t),
            Err(e) => warn!(certificate, error = %e, "Cannot read the certificate's expiry."),
        }
    }
    let (keys, legacy) = open_outbox_keys(outbox_key, custody)?;
    let outbox_dir = config
        .outbox_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("outbox"));
    let lane_id = format!("lane-{}", node.id());
    let outbox = tokio::task::block_in_place(|| {
        Outbox::open_path(&outbox_dir, &lane_id, keys, authority_metrics)
            .map(|o| o.with_reserve(config.outbox_reserve_mb.saturating_mul(1 << 20)))
    })
    .map_err(|e| Error::Config(format!("outbox {}: {e}", outbox_dir.display())))?;
    if let Some(legacy) = legacy {
        remove_legacy_outbox_key(&legacy)?;
    }
    tokio::spawn(follow_erasures(outbox.clone(), node.shredded()));
    let parts = LaneParts {
        procedure: config.procedure.clone(),
        listen: config.listen,
        pipeline,
        pad,
        gate1: gate1.frames(),
        gate2: gate2.frames(),
        zone_min_eye_px: config.zone_min_eye_px,
        gates: config.gates.clone(),
        document_reader: config.document_reader.clone(),
        fingerprint_reader: config.fingerprint_reader.clone(),
        macao,
        mainland,
        outbox,
    };
    let mut lane = Lane::start(node.clone(), parts).await?;
    lane.attach(&node, [gate1.monitor(), gate2.monitor()]);
    lane.cameras = vec![gate1, gate2];
    Ok(lane)
}

/// Opens the outbox's keyring at `path` (creating it on first use, sealed under `custody`'s
/// key-encryption key when there is one). An outbox from before key epochs kept one key in
/// `outbox.key` beside it: that key is read too so the outbox can re-seal its records, and
/// removed once it has ([`remove_legacy_outbox_key`]).
fn open_outbox_keys(
    path: &std::path::Path,
    custody: std::sync::Arc<crate::store::custody::Custody>,
) -> Result<(super::authority::OutboxKeys, Option<std::path::PathBuf>)> {
    use super::authority::{OutboxKeys, SealKey};
    let ring = crate::store::keyring::Keyring::load(path, true, custody.clone())?;
    let keys = OutboxKeys::new(std::sync::Arc::new(ring));
    let legacy = path.with_file_name("outbox.key");
    match std::fs::read(&legacy) {
        Ok(bytes) => {
            let (plain, _) = custody.unwrap(&legacy, b"outbox", &bytes)?;
            let bytes: [u8; 32] = plain
                .as_slice()
                .try_into()
                .map_err(|_| Error::Config(format!("{}: not a 32-byte key", legacy.display())))?;
            Ok((keys.with_legacy(SealKey::from_bytes(bytes)), Some(legacy)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((keys, None)),
        Err(e) => Err(Error::io(&legacy, e)),
    }
}

/// Removes the legacy outbox key once the outbox re-sealed its records under the keyring.
fn remove_legacy_outbox_key(legacy: &std::path::Path) -> Result<()> {
    std::fs::remove_file(legacy).map_err(|e| Error::io(legacy, e))?;
    info!(path = %legacy.display(), "Legacy outbox key removed; records re-sealed under the outbox keyring.");
    Ok(())
}

/// Rotates the outbox's key after every cancellation the node shreds, until the node stops.
async fn follow_erasures(outbox: Outbox, mut shredded: tokio::sync::watch::Receiver<u64>) {
    loop {
        let upto = *shredded.borrow_and_update();
        let o = outbox.clone();
        match tokio::task::spawn_blocking(move || o.follow_erasure(upto)).await {
            Ok(Ok(Some(epoch))) => info!(upto, epoch, "Outbox key rotated after a cancellation."),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                warn!(error = %e, upto, "Rotating the outbox key failed; retrying.");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => return,
        }
        if shredded.changed().await.is_err() {
            return;
        }
    }
}

/// A running lane.
pub struct Lane {
    channel: String,
    cameras: Vec<super::camera::CameraHandle>,
    stop: watch::Sender<bool>,
    vision_stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    vision: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stills: Arc<super::stills::Stills>,
}

/// Everything a lane is made of; [`Lane::start`] takes them ready-made so tests and the demo
/// can put simulators or real devices behind each.
pub struct LaneParts<S1, S2> {
    /// The procedure's tunables.
    pub procedure: ProcedureConfig,
    /// Screen API address.
    pub listen: SocketAddr,
    /// The face pipeline.
    pub pipeline: FacePipeline,
    /// Presentation-attack detection (`None` when `procedure.pad.mode` is off).
    pub pad: Option<super::vision::PadStage>,
    /// Gate-1 camera frames.
    pub gate1: S1,
    /// Gate-2 camera frames.
    pub gate2: S2,
    /// Capture-zone rule.
    pub zone_min_eye_px: f32,
    /// Gate controller config.
    pub gates: ModbusGatesConfig,
    /// Document reader config.
    pub document_reader: DocumentReaderConfig,
    /// Fingerprint reader config.
    pub fingerprint_reader: TcpFingerprintReaderConfig,
    /// The Macao authority's client, where it inspects at this port.
    pub macao: Option<AuthorityClient>,
    /// The Mainland authority's client, where it inspects at this port.
    pub mainland: Option<AuthorityClient>,
    /// The durable outbox.
    pub outbox: Outbox,
}

impl Lane {
    /// Starts every task of the lane on the cluster node `node`.
    pub async fn start<S1: FrameSource, S2: FrameSource>(
        node: ClusterNode,
        parts: LaneParts<S1, S2>,
    ) -> Result<Lane> {
        let metrics = LaneMetrics::new(node.registry())
            .map_err(|e| Error::Config(format!("lane metrics: {e}")))?;
        let procedure = Procedure::new(parts.procedure.clone());
        let shared = Arc::new(Shared {
            status: Mutex::new(LaneStatus {
                view: procedure.view(),
                screens: [None, None],
                events: VecDeque::new(),
            }),
            console: Mutex::new(ConsoleState::default()),
        });
        let (stop, _) = watch::channel(false);
        let (events_tx, events_rx) = mpsc::unbounded_channel::<Event>();
        let mut tasks = Vec::new();

        // Vision thread.
        let wants = Arc::new(Mutex::new(Wants::default()));
        let capture = Arc::new(Capture::default());
        let stills = Arc::new(super::stills::Stills::default());
        let vision_stop = Arc::new(AtomicBool::new(false));
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Seen>();
        let threshold = parts.procedure.verify_threshold;
        let vision = Vision {
            pipeline: parts.pipeline,
            pad: parts.pad,
            gate1: parts.gate1,
            gate2: parts.gate2,
            gallery: node.gallery().clone(),
            threshold,
            zone_min_eye_px: parts.zone_min_eye_px,
            wants: wants.clone(),
            capture: capture.clone(),
            out: seen_tx,
            stop: vision_stop.clone(),
            metrics: metrics.clone(),
            stills: stills.clone(),
        };
        let vision = std::thread::Builder::new()
            .name("lane-vision".into())
            .spawn(move || vision.run())
            .map_err(|e| Error::Config(format!("vision thread: {e}")))?;
        {
            let tx = events_tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(seen) = seen_rx.recv().await {
                    let event = Event {
                        input: seen.input,
                        arrived: Some(seen.arrived),
                    };
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }));
        }

        // Gate task.
        let (gate_tx, gate_rx) = mpsc::unbounded_channel::<GateCommand>();
        if parts.gates.tls.is_none() {
            warn!(controller = %parts.gates.address, "The gate link is plain Modbus TCP: anyone on the gate network can command the gates (the lane detects a fence it never issued). Configure [lane.gates.tls] (Modbus/TCP Security) where the controller supports it.");
        }
        tasks.push(tokio::spawn(gate_task(
            ModbusGates::new(parts.gates),
            gate_rx,
            events_tx.clone(),
            metrics.clone(),
            shared.clone(),
            stop.subscribe(),
        )));

        // Fingerprint task.
        if parts.fingerprint_reader.tls.is_none() {
            warn!(reader = %parts.fingerprint_reader.address, "The fingerprint reader link is plain TCP: fingerprint templates cross the device network in clear and anyone on it can answer for the reader. Configure [lane.fingerprint_reader.tls] where the reader supports it.");
        }
        let (finger_tx, finger_rx) = mpsc::unbounded_channel::<()>();
        tasks.push(tokio::spawn(fingerprint_task(
            TcpFingerprintReader::new(parts.fingerprint_reader),
            finger_rx,
            events_tx.clone(),
        )));

        // Document reader task.
        let offset = FixedOffset::east_opt(parts.procedure.utc_offset_minutes * 60)
            .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
        let chip_trust = match &parts.document_reader.csca_certs {
            Some(path) => ChipTrust::read(path)
                .map_err(|e| Error::Config(format!("[lane.document_reader] csca_certs: {e}")))?,
            None => {
                tracing::warn!(
                    "[lane.document_reader] has no csca_certs: no chip passes passive \
                     authentication, so every card scan goes to an officer and nobody registers \
                     at this channel."
                );
                ChipTrust::none()
            }
        };
        if parts.document_reader.tls.is_none() {
            warn!(reader = %parts.document_reader.address, "The document reader link is plain TCP: anyone on the device network can present documents to the lane (chips must still pass passive authentication). Configure [lane.document_reader.tls] where the reader supports it.");
        }
        let reader = TcpDocumentReader::new(parts.document_reader)
            .map_err(|e| Error::Config(format!("[lane.document_reader] {e}")))?;
        let refresher = Refresher::new(
            node.clone(),
            clients(&parts.macao, &parts.mainland),
            parts.procedure.policy(),
            parts.procedure.prerequisite_recheck,
        );
        tasks.push(tokio::spawn(document_task(
            Documents {
                reader,
                trust: chip_trust,
            },
            node.clone(),
            refresher.clone(),
            parts.procedure.policy(),
            offset,
            events_tx.clone(),
            stop.subscribe(),
        )));

        // Replica task (also the clock tick and the orders from the ledger).
        tasks.push(tokio::spawn(replica_task(
            node.clone(),
            parts.procedure.channel.clone(),
            events_tx.clone(),
            shared.clone(),
            stop.subscribe(),
        )));

        // Outbox delivery.
        let outbox = parts.outbox;
        for (authority, client) in clients(&parts.macao, &parts.mainland) {
            let mut stop = stop.subscribe();
            let shutdown = async move {
                let _ = stop.changed().await;
            };
            let outbox = outbox.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = outbox.run(authority, client, shutdown).await {
                    error!(%authority, error = %e, "Outbox delivery stopped.");
                }
            }));
        }
        let authorities = clients(&parts.macao, &parts.mainland);

        // Cancellations to the port's authorities.
        tasks.push(tokio::spawn(super::notices::run(
            node.clone(),
            parts.procedure.channel.clone(),
            authorities.clone(),
            metrics.notices_pending.clone(),
            super::notices::SPREAD,
            stop.subscribe(),
        )));

        // Screen API.
        let listener = tokio::net::TcpListener::bind(parts.listen)
            .await
            .map_err(|e| Error::Config(format!("lane listen {}: {e}", parts.listen)))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::Config(format!("lane listen: {e}")))?;
        let texts =
            Arc::new(super::kiosk::Texts::load().map_err(|e| Error::Config(e.to_string()))?);
        tasks.push(tokio::spawn(serve_api(
            listener,
            texts,
            shared.clone(),
            events_tx.clone(),
            stop.subscribe(),
        )));

        // The outbox's health: passages stop while it cannot write, and resume when it can.
        tasks.push(tokio::spawn(watch_outbox(
            outbox.clone(),
            events_tx.clone(),
            stop.subscribe(),
        )));

        // The event loop.
        let ctx = Ctx {
            node,
            shared: shared.clone(),
            metrics,
            gate_tx,
            finger_tx,
            events_tx,
            wants,
            capture,
            outbox,
            authorities,
            inspection_timeout: parts.procedure.inspection_timeout,
            verify_threshold: parts.procedure.verify_threshold,
            agreed: Mutex::new(None),
            refresher,
        };
        tasks.push(tokio::spawn(event_loop(
            procedure,
            events_rx,
            ctx,
            stop.subscribe(),
        )));
        info!(channel = %parts.procedure.channel, api = %local_addr, "Lane started.");
        Ok(Lane {
            channel: parts.procedure.channel.clone(),
            cameras: Vec::new(),
            stop,
            vision_stop,
            tasks,
            vision: Some(vision),
            shared,
            local_addr,
            stills,
        })
    }

    /// Where the gate-screen API listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Makes this lane the one its node reports to the console (`Call::Lane`), with the health
    /// of these cameras (gate 1, gate 2), and whose camera stills it hands out
    /// (`Call::LaneStill`).
    pub fn attach(&self, node: &ClusterNode, cameras: [CameraMonitor; 2]) {
        let shared = self.shared.clone();
        let channel = self.channel.clone();
        let node_for_report = node.clone();
        // When each camera was first seen down, for the alarm's time.
        let down_since: Mutex<[Option<DateTime<Utc>>; 2]> = Mutex::new([None, None]);
        node.attach_lane(
            self.channel.clone(),
            Arc::new(move || {
                let up = [cameras[0].health().up, cameras[1].health().up];
                let mut since = down_since.lock().unwrap_or_else(|e| e.into_inner());
                for (n, up) in up.iter().enumerate() {
                    since[n] = if *up {
                        None
                    } else {
                        Some(since[n].unwrap_or_else(Utc::now))
                    };
                }
                report(&shared, &channel, *since, &node_for_report)
            }),
            {
                let stills = self.stills.clone();
                Arc::new(move |camera| stills.take(camera, Instant::now()))
            },
        );
    }

    /// The lane's state now.
    pub fn status(&self) -> LaneStatus {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops every task and the vision thread.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        self.vision_stop.store(true, Ordering::Relaxed);
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Some(v) = self.vision.take() {
            let _ = tokio::task::spawn_blocking(move || v.join()).await;
        }
        for camera in self.cameras.drain(..) {
            camera.stop().await;
        }
    }
}

struct Ctx {
    node: ClusterNode,
    shared: Arc<Shared>,
    metrics: LaneMetrics,
    gate_tx: mpsc::UnboundedSender<GateCommand>,
    finger_tx: mpsc::UnboundedSender<()>,
    events_tx: mpsc::UnboundedSender<Event>,
    wants: Arc<Mutex<Wants>>,
    capture: Arc<Capture>,
    outbox: Outbox,
    /// The clients of the authorities that inspect at this port.
    authorities: Vec<(Authority, AuthorityClient)>,
    inspection_timeout: Duration,
    /// The 1:N threshold a registration's face is checked against the gallery with.
    verify_threshold: f32,
    /// When the traveller tapped Agree: only a face captured since is theirs.
    agreed: Mutex<Option<Instant>>,
    /// Re-confirms a face-scan traveller's prerequisites after their passage.
    refresher: Refresher,
}

async fn event_loop(
    mut procedure: Procedure,
    mut rx: mpsc::UnboundedReceiver<Event>,
    ctx: Ctx,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            e = rx.recv() => match e { Some(e) => e, None => return },
            _ = stop.changed() => return,
        };
        let decided = Instant::now();
        let order = match &event.input {
            Input::Override { fence, action } => Some((*fence, *action)),
            _ => None,
        };
        let now = Utc::now();
        procedure.handle(now, event.input);
        if let Err(withheld) = carry_out(&ctx, &mut procedure, event.arrived) {
            // Its records are not stored, so the passage did not happen: the procedure ends it.
            procedure.handle(now, Input::RecordsUnwritable { withheld });
            let _ = carry_out(&ctx, &mut procedure, None);
        }
        if event.arrived.is_some() {
            ctx.metrics.stage("decide", decided.elapsed());
        }
        let view = procedure.view();
        {
            let mut w = ctx.wants.lock().unwrap_or_else(|e| e.into_inner());
            w.gate1 = procedure.wants_gate1_faces();
            w.capture = matches!(view.step, "declaration" | "consenting" | "registering");
            w.gate2 = procedure
                .wants_gate2_faces()
                .then(|| procedure.expected_person());
        }
        ctx.metrics.mode(view.mode);
        {
            let mut console = ctx.shared.console.lock().unwrap_or_else(|e| e.into_inner());
            // An order the procedure took (it did not refuse its token) is acknowledged; a gate
            // order only once the controller has carried out its command (see `gate_task`).
            match order {
                Some((fence, _)) if view.fence != fence => {
                    console.alarms.entry("order_refused").or_insert(now);
                }
                Some((fence, OverrideAction::Gate { gate, action })) => {
                    console.awaiting = Some((fence.index, gate, action));
                }
                Some((fence, _)) => console.acknowledge(fence.index),
                None => {}
            }
            console.settle(&view, now);
        }
        ctx.shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .view = view;
    }
}

/// Carries out the outputs of the input just handled. The records for the authorities among them
/// (a clearance for both, say) are stored first, in one transaction, all or none: the records
/// that make a passage lawful are on disk before its gates open. When they cannot be stored,
/// the gate openings and the decisions are not carried out (`Err` names the gates withheld) and
/// the rest is (screens, alarms, closings).
fn carry_out(
    ctx: &Ctx,
    procedure: &mut Procedure,
    arrived: Option<Instant>,
) -> std::result::Result<(), Vec<GateId>> {
    let (deliveries, outputs): (Vec<Output>, Vec<Output>) =
        std::iter::from_fn(|| procedure.poll_output())
            .partition(|o| matches!(o, Output::Deliver(_)));
    let deliveries: Vec<Delivery> = deliveries
        .into_iter()
        .filter_map(|o| match o {
            Output::Deliver(d) => Some(*d),
            _ => None,
        })
        .collect();
    let stored = match deliveries.is_empty() {
        true => true,
        false => match ctx.outbox.push_all(&deliveries) {
            Ok(_) => true,
            Err(e) => {
                error!(error = %e, records = deliveries.len(), "Records for the authorities could not be stored; their gates stay shut.");
                false
            }
        },
    };
    let mut withheld = Vec::new();
    for output in outputs {
        match output {
            Output::Gate(cmd) if !stored && cmd.action == GateAction::Open => {
                withheld.push(cmd.gate);
            }
            Output::Decision(_) if !stored => {}
            output => dispatch(ctx, output, arrived),
        }
    }
    if stored { Ok(()) } else { Err(withheld) }
}

/// Tells the procedure when the outbox cannot write (a failed write anywhere: no passage starts)
/// and, every two seconds until it can, tries [`Outbox::recover`]; then tells it so.
async fn watch_outbox(
    outbox: Outbox,
    events: mpsc::UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
) {
    let mut down = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
        // A shortfall of free space stops passages before a write can fail.
        if outbox.unwritable().is_none() && outbox.check_space().is_ok() {
            continue;
        }
        if !down {
            down = true;
            let _ = events.send(Event {
                input: Input::RecordsUnwritable {
                    withheld: Vec::new(),
                },
                arrived: None,
            });
        }
        let o = outbox.clone();
        match tokio::task::spawn_blocking(move || o.recover()).await {
            Ok(Ok(())) => {
                down = false;
                let _ = events.send(Event {
                    input: Input::RecordsWritable,
                    arrived: None,
                });
            }
            Ok(Err(e)) => debug!(error = %e, "The outbox cannot write yet."),
            Err(e) => warn!(error = %e, "The outbox recovery task failed."),
        }
    }
}

/// Carries out one output (records for the authorities are stored by [`carry_out`]).
fn dispatch(ctx: &Ctx, output: Output, arrived: Option<Instant>) {
    match output {
        Output::Gate(cmd) => {
            if let (Some(arrived), GateId::One, GateAction::Open) = (arrived, cmd.gate, cmd.action)
            {
                let took = arrived.elapsed();
                info!(
                    frame_to_gate1_us = took.as_micros() as u64,
                    "Gate 1 opens on a face identified in this frame."
                );
                ctx.metrics.frame_to_gate1.observe(took.as_secs_f64());
                ctx.metrics.stage("frame_to_gate1", took);
            }
            let _ = ctx.gate_tx.send(cmd);
        }
        Output::Screen(screen) => {
            info!(gate = screen.gate.number(), code = screen.code, text = %screen.text, "Gate screen.");
            let slot = usize::from(screen.gate != GateId::One);
            ctx.shared
                .status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .screens[slot] = Some(screen);
        }
        Output::CheckPrerequisites(document) => {
            for (authority, client) in ctx.authorities.clone() {
                let (document, tx) = (document.clone(), ctx.events_tx.clone());
                tokio::spawn(async move {
                    let result = client
                        .prerequisites(&document)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Event {
                        input: Input::Prerequisites {
                            authority,
                            document,
                            result,
                        },
                        arrived: None,
                    });
                });
            }
        }
        Output::RecordConsent(request) => {
            *ctx.agreed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            // Both at once (seed 000: "simultaneously"); the same key to both and on retry.
            for (authority, client) in ctx.authorities.clone() {
                let (request, tx) = (request.clone(), ctx.events_tx.clone());
                tokio::spawn(async move {
                    let result = client
                        .deliver(&request.key, &request.record)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Event {
                        input: Input::ConsentRecorded {
                            authority,
                            key: request.key.clone(),
                            result,
                        },
                        arrived: None,
                    });
                });
            }
        }
        Output::Register(request) => {
            let (node, capture, tx) =
                (ctx.node.clone(), ctx.capture.clone(), ctx.events_tx.clone());
            let since = ctx
                .agreed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_else(Instant::now);
            let threshold = ctx.verify_threshold;
            tokio::spawn(async move {
                let result = register(&node, &capture, since, threshold, &request).await;
                if let Err(e) = &result {
                    warn!(error = %e, "Registration at the channel failed.");
                }
                let _ = tx.send(Event {
                    input: Input::Registered(result),
                    arrived: None,
                });
            });
        }
        Output::CaptureFingerprint => {
            let _ = ctx.finger_tx.send(());
        }
        Output::Inspect(request) => {
            if request.method == ClearanceMethod::Face {
                let person = {
                    let gallery = ctx.node.gallery();
                    gallery
                        .find_document(request.document.kind, &request.document.number)
                        .and_then(|id| gallery.entry(id))
                        .map(|e| e.person)
                };
                if let Some(person) = person {
                    ctx.refresher.face_passage(person);
                }
            }
            for (authority, client) in ctx.authorities.clone() {
                let (request, tx, metrics) =
                    (request.clone(), ctx.events_tx.clone(), ctx.metrics.clone());
                let timeout = ctx.inspection_timeout;
                tokio::spawn(async move {
                    let result = match tokio::time::timeout(timeout, client.inspect(&request)).await
                    {
                        Ok(Ok(v)) => Ok(v),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
                    };
                    let label = match &result {
                        Ok(super::procedure::Verdict::Cleared) => "cleared",
                        Ok(super::procedure::Verdict::Refer { .. }) => "refer",
                        Err(_) => "error",
                    };
                    metrics
                        .inspections
                        .with_label_values(&[authority.as_str(), label])
                        .inc();
                    let _ = tx.send(Event {
                        input: Input::Verdict {
                            authority,
                            key: request.key.clone(),
                            result,
                        },
                        arrived: None,
                    });
                });
            }
        }
        Output::Deliver(_) => {}
        Output::Alarm { kind, detail } => {
            warn!(alarm = kind.as_str(), %detail, "Lane alarm.");
            ctx.shared
                .console
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .alarms
                .entry(kind.as_str())
                .or_insert_with(Utc::now);
            ctx.metrics.alarms.with_label_values(&[kind.as_str()]).inc();
            ctx.shared.event("alarm", kind.as_str(), detail);
        }
        Output::Referral { code, reason } => {
            info!(code, %reason, "Traveller referred to an officer.");
            ctx.shared.event("referral", code, reason);
        }
        Output::Decision(d) => {
            ctx.metrics
                .decisions
                .with_label_values(&[d.outcome.as_str(), d.reason])
                .inc();
            {
                let mut console = ctx.shared.console.lock().unwrap_or_else(|e| e.into_inner());
                if d.outcome == super::procedure::Outcome::Cleared {
                    console.clearances += 1;
                    console.recent_clearances.push_back(Instant::now());
                    console.forget_old_clearances();
                }
                let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
                let passage_ms = match d.outcome {
                    super::procedure::Outcome::Admitted => {
                        console.admitted_at = Some(Instant::now());
                        None
                    }
                    super::procedure::Outcome::Cleared => console.admitted_at.take().map(ms),
                    super::procedure::Outcome::Refused | super::procedure::Outcome::Referred => {
                        console.admitted_at = None;
                        None
                    }
                    _ => None,
                };
                console.last_decision = Some(LastDecision {
                    outcome: d.outcome.as_str().to_string(),
                    latency_ms: arrived.map(ms),
                    passage_ms,
                    at: d.at,
                });
            }
            ctx.shared.event(
                "decision",
                d.outcome.as_str(),
                format!(
                    "{} ({}{})",
                    d.outcome.as_str(),
                    d.reason,
                    d.method
                        .map(|m| format!(", {}", m.as_str()))
                        .unwrap_or_default()
                ),
            );
        }
    }
}

/// The clients of the authorities that inspect at this port, Macao first.
fn clients(
    macao: &Option<AuthorityClient>,
    mainland: &Option<AuthorityClient>,
) -> Vec<(Authority, AuthorityClient)> {
    [(Authority::Macao, macao), (Authority::Mainland, mainland)]
        .into_iter()
        .filter_map(|(a, c)| c.clone().map(|c| (a, c)))
        .collect()
}

/// Writes a registration both authorities acknowledged: the newest good gate-1 face captured
/// since Agree, checked 1:N against the replica (a renewed permit relinks its holder; a face
/// registered to someone else is refused), then [`registration_commands`] through the cluster.
async fn register(
    node: &ClusterNode,
    capture: &Capture,
    since: Instant,
    threshold: f32,
    request: &RegistrationRequest,
) -> std::result::Result<PersonId, String> {
    let Some(embedding) = capture.take_after(since, Duration::from_secs(5)).await else {
        return Err("no face captured at gate 1".into());
    };
    let template = Template::quantize(embedding.model().clone(), embedding.values())
        .map_err(|e| e.to_string())?;
    let gallery = node.gallery();
    let matched: Option<Person> = gallery
        .search(embedding.values(), 1)
        .map_err(|e| e.to_string())?
        .first()
        .filter(|hit| hit.score >= threshold)
        .and_then(|hit| gallery.entry(hit.person))
        .map(|entry| entry.person);
    let face = match &matched {
        Some(person) => FaceOnRecord::Person(person),
        None => FaceOnRecord::Nobody,
    };
    let done = Completed {
        document: &request.document,
        pending: request.existing,
        guardian_consent: request.guardian_consent.as_ref(),
        prerequisites: &request.prerequisites,
        acknowledged_at: request.at,
        authorities: &request.authorities,
        channel: &request.channel,
    };
    let commands = registration_commands(&done, template, face).map_err(|e| e.to_string())?;
    let (_, outcomes) = node
        .write(Request::V1(commands))
        .await
        .map_err(|e| e.to_string())?;
    let mut id = None;
    for outcome in outcomes {
        match outcome {
            RegistryOutcome::Refused { code, reason } => return Err(format!("{code}: {reason}")),
            o => id = id.or(o.person()),
        }
    }
    id.ok_or_else(|| "the registry answered without a person".into())
}

async fn gate_task(
    mut gates: ModbusGates,
    mut commands: mpsc::UnboundedReceiver<GateCommand>,
    events: mpsc::UnboundedSender<Event>,
    metrics: LaneMetrics,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unreachable = false;
    loop {
        tokio::select! {
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { return };
                let result = gates.command(cmd).await;
                let label = match &result { Ok(()) => "ok", Err(e) => e.code() };
                metrics.gate_commands
                    .with_label_values(&[&cmd.gate.number().to_string(), cmd.action.as_str(), label])
                    .inc();
                {
                    // The command a supervisor's gate order is waiting for.
                    let mut console = shared.console.lock().unwrap_or_else(|e| e.into_inner());
                    if console.awaiting == Some((cmd.fence.index, cmd.gate, cmd.action)) {
                        console.awaiting = None;
                        match &result {
                            Ok(()) => console.acknowledge(cmd.fence.index),
                            Err(_) => {
                                console.alarms.entry("order_refused").or_insert_with(Utc::now);
                            }
                        }
                    }
                }
                if let Err(e) = result {
                    warn!(gate = cmd.gate.number(), action = cmd.action.as_str(), fence = %cmd.fence, error = %e, "Gate command not carried out.");
                    // The procedure acts on what the controller did.
                    let input = Input::GateFailed { gate: cmd.gate, action: cmd.action, why: e.to_string() };
                    if events.send(Event { input, arrived: None }).is_err() { return; }
                }
            }
            _ = poll.tick() => {
                match gates.status().await {
                    Ok(status) => {
                        unreachable = false;
                        let states = [status.gates[0].state, status.gates[1].state, status.gates[2].state];
                        metrics.gates(&states);
                        let input = Input::Gates { states, occupancy: u32::from(status.zone_occupancy), fence: status.fence };
                        if events.send(Event { input, arrived: None }).is_err() { return; }
                    }
                    Err(e) => {
                        if !unreachable {
                            warn!(error = %e, "Gate controller not answering.");
                            unreachable = true;
                        }
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

async fn fingerprint_task(
    mut reader: TcpFingerprintReader,
    mut requests: mpsc::UnboundedReceiver<()>,
    events: mpsc::UnboundedSender<Event>,
) {
    while requests.recv().await.is_some() {
        let result = reader
            .capture(Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string());
        let input = Input::Fingerprint(result);
        if events
            .send(Event {
                input,
                arrived: None,
            })
            .is_err()
        {
            return;
        }
    }
}

/// The document reader and the CSCAs its chips are checked against.
struct Documents {
    reader: TcpDocumentReader,
    trust: ChipTrust,
}

async fn document_task(
    Documents { mut reader, trust }: Documents,
    node: ClusterNode,
    refresher: Refresher,
    policy: clearway_gallery::Policy,
    offset: FixedOffset,
    events: mpsc::UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            n = reader.next_document() => n,
            _ = stop.changed() => return,
        };
        let today = Utc::now().with_timezone(&offset).date_naive();
        // Only what the chip's issuer signed counts (passive authentication).
        let read = next.and_then(|raw| raw.read_authenticated(today, policy.destination, &trust));
        let scan = match read {
            Ok(document) => {
                let holder = {
                    let gallery = node.gallery();
                    match gallery
                        .find_document(document.kind, &document.number)
                        .and_then(|id| gallery.entry(id))
                    {
                        Some(entry) if entry.templates.is_empty() => {
                            Holder::Pending(Box::new(entry.person.clone()))
                        }
                        Some(entry) => Holder::Registered(Box::new(entry.person.clone())),
                        None => Holder::Unknown,
                    }
                };
                if let Holder::Registered(person) = &holder {
                    refresher.card_read((**person).clone(), document.clone());
                }
                CardScan::Read {
                    document: Box::new(document),
                    holder,
                }
            }
            Err(e) if e.is_document_fault() => CardScan::Unreadable {
                code: e.code(),
                reason: e.to_string(),
            },
            Err(e) => {
                // The link to the reader; it reconnects by itself.
                tracing::debug!(error = %e, "Document reader link problem.");
                continue;
            }
        };
        if events
            .send(Event {
                input: Input::Card(scan),
                arrived: None,
            })
            .is_err()
        {
            return;
        }
    }
}

async fn replica_task(
    node: ClusterNode,
    channel: String,
    events: mpsc::UnboundedSender<Event>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Orders already in the log when the lane starts were for moments that have passed; only
    // the mode a supervisor set is taken up again.
    let (_, mut delivered) = node.term_and_applied();
    let mode = node
        .gallery()
        .read()
        .ledger
        .lane(&channel)
        .and_then(|l| l.mode);
    if let Some(mode) = mode {
        info!(
            mode = mode.as_str(),
            "Lane mode set by a supervisor taken up."
        );
        let input = Input::Override {
            action: OverrideAction::Mode { mode },
            fence: Fence::default(),
        };
        if events
            .send(Event {
                input,
                arrived: None,
            })
            .is_err()
        {
            return;
        }
    }
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let (term, index) = node.term_and_applied();
        let orders: Vec<_> = node
            .gallery()
            .read()
            .ledger
            .lane(&channel)
            .map(|l| {
                l.orders
                    .iter()
                    .filter(|o| o.index > delivered && o.index <= index)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for order in orders {
            // A gate or officer order is for the moment it was given; one that reaches the lane
            // much later (a partition, a lane catching up) is not carried out. Modes stand.
            let age = Utc::now().signed_duration_since(order.at);
            if !matches!(order.action, OverrideAction::Mode { .. })
                && age > chrono::TimeDelta::from_std(ORDER_MAX_AGE).unwrap_or_default()
            {
                warn!(
                    order = order.action.name(),
                    index = order.index,
                    age_s = age.num_seconds(),
                    "Supervisor order arrived too late; not carried out."
                );
                shared
                    .console
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .alarms
                    .entry("order_expired")
                    .or_insert_with(Utc::now);
                continue;
            }
            info!(order = order.action.name(), fence = %Fence { term: order.term, index: order.index }, audit = order.audit_seq, "Supervisor order.");
            let input = Input::Override {
                action: order.action,
                fence: Fence {
                    term: order.term,
                    index: order.index,
                },
            };
            if events
                .send(Event {
                    input,
                    arrived: None,
                })
                .is_err()
            {
                return;
            }
        }
        delivered = delivered.max(index);
        let input = Input::Replica {
            fence: super::procedure::Fence { term, index },
            staleness: node.staleness_ms().map(Duration::from_millis),
        };
        if events
            .send(Event {
                input,
                arrived: None,
            })
            .is_err()
        {
            return;
        }
    }
}

/// The console's report on the lane.
fn report(
    shared: &Shared,
    channel: &str,
    cameras_down_since: [Option<DateTime<Utc>>; 2],
    node: &ClusterNode,
) -> protocol::LaneStatus {
    let view = shared
        .status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .view
        .clone();
    let mut console = shared.console.lock().unwrap_or_else(|e| e.into_inner());
    console.forget_old_clearances();
    let mut alarms: Vec<LaneAlarm> = console
        .alarms
        .iter()
        .map(|(kind, since)| LaneAlarm {
            kind: kind.to_string(),
            since: *since,
        })
        .collect();
    if let Some(since) = cameras_down_since.iter().flatten().min() {
        alarms.push(LaneAlarm {
            kind: "camera_down".into(),
            since: *since,
        });
    }
    let cameras_up = cameras_down_since.map(|s| s.is_none());
    protocol::LaneStatus {
        channel: channel.to_string(),
        step: view.step.to_string(),
        mode: view.mode,
        face_scan: view.face_scan,
        fence: (view.fence.term, view.fence.index),
        gates: view.gates.map(|g| g.as_str().to_string()),
        occupancy: view.occupancy,
        held_for: view.held_for.map(str::to_string),
        cameras_up,
        last_decision: console.last_decision.clone(),
        alarms,
        acked_order: console.acked_order,
        clearances: console.clearances,
        clearances_last_hour: console.recent_clearances.len() as u64,
        staleness_ms: node.staleness_ms().unwrap_or(u64::MAX),
        direction: view.direction.clone(),
        pad: view.pad.as_str().to_string(),
    }
}

/// Screen taps let through per second.
const TAPS_PER_SECOND: u32 = 4;

/// How many screen taps the current second has let through.
#[derive(Debug, Default)]
struct TapBudget {
    second: Option<Instant>,
    used: u32,
}

impl TapBudget {
    /// Whether a tap at `now` is let through (at most [`TAPS_PER_SECOND`] in any one second
    /// window); counts it if so.
    fn take(&mut self, now: Instant) -> bool {
        match self.second {
            Some(start) if now.saturating_duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.second = Some(now);
                self.used = 0;
            }
        }
        if self.used >= TAPS_PER_SECOND {
            return false;
        }
        self.used += 1;
        true
    }
}

async fn serve_api(
    listener: tokio::net::TcpListener,
    texts: Arc<super::kiosk::Texts>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
) {
    use axum::routing::{get, post};

    use super::kiosk;
    let shared_kiosk = shared.clone();
    // A person taps a few times a second at most: the taps that reach the procedure are
    // bounded, the rest refused (429), so a stuck or hostile screen cannot fill the queue.
    let budget = Arc::new(Mutex::new(TapBudget::default()));
    let tap = |input: Input| {
        let (events, budget) = (events.clone(), budget.clone());
        move || {
            let (input, events, budget) = (input.clone(), events.clone(), budget.clone());
            async move {
                let allowed = budget
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take(Instant::now());
                if !allowed {
                    return axum::http::StatusCode::TOO_MANY_REQUESTS;
                }
                match events.send(Event {
                    input,
                    arrived: None,
                }) {
                    Ok(()) => axum::http::StatusCode::NO_CONTENT,
                    Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
                }
            }
        }
    };
    let app = axum::Router::new()
        .route(
            "/lane",
            get({
                let shared = shared.clone();
                move || async move {
                    let status = shared
                        .status
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    axum::Json(status)
                }
            }),
        )
        .route("/lane/screen/agree", post(tap(Input::Agree)))
        .route("/lane/screen/decline", post(tap(Input::Decline)))
        // The gate screens themselves (kiosk browsers at gate 1 and gate 2).
        .route(
            "/kiosk",
            get(|| async { kiosk_file("text/html; charset=utf-8", kiosk::PAGE_HTML) }),
        )
        .route(
            "/kiosk/kiosk.js",
            get(|| async { kiosk_file("text/javascript; charset=utf-8", kiosk::PAGE_JS) }),
        )
        .route(
            "/kiosk/kiosk.css",
            get(|| async { kiosk_file("text/css; charset=utf-8", kiosk::PAGE_CSS) }),
        )
        .route(
            "/kiosk/icon.svg",
            get(|| async { kiosk_file("image/svg+xml", kiosk::PAGE_ICON) }),
        )
        .route(
            "/kiosk/screen",
            get(move |query: axum::extract::Query<KioskQuery>| async move {
                let gate = if query.gate == Some(2) {
                    GateId::Two
                } else {
                    GateId::One
                };
                let (screen, face_scan) = {
                    let status = shared_kiosk
                        .status
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    (
                        status.screens[usize::from(gate != GateId::One)].clone(),
                        status.view.face_scan,
                    )
                };
                let lang = texts.language(query.lang.as_deref());
                let view = texts.render(lang, gate, screen.as_ref(), face_scan);
                (
                    [
                        (axum::http::header::CACHE_CONTROL, "no-store"),
                        (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    ],
                    axum::Json(view),
                )
            }),
        );
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        error!(error = %e, "Lane API stopped.");
    }
}

/// `GET /kiosk/screen`'s query: which gate (1 unless 2), which language (the default unless one
/// of the four). Anything else in it is ignored; a malformed one is refused by axum (400).
#[derive(Debug, Deserialize)]
struct KioskQuery {
    gate: Option<u8>,
    lang: Option<String>,
}

/// One of the kiosk page's files, with the page's security headers.
fn kiosk_file(content_type: &'static str, body: &'static str) -> impl axum::response::IntoResponse {
    use axum::http::header;
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, super::kiosk::PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str) -> LaneConfig {
        toml::from_str(&format!(
            "listen = \"{listen}\"\n\
             [procedure]\nchannel = \"hengqin/passenger/1\"\nauthorities = [\"mainland\"]\nprerequisites = false\n\
             [camera_gate1]\nname = \"gate1\"\nsource = \"rtsp://10.12.1.20:554/stream1\"\n\
             [camera_gate2]\nname = \"gate2\"\nsource = \"rtsp://10.12.1.21:554/stream1\"\n\
             [gates]\naddress = \"10.12.1.30:502\"\n\
             [document_reader]\naddress = \"10.12.1.31:7700\"\n\
             [fingerprint_reader]\naddress = \"10.12.1.32:7701\"\n\
             [mainland]\nbase_url = \"https://mainland.example:8443\"\nca_cert = \"/etc/clearway/mainland-ca.pem\"\n\
             client_cert = \"/etc/clearway/client.pem\"\nclient_key = \"/etc/clearway/client.key\"\n"
        ))
        .expect("a lane section")
    }

    #[test]
    fn the_gate_screen_api_listens_on_loopback_only() {
        for listen in ["10.1.1.5:7600", "0.0.0.0:7600", "[::]:7600"] {
            let e = config(listen).validate().expect_err(listen).to_string();
            assert!(e.contains("loopback"), "{listen}: {e}");
        }
        for listen in ["127.0.0.1:7600", "[::1]:7600"] {
            if let Err(e) = config(listen).validate() {
                assert!(!e.to_string().contains("loopback"), "{listen}: {e}");
            }
        }
    }

    #[test]
    fn screen_taps_are_bounded_per_second() {
        let mut budget = TapBudget::default();
        let t0 = Instant::now();
        let let_through = (0..100)
            .filter(|i| budget.take(t0 + Duration::from_millis(*i)))
            .count();
        assert_eq!(
            let_through, TAPS_PER_SECOND as usize,
            "a flood within one second"
        );
        assert!(
            budget.take(t0 + Duration::from_millis(1000)),
            "the next second has its own budget"
        );
    }
}
