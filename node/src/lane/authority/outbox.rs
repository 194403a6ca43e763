//! The durable outbox: records for the authorities, queued in sled, sealed at rest, delivered in
//! order and exactly once from the receiver's view.
//!
//! # Layout (trees of the lane's sled database)
//!
//! * `outbox_meta`: `incarnation` (random, made when the outbox is first created), `seq/<authority>`
//!   (the next sequence number, u64 big-endian), `seal_check` (proves the seal key at open).
//! * `outbox_<authority>`: the queue. Key: sequence number, u64 big-endian (so sled's order is the
//!   FIFO order). Value: an envelope, below.
//! * `outbox_dead_<authority>`: dead letters (refused for good by the authority, or unreadable),
//!   under their old sequence number: postcard of key, reason, time and the original envelope.
//!
//! # Idempotency keys
//!
//! `<lane-id>-<authority>-<incarnation>-<seq>`, assigned in the same sled transaction that queues
//! the record, stored in the envelope and sent with every attempt. The incarnation (12 hex
//! digits) keeps keys unique if the lane's database is ever recreated and its sequence numbers
//! start again: the receiver would otherwise drop the new records as repeats.
//!
//! # Sealing and key epochs
//!
//! The record (JSON) is sealed with ChaCha20-Poly1305 under the current key of the outbox's
//! [`Keyring`] (its own key file, beside the node's keyring, never in the data directory), with
//! a fresh random 96-bit nonce per record and the envelope's header (queue time, idempotency
//! key) as associated data: no byte of an envelope changes unnoticed, and an envelope does not
//! open under another key. Envelope, version 2:
//!
//! ```text
//! u8 version = 2 | u64 BE queued_at (unix ms) | u8 key length | key (ASCII) | u32 BE key epoch | 12-byte nonce | ciphertext+tag
//! ```
//!
//! The sequence numbers, the keys and the queue times are in the clear; names and document
//! numbers are not.
//!
//! Records name travellers, so a cancellation must reach them too. Delivered records are removed
//! at once, but sled rewrites out of place and their sealed bytes may linger on disk. After each
//! applied cancellation the lane calls [`Outbox::rotate`]: a fresh key epoch, every record still
//! queued or parked re-sealed under it, the old key destroyed in the key file. Whatever lingers
//! was sealed under a key that no longer exists.
//!
//! Version 1 envelopes (one fixed [`SealKey`], before key epochs) are still read when that legacy
//! key is given, and the first rotation, done at open, re-seals them as version 2.
//!
//! # Durability and delivery
//!
//! `push` returns once sled has flushed the record to disk. [`Outbox::run`] (one task per
//! authority) takes the oldest record, delivers it, and removes it only after the authority
//! acknowledged it (2xx, or 409 "already have it"); a crash between acknowledgement and removal
//! means one more attempt with the same key, which the receiver answers with 409. Retryable
//! failures are retried — the same record, never a later one first — after a capped exponential
//! backoff with jitter ([`Backoff`]); permanent refusals park the record as a dead letter.
//!
//! # A full or failing disk
//!
//! When a write cannot be flushed (a full disk, an I/O error) `push_all` fails, and the records it
//! wrote are never delivered: sled keeps an unflushed write visible in memory, so the delivery
//! tasks deliver only up to each queue's last sequence number known to be on disk (`durable`).
//! sled then refuses every later operation, so the outbox is *unwritable*
//! ([`Outbox::unwritable`]) until [`Outbox::recover`] reopens the database from disk (which drops
//! the unflushed records) and a probe write reaches it. The lane refuses passages meanwhile: the
//! records that make a passage lawful are stored before its gates open.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, Utc};
use clearway_gallery::Authority;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::AuthorityClient;
use super::metrics::AuthorityMetrics;
use crate::lane::procedure::{AuthorityRecord, Delivery};
use crate::store::keyring::Keyring;

const META_TREE: &str = "outbox_meta";
const INCARNATION: &[u8] = b"incarnation";
const SEAL_CHECK: &[u8] = b"seal_check";
/// Log index of the latest cancellation the outbox rotated its key for (u64 BE).
const ERASED_UPTO: &[u8] = b"erased_upto";
const SEAL_CHECK_PLAIN: &[u8] = b"clearway outbox seal key check";
/// Written and removed by [`Outbox::recover`] to prove the disk takes writes again.
const PROBE: &[u8] = b"probe";

/// How long [`Outbox::recover`] waits for a closed database's file lock to be let go.
const LOCK_RELEASE_WAIT: Duration = Duration::from_secs(3);

/// Opens the sled database at `path` again after it was closed. sled lets go of its file lock when
/// its background flusher ends, which can be a moment after the last handle was dropped (seen in CI
/// as "could not acquire lock … WouldBlock"), so a held lock is retried for a few seconds.
fn open_when_released(path: &Path) -> Result<sled::Db, OutboxError> {
    let deadline = std::time::Instant::now() + LOCK_RELEASE_WAIT;
    loop {
        match sled::open(path) {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}
const AAD_PREFIX: &[u8] = b"clearway-outbox/v1\0";
/// The keyring's "tree" (associated-data prefix) for version 2 envelopes.
const SEAL_TREE_V2: &[u8] = b"clearway-outbox/v2";
const ENVELOPE_V1: u8 = 1;
const ENVELOPE_V2: u8 = 2;
const NONCE_LEN: usize = 12;

/// The keys that open the outbox: its epoch keyring and, while an outbox from before key epochs
/// is migrated, the single key its version 1 envelopes were sealed with.
#[derive(Clone)]
pub struct OutboxKeys {
    ring: Arc<Keyring>,
    legacy: Option<SealKey>,
}

impl OutboxKeys {
    /// The keys of an outbox sealed under `ring`.
    pub fn new(ring: Arc<Keyring>) -> OutboxKeys {
        OutboxKeys { ring, legacy: None }
    }

    /// Also opens version 1 envelopes sealed with `legacy`; [`Outbox::open`] then re-seals them.
    pub fn with_legacy(mut self, legacy: SealKey) -> OutboxKeys {
        self.legacy = Some(legacy);
        self
    }

    /// The current key epoch.
    pub fn epoch(&self) -> u32 {
        self.ring.epoch()
    }
}

impl std::fmt::Debug for OutboxKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxKeys")
            .field("epoch", &self.ring.epoch())
            .field("legacy", &self.legacy.is_some())
            .finish()
    }
}

