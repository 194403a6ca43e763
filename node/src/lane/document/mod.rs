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
//! * [`DocumentReaderSimulator`] — a **simulator** of such a reader (TCP server) for tests and
//!   the demo; [`synthetic_mrz`] makes valid MRZs for test persons.
//!
//! The lane calls [`read_document`] (or [`RawDocument::read`]) with its own `today` on every
//! [`RawDocument`] its reader yields. Whether the traveller may use face scan (expiry, age,
//! endorsement, registrations) is decided elsewhere (`clearway_gallery::eligibility`): an
//! expired permit reads fine here.

mod chip;
mod config;
mod error;
pub mod frame;
mod read;
mod reader;
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
pub use simulator::DocumentReaderSimulator;
pub use synthetic::synthetic_mrz;

use crate::lane::procedure::DocumentRead;

/// What a document reader delivers for one presented document, before any checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawDocument {
    /// The MRZ text, lines separated by CR and/or LF.
    pub mrz: String,
    /// The chip data, where the reader read the chip.
    pub chip: Option<ChipData>,
}

impl RawDocument {
    /// An MRZ without chip data.
    pub fn mrz_only(mrz: impl Into<String>) -> RawDocument {
        RawDocument {
            mrz: mrz.into(),
            chip: None,
        }
    }

    /// Checks and maps the document ([`read_document`]).
    pub fn read(&self, today: NaiveDate) -> Result<DocumentRead, DocumentError> {
        read_document(&self.mrz, self.chip.as_ref(), today)
    }

    /// Checks and maps the document at a port whose channels lead to `destination`
    /// ([`read_document_for`]).
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
