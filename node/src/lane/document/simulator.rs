//! **Simulator**: a document reader on TCP, for tests and the demo. Not a device driver.
//!
//! It listens like a serial-to-Ethernet adaptor would and writes one frame (see
//! [`frame`](super::frame)) per [`present`](DocumentReaderSimulator::present)ed document to the
//! connected lane. Documents presented while no lane is connected wait, in order, for the next
//! connection. One lane at a time; a new connection replaces the old one. With
//! [`start_tls`](DocumentReaderSimulator::start_tls) it speaks TLS and admits only a lane with a
//! certificate of the device network's CA (each handshake bounded to 2 s).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::RawDocument;
use super::error::DocumentError;
use super::frame::{MAX_FRAME_BYTES, encode_frame};
use crate::lane::device_tls::{DeviceStream, sim_admit};

/// A simulated document reader (a TCP server); dropping it stops it.
#[derive(Debug)]
pub struct DocumentReaderSimulator {
    addr: SocketAddr,
    frames: mpsc::UnboundedSender<Vec<u8>>,
    connections: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl DocumentReaderSimulator {
    /// Starts a simulator listening on `addr` (port 0 picks a free port).
    pub async fn start(addr: SocketAddr) -> Result<DocumentReaderSimulator, DocumentError> {
        DocumentReaderSimulator::start_with(addr, None).await
    }

    /// [`DocumentReaderSimulator::start`] over TLS with `tls`
    /// ([`sim_tls_config`](crate::lane::device_tls::sim_tls_config)): a lane without a
    /// certificate of its CA is dropped at the handshake and gets no frame.
    pub async fn start_tls(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<DocumentReaderSimulator, DocumentError> {
        DocumentReaderSimulator::start_with(addr, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_with(
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Result<DocumentReaderSimulator, DocumentError> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // Lets a restarted simulator take its old port back while old connections linger.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(16)?;
        let addr = listener.local_addr()?;
        let (frames, frames_rx) = mpsc::unbounded_channel();
        let (connections_tx, connections) = watch::channel(0);
        info!(simulator = true, %addr, tls = tls.is_some(), "Document reader SIMULATOR listening.");
        let task = tokio::spawn(serve(listener, tls, frames_rx, connections_tx));
        Ok(DocumentReaderSimulator {
            addr,
            frames,
            connections,
            task,
        })
    }

    /// The address the simulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Presents a document, as if a traveller laid it on the reader.
    pub fn present(&self, doc: RawDocument) -> Result<(), DocumentError> {
        let frame = encode_frame(&doc, MAX_FRAME_BYTES)?;
        self.present_raw(frame)
    }

    /// Sends raw bytes as they are (garbage, partial or oversized frames, for tests).
    pub fn present_raw(&self, bytes: Vec<u8>) -> Result<(), DocumentError> {
        self.frames.send(bytes).map_err(|_| {
            DocumentError::Io(std::io::Error::other("document reader simulator stopped"))
        })
    }

    /// How many lane connections the simulator has accepted so far.
    pub fn connections(&self) -> u64 {
        *self.connections.borrow()
    }

    /// Waits until the simulator has accepted at least `n` connections.
    pub async fn wait_connections(&mut self, n: u64) {
        // Only fails if the server task ended, which then never accepts again.
        let _ = self.connections.wait_for(|&c| c >= n).await;
    }

    /// Stops the simulator and waits until its socket is closed (so the port can be reused).
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for DocumentReaderSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
    connections: watch::Sender<u64>,
) {
    let mut lane: Option<Box<dyn DeviceStream>> = None;
    let mut scratch = [0u8; 256];
    loop {
        let Some(stream) = lane.as_mut() else {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    if let Some(stream) =
                        sim_admit(stream, peer, tls.as_ref(), "Document reader").await
                    {
                        info!(simulator = true, %peer, "Document reader SIMULATOR: lane connected.");
                        lane = Some(stream);
                        connections.send_modify(|c| *c += 1);
                    }
                }
                Err(e) => {
                    warn!(simulator = true, error = %e, "Document reader SIMULATOR: accept failed.")
                }
            }
            continue;
        };
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, peer)) = accepted {
                    // A connection that fails the handshake leaves the lane's in place.
                    if let Some(stream) = sim_admit(stream, peer, tls.as_ref(), "Document reader").await {
                        info!(simulator = true, %peer, "Document reader SIMULATOR: new lane connection replaces the old one.");
                        lane = Some(stream);
                        connections.send_modify(|c| *c += 1);
                    }
                }
            }
            read = stream.read(&mut scratch) => {
                if matches!(read, Ok(0) | Err(_)) {
                    info!(simulator = true, "Document reader SIMULATOR: lane disconnected.");
                    lane = None;
                }
            }
            frame = frames.recv() => {
                let Some(frame) = frame else { return };
                if let Err(e) = stream.write_all(&frame).await {
                    warn!(simulator = true, error = %e, "Document reader SIMULATOR: frame lost with the lane connection.");
                    lane = None;
                }
            }
        }
    }
}
