//! [`RcuCell`]: a read-mostly pointer whose readers pay no atomic read-modify-write and no fence.
//!
//! # Why
//! The series maps of a [`Family`](crate::Family) are read on every labelled record and replaced
//! only when a series is added or removed. `ArcSwap::load` costs about 10.5 ns here (two locked
//! instructions: its debt slot is claimed and released with atomic RMWs), `crossbeam_epoch::pin`
//! about 6 ns (one locked instruction as a store-load fence); both are more than the whole rest of
//! a labelled record. This cell is epoch-based reclamation with *asymmetric* fences, the scheme of
//! userspace RCU's `membarrier` flavour and folly's `asymmetricLightBarrier`: readers only store
//! their epoch and issue a compiler fence; the (rare) writer issues `membarrier(2)`
//! (`MEMBARRIER_CMD_PRIVATE_EXPEDITED`), which runs a full memory barrier on every thread of the
//! process, before it decides what it may free.
//!
//! # Protocol
//! * Each thread's reader record is its [slot-arena block](super::slots::Block) (`rcu_epoch`,
//!   `rcu_nesting`), so finding it costs the same thread-local load recording already does.
//! * **Pin** (outermost guard only): `epoch := GLOBAL.load(Acquire)`; `record.rcu_epoch := epoch`;
//!   light fence. **Unpin**: `record.rcu_epoch := 0` (`Release`).
//! * **Replace**: swap the pointer (`AcqRel`), retire the old value tagged with
//!   `E = GLOBAL.fetch_add(1, AcqRel)`; once [`RECLAIM_BATCH`] values are waiting, *reclaim*:
//!   heavy fence, read every record's epoch, and free each retired value whose tag is below every
//!   active epoch.
//!
//! # Why it is safe (the invariant)
//! A value retired with tag `E` is freed only if no record holds an epoch `<= E`. Take a reader
//! that loaded the old pointer. Either its epoch store precedes the heavy fence's barrier on its
//! thread — then the reclaiming writer, which reads records after the heavy fence, sees that epoch,
//! and it is `<= E` because the reader read `GLOBAL` before it loaded the pointer and the writer
//! bumped `GLOBAL` after the swap (a reader that read `E + 1` acquired the bump, so its pointer load
//! sees the new value, not the old) — or its epoch store follows that barrier, and then so does its
//! pointer load, which therefore sees the swap that preceded the barrier: it never had the old
//! value. Either way nothing a reader can still dereference is freed.
//!
//! The light fence is `compiler_fence(SeqCst)` when `membarrier` registration succeeded and a real
//! `fence(SeqCst)` otherwise (other operating systems, kernels without it, and under loom, where
//! the heavy fence is also a plain `fence(SeqCst)`: the symmetric textbook scheme).
//! A thread whose thread-local storage is already torn down has no record; it reads as a *slow
//! reader* (a `SeqCst` counter), and nothing is reclaimed while one is active.
//!
//! A guard is `!Send` (it pins the current thread). Leaking one with `mem::forget` leaks the
//! values retired after it, never memory safety.

// Under loom the family uses the stand-in of `crate::sync`, so part of this module is unused there.
#![cfg_attr(agentcore_loom, allow(dead_code))]

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::OnceLock;

use super::slots::{self, Arena, Block};
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Mutex};

/// How readers and writers fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fences {
    /// Readers: compiler fence; writers: `membarrier(PRIVATE_EXPEDITED)`.
    Asymmetric,
    /// Readers and writers: `fence(SeqCst)`.
    Symmetric,
}

fn fences() -> Fences {
    static FENCES: OnceLock<Fences> = OnceLock::new();
    *FENCES.get_or_init(|| {
        if cfg!(agentcore_loom) {
            Fences::Symmetric
        } else if membarrier::register() {
            Fences::Asymmetric
        } else {
            Fences::Symmetric
        }
    })
}

