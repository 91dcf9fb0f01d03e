//! The span log: a fixed-capacity, sharded ring buffer of finished spans, with one optional
//! exporter cursor.
//!
//! # Design
//!
//! The ring is split into shards (a power of two, by default about twice the number of
//! CPUs), each with its own write cursor (`head`) on its own cache line, and a power-of-two
//! number of preallocated slots. A writer picks its shard from a per-thread index, so
//! threads rarely share a cursor: on this 2-vCPU VM a cross-core read-modify-write of one
//! shared cursor costs 50-200 ns, an uncontended locked one about 4-8 ns.
//!
//! Each slot is a reader-writer try-lock word (`state`: `WRITER`, or the number of readers),
//! two export words (`seq`: the claim position; `pending`: the export mark) and the value
//! cell (`Option<T>`).
//!
//! * **Write** (`push`): the cursor picks a slot; the writer then *tries* to take the slot's
//!   write lock (`state` 0 → `WRITER`). On success it swaps its value in (moving it; no
//!   allocation) and releases the lock; the previous value, if any, comes back to the caller
//!   (`Overwrote`), who drops it after the lock is released. On failure (a reader, or
//!   another writer, holds the slot) it does not wait: it keeps its value (`Busy`). A write
//!   never blocks or allocates. The caller counts the outcomes (the tracer in its
//!   per-thread counters).
//! * **Claim** (`claim`, what the tracer uses): the cursor picks a slot as for `push` and
//!   the writer try-locks it; a busy slot is skipped (up to `CLAIM_ATTEMPTS` slots, then
//!   the claim fails, which the tracer counts as dropped, like `Busy`). The writer then
//!   keeps the lock, through the returned `Claimed` guard, for as long as it likes: a
//!   sampled span claims its slot when it starts, resets the slot's old record in place
//!   (an overwrite, reported by `Claimed::overwrote`) or builds the first one, fills it
//!   while it runs, and publishes it by dropping the guard (the release store) when it
//!   finishes, possibly on another thread (the guard is `Send`; the lock is a flag, not
//!   tied to a thread). Meanwhile readers skip the slot, and writers wrapping around skip
//!   it too. Nothing is moved: a record is written once, where it is read.
//! * **Cursor.** The shards are of two kinds ([`ShardedRing::claim_as`] maps a writer to its
//!   shard). The first half are *owned*: the thread whose process-wide index is `k` is the
//!   only writer of owned shard `k` (an index is held by one live thread at a time, and
//!   handed to the next by a release clear and an acquire compare-and-swap of its bit:
//!   `tracer::thread_index`), so it advances the cursor
//!   with a plain load + store (`exclusive`), without a locked instruction. Every other
//!   thread (index at least the owned count, or none) writes to one of the *shared* second
//!   half, chosen by its index, and advances its cursor with `fetch_add`. With one shard,
//!   it is shared. So no shard ever has an exclusive writer and another one. It matters
//!   for the export accounting only: an exclusive store racing a `fetch_add` loses the
//!   increment, and a store made late (its thread preempted between the load and the
//!   store) moves the cursor
//!   *backwards*, past positions the export cursor has walked; a value claimed above the
//!   restored cursor and published marked is then visited by no drain until the cursor
//!   climbs past it again, and by none at all if the exporter shuts down first (neither
//!   exported nor counted: `tests/export_shared_shard.rs` found that in 10 to 22 of 300
//!   cycles when threads shared a shard that another one owned). The data never depended on
//!   it: the cursor never protects a value, the slot lock does, so a writer misusing `exclusive`
//!   (which the loom models do on purpose) costs a `Busy` or an earlier overwrite, both
//!   reported. A claim whose position is no later than its slot's value's (a claim
//!   delayed by a lap of a shared shard, or a misused exclusive cursor handing out a
//!   position twice) leaves the slot and takes another position, so a slot's `seq` only
//!   grows and the export cursor never settles a slot at a later position than a value
//!   published there (the same test, with the writers sharing a shard).
//! * **Read** (`for_each`): the reader takes each slot's *read* lock in turn (a CAS adding
//!   one reader, refused only while a writer holds the slot), looks at the value, and
//!   releases it (also on panic, through a guard). Readers share slots: two queries never
//!   make each other miss a record (they did when the lock was exclusive: a query skipped
//!   the slot another query was visiting). Slots a *writer* holds (open spans, writes in
//!   progress) are skipped and counted. Readers never stop writers for longer than one slot
//!   visit; a writer meeting a slot a reader visits treats it as busy. One case skips a
//!   value that stays (review helper-96, argued, not reproduced): a claim that backs off
//!   (above) holds the slot's lock for the instant between its lock and its `seq` check, so a
//!   reader passing then misses a published value that the claim leaves in place. It needs a
//!   claim delayed by a lap of a shared shard (or a misused exclusive cursor); checking
//!   `seq` before locking too would only narrow the instant, not close it.
//!
//! # Export cursor
//!
//! At most one [`ExportCursor`] (`ring/cursor.rs`) exists at a time
//! ([`ShardedRing::attach_exporter`]). While
//! it is attached (the ring's export word has `MARKING`), finishers *mark* what they publish;
//! the cursor drains the marked values lazily, each exactly once, and learns how many were
//! lost:
//!
//! * A claim stores its cursor position (`seq` = position + 1) in the slot. If the value it
//!   displaces is still `pending` (published for the exporter, not visited), it clears the
//!   mark and counts the value in its shard's `evicted` counter (a drop, *overwritten before
//!   export*). A value that found no free slot (a failed claim) is counted in `unclaimed`
//!   by its writer when it would have been published ([`ShardedRing::unclaimed`]: the
//!   tracer calls it when such a span *finishes*), if an exporter is attached then: which
//!   exporter a value belongs to is decided when it finishes, for these as for published
//!   ones. (Counted at the claim, a span that started before the exporter attached and
//!   finished while it ran was neither exported nor counted, and one that started while it
//!   ran and finished after its detach was counted by it; found by review.) Both counters
//!   are `fetch_add`s, and happen only when spans are being lost. Unlike a mark, the
//!   `unclaimed` count is not settled by the detach handshake: a writer that read
//!   "attached" just before the detach and counts after the cursor's last drain is counted
//!   by no drain (a window of a few instructions, on a path taken only when spans are lost).
//! * The finisher reads the export word just before publishing and, if `MARKING`, sets
//!   `pending` to the slot's `seq` (`Claimed::mark_for_export`), still under the write lock;
//!   then it publishes (`Claimed::publish`). A mark is the value's `seq`, not a flag, so a
//!   late withdrawal (below) can never take the mark of a later value of the same slot.
//! * The cursor keeps per shard a `tail` position and walks `tail..head` (at most one lap:
//!   older positions' slots have been claimed again since). At each position it takes the
//!   slot's read lock; if the value is `pending` it clears the mark and visits it. It
//!   *defers* the slot (remembers slot and position, one entry per slot) when it cannot
//!   tell yet whether the position's value was published: the slot is write-locked (an open
//!   span, or a claim in progress), or its `seq` is older than the position (the claim
//!   that took the position has not locked the slot yet, or skipped it). Deferred slots are
//!   visited again, first, on every drain, until their `seq` has caught up with the
//!   deferred position. So an open span never holds the cursor back, and a span finishing
//!   late is still found.
//!
//! Exactly once, whatever the interleaving: the `pending` mark of a value is set once, by
//! its finisher under the write lock, and taken once, by a read-modify-write (a `swap` or a
//! `compare_exchange` to 0) of exactly one of: the cursor (a visit, under a read lock), the
//! claim that displaces the value (an `evicted` count, under the write lock), or the
//! finisher's withdrawal (below, under no lock). Finding every value is what the deferral is
//! for; the accounting does not depend on it.
//!
//! # Detach
//!
//! The exporter's shutdown must know which values are its own: a finisher that read
//! `MARKING` and publishes after the cursor's last drain would otherwise leave a mark that
//! nobody takes (the span neither exported nor counted). So detaching is a handshake, the
//! "store buffering" shape of [`asymmetric_fence`](super::asymmetric_fence):
//!
//! * **Detacher** ([`ExportCursor::detach`], at the start of the shutdown): clears
//!   `MARKING`, runs the heavy fence (`membarrier`: a full barrier on every running thread of
//!   the process), then drains as usual (reading `head`, each slot's `state` and `pending`).
//! * **Finisher** (`Claimed::publish`, only when it marked): publishes (the release store
//!   of `state`), runs the light fence (a compiler fence), and re-reads the export word. If
//!   it changed (the detach, possibly followed by a new attach, whose generation differs), it
//!   *withdraws*: `compare_exchange(seq, 0)` on `pending`; if that succeeds the value is not
//!   the exporter's (counted in `withdrawn`), if it fails the cursor or a claim took it first.
//!
//! The fence pair guarantees that the detacher's loads after its fence see the finisher's
//! publish (and the `head` increment before it), or the finisher's re-read after its fence
//! sees the detach, or both. In the first case the detacher's drains find the value (the
//! walk covers `tail..head`, the deferral the rest); in the second the finisher withdraws;
//! in both, the one read-modify-write decides. A finisher whose first read (in
//! `mark_for_export`) already sees the detach does not mark at all. Nothing orders that first
//! read, though: in the language's memory model a finisher may still read the old word after
//! the detach (real hardware keeps no stale value past the heavy fence; Miri's weak-memory
//! emulation does), and mark. That mark is transient: the fence pair holds for its re-read
//! as for any other, so either the re-read sees the detach and the finisher withdraws, or
//! the detacher's drains see the publish. So after `detach` and a drain that finds nothing
//! left, no mark is stranded once the finishers in flight have published (invariant 4), and
//! the cost on the recording thread while exporting is one more
//! relaxed load, a compiler fence and a branch per published value (nothing when no cursor
//! is attached). Without any barrier ([`asymmetric_fence::heavy_fence`] failing, which
//! takes both `membarrier` and the `mprotect` fallback refused) the handshake is not
//! ordered, `detach` says so, and a value may be left marked as before.
//!
//! [`asymmetric_fence::heavy_fence`]: super::asymmetric_fence::heavy_fence
//!
//! # Waking the exporter
//!
//! The cursor's thread drains lazily and sleeps between looks; a burst that arrives while it
//! sleeps could outgrow its queue cap before it looks again. So a finisher whose published,
//! marked value has a `seq` that is a multiple of `WAKE_EVERY` (once per 256 values of a
//! shard, only while exporting) calls the cursor's `Wake` (`ExportCursor::set_wake`; an
//! `ArcSwapOption`, loaded without a lock; cleared at detach). The cursor's owner makes it a
//! relaxed load of "asleep" and, only then, a condition variable's notification (a futex
//! wake-up: no lock, no allocation, never blocking; arc-swap allocates its per-thread node on
//! a thread's first load, once). A wake-up lost to a race (the thread between "asleep" and
//! its wait) costs at most one sleep, as before.
//!
//! # Invariants
//!
//! 1. Only the holder of a slot's write lock (whoever's `compare_exchange(0, WRITER)`
//!    succeeded: a `push`, or the `Claimed` guard of a `claim`, wherever it has moved)
//!    writes that slot's value; readers (`for_each` visits, the export cursor) only read it
//!    while holding a read lock, which excludes writers. The write lock is released with a
//!    single store, exactly once (`Claimed` in its `Drop`); each read lock with one
//!    `fetch_sub`.
//! 2. Memory is allocated once, in `new`; a slot holds at most one value, so memory stays
//!    flat: `capacity` slots of `size_of::<Option<T>>()` bytes each (plus the cursor's
//!    bookkeeping, allocated once when it attaches).
//! 3. Every pushed value ends in exactly one place: stored in a slot (from which it is later
//!    handed back by exactly one `Overwrote`), or handed back by `Busy`. Nothing is
//!    duplicated or lost, whatever the cursor does. Likewise every claim either fails or
//!    ends with its value stored in its slot, replacing at most one older value, which
//!    that claim alone reports (`overwrote`), or is abandoned (`Claimed::take`): the slot
//!    is left empty and its value handed back to the claimer.
//! 4. Export: every value published with a mark is either visited by exactly one cursor
//!    drain, counted exactly once in `evicted`, or withdrawn by its finisher (counted in
//!    `withdrawn`). `pending` is set only under the write lock and cleared only by a
//!    read-modify-write (queries never touch it). After a detach and a drain that visits
//!    nothing more, no mark is left that its finisher will not withdraw.
//!
//! # Memory ordering
//!
//! The write lock is taken with `compare_exchange(0, WRITER, Acquire, Relaxed)` and
//! released with `store(0, Release)`; a read lock is taken with
//! `compare_exchange(n, n + 1, Acquire, Relaxed)` (`n` without `WRITER`) and released with
//! `fetch_sub(1, Release)`. A writer's release store synchronizes-with the next lock
//! acquisition (read or write) that reads it; a reader's `fetch_sub` is a read-modify-write,
//! so it continues the release sequence and every reader's visit happens-before the next
//! writer's acquisition, which reads the final 0. So every write to the value
//! happens-before every later access, and readers only read concurrently: invariant 1 makes
//! the `UnsafeCell` accesses data-race free. A claim is the same critical section, only
//! longer: its in-place writes (made on whichever threads the guard visits, each hand-off
//! being itself synchronized by the `Send` of the guard) happen-before its release store,
//! hence before any later holder's access. The export marks are atomics so that the
//! cursor may clear `pending` under a read lock and a finisher may withdraw its own after
//! publishing; their order comes from the slot lock and, for the withdrawal, from the fence
//! pair of "Detach", so they are `Relaxed`, as are the export word (the attach is an
//! `AcqRel` compare-exchange, for the cursor's state only) and the loss counters (read as
//! totals; exact once writers are quiet). The cursor (`head`) is `Relaxed`: it only chooses a slot and publishes no memory;
//! correctness never depends on which slot a writer gets, only on the slot lock. The loom
//! models in `src/loom/span_log.rs` check these invariants for concurrent writers (shared
//! and "exclusive" cursors) that wrap around, plus concurrent readers (two readers must
//! both see a value published before they started), both with `push` and with `claim`, and
//! `src/loom/export_cursor.rs` checks the export cursor against claiming writers, and its
//! detach against a finisher publishing at the same time.

