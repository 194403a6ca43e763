//! The RTSP camera **simulator**: a real RTSP server (gst-rtsp-server) serving a live H.264 (or
//! MJPEG) stream whose picture is a scene switched at run time — an empty background, one photo,
//! or several photos side by side — built from real JPEG files. For demos and tests only: it
//! stands in for a lane's IP camera; it is never a camera.
//!
//! Pipeline of the one shared media: `appsrc` (the scene, raw RGB at a fixed rate, timestamped)
//! `! videoconvert ! openh264enc ! h264parse ! rtph264pay` (or `jpegenc ! rtpjpegpay`). Several
//! clients see the same stream. [`SimHandle::stop`] really stops the server (listening socket
//! closed, clients disconnected); [`SimHandle::restart`] listens again on the same port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::gio;
use gst_rtsp_server::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as gst_rtsp_server;
use image::ImageDecoder;
use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::face::Frame;

/// Name of the appsrc inside the simulator's media.
const APPSRC_NAME: &str = "scene";
/// Background of the empty scene and of the margins around photos (a neutral grey-blue).
const BACKGROUND: [u8; 3] = [88, 96, 108];

/// The simulator's stream encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SimCodec {
    /// H.264 with `openh264enc`, a key frame every second.
    #[default]
    H264,
    /// Motion JPEG (`jpegenc`); sizes must be multiples of 8.
    Mjpeg,
}

/// What the simulated camera shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scene {
    /// The empty channel: a plain background.
    Empty,
    /// One photo, scaled to fit (aspect kept, margins in the background colour).
    Photo(PathBuf),
    /// Several photos side by side, each fitted into an equal slice of the picture.
    Photos(Vec<PathBuf>),
}

impl Scene {
    /// Parses a scene spec: `empty`, a photo path, or several paths separated by `,`.
    pub fn parse_spec(spec: &str) -> Result<Scene> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(Error::Config(
                "empty scene spec; expected `empty`, a photo path, or paths separated by ','"
                    .into(),
            ));
        }
        if spec == "empty" {
            return Ok(Scene::Empty);
        }
        let paths: Vec<PathBuf> = spec
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        Ok(match paths.len() {
            0 => Scene::Empty,
            1 => Scene::Photo(paths.into_iter().next().unwrap_or_default()),
            _ => Scene::Photos(paths),
        })
    }

    fn paths(&self) -> &[PathBuf] {
        match self {
            Scene::Empty => &[],
            Scene::Photo(p) => std::slice::from_ref(p),
            Scene::Photos(ps) => ps,
        }
    }

    /// A one-line description for logs (file names only).
    pub fn describe(&self) -> String {
        match self {
            Scene::Empty => "empty".into(),
            _ => self
                .paths()
                .iter()
                .map(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| p.display().to_string())
                })
                .collect::<Vec<_>>()
                .join(" + "),
        }
    }
}

/// The simulator's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Address to listen on. Default `127.0.0.1`.
    pub address: String,
    /// Port to listen on; 0 picks a free one (see [`SimHandle::port`]). Default 0.
    pub listen_port: u16,
    /// Mount path, starting with `/`. Default `/camera`.
    pub mount: String,
    /// Picture width (64 to 1920, a multiple of 8). Default 640.
    pub width: u32,
    /// Picture height (64 to 1080, a multiple of 8). Default 480.
    pub height: u32,
    /// Frames a second (1 to 60). Default 10.
    pub fps: u32,
    /// Encoding. Default H.264.
    pub codec: SimCodec,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            address: "127.0.0.1".into(),
            listen_port: 0,
            mount: "/camera".into(),
            width: 640,
            height: 480,
            fps: 10,
            codec: SimCodec::H264,
        }
    }
}

