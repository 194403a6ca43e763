//! Contiguous row storage that erases what it no longer holds.
//!
//! All templates live in one `Vec<i8>` of `capacity × dim` bytes, row-major, beside per-row scale, sum and
//! person. The byte buffer is always fully initialised and every byte past the live rows is zero: a removed
//! row is overwritten (by the last row, then the last row's old place is zeroed), and when the buffer grows
//! the old allocation is zeroed before it is freed. So cancelled biometric data does not linger in the
//! process's heap; on drop the whole buffer is zeroed too.
//!
//! Zeroing goes through `zeroize` (volatile writes and a compiler fence), so the compiler cannot drop the
//! stores as dead.
//!
//! Rows are also grouped in segments of [`SEGMENT_ROWS`], each with a version that changes whenever any of
//! its rows does, so a copy of the rows kept elsewhere (the GPU index's device memory) re-copies only the
//! segments that changed. Versions come from one process-wide counter, so two galleries never share one.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroize;

use crate::person::PersonId;

/// Rows allocated on the first insert.
const MIN_CAPACITY_ROWS: usize = 64;

/// Rows per segment: 32 MiB of int8 rows at dimension 128, re-copied whole when one of its rows changes.
pub const SEGMENT_ROWS: usize = 1 << 18;

/// The next segment version, process-wide.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
}

pub(crate) struct Rows {
    dim: usize,
    /// Live rows.
    len: usize,
    /// `capacity_rows × dim` bytes; rows `len..` are all zero.
    data: Vec<i8>,
    scales: Vec<f32>,
    sums: Vec<i32>,
    persons: Vec<PersonId>,
    /// One version per segment holding live rows (`len.div_ceil(SEGMENT_ROWS)` of them).
    versions: Vec<u64>,
}

impl Rows {
    pub(crate) fn new(dim: usize) -> Rows {
        Rows {
            dim,
            len: 0,
            data: Vec::new(),
            scales: Vec::new(),
            sums: Vec::new(),
            persons: Vec::new(),
            versions: Vec::new(),
        }
    }

    /// The version of each segment, in row order.
    pub(crate) fn versions(&self) -> &[u64] {
        &self.versions
    }

    /// Marks the segment holding `row` changed, adding it if `row` starts a new one.
    fn touch(&mut self, row: usize) {
        let segment = row / SEGMENT_ROWS;
        if segment == self.versions.len() {
            self.versions.push(next_version());
        } else {
            self.versions[segment] = next_version();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of rows `range`.
    pub(crate) fn data(&self, range: Range<usize>) -> &[i8] {
        &self.data[range.start * self.dim..range.end * self.dim]
    }

    pub(crate) fn scales(&self, range: Range<usize>) -> &[f32] {
        &self.scales[range]
    }

    pub(crate) fn sums(&self, range: Range<usize>) -> &[i32] {
        &self.sums[range]
    }

    pub(crate) fn persons(&self, range: Range<usize>) -> &[PersonId] {
        &self.persons[range]
    }

    /// The whole allocation, live rows and zeroed spare capacity alike (for erasure tests).
    #[cfg(test)]
    pub(crate) fn allocation(&self) -> &[i8] {
        &self.data
    }

    fn capacity_rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Makes room for at least `additional` more rows, moving to a new allocation and erasing the old one.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = self.len.saturating_add(additional);
        if needed <= self.capacity_rows() {
            return;
        }
        let rows = needed
            .max(self.capacity_rows().saturating_mul(2))
            .max(MIN_CAPACITY_ROWS);
        let mut data = vec![0i8; rows.saturating_mul(self.dim)];
        let live = self.len * self.dim;
        data[..live].copy_from_slice(&self.data[..live]);
        wipe(&mut self.data);
        self.data = data;
        let extra = rows - self.len;
        self.scales.reserve(extra);
        self.sums.reserve(extra);
        self.persons.reserve(extra);
    }

    /// Appends a row. `values.len()` must equal the dimension (the gallery checks it).
    pub(crate) fn push(&mut self, person: PersonId, values: &[i8], scale: f32, sum: i32) {
        debug_assert_eq!(values.len(), self.dim);
        self.reserve(1);
        let start = self.len * self.dim;
        self.data[start..start + self.dim].copy_from_slice(values);
        self.scales.push(scale);
        self.sums.push(sum);
        self.persons.push(person);
        self.touch(self.len);
        self.len += 1;
    }

    /// Removes row `row` by moving the last row into its place, then zeroes the last row's old bytes.
    pub(crate) fn swap_remove(&mut self, row: usize) {
        debug_assert!(row < self.len);
        let last = self.len - 1;
        let dim = self.dim;
        if row != last {
            self.data
                .copy_within(last * dim..(last + 1) * dim, row * dim);
        }
        wipe(&mut self.data[last * dim..(last + 1) * dim]);
        self.scales.swap_remove(row);
        self.sums.swap_remove(row);
        self.persons.swap_remove(row);
        self.touch(row);
        self.touch(last);
        self.len = last;
        self.versions.truncate(last.div_ceil(SEGMENT_ROWS));
    }

    /// Removes every row of `person`; returns how many.
    pub(crate) fn remove_person(&mut self, person: PersonId) -> usize {
        let mut removed = 0;
        // Walk backwards: the row swapped into place `r` comes from the end, which was already visited.
        for row in (0..self.len).rev() {
            if self.persons[row] == person {
                self.swap_remove(row);
                removed += 1;
            }
        }
        removed
    }

    /// Removes every row, zeroing the buffer but keeping the allocation.
    pub(crate) fn clear(&mut self) {
        wipe(&mut self.data);
        self.scales.clear();
        self.sums.clear();
        self.persons.clear();
        self.versions.clear();
        self.len = 0;
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        wipe(&mut self.data);
    }
}

fn wipe(bytes: &mut [i8]) {
    bytes.zeroize();
}
