//! The node's local gallery store: person records and face templates in sled, encrypted at rest.
//!
//! Layout (one sled database, four trees):
//! - `person_keys`: person id → that person's 32-byte data key, sealed with the gallery key;
//! - `persons`: person id → the person record (`postcard`), sealed with the person's data key;
//! - `templates`: person id ‖ sequence → a template (`postcard`), sealed with the person's data key;
//! - `meta`: the next person id and a sealed check value that detects a wrong key file.
//!
//! Sealing is ChaCha20-Poly1305 with a random nonce; the tree name and the entry's key are the
//! associated data, so a sealed value moved to another slot fails to open. Per-person keys make
//! cancellation an erasure: the person's key is removed with their data, and ciphertext that sled
//! has not yet compacted away can no longer be opened.
//!
//! The gallery key file is created (mode 0600) beside the database the first time it is opened.
//! On an appliance it belongs on a separate protected volume; its path is configurable.
//!
//! Removing a person's key from sled is not enough on its own: sled rewrites values out of place,
//! so the sealed key can linger in the database files, openable with the gallery key. Each
//! cancellation therefore also rotates the gallery key: a fresh key is written to
//! `<key file>.next`, every remaining person key (and the check value) is re-sealed under it, and
//! the new file is renamed over the old, destroying the old key. A crash midway leaves both files;
//! the next open finishes the rotation (values are tried under both keys; the AEAD tag tells which
//! one sealed them).

pub(crate) mod crypto;
pub mod custody;
pub mod keyring;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use tracing::info;
use zeroize::Zeroizing;

use self::crypto::{DataKey, Sealer};
use crate::error::{Error, Result};
use clearway_gallery::{Gallery, ModelId, Person, PersonId, PersonStatus, Template};

pub use clearway_gallery::NewPerson;

/// Reads a person file (TOML).
pub fn read_person_file(path: &Path) -> Result<NewPerson> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message())))
}
/// Where the gallery key file goes when none is named: beside the database directory.
pub fn default_key_file(db: &Path) -> PathBuf {
    let mut name = db
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "gallery".into());
    name.push(".key");
    db.with_file_name(name)
}

/// The local gallery store.
pub struct GalleryStore {
    db: sled::Db,
    persons: sled::Tree,
    keys: sled::Tree,
    templates: sled::Tree,
    meta: sled::Tree,
    sealer: RwLock<Sealer>,
    key_file: PathBuf,
}

