//! The node's error type. Messages are lowercase, one line, and say what to do where possible;
//! `code()` is stable so operators and scripts can match on it.

use std::path::{Path, PathBuf};

use crate::face::QualityIssue;

/// Result alias for the node library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the node library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Bad configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The bytes are not an image we can decode.
    #[error("{path}: not a readable image ({reason})")]
    Image {
        /// The file (or "frame").
        path: String,
        /// The decoder's reason.
        reason: String,
    },
    /// A model file's hash is not the pinned one.
    #[error(
        "{path}: SHA-256 mismatch (expected {expected}, got {actual}); refusing to load this model"
    )]
    ModelHash {
        /// The model file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// The ONNX Runtime library could not be loaded or failed.
    #[error("onnx runtime: {0}")]
    Runtime(String),
    /// A photo that could be read but cannot be used (no face, several, failed quality).
    #[error("{path}: {reason}")]
    Photo {
        /// The photo.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A model's outputs do not have the shape the decoder expects.
    #[error("model output: {0}")]
    ModelOutput(String),
    /// No face in the photo or frame.
    #[error("no face found")]
    NoFace,
    /// More than one face where exactly one is required (capture zone, enrolment).
    #[error("{0} faces found; exactly one person must face the camera")]
    MultipleFaces(usize),
    /// The face failed the quality gate.
    #[error("face rejected: {0}")]
    Quality(QualityIssue),
    /// The local gallery store failed.
    #[error("gallery store: {0}")]
    Store(String),
    /// A gallery operation was refused.
    #[error(transparent)]
    Gallery(#[from] clearway_gallery::Error),
    /// The gallery data could not be decrypted: wrong key file or tampered data.
    #[error("gallery store: cannot decrypt {0} (wrong key file or tampered data)")]
    Decrypt(String),
    /// Transport failure (QUIC, TLS, certificates).
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    /// A cluster operation failed (no leader, refused, malformed message).
    #[error("cluster: {0}")]
    Cluster(String),
    /// A node answered a call with an error.
    #[error("{message}")]
    Remote {
        /// The remote error's stable code.
        code: String,
        /// Its message.
        message: String,
        /// Whether trying again may succeed.
        retry: bool,
    },
    /// A person id that the gallery does not hold.
    #[error("no person {0} in the gallery")]
    UnknownPerson(String),
}

impl Error {
    /// Wraps an IO error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A stable identifier for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::Config(_) => "config",
            Error::Image { .. } => "image",
            Error::ModelHash { .. } => "model_hash",
            Error::Photo { .. } => "photo",
            Error::Runtime(_) => "runtime",
            Error::ModelOutput(_) => "model_output",
            Error::NoFace => "no_face",
            Error::MultipleFaces(_) => "multiple_faces",
            Error::Quality(_) => "quality",
            Error::Store(_) => "store",
            Error::Gallery(e) => e.code(),
            Error::Decrypt(_) => "decrypt",
            Error::UnknownPerson(_) => "unknown_person",
            Error::Net(e) => e.code(),
            Error::Cluster(_) => "cluster",
            Error::Remote { .. } => "remote",
        }
    }
}

/// The wire layer's errors become the node's own variants of the same name and code.
impl From<clearway_wire::Error> for Error {
    fn from(e: clearway_wire::Error) -> Self {
        match e {
            clearway_wire::Error::Config(m) => Error::Config(m),
            clearway_wire::Error::Net(e) => Error::Net(e),
            clearway_wire::Error::Cluster(m) => Error::Cluster(m),
            clearway_wire::Error::Remote {
                code,
                message,
                retry,
            } => Error::Remote {
                code,
                message,
                retry,
            },
            clearway_wire::Error::Gallery(e) => Error::Gallery(e),
        }
    }
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::Runtime(e.to_string())
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Store(e.to_string())
    }
}
