//! The vision stage: camera frames in, [`FaceScan`]s and [`Gate2Face`]s out.
//!
//! Runs on its own thread (ONNX Runtime sessions are blocking and CPU-bound). It looks at a
//! camera only while the procedure wants that camera's faces ([`Wants`]), always taking the
//! newest frame. Gate 1: detect, quality-gate, count faces in the capture zone, judge the single
//! face's liveness (PAD: the model and the landmark track's planarity), embed it, search the local
//! replica 1:N, and fetch the matched person's record. Gate 2: judge and embed the single face and
//! compare it 1:1 with the templates of the person identified at gate 1. The
//! latest good gate-1 face (judged bona fide, when PAD enforces) is kept, in memory only, for a
//! registration at the channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clearway_gallery::{PersonId, Template};
use tokio::sync::mpsc;
use tracing::warn;

use super::metrics::LaneMetrics;
use super::procedure::{FaceCheck, FaceScan, Gate2Face, Input, PadMode, PadVerdict};
use super::stills::{self, Stills};
use crate::cluster::GalleryHandle;
use crate::face::pad::LivenessModel;
use crate::face::planarity::{LandmarkTrack, Planarity, PlanarityConfig};
use crate::face::{Embedding, Face, FacePipeline, FrameRef};

/// A captured frame the vision stage can read.
pub trait VisionFrame {
    /// The pixels.
    fn frame_ref(&self) -> crate::Result<FrameRef<'_>>;
    /// When the frame arrived from the camera.
    fn arrived(&self) -> Instant;
}

/// A camera as the vision stage sees it: the newest frame, waiting at most `timeout`.
pub trait FrameSource: Send + 'static {
    /// The frame type.
    type Frame: VisionFrame;
    /// The newest frame not seen before, if one arrives within `timeout`.
    fn next_frame(&mut self, timeout: Duration) -> Option<Self::Frame>;
}

/// What the procedure wants from the cameras right now (set by the lane's event loop).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Wants {
    /// Identify faces at gate 1.
    pub gate1: bool,
    /// Keep the newest good gate-1 face (a registration is under way).
    pub capture: bool,
    /// Compare gate-2 faces: `Some(Some(id))` with this person, `Some(None)` just capture.
    pub gate2: Option<Option<PersonId>>,
}

/// The newest good gate-1 face, for registration. Biometric: memory only, never logged.
#[derive(Default)]
pub struct Capture(Mutex<Option<(Instant, Embedding)>>);

impl Capture {
    /// Takes (so it is used once) a face captured after `since`, waiting up to `timeout` for
    /// one. Only a face seen after the traveller asked to register is theirs: an older one may
    /// be the previous traveller's.
    pub async fn take_after(&self, since: Instant, timeout: Duration) -> Option<Embedding> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
                if slot.as_ref().is_some_and(|(at, _)| *at >= since) {
                    return slot.take().map(|(_, e)| e);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn put(&self, e: Embedding) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), e));
    }
}

/// One input from the vision stage with the arrival time of the frame it came from.
pub struct Seen {
    /// The input for the procedure.
    pub input: Input,
    /// When the frame arrived.
    pub arrived: Instant,
}

/// Presentation-attack detection in the vision stage: the model, the planarity signal and one
/// landmark track per camera.
pub struct PadStage {
    /// The PAD model.
    pub model: Box<dyn LivenessModel + Send>,
    /// The planarity signal's settings.
    pub planarity: PlanarityConfig,
    /// Enforce or observe (a metrics label here; the procedure decides).
    pub mode: PadMode,
    /// The single face's landmarks over its latest frames, gate 1 and gate 2.
    pub tracks: [LandmarkTrack; 2],
}

impl PadStage {
    /// A stage around `model`.
    pub fn new(
        model: Box<dyn LivenessModel + Send>,
        planarity: PlanarityConfig,
        mode: PadMode,
    ) -> PadStage {
        PadStage {
            model,
            planarity,
            mode,
            tracks: Default::default(),
        }
    }
}

/// Everything the vision thread needs.
pub struct Vision<S1, S2> {
    /// The face pipeline.
    pub pipeline: FacePipeline,
    /// Presentation-attack detection (`None`: PAD off).
    pub pad: Option<PadStage>,
    /// Gate-1 camera.
    pub gate1: S1,
    /// Gate-2 camera.
    pub gate2: S2,
    /// The local replica.
    pub gallery: GalleryHandle,
    /// 1:N and 1:1 threshold.
    pub threshold: f32,
    /// Faces whose eyes are closer than this (pixels) are outside the capture zone.
    pub zone_min_eye_px: f32,
    /// What is wanted now.
    pub wants: Arc<Mutex<Wants>>,
    /// The newest good gate-1 face.
    pub capture: Arc<Capture>,
    /// Where results go.
    pub out: mpsc::UnboundedSender<Seen>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Metrics.
    pub metrics: LaneMetrics,
    /// Stills for a supervisor watching from the console.
    pub stills: Arc<Stills>,
}

