//! The gallery as the Raft state machine, on sled.
//!
//! The logical state is a [`Registry`] (shared with readers through [`GalleryHandle`]) whose 1:N
//! index and document index are in memory and whose persons' entries are read from sled
//! ([`SealedEntries`]) but for those an apply has changed and not yet written; sled keeps it
//! durable:
//!
//! - `sm_person_keys`: person id → the person's 32-byte data key, sealed with the node keyring;
//! - `sm_persons`: person id → the person's [`Entry`] (record and templates, `postcard`), sealed
//!   with the person's data key;
//! - `sm_meta`: last applied log id, membership, next person id, the ledger's view (orders to
//!   lanes, modes, acknowledged alarms; no personal data);
//! - `sm_audit`: audit record sequence number → [`AuditRecord`] without its reason's text
//!   (`postcard`). Records name persons by id only, hold no biometric data and no free text (the
//!   reason is represented by its salted commitment), so they are not sealed; their hash chain
//!   and the clients' signatures show any change;
//! - `sm_audit_reasons`: sequence number → the reason's text and salt, sealed with the keyring,
//!   removed when the person the record concerns is cancelled (the keyring then rotates).
//!
//! Each applied batch of log entries is written in one sled transaction over the four trees, so
//! the applied log id never runs ahead of or behind the data. Cancellation removes the person's
//! key with their entry; the node then rotates the keyring (see [`crate::store::keyring`]).
//!
//! Snapshots are streams of records ([`super::snapshot`]) kept in a file sealed block by block
//! ([`SealedFile`]), built from the live registry and sent to other nodes in chunks by openraft
//! over QUIC; a receiving node writes the chunks into a sealed file of its own and installs it
//! record by record, so neither side holds a whole snapshot in memory. Snapshot files of the
//! older one-blob formats (`CLWSNAP2` to `CLWSNAP4`) are converted when the node opens.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard};

use rayon::prelude::*;

use clearway_gallery::ops::{
    AuditRecord, Ledger, LedgerChanges, LedgerView, Revocations, verify_chain,
};
use clearway_gallery::{
    CancellationNotice, Change, DocumentKind, Entry, EntryStore, Hit, ModelId, NoticeId, PersonId,
    Registry, RegistryImage, Request, ScanPool, StoredBytes,
};
use clearway_wire::snapshot::SnapshotData;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use sha2::{Digest, Sha256};
use sled::Transactional;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::face::OrtIndex;
use zeroize::Zeroizing;

use super::Response;
use super::exposure::Exposure;
use super::snapshot::file::{SealedFile, is_sealed_file};
use super::snapshot::{self as stream, StreamReader};
use super::typ::{
    Entry as LogEntry, LogId, Snapshot, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership, TypeConfig,
};
use crate::error::{Error, Result};
use crate::store::crypto::DataKey;
use crate::store::keyring::Keyring;

const PERSONS: &[u8] = b"sm_persons";
const AUDIT: &[u8] = b"sm_audit";
const AUDIT_REASONS: &[u8] = b"sm_audit_reasons";
const LEDGER_VIEW: &[u8] = b"ledger_view";
/// The certificate revocation list (absent: none; stores from before revocations have none).
const REVOKED: &[u8] = b"revoked";
const KEYS: &[u8] = b"sm_person_keys";
/// Cancellation notices not yet delivered to every authority, sealed under the keyring; the key
/// is the notice id (log index, person id; big-endian).
const NOTICES: &[u8] = b"sm_notices";
const APPLIED: &[u8] = b"applied";
const MEMBERSHIP: &[u8] = b"membership";
const NEXT_ID: &[u8] = b"next_id";
const LAST_ERASURE: &[u8] = b"last_erasure";
const SHREDDED: &[u8] = b"shredded";
/// Set while a received snapshot is being written; found at start-up it means the write was cut
/// short, and the state machine starts empty (the leader sends the snapshot again).
const INSTALLING: &[u8] = b"installing";
/// The one-blob snapshot format before streaming snapshots: converted at start-up.
const SNAPSHOT_MAGIC_V4: &[u8; 8] = b"CLWSNAP4";
/// Snapshots from before the cancellation notices: decoded, with none.
const SNAPSHOT_MAGIC_V3: &[u8; 8] = b"CLWSNAP3";
/// Snapshots from before the revocation list: decoded, with an empty list.
const SNAPSHOT_MAGIC_V2: &[u8; 8] = b"CLWSNAP2";

/// What readers see: the registry with the log position it reflects.
pub struct Applied {
    /// The gallery.
    pub registry: Registry,
    /// Port operations: orders to lanes, modes, alarm acknowledgements, the audit trail.
    pub ledger: Ledger,
    /// The last log id applied.
    pub last_applied: Option<LogId>,
    /// The membership in force.
    pub membership: StoredMembership,
}

/// The read handle on a node's replica of the gallery (lanes search it; it never waits on the
/// network). Cheap to clone.
#[derive(Clone)]
pub struct GalleryHandle {
    applied: Arc<RwLock<Applied>>,
    /// What a snapshot install changes while it replaces the persons stored in sled.
    replacing: Arc<Replacement>,
    /// 1:N on the GPU, once a lane whose face models run there installs it
    /// ([`GalleryHandle::use_device_index`]); the int8 scan otherwise.
    device_index: Arc<OnceLock<OrtIndex>>,
}

impl Replacement {
    /// The gate held exclusively (an install, an apply).
    fn exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        // The gate guards no data: a panic while it was held leaves nothing half-done in it.
        self.gate.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The gate held shared (a digest, a checkpoint, a build's cut).
    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }

    fn cut(&self) -> MutexGuard<'_, Option<Cut>> {
        // What it holds is whole after each step: a panic cannot leave half of one.
        self.cut.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a snapshot build reads: the stored persons as they were at its cut (the applied position
/// it began at) while applies go on changing them in sled, so a build of a large gallery, which
/// reads and opens every record for minutes at 10M, holds no apply back. The build reads the
/// persons in id order and moves `passed` on under this lock; an apply, before it writes a
/// person the build has not passed yet, keeps here what that person was at the cut (it is the
/// first change since the cut if none is kept), and the build takes that in place of what sled
/// holds. Persons enrolled after the cut (ids from `next_id` on) the build never reads. Memory:
/// one kept record per person changed during the build and not yet read by it.
struct Cut {
    /// The registry's next id at the cut.
    next_id: u64,
    /// The last person id the build has read.
    passed: Option<u64>,
    /// Persons changed since the cut and not yet read: what each was then (`None`: not stored).
    before: BTreeMap<u64, Option<StoredBytes>>,
}

impl Cut {
    /// Whether an apply about to change person `id` must keep what they are now.
    fn keeps(&self, id: u64) -> bool {
        id < self.next_id
            && self.passed.is_none_or(|passed| id > passed)
            && !self.before.contains_key(&id)
    }
}

/// A build's hold on [`Replacement`]: the build lock until dropped, and its cut until
/// [`Building::end_cut`] or dropped.
pub(crate) struct Building<'a> {
    replacing: &'a Replacement,
    _building: tokio::sync::MutexGuard<'a, ()>,
}

impl Building<'_> {
    /// The build has read every stored person: applies keep nothing for it from now on.
    fn end_cut(&self) {
        *self.replacing.cut() = None;
    }
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        self.end_cut();
    }
}

/// What a snapshot build copies from the replica's memory ([`GalleryHandle::begin_build`]); the
/// persons it reads from sled.
pub(crate) struct BuildView {
    meta: SnapshotMeta,
    next_id: u64,
    persons: u64,
    notices: Vec<(NoticeId, CancellationNotice)>,
    ledger: Ledger,
}

/// The state of a replacement of the stored persons by a snapshot install, and of a snapshot
/// build's read of them.
#[derive(Default)]
struct Replacement {
    /// Held by a snapshot build from before it seals its file's key until its file is in place,
    /// by an install before anything else, and by a key rotation from its start to its end
    /// ([`Resealer::hold_builds`]): one build at a time, no install under a build (which reads
    /// the stored persons the install clears), and nothing sealed under a key a rotation
    /// retires while it runs. Always taken before `gate` and before the snapshot file's lock.
    /// A Tokio lock: an install or a rotation waits for a build (minutes at 10M) without
    /// holding a runtime worker; a build, on a blocking thread, takes it blockingly.
    building: tokio::sync::Mutex<()>,
    /// Taken exclusively by an install and by each apply (from its first change to its write
    /// to sled), shared by whoever reads every stored person at once (a digest, a checkpoint)
    /// and by a build for the moment it takes its cut: none reads half of one replica and half
    /// of another. Always taken before [`GalleryHandle`]'s `applied`.
    gate: RwLock<()>,
    /// The cut of the snapshot build in progress, if one is ([`Cut`]).
    cut: Mutex<Option<Cut>>,
    /// Which registry's entries sled holds: an install moves it on before it clears the trees.
    /// A single entry's read ([`SealedEntries`]) does not wait for an install (a lane must not
    /// stall behind one): a registry of an older generation reads nothing, and the lane refers
    /// the traveller.
    generation: std::sync::atomic::AtomicU64,
}

