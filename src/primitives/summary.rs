//! [`Summary`]: quantiles over a sliding time window, plus an all-time `_sum` and `_count`.
//!
//! # Design
//! Recording must stay lock-free and allocation-free, so `observe` does what a histogram does: it
//! adds one to this thread's word for a bucket in the slot arena (`sync::slots`) and the value to
//! this thread's sum word. The buckets are log-linear over the `f64` bit pattern: the exponent and
//! the top [`SUB_BUCKET_BITS`] mantissa bits pick the bucket, so each power of two is split into 32
//! buckets and a quantile read from a bucket's midpoint is within 1.6 % of the true value. Values
//! from [`MIN_TRACKED`] (about 1e-6) to [`MAX_TRACKED`] (about 1.1e12) get their own buckets;
//! smaller values (including zero and negatives) share the lowest bucket and report as `0`, larger
//! ones share the highest and report as `MAX_TRACKED`. `_sum` and `_count` stay exact whatever the
//! value.
//!
//! The sliding window costs the recorder nothing: the words only ever count up, and the *reader*
//! keeps a ring of earlier readings (at most `age_buckets`, one per `max_age / age_buckets`). A
//! quantile is computed over `now - oldest reading younger than max_age`, so the window covers
//! between `max_age - max_age/age_buckets` and `max_age`, provided something reads (a scrape) at
//! least once per rotation; with sparser reads the window reaches back to the previous read.
//!
//! Why not `hdrhistogram` on the hot path: its `record` needs `&mut`, i.e. a lock or a
//! per-thread instance looked up per call; the bucket scheme above is the same idea (log-linear
//! buckets with bounded relative error) in a form that merges per thread for free.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sync::slots::{self, OwnedSlots};
use crate::Error;

/// Mantissa bits that split each power of two: 2^5 = 32 buckets per octave.
pub const SUB_BUCKET_BITS: u32 = 5;
/// The smallest value with a bucket of its own: 2^-20 (about 9.5e-7).
pub const MIN_TRACKED: f64 = 1.0 / (1u64 << 20) as f64;
/// The largest tracked value: 2^40 (about 1.1e12).
pub const MAX_TRACKED: f64 = (1u64 << 40) as f64;

const SHIFT: u32 = 52 - SUB_BUCKET_BITS;
const OCTAVES: usize = 60;
/// Bucket 0 holds values below `MIN_TRACKED`; the last bucket values at or above `MAX_TRACKED`.
const BUCKETS: usize = OCTAVES * (1 << SUB_BUCKET_BITS) + 2;

#[inline(always)]
fn bucket_of(v: f64) -> usize {
    // NaN never reaches here (`observe` refuses it); negatives and zero share bucket 0.
    if v < MIN_TRACKED {
        0
    } else if v >= MAX_TRACKED {
        BUCKETS - 1
    } else {
        ((v.to_bits() >> SHIFT) - (MIN_TRACKED.to_bits() >> SHIFT)) as usize + 1
    }
}

/// The value a bucket reports: its midpoint.
fn bucket_value(bucket: usize) -> f64 {
    match bucket {
        0 => 0.0,
        b if b >= BUCKETS - 1 => MAX_TRACKED,
        b => {
            let base = MIN_TRACKED.to_bits() >> SHIFT;
            let lo = f64::from_bits((base + b as u64 - 1) << SHIFT);
            let hi = f64::from_bits((base + b as u64) << SHIFT);
            (lo + hi) / 2.0
        }
    }
}

/// How a [`Summary`] computes quantiles.
///
/// ```
/// use agentcore_telemetry::SummaryConfig;
/// use std::time::Duration;
///
/// let config = SummaryConfig::default();
/// assert_eq!(config.quantiles, vec![0.5, 0.9, 0.99]);
/// assert_eq!(config.max_age, Duration::from_secs(600));
/// let config = SummaryConfig::new(vec![0.5, 0.999], Duration::from_secs(60), 3).unwrap();
/// assert_eq!(config.age_buckets, 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryConfig {
    /// The quantiles to report, in `[0, 1]`, increasing.
    pub quantiles: Vec<f64>,
    /// How far back the window reaches (default 10 minutes, as Prometheus' Go client).
    pub max_age: Duration,
    /// How many readings the window keeps (default 5): the window slides in steps of
    /// `max_age / age_buckets`.
    pub age_buckets: u32,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        SummaryConfig {
            quantiles: vec![0.5, 0.9, 0.99],
            max_age: Duration::from_secs(600),
            age_buckets: 5,
        }
    }
}

impl SummaryConfig {
    /// A validated configuration.
    pub fn new(
        quantiles: Vec<f64>,
        max_age: Duration,
        age_buckets: u32,
    ) -> Result<SummaryConfig, Error> {
        let config = SummaryConfig {
            quantiles,
            max_age,
            age_buckets,
        };
        config.validate()?;
        Ok(config)
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |reason: String| Err(Error::InvalidSummaryConfig { reason });
        if let Some(q) = self.quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            return bad(format!("quantile {q} is outside [0, 1]"));
        }
        if self.quantiles.windows(2).any(|w| w[0] >= w[1]) {
            return bad("quantiles must be strictly increasing".into());
        }
        if self.max_age.is_zero() || self.age_buckets == 0 {
            return bad("max_age and age_buckets must be non-zero".into());
        }
        Ok(())
    }
}

