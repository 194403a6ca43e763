//! The registry: the port's gallery as a deterministic state machine.
//!
//! Every lane node of a port holds the same [`Registry`], built by applying the same [`Command`]s in
//! the same order (the node replicates them with Raft). [`Registry::apply`] is a pure function of the
//! registry and the command: no clock, no randomness, no IO. It assigns person ids from a counter, so
//! every replica gives a person the same id, and it reports what changed ([`Change`]) so the node can
//! persist exactly those records.
//!
//! Commands travel inside a versioned [`Request`] envelope; a node refuses a version it does not
//! know instead of guessing. Records are `serde` types written with `postcard` by the node.
//!
//! The registry also owns the 1:N [`Gallery`] index of the active persons' templates for its model;
//! lanes search it through the node's read handle.
//!
//! Where the entries live is the caller's choice. [`Registry::new`] keeps them in memory (tests,
//! tools). [`Registry::with_store`] keeps in memory only what the storage layer has not written
//! yet and reads the rest from an [`EntryStore`] (the node's sealed store): a lane node then holds
//! its persons' records on disk, not in memory (issue 17 §2). Either way the 1:N index and the
//! document index stay in memory, so a search and a document lookup never wait on storage; an
//! entry is read after a hit.

mod documents;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    Authority, Category, ConsentKind, ConsentRecord, DocumentKind, Endorsement, Error, Gallery,
    GuardianConsent, ModelId, Person, PersonId, PersonStatus, Registration, Registrations, Result,
    Template, TravelDocument,
};

/// Which cancellation a [`CancellationNotice`] is about: the log entry that cancelled and the
/// person it erased (unique in the port's log: a person is cancelled once).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NoticeId {
    /// The Raft log index of the cancelling entry.
    pub index: u64,
    /// The person it erased.
    pub person: PersonId,
}

/// A cancellation the port's authorities must hear of (seed 000: the registration consent was
/// recorded with both authorities, so is its cancellation). [`Command::Cancel`] erases the
/// person and leaves this notice; it is replicated like any record, sealed at rest, carried in
/// snapshots, and removed when a lane has delivered it to every authority of the port
/// ([`Command::NoticeDelivered`]). The document is the only thing of the person kept after the
/// erasure, and only until then: the authorities need it to find their own record.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct CancellationNotice {
    /// The registration's document kind.
    pub kind: DocumentKind,
    /// The registration's document number.
    pub number: String,
    /// When the cancellation was made, as the console's audited change says (`None` for an
    /// unaudited cancellation: the lane reports the time it delivers).
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// Most templates one person may hold (a few captures, renewed over the years).
pub const MAX_TEMPLATES_PER_PERSON: usize = 8;

/// A person record as submitted for enrolment: everything but the id and status, which the
/// registry assigns.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    /// Name as on the document.
    pub name: String,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Which residents' rules apply.
    pub category: Category,
    /// The travel document.
    pub document: TravelDocument,
    /// Exit-entry endorsement (Mainland residents only).
    #[serde(default)]
    pub endorsement: Option<Endorsement>,
    /// Registrations with each authority.
    #[serde(default)]
    pub registrations: Registrations,
    /// Consents given.
    #[serde(default)]
    pub consents: Vec<ConsentRecord>,
    /// Guardian's consent (minors).
    #[serde(default)]
    pub guardian_consent: Option<GuardianConsent>,
}

impl NewPerson {
    /// The full record this submission becomes under `id`.
    pub fn into_person(self, id: PersonId) -> Person {
        Person {
            id,
            name: self.name,
            date_of_birth: self.date_of_birth,
            category: self.category,
            document: self.document,
            endorsement: self.endorsement,
            registrations: self.registrations,
            consents: self.consents,
            guardian_consent: self.guardian_consent,
            status: PersonStatus::Active,
        }
    }
}

