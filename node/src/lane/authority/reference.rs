//! A **reference authority service** — a simulator for tests and demos, *not* the real Macao or
//! Mainland authority and not their API contract. It speaks the wire contract described in
//! [the module docs](super) over HTTPS with client certificates required, records what it
//! receives, and can be told to fail.
//!
//! Routes:
//!
//! * `POST /v1/inspections` — JSON [`InspectionRequest`], `Idempotency-Key` required. Answers a
//!   JSON [`Verdict`]: `refer` for document numbers on the configured refer list, `cleared`
//!   otherwise; a repeated key gets the first answer.
//! * `POST /v1/records` — JSON [`AuthorityRecord`], `Idempotency-Key` required. A new key is
//!   stored (and appended to the JSON Lines records file, if configured, before answering) and
//!   answered 201; a repeat of the same record answers 409 without storing again; the same key
//!   with a different record answers 422.
//!   A registration consent whose key was withdrawn (a `consent_withdrawn` record naming it
//!   arrived first) answers 410 and is not stored: a late consent cannot revive a registration
//!   the lane gave up on.
//! * `POST /v1/prerequisites` — JSON [`PrerequisiteQuery`]: what this authority holds about the
//!   document's prerequisites, from its [`PrerequisiteBook`] (per document number, else the
//!   book's default; the default default is "nothing held").
//! * `GET /v1/records` — the stored records, oldest first, as a JSON array of [`StoredRecord`].
//! * `POST /control/fail` — `{"mode": "unavailable" | "slow" | "garbage" | "flood" | "ok", "for_ms": 5000}`:
//!   `unavailable` answers 503 to the API routes; `slow` processes requests (stores records) and
//!   then holds the answer for the configured slow delay, beyond any sane client timeout, which
//!   is how a lost response is simulated; `garbage` answers inspections 200 with a body that is
//!   not a verdict; `ok` restores normal service. `for_ms` reverts to `ok`
//!   after that long.
//! * `POST /control/prerequisites` — `{"document": "H30000004", "status": {…}}` sets what the
//!   service holds for one document number (`"document": null`: the default), so tests cover
//!   every branch.
//! * `GET /healthz` — `ok`.
//!
//! The records file holds personal data in the clear: it is a simulator's file, for test
//! machines only.
//!
//! [`InspectionRequest`]: crate::lane::procedure::InspectionRequest
//! [`Verdict`]: crate::lane::procedure::Verdict
//! [`AuthorityRecord`]: crate::lane::procedure::AuthorityRecord
//! [`PrerequisiteQuery`]: crate::lane::procedure::PrerequisiteQuery

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::tls::{TlsOrigin, TlsPem, server_config};
use super::{AuthorityError, IDEMPOTENCY_KEY, INSPECTIONS_PATH, PREREQUISITES_PATH, RECORDS_PATH};
use crate::lane::procedure::{
    AuthorityRecord, InspectionRequest, PrerequisiteQuery, PrerequisiteStatus, Verdict,
};

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a graceful shutdown may take before the server task is aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The reason given for referred document numbers.
pub const REFER_REASON: &str = "document on the authority's refer list";

/// What the service is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Normal service.
    Ok,
    /// Answer 503 to the API routes.
    Unavailable,
    /// Process requests, then hold the answer for the slow delay.
    Slow,
    /// Answer inspections 200 with a body that is not a verdict (a broken authority); records
    /// are processed normally.
    Garbage,
    /// Answer inspections and prerequisite queries 200 with a body far larger than any answer
    /// (a broken or hostile authority: the client must stop reading, not run out of memory).
    Flood,
}

/// The size of a [`FailMode::Flood`] answer.
const FLOOD_BYTES: usize = 8 << 20;

fn flood() -> Response {
    let mut body = String::with_capacity(FLOOD_BYTES + 16);
    body.push_str("{\"verdict\":\"");
    body.extend(std::iter::repeat_n('x', FLOOD_BYTES));
    body.push_str("\"}");
    json_text(StatusCode::OK, body)
}

