//! [`GateSimulator`]: a **simulated** gate controller — a real Modbus TCP server (tokio-modbus)
//! serving the register map of the [`gate`](super) module over the sans-IO [`SimLane`].
//!
//! It stands in for the PLC in demos and tests; every log line it writes says "simulator".
//! [`GateSimulator::start_tls`] serves Modbus/TCP Security instead: mutual TLS, a client
//! certificate from the configured CA required before any Modbus frame is read.

use std::future::{Ready, ready};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tracing::{debug, info, warn};

use super::model::SimLane;
use super::registers;
use super::{GateSimConfig, LaneGates};
use crate::lane::procedure::{GateId, GateState};

/// How long a client has for its TLS handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(2);

pub use crate::lane::device_tls::sim_tls_config;
use crate::lane::device_tls::{LANE_ROLE, modbus_role};

/// How often the simulator moves its gates on and logs what changed (commands and reads move
/// them too, exactly to the moment they arrive).
const TICK: Duration = Duration::from_millis(20);

type Shared = Arc<Mutex<SimLane>>;

fn lock(lane: &Shared) -> MutexGuard<'_, SimLane> {
    // The lane has no invariant a panicking holder could break half-way.
    lane.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A simulated gate controller (three gates, light curtains, counters) on Modbus TCP.
#[derive(Debug)]
pub struct GateSimulator;

impl GateSimulator {
    /// Starts a simulator listening on `listen` (port 0 picks a free port; see
    /// [`SimHandle::addr`]). It runs until the handle is shut down or dropped.
    pub async fn start(listen: SocketAddr, config: GateSimConfig) -> io::Result<SimHandle> {
        GateSimulator::start_with(listen, config, None).await
    }

    /// [`GateSimulator::start`] for Modbus/TCP Security: TLS with `tls` ([`sim_tls_config`]);
    /// a client without a certificate from its CA is dropped at the handshake.
    pub async fn start_tls(
        listen: SocketAddr,
        config: GateSimConfig,
        tls: Arc<rustls::ServerConfig>,
    ) -> io::Result<SimHandle> {
        GateSimulator::start_with(listen, config, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_with(
        listen: SocketAddr,
        config: GateSimConfig,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> io::Result<SimHandle> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let socket = if listen.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // A restarted simulator must get its old port back at once.
        socket.set_reuseaddr(true)?;
        socket.bind(listen)?;
        let listener = socket.listen(64)?;
        let addr = listener.local_addr()?;
        let lane: Shared = Arc::new(Mutex::new(SimLane::new(
            config.travel(),
            config.hold_open(),
            config.initial_fence,
        )));
        let (stop_tx, stop_rx) = watch::channel(false);
        let service = Arc::new(SimService {
            lane: Arc::clone(&lane),
            unit_id: config.unit_id,
            may_write: true,
        });
        let mut stop = stop_rx.clone();
        let secure = tls.is_some();
        let server = tokio::spawn(async move {
            let on_error = |e: io::Error| debug!(error = %e, "Gate simulator: connection ended.");
            let abort = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            let server = Server::new(listener);
            let served = match tls {
                None => {
                    let on_connected = move |stream, peer: SocketAddr| {
                        let service = Arc::clone(&service);
                        async move {
                            debug!(peer = %peer, "Gate simulator: client connected.");
                            accept_tcp_connection(stream, peer, |_| Ok(Some(Arc::clone(&service))))
                        }
                    };
                    server.serve_until(&on_connected, on_error, abort).await
                }
                Some(acceptor) => {
                    let on_connected = move |stream, peer: SocketAddr| {
                        let (service, acceptor) = (Arc::clone(&service), acceptor.clone());
                        async move {
                            // Bounded: the accept loop waits for the handshake.
                            let tls = tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream));
                            match tls.await {
                                Ok(Ok(stream)) => {
                                    // Modbus/TCP Security authorises by the role in the
                                    // client's certificate.
                                    let role = stream
                                        .get_ref()
                                        .1
                                        .peer_certificates()
                                        .and_then(|chain| chain.first())
                                        .and_then(|cert| modbus_role(cert));
                                    let may_write = role.as_deref() == Some(LANE_ROLE);
                                    debug!(peer = %peer, role = role.as_deref().unwrap_or("none"), may_write, "Gate simulator: client authenticated.");
                                    let service = Arc::new(SimService {
                                        lane: Arc::clone(&service.lane),
                                        unit_id: service.unit_id,
                                        may_write,
                                    });
                                    Ok(Some((service, stream)))
                                }
                                Ok(Err(e)) => {
                                    warn!(peer = %peer, error = %e, "Gate simulator: TLS handshake refused.");
                                    Ok(None)
                                }
                                Err(_) => {
                                    warn!(peer = %peer, "Gate simulator: TLS handshake too slow.");
                                    Ok(None)
                                }
                            }
                        }
                    };
                    server.serve_until(&on_connected, on_error, abort).await
                }
            };
            if let Err(e) = served {
                warn!(error = %e, "Gate simulator: server stopped.");
            }
        });
        let ticker = tokio::spawn(tick(Arc::clone(&lane), stop_rx));
        info!(
            address = %addr,
            unit_id = config.unit_id,
            travel_ms = config.travel_ms,
            hold_open_ms = config.hold_open_ms,
            protocol = if secure { "Modbus/TCP Security (mutual TLS)" } else { "Modbus TCP" },
            "Gate SIMULATOR listening; not a real gate controller."
        );
        Ok(SimHandle {
            addr,
            lane,
            stop: stop_tx,
            tasks: vec![server, ticker],
        })
    }
}

