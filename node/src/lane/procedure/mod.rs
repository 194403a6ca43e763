//! The gate procedure of seed 000 as a sans-IO state machine.
//!
//! [`Procedure`] never touches a socket, a camera or a clock. The lane runtime feeds it
//! [`Input`]s — what the vision stage saw, what the document reader read, what the authorities
//! answered, what the gate controller reports — each stamped with `now`, and drains [`Output`]s:
//! fenced gate commands, gate-screen messages, requests (capture a fingerprint, inspect, register),
//! records for the authorities' outbox, alarms and decisions. Deadlines are checked on every input,
//! so the runtime also feeds [`Input::Tick`] a few times a second.
//!
//! The walk through a channel (DOMAIN.md, "The channel procedure"):
//!
//! ```text
//!  Idle ──face identified, eligible──────────────┐
//!   │ ──card read──▶ (unregistered, document fits) Checking: prerequisites asked of both
//!   │        authorities ──all held──▶ Declaration ──Agree──▶ Consenting: the consent sent to
//!   │        both at once ──both acknowledged──▶ Registering (gallery write) ─────────────┐
//!   │        └─not held / no answer / decline / timeout (consent withdrawn) ───────────────┤
//!   │ ──card read, registered or not offered─────────────────────────────────────────┤
//!   │                                                                                ▼
//!   │                                                                   Gate1Open (gate 1 opens)
//!   │                                                                                │ entered / closed
//!   │                                                                                ▼
//!   │                                    Inspection: face 1:1 + fingerprint, then both authorities
//!   │                                                                                │ both cleared
//!   │                                                                                ▼
//!   │                                                            Exit (gates 2 and 3 open) ──▶ Idle
//!   └─ a refusal at gate 1 shows its reason (Refused) and returns to Idle; any failure inside the
//!      channel, tailgating or two faces hold the channel for an officer (Officer) until released.
//! ```
//!
//! "Both authorities" here means every authority that inspects at the port
//! ([`ProcedureConfig::authorities`]): Macao and the Mainland at a joint inspection port such as
//! Hengqin, the Mainland alone at seed 001's airports and Shenzhen land ports.
//!
//! Invariants (tested in `tests.rs`):
//! * gate 1 opens only for one face in the zone that was identified and is eligible today (and,
//!   with PAD enforcing, judged bona fide in `pad.required` of the latest `pad.window` frames), or
//!   for a card read that is valid today; gates 2 and 3 open only when every authority of the port cleared this
//!   passage;
//! * every gate command carries the newest fencing token the procedure knows, and a supervisor
//!   override older than that token is refused;
//! * face scan stops when the replica is staler than `max_staleness`; card scan remains;
//! * every failure produces a reason on a gate screen and an [`Output::Referral`] or
//!   [`Output::Alarm`] for the console;
//! * the procedure acts on what the gate controller did: no passage starts while gate 1 reports
//!   locked, and a gate command the controller refused or could not carry out
//!   ([`Input::GateFailed`]) ends the passage safely (turned away outside gate 1, held for an
//!   officer inside) with a `gate_failed` alarm.

mod pad;
mod registration;
#[cfg(test)]
mod tests;
mod vocab;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use clearway_gallery::{
    ADULT_AGE, Authority, GuardianConsent, Ineligible, MIN_AGE, Person, PersonId, Policy, age_on,
    document_eligibility, eligibility_under,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use pad::*;
pub use registration::*;
pub use vocab::*;

const CLOSED_TEXT: &str = "This channel is closed. Please use another channel.";
/// Shown at gate 1 while the lane cannot store the records of a passage.
const UNRECORDED_TEXT: &str = "This channel cannot record passages at the moment. Please use another channel or see an officer.";
/// Gate 1 opens: what its screen says unless a passage explains more ([`Procedure::open_gate1`]).
const WELCOME: (&str, &str) = ("welcome", "Welcome. Please proceed to gate 2.");

/// Tunables of the procedure. Every field has a default (see [`ProcedureConfig::default`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcedureConfig {
    /// The channel's name, e.g. `hengqin/passenger-hall/12` (records and idempotency keys).
    pub channel: String,
    /// The port's offset from UTC in minutes; the travel day (ages, validity) is the local date.
    /// Hengqin: +480.
    pub utc_offset_minutes: i32,
    /// Longest time since the replica last heard from the cluster's leader for which face scan
    /// still identifies travellers from it. Card scan continues beyond it.
    #[serde(with = "millis")]
    pub max_staleness: Duration,
    /// Consecutive gate-1 frames with more than one face in the capture zone that hold the
    /// channel (one or two such frames are people stepping past).
    pub multi_face_frames: u32,
    /// How long both authorities have to answer the prerequisite query before the declaration
    /// is shown; without both answers the traveller is not offered registration this time.
    #[serde(with = "millis")]
    pub prerequisite_timeout: Duration,
    /// How often a face-scan traveller's prerequisites are re-confirmed with the authorities:
    /// after a face passage, when this lane last did so for them longer ago (a card read
    /// re-confirms them every time, at most once a minute). A prerequisite withdrawn meanwhile
    /// stops face scan from the next passage. Default a day.
    #[serde(with = "millis")]
    pub prerequisite_recheck: Duration,
    /// How long the registration declaration waits for Agree.
    #[serde(with = "millis")]
    pub declaration_timeout: Duration,
    /// How long both authorities have to acknowledge the consent after Agree (then, again, how
    /// long the gallery write may take) before the traveller proceeds by card.
    #[serde(with = "millis")]
    pub registration_timeout: Duration,
    /// How long gate 1 stays open for the traveller to step in.
    #[serde(with = "millis")]
    pub enter_timeout: Duration,
    /// How long gate 2 waits for a matching face and a fingerprint.
    #[serde(with = "millis")]
    pub biometrics_timeout: Duration,
    /// Fingerprint captures tried before the traveller is referred.
    pub fingerprint_attempts: u32,
    /// How long both authorities have to answer an inspection.
    #[serde(with = "millis")]
    pub inspection_timeout: Duration,
    /// How long gates 2 and 3 stay open for the traveller to leave.
    #[serde(with = "millis")]
    pub exit_timeout: Duration,
    /// How long a gate-1 refusal stays on the screen.
    #[serde(with = "millis")]
    pub refusal_display: Duration,
    /// Cosine similarity the gate-2 face must reach against the gate-1 identity's templates.
    pub verify_threshold: f32,
    /// How long a gate has to report the state it was commanded into (open, or closed) before
    /// the procedure treats it as failed: the passage ends safely and an alarm is raised.
    #[serde(with = "millis")]
    pub gate_confirm_timeout: Duration,
    /// The authorities that inspect at this port's channels (one or two): each inspects every
    /// passage, receives the records and must acknowledge a registration's consent. Default
    /// both (a joint inspection channel, as at Hengqin); the port definition's `[policy]`.
    pub authorities: Vec<Authority>,
    /// Whether seed 000's prerequisites apply (asked of the authorities before the declaration;
    /// part of face-scan eligibility). Default true; seed 001's one-authority ports: false.
    pub prerequisites: bool,
    /// Which of a Mainland resident's endorsements counts here (`macao`, `hong_kong`; absent:
    /// any valid one, as at an airport). Default `macao`; the port definition's `[policy]`.
    pub destination: EndorsementFor,
    /// Which way this channel clears travellers, in words for records and the console (the port
    /// definition fills it in, e.g. `Macao → Hengqin`). Seed 000: registration is made
    /// travelling in either direction. Default empty (not said).
    pub direction: String,
    /// Presentation-attack detection: enforce (default), observe or off, and the multi-frame
    /// decision (`[lane.procedure.pad]`).
    pub pad: PadPolicy,
}

impl Default for ProcedureConfig {
    fn default() -> Self {
        ProcedureConfig {
            channel: "lane".into(),
            utc_offset_minutes: 480,
            max_staleness: Duration::from_secs(300),
            multi_face_frames: 3,
            prerequisite_timeout: Duration::from_secs(3),
            prerequisite_recheck: Duration::from_secs(24 * 3600),
            declaration_timeout: Duration::from_secs(30),
            registration_timeout: Duration::from_secs(10),
            enter_timeout: Duration::from_secs(10),
            biometrics_timeout: Duration::from_secs(20),
            fingerprint_attempts: 3,
            inspection_timeout: Duration::from_secs(5),
            exit_timeout: Duration::from_secs(10),
            refusal_display: Duration::from_secs(4),
            verify_threshold: 0.45,
            gate_confirm_timeout: Duration::from_secs(3),
            authorities: Authority::ALL.to_vec(),
            prerequisites: true,
            destination: EndorsementFor::Macao,
            direction: String::new(),
            pad: PadPolicy::default(),
        }
    }
}

