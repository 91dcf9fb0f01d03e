//! `tests/tracer_thread_churn.rs` waits for its early threads with `thread::scope`, which
//! returns once each thread's closure has returned: *before* the thread's thread-local
//! destructors run, and so before its `Lease` gives its span-log index back. A late thread
//! that records meanwhile takes a higher index (a shared shard), and the owned shard of the
//! index still held gets none of the late spans. Under CPU load the churn test failed that way
//! in 38 of 300 runs:
//!
//!     left: (Some(112), Some(2))
//!    right: (Some(128), None)
//!
//! Here each early thread's exit is made slow on purpose (a thread-local whose destructor
//! sleeps, registered after the thread's first span, so it runs before the lease's), which
//! makes the race certain. Joining a thread (`join`, a `pthread_join`) waits for its
//! thread-local destructors; the scope's implicit wait does not.
//!
//! One test in this file, so that it runs alone in its process: the indices it reasons about
//! are the process's.

use agentcore_telemetry::{DistributedTracer, SpanKind, TracerConfig};
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

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
fn threads_after_slowly_exiting_ones_write_the_whole_log() {
    let tracer = DistributedTracer::new(TracerConfig {
        span_log_capacity: SHARDS * PER_SHARD,
        span_log_shards: SHARDS,
        from_env: false,
        ..Default::default()
    });
    for _ in 0..SHARDS / 2 {
        thread::scope(|s| {
            s.spawn(|| {
                tracer.start_span("early", SpanKind::Internal, []).end();
                SLOW_EXIT.with(|_| ()); // after the lease: destroyed before it
            })
            .join()
            .unwrap();
        });
    }
    let all_recorded = Barrier::new(SHARDS);
    thread::scope(|s| {
        for _ in 0..SHARDS {
            s.spawn(|| {
                for _ in 0..2 * PER_SHARD {
                    tracer.start_span("late", SpanKind::Internal, []).end();
                }
                all_recorded.wait();
            });
        }
    });
    let counts = tracer.operation_counts();
    assert_eq!(
        (counts.get("late").copied(), counts.get("early").copied()),
        (Some(SHARDS * PER_SHARD), None),
    );
}
