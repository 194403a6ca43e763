//! [`ModbusGates`]: the gate controller client over Modbus TCP (tokio-modbus), plain or over
//! Modbus/TCP Security (mutual TLS; [`super::ModbusTlsConfig`]).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio_modbus::client::{Client, Context, tcp};
use tokio_modbus::{ExceptionCode, Request, Response, Slave};
use tracing::{debug, warn};

use super::registers::{self, HR_SIM_OCCUPANCY, HR_SIM_PASSAGE, STATUS_LEN};
use super::{GateController, GateError, LaneGates, ModbusGatesConfig};
use crate::lane::device_tls::DeviceConnector;
use crate::lane::procedure::{GateCommand, GateId};

/// The lane's gate controller over Modbus TCP.
///
/// Connects on first use; after an IO error, a timeout or a garbled reply it drops the
/// connection and connects again on the next call. Every call (connect, request, reply) is
/// bounded by the configured timeout.
pub struct ModbusGates {
    config: ModbusGatesConfig,
    ctx: Option<Context>,
    /// Built from the TLS files on first connection, then kept.
    tls: DeviceConnector,
}

impl std::fmt::Debug for ModbusGates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModbusGates")
            .field("address", &self.config.address)
            .field("unit_id", &self.config.unit_id)
            .field("connected", &self.ctx.is_some())
            .finish()
    }
}

/// How one Modbus call ended, before interpretation.
enum Call {
    Reply(Response),
    Exception(ExceptionCode),
}

impl ModbusGates {
    /// A client for the controller in `config` (nothing is connected yet).
    pub fn new(config: ModbusGatesConfig) -> ModbusGates {
        ModbusGates {
            config,
            ctx: None,
            tls: DeviceConnector::default(),
        }
    }

    /// A client already attached to a connection (the fuzzing harness's in-memory link).
    pub(crate) fn attached(config: ModbusGatesConfig, ctx: Context) -> ModbusGates {
        ModbusGates {
            config,
            ctx: Some(ctx),
            tls: DeviceConnector::default(),
        }
    }

    /// The controller's address.
    pub fn address(&self) -> SocketAddr {
        self.config.address
    }

    fn timeout(&self) -> Duration {
        self.config.timeout()
    }

    /// A new connection: plain Modbus TCP, or TLS with our certificate when configured.
    async fn connect(&mut self) -> Result<Context, String> {
        let addr = self.config.address;
        let slave = Slave(self.config.unit_id);
        let Some(tls) = &self.config.tls else {
            return tcp::connect_slave(addr, slave)
                .await
                .map_err(|e| e.to_string());
        };
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let stream = (self.tls)
            .handshake(tls, stream, &addr.ip().to_string())
            .await
            .map_err(|e| format!("Modbus/TCP Security: {e}"))?;
        Ok(tcp::attach_slave(stream, slave))
    }

    async fn connection(&mut self) -> Result<&mut Context, GateError> {
        let addr = self.config.address;
        if self.ctx.is_none() {
            let after = self.timeout();
            let ctx = match tokio::time::timeout(after, self.connect()).await {
                Ok(Ok(ctx)) => ctx,
                Ok(Err(reason)) => {
                    return Err(GateError::Unreachable { addr, reason });
                }
                Err(_) => {
                    return Err(GateError::Unreachable {
                        addr,
                        reason: format!("no connection within {:?}", self.timeout()),
                    });
                }
            };
            debug!(controller = %addr, "Connected to the gate controller.");
            self.ctx = Some(ctx);
        }
        self.ctx.as_mut().ok_or_else(|| GateError::Io {
            addr,
            reason: "not connected".to_string(),
        })
    }

    /// One request, bounded; drops the connection on anything but a well-formed reply.
    async fn call(&mut self, request: Request<'static>) -> Result<Call, GateError> {
        let addr = self.config.address;
        let after = self.timeout();
        let ctx = self.connection().await?;
        let result = tokio::time::timeout(after, ctx.call(request)).await;
        let err = match result {
            Ok(Ok(Ok(response))) => return Ok(Call::Reply(response)),
            Ok(Ok(Err(exception))) => return Ok(Call::Exception(exception)),
            Ok(Err(tokio_modbus::Error::Transport(e))) => GateError::Io {
                addr,
                reason: e.to_string(),
            },
            Ok(Err(tokio_modbus::Error::Protocol(e))) => GateError::Protocol {
                addr,
                reason: e.to_string(),
            },
            Err(_) => GateError::Timeout { addr, after },
        };
        warn!(controller = %addr, error = %err, code = err.code(), "Gate controller call failed; will reconnect.");
        self.ctx = None;
        Err(err)
    }

