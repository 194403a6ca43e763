//! Lane latency: from the arrival of a camera frame (decoded, at the appsink) to the gate-1 open
//! command, on CPU, with per-stage timings. The whole lane runs as in production: a
//! `clearway-node` lane process fed by a real RTSP stream (H.264, 1280×720, 10 fps) of a real
//! photo of a registered traveller, the Modbus gate simulator and the reference authorities.
//! Each passage: the traveller appears, is identified, walks through gates 2 and 3, leaves.
//!
//! `cargo bench -p clearway-tests --bench lane` (`just bench` runs it). Prints p50/p90/p99/max of
//! frame→gate-1 (from the lane's log, one line per admission) and the mean of each stage (from
//! the lane's `/metrics` histograms).
//!
//! Two runs: PAD observing (the model scores every face, nothing waits for it: its cost alone),
//! then PAD enforcing with the model's threshold at 0 (every face judged bona fide, so gate 1
//! waits for `required` bona fide frames: the cost of the multi-frame decision). The camera
//! shows a photo, so enforcing at the real threshold would, rightly, not admit it.

use std::time::Duration;

use chrono::Utc;
use clearway_node::lane::camera::sim::Scene;
use clearway_tests::lane::{Rig, rig, rig_with_face, wait_lane_api};
use clearway_tests::photo;

const PASSAGES: usize = 40;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        bench("PAD observing", rig(dir.path()).await).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let enforce = "\n[lane.procedure.pad]\nmode = \"enforce\"\n";
        let rig = rig_with_face(dir.path(), enforce, "[pad]\nthreshold = 0.0\n").await;
        bench("PAD enforcing (3 of 5 bona fide frames)", rig).await;
    });
}

async fn bench(label: &str, mut rig: Rig) {
    // Enrolled and holding both authorities' prerequisites, as a registered traveller does (the
    // bench's own enrolment had fallen behind the registration rules and was refused face scan).
    rig.enrol_macao_adult("M10000001", "OBAMA, BARACK", "face_recognition/obama.jpg")
        .await;
    wait_lane_api(&rig).await;
    let started = Utc::now();
    let mut shown_to_admitted = Vec::new();
    for _ in 0..PASSAGES {
        let shown = std::time::Instant::now();
        rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
        rig.wait_event("decision", "admitted", Duration::from_secs(60))
            .await;
        shown_to_admitted.push(shown.elapsed());
        rig.walk_through().await;
    }
    let took = Utc::now() - started;
    let log = strip_ansi(&rig.port.log(2));
    let mut us: Vec<u64> = log
        .lines()
        .filter_map(|l| l.split("frame_to_gate1_us=").nth(1))
        .filter_map(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect();
    us.sort_unstable();
    assert_eq!(us.len(), PASSAGES, "one admission per passage");
    let pct = |p: f64| us[((us.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
    println!(
        "{label}: lane frame→gate-1 over {PASSAGES} passages ({:.0} s): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        took.num_milliseconds() as f64 / 1000.0,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    shown_to_admitted.sort();
    let at = |p: f64| {
        shown_to_admitted[((shown_to_admitted.len() as f64 - 1.0) * p).round() as usize]
            .as_secs_f64()
            * 1000.0
    };
    println!(
        "  scene shown → admitted (the lane's events polled every 100 ms): p50 {:.0} ms, p99 {:.0} ms",
        at(0.5),
        at(0.99)
    );
    let metrics = rig.port.scrape(2);
    for stage in ["detect", "pad", "embed", "search", "decide"] {
        let get = |suffix: &str| {
            let key = format!("clearway_lane_stage_seconds_{suffix}{{stage=\"{stage}\"}}");
            metrics
                .lines()
                .find(|l| l.starts_with(&key))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let (sum, count) = (get("sum"), get("count"));
        if count > 0.0 {
            println!(
                "  stage {stage:<7} mean {:.2} ms over {count} frames",
                sum / count * 1000.0
            );
        }
    }
    rig.port.stop(2);
    rig.port.stop(1);
}

/// The log without terminal colour codes (`ESC [ … m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