fn json_text(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

/// Body of `POST /control/fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailControl {
    /// The mode.
    pub mode: FailMode,
    /// Revert to `ok` after this many milliseconds; forever when absent.
    #[serde(default)]
    pub for_ms: Option<u64>,
}

/// What the reference service holds about documents' prerequisites (the `--prerequisites` file,
/// JSON): per document number, and a default for every other document.
///
/// ```json
/// {"default": {},
///  "documents": {"H30000004": {"automated_clearance":
///      {"registered_at": "2024-03-01T02:00:00Z", "location": "Gongbei Port e-channel desk"}}}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrerequisiteBook {
    /// For documents not listed.
    #[serde(default)]
    pub default: PrerequisiteStatus,
    /// By document number.
    #[serde(default)]
    pub documents: HashMap<String, PrerequisiteStatus>,
}

impl PrerequisiteBook {
    /// What is held for `number`.
    pub fn get(&self, number: &str) -> PrerequisiteStatus {
        self.documents.get(number).unwrap_or(&self.default).clone()
    }

    /// Reads a book from a JSON file.
    pub fn read(path: &Path) -> Result<PrerequisiteBook, AuthorityError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            AuthorityError::Reference(format!("{}: cannot read: {e}", path.display()))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            AuthorityError::Reference(format!(
                "{}: not a prerequisite book (line {} column {}): {e}",
                path.display(),
                e.line(),
                e.column()
            ))
        })
    }
}

/// Body of `POST /control/prerequisites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrerequisiteControl {
    /// The document number; `None` sets the default.
    pub document: Option<String>,
    /// What the service holds for it.
    pub status: PrerequisiteStatus,
}

/// One record the service stored; a line of the records file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// The idempotency key it came with.
    pub key: String,
    /// When it was first received.
    pub received_at: DateTime<Utc>,
    /// The record.
    pub record: AuthorityRecord,
}

/// How to run the reference service.
#[derive(Clone)]
pub struct ReferenceConfig {
    /// Where to listen (port 0: any free port; see [`ReferenceHandle::local_addr`]).
    pub listen: SocketAddr,
    /// PEM: the server certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// PEM: the server certificate's key.
    pub key_pem: zeroize::Zeroizing<Vec<u8>>,
    /// PEM: the CA(s) client certificates must be issued by.
    pub client_ca_pem: Vec<u8>,
    /// Document numbers answered with `refer`.
    pub refer: Vec<String>,
    /// JSON Lines file the new records are appended to and reloaded from at start.
    pub records_file: Option<PathBuf>,
    /// How long `slow` mode holds each answer.
    pub slow_delay: Duration,
    /// A name for the logs (e.g. `macao`).
    pub name: String,
    /// What the service holds about prerequisites.
    pub prerequisites: PrerequisiteBook,
}

impl std::fmt::Debug for ReferenceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceConfig")
            .field("listen", &self.listen)
            .field("refer", &self.refer.len())
            .field("records_file", &self.records_file)
            .field("slow_delay", &self.slow_delay)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ReferenceConfig {
    /// A configuration from PEM text: 127.0.0.1 on any free port, empty refer list, no records
    /// file, slow delay 10 s.
    pub fn new(cert_pem: &[u8], key_pem: &[u8], client_ca_pem: &[u8]) -> ReferenceConfig {
        ReferenceConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            cert_pem: cert_pem.to_vec(),
            key_pem: zeroize::Zeroizing::new(key_pem.to_vec()),
            client_ca_pem: client_ca_pem.to_vec(),
            refer: Vec::new(),
            records_file: None,
            slow_delay: Duration::from_secs(10),
            name: "reference".to_owned(),
            prerequisites: PrerequisiteBook::default(),
        }
    }
}

