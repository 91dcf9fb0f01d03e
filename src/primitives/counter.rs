//! [`Counter`]: a monotonically increasing value, sharded per thread.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::exemplar::{self, ExemplarCell, ExemplarRead, Exemplars};
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
    /// [`Exemplars::TraceBased`]: the exemplar record, which increments offer the current
    /// sampled span to. Its own `Arc` held in the handle, beside `word`, so that the check is one
    /// null test of a pointer the handle holds and the record is reached without a load through
    /// `inner` (issue 13: the exemplar costs at most twice the bare increment).
    trace_cell: Option<Arc<ExemplarCell>>,
    inner: Arc<CounterInner>,
}

struct CounterInner {
    /// Word 0: integer increments; word 1: fractional increments as `f64` bits. Its `Drop` frees
    /// the words once the last handle is gone.
    _slots: OwnedSlots,
    rejected: AtomicU64,
    /// The exemplar record (`primitives::exemplar`), when exemplars are on.
    exemplar: Option<Arc<ExemplarCell>>,
    /// When the counter was made (its value was zero), microseconds since the Unix epoch, or
    /// [`CREATED_UNKNOWN`] once its total is set from elsewhere (the `metrics` bridge's
    /// `absolute`). Only ever stored to that value; read at scrapes.
    created_micros: AtomicU64,
}

/// `CounterInner::created_micros` of a counter whose total counts from a start this process
/// cannot know.
const CREATED_UNKNOWN: u64 = u64::MAX;

impl Counter {
    /// Whether `self` and `other` are handles to the same counter (clones of one another), not
    /// merely equal in value: what the `metrics` bridge checks to tell the series it cached from
    /// a new one created under the same label values after a removal, and what a tracer's
    /// registration checks to tell its own counters from another tracer's.
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The same for every clone of this counter and different for every other live counter:
    /// the metrics bridge serialises `absolute` per counter by it, whichever handle calls.
    #[cfg(feature = "metrics-bridge")]
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// One of the crate's own counters (span counts, overflow folds): never fails, taking its
    /// words from the arena's reserve when metrics have exhausted it.
    pub(crate) fn new_internal() -> Counter {
        let slots = OwnedSlots::new_internal();
        Counter {
            word: slots.range().start(),
            trace_cell: None,
            inner: Arc::new(CounterInner {
                _slots: slots,
                rejected: AtomicU64::new(0),
                exemplar: None,
                created_micros: AtomicU64::new(super::unix_micros_now()),
            }),
        }
    }

    /// Adds one to a counter made by [`new_internal`](Self::new_internal), which never keeps
    /// an exemplar: the increment alone, without [`inc`](Self::inc)'s exemplar check (the
    /// tracer's span counters, on every span).
    #[inline(always)]
    pub(crate) fn inc_internal(&self) {
        debug_assert!(self.trace_cell.is_none());
        slots::add_u64(self.word, 1);
    }

    /// A new counter at zero, not registered anywhere (see
    /// [`Registry::counter_family`](crate::Registry::counter_family) for registered ones).
    ///
    /// ```
    /// use agentcore_telemetry::Counter;
    ///
    /// let c = Counter::new().unwrap();
    /// assert_eq!(c.get(), 0.0);
    /// c.clone().inc(); // clones share the value
    /// assert_eq!(c.get(), 1.0);
    /// ```
    pub fn new() -> Result<Counter, Error> {
        Counter::with_exemplars(Exemplars::Off)
    }

    /// A new counter at zero keeping exemplars as `exemplars` says (see
    /// [`primitives::exemplar`](crate::primitives::exemplar)); they appear on its `_total`
    /// sample in the OpenMetrics exposition.
    ///
    /// ```
    /// use agentcore_telemetry::{Counter, Exemplars};
    ///
    /// let errors = Counter::with_exemplars(Exemplars::TraceBased).unwrap();
    /// errors.inc(); // outside a sampled span: counted, no exemplar
    /// errors.inc_with_exemplar(&[("request_id", "r-42")]).unwrap();
    /// assert!(errors.inc_with_exemplar(&[("bad-name", "x")]).is_err()); // still counted
    /// assert_eq!(errors.get(), 3.0);
    /// ```
    pub fn with_exemplars(exemplars: Exemplars) -> Result<Counter, Error> {
        let slots = OwnedSlots::new(2)?;
        let exemplar = exemplars.stored().then(|| Arc::new(ExemplarCell::new()));
        Ok(Counter {
            word: slots.range().start(),
            trace_cell: exemplar
                .clone()
                .filter(|_| exemplars == Exemplars::TraceBased),
            inner: Arc::new(CounterInner {
                _slots: slots,
                rejected: AtomicU64::new(0),
                exemplar,
                created_micros: AtomicU64::new(super::unix_micros_now()),
            }),
        })
    }

