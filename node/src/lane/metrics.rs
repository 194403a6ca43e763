//! Lane metrics on the node's explicit registry. Labels are bounded: a stage, an outcome, a
//! reason code, a gate number, a state — never a person, document or face.

use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::procedure::{GateId, GateState, LaneMode};

/// The lane's metrics. Cheap to clone (the prometheus handles are shared).
#[derive(Clone)]
pub struct LaneMetrics {
    /// Faces detected inside the gate-1 capture zone.
    pub faces_detected: IntCounter,
    /// Faces refused by the quality gate, by reason.
    pub quality_rejections: IntCounterVec,
    /// Frames the vision stage could not analyse.
    pub vision_errors: IntCounter,
    /// PAD verdicts on faces, by gate (`1`, `2`), verdict (`bona_fide`, `attack`) and mode
    /// (`enforce`, `observe`). Counts only: never an image or a score of a person.
    pub pad_verdicts: IntCounterVec,
    /// Landmark tracks judged by the planarity signal, by gate and result (`flat`, `depth`,
    /// `inconclusive`).
    pub pad_planarity: IntCounterVec,
    /// Decisions by outcome and reason code.
    pub decisions: IntCounterVec,
    /// Time spent per stage (`detect`, `pad`, `embed`, `search`, `decide`, `frame_to_gate1`).
    pub stage_seconds: HistogramVec,
    /// Alarms raised, by kind.
    pub alarms: IntCounterVec,
    /// Gate commands sent, by gate, action and result (`ok`, an error code).
    pub gate_commands: IntCounterVec,
    /// 1 for each gate's current state.
    pub gate_state: IntGaugeVec,
    /// 1 for the lane's current mode.
    pub mode: IntGaugeVec,
    /// Inspections answered, by authority and result.
    pub inspections: IntCounterVec,
    /// Time from frame arrival to the gate-1 open command.
    pub frame_to_gate1: Histogram,
    /// Cancellation notices the replica holds, not yet delivered to every authority.
    pub notices_pending: IntGauge,
}

impl LaneMetrics {
    /// Registers the lane metrics on `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<LaneMetrics> {
        fn reg<T: prometheus::core::Collector + Clone + 'static>(
            r: &Registry,
            c: T,
        ) -> prometheus::Result<T> {
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        let buckets = vec![
            0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0,
        ];
        Ok(LaneMetrics {
            faces_detected: reg(
                registry,
                IntCounter::new(
                    "clearway_lane_faces_detected_total",
                    "Faces detected in the gate-1 capture zone.",
                )?,
            )?,
            quality_rejections: reg(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "clearway_lane_quality_rejections_total",
                        "Gate-1 faces refused by the quality gate.",
                    ),
                    &["reason"],
                )?,
            )?,
            vision_errors: reg(
                registry,
                IntCounter::new(
                    "clearway_lane_vision_errors_total",
                    "Frames the vision stage could not analyse.",
                )?,
            )?,
            pad_verdicts: reg(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "clearway_lane_pad_verdicts_total",
                        "Presentation-attack detection verdicts on faces, per frame.",
                    ),
                    &["gate", "verdict", "mode"],
                )?,
            )?,
            pad_planarity: reg(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "clearway_lane_pad_planarity_total",
                        "Landmark tracks judged by the planarity signal, per frame.",
                    ),
                    &["gate", "result"],
                )?,
            )?,
            decisions: reg(
                registry,
                IntCounterVec::new(
                    Opts::new("clearway_lane_decisions_total", "Decisions by outcome."),
                    &["outcome", "reason"],
                )?,
            )?,
            stage_seconds: reg(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "clearway_lane_stage_seconds",
                        "Time spent per decision stage.",
                    )
                    .buckets(buckets.clone()),
                    &["stage"],
                )?,
            )?,
            alarms: reg(
                registry,
                IntCounterVec::new(
                    Opts::new("clearway_lane_alarms_total", "Alarms raised, by kind."),
                    &["kind"],
                )?,
            )?,
            gate_commands: reg(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "clearway_lane_gate_commands_total",
                        "Gate commands sent, by result.",
                    ),
                    &["gate", "action", "result"],
                )?,
            )?,
            gate_state: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "clearway_lane_gate_state",
                        "1 for each gate's current state.",
                    ),
                    &["gate", "state"],
                )?,
            )?,
            mode: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new("clearway_lane_mode", "1 for the lane's current mode."),
                    &["mode"],
                )?,
            )?,
            inspections: reg(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "clearway_lane_inspections_total",
                        "Inspection answers, by authority and result.",
                    ),
                    &["authority", "result"],
                )?,
            )?,
            frame_to_gate1: reg(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "clearway_lane_frame_to_gate1_seconds",
                        "From the arrival of the identifying frame to the gate-1 open command.",
                    )
                    .buckets(buckets),
                )?,
            )?,
            notices_pending: reg(
                registry,
                IntGauge::new(
                    "clearway_cancellation_notices_pending",
                    "Cancellations this replica holds that every authority of the port has not yet received.",
                )?,
            )?,
        })
    }

    /// Records the time one stage took.
    pub fn stage(&self, stage: &str, took: Duration) {
        self.stage_seconds
            .with_label_values(&[stage])
            .observe(took.as_secs_f64());
    }

    /// Sets the gate-state gauges.
    pub fn gates(&self, states: &[GateState; 3]) {
        const ALL: [GateState; 5] = [
            GateState::Closed,
            GateState::Moving,
            GateState::Open,
            GateState::Locked,
            GateState::Fault,
        ];
        for (gate, state) in GateId::ALL.iter().zip(states) {
            let n = gate.number().to_string();
            for s in ALL {
                self.gate_state
                    .with_label_values(&[n.as_str(), s.as_str()])
                    .set(i64::from(s == *state));
            }
        }
    }

    /// Sets the mode gauge.
    pub fn mode(&self, mode: LaneMode) {
        for m in [LaneMode::FaceAndCard, LaneMode::CardOnly, LaneMode::Closed] {
            self.mode
                .with_label_values(&[m.as_str()])
                .set(i64::from(m == mode));
        }
    }
}
