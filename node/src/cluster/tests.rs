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
    drop((sm, db, _log));

    // Reopened from disk: the same ledger and trail.
    let (_db, _keyring, _log, sm) = open_stores(dir.path());
    assert_eq!(sm.handle().ledger_view(), view);
    assert_eq!(sm.handle().audit(0, 100), trail);
    assert_eq!(sm.handle().audit(1, 1), trail[1..2].to_vec());
    assert_eq!(sm.handle().digest(), digest);

    // Installed on a fresh node from the snapshot: the same again.
    let other = tempfile::tempdir().expect("tempdir");
    let (_db2, _k2, _l2, mut fresh) = open_stores(other.path());
    fresh
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
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
    let other = tempfile::tempdir().expect("tempdir");
    let (_db2, _k2, _l2, mut fresh) = open_stores(other.path());
    fresh
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
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
