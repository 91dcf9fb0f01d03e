//! Stranded entries: `tracing` spans closed while an entry of theirs may still have a frame on
//! another thread's context stack, kept in a process-wide list that every thread checks at its
//! next look-up of the current context, dropping the frames it finds (see also `current.rs`,
//! "Stranded entries"). Only built with the `tracing-bridge` feature.
//!
//! # The problem
//!
//! An `Entered` guard is `Send`. Held across `.await` in a future polled without our scopes (a
//! plain `tokio::spawn` on a multi-thread runtime), it is entered on one thread (its frame is
//! pushed there) and exits on another, where no frame of it is: the frame stayed on the first
//! thread for good, and every later span there became a child of the span.
//!
//! The exit cannot say which frame to drop: `tracing` names the span being exited, not the
//! entry, so the exiting thread knows neither which of the span's entries ended nor on which
//! thread its frame is; and the first thread cannot tell a stranded entry of a span from a live
//! one of the same span (another task entering it). Both become certain when the span
//! *closes*: every entry holds a handle of the span (`Entered` borrows one, `EnteredSpan` and
//! `Instrumented` own one), and `tracing` closes a span only once its last handle has dropped.
//! After its close no entry of it is open anywhere, so every frame of an entry of it is
//! stranded, wherever it is (below or above a scope's marker).
//!
//! So the bridge marks a span one of whose exits found neither its frame nor its entry on the
//! exiting thread (`DetachedSpan::exit_frame`: it was entered on another thread), and at its
//! close [`publish`]es `(tracer, span id)` here. Each thread compares the list's epoch with the
//! last value it checked ([`news`]), and only when they differ copies the new records
//! ([`since`]) and drops the entry frames they name from its live stack
//! (`Stack::drop_stranded`). Until the span closes, its entry stays current on the first
//! thread, as it does in `tracing`'s own registry.
//!
//! # Invariants
//!
//! 1. A record names a span that has closed (published at its close only): it never names an
//!    open span, so dropping every entry frame of it anywhere is exact. Records match entry
//!    frames only (odd keys, or the span id for an entry made at thread exit), never a
//!    `ContextGuard` attaching the span's context (even key) or a scope's copy (key 0).
//! 2. The list holds the newest [`CAP`] records: record `n` (counted from 0 since the process
//!    started) in slot `n % CAP`; `published` counts them and never decreases.
//! 3. A thread's [`SEEN`] is the `published` up to which it has checked its live frames. A
//!    frame pushed later cannot be an entry of a span recorded before (an entry precedes its
//!    span's close), except one a scope restores from its saved list (see `current.rs`,
//!    "Stranded entries").
//! 4. A thread that checks more than [`CAP`] records after its `SEEN`, with an entry frame on
//!    its stack, counts the records it can no longer read ([`missed_counter`]): a frame of one
//!    of them may stay current there. The bridge's enter checks before it pushes an entry
//!    ([`check_stranded`]), so an idle thread with no entry frame catching up counts nothing,
//!    and neither does one whose entries were all pushed after the records it missed.
//!
//! # Orderings
//!
//! `LIST`'s mutex orders everything that matters: a record is written and `published`
//! incremented under it, and [`since`] copies records and reads `published` under it. `EPOCH`
//! mirrors `published`, stored under the mutex (`Relaxed`: the mutex orders it with the
//! record); the look-up reads it with one `Relaxed` load, as a hint only: equal to the
//! thread's [`SEEN`] (a thread-local `Cell`, the thread's own), there is nothing to do;
//! different, the thread locks the list, and takes the `published` it reads there, which is at
//! least the value it loaded (that value was stored inside a critical section that precedes
//! its own). A load that happens after the store (the closing thread was joined, or signalled
//! the reader through any synchronising operation) returns it or a later value (write-read
//! coherence); a load racing the store may return the older value, and the thread catches up
//! at a later look-up: a span started on one thread while another closes a span is not
//! ordered after that close anyway. `std`'s mutex and atomic, not `crate::sync`'s: the statics
//! need `const` constructors, and the loom models build without this feature.
//!
//! # Cost
//!
//! On the hot path, [`news`] per look-up of the current context (every span start): 5
//! instructions in the look-up (the epoch's address from the GOT, its load, the thread-local's
//! offset, a compare, a branch), which the compiler partly pays for elsewhere. Under callgrind
//! (`benches/compare`, before -> after): `breakdown.py span_basic` 555 -> 559 instructions per
//! span, `span_unsampled` 159 -> 162, `bridge_span` 5,222 -> 5,238 (two look-ups and the
//! enter's check per bridged span); `profile_future span_in_future` 795.5 -> 800.5. The list
//! itself is touched only by a closing span that was marked and by a thread that sees the
//! epoch change; a thread whose stack is empty then only takes the new epoch, without the lock.

use super::{with_stack, Frame, Stack};
use crate::tracer::id::{SpanId, TracerId};
use crate::Counter;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, PoisonError};

/// How many records the list keeps (invariant 2).
const CAP: usize = 64;

/// One record: the tracer and the span id of a closed span with a stranded entry.
type Record = (TracerId, u64);

/// The list (invariant 2).
struct List {
    records: [Record; CAP],
    published: u64,
}

static LIST: Mutex<List> = Mutex::new(List {
    records: [(TracerId::SCOPE, 0); CAP],
    published: 0,
});

