//! Unit tests: configuration, the pure pipeline builder (data-driven, rendered to text), the
//! frame hand-over, scene rendering, and a `test://` camera on real GStreamer.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use expect_test::{Expect, expect};

use super::config::redact;
use super::frame::rgb_stride;
use super::*;

/// Element factories of this machine's kind: everything but NVIDIA.
const CPU_BOX: &[&str] = &[
    "appsink",
    "capsfilter",
    "rtspsrc",
    "v4l2src",
    "filesrc",
    "multifilesrc",
    "videotestsrc",
    "decodebin",
    "rtph264depay",
    "rtpjpegdepay",
    "h264parse",
    "avdec_h264",
    "openh264dec",
    "jpegdec",
    "videorate",
    "videoconvert",
    "videoscale",
];
/// A machine with GStreamer's nvcodec elements too.
const GPU_BOX: &[&str] = &[
    "nvh264dec",
    "cudaupload",
    "cudaconvert",
    "cudadownload",
    "cudascale",
];

fn has_on(gpu: bool, without: &'static [&'static str]) -> impl Fn(&str) -> bool {
    move |e: &str| !without.contains(&e) && (CPU_BOX.contains(&e) || (gpu && GPU_BOX.contains(&e)))
}

/// Renders plan + description (or the error) for each case.
fn check_pipelines(cases: &[(&str, CameraConfig, bool, &'static [&'static str])], want: Expect) {
    let mut out = String::new();
    for (label, config, gpu, without) in cases {
        let _ = writeln!(out, "## {label}");
        let result = config.validate().and_then(|source| {
            Ok((
                Plan::resolve(config, &source, has_on(*gpu, without))?,
                source,
            ))
        });
        match result {
            Ok((plan, source)) => {
                let _ = writeln!(out, "decode: {} ({})", plan.decode, plan.reason);
                let _ = writeln!(
                    out,
                    "{}",
                    describe(config, &source, &plan).replace(" ! ", "\n  ! ")
                );
            }
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
            }
        }
    }
    want.assert_eq(&out);
}

fn cam(source: &str) -> CameraConfig {
    CameraConfig::new("front", source)
}

fn with(source: &str, f: impl FnOnce(&mut CameraConfig)) -> CameraConfig {
    let mut c = cam(source);
    f(&mut c);
    c
}

