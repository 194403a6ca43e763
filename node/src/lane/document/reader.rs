//! The client for a document reader behind a serial-to-Ethernet adaptor: TCP, or TLS with the
//! lane's certificate of the device network (`tls`).

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::lane::device_tls::{DeviceConnector, DeviceStream};
use tracing::{debug, info, warn};

use super::config::DocumentReaderConfig;
use super::error::DocumentError;
use super::frame::FrameDecoder;
use super::{DocumentReader, RawDocument};

/// Connects to the document reader and yields what it reads, frame by frame (see
/// [`frame`](super::frame) for the format).
///
/// Each [`next_document`](DocumentReader::next_document) call returns one document or one
/// error; the reader stays usable after any error:
///
/// * garbage (noise, bad bytes, bad chip JSON, an oversized frame) is reported as
///   [`DocumentError::Frame`] / [`DocumentError::FrameTooLarge`] and decoding resumes at the
///   next STX;
/// * a lost or refused connection is reported ([`DocumentError::Disconnected`],
///   [`DocumentError::Connect`], [`DocumentError::Io`]) and the next call reconnects, after a
///   delay that doubles from `reconnect_min_ms` to `reconnect_max_ms` while attempts fail.
///
/// `next_document` is cancel-safe (e.g. in `tokio::select!`): bytes are kept in the decoder
/// between calls, so no frame is lost by dropping the future.
pub struct TcpDocumentReader {
    config: DocumentReaderConfig,
    stream: Option<Box<dyn DeviceStream>>,
    /// Built from the TLS files on first connection, then kept.
    tls: DeviceConnector,
    decoder: FrameDecoder,
    backoff: Duration,
    wait_before_connect: bool,
    just_disconnected: bool,
    connected_once: bool,
}

impl std::fmt::Debug for TcpDocumentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpDocumentReader")
            .field("address", &self.config.address)
            .field("tls", &self.config.tls.is_some())
            .field("connected", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl TcpDocumentReader {
    /// A reader for `config` (validated); it connects on the first `next_document` call.
    pub fn new(config: DocumentReaderConfig) -> Result<TcpDocumentReader, DocumentError> {
        config.validate()?;
        Ok(TcpDocumentReader {
            decoder: FrameDecoder::new(config.max_frame_bytes),
            backoff: config.reconnect_min(),
            config,
            stream: None,
            tls: DeviceConnector::default(),
            wait_before_connect: false,
            just_disconnected: false,
            connected_once: false,
        })
    }

    /// Whether a connection to the reader is open now.
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    fn drop_connection(&mut self) {
        self.stream = None;
        self.wait_before_connect = true;
        self.just_disconnected = true;
        let dropped = self.decoder.reset();
        if dropped > 0 {
            debug!(
                bytes = dropped,
                "Partial document reader frame dropped with the connection."
            );
        }
    }

    async fn connect(&mut self) -> Result<(), DocumentError> {
        if self.wait_before_connect {
            tokio::time::sleep(self.backoff).await;
        }
        let addr = self.config.address.clone();
        let timeout = self.config.connect_timeout();
        let result = match tokio::time::timeout(timeout, self.open(&addr)).await {
            Ok(opened) => opened,
            Err(_) => Err(format!(
                "no answer within {} ms",
                self.config.connect_timeout_ms
            )),
        };
        match result {
            Ok(stream) => {
                if self.connected_once {
                    info!(reader = %addr, "Document reader reconnected.");
                } else {
                    info!(reader = %addr, "Document reader connected.");
                }
                self.connected_once = true;
                self.stream = Some(stream);
                self.backoff = self.config.reconnect_min();
                self.wait_before_connect = false;
                Ok(())
            }
            Err(reason) => {
                if self.wait_before_connect {
                    self.backoff = (self.backoff * 2).min(self.config.reconnect_max());
                }
                let retry_ms = u64::try_from(self.backoff.as_millis()).unwrap_or(u64::MAX);
                // Warn once per outage; the retries that follow are DEBUG.
                if self.wait_before_connect && !self.just_disconnected {
                    debug!(reader = %addr, error = %reason, retry_ms, "Still cannot connect to the document reader.");
                } else {
                    warn!(reader = %addr, error = %reason, retry_ms, "Cannot connect to the document reader.");
                }
                self.just_disconnected = false;
                self.wait_before_connect = true;
                Err(DocumentError::Connect { addr, reason })
            }
        }
    }
}

impl TcpDocumentReader {
    /// A new connection to `addr`: TCP, then the TLS handshake where configured.
    async fn open(&mut self, addr: &str) -> Result<Box<dyn DeviceStream>, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        if let Err(e) = stream.set_nodelay(true) {
            debug!(error = %e, "Cannot set TCP_NODELAY on the document reader link.");
        }
        let Some(tls) = &self.config.tls else {
            return Ok(Box::new(stream));
        };
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(host, _)| host)
            .trim_matches(['[', ']']);
        Ok(Box::new(self.tls.handshake(tls, stream, host).await?))
    }
}

impl DocumentReader for TcpDocumentReader {
    async fn next_document(&mut self) -> Result<RawDocument, DocumentError> {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(item) = self.decoder.poll() {
                if let Err(e) = &item {
                    warn!(reader = %self.config.address, error = %e, code = e.code(), "Garbage from the document reader skipped.");
                }
                return item;
            }
            let Some(stream) = self.stream.as_mut() else {
                self.connect().await?;
                continue;
            };
            match stream.read(&mut buf).await {
                Ok(0) => {
                    self.drop_connection();
                    warn!(reader = %self.config.address, "Document reader closed the connection.");
                    return Err(DocumentError::Disconnected {
                        addr: self.config.address.clone(),
                    });
                }
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e) => {
                    self.drop_connection();
                    warn!(reader = %self.config.address, error = %e, "Document reader link failed.");
                    return Err(DocumentError::Io(e));
                }
            }
        }
    }
}