impl ProcedureConfig {
    /// Checks ranges; a clear message for the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        self.pad.validate()?;
        if self.channel.trim().is_empty() {
            return Err("lane channel name is empty".into());
        }
        if !(-14 * 60..=14 * 60).contains(&self.utc_offset_minutes) {
            return Err(format!(
                "utc_offset_minutes {} outside ±840",
                self.utc_offset_minutes
            ));
        }
        if self.gate_confirm_timeout.is_zero() {
            return Err("gate_confirm_timeout must be more than 0 ms".into());
        }
        if self.multi_face_frames == 0 || self.fingerprint_attempts == 0 {
            return Err("multi_face_frames and fingerprint_attempts must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.verify_threshold) {
            return Err(format!(
                "verify_threshold {} outside 0..=1",
                self.verify_threshold
            ));
        }
        self.policy().validate()
    }

    /// The port's eligibility policy this channel applies.
    pub fn policy(&self) -> Policy {
        Policy {
            authorities: self.authorities.clone(),
            prerequisites: self.prerequisites,
            destination: self.destination.destination(),
        }
    }
}

/// Which of a Mainland resident's endorsements a channel looks at (`[lane.procedure]
/// destination`): `macao`, `hong_kong` or `any`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndorsementFor {
    /// The Macao endorsement (Hengqin).
    #[default]
    Macao,
    /// The Hong Kong endorsement (Shenzhen's land ports).
    HongKong,
    /// Whichever is valid longest (an airport with flights to both).
    Any,
}

impl EndorsementFor {
    /// As the gallery's policy says it.
    pub fn destination(self) -> Option<clearway_gallery::Destination> {
        match self {
            EndorsementFor::Macao => Some(clearway_gallery::Destination::Macao),
            EndorsementFor::HongKong => Some(clearway_gallery::Destination::HongKong),
            EndorsementFor::Any => None,
        }
    }
}

/// Durations in config files are whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

pub use clearway_gallery::ops::{LaneMode, OverrideAction};

/// What the vision stage made of one gate-1 frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceScan {
    /// Faces detected inside the capture zone.
    pub faces_in_zone: usize,
    /// The one face's verdict, when exactly one face is in the zone.
    pub face: Option<FaceCheck>,
    /// The PAD verdict on that face, when it passed the quality gate and PAD runs.
    pub pad: Option<PadVerdict>,
}

/// The verdict on the single face in the gate-1 capture zone.
#[derive(Debug, Clone, PartialEq)]
pub enum FaceCheck {
    /// The quality gate refused the face (a stable reason code, e.g. `too_small`, `pose`).
    Rejected(&'static str),
    /// Good face, but nobody in the gallery matched.
    Unknown,
    /// Matched this registered person from the local replica.
    Identified {
        /// The person's record as the replica holds it.
        person: Box<Person>,
        /// Cosine similarity of the best match.
        score: f32,
    },
}

/// What the vision stage made of one gate-2 frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate2Face {
    /// No usable face (none, several, or refused by the quality gate).
    NoFace,
    /// One good face; its best similarity to the identified person's templates, when the person
    /// has templates (`None`: an unregistered card-scan traveller, nothing to compare with).
    Face {
        /// Best cosine similarity, if there was anything to compare with.
        score: Option<f32>,
        /// The PAD verdict on the face, when PAD runs.
        pad: Option<PadVerdict>,
    },
}

/// Who the replica says holds a document that was read.
#[derive(Debug, Clone, PartialEq)]
pub enum Holder {
    /// Nobody registered holds it.
    Unknown,
    /// A registered person (with face templates).
    Registered(Box<Person>),
    /// Enrolled without a face yet: a minor whose parent or guardian consented at a service
    /// location, who completes the registration at a channel.
    Pending(Box<Person>),
}

/// A card scan: what the reader delivered and what the replica knows of the document.
#[derive(Debug, Clone, PartialEq)]
pub enum CardScan {
    /// Read and checked.
    Read {
        /// The document.
        document: Box<DocumentRead>,
        /// Who the replica says holds it.
        holder: Holder,
    },
    /// The reader delivered something unusable (a stable code and a reason to show).
    Unreadable {
        /// Stable code, e.g. `check_digit`.
        code: &'static str,
        /// Words for the screen.
        reason: String,
    },
}

/// One input, stamped by the runtime with the wall-clock time it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Nothing happened; deadlines are checked.
    Tick,
    /// A gate-1 frame was analysed.
    Gate1(FaceScan),
    /// A gate-2 frame was analysed.
    Gate2(Gate2Face),
    /// A document was presented.
    Card(CardScan),
    /// The traveller tapped Agree on the declaration.
    Agree,
    /// The traveller tapped Not now (or walked away).
    Decline,
    /// The registration requested by [`Output::Register`] was committed (or not).
    Registered(Result<PersonId, String>),
    /// An authority answered the prerequisite query of [`Output::CheckPrerequisites`] (or could
    /// not be reached).
    Prerequisites {
        /// Who answered.
        authority: Authority,
        /// The document asked about.
        document: DocumentKey,
        /// What it holds, or why there was no answer.
        result: Result<PrerequisiteStatus, String>,
    },
    /// An authority acknowledged the consent of [`Output::RecordConsent`] (or did not).
    ConsentRecorded {
        /// Who.
        authority: Authority,
        /// The consent's key.
        key: String,
        /// Acknowledged, or why not.
        result: Result<(), String>,
    },
    /// A fingerprint capture requested by [`Output::CaptureFingerprint`].
    Fingerprint(Result<FingerprintCapture, String>),
    /// An authority answered the inspection with this key (or could not be reached).
    Verdict {
        /// Who answered.
        authority: Authority,
        /// The inspection's key.
        key: String,
        /// The answer, or why there was none.
        result: Result<Verdict, String>,
    },
    /// The gate controller's report.
    Gates {
        /// Gates 1, 2 and 3.
        states: [GateState; 3],
        /// Persons the light curtains count between gate 1 and gate 2.
        occupancy: u32,
        /// The highest fencing token the controller has accepted.
        fence: Fence,
    },
    /// The replica's state: the fencing token it can issue and how stale it is.
    Replica {
        /// Current Raft term and applied index.
        fence: Fence,
        /// Time since the leader last reached this replica; `None` if it never did.
        staleness: Option<Duration>,
    },
    /// The gate controller did not carry out a command the procedure (or a supervisor) gave:
    /// it refused it (the gate is locked or in fault, the fence is stale) or could not be
    /// reached. The procedure acts on what the controller did, not on what it was told.
    GateFailed {
        /// Which gate.
        gate: GateId,
        /// What it was told.
        action: GateAction,
        /// Why not, for the console (no personal data).
        why: String,
    },
    /// The records the last input's outputs carried for the authorities could not be stored
    /// (a full or failing disk): the runtime did not send that input's gate-open commands
    /// (`withheld`) nor its decisions. No passage starts until [`Input::RecordsWritable`].
    RecordsUnwritable {
        /// The gates whose open command was not sent.
        withheld: Vec<GateId>,
    },
    /// The outbox stores records again (a probe write reached the disk).
    RecordsWritable,
    /// A supervisor override, carrying the fencing token of the log entry that delivered it.
    Override {
        /// What to do.
        action: OverrideAction,
        /// Its fencing token.
        fence: Fence,
    },
}

/// A message on a gate screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Screen {
    /// The screen at gate 1 (outside) or gate 2 (inside).
    pub gate: GateId,
    /// A stable code for the message (translations, tests).
    pub code: &'static str,
    /// The words shown.
    pub text: String,
}

/// Alarms raised to the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// More than one face in the gate-1 capture zone.
    MultipleFaces,
    /// More than one person between gate 1 and gate 2.
    Tailgating,
    /// An authority did not answer an inspection in time.
    AuthorityNotAnswering,
    /// A gate reports a fault.
    GateFault,
    /// A gate did not carry out a command (refused, locked, unreachable): the passage it was
    /// for ended safely.
    GateFailed,
    /// A traveller was turned away at gate 1 because it is locked.
    Gate1Locked,
    /// Face scan suspended: the replica is staler than allowed.
    ReplicaStale,
    /// The gate controller accepted a fencing token this lane never issued: something else on
    /// the gate network commands the gates. No passage starts until a technician resets the
    /// controller's fence at the cabinet.
    ForeignFence,
    /// The lane's outbox cannot store the records that make a passage lawful (a full or
    /// failing disk): nobody passes, by face or card, until it can.
    RecordsUnwritable,
    /// PAD judged the face at gate 1 a presentation attack (a photo, a screen, a mask)
    /// `alarm_after` frames in a row. The traveller was only asked to look at the camera.
    PresentationAttack,
}

impl AlarmKind {
    /// Stable snake_case name (a bounded metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::MultipleFaces => "multiple_faces",
            AlarmKind::Tailgating => "tailgating",
            AlarmKind::AuthorityNotAnswering => "authority_not_answering",
            AlarmKind::GateFault => "gate_fault",
            AlarmKind::GateFailed => "gate_failed",
            AlarmKind::Gate1Locked => "gate1_locked",
            AlarmKind::ReplicaStale => "replica_stale",
            AlarmKind::ForeignFence => "foreign_fence",
            AlarmKind::RecordsUnwritable => "records_unwritable",
            AlarmKind::PresentationAttack => "presentation_attack",
        }
    }
}

