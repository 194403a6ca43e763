//! A rogue device on the gate network (issue 16): Modbus TCP has no authentication, so anyone
//! who reaches the controller can write a command under a forged fencing token — `u64::MAX` —
//! and the controller would refuse every command of the lane from then on. Real processes and
//! real sockets: the lane notices a fence it never issued, raises `foreign_fence`, and starts no
//! passage (face or card) until a technician resets the controller's fence at the cabinet;
//! then a registered traveller passes by face again.
//!
//! The lane here speaks plain Modbus TCP to its controller, as at a port whose controllers do not
//! support Modbus/TCP Security; the other lane tests run over Modbus/TCP Security, where the same
//! rogue device gets no frame read (`node/src/lane/gate/tests.rs`).

use std::time::{Duration, Instant};

use clearway_node::lane::camera::sim::Scene;
use clearway_node::lane::gate::{GateController, ModbusGates, ModbusGatesConfig};
use clearway_node::lane::procedure::{Fence, GateAction, GateCommand, GateId};
use clearway_tests::lane::{rig_plain_modbus, wait_lane_api};
use clearway_tests::photo;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_fence_on_the_gate_network_stops_passages_until_reset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = rig_plain_modbus(dir.path()).await;
    rig.enrol_macao_adult("M10000001", "OBAMA, BARACK", "face_recognition/obama.jpg")
        .await;
    wait_lane_api(&rig).await;
    // The lane's replica is fresh before the attack (face scan on).
    let deadline = Instant::now() + Duration::from_secs(30);
    while rig.status()["view"]["face_scan"] != true {
        assert!(Instant::now() < deadline, "face scan never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The rogue device: a plain Modbus TCP client on the gate network.
    let mut rogue = ModbusGates::new(ModbusGatesConfig::new(rig.lane.gates.addr()));
    rogue
        .command(GateCommand {
            gate: GateId::Two,
            action: GateAction::Close,
            fence: Fence {
                term: u64::MAX,
                index: u64::MAX,
            },
        })
        .await
        .expect("the controller accepts it: Modbus TCP has no authentication");
    rig.wait_event("alarm", "foreign_fence", Duration::from_secs(10))
        .await;
    assert_eq!(rig.status()["view"]["foreign_fence"], true);

    // A registered traveller is not let in; neither is a card.
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    rig.wait_event("decision", "refused", Duration::from_secs(30))
        .await;
    rig.wait_screen("lane_closed", Duration::from_secs(5)).await;
    assert_eq!(
        rig.lane.gates.state(GateId::One),
        clearway_node::lane::procedure::GateState::Closed
    );
    rig.show(Scene::Empty);

    // The technician resets the controller at the cabinet: the lane's tokens count again.
    rig.lane.gates.reset_fence();
    let deadline = Instant::now() + Duration::from_secs(10);
    while rig.status()["view"]["foreign_fence"] != false {
        assert!(Instant::now() < deadline, "the lane did not see the reset");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    let e = rig
        .wait_event("decision", "admitted", Duration::from_secs(30))
        .await;
    assert!(e["detail"].as_str().unwrap_or("").contains("face"), "{e}");
}
