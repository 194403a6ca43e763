//! The replica checkpoint: what a node's registry holds in memory beside its sealed records — the
//! 1:N index's rows and the document index — written when the node stops cleanly, so that it
//! starts again without opening every record (issue 17 §2: start-up at 10M persons).
//!
//! A checkpoint is a [`SealedFile`] (`snapshot.checkpoint`: sealed block by block under its own
//! key, wrapped by the keyring, like a snapshot; so a key rotation after a cancellation makes an
//! old one unreadable). Layout of its stream: `CLWCKPT1` ‖ `u32 BE` length ‖ [`Head`] (`postcard`)
//! ‖ `rows` × (person `u64 BE` ‖ scale `f32 LE` ‖ `dim` int8 values) ‖ `documents` × (hash
//! `u64 BE` ‖ person `u64 BE`), and nothing after.
//!
//! **Invariant:** a checkpoint is used only for the exact state it was written from: the applied
//! log id it names must be the one sled holds (every apply and every install moves it on), and
//! its model and dimension the node's. It is consumed at start-up — removed whether it was used
//! or not — so a node that stops without writing one (a crash, a kill) loads its records instead
//! of a stale checkpoint. Anything wrong with it (unreadable, cut short, another state) is logged
//! and the records are loaded.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use clearway_gallery::{CheckpointHeader, EntryStore, ModelId, PersonId, Registry};
use serde::{Deserialize, Serialize};

use super::snapshot::file::SealedFile;
use super::typ::LogId;
use crate::error::{Error, Result};
use crate::store::keyring::Keyring;

/// The stream's first bytes.
const MAGIC: &[u8; 8] = b"CLWCKPT1";
/// The longest [`Head`] read back (it is a few dozen bytes).
const MAX_HEAD: u32 = 4096;

/// What the checkpoint is of.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct Head {
    /// The last log id applied to the state written.
    applied: Option<LogId>,
    /// The index's model and dimension.
    model: ModelId,
    dim: u32,
    /// The registry's counts and document keys.
    registry: CheckpointHeader,
}

/// The state a checkpoint must be of to be used: sled's applied log id, the node's model and
/// dimension.
#[derive(Clone, Copy)]
pub struct Of<'a> {
    /// The last log id applied, as sled holds it.
    pub applied: Option<LogId>,
    /// The index's model.
    pub model: &'a ModelId,
    /// Its dimension.
    pub dim: usize,
}

/// Where a node keeps its checkpoint, beside its snapshot.
pub fn path(snapshot: &Path) -> PathBuf {
    snapshot.with_extension("checkpoint")
}

/// Writes `registry`'s checkpoint at `path` (through a `.building` file, renamed when whole and
/// synced). `Ok(false)`: nothing written, as the registry holds changes not written to sled.
pub fn write(
    path: &Path,
    keyring: &Keyring,
    applied: Option<LogId>,
    registry: &Registry,
) -> Result<bool> {
    let Some((header, rows, documents)) = registry.checkpoint() else {
        return Ok(false);
    };
    let building = path.with_extension("checkpoint.building");
    let head = Head {
        applied,
        model: registry.index().model().clone(),
        dim: u32::try_from(registry.index().dim()).unwrap_or(u32::MAX),
        registry: header,
    };
    let head = postcard::to_stdvec(&head).map_err(|e| Error::Store(e.to_string()))?;
    let io = |e: std::io::Error| Error::io(&building, e);
    let mut w = BufWriter::with_capacity(1 << 20, SealedFile::create(&building, keyring)?);
    w.write_all(MAGIC).map_err(io)?;
    w.write_all(&(head.len() as u32).to_be_bytes())
        .map_err(io)?;
    w.write_all(&head).map_err(io)?;
    let mut row = Vec::new();
    for (person, values, scale) in rows {
        row.clear();
        row.extend_from_slice(&person.0.to_be_bytes());
        row.extend_from_slice(&scale.to_le_bytes());
        row.extend(values.iter().map(|&v| v as u8));
        w.write_all(&row).map_err(io)?;
    }
    // The row buffer held templates.
    zeroize::Zeroize::zeroize(&mut row);
    for (hash, person) in documents {
        w.write_all(&hash.to_be_bytes()).map_err(io)?;
        w.write_all(&person.0.to_be_bytes()).map_err(io)?;
    }
    let mut file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync()?;
    std::fs::rename(&building, path).map_err(|e| Error::io(path, e))?;
    Ok(true)
}

