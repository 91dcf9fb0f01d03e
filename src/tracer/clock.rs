//! The span clock: monotonic ticks for durations, converted to wall-clock Unix nanoseconds
//! through one `(SystemTime, ticks)` anchor per tracer.
//!
//! On this project's 2-vCPU VM `Instant::now()` costs about 21 ns while `rdtsc` costs about
//! 8 ns; a span with one event reads the clock three times, so the clock alone would eat the
//! 50 ns budget. On x86_64 Linux with an invariant TSC (`constant_tsc` and `nonstop_tsc` in
//! `/proc/cpuinfo`) the clock therefore reads the TSC, calibrated once per process against
//! `Instant` (a 5 ms measurement at first use). Everywhere else, or when the environment
//! variable `AGENTCORE_TRACE_CLOCK=instant` is set, it reads `Instant` (nanoseconds since a
//! process-wide base instant). Both are monotonic; wall-clock steps (NTP) never distort a
//! duration, since only the anchor reads `SystemTime`. The anchor is taken again every
//! 100 ms, so timestamps follow the wall clock (see [`Anchor`]).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) mod conversion;

pub(crate) use conversion::Conversion;
use conversion::{mul_ns, ConversionCell};

use crate::sync::AtomicU64;

#[derive(Debug)]
struct Source {
    /// `Some(mult)` when reading the TSC: nanoseconds per tick in 32.32 fixed point.
    tsc_mult: Option<u64>,
    /// The calibration's first `(nanoseconds since base, TSC)` sample: the start of the
    /// baseline every re-anchor measures the rate over again (see [`Anchor`], "The rate").
    tsc_first: (u128, u64),
    /// Base for the `Instant` fallback and the rate samples.
    base: Instant,
}

static SOURCE: OnceLock<Source> = OnceLock::new();

fn source() -> &'static Source {
    SOURCE.get_or_init(|| {
        let base = Instant::now();
        let forced_instant = std::env::var("AGENTCORE_TRACE_CLOCK")
            .map(|v| v.eq_ignore_ascii_case("instant"))
            .unwrap_or(false);
        let calibrated = if !forced_instant && tsc::reliable() {
            tsc::calibrate(base)
        } else {
            None
        };
        Source {
            tsc_mult: calibrated.map(|(mult, _)| mult),
            tsc_first: calibrated.map_or((0, 0), |(_, first)| first),
            base,
        }
    })
}

/// Monotonic ticks now (TSC cycles or nanoseconds, see the module doc).
#[inline]
pub(crate) fn now_ticks() -> u64 {
    let s = source();
    if s.tsc_mult.is_some() {
        tsc::read()
    } else {
        s.base.elapsed().as_nanos() as u64
    }
}

/// Nanoseconds in `ticks` ticks.
#[cfg(test)]
pub(crate) fn ticks_to_ns(ticks: u64) -> u64 {
    match source().tsc_mult {
        Some(mult) => mul_ns(ticks, mult),
        None => ticks,
    }
}

/// Whether the clock reads the TSC (exposed for tests and diagnostics).
#[cfg(test)]
pub(crate) fn uses_tsc() -> bool {
    source().tsc_mult.is_some()
}

/// How long an anchor serves before it is taken again (see [`Anchor`]).
const REANCHOR_EVERY: Duration = Duration::from_millis(100);

/// How far a rate measured again may stray from the first calibration's and still be taken:
/// 1/100 (the calibration's own error is a few hundred ppm at most,
/// `tests/tracer_clock_rate.rs`). Further off, the TSC's rate itself changed under the process
/// (a VM moved to a host whose TSC runs at another rate, unscaled), which a baseline reaching
/// back before the change cannot measure; the last rate taken stays.
const RATE_TOLERANCE: u64 = 100;

/// How far the rate between two successive samples may stray from the kept rate before the
/// baseline restarts after them: 1/1000, ten times the calibration's allowance (100 ppm), and
/// over 100 ms or more two samples' own error (tens of nanoseconds) is well under it.
const GAP_TOLERANCE: u64 = 1000;