/// The reference service's command line (`clearway-node authority serve-reference …`).
#[derive(Debug, Clone, clap::Args)]
pub struct ReferenceArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// PEM file: the server certificate chain.
    #[arg(long)]
    pub cert: PathBuf,
    /// PEM file: the server certificate's private key.
    #[arg(long)]
    pub key: PathBuf,
    /// PEM file: the CA client certificates must be issued by.
    #[arg(long)]
    pub client_ca: PathBuf,
    /// JSON Lines file to append received records to (and reload at start).
    #[arg(long)]
    pub records_file: Option<PathBuf>,
    /// Document numbers to answer with `refer` (repeat the flag or separate with commas).
    #[arg(long = "refer", value_delimiter = ',')]
    pub refer: Vec<String>,
    /// How long `slow` mode holds each answer, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub slow_delay_ms: u64,
    /// A name for the logs, e.g. `macao` or `mainland`.
    #[arg(long, default_value = "reference")]
    pub name: String,
    /// JSON file: what the service holds about documents' prerequisites ([`PrerequisiteBook`]);
    /// nothing for anyone when absent.
    #[arg(long)]
    pub prerequisites: Option<PathBuf>,
}

impl ReferenceArgs {
    /// Reads the PEM files into a [`ReferenceConfig`].
    pub fn to_config(&self) -> Result<ReferenceConfig, AuthorityError> {
        let pem = TlsPem::read(&self.client_ca, &self.cert, &self.key)?;
        let origin = TlsOrigin {
            ca: &self.client_ca,
            cert: &self.cert,
            key: &self.key,
        };
        // Fail early, naming the file, if the material is unusable.
        server_config(&pem, &origin)?;
        Ok(ReferenceConfig {
            listen: self.listen,
            cert_pem: pem.cert,
            key_pem: pem.key,
            client_ca_pem: pem.ca,
            refer: self.refer.clone(),
            records_file: self.records_file.clone(),
            slow_delay: Duration::from_millis(self.slow_delay_ms),
            name: self.name.clone(),
            prerequisites: match &self.prerequisites {
                Some(path) => PrerequisiteBook::read(path)?,
                None => PrerequisiteBook::default(),
            },
        })
    }
}

/// Runs the reference service from the command line until Ctrl-C.
pub async fn serve_reference(args: ReferenceArgs) -> Result<(), AuthorityError> {
    let handle = ReferenceAuthority::start(args.to_config()?).await?;
    tracing::warn!(
        name = %args.name,
        addr = %handle.local_addr(),
        "REFERENCE authority simulator listening (mutual TLS) — a test double, not the real authority"
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| AuthorityError::Reference(format!("waiting for ctrl-c: {e}")))?;
    handle.shutdown().await;
    Ok(())
}

/// The reference service (see the module docs).
pub struct ReferenceAuthority;

