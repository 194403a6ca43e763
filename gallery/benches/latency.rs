//! Tail latency of one single-probe search at 1M and 10M templates × 128 dimensions, on 1 and 2 threads,
//! beside FAISS in the same run, and the memory-bandwidth floor of this machine.
//!
//! Criterion reports means; a traveller waits for the slow searches too. Per gallery size this runs 20
//! warm-up searches, then timed ones with different probes, sorts the durations and prints p50, p99 and
//! the maximum: every kernel on one thread at 1M, then the fastest kernel on a [`ScanPool`] of 1 and of
//! 2 pinned threads. It also fetches every cache line of a 1 GiB buffer on 1 and 2 threads (best of
//! five) to state the floor any exact scan of that many bytes has here (at 10M; at 1M the rows fit a
//! large last-level cache), and then runs `tests/fixtures/bench_faiss.py` (FAISS
//! `IndexFlatIP` and `IndexScalarQuantizer(QT_8bit)`, same sizes, probes and thread counts) from the
//! fixture venv when it is there.
//!
//! `cargo bench -p clearway-gallery --bench latency` runs 1M; `CLEARWAY_BENCH_SIZES=1000000,10000000`
//! (what `just bench 10m` sets) adds 10M.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clearway_gallery::{Gallery, Kernel, ModelId, PersonId, ScanPool, Template};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 128;
const WARM_UP: usize = 20;
const THREADS: [usize; 2] = [1, 2];

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

/// Timed runs per size: fewer at 10M, where one run reads 1.28 GB.
fn runs(n: usize) -> usize {
    if n >= 5_000_000 { 100 } else { 200 }
}

fn time_searches(g: &Gallery, probes: &[Vec<f32>], runs: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(runs);
    for (i, probe) in probes.iter().take(WARM_UP + runs).enumerate() {
        let start = Instant::now();
        let hits = g.search(probe, 5).expect("search");
        let took = start.elapsed();
        std::hint::black_box(hits);
        if i >= WARM_UP {
            times.push(took);
        }
    }
    times.sort_unstable();
    times
}

fn report(label: &str, times: &[Duration]) {
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "latency/{label:<22} runs {:>3}  mean {:8.2} ms  p50 {:8.2} ms  p99 {:8.2} ms  max {:8.2} ms",
        times.len(),
        ms(mean),
        ms(percentile(times, 50.0)),
        ms(percentile(times, 99.0)),
        ms(times[times.len() - 1]),
    );
}

/// Bytes per second `threads` threads draw from memory reading a buffer far larger than the caches
/// (best of five), each its own contiguous part: every 64-byte cache line is fetched once (one word of
/// each is folded in, so the loop is bound by the line fetches, not by arithmetic; a loop that adds
/// every word measured 25 % less here).
fn read_bandwidth(buffer: &[u64], threads: usize) -> f64 {
    let part = buffer.len().div_ceil(threads);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let folds: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = buffer
                .chunks(part)
                .map(|chunk| {
                    s.spawn(move || chunk.chunks_exact(8).fold(0u64, |acc, line| acc ^ line[0]))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("reader"))
                .collect()
        });
        std::hint::black_box(folds);
        best = best.min(start.elapsed().as_secs_f64());
    }
    (buffer.len() * 8) as f64 / best
}

fn sizes() -> Vec<usize> {
    std::env::var("CLEARWAY_BENCH_SIZES")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("CLEARWAY_BENCH_SIZES: numbers"))
        .collect()
}

fn faiss(n: usize) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cache =
        std::env::var("CLEARWAY_CACHE").unwrap_or_else(|_| "/var/tmp/clearway-cache".into());
    let python = std::path::Path::new(&cache).join("venv/bin/python");
    if !python.exists() {
        println!(
            "FAISS: no fixture venv at {} (run `just setup`)",
            python.display()
        );
        return;
    }
    let runs = runs(n).to_string();
    // IndexFlatIP reads four times the bytes (float32): fewer runs at 10M keep the bench short.
    let flat_runs = if n >= 5_000_000 { "30" } else { runs.as_str() };
    let threads = THREADS.map(|t| t.to_string()).join(",");
    let status = std::process::Command::new(python)
        .arg(root.join("tests/fixtures/bench_faiss.py"))
        .args([
            "--n",
            &n.to_string(),
            "--runs",
            &runs,
            "--flat-runs",
            flat_runs,
        ])
        .args(["--threads", &threads])
        .status()
        .expect("run bench_faiss.py");
    assert!(status.success(), "bench_faiss.py failed: {status}");
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means this bench was not asked for.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"latency".contains(a.as_str()))
    {
        return;
    }
    let words = (1usize << 30) / 8;
    let buffer: Vec<u64> = (0..words as u64).collect();
    let bandwidth: Vec<f64> = THREADS
        .iter()
        .map(|&t| read_bandwidth(&buffer, t))
        .collect();
    drop(buffer);
    for (t, bw) in THREADS.iter().zip(&bandwidth) {
        println!("memory read bandwidth, {t} thread(s): {:.1} GB/s", bw / 1e9);
    }

    let model = ModelId::new("sface", "2021dec");
    let pools: Vec<Arc<ScanPool>> = THREADS
        .iter()
        .map(|&t| Arc::new(ScanPool::new(t).expect("pool").with_min_rows(0)))
        .collect();
    for n in sizes() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut g = Gallery::new(model.clone(), DIM).expect("gallery");
        g.reserve(n);
        let start = Instant::now();
        for i in 0..n {
            let t = Template::quantize(model.clone(), &vector(&mut rng)).expect("template");
            g.insert(PersonId(i as u64), &t).expect("insert");
        }
        let bytes = n * DIM;
        println!(
            "\nsingle-probe search, {n} templates x {DIM} dims ({:.2} GB of int8 rows, built in {:.1} s), k = 5, \
             {WARM_UP} warm-up",
            bytes as f64 / 1e9,
            start.elapsed().as_secs_f64()
        );
        for (t, bw) in THREADS.iter().zip(&bandwidth) {
            println!(
                "floor: reading the rows once on {t} thread(s) takes {:.2} ms",
                bytes as f64 / bw * 1e3
            );
        }
        let probes: Vec<Vec<f32>> = (0..WARM_UP + runs(n)).map(|_| vector(&mut rng)).collect();
        if n < 5_000_000 {
            for kernel in Kernel::available() {
                g.set_kernel(kernel).expect("kernel");
                report(
                    &format!("{kernel}/caller"),
                    &time_searches(&g, &probes, runs(n)),
                );
            }
        }
        g.set_kernel(Kernel::detect()).expect("kernel");
        for (t, pool) in THREADS.iter().zip(&pools) {
            g.set_scan_pool(Some(Arc::clone(pool)));
            report(
                &format!("{}/pool-{t}", Kernel::detect()),
                &time_searches(&g, &probes, runs(n)),
            );
        }
        println!(
            "(pool threads pinned: {})",
            pools.iter().map(|p| p.pinned()).sum::<usize>()
        );
        drop(g);
        faiss(n);
    }
}
