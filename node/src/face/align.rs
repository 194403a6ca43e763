//! Face alignment, pure: the least-squares similarity transform (rotation, uniform scale,
//! translation; no reflection) that takes the five detected landmarks onto the recogniser's
//! template, as Umeyama's method gives it in two dimensions.

use super::Point;

/// A 2×3 affine matrix `[[a, -b, tx], [b, a, ty]]`-shaped for similarity transforms.
pub type Affine = [[f32; 3]; 2];

/// The similarity transform mapping `src` landmarks onto `dst`, or `None` when the source points
/// coincide (no transform is defined).
pub fn similarity(src: &[Point; 5], dst: &[[f32; 2]; 5]) -> Option<Affine> {
    let n = src.len() as f64;
    let (msx, msy) = src.iter().fold((0.0, 0.0), |(x, y), p| {
        (x + p.x as f64 / n, y + p.y as f64 / n)
    });
    let (mdx, mdy) = dst.iter().fold((0.0, 0.0), |(x, y), d| {
        (x + d[0] as f64 / n, y + d[1] as f64 / n)
    });
    let (mut var, mut dot, mut cross) = (0.0f64, 0.0f64, 0.0f64);
    for (p, d) in src.iter().zip(dst) {
        let (sx, sy) = (p.x as f64 - msx, p.y as f64 - msy);
        let (dx, dy) = (d[0] as f64 - mdx, d[1] as f64 - mdy);
        var += sx * sx + sy * sy;
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
    }
    if !(var > 1e-9) {
        return None;
    }
    let (a, b) = (dot / var, cross / var);
    let tx = mdx - (a * msx - b * msy);
    let ty = mdy - (b * msx + a * msy);
    let m = [
        [a as f32, -b as f32, tx as f32],
        [b as f32, a as f32, ty as f32],
    ];
    m.iter().flatten().all(|v| v.is_finite()).then_some(m)
}

/// Inverts a similarity transform (so a warp can map each destination pixel to its source).
pub fn invert(m: &Affine) -> Option<Affine> {
    let (a, b, tx, ty) = (
        m[0][0] as f64,
        m[1][0] as f64,
        m[0][2] as f64,
        m[1][2] as f64,
    );
    let k = a * a + b * b;
    if !(k > 1e-12) {
        return None;
    }
    let inv = [
        [
            (a / k) as f32,
            (b / k) as f32,
            (-(a * tx + b * ty) / k) as f32,
        ],
        [
            (-b / k) as f32,
            (a / k) as f32,
            ((b * tx - a * ty) / k) as f32,
        ],
    ];
    inv.iter().flatten().all(|v| v.is_finite()).then_some(inv)
}

/// Applies an affine transform to a point.
pub fn apply(m: &Affine, p: Point) -> Point {
    Point {
        x: m[0][0] * p.x + m[0][1] * p.y + m[0][2],
        y: m[1][0] * p.x + m[1][1] * p.y + m[1][2],
    }
}
