//! The Smart Immigration Clearance registration's rules that need no state (seed 000, "Target
//! Users" and "Registration and Cancellation"): what the authorities' answers confirm, what a
//! registration writes to the port's gallery, and how a card read keeps a registered record true.
//!
//! Two registrations must not be confused (DOMAIN.md):
//! * the **prerequisites**, which the authorities hold and the lane only asks about
//!   ([`confirm_prerequisites`]): Macao residents registered with the Mainland's automated
//!   clearance service; Hong Kong permanent and Taiwan residents with the Mainland's and Macao's;
//!   Mainland residents having authorised the Macao authorities to read their fingerprint data;
//! * the **Smart Immigration Clearance registration** itself: Agree at gate 1, the consent
//!   acknowledged by both authorities, then written to the gallery ([`registration_commands`]).
//!
//! "Both" authorities means every authority of the port ([`Completed::authorities`]).
//!
//! Pure functions, table-tested in `tests.rs`.

use chrono::{DateTime, Utc};
use clearway_gallery::{
    Authority, Command, ConsentKind, ConsentRecord, Ineligible, NewPerson, Person, PersonId,
    Registrations, Template,
};

use super::{DocumentRead, PrerequisiteStatus};

/// Where a fingerprint-read authorisation confirmed by the Macao authority is said to come from.
pub const FINGERPRINT_AUTHORISATION_CHANNEL: &str =
    "document application (confirmed by the Macao authority)";

/// The prerequisites as the authorities' answers confirm them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prerequisites {
    /// The registrations with the authorities' automated clearance services each one confirmed.
    pub registrations: Registrations,
    /// The fingerprint-read authorisation the Macao authority confirmed.
    pub fingerprint_read: Option<ConsentRecord>,
}

impl Prerequisites {
    /// Whether `person`'s record already says exactly this.
    pub fn recorded_for(&self, person: &Person) -> bool {
        let on_record = person
            .consents
            .iter()
            .filter(|c| c.kind == ConsentKind::FingerprintReadAuthorisation)
            .collect::<Vec<_>>();
        person.registrations == self.registrations
            && on_record == self.fingerprint_read.iter().collect::<Vec<_>>()
    }
}

/// What the two authorities' answers confirm for a traveller of `category`, and whether that is
/// every prerequisite the category needs (the first one missing otherwise).
pub fn confirm_prerequisites(
    category: clearway_gallery::Category,
    macao: &PrerequisiteStatus,
    mainland: &PrerequisiteStatus,
) -> (Prerequisites, Result<(), Ineligible>) {
    let registrations = Registrations {
        macao: macao.automated_clearance.clone(),
        mainland: mainland.automated_clearance.clone(),
    };
    let fingerprint_read = macao
        .fingerprint_read_authorised_at
        .map(|given_at| ConsentRecord {
            authority: Authority::Macao,
            kind: ConsentKind::FingerprintReadAuthorisation,
            given_at,
            channel: FINGERPRINT_AUTHORISATION_CHANNEL.to_owned(),
        });
    let confirmed = Prerequisites {
        registrations,
        fingerprint_read,
    };
    let verdict = (|| {
        for &authority in category.required_registrations() {
            if confirmed.registrations.get(authority).is_none() {
                return Err(Ineligible::NotRegistered(authority));
            }
        }
        if category == clearway_gallery::Category::MainlandResident
            && confirmed.fingerprint_read.is_none()
        {
            return Err(Ineligible::FingerprintAuthorisationMissing);
        }
        Ok(())
    })();
    (confirmed, verdict)
}

/// A registration both authorities acknowledged, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed<'a> {
    /// The card read at gate 1.
    pub document: &'a DocumentRead,
    /// The person enrolled without a face for this document (a minor approved at a service
    /// location), if any.
    pub pending: Option<PersonId>,
    /// The guardian's consent (minors).
    pub guardian_consent: Option<&'a clearway_gallery::GuardianConsent>,
    /// The prerequisites as confirmed before the declaration was shown.
    pub prerequisites: &'a Prerequisites,
    /// When the port's authorities had acknowledged the consent.
    pub acknowledged_at: DateTime<Utc>,
    /// The port's authorities (each acknowledged the consent).
    pub authorities: &'a [Authority],
    /// The channel.
    pub channel: &'a str,
}

/// Who the face captured at gate 1 already is in the gallery, as the lane's 1:N search found.
#[derive(Debug, Clone, PartialEq)]
pub enum FaceOnRecord<'a> {
    /// Nobody matched.
    Nobody,
    /// This registered person matched.
    Person(&'a Person),
}

