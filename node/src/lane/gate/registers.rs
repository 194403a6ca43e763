//! The gate controller's Modbus register map as pure functions: words in, words out, no IO.
//!
//! The map itself is documented on the [`gate`](super) module. Every decoder checks the length of
//! what it is given and returns a [`MapError`] — never panics — on short, long or unknown input.

use super::{GateStatus, LaneGates};
use crate::lane::procedure::{Fence, GateAction, GateCommand, GateId, GateState};

/// A Modbus register (16 bits).
pub type Word = u16;

/// Version of the register map, readable at input register [`IR_MAP_VERSION`].
pub const MAP_VERSION: Word = 1;

/// Registers in one gate's command block (fence term 4, fence index 4, action 1).
pub const COMMAND_LEN: u16 = 9;
/// Registers in each block of the map (the lane block and one per gate), input and holding alike.
pub const BLOCK_LEN: u16 = 16;
/// Input registers covering the whole status (the lane block and three gate blocks): one read.
pub const STATUS_LEN: u16 = 4 * BLOCK_LEN;

/// Input register: the map version ([`MAP_VERSION`]).
pub const IR_MAP_VERSION: u16 = 0;
/// Input register: persons in the inspection zone (light curtains between gates 1 and 2).
pub const IR_ZONE_OCCUPANCY: u16 = 1;
/// Input registers (2): commands refused for a stale fence, `u32`.
pub const IR_REFUSED_STALE: u16 = 2;
/// Input registers (4): term of the highest fence accepted on any gate, `u64`.
pub const IR_FENCE_TERM: u16 = 4;
/// Input registers (4): index of the highest fence accepted on any gate, `u64`.
pub const IR_FENCE_INDEX: u16 = 8;

/// Offset in a gate's input block: state code.
pub const GATE_STATE: u16 = 0;
/// Offset in a gate's input block (4): term of the fence of the last command accepted for it.
pub const GATE_FENCE_TERM: u16 = 1;
/// Offset in a gate's input block (4): index of that fence.
pub const GATE_FENCE_INDEX: u16 = 5;
/// Offset in a gate's input block (2): passages through the gate, `u32`.
pub const GATE_PASSAGES: u16 = 9;
/// Offset in a gate's input block: code of the last action accepted for it (0: none yet).
pub const GATE_LAST_ACTION: u16 = 11;

/// Holding register (simulator only): set the zone occupancy (a demo "walker" writes it).
pub const HR_SIM_OCCUPANCY: u16 = 1000;
/// Holding register (simulator only): write a gate number (1–3) to record one passage through it.
pub const HR_SIM_PASSAGE: u16 = 1001;

/// What a register slice or value cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The slice has the wrong number of registers.
    #[error("expected {expected} registers, got {got}")]
    Length {
        /// Registers the map needs.
        expected: usize,
        /// Registers given.
        got: usize,
    },
    /// No such address in the map (or not the start of a block).
    #[error("no command block starts at holding register {0}")]
    Address(u16),
    /// A state code the map does not define.
    #[error("unknown gate state code {0}")]
    State(Word),
    /// An action code the map does not define.
    #[error("unknown gate action code {0}")]
    Action(Word),
    /// The map version is not the one this build speaks.
    #[error("register map version {0}, this build speaks version {MAP_VERSION}")]
    Version(Word),
}

/// First input/holding register of gate `gate`'s block: `16 × n`.
pub fn gate_block(gate: GateId) -> u16 {
    BLOCK_LEN * u16::from(gate.number())
}

/// The gate whose command block starts at holding register `addr`, if any.
pub fn gate_of_command_block(addr: u16) -> Option<GateId> {
    if !addr.is_multiple_of(BLOCK_LEN) {
        return None;
    }
    u8::try_from(addr / BLOCK_LEN)
        .ok()
        .and_then(GateId::from_number)
}

/// The gate whose command block contains holding register `addr` (anywhere in it), if any.
pub fn gate_of_command_register(addr: u16) -> Option<GateId> {
    let gate = GateId::from_number(u8::try_from(addr / BLOCK_LEN).ok()?)?;
    (addr - gate_block(gate) < COMMAND_LEN).then_some(gate)
}

