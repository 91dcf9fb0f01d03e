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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
struct Source {
    /// `Some(mult)` when reading the TSC: nanoseconds per tick in 32.32 fixed point.
    tsc_mult: Option<u64>,
    /// Base for the `Instant` fallback.
    base: Instant,
}

static SOURCE: OnceLock<Source> = OnceLock::new();

fn source() -> &'static Source {
    SOURCE.get_or_init(|| {
        let base = Instant::now();
        let forced_instant = std::env::var("AGENTCORE_TRACE_CLOCK")
            .map(|v| v.eq_ignore_ascii_case("instant"))
            .unwrap_or(false);
        let tsc_mult = if !forced_instant && tsc::reliable() {
            tsc::calibrate()
        } else {
            None
        };
        Source { tsc_mult, base }
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

/// One tracer's clock: the `(wall clock, ticks)` anchor plus a copy of the process-wide
/// source, so reading and converting never goes through the `OnceLock` again (that showed
/// as 3-4% of a span in the profile).
///
/// Hot path: a conversion is one multiply and one add. The `Instant` fallback counts
/// nanoseconds, so its factor is exactly 1.0 (`1 << 32`), and the anchor is folded into one
/// wrapping offset: `unix_ns(t) = offset + ns(t)`, where `offset` is the wall clock at the
/// anchor minus `ns(anchor ticks)`. That is `wall + ns(t - anchor)` up to one nanosecond of
/// rounding, and monotonic in `t` (the branchy signed form, three conversions per span, cost
/// ~40 instructions per span under callgrind).
///
/// The anchor is taken again once it is [`REANCHOR_EVERY`] old, by the first conversion
/// that notices ([`offset_at`](Self::offset_at): a load and a predictable branch otherwise).
/// Taken once per tracer, the timestamps drifted from the wall clock by the tick rate's
/// calibration error (5 ms against `Instant`) times the tracer's age, and never followed
/// the clock's NTP corrections: 405 ppm on the review VM, 35 s a day (found by review). Now
/// they stay within that error times 100 ms of it. A span's start and end are converted
/// with one offset, so its duration is the ticks' whatever the re-anchoring does.
///
/// # Invariants and orderings
///
/// Shared by every thread that records on the tracer; `offset` and `due` are two atomics,
/// written together only by [`reanchor`](Self::reanchor), read without a lock.
///
/// 1. Every `offset` ever stored is a complete anchor (one `(ticks, wall)` reading), and any
///    of them converts any tick count to within the rate error times the time since that
///    anchor: converting with an offset older or newer than `due` suggests only moves a
///    timestamp by that error, never corrupts it. So the pair needs no atomicity: a reader that
///    sees the new `due` with the old `offset` (or the reverse) converts with a slightly older
///    anchor, and a re-anchor that loses the `due` race uses its own fresh offset for its
///    conversion and stores nothing.
/// 2. Only the thread whose compare-exchange on `due` succeeds stores `offset`, so stores
///    come from one re-anchor per period, not from every thread that noticed it.
/// 3. A span's start, end and events are converted with one offset (read once, at its
///    finish), so its duration is exact and its events lie within it whatever offsets other
///    spans see. (Events were converted when added, with the offset of that moment: one
///    added just before a re-anchor lay outside a span finishing just after it, by up to
///    15 µs on the review VM; `tests/tracer_event_times.rs`.)
///
/// All accesses are `Relaxed`: no other memory is published through these atomics (each
/// value is self-contained, invariant 1), and a stale value only delays a re-anchor or uses a
/// slightly older anchor.
#[derive(Debug)]
pub(crate) struct Anchor {
    /// Wall-clock Unix nanoseconds minus `ns(ticks at the anchor)`, wrapping.
    offset: AtomicU64,
    /// Ticks at which the anchor is due to be taken again: its ticks plus `every`.
    due: AtomicU64,
    /// [`REANCHOR_EVERY`] in ticks.
    every: u64,
    /// Nanoseconds per tick in 32.32 fixed point (`1 << 32` for the `Instant` fallback).
    mult: u64,
    tsc: bool,
    base: Instant,
}

impl Anchor {
    pub(crate) fn now() -> Self {
        let source = source();
        let mult = source.tsc_mult.unwrap_or(1 << 32);
        let (ticks, offset) = take_anchor(mult);
        let every = ((REANCHOR_EVERY.as_nanos() << 32) / u128::from(mult.max(1)))
            .clamp(1, u128::from(u64::MAX >> 1)) as u64;
        Anchor {
            offset: AtomicU64::new(offset),
            due: AtomicU64::new(ticks.saturating_add(every)),
            every,
            mult,
            tsc: source.tsc_mult.is_some(),
            base: source.base,
        }
    }

    /// Monotonic ticks now (the same clock as [`now_ticks`]).
    #[inline]
    pub(crate) fn now_ticks(&self) -> u64 {
        if self.tsc {
            tsc::read()
        } else {
            self.base.elapsed().as_nanos() as u64
        }
    }

    /// Nanoseconds in `ticks` ticks.
    #[inline]
    pub(crate) fn ticks_to_ns(&self, ticks: u64) -> u64 {
        mul_ns(ticks, self.mult)
    }

    /// The offset to convert ticks read up to `now` (a recent reading of this clock) with,
    /// taking the anchor again first if it is older than [`REANCHOR_EVERY`].
    #[inline]
    pub(crate) fn offset_at(&self, now: u64) -> u64 {
        // One load and one compare: the due time is kept, not the anchor's ticks (subtracting
        // and comparing with `every` cost 3 more instructions a conversion, two per span with
        // an event, under callgrind). A reading older than an anchor another thread just took
        // is before its due time, so not stale. Ticks do not wrap (see `mul_ns`).
        let due = self.due.load(Ordering::Relaxed);
        if now > due {
            self.reanchor(due)
        } else {
            self.offset.load(Ordering::Relaxed)
        }
    }

    /// Takes the anchor again, unless another thread already has since `seen` (the due time
    /// read).
    #[cold]
    #[inline(never)]
    fn reanchor(&self, seen: u64) -> u64 {
        let (ticks, offset) = take_anchor(self.mult);
        if self
            .due
            .compare_exchange(
                seen,
                ticks.saturating_add(self.every),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.offset.store(offset, Ordering::Relaxed);
        }
        // Ours, or (another thread won) equally fresh.
        offset
    }

    /// Wall-clock Unix nanoseconds at `ticks`, with an offset from
    /// [`offset_at`](Self::offset_at).
    #[inline]
    pub(crate) fn unix_ns_with(&self, offset: u64, ticks: u64) -> u64 {
        offset.wrapping_add(mul_ns(ticks, self.mult))
    }

    /// Wall-clock Unix nanoseconds now (the tests'; spans convert their ticks when they
    /// finish, see invariant 3).
    #[cfg(test)]
    pub(crate) fn now_unix_ns(&self) -> u64 {
        let now = self.now_ticks();
        self.unix_ns_with(self.offset_at(now), now)
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

/// `ticks * mult / 2^32`: nanoseconds in `ticks` at `mult` nanoseconds per tick (32.32).
/// Exact for `mult = 1 << 32`; fits `u64` for any tick count below `2^64 / (mult / 2^32)`
/// (with a 1 GHz or faster TSC, centuries of uptime).
#[inline(always)]
fn mul_ns(ticks: u64, mult: u64) -> u64 {
    ((u128::from(ticks) * u128::from(mult)) >> 32) as u64
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
    fn sample(base: Instant) -> (u128, u64) {
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
    pub(super) fn calibrate() -> Option<u64> {
        let base = Instant::now();
        let (m0, t0) = sample(base);
        std::thread::sleep(Duration::from_millis(5));
        let (m1, t1) = sample(base);
        let ns = m1.checked_sub(m0)?;
        let ticks = u128::from(t1.checked_sub(t0)?);
        if ticks == 0 {
            return None;
        }
        u64::try_from((ns << 32) / ticks).ok().filter(|&m| m > 0)
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
    pub(super) fn calibrate() -> Option<u64> {
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
