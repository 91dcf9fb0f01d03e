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
/// old `LeaseGuard::drop` behaviour) lets thread 2 lease thread 1's record; the two threads then
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