/// How a passage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Gate 1 opened (face scan or card scan).
    Admitted,
    /// Both authorities cleared; gates 2 and 3 opened.
    Cleared,
    /// Refused at gate 1 (shown, the traveller stays outside).
    Refused,
    /// Registered at the channel.
    Registered,
    /// Sent to an officer.
    Referred,
    /// Not offered the registration declaration (a prerequisite not held, the document does not
    /// fit face scan, a minor without a guardian's consent); the card passage continues.
    NotOffered,
}

impl Outcome {
    /// Stable snake_case name (a bounded metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Admitted => "admitted",
            Outcome::Cleared => "cleared",
            Outcome::Refused => "refused",
            Outcome::Registered => "registered",
            Outcome::Referred => "referred",
            Outcome::NotOffered => "not_offered",
        }
    }
}

/// A decision, for metrics, the console and the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// What happened.
    pub outcome: Outcome,
    /// A stable reason code (`eligible`, an [`Ineligible`](clearway_gallery::Ineligible) code, …).
    pub reason: &'static str,
    /// Face scan or card scan, once known.
    pub method: Option<ClearanceMethod>,
    /// When it was decided.
    pub at: DateTime<Utc>,
}

/// What to write to the gallery once both authorities acknowledged the consent.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationRequest {
    /// The document read at gate 1.
    pub document: DocumentRead,
    /// The person already enrolled for this document without a face (a minor approved at a
    /// service location): complete their entry instead of enrolling anew.
    pub existing: Option<PersonId>,
    /// The guardian's consent (minors).
    pub guardian_consent: Option<GuardianConsent>,
    /// The prerequisites as the authorities confirmed them before the declaration.
    pub prerequisites: Prerequisites,
    /// The consent's idempotency key.
    pub consent_key: String,
    /// The channel.
    pub channel: String,
    /// The port's authorities, each of which acknowledged the consent.
    pub authorities: Vec<Authority>,
    /// When every one of them had acknowledged it.
    pub at: DateTime<Utc>,
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this command to the gate controller.
    Gate(GateCommand),
    /// Show this on a gate screen.
    Screen(Screen),
    /// Ask both authorities what they hold about this document's prerequisites, then answer
    /// one [`Input::Prerequisites`] each.
    CheckPrerequisites(DocumentKey),
    /// Send this consent to both authorities at once, then answer one
    /// [`Input::ConsentRecorded`] each.
    RecordConsent(Box<ConsentRequest>),
    /// Write the registration to the port's gallery through the cluster (the face captured at
    /// gate 1 since Agree, [`registration_commands`]), then answer [`Input::Registered`].
    Register(Box<RegistrationRequest>),
    /// Capture a fingerprint, then answer [`Input::Fingerprint`].
    CaptureFingerprint,
    /// Ask both authorities to inspect, then answer one [`Input::Verdict`] each.
    Inspect(Box<InspectionRequest>),
    /// Queue this record in the outbox.
    Deliver(Box<Delivery>),
    /// Raise an alarm on the console.
    Alarm {
        /// Which.
        kind: AlarmKind,
        /// Words for the console.
        detail: String,
    },
    /// A traveller is referred to an officer, for this reason.
    Referral {
        /// Stable code.
        code: &'static str,
        /// Words for the officer.
        reason: String,
    },
    /// A decision was made.
    Decision(Decision),
}

/// Who is walking through the channel.
#[derive(Debug, Clone, PartialEq)]
struct Traveller {
    method: ClearanceMethod,
    document: DocumentKey,
    /// The registered person, when identified by face or when the card's holder is registered.
    person: Option<PersonId>,
}

/// Where a gate-2 inspection stands.
#[derive(Debug, Clone, PartialEq)]
enum Inspection {
    /// Collecting the face (1:1) and the fingerprint.
    Biometrics {
        face_score: Option<f32>,
        fingerprint: Option<FingerprintCapture>,
        attempts: u32,
        capturing: bool,
    },
    /// Waiting for both authorities.
    Verdicts {
        key: String,
        macao: Option<Verdict>,
        mainland: Option<Verdict>,
    },
}

/// A traveller who may be offered the registration: their card and what the gallery holds.
#[derive(Debug, Clone, PartialEq)]
struct Offer {
    document: DocumentRead,
    existing: Option<PersonId>,
    guardian_consent: Option<GuardianConsent>,
}

/// The answers of the Macao and Mainland authorities, in that order.
type Answers<T> = [Option<Result<T, String>>; 2];

fn slot(authority: Authority) -> usize {
    match authority {
        Authority::Macao => 0,
        Authority::Mainland => 1,
    }
}

/// A registration sent to the gallery whose answer has not come back: kept beyond the
/// `Registering` phase so a late answer is reconciled (a late failure withdraws the consent).
#[derive(Debug, Clone, PartialEq)]
struct Writing {
    document: DocumentKey,
    consent_key: String,
}

/// The procedure's phase.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    Refused {
        until: DateTime<Utc>,
    },
    Checking {
        offer: Box<Offer>,
        answers: Answers<PrerequisiteStatus>,
        until: DateTime<Utc>,
    },
    Declaration {
        offer: Box<Offer>,
        prerequisites: Box<Prerequisites>,
        until: DateTime<Utc>,
    },
    Consenting {
        offer: Box<Offer>,
        prerequisites: Box<Prerequisites>,
        key: String,
        acks: Answers<()>,
        until: DateTime<Utc>,
    },
    Registering {
        document: Box<DocumentRead>,
        until: DateTime<Utc>,
    },
    Gate1Open {
        traveller: Traveller,
        until: DateTime<Utc>,
        entered: bool,
    },
    Inspection {
        traveller: Traveller,
        step: Inspection,
        until: DateTime<Utc>,
    },
    Exit {
        traveller: Traveller,
        until: DateTime<Utc>,
    },
    Officer {
        code: &'static str,
    },
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Refused { .. } => "refused",
            Phase::Checking { .. } => "checking",
            Phase::Declaration { .. } => "declaration",
            Phase::Consenting { .. } => "consenting",
            Phase::Registering { .. } => "registering",
            Phase::Gate1Open { .. } => "gate1_open",
            Phase::Inspection { .. } => "inspection",
            Phase::Exit { .. } => "exit",
            Phase::Officer { .. } => "officer",
        }
    }
}

/// A snapshot of the procedure for the console and `/lane`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneView {
    /// The current step (`idle`, `declaration`, `gate1_open`, `inspection`, `exit`, `officer`, …).
    pub step: &'static str,
    /// The supervisor's mode.
    pub mode: LaneMode,
    /// Whether face scan is in use right now (mode allows it and the replica is fresh enough).
    pub face_scan: bool,
    /// The newest fencing token known.
    pub fence: Fence,
    /// Gates 1–3 as last reported.
    pub gates: [GateState; 3],
    /// Persons between gate 1 and gate 2.
    pub occupancy: u32,
    /// Why the channel is held for an officer, if it is.
    pub held_for: Option<&'static str>,
    /// The gate controller holds a fencing token this lane never issued (no passage starts).
    #[serde(default)]
    pub foreign_fence: bool,
    /// Which way the channel clears travellers (the port definition's words; may be empty).
    pub direction: String,
    /// The outbox cannot store the records of a passage (no passage starts).
    #[serde(default)]
    pub records_unwritable: bool,
    /// Whether presentation-attack detection enforces, observes or is off.
    #[serde(default)]
    pub pad: PadMode,
}

/// The gate procedure of one channel. See the module documentation.
pub struct Procedure {
    config: ProcedureConfig,
    policy: Policy,
    offset: FixedOffset,
    phase: Phase,
    mode: LaneMode,
    fence: Fence,
    stale: bool,
    gates: [GateState; 3],
    /// The controller's highest accepted fence, when it is one this lane never issued.
    foreign_fence: Option<Fence>,
    /// The outbox cannot store records: no passage starts ([`Input::RecordsUnwritable`]).
    records_down: bool,
    /// The time of the input being handled (commands issued now are due by it plus
    /// [`ProcedureConfig::gate_confirm_timeout`]).
    now: DateTime<Utc>,
    /// Per gate, the last command not yet seen carried out, and by when it must be.
    commanded: [Option<(GateAction, DateTime<Utc>)>; 3],
    occupancy: u32,
    multi_face_run: u32,
    /// The latest PAD verdicts on the face in the gate-1 capture zone.
    pad_window: PadWindow,
    passages: u64,
    /// The message each screen (gate 1, gate 2) shows, so a repeated one is not sent again.
    shown: [Option<(&'static str, String)>; 2],
    /// A registration written to the gallery, until its answer comes back.
    writing: Option<Writing>,
    outputs: VecDeque<Output>,
}

/// Whether a gate reporting `state` has carried out `action` (a locked gate is closed).
fn reached(action: GateAction, state: GateState) -> bool {
    match action {
        GateAction::Open => state == GateState::Open,
        GateAction::Close => matches!(state, GateState::Closed | GateState::Locked),
        GateAction::Unlock => state == GateState::Closed,
        GateAction::Lock => state == GateState::Locked,
    }
}

impl fmt::Debug for Procedure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Procedure")
            .field("phase", &self.phase.name())
            .field("mode", &self.mode)
            .field("fence", &self.fence)
            .finish_non_exhaustive()
    }
}

