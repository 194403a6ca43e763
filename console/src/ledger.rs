//! The console's own audit log: every console-local administrative action (accounts, ports,
//! node bundles, appliance retirements) with actor, role, target and reason, append-only in the
//! sled tree `console_audit` and hash-chained, so an edit or a removal anywhere in it shows as
//! a break. (The ports' own audit trails are replicated by each port's cluster; this one has
//! no cluster, so the chain is what makes tampering visible.)
//!
//! Record `n` is stored under its sequence number (big-endian) as JSON; its hash is
//! SHA-256 of a domain tag, the previous record's hash and the canonical JSON of its fields.
//! Appends are serialised and flushed before the action is answered. A chain cannot show that
//! its newest records were cut off; each record's hash also goes to the process log, which
//! anchors the head outside the database.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::Millis;
use crate::dto::{ConsoleAuditRecord, ConsoleAuditView};
use crate::error::{Error, Result};

/// The hash before the first record.
pub const GENESIS: [u8; 32] = [0; 32];
/// Records a page shows (the newest).
pub const SHOWN: usize = 500;

const DOMAIN: &[u8] = b"clearway-console-audit-v1\0";

/// One stored record.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Entry {
    /// Sequence number.
    pub seq: u64,
    /// When (ms since the epoch).
    pub at: Millis,
    /// Who.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Why.
    pub reason: String,
    /// The previous record's hash (hex).
    pub prev: String,
    /// This record's hash (hex).
    pub hash: String,
}

impl Entry {
    /// The hash this record must carry.
    fn digest(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            seq: u64,
            at: Millis,
            actor: &'a str,
            role: &'a str,
            action: &'a str,
            target: &'a str,
            reason: &'a str,
        }
        let body = Body {
            seq: self.seq,
            at: self.at,
            actor: &self.actor,
            role: &self.role,
            action: &self.action,
            target: &self.target,
            reason: &self.reason,
        };
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.prev.as_bytes());
        h.update(serde_json::to_vec(&body).unwrap_or_default());
        hex::encode(h.finalize())
    }
}

/// What an action is recorded with.
#[derive(Clone, Copy, Debug)]
pub struct Action<'a> {
    /// Who.
    pub actor: &'a str,
    /// In which role.
    pub role: &'a str,
    /// What (`user.disable`, …).
    pub action: &'a str,
    /// On what.
    pub target: &'a str,
    /// Why.
    pub reason: &'a str,
}

/// The console's audit log.
#[derive(Debug)]
pub struct Ledger {
    tree: sled::Tree,
    /// Serialises appends (sequence and chain).
    append: Mutex<()>,
}

impl Ledger {
    /// Opens the log in `db`.
    pub fn open(db: &sled::Db) -> Result<Ledger> {
        Ok(Ledger {
            tree: db.open_tree("console_audit")?,
            append: Mutex::new(()),
        })
    }

    /// Appends a record and flushes it; answers its sequence number.
    pub fn record(&self, a: Action<'_>, now: Millis) -> Result<u64> {
        let _one = self.append.lock().unwrap_or_else(|p| p.into_inner());
        let (seq, prev) = match self.tree.last()? {
            None => (0, hex::encode(GENESIS)),
            Some((_, v)) => {
                let last: Entry = serde_json::from_slice(&v)
                    .map_err(|e| Error::Store(format!("console audit log: {e}")))?;
                (last.seq + 1, last.hash)
            }
        };
        let mut e = Entry {
            seq,
            at: now,
            actor: a.actor.into(),
            role: a.role.into(),
            action: a.action.into(),
            target: a.target.into(),
            reason: a.reason.into(),
            prev,
            hash: String::new(),
        };
        e.hash = e.digest();
        let v = serde_json::to_vec(&e).map_err(Error::store)?;
        self.tree.insert(seq.to_be_bytes(), v)?;
        self.tree.flush()?;
        // The chain's head, outside the database: a cut-off tail shows against the process log.
        tracing::info!(seq, hash = %e.hash, "Console audit record appended.");
        Ok(seq)
    }

    /// Walks the whole chain: the records (oldest first) and the first break, if any.
    pub fn verify(&self) -> Result<(Vec<Entry>, Option<(u64, String)>)> {
        let mut out = Vec::new();
        let mut broken = None;
        let mut prev = hex::encode(GENESIS);
        for (i, kv) in self.tree.iter().enumerate() {
            let (k, v) = kv?;
            let i = i as u64;
            let e: Entry = match serde_json::from_slice(&v) {
                Ok(e) => e,
                Err(err) => {
                    broken.get_or_insert((i, format!("record {i} cannot be read: {err}")));
                    continue;
                }
            };
            let why = if k.as_ref() != e.seq.to_be_bytes() || e.seq != i {
                Some(format!("record {i} is out of place (a record was removed)"))
            } else if e.prev != prev {
                Some(format!("record {i} does not follow the one before it"))
            } else if e.hash != e.digest() {
                Some(format!("record {i} was changed after it was written"))
            } else {
                None
            };
            if let Some(why) = why {
                broken.get_or_insert((i, why));
            }
            prev = e.hash.clone();
            out.push(e);
        }
        Ok((out, broken))
    }

