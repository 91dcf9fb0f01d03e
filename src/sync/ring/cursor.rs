//! The export cursor of a [`ShardedRing`](super::ShardedRing): the exporter thread's side of
//! the protocol the ring's module docs describe ("Export cursor", "Detach"), in its own file.
//! It walks each shard from its tail towards its head, visiting the values marked for it,
//! deferring the slots it cannot decide yet, and reports the losses the recording threads
//! counted; the invariants and orderings it relies on are the ring's.

use super::{total, ReadGuard, Shard, Slot, Wake, CURSOR, MARKING};
use crate::sync::asymmetric_fence::{heavy_fence, Heavy};
use crate::sync::AtomicUsize;
use arc_swap::ArcSwapOption;
use crossbeam_utils::CachePadded;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What one [`ExportCursor::drain`] call did.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CursorDrain {
    /// Values handed to the callback.
    pub(crate) visited: usize,
    /// `pending` values displaced before the cursor reached them, since the previous call.
    pub(crate) evicted: u64,
    /// Claims that found no free slot while exporting, since the previous call.
    pub(crate) unclaimed: u64,
}

/// The export cursor of a [`ShardedRing`](super::ShardedRing) (see the module docs, "Export cursor"): drains
/// the values published while it is attached, each exactly once. Owned by the one exporter
/// thread; detaches when dropped. It shares the ring's slots, so it may outlive the ring's
/// owner.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub(crate) struct ExportCursor<T> {
    shards: Arc<[CachePadded<Shard<T>>]>,
    /// The ring's export word.
    export: Arc<AtomicUsize>,
    /// The ring's wake-up hook (see the ring's "Waking the exporter").
    wake: Arc<ArcSwapOption<Wake>>,
    /// [`detach`](Self::detach) ran.
    detached: bool,
    /// Per shard, the next position to walk.
    tails: Box<[usize]>,
    /// Per shard, the deferred slots (indexes), oldest first, each at most once.
    deferred: Box<[Vec<usize>]>,
    /// Per shard and slot, the newest deferred position + 1 (0: not deferred).
    deferred_at: Box<[Box<[usize]>]>,
    evicted_seen: u64,
    unclaimed_seen: u64,
    /// The shard each drain starts with, in turn, so that no shard starves the others.
    first: usize,
}

/// Whether claim position `seq` - 1 (a slot's `seq`) is older than `position`.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
#[inline]
fn older(seq: usize, position: usize) -> bool {
    (seq.wrapping_sub(position.wrapping_add(1)) as isize) < 0
}

#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
impl<T> ExportCursor<T> {
    /// A cursor over `shards` starting at `tails`, the loss counters read at `evicted_seen`
    /// and `unclaimed_seen` (the ring's attach builds it, then defers the claims before it).
    pub(super) fn new(
        shards: Arc<[CachePadded<Shard<T>>]>,
        export: Arc<AtomicUsize>,
        wake: Arc<ArcSwapOption<Wake>>,
        tails: Box<[usize]>,
        evicted_seen: u64,
        unclaimed_seen: u64,
    ) -> Self {
        ExportCursor {
            deferred: shards
                .iter()
                .map(|s| Vec::with_capacity(s.slots.len()))
                .collect(),
            deferred_at: shards
                .iter()
                .map(|s| vec![0usize; s.slots.len()].into_boxed_slice())
                .collect(),
            shards,
            export,
            wake,
            detached: false,
            tails,
            evicted_seen,
            unclaimed_seen,
            first: 0,
        }
    }

    fn evicted_total(&self) -> u64 {
        total(&self.shards, |s| &s.evicted)
    }

    fn unclaimed_total(&self) -> u64 {
        total(&self.shards, |s| &s.unclaimed)
    }

    /// An estimate of the values waiting: positions not walked yet (at most a lap per
    /// shard; a position may hold an open span or nothing) plus deferred slots whose value
    /// is marked `pending`. A few atomic loads per shard and per deferred slot.
    pub(crate) fn pending(&self) -> usize {
        let mut n = 0;
        for (s, shard) in self.shards.iter().enumerate() {
            let ahead = shard
                .head
                .load(Ordering::Relaxed)
                .wrapping_sub(self.tails[s]) as isize;
            n += (ahead.max(0) as usize).min(shard.slots.len());
            n += self.deferred[s]
                .iter()
                .filter(|&&i| shard.slots[i].pending.load(Ordering::Relaxed) != 0)
                .count();
        }
        n
    }

