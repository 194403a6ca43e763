//! Presentation-attack detection at the gates: the multi-frame decision, sans-IO.
//!
//! The vision stage gives one verdict per frame ([`PadVerdict`]: the PAD model's score against
//! its threshold, and the landmark track's planarity). One frame decides nothing: a traveller
//! stepping up is seen for many frames, and a single frame's verdict is noisy. Gate 1 opens for
//! a face only when at least `required` of the last `window` verdicts on it were bona fide
//! ([`PadWindow`]). Each attack verdict is counted; `alarm_after` of them in a row raise a
//! `presentation_attack` alarm for the console. The traveller is only ever asked to look at the
//! camera: a screen never says "attack detected" (a real traveller misjudged must not be
//! accused, and an attacker learns nothing).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Whether PAD decides, only watches, or is not run.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// Gate 1 opens only after enough bona fide verdicts; gate 2 ignores attack faces.
    #[default]
    Enforce,
    /// Verdicts are computed and counted (metrics) but change nothing: for a demo on photo
    /// scenes, or a trial of a new model. The console shows the lane is in observe mode.
    Observe,
    /// No PAD model is loaded or run.
    Off,
}

impl PadMode {
    /// Stable name (`enforce`, `observe`, `off`), a bounded metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            PadMode::Enforce => "enforce",
            PadMode::Observe => "observe",
            PadMode::Off => "off",
        }
    }
}

/// `[lane.procedure.pad]`: how the lane uses the PAD verdicts.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PadPolicy {
    /// Enforce, observe or off. Default: enforce.
    pub mode: PadMode,
    /// How many of the latest verdicts on the face in the capture zone are looked at. Default 5.
    pub window: u32,
    /// How many of them must be bona fide before gate 1 opens. Default 3.
    pub required: u32,
    /// Attack verdicts in a row (on one approach) that raise a `presentation_attack` alarm.
    /// Default 10 (about a second of frames).
    pub alarm_after: u32,
}

impl Default for PadPolicy {
    fn default() -> Self {
        PadPolicy {
            mode: PadMode::Enforce,
            window: 5,
            required: 3,
            alarm_after: 10,
        }
    }
}

impl PadPolicy {
    /// Checks the numbers fit together.
    pub fn validate(&self) -> Result<(), String> {
        if self.window == 0 || self.window > 64 {
            return Err(format!("pad.window must be in 1..=64, got {}", self.window));
        }
        if self.required == 0 || self.required > self.window {
            return Err(format!(
                "pad.required must be in 1..=window ({}), got {}",
                self.window, self.required
            ));
        }
        if self.alarm_after == 0 {
            return Err("pad.alarm_after must be at least 1".into());
        }
        Ok(())
    }
}

/// One frame's PAD verdict on the face in the capture zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadVerdict {
    /// The model judged it live, and its landmark track was not flat.
    BonaFide,
    /// The model judged it an attack, or its landmark track was flat.
    Attack,
}

impl PadVerdict {
    /// Stable name (`bona_fide`, `attack`), a bounded metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            PadVerdict::BonaFide => "bona_fide",
            PadVerdict::Attack => "attack",
        }
    }
}

/// What the window says after a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadEvent {
    /// Nothing to report.
    None,
    /// `alarm_after` attack verdicts in a row: raise the alarm (the count restarts).
    Alarm,
}

/// The latest verdicts on the face in the capture zone.
#[derive(Clone, Debug, Default)]
pub struct PadWindow {
    recent: VecDeque<PadVerdict>,
    attack_run: u32,
}

impl PadWindow {
    /// Records a frame's verdict.
    pub fn push(&mut self, verdict: PadVerdict, policy: &PadPolicy) -> PadEvent {
        self.recent.push_back(verdict);
        while self.recent.len() > policy.window as usize {
            self.recent.pop_front();
        }
        match verdict {
            PadVerdict::BonaFide => {
                self.attack_run = 0;
                PadEvent::None
            }
            PadVerdict::Attack => {
                self.attack_run += 1;
                if self.attack_run >= policy.alarm_after {
                    self.attack_run = 0;
                    PadEvent::Alarm
                } else {
                    PadEvent::None
                }
            }
        }
    }

    /// Whether enough of the latest verdicts were bona fide for gate 1 to open.
    pub fn satisfied(&self, policy: &PadPolicy) -> bool {
        self.recent
            .iter()
            .filter(|v| **v == PadVerdict::BonaFide)
            .count()
            >= policy.required as usize
    }

    /// Forgets everything: the face left the zone, or its passage began.
    pub fn reset(&mut self) {
        self.recent.clear();
        self.attack_run = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PadVerdict::{Attack as A, BonaFide as B};

    /// The decision table: (verdicts in order, gate 1 may open after the last, alarms raised).
    #[test]
    fn n_of_m_decision_table() {
        let policy = PadPolicy {
            mode: PadMode::Enforce,
            window: 5,
            required: 3,
            alarm_after: 4,
        };
        let cases: &[(&[PadVerdict], bool, usize)] = &[
            (&[], false, 0),
            (&[B], false, 0),
            (&[B, B], false, 0),
            (&[B, B, B], true, 0),
            (&[B, A, B, A, B], true, 0),
            (&[A, A, B, B, B], true, 0),
            (&[B, B, B, A, A, A], false, 0), // the bona fide ones slid out of the window
            (&[A, A, A], false, 0),
            (&[A, A, A, A], false, 1),
            (&[A, A, A, B, A, A, A], false, 0), // a bona fide frame breaks the run
            (&[A, A, A, A, A, A, A, A], false, 2),
            (&[A, A, A, A, B, B, B], true, 1),
        ];
        for (verdicts, opens, alarms) in cases {
            let mut w = PadWindow::default();
            let raised = verdicts
                .iter()
                .filter(|v| w.push(**v, &policy) == PadEvent::Alarm)
                .count();
            assert_eq!(w.satisfied(&policy), *opens, "{verdicts:?}");
            assert_eq!(raised, *alarms, "{verdicts:?}");
        }
    }

    #[test]
    fn reset_forgets_the_verdicts_and_the_run() {
        let policy = PadPolicy {
            alarm_after: 2,
            ..PadPolicy::default()
        };
        let mut w = PadWindow::default();
        for _ in 0..3 {
            w.push(B, &policy);
        }
        assert_eq!(w.push(A, &policy), PadEvent::None);
        assert!(w.satisfied(&policy));
        w.reset();
        assert!(!w.satisfied(&policy));
        assert_eq!(w.push(A, &policy), PadEvent::None, "the run restarted");
    }

    #[test]
    fn policy_numbers_are_checked() {
        assert!(PadPolicy::default().validate().is_ok());
        for (window, required, alarm_after) in
            [(0, 0, 1), (3, 4, 1), (3, 0, 1), (3, 2, 0), (65, 3, 1)]
        {
            let p = PadPolicy {
                mode: PadMode::Enforce,
                window,
                required,
                alarm_after,
            };
            assert!(p.validate().is_err(), "{p:?}");
        }
    }
}
