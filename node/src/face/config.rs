//! Face pipeline configuration: which models, how to feed them, what the quality gate accepts.
//!
//! Every field has a documented default, so an empty TOML file is a valid configuration. Relative
//! model paths are resolved against the assets directory (`assets/` after `just setup`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The whole face pipeline: detector, recogniser, quality gate and runtime.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FaceConfig {
    /// The face detector (YuNet by default).
    pub detector: DetectorConfig,
    /// The face recogniser (SFace by default).
    pub recogniser: RecogniserConfig,
    /// What a face must look like to be matched or enrolled.
    pub quality: QualityConfig,
    /// ONNX Runtime: threads and execution provider.
    pub runtime: RuntimeConfig,
    /// When two faces count as the same person.
    pub matching: MatchConfig,
    /// Presentation-attack detection: the model, how to feed it, and the planarity signal. The
    /// lane decides whether PAD enforces, observes or is off (`[lane.procedure.pad]`).
    pub pad: super::pad::PadConfig,
}

/// The match decision.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    /// Cosine similarity at or above which a probe matches a template. Default: 0.45 — stricter
    /// than SFace's published 0.363 (a balanced LFW operating point), because a false accept lets
    /// the wrong person through a border; measured margins are in BENCHMARKS.md.
    pub threshold: f32,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig { threshold: 0.45 }
    }
}

/// A YuNet-family detector: anchor-free, three strides, cls/obj/bbox/kps outputs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Model file. Default: `models/face_detection_yunet_2023mar.onnx` (under the assets directory).
    pub model: PathBuf,
    /// SHA-256 the model file must have; a mismatch refuses to load. Default: the pinned YuNet 2023mar.
    pub sha256: String,
    /// Frames are downscaled (never upscaled) so their longer side is at most this. Default: 640.
    pub max_side: u32,
    /// Rewrite a fixed spatial input size declared by the model file (YuNet 2023mar declares
    /// 640×640) into free dimensions, so each frame runs at its own size padded to `divisor`, as
    /// OpenCV's DNN does. Off: frames are padded to the declared size. Default: true.
    pub dynamic_input: bool,
    /// Input padded up to a multiple of this (the largest stride). Default: 32.
    pub divisor: u32,
    /// Feature-map strides, in the order of the model's outputs. Default: [8, 16, 32].
    pub strides: Vec<u32>,
    /// Detections scoring below this (sqrt(cls × obj)) are dropped. Default: 0.6.
    pub score_threshold: f32,
    /// Non-maximum suppression IoU threshold. Default: 0.3.
    pub nms_threshold: f32,
    /// At most this many faces are kept after NMS. Default: 50.
    pub top_k: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            model: PathBuf::from("models/face_detection_yunet_2023mar.onnx"),
            sha256: "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4".into(),
            max_side: 640,
            dynamic_input: true,
            divisor: 32,
            strides: vec![8, 16, 32],
            score_threshold: 0.6,
            nms_threshold: 0.3,
            top_k: 50,
        }
    }
}

/// An ArcFace-style recogniser fed a face aligned to the 5-point template.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecogniserConfig {
    /// Model file. Default: `models/face_recognition_sface_2021dec_clearway.onnx` (under the assets
    /// directory): SFace 2021dec as setup derives it from the OpenCV Zoo file
    /// (`deploy/models/derive_sface.py`: same network and weights, faster on ONNX Runtime's CPU).
    pub model: PathBuf,
    /// SHA-256 the model file must have. Default: the pinned derived SFace 2021dec.
    pub sha256: String,
    /// Model id recorded in every template made with it. Default: "sface".
    pub model_name: String,
    /// Model version recorded in every template. Default: "2021dec".
    pub model_version: String,
    /// Side of the square aligned face fed to the model. Default: 112.
    pub input_size: u32,
    /// The 5 landmark positions (eyes, nose, mouth corners) in the aligned face, for `input_size`.
    /// Default: the ArcFace 112×112 template.
    pub template: [[f32; 2]; 5],
    /// Channel order fed to the model: "rgb" or "bgr". Default: "rgb".
    pub channel_order: ChannelOrder,
    /// Subtracted from each 0–255 channel value. Default: 0 (SFace normalises inside the graph).
    pub mean: f32,
    /// Each channel value is divided by this after `mean`. Default: 1.
    pub std: f32,
    /// Length of the embedding the model outputs. Default: 128.
    pub embedding_dim: usize,
}

impl Default for RecogniserConfig {
    fn default() -> Self {
        RecogniserConfig {
            model: PathBuf::from("models/face_recognition_sface_2021dec_clearway.onnx"),
            sha256: "0f8aebc9fb4192391864dbd0d255fbc446ffcaf0e0fbbccb0603a6c3abe10e60".into(),
            model_name: "sface".into(),
            model_version: "2021dec".into(),
            input_size: 112,
            template: [
                [38.2946, 51.6963],
                [73.5318, 51.5014],
                [56.0252, 71.7366],
                [41.5493, 92.3655],
                [70.7299, 92.2041],
            ],
            channel_order: ChannelOrder::Rgb,
            mean: 0.0,
            std: 1.0,
            embedding_dim: 128,
        }
    }
}