/// The TSC's rate baseline: its first sample (the calibration's, or the first after a gap), the
/// previous re-anchor's sample, and the calibrated rate (see [`Anchor`], "The rate"). Samples
/// are `(nanoseconds since the source's base instant, TSC)`, a pair of words each. Written and
/// read only by the thread holding the conversion's claim ([`Anchor`], invariant 2), which the
/// next holder acquired before its claim, so `Relaxed` suffices.
#[derive(Debug)]
struct RateBase {
    first: [AtomicU64; 2],
    last: [AtomicU64; 2],
    calibrated: u64,
}

impl RateBase {
    fn new(first: (u128, u64), calibrated: u64) -> Self {
        let pair = |(ns, t): (u128, u64)| [AtomicU64::new(ns as u64), AtomicU64::new(t)];
        RateBase {
            first: pair(first),
            last: pair(first),
            calibrated,
        }
    }

    /// The rate over the baseline to `sample` (a later `(ns, TSC)` reading), or `kept` when it
    /// cannot be measured or strays past [`RATE_TOLERANCE`]. When the rate since the previous
    /// sample strays past [`GAP_TOLERANCE`] from `kept` (or cannot be measured), the ticks and
    /// `Instant` parted there, and the baseline restarts at `sample`.
    fn measure(&self, sample: (u128, u64), kept: u64) -> u64 {
        let load = |w: &[AtomicU64; 2]| (u128::from(w[0].load(Relaxed)), w[1].load(Relaxed));
        let store = |w: &[AtomicU64; 2]| {
            w[0].store(sample.0 as u64, Relaxed);
            w[1].store(sample.1, Relaxed);
        };
        let last = load(&self.last);
        store(&self.last);
        let steady =
            rate_between(last, sample).is_some_and(|m| m.abs_diff(kept) <= kept / GAP_TOLERANCE);
        if !steady {
            store(&self.first);
            return kept;
        }
        rate_between(load(&self.first), sample)
            .filter(|m| m.abs_diff(self.calibrated) <= self.calibrated / RATE_TOLERANCE)
            .unwrap_or(kept)
    }
}

/// Nanoseconds per tick (32.32) between two `(nanoseconds, ticks)` samples; `None` unless both
/// advanced.
fn rate_between((ns0, t0): (u128, u64), (ns1, t1): (u128, u64)) -> Option<u64> {
    let ns = ns1.checked_sub(ns0)?;
    let ticks = u128::from(t1.checked_sub(t0)?);
    if ticks == 0 {
        return None;
    }
    // `ns` is below 2^64 (centuries), so `ns << 32` fits.
    u64::try_from((ns << 32) / ticks).ok().filter(|&m| m > 0)
}

