//! Storage tests: openraft's conformance suite, then the gallery-specific behaviour.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};

use super::log_store::LogStore;
use super::state_machine::StateMachineStore;
use super::typ::{StorageError, TypeConfig};
use crate::store::keyring::Keyring;
use clearway_gallery::ModelId;

pub(crate) fn model() -> ModelId {
    ModelId::new("sface", "2021dec")
}

/// Opens a log store and a state machine on a fresh sled database in `dir`.
pub(crate) fn open_stores(
    dir: &std::path::Path,
) -> (sled::Db, Arc<Keyring>, LogStore, StateMachineStore) {
    let db = sled::Config::new()
        .path(dir.join("db"))
        .open()
        .expect("sled");
    let keyring = Arc::new(
        Keyring::load(
            &dir.join("node.keyring"),
            true,
            Arc::new(crate::store::custody::Custody::plain()),
        )
        .expect("keyring"),
    );
    let log = LogStore::open(&db, keyring.clone(), true).expect("log store");
    let sm = StateMachineStore::open(
        &db,
        keyring.clone(),
        &dir.join("snapshot"),
        model(),
        8,
        true,
    )
    .expect("state machine");
    (db, keyring, log, sm)
}

/// Opens the stores in `dir` again once the last run's sled database has let go of its lock
/// (sled's background threads can hold it a moment after the handles are dropped).
pub(crate) fn reopen_stores(
    dir: &std::path::Path,
) -> (sled::Db, Arc<Keyring>, LogStore, StateMachineStore) {
    drop(reopen_db(dir));
    open_stores(dir)
}

/// The sled database in `dir`, once the last run has let go of its lock (see [`reopen_stores`]).
fn reopen_db(dir: &std::path::Path) -> sled::Db {
    for _ in 0..100 {
        match sled::Config::new().path(dir.join("db")).open() {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    sled::Config::new()
        .path(dir.join("db"))
        .open()
        .expect("sled")
}

/// A fresh node in a new directory that installed `snapshot`.
async fn installed_on_a_fresh_node(
    snapshot: super::typ::Snapshot,
) -> (
    tempfile::TempDir,
    sled::Db,
    Arc<Keyring>,
    LogStore,
    StateMachineStore,
) {
    use openraft::storage::RaftStateMachine;
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, keyring, log, mut sm) = open_stores(dir.path());
    sm.install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
    (dir, db, keyring, log, sm)
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, _keyring, log, sm) = open_stores(dir.path());
        Ok((dir, log, sm))
    }
}

#[test]
fn storage_passes_openraft_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

/// Log entries carrying console changes: an order to a lane with its audit record, each.
fn order_entries(n: u64) -> Vec<super::typ::Entry> {
    use clearway_gallery::Request;
    use clearway_gallery::ops::{AuditDraft, GateAction, GateId, Op, OverrideAction};
    (1..=n)
        .map(|i| {
            let mut ops = vec![
                Op::Audit(AuditDraft {
                    actor: "wong".into(),
                    role: "supervisor".into(),
                    action: "order.gate_lock".into(),
                    target: "hengqin/passenger/1".into(),
                    reason: format!("reason {i}"),
                    reason_salt: "00".repeat(16),
                    at: chrono::Utc::now(),
                    ops_digest: String::new(),
                    signature: None,
                }),
                Op::Order {
                    channel: "hengqin/passenger/1".into(),
                    action: OverrideAction::Gate {
                        gate: GateId::One,
                        action: GateAction::Lock,
                    },
                },
            ];
            clearway_gallery::ops::set_ops_digest(&mut ops);
            super::typ::Entry {
                log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(2, 1), i),
                payload: openraft::EntryPayload::Normal(Request::V2(ops)),
            }
        })
        .collect()
}

#[tokio::test]
async fn the_ledger_survives_a_restart_and_travels_in_snapshots() {
    use clearway_gallery::ops::verify_chain;
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};

    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _keyring, _log, mut sm) = open_stores(dir.path());
    sm.apply(order_entries(3)).await.expect("apply");
    let view = sm.handle().ledger_view();
    let trail = sm.handle().audit(0, 100);
    assert_eq!(view.audit_len, 3);
    assert_eq!(trail[2].reason_text(), Some("reason 3"));
    assert_eq!(verify_chain(&trail), Ok(()));
    let orders = &view.lanes["hengqin/passenger/1"].orders;
    assert_eq!(
        orders.iter().map(|o| (o.term, o.index)).collect::<Vec<_>>(),
        vec![(2, 1), (2, 2), (2, 3)]
    );
    let digest = sm.handle().digest();
    let mut builder = sm.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.expect("snapshot");
    drop((sm, db, _log, builder));

    // Reopened from disk: the same ledger and trail.
    let (_db, _keyring, _log, sm) = open_stores(dir.path());
    assert_eq!(sm.handle().ledger_view(), view);
    assert_eq!(sm.handle().audit(0, 100), trail);
    assert_eq!(sm.handle().audit(1, 1), trail[1..2].to_vec());
    assert_eq!(sm.handle().digest(), digest);

    // Installed on a fresh node from the snapshot: the same again.
    let (_other, _db2, _k2, _l2, fresh) = installed_on_a_fresh_node(snapshot).await;
    assert_eq!(fresh.handle().ledger_view(), view);
    assert_eq!(fresh.handle().audit(0, 100), trail);
    assert_eq!(fresh.handle().digest(), digest);
    // Opened or installed, the index splits large scans across the node's scan pool.
    for sm in [&sm, &fresh] {
        let pool = sm.handle().read().registry.index().scan_pool().cloned();
        assert!(pool.is_some_and(|p| p.threads() >= 1), "a scan pool");
    }
}

