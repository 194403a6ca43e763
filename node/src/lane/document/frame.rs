//! The document reader's frame format, and a sans-IO decoder that resynchronises after garbage.
//!
//! Document readers deliver what they read over a serial link, in the field usually through a
//! serial-to-Ethernet adaptor that exposes it as a TCP byte stream. One presented document is
//! one frame:
//!
//! ```text
//! STX (0x02)  line 1  CR  line 2  CR  line 3  [ GS (0x1D)  chip data as JSON ]  ETX (0x03)
//! ```
//!
//! * The MRZ lines are separated by CR (CRLF and LF are tolerated); the MRZ part is UTF-8
//!   without control characters other than CR, LF and TAB; it is delivered with its lines
//!   trimmed and joined by LF.
//! * The optional chip part is one JSON object (UTF-8; JSON escapes control characters, so it
//!   never holds STX, ETX or GS): the chip's data groups and security object as
//!   [`ChipSecurity`](super::ChipSecurity) (`{"dg1":…,"dg13":…,"sod":…}`, hex), or, from a reader
//!   that does not deliver them, the plain [`ChipData`](super::ChipData) (which the lane does
//!   not trust).
//! * A frame is at most [`MAX_FRAME_BYTES`] bytes from STX to ETX inclusive by default.
//! * Between frames, CR, LF and NUL (line idle, keep-alives) are ignored; other bytes are noise.
//!
//! The decoder never loses sync: noise before an STX is reported once when the next frame
//! starts; an STX inside a frame abandons the partial frame (reported) and starts a new one; a
//! frame that outgrows the limit is reported and skipped up to the next STX.

use std::collections::VecDeque;

use super::error::DocumentError;
use super::{ChipData, ChipSecurity, RawDocument};

/// Start of a frame.
pub const STX: u8 = 0x02;
/// End of a frame.
pub const ETX: u8 = 0x03;
/// Separates the MRZ from the chip data.
pub const GS: u8 = 0x1D;
/// Default largest frame, bytes, STX and ETX included.
pub const MAX_FRAME_BYTES: usize = 4096;

/// Encodes one document as a frame: the MRZ lines joined by CR, then the chip data as JSON.
///
/// Fails if the MRZ holds a framing byte (STX, ETX, GS) or the frame exceeds `max_frame_bytes`.
pub fn encode_frame(doc: &RawDocument, max_frame_bytes: usize) -> Result<Vec<u8>, DocumentError> {
    if doc.mrz.bytes().any(|b| matches!(b, STX | ETX | GS)) {
        return Err(DocumentError::Frame {
            reason: "the MRZ holds a framing byte".to_owned(),
        });
    }
    let mut frame = vec![STX];
    let lines = super::read::mrz_lines(&doc.mrz);
    frame.extend_from_slice(lines.join("\r").as_bytes());
    let chip = match (&doc.security, &doc.chip) {
        (Some(security), _) => Some(serde_json::to_vec(security)),
        (None, Some(chip)) => Some(serde_json::to_vec(chip)),
        (None, None) => None,
    };
    if let Some(json) = chip {
        frame.push(GS);
        let json = json.map_err(|e| DocumentError::Frame {
            reason: format!("chip data: {e}"),
        })?;
        frame.extend_from_slice(&json);
    }
    frame.push(ETX);
    if frame.len() > max_frame_bytes {
        return Err(DocumentError::FrameTooLarge {
            max: max_frame_bytes,
        });
    }
    Ok(frame)
}

