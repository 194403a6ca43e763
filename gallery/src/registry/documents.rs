//! Which person holds which travel document, at 16 bytes a person.
//!
//! A map from `(kind, number)` to the person would keep a second copy of every document number
//! (a string: about 100 bytes a person with the map's own overhead). The registry already holds
//! each number in the person's entry, so this table keeps only a keyed hash of the document with
//! the person's id, and a lookup confirms a hit against the entry itself (hashes can collide).
//! Removal is by id, so it works after the entry has changed.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::{DocumentKind, PersonId};

/// The document index (see the module's documentation).
pub(super) struct Documents {
    table: HashTable<(u64, PersonId)>,
    /// SipHash with this process's random keys: an outsider cannot choose numbers that collide.
    keys: std::hash::RandomState,
}

impl Documents {
    pub(super) fn new() -> Documents {
        Documents {
            table: HashTable::new(),
            keys: std::hash::RandomState::new(),
        }
    }

    fn hash(&self, kind: DocumentKind, number: &str) -> u64 {
        self.keys.hash_one((kind, number))
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
}
