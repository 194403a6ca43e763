//! The inference edge: ONNX Runtime sessions for the detector and the recogniser. This file and
//! `onnx_search.rs` (1:N as an ONNX graph, for the GPU) are the only ones that talk to `ort`. The
//! runtime library is loaded from a path (the CPU build from the `onnxruntime` wheel, or the CUDA
//! build from `onnxruntime-gpu`), never downloaded.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::TensorRef;
use tracing::{info, warn};

use super::config::{ChannelOrder, DetectorConfig, Provider, RecogniserConfig, RuntimeConfig};
use super::frame::{FrameRef, resize_into_planar, warp_affine_into_planar};
use super::model_file;
use super::yunet::{self, InputGeometry, StrideOutputs};
use super::{Embedding, Face, FaceDetector, FaceEmbedder, align};
use crate::error::{Error, Result};
use clearway_gallery::ModelId;

/// A loaded ONNX Runtime: the shared library and one environment for every session.
#[derive(Clone)]
pub struct OrtRuntime {
    env: Environment,
    config: RuntimeConfig,
}

impl fmt::Debug for OrtRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrtRuntime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The execution provider a session ended up on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// The CUDA provider.
    Cuda,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

impl OrtRuntime {
    /// Loads the ONNX Runtime shared library at `library` (e.g. `libonnxruntime.so.1.31.1`).
    pub fn load(library: &Path, config: RuntimeConfig) -> Result<OrtRuntime> {
        if !library.is_file() {
            return Err(Error::Runtime(format!(
                "library {} not found; run `just setup` or set ORT_DYLIB_PATH",
                library.display()
            )));
        }
        // ONNX Runtime allows one environment per process, ever; every runtime shares it. The
        // first library path loaded wins for the life of the process.
        static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);
        let mut slot = ENVIRONMENT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let env = match slot.as_ref() {
            Some(env) => env.clone(),
            None => {
                let env = ort::init_from(library)
                    .map_err(|e| Error::Runtime(format!("cannot load {}: {e}", library.display())))?
                    .with_name("clearway")
                    .build()?;
                slot.insert(env).clone()
            }
        };
        Ok(OrtRuntime { env, config })
    }

    /// Opens a model from verified bytes on the configured execution provider.
    pub(crate) fn session(&self, model: &Path, bytes: &[u8]) -> Result<(Session, Device)> {
        let what = model.display().to_string();
        self.on_provider(&what, GraphOptimizationLevel::Level3, |mut builder| {
            Ok(builder.commit_from_memory(bytes)?)
        })
    }

    /// Makes a session with `commit` on the configured execution provider: CUDA, CPU, or (auto)
    /// CUDA when it registers and the session builds on it, else CPU. `what` names the model in
    /// the log.
    pub(crate) fn on_provider(
        &self,
        what: &str,
        level: GraphOptimizationLevel,
        commit: impl Fn(SessionBuilder) -> Result<Session>,
    ) -> Result<(Session, Device)> {
        match self.config.provider {
            Provider::Cpu => self.on_device(Device::Cpu, level, commit),
            Provider::Cuda => self.on_device(Device::Cuda, level, commit),
            Provider::Auto => {
                if ep::CUDA::is_available().unwrap_or(false) {
                    match self.on_device(Device::Cuda, level, &commit) {
                        Ok(made) => return Ok(made),
                        Err(e) => {
                            warn!(model = what, error = %e, "CUDA unusable, falling back to CPU.")
                        }
                    }
                }
                self.on_device(Device::Cpu, level, commit)
            }
        }
    }

    /// Makes a session with `commit` on `device`; an error if that provider cannot be used.
    pub(crate) fn on_device(
        &self,
        device: Device,
        level: GraphOptimizationLevel,
        commit: impl Fn(SessionBuilder) -> Result<Session>,
    ) -> Result<(Session, Device)> {
        let mut builder = Session::builder(&self.env)?
            .with_optimization_level(level)
            .map_err(ort::Error::from)?
            .with_intra_threads(self.config.intra_threads)
            .map_err(ort::Error::from)?;
        if device == Device::Cuda {
            builder = builder
                .with_execution_providers([ep::CUDA::default().build().error_on_failure()])
                .map_err(ort::Error::from)?;
        }
        Ok((commit(builder)?, device))
    }
}

impl OrtRuntime {
    /// Reads `model`, checks its pinned SHA-256 and opens it; a model with no outputs is an
    /// error. For models used as they are (the recogniser, the PAD model).
    pub(crate) fn open_verified(&self, model: &Path, sha256: &str) -> Result<(Session, Device)> {
        let bytes = read_verified(model, sha256)?;
        let (session, device) = self.session(model, &bytes)?;
        if session.outputs().is_empty() {
            return Err(Error::ModelOutput(format!(
                "{} has no outputs",
                model.display()
            )));
        }
        Ok((session, device))
    }
}