    /// The values waiting, counted: the positions not walked yet (the last lap of each
    /// shard) whose slot is marked `pending`, plus the deferred ones. Unlike
    /// [`pending`](Self::pending) it does not count open values (claimed, not published), so
    /// a burst of long-lived spans does not look like a full queue. A relaxed load per
    /// position ahead (one cache line each): for the rare decisions that must not
    /// overcount, such as dropping for a queue cap.
    pub(crate) fn queued(&self) -> usize {
        let mut n = 0;
        for (s, shard) in self.shards.iter().enumerate() {
            let head = shard.head.load(Ordering::Relaxed);
            let ahead = head.wrapping_sub(self.tails[s]) as isize;
            let ahead = (ahead.max(0) as usize).min(shard.slots.len());
            let mut p = head.wrapping_sub(ahead);
            while p != head {
                n += usize::from(shard.slots[p & shard.mask].pending.load(Ordering::Relaxed) != 0);
                p = p.wrapping_add(1);
            }
            n += self.deferred[s]
                .iter()
                .filter(|&&i| shard.slots[i].pending.load(Ordering::Relaxed) != 0)
                .count();
        }
        n
    }

    /// Visits up to `max` values marked `pending` (deferred slots first, then each shard
    /// from its tail), clearing their marks, and reports the losses counted since the
    /// previous call.
    pub(crate) fn drain(&mut self, max: usize, f: &mut dyn FnMut(&T)) -> CursorDrain {
        let mut visited = 0;
        let n = self.shards.len();
        for k in 0..n {
            if visited < max {
                self.revisit((self.first + k) % n, max, &mut visited, f);
            }
        }
        for k in 0..n {
            if visited < max {
                self.walk((self.first + k) % n, max, &mut visited, f);
            }
        }
        self.first = (self.first + 1) % n;
        let (evicted, unclaimed) = (self.evicted_total(), self.unclaimed_total());
        let drained = CursorDrain {
            visited,
            evicted: evicted.wrapping_sub(self.evicted_seen),
            unclaimed: unclaimed.wrapping_sub(self.unclaimed_seen),
        };
        self.evicted_seen = evicted;
        self.unclaimed_seen = unclaimed;
        drained
    }

    /// At attach: a value claimed before the attach (an open span, or a claim that took its
    /// position and has not locked its slot yet) may be published marked after it, at a
    /// position behind the tail. Defers every slot of the last lap whose position is not
    /// settled (write-locked, `seq` older than the position, or already marked), so the
    /// drains find such values; the others hold values published unmarked, or nothing.
    /// `seq` and the mark are read under the slot's read lock, as a visit reads them (read
    /// without it, a fresh `seq` beside a stale unlocked `state` would look settled);
    /// deferring too much only costs a revisit.
    pub(super) fn defer_claims_before_attach(&mut self) {
        for (s, shard) in self.shards.iter().enumerate() {
            let head = self.tails[s];
            let lap = shard.slots.len();
            // Within the ring's first lap only the positions claimed so far (`0..head`): a
            // "position" below 0 wrapped to the top of `usize`, and `usize::MAX` made
            // `deferred_at` 0, "not deferred", for a slot on the list, whose revisit then
            // computed `0 - 1` (an overflow panic in a debug build, seen once in CI under a
            // writer holding the ring's last slot at attach). Positions claimed after the attach
            // are the walk's. (`head` counts claims; it does not wrap in practice.)
            for k in (1..=lap.min(head)).rev() {
                let position = head.wrapping_sub(k);
                let i = position & shard.mask;
                let slot = &shard.slots[i];
                let unsettled = !slot.try_read() || {
                    let _unlock = ReadGuard(slot);
                    older(slot.seq.load(Ordering::Relaxed), position)
                        || slot.pending.load(Ordering::Relaxed) != 0
                };
                if unsettled {
                    if self.deferred_at[s][i] == 0 {
                        self.deferred[s].push(i);
                    }
                    self.deferred_at[s][i] = position.wrapping_add(1);
                }
            }
        }
    }

