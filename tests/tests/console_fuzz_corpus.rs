//! Replays the console's fuzz targets' committed corpora (`fuzz/corpus/<target>/`) and the inputs of
//! the bugs fuzzing found (`fuzz/regressions/<target>/`) through the harnesses of
//! `clearway_console::fuzzing`: what CI runs instead of a fuzzing campaign (no nightly compiler, no
//! cargo-fuzz, seconds). A harness panics on a bug, failing the test; so do a target without a
//! harness or a corpus. Here rather than in the console crate, which does not depend on the node
//! (whose `fuzzing::replay_all` walks the corpora for both).

#[test]
fn corpora_and_regressions_replay_without_a_panic() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    // The node's targets are replayed by `node/tests/fuzz_corpus.rs`.
    let summary =
        clearway_node::fuzzing::replay_all(&fuzz, clearway_console::fuzzing::TARGETS, |name| {
            name.starts_with("console_")
        });
    eprintln!("{summary}");
}