/// Action code: 1 open, 2 close, 3 lock, 4 unlock.
pub fn action_code(action: GateAction) -> Word {
    match action {
        GateAction::Open => 1,
        GateAction::Close => 2,
        GateAction::Lock => 3,
        GateAction::Unlock => 4,
    }
}

/// The action with code `code`.
pub fn action_from_code(code: Word) -> Result<GateAction, MapError> {
    match code {
        1 => Ok(GateAction::Open),
        2 => Ok(GateAction::Close),
        3 => Ok(GateAction::Lock),
        4 => Ok(GateAction::Unlock),
        other => Err(MapError::Action(other)),
    }
}

/// State code: 0 closed, 1 moving, 2 open, 3 locked, 4 fault.
pub fn state_code(state: GateState) -> Word {
    match state {
        GateState::Closed => 0,
        GateState::Moving => 1,
        GateState::Open => 2,
        GateState::Locked => 3,
        GateState::Fault => 4,
    }
}

/// The state with code `code`.
pub fn state_from_code(code: Word) -> Result<GateState, MapError> {
    match code {
        0 => Ok(GateState::Closed),
        1 => Ok(GateState::Moving),
        2 => Ok(GateState::Open),
        3 => Ok(GateState::Locked),
        4 => Ok(GateState::Fault),
        other => Err(MapError::State(other)),
    }
}

/// `v` as four registers, most significant word first.
pub fn u64_words(v: u64) -> [Word; 4] {
    [
        (v >> 48) as Word,
        (v >> 32) as Word,
        (v >> 16) as Word,
        v as Word,
    ]
}

/// `v` as two registers, most significant word first.
pub fn u32_words(v: u32) -> [Word; 2] {
    [(v >> 16) as Word, v as Word]
}

/// Four registers (most significant first) as a `u64`.
pub fn words_u64(w: &[Word]) -> Result<u64, MapError> {
    let w: &[Word; 4] = w.try_into().map_err(|_| MapError::Length {
        expected: 4,
        got: w.len(),
    })?;
    Ok(w.iter().fold(0u64, |acc, &x| (acc << 16) | u64::from(x)))
}

/// Two registers (most significant first) as a `u32`.
pub fn words_u32(w: &[Word]) -> Result<u32, MapError> {
    let w: &[Word; 2] = w.try_into().map_err(|_| MapError::Length {
        expected: 2,
        got: w.len(),
    })?;
    Ok((u32::from(w[0]) << 16) | u32::from(w[1]))
}

fn fence_words(fence: Fence) -> [Word; 8] {
    let mut out = [0; 8];
    out[..4].copy_from_slice(&u64_words(fence.term));
    out[4..].copy_from_slice(&u64_words(fence.index));
    out
}

fn words_fence(w: &[Word]) -> Result<Fence, MapError> {
    if w.len() != 8 {
        return Err(MapError::Length {
            expected: 8,
            got: w.len(),
        });
    }
    Ok(Fence {
        term: words_u64(&w[..4])?,
        index: words_u64(&w[4..])?,
    })
}

/// A command as one Write Multiple Registers (FC16) request: the block's first holding register
/// and its nine words (fence term, fence index, action code).
pub fn encode_command(cmd: GateCommand) -> (u16, [Word; COMMAND_LEN as usize]) {
    let mut words = [0; COMMAND_LEN as usize];
    words[..8].copy_from_slice(&fence_words(cmd.fence));
    words[8] = action_code(cmd.action);
    (gate_block(cmd.gate), words)
}

/// The command written to holding register `addr`: `addr` must start a gate's command block and
/// `words` must be exactly its nine registers.
pub fn decode_command(addr: u16, words: &[Word]) -> Result<GateCommand, MapError> {
    let gate = gate_of_command_block(addr).ok_or(MapError::Address(addr))?;
    if words.len() != usize::from(COMMAND_LEN) {
        return Err(MapError::Length {
            expected: usize::from(COMMAND_LEN),
            got: words.len(),
        });
    }
    Ok(GateCommand {
        gate,
        action: action_from_code(words[8])?,
        fence: words_fence(&words[..8])?,
    })
}