/// The single key of a version 1 outbox (before key epochs). Wiped from memory when dropped;
/// never printed.
#[derive(Clone)]
pub struct SealKey(Zeroizing<[u8; 32]>);

impl SealKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> SealKey {
        SealKey(Zeroizing::new(bytes))
    }

    /// A fresh random key (tests, demos; a lane derives its key from its keyring).
    pub fn generate() -> SealKey {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(k.as_mut());
        SealKey(k)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.0.as_ref()))
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

/// Retry schedule after retryable failures: `initial × factor^n`, capped at `max`, then
/// jittered down by up to `jitter` (0.5: somewhere between half and all of it), so lanes that
/// lost the same authority do not all come back at the same instant. A `Retry-After` from the
/// authority raises the delay (still capped at `max`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Growth per failed attempt (≥ 1).
    pub factor: f64,
    /// Largest delay.
    pub max: Duration,
    /// Fraction (0–1) of each delay that is randomised away.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 200 ms, ×2, at most 30 s, jitter 0.5.
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(200),
            factor: 2.0,
            max: Duration::from_secs(30),
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry), for a random draw `r` in
    /// `[0, 1)`.
    pub fn delay(&self, attempt: u32, r: f64) -> Duration {
        let max = self.max.as_secs_f64();
        let factor = if self.factor.is_finite() {
            self.factor.max(1.0)
        } else {
            1.0
        };
        let base = (self.initial.as_secs_f64() * factor.powi(attempt.min(1_000) as i32)).min(max);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let d = base * (1.0 - jitter * r.clamp(0.0, 1.0));
        Duration::from_secs_f64(d.clamp(0.0, max))
    }

    fn next(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let d = self.delay(attempt, rand::rng().random::<f64>());
        match retry_after {
            Some(ra) => d.max(ra).min(self.max.max(self.initial)),
            None => d,
        }
    }
}

/// What can go wrong with the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// sled failed (disk full, I/O error, database already open elsewhere).
    #[error("outbox storage: {0}")]
    Storage(#[from] sled::Error),
    /// Bad arguments (lane id, a client for another authority).
    #[error("outbox: {0}")]
    Config(String),
    /// The seal key is not the one this outbox was created with: its records cannot be opened.
    #[error(
        "outbox: the seal key does not open this outbox's records (it was created with another key); refusing to start"
    )]
    WrongKey,
    /// An entry on disk cannot be read. The delivery task parks such entries as dead letters.
    #[error("outbox {authority}: entry {seq} is unreadable ({reason})")]
    Corrupt {
        /// Whose queue.
        authority: &'static str,
        /// Its sequence number (0 when even that is unreadable).
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// Sealing failed (should not happen).
    #[error("outbox: sealing failed")]
    Seal,
    /// The key file could not be read or rewritten (a rotation stops; nothing is lost).
    #[error("outbox keys: {0}")]
    Keys(String),
    /// [`Outbox::run`] is already running for this authority in this process.
    #[error("outbox {0}: a delivery task is already running")]
    AlreadyRunning(&'static str),
    /// The outbox's filesystem has less free space than the reserve kept for the records of
    /// passages ([`Outbox::with_reserve`]).
    #[error("outbox disk: {available} bytes free, below the {reserve}-byte reserve for records")]
    DiskLow {
        /// Bytes available to the process.
        available: u64,
        /// The reserve.
        reserve: u64,
    },
    /// A write failed earlier and the database is not reopened yet ([`Outbox::recover`]).
    #[error("outbox unwritable since a write failed ({0}); waiting for the disk")]
    Unwritable(String),
    /// No dead letter with that sequence number.
    #[error("outbox {authority}: no dead letter {seq}")]
    NoDeadLetter {
        /// Whose queue.
        authority: &'static str,
        /// The sequence number asked for.
        seq: u64,
    },
}

impl OutboxError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            OutboxError::Storage(_) => "storage",
            OutboxError::Config(_) => "config",
            OutboxError::WrongKey => "wrong_key",
            OutboxError::Corrupt { .. } => "corrupt",
            OutboxError::Seal => "seal",
            OutboxError::Keys(_) => "keys",
            OutboxError::AlreadyRunning(_) => "already_running",
            OutboxError::Unwritable(_) => "unwritable",
            OutboxError::DiskLow { .. } => "disk_low",
            OutboxError::NoDeadLetter { .. } => "no_dead_letter",
        }
    }
}

impl From<TransactionError<OutboxError>> for OutboxError {
    fn from(e: TransactionError<OutboxError>) -> OutboxError {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => OutboxError::Storage(e),
        }
    }
}

/// A record parked because it cannot be delivered. Its content stays sealed on disk and is not
/// part of this summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its sequence number in the queue it came from.
    pub seq: u64,
    /// Its idempotency key, if readable.
    pub key: Option<String>,
    /// Why it was parked.
    pub reason: String,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct DeadEntry {
    key: Option<String>,
    reason: String,
    parked_at_ms: u64,
    envelope: Vec<u8>,
}

/// The oldest record of a queue, opened.
struct Head {
    seq: u64,
    key: String,
    record: AuthorityRecord,
}

/// The open database and its trees; replaced whole when [`Outbox::recover`] reopens it.
struct Store {
    db: sled::Db,
    meta: sled::Tree,
    queues: [sled::Tree; 2],
    dead: [sled::Tree; 2],
}

impl Store {
    fn open(db: &sled::Db) -> Result<Store, sled::Error> {
        let open = |a: Authority| db.open_tree(Outbox::tree_name(a));
        let open_dead = |a: Authority| db.open_tree(Outbox::dead_tree_name(a));
        Ok(Store {
            db: db.clone(),
            meta: db.open_tree(META_TREE)?,
            queues: [open(Authority::Macao)?, open(Authority::Mainland)?],
            dead: [
                open_dead(Authority::Macao)?,
                open_dead(Authority::Mainland)?,
            ],
        })
    }