#[tokio::test]
async fn a_changed_audit_record_on_disk_shows_as_a_break() {
    use clearway_gallery::ops::{AuditRecord, verify_chain};
    use openraft::storage::RaftStateMachine;

    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _keyring, _log, mut sm) = open_stores(dir.path());
    sm.apply(order_entries(3)).await.expect("apply");
    drop(sm);
    // Someone with disk access rewrites record 1's reason.
    let tree = db.open_tree("sm_audit").expect("tree");
    let bytes = tree
        .get(1u64.to_be_bytes())
        .expect("get")
        .expect("record 1");
    let mut record: AuditRecord = postcard::from_bytes(&bytes).expect("decode");
    record.entry.action = "nothing happened".into();
    tree.insert(
        1u64.to_be_bytes(),
        postcard::to_stdvec(&record).expect("encode"),
    )
    .expect("insert");
    db.flush().expect("flush");
    drop((tree, db, _log));
    let (_db, _keyring, _log, sm) = open_stores(dir.path());
    let broken = verify_chain(&sm.handle().audit(0, 100)).expect_err("the change shows");
    assert_eq!(broken.seq, 1);
}

/// A V1 log entry at `index`.
fn v1(index: u64, commands: Vec<clearway_gallery::Command>) -> super::typ::Entry {
    super::typ::Entry {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(2, 1), index),
        payload: openraft::EntryPayload::Normal(clearway_gallery::Request::V1(commands)),
    }
}

#[tokio::test]
async fn a_cancellation_notice_is_kept_sealed_until_delivered() {
    use clearway_gallery::{
        Category, Command, NewPerson, NoticeId, PersonId, Registrations, Template, TravelDocument,
    };
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};

    const NUMBER: &str = "9876543(2)";
    let day = |s: &str| s.parse::<chrono::NaiveDate>().expect("date");
    let person = NewPerson {
        name: "CHAN, TAI MAN".into(),
        date_of_birth: day("1980-05-06"),
        category: Category::MacaoResident,
        document: TravelDocument {
            kind: Category::MacaoResident.document_kind(),
            number: NUMBER.into(),
            valid_from: day("2020-01-01"),
            valid_until: day("2030-01-01"),
        },
        endorsement: None,
        registrations: Registrations::default(),
        consents: vec![],
        guardian_consent: None,
    };
    let template =
        Template::quantize(model(), &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]).expect("template");
    let id = NoticeId {
        index: 2,
        person: PersonId(1),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, keyring, _log, mut sm) = open_stores(dir.path());
    sm.apply([
        v1(
            1,
            vec![Command::Enrol {
                person,
                templates: vec![template],
            }],
        ),
        v1(
            2,
            vec![Command::Cancel {
                person: PersonId(1),
            }],
        ),
    ])
    .await
    .expect("apply");
    assert!(sm.handle().read().registry.notice(id).is_some());

    // Sealed on disk: the tree holds it, not its document number in clear.
    let tree = db.open_tree("sm_notices").expect("tree");
    assert_eq!(tree.len(), 1);
    let (_, sealed) = tree.iter().next().expect("one").expect("read");
    assert!(
        !sealed.windows(NUMBER.len()).any(|w| w == NUMBER.as_bytes()),
        "the document number is sealed"
    );

    // A key rotation (the shredder's, after the cancellation) re-seals it; it still opens.
    keyring.begin_rotation().expect("rotate");
    assert!(sm.resealer().reseal().await.expect("reseal") >= 1);
    keyring.finish_rotation().expect("old key destroyed");
    let mut builder = sm.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.expect("snapshot");
    drop((builder, tree, sm, db, _log, keyring));
    let (db, _keyring, _log, mut sm) = open_stores(dir.path());
    let kept = sm
        .handle()
        .read()
        .registry
        .notice(id)
        .cloned()
        .expect("kept");
    assert_eq!(kept.number, NUMBER);

    // A replica that installs a snapshot has it too.
    let (other, _db2, _k2, _l2, fresh) = installed_on_a_fresh_node(snapshot).await;
    assert_eq!(fresh.handle().read().registry.notice(id), Some(&kept));
    drop((fresh, _db2, _k2, _l2));
    let (_db2, _k2, _l2, fresh) = open_stores(other.path());
    assert_eq!(
        fresh.handle().read().registry.notice(id),
        Some(&kept),
        "written to disk when installed"
    );

    // Delivered: gone from memory and disk.
    sm.apply([v1(3, vec![Command::NoticeDelivered { notice: id }])])
        .await
        .expect("apply");
    assert!(sm.handle().read().registry.notice(id).is_none());
    assert_eq!(db.open_tree("sm_notices").expect("tree").len(), 0);
}

