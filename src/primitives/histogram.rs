//! [`Histogram`] and its bucket layout, [`Buckets`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::counter_sum::CounterSum;
use super::exemplar::{self, ExemplarCell, ExemplarRead, Exemplars};
use crate::exposition::float::{format_go_float, format_openmetrics_canonical};
use crate::sync::slots::{OwnedSlots, OwnedWords, Words, MAX_RANGE_WORDS};
use crate::Error;

/// Bucket bounds above this many are refused (a series' words must fit in one arena range: the
/// bounds, the `+Inf` bucket and the sum).
pub const MAX_BUCKETS: usize = MAX_RANGE_WORDS - 2;

/// Up to this many bounds, the bucket index is found with a branch-free count (vectorised by the
/// compiler); above it, with a binary search. (Layouts with a [`ClassIndex`] use that first.)
const LINEAR_SEARCH_MAX: usize = 32;

/// The most bounds one class of [`ClassIndex`] may hold for a layout to get one.
const CLASS_MAX_BOUNDS: usize = 4;

/// A precomputed bucket index, looked up by the top 12 bits of an observation (its sign and
/// binary exponent, so each *class* is one octave `[2^e, 2^(e+1))` of positive or negative values,
/// or `±Inf`/NaN): `first[class]` counts the bounds below every value of the class, and at most
/// `k` bounds lie inside any class, so the index of `v` is `first[class]` plus `v > bound` over
/// the next `k` bounds (the bounds padded with `+Inf`). Prometheus' default buckets (and any
/// exponential layout with a factor of 2 or more) have one bound per octave at most: one table
/// load and one comparison, whatever the number of buckets, with no branch on the value.
struct ClassIndex {
    /// Bounds inside any one class, at most (1 to [`CLASS_MAX_BOUNDS`]).
    k: usize,
    /// The bounds, then `k` times `+Inf` (so `first + j` never leaves it). Shared (as is `first`)
    /// with the [`OneBoundIndex`] every histogram of the layout copies.
    padded: Arc<[f64]>,
    /// Per class (`v.to_bits() >> 52`), the number of bounds below all of its values.
    first: Arc<[u8; 4096]>,
}

/// A [`ClassIndex`] with one bound per class at most (`k == 1`), which a [`Histogram`] copies
/// into itself so that an observation reaches the tables without a load through its
/// [`Buckets`]: the bucket of `v` is `first[class] + (v > padded[first[class]])`.
#[derive(Clone)]
struct OneBoundIndex {
    /// The bounds, then one `+Inf`.
    padded: Arc<[f64]>,
    first: Arc<[u8; 4096]>,
}

impl OneBoundIndex {
    /// The number of bounds strictly below `v` (not NaN).
    #[inline(always)]
    fn index(&self, v: f64) -> usize {
        // `>> 52` of a u64 is below 4096: the table lookup needs no bounds check.
        let lo = usize::from(self.first[(v.to_bits() >> 52) as usize]);
        // SAFETY: `lo` is at most `bounds.len()` (a count of bounds), and `padded` holds
        // `bounds.len() + 1` values.
        lo + usize::from(v > unsafe { *self.padded.get_unchecked(lo) })
    }
}

impl ClassIndex {
    /// The index for `bounds` (finite, strictly increasing), or `None` when a class holds more
    /// than [`CLASS_MAX_BOUNDS`] of them (dense linear layouts) or there are more than 255.
    fn new(bounds: &[f64]) -> Option<ClassIndex> {
        if bounds.is_empty() || bounds.len() > usize::from(u8::MAX) {
            return None;
        }
        const MANTISSA: u64 = (1 << 52) - 1;
        let mut first = Box::new([0u8; 4096]);
        let mut k = 0;
        for (class, slot) in first.iter_mut().enumerate() {
            let top = (class as u64) << 52;
            let exponent_all_ones = class & 0x7FF == 0x7FF;
            // The smallest and largest value of the class, numerically.
            let (min, max) = if exponent_all_ones {
                // ±Inf and NaNs (never observed: `observe` refuses NaN).
                let inf = if class & 0x800 == 0 {
                    f64::INFINITY
                } else {
                    f64::NEG_INFINITY
                };
                (inf, inf)
            } else if class & 0x800 == 0 {
                (f64::from_bits(top), f64::from_bits(top | MANTISSA))
            } else {
                (f64::from_bits(top | MANTISSA), f64::from_bits(top))
            };
            // Every bound below `min` is below every value of the class; a value `v` of the class
            // is above a bound `b` with `min <= b < max` only by comparison; bounds at or above
            // `max` are above every value.
            let lo = bounds.partition_point(|&b| b < min);
            let hi = bounds.partition_point(|&b| b < max);
            k = k.max(hi - lo);
            *slot = lo as u8;
        }
        let k = k.max(1);
        if k > CLASS_MAX_BOUNDS {
            return None;
        }
        let padded = bounds
            .iter()
            .copied()
            .chain(std::iter::repeat_n(f64::INFINITY, k))
            .collect();
        Some(ClassIndex {
            k,
            padded,
            first: Arc::from(first),
        })
    }

