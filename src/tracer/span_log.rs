//! The span log: a fixed-capacity, sharded ring buffer of finished spans.
//!
//! # Design
//!
//! The ring is split into shards (a power of two, by default about twice the number of
//! CPUs), each with its own write cursor (`head`) on its own cache line, and a power-of-two
//! number of preallocated slots. A writer picks its shard from a per-thread index, so
//! threads rarely share a cursor: on this 2-vCPU VM a cross-core read-modify-write of one
//! shared cursor costs 50-200 ns, an uncontended one about 4 ns.
//!
//! Each slot is a try-lock word (`busy`) plus the value cell (`Option<T>`).
//!
//! * **Write** (`push`): `head.fetch_add(1)` picks a slot; the writer then *tries* to take
//!   the slot's lock. On success it swaps its value in (moving it; no allocation), releases
//!   the lock, dropping the previous value, if any, in place (an overwrite, counted). On
//!   failure (a reader, or a writer that wrapped all the way round, holds the slot) it does
//!   not wait: it leaves its value with the caller (`Busy`) and counts one drop. A write therefore never blocks and never allocates.
//! * **Read** (`for_each`): the reader try-locks each slot in turn, looks at the value, and
//!   unlocks (also on panic, through a guard). Busy slots are skipped (their count is
//!   returned). Readers never stop writers for longer than one slot visit.
//!
//! # Invariants
//!
//! 1. Only the holder of a slot's `busy` lock (the thread whose `compare_exchange(false,
//!    true)` succeeded) touches that slot's value; it releases the lock with a single store.
//! 2. Memory is allocated once, in `new`; a slot holds at most one value, so memory stays
//!    flat: `capacity` slots of `size_of::<Option<T>>()` bytes each.
//! 3. Every pushed value is accounted for exactly once: stored (possibly overwriting an
//!    older one, counted in `overwritten`) or left with the caller as `Busy` (counted in
//!    `dropped`).
//!
//! # Memory ordering
//!
//! The lock acquire is a `compare_exchange(false, true, Acquire, Relaxed)`, the release a
//! `store(false, Release)`. So the release by one holder synchronizes-with the acquire of
//! the next holder, and every write the previous holder made to the value happens-before
//! every access by the next one: the value cell is only ever accessed under this mutual
//! exclusion, which is invariant 1 and makes the `UnsafeCell` accesses data-race free. The
//! cursor (`head`) and the counters are `Relaxed`: they only choose a slot or count, and no
//! other memory is published through them; correctness never depends on which slot a
//! writer gets, only on the slot lock. The loom model in `loom-tests/tests/span_log.rs`
//! checks these invariants for concurrent writers that wrap around plus a concurrent reader.

use crate::sync::{AtomicBool, AtomicU64, AtomicUsize};
use crossbeam_utils::CachePadded;
use std::sync::atomic::Ordering;

#[cfg(loom)]
use loom::cell::UnsafeCell;

/// `std`'s `UnsafeCell` with loom's closure API, so the same code runs under loom.
#[cfg(not(loom))]
#[derive(Debug)]
struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
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

struct Slot<T> {
    busy: AtomicBool,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value is only accessed by the holder of `busy` (invariant 1), so sharing a
// slot between threads hands values from one thread to another, as a `Mutex<T>` does, which
// requires `T: Send` only.
unsafe impl<T: Send> Sync for Slot<T> {}

struct Shard<T> {
    head: AtomicUsize,
    overwritten: AtomicU64,
    dropped: AtomicU64,
    mask: usize,
    slots: Box<[Slot<T>]>,
}

/// What [`ShardedRing::push`] did with a value.
///
/// ```
/// use agentcore_telemetry::tracer::{Push, ShardedRing};
///
/// let ring = ShardedRing::new(1, 1);
/// assert_eq!(ring.push(0, &mut Some(1u32)), Push::Stored);
/// let mut v = Some(2u32);
/// assert_eq!(ring.push(0, &mut v), Push::Overwrote);
/// assert_eq!(v, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Stored in an empty slot.
    Stored,
    /// Stored; the slot's previous (oldest) value was dropped.
    Overwrote,
    /// The slot was busy; the value was left with the caller and counted as dropped.
    Busy,
}

/// A fixed-capacity ring of values, sharded by writer; see the [module docs](self) for the
/// design, the invariants and the memory-ordering argument. The span log is a
/// `ShardedRing<SpanRecord>`; it is public (hidden) so the loom model can build one.
///
/// ```
/// use agentcore_telemetry::tracer::ShardedRing;
///
/// let ring = ShardedRing::new(4, 2);
/// assert_eq!(ring.capacity(), 4);
/// for v in 0..6u32 {
///     ring.push(0, &mut Some(v));
/// }
/// let mut seen = Vec::new();
/// ring.for_each(|v| seen.push(*v));
/// seen.sort();
/// assert_eq!(seen, vec![4, 5]); // shard 0 has 2 slots; 0..4 were overwritten
/// assert_eq!(ring.overwritten(), 4);
/// ```
pub struct ShardedRing<T> {
    shards: Box<[CachePadded<Shard<T>>]>,
    shard_mask: usize,
}

