//! Histograms and summaries fed arbitrary `f64` streams from several short-lived threads (each
//! thread leases an arena block, records, and returns the block when it exits).
//!
//! * Histograms with up to 300 bounds (above 32 the bucket is found by binary search, a path
//!   `encode_roundtrip` never reaches): every cumulative count exactly `#{v <= bound}`, `count`
//!   and `rejected` (NaN) exact, `sum` exact when every value is a small dyadic number (so no
//!   addition order can round), otherwise within the rounding bound of a sum in any order,
//!   with the IEEE result for infinities. The empty sum is `+0`, never `-0` (issue 20.1).
//! * Summaries: the same for `count`, `rejected` and `sum`; each quantile `q` is what the module
//!   documents: the minimum for `q = 0`, the maximum for `q = 1`, otherwise the midpoint of the
//!   log-linear bucket (32 per power of two, `0` below `MIN_TRACKED`, `±MAX_TRACKED` beyond it)
//!   holding the observation of rank `max(1, ceil(q·n))` (a product within rounding error,
//!   4 ε relative, of a whole number is that number: `0.55 · 100` is rank 55, not the 56 its
//!   `f64` product rounds up to), clamped to `[min, max]`; NaN when
//!   nothing was observed. A second reading gives the same quantiles.
//! * Invalid configurations (arbitrary bounds, quantiles, ages) are refused exactly as an
//!   independent reference of the documented rules says, and a refused one registers nothing.
#![no_main]

use std::time::Duration;

use agentcore_telemetry::primitives::histogram::MAX_BUCKETS;
use agentcore_telemetry::primitives::summary::{MAX_AGE_BUCKETS, MAX_TRACKED, MIN_TRACKED};
use agentcore_telemetry::registry::FamilyOptions;
use agentcore_telemetry::{Buckets, Error, Histogram, Registry, Summary, SummaryConfig};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Value {
    /// `n / 8` for a small signed `n`: sums of these are exact in any order.
    Dyadic(i16),
    /// Any bit pattern: NaN, infinities, subnormals, huge values.
    Bits(u64),
    Special(u8),
    /// A histogram bound itself (`nudge` 0), or the next value above (1) or below (2): where a
    /// value equal to a bound must count in that bound's bucket.
    AtBound {
        index: u16,
        nudge: u8,
    },
}

impl Value {
    fn get(&self, bounds: &[f64]) -> f64 {
        match self {
            Value::AtBound { index, nudge } => {
                let Some(&b) = bounds.get(usize::from(*index) % bounds.len().max(1)) else {
                    return 0.0;
                };
                match nudge % 3 {
                    0 => b,
                    1 => next_toward(b, f64::INFINITY),
                    _ => next_toward(b, f64::NEG_INFINITY),
                }
            }
            Value::Dyadic(n) => f64::from(*n) / 8.0,
            Value::Bits(b) => f64::from_bits(*b),
            Value::Special(i) => [
                0.0,
                -0.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                MIN_TRACKED,
                -MIN_TRACKED,
                MIN_TRACKED / 2.0,
                MAX_TRACKED,
                -MAX_TRACKED,
                f64::MAX,
                f64::MIN_POSITIVE,
                1.0,
                1.03125,
                1.0312499999999998,
            ][usize::from(*i) % 15],
        }
    }
}

#[derive(Debug, Arbitrary)]
enum BoundsIn {
    /// Arbitrary bounds as given (usually invalid).
    Raw(Vec<f64>),
    /// `count` strictly increasing bounds from `start` by positive steps (valid when finite).
    Steps {
        start: i16,
        steps: Vec<u8>,
        count: u16,
    },
    /// One more bound than allowed.
    TooMany,
}

#[derive(Debug, Arbitrary)]
struct ConfigIn {
    quantiles: Vec<f64>,
    /// Often valid: quantiles from these (`k / 255`), sorted.
    sorted: Vec<u8>,
    use_sorted: bool,
    max_age_nanos: u64,
    age_buckets: u8,
}