/// Where a rotation writes the next gallery key before it replaces the key file.
fn next_key_file(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

const NEXT_ID: &[u8] = b"next_person_id";
const KEY_CHECK: &[u8] = b"key_check";

impl GalleryStore {
    /// Opens (or creates) the store in `dir`, with the gallery key in `key_file`. A new store gets
    /// a new key file; an existing store refuses a missing or different key.
    pub fn open(dir: &Path, key_file: &Path) -> Result<GalleryStore> {
        let is_new = !dir.join("db").exists() && !dir.join("conf").exists();
        let sealer = if key_file.exists() {
            Sealer::from_key_file(key_file)?
        } else if is_new {
            Sealer::create_key_file(key_file)?
        } else {
            return Err(Error::Store(format!(
                "{} exists but its key file {} is missing; without it the data cannot be read",
                dir.display(),
                key_file.display()
            )));
        };
        let next_file = next_key_file(key_file);
        let next = if next_file.exists() {
            Some(Sealer::from_key_file(&next_file)?)
        } else {
            None
        };
        let db = sled::Config::new().path(dir).open()?;
        let store = GalleryStore {
            persons: db.open_tree("persons")?,
            keys: db.open_tree("person_keys")?,
            templates: db.open_tree("templates")?,
            meta: db.open_tree("meta")?,
            db,
            sealer: RwLock::new(sealer),
            key_file: key_file.to_path_buf(),
        };
        match store.meta.get(KEY_CHECK)? {
            Some(sealed) => {
                let opens = |s: &Sealer| s.open(b"meta", KEY_CHECK, &sealed).is_ok();
                if !opens(&store.sealer()) && !next.as_ref().is_some_and(opens) {
                    return Err(Error::Decrypt(format!(
                        "{} with key file {}",
                        dir.display(),
                        key_file.display()
                    )));
                }
            }
            None => {
                let sealed = store
                    .sealer()
                    .seal(b"meta", KEY_CHECK, b"clearway gallery")?;
                store.meta.insert(KEY_CHECK, sealed)?;
                store.db.flush()?;
            }
        }
        if let Some(next) = next {
            info!(key_file = %key_file.display(), "Finishing an interrupted gallery key rotation.");
            store.finish_rotation(next)?;
        }
        Ok(store)
    }

    fn sealer(&self) -> std::sync::RwLockReadGuard<'_, Sealer> {
        // A poisoned lock only means a panic elsewhere while holding it; the key is intact.
        self.sealer.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the gallery key with a fresh one, destroying the old (see the module docs).
    fn rotate(&self) -> Result<()> {
        let next_file = next_key_file(&self.key_file);
        if next_file.exists() {
            std::fs::remove_file(&next_file).map_err(|e| Error::io(&next_file, e))?;
        }
        let next = Sealer::create_key_file(&next_file)?;
        self.finish_rotation(next)
    }

    /// Re-seals every person key and the check value under `next` (values already under it are
    /// left), then renames `<key file>.next` over the key file.
    fn finish_rotation(&self, next: Sealer) -> Result<()> {
        let mut current = self.sealer.write().unwrap_or_else(|e| e.into_inner());
        for item in self.keys.iter() {
            let (k, v) = item?;
            let plain = match current.open(b"person_keys", &k, &v) {
                Ok(plain) => Zeroizing::new(plain),
                Err(()) if next.open(b"person_keys", &k, &v).is_ok() => continue,
                Err(()) => return Err(Error::Decrypt(format!("person key {}", hex::encode(&k)))),
            };
            self.keys
                .insert(&k, next.seal(b"person_keys", &k, &plain)?)?;
        }
        self.meta.insert(
            KEY_CHECK,
            next.seal(b"meta", KEY_CHECK, b"clearway gallery")?,
        )?;
        self.db.flush()?;
        let next_file = next_key_file(&self.key_file);
        std::fs::rename(&next_file, &self.key_file).map_err(|e| Error::io(&self.key_file, e))?;
        if let Some(dir) = self.key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself must reach the disk before the old key counts as destroyed.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io(dir, e))?;
        }
        *current = next;
        Ok(())
    }

    /// Adds a person (validated) and returns the record with its new id.
    pub fn add_person(&self, new: NewPerson) -> Result<Person> {
        let id = PersonId(
            self.meta
                .update_and_fetch(NEXT_ID, |old| {
                    let n = old
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map_or(1, u64::from_be_bytes);
                    Some((n + 1).to_be_bytes().to_vec())
                })?
                .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
                .map_or(1, |b| u64::from_be_bytes(b) - 1),
        );
        let person = new.into_person(id);
        person.validate()?;
        let key = DataKey::generate();
        let k = id.0.to_be_bytes();
        self.keys
            .insert(k, self.sealer().seal(b"person_keys", &k, key.as_bytes())?)?;
        let record = postcard::to_stdvec(&person).map_err(|e| Error::Store(e.to_string()))?;
        self.persons
            .insert(k, key.sealer().seal(b"persons", &k, &record)?)?;
        self.db.flush()?;
        info!(person = %id, "Person added.");
        Ok(person)
    }

    /// Adds a template to a person.
    pub fn add_template(&self, id: PersonId, template: &Template) -> Result<()> {
        let key = self.data_key(id)?;
        let seq = self.templates.scan_prefix(id.0.to_be_bytes()).count() as u32;
        let mut slot = id.0.to_be_bytes().to_vec();
        slot.extend_from_slice(&seq.to_be_bytes());
        let bytes = postcard::to_stdvec(template).map_err(|e| Error::Store(e.to_string()))?;
        self.templates
            .insert(&slot, key.sealer().seal(b"templates", &slot, &bytes)?)?;
        self.db.flush()?;
        info!(person = %id, model = %template.model(), "Template added.");
        Ok(())
    }

    /// One person's record.
    pub fn person(&self, id: PersonId) -> Result<Person> {
        let key = self.data_key(id)?;
        let k = id.0.to_be_bytes();
        let sealed = self
            .persons
            .get(k)?
            .ok_or_else(|| Error::UnknownPerson(id.to_string()))?;
        let bytes = key
            .sealer()
            .open(b"persons", &k, &sealed)
            .map_err(|_| Error::Decrypt(format!("person {id}")))?;
        postcard::from_bytes(&bytes).map_err(|e| Error::Store(format!("person {id}: {e}")))
    }

    /// Every person, by id.
    pub fn persons(&self) -> Result<Vec<Person>> {
        let mut out = Vec::new();
        for entry in self.persons.iter() {
            let (k, _) = entry?;
            out.push(self.person(id_of(&k)?)?);
        }
        Ok(out)
    }

    /// A person's templates, oldest first.
    pub fn templates(&self, id: PersonId) -> Result<Vec<Template>> {
        let key = self.data_key(id)?;
        let mut out = Vec::new();
        for entry in self.templates.scan_prefix(id.0.to_be_bytes()) {
            let (slot, sealed) = entry?;
            let bytes = key
                .sealer()
                .open(b"templates", &slot, &sealed)
                .map_err(|_| Error::Decrypt(format!("a template of {id}")))?;
            out.push(
                postcard::from_bytes(&bytes)
                    .map_err(|e| Error::Store(format!("a template of {id}: {e}")))?,
            );
        }
        Ok(out)
    }

    /// Cancellation: erases the person's key, record and templates, then rotates the gallery key
    /// so that the person's key, wherever sled left a copy of it, can no longer be opened.
    pub fn cancel(&self, id: PersonId) -> Result<()> {
        let k = id.0.to_be_bytes();
        if self.keys.get(k)?.is_none() {
            return Err(Error::UnknownPerson(id.to_string()));
        }
        // The key goes first: once it is gone nothing of the person can be opened, even if the
        // process dies before the rest is removed.
        self.keys.remove(k)?;
        self.db.flush()?;
        for slot in self.templates.scan_prefix(k).keys() {
            self.templates.remove(slot?)?;
        }
        self.persons.remove(k)?;
        self.db.flush()?;
        self.rotate()?;
        info!(person = %id, "Person cancelled and erased; gallery key rotated.");
        Ok(())
    }

    /// Builds the in-memory 1:N index of every active person's templates made with `model`.
    /// Returns the index and how many templates of other models were skipped.
    pub fn index(&self, model: &ModelId, dim: usize) -> Result<(Gallery, usize)> {
        let mut gallery = Gallery::new(model.clone(), dim)?;
        let mut skipped = 0;
        for person in self.persons()? {
            if person.status != PersonStatus::Active {
                continue;
            }
            for t in self.templates(person.id)? {
                if t.model() == model && t.dim() == dim {
                    gallery.insert(person.id, &t)?;
                } else {
                    skipped += 1;
                }
            }
        }
        Ok((gallery, skipped))
    }

    fn data_key(&self, id: PersonId) -> Result<DataKey> {
        let k = id.0.to_be_bytes();
        let sealed = self
            .keys
            .get(k)?
            .ok_or_else(|| Error::UnknownPerson(id.to_string()))?;
        let bytes = self
            .sealer()
            .open(b"person_keys", &k, &sealed)
            .map_err(|_| Error::Decrypt(format!("key of {id}")))?;
        DataKey::from_bytes(&bytes).ok_or_else(|| Error::Decrypt(format!("key of {id}")))
    }
}

fn id_of(key: &[u8]) -> Result<PersonId> {
    <[u8; 8]>::try_from(key)
        .map(|b| PersonId(u64::from_be_bytes(b)))
        .map_err(|_| Error::Store(format!("malformed person key {}", hex::encode(key))))
}
