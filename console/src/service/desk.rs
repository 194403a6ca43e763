//! The service desk: registration lookup, a guardian's consent for a minor, cancellation and
//! its confirmation across every replica. Service-desk officers only. Document numbers are
//! looked up but never logged nor written into audit records (the target is the person id).

use chrono::NaiveDate;

use crate::auth::Millis;
use crate::dto::{CancelProgress, RegistrationView, Role, SERVICE_LOCATIONS, Viewer, WriteReceipt};
use crate::error::{Error, Result};
use crate::port_api::{Change, MinorRegistration, document_kind};

use super::{Console, Write, check_reason, check_text};

/// What the officer records of a cancellation in person (seed 000), as submitted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CancelEvidence {
    /// Index into [`SERVICE_LOCATIONS`]: where the traveller came in person.
    pub service_location: String,
    /// The identity document presented: its kind (snake_case) …
    pub document_kind: String,
    /// … and number; it must be the registration's.
    pub document_number: String,
    /// A minor's parent or guardian (required for a minor's registration).
    pub guardian_name: String,
    /// The guardian's identity document.
    pub guardian_document: String,
    /// The proof of relationship presented.
    pub relationship_proof: String,
}

/// The guardian-consent form as submitted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConsentForm {
    /// Minor's name.
    pub name: String,
    /// YYYY-MM-DD.
    pub date_of_birth: String,
    /// Category (snake_case).
    pub category: String,
    /// Document kind (snake_case).
    pub document_kind: String,
    /// Document number.
    pub document_number: String,
    /// YYYY-MM-DD.
    pub valid_from: String,
    /// YYYY-MM-DD.
    pub valid_until: String,
    /// Guardian's name.
    pub guardian_name: String,
    /// Guardian's identity document (kind and number as presented).
    pub guardian_document: String,
    /// Proof-of-relationship reference.
    pub relationship_proof: String,
    /// Index into [`SERVICE_LOCATIONS`].
    pub service_location: String,
}

fn date(what: &str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| Error::Invalid(format!("{what} {s:?} is not a date (YYYY-MM-DD)")))
}

fn check_document_number(n: &str) -> Result<String> {
    let n = n.trim();
    if n.is_empty() || n.len() > 32 || !n.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::Invalid(
            "a document number is 1-32 letters and digits".into(),
        ));
    }
    Ok(n.to_ascii_uppercase())
}

impl Console {
    /// The ports the desk serves: (id, name).
    pub fn desk_ports(&self, v: &Viewer) -> Result<Vec<(String, String)>> {
        self.require(v, Role::ServiceDesk, "use the service desk")?;
        Ok(self
            .ports()
            .iter()
            .map(|p| (p.def.id.clone(), p.def.name.clone()))
            .collect())
    }

    /// Finds a registration by travel document on the port's replicas.
    pub async fn find_registration(
        &self,
        v: &Viewer,
        port: &str,
        kind: &str,
        number: &str,
    ) -> Result<Option<RegistrationView>> {
        let p = self.port(port)?;
        self.require(v, Role::ServiceDesk, "look up registrations")?;
        document_kind(kind)?;
        let number = check_document_number(number)?;
        p.api.find_document(&p.nodes(), kind, &number).await
    }

