//! The camera driver: one thread per camera owns the GStreamer pipeline, watches its bus, and
//! tears it down and rebuilds it (with exponential backoff) on error, end of stream, or a stall.
//! Frames arrive in the appsink's streaming thread and go straight into the one-place slot.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use tracing::{debug, info, warn};

use super::config::{CameraConfig, Source};
use super::frame::{Frames, Slot, capture};
use super::metrics::{CameraMetrics, CameraSeries};
use super::pipeline::{DECODEBIN_NAME, DecodePath, Plan, SINK_NAME, describe};
use crate::error::{Error, Result};

/// How often the driver looks at its bus, the stall clock and the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// Why a session ended at end of stream.
const END_OF_STREAM: &str = "end of stream";
/// The window `clearway_camera_fps` is measured over.
const FPS_WINDOW: Duration = Duration::from_secs(1);

/// Starts cameras.
pub struct Camera;

/// What the lane and the console show about a camera.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraHealth {
    /// Frames are flowing.
    pub up: bool,
    /// Frames delivered in the last second.
    pub fps: f64,
    /// How long ago the last frame arrived (`None`: never).
    pub last_frame_age: Option<Duration>,
    /// Pipeline rebuilds so far.
    pub reconnects: u64,
    /// Frames delivered so far.
    pub frames: u64,
    /// Why the pipeline was last torn down (`None` until it first is).
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Stats {
    up: bool,
    last_frame: Option<Instant>,
    window: VecDeque<Instant>,
    last_error: Option<String>,
}

struct Shared {
    name: String,
    series: CameraSeries,
    slot: Arc<Slot>,
    stop: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<()>,
    seq: AtomicU64,
    stats: Mutex<Stats>,
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        // Plain data; a panic elsewhere cannot leave it half-updated in a harmful way.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps up to `d`, waking early on shutdown. Returns true when stopping.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut guard = self.wake_lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.stopping() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self
                .wake
                .wait_timeout(guard, (deadline - now).min(POLL))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _guard = self.wake_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.notify_all();
    }

    /// A frame arrived (streaming thread).
    fn on_frame(&self, now: Instant) {
        self.series.frames.inc();
        let mut s = self.stats();
        s.last_frame = Some(now);
        s.window.push_back(now);
        trim(&mut s.window, now);
        self.series.fps.set(s.window.len() as f64);
        if !s.up {
            s.up = true;
            self.series.up.set(1);
        }
    }

    /// Lets the fps gauge decay when frames stop (driver thread).
    fn tick(&self, now: Instant) {
        let mut s = self.stats();
        trim(&mut s.window, now);
        self.series.fps.set(s.window.len() as f64);
    }

    fn mark_down(&self, why: Option<String>) {
        let mut s = self.stats();
        s.up = false;
        s.window.clear();
        if why.is_some() {
            s.last_error = why;
        }
        self.series.up.set(0);
        self.series.fps.set(0.0);
    }
}

fn trim(window: &mut VecDeque<Instant>, now: Instant) {
    while window
        .front()
        .is_some_and(|&t| now.saturating_duration_since(t) >= FPS_WINDOW)
    {
        window.pop_front();
    }
}

/// A running camera. Dropping it stops the camera (without waiting); [`CameraHandle::shutdown`]
/// stops it and waits until its pipeline is in the Null state.
pub struct CameraHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    plan: Plan,
    source: Source,
}