impl ReferenceAuthority {
    /// Binds, loads the records file, and serves in the background until the handle is shut
    /// down or dropped.
    pub async fn start(config: ReferenceConfig) -> Result<ReferenceHandle, AuthorityError> {
        let pem = TlsPem {
            ca: config.client_ca_pem.clone(),
            cert: config.cert_pem.clone(),
            key: config.key_pem.clone(),
        };
        let origin = TlsOrigin {
            ca: Path::new("<client ca>"),
            cert: Path::new("<server certificate>"),
            key: Path::new("<server key>"),
        };
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&pem, &origin)?));

        let (records, file) = match &config.records_file {
            Some(path) => {
                let records = load_records(path)?;
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        AuthorityError::Reference(format!("{}: cannot open: {e}", path.display()))
                    })?;
                (records, Some(file))
            }
            None => (Vec::new(), None),
        };
        let keys = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.key.clone(), i))
            .collect();
        let withdrawn = records.iter().filter_map(withdrawn_key).collect();

        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            AuthorityError::Reference(format!("cannot listen on {}: {e}", config.listen))
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| AuthorityError::Reference(format!("local address: {e}")))?;

        let (stop_tx, stop_rx) = watch::channel(false);
        let state = Arc::new(Shared {
            name: config.name.clone(),
            mode: Mutex::new((FailMode::Ok, None)),
            inspections: Mutex::new(HashMap::new()),
            records: Mutex::new(Records {
                list: records,
                keys,
                withdrawn,
                file,
            }),
            prerequisites: Mutex::new(config.prerequisites.clone()),
            refer: config.refer.iter().cloned().collect(),
            slow_delay: config.slow_delay,
            stop: stop_rx.clone(),
            counters: Counters::default(),
        });

        let (conn_tx, conn_rx) = mpsc::channel(64);
        let acceptor_task = tokio::spawn(accept_loop(
            listener,
            acceptor,
            conn_tx,
            state.clone(),
            stop_rx.clone(),
        ));
        let router = Router::new()
            .route(INSPECTIONS_PATH, post(post_inspection))
            .route(RECORDS_PATH, post(post_record).get(get_records))
            .route(PREREQUISITES_PATH, post(post_prerequisites))
            .route("/control/fail", post(post_fail))
            .route("/control/prerequisites", post(post_prerequisite_control))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(state.clone());
        let mut stop = stop_rx;
        let server = tokio::spawn(async move {
            let listener = TlsListener {
                rx: conn_rx,
                local: local_addr,
            };
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        });
        tracing::info!(name = %config.name, addr = %local_addr, "reference authority started");
        Ok(ReferenceHandle {
            local_addr,
            state,
            stop: stop_tx,
            server: Some(server),
            acceptor: Some(acceptor_task),
        })
    }
}

/// A running reference service. Dropping it stops the service.
pub struct ReferenceHandle {
    local_addr: SocketAddr,
    state: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ReferenceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceHandle")
            .field("name", &self.state.name)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl ReferenceHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://<address>` (127.0.0.1 when listening on every address).
    pub fn base_url(&self) -> String {
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        format!("https://{addr}")
    }

    /// Same as `POST /control/fail`.
    pub fn set_mode(&self, mode: FailMode, for_: Option<Duration>) {
        self.state.set_mode(mode, for_);
    }

    /// The mode in force now.
    pub fn mode(&self) -> FailMode {
        self.state.mode()
    }

    /// Same as `POST /control/prerequisites`: what the service holds for the document numbered
    /// `document` (`None`: for every document not set one by one).
    pub fn set_prerequisites(&self, document: Option<&str>, status: PrerequisiteStatus) {
        let mut book = lock(&self.state.prerequisites);
        match document {
            Some(number) => {
                book.documents.insert(number.to_owned(), status);
            }
            None => book.default = status,
        }
    }

    /// Requests received on `POST /v1/prerequisites`.
    pub fn prerequisite_requests(&self) -> u64 {
        self.state
            .counters
            .prerequisite_requests
            .load(Ordering::SeqCst)
    }

    /// The stored records, oldest first.
    pub fn records(&self) -> Vec<StoredRecord> {
        lock(&self.state.records).list.clone()
    }

    /// Distinct inspections (idempotency keys) answered.
    pub fn inspections(&self) -> usize {
        lock(&self.state.inspections).len()
    }

    /// Requests received on `POST /v1/inspections`, repeats and refusals included.
    pub fn inspection_requests(&self) -> u64 {
        self.state
            .counters
            .inspection_requests
            .load(Ordering::SeqCst)
    }

    /// Requests received on `POST /v1/records`, repeats and refusals included.
    pub fn record_requests(&self) -> u64 {
        self.state.counters.record_requests.load(Ordering::SeqCst)
    }

    /// Repeated record keys answered 409.
    pub fn duplicate_records(&self) -> u64 {
        self.state.counters.duplicates.load(Ordering::SeqCst)
    }

    /// TLS handshakes refused or failed (no client certificate, one from another CA, …).
    pub fn handshake_failures(&self) -> u64 {
        self.state
            .counters
            .handshake_failures
            .load(Ordering::SeqCst)
    }

