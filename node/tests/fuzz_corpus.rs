//! Replays the node's fuzz targets' committed corpora (`fuzz/corpus/<target>/`) and the inputs of
//! the bugs fuzzing found (`fuzz/regressions/<target>/`) through the harnesses of
//! `clearway_node::fuzzing`: what CI runs instead of a fuzzing campaign (no nightly compiler, no
//! cargo-fuzz, seconds). A harness panics on a bug, failing the test; so do a target without a
//! harness or a corpus.

#[test]
fn corpora_and_regressions_replay_without_a_panic() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    // The console's targets (`console_*`) are replayed by `tests/tests/console_fuzz_corpus.rs`.
    let summary =
        clearway_node::fuzzing::replay_all(&fuzz, clearway_node::fuzzing::TARGETS, |name| {
            !name.starts_with("console_")
        });
    eprintln!("{summary}");
}
