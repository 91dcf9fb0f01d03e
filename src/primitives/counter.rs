//! [`Counter`]: a monotonically increasing value, sharded per thread.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::sync::slots::{self, OwnedSlots};
use crate::Error;

/// Integers below this are exact in an `f64`; increments that are whole numbers below it go to the
/// integer word, so the usual `inc()`/`inc_by()` counts never lose precision.
const EXACT_F64_INT: f64 = 9_007_199_254_740_992.0; // 2^53

/// A monotonically increasing counter.
///
/// Each thread adds into its own word of the slot arena (`sync::slots`) with a relaxed load and
/// store (no shared cache line, no read-modify-write); [`Counter::get`] and scrapes sum the words.
/// Whole-number increments are kept in a `u64`; fractional ones (such as the specification's
/// `memory_released_mb_total += 25.5`) in a separate `f64` word. Cloning is cheap and clones share
/// the value.
///
/// ```
/// use agentcore_telemetry::Counter;
///
/// let c = Counter::new().unwrap();
/// c.inc();
/// c.inc_by(2);
/// c.add(0.5).unwrap();
/// assert!(c.add(-1.0).is_err()); // refused, value untouched
/// assert_eq!(c.get(), 3.5);
/// ```
#[derive(Clone)]
pub struct Counter {
    /// The integer word, copied out of `inner` so recording needs no dependent load through the
    /// `Arc` (the fractional word is `word + 1`).
    word: u32,
    inner: Arc<CounterInner>,
}

struct CounterInner {
    /// Word 0: integer increments; word 1: fractional increments as `f64` bits. Its `Drop` frees
    /// the words once the last handle is gone.
    _slots: OwnedSlots,
    rejected: AtomicU64,
}

impl Counter {
    /// One of the crate's own counters (span counts, overflow folds): never fails, taking its
    /// words from the arena's reserve when metrics have exhausted it.
    pub(crate) fn new_internal() -> Counter {
        let slots = OwnedSlots::new_internal();
        Counter {
            word: slots.range().start(),
            inner: Arc::new(CounterInner {
                _slots: slots,
                rejected: AtomicU64::new(0),
            }),
        }
    }

    /// A new counter at zero, not registered anywhere (see
    /// [`Registry::counter_family`](crate::Registry::counter_family) for registered ones).
    pub fn new() -> Result<Counter, Error> {
        let slots = OwnedSlots::new(2)?;
        Ok(Counter {
            word: slots.range().start(),
            inner: Arc::new(CounterInner {
                _slots: slots,
                rejected: AtomicU64::new(0),
            }),
        })
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        slots::add_u64(self.word, 1);
    }

    /// Adds `n`.
    #[inline]
    pub fn inc_by(&self, n: u64) {
        slots::add_u64(self.word, n);
    }

    /// Adds `v`, which must be finite and non-negative; otherwise the increment is refused,
    /// counted in [`Counter::rejected`], and the value is untouched.
    #[inline]
    pub fn add(&self, v: f64) -> Result<(), Error> {
        if v.is_nan() || v < 0.0 || v == f64::INFINITY {
            self.inner.rejected.fetch_add(1, Relaxed);
            return Err(Error::InvalidIncrement { value: v });
        }
        let start = self.word;
        if v < EXACT_F64_INT && v.fract() == 0.0 {
            slots::add_u64(start, v as u64);
        } else {
            slots::add_f64(start + 1, v);
        }
        Ok(())
    }

    /// The current value: the sum over every thread.
    pub fn get(&self) -> f64 {
        let (int, frac) = self.parts();
        int as f64 + frac
    }

    /// The whole-number part and the fractional-increment part of the value, separately (the
    /// encoder prints a counter that only ever saw whole numbers as an exact integer).
    pub fn parts(&self) -> (u64, f64) {
        match self.inner._slots.arena() {
            Some(arena) => (arena.read_u64(self.word), arena.read_f64(self.word + 1)),
            None => (0, 0.0), // no arena at all: nothing could be recorded
        }
    }

    /// How many increments were refused (negative, NaN or infinite).
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Relaxed)
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.get())
            .finish()
    }
}