/// One change to the registry. Applied in log order on every replica.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub enum Command {
    /// Enrol a person with their first templates. Enrolling a travel document that is already
    /// registered changes nothing and answers with the existing id, so a retried enrolment is safe.
    /// A person with a guardian's consent (a minor approved at a service location) may be
    /// enrolled without templates; the channel adds them when the minor registers.
    Enrol {
        /// The person's record.
        person: NewPerson,
        /// Face templates (at most [`MAX_TEMPLATES_PER_PERSON`]).
        templates: Vec<Template>,
    },
    /// Add one template to a registered person.
    AddTemplate {
        /// Whose.
        person: PersonId,
        /// The template.
        template: Template,
    },
    /// Replace all of a person's templates (re-capture).
    ReplaceTemplates {
        /// Whose.
        person: PersonId,
        /// The new templates (1 to [`MAX_TEMPLATES_PER_PERSON`]).
        templates: Vec<Template>,
    },
    /// Record a registration with one authority.
    Register {
        /// Who.
        person: PersonId,
        /// With which authority.
        authority: Authority,
        /// When and where.
        registration: Registration,
    },
    /// Record a consent given to one authority.
    RecordConsent {
        /// Who.
        person: PersonId,
        /// The consent.
        consent: ConsentRecord,
    },
    /// Record a guardian's consent for a minor (made at a service location).
    RecordGuardianConsent {
        /// The minor.
        person: PersonId,
        /// The guardian's consent.
        consent: GuardianConsent,
    },
    /// Cancel a registration: the person's record and templates are erased.
    Cancel {
        /// Who.
        person: PersonId,
    },
    /// Keep a person's document data true: the card read at a channel carries a new validity
    /// or endorsement (the same number), or a renewed permit with a new number (the same kind)
    /// that the channel linked to this person by their face. The old number is released; a
    /// number another person holds is refused (`document_in_use`).
    UpdateDocument {
        /// Who.
        person: PersonId,
        /// The document as read.
        document: TravelDocument,
        /// The endorsement as read (Mainland residents).
        endorsement: Option<Endorsement>,
    },
    /// The prerequisites as the authorities last confirmed them to a lane: the registrations
    /// with their automated clearance services (replacing those on record; a withdrawn one is
    /// removed) and the fingerprint-read authorisation (replacing any on record; `None`
    /// removes it).
    ConfirmPrerequisites {
        /// Who.
        person: PersonId,
        /// The registrations each authority confirmed.
        registrations: Registrations,
        /// The fingerprint-read authorisation the Macao authority confirmed.
        fingerprint_read: Option<ConsentRecord>,
    },
    /// A lane delivered this cancellation notice to every authority of the port: it is
    /// removed. Idempotent (another lane may have reported it first).
    NoticeDelivered {
        /// Which notice.
        notice: NoticeId,
    },
}

impl Command {
    /// The command's name, for logs and bounded metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Enrol { .. } => "enrol",
            Command::AddTemplate { .. } => "add_template",
            Command::ReplaceTemplates { .. } => "replace_templates",
            Command::Register { .. } => "register",
            Command::RecordConsent { .. } => "record_consent",
            Command::RecordGuardianConsent { .. } => "record_guardian_consent",
            Command::Cancel { .. } => "cancel",
            Command::UpdateDocument { .. } => "update_document",
            Command::ConfirmPrerequisites { .. } => "confirm_prerequisites",
            Command::NoticeDelivered { .. } => "notice_delivered",
        }
    }
}

/// The versioned envelope a batch of commands travels in (one Raft log entry).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub enum Request {
    /// Version 1: a batch of commands, applied in order; each gets its own [`Outcome`].
    V1(Vec<Command>),
    /// Version 2: a console change — gallery commands and operations (orders to lanes, modes,
    /// alarm acknowledgements) with exactly one audit record; see [`crate::ops`].
    V2(Vec<crate::ops::Op>),
}

/// What one command did.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum Outcome {
    /// A new person was enrolled under this id.
    Enrolled(PersonId),
    /// The travel document was already registered, to this person; nothing changed.
    AlreadyEnrolled(PersonId),
    /// The person's record or templates were updated.
    Updated(PersonId),
    /// The person was cancelled and erased.
    Cancelled(PersonId),
    /// An audit record was appended at this position with this hash.
    Audited {
        /// Its position in the trail.
        seq: u64,
        /// Its hash (hex SHA-256).
        hash: String,
    },
    /// An order, mode change or alarm acknowledgement was recorded, or a cancellation notice
    /// delivered.
    Ordered,
    /// The command was refused; nothing changed.
    Refused {
        /// A stable code (`unknown_person`, `too_many_templates`, a gallery error code, …).
        code: String,
        /// Why, in words.
        reason: String,
    },
}

impl Outcome {
    fn refused(code: &str, reason: impl Into<String>) -> Outcome {
        Outcome::Refused {
            code: code.to_string(),
            reason: reason.into(),
        }
    }

    fn from_error(e: &Error) -> Outcome {
        Outcome::refused(e.code(), e.to_string())
    }

    /// The person the outcome is about, if any.
    pub fn person(&self) -> Option<PersonId> {
        match self {
            Outcome::Enrolled(p)
            | Outcome::AlreadyEnrolled(p)
            | Outcome::Updated(p)
            | Outcome::Cancelled(p) => Some(*p),
            Outcome::Audited { .. } | Outcome::Ordered | Outcome::Refused { .. } => None,
        }
    }
}

/// A record the storage layer must write or erase after [`Registry::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The person's entry (record and templates) was created or changed.
    Put(PersonId),
    /// The person was cancelled: erase everything stored about them.
    Erase(PersonId),
    /// A cancellation notice was left or removed: write it or erase it.
    Notice(NoticeId),
}

