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
    let keyring = Arc::new(Keyring::load(&dir.join("node.keyring"), true).expect("keyring"));
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
