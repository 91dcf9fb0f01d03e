//! The telemetry's own state, as readings and as metrics: what the slot arena holds (the memory
//! every counter, histogram and summary records into) and how reclamation of removed series is
//! doing (what waits to be freed, and whether the process-wide barrier it needs works).
//!
//! [`Registry::register_self_metrics`] exposes them; the
//! [`MetricsCollector`](crate::MetricsCollector) registers them in its registry.

use super::Registry;
use crate::exposition::MetricKind;
use crate::sync::era::Domain;
use crate::Error;

/// What the process-wide slot arena holds.
///
/// Resident memory for recording is at most `live_words × 8 bytes` per block created, and blocks
/// are bounded by the machine's core count (`max_exclusive_blocks + max_stripes`), not by the
/// number of threads (see the README's limits table).
///
/// ```
/// use agentcore_telemetry::{registry::self_metrics::arena_stats, Counter};
///
/// let c = Counter::new().unwrap();
/// c.inc();
/// let stats = arena_stats();
/// assert!(stats.exclusive_blocks + stats.stripes >= 1);
/// assert!(stats.exclusive_blocks <= stats.max_exclusive_blocks);
/// assert!(stats.live_words >= 2);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArenaStats {
    /// Exclusive blocks created (each leased by one recording thread at a time).
    pub exclusive_blocks: usize,
    /// The most exclusive blocks there can be (`cores + 2`, at least 4).
    pub max_exclusive_blocks: usize,
    /// Shared blocks (stripes) created, for threads beyond the exclusive blocks.
    pub stripes: usize,
    /// The most stripes there can be (`cores / 2`, at least 2).
    pub max_stripes: usize,
    /// Words allocated to live metrics (ranges are powers of two).
    pub live_words: usize,
    /// Words per block (address space reserved per block; untouched pages cost no memory).
    pub capacity_words: usize,
}

/// A reading of the process-wide slot arena.
///
/// ```
/// use agentcore_telemetry::registry::self_metrics::arena_stats;
/// use agentcore_telemetry::{Buckets, Histogram};
///
/// let before = arena_stats().live_words;
/// // Two bounds: three bucket words (`+Inf` included) and a sum word.
/// let _latency = Histogram::new(Buckets::new(vec![1.0, 2.0]).unwrap()).unwrap();
/// let stats = arena_stats();
/// assert_eq!(stats.live_words, before + 4);
/// assert!(stats.live_words <= stats.capacity_words);
/// ```
pub fn arena_stats() -> ArenaStats {
    let Some(arena) = crate::sync::slots::global() else {
        return ArenaStats::default();
    };
    let (exclusive_blocks, stripes) = arena.block_counts();
    let (max_exclusive_blocks, max_stripes) = arena.shape();
    ArenaStats {
        exclusive_blocks,
        max_exclusive_blocks,
        stripes,
        max_stripes,
        live_words: arena.live_words(),
        capacity_words: arena.capacity(),
    }
}

/// How reclamation of removed series (and of replaced series tables) is doing, process-wide.
///
/// A lookup's guard keeps alive what existed when it was taken; `pending` is what waits for
/// such guards to end. It stays bounded whatever callers hold (see [`SeriesRef`]).
/// `barrier_fallbacks` and `deferred` count reclaims whose `membarrier(2)` failed (a seccomp
/// filter installed after start-up): the first used the `mprotect` barrier instead, the second
/// found no barrier at all and freed nothing.
///
/// [`SeriesRef`]: crate::SeriesRef
///
/// ```
/// use agentcore_telemetry::{registry::self_metrics::reclamation_stats, Registry};
///
/// let registry = Registry::new();
/// let f = registry.counter_family("jobs_total", "Jobs.", &["id"]).unwrap();
/// f.with_label_values(&["1"]).unwrap().inc();
/// assert!(f.remove(&["1"]));
/// let stats = reclamation_stats();
/// assert!(stats.retired >= 1);
/// assert!(stats.freed + stats.pending <= stats.retired);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReclamationStats {
    /// Objects (series, tables) retired since the process started.
    pub retired: u64,
    /// Objects freed.
    pub freed: u64,
    /// Objects retired and not yet freed.
    pub pending: u64,
    /// Bytes of the objects waiting: what freeing them gives back (a series' struct and label
    /// values, a table's slot array; not the metrics' recording words in the slot arena).
    pub pending_bytes: u64,
    /// Reclaims that used the `mprotect` barrier because `membarrier` failed.
    pub barrier_fallbacks: u64,
    /// Reclaims that freed nothing because no process-wide barrier was available.
    pub deferred: u64,
}