#[derive(Debug, Arbitrary)]
struct Input {
    bounds: BoundsIn,
    config: ConfigIn,
    /// One stream per thread (at most 4 threads).
    streams: Vec<Vec<Value>>,
}

fn bounds_of(b: &BoundsIn) -> Vec<f64> {
    match b {
        BoundsIn::Raw(v) => v.iter().copied().take(400).collect(),
        BoundsIn::Steps {
            start,
            steps,
            count,
        } => {
            let mut at = f64::from(*start) / 4.0;
            let mut out = Vec::new();
            for i in 0..usize::from(*count % 301) {
                out.push(at);
                let step = steps.get(i % steps.len().max(1)).copied().unwrap_or(1);
                at += f64::from(step.max(1)) / 16.0;
            }
            out
        }
        BoundsIn::TooMany => (0..=MAX_BUCKETS).map(|i| i as f64).collect(),
    }
}

/// The next `f64` from `v` toward `to`; `v` itself when it is not finite (a bound taken from
/// raw bits, before `Buckets::new` refuses it: stepping a NaN's bits overflowed).
fn next_toward(v: f64, to: f64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    if v == 0.0 {
        return f64::from_bits(1).copysign(to);
    }
    let up = (to > v) == (v > 0.0);
    f64::from_bits(if up { v.to_bits() + 1 } else { v.to_bits() - 1 })
}

/// Whether `v` is a multiple of 1/16 of magnitude at most 2^20: sums of up to 1024 such values
/// are exact in `f64`, whatever the order of the additions.
fn small_dyadic(v: f64) -> bool {
    v.abs() <= f64::from(1u32 << 20) && (v * 16.0).fract() == 0.0
}

/// The documented bucket rules, by the reference: finite, strictly increasing, a trailing
/// `+Inf` dropped, at most `MAX_BUCKETS`.
fn valid_bounds(bounds: &[f64]) -> Option<Vec<f64>> {
    let mut b = bounds.to_vec();
    if b.last() == Some(&f64::INFINITY) {
        b.pop();
    }
    let ok = b.len() <= MAX_BUCKETS
        && b.iter().all(|x| x.is_finite())
        && b.windows(2).all(|w| w[0] < w[1]);
    ok.then_some(b)
}

fn config_of(c: &ConfigIn) -> SummaryConfig {
    let quantiles = if c.use_sorted {
        let mut q: Vec<f64> = c
            .sorted
            .iter()
            .take(8)
            .map(|&k| f64::from(k) / 255.0)
            .collect();
        q.sort_by(f64::total_cmp);
        q.dedup();
        q
    } else {
        c.quantiles.iter().copied().take(8).collect()
    };
    SummaryConfig {
        quantiles,
        // Mostly at least a minute: every observation of the run is inside the window.
        max_age: Duration::from_nanos(c.max_age_nanos % (1 << 40)),
        age_buckets: u32::from(c.age_buckets),
    }
}

fn valid_config(c: &SummaryConfig) -> bool {
    c.quantiles.iter().all(|q| (0.0..=1.0).contains(q))
        && c.quantiles.windows(2).all(|w| w[0] < w[1])
        && !c.max_age.is_zero()
        && c.age_buckets >= 1
        && c.age_buckets <= MAX_AGE_BUCKETS
        && c.max_age.as_nanos() >= u128::from(c.age_buckets)
}

/// Observes every stream on a thread of its own, all at once; the threads have exited, their
/// thread-local destructors included, before this returns.
///
/// The handles are joined explicitly: the end of `thread::scope` waits for the closures only,
/// not for the threads themselves (rust-lang/rust#116179), so a thread could still be running
/// its thread-local destructors when libFuzzer checks for leaks after the input, and
/// LeakSanitizer reported glibc's thread-local destructor list (`__cxa_thread_atexit_impl`) as
/// leaked (a 5-minute run hit it). `ScopedJoinHandle::join` waits for the whole thread.
fn record(streams: &[Vec<f64>], observe: impl Fn(f64) + Sync) {
    std::thread::scope(|s| {
        let threads: Vec<_> = streams
            .iter()
            .map(|stream| {
                let observe = &observe;
                s.spawn(move || stream.iter().for_each(|&v| observe(v)))
            })
            .collect();
        for t in threads {
            t.join().expect("a recording thread panicked");
        }
    });
}