#[test]
fn pipeline_descriptions() {
    let rtsp = "rtsp://cam.lane-3.local:554/stream1";
    check_pipelines(
        &[
            ("rtsp auto codec, cpu box", cam(rtsp), false, &[]),
            ("rtsp auto codec, gpu box", cam(rtsp), true, &[]),
            (
                "rtsp auto codec, gpu box, decode = cpu",
                with(rtsp, |c| c.decode = DecodeChoice::Cpu),
                true,
                &[],
            ),
            (
                "rtsp h264 scaled and rate-capped, udp, cpu box",
                with(rtsp, |c| {
                    c.codec = Codec::H264;
                    c.width = Some(640);
                    c.height = Some(480);
                    c.fps = Some(10);
                    c.tcp = false;
                    c.latency_ms = 50;
                }),
                false,
                &[],
            ),
            (
                "rtsp h264 without libav falls back to openh264dec",
                with(rtsp, |c| c.codec = Codec::H264),
                false,
                &["avdec_h264"],
            ),
            (
                "rtsp h264 scaled, gpu box",
                with(rtsp, |c| {
                    c.codec = Codec::H264;
                    c.width = Some(640);
                    c.height = Some(480);
                    c.fps = Some(15);
                }),
                true,
                &[],
            ),
            (
                "rtsp h264 scaled, gpu box without cudascale: cpu",
                with(rtsp, |c| {
                    c.codec = Codec::H264;
                    c.width = Some(640);
                    c.height = Some(480);
                }),
                true,
                &["cudascale"],
            ),
            (
                "rtsp mjpeg, gpu box: cpu",
                with(rtsp, |c| c.codec = Codec::Mjpeg),
                true,
                &[],
            ),
            (
                "rtsp mjpeg, decode = gpu: error",
                with(rtsp, |c| {
                    c.codec = Codec::Mjpeg;
                    c.decode = DecodeChoice::Gpu;
                }),
                true,
                &[],
            ),
            (
                "rtsp h264, decode = gpu on a cpu box: error",
                with(rtsp, |c| {
                    c.codec = Codec::H264;
                    c.decode = DecodeChoice::Gpu;
                }),
                false,
                &[],
            ),
            (
                "credentials stay in the description",
                cam("rtsp://admin:s3cret@10.0.0.7/live"),
                false,
                &[],
            ),
            ("v4l2 auto", cam("v4l2:///dev/video0"), false, &[]),
            (
                "v4l2 mjpeg",
                with("v4l2:///dev/video2", |c| c.codec = Codec::Mjpeg),
                false,
                &[],
            ),
            (
                "file",
                cam("file:///var/lib/clearway/lane3.mp4"),
                false,
                &[],
            ),
            (
                "image sequence at 5 fps",
                with("file:///srv/frames/img%05d.jpg", |c| c.fps = Some(5)),
                false,
                &[],
            ),
            ("test pattern, default", cam("test://"), true, &[]),
            (
                "test pattern ball scaled",
                with("test://ball", |c| {
                    c.width = Some(320);
                    c.height = Some(240);
                }),
                false,
                &[],
            ),
            (
                "rtsp without rtspsrc: error",
                cam(rtsp),
                false,
                &["rtspsrc"],
            ),
            (
                "h264 without any cpu decoder: error",
                with(rtsp, |c| c.codec = Codec::H264),
                false,
                &["avdec_h264", "openh264dec"],
            ),
        ],
        expect![[r###"
            ## rtsp auto codec, cpu box
            decode: cpu (decode = auto and no NVIDIA nvcodec elements (nvh264dec missing))
            rtspsrc name=src location="rtsp://cam.lane-3.local:554/stream1" latency=200 drop-on-latency=true protocols=tcp tcp-timeout=10000000
              ! application/x-rtp,media=video
              ! decodebin name=decode
              ! videoconvert
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## rtsp auto codec, gpu box
            decode: gpu (decode = auto and the NVIDIA nvcodec elements are installed)
            rtspsrc name=src location="rtsp://cam.lane-3.local:554/stream1" latency=200 drop-on-latency=true protocols=tcp tcp-timeout=10000000
              ! application/x-rtp,media=video
              ! decodebin name=decode
              ! cudaupload
              ! cudaconvert
              ! video/x-raw(memory:CUDAMemory),format=RGB
              ! cudadownload
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## rtsp auto codec, gpu box, decode = cpu
            decode: cpu (decode = cpu)
            rtspsrc name=src location="rtsp://cam.lane-3.local:554/stream1" latency=200 drop-on-latency=true protocols=tcp tcp-timeout=10000000
              ! application/x-rtp,media=video
              ! decodebin name=decode
              ! videoconvert
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## rtsp h264 scaled and rate-capped, udp, cpu box
            decode: cpu (decode = auto and no NVIDIA nvcodec elements (nvh264dec missing))
            rtspsrc name=src location="rtsp://cam.lane-3.local:554/stream1" latency=50 drop-on-latency=true tcp-timeout=10000000
              ! application/x-rtp,media=video
              ! rtph264depay
              ! h264parse
              ! avdec_h264 name=decoder
              ! videorate drop-only=true max-rate=10
              ! videoconvert
              ! videoscale
              ! video/x-raw,format=RGB,width=640,height=480,pixel-aspect-ratio=1/1
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## rtsp h264 without libav falls back to openh264dec
            decode: cpu (decode = auto and no NVIDIA nvcodec elements (nvh264dec missing))
            rtspsrc name=src location="rtsp://cam.lane-3.local:554/stream1" latency=200 drop-on-latency=true protocols=tcp tcp-timeout=10000000
              ! application/x-rtp,media=video
              ! rtph264depay
              ! h264parse
              ! openh264dec name=decoder
              ! videoconvert
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## rtsp h264 scaled, gpu box
            decode: gpu (decode = auto and the NVIDIA nvcodec elements are installed)
            rtspsrc name=src location="rtsp://cam.lane-3.local:554/stream1" latency=200 drop-on-latency=true protocols=tcp tcp-timeout=10000000
              ! application/x-rtp,media=video
              ! rtph264depay
              ! h264parse
              ! nvh264dec name=decoder
              ! cudaupload
              ! cudascale
              ! cudaconvert
              ! video/x-raw(memory:CUDAMemory),format=RGB,width=640,height=480,pixel-aspect-ratio=1/1
              ! cudadownload
              ! videorate drop-only=true max-rate=15
              ! video/x-raw,format=RGB,width=640,height=480,pixel-aspect-ratio=1/1
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## rtsp h264 scaled, gpu box without cudascale: cpu
            decode: cpu (decode = auto and no NVIDIA nvcodec elements (cudascale missing))
            rtspsrc name=src location="rtsp://cam.lane-3.local:554/stream1" latency=200 drop-on-latency=true protocols=tcp tcp-timeout=10000000
              ! application/x-rtp,media=video
              ! rtph264depay
              ! h264parse
              ! avdec_h264 name=decoder
              ! videoconvert
              ! videoscale
              ! video/x-raw,format=RGB,width=640,height=480,pixel-aspect-ratio=1/1
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## rtsp mjpeg, gpu box: cpu
            decode: cpu (decode = auto; MJPEG is decoded on the CPU)
            rtspsrc name=src location="rtsp://cam.lane-3.local:554/stream1" latency=200 drop-on-latency=true protocols=tcp tcp-timeout=10000000
              ! application/x-rtp,media=video
              ! rtpjpegdepay
              ! jpegdec name=decoder
              ! videoconvert
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## rtsp mjpeg, decode = gpu: error
            error: invalid configuration: camera "front": decode = gpu, but MJPEG is decoded on the CPU; use decode = auto or cpu
            ## rtsp h264, decode = gpu on a cpu box: error
            error: invalid configuration: camera "front": GStreamer element "nvh264dec" not found (install gstreamer1.0-plugins-bad with NVIDIA nvcodec, or set decode = auto/cpu)
            ## credentials stay in the description
            decode: cpu (decode = auto and no NVIDIA nvcodec elements (nvh264dec missing))
            rtspsrc name=src location="rtsp://admin:s3cret@10.0.0.7/live" latency=200 drop-on-latency=true protocols=tcp tcp-timeout=10000000
              ! application/x-rtp,media=video
              ! decodebin name=decode
              ! videoconvert
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## v4l2 auto
            decode: cpu (decode = auto and no NVIDIA nvcodec elements (nvh264dec missing))
            v4l2src name=src device="/dev/video0"
              ! decodebin name=decode
              ! videoconvert
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## v4l2 mjpeg
            decode: cpu (decode = auto; MJPEG is decoded on the CPU)
            v4l2src name=src device="/dev/video2"
              ! image/jpeg
              ! jpegdec name=decoder
              ! videoconvert
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## file
            decode: cpu (decode = auto and no NVIDIA nvcodec elements (nvh264dec missing))
            filesrc name=src location="/var/lib/clearway/lane3.mp4"
              ! decodebin name=decode
              ! videoconvert
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=true max-buffers=1 drop=true
            ## image sequence at 5 fps
            decode: cpu (decode = auto; image-sequence sources are decoded on the CPU)
            multifilesrc name=src location="/srv/frames/img%05d.jpg" index=0 loop=true caps="image/jpeg,framerate=5/1"
              ! jpegdec name=decoder
              ! videorate drop-only=true max-rate=5
              ! videoconvert
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=true max-buffers=1 drop=true
            ## test pattern, default
            decode: cpu (decode = auto; test-pattern sources are decoded on the CPU)
            videotestsrc name=src is-live=true pattern=smpte
              ! videoconvert
              ! video/x-raw,format=RGB
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## test pattern ball scaled
            decode: cpu (decode = auto; test-pattern sources are decoded on the CPU)
            videotestsrc name=src is-live=true pattern=ball
              ! videoconvert
              ! videoscale
              ! video/x-raw,format=RGB,width=320,height=240,pixel-aspect-ratio=1/1
              ! appsink name=sink sync=false max-buffers=1 drop=true
            ## rtsp without rtspsrc: error
            error: invalid configuration: camera "front": GStreamer element "rtspsrc" not found (install gstreamer1.0-plugins-good)
            ## h264 without any cpu decoder: error
            error: invalid configuration: camera "front": GStreamer element "openh264dec" not found (install gstreamer1.0-libav for avdec_h264, or gstreamer1.0-plugins-bad with openh264)
        "###]],
    );
}

#[test]
fn config_validation() {
    let cases: Vec<(&str, CameraConfig)> = vec![
        ("ok", cam("rtsp://127.0.0.1:8554/camera")),
        ("ok ipv6", cam("rtsp://[::1]:8554/camera")),
        ("empty name", CameraConfig::new("", "test://")),
        (
            "name with space",
            CameraConfig::new("front door", "test://"),
        ),
        ("long name", CameraConfig::new("x".repeat(65), "test://")),
        ("empty source", cam("")),
        ("no scheme", cam("/dev/video0")),
        ("http", cam("http://cam/stream")),
        ("rtsp no host", cam("rtsp:///stream")),
        ("rtsp bad port", cam("rtsp://cam:99999/stream")),
        ("rtsp port 0", cam("rtsp://cam:0/stream")),
        ("quote", cam("rtsp://cam/\"x")),
        ("space", cam("file:///tmp/my video.mp4")),
        ("newline", cam("rtsp://cam/a\nb")),
        ("v4l2 not dev", cam("v4l2:///tmp/video0")),
        ("file relative", cam("file://video.mp4")),
        ("unknown pattern", cam("test://plaid")),
        (
            "codec on a file",
            with("file:///a.mp4", |c| c.codec = Codec::H264),
        ),
        ("width alone", with("test://", |c| c.width = Some(640))),
        (
            "tiny frame",
            with("test://", |c| {
                c.width = Some(8);
                c.height = Some(8);
            }),
        ),
        ("fps 0", with("test://", |c| c.fps = Some(0))),
        (
            "latency too big",
            with("test://", |c| c.latency_ms = 60_000),
        ),
        (
            "stall too short",
            with("test://", |c| c.stall_timeout_ms = 10),
        ),
        (
            "connect below stall",
            with("test://", |c| c.connect_timeout_ms = 1000),
        ),
        (
            "backoff max below initial",
            with("test://", |c| {
                c.backoff_initial_ms = 500;
                c.backoff_max_ms = 100;
            }),
        ),
    ];
    let mut out = String::new();
    for (label, c) in &cases {
        let line = match c.validate() {
            Ok(source) => format!("ok {source}"),
            Err(e) => format!("{e}"),
        };
        let _ = writeln!(out, "{label}: {line}");
    }
    expect![[r#"
        ok: ok rtsp://127.0.0.1:8554/camera
        ok ipv6: ok rtsp://[::1]:8554/camera
        empty name: invalid configuration: camera "": name must be 1 to 64 of A-Z a-z 0-9 _ - .
        name with space: invalid configuration: camera "front door": name must be 1 to 64 of A-Z a-z 0-9 _ - .
        long name: invalid configuration: camera "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx": name must be 1 to 64 of A-Z a-z 0-9 _ - .
        empty source: invalid configuration: camera "front": camera source "": empty; expected rtsp://, v4l2:///dev/videoN, file:///path or test://
        no scheme: invalid configuration: camera "front": camera source "/dev/video0": no scheme; expected rtsp://, v4l2:///dev/videoN, file:///path or test://
        http: invalid configuration: camera "front": camera source "http://cam/stream": unsupported scheme "http"; expected rtsp://, v4l2:///dev/videoN, file:///path or test://
        rtsp no host: invalid configuration: camera "front": camera source "rtsp:///stream": no host; expected rtsp://host[:port]/path
        rtsp bad port: invalid configuration: camera "front": camera source "rtsp://cam:99999/stream": port "99999" is not 1 to 65535
        rtsp port 0: invalid configuration: camera "front": camera source "rtsp://cam:0/stream": port "0" is not 1 to 65535
        quote: invalid configuration: camera "front": camera source "rtsp://cam/\"x": contains '"'; spaces, quotes, backslashes and control characters are not allowed (percent-encode them)
        space: invalid configuration: camera "front": camera source "file:///tmp/my video.mp4": contains ' '; spaces, quotes, backslashes and control characters are not allowed (percent-encode them)
        newline: invalid configuration: camera "front": camera source "rtsp://cam/a\nb": contains '\n'; spaces, quotes, backslashes and control characters are not allowed (percent-encode them)
        v4l2 not dev: invalid configuration: camera "front": camera source "v4l2:///tmp/video0": expected v4l2:///dev/videoN
        file relative: invalid configuration: camera "front": camera source "file://video.mp4": expected an absolute path: file:///path/to/video.mp4
        unknown pattern: invalid configuration: camera "front": camera source "test://plaid": unknown test pattern "plaid"; one of smpte, snow, black, white, red, green, blue, checkers-1, checkers-2, checkers-4, checkers-8, circular, blink, smpte75, zone-plate, gamut, chroma-zone-plate, solid-color, ball, smpte100, bar, pinwheel, spokes, gradient, colors, smpte-rp-219
        codec on a file: invalid configuration: camera "front": codec h264 applies to rtsp:// and v4l2:// sources only, not to a file source
        width alone: invalid configuration: camera "front": width and height go together
        tiny frame: invalid configuration: camera "front": width 8 is not 16 to 4096
        fps 0: invalid configuration: camera "front": fps 0 is not 1 to 120
        latency too big: invalid configuration: camera "front": latency_ms 60000 is over 10000
        stall too short: invalid configuration: camera "front": stall_timeout_ms 10 is not 100 to 60000
        connect below stall: invalid configuration: camera "front": connect_timeout_ms 1000 is not stall_timeout_ms (2000) to 120000
        backoff max below initial: invalid configuration: camera "front": backoff_max_ms 100 is not backoff_initial_ms (500) to 60000
    "#]].assert_eq(&out);
}

#[test]
fn config_serde_defaults_and_unknown_fields() {
    let c: CameraConfig =
        toml::from_str("name = \"front\"\nsource = \"rtsp://cam/stream\"\n").expect("parses");
    assert_eq!(c, CameraConfig::new("front", "rtsp://cam/stream"));
    assert_eq!(c.latency_ms, 200);
    assert!(c.tcp);
    assert_eq!(
        (c.stall_timeout_ms, c.backoff_initial_ms, c.backoff_max_ms),
        (2000, 250, 2000)
    );
    let c: CameraConfig = toml::from_str(
        "name = \"f\"\nsource = \"v4l2:///dev/video0\"\ncodec = \"mjpeg\"\ndecode = \"cpu\"\nwidth = 640\nheight = 480\nfps = 10\n",
    )
    .expect("parses");
    assert_eq!((c.codec, c.decode), (Codec::Mjpeg, DecodeChoice::Cpu));
    let e = toml::from_str::<CameraConfig>("name = \"f\"\nsource = \"test://\"\nlatency = 5\n")
        .expect_err("unknown field");
    assert!(e.to_string().contains("unknown field `latency`"), "{e}");
    let e =
        toml::from_str::<CameraConfig>("name = \"f\"\nsource = \"test://\"\ndecode = \"tpu\"\n")
            .expect_err("unknown variant");
    assert!(e.to_string().contains("unknown variant `tpu`"), "{e}");
}

#[test]
fn redaction() {
    assert_eq!(
        redact("rtsp://admin:pw@10.0.0.7:554/live?x=1"),
        "rtsp://***@10.0.0.7:554/live?x=1"
    );
    assert_eq!(redact("rtsp://10.0.0.7/a@b"), "rtsp://10.0.0.7/a@b");
    assert_eq!(redact("rtsp://u@h/"), "rtsp://***@h/");
    let e = Source::parse("rtsp://admin:pw@h:99999/x").expect_err("bad port");
    assert!(!e.to_string().contains("pw"), "{e}");
}

#[test]
fn rgb_strides() {
    // 641 × 3 = 1923 bytes a row, padded to 1924.
    assert_eq!(rgb_stride(641, 2, 1924 * 2), Some(1924));
    assert_eq!(rgb_stride(641, 2, 1923 * 2), Some(1923));
    assert_eq!(rgb_stride(640, 480, 640 * 3 * 480), Some(1920));
    assert_eq!(rgb_stride(640, 480, 100), None);
    assert_eq!(rgb_stride(0, 480, 100), None);
}

fn frame_for(seq: u64) -> CapturedFrame {
    let buffer = gstreamer::Buffer::from_slice(vec![seq as u8; 4 * 3 * 2])
        .into_mapped_buffer_readable()
        .expect("readable");
    CapturedFrame {
        buffer,
        width: 4,
        height: 2,
        stride: 12,
        seq,
        pts: None,
        arrived: Instant::now(),
    }
}

#[test]
fn slot_keeps_the_newest_and_counts_skips() {
    gstreamer::init().expect("gstreamer");
    let slot = std::sync::Arc::new(super::frame::Slot::default());
    let frames = Frames { slot: slot.clone() };
    assert!(frames.try_next().is_none());
    assert!(!slot.put(frame_for(0)));
    assert!(slot.put(frame_for(1)), "frame 0 was never taken");
    assert!(slot.put(frame_for(2)));
    let f = frames.try_next().expect("newest");
    assert_eq!(f.seq(), 2);
    assert_eq!(f.frame_ref().expect("valid").width(), 4);
    assert_eq!(f.data()[0], 2);
    assert!(frames.try_next().is_none());
    assert!(!slot.put(frame_for(3)), "slot was empty");
    assert_eq!(
        frames
            .next_blocking(Duration::from_millis(1))
            .map(|f| f.seq()),
        Some(3)
    );
    assert!(frames.next_blocking(Duration::from_millis(10)).is_none());
    slot.close();
    assert!(frames.is_closed());
    assert!(frames.next_blocking(Duration::from_secs(5)).is_none());
    assert!(!slot.put(frame_for(4)), "closed slot takes nothing");
}

#[tokio::test]
async fn async_consumer_wakes_on_put_and_close() {
    gstreamer::init().expect("gstreamer");
    let slot = std::sync::Arc::new(super::frame::Slot::default());
    let frames = Frames { slot: slot.clone() };
    let waiter = tokio::spawn({
        let frames = frames.clone();
        async move { frames.next().await.map(|f| f.seq()) }
    });
    tokio::task::yield_now().await;
    slot.put(frame_for(7));
    assert_eq!(waiter.await.expect("task"), Some(7));
    let waiter = tokio::spawn(async move { frames.next().await.map(|f| f.seq()) });
    tokio::task::yield_now().await;
    slot.close();
    assert_eq!(waiter.await.expect("task"), None);
}

#[test]
fn scene_specs() {
    assert_eq!(Scene::parse_spec("empty").expect("ok"), Scene::Empty);
    assert_eq!(
        Scene::parse_spec(" /a.jpg ").expect("ok"),
        Scene::Photo("/a.jpg".into())
    );
    assert_eq!(
        Scene::parse_spec("/a.jpg, /b.jpg").expect("ok"),
        Scene::Photos(vec!["/a.jpg".into(), "/b.jpg".into()])
    );
    assert!(Scene::parse_spec("  ").is_err());
    assert_eq!(
        Scene::parse_spec("/x/a.jpg,/y/b.jpg")
            .expect("ok")
            .describe(),
        "a.jpg + b.jpg"
    );
}

#[test]
fn sim_config_validation() {
    assert!(SimConfig::default().validate().is_ok());
    let bad = [
        SimConfig {
            width: 641,
            ..SimConfig::default()
        },
        SimConfig {
            height: 32,
            ..SimConfig::default()
        },
        SimConfig {
            fps: 0,
            ..SimConfig::default()
        },
        SimConfig {
            mount: "camera".into(),
            ..SimConfig::default()
        },
        SimConfig {
            mount: "/a b".into(),
            ..SimConfig::default()
        },
        SimConfig {
            address: "localhost".into(),
            ..SimConfig::default()
        },
    ];
    for c in bad {
        let e = c.validate().expect_err("invalid");
        assert_eq!(e.code(), "config", "{e}");
    }
}

#[test]
fn render_empty_and_unreadable_photos() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = sim::render(&Scene::Empty, 64, 64).expect("renders");
    assert_eq!(empty.len(), 64 * 3 * 64);
    assert!(
        empty
            .chunks(3)
            .all(|px| px == empty[..3].to_vec().as_slice())
    );
    // Not an image at all.
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, b"hello").expect("write");
    let e = sim::render(&Scene::Photo(text.clone()), 64, 64).expect_err("not an image");
    assert_eq!(e.code(), "image", "{e}");
    assert!(e.to_string().contains("notes.jpg"), "{e}");
    // Missing.
    let e =
        sim::render(&Scene::Photo(dir.path().join("missing.jpg")), 64, 64).expect_err("missing");
    assert_eq!(e.code(), "io", "{e}");
    // Too many to fit side by side.
    let many = Scene::Photos(vec![text; 5]);
    assert!(sim::render(&many, 64, 64).is_err());
}

#[test]
fn render_fits_a_photo_with_margins() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A tall red photo (PNG: lossless), 50 × 100.
    let path = dir.path().join("red.png");
    let img = image::RgbImage::from_pixel(50, 100, image::Rgb([250, 10, 10]));
    img.save(&path).expect("save");
    let (w, h) = (128u32, 64u32);
    let px = sim::render(&Scene::Photo(path.clone()), w, h).expect("renders");
    let at = |x: u32, y: u32| &px[(y * w * 3 + x * 3) as usize..][..3];
    // Fitted to 32 × 64, centred: columns 48..80 red, the rest background.
    assert_eq!(at(64, 32), &[250, 10, 10]);
    assert_ne!(at(5, 32), &[250, 10, 10]);
    assert_ne!(at(120, 32), &[250, 10, 10]);
    // Two side by side: each in a 64-wide half.
    let px2 = sim::render(&Scene::Photos(vec![path.clone(), path]), w, h).expect("renders");
    let at2 = |x: u32, y: u32| &px2[(y * w * 3 + x * 3) as usize..][..3];
    assert_eq!(at2(32, 32), &[250, 10, 10]);
    assert_eq!(at2(96, 32), &[250, 10, 10]);
    assert_ne!(at2(64, 32), &[250, 10, 10]);
}

/// Waits (polling) until `cond` holds or `limit` passes.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// A camera's sample of metric `name`, read through the text exposition format.
fn counter(registry: &prometheus::Registry, name: &str, camera: &str) -> f64 {
    use prometheus::Encoder;
    let mut out = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("encode");
    let prefix = format!("{name}{{camera=\"{camera}\"}} ");
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(f64::NAN)
}

#[test]
fn test_source_delivers_rgb_frames() {
    let registry = prometheus::Registry::new();
    let metrics = CameraMetrics::new(&registry).expect("metrics");
    let config = with("test://ball", |c| {
        c.name = "unit-test".into();
        c.width = Some(322); // 966 bytes a row: padded to 968
        c.height = Some(240);
        c.fps = Some(20);
    });
    let camera = Camera::spawn(config, &metrics).expect("spawn");
    assert_eq!(camera.decode_path(), DecodePath::Cpu);
    let frames = camera.frames();
    let frame = frames
        .next_blocking(Duration::from_secs(20))
        .expect("a frame");
    assert_eq!((frame.width(), frame.height()), (322, 240));
    assert_eq!(frame.stride(), 968);
    let r = frame.frame_ref().expect("valid frame");
    assert_eq!((r.width(), r.height()), (322, 240));
    assert!(frame.data().len() >= 968 * 239 + 966);
    let first = frame.seq();
    drop(frame);
    let later = frames
        .next_blocking(Duration::from_secs(10))
        .expect("another frame");
    assert!(later.seq() > first);
    assert!(wait_for(Duration::from_secs(10), || {
        counter(&registry, "clearway_camera_frames_total", "unit-test") >= 5.0
    }));
    assert!(wait_for(Duration::from_secs(5), || camera.health().up));
    let health = camera.health();
    assert!(health.fps > 0.0 && health.fps <= 25.0, "{health:?}");
    assert_eq!(health.reconnects, 0);
    assert_eq!(counter(&registry, "clearway_camera_up", "unit-test"), 1.0);
    // Frames nobody took while we waited were replaced by newer ones: skipped.
    assert!(wait_for(Duration::from_secs(10), || {
        counter(
            &registry,
            "clearway_camera_skipped_frames_total",
            "unit-test",
        ) >= 1.0
    }));
    camera.shutdown();
    assert!(frames.is_closed());
    assert_eq!(counter(&registry, "clearway_camera_up", "unit-test"), 0.0);
}

#[test]
fn spawn_refuses_bad_configs_without_panicking() {
    gstreamer::init().expect("gstreamer");
    let registry = prometheus::Registry::new();
    let metrics = CameraMetrics::new(&registry).expect("metrics");
    for (config, says) in [
        (cam("ftp://cam/stream"), "unsupported scheme"),
        (
            cam("file:///definitely/not/here.mp4"),
            "not a readable file",
        ),
        (
            with("test://", |c| c.decode = DecodeChoice::Gpu),
            "decoded on the CPU",
        ),
    ]
    .into_iter()
    .chain(
        // Only where NVIDIA's elements are absent (this is the CPU CI machine's case).
        gstreamer::ElementFactory::find("nvh264dec")
            .is_none()
            .then(|| {
                (
                    with("rtsp://127.0.0.1:1/x", |c| {
                        c.codec = Codec::H264;
                        c.decode = DecodeChoice::Gpu;
                    }),
                    "nvh264dec",
                )
            }),
    ) {
        match Camera::spawn(config, &metrics) {
            Ok(_) => panic!("spawned; expected an error saying {says:?}"),
            Err(e) => assert!(e.to_string().contains(says), "{e} (wanted {says:?})"),
        }
    }
    // The same registry twice is refused, not a panic.
    assert!(CameraMetrics::new(&registry).is_err());
}

#[test]
fn image_sequence_source_loops_through_jpegs() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, shade) in [40u8, 200].into_iter().enumerate() {
        let img = image::RgbImage::from_pixel(96, 64, image::Rgb([shade, shade, shade]));
        img.save(dir.path().join(format!("img{i:03}.jpg")))
            .expect("save jpeg");
    }
    let registry = prometheus::Registry::new();
    let metrics = CameraMetrics::new(&registry).expect("metrics");
    let source = format!("file://{}/img%03d.jpg", dir.path().display());
    let camera = Camera::spawn(with(&source, |c| c.fps = Some(20)), &metrics).expect("spawn");
    let frames = camera.frames();
    let mut shades = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while shades.len() < 2 && Instant::now() < deadline {
        if let Some(f) = frames.next_blocking(Duration::from_secs(1)) {
            assert_eq!((f.width(), f.height()), (96, 64));
            shades.insert(f.data()[0] > 120);
        }
    }
    assert_eq!(
        shades.len(),
        2,
        "both images seen; health {:?}",
        camera.health()
    );
    camera.shutdown();
}

