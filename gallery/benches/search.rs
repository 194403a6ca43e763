//! 1:N search throughput: 100k and 1M templates of 128 dimensions, one probe and batches of 32, per kernel
//! available on this CPU, with the plain-`f32` reference scan at 100k as a baseline.
//!
//! `cargo bench -p clearway-gallery --bench search`. Single-probe tail latency is `benches/latency.rs`.

use std::time::Duration;

use clearway_gallery::{Gallery, Kernel, ModelId, PersonId, Template};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 128;
const BATCH: usize = 32;
const K: usize = 5;

fn vector(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// A gallery of `n` random unit templates (two per person) and `BATCH` probes, flat.
fn setup(n: usize) -> (Gallery, Vec<f32>) {
    let model = ModelId::new("sface", "2021dec");
    let mut rng = StdRng::seed_from_u64(n as u64);
    let mut g = Gallery::new(model.clone(), DIM).expect("gallery");
    g.reserve(n);
    for i in 0..n {
        let t = Template::quantize(model.clone(), &vector(&mut rng)).expect("template");
        g.insert(PersonId(i as u64 / 2), &t).expect("insert");
    }
    let probes = (0..BATCH).flat_map(|_| vector(&mut rng)).collect();
    (g, probes)
}

fn search(c: &mut Criterion) {
    for n in [100_000, 1_000_000] {
        let (mut g, probes) = setup(n);
        let mut group = c.benchmark_group(format!("search_{}k_x{DIM}", n / 1000));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for kernel in Kernel::available() {
            g.set_kernel(kernel).expect("kernel");
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new("single", kernel), |b| {
                b.iter(|| g.search(&probes[..DIM], K).expect("search"))
            });
            group.throughput(Throughput::Elements((n * BATCH) as u64));
            group.bench_function(BenchmarkId::new(format!("batch{BATCH}"), kernel), |b| {
                b.iter(|| g.search_batch(&probes, K).expect("search"))
            });
        }
        if n == 100_000 {
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new("single", "f32_reference"), |b| {
                b.iter(|| g.search_f32(&probes[..DIM], K).expect("search"))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, search);
criterion_main!(benches);