impl<T> ShardedRing<T> {
    /// A ring of at least `capacity` slots (at least 1) in `shards` shards (rounded down to a
    /// power of two, at least 1, at most `capacity`); each shard gets the same power-of-two
    /// number of slots, so the capacity is rounded up to `shards * next_pow2(capacity /
    /// shards)`. All slots are allocated here and never again.
    ///
    /// ```
    /// use agentcore_telemetry::tracer::ShardedRing;
    /// let ring = ShardedRing::<u8>::new(10, 3); // 2 shards of 8 slots
    /// assert_eq!((ring.shard_count(), ring.capacity()), (2, 16));
    /// ```
    pub fn new(capacity: usize, shards: usize) -> Self {
        let capacity = capacity.max(1);
        let mut shards = shards.clamp(1, capacity);
        if !shards.is_power_of_two() {
            shards = shards.next_power_of_two() / 2;
        }
        let per_shard = capacity.div_ceil(shards).next_power_of_two();
        let shards: Box<[CachePadded<Shard<T>>]> = (0..shards)
            .map(|_| {
                CachePadded::new(Shard {
                    head: AtomicUsize::new(0),
                    overwritten: AtomicU64::new(0),
                    dropped: AtomicU64::new(0),
                    mask: per_shard - 1,
                    slots: (0..per_shard)
                        .map(|_| Slot {
                            busy: AtomicBool::new(false),
                            value: UnsafeCell::new(None),
                        })
                        .collect(),
                })
            })
            .collect();
        let shard_mask = shards.len() - 1;
        ShardedRing { shards, shard_mask }
    }

    /// The number of slots.
    ///
    /// ```
    /// use agentcore_telemetry::tracer::ShardedRing;
    /// assert_eq!(ShardedRing::<u8>::new(3, 1).capacity(), 4);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.shards.first().map_or(0, |s| s.slots.len())
    }

    /// The number of shards.
    ///
    /// ```
    /// use agentcore_telemetry::tracer::ShardedRing;
    /// assert_eq!(ShardedRing::<u8>::new(64, 4).shard_count(), 4);
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Moves the value out of `value` into shard `shard` (taken modulo the shard count),
    /// overwriting that shard's oldest value when it is full. On [`Push::Busy`] the value is
    /// left in `value`. Never blocks, never allocates, never panics.
    ///
    /// Taking `&mut Option<T>` instead of `T` lets a large record be copied once, straight
    /// from the caller's storage into the slot (span records are a few hundred bytes; every
    /// extra move showed up in the profile).
    #[inline]
    ///
    /// ```
    /// use agentcore_telemetry::tracer::{Push, ShardedRing};
    /// let ring = ShardedRing::new(2, 1);
    /// let mut v = Some(String::from("span"));
    /// assert_eq!(ring.push(0, &mut v), Push::Stored);
    /// assert!(v.is_none());
    /// ```
    pub fn push(&self, shard: usize, value: &mut Option<T>) -> Push {
        // Both indexes are masked to their power-of-two lengths, so they are in bounds.
        let shard = &self.shards[shard & self.shard_mask];
        let i = shard.head.fetch_add(1, Ordering::Relaxed);
        let slot = &shard.slots[i & shard.mask];
        if slot
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            shard.dropped.fetch_add(1, Ordering::Relaxed);
            return Push::Busy;
        }
        // SAFETY: we hold the slot's lock (invariant 1), so no other thread accesses the cell
        // until our release store below. The old value is dropped in place (for an inline
        // span record that is a few flag checks; owned strings are freed, never allocated).
        let overwrote = slot.value.with_mut(|p| unsafe {
            let overwrote = (*p).is_some();
            *p = value.take();
            overwrote
        });
        slot.busy.store(false, Ordering::Release);
        if overwrote {
            shard.overwritten.fetch_add(1, Ordering::Relaxed);
            Push::Overwrote
        } else {
            Push::Stored
        }
    }

    /// Calls `f` on every stored value, holding only that value's slot lock meanwhile.
    /// Returns the number of slots skipped because a writer held them.
    ///
    /// ```
    /// use agentcore_telemetry::tracer::ShardedRing;
    /// let ring = ShardedRing::new(4, 1);
    /// ring.push(0, &mut Some(7u32));
    /// let mut sum = 0;
    /// assert_eq!(ring.for_each(|v| sum += v), 0);
    /// assert_eq!(sum, 7);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&T)) -> usize {
        struct Unlock<'a>(&'a AtomicBool);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let mut skipped = 0;
        for shard in self.shards.iter() {
            for slot in shard.slots.iter() {
                if slot
                    .busy
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    skipped += 1;
                    continue;
                }
                let _unlock = Unlock(&slot.busy);
                // SAFETY: we hold the slot's lock until `_unlock` drops (invariant 1).
                slot.value.with(|p| {
                    if let Some(v) = unsafe { &*p } {
                        f(v);
                    }
                });
            }
        }
        skipped
    }

    /// Values overwritten because their shard was full.
    ///
    /// ```
    /// use agentcore_telemetry::tracer::ShardedRing;
    /// let ring = ShardedRing::new(1, 1);
    /// ring.push(0, &mut Some(1u8));
    /// ring.push(0, &mut Some(2u8));
    /// assert_eq!(ring.overwritten(), 1);
    /// ```
    pub fn overwritten(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.overwritten.load(Ordering::Relaxed))
            .sum()
    }

    /// Values dropped because their slot was busy.
    ///
    /// ```
    /// use agentcore_telemetry::tracer::ShardedRing;
    /// assert_eq!(ShardedRing::<u8>::new(1, 1).dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.dropped.load(Ordering::Relaxed))
            .sum()
    }
}

impl<T> std::fmt::Debug for ShardedRing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedRing")
            .field("capacity", &self.capacity())
            .field("shards", &self.shards.len())
            .finish()
    }
}
