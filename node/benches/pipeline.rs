//! Frame → embedding at 1280×720, per stage, one inference thread (`just bench`), side by side
//! with OpenCV's own pipeline in the same run.
//!
//! Three rounds; each runs Clearway with the SFace graph the node ships (derived by
//! `deploy/models/derive_sface.py`), Clearway with the OpenCV Zoo file as published, and
//! `tests/fixtures/bench_opencv.py` (OpenCV's FaceDetectorYN + FaceRecognizerSF on the same frame,
//! files and thread count) when the fixture venv is there. Each prints median and p99 per stage
//! over 100 iterations after 10 warm-up; each round ends with the ratio of our total to OpenCV's.
//! Rounds interleave the three so that a machine whose speed drifts shows it in every ratio.
//! Presentation-attack detection (the PAD model on the detected face, issue 18) is timed beside
//! detect and embed; the totals compared with OpenCV leave it out, as OpenCV's pipeline has none.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clearway_node::face::pad::{LivenessModel, OnnxLiveness};
use clearway_node::face::{FacePipeline, Frame, OrtRuntime, config::FaceConfig};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs Clearway's pipeline with `config`; prints the stages; returns the total's median (ms).
fn clearway(label: &str, lib: &Path, assets: &Path, config: FaceConfig, frame: &Frame) -> f64 {
    let runtime = OrtRuntime::load(lib, config.runtime.clone()).expect("ONNX Runtime");
    let mut pad = OnnxLiveness::new(&runtime, assets, &config.pad).expect("PAD model loads");
    let mut pipeline =
        FacePipeline::load(lib, assets, config).expect("pipeline loads (run `just setup`)");
    let iterations = 100;
    let (mut detect, mut embed, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let (mut liveness, mut with_pad) = (Vec::new(), Vec::new());
    for i in 0..iterations + 10 {
        let t0 = Instant::now();
        let faces = pipeline.detect(frame.as_ref()).expect("detect");
        let t1 = Instant::now();
        let e = pipeline.embed(frame.as_ref(), &faces[0]).expect("embed");
        let t2 = Instant::now();
        let p = pad.score(frame.as_ref(), &faces[0]).expect("PAD");
        let t3 = Instant::now();
        std::hint::black_box((e, p));
        if i >= 10 {
            detect.push(t1 - t0);
            embed.push(t2 - t1);
            total.push(t2 - t0);
            liveness.push(t3 - t2);
            with_pad.push(t3 - t0);
        }
    }
    println!(
        "Clearway, {label}: 1280x720, 1 thread, on {}, {iterations} iterations (after 10 warm-up):",
        pipeline.device()
    );
    for (name, v) in [
        ("detect (resize+YuNet+decode+NMS)", &mut detect),
        ("embed (align+SFace)", &mut embed),
        ("total", &mut total),
        ("pad (crop+liveness model)", &mut liveness),
        ("total with PAD", &mut with_pad),
    ] {
        v.sort();
        println!(
            "  {name:<34} median {:>7.2} ms  p99 {:>7.2} ms",
            percentile(v, 0.5).as_secs_f64() * 1e3,
            percentile(v, 0.99).as_secs_f64() * 1e3
        );
    }
    percentile(&total, 0.5).as_secs_f64() * 1e3
}

/// Runs OpenCV's pipeline script; prints what it prints; returns its total's median (ms).
fn opencv(root: &Path, assets: &Path) -> Option<f64> {
    let cache = std::env::var_os("CLEARWAY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/clearway-cache"));
    let python = cache.join("venv/bin/python");
    if !python.exists() {
        println!(
            "OpenCV: no fixture venv at {} (run `just setup`)",
            python.display()
        );
        return None;
    }
    let out = std::process::Command::new(python)
        .arg(root.join("tests/fixtures/bench_opencv.py"))
        .arg(assets)
        .output()
        .expect("run bench_opencv.py");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut total = None;
    for line in text.lines() {
        match line.strip_prefix("total_median_ms=") {
            Some(rest) => total = rest.split(' ').next().and_then(|v| v.parse().ok()),
            None => println!("{line}"),
        }
    }
    total
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let assets = std::env::var_os("CLEARWAY_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("assets"));
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| assets.join("onnxruntime/libonnxruntime.so.1.31.1"));
    let frame =
        Frame::open(&assets.join("photos/variants/frame_1280x720.jpg")).expect("bench frame");
    let shipped = {
        let mut c = FaceConfig::default();
        c.runtime.intra_threads = 1;
        c
    };
    let published = {
        let mut c = shipped.clone();
        c.recogniser.model = "models/face_recognition_sface_2021dec.onnx".into();
        c.recogniser.sha256 =
            "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79".into();
        c
    };
    for round in 1..=3 {
        println!("--- round {round}");
        let ours = clearway(
            "SFace as shipped (derived)",
            &lib,
            &assets,
            shipped.clone(),
            &frame,
        );
        let as_published = clearway(
            "SFace as published",
            &lib,
            &assets,
            published.clone(),
            &frame,
        );
        if let Some(theirs) = opencv(&root, &assets) {
            println!(
                "  ratio to OpenCV (total medians): shipped {:.2}x, as published {:.2}x",
                ours / theirs,
                as_published / theirs
            );
        }
    }
}