/// The sum check: exact for dyadic streams, otherwise IEEE semantics for infinities and the
/// worst-case rounding of a sum in any order.
fn check_sum(got: f64, values: &[f64], exact: bool, what: &str) {
    let seq = values.iter().fold(0.0f64, |a, v| a + v);
    if values.is_empty() {
        assert!(
            got == 0.0 && got.is_sign_positive(),
            "{what}: empty sum {got:?}"
        );
        return;
    }
    let pos_inf = values.contains(&f64::INFINITY);
    let neg_inf = values.contains(&f64::NEG_INFINITY);
    if pos_inf && neg_inf {
        assert!(got.is_nan(), "{what}: +inf and -inf summed to {got}");
        return;
    }
    let abs: f64 = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| v.abs())
        .sum();
    // Below this no partial sum of the finite values can overflow, in any order.
    let bounded = abs <= f64::MAX / 4.0;
    if pos_inf || neg_inf {
        let inf = if pos_inf {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        // Finite values overflowing to the other infinity make NaN in some orders.
        assert!(
            got == inf || !bounded && got.is_nan(),
            "{what}: {got} with {inf}"
        );
        return;
    }
    if exact {
        assert_eq!(got, seq, "{what}: exact sum");
        return;
    }
    if !bounded {
        // An intermediate may overflow in one order and not another.
        return;
    }
    let bound = (values.len() as f64 + 1.0) * f64::EPSILON * abs + f64::MIN_POSITIVE;
    assert!(
        (got - seq).abs() <= bound,
        "{what}: sum {got} vs {seq} (bound {bound})"
    );
}

/// The value the summary documents for a bucket holding `v` (before clamping).
fn bucket_value(v: f64) -> f64 {
    let a = v.abs();
    if a < MIN_TRACKED {
        return 0.0;
    }
    if a.is_infinite() {
        // Each infinity has a bucket of its own, which reports it.
        return v;
    }
    if a >= MAX_TRACKED {
        return MAX_TRACKED.copysign(v);
    }
    // 32 buckets per power of two: [2^e (1 + m/32), 2^e (1 + (m+1)/32)); report the midpoint.
    let bits = a.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let m = ((bits >> 47) & 31) as i32;
    let mid = f64::from(64 + 2 * m + 1) * 2f64.powi(e - 6);
    mid.copysign(v)
}

fn check_histogram(bounds: &[f64], streams: &[Vec<f64>], exact: bool) {
    let buckets = Buckets::new(bounds.to_vec()).expect("valid bounds");
    let h = Histogram::new(buckets).expect("arena has room");
    record(streams, |v| h.observe(v));
    let values: Vec<f64> = streams
        .iter()
        .flatten()
        .copied()
        .filter(|v| !v.is_nan())
        .collect();
    let nans = streams.iter().flatten().filter(|v| v.is_nan()).count() as u64;
    let snap = h.snapshot();
    let mut want: Vec<u64> = bounds
        .iter()
        .map(|&b| values.iter().filter(|&&v| v <= b).count() as u64)
        .collect();
    want.push(values.len() as u64);
    assert_eq!(snap.cumulative, want, "bounds {bounds:?}");
    assert_eq!(snap.count, values.len() as u64);
    assert_eq!(h.rejected(), nans);
    check_sum(snap.sum, &values, exact, "histogram");
}

