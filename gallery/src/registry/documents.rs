//! Which person holds which travel document, at 16 bytes a person.
//!
//! A map from `(kind, number)` to the person would keep a second copy of every document number
//! (a string: about 100 bytes a person with the map's own overhead). The registry already holds
//! each number in the person's entry, so this table keeps only a keyed hash of the document with
//! the person's id, and a lookup confirms a hit against the entry itself (hashes can collide).
//! Removal is by id, so it works after the entry has changed.
//!
//! The hash is SipHash-1-3 under two random keys chosen when the table is made (as std's
//! `RandomState`, whose keys cannot be read back); they are kept, sealed, with the table in a
//! replica checkpoint, so a restarted node finds its documents without reading its records.

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::HashTable;
use siphasher::sip::SipHasher13;

use crate::{DocumentKind, PersonId};

/// The document index (see the module's documentation).
pub(super) struct Documents {
    table: HashTable<(u64, PersonId)>,
    /// SipHash keys, random: an outsider cannot choose numbers that collide.
    keys: (u64, u64),
}

impl Documents {
    pub(super) fn new() -> Documents {
        // Two outputs of a randomly keyed SipHash (std's RandomState, seeded by the operating
        // system): random keys without a random number generator in this crate.
        let random = std::hash::RandomState::new();
        Documents::with_keys((random.hash_one(0u8), random.hash_one(1u8)))
    }

    fn with_keys(keys: (u64, u64)) -> Documents {
        Documents {
            table: HashTable::new(),
            keys,
        }
    }

    fn hash(&self, kind: DocumentKind, number: &str) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        (kind, number).hash(&mut h);
        h.finish()
    }

    /// The keys and every `(hash, person)` pair, for a checkpoint.
    pub(super) fn export(&self) -> ((u64, u64), impl ExactSizeIterator<Item = (u64, PersonId)>) {
        (self.keys, self.table.iter().copied())
    }

    /// The table a checkpoint holds (its keys, its pairs).
    pub(super) fn import(
        keys: (u64, u64),
        pairs: impl Iterator<Item = (u64, PersonId)>,
        capacity: usize,
    ) -> Documents {
        let mut d = Documents::with_keys(keys);
        d.table.reserve(capacity, |&(h, _)| h);
        for (h, id) in pairs {
            d.table.insert_unique(h, (h, id), |&(eh, _)| eh);
        }
        d
    }

    /// The person holding the document, as `holds(id)` confirms.
    pub(super) fn find(
        &self,
        kind: DocumentKind,
        number: &str,
        mut holds: impl FnMut(PersonId) -> bool,
    ) -> Option<PersonId> {
        let h = self.hash(kind, number);
        self.table
            .find(h, |&(eh, id)| eh == h && holds(id))
            .map(|&(_, id)| id)
    }

    /// Notes that `id` holds the document (once, however often it is called).
    pub(super) fn insert(&mut self, kind: DocumentKind, number: &str, id: PersonId) {
        let h = self.hash(kind, number);
        if self.table.find(h, |&e| e == (h, id)).is_none() {
            self.table.insert_unique(h, (h, id), |&(eh, _)| eh);
        }
    }

    /// Forgets that `id` holds the document.
    pub(super) fn remove(&mut self, kind: DocumentKind, number: &str, id: PersonId) {
        let h = self.hash(kind, number);
        if let Ok(slot) = self.table.find_entry(h, |&e| e == (h, id)) {
            slot.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_confirmed_and_removals_are_by_person() {
        let mut d = Documents::new();
        let kind = DocumentKind::PermitHkMacao;
        d.insert(kind, "1234567(8)", PersonId(1));
        d.insert(kind, "1234567(8)", PersonId(1));
        assert_eq!(d.table.len(), 1, "inserted once");
        assert_eq!(d.find(kind, "1234567(8)", |_| true), Some(PersonId(1)));
        assert_eq!(d.find(kind, "1234567(8)", |_| false), None, "not confirmed");
        assert_eq!(d.find(kind, "7654321(8)", |_| true), None);
        d.remove(kind, "1234567(8)", PersonId(2));
        assert_eq!(d.table.len(), 1, "another person's removal leaves it");
        d.remove(kind, "1234567(8)", PersonId(1));
        assert_eq!(d.find(kind, "1234567(8)", |_| true), None);
    }

    #[test]
    fn an_exported_table_finds_the_same_documents_and_keys_differ_per_table() {
        let kind = DocumentKind::PermitHkMacao;
        let mut d = Documents::new();
        for i in 0..100u64 {
            d.insert(kind, &format!("H{i:08}"), PersonId(i));
        }
        let (keys, pairs) = d.export();
        let copy = Documents::import(keys, pairs, 100);
        for i in 0..100u64 {
            assert_eq!(
                copy.find(kind, &format!("H{i:08}"), |_| true),
                Some(PersonId(i))
            );
        }
        assert_ne!(Documents::new().keys, keys, "random keys");
        assert_ne!(
            Documents::new().hash(kind, "H00000001"),
            d.hash(kind, "H00000001")
        );
    }
}
