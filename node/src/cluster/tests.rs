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
