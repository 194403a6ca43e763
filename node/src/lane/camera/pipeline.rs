//! The capture pipeline as a `gst-launch` description, built by pure functions: which decode path
//! a camera takes ([`Plan::resolve`], given which element factories exist) and the description
//! itself ([`describe`]). Nothing here touches GStreamer, so every source/codec/decode case is a
//! plain unit test; the driver hands the string to `gst::parse::launch`.

use std::fmt;

use super::config::{CameraConfig, Codec, DecodeChoice, Source};
use crate::error::{Error, Result};

/// Name of the `appsink` in every description.
pub const SINK_NAME: &str = "sink";
/// Name of the `decodebin` in `codec = auto` descriptions.
pub const DECODEBIN_NAME: &str = "decode";
/// Name of the explicit decoder element in `h264` / `mjpeg` descriptions.
pub const DECODER_NAME: &str = "decoder";

/// The NVIDIA elements the GPU path needs (GStreamer's `nvcodec` plugin).
pub const GPU_ELEMENTS: &[&str] = &["nvh264dec", "cudaupload", "cudaconvert", "cudadownload"];
/// The extra NVIDIA element the GPU path needs to scale.
pub const GPU_SCALE_ELEMENT: &str = "cudascale";

/// Where frames are decoded and converted to RGB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodePath {
    /// Software decoders, `videoconvert`, `videoscale`.
    Cpu,
    /// `nvh264dec` (or whatever `decodebin` picks), colour conversion and scaling in CUDA memory,
    /// one download of the finished RGB frame.
    Gpu,
}

impl fmt::Display for DecodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodePath::Cpu => "cpu",
            DecodePath::Gpu => "gpu",
        })
    }
}

/// The choices made once at start-up: the decode path and, on the CPU, the H.264 decoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// CPU or GPU.
    pub decode: DecodePath,
    /// The CPU H.264 decoder: `avdec_h264` (libav), else `openh264dec`.
    pub h264_decoder: &'static str,
    /// Why this path (for the start-up log line).
    pub reason: String,
}

impl Plan {
    /// Chooses the decode path for `config` reading `source`, given which element factories
    /// exist (`has("nvh264dec")`), and checks that every element the description will name is
    /// there, so that a missing plugin is an error at start-up, not an endless reconnect loop.
    pub fn resolve(
        config: &CameraConfig,
        source: &Source,
        has: impl Fn(&str) -> bool,
    ) -> Result<Plan> {
        let name = &config.name;
        let missing = |element: &str, package: &str| {
            Error::Config(format!(
                "camera {name:?}: GStreamer element {element:?} not found (install {package})"
            ))
        };
        let scaled = config.width.is_some();
        let gpu_elements = || {
            GPU_ELEMENTS
                .iter()
                .copied()
                .chain(scaled.then_some(GPU_SCALE_ELEMENT))
        };
        let gpu_installed = gpu_elements().all(&has);
        // Pictures that can use an NVIDIA decoder: H.264 or whatever decodebin finds.
        let gpu_applies = match source {
            Source::Test { .. } | Source::ImageSequence { .. } => false,
            _ => config.codec != Codec::Mjpeg,
        };
        let (decode, reason) = match config.decode {
            DecodeChoice::Cpu => (DecodePath::Cpu, "decode = cpu".to_string()),
            DecodeChoice::Gpu => {
                if !gpu_applies {
                    return Err(Error::Config(format!(
                        "camera {name:?}: decode = gpu, but {}; use decode = auto or cpu",
                        cpu_only(config, source)
                    )));
                }
                if let Some(absent) = gpu_elements().find(|e| !has(e)) {
                    return Err(missing(
                        absent,
                        "gstreamer1.0-plugins-bad with NVIDIA nvcodec, or set decode = auto/cpu",
                    ));
                }
                (DecodePath::Gpu, "decode = gpu".to_string())
            }
            DecodeChoice::Auto if gpu_applies && gpu_installed => (
                DecodePath::Gpu,
                "decode = auto and the NVIDIA nvcodec elements are installed".to_string(),
            ),
            DecodeChoice::Auto if !gpu_applies => (
                DecodePath::Cpu,
                format!("decode = auto; {}", cpu_only(config, source)),
            ),
            DecodeChoice::Auto => (
                DecodePath::Cpu,
                format!(
                    "decode = auto and no NVIDIA nvcodec elements ({} missing)",
                    gpu_elements().find(|e| !has(e)).unwrap_or("?")
                ),
            ),
        };
        let h264_decoder = if has("avdec_h264") {
            "avdec_h264"
        } else {
            "openh264dec"
        };

        let mut needed: Vec<(&str, &str)> = vec![
            ("appsink", "gstreamer1.0-plugins-base"),
            ("capsfilter", "gstreamer1.0 (core)"),
        ];
        match source {
            Source::Rtsp { .. } => needed.push(("rtspsrc", "gstreamer1.0-plugins-good")),
            Source::V4l2 { .. } => needed.push(("v4l2src", "gstreamer1.0-plugins-good")),
            Source::File { .. } => needed.push(("filesrc", "gstreamer1.0 (core)")),
            Source::ImageSequence { .. } => {
                needed.push(("multifilesrc", "gstreamer1.0-plugins-good"));
                needed.push(("jpegdec", "gstreamer1.0-plugins-good"));
            }
            Source::Test { .. } => needed.push(("videotestsrc", "gstreamer1.0-plugins-base")),
        }
        let is_rtsp = matches!(source, Source::Rtsp { .. });
        match (config.codec, source) {
            (_, Source::Test { .. } | Source::ImageSequence { .. }) => {}
            (Codec::Auto, _) => needed.push(("decodebin", "gstreamer1.0-plugins-base")),
            (Codec::H264, _) => {
                if is_rtsp {
                    needed.push(("rtph264depay", "gstreamer1.0-plugins-good"));
                }
                needed.push(("h264parse", "gstreamer1.0-plugins-bad"));
                if decode == DecodePath::Cpu {
                    needed.push((h264_decoder, "gstreamer1.0-libav for avdec_h264, or gstreamer1.0-plugins-bad with openh264"));
                }
            }
            (Codec::Mjpeg, _) => {
                if is_rtsp {
                    needed.push(("rtpjpegdepay", "gstreamer1.0-plugins-good"));
                }
                needed.push(("jpegdec", "gstreamer1.0-plugins-good"));
            }
        }
        if config.fps.is_some() {
            needed.push(("videorate", "gstreamer1.0-plugins-base"));
        }
        if decode == DecodePath::Cpu {
            needed.push(("videoconvert", "gstreamer1.0-plugins-base"));
            if scaled {
                needed.push(("videoscale", "gstreamer1.0-plugins-base"));
            }
        }
        if let Some((element, package)) = needed.into_iter().find(|(e, _)| !has(e)) {
            return Err(missing(element, package));
        }
        Ok(Plan {
            decode,
            h264_decoder,
            reason,
        })
    }
}

