//! Who may use face scan on a given travel day (DOMAIN.md, "Who may use face scan").

use chrono::{Datelike, Months, NaiveDate};

use super::{
    Authority, Category, ConsentKind, Destination, Endorsement, Person, PersonStatus,
    TravelDocument,
};

/// Minimum age, in full years on the travel day, for face scan.
pub const MIN_AGE: u32 = 14;

/// Age from which a person registers without a guardian's consent.
pub const ADULT_AGE: u32 = 18;

/// Why a person may not use face scan today. The gate falls back to card scan or an officer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Ineligible {
    /// The registration was cancelled.
    #[error("registration cancelled")]
    Cancelled,
    /// Younger than 14 on the travel day.
    #[error("under 14 years of age")]
    UnderAge,
    /// The document on record is not the one the person's category clears with.
    #[error("document not accepted for this category")]
    DocumentNotAccepted,
    /// The travel document's validity has not started.
    #[error("travel document not yet valid")]
    DocumentNotYetValid,
    /// The travel document has expired.
    #[error("travel document expired")]
    DocumentExpired,
    /// A Taiwan resident's permit is not one valid for 5 years.
    #[error("travel document is not a 5-year permit")]
    DocumentNotFiveYear,
    /// A Mainland resident has no endorsement.
    #[error("endorsement missing")]
    EndorsementMissing,
    /// A Mainland resident's endorsement is single-entry.
    #[error("endorsement is not multiple-entry")]
    EndorsementNotMultipleEntry,
    /// The endorsement's validity has not started.
    #[error("endorsement not yet valid")]
    EndorsementNotYetValid,
    /// The endorsement has expired.
    #[error("endorsement expired")]
    EndorsementExpired,
    /// Not registered for this authority's automated clearance service.
    #[error("not registered with the {0} authority")]
    NotRegistered(Authority),
    /// A Mainland resident has not authorised the Macao authorities to read their fingerprint data.
    #[error("fingerprint-read authorisation missing")]
    FingerprintAuthorisationMissing,
    /// A minor (14–17) has no parent's or guardian's consent on record.
    #[error("guardian consent missing")]
    GuardianConsentMissing,
    /// The Smart Immigration Clearance consent (Agree at a channel) is not on record with this
    /// authority: the person never completed the registration, or it was not acknowledged.
    #[error("Smart Immigration Clearance consent not recorded with the {0} authority")]
    ConsentMissing(Authority),
}

impl Ineligible {
    /// Every reason, for tables that must cover them all (the gate screens' texts).
    pub const ALL: [Ineligible; 16] = [
        Ineligible::Cancelled,
        Ineligible::UnderAge,
        Ineligible::DocumentNotAccepted,
        Ineligible::DocumentNotYetValid,
        Ineligible::DocumentExpired,
        Ineligible::DocumentNotFiveYear,
        Ineligible::EndorsementMissing,
        Ineligible::EndorsementNotMultipleEntry,
        Ineligible::EndorsementNotYetValid,
        Ineligible::EndorsementExpired,
        Ineligible::NotRegistered(Authority::Macao),
        Ineligible::NotRegistered(Authority::Mainland),
        Ineligible::FingerprintAuthorisationMissing,
        Ineligible::GuardianConsentMissing,
        Ineligible::ConsentMissing(Authority::Macao),
        Ineligible::ConsentMissing(Authority::Mainland),
    ];