/// The registry a checkpoint at `path` holds, over `store`, if there is one of exactly `state`;
/// the file is removed either way. `Ok(None)`: no checkpoint,
/// or one of another state. `Err`: one that cannot be read (the caller loads the records).
pub fn load(
    path: &Path,
    keyring: &Keyring,
    state: Of<'_>,
    store: Box<dyn EntryStore>,
) -> Result<Option<Registry>> {
    if !path.exists() {
        return Ok(None);
    }
    let loaded = read(path, keyring, state, store);
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // A checkpoint that stays could be used after the state moved on: refuse to go on.
        Err(e) => return Err(Error::io(path, e)),
    }
    loaded
}

fn read(
    path: &Path,
    keyring: &Keyring,
    Of {
        applied,
        model,
        dim,
    }: Of<'_>,
    store: Box<dyn EntryStore>,
) -> Result<Option<Registry>> {
    let bad = |what: &str| Error::Store(format!("{}: {what}", path.display()));
    let file = SealedFile::open(path, keyring)?.ok_or_else(|| bad("not a sealed file"))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let io = |e: std::io::Error| Error::io(path, e);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(io)?;
    if &magic != MAGIC {
        return Err(bad("not a replica checkpoint"));
    }
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(io)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_HEAD {
        return Err(bad("an oversized head"));
    }
    let mut head = vec![0u8; len as usize];
    r.read_exact(&mut head).map_err(io)?;
    let head: Head = postcard::from_bytes(&head).map_err(|e| bad(&format!("its head: {e}")))?;
    if head.applied != applied || &head.model != model || head.dim as usize != dim {
        return Ok(None);
    }
    // Both iterators read the one stream: `from_checkpoint` takes every row before the first
    // document pair.
    let stream = std::cell::RefCell::new(r);
    let failure = std::cell::RefCell::new(None);
    let read_exact = |buf: &mut [u8]| -> bool {
        if failure.borrow().is_some() {
            return false;
        }
        match stream.borrow_mut().read_exact(buf) {
            Ok(()) => true,
            Err(e) => {
                *failure.borrow_mut() = Some(io(e));
                false
            }
        }
    };
    let mut row = zeroize::Zeroizing::new(vec![0u8; 12 + dim]);
    let rows = (0..head.registry.rows).map_while(|_| {
        if !read_exact(&mut row) {
            return None;
        }
        let person = PersonId(u64::from_be_bytes(row[..8].try_into().unwrap_or_default()));
        let scale = f32::from_le_bytes(row[8..12].try_into().unwrap_or_default());
        let values = row[12..].iter().map(|&v| v as i8).collect();
        Some(Ok((person, values, scale)))
    });
    let documents = (0..head.registry.documents).map_while(|_| {
        let mut pair = [0u8; 16];
        if !read_exact(&mut pair) {
            return None;
        }
        let hash = u64::from_be_bytes(pair[..8].try_into().unwrap_or_default());
        let person = PersonId(u64::from_be_bytes(pair[8..].try_into().unwrap_or_default()));
        Some(Ok((hash, person)))
    });
    let registry =
        Registry::from_checkpoint(model.clone(), dim, store, &head.registry, rows, documents);
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    let mut r = stream.into_inner();
    let registry = registry.map_err(|e| bad(&e.to_string()))?;
    let mut extra = [0u8; 1];
    match r.read(&mut extra).map_err(io)? {
        0 => Ok(Some(registry)),
        _ => Err(bad("bytes after its documents")),
    }
}
