//! Person records: who is registered for face scan, with which document, endorsement, registrations and consents.
//!
//! The words are DOMAIN.md's. Records are `serde` types stored with `postcard`, which encodes enum variants and
//! struct fields by position: **append new variants and fields at the end only**, never reorder or remove.

mod eligibility;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use eligibility::{
    ADULT_AGE, Ineligible, MIN_AGE, Policy, age_on, document_eligibility, eligibility,
    eligibility_under,
};

/// A registered person's id, unique within a port cluster.
///
/// Displays as `P` followed by at least eight digits (`P00000042`); [`FromStr`] reads the same form back.
/// It is never a metrics label (labels are bounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonId(pub u64);

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{:08}", self.0)
    }
}

impl FromStr for PersonId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidPersonId {
            input: s.to_owned(),
        };
        let digits = s.strip_prefix('P').ok_or_else(invalid)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        digits.parse().map(PersonId).map_err(|_| invalid())
    }
}

/// Which residents may use face scan (DOMAIN.md, "Who may use face scan").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Macao resident holding a Mainland Travel Permit for Hong Kong and Macao Residents.
    MacaoResident,
    /// Hong Kong permanent resident holding a Mainland Travel Permit for Hong Kong and Macao Residents.
    HongKongPermanentResident,
    /// Mainland resident holding a Permit for Travelling to and from Hong Kong and Macao.
    MainlandResident,
    /// Resident of the region of Taiwan holding a Mainland Travel Permit for Taiwan Residents.
    TaiwanResident,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 4] = [
        Category::MacaoResident,
        Category::HongKongPermanentResident,
        Category::MainlandResident,
        Category::TaiwanResident,
    ];

    /// The travel document a person of this category clears with.
    pub fn document_kind(self) -> DocumentKind {
        match self {
            Category::MacaoResident | Category::HongKongPermanentResident => {
                DocumentKind::MainlandTravelPermitHkMacao
            }
            Category::MainlandResident => DocumentKind::PermitHkMacao,
            Category::TaiwanResident => DocumentKind::MainlandTravelPermitTaiwan,
        }
    }

    /// The automated-clearance registrations this category needs before face scan works.
    ///
    /// Mainland residents need none; they need a fingerprint-read authorisation instead.
    pub fn required_registrations(self) -> &'static [Authority] {
        match self {
            Category::MacaoResident => &[Authority::Mainland],
            Category::HongKongPermanentResident | Category::TaiwanResident => {
                &[Authority::Mainland, Authority::Macao]
            }
            Category::MainlandResident => &[],
        }
    }

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::MacaoResident => "macao_resident",
            Category::HongKongPermanentResident => "hong_kong_permanent_resident",
            Category::MainlandResident => "mainland_resident",
            Category::TaiwanResident => "taiwan_resident",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Kinds of travel document accepted for face scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Mainland Travel Permit for Hong Kong and Macao Residents (incl. non-Chinese citizens).
    MainlandTravelPermitHkMacao,
    /// Permit for Travelling to and from Hong Kong and Macao (held by Mainland residents).
    PermitHkMacao,
    /// Mainland Travel Permit for Taiwan Residents.
    MainlandTravelPermitTaiwan,
}

impl DocumentKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::MainlandTravelPermitHkMacao => "mainland_travel_permit_hk_macao",
            DocumentKind::PermitHkMacao => "permit_hk_macao",
            DocumentKind::MainlandTravelPermitTaiwan => "mainland_travel_permit_taiwan",
        }
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A travel document: kind, number and validity period (both ends inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TravelDocument {
    /// What document this is.
    pub kind: DocumentKind,
    /// The document number as printed.
    pub number: String,
    /// First day of validity.
    pub valid_from: NaiveDate,
    /// Last day of validity.
    pub valid_until: NaiveDate,
}

impl TravelDocument {
    /// Whether `day` lies within the validity period.
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && day <= self.valid_until
    }
}

/// Endorsement types on a Mainland resident's permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EndorsementKind {
    /// Stay.
    D,
    /// Visiting relatives.
    T,
    /// Business visit.
    S,
    /// Talents (1–5 years, 30 days per stay).
    R,
    /// Other purposes.
    Q,
}

/// Where an endorsement lets a Mainland resident go (seed 004: the smart-card permit carries
/// electronic endorsements, possibly several, one per destination).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// Macao (the one Hengqin's channels look at).
    #[default]
    Macao,
    /// Hong Kong (Shenzhen's land ports).
    HongKong,
}

impl Destination {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Macao => "macao",
            Destination::HongKong => "hong_kong",
        }
    }
}

/// An (electronic) exit-entry endorsement on a Permit for Travelling to and from Hong Kong and Macao.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorsement {
    /// The endorsement type.
    pub kind: EndorsementKind,
    /// Whether it allows multiple entries (face scan needs this).
    pub multiple_entry: bool,
    /// First day of validity.
    pub valid_from: NaiveDate,
    /// Last day of validity.
    pub valid_until: NaiveDate,
    /// Where it lets the holder go. Default Macao (records from before destinations).
    #[serde(default)]
    pub destination: Destination,
}

impl Endorsement {
    /// Whether `day` lies within the validity period.
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && day <= self.valid_until
    }
}