mod cursor;

use arc_swap::ArcSwapOption;

#[cfg(all(test, not(agentcore_loom)))]
use cursor::CursorDrain;
pub(crate) use cursor::ExportCursor;

use crate::sync::asymmetric_fence::light_fence;
use crate::sync::{AtomicU32, AtomicU64, AtomicUsize};
use crossbeam_utils::CachePadded;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;

#[cfg(agentcore_loom)]
use loom::cell::UnsafeCell;
// `std`'s `Arc` also under loom: only the slots' atomics and cells are the model's subject.
use std::sync::Arc;

/// `std`'s `UnsafeCell` with loom's closure API, so the same code runs under loom.
#[cfg(not(agentcore_loom))]
#[derive(Debug)]
struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(agentcore_loom))]
impl<T> UnsafeCell<T> {
    fn new(v: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(v))
    }
    #[inline]
    fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    #[inline]
    fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// The `state` of a write-locked slot; otherwise `state` counts the slot's readers.
const WRITER: u32 = 1 << 31;

struct Slot<T> {
    /// 0: free; `WRITER`: write-locked; otherwise the number of readers.
    state: AtomicU32,
    /// The cursor position (+ 1) of the claim that wrote the value; 0: never claimed.
    seq: AtomicUsize,
    /// The `seq` of the value if it was published for the export cursor and not visited,
    /// evicted or withdrawn yet; 0 otherwise. Set only under the write lock; cleared by
    /// read-modify-writes only (the cursor's visit, a claim's eviction, the finisher's
    /// withdrawal), so exactly one of them takes each mark.
    pending: AtomicUsize,
    value: UnsafeCell<Option<T>>,
}

