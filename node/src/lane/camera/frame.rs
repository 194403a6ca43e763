//! Captured frames and their hand-over: the newest frame waits in a one-place slot; a frame the
//! consumer never took is replaced by the next one and counted as skipped.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::buffer::{MappedBuffer, Readable};
use gstreamer as gst;

use crate::error::Result;
use crate::face::FrameRef;

/// One decoded frame: the GStreamer buffer itself, mapped readable (no copy), packed RGB8.
#[derive(Debug)]
pub struct CapturedFrame {
    pub(super) buffer: MappedBuffer<Readable>,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) stride: usize,
    pub(super) seq: u64,
    pub(super) pts: Option<Duration>,
    pub(super) arrived: Instant,
}

impl CapturedFrame {
    /// The pixels, borrowed, as the face pipeline takes them.
    pub fn frame_ref(&self) -> Result<FrameRef<'_>> {
        FrameRef::new(self.width, self.height, self.stride, self.buffer.as_slice())
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes from one row to the next (at least `3 * width`).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The raw bytes (`height` rows `stride` apart).
    pub fn data(&self) -> &[u8] {
        self.buffer.as_slice()
    }

    /// The camera's frame number, counting from 0 across reconnects.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The buffer's presentation timestamp in the pipeline's running time, if any.
    pub fn pts(&self) -> Option<Duration> {
        self.pts
    }

    /// When the frame reached the application.
    pub fn arrived(&self) -> Instant {
        self.arrived
    }
}

/// The row stride of packed RGB (GStreamer's default layout pads rows to 4 bytes), checked
/// against the buffer's size.
pub(super) fn rgb_stride(width: u32, height: u32, size: usize) -> Option<usize> {
    let row = width as usize * 3;
    let padded = row.div_ceil(4) * 4;
    let h = height as usize;
    if h == 0 || row == 0 {
        return None;
    }
    [padded, row]
        .into_iter()
        .find(|&stride| size >= stride * (h - 1) + row && size <= stride * h)
}

#[derive(Default)]
struct SlotState {
    frame: Option<CapturedFrame>,
    closed: bool,
}

/// The one-place hand-over between the camera driver and the consumer.
#[derive(Default)]
pub(super) struct Slot {
    state: Mutex<SlotState>,
    ready: Condvar,
    notify: tokio::sync::Notify,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // A panic while holding this lock cannot leave the state inconsistent (it is two
        // plain fields), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers a frame; returns true when it replaced one the consumer never took.
    pub(super) fn put(&self, frame: CapturedFrame) -> bool {
        let replaced = {
            let mut s = self.lock();
            if s.closed {
                return false;
            }
            s.frame.replace(frame).is_some()
        };
        self.ready.notify_all();
        self.notify.notify_waiters();
        replaced
    }

    /// No more frames: wakes every waiter.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
        self.notify.notify_waiters();
    }

    fn take(&self) -> (Option<CapturedFrame>, bool) {
        let mut s = self.lock();
        (s.frame.take(), s.closed)
    }
}

/// The consumer's end: always the newest frame. Meant for one consumer (the vision stage); two
/// would split the frames between them.
#[derive(Clone)]
pub struct Frames {
    pub(super) slot: Arc<Slot>,
}

impl Frames {
    /// The newest frame not yet taken, waiting for one; `None` once the camera has shut down.
    pub async fn next(&self) -> Option<CapturedFrame> {
        loop {
            let notified = self.slot.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.slot.take() {
                (Some(frame), _) => return Some(frame),
                (None, true) => return None,
                (None, false) => notified.await,
            }
        }
    }

    /// The newest frame not yet taken, if there is one.
    pub fn try_next(&self) -> Option<CapturedFrame> {
        self.slot.take().0
    }

    /// The newest frame not yet taken, waiting up to `timeout` (blocking: not on an async
    /// runtime's thread). `None` on timeout or once the camera has shut down ([`Frames::is_closed`]).
    pub fn next_blocking(&self, timeout: Duration) -> Option<CapturedFrame> {
        let deadline = Instant::now() + timeout;
        let mut s = self.slot.lock();
        loop {
            if let Some(frame) = s.frame.take() {
                return Some(frame);
            }
            let now = Instant::now();
            if s.closed || now >= deadline {
                return None;
            }
            s = self
                .slot
                .ready
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Whether the camera has shut down (no frame will come any more).
    pub fn is_closed(&self) -> bool {
        self.slot.lock().closed
    }
}

/// Maps a sample's buffer into a frame without copying the pixels.
pub(super) fn capture(
    sample: &gst::Sample,
    seq: u64,
    arrived: Instant,
) -> std::result::Result<CapturedFrame, String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let s = caps.structure(0).ok_or("empty caps")?;
    if s.get::<&str>("format").ok() != Some("RGB") {
        return Err(format!("unexpected caps {caps}"));
    }
    let width = s.get::<i32>("width").map_err(|e| e.to_string())?;
    let height = s.get::<i32>("height").map_err(|e| e.to_string())?;
    let (Ok(width), Ok(height)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(format!("bad size {width}x{height}"));
    };
    let buffer = sample.buffer_owned().ok_or("sample without buffer")?;
    let pts = buffer.pts().map(Duration::from);
    let size = buffer.size();
    let stride = rgb_stride(width, height, size)
        .ok_or_else(|| format!("{size} bytes do not hold {width}x{height} RGB"))?;
    let buffer = buffer
        .into_mapped_buffer_readable()
        .map_err(|_| "buffer not readable".to_string())?;
    Ok(CapturedFrame {
        buffer,
        width,
        height,
        stride,
        seq,
        pts,
        arrived,
    })
}