impl GalleryHandle {
    /// Read access to the replica. Hold it briefly: writers (log apply) wait for it.
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        // A poisoned lock means a panic while applying; the data is still the last good state.
        self.applied.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Read access to the replica for reading every entry: waits for a snapshot install to
    /// finish, and keeps the next from starting until the guards are dropped.
    fn read_whole(&self) -> (RwLockReadGuard<'_, ()>, RwLockReadGuard<'_, Applied>) {
        let gate = self.replacing.shared();
        (gate, self.read())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Applied> {
        self.applied.write().unwrap_or_else(|e| e.into_inner())
    }

    /// What a snapshot build starts from: its cut ([`Cut`]), taken with the gate shared (no
    /// apply is half-way) and kept until the returned hold is dropped (installs and other builds
    /// wait for that; applies, searches and entry reads do not), and a copy of what the replica
    /// holds in memory, taken under its lock for that moment only. Blocking: call it off the
    /// runtime's threads.
    pub(crate) fn begin_build(&self) -> Result<(Building<'_>, BuildView)> {
        let building = Building {
            replacing: &self.replacing,
            // Called off the runtime's threads (a build's blocking task, a test's thread).
            _building: self.replacing.building.blocking_lock(),
        };
        let _gate = self.replacing.shared();
        let guard = self.read();
        if guard.registry.unwritten().next().is_some() {
            // Only after an apply failed (the state machine has stopped): sled is behind.
            return Err(Error::Store(
                "the replica holds changes its store does not; no snapshot".into(),
            ));
        }
        let last = guard.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: guard.membership.clone(),
            snapshot_id: format!(
                "{}-{}-{:08x}",
                last.map_or(0, |l| l.leader_id.term),
                last.map_or(0, |l| l.index),
                rand::random::<u32>()
            ),
        };
        let view = BuildView {
            meta,
            next_id: guard.registry.next_id(),
            persons: guard.registry.len() as u64,
            notices: guard
                .registry
                .notices()
                .map(|(id, n)| (*id, n.clone()))
                .collect(),
            ledger: guard.ledger.clone(),
        };
        *self.replacing.cut() = Some(Cut {
            next_id: view.next_id,
            passed: None,
            before: BTreeMap::new(),
        });
        drop(guard);
        Ok((building, view))
    }

    /// 1:N search of the local replica: on the device index when one is installed, else (and
    /// whenever the device fails) the int8 scan. Both give the same hits and scores.
    pub fn search(&self, probe: &[f32], k: usize) -> Result<Vec<Hit>> {
        let applied = self.read();
        let gallery = applied.registry.index();
        if let Some(index) = self.device_index.get() {
            match index.search(gallery, probe, k) {
                Ok(hits) => return Ok(hits),
                // A bad probe fails both engines (the scan below reports it); anything else,
                // a row the device named that the gallery does not hold included, is the
                // device's and is logged.
                Err(crate::Error::Gallery(e)) if e.code() != "foreign_row" => {}
                Err(e) => {
                    warn!(error = %e, "The device 1:N search failed; searching on the CPU.")
                }
            }
        }
        Ok(gallery.search(probe, k)?)
    }

    /// Runs every later search on `index` (the GPU's, `face/onnx_search.rs`), which copies the
    /// replica's rows to the device and re-copies the segments each apply changes. One per
    /// node: false if one is already installed or its dimension is not the replica's.
    pub fn use_device_index(&self, index: OrtIndex) -> bool {
        if index.dim() != self.read().registry.index().dim() {
            return false;
        }
        self.device_index.set(index).is_ok()
    }

    /// The device index searches run on, if one is installed.
    pub fn device_index(&self) -> Option<&OrtIndex> {
        self.device_index.get()
    }

    /// A person's entry (read from the sealed store and opened). A store that cannot give it
    /// (a disk error, a snapshot being installed) reads as no entry: the lane then refers the
    /// traveller to an officer, and the failure is logged.
    pub fn entry(&self, id: PersonId) -> Option<Entry> {
        match self.read().registry.get(id) {
            Ok(entry) => entry,
            Err(e) => {
                warn!(error = %e, "A person's entry could not be read from the replica.");
                None
            }
        }
    }

    /// The person registered with a travel document, as [`GalleryHandle::entry`] reads.
    pub fn find_document(&self, kind: DocumentKind, number: &str) -> Option<PersonId> {
        match self.read().registry.find_document(kind, number) {
            Ok(id) => id,
            Err(e) => {
                warn!(error = %e, "A document lookup could not read the replica.");
                None
            }
        }
    }

    /// SHA-256 over the registry's image and the ledger: equal on two replicas exactly when
    /// their galleries and operations state are. The encoding streams into the hash (the same
    /// bytes as the stored encoding, never the whole image in memory: ~0.4 GB at 1M templates).
    pub fn digest(&self) -> String {
        /// Feeds what postcard writes straight into the hash.
        struct Hashing<'a>(&'a mut Sha256);
        impl std::io::Write for Hashing<'_> {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.update(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (_gate, guard) = self.read_whole();
        let mut h = Sha256::new();
        // Encoding cannot fail but for the store failing to read an entry; the digest then
        // differs from every other replica's and shows.
        let _ = postcard::to_io(&guard.registry.image_ref(), Hashing(&mut h));
        let _ = postcard::to_io(&guard.ledger, Hashing(&mut h));
        hex::encode(h.finalize())
    }

    /// The audit trail's length and head hash.
    pub fn audit_head(&self) -> (u64, String) {
        let guard = self.read();
        let view = guard.ledger.view();
        (view.audit_len, view.audit_head.clone())
    }

    /// The ledger's view (orders, modes, acknowledgements, the audit trail's length and head).
    pub fn ledger_view(&self) -> LedgerView {
        self.read().ledger.view().clone()
    }

    /// Up to `limit` audit records from `from_seq` on.
    pub fn audit(&self, from_seq: u64, limit: usize) -> Vec<AuditRecord> {
        let guard = self.read();
        let trail = guard.ledger.audit();
        let from = usize::try_from(from_seq)
            .unwrap_or(usize::MAX)
            .min(trail.len());
        trail[from..].iter().take(limit).cloned().collect()
    }

    /// The index's model.
    pub fn model(&self) -> ModelId {
        self.read().registry.index().model().clone()
    }
}

/// The Raft state machine over the gallery.
pub struct StateMachineStore {
    db: sled::Db,
    persons: sled::Tree,
    keys: sled::Tree,
    meta: sled::Tree,
    audit: sled::Tree,
    reasons: sled::Tree,
    notices: sled::Tree,
    keyring: Arc<Keyring>,
    handle: GalleryHandle,
    model: ModelId,
    dim: usize,
    snapshot_path: PathBuf,
    snapshot_lock: SnapshotLock,
    fsync: bool,
    erased: watch::Sender<u64>,
    revoked: watch::Sender<Revocations>,
    /// Whether this node's disk held personal data before (a first install into a node that did
    /// not records its cancellations as shredded: [`super::exposure`]).
    exposure: Exposure,
    /// Threads, one pinned per core, that share each 1:N scan of a large gallery (`None` if the
    /// operating system would not start them: scans then run on the caller's thread).
    scan_pool: Option<Arc<ScanPool>>,
    /// What the registry was loaded from at start-up: `checkpoint` or `records`.
    loaded_from: &'static str,
}

impl StateMachineStore {
    /// Tells the store its kept snapshot is at `id`, as an install finishing meanwhile would.
    #[cfg(test)]
    pub(crate) async fn snapshot_kept_at(&self, id: Option<LogId>) {
        *self.snapshot_lock.lock().await = id;
    }