impl Camera {
    /// Checks `config`, chooses the decode path once (logged), and starts the camera's driver
    /// thread. Errors: a bad configuration, GStreamer not initialisable, a missing plugin, a
    /// missing file. A camera that cannot be reached is not an error: the driver keeps trying.
    pub fn spawn(config: CameraConfig, metrics: &CameraMetrics) -> Result<CameraHandle> {
        let source = config.validate()?;
        gst::init().map_err(|e| Error::Config(format!("gstreamer: cannot initialise: {e}")))?;
        match &source {
            Source::File { path } if !path.is_file() => {
                return Err(Error::Config(format!(
                    "camera {:?}: {} is not a readable file",
                    config.name,
                    path.display()
                )));
            }
            Source::ImageSequence { pattern } if !pattern.parent().is_some_and(|d| d.is_dir()) => {
                return Err(Error::Config(format!(
                    "camera {:?}: no directory for image sequence {}",
                    config.name,
                    pattern.display()
                )));
            }
            _ => {}
        }
        let plan = Plan::resolve(&config, &source, |e| gst::ElementFactory::find(e).is_some())?;
        let description = describe(&config, &source, &plan);
        info!(
            camera = %config.name,
            source = %source,
            decode = %plan.decode,
            reason = %plan.reason,
            "Camera decode path chosen."
        );
        debug!(
            camera = %config.name,
            pipeline = %redact_description(&description, &source),
            "Camera pipeline."
        );
        let series = metrics.series(&config.name);
        series.up.set(0);
        series.fps.set(0.0);
        let shared = Arc::new(Shared {
            name: config.name.clone(),
            series,
            slot: Arc::new(Slot::default()),
            stop: AtomicBool::new(false),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
            seq: AtomicU64::new(0),
            stats: Mutex::new(Stats::default()),
        });
        let driver = Driver {
            shared: shared.clone(),
            config,
            description,
            decode: plan.decode,
            source: source.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("cam-{}", shared.name))
            .spawn(move || driver.run())
            .map_err(|e| Error::Config(format!("cannot start camera thread: {e}")))?;
        Ok(CameraHandle {
            shared,
            thread: Some(thread),
            plan,
            source,
        })
    }
}

impl CameraHandle {
    /// The camera's configured name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The source, credentials redacted when displayed.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Where frames are decoded (chosen once at start-up).
    pub fn decode_path(&self) -> DecodePath {
        self.plan.decode
    }

    /// Why that decode path.
    pub fn decode_reason(&self) -> &str {
        &self.plan.reason
    }

    /// The consumer's end: always the newest frame.
    pub fn frames(&self) -> Frames {
        Frames {
            slot: self.shared.slot.clone(),
        }
    }

    /// Up, fps, last frame age, reconnects.
    pub fn health(&self) -> CameraHealth {
        self.monitor().health()
    }

    /// A cheap handle that reads this camera's health from elsewhere (the console's lane
    /// report).
    pub fn monitor(&self) -> CameraMonitor {
        CameraMonitor {
            shared: self.shared.clone(),
        }
    }
}

/// Reads a camera's health; see [`CameraHandle::monitor`].
#[derive(Clone)]
pub struct CameraMonitor {
    shared: Arc<Shared>,
}

impl CameraMonitor {
    /// Up, fps, last frame age, reconnects.
    pub fn health(&self) -> CameraHealth {
        let now = Instant::now();
        let s = self.shared.stats();
        let fps = s
            .window
            .iter()
            .filter(|&&t| now.saturating_duration_since(t) < FPS_WINDOW)
            .count() as f64;
        CameraHealth {
            up: s.up,
            fps,
            last_frame_age: s.last_frame.map(|t| now.saturating_duration_since(t)),
            reconnects: self.shared.series.reconnects.get(),
            frames: self.shared.series.frames.get(),
            last_error: s.last_error.clone(),
        }
    }
}

impl CameraHandle {
    /// Stops the camera and waits until its pipeline is torn down (blocking; from async code use
    /// [`CameraHandle::stop`]).
    pub fn shutdown(mut self) {
        self.shared.request_stop();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!(camera = %self.shared.name, "Camera driver thread panicked.");
        }
    }

    /// [`CameraHandle::shutdown`] on the blocking pool.
    pub async fn stop(self) {
        let name = self.shared.name.clone();
        if tokio::task::spawn_blocking(move || self.shutdown())
            .await
            .is_err()
        {
            warn!(camera = %name, "Camera shutdown task failed.");
        }
    }
}

impl Drop for CameraHandle {
    fn drop(&mut self) {
        self.shared.request_stop();
    }
}

/// The pipeline description with RTSP credentials redacted, for logs.
fn redact_description(description: &str, source: &Source) -> String {
    match source {
        Source::Rtsp { url } => description.replace(url.as_str(), &source.redacted()),
        _ => description.to_string(),
    }
}

/// How one pipeline session ended.
enum SessionEnd {
    /// Shutdown was requested.
    Stopped,
    /// The pipeline failed, ended or stalled.
    Failed { why: String, had_frames: bool },
}

struct Driver {
    shared: Arc<Shared>,
    config: CameraConfig,
    description: String,
    decode: DecodePath,
    source: Source,
}