/// Moves the gates on and logs each state change.
async fn tick(lane: Shared, mut stop: watch::Receiver<bool>) {
    let mut last: Option<[GateState; 3]> = None;
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let status = lock(&lane).status(Instant::now());
        let now = status.gates.map(|g| g.state);
        if let Some(before) = last {
            for (i, (b, n)) in before.iter().zip(now.iter()).enumerate() {
                if b != n {
                    info!(gate = %GateId::ALL[i], from = b.as_str(), to = n.as_str(), "Gate simulator: gate state changed.");
                }
            }
        }
        last = Some(now);
    }
}

struct SimService {
    lane: Shared,
    unit_id: u8,
    /// Whether this connection may use the write function codes: always over plain Modbus TCP
    /// (which authenticates nobody), over Modbus/TCP Security only for a certificate with the
    /// lane's role ([`LANE_ROLE`]).
    may_write: bool,
}

/// The Modbus function codes that change the controller's state.
fn writes(request: &Request<'_>) -> bool {
    matches!(
        request,
        Request::WriteSingleCoil(..)
            | Request::WriteMultipleCoils(..)
            | Request::WriteSingleRegister(..)
            | Request::WriteMultipleRegisters(..)
            | Request::MaskWriteRegister(..)
            | Request::ReadWriteMultipleRegisters(..)
    )
}

impl Service for SimService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: SlaveRequest<'static>) -> Self::Future {
        if req.slave != self.unit_id {
            debug!(
                unit_id = req.slave,
                "Gate simulator: request for another unit id refused."
            );
            return ready(Err(ExceptionCode::GatewayTargetDevice));
        }
        if !self.may_write && writes(&req.request) {
            warn!("Gate simulator: a write from a certificate without the lane's role refused.");
            return ready(Err(ExceptionCode::IllegalFunction));
        }
        let command = match &req.request {
            Request::WriteMultipleRegisters(addr, words) => {
                registers::decode_command(*addr, words).ok()
            }
            _ => None,
        };
        let result = lock(&self.lane).handle_request(Instant::now(), req.request);
        match (command, &result) {
            (Some(c), Ok(_)) => info!(
                gate = %c.gate, action = c.action.as_str(), fence = %c.fence,
                "Gate simulator: command accepted."
            ),
            (Some(c), Err(e)) => warn!(
                gate = %c.gate, action = c.action.as_str(), fence = %c.fence, exception = %e,
                "Gate simulator: command refused."
            ),
            (None, Err(e)) => debug!(exception = %e, "Gate simulator: request refused."),
            (None, Ok(_)) => {}
        }
        ready(result)
    }
}

/// Controls a running [`GateSimulator`]: read its state, play the light curtains and the
/// travellers, inject faults, stop it. Dropping the handle stops the simulator too.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    lane: Shared,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current status, exactly as a Modbus client would read it.
    pub fn status(&self) -> LaneGates {
        lock(&self.lane).status(Instant::now())
    }

    /// The current state of `gate`.
    pub fn state(&self, gate: GateId) -> GateState {
        self.status().gate(gate).state
    }

    /// Sets the persons the light curtains see in the inspection zone.
    pub fn set_occupancy(&self, persons: u16) {
        lock(&self.lane).set_occupancy(persons);
        info!(persons, "Gate simulator: zone occupancy set.");
    }

    /// Records one passage through `gate`.
    pub fn record_passage(&self, gate: GateId) {
        lock(&self.lane).record_passage(gate);
        info!(gate = %gate, "Gate simulator: passage recorded.");
    }

    /// A technician's reset of the remembered fence at the cabinet ([`SimLane::reset_fence`]).
    pub fn reset_fence(&self) {
        lock(&self.lane).reset_fence();
        warn!("Gate simulator: fence reset by a technician.");
    }

    /// Puts `gate` in fault: it stops where it is and refuses Open and Close.
    pub fn inject_fault(&self, gate: GateId) {
        lock(&self.lane).inject_fault(Instant::now(), gate);
        warn!(gate = %gate, "Gate simulator: fault injected.");
    }

    /// Clears a fault on `gate`; a gate that is not closed closes.
    pub fn clear_fault(&self, gate: GateId) {
        lock(&self.lane).clear_fault(Instant::now(), gate);
        info!(gate = %gate, "Gate simulator: fault cleared.");
    }

    /// Stops the simulator: no more connections, open ones are closed. Returns the final
    /// status (its `fence` can seed [`GateSimConfig::initial_fence`] of a restarted simulator).
    pub async fn shutdown(mut self) -> LaneGates {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        info!(address = %self.addr, "Gate simulator stopped.");
        self.status()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
