//! loom model of the span log ring (`ShardedRing`): two writers wrapping around a
//! two-slot shard while a reader scans it.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p agentcore-telemetry-loom
//! --release --target-dir target-loom`
//!
//! Invariants checked in every interleaving:
//! 1. No data race on a slot's value (loom's `UnsafeCell` tracking: only the holder of the
//!    slot's try-lock touches it).
//! 2. Accounting: every pushed value is exactly one of: still in the ring at the end,
//!    overwritten (counted in `overwritten`), or handed back as `Busy` (counted in
//!    `dropped`, and returned intact to the writer).
//! 3. A concurrent reader sees only values that were pushed, each at most once, and never
//!    more than the capacity.
//! 4. No value is leaked or dropped twice (values are loom `Arc`s, whose leaks loom reports;
//!    a double drop would be a use-after-free loom catches).
#![cfg(loom)]

use agentcore_telemetry::tracer::{Push, ShardedRing};
use loom::sync::Arc;
use loom::thread;

fn writer(ring: &ShardedRing<Arc<u64>>, values: [u64; 2]) -> u64 {
    let mut busy = 0;
    for v in values {
        let mut value = Some(Arc::new(v));
        match ring.push(0, &mut value) {
            Push::Busy => {
                busy += 1;
                assert_eq!(
                    value.as_deref(),
                    Some(&v),
                    "a busy push hands the value back"
                );
            }
            Push::Stored | Push::Overwrote => assert!(value.is_none()),
        }
    }
    busy
}

#[test]
fn concurrent_writes_wrap_around_and_read() {
    loom::model(|| {
        let ring = Arc::new(ShardedRing::<Arc<u64>>::new(2, 1));
        assert_eq!(ring.capacity(), 2);

        let w1 = {
            let ring = ring.clone();
            thread::spawn(move || writer(&ring, [1, 2]))
        };
        let w2 = {
            let ring = ring.clone();
            thread::spawn(move || writer(&ring, [3, 4]))
        };

        // Concurrent reader.
        let mut seen = Vec::new();
        let skipped = ring.for_each(|v| seen.push(**v));
        assert!(seen.len() + skipped <= 2);
        assert!(seen.iter().all(|v| (1..=4).contains(v)));
        let read = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), read, "each value seen at most once");

        let busy = w1.join().unwrap() + w2.join().unwrap();

        // Quiescent: nothing is busy, and every push is accounted for.
        let mut stored = Vec::new();
        assert_eq!(ring.for_each(|v| stored.push(**v)), 0);
        assert_eq!(ring.dropped(), busy);
        assert_eq!(stored.len() as u64 + ring.overwritten() + ring.dropped(), 4);
        let mut unique = stored.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), stored.len(), "no value stored twice");
    });
}
