use expect_test::expect;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::kernel::{Probe, row_sum};
use super::*;

fn sface() -> ModelId {
    ModelId::new("sface", "2021dec")
}

fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    normalize((0..dim).map(|_| gaussian(rng)).collect())
}

/// `centre` plus Gaussian noise of standard deviation `sigma` per element, normalised.
fn near(rng: &mut StdRng, centre: &[f32], sigma: f32) -> Vec<f32> {
    normalize(centre.iter().map(|c| c + sigma * gaussian(rng)).collect())
}

fn template(values: &[f32]) -> Template {
    Template::quantize(sface(), values).unwrap()
}

fn gallery(kernel: Kernel, dim: usize, rows: &[(u64, Vec<f32>)]) -> Gallery {
    let mut g = Gallery::with_kernel(sface(), dim, kernel).unwrap();
    for (person, values) in rows {
        g.insert(PersonId(*person), &template(values)).unwrap();
    }
    g
}

fn persons(hits: &[Hit]) -> Vec<u64> {
    hits.iter().map(|h| h.person.0).collect()
}

fn random_i8(rng: &mut StdRng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.random_range(-127..=127i8)).collect()
}

/// Scores `rows` with `kernel` through the dispatch used by searches.
fn kernel_dots(kernel: Kernel, probe: &[i8], rows: &[i8]) -> Vec<i32> {
    let dim = probe.len();
    let n = rows.len() / dim;
    let sums: Vec<i32> = rows.chunks_exact(dim).map(row_sum).collect();
    let mut out = vec![i32::MIN; n];
    kernel.dot_rows(&Probe::new(probe.to_vec(), 1.0), rows, &sums, &mut out);
    out
}

/// The obvious dot product, in `i64` so it cannot overflow, checked to fit `i32`: the reference every
/// kernel (the portable one included) must equal exactly.
fn reference_dots(probe: &[i8], rows: &[i8]) -> Vec<i32> {
    rows.chunks_exact(probe.len())
        .map(|row| {
            let sum: i64 = probe
                .iter()
                .zip(row)
                .map(|(&p, &x)| i64::from(p) * i64::from(x))
                .sum();
            i32::try_from(sum).unwrap()
        })
        .collect()
}

#[test]
fn this_machine_runs_the_kernels_it_detects() {
    let available = Kernel::available();
    assert!(available.contains(&Kernel::Portable));
    assert_eq!(available[0], Kernel::detect());
    eprintln!("kernels available here: {available:?}");
}

#[test]
fn every_kernel_equals_the_reference_exactly() {
    let mut rng = StdRng::seed_from_u64(1);
    let dims = [
        1, 2, 3, 4, 7, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 96, 100, 112, 127, 128, 129,
        144, 160, 191, 192, 255, 256, 257, 300, 384, 511, 512, 513, 1000, 1024,
    ];
    for kernel in Kernel::available() {
        for &dim in &dims {
            for n in [0, 1, 2, 3, 5, 17, 64] {
                let probe = random_i8(&mut rng, dim);
                let rows = random_i8(&mut rng, n * dim);
                assert_eq!(
                    kernel_dots(kernel, &probe, &rows),
                    reference_dots(&probe, &rows),
                    "kernel {kernel}, dim {dim}, rows {n}"
                );
            }
        }
    }
}

#[test]
fn kernels_do_not_overflow_or_saturate_at_the_extremes() {
    // Pairs of ±127 make the largest products; at MAX_DIM the sums come close to i32's range (the VNNI
    // kernel's biased sum reaches 255·127·65536 ≈ 2.12e9).
    for dim in [32, 128, 1000, MAX_DIM] {
        let plus = vec![127i8; dim];
        let minus = vec![-127i8; dim];
        let alternating: Vec<i8> = (0..dim)
            .map(|i| if i % 2 == 0 { 127 } else { -127 })
            .collect();
        let rows: Vec<i8> = [&plus, &minus, &alternating]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let full = 127 * 127 * dim as i32;
        for probe in [&plus, &minus, &alternating] {
            let expected = reference_dots(probe, &rows);
            assert!(expected.iter().any(|&d| d.abs() == full));
            for kernel in Kernel::available() {
                assert_eq!(
                    kernel_dots(kernel, probe, &rows),
                    expected,
                    "kernel {kernel}, dim {dim}"
                );
            }
        }
    }
}

