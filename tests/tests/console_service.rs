//! The console's service layer (`clearway_console::service::Console`, what every page and
//! server function calls) against a real three-node port cluster running in this process: every
//! action a supervisor, a service-desk officer or a port admin can take, over the console's own
//! mutual-TLS client. It lives here, not in the console crate, because the console does not
//! depend on the node (ARCHITECTURE.md, "layers"): a change in the node rebuilds this file only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{Datelike, Utc};
use clearway_console::auth::now_ms;
use clearway_console::dto::{ChannelState, LaneMode, Role};
use clearway_console::service::{CancelEvidence, ConsentForm};
use clearway_console::testing::{console, port_config, viewer};
use clearway_node::cluster::{ClusterNode, NodeConfig};
use clearway_wire::net::Identity;
use clearway_wire::net::tls::PortCa;
use clearway_wire::protocol::{LaneAlarm, LaneStatus};

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
        pad: "observe".into(),
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
    clearway_tests::port::free_addr().expect("free loopback port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_action_against_a_three_node_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = PortCa::create("hengqin").expect("CA");
    let client = dir.path().join("console-bundle");
    ca.issue(
        &Identity::client("console").expect("name"),
        &clearway_wire::net::Role::Console,
    )
    .expect("client")
    .save(&client)
    .expect("save");
    let mut seeds = BTreeMap::new();
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let addr = free_addr();
        let nd = dir.path().join(format!("node-{id}"));
        ca.issue(&Identity::Node(id), &clearway_wire::net::Role::Voter)
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
    clearway_console::poller::spawn(c.clone(), c.port("hengqin").expect("port"));
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
    let lane = wait_until("the lane's acknowledgement", async || {
        let s = c.snapshot(&sup, "hengqin").ok()?;
        let l = s.channel("hengqin/passenger/1")?.lane.clone()?;
        (l.acked_order >= order.index).then_some(l)
    })
    .await;
    // The lane's PAD mode reaches the console as the lane reports it (the lane page shows it).
    assert_eq!(lane.pad, "observe");

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
    let mut raw = clearway_wire::ClusterClient::new(
        &clearway_wire::net::tls::Bundle::load(&client).expect("bundle"),
        nodes_map.clone(),
    )
    .expect("client")
    .audit_trail(1)
    .await
    .expect("trail");
    raw[2].entry.action = "nothing happened".into();
    let verifier = clearway_wire::net::signing::AuditVerifier::new(
        &clearway_wire::net::tls::Bundle::load(&client).expect("bundle"),
    )
    .expect("verifier");
    let tampered = clearway_console::port_api::audit_view("hengqin", 1, &raw, 7, &verifier, 480);
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
    let raw = clearway_wire::ClusterClient::new(
        &clearway_wire::net::tls::Bundle::load(&client).expect("bundle"),
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