fn check_summary(config: &SummaryConfig, streams: &[Vec<f64>], exact: bool) {
    let s = Summary::new(config.clone()).expect("valid config");
    record(streams, |v| s.observe(v));
    let mut values: Vec<f64> = streams
        .iter()
        .flatten()
        .copied()
        .filter(|v| !v.is_nan())
        .collect();
    let nans = streams.iter().flatten().filter(|v| v.is_nan()).count() as u64;
    let r = s.read();
    assert_eq!(r.count, values.len() as u64);
    assert_eq!(s.rejected(), nans);
    check_sum(r.sum, &values, exact, "summary");
    // Quantiles are over the window: every observation is in it while the summary is younger
    // than `max_age`, which a minute leaves ample room for on a loaded machine.
    let in_window = config.max_age >= Duration::from_secs(60);
    assert_eq!(
        r.quantiles.iter().map(|q| q.0).collect::<Vec<_>>(),
        config.quantiles
    );
    if in_window {
        values.sort_by(f64::total_cmp);
        for &(q, got) in &r.quantiles {
            let want = match (values.first(), values.last()) {
                (None, _) | (_, None) => f64::NAN,
                (Some(&min), Some(&max)) => {
                    if q == 0.0 {
                        min
                    } else if q >= 1.0 {
                        max
                    } else {
                        let n = values.len() as f64;
                        let x = q * n;
                        let whole = x.round();
                        let x = if (x - whole).abs() <= whole * 4.0 * f64::EPSILON {
                            whole
                        } else {
                            x.ceil()
                        };
                        let rank = (x as usize).max(1);
                        bucket_value(values[rank - 1]).clamp(min, max)
                    }
                }
            };
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()) || got == want,
                "quantile {q}: got {got:?} want {want:?} of {} values",
                values.len()
            );
        }
        // Reading again (a new period started) reads the same window.
        let again = s.read();
        assert_eq!(
            format!("{:?}", again.quantiles),
            format!("{:?}", r.quantiles),
            "second reading"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let bounds = bounds_of(&input.bounds);
    let streams: Vec<Vec<f64>> = input
        .streams
        .iter()
        .take(4)
        .map(|s| s.iter().take(256).map(|v| v.get(&bounds)).collect())
        .collect();
    let exact = streams.iter().flatten().all(|&v| small_dyadic(v));

    // Histograms: the bounds are accepted or refused as the reference says.
    let registry = Registry::new();
    match (Buckets::new(bounds.clone()), valid_bounds(&bounds)) {
        (Ok(b), Some(want)) => {
            assert_eq!(b.bounds(), &want[..]);
            check_histogram(&want, &streams, exact);
        }
        (Err(Error::InvalidBuckets { .. }), None) => {}
        (got, want) => panic!("bounds {bounds:?}: got {got:?}, reference {want:?}"),
    }

    // Summaries: every way of making one agrees with the reference on validity.
    let config = config_of(&input.config);
    let valid = valid_config(&config);
    let refused = |e: &Error| matches!(e, Error::InvalidSummaryConfig { .. });
    let new = SummaryConfig::new(config.quantiles.clone(), config.max_age, config.age_buckets);
    assert_eq!(new.is_ok(), valid, "SummaryConfig::new {config:?}");
    if let Err(e) = &new {
        assert!(refused(e), "{e:?}");
    }
    let registered =
        registry.register::<Summary>("s", "h", &[], config.clone(), FamilyOptions::default());
    let helper = registry.summary_family("s", "h", &[], config.clone());
    let got_or = registry.get_or_register::<Summary>(
        "s",
        "h",
        &[],
        config.clone(),
        FamilyOptions::default(),
    );
    if valid {
        registered.expect("valid config registers");
        assert!(matches!(helper, Err(Error::DuplicateMetric { .. })));
        got_or.expect("the registered family");
        check_summary(&config, &streams, exact);
    } else {
        for r in [registered.err(), helper.err(), got_or.err()] {
            assert!(r.as_ref().is_some_and(refused), "{config:?}: {r:?}");
        }
        assert!(Summary::new(config.clone()).is_err());
        assert!(
            registry.family_names().iter().all(|n| n != "s"),
            "registered {config:?}"
        );
    }
});
