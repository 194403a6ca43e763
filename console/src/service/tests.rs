//! The service layer without a browser: the role matrix, reasons and bad input against a port
//! that cannot be reached (refusals happen before any IO), and every action against a real
//! three-node port cluster running in this process.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::Params;
use chrono::{Datelike, Utc};
use clearway_node::cluster::protocol::{LaneAlarm, LaneStatus};
use clearway_node::cluster::{ClusterNode, NodeConfig};
use clearway_node::net::Identity;
use clearway_node::net::tls::PortCa;

use super::*;
use crate::auth::{Auth, now_ms};
use crate::config::{AuthConfig, HallConfig, PortConfig};
use crate::dto::{ChannelState, LaneMode};

pub(crate) fn viewer(name: &str, role: Role, ports: &[&str]) -> Viewer {
    Viewer {
        name: name.into(),
        role,
        ports: ports.iter().map(|p| p.to_string()).collect(),
        csrf: "t".into(),
        must_change: false,
    }
}

pub(crate) fn port_config(
    id: &str,
    bundle_dir: &Path,
    nodes: BTreeMap<String, String>,
) -> PortConfig {
    PortConfig {
        id: id.into(),
        name: format!("{id} port"),
        utc_offset_minutes: 480,
        bundle_dir: bundle_dir.to_path_buf(),
        nodes,
        halls: vec![
            HallConfig {
                id: "passenger".into(),
                name: "Passenger Inspection Hall".into(),
                channels: 4,
            },
            HallConfig {
                id: "onboard".into(),
                name: "On-board Passengers Hall".into(),
                channels: 2,
            },
        ],
        dashboard_url: None,
    }
}

pub(crate) fn console(dir: &Path, ports: Vec<PortConfig>) -> Console {
    let config = ConsoleConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        metrics_listen: None,
        tls: None,
        plain_http: true,
        redirect_listen: None,
        data_dir: dir.join("console"),
        site_dir: None,
        auth: AuthConfig::default(),
        poll_interval_ms: 100,
        poll_timeout_ms: 1000,
        replication_lag_alarm_entries: 1000,
        lab_ca: true,
        ports,
    };
    let db = open_db(&config.data_dir).expect("db");
    let auth = Auth::with_params(
        &db,
        config.auth.clone(),
        Params::new(1024, 1, 1, None).expect("params"),
    )
    .expect("auth");
    let metrics = Metrics::new(prometheus::Registry::new()).expect("metrics");
    Console::with_parts(config, metrics, db, auth).expect("console")
}

/// A console with ports `hengqin` and `gongbei` whose bundles do not exist: every permitted
/// action fails with `port_unreachable` at the first IO, so the code tells which check answered.
fn offline_console() -> (tempfile::TempDir, Console) {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = BTreeMap::from([("1".to_string(), "127.0.0.1:9".to_string())]);
    let ports = ["hengqin", "gongbei"]
        .iter()
        .map(|p| port_config(p, &dir.path().join(format!("no-bundle-{p}")), nodes.clone()))
        .collect();
    let c = console(dir.path(), ports);
    (dir, c)
}