    /// Stops accepting (the listening socket is closed when this returns, so the address can be
    /// bound again), lets answers in flight finish (a `slow` hold is cut short), and waits for
    /// the server (aborting it after a few seconds).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in [self.acceptor.take(), self.server.take()]
            .into_iter()
            .flatten()
        {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for ReferenceHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = &self.acceptor {
            task.abort();
        }
    }
}

#[derive(Default)]
struct Counters {
    inspection_requests: AtomicU64,
    record_requests: AtomicU64,
    duplicates: AtomicU64,
    handshake_failures: AtomicU64,
    prerequisite_requests: AtomicU64,
}

struct Records {
    list: Vec<StoredRecord>,
    keys: HashMap<String, usize>,
    /// Consent keys a `consent_withdrawn` record named.
    withdrawn: HashSet<String>,
    file: Option<File>,
}

/// The consent key a stored withdrawal names.
fn withdrawn_key(r: &StoredRecord) -> Option<String> {
    match &r.record {
        AuthorityRecord::ConsentWithdrawn { consent_key, .. } => Some(consent_key.clone()),
        _ => None,
    }
}

struct Shared {
    name: String,
    /// The mode and when it reverts to `Ok`.
    mode: Mutex<(FailMode, Option<Instant>)>,
    inspections: Mutex<HashMap<String, Verdict>>,
    records: Mutex<Records>,
    prerequisites: Mutex<PrerequisiteBook>,
    refer: HashSet<String>,
    slow_delay: Duration,
    stop: watch::Receiver<bool>,
    counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn set_mode(&self, mode: FailMode, for_: Option<Duration>) {
        *lock(&self.mode) = (mode, for_.map(|d| Instant::now() + d));
        tracing::info!(name = %self.name, ?mode, for_ms = for_.map(|d| d.as_millis() as u64), "reference authority mode");
    }

    fn mode(&self) -> FailMode {
        let mut m = lock(&self.mode);
        if let (_, Some(until)) = *m
            && Instant::now() >= until
        {
            *m = (FailMode::Ok, None);
        }
        m.0
    }

    /// In `slow` mode, holds the answer (cut short by shutdown).
    async fn hold_if_slow(&self, mode: FailMode) {
        if mode == FailMode::Slow {
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(self.slow_delay) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, body.into()).into_response()
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => (status, [(CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode: {e}"),
        ),
    }
}

fn unavailable() -> Response {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable (reference authority told to fail)",
    )
}

/// The idempotency key: present, 1–255 visible ASCII characters; else why not (a 400).
fn idempotency_key(headers: &HeaderMap) -> Result<String, &'static str> {
    let v = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or("missing Idempotency-Key header")?;
    v.to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .ok_or("Idempotency-Key must be 1-255 visible ASCII characters")
}

/// A JSON decoding error without echoing any of the input (it is personal data).
fn decode_error(what: &str, e: &serde_json::Error) -> Response {
    text(
        StatusCode::BAD_REQUEST,
        format!(
            "body is not {what} ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
    )
}

async fn post_inspection(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.counters
        .inspection_requests
        .fetch_add(1, Ordering::SeqCst);
    let mode = s.mode();
    if mode == FailMode::Unavailable {
        return unavailable();
    }
    if mode == FailMode::Flood {
        return flood();
    }
    if mode == FailMode::Garbage {
        return text(
            StatusCode::OK,
            "<html>internal portal: session expired</html>",
        );
    }
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    let request: InspectionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return decode_error("an inspection request", &e),
    };
    let verdict = lock(&s.inspections)
        .entry(key)
        .or_insert_with(|| {
            if s.refer.contains(&request.document.number) {
                Verdict::Refer {
                    reason: REFER_REASON.to_owned(),
                }
            } else {
                Verdict::Cleared
            }
        })
        .clone();
    s.hold_if_slow(mode).await;
    json(StatusCode::OK, &verdict)
}