impl SimConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Error::Config(format!("camera simulator: {why}"));
        if self.address.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(format!(
                "address {:?} is not an IP address",
                self.address
            )));
        }
        if !self.mount.starts_with('/')
            || self.mount.len() < 2
            || self.mount.len() > 200
            || !self.mount[1..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
        {
            return Err(bad(format!(
                "mount {:?} must be / followed by 1 to 199 of A-Z a-z 0-9 _ - . /",
                self.mount
            )));
        }
        for (what, v, max) in [("width", self.width, 1920), ("height", self.height, 1080)] {
            if !(64..=max).contains(&v) || v % 8 != 0 {
                return Err(bad(format!(
                    "{what} {v} is not a multiple of 8 from 64 to {max}"
                )));
            }
        }
        if !(1..=60).contains(&self.fps) {
            return Err(bad(format!("fps {} is not 1 to 60", self.fps)));
        }
        Ok(())
    }

    /// The media's `gst-launch` description.
    fn launch(&self) -> String {
        let encode = match self.codec {
            SimCodec::H264 => format!(
                "openh264enc gop-size={} bitrate=2000000 complexity=low ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1",
                self.fps
            ),
            SimCodec::Mjpeg => "jpegenc quality=85 ! rtpjpegpay name=pay0 pt=26".into(),
        };
        format!(
            "( appsrc name={APPSRC_NAME} is-live=false format=time ! videoconvert ! video/x-raw,format=I420 ! {encode} )"
        )
    }
}

/// One rendered picture: packed RGB, rows padded to 4 bytes (GStreamer's default layout).
struct Picture(Arc<Vec<u8>>);

