//! Whether a histogram's or summary's sum may still be exposed as an OpenMetrics `_sum`.
//!
//! OpenMetrics 1.0 treats a histogram's and a summary's Sum as a counter ("Semantically, Sum,
//! and buckets values are counters so MUST NOT be NaN or negative"), and a strict parser
//! (`prometheus_client`'s, our oracle) refuses a negative one. A series whose observations
//! can be negative has a sum that may fall, and cross zero both ways, any number of times.
//! Leaving `_sum` (and a histogram's `_count`, which goes with it) out only while the sum read
//! negative made the samples come and go: each return read to Prometheus as a new series or a
//! counter reset, and `rate()` over them was wrong across every gap; and a sum that fell while
//! staying positive (an observation of -5 after one of 10) read as a reset too. So a scrape
//! exposes the sum only while it behaves as a counter: not negative, not NaN, and not below
//! the sum the previous OpenMetrics scrape exposed. Once it is, the series has no `_sum` for
//! the rest of its life (a series created again after [`remove`](crate::Family::remove)
//! starts afresh), as a series that can fall is not a counter. A sum that only grows never
//! trips it: the per-thread words only grow, the merge adds them in a fixed order, and float
//! addition is monotonic (were a merge ever to lose an ulp, hiding the sum would still be
//! right: Prometheus would read a reset). The 0.0.4 text format has no such rule and keeps
//! the sum.
//!
//! # Orderings
//! A flag, only ever set, and the last sum exposed, both `Relaxed`: the scrapes of one
//! registry are serialised by its scrape lock, whose release and acquire order them. A series
//! shared by two registries (one handle inserted into a family of each with
//! `Family::insert_metric`) may be scraped concurrently; a scrape that read an older sum after
//! the other stored a newer one then sets the flag with the sum not fallen: the sum is hidden
//! for good, never exposed falling.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// The sticky "not a counter any more" flag of one series' sum, and the sum last exposed (see
/// the module docs).
#[derive(Debug, Default)]
pub(crate) struct CounterSum {
    invalid: AtomicBool,
    /// The bits of the last sum exposed (`0.0` before the first).
    last: AtomicU64,
}

impl CounterSum {
    /// Whether `sum`, read by an OpenMetrics scrape now, is exposed: it is not negative, not
    /// NaN, not below the last sum exposed, and no scrape before found it so. Otherwise the
    /// series is marked for good.
    pub(crate) fn exposable(&self, sum: f64) -> bool {
        if self.invalid.load(Relaxed) {
            return false;
        }
        // False for NaN, and for any negative sum (the last one is at least 0.0).
        if sum >= f64::from_bits(self.last.load(Relaxed)) {
            self.last.store(sum.to_bits(), Relaxed);
            return true;
        }
        self.invalid.store(true, Relaxed);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::CounterSum;

    #[test]
    fn a_sum_once_negative_nan_or_fallen_is_never_exposed_again() {
        let s = CounterSum::default();
        assert!(s.exposable(0.0));
        assert!(s.exposable(5.0));
        assert!(!s.exposable(-1.0));
        assert!(!s.exposable(3.0), "sticky");
        let s = CounterSum::default();
        assert!(!s.exposable(f64::NAN));
        assert!(!s.exposable(1.0), "sticky");
        assert!(!CounterSum::default().exposable(-0.5));
        // A fall while positive: 10, then 5.
        let s = CounterSum::default();
        assert!(s.exposable(10.0));
        assert!(s.exposable(10.0), "equal is no fall");
        assert!(!s.exposable(5.0));
        assert!(!s.exposable(20.0), "sticky");
    }
}