    /// Opens the state machine's trees in `db` and loads the registry. `snapshot_path` is where
    /// the current snapshot is kept; the index holds templates of `model` with `dim` dimensions.
    pub fn open(
        db: &sled::Db,
        keyring: Arc<Keyring>,
        snapshot_path: &Path,
        model: ModelId,
        dim: usize,
        fsync: bool,
    ) -> Result<StateMachineStore> {
        // First: in a new database it marks the node pristine (see there).
        let exposure = Exposure::open(db)?;
        let persons = db.open_tree(PERSONS)?;
        let keys = db.open_tree(KEYS)?;
        let meta = db.open_tree("sm_meta")?;
        let audit = db.open_tree(AUDIT)?;
        let reasons = db.open_tree(AUDIT_REASONS)?;
        let notices = db.open_tree(NOTICES)?;
        if meta.get(INSTALLING)?.is_some() {
            // The install marked the node held before writing; kept so whatever happens.
            exposure.hold()?;
            warn!("A snapshot install was interrupted; starting the state machine empty.");
            persons.clear()?;
            keys.clear()?;
            meta.clear()?;
            audit.clear()?;
            reasons.clear()?;
            notices.clear()?;
            db.flush()?;
        }
        convert_legacy_snapshot(&keyring, snapshot_path)?;
        for leftover in [
            incoming_path(snapshot_path),
            building_path(snapshot_path),
            // What the one-blob format's writer left when a stop cut it short.
            snapshot_path.with_extension("tmp"),
        ] {
            // A transfer or a build cut short by a stop: of no use now.
            match std::fs::remove_file(&leftover) {
                Ok(()) => info!(path = %leftover.display(), "Removed an unfinished snapshot file."),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&leftover, e)),
            }
        }
        let scan_pool = match ScanPool::per_core() {
            Ok(pool) => {
                info!(
                    threads = pool.threads(),
                    "1:N scans of large galleries are split across one pinned thread per core."
                );
                Some(Arc::new(pool))
            }
            Err(e) => {
                warn!(error = %e, "No scan pool; 1:N scans run on one thread.");
                None
            }
        };
        let replacing = Arc::new(Replacement::default());
        let store = || SealedEntries {
            persons: persons.clone(),
            keys: keys.clone(),
            keyring: keyring.clone(),
            replacing: replacing.clone(),
            generation: 0,
        };
        let last_applied: Option<LogId> = meta_get(&meta, APPLIED)?.flatten();
        let started = std::time::Instant::now();
        // A clean stop left the registry's indexes in a checkpoint: used if it is of exactly
        // this state, and consumed either way.
        let checkpoint_path = super::checkpoint::path(snapshot_path);
        let from_checkpoint = match super::checkpoint::load(
            &checkpoint_path,
            &keyring,
            super::checkpoint::Of {
                applied: last_applied,
                model: &model,
                dim,
            },
            Box::new(store()),
        ) {
            Ok(registry) => registry,
            // It could not be removed: it must not be read at a later start.
            Err(e @ Error::Io { .. }) if checkpoint_path.exists() => return Err(e),
            Err(e) => {
                warn!(error = %e, "The replica checkpoint cannot be used; loading the records.");
                None
            }
        };
        let from = if from_checkpoint.is_some() {
            "checkpoint"
        } else {
            "records"
        };
        let mut registry = match from_checkpoint {
            Some(registry) => registry,
            None => load_records(
                Registry::with_store(model.clone(), dim, Box::new(store()))?,
                &persons,
                &keys,
                &keyring,
                scan_pool.as_deref(),
            )?,
        };
        registry.set_scan_pool(scan_pool.clone());
        for item in notices.iter() {
            let (k, sealed) = item?;
            let (id, notice) = open_notice(&keyring, &k, &sealed)?;
            registry.restore_notice(id, notice);
        }
        let next_id: Option<u64> = meta_get(&meta, NEXT_ID)?;
        registry.set_next_id(next_id.unwrap_or(1));
        let membership: StoredMembership = meta_get(&meta, MEMBERSHIP)?.unwrap_or_default();
        let ledger = load_ledger(&meta, &audit, &reasons, &keyring)?;
        info!(
            persons = registry.len(),
            templates = registry.template_count(),
            applied = ?last_applied.map(|l| l.index),
            from,
            seconds = started.elapsed().as_secs_f64(),
            "Gallery state machine loaded."
        );
        let (erased, _) = watch::channel(meta_get::<u64>(&meta, LAST_ERASURE)?.unwrap_or(0));
        let (revoked, _) = watch::channel(ledger.revoked().clone());
        Ok(StateMachineStore {
            db: db.clone(),
            persons,
            keys,
            meta,
            audit,
            reasons,
            notices,
            keyring,
            handle: GalleryHandle {
                applied: Arc::new(RwLock::new(Applied {
                    registry,
                    ledger,
                    last_applied,
                    membership,
                })),
                replacing,
                device_index: Arc::default(),
            },
            model,
            dim,
            snapshot_path: snapshot_path.to_path_buf(),
            snapshot_lock: SnapshotLock::default(),
            fsync,
            erased,
            revoked,
            exposure,
            scan_pool,
            loaded_from: from,
        })
    }

    /// What the registry was loaded from at start-up: `checkpoint` or `records`.
    pub fn loaded_from(&self) -> &'static str {
        self.loaded_from
    }

    /// The read handle lanes and queries use.
    pub fn handle(&self) -> GalleryHandle {
        self.handle.clone()
    }

    /// Watches the log index of the latest applied cancellation (0: none since start-up). The
    /// node's shredder waits on it to rotate keys.
    pub fn erasures(&self) -> watch::Receiver<u64> {
        self.erased.subscribe()
    }

    /// The certificate revocation list as applied, updated as revocations are applied or a
    /// snapshot is installed.
    pub fn revocations(&self) -> watch::Receiver<Revocations> {
        self.revoked.subscribe()
    }

    /// Log index of the latest cancellation already shredded (persisted).
    pub fn shredded_index(&self) -> Result<u64> {
        shredded_index(&self.meta)
    }

    /// What writes the replica checkpoint when the node stops ([`super::checkpoint`]).
    pub fn checkpointer(&self) -> Checkpointer {
        Checkpointer {
            handle: self.handle.clone(),
            keyring: self.keyring.clone(),
            path: super::checkpoint::path(&self.snapshot_path),
        }
    }

    /// A handle for the key rotation (shared trees and snapshot file).
    pub fn resealer(&self) -> Resealer {
        Resealer {
            db: self.db.clone(),
            meta: self.meta.clone(),
            keys: self.keys.clone(),
            reasons: self.reasons.clone(),
            notices: self.notices.clone(),
            keyring: self.keyring.clone(),
            snapshot_path: self.snapshot_path.clone(),
            snapshot_lock: self.snapshot_lock.clone(),
            handle: self.handle.clone(),
        }
    }

    /// Writes the changed persons and the applied position in one transaction.
    fn persist(
        &self,
        changes: &[Change],
        last_applied: Option<LogId>,
        membership: &StoredMembership,
        next_id: u64,
        erased_at: Option<u64>,
        ledger: &LedgerChanges,
    ) -> Result<()> {
        // Seal outside the transaction (its closure may run more than once).
        let mut puts: Vec<([u8; 8], Option<(Option<Vec<u8>>, Vec<u8>)>)> = Vec::new();
        let mut notice_puts: Vec<([u8; 16], Option<Vec<u8>>)> = Vec::new();
        {
            let guard = self.handle.read();
            for change in changes {
                match *change {
                    Change::Put(id) => {
                        let k = id.0.to_be_bytes();
                        let Some(Some(plain)) = guard.registry.unwritten_entry(id) else {
                            // Put then erased within the same batch: the erase follows.
                            continue;
                        };
                        let (key, new_key) = match self.keys.get(k)? {
                            Some(sealed) => (open_data_key(&self.keyring, &k, &sealed)?, None),
                            None => {
                                let key = DataKey::generate();
                                let sealed = self.keyring.seal(KEYS, &k, key.as_bytes())?;
                                (key, Some(sealed))
                            }
                        };
                        // The registry keeps each entry encoded: sealed as it is.
                        let sealed = key.sealer().seal(PERSONS, &k, plain)?;
                        puts.push((k, Some((new_key, sealed))));
                    }
                    Change::Erase(id) => puts.push((id.0.to_be_bytes(), None)),
                    Change::Notice(id) => {
                        let k = notice_key(id);
                        let sealed = guard
                            .registry
                            .notice(id)
                            .map(|n| seal_notice(&self.keyring, &k, n))
                            .transpose()?;
                        notice_puts.push((k, sealed));
                    }
                }
            }
        }
        let applied =
            postcard::to_stdvec(&last_applied).map_err(|e| Error::Store(e.to_string()))?;
        let membership =
            postcard::to_stdvec(membership).map_err(|e| Error::Store(e.to_string()))?;
        let next = postcard::to_stdvec(&next_id).map_err(|e| Error::Store(e.to_string()))?;
        let erased = erased_at
            .map(|i| postcard::to_stdvec(&i))
            .transpose()
            .map_err(|e| Error::Store(e.to_string()))?;
        // Records without their reasons' text; the texts sealed apart.
        let mut audit = Vec::with_capacity(ledger.audit.len());
        let mut reason_puts = Vec::new();
        for r in &ledger.audit {
            let k = r.seq.to_be_bytes();
            let bare = AuditRecord {
                reason: None,
                ..r.clone()
            };
            audit.push((
                k,
                postcard::to_stdvec(&bare).map_err(|e| Error::Store(e.to_string()))?,
            ));
            if let Some(reason) = &r.reason {
                let plain = Zeroizing::new(
                    postcard::to_stdvec(reason).map_err(|e| Error::Store(e.to_string()))?,
                );
                reason_puts.push((k, self.keyring.seal(AUDIT_REASONS, &k, &plain)?));
            }
        }
        let reason_erasures: Vec<[u8; 8]> = ledger
            .reasons_erased
            .iter()
            .map(|seq| seq.to_be_bytes())
            .collect();
        let revoked = if ledger.revoked {
            let guard = self.handle.read();
            Some(
                postcard::to_stdvec(guard.ledger.revoked())
                    .map_err(|e| Error::Store(e.to_string()))?,
            )
        } else {
            None
        };
        let view = if ledger.view {
            let guard = self.handle.read();
            Some(
                postcard::to_stdvec(guard.ledger.view())
                    .map_err(|e| Error::Store(e.to_string()))?,
            )
        } else {
            None
        };
        self.keep_cut(puts.iter().map(|(k, _)| *k))?;
        (
            &self.persons,
            &self.keys,
            &self.meta,
            &self.audit,
            &self.reasons,
            &self.notices,
        )
            .transaction(|(persons, keys, meta, audit_tree, reasons, notices)| {
                for (k, sealed) in &notice_puts {
                    match sealed {
                        Some(sealed) => notices.insert(k, sealed.as_slice())?,
                        None => notices.remove(k)?,
                    };
                }
                for (seq, record) in &audit {
                    audit_tree.insert(seq, record.as_slice())?;
                }
                for (seq, sealed) in &reason_puts {
                    reasons.insert(seq, sealed.as_slice())?;
                }
                for seq in &reason_erasures {
                    reasons.remove(seq)?;
                }
                if let Some(view) = &view {
                    meta.insert(LEDGER_VIEW, view.as_slice())?;
                }
                if let Some(revoked) = &revoked {
                    meta.insert(REVOKED, revoked.as_slice())?;
                }
                for (k, put) in &puts {
                    match put {
                        Some((new_key, sealed)) => {
                            if let Some(new_key) = new_key {
                                keys.insert(k, new_key.as_slice())?;
                            }
                            persons.insert(k, sealed.as_slice())?;
                        }
                        None => {
                            // The key first: without it nothing of the person can be opened.
                            keys.remove(k)?;
                            persons.remove(k)?;
                        }
                    }
                }
                meta.insert(APPLIED, applied.as_slice())?;
                meta.insert(MEMBERSHIP, membership.as_slice())?;
                meta.insert(NEXT_ID, next.as_slice())?;
                if let Some(erased) = &erased {
                    meta.insert(LAST_ERASURE, erased.as_slice())?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| Error::Store(format!("state machine transaction: {e:?}")))?;
        Ok(())
    }

    /// Before an apply writes the `changed` persons: keeps what each is now for the snapshot
    /// build in progress, if it has not read them yet and nothing is kept for them ([`Cut`]).
    /// The build reads under the same lock, so it either read a person before this or finds
    /// them kept.
    fn keep_cut(&self, changed: impl Iterator<Item = [u8; 8]>) -> Result<()> {
        let mut cut = self.handle.replacing.cut();
        let Some(cut) = cut.as_mut() else {
            return Ok(());
        };
        for k in changed {
            let id = u64::from_be_bytes(k);
            if !cut.keeps(id) {
                continue;
            }
            let was = match self.keys.get(k)? {
                Some(sealed_key) => {
                    Some(open_stored(&self.keyring, &self.persons, &k, &sealed_key)?)
                }
                None => None,
            };
            cut.before.insert(id, was);
        }
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        if self.fsync {
            self.db.flush_async().await?;
        }
        Ok(())
    }

    /// Copies a snapshot stream into a sealed file of this node's, ready to install.
    async fn copy_in(&self, mut data: SnapshotData) -> Result<SealedFile> {
        use tokio::io::AsyncSeekExt;
        let path = incoming_path(&self.snapshot_path);
        self.exposure.begin_receiving()?;
        let mut file = SealedFile::create(&path, &self.keyring)?;
        data.seek(SeekFrom::Start(0))
            .await
            .map_err(|e| Error::io(&path, e))?;
        tokio::io::copy(&mut data, &mut file)
            .await
            .map_err(|e| Error::io(&path, e))?;
        file.into_reader()
    }

    /// Replaces the whole state with a snapshot's, read record by record from `file` (a stream
    /// this node wrote while receiving it). The stream is checked whole first, so a cut-short or
    /// altered one leaves the replica as it was.
    async fn install(&self, meta: &SnapshotMeta, mut file: SealedFile) -> Result<()> {
        let (sent_meta, header) = stream::verify(&mut file)?;
        if sent_meta.snapshot_id != meta.snapshot_id || sent_meta.last_log_id != meta.last_log_id {
            return Err(Error::Store(format!(
                "the snapshot stream is {} but openraft installs {}",
                sent_meta.snapshot_id, meta.snapshot_id
            )));
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(file.path(), e))?;
        let file_len = file.len();
        let (_, mut reader) = StreamReader::start(&mut file)?;
        // The persons stored in sled are replaced while lanes still search the replica in
        // memory: its entries read as absent meanwhile (the lane refers the traveller). A
        // snapshot build in progress is waited for, and the next one, a digest or a checkpoint
        // waits, so none reads a mix of two replicas. Nothing here awaits while the gate is held.
        // Held from here on, whatever becomes of this install; `fresh` if it held nothing before.
        let fresh = self.exposure.begin_install()?;
        let building = self.handle.replacing.building.lock().await;
        let gate = self.handle.replacing.exclusive();
        let generation = 1 + self
            .handle
            .replacing
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.meta.insert(INSTALLING, &[1])?;
        self.db.flush()?;
        self.persons.clear()?;
        self.keys.clear()?;
        self.audit.clear()?;
        self.reasons.clear()?;
        self.notices.clear()?;
        let store = SealedEntries {
            persons: self.persons.clone(),
            keys: self.keys.clone(),
            keyring: self.keyring.clone(),
            replacing: self.handle.replacing.clone(),
            generation,
        };
        let mut registry = Registry::with_store(self.model.clone(), self.dim, Box::new(store))?;
        registry.set_scan_pool(self.scan_pool.clone());
        // Room for every person the stream holds. Verified, it holds that many frames; a person's
        // is over 64 bytes, so the file's length bounds what a lying header could reserve.
        let persons = header.persons.min(file_len / 64);
        registry.reserve(usize::try_from(persons).unwrap_or(0));
        // Bulk load without transactions: the INSTALLING mark makes a cut-short load restart
        // empty, so each batch need not be atomic with the meta. Each batch is sealed on every
        // core (two AEAD operations per person), written, then restored into the new registry
        // (indexed; the records stay in sled), whose 1:N index so grows as the records arrive.
        // The stream's persons come in increasing id order, as the registry restores them.
        let mut left = header.persons;
        let mut batch = Vec::with_capacity(LOAD_BATCH);
        while left > 0 {
            batch.clear();
            while left > 0 && batch.len() < LOAD_BATCH {
                batch.push(reader.frame::<Entry>()?);
                left -= 1;
            }
            let seal_one = |entry: &Entry| -> Result<SealedPerson> {
                let k = entry.person.id.0.to_be_bytes();
                let key = DataKey::generate();
                let sealed_key = self.keyring.seal(KEYS, &k, key.as_bytes())?;
                let plain = Zeroizing::new(
                    postcard::to_stdvec(entry).map_err(|e| Error::Store(e.to_string()))?,
                );
                let sealed = key.sealer().seal(PERSONS, &k, &plain)?;
                Ok((k, sealed_key, sealed))
            };
            let sealed = in_pool(self.scan_pool.as_deref(), || {
                batch.par_iter().map(seal_one).collect::<Result<Vec<_>>>()
            })?;
            // Written in sled batches of at most [`SLED_BATCH_BYTES`] each.
            let (mut keys, mut persons) = (sled::Batch::default(), sled::Batch::default());
            let mut bytes = 0;
            let count = sealed.len();
            for (n, (k, sealed_key, sealed)) in sealed.into_iter().enumerate() {
                bytes += k.len() * 2 + sealed_key.len() + sealed.len();
                keys.insert(&k, sealed_key);
                persons.insert(&k, sealed);
                if bytes >= SLED_BATCH_BYTES || n + 1 == count {
                    self.keys.apply_batch(std::mem::take(&mut keys))?;
                    self.persons.apply_batch(std::mem::take(&mut persons))?;
                    bytes = 0;
                }
            }
            for entry in batch.drain(..) {
                registry.restore(entry)?;
            }
        }
        let mut notices = sled::Batch::default();
        for _ in 0..header.notices {
            let (id, notice): (NoticeId, CancellationNotice) = reader.frame()?;
            let k = notice_key(id);
            notices.insert(&k, seal_notice(&self.keyring, &k, &notice)?);
            registry.restore_notice(id, notice);
        }
        self.notices.apply_batch(notices)?;
        registry.set_next_id(header.next_id);
        let ledger = stream::read_ledger(reader)?;
        let ledger_changes = LedgerChanges {
            audit: ledger.audit().to_vec(),
            view: true,
            revoked: true,
            reasons_erased: Vec::new(),
        };
        let revoked = ledger.revoked().clone();
        let next_id = registry.next_id();
        {
            let mut guard = self.handle.write();
            guard.registry = registry;
            guard.ledger = ledger;
            guard.last_applied = meta.last_log_id;
            guard.membership = meta.last_membership.clone();
        }
        drop(gate);
        drop(building);
        // The replaced state may hold persons cancelled meanwhile: shred after installing.
        let erased_at = meta.last_log_id.map(|l| l.index);
        self.persist(
            &[],
            meta.last_log_id,
            &meta.last_membership,
            next_id,
            erased_at,
            &ledger_changes,
        )?;
        self.revoked.send_replace(revoked);
        if let (true, Some(index)) = (fresh, erased_at) {
            // Nothing here predates the snapshot, and the snapshot holds no one cancelled up to
            // its index: those cancellations are shredded as installed (no key rotation).
            let bytes = postcard::to_stdvec(&index).map_err(|e| Error::Store(e.to_string()))?;
            self.meta.insert(SHREDDED, bytes)?;
        }
        self.meta.remove(INSTALLING)?;
        self.db.flush_async().await?;
        // The received file becomes this node's snapshot (it is sealed under this node's keys:
        // under the current one, should a key rotation have begun since it was received).
        {
            let mut kept = self.snapshot_lock.lock().await;
            file.sync()?;
            file.seal_key_current(&self.keyring)?;
            std::fs::rename(file.path(), &self.snapshot_path)
                .map_err(|e| Error::io(&self.snapshot_path, e))?;
            *kept = meta.last_log_id;
        }
        info!(
            applied = ?meta.last_log_id.map(|l| l.index),
            persons = self.handle.read().registry.len(),
            bytes = file.len(),
            first = fresh,
            "Snapshot installed."
        );
        // Wake the shredder now, not at the next restart: what this node held before may
        // include persons the snapshot no longer has (a lane that was down during a cancellation
        // catches up this way once the leader purged its log).
        if let Some(index) = erased_at {
            self.erased.send_replace(index);
        }
        Ok(())
    }
}

/// Writes the replica checkpoint ([`super::checkpoint`]) of a node whose Raft has stopped.
pub struct Checkpointer {
    handle: GalleryHandle,
    keyring: Arc<Keyring>,
    path: PathBuf,
}

impl Checkpointer {
    /// Writes the checkpoint of the replica as it is (blocking: run off the runtime's threads).
    /// `Ok(false)`: none written, as the replica holds changes sled does not (a failed apply).
    pub fn write(&self) -> Result<bool> {
        let (_gate, guard) = self.handle.read_whole();
        super::checkpoint::write(
            &self.path,
            &self.keyring,
            guard.last_applied,
            &guard.registry,
        )
    }
}

/// Re-seals the state machine's at-rest data under the keyring's current key.
pub struct Resealer {
    db: sled::Db,
    meta: sled::Tree,
    keys: sled::Tree,
    reasons: sled::Tree,
    notices: sled::Tree,
    keyring: Arc<Keyring>,
    snapshot_path: PathBuf,
    snapshot_lock: SnapshotLock,
    handle: GalleryHandle,
}

impl Resealer {
    /// Keeps snapshot builds and installs out until dropped, once the one in progress (if any)
    /// is done and its file in place. A key rotation holds it from before it begins to after it
    /// retires the old key: a build seals its file's key and opens person keys under the key
    /// current when it began, and neither may be retired under it (the file would no longer
    /// open; the build would fail, which openraft takes as fatal).
    pub async fn hold_builds(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.handle.replacing.building.lock().await
    }

    /// Rotates the node's storage key: a new key for all that is written from now on, every
    /// value of the log and of the state machine still under the old one re-sealed, then the old
    /// one destroyed (what it sealed and nothing re-sealed, such as a cancelled person's key,
    /// can no longer be read). No snapshot build or install runs meanwhile; one in progress is
    /// waited for. Returns the new epoch and how many values were re-sealed.
    pub async fn rotate(&self, log: &super::log_store::LogStore) -> Result<(u32, usize)> {
        let _builds = self.hold_builds().await;
        let epoch = self.keyring.begin_rotation()?;
        let resealed = log.reseal().await? + self.reseal().await?;
        self.keyring.finish_rotation()?;
        Ok((epoch, resealed))
    }

    /// Log index of the latest cancellation already shredded (persisted).
    pub fn shredded_index(&self) -> Result<u64> {
        shredded_index(&self.meta)
    }

    /// Records that cancellations up to `index` are shredded.
    pub fn set_shredded_index(&self, index: u64) -> Result<()> {
        let bytes = postcard::to_stdvec(&index).map_err(|e| Error::Store(e.to_string()))?;
        self.meta.insert(SHREDDED, bytes)?;
        self.db.flush()?;
        Ok(())
    }

    /// Re-seals person keys, audit reasons, cancellation notices and the snapshot file's key
    /// still under an older key.
    /// Returns how many values were re-sealed.
    pub async fn reseal(&self) -> Result<usize> {
        let mut n = reseal_trees(
            &self.keyring,
            vec![
                (self.keys.clone(), KEYS),
                (self.reasons.clone(), AUDIT_REASONS),
                (self.notices.clone(), NOTICES),
            ],
        )
        .await?;
        self.db.flush_async().await?;
        let _guard = self.snapshot_lock.lock().await;
        if self.snapshot_path.exists()
            && SealedFile::reseal_key(&self.snapshot_path, &self.keyring)?
        {
            n += 1;
        }
        Ok(n)
    }
}

/// Re-seals every value of each `(tree, purpose)` still under an older key of `keyring`
/// (compare-and-swap: a value written meanwhile wins); returns how many. A million values take
/// seconds of AEAD work, so it runs off the runtime's threads (a worker held that long starves
/// the node's other tasks: its QUIC endpoint, status calls).
pub(crate) async fn reseal_trees(
    keyring: &Arc<Keyring>,
    trees: Vec<(sled::Tree, &'static [u8])>,
) -> Result<usize> {
    let keyring = keyring.clone();
    tokio::task::spawn_blocking(move || {
        let mut n = 0;
        for (tree, purpose) in &trees {
            for item in tree.iter() {
                let (k, sealed) = item?;
                if !keyring.is_stale(&sealed) {
                    continue;
                }
                let plain = keyring.open(purpose, &k, &sealed)?;
                let fresh = keyring.seal(purpose, &k, &plain)?;
                if tree
                    .compare_and_swap(&k, Some(sealed), Some(fresh))?
                    .is_ok()
                {
                    n += 1;
                }
            }
        }
        Ok(n)
    })
    .await
    .map_err(|e| Error::Store(format!("re-sealing task: {e}")))?
}

fn shredded_index(meta: &sled::Tree) -> Result<u64> {
    Ok(meta_get::<u64>(meta, SHREDDED)?.unwrap_or(0))
}

fn meta_get<T: serde::de::DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>> {
    match tree.get(key)? {
        None => Ok(None),
        Some(v) => postcard::from_bytes(&v).map(Some).map_err(|e| {
            Error::Store(format!(
                "state machine meta {}: {e}",
                String::from_utf8_lossy(key)
            ))
        }),
    }
}

fn id_of(key: &[u8]) -> Result<PersonId> {
    <[u8; 8]>::try_from(key)
        .map(|b| PersonId(u64::from_be_bytes(b)))
        .map_err(|_| Error::Store(format!("malformed person key {}", hex::encode(key))))
}

/// Person records sealed or opened per parallel step when a replica loads in bulk (start-up, snapshot
/// install): enough to keep every core busy, few enough to stay small in memory.
const LOAD_BATCH: usize = 4096;

/// The most bytes a bulk load writes in one sled batch. sled 0.34 keeps what a large batch wrote
/// in memory for good: 1M persons written as batches of 4,096 left 1.8 GiB resident (1.4 GiB
/// after the database was dropped), as batches of 1,024 (~320 KiB) 128 MiB, in a program with
/// sled alone; a 10M install grew a node past 15 GiB before this bound (BENCHMARKS.md).
const SLED_BATCH_BYTES: usize = 256 << 10;

/// One person's sealed data key and sealed record, under the person's key in both trees.
type SealedPerson = ([u8; 8], Vec<u8>, Vec<u8>);

/// Runs `f` in the scan pool when there is one (rayon's parallel iterators in `f` then use its
/// pinned threads), else in rayon's global pool.
fn in_pool<R: Send>(pool: Option<&ScanPool>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Restores every stored person into `registry` (indexed; the records stay in sled): opening a
/// record is two AEAD operations and a decode, done on every core, [`LOAD_BATCH`] records at a
/// time, then restored in key order.
fn load_records(
    mut registry: Registry,
    persons: &sled::Tree,
    keys: &sled::Tree,
    keyring: &Keyring,
    pool: Option<&ScanPool>,
) -> Result<Registry> {
    let open_one = |(k, sealed_key): &(sled::IVec, sled::IVec)| -> Result<Entry> {
        let id = id_of(k)?;
        let key = open_data_key(keyring, k, sealed_key)?;
        let sealed = persons
            .get(k)?
            .ok_or_else(|| Error::Store(format!("{id} has a key but no record")))?;
        open_entry(&key, k, &sealed)
    };
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    let mut items = keys.iter();
    loop {
        batch.clear();
        for item in items.by_ref().take(LOAD_BATCH) {
            batch.push(item?);
        }
        if batch.is_empty() {
            return Ok(registry);
        }
        let entries = in_pool(pool, || {
            batch.par_iter().map(open_one).collect::<Result<Vec<_>>>()
        })?;
        for entry in entries {
            registry.restore(entry)?;
        }
    }
}

fn open_data_key(keyring: &Keyring, k: &[u8], sealed: &[u8]) -> Result<DataKey> {
    let bytes = keyring.open(KEYS, k, sealed)?;
    DataKey::from_bytes(&bytes).ok_or_else(|| Error::Decrypt("a person key".into()))
}

fn open_entry(key: &DataKey, k: &[u8], sealed: &[u8]) -> Result<Entry> {
    let plain = Zeroizing::new(
        key.sealer()
            .open(PERSONS, k, sealed)
            .map_err(|_| Error::Decrypt("a person record".into()))?,
    );
    postcard::from_bytes(&plain).map_err(|e| Error::Store(format!("a person record: {e}")))
}

/// The registry's [`EntryStore`]: the persons as the state machine wrote them, sealed in sled.
/// A read opens the person's data key and record (two AEAD operations); the registry holds in
/// memory only what is not written yet, so a lane node's records stay on disk (issue 17 §2).
struct SealedEntries {
    persons: sled::Tree,
    keys: sled::Tree,
    keyring: Arc<Keyring>,
    /// What an install changes ([`Replacement`]).
    replacing: Arc<Replacement>,
    /// The generation of the stored persons this store's registry was built over.
    generation: u64,
}

impl SealedEntries {
    fn open_stored(&self, k: &[u8], sealed_key: &[u8]) -> Result<StoredBytes> {
        open_stored(&self.keyring, &self.persons, k, sealed_key)
    }
}

/// The stored entry of the person under `k`, whose sealed data key is `sealed_key`.
fn open_stored(
    keyring: &Keyring,
    persons: &sled::Tree,
    k: &[u8],
    sealed_key: &[u8],
) -> Result<StoredBytes> {
    let sealed = persons
        .get(k)?
        .ok_or_else(|| Error::Store(format!("{} has a key but no record", hex::encode(k))))?;
    open_sealed(keyring, k, sealed_key, &sealed)
}

/// A person's entry from their sealed data key and sealed record.
fn open_sealed(
    keyring: &Keyring,
    k: &[u8],
    sealed_key: &[u8],
    sealed: &[u8],
) -> Result<StoredBytes> {
    let key = open_data_key(keyring, k, sealed_key)?;
    key.sealer()
        .open(PERSONS, k, sealed)
        .map(Zeroizing::new)
        .map_err(|_| Error::Decrypt("a person record".into()))
}

/// The stored persons as a snapshot build's cut has them ([`Cut`]), in id order: read from sled
/// one at a time under the cut's lock, opened outside it.
struct CutScan<'a> {
    replacing: &'a Replacement,
    keys: sled::Iter,
    persons: &'a sled::Tree,
    keyring: &'a Keyring,
    /// Read, not yet given out.
    ready: VecDeque<Read>,
    done: bool,
}

/// A person as a [`CutScan`] read them.
enum Read {
    /// What an apply kept from the cut.
    Kept(StoredBytes),
    /// As sled holds them: the key, the sealed data key and the sealed record.
    Stored(sled::IVec, sled::IVec, sled::IVec),
}

impl<'a> CutScan<'a> {
    fn new(
        replacing: &'a Replacement,
        keys: &sled::Tree,
        persons: &'a sled::Tree,
        keyring: &'a Keyring,
        next_id: u64,
    ) -> CutScan<'a> {
        CutScan {
            replacing,
            keys: keys.range(..next_id.to_be_bytes()),
            persons,
            keyring,
            ready: VecDeque::new(),
            done: false,
        }
    }

    /// Reads the next stored person, and before them any person the cut kept that sled no
    /// longer holds (cancelled since).
    fn step(&mut self) -> Result<()> {
        let mut cut = self.replacing.cut();
        let cut = cut
            .as_mut()
            .ok_or_else(|| Error::Store("a snapshot build lost its cut".into()))?;
        let next = self.keys.next().transpose()?;
        let next_id = next.as_ref().map(|(k, _)| id_of(k)).transpose()?;
        if !cut.before.is_empty() {
            let later = match next_id {
                Some(id) => cut.before.split_off(&id.0),
                None => BTreeMap::new(),
            };
            let passed = std::mem::replace(&mut cut.before, later);
            self.ready
                .extend(passed.into_values().flatten().map(Read::Kept));
        }
        match (next, next_id) {
            (Some((k, sealed_key)), Some(id)) => {
                match cut.before.remove(&id.0) {
                    Some(kept) => self.ready.extend(kept.map(Read::Kept)),
                    None => {
                        let sealed = self
                            .persons
                            .get(&k)?
                            .ok_or_else(|| Error::Store(format!("{id} has a key but no record")))?;
                        self.ready.push_back(Read::Stored(k, sealed_key, sealed));
                    }
                }
                cut.passed = Some(id.0);
            }
            _ => {
                cut.passed = Some(u64::MAX);
                self.done = true;
            }
        }
        Ok(())
    }
}

impl Iterator for CutScan<'_> {
    type Item = Result<StoredBytes>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.ready.pop_front() {
                Some(Read::Kept(bytes)) => return Some(Ok(bytes)),
                Some(Read::Stored(k, sealed_key, sealed)) => {
                    return Some(open_sealed(self.keyring, &k, &sealed_key, &sealed));
                }
                None if self.done => return None,
                None => {
                    if let Err(e) = self.step() {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}

fn storage_failure(e: Error) -> clearway_gallery::Error {
    clearway_gallery::Error::Storage {
        reason: e.to_string(),
    }
}

impl EntryStore for SealedEntries {
    fn read(&self, id: PersonId) -> clearway_gallery::Result<Option<StoredBytes>> {
        let current = || {
            if self
                .replacing
                .generation
                .load(std::sync::atomic::Ordering::SeqCst)
                == self.generation
            {
                Ok(())
            } else {
                Err(clearway_gallery::Error::Storage {
                    reason: "the replica is being replaced by a snapshot".into(),
                })
            }
        };
        current()?;
        let k = id.0.to_be_bytes();
        let Some(sealed_key) = self.keys.get(k).map_err(|e| storage_failure(e.into()))? else {
            current()?;
            return Ok(None);
        };
        let plain = self.open_stored(&k, &sealed_key).map_err(storage_failure)?;
        // An install that began meanwhile may have replaced what was read.
        current()?;
        Ok(Some(plain))
    }

    /// In key order (big-endian ids: increasing). The caller holds the install gate
    /// ([`GalleryHandle::read_whole`]).
    fn scan(
        &self,
    ) -> Box<dyn Iterator<Item = clearway_gallery::Result<(PersonId, StoredBytes)>> + '_> {
        Box::new(self.keys.iter().map(|item| {
            let (k, sealed_key) = item.map_err(|e| storage_failure(e.into()))?;
            let id = id_of(&k).map_err(storage_failure)?;
            let plain = self.open_stored(&k, &sealed_key).map_err(storage_failure)?;
            Ok((id, plain))
        }))
    }
}

/// A notice's storage key: its log index, then its person id, big-endian (oldest first).
fn notice_key(id: NoticeId) -> [u8; 16] {
    let mut k = [0; 16];
    k[..8].copy_from_slice(&id.index.to_be_bytes());
    k[8..].copy_from_slice(&id.person.0.to_be_bytes());
    k
}

fn seal_notice(keyring: &Keyring, k: &[u8; 16], notice: &CancellationNotice) -> Result<Vec<u8>> {
    let plain =
        Zeroizing::new(postcard::to_stdvec(notice).map_err(|e| Error::Store(e.to_string()))?);
    keyring.seal(NOTICES, k, &plain)
}

fn open_notice(
    keyring: &Keyring,
    k: &[u8],
    sealed: &[u8],
) -> Result<(NoticeId, CancellationNotice)> {
    let id = <[u8; 16]>::try_from(k)
        .map(|k| NoticeId {
            index: u64::from_be_bytes(k[..8].try_into().unwrap_or_default()),
            person: PersonId(u64::from_be_bytes(k[8..].try_into().unwrap_or_default())),
        })
        .map_err(|_| Error::Store(format!("a cancellation notice key of {} bytes", k.len())))?;
    let plain = Zeroizing::new(keyring.open(NOTICES, k, sealed)?);
    let notice = postcard::from_bytes(&plain)
        .map_err(|e| Error::Store(format!("a cancellation notice: {e}")))?;
    Ok((id, notice))
}

/// Decodes a snapshot of the one-blob formats (`CLWSNAP4` and older): bad bytes are an error,
/// never a panic. A snapshot from before the revocation list (`CLWSNAP2`) decodes with an empty
/// list.
fn decode_legacy(data: &[u8]) -> Result<(RegistryImage, Ledger)> {
    let malformed = |e: postcard::Error| Error::Store(format!("malformed snapshot: {e}"));
    if let Some(body) = data.strip_prefix(SNAPSHOT_MAGIC_V4) {
        return postcard::from_bytes(body).map_err(malformed);
    }
    /// The registry image before the cancellation notices (`CLWSNAP2`, `CLWSNAP3`).
    #[derive(serde::Deserialize)]
    struct ImageV3 {
        next_id: u64,
        entries: Vec<Entry>,
    }
    impl From<ImageV3> for RegistryImage {
        fn from(old: ImageV3) -> RegistryImage {
            RegistryImage {
                next_id: old.next_id,
                entries: old.entries,
                notices: Vec::new(),
            }
        }
    }
    if let Some(body) = data.strip_prefix(SNAPSHOT_MAGIC_V3) {
        let (image, ledger): (ImageV3, Ledger) = postcard::from_bytes(body).map_err(malformed)?;
        return Ok((image.into(), ledger));
    }
    if let Some(body) = data.strip_prefix(SNAPSHOT_MAGIC_V2) {
        /// The ledger as `CLWSNAP2` carried it.
        #[derive(serde::Deserialize)]
        struct LedgerV2 {
            view: LedgerView,
            audit: Vec<AuditRecord>,
        }
        let (image, old): (ImageV3, LedgerV2) = postcard::from_bytes(body).map_err(malformed)?;
        return Ok((
            image.into(),
            Ledger::from_parts(old.view, old.audit, Revocations::new()),
        ));
    }
    Err(Error::Store("not a clearway snapshot (bad magic)".into()))
}

/// Loads the ledger's view and audit trail. A trail that does not verify is loaded as it is (and
/// logged): the console verifies trails and shows the break to people who can act on it.
fn load_ledger(
    meta: &sled::Tree,
    audit: &sled::Tree,
    reasons: &sled::Tree,
    keyring: &Keyring,
) -> Result<Ledger> {
    let view: LedgerView = meta_get(meta, LEDGER_VIEW)?.unwrap_or_default();
    let mut records = Vec::new();
    for item in audit.iter() {
        let (k, bytes) = item?;
        let mut record = postcard::from_bytes::<AuditRecord>(&bytes)
            .map_err(|e| Error::Store(format!("an audit record: {e}")))?;
        if let Some(sealed) = reasons.get(&k)? {
            let plain = Zeroizing::new(keyring.open(AUDIT_REASONS, &k, &sealed)?);
            record.reason = Some(
                postcard::from_bytes(&plain)
                    .map_err(|e| Error::Store(format!("an audit reason: {e}")))?,
            );
        }
        records.push(record);
    }
    if let Err(e) = verify_chain(&records) {
        warn!(error = %e, "The stored audit trail does not verify.");
    }
    let revoked: Revocations = meta_get(meta, REVOKED)?.unwrap_or_default();
    Ok(Ledger::from_parts(view, records, revoked))
}

/// Where a snapshot being received is written.
fn incoming_path(snapshot: &Path) -> PathBuf {
    snapshot.with_extension("incoming")
}

/// Where a snapshot being built is written.
/// Serialises what replaces or rewrites the snapshot file, and knows the last log id of the
/// snapshot it holds (`None`: not known since start). A build that finishes after an install
/// of a newer snapshot must not put its older file in the newer one's place.
type SnapshotLock = Arc<tokio::sync::Mutex<Option<LogId>>>;

fn building_path(snapshot: &Path) -> PathBuf {
    snapshot.with_extension("building")
}

/// Converts a snapshot file of the one-blob format (`u32 BE length ‖ sealed meta ‖ sealed data`,
/// data `CLWSNAP4` or older) into a sealed stream file, once, when the node opens. The old file
/// is read whole: it was written whole.
fn convert_legacy_snapshot(keyring: &Keyring, path: &Path) -> Result<()> {
    if !path.exists() || is_sealed_file(path)? {
        return Ok(());
    }
    let Some((meta, data)) = read_legacy_snapshot_file(keyring, path)? else {
        return Ok(());
    };
    let (image, ledger) = decode_legacy(&data)?;
    drop(data);
    let entries = image
        .entries
        .iter()
        .map(|e| postcard::to_stdvec(e).map_err(|e| Error::Store(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    let building = building_path(path);
    let file = SealedFile::create(&building, keyring)?;
    let mut file = stream::write(
        file,
        &meta,
        image.next_id,
        (entries.len() as u64, entries.iter().map(Ok)),
        image.notices.iter().map(|(id, n)| (id, n)),
        &ledger,
    )?;
    file.sync()?;
    std::fs::rename(&building, path).map_err(|e| Error::io(path, e))?;
    info!(
        applied = ?meta.last_log_id.map(|l| l.index),
        "Converted the snapshot file to the streaming format."
    );
    Ok(())
}

/// Reads a snapshot file of the one-blob format.
fn read_legacy_snapshot_file(
    keyring: &Keyring,
    path: &Path,
) -> Result<Option<(SnapshotMeta, Zeroizing<Vec<u8>>)>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bad = || Error::Store(format!("{}: malformed snapshot file", path.display()));
    let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad());
    }
    let (sealed_meta, sealed_data) = rest.split_at(len);
    let meta = keyring.open(b"snapshot", b"meta", sealed_meta)?;
    let meta: SnapshotMeta = postcard::from_bytes(&meta).map_err(|_| bad())?;
    let data = keyring.open(b"snapshot", b"data", sealed_data)?;
    Ok(Some((meta, data)))
}

/// Writes a snapshot file of the one-blob format, as nodes did before streaming snapshots (for
/// the conversion's test).
#[cfg(test)]
pub(crate) fn write_legacy_snapshot_file(
    keyring: &Keyring,
    path: &Path,
    meta: &SnapshotMeta,
    registry: &Registry,
    ledger: &Ledger,
) -> Result<()> {
    let mut data = SNAPSHOT_MAGIC_V4.to_vec();
    data.extend(
        postcard::to_stdvec(&(registry.image_ref(), ledger))
            .map_err(|e| Error::Store(e.to_string()))?,
    );
    let meta_bytes = postcard::to_stdvec(meta).map_err(|e| Error::Store(e.to_string()))?;
    let sealed_meta = keyring.seal(b"snapshot", b"meta", &meta_bytes)?;
    let sealed_data = keyring.seal(b"snapshot", b"data", &data)?;
    let mut bytes = (sealed_meta.len() as u32).to_be_bytes().to_vec();
    bytes.extend(sealed_meta);
    bytes.extend(sealed_data);
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Opens the snapshot file and reads its meta: the snapshot as openraft sends it.
fn current_snapshot(keyring: &Keyring, path: &Path) -> Result<Option<Snapshot>> {
    if !path.exists() {
        return Ok(None);
    }
    let mut file = SealedFile::open(path, keyring)?
        .ok_or_else(|| Error::Store(format!("{}: not a sealed snapshot file", path.display())))?;
    let (meta, _) = StreamReader::start(&mut file)?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(path, e))?;
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(SnapshotData::new(file)),
    }))
}

