//! One authority's HTTPS API, over mutual TLS.

use std::path::Path;
use std::time::{Duration, Instant};

use clearway_gallery::Authority;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use super::metrics::AuthorityMetrics;
use super::tls::{TlsOrigin, TlsPem, client_config};
use sha2::{Digest, Sha256};

use super::{
    AuthorityConfig, AuthorityError, IDEMPOTENCY_KEY, INSPECTIONS_PATH, PREREQUISITES_PATH,
    RECORDS_PATH, parse_base_url,
};
use crate::lane::procedure::{
    AuthorityRecord, DocumentKey, InspectionRequest, PrerequisiteQuery, PrerequisiteStatus, Verdict,
};

/// The most of an authority's error body kept in an error message.
const REASON_CHARS: usize = 200;
/// The largest answer body read from an authority (a verdict or a prerequisite status is a few
/// hundred bytes): a larger one is a bad response, and reading stops there.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The most of a refusal's body read for its reason.
const MAX_REASON_BYTES: usize = 4 * 1024;

/// `kind` label values.
const KIND_INSPECTION: &str = "inspection";
const KIND_RECORD: &str = "record";
const KIND_PREREQUISITES: &str = "prerequisites";

/// A client of one authority's API. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct AuthorityClient {
    authority: Authority,
    base: reqwest::Url,
    http: reqwest::Client,
    timeout: Duration,
    metrics: AuthorityMetrics,
}