    /// The one-comparison form, when no class holds two bounds.
    fn one_bound(&self) -> Option<OneBoundIndex> {
        (self.k == 1).then(|| OneBoundIndex {
            padded: Arc::clone(&self.padded),
            first: Arc::clone(&self.first),
        })
    }

    /// The number of bounds strictly below `v` (not NaN).
    #[inline(always)]
    fn index(&self, v: f64) -> usize {
        // `>> 52` of a u64 is below 4096: the table lookup needs no bounds check.
        let lo = usize::from(self.first[(v.to_bits() >> 52) as usize]);
        // SAFETY: `lo` is at most `bounds.len()` (a count of bounds), and `padded` holds
        // `bounds.len() + k` values, so `lo + j` for `j < k` is in range.
        let at = |j: usize| unsafe { *self.padded.get_unchecked(lo + j) };
        if self.k == 1 {
            return lo + usize::from(v > at(0));
        }
        let mut i = lo;
        for j in 0..self.k {
            i += usize::from(v > at(j));
        }
        i
    }
}

/// The upper bounds of a histogram's buckets: finite, strictly increasing; the `+Inf` bucket is
/// implicit. Cheap to clone (shared).
///
/// ```
/// use agentcore_telemetry::Buckets;
///
/// assert_eq!(Buckets::default().bounds().len(), 11);
/// assert_eq!(Buckets::linear(1.0, 1.0, 3).unwrap().bounds(), &[1.0, 2.0, 3.0]);
/// assert_eq!(Buckets::exponential(1.0, 10.0, 3).unwrap().bounds(), &[1.0, 10.0, 100.0]);
/// assert!(Buckets::new(vec![1.0, 1.0]).is_err()); // not strictly increasing
/// ```
#[derive(Clone)]
pub struct Buckets {
    inner: Arc<BucketsInner>,
}

struct BucketsInner {
    bounds: Box<[f64]>,
    /// The observation path's bucket index, for layouts with a few bounds per octave (inline,
    /// so reaching its table is one load fewer).
    class_index: Option<ClassIndex>,
    /// Each bound formatted as Prometheus' Go client writes it (`le="1"`, never `le="1.0"`),
    /// computed once so a scrape only copies bytes.
    labels: Box<[Box<str>]>,
    /// Each bound in OpenMetrics' canonical form (Go's `%g` with `.0` appended when there is no
    /// point or exponent: `le="1.0"`), for the OpenMetrics exposition.
    openmetrics_labels: Box<[Box<str>]>,
}

impl Buckets {
    /// Prometheus' default buckets, for durations in seconds:
    /// `0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10`.
    pub const DEFAULT_BOUNDS: [f64; 11] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    /// Buckets with the given upper bounds. A trailing `+Inf` is accepted and dropped (it is
    /// always implicit). Bounds must be finite and strictly increasing; at most [`MAX_BUCKETS`].
    ///
    /// ```
    /// use agentcore_telemetry::Buckets;
    ///
    /// let b = Buckets::new(vec![0.1, 0.5, 1.0, f64::INFINITY]).unwrap();
    /// assert_eq!(b.bounds(), &[0.1, 0.5, 1.0]); // the trailing +Inf is dropped
    /// assert!(Buckets::new(vec![1.0, f64::NAN]).is_err());
    /// assert!(Buckets::new(vec![2.0, 1.0]).is_err());
    /// ```
    pub fn new(bounds: impl Into<Vec<f64>>) -> Result<Buckets, Error> {
        let mut bounds = bounds.into();
        if bounds.last() == Some(&f64::INFINITY) {
            bounds.pop();
        }
        if bounds.len() > MAX_BUCKETS {
            return Err(Error::InvalidBuckets {
                reason: format!("{} bounds, at most {MAX_BUCKETS} allowed", bounds.len()),
            });
        }
        if let Some(bad) = bounds.iter().find(|b| !b.is_finite()) {
            return Err(Error::InvalidBuckets {
                reason: format!("bound {bad} is not finite"),
            });
        }
        if let Some(w) = bounds.windows(2).find(|w| w[0] >= w[1]) {
            return Err(Error::InvalidBuckets {
                reason: format!("bounds must be strictly increasing, {} then {}", w[0], w[1]),
            });
        }
        let render = |format: fn(&mut String, f64)| {
            bounds
                .iter()
                .map(|&b| {
                    let mut s = String::new();
                    format(&mut s, b);
                    s.into_boxed_str()
                })
                .collect()
        };
        let labels = render(format_go_float);
        let openmetrics_labels = render(format_openmetrics_canonical);
        Ok(Buckets {
            inner: Arc::new(BucketsInner {
                class_index: ClassIndex::new(&bounds),
                bounds: bounds.into_boxed_slice(),
                labels,
                openmetrics_labels,
            }),
        })
    }

