//! A model-free PAD signal: is the face a flat picture moving in front of the camera?
//!
//! The five landmarks of anything flat (a print, a phone or tablet screen) seen in two frames are
//! related by one plane-to-plane homography, however the picture is moved, tilted or turned. A
//! real head that turns or nods is not flat: its nose tip leaves the plane of its eyes and mouth,
//! and no homography maps one frame's landmarks onto the other's exactly. Pure, no IO.
//!
//! Two measures per pair of frames, each as a fraction of the eye distance:
//! * **deformation**: what the best similarity transform (shift, turn, zoom) leaves unexplained:
//!   how much the configuration changed shape at all. A face held still, or a picture slid
//!   across the camera, barely changes shape, and then nothing can be told;
//! * **residual**: what the best homography leaves unexplained.
//!
//! Below `min_deformation` the track is [`Planarity::Inconclusive`] (landmark jitter alone
//! makes a few hundredths with YuNet's landmarks). Above it, a homography that leaves less than `depth_ratio` of the
//! deformation unexplained says the face was flat ([`Planarity::Flat`]); one that leaves more says
//! it has depth ([`Planarity::Depth`]). A ratio, not a fixed residual: a real head turning a
//! little leaves a little residual, about nine tenths of its deformation, where a tilted picture
//! leaves only the jitter. With five points a homography (8 degrees of freedom) has two
//! constraints over, so part of a head's depth is absorbed by the fit: the separation is
//! measured, not assumed (tests below; BENCHMARKS.md).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::Point;

/// When a landmark track counts as flat or as having depth (`[face.pad.planarity]`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PlanarityConfig {
    /// Whether the signal is used at all. Default: true.
    pub enabled: bool,
    /// Frames of one face kept and compared (the newest against each earlier one). Default: 8.
    pub frames: usize,
    /// Shape change (fraction of the eye distance) from which a track can be judged. Default
    /// 0.05: YuNet's landmarks jitter by 0.02–0.06 of the eye distance on the moved prints of
    /// the synthetic attack set (BENCHMARKS.md), so below that a still face's jitter alone
    /// could look like a flat picture's motion.
    pub min_deformation: f32,
    /// Share of the deformation the best homography must leave unexplained for the face to have
    /// depth. Default 0.6 (synthetic tracks: turning heads 0.85–0.9, tilted pictures under 0.4).
    pub depth_ratio: f32,
}

impl Default for PlanarityConfig {
    fn default() -> Self {
        PlanarityConfig {
            enabled: true,
            frames: 8,
            min_deformation: 0.05,
            depth_ratio: 0.6,
        }
    }
}

/// The verdict on a landmark track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planarity {
    /// Too few frames, or too little change of shape, to tell.
    Inconclusive,
    /// The shape changed and one homography explains it: a flat picture.
    Flat,
    /// No homography explains the change: the face has depth.
    Depth,
}

impl Planarity {
    /// Stable name (`flat`, `depth`, `inconclusive`), a bounded metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Planarity::Flat => "flat",
            Planarity::Depth => "depth",
            Planarity::Inconclusive => "inconclusive",
        }
    }
}

/// A 3×3 homography, row-major, `h[2][2] == 1`.
pub type Homography = [[f64; 3]; 3];

/// The least-squares homography taking `src` onto `dst` (the direct linear transform on
/// Hartley-normalised points, `h33` fixed to 1), or `None` when the points are degenerate.
pub fn homography(src: &[Point; 5], dst: &[Point; 5]) -> Option<Homography> {
    let ts = normaliser(src)?;
    let td = normaliser(dst)?;
    let s: Vec<(f64, f64)> = src.iter().map(|p| apply_norm(&ts, p)).collect();
    let d: Vec<(f64, f64)> = dst.iter().map(|p| apply_norm(&td, p)).collect();
    // Normal equations of the 10×8 system A h = b.
    let mut ata = [[0.0f64; 8]; 8];
    let mut atb = [0.0f64; 8];
    for ((x, y), (u, v)) in s.iter().zip(&d) {
        let rows = [
            ([*x, *y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u], *u),
            ([0.0, 0.0, 0.0, *x, *y, 1.0, -x * v, -y * v], *v),
        ];
        for (a, b) in rows {
            for i in 0..8 {
                atb[i] += a[i] * b;
                for j in 0..8 {
                    ata[i][j] += a[i] * a[j];
                }
            }
        }
    }
    let h = solve8(ata, atb)?;
    let hn = [[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1.0]];
    // Undo the normalisation: H = Td⁻¹ · Hn · Ts.
    let full = mul(&mul(&invert_norm(&td), &hn), &ts);
    let k = full[2][2];
    if !(k.abs() > 1e-12) {
        return None;
    }
    let out = full.map(|row| row.map(|v| v / k));
    out.iter().flatten().all(|v| v.is_finite()).then_some(out)
}