impl<T> Slot<T> {
    /// Tries to take the write lock.
    #[inline(always)]
    fn try_write(&self) -> bool {
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Tries to take a read lock: refused only while a writer holds the slot (or in the
    /// impossible case of 2³¹ − 1 readers).
    #[inline]
    fn try_read(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & WRITER != 0 || s == WRITER - 1 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Releases the write lock of a slot left as it was (nothing written).
    #[inline]
    fn write_unlock(&self) {
        self.state.store(0, Ordering::Release);
    }

    /// Releases a read lock.
    #[inline]
    fn read_unlock(&self) {
        self.state.fetch_sub(1, Ordering::Release);
    }
}

/// Releases a read lock when dropped (also while unwinding out of a reader's callback).
struct ReadGuard<'a, T>(&'a Slot<T>);

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        self.0.read_unlock();
    }
}

// SAFETY: the value is only written by the holder of the write lock and only read under a
// read lock that excludes writers (invariant 1), so sharing a slot between threads hands
// values from one thread to another, as a `RwLock<T>` does; readers on several threads
// share `&T`, so `T: Sync` is required as well as `T: Send`.
unsafe impl<T: Send + Sync> Sync for Slot<T> {}

struct Shard<T> {
    head: AtomicUsize,
    mask: usize,
    /// `pending` values displaced by claims (lost before export).
    evicted: AtomicU64,
    /// Claims that found no free slot while an exporter was attached.
    unclaimed: AtomicU64,
    /// Marks withdrawn by their finishers (published after the cursor detached).
    withdrawn: AtomicU64,
    slots: Box<[Slot<T>]>,
}

/// Asks the CPU to bring `slot`'s cache lines into this core's cache (a hint: it never faults
/// and changes nothing the program can observe).
///
/// Hot path (issue 16): a thread claims its shard's slots in order, and the span log is far
/// larger than the caches (65,536 slots of about 600 bytes), so every claim found its slot's
/// lines in memory or in another core's cache (the exporter's, which read them), and the
/// span's start and in-place reset stalled on each. Fetching the next slot while this span
/// runs hides part of that. Measured on the 2-vCPU Xeon of 2026-12-01 (the comparison's
/// `span_basic`, 5 rounds of 200 ms, three alternating runs each): 88.5–92.1 ns per span
/// without, 85.2–86.1 ns with, for 18 more instructions (808 instead of 790 under callgrind);
/// fetching two slots ahead read 86.4–89.4 ns. A read prefetch: the write-intent one
/// (`prefetchw`) needs a target feature the default x86-64 target lacks. Elsewhere, and
/// under loom, nothing.
#[inline(always)]
fn prefetch<T>(slot: &Slot<T>) {
    #[cfg(all(target_arch = "x86_64", not(agentcore_loom)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const LINE: usize = 64;
        let start = (slot as *const Slot<T>).cast::<i8>();
        let size = std::mem::size_of::<Slot<T>>();
        // One prefetch per 64 bytes from the first byte, and one for the last byte: every
        // line the slot overlaps, however it is aligned. A constant count, so the compiler
        // unrolls it into one instruction per line.
        for k in 0..size.div_ceil(LINE) {
            // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 CPU has (it is in the
            // x86-64 baseline); a prefetch reads and writes nothing architecturally and never
            // faults, whatever the address (computed with wrapping arithmetic, as it is only
            // a hint).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(k * LINE)) };
        }
        // SAFETY: as above.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(size - 1)) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(agentcore_loom))))]
    let _ = slot;
}

impl<T> Shard<T> {
    /// The next cursor position (see the module docs, "Cursor").
    #[inline(always)]
    fn next(&self, exclusive: bool) -> usize {
        if exclusive {
            let i = self.head.load(Ordering::Relaxed);
            self.head.store(i.wrapping_add(1), Ordering::Relaxed);
            i
        } else {
            self.head.fetch_add(1, Ordering::Relaxed)
        }
    }

    /// Stamps a freshly write-locked slot with its claim position and settles the mark of
    /// the value it is about to displace (see "Export cursor").
    #[inline(always)]
    fn stamp(&self, slot: &Slot<T>, position: usize) {
        slot.seq.store(position.wrapping_add(1), Ordering::Relaxed);
        if slot.pending.load(Ordering::Relaxed) != 0 {
            self.evict(slot);
        }
    }