    /// `count` bounds `start, start + width, ...`.
    ///
    /// ```
    /// use agentcore_telemetry::Buckets;
    ///
    /// let b = Buckets::linear(10.0, 5.0, 4).unwrap();
    /// assert_eq!(b.bounds(), &[10.0, 15.0, 20.0, 25.0]);
    /// assert!(Buckets::linear(0.0, 0.0, 3).is_err()); // width must be > 0
    /// assert!(Buckets::linear(0.0, 1e308, 3).is_err()); // the third bound overflows
    /// assert_eq!(Buckets::linear(-1e308, 1e308, 3).unwrap().bounds(), &[-1e308, 0.0, 1e308]);
    /// ```
    pub fn linear(start: f64, width: f64, count: usize) -> Result<Buckets, Error> {
        if width.is_nan() || width <= 0.0 || count == 0 {
            return Err(Error::InvalidBuckets {
                reason: format!(
                    "linear buckets need width > 0 and count > 0, got {width} and {count}"
                ),
            });
        }
        Buckets::check_count(count)?;
        // `mul_add` rounds once, and its exact intermediate does not overflow where the bound
        // itself fits (`linear(-1e308, 1e308, 3)` is -1e308, 0, 1e308).
        Buckets::generated((0..count).map(|i| width.mul_add(i as f64, start)).collect())
    }

    /// `count` bounds `start, start * factor, ...`.
    ///
    /// ```
    /// use agentcore_telemetry::Buckets;
    ///
    /// let b = Buckets::exponential(1.0, 2.0, 4).unwrap();
    /// assert_eq!(b.bounds(), &[1.0, 2.0, 4.0, 8.0]);
    /// assert!(Buckets::exponential(1.0, 1.0, 3).is_err()); // factor must be > 1
    /// assert!(Buckets::exponential(1.0, 1e300, 3).is_err()); // 1e600 overflows
    /// assert!(Buckets::exponential(1e-10, 10.0, 310).unwrap().bounds()[309] > 1e298);
    /// ```
    pub fn exponential(start: f64, factor: f64, count: usize) -> Result<Buckets, Error> {
        if start.is_nan() || start <= 0.0 || factor.is_nan() || factor <= 1.0 || count == 0 {
            return Err(Error::InvalidBuckets {
                reason: format!(
                    "exponential buckets need start > 0, factor > 1 and count > 0, got {start}, {factor} and {count}"
                ),
            });
        }
        Buckets::check_count(count)?;
        // Step by step: `factor.powi(i)` alone can overflow where `start` times it fits
        // (`exponential(1e-10, 10.0, 310)` ends at 1e299).
        Buckets::generated(
            std::iter::successors(Some(start), |b| Some(b * factor))
                .take(count)
                .collect(),
        )
    }

    /// Refuses a generator's `count` above [`MAX_BUCKETS`] before any bound is computed, as
    /// [`Buckets::new`] refuses that many bounds: collecting them first took `count` floats of
    /// memory (`usize::MAX` of them: a capacity-overflow panic, or an allocation without end
    /// for an exponential layout, whose bounds stay `+Inf` once they overflow).
    fn check_count(count: usize) -> Result<(), Error> {
        if count > MAX_BUCKETS {
            return Err(Error::InvalidBuckets {
                reason: format!("{count} bounds, at most {MAX_BUCKETS} allowed"),
            });
        }
        Ok(())
    }

    /// The bounds [`Buckets::linear`] and [`Buckets::exponential`] computed, all of them:
    /// unlike [`Buckets::new`], a last bound that overflowed to `+Inf` is an error, not the
    /// implicit bucket (those promise `count` bounds).
    fn generated(bounds: Vec<f64>) -> Result<Buckets, Error> {
        if let Some((i, bad)) = bounds.iter().enumerate().find(|(_, b)| !b.is_finite()) {
            return Err(Error::InvalidBuckets {
                reason: format!("bound {} of {} is {bad}, not finite", i + 1, bounds.len()),
            });
        }
        Buckets::new(bounds)
    }

    /// The finite upper bounds (the `+Inf` bucket is not listed).
    ///
    /// ```
    /// use agentcore_telemetry::Buckets;
    ///
    /// assert_eq!(Buckets::new(vec![0.25, 0.5]).unwrap().bounds(), &[0.25, 0.5]);
    /// assert_eq!(Buckets::default().bounds(), &Buckets::DEFAULT_BOUNDS);
    /// ```
    pub fn bounds(&self) -> &[f64] {
        &self.inner.bounds
    }

    /// The `le` label value of each finite bound, formatted as the Go client does (text format
    /// 0.0.4: `le="1"`).
    ///
    /// ```
    /// use agentcore_telemetry::Buckets;
    ///
    /// let b = Buckets::new(vec![0.5, 1.0, 2.5]).unwrap();
    /// let le: Vec<&str> = b.le_labels().iter().map(|s| &**s).collect();
    /// assert_eq!(le, ["0.5", "1", "2.5"]);
    /// ```
    pub fn le_labels(&self) -> &[Box<str>] {
        &self.inner.labels
    }

