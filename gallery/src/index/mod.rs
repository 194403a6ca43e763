//! The in-memory exact 1:N index: every template of one face model, scanned in full for each probe.
//!
//! Templates are int8 rows in one contiguous buffer (`index/rows.rs`, which also erases removed rows); a
//! probe is quantised with the same scheme ([`Template::quantize`]) and scored against every row with an
//! exact integer dot product (`index/kernel.rs`: AVX-512 VNNI, AVX2 and portable kernels chosen at run time,
//! and why they are hand-written rather than SimSIMD's): `score = dot_i32 · probe_scale · row_scale`, which
//! approximates the cosine similarity for L2-normalised embeddings. The scan is exact (no
//! approximate-nearest-neighbour structure), so a registered person is never missed because of the index,
//! and removal is immediate. With a [`ScanPool`] a single probe's scan is split across the pool's pinned
//! threads (`index/pool.rs`), one contiguous range of rows each, with the same results.

#[allow(unsafe_code)] // The SIMD kernels; every `unsafe` block carries a `// SAFETY:` comment.
mod kernel;
mod pool;
mod rows;
#[cfg(test)]
mod tests;
mod top_k;

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use kernel::Kernel;
pub use pool::{DEFAULT_MIN_ROWS, ScanPool};
pub use rows::SEGMENT_ROWS;

use crate::error::{Error, Result};
use crate::person::PersonId;
use crate::template::{ModelId, Template, quantize_into};
use kernel::{Probe, row_sum};
use rows::Rows;
use top_k::TopK;

/// Largest supported dimension. Bounds every kernel's `i32` intermediates: the VNNI sum
/// `Σ (p+128)·r ≤ 255·127·65536 < 2³¹`.
pub const MAX_DIM: usize = 65_536;

/// Rows scored per kernel call by [`Gallery::search`] (the dot products live in a small buffer in L1).
const SCAN_ROWS: usize = 4096;

/// Bytes of gallery rows per tile in [`Gallery::search_batch`]: every probe is scored against one tile while
/// it sits in the L1 data cache, so the gallery is read from memory once per batch, not once per probe.
const TILE_BYTES: usize = 32 * 1024;

thread_local! {
    /// Each thread's buffer of dot products, kept between probes so a scan allocates nothing. Scans are
    /// leaves (they never wait on another scan), so a thread never needs two at once; if it ever did,
    /// the second would use a buffer of its own.
    static DOTS: RefCell<Vec<i32>> = const { RefCell::new(Vec::new()) };
}

/// One search result: a person and their best template's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The matched person.
    pub person: PersonId,
    /// Similarity of the person's best template to the probe, ≈ cosine for L2-normalised embeddings.
    pub score: f32,
}

/// A run of up to [`SEGMENT_ROWS`] rows, for keeping a copy of the index elsewhere (the GPU index's device
/// memory). `version` changes whenever any of its rows does, and no other segment, now or later, of any
/// gallery in the process has the same version.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// The first row's index.
    pub start: usize,
    /// The rows' int8 values, row-major, `dim` per row.
    pub data: &'a [i8],
    /// Each row's dequantisation scale.
    pub scales: &'a [f32],
    /// Changes with the segment's content.
    pub version: u64,
}

/// An exact 1:N index over the templates of one face model and dimension.
///
/// A person may have several templates; a search returns each person once, with their best score, best
/// first, ties going to the template inserted earlier (lower row). Searching takes `&self`, so one gallery
/// can be shared by readers behind whatever lock or snapshot the caller chooses.
pub struct Gallery {
    model: ModelId,
    dim: usize,
    kernel: Kernel,
    rows: Rows,
    pool: Option<Arc<ScanPool>>,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never prints template bytes.
        f.debug_struct("Gallery")
            .field("model", &self.model)
            .field("dim", &self.dim)
            .field("kernel", &self.kernel)
            .field("len", &self.rows.len())
            .field("pool", &self.pool)
            .finish()
    }
}

impl Gallery {
    /// An empty gallery for `model`'s templates of dimension `dim`, using the fastest kernel of this CPU.
    pub fn new(model: ModelId, dim: usize) -> Result<Gallery> {
        Gallery::with_kernel(model, dim, Kernel::detect())
    }

