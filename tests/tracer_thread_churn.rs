//! The span log's owned shards after threads exit: a thread that records a sampled span takes a
//! process-wide index, and the first indices own a shard of every tracer's span log (written
//! without a locked instruction; the others share the second half). An exited thread's index
//! goes back for the next thread to take, lowest first, so that a process whose threads come
//! and go (a blocking pool, a thread per job) keeps its owned shards in use instead of leaving
//! the early threads' shards to hold their last spans forever while every later thread crowds
//! into the shared half (half the log's capacity, and a locked instruction per span).
//!
//! The early threads' exits are made slow on purpose (a thread-local whose destructor sleeps;
//! the index goes back after the thread's thread-local destructors). The test must
//! then join each early thread (`join`, a `pthread_join`, waits for all of its
//! destructors); waiting on `thread::scope` alone, which returns once the closure has
//! returned, let a late thread take a higher index while an early one still held its own
//! (review helper-93: 38 failures in 300 runs under CPU load, `(Some(112), Some(2))`; with
//! the slow exit, every run: `(Some(64), Some(4))`).
//!
//! One test in this file, so that it runs alone in its process: the indices it reasons about
//! are the process's.

mod support;

use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
use std::thread;
use std::time::Duration;
use support::span_log::record_from_live_threads;

const SHARDS: usize = 8;
const PER_SHARD: usize = 16;

struct SlowExit;
impl Drop for SlowExit {
    fn drop(&mut self) {
        thread::sleep(Duration::from_millis(50));
    }
}
thread_local! { static SLOW_EXIT: SlowExit = const { SlowExit }; }

#[test]
fn threads_after_exited_ones_write_the_whole_log() {
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: SHARDS * PER_SHARD,
        span_log_shards: SHARDS,
        from_env: false,
        ..Default::default()
    });
    assert_eq!(tracer.span_log_capacity(), SHARDS * PER_SHARD);
    // The process's first recording threads, one after another: each takes an index and
    // exits (with the old rule, they kept the owned shards' indices for good). Joined
    // explicitly: the scope's own wait ends when the closure returns, before the thread's
    // exit gives its index back (see the module docs).
    for _ in 0..SHARDS / 2 {
        thread::scope(|s| {
            s.spawn(|| {
                tracer.start_span("early", SpanKind::Internal, []).end();
                SLOW_EXIT.with(|_| ()); // destroyed before the lease ends
            })
            .join()
            .unwrap();
        });
    }
    assert_eq!(tracer.operation_counts()["early"], SHARDS / 2);
    // Then as many threads as shards, alive together (none exits before all have recorded,
    // so their indices differ), each filling twice its shard's room.
    record_from_live_threads(&tracer, SHARDS, 2 * PER_SHARD, "late");
    let counts = tracer.operation_counts();
    assert_eq!(
        (counts.get("late").copied(), counts.get("early").copied()),
        (Some(SHARDS * PER_SHARD), None),
        "the late threads' spans fill every shard (the early threads' indices were reused), \
         not only the shared half"
    );
}