    /// The `le` label value of each finite bound in OpenMetrics' canonical form (`le="1.0"`,
    /// `le="0.005"`, `le="1e+06"`).
    ///
    /// ```
    /// use agentcore_telemetry::Buckets;
    ///
    /// let b = Buckets::new(vec![0.005, 1.0, 10.0, 1e6]).unwrap();
    /// assert_eq!(b.le_labels_openmetrics().iter().map(|s| &**s).collect::<Vec<_>>(), ["0.005", "1.0", "10.0", "1e+06"]);
    /// assert_eq!(b.le_labels().iter().map(|s| &**s).collect::<Vec<_>>(), ["0.005", "1", "10", "1e+06"]);
    /// ```
    pub fn le_labels_openmetrics(&self) -> &[Box<str>] {
        &self.inner.openmetrics_labels
    }

    /// The index of the bucket `v` falls in (`bounds().len()` for the `+Inf` bucket); `v` is not
    /// NaN.
    #[inline(always)]
    fn index(&self, v: f64) -> usize {
        if let Some(class_index) = &self.inner.class_index {
            return class_index.index(v);
        }
        let bounds = &*self.inner.bounds;
        if bounds.len() <= LINEAR_SEARCH_MAX {
            // Branch-free: count the bounds strictly below `v`. Random values defeat a branch
            // predictor on an early-exit scan; this is a fixed run of compares the compiler
            // vectorises.
            bounds.iter().map(|&b| usize::from(v > b)).sum()
        } else {
            bounds.partition_point(|&b| v > b)
        }
    }
}

impl Default for Buckets {
    /// [`Buckets::DEFAULT_BOUNDS`]; every default layout shares one allocation (and one
    /// `ClassIndex` table).
    fn default() -> Self {
        static DEFAULT: std::sync::OnceLock<Buckets> = std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Buckets::new(Buckets::DEFAULT_BOUNDS.to_vec()).expect("default buckets are valid")
            })
            .clone()
    }
}

impl PartialEq for Buckets {
    /// The same bounds, bit for bit: `-0.0` and `0.0` are equal numbers but two `le` label
    /// values (`le="-0.0"`, `le="0.0"`), and a family's series must share one `le` set.
    fn eq(&self, other: &Self) -> bool {
        same_floats(&self.inner.bounds, &other.inner.bounds)
    }
}

/// Whether `a` and `b` hold the same floats bit for bit (so `-0.0` is not `0.0`): what layouts
/// and quantile lists compare by, since each float is written as a label value.
pub(crate) fn same_floats(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.bounds()).finish()
    }
}

/// A histogram with fixed buckets.
///
/// `observe` finds the bucket and adds one to this thread's word for it, and the value to this
/// thread's sum word, in the slot arena (`sync::slots`): no shared cache line, no RMW, no lock.
/// A scrape sums each bucket word over the threads and derives `_count` from those same bucket
/// sums, so every scrape is internally consistent — `_count` equals the `le="+Inf"` bucket and the
/// cumulative buckets are monotone — even while other threads observe. (`_sum` is read beside
/// them and may include an observation whose bucket the scrape had already read past.)
///
/// ```
/// use agentcore_telemetry::{Buckets, Histogram};
///
/// let h = Histogram::new(Buckets::new(vec![0.1, 1.0]).unwrap()).unwrap();
/// h.observe(0.05);
/// h.observe(0.5);
/// h.observe(7.0);
/// h.observe(f64::NAN); // refused and counted
/// let snap = h.snapshot();
/// assert_eq!(snap.cumulative, vec![1, 2, 3]);
/// assert_eq!(snap.count, 3);
/// assert_eq!(snap.sum, 7.55);
/// assert_eq!(h.rejected(), 1);
/// ```
#[derive(Clone)]
pub struct Histogram {
    inner: Arc<HistogramInner>,
}

struct HistogramInner {
    /// The layout's one-comparison bucket index when an observation may take the inline fast
    /// path: the layout has one bound per class at most (Prometheus' defaults, exponential
    /// layouts with a factor of 2 or more). `None` sends every observation to
    /// [`HistogramInner::observe_slow`].
    fast: Option<OneBoundIndex>,
    /// The first bucket word and the sum word, copied out of `slots` and `buckets` so that an
    /// observation reaches them without loads through either.
    start: u32,
    sum_word: u32,
    buckets: Buckets,
    /// `bounds + 1` bucket words (non-cumulative, `+Inf` last), then one `f64` sum word.
    slots: OwnedSlots,
    rejected: AtomicU64,
    /// Whether the OpenMetrics `_sum` and `_count` are exposed: no negative value recorded
    /// (see `counter_sum`).
    counter_sum: CounterSum,
    /// [`Exemplars::TraceBased`]: observations also offer the current sampled span.
    trace_exemplars: bool,
    /// One exemplar record per bucket (`+Inf` last) when exemplars are on, else empty.
    exemplars: Box<[ExemplarCell]>,
    /// When the histogram was made (its values were zero), microseconds since the Unix epoch.
    created_micros: u64,
}

/// A consistent reading of a [`Histogram`].
///
/// ```
/// use agentcore_telemetry::primitives::HistogramSnapshot;
/// use agentcore_telemetry::{Buckets, Histogram};
///
/// let h = Histogram::new(Buckets::new(vec![1.0, 2.0]).unwrap()).unwrap();
/// h.observe(5.0);
/// let expected = HistogramSnapshot { cumulative: vec![0, 0, 1], count: 1, sum: 5.0 };
/// assert_eq!(h.snapshot(), expected);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts per bucket, the `+Inf` bucket last.
    pub cumulative: Vec<u64>,
    /// The number of observations (equal to the last cumulative count).
    pub count: u64,
    /// The sum of observations.
    pub sum: f64,
}