    fn protocol(&mut self, reason: String) -> GateError {
        // The stream may be out of step with us: start afresh next time.
        self.ctx = None;
        GateError::Protocol {
            addr: self.config.address,
            reason,
        }
    }

    async fn read_status(&mut self) -> Result<LaneGates, GateError> {
        match self
            .call(Request::ReadInputRegisters(0, STATUS_LEN))
            .await?
        {
            Call::Reply(Response::ReadInputRegisters(words)) => registers::decode_status(&words)
                .map_err(|e| self.protocol(format!("status registers: {e}"))),
            Call::Reply(other) => Err(self.protocol(format!("unexpected reply {other:?}"))),
            Call::Exception(e) => Err(self.protocol(format!("status read answered exception {e}"))),
        }
    }

    async fn write(&mut self, addr: u16, words: &[u16]) -> Result<Call, GateError> {
        let call = self
            .call(Request::WriteMultipleRegisters(addr, words.to_vec().into()))
            .await?;
        match call {
            Call::Reply(Response::WriteMultipleRegisters(a, n))
                if a == addr && usize::from(n) == words.len() =>
            {
                Ok(call)
            }
            Call::Exception(_) => Ok(call),
            Call::Reply(other) => Err(self.protocol(format!(
                "write of {} registers at {addr} answered {other:?}",
                words.len()
            ))),
        }
    }

    async fn send(&mut self, cmd: GateCommand) -> Result<(), GateError> {
        let (addr, words) = registers::encode_command(cmd);
        let exception = match self.write(addr, &words).await? {
            Call::Reply(_) => return Ok(()),
            Call::Exception(e) => e,
        };
        match exception {
            ExceptionCode::IllegalDataValue => {
                // Our action codes are always valid: the controller found the fence stale. Read
                // back what it has accepted, for the operator.
                let accepted = self.read_status().await.ok().map(|s| s.fence);
                if let Some(accepted) = accepted
                    && cmd.fence >= accepted
                {
                    return Err(GateError::Protocol {
                        addr: self.config.address,
                        reason: format!(
                            "{} {} under fence {} answered IllegalDataValue, yet the controller has only accepted {accepted}",
                            cmd.gate,
                            cmd.action.as_str(),
                            cmd.fence
                        ),
                    });
                }
                Err(GateError::Stale {
                    gate: cmd.gate,
                    fence: cmd.fence,
                    accepted,
                })
            }
            ExceptionCode::ServerDeviceFailure => {
                let state = self
                    .read_status()
                    .await
                    .ok()
                    .map(|s| s.gate(cmd.gate).state);
                Err(GateError::Refused {
                    gate: cmd.gate,
                    action: cmd.action,
                    state,
                })
            }
            other => Err(GateError::Protocol {
                addr: self.config.address,
                reason: format!("{} {}: exception {other}", cmd.gate, cmd.action.as_str()),
            }),
        }
    }

    async fn sim_write(&mut self, addr: u16, value: u16) -> Result<(), GateError> {
        match self.write(addr, &[value]).await? {
            Call::Reply(_) => Ok(()),
            Call::Exception(e) => Err(GateError::Protocol {
                addr: self.config.address,
                reason: format!(
                    "holding register {addr} answered exception {e} (only the gate simulator has it)"
                ),
            }),
        }
    }

    /// **Simulator only**: sets the zone occupancy of a [`GateSimulator`](super::GateSimulator)
    /// through its holding register 1000 (a real controller answers with an error).
    pub async fn simulator_set_occupancy(&mut self, persons: u16) -> Result<(), GateError> {
        self.sim_write(HR_SIM_OCCUPANCY, persons).await
    }

    /// **Simulator only**: records one passage through `gate` on a
    /// [`GateSimulator`](super::GateSimulator) through its holding register 1001.
    pub async fn simulator_record_passage(&mut self, gate: GateId) -> Result<(), GateError> {
        self.sim_write(HR_SIM_PASSAGE, u16::from(gate.number()))
            .await
    }
}

impl GateController for ModbusGates {
    async fn command(&mut self, cmd: GateCommand) -> Result<(), GateError> {
        let result = self.send(cmd).await;
        match &result {
            Ok(()) => {
                debug!(gate = %cmd.gate, action = cmd.action.as_str(), fence = %cmd.fence, "Gate command accepted.")
            }
            Err(e) => {
                warn!(gate = %cmd.gate, action = cmd.action.as_str(), fence = %cmd.fence, code = e.code(), error = %e, "Gate command failed.")
            }
        }
        result
    }

    fn status(&mut self) -> impl Future<Output = Result<LaneGates, GateError>> + Send {
        self.read_status()
    }
}
