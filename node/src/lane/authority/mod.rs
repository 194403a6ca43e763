//! The two border authorities (Macao, Mainland): their HTTPS APIs, the durable outbox that
//! carries records to them, and a reference authority service for tests and demos.
//!
//! * [`AuthorityClient`]: one per authority. HTTPS with **mutual TLS only** (rustls 0.23, ring
//!   provider, the configured CA as the only trust anchor, our client certificate) handed to
//!   reqwest with `use_preconfigured_tls`; there is no plain-HTTP mode. `inspect` is the gate-2
//!   synchronous call (`POST /v1/inspections`), `deliver` carries one outbox record
//!   (`POST /v1/records`; the lane also sends the registration consent this way, at once, to
//!   both authorities), `prerequisites` asks what the authority holds about a document before
//!   the registration is offered (`POST /v1/prerequisites`); each sends an `Idempotency-Key`.
//! * [`Outbox`]: sled trees of the lane's database, one queue per authority, records sealed at
//!   rest (ChaCha20-Poly1305), durable before `push` returns, delivered in order by
//!   [`Outbox::run`] with capped exponential backoff and jitter, exactly once from the receiver's
//!   view (a stable idempotency key per record, assigned when it is queued).
//! * [`reference`](mod@reference): a **reference/simulator** authority (axum over tokio-rustls, client
//!   certificates required) that records what it receives and can be told to fail. It is not the
//!   real authority's API contract, only our reading of it.
//! * [`AuthorityMetrics`]: the Prometheus series of the clients and outboxes, on an explicit
//!   registry. Label values are bounded (authority, kind, outcome): never a document number.
//!
//! # The wire contract (as the reference service implements it)
//!
//! | request | success | repeat of a key | permanent refusal | try again later |
//! |---|---|---|---|---|
//! | `POST /v1/inspections` (JSON [`InspectionRequest`]) | 200 + JSON [`Verdict`] | 200, first answer | 4xx | 5xx, 429 |
//! | `POST /v1/records` (JSON [`AuthorityRecord`]) | 201 | 409 ("already have it": success) | 4xx (410: a consent already withdrawn) | 5xx, 429 |
//! | `POST /v1/prerequisites` (JSON [`PrerequisiteQuery`]) | 200 + JSON [`PrerequisiteStatus`] | (a read) | 4xx | 5xx, 429 |
//!
//! Biometric data (fingerprint templates) travels only inside the TLS tunnel; nothing here logs
//! request or record bodies.
//!
//! [`InspectionRequest`]: crate::lane::procedure::InspectionRequest
//! [`Verdict`]: crate::lane::procedure::Verdict
//! [`AuthorityRecord`]: crate::lane::procedure::AuthorityRecord
//! [`PrerequisiteQuery`]: crate::lane::procedure::PrerequisiteQuery
//! [`PrerequisiteStatus`]: crate::lane::procedure::PrerequisiteStatus

mod client;
mod metrics;
mod outbox;
pub mod reference;
pub(crate) mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use client::{AuthorityClient, MAX_ANSWER_BYTES};
pub use metrics::AuthorityMetrics;
pub use outbox::{Backoff, DeadLetter, Outbox, OutboxError, OutboxKeys, SealKey};
pub(crate) use outbox::{open_bytes, seal_bytes};
pub use reference::{
    DemoPki, FailMode, PrerequisiteBook, PrerequisiteControl, ReferenceArgs, ReferenceAuthority,
    ReferenceConfig, ReferenceHandle, StoredRecord, serve_reference,
};

/// Request path of inspections.
pub const INSPECTIONS_PATH: &str = "/v1/inspections";
/// Request path of records.
pub const RECORDS_PATH: &str = "/v1/records";
/// Request path of prerequisite queries.
pub const PREREQUISITES_PATH: &str = "/v1/prerequisites";
/// The header carrying the idempotency key.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Default request timeout: the whole request, connect included.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;

/// How the lane reaches one authority (a `[authority.macao]` / `[authority.mainland]` table of the
/// lane's configuration).
///
/// ```toml
/// base_url = "https://macao-psp.example:8443"
/// ca_cert = "/etc/clearway/authority/macao/ca.pem"
/// client_cert = "/etc/clearway/authority/macao/client.pem"
/// client_key = "/etc/clearway/authority/macao/client.key"
/// timeout_ms = 2000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityConfig {
    /// `https://host[:port][/prefix]`; the API paths are appended to it. Only `https` is accepted.
    pub base_url: String,
    /// PEM: the CA certificate(s) that issued the authority's server certificate. The only trust
    /// anchors of this connection (the system's roots are not used).
    pub ca_cert: PathBuf,
    /// PEM: our client certificate (chain, leaf first).
    pub client_cert: PathBuf,
    /// PEM: the client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub client_key: PathBuf,
    /// Whole-request timeout in milliseconds (1–60000), connect included.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

