//! Frames: packed RGB8 pixels, borrowed (a camera buffer) or owned (a decoded photo), and the
//! two pixel operations the models need, written straight into their NCHW `f32` input tensors:
//! a bilinear resize with zero padding (detector) and an affine warp (aligned face for the
//! recogniser). Writing the tensor directly avoids the intermediate images OpenCV's
//! `resize` + `blobFromImage` make.

use std::io::Cursor;
use std::path::Path;

use image::{ImageDecoder, ImageReader};

use super::config::ChannelOrder;
use crate::error::{Error, Result};

/// Largest photo or frame we accept, in pixels per side (guards against decompression bombs).
pub const MAX_SIDE_PX: u32 = 8192;

/// A borrowed packed RGB8 frame (3 bytes a pixel, rows `stride` bytes apart).
#[derive(Clone, Copy, Debug)]
pub struct FrameRef<'a> {
    width: u32,
    height: u32,
    stride: usize,
    data: &'a [u8],
}

impl<'a> FrameRef<'a> {
    /// Checks that `data` holds `height` rows of `stride` bytes with `width` RGB pixels each.
    pub fn new(width: u32, height: u32, stride: usize, data: &'a [u8]) -> Result<FrameRef<'a>> {
        let bad = |reason: String| Error::Image {
            path: "frame".into(),
            reason,
        };
        if width == 0 || height == 0 || width > MAX_SIDE_PX || height > MAX_SIDE_PX {
            return Err(bad(format!(
                "size {width}x{height} outside 1..={MAX_SIDE_PX}"
            )));
        }
        let row = width as usize * 3;
        if stride < row {
            return Err(bad(format!(
                "stride {stride} shorter than a row of {row} bytes"
            )));
        }
        let need = stride * (height as usize - 1) + row;
        if data.len() < need {
            return Err(bad(format!(
                "{} bytes, need {need} for {width}x{height}",
                data.len()
            )));
        }
        Ok(FrameRef {
            width,
            height,
            stride,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The frame shrunk (nearest pixel) so that neither side exceeds `max_side`, as JPEG at
    /// `quality` (1–100): a still for a person to look at, not for analysis.
    pub fn thumbnail_jpeg(&self, max_side: u32, quality: u8) -> Result<Vec<u8>> {
        let longest = self.width.max(self.height);
        let (w, h) = if longest <= max_side.max(1) {
            (self.width, self.height)
        } else {
            let scale = f64::from(max_side.max(1)) / f64::from(longest);
            (
                ((f64::from(self.width) * scale).round() as u32).max(1),
                ((f64::from(self.height) * scale).round() as u32).max(1),
            )
        };
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        for y in 0..h {
            let sy = (u64::from(y) * u64::from(self.height) / u64::from(h)) as usize;
            let row = self.row(sy);
            for x in 0..w {
                let sx = (u64::from(x) * u64::from(self.width) / u64::from(w)) as usize * 3;
                rgb.extend_from_slice(&row[sx..sx + 3]);
            }
        }
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
            .encode(&rgb, w, h, image::ExtendedColorType::Rgb8)
            .map_err(|e| Error::Image {
                path: "still".into(),
                reason: e.to_string(),
            })?;
        Ok(out)
    }

    #[inline]
    pub(crate) fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width as usize * 3]
    }
}

/// An owned packed RGB8 image (a decoded photo).
#[derive(Clone, Debug)]
pub struct Frame {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl Frame {
    /// Wraps packed RGB8 pixels.
    pub fn from_rgb(width: u32, height: u32, data: Vec<u8>) -> Result<Frame> {
        FrameRef::new(width, height, width as usize * 3, &data)?;
        Ok(Frame {
            width,
            height,
            data,
        })
    }

    /// Decodes a JPEG or PNG file, applying its EXIF orientation, dropping alpha.
    pub fn open(path: &Path) -> Result<Frame> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Frame::decode(&bytes, &path.display().to_string())
    }

    /// Decodes JPEG or PNG bytes; `name` is used in error messages.
    pub fn decode(bytes: &[u8], name: &str) -> Result<Frame> {
        let bad = |reason: String| Error::Image {
            path: name.to_string(),
            reason,
        };
        if bytes.is_empty() {
            return Err(bad("empty file".into()));
        }
        let reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(e.to_string()))?;
        match reader.format() {
            None => return Err(bad("unknown format (JPEG or PNG expected)".into())),
            // The JPEG decoder fills a truncated scan with grey instead of failing; a JPEG must
            // end its last scan with an end-of-image marker.
            Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
                return Err(bad(
                    "truncated JPEG (no end-of-image marker after the last scan)".into(),
                ));
            }
            Some(image::ImageFormat::Jpeg) => jpeg_sampling_supported(bytes).map_err(bad)?,
            Some(_) => {}
        }
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_SIDE_PX);
        limits.max_image_height = Some(MAX_SIDE_PX);
        limits.max_alloc = Some(512 * 1024 * 1024);
        let mut decoder = {
            let mut r = reader;
            r.limits(limits);
            r.into_decoder().map_err(|e| bad(e.to_string()))?
        };
        let orientation = decoder.orientation().map_err(|e| bad(e.to_string()))?;
        let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| bad(e.to_string()))?;
        img.apply_orientation(orientation);
        let rgb = img.into_rgb8();
        let (w, h) = rgb.dimensions();
        Frame::from_rgb(w, h, rgb.into_raw())
    }

    /// Borrows the frame.
    pub fn as_ref(&self) -> FrameRef<'_> {
        FrameRef {
            width: self.width,
            height: self.height,
            stride: self.width as usize * 3,
            data: &self.data,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
}