    /// Adds one.
    ///
    /// ```
    /// use agentcore_telemetry::Counter;
    ///
    /// let c = Counter::new().unwrap();
    /// c.inc();
    /// c.inc();
    /// assert_eq!(c.get(), 2.0);
    /// ```
    #[inline]
    pub fn inc(&self) {
        // Wrapping, and one instruction: it cannot wrap (see `slots::COUNTER_CAP`).
        slots::add_u64(self.word, 1);
        self.trace_exemplar(1.0);
    }

    /// Adds `n`. A counter never goes backwards: each thread's share of its whole part stops
    /// at 2^63 (about 9.2 × 10^18) rather than wrap, and their sum, read at a scrape, stops at
    /// `u64::MAX`.
    ///
    /// ```
    /// use agentcore_telemetry::Counter;
    ///
    /// let c = Counter::new().unwrap();
    /// c.inc();
    /// c.inc_by(2);
    /// assert_eq!(c.get(), 3.0);
    /// ```
    #[inline]
    pub fn inc_by(&self, n: u64) {
        // Capped (`slots::COUNTER_CAP`): a large `n` must not wrap it; a counter never goes
        // backwards.
        slots::add_u64_capped(self.word, n);
        self.trace_exemplar(n as f64);
    }

    /// Adds one and keeps `labels` as its exemplar (label names and values at most 128 code
    /// points together; allocation-free). The increment is always recorded; the exemplar is
    /// refused with [`Error::InvalidExemplar`] when its labels are invalid, and with
    /// [`Error::ExemplarsOff`] (no allocation) when the counter has exemplars
    /// [`Off`](Exemplars::Off).
    ///
    /// ```
    /// use agentcore_telemetry::{Counter, Exemplars};
    ///
    /// let c = Counter::with_exemplars(Exemplars::Explicit).unwrap();
    /// c.inc_with_exemplar(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]).unwrap();
    /// assert!(Counter::new().unwrap().inc_with_exemplar(&[("a", "b")]).is_err());
    /// ```
    pub fn inc_with_exemplar(&self, labels: &[(&str, &str)]) -> Result<(), Error> {
        self.inc_by_with_exemplar(1, labels)
    }

    /// Adds `n` and keeps `labels` as its exemplar; see [`Counter::inc_with_exemplar`].
    ///
    /// ```
    /// use agentcore_telemetry::{Counter, Exemplars};
    ///
    /// let bytes = Counter::with_exemplars(Exemplars::Explicit).unwrap();
    /// bytes.inc_by_with_exemplar(512, &[("request_id", "r-7")]).unwrap();
    /// let plain = Counter::new().unwrap();
    /// assert!(plain.inc_by_with_exemplar(3, &[("request_id", "r-8")]).is_err());
    /// assert_eq!((bytes.get(), plain.get()), (512.0, 3.0)); // both increments recorded
    /// ```
    pub fn inc_by_with_exemplar(&self, n: u64, labels: &[(&str, &str)]) -> Result<(), Error> {
        slots::add_u64_capped(self.word, n);
        match &self.inner.exemplar {
            Some(cell) => exemplar::record_explicit(cell, labels, n as f64),
            None => Err(exemplar::exemplars_off()),
        }
    }

    /// Which exemplars this counter keeps.
    ///
    /// ```
    /// use agentcore_telemetry::{Counter, Exemplars};
    ///
    /// assert_eq!(Counter::new().unwrap().exemplars(), Exemplars::Off);
    /// let c = Counter::with_exemplars(Exemplars::TraceBased).unwrap();
    /// assert_eq!(c.exemplars(), Exemplars::TraceBased);
    /// ```
    pub fn exemplars(&self) -> Exemplars {
        match (&self.inner.exemplar, &self.trace_cell) {
            (None, _) => Exemplars::Off,
            (Some(_), None) => Exemplars::Explicit,
            (Some(_), Some(_)) => Exemplars::TraceBased,
        }
    }