    /// A stable snake_case name, usable as a bounded metrics label.
    pub fn code(self) -> &'static str {
        match self {
            Ineligible::Cancelled => "cancelled",
            Ineligible::UnderAge => "under_age",
            Ineligible::DocumentNotAccepted => "document_not_accepted",
            Ineligible::DocumentNotYetValid => "document_not_yet_valid",
            Ineligible::DocumentExpired => "document_expired",
            Ineligible::DocumentNotFiveYear => "document_not_five_year",
            Ineligible::EndorsementMissing => "endorsement_missing",
            Ineligible::EndorsementNotMultipleEntry => "endorsement_not_multiple_entry",
            Ineligible::EndorsementNotYetValid => "endorsement_not_yet_valid",
            Ineligible::EndorsementExpired => "endorsement_expired",
            Ineligible::NotRegistered(Authority::Macao) => "not_registered_macao",
            Ineligible::NotRegistered(Authority::Mainland) => "not_registered_mainland",
            Ineligible::FingerprintAuthorisationMissing => "fingerprint_authorisation_missing",
            Ineligible::GuardianConsentMissing => "guardian_consent_missing",
            Ineligible::ConsentMissing(Authority::Macao) => "consent_missing_macao",
            Ineligible::ConsentMissing(Authority::Mainland) => "consent_missing_mainland",
        }
    }
}

/// A port's eligibility policy (seeds 000, 001, 003): which authorities inspect at its channels
/// — the Smart Immigration Clearance consent must be on record with each — and whether seed 000's
/// prerequisites apply (registrations with the authorities' automated clearance services, a
/// Mainland resident's fingerprint-read authorisation). Hengqin is [`Policy::joint`]; seed 001's
/// ports with one inspecting authority ask only for the consent to provide facial and fingerprint
/// data, which the channel's registration records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The authorities that inspect at the port's channels (one or two, no repeats).
    pub authorities: Vec<Authority>,
    /// Whether seed 000's prerequisites apply.
    pub prerequisites: bool,
    /// Which of a Mainland resident's endorsements counts at this port: Hengqin's channels look
    /// at the Macao one, Shenzhen's land ports at the Hong Kong one; `None` (an airport with
    /// flights to both): whichever is valid.
    #[serde(default)]
    pub destination: Option<Destination>,
}

impl Policy {
    /// A joint Macao–Mainland inspection port with seed 000's prerequisites (Hengqin).
    pub fn joint() -> Policy {
        Policy {
            authorities: Authority::ALL.to_vec(),
            prerequisites: true,
            destination: Some(Destination::Macao),
        }
    }

    /// Checks the policy: one or two authorities, none repeated.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = Vec::new();
        for a in &self.authorities {
            if seen.contains(a) {
                return Err(format!("authority {a} is listed twice"));
            }
            seen.push(*a);
        }
        if seen.is_empty() {
            return Err("at least one inspecting authority is needed".into());
        }
        Ok(())
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::joint()
    }
}

/// Age in full years on `day` (0 if `day` is before the date of birth).
///
/// A person born on 29 February turns a year older on 1 March in common years.
pub fn age_on(date_of_birth: NaiveDate, day: NaiveDate) -> u32 {
    if day < date_of_birth {
        return 0;
    }
    let years = day.year() - date_of_birth.year();
    let before_birthday = (day.month(), day.day()) < (date_of_birth.month(), date_of_birth.day());
    u32::try_from(years - i32::from(before_birthday)).unwrap_or(0)
}

/// Whether `person` may use face scan on the travel day `today`; the first failing rule otherwise.
///
/// Rules, in the order checked:
/// 1. the registration is not cancelled;
/// 2. 14 or older on `today`;
/// 3. the document is the category's, and valid on `today` (both ends inclusive);
/// 4. per category: Macao residents registered with the Mainland; Hong Kong permanent and Taiwan residents
///    registered with the Mainland and Macao (Taiwan residents with a permit valid for 5 years); Mainland
///    residents with a multiple-entry endorsement (D, T, S, R or Q) valid on `today` and a fingerprint-read
///    authorisation given to the Macao authorities;
/// 5. minors (14–17) have a parent's or guardian's consent on record. The seed requires this of every minor
///    who "intends to use" the service, so it is applied to all categories;
/// 6. the Smart Immigration Clearance consent (Agree at a channel) is on record with both authorities, for
///    every category: the prerequisites of rule 4 are not the registration itself (seed 000).
///
/// The prerequisites of rule 4 are read as the record holds them: as the authorities last confirmed them to
/// a lane (the lane asks again on each card scan and writes what changed).
pub fn eligibility(person: &Person, today: NaiveDate) -> Result<(), Ineligible> {
    eligibility_under(person, today, &Policy::joint())
}

