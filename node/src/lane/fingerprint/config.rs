//! Configuration of the fingerprint reader client and of the fingerprint simulator.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How to reach the fingerprint reader adaptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpFingerprintReaderConfig {
    /// The adaptor's address, e.g. `127.0.0.1:7300`. Required.
    pub address: SocketAddr,
    /// Bound on connecting, in milliseconds. Default 1000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time allowed for the reply beyond the capture's own timeout, in milliseconds. Default 2000.
    #[serde(default = "default_reply_margin_ms")]
    pub reply_margin_ms: u64,
    /// Longest reply line accepted, in bytes, newline included. Default 65536.
    #[serde(default = "default_max_frame")]
    pub max_frame: usize,
    /// Captures below this NFIQ 2 quality are reported as low quality (0 accepts all). Default 40.
    #[serde(default = "default_min_quality")]
    pub min_quality: u8,
    /// The link over mutual TLS under the device network's CA. Without it the link is plain
    /// TCP, and the templates (biometric data) cross the hall's device network in clear.
    #[serde(default)]
    pub tls: Option<crate::lane::device_tls::DeviceTlsConfig>,
}

fn default_connect_timeout_ms() -> u64 {
    1000
}
fn default_reply_margin_ms() -> u64 {
    2000
}
fn default_max_frame() -> usize {
    64 * 1024
}
fn default_min_quality() -> u8 {
    40
}

impl TcpFingerprintReaderConfig {
    /// The defaults for an adaptor at `address`.
    pub fn new(address: SocketAddr) -> TcpFingerprintReaderConfig {
        TcpFingerprintReaderConfig {
            address,
            connect_timeout_ms: default_connect_timeout_ms(),
            reply_margin_ms: default_reply_margin_ms(),
            max_frame: default_max_frame(),
            min_quality: default_min_quality(),
            tls: None,
        }
    }

    /// Bound on connecting.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// Time allowed for a reply beyond the capture's timeout.
    pub fn reply_margin(&self) -> Duration {
        Duration::from_millis(self.reply_margin_ms)
    }

    /// Checks the values, saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=60_000).contains(&self.connect_timeout_ms) {
            return Err(format!(
                "fingerprint: connect_timeout_ms must be 1–60000, got {}",
                self.connect_timeout_ms
            ));
        }
        if self.reply_margin_ms > 60_000 {
            return Err(format!(
                "fingerprint: reply_margin_ms must be at most 60000, got {}",
                self.reply_margin_ms
            ));
        }
        if !(256..=1024 * 1024).contains(&self.max_frame) {
            return Err(format!(
                "fingerprint: max_frame must be 256–1048576 bytes, got {}",
                self.max_frame
            ));
        }
        if self.min_quality > 100 {
            return Err(format!(
                "fingerprint: min_quality must be 0–100, got {}",
                self.min_quality
            ));
        }
        Ok(())
    }
}

/// The fingerprint simulator's behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintSimConfig {
    /// Quality of ordinary captures (NFIQ 2, 0–100). Default 80.
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// Quality of a capture told to be poor. Default 15.
    #[serde(default = "default_low_quality")]
    pub low_quality: u8,
    /// Length of the synthetic template, in bytes. Default 512.
    #[serde(default = "default_template_len")]
    pub template_len: usize,
    /// Time the simulated traveller takes to place a finger, in milliseconds; when it is longer
    /// than the request's `timeout_ms` the reply is `no_finger`. Default 150.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: u64,
}

fn default_quality() -> u8 {
    80
}
fn default_low_quality() -> u8 {
    15
}
fn default_template_len() -> usize {
    512
}
fn default_latency_ms() -> u64 {
    150
}

impl Default for FingerprintSimConfig {
    fn default() -> FingerprintSimConfig {
        FingerprintSimConfig {
            quality: default_quality(),
            low_quality: default_low_quality(),
            template_len: default_template_len(),
            latency_ms: default_latency_ms(),
        }
    }
}

impl FingerprintSimConfig {
    /// Checks the values, saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.quality > 100 || self.low_quality > 100 {
            return Err("fingerprint simulator: qualities must be 0–100".to_string());
        }
        if !(8..=16 * 1024).contains(&self.template_len) {
            return Err(format!(
                "fingerprint simulator: template_len must be 8–16384, got {}",
                self.template_len
            ));
        }
        if self.latency_ms > 60_000 {
            return Err(format!(
                "fingerprint simulator: latency_ms must be at most 60000, got {}",
                self.latency_ms
            ));
        }
        Ok(())
    }
}