    /// Takes the mark of the value a claim displaces: a swap, not a store, because the
    /// value's finisher may be withdrawing the same mark (see "Detach").
    #[cold]
    fn evict(&self, slot: &Slot<T>) {
        if slot.pending.swap(0, Ordering::Relaxed) != 0 {
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What [`ShardedRing::push`] did with a value.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// Stored in an empty slot; the caller's `Option` is now `None`.
    Stored,
    /// Stored; the caller's `Option` now holds the slot's previous (oldest) value.
    Overwrote,
    /// The slot was busy; the caller's `Option` still holds its value.
    Busy,
}

/// A fixed-capacity ring of values, sharded by writer; see the module docs for the design,
/// the invariants and the memory-ordering argument. The span log is a
/// `ShardedRing<SpanRecord>`.
pub(crate) struct ShardedRing<T> {
    /// Shared with the export cursor (which may outlive the ring's owner).
    shards: Arc<[CachePadded<Shard<T>>]>,
    shard_mask: usize,
    /// Shards `0..owned` each have one writer, the thread with that index; the others are
    /// shared (see "Cursor" and [`writer_shard`](Self::writer_shard)).
    owned: usize,
    /// The number of shared shards − 1 (a power of two − 1).
    shared_mask: usize,
    /// The export word (see the module docs, "Export cursor"): whether finishers mark what they publish, whether
    /// a cursor exists, and the attachment's generation. Shared with the cursor.
    export: Arc<AtomicUsize>,
    /// How a finisher wakes the cursor's thread (see "Waking the exporter"); set and cleared
    /// by the cursor, which shares it.
    wake: Arc<ArcSwapOption<Wake>>,
}

/// Wakes the export cursor's thread if it sleeps; called by a finisher, so it must not block
/// or allocate (a relaxed load and, when the thread sleeps, a futex wake-up).
pub(crate) type Wake = Box<dyn Fn() + Send + Sync>;

/// A finisher that publishes a marked value at a shard position that is a multiple of this
/// wakes the exporter (see "Waking the exporter").
const WAKE_EVERY: usize = 256;

impl<T> ShardedRing<T> {
    /// Calls the cursor's [`Wake`], if one is set: out of line, once per [`WAKE_EVERY`]
    /// values of a shard published for export.
    #[cold]
    #[inline(never)]
    fn wake_exporter(&self) {
        if let Some(wake) = &*self.wake.load() {
            wake();
        }
    }

    /// A ring of at least `capacity` slots (at least 1) in `shards` shards (rounded down to a
    /// power of two, at least 1, at most `capacity`); each shard gets the same power-of-two
    /// number of slots, so the capacity is rounded up to `shards * next_pow2(capacity /
    /// shards)`. All slots are allocated here and never again.
    ///
    /// # Panics
    ///
    /// If the slots cannot be allocated, as `Vec::with_capacity` does ("capacity overflow"
    /// beyond `isize::MAX` bytes).
    pub(crate) fn new(capacity: usize, shards: usize) -> Self {
        let capacity = capacity.max(1);
        // The largest power of two at most `shards` (`next_power_of_two() / 2` overflowed
        // above 2⁶³).
        let shards = 1usize << shards.clamp(1, capacity).ilog2();
        // Saturated: a count above 2⁶³ slots cannot be allocated anyway, and the allocation
        // below refuses it. Wrapped to 0 (a release build), it built an empty shard whose
        // every claim indexed out of bounds: a tracer configured with `usize::MAX` panicked
        // at every span start (found by review).
        let per_shard = capacity
            .div_ceil(shards)
            .checked_next_power_of_two()
            .unwrap_or(1 << (usize::BITS - 1));
        let shards: Vec<CachePadded<Shard<T>>> = (0..shards)
            .map(|_| {
                CachePadded::new(Shard {
                    head: AtomicUsize::new(0),
                    mask: per_shard - 1,
                    evicted: AtomicU64::new(0),
                    unclaimed: AtomicU64::new(0),
                    withdrawn: AtomicU64::new(0),
                    slots: (0..per_shard)
                        .map(|_| Slot {
                            state: AtomicU32::new(0),
                            seq: AtomicUsize::new(0),
                            pending: AtomicUsize::new(0),
                            value: UnsafeCell::new(None),
                        })
                        .collect(),
                })
            })
            .collect();
        let shard_mask = shards.len() - 1;
        // Half the shards are owned, the others shared: both halves are powers of two (with
        // one shard, none is owned and that one is shared).
        let owned = shards.len() / 2;
        ShardedRing {
            shard_mask,
            owned,
            shared_mask: shards.len() - owned - 1,
            shards: shards.into(),
            export: Arc::new(AtomicUsize::new(0)),
            wake: Arc::new(ArcSwapOption::empty()),
        }
    }

    /// The number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.shards.len() * self.shards.first().map_or(0, |s| s.slots.len())
    }

    /// The number of shards.
    #[cfg(all(test, not(agentcore_loom)))]
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard a writer writes to, and whether it is that shard's only writer (see the
    /// module docs, "Cursor"): the thread whose process-wide index is `thread` owns shard
    /// `thread` if that is below the owned count (half the shards, rounded down); any
    /// other index shares one of the other shards. `thread` must be an index that no other
    /// live thread holds, handed over between threads with a release and an acquire (as
    /// `tracer::thread_index` does), or be [`NO_THREAD_INDEX`].
    #[inline(always)]
    fn writer_shard(&self, thread: usize) -> (usize, bool) {
        if thread < self.owned {
            (thread, true)
        } else {
            (self.owned + (thread & self.shared_mask), false)
        }
    }

    /// [`claim`](Self::claim) from the calling thread, whose process-wide index is `thread`
    /// (held by no other live thread; or [`NO_THREAD_INDEX`]): on the shard it owns, with a
    /// plain cursor, or on a shared one (see "Cursor").
    #[inline(always)]
    pub(crate) fn claim_as(&self, thread: usize) -> Option<Claimed<'_, T>> {
        let (shard, exclusive) = self.writer_shard(thread);
        self.claim(shard, exclusive)
    }

    /// Whether an export cursor is attached and not detached: finishers mark what they
    /// publish.
    #[inline(always)]
    pub(crate) fn exporting(&self) -> bool {
        self.export.load(Ordering::Relaxed) & MARKING != 0
    }

    /// What a finisher reads just before publishing (see [`Claimed::mark_for_export`]).
    #[inline(always)]
    fn export_word(&self) -> usize {
        self.export.load(Ordering::Relaxed)
    }

    /// A finisher found its cursor detached after publishing: takes its mark back unless the
    /// cursor (a visit) or a later claim (an eviction) took it first (see "Detach").
    #[cold]
    #[inline(never)]
    fn withdraw(&self, slot: &Slot<T>, seq: usize) -> Published {
        if slot
            .pending
            .compare_exchange(seq, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return Published::ForExport;
        }
        // The slot belongs to one of our shards: count there (any shard would do; the
        // total is what is read).
        self.shards[0].withdrawn.fetch_add(1, Ordering::Relaxed);
        Published::Withdrawn
    }

    /// Swaps the value in `value` into shard `shard` (taken modulo the shard count),
    /// overwriting that shard's oldest value when it is full; see [`Push`] for what is left
    /// in `value`. `exclusive`: the caller is the only thread pushing to this shard, so the
    /// cursor is advanced without a read-modify-write (see the module docs; being wrong
    /// costs slots, never data). Never blocks, never allocates, never panics. The value is
    /// published `pending` while an exporter is attached.
    ///
    /// Taking `&mut Option<T>` lets a large record be swapped straight from the caller's
    /// storage into the slot, with no temporary copy (span records are a few hundred
    /// bytes; every extra move showed up in the profile).
    #[inline]
    #[cfg(test)]
    pub(crate) fn push(&self, shard: usize, exclusive: bool, value: &mut Option<T>) -> Push {
        // Both indexes are masked to their power-of-two lengths, so they are in bounds.
        let shard = &self.shards[shard & self.shard_mask];
        let i = shard.next(exclusive);
        let slot = &shard.slots[i & shard.mask];
        if !slot.try_write() {
            return Push::Busy;
        }
        shard.stamp(slot, i);
        // SAFETY: we hold the slot's write lock (invariant 1), so no other thread accesses
        // the cell until our release store below. `value` is the caller's exclusive borrow,
        // so it cannot overlap the slot; both are valid, aligned `Option<T>`s. (Unlike
        // `ptr::swap`, `swap_nonoverlapping` swaps in chunks without a temporary copy.)
        slot.value
            .with_mut(|p| unsafe { std::ptr::swap_nonoverlapping(p, value as *mut Option<T>, 1) });
        let mut claimed = Claimed {
            slot,
            overwrote: false,
            _value: PhantomData,
        };
        let mark = claimed.mark_for_export(self);
        claimed.publish(self, mark);
        if value.is_some() {
            Push::Overwrote
        } else {
            Push::Stored
        }
    }

