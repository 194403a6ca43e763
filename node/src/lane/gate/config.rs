//! Configuration of the Modbus gate client and of the gate simulator.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lane::procedure::Fence;

/// How to reach the lane's gate controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusGatesConfig {
    /// The controller's Modbus TCP address, e.g. `10.1.12.20:502`. Required.
    pub address: SocketAddr,
    /// Modbus unit id the controller answers to. Default 1.
    #[serde(default = "default_unit_id")]
    pub unit_id: u8,
    /// Bound on connecting and on each request/reply, in milliseconds. Default 1000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Modbus/TCP Security: the link over mutual TLS. Without it the link is plain Modbus TCP,
    /// which anyone on the gate network can speak (the lane still detects a fence it never
    /// issued).
    #[serde(default)]
    pub tls: Option<ModbusTlsConfig>,
}

/// Modbus/TCP Security (the Modbus Organization's TLS profile, registered port 802): TLS 1.2 or
/// 1.3, both sides authenticated by X.509 certificates of the device network's CA.
pub type ModbusTlsConfig = crate::lane::device_tls::DeviceTlsConfig;

fn default_unit_id() -> u8 {
    1
}

fn default_timeout_ms() -> u64 {
    1000
}

impl ModbusGatesConfig {
    /// The defaults for a controller at `address`.
    pub fn new(address: SocketAddr) -> ModbusGatesConfig {
        ModbusGatesConfig {
            address,
            unit_id: default_unit_id(),
            timeout_ms: default_timeout_ms(),
            tls: None,
        }
    }

    /// The per-call bound.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Checks the values, saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(format!(
                "gates: timeout_ms must be 1–60000, got {}",
                self.timeout_ms
            ));
        }
        Ok(())
    }
}

/// The gate simulator's behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSimConfig {
    /// Modbus unit id the simulator answers to. Default 1.
    #[serde(default = "default_unit_id")]
    pub unit_id: u8,
    /// Time a gate takes to open or to close, in milliseconds. Default 300.
    #[serde(default = "default_travel_ms")]
    pub travel_ms: u64,
    /// Time an open gate stays open before it closes by itself, in milliseconds. Default 2000.
    #[serde(default = "default_hold_open_ms")]
    pub hold_open_ms: u64,
    /// The highest fence the controller remembers at start (a real controller keeps it in
    /// retentive memory across power cycles). Default 0.0.
    #[serde(default)]
    pub initial_fence: Fence,
}

fn default_travel_ms() -> u64 {
    300
}

fn default_hold_open_ms() -> u64 {
    2000
}

impl Default for GateSimConfig {
    fn default() -> GateSimConfig {
        GateSimConfig {
            unit_id: default_unit_id(),
            travel_ms: default_travel_ms(),
            hold_open_ms: default_hold_open_ms(),
            initial_fence: Fence::default(),
        }
    }
}

impl GateSimConfig {
    /// Opening or closing time.
    pub fn travel(&self) -> Duration {
        Duration::from_millis(self.travel_ms)
    }

    /// Time before an open gate closes by itself.
    pub fn hold_open(&self) -> Duration {
        Duration::from_millis(self.hold_open_ms)
    }

    /// Checks the values, saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.travel_ms > 60_000 || self.hold_open_ms > 3_600_000 {
            return Err(format!(
                "gate simulator: travel_ms ≤ 60000 and hold_open_ms ≤ 3600000 (got {} and {})",
                self.travel_ms, self.hold_open_ms
            ));
        }
        Ok(())
    }
}
