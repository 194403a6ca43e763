//! The scan pool: a few threads, each pinned to one core, that split one probe's scan between them.
//!
//! A single-probe scan is bound by memory bandwidth (it reads every template once), and one core cannot
//! draw the whole bandwidth of the machine. So [`Gallery::search`](super::Gallery::search) cuts the rows
//! into one contiguous range per thread, each thread scans its range into its own top-`k` list, and the
//! lists are merged. Results equal the one-thread scan exactly: each range's list holds the best `k`
//! persons of that range with their best row there, so every global top-`k` person's best row survives in
//! its range's list, and merging keeps the same total order (score, then lower row).
//!
//! The threads are a rayon pool (a kept work-stealing pool whose `join` runs borrowed closures without a
//! heap allocation), started once, and each thread pins itself to one of the cores this process may run
//! on, so the scan of a range stays on one core's caches. The scan itself allocates nothing: each thread
//! keeps its buffer of dot products between probes (`index/mod.rs`, `DOTS`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// Galleries below this many rows are scanned on the caller's thread: waking the pool costs more than
/// the scan (≈ 0.3 ms per 64k rows × 128 dims on one core).
pub const DEFAULT_MIN_ROWS: usize = 65_536;

/// Threads that share one probe's scan. Clone the `Arc` to share one pool between galleries.
pub struct ScanPool {
    pool: rayon::ThreadPool,
    threads: usize,
    min_rows: usize,
    pinned: Arc<AtomicUsize>,
}

impl std::fmt::Debug for ScanPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanPool")
            .field("threads", &self.threads)
            .field("pinned", &self.pinned())
            .field("min_rows", &self.min_rows)
            .finish()
    }
}

impl ScanPool {
    /// One thread per core this process may run on (its CPU affinity mask), each pinned to its core.
    pub fn per_core() -> Result<ScanPool> {
        ScanPool::new(allowed_cpus().len().max(1))
    }

    /// `threads` threads (at least one), thread `i` pinned to the `i`-th core this process may run on
    /// (wrapping round when there are more threads than cores).
    pub fn new(threads: usize) -> Result<ScanPool> {
        let threads = threads.max(1);
        let cpus = allowed_cpus();
        let pinned = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pinned);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("clearway-scan-{i}"))
            .start_handler(move |i| {
                if let Some(&cpu) = cpus.get(i % cpus.len().max(1))
                    && pin_to(cpu)
                {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build()
            .map_err(|e| Error::ScanPool {
                threads,
                reason: e.to_string(),
            })?;
        Ok(ScanPool {
            pool,
            threads,
            min_rows: DEFAULT_MIN_ROWS,
            pinned,
        })
    }

    /// The same pool, used only for galleries of at least `rows` rows (smaller ones are scanned on the
    /// caller's thread). `0` always uses the pool; tests use it to split even tiny galleries.
    pub fn with_min_rows(mut self, rows: usize) -> ScanPool {
        self.min_rows = rows;
        self
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Threads that pinned themselves to a core so far (threads start lazily in the background; a
    /// container may forbid pinning, and the scan is as exact unpinned).
    pub fn pinned(&self) -> usize {
        self.pinned.load(Ordering::Relaxed)
    }

    /// Into how many ranges a scan of `rows` rows is cut.
    pub(crate) fn parts(&self, rows: usize) -> usize {
        if rows < self.min_rows.max(2) {
            1
        } else {
            self.threads.min(rows)
        }
    }

    /// Runs `f` inside the pool, where `rayon::join` and rayon's parallel iterators spread over its
    /// threads; the caller waits. The node also runs its bulk sealing and opening of person records
    /// here, so one set of pinned threads serves all of the gallery's parallel work.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}

/// The cores this process may run on, lowest first; empty if the mask cannot be read.
fn allowed_cpus() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&cpu| set.is_set(cpu))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Pins the calling thread to `cpu`; whether it worked.
fn pin_to(cpu: usize) -> bool {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).is_ok()
}
