//! Sealing values at rest: ChaCha20-Poly1305 (RustCrypto's audited implementation) with a random
//! 96-bit nonce per value, stored as `nonce ‖ ciphertext ‖ tag`.

use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use zeroize::Zeroize;

use crate::error::{Error, Result};

const NONCE_LEN: usize = 12;

/// Seals and opens values with one key.
pub struct Sealer(ChaCha20Poly1305);

/// The associated data binding a sealed value to its slot: tree name, a separator, the entry key.
fn aad(tree: &[u8], slot: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(tree.len() + 1 + slot.len());
    a.extend_from_slice(tree);
    a.push(0);
    a.extend_from_slice(slot);
    a
}

impl Sealer {
    pub(crate) fn new(key: &[u8; 32]) -> Sealer {
        Sealer(ChaCha20Poly1305::new(Key::from_slice(key)))
    }

    /// Reads a key file: 64 hex digits (32 bytes), surrounding whitespace ignored.
    pub fn from_key_file(path: &Path) -> Result<Sealer> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                Error::Store(format!(
                    "{}: not a gallery key (64 hex digits expected)",
                    path.display()
                ))
            })?;
        Ok(Sealer::new(&bytes))
    }

    /// Creates a new random key file, readable by its owner only.
    pub fn create_key_file(path: &Path) -> Result<Sealer> {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
        writeln!(file, "{}", hex::encode(key)).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        Ok(Sealer::new(&key))
    }

    /// Encrypts `plain` for the slot `(tree, slot)`.
    pub fn seal(&self, tree: &[u8], slot: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = aad(tree, slot);
        let ct = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Store("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a value sealed for `(tree, slot)`; fails on a wrong key, another slot, or tampering.
    pub fn open(
        &self,
        tree: &[u8],
        slot: &[u8],
        sealed: &[u8],
    ) -> std::result::Result<Vec<u8>, ()> {
        if sealed.len() < NONCE_LEN {
            return Err(());
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let aad = aad(tree, slot);
        self.0
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| ())
    }
}

/// A person's data key.
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> DataKey {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        DataKey(k)
    }

    /// From 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<DataKey> {
        <[u8; 32]>::try_from(bytes).ok().map(DataKey)
    }

    /// The raw bytes (to be sealed under the gallery key).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A sealer using this key.
    pub fn sealer(&self) -> Sealer {
        Sealer::new(&self.0)
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        // Do not leave the key in freed memory.
        self.0.zeroize();
    }
}
