//! The fingerprint reader at gate 2: capture with a quality score. Matching is the authorities'
//! job; the lane only captures and forwards the template.
//!
//! Real readers come with vendor SDKs that Clearway cannot link. A small site adaptor wraps the
//! SDK and speaks the **reader protocol** below; [`TcpFingerprintReader`] is its client and
//! [`FingerprintSimulator`] a **simulated** reader speaking the same protocol for demos and tests.
//!
//! # Reader protocol (version 1)
//!
//! TCP, the adaptor listening. Newline-delimited JSON: each message is one UTF-8 JSON object on
//! one line ending in `\n`, at most 64 KiB including the newline. The client sends one request
//! and reads one reply before sending the next; a connection carries any number of them.
//!
//! Request — capture one finger, waiting up to `timeout_ms` for it to be placed:
//!
//! ```json
//! {"op":"capture","timeout_ms":5000}
//! ```
//!
//! Replies — a capture, with its NFIQ 2 quality (0–100) and the template (ISO/IEC 19794-2
//! minutiae record) in lowercase or uppercase hex:
//!
//! ```json
//! {"quality":72,"template":"464d520020323000..."}
//! ```
//!
//! or a failure, with an optional `message` for the log:
//!
//! ```json
//! {"error":"no_finger"}
//! {"error":"device","message":"sensor not calibrated"}
//! ```
//!
//! | `error`       | meaning                                                        |
//! |---------------|----------------------------------------------------------------|
//! | `no_finger`   | no finger was placed before `timeout_ms` ran out               |
//! | `timeout`     | the SDK gave up (a finger was there but no image was taken)    |
//! | `busy`        | the reader is serving another request                          |
//! | `device`      | the sensor or SDK failed                                       |
//! | `bad_request` | the request was not understood                                 |
//!
//! Other codes are passed on as [`FingerprintError::Reader`]. Unknown fields are ignored.
//! The adaptor should answer within `timeout_ms` plus a second; the client gives up after
//! `timeout_ms` plus its configured reply margin and then drops the connection.
//!
//! The template is biometric data: neither side logs it, and the client wipes its buffers.

mod client;
mod config;
mod sim;
pub mod wire;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

pub use client::TcpFingerprintReader;
pub use config::{FingerprintSimConfig, TcpFingerprintReaderConfig};
pub use sim::{FingerprintSimulator, SimFingerprintHandle, SimOutcome};

pub use crate::lane::procedure::FingerprintCapture;

/// What can go wrong capturing a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// No finger was placed in time.
    #[error("no finger on the reader; ask the traveller to place a finger")]
    NoFinger,
    /// The capture's quality is below the minimum.
    #[error(
        "fingerprint quality {quality} is below the minimum {minimum}; ask the traveller to try again"
    )]
    LowQuality {
        /// The capture's NFIQ 2 quality.
        quality: u8,
        /// The configured minimum.
        minimum: u8,
    },
    /// The reader (or the client's bound) timed out.
    #[error("fingerprint reader timed out{}", after_text(*.after))]
    Timeout {
        /// The client's bound that ran out, or `None` when the reader itself reported a timeout.
        after: Option<Duration>,
    },
    /// The reader reported a failure.
    #[error("fingerprint reader failed: {code}{}", message_text(.message))]
    Reader {
        /// The reader's error code (`device`, `busy`, `bad_request`, …).
        code: String,
        /// The reader's message, if any.
        message: Option<String>,
    },
    /// No connection to the reader could be made.
    #[error("fingerprint reader {addr} unreachable: {reason}; check the reader adaptor")]
    Unreachable {
        /// The reader's address.
        addr: SocketAddr,
        /// What failed.
        reason: String,
    },
    /// The connection failed during a request.
    #[error("fingerprint reader: {0}")]
    Io(String),
    /// A reply that does not follow the reader protocol.
    #[error("fingerprint reader: bad reply: {0}")]
    Protocol(String),
    /// A reply longer than the frame limit.
    #[error("fingerprint reader: reply longer than {limit} bytes")]
    FrameTooLarge {
        /// The limit.
        limit: usize,
    },
}

fn after_text(after: Option<Duration>) -> String {
    after.map_or_else(String::new, |a| format!(" (no reply within {a:?})"))
}

fn message_text(message: &Option<String>) -> String {
    message
        .as_ref()
        .map_or_else(String::new, |m| format!(" ({m})"))
}

impl FingerprintError {
    /// A stable identifier for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            FingerprintError::NoFinger => "no_finger",
            FingerprintError::LowQuality { .. } => "low_quality",
            FingerprintError::Timeout { .. } => "timeout",
            FingerprintError::Reader { .. } => "reader",
            FingerprintError::Unreachable { .. } => "unreachable",
            FingerprintError::Io(_) => "io",
            FingerprintError::Protocol(_) => "protocol",
            FingerprintError::FrameTooLarge { .. } => "frame_too_large",
        }
    }
}

/// A fingerprint reader, as the lane runtime drives it.
pub trait FingerprintReader: Send + 'static {
    /// Captures one finger, waiting up to `timeout` for it to be placed.
    fn capture(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<FingerprintCapture, FingerprintError>> + Send;
}

/// Passes a capture whose quality reaches `minimum`; a poorer one is
/// [`FingerprintError::LowQuality`] (and its template is wiped as it is dropped).
pub fn check_quality(
    capture: FingerprintCapture,
    minimum: u8,
) -> Result<FingerprintCapture, FingerprintError> {
    if capture.quality < minimum {
        return Err(FingerprintError::LowQuality {
            quality: capture.quality,
            minimum,
        });
    }
    Ok(capture)
}
