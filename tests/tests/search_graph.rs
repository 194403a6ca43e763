//! The 1:N search graph (`clearway_node::face::OrtIndex`), the engine the node uses on a GPU, run
//! here on ONNX Runtime's CPU provider against the gallery's own int8 scan: every hit and every
//! score must be equal, across segments, after removals and growth, and bad input is an error.
//!
//! `deploy/gpu/check.sh` runs this same file with `CLEARWAY_SEARCH_PROVIDER=cuda` on a machine with
//! a GPU, where the rows are resident in device memory.

use clearway_gallery::registry::MAX_TEMPLATES_PER_PERSON;
use clearway_gallery::{Gallery, Hit, ModelId, PersonId, SEGMENT_ROWS, Template};
use clearway_node::face::config::{Provider, RuntimeConfig};
use clearway_node::face::{Device, OrtIndex, OrtRuntime};
use clearway_tests::ort_library;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 128;

fn sface() -> ModelId {
    ModelId::new("sface", "2021dec")
}

fn unit(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random::<f32>() - 0.5).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn near(rng: &mut StdRng, centre: &[f32]) -> Vec<f32> {
    let v: Vec<f32> = centre
        .iter()
        .map(|c| c + 0.05 * (rng.random::<f32>() - 0.5))
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// The provider under test: CPU unless `CLEARWAY_SEARCH_PROVIDER` says `cuda` (the GPU check).
/// `copies`: keep copies of the rows in the provider's memory (always so on CUDA).
fn index(copies: bool) -> OrtIndex {
    let provider = match std::env::var("CLEARWAY_SEARCH_PROVIDER").as_deref() {
        Ok("cuda") => Provider::Cuda,
        _ => Provider::Cpu,
    };
    let runtime = OrtRuntime::load(
        &ort_library(),
        RuntimeConfig {
            provider,
            intra_threads: 2,
        },
    )
    .expect("ONNX Runtime");
    let index = OrtIndex::new(&runtime, DIM, MAX_TEMPLATES_PER_PERSON).expect("search graph");
    let expected = if provider == Provider::Cuda {
        Device::Cuda
    } else {
        Device::Cpu
    };
    assert_eq!(index.device(), expected);
    if copies { index.with_copies() } else { index }
}

fn assert_same(index: &OrtIndex, g: &Gallery, probes: &[Vec<f32>], what: &str) {
    let flat: Vec<f32> = probes.concat();
    for k in [1, 5, 20] {
        let scan = g.search_batch(&flat, k).unwrap();
        let graph = index.search_batch(g, &flat, k).unwrap();
        assert_eq!(graph, scan, "{what}: k = {k}");
        assert_eq!(
            index.search(g, &probes[0], k).unwrap(),
            scan[0],
            "{what}: one probe, k = {k}"
        );
    }
}

#[test]
fn the_search_graph_gives_the_scans_hits_and_scores_exactly() {
    scans_hits_and_scores(false);
}

#[test]
fn the_search_graph_on_copies_of_the_rows_follows_every_change() {
    scans_hits_and_scores(true);
}

fn scans_hits_and_scores(copies: bool) {
    let mut rng = StdRng::seed_from_u64(17);
    let index = index(copies);
    let mut g = Gallery::new(sface(), DIM).unwrap();

    // An empty gallery and k = 0 give empty lists, not errors.
    let probe = unit(&mut rng);
    assert_eq!(index.search(&g, &probe, 5).unwrap(), Vec::<Hit>::new());

    // Two and a bit segments; four templates per person scattered over every segment, some rows
    // copied under other persons (exact ties the lower row must win), and probes near some rows.
    let rows = 2 * SEGMENT_ROWS + 5_000;
    let persons = (rows / 4) as u64;
    let mut kept: Vec<Vec<f32>> = Vec::new();
    for row in 0..rows {
        // 7919 is prime to `persons`, so each person gets one row in every `persons` rows.
        let person = PersonId(row as u64 * 7919 % persons);
        let values = if row % 50_000 == 7 && !kept.is_empty() {
            kept[rng.random_range(0..kept.len())].clone()
        } else {
            unit(&mut rng)
        };
        if row % 30_011 == 0 {
            kept.push(values.clone());
        }
        g.insert(person, &Template::quantize(sface(), &values).unwrap())
            .unwrap();
    }
    // Persons enrolled with the most templates one may hold, all near a probe: a probe's best rows
    // are then mostly one person's, and the graph must return enough rows to find k persons.
    for (i, centre) in kept.iter().enumerate() {
        for _ in 0..MAX_TEMPLATES_PER_PERSON {
            let values = near(&mut rng, centre);
            g.insert(
                PersonId(persons + i as u64),
                &Template::quantize(sface(), &values).unwrap(),
            )
            .unwrap();
        }
    }
    let mut probes: Vec<Vec<f32>> = kept.iter().map(|c| near(&mut rng, c)).collect();
    probes.push(unit(&mut rng));
    probes.extend(kept.iter().take(3).cloned());
    assert_eq!(index.search(&g, &probes[0], 0).unwrap(), Vec::<Hit>::new());
    assert_same(&index, &g, &probes, "three segments");

    // Cancel the best match of every probe (rows move between segments), then grow into a
    // fourth segment: the graph sees every change and never returns a removed person.
    let removed: Vec<PersonId> = g
        .search_batch(&probes.concat(), 1)
        .unwrap()
        .iter()
        .map(|hits| hits[0].person)
        .collect();
    for person in &removed {
        g.remove_person(*person); // 0 when two probes shared a best match
    }
    assert!(removed.iter().all(|p| !g.contains(*p)));
    let hits = index.search_batch(&g, &probes.concat(), 3).unwrap();
    for (hits, removed) in hits.iter().zip(&removed) {
        assert!(hits.iter().all(|h| h.person != *removed));
    }
    assert_same(&index, &g, &probes, "after removals");
    for person in 2 * persons.. {
        if g.segments().len() == 4 {
            break;
        }
        let values = unit(&mut rng);
        g.insert(
            PersonId(person),
            &Template::quantize(sface(), &values).unwrap(),
        )
        .unwrap();
    }
    assert_same(&index, &g, &probes, "four segments");

    // Bad probes are errors, as the scan's are.
    let short = vec![0.1f32; DIM - 1];
    assert!(index.search(&g, &short, 1).is_err());
    let mut nan = probes[0].clone();
    nan[3] = f32::NAN;
    assert!(index.search(&g, &nan, 1).is_err());
    assert!(index.search(&g, &vec![0.0; DIM], 1).is_err());
    let other = Gallery::new(sface(), 64).unwrap();
    assert!(index.search(&other, &probes[0][..64], 1).is_err());
}