#[test]
fn every_kernel_gives_the_same_gallery_dots() {
    let mut rng = StdRng::seed_from_u64(2);
    for dim in [128, 100, 144] {
        let rows: Vec<(u64, Vec<f32>)> = (0..700).map(|i| (i, unit(&mut rng, dim))).collect();
        let mut g = gallery(Kernel::Portable, dim, &rows);
        let probe = unit(&mut rng, dim);
        let reference = g.dots(&probe).unwrap();
        let hits = g.search(&probe, 20).unwrap();
        for kernel in Kernel::available() {
            g.set_kernel(kernel).unwrap();
            assert_eq!(
                g.dots(&probe).unwrap(),
                reference,
                "kernel {kernel}, dim {dim}"
            );
            assert_eq!(
                g.search(&probe, 20).unwrap(),
                hits,
                "kernel {kernel}, dim {dim}"
            );
        }
    }
}

/// Per-row bound on `|int8 score − f32 reference score|`: the probe's rounding error is at most half a step
/// (`probe_scale / 2`) per element, times the dequantised row's L1 norm, plus `f32` summation slack.
fn error_bound(g: &Gallery, probe: &[f32]) -> f32 {
    let mut q = Vec::new();
    let probe_scale = quantize_into(probe, &mut q).unwrap();
    let len = g.len();
    g.rows()
        .data(0..len)
        .chunks_exact(g.dim())
        .zip(g.rows().scales(0..len))
        .map(|(row, &s)| {
            0.5 * probe_scale * s * row.iter().map(|&x| f32::from(x).abs()).sum::<f32>()
        })
        .fold(0.0, f32::max)
        + 1e-5
}

/// Every person's best reference score (`f32` probe against dequantised rows, as in `search_f32`).
fn reference_scores(g: &Gallery, probe: &[f32]) -> std::collections::HashMap<PersonId, f32> {
    let len = g.len();
    let rows = g.rows();
    let mut best = std::collections::HashMap::new();
    for ((values, &scale), &person) in rows
        .data(0..len)
        .chunks_exact(g.dim())
        .zip(rows.scales(0..len))
        .zip(rows.persons(0..len))
    {
        let s: f32 = probe
            .iter()
            .zip(values)
            .map(|(&p, &q)| p * (f32::from(q) * scale))
            .sum();
        let e = best.entry(person).or_insert(f32::MIN);
        *e = e.max(s);
    }
    best
}

/// Checks int8 hits against the f32 reference, allowing only the differences quantisation can explain:
/// with every score within `e` of its reference, ranked scores are within `e` rank by rank, and a
/// person in one top-k but not the other lies within `2e` of the reference's k-th score. Returns whether
/// top-1 was clear (and so agreed exactly) and whether the top-k sets are equal.
fn assert_agrees_with_reference(g: &Gallery, probe: &[f32], k: usize) -> (bool, bool) {
    let hits = g.search(probe, k).unwrap();
    let reference = g.search_f32(probe, k + 1).unwrap();
    let scores = reference_scores(g, probe);
    let e = error_bound(g, probe);
    let top_ref = &reference[..k.min(reference.len())];
    assert_eq!(hits.len(), top_ref.len());
    for (h, r) in hits.iter().zip(top_ref) {
        assert_eq!(
            scores[&r.person], r.score,
            "search_f32 reports the person's best score"
        );
        assert!((h.score - r.score).abs() <= e, "{h:?} vs {r:?}, bound {e}");
    }
    let kth = top_ref.last().map_or(f32::MIN, |r| r.score);
    for h in &hits {
        let s = scores[&h.person];
        assert!(
            s >= kth - 2.0 * e,
            "{h:?} has reference score {s}, k-th is {kth}, bound {e}"
        );
    }
    let top1_clear = reference.len() < 2 || reference[0].score - reference[1].score > 2.0 * e;
    if top1_clear {
        assert_eq!(
            hits[0].person, reference[0].person,
            "clear top-1 must agree exactly"
        );
    }
    let mut a = persons(&hits);
    let mut b = persons(top_ref);
    a.sort_unstable();
    b.sort_unstable();
    (top1_clear, a == b)
}