    /// The kept exemplar, read at scrape time.
    pub(crate) fn exemplar(&self) -> Option<ExemplarRead> {
        self.inner.exemplar.as_ref()?.read()
    }

    /// The trace-based exemplar check, inlined into the recording methods: a null test, then one
    /// thread-local load and a peek at the record inside a span that holds it already (see
    /// [`exemplar::record_trace_based`]).
    #[inline(always)]
    fn trace_exemplar(&self, v: f64) {
        if let Some(cell) = &self.trace_cell {
            exemplar::record_trace_based(cell, v);
        }
    }

    /// Adds `v`, which must be finite and non-negative; otherwise the increment is refused,
    /// counted in [`Counter::rejected`], and the value is untouched.
    ///
    /// ```
    /// use agentcore_telemetry::Counter;
    ///
    /// let released_mb = Counter::new().unwrap();
    /// released_mb.add(25.5).unwrap();
    /// released_mb.add(4.0).unwrap();
    /// assert!(released_mb.add(f64::NAN).is_err());
    /// assert_eq!(released_mb.get(), 29.5);
    /// ```
    #[inline]
    pub fn add(&self, v: f64) -> Result<(), Error> {
        if v.is_nan() || v < 0.0 || v == f64::INFINITY {
            self.inner.rejected.fetch_add(1, Relaxed);
            return Err(Error::InvalidIncrement { value: v });
        }
        let start = self.word;
        if v < EXACT_F64_INT && v.fract() == 0.0 {
            slots::add_u64_capped(start, v as u64);
        } else {
            slots::add_f64(start + 1, v);
        }
        self.trace_exemplar(v);
        Ok(())
    }

    /// The current value: the sum over every thread.
    ///
    /// ```
    /// use agentcore_telemetry::Counter;
    ///
    /// let c = Counter::new().unwrap();
    /// let c2 = c.clone();
    /// std::thread::spawn(move || c2.inc_by(5)).join().unwrap();
    /// c.add(0.25).unwrap();
    /// assert_eq!(c.get(), 5.25);
    /// ```
    pub fn get(&self) -> f64 {
        let (int, frac) = self.parts();
        int as f64 + frac
    }

    /// The whole-number part and the fractional-increment part of the value, separately (the
    /// encoder prints a counter that only ever saw whole numbers as an exact integer).
    ///
    /// ```
    /// use agentcore_telemetry::Counter;
    ///
    /// let c = Counter::new().unwrap();
    /// c.inc_by(3);
    /// c.add(2.0).unwrap(); // whole: goes to the integer part
    /// c.add(0.5).unwrap();
    /// assert_eq!(c.parts(), (5, 0.5));
    /// ```
    pub fn parts(&self) -> (u64, f64) {
        match self.inner._slots.arena() {
            Some(arena) => (arena.read_u64(self.word), arena.read_f64(self.word + 1)),
            None => (0, 0.0), // no arena at all: nothing could be recorded
        }
    }

    /// When the counter was made, in microseconds since the Unix epoch: the OpenMetrics
    /// `_created` of every series that exposes it (see `Series::created`). `None` once
    /// [`forget_created`](Self::forget_created) has run.
    pub(crate) fn created_micros(&self) -> Option<u64> {
        match self.inner.created_micros.load(Relaxed) {
            CREATED_UNKNOWN => None,
            micros => Some(micros),
        }
    }

    /// Marks the counter's total as counted elsewhere, from a start this process cannot know
    /// (the `metrics` bridge's `absolute`, which mirrors another counter): from now on it has
    /// no OpenMetrics `_created`, as a scrape-time counter has none. OpenMetrics 1.0, "Counter":
    /// if present, Created "MUST also be set to the timestamp of the reset"; the time the
    /// counter was made here is not that. Sticky: a clone's later `inc` does not bring it back.
    #[cfg(feature = "metrics-bridge")]
    pub(crate) fn forget_created(&self) {
        self.inner.created_micros.store(CREATED_UNKNOWN, Relaxed);
    }

    /// How many increments were refused (negative, NaN or infinite).
    ///
    /// ```
    /// use agentcore_telemetry::Counter;
    ///
    /// let c = Counter::new().unwrap();
    /// assert!(c.add(-1.0).is_err());
    /// assert!(c.add(f64::INFINITY).is_err());
    /// c.add(1.0).unwrap();
    /// assert_eq!((c.rejected(), c.get()), (2, 1.0));
    /// ```
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
