//! A thread's lease of an exclusive block of the global arena, and its stripe: the
//! thread-locals the recording fast path reads (`LOCAL`, `STRIPE`), how a thread takes its
//! lease (`lease_for_thread`) and how the lease ends at its exit (`end_lease`, from a
//! `sync::thread_exit` key, else a thread-local destructor). See the parent module's
//! "Recording" and "Ownership and thread exit".

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::Ordering::Relaxed;

use super::{global, Arena, Block};
use crate::sync::thread_exit::exit_hook;
use crate::sync::AtomicU64;

thread_local! {
    /// The base of this thread's exclusive block, or null. It has no destructor, so reading it is
    /// a plain thread-local load with no lazy-initialisation check: this is the hot path.
    pub(super) static LOCAL: Cell<*const AtomicU64> = const { Cell::new(ptr::null()) };
    /// This thread's stripe (`usize::MAX` until assigned); no destructor, usable at any time.
    pub(super) static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    /// This thread's lease of an exclusive block: [`NO_LEASE`] until it takes one ([`TAKING`]
    /// while it does), [`ENDED`] once it has ended (the thread is exiting; it records to a stripe from then on). No
    /// destructor, usable at any time.
    pub(super) static LEASED: Cell<usize> = const { Cell::new(NO_LEASE) };
}

/// [`LEASED`] before the thread takes a lease.
const NO_LEASE: usize = usize::MAX;
/// [`LEASED`] once the thread's lease has ended.
pub(super) const ENDED: usize = usize::MAX - 1;
/// [`LEASED`] while the thread takes its lease (see [`lease_for_thread`]).
const TAKING: usize = usize::MAX - 2;

exit_hook! {
    /// Ends the thread's lease at its exit, after every thread-local destructor of the thread,
    /// so that recordings in those keep the block; also for a lease first taken in a
    /// `pthread_key` destructor, whose thread-local destructor glibc would never run
    /// (`sync::thread_exit`).
    static EXIT runs end_lease;
}

/// Ends the calling thread's lease: it records to a stripe from now on, and its block goes
/// back to the arena.
fn end_lease() {
    let lease = LEASED.with(|l| l.replace(ENDED));
    // Later recordings on this thread (from destructors that run after this) go to a stripe;
    // `LOCAL` has no destructor, so it is still accessible here. Cleared before the release:
    // the thread never writes the block once another may lease it (invariant 1).
    LOCAL.with(|l| l.set(ptr::null()));
    if lease < TAKING {
        if let Some(arena) = global() {
            arena.release(lease);
        }
    }
}

/// The global arena's words through this thread's exclusive block, leasing one if a block is
/// idle; `None` when every block is leased, the thread's lease has ended, or its end cannot be
/// registered (thread-local storage torn down).
#[cold]
pub(super) fn lease_for_thread(arena: &'static Arena) -> Option<*const AtomicU64> {
    if arena.idle.load(Relaxed) == 0 || LEASED.with(Cell::get) != NO_LEASE {
        return None;
    }
    if !EXIT.register() {
        return None;
    }
    // A recording made on this thread while it takes the lease (by a global allocator that
    // records, when the block is first created) finds `TAKING` and goes to a stripe. It
    // leased a block of its own before, which this call's lease then overwrote: leased for
    // good, and a chain of them, one per block created, took every idle block at once
    // (`tests/reentrant_allocator.rs`).
    LEASED.with(|l| l.set(TAKING));
    let Some((lease, block)) = arena.lease() else {
        LEASED.with(|l| l.set(NO_LEASE));
        return None;
    };
    LEASED.with(|l| l.set(lease));
    let base = block.region_base();
    LOCAL.with(|l| l.set(base));
    Some(base)
}

impl Block {
    #[cfg(not(agentcore_loom))]
    fn region_base(&self) -> *const AtomicU64 {
        self.region.base()
    }

    #[cfg(agentcore_loom)]
    fn region_base(&self) -> *const AtomicU64 {
        self.region.words.as_ptr()
    }
}

/// This thread's stripe of the global arena.
#[inline]
pub(super) fn thread_stripe(arena: &Arena) -> usize {
    STRIPE.with(|s| {
        let mut stripe = s.get();
        if stripe == usize::MAX {
            stripe = arena.assign_stripe();
            s.set(stripe);
        }
        stripe
    })
}