/// Quantiles over a sliding window, plus all-time sum and count.
///
/// ```
/// use agentcore_telemetry::{Summary, SummaryConfig};
///
/// let s = Summary::new(SummaryConfig::default()).unwrap();
/// for i in 1..=100 {
///     s.observe(i as f64);
/// }
/// let r = s.read();
/// assert_eq!(r.count, 100);
/// assert_eq!(r.sum, 5050.0);
/// let (q, median) = r.quantiles[0];
/// assert_eq!(q, 0.5);
/// assert!((median - 50.0).abs() / 50.0 < 0.02, "{median}");
/// ```
#[derive(Clone)]
pub struct Summary {
    inner: Arc<SummaryInner>,
}

struct SummaryInner {
    config: SummaryConfig,
    /// `BUCKETS` bucket words, then one `f64` sum word.
    slots: OwnedSlots,
    rejected: AtomicU64,
    /// Reader-side state; recorders never touch it.
    window: Mutex<Window>,
    /// When the summary was created: an implicit reading of all zeros, the base of the window
    /// for as long as the summary is younger than `max_age`.
    created: Instant,
}

#[derive(Default)]
struct Window {
    /// Earlier readings, oldest first: (when, sparse non-zero bucket counts).
    readings: VecDeque<(Instant, Vec<(u16, u64)>)>,
    /// Scratch for the current reading.
    current: Vec<u64>,
}

/// A reading of a [`Summary`].
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryReading {
    /// `(quantile, value)` over the window; `NaN` values when the window is empty.
    pub quantiles: Vec<(f64, f64)>,
    /// All-time number of observations.
    pub count: u64,
    /// All-time sum of observations.
    pub sum: f64,
}

impl Summary {
    /// A new, unregistered summary.
    pub fn new(config: SummaryConfig) -> Result<Summary, Error> {
        config.validate()?;
        Ok(Summary {
            inner: Arc::new(SummaryInner {
                config,
                slots: OwnedSlots::new(BUCKETS + 1)?,
                rejected: AtomicU64::new(0),
                window: Mutex::new(Window::default()),
                created: Instant::now(),
            }),
        })
    }

    /// Records `v`; NaN is refused and counted in [`Summary::rejected`].
    #[inline]
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            self.inner.rejected.fetch_add(1, Relaxed);
            return;
        }
        let start = self.inner.slots.range().start();
        slots::add_u64(start + bucket_of(v) as u32, 1);
        slots::add_f64(start + BUCKETS as u32, v);
    }

    /// How many observations were refused (NaN).
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Relaxed)
    }

    /// The configuration.
    pub fn config(&self) -> &SummaryConfig {
        &self.inner.config
    }

    /// Reads quantiles, count and sum now.
    pub fn read(&self) -> SummaryReading {
        let mut quantiles = Vec::with_capacity(self.inner.config.quantiles.len());
        let (count, sum) = self.read_with(Instant::now(), |q, v| quantiles.push((q, v)));
        SummaryReading {
            quantiles,
            count,
            sum,
        }
    }

    /// Reads at `now`, handing each `(quantile, value)` to `emit`; returns `(count, sum)`.
    /// Allocation-free in steady state (the window's buffers are reused).
    pub(crate) fn read_with(&self, now: Instant, mut emit: impl FnMut(f64, f64)) -> (u64, f64) {
        let inner = &*self.inner;
        let range = inner.slots.range();
        let arena = slots::global();
        let mut w = inner.window.lock().unwrap_or_else(|e| e.into_inner());
        let w = &mut *w;
        w.current.resize(BUCKETS, 0);
        arena.read_range_u64(range, &mut w.current[..BUCKETS]);
        let sum = arena.read_f64(range.start() + BUCKETS as u32);
        let count = w.current.iter().fold(0u64, |a, &c| a.wrapping_add(c));

        // Slide: the base is the oldest reading younger than max_age or, when every reading is
        // older (sparse reads), the newest one. Readings older than the base are useless. The
        // creation of the summary is the oldest reading of all (every count zero): while it is
        // younger than max_age, every observation is in the window.
        let max_age = inner.config.max_age;
        let base: &[(u16, u64)] = if now.saturating_duration_since(inner.created) < max_age {
            &[]
        } else {
            let base_index = w
                .readings
                .iter()
                .position(|(t, _)| now.saturating_duration_since(*t) < max_age)
                .unwrap_or(w.readings.len().saturating_sub(1));
            w.readings.drain(..base_index);
            w.readings.front().map_or(&[], |(_, r)| r)
        };
        // Window counts = current - base (base counts never exceed current: words only grow).
        let mut window_total = count;
        for &(b, c) in base {
            window_total = window_total.wrapping_sub(c.min(w.current[b as usize]));
        }
        let mut base_iter = base.iter().peekable();
        let mut window_count = |b: usize, cur: u64| -> u64 {
            while let Some(&&(bb, _)) = base_iter.peek() {
                if (bb as usize) < b {
                    base_iter.next();
                } else {
                    break;
                }
            }
            match base_iter.peek() {
                Some(&&(bb, c)) if bb as usize == b => cur.saturating_sub(c),
                _ => cur,
            }
        };
        let mut qs = inner.config.quantiles.iter().peekable();
        let mut cumulative = 0u64;
        for (b, &cur) in w.current.iter().enumerate() {
            if window_total == 0 || qs.peek().is_none() {
                break;
            }
            cumulative += window_count(b, cur);
            // The rank of quantile q is ceil(q * n), at least 1.
            while let Some(&&q2) = qs.peek() {
                let rank = ((q2 * window_total as f64).ceil() as u64).max(1);
                if cumulative >= rank {
                    emit(q2, bucket_value(b));
                    qs.next();
                } else {
                    break;
                }
            }
        }
        for &q in qs {
            emit(q, f64::NAN);
        }

        // Take a new reading when the newest is older than one rotation step.
        let step = max_age / inner.config.age_buckets;
        let due = w
            .readings
            .back()
            .is_none_or(|(t, _)| now.saturating_duration_since(*t) >= step);
        if due {
            let mut reading = if w.readings.len() >= inner.config.age_buckets as usize {
                w.readings.pop_front().map(|(_, r)| r).unwrap_or_default()
            } else {
                Vec::new()
            };
            reading.clear();
            reading.extend(
                w.current
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c != 0)
                    .map(|(b, &c)| (b as u16, c)),
            );
            w.readings.push_back((now, reading));
        }
        (count, sum)
    }
}