    /// The highest sequence number in each queue (0 when empty).
    fn last_seqs(&self) -> Result<[u64; 2], sled::Error> {
        let last = |q: &sled::Tree| -> Result<u64, sled::Error> {
            Ok(q.last()?.and_then(|(k, _)| decode_seq(&k)).unwrap_or(0))
        };
        Ok([last(&self.queues[0])?, last(&self.queues[1])?])
    }
}

/// A read hold on the open [`Store`].
struct StoreRef<'a>(RwLockReadGuard<'a, Option<Store>>);

impl std::ops::Deref for StoreRef<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        // `Outbox::store` makes a `StoreRef` only over `Some`.
        self.0.as_ref().expect("a StoreRef holds an open store")
    }
}

struct Inner {
    /// `None` only after a failed write whose database could not be reopened yet.
    store: RwLock<Option<Store>>,
    /// Where the database lives, when the outbox opened it itself (it can then reopen it).
    path: Option<PathBuf>,
    /// Why the outbox is unwritable, from a failed write until [`Outbox::recover`] succeeds.
    broken: Mutex<Option<String>>,
    /// Per queue, the highest sequence number known to be on disk: the delivery tasks deliver
    /// nothing beyond it (sled shows an unflushed write in memory).
    durable: [AtomicU64; 2],
    lane_id: String,
    incarnation: String,
    keys: OutboxKeys,
    /// Held shared while an envelope is sealed and stored (push, requeue), exclusively while a
    /// rotation re-seals (no envelope under the old key can land after the re-sealing pass) or
    /// the database is reopened. Taken before `store`.
    rotation: RwLock<()>,
    metrics: AuthorityMetrics,
    depth: [AtomicU64; 2],
    notify: [Notify; 2],
    running: [AtomicBool; 2],
}

/// The durable outbox of one lane: a queue per authority. Cheap to clone; clones share the queues.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
    backoff: Backoff,
    /// Free bytes the outbox's filesystem must keep; 0: none.
    reserve: u64,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("lane_id", &self.inner.lane_id)
            .field("incarnation", &self.inner.incarnation)
            .field(
                "depth",
                &[
                    self.depth(Authority::Macao),
                    self.depth(Authority::Mainland),
                ],
            )
            .finish_non_exhaustive()
    }
}

fn idx(a: Authority) -> usize {
    match a {
        Authority::Macao => 0,
        Authority::Mainland => 1,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn ms_to_utc(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms as i64).unwrap_or_default()
}

fn seq_key(a: Authority) -> Vec<u8> {
    format!("seq/{}", a.as_str()).into_bytes()
}

fn check_lane_id(id: &str) -> Result<(), OutboxError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OutboxError::Config(format!(
            "lane id {id:?} must be 1-64 characters of [A-Za-z0-9._:/-]"
        )))
    }
}

/// A parsed envelope, borrowing the stored bytes.
pub(super) struct Envelope<'a> {
    pub(super) version: u8,
    pub(super) queued_at_ms: u64,
    pub(super) key: &'a str,
    /// Version 1: nonce ‖ ciphertext ‖ tag. Version 2: epoch ‖ nonce ‖ ciphertext ‖ tag.
    sealed: &'a [u8],
}

pub(super) fn parse_envelope(bytes: &[u8]) -> Result<Envelope<'_>, String> {
    let (&version, rest) = bytes.split_first().ok_or("empty entry")?;
    let epoch_len = match version {
        ENVELOPE_V1 => 0,
        ENVELOPE_V2 => 4,
        _ => return Err(format!("unknown envelope version {version}")),
    };
    if rest.len() < 9 {
        return Err("truncated header".into());
    }
    let queued_at_ms = u64::from_be_bytes(rest[..8].try_into().map_err(|_| "truncated header")?);
    let key_len = rest[8] as usize;
    let rest = &rest[9..];
    if rest.len() < key_len + epoch_len + NONCE_LEN + 16 {
        return Err("truncated entry".into());
    }
    let key = std::str::from_utf8(&rest[..key_len]).map_err(|_| "key is not text")?;
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("key is not visible ASCII".into());
    }
    Ok(Envelope {
        version,
        queued_at_ms,
        key,
        sealed: &rest[key_len..],
    })
}

/// Associated data of a version 1 envelope: the whole header (version prefix, queue time, key),
/// so that no byte of an envelope can change unnoticed.
fn aad(queued_at_ms: u64, key: &str) -> Vec<u8> {
    [AAD_PREFIX, &queued_at_ms.to_be_bytes(), key.as_bytes()].concat()
}

/// The keyring slot of a version 2 envelope: queue time and key (the version is in the tree).
fn slot_v2(queued_at_ms: u64, key: &str) -> Vec<u8> {
    [&queued_at_ms.to_be_bytes()[..], key.as_bytes()].concat()
}

impl Outbox {
    /// Opens (creating on first use) the outbox in the lane's database. Open it once per database
    /// and clone the `Outbox` to share it (the depth counters and the delivery-task guard live in
    /// the opened value). `lane_id` (1–64
    /// characters of `[A-Za-z0-9._:/-]`) prefixes every idempotency key; `seal` must be the same
    /// key every time ([`OutboxError::WrongKey`] otherwise).
    pub fn open(
        db: &sled::Db,
        lane_id: &str,
        keys: OutboxKeys,
        metrics: AuthorityMetrics,
    ) -> Result<Outbox, OutboxError> {
        Outbox::open_in(db, None, lane_id, keys, metrics)
    }

    fn open_in(
        db: &sled::Db,
        path: Option<PathBuf>,
        lane_id: &str,
        keys: OutboxKeys,
        metrics: AuthorityMetrics,
    ) -> Result<Outbox, OutboxError> {
        check_lane_id(lane_id)?;
        let store = Store::open(db)?;
        let meta = &store.meta;

        // The incarnation and the seal check, made once.
        let mut fresh = [0u8; 6];
        rand::rng().fill_bytes(&mut fresh);
        let _ = meta.compare_and_swap(
            INCARNATION,
            None as Option<&[u8]>,
            Some(hex::encode(fresh).as_bytes()),
        )?;
        let incarnation = meta
            .get(INCARNATION)?
            .and_then(|v| String::from_utf8(v.to_vec()).ok())
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| OutboxError::Corrupt {
                authority: "meta",
                seq: 0,
                reason: "incarnation unreadable".into(),
            })?;
        let check = seal_bytes(&keys, "seal_check", SEAL_CHECK_PLAIN, 0)?;
        let _ = meta.compare_and_swap(SEAL_CHECK, None as Option<&[u8]>, Some(check))?;
        let stored = meta.get(SEAL_CHECK)?.ok_or(OutboxError::WrongKey)?;
        match open_bytes(&keys, &stored) {
            Ok((_, plain)) if plain.as_slice() == SEAL_CHECK_PLAIN => {}
            _ => return Err(OutboxError::WrongKey),
        }
        db.flush()?;