/// An enrolment of person number `i` (a document number of its own, one template).
fn enrolment(i: u64) -> clearway_gallery::Command {
    use clearway_gallery::{Category, Command, NewPerson, Registrations, Template, TravelDocument};
    let day = |s: &str| s.parse::<chrono::NaiveDate>().expect("date");
    let mut face = [0.0f32; 8];
    face[(i % 8) as usize] = 1.0;
    face[((i / 8) % 8) as usize] += 0.5;
    Command::Enrol {
        person: NewPerson {
            name: format!("CHAN, TAI MAN {i}"),
            date_of_birth: day("1980-05-06"),
            category: Category::MacaoResident,
            document: TravelDocument {
                kind: Category::MacaoResident.document_kind(),
                number: format!("{:07}(2)", 1_000_000 + i),
                valid_from: day("2020-01-01"),
                valid_until: day("2030-01-01"),
            },
            endorsement: None,
            registrations: Registrations::default(),
            consents: vec![],
            guardian_consent: None,
        },
        templates: vec![Template::quantize(model(), &face).expect("template")],
    }
}

/// A state machine in `dir` holding `persons` persons, a cancellation notice and ledger entries.
async fn populated(
    dir: &std::path::Path,
    persons: u64,
) -> (sled::Db, Arc<Keyring>, StateMachineStore) {
    use clearway_gallery::{Command, PersonId};
    use openraft::storage::RaftStateMachine;
    let (db, keyring, _log, mut sm) = open_stores(dir);
    let mut entries: Vec<_> = (1..=persons).map(|i| v1(i, vec![enrolment(i)])).collect();
    entries.push(v1(
        persons + 1,
        vec![Command::Cancel {
            person: PersonId(1),
        }],
    ));
    sm.apply(entries).await.expect("apply");
    let mut orders = order_entries(2);
    for (n, e) in orders.iter_mut().enumerate() {
        e.log_id.index = persons + 2 + n as u64;
    }
    sm.apply(orders).await.expect("apply orders");
    (db, keyring, sm)
}

#[tokio::test]
async fn a_snapshot_of_several_blocks_travels_and_survives_a_restart() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    // Enough persons for a stream of several sealed blocks (about 0.6 KiB each).
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, _keyring, mut sm) = populated(dir.path(), 5_000).await;
    let digest = sm.handle().digest();
    let snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("snapshot");
    let on_disk = std::fs::metadata(dir.path().join("snapshot"))
        .expect("file")
        .len();
    assert!(
        on_disk > 2 * super::snapshot::file::BLOCK as u64,
        "several blocks: {on_disk} bytes"
    );
    let current = sm
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("one");
    assert_eq!(current.meta, snapshot.meta);

    // The chunked transfer as openraft's receiving side does it: into begin_receiving_snapshot's
    // file, at each chunk's offset, one chunk sent twice.
    let other = tempfile::tempdir().expect("tempdir");
    let (_db2, _k2, _l2, mut fresh) = open_stores(other.path());
    let mut incoming = fresh.begin_receiving_snapshot().await.expect("begin");
    let mut sent = current.snapshot;
    let mut offset = 0u64;
    let mut chunk = vec![0u8; 700_000];
    loop {
        use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
        sent.seek(std::io::SeekFrom::Start(offset))
            .await
            .expect("seek");
        let n = sent.read(&mut chunk).await.expect("read");
        if n == 0 {
            break;
        }
        incoming
            .seek(std::io::SeekFrom::Start(offset))
            .await
            .expect("seek");
        incoming.write_all(&chunk[..n]).await.expect("write");
        if offset == 700_000 {
            // Its answer was lost: the same chunk again.
            incoming
                .seek(std::io::SeekFrom::Start(offset))
                .await
                .expect("seek");
            incoming.write_all(&chunk[..n]).await.expect("write");
        }
        offset += n as u64;
    }
    tokio::io::AsyncWriteExt::shutdown(&mut incoming)
        .await
        .expect("shutdown");
    fresh
        .install_snapshot(&current.meta, incoming)
        .await
        .expect("install");
    assert_eq!(fresh.handle().digest(), digest, "the same replica");
    assert!(
        !other.path().join("snapshot.incoming").exists(),
        "the received file became the node's snapshot"
    );
    drop((fresh, _db2, _k2, _l2));
    let (_db2, _k2, _l2, mut fresh) = reopen_stores(other.path());
    assert_eq!(fresh.handle().digest(), digest, "and on disk");
    let kept = fresh
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("kept");
    assert_eq!(kept.meta, snapshot.meta, "the snapshot is kept to send on");
}

