//! The gate simulator's core, sans IO: three gates with simple physics, the fence check, the
//! counters, and the register map served from them. Time is passed in; nothing here sleeps or
//! touches a socket ([`sim`](super::sim) is the Modbus TCP driver around it).

use std::time::{Duration, Instant};

use tokio_modbus::{ExceptionCode, Request, Response};

use super::registers::{self, BLOCK_LEN, COMMAND_LEN, HR_SIM_OCCUPANCY, HR_SIM_PASSAGE, Word};
use super::{GateStatus, LaneGates};
use crate::lane::procedure::{Fence, GateAction, GateCommand, GateId, GateState};

/// Most registers one Modbus read may ask for.
const MAX_READ: u16 = 125;

/// Where a simulated gate leaf is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Motion {
    Closed,
    Opening { since: Instant },
    Open { since: Instant },
    Closing { since: Instant },
}

#[derive(Debug, Clone)]
struct SimGate {
    motion: Motion,
    locked: bool,
    fault: bool,
    fence: Fence,
    last_action: Option<GateAction>,
    passages: u32,
}

impl SimGate {
    fn state(&self) -> GateState {
        if self.fault {
            return GateState::Fault;
        }
        match self.motion {
            Motion::Opening { .. } | Motion::Closing { .. } => GateState::Moving,
            Motion::Open { .. } => GateState::Open,
            Motion::Closed if self.locked => GateState::Locked,
            Motion::Closed => GateState::Closed,
        }
    }
}

/// Why the simulated controller refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The fence is lower than the highest accepted (answered as IllegalDataValue, counted).
    Stale {
        /// The highest fence accepted so far.
        accepted: Fence,
    },
    /// The gate's state forbids the action: Open on a locked gate, Open or Close on a faulted
    /// one (answered as ServerDeviceFailure).
    State(GateState),
}

impl Refusal {
    /// The Modbus exception the register map answers with.
    pub fn exception(self) -> ExceptionCode {
        match self {
            Refusal::Stale { .. } => ExceptionCode::IllegalDataValue,
            Refusal::State(_) => ExceptionCode::ServerDeviceFailure,
        }
    }
}

/// A state change the driver may log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The gate.
    pub gate: GateId,
    /// Its state before.
    pub from: GateState,
    /// Its state now.
    pub to: GateState,
}

/// Three simulated gates and the lane's sensors, as a gate controller would hold them.
#[derive(Debug, Clone)]
pub struct SimLane {
    travel: Duration,
    hold_open: Duration,
    gates: [SimGate; 3],
    fence: Fence,
    zone_occupancy: u16,
    refused_stale: u32,
}

fn idx(gate: GateId) -> usize {
    usize::from(gate.number() - 1)
}

impl SimLane {
    /// All gates closed, nothing counted, the given fence remembered.
    pub fn new(travel: Duration, hold_open: Duration, fence: Fence) -> SimLane {
        let gate = SimGate {
            motion: Motion::Closed,
            locked: false,
            fault: false,
            fence: Fence::default(),
            last_action: None,
            passages: 0,
        };
        SimLane {
            travel,
            hold_open,
            gates: [gate.clone(), gate.clone(), gate],
            fence,
            zone_occupancy: 0,
            refused_stale: 0,
        }
    }

    /// Moves the gates on to `now`: opening → open after `travel`, open → closing after
    /// `hold_open`, closing → closed after `travel`. A faulted gate does not move. Returns the
    /// state changes.
    pub fn handle_time(&mut self, now: Instant) -> Vec<Transition> {
        let (travel, hold) = (self.travel, self.hold_open);
        let mut out = Vec::new();
        for (i, g) in self.gates.iter_mut().enumerate() {
            if g.fault {
                continue;
            }
            let from = g.state();
            loop {
                g.motion = match g.motion {
                    Motion::Opening { since } if now >= since + travel => Motion::Open {
                        since: since + travel,
                    },
                    Motion::Open { since } if !g.locked && now >= since + hold => Motion::Closing {
                        since: since + hold,
                    },
                    Motion::Closing { since } if now >= since + travel => Motion::Closed,
                    _ => break,
                };
            }
            let to = g.state();
            if from != to {
                out.push(Transition {
                    gate: GateId::ALL[i],
                    from,
                    to,
                });
            }
        }
        out
    }