    /// The page's view: the newest [`SHOWN`] records, local times at `offset_minutes`.
    pub fn view(&self, offset_minutes: i32) -> Result<ConsoleAuditView> {
        let (all, break_at) = self.verify()?;
        let total = all.len() as u64;
        let skip = all.len().saturating_sub(SHOWN);
        let records = all
            .into_iter()
            .skip(skip)
            .map(|e| ConsoleAuditRecord {
                seq: e.seq,
                at: crate::time::local(e.at, offset_minutes),
                actor: e.actor,
                role: e.role,
                action: e.action,
                target: e.target,
                reason: e.reason,
                prev: e.prev,
                hash: e.hash,
            })
            .collect();
        Ok(ConsoleAuditView {
            records,
            total,
            break_at,
        })
    }

    /// The raw tree (tests tamper with it).
    #[cfg(test)]
    fn tree(&self) -> &sled::Tree {
        &self.tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled");
        let l = Ledger::open(&db).expect("open");
        (dir, l)
    }

    fn act<'a>(action: &'a str, target: &'a str) -> Action<'a> {
        Action {
            actor: "root",
            role: "port_admin",
            action,
            target,
            reason: "ticket 7",
        }
    }

    fn fill(l: &Ledger) {
        for (i, (a, t)) in [
            ("user.create", "ana"),
            ("user.disable", "ana"),
            ("port.create", "hengqin"),
            ("bundle.issue", "hengqin/node-4"),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(
                l.record(act(a, t), i as Millis * 1000).expect("record"),
                i as u64
            );
        }
    }

    #[test]
    fn records_chain_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = sled::open(dir.path()).expect("sled");
            fill(&Ledger::open(&db).expect("open"));
        }
        let db = crate::reopen_sled(dir.path());
        let l = Ledger::open(&db).expect("reopen");
        l.record(act("user.enable", "ana"), 9000).expect("append");
        let (all, broken) = l.verify().expect("verify");
        assert_eq!(broken, None);
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].prev, hex::encode(GENESIS));
        for w in all.windows(2) {
            assert_eq!(w[1].prev, w[0].hash);
        }
        let v = l.view(480).expect("view");
        assert_eq!(v.total, 5);
        assert_eq!(v.records[4].action, "user.enable");
    }

    /// Each way of tampering with a stored log, and the break it shows.
    #[test]
    fn tampering_shows_as_a_break() {
        type Tamper = fn(&sled::Tree);
        let rewrite = |t: &sled::Tree, seq: u64, f: &dyn Fn(&mut Entry)| {
            let raw = t.get(seq.to_be_bytes()).expect("get").expect("present");
            let mut e: Entry = serde_json::from_slice(&raw).expect("entry");
            f(&mut e);
            t.insert(seq.to_be_bytes(), serde_json::to_vec(&e).expect("json"))
                .expect("insert");
        };
        let cases: [(&str, Tamper, Option<(u64, &str)>); 5] = [
            ("untouched", |_| {}, None),
            (
                "a reason rewritten",
                |t| {
                    let raw = t.get(1u64.to_be_bytes()).expect("get").expect("present");
                    let mut e: Entry = serde_json::from_slice(&raw).expect("entry");
                    e.reason = "nothing to see".into();
                    t.insert(1u64.to_be_bytes(), serde_json::to_vec(&e).expect("json"))
                        .expect("insert");
                },
                Some((1, "was changed")),
            ),
            (
                "a record removed",
                |t| {
                    t.remove(1u64.to_be_bytes()).expect("remove");
                },
                Some((1, "out of place")),
            ),
            (
                "the last record removed",
                |t| {
                    t.remove(3u64.to_be_bytes()).expect("remove");
                },
                // The chain up to the cut verifies; the shown total tells the count.
                None,
            ),
            (
                "garbage",
                |t| {
                    t.insert(2u64.to_be_bytes(), b"{not json".to_vec())
                        .expect("insert");
                },
                Some((2, "cannot be read")),
            ),
        ];
        for (name, tamper, want) in cases {
            let (_d, l) = ledger();
            fill(&l);
            tamper(l.tree());
            let (_, broken) = l.verify().expect("verify");
            match (want, broken) {
                (None, None) => {}
                (Some((seq, needle)), Some((at, why))) => {
                    assert_eq!(at, seq, "{name}: {why}");
                    assert!(why.contains(needle), "{name}: {why}");
                }
                (want, got) => panic!("{name}: want {want:?}, got {got:?}"),
            }
        }
        // Rehashing a changed record does not help: the next one no longer follows it.
        let (_d, l) = ledger();
        fill(&l);
        rewrite(l.tree(), 1, &|e| {
            e.actor = "someone else".into();
            e.hash = e.digest();
        });
        let (_, broken) = l.verify().expect("verify");
        let (at, why) = broken.expect("a break");
        assert_eq!(at, 2, "{why}");
        assert!(why.contains("does not follow"), "{why}");
    }
}
