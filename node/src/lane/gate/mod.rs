//! The lane's gates over Modbus TCP, with fencing tokens, and a Modbus TCP gate simulator.
//!
//! A channel has three gates (gate 1 entrance, gate 2 after the inspection zone, gate 3 exit)
//! driven by one gate controller, a PLC that speaks Modbus TCP. The lane runtime drives it through
//! the [`GateController`] trait; [`ModbusGates`] is the real client, [`GateSimulator`] a Modbus
//! TCP server that implements the same register map for demos and tests.
//!
//! # Fencing
//!
//! Every command carries a [`Fence`] (Raft term, log index). The controller remembers the highest
//! fence it has accepted — **one for the whole lane**, across the three gates — and refuses any
//! command whose fence is lower (lexicographic order on (term, index)); an equal fence is
//! accepted, so one issuer may send several commands under the same fence. A stale leader or an
//! old console session therefore cannot move any gate once a newer issuer has been obeyed.
//! The controller must keep the highest fence in retentive memory across power cycles.
//!
//! # Register map (version 1)
//!
//! Addresses are zero-based PDU addresses (holding register 16 is "40017" in one-based
//! notation). Numbers wider than 16 bits span consecutive registers, **most significant word
//! first** (big-endian word order). The map has one 16-register block for the lane (`0–15`) and
//! one per gate **g** starting at **16·g** (gate 1 at 16, gate 2 at 32, gate 3 at 48), in both the
//! holding and the input register spaces.
//!
//! ## Holding registers: commands (write with FC16 only)
//!
//! | address      | registers | content                                          |
//! |--------------|-----------|--------------------------------------------------|
//! | 16·g + 0     | 4         | fence term, `u64`                                |
//! | 16·g + 4     | 4         | fence index, `u64`                               |
//! | 16·g + 8     | 1         | action: 1 open, 2 close, 3 lock, 4 unlock        |
//!
//! A command is **one Write Multiple Registers (FC16) request of exactly 9 registers starting at
//! 16·g**, so fence and action arrive atomically. The controller answers:
//!
//! * a normal FC16 reply: the command was accepted and is being carried out;
//! * exception **0x03 IllegalDataValue**: the fence is lower than the highest accepted (a *stale*
//!   command: nothing moves and the refused-stale counter increments), or the action code is not
//!   1–4 (not counted);
//! * exception **0x04 ServerDeviceFailure**: the gate's state forbids the action — Open on a
//!   locked gate, Open or Close on a faulted gate (nothing changes, the fence is not raised);
//! * exception **0x02 IllegalDataAddress**: any other write touching 16·g … 16·g+8 (fewer or more
//!   registers, another start, FC06), or a write anywhere else.
//!
//! Reading a command block (FC03) returns the last accepted command for that gate (zeros before
//! the first).
//!
//! Physics: Open → moving → open after the travel time; an open gate closes by itself after its
//! hold-open time (Open on an open gate restarts that time) or on Close; Lock closes the gate and
//! keeps it closed, refusing Open, until Unlock; Unlock leaves the gate closed.
//!
//! ## Input registers: status (read with FC04; `0–63` in one read is a consistent snapshot)
//!
//! | address | registers | content                                                          |
//! |---------|-----------|------------------------------------------------------------------|
//! | 0       | 1         | map version (1)                                                  |
//! | 1       | 1         | zone occupancy: persons the light curtains see between gates 1 and 2 (anti-tailgating) |
//! | 2       | 2         | commands refused for a stale fence since power-up, `u32`         |
//! | 4       | 4         | highest accepted fence, term, `u64`                              |
//! | 8       | 4         | highest accepted fence, index, `u64`                             |
//! | 16·g+0  | 1         | gate state: 0 closed, 1 moving, 2 open, 3 locked, 4 fault        |
//! | 16·g+1  | 4         | fence of the last command accepted for gate g, term              |
//! | 16·g+5  | 4         | … index                                                          |
//! | 16·g+9  | 2         | passages through gate g, `u32`                                   |
//! | 16·g+11 | 1         | last accepted action code for gate g (0: none)                   |
//!
//! Unlisted registers in `0–63` read as 0. Reads of 0 or more than 125 registers answer 0x03,
//! reads outside `0–63` answer 0x02; other function codes answer 0x01 IllegalFunction.
//!
//! ## Holding registers: simulator only
//!
//! A real controller does not have these (it answers 0x02); [`GateSimulator`] does, so a demo
//! "walker" process can play the travellers over Modbus (FC06 or FC16, FC03 to read back):
//!
//! | address | content                                                              |
//! |---------|----------------------------------------------------------------------|
//! | 1000    | set the zone occupancy (persons in the inspection zone)              |
//! | 1001    | write a gate number 1–3 to record one passage through that gate      |
//!
//! [`ModbusGates::simulator_set_occupancy`] and [`ModbusGates::simulator_record_passage`] write
//! them.

