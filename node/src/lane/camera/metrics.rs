//! Per-camera metrics on an explicit `prometheus::Registry` (no global statics). The one label,
//! `camera`, is a configured camera name: bounded by the lane's configuration.

use prometheus::{
    Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// The camera metric families, registered once per registry and shared by every camera.
#[derive(Clone)]
pub struct CameraMetrics {
    frames: IntCounterVec,
    fps: GaugeVec,
    skipped: IntCounterVec,
    dropped: IntCounterVec,
    reconnects: IntCounterVec,
    decode_errors: IntCounterVec,
    up: IntGaugeVec,
}

/// One camera's series.
#[derive(Clone)]
pub(super) struct CameraSeries {
    pub frames: IntCounter,
    pub fps: Gauge,
    pub skipped: IntCounter,
    pub dropped: IntCounter,
    pub reconnects: IntCounter,
    pub decode_errors: IntCounter,
    pub up: IntGauge,
}

fn counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), &["camera"])?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl CameraMetrics {
    /// Registers the camera metric families on `registry` (once per registry).
    pub fn new(registry: &Registry) -> prometheus::Result<CameraMetrics> {
        let r = registry;
        let fps = GaugeVec::new(
            Opts::new(
                "clearway_camera_fps",
                "Frames delivered in the last second.",
            ),
            &["camera"],
        )?;
        r.register(Box::new(fps.clone()))?;
        let up = IntGaugeVec::new(
            Opts::new("clearway_camera_up", "1 while frames flow, 0 otherwise."),
            &["camera"],
        )?;
        r.register(Box::new(up.clone()))?;
        Ok(CameraMetrics {
            frames: counter(
                r,
                "clearway_camera_frames_total",
                "Frames delivered by the pipeline.",
            )?,
            fps,
            skipped: counter(
                r,
                "clearway_camera_skipped_frames_total",
                "Frames replaced by a newer one before the consumer took them.",
            )?,
            dropped: counter(
                r,
                "clearway_camera_dropped_frames_total",
                "Frames dropped inside the pipeline (QoS reports: late or unrendered).",
            )?,
            reconnects: counter(
                r,
                "clearway_camera_reconnects_total",
                "Pipeline tear-downs and rebuilds after an error, end of stream or stall.",
            )?,
            decode_errors: counter(
                r,
                "clearway_camera_decode_errors_total",
                "Decoder errors and warnings (corrupt or missing data).",
            )?,
            up,
        })
    }

    pub(super) fn series(&self, camera: &str) -> CameraSeries {
        let l = &[camera];
        CameraSeries {
            frames: self.frames.with_label_values(l),
            fps: self.fps.with_label_values(l),
            skipped: self.skipped.with_label_values(l),
            dropped: self.dropped.with_label_values(l),
            reconnects: self.reconnects.with_label_values(l),
            decode_errors: self.decode_errors.with_label_values(l),
            up: self.up.with_label_values(l),
        }
    }
}
