//! Test data: MRZs of synthetic permits, for lane tests, the demo and the reader simulator.

use chrono::{Datelike, NaiveDate};
use clearway_gallery::DocumentKind;

use super::read::document_code;

/// A valid TD1 MRZ (three 30-character lines joined by `\n`) for a synthetic permit of `kind`,
/// with every check digit computed (document number, birth, expiry, composite).
///
/// `name` is `SURNAME, GIVEN NAMES` (as [`DocumentRead::name`] gives it back) or a bare
/// surname; letters outside A–Z are transliterated or become fillers. `sex` is `M`, `F`, or
/// anything else for unspecified. Issuing state and nationality are `CHN`. A number longer than
/// 9 characters uses the TD1 overflow form.
///
/// [`DocumentRead::name`]: crate::lane::procedure::DocumentRead::name
pub fn synthetic_mrz(
    kind: DocumentKind,
    number: &str,
    name: &str,
    dob: NaiveDate,
    expiry: NaiveDate,
    sex: char,
) -> String {
    let (surname, given_names) = match name.split_once(',') {
        Some((surname, given)) => (surname.trim(), given.trim()),
        None => (name.trim(), ""),
    };
    let date = |d: NaiveDate| mrz::MrzDate::Calendar(mrz::Date::new(d.year(), d.month(), d.day()));
    mrz::format_td1(&mrz::Td1Fields {
        document_code: document_code(kind).to_owned(),
        issuing_country: "CHN".to_owned(),
        document_number: number.to_owned(),
        optional_data_1: None,
        surname: surname.to_owned(),
        given_names: given_names.to_owned(),
        nationality: "CHN".to_owned(),
        date_of_birth: date(dob),
        sex: match sex.to_ascii_uppercase() {
            'M' => mrz::Sex::Male,
            'F' => mrz::Sex::Female,
            _ => mrz::Sex::Unspecified,
        },
        date_of_expiry: date(expiry),
        optional_data_2: None,
    })
}