    /// Records a guardian's consent for a minor: enrols the minor with the consent and no face
    /// templates (the channel adds them at registration), with its audit record.
    pub async fn guardian_consent(
        &self,
        v: &Viewer,
        port: &str,
        f: &ConsentForm,
        reason: &str,
        now: Millis,
    ) -> Result<WriteReceipt> {
        let p = self.port(port)?;
        self.require(v, Role::ServiceDesk, "record a guardian's consent")?;
        let dob = date("date of birth", &f.date_of_birth)?;
        // The minor's age on the port's own date (at Hengqin 16:00 UTC is already tomorrow).
        let today = crate::time::local_day(now, p.def.utc_offset_minutes);
        let age = clearway_gallery::age_on(dob, today);
        if !(clearway_gallery::MIN_AGE..clearway_gallery::ADULT_AGE).contains(&age) {
            return Err(Error::Invalid(format!(
                "a guardian's consent is for minors of {} to {}; this traveller is {age}",
                clearway_gallery::MIN_AGE,
                clearway_gallery::ADULT_AGE - 1
            )));
        }
        let valid_from = date("valid from", &f.valid_from)?;
        let valid_until = date("valid until", &f.valid_until)?;
        if valid_until < valid_from {
            return Err(Error::Invalid(
                "the document's validity ends before it starts".into(),
            ));
        }
        let location = f
            .service_location
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|i| SERVICE_LOCATIONS.get(i))
            .ok_or_else(|| Error::Invalid("choose the service location".into()))?;
        let minor = MinorRegistration {
            name: check_text("the minor's name", &f.name)?,
            date_of_birth: dob,
            category: f.category.trim().to_string(),
            document_kind: f.document_kind.trim().to_string(),
            document_number: check_document_number(&f.document_number)?,
            valid_from,
            valid_until,
            guardian_name: check_text("the guardian's name", &f.guardian_name)?,
            guardian_document: check_text("the guardian's document", &f.guardian_document)?,
            relationship_proof: check_text(
                "the proof-of-relationship reference",
                &f.relationship_proof,
            )?,
            service_location: location.name.to_string(),
        };
        let reason = check_reason(reason)?;
        // The audit target is the port: the person id is known only once enrolled (it is in
        // the receipt), and a document number never goes into the audit trail.
        let w = Write {
            metric: "guardian_consent".into(),
            action: "guardian_consent".into(),
            target: port.to_string(),
            reason,
            change: Change::GuardianConsent(Box::new(minor)),
        };
        self.submit(&p, v, w, now).await
    }

    /// Cancels a registration: the person is erased on every replica of the port.
    ///
    /// Seed 000: cancellation is in person at a service location; a minor comes with a parent or
    /// guardian, presenting the minor's identity document and proof of relationship. The desk
    /// refuses a cancellation without them: the service location, the identity document
    /// presented — which must be the registration's own (looked up on the replicas by kind and
    /// number) — and, for a registration of a minor (under 18 on the port's own date), the
    /// guardian, their document and the proof of relationship. They are written into the audit
    /// record's reason, which is erased with the person.
    pub async fn cancel_registration(
        &self,
        v: &Viewer,
        port: &str,
        person: &str,
        evidence: &CancelEvidence,
        reason: &str,
        now: Millis,
    ) -> Result<WriteReceipt> {
        let p = self.port(port)?;
        self.require(v, Role::ServiceDesk, "cancel a registration")?;
        let person = person.trim();
        if person.parse::<clearway_gallery::PersonId>().is_err() {
            return Err(Error::Invalid(format!(
                "{person:?} is not a person id (P00000001); find the registration first"
            )));
        }
        let reason = check_reason(reason)?;
        let location = evidence
            .service_location
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|i| SERVICE_LOCATIONS.get(i))
            .ok_or_else(|| Error::Invalid("choose the service location".into()))?;
        let kind = evidence.document_kind.trim();
        document_kind(kind)?;
        let number = check_document_number(&evidence.document_number)?;
        let record = p
            .api
            .find_document(&p.nodes(), kind, &number)
            .await?
            .filter(|r| r.person == person)
            .ok_or_else(|| {
                Error::Invalid(
                    "the identity document presented is not this registration's: check it against \
                     the traveller's permit"
                        .into(),
                )
            })?;
        let today = crate::time::local_day(now, p.def.utc_offset_minutes);
        let minor = record
            .date_of_birth
            .parse::<chrono::NaiveDate>()
            .map(|dob| clearway_gallery::age_on(dob, today) < clearway_gallery::ADULT_AGE)
            .unwrap_or(false);
        let mut said = format!(
            "{reason} — at {}; the registration's {kind} presented and checked",
            location.name
        );
        if minor {
            let guardian = check_text(
                "the guardian's name (a minor's cancellation)",
                &evidence.guardian_name,
            )?;
            let document = check_text("the guardian's document", &evidence.guardian_document)?;
            let proof = check_text(
                "the proof-of-relationship reference",
                &evidence.relationship_proof,
            )?;
            said.push_str(&format!(
                "; guardian {guardian} ({document}), proof of relationship {proof}"
            ));
        }
        // The officer's words come first and are never cut; the evidence fits in what is left.
        let reason = check_reason(
            &said
                .chars()
                .take(super::MAX_REASON_CHARS)
                .collect::<String>(),
        )?;
        let w = Write {
            metric: "cancel".into(),
            action: "cancel".into(),
            target: person.to_string(),
            reason,
            change: Change::Cancel {
                person: person.to_string(),
            },
        };
        self.submit(&p, v, w, now).await
    }

    /// Every member's progress on the cancellation written at `index`.
    pub async fn cancel_progress(
        &self,
        v: &Viewer,
        port: &str,
        index: u64,
    ) -> Result<CancelProgress> {
        let p = self.port(port)?;
        self.require(v, Role::ServiceDesk, "follow a cancellation")?;
        p.api.progress(&p.nodes(), index, true).await
    }
}
