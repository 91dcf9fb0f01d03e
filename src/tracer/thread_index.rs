//! A recording thread's process-wide index, which picks its shard of every tracer's span log:
//! the first indices each *own* a shard and advance its cursor with a plain load and store, any
//! other index shares one of the other shards with a locked read-modify-write (`sync::ring`,
//! "Cursor").
//!
//! # Structure
//! A thread takes its index the first time it claims a span-log slot: the lowest index below
//! [`REUSED`] that no live thread holds (a bitmap, one bit per index, set by the holder), or,
//! when all of those are held, the next index above them never handed out (those are not
//! reused; they only spread such threads over the shared shards). It keeps the index in
//! `INDEX`, a destructor-free thread-local, so that reading it is one thread-pointer-relative
//! load on every claim; and the claim registers the thread's lease, whose end gives the index
//! back when the thread exits: [`EXIT`], an `ExitHook` whose key runs after every
//! thread-local destructor, also for a lease taken in one of those or in a `pthread_key`
//! destructor (`sync::thread_exit`); where the key cannot be armed, its fallback thread-local
//! destructor. So a process whose threads come and go (a blocking pool, a thread per job)
//! keeps its owned shards in use: with indices handed out once and never again, the first
//! threads to record kept the owned shards after they exited, holding their last spans for
//! good, and every later thread crowded into the shared half: half the log's capacity, and a
//! locked instruction per span (`tests/tracer_thread_churn.rs`).
//!
//! Taking and giving back are lock-free and allocate nothing themselves (registering the
//! lease, once per thread, is the C library's: glibc's `pthread_setspecific` allocates for a
//! key past its first 32, its `__cxa_thread_atexit_impl` always): the global allocator, or a
//! thread-local destructor, may record spans itself (it then finds `INDEX` already set, and
//! takes no second index).
//!
//! # Invariants
//! 1. An index is held by at most one live thread at a time: a thread takes it by setting its
//!    bit (a compare-and-swap from clear), and only the end of that thread's lease clears
//!    it, after setting the thread's `INDEX` to [`NO_THREAD_INDEX`]. An index from above
//!    [`REUSED`] is handed out once.
//! 2. A thread whose lease has ended, that could not register one (the key not armed, and
//!    the thread-local lease already destroyed), or that found the indices exhausted, holds
//!    [`NO_THREAD_INDEX`] for the rest of its life and never takes an index again: it writes
//!    to a shared shard. While it takes one, it holds [`NO_THREAD_INDEX`] too (a span recorded
//!    meanwhile, by the allocator say, takes none).
//! 3. A thread takes the lowest index whose bit it sees clear, and keeps it: one that took a
//!    higher index while a lower one's holder was still exiting keeps the higher one after the
//!    lower one is free (`thread::scope` returns before its threads' thread-local destructors
//!    run: `tests/tracer_thread_churn.rs`). So the live recording threads hold the
//!    lowest indices only when each took its index after the threads before it were gone.
//!
//! # Limits
//! A lease registered where its end never runs keeps its index held for good: the key armed
//! during glibc's last destructor round (`sync::thread_exit`, invariant 1), or the
//! thread-local lease (where the key cannot be armed) registered after the thread's
//! thread-local destructors have run, by a first sampled span recorded from a `pthread_key`
//! destructor (the case review helper-93 reproduced, which the key ends:
//! `tests/tracer_thread_key_exit.rs`).
//!
//! # Orderings
//! The bit hands an index over: the exiting holder's last cursor store precedes, in program
//! order, its lease's end, the `Release` clear of the bit; the next holder's `Acquire`
//! compare-and-swap reads that clear, so its plain cursor load on the owned shard sees the
//! store (the hand-over of the slot arena's block leases, `sync::slots`). A cursor that two
//! threads advanced with plain stores at once could lose a claim or move backwards (the
//! export accounting of `sync::ring`, "Cursor"; never the records, which the slot locks
//! protect).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::sync::ring::NO_THREAD_INDEX;
use crate::sync::thread_exit::exit_hook;

/// `INDEX` of a thread that has not asked yet.
const UNSET: usize = NO_THREAD_INDEX - 1;

