//! What the reader takes from the permit's contactless chip.

use chrono::NaiveDate;
use clearway_gallery::{Destination, Endorsement, EndorsementKind};
use serde::{Deserialize, Serialize};

use super::error::DocumentError;

/// The chip data of a smart-card permit (seed 004: smart-card permits with electronic
/// endorsements), as the document reader delivers it (JSON in the reader frame).
///
/// The MRZ and the chip must agree on the document number and the date of birth, else the read
/// fails with [`DocumentError::ChipMismatch`](super::DocumentError::ChipMismatch).
///
/// ```json
/// {"document_number":"C12345678","date_of_birth":"1990-05-01","issue_date":"2020-03-02",
///  "endorsement":{"kind":"S","multiple_entry":true,"valid_from":"2025-01-01","valid_until":"2025-12-31"},
///  "fingerprint_read_authorised":true,"name_chinese":"陈大文"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipData {
    /// The document number as the chip holds it.
    pub document_number: String,
    /// The holder's date of birth as the chip holds it.
    pub date_of_birth: NaiveDate,
    /// Date of issue: the first day of the document's validity. Absent on chips that do not
    /// carry it (the validity start is then derived from the permit's standard term).
    #[serde(default)]
    pub issue_date: Option<NaiveDate>,
    /// The electronic exit-entry endorsement (Permits for Travelling to and from Hong Kong and
    /// Macao held by Mainland residents: type D/T/S/R/Q, entries, validity).
    #[serde(default)]
    pub endorsement: Option<ChipEndorsement>,
    /// The electronic endorsements, one per destination (seed 004: a smart card carries
    /// several). The lane takes the one for its port's destination ([`ChipData::endorsement_for`]).
    #[serde(default)]
    pub endorsements: Vec<ChipEndorsement>,
    /// Whether the holder authorised the Macao authorities to read the fingerprint data given
    /// when applying for the document (Mainland residents). Default false.
    #[serde(default)]
    pub fingerprint_read_authorised: bool,
    /// The holder's name in Chinese characters, where the chip carries it.
    #[serde(default)]
    pub name_chinese: Option<String>,
}

/// An endorsement as the chip holds it. The type letter is kept as read: a letter the procedure
/// does not know (anything but D, T, S, R, Q) is a card the channel cannot accept — the traveller
/// is told so and sent to an officer — not reader garbage to be dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipEndorsement {
    /// The type letter.
    pub kind: String,
    /// Whether it allows multiple entries.
    pub multiple_entry: bool,
    /// First day of validity.
    pub valid_from: NaiveDate,
    /// Last day of validity.
    pub valid_until: NaiveDate,
    /// Where it lets the holder go: `macao` (default) or `hong_kong`.
    #[serde(default)]
    pub destination: Option<String>,
}

impl ChipData {
    /// A chip holding only the document number and the birth date (no endorsement, no
    /// fingerprint authorisation, no issue date).
    pub fn minimal(document_number: &str, date_of_birth: NaiveDate) -> ChipData {
        ChipData {
            document_number: document_number.to_owned(),
            date_of_birth,
            issue_date: None,
            endorsement: None,
            endorsements: Vec::new(),
            fingerprint_read_authorised: false,
            name_chinese: None,
        }
    }

    /// The endorsement that counts at a port whose channels lead to `destination` (`None`: any):
    /// of those for that destination, the one valid longest. The single `endorsement` field of
    /// older chips is a Macao endorsement unless it says otherwise.
    pub fn endorsement_for(
        &self,
        destination: Option<Destination>,
    ) -> Result<Option<&ChipEndorsement>, DocumentError> {
        let mut best: Option<&ChipEndorsement> = None;
        for e in self.endorsement.iter().chain(&self.endorsements) {
            let goes = e.destination()?;
            if destination.is_some_and(|d| goes != d) {
                continue;
            }
            if best.is_none_or(|b| e.valid_until > b.valid_until) {
                best = Some(e);
            }
        }
        Ok(best)
    }
}

impl ChipEndorsement {
    /// Its destination.
    pub fn destination(&self) -> Result<Destination, DocumentError> {
        match self.destination.as_deref() {
            None | Some("macao") => Ok(Destination::Macao),
            Some("hong_kong") => Ok(Destination::HongKong),
            Some(_) => Err(DocumentError::InvalidChip {
                reason: "endorsement destination is neither macao nor hong_kong",
            }),
        }
    }

    /// The endorsement, if its type is one of DOMAIN.md's.
    pub fn to_endorsement(&self) -> Result<Endorsement, DocumentError> {
        let kind = match self.kind.as_str() {
            "D" => EndorsementKind::D,
            "T" => EndorsementKind::T,
            "S" => EndorsementKind::S,
            "R" => EndorsementKind::R,
            "Q" => EndorsementKind::Q,
            _ => return Err(DocumentError::EndorsementNotAccepted),
        };
        Ok(Endorsement {
            kind,
            multiple_entry: self.multiple_entry,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            destination: self.destination()?,
        })
    }
}

impl From<Endorsement> for ChipEndorsement {
    fn from(e: Endorsement) -> ChipEndorsement {
        ChipEndorsement {
            kind: format!("{:?}", e.kind),
            multiple_entry: e.multiple_entry,
            valid_from: e.valid_from,
            valid_until: e.valid_until,
            destination: Some(e.destination.as_str().to_owned()),
        }
    }
}
