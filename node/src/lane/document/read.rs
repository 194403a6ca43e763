//! The pure core: MRZ text (and chip data) in, a checked [`DocumentRead`] out. No IO, no clock.

use chrono::{Datelike, Months, NaiveDate};
use clearway_gallery::person::ADULT_AGE;
use clearway_gallery::{Category, Destination, DocumentKind, age_on};

use super::chip::ChipData;
use super::error::{DocumentError, MrzField};
use crate::lane::procedure::DocumentRead;

/// The MRZ alphabet (ICAO 9303 Part 3 §4.3): upper-case Latin letters, digits and the filler.
fn is_mrz_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<'
}

/// Line width of TD1 (identity cards and the card permits), TD2 and TD3 (passports).
const TD1_WIDTH: usize = 30;
const TD2_WIDTH: usize = 36;
const TD3_WIDTH: usize = 44;

/// The document codes (first two MRZ characters) of the permits of DOMAIN.md.
pub(super) fn document_code(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::MainlandTravelPermitHkMacao => "CR",
        DocumentKind::PermitHkMacao => "CS",
        DocumentKind::MainlandTravelPermitTaiwan => "CT",
    }
}

fn kind_for_code(code: &str) -> Option<DocumentKind> {
    match code {
        "CR" => Some(DocumentKind::MainlandTravelPermitHkMacao),
        "CS" => Some(DocumentKind::PermitHkMacao),
        "CT" => Some(DocumentKind::MainlandTravelPermitTaiwan),
        _ => None,
    }
}

/// Splits reader output into MRZ lines: CR, LF or CRLF separated, spaces and tabs around each
/// line and blank lines ignored.
pub(super) fn mrz_lines(text: &str) -> Vec<&str> {
    text.split(['\r', '\n'])
        .map(|line| line.trim_matches([' ', '\t']))
        .filter(|line| !line.is_empty())
        .collect()
}

/// Reads a presented document: checks the MRZ (layout, alphabet, every check digit), recognises
/// the permit of DOMAIN.md by its document code, and merges the chip data.
///
/// * `CR…` Mainland Travel Permit for Hong Kong and Macao Residents: number `H` + 8 digits is a
///   Hong Kong permanent resident's, `M` + 8 digits a Macao resident's.
/// * `CS…` Permit for Travelling to and from Hong Kong and Macao: a Mainland resident's.
/// * `CT…` Mainland Travel Permit for Taiwan Residents: a Taiwan resident's.
/// * Any other well-formed MRZ (TD1, TD2, TD3 or a visa) is [`DocumentError::NotAccepted`],
///   whatever its check digits say: the lane's answer (see an officer) is the same.
///
/// Two-digit years are expanded relative to `today`: a birth date is the latest such date not
/// after `today`; an expiry date lies in the window from 50 years before `today`'s year to 49
/// after. An expired document reads fine: eligibility is decided elsewhere.
///
/// `valid_from` is the chip's issue date when it has one. Otherwise it is **approximated** from
/// the permit's standard term as the day after `valid_until` minus the term: 10 years for a
/// holder who was 18 or older at that start (Home Return Permits and Mainland residents'
/// permits), 5 years for a minor, and always 5 years for a Taiwan residents' permit.
///
/// Never panics, whatever the input.
pub fn read_document(
    mrz_text: &str,
    chip: Option<&ChipData>,
    today: NaiveDate,
) -> Result<DocumentRead, DocumentError> {
    read_document_for(mrz_text, chip, today, Some(Destination::Macao))
}