    /// Claims a slot of shard `shard` for writing a value in place (the span log builds a
    /// span's record directly in its slot when the span starts, and publishes it when the
    /// span finishes, so the record is never copied). The cursor advances as for
    /// `push` (the tests' way in); a busy slot is skipped, up to [`CLAIM_ATTEMPTS`] slots, then
    /// `None` (the caller counts it like a busy `push`, and reports it with
    /// [`unclaimed`](Self::unclaimed) when its value would have been published). The claimed slot keeps its
    /// previous value, if any ([`Claimed::overwrote`] says whether there was one), for the
    /// claimer to reuse in place
    /// ([`Claimed::get_or_insert_with`]: resetting a record field by field avoids building
    /// a new one aside and copying it in). The slot stays locked (readers skip it) until
    /// the [`Claimed`] drops. Never blocks or allocates.
    #[inline]
    pub(crate) fn claim(&self, shard: usize, exclusive: bool) -> Option<Claimed<'_, T>> {
        // Both indexes are masked to their power-of-two lengths, so they are in bounds.
        let shard = &self.shards[shard & self.shard_mask];
        for _ in 0..CLAIM_ATTEMPTS {
            let i = shard.next(exclusive);
            let slot = &shard.slots[i & shard.mask];
            if !slot.try_write() {
                continue;
            }
            // A position no later than the slot's value's (`seq` is written under the lock we
            // hold): this claim was delayed by a lap of the shard, or an exclusive writer's
            // cursor lost an increment to a thread sharing its shard and handed out a position
            // twice. The export cursor may have settled this slot at the later position; a
            // value stamped with this one would stay marked and never be visited, neither
            // exported nor counted. Leave the slot as it is and take another position.
            if slot.seq.load(Ordering::Relaxed) > i {
                slot.write_unlock();
                continue;
            }
            // The next claim on this shard takes the next slot: start fetching it now (see
            // `prefetch`).
            prefetch(&shard.slots[i.wrapping_add(1) & shard.mask]);
            // From here the guard releases the lock, also if dropping the old value panics.
            let mut claimed = Claimed {
                slot,
                overwrote: false,
                _value: PhantomData,
            };
            shard.stamp(slot, i);
            // SAFETY: we hold the slot's write lock (invariant 1), so no other thread
            // accesses the cell until the guard's release store.
            claimed.overwrote = slot.value.with(|p| unsafe { (*p).is_some() });
            return Some(claimed);
        }
        None
    }

    /// Reports a value whose [`claim`](Self::claim) found no free slot, when it would have
    /// been published (the tracer: when the span finishes): counted in `unclaimed` if an
    /// export cursor is attached now (see "Export cursor"). Never blocks or allocates.
    #[cold]
    #[inline(never)]
    pub(crate) fn unclaimed(&self) {
        if self.exporting() {
            // Any shard would do (the total is what is read): the first, as for `withdrawn`.
            self.shards[0].unclaimed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Calls `f` on every stored value, holding only that value's slot read lock meanwhile.
    /// Returns the number of slots skipped because a writer held them. Concurrent readers do
    /// not exclude each other.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T)) -> usize {
        let mut skipped = 0;
        for shard in self.shards.iter() {
            for slot in shard.slots.iter() {
                if !slot.try_read() {
                    skipped += 1;
                    continue;
                }
                let _unlock = ReadGuard(slot);
                slot.value.with(|p| {
                    // SAFETY: we hold a read lock until `_unlock` drops, which excludes
                    // writers (invariant 1); readers only read.
                    if let Some(v) = unsafe { &*p } {
                        f(v);
                    }
                });
            }
        }
        skipped
    }

    /// Attaches the export cursor, starting at the current heads (values published before
    /// are not for it); `None` while another one is attached. From now on finishers
    /// publish values `pending` (see the module docs, "Export cursor"), until the cursor
    /// drops.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn attach_exporter(&self) -> Option<ExportCursor<T>> {
        // The loss counters' baselines, read before finishers start marking: a mark set
        // and evicted between the attach and a later reading would be absorbed into it.
        // (Ordered before the attach by its release.)
        let evicted_seen = total(&self.shards, |s| &s.evicted);
        let unclaimed_seen = total(&self.shards, |s| &s.unclaimed);
        let mut word = self.export.load(Ordering::Relaxed);
        loop {
            if word & CURSOR != 0 {
                return None;
            }
            let attached = word.wrapping_add(GENERATION) | CURSOR | MARKING;
            match self.export.compare_exchange_weak(
                word,
                attached,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        let tails = self
            .shards
            .iter()
            .map(|s| s.head.load(Ordering::Relaxed))
            .collect();
        let mut cursor = ExportCursor::new(
            Arc::clone(&self.shards),
            Arc::clone(&self.export),
            Arc::clone(&self.wake),
            tails,
            evicted_seen,
            unclaimed_seen,
        );
        cursor.defer_claims_before_attach();
        Some(cursor)
    }
}

/// Slots [`ShardedRing::claim`] tries before giving up.
pub(crate) const CLAIM_ATTEMPTS: usize = 4;

/// The thread index of a writer that has none (its index went back at its exit, or it could
/// take none: `tracer::thread_index`): it writes to a shared shard ([`ShardedRing::claim_as`]).
pub(crate) const NO_THREAD_INDEX: usize = usize::MAX;

/// Export word bit: a cursor is attached and not detached; finishers mark what they publish.
const MARKING: usize = 1;
/// Export word bit: a cursor exists (attached, or detached and still draining); no second
/// one may attach.
const CURSOR: usize = 2;
/// Added to the export word at every attach, so that a finisher's re-check tells a
/// re-attached cursor from the one it marked for.
const GENERATION: usize = 4;

/// What [`Claimed::mark_for_export`] did, for [`Claimed::publish`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExportMark {
    /// The export word read before publishing.
    word: usize,
    /// The mark set (the slot's `seq`), 0 when none.
    seq: usize,
}

/// What [`Claimed::publish`] did with a value's export mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Published {
    /// No cursor was attached: not for export.
    Unmarked,
    /// Marked, and the cursor it was marked for was still attached after publishing (or
    /// had already taken it): the cursor visits it or a later claim counts it as evicted.
    ForExport,
    /// Marked, but the cursor detached before the finisher's re-check and had not taken it:
    /// the mark was withdrawn (the value finished after the exporter stopped taking spans).
    Withdrawn,
}

/// A slot claimed by [`ShardedRing::claim`]: holds the slot's write lock, so it alone may
/// access the slot's value, until it drops, which publishes the value (release store) to
/// readers. `Send` (like the value) so a detached span can finish on another thread: the
/// lock is a plain flag, not tied to a thread.
pub(crate) struct Claimed<'a, T> {
    slot: &'a Slot<T>,
    overwrote: bool,
    /// Behaves as `&mut T` for `Send`/`Sync`: it hands out `&mut T` and `&T`.
    _value: PhantomData<&'a mut T>,
}

impl<T> Claimed<'_, T> {
    /// Whether the slot held an older value when claimed (an overwrite).
    #[inline]
    pub(crate) fn overwrote(&self) -> bool {
        self.overwrote
    }

    /// Marks the value for the export cursor if one is attached (see "Export cursor" and
    /// "Detach"): call it just before [`publish`](Self::publish) and pass what it returns.
    #[inline(always)]
    pub(crate) fn mark_for_export(&mut self, ring: &ShardedRing<T>) -> ExportMark {
        let word = ring.export_word();
        if word & MARKING == 0 {
            return ExportMark { word, seq: 0 };
        }
        let seq = self.slot.seq.load(Ordering::Relaxed);
        self.slot.pending.store(seq, Ordering::Relaxed);
        ExportMark { word, seq }
    }

    /// Publishes the value (releases the slot; dropping the guard does the same, unmarked)
    /// and, if [`mark_for_export`](Self::mark_for_export) marked it, checks that the cursor
    /// it was marked for is still attached; if not, withdraws the mark, unless the cursor
    /// took it already (see "Detach"). Returns whether the value stays for the cursor.
    #[inline(always)]
    pub(crate) fn publish(self, ring: &ShardedRing<T>, mark: ExportMark) -> Published {
        let slot = self.slot;
        drop(self);
        if mark.seq == 0 {
            return Published::Unmarked;
        }
        // Orders the release store above before the load below against the detacher's
        // heavy fence (see "Detach").
        light_fence();
        if ring.export_word() == mark.word {
            if mark.seq % WAKE_EVERY == 0 {
                ring.wake_exporter();
            }
            return Published::ForExport;
        }
        ring.withdraw(slot, mark.seq)
    }

    /// The slot's value, inserting `f()` into an empty slot; the claimer resets an old
    /// value in place.
    #[inline(always)]
    pub(crate) fn get_or_insert_with(&mut self, f: impl FnOnce() -> T) -> &mut T {
        // SAFETY: we hold the slot's write lock (invariant 1) while `self` lives, and the
        // returned borrow cannot outlive the `&mut self` borrow.
        self.slot
            .value
            .with_mut(|p| unsafe { (*p).get_or_insert_with(f) })
    }

    /// The value written, if any.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
        // SAFETY: we hold the slot's write lock (invariant 1) while `self` lives, and the
        // returned borrow cannot outlive the `&mut self` borrow.
        self.slot.value.with_mut(|p| unsafe { (*p).as_mut() })
    }

    /// Empties the slot and returns what it held: a claim abandoned half-way (the tracer's
    /// when a span's start unwinds) publishes nothing.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<T> {
        self.slot.pending.store(0, Ordering::Relaxed);
        // SAFETY: we hold the slot's write lock (invariant 1) while `self` lives.
        self.slot.value.with_mut(|p| unsafe { (*p).take() })
    }

    /// The value written, if any.
    #[inline(always)]
    pub(crate) fn get(&self) -> Option<&T> {
        // SAFETY: as for `get_mut`; shared access through `&self` only.
        self.slot.value.with(|p| unsafe { (*p).as_ref() })
    }
}