/// One tracer's clock: the `(wall clock, ticks)` anchor and the tick rate, as a [`Conversion`],
/// plus a copy of the process-wide source, so reading and converting never goes through the
/// `OnceLock` again (that showed as 3-4% of a span in the profile).
///
/// The anchor is taken again once it is [`REANCHOR_EVERY`] old, by the first conversion
/// that notices ([`conversion_at`](Self::conversion_at): a load and a predictable branch
/// otherwise). Taken once per tracer, the timestamps drifted from the wall clock by the tick
/// rate's calibration error times the tracer's age, and never followed the clock's NTP
/// corrections: 405 ppm on the review VM, 35 s a day (found by review). Now they stay within
/// the rate's error times 100 ms of it.
///
/// # The rate
///
/// The TSC's rate is calibrated at first use against `Instant` over 5 ms, to within a few
/// hundred ppm on a VM (100 ppm is what `tests/tracer_clock_rate.rs` allows). Every re-anchor
/// measures it again over the whole baseline since that first sample, so its error falls as
/// the process ages (two readings' bracket width over the baseline: about 0.1 ppm after a
/// second), and takes the new rate with the new anchor. With the first rate kept, each
/// re-anchor moved the offset by the rate's error times 100 ms, and a span converted at its
/// finish with the offset of that moment (invariant 3 below) placed its start by the error
/// times its own duration: a child started just after its parent, and finished before it,
/// came out *before* its parent when the parent ran long (400 ppm over a minute: 24 ms;
/// `tests::a_long_parent_starts_before_its_child_whatever_the_calibration`). `Instant`
/// counts `CLOCK_MONOTONIC`, whose rate NTP disciplines as it does the wall clock's, so the
/// measured rate follows the wall clock's, not the crystal's. The `Instant` fallback counts
/// nanoseconds already: its rate is exactly 1.0 (`1 << 32`), never measured.
///
/// The ticks and `Instant` do not always count the same time: where the TSC runs through a
/// suspend (`nonstop_tsc`; Linux measures the sleep with it), `CLOCK_MONOTONIC` stops. A
/// baseline reaching back across that gap measured a rate short by the sleep over the
/// process's age, and took it when within [`RATE_TOLERANCE`]: 3 s asleep at 10 minutes, a
/// second of ticks then converted to 0.9957 s (`tests::a_suspend_does_not_skew_the_rate`). So
/// each re-anchor also measures the rate since the previous one's sample; when that strays
/// past [`GAP_TOLERANCE`] from the kept rate, the baseline restarts after it, and the kept
/// rate stays until the next re-anchor measures over the new baseline. (A gap under 1/1000 of
/// the time between two re-anchors, which is 100 ms on a busy tracer, goes unnoticed.)
///
/// # Invariants
///
/// Shared by every thread that records on the tracer, read without a lock: the conversion and
/// its due time are one [`ConversionCell`], whose doc states how a pair of words is published
/// whole and the orderings that take.
///
/// 1. Every conversion ever published is a complete anchor and rate (one `(ticks, wall)`
///    reading, one measured rate), and any of them converts any tick count to within the rate
///    error times the time since that anchor: converting with one a little older than the
///    newest only moves a timestamp by that error, never corrupts it.
/// 2. Only the thread whose claim on the due time succeeds re-anchors; it publishes the new
///    conversion with the next due time. Nothing between the claim and the publication can
///    panic (clock reads, checked arithmetic): a claim never published would leave the anchor
///    held, and the timestamps drifting, for good. A thread that loses the claim converts with
///    the conversion published now (invariant 1). The rate's baseline ([`RateBase`]) is the
///    claim holder's alone: each holder's claim follows its `Acquire` load of the due time the
///    previous holder published (`Release`), so it sees the baseline that one left.
/// 3. A span's start, end and events are converted with one conversion (read once, at its
///    finish), so its duration is the ticks' at one rate and its events lie within it
///    whatever other spans see. (Events were converted when added, with the offset of that
///    moment: one added just before a re-anchor lay outside a span finishing just after it,
///    by up to 15 µs on the review VM; `tests/tracer_event_times.rs`.) Spans finishing at
///    different times use different conversions: their timestamps agree to within the rate's
///    error times the time between the finishes, which measuring the rate again keeps small
///    (see "The rate").
#[derive(Debug)]
pub(crate) struct Anchor {
    /// The current conversion and when it is due to be taken again (its ticks plus
    /// [`REANCHOR_EVERY`]).
    conversion: ConversionCell,
    /// [`REANCHOR_EVERY`] in ticks (at the first rate).
    every: u64,
    /// `Some` when reading the TSC: the baseline its rate is measured over again.
    rate: Option<RateBase>,
    base: Instant,
}

impl Anchor {
    pub(crate) fn now() -> Self {
        let source = source();
        let rate = source
            .tsc_mult
            .map(|calibrated| RateBase::new(source.tsc_first, calibrated));
        // A tracer made long after the calibration takes the rate over the baseline so far.
        let mult = rate.as_ref().map_or(1 << 32, |r| {
            r.measure(tsc::sample(source.base), r.calibrated)
        });
        let (ticks, offset) = take_anchor(mult);
        let every = ((REANCHOR_EVERY.as_nanos() << 32) / u128::from(mult.max(1)))
            .clamp(1, u128::from(u64::MAX >> 1)) as u64;
        Anchor {
            conversion: ConversionCell::new(
                Conversion { offset, mult },
                ticks.saturating_add(every),
            ),
            every,
            rate,
            base: source.base,
        }
    }

