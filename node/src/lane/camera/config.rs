//! A camera's configuration: where the pictures come from, how to decode them, the frame size the
//! face pipeline gets, and how hard to try when the camera goes away.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest camera name (it is a metrics label and a log field).
pub const MAX_NAME_LEN: usize = 64;
/// Longest source string.
pub const MAX_SOURCE_LEN: usize = 2048;
/// Largest frame side the camera may be asked to scale to.
pub const MAX_FRAME_SIDE: u32 = 4096;

/// The `videotestsrc` patterns a `test://<pattern>` source may name.
pub const TEST_PATTERNS: &[&str] = &[
    "smpte",
    "snow",
    "black",
    "white",
    "red",
    "green",
    "blue",
    "checkers-1",
    "checkers-2",
    "checkers-4",
    "checkers-8",
    "circular",
    "blink",
    "smpte75",
    "zone-plate",
    "gamut",
    "chroma-zone-plate",
    "solid-color",
    "ball",
    "smpte100",
    "bar",
    "pinwheel",
    "spokes",
    "gradient",
    "colors",
    "smpte-rp-219",
];

/// One camera of a lane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// The camera's name: 1 to 64 of `A-Z a-z 0-9 _ - .`; the `camera` label of its metrics.
    /// Required.
    pub name: String,
    /// Where the pictures come from: `rtsp://[user:pass@]host[:port]/path` (also `rtsps://`),
    /// `v4l2:///dev/videoN`, `file:///path/video.mp4`, `file:///path/img%05d.jpg` (a numbered JPEG
    /// sequence, looped), or `test://[pattern]` (a `videotestsrc` pattern, default `smpte`).
    /// Required.
    pub source: String,
    /// The stream's encoding, for `rtsp://` and `v4l2://` sources: `auto` (let `decodebin`
    /// find out), `h264` or `mjpeg`. Default `auto`.
    #[serde(default)]
    pub codec: Codec,
    /// The RTSP jitter buffer, in milliseconds (0 to 10000). Default 200.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: u32,
    /// RTSP over TCP, interleaved on the control connection (true), or let `rtspsrc` try UDP
    /// first (false). Default true.
    #[serde(default = "default_true")]
    pub tcp: bool,
    /// Width to scale frames to (with `height`; 16 to 4096). Default: the camera's own size.
    #[serde(default)]
    pub width: Option<u32>,
    /// Height to scale frames to (with `width`; 16 to 4096). Default: the camera's own size.
    #[serde(default)]
    pub height: Option<u32>,
    /// Most frames a second to deliver (1 to 120; extra frames are dropped before colour
    /// conversion). Default: the camera's own rate.
    #[serde(default)]
    pub fps: Option<u32>,
    /// No frame for this long while streaming means the camera is stuck: tear down and
    /// reconnect (100 to 60000). Default 2000.
    #[serde(default = "default_stall_timeout_ms")]
    pub stall_timeout_ms: u64,
    /// Longest wait for the first frame after (re)connecting — RTSP handshake plus the first
    /// key frame (`stall_timeout_ms` to 120000). Default 10000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// First pause before reconnecting, doubled after each failure (10 to 60000). Default 250.
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    /// Longest pause before reconnecting (`backoff_initial_ms` to 60000). Default 2000, so that
    /// frames flow again within about five seconds of a camera coming back.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Where to decode: `auto` (NVIDIA decoder when GStreamer's nvcodec elements are installed,
    /// else CPU), `cpu`, or `gpu` (refuse to start without nvcodec). Default `auto`.
    #[serde(default)]
    pub decode: DecodeChoice,
}

fn default_latency_ms() -> u32 {
    200
}
fn default_true() -> bool {
    true
}
fn default_stall_timeout_ms() -> u64 {
    2000
}
fn default_connect_timeout_ms() -> u64 {
    10_000
}
fn default_backoff_initial_ms() -> u64 {
    250
}
fn default_backoff_max_ms() -> u64 {
    2000
}

/// A stream's encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// Let `decodebin` find out.
    #[default]
    Auto,
    /// H.264: `rtph264depay ! h264parse ! decoder`.
    H264,
    /// Motion JPEG: `rtpjpegdepay ! jpegdec`.
    Mjpeg,
}