#[cfg(all(target_os = "linux", not(agentcore_loom)))]
mod membarrier {
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    pub(super) fn register() -> bool {
        // SAFETY: membarrier(2) takes two integer arguments and touches no memory of ours.
        unsafe { libc::syscall(libc::SYS_membarrier, CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0 }
    }

    pub(super) fn barrier() {
        // SAFETY: as above. It cannot fail once registration succeeded (checked by `fences`).
        let r = unsafe { libc::syscall(libc::SYS_membarrier, CMD_PRIVATE_EXPEDITED, 0) };
        if r != 0 {
            // Unreachable after a successful registration; stay correct regardless.
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[cfg(not(all(target_os = "linux", not(agentcore_loom))))]
mod membarrier {
    pub(super) fn register() -> bool {
        false
    }
    pub(super) fn barrier() {}
}

#[inline(always)]
fn light_fence() {
    match fences() {
        Fences::Asymmetric => std::sync::atomic::compiler_fence(SeqCst),
        Fences::Symmetric => crate::sync::fence(SeqCst),
    }
}

fn heavy_fence() {
    match fences() {
        Fences::Asymmetric => membarrier::barrier(),
        Fences::Symmetric => crate::sync::fence(SeqCst),
    }
}

/// Retired values are reclaimed in batches of this many.
pub(crate) const RECLAIM_BATCH: usize = 16;

struct Retired {
    ptr: *mut (),
    drop_fn: unsafe fn(*mut ()),
    epoch: u64,
}

// SAFETY: a retired value is only ever dropped once, by whichever thread reclaims it; the values
// stored in an `RcuCell` are `Send` (enforced by `RcuCell`'s bounds).
unsafe impl Send for Retired {}

/// The epoch clock, the retired values and the reader records (an arena's blocks) of a set of
/// [`RcuCell`]s. The process has one, [`Domain::global`]; models and tests build their own.
pub(crate) struct Domain<'a> {
    arena: &'a Arena,
    epoch: AtomicU64,
    retired: Mutex<Vec<Retired>>,
    slow_readers: AtomicUsize,
}

impl<'a> Domain<'a> {
    /// A domain whose reader records are `arena`'s blocks.
    pub(crate) fn new(arena: &'a Arena) -> Domain<'a> {
        Domain {
            arena,
            epoch: AtomicU64::new(1),
            retired: Mutex::new(Vec::new()),
            slow_readers: AtomicUsize::new(0),
        }
    }

    /// Values retired and not yet freed.
    #[cfg(any(test, agentcore_loom))]
    pub(crate) fn pending(&self) -> usize {
        self.retired.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Pins `record` (a block the calling thread leases) for reading.
    #[inline(always)]
    pub(crate) fn pin<'d>(&'d self, record: &'d Block) -> Pin<'d> {
        let nesting = record.rcu_nesting.load(Relaxed);
        record.rcu_nesting.store(nesting.wrapping_add(1), Relaxed);
        if nesting == 0 {
            record.rcu_epoch.store(self.epoch.load(Acquire), Relaxed);
            light_fence();
        }
        Pin {
            record: Some(record),
            slow: &self.slow_readers,
            _not_send: PhantomData,
        }
    }

    /// Pins without a record (thread-local storage torn down): a counted slow reader.
    #[cold]
    pub(crate) fn pin_slow(&self) -> Pin<'_> {
        self.slow_readers.fetch_add(1, SeqCst);
        Pin {
            record: None,
            slow: &self.slow_readers,
            _not_send: PhantomData,
        }
    }

    fn retire(&self, retired: Retired) {
        let pending = {
            let mut list = self.retired.lock().unwrap_or_else(|e| e.into_inner());
            list.push(retired);
            list.len()
        };
        // One heavy fence (a membarrier syscall with IPIs) per batch of replaced values, not per
        // value: series churn would otherwise pay a syscall per insert. At most
        // `RECLAIM_BATCH` replaced values wait to be freed.
        if pending >= RECLAIM_BATCH {
            self.reclaim();
        }
    }

    /// Frees every retired value no reader can still hold.
    pub(crate) fn reclaim(&self) {
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        if retired.is_empty() {
            return;
        }
        heavy_fence();
        if self.slow_readers.load(SeqCst) != 0 {
            return;
        }
        let oldest_active = self
            .arena
            .blocks()
            .map(|b| b.rcu_epoch.load(Acquire))
            .filter(|&e| e != 0)
            .min()
            .unwrap_or(u64::MAX);
        retired.retain(|r| {
            if r.epoch < oldest_active {
                // SAFETY: no reader holds an epoch <= r.epoch (module docs), so none can still
                // dereference the value; it is dropped exactly once, here.
                unsafe { (r.drop_fn)(r.ptr) };
                false
            } else {
                true
            }
        });
    }
}

impl Drop for Domain<'_> {
    fn drop(&mut self) {
        let retired = std::mem::take(self.retired.get_mut().unwrap_or_else(|e| e.into_inner()));
        for r in retired {
            // SAFETY: the domain is being dropped, so no reader of it remains.
            unsafe { (r.drop_fn)(r.ptr) };
        }
    }
}

impl Domain<'static> {
    /// The process-wide domain, over the global arena's blocks.
    pub(crate) fn global() -> &'static Domain<'static> {
        static GLOBAL: OnceLock<Domain<'static>> = OnceLock::new();
        GLOBAL.get_or_init(|| Domain::new(slots::global()))
    }
}

/// A pinned reader. While it lives, nothing the thread loaded from an [`RcuCell`] of the domain
/// is freed.
pub(crate) struct Pin<'d> {
    record: Option<&'d Block>,
    slow: &'d AtomicUsize,
    _not_send: PhantomData<*const ()>,
}

impl Pin<'static> {
    /// Pins the calling thread in the global domain.
    #[inline(always)]
    pub(crate) fn current() -> Pin<'static> {
        let domain = Domain::global();
        match slots::local_block().or_else(slots::lease_for_thread) {
            Some(block) => domain.pin(block),
            None => domain.pin_slow(),
        }
    }
}