async fn post_record(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    s.counters.record_requests.fetch_add(1, Ordering::SeqCst);
    let mode = s.mode();
    if mode == FailMode::Unavailable {
        return unavailable();
    }
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    let record: AuthorityRecord = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return decode_error("an authority record", &e),
    };
    let response = {
        let mut records = lock(&s.records);
        if let Some(&i) = records.keys.get(&key) {
            if records.list[i].record == record {
                s.counters.duplicates.fetch_add(1, Ordering::SeqCst);
                text(StatusCode::CONFLICT, "already recorded under this key")
            } else {
                text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "this Idempotency-Key was used for a different record",
                )
            }
        } else if matches!(record, AuthorityRecord::RegistrationConsent { .. })
            && records.withdrawn.contains(&key)
        {
            text(
                StatusCode::GONE,
                "this consent was withdrawn by the lane; it is not recorded",
            )
        } else {
            let stored = StoredRecord {
                key: key.clone(),
                received_at: Utc::now(),
                record,
            };
            let appended = match records.file.as_mut() {
                Some(file) => append_line(file, &stored),
                None => Ok(()),
            };
            match appended {
                Ok(()) => {
                    let i = records.list.len();
                    if let Some(k) = withdrawn_key(&stored) {
                        records.withdrawn.insert(k);
                    }
                    records.list.push(stored);
                    records.keys.insert(key, i);
                    text(StatusCode::CREATED, "recorded")
                }
                Err(e) => {
                    tracing::error!(name = %s.name, "records file: {e}");
                    text(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the record")
                }
            }
        }
    };
    s.hold_if_slow(mode).await;
    response
}

async fn post_prerequisites(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    s.counters
        .prerequisite_requests
        .fetch_add(1, Ordering::SeqCst);
    let mode = s.mode();
    if mode == FailMode::Unavailable {
        return unavailable();
    }
    if mode == FailMode::Flood {
        return flood();
    }
    let query: PrerequisiteQuery = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => return decode_error("a prerequisite query", &e),
    };
    let status = lock(&s.prerequisites).get(&query.document.number);
    s.hold_if_slow(mode).await;
    json(StatusCode::OK, &status)
}

async fn post_prerequisite_control(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let control: PrerequisiteControl = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return decode_error("a prerequisite control", &e),
    };
    let mut book = lock(&s.prerequisites);
    match control.document {
        Some(number) => {
            book.documents.insert(number, control.status);
        }
        None => book.default = control.status,
    }
    text(StatusCode::NO_CONTENT, "")
}

async fn get_records(State(s): State<Arc<Shared>>) -> Response {
    let list = lock(&s.records).list.clone();
    json(StatusCode::OK, &list)
}

async fn post_fail(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let control: FailControl = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"mode\": \"unavailable\"|\"slow\"|\"garbage\"|\"ok\", \"for_ms\": optional}}: {e}"
                ),
            );
        }
    };
    s.set_mode(control.mode, control.for_ms.map(Duration::from_millis));
    json(StatusCode::OK, &control)
}

fn append_line(file: &mut File, record: &StoredRecord) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data()
}

/// Reads the records file (absent: none). A line that does not parse (a torn last write) is
/// skipped with a warning; a repeated key keeps its first record.
fn load_records(path: &Path) -> Result<Vec<StoredRecord>, AuthorityError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(AuthorityError::Reference(format!(
                "{}: cannot read: {e}",
                path.display()
            )));
        }
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| {
            AuthorityError::Reference(format!("{}: cannot read: {e}", path.display()))
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<StoredRecord>(&line) {
            Ok(r) => {
                if seen.insert(r.key.clone()) {
                    out.push(r);
                }
            }
            Err(e) => tracing::warn!(
                file = %path.display(),
                line = n + 1,
                "skipping an unreadable records line ({:?} error)",
                e.classify()
            ),
        }
    }
    Ok(out)
}

/// Accepts TCP connections and hands each to its own handshake task; established TLS streams go
/// to the HTTP server through `tx`. Failed handshakes are counted and dropped.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    state: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        let state = state.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => {
                    state
                        .counters
                        .handshake_failures
                        .fetch_add(1, Ordering::SeqCst);
                    tracing::info!(name = %state.name, %peer, "tls handshake refused: {e}");
                }
                Err(_) => {
                    state
                        .counters
                        .handshake_failures
                        .fetch_add(1, Ordering::SeqCst);
                    tracing::info!(name = %state.name, %peer, "tls handshake timed out");
                }
            }
        });
    }
}

