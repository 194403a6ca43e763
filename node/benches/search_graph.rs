//! The 1:N search graph (`OrtIndex`, the engine for a GPU) beside the gallery's int8 scan in the
//! same run: single-probe p50/p99 and batched probes per second at 1M templates × 128 (and 10M
//! with `CLEARWAY_BENCH_SIZES=1000000,10000000`, as `just bench 10m` sets).
//!
//! The provider is CPU unless `CLEARWAY_SEARCH_PROVIDER=cuda` (what `deploy/gpu/check.sh` sets on a
//! machine with a GPU). On the CPU provider the graph is a correctness path, not a fast one: the
//! figures say what it costs there. On CUDA the first search copies the rows to the device; that
//! copy is timed on its own line. Every search of both engines is checked to give the same hits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clearway_gallery::registry::MAX_TEMPLATES_PER_PERSON;
use clearway_gallery::{Gallery, ModelId, PersonId, ScanPool, Template};
use clearway_node::face::config::{Provider, RuntimeConfig};
use clearway_node::face::{OrtIndex, OrtRuntime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 128;
const WARM_UP: usize = 5;
const BATCH: usize = 64;

fn vector(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times `search` on each probe after the warm-up; prints p50/p99; returns p50 (ms).
fn single(label: &str, probes: &[Vec<f32>], mut search: impl FnMut(&[f32])) -> f64 {
    let mut times = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        let t = Instant::now();
        search(p);
        if i >= WARM_UP {
            times.push(t.elapsed());
        }
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!(
        "  {label:<34} single probe  p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  ({} runs)",
        times.len()
    );
    p50
}

/// Times batches of `BATCH` probes; prints probes/s; returns it.
fn batched(label: &str, flat: &[f32], rounds: usize, mut search: impl FnMut(&[f32])) -> f64 {
    search(&flat[..BATCH * DIM]);
    let t = Instant::now();
    for r in 0..rounds {
        let batch = &flat[(r % (flat.len() / (BATCH * DIM))) * BATCH * DIM..][..BATCH * DIM];
        search(batch);
    }
    let rate = (rounds * BATCH) as f64 / t.elapsed().as_secs_f64();
    println!("  {label:<34} batches of {BATCH}  {rate:>10.0} probes/s");
    rate
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"search_graph".contains(a.as_str()))
    {
        return;
    }
    let lib = std::env::var("ORT_DYLIB_PATH").expect("ORT_DYLIB_PATH (run through `just bench`)");
    let provider = match std::env::var("CLEARWAY_SEARCH_PROVIDER").as_deref() {
        Ok("cuda") => Provider::Cuda,
        _ => Provider::Cpu,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = OrtRuntime::load(
        std::path::Path::new(&lib),
        RuntimeConfig {
            provider,
            intra_threads: threads,
        },
    )
    .expect("ONNX Runtime");
    let index = OrtIndex::new(&runtime, DIM, MAX_TEMPLATES_PER_PERSON).expect("search graph");
    let pool = Arc::new(ScanPool::per_core().expect("scan pool"));
    let sizes: Vec<usize> = std::env::var("CLEARWAY_BENCH_SIZES")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("CLEARWAY_BENCH_SIZES: numbers"))
        .collect();
    let model = ModelId::new("sface", "2021dec");
    for n in sizes {
        let mut rng = StdRng::seed_from_u64(7);
        let mut g = Gallery::new(model.clone(), DIM).expect("gallery");
        g.set_scan_pool(Some(Arc::clone(&pool)));
        g.reserve(n);
        for i in 0..n {
            let t = Template::quantize(model.clone(), &vector(&mut rng)).expect("template");
            g.insert(PersonId(i as u64), &t).expect("insert");
        }
        let runs = if n >= 5_000_000 { 30 } else { 100 };
        let probes: Vec<Vec<f32>> = (0..WARM_UP + runs).map(|_| vector(&mut rng)).collect();
        let flat: Vec<f32> = (0..4 * BATCH).flat_map(|_| vector(&mut rng)).collect();
        println!(
            "\n1:N, {n} templates x {DIM}, k = 5, scan on {} pinned thread(s), graph on {} ({threads} intra-op threads)",
            pool.threads(),
            index.device()
        );
        let t = Instant::now();
        let first = index.search(&g, &probes[0], 5).expect("graph search");
        println!(
            "  first graph search (builds the graph; on CUDA copies the rows): {:.1} ms",
            ms(t.elapsed())
        );
        assert_eq!(first, g.search(&probes[0], 5).expect("scan"), "same hits");
        let scan = single("int8 scan (ScanPool)", &probes, |p| {
            std::hint::black_box(g.search(p, 5).expect("scan"));
        });
        let graph = single(
            &format!("search graph ({})", index.device()),
            &probes,
            |p| {
                let hits = index.search(&g, p, 5).expect("graph search");
                std::hint::black_box(hits);
            },
        );
        println!("  graph / scan, p50: {:.2}x", graph / scan);
        let rounds = if n >= 5_000_000 { 3 } else { 8 };
        let scan_rate = batched("int8 scan (ScanPool)", &flat, rounds, |b| {
            std::hint::black_box(g.search_batch(b, 5).expect("scan"));
        });
        let graph_rate = batched(
            &format!("search graph ({})", index.device()),
            &flat,
            rounds,
            |b| {
                std::hint::black_box(index.search_batch(&g, b, 5).expect("graph"));
            },
        );
        println!("  graph / scan, probes/s: {:.2}x", graph_rate / scan_rate);
        let batch = &flat[..BATCH * DIM];
        assert_eq!(
            index.search_batch(&g, batch, 5).expect("graph"),
            g.search_batch(batch, 5).expect("scan"),
            "same hits for a batch"
        );
    }
}