impl AsRef<[u8]> for Picture {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// GStreamer's default row stride for packed RGB.
fn stride_of(width: u32) -> usize {
    (width as usize * 3).div_ceil(4) * 4
}

/// Decodes a photo (EXIF orientation applied; truncated or unreadable files are errors).
fn open_photo(path: &Path) -> Result<image::RgbImage> {
    // The face pipeline's own reader says whether the photo is usable, with its messages.
    Frame::open(path)?;
    let bad = |reason: String| Error::Image {
        path: path.display().to_string(),
        reason,
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let mut decoder = reader.into_decoder().map_err(|e| bad(e.to_string()))?;
    let orientation = decoder.orientation().map_err(|e| bad(e.to_string()))?;
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| bad(e.to_string()))?;
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

/// Renders `scene` as `width`×`height` packed RGB, rows padded to a multiple of 4 bytes
/// (GStreamer's default layout).
pub fn render(scene: &Scene, width: u32, height: u32) -> Result<Vec<u8>> {
    let stride = stride_of(width);
    let mut out = vec![0u8; stride * height as usize];
    for row in out.chunks_exact_mut(stride) {
        for px in row[..width as usize * 3].chunks_exact_mut(3) {
            px.copy_from_slice(&BACKGROUND);
        }
    }
    let paths = scene.paths();
    if paths.is_empty() {
        return Ok(out);
    }
    let n = paths.len() as u32;
    if n > width / 16 {
        return Err(Error::Config(format!(
            "camera simulator: {n} photos do not fit side by side in {width} pixels"
        )));
    }
    let cell_w = width / n;
    for (i, path) in paths.iter().enumerate() {
        let photo = open_photo(path)?;
        let (pw, ph) = photo.dimensions();
        let scale = f64::min(cell_w as f64 / pw as f64, height as f64 / ph as f64);
        let dw = ((pw as f64 * scale).round() as u32).clamp(1, cell_w);
        let dh = ((ph as f64 * scale).round() as u32).clamp(1, height);
        let scaled = image::imageops::resize(&photo, dw, dh, image::imageops::FilterType::Triangle);
        let x0 = i as u32 * cell_w + (cell_w - dw) / 2;
        let y0 = (height - dh) / 2;
        for (y, src) in scaled.as_raw().chunks_exact(dw as usize * 3).enumerate() {
            let start = (y0 as usize + y) * stride + x0 as usize * 3;
            out[start..start + src.len()].copy_from_slice(src);
        }
    }
    Ok(out)
}

struct State {
    /// Whether the server is listening.
    listening: bool,
}

thread_local! {
    /// The listening socket and its source, owned by the simulator's main-loop thread (each
    /// simulator has its own), so that `stop` can close the socket there at once.
    static LISTENER: std::cell::RefCell<Option<(gio::Socket, glib::Source)>> =
        const { std::cell::RefCell::new(None) };
}

/// Starts simulators.
pub struct CameraSimulator;

/// A running simulator. Dropping it stops the server and its main loop.
pub struct SimHandle {
    config: SimConfig,
    port: u16,
    server: gst_rtsp_server::RTSPServer,
    context: glib::MainContext,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    picture: Arc<Mutex<Arc<Vec<u8>>>>,
    scene: Mutex<Scene>,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CameraSimulator {
    /// Starts the simulator on `config.address:config.listen_port`, showing the empty scene.
    pub fn start(config: SimConfig) -> Result<SimHandle> {
        config.validate()?;
        gst::init().map_err(|e| Error::Config(format!("gstreamer: cannot initialise: {e}")))?;
        let needed: &[&str] = match config.codec {
            SimCodec::H264 => &[
                "appsrc",
                "videoconvert",
                "openh264enc",
                "h264parse",
                "rtph264pay",
            ],
            SimCodec::Mjpeg => &["appsrc", "videoconvert", "jpegenc", "rtpjpegpay"],
        };
        if let Some(absent) = needed
            .iter()
            .find(|e| gst::ElementFactory::find(e).is_none())
        {
            return Err(Error::Config(format!(
                "camera simulator: GStreamer element {absent:?} not found"
            )));
        }
        let picture = Arc::new(Mutex::new(Arc::new(render(
            &Scene::Empty,
            config.width,
            config.height,
        )?)));

        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address(&config.address);
        server.set_service(&config.listen_port.to_string());
        let mounts = server
            .mount_points()
            .ok_or_else(|| Error::Config("camera simulator: server without mount points".into()))?;
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(&config.launch());
        factory.set_shared(true);
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", config.width as i32)
            .field("height", config.height as i32)
            .field("framerate", gst::Fraction::new(config.fps as i32, 1))
            .build();
        let frame_duration = gst::ClockTime::SECOND / u64::from(config.fps);
        let media_picture = picture.clone();
        factory.connect_media_configure(move |_, media| {
            let element = media.element();
            let Some(appsrc) = element
                .downcast_ref::<gst::Bin>()
                .and_then(|bin| bin.by_name(APPSRC_NAME))
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            else {
                warn!("Camera simulator media has no appsrc.");
                return;
            };
            appsrc.set_caps(Some(&caps));
            appsrc.set_format(gst::Format::Time);
            let picture = media_picture.clone();
            let mut n: u64 = 0;
            appsrc.set_callbacks(
                gst_app::AppSrcCallbacks::builder()
                    .need_data(move |src, _| {
                        let bytes = lock(&picture).clone();
                        let mut buffer = gst::Buffer::from_slice(Picture(bytes));
                        if let Some(b) = buffer.get_mut() {
                            b.set_pts(frame_duration * n);
                            b.set_duration(frame_duration);
                        }
                        n += 1;
                        // Flushing while the media shuts down: nothing to do.
                        let _ = src.push_buffer(buffer);
                    })
                    .build(),
            );
            debug!("Camera simulator media configured.");
        });
        mounts.add_factory(&config.mount, factory);

        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let thread = {
            let (context, main_loop) = (context.clone(), main_loop.clone());
            std::thread::Builder::new()
                .name("rtsp-sim".into())
                .spawn(move || {
                    let run = context.with_thread_default(|| main_loop.run());
                    if run.is_err() {
                        warn!("Camera simulator: main context busy; loop not run.");
                    }
                })
                .map_err(|e| Error::Config(format!("camera simulator: cannot start thread: {e}")))?
        };
        let mut handle = SimHandle {
            config,
            port: 0,
            server,
            context,
            main_loop,
            thread: Some(thread),
            picture,
            scene: Mutex::new(Scene::Empty),
            state: Mutex::new(State { listening: false }),
        };
        handle.port = handle.listen()?;
        // A restart must come back on the same port, even when 0 picked it.
        handle.server.set_service(&handle.port.to_string());
        info!(
            simulator = true,
            url = %handle.url(),
            codec = ?handle.config.codec,
            width = handle.config.width,
            height = handle.config.height,
            fps = handle.config.fps,
            "RTSP camera simulator listening (a simulator, not a camera)."
        );
        Ok(handle)
    }
}

impl SimHandle {
    /// Runs `f` on the simulator's main-loop thread and waits for its answer (`None` if the loop
    /// does not run it within five seconds: it has stopped).
    fn on_loop<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.context.invoke(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(5)).ok()
    }

    /// Listens (if not already); returns the bound port.
    fn listen(&self) -> Result<u16> {
        let mut state = lock(&self.state);
        if state.listening {
            return Ok(self.port);
        }
        let (server, context) = (self.server.clone(), self.context.clone());
        let made = self.on_loop(move || -> std::result::Result<u16, String> {
            let socket = server
                .create_socket(None::<&gio::Cancellable>)
                .map_err(|e| e.to_string())?;
            let port = socket
                .local_address()
                .ok()
                .and_then(|a| a.downcast::<gio::InetSocketAddress>().ok())
                .map(|a| a.port())
                .ok_or("no local address")?;
            let io_server = server.clone();
            let source = gio::prelude::SocketExtManual::create_source(
                &socket,
                glib::IOCondition::IN | glib::IOCondition::PRI,
                None::<&gio::Cancellable>,
                Some("rtsp-camera-simulator"),
                glib::Priority::DEFAULT,
                move |socket, condition| match gst_rtsp_server::RTSPServer::io_func(
                    socket, condition, &io_server,
                ) {
                    Ok(()) => glib::ControlFlow::Continue,
                    Err(_) => glib::ControlFlow::Break,
                },
            );
            source.attach(Some(&context));
            LISTENER.with(|l| *l.borrow_mut() = Some((socket, source)));
            Ok(port)
        });
        match made {
            Some(Ok(port)) => {
                state.listening = true;
                Ok(port)
            }
            Some(Err(e)) => Err(Error::Config(format!(
                "camera simulator: cannot listen on {}:{}: {e}",
                self.config.address,
                self.server.service()
            ))),
            None => Err(Error::Config(
                "camera simulator: its main loop has stopped".into(),
            )),
        }
    }

    /// `rtsp://address:port/mount`.
    pub fn url(&self) -> String {
        let addr = match self.config.address.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, self.port).to_string(),
            Err(_) => format!("{}:{}", self.config.address, self.port),
        };
        format!("rtsp://{addr}{}", self.config.mount)
    }