    /// Checks a command's fence and carries it out. A stale command changes nothing but the
    /// refusal counter; a command the gate's state forbids changes nothing at all.
    pub fn handle_command(&mut self, now: Instant, cmd: GateCommand) -> Result<(), Refusal> {
        self.handle_time(now);
        if cmd.fence < self.fence {
            self.refused_stale = self.refused_stale.wrapping_add(1);
            return Err(Refusal::Stale {
                accepted: self.fence,
            });
        }
        let g = &mut self.gates[idx(cmd.gate)];
        match cmd.action {
            GateAction::Open => {
                if g.fault || g.locked {
                    return Err(Refusal::State(g.state()));
                }
                g.motion = match g.motion {
                    Motion::Closed | Motion::Closing { .. } => Motion::Opening { since: now },
                    Motion::Opening { since } => Motion::Opening { since },
                    // Opening an open gate re-arms its hold-open time.
                    Motion::Open { .. } => Motion::Open { since: now },
                };
            }
            GateAction::Close => {
                if g.fault {
                    return Err(Refusal::State(g.state()));
                }
                if let Motion::Opening { .. } | Motion::Open { .. } = g.motion {
                    g.motion = Motion::Closing { since: now };
                }
            }
            GateAction::Lock => {
                g.locked = true;
                if !g.fault
                    && let Motion::Opening { .. } | Motion::Open { .. } = g.motion
                {
                    g.motion = Motion::Closing { since: now };
                }
            }
            GateAction::Unlock => g.locked = false,
        }
        g.fence = cmd.fence;
        g.last_action = Some(cmd.action);
        self.fence = self.fence.max(cmd.fence);
        Ok(())
    }

    /// A technician's reset at the cabinet (the controller's key switch, not reachable over
    /// Modbus): the highest accepted fence goes back to zero, so the lane's own tokens are
    /// accepted again after a device on the gate network wrote a forged one.
    pub fn reset_fence(&mut self) {
        self.fence = Fence::default();
        for g in &mut self.gates {
            g.fence = Fence::default();
        }
    }

    /// Sets the number of persons the light curtains see in the inspection zone.
    pub fn set_occupancy(&mut self, n: u16) {
        self.zone_occupancy = n;
    }

    /// Counts one passage through `gate`.
    pub fn record_passage(&mut self, gate: GateId) {
        let g = &mut self.gates[idx(gate)];
        g.passages = g.passages.wrapping_add(1);
    }

    /// Puts `gate` in fault: it stops where it is and refuses Open and Close.
    pub fn inject_fault(&mut self, now: Instant, gate: GateId) {
        self.handle_time(now);
        self.gates[idx(gate)].fault = true;
    }

    /// Clears a fault: a gate that is not closed closes from `now`.
    pub fn clear_fault(&mut self, now: Instant, gate: GateId) {
        self.handle_time(now);
        let g = &mut self.gates[idx(gate)];
        if g.fault {
            g.fault = false;
            if g.motion != Motion::Closed {
                g.motion = Motion::Closing { since: now };
            }
        }
    }

    /// The status as the controller reports it at `now`.
    pub fn status(&mut self, now: Instant) -> LaneGates {
        self.handle_time(now);
        let gate = |i: usize| GateStatus {
            gate: GateId::ALL[i],
            state: self.gates[i].state(),
            fence: self.gates[i].fence,
            passages: self.gates[i].passages,
            last_action: self.gates[i].last_action,
        };
        LaneGates {
            gates: [gate(0), gate(1), gate(2)],
            fence: self.fence,
            zone_occupancy: self.zone_occupancy,
            refused_stale: self.refused_stale,
        }
    }

