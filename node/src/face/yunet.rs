//! YuNet decoding, pure: the geometry of the detector input, the three strides' outputs turned
//! into faces, non-maximum suppression, and the mapping back to the original frame.
//!
//! YuNet is anchor-free. For stride `s` the feature map is `pad_w/s × pad_h/s`; cell `(r, c)` at
//! index `r·cols + c` carries a class score, an objectness score, a box `(dx, dy, log w, log h)`
//! and five landmarks `(dx, dy)`, all in units of `s` relative to the cell's corner. The face score
//! is `sqrt(clamp(cls) × clamp(obj))`.

use super::{Face, Point};
use crate::error::{Error, Result};

/// How a frame of `width`×`height` is fed to the detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputGeometry {
    /// Width of the resized frame (≤ `pad_w`).
    pub width: usize,
    /// Height of the resized frame (≤ `pad_h`).
    pub height: usize,
    /// Tensor width: `width` rounded up to the divisor.
    pub pad_w: usize,
    /// Tensor height.
    pub pad_h: usize,
}

impl InputGeometry {
    /// Downscales (never upscales) so the longer side is at most `max_side`, then pads each side up
    /// to a multiple of `divisor`.
    pub fn new(frame_w: u32, frame_h: u32, max_side: u32, divisor: u32) -> InputGeometry {
        let (w, h) = (frame_w.max(1) as f64, frame_h.max(1) as f64);
        let scale = (max_side as f64 / w.max(h)).min(1.0);
        let width = ((w * scale).round() as usize).max(1);
        let height = ((h * scale).round() as usize).max(1);
        let d = divisor.max(1) as usize;
        InputGeometry {
            width,
            height,
            pad_w: width.div_ceil(d) * d,
            pad_h: height.div_ceil(d) * d,
        }
    }

    /// For a model whose input size is fixed at `pad_w`×`pad_h`: downscales (never upscales) so
    /// the frame fits, keeping its aspect ratio, and pads the rest.
    pub fn fixed(frame_w: u32, frame_h: u32, pad_w: usize, pad_h: usize) -> InputGeometry {
        let (w, h) = (frame_w.max(1) as f64, frame_h.max(1) as f64);
        let scale = (pad_w as f64 / w).min(pad_h as f64 / h).min(1.0);
        let width = ((w * scale).round() as usize).clamp(1, pad_w.max(1));
        let height = ((h * scale).round() as usize).clamp(1, pad_h.max(1));
        InputGeometry {
            width,
            height,
            pad_w,
            pad_h,
        }
    }
}

/// The raw outputs of one stride, as flat row-major slices.
#[derive(Clone, Copy, Debug)]
pub struct StrideOutputs<'a> {
    /// The stride in input pixels.
    pub stride: u32,
    /// One class score per cell.
    pub cls: &'a [f32],
    /// One objectness score per cell.
    pub obj: &'a [f32],
    /// Four box values per cell.
    pub bbox: &'a [f32],
    /// Ten landmark values per cell.
    pub kps: &'a [f32],
}

/// Decodes every stride's cells scoring at least `threshold` into faces in detector-input
/// coordinates. Errors if an output's length does not fit the geometry.
pub fn decode(
    geometry: &InputGeometry,
    outputs: &[StrideOutputs<'_>],
    threshold: f32,
) -> Result<Vec<Face>> {
    let mut faces = Vec::new();
    for o in outputs {
        let s = o.stride as usize;
        let (cols, rows) = (geometry.pad_w / s, geometry.pad_h / s);
        let cells = cols * rows;
        if o.cls.len() != cells
            || o.obj.len() != cells
            || o.bbox.len() != cells * 4
            || o.kps.len() != cells * 10
        {
            return Err(Error::ModelOutput(format!(
                "stride {s}: expected {cells} cells, got cls {} obj {} bbox {}/4 kps {}/10",
                o.cls.len(),
                o.obj.len(),
                o.bbox.len(),
                o.kps.len()
            )));
        }
        let sf = s as f32;
        for r in 0..rows {
            for c in 0..cols {
                let idx = r * cols + c;
                let score = (o.cls[idx].clamp(0.0, 1.0) * o.obj[idx].clamp(0.0, 1.0)).sqrt();
                // NaN scores fail this comparison and are dropped with the rest.
                if !(score >= threshold) {
                    continue;
                }
                let b = &o.bbox[idx * 4..idx * 4 + 4];
                let cx = (c as f32 + b[0]) * sf;
                let cy = (r as f32 + b[1]) * sf;
                let w = b[2].exp() * sf;
                let h = b[3].exp() * sf;
                let k = &o.kps[idx * 10..idx * 10 + 10];
                let landmarks = std::array::from_fn(|n| Point {
                    x: (k[2 * n] + c as f32) * sf,
                    y: (k[2 * n + 1] + r as f32) * sf,
                });
                let face = Face {
                    x: cx - w / 2.0,
                    y: cy - h / 2.0,
                    width: w,
                    height: h,
                    landmarks,
                    score,
                };
                if face.is_finite() {
                    faces.push(face);
                }
            }
        }
    }
    Ok(faces)
}

/// Greedy non-maximum suppression: highest score first, a face is dropped when its IoU with a kept
/// face exceeds `iou_threshold`. Keeps at most `top_k`, in descending score order (ties keep their
/// input order).
pub fn nms(mut faces: Vec<Face>, iou_threshold: f32, top_k: usize) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for f in faces {
        if kept.len() == top_k {
            break;
        }
        if kept.iter().all(|k| iou(k, &f) <= iou_threshold) {
            kept.push(f);
        }
    }
    kept
}

/// Intersection over union of two boxes.
pub fn iou(a: &Face, b: &Face) -> f32 {
    let ix = (a.x + a.width).min(b.x + b.width) - a.x.max(b.x);
    let iy = (a.y + a.height).min(b.y + b.height) - a.y.max(b.y);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    let union = a.width * a.height + b.width * b.height - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Maps a face from detector-input coordinates back to the original frame.
pub fn to_frame(face: &Face, geometry: &InputGeometry, frame_w: u32, frame_h: u32) -> Face {
    let sx = frame_w as f32 / geometry.width as f32;
    let sy = frame_h as f32 / geometry.height as f32;
    Face {
        x: face.x * sx,
        y: face.y * sy,
        width: face.width * sx,
        height: face.height * sy,
        landmarks: face.landmarks.map(|p| Point {
            x: p.x * sx,
            y: p.y * sy,
        }),
        score: face.score,
    }
}