impl<T> Drop for Claimed<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Publishes the value: pairs with the next holder's acquiring `compare_exchange`.
        self.slot.state.store(0, Ordering::Release);
    }
}

impl<T> std::fmt::Debug for Claimed<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed")
            .field("overwrote", &self.overwrote)
            .finish()
    }
}

impl<T> std::fmt::Debug for ShardedRing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedRing")
            .field("capacity", &self.capacity())
            .field("shards", &self.shards.len())
            .field("exporting", &self.exporting())
            .finish()
    }
}

/// The sum of one loss counter over the shards.
fn total<T>(shards: &[CachePadded<Shard<T>>], counter: impl Fn(&Shard<T>) -> &AtomicU64) -> u64 {
    shards
        .iter()
        .map(|s| counter(s).load(Ordering::Relaxed))
        .sum()
}

/// What the tests and the loom models read of the export marks.
#[cfg(test)]
mod test_support {
    use super::*;

    impl<T> ShardedRing<T> {
        /// Marks withdrawn by their finishers so far (see [`Published::Withdrawn`]).
        pub(crate) fn withdrawn(&self) -> u64 {
            total(&self.shards, |s| &s.withdrawn)
        }

        /// Slots whose value is marked for the export cursor now (after a cursor's detach
        /// and last drain, none may be left).
        pub(crate) fn marked(&self) -> usize {
            self.shards
                .iter()
                .flat_map(|s| s.slots.iter())
                .filter(|slot| slot.pending.load(Ordering::Relaxed) != 0)
                .count()
        }
    }

    impl ExportMark {
        /// Whether the value was marked (a cursor was attached).
        pub(crate) fn is_marked(&self) -> bool {
            self.seq != 0
        }
    }
}

#[cfg(all(test, not(agentcore_loom)))]
mod examples {
    use super::*;

    #[test]
    fn a_full_slot_hands_back_the_displaced_value() {
        let ring = ShardedRing::new(1, 1);
        assert_eq!(ring.push(0, false, &mut Some(1u32)), Push::Stored);
        let mut v = Some(2u32);
        assert_eq!(ring.push(0, false, &mut v), Push::Overwrote);
        assert_eq!(v, Some(1)); // the displaced oldest value, for the caller to drop
    }

    #[test]
    fn wrapping_around_overwrites_the_oldest_values() {
        let ring = ShardedRing::new(4, 2);
        assert_eq!(ring.capacity(), 4);
        let mut overwritten = 0;
        for v in 0..6u32 {
            if ring.push(0, true, &mut Some(v)) == Push::Overwrote {
                overwritten += 1;
            }
        }
        let mut seen = Vec::new();
        ring.for_each(|v| seen.push(*v));
        seen.sort();
        assert_eq!(seen, vec![4, 5]); // shard 0 has 2 slots; 0..4 were overwritten
        assert_eq!(overwritten, 4);
    }

    #[test]
    fn capacity_is_split_into_power_of_two_shards() {
        let ring = ShardedRing::<u8>::new(10, 3); // 2 shards of 8 slots
        assert_eq!((ring.shard_count(), ring.capacity()), (2, 16));
    }

    #[test]
    fn capacity_rounds_up_to_a_power_of_two() {
        assert_eq!(ShardedRing::<u8>::new(3, 1).capacity(), 4);
    }

    #[test]
    fn the_first_half_of_the_shards_are_owned_and_no_owned_shard_is_shared() {
        for shards in [1, 2, 4, 8, 64] {
            let ring = ShardedRing::<u8>::new(1024, shards);
            let owned = shards / 2;
            let mut exclusive_writers = vec![0; shards];
            let mut shared_writers = vec![0; shards];
            for thread in (0..4 * shards).chain([NO_THREAD_INDEX, NO_THREAD_INDEX - 1]) {
                let (shard, exclusive) = ring.writer_shard(thread);
                assert!(
                    shard < shards,
                    "{shards} shards: thread {thread} on shard {shard}"
                );
                assert_eq!(
                    exclusive,
                    thread < owned,
                    "{shards} shards: thread {thread}"
                );
                if exclusive {
                    assert_eq!(shard, thread);
                    exclusive_writers[shard] += 1;
                } else {
                    shared_writers[shard] += 1;
                }
            }
            for shard in 0..shards {
                // An owned shard has its one writer and no other; every shared one is used.
                let (e, s) = (exclusive_writers[shard], shared_writers[shard]);
                if shard < owned {
                    assert_eq!((e, s), (1, 0), "{shards} shards: shard {shard}");
                } else {
                    assert!(e == 0 && s > 0, "{shards} shards: shard {shard}: {e} {s}");
                }
            }
        }
    }

    #[test]
    fn shard_count_is_kept_when_it_is_a_power_of_two() {
        assert_eq!(ShardedRing::<u8>::new(64, 4).shard_count(), 4);
    }

    #[test]
    fn push_moves_the_value_in() {
        let ring = ShardedRing::new(2, 1);
        let mut v = Some(String::from("span"));
        assert_eq!(ring.push(0, false, &mut v), Push::Stored);
        assert!(v.is_none());
    }

    #[test]
    fn a_claimed_slot_is_busy_until_published() {
        let ring = ShardedRing::new(1, 1);
        let mut c = ring.claim(0, true).unwrap();
        assert_eq!(*c.get_or_insert_with(|| 1u32), 1);
        assert!(!c.overwrote());
        assert_eq!(ring.for_each(|_| {}), 1); // busy while claimed
        *c.get_mut().unwrap() += 1;
        drop(c); // publishes
        let mut seen = Vec::new();
        ring.for_each(|v| seen.push(*v));
        assert_eq!(seen, [2]);
        assert!(ring.claim(0, true).unwrap().overwrote());
    }

