//! Int8 dot-product kernels with run-time dispatch. The only module of the crate with `unsafe`.
//!
//! Every kernel computes the same thing, bit for bit: for each gallery row `r`, the exact `i32` dot product
//! `Σ probe[i] · r[i]` of two int8 vectors whose elements lie in `[-127, 127]` (the quantiser never makes
//! `-128`). With dimensions up to [`MAX_DIM`](super::MAX_DIM) no kernel's intermediate overflows, so
//! integer results agree exactly, and the tests hold every kernel to the portable one.
//!
//! * [`Kernel::Vnni512`]: AVX-512 VNNI `vpdpbusd`, which multiplies *unsigned* by *signed* bytes. The probe is
//!   biased to `p + 128` (1..=255, as `u8`) and the per-row correction `128 · Σ r` (kept beside each row) is
//!   subtracted: `Σ (p+128)·r − 128·Σ r = Σ p·r`. Tails shorter than 64 bytes use masked loads.
//! * [`Kernel::Avx2`]: `vpmaddubsw` on `|p|` and `sign(r, p)`, whose pair sums stay within `2·127·127 <
//!   i16::MAX` (no saturation), then `vpmaddwd` by ones into `i32`.
//! * [`Kernel::Portable`]: plain Rust that LLVM autovectorises for the build target; the reference.
//!
//! # Why hand-written kernels and not a SIMD library
//!
//! The house style prefers a kept SIMD library where it is as fast. SimSIMD (`simsimd` on crates.io) has an
//! int8 dot product for Ice Lake and later, but its Rust API scores one pair of vectors per call through FFI
//! and returns an `f64`; scanning 1M rows × 128 dims that way is measured in the crate's report (see
//! `gallery/README.md`). A 1:N scan wants the probe held in registers across rows, the `u8×i8` bias folded
//! into a per-row constant and no per-row call, which no such library offers, so the kernels stay here,
//! small and tested against the portable reference.

use std::fmt;

/// A search kernel: which instruction set scores int8 rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// AVX-512 with VNNI (`vpdpbusd`): Ice Lake, Sapphire Rapids and later Xeons; Zen 4 and later.
    Vnni512,
    /// AVX2 (`vpmaddubsw` + `vpmaddwd`): Haswell and later, Zen.
    Avx2,
    /// Portable Rust, autovectorised for the build target. Always available.
    Portable,
}

impl Kernel {
    /// Every kernel, fastest first.
    pub const ALL: [Kernel; 3] = [Kernel::Vnni512, Kernel::Avx2, Kernel::Portable];

    /// The fastest kernel this CPU supports.
    pub fn detect() -> Kernel {
        Kernel::ALL
            .into_iter()
            .find(|k| k.is_available())
            .unwrap_or(Kernel::Portable)
    }

    /// The kernels this CPU supports, fastest first.
    pub fn available() -> Vec<Kernel> {
        Kernel::ALL
            .into_iter()
            .filter(|k| k.is_available())
            .collect()
    }