impl Procedure {
    /// A procedure at rest; the replica counts as stale until [`Input::Replica`] says otherwise.
    pub fn new(config: ProcedureConfig) -> Procedure {
        let offset = FixedOffset::east_opt(config.utc_offset_minutes.saturating_mul(60))
            .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset is valid"));
        Procedure {
            policy: config.policy(),
            config,
            offset,
            phase: Phase::Idle,
            mode: LaneMode::FaceAndCard,
            fence: Fence::default(),
            stale: true,
            gates: [GateState::Closed; 3],
            foreign_fence: None,
            records_down: false,
            now: DateTime::<Utc>::MIN_UTC,
            commanded: [None; 3],
            occupancy: 0,
            multi_face_run: 0,
            pad_window: PadWindow::default(),
            passages: 0,
            shown: [None, None],
            writing: None,
            outputs: VecDeque::new(),
        }
    }

    /// The next output to act on.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The state for display.
    pub fn view(&self) -> LaneView {
        LaneView {
            step: self.phase.name(),
            mode: self.mode,
            face_scan: self.face_scan_enabled(),
            fence: self.fence,
            gates: self.gates,
            occupancy: self.occupancy,
            held_for: match &self.phase {
                Phase::Officer { code } => Some(code),
                _ => None,
            },
            foreign_fence: self.foreign_fence.is_some(),
            direction: self.config.direction.clone(),
            records_unwritable: self.records_down,
            pad: self.config.pad.mode,
        }
    }

    /// The person the gate-2 camera should be compared with, while one is being inspected.
    pub fn expected_person(&self) -> Option<PersonId> {
        match &self.phase {
            Phase::Gate1Open { traveller, .. } | Phase::Inspection { traveller, .. } => {
                traveller.person
            }
            _ => None,
        }
    }

    /// Whether gate-1 frames are wanted (face scan in use and nobody being served).
    pub fn wants_gate1_faces(&self) -> bool {
        self.face_scan_enabled() && matches!(self.phase, Phase::Idle)
    }

    /// Whether the controller reports gate 1 locked (a supervisor's lock): no passage starts.
    fn gate1_locked(&self) -> bool {
        self.gates[0] == GateState::Locked
    }

    /// Whether gate-2 frames are wanted.
    pub fn wants_gate2_faces(&self) -> bool {
        matches!(
            self.phase,
            Phase::Inspection {
                step: Inspection::Biometrics {
                    face_score: None,
                    ..
                },
                ..
            }
        )
    }

