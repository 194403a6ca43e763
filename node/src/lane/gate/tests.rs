//! The gate client against the gate simulator and against misbehaving servers, over real sockets.

use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_modbus::client::{Client, tcp};
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_modbus::{ExceptionCode, Request, Response, Slave, SlaveRequest};

use super::registers;
use super::*;
use crate::lane::device_tls::test_network;
use crate::lane::procedure::{Fence, GateAction, GateCommand, GateId, GateState};

const LOCAL: &str = "127.0.0.1:0";
/// How long a test waits for a condition before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

fn local() -> SocketAddr {
    LOCAL.parse().expect("address")
}

fn fence(term: u64, index: u64) -> Fence {
    Fence { term, index }
}

fn cmd(gate: GateId, action: GateAction, f: Fence) -> GateCommand {
    GateCommand {
        gate,
        action,
        fence: f,
    }
}

fn sim_config(travel_ms: u64, hold_open_ms: u64) -> GateSimConfig {
    GateSimConfig {
        travel_ms,
        hold_open_ms,
        ..GateSimConfig::default()
    }
}

fn client(addr: SocketAddr) -> ModbusGates {
    ModbusGates::new(ModbusGatesConfig {
        timeout_ms: 2000,
        ..ModbusGatesConfig::new(addr)
    })
}

/// Polls the client's status until `pred` holds; fails the test after [`PATIENCE`].
async fn wait_status(
    gates: &mut ModbusGates,
    what: &str,
    pred: impl Fn(&LaneGates) -> bool,
) -> LaneGates {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        match gates.status().await {
            Ok(s) if pred(&s) => return s,
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}; last status {last:?}");
}

fn state_is(gate: GateId, state: GateState) -> impl Fn(&LaneGates) -> bool {
    move |s| s.gate(gate).state == state
}

#[tokio::test]
async fn command_round_trip_reaches_the_simulator_and_status_sees_it() {
    let sim = GateSimulator::start(local(), sim_config(50, 60_000))
        .await
        .expect("simulator");
    let mut gates = client(sim.addr());
    let before = gates.status().await.expect("status");
    assert!(before.gates.iter().all(|g| g.state == GateState::Closed));
    assert_eq!(before.fence, Fence::default());

    gates
        .command(cmd(GateId::One, GateAction::Open, fence(1, 1)))
        .await
        .expect("open gate 1");
    let s = wait_status(
        &mut gates,
        "gate 1 open",
        state_is(GateId::One, GateState::Open),
    )
    .await;
    assert_eq!(s.fence, fence(1, 1));
    assert_eq!(s.gate(GateId::One).fence, fence(1, 1));
    assert_eq!(s.gate(GateId::One).last_action, Some(GateAction::Open));
    assert_eq!(s.gate(GateId::Two).state, GateState::Closed);
    assert_eq!(sim.state(GateId::One), GateState::Open);

    gates
        .command(cmd(GateId::One, GateAction::Close, fence(1, 2)))
        .await
        .expect("close gate 1");
    wait_status(
        &mut gates,
        "gate 1 closed",
        state_is(GateId::One, GateState::Closed),
    )
    .await;
    assert_eq!(sim.status().fence, fence(1, 2));
}

#[tokio::test]
async fn an_open_gate_closes_by_itself() {
    let sim = GateSimulator::start(local(), sim_config(20, 150))
        .await
        .expect("simulator");
    let mut gates = client(sim.addr());
    gates
        .command(cmd(GateId::Three, GateAction::Open, fence(1, 1)))
        .await
        .expect("open gate 3");
    wait_status(
        &mut gates,
        "gate 3 open",
        state_is(GateId::Three, GateState::Open),
    )
    .await;
    // Nobody sends Close: the hold-open time runs out.
    wait_status(
        &mut gates,
        "gate 3 closed again",
        state_is(GateId::Three, GateState::Closed),
    )
    .await;
}