fn storage_err(e: Error) -> StorageError {
    StorageIOError::write_state_machine(&e).into()
}

/// Builds snapshots from the live registry and the persons sled holds.
#[derive(Clone)]
pub struct SnapshotBuilder {
    handle: GalleryHandle,
    persons: sled::Tree,
    keys: sled::Tree,
    keyring: Arc<Keyring>,
    snapshot_path: PathBuf,
    snapshot_lock: SnapshotLock,
}

impl SnapshotBuilder {
    /// Writes the state at the applied position it begins at as a stream into a new sealed file
    /// (blocking: run off the runtime's threads). Installs and other builds wait for it;
    /// applies, searches and entry reads do not.
    fn build_blocking(&self) -> Result<(SnapshotMeta, SealedFile)> {
        self.build_blocking_with(&mut |_| {})
    }

    /// [`Self::build_blocking`], calling `read` with the number of persons read so far after
    /// each (a test steps in there).
    pub(crate) fn build_blocking_with(
        &self,
        read: &mut dyn FnMut(u64),
    ) -> Result<(SnapshotMeta, SealedFile)> {
        // The build lock first: a key rotation must not retire the key this file is sealed under
        // before the file is in place ([`Resealer::hold_builds`]).
        let (hold, view) = self.handle.begin_build()?;
        let building = building_path(&self.snapshot_path);
        let file = SealedFile::create(&building, &self.keyring)?;
        let BuildView {
            meta,
            next_id,
            persons,
            notices,
            ledger,
        } = view;
        // Sled held the replica's every person at the cut (nothing was unwritten, and no apply
        // was half-way); the scan reads them as they were then, in id order.
        let mut count = 0;
        let scan = CutScan::new(
            &self.handle.replacing,
            &self.keys,
            &self.persons,
            &self.keyring,
            next_id,
        )
        .inspect(|_| {
            count += 1;
            read(count);
        });
        let file = stream::write(
            std::io::BufWriter::with_capacity(1 << 20, file),
            &meta,
            next_id,
            (persons, scan),
            notices.iter().map(|(id, n)| (id, n)),
            &ledger,
        )?;
        hold.end_cut();
        let file = file
            .into_inner()
            .map_err(|e| Error::io(&building, e.into_error()))?;
        let file = file.into_reader()?;
        // In place (or dropped) before the build lock is let go.
        let mut kept = self.snapshot_lock.blocking_lock();
        if kept.is_some_and(|k| Some(k) >= meta.last_log_id) {
            // An install put a newer snapshot in place while this one was built: keep that
            // one; this one is still sent from its open file, which is removed now.
            std::fs::remove_file(file.path()).map_err(|e| Error::io(file.path(), e))?;
        } else {
            file.seal_key_current(&self.keyring)?;
            std::fs::rename(file.path(), &self.snapshot_path)
                .map_err(|e| Error::io(&self.snapshot_path, e))?;
            *kept = meta.last_log_id;
        }
        drop(kept);
        drop(hold);
        Ok((meta, file))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> std::result::Result<Snapshot, StorageError> {
        let this = self.clone();
        let (meta, file) = tokio::task::spawn_blocking(move || this.build_blocking())
            .await
            .map_err(|e| Error::Store(format!("snapshot build task: {e}")))
            .and_then(|r| r)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        info!(
            applied = ?meta.last_log_id.map(|l| l.index),
            bytes = file.len(),
            "Snapshot built."
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(SnapshotData::new(file)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> std::result::Result<(Option<LogId>, StoredMembership), StorageError> {
        let guard = self.handle.read();
        Ok((guard.last_applied, guard.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> std::result::Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        let mut changes = Vec::new();
        let mut erased_at = None;
        let mut ledger_changes = LedgerChanges::default();
        // Exclusive of an install and of whoever reads every stored person at once (a digest, a
        // checkpoint, a snapshot build taking its cut); a build in progress keeps what this
        // changes before it writes ([`Cut`]). Nothing here awaits while the gate is held.
        let gate = self.handle.replacing.exclusive();
        let (last_applied, membership, next_id) = {
            let mut guard = self.handle.write();
            let guard = &mut *guard;
            for entry in entries {
                guard.last_applied = Some(entry.log_id);
                let mut response = Response::default();
                match entry.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(Request::V1(commands)) => {
                        guard.registry.begin_batch(entry.log_id.index, None);
                        for command in commands {
                            let before = changes.len();
                            response
                                .outcomes
                                .push(guard.registry.apply(command, &mut changes));
                            for change in &changes[before..] {
                                if let Change::Erase(id) = change {
                                    // Reasons about the person go with them (V2 batches do
                                    // this inside the ledger).
                                    guard.ledger.forget_person(*id, &mut ledger_changes);
                                    erased_at = Some(entry.log_id.index);
                                }
                            }
                        }
                    }
                    EntryPayload::Normal(Request::V2(ops)) => {
                        let before = changes.len();
                        response.outcomes = guard.ledger.apply(
                            ops,
                            entry.log_id.leader_id.term,
                            entry.log_id.index,
                            &mut guard.registry,
                            &mut changes,
                            &mut ledger_changes,
                        );
                        if changes[before..]
                            .iter()
                            .any(|c| matches!(c, Change::Erase(_)))
                        {
                            erased_at = Some(entry.log_id.index);
                        }
                    }
                    EntryPayload::Membership(m) => {
                        guard.membership = StoredMembership::new(Some(entry.log_id), m);
                    }
                }
                responses.push(response);
            }
            if let Some(e) = guard.registry.take_fault() {
                // A person's stored entry could not be read: nothing of this batch is written,
                // and openraft stops this node's state machine (its replica in memory is ahead
                // of sled; a restart reloads from sled and applies the batch again).
                return Err(storage_err(Error::Store(format!(
                    "applying the log read the gallery's store and failed: {e}"
                ))));
            }
            (
                guard.last_applied,
                guard.membership.clone(),
                guard.registry.next_id(),
            )
        };
        self.persist(
            &changes,
            last_applied,
            &membership,
            next_id,
            erased_at,
            &ledger_changes,
        )
        .map_err(storage_err)?;
        // Written: the registry reads those persons from sled from now on.
        self.handle.write().registry.written();
        drop(gate);
        self.flush().await.map_err(storage_err)?;
        if let Some(index) = erased_at {
            self.erased.send_replace(index);
        }
        if ledger_changes.revoked {
            let list = self.handle.read().ledger.revoked().clone();
            self.revoked.send_replace(list);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            handle: self.handle.clone(),
            persons: self.persons.clone(),
            keys: self.keys.clone(),
            keyring: self.keyring.clone(),
            snapshot_path: self.snapshot_path.clone(),
            snapshot_lock: self.snapshot_lock.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> std::result::Result<Box<SnapshotData>, StorageError> {
        self.exposure
            .begin_receiving()
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        // The sender says how long the snapshot is: keep a reserve of the disk whatever it says.
        let file = SealedFile::create(&incoming_path(&self.snapshot_path), &self.keyring)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?
            .with_reserve(super::snapshot::file::RECEIVE_RESERVE);
        Ok(Box::new(SnapshotData::new(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotData>,
    ) -> std::result::Result<(), StorageError> {
        let fail = |e: Error| StorageIOError::write_snapshot(Some(meta.signature()), &e);
        let incoming = incoming_path(&self.snapshot_path);
        let file = match snapshot.downcast::<SealedFile>() {
            // What this node received (begin_receiving_snapshot's file).
            Ok(file) if file.path() == incoming => file.into_reader().map_err(fail)?,
            // Another stream (another node's file, as in tests; openraft's storage suite hands
            // back what it was given): copied into a sealed file of this node's first.
            Ok(file) => self.copy_in(SnapshotData::new(file)).await.map_err(fail)?,
            Err(other) => self.copy_in(other).await.map_err(fail)?,
        };
        self.install(meta, file).await.map_err(|e| fail(e).into())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> std::result::Result<Option<Snapshot>, StorageError> {
        let _guard = self.snapshot_lock.lock().await;
        current_snapshot(&self.keyring, &self.snapshot_path)
            .map_err(|e| StorageIOError::read_snapshot(None, &e).into())
    }
}
