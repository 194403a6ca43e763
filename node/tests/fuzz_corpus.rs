//! Replays every fuzz target's committed corpus (`fuzz/corpus/<target>/`) and the inputs of the
//! bugs fuzzing found (`fuzz/regressions/<target>/`) through the harnesses of
//! `clearway_node::fuzzing`: what CI runs instead of a fuzzing campaign (no nightly compiler,
//! no cargo-fuzz, seconds). A harness panics on a bug, failing the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clearway_node::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_fuzz_target_has_a_harness_and_a_corpus() {
    let on_disk: BTreeSet<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let harnessed: BTreeSet<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(
        on_disk, harnessed,
        "fuzz/fuzz_targets/*.rs and clearway_node::fuzzing::TARGETS differ"
    );
    for (name, _) in TARGETS {
        let corpus = fuzz_dir().join("corpus").join(name);
        assert!(
            !files(&corpus).is_empty(),
            "{} is missing or empty",
            corpus.display()
        );
    }
}

#[test]
fn corpora_and_regressions_replay_without_a_panic() {
    let mut summary = Vec::new();
    for (name, harness) in TARGETS {
        let mut counts = Vec::new();
        for kind in ["corpus", "regressions"] {
            let inputs = files(&fuzz_dir().join(kind).join(name));
            for input in &inputs {
                let bytes = std::fs::read(input).expect("a readable corpus file");
                eprintln!("{}", input.display());
                harness(&bytes);
            }
            counts.push(inputs.len());
        }
        summary.push(format!(
            "{name}: {} corpus, {} regressions",
            counts[0], counts[1]
        ));
    }
    eprintln!("{}", summary.join("\n"));
}