/// One registered person: their record and face templates.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Entry {
    /// The person's record.
    pub person: Person,
    /// Their face templates, oldest first.
    pub templates: Vec<Template>,
}

/// The registry's whole logical content, in a stable order: what snapshots carry and what replica
/// digests are computed over.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RegistryImage {
    /// The next id to assign.
    pub next_id: u64,
    /// Every registered person, by id.
    pub entries: Vec<Entry>,
    /// The cancellation notices not yet delivered to every authority, by id.
    pub notices: Vec<(NoticeId, CancellationNotice)>,
}

/// [`RegistryImage`] read from a live registry: serialises with `postcard` to the same bytes,
/// streaming each entry's stored bytes unchanged (never the whole image in memory). A store that
/// fails while it is serialised fails the serialisation.
pub struct RegistryImageRef<'a>(&'a Registry);

impl std::fmt::Debug for RegistryImageRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryImageRef({} persons)", self.0.len())
    }
}

impl Serialize for RegistryImageRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq, SerializeStruct};
        /// The entries as a sequence of their stored bytes.
        struct Entries<'a>(&'a Registry);
        impl Serialize for Entries<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                let mut n = 0;
                for item in self.0.encoded_entries() {
                    let (_, bytes) = item.map_err(S::Error::custom)?;
                    seq.serialize_element(&Encoded(bytes.as_ref()))?;
                    n += 1;
                }
                if n != self.0.len() {
                    return Err(S::Error::custom(format!(
                        "the entry store holds {n} persons, the registry counts {}",
                        self.0.len()
                    )));
                }
                seq.end()
            }
        }
        let r = self.0;
        let mut st = s.serialize_struct("RegistryImage", 3)?;
        st.serialize_field("next_id", &r.next_id)?;
        st.serialize_field("entries", &Entries(r))?;
        let notices: Vec<_> = r.notices.iter().collect();
        st.serialize_field("notices", &notices)?;
        st.end()
    }
}

/// A store-backed registry's counts and document keys, at the head of a replica checkpoint
/// ([`Registry::checkpoint`]).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct CheckpointHeader {
    /// The next id to assign.
    pub next_id: u64,
    /// Registered persons.
    pub persons: u64,
    /// Templates held, all models.
    pub templates: u64,
    /// The highest id restored from the store.
    pub restored_up_to: u64,
    /// Rows of the 1:N index that follow.
    pub rows: u64,
    /// Document index pairs that follow.
    pub documents: u64,
    /// The document index's SipHash keys.
    pub document_keys: (u64, u64),
}

/// One person's [`Entry`] as the registry keeps it: its `postcard` encoding. A live `Entry` is a
/// dozen small allocations (strings, the templates and their model names); encoded it is one, and
/// about half the memory (issue 17 §2). Decoded when read; the 1:N index holds the templates
/// apart, ready to scan.
struct Encoded<'a>(&'a [u8]);

impl Serialize for Encoded<'_> {
    /// As the entry itself would be in `postcard`: its bytes, unprefixed (a tuple of bytes, each
    /// of which `postcard` writes as itself).
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0.len())?;
        for b in self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

/// Bytes an entry store read for the registry; zeroed when dropped (they hold a record and
/// templates).
pub type StoredBytes = zeroize::Zeroizing<Vec<u8>>;

/// Where a store-backed registry ([`Registry::with_store`]) reads the entries it does not hold:
/// the storage layer's persons, as it last wrote them. The registry never writes through it; the
/// storage layer writes what [`Registry::unwritten`] names, then calls [`Registry::written`].
pub trait EntryStore: Send + Sync {
    /// The `postcard` bytes of a person's [`Entry`], if stored.
    fn read(&self, id: PersonId) -> Result<Option<StoredBytes>>;
    /// Every stored entry, in increasing id order.
    fn scan(&self) -> Box<dyn Iterator<Item = Result<(PersonId, StoredBytes)>> + '_>;
}

/// An entry as [`Registry::encoded_entries`] yields it: held by the registry, or read from its
/// store.
pub enum EncodedEntry<'a> {
    /// Bytes the registry holds (not written to the store yet, or an in-memory registry).
    Held(&'a [u8]),
    /// Bytes read from the store.
    Read(StoredBytes),
}

impl AsRef<[u8]> for EncodedEntry<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            EncodedEntry::Held(b) => b,
            EncodedEntry::Read(b) => b,
        }
    }
}

/// The registry's entries in id order: the store's, with what the registry holds unwritten
/// taking their place (an erasure, `None`, hides the stored one).
struct Merged<'a> {
    stored: std::iter::Peekable<Box<dyn Iterator<Item = Result<(PersonId, StoredBytes)>> + 'a>>,
    held: std::iter::Peekable<std::collections::btree_map::Iter<'a, PersonId, Option<Box<[u8]>>>>,
}

