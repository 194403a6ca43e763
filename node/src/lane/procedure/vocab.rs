//! The words the lane modules share: gates and fencing tokens, what the document and fingerprint
//! readers deliver, what the authorities answer and what is recorded with them.
//!
//! Plain data, no IO: the device modules convert their wire formats into these types and back.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use clearway_gallery::{
    Authority, Category, DocumentKind, Endorsement, Registration, TravelDocument,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

pub use clearway_gallery::ops::{GateAction, GateId};

/// A gate's state as its controller reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateState {
    /// Closed and not locked.
    Closed,
    /// Moving (opening or closing).
    Moving,
    /// Open.
    Open,
    /// Closed and locked by a supervisor.
    Locked,
    /// The controller reports a fault (obstruction, motor, power).
    Fault,
}

impl GateState {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            GateState::Closed => "closed",
            GateState::Moving => "moving",
            GateState::Open => "open",
            GateState::Locked => "locked",
            GateState::Fault => "fault",
        }
    }
}

/// A fencing token: who may actuate a gate, ordered by Raft term, then log index.
///
/// The gate controller remembers the highest token it has accepted and refuses any command that
/// carries a lower one, so a command from a stale leader or an old console session — issued
/// before a newer one was accepted — can never move a gate.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Fence {
    /// Raft term the issuer knew.
    pub term: u64,
    /// Raft log index the issuer had applied (or the index of the entry carrying the command).
    pub index: u64,
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.term, self.index)
    }
}

/// One command to one gate, fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GateCommand {
    /// Which gate.
    pub gate: GateId,
    /// What to do.
    pub action: GateAction,
    /// The issuer's fencing token.
    pub fence: Fence,
}

/// What the document reader read: the MRZ, checked, and the chip's data where present, mapped to
/// the permits of DOMAIN.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRead {
    /// The permit type.
    pub kind: DocumentKind,
    /// The holder's category, as the permit shows it (e.g. a Home Return Permit numbered `H…` is a
    /// Hong Kong resident's, `M…` a Macao resident's).
    pub category: Category,
    /// Document number.
    pub number: String,
    /// Holder's name, `SURNAME, GIVEN NAMES`.
    pub name: String,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// First day of validity (chip data, or derived from the permit's standard validity).
    pub valid_from: NaiveDate,
    /// Last day of validity.
    pub valid_until: NaiveDate,
    /// The electronic exit-entry endorsement (Mainland residents' permits, from the chip).
    pub endorsement: Option<Endorsement>,
    /// Whether the chip records that the holder authorised the Macao authorities to read the
    /// fingerprint data given when applying for the document (Mainland residents).
    pub fingerprint_read_authorised: bool,
}

impl DocumentRead {
    /// The travel document part.
    pub fn travel_document(&self) -> TravelDocument {
        TravelDocument {
            kind: self.kind,
            number: self.number.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
        }
    }

    /// The key the authorities and the registry know the document by.
    pub fn key(&self) -> DocumentKey {
        DocumentKey {
            kind: self.kind,
            number: self.number.clone(),
        }
    }
}

/// A travel document's identity: kind and number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DocumentKey {
    /// The permit type.
    pub kind: DocumentKind,
    /// Its number.
    pub number: String,
}

/// One fingerprint capture. The template is biometric data: never logged, wiped when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintCapture {
    /// Image quality on the NFIQ 2 scale, 0 (unusable) to 100.
    pub quality: u8,
    /// The finger template (ISO/IEC 19794-2 minutiae record), opaque to Clearway.
    pub template: Vec<u8>,
}

impl fmt::Debug for FingerprintCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FingerprintCapture")
            .field("quality", &self.quality)
            .field("template", &format_args!("<{} bytes>", self.template.len()))
            .finish()
    }
}

impl Drop for FingerprintCapture {
    fn drop(&mut self) {
        self.template.zeroize();
    }
}

/// How a traveller was identified at gate 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearanceMethod {
    /// Face scan (1:N against the port's gallery).
    Face,
    /// Card scan (the document reader).
    Card,
}

impl ClearanceMethod {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClearanceMethod::Face => "face",
            ClearanceMethod::Card => "card",
        }
    }
}

