//! The span log: a fixed-capacity, sharded ring buffer of finished spans.
//!
//! # Design
//!
//! The ring is split into shards (a power of two, by default about twice the number of
//! CPUs), each with its own write cursor (`head`) on its own cache line, and a power-of-two
//! number of preallocated slots. A writer picks its shard from a per-thread index, so
//! threads rarely share a cursor: on this 2-vCPU VM a cross-core read-modify-write of one
//! shared cursor costs 50-200 ns, an uncontended locked one about 4-8 ns.
//!
//! Each slot is a try-lock word (`busy`) plus the value cell (`Option<T>`).
//!
//! * **Write** (`push`): the cursor picks a slot; the writer then *tries* to take the slot's
//!   lock. On success it swaps its value in (moving it; no allocation) and releases the
//!   lock; the previous value, if any, comes back to the caller (`Overwrote`), who drops it
//!   after the lock is released. On failure (a reader, or another writer, holds the slot)
//!   it does not wait: it keeps its value (`Busy`). A write never blocks or allocates.
//!   The caller counts the outcomes (the tracer in its per-thread counters).
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
//! * **Cursor.** A writer that is the only writer of its shard (`exclusive`: the tracer passes
//!   it for threads whose process-wide index is below `shard_count`) advances the cursor
//!   with a plain load + store; others use `fetch_add`. If an exclusive writer shares its
//!   shard after all (a later thread mapped onto it), an increment may be lost and two
//!   writers may pick the same slot: that only costs a `Busy` or an earlier overwrite, both
//!   reported, because the cursor never protects data; the slot lock does.
//! * **Read** (`for_each`): the reader try-locks each slot in turn, looks at the value, and
//!   unlocks (also on panic, through a guard). Busy slots are skipped (their count is
//!   returned). Readers never stop writers for longer than one slot visit.
//!
//! # Invariants
//!
//! 1. Only the holder of a slot's `busy` lock (whoever's `compare_exchange(false, true)`
//!    succeeded: a `push` or a `for_each` visit, or the `Claimed` guard of a `claim`,
//!    wherever it has moved) touches that slot's value; it releases the lock with a single
//!    store, exactly once (`Claimed` in its `Drop`).
//! 2. Memory is allocated once, in `new`; a slot holds at most one value, so memory stays
//!    flat: `capacity` slots of `size_of::<Option<T>>()` bytes each.
//! 3. Every pushed value ends in exactly one place: stored in a slot (from which it is later
//!    handed back by exactly one `Overwrote`), or handed back by `Busy`. Nothing is
//!    duplicated or lost, whatever the cursor does. Likewise every claim either fails or
//!    ends with its value stored in its slot, replacing at most one older value, which
//!    that claim alone reports (`overwrote`), or is abandoned (`Claimed::take`): the slot
//!    is left empty and its value handed back to the claimer.
//!
//! # Memory ordering
//!
//! The lock acquire is a `compare_exchange(false, true, Acquire, Relaxed)`, the release a
//! `store(false, Release)`. So the release by one holder synchronizes-with the acquire of
//! the next holder, and every write the previous holder made to the value happens-before
//! every access by the next one: the value cell is only ever accessed under this mutual
//! exclusion, which is invariant 1 and makes the `UnsafeCell` accesses data-race free. A
//! claim is the same critical section, only longer: its in-place writes (made on whichever
//! threads the guard visits, each hand-off being itself synchronized by the `Send` of the
//! guard) happen-before its release store, hence before any later holder's access. The
//! cursor (`head`) is `Relaxed`: it only chooses a slot and publishes no memory;
//! correctness never depends on which slot a writer gets, only on the slot lock. The loom
//! model in `loom-tests/tests/span_log.rs` checks these invariants for concurrent writers
//! (shared and "exclusive" cursors) that wrap around, plus a concurrent reader, both with
//! `push` and with `claim` (writing in place in two steps before publishing).

use crate::sync::{AtomicBool, AtomicUsize};
use crossbeam_utils::CachePadded;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;

#[cfg(agentcore_loom)]
use loom::cell::UnsafeCell;

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
    mask: usize,
    slots: Box<[Slot<T>]>,
}

/// What [`ShardedRing::push`] did with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// Stored in an empty slot; the caller's `Option` is now `None`.
    Stored,
    /// Stored; the caller's `Option` now holds the slot's previous (oldest) value.
    Overwrote,
    /// The slot was busy; the caller's `Option` still holds its value.
    Busy,
}

/// A fixed-capacity ring of values, sharded by writer; see `src/tracer/span_log.rs` for the
/// design, the invariants and the memory-ordering argument. The span log is a
/// `ShardedRing<SpanRecord>`; it is public (hidden) so the loom model can build one.
pub(crate) struct ShardedRing<T> {
    shards: Box<[CachePadded<Shard<T>>]>,
    shard_mask: usize,
}