/// Where `h` takes `p`, or `None` when it goes to infinity.
pub fn project(h: &Homography, p: &Point) -> Option<(f64, f64)> {
    let (x, y) = (p.x as f64, p.y as f64);
    let w = h[2][0] * x + h[2][1] * y + h[2][2];
    if !(w.abs() > 1e-12) {
        return None;
    }
    Some((
        (h[0][0] * x + h[0][1] * y + h[0][2]) / w,
        (h[1][0] * x + h[1][1] * y + h[1][2]) / w,
    ))
}

/// The two measures between two frames' landmarks, each as a fraction of `dst`'s eye distance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairMeasure {
    /// RMS distance the best similarity transform leaves.
    pub deformation: f32,
    /// RMS distance the best homography leaves.
    pub residual: f32,
}

/// Measures one pair of landmark sets; `None` when either is degenerate.
pub fn measure(src: &[Point; 5], dst: &[Point; 5]) -> Option<PairMeasure> {
    let eye = ((dst[0].x - dst[1].x).powi(2) + (dst[0].y - dst[1].y).powi(2)).sqrt() as f64;
    if !(eye > 1.0) {
        return None;
    }
    let dst_arr = dst.map(|p| [p.x, p.y]);
    let sim = super::align::similarity(src, &dst_arr)?;
    let mut sim_sq = 0.0f64;
    for (p, q) in src.iter().zip(dst) {
        let m = super::align::apply(&sim, *p);
        sim_sq += ((m.x - q.x) as f64).powi(2) + ((m.y - q.y) as f64).powi(2);
    }
    let h = homography(src, dst)?;
    let mut h_sq = 0.0f64;
    for (p, q) in src.iter().zip(dst) {
        let (x, y) = project(&h, p)?;
        h_sq += (x - q.x as f64).powi(2) + (y - q.y as f64).powi(2);
    }
    let n = src.len() as f64;
    Some(PairMeasure {
        deformation: ((sim_sq / n).sqrt() / eye) as f32,
        residual: ((h_sq / n).sqrt() / eye) as f32,
    })
}

/// The landmarks of one face over its last few frames, and the verdict on them.
#[derive(Clone, Debug, Default)]
pub struct LandmarkTrack {
    frames: VecDeque<[Point; 5]>,
}

impl LandmarkTrack {
    /// Adds the newest frame's landmarks, keeping at most `keep` frames.
    pub fn push(&mut self, landmarks: [Point; 5], keep: usize) {
        self.frames.push_back(landmarks);
        while self.frames.len() > keep.max(2) {
            self.frames.pop_front();
        }
    }