/// The two border authorities a joint inspection channel clears a traveller through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Authority {
    /// Macao Public Security Police Force.
    Macao,
    /// Mainland exit and entry frontier inspection (e.g. Zhuhai General Station).
    Mainland,
}

impl Authority {
    /// Both authorities.
    pub const ALL: [Authority; 2] = [Authority::Macao, Authority::Mainland];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Authority::Macao => "macao",
            Authority::Mainland => "mainland",
        }
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A prerequisite: a registration for one authority's existing automated immigration clearance
/// service (seed 000, "Target Users"), as that authority last confirmed it to a lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// When the authority recorded the registration.
    pub registered_at: DateTime<Utc>,
    /// Where it was made, e.g. `"Hengqin Port, Passenger Inspection Hall, channel 12"`.
    pub location: String,
}

/// A person's registrations, one slot per authority.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registrations {
    /// Registration with the Macao authority.
    pub macao: Option<Registration>,
    /// Registration with the Mainland authority.
    pub mainland: Option<Registration>,
}

impl Registrations {
    /// The registration with `authority`, if any.
    pub fn get(&self, authority: Authority) -> Option<&Registration> {
        match authority {
            Authority::Macao => self.macao.as_ref(),
            Authority::Mainland => self.mainland.as_ref(),
        }
    }

    /// Records (or replaces) the registration with `authority`.
    pub fn set(&mut self, authority: Authority, registration: Registration) {
        match authority {
            Authority::Macao => self.macao = Some(registration),
            Authority::Mainland => self.mainland = Some(registration),
        }
    }
}

/// What a person consented to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentKind {
    /// Tapped "Agree" on the gate-1 declaration: the Smart Immigration Clearance registration
    /// (seed 000), recorded with each authority that acknowledged it. Not to be confused with
    /// the prerequisite registrations for the authorities' automated clearance services
    /// ([`Registrations`]), which the authorities hold and the lane only asks about.
    #[serde(
        rename = "smart_clearance_registration",
        alias = "automated_clearance_registration"
    )]
    SmartClearanceRegistration,
    /// Authorised the Macao authorities to read the fingerprint data given when applying for the document.
    FingerprintReadAuthorisation,
}

/// One consent, as recorded with one authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// The authority the consent was given to.
    pub authority: Authority,
    /// What was consented to.
    pub kind: ConsentKind,
    /// When it was given.
    pub given_at: DateTime<Utc>,
    /// Where or how it was given, e.g. a channel or `"document application, Mainland"`.
    pub channel: String,
}

/// A parent's or guardian's consent for a minor (14–17) to register, given at a service location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianConsent {
    /// The parent's or guardian's name.
    pub guardian_name: String,
    /// The parent's or guardian's identity document (kind and number as presented, e.g.
    /// `Macao resident identity card 1234567(8)`): they must be present with it.
    pub guardian_document: String,
    /// Reference to the proof of relationship that was presented.
    pub relationship_proof: String,
    /// The service location where consent was given, e.g. `"Qingmao Checkpoint, Departure Office, 3/F"`.
    pub service_location: String,
    /// When it was given.
    pub given_at: DateTime<Utc>,
}

/// Whether a person's registration is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    /// Registered; face scan may identify the person.
    Active,
    /// Registration cancelled; face scan must never identify the person again.
    Cancelled,
}

/// A person registered (or once registered) for face scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The person's id.
    pub id: PersonId,
    /// Name as on the document.
    pub name: String,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Which residents' rules apply.
    pub category: Category,
    /// The travel document the person clears with.
    pub document: TravelDocument,
    /// Exit-entry endorsement (Mainland residents only).
    pub endorsement: Option<Endorsement>,
    /// Registrations with the authorities' automated clearance services.
    pub registrations: Registrations,
    /// Consents given, oldest first.
    pub consents: Vec<ConsentRecord>,
    /// Guardian's consent, for persons who registered as minors.
    pub guardian_consent: Option<GuardianConsent>,
    /// Whether the registration is in force.
    pub status: PersonStatus,
}

impl Person {
    /// Checks that the record is internally consistent (not whether the person may use face scan today:
    /// that is [`eligibility`]).
    ///
    /// Checks: name and document number are not blank; the document kind is the one the category clears
    /// with; validity periods do not end before they start; only Mainland residents carry an endorsement.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::MissingField { field: "name" });
        }
        if self.document.number.trim().is_empty() {
            return Err(Error::MissingField {
                field: "document.number",
            });
        }
        if self.document.kind != self.category.document_kind() {
            return Err(Error::DocumentMismatch {
                category: self.category,
                document: self.document.kind,
            });
        }
        if self.document.valid_from > self.document.valid_until {
            return Err(Error::InvalidPeriod { what: "document" });
        }
        if let Some(endorsement) = &self.endorsement {
            if self.category != Category::MainlandResident {
                return Err(Error::EndorsementNotApplicable {
                    category: self.category,
                });
            }
            if endorsement.valid_from > endorsement.valid_until {
                return Err(Error::InvalidPeriod {
                    what: "endorsement",
                });
            }
        }
        Ok(())
    }

    /// Whether the person has given `kind` consent to `authority`.
    pub fn has_consent(&self, authority: Authority, kind: ConsentKind) -> bool {
        self.consents
            .iter()
            .any(|c| c.authority == authority && c.kind == kind)
    }
}
