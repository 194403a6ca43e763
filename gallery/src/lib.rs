//! Clearway's gallery: who is registered for face scan, whether they may use it today, and which registered
//! person a face is.
//!
//! * [`person`]: person records in the words of the domain ([`Person`], [`TravelDocument`],
//!   [`Endorsement`], [`ConsentRecord`], …), their consistency check [`Person::validate`] and the pure
//!   eligibility rules [`eligibility`].
//! * [`template`]: face templates, int8-quantised embeddings of one face model ([`Template`], [`ModelId`]).
//! * [`registry`]: the port's gallery as a deterministic state machine ([`Registry`], [`Command`]),
//!   replicated by the node with Raft.
//! * [`index`]: [`Gallery`], the in-memory exact 1:N index over templates, with SIMD kernels chosen at run
//!   time ([`Kernel`]).
//!
//! **Architecture invariant: this crate does no IO.** It knows nothing of tokio, Raft, HTTP, files, sled,
//! cameras or clocks: time comes in as arguments (`today`), storage is the caller's (records are `serde`
//! types, stored with `postcard` by the node), and every input it rejects comes back as an [`Error`] value,
//! never a panic. `unsafe` code lives only in the index's kernel module.

#![deny(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod error;
pub mod index;
pub mod ops;
pub mod person;
pub mod registry;
pub mod template;

pub use error::{Error, Result};
pub use index::{DEFAULT_MIN_ROWS, Gallery, Hit, Kernel, MAX_DIM, SEGMENT_ROWS, ScanPool, Segment};
pub use person::{
    ADULT_AGE, Authority, Category, ConsentKind, ConsentRecord, Destination, DocumentKind,
    Endorsement, EndorsementKind, GuardianConsent, Ineligible, MIN_AGE, Person, PersonId,
    PersonStatus, Policy, Registration, Registrations, TravelDocument, age_on,
    document_eligibility, eligibility, eligibility_under,
};
pub use registry::{
    CancellationNotice, Change, CheckpointHeader, Command, EncodedEntry, Entry, EntryStore,
    NewPerson, NoticeId, Outcome, Registry, RegistryImage, Request, StoredBytes,
};
pub use template::{ModelId, Template};