    /// Monotonic ticks now (the same clock as [`now_ticks`]).
    #[inline]
    pub(crate) fn now_ticks(&self) -> u64 {
        if self.rate.is_some() {
            tsc::read()
        } else {
            self.base.elapsed().as_nanos() as u64
        }
    }

    /// Nanoseconds in `ticks` ticks, at the current rate.
    #[inline]
    pub(crate) fn ticks_to_ns(&self, ticks: u64) -> u64 {
        mul_ns(ticks, self.conversion.mult())
    }

    /// The conversion for ticks read up to `now` (a recent reading of this clock), taking the
    /// anchor again first if it is older than [`REANCHOR_EVERY`].
    #[inline]
    pub(crate) fn conversion_at(&self, now: u64) -> Conversion {
        // The due check is the copy's first load: the due time is kept, not the anchor's ticks
        // (subtracting and comparing with `every` cost 3 more instructions a conversion, two
        // per span with an event, under callgrind). A reading older than an anchor another
        // thread just took is before its due time, so not stale. Ticks do not wrap (see
        // `mul_ns`).
        match self.conversion.read(now) {
            Ok(c) => c,
            Err(seen) => self.reanchor(seen),
        }
    }

    /// Takes the anchor again, unless another thread already has since `seen` (the due time
    /// read) or is taking it now.
    #[cold]
    #[inline(never)]
    fn reanchor(&self, seen: u64) -> Conversion {
        self.reanchor_with(seen, || tsc::sample(self.base), take_anchor)
    }

    /// [`reanchor`](Self::reanchor) with its clocks as arguments (the tests' simulated ones):
    /// `sample` reads `(nanoseconds since base, ticks)`, `take` an anchor at a given rate.
    #[inline(always)]
    fn reanchor_with(
        &self,
        seen: u64,
        sample: impl FnOnce() -> (u128, u64),
        take: impl FnOnce(u64) -> (u64, u64),
    ) -> Conversion {
        if !self.conversion.claim(seen) {
            return self.conversion.read_again();
        }
        // Nothing from here to the publication can panic (clock reads, checked arithmetic):
        // a claim never published would leave the anchor held for good (invariant 2).
        let kept = self.conversion.mult();
        let mult = self
            .rate
            .as_ref()
            .map_or(kept, |r| r.measure(sample(), kept));
        let (ticks, offset) = take(mult);
        let c = Conversion { offset, mult };
        self.conversion.publish(c, ticks.saturating_add(self.every));
        c
    }

    /// Wall-clock Unix nanoseconds now (the tests'; spans convert their ticks when they
    /// finish, see invariant 3).
    #[cfg(test)]
    pub(crate) fn now_unix_ns(&self) -> u64 {
        let now = self.now_ticks();
        self.conversion_at(now).unix_ns(now)
    }
}

/// A fresh anchor: `(ticks, wall-clock Unix nanoseconds minus ns(ticks))`.
fn take_anchor(mult: u64) -> (u64, u64) {
    take_anchor_with(mult, now_ticks, || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos() as u64
    })
}

/// [`take_anchor`] with its two clocks as arguments (the tests' slow wall clock).
///
/// The wall clock is read between two tick readings, three times, and the reading of the
/// tightest bracket is paired with its midpoint. A single `(ticks, wall)` pair counted the
/// wall-clock read's own latency as time, and that read can be slow: the first clock read
/// after a thread slept took 5 to 28 µs on a VM (an adversarial review), against tens of
/// nanoseconds after it. Every timestamp until the next anchor (100 ms later) was then that
/// much late, and the next anchor took them back: a span could start before the span before
/// it on the same thread had ended. Every 100 ms at most, so the two extra readings cost
/// nothing a span sees.
fn take_anchor_with(
    mult: u64,
    mut ticks: impl FnMut() -> u64,
    mut wall_unix_ns: impl FnMut() -> u64,
) -> (u64, u64) {
    let mut best: Option<(u64, u64, u64)> = None; // (bracket width, midpoint, wall clock)
    for _ in 0..3 {
        let before = ticks();
        let wall = wall_unix_ns();
        let width = ticks().saturating_sub(before);
        if best.is_none_or(|(w, ..)| width < w) {
            best = Some((width, before + width / 2, wall));
        }
    }
    let (_, at, wall) = best.unwrap_or((0, 0, 0)); // never: three brackets were read
    (at, wall.wrapping_sub(mul_ns(at, mult)))
}