/// Reads a model file and checks its SHA-256 against the pinned hex digest.
pub fn read_verified(path: &Path, expected: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let actual = model_file::sha256_hex(&bytes);
    if !actual.eq_ignore_ascii_case(expected.trim()) {
        return Err(Error::ModelHash {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

/// YuNet on ONNX Runtime.
pub struct OnnxDetector {
    session: Session,
    config: DetectorConfig,
    device: Device,
    /// The model's fixed input size (width, height), if it has one.
    fixed: Option<(usize, usize)>,
    input: Vec<f32>,
}

impl OnnxDetector {
    /// Loads and verifies the detector model.
    pub fn new(runtime: &OrtRuntime, config: &DetectorConfig) -> Result<OnnxDetector> {
        let mut bytes = read_verified(&config.model, &config.sha256)?;
        if config.dynamic_input {
            match model_file::free_spatial_dims(&bytes) {
                Ok(patched) => bytes = patched,
                Err(e) => {
                    warn!(model = %config.model.display(), reason = e.0, "Cannot free the input size; using it as declared.")
                }
            }
        }
        let (session, device) = runtime.session(&config.model, &bytes)?;
        let names: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        for kind in ["cls", "obj", "bbox", "kps"] {
            for s in &config.strides {
                if !names.iter().any(|n| *n == format!("{kind}_{s}")) {
                    return Err(Error::ModelOutput(format!(
                        "{} has no output {kind}_{s}; not a YuNet-family detector (outputs: {})",
                        config.model.display(),
                        names.join(", ")
                    )));
                }
            }
        }
        // A model whose input size is still fixed (dynamic_input off, or not rewritable) is fed
        // frames padded up to that size: ONNX Runtime enforces declared shapes.
        let fixed = session
            .inputs()
            .first()
            .and_then(|i| i.dtype().tensor_shape())
            .filter(|s| s.len() == 4 && s[2] > 0 && s[3] > 0)
            .map(|s| (s[3] as usize, s[2] as usize));
        if let Some((w, h)) = fixed {
            if w % config.divisor as usize != 0 || h % config.divisor as usize != 0 {
                return Err(Error::ModelOutput(format!(
                    "fixed input {w}x{h} is not a multiple of {}",
                    config.divisor
                )));
            }
        }
        info!(model = %config.model.display(), device = %device, fixed_input = ?fixed, "Face detector loaded.");
        Ok(OnnxDetector {
            session,
            config: config.clone(),
            device,
            fixed,
            input: Vec::new(),
        })
    }

    /// Where inference runs.
    pub fn device(&self) -> Device {
        self.device
    }
}

impl FaceDetector for OnnxDetector {
    fn detect(&mut self, frame: FrameRef<'_>) -> Result<Vec<Face>> {
        let c = &self.config;
        let g = match self.fixed {
            Some((w, h)) => InputGeometry::fixed(frame.width(), frame.height(), w, h),
            None => InputGeometry::new(frame.width(), frame.height(), c.max_side, c.divisor),
        };
        self.input.resize(3 * g.pad_w * g.pad_h, 0.0);
        // YuNet was trained on OpenCV's BGR frames, 0–255, no normalisation.
        resize_into_planar(
            frame,
            g.width,
            g.height,
            g.pad_w,
            g.pad_h,
            ChannelOrder::Bgr,
            &mut self.input,
        );
        let tensor = TensorRef::from_array_view(([1usize, 3, g.pad_h, g.pad_w], &self.input[..]))?;
        let outputs = self.session.run(ort::inputs![tensor])?;
        let mut per_stride = Vec::with_capacity(c.strides.len());
        let get = |name: String| -> Result<&[f32]> {
            let v = outputs
                .get(&name)
                .ok_or_else(|| Error::ModelOutput(format!("missing output {name}")))?;
            Ok(v.try_extract_tensor::<f32>()?.1)
        };
        for &s in &c.strides {
            per_stride.push(StrideOutputs {
                stride: s,
                cls: get(format!("cls_{s}"))?,
                obj: get(format!("obj_{s}"))?,
                bbox: get(format!("bbox_{s}"))?,
                kps: get(format!("kps_{s}"))?,
            });
        }
        let faces = yunet::decode(&g, &per_stride, c.score_threshold)?;
        let faces = yunet::nms(faces, c.nms_threshold, c.top_k);
        Ok(faces
            .iter()
            .map(|f| yunet::to_frame(f, &g, frame.width(), frame.height()))
            .collect())
    }
}

/// SFace (or another ArcFace-style model) on ONNX Runtime.
pub struct OnnxEmbedder {
    session: Session,
    config: RecogniserConfig,
    model: ModelId,
    device: Device,
    input: Vec<f32>,
}

impl OnnxEmbedder {
    /// Loads and verifies the recogniser model.
    pub fn new(runtime: &OrtRuntime, config: &RecogniserConfig) -> Result<OnnxEmbedder> {
        let (session, device) = runtime.open_verified(&config.model, &config.sha256)?;
        info!(model = %config.model.display(), device = %device, "Face recogniser loaded.");
        let model = ModelId::new(&config.model_name, &config.model_version);
        Ok(OnnxEmbedder {
            session,
            config: config.clone(),
            model,
            device,
            input: Vec::new(),
        })
    }

    /// Where inference runs.
    pub fn device(&self) -> Device {
        self.device
    }
}

impl FaceEmbedder for OnnxEmbedder {
    fn model(&self) -> &ModelId {
        &self.model
    }

    fn embed(&mut self, frame: FrameRef<'_>, face: &Face) -> Result<Embedding> {
        let c = &self.config;
        let size = c.input_size as usize;
        let m = align::similarity(&face.landmarks, &c.template)
            .and_then(|m| align::invert(&m))
            .ok_or_else(|| {
                Error::ModelOutput("degenerate landmarks; cannot align the face".into())
            })?;
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
        if raw.len() != c.embedding_dim {
            return Err(Error::ModelOutput(format!(
                "embedding has {} values, configuration says {}",
                raw.len(),
                c.embedding_dim
            )));
        }
        Embedding::normalised(raw.to_vec(), self.model.clone())
    }
}
