//! Whether a histogram's or summary's sum may still be exposed as an OpenMetrics `_sum`.
//!
//! OpenMetrics 1.0 treats a histogram's and a summary's Sum as a counter ("Semantically, Sum,
//! and buckets values are counters so MUST NOT be NaN or negative"), and a strict parser
//! (`prometheus_client`'s, our oracle) refuses a negative one. A series whose observations
//! can be negative has a sum that may cross zero, both ways, any number of times. Leaving
//! `_sum` (and a histogram's `_count`, which goes with it) out only while the sum reads
//! negative made the samples come and go: each return read to Prometheus as a new series or
//! a counter reset, and `rate()` over them was wrong across every gap. So once an OpenMetrics
//! scrape reads the sum negative or NaN, the series has no `_sum` for the rest of its life
//! (a series created again after [`remove`](crate::Family::remove) starts afresh), as a
//! series that can go negative is not a counter. The 0.0.4 text format has no such rule and
//! keeps the sum.
//!
//! # Orderings
//! One flag, only ever set (`Relaxed`): concurrent scrapes may disagree for the one scrape
//! that sets it, as they may on the sum itself; every scrape that starts after a scrape
//! that set it returned reads it set (the registry's scrape lock, or the happens-before of
//! whatever told the caller the first scrape had returned).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// The sticky "not a counter any more" flag of one series' sum (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct CounterSum {
    invalid: AtomicBool,
}

impl CounterSum {
    /// Whether `sum`, read by an OpenMetrics scrape now, is exposed: it is non-negative and
    /// no scrape before read it negative or NaN. A negative or NaN `sum` marks the series for
    /// good.
    pub(crate) fn exposable(&self, sum: f64) -> bool {
        if sum >= 0.0 && !self.invalid.load(Relaxed) {
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
    fn a_sum_once_negative_or_nan_is_never_exposed_again() {
        let s = CounterSum::default();
        assert!(s.exposable(0.0));
        assert!(s.exposable(5.0));
        assert!(!s.exposable(-1.0));
        assert!(!s.exposable(3.0), "sticky");
        let s = CounterSum::default();
        assert!(!s.exposable(f64::NAN));
        assert!(!s.exposable(1.0), "sticky");
        assert!(!CounterSum::default().exposable(-0.5));
    }
}
