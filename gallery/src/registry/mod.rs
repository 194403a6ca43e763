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

/// [`RegistryImage`] borrowed from a live registry: serialises with `postcard` to the same bytes
/// without decoding or copying any entry.
#[derive(Debug, Serialize)]
pub struct RegistryImageRef<'a> {
    /// The next id to assign.
    pub next_id: u64,
    /// Every registered person, by id, as stored (`postcard` bytes of their [`Entry`]).
    pub entries: Vec<Encoded<'a>>,
    /// The cancellation notices not yet delivered to every authority, by id.
    pub notices: Vec<(&'a NoticeId, &'a CancellationNotice)>,
}

/// One person's [`Entry`] as the registry keeps it: its `postcard` encoding. A live `Entry` is a
/// dozen small allocations (strings, the templates and their model names); encoded it is one, and
/// about half the memory (issue 17 §2). Decoded when read; the 1:N index holds the templates
/// apart, ready to scan.
pub struct Encoded<'a>(&'a [u8]);

impl Encoded<'_> {
    /// The `postcard` bytes of the entry.
    pub fn bytes(&self) -> &[u8] {
        self.0
    }
}

impl std::fmt::Debug for Encoded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encoded({} bytes)", self.0.len())
    }
}

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

fn encode(entry: &Entry) -> Box<[u8]> {
    // Encoding an in-memory entry into a vector cannot fail (no I/O, no unsupported types).
    postcard::to_stdvec(entry)
        .unwrap_or_default()
        .into_boxed_slice()
}

fn decode(bytes: &[u8]) -> Option<Entry> {
    // The registry encoded these bytes itself.
    postcard::from_bytes(bytes).ok()
}

/// The port's gallery state: registered persons, their templates, and the 1:N index.
pub struct Registry {
    /// Each person's entry, encoded ([`Encoded`]).
    entries: BTreeMap<PersonId, Box<[u8]>>,
    /// Templates held, all models (the sum over the entries).
    templates: usize,
    /// Who holds which travel document ([`documents::Documents`]).
    documents: documents::Documents,
    next_id: u64,
    index: Gallery,
    notices: BTreeMap<NoticeId, CancellationNotice>,
    /// The log entry being applied (index, audited time), for the notices it leaves.
    batch: (u64, Option<DateTime<Utc>>),
}

impl Registry {
    /// An empty registry whose 1:N index holds templates of `model` with `dim` dimensions.
    pub fn new(model: ModelId, dim: usize) -> Result<Registry> {
        Ok(Registry {
            entries: BTreeMap::new(),
            templates: 0,
            documents: documents::Documents::new(),
            next_id: 1,
            index: Gallery::new(model, dim)?,
            notices: BTreeMap::new(),
            batch: (0, None),
        })
    }

    /// Number of registered persons.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nobody is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The next person id to be assigned.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// One person's entry (decoded: a copy).
    pub fn get(&self, id: PersonId) -> Option<Entry> {
        self.entries.get(&id).and_then(|b| decode(b))
    }

    /// One person's entry as stored: the `postcard` bytes of their [`Entry`].
    pub fn encoded(&self, id: PersonId) -> Option<&[u8]> {
        self.entries.get(&id).map(|b| &b[..])
    }

