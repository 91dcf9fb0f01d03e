//! loom model of the span log's export cursor (`sync::ring::ExportCursor`) against
//! claiming writers: a writer claims slots of a two-slot shard, writes each value in place
//! in two steps and publishes it `pending`, wrapping around (so it displaces values the
//! cursor may not have reached), while the exporter thread drains concurrently; then a
//! last drain once the writer is done.
//!
//! Run: `bash .ci/loom`.
//!
//! Invariants checked in every interleaving:
//! 1. No data race between the cursor's reads (under a slot's read lock) and the writer's
//!    in-place writes (loom's `UnsafeCell` tracking).
//! 2. The cursor only sees complete, published values (never the in-progress `100 + v`).
//! 3. Exactly once: every published value is visited by exactly one drain or counted once
//!    as evicted (displaced before the cursor reached it); visited values are distinct;
//!    claims that found no slot are counted as unclaimed; visited + evicted + unclaimed =
//!    values the writer tried to publish.
//! 4. Nothing pending is left behind: after the writer is done, a drain finds every
//!    value still in the ring (none is stranded by a deferral).
//!
//! Deliberate bug this model caught (see the commit message): a claim that did not clear
//! and count the `pending` mark of the value it displaced (`Shard::stamp` without the
//! eviction branch) breaks invariant 3 (a displaced value is neither visited nor counted).

use crate::sync::ring::ShardedRing;
use loom::sync::Arc;
use loom::thread;

fn publisher(ring: &ShardedRing<u64>, values: &[u64]) -> u64 {
    let mut unclaimed = 0;
    for &v in values {
        match ring.claim(0, false) {
            Some(mut c) => {
                *c.get_or_insert_with(|| 0) = 100 + v;
                *c.get_mut().expect("written") = v;
                c.set_pending(ring.exporting());
            }
            None => unclaimed += 1,
        }
    }
    unclaimed
}

fn model(values: &'static [u64], max: usize) {
    loom::model(move || {
        let ring = Arc::new(ShardedRing::<u64>::new(2, 1));
        let mut cursor = ring.attach_exporter().expect("first cursor");
        let writer = {
            let ring = ring.clone();
            thread::spawn(move || publisher(&ring, values))
        };

        let mut seen = Vec::new();
        let (mut evicted, mut unclaimed) = (0, 0);
        let d = cursor.drain(max, &mut |v| seen.push(*v));
        assert!(d.visited <= max);
        evicted += d.evicted;
        unclaimed += d.unclaimed;

        let lost = writer.join().unwrap();
        // The writer is done: the cursor catches up with everything left.
        let d = cursor.drain(usize::MAX, &mut |v| seen.push(*v));
        evicted += d.evicted;
        unclaimed += d.unclaimed;
        assert_eq!(cursor.pending(), 0, "nothing left behind");

        assert!(seen.iter().all(|v| values.contains(v)), "{seen:?}");
        let visited = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), visited, "a value visited twice");
        assert_eq!(unclaimed, lost);
        assert_eq!(
            visited as u64 + evicted + unclaimed,
            values.len() as u64,
            "visited {seen:?}, evicted {evicted}, unclaimed {unclaimed}"
        );
    });
}

#[test]
fn the_cursor_drains_each_value_once_while_a_writer_wraps_around() {
    model(&[1, 2, 3], usize::MAX);
}

#[test]
fn a_cursor_draining_one_at_a_time_defers_and_comes_back() {
    model(&[1, 2], 1);
}
