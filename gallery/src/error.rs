//! The crate's one error type.

use crate::index::Kernel;
use crate::person::{Category, DocumentKind};
use crate::template::ModelId;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the gallery: bad vectors, bad templates, inconsistent person records.
///
/// Every variant but [`Error::ScanPool`], [`Error::Storage`] and [`Error::ForeignRow`] is bad input from the caller; none is a bug or an IO failure (the
/// crate does no IO).
/// [`Error::code`] gives a stable, machine-readable name for logs, metrics labels and API responses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector or template has a different length than the gallery's dimension.
    #[error("dimension mismatch: expected {expected}, got {got}")]
    DimensionMismatch {
        /// The gallery's dimension.
        expected: usize,
        /// The length that was passed in.
        got: usize,
    },
    /// A flat batch of probes is not a whole number of gallery-dimension vectors.
    #[error("ragged batch: {len} values are not a whole number of {dim}-dimension probes")]
    RaggedBatch {
        /// The gallery's dimension.
        dim: usize,
        /// Length of the flat batch.
        len: usize,
    },
    /// A gallery was asked for a dimension it cannot hold.
    #[error("invalid dimension {dim}: must be between 1 and {max}")]
    InvalidDimension {
        /// The requested dimension.
        dim: usize,
        /// The largest supported dimension.
        max: usize,
    },
    /// An embedding vector had no elements.
    #[error("empty vector")]
    EmptyVector,
    /// An embedding vector held NaN or an infinity.
    #[error("vector holds a non-finite value at index {index}")]
    NonFinite {
        /// Index of the first offending element.
        index: usize,
    },
    /// An embedding vector was all zeros (or too small to quantise), so it has no direction.
    #[error("zero vector: it has no direction to match")]
    ZeroVector,
    /// A template was made by a different face model than the gallery's.
    #[error("model mismatch: gallery holds {expected}, template is {got}")]
    ModelMismatch {
        /// The gallery's model.
        expected: ModelId,
        /// The template's model.
        got: ModelId,
    },
    /// A model id had an empty name or version.
    #[error("invalid model id: name and version must not be empty")]
    InvalidModelId,
    /// A stored template broke the quantisation invariants (scale, value range, length).
    #[error("invalid template: {reason}")]
    InvalidTemplate {
        /// What was wrong.
        reason: &'static str,
    },
    /// The requested search kernel needs CPU features this machine lacks.
    #[error("kernel {kernel} is not available on this cpu")]
    KernelUnavailable {
        /// The kernel that was asked for.
        kernel: Kernel,
    },
    /// The scan pool's threads could not be started (the operating system refused them).
    #[error("the scan pool could not start {threads} threads: {reason}")]
    ScanPool {
        /// Threads asked for.
        threads: usize,
        /// What the operating system said.
        reason: String,
    },
    /// A person id string did not parse.
    #[error("invalid person id {input:?}: expected P followed by digits")]
    InvalidPersonId {
        /// The text that was passed in.
        input: String,
    },
    /// A required text field of a person record was empty.
    #[error("missing field: {field}")]
    MissingField {
        /// The field's name.
        field: &'static str,
    },
    /// The travel document does not belong to the person's category.
    #[error("document {document} does not fit category {category}")]
    DocumentMismatch {
        /// The person's category.
        category: Category,
        /// The document kind on record.
        document: DocumentKind,
    },
    /// A validity period ends before it starts.
    #[error("invalid period: {what} is valid until before it is valid from")]
    InvalidPeriod {
        /// Which period (document, endorsement).
        what: &'static str,
    },
    /// Two stored records claim the same travel document.
    #[error("person {person} has the travel document already registered to {other}")]
    DuplicateDocument {
        /// The record being restored.
        person: crate::PersonId,
        /// The record already holding the document.
        other: crate::PersonId,
    },
    /// The storage the registry reads persons' entries from failed ([`crate::registry::EntryStore`]):
    /// not bad input, and not this crate's IO; the node's store said why.
    #[error("the gallery's entry store failed: {reason}")]
    Storage {
        /// What the store reported.
        reason: String,
    },
    /// Another engine's scored rows ([`crate::Gallery::rank_rows`]) named a row the gallery does not
    /// hold or a NaN score: that engine is out of step or broken, so its result is refused.
    #[error("a scored row from another engine is invalid: row {row} of {len}")]
    ForeignRow {
        /// The row named.
        row: usize,
        /// Rows the gallery holds.
        len: usize,
    },
    /// An endorsement was recorded for a category that has none.
    #[error("endorsement not applicable to category {category}")]
    EndorsementNotApplicable {
        /// The person's category.
        category: Category,
    },
}

impl Error {
    /// A stable, lowercase, snake_case name for this error, for logs, metrics and API responses.
    ///
    /// These strings never change meaning; new variants get new codes.
    pub fn code(&self) -> &'static str {
        match self {
            Error::DimensionMismatch { .. } => "dimension_mismatch",
            Error::RaggedBatch { .. } => "ragged_batch",
            Error::InvalidDimension { .. } => "invalid_dimension",
            Error::EmptyVector => "empty_vector",
            Error::NonFinite { .. } => "non_finite",
            Error::ZeroVector => "zero_vector",
            Error::ModelMismatch { .. } => "model_mismatch",
            Error::InvalidModelId => "invalid_model_id",
            Error::InvalidTemplate { .. } => "invalid_template",
            Error::KernelUnavailable { .. } => "kernel_unavailable",
            Error::ScanPool { .. } => "scan_pool",
            Error::InvalidPersonId { .. } => "invalid_person_id",
            Error::MissingField { .. } => "missing_field",
            Error::DocumentMismatch { .. } => "document_mismatch",
            Error::InvalidPeriod { .. } => "invalid_period",
            Error::EndorsementNotApplicable { .. } => "endorsement_not_applicable",
            Error::DuplicateDocument { .. } => "duplicate_document",
            Error::Storage { .. } => "storage",
            Error::ForeignRow { .. } => "foreign_row",
        }
    }
}