/// Whether a JPEG has an end-of-image marker (FF D9) after its last start-of-scan (FF DA).
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |m: u8| bytes.windows(2).rposition(|w| w == [0xFF, m]);
    matches!((last(0xDA), last(0xD9)), (Some(sos), Some(eoi)) if eoi > sos)
}

/// Refuses a JPEG whose frame header asks for sampling factors no camera or photo uses: each
/// component's factors must be 1–4 and divide the first (luma) component's. zune-jpeg 0.5.15 (the
/// `image` crate's decoder, the latest release) panics in its AVX2 IDCT on a chroma component
/// sampled more densely than luma; the `image_frame` fuzz target found it
/// (`fuzz/regressions/image_frame/`). Walks the marker segments up to the first scan.
fn jpeg_sampling_supported(bytes: &[u8]) -> std::result::Result<(), String> {
    let mut i = 2; // after SOI
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            i += 1; // stray bytes between segments: the decoder skips them, and so do we
            continue;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            i += 2;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return Ok(()); // the first scan (or the end): every frame header came before it
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        let segment = bytes
            .get(i + 4..i + 2 + len)
            .filter(|_| len >= 2)
            .ok_or("malformed JPEG (a segment runs past the end)")?;
        let frame_header = (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker);
        if frame_header {
            let count = usize::from(*segment.get(5).ok_or("malformed JPEG frame header")?);
            let components = segment
                .get(6..6 + 3 * count)
                .ok_or("malformed JPEG frame header")?;
            let factors: Vec<(u8, u8)> = components
                .chunks_exact(3)
                .map(|c| (c[1] >> 4, c[1] & 0x0F))
                .collect();
            let Some(&(h0, v0)) = factors.first() else {
                return Err("JPEG frame header without components".into());
            };
            for &(h, v) in &factors {
                let valid = (1..=4).contains(&h) && (1..=4).contains(&v);
                if !valid || h0 % h != 0 || v0 % v != 0 {
                    return Err(format!(
                        "unsupported JPEG sampling factors {h}x{v} against the first component's {h0}x{v0}"
                    ));
                }
            }
        }
        i += 2 + len;
    }
    Ok(())
}

/// Plane offsets for writing R, G, B into a planar tensor in the requested order.
fn plane_of(order: ChannelOrder) -> [usize; 3] {
    match order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    }
}