#[tokio::test]
async fn a_cut_short_or_altered_snapshot_leaves_the_replica_as_it_was() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, _keyring, mut sm) = populated(dir.path(), 50).await;
    let snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("snapshot");
    let mut bytes = Vec::new();
    let mut data = snapshot.snapshot;
    data.read_to_end(&mut bytes).await.expect("read");

    let other = tempfile::tempdir().expect("tempdir");
    let (_db2, _k2, mut replica) = populated(other.path(), 20).await;
    let before = replica.handle().digest();
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() - 40);
    let mut changed = bytes.clone();
    let mid = bytes.len() / 2;
    changed[mid] ^= 0x20;
    let mut longer = bytes.clone();
    longer.push(0);
    for (what, stream) in [("cut", cut), ("changed", changed), ("longer", longer)] {
        let data = clearway_wire::snapshot::SnapshotData::new(std::io::Cursor::new(stream));
        let refused = replica
            .install_snapshot(&snapshot.meta, Box::new(data))
            .await;
        assert!(refused.is_err(), "a {what} stream is refused");
        assert_eq!(
            replica.handle().digest(),
            before,
            "unchanged after a {what} stream"
        );
    }
    drop((replica, _db2, _k2));
    let (_db2, _k2, _l2, replica) = reopen_stores(other.path());
    assert_eq!(replica.handle().digest(), before, "and unchanged on disk");
}

#[tokio::test]
async fn an_install_cut_short_restarts_the_replica_empty() {
    use openraft::storage::RaftStateMachine;
    // A stream whose every length and digest is right, but whose records cannot all be installed
    // (two persons with one document): the install fails after it began replacing the trees, as a
    // crash there would leave it.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, _keyring, sm) = populated(dir.path(), 10).await;
    let (meta, entries, ledger) = {
        let handle = sm.handle();
        let guard = handle.read();
        let mut entries: Vec<_> = guard
            .registry
            .entries()
            .collect::<Result<_, _>>()
            .expect("entries");
        let mut twin = entries[0].clone();
        twin.person.id = clearway_gallery::PersonId(99);
        entries.push(twin);
        let meta = super::typ::SnapshotMeta {
            last_log_id: guard.last_applied,
            last_membership: guard.membership.clone(),
            snapshot_id: "twin".into(),
        };
        (meta, entries, guard.ledger.clone())
    };
    let bytes = super::snapshot::write(
        Vec::new(),
        &meta,
        100,
        (
            entries.len() as u64,
            entries
                .iter()
                .map(|e| Ok(postcard::to_stdvec(e).expect("encode"))),
        ),
        std::iter::empty::<(
            clearway_gallery::NoticeId,
            clearway_gallery::CancellationNotice,
        )>(),
        &ledger,
    )
    .expect("stream");

    let other = tempfile::tempdir().expect("tempdir");
    let (_db2, _k2, mut replica) = populated(other.path(), 20).await;
    let data = clearway_wire::snapshot::SnapshotData::new(std::io::Cursor::new(bytes));
    let err = replica
        .install_snapshot(&meta, Box::new(data))
        .await
        .expect_err("two persons with one document");
    assert!(err.to_string().contains("document"), "{err}");
    drop((replica, _db2, _k2));
    let (_db2, _k2, _l2, mut replica) = reopen_stores(other.path());
    assert_eq!(replica.handle().read().registry.len(), 0, "starts empty");
    assert_eq!(
        replica.applied_state().await.expect("applied").0,
        None,
        "and asks the leader again"
    );
}

#[tokio::test]
async fn a_snapshot_file_of_the_old_format_is_converted_at_start() {
    use openraft::storage::RaftStateMachine;
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, keyring, sm) = populated(dir.path(), 30).await;
    let digest = sm.handle().digest();
    let meta = {
        let handle = sm.handle();
        let guard = handle.read();
        let meta = super::typ::SnapshotMeta {
            last_log_id: guard.last_applied,
            last_membership: guard.membership.clone(),
            snapshot_id: "old".into(),
        };
        super::state_machine::write_legacy_snapshot_file(
            &keyring,
            &dir.path().join("snapshot"),
            &meta,
            &guard.registry,
            &guard.ledger,
        )
        .expect("old file");
        meta
    };
    drop((sm, db, keyring));
    let (_db, _keyring, _log, mut sm) = reopen_stores(dir.path());
    assert!(super::snapshot::file::is_sealed_file(&dir.path().join("snapshot")).expect("check"));
    let current = sm
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("kept");
    assert_eq!(current.meta, meta);
    let (_other, _db2, _k2, _l2, fresh) = installed_on_a_fresh_node(current).await;
    assert_eq!(fresh.handle().digest(), digest);
}