#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(agentcore_loom),
    not(miri)
))]
mod tsc {
    use std::time::{Duration, Instant};

    pub(super) fn reliable() -> bool {
        std::fs::read_to_string("/proc/cpuinfo")
            .map(|info| {
                info.lines()
                    .find(|l| l.starts_with("flags"))
                    .map(|l| {
                        let has = |f: &str| l.split_whitespace().any(|w| w == f);
                        has("constant_tsc") && has("nonstop_tsc")
                    })
                    .unwrap_or(false)
            })
            .unwrap_or(false)
    }

    /// A TSC reading and the `Instant` it was taken at (nanoseconds since `base`): the
    /// midpoint of the tightest of 8 brackets `(Instant, TSC, Instant)`.
    pub(super) fn sample(base: Instant) -> (u128, u64) {
        let mut best = (u128::MAX, 0, 0);
        for _ in 0..8 {
            let a = base.elapsed().as_nanos();
            let t = read();
            let b = base.elapsed().as_nanos();
            let width = b.saturating_sub(a);
            if width < best.0 {
                best = (width, a + width / 2, t);
            }
        }
        (best.1, best.2)
    }

    #[inline]
    pub(super) fn read() -> u64 {
        // SAFETY: `rdtsc` has no preconditions on x86_64; it only reads the time-stamp counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// Nanoseconds per tick in 32.32 fixed point, measured against `Instant` over ~5 ms.
    ///
    /// Each TSC sample is bracketed by two `Instant` reads and paired with their midpoint,
    /// the tightest bracket of a few tries (a slow or preempted read makes a wide one). Read
    /// once each (`Instant`, then the TSC; the TSC, then `Instant`), the cost of the read
    /// after the TSC's counted as time the ticks did not see, and the first clock read after
    /// the sleep is slow: 5 to 28 µs on the review VM (a Firecracker guest; the next one
    /// takes 50 ns), out of 5 ms. Every duration came out 500 to 1900 ppm too long there
    /// (`tests/tracer_clock_rate.rs`; found by an adversarial review).
    ///
    /// Returns the rate and the first sample, from which every re-anchor measures the rate
    /// again over a longer baseline ([`super::rate_between`]).
    pub(super) fn calibrate(base: Instant) -> Option<(u64, (u128, u64))> {
        let first = sample(base);
        std::thread::sleep(Duration::from_millis(5));
        let rate = super::rate_between(first, sample(base))?;
        Some((rate, first))
    }
}

#[cfg(not(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(agentcore_loom),
    not(miri)
)))]
mod tsc {
    pub(super) fn reliable() -> bool {
        false
    }
    pub(super) fn read() -> u64 {
        0
    }
    pub(super) fn sample(_: std::time::Instant) -> (u128, u64) {
        (0, 0)
    }
    pub(super) fn calibrate(_: std::time::Instant) -> Option<(u64, (u128, u64))> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_monotonic_and_convert_to_elapsed_time() {
        // Bounded by `Instant` read around the two tick reads, not by a fixed ceiling: a
        // loaded machine can run this thread late by any amount (a 180 ms allowance was one
        // such assumption). 25% covers the tick rate's calibration error many times over.
        now_ticks(); // The first read calibrates the tick rate (milliseconds): not timed.
        let outer = Instant::now();
        let a = now_ticks();
        std::thread::sleep(Duration::from_millis(20));
        let b = now_ticks();
        let outer = outer.elapsed().as_nanos() as u64;
        assert!(b > a);
        let ns = ticks_to_ns(b - a);
        assert!(
            (15_000_000..=outer + outer / 4).contains(&ns),
            "{ns} ns in {outer} ns (tsc: {})",
            uses_tsc()
        );
    }