/// `LIST`'s `published`, for the look-ups' one load (see "Orderings").
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Publishes a record for span `span` of `tracer`, closed after one of its exits found neither
/// its frame nor its entry on the exiting thread.
pub(crate) fn publish(tracer: TracerId, span: u64) {
    let mut list = LIST.lock().unwrap_or_else(PoisonError::into_inner);
    let n = list.published;
    if let Some(slot) = list.records.get_mut((n % CAP as u64) as usize) {
        *slot = (tracer, span);
    }
    list.published = n + 1;
    EPOCH.store(n + 1, Relaxed);
}

/// The number of records published so far, as a hint (see "Orderings").
#[inline(always)]
fn epoch() -> u64 {
    EPOCH.load(Relaxed)
}

thread_local! {
    /// The records this thread has checked its live frames against (invariant 3). Not in
    /// `Stack`: read before the stack is borrowed, the check left the look-up's own code as it
    /// was (inside it, the look-up's two ways out merged into one: 2 more instructions per
    /// span under callgrind).
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

/// Whether records were published since this thread last checked its stack: one `Relaxed`
/// load and a compare (see "Cost").
#[inline(always)]
pub(super) fn news() -> bool {
    SEEN.with(|seen| seen.get() != epoch())
}

/// Drops this thread's stranded entries ([`Stack::drop_stranded`]); out of line, off the hot
/// path. Does nothing while the stack is borrowed or closed (a later check retries).
#[cold]
#[inline(never)]
pub(super) fn catch_up() {
    with_stack(Stack::drop_stranded);
}

/// [`catch_up`] if there is [`news`]: the `tracing` bridge's enter, before it pushes an entry's
/// frame (invariant 4).
#[inline(always)]
pub(crate) fn check_stranded() {
    if news() {
        catch_up();
    }
}

/// The records a thread that has checked up to `seen` has not seen yet (see [`since`]).
struct Since {
    /// Every record up to this one is covered: the thread's new `seen`.
    published: u64,
    /// Records after `seen` that the list no longer holds (invariant 4).
    missed: u64,
    records: [Record; CAP],
    len: usize,
}

impl Since {
    /// The records still held, oldest first.
    fn records(&self) -> &[Record] {
        self.records.get(..self.len).unwrap_or_default()
    }
}

/// Copies the records published after `seen` that the list still holds (the lock is not held
/// while the caller drops frames: dropping a frame releases its baggage, which may run the
/// global allocator, and with it anything).
fn since(seen: u64) -> Since {
    let list = LIST.lock().unwrap_or_else(PoisonError::into_inner);
    let published = list.published;
    let from = seen.max(published.saturating_sub(CAP as u64));
    let mut out = Since {
        published,
        missed: from.saturating_sub(seen),
        records: [(TracerId::SCOPE, 0); CAP],
        len: 0,
    };
    for n in from..published {
        if let (Some(slot), Some(record)) = (
            out.records.get_mut(out.len),
            list.records.get((n % CAP as u64) as usize),
        ) {
            *slot = *record;
            out.len += 1;
        }
    }
    out
}

/// The process-wide count of records missed (invariant 4), in `TracerStats` and
/// `agentcore_tracer_stray_entries_missed_total`.
pub(crate) fn missed_counter() -> &'static Counter {
    static MISSED: OnceLock<Counter> = OnceLock::new();
    MISSED.get_or_init(Counter::new_internal)
}

impl Stack {
    /// Drops the live entry frames of the spans published since this thread's [`SEEN`],
    /// wherever they are on the stack (their spans closed: invariant 1), keeping the others in
    /// order, and takes the new epoch; counts the records it missed (invariant 4). A thread
    /// with no frame only takes the epoch. Out of line: off every path that checks first.
    #[cold]
    #[inline(never)]
    pub(super) fn drop_stranded(&mut self) {
        if self.depth == 0 {
            SEEN.with(|seen| seen.set(epoch()));
            return;
        }
        let since = since(SEEN.with(Cell::get));
        SEEN.with(|seen| seen.set(since.published));
        // An entry's frame: an odd key that is not its span id (a span of ours is keyed by its
        // id), and not a marker's.
        let entry = |f: &Frame| {
            f.tracer != TracerId::SCOPE
                && f.key & 1 == 1
                && f.span_id.map(SpanId::to_u64) != Some(f.key)
        };
        if since.missed != 0 && self.live().iter().any(entry) {
            missed_counter().inc_by(since.missed);
        }
        let records = since.records();
        if records.is_empty() {
            return;
        }
        // Stranded: an entry's frame of a recorded span, or one keyed by its span id (an entry
        // made at thread exit, see `remove_entry`); never a guard's (even key) or a copy (0).
        let stranded = |f: &Frame| {
            f.span_id.is_some_and(|span| {
                let id = span.to_u64();
                (f.key & 1 == 1 || f.key == id)
                    && records.iter().any(|&(t, s)| t == f.tracer && s == id)
            })
        };
        let depth = self.depth;
        let mut kept = 0;
        for i in 0..depth {
            if !self.frames.get(i).is_some_and(stranded) {
                self.frames.swap(kept, i);
                kept += 1;
            }
        }
        if kept == depth {
            return;
        }
        // Release the baggage of the slots given up (see `Stack`).
        for f in self.frames.get_mut(kept..depth).unwrap_or_default() {
            f.baggage = None;
        }
        self.depth = kept;
        self.publish_top();
    }
}