#[test]
fn int8_search_agrees_with_the_f32_reference_on_a_random_gallery() {
    let mut rng = StdRng::seed_from_u64(3);
    let dim = 128;
    let rows: Vec<(u64, Vec<f32>)> = (0..10_000).map(|i| (i, unit(&mut rng, dim))).collect();
    let g = gallery(Kernel::detect(), dim, &rows);

    // Probes near a registered row (a returning traveller): top-1 is clear and must agree exactly, and
    // the top-10 sets must agree.
    let mut sets_agree = 0;
    for i in 0..60 {
        let probe = near(&mut rng, &rows[i * 163].1, 0.06);
        let (top1_exact, same_set) = assert_agrees_with_reference(&g, &probe, 10);
        assert!(top1_exact, "probe {i}");
        sets_agree += usize::from(same_set);
    }
    // Ranks 2..10 are strangers whose scores crowd together; quantisation may swap the 10th and 11th.
    eprintln!("top-10 sets agreed for {sets_agree} of 60 returning travellers");
    assert!(
        sets_agree >= 50,
        "top-10 sets agreed for only {sets_agree} of 60 probes"
    );

    // Random probes (strangers): differences must stay within the quantisation bound.
    let mut top1_agree = 0;
    for _ in 0..60 {
        let probe = unit(&mut rng, dim);
        let hits = g.search(&probe, 1).unwrap();
        let reference = g.search_f32(&probe, 1).unwrap();
        top1_agree += usize::from(hits[0].person == reference[0].person);
        assert_agrees_with_reference(&g, &probe, 5);
    }
    eprintln!("top-1 agreed for {top1_agree} of 60 strangers");
    assert!(
        top1_agree >= 50,
        "top-1 agreed for only {top1_agree} of 60 stranger probes"
    );
}

#[test]
fn int8_top1_equals_full_precision_top1_on_identity_clusters() {
    let mut rng = StdRng::seed_from_u64(4);
    let dim = 128;
    let persons_n = 2000;
    let centres: Vec<Vec<f32>> = (0..persons_n).map(|_| unit(&mut rng, dim)).collect();
    // Three enrolment images per person; noise 0.06 per element gives cosine ≈ 0.8 to the centre.
    let mut originals: Vec<(u64, Vec<f32>)> = Vec::new();
    for (p, c) in centres.iter().enumerate() {
        for _ in 0..3 {
            originals.push((p as u64, near(&mut rng, c, 0.06)));
        }
    }
    let g = gallery(Kernel::detect(), dim, &originals);
    assert_eq!(g.len(), 3 * persons_n);
    for trial in 0..200 {
        let who = (trial * 31) % persons_n;
        let probe = near(&mut rng, &centres[who], 0.06);
        // Full precision on the original, unquantised vectors.
        let full = originals
            .iter()
            .map(|(p, v)| (*p, v.iter().zip(&probe).map(|(a, b)| a * b).sum::<f32>()))
            .fold((u64::MAX, f32::MIN), |best, cur| {
                if cur.1 > best.1 { cur } else { best }
            });
        let hits = g.search(&probe, 1).unwrap();
        assert_eq!(
            full.0, who as u64,
            "trial {trial}: full precision misidentified"
        );
        assert_eq!(hits[0].person.0, full.0, "trial {trial}");
        assert!(
            (hits[0].score - full.1).abs() < 0.02,
            "{} vs {}",
            hits[0].score,
            full.1
        );
    }
}