#[tokio::test]
async fn a_locked_gate_refuses_open_until_unlocked() {
    let sim = GateSimulator::start(local(), sim_config(20, 60_000))
        .await
        .expect("simulator");
    let mut gates = client(sim.addr());
    let f = fence(2, 1);
    gates
        .command(cmd(GateId::Two, GateAction::Open, f))
        .await
        .expect("open gate 2");
    wait_status(
        &mut gates,
        "gate 2 open",
        state_is(GateId::Two, GateState::Open),
    )
    .await;
    gates
        .command(cmd(GateId::Two, GateAction::Lock, f))
        .await
        .expect("lock gate 2");
    wait_status(
        &mut gates,
        "gate 2 locked",
        state_is(GateId::Two, GateState::Locked),
    )
    .await;

    let err = gates
        .command(cmd(GateId::Two, GateAction::Open, f))
        .await
        .expect_err("open on a locked gate");
    assert_eq!(
        err,
        GateError::Refused {
            gate: GateId::Two,
            action: GateAction::Open,
            state: Some(GateState::Locked)
        }
    );
    assert_eq!(err.code(), "refused");
    assert_eq!(sim.state(GateId::Two), GateState::Locked);
    // Refusing a locked gate is not a stale refusal.
    assert_eq!(sim.status().refused_stale, 0);

    gates
        .command(cmd(GateId::Two, GateAction::Unlock, f))
        .await
        .expect("unlock");
    assert_eq!(sim.state(GateId::Two), GateState::Closed);
    gates
        .command(cmd(GateId::Two, GateAction::Open, f))
        .await
        .expect("open after unlock");
    wait_status(
        &mut gates,
        "gate 2 open again",
        state_is(GateId::Two, GateState::Open),
    )
    .await;
}

#[tokio::test]
async fn stale_fences_are_refused_and_counted() {
    let sim = GateSimulator::start(local(), sim_config(20, 60_000))
        .await
        .expect("simulator");
    let mut gates = client(sim.addr());
    gates
        .command(cmd(GateId::One, GateAction::Close, fence(3, 5)))
        .await
        .expect("first command");

    // (gate, fence, accepted?) in order; the controller's fence only goes up.
    let cases = [
        (GateId::Two, fence(3, 5), true), // equal: same issuer, another command
        (GateId::Three, fence(2, 9), false), // lower term, higher index
        (GateId::One, fence(3, 4), false), // same term, lower index
        (GateId::Two, fence(0, 0), false),
        (GateId::Three, fence(3, 6), true), // higher index
        (GateId::One, fence(3, 5), false),  // was fine, is stale now
        (GateId::Two, fence(4, 0), true),   // higher term, lower index
        (GateId::Three, fence(3, u64::MAX), false),
        (GateId::One, fence(u64::MAX, u64::MAX), true),
        (GateId::Two, fence(u64::MAX, u64::MAX - 1), false),
    ];
    let mut highest = fence(3, 5);
    let mut refused = 0;
    for (gate, f, accepted) in cases {
        let result = gates.command(cmd(gate, GateAction::Close, f)).await;
        if accepted {
            assert_eq!(result, Ok(()), "{gate} @{f}");
            highest = f;
        } else {
            let err = result.expect_err("stale");
            assert_eq!(
                err,
                GateError::Stale {
                    gate,
                    fence: f,
                    accepted: Some(highest)
                },
                "{gate} @{f}"
            );
            assert_eq!(err.code(), "stale");
            refused += 1;
        }
        let s = gates.status().await.expect("status");
        assert_eq!(
            (s.fence, s.refused_stale),
            (highest, refused),
            "after {gate} @{f}"
        );
    }
    assert_eq!(sim.status().refused_stale, refused);
    assert_eq!(refused, 6);
}