/// [`read_document`] at a port whose channels lead to `destination` (`None`: any): the
/// endorsement read is the chip's one for that destination ([`ChipData::endorsement_for`]).
pub fn read_document_for(
    mrz_text: &str,
    chip: Option<&ChipData>,
    today: NaiveDate,
    destination: Option<Destination>,
) -> Result<DocumentRead, DocumentError> {
    let lines = mrz_lines(mrz_text);
    for (i, line) in lines.iter().enumerate() {
        if let Some((column, character)) = line.chars().enumerate().find(|&(_, c)| !is_mrz_char(c))
        {
            return Err(DocumentError::IllegalCharacter {
                character,
                line: i + 1,
                column: column + 1,
            });
        }
    }
    // Every line is ASCII from here on, so byte offsets are character offsets.
    let parsed = match lines.as_slice() {
        [l1, l2, l3] => {
            check_widths(&[l1, l2, l3], TD1_WIDTH)?;
            mrz::parse_td1(l1, l2, l3)
        }
        [l1, l2] => {
            let width = if l1.len() > (TD2_WIDTH + TD3_WIDTH) / 2 {
                TD3_WIDTH
            } else {
                TD2_WIDTH
            };
            check_widths(&[l1, l2], width)?;
            match (width, l1.starts_with('V')) {
                (TD3_WIDTH, true) => mrz::parse_mrv_a(l1, l2),
                (TD3_WIDTH, false) => mrz::parse_td3(l1, l2),
                (_, true) => mrz::parse_mrv_b(l1, l2),
                (_, false) => mrz::parse_td2(l1, l2),
            }
        }
        _ => return Err(DocumentError::LineCount { got: lines.len() }),
    }
    .map_err(from_mrz_error)?;

    let code = parsed.document_type.clone();
    let kind = match (parsed.format, kind_for_code(&code)) {
        (mrz::Format::Td1, Some(kind)) => kind,
        _ => return Err(DocumentError::NotAccepted { code }),
    };

    let checks = &parsed.checks;
    for (ok, field) in [
        (checks.document_number, MrzField::DocumentNumber),
        (checks.date_of_birth, MrzField::DateOfBirth),
        (checks.date_of_expiry, MrzField::DateOfExpiry),
        (checks.composite, MrzField::Composite),
    ] {
        if ok != Some(true) {
            return Err(DocumentError::CheckDigit { field });
        }
    }

    // TD1 line 2: birth date at 1–6, expiry at 9–14.
    let line2 = lines[1];
    let date_of_birth = birth_date(&line2[0..6], today)?;
    let valid_until = expiry_date(&line2[8..14], today)?;

    let number = parsed.full_document_number().to_owned();
    let category = category_for(kind, &number)?;

    let name = if parsed.given_names.is_empty() {
        parsed.surname.clone()
    } else {
        format!("{}, {}", parsed.surname, parsed.given_names)
    };

    let mut endorsement = None;
    let mut fingerprint_read_authorised = false;
    let mut issue_date = None;
    if let Some(chip) = chip {
        if chip.document_number.trim() != number {
            return Err(DocumentError::ChipMismatch {
                field: MrzField::DocumentNumber,
            });
        }
        if chip.date_of_birth != date_of_birth {
            return Err(DocumentError::ChipMismatch {
                field: MrzField::DateOfBirth,
            });
        }
        if let Some(issued) = chip.issue_date {
            if issued > valid_until {
                return Err(DocumentError::InvalidChip {
                    reason: "issue date after the date of expiry",
                });
            }
            issue_date = Some(issued);
        }
        if let Some(e) = chip.endorsement_for(destination)? {
            if e.valid_from > e.valid_until {
                return Err(DocumentError::InvalidChip {
                    reason: "endorsement validity ends before it starts",
                });
            }
            endorsement = Some(e.to_endorsement()?);
        }
        fingerprint_read_authorised = chip.fingerprint_read_authorised;
    }

    let valid_from = match issue_date {
        Some(issued) => issued,
        None => derived_valid_from(kind, date_of_birth, valid_until)?,
    };

    Ok(DocumentRead {
        kind,
        category,
        number,
        name,
        date_of_birth,
        valid_from,
        valid_until,
        endorsement,
        fingerprint_read_authorised,
    })
}

fn check_widths(lines: &[&str], expected: usize) -> Result<(), DocumentError> {
    for (i, line) in lines.iter().enumerate() {
        if line.len() != expected {
            return Err(DocumentError::LineLength {
                line: i + 1,
                expected,
                got: line.len(),
            });
        }
    }
    Ok(())
}