/// The established TLS connections, as axum's listener.
struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop ended (shutdown): wait for the graceful-shutdown signal.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A throwaway PKI for tests and demos: one CA, a server certificate for `localhost` and
/// 127.0.0.1 (plus any extra names), and a client certificate, all ECDSA P-256, PEM.
#[derive(Clone)]
pub struct DemoPki {
    /// The CA certificate (trust anchor on both sides).
    pub ca_pem: String,
    /// The server certificate.
    pub server_cert_pem: String,
    /// The server key.
    pub server_key_pem: String,
    /// The client certificate.
    pub client_cert_pem: String,
    /// The client key.
    pub client_key_pem: String,
}

impl std::fmt::Debug for DemoPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DemoPki { .. }")
    }
}

impl DemoPki {
    /// Makes the CA and both certificates. `extra_names` are added to the server certificate
    /// (DNS names or IP addresses).
    /// The client certificate carries the Modbus/TCP Security role
    /// [`LANE_ROLE`](crate::lane::device_tls::LANE_ROLE), so the same PKI serves a lane's
    /// device network ([`DemoPki::generate_with_role`] for another role or none).
    pub fn generate(extra_names: &[&str]) -> Result<DemoPki, AuthorityError> {
        DemoPki::generate_with_role(extra_names, Some(crate::lane::device_tls::LANE_ROLE))
    }

    /// [`DemoPki::generate`] whose client certificate carries the Modbus/TCP Security `role`
    /// (none: no role extension).
    pub fn generate_with_role(
        extra_names: &[&str],
        role: Option<&str>,
    ) -> Result<DemoPki, AuthorityError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let err = |e: rcgen::Error| AuthorityError::Reference(format!("demo pki: {e}"));
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Clearway reference authority demo CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        names.extend(extra_names.iter().map(|s| (*s).to_owned()));
        let server_key = KeyPair::generate().map_err(err)?;
        let mut server = CertificateParams::new(names).map_err(err)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "reference authority");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer).map_err(err)?;

        let client_key = KeyPair::generate().map_err(err)?;
        let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        client
            .distinguished_name
            .push(DnType::CommonName, "clearway lane");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.custom_extensions = role
            .map(crate::lane::device_tls::modbus_role_extension)
            .into_iter()
            .collect();
        let client_cert = client.signed_by(&client_key, &issuer).map_err(err)?;

        Ok(DemoPki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// A [`ReferenceConfig`] serving this PKI's server certificate and trusting its CA.
    pub fn reference_config(&self) -> ReferenceConfig {
        ReferenceConfig::new(
            self.server_cert_pem.as_bytes(),
            self.server_key_pem.as_bytes(),
            self.ca_pem.as_bytes(),
        )
    }

    /// Writes `ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key` into `dir`
    /// (keys mode 0600).
    pub fn write(&self, dir: &Path) -> Result<(), AuthorityError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            AuthorityError::Reference(format!("{}: cannot create: {e}", dir.display()))
        })?;
        for (name, body, secret) in [
            ("ca.pem", &self.ca_pem, false),
            ("server.pem", &self.server_cert_pem, false),
            ("server.key", &self.server_key_pem, true),
            ("client.pem", &self.client_cert_pem, false),
            ("client.key", &self.client_key_pem, true),
        ] {
            let path = dir.join(name);
            let mut opts = OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            if secret {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            #[cfg(not(unix))]
            let _ = secret;
            opts.open(&path)
                .and_then(|mut f| f.write_all(body.as_bytes()))
                .map_err(|e| {
                    AuthorityError::Reference(format!("{}: cannot write: {e}", path.display()))
                })?;
        }
        Ok(())
    }
}