/// Bilinear resize of `frame` to `dst_w`×`dst_h` (OpenCV `INTER_LINEAR` sampling: pixel centres,
/// clamped at the borders, no antialiasing), written as planar `f32` 0–255 into a zero-filled
/// tensor of `pad_w`×`pad_h` (top-left aligned). `out` must hold `3 × pad_w × pad_h` values.
pub fn resize_into_planar(
    frame: FrameRef<'_>,
    dst_w: usize,
    dst_h: usize,
    pad_w: usize,
    pad_h: usize,
    order: ChannelOrder,
    out: &mut [f32],
) {
    debug_assert!(dst_w <= pad_w && dst_h <= pad_h && out.len() == 3 * pad_w * pad_h);
    out.fill(0.0);
    let (src_w, src_h) = (frame.width as usize, frame.height as usize);
    let planes = plane_of(order);
    let plane = pad_w * pad_h;
    // Column table: left source column (as a byte offset) and the right neighbour's weight.
    let sx = src_w as f64 / dst_w as f64;
    let cols: Vec<(usize, usize, f32)> = (0..dst_w)
        .map(|x| {
            let (i0, i1, a) = source_pair((x as f64 + 0.5) * sx - 0.5, src_w);
            (i0 * 3, i1 * 3, a)
        })
        .collect();
    let sy = src_h as f64 / dst_h as f64;
    for y in 0..dst_h {
        let (r0, r1, b) = source_pair((y as f64 + 0.5) * sy - 0.5, src_h);
        let (row0, row1) = (frame.row(r0), frame.row(r1));
        for (x, &(c0, c1, a)) in cols.iter().enumerate() {
            for ch in 0..3 {
                let top = row0[c0 + ch] as f32 * (1.0 - a) + row0[c1 + ch] as f32 * a;
                let bottom = row1[c0 + ch] as f32 * (1.0 - a) + row1[c1 + ch] as f32 * a;
                out[planes[ch] * plane + y * pad_w + x] = top * (1.0 - b) + bottom * b;
            }
        }
    }
}

/// The two source indices around a fractional position and the weight of the second.
#[inline]
fn source_pair(pos: f64, len: usize) -> (usize, usize, f32) {
    let floor = pos.floor();
    let i = floor as isize;
    if i < 0 {
        return (0, 0, 0.0);
    }
    let i = i as usize;
    if i + 1 >= len {
        return (len - 1, len - 1, 0.0);
    }
    (i, i + 1, (pos - floor) as f32)
}

/// Warps `frame` through the 2×3 affine `m` (destination → source mapping already inverted, i.e.
/// `src = m · [x, y, 1]`), bilinear, zeros outside the frame, into a planar `f32` tensor of
/// `size`×`size` with `(v − mean) / std` applied. `out` must hold `3 × size × size` values.
pub fn warp_affine_into_planar(
    frame: FrameRef<'_>,
    m: &[[f32; 3]; 2],
    size: usize,
    order: ChannelOrder,
    mean: f32,
    std: f32,
    out: &mut [f32],
) {
    debug_assert!(out.len() == 3 * size * size);
    let planes = plane_of(order);
    let plane = size * size;
    let (w, h) = (frame.width as isize, frame.height as isize);
    let pixel = |x: isize, y: isize, ch: usize| -> f32 {
        if x < 0 || y < 0 || x >= w || y >= h {
            0.0
        } else {
            frame.row(y as usize)[x as usize * 3 + ch] as f32
        }
    };
    for y in 0..size {
        for x in 0..size {
            let (xf, yf) = (x as f32, y as f32);
            let sx = m[0][0] * xf + m[0][1] * yf + m[0][2];
            let sy = m[1][0] * xf + m[1][1] * yf + m[1][2];
            let (x0, y0) = (sx.floor(), sy.floor());
            let (a, b) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            for ch in 0..3 {
                let v = (pixel(x0, y0, ch) * (1.0 - a) + pixel(x0 + 1, y0, ch) * a) * (1.0 - b)
                    + (pixel(x0, y0 + 1, ch) * (1.0 - a) + pixel(x0 + 1, y0 + 1, ch) * a) * b;
                out[planes[ch] * plane + y * size + x] = (v - mean) / std;
            }
        }
    }
}