impl Driver {
    fn run(self) {
        let name = self.shared.name.clone();
        let mut backoff = self.config.backoff_initial();
        // Failures since frames last flowed: the first is a warning, the rest debug lines.
        let mut failures: u64 = 0;
        loop {
            if self.shared.stopping() {
                break;
            }
            match self.session(failures) {
                SessionEnd::Stopped => break,
                SessionEnd::Failed { why, had_frames } => {
                    self.shared.mark_down(Some(why.clone()));
                    self.shared.series.reconnects.inc();
                    if had_frames {
                        backoff = self.config.backoff_initial();
                        failures = 0;
                    }
                    failures += 1;
                    let file_ended = had_frames
                        && why == END_OF_STREAM
                        && matches!(self.source, Source::File { .. });
                    if file_ended {
                        info!(camera = %name, source = %self.source, "Camera file ended; playing it again.");
                    } else if failures == 1 {
                        warn!(
                            camera = %name,
                            source = %self.source,
                            reason = %why,
                            retry_in_ms = backoff.as_millis() as u64,
                            "Camera lost; reconnecting."
                        );
                    } else {
                        debug!(
                            camera = %name,
                            reason = %why,
                            attempt = failures,
                            retry_in_ms = backoff.as_millis() as u64,
                            "Camera still unreachable."
                        );
                    }
                    if self.shared.sleep(backoff) {
                        break;
                    }
                    backoff = (backoff * 2).min(self.config.backoff_max());
                }
            }
        }
        self.shared.mark_down(None);
        self.shared.slot.close();
        info!(camera = %name, "Camera stopped.");
    }

    /// Builds the pipeline, plays it until it fails, stalls or shutdown is requested, and
    /// always leaves it in the Null state.
    fn session(&self, failures: u64) -> SessionEnd {
        let pipeline =
            match gst::parse::launch_full(&self.description, None, gst::ParseFlags::FATAL_ERRORS) {
                Ok(element) => element,
                Err(e) => {
                    return SessionEnd::Failed {
                        why: format!("cannot build pipeline: {e}"),
                        had_frames: false,
                    };
                }
            };
        let seq_at_start = self.shared.seq.load(Ordering::Acquire);
        let end = self.play(&pipeline, failures);
        if let Err(e) = pipeline.set_state(gst::State::Null) {
            warn!(camera = %self.shared.name, error = %e, "Camera pipeline refused the Null state.");
        }
        match end {
            Ok(()) => SessionEnd::Stopped,
            Err(why) => SessionEnd::Failed {
                why,
                had_frames: self.shared.seq.load(Ordering::Acquire) > seq_at_start,
            },
        }
    }