    #[test]
    fn a_slow_wall_clock_read_does_not_move_the_anchor() {
        // Simulated time in nanoseconds; ticks are nanoseconds (`mult` = 1.0 in 32.32). The
        // wall clock is 10^18 ns ahead of the ticks; its first read takes 2 ms (the VM's
        // first clock read after a sleep), the others 50 ns.
        use std::cell::Cell;
        let now = Cell::new(1_000_000u64);
        let reads = Cell::new(0);
        let ticks = || {
            now.set(now.get() + 20);
            now.get()
        };
        let wall = || {
            reads.set(reads.get() + 1);
            now.set(now.get() + if reads.get() == 1 { 2_000_000 } else { 50 });
            now.get() + 1_000_000_000_000_000_000
        };
        let (_, offset) = take_anchor_with(1 << 32, ticks, wall);
        let error = offset.abs_diff(1_000_000_000_000_000_000);
        assert!(error <= 50, "the anchor is {error} ns off the wall clock");
    }

    /// A simulated TSC at 2.5 GHz whose first calibration is 400 ppm slow, the wall clock
    /// exact, and each re-anchor's `(Instant, TSC)` sample 25 ns early or late in turn (half
    /// the review VM's tightest bracket, 50 ns; see `tsc::sample`): a parent starts, a child
    /// starts 1 µs later and finishes 1 µs after that, and the parent finishes a minute later,
    /// the anchor taken every 100 ms between. Each span is converted with the conversion of
    /// its finish (invariant 3). The samples' error is what makes the baseline's length
    /// matter: with exact samples, a rate measured over the last 100 ms alone was as good as
    /// one over the whole baseline, and this test passed with it (0.5 ppm off, it places a
    /// one-minute parent's start 30 µs off).
    #[test]
    fn a_long_parent_starts_before_its_child_whatever_the_calibration() {
        const WALL: u64 = 1_700_000_000_000_000_000;
        let ticks = |ns: u64| ns / 2 * 5; // 0.4 ns per tick
        let exact = 2 * (1u64 << 32) / 5;
        let calibrated = exact - exact / 2_500; // 400 ppm slow
        let first = (1_000_000_000u128, ticks(1_000_000_000));
        let at = |ns: u64| {
            let t = ticks(ns);
            (t, (WALL + ns).wrapping_sub(mul_ns(t, calibrated)))
        };
        let (t0, offset) = at(1_005_000_000);
        let every = ticks(100_000_000);
        let anchor = Anchor {
            conversion: ConversionCell::new(
                Conversion {
                    offset,
                    mult: calibrated,
                },
                t0 + every,
            ),
            every,
            rate: Some(RateBase::new(first, calibrated)),
            base: Instant::now(),
        };
        // Simulated time moves in steps just over 100 ms; each step's conversion takes the
        // anchor again.
        const STEP: u64 = 100_001_000;
        let mut now = 1_005_000_000u64;
        let mut late = false;
        let mut advance_to = |until: u64| {
            while now + STEP <= until {
                now += STEP;
                let Err(due) = anchor.conversion.read(ticks(now)) else {
                    panic!("not due after a step");
                };
                late = !late;
                let sampled = if late { now + 25 } else { now - 25 };
                let sample = (u128::from(sampled), ticks(now));
                anchor.reanchor_with(
                    due,
                    || sample,
                    |mult| {
                        let t = ticks(now);
                        (t, (WALL + now).wrapping_sub(mul_ns(t, mult)))
                    },
                );
            }
            anchor.conversion.read_again()
        };
        let parent_start = 2_000_000_000u64;
        let child_start = parent_start + 1_000;
        let child = advance_to(child_start + 1_000).unix_ns(ticks(child_start));
        let parent = advance_to(parent_start + 60_000_000_000).unix_ns(ticks(parent_start));
        assert!(
            parent <= child,
            "the parent starts {} ns after its child",
            parent - child
        );
        // And both where the wall clock had them, to within 100 ns.
        for (got, want) in [(parent, parent_start), (child, child_start)] {
            let error = got.abs_diff(WALL + want);
            assert!(error <= 100, "a start {error} ns off the wall clock");
        }
    }

