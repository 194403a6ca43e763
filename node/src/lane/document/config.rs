//! The document reader's configuration (a section of the lane's TOML).
//!
//! ```toml
//! [document_reader]
//! address = "10.2.12.31:4001"   # the serial-to-Ethernet adaptor (or the simulator)
//! max_frame_bytes = 4096
//! reconnect_min_ms = 200
//! reconnect_max_ms = 5000
//! connect_timeout_ms = 2000
//! csca_certs = "/etc/clearway/documents/csca.pem"   # the issuers' Country Signing CAs
//!
//! [document_reader.tls]                             # mutual TLS; without it plain TCP
//! ca_cert = "/etc/clearway/gates/ca.pem"            # the device network's CA
//! client_cert = "/etc/clearway/gates/lane-client.pem"
//! client_key = "/etc/clearway/gates/lane-client.key"
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::DocumentError;
use super::frame::MAX_FRAME_BYTES;

/// Where the document reader is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentReaderConfig {
    /// The reader's TCP address, `host:port`. No default.
    pub address: String,
    /// Largest frame accepted, bytes, STX and ETX included. Default 4096; 128 to 65536.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// First reconnect delay after an error, ms; doubled per failed attempt. Default 200.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, ms. Default 5000.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// Give up one connection attempt after this long, ms. Default 2000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// The Country Signing CA certificates (PEM) whose chips the lane accepts: passive
    /// authentication ([`super::ChipTrust`]). Without it no chip passes, so every card scan
    /// goes to an officer and nobody registers at the channel.
    #[serde(default)]
    pub csca_certs: Option<std::path::PathBuf>,
    /// The link over mutual TLS under the device network's CA. Without it the link is plain
    /// TCP, which anyone on the hall's device network can speak (the chip still has to pass
    /// passive authentication).
    #[serde(default)]
    pub tls: Option<crate::lane::device_tls::DeviceTlsConfig>,
}

fn default_max_frame_bytes() -> usize {
    MAX_FRAME_BYTES
}
fn default_reconnect_min_ms() -> u64 {
    200
}
fn default_reconnect_max_ms() -> u64 {
    5000
}
fn default_connect_timeout_ms() -> u64 {
    2000
}

impl DocumentReaderConfig {
    /// The defaults, for the reader at `address`.
    pub fn new(address: impl Into<String>) -> DocumentReaderConfig {
        DocumentReaderConfig {
            address: address.into(),
            max_frame_bytes: default_max_frame_bytes(),
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            csca_certs: None,
            tls: None,
        }
    }

    /// Checks the values are usable.
    pub fn validate(&self) -> Result<(), DocumentError> {
        let bad = |m: &str| Err(DocumentError::Config(m.to_owned()));
        if self.address.trim().is_empty() {
            return bad("address is empty");
        }
        if !(128..=65536).contains(&self.max_frame_bytes) {
            return bad("max_frame_bytes must be 128 to 65536");
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            return bad("reconnect_min_ms must be at least 1 and at most reconnect_max_ms");
        }
        if self.connect_timeout_ms == 0 {
            return bad("connect_timeout_ms must be at least 1");
        }
        Ok(())
    }

    pub(super) fn reconnect_min(&self) -> Duration {
        Duration::from_millis(self.reconnect_min_ms)
    }

    pub(super) fn reconnect_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_max_ms)
    }

    pub(super) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}
