//! Key custody: what protects a node's own key files (the storage keyring, the lane's outbox
//! key) when the disk leaves the building.
//!
//! * The key files never live in the data directory they protect ([`check_outside`]): copying
//!   the data directory (a backup, a disk pulled from a lane appliance in a hall) must not copy
//!   its keys. A config that puts them there is refused unless it says it is a test.
//! * On appliances the key files are themselves sealed under a key-encryption key (KEK) that is
//!   a systemd credential: `LoadCredentialEncrypted=clearway-kek:…` in the unit, made once with
//!   `systemd-creds encrypt --with-key=auto` (bound to the machine's TPM where it has one, else to
//!   the host key), and read at start from `$CREDENTIALS_DIRECTORY/clearway-kek`. The keyring
//!   rotates on every cancellation, so it cannot itself be a (read-only) credential; sealing it
//!   under one gives the same protection. A sealed key file is
//!   `clearway sealed key v1\n<hex of nonce ‖ ciphertext ‖ tag>\n` (ChaCha20-Poly1305, the file's
//!   purpose as associated data).
//! * For development, a plain key file at a path outside the data directory.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::crypto::Sealer;
use crate::error::{Error, Result};

/// First line of a key file sealed under the KEK.
const SEALED_HEADER: &str = "clearway sealed key v1";

/// The environment variable systemd sets to the directory of the unit's decrypted credentials.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// What protects the node's key files: a KEK from a systemd credential, or nothing (development).
pub struct Custody {
    kek: Option<Sealer>,
    /// Where the KEK came from, for messages.
    source: Option<PathBuf>,
}

impl std::fmt::Debug for Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custody")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Custody {
    /// Key files in the clear (development, tests).
    pub fn plain() -> Custody {
        Custody {
            kek: None,
            source: None,
        }
    }

    /// The KEK from the systemd credential `name`: `$CREDENTIALS_DIRECTORY/<name>`, 64 hex
    /// digits (surrounding whitespace ignored) or 32 raw bytes.
    pub fn from_credential(name: &str) -> Result<Custody> {
        let dir = std::env::var_os(CREDENTIALS_DIRECTORY).ok_or_else(|| {
            Error::Config(format!(
                "the key-encryption credential {name:?} is configured but ${CREDENTIALS_DIRECTORY} \
                 is not set: run the node under systemd with LoadCredentialEncrypted={name}:… \
                 (deploy/README.md, \"Key custody\")"
            ))
        })?;
        let path = Path::new(&dir).join(name);
        let bytes = Zeroizing::new(std::fs::read(&path).map_err(|e| Error::io(&path, e))?);
        let key: Zeroizing<[u8; 32]> = match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(raw) => Zeroizing::new(raw),
            Err(_) => {
                let text = String::from_utf8_lossy(&bytes);
                let decoded = Zeroizing::new(hex::decode(text.trim()).unwrap_or_default());
                Zeroizing::new(<[u8; 32]>::try_from(decoded.as_slice()).map_err(|_| {
                    Error::Config(format!(
                        "{}: not a key-encryption key (64 hex digits or 32 bytes expected)",
                        path.display()
                    ))
                })?)
            }
        };
        Ok(Custody {
            kek: Some(Sealer::new(&key)),
            source: Some(path),
        })
    }

    /// Whether key files are sealed under a KEK.
    pub fn sealed(&self) -> bool {
        self.kek.is_some()
    }

    /// The bytes to write for a key file holding `plain`; `purpose` (`keyring`, `outbox`) binds
    /// the sealed file to what it is for.
    pub fn wrap(&self, purpose: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        match &self.kek {
            None => Ok(plain.to_vec()),
            Some(kek) => {
                let sealed = kek.seal(b"key_file", purpose, plain)?;
                Ok(format!("{SEALED_HEADER}\n{}\n", hex::encode(sealed)).into_bytes())
            }
        }
    }

    /// A key file's content as written by [`Custody::wrap`] (or a plain file written before the
    /// KEK was configured, which the caller then rewrites sealed: `true` in the answer).
    pub fn unwrap(
        &self,
        path: &Path,
        purpose: &[u8],
        bytes: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, bool)> {
        let sealed_body = std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| t.strip_prefix(SEALED_HEADER))
            .map(str::trim);
        match (sealed_body, &self.kek) {
            (None, None) => Ok((Zeroizing::new(bytes.to_vec()), false)),
            (None, Some(_)) => Ok((Zeroizing::new(bytes.to_vec()), true)),
            (Some(_), None) => Err(Error::Config(format!(
                "{}: sealed under a key-encryption credential, but none is configured \
                 (key_encryption_credential in node.toml, and the node run by its systemd unit)",
                path.display()
            ))),
            (Some(hex_body), Some(kek)) => {
                let fail = || {
                    Error::Decrypt(format!(
                        "{}: cannot be opened with the credential {}",
                        path.display(),
                        self.source
                            .as_deref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ))
                };
                let sealed = hex::decode(hex_body).map_err(|_| fail())?;
                let plain = kek
                    .open(b"key_file", purpose, &sealed)
                    .map_err(|_| fail())?;
                Ok((Zeroizing::new(plain), false))
            }
        }
    }
}