/// Why a registration cannot be written as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationRefused {
    /// The face belongs to a registered person who is not this card's holder: one face, one
    /// person in the 1:N gallery. An officer sorts it out.
    #[error("the face captured is registered to another traveller; an officer must check")]
    FaceRegisteredToAnother,
}

/// The gallery commands a completed registration writes, as one batch (one Raft entry):
///
/// * a minor enrolled at a service location: their face, the card's document data (validity,
///   endorsement: the desk may not have had the chip's), the confirmed prerequisites and both
///   consents;
/// * a renewed permit — an unknown document whose face matches a registered person with the same
///   name, date of birth and category: the person is **relinked** to the new document, their
///   templates replaced by the new capture (the old document's templates retire), prerequisites
///   and both consents recorded again; the gallery never holds two persons with one face;
/// * a face registered to someone else: refused;
/// * otherwise: a new person with the face, the prerequisites and both consents.
///
/// Retries are safe: enrolling a document already registered answers with the existing id.
pub fn registration_commands(
    done: &Completed<'_>,
    template: Template,
    face: FaceOnRecord<'_>,
) -> Result<Vec<Command>, RegistrationRefused> {
    let consents: Vec<ConsentRecord> = done
        .authorities
        .iter()
        .map(|&authority| ConsentRecord {
            authority,
            kind: ConsentKind::SmartClearanceRegistration,
            given_at: done.acknowledged_at,
            channel: done.channel.to_owned(),
        })
        .collect();
    let update = |person: PersonId, face: Command| {
        let mut c = vec![
            face,
            Command::UpdateDocument {
                person,
                document: done.document.travel_document(),
                endorsement: done.document.endorsement.clone(),
            },
            Command::ConfirmPrerequisites {
                person,
                registrations: done.prerequisites.registrations.clone(),
                fingerprint_read: done.prerequisites.fingerprint_read.clone(),
            },
        ];
        c.extend(consents.iter().map(|consent| Command::RecordConsent {
            person,
            consent: consent.clone(),
        }));
        c
    };
    let same_holder = |p: &Person| {
        p.name == done.document.name
            && p.date_of_birth == done.document.date_of_birth
            && p.category == done.document.category
    };
    match (done.pending, face) {
        (_, FaceOnRecord::Person(p)) if Some(p.id) == done.pending => Ok(update(
            p.id,
            Command::AddTemplate {
                person: p.id,
                template,
            },
        )),
        (_, FaceOnRecord::Person(p)) if same_holder(p) => Ok(update(
            p.id,
            Command::ReplaceTemplates {
                person: p.id,
                templates: vec![template],
            },
        )),
        (_, FaceOnRecord::Person(_)) => Err(RegistrationRefused::FaceRegisteredToAnother),
        (Some(pending), FaceOnRecord::Nobody) => Ok(update(
            pending,
            Command::AddTemplate {
                person: pending,
                template,
            },
        )),
        (None, FaceOnRecord::Nobody) => {
            let mut all = consents;
            all.extend(done.prerequisites.fingerprint_read.clone());
            Ok(vec![Command::Enrol {
                person: NewPerson {
                    name: done.document.name.clone(),
                    date_of_birth: done.document.date_of_birth,
                    category: done.document.category,
                    document: done.document.travel_document(),
                    endorsement: done.document.endorsement.clone(),
                    registrations: done.prerequisites.registrations.clone(),
                    consents: all,
                    guardian_consent: done.guardian_consent.cloned(),
                },
                templates: vec![template],
            }])
        }
    }
}

/// What a card read (or a face passage, `read` `None`) of a registered traveller changes in
/// their record: the document's data (a renewed validity or endorsement under the same number)
/// and, when the authorities answered, the prerequisites as they confirm them now (a withdrawn
/// one is removed, which stops face scan). Empty when the record is already true.
pub fn refresh_commands(
    person: &Person,
    read: Option<&DocumentRead>,
    confirmed: Option<&Prerequisites>,
) -> Vec<Command> {
    let mut out = Vec::new();
    if let Some(read) = read
        && read.key().kind == person.document.kind
        && read.number == person.document.number
        && (read.travel_document() != person.document || read.endorsement != person.endorsement)
    {
        out.push(Command::UpdateDocument {
            person: person.id,
            document: read.travel_document(),
            endorsement: read.endorsement.clone(),
        });
    }
    if let Some(confirmed) = confirmed
        && !confirmed.recorded_for(person)
    {
        out.push(Command::ConfirmPrerequisites {
            person: person.id,
            registrations: confirmed.registrations.clone(),
            fingerprint_read: confirmed.fingerprint_read.clone(),
        });
    }
    out
}
