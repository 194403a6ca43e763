//! Tail latency of one single-probe search over 1M templates × 128 dimensions, per kernel, on one thread.
//!
//! Criterion reports means; a traveller waits for the slow searches too. This runs 20 warm-up searches,
//! then 200 timed ones with different probes, sorts the durations and prints p50, p90, p99 and the
//! maximum. `cargo bench -p clearway-gallery --bench latency` (pin it with `taskset -c 1` to hold it to
//! one core).

use std::time::{Duration, Instant};

use clearway_gallery::{Gallery, Kernel, ModelId, PersonId, Template};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const N: usize = 1_000_000;
const DIM: usize = 128;
const WARM_UP: usize = 20;
const RUNS: usize = 200;

fn vector(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means this bench was not asked for.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"latency".contains(a.as_str()))
    {
        return;
    }
    let model = ModelId::new("sface", "2021dec");
    let mut rng = StdRng::seed_from_u64(7);
    let mut g = Gallery::new(model.clone(), DIM).expect("gallery");
    g.reserve(N);
    for i in 0..N {
        let t = Template::quantize(model.clone(), &vector(&mut rng)).expect("template");
        g.insert(PersonId(i as u64), &t).expect("insert");
    }
    let probes: Vec<Vec<f32>> = (0..WARM_UP + RUNS).map(|_| vector(&mut rng)).collect();
    println!(
        "single-probe search, {N} templates x {DIM} dims, k = 5, {RUNS} runs after {WARM_UP} warm-up"
    );
    for kernel in Kernel::available() {
        g.set_kernel(kernel).expect("kernel");
        let mut times = Vec::with_capacity(RUNS);
        for (i, probe) in probes.iter().enumerate() {
            let start = Instant::now();
            let hits = g.search(probe, 5).expect("search");
            let took = start.elapsed();
            std::hint::black_box(hits);
            if i >= WARM_UP {
                times.push(took);
            }
        }
        times.sort_unstable();
        let mean = times.iter().sum::<Duration>() / RUNS as u32;
        println!(
            "latency/{kernel:<8} mean {:7.2} ms  p50 {:7.2} ms  p90 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms",
            ms(mean),
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 90.0)),
            ms(percentile(&times, 99.0)),
            ms(times[RUNS - 1]),
        );
    }
}
