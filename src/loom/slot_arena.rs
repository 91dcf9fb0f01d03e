//! loom models of the slot arena (`sync::slots`): exclusive blocks leased by one thread at a
//! time and written with plain load + store, stripes written with atomic read-modify-writes by the
//! threads that found no exclusive block, and readers summing over both.
//!
//! Run: `bash .ci/loom` (the models of `src/loom/`, under `--cfg agentcore_loom`).

use std::sync::atomic::Ordering::Relaxed;

use crate::sync::slots::{Arena, Block};
use loom::sync::Arc;
use loom::thread;

/// What the recording fast path does to its own exclusive block: a plain load and store.
fn owner_add(block: &Block, word: u32, v: u64) {
    let w = block.word(word);
    w.store(w.load(Relaxed) + v, Relaxed);
}

fn owner_add_f64(block: &Block, word: u32, v: f64) {
    let w = block.word(word);
    w.store((f64::from_bits(w.load(Relaxed)) + v).to_bits(), Relaxed);
}

fn arena(exclusive: usize, stripes: usize) -> Arc<Arena> {
    Arc::new(Arena::with_shape(8, exclusive, stripes).expect("loom regions always exist"))
}

/// Invariant 4 (lease hand-over): two threads increment their own blocks with plain load+store
/// and then "exit" (release their lease); a third thread leases a block afterwards (it may get a
/// released one and continue from its counts). A concurrent reader only ever sees a value between
/// 0 and the final total, never decreasing, and after all threads are done the sum is exact: no
/// increment is lost through a lease hand-over.
///
/// Mutation caught: releasing the lease with a `Relaxed` store instead of `Release` (in
/// `Arena::release`) lets the late thread continue from a stale count: the final sum is 3, not 5.
#[test]
fn counter_increments_survive_thread_exit_and_block_reuse() {
    loom::model(|| {
        let arena = arena(2, 1);
        let word = arena.alloc(1).unwrap().start();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let arena = arena.clone();
                thread::spawn(move || {
                    let (lease, block) = arena.lease().expect("two blocks for two threads");
                    owner_add(block, word, 1);
                    owner_add(block, word, 1);
                    arena.release(lease);
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
                let (lease, block) = arena.lease().expect("released blocks are leased again");
                owner_add(block, word, 1);
                arena.release(lease);
            })
        };
        late.join().unwrap();
        reader.join().unwrap();
        assert_eq!(arena.read_u64(word), 5);
        assert!(
            arena.block_counts().0 <= 2,
            "blocks are bounded by the arena's shape"
        );
    });
}

/// The memory bound: with one exclusive block and two recording threads, the second finds no
/// block and records into a stripe with atomic adds, racing the first (owner) thread and a
/// reader. No add is lost, the reader sees only values between 0 and the total, the blocks never
/// exceed the shape (one exclusive, one stripe), and once the owner releases its block the other
/// thread can lease it.
#[test]
fn threads_beyond_the_exclusive_blocks_record_exactly_into_stripes() {
    loom::model(|| {
        let arena = arena(1, 1);
        let range = arena.alloc(2).unwrap(); // an integer word and an f64 word
        let (lease, owner) = arena.lease().expect("one exclusive block");
        let other = {
            let arena = arena.clone();
            thread::spawn(move || match arena.lease() {
                // The owner released its block already: this thread leases it.
                Some((lease, block)) => {
                    owner_add(block, range.word(0), 1);
                    owner_add_f64(block, range.word(1), 0.5);
                    arena.release(lease);
                }
                None => {
                    let stripe = arena.assign_stripe();
                    arena.stripe_add_u64(stripe, range.word(0), 1);
                    arena.stripe_add_f64(stripe, range.word(1), 0.5);
                }
            })
        };
        owner_add(owner, range.word(0), 1);
        owner_add_f64(owner, range.word(1), 0.25);
        let seen = arena.read_u64(range.word(0));
        assert!((1..=2).contains(&seen), "read {seen}");
        arena.release(lease);
        other.join().unwrap();
        assert_eq!(arena.read_u64(range.word(0)), 2);
        assert_eq!(arena.read_f64(range.word(1)), 0.75);
        assert!(arena.block_counts().0 <= 1 && arena.block_counts().1 <= 1);
    });
}

/// Invariant (histogram buffer vs scrape): a writer adds to bucket words of its block while a
/// scraper reads the bucket range. Because `_count` is derived from the very bucket values the
/// scrape read, `_count == +Inf` and cumulative monotonicity hold in every interleaving; and the
/// scrape never sees a bucket count above what was written.
#[test]
fn histogram_scrape_is_consistent_with_concurrent_observes() {
    loom::model(|| {
        let arena = arena(1, 1);
        let range = arena.alloc(3).unwrap(); // le=1, +Inf, then the sum word
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || {
                let (lease, block) = arena.lease().unwrap();
                owner_add(block, range.word(0), 1); // observe(0.5)
                owner_add_f64(block, range.word(2), 0.5);
                owner_add(block, range.word(1), 1); // observe(7.0)
                owner_add_f64(block, range.word(2), 7.0);
                arena.release(lease);
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

/// Invariant 3 (freeing): a range freed after its last writer is done is zero in every block, and
/// the next allocation of the same size reuses it from zero, even with a concurrent lease.
#[test]
fn freed_ranges_are_zeroed_before_reuse() {
    loom::model(|| {
        let arena = arena(2, 1);
        let range = arena.alloc(1).unwrap();
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || {
                let (lease, block) = arena.lease().unwrap();
                owner_add(block, range.start(), 3);
                arena.release(lease);
            })
        };
        writer.join().unwrap();
        let other = {
            let arena = arena.clone();
            thread::spawn(move || {
                if let Some((lease, _)) = arena.lease() {
                    arena.release(lease);
                }
            })
        };
        arena.free(range);
        let again = arena.alloc(1).unwrap();
        assert_eq!(again, range);
        assert_eq!(arena.read_u64(again.start()), 0);
        other.join().unwrap();
    });
}