impl Drop for Pin<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        match self.record {
            Some(record) => {
                let nesting = record.rcu_nesting.load(Relaxed).wrapping_sub(1);
                record.rcu_nesting.store(nesting, Relaxed);
                if nesting == 0 {
                    record.rcu_epoch.store(0, Release);
                }
            }
            None => {
                self.slow.fetch_sub(1, SeqCst);
            }
        }
    }
}

/// A pointer to a `T` that readers load without any atomic RMW and writers replace whole.
pub(crate) struct RcuCell<T> {
    ptr: AtomicPtr<T>,
}

// SAFETY: the cell hands out `&T` to any thread and moves `T` between threads when it retires
// and drops it, so it is shareable when `T` is `Send + Sync`.
unsafe impl<T: Send + Sync> Sync for RcuCell<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for RcuCell<T> {}

impl<T: Send + Sync + 'static> RcuCell<T> {
    /// A cell holding `value`.
    pub(crate) fn new(value: T) -> RcuCell<T> {
        RcuCell {
            ptr: AtomicPtr::new(Box::into_raw(Box::new(value))),
        }
    }

    /// The current value, valid while `pin` lives.
    #[inline(always)]
    pub(crate) fn load<'p>(&self, _pin: &'p Pin<'_>) -> &'p T {
        // SAFETY: the pointer is always a live `Box<T>`: it is only replaced by `replace`, which
        // retires the old box, and retired boxes are freed only when no pinned reader could have
        // loaded them (module docs). `_pin` is held for `'p`.
        unsafe { &*self.ptr.load(Acquire) }
    }

    /// Replaces the value; the old one is freed once no reader can hold it. Writers should be
    /// serialised by the caller when they read-modify-write (the family's writer mutex does).
    pub(crate) fn replace(&self, value: T, domain: &Domain<'_>) {
        let new = Box::into_raw(Box::new(value));
        let old = self.ptr.swap(new, AcqRel);
        let epoch = domain.epoch.fetch_add(1, AcqRel);
        unsafe fn drop_box<T>(p: *mut ()) {
            // SAFETY: `p` came from `Box::into_raw` of a `Box<T>` and is dropped once.
            drop(unsafe { Box::from_raw(p as *mut T) });
        }
        domain.retire(Retired {
            ptr: old as *mut (),
            drop_fn: drop_box::<T>,
            epoch,
        });
    }
}

impl<T> Drop for RcuCell<T> {
    fn drop(&mut self) {
        let p = self.ptr.load(Acquire);
        if !p.is_null() {
            // SAFETY: `&mut self`: no reader can be using the cell; the box is live (see `load`).
            drop(unsafe { Box::from_raw(p) });
        }
        // Make the pointer unusable in any case.
        self.ptr.store(ptr::null_mut(), Relaxed);
    }
}

impl<T: Default + Send + Sync + 'static> Default for RcuCell<T> {
    fn default() -> Self {
        RcuCell::new(T::default())
    }
}

#[cfg(all(test, not(agentcore_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc;

    struct CountsDrops(Arc<StdAtomicUsize>);
    impl Drop for CountsDrops {
        fn drop(&mut self) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    #[test]
    fn a_pinned_reader_delays_reclamation_until_it_unpins() {
        let arena = Arena::new();
        let domain = Domain::new(&arena);
        let drops = Arc::new(StdAtomicUsize::new(0));
        let cell = RcuCell::new(CountsDrops(drops.clone()));
        let reader = arena.lease();
        let pin = domain.pin(reader);
        let seen = cell.load(&pin) as *const CountsDrops;
        cell.replace(CountsDrops(drops.clone()), &domain);
        assert_eq!(
            drops.load(Relaxed),
            0,
            "the pinned reader's value must stay alive"
        );
        assert_eq!(domain.pending(), 1);
        assert!(
            !ptr::eq(seen, cell.load(&pin)),
            "new loads see the new value"
        );
        drop(pin);
        domain.reclaim();
        assert_eq!(drops.load(Relaxed), 1);
        assert_eq!(domain.pending(), 0);
        drop(cell);
        assert_eq!(drops.load(Relaxed), 2);
    }

    #[test]
    fn nested_pins_keep_the_outer_epoch() {
        let arena = Arena::new();
        let domain = Domain::new(&arena);
        let cell = RcuCell::new(1u64);
        let reader = arena.lease();
        let outer = domain.pin(reader);
        let inner = domain.pin(reader);
        drop(inner);
        cell.replace(2, &domain);
        assert_eq!(
            domain.pending(),
            1,
            "the outer pin still protects the old value"
        );
        drop(outer);
        domain.reclaim();
        assert_eq!(domain.pending(), 0);
    }

    #[test]
    fn slow_readers_block_reclamation() {
        let arena = Arena::new();
        let domain = Domain::new(&arena);
        let cell = RcuCell::new(1u64);
        let pin = domain.pin_slow();
        assert_eq!(*cell.load(&pin), 1);
        cell.replace(2, &domain);
        assert_eq!(domain.pending(), 1);
        drop(pin);
        domain.reclaim();
        assert_eq!(domain.pending(), 0);
    }
}