impl<'a> Iterator for Merged<'a> {
    type Item = Result<(PersonId, EncodedEntry<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let stored = match self.stored.peek() {
                Some(Ok((id, _))) => Some(*id),
                // A store that fails ends the iteration with its error.
                Some(Err(_)) => {
                    return self
                        .stored
                        .next()
                        .filter(Result::is_err)
                        .map(|r| r.map(|(id, b)| (id, EncodedEntry::Read(b))));
                }
                None => None,
            };
            let held = self.held.peek().map(|(id, _)| **id);
            let from_store = match (stored, held) {
                (None, None) => return None,
                (Some(s), Some(h)) => s < h,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if from_store {
                return self
                    .stored
                    .next()
                    .map(|r| r.map(|(id, b)| (id, EncodedEntry::Read(b))));
            }
            if stored == held {
                // What the registry holds replaces what the store has.
                self.stored.next();
            }
            if let Some((id, Some(bytes))) = self.held.next() {
                return Some(Ok((*id, EncodedEntry::Held(bytes))));
            }
            // Erased and not written yet: skipped.
        }
    }
}

fn encode(entry: &Entry) -> Box<[u8]> {
    // Encoding an in-memory entry into a vector cannot fail (no I/O, no unsupported types).
    postcard::to_stdvec(entry)
        .unwrap_or_default()
        .into_boxed_slice()
}

fn decode(id: PersonId, bytes: &[u8]) -> Result<Entry> {
    postcard::from_bytes(bytes).map_err(|e| Error::Storage {
        reason: format!("the stored entry of {id} does not decode: {e}"),
    })
}

/// The port's gallery state: registered persons, their templates, and the 1:N index.
pub struct Registry {
    /// Entries not written to the store yet, encoded ([`Encoded`]); `None`: erased, not written
    /// yet. Without a store, every entry (and no erasure: an erased entry is removed).
    held: BTreeMap<PersonId, Option<Box<[u8]>>>,
    /// Where the written entries are ([`Registry::with_store`]); `None`: all are in `held`.
    store: Option<Box<dyn EntryStore>>,
    /// Registered persons.
    persons: usize,
    /// Templates held, all models (the sum over the entries).
    templates: usize,
    /// Who holds which travel document ([`documents::Documents`]).
    documents: documents::Documents,
    next_id: u64,
    /// The highest id restored so far: a store-backed registry restores in increasing id order,
    /// so only an id at or below it can be held already.
    restored_up_to: u64,
    index: Gallery,
    notices: BTreeMap<NoticeId, CancellationNotice>,
    /// The log entry being applied (index, audited time), for the notices it leaves.
    batch: (u64, Option<DateTime<Utc>>),
    /// The store failed during [`Registry::apply`]; every command is refused until the storage
    /// layer takes it ([`Registry::take_fault`]) and stops.
    fault: Option<Error>,
}

impl Registry {
    /// An empty registry, holding its entries in memory, whose 1:N index holds templates of
    /// `model` with `dim` dimensions.
    pub fn new(model: ModelId, dim: usize) -> Result<Registry> {
        Ok(Registry {
            held: BTreeMap::new(),
            store: None,
            persons: 0,
            templates: 0,
            documents: documents::Documents::new(),
            next_id: 1,
            restored_up_to: 0,
            index: Gallery::new(model, dim)?,
            notices: BTreeMap::new(),
            batch: (0, None),
            fault: None,
        })
    }

    /// An empty registry that reads its written entries from `store` and holds in memory only
    /// what the storage layer has not written yet ([`Registry::unwritten`]). Its entries are
    /// restored ([`Registry::restore`]) from what the store holds, in increasing id order.
    pub fn with_store(model: ModelId, dim: usize, store: Box<dyn EntryStore>) -> Result<Registry> {
        let mut r = Registry::new(model, dim)?;
        r.store = Some(store);
        Ok(r)
    }

    /// Number of registered persons.
    pub fn len(&self) -> usize {
        self.persons
    }

    /// Whether nobody is registered.
    pub fn is_empty(&self) -> bool {
        self.persons == 0
    }

    /// The next person id to be assigned.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// One person's entry (decoded: a copy), read from the store if not held.
    pub fn get(&self, id: PersonId) -> Result<Option<Entry>> {
        match self.held.get(&id) {
            Some(Some(bytes)) => decode(id, bytes).map(Some),
            Some(None) => Ok(None),
            None => match &self.store {
                Some(store) => store.read(id)?.map(|b| decode(id, &b)).transpose(),
                None => Ok(None),
            },
        }
    }

