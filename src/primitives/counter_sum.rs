//! Whether a histogram's or summary's sum may be exposed as an OpenMetrics `_sum`.
//!
//! OpenMetrics 1.0 treats a histogram's and a summary's Sum as a counter ("Semantically, Sum,
//! and buckets values are counters so MUST NOT be NaN or negative"), and a strict parser
//! (`prometheus_client`'s, our oracle) refuses a negative one. A series whose observations
//! can be negative has a sum that may fall, and cross zero both ways, any number of times:
//! it is no counter. Leaving `_sum` (and a histogram's `_count`, which goes with it) out only
//! while the sum read negative made the samples come and go: each return read to Prometheus as a
//! new series or a counter reset, and `rate()` over them was wrong across every gap; and a sum
//! that fell while staying positive (an observation of -5 after one of 10) read as a reset too.
//!
//! So the sum is exposed only while no negative value was ever recorded into it: a recording
//! marks the series before it adds a negative value, and from then on the series has no `_sum`
//! for the rest of its life (a series created again after [`remove`](crate::Family::remove)
//! starts afresh). That is a property of what was recorded, not of what earlier scrapes read or
//! exposed, so every scrape of the same state writes the same exposition (OpenMetrics 1.0,
//! "Statelessness": "What information has been exposed before MUST have no impact on future
//! expositions"); an earlier version compared each sum with the one the previous scrape had
//! exposed, and an exposition depended on whether a scrape came between two observations. A sum
//! of non-negative values only grows: the per-thread words only grow, the merge adds them in a
//! fixed order, and float addition is monotonic. NaN is never recorded (refused). The 0.0.4 text
//! format has no such rule and keeps the sum.
//!
//! # Orderings
//! The mark is `Relaxed`, followed by a `Release` fence before the recording adds the value to
//! its sum word; a scrape reads the sum words, then an `Acquire` fence, then the mark. A scrape
//! whose reading includes a negative value read a word written after that fence, so the fences
//! synchronise and it sees the mark: a sum that fell is never exposed, even once. A word the
//! recorder's thread wrote in an exclusive block that a later thread leased and went on writing
//! (plain stores, in no release sequence of the recorder's) is read through the later lessee's
//! `Release` fence, which `sync::slots::Arena::lease` issues after its `Acquire` of the block
//! (`src/loom/counter_sum.rs`). (A recorder
//! that found the mark set by another thread fences too: its load of the mark precedes its
//! fence, so the scrape reads the mark at least as late.) On x86 both fences are compiler
//! barriers only.

use std::sync::atomic::{Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

// `crate::sync`'s: loom's under `--cfg agentcore_loom`, so `src/loom/counter_sum.rs` explores
// the fences.
use crate::sync::{fence, AtomicBool};

/// The sticky "a negative value was recorded" mark of one series' sum (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct CounterSum {
    negative: AtomicBool,
}

impl CounterSum {
    /// Notes `v` before it is added to the sum: a negative one marks the series for good.
    #[inline(always)]
    pub(crate) fn record(&self, v: f64) {
        if v < 0.0 {
            self.mark();
        }
    }

    #[cold]
    #[inline(never)]
    fn mark(&self) {
        if !self.negative.load(Relaxed) {
            self.negative.store(true, Relaxed);
        }
        // Before the caller's add: a reading that includes the value sees the mark.
        fence(Release);
    }

    /// Whether `sum`, just read by an OpenMetrics scrape, is exposed: no negative value was
    /// recorded into it (and it is neither negative nor NaN, which then cannot happen).
    pub(crate) fn exposable(&self, sum: f64) -> bool {
        // After the sum's words were read: pairs with the fence in `mark`.
        fence(Acquire);
        !self.negative.load(Relaxed) && sum >= 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::CounterSum;

    #[test]
    fn a_sum_that_recorded_a_negative_value_is_never_exposed_again() {
        let s = CounterSum::default();
        assert!(s.exposable(0.0));
        s.record(5.0);
        s.record(0.0);
        s.record(-0.0);
        assert!(s.exposable(5.0), "no negative value recorded");
        assert!(s.exposable(5.0), "the same state, the same answer");
        s.record(-1.0);
        assert!(!s.exposable(4.0));
        s.record(3.0);
        assert!(!s.exposable(7.0), "sticky");
        let s = CounterSum::default();
        s.record(f64::NEG_INFINITY);
        assert!(!s.exposable(f64::NEG_INFINITY));
        assert!(!CounterSum::default().exposable(f64::NAN));
        assert!(!CounterSum::default().exposable(-0.5));
    }
}