    #[test]
    fn for_each_visits_every_stored_value() {
        let ring = ShardedRing::new(4, 1);
        ring.push(0, false, &mut Some(7u32));
        let mut sum = 0;
        assert_eq!(ring.for_each(|v| sum += v), 0);
        assert_eq!(sum, 7);
    }
    #[test]
    fn readers_share_slots() {
        // A query visiting a slot must not make a concurrent query miss it (it did while
        // the slot lock was exclusive).
        let ring = ShardedRing::new(2, 1);
        ring.push(0, false, &mut Some(1u32));
        ring.push(0, false, &mut Some(2u32));
        let mut inner = Vec::new();
        let mut inner_skipped = 0;
        ring.for_each(|_| {
            if inner.is_empty() {
                inner_skipped = ring.for_each(|v| inner.push(*v));
            }
        });
        inner.sort();
        assert_eq!((inner, inner_skipped), (vec![1, 2], 0));
    }

    #[test]
    fn a_writer_skips_a_slot_a_reader_visits() {
        let ring = ShardedRing::new(1, 1);
        ring.push(0, false, &mut Some(1u32));
        ring.for_each(|_| {
            assert_eq!(ring.push(0, false, &mut Some(2u32)), Push::Busy);
            assert!(ring.claim(0, false).is_none());
        });
    }

    fn drain_all(cursor: &mut ExportCursor<u32>) -> (Vec<u32>, CursorDrain) {
        let mut seen = Vec::new();
        let d = cursor.drain(usize::MAX, &mut |v| seen.push(*v));
        seen.sort();
        (seen, d)
    }

    fn publish(ring: &ShardedRing<u32>, v: u32) -> bool {
        match ring.claim(0, false) {
            Some(mut c) => {
                c.get_or_insert_with(|| 0);
                *c.get_mut().unwrap() = v;
                let mark = c.mark_for_export(ring);
                c.publish(ring, mark);
                true
            }
            None => false,
        }
    }

    #[test]
    fn the_export_cursor_visits_each_value_once() {
        let ring = ShardedRing::new(8, 2);
        publish(&ring, 100); // before the cursor: not for it
        let mut cursor = ring.attach_exporter().unwrap();
        assert!(ring.attach_exporter().is_none(), "one cursor at a time");
        for v in 1..=3 {
            publish(&ring, v);
        }
        assert_eq!(cursor.pending(), 3);
        let (seen, d) = drain_all(&mut cursor);
        assert_eq!((seen, d.visited, d.evicted), (vec![1, 2, 3], 3, 0));
        assert_eq!(drain_all(&mut cursor).1, CursorDrain::default());
        assert_eq!(cursor.pending(), 0);
        drop(cursor);
        assert!(!ring.exporting());
        assert!(ring.attach_exporter().is_some());
    }

    #[test]
    fn the_export_cursor_counts_values_overwritten_before_it_came() {
        let ring = ShardedRing::new(4, 1);
        let mut cursor = ring.attach_exporter().unwrap();
        for v in 0..10 {
            publish(&ring, v);
        }
        let (seen, d) = drain_all(&mut cursor);
        assert_eq!(seen, vec![6, 7, 8, 9]);
        assert_eq!(d.evicted, 6);
        assert_eq!(d.visited as u64 + d.evicted, 10);
    }

    #[test]
    fn the_export_cursor_passes_an_open_value_and_comes_back_for_it() {
        let ring = ShardedRing::new(4, 1);
        let mut cursor = ring.attach_exporter().unwrap();
        let mut open = ring.claim(0, false).unwrap();
        open.get_or_insert_with(|| 7u32);
        publish(&ring, 1);
        publish(&ring, 2);
        // The estimate counts the open value's position; the count does not.
        assert_eq!((cursor.pending(), cursor.queued()), (3, 2));
        let (seen, _) = drain_all(&mut cursor);
        assert_eq!(seen, vec![1, 2]);
        assert_eq!((cursor.pending(), cursor.queued()), (0, 0));
        let mark = open.mark_for_export(&ring);
        assert_eq!(open.publish(&ring, mark), Published::ForExport);
        assert_eq!((cursor.pending(), cursor.queued()), (1, 1));
        let (seen, _) = drain_all(&mut cursor);
        assert_eq!(seen, vec![7]);
        assert_eq!(cursor.pending(), 0);
    }

    #[test]
    fn the_export_cursor_counts_claims_that_found_no_slot() {
        let ring = ShardedRing::new(4, 1);
        let mut cursor = ring.attach_exporter().unwrap();
        let held: Vec<_> = (0..4).map(|_| ring.claim(0, false).unwrap()).collect();
        assert!(!publish(&ring, 1));
        ring.unclaimed();
        drop(held); // empty values: nothing to visit
        let (seen, d) = drain_all(&mut cursor);
        assert_eq!((seen.len(), d.unclaimed, d.evicted), (0, 1, 0));
    }

    #[test]
    fn a_value_published_after_the_detach_is_withdrawn_not_stranded() {
        // The shutdown window: the finisher reads "attached" and marks its value; the
        // exporter's last drain passes the (still locked) slot; the cursor detaches; then the
        // value is published. Before the handshake the mark stayed: the span was neither
        // exported nor counted.
        let ring = ShardedRing::new(4, 1);
        let mut cursor = ring.attach_exporter().unwrap();
        let mut c = ring.claim(0, false).unwrap();
        c.get_or_insert_with(|| 9u32);
        let mark = c.mark_for_export(&ring);
        assert_eq!(drain_all(&mut cursor).0, Vec::<u32>::new());
        assert!(cursor.detach());
        assert!(!ring.exporting());
        assert_eq!(c.publish(&ring, mark), Published::Withdrawn);
        assert_eq!((ring.marked(), ring.withdrawn()), (0, 1));
        let (seen, d) = drain_all(&mut cursor);
        assert_eq!((seen.len(), d.evicted), (0, 0));
        // Still the ring's only cursor until it drops.
        assert!(ring.attach_exporter().is_none());
        drop(cursor);
        assert!(ring.attach_exporter().is_some());
    }

    #[test]
    fn a_value_claimed_before_the_attach_and_published_after_it_is_found() {
        // An open span when export starts, and a claim that took its position but had not
        // locked its slot yet: both finish marked, behind the cursor's tail.
        let ring = ShardedRing::new(4, 1);
        publish(&ring, 1); // published before: not for the cursor
        let mut open = ring.claim(0, false).unwrap();
        open.get_or_insert_with(|| 2u32);
        let shard = &ring.shards[0];
        let late = shard.next(false);
        let mut cursor = ring.attach_exporter().unwrap();
        assert_eq!(drain_all(&mut cursor).0, Vec::<u32>::new());
        let mark = open.mark_for_export(&ring);
        assert_eq!(open.publish(&ring, mark), Published::ForExport);
        let slot = &shard.slots[late & shard.mask];
        assert!(slot.try_write());
        shard.stamp(slot, late);
        let mut c = Claimed {
            slot,
            overwrote: false,
            _value: PhantomData,
        };
        c.get_or_insert_with(|| 3u32);
        let mark = c.mark_for_export(&ring);
        c.publish(&ring, mark);
        let (seen, d) = drain_all(&mut cursor);
        assert_eq!((seen, d.evicted), (vec![2, 3], 0));
        assert_eq!(ring.marked(), 0);
    }

    #[test]
    fn a_value_published_before_the_detach_is_still_drained_after_it() {
        let ring = ShardedRing::new(4, 1);
        let mut cursor = ring.attach_exporter().unwrap();
        assert!(publish(&ring, 1));
        assert!(cursor.detach());
        assert!(publish(&ring, 2)); // after the detach: not marked
        assert_eq!(drain_all(&mut cursor).0, vec![1]);
        assert_eq!((ring.marked(), ring.withdrawn()), (0, 0));
    }

