//! The quality gate, pure. Seed 000: the traveller removes sunglasses, mask and hat and faces the
//! camera. From a detection we can measure confidence (occlusions lower it), size, whether the face
//! is cut off by the frame, and head pose from the five landmarks. A rejected face says why, in words
//! a gate screen can show.

use std::fmt;

use serde::Serialize;

use super::config::QualityConfig;
use super::{Face, Point};

/// Measurements of one face that the gate decides on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FaceMeasures {
    /// Detector confidence.
    pub confidence: f32,
    /// Distance between the eye centres, pixels.
    pub eye_distance_px: f32,
    /// Tilt of the eye line, degrees (0 = level).
    pub roll_deg: f32,
    /// Nose offset from the eye midpoint along the eye line, in eye distances (0 = frontal).
    pub yaw_ratio: f32,
    /// Nose depth below the eyes as a fraction of the mouth's (≈ 0.5 frontal).
    pub pitch_ratio: f32,
    /// Whether the face box reaches the frame edge.
    pub cut_off: bool,
}

/// Why a face was not good enough.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum QualityIssue {
    /// The detector is not confident (often sunglasses, a mask or a hat).
    LowConfidence {
        /// Detector confidence.
        score: f32,
        /// Required minimum.
        min: f32,
    },
    /// Part of the face is outside the frame.
    CutOff,
    /// The face is too small (too far from the camera).
    TooSmall {
        /// Measured eye distance, pixels.
        eye_distance_px: f32,
        /// Required minimum.
        min: f32,
    },
    /// The head is tilted sideways.
    Tilted {
        /// Measured roll, degrees.
        roll_deg: f32,
        /// Allowed maximum.
        max: f32,
    },
    /// The head is turned left or right.
    TurnedAway {
        /// Measured yaw ratio.
        yaw_ratio: f32,
        /// Allowed maximum.
        max: f32,
    },
    /// The head is tipped up or down.
    TippedUpOrDown {
        /// Measured pitch ratio.
        pitch_ratio: f32,
        /// Accepted range.
        range: [f32; 2],
    },
}

impl QualityIssue {
    /// A stable label, bounded, usable as a metric label value.
    pub fn label(&self) -> &'static str {
        match self {
            QualityIssue::LowConfidence { .. } => "low_confidence",
            QualityIssue::CutOff => "cut_off",
            QualityIssue::TooSmall { .. } => "too_small",
            QualityIssue::Tilted { .. } => "tilted",
            QualityIssue::TurnedAway { .. } => "turned_away",
            QualityIssue::TippedUpOrDown { .. } => "tipped",
        }
    }
}

impl fmt::Display for QualityIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QualityIssue::LowConfidence { score, min } => write!(
                f,
                "face not clearly visible (confidence {score:.2} < {min:.2}); remove sunglasses, mask or hat"
            ),
            QualityIssue::CutOff => write!(
                f,
                "face partly outside the camera's view; step into the frame"
            ),
            QualityIssue::TooSmall {
                eye_distance_px,
                min,
            } => {
                write!(
                    f,
                    "face too small ({eye_distance_px:.0} px between the eyes < {min:.0}); step closer"
                )
            }
            QualityIssue::Tilted { roll_deg, max } => {
                write!(
                    f,
                    "head tilted {roll_deg:.0}° (max {max:.0}°); hold your head level"
                )
            }
            QualityIssue::TurnedAway { yaw_ratio, max } => {
                write!(
                    f,
                    "head turned (yaw {yaw_ratio:.2}, max {max:.2}); look straight at the camera"
                )
            }
            QualityIssue::TippedUpOrDown { pitch_ratio, range } => write!(
                f,
                "head tipped up or down (pitch {pitch_ratio:.2}, expected {:.2}–{:.2}); look straight at the camera",
                range[0], range[1]
            ),
        }
    }
}

/// Measures a face detected in a frame of `frame_w`×`frame_h`.
pub fn measure(face: &Face, frame_w: u32, frame_h: u32, edge_margin_px: f32) -> FaceMeasures {
    let [right_eye, left_eye, nose, mouth_r, mouth_l] = face.landmarks;
    let (ex, ey) = (left_eye.x - right_eye.x, left_eye.y - right_eye.y);
    let eye_distance_px = ex.hypot(ey);
    let roll = ey.atan2(ex);
    // Undo the roll around the eye midpoint, then read offsets along and across the eye line.
    let mid = Point {
        x: (left_eye.x + right_eye.x) / 2.0,
        y: (left_eye.y + right_eye.y) / 2.0,
    };
    let (c, s) = (roll.cos(), roll.sin());
    let level = |p: Point| {
        let (dx, dy) = (p.x - mid.x, p.y - mid.y);
        (dx * c + dy * s, -dx * s + dy * c)
    };
    let (nose_x, nose_y) = level(nose);
    let (_, mouth_y) = level(Point {
        x: (mouth_r.x + mouth_l.x) / 2.0,
        y: (mouth_r.y + mouth_l.y) / 2.0,
    });
    let safe = |v: f32| if v.is_finite() { v } else { f32::MAX };
    let m = edge_margin_px;
    FaceMeasures {
        confidence: face.score,
        eye_distance_px,
        roll_deg: roll.to_degrees(),
        yaw_ratio: safe(nose_x / eye_distance_px),
        pitch_ratio: safe(nose_y / mouth_y),
        cut_off: face.x < m
            || face.y < m
            || face.x + face.width > frame_w as f32 - m
            || face.y + face.height > frame_h as f32 - m,
    }
}

/// Applies the gate: the first failed check, in the order a traveller can fix them.
pub fn check(m: &FaceMeasures, config: &QualityConfig) -> Result<(), QualityIssue> {
    if !(m.confidence >= config.min_confidence) {
        return Err(QualityIssue::LowConfidence {
            score: m.confidence,
            min: config.min_confidence,
        });
    }
    if m.cut_off {
        return Err(QualityIssue::CutOff);
    }
    if !(m.eye_distance_px >= config.min_eye_distance_px) {
        return Err(QualityIssue::TooSmall {
            eye_distance_px: m.eye_distance_px,
            min: config.min_eye_distance_px,
        });
    }
    if !(m.roll_deg.abs() <= config.max_roll_deg) {
        return Err(QualityIssue::Tilted {
            roll_deg: m.roll_deg,
            max: config.max_roll_deg,
        });
    }
    if !(m.yaw_ratio.abs() <= config.max_yaw_ratio) {
        return Err(QualityIssue::TurnedAway {
            yaw_ratio: m.yaw_ratio,
            max: config.max_yaw_ratio,
        });
    }
    let [lo, hi] = config.pitch_ratio_range;
    if !(m.pitch_ratio >= lo && m.pitch_ratio <= hi) {
        return Err(QualityIssue::TippedUpOrDown {
            pitch_ratio: m.pitch_ratio,
            range: config.pitch_ratio_range,
        });
    }
    Ok(())
}
