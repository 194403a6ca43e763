//! The lane rig: everything a lane node needs, real or simulated, on loopback — two RTSP camera
//! simulators, the Modbus gate simulator, the document and fingerprint reader simulators, two
//! reference authorities over HTTPS with mutual TLS, and a port of `clearway-node` processes
//! (node 1 a voter, node 2 the lane learner). Used by `tests/lane.rs` and `benches/lane.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use clearway_gallery::{
    Authority, Category, DocumentKind, NewPerson, Registration, Registrations, Template,
    TravelDocument,
};
use clearway_node::face::{FaceConfig, FacePipeline, Frame};
use clearway_node::lane::authority::{DemoPki, ReferenceAuthority, ReferenceHandle};
use clearway_node::lane::camera::sim::{CameraSimulator, Scene, SimConfig};
use clearway_node::lane::document::{DocumentReaderSimulator, RawDocument, synthetic_mrz};
use clearway_node::lane::fingerprint::{FingerprintSimConfig, FingerprintSimulator};
use clearway_node::lane::gate::{GateSimConfig, GateSimulator};
use clearway_node::lane::procedure::{AuthorityRecord, GateId, GateState};
use serde_json::Value;

use crate::port::{LocalPort, Tuning};
use crate::{assets, ort_library, photo};

pub fn day(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

/// Plain HTTP/1.1 to the lane's API (status, body).
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the lane API");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("response");
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub struct Rig {
    pub port: LocalPort,
    pub lane_api: SocketAddr,
    pub cam1: clearway_node::lane::camera::sim::SimHandle,
    pub cam2: clearway_node::lane::camera::sim::SimHandle,
    pub gates: clearway_node::lane::gate::SimHandle,
    pub documents: DocumentReaderSimulator,
    pub _fingers: clearway_node::lane::fingerprint::SimFingerprintHandle,
    pub macao: ReferenceHandle,
    pub mainland: ReferenceHandle,
    pub pipeline: FacePipeline,
    /// The lane's channel id.
    pub channel: String,
    /// The `seq` of the last lane event waited for (0: none; the lane numbers events from 1).
    pub seen_events: usize,
}

impl Rig {
    pub fn lane(&self) -> Value {
        let (status, body) = http(self.lane_api, "GET", "/lane");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("lane status JSON")
    }

    /// Waits until the lane shows an event (kind, code) newer than the last one waited for.
    pub async fn wait_event(&mut self, kind: &str, code: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let lane = self.lane();
            let events = lane["events"].as_array().cloned().unwrap_or_default();
            if let Some(e) = events.iter().find(|e| {
                e["seq"].as_u64().unwrap_or(0) as usize > self.seen_events
                    && e["kind"] == kind
                    && e["code"] == code
            }) {
                self.seen_events = e["seq"].as_u64().unwrap_or(0) as usize;
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} {code} within {within:?}; lane: {}\nlog tail:\n{}",
                serde_json::to_string_pretty(&lane).unwrap_or_default(),
                tail(&self.port.log(2))
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_step(&self, step: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let lane = self.lane();
            if lane["view"]["step"] == step {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "lane not at step {step}: {}",
                serde_json::to_string_pretty(&lane).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_screen(&self, code: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let lane = self.lane();
            if lane["screens"][0]["code"] == code || lane["screens"][1]["code"] == code {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no screen {code}: {}",
                serde_json::to_string_pretty(&lane).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn show(&self, scene: Scene) {
        self.cam1.show(scene.clone()).expect("gate-1 scene");
        self.cam2.show(scene).expect("gate-2 scene");
    }

    pub fn template(&mut self, rel: &str) -> Template {
        let frame = Frame::open(&photo(rel)).expect("photo");
        let (_, embedding) = self
            .pipeline
            .single_face(frame.as_ref())
            .expect("one good face");
        Template::quantize(embedding.model().clone(), embedding.values()).expect("template")
    }

    pub fn present(&self, kind: DocumentKind, number: &str, name: &str, dob: &str, expiry: &str) {
        let mrz = synthetic_mrz(kind, number, name, day(dob), day(expiry), 'M');
        self.documents
            .present(RawDocument::mrz_only(mrz))
            .expect("present the document");
    }

    /// Walks the traveller admitted at gate 1 through gate 2 and out: steps into the zone,
    /// then leaves once gates 2 and 3 open.
    pub async fn walk_through(&mut self) {
        self.gates.set_occupancy(1);
        self.wait_event("decision", "cleared", Duration::from_secs(30))
            .await;
        // The decision is recorded as the commands leave for the controller: give them a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        for g in [GateId::Two, GateId::Three] {
            loop {
                let s = self.gates.state(g);
                if matches!(s, GateState::Open | GateState::Moving) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{g}: {s:?}; log tail:\n{}",
                    tail(&self.port.log(2))
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Gate 1 closed behind the traveller (or is still closing).
        assert_ne!(self.gates.state(GateId::One), GateState::Open);
        // The traveller walks out of both cameras' view and out of the zone.
        self.show(Scene::Empty);
        self.gates.set_occupancy(0);
        self.wait_step("idle", Duration::from_secs(15)).await;
    }

    pub async fn records(&self, authority: Authority) -> Vec<(String, AuthorityRecord)> {
        let h = match authority {
            Authority::Macao => &self.macao,
            Authority::Mainland => &self.mainland,
        };
        h.records().into_iter().map(|r| (r.key, r.record)).collect()
    }
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
        consents: vec![],
        guardian_consent: None,
    }
}

fn lane_config(rig_dir: &Path, ports: &LanePorts, pki_dir: &Path) -> String {
    let auth = |name: &str, url: &str| {
        format!(
            "[lane.{name}]\nbase_url = \"{url}\"\nca_cert = \"{ca}\"\nclient_cert = \"{cert}\"\nclient_key = \"{key}\"\ntimeout_ms = 2000\n\n",
            ca = pki_dir.join("ca.pem").display(),
            cert = pki_dir.join("client.pem").display(),
            key = pki_dir.join("client.key").display(),
        )
    };
    let _ = rig_dir;
    format!(
        "\n[lane]\nlisten = \"{api}\"\n\n[lane.procedure]\nchannel = \"{channel}\"\nmax_staleness = 4000\nenter_timeout = 3000\nrefusal_display = 1500\ninspection_timeout = 3000\n\n[lane.camera_gate1]\nname = \"gate1\"\nsource = \"{cam1}\"\n\n[lane.camera_gate2]\nname = \"gate2\"\nsource = \"{cam2}\"\n\n[lane.gates]\naddress = \"{gates}\"\n\n[lane.document_reader]\naddress = \"{docs}\"\n\n[lane.fingerprint_reader]\naddress = \"{fingers}\"\n\n{macao}{mainland}",
        api = ports.api,
        cam1 = ports.cam1,
        cam2 = ports.cam2,
        gates = ports.gates,
        docs = ports.documents,
        fingers = ports.fingers,
        macao = auth("macao", &ports.macao),
        mainland = auth("mainland", &ports.mainland),
        channel = CHANNEL,
    )
}

/// The rig's lane: channel 1 of the test port's passenger hall.
pub const CHANNEL: &str = "testport/passenger/1";

struct LanePorts {
    api: SocketAddr,
    pub cam1: String,
    pub cam2: String,
    pub gates: SocketAddr,
    pub documents: SocketAddr,
    fingers: SocketAddr,
    pub macao: String,
    pub mainland: String,
}

fn free_tcp() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free TCP port")
}

pub async fn rig(dir: &Path) -> Rig {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    // 720p, as the channel cameras: a traveller's face fills a good part of the picture.
    let cam = |mount: &str| SimConfig {
        mount: mount.into(),
        width: 1280,
        height: 720,
        ..SimConfig::default()
    };
    let cam1 = CameraSimulator::start(cam("/gate1")).expect("RTSP camera simulator 1");
    let cam2 = CameraSimulator::start(cam("/gate2")).expect("RTSP camera simulator 2");
    cam1.show(Scene::Empty).expect("scene");
    cam2.show(Scene::Empty).expect("scene");
    let gates = GateSimulator::start(
        any,
        GateSimConfig {
            hold_open_ms: 20_000,
            ..GateSimConfig::default()
        },
    )
    .await
    .expect("gate simulator");
    let documents = DocumentReaderSimulator::start(any)
        .await
        .expect("document reader simulator");
    let fingers = FingerprintSimulator::start(any, FingerprintSimConfig::default())
        .await
        .expect("fingerprint simulator");
    let pki = DemoPki::generate(&[]).expect("authority PKI");
    let pki_dir = dir.join("authority-pki");
    pki.write(&pki_dir).expect("write PKI");
    let macao = ReferenceAuthority::start(pki.reference_config())
        .await
        .expect("Macao reference authority");
    let mainland = ReferenceAuthority::start(pki.reference_config())
        .await
        .expect("Mainland reference authority");

    let mut port = LocalPort::new(dir, [1, 2], Tuning::default());
    let ports = LanePorts {
        api: free_tcp(),
        cam1: cam1.url(),
        cam2: cam2.url(),
        gates: gates.addr(),
        documents: documents.local_addr(),
        fingers: fingers.addr(),
        macao: macao.base_url(),
        mainland: mainland.base_url(),
    };
    let config_path = port.node_dir(2).join("node.toml");
    let mut config = std::fs::read_to_string(&config_path).expect("node 2 config");
    config.push_str(&lane_config(dir, &ports, &pki_dir));
    std::fs::write(&config_path, config).expect("write lane config");
    port.bootstrap(&[1], &[2]).await;

    let pipeline = FacePipeline::load(&ort_library(), &assets(), FaceConfig::default())
        .expect("face pipeline");
    Rig {
        port,
        lane_api: ports.api,
        cam1,
        cam2,
        gates,
        documents,
        _fingers: fingers,
        macao,
        mainland,
        pipeline,
        channel: CHANNEL.to_string(),
        seen_events: 0,
    }
}

pub async fn wait_lane_api(rig: &Rig) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(rig.lane_api).is_err() {
        assert!(
            Instant::now() < deadline,
            "lane API never came up; log:\n{}",
            tail(&rig.port.log(2))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
