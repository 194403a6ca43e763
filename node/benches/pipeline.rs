//! Frame → embedding at 1280×720, per stage, one inference thread (`just bench`).
//!
//! Prints median and p99 per stage over a fixed number of iterations after warm-up. The OpenCV
//! comparison on the same frame and thread count is `tests/fixtures/bench_opencv.py`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clearway_node::face::{FacePipeline, Frame, config::FaceConfig};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let assets = std::env::var_os("CLEARWAY_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("assets"));
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| assets.join("onnxruntime/libonnxruntime.so.1.31.1"));
    let mut config = FaceConfig::default();
    config.runtime.intra_threads = 1;
    let mut pipeline =
        FacePipeline::load(&lib, &assets, config).expect("pipeline loads (run `just setup`)");
    let frame =
        Frame::open(&assets.join("photos/variants/frame_1280x720.jpg")).expect("bench frame");
    let iterations = 100;
    let (mut detect, mut embed, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..iterations + 10 {
        let t0 = Instant::now();
        let faces = pipeline.detect(frame.as_ref()).expect("detect");
        let t1 = Instant::now();
        let e = pipeline.embed(frame.as_ref(), &faces[0]).expect("embed");
        let t2 = Instant::now();
        std::hint::black_box(e);
        if i >= 10 {
            detect.push(t1 - t0);
            embed.push(t2 - t1);
            total.push(t2 - t0);
        }
    }
    println!("frame→embedding, 1280x720, 1 thread, {iterations} iterations (after 10 warm-up):");
    for (name, v) in [
        ("detect (resize+YuNet+decode+NMS)", &mut detect),
        ("embed (align+SFace)", &mut embed),
        ("total", &mut total),
    ] {
        v.sort();
        println!(
            "  {name:<34} median {:>7.2} ms  p99 {:>7.2} ms",
            percentile(v, 0.5).as_secs_f64() * 1e3,
            percentile(v, 0.99).as_secs_f64() * 1e3
        );
    }
}