#[tokio::test]
async fn an_unreachable_controller_is_a_clear_error_in_bounded_time() {
    // A port nobody listens on: refused at once.
    let closed = {
        let l = TcpListener::bind(LOCAL).await.expect("bind");
        l.local_addr().expect("addr")
    };
    let mut gates = ModbusGates::new(ModbusGatesConfig {
        timeout_ms: 300,
        ..ModbusGatesConfig::new(closed)
    });
    let err = tokio::time::timeout(PATIENCE, gates.status())
        .await
        .expect("bounded")
        .expect_err("nobody listens");
    assert_eq!(err.code(), "unreachable", "{err}");
    assert!(err.to_string().contains(&closed.to_string()), "{err}");

    // A server that accepts and never answers: the request times out.
    let silent = TcpListener::bind(LOCAL).await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut gates = ModbusGates::new(ModbusGatesConfig {
        timeout_ms: 300,
        ..ModbusGatesConfig::new(silent_addr)
    });
    let err = tokio::time::timeout(
        PATIENCE,
        gates.command(cmd(GateId::One, GateAction::Open, fence(1, 1))),
    )
    .await
    .expect("bounded")
    .expect_err("no answer");
    assert_eq!(
        err,
        GateError::Timeout {
            addr: silent_addr,
            after: Duration::from_millis(300)
        }
    );
}

#[tokio::test]
async fn the_client_reconnects_to_a_restarted_simulator() {
    let sim = GateSimulator::start(local(), sim_config(20, 60_000))
        .await
        .expect("simulator");
    let addr = sim.addr();
    let mut gates = client(addr);
    gates
        .command(cmd(GateId::One, GateAction::Open, fence(5, 1)))
        .await
        .expect("before restart");
    let last = sim.shutdown().await;
    assert_eq!(last.fence, fence(5, 1));

    let err = gates.status().await.expect_err("simulator is down");
    assert!(
        ["io", "unreachable", "timeout"].contains(&err.code()),
        "{err}"
    );

    // The controller remembers its fence across the restart (retentive memory).
    let sim = GateSimulator::start(
        addr,
        GateSimConfig {
            initial_fence: last.fence,
            ..sim_config(20, 60_000)
        },
    )
    .await
    .expect("restarted simulator on the same address");
    let s = gates.status().await.expect("reconnected");
    assert_eq!(s.fence, fence(5, 1));
    assert_eq!(s.gate(GateId::One).state, GateState::Closed);
    let err = gates
        .command(cmd(GateId::One, GateAction::Open, fence(4, 9)))
        .await
        .expect_err("still stale after the restart");
    assert_eq!(err.code(), "stale");
    gates
        .command(cmd(GateId::One, GateAction::Open, fence(5, 1)))
        .await
        .expect("after restart");
    assert_eq!(sim.state(GateId::One), GateState::Moving);
}

