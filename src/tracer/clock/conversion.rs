//! The span clock's [`Conversion`] from ticks to wall-clock time, and the [`ConversionCell`]
//! that publishes a tracer's current one to every recording thread without a lock.
//!
//! Which anchor and rate a conversion holds, and when it is replaced, is the clock's business
//! ([`super::Anchor`]); this module is how the pair of words gets from the thread that measured
//! it to the threads that convert with it, never torn.

use std::sync::atomic::Ordering;

use crate::sync::{fence, AtomicU64};

/// What converts ticks to wall-clock Unix nanoseconds: `offset + ns(ticks)` at `mult`
/// nanoseconds per tick (32.32), both from one anchor (see [`super::Anchor`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conversion {
    /// Wall-clock Unix nanoseconds at the anchor minus `ns(ticks at the anchor)`, wrapping.
    pub(crate) offset: u64,
    /// Nanoseconds per tick in 32.32 fixed point (`1 << 32` for the `Instant` fallback).
    pub(crate) mult: u64,
}

impl Conversion {
    /// Wall-clock Unix nanoseconds at `ticks`: one multiply and one add. `offset + ns(t)` is
    /// `wall + ns(t - anchor)` up to one nanosecond of rounding, and monotonic in `t` (the
    /// branchy signed form, three conversions per span, cost ~40 instructions per span under
    /// callgrind).
    #[inline]
    pub(crate) fn unix_ns(self, ticks: u64) -> u64 {
        self.offset.wrapping_add(mul_ns(ticks, self.mult))
    }
}

/// The bit of `due` that names the current entry. Bit 4, so that `due & ENTRY` is the entry's
/// byte offset (16 bytes per entry): the hot path's copy takes no shift.
const ENTRY: u64 = 16;

/// Set in `due` while a writer fills the other entry (invariant 1): no tick count reaches it
/// (ticks stay below 2^63 for centuries, see `mul_ns`), so nobody else finds the conversion due.
const HELD: u64 = 1 << 63;

/// A tracer's current [`Conversion`] and when it is due for replacement, published without a
/// lock: two entries of `(offset, mult)`, and one word, `due`, that is both the due time (in
/// ticks) and the sequence number naming the current entry (its [`ENTRY`] bit). The writer
/// fills the other entry, then names it.
///
/// # Invariants and orderings
///
/// 1. One writer at a time: only the thread whose compare-exchange takes `due` from the value it
///    read (`seen`) to `seen | HELD` ([`claim`](Self::claim)) writes, and it must
///    [`publish`](Self::publish), which stores the next due time without [`HELD`]. Readers that
///    load the held value take the current entry (its [`ENTRY`] bit is `seen`'s), which the
///    writer does not touch.
/// 2. `due`'s values are unique: each published one is a fresh tick reading plus the period
///    (increasing), each held one is a published one with [`HELD`] set. So a reader whose two
///    loads of `due` return the same value saw no publication in between.
/// 3. The writer fills entry `(seen & ENTRY) ^ ENTRY`, then stores the new `due` naming it
///    (`Release`): a reader whose load of `due` (`Acquire`) returns it sees that whole pair.
/// 4. A writer never writes the entry `due` names, but a reader that loaded `due = d` may still
///    be copying entry `d & ENTRY` when the writer after next rewrites it. That writer's claim
///    read `due` (a value after `d`), then `fence(Release)`, then its stores; the reader copies,
///    then `fence(Acquire)`, then loads `due` again. If its copy read any of the rewrite's
///    stores, the fences synchronise and the second load returns the claim's value or a later
///    one, not `d` (invariant 2): the copy is discarded and taken again. A copy whose two loads
///    agree is one writer's pair. (The loom model `loom::clock` checks this, and catches each
///    ordering weakened.)
/// 5. A reader retries until its copy is whole. A writer publishes at most once per period, so
///    a retry waits for nothing but its own copy, never for a writer to finish.
#[derive(Debug)]
pub(crate) struct ConversionCell {
    due: AtomicU64,
    /// `[offset, mult]` per entry.
    pairs: [[AtomicU64; 2]; 2],
}

