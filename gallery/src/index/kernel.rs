//! Int8 dot-product kernels with run-time dispatch. The only module of the crate with `unsafe`.
//!
//! Every kernel computes the same thing, bit for bit: for each gallery row `r`, the exact `i32` dot product
//! `Σ probe[i] · r[i]` of two int8 vectors whose elements lie in `[-127, 127]` (the quantiser never makes
//! `-128`). With dimensions up to [`MAX_DIM`](super::MAX_DIM) no kernel's intermediate overflows, so
//! integer results agree exactly, and the tests hold every kernel, the portable one included, to an obvious
//! `i64` reference.
//!
//! * [`Kernel::Vnni512`]: AVX-512 VNNI `vpdpbusd`, which multiplies *unsigned* by *signed* bytes. The probe is
//!   biased to `p + 128` (1..=255, as `u8`) and the per-row correction `128 · Σ r` (kept beside each row) is
//!   subtracted: `Σ (p+128)·r − 128·Σ r = Σ p·r`. Tails shorter than 64 bytes use masked loads.
//! * [`Kernel::Avx2`]: `vpmaddubsw` on `|p|` and `sign(r, p)`, whose pair sums stay within `2·127·127 <
//!   i16::MAX` (no saturation), then `vpmaddwd` by ones into `i32`.
//! * [`Kernel::Portable`]: plain Rust in 32 independent lanes that LLVM autovectorises for the build
//!   target; the reference the others are tested against.
//!
//! # Why hand-written kernels and not a SIMD library
//!
//! The house style prefers a kept SIMD library where it is as fast. SimSIMD (`simsimd` 6.5.16 on crates.io)
//! has a run-time-dispatched int8 dot product, which picks its Ice Lake (VNNI) kernel on our Xeon, but its
//! Rust API scores one pair of vectors per FFI call and returns an `f64`. Measured on the same 2-core Xeon
//! (1 probe × N rows × 128 dims, one thread, median of 15): SimSIMD took 0.95 ms at 100k rows and 15.5 ms at
//! 1M for the dot products alone, where this module's VNNI kernel takes 0.55 ms and 12.2 ms for the whole
//! search including top-k (1M rows is bound by memory bandwidth, ~11.8 GB/s on one core, so both end up
//! close there). The larger gap is batching: a library that scores one pair per call reads the gallery
//! once per probe (32 probes × 1M ≈ 500 ms), while [`Gallery::search_batch`](super::Gallery::search_batch)
//! scores cache-sized tiles against all probes (57 ms). That needs the probe held in registers across
//! rows, 16 rows reduced together and the `u8×i8` bias folded into a per-row constant, which no such
//! library offers, so the kernels stay here, small and tested bit for bit against a reference.

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

    /// Writes into `out[j]` the dot product of `probe` with row `j` of `rows` (row-major, `probe.values.len()` wide).
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
        f.pad(self.as_str())
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
    /// Lanes of the portable accumulator: wide enough for LLVM to fill a vector register of any x86 or Arm
    /// target with independent `i32` sums.
    const LANES: usize = 32;

    /// Exact `i32` dot product. Products of int8 values cannot overflow `i32`, and wrapping sums let LLVM
    /// vectorise the lanes; written as 32 independent lanes it runs about 2.5× faster than a plain `fold`.
    pub(super) fn dot(a: &[i8], b: &[i8]) -> i32 {
        let (a_chunks, a_tail) = a.as_chunks::<LANES>();
        let (b_chunks, b_tail) = b.as_chunks::<LANES>();
        let mut acc = [0i32; LANES];
        for (x, y) in a_chunks.iter().zip(b_chunks) {
            for i in 0..LANES {
                acc[i] = acc[i].wrapping_add(i32::from(x[i]) * i32::from(y[i]));
            }
        }
        let total = acc.iter().fold(0i32, |sum, &v| sum.wrapping_add(v));
        a_tail.iter().zip(b_tail).fold(total, |sum, (&x, &y)| {
            sum.wrapping_add(i32::from(x) * i32::from(y))
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
        // SAFETY: every arm's callee has this function's contract, and each fixed kernel gets
        // `biased.len() == 64 * N`.
        unsafe {
            match biased.len() {
                64 => dot_rows_vnni512_fixed::<1>(biased, rows, sums, out),
                128 => dot_rows_vnni512_fixed::<2>(biased, rows, sums, out),
                192 => dot_rows_vnni512_fixed::<3>(biased, rows, sums, out),
                256 => dot_rows_vnni512_fixed::<4>(biased, rows, sums, out),
                512 => dot_rows_vnni512_fixed::<8>(biased, rows, sums, out),
                _ => dot_rows_vnni512_any(biased, rows, sums, out),
            }
        }
    }

    /// Rows scored together by the blocked kernels.
    const BLOCK: usize = 16;

    /// Row `TRANSPOSED[s]` goes into accumulator `s`, so that [`reduce16`]'s output lane `j` is row `j`
    /// (the reduction tree leaves lane `4a + b` holding accumulator `4b + a`).
    const TRANSPOSED: [usize; BLOCK] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];

    /// Horizontal sums of 16 accumulators into one vector, lane `j` holding accumulator
    /// `TRANSPOSED[j]`'s sum: four rounds of "shuffle halves together and add", 45 instructions for 16 rows
    /// where 16 separate reductions take about 150.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn reduce16(acc: [__m512i; BLOCK]) -> __m512i {
        // Round 1: 512 -> 256 bits per accumulator, two accumulators per register.
        let a: [__m512i; 8] = std::array::from_fn(|i| {
            let (x, y) = (acc[2 * i], acc[2 * i + 1]);
            _mm512_add_epi32(
                _mm512_shuffle_i32x4::<0b01_00_01_00>(x, y),
                _mm512_shuffle_i32x4::<0b11_10_11_10>(x, y),
            )
        });
        // Round 2: 256 -> 128 bits, four accumulators per register, one per 128-bit block.
        let b: [__m512i; 4] = std::array::from_fn(|i| {
            let (x, y) = (a[2 * i], a[2 * i + 1]);
            _mm512_add_epi32(
                _mm512_shuffle_i32x4::<0b10_00_10_00>(x, y),
                _mm512_shuffle_i32x4::<0b11_01_11_01>(x, y),
            )
        });
        // Round 3: 128 -> 64 bits, lanes interleaved (x, y, x, y) within each block.
        let c: [__m512i; 2] = std::array::from_fn(|i| {
            let (x, y) = (b[2 * i], b[2 * i + 1]);
            _mm512_add_epi32(_mm512_unpacklo_epi32(x, y), _mm512_unpackhi_epi32(x, y))
        });
        // Round 4: 64 -> 32 bits: one lane per accumulator.
        _mm512_add_epi32(
            _mm512_unpacklo_epi64(c[0], c[1]),
            _mm512_unpackhi_epi64(c[0], c[1]),
        )
    }

    /// VNNI kernel for `dim == 64 * N`: the probe stays in `N` registers, rows are scored 16 at a time
    /// with one shared reduction ([`reduce16`]), and the last `< 16` rows one by one.
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
        debug_assert!(rows.len() >= out.len() * dim && sums.len() >= out.len());
        // SAFETY: `biased` holds `64 * N` bytes, so chunk `c < N` lies in bounds; loadu needs no alignment.
        let probe: [__m512i; N] = std::array::from_fn(|c| unsafe {
            _mm512_loadu_si512(biased.as_ptr().add(64 * c).cast())
        });
        let blocks = out.len() / BLOCK;
        for block in 0..blocks {
            let first = block * BLOCK;
            let mut acc = [_mm512_setzero_si512(); BLOCK];
            for (c, &p) in probe.iter().enumerate() {
                for (s, acc) in acc.iter_mut().enumerate() {
                    let row = first + TRANSPOSED[s];
                    // SAFETY: `row < 16 * blocks <= out.len()` and `rows` holds `out.len() * dim` bytes, so
                    // bytes `row * dim + 64 * c ..+ 64` (with `c < N`) are in bounds.
                    let x =
                        unsafe { _mm512_loadu_si512(rows.as_ptr().add(row * dim + 64 * c).cast()) };
                    *acc = _mm512_dpbusd_epi32(*acc, p, x);
                }
            }
            // SAFETY: `first + 16 <= out.len() <= sums.len()`: 16 `i32`s in bounds of `sums` and `out`.
            unsafe {
                let bias =
                    _mm512_slli_epi32::<7>(_mm512_loadu_si512(sums.as_ptr().add(first).cast()));
                let dots = _mm512_sub_epi32(reduce16(acc), bias);
                _mm512_storeu_si512(out.as_mut_ptr().add(first).cast(), dots);
            }
        }
        let done = blocks * BLOCK;
        let tail_rows = rows[done * dim..].chunks_exact(dim);
        for ((row, &sum), o) in tail_rows.zip(&sums[done..]).zip(&mut out[done..]) {
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

    /// Rows scored together by the blocked AVX2 kernel.
    const BLOCK_AVX2: usize = 8;

    /// Horizontal sums of 8 accumulators into one vector, lane `j` holding accumulator `j`'s sum.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn reduce8(acc: [__m256i; BLOCK_AVX2]) -> __m256i {
        let h01 = _mm256_hadd_epi32(acc[0], acc[1]);
        let h23 = _mm256_hadd_epi32(acc[2], acc[3]);
        let h45 = _mm256_hadd_epi32(acc[4], acc[5]);
        let h67 = _mm256_hadd_epi32(acc[6], acc[7]);
        // Per 128-bit half: [a0, a1, a2, a3] and [a4, a5, a6, a7], partial over that half's lanes.
        let h0123 = _mm256_hadd_epi32(h01, h23);
        let h4567 = _mm256_hadd_epi32(h45, h67);
        _mm256_add_epi32(
            _mm256_permute2x128_si256::<0x20>(h0123, h4567),
            _mm256_permute2x128_si256::<0x31>(h0123, h4567),
        )
    }

    /// `|p|` (0..=127, read as unsigned) times `sign(p)·x` (signed): `vpmaddubsw` pair sums stay within
    /// `±2·127·127`, so nothing saturates; `vpmaddwd` by ones widens them to `i32`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn madd(p_abs: __m256i, p: __m256i, x: __m256i) -> __m256i {
        _mm256_madd_epi16(
            _mm256_maddubs_epi16(p_abs, _mm256_sign_epi8(x, p)),
            _mm256_set1_epi16(1),
        )
    }

    /// AVX2 kernel: 32-byte chunks over 8 rows at a time with one shared reduction ([`reduce8`]), the
    /// last `< 8` rows one by one, and the last `dim % 32` elements of each row in scalar code.
    ///
    /// # Safety
    /// The CPU must support avx2. `rows.len()` must be at least `out.len() * probe.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dot_rows_avx2(probe: &[i8], rows: &[i8], out: &mut [i32]) {
        let dim = probe.len();
        debug_assert!(rows.len() >= out.len() * dim);
        let full = dim / 32;
        let vector_dims = full * 32;
        let probe_tail = &probe[vector_dims..];
        let scalar_tail = |row: &[i8]| match probe_tail.is_empty() {
            true => 0,
            false => super::portable::dot(probe_tail, &row[vector_dims..]),
        };
        let blocks = out.len() / BLOCK_AVX2;
        for block in 0..blocks {
            let first = block * BLOCK_AVX2;
            let mut acc = [_mm256_setzero_si256(); BLOCK_AVX2];
            for c in 0..full {
                // SAFETY: `32 * c + 32 <= vector_dims <= dim == probe.len()`; loadu needs no alignment.
                let p = unsafe { _mm256_loadu_si256(probe.as_ptr().add(32 * c).cast()) };
                let p_abs = _mm256_abs_epi8(p);
                for (s, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: row `first + s < out.len()`, so its bytes `32 * c ..+ 32 <= dim` lie within
                    // `rows`, which holds `out.len() * dim` bytes.
                    let x = unsafe {
                        _mm256_loadu_si256(rows.as_ptr().add((first + s) * dim + 32 * c).cast())
                    };
                    *acc = _mm256_add_epi32(*acc, madd(p_abs, p, x));
                }
            }
            let mut sums = [0i32; BLOCK_AVX2];
            // SAFETY: `sums` is 8 `i32`s, exactly one 256-bit store.
            unsafe { _mm256_storeu_si256(sums.as_mut_ptr().cast(), reduce8(acc)) };
            let block_rows = rows[first * dim..(first + BLOCK_AVX2) * dim].chunks_exact(dim);
            for ((o, sum), row) in out[first..first + BLOCK_AVX2]
                .iter_mut()
                .zip(sums)
                .zip(block_rows)
            {
                *o = sum.wrapping_add(scalar_tail(row));
            }
        }
        let done = blocks * BLOCK_AVX2;
        for (row, o) in rows[done * dim..].chunks_exact(dim).zip(&mut out[done..]) {
            let mut acc = _mm256_setzero_si256();
            for c in 0..full {
                // SAFETY: `32 * c + 32 <= vector_dims <= dim == probe.len() == row.len()`.
                let (p, x) = unsafe {
                    (
                        _mm256_loadu_si256(probe.as_ptr().add(32 * c).cast()),
                        _mm256_loadu_si256(row.as_ptr().add(32 * c).cast()),
                    )
                };
                acc = _mm256_add_epi32(acc, madd(_mm256_abs_epi8(p), p, x));
            }
            let acc128 = _mm_add_epi32(
                _mm256_castsi256_si128(acc),
                _mm256_extracti128_si256::<1>(acc),
            );
            let acc64 = _mm_add_epi32(acc128, _mm_shuffle_epi32::<0b01_00_11_10>(acc128));
            let acc32 = _mm_add_epi32(acc64, _mm_shuffle_epi32::<0b10_11_00_01>(acc64));
            *o = _mm_cvtsi128_si32(acc32).wrapping_add(scalar_tail(row));
        }
    }
}
