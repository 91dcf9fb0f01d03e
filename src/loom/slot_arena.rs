//! loom models of the per-thread slot arena (`sync::slots`): the sharded counter and the
//! histogram buffer are both words of it, so these models cover their merge-on-read.
//!
//! Run: `bash .ci/loom` (the models of `src/loom/`, under `--cfg agentcore_loom`).

use crate::sync::slots::Arena;
use loom::sync::Arc;
use loom::thread;

/// Invariant (sharded counter, increment / read / thread exit): two threads increment their own
/// blocks with plain load+store and then "exit" (release their lease); a third thread leases a
/// block afterwards (it may get a released one and continue from its counts). A concurrent reader
/// only ever sees a value between 0 and the final total, never decreasing, and after all threads
/// are done the sum is exact: no increment is lost through a lease hand-over.
#[test]
fn counter_increments_survive_thread_exit_and_block_reuse() {
    loom::model(|| {
        let arena = Arc::new(Arena::new());
        let word = arena.alloc(1).unwrap().start();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let arena = arena.clone();
                thread::spawn(move || {
                    let block = arena.lease();
                    block.owner_add_u64_alloc(word, 1);
                    block.owner_add_u64_alloc(word, 1);
                    arena.release(block);
                })
            })
            .collect();
        let reader = {
            let arena = arena.clone();
            thread::spawn(move || {
                let a = arena.read_u64(word);
                let b = arena.read_u64(word);
                assert!(
                    a <= b && b <= 5,
                    "reads went backwards or overshot: {a} then {b}"
                );
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        // A new thread after the others exited: it reuses a released block and adds to it.
        let late = {
            let arena = arena.clone();
            thread::spawn(move || {
                let block = arena.lease();
                block.owner_add_u64_alloc(word, 1);
                arena.release(block);
            })
        };
        late.join().unwrap();
        reader.join().unwrap();
        assert_eq!(arena.read_u64(word), 5);
        assert!(
            arena.block_count() <= 2,
            "blocks are bounded by concurrent threads"
        );
    });
}

/// Invariant (histogram buffer vs scrape): a writer adds to bucket words of its block while a
/// scraper reads the bucket range. Because `_count` is derived from the very bucket values the
/// scrape read, `_count == +Inf` and cumulative monotonicity hold in every interleaving; and the
/// scrape never sees a bucket count above what was written.
#[test]
fn histogram_scrape_is_consistent_with_concurrent_observes() {
    loom::model(|| {
        let arena = Arc::new(Arena::new());
        let range = arena.alloc(3).unwrap(); // le=1, +Inf, then the sum word
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || {
                let block = arena.lease();
                block.owner_add_u64_alloc(range.word(0), 1); // observe(0.5)
                block.owner_add_f64_alloc(range.word(2), 0.5);
                block.owner_add_u64_alloc(range.word(1), 1); // observe(7.0)
                block.owner_add_f64_alloc(range.word(2), 7.0);
                arena.release(block);
            })
        };
        let mut counts = [0u64; 2];
        arena.read_range_u64(range, &mut counts);
        let cumulative = [counts[0], counts[0] + counts[1]];
        let count = cumulative[1];
        assert!(cumulative[0] <= cumulative[1]);
        assert_eq!(count, cumulative[1], "_count equals the +Inf bucket");
        assert!(counts[0] <= 1 && counts[1] <= 1);
        writer.join().unwrap();
        arena.read_range_u64(range, &mut counts);
        assert_eq!(counts, [1, 1]);
        assert_eq!(arena.read_f64(range.word(2)), 7.5);
    });
}

/// Invariant (freeing): a range freed after its last writer is done is zero in every block, and
/// the next allocation of the same length reuses it from zero, even with a concurrent lease.
#[test]
fn freed_ranges_are_zeroed_before_reuse() {
    loom::model(|| {
        let arena = Arc::new(Arena::new());
        let range = arena.alloc(1).unwrap();
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || {
                let block = arena.lease();
                block.owner_add_u64_alloc(range.start(), 3);
                arena.release(block);
            })
        };
        writer.join().unwrap();
        let other = {
            let arena = arena.clone();
            thread::spawn(move || {
                let block = arena.lease();
                arena.release(block);
            })
        };
        arena.free(range);
        let again = arena.alloc(1).unwrap();
        assert_eq!(again, range);
        assert_eq!(arena.read_u64(again.start()), 0);
        other.join().unwrap();
    });
}

/// Invariant 2 (the shared fallback block): threads whose thread-local storage is already torn
/// down (a recording from another thread-local's destructor) record into the arena's one shared
/// block with atomic read-modify-writes. Two such threads add integers and floats at once, racing
/// to allocate the shared block's chunk, while an owner thread adds to its own block and a
/// reader sums: no add is lost (the losing chunk allocation is freed, not used), and the reader
/// only sees values between zero and the total.
#[test]
fn shared_block_adds_from_torn_down_threads_are_exact() {
    loom::model(|| {
        let arena = Arc::new(Arena::new());
        let range = arena.alloc(2).unwrap(); // an integer word and an f64 word
        let shared: Vec<_> = (0..2)
            .map(|_| {
                let arena = arena.clone();
                thread::spawn(move || {
                    arena.shared_add_u64(range.word(0), 1);
                    arena.shared_add_f64(range.word(1), 0.5);
                })
            })
            .collect();
        let owner = arena.lease();
        owner.owner_add_u64_alloc(range.word(0), 1);
        let seen = arena.read_u64(range.word(0));
        assert!((1..=3).contains(&seen), "read {seen}");
        for t in shared {
            t.join().unwrap();
        }
        assert_eq!(arena.read_u64(range.word(0)), 3);
        assert_eq!(arena.read_f64(range.word(1)), 1.0);
        arena.release(owner);
    });
}
