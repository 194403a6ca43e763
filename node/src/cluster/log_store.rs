//! The Raft log on sled.
//!
//! Trees: `raft_log` maps the index (u64 big-endian, so sled's order is log order) to the entry
//! (`postcard`, sealed with the node's keyring: entries carry templates and documents);
//! `raft_meta` holds the vote, the committed log id and the last purged log id (no personal data,
//! stored plain).
//!
//! An append with a payload first marks the node as holding personal data ([`Exposure`]).
//!
//! Durability: with `fsync` on (the default) `append` reports an entry written only after sled
//! has flushed it to disk; votes are always flushed before returning.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{EntryPayload, OptionalSend, RaftLogReader};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::exposure::Exposure;
use super::typ::{Entry, LogId, StorageError, StorageIOError, TypeConfig, Vote};
use crate::store::keyring::Keyring;

const TREE: &[u8] = b"raft_log";
const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"last_purged";

/// The Raft log store. Cheap to clone: clones share the trees (openraft's log reader is a clone).
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    keyring: Arc<Keyring>,
    exposure: Exposure,
    fsync: bool,
}

impl LogStore {
    /// Opens the log's trees in `db`.
    pub fn open(db: &sled::Db, keyring: Arc<Keyring>, fsync: bool) -> crate::Result<LogStore> {
        // First: in a new database it marks the node pristine (see there).
        let exposure = Exposure::open(db)?;
        let log = db.open_tree(TREE)?;
        let meta = db.open_tree("raft_meta")?;
        Ok(LogStore {
            log,
            meta,
            db: db.clone(),
            keyring,
            exposure,
            fsync,
        })
    }

    fn decode(&self, key: &[u8], sealed: &[u8]) -> Result<Entry, StorageError> {
        let plain = self
            .keyring
            .open(TREE, key, sealed)
            .map_err(|e| StorageIOError::read_logs(&e))?;
        postcard::from_bytes(&plain).map_err(|e| StorageIOError::read_logs(&e).into())
    }

    fn meta_get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.meta.get(key).map_err(|e| StorageIOError::read(&e))? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v)
                .map(Some)
                .map_err(|e| StorageIOError::read(&e).into()),
        }
    }

    fn meta_put<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        let bytes = postcard::to_stdvec(value).map_err(|e| StorageIOError::write(&e))?;
        self.meta
            .insert(key, bytes)
            .map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), StorageError> {
        self.db
            .flush_async()
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    /// Re-seals every entry still under an older key with the keyring's current key (the log part
    /// of a key rotation). Entries overwritten meanwhile are left alone. Returns how many were
    /// re-sealed.
    pub async fn reseal(&self) -> crate::Result<usize> {
        // Only if nobody replaced an entry since it was read (truncate + append).
        let n = super::state_machine::reseal_trees(&self.keyring, vec![(self.log.clone(), TREE)])
            .await?;
        self.db.flush_async().await?;
        Ok(n)
    }

    /// Applies `batch` to the log, flushed when fsync is on.
    async fn apply(&self, batch: sled::Batch) -> Result<(), StorageError> {
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        if self.fsync {
            self.flush().await?;
        }
        Ok(())
    }

    /// Removes the entries in `range` (truncate, purge), flushed when fsync is on.
    async fn remove(&self, range: (Bound<u64>, Bound<u64>)) -> Result<(), StorageError> {
        let key = |b: Bound<u64>| b.map(index_key);
        let mut batch = sled::Batch::default();
        for k in self.log.range((key(range.0), key(range.1))).keys() {
            batch.remove(k.map_err(|e| StorageIOError::write_logs(&e))?);
        }
        self.apply(batch).await
    }

    /// Writes `entries` (what `append` does before it reports them written; flushed when fsync
    /// is on).
    pub(crate) async fn write(
        &self,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        let mut personal = false;
        for entry in entries {
            personal |= matches!(entry.payload, EntryPayload::Normal(_));
            let key = index_key(entry.log_id.index);
            let bytes = postcard::to_stdvec(&entry).map_err(|e| StorageIOError::write_logs(&e))?;
            let sealed = self
                .keyring
                .seal(TREE, &key, &bytes)
                .map_err(|e| StorageIOError::write_logs(&e))?;
            batch.insert(&key, sealed);
        }
        if personal {
            // Blank and membership entries carry nothing of anyone; the rest may.
            self.exposure
                .hold()
                .map_err(|e| StorageIOError::write_logs(&e))?;
        }
        self.apply(batch).await
    }

    /// Number of entries held (not purged).
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = range.start_bound().cloned().map(index_key);
        let end = range.end_bound().cloned().map(index_key);
        let mut out = Vec::new();
        for item in self.log.range((start, end)) {
            let (k, v) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            out.push(self.decode(&k, &v)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.meta_get(PURGED)?;
        let last = match self.log.last().map_err(|e| StorageIOError::read_logs(&e))? {
            Some((k, v)) => Some(self.decode(&k, &v)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.meta_put(VOTE, vote)
            .map_err(|_| StorageIOError::write_vote(&std::io::Error::other("vote")))?;
        self.db
            .flush_async()
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.meta_get(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed on its own: losing it only means re-applying from the last applied id.
        self.meta_put(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.meta_get::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.write(entries).await?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove((Bound::Included(log_id.index), Bound::Unbounded))
            .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purge mark first: a crash half-way leaves entries below it, which are ignored.
        self.meta_put(PURGED, &log_id)?;
        self.remove((Bound::Unbounded, Bound::Included(log_id.index)))
            .await
    }
}