    /// The local travel day at `now`.
    pub fn travel_day(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.offset).date_naive()
    }

    fn face_scan_enabled(&self) -> bool {
        self.mode == LaneMode::FaceAndCard && !self.stale && !self.records_down
    }

    /// Feeds one input that happened at `now`.
    pub fn handle(&mut self, now: DateTime<Utc>, input: Input) {
        self.now = now;
        match input {
            Input::Tick => {}
            Input::Gate1(scan) => self.on_gate1(now, scan),
            Input::Gate2(face) => self.on_gate2(now, face),
            Input::Card(card) => self.on_card(now, card),
            Input::Agree => self.on_agree(now),
            Input::Decline => {
                if let Phase::Declaration { offer, .. } = &self.phase {
                    let document = offer.document.clone();
                    self.admit_by_card(now, &document, None, WELCOME);
                }
            }
            Input::Registered(result) => self.on_registered(now, result),
            Input::Prerequisites {
                authority,
                document,
                result,
            } => self.on_prerequisites(now, authority, &document, result),
            Input::ConsentRecorded {
                authority,
                key,
                result,
            } => self.on_consent_recorded(now, authority, &key, result),
            Input::Fingerprint(result) => self.on_fingerprint(now, result),
            Input::Verdict {
                authority,
                key,
                result,
            } => self.on_verdict(now, authority, &key, result),
            Input::Gates {
                states,
                occupancy,
                fence,
            } => {
                self.on_controller_fence(fence);
                self.on_gates(now, states, occupancy)
            }
            Input::GateFailed { gate, action, why } => self.on_gate_failed(now, gate, action, why),
            Input::Replica { fence, staleness } => self.on_replica(fence, staleness),
            Input::RecordsUnwritable { withheld } => self.on_records_unwritable(now, &withheld),
            Input::RecordsWritable => {
                if self.records_down {
                    self.records_down = false;
                    if matches!(self.phase, Phase::Idle) {
                        self.back_to_idle();
                    }
                }
            }
            Input::Override { action, fence } => self.on_override(now, action, fence),
        }
        self.check_deadlines(now);
        self.check_gate_deadlines(now);
    }

    /// A gate that has not reported the state it was commanded into by its deadline failed.
    fn check_gate_deadlines(&mut self, now: DateTime<Utc>) {
        for gate in GateId::ALL {
            let i = usize::from(gate.number() - 1);
            if let Some((action, due)) = self.commanded[i]
                && now >= due
            {
                self.commanded[i] = None;
                let why = format!(
                    "still {} after {} ms",
                    self.gates[i].as_str(),
                    self.config.gate_confirm_timeout.as_millis()
                );
                self.on_gate_failed(now, gate, action, why);
            }
        }
    }

    // --- inputs -----------------------------------------------------------------------------

    fn on_gate1(&mut self, now: DateTime<Utc>, scan: FaceScan) {
        if !self.wants_gate1_faces() {
            return;
        }
        if scan.faces_in_zone > 1 {
            self.multi_face_run += 1;
            if self.multi_face_run >= self.config.multi_face_frames {
                self.multi_face_run = 0;
                self.alarm(
                    AlarmKind::MultipleFaces,
                    "more than one face at gate 1".into(),
                );
                self.hold(
                    "multiple_faces",
                    "One person at a time. Please wait for an officer.",
                );
            } else {
                self.screen(
                    GateId::One,
                    "one_at_a_time",
                    "One person at a time, please.",
                );
            }
            return;
        }
        self.multi_face_run = 0;
        if scan.faces_in_zone == 0 {
            // The face left the zone: the next one starts a new window.
            self.pad_window.reset();
        }
        if let Some(verdict) = scan.pad
            && self.config.pad.mode == PadMode::Enforce
            && self.pad_window.push(verdict, &self.config.pad) == PadEvent::Alarm
        {
            self.alarm(
                AlarmKind::PresentationAttack,
                format!(
                    "{} presentation-attack verdicts in a row at gate 1",
                    self.config.pad.alarm_after
                ),
            );
        }
        let Some(face) = scan.face else { return };
        if self.foreign_fence.is_some() {
            if let FaceCheck::Identified { .. } = face
                && matches!(self.phase, Phase::Idle | Phase::Refused { .. })
            {
                self.turn_away_foreign_fence(now, ClearanceMethod::Face);
            }
            return;
        }
        if self.gate1_locked() {
            if let FaceCheck::Identified { .. } = face {
                self.turn_away_at_locked_gate(now, ClearanceMethod::Face);
            }
            return;
        }
        match face {
            FaceCheck::Rejected(reason) => self.screen(
                GateId::One,
                "face_quality",
                format!(
                    "Please remove sunglasses, mask and hat and look at the camera ({reason})."
                ),
            ),
            FaceCheck::Unknown => self.screen(
                GateId::One,
                "not_recognised",
                "Face not recognised. Please present your travel document (card scan).",
            ),
            // Not yet enough bona fide frames (or an attack): ask, never accuse, and say nothing
            // of the person identified (their eligibility is not for whoever holds their photo).
            FaceCheck::Identified { .. }
                if self.config.pad.mode == PadMode::Enforce
                    && !self.pad_window.satisfied(&self.config.pad) =>
            {
                self.screen(GateId::One, "look_at_camera", "Please look at the camera.");
            }
            FaceCheck::Identified { person, .. } => {
                let today = self.travel_day(now);
                match eligibility_under(&person, today, &self.policy) {
                    Ok(()) => {
                        self.pad_window.reset();
                        let traveller = Traveller {
                            method: ClearanceMethod::Face,
                            document: DocumentKey {
                                kind: person.document.kind,
                                number: person.document.number.clone(),
                            },
                            person: Some(person.id),
                        };
                        self.open_gate1(now, traveller, "eligible", WELCOME);
                    }
                    Err(why) => self.refuse(
                        now,
                        why.code(),
                        ClearanceMethod::Face,
                        format!(
                            "Face scan not available: {why}. Please use card scan or see an officer."
                        ),
                    ),
                }
            }
        }
    }

    fn on_card(&mut self, now: DateTime<Utc>, card: CardScan) {
        if self.mode == LaneMode::Closed {
            self.screen(GateId::One, "lane_closed", CLOSED_TEXT);
            return;
        }
        if self.foreign_fence.is_some() && matches!(self.phase, Phase::Idle | Phase::Refused { .. })
        {
            self.turn_away_foreign_fence(now, ClearanceMethod::Card);
            return;
        }
        if self.records_down && matches!(self.phase, Phase::Idle | Phase::Refused { .. }) {
            self.screen(GateId::One, "records_unwritable", UNRECORDED_TEXT);
            self.decide(
                now,
                Outcome::Refused,
                "records_unwritable",
                Some(ClearanceMethod::Card),
            );
            self.phase = Phase::Refused {
                until: now + self.config.refusal_display,
            };
            return;
        }
        if self.gate1_locked() && matches!(self.phase, Phase::Idle | Phase::Refused { .. }) {
            self.turn_away_at_locked_gate(now, ClearanceMethod::Card);
            return;
        }
        // Card scan is always available at gate 1 while nobody is being served.
        if !matches!(
            self.phase,
            Phase::Idle | Phase::Refused { .. } | Phase::Declaration { .. }
        ) {
            return;
        }
        let (document, holder) = match card {
            CardScan::Unreadable { code, reason } => {
                self.refuse(
                    now,
                    code,
                    ClearanceMethod::Card,
                    format!("Document could not be read: {reason}. Please see an officer."),
                );
                return;
            }
            CardScan::Read { document, holder } => (document, holder),
        };
        let today = self.travel_day(now);
        if today < document.valid_from {
            self.refuse(
                now,
                "document_not_yet_valid",
                ClearanceMethod::Card,
                "Document not yet valid. Please see an officer.".into(),
            );
            return;
        }
        if today > document.valid_until {
            self.refuse(
                now,
                "document_expired",
                ClearanceMethod::Card,
                "Document expired. Please see an officer.".into(),
            );
            return;
        }
        let (existing, guardian_consent) = match holder {
            Holder::Registered(person) => {
                // Already registered: card scan clears them like anyone else.
                self.admit_by_card(now, &document, Some(person.id), WELCOME);
                return;
            }
            Holder::Pending(person) => (Some(person.id), person.guardian_consent),
            Holder::Unknown => (None, None),
        };
        // Not registered: offer registration when the traveller could use face scan.
        let age = age_on(document.date_of_birth, today);
        if age < MIN_AGE || self.stale {
            self.admit_by_card(now, &document, None, WELCOME);
            return;
        }
        if age < ADULT_AGE && guardian_consent.is_none() {
            self.decide(
                now,
                Outcome::NotOffered,
                "guardian_consent_missing",
                Some(ClearanceMethod::Card),
            );
            self.admit_by_card(
                now,
                &document,
                None,
                (
                    "minor_needs_guardian",
                    "Registration of a minor (14 to 17) needs a parent's or guardian's consent \
                     at a service location first. Please proceed to gate 2 (card scan).",
                ),
            );
            return;
        }
        // The category and the document first (nothing to ask anyone), then the prerequisites,
        // which only the authorities hold.
        if let Err(why) = document_eligibility(
            document.category,
            &document.travel_document(),
            document.endorsement.as_ref(),
            today,
        ) {
            self.not_offered(now, &document, why);
            return;
        }
        let offer = Box::new(Offer {
            document: *document,
            existing,
            guardian_consent,
        });
        if !self.policy.prerequisites {
            // Seed 001's ports: the consent is all; nothing to ask first.
            self.declare(now, offer, Prerequisites::default());
            return;
        }
        self.outputs
            .push_back(Output::CheckPrerequisites(offer.document.key()));
        self.screen(GateId::One, "checking", "One moment, please.");
        self.phase = Phase::Checking {
            offer,
            answers: self.unasked(),
            until: now + self.config.prerequisite_timeout,
        };
    }

    /// Answers of the authorities this port does not inspect with: there is nothing to wait for.
    fn unasked<T: Default>(&self) -> Answers<T> {
        let mut answers: Answers<T> = [None, None];
        for a in Authority::ALL {
            if !self.policy.authorities.contains(&a) {
                answers[slot(a)] = Some(Ok(T::default()));
            }
        }
        answers
    }

    /// Shows the declaration.
    fn declare(&mut self, now: DateTime<Utc>, offer: Box<Offer>, prerequisites: Prerequisites) {
        self.screen(
            GateId::One,
            "declaration",
            "Declaration: I register for Smart Immigration Clearance. My facial features will be \
             collected and my consent transmitted to the border inspection authorities for \
             record. Tap Agree to register, or Not now.",
        );
        self.phase = Phase::Declaration {
            offer,
            prerequisites: Box::new(prerequisites),
            until: now + self.config.declaration_timeout,
        };
    }

    /// The traveller cannot register (`why`): the screen says so and the card passage goes on.
    fn not_offered(&mut self, now: DateTime<Utc>, document: &DocumentRead, why: Ineligible) {
        self.decide(
            now,
            Outcome::NotOffered,
            why.code(),
            Some(ClearanceMethod::Card),
        );
        let text = format!(
            "Registration for face scan is not possible: {why}. Please proceed to gate 2 (card scan)."
        );
        self.admit_by_card(now, document, None, (not_offered_code(why), &text));
    }

    fn on_prerequisites(
        &mut self,
        now: DateTime<Utc>,
        authority: Authority,
        document: &DocumentKey,
        result: Result<PrerequisiteStatus, String>,
    ) {
        let Phase::Checking { offer, answers, .. } = &mut self.phase else {
            return;
        };
        if offer.document.key() != *document {
            return;
        }
        answers[slot(authority)] = Some(result);
        let [Some(macao), Some(mainland)] = answers else {
            return;
        };
        let offer = offer.clone();
        let (macao, mainland) = match (macao, mainland) {
            (Ok(m), Ok(c)) => (m.clone(), c.clone()),
            (Err(why), _) | (_, Err(why)) => {
                let why = why.clone();
                self.registration_unavailable(now, &offer.document, &why);
                return;
            }
        };
        let (prerequisites, verdict) =
            confirm_prerequisites(offer.document.category, &macao, &mainland);
        if let Err(why) = verdict {
            self.not_offered(now, &offer.document, why);
            return;
        }
        self.declare(now, offer, prerequisites);
    }

    /// The authorities could not be asked: no registration this time, the card passage goes on.
    fn registration_unavailable(&mut self, now: DateTime<Utc>, document: &DocumentRead, why: &str) {
        let text = format!(
            "Registration is not available at the moment ({why}). Please proceed to gate 2 (card scan)."
        );
        self.admit_by_card(now, document, None, ("registration_unavailable", &text));
    }

    fn on_agree(&mut self, now: DateTime<Utc>) {
        let Phase::Declaration {
            offer,
            prerequisites,
            ..
        } = &self.phase
        else {
            return;
        };
        let (offer, prerequisites) = (offer.clone(), prerequisites.clone());
        let key = consent_key(&self.config.channel, &offer.document.key(), now);
        let record = AuthorityRecord::RegistrationConsent {
            document: offer.document.key(),
            name: offer.document.name.clone(),
            given_at: now,
            channel: self.config.channel.clone(),
            direction: self.config.direction.clone(),
        };
        self.outputs
            .push_back(Output::RecordConsent(Box::new(ConsentRequest {
                key: key.clone(),
                record,
            })));
        self.screen(
            GateId::One,
            "registering",
            "Registering, please look at the camera.",
        );
        self.phase = Phase::Consenting {
            offer,
            prerequisites,
            key,
            acks: self.unasked(),
            until: now + self.config.registration_timeout,
        };
    }

    fn on_consent_recorded(
        &mut self,
        now: DateTime<Utc>,
        authority: Authority,
        key: &str,
        result: Result<(), String>,
    ) {
        let Phase::Consenting {
            key: ours, acks, ..
        } = &mut self.phase
        else {
            return;
        };
        if ours != key {
            return;
        }
        if let Err(why) = &result {
            let why = format!("{authority}: {why}");
            self.consent_failed(now, &why);
            return;
        }
        acks[slot(authority)] = Some(result);
        if acks.iter().any(Option::is_none) {
            return;
        }
        let Phase::Consenting {
            offer,
            prerequisites,
            key,
            ..
        } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        let Offer {
            document,
            existing,
            guardian_consent,
        } = *offer;
        self.writing = Some(Writing {
            document: document.key(),
            consent_key: key.clone(),
        });
        self.outputs
            .push_back(Output::Register(Box::new(RegistrationRequest {
                document: document.clone(),
                existing,
                guardian_consent,
                prerequisites: *prerequisites,
                consent_key: key,
                channel: self.config.channel.clone(),
                authorities: self.policy.authorities.clone(),
                at: now,
            })));
        self.phase = Phase::Registering {
            document: Box::new(document),
            until: now + self.config.registration_timeout,
        };
    }

    /// Both authorities did not acknowledge the consent: nothing is registered, the consent is
    /// withdrawn from both (an unanswered request may still have been recorded), the traveller
    /// passes by card.
    fn consent_failed(&mut self, now: DateTime<Utc>, why: &str) {
        let Phase::Consenting { offer, key, .. } = &self.phase else {
            return;
        };
        let (document, key) = (offer.document.clone(), key.clone());
        self.withdraw(now, &document.key(), &key, why);
        let text = format!(
            "Registration could not be completed ({why}). Please proceed to gate 2 (card scan)."
        );
        self.admit_by_card(now, &document, None, ("registration_failed", &text));
    }

    /// Queues the withdrawal of the consent under `key` for every authority of the port.
    fn withdraw(&mut self, now: DateTime<Utc>, document: &DocumentKey, key: &str, why: &str) {
        for authority in self.policy.authorities.clone() {
            self.deliver(
                authority,
                AuthorityRecord::ConsentWithdrawn {
                    document: document.clone(),
                    consent_key: key.to_owned(),
                    reason: format!("registration not completed: {why}"),
                    withdrawn_at: now,
                    channel: self.config.channel.clone(),
                },
            );
        }
    }

    fn on_registered(&mut self, now: DateTime<Utc>, result: Result<PersonId, String>) {
        let Some(writing) = self.writing.take() else {
            return;
        };
        let here = match &self.phase {
            Phase::Registering { document, .. } if document.key() == writing.document => {
                Some((**document).clone())
            }
            _ => None,
        };
        match result {
            Ok(id) => {
                self.decide(
                    now,
                    Outcome::Registered,
                    "agreed",
                    Some(ClearanceMethod::Card),
                );
                if let Some(document) = here {
                    self.admit_by_card(
                        now,
                        &document,
                        Some(id),
                        (
                            "registered",
                            "Registration complete. Face scan works from your next trip. \
                             Please proceed to gate 2.",
                        ),
                    );
                }
            }
            Err(reason) => {
                self.withdraw(now, &writing.document, &writing.consent_key, &reason);
                if let Some(document) = here {
                    let text = format!(
                        "Registration could not be completed ({reason}). Please proceed to gate \
                         2 (card scan)."
                    );
                    self.admit_by_card(now, &document, None, ("registration_failed", &text));
                }
            }
        }
    }

    fn on_gate2(&mut self, now: DateTime<Utc>, face: Gate2Face) {
        let threshold = self.config.verify_threshold;
        let Phase::Inspection {
            traveller,
            step: Inspection::Biometrics { face_score, .. },
            ..
        } = &mut self.phase
        else {
            return;
        };
        if face_score.is_some() {
            return;
        }
        let enforce = self.config.pad.mode == PadMode::Enforce;
        match face {
            Gate2Face::NoFace => {}
            // In enforce mode a face PAD did not judge bona fide is not used: gate 2 waits for
            // a live one until its biometrics deadline, which refers the traveller.
            Gate2Face::Face { pad, .. } if enforce && pad != Some(PadVerdict::BonaFide) => {}
            Gate2Face::Face { score, .. } => match (traveller.person, score) {
                (Some(_), Some(s)) if s >= threshold => *face_score = Some(s),
                (Some(_), _) => {
                    self.refer(
                        now,
                        "face_mismatch",
                        "The face at gate 2 does not match the traveller identified at gate 1."
                            .into(),
                    );
                    return;
                }
                // Nothing enrolled to compare with: the authorities inspect the capture.
                (None, _) => *face_score = Some(0.0),
            },
        }
        self.maybe_inspect(now);
    }

    fn on_fingerprint(&mut self, now: DateTime<Utc>, result: Result<FingerprintCapture, String>) {
        let attempts_allowed = self.config.fingerprint_attempts;
        let Phase::Inspection {
            step:
                Inspection::Biometrics {
                    fingerprint,
                    attempts,
                    capturing,
                    ..
                },
            ..
        } = &mut self.phase
        else {
            return;
        };
        *capturing = false;
        match result {
            Ok(capture) => *fingerprint = Some(capture),
            Err(reason) => {
                *attempts += 1;
                if *attempts >= attempts_allowed {
                    self.refer(
                        now,
                        "fingerprint_failed",
                        format!("No usable fingerprint after {attempts_allowed} tries ({reason})."),
                    );
                    return;
                }
                *capturing = true;
                self.screen(
                    GateId::Two,
                    "fingerprint_retry",
                    "Please place your finger on the reader again.",
                );
                self.outputs.push_back(Output::CaptureFingerprint);
            }
        }
        self.maybe_inspect(now);
    }

    fn on_verdict(
        &mut self,
        now: DateTime<Utc>,
        authority: Authority,
        key: &str,
        result: Result<Verdict, String>,
    ) {
        let Phase::Inspection {
            step:
                Inspection::Verdicts {
                    key: expected,
                    macao,
                    mainland,
                },
            ..
        } = &mut self.phase
        else {
            return;
        };
        if expected != key {
            return; // An answer to an earlier passage.
        }
        let verdict = match result {
            Ok(v) => v,
            Err(reason) => {
                self.alarm(
                    AlarmKind::AuthorityNotAnswering,
                    format!("{authority} authority: {reason}"),
                );
                self.refer(
                    now,
                    "authority_not_answering",
                    format!("The {authority} authority is not answering."),
                );
                return;
            }
        };
        if let Verdict::Refer { reason } = &verdict {
            let reason = format!("{authority} authority: {reason}");
            self.refer(now, "authority_refer", reason);
            return;
        }
        match authority {
            Authority::Macao => *macao = Some(verdict),
            Authority::Mainland => *mainland = Some(verdict),
        }
        let answered = |a: &Authority| match a {
            Authority::Macao => macao.is_some(),
            Authority::Mainland => mainland.is_some(),
        };
        if self.policy.authorities.iter().all(answered) {
            self.clear(now);
        }
    }

    fn on_gates(&mut self, now: DateTime<Utc>, states: [GateState; 3], occupancy: u32) {
        let was_locked = self.gate1_locked();
        self.gates = states;
        self.occupancy = occupancy;
        for (slot, state) in self.commanded.iter_mut().zip(states) {
            if slot.is_some_and(|(action, _)| reached(action, state)) {
                *slot = None;
            }
        }
        let locked = self.gate1_locked();
        if locked != was_locked && matches!(self.phase, Phase::Idle) {
            // Locked: the screen says the channel is closed; unlocked: ready again.
            self.back_to_idle();
        }
        if locked && matches!(self.phase, Phase::Gate1Open { entered: false, .. }) {
            self.on_gate_failed(
                now,
                GateId::One,
                GateAction::Open,
                "gate 1 is locked".into(),
            );
            return;
        }
        if occupancy > 1 && !matches!(self.phase, Phase::Officer { .. }) {
            self.alarm(
                AlarmKind::Tailgating,
                format!("{occupancy} persons between gate 1 and gate 2"),
            );
            self.hold(
                "tailgating",
                "One person at a time. Please wait for an officer.",
            );
            return;
        }
        if let Some(i) = states.iter().position(|s| *s == GateState::Fault)
            && !matches!(self.phase, Phase::Officer { .. })
        {
            self.alarm(
                AlarmKind::GateFault,
                format!("gate {} reports a fault", i + 1),
            );
            self.hold(
                "gate_fault",
                "This channel is out of service. Please wait for an officer.",
            );
            return;
        }
        match &mut self.phase {
            Phase::Gate1Open { entered, .. } if occupancy >= 1 && !*entered => {
                *entered = true;
                self.start_inspection(now);
            }
            Phase::Exit { .. } if occupancy == 0 && states[2] != GateState::Moving => {
                // The traveller has left the zone: close behind them.
                self.close_exit(now);
            }
            _ => {}
        }
    }

    /// A traveller presented at gate 1 while the controller reports it locked: no passage
    /// starts; the screen says the channel is closed and the console hears that travellers are
    /// being turned away (a lock left on by mistake shows).
    /// The controller's highest accepted fence, as it reports it. Every token this lane issues
    /// comes from its replica, so once the replica is fresh (it has applied what the leader had
    /// committed) no token of ours exceeds [`Procedure::fence`]: a higher one was written by
    /// something else on the gate network — the gates answer to it, not to the lane (a forged
    /// `u64::MAX` locks the lane out for good). Alarm once, start no passage, until the
    /// controller's fence is back within ours (a technician's reset at the cabinet).
    fn on_controller_fence(&mut self, fence: Fence) {
        match self.foreign_fence {
            None if !self.stale && fence > self.fence => {
                self.foreign_fence = Some(fence);
                self.alarm(
                    AlarmKind::ForeignFence,
                    format!(
                        "the gate controller accepted fence {fence}, above any this lane issued \
                         ({}): something else commands the gates; no passage starts until a \
                         technician resets the controller's fence",
                        self.fence
                    ),
                );
                if matches!(self.phase, Phase::Idle) {
                    self.back_to_idle();
                }
            }
            Some(_) if fence <= self.fence => {
                self.foreign_fence = None;
                if matches!(self.phase, Phase::Idle) {
                    self.back_to_idle();
                }
            }
            Some(_) => self.foreign_fence = Some(fence),
            None => {}
        }
    }

    /// The records of the input just handled were not stored, so its gate openings were not
    /// sent: those gates are not expected to open. A traveller being served goes to an officer;
    /// nobody else starts a passage until the outbox stores records again.
    fn on_records_unwritable(&mut self, now: DateTime<Utc>, withheld: &[GateId]) {
        for gate in withheld {
            let i = usize::from(gate.number() - 1);
            if matches!(self.commanded[i], Some((GateAction::Open, _))) {
                self.commanded[i] = None;
            }
        }
        if !self.records_down {
            self.records_down = true;
            self.alarm(
                AlarmKind::RecordsUnwritable,
                "the outbox cannot store records for the authorities: no passage starts until \
                 it can (free the disk; the lane retries by itself)"
                    .into(),
            );
        }
        match self.phase {
            Phase::Idle => self.back_to_idle(),
            Phase::Refused { .. } | Phase::Officer { .. } => {}
            // A passage whose records were stored ends as it should: the traveller walks out.
            Phase::Exit { .. } if withheld.is_empty() => {}
            _ => self.refer(
                now,
                "records_unwritable",
                "the passage could not be recorded".into(),
            ),
        }
    }

    fn turn_away_foreign_fence(&mut self, now: DateTime<Utc>, method: ClearanceMethod) {
        self.screen(GateId::One, "lane_closed", CLOSED_TEXT);
        self.decide(now, Outcome::Refused, "foreign_fence", Some(method));
        self.phase = Phase::Refused {
            until: now + self.config.refusal_display,
        };
    }

    fn turn_away_at_locked_gate(&mut self, now: DateTime<Utc>, method: ClearanceMethod) {
        self.screen(GateId::One, "gate1_locked", CLOSED_TEXT);
        self.alarm(
            AlarmKind::Gate1Locked,
            "a traveller was turned away: gate 1 is locked".into(),
        );
        self.decide(now, Outcome::Refused, "gate1_locked", Some(method));
        self.phase = Phase::Refused {
            until: now + self.config.refusal_display,
        };
    }

    /// A gate did not do what it was told: the controller refused the command, or the gate did
    /// not report the commanded state within [`ProcedureConfig::gate_confirm_timeout`]. A
    /// traveller still outside gate 1 is turned away (refused when gate 1 is locked, a
    /// supervisor's decision; otherwise the channel is held for an officer, as nobody knows the
    /// gate's state); a traveller inside is held for an officer with every other gate closed; a
    /// gate that does not close holds an empty channel. Always an alarm reaches the console.
    fn on_gate_failed(
        &mut self,
        now: DateTime<Utc>,
        gate: GateId,
        action: GateAction,
        why: String,
    ) {
        let i = usize::from(gate.number() - 1);
        if self.commanded[i].is_some_and(|(a, _)| a == action) {
            self.commanded[i] = None;
        }
        self.alarm(
            AlarmKind::GateFailed,
            format!("{gate}: {} not carried out ({why})", action.as_str()),
        );
        match &self.phase {
            Phase::Gate1Open {
                traveller,
                entered: false,
                ..
            } if gate == GateId::One && action == GateAction::Open => {
                let method = traveller.method;
                if self.gate1_locked() {
                    self.decide(now, Outcome::Refused, "gate1_locked", Some(method));
                    self.screen(GateId::One, "gate1_locked", CLOSED_TEXT);
                    self.phase = Phase::Refused {
                        until: now + self.config.refusal_display,
                    };
                } else {
                    self.refer(
                        now,
                        "gate_failed",
                        format!("{gate} did not open. This channel cannot be used."),
                    );
                }
            }
            Phase::Gate1Open { .. } | Phase::Inspection { .. } | Phase::Exit { .. } => {
                self.refer(now, "gate_failed", format!("{gate} did not respond."));
            }
            // Nobody is in the channel, but a gate that does not close lets the next traveller
            // (or two) through: the channel is out of service until an officer releases it.
            Phase::Idle
            | Phase::Refused { .. }
            | Phase::Checking { .. }
            | Phase::Declaration { .. }
            | Phase::Consenting { .. }
            | Phase::Registering { .. }
                if matches!(action, GateAction::Close | GateAction::Lock) =>
            {
                self.hold(
                    "gate_failed",
                    "This channel is out of service. Please wait for an officer.",
                );
            }
            // An officer already holds the channel, or an opening nobody waits for failed: the
            // alarm is all.
            _ => {}
        }
    }

    fn on_replica(&mut self, fence: Fence, staleness: Option<Duration>) {
        if fence > self.fence {
            self.fence = fence;
        }
        let stale = staleness.is_none_or(|s| s > self.config.max_staleness);
        if stale && !self.stale {
            self.alarm(
                AlarmKind::ReplicaStale,
                "face scan suspended: the gallery replica has lost the cluster".into(),
            );
            self.screen(
                GateId::One,
                "card_only",
                "Face scan is not available. Please use card scan.",
            );
        }
        self.stale = stale;
    }

    fn on_override(&mut self, now: DateTime<Utc>, action: OverrideAction, fence: Fence) {
        if fence < self.fence {
            self.alarm(
                AlarmKind::GateFault,
                format!(
                    "override refused: its fencing token {fence} is older than {}",
                    self.fence
                ),
            );
            return;
        }
        self.fence = fence;
        match action {
            OverrideAction::Gate { gate, action } => {
                self.gate(gate, action);
            }
            OverrideAction::Mode { mode } => {
                self.mode = mode;
                if mode == LaneMode::Closed {
                    self.screen(GateId::One, "lane_closed", CLOSED_TEXT);
                }
            }
            OverrideAction::SendToOfficer => self.refer(
                now,
                "supervisor",
                "A supervisor sent the traveller to an officer.".into(),
            ),
            OverrideAction::Release => {
                if matches!(self.phase, Phase::Officer { .. }) {
                    self.back_to_idle();
                }
            }
        }
    }

    // --- transitions ------------------------------------------------------------------------

    fn check_deadlines(&mut self, now: DateTime<Utc>) {
        match &self.phase {
            Phase::Refused { until } if now >= *until => self.back_to_idle(),
            Phase::Checking {
                until,
                offer,
                answers,
                ..
            } if now >= *until => {
                let silent = silent(answers);
                let document = offer.document.clone();
                self.registration_unavailable(now, &document, &format!("no answer from {silent}"));
            }
            Phase::Declaration { until, offer, .. } if now >= *until => {
                let document = offer.document.clone();
                self.admit_by_card(now, &document, None, WELCOME);
            }
            Phase::Consenting { until, acks, .. } if now >= *until => {
                let why = format!("no acknowledgement from {}", silent(acks));
                self.consent_failed(now, &why);
            }
            Phase::Registering { until, document } if now >= *until => {
                // The write may still commit: its answer is reconciled when it comes
                // (`writing`); a late failure withdraws the consent.
                let document = (**document).clone();
                self.admit_by_card(
                    now,
                    &document,
                    None,
                    (
                        "registration_pending",
                        "Your registration is still being recorded. Please proceed to gate 2 \
                         (card scan).",
                    ),
                );
            }
            Phase::Gate1Open { until, .. } if now >= *until => {
                // Nobody stepped in: close and start over.
                self.gate(GateId::One, GateAction::Close);
                self.back_to_idle();
            }
            Phase::Inspection { until, step, .. } if now >= *until => {
                if let Inspection::Verdicts {
                    macao, mainland, ..
                } = step
                {
                    let silent: Vec<&str> =
                        [(Authority::Macao, macao), (Authority::Mainland, mainland)]
                            .into_iter()
                            .filter(|(a, v)| v.is_none() && self.policy.authorities.contains(a))
                            .map(|(a, _)| a.as_str())
                            .collect();
                    let detail = format!("no answer from {}", silent.join(" and "));
                    self.alarm(AlarmKind::AuthorityNotAnswering, detail.clone());
                    self.refer(now, "authority_not_answering", detail);
                } else {
                    self.refer(
                        now,
                        "biometrics_timeout",
                        "Face or fingerprint not captured in time.".into(),
                    );
                }
            }
            Phase::Exit { until, .. } if now >= *until => self.close_exit(now),
            _ => {}
        }
    }

    /// Opens gate 1 for `traveller`; the screen says `say` (code, words) — [`WELCOME`], or the
    /// outcome of a registration, which must stay readable while the traveller walks in.
    fn open_gate1(
        &mut self,
        now: DateTime<Utc>,
        traveller: Traveller,
        reason: &'static str,
        say: (&'static str, &str),
    ) {
        let method = traveller.method;
        self.gate(GateId::One, GateAction::Open);
        self.screen(GateId::One, say.0, say.1);
        self.decide(now, Outcome::Admitted, reason, Some(method));
        self.phase = Phase::Gate1Open {
            traveller,
            until: now + self.config.enter_timeout,
            entered: false,
        };
        if self.occupancy >= 1 {
            // Already inside (the sensors reported before the phase changed).
            if let Phase::Gate1Open { entered, .. } = &mut self.phase {
                *entered = true;
            }
            self.start_inspection(now);
        }
    }

    fn admit_by_card(
        &mut self,
        now: DateTime<Utc>,
        document: &DocumentRead,
        person: Option<PersonId>,
        say: (&'static str, &str),
    ) {
        let traveller = Traveller {
            method: ClearanceMethod::Card,
            document: document.key(),
            person,
        };
        self.open_gate1(now, traveller, "card_valid", say);
    }

    fn start_inspection(&mut self, now: DateTime<Utc>) {
        let Phase::Gate1Open { traveller, .. } = &self.phase else {
            return;
        };
        let traveller = traveller.clone();
        self.gate(GateId::One, GateAction::Close);
        self.screen(
            GateId::Two,
            "biometrics",
            "Please look at the camera and place your finger on the reader.",
        );
        self.phase = Phase::Inspection {
            traveller,
            step: Inspection::Biometrics {
                face_score: None,
                fingerprint: None,
                attempts: 0,
                capturing: true,
            },
            until: now + self.config.biometrics_timeout,
        };
        self.outputs.push_back(Output::CaptureFingerprint);
    }

    fn maybe_inspect(&mut self, now: DateTime<Utc>) {
        let Phase::Inspection {
            traveller,
            step:
                Inspection::Biometrics {
                    face_score: Some(score),
                    fingerprint: Some(fingerprint),
                    ..
                },
            ..
        } = &self.phase
        else {
            return;
        };
        self.passages += 1;
        let key = format!(
            "{}/{}/{}",
            self.config.channel,
            now.timestamp_millis(),
            self.passages
        );
        let request = InspectionRequest {
            key: key.clone(),
            channel: self.config.channel.clone(),
            document: traveller.document.clone(),
            method: traveller.method,
            face_score: *score,
            fingerprint: fingerprint.clone(),
            at: now,
        };
        let traveller = traveller.clone();
        self.phase = Phase::Inspection {
            traveller,
            step: Inspection::Verdicts {
                key,
                macao: None,
                mainland: None,
            },
            until: now + self.config.inspection_timeout,
        };
        self.screen(
            GateId::Two,
            "inspecting",
            "Inspection in progress, please wait.",
        );
        self.outputs.push_back(Output::Inspect(Box::new(request)));
    }

    fn clear(&mut self, now: DateTime<Utc>) {
        let Phase::Inspection { traveller, .. } = &self.phase else {
            return;
        };
        let traveller = traveller.clone();
        self.gate(GateId::Two, GateAction::Open);
        self.gate(GateId::Three, GateAction::Open);
        self.screen(GateId::Two, "cleared", "Cleared. Have a good journey.");
        let reason = if self.policy.authorities.len() > 1 {
            "both_cleared"
        } else {
            "cleared"
        };
        self.decide(now, Outcome::Cleared, reason, Some(traveller.method));
        for authority in self.policy.authorities.clone() {
            self.deliver(
                authority,
                AuthorityRecord::Clearance {
                    document: traveller.document.clone(),
                    method: traveller.method,
                    cleared_at: now,
                    channel: self.config.channel.clone(),
                    direction: self.config.direction.clone(),
                },
            );
        }
        self.phase = Phase::Exit {
            traveller,
            until: now + self.config.exit_timeout,
        };
    }

    fn close_exit(&mut self, _now: DateTime<Utc>) {
        self.gate(GateId::Two, GateAction::Close);
        self.gate(GateId::Three, GateAction::Close);
        self.back_to_idle();
    }

    fn refuse(
        &mut self,
        now: DateTime<Utc>,
        code: &'static str,
        method: ClearanceMethod,
        text: String,
    ) {
        self.screen(GateId::One, code, text.clone());
        self.outputs
            .push_back(Output::Referral { code, reason: text });
        self.decide(now, Outcome::Refused, code, Some(method));
        self.phase = Phase::Refused {
            until: now + self.config.refusal_display,
        };
    }

    /// Sends the traveller inside the channel to an officer: gates closed, the channel held.
    fn refer(&mut self, now: DateTime<Utc>, code: &'static str, reason: String) {
        let method = match &self.phase {
            Phase::Gate1Open { traveller, .. }
            | Phase::Inspection { traveller, .. }
            | Phase::Exit { traveller, .. } => Some(traveller.method),
            _ => None,
        };
        self.decide(now, Outcome::Referred, code, method);
        self.outputs.push_back(Output::Referral {
            code,
            reason: reason.clone(),
        });
        self.hold(code, &format!("Please wait for an officer: {reason}"));
    }

    /// Closes every gate and holds the channel until an officer releases it.
    fn hold(&mut self, code: &'static str, text: &str) {
        // A consent still out (after Agree, before every acknowledgement) will never complete
        // a registration now: withdrawn, as when it times out.
        if let Phase::Consenting { offer, key, .. } = &self.phase {
            let (document, key) = (offer.document.key(), key.clone());
            self.withdraw(self.now, &document, &key, &format!("channel held ({code})"));
        }
        for gate in GateId::ALL {
            if self.gates[usize::from(gate.number() - 1)] != GateState::Locked {
                self.gate(gate, GateAction::Close);
            }
        }
        self.screen(GateId::One, code, text);
        self.screen(GateId::Two, code, text);
        self.phase = Phase::Officer { code };
    }

    fn back_to_idle(&mut self) {
        self.multi_face_run = 0;
        self.phase = Phase::Idle;
        if self.foreign_fence.is_some() {
            self.screen(GateId::One, "lane_closed", CLOSED_TEXT);
            return;
        }
        if self.gate1_locked() && self.mode != LaneMode::Closed {
            self.screen(GateId::One, "gate1_locked", CLOSED_TEXT);
            return;
        }
        if self.records_down && self.mode != LaneMode::Closed {
            self.screen(GateId::One, "records_unwritable", UNRECORDED_TEXT);
            return;
        }
        let text = match (self.mode, self.face_scan_enabled()) {
            (LaneMode::Closed, _) => CLOSED_TEXT,
            (_, true) => "Please look at the camera, or present your travel document.",
            (_, false) => "Please present your travel document.",
        };
        self.screen(GateId::One, "ready", text);
    }

    // --- outputs ----------------------------------------------------------------------------

    fn gate(&mut self, gate: GateId, action: GateAction) {
        let i = usize::from(gate.number() - 1);
        self.commanded[i] = if reached(action, self.gates[i]) {
            None
        } else {
            Some((action, self.now + self.config.gate_confirm_timeout))
        };
        self.outputs.push_back(Output::Gate(GateCommand {
            gate,
            action,
            fence: self.fence,
        }));
    }

    fn screen(&mut self, gate: GateId, code: &'static str, text: impl Into<String>) {
        let text = text.into();
        let slot = &mut self.shown[usize::from(gate != GateId::One)];
        if slot.as_ref().is_some_and(|(c, t)| *c == code && *t == text) {
            return;
        }
        *slot = Some((code, text.clone()));
        self.outputs
            .push_back(Output::Screen(Screen { gate, code, text }));
    }

    fn alarm(&mut self, kind: AlarmKind, detail: String) {
        self.outputs.push_back(Output::Alarm { kind, detail });
    }

    fn deliver(&mut self, authority: Authority, record: AuthorityRecord) {
        self.outputs
            .push_back(Output::Deliver(Box::new(Delivery { authority, record })));
    }

    fn decide(
        &mut self,
        now: DateTime<Utc>,
        outcome: Outcome,
        reason: &'static str,
        method: Option<ClearanceMethod>,
    ) {
        self.outputs.push_back(Output::Decision(Decision {
            outcome,
            reason,
            method,
            at: now,
        }));
    }
}

/// Which authorities of `answers` have not answered, in words (`macao and mainland`).
fn silent<T>(answers: &Answers<T>) -> String {
    Authority::ALL
        .into_iter()
        .filter(|a| answers[slot(*a)].is_none())
        .map(Authority::as_str)
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The idempotency key of a registration consent: the same for both authorities and every
/// retry, naming no personal data (a hash of the channel, the document and the time of Agree).
pub fn consent_key(channel: &str, document: &DocumentKey, at: DateTime<Utc>) -> String {
    let mut h = Sha256::new();
    for part in [
        channel,
        document.kind.as_str(),
        &document.number,
        &at.timestamp_millis().to_string(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("consent-{}", &hex::encode(h.finalize())[..32])
}

/// The gate-1 screen code saying why a traveller is not offered the registration (the kiosk
/// shows the reason and that the card passage continues).
pub fn not_offered_code(why: Ineligible) -> &'static str {
    use clearway_gallery::Authority::{Macao, Mainland};
    match why {
        Ineligible::Cancelled => "not_offered:cancelled",
        Ineligible::UnderAge => "not_offered:under_age",
        Ineligible::DocumentNotAccepted => "not_offered:document_not_accepted",
        Ineligible::DocumentNotYetValid => "not_offered:document_not_yet_valid",
        Ineligible::DocumentExpired => "not_offered:document_expired",
        Ineligible::DocumentNotFiveYear => "not_offered:document_not_five_year",
        Ineligible::EndorsementMissing => "not_offered:endorsement_missing",
        Ineligible::EndorsementNotMultipleEntry => "not_offered:endorsement_not_multiple_entry",
        Ineligible::EndorsementNotYetValid => "not_offered:endorsement_not_yet_valid",
        Ineligible::EndorsementExpired => "not_offered:endorsement_expired",
        Ineligible::NotRegistered(Macao) => "not_offered:not_registered_macao",
        Ineligible::NotRegistered(Mainland) => "not_offered:not_registered_mainland",
        Ineligible::FingerprintAuthorisationMissing => {
            "not_offered:fingerprint_authorisation_missing"
        }
        Ineligible::GuardianConsentMissing => "not_offered:guardian_consent_missing",
        Ineligible::ConsentMissing(Macao) => "not_offered:consent_missing_macao",
        Ineligible::ConsentMissing(Mainland) => "not_offered:consent_missing_mainland",
        _ => "not_offered",
    }
}