/// A build that finishes after a newer snapshot was installed does not put its older file in the
/// newer one's place; what it built is still served to the caller, from its open file.
#[tokio::test]
async fn a_build_overtaken_by_an_install_keeps_the_newer_snapshot() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, _keyring, _log, mut sm) = open_stores(dir.path());
    sm.apply(order_entries(3)).await.expect("apply");
    let mut builder = sm.get_snapshot_builder().await;
    let first = builder.build_snapshot().await.expect("snapshot");
    let kept = sm
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("kept");
    assert_eq!(kept.meta.last_log_id, first.meta.last_log_id);

    // An install of a snapshot at index 100 finished while the next build ran.
    let newer = openraft::LogId::new(openraft::CommittedLeaderId::new(2, 1), 100);
    sm.snapshot_kept_at(Some(newer)).await;
    let on_disk = std::fs::read(dir.path().join("snapshot")).ok();
    let mut built = builder.build_snapshot().await.expect("snapshot");
    assert_eq!(
        std::fs::read(dir.path().join("snapshot")).ok(),
        on_disk,
        "the kept snapshot file is left as it was"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snapshot."))
        .collect();
    assert!(leftovers.is_empty(), "no building file left: {leftovers:?}");
    // The caller still gets a whole snapshot from the open file.
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut built.snapshot, &mut bytes)
        .await
        .expect("read");
    assert!(!bytes.is_empty());

    // Without a newer install, a build replaces the kept file as before.
    sm.snapshot_kept_at(first.meta.last_log_id).await;
    sm.apply(order_entries(4).into_iter().skip(3))
        .await
        .expect("apply");
    let third = builder.build_snapshot().await.expect("snapshot");
    let kept = sm
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("kept");
    assert_eq!(kept.meta.last_log_id, third.meta.last_log_id);
    assert_ne!(third.meta.last_log_id, first.meta.last_log_id);
}

#[tokio::test]
async fn entries_are_read_from_the_sealed_store_and_a_store_failure_stops_the_apply() {
    use clearway_gallery::{Command, PersonId};
    use openraft::storage::RaftStateMachine;
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _keyring, mut sm) = populated(dir.path(), 10).await;
    let handle = sm.handle();
    assert_eq!(
        handle.read().registry.unwritten().count(),
        0,
        "everything applied is written, and not held in memory"
    );
    let three = handle.entry(PersonId(3)).expect("person 3");
    assert_eq!(
        handle.find_document(three.person.document.kind, &three.person.document.number),
        Some(PersonId(3))
    );
    assert!(handle.entry(PersonId(1)).is_none(), "cancelled");

    let digest = handle.digest();

    // The record goes from sled: the registry has no copy of its own to answer with.
    let persons = db.open_tree("sm_persons").expect("tree");
    let sealed = persons
        .remove(PersonId(3).0.to_be_bytes())
        .expect("remove")
        .expect("stored");
    assert!(handle.entry(PersonId(3)).is_none(), "read from sled");
    assert!(
        handle
            .find_document(three.person.document.kind, &three.person.document.number)
            .is_none()
    );

    // A command that must read the record cannot be applied: the state machine fails, writes
    // nothing of the batch, and the applied position stays where it was.
    let applied = handle.read().last_applied;
    let err = sm
        .apply([v1(
            40,
            vec![Command::AddTemplate {
                person: PersonId(3),
                template: clearway_gallery::Template::quantize(
                    model(),
                    &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5],
                )
                .expect("template"),
            }],
        )])
        .await
        .expect_err("the store failed");
    assert!(err.to_string().contains("has a key but no record"), "{err}");
    // Put back (a node refuses to start on a store with a key and no record), and reopened.
    persons
        .insert(PersonId(3).0.to_be_bytes(), sealed)
        .expect("put back");
    drop((handle, sm, persons, db));
    let (_db, _k, _l, reopened) = reopen_stores(dir.path());
    assert_eq!(reopened.handle().read().last_applied, applied);
    assert_eq!(reopened.handle().digest(), digest, "nothing written");
}

