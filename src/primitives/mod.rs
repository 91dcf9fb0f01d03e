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
/// ```
/// use agentcore_telemetry::{primitives::arena_stats, Counter};
///
/// let c = Counter::new().unwrap();
/// c.inc();
/// let stats = arena_stats();
/// assert!(stats.blocks >= 1);
/// assert!(stats.live_words >= 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArenaStats {
    /// Recording blocks ever created (each a per-thread copy of the arena).
    pub blocks: usize,
    /// Words allocated to live metrics.
    pub live_words: usize,
}

/// A reading of the process-wide slot arena's size.
pub fn arena_stats() -> ArenaStats {
    let arena = crate::sync::slots::global();
    ArenaStats {
        blocks: arena.block_count(),
        live_words: arena.live_words(),
    }
}
