//! loom model of the negative-value mark of a histogram's or summary's sum
//! (`primitives::counter_sum`) over the slot arena's lease hand-over.

use std::sync::atomic::Ordering::Relaxed;

use crate::primitives::counter_sum::CounterSum;
use crate::sync::slots::{Arena, Block};
use loom::sync::Arc;
use loom::thread;

/// What the recording fast path does to its own exclusive block: a plain load and store.
fn owner_add_f64(block: &Block, word: u32, v: f64) {
    let w = block.word(word);
    w.store((f64::from_bits(w.load(Relaxed)) + v).to_bits(), Relaxed);
}

/// One thread records 10 then -5 (marking the sum before the -5) into its exclusive block (a
/// stripe if the other holds it) and exits; a second leases the block after it and records 1
/// (no mark: positive). A scrape whose reading includes the -5 (5, or 6 once the second thread
/// added its 1) must see the mark: a sum that fell is never exposed. The second thread's store
/// is in no release sequence of the first's (a plain store, not a read-modify-write), so
/// reading 6 synchronises only through the `Release` fence `Arena::lease` issues.
#[test]
fn a_sum_read_through_a_reused_block_sees_the_mark() {
    loom::model(|| {
        let arena = Arc::new(Arena::with_shape(8, 1, 1).expect("loom regions always exist"));
        let word = arena.alloc(1).unwrap().start();
        let sum = Arc::new(CounterSum::default());
        let record = move |arena: &Arena, sum: &CounterSum, v: f64| {
            sum.record(v);
            match arena.lease() {
                Some((lease, block)) => {
                    owner_add_f64(block, word, v);
                    arena.release(lease);
                }
                None => arena.stripe_add_f64(0, word, v),
            }
        };
        let first = {
            let (arena, sum) = (arena.clone(), sum.clone());
            thread::spawn(move || match arena.lease() {
                Some((lease, block)) => {
                    sum.record(10.0);
                    owner_add_f64(block, word, 10.0);
                    sum.record(-5.0);
                    owner_add_f64(block, word, -5.0);
                    arena.release(lease);
                }
                // The second thread holds the block: both values through a stripe.
                None => {
                    sum.record(10.0);
                    arena.stripe_add_f64(0, word, 10.0);
                    sum.record(-5.0);
                    arena.stripe_add_f64(0, word, -5.0);
                }
            })
        };
        let second = {
            let (arena, sum) = (arena.clone(), sum.clone());
            thread::spawn(move || record(&arena, &sum, 1.0))
        };
        // A thread of its own: the model's main thread would read before the others ran.
        let scrape = {
            let (arena, sum) = (arena.clone(), sum.clone());
            thread::spawn(move || {
                let read = arena.read_f64(word);
                (read, sum.exposable(read))
            })
        };
        let (read, exposable) = scrape.join().unwrap();
        // 5 or 6 (in whichever words): exactly the readings that include the -5.
        if read == 5.0 || read == 6.0 {
            assert!(!exposable, "a sum that fell to {read} is exposed");
        }
        first.join().unwrap();
        second.join().unwrap();
    });
}