    /// Plays `pipeline`; `Ok` on shutdown, `Err(why)` on failure.
    fn play(&self, pipeline: &gst::Element, failures: u64) -> std::result::Result<(), String> {
        let bin = pipeline
            .downcast_ref::<gst::Bin>()
            .ok_or("pipeline description did not make a bin")?;
        let sink = bin
            .by_name(SINK_NAME)
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or("pipeline has no appsink")?;
        let shared = self.shared.clone();
        let mut capture_failures: u64 = 0;
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    let now = Instant::now();
                    let seq = shared.seq.fetch_add(1, Ordering::AcqRel);
                    match capture(&sample, seq, now) {
                        Ok(frame) => {
                            shared.on_frame(now);
                            if shared.slot.put(frame) {
                                shared.series.skipped.inc();
                            }
                        }
                        Err(why) => {
                            shared.series.decode_errors.inc();
                            capture_failures += 1;
                            if capture_failures == 1 {
                                warn!(camera = %shared.name, reason = %why, "Camera frame unusable.");
                            }
                        }
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        if self.decode == DecodePath::Cpu
            && let Some(decodebin) = bin.by_name(DECODEBIN_NAME)
        {
            cpu_decoders_only(&decodebin);
        }
        let bus = pipeline.bus().ok_or("pipeline has no bus")?;
        let started = Instant::now();
        if pipeline.set_state(gst::State::Playing).is_err() {
            // The reason is on the bus.
            let why = bus
                .pop_filtered(&[gst::MessageType::Error])
                .and_then(|m| match m.view() {
                    gst::MessageView::Error(e) => Some(describe_error(&m, &e.error(), e.debug())),
                    _ => None,
                })
                .unwrap_or_else(|| "pipeline refused to play".into());
            return Err(why);
        }
        if failures == 0 {
            debug!(camera = %self.shared.name, "Camera pipeline playing.");
        }
        let mut qos_dropped: HashMap<String, u64> = HashMap::new();
        let mut flowing = false;
        loop {
            if self.shared.stopping() {
                return Ok(());
            }
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64))
            {
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        let err = e.error();
                        if is_decode_problem(&msg, &err) {
                            self.shared.series.decode_errors.inc();
                        }
                        return Err(describe_error(&msg, &err, e.debug()));
                    }
                    gst::MessageView::Eos(_) => return Err(END_OF_STREAM.into()),
                    gst::MessageView::Warning(w) => {
                        let err = w.error();
                        if is_decode_problem(&msg, &err) {
                            self.shared.series.decode_errors.inc();
                        }
                        debug!(
                            camera = %self.shared.name,
                            warning = %describe_error(&msg, &err, w.debug()),
                            "Camera pipeline warning."
                        );
                    }
                    gst::MessageView::Qos(q) => {
                        let (_, dropped) = q.stats();
                        if let Ok(dropped) = u64::try_from(dropped.value()) {
                            let src = msg
                                .src()
                                .map(|s| s.path_string().to_string())
                                .unwrap_or_default();
                            let seen = qos_dropped.entry(src).or_insert(0);
                            if dropped > *seen {
                                self.shared.series.dropped.inc_by(dropped - *seen);
                                *seen = dropped;
                            }
                        }
                    }
                    _ => {}
                }
            }
            let now = Instant::now();
            self.shared.tick(now);
            let last = self.shared.stats().last_frame.filter(|&t| t >= started);
            match last {
                Some(t) => {
                    if !flowing {
                        flowing = true;
                        info!(
                            camera = %self.shared.name,
                            source = %self.source,
                            decode = %self.decode,
                            after_failures = failures,
                            "Camera frames flowing."
                        );
                    }
                    let idle = now.saturating_duration_since(t);
                    if idle > self.config.stall_timeout() {
                        return Err(format!("no frame for {} ms (stalled)", idle.as_millis()));
                    }
                }
                None => {
                    if now.saturating_duration_since(started) > self.config.connect_timeout() {
                        return Err(format!(
                            "no first frame within {} ms",
                            self.config.connect_timeout_ms
                        ));
                    }
                }
            }
        }
    }
}

fn describe_error(msg: &gst::Message, err: &glib::Error, debug: Option<glib::GString>) -> String {
    let src = msg
        .src()
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| "pipeline".into());
    match debug {
        Some(d) => format!("{src}: {err} ({})", d.lines().last().unwrap_or("")),
        None => format!("{src}: {err}"),
    }
}

/// A decoder complained, or a stream could not be decoded.
fn is_decode_problem(msg: &gst::Message, err: &glib::Error) -> bool {
    if matches!(
        err.kind::<gst::StreamError>(),
        Some(gst::StreamError::Decode | gst::StreamError::Demux)
    ) {
        return true;
    }
    msg.src()
        .and_then(|s| s.downcast_ref::<gst::Element>())
        .and_then(|e| e.factory())
        .is_some_and(|f| f.klass().contains("Decoder"))
}

/// Keeps `decodebin` away from hardware decoders (`decode = cpu` with `codec = auto`).
fn cpu_decoders_only(decodebin: &gst::Element) {
    let Some(result_type) = glib::Type::from_name("GstAutoplugSelectResult") else {
        warn!("decodebin's GstAutoplugSelectResult type not found; hardware decoders not excluded");
        return;
    };
    // GST_AUTOPLUG_SELECT_TRY = 0, GST_AUTOPLUG_SELECT_SKIP = 2.
    let value = move |n: i32| glib::EnumClass::with_type(result_type).and_then(|c| c.to_value(n));
    if value(2).is_none() {
        return;
    }
    decodebin.connect("autoplug-select", false, move |args| {
        let hardware = args
            .get(3)
            .and_then(|v| v.get::<gst::ElementFactory>().ok())
            .is_some_and(|f| f.klass().contains("Hardware"));
        value(if hardware { 2 } else { 0 })
    });
}