    #[test]
    fn a_withdrawal_after_a_new_attach_leaves_the_new_cursors_marks_alone() {
        // Marked for cursor A, published after A detached and B attached: the finisher sees
        // the generation change and withdraws its own mark only.
        let ring = ShardedRing::new(4, 1);
        let a = ring.attach_exporter().unwrap();
        let mut c = ring.claim(0, false).unwrap();
        c.get_or_insert_with(|| 1u32);
        let mark = c.mark_for_export(&ring);
        drop(a);
        let mut b = ring.attach_exporter().unwrap();
        assert!(ring.exporting());
        assert_eq!(c.publish(&ring, mark), Published::Withdrawn);
        assert!(publish(&ring, 2));
        assert_eq!(drain_all(&mut b).0, vec![2]);
        assert_eq!((ring.marked(), ring.withdrawn()), (0, 1));
    }

    #[test]
    fn a_late_withdrawal_cannot_take_a_later_values_mark() {
        // The finisher of value 1 is slow to re-check: meanwhile its slot is claimed again
        // (the claim evicts value 1's mark) and value 2 is published there, marked. Value
        // 1's withdrawal compares its own `seq` and leaves value 2's mark alone.
        let ring = ShardedRing::new(1, 1);
        let mut cursor = ring.attach_exporter().unwrap();
        let mut c = ring.claim(0, false).unwrap();
        c.get_or_insert_with(|| 1u32);
        let mark = c.mark_for_export(&ring);
        let slot = c.slot;
        drop(c); // published, not re-checked yet
        assert!(publish(&ring, 2)); // evicts value 1
        assert_eq!(ring.withdraw(slot, mark.seq), Published::ForExport);
        let (seen, d) = drain_all(&mut cursor);
        assert_eq!((seen, d.evicted), (vec![2], 1));
    }

    #[test]
    fn detaching_while_writers_publish_strands_no_mark_and_loses_no_value() {
        // Writers publish continuously (filling a little between mark and publish, as the
        // tracer stamps times); the exporter attaches, drains, detaches and drains once more,
        // again and again. After each detach the writers park (each finishes the value in its
        // hands first); then no mark may be left. At the end every marked value was visited,
        // evicted or withdrawn.
        //
        // Why park rather than wait for the writers to move on: nothing orders a writer's
        // read of the export word after the detach (a relaxed load; only the fence pair
        // orders its *re-read*), so in the language's memory model a writer may still read
        // the old word, mark a new value, and withdraw it after its fence. Such a mark is
        // transient, never stranded, but a check made while that writer runs on could see it
        // (a Miri run of a small model of this handshake shows such marks; the old check,
        // which only waited for two more rounds per writer, failed under Miri within 25
        // cycles). A parked writer has finished its round, and its acknowledgement (a release
        // store the exporter acquires) orders everything it did before the check.
        use std::sync::atomic::{AtomicBool as Flag, AtomicU64 as Count};
        const WRITERS: usize = 2;
        // Fewer cycles and shorter long fills under Miri (`.ci/miri`): 60 cycles take about
        // 50 s there, 300 take 0.4 s natively.
        const CYCLES: usize = if cfg!(miri) { 60 } else { 300 };
        const LONG_FILL: u64 = if cfg!(miri) { 2_000 } else { 20_000 };
        let ring = Arc::new(ShardedRing::<u64>::new(64, 2));
        let stop = Arc::new(Flag::new(false));
        // The cycle (+ 1) the writers are asked to park for, 0 to run; and, per writer, the
        // last cycle (+ 1) it parked for.
        let park = Arc::new(Count::new(0));
        let parked: Arc<[Count]> = (0..WRITERS).map(|_| Count::new(0)).collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (ring, stop) = (ring.clone(), stop.clone());
                let (park, parked) = (park.clone(), parked.clone());
                std::thread::spawn(move || {
                    let (mut marked, mut withdrawn, mut round) = (0u64, 0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) {
                        let asked = park.load(Ordering::Acquire);
                        if asked != 0 {
                            parked[w].store(asked, Ordering::Release);
                            std::thread::yield_now();
                            continue;
                        }
                        round += 1;
                        if let Some(mut c) = ring.claim(w, false) {
                            *c.get_or_insert_with(|| 0) += 1;
                            let mark = c.mark_for_export(&ring);
                            // Mostly short fills, now and then one longer than a detach
                            // and a drain (a finisher preempted between mark and publish).
                            let fill = if round % 8 == 0 {
                                LONG_FILL
                            } else {
                                round % 64
                            };
                            for _ in 0..fill {
                                std::hint::spin_loop();
                            }
                            marked += u64::from(mark.is_marked());
                            if c.publish(&ring, mark) == Published::Withdrawn {
                                withdrawn += 1;
                            }
                        }
                    }
                    (marked, withdrawn)
                })
            })
            .collect();
        let (mut visited, mut evicted) = (0u64, 0u64);
        for cycle in 0..CYCLES {
            let mut cursor = ring.attach_exporter().expect("the previous cursor dropped");
            for _ in 0..cycle % 3 {
                let d = cursor.drain(usize::MAX, &mut |_| {});
                (visited, evicted) = (visited + d.visited as u64, evicted + d.evicted);
                std::thread::yield_now();
            }
            assert!(cursor.detach(), "no barrier on this machine");
            loop {
                let d = cursor.drain(usize::MAX, &mut |_| {});
                (visited, evicted) = (visited + d.visited as u64, evicted + d.evicted);
                if d.visited == 0 {
                    break;
                }
            }
            // Every writer finishes the value in its hands (and withdraws it) and parks.
            let asked = cycle as u64 + 1;
            park.store(asked, Ordering::Release);
            for p in parked.iter() {
                while p.load(Ordering::Acquire) != asked {
                    std::thread::yield_now();
                }
            }
            assert_eq!(ring.marked(), 0, "a mark stranded at cycle {cycle}");
            // The evictions of marks this cursor's drains did not see yet.
            evicted += cursor.drain(usize::MAX, &mut |_| {}).evicted;
            drop(cursor);
            park.store(0, Ordering::Release);
        }
        stop.store(true, Ordering::Relaxed);
        let (mut marked, mut withdrawn) = (0, 0);
        for w in writers {
            let (m, wd) = w.join().unwrap();
            (marked, withdrawn) = (marked + m, withdrawn + wd);
        }
        assert_eq!(withdrawn, ring.withdrawn());
        // Every eviction was reported by the cursor that was attached when it happened.
        assert_eq!(evicted, total(&ring.shards, |s| &s.evicted));
        assert_eq!(
            marked,
            visited + evicted + withdrawn,
            "visited {visited} evicted {evicted} withdrawn {withdrawn}"
        );
    }

    #[test]
    fn the_export_cursor_finds_a_claim_that_locked_its_slot_late() {
        // Position 0 is taken (cursor advanced) but its slot is locked only after the
        // exporter walked past it: the slot is deferred, and the value found later.
        let ring = ShardedRing::new(4, 1);
        let mut cursor = ring.attach_exporter().unwrap();
        let shard = &ring.shards[0];
        let i = shard.next(false);
        assert_eq!(drain_all(&mut cursor).0, Vec::<u32>::new());
        let slot = &shard.slots[i & shard.mask];
        assert!(slot.try_write());
        shard.stamp(slot, i);
        let mut c = Claimed {
            slot,
            overwrote: false,
            _value: PhantomData,
        };
        c.get_or_insert_with(|| 5u32);
        let mark = c.mark_for_export(&ring);
        c.publish(&ring, mark);
        assert_eq!(drain_all(&mut cursor).0, vec![5]);
    }
}
