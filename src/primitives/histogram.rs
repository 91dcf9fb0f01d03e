//! [`Histogram`] and its bucket layout, [`Buckets`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::exemplar::{self, ExemplarCell, ExemplarRead, Exemplars};
use crate::exposition::float::{format_go_float, format_openmetrics_canonical};
use crate::sync::slots::{OwnedSlots, Words, MAX_RANGE_WORDS};
use crate::Error;

/// Bucket bounds above this many are refused (a series' words must fit in one arena range: the
/// bounds, the `+Inf` bucket and the sum).
pub const MAX_BUCKETS: usize = MAX_RANGE_WORDS - 2;

/// Up to this many bounds, the bucket index is found with a branch-free count (vectorised by the
/// compiler); above it, with a binary search.
const LINEAR_SEARCH_MAX: usize = 32;

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
                bounds: bounds.into_boxed_slice(),
                labels,
                openmetrics_labels,
            }),
        })
    }

    /// `count` bounds `start, start + width, ...`.
    pub fn linear(start: f64, width: f64, count: usize) -> Result<Buckets, Error> {
        if width.is_nan() || width <= 0.0 || count == 0 {
            return Err(Error::InvalidBuckets {
                reason: format!(
                    "linear buckets need width > 0 and count > 0, got {width} and {count}"
                ),
            });
        }
        Buckets::new(
            (0..count)
                .map(|i| start + width * i as f64)
                .collect::<Vec<_>>(),
        )
    }

    /// `count` bounds `start, start * factor, ...`.
    pub fn exponential(start: f64, factor: f64, count: usize) -> Result<Buckets, Error> {
        if start.is_nan() || start <= 0.0 || factor.is_nan() || factor <= 1.0 || count == 0 {
            return Err(Error::InvalidBuckets {
                reason: format!(
                    "exponential buckets need start > 0, factor > 1 and count > 0, got {start}, {factor} and {count}"
                ),
            });
        }
        Buckets::new(
            (0..count)
                .map(|i| start * factor.powi(i as i32))
                .collect::<Vec<_>>(),
        )
    }

    /// The finite upper bounds (the `+Inf` bucket is not listed).
    pub fn bounds(&self) -> &[f64] {
        &self.inner.bounds
    }

    /// The `le` label value of each finite bound, formatted as the Go client does (text format
    /// 0.0.4: `le="1"`).
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
    fn default() -> Self {
        Buckets::new(Buckets::DEFAULT_BOUNDS.to_vec()).expect("default buckets are valid")
    }
}

impl PartialEq for Buckets {
    fn eq(&self, other: &Self) -> bool {
        self.inner.bounds == other.inner.bounds
    }
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
    buckets: Buckets,
    /// `bounds + 1` bucket words (non-cumulative, `+Inf` last), then one `f64` sum word.
    slots: OwnedSlots,
    rejected: AtomicU64,
    /// [`Exemplars::TraceBased`]: observations also offer the current sampled span.
    trace_exemplars: bool,
    /// One exemplar record per bucket (`+Inf` last) when exemplars are on, else empty.
    exemplars: Box<[ExemplarCell]>,
}

/// A consistent reading of a [`Histogram`].
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
    /// A new, unregistered histogram.
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
        Ok(Histogram {
            inner: Arc::new(HistogramInner {
                slots: OwnedSlots::new(words)?,
                buckets,
                rejected: AtomicU64::new(0),
                trace_exemplars: exemplars == Exemplars::TraceBased,
                exemplars: records,
            }),
        })
    }

    /// Records `v`. NaN is refused and counted in [`Histogram::rejected`]; `±Inf` go to the
    /// first or the `+Inf` bucket as Prometheus does.
    #[inline]
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            self.inner.rejected.fetch_add(1, Relaxed);
            return;
        }
        let inner = &*self.inner;
        let start = inner.slots.range().start();
        let bucket = inner.buckets.index(v);
        if let Some(words) = Words::current() {
            words.add_u64(start + bucket as u32, 1);
            words.add_f64(start + inner.buckets.bounds().len() as u32 + 1, v);
        }
        if inner.trace_exemplars {
            inner.trace_exemplar(bucket, v);
        }
    }

    /// Records `v` and keeps `labels` as the exemplar of its bucket (label names and values at
    /// most 128 code points together; allocation-free). The observation is recorded as by
    /// [`Histogram::observe`]; the exemplar is refused with [`Error::InvalidExemplar`] when its
    /// labels are invalid or the histogram has exemplars [`Off`](Exemplars::Off), and with
    /// [`Error::InvalidObservation`] for NaN.
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
    pub fn buckets(&self) -> &Buckets {
        &self.inner.buckets
    }

    /// How many observations were refused (NaN).
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Relaxed)
    }

    /// Reads the per-bucket (non-cumulative) counts into `counts` (resized to `bounds + 1`) and
    /// returns the sum. Reuses the caller's buffer, so a scrape allocates nothing here.
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
    #[cold]
    #[inline(never)]
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