/// Order of the colour planes a model expects.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (OpenCV's native order; YuNet was trained on it).
    Bgr,
}

/// The quality gate. Seed 000 asks travellers to remove sunglasses, mask and hat and face the
/// camera; this gate enforces what can be measured from the detection.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Minimum detector confidence for a face to be used. Default: 0.8.
    pub min_confidence: f32,
    /// Minimum distance between the eye centres, in pixels of the original frame. Default: 40.
    pub min_eye_distance_px: f32,
    /// Largest in-plane head tilt (eye line against horizontal), degrees. YuNet's landmarks
    /// under-report roll (a face turned 40° reads about 17°), hence a tight limit. Default: 15.
    pub max_roll_deg: f32,
    /// Largest left/right turn: nose offset from the eye midpoint as a fraction of the eye
    /// distance. Default: 0.35.
    pub max_yaw_ratio: f32,
    /// Accepted range of (nose − eyes) / (mouth − eyes) vertically; outside it the head is tipped
    /// up or down. Default: [0.25, 0.75].
    pub pitch_ratio_range: [f32; 2],
    /// A face whose box comes closer than this to the frame edge is cut off. Pixels. Default: 2.
    pub edge_margin_px: f32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            min_confidence: 0.8,
            min_eye_distance_px: 40.0,
            max_roll_deg: 15.0,
            max_yaw_ratio: 0.35,
            pitch_ratio_range: [0.25, 0.75],
            edge_margin_px: 2.0,
        }
    }
}

/// Where inference runs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Execution provider: "cpu", "cuda" (fail if CUDA cannot be used) or "auto" (CUDA when it
    /// registers, CPU otherwise). Default: "auto".
    pub provider: Provider,
    /// Threads ONNX Runtime may use inside one inference. Default: 1 (a lane runs one camera).
    pub intra_threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            provider: Provider::Auto,
            intra_threads: 1,
        }
    }
}

/// Execution provider choice.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// The CUDA provider (needs the onnxruntime-gpu library and a GPU); an error if unavailable.
    Cuda,
    /// CUDA when it registers, CPU otherwise; the choice is logged.
    Auto,
}

impl FaceConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<FaceConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config: FaceConfig = toml::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message())))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and shapes that would otherwise fail deep inside inference.
    pub fn validate(&self) -> Result<()> {
        let d = &self.detector;
        let bad = |m: String| Err(Error::Config(m));
        if d.max_side < 32 || d.max_side > 4096 {
            return bad(format!(
                "detector.max_side must be in 32..=4096, got {}",
                d.max_side
            ));
        }
        if d.divisor == 0
            || d.strides.is_empty()
            || d.strides.iter().any(|s| *s == 0 || d.divisor % s != 0)
        {
            return bad("detector.strides must be non-zero divisors of detector.divisor".into());
        }
        if !(0.0..=1.0).contains(&d.score_threshold) || !(0.0..=1.0).contains(&d.nms_threshold) {
            return bad("detector thresholds must be within 0..=1".into());
        }
        if d.top_k == 0 {
            return bad("detector.top_k must be at least 1".into());
        }
        let r = &self.recogniser;
        if r.input_size < 16 || r.input_size > 1024 {
            return bad(format!(
                "recogniser.input_size must be in 16..=1024, got {}",
                r.input_size
            ));
        }
        if r.embedding_dim == 0 || r.embedding_dim > 4096 {
            return bad(format!(
                "recogniser.embedding_dim must be in 1..=4096, got {}",
                r.embedding_dim
            ));
        }
        if !r.std.is_finite() || r.std == 0.0 || !r.mean.is_finite() {
            return bad(
                "recogniser.std must be finite and non-zero, recogniser.mean finite".into(),
            );
        }
        if r.model_name.is_empty() || r.model_version.is_empty() {
            return bad("recogniser.model_name and model_version must not be empty".into());
        }
        let q = &self.quality;
        if q.pitch_ratio_range[0] >= q.pitch_ratio_range[1] {
            return bad("quality.pitch_ratio_range must be [low, high] with low < high".into());
        }
        if !(-1.0..=1.0).contains(&self.matching.threshold) {
            return bad(format!(
                "matching.threshold must be within -1..=1, got {}",
                self.matching.threshold
            ));
        }
        self.pad.validate()?;
        if self.runtime.intra_threads == 0 {
            return bad("runtime.intra_threads must be at least 1".into());
        }
        Ok(())
    }

    /// Resolves relative model paths against `assets`.
    pub fn resolve_paths(&mut self, assets: &Path) {
        for p in [
            &mut self.detector.model,
            &mut self.recogniser.model,
            &mut self.pad.model,
        ] {
            if p.is_relative() {
                *p = assets.join(&*p);
            }
        }
    }
}