/// Indices below this are given back and taken again (16 words of bits). Far more than the
/// owned shards of any tracer but one configured with thousands of shards, whose owned shards
/// beyond these are then owned once each.
const REUSED: usize = 1024;

thread_local! {
    /// This thread's index, [`UNSET`] until it first asks, [`NO_THREAD_INDEX`] once it has
    /// none for good (invariant 2).
    static INDEX: Cell<usize> = const { Cell::new(UNSET) };
}

exit_hook! {
    /// Gives the index back at thread exit (registered when the thread takes one): after the
    /// thread's thread-local destructors (`sync::thread_exit`).
    static EXIT runs end_lease;
}

/// The process's indices (`std` atomics, not `crate::sync`'s: loom models no tracer).
static INDICES: Indices<{ REUSED / 64 }> = Indices::new();

/// Which of the first `64 * WORDS` indices live threads hold, and the next index above them.
struct Indices<const WORDS: usize> {
    held: [AtomicU64; WORDS],
    next: AtomicUsize,
}

impl<const WORDS: usize> Indices<WORDS> {
    const fn new() -> Self {
        Indices {
            held: [const { AtomicU64::new(0) }; WORDS],
            next: AtomicUsize::new(64 * WORDS),
        }
    }

    /// The lowest index whose bit is clear, now held; else one never handed out; else
    /// [`NO_THREAD_INDEX`].
    fn take(&self) -> usize {
        for (w, word) in self.held.iter().enumerate() {
            let mut bits = word.load(Ordering::Relaxed);
            while bits != u64::MAX {
                let bit = (!bits).trailing_zeros();
                // `Acquire`: the hand-over (see "Orderings").
                match word.compare_exchange_weak(
                    bits,
                    bits | 1 << bit,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return 64 * w + bit as usize,
                    Err(now) => bits = now,
                }
            }
        }
        // Saturating at `UNSET`: an index is never handed out twice.
        self.next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| {
                (i < UNSET).then_some(i + 1)
            })
            .unwrap_or(NO_THREAD_INDEX)
    }

    /// Gives `index` back, if it is one that is reused.
    fn give_back(&self, index: usize) {
        if let Some(word) = self.held.get(index / 64) {
            // `Release`: the hand-over (see "Orderings").
            word.fetch_and(!(1 << (index % 64)), Ordering::Release);
        }
    }
}

/// Ends the calling thread's lease: it holds no index from now on, and its index goes back.
fn end_lease() {
    // Invariant 1: the thread holds no index before the index goes back. `INDEX` has no
    // destructor: it is there until the thread is gone.
    let index = INDEX.with(|c| c.replace(NO_THREAD_INDEX));
    if index < UNSET {
        INDICES.give_back(index);
    }
}

/// Registers the calling thread's lease, which ends at its exit; false if it cannot be.
/// Where the key cannot be armed (`sync::thread_exit`), the hook's thread-local destructor
/// cannot be registered once it is destroyed (the thread could not give the index back); see
/// "Limits" for when it is registered and never run.
fn register_lease() -> bool {
    EXIT.register()
}

/// The calling thread's index: taken on its first call (the lowest free one), kept until the
/// thread exits; [`NO_THREAD_INDEX`] when it has none (invariant 2).
#[inline]
pub(crate) fn thread_index() -> usize {
    let index = INDEX.with(Cell::get);
    if index != UNSET {
        return index;
    }
    take_index()
}