/// Decodes the payload of one frame (between STX and ETX).
fn decode_payload(payload: &[u8]) -> Result<RawDocument, DocumentError> {
    let garbage = |reason: String| DocumentError::Frame { reason };
    let (mrz_bytes, chip_bytes) = match payload.iter().position(|&b| b == GS) {
        Some(i) => (&payload[..i], Some(&payload[i + 1..])),
        None => (payload, None),
    };
    let mrz = std::str::from_utf8(mrz_bytes)
        .map_err(|_| garbage("the MRZ part is not UTF-8".to_owned()))?;
    if mrz
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\r' | '\n' | '\t'))
    {
        return Err(garbage("control characters in the MRZ part".to_owned()));
    }
    if mrz.trim().is_empty() {
        return Err(garbage("empty frame".to_owned()));
    }
    let (chip, security) = match chip_bytes {
        None => (None, None),
        Some(bytes) => {
            let value = serde_json::from_slice::<serde_json::Value>(bytes)
                .map_err(|e| garbage(format!("chip data: {e}")))?;
            if value.get("sod").is_some() {
                let security = serde_json::from_value::<ChipSecurity>(value)
                    .map_err(|e| garbage(format!("chip security data: {e}")))?;
                (security.unverified_data(), Some(security))
            } else {
                let chip = serde_json::from_value::<ChipData>(value)
                    .map_err(|e| garbage(format!("chip data: {e}")))?;
                (Some(chip), None)
            }
        }
    };
    Ok(RawDocument {
        mrz: super::read::mrz_lines(mrz).join("\n"),
        chip,
        security,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames.
    Idle,
    /// After an STX.
    InFrame,
    /// Skipping the rest of an oversized frame.
    Skipping,
}

/// A sans-IO frame decoder: [`push`](Self::push) bytes as they arrive, then
/// [`poll`](Self::poll) documents and errors in order.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
    state: State,
    payload: Vec<u8>,
    noise: usize,
    out: VecDeque<Result<RawDocument, DocumentError>>,
}

impl FrameDecoder {
    /// A decoder accepting frames of up to `max_frame_bytes` (STX and ETX included).
    pub fn new(max_frame_bytes: usize) -> FrameDecoder {
        FrameDecoder {
            max_frame_bytes: max_frame_bytes.max(3),
            state: State::Idle,
            payload: Vec::new(),
            noise: 0,
            out: VecDeque::new(),
        }
    }

    /// Feeds bytes received from the reader.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match self.state {
                State::Idle => match b {
                    STX => self.start_frame(),
                    b'\r' | b'\n' | 0 => {}
                    _ => self.noise = self.noise.saturating_add(1),
                },
                State::InFrame => match b {
                    STX => {
                        self.out.push_back(Err(DocumentError::Frame {
                            reason: format!(
                                "frame abandoned after {} bytes by a new STX",
                                self.payload.len()
                            ),
                        }));
                        self.payload.clear();
                    }
                    ETX => {
                        self.out.push_back(decode_payload(&self.payload));
                        self.payload.clear();
                        self.state = State::Idle;
                    }
                    _ if self.payload.len() + 2 >= self.max_frame_bytes => {
                        self.out.push_back(Err(DocumentError::FrameTooLarge {
                            max: self.max_frame_bytes,
                        }));
                        self.payload = Vec::new();
                        self.state = State::Skipping;
                    }
                    _ => self.payload.push(b),
                },
                State::Skipping => match b {
                    STX => self.start_frame(),
                    ETX => self.state = State::Idle,
                    _ => {}
                },
            }
        }
    }

    fn start_frame(&mut self) {
        if self.noise > 0 {
            self.out.push_back(Err(DocumentError::Frame {
                reason: format!("{} bytes outside a frame skipped", self.noise),
            }));
            self.noise = 0;
        }
        self.payload.clear();
        self.state = State::InFrame;
    }

    /// The next decoded document or garbage report, in arrival order.
    pub fn poll(&mut self) -> Option<Result<RawDocument, DocumentError>> {
        self.out.pop_front()
    }

    /// Forgets any partial frame and pending noise (a new connection starts clean). Decoded
    /// but unpolled results are kept. Returns how many bytes of partial frame were dropped.
    pub fn reset(&mut self) -> usize {
        let dropped = self.payload.len();
        self.payload = Vec::new();
        self.noise = 0;
        self.state = State::Idle;
        dropped
    }
}