/// A reading of process-wide reclamation.
///
/// ```
/// use agentcore_telemetry::registry::self_metrics::reclamation_stats;
/// use agentcore_telemetry::Registry;
///
/// let registry = Registry::new();
/// let jobs = registry.gauge_family("job_progress", "Progress.", &["job"]).unwrap();
/// jobs.with_label_values(&["j-1"]).unwrap().set(0.5);
/// let before = reclamation_stats();
/// assert!(jobs.remove(&["j-1"])); // the series is retired, freed once no reader can hold it
/// let after = reclamation_stats();
/// assert_eq!(after.retired, before.retired + 1);
/// assert!(after.freed + after.pending <= after.retired);
/// ```
pub fn reclamation_stats() -> ReclamationStats {
    let s = Domain::global().stats();
    ReclamationStats {
        retired: s.retired,
        freed: s.freed,
        pending: s.pending,
        pending_bytes: s.pending_bytes,
        barrier_fallbacks: s.barrier_fallbacks,
        deferred: s.deferred,
    }
}

/// The self-metrics [`Registry::register_self_metrics`] adds, by name.
pub const SELF_METRICS: [&str; 7] = [
    "agentcore_telemetry_arena_blocks",
    "agentcore_telemetry_arena_live_words",
    "agentcore_telemetry_reclamation_freed_total",
    "agentcore_telemetry_reclamation_pending",
    "agentcore_telemetry_reclamation_pending_bytes",
    "agentcore_telemetry_reclamation_barrier_fallbacks_total",
    "agentcore_telemetry_reclamation_deferred_total",
];

impl Registry {
    /// Registers the telemetry's own metrics ([`SELF_METRICS`]), read at each scrape from
    /// [`arena_stats`] and [`reclamation_stats`]: all of them, or none when one of the names
    /// clashes with a registered family ([`Error::DuplicateMetric`]).
    ///
    /// ```
    /// use agentcore_telemetry::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.register_self_metrics().unwrap();
    /// let text = registry.encode_text();
    /// assert!(text.contains("# TYPE agentcore_telemetry_arena_blocks gauge\n"));
    /// assert!(text.contains("agentcore_telemetry_reclamation_deferred_total 0\n"));
    /// ```
    pub fn register_self_metrics(&self) -> Result<(), Error> {
        let [blocks, words, freed, pending, pending_bytes, fallbacks, deferred] = SELF_METRICS;
        // All or nothing: one registration of the seven (`register_fns`).
        self.register_fns(vec![
            (
                MetricKind::Gauge,
                blocks,
                "Recording blocks of the slot arena (copies of its words; at most max(cores + 2, 4) + max(cores / 2, 2)).",
                Box::new(|_| {
                    let s = arena_stats();
                    (s.exclusive_blocks + s.stripes) as f64
                }),
            ),
            (
                MetricKind::Gauge,
                words,
                "Slot-arena words held by live metrics.",
                Box::new(|_| arena_stats().live_words as f64),
            ),
            (
                MetricKind::Counter,
                freed,
                "Removed series and replaced tables freed.",
                Box::new(|_| reclamation_stats().freed as f64),
            ),
            (
                MetricKind::Gauge,
                pending,
                "Removed series and replaced tables waiting for readers' guards to end.",
                Box::new(|_| reclamation_stats().pending as f64),
            ),
            (
                MetricKind::Gauge,
                pending_bytes,
                "Bytes of the objects waiting (series with their label values, tables with their slots).",
                Box::new(|_| reclamation_stats().pending_bytes as f64),
            ),
            (
                MetricKind::Counter,
                fallbacks,
                "Reclaims that used the mprotect barrier because membarrier(2) failed.",
                Box::new(|_| reclamation_stats().barrier_fallbacks as f64),
            ),
            (
                MetricKind::Counter,
                deferred,
                "Reclaims that freed nothing because no process-wide barrier was available.",
                Box::new(|_| reclamation_stats().deferred as f64),
            ),
        ])
    }
}
