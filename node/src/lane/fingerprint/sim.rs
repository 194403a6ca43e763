//! [`FingerprintSimulator`]: a **simulated** fingerprint reader adaptor speaking the reader
//! protocol over TCP. Its templates are random bytes behind a `SIM\0` marker — synthetic, never
//! a real person's data. Every log line it writes says "simulator". With
//! [`FingerprintSimulator::start_tls`] it speaks TLS and serves only a lane with a certificate
//! of the device network's CA (each handshake bounded to 2 s).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::RngCore;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info};
use zeroize::Zeroize;

use super::wire::{self, LineError};
use super::{FingerprintCapture, FingerprintSimConfig};
use crate::lane::device_tls::{DeviceStream, sim_admit};

/// Longest request line the simulator reads.
const MAX_REQUEST: usize = 4096;
/// The first bytes of every synthetic template ("SIM" and a zero), unlike any ISO record.
pub const SIM_TEMPLATE_MARKER: &[u8; 4] = b"SIM\0";

/// What the simulator answers to one capture request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimOutcome {
    /// A capture of this quality.
    Capture {
        /// NFIQ 2 quality, 0–100.
        quality: u8,
    },
    /// A capture at the configured low quality.
    LowQuality,
    /// `{"error":"no_finger"}`.
    NoFinger,
    /// `{"error":"timeout"}`.
    Timeout,
    /// `{"error":"device"}`: the sensor failed.
    Fail,
    /// No reply at all (the connection stays open): tests the client's bound.
    Silent,
    /// These bytes as the reply, verbatim: tests the client's defences against bad replies.
    Raw(Vec<u8>),
}

struct State {
    quality: u8,
    script: VecDeque<SimOutcome>,
}

struct Shared {
    config: FingerprintSimConfig,
    state: Mutex<State>,
    requests: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A simulated fingerprint reader adaptor.
#[derive(Debug)]
pub struct FingerprintSimulator;

impl FingerprintSimulator {
    /// Starts a simulator listening on `listen` (port 0 picks a free port; see
    /// [`SimFingerprintHandle::addr`]). It runs until the handle is shut down or dropped.
    pub async fn start(
        listen: SocketAddr,
        config: FingerprintSimConfig,
    ) -> io::Result<SimFingerprintHandle> {
        FingerprintSimulator::start_with(listen, config, None).await
    }

    /// [`FingerprintSimulator::start`] over TLS with `tls`
    /// ([`sim_tls_config`](crate::lane::device_tls::sim_tls_config)): a client without a
    /// certificate of its CA is dropped at the handshake and never gets a capture.
    pub async fn start_tls(
        listen: SocketAddr,
        config: FingerprintSimConfig,
        tls: Arc<rustls::ServerConfig>,
    ) -> io::Result<SimFingerprintHandle> {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        FingerprintSimulator::start_with(listen, config, Some(acceptor)).await
    }