fn code<T>(r: Result<T>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn every_action_is_refused_on_the_server_unless_the_role_allows_it_on_this_port() {
    let (_dir, c) = offline_console();
    let sup = viewer("ana", Role::Supervisor, &["hengqin"]);
    let desk = viewer("bo", Role::ServiceDesk, &[]);
    let admin = viewer("cy", Role::PortAdmin, &[]);
    let other = viewer("di", Role::Supervisor, &["gongbei"]);
    let reason = "checked with the traveller";
    let form = ConsentForm::default();
    let mut rows = Vec::new();
    for (who, v) in [
        ("supervisor", &sup),
        ("desk", &desk),
        ("admin", &admin),
        ("other-port", &other),
    ] {
        let now = now_ms();
        let results = [
            ("overview", code(c.overview(v))),
            ("snapshot", code(c.snapshot(v, "hengqin"))),
            ("lane", code(c.lane_detail(v, "hengqin", "passenger", "1"))),
            (
                "override",
                code(
                    c.lane_override(
                        v,
                        "hengqin",
                        "hengqin/passenger/1",
                        "gate1_open",
                        reason,
                        now,
                    )
                    .await,
                ),
            ),
            (
                "ack",
                code(
                    c.ack_alarm(
                        v,
                        "hengqin",
                        "hengqin/passenger/1",
                        "camera_down",
                        1,
                        reason,
                        now,
                    )
                    .await,
                ),
            ),
            (
                "find",
                code(
                    c.find_registration(v, "hengqin", "permit_hk_macao", "C12345678")
                        .await,
                ),
            ),
            (
                "consent",
                code(c.guardian_consent(v, "hengqin", &form, reason, now).await),
            ),
            (
                "cancel",
                code(
                    c.cancel_registration(
                        v,
                        "hengqin",
                        "P00000001",
                        &CancelEvidence::default(),
                        reason,
                        now,
                    )
                    .await,
                ),
            ),
            (
                "stage",
                code(
                    c.stage_face_scan(v, "hengqin", "all", "", reason, now)
                        .await,
                ),
            ),
            (
                "init",
                code(c.init_cluster(v, "hengqin", reason, now).await),
            ),
            (
                "learner",
                code(
                    c.add_learner(v, "hengqin", "9", "127.0.0.1:7409", reason, now)
                        .await,
                ),
            ),
            (
                "retire",
                code(c.retire_appliance(v, "hengqin", "9", reason, now).await),
            ),
            ("audit", code(c.audit(v, "hengqin").await)),
            ("users", code(c.users(v, now))),
            ("rollout", code(c.rollout_ports(v))),
        ];
        rows.push(format!(
            "{who:<10} {}",
            results
                .iter()
                .map(|(a, r)| format!("{a}={r}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    // `invalid` for the desk's consent and cancellation: the (empty) form is checked after the
    // role, before any port is asked.
    expect_test::expect![[r#"
        supervisor overview=ok snapshot=ok lane=ok override=port_unreachable ack=port_unreachable find=forbidden consent=forbidden cancel=forbidden stage=forbidden init=forbidden learner=forbidden retire=forbidden audit=port_unreachable users=forbidden rollout=forbidden
        desk       overview=forbidden snapshot=forbidden lane=forbidden override=forbidden ack=forbidden find=port_unreachable consent=invalid cancel=invalid stage=forbidden init=forbidden learner=forbidden retire=forbidden audit=forbidden users=forbidden rollout=forbidden
        admin      overview=ok snapshot=ok lane=ok override=forbidden ack=forbidden find=forbidden consent=forbidden cancel=forbidden stage=port_unreachable init=port_unreachable learner=port_unreachable retire=port_unreachable audit=port_unreachable users=ok rollout=ok
        other-port overview=ok snapshot=forbidden lane=forbidden override=forbidden ack=forbidden find=forbidden consent=forbidden cancel=forbidden stage=forbidden init=forbidden learner=forbidden retire=forbidden audit=forbidden users=forbidden rollout=forbidden"#]]
    .assert_eq(&rows.join("\n"));
    // The supervisor of another port sees only that port.
    let seen: Vec<String> = c
        .overview(&other)
        .expect("overview")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(seen, ["gongbei"]);
    assert!(
        c.metrics
            .render()
            .contains("clearway_console_refused_total{code=\"forbidden\"}"),
        "refusals are counted"
    );
}

#[tokio::test]
async fn changes_need_a_reason_and_sane_input_before_a_port_is_asked() {
    let (_dir, c) = offline_console();
    let sup = viewer("ana", Role::Supervisor, &["hengqin"]);
    let desk = viewer("bo", Role::ServiceDesk, &[]);
    let now = now_ms();
    let long = "x".repeat(crate::dto::MAX_REASON_CHARS + 1);
    let lane = "hengqin/passenger/1";
    let table: Vec<(&str, &'static str)> = vec![
        (
            "empty reason",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate1_open", "", now)
                    .await,
            ),
        ),
        (
            "blank reason",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate1_open", " \n ", now)
                    .await,
            ),
        ),
        (
            "long reason",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate1_open", &long, now)
                    .await,
            ),
        ),
        (
            "control chars",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate1_open", "a\u{7}b", now)
                    .await,
            ),
        ),
        (
            "unknown action",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate4_open", "r", now)
                    .await,
            ),
        ),
        (
            "unknown lane",
            code(
                c.lane_override(&sup, "hengqin", "hengqin/passenger/5", "release", "r", now)
                    .await,
            ),
        ),
        (
            "foreign lane",
            code(
                c.lane_override(&sup, "hengqin", "gongbei/passenger/1", "release", "r", now)
                    .await,
            ),
        ),
        (
            "unknown port",
            code(
                c.lane_override(&sup, "nowhere", lane, "release", "r", now)
                    .await,
            ),
        ),
        (
            "unknown alarm",
            code(
                c.ack_alarm(&sup, "hengqin", lane, "boredom", 1, "r", now)
                    .await,
            ),
        ),
        (
            "node alarm",
            code(
                c.ack_alarm(
                    &sup,
                    "hengqin",
                    "hengqin/node-3",
                    "replication_lag",
                    1,
                    "r",
                    now,
                )
                .await,
            ),
        ),
        (
            "lane page 404",
            code(c.lane_detail(&sup, "hengqin", "passenger", "99")),
        ),
        (
            "hall 404",
            code(c.lane_detail(&sup, "hengqin", "departure", "1")),
        ),
        (
            "bad person id",
            code(
                c.cancel_registration(
                    &desk,
                    "hengqin",
                    "H1234567",
                    &CancelEvidence::default(),
                    "r",
                    now,
                )
                .await,
            ),
        ),
        (
            "cancel no reason",
            code(
                c.cancel_registration(
                    &desk,
                    "hengqin",
                    "P00000001",
                    &CancelEvidence::default(),
                    "",
                    now,
                )
                .await,
            ),
        ),
        (
            "bad document no",
            code(
                c.find_registration(&desk, "hengqin", "permit_hk_macao", "12 34")
                    .await,
            ),
        ),
        (
            "bad document kind",
            code(
                c.find_registration(&desk, "hengqin", "passport", "C1")
                    .await,
            ),
        ),
        (
            "ok override",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate1_open", "stuck", now)
                    .await,
            ),
        ),
    ];
    let text: Vec<String> = table.iter().map(|(w, c)| format!("{w}: {c}")).collect();
    expect_test::expect![[r#"
        empty reason: reason_required
        blank reason: reason_required
        long reason: reason_required
        control chars: invalid
        unknown action: invalid
        unknown lane: not_found
        foreign lane: not_found
        unknown port: not_found
        unknown alarm: invalid
        node alarm: port_unreachable
        lane page 404: not_found
        hall 404: not_found
        bad person id: invalid
        cancel no reason: reason_required
        bad document no: invalid
        bad document kind: invalid
        ok override: port_unreachable"#]]
    .assert_eq(&text.join("\n"));
    assert_eq!(Error::ReasonRequired.status(), 422);
    assert_eq!(Error::NotFound(String::new()).status(), 404);
}

#[test]
fn a_port_definition_file_is_previewed_as_the_appliances_will_be_provisioned() {
    let (_dir, c) = offline_console();
    let admin = viewer("cy", Role::PortAdmin, &[]);
    let sup = viewer("ana", Role::Supervisor, &["hengqin"]);
    let hengqin = include_str!("../../../deploy/ports/hengqin.toml");
    let (form, view) = c
        .preview_definition(&admin, hengqin)
        .expect("Hengqin's definition");
    assert_eq!(
        (view.id.as_str(), view.utc_offset_minutes),
        ("hengqin", 480)
    );
    let halls: Vec<(&str, u32)> = view
        .halls
        .iter()
        .map(|(id, _, n)| (id.as_str(), *n))
        .collect();
    assert_eq!(halls, [("passenger", 48), ("onboard", 16)]);
    let voters: Vec<&str> = view.nodes.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(
        voters,
        ["10.1.0.11:7400", "10.1.0.12:7400", "10.1.0.13:7400"]
    );
    // The form it makes is the one the console's own parsers accept.
    assert_eq!(
        crate::rollout::parse_halls(&form.halls)
            .expect("halls")
            .len(),
        2
    );
    assert_eq!(
        crate::rollout::parse_nodes(&form.nodes)
            .expect("nodes")
            .len(),
        3
    );
    // Only a port admin; a bad file is a clear error, not a port.
    assert_eq!(code(c.preview_definition(&sup, hengqin)), "forbidden");
    let bad = c
        .preview_definition(&admin, "id = \"x\"\nname = 3\n")
        .expect_err("a bad definition");
    assert!(bad.to_string().contains("the port definition"), "{bad}");
    let piped = hengqin.replace("Passenger Inspection Hall", "Passenger | Hall");
    assert_eq!(code(c.preview_definition(&admin, &piped)), "invalid");
    let huge = "#".repeat(300 * 1024);
    assert_eq!(code(c.preview_definition(&admin, &huge)), "invalid");
}

#[tokio::test]
async fn a_minors_age_turns_at_midnight_at_the_port_not_in_utc() {
    let (_dir, c) = offline_console();
    let desk = viewer("bo", Role::ServiceDesk, &[]);
    let form = |dob: &str| ConsentForm {
        name: "Chan Siu Ming".into(),
        date_of_birth: dob.into(),
        category: "macao_resident".into(),
        document_kind: "mainland_travel_permit_hk_macao".into(),
        document_number: "H12345678".into(),
        valid_from: "2024-01-01".into(),
        valid_until: "2034-01-01".into(),
        guardian_name: "Chan Tai Man".into(),
        guardian_document: "Macao resident identity card 1234567(8)".into(),
        relationship_proof: "birth certificate B-998".into(),
        service_location: "1".into(),
    };
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("time")
            .timestamp_millis()
    };
    // Hengqin is UTC+8: 16:30 UTC on 5 December is 00:30 on 6 December there. Accepted by the
    // desk's checks = the write is tried (this port is unreachable); refused = `invalid`.
    let cases = [
        (
            "turns 14 at the port's midnight",
            "2012-12-06",
            "2026-12-05T16:30:00Z",
            "port_unreachable",
        ),
        (
            "13 until the port's midnight",
            "2012-12-06",
            "2026-12-05T15:59:00Z",
            "invalid",
        ),
        (
            "turns 18 at the port's midnight",
            "2008-12-06",
            "2026-12-05T16:30:00Z",
            "invalid",
        ),
        (
            "17 until the port's midnight",
            "2008-12-06",
            "2026-12-05T15:59:00Z",
            "port_unreachable",
        ),
    ];
    for (what, dob, now, want) in cases {
        let got = code(
            c.guardian_consent(&desk, "hengqin", &form(dob), "consent given", at(now))
                .await,
        );
        assert_eq!(got, want, "{what}");
    }
}

#[tokio::test]
async fn guardian_consent_is_for_minors_with_a_complete_form() {
    let (_dir, c) = offline_console();
    let desk = viewer("bo", Role::ServiceDesk, &[]);
    let today = Utc::now().date_naive();
    let born = |years: i32| format!("{}-01-01", today.year() - years);
    let good = ConsentForm {
        name: "Chan Siu Ming".into(),
        date_of_birth: born(15),
        category: "macao_resident".into(),
        document_kind: "mainland_travel_permit_hk_macao".into(),
        document_number: "H12345678".into(),
        valid_from: "2024-01-01".into(),
        valid_until: "2034-01-01".into(),
        guardian_name: "Chan Tai Man".into(),
        guardian_document: "Macao resident identity card 1234567(8)".into(),
        relationship_proof: "birth certificate B-998".into(),
        service_location: "1".into(),
    };
    let cases = [
        ("complete", good.clone(), "port_unreachable"),
        (
            "adult",
            ConsentForm {
                date_of_birth: born(30),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "too young",
            ConsentForm {
                date_of_birth: born(10),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "no date",
            ConsentForm {
                date_of_birth: "soon".into(),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "no guardian",
            ConsentForm {
                guardian_name: " ".into(),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "no proof",
            ConsentForm {
                relationship_proof: String::new(),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "no location",
            ConsentForm {
                service_location: "99".into(),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "validity backwards",
            ConsentForm {
                valid_until: "2020-01-01".into(),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "wrong document",
            ConsentForm {
                document_kind: "permit_hk_macao".into(),
                ..good.clone()
            },
            "invalid",
        ),
    ];
    for (what, form, want) in cases {
        let got = code(
            c.guardian_consent(&desk, "hengqin", &form, "consent given", now_ms())
                .await,
        );
        assert_eq!(got, want, "{what}");
    }
}

// ------------------------------------------------------------------ a real port cluster

/// A lane fixture: what node 3 reports for `hengqin/passenger/1` (the lane runtime itself is
/// tested in the node crate; here the console's reading of it is under test).
struct LaneFixture {
    acked: AtomicU64,
    alarm_since_ms: i64,
}

fn lane_status(f: &LaneFixture) -> LaneStatus {
    LaneStatus {
        channel: "hengqin/passenger/1".into(),
        step: "idle".into(),
        mode: clearway_gallery::ops::LaneMode::FaceAndCard,
        face_scan: true,
        fence: (1, 1),
        gates: ["closed".into(), "closed".into(), "closed".into()],
        occupancy: 0,
        held_for: None,
        cameras_up: [false, true],
        last_decision: None,
        alarms: vec![LaneAlarm {
            kind: "camera_down".into(),
            since: chrono::DateTime::from_timestamp_millis(f.alarm_since_ms).expect("time"),
        }],
        acked_order: f.acked.load(Ordering::SeqCst),
        clearances: 0,
        clearances_last_hour: 0,
        staleness_ms: 5,
        direction: "Macao → Hengqin".into(),
    }
}

async fn wait_until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < until, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_addr() -> std::net::SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("free UDP port");
    s.local_addr().expect("addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_action_against_a_three_node_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = PortCa::create("hengqin").expect("CA");
    let client = dir.path().join("console-bundle");
    ca.issue(
        &Identity::client("console").expect("name"),
        &clearway_node::net::Role::Console,
    )
    .expect("client")
    .save(&client)
    .expect("save");
    let mut seeds = BTreeMap::new();
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let addr = free_addr();
        let nd = dir.path().join(format!("node-{id}"));
        ca.issue(&Identity::Node(id), &clearway_node::net::Role::Voter)
            .expect("bundle")
            .save(&nd.join("tls"))
            .expect("save");
        let toml = format!(
            "node_id = {id}\nlisten = \"{addr}\"\ndata_dir = \"data\"\nkey_file = \"keys/node.keyring\"\ntls_dir = \"tls\"\n[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\nfsync = false\n"
        );
        std::fs::write(nd.join("node.toml"), toml).expect("config");
        let config = NodeConfig::from_file(&nd.join("node.toml")).expect("config parses");
        nodes.push(ClusterNode::start(&config).await.expect("node starts"));
        seeds.insert(id.to_string(), addr.to_string());
    }
    let fixture = Arc::new(LaneFixture {
        acked: AtomicU64::new(0),
        alarm_since_ms: 1_700_000_000_000,
    });
    let f = fixture.clone();
    nodes[2].attach_lane(
        "hengqin/passenger/1".into(),
        Arc::new(move || lane_status(&f)),
        Arc::new(|_| None),
    );

    let c = Arc::new(console(
        dir.path(),
        vec![port_config("hengqin", &client, seeds)],
    ));
    let admin = viewer("cy", Role::PortAdmin, &[]);
    let sup = viewer("ana", Role::Supervisor, &["hengqin"]);
    let desk = viewer("bo", Role::ServiceDesk, &[]);
    let now = now_ms;

    // Roll-out: the console initialises the cluster with the seed nodes as voters.
    let init = c
        .init_cluster(&admin, "hengqin", "first start of the port", now())
        .await
        .expect("init");
    assert_eq!(init.audit_seq, 0);
    crate::poller::spawn(c.clone(), c.port("hengqin").expect("port"));
    let snap = wait_until("the lane online and a leader", async || {
        let s = c.snapshot(&sup, "hengqin").ok()?;
        let online = s.channel("hengqin/passenger/1")?.state == ChannelState::Online;
        (online && s.leader.is_some()).then_some(s)
    })
    .await;
    assert_eq!(snap.members.len(), 3);
    assert!(
        snap.members
            .iter()
            .all(|m| m.membership == "voter" && m.reachable)
    );
    assert_eq!(
        snap.channel("hengqin/passenger/2").map(|c| c.state),
        Some(ChannelState::NotDeployed)
    );

    // An override: pending until the lane reports it carried it out.
    let order = c
        .lane_override(
            &sup,
            "hengqin",
            "hengqin/passenger/1",
            "gate2_lock",
            "tailgating\r\nat gate 2",
            now(),
        )
        .await
        .expect("override");
    assert_eq!(order.audit_seq, 1);
    let detail = wait_until("the order in the ledger", async || {
        let d = c.lane_detail(&sup, "hengqin", "passenger", "1").ok()?;
        d.orders.iter().any(|o| o.index == order.index).then_some(d)
    })
    .await;
    let o = detail
        .orders
        .iter()
        .find(|o| o.index == order.index)
        .expect("order");
    assert_eq!(o.action.code(), "gate2_lock");
    // The lane page's list says who gave it and why, from the port's audit trail.
    let recorded = c
        .lane_orders(&sup, "hengqin", "hengqin/passenger/1")
        .await
        .expect("recorded orders");
    let r = recorded
        .iter()
        .find(|r| r.order.index == order.index)
        .expect("the order is listed");
    assert_eq!(
        r.reason, "tailgating\nat gate 2",
        "line breaks kept, normalised"
    );
    assert!(r.actor.starts_with(&sup.name), "{}", r.actor);
    assert_eq!(r.role, "supervisor");
    assert!(
        detail
            .channel
            .lane
            .as_ref()
            .is_some_and(|l| l.acked_order < order.index),
        "pending"
    );
    fixture.acked.store(order.index, Ordering::SeqCst);
    wait_until("the lane's acknowledgement", async || {
        let s = c.snapshot(&sup, "hengqin").ok()?;
        let l = s.channel("hengqin/passenger/1")?.lane.clone()?;
        (l.acked_order >= order.index).then_some(())
    })
    .await;

    // An alarm acknowledgement, replicated.
    let alarm = snap
        .alarms
        .iter()
        .find(|a| a.kind == "camera_down")
        .expect("alarm")
        .clone();
    assert!(!alarm.acked);
    c.ack_alarm(
        &sup,
        "hengqin",
        &alarm.channel,
        &alarm.kind,
        alarm.since_ms,
        "camera crew called",
        now(),
    )
    .await
    .expect("ack");
    wait_until("the acknowledgement", async || {
        let s = c.snapshot(&sup, "hengqin").ok()?;
        s.alarms
            .iter()
            .any(|a| a.kind == "camera_down" && a.acked)
            .then_some(())
    })
    .await;

    // No reason, no change: nothing is written.
    let before = c.snapshot(&sup, "hengqin").expect("snapshot").audit_len;
    let e = c
        .lane_override(
            &sup,
            "hengqin",
            "hengqin/passenger/1",
            "release",
            "  ",
            now(),
        )
        .await
        .expect_err("no reason");
    assert_eq!(e.code(), "reason_required");

    // Face scan in stages, and back.
    c.stage_face_scan(
        &admin,
        "hengqin",
        "pilot",
        "passenger/1, passenger/2",
        "pilot week",
        now(),
    )
    .await
    .expect("pilot");
    wait_until("pilot modes", async || {
        let s = c.snapshot(&sup, "hengqin").ok()?;
        let modes: Vec<Option<LaneMode>> =
            s.halls[0].channels.iter().map(|c| c.desired_mode).collect();
        (modes
            == [
                Some(LaneMode::FaceAndCard),
                Some(LaneMode::FaceAndCard),
                Some(LaneMode::CardOnly),
                Some(LaneMode::CardOnly),
            ])
        .then_some(())
    })
    .await;
    c.stage_face_scan(
        &admin,
        "hengqin",
        "rollback",
        "",
        "pilot found glare at gate 1",
        now(),
    )
    .await
    .expect("rollback");
    wait_until("rolled back everywhere", async || {
        let s = c.snapshot(&sup, "hengqin").ok()?;
        s.halls
            .iter()
            .flat_map(|h| h.channels.iter())
            .all(|c| c.desired_mode == Some(LaneMode::CardOnly))
            .then_some(())
    })
    .await;

    // The service desk: a minor's guardian consent, the lookup, the cancellation.
    let today = Utc::now().date_naive();
    let form = ConsentForm {
        name: "Chan Siu Ming".into(),
        date_of_birth: format!("{}-01-01", today.year() - 15),
        category: "macao_resident".into(),
        document_kind: "mainland_travel_permit_hk_macao".into(),
        document_number: "h12345678".into(),
        valid_from: "2024-01-01".into(),
        valid_until: "2034-01-01".into(),
        guardian_name: "Chan Tai Man".into(),
        guardian_document: "Macao resident identity card 1234567(8)".into(),
        relationship_proof: "birth certificate B-998".into(),
        service_location: "1".into(),
    };
    let consent = c
        .guardian_consent(
            &desk,
            "hengqin",
            &form,
            "guardian present with birth certificate",
            now(),
        )
        .await
        .expect("consent");
    assert!(
        consent.summary.starts_with("enrolled as P"),
        "{}",
        consent.summary
    );
    let found = wait_until("the registration on the replicas", async || {
        c.find_registration(
            &desk,
            "hengqin",
            "mainland_travel_permit_hk_macao",
            "H12345678",
        )
        .await
        .ok()
        .flatten()
    })
    .await;
    assert_eq!(found.status, "active");
    assert_eq!(
        found.guardian_consent.as_ref().map(|g| g.0.as_str()),
        Some("Chan Tai Man (Macao resident identity card 1234567(8))")
    );
    let wrong_kind = ConsentForm {
        document_kind: "permit_hk_macao".into(),
        ..form.clone()
    };
    let e = c
        .guardian_consent(&desk, "hengqin", &wrong_kind, "r", now())
        .await
        .expect_err("mismatch");
    assert_eq!(e.code(), "invalid", "{e}");
    // Seed 000: in person at a service location, with the minor's own identity document and a
    // guardian with proof of relationship. Without any of them the desk refuses.
    let evidence = CancelEvidence {
        service_location: "1".into(),
        document_kind: "mainland_travel_permit_hk_macao".into(),
        document_number: "H12345678".into(),
        guardian_name: "Chan Tai Man".into(),
        guardian_document: "Macao resident identity card 1234567(8)".into(),
        relationship_proof: "birth certificate 2010/123".into(),
    };
    for (why, bad) in [
        (
            "no service location",
            CancelEvidence {
                service_location: String::new(),
                ..evidence.clone()
            },
        ),
        (
            "another document than the registration's",
            CancelEvidence {
                document_number: "H87654321".into(),
                ..evidence.clone()
            },
        ),
        (
            "a minor without a guardian",
            CancelEvidence {
                guardian_name: String::new(),
                ..evidence.clone()
            },
        ),
        (
            "a minor without proof of relationship",
            CancelEvidence {
                relationship_proof: " ".into(),
                ..evidence.clone()
            },
        ),
    ] {
        let e = c
            .cancel_registration(&desk, "hengqin", &found.person, &bad, "in person", now())
            .await
            .expect_err(why);
        assert_eq!(e.code(), "invalid", "{why}: {e}");
    }
    let cancel = c
        .cancel_registration(
            &desk,
            "hengqin",
            &found.person,
            &evidence,
            "cancelled in person at Qingmao",
            now(),
        )
        .await
        .expect("cancel");
    let done = wait_until("every replica erased the person", async || {
        let p = c
            .cancel_progress(&desk, "hengqin", cancel.index)
            .await
            .ok()?;
        p.complete.then_some(p)
    })
    .await;
    assert_eq!(done.replicas.len(), 3);
    assert!(done.replicas.iter().all(|r| r.applied && r.shredded));
    let gone = c
        .find_registration(
            &desk,
            "hengqin",
            "mainland_travel_permit_hk_macao",
            "H12345678",
        )
        .await
        .expect("lookup");
    assert!(
        gone.as_ref().is_none_or(|r| r.status == "cancelled"),
        "{gone:?}"
    );

    // The audit trail holds every change, in order, and verifies.
    let audit = c.audit(&sup, "hengqin").await.expect("audit");
    assert_eq!(audit.break_at, None);
    let trail: Vec<String> = audit
        .records
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} by {} ({})",
                r.seq, r.action, r.target, r.reason, r.actor, r.role
            )
        })
        .collect();
    expect_test::expect![[r#"
        0 cluster.init hengqin first start of the port by cy@console (port_admin)
        1 order.gate2_lock hengqin/passenger/1 tailgating
        at gate 2 by ana@console (supervisor)
        2 ack_alarm.camera_down hengqin/passenger/1 camera crew called by ana@console (supervisor)
        3 set_mode.face_and_card hengqin pilot week by cy@console (port_admin)
        4 set_mode.card_only hengqin pilot found glare at gate 1 by cy@console (port_admin)
        5 guardian_consent hengqin (erased with the person's registration) by bo@console (service_desk)
        6 cancel P00000001 (erased with the person's registration) by bo@console (service_desk)"#]]
    .assert_eq(&trail.join("\n"));
    assert_eq!(before, 3, "the reasonless override wrote nothing");
    assert!(
        !trail.join(" ").contains("H12345678"),
        "a document number never enters the audit trail"
    );

    // A changed record breaks the chain, and the page says where.
    let port = c.port("hengqin").expect("port");
    let nodes_map = port.nodes();
    let client_api = &port.api;
    let records = {
        let view = client_api.audit(&nodes_map, None).await.expect("audit");
        view.records
    };
    assert_eq!(records.len(), 7);
    let mut raw = clearway_node::cluster::ClusterClient::new(
        &clearway_node::net::tls::Bundle::load(&client).expect("bundle"),
        nodes_map.clone(),
    )
    .expect("client")
    .audit_trail(1)
    .await
    .expect("trail");
    raw[2].entry.action = "nothing happened".into();
    let verifier = clearway_node::net::signing::AuditVerifier::new(
        &clearway_node::net::tls::Bundle::load(&client).expect("bundle"),
    )
    .expect("verifier");
    let tampered = crate::port_api::audit_view("hengqin", 1, &raw, 7, &verifier, 480);
    let (seq, why) = tampered.break_at.expect("break found");
    assert_eq!(seq, 2);
    assert!(why.contains("hash"), "{why}");

    // Retiring an appliance: an audited revocation every node applies.
    c.retire_appliance(
        &admin,
        "hengqin",
        "9",
        "lane appliance taken from hall 1",
        now(),
    )
    .await
    .expect("retire");
    let raw = clearway_node::cluster::ClusterClient::new(
        &clearway_node::net::tls::Bundle::load(&client).expect("bundle"),
        nodes_map.clone(),
    )
    .expect("client");
    let last = raw.audit_trail(1).await.expect("trail");
    let record = last.last().expect("a record");
    assert_eq!(
        (record.entry.action.as_str(), record.entry.target.as_str()),
        ("cluster.retire", "hengqin/node-9")
    );
    for id in 1..=3u64 {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let m = raw.metrics(id).await.expect("metrics");
            if m.contains("clearway_cluster_revoked_certificates 1") {
                break;
            }
            assert!(
                std::time::Instant::now() < until,
                "node {id} never applied the revocation"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    for n in &nodes {
        n.shutdown().await;
    }
}