    /// The port the server listens on (stays the same across [`SimHandle::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The simulator's settings (with the actual port).
    pub fn config(&self) -> SimConfig {
        SimConfig {
            listen_port: self.port,
            ..self.config.clone()
        }
    }

    /// Switches the picture. Photos are decoded now: one that cannot be read is an error and the
    /// current scene stays.
    pub fn show(&self, scene: Scene) -> Result<()> {
        let bytes = render(&scene, self.config.width, self.config.height)?;
        *lock(&self.picture) = Arc::new(bytes);
        info!(simulator = true, scene = %scene.describe(), "Camera simulator scene switched.");
        *lock(&self.scene) = scene;
        Ok(())
    }

    /// The scene being shown.
    pub fn scene(&self) -> Scene {
        lock(&self.scene).clone()
    }

    /// Whether the server is listening.
    pub fn is_running(&self) -> bool {
        lock(&self.state).listening
    }

    /// RTSP clients connected now.
    pub fn clients(&self) -> usize {
        self.server.client_filter(None).len()
    }

    /// Stops the server: closes the listening socket and disconnects every client, so cameras
    /// lose the stream. [`SimHandle::restart`] brings it back on the same port.
    pub fn stop(&self) {
        let mut state = lock(&self.state);
        if !state.listening {
            return;
        }
        state.listening = false;
        // Close the listening socket itself (the server keeps a reference to it, so dropping the
        // source alone would leave the port open).
        self.on_loop(|| {
            if let Some((socket, source)) = LISTENER.with(|l| l.borrow_mut().take()) {
                source.destroy();
                if let Err(e) = socket.close() {
                    warn!(error = %e, "Camera simulator: closing the listening socket failed.");
                }
            }
        });
        let mut removed = 0usize;
        self.server.client_filter(Some(&mut |_, _| {
            removed += 1;
            gst_rtsp_server::RTSPFilterResult::Remove
        }));
        info!(simulator = true, url = %self.url(), clients = removed, "Camera simulator stopped.");
    }

    /// Listens again on the same port (after [`SimHandle::stop`]).
    pub fn restart(&self) -> Result<()> {
        let port = self.listen()?;
        debug_assert_eq!(port, self.port);
        info!(simulator = true, url = %self.url(), "Camera simulator restarted.");
        Ok(())
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
        self.main_loop.quit();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("Camera simulator thread panicked.");
        }
    }
}

/// `clearway-node camera-sim`: serve one simulated camera.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: String,
    /// RTSP port (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8554)]
    pub port: u16,
    /// Mount path.
    #[arg(long, default_value = "/camera")]
    pub mount: String,
    /// Picture width (multiple of 8).
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Picture height (multiple of 8).
    #[arg(long, default_value_t = 480)]
    pub height: u32,
    /// Frames a second.
    #[arg(long, default_value_t = 10)]
    pub fps: u32,
    /// Stream encoding.
    #[arg(long, value_enum, default_value_t = SimCodec::H264)]
    pub codec: SimCodec,
    /// First scene: `empty`, a photo, or photos separated by ','.
    #[arg(long, default_value = "empty")]
    pub scene: String,
    /// Also take control over HTTP on this address (e.g. 127.0.0.1:8555): `PUT /scene` with a
    /// scene spec as the body, `GET /scene`, `POST /stop`, `POST /start`.
    #[arg(long)]
    pub control: Option<SocketAddr>,
}