impl std::fmt::Debug for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Summary")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(agentcore_loom)))]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_the_relative_error() {
        let mut v = MIN_TRACKED;
        while v < MAX_TRACKED {
            let reported = bucket_value(bucket_of(v));
            assert!(
                ((reported - v) / v).abs() <= 1.0 / 64.0 + 1e-12,
                "{v} -> {reported}"
            );
            v *= 1.013;
        }
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(-5.0), 0);
        assert_eq!(bucket_of(f64::INFINITY), BUCKETS - 1);
        assert_eq!(bucket_value(0), 0.0);
    }

    #[test]
    fn window_slides_and_forgets_old_observations() {
        let config = SummaryConfig::new(vec![0.5], Duration::from_secs(10), 2).unwrap();
        let s = Summary::new(config).unwrap();
        let t0 = Instant::now();
        for _ in 0..100 {
            s.observe(1.0);
        }
        let mut q = Vec::new();
        s.read_with(t0, |_, v| q.push(v));
        assert!((q[0] - 1.0).abs() < 0.02);
        for _ in 0..100 {
            s.observe(1000.0);
        }
        // 11 s later the reading at t0 is the base: only the 1000s are in the window.
        q.clear();
        let (count, sum) = s.read_with(t0 + Duration::from_secs(11), |_, v| q.push(v));
        assert_eq!((count, sum), (200, 100_100.0));
        assert!((q[0] - 1000.0).abs() / 1000.0 < 0.02, "{q:?}");
        // Nothing new for another 11 s: the window is empty.
        q.clear();
        s.read_with(t0 + Duration::from_secs(22), |_, v| q.push(v));
        assert!(q[0].is_nan(), "{q:?}");
    }

    #[test]
    fn a_young_summary_keeps_every_observation_in_its_window() {
        // Regression: the first read's reading used to become the base of the next read, so a
        // second scrape right after the first reported NaN quantiles, and observations made
        // before the first scrape left the window long before max_age had passed.
        let config = SummaryConfig::new(vec![0.5, 1.0], Duration::from_secs(60), 5).unwrap();
        let s = Summary::new(config).unwrap();
        s.observe(2.0);
        let first = s.read();
        let second = s.read();
        assert_eq!(first, second);
        assert!((first.quantiles[0].1 - 2.0).abs() < 0.04, "{first:?}");
        s.observe(100.0);
        let third = s.read_with(Instant::now() + Duration::from_secs(30), |q, v| {
            if q == 0.5 {
                assert!(
                    (v - 2.0).abs() < 0.04,
                    "the 2.0 is still in the window: {v}"
                );
            } else {
                assert!((v - 100.0).abs() < 2.0, "{v}");
            }
        });
        assert_eq!(third, (2, 102.0));
    }

    #[test]
    fn invalid_configs_are_refused() {
        assert!(SummaryConfig::new(vec![1.5], Duration::from_secs(1), 1).is_err());
        assert!(SummaryConfig::new(vec![0.9, 0.5], Duration::from_secs(1), 1).is_err());
        assert!(SummaryConfig::new(vec![0.5], Duration::ZERO, 1).is_err());
    }
}
