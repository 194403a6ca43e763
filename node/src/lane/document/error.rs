//! What can go wrong reading a document: the MRZ, the chip data, or the reader's link.
//!
//! Messages are lowercase, one line, and never carry the holder's name, number or birth date
//! (they end up in logs); `code()` is stable snake_case, usable as a bounded metrics label.

use std::fmt;

/// A check-digit-bearing MRZ field (ICAO 9303 Part 3 §4.9), or a field the chip and the MRZ
/// must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MrzField {
    /// The document number.
    DocumentNumber,
    /// The holder's date of birth.
    DateOfBirth,
    /// The date of expiry.
    DateOfExpiry,
    /// The composite check digit over the zone (TD1: line 1 positions 6–30, line 2 positions
    /// 1–7, 9–15 and 19–29).
    Composite,
}

impl MrzField {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            MrzField::DocumentNumber => "document_number",
            MrzField::DateOfBirth => "date_of_birth",
            MrzField::DateOfExpiry => "date_of_expiry",
            MrzField::Composite => "composite",
        }
    }
}

impl fmt::Display for MrzField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Everything that can go wrong between the document reader's glass and a [`DocumentRead`].
///
/// [`DocumentRead`]: crate::lane::procedure::DocumentRead
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The text does not have the 2 (TD2, TD3) or 3 (TD1) lines of an MRZ.
    #[error("an MRZ has 2 or 3 lines, got {got}; present the document again")]
    LineCount {
        /// Non-empty lines found.
        got: usize,
    },
    /// A line has the wrong length for its format.
    #[error(
        "MRZ line {line} has {got} characters, expected {expected}; present the document again"
    )]
    LineLength {
        /// 1-based line number.
        line: usize,
        /// Characters the format requires (30 TD1, 36 TD2, 44 TD3).
        expected: usize,
        /// Characters found.
        got: usize,
    },
    /// A character outside the MRZ alphabet `A–Z 0–9 <` (lowercase included).
    #[error("illegal MRZ character {character:?} at line {line}, column {column}")]
    IllegalCharacter {
        /// The character.
        character: char,
        /// 1-based line number.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A well-formed MRZ of a document that is not one of the permits of DOMAIN.md (a passport,
    /// a national identity card, a visa). The lane shows "document not accepted for face scan —
    /// see an officer".
    #[error("document code {code:?} is not accepted for face scan; see an officer")]
    NotAccepted {
        /// The document code as printed (filler trimmed), e.g. `P`, `ID`, `V`.
        code: String,
    },
    /// A printed check digit disagrees with its field: a misread or a forged zone.
    #[error("check digit of {field} does not verify; present the document again")]
    CheckDigit {
        /// The first failing field, in the order document number, birth, expiry, composite.
        field: MrzField,
    },
    /// A date field is not a calendar day (or is unknown: `<` fillers).
    #[error("{field} is not a calendar date")]
    InvalidDate {
        /// The date field.
        field: MrzField,
    },
    /// The permit number does not have its permit's form (a Home Return Permit is numbered `H`
    /// or `M` followed by 8 digits).
    #[error("unrecognised permit number: {reason}")]
    UnrecognisedPermitNumber {
        /// What form was expected.
        reason: &'static str,
    },
    /// Another structural fault the MRZ parser reports (e.g. a document number starting with
    /// the filler).
    #[error("malformed MRZ: {reason}")]
    Malformed {
        /// The parser's reason.
        reason: String,
    },
    /// The chip and the MRZ disagree: a chip from another document, or a doctored zone.
    #[error("chip data and MRZ disagree on the {field}; see an officer")]
    ChipMismatch {
        /// The field they disagree on.
        field: MrzField,
    },
    /// The chip failed passive authentication (ICAO 9303 Part 11): no signed chip was read, its
    /// security object does not verify against a trusted CSCA, or a data group is not the one
    /// signed. Nothing the chip says is used; the traveller sees an officer.
    #[error("the chip is not authentic ({reason}); see an officer")]
    ChipNotAuthentic {
        /// What failed (never the holder's data).
        reason: String,
    },
    /// The chip's endorsement is of a type the channel does not accept (not D, T, S, R or Q).
    #[error("endorsement type not accepted in this channel; see an officer")]
    EndorsementNotAccepted,
    /// The chip data is inconsistent in itself.
    #[error("invalid chip data: {reason}")]
    InvalidChip {
        /// What is wrong.
        reason: &'static str,
    },
    /// A frame from the reader could not be decoded (noise on the line, bad bytes, bad chip
    /// JSON). The decoder has resynchronised on the next STX.
    #[error("garbage from the document reader: {reason}")]
    Frame {
        /// What was wrong with it.
        reason: String,
    },
    /// A frame exceeded the size limit; its bytes are skipped up to the next STX.
    #[error("document reader frame longer than {max} bytes; skipped")]
    FrameTooLarge {
        /// The limit, in bytes from STX to ETX inclusive.
        max: usize,
    },
    /// The reader could not be reached; the next call retries after a backoff.
    #[error("cannot connect to the document reader at {addr}: {reason}")]
    Connect {
        /// The reader's address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The reader closed the connection; the next call reconnects after a backoff.
    #[error("document reader at {addr} closed the connection")]
    Disconnected {
        /// The reader's address.
        addr: String,
    },
    /// Reading from or writing to the reader's connection failed.
    #[error("document reader link: {0}")]
    Io(#[from] std::io::Error),
    /// Bad reader configuration.
    #[error("invalid document reader configuration: {0}")]
    Config(String),
}

impl DocumentError {
    /// Stable snake_case name, usable as a bounded metrics label.
    pub fn code(&self) -> &'static str {
        match self {
            DocumentError::LineCount { .. } => "line_count",
            DocumentError::LineLength { .. } => "line_length",
            DocumentError::IllegalCharacter { .. } => "illegal_character",
            DocumentError::NotAccepted { .. } => "not_accepted",
            DocumentError::CheckDigit { .. } => "check_digit",
            DocumentError::InvalidDate { .. } => "invalid_date",
            DocumentError::UnrecognisedPermitNumber { .. } => "unrecognised_permit_number",
            DocumentError::Malformed { .. } => "malformed",
            DocumentError::ChipMismatch { .. } => "chip_mismatch",
            DocumentError::InvalidChip { .. } => "invalid_chip",
            DocumentError::ChipNotAuthentic { .. } => "chip_not_authentic",
            DocumentError::EndorsementNotAccepted => "endorsement_not_accepted",
            DocumentError::Frame { .. } => "frame",
            DocumentError::FrameTooLarge { .. } => "frame_too_large",
            DocumentError::Connect { .. } => "connect",
            DocumentError::Disconnected { .. } => "disconnected",
            DocumentError::Io(_) => "io",
            DocumentError::Config(_) => "config",
        }
    }

    /// The [`code`](Self::code)s of the errors about the document presented: the ones a gate
    /// screen explains to the traveller (`lane::kiosk` has a text for each).
    pub const DOCUMENT_FAULT_CODES: [&'static str; 12] = [
        "line_count",
        "line_length",
        "illegal_character",
        "not_accepted",
        "check_digit",
        "invalid_date",
        "unrecognised_permit_number",
        "malformed",
        "chip_mismatch",
        "invalid_chip",
        "chip_not_authentic",
        "endorsement_not_accepted",
    ];

    /// Whether the error is about the document presented (the traveller should present it
    /// again or see an officer), as opposed to the reader's link or configuration.
    pub fn is_document_fault(&self) -> bool {
        Self::DOCUMENT_FAULT_CODES.contains(&self.code())
    }
}
