//! Unit tests of the pure face code: decoding, NMS, geometry, alignment, quality gate, pixels.
//! The models themselves are exercised on real photos in `tests/` (fidelity against OpenCV).

use expect_test::{Expect, expect};

use super::config::{ChannelOrder, FaceConfig, QualityConfig};
use super::frame::{Frame, resize_into_planar, warp_affine_into_planar};
use super::yunet::{InputGeometry, StrideOutputs, decode, iou, nms, to_frame};
use super::{Face, Point, align, quality};

fn face(x: f32, y: f32, w: f32, h: f32, score: f32) -> Face {
    // Landmarks of a level, frontal face inside the box.
    let p = |fx: f32, fy: f32| Point {
        x: x + fx * w,
        y: y + fy * h,
    };
    Face {
        x,
        y,
        width: w,
        height: h,
        landmarks: [
            p(0.3, 0.4),
            p(0.7, 0.4),
            p(0.5, 0.55),
            p(0.35, 0.75),
            p(0.65, 0.75),
        ],
        score,
    }
}

#[test]
fn geometry_downscales_and_pads() {
    let render = |w, h| {
        let g = InputGeometry::new(w, h, 640, 32);
        format!(
            "{w}x{h} -> {}x{} in {}x{}",
            g.width, g.height, g.pad_w, g.pad_h
        )
    };
    let got = [
        render(1280, 720),
        render(910, 1137),
        render(300, 200),
        render(1, 1),
        render(8192, 3),
    ]
    .join("\n");
    expect![[r#"
        1280x720 -> 640x360 in 640x384
        910x1137 -> 512x640 in 512x640
        300x200 -> 300x200 in 320x224
        1x1 -> 1x1 in 32x32
        8192x3 -> 640x1 in 640x32"#]]
    .assert_eq(&got);
}

#[test]
fn decode_reads_cells_at_their_stride() {
    // A 32x32 input: stride 8 has 4x4 cells, 16 has 2x2, 32 has 1x1. One confident cell at stride 8
    // row 1 col 2, box centred in the cell, 2 cells (e^ln2) wide.
    let g = InputGeometry::new(32, 32, 640, 32);
    let mut cls8 = vec![0.0; 16];
    let mut obj8 = vec![0.0; 16];
    let mut bbox8 = vec![0.0; 64];
    let kps8 = vec![0.5; 160];
    let idx = 4 + 2;
    cls8[idx] = 0.81;
    obj8[idx] = 1.0;
    bbox8[idx * 4..idx * 4 + 4].copy_from_slice(&[0.5, 0.5, 2f32.ln(), 2f32.ln()]);
    let z = |n| vec![0.0f32; n];
    let (c16, o16, b16, k16, c32, o32, b32, k32) =
        (z(4), z(4), z(16), z(40), z(1), z(1), z(4), z(10));
    let outs = [
        StrideOutputs {
            stride: 8,
            cls: &cls8,
            obj: &obj8,
            bbox: &bbox8,
            kps: &kps8,
        },
        StrideOutputs {
            stride: 16,
            cls: &c16,
            obj: &o16,
            bbox: &b16,
            kps: &k16,
        },
        StrideOutputs {
            stride: 32,
            cls: &c32,
            obj: &o32,
            bbox: &b32,
            kps: &k32,
        },
    ];
    let faces = decode(&g, &outs, 0.5).expect("decodes");
    assert_eq!(faces.len(), 1);
    let f = faces[0];
    assert!(
        (f.score - 0.9).abs() < 1e-6,
        "score is sqrt(cls*obj): {}",
        f.score
    );
    assert_eq!((f.x, f.y, f.width, f.height), (12.0, 4.0, 16.0, 16.0));
    assert_eq!(f.landmarks[0], Point { x: 20.0, y: 12.0 });
}

#[test]
fn decode_rejects_outputs_that_do_not_fit_the_geometry() {
    let g = InputGeometry::new(64, 64, 640, 32);
    let v = vec![0.0f32; 3];
    let outs = [StrideOutputs {
        stride: 8,
        cls: &v,
        obj: &v,
        bbox: &v,
        kps: &v,
    }];
    let err = decode(&g, &outs, 0.5).expect_err("must not index out of bounds");
    assert_eq!(
        err.to_string(),
        "model output: stride 8: expected 64 cells, got cls 3 obj 3 bbox 3/4 kps 3/10"
    );
}

#[test]
fn decode_drops_nan_and_clamps_scores() {
    let g = InputGeometry::new(32, 32, 640, 32);
    let cls = [f32::NAN];
    let obj = [7.0];
    let bbox = [0.0; 4];
    let kps = [0.0; 10];
    let outs = [StrideOutputs {
        stride: 32,
        cls: &cls,
        obj: &obj,
        bbox: &bbox,
        kps: &kps,
    }];
    assert!(decode(&g, &outs, 0.0).expect("decodes").is_empty());
}

#[test]
fn nms_keeps_the_best_of_overlapping_faces() {
    let faces = vec![
        face(0.0, 0.0, 10.0, 10.0, 0.7),
        face(1.0, 1.0, 10.0, 10.0, 0.9),
        face(50.0, 50.0, 10.0, 10.0, 0.8),
        face(51.0, 50.0, 10.0, 10.0, 0.6),
    ];
    let kept = nms(faces, 0.3, 10);
    let scores: Vec<f32> = kept.iter().map(|f| f.score).collect();
    assert_eq!(scores, vec![0.9, 0.8]);
    assert_eq!(nms(kept.clone(), 0.3, 1).len(), 1);
    assert!((iou(&kept[0], &kept[0]) - 1.0).abs() < 1e-6);
}

#[test]
fn mapping_back_scales_each_axis() {
    let g = InputGeometry::new(1280, 720, 640, 32);
    let f = to_frame(&face(100.0, 50.0, 20.0, 30.0, 0.9), &g, 1280, 720);
    assert_eq!((f.x, f.y, f.width, f.height), (200.0, 100.0, 40.0, 60.0));
}

#[test]
fn similarity_recovers_a_known_transform() {
    let dst = FaceConfig::default().recogniser.template;
    // Source = template rotated 30°, scaled 2.5, shifted.
    let (c, s, k) = (30f32.to_radians().cos(), 30f32.to_radians().sin(), 2.5);
    let src = dst.map(|d| Point {
        x: k * (c * d[0] - s * d[1]) + 300.0,
        y: k * (s * d[0] + c * d[1]) + 120.0,
    });
    let m = align::similarity(&src, &dst).expect("defined");
    for (p, d) in src.iter().zip(dst) {
        let q = align::apply(&m, *p);
        assert!(
            (q.x - d[0]).abs() < 1e-3 && (q.y - d[1]).abs() < 1e-3,
            "{q:?} vs {d:?}"
        );
    }
    let inv = align::invert(&m).expect("invertible");
    let back = align::apply(
        &inv,
        Point {
            x: dst[2][0],
            y: dst[2][1],
        },
    );
    assert!((back.x - src[2].x).abs() < 1e-2 && (back.y - src[2].y).abs() < 1e-2);
    let same = [Point { x: 1.0, y: 1.0 }; 5];
    assert!(
        align::similarity(&same, &dst).is_none(),
        "coincident landmarks have no transform"
    );
}

fn check_quality(cases: &[(&str, Face, u32, u32)], expect: Expect) {
    let config = QualityConfig::default();
    let mut out = String::new();
    for (name, f, w, h) in cases {
        let m = quality::measure(f, *w, *h, config.edge_margin_px);
        let verdict = match quality::check(&m, &config) {
            Ok(()) => "accepted".to_string(),
            Err(issue) => format!("{}: {issue}", issue.label()),
        };
        out.push_str(&format!("{name}: {verdict}\n"));
    }
    expect.assert_eq(&out);
}

#[test]
fn quality_gate_says_why() {
    let good = face(100.0, 100.0, 200.0, 250.0, 0.93);
    let rotate = |f: Face, deg: f32| {
        let (c, s) = (deg.to_radians().cos(), deg.to_radians().sin());
        let (cx, cy) = (200.0, 225.0);
        let mut r = f;
        r.landmarks = f.landmarks.map(|p| Point {
            x: cx + c * (p.x - cx) - s * (p.y - cy),
            y: cy + s * (p.x - cx) + c * (p.y - cy),
        });
        r
    };
    let mut turned = good;
    turned.landmarks[2].x += 40.0;
    let mut tipped = good;
    tipped.landmarks[2].y += 45.0;
    let mut mirrored = good;
    mirrored.landmarks.swap(0, 1);
    check_quality(
        &[
            ("frontal", good, 640, 480),
            ("dim", face(100.0, 100.0, 200.0, 250.0, 0.62), 640, 480),
            (
                "at the edge",
                face(0.5, 100.0, 200.0, 250.0, 0.93),
                640,
                480,
            ),
            ("far away", face(100.0, 100.0, 50.0, 60.0, 0.93), 640, 480),
            ("tilted 10°", rotate(good, 10.0), 640, 480),
            ("tilted 20°", rotate(good, 20.0), 640, 480),
            ("upside down", rotate(good, 180.0), 640, 480),
            ("turned", turned, 640, 480),
            ("tipped", tipped, 640, 480),
            ("eyes swapped", mirrored, 640, 480),
        ],
        expect![[r#"
            frontal: accepted
            dim: low_confidence: face not clearly visible (confidence 0.62 < 0.80); remove sunglasses, mask or hat
            at the edge: cut_off: face partly outside the camera's view; step into the frame
            far away: too_small: face too small (20 px between the eyes < 40); step closer
            tilted 10°: accepted
            tilted 20°: tilted: head tilted 20° (max 15°); hold your head level
            upside down: tilted: head tilted 180° (max 15°); hold your head level
            turned: turned_away: head turned (yaw 0.50, max 0.35); look straight at the camera
            tipped: tipped: head tipped up or down (pitch 0.94, expected 0.25–0.75); look straight at the camera
            eyes swapped: tilted: head tilted 180° (max 15°); hold your head level
        "#]],
    );
}

#[test]
fn resize_matches_hand_computed_bilinear() {
    // 2x1 frame (red | blue) upscaled to 4x1: OpenCV's sampling gives 0, 0.25, 0.75, 1 of the way.
    let frame = Frame::from_rgb(2, 1, vec![255, 0, 0, 0, 0, 255]).expect("valid");
    let mut out = vec![0.0; 3 * 4 * 32];
    resize_into_planar(frame.as_ref(), 4, 1, 4, 32, ChannelOrder::Bgr, &mut out);
    let blue: Vec<f32> = out[0..4].to_vec();
    let red: Vec<f32> = out[2 * 128..2 * 128 + 4].to_vec();
    assert_eq!(blue, vec![0.0, 63.75, 191.25, 255.0]);
    assert_eq!(red, vec![255.0, 191.25, 63.75, 0.0]);
    assert!(out[4..128].iter().all(|v| *v == 0.0), "padding stays zero");
}

#[test]
fn warp_identity_copies_and_normalises() {
    let data: Vec<u8> = (0..4 * 4 * 3).map(|i| i as u8).collect();
    let frame = Frame::from_rgb(4, 4, data).expect("valid");
    let identity = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    let mut out = vec![0.0; 3 * 16];
    warp_affine_into_planar(
        frame.as_ref(),
        &identity,
        4,
        ChannelOrder::Rgb,
        1.0,
        2.0,
        &mut out,
    );
    assert_eq!(out[0], (0.0 - 1.0) / 2.0);
    assert_eq!(out[5], (15.0 - 1.0) / 2.0, "pixel (1,1) red = byte 15");
    assert_eq!(out[16 + 5], (16.0 - 1.0) / 2.0, "green plane");
}

#[test]
fn bad_frames_are_errors_not_panics() {
    assert!(Frame::from_rgb(0, 10, vec![]).is_err());
    assert!(Frame::from_rgb(10, 10, vec![0; 299]).is_err());
    assert!(
        super::FrameRef::new(10, 10, 20, &[0; 1000]).is_err(),
        "stride shorter than a row"
    );
    for (bytes, why) in [(&b""[..], "empty file"), (&b"hello"[..], "unknown format")] {
        let err = Frame::decode(bytes, "x").expect_err("not an image");
        assert!(err.to_string().contains(why), "{err}");
    }
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend_from_slice(&[0x13; 64]);
    assert!(Frame::decode(&jpeg, "broken.jpg").is_err());
    // What the image_frame fuzz target found: a chroma component sampled more densely than luma
    // panicked zune-jpeg's AVX2 IDCT. Now a clear error before the decoder sees it.
    for name in [
        "zune-jpeg-avx2-idct-chroma-denser-than-luma-1.jpg",
        "zune-jpeg-avx2-idct-chroma-denser-than-luma-2.jpg",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/regressions/image_frame")
            .join(name);
        let bytes = std::fs::read(&path).expect("regression input");
        let err = Frame::decode(&bytes, name).expect_err("refused");
        assert!(
            err.to_string().contains(
                "unsupported JPEG sampling factors 2x3 against the first component's 1x1"
            ),
            "{err}"
        );
    }
    // The sampling every camera and photo uses still decodes (4:2:0 here, 4:4:4 elsewhere).
    let mut photo = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut photo)
        .encode(
            &[128u8; 16 * 16 * 3],
            16,
            16,
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode");
    assert!(Frame::decode(&photo, "ok.jpg").is_ok());
}

#[test]
fn thumbnails_keep_the_shape_and_the_picture() {
    // Left half red, right half blue, 1280x720 with row padding.
    let (w, h, stride) = (1280u32, 720u32, 1280 * 3 + 64);
    let mut data = vec![0u8; stride * h as usize];
    for y in 0..h as usize {
        for x in 0..w as usize {
            let px = &mut data[y * stride + x * 3..y * stride + x * 3 + 3];
            px.copy_from_slice(if x < 640 {
                &[220, 20, 20]
            } else {
                &[20, 20, 220]
            });
        }
    }
    let frame = super::FrameRef::new(w, h, stride, &data).expect("frame");
    let jpeg = frame.thumbnail_jpeg(320, 70).expect("encoded");
    let back = Frame::decode(&jpeg, "still").expect("a JPEG");
    assert_eq!(
        (back.width(), back.height()),
        (320, 180),
        "longest side 320, aspect kept"
    );
    let back = back.as_ref();
    let pixel = |x: usize, y: usize| back.row(y)[x * 3..x * 3 + 3].to_vec();
    let (left, right) = (pixel(40, 90), pixel(280, 90));
    assert!(left[0] > 150 && left[2] < 100, "left stays red: {left:?}");
    assert!(
        right[2] > 150 && right[0] < 100,
        "right stays blue: {right:?}"
    );
    // A frame already small is not enlarged.
    let small = Frame::from_rgb(8, 4, vec![128; 8 * 4 * 3]).expect("frame");
    let jpeg = small.as_ref().thumbnail_jpeg(320, 70).expect("encoded");
    let back = Frame::decode(&jpeg, "still").expect("a JPEG");
    assert_eq!((back.width(), back.height()), (8, 4));
}

#[test]
fn config_rejects_nonsense_and_unknown_keys() {
    let parse = |s: &str| {
        toml::from_str::<FaceConfig>(s)
            .map_err(|e| e.message().to_string())
            .and_then(|c| c.validate().map_err(|e| e.to_string()))
    };
    assert!(parse("").is_ok(), "empty file = defaults");
    assert!(
        parse("[detector]\nmax_side = 10")
            .expect_err("too small")
            .contains("max_side")
    );
    assert!(
        parse("[detector]\nstrides = [8, 12]")
            .expect_err("12 does not divide 32")
            .contains("strides")
    );
    assert!(
        parse("[recogniser]\nstd = 0.0")
            .expect_err("zero std")
            .contains("std")
    );
    assert!(
        parse("[quality]\nmin_eye_px = 3")
            .expect_err("unknown key")
            .contains("unknown field")
    );
}
