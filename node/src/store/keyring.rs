//! The node's storage keyring: the key that seals everything a cluster node keeps at rest (Raft
//! log entries, per-person data keys, snapshots), and its rotation.
//!
//! Why rotation: cancelling a registration must erase the person for good, yet sled rewrites
//! values out of place and a deleted file's blocks linger, so old sealed bytes can stay on disk.
//! After a cancellation the node snapshots, purges the log up to the cancellation, re-seals what
//! remains under a fresh key and destroys the old one ("crypto-shredding"). Every byte written
//! before, wherever it lingers, was sealed under a key that no longer exists.
//!
//! Sealed values are `epoch (u32 BE) ‖ nonce ‖ ciphertext ‖ tag`; the epoch says which key opens
//! them. The key file holds the current key and, only while a rotation is in progress, the
//! previous one:
//!
//! ```text
//! clearway keyring v1
//! 7 <64 hex digits>      current
//! 6 <64 hex digits>      previous (during rotation only)
//! ```
//!
//! The file is written to a temporary name, fsynced and renamed, so a crash leaves either the old
//! or the new file. It is created with mode 0600. The key is node-local: replicas never share it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rand::RngCore;
use zeroize::Zeroizing;

use super::crypto::Sealer;
use super::custody::Custody;
use crate::error::{Error, Result};

const HEADER: &str = "clearway keyring v1";

struct Keys {
    epoch: u32,
    current: Sealer,
    previous: Option<(u32, Sealer)>,
}

/// The node's storage key, with its epoch; see the module docs.
pub struct Keyring {
    path: PathBuf,
    custody: Arc<Custody>,
    keys: RwLock<Keys>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("epoch", &self.epoch())
            .finish_non_exhaustive()
    }
}

fn random_key() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(k.as_mut());
    k
}

impl Keyring {
    /// Opens the key file, or creates it (epoch 1) when `create` is true and it does not exist;
    /// the file is sealed under `custody`'s key-encryption key when it has one.
    pub fn load(path: &Path, create: bool, custody: Arc<Custody>) -> Result<Keyring> {
        if !path.exists() {
            if !create {
                return Err(Error::Store(format!(
                    "key file {} is missing; without it the node's data cannot be read",
                    path.display()
                )));
            }
            let key = random_key();
            write_file(&custody, path, &[(1, &key)])?;
            return Ok(Keyring {
                path: path.to_path_buf(),
                custody,
                keys: RwLock::new(Keys {
                    epoch: 1,
                    current: Sealer::new(&key),
                    previous: None,
                }),
            });
        }
        let (text, rewrite) = read_text(&custody, path)?;
        let bad = |why: &str| {
            Error::Store(format!(
                "{}: not a clearway keyring ({why})",
                path.display()
            ))
        };
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(HEADER) {
            return Err(bad("missing header"));
        }
        let mut keys = Vec::new();
        let mut raw: Vec<(u32, Zeroizing<[u8; 32]>)> = Vec::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let (epoch, hex_key) = line
                .trim()
                .split_once(' ')
                .ok_or_else(|| bad("malformed line"))?;
            let epoch: u32 = epoch.parse().map_err(|_| bad("malformed epoch"))?;
            let bytes =
                Zeroizing::new(hex::decode(hex_key.trim()).map_err(|_| bad("malformed key"))?);
            let key =
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad("key is not 32 bytes"))?;
            keys.push((epoch, Sealer::new(&key)));
            raw.push((epoch, Zeroizing::new(key)));
        }
        if rewrite {
            // A plain key file found once a key-encryption credential is configured: sealed now.
            let list: Vec<(u32, &[u8; 32])> = raw.iter().map(|(e, k)| (*e, &**k)).collect();
            write_file(&custody, path, &list)?;
            tracing::info!(path = %path.display(), "Key file sealed under the key-encryption credential.");
        }
        drop(raw);
        let mut keys = keys.into_iter();
        let (epoch, current) = keys.next().ok_or_else(|| bad("no key"))?;
        let previous = keys.next();
        if keys.next().is_some() {
            return Err(bad("more than two keys"));
        }
        Ok(Keyring {
            path: path.to_path_buf(),
            custody,
            keys: RwLock::new(Keys {
                epoch,
                current,
                previous,
            }),
        })
    }

    /// The current key's epoch.
    pub fn epoch(&self) -> u32 {
        self.read().epoch
    }

    /// Whether a rotation was started and not finished (the previous key is still held).
    pub fn rotating(&self) -> bool {
        self.read().previous.is_some()
    }

    /// Seals `plain` for the slot `(tree, slot)` under the current key.
    pub fn seal(&self, tree: &[u8], slot: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let keys = self.read();
        let mut out = keys.epoch.to_be_bytes().to_vec();
        out.extend(keys.current.seal(tree, slot, plain)?);
        Ok(out)
    }

    /// Opens a value sealed for `(tree, slot)`; fails on a destroyed key, a wrong slot or tampering.
    pub fn open(&self, tree: &[u8], slot: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let fail = || Error::Decrypt(format!("{} entry", String::from_utf8_lossy(tree)));
        let (epoch, rest) = split_epoch(sealed).ok_or_else(fail)?;
        let keys = self.read();
        let sealer = if epoch == keys.epoch {
            &keys.current
        } else {
            match &keys.previous {
                Some((e, s)) if *e == epoch => s,
                _ => return Err(fail()),
            }
        };
        sealer
            .open(tree, slot, rest)
            .map(Zeroizing::new)
            .map_err(|_| fail())
    }

    /// Whether a sealed value is under an older key than the current one (needs re-sealing).
    pub fn is_stale(&self, sealed: &[u8]) -> bool {
        split_epoch(sealed).is_some_and(|(e, _)| e != self.epoch())
    }

    /// Starts a rotation: a fresh current key; the old one is kept as `previous` (on disk too)
    /// until [`Keyring::finish_rotation`], so a crash in between loses nothing. Returns the new epoch.
    pub fn begin_rotation(&self) -> Result<u32> {
        let mut keys = self.keys.write().map_err(|_| poisoned())?;
        if keys.previous.is_some() {
            // An unfinished rotation: keep its previous key (the one data may still need) and
            // continue with the current one.
            return Ok(keys.epoch);
        }
        let key = random_key();
        let epoch = keys.epoch + 1;
        // The old key's bytes are needed on disk until re-sealing is done; re-read them from the
        // file rather than keeping raw key bytes in memory.
        let old = read_current_key(&self.custody, &self.path)?;
        write_file(
            &self.custody,
            &self.path,
            &[(epoch, &key), (keys.epoch, &old)],
        )?;
        let old_sealer = std::mem::replace(&mut keys.current, Sealer::new(&key));
        keys.previous = Some((keys.epoch, old_sealer));
        keys.epoch = epoch;
        Ok(epoch)
    }

    /// Finishes a rotation: the previous key is destroyed, in memory and in the key file.
    pub fn finish_rotation(&self) -> Result<()> {
        let mut keys = self.keys.write().map_err(|_| poisoned())?;
        if keys.previous.is_none() {
            return Ok(());
        }
        let current = read_current_key(&self.custody, &self.path)?;
        write_file(&self.custody, &self.path, &[(keys.epoch, &current)])?;
        keys.previous = None;
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        // A poisoned lock only means a panic elsewhere while holding it; the keys are intact.
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }
}