/// Serves one simulated camera until Ctrl-C. Scenes are switched by lines on standard input (a
/// scene spec, or `stop` / `start`) and, with `--control`, over HTTP.
pub async fn run(args: Args) -> Result<()> {
    let config = SimConfig {
        address: args.address.clone(),
        listen_port: args.port,
        mount: args.mount.clone(),
        width: args.width,
        height: args.height,
        fps: args.fps,
        codec: args.codec,
    };
    let first = Scene::parse_spec(&args.scene)?;
    let sim = tokio::task::spawn_blocking(move || -> Result<SimHandle> {
        let sim = CameraSimulator::start(config)?;
        sim.show(first)?;
        Ok(sim)
    })
    .await
    .map_err(|e| Error::Config(format!("camera simulator: start task failed: {e}")))??;
    let sim = Arc::new(sim);
    println!("{}", sim.url());

    if let Some(addr) = args.control {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Config(format!("camera simulator: control {addr}: {e}")))?;
        info!(simulator = true, control = %addr, "Camera simulator control listening.");
        let app = control_router(sim.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                warn!(error = %e, "Camera simulator control server failed.");
            }
        });
    }

    let stdin_sim = sim.clone();
    let stdin_task = tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim().is_empty() {
                continue;
            }
            match command(&stdin_sim, &line).await {
                Ok(said) => println!("{said}"),
                Err(e) => eprintln!("error: {e}"),
            }
        }
    });
    let ctrl_c = tokio::signal::ctrl_c().await;
    stdin_task.abort();
    if let Err(e) = ctrl_c {
        warn!(error = %e, "Cannot wait for Ctrl-C; stopping the camera simulator.");
    }
    let _ = tokio::task::spawn_blocking(move || drop(sim)).await;
    Ok(())
}

/// One control command: `stop`, `start`, or a scene spec.
async fn command(sim: &Arc<SimHandle>, line: &str) -> Result<String> {
    let sim = sim.clone();
    let line = line.trim().to_string();
    tokio::task::spawn_blocking(move || match line.as_str() {
        "stop" => {
            sim.stop();
            Ok("stopped".to_string())
        }
        "start" => sim.restart().map(|()| "started".to_string()),
        spec => {
            let scene = Scene::parse_spec(spec)?;
            let said = scene.describe();
            sim.show(scene)?;
            Ok(format!("scene {said}"))
        }
    })
    .await
    .map_err(|e| Error::Config(format!("camera simulator: command task failed: {e}")))?
}

/// The HTTP control of a simulator: `PUT /scene` (body: a scene spec), `GET /scene`,
/// `POST /stop`, `POST /start`. Answers are one line of text; a bad scene is a 400 with the reason.
pub fn control_router(sim: Arc<SimHandle>) -> axum::Router {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::{get, post};

    type Reply = (StatusCode, String);
    fn reply(r: Result<String>) -> Reply {
        match r {
            Ok(s) => (StatusCode::OK, s + "\n"),
            Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
        }
    }
    async fn put_scene(State(sim): State<Arc<SimHandle>>, body: String) -> Reply {
        if matches!(body.trim(), "stop" | "start") {
            return (
                StatusCode::BAD_REQUEST,
                "not a scene; use POST /stop or /start\n".into(),
            );
        }
        reply(command(&sim, &body).await)
    }
    async fn get_scene(State(sim): State<Arc<SimHandle>>) -> Reply {
        (StatusCode::OK, sim.scene().describe() + "\n")
    }
    async fn stop(State(sim): State<Arc<SimHandle>>) -> Reply {
        reply(command(&sim, "stop").await)
    }
    async fn start(State(sim): State<Arc<SimHandle>>) -> Reply {
        reply(command(&sim, "start").await)
    }
    axum::Router::new()
        .route("/scene", get(get_scene).put(put_scene))
        .route("/stop", post(stop))
        .route("/start", post(start))
        .with_state(sim)
}