/// The whole status as input registers 0–63.
pub fn encode_status(lane: &LaneGates) -> [Word; STATUS_LEN as usize] {
    let mut w = [0; STATUS_LEN as usize];
    let put = |w: &mut [Word; STATUS_LEN as usize], at: u16, src: &[Word]| {
        let at = usize::from(at);
        w[at..at + src.len()].copy_from_slice(src);
    };
    put(&mut w, IR_MAP_VERSION, &[MAP_VERSION]);
    put(&mut w, IR_ZONE_OCCUPANCY, &[lane.zone_occupancy]);
    put(&mut w, IR_REFUSED_STALE, &u32_words(lane.refused_stale));
    put(&mut w, IR_FENCE_TERM, &fence_words(lane.fence));
    for g in &lane.gates {
        let base = gate_block(g.gate);
        put(&mut w, base + GATE_STATE, &[state_code(g.state)]);
        put(&mut w, base + GATE_FENCE_TERM, &fence_words(g.fence));
        put(&mut w, base + GATE_PASSAGES, &u32_words(g.passages));
        put(
            &mut w,
            base + GATE_LAST_ACTION,
            &[g.last_action.map_or(0, action_code)],
        );
    }
    w
}

/// The status from input registers 0–63 (exactly [`STATUS_LEN`] words).
pub fn decode_status(w: &[Word]) -> Result<LaneGates, MapError> {
    if w.len() != usize::from(STATUS_LEN) {
        return Err(MapError::Length {
            expected: usize::from(STATUS_LEN),
            got: w.len(),
        });
    }
    let at = |from: u16, len: u16| &w[usize::from(from)..usize::from(from + len)];
    if w[usize::from(IR_MAP_VERSION)] != MAP_VERSION {
        return Err(MapError::Version(w[usize::from(IR_MAP_VERSION)]));
    }
    let gate = |gate: GateId| -> Result<GateStatus, MapError> {
        let base = gate_block(gate);
        let last = w[usize::from(base + GATE_LAST_ACTION)];
        Ok(GateStatus {
            gate,
            state: state_from_code(w[usize::from(base + GATE_STATE)])?,
            fence: words_fence(at(base + GATE_FENCE_TERM, 8))?,
            passages: words_u32(at(base + GATE_PASSAGES, 2))?,
            last_action: if last == 0 {
                None
            } else {
                Some(action_from_code(last)?)
            },
        })
    };
    Ok(LaneGates {
        gates: [gate(GateId::One)?, gate(GateId::Two)?, gate(GateId::Three)?],
        fence: words_fence(at(IR_FENCE_TERM, 8))?,
        zone_occupancy: w[usize::from(IR_ZONE_OCCUPANCY)],
        refused_stale: words_u32(at(IR_REFUSED_STALE, 2))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(gate: GateId, action: GateAction, term: u64, index: u64) -> GateCommand {
        GateCommand {
            gate,
            action,
            fence: Fence { term, index },
        }
    }

    #[test]
    fn command_round_trips_and_lays_out_big_endian() {
        let c = cmd(
            GateId::Two,
            GateAction::Lock,
            0x0102_0304_0506_0708,
            u64::MAX,
        );
        let (addr, words) = encode_command(c);
        assert_eq!(addr, 32);
        assert_eq!(
            words,
            [
                0x0102, 0x0304, 0x0506, 0x0708, 0xffff, 0xffff, 0xffff, 0xffff, 3
            ]
        );
        assert_eq!(decode_command(addr, &words), Ok(c));
        for gate in GateId::ALL {
            for action in [
                GateAction::Open,
                GateAction::Close,
                GateAction::Lock,
                GateAction::Unlock,
            ] {
                let c = cmd(gate, action, 7, 9);
                let (addr, words) = encode_command(c);
                assert_eq!(decode_command(addr, &words), Ok(c));
            }
        }
    }

    #[test]
    fn malformed_commands_are_errors() {
        let (_, words) = encode_command(cmd(GateId::One, GateAction::Open, 1, 1));
        let cases: &[(u16, &[Word], MapError)] = &[
            (0, &words, MapError::Address(0)),
            (17, &words, MapError::Address(17)),
            (64, &words, MapError::Address(64)),
            (u16::MAX, &words, MapError::Address(u16::MAX)),
            (
                16,
                &words[..8],
                MapError::Length {
                    expected: 9,
                    got: 8,
                },
            ),
            (
                16,
                &[],
                MapError::Length {
                    expected: 9,
                    got: 0,
                },
            ),
            (
                16,
                &[0; 10],
                MapError::Length {
                    expected: 9,
                    got: 10,
                },
            ),
            (16, &[0; 9], MapError::Action(0)),
            (16, &[0, 0, 0, 0, 0, 0, 0, 0, 5], MapError::Action(5)),
        ];
        for (addr, words, want) in cases {
            assert_eq!(
                decode_command(*addr, words).as_ref(),
                Err(want),
                "{addr} {words:?}"
            );
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(gate_of_command_block(16), Some(GateId::One));
        assert_eq!(gate_of_command_block(48), Some(GateId::Three));
        assert_eq!(gate_of_command_block(0), None);
        assert_eq!(gate_of_command_block(33), None);
        assert_eq!(gate_of_command_register(24), Some(GateId::One));
        assert_eq!(gate_of_command_register(25), None);
        assert_eq!(gate_of_command_register(40), Some(GateId::Two));
        assert_eq!(gate_of_command_register(15), None);
        assert_eq!(gate_of_command_register(64), None);
        assert_eq!(gate_of_command_register(u16::MAX), None);
    }

    fn sample() -> LaneGates {
        LaneGates {
            gates: [
                GateStatus {
                    gate: GateId::One,
                    state: GateState::Open,
                    fence: Fence { term: 3, index: 40 },
                    passages: 70_000,
                    last_action: Some(GateAction::Open),
                },
                GateStatus {
                    gate: GateId::Two,
                    state: GateState::Locked,
                    fence: Fence { term: 2, index: 9 },
                    passages: 1,
                    last_action: Some(GateAction::Lock),
                },
                GateStatus {
                    gate: GateId::Three,
                    state: GateState::Fault,
                    fence: Fence::default(),
                    passages: 0,
                    last_action: None,
                },
            ],
            fence: Fence { term: 3, index: 40 },
            zone_occupancy: 2,
            refused_stale: 0x0001_0002,
        }
    }

    #[test]
    fn status_round_trips() {
        let s = sample();
        let w = encode_status(&s);
        assert_eq!(&w[..12], &[1, 2, 1, 2, 0, 0, 0, 3, 0, 0, 0, 40]);
        // Gate 1 at 16: state open (2), fence 3.40, passages 70 000 = 0x0001_1170, action open.
        assert_eq!(&w[16..28], &[2, 0, 0, 0, 3, 0, 0, 0, 40, 1, 0x1170, 1]);
        assert_eq!(decode_status(&w), Ok(s));
    }

    #[test]
    fn malformed_status_is_an_error() {
        let good = encode_status(&sample());
        let with = |at: usize, v: Word| {
            let mut w = good;
            w[at] = v;
            w
        };
        let cases: Vec<(Vec<Word>, MapError)> = vec![
            (
                vec![],
                MapError::Length {
                    expected: 64,
                    got: 0,
                },
            ),
            (
                good[..63].to_vec(),
                MapError::Length {
                    expected: 64,
                    got: 63,
                },
            ),
            (
                [&good[..], &[0]].concat(),
                MapError::Length {
                    expected: 64,
                    got: 65,
                },
            ),
            (with(0, 2).to_vec(), MapError::Version(2)),
            (with(32, 9).to_vec(), MapError::State(9)),
            (with(48 + 11, 77).to_vec(), MapError::Action(77)),
        ];
        for (w, want) in cases {
            assert_eq!(decode_status(&w), Err(want));
        }
    }

    #[test]
    fn word_helpers_reject_wrong_lengths() {
        assert_eq!(
            words_u64(&u64_words(0xdead_beef_0bad_f00d)),
            Ok(0xdead_beef_0bad_f00d)
        );
        assert_eq!(words_u32(&u32_words(0xdead_beef)), Ok(0xdead_beef));
        assert_eq!(
            words_u64(&[1, 2, 3]),
            Err(MapError::Length {
                expected: 4,
                got: 3
            })
        );
        assert_eq!(
            words_u32(&[1]),
            Err(MapError::Length {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(state_from_code(5), Err(MapError::State(5)));
        for s in [
            GateState::Closed,
            GateState::Moving,
            GateState::Open,
            GateState::Locked,
            GateState::Fault,
        ] {
            assert_eq!(state_from_code(state_code(s)), Ok(s));
        }
    }
}