/// Refuses a key file inside the data directory it protects (after resolving both), unless
/// `allowed` (a test says so).
pub fn check_outside(key_file: &Path, data_dir: &Path, allowed: bool) -> Result<()> {
    if allowed {
        return Ok(());
    }
    let resolve = |p: &Path| {
        let absolute = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        // The file itself may not exist yet; its directory may not either.
        let mut existing = absolute.clone();
        let mut rest = Vec::new();
        while !existing.exists() {
            match (
                existing.file_name().map(|n| n.to_owned()),
                existing.parent(),
            ) {
                (Some(name), Some(parent)) => {
                    rest.push(name);
                    existing = parent.to_path_buf();
                }
                _ => break,
            }
        }
        let mut resolved = existing.canonicalize().unwrap_or(existing);
        for name in rest.into_iter().rev() {
            resolved.push(name);
        }
        resolved
    };
    let (key, data) = (resolve(key_file), resolve(data_dir));
    if key.starts_with(&data) {
        return Err(Error::Config(format!(
            "the key file {} is inside the data directory {} it protects: anyone who copies the \
             data copies its key. Put it outside (key_file in node.toml; on appliances under \
             /var/lib/clearway-keys, sealed with a systemd credential), or set \
             allow_key_in_data_dir = true for a test",
            key_file.display(),
            data_dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_inside_the_data_directory_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("db")).expect("mkdir");
        for inside in [
            data.join("node.keyring"),
            data.join("db/deeper/node.keyring"),
            dir.path().join("data/../data/node.keyring"),
        ] {
            let err = check_outside(&inside, &data, false).expect_err("inside");
            assert!(
                err.to_string().contains("inside the data directory"),
                "{err}"
            );
            check_outside(&inside, &data, true).expect("a test may");
        }
        // A sibling whose name merely starts alike is outside.
        check_outside(&dir.path().join("data-keys/node.keyring"), &data, false).expect("outside");
        check_outside(&dir.path().join("keys/node.keyring"), &data, false).expect("outside");
        // Through a symlink into the data directory: inside.
        std::os::unix::fs::symlink(&data, dir.path().join("link")).expect("symlink");
        check_outside(&dir.path().join("link/node.keyring"), &data, false).expect_err("symlink");
    }

    #[test]
    fn sealed_key_files_need_their_credential() {
        let kek = Custody {
            kek: Some(Sealer::new(&[7; 32])),
            source: None,
        };
        let other = Custody {
            kek: Some(Sealer::new(&[8; 32])),
            source: None,
        };
        let path = Path::new("node.keyring");
        let file = kek.wrap(b"keyring", b"the keys").expect("wrap");
        assert!(file.starts_with(SEALED_HEADER.as_bytes()));
        assert!(!file.windows(8).any(|w| w == b"the keys"));
        let (plain, rewrite) = kek.unwrap(path, b"keyring", &file).expect("unwrap");
        assert_eq!(&plain[..], b"the keys");
        assert!(!rewrite);
        assert!(
            other.unwrap(path, b"keyring", &file).is_err(),
            "another KEK"
        );
        assert!(
            kek.unwrap(path, b"outbox", &file).is_err(),
            "another purpose"
        );
        let err = Custody::plain()
            .unwrap(path, b"keyring", &file)
            .expect_err("no KEK");
        assert!(err.to_string().contains("credential"), "{err}");
        // A plain file found once a KEK is configured is read, and must be rewritten sealed.
        let (plain, rewrite) = kek.unwrap(path, b"keyring", b"old plain").expect("plain");
        assert_eq!(&plain[..], b"old plain");
        assert!(rewrite);
    }
}