/// Where the user wants decoding done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecodeChoice {
    /// The GPU when GStreamer's NVIDIA elements are installed, else the CPU.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// Always the GPU; the camera refuses to start without NVIDIA elements.
    Gpu,
}

/// A parsed, checked `source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An RTSP camera (`rtsp://` or `rtsps://`).
    Rtsp {
        /// The URL as given (it may carry credentials: log [`Source::redacted`] instead).
        url: String,
    },
    /// A V4L2 device.
    V4l2 {
        /// `/dev/videoN`.
        device: PathBuf,
    },
    /// A video file, played at its own rate.
    File {
        /// Absolute path.
        path: PathBuf,
    },
    /// A numbered JPEG sequence (`multifilesrc` pattern with a `%d`-style field), looped.
    ImageSequence {
        /// Absolute path pattern.
        pattern: PathBuf,
    },
    /// `videotestsrc`, live.
    Test {
        /// One of [`TEST_PATTERNS`].
        pattern: String,
    },
}

impl Source {
    /// Parses a `source` string.
    pub fn parse(s: &str) -> Result<Source> {
        let bad = |why: &str| Error::Config(format!("camera source {:?}: {why}", redact(s)));
        if s.is_empty() {
            return Err(bad(
                "empty; expected rtsp://, v4l2:///dev/videoN, file:///path or test://",
            ));
        }
        if s.len() > MAX_SOURCE_LEN {
            return Err(bad(&format!("longer than {MAX_SOURCE_LEN} bytes")));
        }
        if let Some(c) = s
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || *c == '"' || *c == '\\')
        {
            return Err(bad(&format!(
                "contains {c:?}; spaces, quotes, backslashes and control characters are not allowed (percent-encode them)"
            )));
        }
        let (scheme, rest) = s.split_once("://").ok_or_else(|| {
            bad("no scheme; expected rtsp://, v4l2:///dev/videoN, file:///path or test://")
        })?;
        match scheme {
            "rtsp" | "rtsps" => {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                let host = authority.rsplit('@').next().unwrap_or("");
                if host.is_empty() || host.starts_with(':') {
                    return Err(bad("no host; expected rtsp://host[:port]/path"));
                }
                if let Some((_, port)) = host.rsplit_once(':')
                    && !host.ends_with(']')
                    && port.parse::<u16>().map_or(true, |p| p == 0)
                {
                    return Err(bad(&format!("port {port:?} is not 1 to 65535")));
                }
                Ok(Source::Rtsp { url: s.to_string() })
            }
            "v4l2" => {
                if !rest.starts_with("/dev/") || rest.len() <= "/dev/".len() {
                    return Err(bad("expected v4l2:///dev/videoN"));
                }
                Ok(Source::V4l2 {
                    device: PathBuf::from(rest),
                })
            }
            "file" => {
                if !rest.starts_with('/') || rest.len() < 2 {
                    return Err(bad("expected an absolute path: file:///path/to/video.mp4"));
                }
                if rest.contains('%') {
                    Ok(Source::ImageSequence {
                        pattern: PathBuf::from(rest),
                    })
                } else {
                    Ok(Source::File {
                        path: PathBuf::from(rest),
                    })
                }
            }
            "test" => {
                let pattern = if rest.is_empty() { "smpte" } else { rest };
                if !TEST_PATTERNS.contains(&pattern) {
                    return Err(bad(&format!(
                        "unknown test pattern {pattern:?}; one of {}",
                        TEST_PATTERNS.join(", ")
                    )));
                }
                Ok(Source::Test {
                    pattern: pattern.to_string(),
                })
            }
            other => Err(bad(&format!(
                "unsupported scheme {other:?}; expected rtsp://, v4l2:///dev/videoN, file:///path or test://"
            ))),
        }
    }

    /// The source for logs: RTSP credentials replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Source::Rtsp { url } => redact(url),
            Source::V4l2 { device } => format!("v4l2://{}", device.display()),
            Source::File { path } => format!("file://{}", path.display()),
            Source::ImageSequence { pattern } => format!("file://{}", pattern.display()),
            Source::Test { pattern } => format!("test://{pattern}"),
        }
    }

    /// The source's kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Rtsp { .. } => "rtsp",
            Source::V4l2 { .. } => "v4l2",
            Source::File { .. } => "file",
            Source::ImageSequence { .. } => "image-sequence",
            Source::Test { .. } => "test-pattern",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces the user-info part of a URL (`user:pass@`) by `***@`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

