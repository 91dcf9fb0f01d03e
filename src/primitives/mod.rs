//! The metric primitives, recording into the crate-private slot arena (`sync::slots`).
//!
//! All handles are `Send + Sync` and cheap to clone (clones share the value).

pub mod counter;
pub mod gauge;
pub mod histogram;
pub mod info;
pub mod summary;

pub use counter::Counter;
pub use gauge::Gauge;
pub use histogram::{Buckets, Histogram, HistogramSnapshot};
pub use info::Info;
pub use summary::{Summary, SummaryConfig, SummaryReading};

/// What the process-wide slot arena (where every counter, histogram and summary records) holds.
///
/// Resident memory for recording is at most `live_words × 8 bytes` per block created, and the
/// blocks are bounded by the machine's core count, not by the number of threads (see the README's
/// limits table).
///
/// ```
/// use agentcore_telemetry::{primitives::arena_stats, Counter};
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
    /// The most exclusive blocks there can be (`2 × cores`, at least 4).
    pub max_exclusive_blocks: usize,
    /// Shared blocks (stripes) created, for threads beyond the exclusive blocks.
    pub stripes: usize,
    /// The most stripes there can be (`cores`, at least 2).
    pub max_stripes: usize,
    /// Words allocated to live metrics (ranges are powers of two).
    pub live_words: usize,
    /// Words per block (address space reserved per block; untouched pages cost no memory).
    pub capacity_words: usize,
}

/// A reading of the process-wide slot arena.
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