impl AuthorityConfig {
    /// Checks the fields without touching the files: an `https` URL with a host and no query or
    /// fragment, non-empty paths, a timeout of 1 ms to 60 s.
    pub fn validate(&self) -> Result<(), AuthorityError> {
        parse_base_url(&self.base_url)?;
        for (what, p) in [
            ("ca_cert", &self.ca_cert),
            ("client_cert", &self.client_cert),
            ("client_key", &self.client_key),
        ] {
            if p.as_os_str().is_empty() {
                return Err(AuthorityError::Config(format!("{what} is empty")));
            }
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(AuthorityError::Config(format!(
                "timeout_ms must be 1..=60000, got {}",
                self.timeout_ms
            )));
        }
        Ok(())
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Parses and checks a base URL: `https` only, a host, no query, no fragment; a trailing `/` is
/// added so that relative joins keep any path prefix.
pub(crate) fn parse_base_url(s: &str) -> Result<reqwest::Url, AuthorityError> {
    let mut url = reqwest::Url::parse(s)
        .map_err(|e| AuthorityError::Config(format!("base_url {s:?} is not a URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(AuthorityError::Config(format!(
            "base_url {s:?} must use https (mutual TLS is mandatory; there is no plain-HTTP mode)"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(AuthorityError::Config(format!(
            "base_url {s:?} has no host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(AuthorityError::Config(format!(
            "base_url {s:?} must not carry a query or fragment"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AuthorityError::Config(format!(
            "base_url {s:?} must not carry credentials (the client certificate authenticates us)"
        )));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

/// What can go wrong talking to an authority.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    /// Bad configuration (URL, timeout).
    #[error("authority configuration: {0}")]
    Config(String),
    /// TLS material that cannot be read or used.
    #[error("{}: {reason}", path.display())]
    Tls {
        /// The file (or a description of the material).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made (refused, unreachable, TLS handshake failed). Retryable.
    #[error("{authority}: cannot connect: {reason}")]
    Connect {
        /// Which authority.
        authority: &'static str,
        /// Why.
        reason: String,
    },
    /// No answer within the deadline. Retryable; for an inspection, "authority not answering".
    #[error("{authority}: no answer within {} ms", timeout.as_millis())]
    Timeout {
        /// Which authority.
        authority: &'static str,
        /// The deadline.
        timeout: Duration,
    },
    /// The authority answered 5xx or 429. Retryable.
    #[error("{authority}: unavailable (HTTP {status})")]
    Unavailable {
        /// Which authority.
        authority: &'static str,
        /// The status code.
        status: u16,
        /// The `Retry-After` the authority asked for, in seconds form, if any.
        retry_after: Option<Duration>,
    },
    /// The authority refused the request for good (4xx other than 409 and 429). Not retryable:
    /// an outbox record gets parked as a dead letter.
    #[error("{authority}: refused (HTTP {status}): {reason}")]
    Rejected {
        /// Which authority.
        authority: &'static str,
        /// The status code.
        status: u16,
        /// The authority's explanation (first 200 characters of the body).
        reason: String,
    },
    /// The authority answered something we cannot understand. Not retryable.
    #[error("{authority}: unreadable answer: {reason}")]
    BadResponse {
        /// Which authority.
        authority: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Another transport failure (connection reset mid-request, protocol error). Retryable.
    #[error("{authority}: transport: {reason}")]
    Transport {
        /// Which authority.
        authority: &'static str,
        /// What happened.
        reason: String,
    },
    /// The reference service could not start (bind, TLS setup, records file).
    #[error("reference authority: {0}")]
    Reference(String),
}

impl AuthorityError {
    /// Whether trying the same request again later may succeed: connect failures, timeouts,
    /// 5xx, 429 and other transport failures.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AuthorityError::Connect { .. }
                | AuthorityError::Timeout { .. }
                | AuthorityError::Unavailable { .. }
                | AuthorityError::Transport { .. }
        )
    }

    /// Stable snake_case code; also the `outcome` label of failed requests.
    pub fn code(&self) -> &'static str {
        match self {
            AuthorityError::Config(_) => "config",
            AuthorityError::Tls { .. } => "tls",
            AuthorityError::Connect { .. } => "connect",
            AuthorityError::Timeout { .. } => "timeout",
            AuthorityError::Unavailable { .. } => "unavailable",
            AuthorityError::Rejected { .. } => "rejected",
            AuthorityError::BadResponse { .. } => "bad_response",
            AuthorityError::Transport { .. } => "transport",
            AuthorityError::Reference(_) => "reference",
        }
    }

    /// The delay the authority asked for with `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AuthorityError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn tls(path: &Path, reason: impl Into<String>) -> AuthorityError {
        AuthorityError::Tls {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests;