/// Why a source is decoded on the CPU whatever the machine has.
fn cpu_only(config: &CameraConfig, source: &Source) -> String {
    if config.codec == Codec::Mjpeg {
        "MJPEG is decoded on the CPU".into()
    } else {
        format!("{} sources are decoded on the CPU", source.kind())
    }
}

/// The `gst-launch` description of `config`'s capture pipeline. Every string value is quoted;
/// [`Source::parse`] has already refused quotes, backslashes and control characters.
pub fn describe(config: &CameraConfig, source: &Source, plan: &Plan) -> String {
    let mut parts: Vec<String> = Vec::new();
    let gpu = plan.decode == DecodePath::Gpu;
    // Live sources are delivered as fast as they come; files and sequences are paced by their
    // timestamps so that they behave like a camera.
    let mut sync = false;
    match source {
        Source::Rtsp { url } => {
            let mut src = format!(
                "rtspsrc name=src location=\"{url}\" latency={} drop-on-latency=true",
                config.latency_ms
            );
            if config.tcp {
                src.push_str(" protocols=tcp");
            }
            // Bound the blocking TCP waits (also the TEARDOWN on shutdown) by the connect timeout.
            src.push_str(&format!(
                " tcp-timeout={}",
                config.connect_timeout_ms * 1000
            ));
            parts.push(src);
            // Only the video stream of a camera that also sends audio.
            parts.push("application/x-rtp,media=video".into());
            match config.codec {
                Codec::Auto => {}
                Codec::H264 => parts.push("rtph264depay".into()),
                Codec::Mjpeg => parts.push("rtpjpegdepay".into()),
            }
        }
        Source::V4l2 { device } => {
            parts.push(format!("v4l2src name=src device=\"{}\"", device.display()));
            match config.codec {
                Codec::Auto => {}
                Codec::H264 => parts.push("video/x-h264".into()),
                Codec::Mjpeg => parts.push("image/jpeg".into()),
            }
        }
        Source::File { path } => {
            parts.push(format!("filesrc name=src location=\"{}\"", path.display()));
            sync = true;
        }
        Source::ImageSequence { pattern } => {
            parts.push(format!(
                "multifilesrc name=src location=\"{}\" index=0 loop=true caps=\"image/jpeg,framerate={}/1\"",
                pattern.display(),
                config.fps.unwrap_or(10)
            ));
            parts.push(format!("jpegdec name={DECODER_NAME}"));
            sync = true;
        }
        Source::Test { pattern } => {
            parts.push(format!(
                "videotestsrc name=src is-live=true pattern={pattern}"
            ));
        }
    }
    match (source, config.codec) {
        (Source::Test { .. } | Source::ImageSequence { .. }, _) => {}
        (_, Codec::Auto) => parts.push(format!("decodebin name={DECODEBIN_NAME}")),
        (_, Codec::H264) => {
            parts.push("h264parse".into());
            if gpu {
                parts.push(format!("nvh264dec name={DECODER_NAME}"));
            } else {
                parts.push(format!("{} name={DECODER_NAME}", plan.h264_decoder));
            }
        }
        (_, Codec::Mjpeg) => parts.push(format!("jpegdec name={DECODER_NAME}")),
    }
    let size = match (config.width, config.height) {
        (Some(w), Some(h)) => format!(",width={w},height={h},pixel-aspect-ratio=1/1"),
        _ => String::new(),
    };
    if gpu {
        // Upload is a no-op when the decoder already gives CUDA memory.
        parts.push("cudaupload".into());
        if !size.is_empty() {
            parts.push("cudascale".into());
        }
        parts.push("cudaconvert".into());
        parts.push(format!("video/x-raw(memory:CUDAMemory),format=RGB{size}"));
        parts.push("cudadownload".into());
        if let Some(fps) = config.fps {
            parts.push(format!("videorate drop-only=true max-rate={fps}"));
        }
    } else {
        // Drop surplus frames before paying for their conversion.
        if let Some(fps) = config.fps {
            parts.push(format!("videorate drop-only=true max-rate={fps}"));
        }
        parts.push("videoconvert".into());
        if !size.is_empty() {
            parts.push("videoscale".into());
        }
    }
    parts.push(format!("video/x-raw,format=RGB{size}"));
    parts.push(format!(
        "appsink name={SINK_NAME} sync={sync} max-buffers=1 drop=true"
    ));
    parts.join(" ! ")
}