#[tokio::test]
async fn malformed_requests_get_exceptions_and_the_server_keeps_serving() {
    let sim = GateSimulator::start(local(), sim_config(20, 60_000))
        .await
        .expect("simulator");
    let mut raw = tcp::connect_slave(sim.addr(), Slave(1))
        .await
        .expect("connect");
    let (_, words) = registers::encode_command(cmd(GateId::One, GateAction::Open, fence(1, 1)));
    let w = |words: &[u16]| std::borrow::Cow::Owned(words.to_vec());
    let cases: Vec<(Request<'static>, ExceptionCode)> = vec![
        (
            Request::WriteMultipleRegisters(16, w(&words[..8])),
            ExceptionCode::IllegalDataAddress,
        ),
        (
            Request::WriteMultipleRegisters(18, w(&words)),
            ExceptionCode::IllegalDataAddress,
        ),
        (
            Request::WriteMultipleRegisters(64, w(&words)),
            ExceptionCode::IllegalDataAddress,
        ),
        (
            Request::WriteSingleRegister(24, 1),
            ExceptionCode::IllegalDataAddress,
        ),
        (
            Request::WriteMultipleRegisters(32, w(&[0, 0, 0, 1, 0, 0, 0, 1, 0])),
            ExceptionCode::IllegalDataValue,
        ),
        (
            Request::ReadInputRegisters(60, 10),
            ExceptionCode::IllegalDataAddress,
        ),
        (
            Request::ReadInputRegisters(0, 126),
            ExceptionCode::IllegalDataValue,
        ),
        (
            Request::ReadHoldingRegisters(500, 1),
            ExceptionCode::IllegalDataAddress,
        ),
        (Request::ReadCoils(0, 8), ExceptionCode::IllegalFunction),
        (
            Request::WriteSingleCoil(0, true),
            ExceptionCode::IllegalFunction,
        ),
    ];
    for (req, want) in cases {
        let dbg = format!("{req:?}");
        let got = raw.call(req).await.expect("transport");
        assert_eq!(got, Err(want), "{dbg}");
    }
    // Same connection, still served.
    let got = raw
        .call(Request::ReadInputRegisters(0, registers::STATUS_LEN))
        .await
        .expect("transport")
        .expect("status read");
    let Response::ReadInputRegisters(words) = got else {
        panic!("unexpected {got:?}");
    };
    let s = registers::decode_status(&words).expect("status");
    assert_eq!((s.fence, s.refused_stale), (Fence::default(), 0));

    // Garbage that is not Modbus at all ends that connection only.
    let mut junk = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    junk.write_all(b"\x00\x01\x77\x77\x00\x03\x01\x03\x00GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    let mut gates = client(sim.addr());
    gates
        .command(cmd(GateId::One, GateAction::Open, fence(1, 1)))
        .await
        .expect("a good client is still served");
    assert!(raw.call(Request::ReadInputRegisters(0, 1)).await.is_ok());
}

#[tokio::test]
async fn wrong_unit_id_is_a_protocol_error() {
    let sim = GateSimulator::start(local(), sim_config(20, 60_000))
        .await
        .expect("simulator");
    let mut gates = ModbusGates::new(ModbusGatesConfig {
        unit_id: 7,
        timeout_ms: 2000,
        ..ModbusGatesConfig::new(sim.addr())
    });
    let err = gates.status().await.expect_err("unit 7 is not there");
    assert_eq!(err.code(), "protocol", "{err}");
    let err = gates
        .command(cmd(GateId::One, GateAction::Open, fence(1, 1)))
        .await
        .expect_err("unit 7 is not there");
    assert_eq!(err.code(), "protocol", "{err}");
    assert_eq!(sim.state(GateId::One), GateState::Closed);
}

#[tokio::test]
async fn simulator_controls_over_the_handle_and_over_modbus() {
    let sim = GateSimulator::start(local(), sim_config(20, 60_000))
        .await
        .expect("simulator");
    let mut gates = client(sim.addr());

    sim.set_occupancy(2);
    sim.record_passage(GateId::One);
    sim.record_passage(GateId::One);
    let s = gates.status().await.expect("status");
    assert_eq!(s.zone_occupancy, 2);
    assert_eq!(s.gate(GateId::One).passages, 2);

    // The demo walker's registers.
    gates.simulator_set_occupancy(1).await.expect("occupancy");
    gates
        .simulator_record_passage(GateId::Three)
        .await
        .expect("passage");
    let s = gates.status().await.expect("status");
    assert_eq!(s.zone_occupancy, 1);
    assert_eq!(s.gate(GateId::Three).passages, 1);
    assert_eq!(sim.status().zone_occupancy, 1);

    sim.inject_fault(GateId::Two);
    let err = gates
        .command(cmd(GateId::Two, GateAction::Open, fence(1, 1)))
        .await
        .expect_err("faulted gate");
    assert_eq!(
        err,
        GateError::Refused {
            gate: GateId::Two,
            action: GateAction::Open,
            state: Some(GateState::Fault)
        }
    );
    sim.clear_fault(GateId::Two);
    gates
        .command(cmd(GateId::Two, GateAction::Open, fence(1, 1)))
        .await
        .expect("cleared");
}

/// A "controller" whose answers are wrong in one way each.
#[derive(Clone, Copy)]
enum Liar {
    ShortStatus,
    WrongEcho,
    BadState,
    /// IllegalDataValue for a command whose fence is not stale.
    FalseStale,
}

impl Service for Liar {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: SlaveRequest<'static>) -> Self::Future {
        let mut status = registers::encode_status(&LaneGates {
            gates: GateId::ALL.map(|gate| GateStatus {
                gate,
                state: GateState::Closed,
                fence: Fence::default(),
                passages: 0,
                last_action: None,
            }),
            fence: fence(1, 1),
            zone_occupancy: 0,
            refused_stale: 0,
        });
        ready(match (self, req.request) {
            (Liar::ShortStatus, Request::ReadInputRegisters(..)) => {
                Ok(Response::ReadInputRegisters(status[..10].to_vec()))
            }
            (Liar::BadState, Request::ReadInputRegisters(..)) => {
                status[16] = 42;
                Ok(Response::ReadInputRegisters(status.to_vec()))
            }
            (_, Request::ReadInputRegisters(..)) => {
                Ok(Response::ReadInputRegisters(status.to_vec()))
            }
            (Liar::WrongEcho, Request::WriteMultipleRegisters(addr, _)) => {
                Ok(Response::WriteMultipleRegisters(addr, 3))
            }
            (Liar::FalseStale, Request::WriteMultipleRegisters(..)) => {
                Err(ExceptionCode::IllegalDataValue)
            }
            (_, Request::WriteMultipleRegisters(addr, w)) => {
                Ok(Response::WriteMultipleRegisters(addr, w.len() as u16))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

async fn serve_liar(liar: Liar) -> SocketAddr {
    let listener = TcpListener::bind(LOCAL).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let on_connected = move |stream, peer| async move {
            accept_tcp_connection(stream, peer, |_| Ok(Some(Arc::new(liar))))
        };
        let _ = Server::new(listener).serve(&on_connected, |_| {}).await;
    });
    addr
}

#[tokio::test]
async fn replies_that_break_the_map_are_protocol_errors() {
    let status_cases = [
        (Liar::ShortStatus, "expected 64 registers, got 10"),
        (Liar::BadState, "unknown gate state code 42"),
    ];
    for (liar, want) in status_cases {
        let mut gates = client(serve_liar(liar).await);
        let err = gates.status().await.expect_err("bad status");
        assert_eq!(err.code(), "protocol");
        assert!(err.to_string().contains(want), "{err}");
    }
    let command_cases = [
        (Liar::WrongEcho, "answered WriteMultipleRegisters(16, 3)"),
        (Liar::FalseStale, "has only accepted 1.1"),
    ];
    for (liar, want) in command_cases {
        let mut gates = client(serve_liar(liar).await);
        let err = gates
            .command(cmd(GateId::One, GateAction::Open, fence(2, 0)))
            .await
            .expect_err("bad reply");
        assert_eq!(err.code(), "protocol");
        assert!(err.to_string().contains(want), "{err}");
    }
    // The honest parts of a liar still work (the client reconnected after each protocol error).
    let mut gates = client(serve_liar(Liar::WrongEcho).await);
    assert!(gates.status().await.is_ok());
    assert!(
        gates
            .command(cmd(GateId::One, GateAction::Open, fence(2, 0)))
            .await
            .is_err()
    );
    assert!(gates.status().await.is_ok());
}

#[test]
fn config_defaults_and_validation() {
    let c: ModbusGatesConfig =
        toml::from_str(r#"address = "10.1.12.20:502""#).expect("minimal config");
    assert_eq!((c.unit_id, c.timeout_ms), (1, 1000));
    assert!(c.validate().is_ok());
    assert!(toml::from_str::<ModbusGatesConfig>("address = \"10.1.12.20:502\"\nport = 1").is_err());
    let c = ModbusGatesConfig { timeout_ms: 0, ..c };
    assert!(c.validate().is_err());
    let s: GateSimConfig = toml::from_str("").expect("defaults");
    assert_eq!(s, GateSimConfig::default());
    assert_eq!((s.travel_ms, s.hold_open_ms), (300, 2000));
}

fn tls_client(addr: SocketAddr, tls: ModbusTlsConfig) -> ModbusGates {
    ModbusGates::new(ModbusGatesConfig {
        timeout_ms: 2000,
        tls: Some(tls),
        ..ModbusGatesConfig::new(addr)
    })
}

/// Modbus/TCP Security: the rogue device of the plain-Modbus attack (a forged `u64::MAX` fence)
/// gets no frame read, nor does a device whose certificate another CA issued; a lane that does
/// not trust the controller's CA does not talk to it. The lane with its certificate commands
/// the gates as over plain Modbus TCP.
#[tokio::test]
async fn modbus_tcp_security_admits_only_certificates_of_the_gate_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lane_role = Some(crate::lane::device_tls::LANE_ROLE);
    let (server, tls) = test_network(&dir.path().join("port"), lane_role);
    let (_, elsewhere) = test_network(&dir.path().join("elsewhere"), lane_role);
    let sim = GateSimulator::start_tls(local(), sim_config(20, 60_000), server)
        .await
        .expect("simulator");

    let mut lane = tls_client(sim.addr(), tls.clone());
    lane.command(cmd(GateId::One, GateAction::Open, fence(3, 7)))
        .await
        .expect("the lane commands over TLS");
    wait_status(&mut lane, "gate 1 open", |s| {
        s.gate(GateId::One).state == GateState::Open
    })
    .await;

    // Plain Modbus TCP to the TLS port: refused, nothing written.
    let forged = cmd(GateId::Two, GateAction::Close, fence(u64::MAX, u64::MAX));
    let err = client(sim.addr())
        .command(forged)
        .await
        .expect_err("plain Modbus is not spoken here");
    assert!(
        matches!(err.code(), "io" | "timeout" | "unreachable" | "protocol"),
        "{err}"
    );
    // TLS with a certificate from another CA (trusting ours): refused at the handshake.
    let stranger = ModbusTlsConfig {
        ca_cert: tls.ca_cert.clone(),
        ..elsewhere.clone()
    };
    let err = tls_client(sim.addr(), stranger)
        .command(forged)
        .await
        .expect_err("a stranger's certificate");
    assert!(
        matches!(err.code(), "io" | "timeout" | "unreachable" | "protocol"),
        "{err}"
    );
    // The lane does not talk to a controller its CA did not certify.
    let wary = ModbusTlsConfig {
        ca_cert: elsewhere.ca_cert.clone(),
        ..tls.clone()
    };
    let err = tls_client(sim.addr(), wary)
        .status()
        .await
        .expect_err("an uncertified controller");
    assert_eq!(err.code(), "unreachable", "{err}");
    assert!(err.to_string().contains("handshake"), "{err}");

    // The controller's fence is still the lane's.
    assert_eq!(sim.status().fence, fence(3, 7));
    assert_eq!(
        lane.status().await.expect("status").fence,
        fence(3, 7),
        "the lane still commands"
    );

    // Files that are not a usable configuration: a clear error, no panic.
    let broken = ModbusTlsConfig {
        client_key: tls.client_cert.clone(),
        ..tls.clone()
    };
    let err = tls_client(sim.addr(), broken)
        .status()
        .await
        .expect_err("a certificate given as the key");
    assert!(err.to_string().contains("client.pem"), "{err}");
}

/// Modbus/TCP Security's roles: a certificate of the gate network's CA whose role is not the
/// lane's (a maintenance laptop's), or that names none, reads the controller's status but may
/// not command a gate or move the fence; the lane's role may (the test above).
#[tokio::test]
async fn only_the_lanes_role_may_write_to_the_controller() {
    let dir = tempfile::tempdir().expect("tempdir");
    for role in [Some("maintenance"), None] {
        let (server, tls) = test_network(&dir.path().join(role.unwrap_or("none")), role);
        let sim = GateSimulator::start_tls(local(), sim_config(20, 60_000), server)
            .await
            .expect("simulator");
        let mut laptop = tls_client(sim.addr(), tls);
        let before = laptop.status().await.expect("the status may be read");
        let err = laptop
            .command(cmd(
                GateId::One,
                GateAction::Open,
                fence(u64::MAX, u64::MAX),
            ))
            .await
            .expect_err("no write without the lane's role");
        assert!(!err.to_string().is_empty());
        assert_eq!(
            sim.status().fence,
            before.fence,
            "{role:?}: the fence moved"
        );
        assert_eq!(
            sim.status().gate(GateId::One).state,
            GateState::Closed,
            "{role:?}: gate 1 moved"
        );
    }
}