    /// An empty gallery that scores with `kernel`; errors if this CPU lacks it.
    pub fn with_kernel(model: ModelId, dim: usize, kernel: Kernel) -> Result<Gallery> {
        model.validate()?;
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidDimension { dim, max: MAX_DIM });
        }
        check_kernel(kernel)?;
        Ok(Gallery {
            model,
            dim,
            kernel,
            rows: Rows::new(dim),
            pool: None,
        })
    }

    /// Splits every later scan of a large enough gallery across `pool`'s threads (`None`: scan on the
    /// caller's thread). Results do not change.
    pub fn set_scan_pool(&mut self, pool: Option<Arc<ScanPool>>) {
        self.pool = pool;
    }

    /// The pool scans are split across, if any.
    pub fn scan_pool(&self) -> Option<&Arc<ScanPool>> {
        self.pool.as_ref()
    }

    /// The face model whose templates this gallery holds.
    pub fn model(&self) -> &ModelId {
        &self.model
    }

    /// The template dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The kernel searches use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Switches kernels; errors if this CPU lacks `kernel`. Results do not change (kernels are exact).
    pub fn set_kernel(&mut self, kernel: Kernel) -> Result<()> {
        check_kernel(kernel)?;
        self.kernel = kernel;
        Ok(())
    }

    /// Number of templates held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no template is held.
    pub fn is_empty(&self) -> bool {
        self.rows.len() == 0
    }

    /// Whether `person` has at least one template here. A linear scan of the person column.
    pub fn contains(&self, person: PersonId) -> bool {
        self.rows.persons(0..self.rows.len()).contains(&person)
    }

    /// Makes room for `additional` more templates (for bulk loading at start-up).
    pub fn reserve(&mut self, additional: usize) {
        self.rows.reserve(additional);
    }

    /// Adds one of `person`'s templates. Errors if it was made by another model or has another dimension.
    pub fn insert(&mut self, person: PersonId, template: &Template) -> Result<()> {
        if template.model() != &self.model {
            return Err(Error::ModelMismatch {
                expected: self.model.clone(),
                got: template.model().clone(),
            });
        }
        if template.dim() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got: template.dim(),
            });
        }
        let data = template.data();
        self.rows
            .push(person, data, template.scale(), row_sum(data));
        Ok(())
    }

    /// Appends one row from its parts (a replica checkpoint's, [`Gallery::export_rows`]), checked
    /// as a template's are.
    pub fn insert_row(&mut self, person: PersonId, values: &[i8], scale: f32) -> Result<()> {
        if values.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got: values.len(),
            });
        }
        crate::template::check_parts(scale, values)?;
        self.rows.push(person, values, scale, row_sum(values));
        Ok(())
    }

    /// Every row in the index's order: its person, quantised values and scale (for a replica
    /// checkpoint; [`Gallery::insert_row`] puts them back).
    pub fn export_rows(&self) -> impl ExactSizeIterator<Item = (PersonId, &[i8], f32)> + '_ {
        let n = self.rows.len();
        let (persons, scales) = (self.rows.persons(0..n), self.rows.scales(0..n));
        (0..n).map(move |r| (persons[r], self.rows.data(r..r + 1), scales[r]))
    }

    /// The rows in segments of [`SEGMENT_ROWS`] (the last may be shorter), in row order.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = Segment<'_>> + '_ {
        let len = self.rows.len();
        self.rows
            .versions()
            .iter()
            .enumerate()
            .map(move |(i, &version)| {
                let rows = i * SEGMENT_ROWS..((i + 1) * SEGMENT_ROWS).min(len);
                Segment {
                    start: rows.start,
                    data: self.rows.data(rows.clone()),
                    scales: self.rows.scales(rows),
                    version,
                }
            })
    }

    /// `probe` quantised exactly as [`Gallery::search`] quantises it: int8 values and their scale. For
    /// another engine scoring the same rows (the GPU index), whose integer dot products and
    /// `dot as f32 * probe_scale * row_scale` then equal this index's scores bit for bit.
    pub fn quantize_probe(&self, probe: &[f32]) -> Result<(Vec<i8>, f32)> {
        let probe = self.prepare(probe)?;
        Ok((probe.values, probe.scale))
    }

    /// The best `k` persons among scored rows from another engine (the GPU index): each person once with
    /// their best row, ranked exactly as [`Gallery::search`] ranks (higher score, then lower row). With
    /// every row's score, or the best `k × templates per person` rows, the result equals
    /// [`Gallery::search`]'s. A row past the end or a NaN score is an error, not a panic.
    pub fn rank_rows(
        &self,
        scored: impl IntoIterator<Item = (f32, usize)>,
        k: usize,
    ) -> Result<Vec<Hit>> {
        let len = self.rows.len();
        let persons = self.rows.persons(0..len);
        let mut top = TopK::new(k);
        for (score, row) in scored {
            let person = match persons.get(row) {
                Some(&person) if !score.is_nan() => person,
                _ => return Err(Error::ForeignRow { row, len }),
            };
            top.offer(score, row, person);
        }
        Ok(top.into_hits())
    }

    /// Removes and erases every template of `person` (cancellation); returns how many there were.
    ///
    /// The bytes are overwritten in the live buffer, not merely unlinked, and the person is never returned
    /// by a search afterwards. Linear in the gallery size (about a millisecond per million templates).
    pub fn remove_person(&mut self, person: PersonId) -> usize {
        self.rows.remove_person(person)
    }

    /// Removes and erases every template.
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// The best `k` persons for one probe embedding, best first.
    ///
    /// The probe is quantised like a template (errors on a wrong length, NaN or infinity, or a zero vector)
    /// and scored against every template with integer arithmetic.
    pub fn search(&self, probe: &[f32], k: usize) -> Result<Vec<Hit>> {
        let probe = self.prepare(probe)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let top = self.split(
            &|rows| self.scan(&probe, k, rows),
            &|top: &mut TopK, other| top.merge(other),
        );
        Ok(top.into_hits())
    }

    /// Scores rows `range` against one probe, `SCAN_ROWS` at a time, into a top-`k` list.
    fn scan(&self, probe: &Probe, k: usize, range: Range<usize>) -> TopK {
        let mut top = TopK::new(k);
        with_dots(SCAN_ROWS.min(range.len()), |dots| {
            for start in range.clone().step_by(SCAN_ROWS) {
                let end = (start + SCAN_ROWS).min(range.end);
                let dots = &mut dots[..end - start];
                self.kernel.dot_rows(
                    probe,
                    self.rows.data(start..end),
                    self.rows.sums(start..end),
                    dots,
                );
                self.offer(&mut top, probe, start, dots);
            }
        });
        top
    }

    /// Runs `leaf` over every row: on the caller's thread, or, with a pool and enough rows, over one
    /// contiguous range per pool thread, merging the ranges' results in row order.
    fn split<T: Send>(
        &self,
        leaf: &(dyn Fn(Range<usize>) -> T + Sync),
        merge: &(dyn Fn(&mut T, T) + Sync),
    ) -> T {
        let len = self.rows.len();
        match &self.pool {
            Some(pool) if pool.parts(len) > 1 => {
                let parts = pool.parts(len);
                pool.install(|| split_into(0..len, parts, leaf, merge))
            }
            _ => leaf(0..len),
        }
    }

    /// The best `k` persons for each of several probes, in one pass over the gallery.
    ///
    /// `probes` is flat: probe `i` is `probes[i * dim .. (i + 1) * dim]`. The gallery is walked in tiles that
    /// fit the L2 cache and every probe is scored against a tile before the next is read, so a batch of `b`
    /// probes reads the gallery from memory once instead of `b` times. Results equal [`Gallery::search`] on
    /// each probe. Any bad probe fails the whole batch.
    pub fn search_batch(&self, probes: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        if !probes.len().is_multiple_of(self.dim) {
            return Err(Error::RaggedBatch {
                dim: self.dim,
                len: probes.len(),
            });
        }
        let probes = probes
            .chunks_exact(self.dim)
            .map(|p| self.prepare(p))
            .collect::<Result<Vec<_>>>()?;
        if k == 0 || probes.is_empty() {
            return Ok(probes.iter().map(|_| Vec::new()).collect());
        }
        let tops = self.split(
            &|rows| self.scan_batch(&probes, k, rows),
            &|tops: &mut Vec<TopK>, others| {
                for (top, other) in tops.iter_mut().zip(others) {
                    top.merge(other);
                }
            },
        );
        Ok(tops.into_iter().map(TopK::into_hits).collect())
    }

    /// Scores rows `range` against every probe, one L1-sized tile at a time.
    fn scan_batch(&self, probes: &[Probe], k: usize, range: Range<usize>) -> Vec<TopK> {
        let mut tops: Vec<TopK> = probes.iter().map(|_| TopK::new(k)).collect();
        let tile_rows = (TILE_BYTES / self.dim).max(1);
        with_dots(tile_rows.min(range.len()), |dots| {
            for start in range.clone().step_by(tile_rows) {
                let end = (start + tile_rows).min(range.end);
                let (data, sums) = (self.rows.data(start..end), self.rows.sums(start..end));
                let dots = &mut dots[..end - start];
                for (probe, top) in probes.iter().zip(&mut tops) {
                    self.kernel.dot_rows(probe, data, sums, dots);
                    self.offer(top, probe, start, dots);
                }
            }
        });
        tops
    }

    /// Reference search in plain `f32`: the probe is not quantised and each row is dequantised
    /// (`row[i] as f32 · row_scale`). Slow; for tests and benchmarks. Rejects the same inputs as
    /// [`Gallery::search`].
    pub fn search_f32(&self, probe: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.prepare(probe)?;
        let mut top = TopK::new(k);
        let len = self.rows.len();
        let (data, scales, persons) = (
            self.rows.data(0..len),
            self.rows.scales(0..len),
            self.rows.persons(0..len),
        );
        for (row, ((values, &scale), &person)) in data
            .chunks_exact(self.dim)
            .zip(scales)
            .zip(persons)
            .enumerate()
        {
            let score = probe
                .iter()
                .zip(values)
                .map(|(&p, &q)| p * (f32::from(q) * scale))
                .sum();
            top.offer(score, row, person);
        }
        Ok(top.into_hits())
    }

    /// The exact integer dot product of the quantised probe with every row, in row order (for tests).
    #[cfg(test)]
    pub(crate) fn dots(&self, probe: &[f32]) -> Result<Vec<i32>> {
        let probe = self.prepare(probe)?;
        let len = self.rows.len();
        let mut dots = vec![0i32; len];
        self.kernel.dot_rows(
            &probe,
            self.rows.data(0..len),
            self.rows.sums(0..len),
            &mut dots,
        );
        Ok(dots)
    }

    #[cfg(test)]
    pub(crate) fn rows(&self) -> &Rows {
        &self.rows
    }

    fn prepare(&self, probe: &[f32]) -> Result<Probe> {
        if probe.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got: probe.len(),
            });
        }
        let mut values = Vec::with_capacity(self.dim);
        let scale = quantize_into(probe, &mut values)?;
        Ok(Probe::new(values, scale))
    }

    /// Offers rows `start..start + dots.len()` to `top`.
    ///
    /// Once `top` is full almost every row scores below its threshold, so rows are first checked 16 at a
    /// time with a branch-free loop that LLVM vectorises, and only a group holding a candidate is offered
    /// row by row.
    #[inline]
    fn offer(&self, top: &mut TopK, probe: &Probe, start: usize, dots: &[i32]) {
        const GROUP: usize = 16;
        let end = start + dots.len();
        let (scales, persons) = (self.rows.scales(start..end), self.rows.persons(start..end));
        let ps = probe.scale;
        for (g, (dots, scales)) in dots.chunks(GROUP).zip(scales.chunks(GROUP)).enumerate() {
            let threshold = top.threshold();
            let candidate = dots
                .iter()
                .zip(scales)
                .fold(false, |any, (&d, &s)| any | (score(d, ps, s) >= threshold));
            if !candidate {
                continue;
            }
            let first = g * GROUP;
            for (i, (&d, &s)) in dots.iter().zip(scales).enumerate() {
                let score = score(d, ps, s);
                if score >= top.threshold() {
                    top.offer(score, start + first + i, persons[first + i]);
                }
            }
        }
    }
}