#[test]
fn simulator_args_parse() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: sim::Args,
    }
    let cli = Cli::try_parse_from([
        "sim",
        "--port",
        "0",
        "--codec",
        "mjpeg",
        "--scene",
        "/a.jpg,/b.jpg",
        "--control",
        "127.0.0.1:8555",
    ])
    .expect("parses");
    assert_eq!(cli.args.port, 0);
    assert_eq!(cli.args.codec, SimCodec::Mjpeg);
    assert_eq!(
        (cli.args.width, cli.args.height, cli.args.fps),
        (640, 480, 10)
    );
    assert_eq!(cli.args.mount, "/camera");
    assert!(cli.args.control.is_some());
    assert!(Cli::try_parse_from(["sim", "--codec", "vp8"]).is_err());
}

/// Encodes `frames` frames of a test pattern into an MP4 file with GStreamer itself.
fn make_mp4(path: &std::path::Path, frames: u32) {
    use gstreamer::prelude::*;
    gstreamer::init().expect("gstreamer");
    let pipeline = gstreamer::parse::launch(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=160,height=120,framerate=10/1 \
         ! videoconvert ! openh264enc ! h264parse ! mp4mux ! filesink location=\"{}\"",
        path.display()
    ))
    .expect("encoder pipeline");
    pipeline
        .set_state(gstreamer::State::Playing)
        .expect("playing");
    let bus = pipeline.bus().expect("bus");
    let msg = bus
        .timed_pop_filtered(
            gstreamer::ClockTime::from_seconds(60),
            &[gstreamer::MessageType::Eos, gstreamer::MessageType::Error],
        )
        .expect("encoder finished");
    assert_eq!(msg.type_(), gstreamer::MessageType::Eos, "{msg:?}");
    pipeline.set_state(gstreamer::State::Null).expect("null");
}

#[test]
fn file_source_plays_in_real_time_and_starts_again_at_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lane.mp4");
    make_mp4(&path, 5); // half a second at 10 fps
    let registry = prometheus::Registry::new();
    let metrics = CameraMetrics::new(&registry).expect("metrics");
    let camera = Camera::spawn(
        with(&format!("file://{}", path.display()), |c| {
            c.backoff_initial_ms = 20;
        }),
        &metrics,
    )
    .expect("spawn");
    let frames = camera.frames();
    let f = frames
        .next_blocking(Duration::from_secs(20))
        .expect("a frame");
    assert_eq!((f.width(), f.height()), (160, 120));
    // The end of the file tears the pipeline down and plays it again.
    assert!(wait_for(Duration::from_secs(20), || camera
        .health()
        .reconnects
        >= 2));
    assert!(
        frames.next_blocking(Duration::from_secs(20)).is_some(),
        "frames after the restart"
    );
    // Paced by timestamps (sync = true): 5 frames a pass at 10 fps, not thousands a second.
    let health = camera.health();
    assert!(health.fps <= 15.0, "{health:?}");
    camera.shutdown();
}