    /// Forgets the track (the face left, or another face came).
    pub fn clear(&mut self) {
        self.frames.clear();
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The largest deformation and the largest residual of the newest frame against each
    /// earlier one; `None` with fewer than two frames.
    pub fn extremes(&self) -> Option<PairMeasure> {
        let newest = self.frames.back()?;
        let mut out: Option<PairMeasure> = None;
        for earlier in self.frames.iter().rev().skip(1) {
            let Some(m) = measure(earlier, newest) else {
                continue;
            };
            out = Some(match out {
                None => m,
                Some(o) => PairMeasure {
                    deformation: o.deformation.max(m.deformation),
                    residual: o.residual.max(m.residual),
                },
            });
        }
        out
    }

    /// The verdict under `config` (a full track of `config.frames` frames is needed).
    pub fn verdict(&self, config: &PlanarityConfig) -> Planarity {
        if !config.enabled || self.frames.len() < config.frames.max(2) {
            return Planarity::Inconclusive;
        }
        match self.extremes() {
            Some(m) if m.deformation < config.min_deformation => Planarity::Inconclusive,
            Some(m) if m.residual >= config.depth_ratio * m.deformation => Planarity::Depth,
            Some(_) => Planarity::Flat,
            None => Planarity::Inconclusive,
        }
    }
}

type Norm = [[f64; 3]; 3];

/// Hartley's normalisation: centroid to the origin, mean distance √2; `None` when the points
/// coincide.
fn normaliser(points: &[Point; 5]) -> Option<Norm> {
    let n = points.len() as f64;
    let (cx, cy) = points.iter().fold((0.0, 0.0), |(x, y), p| {
        (x + p.x as f64 / n, y + p.y as f64 / n)
    });
    let mean = points
        .iter()
        .map(|p| ((p.x as f64 - cx).powi(2) + (p.y as f64 - cy).powi(2)).sqrt())
        .sum::<f64>()
        / n;
    if !(mean > 1e-9) || !mean.is_finite() {
        return None;
    }
    let s = std::f64::consts::SQRT_2 / mean;
    Some([[s, 0.0, -s * cx], [0.0, s, -s * cy], [0.0, 0.0, 1.0]])
}

fn apply_norm(t: &Norm, p: &Point) -> (f64, f64) {
    (
        t[0][0] * p.x as f64 + t[0][2],
        t[1][1] * p.y as f64 + t[1][2],
    )
}

fn invert_norm(t: &Norm) -> Norm {
    let s = t[0][0];
    [
        [1.0 / s, 0.0, -t[0][2] / s],
        [0.0, 1.0 / s, -t[1][2] / s],
        [0.0, 0.0, 1.0],
    ]
}

fn mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

/// Gaussian elimination with partial pivoting; `None` for a singular system.
fn solve8(mut a: [[f64; 8]; 8], mut b: [f64; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if !(a[pivot][col].abs() > 1e-12) {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..8 {
            let f = a[row][col] / a[col][col];
            for k in col..8 {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0f64; 8];
    for row in (0..8).rev() {
        let s: f64 = (row + 1..8).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mean face's five landmarks in millimetres, the head's centre of rotation at the origin
    /// (x right, y down, z away from the camera): eyes, nose tip (in front of the eye plane),
    /// mouth corners. Image-left first, as YuNet orders them.
    const HEAD: [[f64; 3]; 5] = [
        [-31.0, -30.0, -75.0],
        [31.0, -30.0, -75.0],
        [0.0, 2.0, -100.0],
        [-24.0, 35.0, -80.0],
        [24.0, 35.0, -80.0],
    ];

    /// Deterministic noise in [-a, a] (a small LCG; no dependency for a test).
    struct Noise(u64);
    impl Noise {
        fn next(&mut self, a: f64) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * a
        }
    }

    fn rotate(p: [f64; 3], yaw_deg: f64, pitch_deg: f64) -> [f64; 3] {
        let (y, x) = (yaw_deg.to_radians(), pitch_deg.to_radians());
        let (a, b, c) = (
            p[0] * y.cos() + p[2] * y.sin(),
            p[1],
            -p[0] * y.sin() + p[2] * y.cos(),
        );
        [a, b * x.cos() - c * x.sin(), b * x.sin() + c * x.cos()]
    }

    /// A pinhole camera 600 mm in front (focal 1000 px, centre 640×360) and ±`noise` px of
    /// landmark jitter.
    fn project_all(
        points: [[f64; 3]; 5],
        shift: [f64; 3],
        noise: &mut Noise,
        a: f64,
    ) -> [Point; 5] {
        points.map(|p| {
            let z = p[2] + 600.0 + shift[2];
            Point {
                x: (1000.0 * (p[0] + shift[0]) / z + 640.0 + noise.next(a)) as f32,
                y: (1000.0 * (p[1] + shift[1]) / z + 360.0 + noise.next(a)) as f32,
            }
        })
    }

    /// A real head turning (yaw) and nodding (pitch) by up to `amp` degrees over 8 frames.
    fn head_track(amp: f64, noise_px: f64, seed: u64) -> LandmarkTrack {
        let mut n = Noise(seed);
        let mut t = LandmarkTrack::default();
        for i in 0..8 {
            let f = i as f64 / 7.0;
            let pts = HEAD.map(|p| rotate(p, amp * (2.0 * f - 1.0), 0.5 * amp * f));
            t.push(project_all(pts, [0.0, 0.0, -40.0 * f], &mut n, noise_px), 8);
        }
        t
    }

    /// The same head photographed frontally (a print or screen: every landmark on one plane),
    /// the picture then turned and tilted by up to `amp` degrees as it is held up.
    fn picture_track(amp: f64, noise_px: f64, seed: u64) -> LandmarkTrack {
        let flat = HEAD.map(|p| [p[0], p[1], -80.0]);
        let mut n = Noise(seed);
        let mut t = LandmarkTrack::default();
        for i in 0..8 {
            let f = i as f64 / 7.0;
            let pts = flat.map(|p| {
                let q = rotate(
                    [p[0], p[1], p[2] + 80.0],
                    amp * (2.0 * f - 1.0),
                    0.5 * amp * f,
                );
                [q[0], q[1], q[2] - 80.0]
            });
            t.push(
                project_all(pts, [10.0 * f, 0.0, -40.0 * f], &mut n, noise_px),
                8,
            );
        }
        t
    }

    #[test]
    fn an_exact_homography_is_recovered() {
        let src = [
            (0.0, 0.0),
            (100.0, 0.0),
            (50.0, 40.0),
            (10.0, 90.0),
            (95.0, 85.0),
        ]
        .map(|(x, y)| Point { x, y });
        let h: Homography = [[0.9, 0.1, 12.0], [-0.05, 1.1, -7.0], [0.0004, -0.0002, 1.0]];
        let dst = src.map(|p| {
            let (x, y) = project(&h, &p).unwrap();
            Point {
                x: x as f32,
                y: y as f32,
            }
        });
        let got = homography(&src, &dst).unwrap();
        for (r, e) in got.iter().flatten().zip(h.iter().flatten()) {
            assert!((r - e).abs() < 1e-4 * e.abs().max(1.0), "{got:?} vs {h:?}");
        }
        assert!(measure(&src, &dst).unwrap().residual < 1e-4);
    }

    #[test]
    fn degenerate_landmarks_give_nothing() {
        let same = [Point { x: 5.0, y: 5.0 }; 5];
        assert!(homography(&same, &same).is_none());
        assert!(measure(&same, &same).is_none());
        let mut t = LandmarkTrack::default();
        for _ in 0..8 {
            t.push(same, 8);
        }
        assert_eq!(
            t.verdict(&PlanarityConfig::default()),
            Planarity::Inconclusive
        );
    }

    /// The separation this signal gives on synthetic tracks at YuNet-like landmark noise (±1 px
    /// at about 100 px between the eyes), data-driven: (what, track, verdict expected).
    /// The tests' ±1 px jitter is a quarter of YuNet's, so they judge from a smaller shape change
    /// than the default does.
    fn synthetic() -> PlanarityConfig {
        PlanarityConfig {
            min_deformation: 0.02,
            ..PlanarityConfig::default()
        }
    }

    #[test]
    fn flat_pictures_and_turning_heads_separate() {
        let config = synthetic();
        let cases: Vec<(&str, LandmarkTrack, Planarity)> = vec![
            (
                "head turning 20° and nodding",
                head_track(20.0, 1.0, 1),
                Planarity::Depth,
            ),
            (
                "head turning 12°",
                head_track(12.0, 1.0, 2),
                Planarity::Depth,
            ),
            ("head turning 3°", head_track(3.0, 0.2, 7), Planarity::Depth),
            (
                "picture tilted 30°",
                picture_track(30.0, 1.0, 3),
                Planarity::Flat,
            ),
            (
                "picture tilted 20°",
                picture_track(20.0, 1.0, 4),
                Planarity::Flat,
            ),
            (
                "picture tilted 10°",
                picture_track(10.0, 1.0, 8),
                Planarity::Inconclusive,
            ),
            (
                "head held still",
                head_track(0.0, 1.0, 5),
                Planarity::Inconclusive,
            ),
            (
                "picture held still",
                picture_track(0.0, 1.0, 6),
                Planarity::Inconclusive,
            ),
        ];
        for (what, track, want) in cases {
            let m = track.extremes().unwrap();
            assert_eq!(track.verdict(&config), want, "{what}: {m:?}");
        }
    }

    /// Prints the distributions the defaults were chosen from (`-- --nocapture`).
    #[test]
    fn residuals_over_many_tracks() {
        let config = synthetic();
        let mut tally = [[0u32; 3]; 2];
        for seed in 0..200u64 {
            let amp = 10.0 + (seed % 5) as f64 * 5.0;
            for (k, t) in [
                head_track(amp, 1.0, seed),
                picture_track(amp, 1.0, seed + 1000),
            ]
            .iter()
            .enumerate()
            {
                let i = match t.verdict(&config) {
                    Planarity::Depth => 0,
                    Planarity::Flat => 1,
                    Planarity::Inconclusive => 2,
                };
                tally[k][i] += 1;
            }
        }
        println!(
            "heads [depth, flat, inconclusive] {:?}; pictures {:?}",
            tally[0], tally[1]
        );
        // A real head is never called flat, and pictures moved 20° or more are (10° and 15° are
        // within the jitter: inconclusive, never depth).
        assert_eq!(tally[0][1], 0, "a turning head was judged flat: {tally:?}");
        assert_eq!(
            tally[1][0], 0,
            "a picture was judged to have depth: {tally:?}"
        );
        assert!(tally[1][1] >= 110, "pictures judged flat: {tally:?}");
    }
}