        let depth = [
            AtomicU64::new(store.queues[0].len() as u64),
            AtomicU64::new(store.queues[1].len() as u64),
        ];
        let durable = store.last_seqs()?.map(AtomicU64::new);
        let outbox = Outbox {
            inner: Arc::new(Inner {
                store: RwLock::new(Some(store)),
                path,
                broken: Mutex::new(None),
                durable,
                lane_id: lane_id.to_owned(),
                incarnation,
                keys,
                rotation: RwLock::new(()),
                metrics,
                depth,
                notify: [Notify::new(), Notify::new()],
                running: [AtomicBool::new(false), AtomicBool::new(false)],
            }),
            backoff: Backoff::default(),
            reserve: 0,
        };
        for a in Authority::ALL {
            outbox.refresh_gauges(a);
        }
        if outbox.inner.keys.legacy.is_some() || outbox.inner.keys.ring.rotating() {
            // Migrate version 1 envelopes, or finish a rotation a crash interrupted.
            outbox.rotate()?;
        }
        outbox
            .inner
            .metrics
            .key_epoch
            .set(i64::from(outbox.key_epoch()));
        Ok(outbox)
    }

    /// Opens the sled database at `path` and the outbox in it.
    pub fn open_path(
        path: &Path,
        lane_id: &str,
        keys: OutboxKeys,
        metrics: AuthorityMetrics,
    ) -> Result<Outbox, OutboxError> {
        let db = sled::open(path)?;
        Outbox::open_in(&db, Some(path.to_owned()), lane_id, keys, metrics)
    }

    /// The open store, or why there is none.
    fn store(&self) -> Result<StoreRef<'_>, OutboxError> {
        let guard = self.inner.store.read().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            return Err(OutboxError::Unwritable(
                self.unwritable()
                    .unwrap_or_else(|| "the database is closed".into()),
            ));
        }
        Ok(StoreRef(guard))
    }

    /// Why the outbox cannot store records now (a write failed and the database has not been
    /// reopened since); `None` while it can.
    pub fn unwritable(&self) -> Option<String> {
        self.inner
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The same outbox, refusing writes while its filesystem has less than `bytes` free (only
    /// when opened with [`Outbox::open_path`]). sled writes into log segments it has already
    /// grown, so on a full disk a write can succeed long after the disk filled, or fail at any
    /// time: a reserve makes the outbox stop, and the lane refuse passages, while there is still
    /// room, rather than at a write that fails.
    pub fn with_reserve(mut self, bytes: u64) -> Outbox {
        self.reserve = bytes;
        self
    }

    /// Checks the reserve of free space ([`Outbox::with_reserve`]); a shortfall makes the outbox
    /// unwritable until [`Outbox::recover`]. Cheap (one `statvfs`).
    pub fn check_space(&self) -> Result<(), OutboxError> {
        let (Some(path), true) = (&self.inner.path, self.reserve > 0) else {
            return Ok(());
        };
        let st = rustix::fs::statvfs(path).map_err(|e| {
            OutboxError::Storage(sled::Error::Io(std::io::Error::from_raw_os_error(
                e.raw_os_error(),
            )))
        })?;
        let available = st.f_bavail.saturating_mul(st.f_frsize);
        if available < self.reserve {
            let e = OutboxError::DiskLow {
                available,
                reserve: self.reserve,
            };
            self.failed(&e);
            return Err(e);
        }
        Ok(())
    }

    /// Notes a failed storage operation: the outbox is unwritable until [`Outbox::recover`].
    fn failed(&self, e: &OutboxError) {
        if matches!(e, OutboxError::Storage(_) | OutboxError::DiskLow { .. }) {
            self.mark_unwritable(e);
        }
    }

    /// The outbox is unwritable, because of `e`, until [`Outbox::recover`].
    fn mark_unwritable(&self, e: &OutboxError) {
        let mut broken = self.inner.broken.lock().unwrap_or_else(|e| e.into_inner());
        if broken.is_none() {
            tracing::error!(error = %e, "The outbox cannot write; no passage until it can.");
            *broken = Some(e.to_string());
        }
        self.inner.metrics.writable.set(0);
    }

    /// Makes an unwritable outbox write again, if the disk lets it: checks the reserve, closes
    /// the failed database, reopens it from disk (records whose write failed are gone; every
    /// record stored before is there), and proves it with a probe write and flush. Blocking.
    /// `Ok` when the outbox is writable (at once when it was); an error says why not yet (call
    /// again later).
    pub fn recover(&self) -> Result<(), OutboxError> {
        if self.unwritable().is_none() {
            return Ok(());
        }
        self.check_space()?;
        let inner = &self.inner;
        let path = inner.path.as_ref().ok_or_else(|| {
            OutboxError::Config("opened on a database it does not own: cannot reopen it".into())
        })?;
        let _exclusive = inner.rotation.write().unwrap_or_else(|e| e.into_inner());
        let mut slot = inner.store.write().unwrap_or_else(|e| e.into_inner());
        // Close the failed database first: sled holds a lock on its files while open.
        *slot = None;
        let db = open_when_released(path)?;
        let store = Store::open(&db)?;
        store.meta.insert(PROBE, &now_ms().to_be_bytes())?;
        db.flush()?;
        store.meta.remove(PROBE)?;
        db.flush()?;
        let seqs = store.last_seqs()?;
        for i in 0..2 {
            inner.depth[i].store(store.queues[i].len() as u64, Ordering::SeqCst);
            inner.durable[i].store(seqs[i], Ordering::SeqCst);
        }
        *slot = Some(store);
        drop(slot);
        *inner.broken.lock().unwrap_or_else(|e| e.into_inner()) = None;
        inner.metrics.writable.set(1);
        tracing::info!("The outbox writes again.");
        for a in Authority::ALL {
            self.refresh_gauges(a);
            inner.notify[idx(a)].notify_one();
        }
        Ok(())
    }

    /// The current key epoch (rises with each [`Outbox::rotate`]).
    pub fn key_epoch(&self) -> u32 {
        self.inner.keys.epoch()
    }

    /// Follows the node's erasures: when cancellations up to log index `upto` have been shredded
    /// and the outbox has not rotated for them yet, [`Outbox::rotate`]s and remembers `upto`
    /// (so a lane that was down when a cancellation was applied rotates when it comes back).
    /// Returns the new epoch, or `None` when there was nothing to do.
    pub fn follow_erasure(&self, upto: u64) -> Result<Option<u32>, OutboxError> {
        let done = self
            .store()?
            .meta
            .get(ERASED_UPTO)?
            .and_then(|v| decode_seq(&v))
            .unwrap_or(0);
        if upto <= done {
            return Ok(None);
        }
        let epoch = self.rotate()?;
        let store = self.store()?;
        store.meta.insert(ERASED_UPTO, &upto.to_be_bytes())?;
        store.db.flush()?;
        Ok(Some(epoch))
    }

    /// Crypto-erasure after a cancellation: starts a new key epoch, re-seals every record still
    /// queued or parked (and the seal check) under it, then destroys the old key, so that
    /// delivered records' sealed bytes lingering in sled's files can no longer be opened.
    /// Blocking (sled and the key file); a crash midway is finished by the next open. Entries
    /// that do not open are left as they are (the delivery task parks them). Returns the new
    /// epoch.
    pub fn rotate(&self) -> Result<u32, OutboxError> {
        let inner = &self.inner;
        let ring = &inner.keys.ring;
        let keys_error = |e: crate::error::Error| OutboxError::Keys(e.to_string());
        let _exclusive = inner.rotation.write().unwrap_or_else(|e| e.into_inner());
        let store = self.store()?;
        let epoch = ring.begin_rotation().map_err(keys_error)?;
        let mut resealed = 0usize;
        let stale = |bytes: &[u8]| match parse_envelope(bytes) {
            Ok(e) if e.version == ENVELOPE_V1 => true,
            Ok(e) => ring.is_stale(e.sealed),
            Err(_) => false,
        };
        let reseal = |bytes: &[u8]| -> Option<Vec<u8>> {
            let env = parse_envelope(bytes).ok()?;
            let (key, plain) = open_bytes(&inner.keys, bytes).ok()?;
            seal_bytes(&inner.keys, &key, &plain, env.queued_at_ms).ok()
        };
        let check = store
            .meta
            .get(SEAL_CHECK)?
            .map(|v| (sled::IVec::from(SEAL_CHECK), v));
        let entries = store
            .queues
            .iter()
            .flat_map(|q| q.iter().map(move |item| (q, item)));
        let check = check.into_iter().map(|kv| (&store.meta, Ok(kv)));
        for (tree, item) in entries.chain(check) {
            let (k, v) = item?;
            if !stale(&v) {
                continue;
            }
            if let Some(new) = reseal(&v) {
                // A record delivered (removed) meanwhile has nothing left to keep.
                if tree.compare_and_swap(&k, Some(&v), Some(new))?.is_ok() {
                    resealed += 1;
                }
            }
        }
        for tree in &store.dead {
            for item in tree.iter() {
                let (k, v) = item?;
                let Ok(mut entry) = postcard::from_bytes::<DeadEntry>(&v) else {
                    continue;
                };
                if !stale(&entry.envelope) {
                    continue;
                }
                if let Some(new) = reseal(&entry.envelope) {
                    entry.envelope = new;
                    let bytes = postcard::to_stdvec(&entry).map_err(|_| OutboxError::Seal)?;
                    if tree.compare_and_swap(&k, Some(&v), Some(bytes))?.is_ok() {
                        resealed += 1;
                    }
                }
            }
        }
        store.db.flush()?;
        ring.finish_rotation().map_err(keys_error)?;
        inner.metrics.key_epoch.set(i64::from(epoch));
        tracing::info!(
            epoch,
            resealed,
            "Outbox key rotated; the old key is destroyed."
        );
        Ok(epoch)
    }

    /// The same outbox with another retry schedule for the delivery tasks started from it.
    pub fn with_backoff(mut self, backoff: Backoff) -> Outbox {
        self.backoff = backoff;
        self
    }

    /// The sled tree holding `authority`'s queue.
    pub fn tree_name(authority: Authority) -> String {
        format!("outbox_{}", authority.as_str())
    }

    /// The sled tree holding `authority`'s dead letters.
    pub fn dead_tree_name(authority: Authority) -> String {
        format!("outbox_dead_{}", authority.as_str())
    }

    /// Queues one record, durably: when this returns the record is on disk and will be
    /// delivered, after restarts if need be. Returns its idempotency key. Blocks for the flush
    /// (a few milliseconds on an SSD; use `spawn_blocking` where that matters).
    pub fn push(&self, delivery: Delivery) -> Result<String, OutboxError> {
        let mut keys = self.push_all(std::slice::from_ref(&delivery))?;
        keys.pop().ok_or(OutboxError::Seal)
    }

    /// Queues the same record for both authorities in one transaction ("transmitted to the Macao
    /// and Mainland authorities for record simultaneously"): both or neither. Returns the keys,
    /// Macao's first.
    pub fn push_both(&self, record: &AuthorityRecord) -> Result<[String; 2], OutboxError> {
        let deliveries = Authority::ALL.map(|authority| Delivery {
            authority,
            record: record.clone(),
        });
        let keys = self.push_all(&deliveries)?;
        <[String; 2]>::try_from(keys).map_err(|_| OutboxError::Seal)
    }

    /// Queues several records in one transaction, durably; their keys in the same order. Any
    /// failure leaves the outbox unwritable until [`Outbox::recover`] proves the disk again (the
    /// lane starts no passage meanwhile), and is counted.
    pub fn push_all(&self, deliveries: &[Delivery]) -> Result<Vec<String>, OutboxError> {
        self.store_all(deliveries).inspect_err(|e| {
            self.inner.metrics.write_failures.inc();
            self.mark_unwritable(e);
        })
    }

    fn store_all(&self, deliveries: &[Delivery]) -> Result<Vec<String>, OutboxError> {
        let inner = &self.inner;
        let queued_at = now_ms();
        let plains = deliveries
            .iter()
            .map(|d| {
                serde_json::to_vec(&d.record)
                    .map(Zeroizing::new)
                    .map_err(|e| OutboxError::Config(format!("record does not serialise: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.check_space()?;
        let _shared = inner.rotation.read().unwrap_or_else(|e| e.into_inner());
        let store = self.store()?;
        let written =
            (&store.meta, &store.queues[0], &store.queues[1]).transaction(|(meta, q0, q1)| {
                let mut written = Vec::with_capacity(deliveries.len());
                for (d, plain) in deliveries.iter().zip(&plains) {
                    let sk = seq_key(d.authority);
                    let seq = match meta.get(&sk)? {
                        None => 1,
                        Some(v) => match <[u8; 8]>::try_from(v.as_ref()) {
                            Ok(b) => u64::from_be_bytes(b),
                            Err(_) => {
                                return Err(ConflictableTransactionError::Abort(
                                    OutboxError::Corrupt {
                                        authority: d.authority.as_str(),
                                        seq: 0,
                                        reason: "sequence counter unreadable".into(),
                                    },
                                ));
                            }
                        },
                    };
                    meta.insert(sk, &(seq + 1).to_be_bytes())?;
                    let key = format!(
                        "{}-{}-{}-{seq}",
                        inner.lane_id,
                        d.authority.as_str(),
                        inner.incarnation
                    );
                    let envelope = seal_bytes(&inner.keys, &key, plain, queued_at)
                        .map_err(ConflictableTransactionError::Abort)?;
                    let q = if idx(d.authority) == 0 { q0 } else { q1 };
                    q.insert(&seq.to_be_bytes(), envelope)?;
                    written.push((seq, key));
                }
                Ok(written)
            });
        // On any failure here sled may still show the records in memory: `durable` keeps them
        // from the delivery tasks, and `recover` reopens the database without them.
        let written = written
            .map_err(OutboxError::from)
            .and_then(|w| Ok(store.db.flush().map(|_| w)?))?;
        drop(store);
        let mut keys = Vec::with_capacity(written.len());
        for (d, (seq, key)) in deliveries.iter().zip(written) {
            inner.durable[idx(d.authority)].fetch_max(seq, Ordering::SeqCst);
            keys.push(key);
        }
        for d in deliveries {
            inner.depth[idx(d.authority)].fetch_add(1, Ordering::SeqCst);
        }
        for a in Authority::ALL {
            if deliveries.iter().any(|d| d.authority == a) {
                self.refresh_gauges(a);
                inner.notify[idx(a)].notify_one();
            }
        }
        Ok(keys)
    }

    /// Records queued for `authority` and not yet delivered (dead letters excluded).
    pub fn depth(&self, authority: Authority) -> usize {
        self.inner.depth[idx(authority)].load(Ordering::SeqCst) as usize
    }

    /// How long the oldest record queued for `authority` has waited; `None` when the queue is
    /// empty (or its head is unreadable).
    pub fn oldest_age(&self, authority: Authority) -> Option<Duration> {
        let (_, v) = self.store().ok()?.queues[idx(authority)].first().ok()??;
        let env = parse_envelope(&v).ok()?;
        Some(Duration::from_millis(
            now_ms().saturating_sub(env.queued_at_ms),
        ))
    }

    /// The idempotency keys queued for `authority`, oldest first. Unreadable entries are errors.
    pub fn pending_keys(&self, authority: Authority) -> Result<Vec<String>, OutboxError> {
        let mut keys = Vec::new();
        let store = self.store()?;
        for item in store.queues[idx(authority)].iter() {
            let (k, v) = item?;
            let seq = decode_seq(&k).unwrap_or(0);
            let env = parse_envelope(&v).map_err(|reason| OutboxError::Corrupt {
                authority: authority.as_str(),
                seq,
                reason,
            })?;
            keys.push(env.key.to_owned());
        }
        Ok(keys)
    }

    /// The dead letters of `authority`, oldest first.
    pub fn dead_letters(&self, authority: Authority) -> Result<Vec<DeadLetter>, OutboxError> {
        let mut out = Vec::new();
        let store = self.store()?;
        for item in store.dead[idx(authority)].iter() {
            let (k, v) = item?;
            let seq = decode_seq(&k).unwrap_or(0);
            out.push(match postcard::from_bytes::<DeadEntry>(&v) {
                Ok(e) => DeadLetter {
                    seq,
                    key: e.key,
                    reason: e.reason,
                    parked_at: ms_to_utc(e.parked_at_ms),
                },
                Err(e) => DeadLetter {
                    seq,
                    key: None,
                    reason: format!("dead letter unreadable: {e}"),
                    parked_at: DateTime::default(),
                },
            });
        }
        Ok(out)
    }

    /// Puts dead letter `seq` back at the end of `authority`'s queue, with its original
    /// idempotency key (the receiver still deduplicates it). For an operator, once the cause is
    /// fixed. Unreadable entries cannot be requeued.
    pub fn requeue_dead_letter(
        &self,
        authority: Authority,
        seq: u64,
    ) -> Result<String, OutboxError> {
        let a = authority.as_str();
        let inner = &self.inner;
        let i = idx(authority);
        // Read and move the envelope with no rotation in between (it would re-seal the dead
        // letter after we read it, and the old bytes we queue would no longer open).
        let _shared = inner.rotation.read().unwrap_or_else(|e| e.into_inner());
        let store = self.store()?;
        let raw = store.dead[i]
            .get(seq.to_be_bytes())?
            .ok_or(OutboxError::NoDeadLetter { authority: a, seq })?;
        let entry: DeadEntry = postcard::from_bytes(&raw).map_err(|e| OutboxError::Corrupt {
            authority: a,
            seq,
            reason: format!("dead letter unreadable: {e}"),
        })?;
        let (key, _) =
            open_bytes(&inner.keys, &entry.envelope).map_err(|reason| OutboxError::Corrupt {
                authority: a,
                seq,
                reason,
            })?;
        let envelope = entry.envelope;
        let queued =
            (&store.meta, &store.queues[i], &store.dead[i]).transaction(|(meta, q, dead)| {
                let sk = seq_key(authority);
                let next = meta
                    .get(&sk)?
                    .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(1);
                meta.insert(sk, &(next + 1).to_be_bytes())?;
                q.insert(&next.to_be_bytes(), envelope.as_slice())?;
                dead.remove(&seq.to_be_bytes())?;
                Ok(next)
            });
        let queued = queued
            .map_err(OutboxError::from)
            .and_then(|next| Ok(store.db.flush().map(|_| next)?))
            .inspect_err(|e| self.failed(e))?;
        drop(store);
        inner.durable[i].fetch_max(queued, Ordering::SeqCst);
        inner.depth[i].fetch_add(1, Ordering::SeqCst);
        self.refresh_gauges(authority);
        inner.notify[i].notify_one();
        Ok(key)
    }

    /// The oldest record of `authority`'s queue, opened: `(idempotency key, record)`. An
    /// unreadable head is an [`OutboxError::Corrupt`] (the delivery task parks it).
    pub fn peek(
        &self,
        authority: Authority,
    ) -> Result<Option<(String, AuthorityRecord)>, OutboxError> {
        Ok(self.head(authority)?.map(|h| (h.key, h.record)))
    }

    fn head(&self, authority: Authority) -> Result<Option<Head>, OutboxError> {
        let Some((k, v)) = self.store()?.queues[idx(authority)].first()? else {
            return Ok(None);
        };
        // A record whose write was not flushed is not the outbox's to deliver.
        if decode_seq(&k)
            .is_some_and(|seq| seq > self.inner.durable[idx(authority)].load(Ordering::SeqCst))
        {
            return Ok(None);
        }
        let corrupt = |seq: u64, reason: String| OutboxError::Corrupt {
            authority: authority.as_str(),
            seq,
            reason,
        };
        let seq = decode_seq(&k)
            .ok_or_else(|| corrupt(0, "entry key is not a sequence number".into()))?;
        let (key, plain) = open_bytes(&self.inner.keys, &v).map_err(|r| corrupt(seq, r))?;
        let record = serde_json::from_slice::<AuthorityRecord>(&plain)
            .map_err(|e| corrupt(seq, format!("sealed record is not a record: {e}")))?;
        Ok(Some(Head { seq, key, record }))
    }

    /// Moves the head entry (whatever its state) to the dead letters.
    fn park_head(&self, authority: Authority, reason: &str) -> Result<(), OutboxError> {
        let inner = &self.inner;
        let i = idx(authority);
        // As in `requeue_dead_letter`: the bytes moved must be the bytes a rotation sees.
        let _shared = inner.rotation.read().unwrap_or_else(|e| e.into_inner());
        let store = self.store()?;
        let Some((k, v)) = store.queues[i].first()? else {
            return Ok(());
        };
        let key = parse_envelope(&v).ok().map(|e| e.key.to_owned());
        let seq = decode_seq(&k);
        let entry = DeadEntry {
            key: key.clone(),
            reason: reason.to_owned(),
            parked_at_ms: now_ms(),
            envelope: v.to_vec(),
        };
        let bytes = postcard::to_stdvec(&entry).map_err(|_| OutboxError::Seal)?;
        // Entries whose key is not a sequence number go to the dead letters under a fresh number.
        let dead_key = match seq {
            Some(s) => s.to_be_bytes(),
            None => (u64::MAX - store.db.generate_id()?).to_be_bytes(),
        };
        let removed = (&store.queues[i], &store.dead[i]).transaction(|(q, dead)| {
            let removed = q.remove(k.as_ref())?;
            dead.insert(&dead_key, bytes.as_slice())?;
            Ok(removed.is_some())
        })?;
        store.db.flush()?;
        drop(store);
        if removed {
            dec(&inner.depth[i]);
        }
        inner
            .metrics
            .dead_letters
            .with_label_values(&[authority.as_str()])
            .inc();
        tracing::error!(
            authority = authority.as_str(),
            seq = seq.unwrap_or(0),
            key = key.as_deref().unwrap_or("?"),
            reason,
            "outbox record parked as a dead letter"
        );
        self.refresh_gauges(authority);
        Ok(())
    }

    fn remove(&self, authority: Authority, seq: u64) -> Result<(), OutboxError> {
        let i = idx(authority);
        let removed = self.store()?.queues[i].remove(seq.to_be_bytes())?;
        if removed.is_some() {
            dec(&self.inner.depth[i]);
        }
        // Not flushed here: sled flushes within half a second, and a removal lost in a crash only
        // means one more delivery with the same key, which the receiver deduplicates.
        self.refresh_gauges(authority);
        Ok(())
    }

    fn refresh_gauges(&self, authority: Authority) {
        let l = [authority.as_str()];
        let m = &self.inner.metrics;
        m.depth
            .with_label_values(&l)
            .set(self.depth(authority) as i64);
        m.oldest_age
            .with_label_values(&l)
            .set(self.oldest_age(authority).map_or(0.0, |d| d.as_secs_f64()));
    }

    /// The delivery task of one authority: until `shutdown` completes, takes the oldest record,
    /// delivers it with `client`, removes it once acknowledged; backs off and retries the same
    /// record on retryable failures; parks it as a dead letter on a permanent refusal or when it
    /// cannot be read. When the storage fails it waits for [`Outbox::recover`] and goes on (a
    /// record delivered but not removed is delivered again, under the same key). Returns `Ok` on
    /// shutdown. Run one per authority (a second one in the same process gets
    /// [`OutboxError::AlreadyRunning`]).
    pub async fn run<F>(
        self,
        authority: Authority,
        client: AuthorityClient,
        shutdown: F,
    ) -> Result<(), OutboxError>
    where
        F: Future<Output = ()> + Send,
    {
        let a = authority.as_str();
        if client.authority() != authority {
            return Err(OutboxError::Config(format!(
                "the {a} delivery task was given the {} client",
                client.authority()
            )));
        }
        let i = idx(authority);
        if self.inner.running[i].swap(true, Ordering::SeqCst) {
            return Err(OutboxError::AlreadyRunning(a));
        }
        struct Running<'a>(&'a AtomicBool);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        let _running = Running(&self.inner.running[i]);

        tokio::pin!(shutdown);
        let metrics = self.inner.metrics.clone();
        let mut attempt: u32 = 0;
        loop {
            self.refresh_gauges(authority);
            let head = match self.head(authority) {
                Ok(Some(h)) => h,
                Ok(None) => {
                    tokio::select! {
                        _ = self.inner.notify[i].notified() => continue,
                        _ = &mut shutdown => return Ok(()),
                    }
                }
                Err(OutboxError::Corrupt { reason, .. }) => {
                    if let Err(e) = self.park_head(authority, &format!("unreadable: {reason}"))
                        && !self.storage_pause(i, e, &mut shutdown).await?
                    {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => {
                    if !self.storage_pause(i, e, &mut shutdown).await? {
                        return Ok(());
                    }
                    continue;
                }
            };
            let result = tokio::select! {
                r = client.deliver(&head.key, &head.record) => r,
                _ = &mut shutdown => return Ok(()),
            };
            match result {
                Ok(()) => {
                    attempt = 0;
                    if let Err(e) = self.remove(authority, head.seq) {
                        if !self.storage_pause(i, e, &mut shutdown).await? {
                            return Ok(());
                        }
                        continue;
                    }
                    metrics.delivered.with_label_values(&[a]).inc();
                    tracing::debug!(authority = a, key = %head.key, "outbox record delivered");
                }
                Err(e) if e.is_retryable() => {
                    metrics.retries.with_label_values(&[a]).inc();
                    let delay = self.backoff.next(attempt, e.retry_after());
                    if attempt == 0 || attempt.is_power_of_two() {
                        tracing::warn!(
                            authority = a,
                            key = %head.key,
                            attempt = attempt + 1,
                            retry_in_ms = delay.as_millis() as u64,
                            depth = self.depth(authority),
                            "outbox delivery failed, will retry: {e}"
                        );
                    }
                    attempt = attempt.saturating_add(1);
                    // Sleep in slices so the age gauge keeps moving during long backoffs.
                    let until = tokio::time::Instant::now() + delay;
                    loop {
                        let now = tokio::time::Instant::now();
                        if now >= until {
                            break;
                        }
                        let slice = (until - now).min(Duration::from_secs(1));
                        tokio::select! {
                            _ = tokio::time::sleep(slice) => self.refresh_gauges(authority),
                            _ = &mut shutdown => return Ok(()),
                        }
                    }
                }
                Err(e) => {
                    attempt = 0;
                    if let Err(e) = self.park_head(authority, &e.to_string())
                        && !self.storage_pause(i, e, &mut shutdown).await?
                    {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// A delivery task met `e`: a storage failure marks the outbox unwritable and waits a
    /// second, or until it is recovered (`Ok(true)`: go on; `Ok(false)`: shut down). Any other
    /// error ends the task.
    async fn storage_pause<F: Future<Output = ()>>(
        &self,
        i: usize,
        e: OutboxError,
        shutdown: &mut std::pin::Pin<&mut F>,
    ) -> Result<bool, OutboxError> {
        if !matches!(e, OutboxError::Storage(_) | OutboxError::Unwritable(_)) {
            return Err(e);
        }
        self.failed(&e);
        tracing::debug!(error = %e, "Outbox delivery waits for the storage.");
        tokio::select! {
            _ = self.inner.notify[i].notified() => Ok(true),
            _ = tokio::time::sleep(Duration::from_secs(1)) => Ok(true),
            _ = shutdown.as_mut() => Ok(false),
        }
    }
}

fn dec(a: &AtomicU64) {
    let _ = a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1));
}

fn decode_seq(k: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(k).ok().map(u64::from_be_bytes)
}

/// Seals `plain` into a version 2 envelope under the current key epoch, for the idempotency key
/// `key` (bound as associated data with the queue time).
pub(crate) fn seal_bytes(
    keys: &OutboxKeys,
    key: &str,
    plain: &[u8],
    queued_at_ms: u64,
) -> Result<Vec<u8>, OutboxError> {
    let key_len =
        u8::try_from(key.len()).map_err(|_| OutboxError::Config("key too long".into()))?;
    let sealed = keys
        .ring
        .seal(SEAL_TREE_V2, &slot_v2(queued_at_ms, key), plain)
        .map_err(|_| OutboxError::Seal)?;
    let mut out = Vec::with_capacity(1 + 8 + 1 + key.len() + sealed.len());
    out.push(ENVELOPE_V2);
    out.extend_from_slice(&queued_at_ms.to_be_bytes());
    out.push(key_len);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Seals a version 1 envelope with a legacy key (tests of the migration).
#[cfg(test)]
pub(super) fn seal_bytes_v1(seal: &SealKey, key: &str, plain: &[u8], queued_at_ms: u64) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let aad = aad(queued_at_ms, key);
    let ct = seal
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad,
            },
        )
        .expect("seal");
    let mut out = vec![ENVELOPE_V1];
    out.extend_from_slice(&queued_at_ms.to_be_bytes());
    out.push(key.len() as u8);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens an envelope: `(idempotency key, plaintext)`, or why not.
pub(crate) fn open_bytes(
    keys: &OutboxKeys,
    bytes: &[u8],
) -> Result<(String, Zeroizing<Vec<u8>>), String> {
    let env = parse_envelope(bytes)?;
    let damaged = || {
        "does not open with the outbox's seal key (damaged, tampered with, or sealed under a destroyed key)".to_owned()
    };
    let plain = match env.version {
        ENVELOPE_V1 => {
            let seal = keys.legacy.as_ref().ok_or_else(damaged)?;
            let (nonce, ciphertext) = env.sealed.split_at(NONCE_LEN);
            let aad = aad(env.queued_at_ms, env.key);
            Zeroizing::new(
                seal.cipher()
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: ciphertext,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| damaged())?,
            )
        }
        _ => keys
            .ring
            .open(
                SEAL_TREE_V2,
                &slot_v2(env.queued_at_ms, env.key),
                env.sealed,
            )
            .map_err(|_| damaged())?,
    };
    Ok((env.key.to_owned(), plain))
}