mod config;
mod modbus;
mod model;
pub mod registers;
mod sim;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use config::{GateSimConfig, ModbusGatesConfig, ModbusTlsConfig};
pub use modbus::ModbusGates;
pub use model::{Refusal, SimLane, Transition};
pub use sim::{GateSimulator, SimHandle, sim_tls_config};

use crate::lane::procedure::{Fence, GateAction, GateCommand, GateId, GateState};

/// One gate as the controller reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateStatus {
    /// Which gate.
    pub gate: GateId,
    /// Its state.
    pub state: GateState,
    /// The fence of the last command accepted for this gate (0.0 before the first).
    pub fence: Fence,
    /// Passages through the gate since power-up.
    pub passages: u32,
    /// The last action accepted for this gate.
    pub last_action: Option<GateAction>,
}

/// The three gates and the lane-wide sensors and counters, read in one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneGates {
    /// Gates 1, 2 and 3, in that order.
    pub gates: [GateStatus; 3],
    /// The highest fence the controller has accepted (on any gate).
    pub fence: Fence,
    /// Persons the light curtains see in the inspection zone (between gates 1 and 2).
    pub zone_occupancy: u16,
    /// Commands refused for a stale fence since power-up.
    pub refused_stale: u32,
}

impl LaneGates {
    /// The status of `gate`.
    pub fn gate(&self, gate: GateId) -> &GateStatus {
        &self.gates[usize::from(gate.number() - 1)]
    }
}

/// What can go wrong commanding or reading the gates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// The controller refused the command: its fence is lower than one already accepted.
    #[error("{gate}: command under fence {fence} refused as stale{}", accepted_text(*.accepted))]
    Stale {
        /// The gate commanded.
        gate: GateId,
        /// The command's fence.
        fence: Fence,
        /// The highest fence the controller had accepted (if it could be read back).
        accepted: Option<Fence>,
    },
    /// The controller refused the command because of the gate's state (locked, fault).
    #[error("{gate}: {} refused by the controller (gate {})", .action.as_str(), state_text(*.state))]
    Refused {
        /// The gate commanded.
        gate: GateId,
        /// The action refused.
        action: GateAction,
        /// The gate's state (if it could be read back).
        state: Option<GateState>,
    },
    /// No connection to the controller could be made.
    #[error("gate controller {addr} unreachable: {reason}; check its power and network")]
    Unreachable {
        /// The controller's address.
        addr: SocketAddr,
        /// What failed.
        reason: String,
    },
    /// The controller did not answer in time.
    #[error("gate controller {addr} did not answer within {after:?}")]
    Timeout {
        /// The controller's address.
        addr: SocketAddr,
        /// The bound that ran out.
        after: Duration,
    },
    /// The connection failed during a request.
    #[error("gate controller {addr}: {reason}")]
    Io {
        /// The controller's address.
        addr: SocketAddr,
        /// What failed.
        reason: String,
    },
    /// The controller's reply does not follow the register map.
    #[error("gate controller {addr}: bad reply: {reason}")]
    Protocol {
        /// The controller's address.
        addr: SocketAddr,
        /// What is wrong with it.
        reason: String,
    },
}

fn accepted_text(accepted: Option<Fence>) -> String {
    accepted.map_or_else(String::new, |f| format!(" (controller has accepted {f})"))
}

fn state_text(state: Option<GateState>) -> &'static str {
    state.map_or("state unknown", GateState::as_str)
}

impl GateError {
    /// A stable identifier for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            GateError::Stale { .. } => "stale",
            GateError::Refused { .. } => "refused",
            GateError::Unreachable { .. } => "unreachable",
            GateError::Timeout { .. } => "timeout",
            GateError::Io { .. } => "io",
            GateError::Protocol { .. } => "protocol",
        }
    }
}

/// The lane's gate controller, as the lane runtime drives it.
pub trait GateController: Send + 'static {
    /// Sends one fenced command; `Ok` when the controller accepted it.
    fn command(&mut self, cmd: GateCommand) -> impl Future<Output = Result<(), GateError>> + Send;

    /// Reads the gates' states, fences, zone occupancy and counters in one snapshot.
    fn status(&mut self) -> impl Future<Output = Result<LaneGates, GateError>> + Send;
}
