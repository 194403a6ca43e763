//! Whether this node's disk has ever held personal data: it decides whether a snapshot install
//! must be followed by a key rotation.
//!
//! After installing a snapshot a node normally shreds ([`super::node`]): what it held before
//! may include persons cancelled since, and sled leaves old bytes in its files, so the storage
//! key rotates and every record is re-sealed. At 10M persons that is minutes of work. A node
//! that never held personal data before its first snapshot (a fresh learner) has nothing to
//! shred: all it holds is the snapshot, which is the live gallery at the snapshot's index. For
//! it the install itself records the cancellations up to that index as shredded.
//!
//! The state is one value in its own tree (`exposure`; no other component clears it), and it
//! only moves forward:
//!
//! - *pristine*: nothing personal was ever written (set when the database is created: a
//!   database from before this mark has other trees and no mark, and counts as held);
//! - *receiving*: the first snapshot transfer began (its file is sealed under this node's key);
//! - *held*: anything else happened — a log entry with a payload was appended, a second transfer
//!   began (the first one's bytes may linger), or an install began.
//!
//! An install into a node that is *receiving* needs no rotation; any other install does. Each
//! move is flushed before the write it announces, so a crash can only leave the node marked as
//! holding more than it does, never less.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Result;

const TREE: &[u8] = b"exposure";
const STATE: &[u8] = b"state";
const PRISTINE: u8 = 0;
const RECEIVING: u8 = 1;
const HELD: u8 = 2;

/// The node's exposure mark. Cheap to clone; clones share the tree and the cached "held".
#[derive(Clone)]
pub struct Exposure {
    db: sled::Db,
    tree: sled::Tree,
    /// Set once the mark says held (it never goes back), so appends skip the read.
    held: Arc<AtomicBool>,
}

impl Exposure {
    /// Opens the mark in `db`; in a database just created, sets it to pristine.
    pub fn open(db: &sled::Db) -> Result<Exposure> {
        // Before any tree of the node's is opened, a new database has only sled's default tree.
        let new = db.is_empty() && db.tree_names().iter().all(|n| n == b"__sled__default");
        let tree = db.open_tree(TREE)?;
        let exposure = Exposure {
            db: db.clone(),
            tree,
            held: Arc::new(AtomicBool::new(false)),
        };
        match exposure.state()? {
            Some(HELD) => exposure.held.store(true, Ordering::Release),
            Some(_) => {}
            None if new => exposure.set(PRISTINE)?,
            // A database from before the mark: whatever it holds or held counts.
            None => exposure.hold()?,
        }
        Ok(exposure)
    }

    fn state(&self) -> Result<Option<u8>> {
        Ok(self.tree.get(STATE)?.and_then(|v| v.first().copied()))
    }

    /// Whether the node has held personal data (other than a first snapshot in transfer).
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }

    /// Marks the node as holding personal data, on disk before returning (a no-op once marked).
    pub fn hold(&self) -> Result<()> {
        if self.is_held() {
            return Ok(());
        }
        self.set(HELD)?;
        self.held.store(true, Ordering::Release);
        Ok(())
    }

    /// A snapshot transfer begins: the first one into a pristine node is *receiving*; any later
    /// one makes the node *held*.
    pub fn begin_receiving(&self) -> Result<()> {
        if self.is_held() {
            return Ok(());
        }
        match self.state()? {
            Some(PRISTINE) => self.set(RECEIVING),
            _ => self.hold(),
        }
    }

    /// An install begins: the node is *held* from now on. Returns whether it held nothing before
    /// but the snapshot being installed (then the install needs no key rotation).
    pub fn begin_install(&self) -> Result<bool> {
        if self.is_held() {
            return Ok(false);
        }
        let fresh = self.state()? == Some(RECEIVING);
        self.hold()?;
        Ok(fresh)
    }

    fn set(&self, state: u8) -> Result<()> {
        self.tree.insert(STATE, &[state])?;
        self.db.flush()?;
        Ok(())
    }
}
