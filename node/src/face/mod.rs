//! The face pipeline: frame → faces (YuNet) → quality gate → aligned crop → embedding (SFace).
//!
//! The pure parts (`yunet` decoding, `align`, `quality`, `frame` pixel ops) know nothing of ONNX
//! Runtime; `onnx` is the edge that runs the models. The two model steps sit behind the small
//! [`FaceDetector`] and [`FaceEmbedder`] traits so tests and other execution providers can swap them.

pub mod align;
pub mod config;
pub mod frame;
pub mod model_file;
pub mod onnx;
pub mod onnx_search;
pub mod pad;
pub mod pad_eval;
pub mod planarity;
pub mod quality;
pub mod yunet;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde::Serialize;

pub use self::config::FaceConfig;
pub use self::frame::{Frame, FrameRef};
pub use self::onnx::{Device, OnnxDetector, OnnxEmbedder, OrtRuntime};
pub use self::onnx_search::OrtIndex;
pub use self::quality::{FaceMeasures, QualityIssue};
use crate::error::{Error, Result};
use clearway_gallery::ModelId;

/// A point in frame pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Point {
    /// Horizontal, pixels from the left.
    pub x: f32,
    /// Vertical, pixels from the top.
    pub y: f32,
}

/// A detected face: box, five landmarks and confidence, in frame pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Face {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Box width.
    pub width: f32,
    /// Box height.
    pub height: f32,
    /// Right eye, left eye, nose tip, right and left mouth corners (the subject's right appears on
    /// the image's left).
    pub landmarks: [Point; 5],
    /// Detector confidence in 0..=1.
    pub score: f32,
}

impl Face {
    fn is_finite(&self) -> bool {
        [self.x, self.y, self.width, self.height, self.score]
            .iter()
            .all(|v| v.is_finite())
            && self
                .landmarks
                .iter()
                .all(|p| p.x.is_finite() && p.y.is_finite())
    }
}

/// An L2-normalised face embedding and the model that made it.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    values: Vec<f32>,
    model: ModelId,
}

impl Embedding {
    /// Normalises `values` to unit length; errors on a zero or non-finite vector.
    pub fn normalised(mut values: Vec<f32>, model: ModelId) -> Result<Embedding> {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            return Err(Error::ModelOutput("embedding is zero or not finite".into()));
        }
        values.iter_mut().for_each(|v| *v /= norm);
        Ok(Embedding { values, model })
    }

    /// The unit vector.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The model that made it.
    pub fn model(&self) -> &ModelId {
        &self.model
    }

    /// Cosine similarity (both are unit vectors). Embeddings of different models never compare.
    pub fn cosine(&self, other: &Embedding) -> Option<f32> {
        (self.model == other.model && self.values.len() == other.values.len()).then(|| {
            self.values
                .iter()
                .zip(&other.values)
                .map(|(a, b)| a * b)
                .sum()
        })
    }
}

/// Finds faces in a frame.
pub trait FaceDetector {
    /// All faces, best first, in frame coordinates.
    fn detect(&mut self, frame: FrameRef<'_>) -> Result<Vec<Face>>;
}

/// Turns a detected face into an embedding.
pub trait FaceEmbedder {
    /// The model id recorded in templates made from these embeddings.
    fn model(&self) -> &ModelId;
    /// Aligns the face from `frame` and embeds it.
    fn embed(&mut self, frame: FrameRef<'_>, face: &Face) -> Result<Embedding>;
}

/// One face as the pipeline saw it: the detection, its measures and the gate's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observed {
    /// The detection.
    pub face: Face,
    /// What the quality gate measured.
    pub measures: FaceMeasures,
    /// `None` when the face passed, else why not.
    pub rejected: Option<QualityIssue>,
}

/// The assembled pipeline.
pub struct FacePipeline<D = OnnxDetector, E = OnnxEmbedder> {
    detector: D,
    embedder: E,
    config: FaceConfig,
}

impl FacePipeline {
    /// Loads ONNX Runtime from `ort_library` and both models (hash-checked) per `config`, with
    /// relative model paths resolved against `assets`.
    pub fn load(ort_library: &Path, assets: &Path, mut config: FaceConfig) -> Result<FacePipeline> {
        config.validate()?;
        config.resolve_paths(assets);
        let runtime = OrtRuntime::load(ort_library, config.runtime.clone())?;
        let detector = OnnxDetector::new(&runtime, &config.detector)?;
        let embedder = OnnxEmbedder::new(&runtime, &config.recogniser)?;
        Ok(FacePipeline {
            detector,
            embedder,
            config,
        })
    }

    /// Where the recogniser runs (CUDA or CPU): a lane on a GPU searches there too.
    pub fn device(&self) -> Device {
        self.embedder.device()
    }
}

impl<D: FaceDetector, E: FaceEmbedder> FacePipeline<D, E> {
    /// Assembles a pipeline from parts (tests, other runtimes).
    pub fn from_parts(detector: D, embedder: E, config: FaceConfig) -> FacePipeline<D, E> {
        FacePipeline {
            detector,
            embedder,
            config,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &FaceConfig {
        &self.config
    }

    /// The recogniser's model id.
    pub fn model(&self) -> &ModelId {
        self.embedder.model()
    }

    /// Detects every face and runs the quality gate on each.
    pub fn observe(&mut self, frame: FrameRef<'_>) -> Result<Vec<Observed>> {
        let faces = self.detector.detect(frame)?;
        let q = &self.config.quality;
        Ok(faces
            .into_iter()
            .map(|face| {
                let measures =
                    quality::measure(&face, frame.width(), frame.height(), q.edge_margin_px);
                let rejected = quality::check(&measures, q).err();
                Observed {
                    face,
                    measures,
                    rejected,
                }
            })
            .collect())
    }

    /// The capture-zone rule: exactly one face, and it passes the gate; returns it with its
    /// embedding. Errors say why not (no face, several faces, which quality check failed).
    pub fn single_face(&mut self, frame: FrameRef<'_>) -> Result<(Observed, Embedding)> {
        let observed = self.observe(frame)?;
        let face = match observed.as_slice() {
            [] => return Err(Error::NoFace),
            [one] => one.clone(),
            many => return Err(Error::MultipleFaces(many.len())),
        };
        if let Some(issue) = face.rejected {
            return Err(Error::Quality(issue));
        }
        let embedding = self.embedder.embed(frame, &face.face)?;
        Ok((face, embedding))
    }

    /// Embeds a face the caller already detected (no quality gate).
    pub fn embed(&mut self, frame: FrameRef<'_>, face: &Face) -> Result<Embedding> {
        self.embedder.embed(frame, face)
    }

    /// Detects without the quality gate (used by fidelity tests and benchmarks).
    pub fn detect(&mut self, frame: FrameRef<'_>) -> Result<Vec<Face>> {
        self.detector.detect(frame)
    }
}