    /// Serves one Modbus request against the register map (module docs of [`gate`](super)).
    pub fn handle_request(
        &mut self,
        now: Instant,
        request: Request<'_>,
    ) -> Result<Response, ExceptionCode> {
        match request {
            Request::ReadInputRegisters(addr, cnt) => {
                let image = registers::encode_status(&self.status(now));
                read_range(&image, 0, addr, cnt).map(Response::ReadInputRegisters)
            }
            Request::ReadHoldingRegisters(addr, cnt) => {
                let words = self.holding_block(addr)?;
                let base = addr - addr % BLOCK_LEN;
                let base = if addr >= HR_SIM_OCCUPANCY {
                    HR_SIM_OCCUPANCY
                } else {
                    base
                };
                read_range(&words, base, addr, cnt).map(Response::ReadHoldingRegisters)
            }
            Request::WriteMultipleRegisters(addr, words) => {
                let n = u16::try_from(words.len()).map_err(|_| ExceptionCode::IllegalDataValue)?;
                self.write(now, addr, &words)?;
                Ok(Response::WriteMultipleRegisters(addr, n))
            }
            Request::WriteSingleRegister(addr, word) => {
                self.write(now, addr, &[word])?;
                Ok(Response::WriteSingleRegister(addr, word))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }

    /// The readable holding block containing `addr`: a gate's last accepted command, or the
    /// simulator's registers.
    fn holding_block(&self, addr: u16) -> Result<Vec<Word>, ExceptionCode> {
        if (HR_SIM_OCCUPANCY..=HR_SIM_PASSAGE).contains(&addr) {
            return Ok(vec![self.zone_occupancy, 0]);
        }
        let gate =
            registers::gate_of_command_register(addr).ok_or(ExceptionCode::IllegalDataAddress)?;
        let g = &self.gates[idx(gate)];
        let words = match g.last_action {
            Some(action) => registers::encode_command(GateCommand {
                gate,
                action,
                fence: g.fence,
            })
            .1
            .to_vec(),
            None => vec![0; usize::from(COMMAND_LEN)],
        };
        Ok(words)
    }

    fn write(&mut self, now: Instant, addr: u16, words: &[Word]) -> Result<(), ExceptionCode> {
        if registers::gate_of_command_register(addr).is_some() {
            // Fence and action go together in one FC16 covering the whole block, or not at all.
            let cmd = registers::decode_command(addr, words).map_err(|e| match e {
                registers::MapError::Action(_) => ExceptionCode::IllegalDataValue,
                _ => ExceptionCode::IllegalDataAddress,
            })?;
            return self.handle_command(now, cmd).map_err(Refusal::exception);
        }
        let end = usize::from(addr) + words.len();
        if addr < HR_SIM_OCCUPANCY || end > usize::from(HR_SIM_PASSAGE) + 1 || words.is_empty() {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        // Check every value before changing anything.
        let mut passage = None;
        for (i, &w) in words.iter().enumerate() {
            if addr + i as u16 == HR_SIM_PASSAGE {
                let gate = u8::try_from(w)
                    .ok()
                    .and_then(GateId::from_number)
                    .ok_or(ExceptionCode::IllegalDataValue)?;
                passage = Some(gate);
            }
        }
        if addr == HR_SIM_OCCUPANCY {
            self.zone_occupancy = words[0];
        }
        if let Some(gate) = passage {
            self.record_passage(gate);
        }
        Ok(())
    }
}

/// `cnt` registers from `addr` out of `image`, which starts at register `base`.
fn read_range(image: &[Word], base: u16, addr: u16, cnt: u16) -> Result<Vec<Word>, ExceptionCode> {
    if cnt == 0 || cnt > MAX_READ {
        return Err(ExceptionCode::IllegalDataValue);
    }
    let from = usize::from(addr)
        .checked_sub(usize::from(base))
        .ok_or(ExceptionCode::IllegalDataAddress)?;
    let to = from + usize::from(cnt);
    image
        .get(from..to)
        .map(<[Word]>::to_vec)
        .ok_or(ExceptionCode::IllegalDataAddress)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::fmt::Write as _;

    use super::*;

    fn owned(words: &[Word]) -> Cow<'static, [Word]> {
        Cow::Owned(words.to_vec())
    }

    const TRAVEL: Duration = Duration::from_millis(300);
    const HOLD: Duration = Duration::from_millis(2000);

    fn cmd(gate: u8, action: GateAction, term: u64, index: u64) -> GateCommand {
        GateCommand {
            gate: GateId::from_number(gate).expect("gate 1-3"),
            action,
            fence: Fence { term, index },
        }
    }

    fn states(lane: &mut SimLane, now: Instant) -> String {
        let s = lane.status(now);
        s.gates
            .iter()
            .map(|g| g.state.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    enum Step {
        At(u64),
        Cmd(GateCommand),
        Fault(u8),
        Clear(u8),
    }
    use GateAction::*;
    use Step::*;

    /// Runs a script against a fresh lane (fence 1.0 remembered) and renders one line per step:
    /// the time, what happened, and the three gates' states.
    fn trace(steps: &[Step]) -> String {
        let t0 = Instant::now();
        let mut now = t0;
        let mut lane = SimLane::new(TRAVEL, HOLD, Fence { term: 1, index: 0 });
        let mut out = String::new();
        for step in steps {
            let what = match step {
                At(ms) => {
                    now = t0 + Duration::from_millis(*ms);
                    "tick".to_string()
                }
                Cmd(c) => format!(
                    "{} {} @{} -> {:?}",
                    c.gate,
                    c.action.as_str(),
                    c.fence,
                    lane.handle_command(now, *c)
                ),
                Fault(g) => {
                    lane.inject_fault(now, GateId::from_number(*g).expect("gate"));
                    format!("fault gate {g}")
                }
                Clear(g) => {
                    lane.clear_fault(now, GateId::from_number(*g).expect("gate"));
                    format!("clear gate {g}")
                }
            };
            let ms = (now - t0).as_millis();
            let st = states(&mut lane, now);
            writeln!(out, "{ms:>5} {what:<60} | {st}").expect("string");
        }
        let s = lane.status(now);
        writeln!(out, "fence {} refused {}", s.fence, s.refused_stale).expect("string");
        out
    }

    #[test]
    fn physics_and_fences() {
        let got = trace(&[
            Cmd(cmd(1, Open, 1, 1)),
            At(299),
            At(300),
            At(2299),
            At(2300),
            At(2600),
            Cmd(cmd(2, Lock, 1, 2)),
            Cmd(cmd(2, Open, 1, 3)),
            Cmd(cmd(2, Unlock, 1, 3)),
            Cmd(cmd(2, Open, 1, 3)),
            At(2800),
            Cmd(cmd(2, Close, 1, 3)),
            At(2900),
            At(3100),
            Cmd(cmd(3, Open, 1, 2)),
            Cmd(cmd(3, Open, 0, 9)),
            Cmd(cmd(3, Open, 2, 0)),
            Cmd(cmd(1, Close, 1, 9)),
            At(3400),
            Cmd(cmd(3, Lock, 2, 0)),
            At(3700),
            Fault(1),
            Cmd(cmd(1, Open, 2, 0)),
            Cmd(cmd(1, Lock, 2, 0)),
            Clear(1),
            At(5000),
        ]);
        expect_test::expect![[r#"
                0 gate 1 open @1.1 -> Ok(())                                   | moving closed closed
              299 tick                                                         | moving closed closed
              300 tick                                                         | open closed closed
             2299 tick                                                         | open closed closed
             2300 tick                                                         | moving closed closed
             2600 tick                                                         | closed closed closed
             2600 gate 2 lock @1.2 -> Ok(())                                   | closed locked closed
             2600 gate 2 open @1.3 -> Err(State(Locked))                       | closed locked closed
             2600 gate 2 unlock @1.3 -> Ok(())                                 | closed closed closed
             2600 gate 2 open @1.3 -> Ok(())                                   | closed moving closed
             2800 tick                                                         | closed moving closed
             2800 gate 2 close @1.3 -> Ok(())                                  | closed moving closed
             2900 tick                                                         | closed moving closed
             3100 tick                                                         | closed closed closed
             3100 gate 3 open @1.2 -> Err(Stale { accepted: Fence { term: 1, index: 3 } }) | closed closed closed
             3100 gate 3 open @0.9 -> Err(Stale { accepted: Fence { term: 1, index: 3 } }) | closed closed closed
             3100 gate 3 open @2.0 -> Ok(())                                   | closed closed moving
             3100 gate 1 close @1.9 -> Err(Stale { accepted: Fence { term: 2, index: 0 } }) | closed closed moving
             3400 tick                                                         | closed closed open
             3400 gate 3 lock @2.0 -> Ok(())                                   | closed closed moving
             3700 tick                                                         | closed closed locked
             3700 fault gate 1                                                 | fault closed locked
             3700 gate 1 open @2.0 -> Err(State(Fault))                        | fault closed locked
             3700 gate 1 lock @2.0 -> Ok(())                                   | fault closed locked
             3700 clear gate 1                                                 | locked closed locked
             5000 tick                                                         | locked closed locked
            fence 2.0 refused 3
        "#]]
        .assert_eq(&got);
    }

    #[test]
    fn requests_against_the_map() {
        let now = Instant::now();
        let mut lane = SimLane::new(TRAVEL, HOLD, Fence::default());
        let (addr, words) = registers::encode_command(cmd(1, Open, 1, 1));
        let ok = lane.handle_request(now, Request::WriteMultipleRegisters(addr, owned(&words)));
        assert_eq!(ok, Ok(Response::WriteMultipleRegisters(16, 9)));
        let cases: Vec<(Request<'static>, ExceptionCode)> = vec![
            // Part of a block, a block at the wrong address, a single-register write into it.
            (
                Request::WriteMultipleRegisters(16, owned(&words[..8])),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::WriteMultipleRegisters(17, owned(&words)),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::WriteMultipleRegisters(0, owned(&words)),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::WriteSingleRegister(24, 1),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::WriteMultipleRegisters(16, owned(&[0, 0, 0, 1, 0, 0, 0, 1, 9])),
                ExceptionCode::IllegalDataValue,
            ),
            (
                Request::ReadInputRegisters(60, 5),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::ReadInputRegisters(0, 0),
                ExceptionCode::IllegalDataValue,
            ),
            (
                Request::ReadInputRegisters(0, 126),
                ExceptionCode::IllegalDataValue,
            ),
            (
                Request::ReadHoldingRegisters(9, 1),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::ReadHoldingRegisters(20, 9),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::WriteSingleRegister(HR_SIM_PASSAGE, 4),
                ExceptionCode::IllegalDataValue,
            ),
            (
                Request::WriteMultipleRegisters(HR_SIM_PASSAGE, owned(&[1, 1])),
                ExceptionCode::IllegalDataAddress,
            ),
            (
                Request::WriteSingleRegister(999, 1),
                ExceptionCode::IllegalDataAddress,
            ),
            (Request::ReadCoils(0, 1), ExceptionCode::IllegalFunction),
        ];
        for (req, want) in cases {
            let dbg = format!("{req:?}");
            assert_eq!(lane.handle_request(now, req), Err(want), "{dbg}");
        }
        // Nothing above changed anything: one accepted command, no refusals counted.
        let s = lane.status(now);
        assert_eq!(s.fence, Fence { term: 1, index: 1 });
        assert_eq!(s.refused_stale, 0);
        assert_eq!(
            lane.handle_request(now, Request::ReadHoldingRegisters(16, 9)),
            Ok(Response::ReadHoldingRegisters(words.to_vec()))
        );
        // The simulator's registers: occupancy and passages, together or alone.
        assert!(
            lane.handle_request(
                now,
                Request::WriteMultipleRegisters(HR_SIM_OCCUPANCY, owned(&[3, 2]))
            )
            .is_ok()
        );
        assert!(
            lane.handle_request(now, Request::WriteSingleRegister(HR_SIM_PASSAGE, 2))
                .is_ok()
        );
        assert_eq!(
            lane.handle_request(now, Request::ReadHoldingRegisters(HR_SIM_OCCUPANCY, 1)),
            Ok(Response::ReadHoldingRegisters(vec![3]))
        );
        let s = lane.status(now);
        assert_eq!((s.zone_occupancy, s.gates[1].passages), (3, 2));
        let Ok(Response::ReadInputRegisters(w)) =
            lane.handle_request(now, Request::ReadInputRegisters(0, 64))
        else {
            panic!("status read failed");
        };
        assert_eq!(registers::decode_status(&w), Ok(s));
    }
}