#[tokio::test]
async fn a_clean_stop_leaves_a_checkpoint_the_next_start_uses_once_and_only_for_its_state() {
    use openraft::storage::RaftStateMachine;
    let dir = tempfile::tempdir().expect("tempdir");
    let checkpoint = dir.path().join("snapshot.checkpoint");
    let (db, _keyring, sm) = populated(dir.path(), 40).await;
    assert_eq!(sm.loaded_from(), "records", "a new node has no checkpoint");
    let digest = sm.handle().digest();
    let mut probe = [0.0f32; 8];
    probe[3] = 1.0;
    probe[1] += 0.5;
    let hits = sm.handle().search(&probe, 5).expect("search");
    let counts = |sm: &StateMachineStore| {
        let handle = sm.handle();
        let guard = handle.read();
        (
            guard.registry.len(),
            guard.registry.template_count(),
            guard.registry.index().len(),
            guard.registry.next_id(),
        )
    };
    let before = counts(&sm);
    assert!(sm.checkpointer().write().expect("write"), "written");
    drop((sm, db));

    // The next start reads the checkpoint, not the records, and removes it.
    let (db, _k, log, sm) = reopen_stores(dir.path());
    assert_eq!(sm.loaded_from(), "checkpoint");
    assert!(!checkpoint.exists(), "consumed");
    assert_eq!(sm.handle().digest(), digest);
    assert_eq!(sm.handle().search(&probe, 5).expect("search"), hits);
    assert_eq!(counts(&sm), before);
    // It still knows who holds which document (an enrolment retried is answered, not doubled).
    let entry = sm.handle().entry(clearway_gallery::PersonId(5)).expect("5");
    assert_eq!(
        sm.handle()
            .find_document(entry.person.document.kind, &entry.person.document.number),
        Some(clearway_gallery::PersonId(5))
    );

    // A checkpoint of an older state is not used: the state moved on after it was written.
    assert!(sm.checkpointer().write().expect("write"));
    let mut sm = sm;
    sm.apply([v1(60, vec![enrolment(1_000)])])
        .await
        .expect("apply");
    let moved = sm.handle().digest();
    drop((sm, db, log));
    let (db, _k, log, sm) = reopen_stores(dir.path());
    assert_eq!(sm.loaded_from(), "records", "stale");
    assert!(!checkpoint.exists(), "consumed all the same");
    assert_eq!(sm.handle().digest(), moved);

    // A checkpoint altered on disk is not used either.
    assert!(sm.checkpointer().write().expect("write"));
    drop((sm, db, log));
    let mut bytes = std::fs::read(&checkpoint).expect("read");
    let at = bytes.len() - 40;
    bytes[at] ^= 1;
    std::fs::write(&checkpoint, bytes).expect("write");
    let (_db, _k, _l, sm) = reopen_stores(dir.path());
    assert_eq!(sm.loaded_from(), "records", "altered");
    assert!(!checkpoint.exists());
    assert_eq!(sm.handle().digest(), moved);
}

