//! Cameras: GStreamer capture pipelines with reconnect and backoff, per-camera metrics, and the
//! RTSP camera simulator.
//!
//! * [`config`]: [`CameraConfig`] (serde, `deny_unknown_fields`, `validate()`) and the parsed
//!   [`Source`] (`rtsp://`, `v4l2:///dev/videoN`, `file:///…`, `test://pattern`).
//! * [`pipeline`]: the capture pipeline as a `gst-launch` description, built by pure functions:
//!   [`Plan::resolve`] chooses CPU or GPU decoding once (NVIDIA `nvh264dec` + CUDA conversion when
//!   `decode = auto` and the elements exist) and [`describe`] writes the description.
//! * `driver`: [`Camera::spawn`] runs one thread per camera that owns the pipeline, watches its
//!   bus, and tears down and rebuilds it with exponential backoff on error, end of stream, or no
//!   frame for `stall_timeout_ms`; [`CameraHandle::health`] says how it is doing.
//! * `frame`: [`CapturedFrame`] (the GStreamer buffer mapped readable, no copy; packed RGB8 as
//!   [`crate::face::FrameRef`] takes it) and [`Frames`], the consumer's end, which always yields
//!   the newest frame; a frame replaced before it was taken counts as skipped.
//! * `metrics`: [`CameraMetrics`] on an explicit `prometheus::Registry`, label `camera`.
//! * [`sim`]: the RTSP camera **simulator** (gst-rtsp-server) for demos and tests.
//!
//! Architecture invariant: only this module touches GStreamer.

pub mod config;
mod driver;
mod frame;
mod metrics;
pub mod pipeline;
pub mod sim;
#[cfg(test)]
mod tests;

pub use config::{CameraConfig, Codec, DecodeChoice, Source};
pub use driver::{Camera, CameraHandle, CameraHealth, CameraMonitor};
pub use frame::{CapturedFrame, Frames};
pub use metrics::CameraMetrics;
pub use pipeline::{DecodePath, Plan, describe};
pub use sim::{CameraSimulator, Scene, SimCodec, SimConfig, SimHandle};