impl Histogram {
    /// Whether `self` and `other` are handles to the same histogram (clones of one another), not
    /// merely equal in value: what the `metrics` bridge checks to tell the series it cached from
    /// a new one created under the same label values after a removal.
    #[cfg(feature = "metrics-bridge")]
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A new, unregistered histogram.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Histogram};
    ///
    /// let h = Histogram::new(Buckets::linear(1.0, 1.0, 3).unwrap()).unwrap();
    /// assert_eq!(h.buckets().bounds(), &[1.0, 2.0, 3.0]);
    /// assert_eq!(h.snapshot().cumulative, vec![0, 0, 0, 0]); // three bounds and +Inf
    /// ```
    pub fn new(buckets: Buckets) -> Result<Histogram, Error> {
        Histogram::with_exemplars(buckets, Exemplars::Off)
    }

    /// A new, unregistered histogram keeping one exemplar per bucket as `exemplars` says (see
    /// [`primitives::exemplar`](crate::primitives::exemplar)); they appear on its `_bucket`
    /// samples in the OpenMetrics exposition.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Exemplars, Histogram};
    ///
    /// let h = Histogram::with_exemplars(Buckets::default(), Exemplars::TraceBased).unwrap();
    /// h.observe(0.2); // outside a sampled span: recorded, no exemplar
    /// h.observe_with_exemplar(0.3, &[("request_id", "r-7")]).unwrap();
    /// assert_eq!(h.snapshot().count, 2);
    /// ```
    pub fn with_exemplars(buckets: Buckets, exemplars: Exemplars) -> Result<Histogram, Error> {
        let words = buckets.bounds().len() + 2;
        let records = match exemplars.stored() {
            true => ExemplarCell::boxed_slice(buckets.bounds().len() + 1),
            false => Box::default(),
        };
        let slots = OwnedSlots::new(words)?;
        let start = slots.range().start();
        let fast = buckets
            .inner
            .class_index
            .as_ref()
            .and_then(ClassIndex::one_bound);
        Ok(Histogram {
            inner: Arc::new(HistogramInner {
                fast,
                start,
                // The `+Inf` bucket is word `start + bounds`, the sum the one after it.
                sum_word: start + buckets.bounds().len() as u32 + 1,
                slots,
                buckets,
                rejected: AtomicU64::new(0),
                counter_sum: CounterSum::default(),
                trace_exemplars: exemplars == Exemplars::TraceBased,
                exemplars: records,
                created_micros: super::unix_micros_now(),
            }),
        })
    }

    /// Records `v`. NaN is refused and counted in [`Histogram::rejected`]; `±Inf` go to the
    /// first or the `+Inf` bucket as Prometheus does.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Histogram};
    ///
    /// let h = Histogram::new(Buckets::new(vec![0.5, 1.0]).unwrap()).unwrap();
    /// h.observe(0.25);
    /// h.observe(1.0); // bounds are inclusive: counted in le="1"
    /// h.observe(f64::INFINITY); // the +Inf bucket
    /// assert_eq!(h.snapshot().cumulative, vec![1, 2, 3]);
    /// ```
    // Always inlined: without LTO the call alone (and its register saves) was about a tenth of
    // an observation's instructions. Inline is only the common case, a few branches that do not
    // depend on the value: a layout with one bound per class (one table load and one
    // comparison find the bucket) on a thread that owns its words (plain load + store), then
    // the trace-based exemplar check when the histogram has one. Everything else (NaN,
    // infinities and negative values, denser layouts, a thread's first record, a thread without
    // an exclusive block) is `observe_slow`, out of line. The test is on `v`'s sign and
    // exponent, which the bucket index reads anyway: below `0x7FF` exactly for the finite
    // values with the sign bit clear, so a negative value goes where its sum's mark is set
    // (`counter_sum`). (`v >= 0.0` cost 3 instructions more than the `!v.is_nan()` it replaced.)
    #[inline(always)]
    pub fn observe(&self, v: f64) {
        let inner = &*self.inner;
        if let (Some(fast), true) = (&inner.fast, v.to_bits() >> 52 < 0x7FF) {
            if let Some(words) = OwnedWords::current() {
                let bucket = fast.index(v);
                // `start` and `sum_word` widen for free as they load; adding in `usize` saves
                // a zero-extension.
                words.add_u64(inner.start as usize + bucket, 1);
                words.add_f64(inner.sum_word as usize, v);
                if inner.trace_exemplars {
                    inner.trace_exemplar(bucket, v);
                }
                return;
            }
        }
        inner.observe_slow(v);
    }

    /// Records `v` and keeps `labels` as the exemplar of its bucket (label names and values at
    /// most 128 code points together; allocation-free). The observation is recorded as by
    /// [`Histogram::observe`]; the exemplar is refused with [`Error::InvalidExemplar`] when its
    /// labels are invalid, with [`Error::ExemplarsOff`] (no allocation) when the histogram has
    /// exemplars [`Off`](Exemplars::Off), and with [`Error::InvalidObservation`] for NaN.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Exemplars, Histogram};
    ///
    /// let h = Histogram::with_exemplars(Buckets::default(), Exemplars::Explicit).unwrap();
    /// h.observe_with_exemplar(0.042, &[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]).unwrap();
    /// assert!(h.observe_with_exemplar(f64::NAN, &[]).is_err());
    /// ```
    pub fn observe_with_exemplar(&self, v: f64, labels: &[(&str, &str)]) -> Result<(), Error> {
        self.try_observe(v)?;
        let bucket = self.inner.buckets.index(v);
        match self.inner.exemplars.get(bucket) {
            Some(cell) => exemplar::record_explicit(cell, labels, v),
            None => Err(exemplar::exemplars_off()),
        }
    }

    /// Which exemplars this histogram keeps.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Exemplars, Histogram};
    ///
    /// assert_eq!(Histogram::new(Buckets::default()).unwrap().exemplars(), Exemplars::Off);
    /// let h = Histogram::with_exemplars(Buckets::default(), Exemplars::Explicit).unwrap();
    /// assert_eq!(h.exemplars(), Exemplars::Explicit);
    /// ```
    pub fn exemplars(&self) -> Exemplars {
        match (self.inner.exemplars.is_empty(), self.inner.trace_exemplars) {
            (true, _) => Exemplars::Off,
            (false, false) => Exemplars::Explicit,
            (false, true) => Exemplars::TraceBased,
        }
    }

    /// The kept exemplar of bucket `i` (`+Inf` last), read at scrape time.
    pub(crate) fn exemplar(&self, i: usize) -> Option<ExemplarRead> {
        self.inner.exemplars.get(i)?.read()
    }

    /// Records `v`, or returns an error for NaN (which is also counted as rejected).
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Histogram};
    ///
    /// let h = Histogram::new(Buckets::default()).unwrap();
    /// h.try_observe(0.3).unwrap();
    /// assert!(h.try_observe(f64::NAN).is_err());
    /// assert_eq!((h.snapshot().count, h.rejected()), (1, 1));
    /// ```
    #[inline]
    pub fn try_observe(&self, v: f64) -> Result<(), Error> {
        self.observe(v);
        if v.is_nan() {
            Err(Error::InvalidObservation { value: v })
        } else {
            Ok(())
        }
    }

    /// The bucket layout.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Histogram};
    ///
    /// let layout = Buckets::exponential(1.0, 2.0, 4).unwrap();
    /// let h = Histogram::new(layout.clone()).unwrap();
    /// assert_eq!(h.buckets(), &layout);
    /// ```
    pub fn buckets(&self) -> &Buckets {
        &self.inner.buckets
    }

    /// How many observations were refused (NaN).
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Histogram};
    ///
    /// let h = Histogram::new(Buckets::default()).unwrap();
    /// h.observe(f64::NAN);
    /// h.observe(0.1);
    /// assert_eq!(h.rejected(), 1);
    /// assert_eq!(h.snapshot().count, 1); // NaN never reaches a bucket
    /// ```
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Relaxed)
    }

    /// When the histogram was made, in microseconds since the Unix epoch: the OpenMetrics
    /// `_created` of every series that exposes it (see `Series::created`).
    pub(crate) fn created_micros(&self) -> u64 {
        self.inner.created_micros
    }

    /// Whether the OpenMetrics `_sum` and `_count` are exposed with `sum`, just read by an
    /// OpenMetrics scrape: not once a negative value was recorded (see `counter_sum`).
    pub(crate) fn openmetrics_sum_exposable(&self, sum: f64) -> bool {
        self.inner.counter_sum.exposable(sum)
    }

    /// Reads the per-bucket (non-cumulative) counts into `counts` (resized to `bounds + 1`) and
    /// returns the sum. Reuses the caller's buffer, so a scrape allocates nothing here.
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Histogram};
    ///
    /// let h = Histogram::new(Buckets::new(vec![1.0, 2.0]).unwrap()).unwrap();
    /// h.observe(0.5);
    /// h.observe(0.75);
    /// h.observe(3.0);
    /// let mut counts = Vec::new(); // kept across scrapes
    /// let sum = h.read_into(&mut counts);
    /// assert_eq!((counts, sum), (vec![2, 0, 1], 4.25)); // per bucket, not cumulative
    /// ```
    pub fn read_into(&self, counts: &mut Vec<u64>) -> f64 {
        let range = self.inner.slots.range();
        let n = self.inner.buckets.bounds().len() + 1;
        counts.resize(n, 0);
        // A histogram exists only if the arena handed it its words.
        let Some(arena) = self.inner.slots.arena() else {
            counts.fill(0);
            return 0.0;
        };
        arena.read_range_u64(range, &mut counts[..n]);
        arena.read_f64(range.start() + n as u32)
    }

    /// A consistent reading (allocates; scrapes use [`Histogram::read_into`]).
    ///
    /// ```
    /// use agentcore_telemetry::{Buckets, Histogram};
    ///
    /// let h = Histogram::new(Buckets::new(vec![1.0, 2.0]).unwrap()).unwrap();
    /// h.observe(0.5);
    /// h.observe(1.5);
    /// h.observe(1.5);
    /// let snap = h.snapshot();
    /// assert_eq!(snap.cumulative, vec![1, 3, 3]);
    /// assert_eq!((snap.count, snap.sum), (3, 3.5));
    /// ```
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut counts = Vec::new();
        let sum = self.read_into(&mut counts);
        let mut acc = 0u64;
        for c in counts.iter_mut() {
            acc = acc.wrapping_add(*c);
            *c = acc;
        }
        HistogramSnapshot {
            count: acc,
            cumulative: counts,
            sum,
        }
    }
}