/// A snapshot build on a thread of its own, as in a node, once it has read `at` persons: it waits
/// there until the returned sender says go on.
fn paused_build(
    builder: super::state_machine::SnapshotBuilder,
    at: u64,
) -> (
    std::thread::JoinHandle<
        crate::Result<(super::typ::SnapshotMeta, super::snapshot::file::SealedFile)>,
    >,
    std::sync::mpsc::Sender<()>,
) {
    let (half_tx, half_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let build = std::thread::spawn(move || {
        builder.build_blocking_with(&mut |read| {
            if read == at {
                half_tx.send(()).expect("half-way");
                go_rx.recv().expect("go on");
            }
        })
    });
    half_rx.recv().expect("half-way");
    (build, go_tx)
}

// The build runs in a thread of its own, as in a node, and stops half-way through the stored
// persons until the test's applies are done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_build_holds_no_apply_back_and_is_the_replica_at_its_cut() {
    use clearway_gallery::{Command, PersonId, Template};
    use openraft::storage::RaftStateMachine;
    let dir = tempfile::tempdir().expect("tempdir");
    // Persons 2 to 40 stored (1 is cancelled).
    let (_db, _keyring, mut sm) = populated(dir.path(), 40).await;
    let handle = sm.handle();
    let at_cut = handle.digest();
    let applied = handle.read().last_applied;
    let mut builder = sm.get_snapshot_builder().await;
    // A snapshot of the same state, to install while the next build runs.
    let earlier = openraft::RaftSnapshotBuilder::build_snapshot(&mut builder)
        .await
        .expect("snapshot");
    let (build, go_tx) = paused_build(builder, 20);

    // The build has read persons 2 to 21. Each kind of change, on either side of it: cancelled
    // (read, not read, the last one), changed (read, not read), changed then cancelled, and
    // enrolled after the cut.
    let mut face = [0.0f32; 8];
    face[7] = 1.0;
    let add = |id| Command::AddTemplate {
        person: PersonId(id),
        template: Template::quantize(model(), &face).expect("template"),
    };
    let cancel = |id| Command::Cancel {
        person: PersonId(id),
    };
    let changes = vec![
        v1(100, vec![cancel(5), cancel(30), cancel(40)]),
        v1(101, vec![add(10), add(35), add(31)]),
        v1(102, vec![cancel(31)]),
        v1(103, (1_000..1_003).map(enrolment).collect()),
    ];
    let applying = tokio::time::timeout(std::time::Duration::from_secs(30), sm.apply(changes));
    let responses = applying
        .await
        .expect("the applies do not wait for the build")
        .expect("applied");
    assert_eq!(responses.len(), 4);
    let live = handle.digest();
    assert_ne!(live, at_cut, "the replica changed");
    let mut probe = [0.0f32; 8];
    probe[2] = 1.0;
    assert!(!handle.search(&probe, 3).expect("search").is_empty());
    assert!(handle.entry(PersonId(35)).is_some() && handle.entry(PersonId(30)).is_none());
    // An install waits for the build (it would clear what the build reads), without holding
    // one of the runtime's threads meanwhile.
    let (installed_tx, mut installed_rx) = tokio::sync::oneshot::channel();
    let install = tokio::spawn(async move {
        let r = sm
            .install_snapshot(&earlier.meta, earlier.snapshot)
            .await
            .map(|_| ());
        let _ = installed_tx.send(());
        r
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(installed_rx.try_recv().is_err(), "the install waits");

    go_tx.send(()).expect("go on");
    let (meta, file) = build.join().expect("build thread").expect("built");
    install
        .await
        .expect("install task")
        .expect("installed after the build");
    assert_eq!(handle.digest(), at_cut, "the earlier snapshot installed");
    assert_eq!(meta.last_log_id, applied, "the snapshot is at its cut");
    let snapshot = super::typ::Snapshot {
        meta,
        snapshot: Box::new(clearway_wire::snapshot::SnapshotData::new(file)),
    };
    let (_other, _db2, _k2, _l2, fresh) = installed_on_a_fresh_node(snapshot).await;
    assert_eq!(
        fresh.handle().digest(),
        at_cut,
        "the replica as it was at the cut"
    );
}

// A key rotation (a shredded cancellation's) against a snapshot build and a snapshot transfer
// in progress: the build is waited for, and what either put in place still opens once the old
// key is destroyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_waits_for_a_build_and_leaves_every_snapshot_file_readable() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, keyring, mut sm) = populated(dir.path(), 40).await;
    let log = LogStore::open(&db, keyring.clone(), true).expect("log store");
    let handle = sm.handle();
    let earlier_state = handle.digest();
    let resealer = Arc::new(sm.resealer());
    let mut builder = sm.get_snapshot_builder().await;
    let earlier = builder.build_snapshot().await.expect("snapshot");
    // One more enrolment, so the next build is newer than the kept snapshot and takes its place.
    sm.apply([v1(100, vec![enrolment(1_000)])])
        .await
        .expect("apply");
    let at_cut = handle.digest();
    let (build, go_tx) = paused_build(builder, 20);
    let epoch = keyring.epoch();
    let (rotated_tx, mut rotated_rx) = tokio::sync::oneshot::channel();
    let rotation = {
        let resealer = resealer.clone();
        tokio::spawn(async move {
            let r = resealer.rotate(&log).await;
            let _ = rotated_tx.send(());
            r
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(rotated_rx.try_recv().is_err(), "the rotation waits");
    assert_eq!(keyring.epoch(), epoch, "and has not begun");
    go_tx.send(()).expect("go on");
    build.join().expect("build thread").expect("built");
    let (new_epoch, _) = rotation.await.expect("task").expect("rotated");
    assert_eq!(new_epoch, epoch + 1);
    // The build's file, now the node's snapshot, opens under the new key alone.
    let kept = sm
        .get_current_snapshot()
        .await
        .expect("the kept snapshot opens")
        .expect("one is kept");
    let (_other, _db2, _k2, _l2, fresh) = installed_on_a_fresh_node(kept).await;
    assert_eq!(fresh.handle().digest(), at_cut);

    // A transfer received into a file sealed under the key then current, a rotation before
    // its install, and the installed file kept as the node's snapshot: it opens too.
    let other = tempfile::tempdir().expect("tempdir");
    let (_db3, keyring3, log3, mut receiver) = open_stores(other.path());
    let mut data = receiver.begin_receiving_snapshot().await.expect("receive");
    let mut sent = earlier.snapshot;
    tokio::io::AsyncSeekExt::seek(&mut sent, std::io::SeekFrom::Start(0))
        .await
        .expect("seek");
    tokio::io::copy(&mut sent, &mut data).await.expect("copy");
    let before = keyring3.epoch();
    receiver.resealer().rotate(&log3).await.expect("rotated");
    assert_eq!(keyring3.epoch(), before + 1);
    receiver
        .install_snapshot(&earlier.meta, data)
        .await
        .expect("installed after the rotation");
    assert_eq!(receiver.handle().digest(), earlier_state);
    assert!(
        receiver
            .get_current_snapshot()
            .await
            .expect("the installed snapshot opens under the new key")
            .is_some()
    );
}

#[tokio::test]
async fn a_device_index_follows_every_apply_and_gives_the_scans_hits() {
    use crate::face::config::{Provider, RuntimeConfig};
    use crate::face::{OrtIndex, OrtRuntime};
    use clearway_gallery::registry::MAX_TEMPLATES_PER_PERSON;
    use clearway_gallery::{Command, PersonId};
    use openraft::storage::RaftStateMachine;
    // The CPU provider runs the same graph a GPU would (face/onnx_search.rs).
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../assets/onnxruntime/libonnxruntime.so.1.31.1")
        });
    let runtime = OrtRuntime::load(
        &library,
        RuntimeConfig {
            provider: Provider::Cpu,
            intra_threads: 1,
        },
    )
    .expect("ONNX Runtime (run `just setup`)");
    // With copies of the rows kept in step by segment version, as on a GPU.
    let index = |dim| {
        OrtIndex::new(&runtime, dim, MAX_TEMPLATES_PER_PERSON)
            .expect("graph")
            .with_copies()
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, _keyring, mut sm) = populated(dir.path(), 150).await;
    let handle = sm.handle();
    assert!(!handle.use_device_index(index(16)), "another dimension");
    assert!(handle.use_device_index(index(8)));
    assert!(!handle.use_device_index(index(8)), "one per node");

    // Probes like the enrolled faces (many persons share one: ties the lower row must win).
    let probes: Vec<[f32; 8]> = (0..70u64)
        .map(|i| {
            let mut face = [0.01f32; 8];
            face[(i % 8) as usize] = 1.0;
            face[((i / 8) % 8) as usize] += 0.5;
            face
        })
        .collect();
    let check = |what: &str| {
        for probe in &probes {
            let scan = handle
                .read()
                .registry
                .index()
                .search(probe, 5)
                .expect("scan");
            assert_eq!(handle.search(probe, 5).expect("search"), scan, "{what}");
        }
    };
    check("as loaded");
    let runs = handle.device_index().expect("installed").runs();
    assert_eq!(
        runs,
        probes.len() as u64,
        "every search ran on the device index"
    );

    // Cancel persons and enrol more: the copy follows each apply.
    sm.apply([
        v1(
            200,
            vec![Command::Cancel {
                person: PersonId(9),
            }],
        ),
        v1(
            201,
            vec![Command::Cancel {
                person: PersonId(10),
            }],
        ),
        v1(202, vec![enrolment(151), enrolment(152)]),
    ])
    .await
    .expect("apply");
    check("after cancellations and enrolments");
    for probe in &probes {
        let hits = handle.search(probe, 150).expect("search");
        assert!(
            hits.iter()
                .all(|h| h.person != PersonId(9) && h.person != PersonId(10)),
            "a cancelled person is never returned"
        );
    }
    // A bad probe is an error, as on the scan.
    assert!(handle.search(&[f32::NAN; 8], 1).is_err());
}

/// What a node did before its first snapshot install, and whether the install then records the
/// snapshot's cancellations as shredded itself (no key rotation: `exposure.rs`).
#[tokio::test]
async fn only_a_node_that_held_nothing_skips_the_key_rotation_after_a_snapshot() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    let dir = tempfile::tempdir().expect("tempdir");
    // 30 persons, the first cancelled at index 31.
    let (_db, _keyring, mut source) = populated(dir.path(), 30).await;
    let built = source
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("snapshot");
    let index = built.meta.last_log_id.expect("applied").index;
    assert!(index > 31, "the snapshot covers the cancellation");

    #[derive(Debug, Clone, Copy)]
    enum Before {
        Nothing,
        BlankEntry,
        EntryWithPayload,
        TransferBegun,
        InstallCutShort,
        DataFromBeforeTheMark,
    }
    for (before, skips) in [
        (Before::Nothing, true),
        (Before::BlankEntry, true),
        (Before::EntryWithPayload, false),
        (Before::TransferBegun, false),
        (Before::InstallCutShort, false),
        (Before::DataFromBeforeTheMark, false),
    ] {
        let other = tempfile::tempdir().expect("tempdir");
        match before {
            Before::Nothing => {}
            Before::BlankEntry | Before::EntryWithPayload => {
                let (_db, _k, log, _sm) = open_stores(other.path());
                let mut entry = v1(1, vec![enrolment(1)]);
                if let Before::BlankEntry = before {
                    entry.payload = openraft::EntryPayload::Blank;
                }
                log.write(vec![entry]).await.expect("write");
            }
            Before::TransferBegun => {
                let (_db, _k, _log, mut sm) = open_stores(other.path());
                drop(sm.begin_receiving_snapshot().await.expect("begin"));
            }
            Before::InstallCutShort => {
                let (db, _k, _log, mut sm) = open_stores(other.path());
                let sent = source
                    .get_current_snapshot()
                    .await
                    .expect("read")
                    .expect("one");
                sm.install_snapshot(&sent.meta, sent.snapshot)
                    .await
                    .expect("install");
                // As a crash in the middle of the install leaves it.
                db.open_tree("sm_meta")
                    .expect("tree")
                    .insert(b"installing", &[1])
                    .expect("mark");
                db.flush().expect("flush");
            }
            Before::DataFromBeforeTheMark => {
                drop(populated(other.path(), 3).await);
                let db = reopen_db(other.path());
                db.drop_tree(b"exposure").expect("drop the mark");
                db.flush().expect("flush");
            }
        }
        let (_db, _k, _log, mut sm) = reopen_stores(other.path());
        let sent = source
            .get_current_snapshot()
            .await
            .expect("read")
            .expect("one");
        sm.install_snapshot(&sent.meta, sent.snapshot)
            .await
            .expect("install");
        let expected = if skips { index } else { 0 };
        assert_eq!(
            sm.shredded_index().expect("shredded"),
            expected,
            "{before:?}: the install records as shredded"
        );
        drop((sm, _db, _k, _log));
        let (_db, _k, _log, sm) = reopen_stores(other.path());
        assert_eq!(
            sm.shredded_index().expect("shredded"),
            expected,
            "{before:?}: after a restart"
        );
    }
}