    /// Visits `slot`'s value if it is `pending`. Returns the slot's `seq`, or `None` when a
    /// writer holds the slot.
    fn visit(slot: &Slot<T>, visited: &mut usize, f: &mut dyn FnMut(&T)) -> Option<usize> {
        if !slot.try_read() {
            return None;
        }
        let _unlock = ReadGuard(slot);
        let seq = slot.seq.load(Ordering::Relaxed);
        if slot.pending.swap(0, Ordering::Relaxed) != 0 {
            slot.value.with(|p| {
                // SAFETY: we hold a read lock until `_unlock` drops (invariant 1).
                if let Some(v) = unsafe { &*p } {
                    *visited += 1;
                    f(v);
                }
            });
        }
        Some(seq)
    }

    /// Visits the deferred slots of shard `s` again; keeps those still undecided.
    fn revisit(&mut self, s: usize, max: usize, visited: &mut usize, f: &mut dyn FnMut(&T)) {
        let shard = &self.shards[s];
        let list = &mut self.deferred[s];
        let at = &mut self.deferred_at[s];
        let mut keep = 0;
        for k in 0..list.len() {
            let i = list[k];
            let decided = *visited < max
                && match Self::visit(&shard.slots[i], visited, f) {
                    None => false,
                    Some(seq) => !older(seq, at[i] - 1),
                };
            if decided {
                at[i] = 0;
            } else {
                list[keep] = i;
                keep += 1;
            }
        }
        list.truncate(keep);
    }

    /// Walks shard `s` from its tail towards its head.
    fn walk(&mut self, s: usize, max: usize, visited: &mut usize, f: &mut dyn FnMut(&T)) {
        let shard = &self.shards[s];
        let lap = shard.slots.len();
        let head = shard.head.load(Ordering::Relaxed);
        let mut tail = self.tails[s];
        let ahead = head.wrapping_sub(tail) as isize;
        if ahead <= 0 {
            // Nothing new (or the head went back: lost increments of a misused exclusive
            // cursor; those positions were walked already).
            return;
        }
        if ahead as usize > lap {
            // Older positions' slots have been claimed again since: start a lap behind.
            tail = head.wrapping_sub(lap);
        }
        while tail != head && *visited < max {
            let i = tail & shard.mask;
            let undecided = match Self::visit(&shard.slots[i], visited, f) {
                None => true,
                Some(seq) => older(seq, tail),
            };
            if undecided {
                let at = &mut self.deferred_at[s][i];
                if *at == 0 {
                    self.deferred[s].push(i);
                }
                *at = tail.wrapping_add(1);
            }
            tail = tail.wrapping_add(1);
        }
        self.tails[s] = tail;
    }
}

#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
impl<T> ExportCursor<T> {
    /// Sets how finishers wake this cursor's thread (see the ring's "Waking the exporter"):
    /// `wake` must not block or allocate. Cleared by [`detach`](Self::detach).
    pub(crate) fn set_wake(&self, wake: Wake) {
        if !self.detached {
            self.wake.store(Some(Arc::new(wake)));
        }
    }

    /// Stops finishers marking what they publish, and waits (a process-wide barrier, no
    /// sleep) until every value marked for this cursor is either findable by its drains or
    /// will be withdrawn by its finisher (see "Detach"). Drains keep finding the values
    /// marked before; the cursor stays the ring's only one until it drops. Returns `false`
    /// when no barrier was available (membarrier and its fallback both refused): then a
    /// finisher that marked just before the detach may leave its mark behind, to be counted
    /// as evicted when its slot is claimed again. Idempotent.
    pub(crate) fn detach(&mut self) -> bool {
        if self.detached {
            return true;
        }
        self.detached = true;
        self.wake.store(None);
        self.export.fetch_and(!MARKING, Ordering::Relaxed);
        heavy_fence(0) != Heavy::Failed
    }
}

impl<T> Drop for ExportCursor<T> {
    fn drop(&mut self) {
        self.detach();
        self.export.fetch_and(!CURSOR, Ordering::Release);
    }
}

impl<T> std::fmt::Debug for ExportCursor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportCursor")
            .field("shards", &self.shards.len())
            .field("pending", &self.pending())
            .finish()
    }
}