impl ConversionCell {
    /// A cell holding `c`, due for replacement once the ticks pass `due`.
    pub(crate) fn new(c: Conversion, due: u64) -> Self {
        ConversionCell {
            due: AtomicU64::new(due & !(ENTRY | HELD)),
            pairs: [
                [AtomicU64::new(c.offset), AtomicU64::new(c.mult)],
                [AtomicU64::new(0), AtomicU64::new(0)],
            ],
        }
    }

    /// The conversion for ticks read up to `now` (a recent reading of the clock), or, when
    /// `now` is past the due time, `Err` with the `due` value read, to [`claim`](Self::claim)
    /// with. On the hot path: two loads of `due` (the first also the due check) and one of
    /// each word.
    #[inline]
    pub(crate) fn read(&self, now: u64) -> Result<Conversion, u64> {
        let due = self.due.load(Ordering::Acquire);
        if now > due {
            return Err(due);
        }
        Ok(match self.copy(due) {
            Some(c) => c,
            None => self.read_again(),
        })
    }

    /// The pair `due` (loaded `Acquire`) names, if no publication overlapped the copy
    /// (invariant 4).
    #[inline(always)]
    fn copy(&self, due: u64) -> Option<Conversion> {
        let [offset, mult] = &self.pairs[((due & ENTRY) / ENTRY) as usize];
        let c = Conversion {
            offset: offset.load(Ordering::Relaxed),
            mult: mult.load(Ordering::Relaxed),
        };
        fence(Ordering::Acquire);
        (self.due.load(Ordering::Relaxed) == due).then_some(c)
    }

    /// The current conversion, due or not (invariant 5): a copy a publication overlapped, taken
    /// again, and the conversion a thread that lost the claim converts with.
    #[cold]
    #[inline(never)]
    pub(crate) fn read_again(&self) -> Conversion {
        loop {
            if let Some(c) = self.copy(self.due.load(Ordering::Acquire)) {
                return c;
            }
            #[cfg(agentcore_loom)]
            loom::thread::yield_now();
        }
    }

    /// The current rate alone, for a duration: any published rate converts one to within the
    /// rate's error, so no whole copy of the pair is needed.
    #[inline]
    pub(crate) fn mult(&self) -> u64 {
        let due = self.due.load(Ordering::Acquire);
        self.pairs[((due & ENTRY) / ENTRY) as usize][1].load(Ordering::Relaxed)
    }

    /// Takes the right to publish the next conversion, if `due` is still `seen` (what
    /// [`read`](Self::read) returned): `true` for exactly one caller per due time, which must
    /// then [`publish`](Self::publish) (invariant 1).
    pub(crate) fn claim(&self, seen: u64) -> bool {
        seen & HELD == 0
            && self
                .due
                .compare_exchange(seen, seen | HELD, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Publishes `c`, due for replacement once the ticks pass `next_due`. Only after a
    /// successful [`claim`](Self::claim), once (invariants 1, 3 and 4).
    pub(crate) fn publish(&self, c: Conversion, next_due: u64) {
        let held = self.due.load(Ordering::Relaxed);
        debug_assert!(held & HELD != 0, "publish without a claim");
        fence(Ordering::Release);
        let entry = (held & ENTRY) ^ ENTRY;
        let [offset, mult] = &self.pairs[(entry / ENTRY) as usize];
        offset.store(c.offset, Ordering::Relaxed);
        mult.store(c.mult, Ordering::Relaxed);
        self.due
            .store(next_due & !(ENTRY | HELD) | entry, Ordering::Release);
    }
}

/// `ticks * mult / 2^32`: nanoseconds in `ticks` at `mult` nanoseconds per tick (32.32).
/// Exact for `mult = 1 << 32`; fits `u64` for any tick count below `2^64 / (mult / 2^32)`
/// (with a 1 GHz or faster TSC, centuries of uptime).
#[inline(always)]
pub(super) fn mul_ns(ticks: u64, mult: u64) -> u64 {
    ((u128::from(ticks) * u128::from(mult)) >> 32) as u64
}
