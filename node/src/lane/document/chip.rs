//! What the reader takes from the permit's contactless chip.

use chrono::NaiveDate;
use clearway_gallery::Endorsement;
use serde::{Deserialize, Serialize};

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
    pub endorsement: Option<Endorsement>,
    /// Whether the holder authorised the Macao authorities to read the fingerprint data given
    /// when applying for the document (Mainland residents). Default false.
    #[serde(default)]
    pub fingerprint_read_authorised: bool,
    /// The holder's name in Chinese characters, where the chip carries it.
    #[serde(default)]
    pub name_chinese: Option<String>,
}