fn poisoned() -> Error {
    Error::Store("keyring lock poisoned".into())
}

fn split_epoch(sealed: &[u8]) -> Option<(u32, &[u8])> {
    let (e, rest) = sealed.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*e), rest))
}

/// The key file's text, opened with `custody`; and whether it was plain but should be sealed.
fn read_text(custody: &Custody, path: &Path) -> Result<(Zeroizing<String>, bool)> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| Error::io(path, e))?);
    let (plain, rewrite) = custody.unwrap(path, b"keyring", &bytes)?;
    let text = String::from_utf8(plain.to_vec())
        .map_err(|_| Error::Store(format!("{}: not a clearway keyring", path.display())))?;
    Ok((Zeroizing::new(text), rewrite))
}

fn read_current_key(custody: &Custody, path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    let (text, _) = read_text(custody, path)?;
    let hex_key = text
        .lines()
        .nth(1)
        .and_then(|l| l.trim().split_once(' '))
        .map(|(_, k)| k.trim())
        .ok_or_else(|| Error::Store(format!("{}: malformed keyring", path.display())))?;
    let bytes = Zeroizing::new(
        hex::decode(hex_key)
            .map_err(|_| Error::Store(format!("{}: malformed keyring", path.display())))?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(Error::Store(format!(
            "{}: malformed keyring",
            path.display()
        )));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Writes the key file atomically: temporary file (0600), fsync, rename, fsync the directory.
fn write_file(custody: &Custody, path: &Path, keys: &[(u32, &[u8; 32])]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut text = Zeroizing::new(format!("{HEADER}\n"));
    for (epoch, key) in keys {
        text.push_str(&format!("{epoch} {}\n", hex::encode(key)));
    }
    let bytes = Zeroizing::new(custody.wrap(b"keyring", text.as_bytes())?);
    file.write_all(&bytes).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_destroys_the_old_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.keyring");
        let ring = Keyring::load(&path, true, Arc::new(Custody::plain())).expect("create");
        assert_eq!(ring.epoch(), 1);
        let old = ring.seal(b"t", b"k", b"secret").expect("seal");
        assert_eq!(&ring.open(b"t", b"k", &old).expect("open")[..], b"secret");
        assert!(ring.open(b"t", b"other", &old).is_err(), "slot-bound");

        assert_eq!(ring.begin_rotation().expect("begin"), 2);
        assert!(ring.is_stale(&old));
        // During the rotation both keys open, also after a restart.
        let reopened = Keyring::load(&path, false, Arc::new(Custody::plain())).expect("reopen");
        assert!(reopened.rotating());
        assert_eq!(
            &reopened.open(b"t", b"k", &old).expect("open")[..],
            b"secret"
        );
        let new = ring.seal(b"t", b"k", b"secret").expect("seal");
        ring.finish_rotation().expect("finish");

        assert!(ring.open(b"t", b"k", &old).is_err(), "old key destroyed");
        assert_eq!(&ring.open(b"t", b"k", &new).expect("open")[..], b"secret");
        let reopened = Keyring::load(&path, false, Arc::new(Custody::plain())).expect("reopen");
        assert!(!reopened.rotating());
        assert!(
            reopened.open(b"t", b"k", &old).is_err(),
            "old key gone from the file"
        );
        assert_eq!(
            &reopened.open(b"t", b"k", &new).expect("open")[..],
            b"secret"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_key_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        assert!(
            Keyring::load(&path, false, Arc::new(Custody::plain())).is_err(),
            "missing"
        );
        for text in [
            "",
            "nonsense\n",
            "clearway keyring v1\n",
            "clearway keyring v1\nx 00\n",
            "clearway keyring v1\n1 abcd\n",
        ] {
            std::fs::write(&path, text).expect("write");
            let err = Keyring::load(&path, false, Arc::new(Custody::plain())).expect_err(text);
            assert_eq!(err.code(), "store", "{text:?}: {err}");
        }
    }
}