/// What the lane asks an authority to inspect at gate 2 (seed 000: "the current immigration
/// clearance procedures": facial features and fingerprint collected again, then inspected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionRequest {
    /// Unique per traveller passage and stable across retries: the authority answers a repeated
    /// key with its first answer.
    pub key: String,
    /// The channel, e.g. `hengqin/passenger-hall/12`.
    pub channel: String,
    /// The traveller's document.
    pub document: DocumentKey,
    /// How the traveller was identified at gate 1.
    pub method: ClearanceMethod,
    /// Cosine similarity of the gate-2 face to the gate-1 identity's templates.
    pub face_score: f32,
    /// The gate-2 fingerprint capture.
    pub fingerprint: FingerprintCapture,
    /// When the request was made.
    pub at: DateTime<Utc>,
}

/// An authority's answer to an inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// Cleared: this authority lets the traveller pass.
    Cleared,
    /// Not cleared by automation: the traveller goes to an officer, for this reason.
    Refer {
        /// Why, in words an officer reads.
        reason: String,
    },
}

/// A record delivered to an authority through the durable outbox, exactly once from the
/// receiver's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "record")]
pub enum AuthorityRecord {
    /// A traveller tapped "Agree" on the registration declaration at gate 1 (seed 000: "the
    /// registration consent is transmitted to the Macao and Mainland border inspection
    /// authorities for record simultaneously").
    RegistrationConsent {
        /// The traveller's document.
        document: DocumentKey,
        /// Name as on the document.
        name: String,
        /// When "Agree" was tapped.
        given_at: DateTime<Utc>,
        /// Where: the channel.
        channel: String,
        /// Which way the channel clears travellers (`Macao → Hengqin`), where the port says.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        direction: String,
    },
    /// A traveller was cleared through the channel by both authorities.
    Clearance {
        /// The traveller's document.
        document: DocumentKey,
        /// How they were identified at gate 1.
        method: ClearanceMethod,
        /// When gates 2 and 3 opened.
        cleared_at: DateTime<Utc>,
        /// Where: the channel.
        channel: String,
        /// Which way the traveller crossed (`Macao → Hengqin`), where the port says.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        direction: String,
    },
    /// A registration consent this lane sent did not complete the registration (the other
    /// authority did not acknowledge it in time, or the cluster did not record it): the
    /// authority is to disregard the consent under `consent_key`, including one that arrives
    /// after this record. Sent to both authorities through the outbox, whatever each answered.
    ConsentWithdrawn {
        /// The traveller's document.
        document: DocumentKey,
        /// The idempotency key the consent was sent under.
        consent_key: String,
        /// Why, for the authority's officers (no personal data).
        reason: String,
        /// When the lane gave up on the registration.
        withdrawn_at: DateTime<Utc>,
        /// Where: the channel.
        channel: String,
    },
    /// A Smart Immigration Clearance registration was cancelled at a service location (seed
    /// 000): the authority is to end the registration it recorded for this document. Every
    /// cancellation goes to every authority of the port, delivered by one of its lanes from
    /// the replicated cancellation notice, under one key per cancellation.
    RegistrationCancelled {
        /// The registration's document.
        document: DocumentKey,
        /// When the cancellation was made.
        cancelled_at: DateTime<Utc>,
        /// The port's reference for it (`<log index>/<person id>`): no personal data.
        reference: String,
    },
}

/// One record for one authority, as queued in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The receiving authority.
    pub authority: Authority,
    /// The record.
    pub record: AuthorityRecord,
}

/// What one authority holds about a document's prerequisites (seed 000, "Target Users"): the
/// authorities keep these, the lane asks (`POST /v1/prerequisites`) before it offers the Smart
/// Immigration Clearance declaration and again on each card scan of a registered traveller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrerequisiteStatus {
    /// The holder is registered for this authority's automated immigration clearance service:
    /// when and where, as the authority recorded it.
    #[serde(default)]
    pub automated_clearance: Option<Registration>,
    /// When the holder authorised this authority to read the fingerprint data given when
    /// applying for the document (Mainland residents; the Macao authority holds it).
    #[serde(default)]
    pub fingerprint_read_authorised_at: Option<DateTime<Utc>>,
}

/// The body of a prerequisite query: which document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrerequisiteQuery {
    /// The document presented.
    pub document: DocumentKey,
}

/// The Smart Immigration Clearance consent, sent to both authorities at once when the traveller
/// taps Agree; the registration completes only when both acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRequest {
    /// The idempotency key, the same for both authorities and every retry; a withdrawal names it.
    pub key: String,
    /// The record ([`AuthorityRecord::RegistrationConsent`]).
    pub record: AuthorityRecord,
}
