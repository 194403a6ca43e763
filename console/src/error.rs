//! The console's errors (server side): one enum, lowercase messages, a stable `code()` and the
//! HTTP status each is answered with.

use std::path::{Path, PathBuf};

use crate::dto::ApiError;

/// What went wrong in the console.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No session cookie.
    #[error("sign in first")]
    Unauthenticated,
    /// The session timed out or was ended.
    #[error("your session has expired; sign in again")]
    SessionExpired,
    /// A state-changing request without the session's CSRF token.
    #[error(
        "the request's security (CSRF) token is missing or wrong; reload the page and try again"
    )]
    Csrf,
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    InvalidCredentials,
    /// Too many failed logins.
    #[error("too many failed logins for this account; try again after {until}")]
    LockedOut {
        /// Local time the lock ends.
        until: String,
    },
    /// The account is disabled (told only after the right password).
    #[error("this account is disabled; ask a port admin")]
    AccountDisabled,
    /// An administrator set the password; nothing else until the user changes it.
    #[error("choose a new password first (an administrator set the current one)")]
    PasswordChangeRequired,
    /// The user's role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown port, hall, lane, user or person.
    #[error("{0}")]
    NotFound(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// A change without a reason.
    #[error("a reason is required for every change (at most {max} characters)", max = crate::dto::MAX_REASON_CHARS)]
    ReasonRequired,
    /// No node of the port answered.
    #[error("port {port}: {message}")]
    PortUnreachable {
        /// Port id.
        port: String,
        /// Why.
        message: String,
    },
    /// The port's state machine refused the change.
    #[error("the port refused the change: {0}")]
    Refused(String),
    /// The console's own storage failed.
    #[error("console storage: {0}")]
    Store(String),
    /// A configuration file is wrong.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A node-side operation (CA, bundles) failed.
    #[error("{0}")]
    Node(String),
}

/// Results of the console.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An IO error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A storage error.
    pub fn store(e: impl std::fmt::Display) -> Error {
        Error::Store(e.to_string())
    }

    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated => "unauthenticated",
            Error::SessionExpired => "session_expired",
            Error::Csrf => "csrf",
            Error::InvalidCredentials => "invalid_credentials",
            Error::LockedOut { .. } => "locked_out",
            Error::AccountDisabled => "account_disabled",
            Error::PasswordChangeRequired => "password_change_required",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::Invalid(_) => "invalid",
            Error::ReasonRequired => "reason_required",
            Error::PortUnreachable { .. } => "port_unreachable",
            Error::Refused(_) => "refused",
            Error::Store(_) => "store",
            Error::Config { .. } => "config",
            Error::Io { .. } => "io",
            Error::Node(_) => "node",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Error::Unauthenticated | Error::SessionExpired | Error::InvalidCredentials => 401,
            Error::Csrf
            | Error::Forbidden(_)
            | Error::AccountDisabled
            | Error::PasswordChangeRequired => 403,
            Error::NotFound(_) => 404,
            Error::Invalid(_) | Error::ReasonRequired => 422,
            Error::LockedOut { .. } => 429,
            Error::Refused(_) => 409,
            Error::PortUnreachable { .. } => 502,
            Error::Store(_) | Error::Config { .. } | Error::Io { .. } | Error::Node(_) => 500,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError::new(e.status(), e.code(), e.to_string())
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Error {
        Error::store(e)
    }
}

impl From<clearway_wire::Error> for Error {
    fn from(e: clearway_wire::Error) -> Error {
        Error::Node(e.to_string())
    }
}

impl From<clearway_wire::net::NetError> for Error {
    fn from(e: clearway_wire::net::NetError) -> Error {
        Error::Node(e.to_string())
    }
}
