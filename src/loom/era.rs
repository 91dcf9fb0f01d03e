//! loom models of era-based reclamation (`sync::era`), with real reclamation inside the model
//! (under loom `RECLAIM_BATCH` is 1: every retire scans the slots and frees what it may), in its
//! symmetric-fence form (under loom both sides use `fence(SeqCst)`; on Linux the reader's fence
//! becomes a compiler fence and the reclaimer's a `membarrier(2)`, which is at least as strong for
//! the reclaimer).
//!
//! Run: `bash .ci/loom` (the models of `src/loom/`, under `--cfg agentcore_loom`).

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use crate::sync::era::Domain;
use loom::sync::atomic::{AtomicBool, AtomicPtr, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// An object that records its own drop in a flag outside itself.
struct Tracked {
    id: usize,
    birth: u64,
    dropped: Arc<[AtomicBool; 4]>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert!(!self.dropped[self.id].swap(true, SeqCst), "dropped twice");
    }
}

fn leak_domain() -> &'static Domain {
    // A domain per execution; loom objects must not outlive it, and nothing touches a leaked one
    // again.
    Box::leak(Box::new(Domain::new()))
}

/// The protocol's safety property: a pointer a reader validated is never freed while its guard
/// lives, whatever the interleaving with a writer that publishes two new values and retires the
/// old ones (each retire reclaims). The writer first retires an unrelated object, so the values it
/// publishes are born at later eras than the reader's guard: only validation (moving the guard to
/// the current era before using a pointer born after it) protects them. After everyone is done
/// and a final reclaim runs, every retired object has been freed exactly once.
///
/// Mutation caught: a reader that uses the pointer without `Guard::validate` (loads once after
/// the guard starts) fails "value 1 freed while its guard lives": value 1 is born at era 2, the
/// guard holds era 1, and the second retire frees it.
#[test]
fn a_validated_pointer_is_never_freed_while_its_guard_lives() {
    loom::model(|| {
        let domain = leak_domain();
        let dropped = Arc::new([
            AtomicBool::new(false),
            AtomicBool::new(false),
            AtomicBool::new(false),
            AtomicBool::new(false),
        ]);
        let make = |id| {
            Box::into_raw(Box::new(Tracked {
                id,
                birth: domain.era(),
                dropped: dropped.clone(),
            }))
        };
        let first = make(0);
        let cell = Arc::new(AtomicPtr::new(first));
        let reader = {
            let (cell, dropped) = (cell.clone(), dropped.clone());
            thread::spawn(move || {
                let mut guard = domain.guard();
                let p = loop {
                    let p = cell.load(Acquire);
                    if guard.validate() {
                        break p;
                    }
                };
                // SAFETY: validated under `guard` (the property under test).
                let id = unsafe { (*p).id };
                assert!(
                    !dropped[id].load(SeqCst),
                    "value {id} freed while its guard lives"
                );
                thread::yield_now();
                assert!(
                    !dropped[id].load(SeqCst),
                    "value {id} freed while its guard lives"
                );
                drop(guard);
            })
        };
        // An unrelated retire moves the era on, so the values below are born after the reader's
        // guard may have started.
        let unrelated = make(3);
        // SAFETY: never published, retired once.
        unsafe { domain.retire(unrelated, (*unrelated).birth) };
        for id in 1..3 {
            let next = make(id);
            let old = cell.swap(next, AcqRel);
            // SAFETY: `old` is unreachable after the swap and retired once; its birth was read
            // before it was published.
            unsafe { domain.retire(old, (*old).birth) };
        }
        reader.join().unwrap();
        domain.reclaim();
        assert_eq!(domain.stats().pending, 0, "everything retired is freed");
        assert!(dropped[0].load(SeqCst) && dropped[1].load(SeqCst) && dropped[3].load(SeqCst));
        assert!(!dropped[2].load(SeqCst), "the current value is alive");
        // SAFETY: the current value, unreachable now; freed once.
        drop(unsafe { Box::from_raw(cell.load(Relaxed)) });
    });
}

/// Finding 1 of the soundness review: a record never changes hands while one of its slots is in
/// use. Thread 1 "exits" (ends its record's lease) while a guard of that record is still held (as
/// a guard kept in another thread-local, dropped later by its destructor); thread 2 meanwhile
/// leases a record and holds two nested guards. Thread 2's outer guard must keep its era however
/// thread 1's late guard drop interleaves with it.
///
/// Mutation caught: `Domain::end_lease` returning the record although guards are outstanding (the
/// old behaviour of the lease's thread-local destructor) lets thread 2 lease thread 1's record; the two threads then
/// lose each other's updates of its slot bitmap, thread 2's inner guard takes the slot its outer
/// guard uses, and dropping it clears the outer guard's era ("outer guard lost its era").
#[test]
fn a_record_is_never_handed_over_while_a_guard_of_it_lives() {
    loom::model(|| {
        let domain = leak_domain();
        let exiting = thread::spawn(move || {
            let record = domain.lease_record();
            let late = domain.guard_in(record);
            domain.end_lease(record); // the thread's record lease ends first...
            drop(late); // ...and a guard in another thread-local is dropped after it
        });
        let other = thread::spawn(move || {
            let record = domain.lease_record();
            let outer = domain.guard_in(record);
            let (slot, era) = outer.slot_and_era();
            let inner = domain.guard_in(record);
            drop(inner);
            assert_eq!(
                record.slot_era(slot),
                era,
                "outer guard lost its era to another guard"
            );
            drop(outer);
            domain.end_lease(record);
        });
        exiting.join().unwrap();
        other.join().unwrap();
    });
}