#[cold]
#[inline(never)]
fn take_index() -> usize {
    // None while taking one (invariant 2), and none for good if no lease can be registered:
    // the thread could not give the index back.
    INDEX.with(|c| c.set(NO_THREAD_INDEX));
    let index = match register_lease() {
        true => INDICES.take(),
        false => NO_THREAD_INDEX,
    };
    INDEX.with(|c| c.set(index));
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_held(index: usize) -> bool {
        INDICES.held[index / 64].load(Ordering::Relaxed) & 1 << (index % 64) != 0
    }

    /// Invariants 1 and 3 on indices of their own (the process's are shared with every other
    /// test's threads): the lowest clear bit first, then indices above them, never reused.
    #[test]
    fn the_lowest_free_index_first_then_new_ones() {
        let indices = Indices::<2>::new();
        let first: Vec<usize> = (0..128).map(|_| indices.take()).collect();
        assert_eq!(first, (0..128).collect::<Vec<_>>());
        assert_eq!(
            [indices.take(), indices.take()],
            [128, 129],
            "beyond the bits"
        );
        indices.give_back(70);
        indices.give_back(3);
        indices.give_back(129); // not one that is reused
        assert_eq!(
            [indices.take(), indices.take(), indices.take()],
            [3, 70, 130]
        );
        indices.next.store(UNSET, Ordering::Relaxed);
        assert_eq!(indices.take(), NO_THREAD_INDEX, "exhausted");
    }

    /// A thread keeps its index while it lives; a lookup from a thread-local destructor gets
    /// that index while the lease lives (with glibc, always: the key lease ends after every
    /// thread-local destructor) and none once the lease has ended (invariant 1: the thread
    /// holds nothing it gave back), never a new one; a thread with none for good never takes
    /// one (invariant 2).
    #[test]
    fn a_thread_keeps_its_index_and_never_takes_a_second() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
        static HELD: AtomicUsize = AtomicUsize::new(UNSET);
        static LATE: AtomicUsize = AtomicUsize::new(UNSET);
        static LEASE_ENDED: AtomicBool = AtomicBool::new(false);
        struct LateLookup;
        impl Drop for LateLookup {
            fn drop(&mut self) {
                if cfg!(not(all(target_os = "linux", target_env = "gnu"))) {
                    LEASE_ENDED.store(EXIT.fallback_destroyed(), Relaxed);
                }
                LATE.store(thread_index(), Relaxed);
            }
        }
        thread_local! { static LATE_LOOKUP: LateLookup = const { LateLookup }; }
        std::thread::spawn(|| {
            // Registered before a thread-local lease: its destructor runs after the lease's
            // where `std` runs them in reverse order of registration (glibc does).
            LATE_LOOKUP.with(|_| ());
            let index = thread_index();
            assert!(index < UNSET);
            assert_eq!(thread_index(), index, "kept");
            assert!(is_held(index), "held, not free");
            HELD.store(index, Relaxed);
        })
        .join()
        .unwrap();
        let (held, late) = (HELD.load(Relaxed), LATE.load(Relaxed));
        match LEASE_ENDED.load(Relaxed) {
            true => assert_eq!(late, NO_THREAD_INDEX, "after the lease ended"),
            false => assert_eq!(late, held, "while the lease lives"),
        }
        std::thread::spawn(|| {
            assert!(thread_index() < UNSET);
            end_lease();
            assert_eq!(thread_index(), NO_THREAD_INDEX, "after the lease ended");
            assert_eq!(INDEX.with(Cell::get), NO_THREAD_INDEX, "none for good");
        })
        .join()
        .unwrap();
        std::thread::spawn(|| {
            INDEX.with(|c| c.set(NO_THREAD_INDEX));
            assert_eq!(thread_index(), NO_THREAD_INDEX, "none for good");
            assert_eq!(INDEX.with(Cell::get), NO_THREAD_INDEX);
        })
        .join()
        .unwrap();
    }

    /// Invariant 1 under churn: threads that come and go in waves never hold one index at the
    /// same time (each wave's threads are all alive together), and a later wave takes the
    /// indices an earlier one gave back instead of ever larger ones.
    #[test]
    fn live_threads_never_share_an_index() {
        use std::collections::HashSet;
        use std::sync::{Barrier, Mutex};
        const WAVE: usize = 8;
        let mut largest = Vec::new();
        for _ in 0..20 {
            let held = Mutex::new(HashSet::new());
            let all_in = Barrier::new(WAVE);
            std::thread::scope(|s| {
                for _ in 0..WAVE {
                    s.spawn(|| {
                        let index = thread_index();
                        let first = held.lock().unwrap().insert(index);
                        all_in.wait(); // before any assertion: a panic here would strand the wave
                        assert!(index < UNSET);
                        assert!(first, "{index} held twice");
                    });
                }
            });
            largest.push(held.into_inner().unwrap().into_iter().max().unwrap());
        }
        // Other tests' threads take indices meanwhile, so the bound is loose; with indices never
        // reused, the 20 waves would reach at least 159.
        assert!(
            largest.iter().max().unwrap() < &(20 * WAVE - 1),
            "{largest:?}"
        );
    }
}