    /// A machine suspended with the process running, where the TSC keeps counting through a
    /// suspend (`nonstop_tsc`: Linux then measures the sleep with it) but `Instant`
    /// (`CLOCK_MONOTONIC`) does not: 3 s asleep at 10 minutes of age. The simulated TSC runs at
    /// exactly 2.5 GHz, its calibration exact; a second of ticks after the resume must still
    /// convert to a second, within the 100 ppm `tests/tracer_clock_rate.rs` allows.
    #[test]
    fn a_suspend_does_not_skew_the_rate() {
        const WALL: u64 = 1_700_000_000_000_000_000;
        let ticks = |ns: u64| ns / 2 * 5; // 0.4 ns per tick
        let exact = 2 * (1u64 << 32) / 5;
        let first = (1_000_000_000u128, ticks(1_000_000_000));
        let every = ticks(100_000_000);
        let (t0, wall0) = (ticks(1_005_000_000), WALL + 1_005_000_000);
        let anchor = Anchor {
            conversion: ConversionCell::new(
                Conversion {
                    offset: wall0.wrapping_sub(mul_ns(t0, exact)),
                    mult: exact,
                },
                t0 + every,
            ),
            every,
            rate: Some(RateBase::new(first, exact)),
            base: Instant::now(),
        };
        // `now` is the time the TSC and the wall clock count; `Instant` lags it by `asleep`.
        const STEP: u64 = 100_001_000;
        let (mut now, mut asleep) = (1_005_000_000u64, 0u64);
        for step in 0..7_000 {
            now += STEP;
            if step == 6_000 {
                (now, asleep) = (now + 3_000_000_000, 3_000_000_000);
            }
            let Err(due) = anchor.conversion.read(ticks(now)) else {
                panic!("not due after a step");
            };
            let sample = (u128::from(now - asleep), ticks(now));
            anchor.reanchor_with(
                due,
                || sample,
                |mult| {
                    let t = ticks(now);
                    (t, (WALL + now).wrapping_sub(mul_ns(t, mult)))
                },
            );
        }
        let second = anchor.ticks_to_ns(ticks(1_000_000_000));
        assert!(
            second.abs_diff(1_000_000_000) <= 100_000,
            "a second of ticks after the resume converts to {second} ns"
        );
    }

    #[test]
    fn a_rate_measured_far_off_the_calibration_is_not_taken() {
        const ONE: u64 = 1 << 32; // 1 ns per tick
        let kept = ONE + 1;
        // 1 ns per tick measured: taken.
        let base = RateBase::new((0, 0), ONE);
        assert_eq!(base.measure((1_000_000, 1_000_000), kept), ONE);
        // 2% slower than the calibration, steadily (the kept rate agrees): the kept rate stays.
        let base = RateBase::new((0, 0), ONE);
        let slower = rate_between((0, 0), (1_020_000, 1_000_000)).unwrap();
        assert_eq!(base.measure((1_020_000, 1_000_000), slower + 1), slower + 1);
        // No ticks or time elapsed, or time going back: kept.
        assert_eq!(RateBase::new((0, 0), ONE).measure((0, 0), kept), kept);
        assert_eq!(RateBase::new((5, 5), ONE).measure((4, 9), kept), kept);
        assert_eq!(RateBase::new((5, 5), ONE).measure((9, 4), kept), kept);
    }

    /// Twice the ticks `Instant` saw since the previous sample (a suspend): the kept rate, and
    /// the baseline restarts there, so the next sample measures 1 ns per tick again.
    #[test]
    fn a_gap_between_two_samples_restarts_the_baseline() {
        const ONE: u64 = 1 << 32;
        let kept = ONE + 1;
        let base = RateBase::new((0, 0), ONE);
        assert_eq!(base.measure((1_000_000, 2_000_000), kept), kept);
        assert_eq!(base.measure((2_000_000, 3_000_000), kept), ONE);
    }

    #[test]
    fn anchor_maps_ticks_to_wall_clock() {
        let anchor = Anchor::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let at = anchor.now_unix_ns();
        assert!(at.abs_diff(wall) < 50_000_000);
    }
}