#[test]
fn batch_results_equal_single_results() {
    let mut rng = StdRng::seed_from_u64(5);
    for dim in [128, 100] {
        // More rows than one tile (256 rows of 128) and one scan chunk (4096 rows); persons hold several
        // templates each, and every 50th template is the same vector (ties).
        let rows: Vec<(u64, Vec<f32>)> = (0..5_000)
            .map(|i| {
                (
                    rng.random_range(0..2_000u64),
                    if i % 50 == 0 {
                        vec![0.5; dim]
                    } else {
                        unit(&mut rng, dim)
                    },
                )
            })
            .collect();
        let mut g = gallery(Kernel::Portable, dim, &rows);
        let mut probes: Vec<f32> = Vec::new();
        for i in 0..19 {
            let p = if i % 3 == 0 {
                near(&mut rng, &rows[i * 250].1, 0.05)
            } else {
                unit(&mut rng, dim)
            };
            probes.extend(p);
        }
        probes.extend(vec![0.5; dim]); // ties among identical templates
        for kernel in Kernel::available() {
            g.set_kernel(kernel).unwrap();
            for k in [0, 1, 7] {
                let batch = g.search_batch(&probes, k).unwrap();
                assert_eq!(batch.len(), 20);
                for (probe, hits) in probes.chunks_exact(dim).zip(&batch) {
                    assert_eq!(
                        &g.search(probe, k).unwrap(),
                        hits,
                        "kernel {kernel}, dim {dim}, k {k}"
                    );
                }
            }
        }
        assert_eq!(g.search_batch(&[], 3).unwrap(), Vec::<Vec<Hit>>::new());
    }
}

#[test]
fn a_person_is_returned_once_with_their_best_template() {
    let mut rng = StdRng::seed_from_u64(6);
    let dim = 64;
    let centre = unit(&mut rng, dim);
    let rows = vec![
        (1, near(&mut rng, &centre, 0.10)),
        (2, unit(&mut rng, dim)),
        (1, centre.clone()),
        (3, unit(&mut rng, dim)),
        (1, near(&mut rng, &centre, 0.20)),
    ];
    for kernel in Kernel::available() {
        let g = gallery(kernel, dim, &rows);
        let hits = g.search(&centre, 10).unwrap();
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0].person, PersonId(1));
        assert!(
            hits[0].score > 0.99,
            "best template is the centre itself: {}",
            hits[0].score
        );
        let mut ids = persons(&hits);
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(g.search_f32(&centre, 10).unwrap().len(), 3);
    }
}

#[test]
fn removal_erases_the_bytes_and_the_person_is_never_returned() {
    let mut rng = StdRng::seed_from_u64(7);
    let dim = 128;
    let mut rows: Vec<(u64, Vec<f32>)> = (0..500).map(|i| (i, unit(&mut rng, dim))).collect();
    // Person 1000 has a template in the middle, one at the very end, and one just before it.
    let cancelled = 1000;
    let faces: Vec<Vec<f32>> = (0..3).map(|_| unit(&mut rng, dim)).collect();
    rows.insert(250, (cancelled, faces[0].clone()));
    rows.push((cancelled, faces[1].clone()));
    rows.push((cancelled, faces[2].clone()));
    let mut g = gallery(Kernel::detect(), dim, &rows);
    assert_eq!(g.len(), 503);
    assert!(g.contains(PersonId(cancelled)));
    assert_eq!(
        g.search(&faces[0], 1).unwrap()[0].person,
        PersonId(cancelled)
    );

    assert_eq!(g.remove_person(PersonId(cancelled)), 3);
    assert_eq!(g.len(), 500);
    assert!(!g.contains(PersonId(cancelled)));
    assert_eq!(g.remove_person(PersonId(cancelled)), 0);

    let allocation = g.rows().allocation();
    for face in &faces {
        let bytes = template(face).data().to_vec();
        assert!(
            !allocation.windows(dim).any(|w| w == bytes.as_slice()),
            "a cancelled template's bytes are still in the buffer"
        );
        for hits in [
            g.search(face, 500).unwrap(),
            g.search_f32(face, 500).unwrap(),
        ] {
            assert_eq!(hits.len(), 500);
            assert!(!persons(&hits).contains(&cancelled));
        }
    }
    assert!(
        allocation[500 * dim..].iter().all(|&b| b == 0),
        "spare capacity must be zero"
    );
    // Everyone else is still found.
    for (p, v) in rows.iter().filter(|(p, _)| *p != cancelled).step_by(25) {
        assert_eq!(g.search(v, 1).unwrap()[0].person.0, *p);
    }

    g.clear();
    assert!(g.is_empty());
    assert!(g.rows().allocation().iter().all(|&b| b == 0));
    assert_eq!(g.search(&faces[0], 3).unwrap(), vec![]);
}