/// Cuts `range` into `parts` contiguous ranges, runs `leaf` on each (in parallel inside a rayon pool) and
/// merges the results pairwise, each left range's result absorbing its right neighbour's.
fn split_into<T: Send>(
    range: Range<usize>,
    parts: usize,
    leaf: &(dyn Fn(Range<usize>) -> T + Sync),
    merge: &(dyn Fn(&mut T, T) + Sync),
) -> T {
    if parts <= 1 {
        return leaf(range);
    }
    let left_parts = parts / 2;
    let mid = range.start + range.len() * left_parts / parts;
    let (mut left, right) = rayon::join(
        || split_into(range.start..mid, left_parts, leaf, merge),
        || split_into(mid..range.end, parts - left_parts, leaf, merge),
    );
    merge(&mut left, right);
    left
}

/// Lends `f` this thread's dot-product buffer, at least `len` long.
fn with_dots<R>(len: usize, f: impl FnOnce(&mut [i32]) -> R) -> R {
    DOTS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut dots) => {
            if dots.len() < len {
                dots.resize(len, 0);
            }
            f(&mut dots[..len])
        }
        Err(_) => f(&mut vec![0i32; len]),
    })
}

/// The one place a score is computed, so every search path rounds identically.
#[inline]
fn score(dot: i32, probe_scale: f32, row_scale: f32) -> f32 {
    dot as f32 * probe_scale * row_scale
}

fn check_kernel(kernel: Kernel) -> Result<()> {
    if kernel.is_available() {
        Ok(())
    } else {
        Err(Error::KernelUnavailable { kernel })
    }
}