    /// Every entry, by id (decoded one at a time).
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.entries.values().filter_map(|b| decode(b))
    }

    /// Every entry as stored, by id: the `postcard` bytes of each [`Entry`].
    pub fn encoded_entries(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.entries.values().map(|b| &b[..])
    }

    /// The person registered with this travel document, if any.
    pub fn find_document(&self, kind: DocumentKind, number: &str) -> Option<PersonId> {
        self.documents.find(kind, number, |id| {
            self.get(id).is_some_and(|e| {
                e.person.document.kind == kind && e.person.document.number == number
            })
        })
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
    pub fn apply(&mut self, command: Command, changes: &mut Vec<Change>) -> Outcome {
        match command {
            Command::Enrol { person, templates } => {
                let (kind, number) = (person.document.kind, person.document.number.clone());
                if let Some(existing) = self.find_document(kind, &number) {
                    return Outcome::AlreadyEnrolled(existing);
                }
                // A minor approved at a service location is enrolled before any face is
                // captured: the guardian's consent stands in for the templates until the
                // minor completes the registration at a channel.
                let min = usize::from(person.guardian_consent.is_none());
                if let Err(o) = check_template_count(&templates, min) {
                    return o;
                }
                let id = PersonId(self.next_id);
                let person = person.into_person(id);
                if let Err(e) = person.validate() {
                    return Outcome::from_error(&e);
                }
                self.next_id += 1;
                self.documents.insert(kind, &number, id);
                self.put(Entry { person, templates });
                changes.push(Change::Put(id));
                Outcome::Enrolled(id)
            }
            Command::AddTemplate { person, template } => self.update(person, changes, |e| {
                if e.templates.len() >= MAX_TEMPLATES_PER_PERSON {
                    return Err(too_many_templates());
                }
                e.templates.push(template);
                Ok(())
            }),
            Command::ReplaceTemplates { person, templates } => {
                if let Err(o) = check_template_count(&templates, 1) {
                    return o;
                }
                self.update(person, changes, |e| {
                    e.templates = templates;
                    Ok(())
                })
            }
            Command::Register {
                person,
                authority,
                registration,
            } => self.update(person, changes, |e| {
                e.person.registrations.set(authority, registration);
                Ok(())
            }),
            Command::RecordConsent { person, consent } => self.update(person, changes, |e| {
                if !e.person.consents.contains(&consent) {
                    e.person.consents.push(consent);
                }
                Ok(())
            }),
            Command::RecordGuardianConsent { person, consent } => {
                self.update(person, changes, |e| {
                    e.person.guardian_consent = Some(consent);
                    Ok(())
                })
            }
            Command::Cancel { person } => match self.take(person) {
                Some(entry) => {
                    self.documents.remove(
                        entry.person.document.kind,
                        &entry.person.document.number,
                        person,
                    );
                    // Zeroises the index rows (the stored entry was zeroed by `take`).
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
                let Some(entry) = self.get(person) else {
                    return unknown_person(person);
                };
                let old = (
                    entry.person.document.kind,
                    entry.person.document.number.clone(),
                );
                let new = (document.kind, document.number.clone());
                if new.0 != old.0 {
                    return Outcome::refused(
                        "document_kind_changed",
                        format!("{person} clears with a {}, not a {}", old.0, new.0),
                    );
                }
                if let Some(other) = self.find_document(new.0, &new.1).filter(|&o| o != person) {
                    return Outcome::refused(
                        "document_in_use",
                        format!("the document is registered to {other}"),
                    );
                }
                let outcome = self.update(person, changes, |e| {
                    e.person.document = document;
                    e.person.endorsement = endorsement;
                    Ok(())
                });
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
            }),
            Command::NoticeDelivered { notice } => {
                if self.notices.remove(&notice).is_some() {
                    changes.push(Change::Notice(notice));
                }
                Outcome::Ordered
            }
        }
    }

    /// Changes a registered person's entry in place and re-indexes them.
    fn update(
        &mut self,
        id: PersonId,
        changes: &mut Vec<Change>,
        f: impl FnOnce(&mut Entry) -> std::result::Result<(), Outcome>,
    ) -> Outcome {
        let Some(mut entry) = self.get(id) else {
            return unknown_person(id);
        };
        if let Err(o) = f(&mut entry) {
            return o;
        }
        if let Err(e) = entry.person.validate() {
            return Outcome::from_error(&e);
        }
        self.index.remove_person(id);
        self.put(entry);
        changes.push(Change::Put(id));
        Outcome::Updated(id)
    }

    /// Stores an entry and indexes its templates of the registry's model. Templates of another
    /// model are kept (a model migration re-enrols them) but not searched.
    fn put(&mut self, entry: Entry) {
        let id = entry.person.id;
        if entry.person.status == PersonStatus::Active {
            for t in &entry.templates {
                if t.model() == self.index.model() && t.dim() == self.index.dim() {
                    // Cannot fail: model and dimension were just checked.
                    let _ = self.index.insert(id, t);
                }
            }
        }
        self.templates += entry.templates.len();
        if let Some(mut old) = self.entries.insert(id, encode(&entry)) {
            self.templates -= decode(&old).map_or(0, |e| e.templates.len());
            // The replaced bytes held templates and a record: zeroed before they are freed.
            zeroize::Zeroize::zeroize(&mut old[..]);
        }
    }

    /// Removes a person's entry (their index rows stay: the caller removes them). The stored
    /// bytes are zeroed before they are freed.
    fn take(&mut self, id: PersonId) -> Option<Entry> {
        let mut bytes = self.entries.remove(&id)?;
        let entry = decode(&bytes);
        zeroize::Zeroize::zeroize(&mut bytes[..]);
        let entry = entry?;
        self.templates -= entry.templates.len();
        Some(entry)
    }

    /// Restores one entry read back from storage (node start-up, snapshot install); an entry for a
    /// person held already replaces theirs. Refuses an entry whose record is inconsistent or whose
    /// document is registered to someone else. Constant time for a person not held yet.
    pub fn restore(&mut self, entry: Entry) -> Result<()> {
        entry.person.validate()?;
        let id = entry.person.id;
        let key = (
            entry.person.document.kind,
            entry.person.document.number.clone(),
        );
        if let Some(other) = self.find_document(key.0, &key.1).filter(|&o| o != id) {
            return Err(Error::DuplicateDocument { person: id, other });
        }
        // Restoring a person held already replaces them. Only then can the index hold their rows:
        // removing them is a scan of the whole index, so a bulk load that did it for every person
        // would be quadratic (minutes at 1M persons).
        if let Some(old) = self.get(id) {
            let old_key = (old.person.document.kind, old.person.document.number.clone());
            if old_key != key {
                self.documents.remove(old_key.0, &old_key.1, id);
            }
            self.index.remove_person(id);
        }
        self.documents.insert(key.0, &key.1, id);
        self.put(entry);
        self.next_id = self.next_id.max(id.0 + 1);
        Ok(())
    }

    /// Sets the id counter (restored from storage; never moves backwards).
    pub fn set_next_id(&mut self, next_id: u64) {
        self.next_id = self.next_id.max(next_id);
    }

    /// The whole logical content, for snapshots and digests.
    pub fn image(&self) -> RegistryImage {
        RegistryImage {
            next_id: self.next_id,
            entries: self.entries().collect(),
            notices: self
                .notices
                .iter()
                .map(|(id, n)| (*id, n.clone()))
                .collect(),
        }
    }

    /// The whole logical content, borrowed (serialises like [`Registry::image`]).
    pub fn image_ref(&self) -> RegistryImageRef<'_> {
        RegistryImageRef {
            next_id: self.next_id,
            entries: self.entries.values().map(|b| Encoded(b)).collect(),
            notices: self.notices.iter().collect(),
        }
    }

    /// Makes room in the 1:N index for about `persons` more persons (one template each), before a
    /// bulk load.
    pub fn reserve(&mut self, persons: usize) {
        self.index.reserve(persons);
    }

    /// Rebuilds a registry from an image (installing a snapshot).
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
