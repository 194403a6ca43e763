//! The document reader: ICAO 9303 MRZ checks and the permit types of DOMAIN.md.
//!
//! At gate 1 a traveller may present their permit instead of their face ("card scan"); it is
//! also how an unregistered adult registers at the channel. The reader reads the MRZ and the
//! chip; this module turns that into a [`DocumentRead`].
//!
//! * [`read_document`] — the pure core: MRZ text and optional [`ChipData`] in, a checked
//!   [`DocumentRead`] or a [`DocumentError`] out. Time is a parameter (`today`); no IO.
//!   MRZ parsing and check digits are the `mrz` crate's.
//! * [`frame`] — the reader's wire format (STX, MRZ lines, GS, chip JSON, ETX) and a sans-IO
//!   decoder that resynchronises after garbage.
//! * [`TcpDocumentReader`] — the [`DocumentReader`] for a reader behind a serial-to-Ethernet
//!   adaptor: reconnects with backoff, reports garbage without losing sync.
//! * [`security`] — passive authentication (ICAO 9303 Part 11): the chip's Document Security
//!   Object checked against the lane's trusted CSCAs ([`ChipTrust`]); [`DocumentSigner`] signs the
//!   simulator's chips so the check is real.
//! * [`DocumentReaderSimulator`] — a **simulator** of such a reader (TCP server) for tests and
//!   the demo; [`synthetic_mrz`] makes valid MRZs for test persons.
//!
//! The lane calls [`RawDocument::read_authenticated`] with its own `today` and trust on every
//! [`RawDocument`] its reader yields: a document whose chip does not pass passive authentication
//! grants nothing (card scan goes to an officer, no registration), whatever its MRZ says. Whether the traveller may use face scan (expiry, age,
//! endorsement, registrations) is decided elsewhere (`clearway_gallery::eligibility`): an
//! expired permit reads fine here.

mod chip;
mod config;
mod error;
pub mod frame;
mod read;
mod reader;
pub mod security;
mod simulator;
mod synthetic;
#[cfg(test)]
mod tests;

use std::future::Future;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use chip::{ChipData, ChipEndorsement};
pub use config::DocumentReaderConfig;
pub use error::{DocumentError, MrzField};
pub use read::{read_document, read_document_for};
pub use reader::TcpDocumentReader;
pub use security::{ChipSecurity, ChipTrust, DocumentSigner};
pub use simulator::DocumentReaderSimulator;
pub use synthetic::synthetic_mrz;

use crate::lane::procedure::DocumentRead;

/// What a document reader delivers for one presented document, before any checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawDocument {
    /// The MRZ text, lines separated by CR and/or LF.
    pub mrz: String,
    /// The chip data, where the reader read the chip. Unauthenticated: only what
    /// [`RawDocument::read_authenticated`] takes from `security` is trusted.
    pub chip: Option<ChipData>,
    /// The chip's data groups and Document Security Object, where the reader read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<ChipSecurity>,
}

impl RawDocument {
    /// An MRZ without chip data.
    pub fn mrz_only(mrz: impl Into<String>) -> RawDocument {
        RawDocument {
            mrz: mrz.into(),
            chip: None,
            security: None,
        }
    }

    /// A document whose chip `signer` signed, holding `chip`.
    pub fn signed(
        mrz: impl Into<String>,
        chip: ChipData,
        signer: &DocumentSigner,
    ) -> Result<RawDocument, DocumentError> {
        let mrz = mrz.into();
        let security = signer.sign(&mrz, &chip)?;
        Ok(RawDocument {
            mrz,
            chip: Some(chip),
            security: Some(security),
        })
    }

    /// Checks and maps the document ([`read_document`]).
    pub fn read(&self, today: NaiveDate) -> Result<DocumentRead, DocumentError> {
        read_document(&self.mrz, self.chip.as_ref(), today)
    }

    /// What the lane does with a presented document: the MRZ checked ([`read_document_for`]),
    /// then the chip's passive authentication against `trust` ([`ChipTrust::verify`]); only the
    /// chip data the issuer signed is used. A document without a signed chip, or whose chip
    /// fails, is [`DocumentError::ChipNotAuthentic`].
    pub fn read_authenticated(
        &self,
        today: NaiveDate,
        destination: Option<clearway_gallery::Destination>,
        trust: &ChipTrust,
    ) -> Result<DocumentRead, DocumentError> {
        // The page first: a misread MRZ is "present it again", not a forgery.
        read_document_for(&self.mrz, None, today, destination)?;
        let Some(security) = &self.security else {
            return Err(DocumentError::ChipNotAuthentic {
                reason: "no signed chip was read".to_owned(),
            });
        };
        let chip = trust.verify(security, &self.mrz, today)?;
        read_document_for(&self.mrz, Some(&chip), today, destination)
    }

    /// Checks and maps the document at a port whose channels lead to `destination`
    /// ([`read_document_for`]), taking the chip data as delivered (unauthenticated).
    pub fn read_for(
        &self,
        today: NaiveDate,
        destination: Option<clearway_gallery::Destination>,
    ) -> Result<DocumentRead, DocumentError> {
        read_document_for(&self.mrz, self.chip.as_ref(), today, destination)
    }
}

/// A source of presented documents: the real reader ([`TcpDocumentReader`]) or anything a test
/// puts in its place.
pub trait DocumentReader: Send + 'static {
    /// The next document presented, or an error (the reader stays usable: a further call goes on
    /// reading, reconnecting where needed).
    fn next_document(&mut self) -> impl Future<Output = Result<RawDocument, DocumentError>> + Send;
}