    /// Whether this CPU supports the kernel (checked at run time, cached by `std`).
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Vnni512 | Kernel::Avx2 => false,
        }
    }

    /// Stable lowercase name (also a bounded metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Kernel::Vnni512 => "vnni512",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }

    /// Writes into `out[j]` the dot product of `probe` with row `j` of `rows` (row-major, `probe.dim()` wide).
    ///
    /// Scores `min(out.len(), sums.len(), rows.len() / dim)` rows; callers pass matching lengths. A kernel
    /// that is not available falls back to the portable one, so the result never depends on the CPU.
    pub(crate) fn dot_rows(self, probe: &Probe, rows: &[i8], sums: &[i32], out: &mut [i32]) {
        let dim = probe.values.len();
        if dim == 0 {
            out.fill(0);
            return;
        }
        let n = out.len().min(sums.len()).min(rows.len() / dim);
        let (rows, sums, out) = (&rows[..n * dim], &sums[..n], &mut out[..n]);
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni512 if self.is_available() => {
                // SAFETY: the CPU supports avx512f, avx512bw and avx512vnni (checked just above); the callee's
                // memory accesses are bounds-reasoned in its own body.
                unsafe { x86::dot_rows_vnni512(&probe.biased, rows, sums, out) }
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 if self.is_available() => {
                // SAFETY: the CPU supports avx2 (checked just above).
                unsafe { x86::dot_rows_avx2(&probe.values, rows, out) }
            }
            _ => portable::dot_rows(&probe.values, rows, out),
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quantised probe in the forms the kernels want.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    /// Int8 values in `[-127, 127]`.
    pub(crate) values: Vec<i8>,
    /// `values[i] + 128` as `u8`, for the `u8×i8` VNNI instruction.
    pub(crate) biased: Vec<u8>,
    /// Dequantisation scale.
    pub(crate) scale: f32,
}

impl Probe {
    pub(crate) fn new(values: Vec<i8>, scale: f32) -> Probe {
        // `x + 128` as a byte is `x` with the top bit flipped.
        let biased = values.iter().map(|&x| (x as u8) ^ 0x80).collect();
        Probe {
            values,
            biased,
            scale,
        }
    }
}

/// Sum of a row's values, kept beside each row for the VNNI bias correction.
pub(crate) fn row_sum(row: &[i8]) -> i32 {
    row.iter().map(|&x| i32::from(x)).sum()
}

mod portable {
    /// Exact `i32` dot product. `i32` products of int8 values cannot overflow and the sum is wrapping, which
    /// lets LLVM vectorise the reduction.
    pub(super) fn dot(a: &[i8], b: &[i8]) -> i32 {
        a.iter().zip(b).fold(0i32, |acc, (&x, &y)| {
            acc.wrapping_add(i32::from(x) * i32::from(y))
        })
    }

    pub(super) fn dot_rows(probe: &[i8], rows: &[i8], out: &mut [i32]) {
        for (row, o) in rows.chunks_exact(probe.len()).zip(out) {
            *o = dot(probe, row);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// VNNI kernel. `biased` is the probe plus 128; `sums[j]` is the sum of row `j`.
    ///
    /// # Safety
    /// The CPU must support avx512f, avx512bw and avx512vnni. `rows.len()` must be at least
    /// `out.len() * biased.len()` and `sums.len()` at least `out.len()` (the caller slices them so).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn dot_rows_vnni512(
        biased: &[u8],
        rows: &[i8],
        sums: &[i32],
        out: &mut [i32],
    ) {
        match biased.len() {
            // SAFETY (all four): same contract as this function, and `biased.len() == 64 * N`.
            64 => unsafe { dot_rows_vnni512_fixed::<1>(biased, rows, sums, out) },
            128 => unsafe { dot_rows_vnni512_fixed::<2>(biased, rows, sums, out) },
            256 => unsafe { dot_rows_vnni512_fixed::<4>(biased, rows, sums, out) },
            512 => unsafe { dot_rows_vnni512_fixed::<8>(biased, rows, sums, out) },
            // SAFETY: same contract as this function.
            _ => unsafe { dot_rows_vnni512_any(biased, rows, sums, out) },
        }
    }

    /// VNNI kernel for `dim == 64 * N`, with the probe held in `N` registers across rows.
    ///
    /// # Safety
    /// As [`dot_rows_vnni512`], and `biased.len() == 64 * N`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn dot_rows_vnni512_fixed<const N: usize>(
        biased: &[u8],
        rows: &[i8],
        sums: &[i32],
        out: &mut [i32],
    ) {
        let dim = 64 * N;
        debug_assert_eq!(biased.len(), dim);
        // SAFETY: `biased` holds `64 * N` bytes, so chunk `c < N` lies in bounds; loadu needs no alignment.
        let probe: [__m512i; N] = std::array::from_fn(|c| unsafe {
            _mm512_loadu_si512(biased.as_ptr().add(64 * c).cast())
        });
        for ((row, &sum), o) in rows.chunks_exact(dim).zip(sums).zip(out.iter_mut()) {
            let mut acc = _mm512_setzero_si512();
            for (c, &p) in probe.iter().enumerate() {
                // SAFETY: `row` holds `dim = 64 * N` bytes and `c < N`, so the 64 bytes read are in bounds.
                let x = unsafe { _mm512_loadu_si512(row.as_ptr().add(64 * c).cast()) };
                acc = _mm512_dpbusd_epi32(acc, p, x);
            }
            *o = _mm512_reduce_add_epi32(acc).wrapping_sub(sum.wrapping_mul(128));
        }
    }

    /// VNNI kernel for any dimension: 64-byte chunks, then one masked chunk for the tail.
    ///
    /// # Safety
    /// As [`dot_rows_vnni512`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn dot_rows_vnni512_any(biased: &[u8], rows: &[i8], sums: &[i32], out: &mut [i32]) {
        let dim = biased.len();
        let full = dim / 64;
        let tail = dim % 64;
        let tail_mask: __mmask64 = if tail == 0 { 0 } else { (1u64 << tail) - 1 };
        for ((row, &sum), o) in rows.chunks_exact(dim).zip(sums).zip(out.iter_mut()) {
            let mut acc = _mm512_setzero_si512();
            for c in 0..full {
                // SAFETY: `64 * c + 64 <= 64 * full <= dim == biased.len() == row.len()`; loadu needs no
                // alignment.
                let (p, x) = unsafe {
                    (
                        _mm512_loadu_si512(biased.as_ptr().add(64 * c).cast()),
                        _mm512_loadu_si512(row.as_ptr().add(64 * c).cast()),
                    )
                };
                acc = _mm512_dpbusd_epi32(acc, p, x);
            }
            if tail != 0 {
                // SAFETY: the mask selects bytes `64 * full .. dim`, all in bounds of both slices; masked-off
                // bytes are not accessed (AVX-512 masked loads suppress faults) and read as zero, and a zero
                // probe byte contributes nothing.
                let (p, x) = unsafe {
                    (
                        _mm512_maskz_loadu_epi8(tail_mask, biased.as_ptr().add(64 * full).cast()),
                        _mm512_maskz_loadu_epi8(tail_mask, row.as_ptr().add(64 * full)),
                    )
                };
                acc = _mm512_dpbusd_epi32(acc, p, x);
            }
            *o = _mm512_reduce_add_epi32(acc).wrapping_sub(sum.wrapping_mul(128));
        }
    }

    /// AVX2 kernel: 32-byte chunks, one 16-byte chunk, then scalar for the last `< 16` elements.
    ///
    /// # Safety
    /// The CPU must support avx2. `rows.len()` must be at least `out.len() * probe.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dot_rows_avx2(probe: &[i8], rows: &[i8], out: &mut [i32]) {
        let dim = probe.len();
        let full = dim / 32;
        let half = (dim % 32) >= 16;
        let scalar_from = full * 32 + if half { 16 } else { 0 };
        let ones256 = _mm256_set1_epi16(1);
        let ones128 = _mm_set1_epi16(1);
        for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
            let mut acc = _mm256_setzero_si256();
            for c in 0..full {
                // SAFETY: `32 * c + 32 <= 32 * full <= dim == probe.len() == row.len()`; loadu needs no
                // alignment.
                let (p, x) = unsafe {
                    (
                        _mm256_loadu_si256(probe.as_ptr().add(32 * c).cast()),
                        _mm256_loadu_si256(row.as_ptr().add(32 * c).cast()),
                    )
                };
                // |p| (0..=127) as unsigned times sign(p)·x as signed: pair sums within ±2·127·127, no
                // saturation.
                let prod = _mm256_maddubs_epi16(_mm256_abs_epi8(p), _mm256_sign_epi8(x, p));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(prod, ones256));
            }
            let mut acc128 = _mm_add_epi32(
                _mm256_castsi256_si128(acc),
                _mm256_extracti128_si256::<1>(acc),
            );
            if half {
                // SAFETY: `32 * full + 16 <= dim`, in bounds of both slices.
                let (p, x) = unsafe {
                    (
                        _mm_loadu_si128(probe.as_ptr().add(32 * full).cast()),
                        _mm_loadu_si128(row.as_ptr().add(32 * full).cast()),
                    )
                };
                let prod = _mm_maddubs_epi16(_mm_abs_epi8(p), _mm_sign_epi8(x, p));
                acc128 = _mm_add_epi32(acc128, _mm_madd_epi16(prod, ones128));
            }
            let acc64 = _mm_add_epi32(acc128, _mm_shuffle_epi32::<0b01_00_11_10>(acc128));
            let acc32 = _mm_add_epi32(acc64, _mm_shuffle_epi32::<0b10_11_00_01>(acc64));
            let mut total = _mm_cvtsi128_si32(acc32);
            for (&p, &x) in probe[scalar_from..].iter().zip(&row[scalar_from..]) {
                total = total.wrapping_add(i32::from(p) * i32::from(x));
            }
            *o = total;
        }
    }
}

#[cfg(test)]
pub(crate) fn portable_dot(a: &[i8], b: &[i8]) -> i32 {
    portable::dot(a, b)
}