    /// Every entry, by id (decoded one at a time).
    pub fn entries(&self) -> impl Iterator<Item = Result<Entry>> + '_ {
        self.encoded_entries()
            .map(|r| r.and_then(|(id, b)| decode(id, b.as_ref())))
    }

    /// Every entry as stored, by id: the `postcard` bytes of each [`Entry`], read from the store
    /// one at a time where not held.
    pub fn encoded_entries(&self) -> impl Iterator<Item = Result<(PersonId, EncodedEntry<'_>)>> {
        let stored: Box<dyn Iterator<Item = Result<(PersonId, StoredBytes)>> + '_> =
            match &self.store {
                Some(store) => store.scan(),
                None => Box::new(std::iter::empty()),
            };
        Merged {
            stored: stored.peekable(),
            held: self.held.iter().peekable(),
        }
    }

    /// The changes to persons not written to the store yet, by id: `Some` the entry's bytes,
    /// `None` an erasure. The storage layer writes them, then calls [`Registry::written`].
    /// Always empty for a registry without a store.
    pub fn unwritten(&self) -> impl Iterator<Item = (PersonId, Option<&[u8]>)> + '_ {
        self.store
            .iter()
            .flat_map(|_| self.held.iter().map(|(id, b)| (*id, b.as_deref())))
    }

    /// One person's change not written to the store yet ([`Registry::unwritten`]).
    pub fn unwritten_entry(&self, id: PersonId) -> Option<Option<&[u8]>> {
        self.store.as_ref()?;
        self.held.get(&id).map(|b| b.as_deref())
    }

    /// The storage layer wrote everything [`Registry::unwritten`] named: the registry drops its
    /// copies (zeroed: they hold records and templates) and reads them from the store from now
    /// on. Does nothing for a registry without a store.
    pub fn written(&mut self) {
        if self.store.is_none() {
            return;
        }
        for (_, bytes) in std::mem::take(&mut self.held) {
            if let Some(mut b) = bytes {
                zeroize::Zeroize::zeroize(&mut b[..]);
            }
        }
    }

    /// The failure of the store met while applying commands, if any (taken: the storage layer
    /// stops applying; what the commands changed in memory is not written).
    pub fn take_fault(&mut self) -> Option<Error> {
        self.fault.take()
    }

    /// The person registered with this travel document, if any.
    pub fn find_document(&self, kind: DocumentKind, number: &str) -> Result<Option<PersonId>> {
        let mut failure = None;
        let found = self.documents.find(kind, number, |id| match self.get(id) {
            Ok(e) => e.is_some_and(|e| {
                e.person.document.kind == kind && e.person.document.number == number
            }),
            Err(e) => {
                failure = Some(e);
                false
            }
        });
        match (found, failure) {
            (Some(id), _) => Ok(Some(id)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// The cancellation notices not yet delivered to every authority of the port, oldest first.
    pub fn notices(&self) -> impl Iterator<Item = (&NoticeId, &CancellationNotice)> {
        self.notices.iter()
    }

    /// One cancellation notice.
    pub fn notice(&self, id: NoticeId) -> Option<&CancellationNotice> {
        self.notices.get(&id)
    }

    /// Restores a cancellation notice read back from storage (node start-up).
    pub fn restore_notice(&mut self, id: NoticeId, notice: CancellationNotice) {
        self.notices.insert(id, notice);
    }

    /// Says which log entry the next commands come from, and the time its audited change
    /// carries: a cancellation's notice is named and dated by them. The node calls it before
    /// applying each entry, so every replica names a notice alike.
    pub fn begin_batch(&mut self, index: u64, at: Option<DateTime<Utc>>) {
        self.batch = (index, at);
    }

    /// The 1:N index of active persons' templates of the registry's model.
    pub fn index(&self) -> &Gallery {
        &self.index
    }

    /// Splits the index's scans across `pool`'s threads ([`Gallery::set_scan_pool`]).
    pub fn set_scan_pool(&mut self, pool: Option<std::sync::Arc<crate::ScanPool>>) {
        self.index.set_scan_pool(pool);
    }

    /// Number of templates held, all models.
    pub fn template_count(&self) -> usize {
        self.templates
    }

    /// Applies one command; records in `changes` what the storage layer must persist.
    /// Deterministic: the same commands in the same order give the same registry everywhere.
    /// A store that fails refuses the command (code `storage`) and every later one, until the
    /// storage layer takes the failure ([`Registry::take_fault`]): it must not write this batch.
    pub fn apply(&mut self, command: Command, changes: &mut Vec<Change>) -> Outcome {
        if let Some(e) = &self.fault {
            return Outcome::from_error(e);
        }
        match self.try_apply(command, changes) {
            Ok(outcome) => outcome,
            Err(e) => {
                let outcome = Outcome::from_error(&e);
                self.fault = Some(e);
                outcome
            }
        }
    }

    /// [`Registry::apply`], with the store's failures as errors.
    fn try_apply(&mut self, command: Command, changes: &mut Vec<Change>) -> Result<Outcome> {
        Ok(match command {
            Command::Enrol { person, templates } => {
                let (kind, number) = (person.document.kind, person.document.number.clone());
                if let Some(existing) = self.find_document(kind, &number)? {
                    return Ok(Outcome::AlreadyEnrolled(existing));
                }
                // A minor approved at a service location is enrolled before any face is
                // captured: the guardian's consent stands in for the templates until the
                // minor completes the registration at a channel.
                let min = usize::from(person.guardian_consent.is_none());
                if let Err(o) = check_template_count(&templates, min) {
                    return Ok(o);
                }
                let id = PersonId(self.next_id);
                let person = person.into_person(id);
                if let Err(e) = person.validate() {
                    return Ok(Outcome::from_error(&e));
                }
                self.next_id += 1;
                self.documents.insert(kind, &number, id);
                self.persons += 1;
                self.put(Entry { person, templates }, 0);
                changes.push(Change::Put(id));
                Outcome::Enrolled(id)
            }
            Command::AddTemplate { person, template } => self.update(person, changes, |e| {
                if e.templates.len() >= MAX_TEMPLATES_PER_PERSON {
                    return Err(too_many_templates());
                }
                e.templates.push(template);
                Ok(())
            })?,
            Command::ReplaceTemplates { person, templates } => {
                if let Err(o) = check_template_count(&templates, 1) {
                    return Ok(o);
                }
                self.update(person, changes, |e| {
                    e.templates = templates;
                    Ok(())
                })?
            }
            Command::Register {
                person,
                authority,
                registration,
            } => self.update(person, changes, |e| {
                e.person.registrations.set(authority, registration);
                Ok(())
            })?,
            Command::RecordConsent { person, consent } => self.update(person, changes, |e| {
                if !e.person.consents.contains(&consent) {
                    e.person.consents.push(consent);
                }
                Ok(())
            })?,
            Command::RecordGuardianConsent { person, consent } => {
                self.update(person, changes, |e| {
                    e.person.guardian_consent = Some(consent);
                    Ok(())
                })?
            }
            Command::Cancel { person } => match self.take(person)? {
                Some(entry) => {
                    self.documents.remove(
                        entry.person.document.kind,
                        &entry.person.document.number,
                        person,
                    );
                    // Zeroises the index rows (the held entry was zeroed by `take`; the stored
                    // one is erased by the storage layer).
                    self.index.remove_person(person);
                    changes.push(Change::Erase(person));
                    let (index, cancelled_at) = self.batch;
                    let id = NoticeId { index, person };
                    self.notices.insert(
                        id,
                        CancellationNotice {
                            kind: entry.person.document.kind,
                            number: entry.person.document.number,
                            cancelled_at,
                        },
                    );
                    changes.push(Change::Notice(id));
                    Outcome::Cancelled(person)
                }
                None => unknown_person(person),
            },
            Command::UpdateDocument {
                person,
                document,
                endorsement,
            } => {
                let Some(entry) = self.get(person)? else {
                    return Ok(unknown_person(person));
                };
                let old = (
                    entry.person.document.kind,
                    entry.person.document.number.clone(),
                );
                let new = (document.kind, document.number.clone());
                if new.0 != old.0 {
                    return Ok(Outcome::refused(
                        "document_kind_changed",
                        format!("{person} clears with a {}, not a {}", old.0, new.0),
                    ));
                }
                if let Some(other) = self.find_document(new.0, &new.1)?.filter(|&o| o != person) {
                    return Ok(Outcome::refused(
                        "document_in_use",
                        format!("the document is registered to {other}"),
                    ));
                }
                let outcome = self.update(person, changes, |e| {
                    e.person.document = document;
                    e.person.endorsement = endorsement;
                    Ok(())
                })?;
                if matches!(outcome, Outcome::Updated(_)) && new != old {
                    self.documents.remove(old.0, &old.1, person);
                    self.documents.insert(new.0, &new.1, person);
                }
                outcome
            }
            Command::ConfirmPrerequisites {
                person,
                registrations,
                fingerprint_read,
            } => self.update(person, changes, |e| {
                e.person.registrations = registrations;
                e.person
                    .consents
                    .retain(|c| c.kind != ConsentKind::FingerprintReadAuthorisation);
                e.person.consents.extend(fingerprint_read);
                Ok(())
            })?,
            Command::NoticeDelivered { notice } => {
                if self.notices.remove(&notice).is_some() {
                    changes.push(Change::Notice(notice));
                }
                Outcome::Ordered
            }
        })
    }

    /// Changes a registered person's entry in place and re-indexes them.
    fn update(
        &mut self,
        id: PersonId,
        changes: &mut Vec<Change>,
        f: impl FnOnce(&mut Entry) -> std::result::Result<(), Outcome>,
    ) -> Result<Outcome> {
        let Some(mut entry) = self.get(id)? else {
            return Ok(unknown_person(id));
        };
        let before = entry.templates.len();
        if let Err(o) = f(&mut entry) {
            return Ok(o);
        }
        if let Err(e) = entry.person.validate() {
            return Ok(Outcome::from_error(&e));
        }
        self.index.remove_person(id);
        self.put(entry, before);
        changes.push(Change::Put(id));
        Ok(Outcome::Updated(id))
    }

    /// Holds an entry (replacing one of `old_templates` templates, 0 for a new person) and
    /// indexes its templates of the registry's model. Templates of another model are kept (a
    /// model migration re-enrols them) but not searched.
    fn put(&mut self, entry: Entry, old_templates: usize) {
        let id = entry.person.id;
        self.index_templates(&entry);
        self.count_templates(entry.templates.len(), old_templates);
        if let Some(Some(mut old)) = self.held.insert(id, Some(encode(&entry))) {
            // The replaced bytes held templates and a record: zeroed before they are freed.
            zeroize::Zeroize::zeroize(&mut old[..]);
        }
    }

    /// Counts `new` templates in place of `old` (saturating: see [`Registry::take`]).
    fn count_templates(&mut self, new: usize, old: usize) {
        self.templates = self.templates.saturating_add(new).saturating_sub(old);
    }

    fn index_templates(&mut self, entry: &Entry) {
        if entry.person.status == PersonStatus::Active {
            for t in &entry.templates {
                if t.model() == self.index.model() && t.dim() == self.index.dim() {
                    // Cannot fail: model and dimension were just checked.
                    let _ = self.index.insert(entry.person.id, t);
                }
            }
        }
    }

    /// Removes a person's entry (their index rows stay: the caller removes them). Held bytes
    /// are zeroed before they are freed; with a store, the erasure is held until written.
    fn take(&mut self, id: PersonId) -> Result<Option<Entry>> {
        let Some(entry) = self.get(id)? else {
            return Ok(None);
        };
        let old = if self.store.is_some() {
            self.held.insert(id, None)
        } else {
            self.held.remove(&id)
        };
        if let Some(Some(mut bytes)) = old {
            zeroize::Zeroize::zeroize(&mut bytes[..]);
        }
        // Saturating: counts restored from a checkpoint are the node's own, but a wrong count
        // must not stop the replica.
        self.persons = self.persons.saturating_sub(1);
        self.count_templates(0, entry.templates.len());
        Ok(Some(entry))
    }

    /// Restores one entry read back from storage (node start-up, snapshot install); an entry for a
    /// person held already replaces theirs. Refuses an entry whose record is inconsistent or whose
    /// document is registered to someone else. Constant time for a person not held yet.
    ///
    /// A store-backed registry restores what its store holds already (the entry is indexed, not
    /// held), in increasing id order: an id above every one restored so far is new.
    pub fn restore(&mut self, entry: Entry) -> Result<()> {
        entry.person.validate()?;
        let id = entry.person.id;
        let key = (
            entry.person.document.kind,
            entry.person.document.number.clone(),
        );
        if let Some(other) = self.find_document(key.0, &key.1)?.filter(|&o| o != id) {
            return Err(Error::DuplicateDocument { person: id, other });
        }
        // Restoring a person held already replaces them. Only then can the index hold their rows:
        // removing them is a scan of the whole index, so a bulk load that did it for every person
        // would be quadratic (minutes at 1M persons). A store-backed registry's store has the
        // entry already, so only an id restored before can be a replacement.
        let old = if self.store.is_none() || id.0 <= self.restored_up_to {
            self.get(id)?
        } else {
            None
        };
        let old_templates = match old {
            Some(old) => {
                let old_key = (old.person.document.kind, old.person.document.number.clone());
                if old_key != key {
                    self.documents.remove(old_key.0, &old_key.1, id);
                }
                self.index.remove_person(id);
                old.templates.len()
            }
            None => {
                self.persons += 1;
                0
            }
        };
        self.documents.insert(key.0, &key.1, id);
        if self.store.is_some() {
            self.index_templates(&entry);
            self.count_templates(entry.templates.len(), old_templates);
        } else {
            self.put(entry, old_templates);
        }
        self.restored_up_to = self.restored_up_to.max(id.0);
        self.next_id = self.next_id.max(id.0 + 1);
        Ok(())
    }

    /// Sets the id counter (restored from storage; never moves backwards).
    pub fn set_next_id(&mut self, next_id: u64) {
        self.next_id = self.next_id.max(next_id);
    }

    /// The whole logical content, for snapshots and digests (every entry decoded: for tests and
    /// small galleries; [`Registry::image_ref`] streams).
    pub fn image(&self) -> Result<RegistryImage> {
        Ok(RegistryImage {
            next_id: self.next_id,
            entries: self.entries().collect::<Result<_>>()?,
            notices: self
                .notices
                .iter()
                .map(|(id, n)| (*id, n.clone()))
                .collect(),
        })
    }

    /// The whole logical content, read as it is serialised (serialises like [`Registry::image`]).
    pub fn image_ref(&self) -> RegistryImageRef<'_> {
        RegistryImageRef(self)
    }

    /// Makes room in the 1:N index for about `persons` more persons (one template each), before a
    /// bulk load.
    pub fn reserve(&mut self, persons: usize) {
        self.index.reserve(persons);
    }

    /// What a store-backed registry holds beside its store, for a replica checkpoint: its counts
    /// and document keys, then its index's rows ([`Gallery::export_rows`]) and its document
    /// index's `(hash, person)` pairs. `None` while changes are unwritten (the store and the
    /// registry differ then) or without a store.
    pub fn checkpoint(
        &self,
    ) -> Option<(
        CheckpointHeader,
        impl Iterator<Item = (PersonId, &[i8], f32)> + '_,
        impl Iterator<Item = (u64, PersonId)> + '_,
    )> {
        if self.store.is_none() || !self.held.is_empty() {
            return None;
        }
        let (document_keys, documents) = self.documents.export();
        let header = CheckpointHeader {
            next_id: self.next_id,
            persons: self.persons as u64,
            templates: self.templates as u64,
            restored_up_to: self.restored_up_to,
            rows: self.index.len() as u64,
            documents: documents.len() as u64,
            document_keys,
        };
        Some((header, self.index.export_rows(), documents))
    }

    /// A store-backed registry from a checkpoint of one ([`Registry::checkpoint`]) over the
    /// same store, without reading the store: the rows and pairs as `header` counts them.
    /// Refuses a row that is not a valid template of `model` and `dim`, and counts other than
    /// the header's (a checkpoint cut short or padded).
    pub fn from_checkpoint(
        model: ModelId,
        dim: usize,
        store: Box<dyn EntryStore>,
        header: &CheckpointHeader,
        rows: impl Iterator<Item = Result<(PersonId, Vec<i8>, f32)>>,
        documents: impl Iterator<Item = Result<(u64, PersonId)>>,
    ) -> Result<Registry> {
        let mut r = Registry::with_store(model, dim, store)?;
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let short = |what: &str| Error::Storage {
            reason: format!("the checkpoint holds other than its header's count of {what}"),
        };
        // A lying header must not reserve memory: the index grows as rows arrive.
        let mut n = 0;
        for row in rows {
            let (person, values, scale) = row?;
            r.index.insert_row(person, &values, scale)?;
            n += 1;
        }
        if n != header.rows {
            return Err(short("rows"));
        }
        let mut pairs = Vec::new();
        for pair in documents {
            pairs.push(pair?);
        }
        if pairs.len() as u64 != header.documents {
            return Err(short("documents"));
        }
        r.documents =
            documents::Documents::import(header.document_keys, pairs.iter().copied(), pairs.len());
        r.persons = count(header.persons);
        r.templates = count(header.templates);
        r.restored_up_to = header.restored_up_to;
        r.next_id = header.next_id;
        Ok(r)
    }

    /// Rebuilds an in-memory registry from an image (installing a snapshot).
    pub fn from_image(model: ModelId, dim: usize, image: RegistryImage) -> Result<Registry> {
        let mut registry = Registry::new(model, dim)?;
        registry.index.reserve(image.entries.len());
        for entry in image.entries {
            registry.restore(entry)?;
        }
        registry.notices.extend(image.notices);
        registry.set_next_id(image.next_id);
        Ok(registry)
    }
}

fn check_template_count(templates: &[Template], min: usize) -> std::result::Result<(), Outcome> {
    if templates.len() < min {
        return Err(Outcome::refused(
            "no_template",
            "at least one face template is required",
        ));
    }
    if templates.len() > MAX_TEMPLATES_PER_PERSON {
        return Err(too_many_templates());
    }
    Ok(())
}

fn too_many_templates() -> Outcome {
    Outcome::refused(
        "too_many_templates",
        format!("a person holds at most {MAX_TEMPLATES_PER_PERSON} templates"),
    )
}

fn unknown_person(id: PersonId) -> Outcome {
    Outcome::refused("unknown_person", format!("no person {id} is registered"))
}