impl HistogramInner {
    /// Every observation the inline path of [`Histogram::observe`] does not take: refuses NaN,
    /// marks the sum of a negative value (`counter_sum`), searches any layout, records through
    /// a stripe when the thread has no exclusive block (leasing one on its first record), and
    /// offers trace-based exemplars.
    #[inline(never)]
    fn observe_slow(&self, v: f64) {
        if v.is_nan() {
            self.rejected.fetch_add(1, Relaxed);
            return;
        }
        self.counter_sum.record(v);
        let bucket = self.buckets.index(v);
        if let Some(words) = Words::current() {
            words.add_u64(self.start + bucket as u32, 1);
            words.add_f64(self.sum_word, v);
        }
        if self.trace_exemplars {
            self.trace_exemplar(bucket, v);
        }
    }

    /// The trace-based exemplar check, inlined into `observe` (see
    /// [`exemplar::record_trace_based`]).
    #[inline(always)]
    fn trace_exemplar(&self, bucket: usize, v: f64) {
        if let Some(cell) = self.exemplars.get(bucket) {
            exemplar::record_trace_based(cell, v);
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("buckets", &self.inner.buckets)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

#[cfg(all(test, not(agentcore_loom)))]
mod tests {
    use super::*;

    #[test]
    fn bucket_index_matches_le_semantics() {
        let b = Buckets::new(vec![1.0, 2.0, 5.0]).unwrap();
        assert_eq!(b.index(f64::NEG_INFINITY), 0);
        assert_eq!(b.index(1.0), 0, "le is inclusive");
        assert_eq!(b.index(1.0000001), 1);
        assert_eq!(b.index(5.0), 2);
        assert_eq!(b.index(5.1), 3);
        assert_eq!(b.index(f64::INFINITY), 3);
        let many = Buckets::linear(0.0, 1.0, 100).unwrap();
        for v in [-1.0, 0.0, 0.5, 42.0, 99.0, 99.5, 1e9] {
            let linear = many.bounds().iter().filter(|&&x| v > x).count();
            assert_eq!(many.index(v), linear, "v = {v}");
        }
    }

    /// Values to check a bucket search with: zeros, the smallest and largest doubles, infinities,
    /// NaNs, every bound, its negation and its neighbouring doubles (by bit pattern, on both
    /// sides of zero too), the edges of each bound's class, and 10,000 random bit patterns.
    fn probes(bounds: &[f64]) -> Vec<f64> {
        let mut probes = vec![
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
        ];
        for &bound in bounds {
            let (up, down) = (
                bound.to_bits().wrapping_add(1),
                bound.to_bits().wrapping_sub(1),
            );
            probes.extend([bound, -bound, f64::from_bits(up), f64::from_bits(down)]);
            let top = bound.to_bits() & !((1 << 52) - 1);
            probes.extend([f64::from_bits(top), f64::from_bits(top | ((1 << 52) - 1))]);
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            probes.push(f64::from_bits(x));
        }
        probes
    }

    /// The straightforward search: the number of bounds strictly below `v` (`le` is inclusive).
    fn plain_index(bounds: &[f64], v: f64) -> usize {
        bounds.iter().filter(|&&bound| v > bound).count()
    }

    /// The inline path's one-comparison index agrees with the straightforward search on every
    /// layout that gets one (1 bound, Prometheus' defaults, many bounds), and those layouts are
    /// the ones with one bound per class at most. Through `observe`, every value lands in the
    /// bucket the straightforward search names, the sum is exact, and NaN is refused and
    /// touches neither.
    #[test]
    fn one_bound_index_matches_the_straightforward_search() {
        let layouts = [
            (Buckets::default(), true),
            (Buckets::new(vec![1.0]).unwrap(), true),
            (Buckets::new(vec![-0.0]).unwrap(), true),
            (Buckets::new(vec![f64::MIN]).unwrap(), true),
            (Buckets::new(vec![f64::MAX]).unwrap(), true),
            (Buckets::new(vec![-3.0, -1.0, 0.0, 1.0, 3.0]).unwrap(), true),
            (Buckets::exponential(1e-6, 2.0, 60).unwrap(), true),
            (Buckets::exponential(1e-150, 2.0, 255).unwrap(), true),
            (Buckets::exponential(1e-150, 2.0, 256).unwrap(), false),
            (Buckets::new(vec![1.0, 1.5]).unwrap(), false),
            (Buckets::exponential(0.001, 1.5, 30).unwrap(), false),
            (Buckets::linear(0.0, 1.0, 100).unwrap(), false),
        ];
        for (b, one_bound) in &layouts {
            let fast = b.inner.class_index.as_ref().and_then(ClassIndex::one_bound);
            assert_eq!(fast.is_some(), *one_bound, "{b:?}");
            // Every probe, and (for an exact sum to compare) the finite ones of moderate size.
            let h = Histogram::new(b.clone()).unwrap();
            let moderate = Histogram::new(b.clone()).unwrap();
            assert_eq!(h.inner.fast.is_some(), *one_bound, "{b:?}");
            let mut expected = vec![0u64; b.bounds().len() + 1];
            let (mut sum, mut nans) = (0.0, 0);
            for v in probes(b.bounds()) {
                h.observe(v);
                if v.is_nan() {
                    nans += 1;
                    continue;
                }
                let plain = plain_index(b.bounds(), v);
                if let Some(fast) = &fast {
                    assert_eq!(fast.index(v), plain, "{b:?}, v = {v:e}");
                }
                expected[plain] += 1;
                if v.abs() < 1e300 {
                    moderate.observe(v);
                    sum += v;
                }
            }
            let mut counts = Vec::new();
            h.read_into(&mut counts);
            assert_eq!(counts, expected, "{b:?}");
            assert!(nans >= 2, "the probes hold NaN and -NaN");
            assert_eq!(h.rejected(), nans, "{b:?}: every NaN is refused");
            assert_eq!(moderate.snapshot().sum.to_bits(), sum.to_bits(), "{b:?}");
        }
    }

    /// The class index agrees with a plain count for every layout that gets one, at every bound,
    /// its neighbours, the class edges, zeros, subnormals, infinities and random values.
    #[test]
    fn class_index_matches_a_plain_count() {
        let layouts = [
            Buckets::default(),
            Buckets::new(vec![1.0, 2.0, 5.0]).unwrap(),
            Buckets::new(vec![-10.0, -1.0, -0.5, 0.0, 0.25, 3.0]).unwrap(),
            Buckets::new(vec![-0.0]).unwrap(),
            Buckets::new(vec![f64::MIN_POSITIVE / 4.0, 1e-300, 1e300, f64::MAX]).unwrap(),
            Buckets::exponential(1e-6, 2.0, 60).unwrap(),
            Buckets::exponential(0.001, 1.5, 30).unwrap(),
            Buckets::linear(8.0, 1.0, 4).unwrap(),
            Buckets::new(vec![f64::MIN, -1.0, 1.0]).unwrap(),
        ];
        for b in &layouts {
            assert!(b.inner.class_index.is_some(), "{b:?} has a class index");
            for v in probes(b.bounds()).into_iter().filter(|v| !v.is_nan()) {
                let plain = b.bounds().iter().filter(|&&bound| v > bound).count();
                assert_eq!(b.index(v), plain, "{b:?}, v = {v:e}");
            }
        }
        // Dense layouts fall back to the count.
        assert!(Buckets::linear(0.0, 1.0, 100)
            .unwrap()
            .inner
            .class_index
            .is_none());
        assert!(Buckets::linear(0.0, 0.001, 50)
            .unwrap()
            .inner
            .class_index
            .is_none());
    }

    #[test]
    fn a_generator_asked_for_more_than_max_buckets_bounds_is_refused_before_computing_them() {
        // Refused as `Buckets::new` refuses `MAX_BUCKETS + 1` bounds, without first collecting
        // `count` of them: `usize::MAX` bounds are a capacity-overflow panic (linear) or an
        // allocation without end (exponential, whose bounds stay `+Inf` once they overflow).
        for count in [MAX_BUCKETS + 1, 1 << 40, usize::MAX] {
            assert!(Buckets::linear(0.0, 1.0, count).is_err(), "linear {count}");
            assert!(
                Buckets::exponential(1.0, 2.0, count).is_err(),
                "exponential {count}"
            );
        }
        assert_eq!(
            Buckets::linear(0.0, 1.0, MAX_BUCKETS)
                .unwrap()
                .bounds()
                .len(),
            MAX_BUCKETS
        );
    }

    #[test]
    fn bucket_validation() {
        assert!(Buckets::new(vec![f64::NAN]).is_err());
        assert!(Buckets::new(vec![2.0, 1.0]).is_err());
        assert!(Buckets::new(vec![0.0; MAX_BUCKETS + 1]).is_err());
        assert_eq!(
            Buckets::new(vec![1.0, f64::INFINITY]).unwrap().bounds(),
            &[1.0]
        );
        assert!(Buckets::linear(0.0, 0.0, 3).is_err());
        assert!(Buckets::exponential(0.0, 2.0, 3).is_err());
        let default = Buckets::default();
        let labels: Vec<&str> = default.le_labels().iter().map(|s| &**s).collect();
        assert_eq!(
            labels,
            ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"]
        );
    }
}