    async fn start_with(
        listen: SocketAddr,
        config: FingerprintSimConfig,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> io::Result<SimFingerprintHandle> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                quality: config.quality,
                script: VecDeque::new(),
            }),
            config,
            requests: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let secure = tls.is_some();
        let task = tokio::spawn(accept_loop(listener, tls, Arc::clone(&shared), stop_rx));
        info!(address = %addr, tls = secure, "Fingerprint reader SIMULATOR listening; templates are synthetic.");
        Ok(SimFingerprintHandle {
            addr,
            shared,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                debug!(peer = %peer, "Fingerprint simulator: client connected.");
                let shared = Arc::clone(&shared);
                let mut stop = stop.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let Some(stream) =
                        sim_admit(stream, peer, tls.as_ref(), "Fingerprint reader").await
                    else {
                        return;
                    };
                    tokio::select! {
                        r = serve(stream, &shared) => if let Err(e) = r {
                            debug!(error = %e, "Fingerprint simulator: connection ended.");
                        },
                        _ = stop.wait_for(|s| *s) => {}
                    }
                });
            }
            Err(e) => {
                debug!(error = %e, "Fingerprint simulator: accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn synthetic_template(len: usize) -> Vec<u8> {
    let mut t = vec![0u8; len.max(SIM_TEMPLATE_MARKER.len())];
    rand::rng().fill_bytes(&mut t);
    t[..SIM_TEMPLATE_MARKER.len()].copy_from_slice(SIM_TEMPLATE_MARKER);
    t
}

async fn serve(stream: Box<dyn DeviceStream>, shared: &Shared) -> io::Result<()> {
    let mut conn = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        match wire::read_line(&mut conn, MAX_REQUEST, &mut line).await {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(LineError::Io(e)) => return Err(e),
            Err(LineError::TooLong) => {
                let reply = wire::encode_error("bad_request", Some("request line too long"));
                conn.get_mut().write_all(&reply).await?;
                return Ok(());
            }
            Err(LineError::Truncated) => return Ok(()),
        }
        let request = match wire::decode_request(&line) {
            Ok(r) => r,
            Err(why) => {
                debug!(reason = %why, "Fingerprint simulator: bad request.");
                conn.get_mut()
                    .write_all(&wire::encode_error("bad_request", Some(&why)))
                    .await?;
                continue;
            }
        };
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let (outcome, quality) = {
            let mut st = shared.state();
            let quality = st.quality;
            (st.script.pop_front(), quality)
        };
        let outcome = outcome.unwrap_or(SimOutcome::Capture { quality });
        let latency = Duration::from_millis(shared.config.latency_ms);
        let mut reply = match outcome {
            SimOutcome::Silent => {
                info!("Fingerprint simulator: staying silent, as told.");
                // Hold the connection until the client gives up.
                let mut rest = Vec::new();
                let _ = wire::read_line(&mut conn, MAX_REQUEST, &mut rest).await;
                return Ok(());
            }
            SimOutcome::Raw(bytes) => bytes,
            _ if latency > request.timeout => {
                tokio::time::sleep(request.timeout).await;
                wire::encode_error("no_finger", None)
            }
            SimOutcome::NoFinger => {
                tokio::time::sleep(request.timeout).await;
                wire::encode_error("no_finger", None)
            }
            SimOutcome::Timeout => wire::encode_error("timeout", None),
            SimOutcome::Fail => wire::encode_error("device", Some("simulated sensor failure")),
            SimOutcome::Capture { quality } => {
                tokio::time::sleep(latency).await;
                capture_line(shared, quality)
            }
            SimOutcome::LowQuality => {
                tokio::time::sleep(latency).await;
                capture_line(shared, shared.config.low_quality)
            }
        };
        let written = conn.get_mut().write_all(&reply).await;
        reply.zeroize();
        written?;
    }
}

fn capture_line(shared: &Shared, quality: u8) -> Vec<u8> {
    let capture = FingerprintCapture {
        quality,
        template: synthetic_template(shared.config.template_len),
    };
    info!(quality, "Fingerprint simulator: synthetic capture served.");
    wire::encode_capture(&capture)
}

/// Controls a running [`FingerprintSimulator`]. Dropping it stops the simulator.
#[derive(Debug)]
pub struct SimFingerprintHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl SimFingerprintHandle {
    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the quality of ordinary captures from now on.
    pub fn set_quality(&self, quality: u8) {
        self.shared.state().quality = quality.min(100);
    }

    /// Queues what to answer to the next capture requests, in order (after those already
    /// queued); when the queue is empty, ordinary captures are served.
    pub fn push(&self, outcomes: impl IntoIterator<Item = SimOutcome>) {
        self.shared.state().script.extend(outcomes);
    }

    /// Capture requests received so far (well-formed ones).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Stops the simulator and closes its connections.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        info!(address = %self.addr, "Fingerprint simulator stopped.");
    }
}

impl Drop for SimFingerprintHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
