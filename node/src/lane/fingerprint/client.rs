//! [`TcpFingerprintReader`]: the reader protocol's client, over TCP or, where `tls` is
//! configured, mutual TLS with the lane's certificate of the device network.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tracing::{debug, warn};
use zeroize::Zeroize;

use super::wire::{self, LineError};
use super::{
    FingerprintCapture, FingerprintError, FingerprintReader, TcpFingerprintReaderConfig,
    check_quality,
};
use crate::lane::device_tls::{DeviceConnector, DeviceStream};

/// A fingerprint reader adaptor reached over TCP (reader protocol, module docs).
///
/// Connects on first use; after any failure that may leave the stream out of step (IO error,
/// timeout, malformed or oversized reply) it drops the connection and connects again on the next
/// capture. Captures below the configured minimum quality are [`FingerprintError::LowQuality`].
pub struct TcpFingerprintReader {
    config: TcpFingerprintReaderConfig,
    conn: Option<BufReader<Box<dyn DeviceStream>>>,
    /// Built from the TLS files on first connection, then kept.
    tls: DeviceConnector,
    line: Vec<u8>,
}

impl std::fmt::Debug for TcpFingerprintReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpFingerprintReader")
            .field("address", &self.config.address)
            .field("tls", &self.config.tls.is_some())
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl TcpFingerprintReader {
    /// A client for the adaptor in `config` (nothing is connected yet).
    pub fn new(config: TcpFingerprintReaderConfig) -> TcpFingerprintReader {
        TcpFingerprintReader {
            config,
            conn: None,
            tls: DeviceConnector::default(),
            line: Vec::new(),
        }
    }

    /// A new connection: TCP, then the TLS handshake where configured (both within the connect
    /// bound).
    async fn open(&mut self) -> Result<Box<dyn DeviceStream>, String> {
        let addr = self.config.address;
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.config.tls else {
            return Ok(Box::new(stream));
        };
        let host = addr.ip().to_string();
        Ok(Box::new(self.tls.handshake(tls, stream, &host).await?))
    }

    async fn connection(
        &mut self,
    ) -> Result<&mut BufReader<Box<dyn DeviceStream>>, FingerprintError> {
        let addr = self.config.address;
        if self.conn.is_none() {
            let after = self.config.connect_timeout();
            let stream = match tokio::time::timeout(after, self.open()).await {
                Ok(Ok(s)) => s,
                Ok(Err(reason)) => return Err(FingerprintError::Unreachable { addr, reason }),
                Err(_) => {
                    return Err(FingerprintError::Unreachable {
                        addr,
                        reason: format!("no connection within {after:?}"),
                    });
                }
            };
            debug!(reader = %addr, tls = self.config.tls.is_some(), "Connected to the fingerprint reader.");
            self.conn = Some(BufReader::new(stream));
        }
        self.conn
            .as_mut()
            .ok_or_else(|| FingerprintError::Io("not connected".to_string()))
    }

    /// One request and its reply line (left in `self.line`), bounded by the capture's timeout plus the reply margin.
    async fn exchange(&mut self, timeout: Duration) -> Result<(), FingerprintError> {
        let max = self.config.max_frame;
        let bound = timeout.saturating_add(self.config.reply_margin());
        let request = wire::encode_request(timeout);
        let mut line = std::mem::take(&mut self.line);
        let conn = self.connection().await?;
        let result = async {
            conn.get_mut()
                .write_all(&request)
                .await
                .map_err(|e| FingerprintError::Io(format!("sending the request: {e}")))?;
            match wire::read_line(conn, max, &mut line).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(FingerprintError::Io(
                    "the reader closed the connection without replying".to_string(),
                )),
                Err(LineError::Io(e)) => {
                    Err(FingerprintError::Io(format!("reading the reply: {e}")))
                }
                Err(LineError::TooLong) => Err(FingerprintError::FrameTooLarge { limit: max }),
                Err(LineError::Truncated) => Err(FingerprintError::Protocol(
                    "the connection closed in the middle of a reply".to_string(),
                )),
            }
        };
        let result = match tokio::time::timeout(bound, result).await {
            Ok(r) => r,
            Err(_) => Err(FingerprintError::Timeout { after: Some(bound) }),
        };
        self.line = line;
        result
    }

    async fn capture_once(
        &mut self,
        timeout: Duration,
    ) -> Result<FingerprintCapture, FingerprintError> {
        let result = match self.exchange(timeout).await {
            Ok(()) => wire::decode_reply(&self.line),
            Err(e) => Err(e),
        };
        self.line.zeroize();
        if let Err(e) = &result
            && matches!(
                e,
                FingerprintError::Io(_)
                    | FingerprintError::Protocol(_)
                    | FingerprintError::FrameTooLarge { .. }
                    | FingerprintError::Timeout { after: Some(_) }
            )
        {
            warn!(reader = %self.config.address, code = e.code(), error = %e, "Fingerprint reader failed; will reconnect.");
            self.conn = None;
        }
        check_quality(result?, self.config.min_quality)
    }
}

impl FingerprintReader for TcpFingerprintReader {
    fn capture(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<FingerprintCapture, FingerprintError>> + Send {
        self.capture_once(timeout)
    }
}