impl CameraConfig {
    /// A configuration with every default, for `name` reading `source`.
    pub fn new(name: impl Into<String>, source: impl Into<String>) -> CameraConfig {
        CameraConfig {
            name: name.into(),
            source: source.into(),
            codec: Codec::default(),
            latency_ms: default_latency_ms(),
            tcp: true,
            width: None,
            height: None,
            fps: None,
            stall_timeout_ms: default_stall_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            decode: DecodeChoice::default(),
        }
    }

    /// Checks every field; returns the parsed source.
    pub fn validate(&self) -> Result<Source> {
        let name = &self.name;
        let bad = |why: String| Error::Config(format!("camera {name:?}: {why}"));
        if name.is_empty()
            || name.len() > MAX_NAME_LEN
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(bad(format!(
                "name must be 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 _ - ."
            )));
        }
        let source = Source::parse(&self.source).map_err(|e| match e {
            Error::Config(m) => bad(m),
            other => other,
        })?;
        if self.codec != Codec::Auto && !matches!(source, Source::Rtsp { .. } | Source::V4l2 { .. })
        {
            return Err(bad(format!(
                "codec {} applies to rtsp:// and v4l2:// sources only, not to a {} source",
                format!("{:?}", self.codec).to_lowercase(),
                source.kind()
            )));
        }
        if self.latency_ms > 10_000 {
            return Err(bad(format!("latency_ms {} is over 10000", self.latency_ms)));
        }
        match (self.width, self.height) {
            (None, None) => {}
            (Some(w), Some(h)) => {
                for (what, v) in [("width", w), ("height", h)] {
                    if !(16..=MAX_FRAME_SIDE).contains(&v) {
                        return Err(bad(format!("{what} {v} is not 16 to {MAX_FRAME_SIDE}")));
                    }
                }
            }
            _ => return Err(bad("width and height go together".into())),
        }
        if let Some(fps) = self.fps
            && !(1..=120).contains(&fps)
        {
            return Err(bad(format!("fps {fps} is not 1 to 120")));
        }
        if !(100..=60_000).contains(&self.stall_timeout_ms) {
            return Err(bad(format!(
                "stall_timeout_ms {} is not 100 to 60000",
                self.stall_timeout_ms
            )));
        }
        if !(self.stall_timeout_ms..=120_000).contains(&self.connect_timeout_ms) {
            return Err(bad(format!(
                "connect_timeout_ms {} is not stall_timeout_ms ({}) to 120000",
                self.connect_timeout_ms, self.stall_timeout_ms
            )));
        }
        if !(10..=60_000).contains(&self.backoff_initial_ms) {
            return Err(bad(format!(
                "backoff_initial_ms {} is not 10 to 60000",
                self.backoff_initial_ms
            )));
        }
        if !(self.backoff_initial_ms..=60_000).contains(&self.backoff_max_ms) {
            return Err(bad(format!(
                "backoff_max_ms {} is not backoff_initial_ms ({}) to 60000",
                self.backoff_max_ms, self.backoff_initial_ms
            )));
        }
        Ok(source)
    }

    /// `stall_timeout_ms` as a duration.
    pub fn stall_timeout(&self) -> Duration {
        Duration::from_millis(self.stall_timeout_ms)
    }

    /// `connect_timeout_ms` as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// `backoff_initial_ms` as a duration.
    pub fn backoff_initial(&self) -> Duration {
        Duration::from_millis(self.backoff_initial_ms)
    }

    /// `backoff_max_ms` as a duration.
    pub fn backoff_max(&self) -> Duration {
        Duration::from_millis(self.backoff_max_ms)
    }
}
