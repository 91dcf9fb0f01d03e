//! loom model of the span log ring (`ShardedRing`): two writers wrapping around a
//! two-slot shard while a reader scans it, with `push` (move a value in) and with `claim`
//! (lock a slot, write or reuse its value in place across the caller's own code, publish on
//! drop: what a running span does with its record).
//!
//! Run: `bash .ci/loom` (the models of `src/loom/`, under `--cfg agentcore_loom`).
//!
//! Invariants checked in every interleaving:
//! 1. No data race on a slot's value (loom's `UnsafeCell` tracking: only the holder of the
//!    slot's try-lock touches it).
//! 2. Accounting: every pushed value ends in exactly one place: still in the ring at the
//!    end, handed back by exactly one `Overwrote` (displaced), or handed back intact by
//!    `Busy`. This holds with shared (`fetch_add`) cursors and also when two writers both
//!    claim to be the shard's exclusive writer (plain load + store cursor, so they may pick
//!    the same slot): the cursor never protects data, the slot lock does.
//! 3. A concurrent reader sees only values that were pushed, each at most once, and never
//!    more than the capacity.
//! 4. No value is leaked or dropped twice (values are loom `Arc`s, whose leaks loom reports).
//! 5. `claim`: a claimed slot is exclusively the claimer's until the `Claimed` drops (no
//!    race between its in-place writes and a reader or another writer), its value is
//!    published by that drop (a reader sees only complete values), and the accounting
//!    holds: values in the ring at the end + overwrites reported by `Claimed::overwrote` +
//!    failed claims (all tried slots busy) = claims attempted.

use crate::sync::ring::{Push, ShardedRing};
use loom::sync::Arc;
use loom::thread;

/// Pushes `values`; returns the values handed back (displaced or busy) and the busy count.
fn writer(ring: &ShardedRing<Arc<u64>>, exclusive: bool, values: [u64; 2]) -> (Vec<u64>, u64) {
    let mut handed_back = Vec::new();
    let mut busy = 0;
    for v in values {
        let mut value = Some(Arc::new(v));
        match ring.push(0, exclusive, &mut value) {
            Push::Stored => assert!(value.is_none()),
            Push::Overwrote => handed_back.push(*value.take().expect("displaced value")),
            Push::Busy => {
                busy += 1;
                assert_eq!(value.as_deref(), Some(&v), "a busy push keeps its value");
                handed_back.push(v);
            }
        }
    }
    (handed_back, busy)
}

fn model(exclusive: bool) {
    loom::model(move || {
        let ring = Arc::new(ShardedRing::<Arc<u64>>::new(2, 1));
        assert_eq!(ring.capacity(), 2);

        let w1 = {
            let ring = ring.clone();
            thread::spawn(move || writer(&ring, exclusive, [1, 2]))
        };
        let w2 = {
            let ring = ring.clone();
            thread::spawn(move || writer(&ring, exclusive, [3, 4]))
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

        let (mut back1, _) = w1.join().unwrap();
        let (back2, _) = w2.join().unwrap();

        // Quiescent: nothing is busy; every value is in exactly one place.
        let mut all = Vec::new();
        assert_eq!(ring.for_each(|v| all.push(**v)), 0);
        all.append(&mut back1);
        all.extend(back2);
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3, 4]);
    });
}

#[test]
fn shared_cursor_writers_wrap_around_with_a_concurrent_reader() {
    model(false);
}

#[test]
fn exclusive_cursor_misuse_loses_slots_but_never_values() {
    model(true);
}

/// Claims a slot per value, writes it in place in two steps (a first value, then the final
/// one, as a span resets and then fills its record), and publishes it by dropping the claim.
/// Returns (overwrites, failed claims).
fn claimer(ring: &ShardedRing<Arc<u64>>, exclusive: bool, values: [u64; 2]) -> (u64, u64) {
    let (mut overwrote, mut lost) = (0, 0);
    for v in values {
        match ring.claim(0, exclusive) {
            Some(mut c) => {
                if c.overwrote() {
                    overwrote += 1;
                }
                *c.get_or_insert_with(|| Arc::new(0)) = Arc::new(100 + v);
                *c.get_mut().expect("written") = Arc::new(v);
                assert_eq!(c.get().map(|a| **a), Some(v));
            }
            None => lost += 1,
        }
    }
    (overwrote, lost)
}

fn claim_model(exclusive: bool) {
    loom::model(move || {
        let ring = Arc::new(ShardedRing::<Arc<u64>>::new(2, 1));
        let c1 = {
            let ring = ring.clone();
            thread::spawn(move || claimer(&ring, exclusive, [1, 2]))
        };
        let c2 = {
            let ring = ring.clone();
            thread::spawn(move || claimer(&ring, exclusive, [3, 4]))
        };

        // Concurrent reader: only complete, published values (never an in-progress 0 or
        // 100 + v), each at most once.
        let mut seen = Vec::new();
        let skipped = ring.for_each(|v| seen.push(**v));
        assert!(seen.len() + skipped <= 2);
        assert!(seen.iter().all(|v| (1..=4).contains(v)), "{seen:?}");
        let read = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), read, "each value seen at most once");

        let (o1, l1) = c1.join().unwrap();
        let (o2, l2) = c2.join().unwrap();
        let mut stored = 0;
        assert_eq!(ring.for_each(|_| stored += 1), 0);
        assert_eq!(stored + o1 + o2 + l1 + l2, 4);
    });
}

#[test]
fn claimers_write_in_place_with_a_concurrent_reader() {
    claim_model(false);
}

#[test]
fn exclusive_cursor_misuse_with_claims_never_races() {
    claim_model(true);
}

/// Two concurrent readers (queries) and a writer: both readers see a value published
/// before they began, whatever the interleaving (a reader used to skip a slot another
/// reader was visiting; with the exclusive slot lock this model fails).
#[test]
fn concurrent_readers_both_see_a_published_value() {
    loom::model(|| {
        let ring = Arc::new(ShardedRing::<Arc<u64>>::new(2, 1));
        assert_eq!(ring.push(0, false, &mut Some(Arc::new(1))), Push::Stored);
        let reader = |ring: Arc<ShardedRing<Arc<u64>>>| {
            thread::spawn(move || {
                let mut seen = Vec::new();
                ring.for_each(|v| seen.push(**v));
                assert!(
                    seen.contains(&1),
                    "a reader missed a published value: {seen:?}"
                );
            })
        };
        let r1 = reader(ring.clone());
        let r2 = reader(ring.clone());
        // A writer filling the other slot meanwhile (it may find it busy: a reader).
        let _ = ring.push(0, false, &mut Some(Arc::new(2)));
        r1.join().unwrap();
        r2.join().unwrap();
    });
}