impl<T> ShardedRing<T> {
    /// A ring of at least `capacity` slots (at least 1) in `shards` shards (rounded down to a
    /// power of two, at least 1, at most `capacity`); each shard gets the same power-of-two
    /// number of slots, so the capacity is rounded up to `shards * next_pow2(capacity /
    /// shards)`. All slots are allocated here and never again.
    pub(crate) fn new(capacity: usize, shards: usize) -> Self {
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
    pub(crate) fn capacity(&self) -> usize {
        self.shards.len() * self.shards.first().map_or(0, |s| s.slots.len())
    }

    /// The number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Swaps the value in `value` into shard `shard` (taken modulo the shard count),
    /// overwriting that shard's oldest value when it is full; see [`Push`] for what is left
    /// in `value`. `exclusive`: the caller is the only thread pushing to this shard, so the
    /// cursor is advanced without a read-modify-write (see the module docs; being wrong
    /// costs slots, never data). Never blocks, never allocates, never panics.
    ///
    /// Taking `&mut Option<T>` lets a large record be swapped straight from the caller's
    /// storage into the slot, with no temporary copy (span records are a few hundred
    /// bytes; every extra move showed up in the profile).
    #[inline]
    #[cfg(test)]
    pub(crate) fn push(&self, shard: usize, exclusive: bool, value: &mut Option<T>) -> Push {
        // Both indexes are masked to their power-of-two lengths, so they are in bounds.
        let shard = &self.shards[shard & self.shard_mask];
        let i = if exclusive {
            let i = shard.head.load(Ordering::Relaxed);
            shard.head.store(i.wrapping_add(1), Ordering::Relaxed);
            i
        } else {
            shard.head.fetch_add(1, Ordering::Relaxed)
        };
        let slot = &shard.slots[i & shard.mask];
        if slot
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Push::Busy;
        }
        // SAFETY: we hold the slot's lock (invariant 1), so no other thread accesses the cell
        // until our release store below. `value` is the caller's exclusive borrow, so it
        // cannot overlap the slot; both are valid, aligned `Option<T>`s. (Unlike
        // `ptr::swap`, `swap_nonoverlapping` swaps in chunks without a temporary copy.)
        slot.value
            .with_mut(|p| unsafe { std::ptr::swap_nonoverlapping(p, value as *mut Option<T>, 1) });
        slot.busy.store(false, Ordering::Release);
        if value.is_some() {
            Push::Overwrote
        } else {
            Push::Stored
        }
    }

    /// Claims a slot of shard `shard` for writing a value in place (the span log builds a
    /// span's record directly in its slot when the span starts, and publishes it when the
    /// span finishes, so the record is never copied). The cursor advances as for
    /// [`push`](Self::push); a busy slot is skipped, up to [`CLAIM_ATTEMPTS`] slots, then
    /// `None` (the caller counts it like [`Push::Busy`]). The claimed slot keeps its
    /// previous value, if any ([`Claimed::overwrote`] says whether there was one), for the
    /// claimer to replace ([`Claimed::write`]) or to reuse in place
    /// ([`Claimed::get_or_insert_with`]: resetting a record field by field avoids building
    /// a new one aside and copying it in). The slot stays locked (readers skip it) until
    /// the [`Claimed`] drops. Never blocks or allocates.
    #[inline]
    pub(crate) fn claim(&self, shard: usize, exclusive: bool) -> Option<Claimed<'_, T>> {
        // Both indexes are masked to their power-of-two lengths, so they are in bounds.
        let shard = &self.shards[shard & self.shard_mask];
        for _ in 0..CLAIM_ATTEMPTS {
            let i = if exclusive {
                let i = shard.head.load(Ordering::Relaxed);
                shard.head.store(i.wrapping_add(1), Ordering::Relaxed);
                i
            } else {
                shard.head.fetch_add(1, Ordering::Relaxed)
            };
            let slot = &shard.slots[i & shard.mask];
            if slot
                .busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // From here the guard releases the lock, also if dropping the old value panics.
            let mut claimed = Claimed {
                slot,
                overwrote: false,
                _value: PhantomData,
            };
            // SAFETY: we hold the slot's lock (invariant 1), so no other thread accesses
            // the cell until the guard's release store.
            claimed.overwrote = slot.value.with(|p| unsafe { (*p).is_some() });
            return Some(claimed);
        }
        None
    }

    /// Calls `f` on every stored value, holding only that value's slot lock meanwhile.
    /// Returns the number of slots skipped because a writer held them.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T)) -> usize {
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
}

/// Slots [`ShardedRing::claim`] tries before giving up.
pub(crate) const CLAIM_ATTEMPTS: usize = 4;

/// A slot claimed by [`ShardedRing::claim`]: holds the slot's lock, so it alone may access
/// the slot's value, until it drops, which publishes the value (release store) to readers.
/// `Send` (like the value) so a detached span can finish on another thread: the lock is a
/// plain flag, not tied to a thread.
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

    /// The slot's value, inserting `f()` into an empty slot; the claimer resets an old
    /// value in place.
    #[inline(always)]
    pub(crate) fn get_or_insert_with(&mut self, f: impl FnOnce() -> T) -> &mut T {
        // SAFETY: we hold the slot's lock (invariant 1) while `self` lives, and the
        // returned borrow cannot outlive the `&mut self` borrow.
        self.slot
            .value
            .with_mut(|p| unsafe { (*p).get_or_insert_with(f) })
    }

    /// The value written, if any.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
        // SAFETY: we hold the slot's lock (invariant 1) while `self` lives, and the
        // returned borrow cannot outlive the `&mut self` borrow.
        self.slot.value.with_mut(|p| unsafe { (*p).as_mut() })
    }

    /// Empties the slot and returns what it held: a claim abandoned half-way (the tracer's
    /// when a span's start unwinds) publishes nothing.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<T> {
        // SAFETY: we hold the slot's lock (invariant 1) while `self` lives.
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
        self.slot.busy.store(false, Ordering::Release);
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
            .finish()
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
}