fn from_mrz_error(e: mrz::MrzError) -> DocumentError {
    match e {
        mrz::MrzError::BadLength { expected, got } => DocumentError::LineLength {
            line: 1,
            expected,
            got,
        },
        mrz::MrzError::BadCharacter {
            character,
            line,
            position,
        } => DocumentError::IllegalCharacter {
            character,
            line: line.unwrap_or(0) + 1,
            column: position + 1,
        },
        mrz::MrzError::BadDocumentCode(code) => DocumentError::NotAccepted {
            code: code.trim_end_matches('<').to_owned(),
        },
        mrz::MrzError::LeadingFiller { field, .. } => DocumentError::Malformed {
            reason: format!("the {field} field begins with a filler"),
        },
        other => DocumentError::Malformed {
            reason: other.to_string(),
        },
    }
}

/// The category a permit's holder belongs to; a Home Return Permit's number says which.
fn category_for(kind: DocumentKind, number: &str) -> Result<Category, DocumentError> {
    match kind {
        DocumentKind::MainlandTravelPermitHkMacao => {
            let bytes = number.as_bytes();
            let well_formed = bytes.len() == 9 && bytes[1..].iter().all(u8::is_ascii_digit);
            match (well_formed, bytes.first()) {
                (true, Some(b'H')) => Ok(Category::HongKongPermanentResident),
                (true, Some(b'M')) => Ok(Category::MacaoResident),
                _ => Err(DocumentError::UnrecognisedPermitNumber {
                    reason: "a Home Return Permit number is H or M followed by 8 digits",
                }),
            }
        }
        DocumentKind::PermitHkMacao => Ok(Category::MainlandResident),
        DocumentKind::MainlandTravelPermitTaiwan => Ok(Category::TaiwanResident),
    }
}

/// `YYMMDD` → (yy, month, day), or `None` unless six digits.
fn digits(field: &str) -> Option<(i32, u32, u32)> {
    if field.len() != 6 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pair = |i: usize| field[i..i + 2].parse::<u32>().ok();
    Some((i32::try_from(pair(0)?).ok()?, pair(2)?, pair(4)?))
}

/// A birth date: the latest date with these digits that is not after `today`.
fn birth_date(field: &str, today: NaiveDate) -> Result<NaiveDate, DocumentError> {
    let invalid = || DocumentError::InvalidDate {
        field: MrzField::DateOfBirth,
    };
    let (yy, month, day) = digits(field).ok_or_else(invalid)?;
    let mut year = today.year() - today.year().rem_euclid(100) + yy;
    if year > today.year() || (year == today.year() && (month, day) > (today.month(), today.day()))
    {
        year -= 100;
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(invalid)
}

/// An expiry date: the date with these digits whose year lies in `today`'s year − 50 ..= + 49.
fn expiry_date(field: &str, today: NaiveDate) -> Result<NaiveDate, DocumentError> {
    let invalid = || DocumentError::InvalidDate {
        field: MrzField::DateOfExpiry,
    };
    let (yy, month, day) = digits(field).ok_or_else(invalid)?;
    let base = today.year() - 50;
    let year = base + (yy - base).rem_euclid(100);
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(invalid)
}

/// The standard validity term, in years, of a permit whose validity would start on `start`.
fn standard_term_years(kind: DocumentKind, date_of_birth: NaiveDate, start: NaiveDate) -> u32 {
    match kind {
        DocumentKind::MainlandTravelPermitTaiwan => 5,
        DocumentKind::MainlandTravelPermitHkMacao | DocumentKind::PermitHkMacao => {
            if age_on(date_of_birth, start) >= ADULT_AGE {
                10
            } else {
                5
            }
        }
    }
}

/// The day after `valid_until` minus `years` years.
fn term_start(valid_until: NaiveDate, years: u32) -> Option<NaiveDate> {
    valid_until
        .checked_sub_months(Months::new(12 * years))?
        .succ_opt()
}

/// The first day of validity when the chip does not say: the permit's standard term back from
/// the expiry (an approximation; see [`read_document`]).
fn derived_valid_from(
    kind: DocumentKind,
    date_of_birth: NaiveDate,
    valid_until: NaiveDate,
) -> Result<NaiveDate, DocumentError> {
    let invalid = || DocumentError::InvalidDate {
        field: MrzField::DateOfExpiry,
    };
    let adult_start = term_start(valid_until, 10).ok_or_else(invalid)?;
    let years = standard_term_years(kind, date_of_birth, adult_start);
    term_start(valid_until, years).ok_or_else(invalid)
}