impl std::fmt::Debug for AuthorityClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorityClient")
            .field("authority", &self.authority)
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AuthorityClient {
    /// Validates `config`, reads its PEM files and builds the client.
    pub fn new(
        authority: Authority,
        config: &AuthorityConfig,
        metrics: AuthorityMetrics,
    ) -> Result<AuthorityClient, AuthorityError> {
        config.validate()?;
        let pem = TlsPem::read(&config.ca_cert, &config.client_cert, &config.client_key)?;
        let origin = TlsOrigin {
            ca: &config.ca_cert,
            cert: &config.client_cert,
            key: &config.client_key,
        };
        Self::build(
            authority,
            &config.base_url,
            &pem,
            &origin,
            config.timeout(),
            metrics,
        )
    }

    /// Builds the client from PEM text held in memory (CA certificate(s), our certificate chain,
    /// our key).
    pub fn from_pem(
        authority: Authority,
        base_url: &str,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
        timeout: Duration,
        metrics: AuthorityMetrics,
    ) -> Result<AuthorityClient, AuthorityError> {
        if timeout.is_zero() || timeout > Duration::from_secs(60) {
            return Err(AuthorityError::Config(format!(
                "timeout must be 1 ms to 60 s, got {timeout:?}"
            )));
        }
        let pem = TlsPem {
            ca: ca_pem.to_vec(),
            cert: cert_pem.to_vec(),
            key: zeroize::Zeroizing::new(key_pem.to_vec()),
        };
        let origin = TlsOrigin {
            ca: Path::new("<ca certificate>"),
            cert: Path::new("<client certificate>"),
            key: Path::new("<client key>"),
        };
        Self::build(authority, base_url, &pem, &origin, timeout, metrics)
    }

    fn build(
        authority: Authority,
        base_url: &str,
        pem: &TlsPem,
        origin: &TlsOrigin<'_>,
        timeout: Duration,
        metrics: AuthorityMetrics,
    ) -> Result<AuthorityClient, AuthorityError> {
        let base = parse_base_url(base_url)?;
        let tls = client_config(pem, origin)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            // The authorities are reached directly: mutual TLS end to end, no environment proxy.
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("clearway-node/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AuthorityError::Config(format!("http client: {e}")))?;
        Ok(AuthorityClient {
            authority,
            base,
            http,
            timeout,
            metrics,
        })
    }

    /// Which authority this client talks to.
    pub fn authority(&self) -> Authority {
        self.authority
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn url(&self, path: &str) -> reqwest::Url {
        // `base` ends with '/', `path` starts with one: join relative to keep any prefix.
        self.base
            .join(path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base.clone())
    }

    /// Gate 2: asks the authority to inspect the traveller (`POST /v1/inspections`, the request's
    /// `key` as `Idempotency-Key`). An error means "no verdict": the lane routes the traveller to
    /// an officer ("authority not answering" for [`AuthorityError::Timeout`] and the other
    /// retryable errors).
    pub async fn inspect(&self, request: &InspectionRequest) -> Result<Verdict, AuthorityError> {
        let result = self.inspect_inner(request).await;
        let outcome = match &result {
            Ok(Verdict::Cleared) => "cleared",
            Ok(Verdict::Refer { .. }) => "refer",
            Err(e) => e.code(),
        };
        self.metrics
            .request(self.authority, KIND_INSPECTION, outcome);
        result
    }

    async fn inspect_inner(&self, request: &InspectionRequest) -> Result<Verdict, AuthorityError> {
        let key = self.header_key(&request.key)?;
        let body = serde_json::to_vec(request).map_err(|e| {
            AuthorityError::Config(format!("inspection request does not serialise: {e}"))
        })?;
        let response = self.post(INSPECTIONS_PATH, key, body).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(response).await);
        }
        let bytes = self.read_capped(response, MAX_ANSWER_BYTES).await?;
        serde_json::from_slice::<Verdict>(&bytes).map_err(|e| AuthorityError::BadResponse {
            authority: self.authority.as_str(),
            reason: format!(
                "HTTP {} with a body that is not a verdict: {e}",
                status.as_u16()
            ),
        })
    }

    /// Asks what the authority holds about a document's prerequisites (`POST /v1/prerequisites`,
    /// JSON [`PrerequisiteQuery`] → JSON [`PrerequisiteStatus`]): a read, safe to repeat. The
    /// document number travels in the body, never in the URL (URLs end up in logs).
    pub async fn prerequisites(
        &self,
        document: &DocumentKey,
    ) -> Result<PrerequisiteStatus, AuthorityError> {
        let result = self.prerequisites_inner(document).await;
        let outcome = match &result {
            Ok(_) => "answered",
            Err(e) => e.code(),
        };
        self.metrics
            .request(self.authority, KIND_PREREQUISITES, outcome);
        result
    }

    async fn prerequisites_inner(
        &self,
        document: &DocumentKey,
    ) -> Result<PrerequisiteStatus, AuthorityError> {
        let query = PrerequisiteQuery {
            document: document.clone(),
        };
        let body = serde_json::to_vec(&query)
            .map_err(|e| AuthorityError::Config(format!("query does not serialise: {e}")))?;
        let mut h = Sha256::new();
        h.update(&body);
        let key = self.header_key(&format!(
            "prerequisites-{}",
            &hex::encode(h.finalize())[..32]
        ))?;
        let response = self.post(PREREQUISITES_PATH, key, body).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(response).await);
        }
        let bytes = self.read_capped(response, MAX_ANSWER_BYTES).await?;
        serde_json::from_slice::<PrerequisiteStatus>(&bytes).map_err(|e| {
            AuthorityError::BadResponse {
                authority: self.authority.as_str(),
                reason: format!(
                    "HTTP {} with a body that is not a prerequisite status: {e}",
                    status.as_u16()
                ),
            }
        })
    }

    /// Delivers one outbox record (`POST /v1/records`, `key` as `Idempotency-Key`). Success is
    /// any 2xx, or 409 ("already have it": an earlier attempt arrived and its answer was lost).
    pub async fn deliver(&self, key: &str, record: &AuthorityRecord) -> Result<(), AuthorityError> {
        let result = self.deliver_inner(key, record).await;
        let outcome = match &result {
            Ok(false) => "delivered",
            Ok(true) => "duplicate",
            Err(e) => e.code(),
        };
        self.metrics.request(self.authority, KIND_RECORD, outcome);
        result.map(|_| ())
    }

    /// `Ok(true)` when the authority already had the record.
    async fn deliver_inner(
        &self,
        key: &str,
        record: &AuthorityRecord,
    ) -> Result<bool, AuthorityError> {
        let key = self.header_key(key)?;
        let body = serde_json::to_vec(record)
            .map_err(|e| AuthorityError::Config(format!("record does not serialise: {e}")))?;
        let response = self.post(RECORDS_PATH, key, body).await?;
        let status = response.status();
        if status == StatusCode::CONFLICT {
            return Ok(true);
        }
        if status.is_success() {
            return Ok(false);
        }
        Err(self.status_error(response).await)
    }

    /// POSTs JSON with the idempotency key, within the client's timeout. A transport failure
    /// (typically a pooled connection the authority had closed: "connection closed before message
    /// completed") is tried once more at once, within the same deadline: safe, since the
    /// authority deduplicates by key.
    async fn post(
        &self,
        path: &str,
        key: HeaderValue,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, AuthorityError> {
        let started = Instant::now();
        let mut retried = false;
        loop {
            let remaining = self.timeout.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                return Err(AuthorityError::Timeout {
                    authority: self.authority.as_str(),
                    timeout: self.timeout,
                });
            }
            let sent = self
                .http
                .post(self.url(path))
                .header(IDEMPOTENCY_KEY, key.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
                .timeout(remaining)
                .send()
                .await;
            match sent {
                Ok(response) => return Ok(response),
                Err(e) => {
                    let e = self.transport_error(e);
                    if !retried && matches!(e, AuthorityError::Transport { .. }) {
                        retried = true;
                        tracing::debug!(
                            authority = self.authority.as_str(),
                            "{e}; trying once more"
                        );
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Reads an answer's body, at most `max` bytes (within the request's timeout): a longer one
    /// is a bad response, and nothing past `max` is read.
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        max: usize,
    ) -> Result<Vec<u8>, AuthorityError> {
        let too_large = || AuthorityError::BadResponse {
            authority: self.authority.as_str(),
            reason: format!("an answer larger than {max} bytes"),
        };
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn header_key(&self, key: &str) -> Result<HeaderValue, AuthorityError> {
        if key.is_empty() || key.len() > 255 {
            return Err(AuthorityError::Config(format!(
                "idempotency key must be 1-255 characters, got {}",
                key.len()
            )));
        }
        HeaderValue::from_str(key)
            .map_err(|_| AuthorityError::Config("idempotency key must be visible ASCII".to_owned()))
    }

    fn transport_error(&self, e: reqwest::Error) -> AuthorityError {
        let authority = self.authority.as_str();
        let reason = error_chain(&e);
        if e.is_timeout() {
            AuthorityError::Timeout {
                authority,
                timeout: self.timeout,
            }
        } else if e.is_connect() {
            AuthorityError::Connect { authority, reason }
        } else if e.is_builder() {
            AuthorityError::Config(reason)
        } else {
            AuthorityError::Transport { authority, reason }
        }
    }

    /// The error for a non-success status other than 409 (records).
    async fn status_error(&self, response: reqwest::Response) -> AuthorityError {
        let authority = self.authority.as_str();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return AuthorityError::Unavailable {
                authority,
                status: status.as_u16(),
                retry_after,
            };
        }
        if status.is_client_error() {
            let body = self
                .read_capped(response, MAX_REASON_BYTES)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            let mut reason: String = text
                .chars()
                .filter(|c| !c.is_control())
                .take(REASON_CHARS)
                .collect();
            if reason.trim().is_empty() {
                reason = status
                    .canonical_reason()
                    .unwrap_or("client error")
                    .to_owned();
            }
            return AuthorityError::Rejected {
                authority,
                status: status.as_u16(),
                reason,
            };
        }
        AuthorityError::BadResponse {
            authority,
            reason: format!("unexpected HTTP {}", status.as_u16()),
        }
    }
}

/// The error and its sources on one line (reqwest's top-level message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let msg = inner.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        source = inner.source();
    }
    s
}