/// Nested guards on one thread keep their own eras; guards beyond the record's slots lease a
/// record of their own; a reclaimer running meanwhile frees what none of them protects and
/// keeps what one does.
#[test]
fn nested_and_overflowing_guards_each_protect_their_era() {
    loom::model(|| {
        let domain = leak_domain();
        let dropped = Arc::new([
            AtomicBool::new(false),
            AtomicBool::new(false),
            AtomicBool::new(false),
            AtomicBool::new(false),
        ]);
        let old = Box::into_raw(Box::new(Tracked {
            id: 0,
            birth: domain.era(),
            dropped: dropped.clone(),
        }));
        let record = domain.lease_record();
        let guards: Vec<_> = (0..crate::sync::era::SLOTS + 1)
            .map(|_| domain.guard_in(record))
            .collect();
        let reclaimer = {
            let dropped = dropped.clone();
            thread::spawn(move || {
                // SAFETY: never published; retired once.
                unsafe { domain.retire(old, (*old).birth) };
                assert!(!dropped[0].load(SeqCst), "freed under nested guards");
            })
        };
        reclaimer.join().unwrap();
        drop(guards);
        domain.end_lease(record);
        domain.reclaim();
        assert!(dropped[0].load(SeqCst));
    });
}

/// An object whose drop writes its data, so that loom checks every read of it against its free.
struct Written {
    birth: u64,
    data: loom::cell::UnsafeCell<u64>,
}

impl Drop for Written {
    fn drop(&mut self) {
        // SAFETY: the drop has the object to itself (loom checks that it does).
        self.data.with_mut(|p| unsafe { *p = 0xdead });
    }
}

/// How the reader of [`leaving_an_era`] leaves the era under which it read.
#[derive(Clone, Copy)]
enum Leave {
    /// Its guard moves on (`validate` finds a newer era), as a probe or a lookup-cache fill does.
    Validate,
    /// Its guard drops and a new guard reuses the slot.
    Reuse,
}

/// The reader reads an object under one era, then leaves that era while a writer swaps the object
/// out, retires and reclaims it: the reader's read must happen before the free (the slot's store
/// that leaves the era is a release, the reclaimer's load of it an acquire; `sync::era`, "Leaving
/// an era").
///
/// The race needs three preemptions, one more than `.ci/loom`'s default bound: the model sets
/// its own (at 2 it passes with the `Relaxed` stores below; it runs in well under a second).
fn leaving_an_era(leave: Leave) {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(4);
    model.check(move || {
        let domain = leak_domain();
        let make = |v| {
            Box::into_raw(Box::new(Written {
                birth: domain.era(),
                data: loom::cell::UnsafeCell::new(v),
            }))
        };
        let root = Arc::new(AtomicPtr::new(make(1)));
        let reader = {
            let root = root.clone();
            thread::spawn(move || {
                let mut guard = domain.guard();
                let p = loop {
                    let p = root.load(Acquire);
                    if guard.validate() {
                        break p;
                    }
                };
                // SAFETY: validated under `guard`.
                let v = unsafe { (*p).data.with(|d| *d) };
                assert_ne!(v, 0xdead);
                match leave {
                    Leave::Validate => {
                        let _ = guard.validate();
                        drop(guard);
                    }
                    Leave::Reuse => {
                        drop(guard);
                        let next = domain.guard();
                        thread::yield_now();
                        drop(next);
                    }
                }
            })
        };
        let old = root.swap(make(2), AcqRel);
        // SAFETY: unreachable after the swap, retired once.
        unsafe { domain.retire(old, (*old).birth) };
        domain.reclaim();
        reader.join().unwrap();
        // SAFETY: the last value, never retired; nobody else holds it.
        drop(unsafe { Box::from_raw(root.load(Acquire)) });
    });
}

/// Mutation caught (found by a review): `Guard::validate` storing the new era `Relaxed` fails
/// with "Causality violation: Concurrent read and write accesses to UnsafeCell" in `Written`'s
/// drop, called from `Domain::reclaim`.
#[test]
fn reads_under_an_era_a_guard_moved_on_from_happen_before_the_free() {
    leaving_an_era(Leave::Validate);
}

/// Mutation caught (found by a review): a new guard storing its era `Relaxed` in a reused slot
/// fails the same way.
#[test]
fn reads_under_a_dropped_guard_happen_before_the_free_when_its_slot_is_reused() {
    leaving_an_era(Leave::Reuse);
}