/// [`eligibility`] under a port's [`Policy`]: rule 4's prerequisites only where the policy has
/// them, rule 6's consent with each of the policy's authorities.
pub fn eligibility_under(
    person: &Person,
    today: NaiveDate,
    policy: &Policy,
) -> Result<(), Ineligible> {
    if person.status == PersonStatus::Cancelled {
        return Err(Ineligible::Cancelled);
    }
    let age = age_on(person.date_of_birth, today);
    if age < MIN_AGE {
        return Err(Ineligible::UnderAge);
    }
    // Only the endorsement for the port's destination counts (a Hong Kong one at Hengqin is
    // no Macao endorsement).
    let endorsement = person
        .endorsement
        .as_ref()
        .filter(|e| policy.destination.is_none_or(|d| e.destination == d));
    document_eligibility(person.category, &person.document, endorsement, today)?;
    if policy.prerequisites
        && person.category == Category::MainlandResident
        && !person.has_consent(Authority::Macao, ConsentKind::FingerprintReadAuthorisation)
    {
        return Err(Ineligible::FingerprintAuthorisationMissing);
    }
    let required = if policy.prerequisites {
        person.category.required_registrations()
    } else {
        &[]
    };
    for &authority in required {
        if person.registrations.get(authority).is_none() {
            return Err(Ineligible::NotRegistered(authority));
        }
    }
    if age < ADULT_AGE && person.guardian_consent.is_none() {
        return Err(Ineligible::GuardianConsentMissing);
    }
    for &authority in &policy.authorities {
        if !person.has_consent(authority, ConsentKind::SmartClearanceRegistration) {
            return Err(Ineligible::ConsentMissing(authority));
        }
    }
    Ok(())
}

/// Rules 3 and the document part of 4 of [`eligibility`]: whether a traveller of `category` with this
/// document (and endorsement) could use face scan on `today`, before anything the authorities hold is
/// asked. The lane checks this on a card read before it asks the authorities about the prerequisites.
pub fn document_eligibility(
    category: Category,
    document: &TravelDocument,
    endorsement: Option<&Endorsement>,
    today: NaiveDate,
) -> Result<(), Ineligible> {
    if document.kind != category.document_kind() {
        return Err(Ineligible::DocumentNotAccepted);
    }
    if today < document.valid_from {
        return Err(Ineligible::DocumentNotYetValid);
    }
    if today > document.valid_until {
        return Err(Ineligible::DocumentExpired);
    }
    match category {
        Category::MainlandResident => {
            let endorsement = endorsement.ok_or(Ineligible::EndorsementMissing)?;
            if !endorsement.multiple_entry {
                return Err(Ineligible::EndorsementNotMultipleEntry);
            }
            if today < endorsement.valid_from {
                return Err(Ineligible::EndorsementNotYetValid);
            }
            if today > endorsement.valid_until {
                return Err(Ineligible::EndorsementExpired);
            }
        }
        Category::TaiwanResident if !is_five_year(document.valid_from, document.valid_until) => {
            return Err(Ineligible::DocumentNotFiveYear);
        }
        Category::MacaoResident
        | Category::HongKongPermanentResident
        | Category::TaiwanResident => {}
    }
    Ok(())
}

/// Whether a validity period is that of a 5-year permit (valid until the day before the fifth anniversary,
/// or later).
fn is_five_year(valid_from: NaiveDate, valid_until: NaiveDate) -> bool {
    match valid_from
        .checked_add_months(Months::new(60))
        .and_then(|d| d.pred_opt())
    {
        Some(last_day) => valid_until >= last_day,
        None => false,
    }
}