impl<S1: FrameSource, S2: FrameSource> Vision<S1, S2> {
    /// Runs until `stop` is set or the receiver is gone.
    pub fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) && !self.out.is_closed() {
            let wants = *self.wants.lock().unwrap_or_else(|e| e.into_inner());
            let mut idle = true;
            let analyse1 = wants.gate1 || wants.capture;
            let still1 = self.stills.wanted(0, Instant::now());
            if analyse1 || still1 {
                idle = false;
                if let Some(frame) = self.gate1.next_frame(Duration::from_millis(100)) {
                    if still1 {
                        self.still(0, &frame);
                    }
                    if analyse1 {
                        match self.gate1_frame(&frame, wants) {
                            Ok(Some(input)) => self.send(input, frame.arrived()),
                            Ok(None) => {}
                            Err(e) => {
                                self.metrics.vision_errors.inc();
                                warn!(error = %e, "Gate-1 frame could not be analysed.");
                            }
                        }
                    }
                }
            }
            let still2 = self.stills.wanted(1, Instant::now());
            if wants.gate2.is_some() || still2 {
                idle = false;
                if let Some(frame) = self.gate2.next_frame(Duration::from_millis(100)) {
                    if still2 {
                        self.still(1, &frame);
                    }
                    if let Some(person) = wants.gate2 {
                        match self.gate2_frame(&frame, person) {
                            Ok(input) => self.send(input, frame.arrived()),
                            Err(e) => {
                                self.metrics.vision_errors.inc();
                                warn!(error = %e, "Gate-2 frame could not be analysed.");
                            }
                        }
                    }
                }
            }
            if idle {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Encodes a still of `camera`'s frame for the supervisor watching (memory only).
    fn still(&self, camera: usize, frame: &impl VisionFrame) {
        match frame
            .frame_ref()
            .and_then(|f| f.thumbnail_jpeg(stills::MAX_SIDE, stills::QUALITY))
        {
            Ok(jpeg) => self.stills.put(camera, frame.arrived(), jpeg),
            Err(e) => warn!(camera, error = %e, "A camera still could not be encoded."),
        }
    }

    fn send(&self, input: Input, arrived: Instant) {
        let _ = self.out.send(Seen { input, arrived });
    }

    fn gate1_frame(&mut self, frame: &S1::Frame, wants: Wants) -> crate::Result<Option<Input>> {
        let pixels = frame.frame_ref()?;
        let t = Instant::now();
        let observed = self.pipeline.observe(pixels)?;
        self.metrics.stage("detect", t.elapsed());
        let in_zone: Vec<_> = observed
            .iter()
            .filter(|o| o.measures.eye_distance_px >= self.zone_min_eye_px)
            .collect();
        self.metrics.faces_detected.inc_by(in_zone.len() as u64);
        if in_zone.len() != 1 {
            self.forget_track(0);
        }
        let mut pad = None;
        let face = match in_zone.as_slice() {
            [] => None,
            [one] => match one.rejected {
                Some(issue) => {
                    self.metrics
                        .quality_rejections
                        .with_label_values(&[issue.label()])
                        .inc();
                    Some(FaceCheck::Rejected(issue.label()))
                }
                None => {
                    pad = self.pad_verdict(0, pixels, &one.face);
                    let t = Instant::now();
                    let embedding = self.pipeline.embed(pixels, &one.face)?;
                    self.metrics.stage("embed", t.elapsed());
                    // A registration binds the face captured here to the traveller's document:
                    // with PAD enforcing, only a face judged bona fide is captured (a photo held
                    // up must not become someone's template).
                    let enforcing = self
                        .pad
                        .as_ref()
                        .is_some_and(|p| p.mode == PadMode::Enforce);
                    if wants.capture && (!enforcing || pad == Some(PadVerdict::BonaFide)) {
                        self.capture.put(embedding.clone());
                    }
                    if !wants.gate1 {
                        return Ok(None);
                    }
                    let t = Instant::now();
                    let hits = self.gallery.search(embedding.values(), 1)?;
                    let check = match hits.first() {
                        Some(hit) if hit.score >= self.threshold => {
                            match self.gallery.entry(hit.person) {
                                Some(entry) => FaceCheck::Identified {
                                    person: Box::new(entry.person),
                                    score: hit.score,
                                },
                                // Cancelled between the search and the read.
                                None => FaceCheck::Unknown,
                            }
                        }
                        _ => FaceCheck::Unknown,
                    };
                    self.metrics.stage("search", t.elapsed());
                    Some(check)
                }
            },
            _ => None,
        };
        if !wants.gate1 {
            return Ok(None);
        }
        Ok(Some(Input::Gate1(FaceScan {
            faces_in_zone: in_zone.len(),
            face,
            pad,
        })))
    }

    fn gate2_frame(&mut self, frame: &S2::Frame, person: Option<PersonId>) -> crate::Result<Input> {
        let pixels = frame.frame_ref()?;
        let observed = self.pipeline.observe(pixels)?;
        let in_zone: Vec<_> = observed
            .iter()
            .filter(|o| o.measures.eye_distance_px >= self.zone_min_eye_px)
            .collect();
        let [one] = in_zone.as_slice() else {
            self.forget_track(1);
            return Ok(Input::Gate2(Gate2Face::NoFace));
        };
        if one.rejected.is_some() {
            return Ok(Input::Gate2(Gate2Face::NoFace));
        }
        let face = one.face;
        let pad = self.pad_verdict(1, pixels, &face);
        let embedding = self.pipeline.embed(pixels, &face)?;
        let score = person
            .and_then(|id| self.gallery.entry(id))
            .and_then(|entry| best_score(&embedding, &entry.templates));
        Ok(Input::Gate2(Gate2Face::Face { score, pad }))
    }

    fn forget_track(&mut self, camera: usize) {
        if let Some(pad) = self.pad.as_mut() {
            pad.tracks[camera].clear();
        }
    }

    /// One frame's PAD verdict on `face` at `camera` (0: gate 1, 1: gate 2): attack when the
    /// model says so or the face's landmark track is flat. `None` when PAD is off, or the
    /// model failed on the frame (counted as a vision error; the procedure treats it as not
    /// bona fide).
    fn pad_verdict(
        &mut self,
        camera: usize,
        frame: FrameRef<'_>,
        face: &Face,
    ) -> Option<PadVerdict> {
        let pad = self.pad.as_mut()?;
        let gate = if camera == 0 { "1" } else { "2" };
        let t = Instant::now();
        let score = match pad.model.score(frame, face) {
            Ok(s) => s,
            Err(e) => {
                self.metrics.vision_errors.inc();
                warn!(gate, error = %e, "PAD could not judge a face.");
                return None;
            }
        };
        self.metrics.stage("pad", t.elapsed());
        let track = &mut pad.tracks[camera];
        track.push(face.landmarks, pad.planarity.frames);
        let planarity = track.verdict(&pad.planarity);
        self.metrics
            .pad_planarity
            .with_label_values(&[gate, planarity.as_str()])
            .inc();
        let verdict = if score.is_bona_fide && planarity != Planarity::Flat {
            PadVerdict::BonaFide
        } else {
            PadVerdict::Attack
        };
        self.metrics
            .pad_verdicts
            .with_label_values(&[gate, verdict.as_str(), pad.mode.as_str()])
            .inc();
        Some(verdict)
    }
}

/// The best cosine similarity of `probe` to any of `templates` of its model.
pub fn best_score(probe: &Embedding, templates: &[Template]) -> Option<f32> {
    templates
        .iter()
        .filter(|t| t.model() == probe.model() && t.dim() == probe.values().len())
        .map(|t| {
            t.dequantize()
                .iter()
                .zip(probe.values())
                .map(|(a, b)| a * b)
                .sum::<f32>()
        })
        .fold(None, |best: Option<f32>, s| {
            Some(best.map_or(s, |b| b.max(s)))
        })
}

impl VisionFrame for crate::lane::camera::CapturedFrame {
    fn frame_ref(&self) -> crate::Result<FrameRef<'_>> {
        crate::lane::camera::CapturedFrame::frame_ref(self)
    }

    fn arrived(&self) -> Instant {
        crate::lane::camera::CapturedFrame::arrived(self)
    }
}

impl FrameSource for crate::lane::camera::Frames {
    type Frame = crate::lane::camera::CapturedFrame;

    fn next_frame(&mut self, timeout: Duration) -> Option<Self::Frame> {
        self.next_blocking(timeout)
    }
}