#[test]
fn growth_keeps_rows_and_zeroes_spare_capacity() {
    let mut rng = StdRng::seed_from_u64(8);
    let dim = 32;
    let rows: Vec<(u64, Vec<f32>)> = (0..1000).map(|i| (i, unit(&mut rng, dim))).collect();
    let mut g = Gallery::new(sface(), dim).unwrap();
    g.reserve(10);
    for (n, (p, v)) in rows.iter().enumerate() {
        g.insert(PersonId(*p), &template(v)).unwrap();
        assert!(
            g.rows().allocation()[(n + 1) * dim..]
                .iter()
                .all(|&b| b == 0)
        );
    }
    for (p, v) in rows.iter().step_by(50) {
        assert_eq!(g.search(v, 1).unwrap()[0].person.0, *p);
    }
}

#[test]
fn bad_input_is_an_error_never_a_panic() {
    let mut g = Gallery::new(sface(), 8).unwrap();
    let good = [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
    g.insert(PersonId(1), &template(&good)).unwrap();
    let codes = |r: Result<Vec<Hit>>| r.unwrap_err().code();

    assert_eq!(codes(g.search(&good[..7], 1)), "dimension_mismatch");
    assert_eq!(codes(g.search(&[], 1)), "dimension_mismatch");
    assert_eq!(codes(g.search(&[0.0; 8], 1)), "zero_vector");
    let mut nan = good;
    nan[3] = f32::NAN;
    assert_eq!(
        g.search(&nan, 1).unwrap_err(),
        Error::NonFinite { index: 3 }
    );
    let mut inf = good;
    inf[7] = f32::INFINITY;
    assert_eq!(codes(g.search(&inf, 1)), "non_finite");
    assert_eq!(codes(g.search_f32(&nan, 1)), "non_finite");
    assert_eq!(codes(g.search_f32(&good[..3], 1)), "dimension_mismatch");

    let batch: Vec<f32> = good.iter().chain(&good[..5]).copied().collect();
    assert_eq!(
        g.search_batch(&batch, 1).unwrap_err(),
        Error::RaggedBatch { dim: 8, len: 13 }
    );
    let batch: Vec<f32> = good.iter().chain(&nan).copied().collect();
    assert_eq!(g.search_batch(&batch, 1).unwrap_err().code(), "non_finite");

    let other_model = Template::quantize(ModelId::new("arcface", "r100"), &good).unwrap();
    let err = g.insert(PersonId(2), &other_model).unwrap_err();
    assert_eq!(err.code(), "model_mismatch");
    assert_eq!(
        err.to_string(),
        "model mismatch: gallery holds sface@2021dec, template is arcface@r100"
    );
    let wrong_dim = template(&good[..4]);
    assert_eq!(
        g.insert(PersonId(2), &wrong_dim).unwrap_err(),
        Error::DimensionMismatch {
            expected: 8,
            got: 4
        }
    );
    assert_eq!(g.len(), 1, "failed inserts add nothing");

    for dim in [0, MAX_DIM + 1] {
        assert_eq!(
            Gallery::new(sface(), dim).unwrap_err(),
            Error::InvalidDimension { dim, max: MAX_DIM }
        );
    }
    assert_eq!(
        Gallery::new(ModelId::new("sface", ""), 8).unwrap_err(),
        Error::InvalidModelId
    );
    for kernel in Kernel::ALL {
        let made = Gallery::with_kernel(sface(), 8, kernel);
        match kernel.is_available() {
            true => assert_eq!(made.unwrap().kernel(), kernel),
            false => assert_eq!(made.unwrap_err(), Error::KernelUnavailable { kernel }),
        }
    }
}

#[test]
fn small_gallery_ranked_hits() {
    // Five persons in four dimensions; person 5 holds two templates, persons 3 and 4 hold the same one.
    let rows: Vec<(u64, Vec<f32>)> = vec![
        (1, vec![1.0, 0.0, 0.0, 0.0]),
        (2, vec![0.0, 1.0, 0.0, 0.0]),
        (3, vec![0.6, 0.8, 0.0, 0.0]),
        (4, vec![0.6, 0.8, 0.0, 0.0]),
        (5, vec![0.0, 0.0, 1.0, 0.0]),
        (5, vec![0.0, 0.0, 0.8, -0.6]),
    ];
    let probes: [(&str, [f32; 4]); 4] = [
        ("x axis", [1.0, 0.0, 0.0, 0.0]),
        ("between x and y", [0.6, 0.6, 0.0, 0.0]),
        ("near 5's second", [0.0, 0.0, 0.6, -0.8]),
        ("opposite of 1", [-1.0, 0.0, 0.0, 0.0]),
    ];
    let mut rendered: Option<String> = None;
    for kernel in Kernel::available() {
        let g = gallery(kernel, 4, &rows);
        let mut out = String::new();
        for (name, probe) in &probes {
            let hits = g.search(probe, 3).unwrap();
            let hits: Vec<String> = hits
                .iter()
                .map(|h| format!("{} {:.4}", h.person, h.score))
                .collect();
            out.push_str(&format!("{name:16} {}\n", hits.join(", ")));
        }
        match &rendered {
            Some(first) => assert_eq!(&out, first, "kernel {kernel} ranks differently"),
            None => rendered = Some(out),
        }
    }
    expect![[r#"
        x axis           P00000001 1.0000, P00000003 0.5984, P00000004 0.5984
        between x and y  P00000003 0.8391, P00000004 0.8391, P00000001 0.6000
        near 5's second  P00000005 0.9575, P00000001 0.0000, P00000002 0.0000
        opposite of 1    P00000002 0.0000, P00000005 0.0000, P00000003 -0.5984
    "#]]
    .assert_eq(rendered.as_deref().unwrap_or_default());
}

#[test]
fn k_edge_cases() {
    let mut rng = StdRng::seed_from_u64(9);
    let empty = Gallery::new(sface(), 16).unwrap();
    let probe = unit(&mut rng, 16);
    assert_eq!(empty.search(&probe, 5).unwrap(), vec![]);
    assert_eq!(empty.search_f32(&probe, 5).unwrap(), vec![]);
    assert_eq!(empty.search_batch(&probe, 5).unwrap(), vec![vec![]]);

    let rows: Vec<(u64, Vec<f32>)> = (0..10).map(|i| (i % 4, unit(&mut rng, 16))).collect();
    let g = gallery(Kernel::detect(), 16, &rows);
    assert_eq!(g.search(&probe, 0).unwrap(), vec![]);
    assert_eq!(g.search_batch(&probe, 0).unwrap(), vec![vec![]]);
    let all = g.search(&probe, 100).unwrap();
    assert_eq!(all.len(), 4, "each of 4 persons once");
    assert!(all.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(
        format!("{g:?}"),
        format!(
            "Gallery {{ model: ModelId {{ name: \"sface\", version: \"2021dec\" }}, dim: 16, kernel: {:?}, len: 10, pool: None }}",
            g.kernel()
        )
    );
}

/// A gallery whose ranking a wrong split would change: persons with templates scattered over the whole
/// gallery (so a person's best row may sit in any range), identical templates of different persons
/// (ties, which the lower row wins wherever the ranges are cut), and near neighbours of the probes.
fn scattered_gallery(rng: &mut StdRng, dim: usize, rows: usize, probes: &[Vec<f32>]) -> Gallery {
    let mut g = Gallery::new(sface(), dim).unwrap();
    let persons = (rows / 3).max(1) as u64;
    let mut twins: Vec<Vec<f32>> = Vec::new();
    for row in 0..rows {
        let person = PersonId(rng.random_range(0..persons));
        let values = match row % 7 {
            // A near neighbour of some probe.
            0 if !probes.is_empty() => near(rng, &probes[row % probes.len()], 0.3),
            // A copy of an earlier template, under another person.
            1 if !twins.is_empty() => twins[rng.random_range(0..twins.len())].clone(),
            _ => unit(rng, dim),
        };
        if row % 5 == 0 {
            twins.push(values.clone());
        }
        g.insert(person, &template(&values)).unwrap();
    }
    g
}

#[test]
fn split_scans_equal_the_one_thread_scan() {
    // (rows, threads): fewer rows than threads, ragged ranges, and ranges longer than one scan block.
    let cases = [
        (0, 2),
        (1, 2),
        (2, 3),
        (7, 4),
        (100, 2),
        (101, 3),
        (4096 * 2 + 1, 2),
        (20_000, 4),
    ];
    let mut rng = StdRng::seed_from_u64(41);
    let dim = 64;
    for (rows, threads) in cases {
        let probes: Vec<Vec<f32>> = (0..5).map(|_| unit(&mut rng, dim)).collect();
        let mut g = scattered_gallery(&mut rng, dim, rows, &probes);
        let pool = Arc::new(ScanPool::new(threads).unwrap().with_min_rows(0));
        let parts = if rows < 2 { 1 } else { threads.min(rows) };
        assert_eq!(pool.parts(rows), parts, "{rows} rows");
        for k in [0, 1, 3, 50, rows + 5] {
            g.set_scan_pool(None);
            let alone: Vec<Vec<Hit>> = probes.iter().map(|p| g.search(p, k).unwrap()).collect();
            let flat: Vec<f32> = probes.concat();
            let batch_alone = g.search_batch(&flat, k).unwrap();
            g.set_scan_pool(Some(Arc::clone(&pool)));
            let split: Vec<Vec<Hit>> = probes.iter().map(|p| g.search(p, k).unwrap()).collect();
            let batch_split = g.search_batch(&flat, k).unwrap();
            assert_eq!(
                split, alone,
                "search: {rows} rows, {threads} threads, k = {k}"
            );
            assert_eq!(
                batch_split, alone,
                "batch: {rows} rows, {threads} threads, k = {k}"
            );
            assert_eq!(batch_alone, alone, "{rows} rows, k = {k}");
        }
    }
}

#[test]
fn a_pool_leaves_small_galleries_to_the_caller_and_splits_large_ones() {
    let pool = ScanPool::new(2).unwrap();
    assert_eq!(pool.threads(), 2);
    assert_eq!(pool.parts(DEFAULT_MIN_ROWS - 1), 1);
    assert_eq!(pool.parts(DEFAULT_MIN_ROWS), 2);
    let pool = ScanPool::new(0).unwrap().with_min_rows(0);
    assert_eq!(
        (pool.threads(), pool.parts(1_000)),
        (1, 1),
        "at least one thread"
    );
    let per_core = ScanPool::per_core().unwrap();
    assert!(per_core.threads() >= 1);
}

/// Each segment's version, with its start and length.
fn segment_versions(g: &Gallery) -> Vec<(usize, usize, u64)> {
    g.segments()
        .map(|s| {
            assert_eq!(s.data.len(), s.scales.len() * g.dim(), "whole rows");
            (s.start, s.scales.len(), s.version)
        })
        .collect()
}

#[test]
fn a_segment_version_changes_exactly_when_its_rows_do() {
    // Dimension 2 keeps 2.5 segments of rows small.
    let dim = 2;
    let mut g = Gallery::new(sface(), dim).unwrap();
    let row = |p: u64| template(&[1.0, p as f32 + 1.0]);
    let len = 2 * SEGMENT_ROWS + SEGMENT_ROWS / 2;
    for p in 0..len as u64 {
        g.insert(PersonId(p), &row(p)).unwrap();
    }
    let before = segment_versions(&g);
    assert_eq!(
        before
            .iter()
            .map(|&(start, n, _)| (start, n))
            .collect::<Vec<_>>(),
        [
            (0, SEGMENT_ROWS),
            (SEGMENT_ROWS, SEGMENT_ROWS),
            (2 * SEGMENT_ROWS, SEGMENT_ROWS / 2)
        ]
    );
    let data: Vec<i8> = g.segments().flat_map(|s| s.data.to_vec()).collect();
    assert_eq!(
        data,
        g.rows().data(0..len),
        "segments cover the rows in order"
    );

    // Removing a row of segment 0 moves the last row (segment 2) into its place.
    assert_eq!(g.remove_person(PersonId(5)), 1);
    let after = segment_versions(&g);
    assert_ne!(after[0].2, before[0].2, "the removed row's segment");
    assert_eq!(after[1].2, before[1].2, "untouched");
    assert_ne!(after[2].2, before[2].2, "the moved row's segment");
    assert_eq!(after[2].1, SEGMENT_ROWS / 2 - 1);

    // Appending changes only the last segment; a new segment starts when one fills.
    g.insert(PersonId(u64::MAX), &row(9)).unwrap();
    let appended = segment_versions(&g);
    assert_eq!(appended[..2], after[..2]);
    assert_ne!(appended[2].2, after[2].2);

    // Emptying the last segment drops it.
    for p in (2 * SEGMENT_ROWS) as u64..len as u64 {
        g.remove_person(PersonId(p));
    }
    g.remove_person(PersonId(u64::MAX));
    assert_eq!(g.len(), 2 * SEGMENT_ROWS - 1);
    assert_eq!(g.segments().len(), 2);

    // No two galleries, and no segment after a clear, reuse a version.
    let seen: std::collections::HashSet<u64> = before
        .iter()
        .chain(&after)
        .chain(&appended)
        .map(|s| s.2)
        .collect();
    g.clear();
    assert_eq!(g.segments().len(), 0);
    let mut other = Gallery::new(sface(), dim).unwrap();
    other.insert(PersonId(1), &row(1)).unwrap();
    g.insert(PersonId(1), &row(1)).unwrap();
    for s in other.segments().chain(g.segments()) {
        assert!(!seen.contains(&s.version), "version {} reused", s.version);
    }
    assert_ne!(
        other.segments().next().unwrap().version,
        g.segments().next().unwrap().version
    );
}

#[test]
fn ranking_another_engines_scores_equals_the_search() {
    let mut rng = StdRng::seed_from_u64(41);
    let dim = 128;
    // Several templates per person, so ranking must keep each person once.
    let rows: Vec<(u64, Vec<f32>)> = (0..3_000).map(|i| (i % 700, unit(&mut rng, dim))).collect();
    let g = gallery(Kernel::detect(), dim, &rows);
    let templates_per_person = 5;
    for _ in 0..20 {
        let centre = rng.random_range(0..rows.len());
        let probe = near(&mut rng, &rows[centre].1, 0.4);
        let (_, probe_scale) = g.quantize_probe(&probe).unwrap();
        // What a GPU computes: the exact integer dots, scored in the same order as the scan.
        let scales = g.rows().scales(0..g.len());
        let mut scored: Vec<(f32, usize)> = g
            .dots(&probe)
            .unwrap()
            .iter()
            .zip(scales)
            .enumerate()
            .map(|(row, (&d, &s))| (d as f32 * probe_scale * s, row))
            .collect();
        for k in [1, 5, 20] {
            let search = g.search(&probe, k).unwrap();
            assert_eq!(g.rank_rows(scored.iter().copied(), k).unwrap(), search);
            // Only the best k × templates-per-person rows, as a device's TopK returns them.
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let best = &scored[..k * templates_per_person];
            assert_eq!(g.rank_rows(best.iter().copied(), k).unwrap(), search);
        }
    }
    let len = g.len();
    assert_eq!(
        g.rank_rows([(0.5, len)], 1),
        Err(Error::ForeignRow { row: len, len })
    );
    assert_eq!(
        g.rank_rows([(f32::NAN, 0)], 1),
        Err(Error::ForeignRow { row: 0, len })
    );
}
