//! Fidelity: Clearway's Rust face pipeline (ONNX Runtime) against OpenCV's own FaceDetectorYN and
//! FaceRecognizerSF on the same photos and model files (fixture made by
//! `tests/fixtures/make_reference.py`, `just fixtures`).

use clearway_node::face::{FacePipeline, Frame, config::FaceConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    opencv: String,
    score_threshold: f32,
    photos: Vec<Photo>,
}

#[derive(Deserialize)]
struct Photo {
    photo: String,
    width: u32,
    height: u32,
    faces: Vec<RefFace>,
}

#[derive(Deserialize)]
struct RefFace {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    landmarks: [f32; 10],
    score: f32,
    feature: Vec<f32>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn detections_and_embeddings_match_opencv() {
    let text = std::fs::read_to_string(
        clearway_tests::root().join("tests/fixtures/opencv_reference.json"),
    )
    .expect("fixture present");
    let reference: Reference = serde_json::from_str(&text).expect("fixture parses");
    let mut config = FaceConfig::default();
    config.detector.score_threshold = reference.score_threshold;
    let mut pipeline = FacePipeline::load(
        &clearway_tests::ort_library(),
        &clearway_tests::assets(),
        config,
    )
    .expect("pipeline loads");
    let mut report = Vec::new();
    let mut worst_cos = 1.0f32;
    let mut worst_px = 0.0f32;
    for photo in &reference.photos {
        let frame = Frame::open(&clearway_tests::photo(&photo.photo)).expect("photo decodes");
        assert_eq!(
            (frame.width(), frame.height()),
            (photo.width, photo.height),
            "{}",
            photo.photo
        );
        let faces = pipeline.detect(frame.as_ref()).expect("detects");
        assert_eq!(
            faces.len(),
            photo.faces.len(),
            "{}: face count vs OpenCV {}",
            photo.photo,
            reference.opencv
        );
        // Tolerance in original pixels: 1.5 pixels at the detector's input scale (the photo is
        // downscaled to at most 640 px a side before detection, by slightly different resamplers).
        let scale = (photo.width.max(photo.height) as f32 / 640.0).max(1.0);
        let tol = 1.5 * scale;
        for (ours, theirs) in faces.iter().zip(&photo.faces) {
            let ours_box = [ours.x, ours.y, ours.width, ours.height];
            let ours_lm: Vec<f32> = ours.landmarks.iter().flat_map(|p| [p.x, p.y]).collect();
            let px = ours_box
                .iter()
                .zip(&theirs.bbox)
                .chain(ours_lm.iter().zip(&theirs.landmarks))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                px <= tol,
                "{}: box/landmarks differ by {px:.2} px (tolerance {tol:.1})",
                photo.photo
            );
            assert!(
                (ours.score - theirs.score).abs() < 0.02,
                "{}: score {} vs {}",
                photo.photo,
                ours.score,
                theirs.score
            );
            let emb = pipeline.embed(frame.as_ref(), ours).expect("embeds");
            let cos = cosine(emb.values(), &theirs.feature);
            assert!(
                cos >= 0.99,
                "{}: embedding cosine to OpenCV {cos:.4} < 0.99",
                photo.photo
            );
            worst_cos = worst_cos.min(cos);
            worst_px = worst_px.max(px / scale);
            report.push(format!("{}: {px:.2} px, cosine {cos:.4}", photo.photo));
        }
    }
    eprintln!(
        "{}\nworst: {worst_px:.2} px at detector scale, cosine {worst_cos:.4}",
        report.join("\n")
    );
    assert!(
        reference
            .photos
            .iter()
            .map(|p| p.faces.len())
            .sum::<usize>()
            >= 15,
        "fixture covers enough faces"
    );
}

/// With the model's declared 640×640 input kept (`dynamic_input = false`), frames are padded to it;
/// the same face comes out at the same place with the same embedding.
#[test]
fn declared_fixed_input_still_works() {
    let frame = Frame::open(&clearway_tests::photo("variants/frame_1280x720.jpg")).expect("photo");
    let run = |dynamic: bool| {
        let mut config = FaceConfig::default();
        config.detector.dynamic_input = dynamic;
        let mut p = FacePipeline::load(
            &clearway_tests::ort_library(),
            &clearway_tests::assets(),
            config,
        )
        .expect("pipeline loads");
        let (observed, embedding) = p.single_face(frame.as_ref()).expect("one good face");
        (observed.face, embedding)
    };
    let (fixed_face, fixed_emb) = run(false);
    let (free_face, free_emb) = run(true);
    assert!((fixed_face.x - free_face.x).abs() < 4.0 && (fixed_face.y - free_face.y).abs() < 4.0);
    let cos = fixed_emb.cosine(&free_emb).expect("same model");
    assert!(cos > 0.99, "cosine {cos}");
}

/// The SFace graph the node runs (`deploy/models/derive_sface.py`: weights no longer graph
/// inputs, PRelu without branches) is the OpenCV Zoo network: every face of every fixture photo
/// embeds to the same vector (cosine ≥ 0.99999) through both files, so templates stay comparable
/// and every match decision stands. The original is loaded with its own pinned hash.
#[test]
fn derived_sface_embeds_as_the_original() {
    let text = std::fs::read_to_string(
        clearway_tests::root().join("tests/fixtures/opencv_reference.json"),
    )
    .expect("fixture present");
    let reference: Reference = serde_json::from_str(&text).expect("fixture parses");
    let load = |original: bool| {
        let mut config = FaceConfig::default();
        config.detector.score_threshold = reference.score_threshold;
        if original {
            config.recogniser.model = "models/face_recognition_sface_2021dec.onnx".into();
            config.recogniser.sha256 =
                "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79".into();
        }
        FacePipeline::load(
            &clearway_tests::ort_library(),
            &clearway_tests::assets(),
            config,
        )
        .expect("pipeline loads")
    };
    let (mut derived, mut original) = (load(false), load(true));
    assert_ne!(
        FaceConfig::default().recogniser.model,
        std::path::PathBuf::from("models/face_recognition_sface_2021dec.onnx"),
        "the node runs the derived graph"
    );
    let mut faces = 0;
    let mut worst = 1.0f32;
    for photo in &reference.photos {
        let frame = Frame::open(&clearway_tests::photo(&photo.photo)).expect("photo decodes");
        for face in derived.detect(frame.as_ref()).expect("detects") {
            let a = derived.embed(frame.as_ref(), &face).expect("embeds");
            let b = original.embed(frame.as_ref(), &face).expect("embeds");
            let cos = a.cosine(&b).expect("the same model id");
            assert!(cos >= 0.99999, "{}: cosine {cos}", photo.photo);
            worst = worst.min(cos);
            faces += 1;
        }
    }
    eprintln!("{faces} faces, worst cosine derived vs original {worst:.7}");
    assert!(faces >= 15, "the fixture covers enough faces");
}
